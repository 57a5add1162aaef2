/*
 * tls.h - TLS on non-blocking sockets (module tls/, OpenSSL): the contexts
 * the master loads from [http] tls_cert / tls_key and the workers inherit,
 * and the connections the HTTP transport and the WebSocket module run over
 * them (HTTPS, WSS).
 *
 * Contexts are loaded by the master at start (a missing or unreadable file
 * is a fatal configuration error naming its path) and again on SIGHUP for
 * the new generation of workers; the old generation keeps the context it
 * was forked with until it has drained, so established connections are
 * never cut by a certificate change.  TLS 1.2 and 1.3 only, no
 * renegotiation, no compression.
 *
 * A connection wraps a connected non-blocking socket.  Every call returns
 * at once: -EAGAIN means "call again when the socket is ready", and
 * tls_want() says for what (reading or writing).  No call blocks, logs or
 * keeps OpenSSL errors queued.
 */
#ifndef ARTEMIS_TLS_H
#define ARTEMIS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct tls_ctx tls_ctx_t;
typedef struct tls_conn tls_conn_t;

/* A server context from a PEM certificate chain and its private key.  0,
 * or a negative errno with err naming the file and what is wrong ("path:
 * No such file or directory", "path: not a PEM certificate", "the key does
 * not match the certificate"). */
int tls_server_ctx(const char *cert, const char *key, tls_ctx_t **out, char *err, size_t err_len);
/* A client context (load generators, tests): ca_file NULL accepts any
 * certificate. */
int tls_client_ctx(const char *ca_file, tls_ctx_t **out, char *err, size_t err_len);
void tls_ctx_free(tls_ctx_t *ctx);

/* A connection on fd (which stays the caller's to close): the server side
 * of an accepted socket, or the client side of a connected one.  NULL when
 * out of memory. */
tls_conn_t *tls_accept_new(tls_ctx_t *ctx, int fd);
tls_conn_t *tls_connect_new(tls_ctx_t *ctx, int fd, const char *server_name);

enum { TLS_WANT_READ = 1, TLS_WANT_WRITE = 2 };

/* Run the handshake: 0 once done, -EAGAIN (tls_want), -EPROTO (a peer not
 * speaking TLS, or an alert), -ECONNRESET. */
int tls_handshake(tls_conn_t *c);
bool tls_handshake_done(const tls_conn_t *c);
/* Decrypted bytes: > 0 read, 0 the peer closed (close_notify or EOF),
 * -EAGAIN, -EPROTO, -errno. */
ssize_t tls_read(tls_conn_t *c, void *buf, size_t len);
/* Bytes taken (at least 1 when len > 0), -EAGAIN, -EPROTO, -errno.  After
 * -EAGAIN call it again with the same bytes (more may follow them). */
ssize_t tls_write(tls_conn_t *c, const void *buf, size_t len);
/* What the last -EAGAIN waits for: TLS_WANT_READ or TLS_WANT_WRITE. */
int tls_want(const tls_conn_t *c);
/* Decrypted bytes already read from the socket and not yet returned. */
bool tls_pending(const tls_conn_t *c);
/* Send close_notify (once, best effort: never waits). */
void tls_close_notify(tls_conn_t *c);
void tls_conn_free(tls_conn_t *c);

#endif

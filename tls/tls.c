/*
 * tls.c - TLS contexts and connections over non-blocking sockets
 * (include/artemis/tls.h), with OpenSSL 3.
 *
 * Called by the master (tls_server_ctx at start and on SIGHUP), the
 * workers' HTTP transport and WebSocket module (the connection calls), and
 * the load generator (client side).  One thread per process: OpenSSL's
 * per-thread error queue is cleared before every call and drained after a
 * failure, so nothing accumulates.  Must not log (the master and the
 * transport decide what to say) and must never block.
 */
#include "artemis/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct tls_ctx {
	SSL_CTX *ssl;
};

struct tls_conn {
	SSL *ssl;
	int want;
	bool done;     /* handshake finished */
	bool notified; /* close_notify sent */
};

/* The reason of the last OpenSSL error, or a fallback. */
static const char *tls__reason(const char *fallback)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	return r ? r : fallback;
}

static int tls__fail(tls_ctx_t *t, int rc, char *err, size_t err_len, const char *fmt,
                     const char *a, const char *b)
{
	snprintf(err, err_len, fmt, a, b);
	ERR_clear_error();
	tls_ctx_free(t);
	return rc;
}

static tls_ctx_t *tls__ctx_new(const SSL_METHOD *method)
{
	tls_ctx_t *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	if (!(t->ssl = SSL_CTX_new(method))) {
		free(t);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(t->ssl, TLS1_2_VERSION);
	SSL_CTX_set_options(t->ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	                                SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Writes may be partial and resumed from a moved buffer (the
	 * transport compacts its output); idle connections give their
	 * buffers back. */
	SSL_CTX_set_mode(t->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                             SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                             SSL_MODE_RELEASE_BUFFERS);
	return t;
}

/* A file must exist and be readable before OpenSSL is asked about it: its
 * own messages do not say which file. */
static int tls__readable(const char *path, char *err, size_t err_len)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		int e = errno;
		snprintf(err, err_len, "%s: %s", path, strerror(e));
		return -e;
	}
	fclose(f);
	return 0;
}

int tls_server_ctx(const char *cert, const char *key, tls_ctx_t **out, char *err, size_t err_len)
{
	int rc;
	ERR_clear_error();
	if ((rc = tls__readable(cert, err, err_len)) < 0 ||
	    (rc = tls__readable(key, err, err_len)) < 0)
		return rc;
	tls_ctx_t *t = tls__ctx_new(TLS_server_method());
	if (!t) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	if (SSL_CTX_use_certificate_chain_file(t->ssl, cert) != 1)
		return tls__fail(t, -EINVAL, err, err_len, "%s: not a PEM certificate (%s)", cert,
		                 tls__reason("unreadable"));
	if (SSL_CTX_use_PrivateKey_file(t->ssl, key, SSL_FILETYPE_PEM) != 1)
		return tls__fail(t, -EINVAL, err, err_len, "%s: not a PEM private key (%s)", key,
		                 tls__reason("unreadable"));
	if (SSL_CTX_check_private_key(t->ssl) != 1)
		return tls__fail(t, -EINVAL, err, err_len, "%s: the key does not match %s", key,
		                 cert);
	*out = t;
	return 0;
}

int tls_client_ctx(const char *ca_file, tls_ctx_t **out, char *err, size_t err_len)
{
	ERR_clear_error();
	tls_ctx_t *t = tls__ctx_new(TLS_client_method());
	if (!t) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	if (ca_file) {
		if (SSL_CTX_load_verify_locations(t->ssl, ca_file, NULL) != 1)
			return tls__fail(t, -EINVAL, err, err_len, "%s: %s", ca_file,
			                 tls__reason("not a PEM certificate"));
		SSL_CTX_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
	}
	*out = t;
	return 0;
}

void tls_ctx_free(tls_ctx_t *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx);
}

static tls_conn_t *tls__conn_new(tls_ctx_t *ctx, int fd)
{
	tls_conn_t *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (!(c->ssl = SSL_new(ctx->ssl)) || SSL_set_fd(c->ssl, fd) != 1) {
		SSL_free(c->ssl);
		free(c);
		ERR_clear_error();
		return NULL;
	}
	return c;
}

tls_conn_t *tls_accept_new(tls_ctx_t *ctx, int fd)
{
	tls_conn_t *c = tls__conn_new(ctx, fd);
	if (c)
		SSL_set_accept_state(c->ssl);
	return c;
}

tls_conn_t *tls_connect_new(tls_ctx_t *ctx, int fd, const char *server_name)
{
	tls_conn_t *c = tls__conn_new(ctx, fd);
	if (!c)
		return NULL;
	if (server_name)
		SSL_set_tlsext_host_name(c->ssl, server_name);
	SSL_set_connect_state(c->ssl);
	return c;
}

/* The outcome of an SSL_* call that returned r <= 0. */
static int tls__error(tls_conn_t *c, int r)
{
	int saved = errno;
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		c->want = TLS_WANT_READ;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		c->want = TLS_WANT_WRITE;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		/* EOF without close_notify: the peer is gone all the same. */
		return saved && r < 0 ? -saved : 0;
	default:
		ERR_clear_error();
		return -EPROTO;
	}
}

int tls_handshake(tls_conn_t *c)
{
	if (c->done)
		return 0;
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->done = true;
		return 0;
	}
	int rc = tls__error(c, r);
	return rc == 0 ? -ECONNRESET : rc;
}

bool tls_handshake_done(const tls_conn_t *c)
{
	return c->done;
}

ssize_t tls_read(tls_conn_t *c, void *buf, size_t len)
{
	size_t n = 0;
	ERR_clear_error();
	int r = SSL_read_ex(c->ssl, buf, len, &n);
	if (r == 1)
		return (ssize_t)n;
	return tls__error(c, 0);
}

ssize_t tls_write(tls_conn_t *c, const void *buf, size_t len)
{
	size_t n = 0;
	if (len == 0)
		return 0;
	ERR_clear_error();
	int r = SSL_write_ex(c->ssl, buf, len, &n);
	if (r == 1)
		return (ssize_t)n;
	int rc = tls__error(c, 0);
	return rc == 0 ? -EPIPE : rc;
}

int tls_want(const tls_conn_t *c)
{
	return c->want;
}

bool tls_pending(const tls_conn_t *c)
{
	return SSL_pending(c->ssl) > 0;
}

void tls_close_notify(tls_conn_t *c)
{
	if (!c || c->notified || !c->done)
		return;
	c->notified = true;
	ERR_clear_error();
	(void)SSL_shutdown(c->ssl);
	ERR_clear_error();
}

void tls_conn_free(tls_conn_t *c)
{
	if (!c)
		return;
	SSL_free(c->ssl);
	free(c);
}

/*
 * http_conn.h - the HTTP transport's own interface (http_*.c, see http_int.h), for the worker
 * loop (worker.c), the WebSocket module, the unit tests and the fuzzer.
 * Handlers use http.h only.
 *
 * An http_server_t serves one event base: it accepts on a listening socket
 * (or is handed connected sockets), parses requests, calls the handler it
 * was created with once per request, and writes the responses in request
 * order.  It knows nothing of the configuration file or the API layer: its
 * owner passes the limits and the handler (worker.c: api_dispatch).
 */
#ifndef ARTEMIS_WORKER_HTTP_CONN_H
#define ARTEMIS_WORKER_HTTP_CONN_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "artemis/tls.h"
#include "http.h"

typedef struct http_server http_server_t;
typedef struct http_conn http_conn_t;

/* What the transport needs to know of the configuration ([http] keys),
 * filled by its owner (worker.c from config_t; the tests and the fuzzer by
 * hand).  Copied by http_server_new(). */
typedef struct {
	uint32_t max_header_bytes;  /* request head: 431 beyond */
	uint32_t max_body_bytes;    /* request body, also after inflating: 413 beyond */
	uint32_t idle_timeout_ms;   /* a connection without traffic is closed */
	uint32_t header_timeout_ms; /* from a request's first byte (or the accept) to its head */
	uint32_t body_timeout_ms;   /* from a request's head to the end of its body */
	uint32_t write_timeout_ms;  /* unsent output that makes no progress this long: close */
	uint32_t max_connections;   /* of this server; 0 = no limit; then the oldest waiter goes */
	size_t output_budget_bytes; /* unsent output of all connections together */
	size_t max_response_bytes;  /* one response body; 0 = no limit */
	const char *cors_origins;   /* "*" (or NULL): any origin; else the origins
	                             * allowed, separated by blanks or commas */
} http_limits_t;

/* The request handler, injected when the server is created.  dispatch is
 * called once per complete request (HEAD arrives as GET, OPTIONS never
 * arrives: the transport answers preflights); observe once per response
 * queued, including the transport's own error answers, with the latency
 * from the request's first byte.  observe may be NULL. */
typedef struct {
	void (*dispatch)(void *ctx, const http_request_t *req, http_response_t *res);
	void (*observe)(void *ctx, const http_request_t *req, int status, uint64_t latency_us);
	void *ctx;
} http_handler_t;

/* Connection takeover (WebSocket).  For a request with "Connection: upgrade"
 * and an Upgrade header, the hook is called once the request is complete
 * and the responses to earlier pipelined requests are queued.  If it
 * returns true it owns `fd` from then on (it must also send `unsent`, the
 * bytes of those earlier responses the socket has not taken yet, before
 * its own); the transport frees its connection without closing the fd.  If
 * it returns false, or no hook is set, the request is answered as plain
 * HTTP and the connection is closed after the response. */
typedef struct {
	int fd;
	tls_conn_t *tls; /* the connection's TLS (NULL: plain), the hook's too */
	struct event_base *base;
	const http_request_t *req; /* http_request_header() works on it */
	const char *rest;          /* bytes received after the request */
	size_t rest_len;
	const char *unsent;
	size_t unsent_len;
	bool origin_allowed; /* the Origin, if any, passes cors_origins */
} http_upgrade_t;
typedef bool (*http_upgrade_fn)(const http_upgrade_t *up);
void http_set_upgrade_handler(http_upgrade_fn fn);

/* Called whenever the number of open connections changes. */
typedef void (*http_conns_fn)(void *arg, unsigned nconns);

/* listen_fd may be -1 (connections are then added by http_server_add_conn).
 * The server never closes listen_fd: the master owns it. */
int http_server_new(struct event_base *base, const http_limits_t *lim,
                    const http_handler_t *handler, int listen_fd, http_server_t **out);
/* A further listening socket (two in all); with tls, its connections speak
 * TLS with that context (HTTPS and WSS).  The context stays the caller's
 * and must outlive the server. */
int http_server_add_listener(http_server_t *s, int listen_fd, tls_ctx_t *tls);
void http_server_set_conns_cb(http_server_t *s, http_conns_fn fn, void *arg);

/* Take over a connected non-blocking socket (tls: the server side of a TLS
 * connection on it, NULL: plain).  0 or -errno (fd is closed). */
int http_server_add_conn(http_server_t *s, int fd, const char *peer_ip);
int http_server_add_tls_conn(http_server_t *s, int fd, const char *peer_ip, tls_ctx_t *tls);

/* Graceful stop: stop accepting, close idle connections now, answer the
 * requests in progress with "Connection: close" and close after them. */
void http_server_drain(http_server_t *s);
unsigned http_server_conns(const http_server_t *s);

/* Close every connection and free the server (not listen_fd). */
void http_server_free(http_server_t *s);

/* Socket-less connections, for the fuzzer: bytes in, responses discarded.
 * http_conn_feed() returns 0 while the connection would stay open, 1 once
 * it would be closed (further input is ignored). */
http_conn_t *http_conn_new_detached(http_server_t *s);
int http_conn_feed(http_conn_t *c, const void *data, size_t len);
void http_conn_free(http_conn_t *c);

#endif

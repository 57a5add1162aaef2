/*
 * http_int.h - what the files of the HTTP transport share, and nobody else.
 *
 * The transport is split by concern:
 *   http_parse.c     bytes -> requests: the strict HTTP/1.x request parser
 *                    and the request head (http_request_header);
 *   http_response.c  responses -> bytes: status line, CORS headers,
 *                    preflight, and the handlers' helpers of http.h;
 *   http_io.c        one connection: read, parse, decode the body,
 *                    dispatch, send, back-pressure, lingering close,
 *                    hand-over to the upgrade hook;
 *   http_server.c    the set of connections: accept, limits, timeouts,
 *                    drain, the connection objects.
 * Handlers include http.h; the worker loop, ws.c, the tests and the fuzzer
 * include http_conn.h.  Functions shared between these files carry the
 * http__ prefix.
 */
#ifndef ARTEMIS_WORKER_HTTP_INT_H
#define ARTEMIS_WORKER_HTTP_INT_H

#include <arpa/inet.h>
#include <event2/event_struct.h>

#include "artemis/tls.h"
#include "http.h"
#include "http_body.h"
#include "http_conn.h"

#define HTTP_READ_BUF      (64u << 10)
#define HTTP_MAX_HEADERS   64
#define HTTP_OUT_HIGH      (1u << 20)  /* stop reading above this much unsent output */
#define HTTP_COPY_BODY_MAX (16u << 10) /* larger bodies are sent from res.body directly */
#define HTTP_KEEP_BUF      (16u << 10) /* larger per-connection buffers are freed after use */
#define HTTP_KEEP_RES      (1u << 20)  /* the same for the server's response buffer */
#define HTTP_STALL_MS      1000 /* over the output budget, close who took nothing this long */
#define HTTP_TURN_REQUESTS 16   /* requests of one connection per event loop turn... */
#define HTTP_TURN_BYTES    (32u << 10) /* ...or this much output, then the others' turn */
/* Event priorities, where the event base has two (worker.c): accepts and a
 * connection's first request go before established connections' work. */
#define HTTP_PRIO_NEW         0
#define HTTP_PRIO_ESTABLISHED 1
#define HTTP_ACCEPT_BATCH     512
#define HTTP_ACCEPT_RETRY_MS  100
#define HTTP_FREE_CONNS       256  /* closed connections kept for reuse */
#define HTTP_LINGER_MS        2000 /* read and discard this long after an error */
#define HTTP_EVICT_MIN_MS     100  /* at the cap, evict only a connection waiting this long */
#define HTTP_LOG_PER_SEC      10   /* lines of client-caused events per second */
#define HTTP_DEFAULT_CT       "application/json;charset=UTF-8"
#define HTTP_MAX_LISTENERS    2 /* plain and TLS side by side ([http] tls_listen) */

/* Append a string literal to a buf_t. */
#define BUF_LIT(b, s) buf_append((b), (s), sizeof(s) - 1)

/* ---- The request parser (http_parse.c) ---------------------------------- */

typedef struct {
	uint32_t name, value; /* offsets into the head buffer, NUL-terminated */
} http_hdr_t;

enum http_phase {
	HP_IDLE = 0,   /* before the first byte of a request */
	HP_HEAD,       /* receiving the request line and header fields */
	HP_BODY,       /* Content-Length body */
	HP_CHUNK_SIZE, /* chunk-size [ chunk-ext ] CRLF */
	HP_CHUNK_DATA,
	HP_CHUNK_END, /* the CRLF after chunk data */
	HP_TRAILER,   /* trailer fields after the last chunk */
	HP_DONE,      /* complete: the next call reports HEV_DONE */
};

/* One request as it is parsed.  `req` comes first: http_request_header()
 * finds the header fields from it. */
typedef struct {
	http_request_t req;
	buf_t head; /* the raw head, split into NUL-terminated parts in place */
	http_hdr_t hdrs[HTTP_MAX_HEADERS];
	unsigned nhdrs;
	enum http_phase phase;
	unsigned minor;     /* HTTP/1.minor */
	bool cr;            /* the last byte seen was a CR */
	unsigned blank;     /* line ends in a row (head), or the state of a line */
	uint64_t remaining; /* of the body or the current chunk */
	uint64_t length;    /* Content-Length */
	size_t line_bytes;  /* chunk-size line or trailer bytes so far */
	bool chunked;
	bool keep_alive;
	bool upgrade; /* Connection: upgrade and an Upgrade field */
	bool expect_continue;
	const char *method_name; /* in head, once the request line is parsed */
} http_msg_t;

/* What one call of http__parse() found. */
enum http_ev {
	HEV_NONE = 0, /* all input consumed, nothing complete yet */
	HEV_HEAD,     /* the head is complete: msg->req and the fields are set */
	HEV_BODY,     /* body bytes (de-chunked) at ev->at, ev->n */
	HEV_DONE,     /* the request is complete; the next byte starts another */
	HEV_ERROR,    /* ev->status and ev->msg; the stream cannot be parsed further */
};

typedef struct {
	enum http_ev ev;
	const char *at;
	size_t n;
	int status;
	const char *msg;
} http_event_t;

/* Start a new request (keeps the head buffer's memory). */
void http__msg_reset(http_msg_t *m);

/* Parse up to len bytes; returns how many were consumed and sets ev.
 * Stops after each event.  max_head bounds the request head (431 beyond). */
size_t http__parse(http_msg_t *m, const char *data, size_t len, uint32_t max_head,
                   http_event_t *ev);

/* The method's name, for logs. */
const char *http__method_name(const http_msg_t *m);

/* ---- Connections and the server ----------------------------------------- */

struct http_conn {
	http_msg_t msg; /* first: the request handlers see is its first member */
	http_server_t *srv;
	http_conn_t *prev, *next; /* server's list, longest waiting first (wait_ms) */
	int fd;                   /* -1: detached (fuzzer) */
	bool ev_init;
	bool reading, writing; /* ev_read / ev_write added */
	struct event ev_read;
	struct event ev_write;
	struct event ev_linger; /* lingering close deadline */
	struct event ev_turn;   /* a yielded connection's next turn */
	/* Times (clock_mono_coarse_ms) the timeouts run from. */
	uint64_t last_ms;  /* last I/O progress: the idle timeout */
	uint64_t wait_ms;  /* accepted or last request answered: the list's order */
	uint64_t phase_ms; /* this request's first byte, or its head (body timeout) */
	uint64_t out_ms;   /* last write progress, or when output became pending */

	/* The request being received. */
	bool head_only; /* HEAD: send no body */
	uint64_t t_start_ns;
	uint64_t raw_body;
	buf_t body;
	enum http_body_coding coding;
	http_inflate_t inflate;
	int err_status; /* an error answer replaces dispatch */
	const char *err_msg;
	bool err_fatal; /* ...and the connection closes */

	/* Connection state. */
	bool close_after; /* stop parsing; close once the output is sent */
	bool read_eof;
	bool out_paused;    /* parsing and reading paused for unsent output */
	bool yielded;       /* ...or until the next turn of the event loop */
	unsigned turn_reqs; /* requests answered in this turn */
	size_t turn_bytes;  /* and their body bytes */
	bool linger;        /* an error answer: linger on close */
	bool lingering;     /* write side shut, discarding input */
	unsigned served;    /* requests answered on this connection */
	buf_t out;
	size_t out_off;
	size_t out_counted; /* this connection's share of srv->out_total */
	buf_t in_pending;   /* input held while parsing is paused... */
	size_t in_off;      /* ...from this offset */
	char peer_ip[INET6_ADDRSTRLEN];
	/* TLS (https listeners): out holds plaintext, encrypted as it is sent. */
	tls_conn_t *tls;
	bool tls_read_wants_write; /* a read stopped for the socket to take output */
};

/* A listening socket of the server. */
typedef struct {
	http_server_t *srv;
	int fd;
	tls_ctx_t *tls; /* NULL: plain HTTP */
	struct event ev;
} http_listener_t;

struct http_server {
	struct event_base *base;
	http_limits_t lim;
	http_handler_t handler;
	http_response_t res; /* one response at a time: dispatch is synchronous */
	char *cors;          /* copy of lim.cors_origins, NULL for any origin */
	http_listener_t listeners[HTTP_MAX_LISTENERS];
	int nlisteners;
	bool listening; /* the listeners' events added */
	bool draining;
	bool retry_pending;
	struct event ev_retry; /* accept paused after EMFILE */
	struct event ev_full;  /* at the cap: until the longest waiter may be evicted */
	struct event ev_sweep; /* timeouts */
	http_conn_t *head, *tail;
	unsigned nconns;
	size_t out_total; /* unsent output of all connections */
	http_conn_t *free_list;
	unsigned nfree;
	http_conns_fn conns_fn;
	void *conns_arg;
	bool emfile_logged;
	uint64_t log_window_ms; /* http__log_event's rate limit */
	unsigned log_lines, log_dropped;
	char rbuf[HTTP_READ_BUF];
};

/* The upgrade hook of http_set_upgrade_handler(), or NULL. */
extern http_upgrade_fn http__upgrade_fn;

/* http_response.c */
void http__buf_recycle(buf_t *b, size_t keep);
int http__queue_continue(http_conn_t *c);
/* Queue the answer to the complete request in c->msg: the recorded error,
 * a preflight, or what the handler says.  Returns 0 or -ENOMEM. */
int http__respond(http_conn_t *c, bool keep);
/* Does the request's Origin pass [http] cors_origins?  Any origin does
 * with "*"; otherwise a request without Origin or with a listed one. */
bool http__origin_allowed(const http_conn_t *c);

/* http_io.c */
void http__conn_on_read(evutil_socket_t fd, short what, void *arg);
void http__conn_on_write(evutil_socket_t fd, short what, void *arg);
void http__conn_on_turn(evutil_socket_t fd, short what, void *arg);
void http__conn_want(http_conn_t *c, bool rd, bool wr);
/* Parse bytes; 1 when the connection was handed to the upgrade hook (c is
 * gone), else 0. */
int http__conn_feed(http_conn_t *c, const char *data, size_t len);
/* Resume parsing after output drained; same result as http__conn_feed. */
int http__conn_resume(http_conn_t *c);
/* Send pending output plus `extra` right after it; what the socket does
 * not take is kept.  0, or -errno when the connection is broken. */
int http__conn_send(http_conn_t *c, const char *extra, size_t extra_len);
void http__conn_reset_request(http_conn_t *c);
/* Bring srv->out_total up to date with c's unsent output. */
void http__conn_account(http_conn_t *c);

/* http_server.c */
/* Close (with close_notify on TLS) or only forget (close_fd false: the fd
 * and any TLS went to the upgrade hook) a connection. */
void http__conn_free(http_conn_t *c, bool close_fd);
/* A request was answered: c now waits for its next one (list tail). */
void http__conn_touch(http_conn_t *c);
/* Log at INFO an event a client can cause at will (a refusal, a timeout,
 * an eviction): once per event, at most HTTP_LOG_PER_SEC lines a second,
 * the rest counted and the count logged. */
void http__log_event(http_server_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

/*
 * http.c - the worker's HTTP/1.x transport: accept, parse, dispatch, respond.
 *
 * Called by worker.c (http_server_new on the worker's event base), by the
 * unit tests (socketpairs) and by the fuzzer (http_conn_feed without a
 * socket).  It owns every byte of a connection; handlers (api*.c) see one
 * decoded request at a time through http.h and never touch a socket.
 *
 * Life of a connection.  The listener is drained with accept4() in a loop.
 * Each readable event reads once into the server's shared 64 KiB buffer and
 * hands the bytes to libhttp-parser.  URL and headers are copied into the
 * connection's scratch buffer (offsets, resolved when the head is complete);
 * the body is de-chunked by the parser and, for Content-Encoding gzip or
 * deflate, inflated as it streams in (http_body.c).  When a request is
 * complete it is dispatched synchronously and its response appended to the
 * connection's output buffer, so pipelined requests are answered in order and
 * all responses produced by one read leave in one send().  Nothing is
 * allocated per request once a connection's buffers have grown to size.
 *
 * Limits.  Header bytes beyond max_header_bytes: 431 and close.  Raw body
 * beyond max_body_bytes (Content-Length or chunked): 413 and close.  A body
 * that inflates beyond max_body_bytes: 413, the rest of the body is skipped
 * and the connection stays usable; so does an unsupported Content-Encoding
 * (415) or a corrupt/truncated gzip body (400).  Malformed HTTP: 400 and
 * close.  A connection with no traffic for idle_timeout_ms is closed (an LRU
 * list swept by a timer).  At max_connections the listener is disabled until
 * a connection closes.  While more than HTTP_OUT_HIGH bytes of output are
 * unsent, parsing stops (the unparsed input is kept) and reading too.
 *
 * CORS.  Every response carries the three CORS headers; OPTIONS requests
 * are answered here as preflights and never reach api_dispatch().
 *
 * Extension point: connection takeover.  A request the parser flags as an
 * upgrade (Connection: upgrade + Upgrade: ...) pauses the parser in
 * on_message_complete; once the bytes before it are processed, conn_feed()
 * calls the hook installed with http_set_upgrade_handler() (the WebSocket
 * module) with the socket, the request, the bytes that followed the head and
 * the unsent output, and forgets the connection if the hook takes it.
 *
 * Must not: block, log per byte or per request (bad input is logged once at
 * DEBUG), or close the listening socket (the master owns it).
 */

/* libhttp-parser and http.h both name an `enum http_method`; rename the
 * parser's tag for this file. */
#define http_method http_parser_method
#include <http_parser.h>
#undef http_method

#include "http.h"
#include "http_body.h"
#include "http_conn.h"

#include "artemis/clock.h"
#include "artemis/log.h"
#include "artemis/str.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define HTTP_READ_BUF        (64u << 10)
#define HTTP_MAX_HEADERS     64
#define HTTP_OUT_HIGH        (1u << 20)   /* stop parsing above this much unsent output */
#define HTTP_COPY_BODY_MAX   (16u << 10)  /* larger bodies are sent from res.body directly */
#define HTTP_KEEP_BUF        (256u << 10) /* larger per-connection buffers are freed after use */
#define HTTP_ACCEPT_BATCH    64
#define HTTP_ACCEPT_RETRY_MS 100
#define HTTP_FREE_CONNS      256  /* closed connections kept for reuse */
#define HTTP_LINGER_MS       2000 /* read and discard this long after an error */
#define HTTP_DEFAULT_CT      "application/json;charset=UTF-8"

typedef struct {
	uint32_t name, name_len; /* offsets into scratch */
	uint32_t value, value_len;
} http_hdr_t;

enum head_part { PART_NONE = 0, PART_URL, PART_FIELD, PART_VALUE };

struct http_conn {
	http_request_t req; /* http_request_header() finds the connection from it */
	http_server_t *srv;
	http_conn_t *prev, *next; /* server's list, least recently active first */
	int fd;                   /* -1: detached (fuzzer) */
	bool ev_init;
	bool reading, writing; /* ev_read / ev_write added */
	struct event ev_read;
	struct event ev_write;
	struct event ev_linger; /* lingering close deadline */
	uint64_t last_ms;       /* last I/O progress (CLOCK_MONOTONIC_COARSE) */

	http_parser parser;
	/* The request being parsed. */
	buf_t scratch; /* URL, NUL, then name NUL value NUL ... */
	enum head_part part;
	uint32_t url_len;
	uint32_t head_bytes;
	http_hdr_t hdrs[HTTP_MAX_HEADERS];
	unsigned nhdrs;
	bool in_message;
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
	bool out_paused; /* parser paused on HTTP_OUT_HIGH */
	bool upgrade_pending;
	bool linger;    /* an error answer: linger on close */
	bool lingering; /* write side shut, discarding input */
	unsigned served; /* requests answered on this connection */
	buf_t out;
	size_t out_off;
	buf_t in_pending; /* input held while the parser is paused */
	http_response_t res;
	char peer_ip[INET6_ADDRSTRLEN];
};

struct http_server {
	struct event_base *base;
	const config_t *cfg;
	int listen_fd;
	bool listening; /* ev_listen added */
	bool draining;
	bool retry_pending;
	struct event ev_listen;
	struct event ev_retry; /* accept paused after EMFILE */
	struct event ev_sweep; /* idle timeout */
	http_conn_t *head, *tail;
	unsigned nconns;
	http_conn_t *free_list;
	unsigned nfree;
	http_conns_fn conns_fn;
	void *conns_arg;
	bool emfile_logged;
	char rbuf[HTTP_READ_BUF];
};

static http_dispatch_fn dispatch_fn = api_dispatch;
static http_observe_fn observe_fn = api_observe;
static http_upgrade_fn upgrade_fn;

void http_set_dispatch(http_dispatch_fn fn)
{
	dispatch_fn = fn ? fn : api_dispatch;
}

void http_set_observer(http_observe_fn fn)
{
	observe_fn = fn ? fn : api_observe;
}

void http_set_upgrade_handler(http_upgrade_fn fn)
{
	upgrade_fn = fn;
}

/* ---- Small helpers ------------------------------------------------------ */

static int buf_add(buf_t *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (b->cap - b->len < n && buf_reserve(b, n) != 0)
		return -ENOMEM;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

#define BUF_ADD_LIT(b, s) buf_add((b), (s), sizeof(s) - 1)

static int buf_add_str(buf_t *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

static int buf_add_uint(buf_t *b, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof(tmp);
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return buf_add(b, tmp + i, sizeof(tmp) - i);
}

/* Drop a buffer that grew large for one request, so idle connections stay
 * small; otherwise just empty it. */
static void buf_recycle(buf_t *b)
{
	if (b->cap > HTTP_KEEP_BUF)
		buf_free(b);
	buf_reset(b);
}

static const char *status_reason(int status)
{
	const char *r = http_status_str((enum http_status)status);
	return strcmp(r, "<unknown>") == 0 ? "Unknown" : r;
}

/* ---- Responses for handlers (http.h) ----------------------------------- */

int http_res_append(http_response_t *res, const void *p, size_t n)
{
	return buf_add(&res->body, p, n);
}

int http_res_printf(http_response_t *res, const char *fmt, ...)
{
	va_list ap;
	size_t room = res->body.cap - res->body.len;
	va_start(ap, fmt);
	int n = vsnprintf(room ? res->body.data + res->body.len : NULL, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= room) {
		if (buf_reserve(&res->body, (size_t)n + 1) != 0)
			return -ENOMEM;
		va_start(ap, fmt);
		vsnprintf(res->body.data + res->body.len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	res->body.len += (size_t)n;
	return 0;
}

static int json_add_string(buf_t *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	int rc = BUF_ADD_LIT(b, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p && rc == 0; p++) {
		if (*p == '"' || *p == '\\') {
			char e[2] = {'\\', (char)*p};
			rc = buf_add(b, e, 2);
		} else if (*p < 0x20) {
			char e[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
			rc = buf_add(b, e, 6);
		} else {
			rc = buf_add(b, p, 1);
		}
	}
	return rc ? rc : BUF_ADD_LIT(b, "\"");
}

void http_res_error(http_response_t *res, const http_request_t *req, int status,
                    const char *message)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	buf_t *b = &res->body;
	res->status = status;
	res->content_type = NULL;
	buf_reset(b);
	/* A failed append leaves a short body; the status line still tells. */
	(void)(BUF_ADD_LIT(b, "{\"timestamp\":") || buf_add_uint(b, ms) ||
	       BUF_ADD_LIT(b, ",\"status\":") || buf_add_uint(b, (uint64_t)status) ||
	       BUF_ADD_LIT(b, ",\"error\":") || json_add_string(b, status_reason(status)) ||
	       BUF_ADD_LIT(b, ",\"message\":") || json_add_string(b, message ? message : "") ||
	       BUF_ADD_LIT(b, ",\"path\":") ||
	       json_add_string(b, req && req->path ? req->path : "") || BUF_ADD_LIT(b, "}"));
}

/* ---- Request head ------------------------------------------------------- */

const char *http_request_header(const http_request_t *req, const char *name)
{
	const http_conn_t *c = (const http_conn_t *)(const void *)req;
	for (unsigned i = 0; i < c->nhdrs; i++) {
		const http_hdr_t *h = &c->hdrs[i];
		if (strcasecmp(c->scratch.data + h->name, name) == 0)
			return c->scratch.data + h->value;
	}
	return NULL;
}

static void req_reset(http_conn_t *c)
{
	c->req.method = HTTP_M_OTHER;
	c->req.path = "";
	c->req.path_len = 0;
	c->req.query = "";
	c->req.body = "";
	c->req.body_len = 0;
	c->req.content_type = "";
	c->req.body_was_gzip = false;
	c->req.peer_ip = c->peer_ip;
	buf_reset(&c->scratch);
	c->part = PART_NONE;
	c->url_len = 0;
	c->head_bytes = 0;
	c->nhdrs = 0;
	c->head_only = false;
	c->raw_body = 0;
	buf_reset(&c->body);
	c->coding = HTTP_CODING_IDENTITY;
	c->err_status = 0;
	c->err_msg = NULL;
	c->err_fatal = false;
}

/* Record an error answer for the current request.  A fatal one also makes
 * the parser callback fail, which stops parsing this connection. */
static int req_fail(http_conn_t *c, int status, const char *msg, bool fatal)
{
	if (!c->err_status) {
		c->err_status = status;
		c->err_msg = msg;
	}
	c->err_fatal |= fatal;
	return fatal ? -1 : 0;
}

static int on_message_begin(http_parser *p)
{
	http_conn_t *c = p->data;
	req_reset(c);
	c->in_message = true;
	c->t_start_ns = clock_mono_ns();
	return 0;
}

/* Count head bytes against max_header_bytes (the parser counts too; this
 * also covers what it does not, e.g. many tiny headers). */
static int head_count(http_conn_t *c, size_t n)
{
	c->head_bytes += (uint32_t)n;
	if (c->head_bytes > c->srv->cfg->max_header_bytes)
		return req_fail(c, 431, "Request header is too large", true);
	return 0;
}

/* Switch to another part of the head: NUL-terminate the previous one. */
static int head_switch(http_conn_t *c, enum head_part to)
{
	if (c->part == to)
		return 0;
	if (c->part != PART_NONE && buf_add(&c->scratch, "", 1) != 0)
		return req_fail(c, 500, "Out of memory", true);
	if (to == PART_FIELD) {
		if (head_count(c, 4) != 0) /* ": " and CRLF */
			return -1;
		if (c->nhdrs == HTTP_MAX_HEADERS)
			return req_fail(c, 431, "Too many request headers", true);
		http_hdr_t *h = &c->hdrs[c->nhdrs++];
		h->name = (uint32_t)c->scratch.len;
		h->name_len = 0;
		h->value = 0;
		h->value_len = 0;
	} else if (to == PART_VALUE) {
		c->hdrs[c->nhdrs - 1].value = (uint32_t)c->scratch.len;
	}
	c->part = to;
	return 0;
}

static int head_data(http_conn_t *c, enum head_part part, const char *at, size_t n)
{
	if (head_count(c, n) != 0 || head_switch(c, part) != 0)
		return -1;
	if (buf_add(&c->scratch, at, n) != 0)
		return req_fail(c, 500, "Out of memory", true);
	if (part == PART_URL)
		c->url_len += (uint32_t)n;
	else if (part == PART_FIELD)
		c->hdrs[c->nhdrs - 1].name_len += (uint32_t)n;
	else
		c->hdrs[c->nhdrs - 1].value_len += (uint32_t)n;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	return head_data(p->data, PART_URL, at, n);
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
	return head_data(p->data, PART_FIELD, at, n);
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
	return head_data(p->data, PART_VALUE, at, n);
}

/* Split the URL (NUL-terminated at scratch[0..url_len]) into path and
 * query, in place. */
static int req_split_url(http_conn_t *c)
{
	char *url = c->scratch.data;
	size_t path_off = 0, path_len = c->url_len;
	const char *query = "";
	if (url[0] != '/') {
		struct http_parser_url u;
		http_parser_url_init(&u);
		if (c->url_len == 1 && url[0] == '*') {
			c->req.path = url;
			c->req.path_len = 1;
			c->req.query = "";
			return 0;
		}
		if (http_parser_parse_url(url, c->url_len, 0, &u) != 0)
			return -1;
		if (!(u.field_set & (1 << UF_PATH))) {
			c->req.path = "/";
			c->req.path_len = 1;
			c->req.query =
			    u.field_set & (1 << UF_QUERY) ? url + u.field_data[UF_QUERY].off : "";
			if (*c->req.query)
				url[u.field_data[UF_QUERY].off + u.field_data[UF_QUERY].len] = '\0';
			return 0;
		}
		path_off = u.field_data[UF_PATH].off;
		path_len = c->url_len - path_off;
	}
	char *path = url + path_off;
	for (size_t i = 0; i < path_len; i++) {
		if (path[i] == '?' || path[i] == '#') {
			if (path[i] == '?') {
				query = path + i + 1;
				char *hash = strchr(path + i + 1, '#');
				if (hash)
					*hash = '\0';
			}
			path_len = i;
			break;
		}
	}
	c->req.query = query;
	c->req.path_len = (size_t)str_urldecode(path, path_len, path, path_len + 1, 0);
	c->req.path = path;
	return 0;
}

/* Trim blanks around header values, in place (the parser leaves trailing
 * ones). */
static void req_trim_values(http_conn_t *c)
{
	for (unsigned i = 0; i < c->nhdrs; i++) {
		http_hdr_t *h = &c->hdrs[i];
		char *v = c->scratch.data + h->value;
		while (h->value_len && (v[h->value_len - 1] == ' ' || v[h->value_len - 1] == '\t'))
			v[--h->value_len] = '\0';
		while (h->value_len && (*v == ' ' || *v == '\t')) {
			h->value++;
			h->value_len--;
			v++;
		}
	}
}

static enum http_method req_method(unsigned m)
{
	switch (m) {
	case HTTP_GET:
		return HTTP_M_GET;
	case HTTP_POST:
		return HTTP_M_POST;
	case HTTP_HEAD:
		return HTTP_M_HEAD;
	case HTTP_OPTIONS:
		return HTTP_M_OPTIONS;
	case HTTP_PUT:
		return HTTP_M_PUT;
	case HTTP_DELETE:
		return HTTP_M_DELETE;
	case HTTP_PATCH:
		return HTTP_M_PATCH;
	default:
		return HTTP_M_OTHER;
	}
}

static void conn_queue_continue(http_conn_t *c);

static int on_headers_complete(http_parser *p)
{
	http_conn_t *c = p->data;
	if (c->part == PART_NONE)
		return req_fail(c, 400, "Missing request target", true);
	if (buf_add(&c->scratch, "", 1) != 0)
		return req_fail(c, 500, "Out of memory", true);
	if (c->nhdrs && c->part == PART_FIELD)
		c->hdrs[c->nhdrs - 1].value = (uint32_t)c->scratch.len - 1;
	c->part = PART_NONE;
	req_trim_values(c);
	if (req_split_url(c) != 0)
		return req_fail(c, 400, "Invalid request target", true);
	c->req.method = req_method(p->method);
	if (c->req.method == HTTP_M_HEAD)
		c->head_only = true;
	const char *ct = http_request_header(&c->req, "Content-Type");
	c->req.content_type = ct ? ct : "";

	if ((p->flags & F_CONTENTLENGTH) && p->content_length > c->srv->cfg->max_body_bytes)
		return req_fail(c, 413, "Request body is too large", true);
	const char *expect = http_request_header(&c->req, "Expect");
	bool expect_continue =
	    expect && strcasecmp(expect, "100-continue") == 0 && p->http_minor >= 1;
	const char *ce = http_request_header(&c->req, "Content-Encoding");
	if (ce && http_body_coding_parse(ce, &c->coding) != 0) {
		/* A client waiting for "100 Continue" gets the answer now, and the
		 * connection closes since its body may still follow. */
		c->coding = HTTP_CODING_IDENTITY;
		return req_fail(c, 415, "Content-Encoding is not supported", expect_continue);
	}
	if (c->coding != HTTP_CODING_IDENTITY) {
		if (http_inflate_start(&c->inflate, c->coding) != 0)
			return req_fail(c, 500, "Out of memory", true);
		c->req.body_was_gzip = true;
	}
	if (expect_continue)
		conn_queue_continue(c);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	http_conn_t *c = p->data;
	size_t max = c->srv->cfg->max_body_bytes;
	c->raw_body += n;
	if (c->raw_body > max)
		return req_fail(c, 413, "Request body is too large", true);
	if (c->err_status)
		return 0; /* skip the body of a request already answered with an error */
	if (c->coding == HTTP_CODING_IDENTITY) {
		if (buf_add(&c->body, at, n) != 0)
			return req_fail(c, 500, "Out of memory", true);
		return 0;
	}
	int rc = http_inflate_feed(&c->inflate, at, n, &c->body, max);
	if (rc == -E2BIG)
		return req_fail(c, 413, "Decompressed request body is too large", false);
	if (rc == -EBADMSG)
		return req_fail(c, 400, "Invalid compressed request body", false);
	if (rc != 0)
		return req_fail(c, 500, "Out of memory", true);
	return 0;
}

/* ---- Responses ---------------------------------------------------------- */

static int conn_flush_body(http_conn_t *c, const char *body, size_t len);

static void conn_queue_continue(http_conn_t *c)
{
	if (!c->err_status && BUF_ADD_LIT(&c->out, "HTTP/1.1 100 Continue\r\n\r\n") != 0)
		req_fail(c, 500, "Out of memory", true);
}

static const char cors_headers[] = "Access-Control-Allow-Origin: *\r\n"
                                   "Access-Control-Expose-Headers: *\r\n"
                                   "Access-Control-Allow-Credentials: true\r\n";

/* Status line and the headers every response has, without the final CRLF. */
static int out_head(buf_t *o, int status, const char *ct, size_t body_len, bool keep)
{
	if (status == 200) {
		if (BUF_ADD_LIT(o, "HTTP/1.1 200 OK\r\n"))
			return -ENOMEM;
	} else if (BUF_ADD_LIT(o, "HTTP/1.1 ") || buf_add_uint(o, (uint64_t)status) ||
	           BUF_ADD_LIT(o, " ") || buf_add_str(o, status_reason(status)) ||
	           BUF_ADD_LIT(o, "\r\n")) {
		return -ENOMEM;
	}
	if (ct &&
	    (BUF_ADD_LIT(o, "Content-Type: ") || buf_add_str(o, ct) || BUF_ADD_LIT(o, "\r\n")))
		return -ENOMEM;
	if (BUF_ADD_LIT(o, "Content-Length: ") || buf_add_uint(o, body_len) ||
	    BUF_ADD_LIT(o, "\r\n") || BUF_ADD_LIT(o, cors_headers))
		return -ENOMEM;
	return keep ? BUF_ADD_LIT(o, "Connection: keep-alive\r\n")
	            : BUF_ADD_LIT(o, "Connection: close\r\n");
}

static int out_header(buf_t *o, const char *name, const char *value)
{
	if (buf_add_str(o, name) || BUF_ADD_LIT(o, ": ") || buf_add_str(o, value) ||
	    BUF_ADD_LIT(o, "\r\n"))
		return -ENOMEM;
	return 0;
}

/* CORS preflight (API.md §0): 200, echoing what was asked for. */
static int conn_queue_preflight(http_conn_t *c, bool keep)
{
	const char *m = http_request_header(&c->req, "Access-Control-Request-Method");
	const char *h = http_request_header(&c->req, "Access-Control-Request-Headers");
	buf_t *o = &c->out;
	if (out_head(o, 200, NULL, 0, keep) ||
	    out_header(o, "Access-Control-Allow-Methods",
	               m && *m ? m : "GET, POST, PUT, DELETE, HEAD, OPTIONS") ||
	    (h && *h && out_header(o, "Access-Control-Allow-Headers", h)) ||
	    BUF_ADD_LIT(o, "Access-Control-Max-Age: 3600\r\n\r\n"))
		return -ENOMEM;
	return 0;
}

static int conn_queue_res(http_conn_t *c, const http_response_t *res, bool keep)
{
	int status = res->status >= 100 && res->status <= 999 ? res->status : 500;
	const char *ct = res->content_type ? res->content_type : HTTP_DEFAULT_CT;
	buf_t *o = &c->out;
	if (out_head(o, status, ct, res->body.len, keep))
		return -ENOMEM;
	if (status == 405 && res->allow && out_header(o, "Allow", res->allow))
		return -ENOMEM;
	if (BUF_ADD_LIT(o, "\r\n"))
		return -ENOMEM;
	if (c->head_only || res->body.len == 0)
		return 0;
	if (res->body.len <= HTTP_COPY_BODY_MAX || c->fd < 0)
		return buf_add(o, res->body.data, res->body.len);
	return conn_flush_body(c, res->body.data, res->body.len);
}

/* Answer the complete request in c->req: error, preflight or dispatch. */
static void conn_respond(http_conn_t *c, bool keep)
{
	http_response_t *res = &c->res;
	res->status = 200;
	res->content_type = NULL;
	res->allow = NULL;
	buf_reset(&res->body);
	int rc;
	if (c->err_status) {
		c->linger |= c->err_fatal;
		log_debug("%s: %s: %s %s: %d %s", __func__, c->peer_ip,
		          http_method_str((enum http_parser_method)c->parser.method), c->req.path,
		          c->err_status, c->err_msg);
		http_res_error(res, &c->req, c->err_status, c->err_msg);
		rc = conn_queue_res(c, res, keep);
	} else if (c->req.method == HTTP_M_OPTIONS) {
		rc = conn_queue_preflight(c, keep);
	} else {
		if (c->req.method == HTTP_M_HEAD)
			c->req.method = HTTP_M_GET;
		dispatch_fn(&c->req, res);
		if (c->head_only)
			c->req.method = HTTP_M_HEAD;
		rc = conn_queue_res(c, res, keep);
	}
	if (rc != 0)
		c->close_after = true; /* out of memory: what was queued goes, then close */
	observe_fn(&c->req, c->err_status ? c->err_status : res->status,
	           (clock_mono_ns() - c->t_start_ns) / 1000u);
	buf_recycle(&res->body);
	c->served++;
}

static int on_message_complete(http_parser *p)
{
	http_conn_t *c = p->data;
	c->in_message = false;
	if (!c->err_status && c->coding != HTTP_CODING_IDENTITY &&
	    http_inflate_finish(&c->inflate) != 0)
		req_fail(c, 400, "Truncated compressed request body", false);
	if (buf_add(&c->body, "", 1) == 0) {
		c->body.len--;
		c->req.body = c->body.data;
		c->req.body_len = c->body.len;
	} else {
		req_fail(c, 500, "Out of memory", true);
	}
	if (p->upgrade && upgrade_fn && !c->err_status) {
		c->upgrade_pending = true;
		http_parser_pause(p, 1);
		return 0;
	}
	bool keep = http_should_keep_alive(p) && !p->upgrade && !c->srv->draining &&
	            !c->err_fatal && !c->close_after;
	conn_respond(c, keep);
	buf_recycle(&c->body);
	if (!keep)
		c->close_after = true;
	if (c->close_after) {
		http_parser_pause(p, 1);
	} else if (c->out.len - c->out_off > HTTP_OUT_HIGH) {
		c->out_paused = true;
		http_parser_pause(p, 1);
	}
	return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- Feeding bytes ------------------------------------------------------ */

static void conn_parse_error(http_conn_t *c, enum http_errno e)
{
	if (!c->err_status) {
		if (e == HPE_HEADER_OVERFLOW)
			req_fail(c, 431, "Request header is too large", true);
		else
			req_fail(c, 400, http_errno_description(e), true);
	}
	c->err_fatal = true;
	conn_respond(c, false);
	c->close_after = true;
}

static int conn_stash(http_conn_t *c, const char *data, size_t len)
{
	if (len == 0)
		return 0;
	if (data >= c->in_pending.data && data < c->in_pending.data + c->in_pending.cap) {
		memmove(c->in_pending.data, data, len);
		c->in_pending.len = len;
		return 0;
	}
	if (buf_add(&c->in_pending, data, len) != 0) {
		c->close_after = true;
		return -ENOMEM;
	}
	return 0;
}

static void conn_free(http_conn_t *c, bool close_fd);
static bool conn_upgrade(http_conn_t *c, const char *rest, size_t rest_len);

/* Parse bytes; returns 1 when the connection was handed to the upgrade
 * hook (c is gone), else 0. */
static int conn_feed(http_conn_t *c, const char *data, size_t len)
{
	while (len > 0 && !c->close_after) {
		size_t n = http_parser_execute(&c->parser, &parser_settings, data, len);
		enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
		data += n;
		len -= n;
		if (e == HPE_PAUSED) {
			if (c->upgrade_pending)
				return conn_upgrade(c, data, len) ? 1 : 0;
			if (c->close_after)
				break;
			conn_stash(c, data, len);
			break;
		}
		if (e != HPE_OK) {
			conn_parse_error(c, e);
			break;
		}
		if (n == 0)
			break;
	}
	return 0;
}

/* Resume a parser paused for output; the held input is parsed again. */
static int conn_resume(http_conn_t *c)
{
	c->out_paused = false;
	http_parser_pause(&c->parser, 0);
	if (c->in_pending.len == 0)
		return 0;
	size_t len = c->in_pending.len;
	c->in_pending.len = 0;
	/* conn_stash() moves any remainder to the front of in_pending. */
	return conn_feed(c, c->in_pending.data, len);
}

static bool conn_upgrade(http_conn_t *c, const char *rest, size_t rest_len)
{
	c->upgrade_pending = false;
	http_parser_pause(&c->parser, 0);
	if (c->fd >= 0) {
		http_upgrade_t up = {
		    .fd = c->fd,
		    .base = c->srv->base,
		    .req = &c->req,
		    .rest = rest,
		    .rest_len = rest_len,
		    .unsent = c->out.data + c->out_off,
		    .unsent_len = c->out.len - c->out_off,
		};
		if (upgrade_fn(&up)) {
			conn_free(c, false);
			return true;
		}
	}
	conn_respond(c, false);
	c->close_after = true;
	return false;
}

/* ---- Connection I/O ----------------------------------------------------- */

static void srv_conns_changed(http_server_t *s);
static void srv_accept_resume(http_server_t *s);
static void conn_linger(http_conn_t *c);

static void conn_touch(http_conn_t *c)
{
	http_server_t *s = c->srv;
	c->last_ms = clock_mono_coarse_ms();
	if (s->tail == c)
		return;
	/* unlink, then append at the tail (most recently active) */
	if (c->prev)
		c->prev->next = c->next;
	else
		s->head = c->next;
	c->next->prev = c->prev;
	c->prev = s->tail;
	c->next = NULL;
	s->tail->next = c;
	s->tail = c;
}

/* Send pending output plus, optionally, `extra` right after it; what the
 * socket does not take of `extra` is appended to the output buffer.
 * 0, or -errno when the connection is broken. */
static int conn_send(http_conn_t *c, const char *extra, size_t extra_len)
{
	size_t pending = c->out.len - c->out_off;
	if (c->fd < 0) {
		c->out.len = c->out_off = 0;
		return 0;
	}
	if (pending == 0 && extra_len == 0)
		return 0;
	struct iovec iov[2];
	int niov = 0;
	if (pending)
		iov[niov++] = (struct iovec){c->out.data + c->out_off, pending};
	if (extra_len)
		iov[niov++] = (struct iovec){(void *)(uintptr_t)extra, extra_len};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
	ssize_t w;
	do
		w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (w < 0 && errno == EINTR);
	if (w < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		w = 0;
	}
	size_t sent = (size_t)w;
	if (sent > 0)
		c->last_ms = clock_mono_coarse_ms();
	if (sent >= pending) {
		c->out.len = c->out_off = 0;
		sent -= pending;
		if (extra_len > sent)
			return buf_add(&c->out, extra + sent, extra_len - sent);
		return 0;
	}
	c->out_off += sent;
	if (extra_len)
		return buf_add(&c->out, extra, extra_len);
	if (c->out_off > (c->out.cap >> 1)) { /* compact when half is sent */
		memmove(c->out.data, c->out.data + c->out_off, c->out.len - c->out_off);
		c->out.len -= c->out_off;
		c->out_off = 0;
	}
	return 0;
}

static int conn_flush_body(http_conn_t *c, const char *body, size_t len)
{
	int rc = conn_send(c, body, len);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0)
		c->close_after = true; /* the next conn_send reports the error again */
	return 0;
}

static void conn_want(http_conn_t *c, bool rd, bool wr)
{
	if (rd != c->reading) {
		if (rd)
			event_add(&c->ev_read, NULL);
		else
			event_del(&c->ev_read);
		c->reading = rd;
	}
	if (wr != c->writing) {
		if (wr)
			event_add(&c->ev_write, NULL);
		else
			event_del(&c->ev_write);
		c->writing = wr;
	}
}

/* After reading or writing: send, then decide what to wait for next, or
 * close. */
static void conn_after_io(http_conn_t *c)
{
	for (;;) {
		if (conn_send(c, NULL, 0) != 0) {
			conn_free(c, true);
			return;
		}
		if (c->out.len != c->out_off)
			break;
		if (c->close_after || (c->read_eof && !c->out_paused)) {
			if (c->linger && !c->read_eof)
				conn_linger(c);
			else
				conn_free(c, true);
			return;
		}
		if (!c->out_paused)
			break;
		if (conn_resume(c) != 0)
			return; /* handed over to the upgrade hook */
	}
	if (c->out.len == 0)
		buf_recycle(&c->out);
	conn_want(c, !c->close_after && !c->read_eof && !c->out_paused, c->out.len != c->out_off);
}

static void conn_on_linger_end(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_free(arg, true);
}

/* After an error answer the client may still be sending (a body we refused):
 * closing with unread input would reset the connection and could destroy
 * the answer before the client reads it.  So shut the write side and
 * discard input until EOF or HTTP_LINGER_MS. */
static void conn_linger(http_conn_t *c)
{
	struct timeval tv = {HTTP_LINGER_MS / 1000, (HTTP_LINGER_MS % 1000) * 1000};
	if (shutdown(c->fd, SHUT_WR) != 0) {
		conn_free(c, true);
		return;
	}
	c->lingering = true;
	conn_want(c, true, false);
	evtimer_assign(&c->ev_linger, c->srv->base, conn_on_linger_end, c);
	evtimer_add(&c->ev_linger, &tv);
}

static void conn_linger_read(http_conn_t *c)
{
	for (int i = 0; i < 16; i++) { /* bounded per wakeup; the timer bounds the total */
		ssize_t n = recv(c->fd, c->srv->rbuf, sizeof(c->srv->rbuf), 0);
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		conn_free(c, true); /* EOF or error */
		return;
	}
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
	http_conn_t *c = arg;
	http_server_t *s = c->srv;
	(void)what;
	if (c->lingering) {
		conn_linger_read(c);
		return;
	}
	for (int i = 0; i < 4 && !c->close_after && !c->out_paused; i++) {
		ssize_t n = recv(fd, s->rbuf, sizeof(s->rbuf), 0);
		if (n > 0) {
			conn_touch(c);
			if (conn_feed(c, s->rbuf, (size_t)n) != 0)
				return;
			if ((size_t)n < sizeof(s->rbuf))
				break;
			continue;
		}
		if (n == 0) {
			c->read_eof = true;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		conn_free(c, true); /* reset by peer and the like */
		return;
	}
	conn_after_io(c);
}

static void conn_on_write(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_after_io(arg);
}

/* ---- Connection objects ------------------------------------------------- */

static http_conn_t *conn_alloc(http_server_t *s)
{
	http_conn_t *c = s->free_list;
	if (c) {
		s->free_list = c->next;
		s->nfree--;
	} else {
		c = calloc(1, sizeof(*c));
		if (!c)
			return NULL;
	}
	c->srv = s;
	c->fd = -1;
	c->prev = c->next = NULL;
	c->reading = c->writing = false;
	c->ev_init = false;
	c->in_message = c->close_after = c->read_eof = false;
	c->out_paused = c->upgrade_pending = false;
	c->linger = c->lingering = false;
	c->served = 0;
	c->out.len = c->out_off = 0;
	c->in_pending.len = 0;
	c->peer_ip[0] = '\0';
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	req_reset(c);
	/* link at the tail: most recently active */
	c->prev = s->tail;
	if (s->tail)
		s->tail->next = c;
	else
		s->head = c;
	s->tail = c;
	s->nconns++;
	c->last_ms = clock_mono_coarse_ms();
	c->t_start_ns = clock_mono_ns();
	return c;
}

static void conn_release_buffers(http_conn_t *c)
{
	buf_free(&c->scratch);
	buf_free(&c->body);
	buf_free(&c->out);
	buf_free(&c->in_pending);
	buf_free(&c->res.body);
	http_inflate_free(&c->inflate);
}

static void conn_free(http_conn_t *c, bool close_fd)
{
	http_server_t *s = c->srv;
	if (c->ev_init) {
		event_del(&c->ev_read);
		event_del(&c->ev_write);
	}
	if (c->lingering)
		event_del(&c->ev_linger);
	if (c->fd >= 0 && close_fd)
		close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		s->tail = c->prev;
	s->nconns--;
	if (s->nfree < HTTP_FREE_CONNS && !s->draining) {
		buf_recycle(&c->scratch);
		buf_recycle(&c->body);
		buf_recycle(&c->out);
		buf_recycle(&c->in_pending);
		buf_recycle(&c->res.body);
		c->next = s->free_list;
		s->free_list = c;
		s->nfree++;
	} else {
		conn_release_buffers(c);
		free(c);
	}
	srv_accept_resume(s);
	srv_conns_changed(s);
}

int http_server_add_conn(http_server_t *s, int fd, const char *peer_ip)
{
	http_conn_t *c = conn_alloc(s);
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	snprintf(c->peer_ip, sizeof(c->peer_ip), "%s", peer_ip ? peer_ip : "");
	event_assign(&c->ev_read, s->base, fd, EV_READ | EV_PERSIST, conn_on_read, c);
	event_assign(&c->ev_write, s->base, fd, EV_WRITE | EV_PERSIST, conn_on_write, c);
	c->ev_init = true;
	conn_want(c, true, false);
	srv_conns_changed(s);
	return 0;
}

http_conn_t *http_conn_new_detached(http_server_t *s)
{
	http_conn_t *c = conn_alloc(s);
	if (c)
		snprintf(c->peer_ip, sizeof(c->peer_ip), "%s", "fuzz");
	return c;
}

int http_conn_feed(http_conn_t *c, const void *data, size_t len)
{
	conn_feed(c, data, len);
	while (c->out_paused && !c->close_after) {
		c->out.len = c->out_off = 0; /* as if the output were sent */
		conn_resume(c);
	}
	c->out.len = c->out_off = 0;
	return c->close_after ? 1 : 0;
}

void http_conn_free(http_conn_t *c)
{
	conn_free(c, false);
}

/* ---- Server: accept, idle sweep, drain ---------------------------------- */

static void srv_conns_changed(http_server_t *s)
{
	if (s->conns_fn)
		s->conns_fn(s->conns_arg, s->nconns);
}

static bool srv_full(const http_server_t *s)
{
	return s->cfg->max_connections && s->nconns >= s->cfg->max_connections;
}

static void srv_listen(http_server_t *s, bool on)
{
	if (s->listen_fd < 0 || on == s->listening)
		return;
	if (on)
		event_add(&s->ev_listen, NULL);
	else
		event_del(&s->ev_listen);
	s->listening = on;
}

static void srv_accept_resume(http_server_t *s)
{
	if (!s->draining && !s->retry_pending && !srv_full(s))
		srv_listen(s, true);
}

static void srv_on_retry(evutil_socket_t fd, short what, void *arg)
{
	http_server_t *s = arg;
	(void)fd;
	(void)what;
	s->retry_pending = false;
	srv_accept_resume(s);
}

static void srv_accept_error(http_server_t *s, int err)
{
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		/* Out of descriptors or memory: back off instead of spinning. */
		if (!s->emfile_logged)
			log_warn("%s: accept: %s; pausing accepts", __func__, strerror(err));
		s->emfile_logged = true;
		srv_listen(s, false);
		s->retry_pending = true;
		struct timeval tv = {0, HTTP_ACCEPT_RETRY_MS * 1000};
		event_add(&s->ev_retry, &tv);
		return;
	}
	log_warn("%s: accept: %s", __func__, strerror(err));
}

static void peer_ip_text(const struct sockaddr_storage *ss, char *out, size_t len)
{
	out[0] = '\0';
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out,
		          (socklen_t)len);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out,
		          (socklen_t)len);
}

static void srv_on_accept(evutil_socket_t lfd, short what, void *arg)
{
	http_server_t *s = arg;
	(void)what;
	for (int i = 0; i < HTTP_ACCEPT_BATCH; i++) {
		if (srv_full(s)) {
			srv_listen(s, false);
			return;
		}
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				srv_accept_error(s, errno);
			return;
		}
		s->emfile_logged = false;
		int one = 1;
		if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		char ip[INET6_ADDRSTRLEN];
		peer_ip_text(&ss, ip, sizeof(ip));
		http_server_add_conn(s, fd, ip);
	}
}

static void srv_on_sweep(evutil_socket_t fd, short what, void *arg)
{
	http_server_t *s = arg;
	(void)fd;
	(void)what;
	uint64_t now = clock_mono_coarse_ms();
	uint32_t idle = s->cfg->idle_timeout_ms;
	while (s->head && now - s->head->last_ms >= idle) {
		http_conn_t *c = s->head;
		log_debug("%s: %s: idle for %u ms, closing", __func__, c->peer_ip, idle);
		conn_free(c, true);
	}
}

int http_server_new(struct event_base *base, const config_t *cfg, int listen_fd,
                    http_server_t **out)
{
	http_server_t *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base = base;
	s->cfg = cfg;
	s->listen_fd = listen_fd;
	http_parser_set_max_header_size(cfg->max_header_bytes);
	if (listen_fd >= 0)
		event_assign(&s->ev_listen, base, listen_fd, EV_READ | EV_PERSIST, srv_on_accept,
		             s);
	evtimer_assign(&s->ev_retry, base, srv_on_retry, s);
	if (cfg->idle_timeout_ms) {
		uint32_t every = cfg->idle_timeout_ms / 4;
		every = every < 10 ? 10 : every > 1000 ? 1000 : every;
		struct timeval tv = {every / 1000, (every % 1000) * 1000};
		event_assign(&s->ev_sweep, base, -1, EV_PERSIST, srv_on_sweep, s);
		event_add(&s->ev_sweep, &tv);
	}
	srv_listen(s, true);
	*out = s;
	return 0;
}

void http_server_set_conns_cb(http_server_t *s, http_conns_fn fn, void *arg)
{
	s->conns_fn = fn;
	s->conns_arg = arg;
}

unsigned http_server_conns(const http_server_t *s)
{
	return s->nconns;
}

void http_server_drain(http_server_t *s)
{
	s->draining = true;
	srv_listen(s, false);
	event_del(&s->ev_retry);
	for (http_conn_t *c = s->head, *next; c; c = next) {
		next = c->next;
		/* A request in progress finishes; its response says "close". */
		if (c->in_message)
			continue;
		if (c->out.len != c->out_off) {
			c->close_after = true;
			continue;
		}
		/* An idle connection is closed, unless a request already
		 * arrived (its read event serves it, with "close"), or it was
		 * just accepted and has not sent its first request yet: closing
		 * those would reset a request the client already sent, which no
		 * client can tell from a lost one.  The drain deadline bounds
		 * the wait. */
		char b;
		ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		bool pending = n > 0;
		bool fresh = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && c->served == 0;
		if (!pending && !fresh)
			conn_free(c, true);
	}
}

void http_server_free(http_server_t *s)
{
	if (!s)
		return;
	s->draining = true;
	s->conns_fn = NULL;
	srv_listen(s, false);
	event_del(&s->ev_retry);
	if (event_initialized(&s->ev_sweep))
		event_del(&s->ev_sweep);
	while (s->head)
		conn_free(s->head, true);
	while (s->free_list) {
		http_conn_t *c = s->free_list;
		s->free_list = c->next;
		conn_release_buffers(c);
		free(c);
	}
	free(s);
}

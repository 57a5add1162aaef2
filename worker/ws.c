/*
 * ws.c - the worker's WebSocket sessions (RFC 6455): handshake, I/O, the
 * close handshake, limits and lifetimes.
 *
 * The HTTP transport (http_io.c) hands over a connection through its upgrade
 * hook (http_conn.h) when a request for one of these paths arrives:
 *   /artemis/websocket/registry/heartbeat              heartbeats (ws_heartbeat.c)
 *   /artemis/websocket/discovery/instance-change       per-service push (ws_push.c)
 *   /artemis/websocket/discovery/all-instance-change   every change (ws_push.c)
 *   /ws/registry/heartbeat, /ws/discovery/...          the 1.x paths of the same
 *   /api/v1/discovery/subscribe/{serviceId}            API.md §A: one service at once
 * From then on this file owns the socket: it answers the handshake (101,
 * or 426 for a version other than 13, 400 for a bad key, 503 while
 * draining or full), reads frames through the codec (ws_frame.c) and calls
 * the endpoint's handler once per complete text message.
 *
 * Rules: pings are answered at once with a pong; a close is answered with
 * a close and the socket closed; protocol errors close with their code
 * (1002, 1003 binary, 1007 bad UTF-8, 1009 too big).  Output goes straight
 * to the socket; what it does not take is queued, and a session with more
 * than [websocket] max_output_bytes queued is a slow consumer: closed with
 * 1008 and logged once.  Every session is closed ([websocket]
 * session_ttl_ms) after it was established, whatever its traffic, as Java
 * does (clients reconnect); a sweep each WS_SWEEP_MS does that and ends
 * close handshakes after WS_CLOSE_WAIT_MS without the peer answering or
 * taking any of the output still queued for it.
 *
 * Sessions are freed only from the reap event, never inside a callback:
 * push iterates subscriber arrays and must not see one vanish under it.
 *
 * Must not: block, log per message, or buffer without bound.
 */
#include "ws.h"

#include "http_conn.h"
#include "metrics.h"
#include "ws_int.h"

#include "artemis/clock.h"
#include "artemis/log.h"

#include <errno.h>
#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define WS_SWEEP_MS         1000
#define WS_CLOSE_WAIT_MS    2000
#define WS_READ_BUF         (64u << 10)
#define WS_READS_PER_EVENT  4
#define WS_GUID             "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_SUBSCRIBE_PREFIX "/api/v1/discovery/subscribe/"

typedef struct {
	ws_session_t *head, *tail;
	unsigned n;
} ws_list_t;

static struct {
	worker_t *w;
	ws_sessions_fn sessions_fn;
	void *sessions_arg;
	bool draining;
	bool ready;
	ws_list_t open, closing, dead;
	struct event ev_sweep;
	struct event ev_reap;
	uint8_t rbuf[WS_READ_BUF];
} W;

static const ws_parser_cb_t ws__parser_cb;

const config_t *ws_cfg(void)
{
	return W.w->cfg;
}

/* ---- Lists ---------------------------------------------------------------- */

static void ws__list_add(ws_list_t *l, ws_session_t *s)
{
	s->next = NULL;
	s->prev = l->tail;
	if (l->tail)
		l->tail->next = s;
	else
		l->head = s;
	l->tail = s;
	l->n++;
}

static void ws__list_del(ws_list_t *l, ws_session_t *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		l->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		l->tail = s->prev;
	s->prev = s->next = NULL;
	l->n--;
}

static ws_list_t *ws__list_of(ws_session_t *s)
{
	switch (s->state) {
	case WS_ST_OPEN:
		return &W.open;
	case WS_ST_DEAD:
		return &W.dead;
	default:
		return &W.closing;
	}
}

static void ws__set_state(ws_session_t *s, enum ws_state st)
{
	ws_list_t *from = ws__list_of(s), *to;

	s->state = (uint8_t)st;
	to = ws__list_of(s);
	if (from != to) {
		ws__list_del(from, s);
		ws__list_add(to, s);
	}
}

unsigned ws_sessions(void)
{
	return W.open.n + W.closing.n;
}

/* ---- Gauges ----------------------------------------------------------------- */

static void ws__count(ws_session_t *s, bool on)
{
	if (s->counted == on || s->kind == WS_KIND_ALL || s->kind == WS_KIND_EVENTS ||
	    s->kind == WS_KIND_NONE)
		return;
	s->counted = on;
	metrics_ws_session(
	    s->kind == WS_KIND_HEARTBEAT ? METRICS_WS_REGISTRY : METRICS_WS_DISCOVERY, on ? 1 : -1);
}

/* ---- Teardown ---------------------------------------------------------------- */

static void ws__free(ws_session_t *s)
{
	ws_push_detach(s);
	ws_parser_release(&s->parser);
	buf_free(&s->out);
	free(s);
}

/* Close the socket now; the memory goes at the next reap event. */
static void ws__kill(ws_session_t *s)
{
	if (s->state == WS_ST_DEAD)
		return;
	ws__count(s, false);
	event_del(&s->ev);
	if (s->tls) {
		tls_close_notify(s->tls);
		tls_conn_free(s->tls);
		s->tls = NULL;
	}
	close(s->fd);
	s->fd = -1;
	ws__set_state(s, WS_ST_DEAD);
	event_active(&W.ev_reap, EV_TIMEOUT, 0);
	if (W.sessions_fn)
		W.sessions_fn(W.sessions_arg, ws_sessions());
}

static void ws__on_reap(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	while (W.dead.head) {
		ws_session_t *s = W.dead.head;
		ws__list_del(&W.dead, s);
		ws__free(s);
	}
}

/* ---- Output ----------------------------------------------------------------- */

static void ws__on_event(evutil_socket_t fd, short what, void *arg);

static void ws__want_write(ws_session_t *s, bool on)
{
	if (s->ev_write == on || s->state == WS_ST_DEAD)
		return;
	event_del(&s->ev);
	event_assign(&s->ev, W.w->base, s->fd, EV_READ | EV_PERSIST | (on ? EV_WRITE : 0),
	             ws__on_event, s);
	event_add(&s->ev, NULL);
	s->ev_write = on;
}

static size_t ws__pending(const ws_session_t *s)
{
	return s->out.len - s->out_off;
}

static int ws__queue(ws_session_t *s, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (s->out_off > 0 && s->out_off == s->out.len)
		s->out.len = s->out_off = 0;
	return buf_append(&s->out, p, n);
}

/* WSS: queue everything, then hand the TLS layer what it takes (it may
 * hold a record back and wants the same bytes again). */
static int ws__write_tls(ws_session_t *s, const struct iovec *iov, int niov)
{
	size_t sent = 0;
	for (int i = 0; i < niov; i++)
		if (ws__queue(s, iov[i].iov_base, iov[i].iov_len) != 0)
			return -ENOMEM;
	while (ws__pending(s) > 0) {
		ssize_t w = tls_write(s->tls, s->out.data + s->out_off, ws__pending(s));
		if (w == -EAGAIN)
			break;
		if (w < 0)
			return (int)w;
		s->out_off += (size_t)w;
		sent += (size_t)w;
	}
	if (sent > 0 && s->state != WS_ST_OPEN)
		s->deadline_ms = clock_mono_ms() + WS_CLOSE_WAIT_MS; /* the peer still reads */
	if (ws__pending(s) == 0) {
		buf_free(&s->out);
		s->out_off = 0;
	}
	ws__want_write(s, ws__pending(s) > 0);
	return 0;
}

/* Write queued output and then iov[0..niov) straight to the socket; what is
 * not taken is queued.  0, or -errno when the connection is broken. */
static int ws__write(ws_session_t *s, const struct iovec *iov, int niov)
{
	struct iovec v[3];
	size_t pending = ws__pending(s), total = 0, sent;
	int n = 0;
	ssize_t w;

	if (s->tls)
		return ws__write_tls(s, iov, niov);

	if (pending)
		v[n++] = (struct iovec){s->out.data + s->out_off, pending};
	for (int i = 0; i < niov && n < 3; i++)
		if (iov[i].iov_len)
			v[n++] = iov[i];
	for (int i = 0; i < n; i++)
		total += v[i].iov_len;
	if (total == 0)
		return 0;
	do
		w = writev(s->fd, v, n);
	while (w < 0 && errno == EINTR);
	if (w < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		w = 0;
	}
	sent = (size_t)w;
	if (sent > 0 && s->state != WS_ST_OPEN)
		s->deadline_ms = clock_mono_ms() + WS_CLOSE_WAIT_MS; /* the peer still reads */
	for (int i = 0; i < n; i++) {
		size_t len = v[i].iov_len;
		if (sent >= len) {
			sent -= len;
			if (i == 0 && pending)
				s->out_off = s->out.len;
			continue;
		}
		if (i == 0 && pending) {
			s->out_off += sent;
		} else if (ws__queue(s, (const char *)v[i].iov_base + sent, len - sent) != 0) {
			return -ENOMEM;
		}
		sent = 0;
	}
	if (ws__pending(s) == 0) {
		/* Nothing queued: give the memory back (idle sessions hold none). */
		buf_free(&s->out);
		s->out_off = 0;
	}
	ws__want_write(s, ws__pending(s) > 0);
	return 0;
}

static void ws__slow_consumer(ws_session_t *s)
{
	log_warn("%s: %s: %zu bytes of output not taken (max_output_bytes %u): closing 1008",
	         __func__, s->peer, ws__pending(s), ws_cfg()->ws_max_output_bytes);
	ws_session_close(s, WS_CLOSE_POLICY, "slow consumer");
}

static void ws__send_raw(ws_session_t *s, const uint8_t *hdr, size_t hlen, const void *payload,
                         size_t len)
{
	struct iovec iov[2] = {{(void *)(uintptr_t)hdr, hlen}, {(void *)(uintptr_t)payload, len}};
	int rc = ws__write(s, iov, 2);

	if (rc < 0) {
		if (rc == -ENOMEM)
			log_warn("%s: %s: out of memory", __func__, s->peer);
		ws__kill(s);
		return;
	}
	if (s->state == WS_ST_OPEN && ws__pending(s) > ws_cfg()->ws_max_output_bytes)
		ws__slow_consumer(s);
}

void ws_session_send_frame(ws_session_t *s, const uint8_t *hdr, size_t hlen, const void *payload,
                           size_t len)
{
	if (s->state != WS_ST_OPEN)
		return;
	ws__send_raw(s, hdr, hlen, payload, len);
}

void ws_session_send(ws_session_t *s, enum ws_opcode op, const void *payload, size_t len)
{
	uint8_t hdr[WS_FRAME_HDR_MAX];
	size_t hlen = ws_frame_header(hdr, op, len);

	ws_session_send_frame(s, hdr, hlen, payload, len);
}

/* ---- Closing ------------------------------------------------------------------ */

static void ws__send_close(ws_session_t *s, const uint8_t *payload, size_t len)
{
	uint8_t hdr[WS_FRAME_HDR_MAX];
	size_t hlen = ws_frame_header(hdr, WS_OP_CLOSE, len);

	ws__send_raw(s, hdr, hlen, payload, len);
}

void ws_session_close(ws_session_t *s, uint16_t code, const char *reason)
{
	uint8_t payload[WS_CONTROL_MAX];
	size_t len;

	if (s->state != WS_ST_OPEN)
		return;
	ws__count(s, false);
	s->deadline_ms = clock_mono_ms() + WS_CLOSE_WAIT_MS;
	ws__set_state(s, WS_ST_CLOSING);
	len = ws_close_payload(payload, code, reason);
	ws__send_close(s, payload, len);
}

/* Stop serving the session: it is closed once its queue is empty. */
static void ws__enter_flush_close(ws_session_t *s)
{
	if (s->state == WS_ST_OPEN) {
		ws__count(s, false);
		s->deadline_ms = clock_mono_ms() + WS_CLOSE_WAIT_MS;
	}
	if (s->state == WS_ST_OPEN || s->state == WS_ST_CLOSING)
		ws__set_state(s, WS_ST_FLUSH_CLOSE);
}

static void ws__close_after_flush(ws_session_t *s)
{
	ws__enter_flush_close(s);
	if (s->state == WS_ST_FLUSH_CLOSE && ws__pending(s) == 0)
		ws__kill(s);
}

/* ---- Parser callbacks ------------------------------------------------------------ */

static int ws__on_text(void *ctx, char *data, size_t len)
{
	ws_session_t *s = ctx;

	if (s->state != WS_ST_OPEN)
		return 0; /* closing: data frames are read and dropped */
	switch (s->kind) {
	case WS_KIND_HEARTBEAT:
		ws_heartbeat_on_text(s, data, len);
		break;
	case WS_KIND_CHANGE:
		ws_push_on_text(s, data, len);
		break;
	case WS_KIND_EVENTS:
		ws_events_on_text(s, data, len);
		break;
	default:
		break; /* all-instance-change: text messages are ignored */
	}
	return s->state == WS_ST_DEAD ? -1 : 0;
}

static int ws__on_control(void *ctx, enum ws_opcode op, const uint8_t *data, size_t len)
{
	ws_session_t *s = ctx;

	switch (op) {
	case WS_OP_PING:
		ws_session_send(s, WS_OP_PONG, data, len);
		return s->state == WS_ST_DEAD ? -1 : 0;
	case WS_OP_CLOSE:
		if (s->state == WS_ST_OPEN) {
			/* Echo the peer's code (RFC 6455 §5.5.1); no code, no payload. */
			ws__enter_flush_close(s);
			ws__send_close(s, data, len >= 2 ? 2 : 0);
		}
		ws__close_after_flush(s);
		return -1;
	default:
		return 0; /* pong */
	}
}

static const ws_parser_cb_t ws__parser_cb = {
    .on_text = ws__on_text,
    .on_control = ws__on_control,
};

/* ---- Input --------------------------------------------------------------------------- */

static const char *ws__close_reason(int code)
{
	switch (code) {
	case WS_CLOSE_UNACCEPTABLE:
		return "binary messages are not supported";
	case WS_CLOSE_BAD_DATA:
		return "text is not UTF-8";
	case WS_CLOSE_TOO_BIG:
		return "message too big";
	case WS_CLOSE_INTERNAL:
		return "out of memory";
	default:
		return "protocol error";
	}
}

static void ws__feed(ws_session_t *s, uint8_t *data, size_t len)
{
	int rc;

	if (s->state == WS_ST_FLUSH_CLOSE || s->parser.error)
		return; /* input after a failure or a close is discarded */
	rc = ws_parser_feed(&s->parser, data, len, &ws__parser_cb, s);
	if (rc > 0 && s->parser.error) {
		log_debug("%s: %s: closing %d", __func__, s->peer, rc);
		ws_session_close(s, (uint16_t)rc, ws__close_reason(rc));
	}
	if (!s->parser.in_message && s->parser.msg.cap > 0)
		ws_parser_release(&s->parser); /* idle sessions hold no buffer */
}

/* Bytes from the socket, decrypted on WSS: > 0, 0 EOF, -errno. */
static ssize_t ws__recv(ws_session_t *s)
{
	if (s->tls)
		return tls_read(s->tls, W.rbuf, sizeof(W.rbuf));
	ssize_t n = read(s->fd, W.rbuf, sizeof(W.rbuf));
	return n >= 0 ? n : -errno;
}

static void ws__on_readable(ws_session_t *s)
{
	for (int i = 0; i < WS_READS_PER_EVENT && s->state != WS_ST_DEAD; i++) {
		ssize_t n = ws__recv(s);
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN || n == -EWOULDBLOCK)
			return;
		if (n <= 0) {
			ws__kill(s);
			return;
		}
		ws__feed(s, W.rbuf, (size_t)n);
		/* TLS hands over a record at a time: read on until EAGAIN. */
		if ((size_t)n < sizeof(W.rbuf) && !s->tls)
			return;
	}
	if (s->state != WS_ST_DEAD && s->tls && tls_pending(s->tls))
		event_active(&s->ev, EV_READ, 0);
}

static void ws__on_event(evutil_socket_t fd, short what, void *arg)
{
	ws_session_t *s = arg;

	(void)fd;
	if (what & EV_WRITE) {
		if (ws__write(s, NULL, 0) < 0) {
			ws__kill(s);
			return;
		}
		if (s->state == WS_ST_FLUSH_CLOSE && ws__pending(s) == 0) {
			ws__kill(s);
			return;
		}
	}
	if (what & EV_READ)
		ws__on_readable(s);
}

/* ---- Lifetimes --------------------------------------------------------------------------- */

static void ws__on_sweep(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = clock_mono_ms();
	uint64_t ttl = ws_cfg()->ws_session_ttl_ms;

	(void)fd;
	(void)what;
	(void)arg;
	/* Open sessions are listed in the order they were established. */
	while (W.open.head && W.open.head->opened_ms + ttl <= now)
		ws_session_close(W.open.head, WS_CLOSE_NORMAL, "session ttl");
	/* A closing session lives while the peer takes its output (the
	 * deadline moves with each write), so this list is not sorted. */
	for (ws_session_t *s = W.closing.head, *next; s; s = next) {
		next = s->next;
		if (s->deadline_ms <= now)
			ws__kill(s);
	}
}

/* ---- Handshake ------------------------------------------------------------------------- */

static int ws__route(const http_request_t *req, const char **service)
{
	static const struct {
		const char *path;
		enum ws_kind kind;
	} paths[] = {
	    {"/artemis/websocket/registry/heartbeat", WS_KIND_HEARTBEAT},
	    {"/artemis/websocket/discovery/instance-change", WS_KIND_CHANGE},
	    {"/artemis/websocket/discovery/all-instance-change", WS_KIND_ALL},
	    /* The 1.x paths (API.md §8 trap 3), same messages. */
	    {"/ws/registry/heartbeat", WS_KIND_HEARTBEAT},
	    {"/ws/discovery/instance-change", WS_KIND_CHANGE},
	    {"/ws/discovery/all-instance-change", WS_KIND_ALL},
	    /* The Rust rewrite's event socket (MANAGEMENT.md §3.3). */
	    {"/ws", WS_KIND_EVENTS},
	};
	size_t plen = sizeof(WS_SUBSCRIBE_PREFIX) - 1;

	*service = NULL;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (strcmp(req->path, paths[i].path) == 0)
			return (int)paths[i].kind;
	if (req->path_len > plen && strncmp(req->path, WS_SUBSCRIBE_PREFIX, plen) == 0 &&
	    strchr(req->path + plen, '/') == NULL && req->path_len - plen <= SHM_MAX_SERVICE) {
		*service = req->path + plen;
		return WS_KIND_CHANGE;
	}
	return -1;
}

/* A token list header ("Upgrade: websocket", "Connection: keep-alive,
 * Upgrade") contains `want`, case-insensitively. */
static bool ws__header_has(const char *v, const char *want)
{
	size_t n = strlen(want);

	while (v && *v) {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		size_t len = strcspn(v, ",");
		size_t t = len;
		while (t > 0 && (v[t - 1] == ' ' || v[t - 1] == '\t'))
			t--;
		if (t == n && strncasecmp(v, want, n) == 0)
			return true;
		v += len;
	}
	return false;
}

/* Sec-WebSocket-Key: the base64 of 16 bytes (RFC 6455 §4.2.1). */
static bool ws__key_ok(const char *key)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	if (key == NULL || strlen(key) != 24 || strcmp(key + 22, "==") != 0)
		return false;
	for (int i = 0; i < 22; i++)
		if (strchr(b64, key[i]) == NULL)
			return false;
	return true;
}

static void ws__accept_value(const char *key,
                             char out[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE) + 1])
{
	struct sha1_ctx ctx;
	uint8_t digest[SHA1_DIGEST_SIZE];

	sha1_init(&ctx);
	sha1_update(&ctx, strlen(key), (const uint8_t *)key);
	sha1_update(&ctx, sizeof(WS_GUID) - 1, (const uint8_t *)WS_GUID);
	sha1_digest(&ctx, sizeof(digest), digest);
	base64_encode_raw(out, sizeof(digest), digest);
	out[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = '\0';
}

static ws_session_t *ws__session_new(const http_upgrade_t *up, enum ws_kind kind)
{
	ws_session_t *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->fd = up->fd;
	s->tls = up->tls;
	s->kind = (uint8_t)kind;
	s->state = WS_ST_FLUSH_CLOSE; /* until the handshake succeeds */
	s->opened_ms = clock_mono_ms();
	s->deadline_ms = s->opened_ms + WS_CLOSE_WAIT_MS;
	snprintf(s->peer, sizeof(s->peer), "%s", up->req->peer_ip ? up->req->peer_ip : "?");
	ws_parser_init(&s->parser, ws_cfg()->ws_max_message_bytes);
	event_assign(&s->ev, up->base, s->fd, EV_READ | EV_PERSIST, ws__on_event, s);
	event_add(&s->ev, NULL);
	ws__list_add(&W.closing, s);
	return s;
}

/* Refuse the handshake with an HTTP answer, then close. */
static void ws__refuse(ws_session_t *s, const char *status, const char *extra)
{
	char resp[256];
	int n = snprintf(resp, sizeof(resp),
	                 "HTTP/1.1 %s\r\n%sContent-Length: 0\r\nConnection: close\r\n\r\n", status,
	                 extra ? extra : "");
	struct iovec iov = {resp, (size_t)n};

	s->kind = WS_KIND_NONE;
	if (ws__write(s, &iov, 1) < 0) {
		ws__kill(s);
		return;
	}
	ws__close_after_flush(s);
}

static const char *ws__check_request(const http_request_t *req, const char **extra)
{
	const char *version = http_request_header(req, "Sec-WebSocket-Version");

	*extra = NULL;
	if (!ws__header_has(http_request_header(req, "Upgrade"), "websocket"))
		return "400 Bad Request";
	if (version == NULL || strcmp(version, "13") != 0) {
		*extra = "Sec-WebSocket-Version: 13\r\n";
		return "426 Upgrade Required";
	}
	if (!ws__key_ok(http_request_header(req, "Sec-WebSocket-Key")))
		return "400 Bad Request";
	if (W.draining || ws_sessions() >= ws_cfg()->max_connections)
		return "503 Service Unavailable";
	return NULL;
}

static bool ws__accept(ws_session_t *s, const http_request_t *req, const char *service)
{
	char accept[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE) + 1];
	char resp[256];
	struct iovec iov;
	int n;

	ws__accept_value(http_request_header(req, "Sec-WebSocket-Key"), accept);
	n = snprintf(resp, sizeof(resp),
	             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	             "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
	             accept);
	iov = (struct iovec){resp, (size_t)n};
	s->state = WS_ST_OPEN;
	ws__list_del(&W.closing, s);
	ws__list_add(&W.open, s);
	ws__count(s, true);
	if (ws__write(s, &iov, 1) < 0) {
		ws__kill(s);
		return false;
	}
	if (s->kind == WS_KIND_CHANGE || s->kind == WS_KIND_ALL || s->kind == WS_KIND_EVENTS) {
		if (ws_push_attach(s) < 0 ||
		    (service && ws_push_subscribe(s, service, strlen(service)) < 0)) {
			ws_session_close(s, WS_CLOSE_INTERNAL, "out of memory");
			return false;
		}
	}
	return true;
}

static bool ws__upgrade(const http_upgrade_t *up)
{
	const http_request_t *req = up->req;
	const char *service, *status, *extra = NULL;
	ws_session_t *s;
	int kind = ws__route(req, &service);

	if (kind < 0 || req->method != HTTP_M_GET)
		return false; /* plain HTTP answers it (404 / 405) */
	s = ws__session_new(up, (enum ws_kind)kind);
	if (s == NULL)
		return false;
	if (up->unsent_len > 0) {
		struct iovec iov = {(void *)(uintptr_t)up->unsent, up->unsent_len};
		if (ws__write(s, &iov, 1) < 0) {
			ws__kill(s);
			return true;
		}
	}
	status = up->origin_allowed ? ws__check_request(req, &extra) : "403 Forbidden";
	if (status != NULL) {
		ws__refuse(s, status, extra);
		return true;
	}
	if (!ws__accept(s, req, service))
		return true;
	/* Frames the client sent right behind its request (the parser
	 * unmasks in place, so through the read buffer). */
	for (size_t off = 0; off < up->rest_len && s->state == WS_ST_OPEN;) {
		size_t n =
		    up->rest_len - off < sizeof(W.rbuf) ? up->rest_len - off : sizeof(W.rbuf);
		memcpy(W.rbuf, up->rest + off, n);
		ws__feed(s, W.rbuf, n);
		off += n;
	}
	return true;
}

/* ---- Module lifecycle ----------------------------------------------------------------------- */

int ws_init(worker_t *w, ws_sessions_fn fn, void *arg)
{
	struct timeval sweep = {WS_SWEEP_MS / 1000, (WS_SWEEP_MS % 1000) * 1000};
	int rc;

	memset(&W.open, 0, sizeof(W.open));
	memset(&W.closing, 0, sizeof(W.closing));
	memset(&W.dead, 0, sizeof(W.dead));
	W.w = w;
	W.sessions_fn = fn;
	W.sessions_arg = arg;
	W.draining = false;
	rc = ws_push_init(w->base, w->shm);
	if (rc < 0)
		return rc;
	metrics_ws_reset();
	event_assign(&W.ev_sweep, w->base, -1, EV_PERSIST, ws__on_sweep, NULL);
	event_add(&W.ev_sweep, &sweep);
	event_assign(&W.ev_reap, w->base, -1, 0, ws__on_reap, NULL);
	W.ready = true;
	http_set_upgrade_handler(ws__upgrade);
	return 0;
}

void ws_drain(void)
{
	W.draining = true;
	while (W.open.head)
		ws_session_close(W.open.head, WS_CLOSE_GOING_AWAY, "server shutting down");
}

void ws_shutdown(void)
{
	if (!W.ready)
		return;
	http_set_upgrade_handler(NULL);
	W.sessions_fn = NULL;
	while (W.open.head)
		ws__kill(W.open.head);
	while (W.closing.head)
		ws__kill(W.closing.head);
	ws__on_reap(-1, 0, NULL);
	event_del(&W.ev_sweep);
	event_del(&W.ev_reap);
	ws_push_shutdown();
	metrics_ws_reset();
	W.ready = false;
}

/* ---- Status ------------------------------------------------------------------------------------
 */

void api_status_ws_connection(const http_request_t *req, http_response_t *res)
{
	uint64_t registry, discovery;

	(void)req;
	metrics_ws_totals(&registry, &discovery);
	res->body.len = 0;
	http_res_printf(res, "{\"discovery\":\"%llu\",\"registry\":\"%llu\"}",
	                (unsigned long long)discovery, (unsigned long long)registry);
}

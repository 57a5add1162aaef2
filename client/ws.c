/*
 * ws.c - WebSocket client sessions (RFC 6455) to a node: the registry's
 * heartbeat session and the discovery's push session, on the client's loop.
 *
 * A session connects to the node in use for its purpose (nodes.c), sends
 * the upgrade request, checks the 101 and Sec-WebSocket-Accept, then
 * exchanges masked text frames.  Liveness as the Java client (API.md
 * §6.4): a ping each second, the session dropped when no pong comes within
 * the request timeout, and renewed after 5 minutes (the nodes close it
 * after 6).  A session that fails marks its node failed; the next attempt
 * goes to another node at once, or waits for the first one's backoff.
 *
 * The frame decoder (cl_wsd_*) is separate and pure: bytes in, whole
 * messages and control frames out; tests/fuzz/fuzz_client.c drives it.
 * What a server must not send (masked frames, reserved bits, fragmented or
 * long control frames, a message over the limit) fails the session.
 *
 * Owners' callbacks run on the loop; they may send or close, never free
 * the session (a close during a read is finished by the reader).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <nettle/base64.h>
#include <nettle/sha1.h>

#include "artemis/clock.h"
#include "client_int.h"

#define WS_GUID         "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_PING_MS      1000
#define WS_SESSION_MS   (5 * 60 * 1000)
#define WS_READ_CHUNK   65536
#define WS_MAX_QUEUED   (256u << 20) /* output a node does not take: the session is dead */
#define WS_RECONNECT_MS 1000         /* when no node is known at all */

/* ---- frame decoder ---------------------------------------------------------- */

void cl_wsd_init(cl_wsd_t *d, size_t max)
{
	memset(d, 0, sizeof(*d));
	d->max = max;
}

void cl_wsd_free(cl_wsd_t *d)
{
	buf_free(&d->msg);
	cl_wsd_init(d, d->max);
}

/* A whole header is in d->hdr: check it, set op, fin and left. */
static int wsd__header(cl_wsd_t *d)
{
	uint8_t b0 = d->hdr[0], b1 = d->hdr[1];
	uint64_t len = b1 & 0x7f;

	d->fin = b0 & 0x80;
	d->op = b0 & 0x0f;
	if ((b0 & 0x70) || (b1 & 0x80)) /* reserved bits; a server never masks */
		return ARTEMIS_E_PROTO;
	if (len == 126)
		len = ((uint64_t)d->hdr[2] << 8) | d->hdr[3];
	else if (len == 127) {
		len = 0;
		for (int i = 2; i < 10; i++)
			len = (len << 8) | d->hdr[i];
		if (len >> 63)
			return ARTEMIS_E_PROTO;
	}
	switch (d->op) {
	case CL_WS_CLOSE:
	case CL_WS_PING:
	case CL_WS_PONG:
		if (!d->fin || len > sizeof(d->ctl))
			return ARTEMIS_E_PROTO;
		d->ctl_len = 0;
		break;
	case 0:
		if (d->msg_op == 0)
			return ARTEMIS_E_PROTO;
		break;
	case CL_WS_TEXT:
	case CL_WS_BINARY:
		if (d->msg_op != 0)
			return ARTEMIS_E_PROTO;
		d->msg_op = d->op;
		buf_reset(&d->msg);
		break;
	default:
		return ARTEMIS_E_PROTO;
	}
	if (d->op < CL_WS_CLOSE && d->msg.len + len > d->max)
		return ARTEMIS_E_LIMIT;
	d->left = len;
	return 0;
}

static int wsd__frame_done(cl_wsd_t *d, cl_wsd_fn fn, void *ctx)
{
	int rc = 0;

	d->hdr_len = d->hdr_need = 0;
	if (d->op >= CL_WS_CLOSE)
		return fn(ctx, d->op, (const char *)d->ctl, d->ctl_len);
	if (!d->fin)
		return 0;
	if (buf_append(&d->msg, "", 0) < 0) /* NUL-terminate, even when empty */
		return ARTEMIS_E_NOMEM;
	rc = fn(ctx, d->msg_op, d->msg.data, d->msg.len);
	d->msg_op = 0;
	buf_reset(&d->msg);
	return rc;
}

int cl_wsd_feed(cl_wsd_t *d, const uint8_t *data, size_t len, cl_wsd_fn fn, void *ctx)
{
	int rc;

	while (len > 0 || (d->hdr_need && d->hdr_len == d->hdr_need && d->left == 0)) {
		if (d->hdr_need == 0) {
			d->hdr_need = 2;
			d->hdr_len = 0;
		}
		if (d->hdr_len < d->hdr_need) {
			size_t n = d->hdr_need - d->hdr_len;
			n = n < len ? n : len;
			memcpy(d->hdr + d->hdr_len, data, n);
			d->hdr_len += n;
			data += n;
			len -= n;
			if (d->hdr_len < d->hdr_need)
				return 0;
			if (d->hdr_need == 2) {
				uint8_t l7 = d->hdr[1] & 0x7f;
				d->hdr_need = l7 == 126 ? 4 : l7 == 127 ? 10 : 2;
				if (d->hdr_need > 2)
					continue;
			}
			if ((rc = wsd__header(d)) < 0)
				return rc;
		}
		if (d->left > 0) {
			size_t n = d->left < len ? (size_t)d->left : len;
			if (d->op >= CL_WS_CLOSE) {
				memcpy(d->ctl + d->ctl_len, data, n);
				d->ctl_len += n;
			} else if (buf_append(&d->msg, data, n) < 0) {
				return ARTEMIS_E_NOMEM;
			}
			data += n;
			len -= n;
			d->left -= n;
			if (d->left > 0)
				return 0;
		}
		if ((rc = wsd__frame_done(d, fn, ctx)) != 0)
			return rc; /* an error, or the callback said stop */
	}
	return 0;
}

int cl_ws_frame(buf_t *out, int op, const char *data, size_t len, uint32_t mask)
{
	uint8_t hdr[14], m[4];
	size_t h = 0, start;

	hdr[h++] = (uint8_t)(0x80 | op);
	if (len < 126) {
		hdr[h++] = (uint8_t)(0x80 | len);
	} else if (len < 65536) {
		hdr[h++] = 0x80 | 126;
		hdr[h++] = (uint8_t)(len >> 8);
		hdr[h++] = (uint8_t)len;
	} else {
		hdr[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			hdr[h++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	memcpy(m, &mask, 4);
	memcpy(hdr + h, m, 4);
	h += 4;
	buf_append(out, hdr, h);
	start = out->len;
	if (buf_append(out, data, len) < 0)
		return ARTEMIS_E_NOMEM;
	uint8_t *p = (uint8_t *)out->data + start;
	size_t i = 0;
	uint32_t w;
	for (; i + 4 <= len; i += 4) { /* word at a time: the mask repeats every 4 */
		memcpy(&w, p + i, 4);
		w ^= mask;
		memcpy(p + i, &w, 4);
	}
	for (; i < len; i++)
		p[i] ^= m[i & 3];
	return 0;
}

/* ---- sessions -------------------------------------------------------------- */

static void ws__arm_timer(cl_ws_t *ws, uint64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	evtimer_add(ws->timer, &tv);
}

static void ws__teardown(cl_ws_t *ws)
{
	if (ws->ev) {
		event_free(ws->ev);
		ws->ev = NULL;
	}
	if (ws->ev_w) {
		event_free(ws->ev_w);
		ws->ev_w = NULL;
	}
	if (ws->fd >= 0) {
		close(ws->fd);
		ws->fd = -1;
	}
	if (ws->timer)
		event_del(ws->timer);
	buf_free(&ws->out);
	ws->out_off = 0;
	cl_resp_free(&ws->hs);
	if (!ws->reading)
		cl_wsd_free(&ws->dec);
	ws->ping_sent_ms = 0;
}

/* Reconnect when due (now, or after the first node's backoff). */
static void ws__schedule(cl_ws_t *ws, uint64_t delay_ms)
{
	uint64_t now = clock_mono_ms();

	ws->retry_ms = now + delay_ms;
	if (ws->kick) {
		struct timeval tv = {(time_t)(delay_ms / 1000),
		                     (suseconds_t)(delay_ms % 1000) * 1000};
		evtimer_add(ws->kick, &tv);
	}
}

void cl_ws_close(cl_ws_t *ws, int rc, const char *why)
{
	(void)why;
	if (ws->state == CL_WS_IDLE)
		return;
	if (ws->state == CL_WS_OPEN && ws->fd >= 0) { /* best effort: 1000 or 1001 */
		buf_t b = {0};
		uint8_t code[2] = {0x03, rc < 0 ? 0xe9 : 0xe8};
		cl_ws_frame(&b, CL_WS_CLOSE, (const char *)code, 2,
		            (uint32_t)cl_xorshift(&ws->rng));
		if (!buf_error(&b))
			(void)send(ws->fd, b.data, b.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		buf_free(&b);
	}
	if (rc < 0 && ws->target.url[0])
		cl_nodes_failed(ws->c, ws->target.url);
	ws->state = CL_WS_IDLE;
	ws__teardown(ws);
	ws__schedule(ws, 0);
}

static void ws__fail(cl_ws_t *ws, int rc, const char *why)
{
	cl_ws_close(ws, rc, why);
	if (ws->cb->closed)
		ws->cb->closed(ws, rc, why);
}

static void ws__on_write(evutil_socket_t fd, short what, void *arg);

static void ws__want_write(cl_ws_t *ws)
{
	if (ws->ev_w == NULL)
		ws->ev_w = event_new(ws->c->base, ws->fd, EV_WRITE | EV_PERSIST, ws__on_write, ws);
	if (ws->ev_w)
		event_add(ws->ev_w, NULL);
}

static int ws__flush(cl_ws_t *ws)
{
	int rc = cl_sock_flush(ws->fd, &ws->out, &ws->out_off);

	if (rc < 0)
		return rc;
	if (rc == 1) {
		if (ws->out.len - ws->out_off > WS_MAX_QUEUED)
			return -ENOBUFS;
		ws__want_write(ws);
	} else if (ws->ev_w) {
		event_del(ws->ev_w);
	}
	return 0;
}

int cl_ws_send(cl_ws_t *ws, int op, const char *data, size_t len)
{
	int rc;

	if (ws->state != CL_WS_OPEN)
		return ARTEMIS_E_STATE;
	if (ws->out_off > 0 && ws->out_off == ws->out.len) {
		buf_reset(&ws->out);
		ws->out_off = 0;
	}
	if (cl_ws_frame(&ws->out, op, data, len, (uint32_t)cl_xorshift(&ws->rng)) < 0)
		return ARTEMIS_E_NOMEM;
	rc = ws__flush(ws);
	if (rc < 0) {
		ws__fail(ws, ARTEMIS_E_CONNECT, "write failed");
		return ARTEMIS_E_CONNECT;
	}
	return 0;
}

static int ws__on_frame(void *ctx, int op, const char *data, size_t len)
{
	cl_ws_t *ws = ctx;

	switch (op) {
	case CL_WS_TEXT:
		ws->cb->text(ws, data, len);
		break;
	case CL_WS_PING:
		cl_ws_send(ws, CL_WS_PONG, data, len);
		break;
	case CL_WS_PONG:
		ws->ping_sent_ms = 0;
		break;
	case CL_WS_CLOSE:
		/* the node ends the session (its TTL, a shutdown): not a failure */
		cl_ws_close(ws, 0, "closed by the node");
		if (ws->cb->closed)
			ws->cb->closed(ws, 0, "closed by the node");
		break;
	default: /* binary: nothing the Artemis nodes send */
		break;
	}
	return ws->state == CL_WS_OPEN ? 0 : 1; /* stop when the session ended */
}

static void ws__opened(cl_ws_t *ws, const char *rest, size_t len)
{
	uint64_t now = clock_mono_ms();
	int rc;

	ws->state = CL_WS_OPEN;
	ws->opened_ms = ws->last_ping_ms = now;
	ws->ping_sent_ms = 0;
	ws->generation++;
	event_del(ws->timer);
	cl_resp_free(&ws->hs);
	cl_nodes_ok(ws->c, ws->purpose, ws->target.url);
	cl_stat_add(ws->c, ARTEMIS_STAT_WS_SESSIONS, 1);
	ws->cb->open(ws);
	if (ws->state != CL_WS_OPEN || len == 0)
		return;
	rc = cl_wsd_feed(&ws->dec, (const uint8_t *)rest, len, ws__on_frame, ws);
	if (rc < 0 && ws->state == CL_WS_OPEN)
		ws__fail(ws, rc, "bad frame from the node");
}

/* Bytes of the handshake's answer. */
static void ws__handshake(cl_ws_t *ws, const char *data, size_t len)
{
	size_t used;
	int rc = cl_resp_feed(&ws->hs, data, len, &used);
	char expect[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE) + 1];
	uint8_t digest[SHA1_DIGEST_SIZE];
	struct sha1_ctx sha;

	if (rc == 0)
		return;
	if (rc < 0 || ws->hs.status != 101) {
		ws__fail(ws, ARTEMIS_E_PROTO, "the node refused the WebSocket");
		return;
	}
	sha1_init(&sha);
	sha1_update(&sha, strlen(ws->key), (const uint8_t *)ws->key);
	sha1_update(&sha, strlen(WS_GUID), (const uint8_t *)WS_GUID);
	sha1_digest(&sha, sizeof(digest), digest);
	base64_encode_raw(expect, sizeof(digest), digest);
	expect[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = '\0';
	if (strcmp(expect, ws->hs.accept) != 0) {
		ws__fail(ws, ARTEMIS_E_PROTO, "bad Sec-WebSocket-Accept");
		return;
	}
	ws__opened(ws, data + used, len - used);
}

static void ws__on_read(evutil_socket_t fd, short what, void *arg)
{
	cl_ws_t *ws = arg;
	char buf[WS_READ_CHUNK];

	(void)fd;
	(void)what;
	ws->reading = true;
	for (int rounds = 0; rounds < 16 && ws->state >= CL_WS_HANDSHAKE; rounds++) {
		ssize_t n = recv(ws->fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			ws__fail(ws, ARTEMIS_E_CONNECT,
			         n == 0 ? "closed by the node" : "read failed");
			break;
		}
		if (ws->state == CL_WS_HANDSHAKE) {
			ws__handshake(ws, buf, (size_t)n);
			continue;
		}
		int rc = cl_wsd_feed(&ws->dec, (const uint8_t *)buf, (size_t)n, ws__on_frame, ws);
		if (rc < 0 && ws->state == CL_WS_OPEN)
			ws__fail(ws, rc,
			         rc == ARTEMIS_E_LIMIT ? "message too large"
			                               : "bad frame from the node");
	}
	ws->reading = false;
	if (ws->state == CL_WS_IDLE)
		cl_wsd_free(&ws->dec);
}

static void ws__on_write(evutil_socket_t fd, short what, void *arg)
{
	cl_ws_t *ws = arg;
	int rc;

	(void)fd;
	(void)what;
	if (ws->state == CL_WS_CONNECTING) {
		rc = cl_sock_error(ws->fd);
		if (rc < 0) {
			ws__fail(ws, ARTEMIS_E_CONNECT, "connect failed");
			return;
		}
		ws->state = CL_WS_HANDSHAKE;
		ws__arm_timer(ws, ws->c->conf.request_timeout_ms);
		ws->ev = event_new(ws->c->base, ws->fd, EV_READ | EV_PERSIST, ws__on_read, ws);
		if (ws->ev == NULL || event_add(ws->ev, NULL) < 0) {
			ws__fail(ws, ARTEMIS_E_SYS, "cannot watch the socket");
			return;
		}
	}
	if (ws__flush(ws) < 0)
		ws__fail(ws, ARTEMIS_E_CONNECT, "write failed");
}

static void ws__on_timer(evutil_socket_t fd, short what, void *arg)
{
	cl_ws_t *ws = arg;

	(void)fd;
	(void)what;
	ws__fail(ws, ARTEMIS_E_TIMEOUT,
	         ws->state == CL_WS_CONNECTING ? "connect timed out" : "handshake timed out");
}

static void ws__on_kick(evutil_socket_t fd, short what, void *arg)
{
	cl_ws_t *ws = arg;

	(void)fd;
	(void)what;
	if (ws->state == CL_WS_IDLE && ws->cb->wanted(ws))
		cl_ws_connect(ws);
}

bool cl_ws_needed(cl_t *c, const size_t *count)
{
	pthread_mutex_lock(&c->lock);
	bool needed = c->conf.websocket && *count > 0 && !c->closing;
	pthread_mutex_unlock(&c->lock);
	return needed;
}

void cl_ws_init(cl_ws_t *ws, cl_t *c, int purpose, const char *path, const cl_ws_cb_t *cb)
{
	memset(ws, 0, sizeof(*ws));
	ws->c = c;
	ws->purpose = purpose;
	ws->path = path;
	ws->cb = cb;
	ws->fd = -1;
	ws->rng = cl_random();
	cl_wsd_init(&ws->dec, CL_WS_MAX_MESSAGE);
}

static int ws__request(cl_ws_t *ws)
{
	uint8_t raw[16];

	for (int i = 0; i < 16; i += 8) {
		uint64_t r = cl_xorshift(&ws->rng);
		memcpy(raw + i, &r, 8);
	}
	base64_encode_raw(ws->key, sizeof(raw), raw);
	ws->key[BASE64_ENCODE_RAW_LENGTH(sizeof(raw))] = '\0';
	buf_reset(&ws->out);
	ws->out_off = 0;
	buf_printf(&ws->out,
	           "GET %s%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
	           "User-Agent: libartemis-client/" ARTEMIS_CLIENT_VERSION "\r\n\r\n",
	           ws->target.prefix, ws->path, ws->target.hostport, ws->key);
	return buf_error(&ws->out) ? ARTEMIS_E_NOMEM : 0;
}

void cl_ws_connect(cl_ws_t *ws)
{
	uint64_t wait = 0;
	int rc;

	if (ws->state != CL_WS_IDLE || ws->c->base == NULL)
		return;
	if (ws->timer == NULL) {
		ws->timer = evtimer_new(ws->c->base, ws__on_timer, ws);
		ws->kick = evtimer_new(ws->c->base, ws__on_kick, ws);
		if (ws->timer == NULL || ws->kick == NULL)
			return;
	}
	if (clock_mono_ms() < ws->retry_ms)
		return;
	rc = cl_nodes_pick(ws->c, ws->purpose, NULL, 0, true, &ws->target, &wait, NULL);
	if (rc == -EAGAIN || rc == -ENOENT) {
		ws__schedule(ws, rc == -EAGAIN ? wait : WS_RECONNECT_MS);
		return;
	}
	if (rc < 0) { /* the name did not resolve */
		cl_nodes_failed(ws->c, ws->target.url);
		ws__schedule(ws, 0);
		return;
	}
	cl_resp_init(&ws->hs, 64 << 10);
	cl_wsd_free(&ws->dec);
	if (ws__request(ws) < 0 || cl_sock_open(&ws->target, &ws->fd) < 0) {
		ws->state = CL_WS_CONNECTING; /* so that close marks the node */
		cl_ws_close(ws, ARTEMIS_E_CONNECT, "connect failed");
		return;
	}
	ws->state = CL_WS_CONNECTING;
	ws__want_write(ws);
	ws__arm_timer(ws, ws->c->conf.connect_timeout_ms);
}

void cl_ws_tick(cl_ws_t *ws, uint64_t now)
{
	bool wanted = ws->cb->wanted(ws);

	if (ws->state == CL_WS_IDLE) {
		if (wanted)
			cl_ws_connect(ws);
		return;
	}
	if (ws->state != CL_WS_OPEN)
		return;
	if (!wanted) {
		cl_ws_close(ws, 0, "not needed");
		return;
	}
	if (ws->ping_sent_ms && now - ws->ping_sent_ms > ws->c->conf.request_timeout_ms) {
		ws__fail(ws, ARTEMIS_E_TIMEOUT, "no pong from the node");
		return;
	}
	if (now - ws->opened_ms >= WS_SESSION_MS) { /* renew before the node's TTL */
		cl_ws_close(ws, 0, "session renewal");
		if (ws->cb->closed)
			ws->cb->closed(ws, 0, "session renewal");
		return;
	}
	if (ws->ping_sent_ms == 0 && now - ws->last_ping_ms >= WS_PING_MS) {
		ws->last_ping_ms = ws->ping_sent_ms = now;
		cl_ws_send(ws, CL_WS_PING, "", 0);
	}
}

void cl_ws_free(cl_ws_t *ws)
{
	ws->reading = false;
	ws__teardown(ws);
	ws->state = CL_WS_IDLE;
	if (ws->timer)
		event_free(ws->timer);
	if (ws->kick)
		event_free(ws->kick);
	ws->timer = ws->kick = NULL;
}

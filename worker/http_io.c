/*
 * http_io.c - one HTTP connection's I/O: read, parse, decode the body,
 * dispatch, send; back-pressure, lingering close and the hand-over of a
 * connection to the upgrade hook (WebSocket).
 *
 * Called from the event loop (read and write events of a connection, set
 * up by http_server.c) and by the fuzzer (http_conn_feed, no socket).
 *
 * Life of a request.  Each readable event reads into the server's shared
 * 64 KiB buffer and feeds the bytes to the parser (http_parse.c), which
 * reports the head, body bytes and the end of the request.  The body is
 * inflated as it streams in when it is gzip or deflate (http_body.c).  A
 * complete request is answered synchronously (http__respond) and its
 * response appended to the output buffer, so pipelined requests are
 * answered in order and the responses produced by one read leave in one
 * send().
 *
 * Limits.  Raw body beyond max_body_bytes (Content-Length or chunked): 413
 * and close.  A body that inflates beyond max_body_bytes: 413, the rest of
 * the body is skipped and the connection stays usable; so does an
 * unsupported Content-Encoding (415) or a corrupt/truncated gzip body (400).
 * A request the parser refuses: its status (400, 431, 501, 505) and close.
 * Back-pressure: while more than HTTP_OUT_HIGH bytes of its output are
 * unsent, or it has unsent output and the server is over its output budget,
 * a connection's further requests are neither parsed nor read (the bytes
 * already read are kept); the kernel's buffers then push back on the
 * client.  The server closes connections whose output makes no progress
 * (http_server.c).
 *
 * Extension point: connection takeover.  A request flagged as an upgrade
 * (Connection: upgrade + Upgrade: ...) is handed, once complete, to the
 * hook installed with http_set_upgrade_handler() (the WebSocket module),
 * with the socket, the request, the bytes that followed it and the unsent
 * output; the connection is forgotten if the hook takes it.
 *
 * TLS.  A connection of a TLS listener first completes its handshake
 * (within header_timeout_ms of the accept, as any first request), then
 * reads and writes through it: the parser sees plaintext, the output
 * buffer holds plaintext until the TLS layer has taken it (so responses
 * given straight from the handler's buffer are copied first).  An upgrade
 * hands the TLS connection over with the socket.
 *
 * Must not: block, log per byte or per request, or close the listening
 * socket (the master owns it).
 */
#include "http_int.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "artemis/clock.h"
#include "artemis/log.h"

http_upgrade_fn http__upgrade_fn;

void http_set_upgrade_handler(http_upgrade_fn fn)
{
	http__upgrade_fn = fn;
}

/* ---- The request being received ----------------------------------------- */

/* Record an error answer for the current request.  A fatal one closes the
 * connection after the answer. */
static void req_fail(http_conn_t *c, int status, const char *msg, bool fatal)
{
	if (!c->err_status) {
		c->err_status = status;
		c->err_msg = msg;
	}
	c->err_fatal |= fatal;
}

void http__conn_reset_request(http_conn_t *c)
{
	c->head_only = false;
	c->raw_body = 0;
	http__buf_recycle(&c->body, HTTP_KEEP_BUF);
	c->coding = HTTP_CODING_IDENTITY;
	c->err_status = 0;
	c->err_msg = NULL;
	c->err_fatal = false;
}

static void conn_on_head(http_conn_t *c)
{
	http_msg_t *m = &c->msg;
	const http_limits_t *lim = &c->srv->lim;
	c->head_only = m->req.method == HTTP_M_HEAD;
	if (!m->chunked && m->length > lim->max_body_bytes) {
		req_fail(c, 413, "Request body is too large", true);
		return;
	}
	const char *ce = http_request_header(&m->req, "Content-Encoding");
	if (ce && http_body_coding_parse(ce, &c->coding) != 0) {
		/* A client waiting for "100 Continue" gets the answer now, and the
		 * connection closes since its body may still follow. */
		c->coding = HTTP_CODING_IDENTITY;
		req_fail(c, 415, "Content-Encoding is not supported", m->expect_continue);
		return;
	}
	if (c->coding != HTTP_CODING_IDENTITY) {
		if (http_inflate_start(&c->inflate, c->coding) != 0) {
			req_fail(c, 500, "Out of memory", true);
			return;
		}
		m->req.body_was_gzip = true;
	}
	if (m->expect_continue && http__queue_continue(c) != 0)
		req_fail(c, 500, "Out of memory", true);
}

static void conn_on_body(http_conn_t *c, const char *at, size_t n)
{
	size_t max = c->srv->lim.max_body_bytes;
	c->raw_body += n;
	if (c->raw_body > max) {
		req_fail(c, 413, "Request body is too large", true);
		return;
	}
	if (c->err_status)
		return; /* skip the body of a request already answered with an error */
	if (c->coding == HTTP_CODING_IDENTITY) {
		if (buf_append(&c->body, at, n) != 0)
			req_fail(c, 500, "Out of memory", true);
		return;
	}
	int rc = http_inflate_feed(&c->inflate, at, n, &c->body, max);
	if (rc == -E2BIG)
		req_fail(c, 413, "Decompressed request body is too large", false);
	else if (rc == -EBADMSG)
		req_fail(c, 400, "Invalid compressed request body", false);
	else if (rc != 0)
		req_fail(c, 500, "Out of memory", true);
}

/* Answer now and close: the stream cannot be parsed further. */
static void conn_fail_now(http_conn_t *c)
{
	c->err_fatal = true;
	http__respond(c, false);
	c->close_after = true;
}

static void conn_parse_error(http_conn_t *c, const http_event_t *ev)
{
	req_fail(c, ev->status, ev->msg, true);
	conn_fail_now(c);
}

/* ---- Feeding bytes ------------------------------------------------------ */

/* Keep unparsed input while parsing is paused. */
static void conn_stash(http_conn_t *c, const char *data, size_t len)
{
	if (len == 0)
		return;
	if (data >= c->in_pending.data && data < c->in_pending.data + c->in_pending.cap) {
		/* the tail of what was held before: keep it where it is */
		c->in_off = (size_t)(data - c->in_pending.data);
		c->in_pending.len = c->in_off + len;
		return;
	}
	buf_reset(&c->in_pending);
	c->in_off = 0;
	if (buf_append(&c->in_pending, data, len) != 0)
		c->close_after = true;
}

static bool conn_upgrade(http_conn_t *c, const char *rest, size_t rest_len)
{
	if (c->fd >= 0) {
		http_upgrade_t up = {
		    .fd = c->fd,
		    .tls = c->tls,
		    .base = c->srv->base,
		    .req = &c->msg.req,
		    .rest = rest,
		    .rest_len = rest_len,
		    .unsent = c->out.data + c->out_off,
		    .unsent_len = c->out.len - c->out_off,
		    .origin_allowed = http__origin_allowed(c),
		};
		if (http__upgrade_fn(&up)) {
			c->tls = NULL; /* the hook's now, with the socket */
			http__conn_free(c, false);
			return true;
		}
	}
	http__respond(c, false);
	c->close_after = true;
	return false;
}

enum msg_next { NEXT_GO, NEXT_STOP, NEXT_PAUSE, NEXT_YIELD, NEXT_GONE };

/* Fairness: a connection gets HTTP_TURN_REQUESTS answers or
 * HTTP_TURN_BYTES of output per turn of the event loop, then the others get
 * theirs.  A client pipelining hundreds of requests (or thousands of such
 * clients) cannot keep a new connection's request waiting for long. */
static bool conn_turn_over(const http_conn_t *c)
{
	return c->turn_reqs >= HTTP_TURN_REQUESTS || c->turn_bytes >= HTTP_TURN_BYTES;
}

static void conn_new_turn(http_conn_t *c)
{
	c->turn_reqs = 0;
	c->turn_bytes = 0;
}

/* Back-pressure (issue 11 item 4): no further request of this connection
 * is read or answered while its unsent output is above HTTP_OUT_HIGH, or
 * while it has any and the server's is above output_budget_bytes.  A
 * connection with nothing unsent is always served: a new client (a health
 * check) gets its answer whatever the others do. */
static bool conn_must_wait(const http_conn_t *c)
{
	const http_server_t *s = c->srv;
	size_t unsent = c->out.len - c->out_off;
	if (unsent > HTTP_OUT_HIGH)
		return true;
	return unsent > 0 && s->lim.output_budget_bytes &&
	       s->out_total > s->lim.output_budget_bytes;
}

void http__conn_account(http_conn_t *c)
{
	http_server_t *s = c->srv;
	size_t unsent = c->out.len - c->out_off;
	if (c->out_counted == 0 && unsent > 0)
		c->out_ms = clock_mono_coarse_ms();
	s->out_total = s->out_total - c->out_counted + unsent;
	c->out_counted = unsent;
}

/* The request is complete: answer it (or hand the connection over). */
static enum msg_next conn_on_message(http_conn_t *c, const char *rest, size_t rest_len)
{
	http_msg_t *m = &c->msg;
	if (!c->err_status && c->coding != HTTP_CODING_IDENTITY &&
	    http_inflate_finish(&c->inflate) != 0)
		req_fail(c, 400, "Truncated compressed request body", false);
	if (buf_append(&c->body, "", 0) == 0) {
		m->req.body = c->body.data;
		m->req.body_len = c->body.len;
	} else {
		req_fail(c, 500, "Out of memory", true);
	}
	if (m->upgrade && http__upgrade_fn && !c->err_status)
		return conn_upgrade(c, rest, rest_len) ? NEXT_GONE : NEXT_STOP;
	bool keep =
	    m->keep_alive && !m->upgrade && !c->srv->draining && !c->err_fatal && !c->close_after;
	if (http__respond(c, keep) != 0)
		c->close_after = true; /* out of memory: what was queued goes, then close */
	http__conn_reset_request(c);
	http__conn_touch(c);
	if (c->served == 1 && c->fd >= 0) { /* its first answer: no longer new */
		event_priority_set(&c->ev_read, HTTP_PRIO_ESTABLISHED);
		event_priority_set(&c->ev_write, HTTP_PRIO_ESTABLISHED);
	}
	if (!keep)
		c->close_after = true;
	if (c->close_after)
		return NEXT_STOP;
	http__conn_account(c);
	if (conn_must_wait(c)) {
		c->out_paused = true;
		return NEXT_PAUSE;
	}
	if (rest_len > 0 && conn_turn_over(c) && c->fd >= 0) {
		static const struct timeval now = {0, 0};
		c->yielded = true;
		evtimer_add(&c->ev_turn, &now); /* after the events polled meanwhile */
		return NEXT_YIELD;
	}
	return NEXT_GO;
}

int http__conn_feed(http_conn_t *c, const char *data, size_t len)
{
	http_msg_t *m = &c->msg;
	while ((len > 0 || m->phase == HP_DONE) && !c->close_after) {
		bool idle = m->phase == HP_IDLE;
		http_event_t ev;
		size_t n = http__parse(m, data, len, c->srv->lim.max_header_bytes, &ev);
		data += n;
		len -= n;
		if (idle && m->phase != HP_IDLE) { /* a request's first byte */
			c->t_start_ns = clock_mono_ns();
			c->phase_ms = clock_mono_coarse_ms();
		}
		switch (ev.ev) {
		case HEV_NONE:
			break;
		case HEV_HEAD:
			c->phase_ms = clock_mono_coarse_ms();
			conn_on_head(c);
			break;
		case HEV_BODY:
			conn_on_body(c, ev.at, ev.n);
			break;
		case HEV_ERROR:
			conn_parse_error(c, &ev);
			return 0;
		case HEV_DONE:
			switch (conn_on_message(c, data, len)) {
			case NEXT_GONE:
				return 1;
			case NEXT_PAUSE:
			case NEXT_YIELD:
				conn_stash(c, data, len);
				return 0;
			case NEXT_STOP:
				return 0;
			case NEXT_GO:
				break;
			}
			break;
		}
		if (c->err_fatal) {
			conn_fail_now(c);
			return 0;
		}
	}
	return 0;
}

int http__conn_resume(http_conn_t *c)
{
	c->out_paused = false;
	c->yielded = false;
	if (c->msg.phase != HP_IDLE) /* waiting for our output was not the client's fault */
		c->phase_ms = clock_mono_coarse_ms();
	size_t len = c->in_pending.len - c->in_off;
	if (len == 0)
		return 0;
	const char *held = c->in_pending.data + c->in_off;
	c->in_pending.len = c->in_off = 0; /* conn_stash() keeps what is left */
	return http__conn_feed(c, held, len);
}

/* ---- Sending ------------------------------------------------------------ */

static void conn_compact_out(http_conn_t *c)
{
	if (c->out_off == c->out.len) {
		c->out.len = c->out_off = 0;
	} else if (c->out_off > (c->out.cap >> 1)) { /* compact when half is sent */
		memmove(c->out.data, c->out.data + c->out_off, c->out.len - c->out_off);
		c->out.len -= c->out_off;
		c->out_off = 0;
	}
}

/* TLS: everything goes through the output buffer (the TLS layer may hold
 * on to a record and wants the same bytes again). */
static int conn_send_tls(http_conn_t *c, const char *extra, size_t extra_len)
{
	if (extra_len && buf_append(&c->out, extra, extra_len) != 0)
		return -ENOMEM;
	while (c->out_off < c->out.len) {
		ssize_t w = tls_write(c->tls, c->out.data + c->out_off, c->out.len - c->out_off);
		if (w == -EAGAIN)
			break;
		if (w < 0)
			return (int)w;
		c->out_off += (size_t)w;
		c->last_ms = c->out_ms = clock_mono_coarse_ms();
	}
	conn_compact_out(c);
	return 0;
}

int http__conn_send(http_conn_t *c, const char *extra, size_t extra_len)
{
	size_t pending = c->out.len - c->out_off;
	if (c->fd < 0) {
		c->out.len = c->out_off = 0;
		return 0;
	}
	if (c->tls)
		return conn_send_tls(c, extra, extra_len);
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
		c->last_ms = c->out_ms = clock_mono_coarse_ms();
	if (sent >= pending) {
		c->out.len = c->out_off = 0;
		sent -= pending;
		if (extra_len > sent)
			return buf_append(&c->out, extra + sent, extra_len - sent);
		return 0;
	}
	c->out_off += sent;
	if (extra_len)
		return buf_append(&c->out, extra, extra_len);
	conn_compact_out(c);
	return 0;
}

static void event_toggle(struct event *ev, bool *added, bool want)
{
	if (want == *added)
		return;
	if (want)
		event_add(ev, NULL);
	else
		event_del(ev);
	*added = want;
}

void http__conn_want(http_conn_t *c, bool rd, bool wr)
{
	event_toggle(&c->ev_read, &c->reading, rd);
	event_toggle(&c->ev_write, &c->writing, wr);
}

/* ---- Lingering close ---------------------------------------------------- */

static void conn_on_linger_end(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	http__conn_free(arg, true);
}

/* After an error answer the client may still be sending (a body we refused):
 * closing with unread input would reset the connection and could destroy
 * the answer before the client reads it.  So shut the write side and
 * discard input until EOF or HTTP_LINGER_MS. */
static void conn_linger(http_conn_t *c)
{
	struct timeval tv = {HTTP_LINGER_MS / 1000, (HTTP_LINGER_MS % 1000) * 1000};
	if (c->tls)
		tls_close_notify(c->tls);
	if (shutdown(c->fd, SHUT_WR) != 0) {
		http__conn_free(c, true);
		return;
	}
	c->lingering = true;
	http__conn_want(c, true, false);
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
		http__conn_free(c, true); /* EOF or error */
		return;
	}
}

/* ---- Events ------------------------------------------------------------- */

/* After reading or writing: send, then decide what to wait for next, or
 * close. */
/* 0, or -1 when the connection is gone (closed or handed over). */
static int conn_after_io(http_conn_t *c)
{
	for (;;) {
		if (http__conn_send(c, NULL, 0) != 0) {
			http__conn_free(c, true);
			return -1;
		}
		if (c->out.len != c->out_off)
			break;
		if (c->close_after || (c->read_eof && !c->out_paused && !c->yielded)) {
			if (c->linger && !c->read_eof)
				conn_linger(c);
			else
				http__conn_free(c, true);
			return -1;
		}
		if (!c->out_paused)
			break;
		if (http__conn_resume(c) != 0)
			return -1; /* handed over to the upgrade hook */
	}
	if (c->out.len == 0)
		http__buf_recycle(&c->out, HTTP_KEEP_BUF);
	if (c->in_pending.len == 0)
		http__buf_recycle(&c->in_pending, HTTP_KEEP_BUF);
	http__conn_account(c);
	http__conn_want(c, !c->close_after && !c->read_eof && !c->out_paused && !c->yielded,
	                c->out.len != c->out_off || c->tls_read_wants_write);
	return 0;
}

/* After I/O; decrypted input the TLS layer holds waits for no socket
 * event, so make one. */
static void conn_settle(http_conn_t *c)
{
	if (conn_after_io(c) == 0 && c->tls && c->reading && tls_pending(c->tls))
		event_active(&c->ev_read, EV_READ, 0);
}

/* A TLS connection's handshake: 1 done, 0 waiting (events set), -1 the
 * connection is gone. */
static int conn_tls_handshake(http_conn_t *c)
{
	int rc = tls_handshake(c->tls);
	if (rc == 0) {
		c->last_ms = clock_mono_coarse_ms();
		return 1;
	}
	if (rc == -EAGAIN) {
		bool rd = tls_want(c->tls) == TLS_WANT_READ;
		http__conn_want(c, rd, !rd);
		return 0;
	}
	http__log_event(c->srv, "%s: TLS handshake failed: %s, closing", c->peer_ip, strerror(-rc));
	http__conn_free(c, true);
	return -1;
}

/* Bytes from the socket, decrypted when TLS: > 0, 0 EOF, -errno. */
static ssize_t conn_recv(http_conn_t *c, char *buf, size_t len)
{
	if (c->tls) {
		ssize_t n = tls_read(c->tls, buf, len);
		c->tls_read_wants_write = n == -EAGAIN && tls_want(c->tls) == TLS_WANT_WRITE;
		return n;
	}
	ssize_t n = recv(c->fd, buf, len, 0);
	return n >= 0 ? n : -errno;
}

void http__conn_on_turn(evutil_socket_t fd, short what, void *arg)
{
	http_conn_t *c = arg;
	(void)fd;
	(void)what;
	conn_new_turn(c);
	if (http__conn_resume(c) != 0)
		return; /* handed over to the upgrade hook */
	conn_settle(c);
}

void http__conn_on_read(evutil_socket_t fd, short what, void *arg)
{
	http_conn_t *c = arg;
	http_server_t *s = c->srv;
	(void)what;
	if (c->lingering) {
		conn_linger_read(c);
		return;
	}
	(void)fd;
	if (c->tls && !tls_handshake_done(c->tls) && conn_tls_handshake(c) <= 0)
		return;
	conn_new_turn(c);
	for (int i = 0;
	     i < 4 && !c->close_after && !c->out_paused && !c->yielded && !conn_turn_over(c); i++) {
		ssize_t n = conn_recv(c, s->rbuf, sizeof(s->rbuf));
		if (n > 0) {
			c->last_ms = clock_mono_coarse_ms();
			if (http__conn_feed(c, s->rbuf, (size_t)n) != 0)
				return;
			/* TLS hands over one record at a time: go on while the
			 * socket or the TLS layer may have more. */
			if ((size_t)n < sizeof(s->rbuf) && !c->tls)
				break;
			continue;
		}
		if (n == 0) {
			c->read_eof = true;
			break;
		}
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN || n == -EWOULDBLOCK)
			break;
		http__conn_free(c, true); /* reset by peer, a TLS error and the like */
		return;
	}
	conn_settle(c);
}

void http__conn_on_write(evutil_socket_t fd, short what, void *arg)
{
	http_conn_t *c = arg;
	if (c->tls && !tls_handshake_done(c->tls)) {
		if (conn_tls_handshake(c) > 0)
			http__conn_on_read(fd, what, c); /* the request may be there already */
		return;
	}
	if (c->tls_read_wants_write) {
		c->tls_read_wants_write = false;
		http__conn_on_read(fd, what, c);
		return;
	}
	conn_new_turn(c);
	conn_settle(c);
}

/* ---- Socket-less connections (fuzzer) ----------------------------------- */

int http_conn_feed(http_conn_t *c, const void *data, size_t len)
{
	http__conn_feed(c, data, len);
	while ((c->out_paused || c->yielded) && !c->close_after) {
		c->out.len = c->out_off = 0; /* as if the output were sent */
		conn_new_turn(c);
		http__conn_account(c);
		http__conn_resume(c);
	}
	c->out.len = c->out_off = 0;
	http__conn_account(c);
	return c->close_after ? 1 : 0;
}

/*
 * http.c - one HTTP/1.1 exchange with a node, on an event base, with
 * failover and deadlines; and the response parser it and the WebSocket
 * handshake share.
 *
 * A request (cl_req_t) makes attempts: pick a node (nodes.c), connect
 * (non-blocking, within the connect timeout), write the request
 * ("Connection: close": one exchange per connection), read the response
 * (libhttp-parser, bounded), then judge it.  A failed attempt marks its
 * node failed (backoff) and the next attempt goes to another node, while
 * the whole-request deadline allows.  An attempt may use half of the time
 * left while untried nodes remain, so a node that accepts and then stalls
 * cannot eat the whole deadline.  Java semantics (CL_REQ_JAVA, API.md
 * §6.1): HTTP >= 300 and a "node down" envelope fail over; "rate-limited"
 * and "unknown" are retried after 100 ms, at most 5 attempts.
 *
 * The same code runs on the client's loop (background work) and on a
 * private base on the caller's thread (cl_req_run: calls that block).
 * Sockets are written with MSG_NOSIGNAL: a library must not raise SIGPIPE.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "artemis/clock.h"
#include "client_int.h"

#define REQ_READ_CHUNK     16384
#define REQ_RERUN_PAUSE_MS 100
#define REQ_MAX_RERUNS     5

enum { REQ_IDLE = 0, REQ_CONNECTING, REQ_WRITING, REQ_READING, REQ_PAUSED };

/* ---- response parser ------------------------------------------------------ */

static int resp__on_field(http_parser *p, const char *at, size_t len)
{
	cl_resp_t *r = p->data;

	if (r->last_was_value) {
		r->field_len = 0;
		r->last_was_value = false;
	}
	for (size_t i = 0; i < len && r->field_len + 1 < sizeof(r->field); i++)
		r->field[r->field_len++] = at[i];
	r->field[r->field_len] = '\0';
	return 0;
}

static int resp__on_value(http_parser *p, const char *at, size_t len)
{
	cl_resp_t *r = p->data;

	if (!r->last_was_value) {
		r->last_was_value = true;
		r->in_accept = strcasecmp(r->field, "sec-websocket-accept") == 0;
		if (r->in_accept)
			r->accept[0] = '\0';
	}
	if (r->in_accept) {
		size_t have = strlen(r->accept);
		if (have + len >= sizeof(r->accept))
			return 1; /* no valid accept value is that long */
		memcpy(r->accept + have, at, len);
		r->accept[have + len] = '\0';
	}
	return 0;
}

static int resp__on_body(http_parser *p, const char *at, size_t len)
{
	cl_resp_t *r = p->data;

	if (r->body.len + len > r->max_body) {
		r->too_big = true;
		return 1;
	}
	return buf_append(&r->body, at, len) ? 1 : 0;
}

static int resp__on_headers(http_parser *p)
{
	cl_resp_t *r = p->data;

	r->status = p->status_code;
	return r->status >= 100 && r->status <= 599 ? 0 : -1; /* "HTTP/1.1 20 OK" */
}

static int resp__on_complete(http_parser *p)
{
	cl_resp_t *r = p->data;

	r->complete = true;
	http_parser_pause(p, 1); /* one response per connection: stop here */
	return 0;
}

static const http_parser_settings resp__settings = {
    .on_header_field = resp__on_field,
    .on_header_value = resp__on_value,
    .on_headers_complete = resp__on_headers,
    .on_body = resp__on_body,
    .on_message_complete = resp__on_complete,
};

void cl_resp_init(cl_resp_t *r, size_t max_body)
{
	buf_free(&r->body);
	memset(r, 0, sizeof(*r));
	http_parser_init(&r->p, HTTP_RESPONSE);
	r->p.data = r;
	r->max_body = max_body;
	r->last_was_value = true;
}

int cl_resp_feed(cl_resp_t *r, const char *data, size_t len, size_t *used)
{
	size_t n;

	*used = 0;
	if (r->complete)
		return 1;
	n = http_parser_execute(&r->p, &resp__settings, data, len);
	*used = n;
	if (r->complete)
		return 1;
	if (r->too_big)
		return ARTEMIS_E_LIMIT;
	if (HTTP_PARSER_ERRNO(&r->p) != HPE_OK)
		return r->body.err ? ARTEMIS_E_NOMEM : ARTEMIS_E_PROTO;
	if (r->p.upgrade) /* headers of a 101 are complete */
		return r->complete = true, 1;
	return 0;
}

int cl_resp_eof(cl_resp_t *r)
{
	if (r->complete)
		return 1;
	http_parser_execute(&r->p, &resp__settings, NULL, 0);
	return r->complete ? 1 : ARTEMIS_E_CONNECT;
}

void cl_resp_free(cl_resp_t *r)
{
	buf_free(&r->body);
}

/* ---- sockets ---------------------------------------------------------------- */

int cl_sock_open(const cl_target_t *t, int *fd)
{
	int one = 1, s;

	*fd = -1;
	s = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(s, (const struct sockaddr *)&t->addr, t->addrlen) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(s);
		return -e;
	}
	*fd = s;
	return 0;
}

int cl_sock_error(int fd)
{
	int e = 0;
	socklen_t len = sizeof(e);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		return -errno;
	return -e;
}

int cl_sock_flush(int fd, buf_t *out, size_t *off)
{
	while (*off < out->len) {
		ssize_t n = send(fd, out->data + *off, out->len - *off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -errno;
		}
		*off += (size_t)n;
	}
	out->len = 0;
	*off = 0;
	return 0;
}

/* ---- requests --------------------------------------------------------------- */

static void req__attempt(cl_req_t *r);

cl_req_t *cl_req_new(cl_t *c, int purpose, unsigned flags, const char *method, const char *path,
                     const char *body, size_t body_len)
{
	cl_req_t *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->c = c;
	r->purpose = purpose;
	r->flags = flags;
	r->fd = -1;
	snprintf(r->method, sizeof(r->method), "%s", method);
	r->path = cl_strdup(path);
	if (body)
		buf_append(&r->body, body, body_len);
	if (r->path == NULL || buf_error(&r->body)) {
		cl_req_free(r);
		return NULL;
	}
	return r;
}

static void req__close(cl_req_t *r)
{
	if (r->ev) {
		event_free(r->ev);
		r->ev = NULL;
	}
	if (r->fd >= 0) {
		close(r->fd);
		r->fd = -1;
	}
}

void cl_req_free(cl_req_t *r)
{
	if (r == NULL)
		return;
	req__close(r);
	if (r->timer)
		event_free(r->timer);
	free(r->path);
	free(r->token);
	buf_free(&r->body);
	buf_free(&r->out);
	cl_resp_free(&r->resp);
	json_decref(r->json);
	free(r);
}

/* Leave the loop's list (submitted requests only: a blocking call's
 * request never touches it, it runs on another thread). */
static void req__unlink(cl_req_t *r)
{
	cl_t *c = r->c;

	if (!r->loop_owned || (r->prev == NULL && c->reqs != r))
		return;
	if (r->prev)
		r->prev->next = r->next;
	else
		c->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
}

void cl_req_cancel(cl_req_t *r)
{
	req__unlink(r);
	if (r->drop)
		r->drop(r->arg);
	cl_req_free(r);
}

static void req__finish(cl_req_t *r, int rc)
{
	req__close(r);
	if (r->timer)
		event_del(r->timer);
	r->phase = REQ_IDLE;
	r->rc = rc;
	if (rc == 0)
		cl_err_clear(&r->err);
	else if (r->err.code == 0)
		cl_err(&r->err, rc, "%s %s: %s", r->method, r->path, artemis_strerror(rc));
	r->err.code = rc;
	req__unlink(r);
	if (r->done)
		r->done(r, r->arg);
	if (r->loop_owned)
		cl_req_free(r);
}

/* Record what went wrong with this attempt, in the error the caller sees
 * if no later attempt succeeds. */
static void req__note(cl_req_t *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void req__note(cl_req_t *r, int code, const char *fmt, ...)
{
	char what[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	cl_err(&r->err, code, "%s %s on %s: %s", r->method, r->path, r->target.url, what);
}

static void req__attempt_failed(cl_req_t *r, int code, bool node_failed)
{
	req__close(r);
	if (node_failed)
		cl_nodes_failed(r->c, r->target.url);
	if (r->flags & CL_REQ_ONE_NODE) {
		req__finish(r, code);
		return;
	}
	req__attempt(r);
}

static void req__judge(cl_req_t *r)
{
	r->status = r->resp.status;
	r->err.http_status = r->status;
	req__close(r);
	if (!(r->flags & CL_REQ_JAVA)) {
		if (r->status == 502 || r->status == 503 || r->status == 504) {
			req__note(r, ARTEMIS_E_HTTP, "HTTP %d", r->status);
			req__attempt_failed(r, ARTEMIS_E_HTTP, true);
			return;
		}
		cl_nodes_ok(r->c, r->purpose, r->target.url);
		req__finish(r, 0);
		return;
	}
	if (r->status >= 300) {
		req__note(r, ARTEMIS_E_HTTP, "HTTP %d", r->status);
		req__attempt_failed(r, ARTEMIS_E_HTTP, true);
		return;
	}
	json_decref(r->json);
	r->json = cl_json_parse(r->resp.body.data, r->resp.body.len);
	cl_status_of(r->json, &r->st);
	if (!json_is_object(r->json) || r->st.status[0] == '\0') {
		req__note(r, ARTEMIS_E_PROTO, "the answer is not an Artemis JSON answer");
		req__attempt_failed(r, ARTEMIS_E_PROTO, true);
		return;
	}
	snprintf(r->err.server_code, sizeof(r->err.server_code), "%s", r->st.code);
	if (cl_status_node_down(&r->st)) {
		req__note(r, ARTEMIS_E_SERVER, "%s: %s", r->st.code, r->st.message);
		req__attempt_failed(r, ARTEMIS_E_SERVER, true);
		return;
	}
	if (cl_status_rerunnable(&r->st) && r->attempts < REQ_MAX_RERUNS &&
	    clock_mono_ms() + REQ_RERUN_PAUSE_MS < r->deadline_ms) {
		struct timeval tv = {0, REQ_RERUN_PAUSE_MS * 1000};
		req__note(r, ARTEMIS_E_SERVER, "%s: %s", r->st.code, r->st.message);
		r->ntried--; /* the same node may answer the retry */
		r->phase = REQ_PAUSED;
		evtimer_add(r->timer, &tv);
		return;
	}
	cl_nodes_ok(r->c, r->purpose, r->target.url);
	req__finish(r, 0);
}

static void req__read(cl_req_t *r)
{
	char chunk[REQ_READ_CHUNK];

	for (;;) {
		ssize_t n = recv(r->fd, chunk, sizeof(chunk), 0);
		size_t used;
		int rc;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			req__note(r, ARTEMIS_E_CONNECT, "read: %s", strerror(errno));
			req__attempt_failed(r, ARTEMIS_E_CONNECT, true);
			return;
		}
		if (n == 0) {
			if (cl_resp_eof(&r->resp) == 1) {
				req__judge(r);
				return;
			}
			req__note(r, ARTEMIS_E_CONNECT,
			          "connection closed before the response ended");
			req__attempt_failed(r, ARTEMIS_E_CONNECT, true);
			return;
		}
		rc = cl_resp_feed(&r->resp, chunk, (size_t)n, &used);
		if (rc == 1) {
			req__judge(r);
			return;
		}
		if (rc < 0) {
			req__note(r, rc,
			          rc == ARTEMIS_E_LIMIT ? "the response is larger than allowed"
			                                : "the response is not valid HTTP");
			req__attempt_failed(r, rc, true);
			return;
		}
	}
}

static void req__arm(cl_req_t *r, short what, uint64_t until_ms);

static void req__on_io(evutil_socket_t fd, short what, void *arg)
{
	cl_req_t *r = arg;
	int rc;

	(void)fd;
	(void)what;
	if (r->phase == REQ_CONNECTING) {
		rc = cl_sock_error(r->fd);
		if (rc < 0) {
			req__note(r, ARTEMIS_E_CONNECT, "connect: %s", strerror(-rc));
			req__attempt_failed(r, ARTEMIS_E_CONNECT, true);
			return;
		}
		r->phase = REQ_WRITING;
		req__arm(r, EV_WRITE, r->attempt_deadline);
	}
	if (r->phase == REQ_WRITING) {
		rc = cl_sock_flush(r->fd, &r->out, &r->out_off);
		if (rc == 1)
			return;
		if (rc < 0) {
			req__note(r, ARTEMIS_E_CONNECT, "write: %s", strerror(-rc));
			req__attempt_failed(r, ARTEMIS_E_CONNECT, true);
			return;
		}
		r->phase = REQ_READING;
		req__arm(r, EV_READ, 0);
		return;
	}
	if (r->phase == REQ_READING)
		req__read(r);
}

static void req__on_timer(evutil_socket_t fd, short what, void *arg)
{
	cl_req_t *r = arg;

	(void)fd;
	(void)what;
	if (r->phase == REQ_PAUSED) {
		req__attempt(r);
		return;
	}
	req__note(r, ARTEMIS_E_TIMEOUT, "%s",
	          r->phase == REQ_CONNECTING ? "connect timed out" : "no complete answer in time");
	req__attempt_failed(r, ARTEMIS_E_TIMEOUT, true);
}

/* (Re)arm the fd event for `what`, and the timer for until_ms (0: keep). */
static void req__arm(cl_req_t *r, short what, uint64_t until_ms)
{
	if (r->ev)
		event_free(r->ev);
	r->ev = event_new(r->base, r->fd, what | EV_PERSIST, req__on_io, r);
	if (r->ev)
		event_add(r->ev, NULL);
	if (until_ms) {
		uint64_t now = clock_mono_ms(), ms = until_ms > now ? until_ms - now : 0;
		struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
		evtimer_add(r->timer, &tv);
	}
}

static int req__write_request(cl_req_t *r)
{
	buf_t *o = &r->out;
	bool has_body = r->body.len > 0 || strcmp(r->method, "POST") == 0 ||
	                strcmp(r->method, "PUT") == 0 || strcmp(r->method, "PATCH") == 0;

	buf_reset(o);
	r->out_off = 0;
	buf_printf(
	    o,
	    "%s %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: libartemis-client/" ARTEMIS_CLIENT_VERSION
	    "\r\nAccept: application/json\r\nConnection: close\r\n",
	    r->method, r->target.prefix, r->path, r->target.hostport);
	if (r->token && *r->token)
		buf_printf(o, "Authorization: Bearer %s\r\n", r->token);
	if (has_body)
		buf_printf(o, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
		           r->body.len);
	buf_puts(o, "\r\n");
	buf_append(o, r->body.data ? r->body.data : "", r->body.len);
	return buf_error(o) ? ARTEMIS_E_NOMEM : 0;
}

static void req__attempt(cl_req_t *r)
{
	for (;;) {
		uint64_t now = clock_mono_ms(), left;
		cl_err_t perr = {0};
		int rc, nodes;

		if (now >= r->deadline_ms) {
			if (r->err.code == 0)
				cl_err(&r->err, ARTEMIS_E_TIMEOUT,
				       "%s %s: no answer before the deadline", r->method, r->path);
			req__finish(r, r->err.code);
			return;
		}
		if (r->ntried >= CL_MAX_NODES || r->attempts >= CL_MAX_NODES + REQ_MAX_RERUNS) {
			req__finish(r, r->err.code ? r->err.code : ARTEMIS_E_CONNECT);
			return;
		}
		rc = cl_nodes_pick(r->c, r->purpose, r->tried, r->ntried, false, &r->target, NULL,
		                   &perr);
		if (rc == -ENOENT) { /* every node tried */
			req__finish(r, r->err.code ? r->err.code : ARTEMIS_E_CONNECT);
			return;
		}
		r->tried[r->ntried++] = cl_hash(r->target.url);
		r->attempts++;
		if (rc < 0) { /* the name did not resolve */
			cl_err_copy(&r->err, &perr);
			cl_nodes_failed(r->c, r->target.url);
			continue;
		}
		cl_resp_init(&r->resp, r->c->conf.max_response_bytes);
		if (req__write_request(r) < 0) {
			req__finish(r, cl_err(&r->err, ARTEMIS_E_NOMEM, "out of memory"));
			return;
		}
		rc = cl_sock_open(&r->target, &r->fd);
		if (rc < 0) {
			req__note(r, ARTEMIS_E_CONNECT, "connect: %s", strerror(-rc));
			cl_nodes_failed(r->c, r->target.url);
			continue;
		}
		left = r->deadline_ms - now;
		nodes = cl_nodes_count(r->c);
		if (!(r->flags & CL_REQ_ONE_NODE) && (size_t)nodes > r->ntried && left > 400)
			left /= 2;
		r->attempt_deadline = now + left;
		r->phase = REQ_CONNECTING;
		req__arm(r, EV_WRITE,
		         now + (left < r->c->conf.connect_timeout_ms
		                    ? left
		                    : r->c->conf.connect_timeout_ms));
		return;
	}
}

void cl_req_start(cl_req_t *r)
{
	if (r->deadline_ms == 0)
		r->deadline_ms = clock_mono_ms() + r->c->conf.request_timeout_ms;
	if (r->timer == NULL)
		r->timer = evtimer_new(r->base, req__on_timer, r);
	if (r->timer == NULL) {
		req__finish(r, cl_err(&r->err, ARTEMIS_E_SYS, "cannot create a timer"));
		return;
	}
	req__attempt(r);
}

int cl_req_run(cl_req_t *r)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (cfg)
		event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
	base = cfg ? event_base_new_with_config(cfg) : NULL;
	if (cfg)
		event_config_free(cfg);
	if (base == NULL)
		return r->rc = cl_err(&r->err, ARTEMIS_E_SYS, "cannot create an event base");
	/* the private timer, created and freed here with its base */
	r->timer = evtimer_new(base, req__on_timer, r);
	if (r->timer == NULL) {
		event_base_free(base);
		return r->rc = cl_err(&r->err, ARTEMIS_E_SYS, "cannot create a timer");
	}
	r->base = base;
	r->done = NULL;
	cl_req_start(r);
	event_base_dispatch(base);
	/* done: the private events go with the base */
	if (r->timer) {
		event_free(r->timer);
		r->timer = NULL;
	}
	req__close(r);
	event_base_free(base);
	r->base = NULL;
	return r->rc;
}

void cl_req_submit(cl_req_t *r)
{
	cl_t *c = r->c;

	r->base = c->base;
	r->loop_owned = true;
	r->next = c->reqs;
	r->prev = NULL;
	if (c->reqs)
		c->reqs->prev = r;
	c->reqs = r;
	cl_req_start(r);
}

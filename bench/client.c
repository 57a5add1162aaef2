/*
 * client.c - the HTTP/1.1 client engine of artemis-bench (see client.h).
 *
 * Per connection: a non-blocking socket, one persistent read event and a
 * one-shot write event armed only while output is pending, an output
 * buffer, a FIFO of the requests in flight (at most `pipeline`) and a
 * response parser.  Requests are generated straight into the output buffer
 * and written with one write() per batch.  A connection that fails (connect
 * refused, reset, parse error, timeout) fails its requests with that kind,
 * is closed and reconnects 100 ms later.
 *
 * Scheduling: flat-out classes keep every connection's pipeline full; rated
 * classes are advanced by a 100 us tick (a precise timer) that computes how
 * many requests are due and hands them to connections with room, and by
 * each answer (a backlog waits, its latency counted from when it was due).
 */
#include "artemis/tls.h"
#include "client.h"

#include <errno.h>
#include <http_parser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <event2/event.h>

#define BODY_KEEP       (1u << 20) /* response bytes kept to find responseStatus */
#define RECONNECT_NS    100000000ull
#define UNREACHABLE_NS  3000000000ull
#define TICK_US         100        /* rated dispatch: at most this late */
#define HOUSEKEEPING_NS 1000000ull /* timeouts, reconnects, the end */

typedef struct bench_conn {
	bench_class_t *cls;
	bench_run_t *run;
	unsigned target;
	int fd;
	bool connecting;
	bool write_armed;
	bool close_after;
	tls_conn_t *tls; /* https targets: the handshake is done before the first request */
	struct event *rev, *wev;
	http_parser parser;
	bbuf_t out;
	size_t out_off;
	bbuf_t body;
	bench_req_t *ring;
	unsigned head, count;
	uint64_t reconnect_at;
	uint64_t opened_ns;
} bench_conn_t;

const char *const bench_ec_names[BENCH_EC_COUNT] = {
    "partial_fail",        "bad-request",    "rate-limited",
    "no-permission",       "data-not-found", "internal-service-error",
    "service-unavailable", "unknown",        "other"};

/* ------------------------------------------------------------ buffers -- */

void bbuf_reserve(bbuf_t *b, size_t more)
{
	if (b->len + more + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		perror("artemis-bench: realloc");
		exit(1);
	}
	b->p = p;
	b->cap = cap;
}

void bbuf_append(bbuf_t *b, const void *p, size_t n)
{
	bbuf_reserve(b, n);
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = 0;
}

void bbuf_puts(bbuf_t *b, const char *s)
{
	bbuf_append(b, s, strlen(s));
}

void bbuf_printf(bbuf_t *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	bbuf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void bbuf_free(bbuf_t *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ------------------------------------------------------------- misc ---- */

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int bench_target_parse(const char *spec, bench_target_t *t)
{
	memset(t, 0, sizeof(*t));
	if (strncmp(spec, "http://", 7) == 0)
		spec += 7;
	else if (strncmp(spec, "https://", 8) == 0 && (spec += 8))
		t->tls = true;
	const char *colon = strrchr(spec, ':');
	if (!colon)
		return -EINVAL;
	size_t hl = (size_t)(colon - spec);
	if (hl >= sizeof(t->host))
		return -EINVAL;
	memcpy(t->host, spec, hl);
	if (!hl)
		strcpy(t->host, "127.0.0.1");
	size_t pl = strcspn(colon + 1, "/");
	if (!pl || pl >= sizeof(t->port))
		return -EINVAL;
	memcpy(t->port, colon + 1, pl);
	snprintf(t->hostport, sizeof(t->hostport), "%s:%s", t->host, t->port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
	if (getaddrinfo(t->host, t->port, &hints, &ai) != 0)
		return -EHOSTUNREACH;
	memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
	t->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

uint64_t bench_stats_errors(const bench_stats_t *s)
{
	uint64_t n = s->err_connect + s->err_timeout + s->err_closed + s->err_parse + s->err_http;
	for (int i = 0; i < BENCH_EC_COUNT; i++)
		n += s->err_code[i];
	return n;
}

void bench_stats_merge(bench_stats_t *d, const bench_stats_t *s)
{
	d->sent += s->sent;
	d->done += s->done;
	d->ok += s->ok;
	d->instances += s->instances;
	d->bytes_in += s->bytes_in;
	d->err_connect += s->err_connect;
	d->err_timeout += s->err_timeout;
	d->err_closed += s->err_closed;
	d->err_parse += s->err_parse;
	d->err_http += s->err_http;
	for (int i = 0; i < 600; i++)
		d->http_codes[i] += s->http_codes[i];
	for (int i = 0; i < BENCH_EC_COUNT; i++)
		d->err_code[i] += s->err_code[i];
	hist_merge(&d->lat, &s->lat);
}

static void stats_init(bench_stats_t *s)
{
	memset(s, 0, sizeof(*s));
	hist_init(&s->lat);
}

/* Both the run's statistics and the progress window's. */
#define STAT_ADD(c, field, n) ((c)->stats.field += (n), (c)->window.field += (n))

/* ------------------------------------------------------ the response --- */

static int classify_code(const char *p, size_t n)
{
#define IS(s) (n == sizeof(s) - 1 && memcmp(p, s, n) == 0)
	if (IS("success"))
		return -1;
	for (int i = 0; i < BENCH_EC_OTHER; i++)
		if (n == strlen(bench_ec_names[i]) && memcmp(p, bench_ec_names[i], n) == 0)
			return i;
	return BENCH_EC_OTHER;
#undef IS
}

/* The responseStatus errorCode of a body, -1 for success or no envelope. */
static int response_code(const char *body, size_t len)
{
	static const char env[] = "\"responseStatus\"";
	static const char key[] = "\"errorCode\"";
	const char *rs = memmem(body, len, env, sizeof(env) - 1);
	if (!rs)
		return -1;
	const char *end = body + len;
	const char *close = memchr(rs, '}', (size_t)(end - rs));
	if (!close)
		close = end;
	const char *k = memmem(rs, (size_t)(close - rs), key, sizeof(key) - 1);
	if (!k)
		return BENCH_EC_OTHER;
	const char *v = memchr(k + sizeof(key) - 1, '"', (size_t)(close - k) - (sizeof(key) - 1));
	if (!v)
		return BENCH_EC_OTHER;
	v++;
	const char *q = memchr(v, '"', (size_t)(close - v));
	if (!q)
		return BENCH_EC_OTHER;
	return classify_code(v, (size_t)(q - v));
}

static bench_req_t ring_pop(bench_conn_t *c)
{
	bench_req_t r = c->ring[c->head];
	c->head = (c->head + 1) % c->cls->pipeline;
	c->count--;
	return r;
}

static void finish(bench_conn_t *c, bench_req_t *r, bool ok)
{
	bench_class_t *cls = c->cls;
	STAT_ADD(cls, done, 1);
	if (ok) {
		STAT_ADD(cls, ok, 1);
		STAT_ADD(cls, instances, r->instances);
	}
	cls->last_ns = bench_now_ns();
	if (cls->done)
		cls->done(cls, r, ok);
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	bench_conn_t *c = p->data;
	if (c->body.len + n <= BODY_KEEP)
		bbuf_append(&c->body, at, n);
	return 0;
}

static int on_message_complete(http_parser *p)
{
	bench_conn_t *c = p->data;
	bench_class_t *cls = c->cls;
	if (!c->count) {
		STAT_ADD(cls, err_parse, 1); /* an answer nobody asked for */
		c->close_after = true;
		return 0;
	}
	bench_req_t r = ring_pop(c);
	uint64_t now = bench_now_ns();
	uint64_t lat = now > r.due_ns ? now - r.due_ns : 0;
	hist_record(&cls->stats.lat, lat);
	hist_record(&cls->window.lat, lat);
	bool ok = false;
	unsigned st = p->status_code;
	if (st != 200) {
		STAT_ADD(cls, err_http, 1);
		if (st < 600) {
			cls->stats.http_codes[st]++;
			cls->window.http_codes[st]++;
		}
	} else {
		int ec = response_code(c->body.p ? c->body.p : "", c->body.len);
		if (ec >= 0)
			STAT_ADD(cls, err_code[ec], 1);
		ok = ec < 0;
	}
	c->body.len = 0;
	if (!http_should_keep_alive(p))
		c->close_after = true;
	finish(c, &r, ok);
	return 0;
}

static const http_parser_settings parser_settings = {
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ------------------------------------------------------ connections ---- */

static void conn_read_cb(evutil_socket_t fd, short what, void *arg);
static void conn_write_cb(evutil_socket_t fd, short what, void *arg);
static void conn_fill(bench_conn_t *c, uint64_t now);
static void conn_fill_rated(bench_conn_t *c, uint64_t now);

/* Close and fail what is in flight with the given kind; reconnect later. */
static void conn_fail(bench_conn_t *c, uint64_t *kind_run, uint64_t *kind_win)
{
	while (c->count) {
		bench_req_t r = ring_pop(c);
		if (kind_run) {
			(*kind_run)++;
			(*kind_win)++;
		}
		finish(c, &r, false);
	}
	if (c->fd >= 0) {
		event_del(c->rev);
		event_del(c->wev);
		tls_conn_free(c->tls);
		c->tls = NULL;
		close(c->fd);
	}
	c->fd = -1;
	c->connecting = false;
	c->write_armed = false;
	c->close_after = false;
	c->out.len = c->out_off = 0;
	c->body.len = 0;
	c->reconnect_at = bench_now_ns() + RECONNECT_NS;
}

#define FAIL(c, kind) conn_fail((c), &(c)->cls->stats.kind, &(c)->cls->window.kind)

/* The client context of https targets: any certificate is accepted. */
static tls_ctx_t *bench_tls_ctx(void)
{
	static tls_ctx_t *ctx;
	char err[256];
	if (!ctx && tls_client_ctx(NULL, &ctx, err, sizeof(err)) < 0) {
		fprintf(stderr, "artemis-bench: TLS: %s\n", err);
		exit(1);
	}
	return ctx;
}

/* Connected: on an https target the handshake first (conn_tls_step). */
static void conn_connected(bench_conn_t *c);

static void conn_tls_step(bench_conn_t *c)
{
	int rc = tls_handshake(c->tls);
	if (rc == -EAGAIN) {
		if (tls_want(c->tls) == TLS_WANT_WRITE && !c->write_armed) {
			c->write_armed = true;
			event_add(c->wev, NULL);
		}
		return;
	}
	if (rc < 0) {
		STAT_ADD(c->cls, err_connect, 1);
		conn_fail(c, NULL, NULL);
		return;
	}
	conn_fill(c, bench_now_ns());
}

static void conn_connected(bench_conn_t *c)
{
	const bench_target_t *t = &c->run->targets[c->target];
	event_add(c->rev, NULL);
	if (t->tls) {
		if (!(c->tls = tls_connect_new(bench_tls_ctx(), c->fd, t->host))) {
			STAT_ADD(c->cls, err_connect, 1);
			conn_fail(c, NULL, NULL);
			return;
		}
		conn_tls_step(c);
		return;
	}
	conn_fill(c, bench_now_ns());
}

static void conn_open(bench_conn_t *c)
{
	const bench_target_t *t = &c->run->targets[c->target];
	c->reconnect_at = 0;
	c->opened_ns = bench_now_ns();
	int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		STAT_ADD(c->cls, err_connect, 1);
		c->reconnect_at = bench_now_ns() + RECONNECT_NS;
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	http_parser_init(&c->parser, HTTP_RESPONSE);
	c->parser.data = c;
	struct event_base *base = event_get_base(c->rev);
	event_assign(c->rev, base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
	event_assign(c->wev, base, fd, EV_WRITE, conn_write_cb, c);
	if (connect(fd, (const struct sockaddr *)&t->addr, t->addrlen) == 0) {
		conn_connected(c);
		return;
	}
	if (errno != EINPROGRESS) {
		STAT_ADD(c->cls, err_connect, 1);
		conn_fail(c, NULL, NULL);
		return;
	}
	c->connecting = true;
	c->write_armed = true;
	event_add(c->wev, NULL);
}

/* write(2), or through TLS: > 0, or -1 with errno. */
static ssize_t conn_write(bench_conn_t *c, const void *p, size_t len)
{
	if (!c->tls)
		return write(c->fd, p, len);
	ssize_t n = tls_write(c->tls, p, len);
	if (n < 0) {
		errno = (int)-n;
		return -1;
	}
	return n;
}

static void conn_flush(bench_conn_t *c)
{
	if (c->tls && !tls_handshake_done(c->tls))
		return; /* the handshake's end fills and flushes */
	while (c->out_off < c->out.len) {
		ssize_t n = conn_write(c, c->out.p + c->out_off, c->out.len - c->out_off);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->write_armed) {
				c->write_armed = true;
				event_add(c->wev, NULL);
			}
			return;
		}
		FAIL(c, err_closed);
		return;
	}
	c->out.len = c->out_off = 0;
}

static void gzip_body(bench_class_t *cls)
{
	z_stream *zs = cls->zs;
	if (!zs) {
		zs = calloc(1, sizeof(*zs));
		if (!zs ||
		    deflateInit2(zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
			fprintf(stderr, "artemis-bench: deflateInit2 failed\n");
			exit(1);
		}
		cls->zs = zs;
	} else {
		deflateReset(zs);
	}
	cls->zbuf.len = 0;
	bbuf_reserve(&cls->zbuf, deflateBound(zs, cls->scratch.len));
	zs->next_in = (Bytef *)cls->scratch.p;
	zs->avail_in = (uInt)cls->scratch.len;
	zs->next_out = (Bytef *)cls->zbuf.p;
	zs->avail_out = (uInt)(cls->zbuf.cap - 1);
	if (deflate(zs, Z_FINISH) != Z_STREAM_END) {
		fprintf(stderr, "artemis-bench: deflate failed\n");
		exit(1);
	}
	cls->zbuf.len = zs->total_out;
}

/* Generate one request onto the connection; false when the class has
 * nothing to send. */
static bool conn_issue(bench_conn_t *c, uint64_t due, uint64_t now)
{
	bench_class_t *cls = c->cls;
	bench_req_t r = {0};
	cls->scratch.len = 0;
	if (cls->body(cls, c->target, &cls->scratch, &r) != 1)
		return false;
	const bbuf_t *body = &cls->scratch;
	if (cls->gzip) {
		gzip_body(cls);
		body = &cls->zbuf;
	}
	const bbuf_t *pre = &cls->prefix[c->target];
	bbuf_reserve(&c->out, pre->len + 32 + body->len);
	memcpy(c->out.p + c->out.len, pre->p, pre->len);
	c->out.len += pre->len;
	c->out.len += (size_t)sprintf(c->out.p + c->out.len, "%zu\r\n\r\n", body->len);
	memcpy(c->out.p + c->out.len, body->p, body->len);
	c->out.len += body->len;
	r.due_ns = due;
	r.sent_ns = now;
	c->ring[(c->head + c->count) % cls->pipeline] = r;
	c->count++;
	cls->issued++;
	STAT_ADD(cls, sent, 1);
	return true;
}

static bool class_may_issue(const bench_class_t *cls)
{
	return !cls->limit || cls->issued < cls->limit;
}

/* Flat out: keep the pipeline full. */
static void conn_fill(bench_conn_t *c, uint64_t now)
{
	bench_class_t *cls = c->cls;
	if (c->fd < 0 || c->connecting || c->close_after || cls->rate > 0 || c->run->stop ||
	    (c->tls && !tls_handshake_done(c->tls)))
		return;
	while (c->count < cls->pipeline && class_may_issue(cls))
		if (!conn_issue(c, now, now))
			break;
	conn_flush(c);
}

/* read(2), or through TLS: > 0, 0 closed, or -1 with errno. */
static ssize_t conn_read(bench_conn_t *c, void *buf, size_t len)
{
	if (!c->tls)
		return read(c->fd, buf, len);
	ssize_t n = tls_read(c->tls, buf, len);
	if (n < 0) {
		errno = (int)-n;
		return -1;
	}
	return n;
}

static void conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	bench_conn_t *c = arg;
	char buf[65536];
	(void)fd;
	if (c->tls && !tls_handshake_done(c->tls)) {
		conn_tls_step(c);
		return;
	}
	ssize_t n = conn_read(c, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		FAIL(c, err_closed);
		return;
	}
	STAT_ADD(c->cls, bytes_in, (uint64_t)n);
	size_t used = http_parser_execute(&c->parser, &parser_settings, buf, (size_t)n);
	if (c->fd < 0)
		return;
	if (used != (size_t)n || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
		FAIL(c, err_parse);
		return;
	}
	if (c->close_after && !c->count) {
		conn_fail(c, NULL, NULL);
		c->reconnect_at = 0; /* the server closed by the book: at once */
		return;
	}
	if (c->cls->rate > 0)
		conn_fill_rated(c, bench_now_ns());
	else
		conn_fill(c, bench_now_ns());
}

static void conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	bench_conn_t *c = arg;
	c->write_armed = false;
	if (c->connecting) {
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
		c->connecting = false;
		if (err) {
			STAT_ADD(c->cls, err_connect, 1);
			conn_fail(c, NULL, NULL);
			return;
		}
		conn_connected(c);
		return;
	}
	if (c->tls && !tls_handshake_done(c->tls)) {
		conn_tls_step(c);
		return;
	}
	conn_flush(c);
}

/* ------------------------------------------------------------ the run -- */

struct run_state {
	bench_run_t *run;
	bench_class_t **cls;
	unsigned n;
	uint64_t start, end, timeout_ns, next_progress, drain_until, next_housekeeping;
	bool draining;
	struct event *tick;
};

/* How many requests of a rated class are due by now: request k is due at
 * start + k/rate, so k = 0 at once. */
static uint64_t class_due(const bench_class_t *cls, uint64_t now)
{
	uint64_t due = (uint64_t)((double)(now - cls->start_ns) * 1e-9 * cls->rate) + 1;
	return cls->limit && due > cls->limit ? cls->limit : due;
}

static uint64_t class_due_at(const bench_class_t *cls)
{
	return cls->start_ns + (uint64_t)((double)cls->issued / cls->rate * 1e9);
}

/* Rated class, one connection with room (after an answer): what is due. */
static void conn_fill_rated(bench_conn_t *c, uint64_t now)
{
	bench_class_t *cls = c->cls;
	if (c->fd < 0 || c->connecting || c->close_after || c->run->stop)
		return;
	uint64_t due = class_due(cls, now);
	while (c->count < cls->pipeline && cls->issued < due)
		if (!conn_issue(c, class_due_at(cls), now))
			break;
	conn_flush(c);
}

/* Rated classes: hand the requests now due to connections with room. */
static void class_dispatch(bench_run_t *run, bench_class_t *cls, uint64_t now)
{
	if (cls->rate <= 0 || run->stop)
		return;
	uint64_t due = class_due(cls, now);
	unsigned nc = cls->connections;
	while (cls->issued < due) {
		bench_conn_t *pick = NULL;
		for (unsigned k = 0; k < nc; k++) {
			bench_conn_t *c = &cls->conns[(cls->rr + k) % nc];
			if (c->fd >= 0 && !c->connecting && !c->close_after &&
			    c->count < cls->pipeline) {
				pick = c;
				cls->rr = (cls->rr + k + 1) % nc;
				break;
			}
		}
		if (!pick)
			break;
		if (!conn_issue(pick, class_due_at(cls), now))
			break;
		if (pick->count == cls->pipeline || cls->issued == due)
			conn_flush(pick);
	}
	for (unsigned k = 0; k < nc; k++)
		if (cls->conns[k].fd >= 0 && cls->conns[k].out_off < cls->conns[k].out.len &&
		    !cls->conns[k].write_armed)
			conn_flush(&cls->conns[k]);
}

static void class_housekeeping(struct run_state *st, bench_class_t *cls, uint64_t now)
{
	for (unsigned k = 0; k < cls->connections; k++) {
		bench_conn_t *c = &cls->conns[k];
		if (c->fd < 0) {
			if (!st->run->stop && !st->draining && now >= c->reconnect_at)
				conn_open(c);
			continue;
		}
		if (c->connecting) {
			if (now - c->opened_ns > st->timeout_ns) {
				STAT_ADD(cls, err_connect, 1);
				conn_fail(c, NULL, NULL);
			}
			continue;
		}
		if (c->count && now - c->ring[c->head].sent_ns > st->timeout_ns) {
			FAIL(c, err_timeout);
			continue;
		}
		if (!c->count && !st->draining)
			conn_fill(c, now); /* a generator that said "not now" earlier */
	}
}

static bool class_finished(const bench_class_t *cls)
{
	return cls->limit && cls->issued >= cls->limit && cls->stats.done >= cls->limit;
}

static uint64_t inflight(const struct run_state *st)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < st->n; i++)
		for (unsigned k = 0; k < st->cls[i]->connections; k++)
			n += st->cls[i]->conns[k].count;
	return n;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run_state *st = arg;
	bench_run_t *run = st->run;
	uint64_t now = bench_now_ns();
	for (unsigned i = 0; i < st->n && !st->draining; i++)
		class_dispatch(run, st->cls[i], now);
	if (now < st->next_housekeeping)
		return;
	st->next_housekeeping = now + HOUSEKEEPING_NS;
	if (run->tick)
		run->tick(run, now);
	bool all_done = true;
	for (unsigned i = 0; i < st->n; i++) {
		bench_class_t *cls = st->cls[i];
		class_housekeeping(st, cls, now);
		if (!class_finished(cls))
			all_done = false;
		else if (!cls->elapsed)
			cls->elapsed = (double)(cls->last_ns - cls->start_ns) * 1e-9;
	}
	if (run->progress && run->progress_every > 0 && now >= st->next_progress) {
		run->progress(run, st->cls, st->n, (double)(now - st->start) * 1e-9);
		for (unsigned i = 0; i < st->n; i++)
			stats_init(&st->cls[i]->window);
		st->next_progress += (uint64_t)(run->progress_every * 1e9);
	}
	/* Nobody to talk to: every attempt refused for UNREACHABLE_NS. */
	bool unreachable = now - st->start > UNREACHABLE_NS;
	for (unsigned i = 0; i < st->n && unreachable; i++)
		if (st->cls[i]->stats.done || !st->cls[i]->stats.err_connect)
			unreachable = false;
	if (unreachable && !st->draining) {
		fprintf(stderr,
		        "artemis-bench: no connection could be made for %.1f s: giving up\n",
		        (double)UNREACHABLE_NS * 1e-9);
		run->unreachable = true;
	}
	if (!st->draining && (run->stop || now >= st->end || all_done || unreachable)) {
		st->draining = true;
		run->stop = true;
		st->drain_until = now + st->timeout_ns;
		for (unsigned i = 0; i < st->n; i++)
			if (!st->cls[i]->elapsed)
				st->cls[i]->elapsed = (double)(now - st->cls[i]->start_ns) * 1e-9;
		run->elapsed = (double)(now - st->start) * 1e-9;
	}
	if (st->draining && (!inflight(st) || now >= st->drain_until)) {
		for (unsigned i = 0; i < st->n; i++)
			for (unsigned k = 0; k < st->cls[i]->connections; k++) {
				bench_conn_t *c = &st->cls[i]->conns[k];
				if (c->count)
					FAIL(c, err_timeout);
				else if (c->fd >= 0)
					conn_fail(c, NULL, NULL);
			}
		event_base_loopbreak(event_get_base(st->tick));
	}
}

static void class_setup(bench_run_t *run, bench_class_t *cls, struct event_base *base)
{
	if (!cls->pipeline)
		cls->pipeline = 1;
	if (!cls->connections)
		cls->connections = 1;
	stats_init(&cls->stats);
	stats_init(&cls->window);
	cls->issued = 0;
	cls->elapsed = 0;
	cls->prefix = calloc(run->ntargets, sizeof(*cls->prefix));
	cls->conns = calloc(cls->connections, sizeof(*cls->conns));
	if (!cls->prefix || !cls->conns) {
		perror("artemis-bench: calloc");
		exit(1);
	}
	for (unsigned t = 0; t < run->ntargets; t++)
		bbuf_printf(&cls->prefix[t],
		            "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
		            "Accept: application/json\r\n%sContent-Length: ",
		            cls->path, run->targets[t].hostport,
		            cls->gzip ? "Content-Encoding: gzip\r\n" : "");
	for (unsigned k = 0; k < cls->connections; k++) {
		bench_conn_t *c = &cls->conns[k];
		c->cls = cls;
		c->run = run;
		c->target = k % run->ntargets;
		c->fd = -1;
		c->ring = calloc(cls->pipeline, sizeof(*c->ring));
		c->rev = event_new(base, -1, 0, conn_read_cb, c);
		c->wev = event_new(base, -1, 0, conn_write_cb, c);
		if (!c->ring || !c->rev || !c->wev) {
			perror("artemis-bench: connection setup");
			exit(1);
		}
	}
}

static void class_teardown(bench_class_t *cls)
{
	for (unsigned k = 0; k < cls->connections; k++) {
		bench_conn_t *c = &cls->conns[k];
		if (c->fd >= 0)
			close(c->fd);
		event_free(c->rev);
		event_free(c->wev);
		free(c->ring);
		bbuf_free(&c->out);
		bbuf_free(&c->body);
	}
	free(cls->conns);
	cls->conns = NULL;
	if (cls->zs) {
		deflateEnd(cls->zs);
		free(cls->zs);
		cls->zs = NULL;
	}
	bbuf_free(&cls->scratch);
	bbuf_free(&cls->zbuf);
}

static void sched_self(uint64_t *cpu, uint64_t *wait)
{
	unsigned long long c = 0, w = 0;
	FILE *f = fopen("/proc/self/schedstat", "r");
	if (f) {
		if (fscanf(f, "%llu %llu", &c, &w) != 2)
			c = w = 0;
		fclose(f);
	}
	*cpu = c;
	*wait = w;
}

struct event_base *bench_base_new(void)
{
	struct event_config *cfg = event_config_new();
	if (!cfg)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	struct event_base *base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

int bench_run(bench_run_t *run, bench_class_t **cls, unsigned n)
{
	struct event_base *base = run->base ? run->base : bench_base_new();
	if (!base)
		return -ENOMEM;
	struct run_state st = {.run = run, .cls = cls, .n = n};
	st.timeout_ns = (uint64_t)((run->timeout > 0 ? run->timeout : 5.0) * 1e9);
	run->stop = false;
	for (unsigned i = 0; i < n; i++)
		class_setup(run, cls[i], base);
	st.start = bench_now_ns();
	st.end = run->duration > 0 ? st.start + (uint64_t)(run->duration * 1e9) : UINT64_MAX;
	st.next_progress = st.start + (uint64_t)(run->progress_every * 1e9);
	for (unsigned i = 0; i < n; i++) {
		cls[i]->start_ns = cls[i]->last_ns = st.start;
		for (unsigned k = 0; k < cls[i]->connections; k++)
			conn_open(&cls[i]->conns[k]);
	}
	uint64_t cpu0, wait0;
	sched_self(&cpu0, &wait0);
	st.tick = event_new(base, -1, EV_PERSIST, tick_cb, &st);
	struct timeval tv = {0, TICK_US};
	event_add(st.tick, &tv);
	event_base_dispatch(base);
	event_free(st.tick);
	sched_self(&run->cpu_ns, &run->runq_wait_ns);
	run->cpu_ns -= cpu0;
	run->runq_wait_ns -= wait0;
	for (unsigned i = 0; i < n; i++) {
		for (unsigned t = 0; t < run->ntargets; t++)
			bbuf_free(&cls[i]->prefix[t]);
		free(cls[i]->prefix);
		cls[i]->prefix = NULL;
		class_teardown(cls[i]);
	}
	if (!run->base)
		event_base_free(base);
	return 0;
}

/*
 * ws_bench.c - `artemis-bench ws-subscribe`: push latency over the
 * WebSocket discovery endpoint (API.md §3).
 *
 * K subscriber sessions open /artemis/websocket/discovery/instance-change
 * and each sends one DiscoveryConfig (subscriber k: service k % S).  A
 * driver then registers, at --rate per second, one probe instance per
 * service in turn (register.json; a register always pushes `new`, API.md
 * §8.9), carrying its sequence number in metadata.bench_seq.  Each pushed
 * `new` InstanceChange whose bench_seq is known gives one delivery whose
 * latency runs from the register request being written to the push being
 * read.  Before measuring, probes are registered until every subscriber has
 * received one push (the subscription is live; the endpoint sends no ack).
 * After the load, deliveries still missing after --timeout are lost.
 *
 * The client side of RFC 6455 is small and written here: the handshake,
 * masked text frames out, unmasked frames in (with continuation), pong for
 * ping, and close.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "bench.h"
#include "workload.h"

enum { WS_CONNECTING, WS_HANDSHAKE, WS_OPEN, WS_DEAD };

typedef struct ws_sub {
	struct ws_bench *wb;
	unsigned index;
	unsigned target;
	uint32_t service;
	int fd;
	int state;
	struct event *rev, *wev;
	bbuf_t in;  /* unparsed input */
	bbuf_t msg; /* a text message being reassembled */
	bbuf_t out;
	size_t out_off;
	uint64_t received;
} ws_sub_t;

typedef struct ws_bench {
	wl_opts_t *o;
	struct event_base *base;
	ws_sub_t *subs;
	uint32_t *subs_per_service; /* open subscriptions per service */
	/* probes: sequence numbers, when each was written, deliveries */
	uint64_t next_seq, cap_seq, measure_from;
	uint64_t *sent_ns;
	uint16_t *delivered;
	uint32_t *expected;
	bench_stats_t push; /* deliveries (latency), handshake and session errors */
	uint64_t unknown_msgs;
	uint64_t rnd;
	bool measuring;
} ws_bench_t;

/* ---------------------------------------------------------- framing ---- */

static void ws_frame(ws_sub_t *s, int opcode, const void *p, size_t n)
{
	uint8_t h[14];
	size_t hl = 0;
	h[hl++] = (uint8_t)(0x80 | opcode);
	if (n < 126) {
		h[hl++] = (uint8_t)(0x80 | n);
	} else if (n < 65536) {
		h[hl++] = 0x80 | 126;
		h[hl++] = (uint8_t)(n >> 8);
		h[hl++] = (uint8_t)n;
	} else {
		h[hl++] = 0x80 | 127;
		for (int k = 7; k >= 0; k--)
			h[hl++] = (uint8_t)((uint64_t)n >> (8 * k));
	}
	uint32_t key = (uint32_t)wl_rand(&s->wb->rnd);
	uint8_t mask[4] = {(uint8_t)key, (uint8_t)(key >> 8), (uint8_t)(key >> 16),
	                   (uint8_t)(key >> 24)};
	memcpy(h + hl, mask, 4);
	hl += 4;
	bbuf_append(&s->out, h, hl);
	bbuf_reserve(&s->out, n);
	const uint8_t *src = p;
	for (size_t k = 0; k < n; k++)
		s->out.p[s->out.len + k] = (char)(src[k] ^ mask[k & 3]);
	s->out.len += n;
}

static void sub_fail(ws_sub_t *s, const char *why);

static void sub_flush(ws_sub_t *s)
{
	while (s->out_off < s->out.len) {
		ssize_t n = write(s->fd, s->out.p + s->out_off, s->out.len - s->out_off);
		if (n > 0) {
			s->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			event_add(s->wev, NULL);
			return;
		}
		sub_fail(s, "write");
		return;
	}
	s->out.len = s->out_off = 0;
}

/* ---------------------------------------------------------- messages --- */

static uint64_t parse_seq(const char *p, size_t n, bool *found)
{
	static const char key[] = "\"bench_seq\":\"";
	const char *k = memmem(p, n, key, sizeof(key) - 1);
	*found = false;
	if (!k)
		return 0;
	k += sizeof(key) - 1;
	uint64_t v = 0;
	const char *end = p + n;
	while (k < end && *k >= '0' && *k <= '9') {
		v = v * 10 + (uint64_t)(*k - '0');
		k++;
		*found = true;
	}
	return v;
}

static void on_message(ws_sub_t *s, const char *p, size_t n)
{
	ws_bench_t *wb = s->wb;
	static const char isnew[] = "\"changeType\":\"new\"";
	s->received++;
	bool found;
	uint64_t seq = parse_seq(p, n, &found);
	if (!found || !memmem(p, n, isnew, sizeof(isnew) - 1) || seq >= wb->next_seq) {
		wb->unknown_msgs++;
		return;
	}
	if (!wb->measuring || seq < wb->measure_from)
		return;
	uint64_t now = bench_now_ns();
	hist_record(&wb->push.lat, now - wb->sent_ns[seq]);
	wb->push.done++;
	wb->push.ok++;
	wb->push.instances++;
	if (wb->delivered[seq] < UINT16_MAX)
		wb->delivered[seq]++;
}

/* Parse whole frames out of s->in; false when the session died. */
static bool parse_frames(ws_sub_t *s)
{
	size_t off = 0;
	const uint8_t *b = (const uint8_t *)s->in.p;
	while (s->in.len - off >= 2) {
		const uint8_t *f = b + off;
		size_t avail = s->in.len - off, hl = 2;
		int fin = f[0] & 0x80, op = f[0] & 0x0f, masked = f[1] & 0x80;
		uint64_t len = f[1] & 0x7f;
		if (len == 126) {
			if (avail < 4)
				break;
			len = (uint64_t)f[2] << 8 | f[3];
			hl = 4;
		} else if (len == 127) {
			if (avail < 10)
				break;
			len = 0;
			for (int k = 0; k < 8; k++)
				len = len << 8 | f[2 + k];
			hl = 10;
		}
		uint8_t mask[4] = {0};
		if (masked) {
			if (avail < hl + 4)
				break;
			memcpy(mask, f + hl, 4);
			hl += 4;
		}
		if (len > (64u << 20)) {
			sub_fail(s, "frame too large");
			return false;
		}
		if (avail < hl + len)
			break;
		char *pl = (char *)f + hl;
		if (masked)
			for (uint64_t k = 0; k < len; k++)
				pl[k] ^= (char)mask[k & 3];
		off += hl + (size_t)len;
		if (op == 0x1 || op == 0x0) {
			bbuf_append(&s->msg, pl, (size_t)len);
			if (fin) {
				on_message(s, s->msg.p, s->msg.len);
				s->msg.len = 0;
			}
		} else if (op == 0x9) {
			ws_frame(s, 0xA, pl, (size_t)len);
		} else if (op == 0x8) {
			sub_fail(s, "closed by the server");
			return false;
		}
	}
	memmove(s->in.p, s->in.p + off, s->in.len - off);
	s->in.len -= off;
	return true;
}

/* ---------------------------------------------------------- sessions --- */

static void sub_fail(ws_sub_t *s, const char *why)
{
	ws_bench_t *wb = s->wb;
	if (s->state == WS_DEAD)
		return;
	if (s->state == WS_OPEN && wb->subs_per_service[s->service])
		wb->subs_per_service[s->service]--;
	if (s->state == WS_CONNECTING)
		wb->push.err_connect++;
	else
		wb->push.err_closed++;
	if (wb->push.err_connect + wb->push.err_closed <= 3)
		fprintf(stderr, "artemis-bench ws-subscribe: subscriber %u: %s\n", s->index, why);
	s->state = WS_DEAD;
	event_del(s->rev);
	event_del(s->wev);
	close(s->fd);
	s->fd = -1;
}

static void sub_subscribe(ws_sub_t *s)
{
	ws_bench_t *wb = s->wb;
	char svc[64];
	wl_service_id(wb->o, s->service, svc, sizeof(svc));
	char cfg[256];
	int n = snprintf(cfg, sizeof(cfg),
	                 "{\"serviceId\":\"%s\",\"regionId\":\"%s\",\"zoneId\":\"%s\"}", svc,
	                 wb->o->region, wb->o->zone);
	ws_frame(s, 0x1, cfg, (size_t)n);
	s->state = WS_OPEN;
	wb->subs_per_service[s->service]++;
}

static void sub_handshake_reply(ws_sub_t *s)
{
	char *end = memmem(s->in.p, s->in.len, "\r\n\r\n", 4);
	if (!end)
		return;
	int status = 0;
	if (sscanf(s->in.p, "HTTP/1.%*d %d", &status) != 1 || status != 101) {
		if (status > 0 && status < 600)
			s->wb->push.http_codes[status]++;
		s->wb->push.err_http++;
		char why[96];
		snprintf(why, sizeof(why), "handshake answered HTTP %d, not 101", status);
		s->state = WS_HANDSHAKE;
		sub_fail(s, why);
		s->wb->push.err_closed--; /* counted as an HTTP error */
		return;
	}
	size_t used = (size_t)(end + 4 - s->in.p);
	memmove(s->in.p, s->in.p + used, s->in.len - used);
	s->in.len -= used;
	sub_subscribe(s);
}

static void sub_read_cb(evutil_socket_t fd, short what, void *arg)
{
	ws_sub_t *s = arg;
	bbuf_reserve(&s->in, 65536);
	ssize_t n = read(fd, s->in.p + s->in.len, 65536);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		sub_fail(s, n ? "read error" : "connection closed");
		return;
	}
	s->in.len += (size_t)n;
	if (s->state == WS_HANDSHAKE) {
		sub_handshake_reply(s);
		if (s->state != WS_OPEN)
			return;
	}
	if (parse_frames(s))
		sub_flush(s);
}

static void sub_write_cb(evutil_socket_t fd, short what, void *arg)
{
	ws_sub_t *s = arg;
	if (s->state == WS_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			sub_fail(s, strerror(err));
			return;
		}
		s->state = WS_HANDSHAKE;
		event_add(s->rev, NULL);
	}
	sub_flush(s);
}

static void sub_open(ws_sub_t *s)
{
	ws_bench_t *wb = s->wb;
	const bench_target_t *t = &wb->o->targets[s->target];
	s->fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		sub_fail(s, strerror(errno));
		return;
	}
	int one = 1;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->rev = event_new(wb->base, s->fd, EV_READ | EV_PERSIST, sub_read_cb, s);
	s->wev = event_new(wb->base, s->fd, EV_WRITE, sub_write_cb, s);
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char key[25];
	for (int k = 0; k < 22; k++)
		key[k] = b64[wl_rand(&wb->rnd) % 64];
	key[21] = b64[(wl_rand(&wb->rnd) % 4) * 16]; /* 16 bytes: last char has 2 bits */
	key[22] = '=', key[23] = '=', key[24] = 0;
	bbuf_printf(&s->out,
	            "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
	            wb->o->ws_path, t->hostport, key);
	s->state = WS_CONNECTING;
	if (connect(s->fd, (const struct sockaddr *)&t->addr, t->addrlen) && errno != EINPROGRESS) {
		sub_fail(s, strerror(errno));
		return;
	}
	event_add(s->wev, NULL);
}

/* ------------------------------------------------------------ driver --- */

static int probe_body(bench_class_t *c, unsigned t, bbuf_t *b, bench_req_t *r)
{
	ws_bench_t *wb = c->ctx;
	if (wb->next_seq >= wb->cap_seq)
		return 0;
	const wl_opts_t *o = wb->o;
	uint64_t seq = wb->next_seq++;
	uint32_t svc = (uint32_t)(seq % o->services);
	char sid[64];
	wl_service_id(o, svc, sid, sizeof(sid));
	bbuf_printf(b,
	            "{\"instances\":[{\"regionId\":\"%s\",\"zoneId\":\"%s\",\"serviceId\":\"%s\","
	            "\"instanceId\":\"%s-probe-%u\",\"ip\":\"10.255.0.1\",\"port\":8080,"
	            "\"url\":\"http://10.255.0.1:8080\",\"status\":\"up\","
	            "\"metadata\":{\"bench_seq\":\"%llu\"}}]}",
	            o->region, o->zone, sid, o->prefix, svc, (unsigned long long)seq);
	wb->expected[seq] = wb->subs_per_service[svc];
	wb->sent_ns[seq] = bench_now_ns();
	r->instances = 1;
	r->tag = (uint32_t)seq;
	return 1;
}

static void prime_tick(bench_run_t *run, uint64_t now)
{
	ws_bench_t *wb = run->ctx;
	for (uint32_t k = 0; k < wb->o->subscribers; k++)
		if (wb->subs[k].state != WS_DEAD && !wb->subs[k].received)
			return;
	run->stop = true;
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
	ws_bench_t *wb = arg;
	uint64_t want = 0, got = 0;
	for (uint64_t q = wb->measure_from; q < wb->next_seq; q++) {
		want += wb->expected[q];
		got += wb->delivered[q] < wb->expected[q] ? wb->delivered[q] : wb->expected[q];
	}
	if (got >= want)
		event_base_loopbreak(wb->base);
}

static void usage_ws(FILE *f)
{
	fprintf(f,
	        "usage: artemis-bench ws-subscribe [options] [--subscribers K] [--ws-path PATH]\n"
	        "  K WebSocket sessions (default 100) subscribe to S services (default 10;\n"
	        "  session k to service k %% S) on --ws-path (default\n"
	        "  /artemis/websocket/discovery/instance-change).  Probe instances are then\n"
	        "  registered at --rate per second (default 100; one per service in turn) for\n"
	        "  --duration; each pushed `new` change is a delivery, its latency from the\n"
	        "  register being written to the push being read.  Deliveries missing after\n"
	        "  --timeout are reported as timeouts.  Only --setup-free options apply:\n"
	        "  the probes are the only instances.\n\n");
	wl_usage_common(f);
}

int bench_ws_subscribe_main(int argc, char **argv)
{
	static wl_opts_t o;
	memset(&o, 0, sizeof(o));
	o.mode = "ws-subscribe";
	o.connections = 4;
	o.pipeline = 1;
	o.duration = 10;
	o.timeout = 5;
	o.instances = 1000;
	o.services = 10;
	o.batch = 1;
	o.setup_batch = 100;
	o.rate = 100;
	o.subscribers = 100;
	o.ws_path = "/artemis/websocket/discovery/instance-change";
	strcpy(o.region, "us-east");
	strcpy(o.zone, "zone-1");
	int rc = wl_parse(&o, argc, argv, usage_ws);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (!o.subscribers || o.rate <= 0) {
		fprintf(stderr,
		        "artemis-bench ws-subscribe: --subscribers and --rate must be > 0\n");
		return 2;
	}
	static ws_bench_t wb;
	wb.o = &o;
	wb.rnd = o.seed;
	wb.base = bench_base_new();
	hist_init(&wb.push.lat);
	wb.cap_seq = (uint64_t)(o.rate * (o.duration + 30)) + 100000;
	wb.sent_ns = calloc(wb.cap_seq, sizeof(*wb.sent_ns));
	wb.delivered = calloc(wb.cap_seq, sizeof(*wb.delivered));
	wb.expected = calloc(wb.cap_seq, sizeof(*wb.expected));
	wb.subs = calloc(o.subscribers, sizeof(*wb.subs));
	wb.subs_per_service = calloc(o.services, sizeof(*wb.subs_per_service));
	if (!wb.base || !wb.sent_ns || !wb.delivered || !wb.expected || !wb.subs ||
	    !wb.subs_per_service) {
		perror("artemis-bench: setup");
		return 1;
	}
	for (uint32_t k = 0; k < o.subscribers; k++) {
		ws_sub_t *s = &wb.subs[k];
		s->wb = &wb;
		s->index = k;
		s->target = k % o.ntargets;
		s->service = k % o.services;
		s->fd = -1;
		sub_open(s);
	}

	/* Prime: probes until every live subscriber has had a push. */
	static bench_class_t drv;
	drv.name = "register";
	drv.path = "/artemis/api/registry/register.json";
	drv.body = probe_body;
	drv.ctx = &wb;
	drv.connections = o.connections;
	drv.pipeline = 1;
	drv.gzip = o.gzip;
	drv.rate = o.services * 20.0 > 200 ? o.services * 20.0 : 200;
	bench_class_t *cls[] = {&drv};
	bench_run_t run = {.targets = o.targets,
	                   .ntargets = o.ntargets,
	                   .duration = 15,
	                   .timeout = o.timeout,
	                   .base = wb.base,
	                   .tick = prime_tick,
	                   .ctx = &wb};
	bench_run(&run, cls, 1);
	uint32_t live = 0, primed = 0;
	for (uint32_t k = 0; k < o.subscribers; k++) {
		live += wb.subs[k].state == WS_OPEN;
		primed += wb.subs[k].state == WS_OPEN && wb.subs[k].received;
	}
	fprintf(stderr,
	        "artemis-bench ws-subscribe: %u of %u subscribers open, %u received a push "
	        "(priming: %llu probes)\n",
	        live, o.subscribers, primed, (unsigned long long)wb.next_seq);
	if (!primed) {
		fprintf(stderr,
		        "artemis-bench ws-subscribe: no push arrived: is %s served by %s?\n",
		        o.ws_path, o.targets[0].hostport);
		return 1;
	}

	/* Measure. */
	wb.measure_from = wb.next_seq;
	wb.measuring = true;
	drv.rate = o.rate;
	bench_run_t mrun = {.targets = o.targets,
	                    .ntargets = o.ntargets,
	                    .duration = o.duration,
	                    .timeout = o.timeout,
	                    .base = wb.base,
	                    .ctx = &o};
	bench_run(&mrun, cls, 1);
	/* Wait (bounded) for the pushes still on their way. */
	struct event *g = event_new(wb.base, -1, EV_PERSIST, grace_cb, &wb);
	struct timeval ms = {0, 1000};
	struct timeval lim = {(time_t)o.timeout, 0};
	event_add(g, &ms);
	event_base_loopexit(wb.base, &lim);
	event_base_dispatch(wb.base);
	event_free(g);

	uint64_t want = 0, got = 0;
	for (uint64_t q = wb.measure_from; q < wb.next_seq; q++) {
		want += wb.expected[q];
		got += wb.delivered[q] < wb.expected[q] ? wb.delivered[q] : wb.expected[q];
	}
	wb.push.err_timeout = want - got;
	wb.push.sent = want;
	static bench_class_t push;
	push.name = "push";
	push.stats = wb.push;
	push.elapsed = mrun.elapsed;
	char extra[256];
	snprintf(extra, sizeof(extra),
	         "\"subscribers\":%u,\"subscribers_open\":%u,\"deliveries_expected\":%llu,"
	         "\"deliveries\":%llu,\"unmatched_messages\":%llu",
	         o.subscribers, live, (unsigned long long)want, (unsigned long long)got,
	         (unsigned long long)wb.unknown_msgs);
	bench_class_t *out[] = {&push, &drv};
	wl_report(&o, &mrun, out, 2, extra);
	for (uint32_t k = 0; k < o.subscribers; k++) {
		ws_sub_t *s = &wb.subs[k];
		if (s->fd >= 0)
			close(s->fd);
		if (s->rev)
			event_free(s->rev);
		if (s->wev)
			event_free(s->wev);
		bbuf_free(&s->in);
		bbuf_free(&s->msg);
		bbuf_free(&s->out);
	}
	event_base_free(wb.base);
	return 0;
}

/*
 * client.h - the load generator's HTTP/1.1 client engine (client.c).
 *
 * One libevent loop, many keep-alive connections over raw non-blocking
 * sockets, responses parsed with libhttp-parser, optional pipelining.  A
 * mode describes its traffic as one or more classes (heartbeat, lookup,
 * churn, ...): a path, a body generator, a rate (or flat out), a number of
 * connections and a pipeline depth.  bench_run() drives the classes for a
 * duration or until each class has sent its limit, and fills each class's
 * statistics: requests, instances, errors by kind, latency histogram.
 *
 * Latency is measured from the moment a request was due to the moment its
 * response was complete.  With a rate, a request is due at its place in the
 * schedule (start + n/rate), so a stalled server is charged for the requests
 * it delayed (no coordinated omission); flat out, it is due when written.
 */
#ifndef ARTEMIS_BENCH_CLIENT_H
#define ARTEMIS_BENCH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "hist.h"

#define BENCH_MAX_TARGETS 16

struct event_base;

typedef struct {
	char host[128];
	char port[16];
	char hostport[160]; /* the Host header */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	bool tls; /* https://: TLS without certificate checks (a load generator) */
} bench_target_t;

/* "host:port", "http://host:port[/...]", "https://host:port[/...]" or
 * ":port" (127.0.0.1). */
int bench_target_parse(const char *spec, bench_target_t *t);

/* A growable byte buffer. */
typedef struct {
	char *p;
	size_t len, cap;
} bbuf_t;

void bbuf_reserve(bbuf_t *b, size_t more);
void bbuf_append(bbuf_t *b, const void *p, size_t n);
void bbuf_puts(bbuf_t *b, const char *s);
void bbuf_printf(bbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bbuf_free(bbuf_t *b);

/* responseStatus errorCodes other than success (API.md §1.6), then any
 * other string. */
enum {
	BENCH_EC_PARTIAL_FAIL,
	BENCH_EC_BAD_REQUEST,
	BENCH_EC_RATE_LIMITED,
	BENCH_EC_NO_PERMISSION,
	BENCH_EC_DATA_NOT_FOUND,
	BENCH_EC_INTERNAL,
	BENCH_EC_UNAVAILABLE,
	BENCH_EC_UNKNOWN,
	BENCH_EC_OTHER,
	BENCH_EC_COUNT
};
extern const char *const bench_ec_names[BENCH_EC_COUNT];

typedef struct {
	uint64_t sent;      /* requests written to a socket */
	uint64_t done;      /* requests finished: answered, or failed */
	uint64_t ok;        /* HTTP 200 and responseStatus success */
	uint64_t instances; /* instances carried by ok requests */
	uint64_t bytes_in;  /* response bytes read */
	uint64_t err_connect, err_timeout, err_closed, err_parse;
	uint64_t err_http; /* HTTP status other than 200 */
	uint32_t http_codes[600];
	uint64_t err_code[BENCH_EC_COUNT];
	hist_t lat; /* ns, every answered request */
} bench_stats_t;

uint64_t bench_stats_errors(const bench_stats_t *s);
void bench_stats_merge(bench_stats_t *dst, const bench_stats_t *src);

typedef struct {
	uint32_t instances; /* instances the request carries (instances/s) */
	uint32_t tag;       /* the generator's own, handed back to done() */
	uint64_t due_ns;    /* when it was due (latency start) */
	uint64_t sent_ns;   /* when it was written (timeouts) */
} bench_req_t;

typedef struct bench_class bench_class_t;

/* Write the next request's body for a connection to target `target`; fill
 * r->instances and r->tag.  Return 1 when a request was produced, 0 when
 * there is nothing to send right now (tried again later). */
typedef int (*bench_body_fn)(bench_class_t *c, unsigned target, bbuf_t *body, bench_req_t *r);
/* A request finished; ok as in bench_stats_t.ok. */
typedef void (*bench_done_fn)(bench_class_t *c, const bench_req_t *r, bool ok);

struct bench_conn;

struct bench_class {
	/* Set by the mode. */
	const char *name;
	const char *path;
	bench_body_fn body;
	bench_done_fn done; /* may be NULL */
	void *ctx;
	double rate;          /* requests/s over the class; 0 = flat out */
	uint64_t limit;       /* requests to send; 0 = until the run ends */
	unsigned connections; /* spread over the targets round-robin */
	unsigned pipeline;    /* requests in flight per connection, >= 1 */
	bool gzip;            /* Content-Encoding: gzip bodies */
	/* Filled by the engine. */
	bench_stats_t stats;  /* the whole run */
	bench_stats_t window; /* since the last progress line */
	uint64_t issued;
	double elapsed; /* seconds from start to its last answer (or the end) */
	/* Engine-private. */
	struct bench_conn *conns;
	bbuf_t *prefix; /* request line and headers per target */
	bbuf_t scratch, zbuf;
	void *zs;
	uint64_t start_ns, last_ns;
	unsigned rr;
};

typedef struct bench_run {
	const bench_target_t *targets;
	unsigned ntargets;
	double duration;         /* seconds; 0 = until every class reached its limit */
	double timeout;          /* seconds per request; default 5 */
	double progress_every;   /* seconds between progress lines; 0 = none */
	struct event_base *base; /* NULL: the engine makes one */
	/* Called every tick (1 ms) and for each progress line; may be NULL. */
	void (*tick)(struct bench_run *run, uint64_t now_ns);
	void (*progress)(struct bench_run *run, bench_class_t **cls, unsigned n, double at);
	void *ctx;
	bool stop;        /* set by tick() to end the run early */
	bool unreachable; /* ended because no connection could be made */
	double elapsed;
	/* This process during the run (/proc/self/schedstat): CPU time, and
	 * time runnable but waiting for a CPU (others' work on our core). */
	uint64_t cpu_ns, runq_wait_ns;
} bench_run_t;

uint64_t bench_now_ns(void);

/* An event base with a precise (timerfd) timer, as bench_run makes. */
struct event_base *bench_base_new(void);

/* Run the classes together; 0, or -errno on a setup failure (per-request
 * failures are statistics, not errors). */
int bench_run(bench_run_t *run, bench_class_t **cls, unsigned n);

#endif

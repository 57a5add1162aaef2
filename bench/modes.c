/*
 * modes.c - the HTTP modes of artemis-bench: register, heartbeat, lookup,
 * mixed and soak.  Each builds traffic classes for the client engine
 * (client.c) from the shared options and instances (workload.c), runs them
 * and reports.
 *
 *   register   instances [0, N) once each, B per request: unique ids
 *   heartbeat  renew registered instances: random ones flat out, or each
 *              instance every --interval ms
 *   lookup     lookup.json of random services (B per request)
 *   mixed      the realistic mix: every instance heartbeats every --interval
 *              (5 s), --churn % of them are replaced per minute (unregister,
 *              then register under a new id), and lookups at --lookup-rate
 *   soak       mixed for a duration (60 s), with a progress line every 10 s
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "workload.h"

static void defaults(wl_opts_t *o, const char *mode)
{
	memset(o, 0, sizeof(*o));
	o->mode = mode;
	o->connections = 32;
	o->pipeline = 1;
	o->duration = 10;
	o->timeout = 5;
	o->instances = 10000;
	o->services = 100;
	o->batch = 1;
	o->setup_batch = 100;
	o->setup = true;
	o->interval_ms = 0;
	o->churn_pct = 1;
	o->lookup_rate = 1000;
	strcpy(o->region, "us-east");
	strcpy(o->zone, "zone-1");
}

static void apply_common(const wl_opts_t *o, bench_class_t *c)
{
	c->connections = o->connections;
	c->pipeline = o->pipeline;
	c->rate = o->rate;
	c->gzip = o->gzip;
}

static int run_and_report(wl_opts_t *o, bench_class_t **cls, unsigned n, const char *extra)
{
	bench_run_t run = {.targets = o->targets,
	                   .ntargets = o->ntargets,
	                   .duration = o->duration,
	                   .timeout = o->timeout,
	                   .ctx = o,
	                   .progress_every = o->progress,
	                   .progress = wl_progress};
	int rc = bench_run(&run, cls, n);
	if (rc) {
		fprintf(stderr, "artemis-bench %s: %s\n", o->mode, strerror(-rc));
		return 1;
	}
	wl_report(o, &run, cls, n, extra);
	return run.unreachable ? 1 : 0;
}

/* ------------------------------------------------------------ register -- */

static void usage_register(FILE *f)
{
	fprintf(f, "usage: artemis-bench register [options]\n"
	           "  Registers instances 0..N-1 once each (unique ids), B per request, flat out\n"
	           "  or at --rate; ends when all are registered (or after --duration when\n"
	           "  given).  Reports registrations/s as instances/s.\n\n");
	wl_usage_common(f);
}

int bench_register_main(int argc, char **argv)
{
	wl_opts_t o;
	defaults(&o, "register");
	o.duration = 0;
	int rc = wl_parse(&o, argc, argv, usage_register);
	if (rc)
		return rc == 1 ? 0 : rc;
	static bench_class_t c;
	wl_reg_ctx_t ctx;
	wl_register_class(&c, &ctx, &o, o.batch);
	apply_common(&o, &c);
	bench_class_t *cls[] = {&c};
	return run_and_report(&o, cls, 1, NULL);
}

/* ----------------------------------------------------------- heartbeat -- */

typedef struct {
	const wl_opts_t *o;
	uint32_t cursor[BENCH_MAX_TARGETS];
	uint64_t rnd;
	bool sequential;
} hb_ctx_t;

static int hb_body(bench_class_t *c, unsigned t, bbuf_t *b, bench_req_t *r)
{
	hb_ctx_t *x = c->ctx;
	const wl_opts_t *o = x->o;
	uint32_t owned = wl_owned(o, t);
	if (!owned)
		return 0;
	bbuf_puts(b, "{\"instances\":[");
	for (uint32_t k = 0; k < o->batch; k++) {
		uint32_t nth;
		if (x->sequential) {
			nth = x->cursor[t];
			x->cursor[t] = (x->cursor[t] + 1) % owned;
		} else {
			nth = (uint32_t)(wl_rand(&x->rnd) % owned);
		}
		if (k)
			bbuf_puts(b, ",");
		wl_instance_json(o, b, wl_owned_nth(o, t, nth), 0, false);
	}
	bbuf_puts(b, "]}");
	r->instances = o->batch;
	return 1;
}

static void usage_heartbeat(FILE *f)
{
	fprintf(f, "usage: artemis-bench heartbeat [options] [--interval MS]\n"
	           "  Registers N instances (unless --no-setup), then renews them with\n"
	           "  heartbeat.json, B instances per request: random instances flat out (or at\n"
	           "  --rate), or with --interval MS every instance once per MS in turn (the rate\n"
	           "  is then N / B / interval).  instances/s is renewals/s.\n\n");
	wl_usage_common(f);
}

int bench_heartbeat_main(int argc, char **argv)
{
	wl_opts_t o;
	defaults(&o, "heartbeat");
	int rc = wl_parse(&o, argc, argv, usage_heartbeat);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (o.interval_ms > 0)
		o.rate = (double)o.instances / o.batch / (o.interval_ms / 1000.0);
	if (o.setup && wl_register_all(&o))
		return 1;
	static bench_class_t c;
	hb_ctx_t ctx = {.o = &o, .rnd = o.seed, .sequential = o.interval_ms > 0};
	c.name = "heartbeat";
	c.path = "/artemis/api/registry/heartbeat.json";
	c.body = hb_body;
	c.ctx = &ctx;
	apply_common(&o, &c);
	bench_class_t *cls[] = {&c};
	return run_and_report(&o, cls, 1, NULL);
}

/* -------------------------------------------------------------- lookup -- */

typedef struct {
	const wl_opts_t *o;
	uint64_t rnd;
} lookup_ctx_t;

static int lookup_body(bench_class_t *c, unsigned t, bbuf_t *b, bench_req_t *r)
{
	lookup_ctx_t *x = c->ctx;
	uint32_t svcs[256];
	unsigned n = x->o->batch < 256 ? x->o->batch : 256;
	for (unsigned k = 0; k < n; k++)
		svcs[k] = (uint32_t)(wl_rand(&x->rnd) % x->o->services);
	wl_lookup_json(x->o, b, svcs, n);
	r->instances = n;
	return 1;
}

static void usage_lookup(FILE *f)
{
	fprintf(f, "usage: artemis-bench lookup [options]\n"
	           "  Registers N instances over S services (unless --no-setup), then POSTs\n"
	           "  lookup.json for random services, B services per request (instances/s is\n"
	           "  services looked up per second; each has N/S instances).\n\n");
	wl_usage_common(f);
}

int bench_lookup_main(int argc, char **argv)
{
	wl_opts_t o;
	defaults(&o, "lookup");
	int rc = wl_parse(&o, argc, argv, usage_lookup);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (o.setup && wl_register_all(&o))
		return 1;
	static bench_class_t c;
	lookup_ctx_t ctx = {.o = &o, .rnd = o.seed};
	c.name = "lookup";
	c.path = "/artemis/api/discovery/lookup.json";
	c.body = lookup_body;
	c.ctx = &ctx;
	apply_common(&o, &c);
	bench_class_t *cls[] = {&c};
	return run_and_report(&o, cls, 1, NULL);
}

/* --------------------------------------------------------------- mixed -- */

enum { SLOT_ALIVE, SLOT_LEAVING, SLOT_PENDING };

/* A heartbeat's instances, kept until it is answered so that churn never
 * unregisters an instance whose heartbeat is still on the wire (which
 * would come back data-not-found: a false error). */
typedef struct {
	uint32_t n;
	uint32_t *slots;
} hb_batch_t;

typedef struct {
	const wl_opts_t *o;
	uint8_t *state;
	uint8_t *hb_out;
	uint32_t *gen;
	uint64_t rnd;
	/* heartbeats */
	uint32_t hb_cursor[BENCH_MAX_TARGETS];
	hb_batch_t *pool;
	uint32_t *free_list;
	uint32_t nfree;
	/* churn: per target, a cursor and the slots waiting to re-register */
	uint32_t churn_cursor[BENCH_MAX_TARGETS];
	uint32_t *pending[BENCH_MAX_TARGETS];
	uint32_t phead[BENCH_MAX_TARGETS], pcount[BENCH_MAX_TARGETS];
	uint64_t replaced;
} mixed_t;

static int mixed_hb_body(bench_class_t *c, unsigned t, bbuf_t *b, bench_req_t *r)
{
	mixed_t *m = c->ctx;
	const wl_opts_t *o = m->o;
	uint32_t owned = wl_owned(o, t);
	if (!m->nfree || !owned)
		return 0;
	uint32_t idx = m->free_list[--m->nfree];
	hb_batch_t *bt = &m->pool[idx];
	bt->n = 0;
	bbuf_puts(b, "{\"instances\":[");
	for (uint32_t scanned = 0; bt->n < o->batch && scanned < owned; scanned++) {
		uint32_t i = wl_owned_nth(o, t, m->hb_cursor[t]);
		m->hb_cursor[t] = (m->hb_cursor[t] + 1) % owned;
		if (m->state[i] != SLOT_ALIVE)
			continue; /* being replaced: its client is gone */
		if (bt->n)
			bbuf_puts(b, ",");
		wl_instance_json(o, b, i, m->gen[i], false);
		bt->slots[bt->n++] = i;
		m->hb_out[i]++;
	}
	bbuf_puts(b, "]}");
	if (!bt->n) {
		m->free_list[m->nfree++] = idx;
		return 0;
	}
	r->instances = bt->n;
	r->tag = idx;
	return 1;
}

static void mixed_hb_done(bench_class_t *c, const bench_req_t *r, bool ok)
{
	mixed_t *m = c->ctx;
	hb_batch_t *bt = &m->pool[r->tag];
	for (uint32_t k = 0; k < bt->n; k++)
		m->hb_out[bt->slots[k]]--;
	m->free_list[m->nfree++] = r->tag;
}

/* Churn, first half: unregister an instance no heartbeat is in flight for. */
static int churn_unreg_body(bench_class_t *c, unsigned t, bbuf_t *b, bench_req_t *r)
{
	mixed_t *m = c->ctx;
	const wl_opts_t *o = m->o;
	uint32_t owned = wl_owned(o, t);
	for (uint32_t scanned = 0; scanned < 64 && scanned < owned; scanned++) {
		uint32_t i = wl_owned_nth(o, t, m->churn_cursor[t]);
		m->churn_cursor[t] = (m->churn_cursor[t] + 1) % owned;
		if (m->state[i] != SLOT_ALIVE || m->hb_out[i])
			continue;
		m->state[i] = SLOT_LEAVING;
		bbuf_puts(b, "{\"instances\":[");
		wl_instance_json(o, b, i, m->gen[i], false);
		bbuf_puts(b, "]}");
		r->instances = 1;
		r->tag = i;
		return 1;
	}
	return 0;
}

static void churn_unreg_done(bench_class_t *c, const bench_req_t *r, bool ok)
{
	mixed_t *m = c->ctx;
	uint32_t i = r->tag;
	unsigned t = i % m->o->ntargets;
	uint32_t owned = wl_owned(m->o, t);
	m->state[i] = SLOT_PENDING;
	m->pending[t][(m->phead[t] + m->pcount[t]) % owned] = i;
	m->pcount[t]++;
}

/* Churn, second half: a new instance id takes the place, as soon as the
 * unregister is answered (this class runs closed-loop on that queue). */
static int churn_reg_body(bench_class_t *c, unsigned t, bbuf_t *b, bench_req_t *r)
{
	mixed_t *m = c->ctx;
	if (!m->pcount[t])
		return 0;
	uint32_t owned = wl_owned(m->o, t);
	uint32_t i = m->pending[t][m->phead[t]];
	m->phead[t] = (m->phead[t] + 1) % owned;
	m->pcount[t]--;
	m->gen[i]++;
	bbuf_puts(b, "{\"instances\":[");
	wl_instance_json(m->o, b, i, m->gen[i], true);
	bbuf_puts(b, "]}");
	r->instances = 1;
	r->tag = i;
	return 1;
}

static void churn_reg_done(bench_class_t *c, const bench_req_t *r, bool ok)
{
	mixed_t *m = c->ctx;
	m->state[r->tag] = SLOT_ALIVE;
	m->replaced++;
}

static void usage_mixed(FILE *f)
{
	fprintf(
	    f,
	    "usage: artemis-bench mixed|soak [options] [--interval MS] [--churn PCT]\n"
	    "                                 [--lookup-rate R] [--progress S]\n"
	    "  The realistic mix against N registered instances (default 100000 over 5000\n"
	    "  services, 200 B of metadata):\n"
	    "    heartbeat  every instance once per --interval ms (5000), B per request,\n"
	    "               over --connections connections;\n"
	    "    churn      --churn %% of the instances per minute (1) are replaced: an\n"
	    "               unregister, then a register of a new instance id in its place\n"
	    "               (never while a heartbeat for it is in flight);\n"
	    "    lookup     --lookup-rate lookups/s (1000) of random services.\n"
	    "  soak is mixed for --duration 60 s with a progress line every --progress 10 s.\n\n");
	wl_usage_common(f);
}

static int mixed_main(int argc, char **argv, const char *mode, double duration, double progress)
{
	wl_opts_t o;
	defaults(&o, mode);
	o.instances = 100000;
	o.services = 5000;
	o.metadata = 200;
	o.interval_ms = 5000;
	o.duration = duration;
	o.progress = progress;
	int rc = wl_parse(&o, argc, argv, usage_mixed);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (o.interval_ms <= 0 || !o.duration) {
		fprintf(stderr, "artemis-bench %s: --interval and --duration must be > 0\n", mode);
		return 2;
	}
	if (o.setup && wl_register_all(&o))
		return 1;

	static mixed_t m;
	memset(&m, 0, sizeof(m));
	m.o = &o;
	m.rnd = o.seed;
	m.state = calloc(o.instances, 1);
	m.hb_out = calloc(o.instances, 1);
	m.gen = calloc(o.instances, sizeof(*m.gen));
	uint32_t npool = o.connections * o.pipeline;
	m.pool = calloc(npool, sizeof(*m.pool));
	m.free_list = calloc(npool, sizeof(*m.free_list));
	uint32_t *slotmem = calloc((size_t)npool * o.batch, sizeof(uint32_t));
	if (!m.state || !m.hb_out || !m.gen || !m.pool || !m.free_list || !slotmem) {
		perror("artemis-bench: calloc");
		return 1;
	}
	for (uint32_t k = 0; k < npool; k++) {
		m.pool[k].slots = slotmem + (size_t)k * o.batch;
		m.free_list[m.nfree++] = k;
	}
	for (unsigned t = 0; t < o.ntargets; t++) {
		m.pending[t] = calloc(wl_owned(&o, t) + 1, sizeof(uint32_t));
		/* start heartbeats and churn at different places */
		uint32_t owned = wl_owned(&o, t);
		m.churn_cursor[t] = owned ? (uint32_t)(wl_rand(&m.rnd) % owned) : 0;
	}

	static bench_class_t hb, churn, lookup;
	hb.name = "heartbeat";
	hb.path = "/artemis/api/registry/heartbeat.json";
	hb.body = mixed_hb_body;
	hb.done = mixed_hb_done;
	hb.ctx = &m;
	apply_common(&o, &hb);
	hb.rate = (double)o.instances / o.batch / (o.interval_ms / 1000.0);

	static bench_class_t churn_reg;
	double events = o.instances * o.churn_pct / 100.0 / 60.0;
	churn.name = "unregister";
	churn.path = "/artemis/api/registry/unregister.json";
	churn.body = churn_unreg_body;
	churn.done = churn_unreg_done;
	churn.ctx = &m;
	churn.connections = o.ntargets;
	churn.pipeline = 1;
	churn.rate = events;
	churn.gzip = o.gzip;
	churn_reg = churn;
	churn_reg.name = "register";
	churn_reg.path = "/artemis/api/registry/register.json";
	churn_reg.body = churn_reg_body;
	churn_reg.done = churn_reg_done;
	churn_reg.rate = 0;

	static lookup_ctx_t lctx;
	lctx.o = &o;
	lctx.rnd = o.seed * 31 + 7;
	lookup.name = "lookup";
	lookup.path = "/artemis/api/discovery/lookup.json";
	lookup.body = lookup_body;
	lookup.ctx = &lctx;
	lookup.connections = o.connections / 8 > 2 ? o.connections / 8 : 2;
	lookup.pipeline = 1;
	lookup.rate = o.lookup_rate;
	lookup.gzip = o.gzip;

	bench_class_t *cls[4];
	unsigned n = 0;
	cls[n++] = &hb;
	if (events > 0) {
		cls[n++] = &churn;
		cls[n++] = &churn_reg;
	}
	if (o.lookup_rate > 0)
		cls[n++] = &lookup;
	char extra[256];
	snprintf(extra, sizeof(extra),
	         "\"interval_ms\":%.0f,\"churn_pct_per_min\":%.2f,\"lookup_rate\":%.0f,"
	         "\"heartbeat_rate\":%.0f",
	         o.interval_ms, o.churn_pct, o.lookup_rate, hb.rate);
	rc = run_and_report(&o, cls, n, extra);
	free(m.state);
	free(m.hb_out);
	free(m.gen);
	free(m.pool);
	free(m.free_list);
	free(slotmem);
	for (unsigned t = 0; t < o.ntargets; t++)
		free(m.pending[t]);
	return rc;
}

int bench_mixed_main(int argc, char **argv)
{
	return mixed_main(argc, argv, "mixed", 10, 0);
}

int bench_soak_main(int argc, char **argv)
{
	return mixed_main(argc, argv, "soak", 60, 10);
}

/*
 * repl_bench.c - `artemis-bench repl`: replication measured through the
 * nodes' registry regions (no HTTP, so only replication is timed).  Run by
 * scripts/repl_bench.sh against a local cluster (scripts/cluster.sh); the
 * results are in docs/BENCHMARKS.md.
 *
 *   repl lag --from A --to B [-n 1000]
 *        register n instances into region A as a local client would (origin
 *        0, through the register endpoint's codec), one at a time, and time
 *        each until region B holds it: p50/p99/max.
 *   repl fill --to A [-n 100000] [--services 100]
 *        register n instances into region A (for bootstrap and CPU runs).
 *   repl bootstrap --to B --expect N [--timeout 60] -- COMMAND...
 *        start COMMAND (a node with peers and an empty region B), time until
 *        B is up and holds N instances.  The node is left running.
 *   repl renew --to A [-n 100000] [--interval 5000] [--seconds 30]
 *        renew n leases of region A spread evenly over each interval, as
 *        n clients heartbeating every interval would (shm_heartbeat).
 *   repl converge --from A --to B [-n 300000] [--services 300] [--batch 500]
 *                 [--rate 6000] [--settle 60]
 *        register n instances (five small metadata keys each) into region A
 *        in batches, `rate` per second, while sampling both regions' live
 *        counts every 10 ms, then keep sampling for `settle` seconds without
 *        any write.  B only receives, so its count must never go down, must
 *        equal A's within 10 s of the last write and stay equal: exit 1
 *        otherwise (issue 11, anti-entropy deleting live replicas).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "artemis/clock.h"
#include "artemis/codec.h"
#include "artemis/shm.h"
#include "bench.h"
#include "hist.h"

#define RB_SERVICE "repl-bench"

static void rb_sleep_us(unsigned us)
{
	struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

typedef struct {
	const char *from, *to;
	long n, services, interval_ms, seconds, timeout_s, expect;
	long batch, rate, settle_s;
	char **cmd;
} rb_opts_t;

static int rb_usage(void)
{
	fprintf(stderr,
	        "usage: artemis-bench repl lag --from SHM --to SHM [-n N]\n"
	        "       artemis-bench repl fill --to SHM [-n N] [--services S]\n"
	        "       artemis-bench repl bootstrap --to SHM --expect N [--timeout S] -- CMD...\n"
	        "       artemis-bench repl renew --to SHM [-n N] [--interval MS] [--seconds S]\n"
	        "       artemis-bench repl converge --from SHM --to SHM [-n N] [--services S]\n"
	        "                     [--batch B] [--rate PER_S] [--settle S]\n");
	return 2;
}

static int rb_parse(int argc, char **argv, rb_opts_t *o)
{
	memset(o, 0, sizeof(*o));
	o->n = 1000;
	o->services = 100;
	o->interval_ms = 5000;
	o->seconds = 30;
	o->timeout_s = 60;
	o->batch = 500;
	o->rate = 6000;
	o->settle_s = 60;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			o->cmd = argv + i + 1;
			break;
		}
		if (i + 1 >= argc)
			return -1;
		const char *v = argv[++i];
		if (strcmp(a, "--from") == 0)
			o->from = v;
		else if (strcmp(a, "--to") == 0)
			o->to = v;
		else if (strcmp(a, "-n") == 0)
			o->n = atol(v);
		else if (strcmp(a, "--services") == 0)
			o->services = atol(v);
		else if (strcmp(a, "--interval") == 0)
			o->interval_ms = atol(v);
		else if (strcmp(a, "--seconds") == 0)
			o->seconds = atol(v);
		else if (strcmp(a, "--timeout") == 0)
			o->timeout_s = atol(v);
		else if (strcmp(a, "--expect") == 0)
			o->expect = atol(v);
		else if (strcmp(a, "--batch") == 0)
			o->batch = atol(v);
		else if (strcmp(a, "--rate") == 0)
			o->rate = atol(v);
		else if (strcmp(a, "--settle") == 0)
			o->settle_s = atol(v);
		else
			return -1;
	}
	return o->to && o->n > 0 && o->services > 0 && o->batch > 0 && o->rate > 0 ? 0 : -1;
}

static int rb_attach(const char *name, shm_t **out)
{
	int rc = shm_attach(name, false, out);

	if (rc < 0) {
		fprintf(stderr, "artemis-bench repl: cannot attach %s: %s\n", name, strerror(-rc));
		return rc;
	}
	shm_proc_join(*out, SHM_ROLE_TEST, -1);
	return 0;
}

/* The JSON of instance i, as a client would send it: one metadata key, or
 * five small ones (`converge`). */
static int rb_json(char *buf, size_t len, long i, long services, const char *tag)
{
	bool five = strcmp(tag, "conv") == 0;

	return snprintf(
	    buf, len,
	    "{\"regionId\":\"us-east\",\"zoneId\":\"zone-1\",\"serviceId\":\"" RB_SERVICE
	    "-%ld\",\"instanceId\":\"%s-%ld\",\"ip\":\"10.%ld.%ld.%ld\",\"port\":8080,"
	    "\"protocol\":\"http\",\"status\":\"up\",\"metadata\":{\"bench\":\"repl\"%s}}",
	    i % services, tag, i, (i >> 16) & 255, (i >> 8) & 255, i & 255,
	    five ? ",\"team\":\"payments\",\"version\":\"1.4.2\",\"weight\":\"100\","
	           "\"env\":\"prod\""
	         : "");
}

static int rb_register(shm_t *shm, instance_parser_t *p, long i, long services, const char *tag,
                       shm_key_t *key_out)
{
	char json[512];
	shm_instance_in_t si;
	int n = rb_json(json, sizeof(json), i, services, tag);
	int rc = instance_parse(p, json, (size_t)n, &si, NULL);

	if (rc == 0)
		rc = shm_register(shm, &si);
	if (rc == 0 && key_out)
		*key_out = si.key;
	return rc;
}

static int rb_lag(const rb_opts_t *o)
{
	shm_t *a, *b;
	instance_parser_t *p = instance_parser_new();
	static hist_t hist;
	hist_t *h = &hist;
	char tag[32];
	long timeouts = 0;

	if (!o->from || !p || rb_attach(o->from, &a) < 0 || rb_attach(o->to, &b) < 0) {
		instance_parser_free(p);
		return 1;
	}
	hist_init(h);
	snprintf(tag, sizeof(tag), "lag%ld", (long)getpid());
	for (long i = 0; i < o->n; i++) {
		shm_key_t key;
		uint64_t t0 = clock_mono_ns();
		if (rb_register(a, p, i, 10, tag, &key) < 0) {
			fprintf(stderr, "register failed\n");
			return 1;
		}
		shm_instance_view_t view;
		while (shm_lookup(b, &key, 0, &view, NULL) != 0) {
			if (clock_mono_ns() - t0 > 5000000000ull) {
				timeouts++;
				break;
			}
			rb_sleep_us(20);
		}
		hist_record(h, clock_mono_ns() - t0);
	}
	printf("repl lag: %ld registrations %s -> %s: p50 %.2f ms, p99 %.2f ms, max %.2f ms, "
	       "mean %.2f ms, timeouts %ld\n",
	       o->n, o->from, o->to, hist_percentile(h, 50) / 1e6, hist_percentile(h, 99) / 1e6,
	       hist_percentile(h, 100) / 1e6, hist_mean(h) / 1e6, timeouts);
	return timeouts ? 1 : 0;
}

static int rb_fill(const rb_opts_t *o)
{
	shm_t *a;
	instance_parser_t *p = instance_parser_new();

	if (!p || rb_attach(o->to, &a) < 0)
		return 1;
	uint64_t t0 = clock_mono_ns();
	for (long i = 0; i < o->n; i++) {
		int rc = rb_register(a, p, i, o->services, "fill", NULL);
		if (rc < 0) {
			fprintf(stderr, "register %ld: %s\n", i, strerror(-rc));
			return 1;
		}
	}
	printf("repl fill: %ld instances in %ld services into %s in %.2f s\n", o->n, o->services,
	       o->to, (clock_mono_ns() - t0) / 1e9);
	return 0;
}

static int rb_bootstrap(const rb_opts_t *o)
{
	shm_t *b = NULL;
	shm_stats_t st;

	if (!o->cmd || !o->cmd[0])
		return rb_usage();
	uint64_t t0 = clock_mono_ns(), deadline = t0 + (uint64_t)o->timeout_s * 1000000000ull;
	pid_t pid = fork();
	if (pid == 0) {
		execvp(o->cmd[0], o->cmd);
		_exit(127);
	}
	while (clock_mono_ns() < deadline) {
		if (b == NULL && shm_attach(o->to, true, &b) < 0)
			b = NULL;
		if (b && shm_node_state(b) == SHM_NODE_UP) {
			shm_stats(b, &st);
			if ((long)st.instances >= o->expect) {
				printf("repl bootstrap: %s up with %llu instances %.3f s after "
				       "start\n",
				       o->to, (unsigned long long)st.instances,
				       (clock_mono_ns() - t0) / 1e9);
				return 0;
			}
		}
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			fprintf(stderr, "repl bootstrap: the node exited\n");
			return 1;
		}
		rb_sleep_us(1000);
	}
	if (b)
		shm_stats(b, &st);
	fprintf(stderr, "repl bootstrap: not up with %ld instances after %ld s (%llu held)\n",
	        o->expect, o->timeout_s, b ? (unsigned long long)st.instances : 0ull);
	return 1;
}

static int rb_renew(const rb_opts_t *o)
{
	shm_t *a;
	instance_parser_t *p = instance_parser_new();
	char json[512];
	shm_key_t *keys = calloc((size_t)o->n, sizeof(*keys));
	char **texts = calloc((size_t)o->n, sizeof(*texts));
	int rc = 1;

	if (!p || !keys || !texts || rb_attach(o->to, &a) < 0)
		goto out;
	/* Keys of the instances `fill` registered. */
	for (long i = 0; i < o->n; i++) {
		shm_instance_in_t si;
		int n = rb_json(json, sizeof(json), i, o->services, "fill");
		if (instance_parse(p, json, (size_t)n, &si, NULL) < 0)
			goto out;
		texts[i] = malloc(si.key.region.len + si.key.service.len + si.key.instance.len);
		char *t = texts[i];
		if (t == NULL)
			goto out;
		memcpy(t, si.key.region.ptr, si.key.region.len);
		memcpy(t + si.key.region.len, si.key.service.ptr, si.key.service.len);
		memcpy(t + si.key.region.len + si.key.service.len, si.key.instance.ptr,
		       si.key.instance.len);
		keys[i].region = (shm_str_t){t, si.key.region.len};
		keys[i].service = (shm_str_t){t + si.key.region.len, si.key.service.len};
		keys[i].instance =
		    (shm_str_t){t + si.key.region.len + si.key.service.len, si.key.instance.len};
	}
	uint64_t t0 = clock_mono_ns(), end = t0 + (uint64_t)o->seconds * 1000000000ull;
	uint64_t per_ns = (uint64_t)o->interval_ms * 1000000ull / (uint64_t)o->n;
	long done = 0, failed = 0;
	for (uint64_t k = 0;; k++) {
		uint64_t due = t0 + k * per_ns;
		if (due >= end)
			break;
		uint64_t now = clock_mono_ns();
		if (due > now + 1000000)
			rb_sleep_us((unsigned)((due - now) / 1000));
		failed += shm_heartbeat(a, &keys[k % (uint64_t)o->n], 0) < 0;
		done++;
	}
	printf("repl renew: %ld renewals of %ld leases (every %ld ms) over %ld s, %ld failed\n",
	       done, o->n, o->interval_ms, o->seconds, failed);
	rc = failed ? 1 : 0;
out:
	for (long i = 0; texts && i < o->n; i++)
		free(texts[i]);
	free(texts);
	free(keys);
	instance_parser_free(p);
	return rc;
}

/* ---- converge --------------------------------------------------------------- */

typedef struct {
	uint64_t b_prev, drops, max_drop, max_drop_at_ms;
	uint64_t equal_after_ms; /* after the last write; UINT64_MAX: not yet */
	uint64_t diverged;       /* samples unequal after being equal */
	uint64_t min_after_equal;
} rb_conv_t;

static uint64_t rb_live(shm_t *s)
{
	shm_stats_t st;

	shm_stats(s, &st);
	return st.instances;
}

/* One sample of both counts; `last` is the last write's time (0: loading). */
static void rb_conv_sample(rb_conv_t *cv, shm_t *a, shm_t *b, uint64_t t0, uint64_t last,
                           uint64_t now)
{
	uint64_t ca = rb_live(a), cb = rb_live(b);

	if (cb < cv->b_prev) {
		cv->drops++;
		if (cv->b_prev - cb > cv->max_drop) {
			cv->max_drop = cv->b_prev - cb;
			cv->max_drop_at_ms = (now - t0) / 1000000;
		}
	}
	cv->b_prev = cb;
	if (!last)
		return;
	if (cb == ca && cv->equal_after_ms == UINT64_MAX)
		cv->equal_after_ms = (now - last) / 1000000;
	else if (cb != ca && cv->equal_after_ms != UINT64_MAX) {
		cv->diverged++;
		if (cb < cv->min_after_equal)
			cv->min_after_equal = cb;
	}
}

static int rb_converge(const rb_opts_t *o)
{
	shm_t *a, *b;
	instance_parser_t *p = instance_parser_new();
	rb_conv_t cv = {.equal_after_ms = UINT64_MAX, .min_after_equal = UINT64_MAX};
	uint64_t per_batch = (uint64_t)o->batch * 1000000000ull / (uint64_t)o->rate;
	long done = 0;

	if (!o->from || !p || rb_attach(o->from, &a) < 0 || rb_attach(o->to, &b) < 0)
		return 1;
	uint64_t t0 = clock_mono_ns(), next_batch = t0, next_sample = t0, next_line = t0, last = 0;
	cv.b_prev = rb_live(b);
	for (;;) {
		uint64_t now = clock_mono_ns();
		for (; done < o->n && now >= next_batch; next_batch += per_batch) {
			for (long k = 0; k < o->batch && done < o->n; k++, done++) {
				int rc = rb_register(a, p, done, o->services, "conv", NULL);
				if (rc < 0) {
					fprintf(stderr, "register %ld: %s\n", done, strerror(-rc));
					return 1;
				}
			}
			if (done == o->n)
				last = clock_mono_ns();
		}
		if (now >= next_sample) {
			rb_conv_sample(&cv, a, b, t0, last, now);
			next_sample = now + 10000000;
		}
		if (now >= next_line) {
			printf("t=%5.1f s  A %7llu  B %7llu\n", (now - t0) / 1e9,
			       (unsigned long long)rb_live(a), (unsigned long long)rb_live(b));
			fflush(stdout);
			next_line += 5000000000ull;
		}
		now = clock_mono_ns();
		if (last && now - last >= (uint64_t)o->settle_s * 1000000000ull)
			break;
		uint64_t wake = next_sample;
		if (done < o->n && next_batch < wake)
			wake = next_batch;
		if (wake > now)
			rb_sleep_us((unsigned)((wake - now) / 1000));
	}
	bool ok = cv.drops == 0 && cv.equal_after_ms <= 10000 && cv.diverged == 0;
	printf("repl converge: %ld instances in %ld services into %s in %.1f s (batches of %ld); "
	       "%s: %llu drops (largest %llu at t=%.1f s), equal %s%.1f s after the last write, "
	       "%llu samples unequal afterwards (lowest %llu) over %ld s: %s\n",
	       o->n, o->services, o->from, (last - t0) / 1e9, o->batch, o->to,
	       (unsigned long long)cv.drops, (unsigned long long)cv.max_drop,
	       cv.max_drop_at_ms / 1e3, cv.equal_after_ms == UINT64_MAX ? "never (>)" : "",
	       cv.equal_after_ms == UINT64_MAX ? (double)o->settle_s : cv.equal_after_ms / 1e3,
	       (unsigned long long)cv.diverged,
	       (unsigned long long)(cv.min_after_equal == UINT64_MAX ? 0 : cv.min_after_equal),
	       o->settle_s, ok ? "ok" : "FAILED");
	instance_parser_free(p);
	return ok ? 0 : 1;
}

int bench_repl_main(int argc, char **argv)
{
	rb_opts_t o;

	if (argc < 2 || rb_parse(argc, argv, &o) < 0)
		return rb_usage();
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(argv[1], "lag") == 0)
		return rb_lag(&o);
	if (strcmp(argv[1], "fill") == 0)
		return rb_fill(&o);
	if (strcmp(argv[1], "bootstrap") == 0)
		return rb_bootstrap(&o);
	if (strcmp(argv[1], "renew") == 0)
		return rb_renew(&o);
	if (strcmp(argv[1], "converge") == 0)
		return rb_converge(&o);
	return rb_usage();
}

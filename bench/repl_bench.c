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
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "artemis/codec.h"
#include "artemis/shm.h"
#include "bench.h"
#include "hist.h"

#define RB_SERVICE "repl-bench"

static uint64_t rb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void rb_sleep_us(unsigned us)
{
	struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

typedef struct {
	const char *from, *to;
	long n, services, interval_ms, seconds, timeout_s, expect;
	char **cmd;
} rb_opts_t;

static int rb_usage(void)
{
	fprintf(stderr,
	        "usage: artemis-bench repl lag --from SHM --to SHM [-n N]\n"
	        "       artemis-bench repl fill --to SHM [-n N] [--services S]\n"
	        "       artemis-bench repl bootstrap --to SHM --expect N [--timeout S] -- CMD...\n"
	        "       artemis-bench repl renew --to SHM [-n N] [--interval MS] [--seconds S]\n");
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
		else
			return -1;
	}
	return o->to && o->n > 0 && o->services > 0 ? 0 : -1;
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

/* The JSON of instance i, as a client would send it. */
static int rb_json(char *buf, size_t len, long i, long services, const char *tag)
{
	return snprintf(
	    buf, len,
	    "{\"regionId\":\"us-east\",\"zoneId\":\"zone-1\",\"serviceId\":\"" RB_SERVICE
	    "-%ld\",\"instanceId\":\"%s-%ld\",\"ip\":\"10.%ld.%ld.%ld\",\"port\":8080,"
	    "\"protocol\":\"http\",\"status\":\"up\",\"metadata\":{\"bench\":\"repl\"}}",
	    i % services, tag, i, (i >> 16) & 255, (i >> 8) & 255, i & 255);
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
		uint64_t t0 = rb_now_ns();
		if (rb_register(a, p, i, 10, tag, &key) < 0) {
			fprintf(stderr, "register failed\n");
			return 1;
		}
		shm_instance_view_t view;
		while (shm_lookup(b, &key, 0, &view, NULL) != 0) {
			if (rb_now_ns() - t0 > 5000000000ull) {
				timeouts++;
				break;
			}
			rb_sleep_us(20);
		}
		hist_record(h, rb_now_ns() - t0);
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
	uint64_t t0 = rb_now_ns();
	for (long i = 0; i < o->n; i++) {
		int rc = rb_register(a, p, i, o->services, "fill", NULL);
		if (rc < 0) {
			fprintf(stderr, "register %ld: %s\n", i, strerror(-rc));
			return 1;
		}
	}
	printf("repl fill: %ld instances in %ld services into %s in %.2f s\n", o->n, o->services,
	       o->to, (rb_now_ns() - t0) / 1e9);
	return 0;
}

static int rb_bootstrap(const rb_opts_t *o)
{
	shm_t *b = NULL;
	shm_stats_t st;

	if (!o->cmd || !o->cmd[0])
		return rb_usage();
	uint64_t t0 = rb_now_ns(), deadline = t0 + (uint64_t)o->timeout_s * 1000000000ull;
	pid_t pid = fork();
	if (pid == 0) {
		execvp(o->cmd[0], o->cmd);
		_exit(127);
	}
	while (rb_now_ns() < deadline) {
		if (b == NULL && shm_attach(o->to, true, &b) < 0)
			b = NULL;
		if (b && shm_node_state(b) == SHM_NODE_UP) {
			shm_stats(b, &st);
			if ((long)st.instances >= o->expect) {
				printf("repl bootstrap: %s up with %llu instances %.3f s after "
				       "start\n",
				       o->to, (unsigned long long)st.instances,
				       (rb_now_ns() - t0) / 1e9);
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
	uint64_t t0 = rb_now_ns(), end = t0 + (uint64_t)o->seconds * 1000000000ull;
	uint64_t per_ns = (uint64_t)o->interval_ms * 1000000ull / (uint64_t)o->n;
	long done = 0, failed = 0;
	for (uint64_t k = 0;; k++) {
		uint64_t due = t0 + k * per_ns;
		if (due >= end)
			break;
		uint64_t now = rb_now_ns();
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
	return rb_usage();
}

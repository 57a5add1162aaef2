/*
 * client_bench.c - build/artemis-client-bench: what libartemis-client
 * costs its host process (bench/ keeps its own lean client for loading a
 * node; this measures the library).
 *
 *   artemis-client-bench --url http://NODE:PORT [--instances N] [--seconds S]
 *                        [--interval MS] [--lookups N]
 *
 *   1. registers N instances (default 10,000) of one service from one
 *      client, in batches of 1,000 (artemis_register_many);
 *   2. lets the client renew them every --interval ms (default 1000) for
 *      --seconds (default 10): all over its one WebSocket session; reports
 *      the renewals the node answered and the process's CPU time per
 *      renewal (getrusage: every thread, the library's loop included);
 *   3. checks the node lists all N instances;
 *   4. times artemis_discover answered from the cache, and
 *      artemis_service_choose, over --lookups calls (default 1,000,000).
 * Frees the client at the end (which unregisters the N instances).
 * Exit 1 when a step fails.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "artemis/client.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static const char *arg(int argc, char **argv, const char *name, const char *def)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return def;
}

static int fail(const char *what, const artemis_error_t *err)
{
	fprintf(stderr, "artemis-client-bench: %s: %s\n", what, err ? err->message : "failed");
	return 1;
}

static int register_all(artemis_client_t *c, const char *svc, long n)
{
	artemis_instance_t **batch = calloc(1000, sizeof(*batch));
	artemis_error_t err;
	double t0 = now_s();

	for (long done = 0; done < n;) {
		long k = n - done < 1000 ? n - done : 1000;
		for (long i = 0; i < k; i++) {
			char id[32], url[64];
			snprintf(id, sizeof(id), "i%ld", done + i);
			snprintf(url, sizeof(url), "http://10.%ld.%ld.%ld:8080",
			         (done + i) >> 16 & 255, (done + i) >> 8 & 255, (done + i) & 255);
			if (artemis_instance_new(svc, id, url, &batch[i]) < 0)
				return fail("instance", NULL);
		}
		int rc = artemis_register_many(c, (const artemis_instance_t *const *)batch,
		                               (size_t)k, &err);
		for (long i = 0; i < k; i++)
			artemis_instance_free(batch[i]);
		if (rc < 0)
			return fail("register", &err);
		done += k;
	}
	printf("register: %ld instances in %.2f s, batches of 1000\n", n, now_s() - t0);
	free(batch);
	return 0;
}

static int heartbeats(artemis_client_t *c, double seconds)
{
	uint64_t hb0, http0, fail0, ws0;
	double t0, c0, wall, cpu;
	struct timespec tick = {0, 100 * 1000000};

	/* the session opens with the first round: wait for it, then measure */
	while (artemis_client_stat(c, ARTEMIS_STAT_WS_SESSIONS) == 0 ||
	       artemis_client_stat(c, ARTEMIS_STAT_HEARTBEATS) == 0)
		nanosleep(&tick, NULL);
	hb0 = artemis_client_stat(c, ARTEMIS_STAT_HEARTBEATS);
	http0 = artemis_client_stat(c, ARTEMIS_STAT_HEARTBEATS_HTTP);
	fail0 = artemis_client_stat(c, ARTEMIS_STAT_HEARTBEAT_FAILURES);
	ws0 = artemis_client_stat(c, ARTEMIS_STAT_WS_SESSIONS);
	t0 = now_s();
	c0 = cpu_s();
	while (now_s() - t0 < seconds)
		nanosleep(&tick, NULL);
	wall = now_s() - t0;
	cpu = cpu_s() - c0;
	uint64_t hb = artemis_client_stat(c, ARTEMIS_STAT_HEARTBEATS) - hb0;
	printf("heartbeat: %" PRIu64 " renewals in %.1f s (%.0f/s) over the WebSocket; %" PRIu64
	       " over HTTP, %" PRIu64 " failed, %" PRIu64 " sessions reopened\n",
	       hb, wall, (double)hb / wall,
	       artemis_client_stat(c, ARTEMIS_STAT_HEARTBEATS_HTTP) - http0,
	       artemis_client_stat(c, ARTEMIS_STAT_HEARTBEAT_FAILURES) - fail0,
	       artemis_client_stat(c, ARTEMIS_STAT_WS_SESSIONS) - ws0);
	if (hb == 0)
		return fail("no renewal answered", NULL);
	printf("heartbeat: %.2f us of CPU per renewal (process, all threads: %.3f s CPU)\n",
	       cpu * 1e6 / (double)hb, cpu);
	return 0;
}

static int lookups(artemis_client_t *c, const char *svc, long n, long want)
{
	artemis_service_t *s;
	artemis_error_t err;
	const artemis_instance_t *pick;
	double t0;

	if (artemis_discover(c, svc, &s, &err) < 0)
		return fail("discover", &err);
	printf("discover: %zu instances in the cache\n", artemis_service_size(s));
	if ((long)artemis_service_size(s) != want)
		return fail("the cache does not hold every instance", NULL);
	t0 = now_s();
	for (long k = 0; k < n; k++) {
		artemis_service_t *x;
		if (artemis_discover(c, svc, &x, NULL) < 0)
			return fail("discover", NULL);
		artemis_service_release(x);
	}
	printf("discover (cached): %.0f ns per call (%ld calls)\n",
	       (now_s() - t0) * 1e9 / (double)n, n);
	t0 = now_s();
	for (long k = 0; k < n; k++)
		if (artemis_service_choose(s, NULL, &pick) < 0)
			return fail("choose", NULL);
	printf("choose: %.0f ns per call (%ld calls)\n", (now_s() - t0) * 1e9 / (double)n, n);
	artemis_service_release(s);
	return 0;
}

/* The node's view of the registered instances. */
static int listed(artemis_client_t *c, const char *svc, long n)
{
	artemis_service_t *s;
	artemis_error_t err;
	bool all;

	if (artemis_lookup(c, svc, &s, &err) < 0)
		return fail("lookup", &err);
	printf("node: %zu instances of %s\n", artemis_service_size(s), svc);
	all = (long)artemis_service_size(s) == n;
	artemis_service_release(s);
	return all ? 0 : fail("the node does not list every instance", NULL);
}

/* The measurements in order; the first failure ends them. */
static int run(artemis_client_t *c, const char *svc, long n, double seconds, long nlookups)
{
	int rc;

	if ((rc = register_all(c, svc, n)) != 0 || (rc = heartbeats(c, seconds)) != 0 ||
	    (rc = listed(c, svc, n)) != 0)
		return rc;
	return lookups(c, svc, nlookups, n);
}

int main(int argc, char **argv)
{
	const char *url = arg(argc, argv, "--url", "http://127.0.0.1:8080");
	long n = atol(arg(argc, argv, "--instances", "10000"));
	long interval = atol(arg(argc, argv, "--interval", "1000"));
	double seconds = atof(arg(argc, argv, "--seconds", "10"));
	long nlookups = atol(arg(argc, argv, "--lookups", "1000000"));
	artemis_options_t *o = artemis_options_new();
	artemis_client_t *c;
	artemis_error_t err;
	char svc[64];
	int rc;

	if (n < 1 || nlookups < 1 || seconds <= 0) {
		fprintf(stderr,
		        "usage: artemis-client-bench --url URL [--instances N] [--seconds S] "
		        "[--interval MS] [--lookups N]\n");
		return 2;
	}
	snprintf(svc, sizeof(svc), "client-bench-%d", (int)getpid());
	if (artemis_options_add_url(o, url) < 0 ||
	    artemis_options_set_int(o, ARTEMIS_OPT_HEARTBEAT_INTERVAL_MS, interval) < 0 ||
	    artemis_options_set_int(o, ARTEMIS_OPT_MAX_INSTANCES, n) < 0 ||
	    artemis_client_new(o, &c, &err) < 0) {
		fprintf(stderr, "artemis-client-bench: bad --url, --interval or --instances\n");
		return 2;
	}
	artemis_options_free(o);
	rc = run(c, svc, n, seconds, nlookups);
	artemis_client_free(c);
	return rc;
}

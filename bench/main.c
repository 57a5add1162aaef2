/*
 * main.c - build/artemis-bench: dispatch to a benchmark mode.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "workload.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *what;
} modes[] = {
    {"register", bench_register_main, "register N instances (unique ids), B per request"},
    {"heartbeat", bench_heartbeat_main, "renew instances: flat out, or each every --interval"},
    {"lookup", bench_lookup_main, "lookup.json of random services"},
    {"ws-subscribe", bench_ws_subscribe_main, "K WebSocket subscribers: push latency"},
    {"mixed", bench_mixed_main, "heartbeats every 5 s, 1%/min churn, lookups"},
    {"soak", bench_soak_main, "mixed for a duration, with progress lines"},
    {"shm", bench_shm_main, "the shared-memory registry in-process (no HTTP)"},
    {"repl", bench_repl_main, "replication lag, bootstrap, renewals (through the regions)"},
    {"mgmt-filter", bench_mgmt_filter_main, "the management down filter's cost, in-process"},
    {"auth", bench_auth_main, "a token check per management request, in-process"},
    {"routed", bench_routed_main, "a discovery call with a 10-group rule against one without"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: artemis-bench MODE [options]   (artemis-bench MODE --help)\n\nmodes:\n");
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		fprintf(f, "  %-12s %s\n", modes[i].name, modes[i].what);
	fprintf(f,
	        "\nThe HTTP modes share the options below (details: artemis-bench MODE --help).\n"
	        "Output: requests/s, instances/s, errors by kind and latency percentiles\n"
	        "(p50 p90 p99 p999 max) per traffic class, as a table or one JSON line.\n\n");
	wl_usage_common(f);
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(argv[1], modes[i].name) == 0)
			return modes[i].run(argc - 1, argv + 1);
	fprintf(stderr, "artemis-bench: unknown mode '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}

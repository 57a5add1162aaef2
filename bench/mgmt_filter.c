/*
 * mgmt_filter.c - `artemis-bench mgmt-filter`: the cost of the management
 * down filter, in-process (no HTTP, so no network or scheduler noise).
 *
 * A region with a management section and a store in a temporary directory;
 * N instances over S services registered through the codec, as the API
 * does.  Then, for --seconds each, reads of random services, in blocks of
 * 256 that alternate between plain (shm_service_read: no filter, what
 * discovery did before) and filtered (mgmt_service_read, as discovery reads
 * now), first with nothing stored, then with K operations stored: D
 * instance operations on registered instances (D instances down) and K - D
 * zone operations on zones no instance is in;
 *
 * and the management writes themselves (one instance pull-out or pull-in
 * at a time, with K stored): their latency.  Prints ns per service read,
 * per listed instance, and writes per second.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "artemis/codec.h"
#include "artemis/config.h"
#include "artemis/mgmt.h"
#include "artemis/shm.h"
#include "bench.h"

typedef struct {
	uint32_t instances, services, stored, down;
	double seconds;
	shm_t *shm;
	mgmt_t *m;
	config_t cfg;
	char dir[128], region[64];
} mf_t;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int setup(mf_t *b)
{
	char err[512], json[512], cmd[300];
	shm_params_t p;
	instance_parser_t *ip = instance_parser_new();
	snprintf(b->dir, sizeof(b->dir), "/tmp/artemis-mgmt-filter-%d", (int)getpid());
	snprintf(b->region, sizeof(b->region), "/artemis-mgmt-filter-%d", (int)getpid());
	snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s", b->dir, b->dir);
	if (system(cmd) != 0 || !ip)
		return -EIO;
	config_defaults(&b->cfg);
	snprintf(b->cfg.name, sizeof(b->cfg.name), "mgmt-filter");
	snprintf(b->cfg.data_dir, sizeof(b->cfg.data_dir), "%s", b->dir);
	shm_params_default(&p, b->region);
	p.max_instances = b->instances + 1024;
	p.mgmt_bytes = mgmt_section_bytes(b->cfg.mgmt_max_operations);
	int rc = shm_open_region(&p, SHM_CREATE_FRESH, &b->shm, NULL);
	if (rc == 0 && (rc = mgmt_boot(&b->cfg, b->shm, err, sizeof(err))) == 0)
		rc = mgmt_open(&b->cfg, b->shm, &b->m, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "artemis-bench mgmt-filter: %s\n", err);
		instance_parser_free(ip);
		return rc;
	}
	for (uint32_t i = 0; i < b->instances && rc == 0; i++) {
		shm_instance_in_t si;
		snprintf(json, sizeof(json),
		         "{\"regionId\":\"us-east\",\"zoneId\":\"zone-1\",\"serviceId\":\"svc-%u\","
		         "\"instanceId\":\"inst-%u\",\"ip\":\"10.%u.%u.%u\",\"port\":8080,"
		         "\"url\":\"http://10.%u.%u.%u:8080\",\"metadata\":{\"k\":\"v\"}}",
		         i % b->services, i, (i >> 16) & 255, (i >> 8) & 255, i & 255,
		         (i >> 16) & 255, (i >> 8) & 255, i & 255);
		rc = instance_parse(ip, json, strlen(json), &si, NULL);
		if (rc == 0)
			rc = shm_register(b->shm, &si);
	}
	instance_parser_free(ip);
	return rc;
}

static void teardown(mf_t *b)
{
	char cmd[300];
	mgmt_close(b->m);
	shm_detach(b->shm);
	shm_destroy(b->region);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", b->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "artemis-bench mgmt-filter: cannot remove %s\n", b->dir);
}

static mgmt_change_t instance_change(uint32_t i, uint32_t services, bool insert)
{
	mgmt_change_t c;
	memset(&c, 0, sizeof(c));
	c.key.kind = MGMT_INSTANCE;
	c.insert = insert;
	strcpy(c.key.region, "us-east");
	strcpy(c.key.operation, "pullout");
	snprintf(c.key.service, sizeof(c.key.service), "svc-%u", i % services);
	snprintf(c.key.instance, sizeof(c.key.instance), "inst-%u", i);
	return c;
}

/* K operations: D on registered instances (every instances/D-th one), the
 * rest on zones no instance is in, in batches. */
static int store_ops(mf_t *b)
{
	static const mgmt_ctx_t ctx = {.operator_id = "bench", .complete = -1, .surface = "java"};
	char err[512];
	mgmt_change_t *batch = calloc(MGMT_MAX_BATCH, sizeof(*batch));
	uint32_t step = b->down ? b->instances / b->down : 1, n = 0;
	int rc = batch ? 0 : -ENOMEM;
	for (uint32_t k = 0; k < b->down && rc == 0; k++) {
		batch[n++] = instance_change(k * step, b->services, true);
		if (n == MGMT_MAX_BATCH || k + 1 == b->down) {
			rc = mgmt_apply(b->m, batch, n, &ctx, err, sizeof(err));
			n = 0;
		}
	}
	for (uint32_t z = 0; z + b->down < b->stored && rc == 0; z++) {
		mgmt_change_t *c = &batch[n++];
		memset(c, 0, sizeof(*c));
		c->key.kind = MGMT_ZONE;
		c->insert = true;
		strcpy(c->key.region, "us-east");
		strcpy(c->key.operation, "pullout");
		snprintf(c->key.zone, sizeof(c->key.zone), "unused-%u", z);
		if (n == MGMT_MAX_BATCH || z + 1 + b->down == b->stored) {
			rc = mgmt_apply(b->m, batch, n, &ctx, err, sizeof(err));
			n = 0;
		}
	}
	if (rc < 0)
		fprintf(stderr, "artemis-bench mgmt-filter: storing operations: %s\n", err);
	free(batch);
	return rc;
}

/* A block of reads of random services, filtered or not: *ns and *listed
 * accumulate. */
static int read_block(mf_t *b, bool filtered, uint64_t *rnd, buf_t *out, double *ns,
                      uint64_t *listed)
{
	char svc[32];
	double t0 = now_s();
	for (int k = 0; k < 256; k++) {
		shm_service_info_t info;
		*rnd ^= *rnd << 13, *rnd ^= *rnd >> 7, *rnd ^= *rnd << 17;
		int len = snprintf(svc, sizeof(svc), "svc-%u", (uint32_t)(*rnd % b->services));
		buf_reset(out);
		shm_str_t name = {svc, (size_t)len};
		int rc = filtered ? mgmt_service_read(b->shm, name, out, &info)
		                  : shm_service_read(b->shm, name, out, &info);
		if (rc < 0)
			return rc;
		*listed += info.count;
	}
	*ns += (now_s() - t0) * 1e9;
	return 0;
}

/* Blocks of plain (unfiltered) and filtered reads, interleaved for the
 * run's duration so that the machine's drift hits both alike. */
static int reads(mf_t *b, const char *what)
{
	buf_t out = {0};
	uint64_t rnd[2] = {88172645463325252ULL, 88172645463325252ULL}, listed[2] = {0, 0};
	double ns[2] = {0, 0}, t0 = now_s();
	uint64_t blocks = 0;
	int rc = 0;
	while (rc == 0 && now_s() - t0 < b->seconds) {
		for (int f = 0; f < 2 && rc == 0; f++)
			rc = read_block(b, f == 1, &rnd[f], &out, &ns[f], &listed[f]);
		blocks++;
	}
	buf_free(&out);
	if (rc < 0)
		return rc;
	double reads_n = (double)blocks * 256;
	printf("%-22s plain %7.0f ns/read  filtered %7.0f ns/read (%5.3fx)  "
	       "%4.1f vs %4.1f ns per instance listed\n",
	       what, ns[0] / reads_n, ns[1] / reads_n, ns[1] / ns[0], ns[0] / (double)listed[0],
	       ns[1] / (double)listed[1]);
	return 0;
}

/* Single pull-outs and pull-ins with the operations stored: latency. */
static int writes(mf_t *b)
{
	static const mgmt_ctx_t ctx = {.operator_id = "bench", .complete = -1, .surface = "java"};
	char err[512];
	uint32_t n = 0;
	double t0 = now_s(), t = t0;
	while (t - t0 < b->seconds) {
		mgmt_change_t c = instance_change(1 + 2 * (n % 1000), b->services, n % 2000 < 1000);
		int rc = mgmt_apply(b->m, &c, 1, &ctx, err, sizeof(err));
		if (rc < 0) {
			fprintf(stderr, "artemis-bench mgmt-filter: write: %s\n", err);
			return rc;
		}
		n++;
		t = now_s();
	}
	printf("writes   %10.0f writes/s %9.3f ms/write (one instance operation, %u stored)\n",
	       (double)n / (t - t0), (t - t0) * 1e3 / (double)n, b->stored);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: artemis-bench mgmt-filter [-n INSTANCES] [-s SERVICES] [-k STORED]\n"
	           "                                 [-D DOWN] [-d SECONDS]\n"
	           "  the down filter's cost in-process: service reads plain, filtered with\n"
	           "  nothing stored, filtered with K operations (D instances down); then\n"
	           "  single management writes  [10000 100 10000 1000 3]\n");
}

int bench_mgmt_filter_main(int argc, char **argv)
{
	mf_t b = {.instances = 10000, .services = 100, .stored = 10000, .down = 1000, .seconds = 3};
	int ch;
	optind = 1;
	while ((ch = getopt(argc, argv, "n:s:k:D:d:h")) != -1) {
		switch (ch) {
		case 'n':
			b.instances = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 's':
			b.services = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'k':
			b.stored = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'D':
			b.down = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'd':
			b.seconds = strtod(optarg, NULL);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!b.instances || !b.services || b.down > b.stored || b.down > b.instances ||
	    b.seconds <= 0) {
		usage(stderr);
		return 2;
	}
	int rc = setup(&b);
	printf("%u instances over %u services; %u operations stored in the last runs "
	       "(%u instances down)\n",
	       b.instances, b.services, b.stored, b.down);
	if (rc == 0)
		rc = reads(&b, "nothing stored:");
	if (rc == 0)
		rc = store_ops(&b);
	if (rc == 0)
		rc = reads(&b, "operations stored:");
	if (rc == 0)
		rc = writes(&b);
	teardown(&b);
	return rc < 0 ? 1 : 0;
}

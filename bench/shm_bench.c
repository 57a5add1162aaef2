/*
 * shm_bench.c - `artemis-bench shm`: the registry region measured in-process
 * (project issue 2's figures), without HTTP.
 *
 *   fill       register N instances (M bytes of metadata each) over S services
 *   memory     resident bytes of the region per instance (/proc/self/smaps_rollup
 *              of the mapping: Rss of the /dev/shm file)
 *   heartbeat  shm_heartbeat on random keys, one process
 *   lookup     shm_lookup (view + names + JSON copy) on random keys, one
 *              process; "x100" runs are shm_lookup_batch of 100 keys, and
 *              "lookup view" reads the slot only (lease, times, status)
 *   service    shm_service_read of a random service (N/S instances each)
 *   register   re-register of random keys (fresh lease, new blob, `new` change)
 *   mixed      a writer process (register) and a reader process
 *              (heartbeat, lookup view, lookup) at once, each reporting its
 *              own rate
 *
 * Output: a table, or one JSON object per line with --json.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "artemis/clock.h"
#include "artemis/log.h"
#include "artemis/shm.h"
#include "bench.h"

struct shm_bench {
	uint32_t instances;
	uint32_t services;
	uint32_t metadata;
	double seconds;
	bool json;
	const char *only; /* comma-separated measurement names, NULL: all */
	char name[64];
	char (*ids)[24];
	char (*svcs)[24];
	shm_key_t *keys;
	char *payload;
	size_t payload_len;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void report(const struct shm_bench *b, const char *what, double ops, double secs,
                   const char *unit)
{
	double rate = ops / secs;
	if (b->json)
		printf("{\"bench\":\"shm\",\"op\":\"%s\",\"ops\":%.0f,\"seconds\":%.3f,"
		       "\"rate\":%.0f,\"unit\":\"%s\",\"instances\":%u}\n",
		       what, ops, secs, rate, unit, b->instances);
	else
		printf("%-28s %12.0f %-10s in %7.3f s = %12.0f %s/s\n", what, ops, unit, secs, rate,
		       unit);
	fflush(stdout);
}

/* The instance JSON as the API layer would store it, with M bytes of
 * metadata; only its size matters here. */
static void make_payload(struct shm_bench *b)
{
	size_t cap = 512 + b->metadata;
	b->payload = malloc(cap);
	int n = snprintf(b->payload, cap,
	                 "{\"groupId\":null,\"healthCheckUrl\":null,\"instanceId\":\"%s\","
	                 "\"ip\":\"10.0.0.1\",\"machineName\":null,\"metadata\":{\"k\":\"",
	                 "inst-000000000");
	memset(b->payload + n, 'm', b->metadata);
	n += (int)b->metadata;
	n += snprintf(b->payload + n, cap - (size_t)n,
	              "\"},\"port\":8080,\"protocol\":\"http\",\"regionId\":\"us-east\","
	              "\"serviceId\":\"service-00000\",\"status\":\"up\","
	              "\"url\":\"http://10.0.0.1:8080\",\"zoneId\":\"zone-1\"}");
	b->payload_len = (size_t)n;
}

static shm_instance_in_t make_in(const struct shm_bench *b, uint32_t i)
{
	shm_instance_in_t in;
	memset(&in, 0, sizeof(in));
	in.key.region = (shm_str_t){"us-east", 7};
	in.key.service = (shm_str_t){b->svcs[i % b->services], strlen(b->svcs[i % b->services])};
	in.key.instance = (shm_str_t){b->ids[i], strlen(b->ids[i])};
	in.zone = (shm_str_t){"zone-1", 6};
	in.json = (shm_str_t){b->payload, b->payload_len};
	return in;
}

static long region_rss_kb(const char *name)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	if (!f)
		return -1;
	char line[512];
	bool in_region = false;
	long rss = -1;
	while (fgets(line, sizeof(line), f)) {
		if (strchr(line, '-') && strstr(line, " /dev/shm")) {
			in_region = strstr(line, name + 1) != NULL;
			continue;
		}
		if (in_region && strncmp(line, "Rss:", 4) == 0) {
			rss = atol(line + 4);
			in_region = false;
		}
	}
	fclose(f);
	return rss;
}

/* The machine's own ceiling, measured in the same run: random reads of
 * `block` bytes (copied out) from a /dev/shm file the size of the region,
 * mapped and advised as the region is, pipelined as the batches are.  A
 * lookup of an instance reads three such random places (index entry, slot,
 * blob); the baseline reads one. */
static void bench_baseline(struct shm_bench *b, size_t bytes, size_t block, const char *what)
{
	char name[80];
	snprintf(name, sizeof(name), "%s-baseline", b->name);
	int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)bytes) != 0) {
		perror("baseline: shm_open");
		exit(1);
	}
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	shm_unlink(name);
	if (p == MAP_FAILED) {
		perror("baseline: mmap");
		exit(1);
	}
	madvise(p, bytes, MADV_HUGEPAGE);
	memset(p, 'x', bytes);
	enum { DIST = 8, RING = 16 };
	size_t at[RING], blocks = bytes / 64 - block / 64 - 1;
	uint64_t x = 0x2545F4914F6CDD1Dull, n = 0;
	char out[SHM_MAX_JSON];
	double t0 = now_s(), end = t0 + b->seconds;
	for (size_t i = 0; i < DIST; i++)
		at[i] = (xorshift(&x) % blocks) * 64;
	while (now_s() < end) {
		for (int k = 0; k < 1000; k++, n++) {
			size_t next = (xorshift(&x) % blocks) * 64;
			at[(n + DIST) % RING] = next;
			for (size_t line = 0; line < block; line += 64)
				__builtin_prefetch(p + next + line);
			memcpy(out, p + at[n % RING], block);
			__asm__ volatile("" : : "r"(out) : "memory"); /* keep the copy */
		}
	}
	double took = now_s() - t0;
	munmap(p, bytes);
	report(b, what, (double)n, took, "reads");
}

/* Fill the region; returns its resident size in bytes. */
static size_t bench_fill(struct shm_bench *b, shm_t *s)
{
	double t0 = now_s();
	for (uint32_t i = 0; i < b->instances; i++) {
		shm_instance_in_t in = make_in(b, i);
		int rc = shm_register(s, &in);
		if (rc) {
			fprintf(stderr, "fill: register %u: %s\n", i, strerror(-rc));
			exit(1);
		}
	}
	report(b, "fill (register new)", b->instances, now_s() - t0, "instances");
	long kb = region_rss_kb(b->name);
	if (b->json)
		printf("{\"bench\":\"shm\",\"op\":\"memory\",\"region_rss_bytes\":%ld,"
		       "\"bytes_per_instance\":%.1f,\"instances\":%u,\"metadata\":%u}\n",
		       kb * 1024, (double)kb * 1024 / b->instances, b->instances, b->metadata);
	else
		printf("%-28s %12ld KiB resident = %.1f bytes/instance (metadata %u B)\n",
		       "memory (region)", kb, (double)kb * 1024 / b->instances, b->metadata);
	return kb > 0 ? (size_t)kb * 1024 : 0;
}

enum op {
	OP_HEARTBEAT,
	OP_HEARTBEAT_BATCH,
	OP_LOOKUP,
	OP_LOOKUP_BATCH,
	OP_LOOKUP_VIEW_BATCH,
	OP_SERVICE,
	OP_REGISTER
};
#define BATCH 100 /* instances per request, as a heartbeat request of 100 */

static int lookup_seen(void *ctx, size_t i, int rc, const shm_instance_view_t *view,
                       const char *json, size_t json_len)
{
	if (rc == -EBUSY)
		return 0; /* a writer was mid-update: the bounded retry gave up */
	if (rc || view->slot == UINT32_MAX) {
		fprintf(stderr, "lookup batch: key %zu: %s\n", i, strerror(-rc));
		exit(1);
	}
	*(size_t *)ctx += json_len;
	return 0;
}

/* Keys arrive in requests: a request's keys and their strings sit together
 * in memory (as a parsed request body does), and the registry is hit at
 * random.  A pool of such requests is built once and cycled through, so the
 * figures measure the registry, not the benchmark's own cache misses. */
#define POOL 1024
struct request {
	shm_key_t keys[BATCH];
	char text[BATCH][48];
};
static struct request *pool;

static void build_pool(const struct shm_bench *b)
{
	uint64_t x = 0x9E3779B97F4A7C15ull;
	pool = malloc(sizeof(*pool) * POOL);
	for (int r = 0; r < POOL; r++) {
		for (int j = 0; j < BATCH; j++) {
			const shm_key_t *k = &b->keys[xorshift(&x) % b->instances];
			char *t = pool[r].text[j];
			memcpy(t, k->service.ptr, k->service.len);
			memcpy(t + 24, k->instance.ptr, k->instance.len);
			pool[r].keys[j] =
			    (shm_key_t){k->region, {t, k->service.len}, {t + 24, k->instance.len}};
		}
	}
}

static uint64_t run_op(struct shm_bench *b, shm_t *s, enum op op, double secs, double *took)
{
	uint64_t x = 88172645463325252ull ^ (uint64_t)getpid();
	uint64_t n = 0;
	buf_t buf = {0};
	shm_instance_view_t view;
	int rcs[BATCH];
	double t0 = now_s(), end = t0 + secs;
	while (1) {
		if (op == OP_LOOKUP_BATCH || op == OP_LOOKUP_VIEW_BATCH) {
			size_t bytes = 0;
			for (int k = 0; k < 10; k++, n += BATCH) {
				const struct request *rq = &pool[(n / BATCH) % POOL];
				shm_lookup_batch(s, rq->keys, BATCH, 0, op == OP_LOOKUP_BATCH,
				                 lookup_seen, &bytes);
			}
			if (now_s() >= end)
				break;
			continue;
		}
		if (op == OP_HEARTBEAT_BATCH) {
			uint64_t now = clock_wall_ms();
			for (int k = 0; k < 10; k++, n += BATCH) {
				const struct request *rq = &pool[(n / BATCH) % POOL];
				shm_heartbeat_batch(s, rq->keys, BATCH, now, rcs);
				for (int j = 0; j < BATCH; j++) {
					if (rcs[j] && rcs[j] != -EBUSY) {
						fprintf(stderr, "heartbeat batch: %s\n",
						        strerror(-rcs[j]));
						exit(1);
					}
				}
			}
			if (now_s() >= end)
				break;
			continue;
		}
		for (int k = 0; k < 1024; k++, n++) {
			uint32_t i = (uint32_t)(xorshift(&x) % b->instances);
			int rc = 0;
			const shm_key_t *pk = &pool[(n / BATCH) % POOL].keys[n % BATCH];
			if (op == OP_HEARTBEAT) {
				rc = shm_heartbeat(s, pk, 0);
			} else if (op == OP_LOOKUP) {
				shm_key_t key = *pk;
				buf.len = 0;
				rc = shm_lookup(s, &key, 0, &view, &buf);
			} else if (op == OP_SERVICE) {
				const char *sv = b->svcs[i % b->services];
				buf.len = 0;
				rc = shm_service_read(s, (shm_str_t){sv, strlen(sv)}, &buf, NULL);
			} else {
				shm_instance_in_t in = make_in(b, i);
				rc = shm_register(s, &in);
			}
			if (rc && rc != -EBUSY) {
				fprintf(stderr, "op %d: %s\n", op, strerror(-rc));
				exit(1);
			}
		}
		if (now_s() >= end)
			break;
	}
	*took = now_s() - t0;
	buf_free(&buf);
	return n;
}

/* Whether --only names the measurement `tag` (all do without --only). */
static bool wanted(const struct shm_bench *b, const char *tag)
{
	if (!b->only)
		return true;
	size_t n = strlen(tag);
	for (const char *p = b->only; *p;) {
		size_t len = strcspn(p, ",");
		if (len == n && memcmp(p, tag, n) == 0)
			return true;
		p += len + (p[len] == ',');
	}
	return false;
}

static void bench_single(struct shm_bench *b, shm_t *s)
{
	static const struct {
		enum op op;
		const char *tag;
		const char *name;
		const char *unit;
	} ops[] = {
	    {OP_HEARTBEAT, "heartbeat", "heartbeat (1 process)", "renewals"},
	    {OP_HEARTBEAT_BATCH, "heartbeat-batch", "heartbeat x100 (1 process)", "renewals"},
	    {OP_LOOKUP, "lookup", "lookup (1 process)", "lookups"},
	    {OP_LOOKUP_VIEW_BATCH, "lookup-view-batch", "lookup view x100 (1 process)", "lookups"},
	    {OP_LOOKUP_BATCH, "lookup-batch", "lookup x100 (1 process)", "lookups"},
	    {OP_SERVICE, "service", "service read (1 process)", "reads"},
	    {OP_REGISTER, "register", "register (1 process)", "registers"},
	};
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		double took;
		if (!wanted(b, ops[i].tag))
			continue;
		uint64_t n = run_op(b, s, ops[i].op, b->seconds, &took);
		report(b, ops[i].name, (double)n, took, ops[i].unit);
	}
}

/* One writer process and one reader process at once. */
static void bench_mixed(struct shm_bench *b)
{
	static const char *names[] = {"mixed: register (writer)", "mixed: heartbeat x100 (reader)",
	                              "mixed: lookup view x100 (reader)",
	                              "mixed: lookup x100 (reader)"};
	pid_t pids[2];
	for (int p = 0; p < 2; p++) {
		pids[p] = fork();
		if (pids[p] < 0) {
			perror("fork");
			exit(1);
		}
		if (pids[p] == 0) {
			shm_t *s;
			if (shm_attach(b->name, false, &s))
				_exit(1);
			double took;
			if (p == 0) {
				uint64_t n = run_op(b, s, OP_REGISTER, b->seconds, &took);
				report(b, names[0], (double)n, took, "registers");
			} else {
				uint64_t n =
				    run_op(b, s, OP_HEARTBEAT_BATCH, b->seconds / 3, &took);
				report(b, names[1], (double)n, took, "renewals");
				n = run_op(b, s, OP_LOOKUP_VIEW_BATCH, b->seconds / 3, &took);
				report(b, names[2], (double)n, took, "lookups");
				n = run_op(b, s, OP_LOOKUP_BATCH, b->seconds / 3, &took);
				report(b, names[3], (double)n, took, "lookups");
			}
			shm_detach(s);
			_exit(0);
		}
	}
	for (int p = 0; p < 2; p++)
		waitpid(pids[p], NULL, 0);
}

static char bench_region[64];
static pid_t bench_parent;

/* A failed run must not leave a region of up to a gigabyte in /dev/shm. */
static void destroy_region(void)
{
	if (getpid() == bench_parent && bench_region[0])
		shm_destroy(bench_region);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: artemis-bench shm [--instances N] [--services S] [--metadata BYTES]\n"
	           "                         [--seconds T] [--only LIST] [--json]\n"
	           "  Measures the shared-memory registry in-process: fill, resident memory,\n"
	           "  heartbeat, lookup, service read and register rates in one process, then\n"
	           "  a writer and a reader process at once.  Defaults: 1000000 instances,\n"
	           "  50000 services, 200 bytes of metadata, 3 s per measurement.\n"
	           "  --only runs just the named measurements (comma-separated): heartbeat,\n"
	           "  heartbeat-batch, lookup, lookup-view-batch, lookup-batch, service,\n"
	           "  register, mixed, baseline; the fill and the memory figure always run.\n"
	           "  baseline is the machine's ceiling in the same run: random reads of one\n"
	           "  cache line, and of the stored JSON's size, from memory the size of the\n"
	           "  region (a lookup makes three such random reads: index, slot, blob).\n");
}

int bench_shm_main(int argc, char **argv)
{
	struct shm_bench b = {
	    .instances = 1000000, .services = 50000, .metadata = 200, .seconds = 3};
	static const struct option opts[] = {{"instances", required_argument, NULL, 'n'},
	                                     {"services", required_argument, NULL, 's'},
	                                     {"metadata", required_argument, NULL, 'm'},
	                                     {"seconds", required_argument, NULL, 't'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {"only", required_argument, NULL, 'o'},
	                                     {NULL, 0, NULL, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "n:s:m:t:o:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			b.instances = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 's':
			b.services = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'm':
			b.metadata = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 't':
			b.seconds = atof(optarg);
			break;
		case 'j':
			b.json = true;
			break;
		case 'o':
			b.only = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!b.instances || !b.services || b.services > b.instances || b.seconds <= 0 ||
	    b.metadata > 8192) {
		usage(stderr);
		return 2;
	}
	log_set_level(LOG_WARN);
	snprintf(b.name, sizeof(b.name), "/artemis-bench-%d", (int)getpid());
	b.ids = malloc(sizeof(*b.ids) * b.instances);
	b.svcs = malloc(sizeof(*b.svcs) * b.services);
	for (uint32_t i = 0; i < b.instances; i++)
		snprintf(b.ids[i], sizeof(b.ids[i]), "inst-%u", i);
	for (uint32_t i = 0; i < b.services; i++)
		snprintf(b.svcs[i], sizeof(b.svcs[i]), "service-%u", i);
	b.keys = malloc(sizeof(*b.keys) * b.instances);
	for (uint32_t i = 0; i < b.instances; i++) {
		const char *sv = b.svcs[i % b.services];
		b.keys[i] =
		    (shm_key_t){{"us-east", 7}, {sv, strlen(sv)}, {b.ids[i], strlen(b.ids[i])}};
	}
	make_payload(&b);
	build_pool(&b);

	shm_params_t p;
	shm_params_default(&p, b.name);
	p.max_instances = b.instances;
	p.max_services = b.services;
	shm_t *s;
	int rc = shm_open_region(&p, SHM_CREATE_FRESH, &s, NULL);
	bench_parent = getpid();
	snprintf(bench_region, sizeof(bench_region), "%s", b.name);
	atexit(destroy_region);
	if (rc) {
		fprintf(stderr, "shm_open_region: %s\n", strerror(-rc));
		return 1;
	}
	shm_proc_join(s, SHM_ROLE_TEST, -1);
	size_t resident = bench_fill(&b, s);
	if (wanted(&b, "baseline") && resident > (1u << 20)) {
		size_t json = (b.payload_len + 63) / 64 * 64;
		char what[64];
		bench_baseline(&b, resident, 64, "baseline: random 64 B reads");
		snprintf(what, sizeof(what), "baseline: random %zu B reads", json);
		bench_baseline(&b, resident, json, what);
	}
	bench_single(&b, s);
	if (wanted(&b, "mixed"))
		bench_mixed(&b);
	char msg[256];
	rc = shm_check(s, msg, sizeof(msg));
	if (rc)
		fprintf(stderr, "shm_check after the benchmark: %s\n", msg);
	shm_detach(s);
	free(b.ids);
	free(b.keys);
	free(b.svcs);
	free(b.payload);
	free(pool);
	return rc ? 1 : 0;
}

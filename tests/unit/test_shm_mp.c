/*
 * test_shm_mp.c - the registry under real processes:
 *
 *   mp_readers_writers  2 writer and 2 reader processes for 5 s (2 s under
 *                       ASan); readers never see a torn instance (each
 *                       instance's JSON carries a checksum of itself) and
 *                       every read returns within its retry bound (no hang:
 *                       the parent's watchdog kills a stuck child).
 *   mp_service_reuse    a writer renaming service entries (a full table)
 *                       under 2 readers for 2 s: a read by name never
 *                       returns another service's instances.
 *   mp_crash_storms     200 rounds (50 under ASan) of SIGKILL at random
 *                       points in two writers and a reaper during
 *                       register/unregister storms; after each round the
 *                       next writer repairs, shm_check passes, and every
 *                       registration acknowledged before the kill is there.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "artemis/clock.h"
#include "artemis/log.h"
#include "artemis/shm.h"
#include "shm_test.h"

#ifdef UNDER_ASAN
#define MP_SECONDS   2
#define CRASH_ROUNDS 50
#else
#define MP_SECONDS   5
#define CRASH_ROUNDS 200
#endif

static char region_name[64];

/* A new region; max_services 0: the default. */
static shm_t *open_sized(uint32_t max_instances, uint32_t max_services, uint32_t changelog)
{
	shm_params_t p;
	snprintf(region_name, sizeof(region_name), "/artemis-mp-%d", (int)getpid());
	shm_params_default(&p, region_name);
	p.max_instances = max_instances;
	p.max_services = max_services;
	p.changelog_size = changelog;
	shm_t *s = NULL;
	assert_int_equal(shm_open_region(&p, SHM_CREATE_FRESH, &s, NULL), 0);
	return s;
}

static uint32_t fnv(const char *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	return h;
}

/* {"id":"w1-17","gen":123,"pad":"xxxx","sum":"XXXXXXXX"}: sum covers all
 * bytes before ,"sum". Padding length varies so blobs change class. */
static size_t make_json(char *out, size_t cap, const char *id, unsigned gen)
{
	char pad[600];
	size_t plen = 50 + (gen * 37u) % 500;
	memset(pad, 'a' + (char)(gen % 26), plen);
	pad[plen] = '\0';
	int n = snprintf(out, cap, "{\"id\":\"%s\",\"gen\":%u,\"pad\":\"%s\"", id, gen, pad);
	uint32_t sum = fnv(out, (size_t)n);
	n += snprintf(out + n, cap - (size_t)n, ",\"sum\":\"%08x\"}", sum);
	return (size_t)n;
}

static bool json_ok(const char *p, size_t n)
{
	const char *tag = ",\"sum\":\"";
	const char *q = memmem(p, n, tag, strlen(tag));
	if (!q || p[0] != '{' || p[n - 1] != '}')
		return false;
	char want[9];
	snprintf(want, sizeof(want), "%08x", fnv(p, (size_t)(q - p)));
	return memcmp(q + strlen(tag), want, 8) == 0;
}

/* ---- readers and writers ---------------------------------------------- */

static void writer_loop(int w, uint64_t until)
{
	shm_t *s;
	if (shm_attach(region_name, false, &s))
		_exit(20);
	char id[32], json[1024];
	unsigned gen = 0;
	srand((unsigned)getpid());
	while (clock_mono_ns() < until) {
		snprintf(id, sizeof(id), "w%d-%d", w, rand() % 200);
		const char *svc = (rand() % 2) ? "svc-a" : "svc-b";
		size_t n = make_json(json, sizeof(json), id, ++gen);
		shm_instance_in_t in = inst_len(svc, id, json, n);
		int rc = shm_register(s, &in);
		if (rc)
			_exit(21);
		if (gen % 5 == 0) {
			shm_key_t k = {S("us-east"), S(svc), S(id)};
			if (shm_unregister(s, &k, 0))
				_exit(22);
			shm_reap_result_t r;
			if (shm_reap(s, 0, &r))
				_exit(23);
		}
	}
	shm_detach(s);
	_exit(0);
}

static int check_array(const char *p, size_t n)
{
	/* Split "[{..},{..}]" at "},{" boundaries; JSON has no nested objects. */
	if (n < 2 || p[0] != '[' || p[n - 1] != ']')
		return -1;
	const char *cur = p + 1, *end = p + n - 1;
	while (cur < end) {
		const char *close = memchr(cur, '}', (size_t)(end - cur));
		if (!close)
			return -1;
		if (!json_ok(cur, (size_t)(close - cur + 1)))
			return -1;
		cur = close + 1;
		if (cur < end && *cur++ != ',')
			return -1;
	}
	return 0;
}

/* A batch lookup's callback: every instance found is whole. */
static int batch_check(void *ctx, size_t i, int rc, const shm_instance_view_t *v, const char *json,
                       size_t json_len)
{
	uint64_t *busy = ctx;
	if (rc == -EBUSY)
		(*busy)++;
	else if (rc && rc != -ENOENT)
		_exit(35);
	else if (rc == 0 && (v->slot == UINT32_MAX || (json && !json_ok(json, json_len))))
		_exit(36);
	return 0;
}

static void reader_loop(uint64_t until, int out_fd)
{
	shm_t *s;
	if (shm_attach(region_name, false, &s))
		_exit(30);
	buf_t b = {0};
	uint64_t reads = 0, busy = 0, max_ns = 0;
	char id[32];
	while (clock_mono_ns() < until) {
		uint64_t t0 = clock_mono_ns();
		b.len = 0;
		int rc = shm_service_read(s, (rand() % 2) ? S("svc-a") : S("svc-b"), &b, NULL);
		if (rc == 0 && check_array(b.data, b.len))
			_exit(31);
		if (rc == -EBUSY)
			busy++;
		else if (rc && rc != -ENOENT)
			_exit(32);
		snprintf(id, sizeof(id), "w%d-%d", rand() % 2, rand() % 200);
		shm_key_t k = {S("us-east"), S("svc-a"), S(id)};
		shm_instance_view_t v;
		b.len = 0;
		rc = shm_lookup(s, &k, 0, &v, &b);
		if (rc == 0 && !json_ok(b.data, b.len))
			_exit(33);
		if (rc == -EBUSY)
			busy++;
		/* The batched lookups, with and without the JSON. */
		char ids[8][32];
		shm_key_t keys[8];
		for (int j = 0; j < 8; j++) {
			snprintf(ids[j], sizeof(ids[j]), "w%d-%d", rand() % 2, rand() % 200);
			keys[j] = (shm_key_t){S("us-east"), S("svc-a"), S(ids[j])};
		}
		if (shm_lookup_batch(s, keys, 8, 0, rand() % 2, batch_check, &busy))
			_exit(37);
		uint64_t dt = clock_mono_ns() - t0;
		if (dt > max_ns)
			max_ns = dt;
		reads += 10;
	}
	char line[128];
	int n = snprintf(line, sizeof(line), "%llu %llu %llu\n", (unsigned long long)reads,
	                 (unsigned long long)busy, (unsigned long long)max_ns);
	if (write(out_fd, line, (size_t)n) != n)
		_exit(34);
	buf_free(&b);
	shm_detach(s);
	_exit(0);
}

static void test_readers_writers(void **state)
{
	shm_t *s = open_sized(4096, 0, 4096);
	uint64_t until = clock_mono_ns() + (uint64_t)MP_SECONDS * 1000000000u;
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pids[4];
	for (int i = 0; i < 4; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			if (i < 2)
				writer_loop(i, until);
			reader_loop(until, fds[1]);
		}
	}
	close(fds[1]);
	/* Watchdog: a child still running 10 s after the end is hung. */
	uint64_t deadline = until + 10ull * 1000000000u;
	int done = 0;
	while (done < 4) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);
		if (p > 0) {
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				fail_msg("child %d ended with status %d", (int)p, st);
			done++;
			continue;
		}
		if (clock_mono_ns() > deadline) {
			for (int i = 0; i < 4; i++)
				kill(pids[i], SIGKILL);
			fail_msg("a reader or writer hung");
		}
		poll(NULL, 0, 20);
	}
	char buf[256] = {0};
	ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	assert_true(n > 0);
	unsigned long long reads, busy, max_ns;
	assert_int_equal(sscanf(buf, "%llu %llu %llu", &reads, &busy, &max_ns), 3);
	print_message("reader: %llu reads, %llu busy, slowest %.3f ms\n", reads, busy,
	              (double)max_ns / 1e6);
	/* A count, not a rate: the readers ran and returned (the watchdog
	 * catches a hang); how many reads fit in the time depends on the
	 * machine and the sanitizers. */
	assert_true(reads >= 10);
	char msg[256];
	if (shm_check(s, msg, sizeof(msg)))
		fail_msg("shm_check: %s", msg);
	shm_detach(s);
	shm_destroy(region_name);
}

/* ---- crash storms ------------------------------------------------------ */

#define CRASH_KEYS 64

struct op_rec {
	uint8_t phase; /* 'B' begun, 'A' acknowledged */
	uint8_t op;    /* 'R' register, 'U' unregister */
	uint8_t writer;
	uint8_t key;
};

static void storm_writer(int w, int fd)
{
	shm_t *s;
	if (shm_attach(region_name, false, &s))
		_exit(40);
	srand((unsigned)getpid() ^ (unsigned)clock_mono_ns());
	char id[32], json[1024];
	for (unsigned gen = 1;; gen++) {
		struct op_rec r = {'B', (rand() % 3) ? 'R' : 'U', (uint8_t)w,
		                   (uint8_t)(rand() % CRASH_KEYS)};
		snprintf(id, sizeof(id), "w%d-%d", w, r.key);
		const char *svc = (r.key % 3) ? "storm" : "Storm";
		if (write(fd, &r, sizeof(r)) != sizeof(r))
			_exit(41);
		int rc;
		if (r.op == 'R') {
			size_t n = make_json(json, sizeof(json), id, gen);
			shm_instance_in_t in = inst_len(svc, id, json, n);
			rc = shm_register(s, &in);
		} else {
			shm_key_t k = {S("us-east"), S(svc), S(id)};
			rc = shm_unregister(s, &k, 0);
		}
		if (rc)
			_exit(42);
		r.phase = 'A';
		if (write(fd, &r, sizeof(r)) != sizeof(r))
			_exit(43);
	}
}

static void storm_reaper(void)
{
	shm_t *s;
	if (shm_attach(region_name, false, &s))
		_exit(50);
	for (;;) {
		shm_reap_result_t r;
		shm_reap(s, 0, &r);
	}
}

/* Per key: what the acknowledged history says must hold. */
enum expect { EXP_UNKNOWN = 0, EXP_PRESENT, EXP_GONE_OR_EVICTED, EXP_AMBIGUOUS };

static void apply_records(int fd, enum expect *exp)
{
	struct op_rec r;
	int pending[2] = {-1, -1};
	for (;;) {
		ssize_t n = read(fd, &r, sizeof(r));
		if (n != sizeof(r))
			break;
		int idx = r.writer * CRASH_KEYS + r.key;
		if (r.phase == 'B') {
			pending[r.writer] = idx;
			continue;
		}
		pending[r.writer] = -1;
		exp[idx] = r.op == 'R' ? EXP_PRESENT : EXP_GONE_OR_EVICTED;
	}
	for (int w = 0; w < 2; w++)
		if (pending[w] >= 0)
			exp[pending[w]] = EXP_AMBIGUOUS;
}

static void verify_round(shm_t *s, const enum expect *exp, int round)
{
	char id[32];
	for (int w = 0; w < 2; w++) {
		for (int k = 0; k < CRASH_KEYS; k++) {
			enum expect e = exp[w * CRASH_KEYS + k];
			snprintf(id, sizeof(id), "w%d-%d", w, k);
			shm_key_t key = {S("us-east"), S("storm"), S(id)};
			shm_instance_view_t v;
			buf_t b = {0};
			int rc = shm_lookup(s, &key, 0, &v, &b);
			if (e == EXP_PRESENT && (rc != 0 || v.evicted || !json_ok(b.data, b.len)))
				fail_msg("round %d: acknowledged registration %s lost (rc %d)",
				         round, id, rc);
			if (e == EXP_GONE_OR_EVICTED && rc == 0 && !v.evicted)
				fail_msg("round %d: acknowledged unregister of %s undone", round,
				         id);
			buf_free(&b);
		}
	}
}

static void crash_round(shm_t *s, enum expect *exp, int round)
{
	int fds[2][2];
	pid_t pids[3];
	for (int w = 0; w < 2; w++) {
		assert_int_equal(pipe2(fds[w], O_CLOEXEC), 0);
		fcntl(fds[w][1], F_SETPIPE_SZ, 1 << 20);
		pids[w] = fork();
		if (pids[w] == 0) {
			close(fds[w][0]);
			storm_writer(w, fds[w][1]);
		}
		close(fds[w][1]);
	}
	pids[2] = fork();
	if (pids[2] == 0)
		storm_reaper();
	/* The kill point is random on purpose; this is not a wait for an event. */
	poll(NULL, 0, 1 + rand() % 15);
	for (int i = 0; i < 3; i++)
		kill(pids[i], SIGKILL);
	for (int i = 0; i < 3; i++)
		waitpid(pids[i], NULL, 0);
	for (int w = 0; w < 2; w++) {
		apply_records(fds[w][0], exp);
		close(fds[w][0]);
	}
	shm_repair(s);
	char msg[256];
	if (shm_check(s, msg, sizeof(msg)))
		fail_msg("round %d: shm_check after repair: %s", round, msg);
	verify_round(s, exp, round);
	/* Make every ambiguous key definite for the next round. */
	for (int i = 0; i < 2 * CRASH_KEYS; i++) {
		if (exp[i] != EXP_AMBIGUOUS)
			continue;
		char id[32];
		snprintf(id, sizeof(id), "w%d-%d", i / CRASH_KEYS, i % CRASH_KEYS);
		shm_key_t k = {S("us-east"), S("storm"), S(id)};
		assert_int_equal(shm_unregister(s, &k, 0), 0);
		exp[i] = EXP_GONE_OR_EVICTED;
	}
}

/* ---- service entries renamed under readers ------------------------------- */

#define REUSE_SECONDS 2

/* A writer keeps the 16-entry service table full and renames entries: it
 * empties the oldest service, pushes its delete out of the 64-record change
 * log and registers a new service, which takes the entry over.  Each
 * instance's JSON names its service, so a reader that got another
 * service's instances for the name it asked would see it. */
static void reuse_writer(uint64_t until)
{
	shm_t *s;
	if (shm_attach(region_name, false, &s))
		_exit(40);
	char svc[32], json[64];
	shm_reap_result_t r;
	for (unsigned k = 16; clock_mono_ns() < until; k++) {
		snprintf(svc, sizeof(svc), "S-%u", k - 16);
		shm_key_t old = {S("us-east"), S(svc), S("i")};
		if (shm_unregister(s, &old, 0) || shm_reap(s, 0, &r))
			_exit(41);
		for (int n = 0; n < 64; n++) {
			snprintf(svc, sizeof(svc), "S-%u", k - 15 + (unsigned)n % 15);
			snprintf(json, sizeof(json), "{\"svc\":\"%s\"}", svc);
			shm_instance_in_t in = {.key = {S("us-east"), S(svc), S("i")},
			                        .json = S(json)};
			if (shm_register(s, &in))
				_exit(42);
		}
		snprintf(svc, sizeof(svc), "S-%u", k);
		snprintf(json, sizeof(json), "{\"svc\":\"%s\"}", svc);
		shm_instance_in_t in = {.key = {S("us-east"), S(svc), S("i")}, .json = S(json)};
		if (shm_register(s, &in))
			_exit(43);
	}
	shm_detach(s);
	_exit(0);
}

static void reuse_reader(uint64_t until)
{
	shm_t *s;
	if (shm_attach(region_name, false, &s))
		_exit(50);
	buf_t b = {0};
	char svc[32], want[64];
	unsigned found = 0;
	while (clock_mono_ns() < until) {
		/* Names around the ones the writer is renaming entries to. */
		snprintf(svc, sizeof(svc), "S-%u", (unsigned)rand() % 400);
		b.len = 0;
		int rc = shm_service_read(s, S(svc), &b, NULL);
		if (rc == 0) {
			snprintf(want, sizeof(want), "[{\"svc\":\"%s\"}]", svc);
			if (strcmp(b.data, want) != 0)
				_exit(51); /* another service's instances */
			found++;
		} else if (rc != -ENOENT && rc != -EBUSY) {
			_exit(52);
		}
	}
	buf_free(&b);
	shm_detach(s);
	_exit(found ? 0 : 53);
}

static void test_service_reuse_under_readers(void **state)
{
	shm_t *s = open_sized(256, 16, 64);
	char svc[32], json[64];
	for (int i = 0; i < 16; i++) {
		snprintf(svc, sizeof(svc), "S-%d", i);
		snprintf(json, sizeof(json), "{\"svc\":\"%s\"}", svc);
		shm_instance_in_t in = {.key = {S("us-east"), S(svc), S("i")}, .json = S(json)};
		assert_int_equal(shm_register(s, &in), 0);
	}
	uint64_t until = clock_mono_ns() + (uint64_t)REUSE_SECONDS * 1000000000u;
	pid_t pids[3];
	for (int i = 0; i < 3; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			srand((unsigned)getpid());
			if (i == 0)
				reuse_writer(until);
			reuse_reader(until);
		}
	}
	for (int i = 0; i < 3; i++) {
		int st;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("child %d ended with status %d", i, st);
	}
	char msg[256];
	if (shm_check(s, msg, sizeof(msg)))
		fail_msg("shm_check: %s", msg);
	shm_detach(s);
	shm_destroy(region_name);
}

static void test_crash_storms(void **state)
{
	shm_t *s = open_sized(1024, 0, 4096);
	log_set_level(LOG_ERROR); /* one repair warning per round is expected */
	enum expect exp[2 * CRASH_KEYS] = {0};
	srand((unsigned)getpid());
	shm_stats_t before;
	shm_stats(s, &before);
	for (int round = 0; round < CRASH_ROUNDS; round++)
		crash_round(s, exp, round);
	shm_stats_t after;
	shm_stats(s, &after);
	print_message("%d rounds: %llu registers, %llu repairs, %llu instances at the end\n",
	              CRASH_ROUNDS, (unsigned long long)after.registers,
	              (unsigned long long)after.repairs, (unsigned long long)after.instances);
	assert_true(after.registers > (uint64_t)CRASH_ROUNDS);
	shm_detach(s);
	shm_destroy(region_name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_readers_writers),
	    cmocka_unit_test(test_service_reuse_under_readers),
	    cmocka_unit_test(test_crash_storms),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	shm_destroy(region_name); /* a failed test leaves its region behind */
	return failed;
}

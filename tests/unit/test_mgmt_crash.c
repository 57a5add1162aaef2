/*
 * test_mgmt_crash.c - crash safety of management writes: 200 rounds of a
 * writer process killed with SIGKILL at a random instant in the middle of
 * management writes (instance, server and zone operations over registered
 * instances, so the writes send notices too).  After each kill the parent
 * does what the master does when it reaps a child (shm_repair, then
 * mgmt_repair) and the store and the projection must agree (mgmt_check) and
 * the registry must hold every invariant (shm_check).  At the end
 * `artemis check` (the binary named by $ARTEMIS_BIN) must pass on the same
 * region and store.
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

#include "artemis/codec.h"
#include "artemis/config.h"
#include "artemis/mgmt.h"
#include "artemis/shm.h"
#include "mgmt_fixture.h"

#define ROUNDS       200
#define BULK_BATCHES 40 /* 40,000 operations in force: large tables to stage */

static char region_name[64], dir[128], conf[192];
static config_t cfg;
static shm_t *shm;

static void reg(int i)
{
	char svc[16], id[16], ip[16], zone[16];
	snprintf(svc, sizeof(svc), "svc-%d", i % 4);
	snprintf(id, sizeof(id), "i%d", i);
	snprintf(ip, sizeof(ip), "10.0.0.%d", i % 5);
	snprintf(zone, sizeof(zone), "zone-%d", i % 3);
	fixture_register(shm, svc, id, ip, zone);
}

/* The writer: management writes until it is killed, a byte on done_fd
 * after each one that completed (never blocking on it). */
static void writer(unsigned seed, int done_fd)
{
	char err[512];
	mgmt_t *m;
	mgmt_ctx_t ctx = {.operator_id = "crash", .complete = -1, .surface = "java"};
	if (mgmt_open(&cfg, shm, &m, err, sizeof(err)) < 0)
		_exit(3);
	srand(seed);
	for (;;) {
		mgmt_change_t ch;
		memset(&ch, 0, sizeof(ch));
		int i = rand() % 20;
		ch.key.kind = (mgmt_kind_t)(rand() % MGMT_KINDS);
		ch.insert = rand() % 2;
		strcpy(ch.key.region, "us-east");
		strcpy(ch.key.operation, rand() % 4 ? "pullout" : "other");
		if (ch.key.kind == MGMT_INSTANCE) {
			snprintf(ch.key.service, sizeof(ch.key.service), "svc-%d", i % 4);
			snprintf(ch.key.instance, sizeof(ch.key.instance), "i%d", i);
		} else if (ch.key.kind == MGMT_SERVER) {
			snprintf(ch.key.server, sizeof(ch.key.server), "10.0.0.%d", i % 5);
		} else {
			snprintf(ch.key.zone, sizeof(ch.key.zone), "zone-%d", i % 3);
			if (rand() % 2)
				snprintf(ch.key.service, sizeof(ch.key.service), "svc-%d", i % 4);
		}
		if (mgmt_apply(m, &ch, 1, &ctx, err, sizeof(err)) >= 0 &&
		    write(done_fd, "w", 1) < 0)
			done_fd = -1; /* full or gone: the parent stopped listening */
	}
}

/* Wait until the writer reports a completed write (at most 60 s). */
static void wait_for_a_write(int fd, int round)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char c;
	if (poll(&pfd, 1, 60000) != 1 || read(fd, &c, 1) != 1)
		fail_msg("round %d: the writer completed no write in 60 s", round);
}

static void sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

static void write_conf(void)
{
	FILE *f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "[node]\nname = crash\ndata_dir = %s\n[registry]\nshm_name = %s\n", dir,
	        region_name);
	fclose(f);
}

static void test_kill_writers_200_rounds(void **state)
{
	char err[512], cmd[512];
	shm_params_t p;
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/artemis-unit-crash-%d", (int)getpid());
	snprintf(region_name, sizeof(region_name), "/artemis-unit-crash-%d", (int)getpid());
	snprintf(conf, sizeof(conf), "%s/artemis.conf", dir);
	snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s", dir, dir);
	assert_int_equal(system(cmd), 0);
	config_defaults(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "crash");
	snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dir);
	snprintf(cfg.shm_name, sizeof(cfg.shm_name), "%s", region_name);
	cfg.mgmt_max_operations = 65536; /* the default: a table takes a while to stage */
	shm_params_default(&p, region_name);
	p.max_instances = 1000;
	p.changelog_size = 4096;
	p.mgmt_bytes = mgmt_section_bytes(cfg.mgmt_max_operations);
	assert_int_equal(shm_open_region(&p, SHM_CREATE_FRESH, &shm, NULL), 0);
	if (mgmt_boot(&cfg, shm, err, sizeof(err)) < 0)
		fail_msg("mgmt_boot: %s", err);
	for (int i = 0; i < 20; i++)
		reg(i);
	/* Many operations in force on zones nobody is in: each write then
	 * stages a large table, so kills land inside staging too. */
	mgmt_t *bulk;
	mgmt_change_t *ch = calloc(MGMT_MAX_BATCH, sizeof(*ch));
	mgmt_ctx_t ctx = {.operator_id = "bulk", .complete = -1, .surface = "java"};
	assert_non_null(ch);
	assert_int_equal(mgmt_open(&cfg, shm, &bulk, err, sizeof(err)), 0);
	for (int b = 0; b < BULK_BATCHES; b++) {
		for (int k = 0; k < MGMT_MAX_BATCH; k++) {
			ch[k].insert = true;
			ch[k].key.kind = MGMT_ZONE;
			strcpy(ch[k].key.region, "us-east");
			strcpy(ch[k].key.operation, "pullout");
			snprintf(ch[k].key.zone, sizeof(ch[k].key.zone), "bulk-%d-%d", b, k);
		}
		if (mgmt_apply(bulk, ch, MGMT_MAX_BATCH, &ctx, err, sizeof(err)) < 0)
			fail_msg("bulk operations: %s", err);
	}
	mgmt_close(bulk);
	free(ch);
	srand((unsigned)getpid());
	int repaired = 0;
	for (int round = 0; round < ROUNDS; round++) {
		int done[2];
		assert_int_equal(pipe(done), 0);
		assert_int_equal(fcntl(done[1], F_SETFL, O_NONBLOCK), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(done[0]);
			writer((unsigned)round * 7919u + 1, done[1]);
		}
		close(done[1]);
		/* Every tenth round lets a write complete first, so writes
		 * complete between kills however slow the machine is. */
		if (round % 10 == 0)
			wait_for_a_write(done[0], round);
		/* Let it get going, then kill it anywhere in a write. */
		sleep_us(1000 + rand() % 14000);
		kill(pid, SIGKILL);
		close(done[0]);
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st));
		/* As the master does after reaping a child that died. */
		shm_repair(shm);
		int r = mgmt_repair(&cfg, shm, err, sizeof(err));
		if (r < 0)
			fail_msg("round %d: mgmt_repair: %s", round, err);
		repaired += r;
		if (mgmt_check(&cfg, shm, err, sizeof(err)) != 0)
			fail_msg("round %d: mgmt_check: %s", round, err);
		if (shm_check(shm, err, sizeof(err)) != 0)
			fail_msg("round %d: shm_check: %s", round, err);
	}
	/* Most kills land inside a write (the writer does nothing else), and
	 * writes did complete between them (at least one every tenth round). */
	mgmt_t *m;
	buf_t stats = {0};
	mgmt_audit_filter_t all = {.complete = -1};
	assert_int_equal(mgmt_open(&cfg, shm, &m, err, sizeof(err)), 0);
	assert_int_equal(mgmt_audit_stats(m, &all, &stats), 0);
	mgmt_close(m);
	long long records = strtoll(strstr(stats.data, "\"total\":") + 8, NULL, 10);
	buf_free(&stats);
	print_message("%d of %d kills were inside a management write; %lld writes completed\n",
	              repaired, ROUNDS, records);
	assert_true(repaired > ROUNDS / 4);
	assert_true(records >= BULK_BATCHES * MGMT_MAX_BATCH + ROUNDS / 10);
	const char *bin = getenv("ARTEMIS_BIN");
	if (bin && *bin) {
		write_conf();
		snprintf(cmd, sizeof(cmd), "%s check -c %s > %s/check.out 2>&1", bin, conf, dir);
		int rc = system(cmd);
		if (rc != 0) {
			snprintf(cmd, sizeof(cmd), "cat %s/check.out", dir);
			if (system(cmd) != 0)
				print_error("no output\n");
			fail_msg("artemis check failed (%d)", rc);
		}
	}
	shm_detach(shm);
	shm_destroy(region_name);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kill_writers_200_rounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

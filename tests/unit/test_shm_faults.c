/*
 * test_shm_faults.c - the region when the world fails it: no memory left in
 * /dev/shm, a writer lock that cannot be made, a writer that stops while it
 * holds the lock, a corrupt change-log record, a heartbeat request full of
 * copies of one key.
 *
 * Linked with -Wl,--wrap=pthread_mutex_init,--wrap=posix_fallocate
 * (Makefile), so a test can make either fail: fail_mutex_init, and
 * fallocate_budget (calls that still succeed; -1 = all).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../shm/shm_int.h"
#include "artemis/clock.h"
#include "artemis/shm.h"
#include "shm_test.h"

static bool fail_mutex_init;
static long fallocate_budget = -1;

int __real_pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a);
int __wrap_pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a);
int __real_posix_fallocate(int fd, off_t off, off_t len);
int __wrap_posix_fallocate(int fd, off_t off, off_t len);

int __wrap_pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a)
{
	return fail_mutex_init ? EAGAIN : __real_pthread_mutex_init(m, a);
}

int __wrap_posix_fallocate(int fd, off_t off, off_t len)
{
	if (fallocate_budget == 0)
		return ENOSPC;
	if (fallocate_budget > 0)
		fallocate_budget--;
	return __real_posix_fallocate(fd, off, len);
}

static char region_name[64];

/* The parameters of this process's test region. */
static shm_params_t params(uint32_t max_instances, uint32_t changelog_size)
{
	shm_params_t p;
	snprintf(region_name, sizeof(region_name), "/artemis-unit-faults-%d", (int)getpid());
	shm_params_default(&p, region_name);
	p.max_instances = max_instances;
	p.changelog_size = changelog_size;
	return p;
}

static shm_t *open_sized(uint32_t max_instances, uint32_t changelog_size)
{
	shm_params_t p = params(max_instances, changelog_size);
	shm_t *s = NULL;
	assert_int_equal(shm_open_region(&p, SHM_CREATE_FRESH, &s, NULL), 0);
	return s;
}

static shm_t *open_named(uint32_t max_instances)
{
	return open_sized(max_instances, 1024);
}

static void close_region(shm_t *s)
{
	shm_detach(s);
	shm_destroy(region_name);
}

static bool region_exists(void)
{
	char path[96];
	snprintf(path, sizeof(path), "/dev/shm%s", region_name);
	return access(path, F_OK) == 0;
}

/* ---- the writer lock cannot be made ---------------------------------------- */

static void test_lock_init_failure_is_an_error(void **state)
{
	(void)state;
	shm_params_t p = params(64, 0);
	shm_t *s = NULL;
	fail_mutex_init = true;
	int rc = shm_open_region(&p, SHM_CREATE_FRESH, &s, NULL);
	fail_mutex_init = false;
	assert_int_equal(rc, -EAGAIN);
	assert_null(s);
	assert_non_null(strstr(shm_error_detail(), "cannot make the writer lock"));
	assert_false(region_exists()); /* nothing half-made is left */
	/* Nothing was left that a later start would trust. */
	s = open_named(64);
	assert_check(s);
	close_region(s);
}

/* ---- no memory left in /dev/shm ------------------------------------------- */

static void test_start_without_memory(void **state)
{
	(void)state;
	shm_params_t p = params(1000000, 0);
	shm_open_info_t info;
	shm_t *s = NULL;
	fallocate_budget = 3;
	int rc = shm_open_region(&p, SHM_CREATE_FRESH, &s, &info);
	fallocate_budget = -1;
	assert_int_equal(rc, -ENOBUFS);
	assert_false(region_exists());
	/* The minimum a start needs: far below the sparse size. */
	assert_true(info.reserve_bytes > 1024 * 1024);
	assert_true(info.reserve_bytes < 16 * 1024 * 1024);
	assert_true(info.region_bytes > 1024ull * 1024 * 1024);
	assert_int_equal(shm_open_region(&p, SHM_CREATE_FRESH, &s, &info), 0);
	assert_true(info.created);
	shm_stats_t st;
	shm_stats(s, &st);
	assert_int_equal(st.reserved_bytes, info.reserve_bytes);
	close_region(s);
}

static int fill_until(shm_t *s, int *n, int want_rc)
{
	char id[32], json[2048];
	memset(json, 'x', sizeof(json));
	json[0] = '"';
	json[sizeof(json) - 2] = '"';
	json[sizeof(json) - 1] = '\0';
	for (;; (*n)++) {
		snprintf(id, sizeof(id), "i%d", *n);
		shm_instance_in_t in = inst(*n % 3 ? "a" : "b", id, json);
		int rc = shm_register(s, &in);
		if (rc)
			return rc == want_rc ? 0 : rc;
	}
}

/* A registration that needs memory /dev/shm does not have is refused and
 * changes nothing; what is there is still served and renewed; once memory
 * is there again, so are writes. */
static void test_writes_refused_without_memory(void **state)
{
	(void)state;
	shm_t *s = open_named(100000);
	int n = 0;
	fallocate_budget = 2; /* a few more steps of growth, then none */
	assert_int_equal(fill_until(s, &n, -ENOBUFS), 0);
	assert_true(n > 100);
	shm_stats_t before, after;
	shm_stats(s, &before);
	char id[32], json[2048];
	snprintf(id, sizeof(id), "i%d", n);
	memset(json, 'y', sizeof(json) - 1);
	json[sizeof(json) - 1] = '\0';
	shm_instance_in_t refused = inst("a", id, json);
	assert_int_equal(shm_register(s, &refused), -ENOBUFS);
	shm_stats(s, &after);
	assert_int_equal(after.instances, before.instances);
	assert_int_equal(after.version, before.version);
	assert_int_equal(after.arena_used, before.arena_used);
	assert_int_equal(after.reserved_bytes, before.reserved_bytes);
	assert_check(s);
	/* Reads, heartbeats and unregisters need nothing new. */
	shm_key_t k0 = key("us-east", "b", "i0");
	assert_int_equal(shm_heartbeat(s, &k0, 0), 0);
	shm_instance_view_t view;
	assert_int_equal(shm_lookup(s, &k0, 0, &view, NULL), 0);
	buf_t out = {0};
	assert_int_equal(shm_service_read(s, S("a"), &out, NULL), 0);
	buf_free(&out);
	/* Memory again: writes work, without reopening anything. */
	fallocate_budget = -1;
	assert_int_equal(shm_register(s, &refused), 0);
	int more = n + 1;
	assert_int_equal(fill_until(s, &more, -ENOSPC), 0); /* up to the arena's end */
	assert_true(more > n + 100);
	assert_check(s);
	close_region(s);
}

/* The reaper's removals need change-log records: without memory for them,
 * the pass fails with -ENOBUFS and removes nothing half-way. */
static void test_reap_without_memory(void **state)
{
	(void)state;
	shm_t *s = open_sized(64, 1u << 16); /* a 4 MiB log: reserved as it fills */
	char id[16];
	for (int i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "%d", i);
		shm_instance_in_t in = inst("svc", id, "{}");
		assert_int_equal(shm_register(s, &in), 0);
	}
	/* Use up the change log's first step: the next removal needs more. */
	struct shm_header_sh *h = s->hdr;
	uint64_t first = h->sec[SHM_SEC_CHANGELOG].reserved / sizeof(struct shm_change_sh);
	shm_instance_in_t again = inst("svc", "0", "{}");
	while (h->head + 2 <= first)
		assert_int_equal(shm_register(s, &again), 0);
	for (int i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "%d", i);
		shm_key_t k = key("us-east", "svc", id);
		assert_int_equal(shm_unregister(s, &k, 0), 0);
	}
	shm_reap_result_t r;
	fallocate_budget = 0;
	assert_int_equal(shm_reap(s, 0, &r), -ENOBUFS);
	fallocate_budget = -1;
	assert_check(s);
	shm_stats_t st;
	shm_stats(s, &st);
	assert_int_equal(st.instances + r.evicted_removed, 40);
	assert_int_equal(shm_reap(s, 0, &r), 0);
	shm_stats(s, &st);
	assert_int_equal(st.instances, 0);
	assert_check(s);
	close_region(s);
}

/* ---- a writer stops while it holds the lock -------------------------------- */

static void test_stopped_lock_holder(void **state)
{
	(void)state;
	shm_t *s = open_named(64);
	shm_set_lock_wait(s, 100);
	shm_instance_in_t in = inst("svc", "a", "{}");
	assert_int_equal(shm_register(s, &in), 0);
	int ready[2];
	assert_int_equal(pipe(ready), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		s->proc = -1;
		if (shm__lock(s) < 0)
			_exit(1);
		char c = 'l';
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		raise(SIGSTOP); /* stopped holding it */
		_exit(0);
	}
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	shm_lock_state_t st;
	shm_lock_state(s, &st);
	assert_int_equal(st.pid, pid);
	uint64_t t0 = clock_mono_ms();
	shm_instance_in_t other = inst("svc", "b", "{}");
	assert_int_equal(shm_register(s, &other), -ETIMEDOUT);
	uint64_t waited = clock_mono_ms() - t0;
	assert_true(waited >= 100);
	/* The same stuck holder: refused at once, not after another wait. */
	t0 = clock_mono_ms();
	for (int i = 0; i < 20; i++)
		assert_int_equal(shm_register(s, &other), -ETIMEDOUT);
	assert_true(clock_mono_ms() - t0 < 100);
	/* Readers and heartbeats never take the lock. */
	shm_key_t ka = key("us-east", "svc", "a");
	assert_int_equal(shm_heartbeat(s, &ka, 0), 0);
	shm_instance_view_t view;
	assert_int_equal(shm_lookup(s, &ka, 0, &view, NULL), 0);
	/* The holder dies (the master's SIGKILL): the next writer repairs. */
	kill(pid, SIGKILL);
	int wst;
	assert_int_equal(waitpid(pid, &wst, 0), pid);
	assert_int_equal(shm_register(s, &other), 0);
	shm_lock_state(s, &st);
	assert_int_equal(st.pid, 0);
	assert_check(s);
	close(ready[0]);
	close(ready[1]);
	close_region(s);
}

/* ---- a corrupt change-log record ------------------------------------------- */

static void test_corrupt_change_record(void **state)
{
	(void)state;
	shm_t *s = open_named(64);
	shm_cursor_t cur;
	shm_cursor_init(s, &cur);
	shm_instance_in_t a = inst("svc", "a", "{\"a\":1}"), b = inst("svc", "b", "{\"b\":1}");
	assert_int_equal(shm_register(s, &a), 0);
	assert_int_equal(shm_register(s, &b), 0);
	assert_int_equal(shm_emit_reload(s, S("svc")), 0);
	struct shm_header_sh *h = s->hdr;
	/* Record 1: a blob offset outside the arena; record 3: a bad type. */
	s->changes[1 & (h->changelog_size - 1)].blob = h->arena_size * 2;
	s->changes[3 & (h->changelog_size - 1)].type = 9;
	shm_change_t ch;
	buf_t json = {0};
	assert_int_equal(shm_changes_next(s, &cur, &ch, &json), -EIO);
	assert_int_equal(json.len, 0);
	assert_int_equal(cur.next, 2); /* moved past it */
	assert_int_equal(shm_changes_next(s, &cur, &ch, &json), 0);
	assert_int_equal(ch.version, 2);
	assert_string_equal(ch.service, "svc");
	assert_true(json.len == 7 && memcmp(json.data, "{\"b\":1}", 7) == 0);
	assert_int_equal(shm_changes_next(s, &cur, &ch, &json), -EIO);
	assert_int_equal(shm_changes_next(s, &cur, &ch, &json), -EAGAIN);
	buf_free(&json);
	char msg[256];
	assert_int_equal(shm_check(s, msg, sizeof(msg)), -EIO);
	assert_non_null(strstr(msg, "bad type"));
	close_region(s);
}

/* ---- copies of a key in one heartbeat batch -------------------------------- */

static uint64_t counted(shm_t *s)
{
	uint64_t n = 0;
	for (int i = 0; i < SHM_MAX_PROCS; i++)
		n += s->procs[i].counted[SHM_MGR_NORMAL];
	return n;
}

static void test_heartbeat_copies_renew_once(void **state)
{
	(void)state;
	shm_t *s = open_named(64);
	shm_instance_in_t a = inst("svc", "a", "{}"), b = inst("svc", "b", "{}");
	assert_int_equal(shm_register(s, &a), 0);
	assert_int_equal(shm_register(s, &b), 0);
	shm_key_t keys[70];
	int rcs[70];
	for (int i = 0; i < 64; i++)
		keys[i] =
		    key("us-east", i % 2 ? "SVC" : "svc", "A"); /* the lease key ignores case */
	keys[64] = key("us-east", "svc", "b");
	keys[65] = key("us-east", "svc", "missing");
	keys[66] = key("us-east", "svc", "missing");
	keys[67] = key("us-east", "svc", "a");
	keys[68] = key("us-east", "", "a");
	keys[69] = key("us-east", "svc", "b");
	shm_stats_t st0, st1;
	shm_stats(s, &st0);
	uint64_t c0 = counted(s);
	/* 100 ms into a second of the region's clock (seconds count from its
	 * epoch): each instance renewed is counted once. */
	uint64_t epoch = s->hdr->epoch_ms, rel = clock_wall_ms() - epoch;
	uint64_t later = epoch + (rel / 1000 + 1) * 1000 + 100;
	assert_int_equal(shm_heartbeat_batch(s, keys, 70, later, rcs), 2);
	for (int i = 0; i < 65; i++)
		assert_int_equal(rcs[i], 0);
	assert_int_equal(rcs[65], -ENOENT);
	assert_int_equal(rcs[66], -ENOENT);
	assert_int_equal(rcs[67], 0);
	assert_int_equal(rcs[68], -EINVAL);
	assert_int_equal(rcs[69], 0);
	shm_stats(s, &st1);
	assert_int_equal(st1.renewals - st0.renewals, 2);
	assert_int_equal(counted(s) - c0, 2);
	/* Renewed again within that second: renewed, not counted again; a
	 * second later: counted again, as Java counts a renewal. */
	assert_int_equal(shm_heartbeat_batch(s, keys, 70, later + 500, rcs), 2);
	assert_int_equal(counted(s) - c0, 2);
	assert_int_equal(shm_heartbeat_batch(s, keys, 70, later + 1000, rcs), 2);
	assert_int_equal(counted(s) - c0, 4);
	/* A batch too large for the stack's set of seen keys. */
	enum { BIG = 3000 };
	shm_key_t *many = calloc(BIG, sizeof(*many));
	int *many_rcs = calloc(BIG, sizeof(*many_rcs));
	assert_non_null(many);
	assert_non_null(many_rcs);
	for (int i = 0; i < BIG; i++)
		many[i] = key("us-east", "svc", i % 2 ? "a" : "b");
	assert_int_equal(shm_heartbeat_batch(s, many, BIG, later + 2000, many_rcs), 2);
	for (int i = 0; i < BIG; i++)
		assert_int_equal(many_rcs[i], 0);
	free(many);
	free(many_rcs);
	assert_check(s);
	close_region(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lock_init_failure_is_an_error),
	    cmocka_unit_test(test_start_without_memory),
	    cmocka_unit_test(test_writes_refused_without_memory),
	    cmocka_unit_test(test_reap_without_memory),
	    cmocka_unit_test(test_stopped_lock_holder),
	    cmocka_unit_test(test_corrupt_change_record),
	    cmocka_unit_test(test_heartbeat_copies_renew_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_master.c - the master's building blocks that need no running node:
 * the pid file (lock, stale file, release), the listening sockets
 * (SO_REUSEPORT slots, the probe that refuses a taken port) and loading the
 * configuration with command-line overrides, and the [registry] keys as
 * the region gets them.  The master cycle itself is tested end to end in
 * tests/integration/test_master.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../master/master.h"

static char tmpdir[128];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/artemis-test-master-%d-XXXXXX", (int)getpid());
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_pidfile_lifecycle(void **state)
{
	(void)state;
	char dir[256], path[300];
	snprintf(dir, sizeof(dir), "%s/a/b/data", tmpdir);
	assert_int_equal(pidfile_mkdirs(dir), 0);
	assert_int_equal(pidfile_path(dir, path, sizeof(path)), 0);
	pid_t pid = 0;
	assert_int_equal(pidfile_running(path, &pid), -ENOENT);

	pid_t holder = 0;
	int fd = pidfile_acquire(path, &holder);
	assert_true(fd >= 0);
	assert_int_equal(pidfile_running(path, &pid), 0);
	assert_int_equal(pid, getpid());

	/* a second master is refused and told who holds it */
	assert_int_equal(pidfile_acquire(path, &holder), -EBUSY);
	assert_int_equal(holder, getpid());

	pidfile_release(fd, path);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(pidfile_running(path, &pid), -ENOENT);
}

static void test_pidfile_stale_is_taken_over(void **state)
{
	(void)state;
	char path[300];
	snprintf(path, sizeof(path), "%s/artemis.pid", tmpdir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("999999\n", f);
	fclose(f);
	pid_t pid = 0, holder = 0;
	assert_int_equal(pidfile_running(path, &pid), -ESRCH);
	int fd = pidfile_acquire(path, &holder);
	assert_true(fd >= 0);
	char buf[32] = "";
	assert_true(pread(fd, buf, sizeof(buf) - 1, 0) > 0);
	assert_int_equal(atoi(buf), getpid());
	pidfile_release(fd, path);
}

static void test_pidfile_bad_dir(void **state)
{
	(void)state;
	char path[300];
	pid_t holder;
	snprintf(path, sizeof(path), "%s/missing/artemis.pid", tmpdir);
	assert_int_equal(pidfile_acquire(path, &holder), -ENOENT);
	char longdir[400];
	memset(longdir, 'x', sizeof(longdir) - 1);
	longdir[sizeof(longdir) - 1] = '\0';
	assert_int_equal(pidfile_path(longdir, path, sizeof(path)), -ENAMETOOLONG);
}

static int bound_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	return ntohs(a.sin_port);
}

static void test_listen_slots_share_a_port(void **state)
{
	(void)state;
	char err[256], addr[64];
	/* find a free port: bind to 0, then reuse its number */
	int probe = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(probe, (struct sockaddr *)&a, sizeof(a)), 0);
	int port = bound_port(probe);
	close(probe);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);

	assert_int_equal(listen_probe(addr, err, sizeof(err)), 0);
	int s1 = listen_open(addr, true, err, sizeof(err));
	int s2 = listen_open(addr, true, err, sizeof(err));
	assert_true(s1 >= 0 && s2 >= 0);
	assert_true(fcntl(s1, F_GETFL) & O_NONBLOCK);
	/* another node on the same address is refused by the probe */
	assert_int_equal(listen_probe(addr, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "Address already in use"));
	close(s1);
	close(s2);
	assert_int_equal(listen_probe(addr, err, sizeof(err)), 0);

	assert_int_equal(listen_open("nonsense", true, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not host:port"));
}

static void test_load_config_with_overrides(void **state)
{
	(void)state;
	static config_t cfg;
	static master_opts_t opts;
	char err[512];
	memset(&opts, 0, sizeof(opts));
	opts.noverrides = 2;
	opts.overrides[0] = (master_override_t){"--listen", "node", "listen", "127.0.0.1:18123"};
	opts.overrides[1] = (master_override_t){"--workers", "node", "workers", "3"};
	assert_int_equal(master_load_config(&cfg, NULL, &opts, err, sizeof(err)), 0);
	assert_string_equal(cfg.listen, "127.0.0.1:18123");
	assert_int_equal(cfg.workers, 3);
	assert_string_equal(cfg.name, "127.0.0.1-18123");
	assert_string_equal(cfg.shm_name, "/artemis-127.0.0.1-18123");

	opts.overrides[1] = (master_override_t){"--workers", "node", "workers", "many"};
	assert_int_equal(master_load_config(&cfg, NULL, &opts, err, sizeof(err)), -1);
	assert_string_equal(err, "--workers: workers 'many' is not a non-negative integer");
}

/* Every [registry] key that lives in the region, set to something other
 * than its default, is what a region made from the configuration holds. */
static void test_registry_keys_reach_the_region(void **state)
{
	(void)state;
	static const char *const keys[][2] = {
	    {"max_instances", "5000"},        {"max_services", "300"},
	    {"changelog_size", "2048"},       {"lease_ttl_ms", "1000"},
	    {"legacy_lease_ttl_ms", "45000"}, {"self_preservation", "off"},
	    {"preserve_window_ms", "15000"},  {"legacy_preserve_window_ms", "70000"},
	    {"lock_wait_ms", "250"},
	};
	static config_t cfg;
	char err[256];
	config_defaults(&cfg);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (config_set(&cfg, "registry", keys[i][0], keys[i][1], err, sizeof(err)) < 0)
			fail_msg("%s", err);
	assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
	shm_params_t want, have;
	master_region_params(&cfg, &want);
	int fd = memfd_create("artemis-unit-master", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0600), 0);
	shm_t *s = NULL;
	assert_int_equal(shm_create_fd(fd, &want, &s), 0);
	shm_get_params(s, &have);
	assert_int_equal(have.max_instances, 5000);
	assert_int_equal(have.max_services, 300);
	assert_int_equal(have.changelog_size, 2048);
	assert_int_equal(have.lease_ttl_ms, 1000);
	assert_int_equal(have.legacy_ttl_ms, 45000);
	assert_false(have.self_preservation);
	assert_int_equal(have.preserve_window_ms, 15000);
	assert_int_equal(have.legacy_preserve_window_ms, 70000);
	assert_int_equal(have.lock_wait_ms, 250);
	shm_detach(s);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_pidfile_lifecycle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pidfile_stale_is_taken_over, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pidfile_bad_dir, setup, teardown),
	    cmocka_unit_test(test_listen_slots_share_a_port),
	    cmocka_unit_test(test_load_config_with_overrides),
	    cmocka_unit_test(test_registry_keys_reach_the_region),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * cli.c - the client commands of the artemis binary that talk to a running
 * node: reload, stop, quit (signals to the master found through the pid
 * file) and check (the registry's invariants, read-only).
 *
 * Called from master/main.c; prints to stdout/stderr for people and scripts
 * and returns the exit code (0 done, 1 failed).  Never writes the region.
 *
 * check reads a region it did not make and cannot lock: a page of it with
 * no memory behind it (a full /dev/shm, a file truncated under it) raises
 * SIGBUS on the read.  check catches that, says so and fails (exit 1, no
 * core) instead of dying.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "artemis/clock.h"
#include "artemis/mgmt.h"
#include "artemis/shm.h"
#include "master.h"

#define CLI_STOP_WAIT_MS 15000 /* a stop takes at most ~5 s plus the region check */

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static int find_master(const config_t *cfg, const char *verb, pid_t *pid)
{
	char path[CONFIG_STR + 16];
	if (pidfile_path(cfg->data_dir, path, sizeof(path)) < 0) {
		fprintf(stderr, "artemis %s: data_dir too long\n", verb);
		return -1;
	}
	int rc = pidfile_running(path, pid);
	if (rc == 0)
		return 0;
	if (rc == -ENOENT)
		fprintf(stderr, "artemis %s: no master is running on data_dir %s (no %s)\n", verb,
		        cfg->data_dir, path);
	else if (rc == -ESRCH)
		fprintf(stderr, "artemis %s: no master is running on data_dir %s (stale %s)\n",
		        verb, cfg->data_dir, path);
	else
		fprintf(stderr, "artemis %s: %s: %s\n", verb, path, strerror(-rc));
	return -1;
}

int cli_signal(const config_t *cfg, int sig, const char *verb)
{
	pid_t pid;
	if (find_master(cfg, verb, &pid) < 0)
		return 1;
	if (kill(pid, sig) < 0) {
		fprintf(stderr, "artemis %s: cannot signal the master (pid %d): %s\n", verb,
		        (int)pid, strerror(errno));
		return 1;
	}
	printf("artemis %s: sent SIG%s to the master (pid %d)\n", verb, sigabbrev_np(sig),
	       (int)pid);
	if (sig == SIGHUP)
		return 0;
	/* stop and quit return once the master is gone, so scripts can rely
	 * on it (the pid-file lock goes away with the process). */
	char path[CONFIG_STR + 16];
	pidfile_path(cfg->data_dir, path, sizeof(path));
	for (int waited = 0; waited < CLI_STOP_WAIT_MS; waited += 20) {
		pid_t still;
		if (pidfile_running(path, &still) != 0) {
			printf("artemis %s: the master has stopped\n", verb);
			return 0;
		}
		sleep_ms(20);
	}
	fprintf(stderr, "artemis %s: the master (pid %d) is still running after %d s\n", verb,
	        (int)pid, CLI_STOP_WAIT_MS / 1000);
	return 1;
}

static const char *role_name(int role)
{
	static const char *const names[] = {"none",       "master", "worker", "reaper",
	                                    "replicator", "cli",    "test"};
	return role >= 0 && role <= SHM_ROLE_TEST ? names[role] : "?";
}

static double mib(uint64_t bytes)
{
	return (double)bytes / (1024.0 * 1024.0);
}

/* The region's parameters as stored: what the configuration put there. */
static void print_params(shm_t *shm)
{
	shm_params_t p;
	shm_get_params(shm, &p);
	printf("  max_instances %u, max_services %u, changelog_size %u\n", p.max_instances,
	       p.max_services, p.changelog_size);
	printf("  lease_ttl_ms %u, legacy_lease_ttl_ms %u, self_preservation %s, "
	       "preserve_window_ms %u, legacy_preserve_window_ms %u, lock_wait_ms %u\n",
	       p.lease_ttl_ms, p.legacy_ttl_ms, p.self_preservation ? "on" : "off",
	       p.preserve_window_ms, p.legacy_preserve_window_ms, p.lock_wait_ms);
}

static void print_region(shm_t *shm)
{
	shm_stats_t st;
	shm_stats(shm, &st);
	printf("region %s: incarnation %llu, %s\n", shm_name(shm),
	       (unsigned long long)shm_incarnation(shm),
	       shm_was_clean(shm) ? "clean (no node attached)" : "in use or stopped uncleanly");
	printf("  instances %llu of %u, services %llu of %u, version %llu\n",
	       (unsigned long long)st.instances, st.max_instances, (unsigned long long)st.services,
	       st.max_services, (unsigned long long)st.version);
	printf("  arena %llu of %llu bytes, repairs %llu\n", (unsigned long long)st.arena_used,
	       (unsigned long long)st.arena_size, (unsigned long long)st.repairs);
	printf("  memory: %.1f MiB of /dev/shm reserved (region %.1f MiB, sparse)\n",
	       mib(st.reserved_bytes), mib(st.region_size));
	print_params(shm);
	shm_lock_state_t lk;
	shm_lock_state(shm, &lk);
	if (lk.pid)
		printf("  writer lock held by pid %d\n", lk.pid);
	shm_proc_info_t procs[SHM_MAX_PROCS];
	int n = shm_proc_list(shm, procs, SHM_MAX_PROCS);
	uint64_t now = clock_wall_ms();
	for (int i = 0; i < n; i++) {
		long long age = procs[i].beat_ms ? (long long)(now - procs[i].beat_ms) : -1;
		printf("  process %d: %s%s", procs[i].pid, role_name(procs[i].role),
		       kill(procs[i].pid, 0) == 0 || errno == EPERM ? "" : " (gone)");
		if (age >= 0)
			printf(", last beat %lld ms ago", age);
		printf("\n");
	}
}

static sigjmp_buf check_jmp;

static void check_on_sigbus(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)si;
	(void)ctx;
	siglongjmp(check_jmp, 1);
}

static int check_attached(const config_t *cfg, shm_t **shm)
{
	int rc = shm_attach(cfg->shm_name, true, shm);
	if (rc == -EPROTO)
		fprintf(stderr,
		        "artemis check: region %s has another layout version than this binary "
		        "(%d); check it with the binary that made it, or start this one with "
		        "--fresh to discard it\n",
		        cfg->shm_name, SHM_LAYOUT_VERSION);
	else if (rc == -EBADMSG || rc == -EPERM)
		fprintf(stderr, "artemis check: %s region %s: %s\n",
		        rc == -EPERM ? "refusing" : "inconsistent header in", cfg->shm_name,
		        shm_error_detail());
	else if (rc < 0)
		fprintf(stderr, "artemis check: cannot attach region %s: %s\n", cfg->shm_name,
		        strerror(-rc));
	if (rc < 0)
		return 1;
	print_region(*shm);
	char msg[512];
	rc = shm_check(*shm, msg, sizeof(msg));
	if (rc == 0)
		rc = mgmt_check(cfg, *shm, msg, sizeof(msg));
	if (rc == 0)
		printf("check: ok, every invariant holds (registry, and the management "
		       "projection against the store)\n");
	else
		printf("check: FAILED: %s\n", msg);
	return rc == 0 ? 0 : 1;
}

int cli_check(const config_t *cfg)
{
	static shm_t *shm; /* static: survives the siglongjmp */
	struct sigaction sa, old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = check_on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &old);
	int code;
	shm = NULL;
	if (sigsetjmp(check_jmp, 1) == 0) {
		code = check_attached(cfg, &shm);
	} else {
		fflush(stdout);
		fprintf(stderr,
		        "artemis check: region %s has pages with no memory behind them (SIGBUS "
		        "reading it): /dev/shm is full or the region file was truncated; free "
		        "space in /dev/shm, then check again\n",
		        cfg->shm_name);
		code = 1;
	}
	sigaction(SIGBUS, &old, NULL);
	if (shm)
		shm_detach(shm);
	return code;
}

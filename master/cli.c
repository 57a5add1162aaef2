/*
 * cli.c - the client commands of the artemis binary that talk to a running
 * node: reload, stop, quit (signals to the master found through the pid
 * file) and check (the registry's invariants, read-only).
 *
 * Called from master/main.c; prints to stdout/stderr for people and scripts
 * and returns the exit code (0 done, 1 failed).  Never writes the region.
 */
#include <errno.h>
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

int cli_check(const config_t *cfg)
{
	shm_t *shm = NULL;
	int rc = shm_attach(cfg->shm_name, true, &shm);
	if (rc == -EPROTO) {
		fprintf(stderr,
		        "artemis check: region %s has another layout version than this binary "
		        "(%d); check it with the binary that made it, or start this one with "
		        "--fresh to discard it\n",
		        cfg->shm_name, SHM_LAYOUT_VERSION);
		return 1;
	}
	if (rc < 0) {
		fprintf(stderr, "artemis check: cannot attach region %s: %s\n", cfg->shm_name,
		        strerror(-rc));
		return 1;
	}
	print_region(shm);
	char msg[512];
	rc = shm_check(shm, msg, sizeof(msg));
	if (rc == 0)
		rc = mgmt_check(cfg, shm, msg, sizeof(msg));
	if (rc == 0)
		printf("check: ok, every invariant holds (registry, and the management "
		       "projection against the store)\n");
	else
		printf("check: FAILED: %s\n", msg);
	shm_detach(shm);
	return rc == 0 ? 0 : 1;
}

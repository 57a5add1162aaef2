/*
 * reaper.c - the reaper process: expires leases (include/artemis/proc.h).
 *
 * Forked by the master ("artemis: reaper"), one per node.  Every
 * reap_interval_ms it runs shm_reap(), which removes unregistered leases and
 * expired ones whose manager is safe, through the normal write path (so
 * every removal is a `delete` change); every second it runs Java's
 * self-preservation check (shm_preserve_tick) before reaping.  It never
 * blocks on anything but its control channel and the writer lock, and on
 * the lock at most [registry] lock_wait_ms.
 *
 * Logging: one summary line per second at most, and only when something was
 * removed; a line when a manager's self-preservation turns on or off.
 * Scheduling uses CLOCK_MONOTONIC so a wall-clock step cannot stall reaping;
 * the leases themselves are judged by the wall clock (clock_wall_ms), as Java's.
 */
#include "artemis/clock.h"
#include "artemis/proc.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "artemis/log.h"
#include "artemis/shm.h"

#define REAPER_TICK_MS 1000 /* self-preservation check, summary log */

static volatile sig_atomic_t reaper_stop;

static void reaper_on_term(int sig)
{
	(void)sig;
	reaper_stop = 1;
}

typedef struct {
	shm_t *shm;
	uint32_t interval_ms;
	shm_reap_result_t pending; /* removed since the last summary line */
	uint64_t next_reap;
	uint64_t next_tick;
	bool safe[SHM_MGR_COUNT];
	bool failing; /* shm_reap is failing; logged once */
} reaper_t;

static void reaper_log_summary(reaper_t *r)
{
	shm_reap_result_t *p = &r->pending;
	if (p->evicted_removed == 0 && p->expired_removed == 0)
		return;
	log_info(
	    "removed %u unregistered and %u expired leases (%u expired kept by self-preservation)",
	    p->evicted_removed, p->expired_removed, p->expired_kept);
	memset(p, 0, sizeof(*p));
}

static void reaper_watch_preservation(reaper_t *r)
{
	static const char *const names[SHM_MGR_COUNT] = {"normal", "legacy"};
	for (int m = 0; m < SHM_MGR_COUNT; m++) {
		shm_preserve_t st;
		shm_preserve_get(r->shm, m, &st);
		if (st.safe == r->safe[m])
			continue;
		r->safe[m] = st.safe;
		if (st.safe)
			log_info(
			    "self-preservation off for %s leases: expired leases are removed again",
			    names[m]);
		else
			log_warn(
			    "self-preservation on for %s leases: %llu renewals in the last window, "
			    "below the expected %llu; expired leases are kept",
			    names[m], (unsigned long long)st.window_count,
			    (unsigned long long)st.max_count);
	}
}

static void reaper_reap(reaper_t *r)
{
	shm_reap_result_t res;
	memset(&res, 0, sizeof(res));
	int rc = shm_reap(r->shm, clock_wall_ms(), &res);
	if (rc < 0) {
		if (!r->failing)
			log_error("cannot remove leases: %s; retrying every pass",
			          rc == -ENOBUFS ? "/dev/shm has no room for the change log"
			          : rc == -ETIMEDOUT
			              ? "the registry writer lock is held by a stopped "
			                "or stuck process"
			              : strerror(-rc));
		r->failing = true;
		return;
	}
	if (r->failing)
		log_info("removing leases works again");
	r->failing = false;
	r->pending.evicted_removed += res.evicted_removed;
	r->pending.expired_removed += res.expired_removed;
	r->pending.expired_kept = res.expired_kept; /* a level, not a count of events */
}

/* Run what is due; returns how long to sleep. */
static int reaper_step(reaper_t *r)
{
	uint64_t now = clock_mono_ms();
	if (now >= r->next_tick) {
		shm_preserve_tick(r->shm, clock_wall_ms());
		reaper_watch_preservation(r);
		reaper_log_summary(r);
		r->next_tick = now + REAPER_TICK_MS;
	}
	if (now >= r->next_reap) {
		reaper_reap(r);
		r->next_reap += r->interval_ms;
		if (r->next_reap <= now) /* fell behind: do not run a burst */
			r->next_reap = now + r->interval_ms;
	}
	shm_proc_beat(r->shm, clock_wall_ms());
	uint64_t next = r->next_reap < r->next_tick ? r->next_reap : r->next_tick;
	now = clock_mono_ms();
	return next > now ? (int)(next - now) : 0;
}

/* Read control messages.  Returns 1 to keep running, 0 to exit. */
static int reaper_read_ctl(int ctl_fd)
{
	char buf[64];
	ssize_t n = read(ctl_fd, buf, sizeof(buf));
	if (n == 0)
		return 0; /* the master is gone */
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 1 : 0;
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == PROC_MSG_QUIT || buf[i] == PROC_MSG_TERM)
			return 0;
		if (buf[i] == PROC_MSG_REOPEN)
			log_reopen();
	}
	return 1;
}

int reaper_main(const config_t *cfg, shm_t *shm, int ctl_fd)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = reaper_on_term; /* no SA_RESTART: poll() returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	int idx = shm_proc_join(shm, SHM_ROLE_REAPER, -1);
	if (idx < 0) {
		log_error("shm_proc_join: %s", strerror(-idx));
		return 1;
	}
	reaper_t r;
	memset(&r, 0, sizeof(r));
	r.shm = shm;
	r.interval_ms = cfg->reap_interval_ms;
	r.next_reap = r.next_tick = clock_mono_ms();
	for (int m = 0; m < SHM_MGR_COUNT; m++) {
		shm_preserve_t st;
		shm_preserve_get(shm, m, &st);
		r.safe[m] = st.safe;
	}
	char ready = PROC_MSG_READY;
	if (write(ctl_fd, &ready, 1) != 1)
		log_warn("cannot report ready: %s", strerror(errno));
	log_info("reaping every %u ms", r.interval_ms);

	int running = 1;
	while (running && !reaper_stop) {
		int timeout = reaper_step(&r);
		struct pollfd pfd = {.fd = ctl_fd, .events = POLLIN};
		int n = poll(&pfd, 1, timeout);
		if (n > 0)
			running = reaper_read_ctl(ctl_fd);
	}
	reaper_log_summary(&r);
	shm_proc_leave(shm);
	return 0;
}

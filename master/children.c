/*
 * children.c - the master's children: fork them, read what they report,
 * reap them, respawn them into the same unit, and the timers that go with
 * it (crash-loop backoff, TERM/KILL deadlines).
 *
 * Runs in the master only, from its loop (never from a signal handler).
 * Every exit is logged with how the child ended; after every exit the
 * registry's writer lock is repaired (the child may have died holding it)
 * and the child's process-table entry is reclaimed.
 *
 * The lock watch: a child that holds one acquisition of the writer lock
 * for [registry] lock_stall_ms (stopped, stuck) blocks every writer of the
 * node; the master logs it and kills it, and the usual path follows (the
 * next locker or the master repairs, the unit is respawned).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "artemis/clock.h"
#include "artemis/log.h"
#include "artemis/mgmt.h"
#include "artemis/proc.h"
#include "master_state.h"

/* Workers are numbered from 1 for people: slot 0 is "worker 1". */
const char *master_unit_name(int unit, char *buf, size_t len)
{
	if (unit == MASTER_UNIT_REAPER)
		snprintf(buf, len, "reaper");
	else if (unit == MASTER_UNIT_REPL)
		snprintf(buf, len, "replicator");
	else
		snprintf(buf, len, "worker %d", unit + 1);
	return buf;
}

int master_count_children(const master_t *m)
{
	int n = 0;
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++)
		n += m->children[i].pid != 0;
	return n;
}

/* ---- Spawning ------------------------------------------------------------ */

static void wipe_auth_secrets(config_t *cfg, int unit)
{
	explicit_bzero(cfg->initial_admin_password, sizeof(cfg->initial_admin_password));
	if (unit >= MASTER_SLOTS)
		explicit_bzero(cfg->jwt_secret, sizeof(cfg->jwt_secret));
}

/* In the new child: keep only its own descriptors, then become the unit. */
static void child_run(master_t *m, int unit, const config_t *cfg, int ctl)
{
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++)
		if (m->children[i].pid && m->children[i].ctl >= 0)
			close(m->children[i].ctl);
	for (int u = 0; u < MASTER_SLOTS; u++) {
		if (u != unit && m->units[u].listen_fd >= 0)
			close(m->units[u].listen_fd);
		if (u != unit && m->units[u].tls_listen_fd >= 0)
			close(m->units[u].tls_listen_fd);
	}
	if (m->pid_fd >= 0)
		close(m->pid_fd); /* the pid-file lock stays the master's alone */

	char name[32], title[48];
	/* A reload's new generation runs with the context loaded for it. */
	proc_listen_t lst = {
	    .fd = unit < MASTER_SLOTS ? m->units[unit].listen_fd : -1,
	    .tls_fd = unit < MASTER_SLOTS ? m->units[unit].tls_listen_fd : -1,
	    .tls = cfg == &m->next ? m->tls_next : m->tls,
	};
	master_unit_name(unit, name, sizeof(name));
	snprintf(title, sizeof(title), "artemis: %s", name);
	proc_child_setup(title);
	if (unit != MASTER_UNIT_REPL) {
		/* Only the replicator needs the cluster key. */
		explicit_bzero(m->cfg.cluster_key, sizeof(m->cfg.cluster_key));
		explicit_bzero(m->next.cluster_key, sizeof(m->next.cluster_key));
		if (m->origin)
			explicit_bzero(m->origin->cluster_key, sizeof(m->origin->cluster_key));
	}
	/* Only workers sign and check tokens; the first admin's password is
	 * the master's alone (mgmt_boot). */
	wipe_auth_secrets(&m->cfg, unit);
	wipe_auth_secrets(&m->next, unit);
	if (m->origin)
		wipe_auth_secrets(m->origin, unit);
	if (master_user_drop(&m->user) < 0)
		exit(2);  /* never run with more than it should; not respawned */
	proc_child_tie(); /* the change of user cleared the death signal */
	int rc;
	if (unit == MASTER_UNIT_REAPER)
		rc = reaper_main(cfg, m->shm, ctl);
	else if (unit == MASTER_UNIT_REPL)
		rc = replicator_main(cfg, m->shm, ctl);
	else
		rc = worker_main(cfg, m->shm, &lst, ctl, unit);
	exit(rc);
}

int master_spawn(master_t *m, int unit, const config_t *cfg, unsigned gen)
{
	char name[32];
	master_unit_name(unit, name, sizeof(name));
	master_child_t *c = NULL;
	for (int i = 0; i < MASTER_MAX_CHILDREN && !c; i++)
		if (!m->children[i].pid)
			c = &m->children[i];
	if (!c) {
		log_error("cannot start %s: %d children already", name, MASTER_MAX_CHILDREN);
		return -ENOSPC;
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
		int e = errno;
		log_error("cannot start %s: socketpair: %s", name, strerror(e));
		return -e;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		log_error("cannot start %s: fork: %s", name, strerror(e));
		close(sv[0]);
		close(sv[1]);
		return -e;
	}
	if (pid == 0) {
		close(sv[0]);
		child_run(m, unit, cfg, sv[1]);
	}
	close(sv[1]);
	memset(c, 0, sizeof(*c));
	c->pid = pid;
	c->ctl = sv[0];
	c->unit = unit;
	c->gen = gen;
	c->started_ms = clock_mono_ms();
	m->units[unit].respawn_at = 0;
	log_info("started %s (pid %d, generation %u)", name, (int)pid, gen);
	return 0;
}

/* ---- Control channel ----------------------------------------------------- */

void master_send(master_child_t *c, char msg)
{
	if (c->ctl < 0)
		return;
	/* One byte into an empty-enough socket buffer; a full buffer means
	 * the child is not reading, and the deadlines deal with it. */
	ssize_t n = write(c->ctl, &msg, 1);
	(void)n;
}

void master_read_ctl(master_t *m, master_child_t *c)
{
	char buf[64];
	ssize_t n = read(c->ctl, buf, sizeof(buf));
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		close(c->ctl); /* the child is exiting; SIGCHLD follows */
		c->ctl = -1;
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == PROC_MSG_READY && !c->ready) {
			c->ready = true;
			master_reload_child_ready(m);
		}
	}
}

/* ---- Reaping and respawning ---------------------------------------------- */

static void describe_status(int st, char *buf, size_t len)
{
	if (WIFEXITED(st)) {
		snprintf(buf, len, "exited with code %d", WEXITSTATUS(st));
	} else if (WIFSIGNALED(st)) {
		const char *abbrev = sigabbrev_np(WTERMSIG(st));
		snprintf(buf, len, "was killed by signal %d (SIG%s)%s", WTERMSIG(st),
		         abbrev ? abbrev : "?", WCOREDUMP(st) ? ", core dumped" : "");
	} else {
		snprintf(buf, len, "ended with status 0x%x", st);
	}
}

static unsigned recent_deaths(const master_unit_t *u, uint64_t now)
{
	unsigned n = 0;
	unsigned held = u->ndeaths < MASTER_LOOP_DEATHS ? u->ndeaths : MASTER_LOOP_DEATHS;
	for (unsigned i = 0; i < held; i++)
		n += now - u->deaths[i] < MASTER_LOOP_WINDOW_MS;
	return n;
}

/* Respawn at once, unless the unit is crash-looping: then with a delay
 * that doubles per exit (100 ms .. 5 s) until a child lives a full window. */
static void schedule_respawn(master_t *m, const master_child_t *dead)
{
	master_unit_t *u = &m->units[dead->unit];
	uint64_t now = clock_mono_ms();
	char name[32];
	master_unit_name(dead->unit, name, sizeof(name));
	if (now - dead->started_ms >= MASTER_LOOP_WINDOW_MS) {
		u->backoff_ms = 0;
		u->ndeaths = 0;
	}
	u->deaths[u->ndeaths++ % MASTER_LOOP_DEATHS] = now;
	unsigned recent = recent_deaths(u, now);
	if (u->backoff_ms || recent >= MASTER_LOOP_DEATHS) {
		u->backoff_ms = u->backoff_ms ? u->backoff_ms * 2 : MASTER_BACKOFF_MIN_MS;
		if (u->backoff_ms > MASTER_BACKOFF_MAX_MS)
			u->backoff_ms = MASTER_BACKOFF_MAX_MS;
		u->respawn_at = now + u->backoff_ms;
		log_warn("%s is crash-looping (%u exits within %d s): respawning in %u ms", name,
		         recent, MASTER_LOOP_WINDOW_MS / 1000, u->backoff_ms);
		return;
	}
	if (master_spawn(m, dead->unit, &m->cfg, m->gen) < 0)
		u->respawn_at = now + 1000;
}

static bool any_worker_enabled(const master_t *m)
{
	for (int s = 0; s < m->cfg.workers && s < MASTER_SLOTS; s++)
		if (!m->units[s].disabled)
			return true;
	return false;
}

static bool unit_has_child(const master_t *m, int unit)
{
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++)
		if (m->children[i].pid && m->children[i].unit == unit)
			return true;
	return false;
}

/* Whether a child other than c is still retiring (draining). */
static bool others_retiring(const master_t *m, const master_child_t *c)
{
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++)
		if (&m->children[i] != c && m->children[i].pid && m->children[i].retiring)
			return true;
	return false;
}

static void child_exited(master_t *m, const master_child_t *c, int st)
{
	char name[32], how[96];
	master_unit_name(c->unit, name, sizeof(name));
	describe_status(st, how, sizeof(how));
	bool expected = c->retiring || m->stop;
	if (expected)
		log_info("%s (pid %d) %s", name, (int)c->pid, how);
	else
		log_error("%s (pid %d) %s", name, (int)c->pid, how);
	if (m->stop)
		return;
	if (c->retiring) {
		/* A replaced reaper is restarted with the new configuration. */
		if (c->unit == MASTER_UNIT_REAPER && !unit_has_child(m, c->unit) &&
		    master_spawn(m, c->unit, &m->cfg, m->gen) < 0)
			m->units[c->unit].respawn_at = clock_mono_ms() + 1000;
		if (c->unit == MASTER_UNIT_REPL)
			master_start_replicator(m);
		if (!others_retiring(m, c))
			log_info("reload: generation %u complete: the old generation is gone",
			         m->gen);
		return;
	}
	if (m->reloading && c->gen == m->gen + 1) {
		master_reload_child_failed(m, c, how);
		return;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 2) {
		m->units[c->unit].disabled = true;
		log_error("%s: fatal configuration error (exit code 2); not respawning it", name);
		if (c->unit == MASTER_UNIT_REAPER || !any_worker_enabled(m)) {
			log_error("cannot run without %s; stopping",
			          c->unit == MASTER_UNIT_REAPER ? "the reaper" : "workers");
			m->exit_code = 2;
			master_begin_stop(m, true);
		}
		return;
	}
	schedule_respawn(m, c);
}

/* The same for the management projection: a child that died holding its
 * writer lock leaves it to be rebuilt from the store, here at once, so
 * discovery and the store agree again before anyone asks. */
static void repair_mgmt_after(master_t *m, pid_t pid)
{
	char err[512];
	int r = mgmt_repair(&m->cfg, m->shm, err, sizeof(err));
	if (r == 1)
		log_warn("pid %d died in the middle of a management write: rebuilt the "
		         "projection from the store",
		         (int)pid);
	else if (r < 0 && r != -EBUSY)
		log_error("management repair after pid %d: %s", (int)pid, err);
}

/* A child that exited normally was not in the middle of a write; only an
 * abnormal end can leave the writer lock with a dead owner.  shm_repair
 * never waits: when a live process holds the lock it answers -EBUSY, and
 * that process (or the next locker, if it dies) does the repair. */
static void repair_after(master_t *m, pid_t pid, int st)
{
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		shm_proc_reclaim(m->shm, pid);
		return;
	}
	int r = shm_repair(m->shm);
	if (r == -EBUSY) {
		log_info("registry lock held by a live process after pid %d ended; it repairs "
		         "if needed",
		         (int)pid);
	} else if (r < 0) {
		log_error("shm_repair after pid %d: %s", (int)pid, strerror(-r));
	} else if (r == 1) {
		char msg[256];
		log_warn("pid %d died in the middle of a registry write: repaired it", (int)pid);
		int c = shm_check(m->shm, msg, sizeof(msg));
		if (c == 0)
			log_info("registry check after the repair: ok");
		else if (c == -ETIMEDOUT)
			log_warn(
			    "registry check after the repair skipped: the writer lock is busy");
		else
			log_error("registry check after the repair failed: %s", msg);
	}
	repair_mgmt_after(m, pid);
	shm_proc_reclaim(m->shm, pid);
}

void master_reap(master_t *m)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		repair_after(m, pid, st);
		master_child_t *c = NULL;
		for (int i = 0; i < MASTER_MAX_CHILDREN && !c; i++)
			if (m->children[i].pid == pid)
				c = &m->children[i];
		if (!c) {
			log_warn("reaped unknown child pid %d", (int)pid);
			continue;
		}
		master_child_t dead = *c;
		if (c->ctl >= 0)
			close(c->ctl);
		memset(c, 0, sizeof(*c));
		c->ctl = -1;
		child_exited(m, &dead, st);
	}
	master_close_unused_sockets(m);
}

/* After a reload to fewer workers: close the sockets of slots no longer
 * used, once their old workers are gone. */
void master_close_unused_sockets(master_t *m)
{
	if (m->reloading)
		return;
	for (int s = m->cfg.workers; s < MASTER_SLOTS; s++) {
		if (m->units[s].listen_fd < 0 || unit_has_child(m, s))
			continue;
		close(m->units[s].listen_fd);
		m->units[s].listen_fd = -1;
		if (m->units[s].tls_listen_fd >= 0)
			close(m->units[s].tls_listen_fd);
		m->units[s].tls_listen_fd = -1;
	}
}

/* The replicator runs on a node with peers: at start, and after a reload
 * once the previous one (if any) has exited, with the new configuration. */
void master_start_replicator(master_t *m)
{
	if (m->stop || m->cfg.npeers == 0 || m->units[MASTER_UNIT_REPL].disabled ||
	    unit_has_child(m, MASTER_UNIT_REPL))
		return;
	if (master_spawn(m, MASTER_UNIT_REPL, &m->cfg, m->gen) < 0)
		m->units[MASTER_UNIT_REPL].respawn_at = clock_mono_ms() + 1000;
}

/* ---- Timers -------------------------------------------------------------- */

static void child_timers(master_child_t *c, uint64_t now)
{
	char name[32];
	master_unit_name(c->unit, name, sizeof(name));
	if (c->term_at && now >= c->term_at) {
		c->term_at = 0;
		log_warn("%s (pid %d) is still draining: terminating it", name, (int)c->pid);
		master_send(c, PROC_MSG_TERM);
		kill(c->pid, SIGTERM);
	}
	if (c->kill_at && now >= c->kill_at) {
		c->kill_at = 0;
		log_warn("%s (pid %d) did not exit in time: killing it", name, (int)c->pid);
		kill(c->pid, SIGKILL);
	}
}

void master_run_timers(master_t *m)
{
	uint64_t now = clock_mono_ms();
	master_watch_lock(m);
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++)
		if (m->children[i].pid)
			child_timers(&m->children[i], now);
	for (int u = 0; u < MASTER_UNITS; u++) {
		master_unit_t *unit = &m->units[u];
		if (!unit->respawn_at || now < unit->respawn_at)
			continue;
		unit->respawn_at = 0;
		if (m->stop || (u < MASTER_SLOTS && u >= m->cfg.workers) ||
		    (u == MASTER_UNIT_REPL && m->cfg.npeers == 0) || unit_has_child(m, u))
			continue;
		if (master_spawn(m, u, &m->cfg, m->gen) < 0)
			unit->respawn_at = now + 1000;
	}
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	return a < b ? a : b;
}

/* ---- The lock watch --------------------------------------------------------- */

static master_child_t *child_by_pid(master_t *m, int pid)
{
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++)
		if (m->children[i].pid && m->children[i].pid == pid)
			return &m->children[i];
	return NULL;
}

static void lock_stalled(master_t *m, int pid, uint64_t held_ms)
{
	master_child_t *c = child_by_pid(m, pid);
	if (!c) {
		log_warn("pid %d (not a child of this master) has held the registry writer lock "
		         "for %" PRIu64 " ms: writes wait for it; stop that process",
		         pid, held_ms);
		return;
	}
	char name[32];
	master_unit_name(c->unit, name, sizeof(name));
	log_error("%s (pid %d) has held the registry writer lock for %" PRIu64 " ms without "
	          "progress (stopped or stuck): killing it; the registry is repaired and the "
	          "%s respawned",
	          name, pid, held_ms, name);
	kill(pid, SIGKILL);
}

void master_watch_lock(master_t *m)
{
	master_lock_watch_t *w = &m->lock;
	uint64_t now = clock_mono_ms();
	if (!m->shm || now < w->next_ms)
		return;
	uint32_t every = m->cfg.lock_stall_ms / 4;
	w->next_ms = now + (every < 50 ? 50 : every);
	shm_lock_state_t st;
	shm_lock_state(m->shm, &st);
	if (st.pid == 0 || st.pid != w->pid || st.seq != w->seq) {
		w->pid = st.pid;
		w->seq = st.seq;
		w->since_ms = now;
		w->acted = false;
		return;
	}
	if (w->acted || now - w->since_ms < m->cfg.lock_stall_ms)
		return;
	w->acted = true;
	lock_stalled(m, st.pid, now - w->since_ms);
}

uint64_t master_next_timer(const master_t *m)
{
	uint64_t t = m->shm ? m->lock.next_ms : 0;
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++) {
		if (!m->children[i].pid)
			continue;
		t = earliest(t, m->children[i].term_at);
		t = earliest(t, m->children[i].kill_at);
	}
	for (int u = 0; u < MASTER_UNITS; u++)
		t = earliest(t, m->units[u].respawn_at);
	if (m->reloading)
		t = earliest(t, m->reload_deadline);
	return t;
}

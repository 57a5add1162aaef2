/*
 * master.c - the master process: nginx's master cycle.
 *
 * `artemis server` ends up here (master_run).  The master owns the
 * configuration, the pid file, the listening sockets and the registry
 * region; it forks the workers and the reaper (children.c) and never does
 * request work itself.
 *
 * The loop: signal handlers only set flags (signals.c); the signals are
 * blocked everywhere except inside ppoll(), which sleeps on the children's
 * control channels (PROC_MSG_READY) and the next deadline with the signals
 * unblocked -- sigsuspend() with file descriptors and a timeout.  Each turn
 * acts on the flags in a fixed order: stop, reap, reload, reopen, timers.
 *
 *   SIGTERM/SIGINT  fast stop: PROC_MSG_TERM + SIGTERM to every child
 *   SIGQUIT         graceful stop: PROC_MSG_QUIT (drain)
 *                   either way: SIGKILL to what is left after 5 s, then the
 *                   region is marked clean and the pid file removed
 *   SIGHUP          reload: new configuration, new generation of workers;
 *                   once all report ready the old generation gets QUIT
 *   SIGUSR1         reopen the log file, PROC_MSG_REOPEN to every child
 *   SIGCHLD         children.c: log, repair, respawn (with crash-loop backoff)
 *
 * Under systemd (Type=notify) the hooks marked "systemd" report to the
 * service manager through notify.c: READY=1 when the first generation
 * serves, RELOADING=1 and READY=1 around a reload, STOPPING=1, STATUS=.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "artemis/clock.h"
#include "artemis/log.h"
#include "artemis/mgmt.h"
#include "artemis/proc.h"
#include "master_state.h"
#include "notify.h"

int master_load_config(config_t *cfg, const char *path, const master_opts_t *opts, char *err,
                       size_t err_len)
{
	config_defaults(cfg);
	if (path && *path && config_load(cfg, path, err, err_len) < 0)
		return -1;
	if (config_apply_env(cfg, NULL, err, err_len) < 0) /* file < environment < options */
		return -1;
	for (int i = 0; opts && i < opts->noverrides; i++) {
		const master_override_t *o = &opts->overrides[i];
		char msg[256];
		if (config_set(cfg, o->section, o->key, o->value, msg, sizeof(msg)) < 0) {
			snprintf(err, err_len, "%s: %s", o->option, msg);
			return -1;
		}
	}
	return config_finish(cfg, err, err_len);
}

/* ---- Start ---------------------------------------------------------------- */

static int open_log(const config_t *cfg)
{
	enum log_level lv = LOG_INFO;
	log_parse_level(cfg->log_level, &lv);
	int rc = log_open(cfg->log_file, lv);
	if (rc < 0)
		fprintf(stderr, "artemis: log file %s: %s\n", cfg->log_file, strerror(-rc));
	return rc;
}

static int open_pidfile(master_t *m)
{
	int rc = pidfile_mkdirs(m->cfg.data_dir);
	if (rc < 0) {
		log_error("data_dir %s: %s", m->cfg.data_dir, strerror(-rc));
		return -1;
	}
	pidfile_path(m->cfg.data_dir, m->pid_path, sizeof(m->pid_path));
	pid_t holder = 0;
	m->pid_fd = pidfile_acquire(m->pid_path, &holder);
	if (m->pid_fd == -EBUSY) {
		log_error("another master (pid %d) is running on this data_dir (%s)", (int)holder,
		          m->cfg.data_dir);
		return -1;
	}
	if (m->pid_fd < 0) {
		log_error("pid file %s: %s", m->pid_path, strerror(-m->pid_fd));
		return -1;
	}
	return 0;
}

void master_region_params(const config_t *cfg, shm_params_t *p)
{
	shm_params_default(p, cfg->shm_name);
	p->max_instances = cfg->max_instances;
	p->max_services = cfg->max_services;
	p->changelog_size = cfg->changelog_size;
	p->lease_ttl_ms = cfg->lease_ttl_ms;
	p->legacy_ttl_ms = cfg->legacy_lease_ttl_ms;
	p->self_preservation = cfg->self_preservation;
	p->preserve_window_ms = cfg->preserve_window_ms;
	p->legacy_preserve_window_ms = cfg->legacy_preserve_window_ms;
	p->lock_wait_ms = cfg->lock_wait_ms;
	p->mgmt_bytes = mgmt_region_bytes(cfg);
	p->mgmt_initial_bytes = mgmt_region_initial_bytes(cfg);
}

/* An existing region keeps the parameters it was created with. */
static void warn_region_differs(master_t *m)
{
	shm_params_t want, have;
	master_region_params(&m->cfg, &want);
	shm_get_params(m->shm, &have);
	if (want.max_instances != have.max_instances || want.max_services != have.max_services ||
	    want.changelog_size != have.changelog_size || want.lease_ttl_ms != have.lease_ttl_ms ||
	    want.legacy_ttl_ms != have.legacy_ttl_ms ||
	    want.self_preservation != have.self_preservation ||
	    want.preserve_window_ms != have.preserve_window_ms ||
	    want.legacy_preserve_window_ms != have.legacy_preserve_window_ms ||
	    want.mgmt_bytes != have.mgmt_bytes)
		log_warn("region %s keeps the [registry] parameters it was created with "
		         "(max_instances %u, lease_ttl_ms %u); start with --fresh to apply the "
		         "configured ones",
		         m->cfg.shm_name, have.max_instances, have.lease_ttl_ms);
}

static double mib(uint64_t bytes)
{
	return (double)bytes / (1024.0 * 1024.0);
}

/* Why the region could not be opened, for people. */
static void open_region_failed(const master_t *m, int rc, const shm_open_info_t *info)
{
	const char *name = m->cfg.shm_name;
	if (rc == -EPROTO)
		log_error("region %s has another layout version; start with --fresh to discard it",
		          name);
	else if (rc == -EBUSY)
		log_error("region %s is in use by another running master; stop it first "
		          "(artemis stop) or give this node another [registry] shm_name",
		          name);
	else if (rc == -ENOBUFS)
		log_error(
		    "cannot reserve shared memory for region %s: /dev/shm has no room for the "
		    "%.1f MiB it needs to start (the %.1f MiB region is sparse and reserves more "
		    "as it fills); free space in /dev/shm (df -h /dev/shm) or lower [registry] "
		    "max_instances",
		    name, mib(info->reserve_bytes), mib(info->region_bytes));
	else if (rc == -EPERM)
		log_error("refusing region %s (/dev/shm%s): %s; remove it if it is stale, or give "
		          "this node another [registry] shm_name",
		          name, name, shm_error_detail());
	else if (rc == -EBADMSG)
		log_error("region %s has an inconsistent header (corrupt or tampered with): %s; "
		          "start with --fresh to discard it",
		          name, shm_error_detail());
	else
		log_error("cannot open region %s: %s%s%s", name, strerror(-rc),
		          shm_error_detail()[0] ? ": " : "", shm_error_detail());
}

static void region_opened(master_t *m, const shm_open_info_t *info)
{
	shm_stats_t st;
	shm_stats(m->shm, &st);
	if (info->created) {
		log_info(
		    "created region %s%s (capacity %u instances; %.1f MiB of /dev/shm reserved "
		    "now, more as it fills)",
		    m->cfg.shm_name, m->opts.fresh ? " (--fresh)" : "", st.max_instances,
		    mib(info->reserve_bytes));
	} else if (info->was_clean) {
		log_info("attached region %s after a clean stop: %llu instances", m->cfg.shm_name,
		         (unsigned long long)st.instances);
	} else {
		log_warn("attached region %s after an unclean stop: %llu instances; extending "
		         "every lease by %u ms",
		         m->cfg.shm_name, (unsigned long long)st.instances, m->cfg.lease_ttl_ms);
		int rc = shm_extend_leases(m->shm, m->cfg.lease_ttl_ms);
		if (rc < 0)
			log_error("cannot extend the leases of region %s: %s", m->cfg.shm_name,
			          strerror(-rc));
	}
	if (info->repaired) {
		char msg[256];
		log_warn("repaired an interrupted write in region %s", m->cfg.shm_name);
		if (shm_check(m->shm, msg, sizeof(msg)) != 0)
			log_error("registry check after the repair failed: %s", msg);
	}
	if (!info->created)
		warn_region_differs(m);
}

static int open_region(master_t *m)
{
	shm_params_t p;
	shm_open_info_t info;
	master_region_params(&m->cfg, &p);
	memset(&info, 0, sizeof(info));
	int rc = shm_open_region(&p, m->opts.fresh ? SHM_CREATE_FRESH : 0, &m->shm, &info);
	if (rc < 0) {
		open_region_failed(m, rc, &info);
		return -1;
	}
	int other = 0;
	if (shm_claim_master(m->shm, &other) < 0) {
		log_error("region %s is in use by another running master (pid %d); stop it "
		          "first (artemis stop) or give this node another [registry] shm_name",
		          m->cfg.shm_name, other);
		shm_detach(m->shm);
		m->shm = NULL;
		return -1;
	}
	region_opened(m, &info);
	log_info("writer lock: writes wait for it up to %u ms; a child holding it %u ms is "
	         "killed",
	         m->cfg.lock_wait_ms, m->cfg.lock_stall_ms);
	return 0;
}

/* The first admin's password file (mgmt_boot), to the children's user. */
static void give_admin_password_file(const master_t *m)
{
	char path[CONFIG_STR + 64];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/%s", m->cfg.data_dir, MGMT_ADMIN_PASSWORD_FILE);
	if (stat(path, &sb) == 0)
		master_user_give(&m->user, path);
}

/* A slot's sockets: [node] listen, and [http] tls_listen when set (which
 * cannot change without a restart, so the active configuration's). */
static int open_socket(master_t *m, int slot, const char *listen)
{
	char err[256];
	int fd = listen_open(listen, true, err, sizeof(err));
	if (fd < 0) {
		log_error("%s", err);
		return -1;
	}
	m->units[slot].listen_fd = fd;
	if (!m->cfg.tls_listen[0] || m->units[slot].tls_listen_fd >= 0)
		return 0;
	if ((fd = listen_open(m->cfg.tls_listen, true, err, sizeof(err))) < 0) {
		log_error("%s", err);
		return -1;
	}
	m->units[slot].tls_listen_fd = fd;
	return 0;
}

/* The TLS context of a configuration ([http] tls_cert, tls_key), or NULL
 * without one.  -1 with err naming the file when it cannot be loaded. */
static int load_tls(const config_t *cfg, tls_ctx_t **out, char *err, size_t err_len)
{
	*out = NULL;
	if (!cfg->tls_cert[0])
		return 0;
	return tls_server_ctx(cfg->tls_cert, cfg->tls_key, out, err, err_len) < 0 ? -1 : 0;
}

static int master_start(master_t *m, sigset_t *wait_mask)
{
	char err[512];
	int rc = master_signals_install(wait_mask);
	if (rc < 0) {
		log_error("signals: %s", strerror(-rc));
		return -1;
	}
	if (master_user_resolve(&m->cfg, &m->user, err, sizeof(err)) < 0) {
		log_error("%s", err);
		m->exit_code = 2;
		return -1;
	}
	if (replicator_tls_check(&m->cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		m->exit_code = 2;
		return -1;
	}
	if (open_pidfile(m) < 0)
		return -1;
	master_user_give(&m->user, m->cfg.data_dir);
	master_user_give(&m->user, m->cfg.log_file);
	if (listen_probe(m->cfg.listen, err, sizeof(err)) < 0 ||
	    (m->cfg.tls_listen[0] && listen_probe(m->cfg.tls_listen, err, sizeof(err)) < 0)) {
		log_error("%s", err);
		return -1;
	}
	if (load_tls(&m->cfg, &m->tls, err, sizeof(err)) < 0) {
		log_error("[http] TLS: %s", err);
		m->exit_code = 2; /* a configuration error: exit 2, as a bad key */
		return -1;
	}
	if (open_region(m) < 0)
		return -1;
	/* The management store: migrated, projected into the region, and
	 * closed again before the first fork (no connection is inherited). */
	if (mgmt_boot(&m->cfg, m->shm, err, sizeof(err)) < 0) {
		log_error("management store: %s", err);
		return -1;
	}
	give_admin_password_file(m);
	if (!m->cfg.auth_enabled)
		log_warn("[auth] enabled = off: the management, routing and user APIs take every "
		         "request without a credential");
	for (int s = 0; s < m->cfg.workers; s++)
		if (open_socket(m, s, m->cfg.listen) < 0)
			return -1;
	log_info(
	    "artemis %s: node %s (region %s, zone %s), %d workers on %s%s%s%s, data_dir %s%s%s",
	    ARTEMIS_VERSION, m->cfg.name, m->cfg.region, m->cfg.zone, m->cfg.workers, m->cfg.listen,
	    m->tls && !m->cfg.tls_listen[0] ? " (TLS)" : "",
	    m->cfg.tls_listen[0] ? " and TLS on " : "", m->cfg.tls_listen, m->cfg.data_dir,
	    m->user.active ? ", children run as user " : "", m->user.active ? m->user.name : "");
	/* API.md §A: a node with no peers is up at once; one with peers is
	 * starting until the replicator has bootstrapped it. */
	shm_peers_clear(m->shm);
	shm_node_set_state(m->shm, m->cfg.npeers > 0 ? SHM_NODE_STARTING : SHM_NODE_UP);
	if (master_spawn(m, MASTER_UNIT_REAPER, &m->cfg, m->gen) < 0)
		return -1;
	master_start_replicator(m);
	for (int s = 0; s < m->cfg.workers; s++)
		if (master_spawn(m, s, &m->cfg, m->gen) < 0)
			return -1;
	return 0;
}

/* ---- Stop ----------------------------------------------------------------- */

void master_begin_stop(master_t *m, bool fast)
{
	if (m->stop == MASTER_STOP_FAST || (m->stop == MASTER_STOP_GRACEFUL && !fast))
		return;
	uint64_t now = clock_mono_ms();
	if (m->stop == MASTER_RUNNING) {
		m->stop_deadline = now + MASTER_STOP_MS;
		notify_stopping(); /* systemd */
	}
	m->stop = fast ? MASTER_STOP_FAST : MASTER_STOP_GRACEFUL;
	m->reloading = false;
	log_info("%s: %d children to stop", fast ? "fast stop" : "graceful stop (drain)",
	         master_count_children(m));
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++) {
		master_child_t *c = &m->children[i];
		if (!c->pid)
			continue;
		master_send(c, fast ? PROC_MSG_TERM : PROC_MSG_QUIT);
		if (fast)
			kill(c->pid, SIGTERM);
		c->retiring = true;
		c->term_at = 0;
		c->kill_at = m->stop_deadline;
	}
	for (int u = 0; u < MASTER_UNITS; u++)
		m->units[u].respawn_at = 0;
}

static int master_finish(master_t *m)
{
	if (m->shm) {
		char msg[256];
		int r = shm_repair(m->shm);
		if (r == 1)
			log_warn("repaired an interrupted registry write at stop");
		int rc = shm_check(m->shm, msg, sizeof(msg));
		if (rc == 0)
			shm_set_clean(m->shm, true);
		else
			log_error("registry check failed at stop: %s; not marking the region clean",
			          rc == -EIO ? msg : strerror(-rc));
		shm_release_master(m->shm);
		shm_detach(m->shm);
		m->shm = NULL;
	}
	for (int s = 0; s < MASTER_SLOTS; s++) {
		if (m->units[s].listen_fd >= 0)
			close(m->units[s].listen_fd);
		if (m->units[s].tls_listen_fd >= 0)
			close(m->units[s].tls_listen_fd);
	}
	tls_ctx_free(m->tls);
	tls_ctx_free(m->tls_next);
	m->tls = m->tls_next = NULL;
	if (m->pid_fd < 0) /* refused to start: nothing was ours */
		return m->exit_code;
	pidfile_release(m->pid_fd, m->pid_path);
	m->pid_fd = -1;
	log_info("stopped");
	return m->exit_code;
}

/* ---- Reload --------------------------------------------------------------- */

/* What lives in the region or names it cannot change under a running node. */
static void keep_restart_only(const config_t *cur, config_t *next)
{
#define KEEP_STR(f)                                                                                \
	if (strcmp(cur->f, next->f) != 0) {                                                        \
		log_warn("reload: " #f " cannot change without a restart; keeping %s", cur->f);    \
		memcpy(next->f, cur->f, sizeof(next->f));                                          \
	}
#define KEEP_NUM(f)                                                                                \
	if (cur->f != next->f) {                                                                   \
		log_warn("reload: " #f " cannot change without a restart; keeping %llu",           \
		         (unsigned long long)cur->f);                                              \
		next->f = cur->f;                                                                  \
	}
	KEEP_STR(name);
	KEEP_STR(listen);
	KEEP_STR(data_dir);
	KEEP_STR(user);
	KEEP_STR(shm_name);
	KEEP_STR(cluster_listen);
	KEEP_STR(tls_listen);
	if (!cur->tls_cert[0] != !next->tls_cert[0]) {
		log_warn("reload: TLS cannot be turned %s without a restart",
		         cur->tls_cert[0] ? "off" : "on");
		memcpy(next->tls_cert, cur->tls_cert, sizeof(next->tls_cert));
		memcpy(next->tls_key, cur->tls_key, sizeof(next->tls_key));
	}
	KEEP_NUM(max_instances);
	KEEP_NUM(max_services);
	KEEP_NUM(changelog_size);
	KEEP_NUM(lease_ttl_ms);
	KEEP_NUM(legacy_lease_ttl_ms);
	KEEP_NUM(self_preservation);
	KEEP_NUM(preserve_window_ms);
	KEEP_NUM(legacy_preserve_window_ms);
	KEEP_NUM(mgmt_max_operations);
	KEEP_NUM(mgmt_routing_bytes);
#undef KEEP_STR
#undef KEEP_NUM
}

static bool has_retiring(const master_t *m)
{
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++)
		if (m->children[i].pid && m->children[i].retiring)
			return true;
	return false;
}

static void reload_abort(master_t *m, const char *reason)
{
	log_error("reload failed: %s; generation %u keeps serving", reason, m->gen);
	uint64_t now = clock_mono_ms();
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++) {
		master_child_t *c = &m->children[i];
		if (!c->pid || c->gen != m->gen + 1 || c->retiring)
			continue;
		master_send(c, PROC_MSG_TERM);
		kill(c->pid, SIGTERM);
		c->retiring = true;
		c->kill_at = now + MASTER_STOP_MS;
	}
	m->reloading = false;
	tls_ctx_free(m->tls_next);
	m->tls_next = NULL;
	notify_ready(m); /* systemd: the old generation serves on */
}

static void master_reload(master_t *m)
{
	if (m->stop)
		return;
	if (m->reloading || has_retiring(m)) {
		log_warn("reload already in progress; SIGHUP ignored");
		return;
	}
	char err[512];
	notify_reloading(m); /* systemd: RELOADING=1 ... READY=1 */
	log_info("reload: reading %s", m->cfg.path[0] ? m->cfg.path : "the built-in defaults");
	if (master_load_config(&m->next, m->cfg.path, &m->opts, err, sizeof(err)) < 0 ||
	    replicator_tls_check(&m->next, err, sizeof(err)) < 0) {
		log_error("reload: %s; keeping the current configuration", err);
		notify_ready(m);
		return;
	}
	keep_restart_only(&m->cfg, &m->next);
	/* The certificate is read again: the new generation serves the
	 * files as they are now; the old one drains with what it has. */
	tls_ctx_free(m->tls_next);
	if (load_tls(&m->next, &m->tls_next, err, sizeof(err)) < 0) {
		log_error("reload: [http] TLS: %s; keeping the current configuration", err);
		notify_ready(m);
		return;
	}
	if (!m->next.auth_enabled)
		log_warn("[auth] enabled = off: the management, routing and user APIs take every "
		         "request without a credential");
	m->reloading = true;
	m->reload_deadline = clock_mono_ms() + MASTER_RELOAD_MS;
	log_info("reload: starting generation %u (%d workers)", m->gen + 1, m->next.workers);
	for (int s = 0; s < m->next.workers; s++) {
		m->units[s].disabled = false;
		if ((m->units[s].listen_fd < 0 && open_socket(m, s, m->next.listen) < 0) ||
		    master_spawn(m, s, &m->next, m->gen + 1) < 0) {
			reload_abort(m, "cannot start the new generation");
			return;
		}
	}
}

static void reload_commit(master_t *m)
{
	unsigned old = m->gen;
	uint64_t now = clock_mono_ms();
	bool log_changed = strcmp(m->cfg.log_file, m->next.log_file) != 0 ||
	                   strcmp(m->cfg.log_level, m->next.log_level) != 0;
	m->cfg = m->next;
	m->gen++;
	m->reloading = false;
	tls_ctx_free(m->tls); /* the old workers have their copy */
	m->tls = m->tls_next;
	m->tls_next = NULL;
	shm_set_lock_wait(m->shm, m->cfg.lock_wait_ms);
	if (log_changed && open_log(&m->cfg) < 0)
		log_error("reload: cannot open log file %s; logging stays where it was",
		          m->cfg.log_file);
	else if (log_changed)
		master_user_give(&m->user, m->cfg.log_file);
	/* The old workers drain; the reaper is replaced when the old one has
	 * exited (two reapers would double the self-preservation ticks). */
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++) {
		master_child_t *c = &m->children[i];
		if (!c->pid || c->gen > old || c->retiring)
			continue;
		master_send(c, PROC_MSG_QUIT);
		c->retiring = true;
		c->term_at = now + MASTER_RETIRE_MS;
		c->kill_at = now + MASTER_RETIRE_MS + MASTER_STOP_MS;
	}
	for (int s = 0; s < MASTER_SLOTS; s++)
		m->units[s].respawn_at = 0;
	/* Peers may have changed: the replicator restarts with the new list
	 * once the old one exited (children.c); a node that had none gets one. */
	m->units[MASTER_UNIT_REPL].disabled = false;
	m->units[MASTER_UNIT_REPL].respawn_at = 0;
	shm_peers_clear(m->shm);
	master_start_replicator(m);
	log_info("reload: generation %u serving (%d workers); generation %u draining", m->gen,
	         m->cfg.workers, old);
	notify_ready(m); /* systemd */
}

static int ready_workers(const master_t *m, unsigned gen)
{
	int n = 0;
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++) {
		const master_child_t *c = &m->children[i];
		n += c->pid && c->gen == gen && c->ready && c->unit < MASTER_SLOTS && !c->retiring;
	}
	return n;
}

void master_reload_child_ready(master_t *m)
{
	if (!m->announced && ready_workers(m, m->gen) >= m->cfg.workers) {
		m->announced = true;
		log_info("serving: %d workers ready on %s", m->cfg.workers, m->cfg.listen);
		notify_ready(m); /* systemd */
	}
	if (m->reloading && ready_workers(m, m->gen + 1) >= m->next.workers)
		reload_commit(m);
}

void master_reload_child_failed(master_t *m, const master_child_t *c, const char *how)
{
	char name[32], reason[160];
	master_unit_name(c->unit, name, sizeof(name));
	snprintf(reason, sizeof(reason), "new %s (pid %d) %s", name, (int)c->pid, how);
	reload_abort(m, reason);
}

/* ---- The loop ------------------------------------------------------------- */

static void master_reopen_logs(master_t *m)
{
	int rc = log_reopen();
	if (rc < 0)
		log_error("reopen log file %s: %s", m->cfg.log_file, strerror(-rc));
	else
		log_info("reopened the log file");
	/* A rotated file was made anew by root: the children reopen it too. */
	master_user_give(&m->user, m->cfg.log_file);
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++)
		if (m->children[i].pid)
			master_send(&m->children[i], PROC_MSG_REOPEN);
}

static void master_act(master_t *m, unsigned sigs)
{
	if (sigs & MASTER_SIG_TERM)
		master_begin_stop(m, true);
	if (sigs & MASTER_SIG_QUIT)
		master_begin_stop(m, false);
	if (sigs & MASTER_SIG_CHLD)
		master_reap(m);
	if (sigs & MASTER_SIG_HUP)
		master_reload(m);
	if (sigs & MASTER_SIG_USR1)
		master_reopen_logs(m);
	master_run_timers(m);
	if (m->reloading && clock_mono_ms() >= m->reload_deadline)
		reload_abort(m, "the new generation was not ready in time");
	notify_tick(m); /* systemd: STATUS= */
}

/* Sleep until a signal, a control message or the next deadline. */
static void master_wait(master_t *m, const sigset_t *wait_mask)
{
	struct pollfd pfd[MASTER_MAX_CHILDREN];
	int who[MASTER_MAX_CHILDREN];
	nfds_t n = 0;
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++) {
		if (!m->children[i].pid || m->children[i].ctl < 0)
			continue;
		pfd[n].fd = m->children[i].ctl;
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
		who[n++] = i;
	}
	struct timespec ts, *tsp = NULL;
	uint64_t next = notify_deadline(master_next_timer(m));
	if (next) {
		uint64_t now = clock_mono_ms();
		uint64_t wait = next > now ? next - now : 0;
		ts.tv_sec = (time_t)(wait / 1000);
		ts.tv_nsec = (long)(wait % 1000) * 1000000;
		tsp = &ts;
	}
	int rc = ppoll(pfd, n, tsp, wait_mask);
	if (rc <= 0)
		return;
	for (nfds_t i = 0; i < n; i++)
		if (pfd[i].revents)
			master_read_ctl(m, &m->children[who[i]]);
}

int master_run(config_t *cfg, const master_opts_t *opts)
{
	static master_t m; /* two configurations and the child table: not for the stack */
	sigset_t wait_mask;
	memset(&m, 0, sizeof(m));
	m.cfg = *cfg;
	m.origin = cfg;
	m.opts = *opts;
	m.pid_fd = -1;
	m.exit_code = 0;
	for (int u = 0; u < MASTER_UNITS; u++)
		m.units[u].listen_fd = m.units[u].tls_listen_fd = -1;
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++)
		m.children[i].ctl = -1;

	log_set_role("master");
	if (open_log(cfg) < 0)
		return 1;
	char err[256];
	if (notify_open(err, sizeof(err)) < 0) /* systemd: NOTIFY_SOCKET */
		log_warn("%s", err);
	proc_set_title("artemis: master");
	proc_set_master(getpid());

	if (master_start(&m, &wait_mask) < 0) {
		if (m.exit_code == 0)
			m.exit_code = 1;
		if (master_count_children(&m) == 0)
			return master_finish(&m);
		master_begin_stop(&m, true);
	}
	for (;;) {
		master_act(&m, master_signals_take());
		if (m.stop && master_count_children(&m) == 0)
			break;
		master_wait(&m, &wait_mask);
	}
	return master_finish(&m);
}

/*
 * sessions.c - sessions, the login history and its lockout, and the check
 * behind every request that carries a token (MANAGEMENT.md §6).
 *
 * A session is what a token is bound to: a row of `sessions` made by a
 * login (or a refresh, which revokes the session it replaces in the same
 * transaction), ended by a logout, an admin's revocation, its user's
 * removal, disabling or new password (users.c), or its expiry.  Revoked and
 * expired sessions are pruned a day later; the login history keeps every
 * attempt ([auth] login_history_days).
 *
 * The check (mgmt_session_check) answers from a per-process cache of the
 * sessions it has seen, direct-mapped by session id, so a valid token costs
 * no SQLite.  The cache belongs to one value of the region's auth
 * generation: every write that can end a session bumps it after its commit
 * (mgmt_write with ends_sessions), and a process that sees it moved drops
 * the whole cache before it answers, so a logout is refused by every
 * worker from the moment it is acknowledged.  The generation is read
 * before SQLite is, so an entry filled while a revocation commits is
 * dropped at the next request.  Sessions nobody has seen yet (and those
 * not found) are not cached: a peer's replicated session may arrive later.
 *
 * last_activity is written at most once a minute per session and process,
 * outside any transaction of the writer lock: it is this node's bookkeeping,
 * not replicated (mgmt_int.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

#include "artemis/auth.h"
#include "mgmt_int.h"

#define SESSION_TOUCH_MS 60000
#define PRUNE_BATCH      100 /* rows a login prunes at most */
#define SESSION_COLUMNS                                                                            \
	"s.session_id, s.username, COALESCE(u.id, 0), s.ip_address, s.user_agent, s.create_time, " \
	"s.expire_time, s.last_activity, s.revoked"
#define SESSION_FROM                                                                               \
	" FROM sessions s LEFT JOIN users u ON u.username = s.username AND u.deleted = 0"

static void text_col(sqlite3_stmt *q, int i, char *dst, size_t size)
{
	const char *v = (const char *)sqlite3_column_text(q, i);
	snprintf(dst, size, "%s", v ? v : "");
}

static void session_row(sqlite3_stmt *q, mgmt_session_t *s)
{
	memset(s, 0, sizeof(*s));
	text_col(q, 0, s->sid, sizeof(s->sid));
	text_col(q, 1, s->username, sizeof(s->username));
	s->user_id = sqlite3_column_int64(q, 2);
	text_col(q, 3, s->ip, sizeof(s->ip));
	text_col(q, 4, s->agent, sizeof(s->agent));
	s->create_ms = (uint64_t)sqlite3_column_int64(q, 5);
	s->expire_ms = (uint64_t)sqlite3_column_int64(q, 6);
	s->last_ms = (uint64_t)sqlite3_column_int64(q, 7);
	s->revoked = sqlite3_column_int(q, 8) != 0;
}

static int session_by_id(store_t *st, const char *sid, mgmt_session_t *s)
{
	sqlite3_stmt *q = store_stmt(
	    st, SQ_SESSION_GET, "SELECT " SESSION_COLUMNS SESSION_FROM " WHERE s.session_id = ?1");
	if (!q)
		return -EIO;
	sqlite3_bind_text(q, 1, sid, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		session_row(q, s);
	sqlite3_reset(q);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int mgmt_session_get(mgmt_t *m, const char *sid, mgmt_session_t *s)
{
	return session_by_id(&m->st, sid, s);
}

int mgmt_sessions(mgmt_t *m, const char *username, uint64_t now_ms, mgmt_session_fn fn, void *ctx)
{
	sqlite3_stmt *q = NULL;
	int rc, r = 0;
	if (sqlite3_prepare_v2(m->st.db,
	                       "SELECT " SESSION_COLUMNS SESSION_FROM
	                       " WHERE s.revoked = 0 AND s.expire_time > ?1 AND (?2 IS NULL OR "
	                       "s.username = ?2) ORDER BY s.create_time DESC, s.session_id",
	                       -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)now_ms);
	if (username)
		sqlite3_bind_text(q, 2, username, -1, SQLITE_STATIC);
	while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		mgmt_session_t s;
		session_row(q, &s);
		r = fn(ctx, &s);
	}
	sqlite3_finalize(q);
	if (r)
		return r;
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* ---- Writes ------------------------------------------------------------------------- */

static int login_insert(store_t *st, store_stamp_t *stamp, const char *username, const char *ip,
                        const char *agent, mgmt_login_result_t result, const char *reason,
                        char *err, size_t err_len)
{
	static const char *const results[] = {"success", "failure", "locked"};
	int64_t seq = 0;
	if (store_meta_get(st, "login_seq", &seq) < 0 ||
	    store_meta_set(st, "login_seq", seq + 1) < 0)
		return store_fail(st, "the login sequence", err, err_len);
	sqlite3_stmt *q = store_stmt(
	    st, SQ_LOGIN_PUT,
	    "INSERT INTO login_history (origin_node, origin_seq, hlc, seq, time_ms, username, "
	    "ip_address, user_agent, result, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
	    "?10)");
	if (!q)
		return store_fail(st, "preparing a login record", err, err_len);
	sqlite3_bind_text(q, 1, st->node, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, seq + 1);
	sqlite3_bind_int64(q, 3, store_hlc_next(stamp));
	sqlite3_bind_int64(q, 4, stamp->generation);
	sqlite3_bind_int64(q, 5, (sqlite3_int64)stamp->now_ms);
	sqlite3_bind_text(q, 6, username, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 7, ip ? ip : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 8, agent ? agent : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 9, results[result], -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 10, reason ? reason : "", -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : store_fail(st, "writing a login record", err, err_len);
}

/* Bounded pruning at each login: sessions ended a day ago, old records. */
static int prune(store_t *st, const store_stamp_t *stamp, uint32_t history_days, char *err,
                 size_t err_len)
{
	char sql[512];
	uint64_t session_before = stamp->now_ms - SESSION_PRUNE_MS;
	uint64_t history_before = stamp->now_ms - (uint64_t)history_days * 24 * 3600 * 1000;
	snprintf(sql, sizeof(sql),
	         "DELETE FROM sessions WHERE session_id IN (SELECT session_id FROM sessions WHERE "
	         "expire_time < %llu OR (revoked = 1 AND revoke_time < %llu) LIMIT %d);"
	         "DELETE FROM login_history WHERE id IN (SELECT id FROM login_history WHERE "
	         "time_ms < %llu ORDER BY time_ms LIMIT %d);",
	         (unsigned long long)session_before, (unsigned long long)session_before,
	         PRUNE_BATCH, (unsigned long long)history_before, PRUNE_BATCH);
	return store_exec(st, sql, err, err_len);
}

/* Revoke the live sessions that match: one by id, or a user's but one
 * (keep_sid).  *n gets how many. */
static int revoke(store_t *st, store_stamp_t *stamp, const char *sid, const char *username,
                  const char *keep_sid, int *n, char *err, size_t err_len)
{
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(st->db,
	                       "UPDATE sessions SET revoked = 1, revoke_time = ?1, hlc = ?2, "
	                       "origin_node = ?3, seq = ?4 WHERE revoked = 0 AND (?5 IS NULL OR "
	                       "session_id = ?5) AND (?6 IS NULL OR username = ?6) AND "
	                       "session_id IS NOT ?7",
	                       -1, &q, NULL) != SQLITE_OK)
		return store_fail(st, "preparing a revocation", err, err_len);
	sqlite3_bind_int64(q, 1, (sqlite3_int64)stamp->now_ms);
	store_bind_origin(st, stamp, q, 2);
	const char *texts[3] = {sid, username, keep_sid};
	for (int i = 0; i < 3; i++)
		if (texts[i])
			sqlite3_bind_text(q, 5 + i, texts[i], -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	*n = sqlite3_changes(st->db);
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : store_fail(st, "revoking sessions", err, err_len);
}

int sessions_revoke_user(store_t *st, store_stamp_t *stamp, const char *username,
                         const char *keep_sid, char *err, size_t err_len)
{
	int n = 0;
	return revoke(st, stamp, NULL, username, keep_sid, &n, err, err_len);
}

typedef struct {
	mgmt_session_t *s;
	const char *old_sid;
	uint32_t history_days;
} open_t;

static int open_txn(store_t *st, store_stamp_t *stamp, void *arg, char *err, size_t err_len)
{
	open_t *o = arg;
	mgmt_session_t *s = o->s;
	sqlite3_stmt *q = NULL;
	int rc, revoked = 0;
	if (o->old_sid) {
		if ((rc = revoke(st, stamp, o->old_sid, NULL, NULL, &revoked, err, err_len)) < 0)
			return rc;
		if (!revoked) {
			snprintf(err, err_len, "the session was revoked");
			return -EACCES;
		}
	}
	if (auth_random_hex(s->sid, sizeof(s->sid), MGMT_SID_LEN / 2) < 0)
		return -EINVAL;
	s->create_ms = s->last_ms = stamp->now_ms;
	if (sqlite3_prepare_v2(
	        st->db,
	        "INSERT INTO sessions (session_id, username, ip_address, user_agent, "
	        "create_time, expire_time, last_activity, hlc, origin_node, seq) "
	        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5, ?7, ?8, ?9)",
	        -1, &q, NULL) != SQLITE_OK)
		return store_fail(st, "preparing a session", err, err_len);
	sqlite3_bind_text(q, 1, s->sid, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, s->username, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, s->ip, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, s->agent, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, (sqlite3_int64)s->create_ms);
	sqlite3_bind_int64(q, 6, (sqlite3_int64)s->expire_ms);
	store_bind_origin(st, stamp, q, 7);
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE)
		return store_fail(st, "writing a session", err, err_len);
	if (!o->old_sid && (rc = login_insert(st, stamp, s->username, s->ip, s->agent,
	                                      MGMT_LOGIN_SUCCESS, "", err, err_len)) < 0)
		return rc;
	return prune(st, stamp, o->history_days, err, err_len);
}

int mgmt_session_open(mgmt_t *m, mgmt_session_t *s, const char *old_sid, char *err, size_t err_len)
{
	open_t o = {s, old_sid, m->cfg ? m->cfg->login_history_days : 90};
	return mgmt_write(m, open_txn, &o, old_sid != NULL, err, err_len);
}

typedef struct {
	const char *sid;
	const mgmt_ctx_t *ctx;
} revoke_t;

static int revoke_txn(store_t *st, store_stamp_t *stamp, void *arg, char *err, size_t err_len)
{
	revoke_t *r = arg;
	mgmt_session_t s;
	int done = 0;
	int rc = session_by_id(st, r->sid, &s);
	if (rc == -ENOENT) {
		snprintf(err, err_len, "no session %s", r->sid);
		return rc;
	}
	if (rc < 0)
		return store_fail(st, "reading a session", err, err_len);
	if ((rc = revoke(st, stamp, r->sid, NULL, NULL, &done, err, err_len)) < 0)
		return rc;
	if (!r->ctx)
		return 0;
	mgmt_ctx_t ctx;
	char details[256];
	store_ctx_fill(st, r->ctx, &ctx);
	snprintf(details, sizeof(details),
	         "{\"node\":\"%s\",\"revoked\":%s,\"surface\":\"rust\",\"username\":\"%s\"}",
	         st->node, done ? "true" : "false", s.username);
	return audit_write(st, "session", s.username, "revoke", "update", details, &ctx, stamp, err,
	                   err_len);
}

int mgmt_session_revoke(mgmt_t *m, const char *sid, const mgmt_ctx_t *ctx, char *err,
                        size_t err_len)
{
	revoke_t r = {sid, ctx};
	return mgmt_write(m, revoke_txn, &r, true, err, err_len);
}

/* ---- The login history and its lockout -------------------------------------------------- */

typedef struct {
	const char *username, *ip, *agent, *reason;
	mgmt_login_result_t result;
} record_t;

static int record_txn(store_t *st, store_stamp_t *stamp, void *arg, char *err, size_t err_len)
{
	record_t *r = arg;
	return login_insert(st, stamp, r->username, r->ip, r->agent, r->result, r->reason, err,
	                    err_len);
}

int mgmt_login_record(mgmt_t *m, const char *username, const char *ip, const char *agent,
                      mgmt_login_result_t result, const char *reason, char *err, size_t err_len)
{
	record_t r = {username, ip, agent, reason, result};
	if ((unsigned)result > MGMT_LOGIN_LOCKED)
		return -EINVAL;
	return mgmt_write(m, record_txn, &r, false, err, err_len);
}

int mgmt_logins(mgmt_t *m, const char *username, uint32_t limit, mgmt_login_fn fn, void *ctx)
{
	sqlite3_stmt *q = NULL;
	int rc, r = 0;
	if (sqlite3_prepare_v2(m->st.db,
	                       "SELECT id, time_ms, username, ip_address, user_agent, result, "
	                       "reason FROM login_history WHERE username = ?1 ORDER BY time_ms "
	                       "DESC, id DESC LIMIT ?2",
	                       -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(q, 1, username, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, limit ? (sqlite3_int64)limit : -1);
	while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		mgmt_login_t l = {
		    .id = sqlite3_column_int64(q, 0),
		    .time_ms = (uint64_t)sqlite3_column_int64(q, 1),
		    .username = (const char *)sqlite3_column_text(q, 2),
		    .ip = (const char *)sqlite3_column_text(q, 3),
		    .agent = (const char *)sqlite3_column_text(q, 4),
		    .result = (const char *)sqlite3_column_text(q, 5),
		    .reason = (const char *)sqlite3_column_text(q, 6),
		};
		r = fn(ctx, &l);
	}
	sqlite3_finalize(q);
	if (r)
		return r;
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* Failures counted, and the time of the last one, from a prepared query
 * (?1 the name or address, ?2 the start of the window). */
static int count_failures(sqlite3_stmt *q, const char *who, uint64_t since_ms, uint32_t *n,
                          uint64_t *last_ms)
{
	if (!q)
		return -EIO;
	sqlite3_bind_text(q, 1, who, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)since_ms);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		*n = (uint32_t)sqlite3_column_int64(q, 0);
		*last_ms = (uint64_t)sqlite3_column_int64(q, 1);
	}
	sqlite3_reset(q);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

/* Seconds still to wait after n failures, the last at last_ms: max
 * failures lock for lockout_s, each further one doubles it, up to max_s. */
static uint32_t wait_after(uint32_t n, uint64_t last_ms, uint32_t max_failures, uint64_t now_ms,
                           const config_t *cfg)
{
	if (n < max_failures)
		return 0;
	uint64_t lock_s = cfg->login_lockout_s;
	for (uint32_t i = max_failures; i < n && lock_s < cfg->login_lockout_max_s; i++)
		lock_s *= 2;
	if (lock_s > cfg->login_lockout_max_s)
		lock_s = cfg->login_lockout_max_s;
	uint64_t until = last_ms + lock_s * 1000;
	return until > now_ms ? (uint32_t)((until - now_ms + 999) / 1000) : 0;
}

int mgmt_login_locked(mgmt_t *m, const char *username, const char *ip, uint64_t now_ms,
                      uint32_t *retry_s)
{
	const config_t *cfg = m->cfg;
	store_t *st = &m->st;
	uint32_t nu = 0, ni = 0;
	uint64_t lu = 0, li = 0;
	if (!cfg)
		return 0;
	uint64_t window = (uint64_t)cfg->login_lockout_max_s * 1000;
	uint64_t since = now_ms > window ? now_ms - window : 0;
	/* A username's failures since its last success; an address's all. */
	sqlite3_stmt *qu = store_stmt(
	    st, SQ_LOGIN_USER_FAILS,
	    "SELECT COUNT(*), COALESCE(MAX(time_ms), 0) FROM login_history WHERE username = ?1 AND "
	    "result = 'failure' AND time_ms >= MAX(?2, COALESCE((SELECT MAX(time_ms) FROM "
	    "login_history WHERE username = ?1 AND result = 'success'), 0))");
	if (count_failures(qu, username, since, &nu, &lu) < 0)
		return -EIO;
	sqlite3_stmt *qi = store_stmt(st, SQ_LOGIN_IP_FAILS,
	                              "SELECT COUNT(*), COALESCE(MAX(time_ms), 0) FROM "
	                              "login_history WHERE ip_address = ?1 AND result = 'failure' "
	                              "AND time_ms >= ?2");
	if (count_failures(qi, ip ? ip : "", since, &ni, &li) < 0)
		return -EIO;
	uint32_t wu = wait_after(nu, lu, cfg->login_max_failures, now_ms, cfg);
	uint32_t wi = wait_after(ni, li, cfg->login_max_failures_ip, now_ms, cfg);
	*retry_s = wu > wi ? wu : wi;
	return *retry_s > 0;
}

/* ---- The check of every request ---------------------------------------------------------- */

static session_entry_t *cache_slot(mgmt_t *m, const char *sid)
{
	if (!m->cache && !(m->cache = calloc(SESSION_CACHE, sizeof(*m->cache))))
		return NULL;
	return &m->cache[XXH3_64bits(sid, strlen(sid)) % SESSION_CACHE];
}

/* The session as the store has it now, into a cache entry. */
static int load_entry(mgmt_t *m, const char *sid, uint64_t now_ms, session_entry_t *e)
{
	mgmt_session_t s;
	mgmt_user_t u;
	int rc = session_by_id(&m->st, sid, &s);
	if (rc < 0)
		return rc;
	memset(e, 0, sizeof(*e));
	snprintf(e->sid, sizeof(e->sid), "%s", sid);
	rc = mgmt_user_find(m, s.username, &u);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	e->valid = rc == 0 && u.active && !s.revoked;
	e->who.user_id = rc == 0 ? u.id : 0;
	e->who.role = rc == 0 ? u.role : MGMT_ROLE_VIEWER;
	snprintf(e->who.username, sizeof(e->who.username), "%s", s.username);
	snprintf(e->who.sid, sizeof(e->who.sid), "%s", sid);
	e->who.expire_ms = s.expire_ms;
	e->touched_ms = s.last_ms;
	(void)now_ms;
	return 0;
}

static void touch(mgmt_t *m, session_entry_t *e, uint64_t now_ms)
{
	if (now_ms < e->touched_ms + SESSION_TOUCH_MS)
		return;
	sqlite3_stmt *q = store_stmt(&m->st, SQ_SESSION_TOUCH,
	                             "UPDATE sessions SET last_activity = ?2 WHERE session_id = ?1 "
	                             "AND last_activity < ?2");
	e->touched_ms = now_ms; /* once a minute, whether the write worked or not */
	if (!q)
		return;
	sqlite3_bind_text(q, 1, e->sid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)now_ms);
	/* Bookkeeping on a request's path: a store busy with a write skips
	 * it rather than making the request wait. */
	sqlite3_busy_timeout(m->st.db, 0);
	(void)sqlite3_step(q);
	sqlite3_busy_timeout(m->st.db, (int)m->st.busy_timeout_ms);
	sqlite3_reset(q);
}

int mgmt_session_check(mgmt_t *m, const char *sid, const char *username, uint64_t now_ms,
                       mgmt_principal_t *p)
{
	proj_t *pr = proj_of(m->shm);
	session_entry_t *e, fresh;
	if (!sid || strlen(sid) != MGMT_SID_LEN || !pr)
		return -EACCES;
	/* The generation before anything of the store is read. */
	uint64_t gen = proj_auth_generation(pr);
	if (!(e = cache_slot(m, sid)))
		return -ENOMEM;
	if (gen != m->cache_gen) {
		memset(m->cache, 0, SESSION_CACHE * sizeof(*m->cache));
		m->cache_gen = gen;
	}
	if (strcmp(e->sid, sid) != 0) {
		int rc = load_entry(m, sid, now_ms, &fresh);
		if (rc == -ENOENT)
			return -EACCES;
		if (rc < 0)
			return -EIO;
		*e = fresh;
	}
	if (!e->valid || now_ms >= e->who.expire_ms || strcasecmp(e->who.username, username) != 0)
		return -EACCES;
	touch(m, e, now_ms);
	*p = e->who;
	return 0;
}

/*
 * mgmt_int.h - internal to mgmt/: what its files share.
 *
 *   store.c       the SQLite connection: open, pragmas, schema migrations,
 *                 transactions, the meta counters (generation, HLC, audit
 *                 sequence)
 *   model.c       the operation rows: put in force, remove, list, the keys in
 *                 force (for the projection)
 *   audit.c       audit records: write, query, stats, cleanup; times
 *   projection.c  the region section: tables of tags, lock, publish, notices
 *   users.c       users, the JWT secret, the first admin
 *   sessions.c    sessions, the login history and its lockout, the
 *                 per-process cache of sessions behind mgmt_session_check
 *   mgmt.c        the public entry points tying them together
 *   replica.c     replication between nodes: the table descriptors, rows
 *                 walked for peers and applied from them, digests,
 *                 tombstone collection (what the replicator calls)
 *
 *   route*.c      groups, route rules, canary: their rows, the routing
 *                 transaction, the routing image in the region (route_int.h)
 *
 * What the replicator needs of the tables (replica.c replicates every
 * management table between nodes; rows follow one convention):
 *   - every state row carries hlc (last writer wins), origin_node and seq
 *     (the store generation of the write that last touched it: the cursor
 *     to follow); a removal leaves a tombstone (deleted = 1);
 *   - keys between nodes are natural keys, never the local numeric ids:
 *       instance, server, service_zone: the key columns + operation;
 *       users: username (userId derives from it, the same on every node:
 *         replica_key_id; a session and a login record name the user by
 *         username);
 *       sessions: session_id (128 random bits; a revocation is the row with
 *         revoked = 1, revoke_time, a newer hlc, and wins over the
 *         unrevoked row whatever the clocks say: revoked never goes back);
 *       audit, login_history: (origin_node, origin_seq), append-only;
 *       secrets: name ('jwt': the HS256 key, which every node of a cluster
 *         must share; the first one made wins, the oldest node's);
 *   - sessions.last_activity is this node's own (not replicated, no seq);
 *     expired sessions and old login records are pruned by each node
 *     itself (expiry is the same everywhere);
 *   - applying a session revocation, or a user's deletion, disabling,
 *     role or password change, must end with proj_auth_bump() after the
 *     commit: that is what makes every worker drop its cached sessions
 *     (mgmt_session_check), within the 1 s a logout has to reach every node;
 *   - a write that changes nothing projected records its generation with
 *     proj_note_generation() under the writer lock, as mgmt_write() does.
 *
 * Other modules use include/artemis/mgmt.h only.
 *
 * route_int.h lists what the replicator needs of the routing tables (their
 * natural keys, and numeric ids being per node).
 */
#ifndef ARTEMIS_MGMT_INT_H
#define ARTEMIS_MGMT_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "artemis/mgmt.h"

/* ---- store.c ---------------------------------------------------------------- */

typedef struct proj proj_t;

typedef struct {
	sqlite3 *db;
	char path[CONFIG_STR + 32];
	char node[64]; /* this node's name: origin of its rows and records */
	uint32_t busy_timeout_ms;
	/* The user the running request authenticated as ("" none):
	 * mgmt_set_actor.  Audit records name it; it fills a blank operator. */
	char actor[MGMT_MAX_USERNAME + 1];
	/* Prepared statements, made on first use (model.c, audit.c, users.c,
	 * sessions.c). */
	sqlite3_stmt *stmt[64];
} store_t;

enum { STORE_RW = 0, STORE_RO = 1, STORE_MIGRATE = 2 };

/* The store's path for a config. */
int store_path(const config_t *cfg, char *out, size_t len);
/* Open the connection; STORE_MIGRATE also creates the file and brings the
 * schema to the current version.  On failure err gets "path: message". */
int store_open(store_t *st, const config_t *cfg, int mode, char *err, size_t err_len);
void store_close(store_t *st);

/* A statement by slot, prepared on first use.  NULL on error (err set). */
sqlite3_stmt *store_stmt(store_t *st, int slot, const char *sql);
/* "path: <SQLite's message>" into err; returns -EIO. */
int store_fail(store_t *st, const char *what, char *err, size_t err_len);
int store_exec(store_t *st, const char *sql, char *err, size_t err_len);
int store_begin(store_t *st, bool write, char *err, size_t err_len);
int store_commit(store_t *st, char *err, size_t err_len);
void store_rollback(store_t *st);

/* The context a write records: in's, with a blank operator_id replaced
 * by the actor, and no token when a credential was checked (it is the
 * credential).  The strings point into in and st. */
void store_ctx_fill(const store_t *st, const mgmt_ctx_t *in, mgmt_ctx_t *out);

/* The counters of the meta table (inside a transaction). */
int store_meta_get(store_t *st, const char *key, int64_t *value);
int store_meta_set(store_t *st, const char *key, int64_t value);

/* Within a write transaction: the next store generation, hybrid logical
 * clock and audit sequence, written back by store_stamp_save. */
typedef struct {
	int64_t generation; /* of this write: every row it touches gets it */
	int64_t hlc;        /* (epoch ms << 16) | counter, last writer wins */
	int64_t audit_seq;  /* the last audit sequence used */
	uint64_t now_ms;
} store_stamp_t;
int store_stamp_load(store_t *st, store_stamp_t *s);
int store_stamp_save(store_t *st, const store_stamp_t *s);
/* The next HLC value of a write. */
int64_t store_hlc_next(store_stamp_t *s);
/* Bind a row's replication columns (hlc, origin_node, seq: the next HLC,
 * this node, the write's generation) to ?first, ?first+1, ?first+2. */
void store_bind_origin(store_t *st, store_stamp_t *s, sqlite3_stmt *q, int first);

/* Statement slots. */
enum {
	SQ_META_GET = 0,
	SQ_META_SET,
	SQ_OP_PUT, /* + kind: 3 slots */
	SQ_OP_DEL = SQ_OP_PUT + MGMT_KINDS,
	SQ_OP_GET = SQ_OP_DEL + MGMT_KINDS,
	SQ_OP_LIVE = SQ_OP_GET + MGMT_KINDS,
	SQ_AUDIT_PUT = SQ_OP_LIVE + MGMT_KINDS,
	SQ_AUDIT_GET,
	SQ_USER_GET,
	SQ_USER_FIND,
	SQ_SESSION_GET,
	SQ_SESSION_TOUCH,
	SQ_LOGIN_PUT,
	SQ_LOGIN_USER_FAILS,
	SQ_LOGIN_IP_FAILS,
	SQ_ROUTE_DOWN, /* route_build.c: the group operations' down tags */
	SQ_END
};
_Static_assert(SQ_END <= 64, "statement slots");

/* ---- model.c -------------------------------------------------------------------- */

/* The row of a key before or after a change, as audit details want it. */
typedef struct {
	bool exists; /* in force */
	char operator_id[MGMT_MAX_OPERATOR + 1];
	uint64_t create_ms, update_ms;
} op_row_t;

const char *model_kind_name(mgmt_kind_t kind);
/* Apply one change to the rows; before/after for the audit record. */
int model_apply(store_t *st, const mgmt_change_t *c, const mgmt_ctx_t *ctx, store_stamp_t *stamp,
                op_row_t *before, op_row_t *after, char *err, size_t err_len);
/* Whether any operation is in force on the key's target (any operation). */
int model_target_live(store_t *st, const mgmt_key_t *k, bool *live, char *err, size_t err_len);
/* Every target in force (one callback per distinct target, operation ""),
 * inside the caller's transaction. */
int model_targets(store_t *st, int (*fn)(void *ctx, const mgmt_key_t *k), void *ctx, char *err,
                  size_t err_len);
int model_list(store_t *st, const mgmt_op_filter_t *f, mgmt_op_fn fn, void *ctx);

/* ---- audit.c ---------------------------------------------------------------------- */

/* One record to insert; fields that are NULL (ids 0) stay NULL. */
typedef struct {
	const char *type, *target, *operation, *action;
	const char *region, *service, *instance, *server, *zone;
	const char *details;
	int64_t group_id, route_rule_id;
} audit_in_t;
int audit_insert(store_t *st, const audit_in_t *in, const mgmt_ctx_t *ctx, store_stamp_t *stamp,
                 char *err, size_t err_len);

/* "region/service/instance", "region/server", "region/zone[/service]". */
void audit_target(const mgmt_key_t *k, char *out, size_t len);
int audit_write_change(store_t *st, const mgmt_change_t *c, const mgmt_ctx_t *ctx,
                       store_stamp_t *stamp, const op_row_t *before, const op_row_t *after,
                       char *err, size_t err_len);
/* A record of any other kind (users, sessions): fields besides these NULL. */
int audit_write(store_t *st, const char *type, const char *target, const char *operation,
                const char *action, const char *details, const mgmt_ctx_t *ctx,
                store_stamp_t *stamp, char *err, size_t err_len);
/* The record of an audit cleanup (operationType "audit"). */
int audit_write_cleanup(store_t *st, uint64_t before_ms, uint64_t deleted, const mgmt_ctx_t *ctx,
                        store_stamp_t *stamp, char *err, size_t err_len);
int audit_delete_before(store_t *st, uint64_t before_ms, uint64_t *deleted, char *err,
                        size_t err_len);
int audit_query(store_t *st, const mgmt_audit_filter_t *f, mgmt_audit_fn fn, void *ctx);
int audit_get(store_t *st, int64_t id, mgmt_audit_fn fn, void *ctx);
int audit_stats(store_t *st, const mgmt_audit_filter_t *f, buf_t *out);

/* ---- projection.c ------------------------------------------------------------------- */

/* A set of tags in process memory (the projection's tables are copied into
 * and built from these). */
typedef struct {
	uint64_t *slot;
	uint32_t mask;
	uint32_t count;
} tagset_t;

int tagset_init(tagset_t *t, uint32_t min_capacity);
void tagset_free(tagset_t *t);
int tagset_add(tagset_t *t, uint64_t tag); /* 1 added, 0 present, -ENOMEM */
bool tagset_has(const tagset_t *t, uint64_t tag);
/* Every tag of a set, in table order: for (i = 0; tagset_next(t, &i, &tag);) */
bool tagset_next(const tagset_t *t, uint32_t *i, uint64_t *tag);

/* The section of a region, NULL when it has none. */
proj_t *proj_of(shm_t *shm);
/* Lay the section out for max_keys targets in force (master, before any
 * other process uses it); a section laid out already is kept. */
int proj_init(shm_t *shm, uint32_t max_keys, uint32_t route_bytes);
uint32_t proj_capacity(const proj_t *p);

/* The writer lock (robust, process-shared), waited for at most timeout_ms.
 * 1 when the projection must be rebuilt from the store before anything
 * else (a previous writer died, or a repair did not finish), 0 otherwise;
 * -EBUSY on timeout. */
int proj_lock(proj_t *p, uint32_t timeout_ms);
/* Without waiting: -EBUSY when held by a live process. */
int proj_trylock(proj_t *p);
void proj_unlock(proj_t *p);
bool proj_built(const proj_t *p);

/* The table readers use, copied out (writer, under the lock). */
int proj_copy_active(const proj_t *p, tagset_t *out);

/* Make `next` (built from the store at generation gen) the projection and
 * tell subscribers what changed: under the lock.  hint, when not NULL,
 * lists the instance keys of the write when those are all it changed, so
 * their instances are found by key instead of by a walk of the registry. */
int proj_publish(proj_t *p, shm_t *shm, const tagset_t *next, uint64_t gen, const mgmt_key_t *hint,
                 size_t nhint);
/* A write that changed nothing projected (an audit cleanup; users,
 * sessions, the login history): record the store generation it committed
 * without a flip, so response caches keep their entries.  Under the lock,
 * on a settled projection (lock_writer rebuilt a dirty one first). */
void proj_note_generation(proj_t *p, uint64_t gen);
/* The counter of writes that can end a session (after their commit, under
 * the lock), and its lock-free read. */
void proj_auth_bump(proj_t *p);
uint64_t proj_auth_generation(const proj_t *p);

/* Clear the "rebuild needed" mark after a rebuild from the store; set it
 * (the next writer rebuilds first). */
void proj_mark_clean(proj_t *p);
void proj_mark_dirty(proj_t *p);
/* Move the generation and the stamp (response caches, services.json
 * versions): writer, after it changed what readers see. */
void proj_bump(proj_t *p);
/* mgmt_service_read with a caller's filter besides the down filter
 * (extra NULL: none). */
int proj_service_read(shm_t *shm, shm_str_t service, buf_t *out, shm_service_info_t *info,
                      shm_keep_fn extra, void *extra_ctx);

/* Failpoints of the crash tests: when set, called at each of these points
 * of a write (a test kills the process there).  NULL in production. */
enum {
	PROJ_AT_COMMITTED, /* the store has the write, the projection not yet */
	PROJ_AT_STAGING,   /* a table half staged (its sequence odd) */
	PROJ_AT_FLIPPED,   /* the new table in force, no notice sent */
	PROJ_AT_NOTIFIED,  /* notices sent, not yet recorded as sent */
	PROJ_AT_COUNT
};
extern void (*proj_failpoint)(int at);

/* For check: the active table, its generation and whether a publish or a
 * repair is unfinished; copies under the reader protocol. */
int proj_snapshot(const proj_t *p, tagset_t *out, uint64_t *gen, bool *settled, int *holder);

/* ---- mgmt.c: the handle and the write path others share ----------------------------- */

#define SESSION_CACHE 512 /* sessions a process keeps checked (direct-mapped) */

typedef struct {
	char sid[MGMT_SID_LEN + 1]; /* "" = empty slot */
	bool valid; /* false: known to be refused (revoked, expired, user inactive) */
	mgmt_principal_t who;
	uint64_t touched_ms; /* last_activity last written */
} session_entry_t;

/* A process's handle (mgmt.h). */
struct mgmt {
	store_t st;
	shm_t *shm;
	uint32_t busy_timeout_ms;
	const config_t *cfg;
	/* sessions.c's cache, valid for one auth generation. */
	session_entry_t *cache;
	uint64_t cache_gen;
};

/* A write that changes nothing projected: under the projection's writer
 * lock, one IMMEDIATE transaction with the stamp loaded and saved around
 * fn, then the generation noted (and with ends_sessions, the auth
 * generation bumped) after the commit. */
typedef int (*mgmt_write_fn)(store_t *st, store_stamp_t *stamp, void *arg, char *err,
                             size_t err_len);
int mgmt_write(mgmt_t *m, mgmt_write_fn fn, void *arg, bool ends_sessions, char *err,
               size_t err_len);
/* ---- replica.c ------------------------------------------------------------------------- */

/* The numeric id of a row whose table numbers rows by their natural key
 * (users): the same on every node of a cluster, 1..2^53-1 (exact in
 * JSON numbers); text compared case-insensitively (ASCII). */
int64_t replica_key_id(const char *key);
/* The HLC of a row made by a node's first start (the first admin): below
 * every HLC of a write, and the older such row the greater, so the first
 * admin of a cluster stays when a new node joins it with its own. */
int64_t replica_boot_hlc(uint64_t now_ms);

/* mgmt.c: take the projection's writer lock, rebuilding the projection
 * first when that is owed (err set on failure); rebuild it from the store
 * (under the lock). */
int mgmt_lock_writer(mgmt_t *m, proj_t *p, char *err, size_t err_len);
/* A write's operatorId: present, not blank, within MGMT_MAX_OPERATOR
 * (-EINVAL with err naming it). */
int mgmt_check_operator(const mgmt_ctx_t *ctx, char *err, size_t err_len);
int mgmt_rebuild_locked(store_t *st, shm_t *shm, proj_t *p, char *err, size_t err_len);
/* The full down set of the store: the operations' targets and the
 * routing's group tags (inside the caller's transaction; set initialised
 * by the caller). */
int mgmt_store_down_set(store_t *st, const shm_t *shm, tagset_t *set, char *err, size_t err_len);
/* Inside a write transaction: the set in force after it, from the old set
 * and the targets of the keys it touched (re-read from the store, the
 * routing's group tags included); -ENOSPC beyond capacity.  next is the
 * caller's to free on success. */
int mgmt_next_set(mgmt_t *m, const mgmt_key_t *keys, size_t n, const tagset_t *old, tagset_t *next,
                  uint32_t capacity, char *err, size_t err_len);
/* After the commit, under the lock: publish next at the store generation
 * gen (notices found by key when keys are all instance keys, else by a
 * walk; keys NULL: a walk). */
void mgmt_publish_keys(mgmt_t *m, proj_t *p, const tagset_t *next, uint64_t gen,
                       const mgmt_key_t *keys, size_t n);

/* ---- users.c ------------------------------------------------------------------------ */
/* Sessions that ended this long ago are pruned (sessions.c), and count no
 * more between nodes (replica.c). */
#define SESSION_PRUNE_MS (24ull * 3600 * 1000)

/* mgmt_boot's part: the JWT secret and the first admin (inside no
 * transaction; its own). */
int users_boot(store_t *st, const config_t *cfg, char *err, size_t err_len);
/* Inside a write: revoke every live session of username (but keep_sid). */
int sessions_revoke_user(store_t *st, store_stamp_t *stamp, const char *username,
                         const char *keep_sid, char *err, size_t err_len);

#endif

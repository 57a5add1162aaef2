/*
 * mgmt.h - the operators' half (module mgmt/): the management store, its
 * model, and its projection into the region (MANAGEMENT.md §1, §2, §4).
 *
 * The store is SQLite at <data_dir>/artemis.db: the operations in force on
 * instances, servers and zones (Java's tables, API.md §5.6) and the audit
 * trail every management write leaves.  It is configuration, not soft
 * state: `--fresh` never touches it.  Every process opens its own
 * connection; none is carried across fork().
 *
 * The projection is what discovery needs of the store: the set of keys
 * operated down, as the tags of shm.h, in the region's management section.
 * Discovery reads it lock-free on every path (mgmt_service_read, mgmt_down) and
 * never queries SQLite.  It is a pure function of the store: rebuilt from
 * it when the master starts and after a writer died, and verified against
 * it by `artemis check` (mgmt_check).
 *
 * Who calls what:
 *   - the master: mgmt_boot() at start (creates and migrates the store,
 *     builds the projection, closes the store before it forks),
 *     mgmt_repair() after a child died abnormally;
 *   - workers: mgmt_open() once after the fork, the writes and the reads
 *     below from their management handlers, mgmt_service_read()/mgmt_down() from
 *     discovery and push;
 *   - `artemis check`: mgmt_check().
 *
 * A write: validate, then under the section's robust writer lock one store
 * transaction (the operation rows, one audit record per key, the store
 * generation bumped), then the projection (a new table flipped in, then
 * notices: `delete`/`new` per instance whose visibility changed, `reload`
 * per service for zone changes), then the answer.  When mgmt_apply returns
 * 0 every worker already answers with the change.
 *
 * Errors are negative errno values:
 *   -EINVAL   a key field is missing, blank or too long (err names it)
 *   -ENOSPC   more keys would be in force than [management] max_operations
 *   -EIO      the store failed (err has SQLite's message), e.g. a full disk:
 *             nothing of the write was applied
 *   -EBUSY    another writer held the lock past the busy timeout
 *   -ENOENT   no such record
 *   -ENODEV   the region has no management section (or it is not built)
 *   -EEXIST   a user of that name exists already
 *   -EMLINK   the change would leave no active admin
 *   -EACCES   a session that is not (or no longer) valid
 *
 * Users, sessions and the login history (MANAGEMENT.md §6) live in the
 * same store: their writes go through the same writer lock and leave audit
 * records (operationType "user" and "session").  Workers check a token's
 * session through a per-process cache that every write able to end a
 * session invalidates on every worker at once (mgmt_session_check).
 */
#ifndef ARTEMIS_MGMT_H
#define ARTEMIS_MGMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "artemis/buf.h"
#include "artemis/config.h"
#include "artemis/shm.h"

/* Field limits in bytes (keys as the registry's; longer input is refused). */
#define MGMT_MAX_USERNAME    64
#define MGMT_MAX_EMAIL       254
#define MGMT_MAX_DESCRIPTION 256
#define MGMT_MAX_HASH        128 /* crypto_pwhash_STRBYTES */
#define MGMT_SID_LEN         32  /* a session id: 128 random bits in hex */
#define MGMT_MAX_AGENT       256 /* a User-Agent is cut there */
#define MGMT_MAX_IP          64
#define MGMT_MAX_REGION      SHM_MAX_REGION
#define MGMT_MAX_SERVICE     SHM_MAX_SERVICE
#define MGMT_MAX_INSTANCE    SHM_MAX_INSTANCE
#define MGMT_MAX_SERVER      SHM_MAX_IP
#define MGMT_MAX_ZONE        SHM_MAX_ZONE
#define MGMT_MAX_OPERATION   64
#define MGMT_MAX_OPERATOR    128
#define MGMT_MAX_TOKEN       1024
#define MGMT_MAX_REASON      256
#define MGMT_MAX_EXTENSIONS  2048
#define MGMT_MAX_BATCH       1000 /* keys in one write */
#define MGMT_MAX_ERR         256  /* room for an error message */

#define MGMT_DB_FILE "artemis.db"

/* Bytes of the region's management section for a capacity of max_operations
 * keys in force (shm_params_t.mgmt_bytes). */
uint64_t mgmt_section_bytes(uint32_t max_operations);

/* ---- The model ------------------------------------------------------------ */

typedef enum { MGMT_INSTANCE = 0, MGMT_SERVER, MGMT_ZONE, MGMT_KINDS } mgmt_kind_t;

/* What an operation is on: its kind's fields (the others are ""), and the
 * free-form operation ("pullout").  Compared case-insensitively, as Java's
 * keys and MySQL's unique keys. */
typedef struct {
	mgmt_kind_t kind;
	char region[MGMT_MAX_REGION + 1];
	char service[MGMT_MAX_SERVICE + 1];   /* instance; zone ("" = every service) */
	char instance[MGMT_MAX_INSTANCE + 1]; /* instance */
	char server[MGMT_MAX_SERVER + 1];     /* server: the instances' ip */
	char zone[MGMT_MAX_ZONE + 1];         /* zone */
	char operation[MGMT_MAX_OPERATION + 1];
} mgmt_key_t;

/* Check a key's fields for its kind; *field names the culprit
 * ("regionId", ...).  -EINVAL (missing or blank) or -ENAMETOOLONG. */
int mgmt_key_check(const mgmt_key_t *k, const char **field);
/* Copy [s, s+len) into a key field of `size` bytes, blanks trimmed (Java
 * trims management keys).  -ENAMETOOLONG when it does not fit. */
int mgmt_field_set(char *dst, size_t size, const char *s, size_t len);
/* The projection tag of a key (its kind's shm_tag). */
uint64_t mgmt_key_tag(const shm_t *shm, const mgmt_key_t *k);

typedef struct {
	mgmt_key_t key;
	bool insert; /* true: put the operation in force (pull-out); false: remove it */
} mgmt_change_t;

/* Who writes, and the rest of Java's OperationContext.  When the request
 * authenticated (mgmt_set_actor), a blank operator_id is the actor's
 * username and the token is not stored (it is the credential). */
typedef struct {
	const char *operator_id; /* required */
	const char *token;       /* may be NULL; stored, never logged */
	const char *reason;
	const char *extensions; /* JSON text; NULL = "{}" */
	int complete;           /* operationComplete as the request gave it: -1 absent */
	const char *surface;    /* "java" or "rust": recorded in the audit details */
} mgmt_ctx_t;

/* ---- Process lifecycle ------------------------------------------------------- */

typedef struct mgmt mgmt_t;

/* A worker's handle: its own store connection (schema already migrated by
 * the master) and the region's projection. */
int mgmt_open(const config_t *cfg, shm_t *shm, mgmt_t **out, char *err, size_t err_len);
void mgmt_close(mgmt_t *m);

/* The master at start: create or migrate the store, build the projection
 * from it, make the JWT secret (when [auth] jwt_secret is unset and the
 * store has none) and the first admin (when the store has no user: with
 * [auth] initial_admin_password, else a random password that is logged
 * once and written to <data_dir>/MGMT_ADMIN_PASSWORD_FILE, mode 0600),
 * close the store.  err gets the store's path and SQLite's message on
 * failure. */
int mgmt_boot(const config_t *cfg, shm_t *shm, char *err, size_t err_len);
#define MGMT_ADMIN_PASSWORD_FILE "initial-admin-password"

/* The user the running request authenticated as ("" or NULL: none, e.g.
 * [auth] enabled = off).  Every audit record written until the next call
 * names it (username), and a write whose operatorId is blank takes it.
 * Workers set it around each request. */
void mgmt_set_actor(mgmt_t *m, const char *username);
/* The master after a child ended abnormally: when that child died holding
 * the projection's writer lock, rebuild the projection from the store.
 * 1 repaired, 0 nothing to do, -EBUSY a live writer holds the lock (it, or
 * the next locker, repairs), other negative values on error. */
int mgmt_repair(const config_t *cfg, shm_t *shm, char *err, size_t err_len);
/* `artemis check`: the projection (read-only handle allowed) equals the
 * store's keys in force at the store's generation.  0, or -EIO with the
 * first difference in msg. */
int mgmt_check(const config_t *cfg, shm_t *shm, char *msg, size_t msg_len);

/* ---- Discovery's filter (lock-free, no store) --------------------------------- */

/* 1 when any of an instance's tags is operated down, 0 when not, -EBUSY
 * when the projection was being rewritten under the reader every time. */
int mgmt_down(shm_t *shm, const uint64_t tags[SHM_TAGS]);
/* shm_service_read without the instances operated down ("[]" when that
 * leaves none; info->count is the number listed).  Lock-free: the filter
 * is a snapshot of the projection taken before the read and verified after
 * it (the read is done again, a bounded number of times, when the
 * projection was rewritten under it: -EBUSY after that).  Costs nothing per
 * instance while nothing is operated down.  A cache of the results reads
 * mgmt_generation() first: a change meanwhile makes its entry stale. */
int mgmt_service_read(shm_t *shm, shm_str_t service, buf_t *out, shm_service_info_t *info);
/* One key's tag in force (is-server-down, is-zone-down). */
int mgmt_tag_down(shm_t *shm, uint64_t tag);
/* Moves on every change of the projection: response caches keyed by a
 * service's version also compare it. */
uint64_t mgmt_generation(shm_t *shm);
/* Epoch ms of the last change of the projection, strictly increasing
 * (services.json versions). */
uint64_t mgmt_stamp_ms(shm_t *shm);

/* ---- Writes --------------------------------------------------------------------- */

/* Apply n changes in one transaction; one audit record per change.  A
 * change that is already so (inserting an operation in force, removing one
 * that is not) is recorded all the same.  err gets a message on failure. */
int mgmt_apply(mgmt_t *m, const mgmt_change_t *changes, size_t n, const mgmt_ctx_t *ctx, char *err,
               size_t err_len);

/* ---- Reads ------------------------------------------------------------------------ */

/* An operation in force. */
typedef struct {
	mgmt_key_t key;
	const char *operator_id;
	const char *token;
	uint64_t create_ms;
	uint64_t update_ms;
} mgmt_op_t;

/* NULL fields match anything; the others match case-insensitively, but
 * region_exact makes regionId an exact-case match (Java's all-*-operations
 * filters with String.equals). */
typedef struct {
	mgmt_kind_t kind;
	const char *region;
	const char *service;
	const char *instance;
	const char *server;
	const char *zone;
	const char *operation;
	bool region_exact;
} mgmt_op_filter_t;

typedef int (*mgmt_op_fn)(void *ctx, const mgmt_op_t *op);
/* In key order; stops when fn returns non-zero (and returns that). */
int mgmt_ops(mgmt_t *m, const mgmt_op_filter_t *f, mgmt_op_fn fn, void *ctx);

/* ---- The audit trail ------------------------------------------------------------------ */

/* One record: every management write leaves one per key it names. */
typedef struct {
	int64_t id;              /* logId: this node's, monotonic */
	const char *origin_node; /* with origin_seq: the cluster-wide identity */
	int64_t origin_seq;
	uint64_t time_ms;
	const char *type;      /* operationType: instance, server, zone, audit, group, ... */
	const char *target;    /* targetId, e.g. "us-east/svc/inst-1" */
	const char *operation; /* "pullout", "cleanup", ... */
	const char *action;    /* "insert", "delete", "cleanup" */
	int complete;          /* operationComplete as given, -1 absent */
	const char *operator_id;
	const char *token;
	const char *reason;
	const char *extensions;
	const char *region, *service, *instance, *server, *zone; /* NULL when not the kind's */
	const char *details;   /* JSON object: before, after, surface, ... */
	const char *result;    /* "SUCCESS" */
	const char *username;  /* the authenticated user (NULL: no credential was checked) */
	int64_t group_id;      /* groupId of group records, 0 otherwise */
	int64_t route_rule_id; /* routeRuleId of rule records, 0 otherwise */
} mgmt_audit_t;

typedef struct {
	const char *type; /* operationType */
	const char *operator_id;
	const char *username; /* the authenticated user */
	const char *target;
	const char *operation;
	const char *region, *service, *instance, *server, *zone;
	int complete;          /* -1 any */
	int64_t group_id;      /* 0 = any */
	int64_t route_rule_id; /* 0 = any */
	uint64_t from_ms;      /* inclusive; 0 = none */
	uint64_t to_ms;        /* inclusive; 0 = none */
	uint32_t limit;        /* 0 = no limit */
	uint32_t offset;
} mgmt_audit_filter_t;

/* Matching records, newest first. */
typedef int (*mgmt_audit_fn)(void *ctx, const mgmt_audit_t *rec);
int mgmt_audit_query(mgmt_t *m, const mgmt_audit_filter_t *f, mgmt_audit_fn fn, void *ctx);
/* One record by logId (-ENOENT). */
int mgmt_audit_get(mgmt_t *m, int64_t id, mgmt_audit_fn fn, void *ctx);
/* Counts of the matching records as a JSON object appended to out:
 * {"total","byOperationType","byOperator","byOperation","byResult",
 *  "oldestTime","newestTime"} (times epoch ms, null when none). */
int mgmt_audit_stats(mgmt_t *m, const mgmt_audit_filter_t *f, buf_t *out);
/* Delete the records older than before_ms (one transaction, which also
 * records the cleanup itself).  *deleted gets the count. */
int mgmt_audit_cleanup(mgmt_t *m, uint64_t before_ms, const mgmt_ctx_t *ctx, uint64_t *deleted,
                       char *err, size_t err_len);

/* Parse a time as the audit queries take it: epoch seconds or
 * milliseconds (numbers above 10^11 are milliseconds), or ISO 8601
 * ("2024-05-01", "2024-05-01T10:00:00Z", fractions, "+02:00" offsets).
 * 0 and *ms, or -EINVAL. */
int mgmt_parse_time(const char *s, uint64_t *ms);
/* ISO 8601 UTC with milliseconds ("2024-05-01T10:00:00.000Z") into out
 * (at least 25 bytes). */
void mgmt_format_time(uint64_t ms, char *out, size_t len);

/* ---- Users, sessions, the login history (MANAGEMENT.md §6) ------------------------ */

typedef enum { MGMT_ROLE_VIEWER = 0, MGMT_ROLE_OPERATOR, MGMT_ROLE_ADMIN } mgmt_role_t;

const char *mgmt_role_name(mgmt_role_t role);
/* "admin", "operator", "viewer", any case: 0 or -EINVAL. */
int mgmt_role_parse(const char *s, mgmt_role_t *role);
/* A username: 3 to MGMT_MAX_USERNAME of [A-Za-z0-9._@-], starting with a
 * letter or digit.  0 or -EINVAL. */
int mgmt_username_check(const char *s);

typedef struct {
	int64_t id; /* userId: from the username, the same on every node (the key) */
	char username[MGMT_MAX_USERNAME + 1];
	char email[MGMT_MAX_EMAIL + 1];
	char description[MGMT_MAX_DESCRIPTION + 1];
	mgmt_role_t role;
	bool active;
	char hash[MGMT_MAX_HASH]; /* Argon2id, crypto_pwhash_str's form */
	uint64_t create_ms, update_ms;
} mgmt_user_t;

/* One user by id or by name (case-insensitive): 0 or -ENOENT. */
int mgmt_user_get(mgmt_t *m, int64_t id, mgmt_user_t *u);
int mgmt_user_find(mgmt_t *m, const char *username, mgmt_user_t *u);
/* Every user, oldest first (the same order on every node: ids derive from
 * usernames); stops when fn returns non-zero. */
typedef int (*mgmt_user_fn)(void *ctx, const mgmt_user_t *u);
int mgmt_users(mgmt_t *m, mgmt_user_fn fn, void *ctx);
/* A new user (u->username, email, description, role, active, hash); fills
 * u->id and the times.  -EEXIST, -EINVAL. */
int mgmt_user_create(mgmt_t *m, mgmt_user_t *u, const mgmt_ctx_t *ctx, char *err, size_t err_len);

/* A change of a user: NULL / -1 members stay as they are. */
typedef struct {
	const char *email;
	const char *description;
	int role;              /* mgmt_role_t */
	int active;            /* 0 or 1 */
	const char *hash;      /* a new password: ends every session of the user... */
	const char *keep_sid;  /* ...but this one (a user changing its own password) */
	bool rehash;           /* hash is the same password at today's cost: nothing ends */
	const char *operation; /* of the audit record: "update", "status", "password-reset" */
} mgmt_user_change_t;
/* *after (may be NULL) gets the user as changed.  -ENOENT, -EMLINK (it
 * was the last active admin and would no longer be one).  Disabling a
 * user or giving it a new password ends its sessions; a change of role
 * applies to its sessions at once. */
int mgmt_user_update(mgmt_t *m, int64_t id, const mgmt_user_change_t *c, const mgmt_ctx_t *ctx,
                     mgmt_user_t *after, char *err, size_t err_len);
/* Delete a user and end its sessions.  -ENOENT, -EMLINK (the last active admin). */
int mgmt_user_delete(mgmt_t *m, int64_t id, const mgmt_ctx_t *ctx, char *err, size_t err_len);

typedef struct {
	char sid[MGMT_SID_LEN + 1];
	char username[MGMT_MAX_USERNAME + 1];
	int64_t user_id; /* 0 when the user is gone */
	char ip[MGMT_MAX_IP + 1];
	char agent[MGMT_MAX_AGENT + 1];
	uint64_t create_ms, expire_ms, last_ms;
	bool revoked;
} mgmt_session_t;

/* A login that passed: a new session for s->username (its ip, agent and
 * expire_ms set by the caller) and the login's success record, in one
 * transaction.  Fills s->sid and the times.  With old_sid (a refresh),
 * that session is revoked in the same transaction (-EACCES when it is not
 * valid any more). */
int mgmt_session_open(mgmt_t *m, mgmt_session_t *s, const char *old_sid, char *err, size_t err_len);
/* End a session (logout, or an admin's revocation: ctx not NULL leaves an
 * audit record).  -ENOENT when there is no such session. */
int mgmt_session_revoke(mgmt_t *m, const char *sid, const mgmt_ctx_t *ctx, char *err,
                        size_t err_len);
int mgmt_session_get(mgmt_t *m, const char *sid, mgmt_session_t *s);
/* The live sessions (not revoked, not expired at now_ms) of one user, or
 * of all (username NULL), newest first. */
typedef int (*mgmt_session_fn)(void *ctx, const mgmt_session_t *s);
int mgmt_sessions(mgmt_t *m, const char *username, uint64_t now_ms, mgmt_session_fn fn, void *ctx);

/* Who a valid token speaks for: its session and the user as it is now. */
typedef struct {
	int64_t user_id;
	char username[MGMT_MAX_USERNAME + 1];
	mgmt_role_t role;
	char sid[MGMT_SID_LEN + 1];
	uint64_t expire_ms;
} mgmt_principal_t;

/* Is session sid, of a token naming username, valid at now_ms: not
 * revoked, not expired, its user existing and active?  0 and *p, -EACCES,
 * or -EIO.  Answers from a per-process cache (no SQLite for a session seen
 * before) that is dropped whenever a write that can end a session
 * commits, on every process at once (the region's auth generation). */
/* Moves whenever a write that can end a session or change the JWT secret
 * commits, here or applied from a peer (a lock-free read): a process that
 * keeps the secret reads it again when this moved. */
uint64_t mgmt_auth_generation(mgmt_t *m);
int mgmt_session_check(mgmt_t *m, const char *sid, const char *username, uint64_t now_ms,
                       mgmt_principal_t *p);

typedef enum { MGMT_LOGIN_SUCCESS = 0, MGMT_LOGIN_FAILURE, MGMT_LOGIN_LOCKED } mgmt_login_result_t;

typedef struct {
	int64_t id;
	uint64_t time_ms;
	const char *username;
	const char *ip;
	const char *agent;
	const char *result; /* "success", "failure", "locked" */
	const char *reason;
} mgmt_login_t;

/* Record a login that did not open a session (a failure, or an attempt
 * refused by the lockout). */
int mgmt_login_record(mgmt_t *m, const char *username, const char *ip, const char *agent,
                      mgmt_login_result_t result, const char *reason, char *err, size_t err_len);
/* The login records of a user, newest first, at most limit (0: all). */
typedef int (*mgmt_login_fn)(void *ctx, const mgmt_login_t *l);
int mgmt_logins(mgmt_t *m, const char *username, uint32_t limit, mgmt_login_fn fn, void *ctx);
/* Is a login for username from ip refused now ([auth] login_* keys)?  1
 * with *retry_s (seconds until it is not), 0, or -EIO. */
int mgmt_login_locked(mgmt_t *m, const char *username, const char *ip, uint64_t now_ms,
                      uint32_t *retry_s);

/* The HS256 key of this node's tokens: [auth] jwt_secret, else the one the
 * store keeps.  0, -ENOENT (none yet), -EIO.  A secret: never log it. */
int mgmt_jwt_key(mgmt_t *m, uint8_t *key, size_t cap, size_t *len);
/* ---- Routing: groups, route rules, canary (MANAGEMENT.md §1, §2) ------------------ */

#define MGMT_MAX_NAME              128  /* group and rule names, routeId, appId */
#define MGMT_MAX_DESC              1024 /* descriptions */
#define MGMT_MAX_TAG_KEY           128
#define MGMT_MAX_TAG_VALUE         512
#define MGMT_MAX_RULE_GROUPS       64   /* groups in one rule */
#define MGMT_MAX_WHITELIST         1024 /* entries of a canary whitelist */
#define MGMT_MAX_IPSPEC            64   /* one whitelist entry: an IP or a CIDR block */
#define MGMT_WEIGHT_JAVA_MAX       10000
#define MGMT_WEIGHT_RUST_MAX       100
#define MGMT_WEIGHT_DEFAULT        5
#define MGMT_CANARY_RULE           "canary-route-rule"
#define MGMT_ROUTING_BYTES_DEFAULT (4u << 20)

/* The management section of a region for a configuration ([management]
 * max_operations and routing_bytes); mgmt_section_bytes() is the same with
 * the default routing_bytes. */
uint64_t mgmt_region_bytes(const config_t *cfg);
/* What of that section a start reserves in /dev/shm (the down filter's
 * tables and the first of the routing image; shm_params_t.
 * mgmt_initial_bytes): the routing image reserves more as it grows. */
uint64_t mgmt_region_initial_bytes(const config_t *cfg);

typedef struct {
	int64_t id; /* groupId: this node's number */
	char service[MGMT_MAX_SERVICE + 1];
	char region[MGMT_MAX_REGION + 1];
	char zone[MGMT_MAX_ZONE + 1];
	char name[MGMT_MAX_NAME + 1];
	char app_id[MGMT_MAX_NAME + 1];
	char description[MGMT_MAX_DESC + 1];
	char status[16]; /* "active" | "inactive" */
	char type[16];   /* "physical" | "logical" */
	char operator_id[MGMT_MAX_OPERATOR + 1];
	uint64_t create_ms, update_ms;
} mgmt_group_t;

/* Java's lowercase group key "service/region/zone/name" (blank parts
 * skipped), and the Rust one "service:region:zone:name". */
void mgmt_group_key(const mgmt_group_t *g, char *out, size_t len);
void mgmt_group_rust_key(const mgmt_group_t *g, char *out, size_t len);

typedef struct {
	int64_t id;
	int64_t group_id;
	char key[MGMT_MAX_TAG_KEY + 1];
	char value[MGMT_MAX_TAG_VALUE + 1];
} mgmt_tag_t;

typedef struct {
	int64_t id;
	int64_t group_id;
	char instance[MGMT_MAX_INSTANCE + 1];
	char region[MGMT_MAX_REGION + 1]; /* "" = the group's */
	char zone[MGMT_MAX_ZONE + 1];
	char binding[16]; /* "manual" | "auto" */
	char operator_id[MGMT_MAX_OPERATOR + 1];
	uint64_t create_ms;
} mgmt_binding_t;

typedef struct {
	int64_t group_id;
	char operation[MGMT_MAX_OPERATION + 1];
	char operator_id[MGMT_MAX_OPERATOR + 1];
	uint64_t create_ms, update_ms;
} mgmt_group_op_t;

/* A logical service instance (Java's service_instance): served in
 * logicInstances with status "up". */
typedef struct {
	int64_t id;
	char service[MGMT_MAX_SERVICE + 1];
	char instance[MGMT_MAX_INSTANCE + 1];
	char ip[SHM_MAX_IP + 1];
	char machine[SHM_MAX_MACHINE + 1];
	char protocol[SHM_MAX_PROTOCOL + 1];
	char region[MGMT_MAX_REGION + 1];
	char zone[MGMT_MAX_ZONE + 1];
	char group[SHM_MAX_GROUP + 1];
	char url[SHM_MAX_URL + 1];
	char health[SHM_MAX_URL + 1];
	char description[MGMT_MAX_DESC + 1];
	char metadata[SHM_MAX_METADATA + 1]; /* a JSON object's text, "" = none */
	int port;
	char operator_id[MGMT_MAX_OPERATOR + 1];
	uint64_t create_ms, update_ms;
} mgmt_logic_t;

typedef struct {
	int64_t id; /* routeRuleId */
	char route_id[MGMT_MAX_NAME + 1];
	char service[MGMT_MAX_SERVICE + 1];
	char name[MGMT_MAX_NAME + 1];
	char description[MGMT_MAX_DESC + 1];
	char status[16];   /* "active" (published) | "inactive" */
	char strategy[32]; /* weighted-round-robin | close-by-visit | consistent-hash */
	char operator_id[MGMT_MAX_OPERATOR + 1];
	uint64_t create_ms, update_ms;
} mgmt_rule_t;

typedef struct {
	int64_t id; /* routeRuleGroupId */
	int64_t rule_id;
	int64_t group_id;
	int weight;                       /* released; -1 = null */
	int unreleased_weight;            /* -1 = null */
	char region[MGMT_MAX_REGION + 1]; /* hints for close-by-visit; "" = the group's */
	char zone[MGMT_MAX_ZONE + 1];
	uint64_t create_ms, update_ms;
} mgmt_rule_group_t;

typedef struct {
	char service[MGMT_MAX_SERVICE + 1];
	bool enabled;
	char *whitelist; /* JSON array text of IPs and CIDR blocks (owned by the reader's
	                  * call, or the writer's input) */
	char operator_id[MGMT_MAX_OPERATOR + 1];
	uint64_t create_ms, update_ms;
} mgmt_canary_t;

/* Which surface's weight rule applies to a rule-group write. */
enum mgmt_weight_mode {
	MGMT_WEIGHT_STAGE,   /* Java insert/update: unreleasedWeight only (0..10000) */
	MGMT_WEIGHT_PUBLISH, /* Java canary: weight and unreleasedWeight (0..10000) */
	MGMT_WEIGHT_RUST,    /* Rust: both at once (1..100) */
};
/* A weight clamped as a surface defines it (MANAGEMENT.md §2). */
int mgmt_weight_clamp(enum mgmt_weight_mode mode, long long w);

/* A routing write: every call between begin and commit is one store
 * transaction under the projection's writer lock, with one audit record
 * per row it changes; commit rebuilds the down set and the routing image
 * from the store, publishes them (when it returns 0 every worker answers
 * with the change) and pushes one `reload` per service touched.  abort
 * (or a failed call followed by commit) changes nothing.  Both free t.
 *
 * The calls return 0, or: -ENOENT (an id or key that does not exist),
 * -EEXIST (a duplicate group key, routeId, or (serviceId, name)), -EXDEV
 * (a group of another service), -EINVAL / -ENAMETOOLONG (a field; err
 * names it), -E2BIG (too many groups in a rule), -EIO (the store). */
typedef struct mgmt_rtx mgmt_rtx_t;
int mgmt_rtx_begin(mgmt_t *m, const mgmt_ctx_t *ctx, mgmt_rtx_t **out, char *err, size_t err_len);
int mgmt_rtx_commit(mgmt_rtx_t *t, char *err, size_t err_len);
void mgmt_rtx_abort(mgmt_rtx_t *t);
/* The handle of a transaction, for reads that must see its writes. */
mgmt_t *mgmt_rtx_handle(mgmt_rtx_t *t);

/* Groups.  create: -EEXIST when the key is live unless upsert (then the
 * row is updated: appId, description, status, type when given).  g->id and
 * the times are set on return. */
int mgmt_group_create(mgmt_rtx_t *t, mgmt_group_t *g, bool upsert, char *err, size_t err_len);
/* Update the fields named by `fields` (MGMT_GF_*) of group g->id. */
enum { MGMT_GF_DESC = 1, MGMT_GF_STATUS = 2, MGMT_GF_APP = 4, MGMT_GF_TYPE = 8 };
int mgmt_group_update(mgmt_rtx_t *t, const mgmt_group_t *g, unsigned fields, char *err,
                      size_t err_len);
/* Delete a group with its tags, instances, operations and rule groups. */
int mgmt_group_delete(mgmt_rtx_t *t, int64_t id, char *err, size_t err_len);
int mgmt_tag_put(mgmt_rtx_t *t, int64_t group_id, const char *key, const char *value, char *err,
                 size_t err_len);
/* value NULL: the tag whatever its value; else only with that value. */
int mgmt_tag_delete(mgmt_rtx_t *t, int64_t group_id, const char *key, const char *value, char *err,
                    size_t err_len);
int mgmt_binding_put(mgmt_rtx_t *t, mgmt_binding_t *b, char *err, size_t err_len);
/* By (group, instance), or by id when b_id > 0. */
int mgmt_binding_delete(mgmt_rtx_t *t, int64_t b_id, int64_t group_id, const char *instance,
                        char *err, size_t err_len);
/* Put a group operation in force (insert) or remove it. */
int mgmt_group_op(mgmt_rtx_t *t, int64_t group_id, const char *operation, bool insert, char *err,
                  size_t err_len);
int mgmt_logic_put(mgmt_rtx_t *t, mgmt_logic_t *l, char *err, size_t err_len);
int mgmt_logic_delete(mgmt_rtx_t *t, int64_t id, char *err, size_t err_len);

/* Rules.  create: -EEXIST when its routeId or (serviceId, name) is live,
 * unless upsert (then matched by (serviceId, name) and updated). */
int mgmt_rule_create(mgmt_rtx_t *t, mgmt_rule_t *r, bool upsert, char *err, size_t err_len);
enum { MGMT_RF_NAME = 1, MGMT_RF_DESC = 2, MGMT_RF_STRATEGY = 4, MGMT_RF_STATUS = 8 };
int mgmt_rule_update(mgmt_rtx_t *t, const mgmt_rule_t *r, unsigned fields, char *err,
                     size_t err_len);
int mgmt_rule_delete(mgmt_rtx_t *t, int64_t id, char *err, size_t err_len);
/* Put a group in a rule (or change its weight): -EXDEV when the group is
 * of another service. rg->id is set. */
int mgmt_rule_group_put(mgmt_rtx_t *t, mgmt_rule_group_t *rg, enum mgmt_weight_mode mode, char *err,
                        size_t err_len);
/* By (rule, group), or by id when rg_id > 0. */
int mgmt_rule_group_delete(mgmt_rtx_t *t, int64_t rg_id, int64_t rule_id, int64_t group_id,
                           char *err, size_t err_len);
/* weight = unreleasedWeight (Java's release). */
int mgmt_rule_group_release(mgmt_rtx_t *t, int64_t rule_id, int64_t group_id, char *err,
                            size_t err_len);

/* Canary configs.  c->whitelist: a JSON array of IP / CIDR strings (each
 * checked), NULL to keep the stored one. */
int mgmt_canary_put(mgmt_rtx_t *t, const mgmt_canary_t *c, char *err, size_t err_len);
int mgmt_canary_delete(mgmt_rtx_t *t, const char *service, char *err, size_t err_len);
/* Whether s is an IP address or a CIDR block a whitelist takes; whether
 * the whitelist entry spec takes the address ip. */
bool mgmt_ipspec_valid(const char *s, size_t len);
bool mgmt_ipspec_match(const char *spec, const char *ip);

/* Reads (committed data, or a transaction's own through mgmt_rtx_handle).
 * Lists call fn per row in id order and stop at its first non-zero
 * return; NULL / 0 filter fields match anything, strings case-insensitively. */
typedef struct {
	int64_t id;
	const char *service, *region, *zone, *name, *app_id, *status;
} mgmt_group_filter_t;
typedef int (*mgmt_group_fn)(void *ctx, const mgmt_group_t *g);
int mgmt_groups(mgmt_t *m, const mgmt_group_filter_t *f, mgmt_group_fn fn, void *ctx);
int mgmt_group_get(mgmt_t *m, int64_t id, mgmt_group_t *out);
int mgmt_group_find(mgmt_t *m, const char *service, const char *region, const char *zone,
                    const char *name, mgmt_group_t *out);
/* By name only, within a service: -ENOENT, or -EEXIST when several zones
 * have a group of that name. */
int mgmt_group_by_name(mgmt_t *m, const char *service, const char *name, mgmt_group_t *out);

typedef int (*mgmt_tag_fn)(void *ctx, const mgmt_tag_t *tag);
int mgmt_tags(mgmt_t *m, int64_t group_id, const char *key, mgmt_tag_fn fn, void *ctx);
typedef int (*mgmt_binding_fn)(void *ctx, const mgmt_binding_t *b);
int mgmt_bindings(mgmt_t *m, int64_t group_id, const char *instance, mgmt_binding_fn fn, void *ctx);
typedef int (*mgmt_group_op_fn)(void *ctx, const mgmt_group_op_t *op);
int mgmt_group_ops(mgmt_t *m, int64_t group_id, mgmt_group_op_fn fn, void *ctx);
typedef int (*mgmt_logic_fn)(void *ctx, const mgmt_logic_t *l);
int mgmt_logics(mgmt_t *m, int64_t id, const char *service, const char *instance, mgmt_logic_fn fn,
                void *ctx);

typedef struct {
	int64_t id;
	const char *route_id, *service, *name, *status;
} mgmt_rule_filter_t;
typedef int (*mgmt_rule_fn)(void *ctx, const mgmt_rule_t *r);
int mgmt_rules(mgmt_t *m, const mgmt_rule_filter_t *f, mgmt_rule_fn fn, void *ctx);
/* By routeId, else (digits) by routeRuleId. */
int mgmt_rule_get(mgmt_t *m, const char *route_id, mgmt_rule_t *out);
typedef int (*mgmt_rule_group_fn)(void *ctx, const mgmt_rule_group_t *rg);
int mgmt_rule_groups(mgmt_t *m, int64_t id, int64_t rule_id, int64_t group_id,
                     mgmt_rule_group_fn fn, void *ctx);
typedef int (*mgmt_canary_fn)(void *ctx, const mgmt_canary_t *c);
int mgmt_canaries(mgmt_t *m, const char *service, mgmt_canary_fn fn, void *ctx);

/* The registered instances that belong to a group (MANAGEMENT.md §2: its
 * groupId names the group, or a group instance binds it), down ones
 * included: fn gets each one's view and stored JSON. */
int mgmt_group_members(mgmt_t *m, const mgmt_group_t *g, shm_instance_fn fn, void *ctx);

/* ---- Routing on the discovery paths (lock-free, no store) ---------------------------- */

/* Who asks: the caller's address (peer, or the first X-Forwarded-For hop)
 * and the zone and region of its discoveryConfig. */
typedef struct {
	shm_str_t ip;
	shm_str_t zone;
	shm_str_t region;
} mgmt_caller_t;

/* Which instances a Rust-path call gets (MANAGEMENT.md §2): the canary
 * decision and the group the service's first published rule picks for this
 * call (round-robin counters move).  *variant 0 means every instance. */
int mgmt_route_decide(shm_t *shm, shm_str_t service, const mgmt_caller_t *caller,
                      uint32_t *variant);
/* mgmt_service_read of the instances of a variant (falling back to every
 * instance when the variant's group has none up). */
int mgmt_service_read_routed(shm_t *shm, shm_str_t service, uint32_t variant, buf_t *out,
                             shm_service_info_t *info);
/* Append a Java Service's routing members,
 * ,"logicInstances":[..],"metadata":null,"routeRules":[..]
 * (null for both when management has no routing data for the service),
 * with the canary rule's groups' instances resolved (API.md §4.10). */
int mgmt_route_frame(shm_t *shm, shm_str_t service, buf_t *out);
/* The same for an answer the node routed (a Rust path, variant != 0): the
 * routing is applied, so "routeRules" is [] (a client has nothing left to
 * balance: the instances are the picked group's). */
int mgmt_route_frame_routed(shm_t *shm, shm_str_t service, buf_t *out);

/* ---- Replication between nodes (the replicator; MANAGEMENT.md §5) ------------------------ *
 *
 * Every replicated table has a descriptor (mgmt/replica.c): its record kind
 * on the wire, its natural key, the columns that travel, and how two
 * versions of a row meet: last writer wins by (hlc, origin node), first
 * writer wins (the JWT secret), or insert once (audit records, keyed by
 * their origin and origin sequence).  A row travels as its kind, its stamp
 * (hlc, origin node, tombstone) and its values in the descriptor's order,
 * natural key first; never by a local numeric id.
 *
 * The replicator opens its own handle after fork (mgmt_repl_open) and
 *   - sends: walks rows by store generation (`seq`) in installments,
 *     this node's own rows in the stream, every row in a catch-up;
 *   - receives: mgmt_repl_begin, mgmt_repl_put per row, mgmt_repl_commit
 *     with the sender's cursor: one transaction under the projection's
 *     writer lock, published like a local write (notices, versions,
 *     caches), the HLC merged with every timestamp received;
 *   - compares: per table and bucket digests (count, sum of row hashes);
 *   - collects tombstones every peer acknowledged.
 */

#define MGMT_REPL_MAX_VALUES 40         /* columns of a replicated row */
#define MGMT_REPL_BUCKETS    16         /* digest buckets per table */
#define MGMT_REPL_MAX_ORIGIN 63         /* bytes of a node name */
#define MGMT_REPL_MAX_VALUE  (1u << 20) /* bytes of one text or blob value */

typedef enum { MGMT_V_NULL = 0, MGMT_V_INT, MGMT_V_REAL, MGMT_V_TEXT, MGMT_V_BLOB } mgmt_vtype_t;

typedef struct {
	mgmt_vtype_t type;
	int64_t i;
	double d;
	const char *s; /* TEXT or BLOB: len bytes, not NUL-terminated */
	size_t len;
} mgmt_value_t;

/* One row as it travels.  Pointers stay valid until the next call on the
 * handle (walks) or are the caller's (puts). */
typedef struct {
	int kind; /* the table's record kind */
	int64_t hlc;
	const char *origin; /* the node whose write this version is */
	size_t origin_len;
	bool deleted; /* a tombstone */
	uint32_t nvals;
	mgmt_value_t vals[MGMT_REPL_MAX_VALUES];
} mgmt_row_t;

/* The record kinds of the replicated tables (bit k for kind k; kinds 2..63,
 * 1 is the registry's instances), and a kind's table name (NULL unknown). */
uint64_t mgmt_repl_kinds(void);
const char *mgmt_repl_kind_name(int kind);

/* Whether a row is one its table can take (its kind, stamp, the number
 * and types of its values, an operation table's key): 0, or -EINVAL with
 * err saying why.  Pure: no store (the fuzz target calls it). */
int mgmt_repl_row_check(const mgmt_row_t *row, char *err, size_t err_len);

typedef struct mgmt_repl mgmt_repl_t;

int mgmt_repl_open(const config_t *cfg, shm_t *shm, mgmt_repl_t **out, char *err, size_t err_len);
void mgmt_repl_close(mgmt_repl_t *r);

/* Whether another connection committed anything since the last call
 * (PRAGMA data_version: costs no read of the tables). */
bool mgmt_repl_moved(mgmt_repl_t *r);
/* The store's identity (random, made once with the store) and generation. */
int mgmt_repl_head(mgmt_repl_t *r, uint64_t *store_id, uint64_t *generation);

/* A walk over rows, in installments (mgmt_repl_walk).  Set the selection,
 * zero the rest; the walk keeps its place in it. */
typedef struct {
	/* selection */
	uint64_t after, upto; /* rows with after < seq <= upto (seq walks) */
	bool own_only;        /* only rows this node wrote last */
	uint64_t own_after;   /* this node's rows only when seq > own_after */
	uint64_t kinds;       /* tables walked (bits of kinds); 0: every one */
	int kind, bucket;     /* a bucket walk: that table's rows in that bucket */
	/* place */
	int table;
	int64_t last_seq;
	bool have_pk;
	int64_t pk_int;
	char pk_text[256];
	size_t pk_len;
	bool pk_is_text;
	bool done;
} mgmt_repl_walk_t;

/* Up to max_rows more rows of the walk, each to fn; fn returns 0 to go on,
 * non-zero to stop before that row (it comes again next time).  0 (w->done
 * once every row was seen), or a negative error. */
typedef int (*mgmt_row_fn)(void *ctx, const mgmt_row_t *row);
int mgmt_repl_walk(mgmt_repl_t *r, mgmt_repl_walk_t *w, uint32_t max_rows, mgmt_row_fn fn,
                   void *ctx);

/* What this node holds of a peer's store, and what the peer holds of
 * ours (persisted in the store's meta table). */
typedef struct {
	uint64_t store_id; /* the peer's store the cursors are in (0: none) */
	uint64_t own;      /* the peer's own rows with seq <= own are applied */
	uint64_t all;      /* every row it held with seq <= all is applied */
	uint64_t acked;    /* the peer acknowledged our own rows up to this seq */
} mgmt_repl_cursor_t;
int mgmt_repl_cursor_get(mgmt_repl_t *r, const char *peer, mgmt_repl_cursor_t *out);
/* The peer's acknowledgement of our rows (its own transaction). */
int mgmt_repl_acked_set(mgmt_repl_t *r, const char *peer, uint64_t acked);

/* Applying rows: begin (the writer lock, one transaction), put each row,
 * commit with the cursor they bring the peer to (NULL: none).  put: 1
 * applied, 0 not (what this node holds wins or is the same), -EINVAL a row
 * this node cannot take (err says why; the batch goes on), other negative
 * values: the batch failed (rolled back; call nothing but begin again). */
int mgmt_repl_begin(mgmt_repl_t *r, char *err, size_t err_len);
int mgmt_repl_put(mgmt_repl_t *r, const mgmt_row_t *row, char *err, size_t err_len);
int mgmt_repl_commit(mgmt_repl_t *r, const char *peer, const mgmt_repl_cursor_t *cur, char *err,
                     size_t err_len);
void mgmt_repl_rollback(mgmt_repl_t *r);
bool mgmt_repl_active(const mgmt_repl_t *r);

/* Per table and bucket: the rows' count and the sum of their hashes (the
 * natural key, stamp and tombstone of each row; lower case keys), of the
 * tables in kinds.  Recomputed only for tables that changed. */
typedef struct {
	int kind;
	int bucket;
	uint64_t count;
	uint64_t hash;
} mgmt_repl_digest_t;
int mgmt_repl_digest(mgmt_repl_t *r, uint64_t kinds, mgmt_repl_digest_t *out, size_t cap,
                     size_t *n);

/* Remove tombstones with seq <= upto whose HLC is older than before_ms
 * (children before parents); *removed gets the count. */
int mgmt_repl_gc(mgmt_repl_t *r, uint64_t upto, uint64_t before_ms, uint64_t *removed);

#endif

/*
 * users.c - the users of the management API (MANAGEMENT.md §6): who may
 * log in, with which role; the node's JWT secret; the first admin.
 *
 * A user is a row of `users`, keyed by its username (case-insensitive);
 * userId derives from the username (replica_key_id), so it is the same on
 * every node of a cluster.  Removing a user leaves a tombstone
 * (deleted = 1, the hash emptied) that a new user of the same name revives.
 * Every change is one transaction of mgmt_write() with an audit record of
 * operationType "user" (before/after, never the hash), and ends the
 * sessions it must (disabled, deleted, new password) in the same
 * transaction; the auth generation then moves so every worker drops its
 * cached sessions.  The last active admin can be neither removed, disabled
 * nor demoted (-EMLINK).
 *
 * users_boot(), from the master's mgmt_boot(), makes the JWT secret and the
 * first admin.  Hashing is auth/password.c's; nothing here logs a secret
 * (the first admin's random password goes to a 0600 file, its path to the
 * log).
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "artemis/auth.h"
#include "artemis/codec.h"
#include "artemis/log.h"
#include "mgmt_int.h"

#define USER_COLUMNS                                                                               \
	"id, username, email, description, role, status, password_hash, create_time, update_time"
#define JWT_SECRET_BYTES   32
#define ADMIN_PASSWORD_LEN 21 /* 20 characters of [A-Za-z0-9]: 119 bits */

static const char *const role_names[] = {"viewer", "operator", "admin"};

const char *mgmt_role_name(mgmt_role_t role)
{
	return (unsigned)role <= MGMT_ROLE_ADMIN ? role_names[role] : "viewer";
}

int mgmt_role_parse(const char *s, mgmt_role_t *role)
{
	for (int i = 0; s && i <= MGMT_ROLE_ADMIN; i++) {
		if (strcasecmp(s, role_names[i]) == 0) {
			*role = (mgmt_role_t)i;
			return 0;
		}
	}
	return -EINVAL;
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '@' || c == '-';
}

int mgmt_username_check(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 3 || n > MGMT_MAX_USERNAME || !name_char(s[0]) || s[0] == '.' || s[0] == '_' ||
	    s[0] == '@' || s[0] == '-')
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!name_char(s[i]))
			return -EINVAL;
	return 0;
}

/* ---- Reading ------------------------------------------------------------------------ */

static void text_col(sqlite3_stmt *q, int i, char *dst, size_t size)
{
	const char *v = (const char *)sqlite3_column_text(q, i);
	snprintf(dst, size, "%s", v ? v : "");
}

static int users_get_row(sqlite3_stmt *q, mgmt_user_t *u)
{
	char role[16], status[16];
	memset(u, 0, sizeof(*u));
	u->id = sqlite3_column_int64(q, 0);
	text_col(q, 1, u->username, sizeof(u->username));
	text_col(q, 2, u->email, sizeof(u->email));
	text_col(q, 3, u->description, sizeof(u->description));
	text_col(q, 4, role, sizeof(role));
	text_col(q, 5, status, sizeof(status));
	text_col(q, 6, u->hash, sizeof(u->hash));
	u->create_ms = (uint64_t)sqlite3_column_int64(q, 7);
	u->update_ms = (uint64_t)sqlite3_column_int64(q, 8);
	if (mgmt_role_parse(role, &u->role) < 0)
		u->role = MGMT_ROLE_VIEWER;
	u->active = strcmp(status, "active") == 0;
	return 0;
}

/* One user by a prepared single-row query; -ENOENT, -EIO. */
static int get_one(store_t *st, sqlite3_stmt *q, mgmt_user_t *u)
{
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		users_get_row(q, u);
	sqlite3_reset(q);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

static int user_by_id(store_t *st, int64_t id, mgmt_user_t *u)
{
	sqlite3_stmt *q = store_stmt(st, SQ_USER_GET,
	                             "SELECT " USER_COLUMNS " FROM users WHERE id = ?1 AND "
	                             "deleted = 0");
	if (!q)
		return -EIO;
	sqlite3_bind_int64(q, 1, id);
	return get_one(st, q, u);
}

static int user_by_name(store_t *st, const char *name, mgmt_user_t *u)
{
	sqlite3_stmt *q = store_stmt(st, SQ_USER_FIND,
	                             "SELECT " USER_COLUMNS " FROM users WHERE username = ?1 AND "
	                             "deleted = 0");
	if (!q)
		return -EIO;
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	return get_one(st, q, u);
}

int mgmt_user_get(mgmt_t *m, int64_t id, mgmt_user_t *u)
{
	return user_by_id(&m->st, id, u);
}

int mgmt_user_find(mgmt_t *m, const char *username, mgmt_user_t *u)
{
	return user_by_name(&m->st, username, u);
}

int mgmt_users(mgmt_t *m, mgmt_user_fn fn, void *ctx)
{
	sqlite3_stmt *q = NULL;
	int rc, r = 0;
	if (sqlite3_prepare_v2(m->st.db,
	                       "SELECT " USER_COLUMNS
	                       " FROM users WHERE deleted = 0 ORDER BY create_time, username",
	                       -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		mgmt_user_t u;
		users_get_row(q, &u);
		r = fn(ctx, &u);
	}
	sqlite3_finalize(q);
	if (r)
		return r;
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* ---- Writing ------------------------------------------------------------------------ */

/* {"description","email","role","status","username"} or null. */
static void put_user(buf_t *b, const mgmt_user_t *u)
{
	if (!u) {
		json_put_raw(b, "null");
		return;
	}
	json_put_raw(b, "{\"description\":");
	json_put_cstr(b, u->description);
	json_put_raw(b, ",\"email\":");
	json_put_cstr(b, u->email);
	json_put_raw(b, ",\"role\":");
	json_put_cstr(b, mgmt_role_name(u->role));
	json_put_raw(b, ",\"status\":");
	json_put_cstr(b, u->active ? "active" : "inactive");
	json_put_raw(b, ",\"username\":");
	json_put_cstr(b, u->username);
	json_put_raw(b, "}");
}

static int audit_user(store_t *st, store_stamp_t *stamp, const char *operation, const char *action,
                      const mgmt_user_t *before, const mgmt_user_t *after, const mgmt_ctx_t *given,
                      char *err, size_t err_len)
{
	buf_t d = {0};
	mgmt_ctx_t ctx;
	store_ctx_fill(st, given, &ctx);
	json_put_raw(&d, "{\"after\":");
	put_user(&d, after);
	json_put_raw(&d, ",\"before\":");
	put_user(&d, before);
	json_put_raw(&d, ",\"node\":");
	json_put_cstr(&d, st->node);
	json_put_raw(&d, ",\"surface\":\"rust\"}");
	if (buf_error(&d)) {
		buf_free(&d);
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	int rc = audit_write(st, "user", (after ? after : before)->username, operation, action,
	                     d.data, &ctx, stamp, err, err_len);
	buf_free(&d);
	return rc;
}

static int active_admins(store_t *st, int64_t *n)
{
	sqlite3_stmt *q = NULL;
	int rc = -EIO;
	if (sqlite3_prepare_v2(st->db,
	                       "SELECT COUNT(*) FROM users WHERE role = 'admin' AND status = "
	                       "'active' AND deleted = 0",
	                       -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW) {
		*n = sqlite3_column_int64(q, 0);
		rc = 0;
	}
	sqlite3_finalize(q);
	return rc;
}

/* The last active admin must stay one: checked after the change, in its
 * transaction (writes are serialised, so no other write slips in). */
static int keep_an_admin(store_t *st, const mgmt_user_t *before, char *err, size_t err_len)
{
	int64_t n = 0;
	if (!(before->role == MGMT_ROLE_ADMIN && before->active))
		return 0;
	if (active_admins(st, &n) < 0)
		return store_fail(st, "counting admins", err, err_len);
	if (n > 0)
		return 0;
	snprintf(err, err_len, "%s is the last active admin", before->username);
	return -EMLINK;
}

typedef struct {
	mgmt_user_t *u;
	const mgmt_ctx_t *ctx;
	bool boot; /* the first admin: loses to any write of a peer (replica_boot_hlc) */
} create_t;

static int create_txn(store_t *st, store_stamp_t *stamp, void *arg, char *err, size_t err_len)
{
	create_t *c = arg;
	mgmt_user_t *u = c->u, old;
	int rc = user_by_name(st, u->username, &old);
	if (rc == 0) {
		snprintf(err, err_len, "user %s exists already", u->username);
		return -EEXIST;
	}
	if (rc != -ENOENT)
		return store_fail(st, "reading users", err, err_len);
	sqlite3_stmt *q = NULL;
	/* A tombstone of the same name is revived (the name is the key). */
	if (sqlite3_prepare_v2(
	        st->db,
	        "INSERT INTO users (username, email, description, role, status, password_hash, "
	        "create_time, update_time, deleted, hlc, origin_node, seq, id) VALUES (?1, ?2, ?3, "
	        "?4, ?5, ?6, ?7, ?7, 0, ?8, ?9, ?10, ?11) ON CONFLICT (username) DO UPDATE SET "
	        "username = excluded.username, email = excluded.email, description = "
	        "excluded.description, "
	        "role = excluded.role, status = excluded.status, password_hash = "
	        "excluded.password_hash, create_time = excluded.create_time, update_time = "
	        "excluded.update_time, deleted = 0, hlc = excluded.hlc, origin_node = "
	        "excluded.origin_node, seq = excluded.seq",
	        -1, &q, NULL) != SQLITE_OK)
		return store_fail(st, "preparing a user", err, err_len);
	sqlite3_bind_text(q, 1, u->username, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, u->email, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, u->description, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, mgmt_role_name(u->role), -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, u->active ? "active" : "inactive", -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 6, u->hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 7, (sqlite3_int64)stamp->now_ms);
	store_bind_origin(st, stamp, q, 8);
	if (c->boot)
		sqlite3_bind_int64(q, 8, replica_boot_hlc(stamp->now_ms));
	/* userId: from the username, the same on every node (replica.c) */
	sqlite3_bind_int64(q, 11, replica_key_id(u->username));
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE)
		return store_fail(st, "writing a user", err, err_len);
	if (user_by_name(st, u->username, u) < 0)
		return store_fail(st, "reading a user", err, err_len);
	return audit_user(st, stamp, "create", "insert", NULL, u, c->ctx, err, err_len);
}

int mgmt_user_create(mgmt_t *m, mgmt_user_t *u, const mgmt_ctx_t *ctx, char *err, size_t err_len)
{
	if (mgmt_username_check(u->username) < 0) {
		snprintf(err, err_len,
		         "username must have 3 to %d of A-Z a-z 0-9 . _ @ -, starting "
		         "with a letter or digit",
		         MGMT_MAX_USERNAME);
		return -EINVAL;
	}
	create_t c = {u, ctx, false};
	return mgmt_write(m, create_txn, &c, false, err, err_len);
}

typedef struct {
	int64_t id;
	const mgmt_user_change_t *c;
	const mgmt_ctx_t *ctx;
	mgmt_user_t *after;
	bool remove;
} update_t;

static int write_user(store_t *st, store_stamp_t *stamp, const mgmt_user_t *u, bool remove,
                      char *err, size_t err_len)
{
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(st->db,
	                       "UPDATE users SET email = ?2, description = ?3, role = ?4, status = "
	                       "?5, password_hash = ?6, update_time = ?7, deleted = ?8, hlc = ?9, "
	                       "origin_node = ?10, seq = ?11 WHERE id = ?1",
	                       -1, &q, NULL) != SQLITE_OK)
		return store_fail(st, "preparing a user", err, err_len);
	sqlite3_bind_int64(q, 1, u->id);
	sqlite3_bind_text(q, 2, u->email, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, u->description, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, mgmt_role_name(u->role), -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, u->active ? "active" : "inactive", -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 6, remove ? "" : u->hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 7, (sqlite3_int64)stamp->now_ms);
	sqlite3_bind_int(q, 8, remove ? 1 : 0);
	store_bind_origin(st, stamp, q, 9);
	int rc = sqlite3_step(q);
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : store_fail(st, "writing a user", err, err_len);
}

static void apply_change(mgmt_user_t *u, const mgmt_user_change_t *c)
{
	if (c->email)
		snprintf(u->email, sizeof(u->email), "%s", c->email);
	if (c->description)
		snprintf(u->description, sizeof(u->description), "%s", c->description);
	if (c->role >= 0)
		u->role = (mgmt_role_t)c->role;
	if (c->active >= 0)
		u->active = c->active != 0;
	if (c->hash)
		snprintf(u->hash, sizeof(u->hash), "%s", c->hash);
}

static int update_txn(store_t *st, store_stamp_t *stamp, void *arg, char *err, size_t err_len)
{
	update_t *a = arg;
	mgmt_user_t before, after;
	int rc = user_by_id(st, a->id, &before);
	if (rc == -ENOENT) {
		snprintf(err, err_len, "no user with id %lld", (long long)a->id);
		return rc;
	}
	if (rc < 0)
		return store_fail(st, "reading a user", err, err_len);
	after = before;
	if (!a->remove)
		apply_change(&after, a->c);
	if ((rc = write_user(st, stamp, &after, a->remove, err, err_len)) < 0 ||
	    (rc = keep_an_admin(st, &before, err, err_len)) < 0)
		return rc;
	/* Whoever is removed, disabled or given a new password is logged out. */
	if (a->remove || !after.active || (a->c->hash && !a->c->rehash))
		rc = sessions_revoke_user(st, stamp, before.username,
		                          a->remove || !after.active ? NULL : a->c->keep_sid, err,
		                          err_len);
	if (rc < 0)
		return rc;
	if (a->after)
		*a->after = after;
	if (a->remove)
		return audit_user(st, stamp, "delete", "delete", &before, NULL, a->ctx, err,
		                  err_len);
	return audit_user(st, stamp, a->c->operation ? a->c->operation : "update", "update",
	                  &before, &after, a->ctx, err, err_len);
}

int mgmt_user_update(mgmt_t *m, int64_t id, const mgmt_user_change_t *c, const mgmt_ctx_t *ctx,
                     mgmt_user_t *after, char *err, size_t err_len)
{
	if (c->role > MGMT_ROLE_ADMIN || c->active > 1) {
		snprintf(err, err_len, "role or status out of range");
		return -EINVAL;
	}
	update_t a = {id, c, ctx, after, false};
	return mgmt_write(m, update_txn, &a, true, err, err_len);
}

int mgmt_user_delete(mgmt_t *m, int64_t id, const mgmt_ctx_t *ctx, char *err, size_t err_len)
{
	update_t a = {id, NULL, ctx, NULL, true};
	return mgmt_write(m, update_txn, &a, true, err, err_len);
}

/* ---- The JWT secret ------------------------------------------------------------------- */

static int secret_get(store_t *st, uint8_t *key, size_t cap, size_t *len)
{
	sqlite3_stmt *q = NULL;
	int rc = -EIO;
	if (sqlite3_prepare_v2(st->db, "SELECT value FROM secrets WHERE name = 'jwt'", -1, &q,
	                       NULL) != SQLITE_OK)
		return -EIO;
	int step = sqlite3_step(q);
	if (step == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(q, 0);
		const void *v = sqlite3_column_blob(q, 0);
		rc = -EIO;
		if (v && n > 0 && n <= cap) {
			memcpy(key, v, n);
			*len = n;
			rc = 0;
		}
	} else if (step == SQLITE_DONE) {
		rc = -ENOENT;
	}
	sqlite3_finalize(q);
	return rc;
}

int mgmt_jwt_key(mgmt_t *m, uint8_t *key, size_t cap, size_t *len)
{
	const char *cfg_secret = m->cfg ? m->cfg->jwt_secret : "";
	size_t n = strlen(cfg_secret);
	if (n > 0) {
		if (n > cap)
			return -EINVAL;
		memcpy(key, cfg_secret, n); /* NOLINT(bugprone-not-null-terminated-result): bytes */
		*len = n;
		return 0;
	}
	return secret_get(&m->st, key, cap, len);
}

static int secret_make(store_t *st, store_stamp_t *stamp, char *err, size_t err_len)
{
	uint8_t key[JWT_SECRET_BYTES];
	size_t n = 0;
	int rc = secret_get(st, key, sizeof(key), &n);
	if (rc != -ENOENT) {
		sodium_memzero(key, sizeof(key));
		return rc == 0 ? 0 : store_fail(st, "reading the JWT secret", err, err_len);
	}
	sqlite3_stmt *q = NULL;
	randombytes_buf(key, sizeof(key));
	if (sqlite3_prepare_v2(st->db,
	                       "INSERT INTO secrets (name, value, hlc, origin_node, seq) VALUES "
	                       "('jwt', ?1, ?2, ?3, ?4)",
	                       -1, &q, NULL) != SQLITE_OK) {
		sodium_memzero(key, sizeof(key));
		return store_fail(st, "preparing the JWT secret", err, err_len);
	}
	sqlite3_bind_blob(q, 1, key, sizeof(key), SQLITE_TRANSIENT);
	store_bind_origin(st, stamp, q, 2);
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	sodium_memzero(key, sizeof(key));
	if (rc != SQLITE_DONE)
		return store_fail(st, "writing the JWT secret", err, err_len);
	log_info("[auth] jwt_secret is not set: made one and keep it in the store");
	return 0;
}

/* ---- The first admin ------------------------------------------------------------------ */

static int count_users(store_t *st, int64_t *n)
{
	sqlite3_stmt *q = NULL;
	int rc = -EIO;
	if (sqlite3_prepare_v2(st->db, "SELECT COUNT(*) FROM users WHERE deleted = 0", -1, &q,
	                       NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW) {
		*n = sqlite3_column_int64(q, 0);
		rc = 0;
	}
	sqlite3_finalize(q);
	return rc;
}

/* <data_dir>/initial-admin-password, mode 0600, replaced if it exists. */
static int write_password_file(const config_t *cfg, const char *password, char *path,
                               size_t path_len, char *err, size_t err_len)
{
	snprintf(path, path_len, "%s/%s", cfg->data_dir, MGMT_ADMIN_PASSWORD_FILE);
	(void)unlink(path); /* a new file: never one another user made readable */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return -errno;
	}
	size_t n = strlen(password);
	bool ok = write(fd, password, n) == (ssize_t)n && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
	int e = errno;
	close(fd);
	if (!ok) {
		snprintf(err, err_len, "%s: %s", path, strerror(e));
		unlink(path);
		return -e;
	}
	return 0;
}

/* The first admin, with [auth] initial_admin_password or a random password
 * (into `random`, and its file at `path`: logged by the caller once the
 * user is committed). */
static int first_admin(store_t *st, store_stamp_t *stamp, const config_t *cfg, char *random,
                       size_t random_len, char *path, size_t path_len, char *err, size_t err_len)
{
	const char *password = cfg->initial_admin_password;
	auth_cost_t cost = {cfg->password_opslimit, (size_t)cfg->password_memlimit_kib * 1024};
	mgmt_user_t admin = {.role = MGMT_ROLE_ADMIN, .active = true};
	mgmt_ctx_t ctx = {.operator_id = "artemis", .complete = -1, .surface = "rust"};
	int rc;

	snprintf(admin.username, sizeof(admin.username), "admin");
	snprintf(admin.description, sizeof(admin.description), "made at the first start");
	if (!password[0]) {
		if (auth_random_password(random, random_len) < 0)
			return -EINVAL;
		if ((rc = write_password_file(cfg, random, path, path_len, err, err_len)) < 0)
			return rc;
		password = random;
	}
	if (auth_password_hash(password, strlen(password), &cost, admin.hash) < 0) {
		snprintf(err, err_len, "hashing the first admin's password failed");
		return -ENOMEM;
	}
	create_t c = {&admin, &ctx, true};
	return create_txn(st, stamp, &c, err, err_len);
}

static int boot_txn(store_t *st, const config_t *cfg, char *random, size_t random_len, char *path,
                    size_t path_len, bool *made, bool *admin, char *err, size_t err_len)
{
	store_stamp_t stamp;
	uint8_t key[JWT_SECRET_BYTES];
	size_t klen = 0;
	int64_t n = 0;
	int rc;
	if (store_stamp_load(st, &stamp) < 0 || count_users(st, &n) < 0)
		return store_fail(st, "reading users", err, err_len);
	rc = cfg->jwt_secret[0] ? 0 : secret_get(st, key, sizeof(key), &klen);
	sodium_memzero(key, sizeof(key));
	if (rc == -ENOENT && (rc = secret_make(st, &stamp, err, err_len)) == 0)
		*made = true;
	if (rc < 0)
		return rc == -EIO ? store_fail(st, "reading the JWT secret", err, err_len) : rc;
	if (n == 0) {
		rc = first_admin(st, &stamp, cfg, random, random_len, path, path_len, err, err_len);
		if (rc < 0)
			return rc;
		*made = true;
		*admin = true;
	}
	if (*made && store_stamp_save(st, &stamp) < 0)
		return store_fail(st, "writing the counters", err, err_len);
	return 0;
}

int users_boot(store_t *st, const config_t *cfg, char *err, size_t err_len)
{
	char random[ADMIN_PASSWORD_LEN] = "", path[CONFIG_STR + 64] = "";
	bool made = false, admin = false;
	int rc = store_begin(st, true, err, err_len);
	if (rc < 0)
		return rc;
	rc = boot_txn(st, cfg, random, sizeof(random), path, sizeof(path), &made, &admin, err,
	              err_len);
	if (rc < 0 || !made) {
		store_rollback(st);
		return rc;
	}
	if ((rc = store_commit(st, err, err_len)) < 0)
		return rc;
	if (random[0])
		log_warn("first start: made user admin with a random password, written to %s "
		         "(mode 0600); log in with it and change it (artemis login; artemis users "
		         "passwd admin), then delete the file",
		         path);
	else if (admin)
		log_info("first start: made user admin with [auth] initial_admin_password");
	sodium_memzero(random, sizeof(random));
	return 0;
}

/*
 * store.c - the management store's SQLite connection (MANAGEMENT.md §4).
 *
 * One connection per process, opened after fork() (never inherited): the
 * master opens one at start to migrate the schema and build the projection
 * and closes it before it forks; each worker opens its own; `artemis check`
 * opens one read-only.  SQLite takes writers from several processes: WAL,
 * a busy timeout, and every write one IMMEDIATE transaction.
 *
 * Durability: synchronous = FULL, so an acknowledged management write
 * survives a power loss as well as the death of every process.
 *
 * Schema versions: PRAGMA user_version.  store_open(STORE_MIGRATE) runs the
 * forward migrations from the file's version to SCHEMA_VERSION in one
 * transaction; a file newer than this binary is refused (a downgrade would
 * misread it).  Other opens insist on the current version.
 *
 * The meta table holds the counters every write moves: `generation` (the
 * store's version; the projection records the one it was built from, and
 * every row a write touches carries it in `seq`, the cursor a replicator
 * follows), `hlc` (the hybrid logical clock of this node's writes, for last
 * writer wins between nodes) and `audit_seq` (this node's sequence of audit
 * records: with the node name, a record's cluster-wide identity), and
 * `login_seq` (the same of login records).
 *
 * A fresh store starts both sequences at its creation time in epoch ms
 * times SEQ_PER_MS, not at 0: a node that lost its store and starts again
 * under the same name writes records (the first admin's) before its peers
 * give it back the old ones, and those must not take the numbers of its
 * earlier store's records, which its peers still hold (mgmt/replica.c).
 * Numbers stay below 2^53 (exact in JSON) for centuries.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "artemis/clock.h"
#include "mgmt_int.h"
#include "route_int.h"

#define SCHEMA_VERSION 4
#define SEQ_PER_MS     1000 /* a store would have to write more records a ms to collide */

/* Columns every state table has besides its key: Java's (operator, token,
 * times) and what replication needs (tombstone, HLC, origin, change seq). */
#define STATE_COLUMNS                                                                              \
	"operation TEXT NOT NULL COLLATE NOCASE,"                                                  \
	"operator_id TEXT NOT NULL,"                                                               \
	"token TEXT,"                                                                              \
	"create_time INTEGER NOT NULL,"                                                            \
	"update_time INTEGER NOT NULL,"                                                            \
	"deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),"                            \
	"hlc INTEGER NOT NULL,"                                                                    \
	"origin_node TEXT NOT NULL,"                                                               \
	"seq INTEGER NOT NULL,"

/* Java's log tables are views of the audit records of their kind. */
#define LOG_VIEW(name, type, cols)                                                                 \
	"CREATE VIEW " name " AS SELECT id, " cols ", operation, operator_id, token, "             \
	"time_ms AS create_time, time_ms AS update_time, complete, extensions, reason "            \
	"FROM audit WHERE operation_type = '" type "';"

static const char *const migrations[SCHEMA_VERSION] = {
    /* 1: operations on instances, servers and zones; the audit trail. */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta (key, value) VALUES ('generation', 0), ('hlc', 0), ('audit_seq', 0);"
    "CREATE TABLE instance ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " region_id TEXT NOT NULL COLLATE NOCASE,"
    " service_id TEXT NOT NULL COLLATE NOCASE,"
    " instance_id TEXT NOT NULL COLLATE NOCASE," STATE_COLUMNS
    " UNIQUE (region_id, service_id, instance_id, operation));"
    "CREATE INDEX instance_seq ON instance (seq);"
    "CREATE TABLE server ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " region_id TEXT NOT NULL COLLATE NOCASE,"
    " server_id TEXT NOT NULL COLLATE NOCASE," STATE_COLUMNS
    " UNIQUE (region_id, server_id, operation));"
    "CREATE INDEX server_seq ON server (seq);"
    "CREATE TABLE service_zone ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " region_id TEXT NOT NULL COLLATE NOCASE,"
    " zone_id TEXT NOT NULL COLLATE NOCASE,"
    " service_id TEXT NOT NULL DEFAULT '' COLLATE NOCASE," STATE_COLUMNS
    " UNIQUE (region_id, zone_id, service_id, operation));"
    "CREATE INDEX service_zone_seq ON service_zone (seq);"
    "CREATE TABLE audit ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " origin_node TEXT NOT NULL,"
    " origin_seq INTEGER NOT NULL,"
    " hlc INTEGER NOT NULL,"
    " seq INTEGER NOT NULL,"
    " time_ms INTEGER NOT NULL,"
    " operation_type TEXT NOT NULL,"
    " target_id TEXT NOT NULL,"
    " operation TEXT NOT NULL,"
    " action TEXT NOT NULL,"
    " complete INTEGER,"
    " operator_id TEXT NOT NULL,"
    " token TEXT,"
    " reason TEXT,"
    " extensions TEXT NOT NULL DEFAULT '{}',"
    " region_id TEXT, service_id TEXT, instance_id TEXT, server_id TEXT, zone_id TEXT,"
    " details TEXT NOT NULL,"
    " result TEXT NOT NULL DEFAULT 'SUCCESS',"
    " error TEXT,"
    " UNIQUE (origin_node, origin_seq));"
    "CREATE INDEX audit_time ON audit (time_ms);"
    "CREATE INDEX audit_type_time ON audit (operation_type, time_ms);"
    "CREATE INDEX audit_seq ON audit (seq);" LOG_VIEW("instance_log", "instance",
                                                      "region_id, service_id, instance_id")
        LOG_VIEW("server_log", "server", "region_id, server_id")
            LOG_VIEW("service_zone_log", "zone", "region_id, service_id, zone_id"),
    /* 2: users, sessions, the login history, the node's secrets; audit
     * records name the authenticated user (MANAGEMENT.md §6).  What a
     * replicator needs of these tables: mgmt_int.h. */
    "CREATE TABLE users ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " username TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    " email TEXT NOT NULL DEFAULT '',"
    " description TEXT NOT NULL DEFAULT '',"
    " role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),"
    " status TEXT NOT NULL CHECK (status IN ('active', 'inactive')),"
    " password_hash TEXT NOT NULL,"
    " create_time INTEGER NOT NULL,"
    " update_time INTEGER NOT NULL,"
    " deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),"
    " hlc INTEGER NOT NULL,"
    " origin_node TEXT NOT NULL,"
    " seq INTEGER NOT NULL);"
    "CREATE INDEX users_seq ON users (seq);"
    "CREATE TABLE sessions ("
    " session_id TEXT PRIMARY KEY,"
    " username TEXT NOT NULL COLLATE NOCASE,"
    " ip_address TEXT NOT NULL DEFAULT '',"
    " user_agent TEXT NOT NULL DEFAULT '',"
    " create_time INTEGER NOT NULL,"
    " expire_time INTEGER NOT NULL,"
    " last_activity INTEGER NOT NULL,"
    " revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),"
    " revoke_time INTEGER,"
    " hlc INTEGER NOT NULL,"
    " origin_node TEXT NOT NULL,"
    " seq INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX sessions_user ON sessions (username);"
    "CREATE INDEX sessions_expire ON sessions (expire_time);"
    "CREATE INDEX sessions_seq ON sessions (seq);"
    "CREATE TABLE login_history ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " origin_node TEXT NOT NULL,"
    " origin_seq INTEGER NOT NULL,"
    " hlc INTEGER NOT NULL,"
    " seq INTEGER NOT NULL,"
    " time_ms INTEGER NOT NULL,"
    " username TEXT NOT NULL COLLATE NOCASE,"
    " ip_address TEXT NOT NULL,"
    " user_agent TEXT NOT NULL DEFAULT '',"
    " result TEXT NOT NULL CHECK (result IN ('success', 'failure', 'locked')),"
    " reason TEXT NOT NULL DEFAULT '',"
    " UNIQUE (origin_node, origin_seq));"
    "CREATE INDEX login_history_user ON login_history (username, time_ms);"
    "CREATE INDEX login_history_ip ON login_history (ip_address, time_ms);"
    "CREATE INDEX login_history_seq ON login_history (seq);"
    "CREATE TABLE secrets ("
    " name TEXT PRIMARY KEY,"
    " value BLOB NOT NULL,"
    " hlc INTEGER NOT NULL,"
    " origin_node TEXT NOT NULL,"
    " seq INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta (key, value) VALUES ('login_seq', 0);"
    "ALTER TABLE audit ADD COLUMN username TEXT;"
    "CREATE INDEX audit_username ON audit (username, time_ms);",
    /* 3: groups, route rules, canary (route_model.c). */
    route_schema_v3,
    /* 4: userId derived from the username, the same on every node of a
     * cluster (replica_key_id, as artemis_key_id()); it was this store's
     * number, which two nodes gave to different users. */
    "UPDATE users SET id = artemis_key_id(username);",
};

int store_path(const config_t *cfg, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/%s", cfg->data_dir, MGMT_DB_FILE);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int store_fail(store_t *st, const char *what, char *err, size_t err_len)
{
	const char *msg = st->db ? sqlite3_errmsg(st->db) : "out of memory";
	if (err && err_len)
		snprintf(err, err_len, "%s: %s%s%s", st->path, what ? what : "", what ? ": " : "",
		         msg);
	return -EIO;
}

int store_exec(store_t *st, const char *sql, char *err, size_t err_len)
{
	char *msg = NULL;
	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	if (err && err_len)
		snprintf(err, err_len, "%s: %s", st->path, msg ? msg : sqlite3_errmsg(st->db));
	sqlite3_free(msg);
	return -EIO;
}

sqlite3_stmt *store_stmt(store_t *st, int slot, const char *sql)
{
	if (slot < 0 || slot >= (int)(sizeof(st->stmt) / sizeof(st->stmt[0])))
		return NULL;
	if (!st->stmt[slot] && sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
	                                          &st->stmt[slot], NULL) != SQLITE_OK)
		return NULL;
	sqlite3_reset(st->stmt[slot]);
	sqlite3_clear_bindings(st->stmt[slot]);
	return st->stmt[slot];
}

int store_begin(store_t *st, bool write, char *err, size_t err_len)
{
	return store_exec(st, write ? "BEGIN IMMEDIATE" : "BEGIN", err, err_len);
}

int store_commit(store_t *st, char *err, size_t err_len)
{
	int rc = store_exec(st, "COMMIT", err, err_len);
	if (rc < 0)
		store_rollback(st);
	return rc;
}

void store_rollback(store_t *st)
{
	if (!sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

int store_meta_get(store_t *st, const char *key, int64_t *value)
{
	sqlite3_stmt *q = store_stmt(st, SQ_META_GET, "SELECT value FROM meta WHERE key = ?1");
	if (!q)
		return -EIO;
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		*value = sqlite3_column_int64(q, 0);
		sqlite3_reset(q);
		return 0;
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int store_meta_set(store_t *st, const char *key, int64_t value)
{
	sqlite3_stmt *q = store_stmt(st, SQ_META_SET,
	                             "INSERT INTO meta (key, value) VALUES (?1, ?2) "
	                             "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
	if (!q)
		return -EIO;
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, value);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int store_stamp_load(store_t *st, store_stamp_t *s)
{
	int64_t gen = 0;
	memset(s, 0, sizeof(*s));
	if (store_meta_get(st, "generation", &gen) || store_meta_get(st, "hlc", &s->hlc) ||
	    store_meta_get(st, "audit_seq", &s->audit_seq))
		return -EIO;
	s->generation = gen + 1;
	s->now_ms = clock_wall_ms();
	return 0;
}

int store_stamp_save(store_t *st, const store_stamp_t *s)
{
	if (store_meta_set(st, "generation", s->generation) || store_meta_set(st, "hlc", s->hlc) ||
	    store_meta_set(st, "audit_seq", s->audit_seq))
		return -EIO;
	return 0;
}

int64_t store_hlc_next(store_stamp_t *s)
{
	int64_t phys = (int64_t)(s->now_ms << 16);
	s->hlc = phys > s->hlc ? phys : s->hlc + 1;
	return s->hlc;
}

void store_bind_origin(store_t *st, store_stamp_t *s, sqlite3_stmt *q, int first)
{
	sqlite3_bind_int64(q, first, store_hlc_next(s));
	sqlite3_bind_text(q, first + 1, st->node, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, first + 2, s->generation);
}

static int user_version(store_t *st, int *v)
{
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	int rc = sqlite3_step(q) == SQLITE_ROW ? 0 : -EIO;
	if (rc == 0)
		*v = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	return rc;
}

/* A new store's record sequences (the file comment says why). */
static int fresh_sequences(store_t *st)
{
	int64_t base = (int64_t)clock_wall_ms() * SEQ_PER_MS;
	if (store_meta_set(st, "audit_seq", base) < 0 || store_meta_set(st, "login_seq", base) < 0)
		return -EIO;
	return 0;
}

static int migrate(store_t *st, char *err, size_t err_len)
{
	int v = 0;
	char sql[64];
	if (store_begin(st, true, err, err_len) < 0)
		return -EIO;
	if (user_version(st, &v) < 0) {
		store_rollback(st);
		return store_fail(st, "reading the schema version", err, err_len);
	}
	if (v > SCHEMA_VERSION) {
		store_rollback(st);
		snprintf(err, err_len,
		         "%s: schema version %d is newer than this binary's (%d); run the binary "
		         "that wrote it",
		         st->path, v, SCHEMA_VERSION);
		return -EPROTO;
	}
	for (int i = v; i < SCHEMA_VERSION; i++) {
		if (store_exec(st, migrations[i], err, err_len) < 0) {
			store_rollback(st);
			return -EIO;
		}
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
	if (v != SCHEMA_VERSION && store_exec(st, sql, err, err_len) < 0) {
		store_rollback(st);
		return -EIO;
	}
	if (v == 0 && fresh_sequences(st) < 0) {
		store_rollback(st);
		return store_fail(st, "numbering the records", err, err_len);
	}
	return store_commit(st, err, err_len);
}

static int check_version(store_t *st, char *err, size_t err_len)
{
	int v = 0;
	if (user_version(st, &v) < 0)
		return store_fail(st, "reading the schema version", err, err_len);
	if (v != SCHEMA_VERSION) {
		snprintf(err, err_len, "%s: schema version %d, this binary uses %d", st->path, v,
		         SCHEMA_VERSION);
		return -EPROTO;
	}
	return 0;
}

/* The file holds tokens: create it private before SQLite does. */
static int create_private(store_t *st, char *err, size_t err_len)
{
	int fd = open(st->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, err_len, "%s: %s", st->path, strerror(errno));
		return -errno;
	}
	close(fd);
	return 0;
}

/* artemis_key_id(text): replica_key_id in SQL (migration 4). */
static void key_id_sql(sqlite3_context *c, int argc, sqlite3_value **argv)
{
	const unsigned char *key = argc == 1 ? sqlite3_value_text(argv[0]) : NULL;
	if (key)
		sqlite3_result_int64(c, replica_key_id((const char *)key));
	else
		sqlite3_result_null(c);
}

static int set_pragmas(store_t *st, int mode, char *err, size_t err_len)
{
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, (int)st->busy_timeout_ms);
	if (mode == STORE_MIGRATE &&
	    sqlite3_create_function_v2(st->db, "artemis_key_id", 1,
	                               SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, key_id_sql, NULL,
	                               NULL, NULL) != SQLITE_OK)
		return store_fail(st, "registering artemis_key_id", err, err_len);
	if (mode == STORE_RO)
		return 0;
	if (store_exec(st, "PRAGMA journal_mode = WAL", err, err_len) < 0 ||
	    store_exec(st, "PRAGMA synchronous = FULL", err, err_len) < 0 ||
	    store_exec(st, "PRAGMA foreign_keys = ON", err, err_len) < 0)
		return -EIO;
	return 0;
}

/* [management] store_max_pages: SQLite answers SQLITE_FULL beyond, as on a
 * full disk (the tests' way to make one). */
static int set_max_pages(store_t *st, uint32_t max_pages, char *err, size_t err_len)
{
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %u", max_pages);
	return store_exec(st, sql, err, err_len);
}

int store_open(store_t *st, const config_t *cfg, int mode, char *err, size_t err_len)
{
	int rc;
	memset(st, 0, sizeof(*st));
	snprintf(st->node, sizeof(st->node), "%s", cfg->name);
	st->busy_timeout_ms = cfg->mgmt_busy_timeout_ms ? cfg->mgmt_busy_timeout_ms : 500;
	if (store_path(cfg, st->path, sizeof(st->path)) < 0) {
		snprintf(err, err_len, "%s/%s: path too long", cfg->data_dir, MGMT_DB_FILE);
		return -ENAMETOOLONG;
	}
	if (mode == STORE_MIGRATE && (rc = create_private(st, err, err_len)) < 0)
		return rc;
	int flags = mode == STORE_RO ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
	flags |= SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
	if (sqlite3_open_v2(st->path, &st->db, flags, NULL) != SQLITE_OK) {
		rc = store_fail(st, NULL, err, err_len);
		store_close(st);
		return rc;
	}
	rc = set_pragmas(st, mode, err, err_len);
	if (rc == 0)
		rc = mode == STORE_MIGRATE ? migrate(st, err, err_len)
		                           : check_version(st, err, err_len);
	/* The cap applies after the migrations: they must always fit. */
	if (rc == 0 && mode != STORE_RO && cfg->mgmt_store_max_pages)
		rc = set_max_pages(st, cfg->mgmt_store_max_pages, err, err_len);
	if (rc < 0)
		store_close(st);
	return rc;
}

void store_close(store_t *st)
{
	for (size_t i = 0; i < sizeof(st->stmt) / sizeof(st->stmt[0]); i++) {
		sqlite3_finalize(st->stmt[i]);
		st->stmt[i] = NULL;
	}
	if (st->db)
		sqlite3_close_v2(st->db);
	st->db = NULL;
}

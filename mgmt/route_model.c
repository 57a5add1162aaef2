/*
 * route_model.c - the routing rows (MANAGEMENT.md §1): groups and their
 * tags, group instances and operations, logical service instances, route
 * rules and their groups, canary configs.  Java's tables (API.md §5.6)
 * with the store's row conventions (route_int.h says what a replicator
 * needs of them).
 *
 * Every function here runs inside a routing transaction (route.c), writes
 * the rows and one audit record per row it changes, and notes the service
 * it touched.  A failure leaves the transaction marked failed; the caller
 * commits nothing.  Nothing here commits.
 *
 * Keys compare case-insensitively (COLLATE NOCASE, as the registry's); a
 * write to a natural key updates its live row, else revives its newest
 * tombstone, else inserts.  Deletes are tombstones, cascading from a group
 * to its tags, instances, operations and rule groups, and from a rule to
 * its rule groups.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "artemis/codec.h"
#include "route_int.h"

/* Columns every routing table has besides its own: who, when, and what
 * replication needs (tombstone, HLC, origin, change seq). */
#define ROW                                                                                        \
	"operator_id TEXT NOT NULL, token TEXT, create_time INTEGER NOT NULL, "                    \
	"update_time INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, "  \
	"1)), "                                                                                    \
	"hlc INTEGER NOT NULL, origin_node TEXT NOT NULL, seq INTEGER NOT NULL"
#define NOCASE " TEXT NOT NULL COLLATE NOCASE"
#define INDEXES(t, cols)                                                                           \
	"CREATE UNIQUE INDEX " t "_key ON " t " (" cols ") WHERE deleted = 0;"                     \
	"CREATE INDEX " t "_nkey ON " t " (" cols ");"                                             \
	"CREATE INDEX " t "_seq ON " t " (seq);"

/* One table, then its indexes, per paragraph. */
/* clang-format off */
const char route_schema_v3[] =
    "CREATE TABLE service_group (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " service_id" NOCASE ", region_id" NOCASE ", zone_id" NOCASE ", name" NOCASE ","
    " app_id TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',"
    " status TEXT NOT NULL DEFAULT 'active', group_type TEXT NOT NULL DEFAULT 'physical',"
    " " ROW ");"
    INDEXES("service_group", "service_id, region_id, zone_id, name")

    "CREATE TABLE service_group_tag (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " group_id INTEGER NOT NULL REFERENCES service_group (id),"
    " tag TEXT NOT NULL, value TEXT NOT NULL, " ROW ");"
    INDEXES("service_group_tag", "group_id, tag")

    "CREATE TABLE service_group_instance (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " group_id INTEGER NOT NULL REFERENCES service_group (id), instance_id" NOCASE ","
    " region_id TEXT NOT NULL DEFAULT '' COLLATE NOCASE,"
    " zone_id TEXT NOT NULL DEFAULT '' COLLATE NOCASE,"
    " binding_type TEXT NOT NULL DEFAULT 'manual', " ROW ");"
    INDEXES("service_group_instance", "group_id, instance_id")

    "CREATE TABLE service_group_operation (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " group_id INTEGER NOT NULL REFERENCES service_group (id), operation" NOCASE ","
    " " ROW ");"
    INDEXES("service_group_operation", "group_id, operation")

    "CREATE TABLE service_instance (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " service_id" NOCASE ", instance_id" NOCASE ","
    " ip TEXT NOT NULL DEFAULT '', machine_name TEXT NOT NULL DEFAULT '',"
    " metadata TEXT NOT NULL DEFAULT '', port INTEGER NOT NULL DEFAULT 80,"
    " protocol TEXT NOT NULL DEFAULT 'http', region_id TEXT NOT NULL DEFAULT '',"
    " zone_id TEXT NOT NULL DEFAULT '', group_id TEXT NOT NULL DEFAULT '',"
    " health_check_url TEXT NOT NULL DEFAULT '', url TEXT NOT NULL DEFAULT '',"
    " description TEXT NOT NULL DEFAULT '', " ROW ");"
    INDEXES("service_instance", "service_id, instance_id")

    "CREATE TABLE service_route_rule (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " route_id" NOCASE ", service_id" NOCASE ", name" NOCASE ","
    " description TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT 'inactive',"
    " strategy TEXT NOT NULL DEFAULT 'weighted-round-robin', " ROW ");"
    INDEXES("service_route_rule", "route_id")
    "CREATE UNIQUE INDEX service_route_rule_name ON service_route_rule (service_id, name)"
    " WHERE deleted = 0;"

    "CREATE TABLE service_route_rule_group (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " route_rule_id INTEGER NOT NULL REFERENCES service_route_rule (id),"
    " group_id INTEGER NOT NULL REFERENCES service_group (id),"
    " weight INTEGER, unreleased_weight INTEGER,"
    " region_id TEXT NOT NULL DEFAULT '', zone_id TEXT NOT NULL DEFAULT '', " ROW ");"
    INDEXES("service_route_rule_group", "route_rule_id, group_id")

    "CREATE TABLE canary_config (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " service_id" NOCASE ", ip_whitelist TEXT NOT NULL DEFAULT '[]',"
    " enabled INTEGER NOT NULL DEFAULT 1, " ROW ");"
    INDEXES("canary_config", "service_id")

    "ALTER TABLE audit ADD COLUMN group_id INTEGER;"
    "ALTER TABLE audit ADD COLUMN route_rule_id INTEGER;"
    "CREATE INDEX audit_group ON audit (group_id);";
/* clang-format on */

/* ---- Statements ----------------------------------------------------------------- */

/* Run sql with its parameters, in order, by fmt: 't' text (NULL: null),
 * 'i' int64, 'w' a weight (int, < 0: null).  The row stamp (?91..?96:
 * operator, token, time, HLC, origin, seq) is bound too when the SQL uses
 * it.  Returns the rows changed, or -EIO. */
static int vrun(mgmt_rtx_t *t, const char *sql, const char *fmt, va_list ap)
{
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(t->st->db, sql, -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	for (int i = 0; fmt[i]; i++) {
		if (fmt[i] == 't') {
			const char *v = va_arg(ap, const char *);
			if (v)
				sqlite3_bind_text(q, i + 1, v, -1, SQLITE_TRANSIENT);
		} else if (fmt[i] == 'i') {
			sqlite3_bind_int64(q, i + 1, va_arg(ap, int64_t));
		} else {
			int w = va_arg(ap, int);
			if (w >= 0)
				sqlite3_bind_int(q, i + 1, w);
		}
	}
	int idx = sqlite3_bind_parameter_index(q, "?91");
	if (idx > 0) {
		sqlite3_bind_text(q, idx, t->ctx.operator_id, -1, SQLITE_STATIC);
		if (t->ctx.token)
			sqlite3_bind_text(q, sqlite3_bind_parameter_index(q, "?92"), t->ctx.token,
			                  -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, sqlite3_bind_parameter_index(q, "?93"),
		                   (sqlite3_int64)t->stamp.now_ms);
		sqlite3_bind_int64(q, sqlite3_bind_parameter_index(q, "?94"),
		                   store_hlc_next(&t->stamp));
		sqlite3_bind_text(q, sqlite3_bind_parameter_index(q, "?95"), t->st->node, -1,
		                  SQLITE_STATIC);
		sqlite3_bind_int64(q, sqlite3_bind_parameter_index(q, "?96"), t->stamp.generation);
	}
	int rc = sqlite3_step(q);
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return -EIO;
	return sqlite3_changes(t->st->db);
}

static int run(mgmt_rtx_t *t, const char *sql, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vrun(t, sql, fmt, ap);
	va_end(ap);
	return rc;
}

/* A write to a natural key: its live row updated (live), else its newest
 * tombstone revived (revive), else a row inserted (insert); the three
 * statements take the same parameters.  Rows changed, or -EIO. */
static int put_row(mgmt_rtx_t *t, const char *live, const char *revive, const char *insert,
                   const char *fmt, ...)
{
	const char *sql[3] = {live, revive, insert};
	int rc = 0;
	for (int i = 0; i < 3 && rc == 0; i++) {
		va_list ap;
		va_start(ap, fmt);
		rc = vrun(t, sql[i], fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* The first column of the first row of sql as an id (0: no row); -EIO. */
static int64_t query_id(mgmt_rtx_t *t, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *q = NULL;
	va_list ap;
	if (sqlite3_prepare_v2(t->st->db, sql, -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	va_start(ap, fmt);
	for (int i = 0; fmt[i]; i++) {
		if (fmt[i] == 't')
			sqlite3_bind_text(q, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_int64(q, i + 1, va_arg(ap, int64_t));
	}
	va_end(ap);
	int rc = sqlite3_step(q);
	int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : rc == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(q);
	return id;
}

/* Columns every write sets (the stamp). */
#define SET_STAMP                                                                                  \
	"operator_id = ?91, token = ?92, update_time = ?93, hlc = ?94, origin_node = ?95, "        \
	"seq = ?96"
#define STAMP_COLS   "operator_id, token, create_time, update_time, hlc, origin_node, seq"
#define STAMP_VALUES "?91, ?92, ?93, ?93, ?94, ?95, ?96"
/* Reviving a tombstone starts its life again. */
#define REVIVE "deleted = 0, create_time = ?93, " SET_STAMP

static int fail_store(mgmt_rtx_t *t, const char *what, char *err, size_t err_len)
{
	t->failed = 1;
	return store_fail(t->st, what, err, err_len);
}

static int fail_with(mgmt_rtx_t *t, int rc, char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail_with(mgmt_rtx_t *t, int rc, char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
	if (rc != -ENOENT && rc != -EEXIST)
		t->failed = 1;
	return rc;
}

/* ---- Audit ------------------------------------------------------------------------ */

typedef struct {
	const char *type, *target, *operation, *action;
	const char *service, *region, *zone, *instance;
	int64_t group_id, rule_id;
	buf_t details;
} rec_t;

static void rec_begin(rec_t *r)
{
	memset(&r->details, 0, sizeof(r->details));
	json_put_raw(&r->details, "{");
}

/* ,"name":"value" in the details */
static void rec_str(rec_t *r, const char *name, const char *v)
{
	json_put_raw(&r->details, r->details.len > 1 ? ",\"" : "\"");
	json_put_raw(&r->details, name);
	json_put_raw(&r->details, "\":");
	json_put_cstr(&r->details, v);
}

static void rec_num(rec_t *r, const char *name, int64_t v)
{
	json_put_raw(&r->details, r->details.len > 1 ? ",\"" : "\"");
	json_put_raw(&r->details, name);
	json_put_raw(&r->details, "\":");
	json_put_i64(&r->details, v);
}

static int rec_write(mgmt_rtx_t *t, rec_t *r, char *err, size_t err_len)
{
	rec_str(r, "node", t->st->node);
	rec_str(r, "surface", t->ctx.surface ? t->ctx.surface : "java");
	json_put_raw(&r->details, "}");
	if (buf_error(&r->details)) {
		buf_free(&r->details);
		return fail_with(t, -ENOMEM, err, err_len, "out of memory");
	}
	audit_in_t in = {
	    .type = r->type,
	    .target = r->target,
	    .operation = r->operation,
	    .action = r->action,
	    .region = r->region,
	    .service = r->service,
	    .instance = r->instance,
	    .zone = r->zone,
	    .details = r->details.data,
	    .group_id = r->group_id,
	    .route_rule_id = r->rule_id,
	};
	int rc = audit_insert(t->st, &in, &t->ctx, &t->stamp, err, err_len);
	buf_free(&r->details);
	if (rc < 0)
		t->failed = 1;
	return rc;
}

/* ---- Shared -------------------------------------------------------------------------- */

static void lower_copy(char *dst, size_t size, const char *s)
{
	size_t i = 0;
	for (; s[i] && i + 1 < size; i++)
		dst[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
	dst[i] = '\0';
}

int rtx_touch(mgmt_rtx_t *t, const char *service)
{
	char low[MGMT_MAX_SERVICE + 1];
	lower_copy(low, sizeof(low), service);
	for (size_t i = 0; i < t->nservices; i++)
		if (!strcmp(t->services[i], low))
			return 0;
	if (t->nservices == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		char **v = realloc(t->services, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		t->services = v;
		t->cap = cap;
	}
	if (!(t->services[t->nservices] = strdup(low)))
		return -ENOMEM;
	t->nservices++;
	return 0;
}

static bool blank(const char *s)
{
	return s == NULL || s[strspn(s, " \t\r\n")] == '\0';
}

/* A required field: -EINVAL naming it when blank. */
static int need(mgmt_rtx_t *t, const char *v, const char *name, char *err, size_t err_len)
{
	if (!blank(v))
		return 0;
	return fail_with(t, -EINVAL, err, err_len, "%s is null or empty", name);
}

void mgmt_group_key(const mgmt_group_t *g, char *out, size_t len)
{
	const char *parts[4] = {g->service, g->region, g->zone, g->name};
	size_t n = 0;
	out[0] = '\0';
	for (int i = 0; i < 4 && n + 1 < len; i++) {
		if (blank(parts[i]))
			continue;
		n += (size_t)snprintf(out + n, len - n, "%s%s", n ? "/" : "", parts[i]);
		if (n >= len)
			n = len - 1;
	}
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
}

void mgmt_group_rust_key(const mgmt_group_t *g, char *out, size_t len)
{
	snprintf(out, len, "%s:%s:%s:%s", g->service, g->region, g->zone, g->name);
}

int mgmt_weight_clamp(enum mgmt_weight_mode mode, long long w)
{
	if (mode == MGMT_WEIGHT_RUST)
		return w < 1 ? 1 : w > MGMT_WEIGHT_RUST_MAX ? MGMT_WEIGHT_RUST_MAX : (int)w;
	return w < 0 ? 0 : w > MGMT_WEIGHT_JAVA_MAX ? MGMT_WEIGHT_JAVA_MAX : (int)w;
}

/* ---- Groups ------------------------------------------------------------------------ */

static const char *status_of(const char *s, const char *dflt)
{
	if (blank(s))
		return dflt;
	return !strcasecmp(s, "inactive") ? "inactive" : !strcasecmp(s, "active") ? "active" : NULL;
}

static const char *type_of(const char *s)
{
	if (blank(s))
		return "physical";
	return !strcasecmp(s, "logical")    ? "logical"
	       : !strcasecmp(s, "physical") ? "physical"
	                                    : NULL;
}

static void group_target(const mgmt_group_t *g, char *out, size_t len)
{
	mgmt_group_key(g, out, len);
}

static int group_record(mgmt_rtx_t *t, const mgmt_group_t *g, const char *action,
                        const char *before_status, char *err, size_t err_len)
{
	char key[MGMT_MAX_SERVICE + MGMT_MAX_REGION + MGMT_MAX_ZONE + MGMT_MAX_NAME + 8];
	rec_t r = {.type = "group",
	           .target = key,
	           .operation = action,
	           .action = action,
	           .service = g->service,
	           .region = g->region,
	           .zone = g->zone,
	           .group_id = g->id};
	group_target(g, key, sizeof(key));
	rec_begin(&r);
	rec_num(&r, "groupId", g->id);
	rec_str(&r, "name", g->name);
	rec_str(&r, "appId", g->app_id);
	rec_str(&r, "status", g->status);
	rec_str(&r, "groupType", g->type);
	rec_str(&r, "description", g->description);
	if (before_status)
		rec_str(&r, "statusBefore", before_status);
	return rec_write(t, &r, err, err_len);
}

static int check_group(mgmt_rtx_t *t, mgmt_group_t *g, char *err, size_t err_len)
{
	int rc;
	if ((rc = need(t, g->service, "serviceId", err, err_len)) < 0 ||
	    (rc = need(t, g->region, "regionId", err, err_len)) < 0 ||
	    (rc = need(t, g->zone, "zoneId", err, err_len)) < 0 ||
	    (rc = need(t, g->name, "name", err, err_len)) < 0)
		return rc;
	const char *st = status_of(g->status, "active"), *ty = type_of(g->type);
	if (!st)
		return fail_with(t, -EINVAL, err, err_len, "status is active or inactive");
	if (!ty)
		return fail_with(t, -EINVAL, err, err_len, "groupType is physical or logical");
	snprintf(g->status, sizeof(g->status), "%s", st);
	snprintf(g->type, sizeof(g->type), "%s", ty);
	return 0;
}

int mgmt_group_create(mgmt_rtx_t *t, mgmt_group_t *g, bool upsert, char *err, size_t err_len)
{
	int rc = check_group(t, g, err, err_len);
	if (rc < 0)
		return rc;
	int64_t id =
	    query_id(t,
	             "SELECT id FROM service_group WHERE service_id = ?1 AND region_id = ?2 "
	             "AND zone_id = ?3 AND name = ?4 AND deleted = 0",
	             "tttt", g->service, g->region, g->zone, g->name);
	if (id < 0)
		return fail_store(t, "reading a group", err, err_len);
	if (id > 0 && !upsert)
		return fail_with(t, -EEXIST, err, err_len, "group %s:%s:%s:%s exists", g->service,
		                 g->region, g->zone, g->name);
	if (id > 0) {
		rc = run(
		    t,
		    "UPDATE service_group SET app_id = CASE WHEN ?1 = '' THEN app_id ELSE ?1 END, "
		    "description = CASE WHEN ?2 = '' THEN description ELSE ?2 END, status = ?3, "
		    "group_type = ?4, " SET_STAMP " WHERE id = ?5",
		    "tttti", g->app_id, g->description, g->status, g->type, (int64_t)id);
	} else {
		id = query_id(
		    t,
		    "SELECT id FROM service_group WHERE service_id = ?1 AND region_id = ?2 "
		    "AND zone_id = ?3 AND name = ?4 AND deleted = 1 ORDER BY id DESC",
		    "tttt", g->service, g->region, g->zone, g->name);
		if (id > 0)
			rc = run(t,
			         "UPDATE service_group SET service_id = ?1, region_id = ?2, "
			         "zone_id = ?3, "
			         "name = ?4, app_id = ?5, description = ?6, status = ?7, "
			         "group_type = ?8, " REVIVE " WHERE id = ?9",
			         "tttttttti", g->service, g->region, g->zone, g->name, g->app_id,
			         g->description, g->status, g->type, (int64_t)id);
		else if (id == 0)
			rc = run(t,
			         "INSERT INTO service_group (service_id, region_id, zone_id, name, "
			         "app_id, "
			         "description, status, group_type, " STAMP_COLS
			         ") VALUES (?1, ?2, ?3, ?4, "
			         "?5, ?6, ?7, ?8, " STAMP_VALUES ")",
			         "tttttttt", g->service, g->region, g->zone, g->name, g->app_id,
			         g->description, g->status, g->type);
	}
	if (id < 0 || rc < 0)
		return fail_store(t, "writing a group", err, err_len);
	if (id == 0)
		id = sqlite3_last_insert_rowid(t->st->db);
	if (mgmt_group_get(t->m, id, g) < 0)
		return fail_store(t, "reading a group", err, err_len);
	if ((rc = rtx_touch(t, g->service)) < 0)
		return fail_with(t, rc, err, err_len, "out of memory");
	return group_record(t, g, upsert ? "upsert" : "create", NULL, err, err_len);
}

int mgmt_group_update(mgmt_rtx_t *t, const mgmt_group_t *in, unsigned fields, char *err,
                      size_t err_len)
{
	mgmt_group_t g;
	int rc = mgmt_group_get(t->m, in->id, &g);
	if (rc == -ENOENT)
		return fail_with(t, rc, err, err_len, "no group %lld", (long long)in->id);
	if (rc < 0)
		return fail_store(t, "reading a group", err, err_len);
	char before[16];
	snprintf(before, sizeof(before), "%s", g.status);
	if (fields & MGMT_GF_STATUS) {
		const char *s = status_of(in->status, NULL);
		if (!s)
			return fail_with(t, -EINVAL, err, err_len, "status is active or inactive");
		snprintf(g.status, sizeof(g.status), "%s", s);
	}
	if (fields & MGMT_GF_TYPE) {
		const char *ty = type_of(in->type);
		if (!ty)
			return fail_with(t, -EINVAL, err, err_len,
			                 "groupType is physical or logical");
		snprintf(g.type, sizeof(g.type), "%s", ty);
	}
	if (fields & MGMT_GF_DESC)
		snprintf(g.description, sizeof(g.description), "%s", in->description);
	if (fields & MGMT_GF_APP)
		snprintf(g.app_id, sizeof(g.app_id), "%s", in->app_id);
	if (run(t,
	        "UPDATE service_group SET app_id = ?1, description = ?2, status = ?3, "
	        "group_type = ?4, " SET_STAMP " WHERE id = ?5",
	        "tttti", g.app_id, g.description, g.status, g.type, (int64_t)g.id) < 0)
		return fail_store(t, "writing a group", err, err_len);
	if ((rc = rtx_touch(t, g.service)) < 0)
		return fail_with(t, rc, err, err_len, "out of memory");
	return group_record(t, &g, "update", before, err, err_len);
}

/* Tombstone the live rows of a child table of a group. */
static int cascade(mgmt_rtx_t *t, const char *table, const char *col, int64_t id)
{
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "UPDATE %s SET deleted = 1, " SET_STAMP " WHERE %s = ?1 AND deleted = 0", table,
	         col);
	return run(t, sql, "i", id);
}

int mgmt_group_delete(mgmt_rtx_t *t, int64_t id, char *err, size_t err_len)
{
	mgmt_group_t g;
	int rc = mgmt_group_get(t->m, id, &g);
	if (rc == -ENOENT)
		return fail_with(t, rc, err, err_len, "no group %lld", (long long)id);
	if (rc < 0)
		return fail_store(t, "reading a group", err, err_len);
	if (cascade(t, "service_group_tag", "group_id", id) < 0 ||
	    cascade(t, "service_group_instance", "group_id", id) < 0 ||
	    cascade(t, "service_group_operation", "group_id", id) < 0 ||
	    cascade(t, "service_route_rule_group", "group_id", id) < 0 ||
	    cascade(t, "service_group", "id", id) < 0)
		return fail_store(t, "deleting a group", err, err_len);
	if ((rc = rtx_touch(t, g.service)) < 0)
		return fail_with(t, rc, err, err_len, "out of memory");
	return group_record(t, &g, "delete", NULL, err, err_len);
}

/* The group a child row hangs on: -ENOENT naming it when absent. */
static int live_group(mgmt_rtx_t *t, int64_t id, mgmt_group_t *g, char *err, size_t err_len)
{
	int rc = mgmt_group_get(t->m, id, g);
	if (rc == -ENOENT)
		return fail_with(t, rc, err, err_len, "no group %lld", (long long)id);
	if (rc < 0)
		return fail_store(t, "reading a group", err, err_len);
	if ((rc = rtx_touch(t, g->service)) < 0)
		return fail_with(t, rc, err, err_len, "out of memory");
	return 0;
}

/* A child record of a group: target "groupKey/what". */
static int child_record(mgmt_rtx_t *t, const char *type, const mgmt_group_t *g, const char *what,
                        const char *action, rec_t *r, char *err, size_t err_len)
{
	char key[MGMT_MAX_SERVICE + MGMT_MAX_REGION + MGMT_MAX_ZONE + MGMT_MAX_NAME + 8];
	char target[sizeof(key) + MGMT_MAX_TAG_VALUE + MGMT_MAX_INSTANCE];
	group_target(g, key, sizeof(key));
	snprintf(target, sizeof(target), "%s/%s", key, what);
	r->type = type;
	r->target = target;
	r->action = action;
	if (!r->operation)
		r->operation = action;
	r->service = g->service;
	r->region = g->region;
	r->zone = g->zone;
	r->group_id = g->id;
	rec_num(r, "groupId", g->id);
	return rec_write(t, r, err, err_len);
}

/* ---- Tags --------------------------------------------------------------------------- */

int mgmt_tag_put(mgmt_rtx_t *t, int64_t group_id, const char *key, const char *value, char *err,
                 size_t err_len)
{
	mgmt_group_t g;
	int rc = live_group(t, group_id, &g, err, err_len);
	if (rc < 0 || (rc = need(t, key, "tag", err, err_len)) < 0)
		return rc;
	if (strlen(key) > MGMT_MAX_TAG_KEY || (value && strlen(value) > MGMT_MAX_TAG_VALUE))
		return fail_with(t, -ENAMETOOLONG, err, err_len, "a tag is longer than allowed");
	value = value ? value : "";
	rc = put_row(t,
	             "UPDATE service_group_tag SET value = ?3, " SET_STAMP
	             " WHERE group_id = ?1 AND tag = ?2 AND deleted = 0",
	             "UPDATE service_group_tag SET value = ?3, " REVIVE " WHERE id = (SELECT id "
	             "FROM service_group_tag WHERE group_id = ?1 AND tag = ?2 AND deleted = 1 "
	             "ORDER BY id DESC LIMIT 1)",
	             "INSERT INTO service_group_tag (group_id, tag, value, " STAMP_COLS
	             ") VALUES (?1, ?2, ?3, " STAMP_VALUES ")",
	             "itt", group_id, key, value);
	if (rc < 0)
		return fail_store(t, "writing a tag", err, err_len);
	rec_t r = {0};
	rec_begin(&r);
	rec_str(&r, "tag", key);
	rec_str(&r, "value", value);
	return child_record(t, "group-tag", &g, key, "put", &r, err, err_len);
}

int mgmt_tag_delete(mgmt_rtx_t *t, int64_t group_id, const char *key, const char *value, char *err,
                    size_t err_len)
{
	mgmt_group_t g;
	int rc = live_group(t, group_id, &g, err, err_len);
	if (rc < 0)
		return rc;
	rc = value ? run(t,
	                 "UPDATE service_group_tag SET deleted = 1, " SET_STAMP
	                 " WHERE group_id = ?1 AND tag = ?2 AND value = ?3 AND deleted = 0",
	                 "itt", group_id, key, value)
	           : run(t,
	                 "UPDATE service_group_tag SET deleted = 1, " SET_STAMP
	                 " WHERE group_id = ?1 AND tag = ?2 AND deleted = 0",
	                 "it", group_id, key);
	if (rc < 0)
		return fail_store(t, "deleting a tag", err, err_len);
	if (rc == 0)
		return fail_with(t, -ENOENT, err, err_len, "group %lld has no tag %s",
		                 (long long)group_id, key);
	rec_t r = {0};
	rec_begin(&r);
	rec_str(&r, "tag", key);
	return child_record(t, "group-tag", &g, key, "delete", &r, err, err_len);
}

/* ---- Group instances ------------------------------------------------------------------ */

int mgmt_binding_put(mgmt_rtx_t *t, mgmt_binding_t *b, char *err, size_t err_len)
{
	mgmt_group_t g;
	int rc = live_group(t, b->group_id, &g, err, err_len);
	if (rc < 0 || (rc = need(t, b->instance, "instanceId", err, err_len)) < 0)
		return rc;
	const char *type = blank(b->binding)                   ? "manual"
	                   : !strcasecmp(b->binding, "auto")   ? "auto"
	                   : !strcasecmp(b->binding, "manual") ? "manual"
	                                                       : NULL;
	if (!type)
		return fail_with(t, -EINVAL, err, err_len, "bindingType is manual or auto");
	rc = put_row(
	    t,
	    "UPDATE service_group_instance SET region_id = ?3, zone_id = ?4, binding_type = "
	    "?5, " SET_STAMP " WHERE group_id = ?1 AND instance_id = ?2 AND deleted = 0",
	    "UPDATE service_group_instance SET region_id = ?3, zone_id = ?4, "
	    "binding_type = ?5, " REVIVE " WHERE id = (SELECT id FROM "
	    "service_group_instance WHERE group_id = ?1 AND instance_id = ?2 AND "
	    "deleted = 1 ORDER BY id DESC LIMIT 1)",
	    "INSERT INTO service_group_instance (group_id, instance_id, region_id, zone_id, "
	    "binding_type, " STAMP_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, " STAMP_VALUES ")",
	    "itttt", b->group_id, b->instance, b->region, b->zone, type);
	if (rc < 0)
		return fail_store(t, "writing a group instance", err, err_len);
	b->id = query_id(t,
	                 "SELECT id FROM service_group_instance WHERE group_id = ?1 AND "
	                 "instance_id = ?2 AND deleted = 0",
	                 "it", b->group_id, b->instance);
	rec_t r = {.instance = b->instance};
	rec_begin(&r);
	rec_str(&r, "instanceId", b->instance);
	rec_str(&r, "bindingType", type);
	return child_record(t, "group-instance", &g, b->instance, "insert", &r, err, err_len);
}

int mgmt_binding_delete(mgmt_rtx_t *t, int64_t b_id, int64_t group_id, const char *instance,
                        char *err, size_t err_len)
{
	char inst[MGMT_MAX_INSTANCE + 1];
	mgmt_group_t g;
	if (b_id > 0) {
		sqlite3_stmt *q = NULL;
		int found = 0;
		if (sqlite3_prepare_v2(t->st->db,
		                       "SELECT group_id, instance_id FROM service_group_instance "
		                       "WHERE id = ?1 AND deleted = 0",
		                       -1, &q, NULL) != SQLITE_OK)
			return fail_store(t, "reading a group instance", err, err_len);
		sqlite3_bind_int64(q, 1, b_id);
		if (sqlite3_step(q) == SQLITE_ROW) {
			group_id = sqlite3_column_int64(q, 0);
			snprintf(inst, sizeof(inst), "%s", (const char *)sqlite3_column_text(q, 1));
			found = 1;
		}
		sqlite3_finalize(q);
		if (!found)
			return fail_with(t, -ENOENT, err, err_len, "no group instance %lld",
			                 (long long)b_id);
		instance = inst;
	}
	int rc = live_group(t, group_id, &g, err, err_len);
	if (rc < 0)
		return rc;
	rc = run(t,
	         "UPDATE service_group_instance SET deleted = 1, " SET_STAMP
	         " WHERE group_id = ?1 AND instance_id = ?2 AND deleted = 0",
	         "it", group_id, instance);
	if (rc < 0)
		return fail_store(t, "deleting a group instance", err, err_len);
	if (rc == 0)
		return fail_with(t, -ENOENT, err, err_len, "instance %s is not bound to group %lld",
		                 instance, (long long)group_id);
	rec_t r = {.instance = instance};
	rec_begin(&r);
	rec_str(&r, "instanceId", instance);
	return child_record(t, "group-instance", &g, instance, "delete", &r, err, err_len);
}

/* ---- Group operations --------------------------------------------------------------------- */

int mgmt_group_op(mgmt_rtx_t *t, int64_t group_id, const char *operation, bool insert, char *err,
                  size_t err_len)
{
	mgmt_group_t g;
	int rc = live_group(t, group_id, &g, err, err_len);
	if (rc < 0 || (rc = need(t, operation, "operation", err, err_len)) < 0)
		return rc;
	if (strlen(operation) > MGMT_MAX_OPERATION)
		return fail_with(t, -ENAMETOOLONG, err, err_len,
		                 "operation is longer than allowed");
	if (insert) {
		rc = put_row(t,
		             "UPDATE service_group_operation SET " SET_STAMP
		             " WHERE group_id = ?1 AND operation = ?2 AND deleted = 0",
		             "UPDATE service_group_operation SET " REVIVE
		             " WHERE id = (SELECT id FROM "
		             "service_group_operation WHERE group_id = ?1 AND operation = ?2 AND "
		             "deleted = 1 ORDER BY id DESC LIMIT 1)",
		             "INSERT INTO service_group_operation (group_id, operation, " STAMP_COLS
		             ") VALUES (?1, ?2, " STAMP_VALUES ")",
		             "it", group_id, operation);
	} else {
		rc = run(t,
		         "UPDATE service_group_operation SET deleted = 1, " SET_STAMP
		         " WHERE group_id = ?1 AND operation = ?2 AND deleted = 0",
		         "it", group_id, operation);
	}
	if (rc < 0)
		return fail_store(t, "writing a group operation", err, err_len);
	rec_t r = {.operation = operation};
	rec_begin(&r);
	rec_str(&r, "operation", operation);
	if (t->ctx.complete >= 0)
		rec_num(&r, "operationComplete", t->ctx.complete);
	return child_record(t, "group-operation", &g, operation, insert ? "insert" : "delete", &r,
	                    err, err_len);
}

/* ---- Logical service instances --------------------------------------------------------------- */

static int logic_record(mgmt_rtx_t *t, const mgmt_logic_t *l, const char *action, char *err,
                        size_t err_len)
{
	char target[MGMT_MAX_SERVICE + MGMT_MAX_INSTANCE + 2];
	snprintf(target, sizeof(target), "%s/%s", l->service, l->instance);
	rec_t r = {.type = "service-instance",
	           .target = target,
	           .operation = action,
	           .action = action,
	           .service = l->service,
	           .region = l->region,
	           .zone = l->zone,
	           .instance = l->instance};
	rec_begin(&r);
	rec_num(&r, "id", l->id);
	rec_str(&r, "ip", l->ip);
	rec_num(&r, "port", l->port);
	rec_str(&r, "url", l->url);
	rec_str(&r, "groupId", l->group);
	return rec_write(t, &r, err, err_len);
}

int mgmt_logic_put(mgmt_rtx_t *t, mgmt_logic_t *l, char *err, size_t err_len)
{
	int rc;
	if ((rc = need(t, l->service, "serviceId", err, err_len)) < 0 ||
	    (rc = need(t, l->instance, "instanceId", err, err_len)) < 0)
		return rc;
	if (l->metadata[0]) {
		json_t *md = json_loads(l->metadata, 0, NULL);
		bool ok = json_is_object(md);
		json_decref(md);
		if (!ok)
			return fail_with(t, -EINVAL, err, err_len, "metadata is not a JSON object");
	}
	char port[16];
	snprintf(port, sizeof(port), "%d", l->port);
#define LOGIC_SET                                                                                  \
	"ip = ?3, machine_name = ?4, metadata = ?5, port = ?6, protocol = ?7, region_id = ?8, "    \
	"zone_id = ?9, group_id = ?10, health_check_url = ?11, url = ?12, description = ?13"
	rc = put_row(
	    t,
	    "UPDATE service_instance SET " LOGIC_SET ", " SET_STAMP
	    " WHERE service_id = ?1 AND instance_id = ?2 AND deleted = 0",
	    "UPDATE service_instance SET " LOGIC_SET ", " REVIVE " WHERE id = (SELECT id "
	    "FROM service_instance WHERE service_id = ?1 AND instance_id = ?2 AND "
	    "deleted = 1 ORDER BY id DESC LIMIT 1)",
	    "INSERT INTO service_instance (service_id, instance_id, ip, machine_name, "
	    "metadata, port, protocol, region_id, zone_id, group_id, health_check_url, url, "
	    "description, " STAMP_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
	    "?11, ?12, ?13, " STAMP_VALUES ")",
	    "ttttttttttttt", l->service, l->instance, l->ip, l->machine, l->metadata, port,
	    l->protocol, l->region, l->zone, l->group, l->health, l->url, l->description);
#undef LOGIC_SET
	if (rc < 0)
		return fail_store(t, "writing a logical instance", err, err_len);
	l->id =
	    query_id(t,
	             "SELECT id FROM service_instance WHERE service_id = ?1 AND instance_id = ?2 "
	             "AND deleted = 0",
	             "tt", l->service, l->instance);
	if ((rc = rtx_touch(t, l->service)) < 0)
		return fail_with(t, rc, err, err_len, "out of memory");
	return logic_record(t, l, "insert", err, err_len);
}

int mgmt_logic_delete(mgmt_rtx_t *t, int64_t id, char *err, size_t err_len)
{
	mgmt_logic_t *l = calloc(1, sizeof(*l));
	int rc;
	if (!l)
		return fail_with(t, -ENOMEM, err, err_len, "out of memory");
	rc = run(t,
	         "UPDATE service_instance SET deleted = 1, " SET_STAMP
	         " WHERE id = ?1 AND deleted = 0",
	         "i", id);
	if (rc < 0) {
		rc = fail_store(t, "deleting a logical instance", err, err_len);
	} else if (rc == 0) {
		rc = fail_with(t, -ENOENT, err, err_len, "no logical instance %lld", (long long)id);
	} else {
		sqlite3_stmt *q = NULL;
		if (sqlite3_prepare_v2(t->st->db,
		                       "SELECT service_id, instance_id, region_id, zone_id FROM "
		                       "service_instance WHERE id = ?1",
		                       -1, &q, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(q, 1, id);
			if (sqlite3_step(q) == SQLITE_ROW) {
				snprintf(l->service, sizeof(l->service), "%s",
				         sqlite3_column_text(q, 0));
				snprintf(l->instance, sizeof(l->instance), "%s",
				         sqlite3_column_text(q, 1));
				snprintf(l->region, sizeof(l->region), "%s",
				         sqlite3_column_text(q, 2));
				snprintf(l->zone, sizeof(l->zone), "%s", sqlite3_column_text(q, 3));
			}
		}
		sqlite3_finalize(q);
		l->id = id;
		rc = rtx_touch(t, l->service);
		rc = rc < 0 ? fail_with(t, rc, err, err_len, "out of memory")
		            : logic_record(t, l, "delete", err, err_len);
	}
	free(l);
	return rc;
}

/* ---- Rules ------------------------------------------------------------------------------------
 */

static const char *strategy_of(const char *s)
{
	static const char *const names[] = {"weighted-round-robin", "close-by-visit",
	                                    "consistent-hash"};
	if (blank(s))
		return names[0];
	for (int i = 0; i < 3; i++)
		if (!strcasecmp(s, names[i]))
			return names[i];
	return NULL;
}

static int rule_record(mgmt_rtx_t *t, const mgmt_rule_t *r, const char *action, char *err,
                       size_t err_len)
{
	rec_t rec = {.type = "route-rule",
	             .target = r->route_id,
	             .operation = action,
	             .action = action,
	             .service = r->service,
	             .rule_id = r->id};
	rec_begin(&rec);
	rec_num(&rec, "routeRuleId", r->id);
	rec_str(&rec, "routeId", r->route_id);
	rec_str(&rec, "name", r->name);
	rec_str(&rec, "status", r->status);
	rec_str(&rec, "strategy", r->strategy);
	return rec_write(t, &rec, err, err_len);
}

static int check_rule(mgmt_rtx_t *t, mgmt_rule_t *r, char *err, size_t err_len)
{
	int rc;
	if ((rc = need(t, r->service, "serviceId", err, err_len)) < 0 ||
	    (rc = need(t, r->name, "name", err, err_len)) < 0)
		return rc;
	if (blank(r->route_id))
		snprintf(r->route_id, sizeof(r->route_id), "%.*s:%.*s", 80, r->service, 40,
		         r->name);
	const char *s = strategy_of(r->strategy), *st = status_of(r->status, "inactive");
	if (!s)
		return fail_with(
		    t, -EINVAL, err, err_len,
		    "strategy is weighted-round-robin, close-by-visit or consistent-hash");
	if (!st)
		return fail_with(t, -EINVAL, err, err_len, "status is active or inactive");
	snprintf(r->strategy, sizeof(r->strategy), "%s", s);
	snprintf(r->status, sizeof(r->status), "%s", st);
	return 0;
}

int mgmt_rule_create(mgmt_rtx_t *t, mgmt_rule_t *r, bool upsert, char *err, size_t err_len)
{
	int rc = check_rule(t, r, err, err_len);
	if (rc < 0)
		return rc;
	int64_t by_name = query_id(t,
	                           "SELECT id FROM service_route_rule WHERE service_id = ?1 AND "
	                           "name = ?2 AND deleted = 0",
	                           "tt", r->service, r->name);
	int64_t by_route = query_id(t,
	                            "SELECT id FROM service_route_rule WHERE route_id = ?1 AND "
	                            "deleted = 0",
	                            "t", r->route_id);
	if (by_name < 0 || by_route < 0)
		return fail_store(t, "reading a rule", err, err_len);
	int64_t id = by_name;
	if (upsert && by_name > 0) {
		rc = run(t,
		         "UPDATE service_route_rule SET description = CASE WHEN ?1 = '' THEN "
		         "description ELSE ?1 END, status = ?2, strategy = ?3, " SET_STAMP
		         " WHERE id = ?4",
		         "ttti", r->description, r->status, r->strategy, by_name);
	} else if (by_name > 0 || by_route > 0) {
		return fail_with(t, -EEXIST, err, err_len,
		                 by_route > 0 ? "rule %s exists" : "service %s has a rule named %s",
		                 by_route > 0 ? r->route_id : r->service, r->name);
	} else {
		id = query_id(
		    t,
		    "SELECT id FROM service_route_rule WHERE route_id = ?1 AND deleted = 1 "
		    "ORDER BY id DESC",
		    "t", r->route_id);
		if (id > 0)
			rc = run(t,
			         "UPDATE service_route_rule SET route_id = ?1, service_id = ?2, "
			         "name = ?3, "
			         "description = ?4, status = ?5, strategy = ?6, " REVIVE
			         " WHERE id = ?7",
			         "tttttti", r->route_id, r->service, r->name, r->description,
			         r->status, r->strategy, id);
		else if (id == 0)
			rc = run(t,
			         "INSERT INTO service_route_rule (route_id, service_id, name, "
			         "description, "
			         "status, strategy, " STAMP_COLS
			         ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, " STAMP_VALUES ")",
			         "tttttt", r->route_id, r->service, r->name, r->description,
			         r->status, r->strategy);
	}
	if (id < 0 || rc < 0)
		return fail_store(t, "writing a rule", err, err_len);
	if (id == 0)
		id = sqlite3_last_insert_rowid(t->st->db);
	if (route_rule_by_id(t->m, id, r) < 0)
		return fail_store(t, "reading a rule", err, err_len);
	if ((rc = rtx_touch(t, r->service)) < 0)
		return fail_with(t, rc, err, err_len, "out of memory");
	return rule_record(t, r, upsert ? "upsert" : "create", err, err_len);
}

static int rule_by_id(mgmt_rtx_t *t, int64_t id, mgmt_rule_t *r, char *err, size_t err_len)
{
	int rc = route_rule_by_id(t->m, id, r);
	if (rc == -ENOENT)
		return fail_with(t, -ENOENT, err, err_len, "no rule %lld", (long long)id);
	if (rc < 0)
		return fail_store(t, "reading a rule", err, err_len);
	if ((rc = rtx_touch(t, r->service)) < 0)
		return fail_with(t, rc, err, err_len, "out of memory");
	return 0;
}

int mgmt_rule_update(mgmt_rtx_t *t, const mgmt_rule_t *in, unsigned fields, char *err,
                     size_t err_len)
{
	mgmt_rule_t r;
	int rc = rule_by_id(t, in->id, &r, err, err_len);
	if (rc < 0)
		return rc;
	if (fields & MGMT_RF_NAME) {
		if ((rc = need(t, in->name, "name", err, err_len)) < 0)
			return rc;
		int64_t other =
		    query_id(t,
		             "SELECT id FROM service_route_rule WHERE service_id = ?1 AND "
		             "name = ?2 AND deleted = 0 AND id != ?3",
		             "tti", r.service, in->name, r.id);
		if (other != 0)
			return other < 0 ? fail_store(t, "reading a rule", err, err_len)
			                 : fail_with(t, -EEXIST, err, err_len,
			                             "service %s has a rule named %s", r.service,
			                             in->name);
		snprintf(r.name, sizeof(r.name), "%s", in->name);
	}
	if (fields & MGMT_RF_DESC)
		snprintf(r.description, sizeof(r.description), "%s", in->description);
	if (fields & MGMT_RF_STRATEGY) {
		const char *s = strategy_of(in->strategy);
		if (!s)
			return fail_with(t, -EINVAL, err, err_len,
			                 "strategy is weighted-round-robin, close-by-visit or "
			                 "consistent-hash");
		snprintf(r.strategy, sizeof(r.strategy), "%s", s);
	}
	if (fields & MGMT_RF_STATUS) {
		const char *st = status_of(in->status, NULL);
		if (!st)
			return fail_with(t, -EINVAL, err, err_len, "status is active or inactive");
		snprintf(r.status, sizeof(r.status), "%s", st);
	}
	if (run(t,
	        "UPDATE service_route_rule SET name = ?1, description = ?2, strategy = ?3, "
	        "status = ?4, " SET_STAMP " WHERE id = ?5",
	        "tttti", r.name, r.description, r.strategy, r.status, r.id) < 0)
		return fail_store(t, "writing a rule", err, err_len);
	const char *action = fields == MGMT_RF_STATUS
	                         ? (!strcmp(r.status, "active") ? "publish" : "unpublish")
	                         : "update";
	return rule_record(t, &r, action, err, err_len);
}

int mgmt_rule_delete(mgmt_rtx_t *t, int64_t id, char *err, size_t err_len)
{
	mgmt_rule_t r;
	int rc = rule_by_id(t, id, &r, err, err_len);
	if (rc < 0)
		return rc;
	if (cascade(t, "service_route_rule_group", "route_rule_id", id) < 0 ||
	    cascade(t, "service_route_rule", "id", id) < 0)
		return fail_store(t, "deleting a rule", err, err_len);
	return rule_record(t, &r, "delete", err, err_len);
}

/* ---- Rule groups ------------------------------------------------------------------------------
 */

static int rule_group_record(mgmt_rtx_t *t, const mgmt_rule_t *r, const mgmt_group_t *g,
                             const char *action, int weight, int unreleased, char *err,
                             size_t err_len)
{
	char key[MGMT_MAX_SERVICE + MGMT_MAX_REGION + MGMT_MAX_ZONE + MGMT_MAX_NAME + 8];
	char target[sizeof(key) + MGMT_MAX_NAME + 2];
	mgmt_group_key(g, key, sizeof(key));
	snprintf(target, sizeof(target), "%s/%s", r->route_id, key);
	rec_t rec = {.type = "route-rule-group",
	             .target = target,
	             .operation = action,
	             .action = action,
	             .service = r->service,
	             .region = g->region,
	             .zone = g->zone,
	             .group_id = g->id,
	             .rule_id = r->id};
	rec_begin(&rec);
	rec_num(&rec, "routeRuleId", r->id);
	rec_num(&rec, "groupId", g->id);
	if (weight >= 0)
		rec_num(&rec, "weight", weight);
	if (unreleased >= 0)
		rec_num(&rec, "unreleasedWeight", unreleased);
	return rec_write(t, &rec, err, err_len);
}

/* The rule and the group of a rule-group write, and that they go together. */
static int rule_and_group(mgmt_rtx_t *t, int64_t rule_id, int64_t group_id, mgmt_rule_t *r,
                          mgmt_group_t *g, char *err, size_t err_len)
{
	int rc = rule_by_id(t, rule_id, r, err, err_len);
	if (rc < 0 || (rc = live_group(t, group_id, g, err, err_len)) < 0)
		return rc;
	if (strcasecmp(r->service, g->service) != 0)
		return fail_with(t, -EXDEV, err, err_len,
		                 "group %lld is of service %s, rule %s of service %s",
		                 (long long)g->id, g->service, r->route_id, r->service);
	return 0;
}

/* SET `set` on the live row of (rule, group); -ENOENT when the group is
 * not in the rule.  *r and *g: the rule and the group. */
static int rule_group_set(mgmt_rtx_t *t, int64_t rule_id, int64_t group_id, const char *set,
                          mgmt_rule_t *r, mgmt_group_t *g, char *err, size_t err_len)
{
	char sql[256];
	int rc = rule_and_group(t, rule_id, group_id, r, g, err, err_len);
	if (rc < 0)
		return rc;
	snprintf(sql, sizeof(sql),
	         "UPDATE service_route_rule_group SET %s, " SET_STAMP
	         " WHERE route_rule_id = ?1 AND group_id = ?2 AND deleted = 0",
	         set);
	rc = run(t, sql, "ii", rule_id, group_id);
	if (rc < 0)
		return fail_store(t, "writing a rule group", err, err_len);
	if (rc == 0)
		return fail_with(t, -ENOENT, err, err_len, "group %lld is not in rule %s",
		                 (long long)group_id, r->route_id);
	return 0;
}

int mgmt_rule_group_put(mgmt_rtx_t *t, mgmt_rule_group_t *rg, enum mgmt_weight_mode mode, char *err,
                        size_t err_len)
{
	mgmt_rule_t r;
	mgmt_group_t g;
	int rc = rule_and_group(t, rg->rule_id, rg->group_id, &r, &g, err, err_len);
	if (rc < 0)
		return rc;
	int64_t live = query_id(t,
	                        "SELECT id FROM service_route_rule_group WHERE route_rule_id = ?1 "
	                        "AND group_id = ?2 AND deleted = 0",
	                        "ii", rg->rule_id, rg->group_id);
	if (live < 0)
		return fail_store(t, "reading a rule group", err, err_len);
	if (live == 0) {
		int64_t n = query_id(t,
		                     "SELECT COUNT(*) FROM service_route_rule_group WHERE "
		                     "route_rule_id = ?1 AND deleted = 0",
		                     "i", rg->rule_id);
		if (n >= MGMT_MAX_RULE_GROUPS)
			return fail_with(t, -E2BIG, err, err_len, "a rule has at most %d groups",
			                 MGMT_MAX_RULE_GROUPS);
	}
	int w = rg->unreleased_weight < 0 ? MGMT_WEIGHT_DEFAULT
	                                  : mgmt_weight_clamp(mode, rg->unreleased_weight);
	int released = mode == MGMT_WEIGHT_STAGE ? -2 : w; /* -2: keep the released weight */
	const char *hint_region = rg->region, *hint_zone = rg->zone;
	if (live > 0) {
		rc =
		    released == -2
		        ? run(t,
		              "UPDATE service_route_rule_group SET unreleased_weight = ?1, "
		              "region_id = "
		              "CASE WHEN ?2 = '' THEN region_id ELSE ?2 END, zone_id = CASE WHEN "
		              "?3 = "
		              "'' THEN zone_id ELSE ?3 END, " SET_STAMP " WHERE id = ?4",
		              "wtti", w, hint_region, hint_zone, live)
		        : run(t,
		              "UPDATE service_route_rule_group SET weight = ?1, unreleased_weight "
		              "= ?1, "
		              "region_id = CASE WHEN ?2 = '' THEN region_id ELSE ?2 END, zone_id = "
		              "CASE WHEN ?3 = '' THEN zone_id ELSE ?3 END, " SET_STAMP
		              " WHERE id = ?4",
		              "wtti", w, hint_region, hint_zone, live);
	} else {
		rc = run(t,
		         "UPDATE service_route_rule_group SET weight = ?3, unreleased_weight = ?4, "
		         "region_id = ?5, zone_id = ?6, " REVIVE " WHERE id = (SELECT id FROM "
		         "service_route_rule_group WHERE route_rule_id = ?1 AND group_id = ?2 AND "
		         "deleted = 1 ORDER BY id DESC LIMIT 1)",
		         "iiwwtt", rg->rule_id, rg->group_id, released < 0 ? -1 : released, w,
		         hint_region, hint_zone);
		if (rc == 0)
			rc = run(t,
			         "INSERT INTO service_route_rule_group (route_rule_id, group_id, "
			         "weight, "
			         "unreleased_weight, region_id, zone_id, " STAMP_COLS
			         ") VALUES (?1, ?2, "
			         "?3, ?4, ?5, ?6, " STAMP_VALUES ")",
			         "iiwwtt", rg->rule_id, rg->group_id, released < 0 ? -1 : released,
			         w, hint_region, hint_zone);
	}
	if (rc < 0)
		return fail_store(t, "writing a rule group", err, err_len);
	rg->id = query_id(t,
	                  "SELECT id FROM service_route_rule_group WHERE route_rule_id = ?1 AND "
	                  "group_id = ?2 AND deleted = 0",
	                  "ii", rg->rule_id, rg->group_id);
	rg->unreleased_weight = w;
	return rule_group_record(t, &r, &g, live > 0 ? "update" : "insert", released < 0 ? -1 : w,
	                         w, err, err_len);
}

int mgmt_rule_group_delete(mgmt_rtx_t *t, int64_t rg_id, int64_t rule_id, int64_t group_id,
                           char *err, size_t err_len)
{
	if (rg_id > 0) {
		sqlite3_stmt *q = NULL;
		int found = 0;
		if (sqlite3_prepare_v2(
		        t->st->db,
		        "SELECT route_rule_id, group_id FROM service_route_rule_group "
		        "WHERE id = ?1 AND deleted = 0",
		        -1, &q, NULL) != SQLITE_OK)
			return fail_store(t, "reading a rule group", err, err_len);
		sqlite3_bind_int64(q, 1, rg_id);
		if (sqlite3_step(q) == SQLITE_ROW) {
			rule_id = sqlite3_column_int64(q, 0);
			group_id = sqlite3_column_int64(q, 1);
			found = 1;
		}
		sqlite3_finalize(q);
		if (!found)
			return fail_with(t, -ENOENT, err, err_len, "no route rule group %lld",
			                 (long long)rg_id);
	}
	mgmt_rule_t r;
	mgmt_group_t g;
	int rc = rule_group_set(t, rule_id, group_id, "deleted = 1", &r, &g, err, err_len);
	return rc < 0 ? rc : rule_group_record(t, &r, &g, "delete", -1, -1, err, err_len);
}

int mgmt_rule_group_release(mgmt_rtx_t *t, int64_t rule_id, int64_t group_id, char *err,
                            size_t err_len)
{
	mgmt_rule_t r;
	mgmt_group_t g;
	int rc = rule_group_set(t, rule_id, group_id, "weight = unreleased_weight", &r, &g, err,
	                        err_len);
	if (rc < 0)
		return rc;
	int64_t w = query_id(t,
	                     "SELECT IFNULL(weight, -1) FROM service_route_rule_group WHERE "
	                     "route_rule_id = ?1 AND group_id = ?2 AND deleted = 0",
	                     "ii", rule_id, group_id);
	return rule_group_record(t, &r, &g, "release", (int)w, (int)w, err, err_len);
}

/* ---- Canary -----------------------------------------------------------------------------------
 */

bool mgmt_ipspec_valid(const char *s, size_t len)
{
	struct route_cidr c;
	return len <= MGMT_MAX_IPSPEC && route_cidr_parse(s, len, &c) == 0;
}

bool mgmt_ipspec_match(const char *spec, const char *ip)
{
	struct route_cidr c;
	uint8_t addr[16];
	return route_cidr_parse(spec, strlen(spec), &c) == 0 &&
	       route_ip_parse(ip, strlen(ip), addr) == 0 && route_cidr_match(&c, addr);
}

/* The whitelist as stored: a JSON array of valid entries, each trimmed. */
static int whitelist_text(mgmt_rtx_t *t, const char *in, char **out, char *err, size_t err_len)
{
	json_error_t je;
	json_t *a = json_loads(in, 0, &je), *v;
	size_t i;
	buf_t b = {0};
	if (!json_is_array(a)) {
		json_decref(a);
		return fail_with(t, -EINVAL, err, err_len,
		                 "ipWhitelist is a list of IPs or CIDR blocks");
	}
	if (json_array_size(a) > MGMT_MAX_WHITELIST) {
		json_decref(a);
		return fail_with(t, -E2BIG, err, err_len, "ipWhitelist has more than %d entries",
		                 MGMT_MAX_WHITELIST);
	}
	json_put_raw(&b, "[");
	json_array_foreach(a, i, v)
	{
		const char *s = json_string_value(v);
		size_t n = s ? json_string_length(v) : 0;
		while (s && n && (*s == ' ' || *s == '\t'))
			s++, n--;
		while (s && n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (!s || !mgmt_ipspec_valid(s, n)) {
			/* The message first: s points into a. */
			int rc =
			    fail_with(t, -EINVAL, err, err_len,
			              "ipWhitelist: \"%.*s\" is not an IP address or CIDR block",
			              s ? (int)(n < 64 ? n : 64) : 1, s ? s : "?");
			json_decref(a);
			buf_free(&b);
			return rc;
		}
		json_put_raw(&b, i ? "," : "");
		json_put_str(&b, s, n);
	}
	json_put_raw(&b, "]");
	json_decref(a);
	if (buf_error(&b)) {
		buf_free(&b);
		return fail_with(t, -ENOMEM, err, err_len, "out of memory");
	}
	*out = b.data;
	return 0;
}

int mgmt_canary_put(mgmt_rtx_t *t, const mgmt_canary_t *c, char *err, size_t err_len)
{
	char *white = NULL;
	int rc = need(t, c->service, "serviceId", err, err_len);
	if (rc < 0 ||
	    (c->whitelist && (rc = whitelist_text(t, c->whitelist, &white, err, err_len)) < 0))
		return rc;
	int64_t enabled = c->enabled ? 1 : 0;
	/* A whitelist not given (NULL) keeps the stored one, or starts empty. */
	rc = put_row(t,
	             "UPDATE canary_config SET ip_whitelist = IFNULL(?2, ip_whitelist), enabled = "
	             "?3, " SET_STAMP " WHERE service_id = ?1 AND deleted = 0",
	             "UPDATE canary_config SET service_id = ?1, ip_whitelist = IFNULL(?2, '[]'), "
	             "enabled = ?3, " REVIVE " WHERE id = (SELECT id FROM canary_config WHERE "
	             "service_id = ?1 AND deleted = 1 ORDER BY id DESC LIMIT 1)",
	             "INSERT INTO canary_config (service_id, ip_whitelist, enabled, " STAMP_COLS
	             ") VALUES (?1, IFNULL(?2, '[]'), ?3, " STAMP_VALUES ")",
	             "tti", c->service, white, enabled);
	if (rc < 0) {
		free(white);
		return fail_store(t, "writing a canary config", err, err_len);
	}
	if ((rc = rtx_touch(t, c->service)) < 0) {
		free(white);
		return fail_with(t, rc, err, err_len, "out of memory");
	}
	rec_t r = {.type = "canary",
	           .target = c->service,
	           .operation = "put",
	           .action = "put",
	           .service = c->service};
	rec_begin(&r);
	rec_str(&r, "enabled", c->enabled ? "true" : "false");
	if (white) {
		json_put_raw(&r.details, ",\"ipWhitelist\":");
		json_put_raw(&r.details, white);
	}
	free(white);
	return rec_write(t, &r, err, err_len);
}

int mgmt_canary_delete(mgmt_rtx_t *t, const char *service, char *err, size_t err_len)
{
	int rc = run(t,
	             "UPDATE canary_config SET deleted = 1, " SET_STAMP
	             " WHERE service_id = ?1 AND deleted = 0",
	             "t", service);
	if (rc < 0)
		return fail_store(t, "deleting a canary config", err, err_len);
	if (rc == 0)
		return fail_with(t, -ENOENT, err, err_len, "no canary config for %s", service);
	if ((rc = rtx_touch(t, service)) < 0)
		return fail_with(t, rc, err, err_len, "out of memory");
	rec_t r = {.type = "canary",
	           .target = service,
	           .operation = "delete",
	           .action = "delete",
	           .service = service};
	rec_begin(&r);
	return rec_write(t, &r, err, err_len);
}

/*
 * audit.c - the audit trail (MANAGEMENT.md §1, §3.2.6): one record per key
 * of every management write, written in the write's own transaction, so a
 * change and its record exist together or not at all.
 *
 * A record says who (operator_id as the request gave it, the token as given
 * when no credential was checked: never logged; and `username`, the user
 * the request authenticated as, store_t.actor),
 * when, what (operationType, targetId, the operation, the action taken),
 * and before/after (details, a JSON object).  Its cluster-wide identity is
 * (origin_node, origin_seq); `id` (logId) is this store's monotonic number.
 * Java's log tables (instance_log, server_log, service_zone_log) are views
 * of these records; the Rust audit endpoints are another view.
 *
 * Queries are newest first, filtered, with limit and offset.  Times are
 * epoch milliseconds inside; mgmt_parse_time takes what clients send.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "artemis/codec.h"
#include "mgmt_int.h"

#define AUDIT_COLUMNS                                                                              \
	"id, origin_node, origin_seq, time_ms, operation_type, target_id, operation, action, "     \
	"complete, operator_id, token, reason, extensions, region_id, service_id, instance_id, "   \
	"server_id, zone_id, details, result, username, group_id, route_rule_id"

void audit_target(const mgmt_key_t *k, char *out, size_t len)
{
	switch (k->kind) {
	case MGMT_INSTANCE:
		snprintf(out, len, "%s/%s/%s", k->region, k->service, k->instance);
		break;
	case MGMT_SERVER:
		snprintf(out, len, "%s/%s", k->region, k->server);
		break;
	default:
		snprintf(out, len, "%s/%s%s%s", k->region, k->zone, k->service[0] ? "/" : "",
		         k->service);
		break;
	}
}

static void put_row(buf_t *b, const mgmt_key_t *k, const op_row_t *r)
{
	if (!r->exists) {
		json_put_raw(b, "null");
		return;
	}
	json_put_raw(b, "{\"createTime\":");
	json_put_u64(b, r->create_ms);
	json_put_raw(b, ",\"operation\":");
	json_put_cstr(b, k->operation);
	json_put_raw(b, ",\"operatorId\":");
	json_put_cstr(b, r->operator_id);
	json_put_raw(b, ",\"updateTime\":");
	json_put_u64(b, r->update_ms);
	json_put_raw(b, "}");
}

int audit_insert(store_t *st, const audit_in_t *in, const mgmt_ctx_t *ctx, store_stamp_t *stamp,
                 char *err, size_t err_len)
{
	sqlite3_stmt *q = store_stmt(
	    st, SQ_AUDIT_PUT,
	    "INSERT INTO audit (origin_node, origin_seq, hlc, seq, time_ms, operation_type, "
	    "target_id, operation, action, complete, operator_id, token, reason, extensions, "
	    "region_id, service_id, instance_id, server_id, zone_id, details, username, group_id, "
	    "route_rule_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
	    "?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)");
	if (!q)
		return store_fail(st, "preparing an audit record", err, err_len);
	const char *texts[] = {in->region, in->service, in->instance, in->server, in->zone};
	sqlite3_bind_text(q, 1, st->node, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, ++stamp->audit_seq);
	sqlite3_bind_int64(q, 3, store_hlc_next(stamp));
	sqlite3_bind_int64(q, 4, stamp->generation);
	sqlite3_bind_int64(q, 5, (sqlite3_int64)stamp->now_ms);
	sqlite3_bind_text(q, 6, in->type, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 7, in->target, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 8, in->operation, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 9, in->action, -1, SQLITE_STATIC);
	if (ctx->complete >= 0)
		sqlite3_bind_int(q, 10, ctx->complete);
	sqlite3_bind_text(q, 11, ctx->operator_id, -1, SQLITE_STATIC);
	if (ctx->token && !st->actor[0]) /* with a credential checked it is the credential */
		sqlite3_bind_text(q, 12, ctx->token, -1, SQLITE_STATIC);
	if (ctx->reason)
		sqlite3_bind_text(q, 13, ctx->reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 14, ctx->extensions ? ctx->extensions : "{}", -1, SQLITE_STATIC);
	for (int i = 0; i < 5; i++)
		if (texts[i])
			sqlite3_bind_text(q, 15 + i, texts[i], -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 20, in->details, -1, SQLITE_STATIC);
	if (st->actor[0])
		sqlite3_bind_text(q, 21, st->actor, -1, SQLITE_STATIC);
	if (in->group_id > 0)
		sqlite3_bind_int64(q, 22, in->group_id);
	if (in->route_rule_id > 0)
		sqlite3_bind_int64(q, 23, in->route_rule_id);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : store_fail(st, "writing an audit record", err, err_len);
}

int audit_write_change(store_t *st, const mgmt_change_t *c, const mgmt_ctx_t *ctx,
                       store_stamp_t *stamp, const op_row_t *before, const op_row_t *after,
                       char *err, size_t err_len)
{
	const mgmt_key_t *k = &c->key;
	char target[MGMT_MAX_REGION + MGMT_MAX_SERVICE + MGMT_MAX_INSTANCE + 8];
	buf_t d = {0};
	audit_target(k, target, sizeof(target));
	json_put_raw(&d, "{\"after\":");
	put_row(&d, k, after);
	json_put_raw(&d, ",\"before\":");
	put_row(&d, k, before);
	json_put_raw(&d, ",\"node\":");
	json_put_cstr(&d, st->node);
	json_put_raw(&d, ",\"surface\":");
	json_put_cstr(&d, ctx->surface ? ctx->surface : "java");
	json_put_raw(&d, "}");
	if (buf_error(&d)) {
		buf_free(&d);
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	audit_in_t in = {
	    .type = model_kind_name(k->kind),
	    .target = target,
	    .operation = k->operation,
	    .action = c->insert ? "insert" : "delete",
	    .region = k->region,
	    .service = k->kind != MGMT_SERVER ? k->service : NULL,
	    .instance = k->kind == MGMT_INSTANCE ? k->instance : NULL,
	    .server = k->kind == MGMT_SERVER ? k->server : NULL,
	    .zone = k->kind == MGMT_ZONE ? k->zone : NULL,
	    .details = d.data,
	};
	int rc = audit_insert(st, &in, ctx, stamp, err, err_len);
	buf_free(&d);
	return rc;
}

int audit_write(store_t *st, const char *type, const char *target, const char *operation,
                const char *action, const char *details, const mgmt_ctx_t *ctx,
                store_stamp_t *stamp, char *err, size_t err_len)
{
	audit_in_t in = {
	    .type = type,
	    .target = target,
	    .operation = operation,
	    .action = action,
	    .details = details,
	};
	return audit_insert(st, &in, ctx, stamp, err, err_len);
}

int audit_write_cleanup(store_t *st, uint64_t before_ms, uint64_t deleted, const mgmt_ctx_t *ctx,
                        store_stamp_t *stamp, char *err, size_t err_len)
{
	char details[128];
	snprintf(details, sizeof(details), "{\"before\":%llu,\"deleted\":%llu,\"surface\":\"%s\"}",
	         (unsigned long long)before_ms, (unsigned long long)deleted,
	         ctx->surface && !strcmp(ctx->surface, "java") ? "java" : "rust");
	audit_in_t in = {
	    .type = "audit",
	    .target = "audit",
	    .operation = "cleanup",
	    .action = "cleanup",
	    .details = details,
	};
	return audit_insert(st, &in, ctx, stamp, err, err_len);
}

/* ---- Queries ---------------------------------------------------------------- */

typedef struct {
	char sql[2048];
	size_t n;
	const char *text[16];
	int ntext;
	int64_t num[6];
	int nnum;
} where_t;

static void where_text(where_t *w, const char *col, const char *v, bool nocase)
{
	if (!v || w->ntext >= 16)
		return;
	w->text[w->ntext++] = v;
	w->n += (size_t)snprintf(w->sql + w->n, sizeof(w->sql) - w->n, " AND %s = ?%d%s", col,
	                         w->ntext, nocase ? " COLLATE NOCASE" : "");
}

static void where_num(where_t *w, const char *expr, int64_t v)
{
	if (w->nnum >= 6)
		return;
	w->num[w->nnum++] = v;
	w->n += (size_t)snprintf(w->sql + w->n, sizeof(w->sql) - w->n, " AND %s ?%d", expr,
	                         100 + w->nnum);
}

static void where_build(where_t *w, const mgmt_audit_filter_t *f)
{
	w->n = 0;
	w->ntext = w->nnum = 0;
	w->n += (size_t)snprintf(w->sql, sizeof(w->sql), " WHERE 1");
	where_text(w, "operation_type", f->type, true);
	where_text(w, "operator_id", f->operator_id, false);
	where_text(w, "username", f->username, true);
	where_text(w, "target_id", f->target, true);
	where_text(w, "operation", f->operation, true);
	where_text(w, "region_id", f->region, true);
	where_text(w, "service_id", f->service, true);
	where_text(w, "instance_id", f->instance, true);
	where_text(w, "server_id", f->server, true);
	where_text(w, "zone_id", f->zone, true);
	if (f->complete >= 0)
		where_num(w, "complete =", f->complete);
	if (f->group_id > 0)
		where_num(w, "group_id =", f->group_id);
	if (f->route_rule_id > 0)
		where_num(w, "route_rule_id =", f->route_rule_id);
	if (f->from_ms)
		where_num(w, "time_ms >=", (int64_t)f->from_ms);
	if (f->to_ms)
		where_num(w, "time_ms <=", (int64_t)f->to_ms);
}

static void where_bind(const where_t *w, sqlite3_stmt *q)
{
	for (int i = 0; i < w->ntext; i++)
		sqlite3_bind_text(q, i + 1, w->text[i], -1, SQLITE_STATIC);
	for (int i = 0; i < w->nnum; i++)
		sqlite3_bind_int64(q, 101 + i, w->num[i]);
}

static const char *col_text(sqlite3_stmt *q, int i)
{
	return (const char *)sqlite3_column_text(q, i);
}

static void fill_record(sqlite3_stmt *q, mgmt_audit_t *r)
{
	r->id = sqlite3_column_int64(q, 0);
	r->origin_node = col_text(q, 1);
	r->origin_seq = sqlite3_column_int64(q, 2);
	r->time_ms = (uint64_t)sqlite3_column_int64(q, 3);
	r->type = col_text(q, 4);
	r->target = col_text(q, 5);
	r->operation = col_text(q, 6);
	r->action = col_text(q, 7);
	r->complete = sqlite3_column_type(q, 8) == SQLITE_NULL ? -1 : sqlite3_column_int(q, 8);
	r->operator_id = col_text(q, 9);
	r->token = col_text(q, 10);
	r->reason = col_text(q, 11);
	r->extensions = col_text(q, 12);
	r->region = col_text(q, 13);
	r->service = col_text(q, 14);
	r->instance = col_text(q, 15);
	r->server = col_text(q, 16);
	r->zone = col_text(q, 17);
	r->details = col_text(q, 18);
	r->result = col_text(q, 19);
	r->username = col_text(q, 20);
	r->group_id = sqlite3_column_int64(q, 21);
	r->route_rule_id = sqlite3_column_int64(q, 22);
}

static int run_records(store_t *st, sqlite3_stmt *q, mgmt_audit_fn fn, void *ctx)
{
	int rc = SQLITE_DONE, r = 0, rows = 0;
	while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		mgmt_audit_t rec;
		fill_record(q, &rec);
		rows++;
		r = fn(ctx, &rec);
	}
	(void)st;
	if (r == 0 && rc != SQLITE_DONE)
		return -EIO;
	return r ? r : rows;
}

int audit_query(store_t *st, const mgmt_audit_filter_t *f, mgmt_audit_fn fn, void *ctx)
{
	where_t w;
	char sql[2400];
	sqlite3_stmt *q = NULL;
	where_build(&w, f);
	snprintf(sql, sizeof(sql),
	         "SELECT " AUDIT_COLUMNS " FROM audit%s ORDER BY time_ms DESC, id DESC LIMIT %lld "
	         "OFFSET %u",
	         w.sql, f->limit ? (long long)f->limit : -1LL, f->offset);
	if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	where_bind(&w, q);
	int rc = run_records(st, q, fn, ctx);
	sqlite3_finalize(q);
	return rc < 0 ? rc : 0;
}

int audit_get(store_t *st, int64_t id, mgmt_audit_fn fn, void *ctx)
{
	sqlite3_stmt *q =
	    store_stmt(st, SQ_AUDIT_GET, "SELECT " AUDIT_COLUMNS " FROM audit WHERE id = ?1");
	if (!q)
		return -EIO;
	sqlite3_bind_int64(q, 1, id);
	int rc = run_records(st, q, fn, ctx);
	sqlite3_reset(q);
	if (rc < 0)
		return rc;
	return rc == 0 ? -ENOENT : 0;
}

/* {"<value>": count, ...} of one GROUP BY. */
static int stats_group(store_t *st, const where_t *w, const char *col, buf_t *out)
{
	char sql[2400];
	sqlite3_stmt *q = NULL;
	snprintf(sql, sizeof(sql),
	         "SELECT %s, COUNT(*) FROM audit%s GROUP BY %s ORDER BY COUNT(*) DESC, %s", col,
	         w->sql, col, col);
	if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	where_bind(w, q);
	json_put_raw(out, "{");
	int rc, first = 1;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *v = col_text(q, 0);
		if (!first)
			json_put_raw(out, ",");
		first = 0;
		json_put_cstr(out, v ? v : "");
		json_put_raw(out, ":");
		json_put_i64(out, sqlite3_column_int64(q, 1));
	}
	json_put_raw(out, "}");
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? buf_error(out) : -EIO;
}

int audit_stats(store_t *st, const mgmt_audit_filter_t *f, buf_t *out)
{
	where_t w;
	char sql[2400];
	sqlite3_stmt *q = NULL;
	where_build(&w, f);
	snprintf(sql, sizeof(sql), "SELECT COUNT(*), MIN(time_ms), MAX(time_ms) FROM audit%s",
	         w.sql);
	if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	where_bind(&w, q);
	if (sqlite3_step(q) != SQLITE_ROW) {
		sqlite3_finalize(q);
		return -EIO;
	}
	json_put_raw(out, "{\"total\":");
	json_put_i64(out, sqlite3_column_int64(q, 0));
	const char *names[2] = {",\"oldestTime\":", ",\"newestTime\":"};
	for (int i = 0; i < 2; i++) {
		json_put_raw(out, names[i]);
		if (sqlite3_column_type(q, 1 + i) == SQLITE_NULL)
			json_put_raw(out, "null");
		else
			json_put_i64(out, sqlite3_column_int64(q, 1 + i));
	}
	sqlite3_finalize(q);
	static const struct {
		const char *key, *col;
	} groups[] = {
	    {",\"byOperationType\":", "operation_type"},
	    {",\"byOperator\":", "operator_id"},
	    {",\"byOperation\":", "operation"},
	    {",\"byResult\":", "result"},
	};
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		json_put_raw(out, groups[i].key);
		int rc = stats_group(st, &w, groups[i].col, out);
		if (rc < 0)
			return rc;
	}
	json_put_raw(out, "}");
	return buf_error(out);
}

int audit_delete_before(store_t *st, uint64_t before_ms, uint64_t *deleted, char *err,
                        size_t err_len)
{
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(st->db, "DELETE FROM audit WHERE time_ms < ?1", -1, &q, NULL) !=
	    SQLITE_OK)
		return store_fail(st, "preparing the cleanup", err, err_len);
	sqlite3_bind_int64(q, 1, (sqlite3_int64)before_ms);
	int rc = sqlite3_step(q);
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE)
		return store_fail(st, "deleting audit records", err, err_len);
	*deleted = (uint64_t)sqlite3_changes(st->db);
	return 0;
}

/* ---- Times ------------------------------------------------------------------ */

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int parse_epoch(const char *s, uint64_t *ms)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	if (v > 100000000000ULL) /* after 1973 in ms, year 5138 in s: milliseconds */
		*ms = v;
	else
		*ms = v * 1000ULL;
	return 0;
}

/* [T| ]hh:mm[:ss[.fff...]] */
static int parse_clock(const char **p, struct tm *tm, int *msec)
{
	const char *s = *p;
	if (digits(&s, 2, &tm->tm_hour) || *s++ != ':' || digits(&s, 2, &tm->tm_min))
		return -EINVAL;
	if (*s == ':') {
		s++;
		if (digits(&s, 2, &tm->tm_sec))
			return -EINVAL;
		if (*s == '.' || *s == ',') {
			int scale = 100;
			s++;
			if (*s < '0' || *s > '9')
				return -EINVAL;
			for (; *s >= '0' && *s <= '9'; s++, scale /= 10)
				*msec += (*s - '0') * scale;
		}
	}
	*p = s;
	return 0;
}

/* Z, +hh:mm, -hhmm, +hh; none = UTC.  *off gets seconds east of UTC. */
static int parse_offset(const char *s, long *off)
{
	int h = 0, m = 0;
	*off = 0;
	if (*s == '\0' || ((*s == 'Z' || *s == 'z') && s[1] == '\0'))
		return 0;
	if (*s != '+' && *s != '-')
		return -EINVAL;
	int sign = *s++ == '-' ? -1 : 1;
	if (digits(&s, 2, &h))
		return -EINVAL;
	if (*s == ':')
		s++;
	if (*s && digits(&s, 2, &m))
		return -EINVAL;
	if (*s || h > 23 || m > 59)
		return -EINVAL;
	*off = sign * (h * 3600L + m * 60L);
	return 0;
}

int mgmt_parse_time(const char *s, uint64_t *ms)
{
	struct tm tm;
	int msec = 0;
	long off = 0;
	if (!s || !*s)
		return -EINVAL;
	if (!strchr(s, '-') || s[0] == '-')
		return parse_epoch(s, ms);
	memset(&tm, 0, sizeof(tm));
	const char *p = s;
	if (digits(&p, 4, &tm.tm_year) || *p++ != '-' || digits(&p, 2, &tm.tm_mon) || *p++ != '-' ||
	    digits(&p, 2, &tm.tm_mday))
		return -EINVAL;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (parse_clock(&p, &tm, &msec))
			return -EINVAL;
	}
	if (parse_offset(p, &off))
		return -EINVAL;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_year < 1970)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	if (t == (time_t)-1 || (long long)t - off < 0)
		return -EINVAL;
	*ms = (uint64_t)((long long)t - off) * 1000ULL + (uint64_t)msec;
	return 0;
}

void mgmt_format_time(uint64_t ms, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000));
}

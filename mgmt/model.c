/*
 * model.c - the operations in force on instances, servers and zones: rows of
 * Java's tables (API.md §5.6), keyed as Java's unique keys.
 *
 * A row is in force while `deleted` is 0.  Removing an operation leaves the
 * row as a tombstone (deleted = 1) with the HLC and origin of the removal,
 * so a replicator can apply removals by last writer wins; putting it in
 * force again revives the row.  Every change sets `seq` to the write's store
 * generation.  Keys compare case-insensitively (COLLATE NOCASE, ASCII, as
 * the registry's InstanceKey); the stored text keeps the case it was first
 * written with.
 *
 * Called by mgmt.c inside its transactions; never commits by itself.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mgmt_int.h"

typedef struct {
	const char *name;  /* operationType of its audit records */
	const char *table; /* Java's table */
	const char *cols[3];
	int ncols;
} kind_desc_t;

static const kind_desc_t kinds[MGMT_KINDS] = {
    [MGMT_INSTANCE] = {"instance", "instance", {"region_id", "service_id", "instance_id"}, 3},
    [MGMT_SERVER] = {"server", "server", {"region_id", "server_id", NULL}, 2},
    [MGMT_ZONE] = {"zone", "service_zone", {"region_id", "zone_id", "service_id"}, 3},
};

const char *model_kind_name(mgmt_kind_t kind)
{
	return kind < MGMT_KINDS ? kinds[kind].name : "?";
}

/* The key's values in the order of its kind's columns. */
static int key_values(const mgmt_key_t *k, const char *vals[3])
{
	switch (k->kind) {
	case MGMT_INSTANCE:
		vals[0] = k->region, vals[1] = k->service, vals[2] = k->instance;
		return 3;
	case MGMT_SERVER:
		vals[0] = k->region, vals[1] = k->server, vals[2] = NULL;
		return 2;
	case MGMT_ZONE:
		vals[0] = k->region, vals[1] = k->zone, vals[2] = k->service;
		return 3;
	default:
		return -EINVAL;
	}
}

/* "c1 = ?1 AND c2 = ?2 ..." */
static void key_where(const kind_desc_t *d, char *out, size_t len)
{
	size_t n = 0;
	out[0] = '\0';
	for (int i = 0; i < d->ncols; i++)
		n += (size_t)snprintf(out + n, len - n, "%s%s = ?%d", i ? " AND " : "", d->cols[i],
		                      i + 1);
}

static void key_cols(const kind_desc_t *d, char *out, size_t len)
{
	size_t n = 0;
	out[0] = '\0';
	for (int i = 0; i < d->ncols; i++)
		n += (size_t)snprintf(out + n, len - n, "%s%s", i ? ", " : "", d->cols[i]);
}

/* A statement of a kind, prepared once per connection. */
static sqlite3_stmt *kind_stmt(store_t *st, int base, const mgmt_key_t *k)
{
	const kind_desc_t *d = &kinds[k->kind];
	char where[160], cols[96], sql[1024], params[32];
	key_where(d, where, sizeof(where));
	key_cols(d, cols, sizeof(cols));
	snprintf(params, sizeof(params), d->ncols == 3 ? "?1, ?2, ?3" : "?1, ?2");
	switch (base) {
	case SQ_OP_PUT:
		snprintf(
		    sql, sizeof(sql),
		    "INSERT INTO %s (%s, operation, operator_id, token, create_time, "
		    "update_time, deleted, hlc, origin_node, seq) VALUES (%s, ?10, ?11, ?12, "
		    "?13, ?13, 0, ?14, ?15, ?16) ON CONFLICT (%s, operation) DO UPDATE SET "
		    "operator_id = excluded.operator_id, token = excluded.token, "
		    "create_time = CASE WHEN deleted THEN excluded.create_time ELSE "
		    "create_time END, update_time = excluded.update_time, deleted = 0, "
		    "hlc = excluded.hlc, origin_node = excluded.origin_node, seq = excluded.seq",
		    d->table, cols, params, cols);
		break;
	case SQ_OP_DEL:
		snprintf(
		    sql, sizeof(sql),
		    "UPDATE %s SET deleted = 1, operator_id = ?11, token = ?12, update_time = "
		    "?13, hlc = ?14, origin_node = ?15, seq = ?16 WHERE %s AND operation = ?10 "
		    "AND deleted = 0",
		    d->table, where);
		break;
	case SQ_OP_GET:
		snprintf(sql, sizeof(sql),
		         "SELECT operator_id, create_time, update_time FROM %s WHERE %s AND "
		         "operation = ?10 AND deleted = 0",
		         d->table, where);
		break;
	default: /* SQ_OP_LIVE */
		snprintf(sql, sizeof(sql),
		         "SELECT EXISTS (SELECT 1 FROM %s WHERE %s AND deleted = 0)", d->table,
		         where);
		break;
	}
	sqlite3_stmt *q = store_stmt(st, base + (int)k->kind, sql);
	if (!q)
		return NULL;
	const char *vals[3];
	int n = key_values(k, vals);
	for (int i = 0; i < n; i++)
		sqlite3_bind_text(q, i + 1, vals[i], -1, SQLITE_STATIC);
	return q;
}

static int read_row(store_t *st, const mgmt_change_t *c, op_row_t *row)
{
	memset(row, 0, sizeof(*row));
	sqlite3_stmt *q = kind_stmt(st, SQ_OP_GET, &c->key);
	if (!q)
		return -EIO;
	sqlite3_bind_text(q, 10, c->key.operation, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		row->exists = true;
		snprintf(row->operator_id, sizeof(row->operator_id), "%s",
		         (const char *)sqlite3_column_text(q, 0));
		row->create_ms = (uint64_t)sqlite3_column_int64(q, 1);
		row->update_ms = (uint64_t)sqlite3_column_int64(q, 2);
	}
	sqlite3_reset(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

int model_apply(store_t *st, const mgmt_change_t *c, const mgmt_ctx_t *ctx, store_stamp_t *stamp,
                op_row_t *before, op_row_t *after, char *err, size_t err_len)
{
	if (c->key.kind >= MGMT_KINDS)
		return -EINVAL;
	if (read_row(st, c, before) < 0)
		return store_fail(st, "reading an operation", err, err_len);
	sqlite3_stmt *q = kind_stmt(st, c->insert ? SQ_OP_PUT : SQ_OP_DEL, &c->key);
	if (!q)
		return store_fail(st, "preparing an operation", err, err_len);
	sqlite3_bind_text(q, 10, c->key.operation, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 11, ctx->operator_id, -1, SQLITE_STATIC);
	if (ctx->token)
		sqlite3_bind_text(q, 12, ctx->token, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 13, (sqlite3_int64)stamp->now_ms);
	store_bind_origin(st, stamp, q, 14);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return store_fail(st, c->insert ? "writing an operation" : "removing an operation",
		                  err, err_len);
	if (read_row(st, c, after) < 0)
		return store_fail(st, "reading an operation", err, err_len);
	return 0;
}

int model_target_live(store_t *st, const mgmt_key_t *k, bool *live, char *err, size_t err_len)
{
	sqlite3_stmt *q = kind_stmt(st, SQ_OP_LIVE, k);
	if (!q)
		return store_fail(st, "preparing a query", err, err_len);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		*live = sqlite3_column_int(q, 0) != 0;
	sqlite3_reset(q);
	return rc == SQLITE_ROW ? 0 : store_fail(st, "reading operations", err, err_len);
}

static void column(sqlite3_stmt *q, int i, char *dst, size_t size)
{
	const char *v = (const char *)sqlite3_column_text(q, i);
	snprintf(dst, size, "%s", v ? v : "");
}

/* The key of a row whose first columns are its kind's key columns. */
static void fill_key(mgmt_kind_t kind, sqlite3_stmt *q, mgmt_key_t *k)
{
	memset(k, 0, sizeof(*k));
	k->kind = kind;
	column(q, 0, k->region, sizeof(k->region));
	if (kind == MGMT_INSTANCE) {
		column(q, 1, k->service, sizeof(k->service));
		column(q, 2, k->instance, sizeof(k->instance));
	} else if (kind == MGMT_SERVER) {
		column(q, 1, k->server, sizeof(k->server));
	} else {
		column(q, 1, k->zone, sizeof(k->zone));
		column(q, 2, k->service, sizeof(k->service));
	}
}

int model_targets(store_t *st, int (*fn)(void *ctx, const mgmt_key_t *k), void *ctx, char *err,
                  size_t err_len)
{
	for (int kind = 0; kind < MGMT_KINDS; kind++) {
		const kind_desc_t *d = &kinds[kind];
		char cols[96], sql[256];
		sqlite3_stmt *q = NULL;
		key_cols(d, cols, sizeof(cols));
		snprintf(sql, sizeof(sql), "SELECT DISTINCT %s FROM %s WHERE deleted = 0", cols,
		         d->table);
		if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK)
			return store_fail(st, "listing operations", err, err_len);
		int rc;
		while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
			mgmt_key_t k;
			fill_key((mgmt_kind_t)kind, q, &k);
			int r = fn(ctx, &k);
			if (r) {
				sqlite3_finalize(q);
				return r;
			}
		}
		sqlite3_finalize(q);
		if (rc != SQLITE_DONE)
			return store_fail(st, "listing operations", err, err_len);
	}
	return 0;
}

/* The filter's value for column `col` of its kind, or NULL. */
static const char *filter_value(const mgmt_op_filter_t *f, const char *col)
{
	if (!strcmp(col, "region_id"))
		return f->region;
	if (!strcmp(col, "service_id"))
		return f->service;
	if (!strcmp(col, "instance_id"))
		return f->instance;
	if (!strcmp(col, "server_id"))
		return f->server;
	return f->zone;
}

int model_list(store_t *st, const mgmt_op_filter_t *f, mgmt_op_fn fn, void *ctx)
{
	if (f->kind >= MGMT_KINDS)
		return -EINVAL;
	const kind_desc_t *d = &kinds[f->kind];
	char cols[96], sql[1024];
	const char *binds[5];
	int nb = 0;
	key_cols(d, cols, sizeof(cols));
	size_t n = (size_t)snprintf(sql, sizeof(sql),
	                            "SELECT %s, operation, operator_id, token, create_time, "
	                            "update_time FROM %s WHERE deleted = 0",
	                            cols, d->table);
	for (int i = 0; i < d->ncols; i++) {
		const char *v = filter_value(f, d->cols[i]);
		if (!v)
			continue;
		binds[nb++] = v;
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND %s = ?%d%s", d->cols[i], nb,
		                      i == 0 && f->region_exact ? " COLLATE BINARY" : "");
	}
	if (f->operation) {
		binds[nb++] = f->operation;
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND operation = ?%d", nb);
	}
	snprintf(sql + n, sizeof(sql) - n, " ORDER BY %s, operation", cols);
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	for (int i = 0; i < nb; i++)
		sqlite3_bind_text(q, i + 1, binds[i], -1, SQLITE_STATIC);
	int rc = SQLITE_DONE, r = 0;
	while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		mgmt_op_t op;
		memset(&op, 0, sizeof(op));
		fill_key(f->kind, q, &op.key);
		const char *opn = (const char *)sqlite3_column_text(q, d->ncols);
		snprintf(op.key.operation, sizeof(op.key.operation), "%s", opn ? opn : "");
		op.operator_id = (const char *)sqlite3_column_text(q, d->ncols + 1);
		op.token = (const char *)sqlite3_column_text(q, d->ncols + 2);
		op.create_ms = (uint64_t)sqlite3_column_int64(q, d->ncols + 3);
		op.update_ms = (uint64_t)sqlite3_column_int64(q, d->ncols + 4);
		r = fn(ctx, &op);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = -EIO;
	sqlite3_finalize(q);
	return r;
}

/*
 * route_read.c - reads of the routing rows (include/artemis/mgmt.h): lists
 * with filters, in id order, and lookups by id or natural key.  Live rows
 * only (tombstones are the replicator's business).
 *
 * Called by the management handlers, on this process's connection: inside
 * a routing transaction they see its writes.  Filters are bound as
 * parameters; a NULL (or 0) parameter matches anything.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route_int.h"

static void col(sqlite3_stmt *q, int i, char *dst, size_t size)
{
	const char *v = (const char *)sqlite3_column_text(q, i);
	snprintf(dst, size, "%s", v ? v : "");
}

static void bind_opt(sqlite3_stmt *q, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC);
}

/* Step q through its rows with fill + fn; finalize.  -EIO on a store
 * error, fn's first non-zero value, or 0. */
typedef int (*row_fn)(sqlite3_stmt *q, void *fn, void *ctx);
static int each_row(sqlite3_stmt *q, row_fn row, void *fn, void *ctx)
{
	int rc, r = 0;
	while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW)
		r = row(q, fn, ctx);
	if (r == 0 && rc != SQLITE_DONE)
		r = -EIO;
	sqlite3_finalize(q);
	return r;
}

static sqlite3_stmt *prep(mgmt_t *m, const char *sql)
{
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(m->st.db, sql, -1, &q, NULL) != SQLITE_OK)
		return NULL;
	return q;
}

/* The first row into out through row(), or -ENOENT. */
typedef struct {
	void *out;
	size_t size;
	int n;
} first_t;

static int copy_first(void *ctx, const void *item)
{
	first_t *f = ctx;
	if (f->n++ == 0)
		memcpy(f->out, item, f->size);
	return 1;
}

/* ---- Groups -------------------------------------------------------------------- */

#define GROUP_COLS                                                                                 \
	"id, service_id, region_id, zone_id, name, app_id, description, status, group_type, "      \
	"operator_id, create_time, update_time"

static int group_row(sqlite3_stmt *q, void *fn, void *ctx)
{
	mgmt_group_t g;
	g.id = sqlite3_column_int64(q, 0);
	col(q, 1, g.service, sizeof(g.service));
	col(q, 2, g.region, sizeof(g.region));
	col(q, 3, g.zone, sizeof(g.zone));
	col(q, 4, g.name, sizeof(g.name));
	col(q, 5, g.app_id, sizeof(g.app_id));
	col(q, 6, g.description, sizeof(g.description));
	col(q, 7, g.status, sizeof(g.status));
	col(q, 8, g.type, sizeof(g.type));
	col(q, 9, g.operator_id, sizeof(g.operator_id));
	g.create_ms = (uint64_t)sqlite3_column_int64(q, 10);
	g.update_ms = (uint64_t)sqlite3_column_int64(q, 11);
	return ((mgmt_group_fn)fn)(ctx, &g);
}

int mgmt_groups(mgmt_t *m, const mgmt_group_filter_t *f, mgmt_group_fn fn, void *ctx)
{
	sqlite3_stmt *q = prep(m, "SELECT " GROUP_COLS " FROM service_group WHERE deleted = 0 AND "
	                          "(?1 = 0 OR id = ?1) AND (?2 IS NULL OR service_id = ?2) AND "
	                          "(?3 IS NULL OR region_id = ?3) AND (?4 IS NULL OR zone_id = ?4) "
	                          "AND (?5 IS NULL OR name = ?5) AND (?6 IS NULL OR app_id = ?6 "
	                          "COLLATE NOCASE) AND (?7 IS NULL OR status = ?7 COLLATE NOCASE) "
	                          "ORDER BY id");
	if (!q)
		return -EIO;
	sqlite3_bind_int64(q, 1, f ? f->id : 0);
	if (f) {
		bind_opt(q, 2, f->service);
		bind_opt(q, 3, f->region);
		bind_opt(q, 4, f->zone);
		bind_opt(q, 5, f->name);
		bind_opt(q, 6, f->app_id);
		bind_opt(q, 7, f->status);
	}
	return each_row(q, group_row, (void *)fn, ctx);
}

static int first_group_fn(void *ctx, const mgmt_group_t *g)
{
	return copy_first(ctx, g);
}

/* The first group f matches into *out (untouched when none does: f may
 * point into it). */
static int first_group(mgmt_t *m, const mgmt_group_filter_t *f, mgmt_group_t *out)
{
	first_t one = {.out = out, .size = sizeof(*out)};
	int rc = mgmt_groups(m, f, first_group_fn, &one);
	if (rc < 0)
		return rc;
	return one.n ? 0 : -ENOENT;
}

int mgmt_group_get(mgmt_t *m, int64_t id, mgmt_group_t *out)
{
	mgmt_group_filter_t f = {.id = id};
	if (id <= 0)
		return -ENOENT;
	return first_group(m, &f, out);
}

int mgmt_group_find(mgmt_t *m, const char *service, const char *region, const char *zone,
                    const char *name, mgmt_group_t *out)
{
	mgmt_group_filter_t f = {.service = service, .region = region, .zone = zone, .name = name};
	if (!service || !region || !zone || !name)
		return -ENOENT;
	return first_group(m, &f, out);
}

typedef struct {
	mgmt_group_t *out;
	int n;
} by_name_t;

static int by_name(void *ctx, const mgmt_group_t *g)
{
	by_name_t *b = ctx;
	if (b->n++ == 0)
		*b->out = *g;
	return 0;
}

int mgmt_group_by_name(mgmt_t *m, const char *service, const char *name, mgmt_group_t *out)
{
	mgmt_group_filter_t f = {.service = service, .name = name};
	by_name_t b = {out, 0};
	int rc = mgmt_groups(m, &f, by_name, &b);
	if (rc < 0)
		return rc;
	return b.n == 0 ? -ENOENT : b.n > 1 ? -EEXIST : 0;
}

/* ---- Tags, group instances, group operations --------------------------------------- */

static int tag_row(sqlite3_stmt *q, void *fn, void *ctx)
{
	mgmt_tag_t t;
	t.id = sqlite3_column_int64(q, 0);
	t.group_id = sqlite3_column_int64(q, 1);
	col(q, 2, t.key, sizeof(t.key));
	col(q, 3, t.value, sizeof(t.value));
	return ((mgmt_tag_fn)fn)(ctx, &t);
}

int mgmt_tags(mgmt_t *m, int64_t group_id, const char *key, mgmt_tag_fn fn, void *ctx)
{
	sqlite3_stmt *q =
	    prep(m, "SELECT t.id, t.group_id, t.tag, t.value FROM service_group_tag t "
	            "JOIN service_group g ON g.id = t.group_id AND g.deleted = 0 "
	            "WHERE t.deleted = 0 AND (?1 = 0 OR t.group_id = ?1) AND "
	            "(?2 IS NULL OR t.tag = ?2) ORDER BY t.group_id, t.id");
	if (!q)
		return -EIO;
	sqlite3_bind_int64(q, 1, group_id);
	bind_opt(q, 2, key);
	return each_row(q, tag_row, (void *)fn, ctx);
}

static int binding_row(sqlite3_stmt *q, void *fn, void *ctx)
{
	mgmt_binding_t b;
	b.id = sqlite3_column_int64(q, 0);
	b.group_id = sqlite3_column_int64(q, 1);
	col(q, 2, b.instance, sizeof(b.instance));
	col(q, 3, b.region, sizeof(b.region));
	col(q, 4, b.zone, sizeof(b.zone));
	col(q, 5, b.binding, sizeof(b.binding));
	col(q, 6, b.operator_id, sizeof(b.operator_id));
	b.create_ms = (uint64_t)sqlite3_column_int64(q, 7);
	return ((mgmt_binding_fn)fn)(ctx, &b);
}

int mgmt_bindings(mgmt_t *m, int64_t group_id, const char *instance, mgmt_binding_fn fn, void *ctx)
{
	sqlite3_stmt *q =
	    prep(m, "SELECT b.id, b.group_id, b.instance_id, b.region_id, b.zone_id, "
	            "b.binding_type, b.operator_id, b.create_time FROM "
	            "service_group_instance b JOIN service_group g ON g.id = "
	            "b.group_id AND g.deleted = 0 WHERE b.deleted = 0 AND (?1 = 0 OR "
	            "b.group_id = ?1) AND (?2 IS NULL OR b.instance_id = ?2) ORDER BY "
	            "b.id");
	if (!q)
		return -EIO;
	sqlite3_bind_int64(q, 1, group_id);
	bind_opt(q, 2, instance);
	return each_row(q, binding_row, (void *)fn, ctx);
}

static int group_op_row(sqlite3_stmt *q, void *fn, void *ctx)
{
	mgmt_group_op_t o;
	o.group_id = sqlite3_column_int64(q, 0);
	col(q, 1, o.operation, sizeof(o.operation));
	col(q, 2, o.operator_id, sizeof(o.operator_id));
	o.create_ms = (uint64_t)sqlite3_column_int64(q, 3);
	o.update_ms = (uint64_t)sqlite3_column_int64(q, 4);
	return ((mgmt_group_op_fn)fn)(ctx, &o);
}

int mgmt_group_ops(mgmt_t *m, int64_t group_id, mgmt_group_op_fn fn, void *ctx)
{
	sqlite3_stmt *q =
	    prep(m, "SELECT o.group_id, o.operation, o.operator_id, o.create_time, "
	            "o.update_time FROM service_group_operation o JOIN service_group g "
	            "ON g.id = o.group_id AND g.deleted = 0 WHERE o.deleted = 0 AND "
	            "(?1 = 0 OR o.group_id = ?1) ORDER BY o.group_id, o.id");
	if (!q)
		return -EIO;
	sqlite3_bind_int64(q, 1, group_id);
	return each_row(q, group_op_row, (void *)fn, ctx);
}

/* ---- Logical instances ------------------------------------------------------------------- */

static int logic_row(sqlite3_stmt *q, void *fn, void *ctx)
{
	mgmt_logic_t *l = malloc(sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->id = sqlite3_column_int64(q, 0);
	col(q, 1, l->service, sizeof(l->service));
	col(q, 2, l->instance, sizeof(l->instance));
	col(q, 3, l->ip, sizeof(l->ip));
	col(q, 4, l->machine, sizeof(l->machine));
	col(q, 5, l->metadata, sizeof(l->metadata));
	l->port = sqlite3_column_int(q, 6);
	col(q, 7, l->protocol, sizeof(l->protocol));
	col(q, 8, l->region, sizeof(l->region));
	col(q, 9, l->zone, sizeof(l->zone));
	col(q, 10, l->group, sizeof(l->group));
	col(q, 11, l->health, sizeof(l->health));
	col(q, 12, l->url, sizeof(l->url));
	col(q, 13, l->description, sizeof(l->description));
	col(q, 14, l->operator_id, sizeof(l->operator_id));
	l->create_ms = (uint64_t)sqlite3_column_int64(q, 15);
	l->update_ms = (uint64_t)sqlite3_column_int64(q, 16);
	int rc = ((mgmt_logic_fn)fn)(ctx, l);
	free(l);
	return rc;
}

int mgmt_logics(mgmt_t *m, int64_t id, const char *service, const char *instance, mgmt_logic_fn fn,
                void *ctx)
{
	sqlite3_stmt *q =
	    prep(m, "SELECT id, service_id, instance_id, ip, machine_name, metadata, "
	            "port, protocol, region_id, zone_id, group_id, health_check_url, "
	            "url, description, operator_id, create_time, update_time FROM "
	            "service_instance WHERE deleted = 0 AND (?1 = 0 OR id = ?1) AND "
	            "(?2 IS NULL OR service_id = ?2) AND (?3 IS NULL OR instance_id = "
	            "?3) ORDER BY id");
	if (!q)
		return -EIO;
	sqlite3_bind_int64(q, 1, id);
	bind_opt(q, 2, service);
	bind_opt(q, 3, instance);
	return each_row(q, logic_row, (void *)fn, ctx);
}

/* ---- Rules -------------------------------------------------------------------------------- */

static int rule_row(sqlite3_stmt *q, void *fn, void *ctx)
{
	mgmt_rule_t r;
	r.id = sqlite3_column_int64(q, 0);
	col(q, 1, r.route_id, sizeof(r.route_id));
	col(q, 2, r.service, sizeof(r.service));
	col(q, 3, r.name, sizeof(r.name));
	col(q, 4, r.description, sizeof(r.description));
	col(q, 5, r.status, sizeof(r.status));
	col(q, 6, r.strategy, sizeof(r.strategy));
	col(q, 7, r.operator_id, sizeof(r.operator_id));
	r.create_ms = (uint64_t)sqlite3_column_int64(q, 8);
	r.update_ms = (uint64_t)sqlite3_column_int64(q, 9);
	return ((mgmt_rule_fn)fn)(ctx, &r);
}

int mgmt_rules(mgmt_t *m, const mgmt_rule_filter_t *f, mgmt_rule_fn fn, void *ctx)
{
	sqlite3_stmt *q =
	    prep(m, "SELECT id, route_id, service_id, name, description, status, "
	            "strategy, operator_id, create_time, update_time FROM "
	            "service_route_rule WHERE deleted = 0 AND (?1 = 0 OR id = ?1) AND "
	            "(?2 IS NULL OR route_id = ?2) AND (?3 IS NULL OR service_id = ?3) "
	            "AND (?4 IS NULL OR name = ?4) AND (?5 IS NULL OR status = ?5 "
	            "COLLATE NOCASE) ORDER BY id");
	if (!q)
		return -EIO;
	sqlite3_bind_int64(q, 1, f ? f->id : 0);
	if (f) {
		bind_opt(q, 2, f->route_id);
		bind_opt(q, 3, f->service);
		bind_opt(q, 4, f->name);
		bind_opt(q, 5, f->status);
	}
	return each_row(q, rule_row, (void *)fn, ctx);
}

static int first_rule_fn(void *ctx, const mgmt_rule_t *r)
{
	return copy_first(ctx, r);
}

/* The first rule f matches into *out (untouched when none does: f may
 * point into it). */
static int first_rule(mgmt_t *m, const mgmt_rule_filter_t *f, mgmt_rule_t *out)
{
	first_t one = {.out = out, .size = sizeof(*out)};
	int rc = mgmt_rules(m, f, first_rule_fn, &one);
	if (rc < 0)
		return rc;
	return one.n ? 0 : -ENOENT;
}

int route_rule_by_id(mgmt_t *m, int64_t id, mgmt_rule_t *out)
{
	mgmt_rule_filter_t f = {.id = id};
	return id > 0 ? first_rule(m, &f, out) : -ENOENT;
}

int mgmt_rule_get(mgmt_t *m, const char *route_id, mgmt_rule_t *out)
{
	mgmt_rule_filter_t f = {.route_id = route_id};
	int rc = first_rule(m, &f, out);
	if (rc != -ENOENT || !route_id || !*route_id ||
	    strspn(route_id, "0123456789") != strlen(route_id) || strlen(route_id) > 18)
		return rc;
	return route_rule_by_id(m, strtoll(route_id, NULL, 10), out);
}

static int rule_group_row(sqlite3_stmt *q, void *fn, void *ctx)
{
	mgmt_rule_group_t rg;
	rg.id = sqlite3_column_int64(q, 0);
	rg.rule_id = sqlite3_column_int64(q, 1);
	rg.group_id = sqlite3_column_int64(q, 2);
	rg.weight = sqlite3_column_type(q, 3) == SQLITE_NULL ? -1 : sqlite3_column_int(q, 3);
	rg.unreleased_weight =
	    sqlite3_column_type(q, 4) == SQLITE_NULL ? -1 : sqlite3_column_int(q, 4);
	col(q, 5, rg.region, sizeof(rg.region));
	col(q, 6, rg.zone, sizeof(rg.zone));
	rg.create_ms = (uint64_t)sqlite3_column_int64(q, 7);
	rg.update_ms = (uint64_t)sqlite3_column_int64(q, 8);
	return ((mgmt_rule_group_fn)fn)(ctx, &rg);
}

int mgmt_rule_groups(mgmt_t *m, int64_t id, int64_t rule_id, int64_t group_id,
                     mgmt_rule_group_fn fn, void *ctx)
{
	sqlite3_stmt *q =
	    prep(m, "SELECT x.id, x.route_rule_id, x.group_id, x.weight, "
	            "x.unreleased_weight, x.region_id, x.zone_id, x.create_time, "
	            "x.update_time FROM service_route_rule_group x JOIN "
	            "service_route_rule r ON r.id = x.route_rule_id AND r.deleted = 0 "
	            "JOIN service_group g ON g.id = x.group_id AND g.deleted = 0 WHERE "
	            "x.deleted = 0 AND (?1 = 0 OR x.id = ?1) AND (?2 = 0 OR "
	            "x.route_rule_id = ?2) AND (?3 = 0 OR x.group_id = ?3) ORDER BY "
	            "x.id");
	if (!q)
		return -EIO;
	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int64(q, 2, rule_id);
	sqlite3_bind_int64(q, 3, group_id);
	return each_row(q, rule_group_row, (void *)fn, ctx);
}

/* ---- Canary --------------------------------------------------------------------------------- */

static int canary_row(sqlite3_stmt *q, void *fn, void *ctx)
{
	mgmt_canary_t c;
	col(q, 0, c.service, sizeof(c.service));
	c.whitelist = (char *)sqlite3_column_text(q, 1);
	c.enabled = sqlite3_column_int(q, 2) != 0;
	col(q, 3, c.operator_id, sizeof(c.operator_id));
	c.create_ms = (uint64_t)sqlite3_column_int64(q, 4);
	c.update_ms = (uint64_t)sqlite3_column_int64(q, 5);
	return ((mgmt_canary_fn)fn)(ctx, &c);
}

int mgmt_canaries(mgmt_t *m, const char *service, mgmt_canary_fn fn, void *ctx)
{
	sqlite3_stmt *q =
	    prep(m, "SELECT service_id, ip_whitelist, enabled, operator_id, "
	            "create_time, update_time FROM canary_config WHERE deleted = 0 AND "
	            "(?1 IS NULL OR service_id = ?1) ORDER BY service_id");
	if (!q)
		return -EIO;
	bind_opt(q, 1, service);
	return each_row(q, canary_row, (void *)fn, ctx);
}

/* ---- Members -------------------------------------------------------------------------------- */

typedef struct {
	uint64_t group_tag;
	uint64_t *binds;
	size_t n, cap;
	shm_instance_fn fn;
	void *ctx;
} members_t;

static int member_bind(void *ctx, const mgmt_binding_t *b)
{
	members_t *mb = ctx;
	(void)b;
	if (mb->n == mb->cap) {
		size_t cap = mb->cap ? mb->cap * 2 : 16;
		uint64_t *v = realloc(mb->binds, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		mb->binds = v;
		mb->cap = cap;
	}
	return 0;
}

static int member_walk(void *ctx, const shm_instance_view_t *v, const char *json, size_t len)
{
	members_t *mb = ctx;
	bool in = v->tags[SHM_TAG_GROUP] == mb->group_tag;
	for (size_t i = 0; !in && i < mb->n; i++)
		in = v->tags[SHM_TAG_INSTANCE] == mb->binds[i];
	return in ? mb->fn(mb->ctx, v, json, len) : 0;
}

typedef struct {
	members_t *mb;
	const mgmt_group_t *g;
	const shm_t *shm;
} bind_tags_t;

static int bind_tag(void *ctx, const mgmt_binding_t *b)
{
	bind_tags_t *bt = ctx;
	int rc = member_bind(bt->mb, b);
	if (rc < 0)
		return rc;
	const char *region = b->region[0] ? b->region : bt->g->region;
	shm_str_t p[3] = {{region, strlen(region)},
	                  {bt->g->service, strlen(bt->g->service)},
	                  {b->instance, strlen(b->instance)}};
	bt->mb->binds[bt->mb->n++] = shm_tag(bt->shm, SHM_TAG_INSTANCE, p, 3);
	return 0;
}

int mgmt_group_members(mgmt_t *m, const mgmt_group_t *g, shm_instance_fn fn, void *ctx)
{
	members_t mb = {.fn = fn, .ctx = ctx};
	bind_tags_t bt = {&mb, g, m->shm};
	shm_str_t p[4] = {{g->service, strlen(g->service)},
	                  {g->region, strlen(g->region)},
	                  {g->zone, strlen(g->zone)},
	                  {g->name, strlen(g->name)}};
	mb.group_tag = shm_tag(m->shm, SHM_TAG_GROUP, p, 4);
	int rc = mgmt_bindings(m, g->id, NULL, bind_tag, &bt);
	if (rc == 0) {
		shm_str_t svc = {g->service, strlen(g->service)};
		rc = shm_instances_foreach(m->shm, &svc, 0, member_walk, &mb);
	}
	free(mb.binds);
	return rc;
}

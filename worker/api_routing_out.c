/*
 * api_routing_out.c - the routing answers' JSON, and what the routing
 * handlers share: the start and the end of a routing write, the failure
 * mapping, the group a path names.
 *
 * Rust shapes (MANAGEMENT.md §3.2.3-§3.2.5) carry the console's names
 * beside them (§3.3): `id`, `instance_count`, `created_at`; `status`,
 * `strategy` and `groupType` are plain strings, and their object forms
 * ({"status":..}, {"strategy":"WEIGHT_ROUND_ROBIN"}, {"type":..}) sit beside
 * them as statusInfo, strategyInfo and groupTypeInfo.  Times are epoch
 * seconds on the Rust surface, milliseconds on Java's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "api_routing.h"
#include "artemis/codec.h"

/* ---- Handlers' plumbing -------------------------------------------------------------- */

void api_rt_fail(api_mgmt_req_t *r, int rc, const char *err)
{
	const char *msg = err && *err ? err : strerror(-rc);
	if (rc == -EEXIST && r->style == MGMT_STYLE_REST)
		api_mgmt_fail(r, API_CONFLICT, "%s", msg);
	else if (rc == -EEXIST || rc == -EXDEV || rc == -E2BIG || rc == -EINVAL ||
	         rc == -ENAMETOOLONG || rc == -ECANCELED)
		api_mgmt_fail(r, API_BAD_REQUEST, "%s", msg);
	else if (rc == -ENOENT)
		api_mgmt_fail(r, API_DATA_NOT_FOUND, "%s", msg);
	else if (rc == -ENOBUFS)
		api_mgmt_fail(r, API_UNAVAILABLE, "%s", msg);
	else
		api_mgmt_fail(r, API_INTERNAL_ERROR, "%s", msg);
}

bool api_rt_begin(api_mgmt_req_t *r, api_mgmt_ctx_t *c, const char *surface, mgmt_rtx_t **t)
{
	char err[MGMT_MAX_ERR];
	int rc;

	if (!api_mgmt_req_ctx(r, c, surface))
		return false;
	/* The Rust surface's callers (its console among them) name no operator
	 * on every call: the token's user is the operator (mgmt_rtx_begin), and
	 * without access control the request is recorded as "anonymous". */
	if (!c->operator_id[0] && !strcmp(surface, "rust") && !api_principal()->authenticated)
		strcpy(c->operator_id, "anonymous");
	c->ctx.surface = surface;
	err[0] = '\0';
	if ((rc = mgmt_rtx_begin(r->m, &c->ctx, t, err, sizeof(err))) < 0) {
		api_rt_fail(r, rc, err);
		return false;
	}
	return true;
}

bool api_rt_finish(api_mgmt_req_t *r, mgmt_rtx_t *t, int rc, const char *err)
{
	if (rc < 0) {
		mgmt_rtx_abort(t);
		api_rt_fail(r, rc, err);
		return false;
	}
	return api_rt_commit(r, t);
}

bool api_rt_commit(api_mgmt_req_t *r, mgmt_rtx_t *t)
{
	char err[MGMT_MAX_ERR * 2] = "";
	int rc = mgmt_rtx_commit(t, err, sizeof(err));
	if (rc < 0) {
		api_rt_fail(r, rc, err);
		return false;
	}
	return true;
}

int api_rt_path_group(api_mgmt_req_t *r, const char *param, mgmt_group_t *g)
{
	mgmt_group_t key;
	const char *v = api_param(param);
	int rc;
	if (!v || api_rt_parse_group_key(v, &key) < 0) {
		api_mgmt_fail(r, API_BAD_REQUEST,
		              "a group is its numeric groupId or serviceId:regionId:zoneId:name");
		return -EINVAL;
	}
	rc = key.id ? mgmt_group_get(r->m, key.id, g)
	            : mgmt_group_find(r->m, key.service, key.region, key.zone, key.name, g);
	if (rc == -ENOENT)
		api_mgmt_fail(r, API_DATA_NOT_FOUND, "no group %s", v);
	else if (rc < 0)
		api_rt_fail(r, rc, NULL);
	return rc;
}

/* ---- Groups ----------------------------------------------------------------------------- */

typedef struct {
	buf_t *b;
	int n;
} tags_out_t;

static int put_tag(void *ctx, const mgmt_tag_t *t)
{
	tags_out_t *o = ctx;
	json_put_raw(o->b, o->n++ ? "," : "{");
	json_put_cstr(o->b, t->key);
	json_put_raw(o->b, ":");
	return json_put_cstr(o->b, t->value);
}

/* {"key":"value",..}, or `none` when the group has no tag. */
static int put_tags(mgmt_t *m, buf_t *b, int64_t group_id, const char *none)
{
	tags_out_t o = {b, 0};
	int rc = mgmt_tags(m, group_id, NULL, put_tag, &o);
	if (rc < 0)
		return rc;
	return json_put_raw(b, o.n ? "}" : none);
}

typedef struct {
	uint32_t n;
} count_t;

static int count_member(void *ctx, const shm_instance_view_t *v, const char *json, size_t len)
{
	(void)v;
	(void)json;
	(void)len;
	((count_t *)ctx)->n++;
	return 0;
}

int api_rt_member_count(api_mgmt_req_t *r, const mgmt_group_t *g, uint32_t *n)
{
	count_t c = {0};
	int rc = mgmt_group_members(r->m, g, count_member, &c);
	*n = c.n;
	return rc;
}

/* "camel":s,"snake":s (epoch seconds); sep opens or continues the object. */
static void put_time_pair(buf_t *b, char sep, const char *camel, const char *snake, uint64_t ms)
{
	api_mgmt_kv_i64(b, sep, camel, (int64_t)(ms / 1000));
	api_mgmt_kv_i64(b, ',', snake, (int64_t)(ms / 1000));
}

int api_rt_put_group(api_mgmt_req_t *r, buf_t *b, const mgmt_group_t *g)
{
	char key[MGMT_MAX_SERVICE + MGMT_MAX_REGION + MGMT_MAX_ZONE + MGMT_MAX_NAME + 8];
	uint32_t count = 0;
	int rc = api_rt_member_count(r, g, &count);
	if (rc < 0)
		return rc;
	api_mgmt_kv(b, '{', "appId", g->app_id);
	put_time_pair(b, ',', "createdAt", "created_at", g->create_ms);
	api_mgmt_kv(b, ',', "description", g->description);
	api_mgmt_kv_i64(b, ',', "groupId", g->id);
	mgmt_group_rust_key(g, key, sizeof(key));
	api_mgmt_kv(b, ',', "groupKey", key);
	api_mgmt_kv(b, ',', "groupType", g->type);
	json_put_raw(b, ",\"groupTypeInfo\":");
	api_mgmt_kv(b, '{', "type", !strcmp(g->type, "logical") ? "LOGICAL" : "WEIGHT");
	json_put_raw(b, "}");
	api_mgmt_kv_i64(b, ',', "id", g->id);
	api_mgmt_kv_i64(b, ',', "instanceCount", count);
	api_mgmt_kv_i64(b, ',', "instance_count", count);
	mgmt_group_key(g, key, sizeof(key));
	api_mgmt_kv(b, ',', "javaGroupKey", key);
	json_put_raw(b, ",\"metadata\":");
	if ((rc = put_tags(r->m, b, g->id, "{}")) < 0)
		return rc;
	api_mgmt_kv(b, ',', "name", g->name);
	api_mgmt_kv(b, ',', "operatorId", g->operator_id);
	api_mgmt_kv(b, ',', "regionId", g->region);
	api_mgmt_kv(b, ',', "serviceId", g->service);
	api_mgmt_kv(b, ',', "status", g->status);
	json_put_raw(b, ",\"statusInfo\":");
	api_mgmt_kv(b, '{', "status", g->status);
	json_put_raw(b, "},\"tags\":");
	if ((rc = put_tags(r->m, b, g->id, "{}")) < 0)
		return rc;
	put_time_pair(b, ',', "updatedAt", "updated_at", g->update_ms);
	api_mgmt_kv(b, ',', "zoneId", g->zone);
	return json_put_raw(b, "}");
}

int api_rt_put_java_group(api_mgmt_req_t *r, buf_t *b, const mgmt_group_t *g)
{
	char key[MGMT_MAX_SERVICE + MGMT_MAX_REGION + MGMT_MAX_ZONE + MGMT_MAX_NAME + 8];
	int rc;
	mgmt_group_key(g, key, sizeof(key));
	api_mgmt_kv(b, '{', "appId", g->app_id);
	api_mgmt_kv(b, ',', "description", g->description);
	api_mgmt_kv_i64(b, ',', "groupId", g->id);
	api_mgmt_kv(b, ',', "groupKey", key);
	api_mgmt_kv(b, ',', "groupType", g->type);
	json_put_raw(b, ",\"metadata\":");
	if ((rc = put_tags(r->m, b, g->id, "null")) < 0)
		return rc;
	api_mgmt_kv(b, ',', "name", g->name);
	api_mgmt_kv(b, ',', "regionId", g->region);
	api_mgmt_kv(b, ',', "serviceId", g->service);
	api_mgmt_kv(b, ',', "status", g->status);
	api_mgmt_kv(b, ',', "zoneId", g->zone);
	return json_put_raw(b, "}");
}

/* ---- Rules ---------------------------------------------------------------------------------- */

static const char *strategy_info(const char *s)
{
	return !strcmp(s, "close-by-visit")    ? "CLOSE_BY_VISIT"
	       : !strcmp(s, "consistent-hash") ? "CONSISTENT_HASH"
	                                       : "WEIGHT_ROUND_ROBIN";
}

int api_rt_put_rule_group(api_mgmt_req_t *r, buf_t *b, const mgmt_rule_t *rule,
                          const mgmt_rule_group_t *rg)
{
	char key[MGMT_MAX_SERVICE + MGMT_MAX_REGION + MGMT_MAX_ZONE + MGMT_MAX_NAME + 8];
	mgmt_group_t g;
	int rc = mgmt_group_get(r->m, rg->group_id, &g);
	if (rc < 0)
		return rc;
	mgmt_group_rust_key(&g, key, sizeof(key));
	api_mgmt_kv_i64(b, '{', "groupId", rg->group_id);
	api_mgmt_kv(b, ',', "groupKey", key);
	api_mgmt_kv(b, ',', "groupName", g.name);
	api_mgmt_kv(b, ',', "groupStatus", g.status);
	api_mgmt_kv_i64(b, ',', "id", rg->id);
	api_mgmt_kv(b, ',', "regionId", rg->region[0] ? rg->region : g.region);
	api_mgmt_kv(b, ',', "routeId", rule->route_id);
	api_mgmt_kv_i64(b, ',', "routeRuleGroupId", rg->id);
	api_mgmt_kv_i64(b, ',', "routeRuleId", rule->id);
	api_mgmt_kv_bool(b, ',', "unreleasable", false);
	json_put_raw(b, ",\"unreleasedWeight\":");
	if (rg->unreleased_weight < 0)
		json_put_raw(b, "null");
	else
		json_put_i64(b, rg->unreleased_weight);
	json_put_raw(b, ",\"weight\":");
	if (rg->weight < 0)
		json_put_raw(b, "null");
	else
		json_put_i64(b, rg->weight);
	api_mgmt_kv(b, ',', "zoneId", rg->zone[0] ? rg->zone : g.zone);
	return json_put_raw(b, "}");
}

typedef struct {
	api_mgmt_req_t *r;
	buf_t *b;
	const mgmt_rule_t *rule;
	int n;
	bool members; /* some active group of the rule has an instance up */
	int rc;
} rule_groups_t;

static int up_member(void *ctx, const shm_instance_view_t *v, const char *json, size_t len)
{
	(void)json;
	(void)len;
	return mgmt_down(api_shm(), v->tags) == 0 ? (*(bool *)ctx = true, 1) : 0;
}

static int put_one_rule_group(void *ctx, const mgmt_rule_group_t *rg)
{
	rule_groups_t *o = ctx;
	mgmt_group_t g;
	json_put_raw(o->b, o->n++ ? "," : "");
	if ((o->rc = api_rt_put_rule_group(o->r, o->b, o->rule, rg)) < 0)
		return o->rc;
	if (!o->members && mgmt_group_get(o->r->m, rg->group_id, &g) == 0 &&
	    !strcmp(g.status, "active") && rg->weight != 0) {
		int rc = mgmt_group_members(o->r->m, &g, up_member, &o->members);
		if (rc < 0)
			return o->rc = rc;
	}
	return 0;
}

/* The first published rule of the service other than the canary's: the
 * one the Rust paths apply (with an active group). */
typedef struct {
	api_mgmt_req_t *r;
	int64_t id;
} first_t;

static int has_active_group(void *ctx, const mgmt_rule_group_t *rg)
{
	mgmt_group_t g;
	first_t *f = ctx;
	return mgmt_group_get(f->r->m, rg->group_id, &g) == 0 && !strcmp(g.status, "active");
}

static int first_published(void *ctx, const mgmt_rule_t *rule)
{
	first_t *f = ctx;
	if (strcasecmp(rule->status, "active") != 0 ||
	    strcasecmp(rule->name, MGMT_CANARY_RULE) == 0)
		return 0;
	int rc = mgmt_rule_groups(f->r->m, 0, rule->id, 0, has_active_group, f);
	if (rc < 0)
		return rc;
	if (rc > 0)
		f->id = rule->id;
	return rc > 0;
}

int api_rt_put_rule(api_mgmt_req_t *r, buf_t *b, const mgmt_rule_t *rule)
{
	rule_groups_t o = {r, b, rule, 0, false, 0};
	bool published = !strcmp(rule->status, "active");
	first_t f = {r, 0};
	mgmt_rule_filter_t rf = {.service = rule->service, .status = "active"};
	int rc;
	/* What the Rust paths do with it (MANAGEMENT.md §2). */
	if (published && (rc = mgmt_rules(r->m, &rf, first_published, &f)) < 0)
		return rc;
	bool applied = published && f.id == rule->id;
	api_mgmt_kv_bool(b, '{', "applied", applied);
	put_time_pair(b, ',', "createdAt", "created_at", rule->create_ms);
	api_mgmt_kv(b, ',', "description", rule->description);
	json_put_raw(b, ",\"groups\":[");
	if ((rc = mgmt_rule_groups(r->m, 0, rule->id, 0, put_one_rule_group, &o)) < 0)
		return rc;
	json_put_raw(b, "]");
	api_mgmt_kv_i64(b, ',', "id", rule->id);
	api_mgmt_kv(b, ',', "name", rule->name);
	api_mgmt_kv(b, ',', "routeId", rule->route_id);
	api_mgmt_kv_i64(b, ',', "routeRuleId", rule->id);
	api_mgmt_kv(b, ',', "serviceId", rule->service);
	api_mgmt_kv(b, ',', "status", rule->status);
	json_put_raw(b, ",\"statusInfo\":");
	api_mgmt_kv(b, '{', "status", rule->status);
	json_put_raw(b, "}");
	const char *why = !published ? "unpublished: every instance is served"
	                  : !strcasecmp(rule->name, MGMT_CANARY_RULE)
	                      ? "the canary rule: the canary config routes by it"
	                  : !applied   ? "published, not applied: another published rule of the "
	                                 "service comes first, or no group of it is active"
	                  : !o.members ? "published, no group of it has an instance up: every "
	                                 "instance is served"
	                               : "published: routing by its groups";
	api_mgmt_kv(b, ',', "statusMessage", why);
	api_mgmt_kv(b, ',', "strategy", rule->strategy);
	json_put_raw(b, ",\"strategyInfo\":");
	api_mgmt_kv(b, '{', "strategy", strategy_info(rule->strategy));
	json_put_raw(b, "}");
	put_time_pair(b, ',', "updatedAt", "updated_at", rule->update_ms);
	return json_put_raw(b, "}");
}

/* ---- Canary -----------------------------------------------------------------------------------
 */

int api_rt_put_canary(buf_t *b, const mgmt_canary_t *c)
{
	put_time_pair(b, '{', "createdAt", "created_at", c->create_ms);
	api_mgmt_kv_bool(b, ',', "enabled", c->enabled);
	json_put_raw(b, ",\"ipWhitelist\":");
	json_put_raw(b, c->whitelist && c->whitelist[0] == '[' ? c->whitelist : "[]");
	api_mgmt_kv(b, ',', "operatorId", c->operator_id);
	api_mgmt_kv(b, ',', "serviceId", c->service);
	put_time_pair(b, ',', "updatedAt", "updated_at", c->update_ms);
	return json_put_raw(b, "}");
}

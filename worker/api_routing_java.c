/*
 * api_routing_java.c - Java's 32 group and route-rule endpoints, POST
 * /api/management/group/<name>.json (API.md §5.3), on the routing store.
 *
 * Writes take Java's OperationContext in the body and need its operation,
 * operatorId and token (an Authorization header counts as the token): a
 * missing one fails with internal-service-error, as Java's checks do.  A
 * write is batched by its list and is one transaction: every element or
 * none.  Ids that a delete names and that do not exist are skipped, as
 * Java's deletes by id are.  Weights are Java's: 0..10000, staged in
 * unreleasedWeight by insert/update and made effective by release.
 * Answers: {"responseStatus":..} plus the named list or object, handled
 * errors with HTTP 200.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "api_routing.h"
#include "artemis/codec.h"

#define JAVA_ERR 512

typedef struct java_op java_op_t;
/* A write: each element of the request's list (or the whole body). */
typedef int (*java_write_fn)(api_mgmt_req_t *r, mgmt_rtx_t *t, const json_t *e, char *err,
                             size_t len);
/* A read: answers itself. */
typedef void (*java_read_fn)(api_mgmt_req_t *r);

struct java_op {
	const char *name; /* the file name */
	const char *list; /* the request's list (canonical), NULL: the whole body */
	java_write_fn write;
	java_read_fn read;
};

/* ---- Element writes ------------------------------------------------------------------ */

static int bad(char *err, size_t len, const char *field, int rc)
{
	snprintf(err, len, "%s %s", field,
	         rc == -ENAMETOOLONG ? "is longer than allowed" : "is not valid");
	return rc == -ENAMETOOLONG ? rc : -EINVAL;
}

static int w_rule(api_mgmt_req_t *r, mgmt_rtx_t *t, const json_t *e, char *err, size_t len)
{
	mgmt_rule_t rule, cur;
	unsigned fields;
	const char *field = NULL;
	int rc = api_rt_decode_rule(e, &rule, &fields, &field);
	if (rc < 0)
		return bad(err, len, field, rc);
	if (rule.id > 0) {
		char id[24];
		snprintf(id, sizeof(id), "%lld", (long long)rule.id);
		rc = mgmt_rule_get(r->m, id, &cur);
		if (rc == 0 && cur.id == rule.id)
			return mgmt_rule_update(t, &rule, fields, err, len);
	}
	return mgmt_rule_create(t, &rule, true, err, len);
}

static int id_element(const json_t *e, int64_t *id, char *err, size_t len)
{
	int rc = api_rt_decode_id(e, id);
	if (rc < 0)
		snprintf(err, len, "an id of the list is not a positive number");
	return rc < 0 ? -EINVAL : 0;
}

static int w_delete_rule(api_mgmt_req_t *r, mgmt_rtx_t *t, const json_t *e, char *err, size_t len)
{
	int64_t id;
	mgmt_rule_t rule;
	char key[24];
	int rc = id_element(e, &id, err, len);
	(void)r;
	if (rc < 0)
		return rc;
	snprintf(key, sizeof(key), "%lld", (long long)id);
	if (mgmt_rule_get(mgmt_rtx_handle(t), key, &rule) < 0 || rule.id != id)
		return 0;
	return mgmt_rule_delete(t, id, err, len);
}

/* A Group (or a GroupWeight) by its groupId, or created/updated by its key. */
static int group_of(mgmt_rtx_t *t, const json_t *e, mgmt_group_t *g, char *err, size_t len)
{
	unsigned fields;
	const char *field = NULL;
	mgmt_group_t cur;
	int rc = api_rt_decode_group(e, g, &fields, &field);
	if (rc < 0)
		return bad(err, len, field, rc);
	if (g->id > 0 && mgmt_group_get(mgmt_rtx_handle(t), g->id, &cur) == 0) {
		if ((rc = mgmt_group_update(t, g, fields, err, len)) < 0)
			return rc;
		*g = cur;
		return mgmt_group_get(mgmt_rtx_handle(t), g->id, g);
	}
	if (g->id > 0 && !g->name[0]) {
		snprintf(err, len, "no group %lld", (long long)g->id);
		return -ENOENT;
	}
	return mgmt_group_create(t, g, true, err, len);
}

static int w_group(api_mgmt_req_t *r, mgmt_rtx_t *t, const json_t *e, char *err, size_t len)
{
	mgmt_group_t g;
	(void)r;
	return group_of(t, e, &g, err, len);
}

static int w_delete_group(api_mgmt_req_t *r, mgmt_rtx_t *t, const json_t *e, char *err, size_t len)
{
	int64_t id;
	mgmt_group_t g;
	int rc = id_element(e, &id, err, len);
	(void)r;
	if (rc < 0 || mgmt_group_get(mgmt_rtx_handle(t), id, &g) < 0)
		return rc;
	return mgmt_group_delete(t, id, err, len);
}

/* A RouteRuleGroup: weight staged (unreleasedWeight, else weight). */
static int w_rule_group(api_mgmt_req_t *r, mgmt_rtx_t *t, const json_t *e, char *err, size_t len)
{
	mgmt_rule_group_t rg;
	long long w;
	int rc;
	(void)r;
	memset(&rg, 0, sizeof(rg));
	if (!json_is_object(e) ||
	    api_rt_decode_id(json_member(e, "routeruleid"), &rg.rule_id) < 0 ||
	    api_rt_decode_id(json_member(e, "groupid"), &rg.group_id) < 0) {
		snprintf(err, len, "routeRuleId and groupId are required");
		return -EINVAL;
	}
	rc = api_rt_decode_weight(json_member(e, "unreleasedweight"), &w);
	if (rc == -ENOENT)
		rc = api_rt_decode_weight(json_member(e, "weight"), &w);
	if (rc == -EINVAL)
		return bad(err, len, "weight", rc);
	rg.unreleased_weight = rc == -ENOENT ? -1 : mgmt_weight_clamp(MGMT_WEIGHT_STAGE, w);
	return mgmt_rule_group_put(t, &rg, MGMT_WEIGHT_STAGE, err, len);
}

static int w_release(api_mgmt_req_t *r, mgmt_rtx_t *t, const json_t *e, char *err, size_t len)
{
	int64_t rule, group;
	(void)r;
	if (!json_is_object(e) || api_rt_decode_id(json_member(e, "routeruleid"), &rule) < 0 ||
	    api_rt_decode_id(json_member(e, "groupid"), &group) < 0) {
		snprintf(err, len, "routeRuleId and groupId are required");
		return -EINVAL;
	}
	return mgmt_rule_group_release(t, rule, group, err, len);
}

static int w_delete_rule_group(api_mgmt_req_t *r, mgmt_rtx_t *t, const json_t *e, char *err,
                               size_t len)
{
	int64_t id;
	int rc = id_element(e, &id, err, len);
	(void)r;
	if (rc < 0)
		return rc;
	rc = mgmt_rule_group_delete(t, id, 0, 0, err, len);
	return rc == -ENOENT ? 0 : rc;
}

/* create-route-rule.json: {routeRule, groups: [GroupWeight]}. */
static int w_create_rule(api_mgmt_req_t *r, mgmt_rtx_t *t, const json_t *body, char *err,
                         size_t len)
{
	mgmt_rule_t rule;
	unsigned fields;
	const char *field = NULL;
	const json_t *groups = json_member(body, "groups"), *e;
	size_t i;
	int rc = api_rt_decode_rule(json_member(body, "routerule"), &rule, &fields, &field);
	(void)r;
	if (rc < 0)
		return bad(err, len, field, rc);
	if ((rc = mgmt_rule_create(t, &rule, true, err, len)) < 0)
		return rc;
	if (groups != NULL && !json_is_array(groups) && !json_is_null(groups))
		return bad(err, len, "groups", -EINVAL);
	json_array_foreach(groups, i, e)
	{
		mgmt_group_t g;
		mgmt_rule_group_t rg;
		long long w = MGMT_WEIGHT_DEFAULT;
		if ((rc = group_of(t, e, &g, err, len)) < 0)
			return rc;
		if (api_rt_decode_weight(json_member(e, "weight"), &w) == -EINVAL)
			return bad(err, len, "weight", -EINVAL);
		memset(&rg, 0, sizeof(rg));
		rg.rule_id = rule.id;
		rg.group_id = g.id;
		rg.unreleased_weight = mgmt_weight_clamp(MGMT_WEIGHT_STAGE, w);
		if ((rc = mgmt_rule_group_put(t, &rg, MGMT_WEIGHT_STAGE, err, len)) < 0)
			return rc;
	}
	return 0;
}

/* GroupTags {groupId, tags: {..}}. */
static int w_tags(api_mgmt_req_t *r, mgmt_rtx_t *t, const json_t *e, char *err, size_t len)
{
	int64_t gid;
	const json_t *tags = json_member(e, "tags"), *v;
	const char *k;
	int rc = 0;
	(void)r;
	if (api_rt_decode_id(json_member(e, "groupid"), &gid) < 0 || !json_is_object(tags)) {
		snprintf(err, len, "a GroupTags is {groupId, tags: {..}}");
		return -EINVAL;
	}
	json_object_foreach((json_t *)tags, k, v)
	{
		if (!json_is_string(v) || strlen(k) > MGMT_MAX_TAG_KEY ||
		    json_string_length(v) > MGMT_MAX_TAG_VALUE)
			return bad(err, len, "tags", -EINVAL);
		if ((rc = mgmt_tag_put(t, gid, k, json_string_value(v), err, len)) < 0)
			return rc;
	}
	return 0;
}

/* delete-group-tags.json {groupId, tag, value}. */
static int w_delete_tags(api_mgmt_req_t *r, mgmt_rtx_t *t, const json_t *body, char *err,
                         size_t len)
{
	int64_t gid;
	char tag[MGMT_MAX_TAG_KEY + 1], value[MGMT_MAX_TAG_VALUE + 1];
	(void)r;
	if (api_rt_decode_id(json_member(body, "groupid"), &gid) < 0 ||
	    api_mgmt_decode_str(body, "tag", tag, sizeof(tag)) < 0 || !tag[0] ||
	    api_mgmt_decode_str(body, "value", value, sizeof(value)) < 0) {
		snprintf(err, len, "groupId and tag are required");
		return -EINVAL;
	}
	int rc = mgmt_tag_delete(t, gid, tag, value[0] ? value : NULL, err, len);
	return rc == -ENOENT && mgmt_group_get(mgmt_rtx_handle(t), gid, &(mgmt_group_t){0}) == 0
	           ? 0
	           : rc;
}

/* GroupOperations {groupId, operations: [..]} with the request's
 * operationComplete (true: removed). */
static int w_group_ops(api_mgmt_req_t *r, mgmt_rtx_t *t, const json_t *e, char *err, size_t len)
{
	int64_t gid;
	const json_t *ops = json_member(e, "operations"), *op;
	size_t i;
	int rc = 0;
	bool insert = api_mgmt_decode_bool(json_member(r->body, "operationcomplete")) != 1;
	if (api_rt_decode_id(json_member(e, "groupid"), &gid) < 0 || !json_is_array(ops)) {
		snprintf(err, len, "a GroupOperations is {groupId, operations: [..]}");
		return -EINVAL;
	}
	json_array_foreach(ops, i, op)
	{
		if (!json_is_string(op))
			return bad(err, len, "operations", -EINVAL);
		if ((rc = mgmt_group_op(t, gid, json_string_value(op), insert, err, len)) < 0)
			return rc;
	}
	return 0;
}

/* operate-group-operation.json: the group (by id, or generated from its
 * key) and the request's operation. */
static int w_group_op(api_mgmt_req_t *r, mgmt_rtx_t *t, const json_t *body, char *err, size_t len)
{
	mgmt_group_t g;
	char op[MGMT_MAX_OPERATION + 1];
	int rc = group_of(t, body, &g, err, len);
	if (rc < 0)
		return rc;
	if (api_mgmt_decode_str(body, "operation", op, sizeof(op)) < 0)
		return bad(err, len, "operation", -EINVAL);
	bool insert = api_mgmt_decode_bool(json_member(r->body, "operationcomplete")) != 1;
	return mgmt_group_op(t, g.id, op, insert, err, len);
}

/* GroupInstance {groupId, instanceId}. */
static int w_binding(api_mgmt_req_t *r, mgmt_rtx_t *t, const json_t *e, char *err, size_t len)
{
	mgmt_binding_t b;
	const char *field = NULL;
	int rc = api_rt_decode_binding(e, &b, &field);
	(void)r;
	if (rc < 0)
		return bad(err, len, field, rc);
	if (api_rt_decode_id(json_member(e, "groupid"), &b.group_id) < 0) {
		snprintf(err, len, "groupId is required");
		return -EINVAL;
	}
	return mgmt_binding_put(t, &b, err, len);
}

static int w_delete_binding(api_mgmt_req_t *r, mgmt_rtx_t *t, const json_t *e, char *err,
                            size_t len)
{
	int64_t id;
	int rc = id_element(e, &id, err, len);
	(void)r;
	if (rc < 0)
		return rc;
	rc = mgmt_binding_delete(t, id, 0, NULL, err, len);
	return rc == -ENOENT ? 0 : rc;
}

static int w_logic(api_mgmt_req_t *r, mgmt_rtx_t *t, const json_t *e, char *err, size_t len)
{
	mgmt_logic_t *l = malloc(sizeof(*l));
	const char *field = NULL;
	int rc;
	(void)r;
	if (!l)
		return -ENOMEM;
	rc = api_rt_decode_logic(e, l, &field);
	rc = rc < 0 ? bad(err, len, field, rc) : mgmt_logic_put(t, l, err, len);
	free(l);
	return rc;
}

static int w_delete_logic(api_mgmt_req_t *r, mgmt_rtx_t *t, const json_t *e, char *err, size_t len)
{
	int64_t id;
	int rc = id_element(e, &id, err, len);
	(void)r;
	if (rc < 0)
		return rc;
	rc = mgmt_logic_delete(t, id, err, len);
	return rc == -ENOENT ? 0 : rc;
}

/* ---- Reads ------------------------------------------------------------------------------- */

/* Each item of a list read: written with its sep. */
typedef struct {
	api_mgmt_req_t *r;
	buf_t *b;
	int n;
	int64_t last; /* grouping by groupId */
	int rc;
} out_t;

static void sep(out_t *o)
{
	json_put_raw(o->b, o->n++ ? "," : "");
}

static int put_rule(void *ctx, const mgmt_rule_t *rule)
{
	out_t *o = ctx;
	sep(o);
	api_mgmt_kv(o->b, '{', "description", rule->description);
	api_mgmt_kv(o->b, ',', "name", rule->name);
	api_mgmt_kv(o->b, ',', "routeId", rule->route_id);
	api_mgmt_kv_i64(o->b, ',', "routeRuleId", rule->id);
	api_mgmt_kv(o->b, ',', "serviceId", rule->service);
	api_mgmt_kv(o->b, ',', "status", rule->status);
	api_mgmt_kv(o->b, ',', "strategy", rule->strategy);
	return json_put_raw(o->b, "}");
}

static void put_weight(buf_t *b, const char *name, int w)
{
	json_put_raw(b, ",\"");
	json_put_raw(b, name);
	json_put_raw(b, "\":");
	if (w < 0)
		json_put_raw(b, "null");
	else
		json_put_i64(b, w);
}

static int put_rule_group(void *ctx, const mgmt_rule_group_t *rg)
{
	out_t *o = ctx;
	sep(o);
	api_mgmt_kv_i64(o->b, '{', "groupId", rg->group_id);
	api_mgmt_kv_i64(o->b, ',', "routeRuleGroupId", rg->id);
	api_mgmt_kv_i64(o->b, ',', "routeRuleId", rg->rule_id);
	put_weight(o->b, "unreleasedWeight", rg->unreleased_weight);
	put_weight(o->b, "weight", rg->weight);
	return json_put_raw(o->b, "}");
}

static int put_group(void *ctx, const mgmt_group_t *g)
{
	out_t *o = ctx;
	sep(o);
	return api_rt_put_java_group(o->r, o->b, g);
}

/* Rows grouped by groupId: {"groupId":N<head> item,item<close>, ... (the
 * rows come ordered by groupId). */
static void by_group(out_t *o, int64_t group_id, const char *head, const char *close)
{
	if (o->last == group_id) {
		json_put_raw(o->b, ",");
		return;
	}
	if (o->last)
		json_put_raw(o->b, close);
	sep(o);
	api_mgmt_kv_i64(o->b, '{', "groupId", group_id);
	json_put_raw(o->b, head);
	o->last = group_id;
}

/* GroupTags, one per group: {"groupId":..,"tags":{..}}. */
static int put_tag(void *ctx, const mgmt_tag_t *t)
{
	out_t *o = ctx;
	by_group(o, t->group_id, ",\"tags\":{", "}}");
	json_put_cstr(o->b, t->key);
	json_put_raw(o->b, ":");
	return json_put_cstr(o->b, t->value);
}

static int put_group_op(void *ctx, const mgmt_group_op_t *op)
{
	out_t *o = ctx;
	by_group(o, op->group_id, ",\"operations\":[", "]}");
	return json_put_cstr(o->b, op->operation);
}

static int put_binding(void *ctx, const mgmt_binding_t *b)
{
	out_t *o = ctx;
	sep(o);
	api_mgmt_kv_i64(o->b, '{', "groupId", b->group_id);
	api_mgmt_kv_i64(o->b, ',', "id", b->id);
	api_mgmt_kv(o->b, ',', "instanceId", b->instance);
	return json_put_raw(o->b, "}");
}

static int put_logic(void *ctx, const mgmt_logic_t *l)
{
	out_t *o = ctx;
	sep(o);
	api_mgmt_kv(o->b, '{', "description", l->description);
	api_mgmt_kv(o->b, ',', "groupId", l->group);
	api_mgmt_kv(o->b, ',', "healthCheckUrl", l->health);
	api_mgmt_kv_i64(o->b, ',', "id", l->id);
	api_mgmt_kv(o->b, ',', "instanceId", l->instance);
	api_mgmt_kv(o->b, ',', "ip", l->ip);
	api_mgmt_kv(o->b, ',', "machineName", l->machine);
	json_put_raw(o->b, ",\"metadata\":");
	json_put_raw(o->b, l->metadata[0] ? l->metadata : "{}");
	api_mgmt_kv_i64(o->b, ',', "port", l->port);
	api_mgmt_kv(o->b, ',', "protocol", l->protocol);
	api_mgmt_kv(o->b, ',', "regionId", l->region);
	api_mgmt_kv(o->b, ',', "serviceId", l->service);
	api_mgmt_kv(o->b, ',', "url", l->url);
	api_mgmt_kv(o->b, ',', "zoneId", l->zone);
	return json_put_raw(o->b, "}");
}

/* Open ,"name":[ (or the single object) and the output state. */
static out_t open_list(api_mgmt_req_t *r, const char *name, bool single)
{
	out_t o = {r, api_mgmt_out(r), 0, 0, 0};
	api_mgmt_ok_open(r);
	json_put_raw(o.b, ",\"");
	json_put_raw(o.b, name);
	json_put_raw(o.b, single ? "\":" : "\":[");
	return o;
}

static void close_list(out_t *o, int rc, const char *group_end, bool single)
{
	if (rc >= 0 && o->last && group_end)
		json_put_raw(o->b, group_end);
	if (single && o->n == 0)
		json_put_raw(o->b, "null");
	if (!single)
		json_put_raw(o->b, "]");
	api_mgmt_done(o->r, rc);
}

/* Filter strings of a read's body ("" as absent). */
static const char *opt(api_mgmt_req_t *r, const char *canon, char *buf, size_t len)
{
	if (api_mgmt_decode_str(r->body, canon, buf, len) < 0 || !buf[0])
		return NULL;
	return buf;
}

static int64_t opt_id(api_mgmt_req_t *r, const char *canon)
{
	int64_t id = 0;
	return api_rt_decode_id(json_member(r->body, canon), &id) == 0 ? id : 0;
}

static void r_all_rules(api_mgmt_req_t *r)
{
	out_t o = open_list(r, "routeRules", false);
	close_list(&o, mgmt_rules(r->m, NULL, put_rule, &o), NULL, false);
}

static void r_rules(api_mgmt_req_t *r)
{
	char svc[MGMT_MAX_SERVICE + 1], name[MGMT_MAX_NAME + 1], status[16];
	mgmt_rule_filter_t f = {.id = opt_id(r, "routeruleid"),
	                        .service = opt(r, "serviceid", svc, sizeof(svc)),
	                        .name = opt(r, "name", name, sizeof(name)),
	                        .status = opt(r, "status", status, sizeof(status))};
	out_t o = open_list(r, "routeRules", false);
	close_list(&o, mgmt_rules(r->m, &f, put_rule, &o), NULL, false);
}

static void r_all_rule_groups(api_mgmt_req_t *r)
{
	out_t o = open_list(r, "routeRuleGroups", false);
	close_list(&o, mgmt_rule_groups(r->m, 0, 0, 0, put_rule_group, &o), NULL, false);
}

static void r_rule_groups(api_mgmt_req_t *r)
{
	out_t o = open_list(r, "routeRuleGroups", false);
	int rc = mgmt_rule_groups(r->m, opt_id(r, "routerulegroupid"), opt_id(r, "routeruleid"),
	                          opt_id(r, "groupid"), put_rule_group, &o);
	close_list(&o, rc, NULL, false);
}

static void r_all_groups(api_mgmt_req_t *r)
{
	out_t o = open_list(r, "groups", false);
	close_list(&o, mgmt_groups(r->m, NULL, put_group, &o), NULL, false);
}

static void r_groups(api_mgmt_req_t *r)
{
	char svc[MGMT_MAX_SERVICE + 1], region[MGMT_MAX_REGION + 1], zone[MGMT_MAX_ZONE + 1];
	char name[MGMT_MAX_NAME + 1], app[MGMT_MAX_NAME + 1], status[16];
	mgmt_group_filter_t f = {.id = opt_id(r, "groupid"),
	                         .service = opt(r, "serviceid", svc, sizeof(svc)),
	                         .region = opt(r, "regionid", region, sizeof(region)),
	                         .zone = opt(r, "zoneid", zone, sizeof(zone)),
	                         .name = opt(r, "name", name, sizeof(name)),
	                         .app_id = opt(r, "appid", app, sizeof(app)),
	                         .status = opt(r, "status", status, sizeof(status))};
	out_t o = open_list(r, "groups", false);
	close_list(&o, mgmt_groups(r->m, &f, put_group, &o), NULL, false);
}

static void r_all_tags(api_mgmt_req_t *r)
{
	out_t o = open_list(r, "allGroupTags", false);
	close_list(&o, mgmt_tags(r->m, 0, NULL, put_tag, &o), "}}", false);
}

static void r_tags(api_mgmt_req_t *r)
{
	char key[MGMT_MAX_TAG_KEY + 1];
	int64_t gid = opt_id(r, "groupid");
	out_t o = open_list(r, "groupTags", true);
	int rc = gid ? mgmt_tags(r->m, gid, opt(r, "tagkey", key, sizeof(key)), put_tag, &o) : 0;
	close_list(&o, rc, "}}", true);
}

static void r_all_group_ops(api_mgmt_req_t *r)
{
	out_t o = open_list(r, "allGroupOperations", false);
	close_list(&o, mgmt_group_ops(r->m, 0, put_group_op, &o), "]}", false);
}

static void r_group_ops(api_mgmt_req_t *r)
{
	int64_t gid = opt_id(r, "groupid");
	out_t o = open_list(r, "groupOperations", true);
	close_list(&o, gid ? mgmt_group_ops(r->m, gid, put_group_op, &o) : 0, "]}", true);
}

static void r_bindings(api_mgmt_req_t *r)
{
	char inst[MGMT_MAX_INSTANCE + 1];
	out_t o = open_list(r, "groupInstances", false);
	int rc = mgmt_bindings(r->m, opt_id(r, "groupid"), opt(r, "instanceid", inst, sizeof(inst)),
	                       put_binding, &o);
	close_list(&o, rc, NULL, false);
}

static void r_logics(api_mgmt_req_t *r)
{
	char svc[MGMT_MAX_SERVICE + 1], inst[MGMT_MAX_INSTANCE + 1];
	out_t o = open_list(r, "serviceInstances", false);
	int rc = mgmt_logics(r->m, 0, opt(r, "serviceid", svc, sizeof(svc)),
	                     opt(r, "instanceid", inst, sizeof(inst)), put_logic, &o);
	close_list(&o, rc, NULL, false);
}

/* ---- The table, and the handler ---------------------------------------------------------- */

static const java_op_t java_ops[] = {
    {"insert-route-rules.json", "routerules", w_rule, NULL},
    {"update-route-rules.json", "routerules", w_rule, NULL},
    {"delete-route-rules.json", "routeruleids", w_delete_rule, NULL},
    {"get-all-route-rules.json", NULL, NULL, r_all_rules},
    {"get-route-rules.json", NULL, NULL, r_rules},
    {"create-route-rule.json", NULL, w_create_rule, NULL},
    {"insert-route-rule-groups.json", "routerulegroups", w_rule_group, NULL},
    {"update-route-rule-groups.json", "routerulegroups", w_rule_group, NULL},
    {"release-route-rule-groups.json", "routerulegroups", w_release, NULL},
    {"delete-route-rule-groups.json", "routerulegroupids", w_delete_rule_group, NULL},
    {"get-all-route-rule-groups.json", NULL, NULL, r_all_rule_groups},
    {"get-route-rule-groups.json", NULL, NULL, r_rule_groups},
    {"insert-groups.json", "groups", w_group, NULL},
    {"update-groups.json", "groups", w_group, NULL},
    {"delete-groups.json", "groupids", w_delete_group, NULL},
    {"get-all-groups.json", NULL, NULL, r_all_groups},
    {"get-groups.json", NULL, NULL, r_groups},
    {"insert-group-tags.json", "grouptagslist", w_tags, NULL},
    {"update-group-tags.json", "grouptagslist", w_tags, NULL},
    {"delete-group-tags.json", NULL, w_delete_tags, NULL},
    {"get-all-group-tags.json", NULL, NULL, r_all_tags},
    {"get-group-tags.json", NULL, NULL, r_tags},
    {"operate-group-operations.json", "groupoperationslist", w_group_ops, NULL},
    {"operate-group-operation.json", NULL, w_group_op, NULL},
    {"get-all-group-operations.json", NULL, NULL, r_all_group_ops},
    {"get-group-operations.json", NULL, NULL, r_group_ops},
    {"insert-group-instances.json", "groupinstances", w_binding, NULL},
    {"delete-group-instances.json", "groupinstanceids", w_delete_binding, NULL},
    {"get-group-instances.json", NULL, NULL, r_bindings},
    {"insert-service-instances.json", "serviceinstances", w_logic, NULL},
    {"delete-service-instances.json", "serviceinstanceids", w_delete_logic, NULL},
    {"get-service-instances.json", NULL, NULL, r_logics},
};

/* Java's checkOperationContextArgument: operation, operatorId and a token
 * (the body's, or an Authorization header).  A request whose token was
 * checked has both: its user is the operator when the body names none. */
static const char *context_missing(api_mgmt_req_t *r, const api_mgmt_ctx_t *c)
{
	char op[MGMT_MAX_OPERATION + 1];
	if (api_mgmt_decode_str(r->body, "operation", op, sizeof(op)) < 0 || !op[0])
		return "operation";
	if (api_principal()->authenticated)
		return NULL;
	if (!c->operator_id[0])
		return "operatorId";
	if (!c->token[0] && !http_request_header(r->req, "Authorization"))
		return "token";
	return NULL;
}

static void java_write(api_mgmt_req_t *r, const java_op_t *op)
{
	api_mgmt_ctx_t c;
	mgmt_rtx_t *t;
	char err[JAVA_ERR] = "";
	const char *field = NULL;
	const json_t *list = op->list ? json_member(r->body, op->list) : NULL;
	size_t i;
	const json_t *e;
	int rc = api_mgmt_decode_ctx(r->body, NULL, &c, &field);
	if (rc < 0) {
		api_mgmt_fail(r, API_BAD_REQUEST, "%s is not valid", field);
		return;
	}
	if ((field = context_missing(r, &c)) != NULL) {
		api_mgmt_fail(r, API_INTERNAL_ERROR, "%s is null or empty", field);
		return;
	}
	if (op->list && (!json_is_array(list) || json_array_size(list) == 0 ||
	                 json_array_size(list) > MGMT_MAX_BATCH)) {
		api_mgmt_fail(r, API_BAD_REQUEST, "request.%s is null or empty (at most %d)",
		              op->list, MGMT_MAX_BATCH);
		return;
	}
	c.ctx.surface = "java";
	if ((rc = mgmt_rtx_begin(r->m, &c.ctx, &t, err, sizeof(err))) < 0) {
		api_rt_fail(r, rc, err);
		return;
	}
	if (!op->list) {
		rc = op->write(r, t, r->body, err, sizeof(err));
	} else {
		json_array_foreach(list, i, e)
		{
			if ((rc = op->write(r, t, e, err, sizeof(err))) < 0)
				break;
		}
	}
	if (api_rt_finish(r, t, rc, err))
		api_mgmt_ok(r);
}

void api_rt_java_group(const http_request_t *req, http_response_t *res)
{
	const char *name = api_param("operation");
	const java_op_t *op = NULL;
	api_mgmt_req_t r;
	for (size_t i = 0; name && i < sizeof(java_ops) / sizeof(java_ops[0]); i++)
		if (strcmp(java_ops[i].name, name) == 0)
			op = &java_ops[i];
	if (op == NULL) {
		http_res_error(res, req, 404, "No message available");
		return;
	}
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_JAVA, op->write ? MGMT_WRITE : MGMT_READ,
	                    op->read != NULL))
		return;
	if (op->write)
		java_write(&r, op);
	else
		op->read(&r);
	api_mgmt_end(&r);
}

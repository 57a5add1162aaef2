/*
 * api_routing_canary.c - canary configs, both surfaces.
 *
 * A service's canary config is a whitelist of caller addresses (IPs or
 * CIDR blocks) and a switch.  While it is enabled, the Rust discovery paths
 * route whitelisted callers to the service's canary group and everyone
 * else away from it (MANAGEMENT.md §2; the canary group is the group of the
 * service's canary-route-rule, else its groups named "canary").
 *
 * Rust (§3.2.5, §3.3), under /api/management/canary/: config (create or
 * replace, enabled), config/{serviceId} (read, delete), configs, enable,
 * disable, {serviceId}/whitelist (read, clear), .../add, .../remove,
 * .../check/{ip}, enabled/{serviceId}, stats, {serviceId}/stats.
 *
 * Java (API.md §5.5, §4.10): update-canary-ips.json writes the same config
 * (whitelist = canaryIps, enabled) and the canary rule (active), its group
 * {serviceId, this node's region, zone "canary", name appId} with weight 5,
 * and that group's instances = the IPs as instanceIds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "api_routing.h"
#include "artemis/codec.h"

/* One config (its whitelist copied out of the store's row). */
typedef struct {
	mgmt_canary_t c;
	int found;
} one_t;

static int keep_one(void *ctx, const mgmt_canary_t *c)
{
	one_t *o = ctx;
	if (o->found++ == 0) {
		o->c = *c;
		o->c.whitelist = strdup(c->whitelist ? c->whitelist : "[]");
		if (!o->c.whitelist)
			return -ENOMEM;
	}
	return 0;
}

/* The config of a service: 0, -ENOENT, or another error. */
static int get_config(mgmt_t *m, const char *service, one_t *o)
{
	memset(o, 0, sizeof(*o));
	int rc = mgmt_canaries(m, service, keep_one, o);
	return rc < 0 ? rc : o->found ? 0 : -ENOENT;
}

static void answer_config(api_mgmt_req_t *r, const char *service)
{
	one_t o;
	int rc = get_config(r->m, service, &o);
	if (rc == -ENOENT) {
		api_mgmt_fail(r, API_DATA_NOT_FOUND, "no canary config for %s", service);
	} else if (rc < 0) {
		api_rt_fail(r, rc, NULL);
	} else {
		api_mgmt_ok_open(r);
		api_mgmt_done(r, api_rt_put_canary(api_mgmt_out(r), &o.c));
	}
	free(o.c.whitelist);
}

/* The service of a request: the path's, else the body's. */
static const char *service_of(api_mgmt_req_t *r, char *buf, size_t len)
{
	const char *p = api_param("serviceId");
	if (p)
		return p;
	const char *v = api_mgmt_arg(r, "serviceid", buf, len);
	if (!v || !*v) {
		api_mgmt_fail(r, API_BAD_REQUEST, "serviceId is null or empty");
		return NULL;
	}
	return v;
}

/* Write one config in a transaction and answer with it. */
static void write_config(api_mgmt_req_t *r, mgmt_canary_t *c, int status)
{
	api_mgmt_ctx_t ctx;
	mgmt_rtx_t *t;
	char err[MGMT_MAX_ERR] = "";
	if (!api_rt_begin(r, &ctx, "rust", &t))
		return;
	int rc = mgmt_canary_put(t, c, err, sizeof(err));
	if (!api_rt_finish(r, t, rc, err))
		return;
	r->res->status = status;
	answer_config(r, c->service);
}

/* ---- Writes -------------------------------------------------------------------------------- */

void api_rt_canary_config(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_canary_t c;
	buf_t white = {0};
	const char *field = NULL;
	char svc[MGMT_MAX_SERVICE + 2];
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_WRITE, false))
		return;
	memset(&c, 0, sizeof(c));
	const char *s = service_of(&r, svc, sizeof(svc));
	const json_t *ips = json_member(r.body, "ipwhitelist");
	if (!ips)
		ips = json_member(r.body, "ips");
	const json_t *en = json_member(r.body, "enabled");
	if (!s)
		goto out;
	if (api_rt_decode_ips(ips, &white, &field) < 0) {
		api_mgmt_fail(&r, API_BAD_REQUEST,
		              "%s: an entry is not an IP address or CIDR block "
		              "(or there are more than %d)",
		              field, MGMT_MAX_WHITELIST);
		goto out;
	}
	snprintf(c.service, sizeof(c.service), "%s", s);
	c.enabled = api_mgmt_decode_bool(en) != 0; /* absent: enabled */
	c.whitelist = white.data;
	write_config(&r, &c, 201);
out:
	buf_free(&white);
	api_mgmt_end(&r);
}

static void set_enabled(const http_request_t *req, http_response_t *res, int force)
{
	api_mgmt_req_t r;
	one_t o;
	char svc[MGMT_MAX_SERVICE + 2];
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_WRITE, false))
		return;
	const char *s = service_of(&r, svc, sizeof(svc));
	int rc = s ? get_config(r.m, s, &o) : -EINVAL;
	if (rc == -ENOENT)
		api_mgmt_fail(&r, API_DATA_NOT_FOUND, "no canary config for %s", s);
	else if (rc < 0 && s)
		api_rt_fail(&r, rc, NULL);
	if (rc == 0) {
		int en = api_mgmt_decode_bool(json_member(r.body, "enabled"));
		o.c.enabled = force >= 0 ? force : en != 0;
		free(o.c.whitelist);
		o.c.whitelist = NULL; /* kept */
		write_config(&r, &o.c, 200);
	}
	api_mgmt_end(&r);
}

void api_rt_canary_enable(const http_request_t *req, http_response_t *res)
{
	set_enabled(req, res, -1);
}

void api_rt_canary_disable(const http_request_t *req, http_response_t *res)
{
	set_enabled(req, res, 0);
}

/* The whitelist changed: add (+1), remove (-1) the body's ips, or clear (0). */
static void change_whitelist(api_mgmt_req_t *r, int how)
{
	one_t o;
	buf_t add = {0}, out = {0};
	const char *field = NULL;
	const char *s = api_param("serviceId");
	int rc = get_config(r->m, s, &o);
	if (rc == -ENOENT) {
		api_mgmt_fail(r, API_DATA_NOT_FOUND, "no canary config for %s", s);
		return;
	}
	if (rc < 0) {
		api_rt_fail(r, rc, NULL);
		return;
	}
	const json_t *ips = json_member(r->body, "ips");
	if (!ips)
		ips = json_member(r->body, "ipwhitelist");
	if (how && (api_rt_decode_ips(ips, &add, &field) < 0 || add.len <= 2)) {
		api_mgmt_fail(r, API_BAD_REQUEST, "ips is a list of IP addresses or CIDR blocks");
		goto out;
	}
	json_t *cur = json_loads(o.c.whitelist, 0, NULL),
	       *more = json_loads(add.data ? add.data : "[]", 0, NULL);
	json_t *next = json_array(), *e, *f;
	size_t i, j;
	json_array_foreach(cur, i, e)
	{
		bool drop = how == 0;
		json_array_foreach(more, j, f) drop = drop || (how < 0 && json_equal(e, f));
		if (!drop)
			json_array_append(next, e);
	}
	json_array_foreach(more, j, f)
	{
		bool have = false;
		json_array_foreach(next, i, e) have = have || json_equal(e, f);
		if (how > 0 && !have)
			json_array_append(next, f);
	}
	char *text = json_dumps(next, JSON_COMPACT);
	json_decref(cur);
	json_decref(more);
	json_decref(next);
	if (!text) {
		api_mgmt_fail(r, API_INTERNAL_ERROR, "out of memory");
		goto out;
	}
	free(o.c.whitelist);
	o.c.whitelist = text;
	write_config(r, &o.c, 200);
out:
	free(o.c.whitelist);
	buf_free(&add);
	buf_free(&out);
}

void api_rt_canary_whitelist_add(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	if (api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_WRITE, false))
		change_whitelist(&r, 1);
	api_mgmt_end(&r);
}

void api_rt_canary_whitelist_remove(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	if (api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_WRITE, false))
		change_whitelist(&r, -1);
	api_mgmt_end(&r);
}

/* ---- Reads, and the writes on one service's paths ------------------------------------------- */

void api_rt_canary_config_one(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	api_mgmt_ctx_t c;
	mgmt_rtx_t *t;
	char err[MGMT_MAX_ERR] = "";
	bool del = req->method == HTTP_M_DELETE;
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, del ? MGMT_WRITE : MGMT_READ, true))
		return;
	const char *s = api_param("serviceId");
	if (!del) {
		answer_config(&r, s);
	} else if (api_rt_begin(&r, &c, "rust", &t)) {
		int rc = mgmt_canary_delete(t, s, err, sizeof(err));
		if (api_rt_finish(&r, t, rc, err)) {
			api_mgmt_ok_open(&r);
			json_put_cstr(api_mgmt_out(&r), "canary config deleted");
			api_mgmt_ok_close(&r);
		}
	}
	api_mgmt_end(&r);
}

typedef struct {
	buf_t *b;
	int n;
	uint32_t enabled;
	size_t entries;
} list_t;

static int list_config(void *ctx, const mgmt_canary_t *c)
{
	list_t *l = ctx;
	json_put_raw(l->b, l->n++ ? "," : "");
	return api_rt_put_canary(l->b, c);
}

void api_rt_canary_configs(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_READ, true))
		return;
	api_mgmt_ok_open(&r);
	list_t l = {api_mgmt_out(&r), 0, 0, 0};
	json_put_raw(l.b, "[");
	int rc = mgmt_canaries(r.m, NULL, list_config, &l);
	json_put_raw(l.b, "]");
	api_mgmt_done(&r, rc);
	api_mgmt_end(&r);
}

void api_rt_canary_enabled(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	one_t o;
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_READ, true))
		return;
	int rc = get_config(r.m, api_param("serviceId"), &o);
	if (rc < 0 && rc != -ENOENT) {
		api_rt_fail(&r, rc, NULL);
	} else {
		api_mgmt_ok_open(&r);
		json_put_bool(api_mgmt_out(&r), rc == 0 && o.c.enabled);
		api_mgmt_ok_close(&r);
	}
	free(o.c.whitelist);
	api_mgmt_end(&r);
}

void api_rt_canary_whitelist(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	one_t o;
	bool del = req->method == HTTP_M_DELETE;
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, del ? MGMT_WRITE : MGMT_READ, true))
		return;
	if (del) {
		change_whitelist(&r, 0);
	} else {
		int rc = get_config(r.m, api_param("serviceId"), &o);
		if (rc == -ENOENT) {
			api_mgmt_fail(&r, API_DATA_NOT_FOUND, "no canary config for %s",
			              api_param("serviceId"));
		} else if (rc < 0) {
			api_rt_fail(&r, rc, NULL);
		} else {
			api_mgmt_ok_open(&r);
			json_put_raw(api_mgmt_out(&r), o.c.whitelist);
			api_mgmt_ok_close(&r);
		}
		free(o.c.whitelist);
	}
	api_mgmt_end(&r);
}

/* The first whitelist entry that takes ip, or NULL. */
static const char *matching(const json_t *white, const char *ip, bool *valid)
{
	const json_t *e;
	size_t i;
	*valid = mgmt_ipspec_valid(ip, strlen(ip)) && !strchr(ip, '/');
	json_array_foreach(white, i, e)
	{
		const char *s = json_string_value(e);
		if (s && *valid && mgmt_ipspec_match(s, ip))
			return s;
	}
	return NULL;
}

void api_rt_canary_check(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	one_t o;
	bool valid;
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_READ, true))
		return;
	const char *s = api_param("serviceId"), *ip = api_param("ip");
	int rc = get_config(r.m, s, &o);
	if (rc < 0 && rc != -ENOENT) {
		api_rt_fail(&r, rc, NULL);
		goto out;
	}
	json_t *white = json_loads(rc == 0 ? o.c.whitelist : "[]", 0, NULL);
	const char *m = matching(white, ip, &valid);
	if (!valid) {
		json_decref(white);
		api_mgmt_fail(&r, API_BAD_REQUEST, "%s is not an IP address", ip);
		goto out;
	}
	api_mgmt_ok_open(&r);
	buf_t *b = api_mgmt_out(&r);
	api_mgmt_kv_bool(b, '{', "allowed", m != NULL);
	api_mgmt_kv_bool(b, ',', "enabled", rc == 0 && o.c.enabled);
	api_mgmt_kv(b, ',', "ip", ip);
	api_mgmt_kv(b, ',', "matchedEntry", m);
	api_mgmt_kv(b, ',', "serviceId", s);
	api_mgmt_kv_bool(b, ',', "whitelisted", m != NULL);
	json_put_raw(b, "}");
	json_decref(white);
	api_mgmt_ok_close(&r);
out:
	free(o.c.whitelist);
	api_mgmt_end(&r);
}

static int count_config(void *ctx, const mgmt_canary_t *c)
{
	list_t *l = ctx;
	json_t *w = json_loads(c->whitelist ? c->whitelist : "[]", 0, NULL);
	l->n++;
	l->enabled += c->enabled;
	l->entries += json_array_size(w);
	json_decref(w);
	return 0;
}

void api_rt_canary_stats(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_READ, true))
		return;
	list_t l = {NULL, 0, 0, 0};
	int rc = mgmt_canaries(r.m, NULL, count_config, &l);
	if (rc < 0) {
		api_rt_fail(&r, rc, NULL);
	} else {
		api_mgmt_ok_open(&r);
		buf_t *b = api_mgmt_out(&r);
		api_mgmt_kv_i64(b, '{', "disabledConfigs", l.n - (int)l.enabled);
		api_mgmt_kv_i64(b, ',', "enabledConfigs", l.enabled);
		api_mgmt_kv_i64(b, ',', "totalConfigs", l.n);
		api_mgmt_kv_i64(b, ',', "totalWhitelistEntries", (int64_t)l.entries);
		json_put_raw(b, "}");
		api_mgmt_ok_close(&r);
	}
	api_mgmt_end(&r);
}

/* ---- One service's canary, as routing sees it ------------------------------------------------ */

typedef struct {
	api_mgmt_req_t *r;
	buf_t *b;
	int n;
	uint32_t instances;
	int rc;
} groups_out_t;

static void put_canary_group(groups_out_t *o, const mgmt_group_t *g)
{
	char key[MGMT_MAX_SERVICE + MGMT_MAX_REGION + MGMT_MAX_ZONE + MGMT_MAX_NAME + 8];
	uint32_t n = 0;
	if (strcmp(g->status, "active") != 0)
		return;
	if (o->rc == 0)
		o->rc = api_rt_member_count(o->r, g, &n);
	mgmt_group_rust_key(g, key, sizeof(key));
	json_put_raw(o->b, o->n++ ? "," : "");
	api_mgmt_kv_i64(o->b, '{', "groupId", g->id);
	api_mgmt_kv(o->b, ',', "groupKey", key);
	api_mgmt_kv_i64(o->b, ',', "instanceCount", n);
	json_put_raw(o->b, "}");
	o->instances += n;
}

static int canary_rule_group(void *ctx, const mgmt_rule_group_t *rg)
{
	groups_out_t *o = ctx;
	mgmt_group_t g;
	if (mgmt_group_get(o->r->m, rg->group_id, &g) == 0)
		put_canary_group(o, &g);
	return o->rc;
}

static int canary_named(void *ctx, const mgmt_group_t *g)
{
	put_canary_group(ctx, g);
	return ((groups_out_t *)ctx)->rc;
}

static int canary_rule(void *ctx, const mgmt_rule_t *rule)
{
	groups_out_t *o = ctx;
	return mgmt_rule_groups(o->r->m, 0, rule->id, 0, canary_rule_group, o);
}

void api_rt_canary_service_stats(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	one_t o;
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_READ, true))
		return;
	const char *s = api_param("serviceId");
	int rc = get_config(r.m, s, &o);
	if (rc < 0 && rc != -ENOENT) {
		api_rt_fail(&r, rc, NULL);
		goto out;
	}
	json_t *white = json_loads(rc == 0 ? o.c.whitelist : "[]", 0, NULL);
	size_t entries = json_array_size(white);
	json_decref(white);
	api_mgmt_ok_open(&r);
	buf_t *b = api_mgmt_out(&r);
	groups_out_t g = {&r, b, 0, 0, 0};
	json_put_raw(b, "{\"canaryGroups\":[");
	mgmt_rule_filter_t rf = {.service = s, .name = MGMT_CANARY_RULE};
	if ((rc = mgmt_rules(r.m, &rf, canary_rule, &g)) == 0 && g.n == 0) {
		mgmt_group_filter_t gf = {.service = s, .name = "canary"};
		rc = mgmt_groups(r.m, &gf, canary_named, &g);
	}
	json_put_raw(b, "]");
	api_mgmt_kv_i64(b, ',', "canaryInstances", g.instances);
	api_mgmt_kv_bool(b, ',', "configured", o.found > 0);
	api_mgmt_kv_bool(b, ',', "enabled", o.found > 0 && o.c.enabled);
	api_mgmt_kv(b, ',', "serviceId", s);
	api_mgmt_kv_i64(b, ',', "whitelistSize", (int64_t)entries);
	json_put_raw(b, "}");
	api_mgmt_done(&r, rc < 0 ? rc : g.rc);
out:
	free(o.c.whitelist);
	api_mgmt_end(&r);
}

/* ---- Java: update-canary-ips.json ------------------------------------------------------------ */

typedef struct {
	mgmt_rtx_t *t;
	const json_t *keep; /* the IPs that stay bound */
	char **drop;
	size_t n, cap;
} rebind_t;

static int old_binding(void *ctx, const mgmt_binding_t *b)
{
	rebind_t *x = ctx;
	const json_t *e;
	size_t i;
	json_array_foreach(x->keep, i,
	                   e) if (!strcasecmp(json_string_value(e), b->instance)) return 0;
	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 8;
		char **v = realloc(x->drop, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		x->drop = v;
		x->cap = cap;
	}
	return (x->drop[x->n++] = strdup(b->instance)) ? 0 : -ENOMEM;
}

/* The group's instances become exactly ips. */
static int rebind(mgmt_rtx_t *t, int64_t gid, const json_t *ips, char *err, size_t len)
{
	rebind_t x = {t, ips, NULL, 0, 0};
	const json_t *e;
	size_t i;
	int rc = mgmt_bindings(mgmt_rtx_handle(t), gid, NULL, old_binding, &x);
	for (i = 0; rc == 0 && i < x.n; i++)
		rc = mgmt_binding_delete(t, 0, gid, x.drop[i], err, len);
	json_array_foreach(ips, i, e)
	{
		mgmt_binding_t b;
		if (rc < 0)
			break;
		memset(&b, 0, sizeof(b));
		b.group_id = gid;
		snprintf(b.instance, sizeof(b.instance), "%s", json_string_value(e));
		rc = mgmt_binding_put(t, &b, err, len);
	}
	for (i = 0; i < x.n; i++)
		free(x.drop[i]);
	free(x.drop);
	return rc;
}

static int write_canary(mgmt_rtx_t *t, const char *service, const char *app, const json_t *ips,
                        const char *white, char *err, size_t len)
{
	mgmt_rule_t rule;
	mgmt_group_t g;
	mgmt_rule_group_t rg;
	mgmt_canary_t c;
	int rc;
	memset(&rule, 0, sizeof(rule));
	snprintf(rule.service, sizeof(rule.service), "%s", service);
	snprintf(rule.name, sizeof(rule.name), "%s", MGMT_CANARY_RULE);
	strcpy(rule.status, "active");
	strcpy(rule.strategy, "weighted-round-robin");
	if ((rc = mgmt_rule_create(t, &rule, true, err, len)) < 0)
		return rc;
	memset(&g, 0, sizeof(g));
	snprintf(g.service, sizeof(g.service), "%s", service);
	snprintf(g.region, sizeof(g.region), "%s", api_cfg()->region);
	strcpy(g.zone, "canary");
	snprintf(g.name, sizeof(g.name), "%s", app);
	snprintf(g.app_id, sizeof(g.app_id), "%s", app);
	strcpy(g.status, "active");
	if ((rc = mgmt_group_create(t, &g, true, err, len)) < 0)
		return rc;
	memset(&rg, 0, sizeof(rg));
	rg.rule_id = rule.id;
	rg.group_id = g.id;
	rg.unreleased_weight = MGMT_WEIGHT_DEFAULT;
	if ((rc = mgmt_rule_group_put(t, &rg, MGMT_WEIGHT_PUBLISH, err, len)) < 0 ||
	    (rc = rebind(t, g.id, ips, err, len)) < 0)
		return rc;
	memset(&c, 0, sizeof(c));
	snprintf(c.service, sizeof(c.service), "%s", service);
	c.enabled = true;
	c.whitelist = (char *)white;
	return mgmt_canary_put(t, &c, err, len);
}

void api_rt_java_canary(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	api_mgmt_ctx_t c;
	mgmt_rtx_t *t;
	buf_t white = {0};
	char svc[MGMT_MAX_SERVICE + 1], app[MGMT_MAX_NAME + 1], err[MGMT_MAX_ERR * 2] = "";
	const char *field = NULL;
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_JAVA, MGMT_WRITE, false))
		return;
	const json_t *ips = json_member(r.body, "canaryips");
	if (api_mgmt_decode_str(r.body, "serviceid", svc, sizeof(svc)) < 0 || !svc[0]) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "serviceId is null or empty");
		goto out;
	}
	if (api_mgmt_decode_str(r.body, "appid", app, sizeof(app)) < 0 || !app[0]) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "appId is null or empty");
		goto out;
	}
	if (!json_is_array(ips) || api_rt_decode_ips(ips, &white, &field) < 0) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "canaryIps is a list of IP addresses");
		goto out;
	}
	if (!api_rt_begin(&r, &c, "java", &t))
		goto out;
	json_t *list = json_loads(white.data, 0, NULL);
	int rc = write_canary(t, svc, app, list, white.data, err, sizeof(err));
	json_decref(list);
	if (api_rt_finish(&r, t, rc, err)) {
		api_mgmt_ok(&r);
	}
out:
	buf_free(&white);
	api_mgmt_end(&r);
}

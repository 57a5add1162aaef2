/*
 * api_routing_rules.c - route rules on the Rust surface (MANAGEMENT.md
 * §3.2.4, §3.3): /api/routing/rules (list, create), a rule by its routeId
 * (read, update, delete, publish, unpublish) and its groups with weights.
 *
 * A rule is created unpublished (status "inactive"); publishing makes it
 * the service's routing on the Rust discovery paths (when it is the first
 * published one) and puts it in the Java answers.  Weights here are the
 * Rust rewrite's: clamped to 1..100 and effective at once (both the
 * released and the unreleased weight).  A rule's group is named by its
 * numeric groupId (a number or a string of digits), its key, or its name
 * within the rule's service; a group of another service is refused (400).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "api_routing.h"
#include "artemis/codec.h"

/* The rule a path names: 0, or answered (404). */
static int path_rule(api_mgmt_req_t *r, mgmt_rule_t *rule)
{
	const char *id = api_param("routeId");
	int rc = id ? mgmt_rule_get(r->m, id, rule) : -ENOENT;
	if (rc == -ENOENT)
		api_mgmt_fail(r, API_DATA_NOT_FOUND, "no route rule %s", id ? id : "");
	else if (rc < 0)
		api_rt_fail(r, rc, NULL);
	return rc;
}

static void answer_rule(api_mgmt_req_t *r, const mgmt_rule_t *rule)
{
	api_mgmt_ok_open(r);
	int rc = api_rt_put_rule(r, api_mgmt_out(r), rule);
	api_mgmt_done(r, rc);
}

/* ---- The list, a creation ---------------------------------------------------------------- */

typedef struct {
	api_mgmt_req_t *r;
	buf_t *b;
	int n;
} list_t;

static int list_rule(void *ctx, const mgmt_rule_t *rule)
{
	list_t *l = ctx;
	json_put_raw(l->b, l->n++ ? "," : "");
	return api_rt_put_rule(l->r, l->b, rule);
}

static void list_rules(api_mgmt_req_t *r)
{
	char svc[MGMT_MAX_SERVICE + 2], status[32];
	mgmt_rule_filter_t f = {0};
	f.service = api_mgmt_arg(r, "serviceid", svc, sizeof(svc));
	f.status = api_mgmt_arg(r, "status", status, sizeof(status));
	if (f.service && !*f.service)
		f.service = NULL;
	if (f.status && !*f.status)
		f.status = NULL;
	api_mgmt_ok_open(r);
	list_t l = {r, api_mgmt_out(r), 0};
	json_put_raw(l.b, "[");
	int rc = mgmt_rules(r->m, &f, list_rule, &l);
	json_put_raw(l.b, "]");
	api_mgmt_done(r, rc);
}

static void create_rule(api_mgmt_req_t *r)
{
	api_mgmt_ctx_t c;
	mgmt_rule_t rule;
	mgmt_rtx_t *t;
	unsigned fields;
	const char *field = NULL;
	char err[MGMT_MAX_ERR] = "";
	int rc = api_rt_decode_rule(r->body, &rule, &fields, &field);
	if (rc < 0) {
		api_mgmt_fail(r, API_BAD_REQUEST, "%s %s", field,
		              rc == -ENAMETOOLONG ? "is longer than allowed" : "is not valid");
		return;
	}
	const char *missing = !rule.route_id[0]  ? "routeId"
	                      : !rule.service[0] ? "serviceId"
	                      : !rule.name[0]    ? "name"
	                                         : NULL;
	if (missing) {
		api_mgmt_fail(r, API_BAD_REQUEST, "%s is null or empty", missing);
		return;
	}
	strcpy(rule.status, "inactive");
	if (!api_rt_begin(r, &c, "rust", &t))
		return;
	rc = mgmt_rule_create(t, &rule, false, err, sizeof(err));
	if (!api_rt_finish(r, t, rc, err))
		return;
	r->res->status = 201;
	answer_rule(r, &rule);
}

void api_rt_rules(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	bool write = req->method == HTTP_M_POST;
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, write ? MGMT_WRITE : MGMT_READ, !write))
		return;
	if (write)
		create_rule(&r);
	else
		list_rules(&r);
	api_mgmt_end(&r);
}

/* ---- One rule ---------------------------------------------------------------------------------
 */

/* A write on a rule: 'U' update from the body, 'D' delete, 'P' publish,
 * 'N' unpublish; answered with the rule (or a message). */
static void rule_write(api_mgmt_req_t *r, mgmt_rule_t *rule, int kind)
{
	api_mgmt_ctx_t c;
	mgmt_rtx_t *t;
	mgmt_rule_t in;
	unsigned fields = 0;
	const char *field = NULL;
	char err[MGMT_MAX_ERR] = "";
	int rc;
	memset(&in, 0, sizeof(in));
	if (kind == 'U' && r->body && api_rt_decode_rule(r->body, &in, &fields, &field) < 0) {
		api_mgmt_fail(r, API_BAD_REQUEST, "%s is not valid", field);
		return;
	}
	if (!api_rt_begin(r, &c, "rust", &t))
		return;
	in.id = rule->id;
	if (kind == 'D') {
		rc = mgmt_rule_delete(t, rule->id, err, sizeof(err));
	} else {
		if (kind != 'U') {
			fields = MGMT_RF_STATUS;
			strcpy(in.status, kind == 'P' ? "active" : "inactive");
		}
		rc = mgmt_rule_update(t, &in, fields, err, sizeof(err));
	}
	if (!api_rt_finish(r, t, rc, err))
		return;
	if (kind != 'D' && mgmt_rule_get(r->m, rule->route_id, rule) == 0) {
		answer_rule(r, rule);
	} else if (kind == 'D') {
		char msg[MGMT_MAX_NAME + 32];
		snprintf(msg, sizeof(msg), "rule %s deleted", rule->route_id);
		api_mgmt_ok_open(r);
		json_put_cstr(api_mgmt_out(r), msg);
		api_mgmt_ok_close(r);
	}
}

void api_rt_rule(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_rule_t rule;
	bool read = req->method == HTTP_M_GET;
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, read ? MGMT_READ : MGMT_WRITE, true))
		return;
	if (path_rule(&r, &rule) == 0) {
		if (read)
			answer_rule(&r, &rule);
		else
			rule_write(&r, &rule, req->method == HTTP_M_DELETE ? 'D' : 'U');
	}
	api_mgmt_end(&r);
}

static void publish(const http_request_t *req, http_response_t *res, int kind)
{
	api_mgmt_req_t r;
	mgmt_rule_t rule;
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_WRITE, true))
		return;
	if (path_rule(&r, &rule) == 0)
		rule_write(&r, &rule, kind);
	api_mgmt_end(&r);
}

void api_rt_rule_publish(const http_request_t *req, http_response_t *res)
{
	publish(req, res, 'P');
}

void api_rt_rule_unpublish(const http_request_t *req, http_response_t *res)
{
	publish(req, res, 'N');
}

/* ---- A rule's groups --------------------------------------------------------------------------
 */

/* The group named by text (id, key, or a name of the rule's service). */
static int named_group(api_mgmt_req_t *r, const mgmt_rule_t *rule, const char *text,
                       mgmt_group_t *g, char *err, size_t len)
{
	mgmt_group_t key;
	int rc;
	if (api_rt_parse_group_key(text, &key) == 0)
		rc = key.id ? mgmt_group_get(r->m, key.id, g)
		            : mgmt_group_find(r->m, key.service, key.region, key.zone, key.name, g);
	else
		rc = mgmt_group_by_name(r->m, rule->service, text, g);
	if (rc == -ENOENT)
		snprintf(err, len, "no group %s", text);
	else if (rc == -EEXIST)
		snprintf(err, len, "several zones of %s have a group %s: name it by its groupId",
		         rule->service, text);
	return rc == -EEXIST ? -EINVAL : rc;
}

typedef struct {
	api_mgmt_req_t *r;
	const mgmt_rule_t *rule;
	buf_t *b;
	int n;
} rg_list_t;

static int list_rule_group(void *ctx, const mgmt_rule_group_t *rg)
{
	rg_list_t *l = ctx;
	json_put_raw(l->b, l->n++ ? "," : "");
	return api_rt_put_rule_group(l->r, l->b, l->rule, rg);
}

/* Answer with the rule's group g (after a write). */
static void answer_rule_group(api_mgmt_req_t *r, const mgmt_rule_t *rule, int64_t group_id)
{
	api_mgmt_ok_open(r);
	rg_list_t l = {r, rule, api_mgmt_out(r), 0};
	int rc = mgmt_rule_groups(r->m, 0, rule->id, group_id, list_rule_group, &l);
	if (rc == 0 && l.n == 0)
		json_put_raw(l.b, "null");
	api_mgmt_done(r, rc);
}

/* Put g in the rule with the body's weight (1..100, default 5). */
static void put_rule_group(api_mgmt_req_t *r, const mgmt_rule_t *rule, const mgmt_group_t *g,
                           bool require_weight)
{
	api_mgmt_ctx_t c;
	mgmt_rtx_t *t;
	mgmt_rule_group_t rg;
	long long w = MGMT_WEIGHT_DEFAULT;
	char err[MGMT_MAX_ERR] = "";
	int rc = api_rt_decode_weight(json_member(r->body, "weight"), &w);
	if (rc == -EINVAL || (rc == -ENOENT && require_weight)) {
		api_mgmt_fail(r, API_BAD_REQUEST, "weight is %s",
		              rc == -EINVAL ? "not a number" : "null or empty");
		return;
	}
	memset(&rg, 0, sizeof(rg));
	rg.rule_id = rule->id;
	rg.group_id = g->id;
	rg.unreleased_weight = mgmt_weight_clamp(MGMT_WEIGHT_RUST, w);
	if (api_mgmt_decode_str(r->body, "regionid", rg.region, sizeof(rg.region)) < 0 ||
	    api_mgmt_decode_str(r->body, "zoneid", rg.zone, sizeof(rg.zone)) < 0) {
		api_mgmt_fail(r, API_BAD_REQUEST, "regionId or zoneId is not valid");
		return;
	}
	if (!api_rt_begin(r, &c, "rust", &t))
		return;
	rc = mgmt_rule_group_put(t, &rg, MGMT_WEIGHT_RUST, err, sizeof(err));
	if (api_rt_finish(r, t, rc, err))
		answer_rule_group(r, rule, g->id);
}

void api_rt_rule_groups(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_rule_t rule;
	mgmt_group_t g;
	char text[MGMT_MAX_SERVICE + MGMT_MAX_REGION + MGMT_MAX_ZONE + MGMT_MAX_NAME + 8];
	char err[MGMT_MAX_ERR * 2] = "";
	bool write = req->method == HTTP_M_POST;
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, write ? MGMT_WRITE : MGMT_READ, !write))
		return;
	if (path_rule(&r, &rule) < 0)
		goto out;
	if (!write) {
		api_mgmt_ok_open(&r);
		rg_list_t l = {&r, &rule, api_mgmt_out(&r), 0};
		json_put_raw(l.b, "[");
		int rc = mgmt_rule_groups(r.m, 0, rule.id, 0, list_rule_group, &l);
		json_put_raw(l.b, "]");
		api_mgmt_done(&r, rc);
		goto out;
	}
	int64_t id;
	int rc = api_rt_decode_id(json_member(r.body, "groupid"), &id);
	if (rc == 0)
		snprintf(text, sizeof(text), "%lld", (long long)id);
	else if (api_mgmt_decode_str(r.body, "groupid", text, sizeof(text)) < 0 || !text[0]) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "groupId is null or empty");
		goto out;
	}
	if ((rc = named_group(&r, &rule, text, &g, err, sizeof(err))) < 0) {
		api_rt_fail(&r, rc, err);
		goto out;
	}
	r.res->status = 201;
	put_rule_group(&r, &rule, &g, false);
out:
	api_mgmt_end(&r);
}

static int count_one(void *ctx, const mgmt_rule_group_t *rg)
{
	(void)rg;
	(*(int *)ctx)++;
	return 0;
}

void api_rt_rule_group(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	api_mgmt_ctx_t c;
	mgmt_rtx_t *t;
	mgmt_rule_t rule;
	mgmt_group_t g;
	char err[MGMT_MAX_ERR * 2] = "";
	bool del = req->method == HTTP_M_DELETE;
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_WRITE, del))
		return;
	if (path_rule(&r, &rule) < 0)
		goto out;
	int rc = named_group(&r, &rule, api_param("groupId"), &g, err, sizeof(err));
	if (rc < 0) {
		api_rt_fail(&r, rc, err);
		goto out;
	}
	if (!del) {
		int n = 0;
		if ((rc = mgmt_rule_groups(r.m, 0, rule.id, g.id, count_one, &n)) < 0)
			api_rt_fail(&r, rc, NULL);
		else if (n == 0)
			api_mgmt_fail(&r, API_DATA_NOT_FOUND, "group %s is not in rule %s", g.name,
			              rule.route_id);
		else
			put_rule_group(&r, &rule, &g, true);
		goto out;
	}
	if (!api_rt_begin(&r, &c, "rust", &t))
		goto out;
	rc = mgmt_rule_group_delete(t, 0, rule.id, g.id, err, sizeof(err));
	if (api_rt_finish(&r, t, rc, err)) {
		api_mgmt_ok_open(&r);
		json_put_cstr(api_mgmt_out(&r), "group removed from the rule");
		api_mgmt_ok_close(&r);
	}
out:
	api_mgmt_end(&r);
}

/*
 * api_routing.c - groups on the Rust surface (MANAGEMENT.md §3.2.3, §3.3):
 * /api/routing/groups (list, create), a group by numeric id or by its key
 * serviceId:regionId:zoneId:name (read, update, delete), its tags, its
 * members (registered instances that belong, and group instance bindings),
 * and /api/routing/services/{serviceId}/instances (bindings in a batch).
 *
 * Answers: {"success":true,"data":..} (201 for creations), failures
 * {"success":false,"message"} with 400, 404, 409.  Every write is one
 * routing transaction (mgmt_rtx_*): all of it or nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "api_routing.h"
#include "artemis/codec.h"

static void created(api_mgmt_req_t *r)
{
	r->res->status = 201;
}

/* ---- The list, a creation ---------------------------------------------------------- */

typedef struct {
	api_mgmt_req_t *r;
	buf_t *b;
	int n;
} list_t;

static int list_group(void *ctx, const mgmt_group_t *g)
{
	list_t *l = ctx;
	json_put_raw(l->b, l->n++ ? "," : "");
	return api_rt_put_group(l->r, l->b, g);
}

static void list_groups(api_mgmt_req_t *r)
{
	char svc[MGMT_MAX_SERVICE + 2], region[MGMT_MAX_REGION + 2], zone[MGMT_MAX_ZONE + 2];
	mgmt_group_filter_t f = {0};
	f.service = api_mgmt_arg(r, "serviceid", svc, sizeof(svc));
	f.region = api_mgmt_arg(r, "regionid", region, sizeof(region));
	f.zone = api_mgmt_arg(r, "zoneid", zone, sizeof(zone));
	if (f.service && !*f.service)
		f.service = NULL;
	if (f.region && !*f.region)
		f.region = NULL;
	if (f.zone && !*f.zone)
		f.zone = NULL;
	api_mgmt_ok_open(r);
	list_t l = {r, api_mgmt_out(r), 0};
	json_put_raw(l.b, "[");
	int rc = mgmt_groups(r->m, &f, list_group, &l);
	if (rc < 0) {
		api_rt_fail(r, rc, NULL);
		return;
	}
	json_put_raw(l.b, "]");
	api_mgmt_ok_close(r);
}

static void create_group(api_mgmt_req_t *r)
{
	api_mgmt_ctx_t c;
	mgmt_group_t g;
	mgmt_rtx_t *t;
	unsigned fields;
	const char *field = NULL;
	char err[MGMT_MAX_ERR];
	int rc = api_rt_decode_group(r->body, &g, &fields, &field);
	if (rc < 0) {
		api_mgmt_fail(r, API_BAD_REQUEST, "%s %s", field,
		              rc == -ENAMETOOLONG ? "is longer than allowed" : "is not valid");
		return;
	}
	if (!api_rt_begin(r, &c, "rust", &t))
		return;
	err[0] = '\0';
	rc = mgmt_group_create(t, &g, false, err, sizeof(err));
	if (!api_rt_finish(r, t, rc, err))
		return;
	created(r);
	api_mgmt_ok_open(r);
	api_rt_put_group(r, api_mgmt_out(r), &g);
	api_mgmt_ok_close(r);
}

void api_rt_groups(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	bool write = req->method == HTTP_M_POST;
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, write ? MGMT_WRITE : MGMT_READ, !write))
		return;
	if (write)
		create_group(&r);
	else
		list_groups(&r);
	api_mgmt_end(&r);
}

/* ---- One group ----------------------------------------------------------------------------- */

static void answer_group(api_mgmt_req_t *r, const mgmt_group_t *g)
{
	api_mgmt_ok_open(r);
	int rc = api_rt_put_group(r, api_mgmt_out(r), g);
	api_mgmt_done(r, rc);
}

void api_rt_group_by_id(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_group_t g;
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_READ, true))
		return;
	if (api_rt_path_group(&r, "groupId", &g) == 0)
		answer_group(&r, &g);
	api_mgmt_end(&r);
}

/* One write on a group, committed, answered with `then` (group, or a message). */
static void group_write(api_mgmt_req_t *r, mgmt_group_t *g, int kind)
{
	api_mgmt_ctx_t c;
	mgmt_rtx_t *t;
	mgmt_group_t in;
	unsigned fields = 0;
	const char *field = NULL;
	char err[MGMT_MAX_ERR] = "";
	int rc;
	if (kind == 'U' && r->body && api_rt_decode_group(r->body, &in, &fields, &field) < 0) {
		api_mgmt_fail(r, API_BAD_REQUEST, "%s is not valid", field);
		return;
	}
	if (!api_rt_begin(r, &c, "rust", &t))
		return;
	if (kind == 'U') {
		in.id = g->id;
		rc = mgmt_group_update(
		    t, &in, fields & (MGMT_GF_DESC | MGMT_GF_STATUS | MGMT_GF_APP | MGMT_GF_TYPE),
		    err, sizeof(err));
	} else {
		rc = mgmt_group_delete(t, g->id, err, sizeof(err));
	}
	if (!api_rt_finish(r, t, rc, err))
		return;
	if (kind == 'U' && mgmt_group_get(r->m, g->id, g) == 0) {
		answer_group(r, g);
	} else {
		char msg[MGMT_MAX_SERVICE + MGMT_MAX_NAME + 64];
		snprintf(msg, sizeof(msg), "group %s of %s deleted", g->name, g->service);
		api_mgmt_ok_open(r);
		json_put_cstr(api_mgmt_out(r), msg);
		api_mgmt_ok_close(r);
	}
}

void api_rt_group(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_group_t g;
	bool read = req->method == HTTP_M_GET;
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, read ? MGMT_READ : MGMT_WRITE, true))
		return;
	if (api_rt_path_group(&r, "groupKey", &g) == 0) {
		if (read)
			answer_group(&r, &g);
		else
			group_write(&r, &g, req->method == HTTP_M_DELETE ? 'D' : 'U');
	}
	api_mgmt_end(&r);
}

/* ---- Tags ----------------------------------------------------------------------------------- */

typedef struct {
	buf_t *b;
	int n;
} tag_list_t;

static int tag_item(void *ctx, const mgmt_tag_t *t)
{
	tag_list_t *l = ctx;
	json_put_raw(l->b, l->n++ ? "," : "");
	api_mgmt_kv(l->b, '{', "key", t->key);
	api_mgmt_kv(l->b, ',', "value", t->value);
	return json_put_raw(l->b, "}");
}

static void list_tags(api_mgmt_req_t *r, const mgmt_group_t *g)
{
	api_mgmt_ok_open(r);
	buf_t *b = api_mgmt_out(r);
	json_put_raw(b, "[");
	tag_list_t l = {b, 0};
	int rc = mgmt_tags(r->m, g->id, NULL, tag_item, &l);
	json_put_raw(b, "]");
	api_mgmt_done(r, rc);
}

/* {tags: [{key, value}]}, {tags: {k: v}}, or one {key, value}. */
static int put_tags(mgmt_rtx_t *t, const json_t *body, int64_t gid, char *err, size_t len)
{
	const json_t *tags = json_member(body, "tags"), *e, *v;
	char key[MGMT_MAX_TAG_KEY + 2], value[MGMT_MAX_TAG_VALUE + 2];
	const char *k;
	size_t i;
	int rc = 0, n = 0;
	if (json_is_array(tags)) {
		json_array_foreach(tags, i, e)
		{
			if (api_mgmt_decode_str(e, "key", key, sizeof(key)) < 0 ||
			    api_mgmt_decode_str(e, "value", value, sizeof(value)) < 0 || !key[0]) {
				snprintf(err, len, "tags[%zu] is not {key, value}", i);
				return -EINVAL;
			}
			if ((rc = mgmt_tag_put(t, gid, key, value, err, len)) < 0)
				return rc;
			n++;
		}
	} else if (json_is_object(tags)) {
		json_object_foreach((json_t *)tags, k, v)
		{
			shm_str_t s;
			char scratch[64];
			if (json_to_str(v, &s, scratch, sizeof(scratch)) < 0 ||
			    strlen(k) > MGMT_MAX_TAG_KEY || (s.ptr && s.len > MGMT_MAX_TAG_VALUE)) {
				snprintf(err, len, "tags.%.64s is not a string", k);
				return -EINVAL;
			}
			snprintf(value, sizeof(value), "%.*s", s.ptr ? (int)s.len : 0,
			         s.ptr ? s.ptr : "");
			if ((rc = mgmt_tag_put(t, gid, k, value, err, len)) < 0)
				return rc;
			n++;
		}
	} else if (api_mgmt_decode_str(body, "key", key, sizeof(key)) == 0 && key[0] &&
	           api_mgmt_decode_str(body, "value", value, sizeof(value)) == 0) {
		return mgmt_tag_put(t, gid, key, value, err, len);
	}
	if (n == 0) {
		snprintf(err, len, "tags is null or empty");
		return -EINVAL;
	}
	return 0;
}

void api_rt_group_tags(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	api_mgmt_ctx_t c;
	mgmt_group_t g;
	mgmt_rtx_t *t;
	char err[MGMT_MAX_ERR] = "";
	bool write = req->method == HTTP_M_POST;
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, write ? MGMT_WRITE : MGMT_READ, !write))
		return;
	if (api_rt_path_group(&r, "groupKey", &g) < 0)
		goto out;
	if (!write) {
		list_tags(&r, &g);
		goto out;
	}
	if (!api_rt_begin(&r, &c, "rust", &t))
		goto out;
	int rc = put_tags(t, r.body, g.id, err, sizeof(err));
	if (!api_rt_finish(&r, t, rc, err))
		goto out;
	created(&r);
	list_tags(&r, &g);
out:
	api_mgmt_end(&r);
}

/* A removal from the group a path names: rm(t, group, the path's param),
 * answered with msg. */
typedef int (*group_rm_fn)(mgmt_rtx_t *t, const mgmt_group_t *g, const char *what, char *err,
                           size_t len);

static void group_remove(const http_request_t *req, http_response_t *res, const char *param,
                         group_rm_fn rm, const char *msg)
{
	api_mgmt_req_t r;
	api_mgmt_ctx_t c;
	mgmt_group_t g;
	mgmt_rtx_t *t;
	char err[MGMT_MAX_ERR] = "";
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_WRITE, true))
		return;
	if (api_rt_path_group(&r, "groupKey", &g) == 0 && api_rt_begin(&r, &c, "rust", &t) &&
	    api_rt_finish(&r, t, rm(t, &g, api_param(param), err, sizeof(err)), err)) {
		api_mgmt_ok_open(&r);
		json_put_cstr(api_mgmt_out(&r), msg);
		api_mgmt_ok_close(&r);
	}
	api_mgmt_end(&r);
}

static int rm_tag(mgmt_rtx_t *t, const mgmt_group_t *g, const char *key, char *err, size_t len)
{
	return mgmt_tag_delete(t, g->id, key, NULL, err, len);
}

void api_rt_group_tag(const http_request_t *req, http_response_t *res)
{
	group_remove(req, res, "tagKey", rm_tag, "tag removed");
}

/* ---- Members ----------------------------------------------------------------------------------
 */

typedef struct {
	buf_t *b;
	int n;
	const char *region; /* filter, or NULL */
} members_t;

static int member_item(void *ctx, const shm_instance_view_t *v, const char *json, size_t len)
{
	members_t *m = ctx;
	if (m->region && strncasecmp(v->display, m->region, strlen(m->region)) != 0)
		return 0;
	json_put_raw(m->b, m->n++ ? "," : "");
	int rc = api_mgmt_put_instance(m->b, v, json, len);
	if (rc == -EINVAL)
		rc = buf_append(m->b, json, len);
	return rc;
}

static void list_members(api_mgmt_req_t *r, const mgmt_group_t *g)
{
	char region[MGMT_MAX_REGION + 2];
	const char *rf = api_mgmt_arg(r, "regionid", region, sizeof(region));
	api_mgmt_ok_open(r);
	members_t m = {api_mgmt_out(r), 0, rf && *rf ? rf : NULL};
	json_put_raw(m.b, "[");
	int rc = mgmt_group_members(r->m, g, member_item, &m);
	json_put_raw(m.b, "]");
	api_mgmt_done(r, rc);
}

static int put_binding_json(buf_t *b, const mgmt_binding_t *x)
{
	api_mgmt_kv(b, '{', "bindingType", x->binding[0] ? x->binding : "manual");
	api_mgmt_kv_i64(b, ',', "groupId", x->group_id);
	api_mgmt_kv_i64(b, ',', "id", x->id);
	api_mgmt_kv(b, ',', "instanceId", x->instance);
	api_mgmt_kv(b, ',', "regionId", x->region);
	api_mgmt_kv(b, ',', "zoneId", x->zone);
	return json_put_raw(b, "}");
}

static void bind_one(api_mgmt_req_t *r, const mgmt_group_t *g)
{
	api_mgmt_ctx_t c;
	mgmt_binding_t x;
	mgmt_rtx_t *t;
	char svc[MGMT_MAX_SERVICE + 1], err[MGMT_MAX_ERR] = "";
	const char *field = NULL;
	int rc;
	if (api_rt_decode_binding(r->body, &x, &field) < 0 ||
	    api_mgmt_decode_str(r->body, "serviceid", svc, sizeof(svc)) < 0) {
		api_mgmt_fail(r, API_BAD_REQUEST, "%s is not valid", field ? field : "serviceId");
		return;
	}
	if (svc[0] && strcasecmp(svc, g->service) != 0) {
		api_mgmt_fail(r, API_BAD_REQUEST, "group %s is of service %s, not %s", g->name,
		              g->service, svc);
		return;
	}
	x.group_id = g->id;
	if (!api_rt_begin(r, &c, "rust", &t))
		return;
	rc = mgmt_binding_put(t, &x, err, sizeof(err));
	if (!api_rt_finish(r, t, rc, err))
		return;
	created(r);
	api_mgmt_ok_open(r);
	put_binding_json(api_mgmt_out(r), &x);
	api_mgmt_ok_close(r);
}

void api_rt_group_instances(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_group_t g;
	bool write = req->method == HTTP_M_POST;
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, write ? MGMT_WRITE : MGMT_READ, !write))
		return;
	if (api_rt_path_group(&r, "groupKey", &g) == 0) {
		if (write)
			bind_one(&r, &g);
		else
			list_members(&r, &g);
	}
	api_mgmt_end(&r);
}

static int rm_binding(mgmt_rtx_t *t, const mgmt_group_t *g, const char *instance, char *err,
                      size_t len)
{
	return mgmt_binding_delete(t, 0, g->id, instance, err, len);
}

void api_rt_group_instance(const http_request_t *req, http_response_t *res)
{
	group_remove(req, res, "instanceId", rm_binding, "instance unbound");
}

/* ---- Bindings of a service in a batch ----------------------------------------------------------
 */

/* The group an element names: its numeric groupId, a group key, or a
 * group name of the service (its regionId and zoneId when several). */
static int element_group(api_mgmt_req_t *r, const json_t *e, const char *service, mgmt_group_t *g,
                         char *err, size_t len)
{
	const json_t *gid = json_member(e, "groupid");
	char name[MGMT_MAX_SERVICE + MGMT_MAX_REGION + MGMT_MAX_ZONE + MGMT_MAX_NAME + 8];
	char region[MGMT_MAX_REGION + 1], zone[MGMT_MAX_ZONE + 1];
	mgmt_group_t key;
	int64_t id = 0;
	int rc = api_rt_decode_id(gid, &id);
	name[0] = '\0';
	if (rc == 0) {
		rc = mgmt_group_get(r->m, id, g);
	} else if (api_mgmt_decode_str(e, "groupid", name, sizeof(name)) == 0 && name[0]) {
		if (api_rt_parse_group_key(name, &key) == 0 && !key.id) {
			rc = mgmt_group_find(r->m, key.service, key.region, key.zone, key.name, g);
		} else {
			api_mgmt_decode_str(e, "regionid", region, sizeof(region));
			api_mgmt_decode_str(e, "zoneid", zone, sizeof(zone));
			rc = region[0] && zone[0]
			         ? mgmt_group_find(r->m, service, region, zone, name, g)
			         : mgmt_group_by_name(r->m, service, name, g);
		}
	} else {
		snprintf(err, len, "groupId is null or empty");
		return -EINVAL;
	}
	if (rc == -ENOENT && name[0])
		snprintf(err, len, "no group %s of %s", name, service);
	else if (rc == -ENOENT)
		snprintf(err, len, "no group %lld", (long long)id);
	else if (rc == -EEXIST)
		snprintf(err, len, "several zones of %s have a group %s: give regionId and zoneId",
		         service, name);
	if (rc == 0 && strcasecmp(g->service, service) != 0) {
		snprintf(err, len, "group %s is of service %s, not %s", g->name, g->service,
		         service);
		return -EXDEV;
	}
	return rc == -EEXIST ? -EINVAL : rc;
}

void api_rt_service_instances(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	api_mgmt_ctx_t c;
	mgmt_rtx_t *t = NULL;
	char err[MGMT_MAX_ERR * 4] = "", svc[MGMT_MAX_SERVICE + 1];
	const char *service = api_param("serviceId");
	size_t i, n = 0;
	const json_t *e;
	int rc = 0;
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_WRITE, false))
		return;
	const json_t *list = json_member(r.body, "instances");
	if (!json_is_array(list) || json_array_size(list) == 0 ||
	    json_array_size(list) > MGMT_MAX_BATCH) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "instances is a list of 1 to %d group instances",
		              MGMT_MAX_BATCH);
		goto out;
	}
	if (!api_rt_begin(&r, &c, "rust", &t))
		goto out;
	json_array_foreach(list, i, e)
	{
		mgmt_binding_t x;
		mgmt_group_t g;
		const char *field = NULL;
		if ((rc = api_rt_decode_binding(e, &x, &field)) < 0 ||
		    (rc = api_mgmt_decode_str(e, "serviceid", svc, sizeof(svc))) < 0) {
			snprintf(err, sizeof(err), "instances[%zu].%s is not valid", i,
			         field ? field : "serviceId");
			break;
		}
		if (svc[0] && strcasecmp(svc, service) != 0) {
			snprintf(err, sizeof(err), "instances[%zu] is of service %s, not %s", i,
			         svc, service);
			rc = -EXDEV;
			break;
		}
		if ((rc = element_group(&r, e, service, &g, err, sizeof(err))) < 0)
			break;
		x.group_id = g.id;
		if ((rc = mgmt_binding_put(t, &x, err, sizeof(err))) < 0)
			break;
		n++;
	}
	if (!api_rt_finish(&r, t, rc, err))
		goto out;
	created(&r);
	api_mgmt_ok_open(&r);
	json_put_u64(api_mgmt_out(&r), n);
	api_mgmt_ok_close(&r);
out:
	api_mgmt_end(&r);
}

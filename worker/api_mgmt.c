/*
 * api_mgmt.c - what every management handler shares (api_mgmt.h): the start
 * of a request (body, node state, store), the envelopes of both
 * surfaces, request arguments, output pieces.
 *
 * Java's surface answers handled errors with HTTP 200 and a responseStatus
 * (API.md §1.6, §8 trap 17); the Rust rewrite's with real statuses.  An
 * internal error is logged once here, with its reason (never a token).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "api_mgmt.h"
#include "artemis/codec.h"
#include "artemis/log.h"
#include "metrics.h"
#include "worker.h"

/* A write's result into the metrics, once per request. */
static void mgmt_count(api_mgmt_req_t *r)
{
	if (r->access == MGMT_READ || r->counted)
		return;
	r->counted = true;
	metrics_mgmt_op(r->req, r->failed);
}

bool api_mgmt_begin(api_mgmt_req_t *r, const http_request_t *req, http_response_t *res,
                    enum api_mgmt_style style, enum api_mgmt_access access, bool body_optional)
{
	memset(r, 0, sizeof(*r));
	r->req = req;
	r->res = res;
	r->style = style;
	r->access = access;
	r->m = g_worker ? g_worker->mgmt : NULL;
	bool has_body = req->body_len > 0 && req->body[strspn(req->body, " \t\r\n")] != '\0';
	if ((has_body || !body_optional) && api_body_object(req, res, &r->body) < 0) {
		r->failed = API_BAD_REQUEST; /* answered 400 */
		goto refused;
	}
	if (access != MGMT_READ && !api_node_up()) {
		api_mgmt_fail(r, API_UNAVAILABLE,
		              "Artemis node is not in up state. Current status: %s",
		              api_node_status());
		goto refused;
	}
	if (r->m == NULL) {
		api_mgmt_fail(r, API_INTERNAL_ERROR,
		              "the management store is not open on this "
		              "node (see its log)");
		goto refused;
	}
	return true;
refused:
	mgmt_count(r);
	return false;
}

void api_mgmt_end(api_mgmt_req_t *r)
{
	mgmt_count(r);
	json_decref(r->body);
	r->body = NULL;
}

buf_t *api_mgmt_out(api_mgmt_req_t *r)
{
	return &r->res->body;
}

static int http_status_of(const char *code)
{
	if (!strcmp(code, API_BAD_REQUEST))
		return 400;
	if (!strcmp(code, API_DATA_NOT_FOUND))
		return 404;
	if (!strcmp(code, API_NO_PERMISSION))
		return 403;
	if (!strcmp(code, API_UNAVAILABLE))
		return 503;
	if (!strcmp(code, API_UNAUTHORIZED))
		return 401;
	if (!strcmp(code, API_CONFLICT))
		return 409;
	if (!strcmp(code, API_RATE_LIMITED))
		return 429;
	return 500;
}

/* {"errorCode","errorMessage","message","status"}: Java's ResponseStatus
 * with the Rust name of the message beside it. */
static void put_status_object(buf_t *b, const char *status, const char *code, const char *msg)
{
	api_mgmt_kv(b, '{', "errorCode", code);
	api_mgmt_kv(b, ',', "errorMessage", msg);
	api_mgmt_kv(b, ',', "message", msg);
	api_mgmt_kv(b, ',', "status", status);
	json_put_raw(b, "}");
}

/* The failure with its message made. */
static void fail_msg(api_mgmt_req_t *r, const char *code, const char *msg)
{
	buf_t *b = &r->res->body;

	if (!strcmp(code, API_INTERNAL_ERROR))
		log_warn("%s %s: %s", r->req->path ? r->req->path : "", code, msg);
	b->len = 0;
	r->res->content_type = NULL;
	switch (r->style) {
	case MGMT_STYLE_JAVA:
		json_put_raw(b, "{\"responseStatus\":");
		api_put_fail(b, code, msg);
		json_put_raw(b, "}");
		break;
	case MGMT_STYLE_BOTH:
		json_put_raw(b, "{\"responseStatus\":");
		api_put_fail(b, code, msg);
		json_put_raw(b, ",\"status\":");
		put_status_object(b, "fail", code, msg);
		json_put_raw(b, "}");
		break;
	case MGMT_STYLE_STATUS:
		r->res->status = http_status_of(code);
		json_put_raw(b, "{\"status\":");
		put_status_object(b, "fail", code, msg);
		json_put_raw(b, "}");
		break;
	case MGMT_STYLE_REST:
		r->res->status = http_status_of(code);
		api_mgmt_kv(b, '{', "data", NULL);
		api_mgmt_kv(b, ',', "errorCode", code);
		api_mgmt_kv(b, ',', "message", msg);
		api_mgmt_kv_bool(b, ',', "success", false);
		json_put_raw(b, "}");
		break;
	}
	r->failed = code;
	metrics_fail(r->req);
}

void api_mgmt_fail(api_mgmt_req_t *r, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail_msg(r, code, msg);
}

void api_mgmt_fail_rc(api_mgmt_req_t *r, int rc, const char *err)
{
	const char *msg = err && *err ? err : strerror(-rc);
	if (rc == -EINVAL || rc == -ENAMETOOLONG || rc == -E2BIG)
		fail_msg(r, API_BAD_REQUEST, msg);
	else if (rc == -ENOENT)
		fail_msg(r, API_DATA_NOT_FOUND, msg);
	else
		fail_msg(r, API_INTERNAL_ERROR, msg);
}

void api_mgmt_ok_open(api_mgmt_req_t *r)
{
	buf_t *b = &r->res->body;

	b->len = 0;
	switch (r->style) {
	case MGMT_STYLE_JAVA:
		json_put_raw(b, "{\"responseStatus\":" API_STATUS_SUCCESS);
		break;
	case MGMT_STYLE_BOTH:
		json_put_raw(b, "{\"responseStatus\":" API_STATUS_SUCCESS ",\"status\":");
		put_status_object(b, "success", "success", "");
		break;
	case MGMT_STYLE_STATUS:
		json_put_raw(b, "{\"status\":");
		put_status_object(b, "success", "success", "");
		break;
	case MGMT_STYLE_REST:
		json_put_raw(b, "{\"success\":true,\"data\":");
		break;
	}
}

void api_mgmt_ok_close(api_mgmt_req_t *r)
{
	buf_t *b = &r->res->body;

	json_put_raw(b, "}");
	if (buf_error(b))
		fail_msg(r, API_INTERNAL_ERROR, "out of memory");
}

void api_mgmt_done(api_mgmt_req_t *r, int rc)
{
	if (rc < 0)
		api_mgmt_fail_rc(r, rc, NULL);
	else
		api_mgmt_ok_close(r);
}

void api_mgmt_ok(api_mgmt_req_t *r)
{
	api_mgmt_ok_open(r);
	if (r->style == MGMT_STYLE_REST)
		json_put_raw(&r->res->body, "null");
	api_mgmt_ok_close(r);
}

const char *api_mgmt_arg(const api_mgmt_req_t *r, const char *canon, char *buf, size_t len)
{
	char scratch[64];
	shm_str_t v;
	const json_t *m;

	if (api_query_get(r->req, canon, buf, len) >= 0)
		return buf;
	m = json_member(r->body, canon);
	if (m == NULL || json_is_null(m) || json_to_str(m, &v, scratch, sizeof(scratch)) < 0 ||
	    v.ptr == NULL || v.len >= len)
		return NULL;
	memcpy(buf, v.ptr, v.len);
	buf[v.len] = '\0';
	return buf;
}

bool api_mgmt_arg_u32(api_mgmt_req_t *r, const char *canon, const char *name, uint32_t dflt,
                      uint32_t max, uint32_t *out, char *buf, size_t len)
{
	const char *v = api_mgmt_arg(r, canon, buf, len);
	char *end;
	*out = dflt;
	if (v == NULL || *v == '\0')
		return true;
	unsigned long n = strtoul(v, &end, 10);
	if (*v < '0' || *v > '9' || *end || n > max) {
		api_mgmt_fail(r, API_BAD_REQUEST, "%s must be a number from 0 to %u", name, max);
		return false;
	}
	*out = (uint32_t)n;
	return true;
}

bool api_mgmt_req_ctx(api_mgmt_req_t *r, api_mgmt_ctx_t *c, const char *surface)
{
	char op[MGMT_MAX_OPERATOR + 2];
	const char *field = NULL;
	const char *q = api_query_get(r->req, "operatorid", op, sizeof(op)) >= 0 ? op : NULL;
	int rc = api_mgmt_decode_ctx(r->body, q, c, &field);

	if (rc < 0) {
		api_mgmt_fail(r, API_BAD_REQUEST, "%s %s", field,
		              rc == -ENAMETOOLONG ? "is longer than allowed" : "is not valid");
		return false;
	}
	c->ctx.surface = surface;
	return true;
}

/* ---- Output pieces ------------------------------------------------------------------ */

static void put_name(buf_t *b, char sep, const char *name)
{
	char open[2] = {sep, '"'};
	buf_append(b, open, 2);
	buf_puts(b, name);
	buf_append(b, "\":", 2);
}

void api_mgmt_kv(buf_t *b, char sep, const char *name, const char *value)
{
	put_name(b, sep, name);
	json_put_cstr(b, value);
}

void api_mgmt_kv_i64(buf_t *b, char sep, const char *name, int64_t value)
{
	put_name(b, sep, name);
	json_put_i64(b, value);
}

void api_mgmt_kv_bool(buf_t *b, char sep, const char *name, bool value)
{
	put_name(b, sep, name);
	json_put_bool(b, value);
}

int api_mgmt_put_key(buf_t *b, const mgmt_key_t *k)
{
	switch (k->kind) {
	case MGMT_INSTANCE:
		api_mgmt_kv(b, '{', "instanceId", k->instance);
		api_mgmt_kv(b, ',', "regionId", k->region);
		api_mgmt_kv(b, ',', "serviceId", k->service);
		break;
	case MGMT_SERVER:
		api_mgmt_kv(b, '{', "regionId", k->region);
		api_mgmt_kv(b, ',', "serverId", k->server);
		break;
	default:
		api_mgmt_kv(b, '{', "regionId", k->region);
		api_mgmt_kv(b, ',', "serviceId", k->service);
		api_mgmt_kv(b, ',', "zoneId", k->zone);
		break;
	}
	return json_put_raw(b, "}");
}

int api_mgmt_put_time_s(buf_t *b, uint64_t ms)
{
	return json_put_u64(b, ms / 1000);
}

int api_mgmt_put_iso(buf_t *b, uint64_t ms)
{
	char t[40];

	mgmt_format_time(ms, t, sizeof(t));
	return json_put_cstr(b, t);
}

bool api_mgmt_same_target(const mgmt_key_t *a, const mgmt_key_t *b)
{
	return a->kind == b->kind && !strcasecmp(a->region, b->region) &&
	       !strcasecmp(a->service, b->service) && !strcasecmp(a->instance, b->instance) &&
	       !strcasecmp(a->server, b->server) && !strcasecmp(a->zone, b->zone);
}

/* ---- Lists of operations --------------------------------------------------------------- */

static void put_record(buf_t *b, const mgmt_op_t *op)
{
	const mgmt_key_t *k = &op->key;

	switch (k->kind) {
	case MGMT_INSTANCE:
		json_put_raw(b, "{\"instanceKey\":");
		api_mgmt_put_key(b, k);
		api_mgmt_kv(b, ',', "operation", k->operation);
		api_mgmt_kv_bool(b, ',', "operationComplete", false);
		api_mgmt_kv(b, ',', "operatorId", op->operator_id);
		break;
	case MGMT_SERVER:
		api_mgmt_kv(b, '{', "operation", k->operation);
		api_mgmt_kv(b, ',', "operatorId", op->operator_id);
		api_mgmt_kv(b, ',', "regionId", k->region);
		api_mgmt_kv(b, ',', "serverId", k->server);
		break;
	default:
		api_mgmt_kv(b, '{', "operation", k->operation);
		api_mgmt_kv_i64(b, ',', "operationTime", (int64_t)(op->update_ms / 1000));
		api_mgmt_kv(b, ',', "operatorId", op->operator_id);
		api_mgmt_kv(b, ',', "regionId", k->region);
		api_mgmt_kv(b, ',', "serviceId", k->service);
		api_mgmt_kv(b, ',', "zoneId", k->zone);
		break;
	}
	json_put_raw(b, "}");
}

static int list_op(void *ctx, const mgmt_op_t *op)
{
	static const char *const key_names[MGMT_KINDS] = {
	    "{\"instanceKey\":", "{\"serverKey\":", "{\"zoneKey\":"};
	api_mgmt_op_list_t *l = ctx;
	const mgmt_key_t *k = &op->key;

	if (!l->open || !api_mgmt_same_target(&l->last, k)) {
		if (l->open)
			json_put_raw(&l->groups, "]},");
		json_put_raw(&l->groups, key_names[k->kind]);
		api_mgmt_put_key(&l->groups, k);
		json_put_raw(&l->groups, ",\"operations\":[");
		l->last = *k;
		l->open = true;
		l->ngroups++;
	} else {
		json_put_raw(&l->groups, ",");
	}
	json_put_cstr(&l->groups, k->operation);
	json_put_raw(&l->names, l->n ? "," : "");
	json_put_cstr(&l->names, k->operation);
	json_put_raw(&l->records, l->n ? "," : "");
	put_record(&l->records, op);
	l->n++;
	return 0;
}

int api_mgmt_op_list(mgmt_t *m, const mgmt_op_filter_t *f, api_mgmt_op_list_t *l)
{
	memset(l, 0, sizeof(*l));
	int rc = mgmt_ops(m, f, list_op, l);
	if (l->open)
		json_put_raw(&l->groups, "]}");
	if (rc == 0)
		rc = buf_error(&l->groups)    ? buf_error(&l->groups)
		     : buf_error(&l->records) ? buf_error(&l->records)
		                              : buf_error(&l->names);
	return rc;
}

void api_mgmt_op_list_free(api_mgmt_op_list_t *l)
{
	buf_free(&l->groups);
	buf_free(&l->records);
	buf_free(&l->names);
}

void api_mgmt_put_list(buf_t *b, const char *name, const buf_t *items)
{
	json_put_raw(b, ",\"");
	json_put_raw(b, name);
	json_put_raw(b, "\":[");
	if (items->len)
		buf_append(b, items->data, items->len);
	json_put_raw(b, "]");
}

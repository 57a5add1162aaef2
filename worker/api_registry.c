/*
 * api_registry.c - register, heartbeat and unregister (API.md §2.1).
 *
 * Called by api_dispatch for /artemis/api/registry/{register,heartbeat,
 * unregister}.json and the /api/registry/ aliases.  The order of checks is
 * Java's RegistryTool: rate limiter, instances null or empty (bad-request),
 * node not up (service-unavailable), then per instance: region (and zone
 * unless allowed) -> no-permission, required fields -> internal-service-
 * error "Exception: ...", the operation -> data-not-found (heartbeat only).
 *
 * A body that Jackson could not bind (instances not an array, an instance
 * not an object, a port that is not a number) is HTTP 400 before anything
 * is written, so a batch is never half-applied because of its shape.
 *
 * The heartbeat path costs a parse, a hash probe and a CAS per instance and
 * a constant response when all succeed: no lock, no allocation of our own,
 * no logging.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artemis/clock.h"

#include "api.h"
#include "artemis/codec.h"
#include "metrics.h"
#include "worker.h"

enum reg_op { OP_REGISTER, OP_HEARTBEAT, OP_UNREGISTER };

typedef api_outcome_t reg_outcome_t;

void api_outcome_set(api_outcome_t *o, const char *code, const char *fmt, ...)
{
	va_list ap;

	o->code = code;
	va_start(ap, fmt);
	vsnprintf(o->msg, sizeof(o->msg), fmt, ap);
	va_end(ap);
}

#define reg__msgf api_outcome_set

/* RegistryTool.checkSameZone. */
static bool reg__check_zone(const json_instance_t *in, reg_outcome_t *o)
{
	const config_t *cfg = api_cfg();

	if (!api_same(in->region, cfg->region)) {
		reg__msgf(o, API_NO_PERMISSION,
		          "regionId is not the same as the registry node. regionId: %.*s, registry "
		          "node.regionId: %s",
		          in->region.ptr ? (int)in->region.len : 4,
		          in->region.ptr ? in->region.ptr : "null", cfg->region);
		return false;
	}
	if (cfg->allow_registry_from_other_zone || api_same(in->zone, cfg->zone))
		return true;
	reg__msgf(o, API_NO_PERMISSION,
	          "zoneId is not the same as the registry node. zoneId: %.*s, registry "
	          "node.zoneId: %s",
	          in->zone.ptr ? (int)in->zone.len : 4, in->zone.ptr ? in->zone.ptr : "null",
	          cfg->zone);
	return false;
}

/* InstanceChecker: what Java throws for, reported as it reports a throw. */
static bool reg__check_required(const json_instance_t *in, reg_outcome_t *o)
{
	const char *field = NULL;

	if (api_blank(in->service))
		field = "instance.serviceId";
	else if (api_blank(in->instance))
		field = "instance.instanceId";
	else if (api_blank(in->url))
		field = "instance.url";
	if (field == NULL)
		return true;
	reg__msgf(o, API_INTERNAL_ERROR, "Exception: %s is null or blank.", field);
	return false;
}

bool api_registry_unavailable(int rc, api_outcome_t *o)
{
	if (rc == -ENOBUFS)
		api_outcome_set(
		    o, API_UNAVAILABLE,
		    "Exception: out of shared memory: /dev/shm has no room to grow the "
		    "registry; the write was refused and registered instances are still "
		    "served.");
	else if (rc == -ETIMEDOUT)
		api_outcome_set(o, API_UNAVAILABLE,
		                "Exception: the registry is busy: its writer lock was not free in "
		                "time (a writer is stopped or stuck); try again.");
	else
		return false;
	return true;
}

static void reg__shm_error(int rc, const char *field, reg_outcome_t *o)
{
	if (api_registry_unavailable(rc, o))
		return;
	switch (rc) {
	case -ENAMETOOLONG:
	case -E2BIG:
		reg__msgf(o, API_BAD_REQUEST, "instance.%s is longer than allowed.",
		          field ? field : "json");
		break;
	case -EINVAL:
		reg__msgf(o, API_BAD_REQUEST, "instance.%s is invalid.", field ? field : "data");
		break;
	case -ENOSPC:
		reg__msgf(o, API_INTERNAL_ERROR, "Exception: the registry is full.");
		break;
	default:
		reg__msgf(o, API_INTERNAL_ERROR, "Exception: %s", strerror(-rc));
	}
}

/* The stored form of the instance being registered (reused). */
static buf_t reg__stored;

static void reg__register(const json_instance_t *in, reg_outcome_t *o)
{
	shm_instance_in_t si;
	const char *field = NULL;
	int rc;

	/* The one conversion the replicator uses too (instance_in.c). */
	if ((rc = json_instance_to_shm(in, &reg__stored, &si, &field)) < 0 ||
	    (rc = shm_register(api_shm(), &si)) < 0)
		reg__shm_error(rc, field, o);
}

/* Register or unregister one instance (heartbeats go as one batch:
 * reg__heartbeat_fast, reg__heartbeat_slow). */
static void reg__run_one(enum reg_op op, const json_instance_t *in, reg_outcome_t *o)
{
	shm_key_t key;
	int rc;

	o->code = NULL;
	if (!reg__check_zone(in, o) || !reg__check_required(in, o))
		return;
	if (op == OP_REGISTER) {
		reg__register(in, o);
		return;
	}
	json_instance_key(in, &key);
	rc = shm_unregister(api_shm(), &key, 0);
	if (rc < 0 && rc != -ENOENT)
		reg__shm_error(rc, NULL, o);
}

/* {"errorCode":..,"errorMessage":"<toString>: <msg>","instance":{..}} */
static int reg__put_failed(buf_t *b, const json_instance_t *in, const reg_outcome_t *o)
{
	char display[sizeof(((shm_instance_view_t *)0)->display)];
	char msg[sizeof(display) + API_MSG_MAX + 4];
	int rc;

	json_instance_display(in, display, sizeof(display));
	snprintf(msg, sizeof(msg), "%s: %s", display, o->msg);
	json_put_raw(b, "{\"errorCode\":");
	json_put_cstr(b, o->code);
	json_put_raw(b, ",\"errorMessage\":");
	json_put_cstr(b, msg);
	json_put_raw(b, ",\"instance\":");
	if ((rc = json_instance_encode(in, b)) < 0)
		return rc;
	json_put_raw(b, "}");
	return buf_error(b);
}

static void reg__respond_status(http_response_t *res, const char *status_json)
{
	buf_reset(&res->body);
	json_put_raw(&res->body, "{\"failedInstances\":null,\"responseStatus\":");
	json_put_raw(&res->body, status_json);
	json_put_raw(&res->body, "}");
}

static void reg__respond_fail(const http_request_t *req, http_response_t *res, const char *code,
                              const char *message)
{
	buf_reset(&res->body);
	json_put_raw(&res->body, "{\"failedInstances\":null,\"responseStatus\":");
	api_put_fail(&res->body, code, message);
	json_put_raw(&res->body, "}");
	metrics_fail(req);
}

/* Jackson binds the whole request before anything runs: check every
 * element's shape first so that a bad one refuses the whole batch. */
static int reg__check_shapes(json_t *instances)
{
	json_instance_t tmp;
	json_t *v;
	size_t i;

	json_array_foreach(instances, i, v)
	{
		int rc;
		if (json_is_null(v))
			continue;
		rc = json_instance_decode(v, &tmp, NULL);
		if (rc == -EINVAL || rc == -ENOMEM)
			return -EINVAL;
	}
	return 0;
}

static void reg__not_up(const http_request_t *req, http_response_t *res)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "Serivce registry is not in up state. Current status: %s",
	         api_node_status());
	reg__respond_fail(req, res, API_UNAVAILABLE, msg);
}

static void reg__finish(const http_request_t *req, http_response_t *res, size_t failed)
{
	if (failed == 0) {
		reg__respond_status(res, API_STATUS_SUCCESS);
	} else {
		json_put_raw(&res->body, "],\"responseStatus\":" API_STATUS_PARTIAL "}");
		metrics_fail(req);
	}
}

/* A failure found on the fast path: decode that one instance's text with
 * jansson to echo it exactly as the slow path would. */
static void reg__put_failed_span(buf_t *b, shm_str_t span, const reg_outcome_t *o)
{
	json_instance_t in;
	json_t *obj = json_loadb(span.ptr, span.len, 0, NULL);

	if (obj != NULL && json_instance_decode(obj, &in, NULL) == 0)
		reg__put_failed(b, &in, o);
	json_decref(obj);
}

/* The heartbeat fast path (json_fast_instances): no jansson, no
 * allocation when every instance succeeds, and the renewals go to
 * shm_heartbeat_batch so the registry's cache misses overlap.  false: not
 * the plain shape, the caller takes the general path. */
#define REG_FAST_MAX 1024

static void reg__heartbeat_outcome(const json_instance_t *in, int rc, reg_outcome_t *o)
{
	o->code = NULL;
	if (rc == 1) /* failed a check: run it again to word the failure */
		(void)(reg__check_zone(in, o) && reg__check_required(in, o));
	else if (rc == -ENOENT || rc == -EBUSY)
		reg__msgf(o, API_DATA_NOT_FOUND, "Instance is not exising! Need re-register.");
	else if (rc < 0)
		reg__shm_error(rc, NULL, o);
}

static bool reg__heartbeat_fast(const http_request_t *req, http_response_t *res, uint64_t now_ms)
{
	static json_instance_t in[REG_FAST_MAX];
	static shm_str_t span[REG_FAST_MAX];
	static shm_key_t keys[REG_FAST_MAX];
	static uint32_t which[REG_FAST_MAX];
	static int rcs[REG_FAST_MAX], krc[REG_FAST_MAX];
	reg_outcome_t o;
	size_t n, m = 0, failed = 0;

	if (json_fast_instances(req->body, req->body_len, in, span, REG_FAST_MAX, &n) < 0)
		return false;
	if (!api_node_up()) {
		reg__not_up(req, res);
		return true;
	}
	for (size_t i = 0; i < n; i++) {
		if (!reg__check_zone(&in[i], &o) || !reg__check_required(&in[i], &o)) {
			rcs[i] = 1;
			continue;
		}
		rcs[i] = 0;
		json_instance_key(&in[i], &keys[m]);
		which[m++] = (uint32_t)i;
	}
	shm_heartbeat_batch(api_shm(), keys, m, now_ms, krc);
	for (size_t j = 0; j < m; j++)
		rcs[which[j]] = krc[j];
	buf_reset(&res->body);
	for (size_t i = 0; i < n; i++) {
		if (rcs[i] == 0)
			continue;
		reg__heartbeat_outcome(&in[i], rcs[i], &o);
		json_put_raw(&res->body, failed++ ? "," : "{\"failedInstances\":[");
		reg__put_failed_span(&res->body, span[i], &o);
	}
	reg__finish(req, res, failed);
	return true;
}

/* The preamble of every batch: parse, instances null or empty ->
 * bad-request, a wrongly shaped element -> 400 before anything runs, node
 * not up -> service-unavailable (when check_up).  false: answered. */
static bool reg__batch_open(const http_request_t *req, http_response_t *res, bool check_up,
                            json_t **root, json_t **instances)
{
	if (api_body_object(req, res, root) < 0)
		return false;
	*instances = json_member(*root, "instances");
	if (*instances == NULL || json_is_null(*instances) ||
	    (json_is_array(*instances) && json_array_size(*instances) == 0)) {
		reg__respond_fail(req, res, API_BAD_REQUEST, "request.instances is null or empty.");
		return false;
	}
	if (!json_is_array(*instances) ||
	    (json_array_size(*instances) > 1 && reg__check_shapes(*instances) < 0)) {
		http_res_error(res, req, 400,
		               "JSON parse error: request.instances has the wrong type");
		return false;
	}
	if (check_up && !api_node_up()) {
		reg__not_up(req, res);
		return false;
	}
	buf_reset(&res->body);
	return true;
}

/* A single element that Jackson could not bind: 400, nothing written
 * (larger batches had their shapes checked by reg__batch_open). */
static bool reg__unbindable(const http_request_t *req, http_response_t *res, int decode_rc)
{
	if (decode_rc != -EINVAL && decode_rc != -ENOMEM)
		return false;
	buf_reset(&res->body);
	http_res_error(res, req, 400, "JSON parse error: an instance has the wrong type");
	return true;
}

void api_registry_batch(const http_request_t *req, http_response_t *res, bool check_up,
                        api_item_fn fn, void *ctx)
{
	json_t *root = NULL, *instances, *v;
	json_instance_t in;
	reg_outcome_t o;
	uint64_t now_ms = clock_wall_ms();
	size_t i, failed = 0;

	if (!reg__batch_open(req, res, check_up, &root, &instances))
		goto out;
	json_array_foreach(instances, i, v)
	{
		const char *field = NULL;
		int rc;

		if (json_is_null(v))
			continue;
		rc = json_instance_decode(v, &in, &field);
		if (reg__unbindable(req, res, rc))
			goto out;
		o.code = NULL;
		fn(&in, rc, field, now_ms, &o, ctx);
		if (o.code == NULL)
			continue;
		json_put_raw(&res->body, failed++ ? "," : "{\"failedInstances\":[");
		reg__put_failed(&res->body, &in, &o);
	}
	reg__finish(req, res, failed);
out:
	json_decref(root);
}

/* The general heartbeat path (what the fast scanner does not take):
 * decoded with jansson, checked instance by instance, then renewed as one
 * batch like the fast path, so copies of a key are renewed once. */
enum { HB_RENEW = 0, HB_FAILED = 1, HB_TOO_LONG = 2, HB_NULL = 3 };

struct reg_hb {
	json_instance_t *in;
	shm_key_t *keys;
	uint32_t *which;
	int *rcs, *krc;
	const char **field;
};

static void reg__hb_free(struct reg_hb *b)
{
	free(b->in);
	free(b->keys);
	free(b->which);
	free(b->rcs);
	free(b->krc);
	free(b->field);
}

static bool reg__hb_alloc(struct reg_hb *b, size_t n)
{
	memset(b, 0, sizeof(*b));
	b->in = calloc(n, sizeof(*b->in));
	b->keys = calloc(n, sizeof(*b->keys));
	b->which = calloc(n, sizeof(*b->which));
	b->rcs = calloc(n, sizeof(*b->rcs));
	b->krc = calloc(n, sizeof(*b->krc));
	b->field = calloc(n, sizeof(*b->field));
	return b->in && b->keys && b->which && b->rcs && b->krc && b->field;
}

static void reg__hb_outcome(struct reg_hb *b, size_t i, reg_outcome_t *o)
{
	o->code = NULL;
	if (b->rcs[i] == HB_TOO_LONG) {
		if (reg__check_zone(&b->in[i], o))
			reg__msgf(o, API_BAD_REQUEST, "instance.%s is longer than allowed.",
			          b->field[i]);
		return;
	}
	reg__heartbeat_outcome(&b->in[i], b->rcs[i], o);
}

static void reg__heartbeat_slow(const http_request_t *req, http_response_t *res, uint64_t now_ms)
{
	json_t *root = NULL, *instances;
	struct reg_hb b;
	reg_outcome_t o;
	size_t n, m = 0, failed = 0;

	memset(&b, 0, sizeof(b));
	if (!reg__batch_open(req, res, true, &root, &instances))
		goto out;
	n = json_array_size(instances);
	if (!reg__hb_alloc(&b, n)) {
		reg__respond_fail(req, res, API_INTERNAL_ERROR, "Exception: out of memory.");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array_get(instances, i);
		int rc;

		if (json_is_null(v)) {
			b.rcs[i] = HB_NULL;
			continue;
		}
		rc = json_instance_decode(v, &b.in[i], &b.field[i]);
		if (reg__unbindable(req, res, rc))
			goto out;
		if (rc == -ENAMETOOLONG) {
			b.rcs[i] = HB_TOO_LONG;
		} else if (!reg__check_zone(&b.in[i], &o) || !reg__check_required(&b.in[i], &o)) {
			b.rcs[i] = HB_FAILED;
		} else {
			json_instance_key(&b.in[i], &b.keys[m]);
			b.which[m++] = (uint32_t)i;
		}
	}
	shm_heartbeat_batch(api_shm(), b.keys, m, now_ms, b.krc);
	for (size_t j = 0; j < m; j++)
		b.rcs[b.which[j]] = b.krc[j];
	for (size_t i = 0; i < n; i++) {
		if (b.rcs[i] == HB_RENEW || b.rcs[i] == HB_NULL)
			continue;
		reg__hb_outcome(&b, i, &o);
		if (o.code == NULL)
			continue;
		json_put_raw(&res->body, failed++ ? "," : "{\"failedInstances\":[");
		reg__put_failed(&res->body, &b.in[i], &o);
	}
	reg__finish(req, res, failed);
out:
	reg__hb_free(&b);
	json_decref(root);
}

/* A client's instance: an over-long field is bad-request once the zone
 * check passed; otherwise reg__run_one. */
static void reg__item(const json_instance_t *in, int decode_rc, const char *field, uint64_t now_ms,
                      api_outcome_t *o, void *ctx)
{
	enum reg_op op = *(const enum reg_op *)ctx;

	if (decode_rc == -ENAMETOOLONG) {
		if (reg__check_zone(in, o))
			reg__msgf(o, API_BAD_REQUEST, "instance.%s is longer than allowed.", field);
		return;
	}
	(void)now_ms;
	reg__run_one(op, in, o);
}

static void reg__run(const http_request_t *req, http_response_t *res, enum reg_op op)
{
	static const enum api_limit limit[] = {API_LIMIT_REGISTER, API_LIMIT_HEARTBEAT,
	                                       API_LIMIT_UNREGISTER};
	uint64_t now_ms = clock_wall_ms();

	if (api_rate_limited(limit[op], now_ms)) {
		reg__respond_status(res, API_STATUS_RATE_LIMITED);
		metrics_fail(req);
		return;
	}
	if (op == OP_HEARTBEAT) {
		if (!reg__heartbeat_fast(req, res, now_ms))
			reg__heartbeat_slow(req, res, now_ms);
		return;
	}
	api_registry_batch(req, res, true, reg__item, &op);
}

void api_registry_register(const http_request_t *req, http_response_t *res)
{
	reg__run(req, res, OP_REGISTER);
}

void api_registry_heartbeat(const http_request_t *req, http_response_t *res)
{
	reg__run(req, res, OP_HEARTBEAT);
}

void api_registry_unregister(const http_request_t *req, http_response_t *res)
{
	reg__run(req, res, OP_UNREGISTER);
}

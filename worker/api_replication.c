/*
 * api_replication.c - the Java peers' replication endpoints (API.md §2.3),
 * for mixed clusters: POST /artemis/api/replication/registry/{register,
 * heartbeat,unregister}.json and services.json (POST, or GET with
 * regionId required).
 *
 * Java's semantics: what arrives here is never replicated again (this
 * path is Java's anti-loop mechanism), so every write is tagged with the
 * origin REPL_HTTP_ORIGIN, which the replicator neither forwards, nor
 * sends in snapshots, nor counts in digests (a Java peer replicates to
 * every node itself).  No node-status check and no zone check; the region
 * check applies.  A replicated heartbeat for an unknown or expired
 * instance registers it and succeeds.  services.json lists every service
 * with every lease, expired but not yet removed ones included, without a
 * `version`.
 *
 * Java's replication rate limiter (1 000 000 per 10 s by default) is not
 * applied: see docs/CLUSTER.md.
 *
 * Who may write through them: nobody by default.  [cluster] java_peers
 * lists the addresses (or networks) of the Java peers; a register,
 * heartbeat or unregister from any other source address is refused before
 * its body is looked at, with HTTP 200 and responseStatus `fail` /
 * `no-permission` (failedInstances null), which a Java peer's replication
 * treats as a permanent failure (API.md §4.7: the task is dropped, not
 * retried).  Refusals are logged at most once a minute per worker.
 * services.json only reads what discovery and status/leases.json already
 * serve to any client, and the web console reads the registry through it:
 * it answers everyone.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "artemis/clock.h"
#include "artemis/log.h"
#include "cache.h"
#include "artemis/codec.h"
#include "metrics.h"

#define REPL_HTTP_ORIGIN   SHM_ORIGIN_HTTP_PEER
#define REP_REFUSAL_LOG_MS 60000
enum rep_op { REP_REGISTER, REP_HEARTBEAT, REP_UNREGISTER };

typedef api_outcome_t rep_outcome_t;

/* [cluster] java_peers: false (and the refusal written) for any other
 * source address. */
static bool rep__allowed(const http_request_t *req, http_response_t *res)
{
	static uint64_t logged_ms, unlogged;
	const config_t *cfg = api_cfg();
	char msg[256];

	if (config_net_match(cfg->java_peers, cfg->njava_peers, req->peer_ip))
		return true;
	snprintf(msg, sizeof(msg),
	         "replication from %s is not allowed: this node accepts Java peers' replication "
	         "only from the addresses in [cluster] java_peers.",
	         req->peer_ip && req->peer_ip[0] ? req->peer_ip : "this address");
	buf_reset(&res->body);
	json_put_raw(&res->body, "{\"failedInstances\":null,\"responseStatus\":");
	api_put_fail(&res->body, API_NO_PERMISSION, msg);
	json_put_raw(&res->body, "}");
	metrics_fail(req);
	uint64_t now = clock_mono_ms();
	if (logged_ms && now - logged_ms < REP_REFUSAL_LOG_MS) {
		unlogged++;
		return false;
	}
	log_warn("%s from %s refused: not in [cluster] java_peers (%s; %llu more refused in the "
	         "last minute)",
	         req->path, req->peer_ip ? req->peer_ip : "?",
	         cfg->njava_peers ? "listed addresses only" : "replication writes are off",
	         (unsigned long long)unlogged);
	logged_ms = now;
	unlogged = 0;
	return false;
}

static void rep__shm_error(int rc, const char *field, rep_outcome_t *o)
{
	if (api_registry_unavailable(rc, o))
		return;
	if (rc == -ENAMETOOLONG || rc == -E2BIG || rc == -EINVAL)
		api_outcome_set(o, API_BAD_REQUEST, "instance.%s is invalid.",
		                field ? field : "data");
	else
		api_outcome_set(o, API_INTERNAL_ERROR, "Exception: %s",
		                rc == -ENOSPC ? "the registry is full." : strerror(-rc));
}

static void rep__register(const json_instance_t *in, rep_outcome_t *o)
{
	static buf_t stored;
	shm_instance_in_t si;
	const char *field = NULL;
	int rc = json_instance_to_shm(in, &stored, &si, &field);

	if (rc == 0) {
		si.origin = REPL_HTTP_ORIGIN;
		rc = shm_register(api_shm(), &si);
	}
	if (rc < 0 && rc != -ESTALE)
		rep__shm_error(rc, field, o);
}

/* One instance from a peer: no zone or node-status check, the region
 * check applies (§2.3). */
static void rep__item(const json_instance_t *in, int decode_rc, const char *field, uint64_t now_ms,
                      api_outcome_t *o, void *ctx)
{
	enum rep_op op = *(const enum rep_op *)ctx;
	shm_key_t key;
	int rc;

	if (decode_rc == -ENAMETOOLONG) {
		api_outcome_set(o, API_BAD_REQUEST, "instance.%s is longer than allowed.", field);
		return;
	}
	if (!api_same(in->region, api_cfg()->region)) {
		api_outcome_set(o, API_NO_PERMISSION,
		                "regionId is not the same as the registry node. regionId: %.*s, "
		                "registry node.regionId: %s",
		                in->region.ptr ? (int)in->region.len : 4,
		                in->region.ptr ? in->region.ptr : "null", api_cfg()->region);
		return;
	}
	if (api_blank(in->service) || api_blank(in->instance) || api_blank(in->url)) {
		api_outcome_set(o, API_INTERNAL_ERROR, "Exception: instance.%s is null or blank.",
		                api_blank(in->service)    ? "serviceId"
		                : api_blank(in->instance) ? "instanceId"
		                                          : "url");
		return;
	}
	json_instance_key(in, &key);
	switch (op) {
	case REP_REGISTER:
		rep__register(in, o);
		return;
	case REP_HEARTBEAT:
		rc = shm_renew_remote(api_shm(), &key, now_ms);
		if (rc == -ENOENT || rc == -EBUSY)
			rep__register(in, o); /* self-healing, as Java */
		else if (rc < 0)
			rep__shm_error(rc, NULL, o);
		return;
	case REP_UNREGISTER:
		rc = shm_unregister(api_shm(), &key, REPL_HTTP_ORIGIN);
		if (rc < 0 && rc != -ENOENT)
			rep__shm_error(rc, NULL, o);
		return;
	}
}

static void rep__run(const http_request_t *req, http_response_t *res, enum rep_op op)
{
	if (rep__allowed(req, res))
		api_registry_batch(req, res, false, rep__item, &op);
}

void api_replication_register(const http_request_t *req, http_response_t *res)
{
	rep__run(req, res, REP_REGISTER);
}

void api_replication_heartbeat(const http_request_t *req, http_response_t *res)
{
	rep__run(req, res, REP_HEARTBEAT);
}

void api_replication_unregister(const http_request_t *req, http_response_t *res)
{
	rep__run(req, res, REP_UNREGISTER);
}

/* ---- services.json ------------------------------------------------------------ */

typedef struct {
	buf_t *out;
	bool first;
	int rc;
} rep_services_t;

static int rep__service(void *ctx, const char *service, size_t len, const shm_service_info_t *info)
{
	rep_services_t *s = ctx;
	shm_str_t name = {service, len};

	(void)info;
	if (!s->first)
		json_put_raw(s->out, ",");
	s->first = false;
	s->rc = cache_put_service(api_shm(), name, s->out, NULL);
	return s->rc < 0;
}

void api_replication_services(const http_request_t *req, http_response_t *res)
{
	char region_q[CONFIG_STR], msg[CONFIG_STR + 128];
	shm_str_t region = {NULL, 0};
	json_t *root = NULL;

	if (req->method == HTTP_M_POST) {
		if (api_body_object(req, res, &root) < 0)
			return;
		json_t *v = json_member(root, "regionid");
		if (json_is_string(v))
			region = (shm_str_t){json_string_value(v), json_string_length(v)};
	} else {
		int n = api_query_get(req, "regionid", region_q, sizeof(region_q));
		if (n < 0) {
			http_res_error(res, req, 400,
			               "Required String parameter 'regionId' is not present");
			return;
		}
		region = (shm_str_t){region_q, (size_t)n};
	}
	buf_reset(&res->body);
	if (!api_same(region, api_cfg()->region)) {
		snprintf(msg, sizeof(msg),
		         "regionId is not the same as the registry node. regionId: %.*s, registry "
		         "node.regionId: %s",
		         region.ptr ? (int)(region.len > 64 ? 64 : region.len) : 4,
		         region.ptr ? region.ptr : "null", api_cfg()->region);
		json_put_raw(&res->body, "{\"responseStatus\":");
		api_put_fail(&res->body, API_NO_PERMISSION, msg);
		json_put_raw(&res->body, ",\"services\":null}");
		metrics_fail(req);
		goto out;
	}
	rep_services_t s = {&res->body, true, 0};
	json_put_raw(&res->body, "{\"responseStatus\":" API_STATUS_SUCCESS ",\"services\":[");
	shm_services_foreach(api_shm(), rep__service, &s);
	if (s.rc < 0) {
		buf_reset(&res->body);
		json_put_raw(&res->body, "{\"responseStatus\":");
		api_put_fail(&res->body, API_INTERNAL_ERROR, strerror(-s.rc));
		json_put_raw(&res->body, ",\"services\":null}");
		metrics_fail(req);
		goto out;
	}
	json_put_raw(&res->body, "]}");
out:
	json_decref(root);
}

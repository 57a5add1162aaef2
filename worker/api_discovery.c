/*
 * api_discovery.c - lookup, service, services and services-delta
 * (API.md §2.2), and the /api/discovery/ aliases.
 *
 * Java's DiscoveryServiceImpl order: bad-request (no configs / blank
 * serviceId), service-unavailable (node not up), no-permission (region,
 * then zone unless allowed), then the services.  Services are looked up by
 * exact-case serviceId; an unknown one is {serviceId, instances:null}.  A
 * lookup answers each serviceId once (first occurrence order), for at most
 * DISC_MAX_SERVICES of them and within max_response_bytes.
 * Responses of known services come from the worker's cache (cache.c), so a
 * lookup of an unchanged service is a version probe and a memcpy.
 *
 * Instances operated down (pull-out, mgmt/) are left out everywhere except
 * POST /api/discovery/services.json, which lists them (MANAGEMENT.md §3.3).
 * Every Service carries the routing data of API.md §4.10 (cache.c).
 *
 * Routing applied (MANAGEMENT.md §2): on the Rust paths
 * (/api/discovery/service.json and lookup.json) the service's canary and
 * first published rule pick, per call, the instances the answer holds
 * (mgmt_route_decide: the caller's address, zone and region), and a body
 * with a single `discoveryConfig` gets Rust's single lookup
 * ({"success":true,"instance":{..}}).
 *
 * Region: Java reads the request's top-level regionId/zoneId.  When the
 * top-level regionId is absent, the discoveryConfig's regionId/zoneId are
 * used instead, so the §A README example (which puts region_id only inside
 * discovery_config) works.  See docs/API-NOTES.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <xxhash.h>

#include "artemis/clock.h"

#include "api.h"
#include "cache.h"
#include "artemis/codec.h"
#include "artemis/mgmt.h"
#include "metrics.h"
#include "versioned.h"
#include "worker.h"

#define DISC_MSG_MAX      512
#define DISC_MAX_SERVICES 10000 /* distinct serviceIds in one lookup */

/* DiscoveryServiceImpl.checkSameZone; NULL when allowed. */
static const char *disc__check_zone(shm_str_t region, shm_str_t zone, char *msg, size_t len)
{
	const config_t *cfg = api_cfg();

	if (!api_same(region, cfg->region)) {
		snprintf(msg, len,
		         "regionId is not the same as the registry node. regionId: %.*s, registry "
		         "node.regionId: %s",
		         region.ptr ? (int)(region.len > 200 ? 200 : region.len) : 4,
		         region.ptr ? region.ptr : "null", cfg->region);
		return msg;
	}
	if (cfg->allow_discovery_from_other_zone || api_same(zone, cfg->zone))
		return NULL;
	snprintf(
	    msg, len,
	    "zoneId is not the same as the registry node. zoneId: %.*s, registry node.zoneId: %s",
	    zone.ptr ? (int)(zone.len > 200 ? 200 : zone.len) : 4, zone.ptr ? zone.ptr : "null",
	    cfg->zone);
	return msg;
}

/* The checks common to lookup and service, after the bad-request one.
 * Returns NULL when the request may proceed, else the error code with the
 * message in msg. */
static const char *disc__gate(shm_str_t region, shm_str_t zone, char *msg, size_t len)
{
	if (!api_node_up()) {
		snprintf(msg, len, "Serivce discovery is not in up state. Current status: %s",
		         api_node_status());
		return API_UNAVAILABLE;
	}
	if (disc__check_zone(region, zone, msg, len) != NULL)
		return API_NO_PERMISSION;
	return NULL;
}

/* {"responseStatus":<fail>,"<field>":null} */
static void disc__fail(const http_request_t *req, http_response_t *res, const char *field,
                       const char *code, const char *msg)
{
	res->body.len = 0;
	json_put_raw(&res->body, "{\"responseStatus\":");
	api_put_fail(&res->body, code, msg);
	json_put_raw(&res->body, ",\"");
	json_put_raw(&res->body, field);
	json_put_raw(&res->body, "\":null}");
	metrics_fail(req);
}

static void disc__internal(const http_request_t *req, http_response_t *res, const char *field,
                           int rc)
{
	disc__fail(req, res, field, API_INTERNAL_ERROR, strerror(-rc));
}

/* ---- Routing on the Rust paths ------------------------------------------ */

/* The caller's address: the peer, or with [http] trust_forwarded_for the
 * first hop of X-Forwarded-For. */
static shm_str_t disc__caller_ip(const http_request_t *req)
{
	const char *x =
	    api_cfg()->trust_forwarded_for ? http_request_header(req, "X-Forwarded-For") : NULL;

	if (x != NULL && *x != '\0') {
		size_t n = strcspn(x, ",");
		while (n > 0 && (x[n - 1] == ' ' || x[n - 1] == '\t'))
			n--;
		while (n > 0 && (*x == ' ' || *x == '\t'))
			x++, n--;
		if (n > 0)
			return (shm_str_t){x, n};
	}
	return (shm_str_t){req->peer_ip, req->peer_ip ? strlen(req->peer_ip) : 0};
}

/* The routing variant of one service for this call (0 off the Rust
 * paths, or when nothing routes the service). */
static uint32_t disc__variant(const http_request_t *req, shm_str_t svc, shm_str_t zone,
                              shm_str_t region)
{
	mgmt_caller_t c = {disc__caller_ip(req), zone, region};
	uint32_t v = 0;

	if (!api_rust_path() || svc.len > SHM_MAX_SERVICE)
		return 0;
	if (mgmt_route_decide(api_shm(), svc, &c, &v) < 0)
		return 0; /* the projection was busy every time: every instance */
	return v;
}

/* ---- lookup.json ---------------------------------------------------------- */

/* The indexes of the configs with a non-blank serviceId seen for the first
 * time (exact case), in request order, into keep[] (n entries).  Returns
 * how many, or -ENOMEM. */
static long disc__distinct(const json_lookup_cfg_t *cfg, size_t n, uint32_t *keep)
{
	size_t cap = 16, nkeep = 0;
	uint32_t *slot;

	while (cap < 2 * n)
		cap <<= 1;
	slot = calloc(cap, sizeof(*slot)); /* index + 1; 0 = empty */
	if (slot == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		shm_str_t s = cfg[i].service;
		size_t h;
		bool dup = false;

		if (api_blank(s))
			continue;
		for (h = XXH3_64bits(s.ptr, s.len) & (cap - 1); slot[h]; h = (h + 1) & (cap - 1)) {
			shm_str_t o = cfg[slot[h] - 1].service;
			if (o.len == s.len && memcmp(o.ptr, s.ptr, s.len) == 0) {
				dup = true;
				break;
			}
		}
		if (dup)
			continue;
		slot[h] = (uint32_t)i + 1;
		keep[nkeep++] = (uint32_t)i;
	}
	free(slot);
	return (long)nkeep;
}

/* After the request is decoded (fast path or jansson): the gate, then one
 * Service per distinct non-blank serviceId, in the order of their first
 * occurrence (issue 11 item 3: 50,000 copies of one serviceId made a 1.2 GB
 * answer).  At most DISC_MAX_SERVICES distinct ones, and the answer stops
 * at [http] max_response_bytes: both are a bad-request envelope, which a
 * Java client takes as a failed lookup without blaming the server. */
static void disc__lookup_run(const http_request_t *req, http_response_t *res, shm_str_t region,
                             shm_str_t zone, const json_lookup_cfg_t *cfg, size_t n)
{
	const char *code;
	char msg[DISC_MSG_MAX];
	uint32_t *keep;
	long nkeep;

	if (region.ptr == NULL) {
		for (size_t i = 0; i < n; i++) {
			if (cfg[i].region.ptr != NULL) {
				region = cfg[i].region;
				zone = cfg[i].zone;
				break;
			}
		}
	}
	if ((code = disc__gate(region, zone, msg, sizeof(msg))) != NULL) {
		disc__fail(req, res, "services", code, msg);
		return;
	}
	keep = malloc((n ? n : 1) * sizeof(*keep));
	nkeep = keep ? disc__distinct(cfg, n, keep) : -ENOMEM;
	if (nkeep < 0) {
		disc__internal(req, res, "services", (int)nkeep);
		goto out;
	}
	if (nkeep > DISC_MAX_SERVICES) {
		snprintf(msg, sizeof(msg),
		         "Too many services in one lookup: %ld distinct serviceIds, at most %d.",
		         nkeep, DISC_MAX_SERVICES);
		disc__fail(req, res, "services", API_BAD_REQUEST, msg);
		goto out;
	}
	res->body.len = 0;
	json_put_raw(&res->body, "{\"responseStatus\":" API_STATUS_SUCCESS ",\"services\":[");
	for (long k = 0; k < nkeep; k++) {
		int rc;
		const json_lookup_cfg_t *c = &cfg[keep[k]];
		uint32_t v = disc__variant(req, c->service, c->zone.ptr ? c->zone : zone,
		                           c->region.ptr ? c->region : region);
		if (k > 0)
			json_put_raw(&res->body, ",");
		if ((rc = cache_put_service_routed(api_shm(), c->service, v, &res->body, NULL)) <
		    0) {
			disc__internal(req, res, "services", rc);
			goto out;
		}
		if (res->max_body && res->body.len > res->max_body) {
			snprintf(msg, sizeof(msg),
			         "The answer would be larger than max_response_bytes (%zu bytes): "
			         "ask for fewer services per lookup.",
			         res->max_body);
			buf_free(&res->body);
			disc__fail(req, res, "services", API_BAD_REQUEST, msg);
			goto out;
		}
	}
	json_put_raw(&res->body, "]}");
out:
	free(keep);
}

/* {"success":false,"message":..} with an HTTP status. */
static void disc__single_fail(const http_request_t *req, http_response_t *res, int status,
                              const char *msg)
{
	res->status = status;
	res->body.len = 0;
	json_put_raw(&res->body, "{\"message\":");
	json_put_cstr(&res->body, msg);
	json_put_raw(&res->body, ",\"success\":false}");
	metrics_fail(req);
}

/* Round-robin positions of the single lookup, per service (this worker). */
#define DISC_RR_SLOTS 1024
static uint32_t disc__rr[DISC_RR_SLOTS];

/* The instances of a cached Service body ({"instances":[..],..}): their
 * spans into v (at most max); -ENOENT for instances:null. */
static long disc__instances(const char *body, size_t len, shm_str_t *v, size_t max)
{
	static const char head[] = "{\"instances\":";
	size_t i = sizeof(head) - 1, n = 0;

	if (len < i || memcmp(body, head, i) != 0 || body[i] != '[')
		return -ENOENT;
	for (i++; i < len && body[i] != ']' && n < max;) {
		size_t k = body[i] == '{' ? json_value_len(body + i, len - i) : 0;
		if (k == 0) {
			i++;
			continue;
		}
		v[n++] = (shm_str_t){body + i, k};
		i += k;
	}
	return (long)n;
}

/* Rust's single lookup: {"discoveryConfig":{..}, "strategy":"random"|
 * "round-robin"} -> one instance of what routing gives this caller. */
static void disc__single(const http_request_t *req, http_response_t *res, const json_t *root)
{
	const json_t *dc = json_member(root, "discoveryconfig");
	shm_str_t svc = json_member_str(dc, "serviceid");
	shm_str_t region = json_member_str(dc, "regionid"), zone = json_member_str(dc, "zoneid");
	shm_str_t strategy = json_member_str(root, "strategy");
	const char *code;
	char msg[DISC_MSG_MAX];
	buf_t body = {0};
	shm_str_t *inst = NULL;

	if (!json_is_object(dc) || api_blank(svc)) {
		disc__single_fail(req, res, 400, "discoveryConfig.serviceId is required");
		return;
	}
	if (strategy.ptr != NULL &&
	    !(strategy.len == 6 && !strncasecmp(strategy.ptr, "random", 6)) &&
	    !(strategy.len == 11 && !strncasecmp(strategy.ptr, "round-robin", 11)) &&
	    !(strategy.len == 11 && !strncasecmp(strategy.ptr, "round_robin", 11))) {
		disc__single_fail(req, res, 400, "strategy is random or round-robin");
		return;
	}
	if (region.ptr == NULL)
		region = (shm_str_t){api_cfg()->region, strlen(api_cfg()->region)};
	if ((code = disc__gate(region, zone.ptr ? zone : json_member_str(root, "zoneid"), msg,
	                       sizeof(msg))) != NULL) {
		disc__single_fail(req, res, !strcmp(code, API_UNAVAILABLE) ? 503 : 403, msg);
		return;
	}
	uint32_t v = disc__variant(req, svc, zone, region);
	int rc = cache_put_service_routed(api_shm(), svc, v, &body, NULL);
	long n = rc < 0 ? rc : -ENOMEM;
	if (rc == 0 && (inst = malloc(4096 * sizeof(*inst))) != NULL)
		n = disc__instances(body.data, body.len, inst, 4096);
	if (n == -ENOENT || n == 0) {
		snprintf(msg, sizeof(msg),
		         n == 0 ? "Service %.*s has no instance up" : "Service %.*s not found",
		         (int)(svc.len > 200 ? 200 : svc.len), svc.ptr);
		disc__single_fail(req, res, 404, msg);
	} else if (n < 0) {
		disc__single_fail(req, res, 500, strerror((int)-n));
	} else {
		size_t pick;
		if (strategy.ptr != NULL && strategy.len == 11) {
			uint32_t *slot =
			    &disc__rr[XXH3_64bits(svc.ptr, svc.len) & (DISC_RR_SLOTS - 1)];
			pick = (*slot)++ % (size_t)n;
		} else {
			pick = (size_t)random() % (size_t)n;
		}
		res->body.len = 0;
		json_put_raw(&res->body, "{\"instance\":");
		/* pick < n, a remainder: NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage) */
		buf_append(&res->body, inst[pick].ptr, inst[pick].len);
		json_put_raw(&res->body, ",\"success\":true}");
	}
	free(inst);
	buf_free(&body);
}

static void disc__lookup_slow(const http_request_t *req, http_response_t *res)
{
	json_t *root = NULL, *configs, *c;
	json_lookup_cfg_t *cfg = NULL;
	size_t i, n = 0;

	if (api_body_object(req, res, &root) < 0)
		return;
	configs = json_member(root, "discoveryconfigs");
	if (api_rust_path() && configs == NULL && json_member(root, "discoveryconfig") != NULL) {
		disc__single(req, res, root);
		goto out;
	}
	if (configs != NULL && !json_is_array(configs) && !json_is_null(configs)) {
		http_res_error(res, req, 400,
		               "JSON parse error: discoveryConfigs must be an array");
		goto out;
	}
	if (configs == NULL || json_array_size(configs) == 0) {
		disc__fail(req, res, "services", API_BAD_REQUEST,
		           "Request is null or request.discoveryConfigs is empty.");
		goto out;
	}
	cfg = calloc(json_array_size(configs), sizeof(*cfg));
	if (cfg == NULL) {
		disc__internal(req, res, "services", -ENOMEM);
		goto out;
	}
	json_array_foreach(configs, i, c)
	{
		if (json_is_null(c))
			continue;
		if (!json_is_object(c)) {
			http_res_error(res, req, 400,
			               "JSON parse error: a discoveryConfig is not an object");
			goto out;
		}
		cfg[n].service = json_member_str(c, "serviceid");
		cfg[n].region = json_member_str(c, "regionid");
		cfg[n].zone = json_member_str(c, "zoneid");
		n++;
	}
	disc__lookup_run(req, res, json_member_str(root, "regionid"),
	                 json_member_str(root, "zoneid"), cfg, n);
out:
	free(cfg);
	json_decref(root);
}

void api_discovery_lookup(const http_request_t *req, http_response_t *res)
{
	static json_lookup_t lk;

	/* The Java client's plain body skips jansson (json_fast_lookup); on
	 * the Rust path a body without configs may be a single lookup. */
	if (json_fast_lookup(req->body, req->body_len, &lk) == 0 && (lk.n > 0 || !api_rust_path()))
		disc__lookup_run(req, res, lk.region, lk.zone, lk.cfg, lk.n);
	else
		disc__lookup_slow(req, res);
}

/* ---- service.json ---------------------------------------------------------- */

static void disc__service(const http_request_t *req, http_response_t *res, shm_str_t svc,
                          shm_str_t region, shm_str_t zone, shm_str_t caller_zone,
                          shm_str_t caller_region)
{
	const char *code;
	char msg[DISC_MSG_MAX];
	int rc;

	if (api_blank(svc)) {
		disc__fail(req, res, "service", API_BAD_REQUEST,
		           "Request is null or request.discoveryConfig is null.");
		return;
	}
	if ((code = disc__gate(region, zone, msg, sizeof(msg))) != NULL) {
		disc__fail(req, res, "service", code, msg);
		return;
	}
	uint32_t v = disc__variant(req, svc, caller_zone, caller_region);
	res->body.len = 0;
	json_put_raw(&res->body, "{\"responseStatus\":" API_STATUS_SUCCESS ",\"service\":");
	if ((rc = cache_put_service_routed(api_shm(), svc, v, &res->body, NULL)) < 0) {
		disc__internal(req, res, "service", rc);
		return;
	}
	json_put_raw(&res->body, "}");
}

static void disc__service_get(const http_request_t *req, http_response_t *res)
{
	char svc[SHM_MAX_SERVICE * 3 + 1], region[SHM_MAX_REGION * 3 + 1],
	    zone[SHM_MAX_ZONE * 3 + 1];
	int ls = api_query_get(req, "serviceid", svc, sizeof(svc));
	int lr = api_query_get(req, "regionid", region, sizeof(region));
	int lz = api_query_get(req, "zoneid", zone, sizeof(zone));
	shm_str_t s = {svc, ls > 0 ? (size_t)ls : 0};
	shm_str_t r = {lr >= 0 ? region : NULL, lr > 0 ? (size_t)lr : 0};
	shm_str_t z = {lz >= 0 ? zone : NULL, lz > 0 ? (size_t)lz : 0};

	if (ls < 0) {
		http_res_error(res, req, 400,
		               "Required String parameter 'serviceId' is not present");
		return;
	}
	disc__service(req, res, s, r, z, z, r);
}

void api_discovery_service(const http_request_t *req, http_response_t *res)
{
	json_t *root = NULL, *dc;
	shm_str_t svc, region, zone;

	if (req->method != HTTP_M_POST) {
		disc__service_get(req, res);
		return;
	}
	if (api_body_object(req, res, &root) < 0)
		return;
	dc = json_member(root, "discoveryconfig");
	if (dc != NULL && !json_is_object(dc) && !json_is_null(dc)) {
		http_res_error(res, req, 400,
		               "JSON parse error: discoveryConfig must be an object");
		goto out;
	}
	svc = json_member_str(dc, "serviceid");
	region = json_member_str(root, "regionid");
	zone = json_member_str(root, "zoneid");
	shm_str_t dz = json_member_str(dc, "zoneid"), dr = json_member_str(dc, "regionid");
	if (region.ptr == NULL) {
		region = dr;
		zone = dz;
	}
	disc__service(req, res, svc, region, zone, dz.ptr ? dz : zone, dr.ptr ? dr : region);
out:
	json_decref(root);
}

/* ---- services.json ------------------------------------------------------------ */

void api_discovery_services(const http_request_t *req, http_response_t *res)
{
	json_t *root = NULL;
	uint64_t version = 0;
	char msg[DISC_MSG_MAX];
	int rc;

	/* The request's regionId/zoneId are ignored (as Java), but a POST body
	 * must still be JSON. */
	if (req->method == HTTP_M_POST && api_body_object(req, res, &root) < 0)
		return;
	json_decref(root);
	res->body.len = 0;
	if (!api_node_up()) {
		snprintf(msg, sizeof(msg),
		         "Serivce discovery is not in up state. Current status: %s",
		         api_node_status());
		json_put_raw(&res->body, "{\"responseStatus\":");
		api_put_fail(&res->body, API_UNAVAILABLE, msg);
		json_put_raw(&res->body, ",\"services\":null,\"version\":0}");
		metrics_fail(req);
		return;
	}
	json_put_raw(&res->body, "{\"responseStatus\":" API_STATUS_SUCCESS ",\"services\":");
	/* The Rust rewrite's path lists the instances operated down too, live
	 * (its console marks them from all-instance-operations.json, and needs
	 * their rows to pull them back in; MANAGEMENT.md §3.3). */
	if (api_rust_path())
		rc = versioned_services_all(api_shm(), &res->body);
	else
		rc = versioned_services(api_shm(), clock_wall_ms(), g_worker->started_ms,
		                        &res->body, &version);
	if (rc < 0) {
		res->body.len = 0;
		json_put_raw(&res->body, "{\"responseStatus\":");
		api_put_fail(&res->body, API_INTERNAL_ERROR, strerror(-rc));
		json_put_raw(&res->body, ",\"services\":null,\"version\":0}");
		metrics_fail(req);
		return;
	}
	json_put_raw(&res->body, ",\"version\":");
	json_put_u64(&res->body, version);
	json_put_raw(&res->body, "}");
}

/* ---- services-delta.json ----------------------------------------------------------- */

static void disc__delta_fail(const http_request_t *req, http_response_t *res, const char *code,
                             const char *msg)
{
	res->body.len = 0;
	json_put_raw(&res->body, "{\"delta\":null,\"responseStatus\":");
	api_put_fail(&res->body, code, msg);
	json_put_raw(&res->body, ",\"version\":0}");
	metrics_fail(req);
}

void api_discovery_services_delta(const http_request_t *req, http_response_t *res)
{
	json_t *root = NULL, *v;
	json_int_t version = 0;
	uint64_t newest = 0;
	char msg[DISC_MSG_MAX];
	int rc;

	if (api_body_object(req, res, &root) < 0)
		return;
	v = json_member(root, "version");
	if (json_is_integer(v))
		version = json_integer_value(v);
	else if (json_is_real(v))
		version = (json_int_t)json_real_value(v);
	else if (json_is_string(v))
		version = (json_int_t)strtoll(json_string_value(v), NULL, 10);
	else if (v != NULL && !json_is_null(v)) {
		http_res_error(res, req, 400, "JSON parse error: version must be a number");
		goto out;
	}
	if (!api_node_up()) {
		snprintf(msg, sizeof(msg),
		         "Serivce discovery is not in up state. Current status: %s",
		         api_node_status());
		disc__delta_fail(req, res, API_UNAVAILABLE, msg);
		goto out;
	}
	res->body.len = 0;
	json_put_raw(&res->body, "{\"delta\":");
	rc = versioned_delta(api_shm(), clock_wall_ms(), g_worker->started_ms, (uint64_t)version,
	                     &res->body, &newest);
	if (rc == -ENOENT) {
		disc__delta_fail(req, res, API_DATA_NOT_FOUND, "Delta is not found.");
		goto out;
	}
	if (rc < 0) {
		disc__delta_fail(req, res, API_INTERNAL_ERROR, strerror(-rc));
		goto out;
	}
	json_put_raw(&res->body, ",\"responseStatus\":" API_STATUS_SUCCESS ",\"version\":");
	json_put_u64(&res->body, newest);
	json_put_raw(&res->body, "}");
out:
	json_decref(root);
}

/*
 * test_api.c - the API layer (worker/api*.c, cache.c, versioned.c,
 * metrics.c) driven through api_dispatch() against a real, fresh shm
 * region; no sockets.  Each test checks wire details of API.md: exact
 * envelope strings, error codes, HTTP statuses of framework errors.
 *
 * Linked with -Wl,--wrap=mgmt_route_frame (Makefile): route_frame_fail
 * makes the routing part of a service's answer fail (0 = pass through).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../worker/api.h"
#include "../../worker/cache.h"
#include "artemis/codec.h"
#include "../../worker/versioned.h"
#include "../../worker/worker.h"
#include "artemis/clock.h"
#include "artemis/config.h"
#include "artemis/shm.h"

static int route_frame_fail;

int __real_mgmt_route_frame(shm_t *s, shm_str_t service, buf_t *out);
int __wrap_mgmt_route_frame(shm_t *s, shm_str_t service, buf_t *out);

int __wrap_mgmt_route_frame(shm_t *s, shm_str_t service, buf_t *out)
{
	return route_frame_fail ? route_frame_fail : __real_mgmt_route_frame(s, service, out);
}

static char shm_name_buf[64];
static shm_t *shm;
static config_t cfg;
static worker_t worker;
static http_response_t res;

static int setup(void **state)
{
	shm_params_t p;

	(void)state;
	snprintf(shm_name_buf, sizeof(shm_name_buf), "/artemis-test-api-%d", (int)getpid());
	shm_params_default(&p, shm_name_buf);
	p.max_instances = 4096;
	assert_int_equal(shm_open_region(&p, SHM_CREATE_FRESH, &shm, NULL), 0);
	assert_true(shm_proc_join(shm, SHM_ROLE_TEST, -1) >= 0);
	config_defaults(&cfg);
	snprintf(cfg.listen, sizeof(cfg.listen), "127.0.0.1:18080");
	memset(&worker, 0, sizeof(worker));
	worker.cfg = &cfg;
	worker.shm = shm;
	worker.started_ms = clock_wall_ms();
	g_worker = &worker;
	api_rate_reset();
	cache_clear();
	versioned_reset();
	route_frame_fail = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	buf_free(&res.body);
	memset(&res, 0, sizeof(res));
	shm_proc_leave(shm);
	shm_detach(shm);
	shm_destroy(shm_name_buf);
	g_worker = NULL;
	return 0;
}

/* Run one request; returns the body, NUL-terminated. */
static const char *call(enum http_method m, const char *path, const char *query, const char *body,
                        const char *ct)
{
	http_request_t req = {
	    .method = m,
	    .path = path,
	    .path_len = strlen(path),
	    .query = query ? query : "",
	    .body = body ? body : "",
	    .body_len = body ? strlen(body) : 0,
	    .content_type = ct ? ct : "application/json",
	    .peer_ip = "127.0.0.1",
	};

	res.status = 200;
	res.content_type = NULL;
	res.allow = NULL;
	res.body.len = 0;
	api_dispatch(&req, &res);
	api_observe(&req, res.status, 10);
	buf_reserve(&res.body, 1);
	res.body.data[res.body.len] = '\0';
	return res.body.data;
}

static const char *post(const char *path, const char *body)
{
	return call(HTTP_M_POST, path, NULL, body, NULL);
}

static json_t *post_json(const char *path, const char *body)
{
	const char *out = post(path, body);
	json_t *j = json_loads(out, 0, NULL);

	if (j == NULL)
		fail_msg("not JSON: %s", out);
	return j;
}

#define INST(svc, id)                                                                              \
	"{\"regionId\":\"us-east\",\"zoneId\":\"zone-1\",\"serviceId\":\"" svc                     \
	"\",\"instanceId\":\"" id                                                                  \
	"\",\"ip\":\"10.0.0.1\",\"port\":8080,\"url\":\"http://10.0.0.1:8080\"}"

static const char *status_of(json_t *j, const char *field)
{
	return json_string_value(json_object_get(json_object_get(j, "responseStatus"), field));
}

static void test_readme_example(void **state)
{
	const char *out;

	(void)state;
	out =
	    post("/api/registry/register.json",
	         "{\"instances\":[{\"region_id\":\"us-east\",\"zone_id\":\"zone-1\",\"service_id\":"
	         "\"my-service\",\"instance_id\":\"inst-1\",\"ip\":\"192.168.1.100\",\"port\":8080,"
	         "\"status\":\"up\"}]}");
	assert_int_equal(res.status, 200);
	/* The /api paths also name the message errorMessage (MANAGEMENT.md §3.3). */
	assert_string_equal(out, "{\"failedInstances\":null,\"responseStatus\":{\"errorCode\":"
	                         "\"success\",\"errorMessage\":\"\",\"message\":\"\",\"status\":"
	                         "\"success\"}}");
	out = post(
	    "/api/discovery/service.json",
	    "{\"discovery_config\":{\"service_id\":\"my-service\",\"region_id\":\"us-east\"}}");
	assert_string_equal(
	    out,
	    "{\"responseStatus\":{\"errorCode\":\"success\",\"errorMessage\":\"\",\"message\":\"\","
	    "\"status\":\"success\"},"
	    "\"service\":{\"instances\":[{\"groupId\":null,\"healthCheckUrl\":null,\"instanceId\":"
	    "\"inst-1\",\"ip\":\"192.168.1.100\",\"machineName\":null,\"metadata\":null,\"port\":"
	    "8080,"
	    "\"protocol\":null,\"regionId\":\"us-east\",\"serviceId\":\"my-service\",\"status\":"
	    "\"up\","
	    "\"url\":\"http://192.168.1.100:8080\",\"zoneId\":\"zone-1\"}],\"logicInstances\":null,"
	    "\"metadata\":null,\"routeRules\":null,\"serviceId\":\"my-service\"}}");
}

static void test_heartbeat(void **state)
{
	json_t *j;
	json_t *fi;

	(void)state;
	j = post_json("/artemis/api/registry/heartbeat.json",
	              "{\"instances\":[" INST("svc", "i1") "]}");
	assert_string_equal(status_of(j, "status"), "partial_fail");
	assert_string_equal(status_of(j, "errorCode"), "partial_fail");
	assert_string_equal(status_of(j, "message"), "");
	fi = json_array_get(json_object_get(j, "failedInstances"), 0);
	assert_string_equal(json_string_value(json_object_get(fi, "errorCode")), "data-not-found");
	assert_string_equal(json_string_value(json_object_get(fi, "errorMessage")),
	                    "us-east/zone-1/svc/i1: Instance is not exising! Need re-register.");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(fi, "instance"), "instanceId")),
	    "i1");
	json_decref(j);

	post("/artemis/api/registry/register.json", "{\"instances\":[" INST("svc", "i1") "]}");
	j = post_json(
	    "/artemis/api/registry/heartbeat.json",
	    "{\"Instances\":[{\"RegionID\":\"US-EAST\",\"zoneId\":\"zone-1\",\"serviceId\":"
	    "\"SVC\",\"instanceId\":\"I1\",\"url\":\"u\"}]}");
	assert_string_equal(status_of(j, "status"), "success");
	assert_true(json_is_null(json_object_get(j, "failedInstances")));
	json_decref(j);
}

/* The plain heartbeat body takes the fast path; its failures must read
 * exactly as the general path's. */
static void test_heartbeat_fast_and_slow_agree(void **state)
{
	const char *fast_body = "{\"instances\":[" INST(
	    "hb", "known") ",{\"regionId\":\"eu\","
	                   "\"serviceId\":\"hb\",\"instanceId\":\"x\",\"url\":\"u\"}," INST(
	                       "hb", "gone") "]}";
	/* The same request, made ineligible for the fast path by an escape. */
	const char *slow_body = "{\"instances\":[" INST(
	    "hb", "known") ",{\"regionId\":\"eu\","
	                   "\"serviceId\":\"hb\",\"instanceId\":\"x\",\"url\":\"u\"}," INST(
	                       "hb", "gone") "],\"x\":\"\\u0041\"}";
	char first[4096];

	(void)state;
	post("/artemis/api/registry/register.json", "{\"instances\":[" INST("hb", "known") "]}");
	snprintf(first, sizeof(first), "%s",
	         post("/artemis/api/registry/heartbeat.json", fast_body));
	assert_string_equal(first, post("/artemis/api/registry/heartbeat.json", slow_body));
	assert_non_null(strstr(first, "\"errorCode\":\"no-permission\""));
	assert_non_null(strstr(first, "us-east/zone-1/hb/gone: Instance is not exising!"));
	assert_null(strstr(first, "/known:"));
}

static void test_unregister_unknown_is_success(void **state)
{
	json_t *j;

	(void)state;
	j = post_json("/artemis/api/registry/unregister.json",
	              "{\"instances\":[" INST("x", "nope") "]}");
	assert_string_equal(status_of(j, "status"), "success");
	json_decref(j);
}

static void test_registry_errors(void **state)
{
	json_t *j, *fi;
	const char *out;

	(void)state;
	j = post_json("/artemis/api/registry/register.json", "{\"instances\":[]}");
	assert_string_equal(status_of(j, "status"), "fail");
	assert_string_equal(status_of(j, "errorCode"), "bad-request");
	assert_string_equal(status_of(j, "message"), "request.instances is null or empty.");
	json_decref(j);

	j = post_json(
	    "/artemis/api/registry/register.json",
	    "{\"instances\":[{\"regionId\":\"eu\",\"zoneId\":\"zone-1\",\"serviceId\":\"s\","
	    "\"instanceId\":\"i\",\"url\":\"u\"},{\"regionId\":\"us-east\",\"serviceId\":\" \","
	    "\"instanceId\":\"i\",\"url\":\"u\"}, null, " INST("ok", "i") "]}");
	assert_string_equal(status_of(j, "status"), "partial_fail");
	assert_int_equal(json_array_size(json_object_get(j, "failedInstances")), 2);
	fi = json_array_get(json_object_get(j, "failedInstances"), 0);
	assert_string_equal(json_string_value(json_object_get(fi, "errorCode")), "no-permission");
	fi = json_array_get(json_object_get(j, "failedInstances"), 1);
	assert_string_equal(json_string_value(json_object_get(fi, "errorCode")),
	                    "internal-service-error");
	assert_non_null(
	    strstr(json_string_value(json_object_get(fi, "errorMessage")), ": Exception: "));
	json_decref(j);

	/* Zone check only when other zones are not allowed. */
	cfg.allow_registry_from_other_zone = false;
	j = post_json(
	    "/artemis/api/registry/register.json",
	    "{\"instances\":[{\"regionId\":\"us-east\",\"zoneId\":\"zone-9\",\"serviceId\":\"s\","
	    "\"instanceId\":\"i\",\"url\":\"u\"}]}");
	fi = json_array_get(json_object_get(j, "failedInstances"), 0);
	assert_string_equal(json_string_value(json_object_get(fi, "errorCode")), "no-permission");
	json_decref(j);
	cfg.allow_registry_from_other_zone = true;

	/* Over-long field: rejected, never truncated. */
	{
		char big[2048];
		char body[4096];
		memset(big, 'a', 300);
		big[300] = '\0';
		snprintf(body, sizeof(body),
		         "{\"instances\":[{\"regionId\":\"us-east\",\"serviceId\":\"%s\","
		         "\"instanceId\":\"i\",\"url\":\"u\"}]}",
		         big);
		j = post_json("/artemis/api/registry/register.json", body);
		fi = json_array_get(json_object_get(j, "failedInstances"), 0);
		assert_string_equal(json_string_value(json_object_get(fi, "errorCode")),
		                    "bad-request");
		json_decref(j);
	}

	out = post("/artemis/api/registry/register.json", "{\"instances\":[");
	assert_int_equal(res.status, 400);
	assert_non_null(strstr(out, "\"status\":400"));
	post("/artemis/api/registry/register.json", "{\"instances\":{}}");
	assert_int_equal(res.status, 400);
	post("/artemis/api/registry/register.json", "[1]");
	assert_int_equal(res.status, 400);
	/* A bad shape anywhere refuses the whole batch before any write. */
	post("/artemis/api/registry/register.json",
	     "{\"instances\":[" INST("shape", "i1") ",{\"port\":\"x\"}]}");
	assert_int_equal(res.status, 400);
	j = post_json(
	    "/artemis/api/discovery/lookup.json",
	    "{\"regionId\":\"us-east\",\"discoveryConfigs\":[{\"serviceId\":\"shape\"}]}");
	assert_true(json_is_null(
	    json_object_get(json_array_get(json_object_get(j, "services"), 0), "instances")));
	json_decref(j);
}

static void test_routing(void **state)
{
	(void)state;
	call(HTTP_M_GET, "/nope", NULL, NULL, NULL);
	assert_int_equal(res.status, 404);
	call(HTTP_M_GET, "/artemis/api/registry/register.json", NULL, NULL, NULL);
	assert_int_equal(res.status, 405);
	assert_string_equal(res.allow, "POST");
	call(HTTP_M_POST, "/artemis/api/registry/register.json", NULL, "{}", "text/plain");
	assert_int_equal(res.status, 415);
	call(HTTP_M_POST, "/artemis/api/registry/register.json", NULL, "{}",
	     "application/x-www-form-urlencoded");
	assert_int_equal(res.status, 415);
	call(HTTP_M_POST, "/artemis/api/registry/register.json", NULL, "{}",
	     "Application/JSON; charset=UTF-8");
	assert_int_equal(res.status, 200);
	call(HTTP_M_POST, "/artemis/api/registry/register.json", NULL, "{}", "");
	assert_int_equal(res.status, 200);
	call(HTTP_M_GET, "/health", NULL, NULL, NULL);
	assert_string_equal(res.body.data, "{\"status\":\"up\"}");
	call(HTTP_M_GET, "/ready", NULL, NULL, NULL);
	assert_int_equal(res.status, 200);
}

static void test_ready_with_peers(void **state)
{
	(void)state;
	cfg.npeers = 1;
	cfg.bootstrap_timeout_ms = 60000;
	call(HTTP_M_GET, "/ready", NULL, NULL, NULL);
	assert_int_equal(res.status, 503);
	post("/artemis/api/registry/register.json", "{\"instances\":[" INST("s", "i") "]}");
	assert_non_null(strstr(res.body.data, "service-unavailable"));
	assert_non_null(strstr(res.body.data, "Serivce registry is not in up state."));
	/* The replicator (or the bootstrap timeout) marks the node up in the
	 * region; every worker reads it there. */
	shm_node_set_state(shm, SHM_NODE_UP);
	call(HTTP_M_GET, "/ready", NULL, NULL, NULL);
	assert_int_equal(res.status, 200);
	post("/artemis/api/registry/register.json", "{\"instances\":[" INST("s", "i") "]}");
	assert_non_null(strstr(res.body.data, "\"success\""));
	cfg.npeers = 0;
}

static void test_discovery(void **state)
{
	json_t *j, *svcs;
	const char *a;
	char first[8192];

	(void)state;
	post("/artemis/api/registry/register.json",
	     "{\"instances\":[" INST("Svc", "i1") "," INST("Svc", "i2") "]}");
	j = post_json(
	    "/artemis/api/discovery/lookup.json",
	    "{\"regionId\":\"us-east\",\"zoneId\":\"zone-1\",\"discoveryConfigs\":["
	    "{\"serviceId\":\"Svc\"},{\"serviceId\":\"svc\"},{\"serviceId\":\"\"},null]}");
	assert_string_equal(status_of(j, "status"), "success");
	svcs = json_object_get(j, "services");
	assert_int_equal(json_array_size(svcs), 2);
	assert_int_equal(json_array_size(json_object_get(json_array_get(svcs, 0), "instances")), 2);
	/* Exact-case serviceId: "svc" is unknown. */
	assert_true(json_is_null(json_object_get(json_array_get(svcs, 1), "instances")));
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(svcs, 1), "serviceId")), "svc");
	json_decref(j);

	/* Cached response: identical bytes; a change invalidates. */
	a = post("/artemis/api/discovery/lookup.json",
	         "{\"regionId\":\"us-east\",\"discoveryConfigs\":[{\"serviceId\":\"Svc\"}]}");
	snprintf(first, sizeof(first), "%s", a);
	a = post("/artemis/api/discovery/lookup.json",
	         "{\"regionId\":\"us-east\",\"discoveryConfigs\":[{\"serviceId\":\"Svc\"}]}");
	assert_string_equal(first, a);
	post("/artemis/api/registry/register.json", "{\"instances\":[" INST("Svc", "i3") "]}");
	j = post_json("/artemis/api/discovery/lookup.json",
	              "{\"regionId\":\"us-east\",\"discoveryConfigs\":[{\"serviceId\":\"Svc\"}]}");
	assert_int_equal(json_array_size(json_object_get(
	                     json_array_get(json_object_get(j, "services"), 0), "instances")),
	                 3);
	json_decref(j);

	j = post_json("/artemis/api/discovery/lookup.json",
	              "{\"regionId\":\"eu\",\"discoveryConfigs\":[{\"serviceId\":\"Svc\"}]}");
	assert_string_equal(status_of(j, "errorCode"), "no-permission");
	assert_true(json_is_null(json_object_get(j, "services")));
	json_decref(j);
	j = post_json("/artemis/api/discovery/lookup.json", "{\"regionId\":\"us-east\"}");
	assert_string_equal(status_of(j, "errorCode"), "bad-request");
	json_decref(j);
	j = post_json("/artemis/api/discovery/service.json", "{\"regionId\":\"us-east\"}");
	assert_string_equal(status_of(j, "errorCode"), "bad-request");
	json_decref(j);

	call(HTTP_M_GET, "/artemis/api/discovery/service.json", "regionId=us-east", NULL, NULL);
	assert_int_equal(res.status, 400);
	call(HTTP_M_GET, "/artemis/api/discovery/service.json", "serviceId=Svc&regionId=us%2Deast",
	     NULL, NULL);
	assert_int_equal(res.status, 200);
	assert_non_null(strstr(res.body.data, "\"i3\""));
}

static void test_services_and_delta(void **state)
{
	json_t *j;
	buf_t out = {0};
	uint64_t newest = 0;

	(void)state;
	post("/artemis/api/registry/register.json", "{\"instances\":[" INST("a", "1") "]}");
	j = post_json("/artemis/api/discovery/services.json", "{}");
	assert_string_equal(status_of(j, "status"), "success");
	assert_int_equal(json_integer_value(json_object_get(j, "version")), 0);
	assert_int_equal(json_array_size(json_object_get(j, "services")), 1);
	json_decref(j);
	j = post_json("/artemis/api/discovery/services-delta.json", "{\"version\":0}");
	assert_string_equal(status_of(j, "errorCode"), "data-not-found");
	assert_string_equal(status_of(j, "message"), "Delta is not found.");
	json_decref(j);

	assert_int_equal(versioned_force(shm, 1000), 0);
	post("/artemis/api/registry/register.json", "{\"instances\":[" INST("b", "2") "]}");
	assert_int_equal(versioned_force(shm, 2000), 0);
	assert_int_equal(versioned_delta(shm, 0, 0, 2000, &out, &newest), -ENOENT);
	out.len = 0;
	assert_int_equal(versioned_delta(shm, 0, 0, 1000, &out, &newest), 0);
	assert_int_equal(newest, 2000);
	buf_append(&out, "", 1);
	j = json_loads(out.data, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 1);
	assert_string_equal(json_string_value(json_object_get(
	                        json_array_get(json_object_get(j, "b"), 0), "changeType")),
	                    "new");
	json_decref(j);
	buf_free(&out);
}

/* A service that cannot be written into a snapshot fails the snapshot,
 * instead of leaving one with a cut-off services list. */
static void test_versioned_snapshot_failure(void **state)
{
	buf_t out = {0};
	uint64_t version = 0;

	(void)state;
	post("/artemis/api/registry/register.json", "{\"instances\":[" INST("a", "1") "]}");
	route_frame_fail = -EBUSY;
	assert_int_equal(versioned_force(shm, 1000), -EBUSY);
	assert_int_equal(versioned_services(shm, 0, 0, &out, &version), -EBUSY);
	route_frame_fail = 0;
	assert_int_equal(versioned_force(shm, 1000), 0);
	out.len = 0;
	assert_int_equal(versioned_services(shm, 0, 0, &out, &version), 0);
	buf_append(&out, "", 1);
	json_t *j = json_loads(out.data, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(j), 1);
	json_decref(j);
	buf_free(&out);
}

static void test_status(void **state)
{
	json_t *j, *leases;
	int limited = 0;

	(void)state;
	post("/artemis/api/registry/register.json", "{\"instances\":[" INST("svc", "i1") "]}");
	j = post_json("/artemis/api/status/node.json", "{}");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(j, "nodeStatus"), "status")), "up");
	json_decref(j);
	j = post_json("/artemis/api/status/leases.json", "{}");
	assert_int_equal(json_integer_value(json_object_get(j, "leaseCount")), 1);
	leases = json_object_get(json_object_get(j, "leases"), "svc");
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(leases, 0), "instance")),
	    "us-east/zone-1/svc/i1");
	assert_int_equal(
	    strlen(json_string_value(json_object_get(json_array_get(leases, 0), "creationTime"))),
	    23);
	json_decref(j);
	j = post_json("/artemis/api/status/legacy-leases.json", "{}");
	assert_int_equal(json_integer_value(json_object_get(j, "leaseCount")), 0);
	json_decref(j);
	/* get-leases: 10 per 10 s. */
	for (int i = 0; i < 12; i++) {
		call(HTTP_M_GET, "/artemis/api/status/leases.json", "appIds=svc", NULL, NULL);
		if (strstr(res.body.data, "rate-limited"))
			limited++;
	}
	assert_int_equal(limited, 3);
	j = post_json("/artemis/api/status/config.json", "{}");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(j, "properties"), "node.region")),
	    "us-east");
	json_decref(j);
	j = post_json("/artemis/api/status/deployment.json", "{}");
	assert_string_equal(json_string_value(json_object_get(j, "regionId")), "us-east");
	assert_int_equal(json_integer_value(json_object_get(j, "port")), 18080);
	json_decref(j);
	j = post_json("/artemis/api/cluster/up-registry-nodes.json",
	              "{\"regionId\":\"us-east\",\"zoneId\":\"zone-1\"}");
	assert_string_equal(json_string_value(json_object_get(
	                        json_array_get(json_object_get(j, "nodes"), 0), "url")),
	                    "http://127.0.0.1:18080");
	json_decref(j);
	call(HTTP_M_GET, "/metrics", NULL, NULL, NULL);
	assert_non_null(strstr(res.body.data, "\nartemis_instances 1\n"));
	assert_non_null(
	    strstr(res.body.data, "artemis_http_requests_total{endpoint=\"status_leases\"}"));
}

static void test_cluster_peers(void **state)
{
	shm_peer_t peer;
	json_t *j, *nodes;

	(void)state;
	memset(&peer, 0, sizeof(peer));
	snprintf(peer.name, sizeof(peer.name), "node2");
	snprintf(peer.zone, sizeof(peer.zone), "zone-2");
	snprintf(peer.url, sizeof(peer.url), "http://10.0.0.2:8080");
	peer.state = SHM_PEER_UP;
	assert_int_equal(shm_peer_set(shm, 1, &peer), 0);
	j = post_json("/artemis/api/status/cluster.json", "{}");
	assert_int_equal(json_integer_value(json_object_get(j, "nodeCount")), 2);
	nodes = json_object_get(j, "nodesStatus");
	assert_string_equal(json_string_value(json_object_get(json_array_get(nodes, 1), "status")),
	                    "up");
	json_decref(j);
	/* Other zones allowed: both nodes; not allowed: only the zone's own. */
	j = post_json("/artemis/api/cluster/up-discovery-nodes.json",
	              "{\"regionId\":\"us-east\",\"zoneId\":\"zone-2\"}");
	assert_int_equal(json_array_size(json_object_get(j, "nodes")), 2);
	json_decref(j);
	cfg.allow_discovery_from_other_zone = false;
	j = post_json("/artemis/api/cluster/up-discovery-nodes.json",
	              "{\"regionId\":\"us-east\",\"zoneId\":\"zone-2\"}");
	nodes = json_object_get(j, "nodes");
	assert_int_equal(json_array_size(nodes), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(nodes, 0), "url")),
	                    "http://10.0.0.2:8080");
	json_decref(j);
	j = post_json("/artemis/api/cluster/up-discovery-nodes.json",
	              "{\"regionId\":\"us-east\",\"zoneId\":\"ZONE-2\"}");
	assert_string_equal(status_of(j, "errorCode"), "data-not-found");
	assert_string_equal(status_of(j, "message"), "No available service nodes.");
	assert_true(json_is_null(json_object_get(j, "nodes")));
	json_decref(j);
	cfg.allow_discovery_from_other_zone = true;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_readme_example, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_heartbeat, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_heartbeat_fast_and_slow_agree, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unregister_unknown_is_success, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_registry_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_routing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ready_with_peers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_discovery, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_services_and_delta, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_versioned_snapshot_failure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_status, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cluster_peers, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

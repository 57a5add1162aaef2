/*
 * api.h - worker-internal: what the API handlers (api_*.c) share.
 *
 * api.c routes a request (api_dispatch, below) to one of the
 * handlers below and offers the helpers every handler needs: the node's
 * configuration and region, its status, request parsing with the right
 * HTTP errors, query parameters, the rate limiters and the envelope
 * strings of API.md §1.6.  Handlers write the whole response into res and
 * never see sockets.
 */
#ifndef ARTEMIS_WORKER_API_H
#define ARTEMIS_WORKER_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "artemis/auth.h"
#include "artemis/config.h"
#include "artemis/mgmt.h"
#include "artemis/shm.h"
#include "http.h"

/* The envelopes of API.md §1.6, as complete JSON objects. */
#define API_STATUS_SUCCESS "{\"errorCode\":\"success\",\"message\":\"\",\"status\":\"success\"}"
#define API_STATUS_PARTIAL                                                                         \
	"{\"errorCode\":\"partial_fail\",\"message\":\"\",\"status\":\"partial_fail\"}"
#define API_STATUS_RATE_LIMITED                                                                    \
	"{\"errorCode\":\"rate-limited\",\"message\":\"Request is rate "                           \
	"limited.\",\"status\":\"fail\"}"

/* Error codes. */
#define API_BAD_REQUEST    "bad-request"
#define API_NO_PERMISSION  "no-permission"
#define API_DATA_NOT_FOUND "data-not-found"
#define API_INTERNAL_ERROR "internal-service-error"
#define API_UNAVAILABLE    "service-unavailable"
#define API_RATE_LIMITED   "rate-limited"
/* The Rust surface's own (HTTP 401 and 409; never in a Java envelope). */
#define API_UNAUTHORIZED "unauthorized"
#define API_CONFLICT     "conflict"

/* ---- Entry points (worker.c hands them to the HTTP transport) ------------ */

/* Route and run one request.  HEAD requests arrive as HTTP_M_GET (the
 * transport drops the body, as Spring does); OPTIONS requests never arrive
 * (CORS preflight, answered by the transport). */
void api_dispatch(const http_request_t *req, http_response_t *res);

/* Implemented by metrics.c: called once per response after it is queued,
 * including the transport's own error responses and OPTIONS; latency_us
 * runs from the first byte of the request to the queued response. */
void api_observe(const http_request_t *req, int status, uint64_t latency_us);

/* ---- Context ------------------------------------------------------------ */

const config_t *api_cfg(void);
shm_t *api_shm(void);

/* Node status of this node: "up", or "starting" while a node with peers
 * waits for its bootstrap (API.md §A). */
const char *api_node_status(void);
bool api_node_up(void);

/* The peers as last reported by the replicator (shm_peer_get); when it
 * has reported none yet, the configured peers with state unknown.
 * Returns the count (at most max). */
int api_peers(shm_peer_t *out, int max);

/* The base URL other nodes and clients reach this node on
 * ("http://10.0.0.1:8080"); computed once. */
const char *api_self_url(void);

/* Case-insensitive equality of a request string with a config string;
 * a NULL or blank s never matches. */
bool api_same(shm_str_t s, const char *cfg_value);
bool api_blank(shm_str_t s);

/* ---- Request helpers ------------------------------------------------------ */

/* Parse the body as a JSON object.  On failure the HTTP 400 response is
 * already written and -1 is returned. */
int api_body_object(const http_request_t *req, http_response_t *res, json_t **out);

/* Decoded query parameter by canonical name (lowercase, no underscores).
 * Returns the length, or -1 when absent (or too long for buf). */
int api_query_get(const http_request_t *req, const char *canon, char *buf, size_t buf_len);

/* Start a body with "{" and write `"responseStatus":<status>` etc. */
int api_put_fail(buf_t *b, const char *code, const char *message);

/* ---- Rate limiters (API.md §4.6) --------------------------------------------- */

enum api_limit {
	API_LIMIT_REGISTER,
	API_LIMIT_HEARTBEAT,
	API_LIMIT_UNREGISTER,
	API_LIMIT_UP_REGISTRY_NODES,
	API_LIMIT_UP_DISCOVERY_NODES,
	API_LIMIT_GET_CLUSTER,
	API_LIMIT_GET_LEASES,
	API_LIMIT_GET_LEGACY_LEASES,
	API_LIMIT_GET_CONFIG,
	API_LIMIT_GET_DEPLOYMENT,
	API_LIMIT_COUNT
};

/* True when the request must be refused; a refused request is not counted. */
bool api_rate_limited(enum api_limit which, uint64_t now_ms);
/* Forget every window (tests). */
void api_rate_reset(void);

/* ---- Handlers ------------------------------------------------------------------ */

typedef void (*api_handler_fn)(const http_request_t *req, http_response_t *res);

/* One instance of a batched registry request (§2.1, §2.3): what happened
 * to it.  code NULL = success. */
#define API_MSG_MAX 1024
typedef struct {
	const char *code;
	char msg[API_MSG_MAX];
} api_outcome_t;

/* A registry write the node cannot take now, whatever the instance:
 * -ENOBUFS (no shared memory left in /dev/shm) and -ETIMEDOUT (the writer
 * lock is held by a stopped or stuck writer) are service-unavailable, so
 * clients retry on another node.  True when rc was one of them. */
bool api_registry_unavailable(int rc, api_outcome_t *o);

void api_outcome_set(api_outcome_t *o, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Run one decoded instance.  decode_rc is json_instance_decode's result for
 * it: 0, or -ENAMETOOLONG with *field naming the over-long field. */
struct json_instance;
typedef void (*api_item_fn)(const struct json_instance *in, int decode_rc, const char *field,
                            uint64_t now_ms, api_outcome_t *o, void *ctx);

/* The batch skeleton shared by the client and the peer endpoints: parse,
 * instances null or empty -> bad-request, a wrongly shaped element -> 400
 * before anything runs, node not up -> service-unavailable (when check_up),
 * then each instance through fn, and failedInstances + the envelope. */
void api_registry_batch(const http_request_t *req, http_response_t *res, bool check_up,
                        api_item_fn fn, void *ctx);

void api_registry_register(const http_request_t *req, http_response_t *res);
void api_registry_heartbeat(const http_request_t *req, http_response_t *res);
void api_registry_unregister(const http_request_t *req, http_response_t *res);

void api_discovery_lookup(const http_request_t *req, http_response_t *res);
void api_discovery_service(const http_request_t *req, http_response_t *res);
void api_discovery_services(const http_request_t *req, http_response_t *res);
void api_discovery_services_delta(const http_request_t *req, http_response_t *res);

void api_status_node(const http_request_t *req, http_response_t *res);
void api_status_cluster(const http_request_t *req, http_response_t *res);
void api_status_leases(const http_request_t *req, http_response_t *res);
void api_status_legacy_leases(const http_request_t *req, http_response_t *res);
void api_status_config(const http_request_t *req, http_response_t *res);
void api_status_deployment(const http_request_t *req, http_response_t *res);

void api_cluster_up_registry_nodes(const http_request_t *req, http_response_t *res);
void api_cluster_up_discovery_nodes(const http_request_t *req, http_response_t *res);

/* api_replication.c: the Java peers' replication endpoints (mixed clusters). */
void api_replication_register(const http_request_t *req, http_response_t *res);
void api_replication_heartbeat(const http_request_t *req, http_response_t *res);
void api_replication_unregister(const http_request_t *req, http_response_t *res);
void api_replication_services(const http_request_t *req, http_response_t *res);

void api_ops_health(const http_request_t *req, http_response_t *res);
void api_ops_ready(const http_request_t *req, http_response_t *res);
void api_ops_metrics(const http_request_t *req, http_response_t *res);

/* Shared by status and cluster: the ServiceNodeStatus of this node. */
int api_put_node_status(buf_t *b);

/* A path parameter of the running request's route ("zoneId" of
 * /api/management/zone/{zoneId}), decoded, or NULL. */
const char *api_param(const char *name);
/* True while the running request came in on an /api/... twin of an
 * /artemis/api/... path (MANAGEMENT.md §3.3). */
bool api_rust_path(void);
/* api_rust.c: the /api twins' additions to a response: `errorMessage` in
 * the responseStatus, and (nodes) the flat nodeId, regionId, zoneId of every
 * ServiceNode. */
void api_rust_shape(http_response_t *res, bool nodes);

/* api_mgmt*.c: management (API.md §5, MANAGEMENT.md §3). */
void api_mgmt_operate_instance(const http_request_t *req, http_response_t *res);
void api_mgmt_operate_server(const http_request_t *req, http_response_t *res);
void api_mgmt_instance_operations(const http_request_t *req, http_response_t *res);
void api_mgmt_server_operations(const http_request_t *req, http_response_t *res);
void api_mgmt_all_instance_operations(const http_request_t *req, http_response_t *res);
void api_mgmt_all_server_operations(const http_request_t *req, http_response_t *res);
void api_mgmt_instance_down(const http_request_t *req, http_response_t *res);
void api_mgmt_server_down(const http_request_t *req, http_response_t *res);
void api_mgmt_services(const http_request_t *req, http_response_t *res);
void api_mgmt_service(const http_request_t *req, http_response_t *res);
void api_mgmt_services_page(const http_request_t *req, http_response_t *res);
/* The nine log/...-logs.json of Java, told apart by the path. */
void api_mgmt_log(const http_request_t *req, http_response_t *res);
void api_mgmt_operate_zone_operations(const http_request_t *req, http_response_t *res);
void api_mgmt_all_zone_operations(const http_request_t *req, http_response_t *res);
void api_mgmt_zone_operations(const http_request_t *req, http_response_t *res);
void api_mgmt_zone_operations_list(const http_request_t *req, http_response_t *res);
void api_mgmt_is_zone_down(const http_request_t *req, http_response_t *res);
void api_mgmt_rust_operate_instance(const http_request_t *req, http_response_t *res);
void api_mgmt_rust_instance_operations(const http_request_t *req, http_response_t *res);
void api_mgmt_rust_is_instance_down(const http_request_t *req, http_response_t *res);
void api_mgmt_rust_operate_server(const http_request_t *req, http_response_t *res);
void api_mgmt_rust_is_server_down(const http_request_t *req, http_response_t *res);
void api_mgmt_zones(const http_request_t *req, http_response_t *res);
void api_mgmt_zone_pull_out(const http_request_t *req, http_response_t *res);
void api_mgmt_zone_pull_in(const http_request_t *req, http_response_t *res);
void api_mgmt_zone_batch_pull_out(const http_request_t *req, http_response_t *res);
void api_mgmt_zone_batch_pull_in(const http_request_t *req, http_response_t *res);
void api_mgmt_zone_list(const http_request_t *req, http_response_t *res);
void api_mgmt_zone_status(const http_request_t *req, http_response_t *res);
void api_mgmt_zone_is_down(const http_request_t *req, http_response_t *res);
void api_mgmt_zone_instances(const http_request_t *req, http_response_t *res);
void api_mgmt_zone_put_status(const http_request_t *req, http_response_t *res);
void api_mgmt_zone_delete(const http_request_t *req, http_response_t *res);
void api_mgmt_zone_get(const http_request_t *req, http_response_t *res);
void api_mgmt_audit_logs(const http_request_t *req, http_response_t *res);
void api_mgmt_audit_log(const http_request_t *req, http_response_t *res);
void api_mgmt_audit_export(const http_request_t *req, http_response_t *res);
void api_mgmt_audit_stats(const http_request_t *req, http_response_t *res);
void api_mgmt_audit_cleanup(const http_request_t *req, http_response_t *res);
void api_mgmt_audit_instance_logs(const http_request_t *req, http_response_t *res);
void api_mgmt_audit_server_logs(const http_request_t *req, http_response_t *res);

/* ---- Access control (api_access.c) ------------------------------------------------ */

/* Who the running request speaks for. */
typedef struct {
	bool authenticated;   /* it carried a valid token */
	mgmt_principal_t who; /* the token's user; without one (checks off): "anonymous", admin */
} api_principal_t;

/* At worker start, once the store is open: the JWT key, the dummy hash. */
int api_access_init(void);
/* The worker's JWT key (for signing tokens): 0, or -ENOENT without one. */
int api_access_key(const uint8_t **key, size_t *len);
/* The access rule of the request's path and method, its credential, its
 * role.  false when the refusal (401/403, Java: no-permission) is written.
 * Sets the principal and the store's actor for the request. */
bool api_access_check(const http_request_t *req, http_response_t *res);
/* After the handler: forget the principal and the actor. */
void api_access_done(void);
const api_principal_t *api_principal(void);
/* A token: 0 and *who, -EACCES (*why says what is wrong), -EIO. */
int api_access_verify(const char *tok, size_t len, mgmt_principal_t *who, const char **why);

/* api_auth.c: /api/auth (MANAGEMENT.md §3.2.7). */
auth_cost_t api_auth_cost(void);
void api_auth_login(const http_request_t *req, http_response_t *res);
void api_auth_roles(const http_request_t *req, http_response_t *res);
void api_auth_logout(const http_request_t *req, http_response_t *res);
void api_auth_refresh(const http_request_t *req, http_response_t *res);
void api_auth_user(const http_request_t *req, http_response_t *res);
void api_auth_permissions(const http_request_t *req, http_response_t *res);
void api_auth_check_permission(const http_request_t *req, http_response_t *res);
void api_auth_password_change(const http_request_t *req, http_response_t *res);
void api_auth_password_reset(const http_request_t *req, http_response_t *res);
void api_auth_sessions(const http_request_t *req, http_response_t *res);
void api_auth_session_delete(const http_request_t *req, http_response_t *res);
void api_auth_users(const http_request_t *req, http_response_t *res);
void api_auth_user_create(const http_request_t *req, http_response_t *res);
void api_auth_user_get(const http_request_t *req, http_response_t *res);
void api_auth_user_update(const http_request_t *req, http_response_t *res);
void api_auth_user_delete(const http_request_t *req, http_response_t *res);
void api_auth_user_status(const http_request_t *req, http_response_t *res);
void api_auth_login_history(const http_request_t *req, http_response_t *res);
/* api_routing*.c: groups, route rules, canary (API.md §5.3, §5.5,
 * MANAGEMENT.md §3.2.3-§3.2.5). */
void api_rt_groups(const http_request_t *req, http_response_t *res);
void api_rt_group_by_id(const http_request_t *req, http_response_t *res);
void api_rt_group(const http_request_t *req, http_response_t *res);
void api_rt_group_tags(const http_request_t *req, http_response_t *res);
void api_rt_group_tag(const http_request_t *req, http_response_t *res);
void api_rt_group_instances(const http_request_t *req, http_response_t *res);
void api_rt_group_instance(const http_request_t *req, http_response_t *res);
void api_rt_service_instances(const http_request_t *req, http_response_t *res);
void api_rt_rules(const http_request_t *req, http_response_t *res);
void api_rt_rule(const http_request_t *req, http_response_t *res);
void api_rt_rule_publish(const http_request_t *req, http_response_t *res);
void api_rt_rule_unpublish(const http_request_t *req, http_response_t *res);
void api_rt_rule_groups(const http_request_t *req, http_response_t *res);
void api_rt_rule_group(const http_request_t *req, http_response_t *res);
void api_rt_canary_config(const http_request_t *req, http_response_t *res);
void api_rt_canary_config_one(const http_request_t *req, http_response_t *res);
void api_rt_canary_configs(const http_request_t *req, http_response_t *res);
void api_rt_canary_enable(const http_request_t *req, http_response_t *res);
void api_rt_canary_disable(const http_request_t *req, http_response_t *res);
void api_rt_canary_enabled(const http_request_t *req, http_response_t *res);
void api_rt_canary_whitelist(const http_request_t *req, http_response_t *res);
void api_rt_canary_whitelist_add(const http_request_t *req, http_response_t *res);
void api_rt_canary_whitelist_remove(const http_request_t *req, http_response_t *res);
void api_rt_canary_check(const http_request_t *req, http_response_t *res);
void api_rt_canary_stats(const http_request_t *req, http_response_t *res);
void api_rt_canary_service_stats(const http_request_t *req, http_response_t *res);
void api_rt_java_canary(const http_request_t *req, http_response_t *res);
/* The 32 /api/management/group/<name>.json of Java, told apart by name. */
void api_rt_java_group(const http_request_t *req, http_response_t *res);

/* ---- Routing table (for metrics) ---------------------------------------------- */

#define API_MAX_ROUTES 128

/* Index of the route serving path (aliases share their twin's index), or
 * -1.  name_out gets the metric label ("registry_register"). */
int api_route_index(const char *path, size_t len);
int api_route_count(void);
/* True for the first route of each name (aliases are not listed twice). */
bool api_route_first(int idx);
const char *api_route_name(int idx);

#endif

/*
 * api.c - routing of HTTP requests to the API handlers, and their helpers.
 *
 * The transport calls api_dispatch() once per complete request (body decoded).
 * Routing is a static table of exact paths: an unknown path is 404, a known
 * path with a method it does not map is 405 with Allow, a POST whose
 * Content-Type is present and not JSON is 415 (Spring's consumes =
 * application/json).  A POST without any Content-Type is accepted as JSON:
 * Java clients always send the header, and being lenient there costs
 * nothing (see docs/API-NOTES.md).
 *
 * Also here: the node status this worker reports, the per-worker rate
 * limiters of API.md §4.6, and small request helpers.  Nothing here blocks
 * or allocates on the heartbeat path beyond what jansson needs.
 */
#include "api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "artemis/codec.h"
#include "artemis/str.h"
#include "metrics.h"
#include "static.h"
#include "worker.h"
#include "ws.h"

/* ---- Context ------------------------------------------------------------ */

const config_t *api_cfg(void)
{
	return g_worker->cfg;
}

shm_t *api_shm(void)
{
	return g_worker->shm;
}

bool api_node_up(void)
{
	/* A node without peers is up at once (API.md §A).  A node with peers
	 * is starting until the replicator has a snapshot from a peer, or every
	 * peer stayed unreachable for [cluster] bootstrap_timeout_ms
	 * (replicator/main.c).  The state lives in the region: the master sets
	 * it at start, a respawned worker reads the same. */
	if (api_cfg()->npeers == 0)
		return true;
	return shm_node_state(api_shm()) == SHM_NODE_UP;
}

const char *api_node_status(void)
{
	return api_node_up() ? "up" : "starting";
}

int api_peers(shm_peer_t *out, int max)
{
	const config_t *cfg = api_cfg();
	int n = 0;

	for (int id = 1; id < SHM_MAX_NODES && n < max; id++)
		if (shm_peer_get(api_shm(), id, &out[n]) == 0)
			n++;
	if (n > 0)
		return n;
	for (int i = 0; i < cfg->npeers && n < max; i++, n++) {
		memset(&out[n], 0, sizeof(out[n]));
		snprintf(out[n].name, sizeof(out[n].name), "%s", cfg->peers[i].name);
		snprintf(out[n].zone, sizeof(out[n].zone), "%s", cfg->peers[i].zone);
		snprintf(out[n].url, sizeof(out[n].url), "%s", cfg->peers[i].url);
		out[n].state = SHM_PEER_UNKNOWN;
	}
	return n;
}

static bool api__first_ipv4(char *buf, size_t len)
{
	struct ifaddrs *ifa, *p;
	bool found = false;

	if (getifaddrs(&ifa) < 0)
		return false;
	for (p = ifa; p != NULL && !found; p = p->ifa_next) {
		struct sockaddr_in *sin = (struct sockaddr_in *)p->ifa_addr;
		if (sin == NULL || sin->sin_family != AF_INET)
			continue;
		if (ntohl(sin->sin_addr.s_addr) >> 24 == 127)
			continue;
		found = inet_ntop(AF_INET, &sin->sin_addr, buf, (socklen_t)len) != NULL;
	}
	freeifaddrs(ifa);
	return found;
}

const char *api_self_url(void)
{
	static char url[CONFIG_STR + 16];
	char host[CONFIG_STR];
	int port = 0;

	if (url[0] != '\0')
		return url;
	if (config_split_hostport(api_cfg()->listen, host, sizeof(host), &port) < 0) {
		snprintf(host, sizeof(host), "127.0.0.1");
		port = 8080;
	}
	/* A wildcard listener: advertise the first non-loopback address, as
	 * Java advertises its host IP. */
	if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 ||
	    strcmp(host, "*") == 0) {
		if (!api__first_ipv4(host, sizeof(host)))
			snprintf(host, sizeof(host), "127.0.0.1");
	}
	snprintf(url, sizeof(url), "%s://%s:%d",
	         api_cfg()->tls_cert[0] && !api_cfg()->tls_listen[0] ? "https" : "http", host,
	         port);
	return url;
}

bool api_blank(shm_str_t s)
{
	if (s.ptr == NULL)
		return true;
	for (size_t i = 0; i < s.len; i++)
		if (s.ptr[i] != ' ' && s.ptr[i] != '\t' && s.ptr[i] != '\r' && s.ptr[i] != '\n')
			return false;
	return true;
}

bool api_same(shm_str_t s, const char *cfg_value)
{
	if (api_blank(s))
		return false;
	return strlen(cfg_value) == s.len && strncasecmp(s.ptr, cfg_value, s.len) == 0;
}

/* ---- Request helpers ------------------------------------------------------ */

int api_body_object(const http_request_t *req, http_response_t *res, json_t **out)
{
	char err[256];

	if (json_parse_body(req->body, req->body_len, out, err, sizeof(err)) < 0) {
		http_res_error(res, req, 400, err);
		return -1;
	}
	if (!json_is_object(*out)) {
		/* Valid JSON of the wrong shape: Jackson cannot bind it. */
		json_decref(*out);
		*out = NULL;
		http_res_error(res, req, 400, "JSON parse error: request body must be an object");
		return -1;
	}
	return 0;
}

int api_query_get(const http_request_t *req, const char *canon, char *buf, size_t buf_len)
{
	const char *q = req->query ? req->query : "";
	int found = -1;

	while (*q) {
		const char *amp = strchr(q, '&');
		size_t seg = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', seg);
		size_t klen = eq ? (size_t)(eq - q) : seg;
		char key[64], ckey[64];

		if (str_urldecode(q, klen, key, sizeof(key), STR_URL_PLUS) >= 0 &&
		    json_canon_key(key, ckey, sizeof(ckey)) && strcmp(ckey, canon) == 0) {
			const char *v = eq ? eq + 1 : q + seg;
			size_t vlen = eq ? seg - klen - 1 : 0;
			long n = str_urldecode(v, vlen, buf, buf_len, STR_URL_PLUS);
			found = n < 0 ? -1 : (int)n;
		}
		q += seg;
		if (*q == '&')
			q++;
	}
	return found;
}

int api_put_fail(buf_t *b, const char *code, const char *message)
{
	return json_put_status(b, "fail", code, message);
}

/* ---- Rate limiters ---------------------------------------------------------- */

/*
 * Java's DefaultRateLimiter: a 10 s sliding window of 1 s buckets per
 * (limiter, identity), server-wide.  Here each worker keeps its own window
 * (no shared state on the hot path); the node-wide limit is therefore up to
 * workers x limit.  The registry operations are limited only when
 * [registry] rate_limit is set (Java's default, 100 000 per 10 s, is below
 * what one worker of this server serves: a limit there turns a healthy node
 * into one that fails requests); the other limiters keep Java's defaults.
 */
#define API_RATE_BUCKETS 10

static const uint32_t api__limit[API_LIMIT_COUNT] = {
    [API_LIMIT_REGISTER] = 0,
    [API_LIMIT_HEARTBEAT] = 0,
    [API_LIMIT_UNREGISTER] = 0,
    [API_LIMIT_UP_REGISTRY_NODES] = 10000,
    [API_LIMIT_UP_DISCOVERY_NODES] = 10000,
    [API_LIMIT_GET_CLUSTER] = 30,
    [API_LIMIT_GET_LEASES] = 10,
    [API_LIMIT_GET_LEGACY_LEASES] = 30,
    [API_LIMIT_GET_CONFIG] = 30,
    [API_LIMIT_GET_DEPLOYMENT] = 30,
};

static struct {
	uint64_t sec[API_RATE_BUCKETS];
	uint32_t count[API_RATE_BUCKETS];
} api__windows[API_LIMIT_COUNT];

bool api_rate_limited(enum api_limit which, uint64_t now_ms)
{
	uint64_t now_sec = now_ms / 1000;
	unsigned b = (unsigned)(now_sec % API_RATE_BUCKETS);
	uint64_t total = 0;

	if ((unsigned)which >= API_LIMIT_COUNT)
		return false;
	uint32_t limit = api__limit[which];
	if (which == API_LIMIT_REGISTER || which == API_LIMIT_HEARTBEAT ||
	    which == API_LIMIT_UNREGISTER)
		limit = api_cfg()->rate_limit;
	if (limit == 0)
		return false;
	if (api__windows[which].sec[b] != now_sec) {
		api__windows[which].sec[b] = now_sec;
		api__windows[which].count[b] = 0;
	}
	for (unsigned i = 0; i < API_RATE_BUCKETS; i++)
		if (api__windows[which].sec[i] + API_RATE_BUCKETS > now_sec)
			total += api__windows[which].count[i];
	if (total + 1 > limit) {
		metrics_rate_limited();
		return true;
	}
	api__windows[which].count[b]++;
	return false;
}

void api_rate_reset(void)
{
	memset(api__windows, 0, sizeof(api__windows));
}

/* ---- Routing ---------------------------------------------------------------- */

/*
 * A route is a path pattern, the methods it maps and a handler.  A pattern's
 * segments are literal text or `{name}`, which matches one non-empty
 * segment; the handler reads it with api_param().  Routes without a `{` are
 * literal.  A request is matched against the literal routes first: when one
 * of them has its path, the pattern routes are not considered (a wrong method
 * there is 405, not another route).  Then the pattern routes in table order,
 * the more literal ones listed first.  Among the routes that match the path,
 * the first that maps the method runs; when none does: 405 with the union
 * of their methods in Allow.
 *
 * Every /artemis/api/... route also answers under /api/... (the earlier
 * Rust rewrite served them there; API.md §A, MANAGEMENT.md §3.3): a path
 * under /api/ that no route has is looked up again with /artemis in front.
 * Reached so, a route's answer gets `errorMessage` in its responseStatus,
 * and with R_NODES every ServiceNode its flat nodeId, regionId, zoneId
 * (api_rust.c).
 */
enum { M_GET = 1, M_POST = 2, M_PUT = 4, M_DELETE = 8, M_PATCH = 16 };
enum { R_NODES = 1 };

#define API_TWIN_FROM "/api/"
#define API_TWIN_TO   "/artemis"

typedef struct {
	const char *path;
	unsigned methods;
	unsigned flags;
	api_handler_fn fn;
	const char *name; /* metric label; aliases repeat their twin's */
} api_route_t;

#define GP (M_POST | M_GET)
#define MG "/api/management/"
#define AU "/api/auth/"
#define RT "/api/routing/"
#define CN "/api/management/canary/"

static const api_route_t api__routes[] = {
    {"/artemis/api/registry/register.json", M_POST, 0, api_registry_register, "registry_register"},
    {"/artemis/api/registry/heartbeat.json", M_POST, 0, api_registry_heartbeat,
     "registry_heartbeat"},
    {"/artemis/api/registry/unregister.json", M_POST, 0, api_registry_unregister,
     "registry_unregister"},
    {"/artemis/api/discovery/lookup.json", M_POST, 0, api_discovery_lookup, "discovery_lookup"},
    {"/artemis/api/discovery/service.json", GP, 0, api_discovery_service, "discovery_service"},
    {"/artemis/api/discovery/services.json", GP, 0, api_discovery_services, "discovery_services"},
    {"/artemis/api/discovery/services-delta.json", M_POST, 0, api_discovery_services_delta,
     "discovery_services_delta"},
    {"/artemis/api/cluster/up-registry-nodes.json", GP, R_NODES, api_cluster_up_registry_nodes,
     "cluster_up_registry_nodes"},
    {"/artemis/api/cluster/up-discovery-nodes.json", GP, R_NODES, api_cluster_up_discovery_nodes,
     "cluster_up_discovery_nodes"},
    {"/artemis/api/replication/registry/register.json", M_POST, 0, api_replication_register,
     "replication_register"},
    {"/artemis/api/replication/registry/heartbeat.json", M_POST, 0, api_replication_heartbeat,
     "replication_heartbeat"},
    {"/artemis/api/replication/registry/unregister.json", M_POST, 0, api_replication_unregister,
     "replication_unregister"},
    {"/artemis/api/replication/registry/services.json", GP, 0, api_replication_services,
     "replication_services"},
    {"/artemis/api/status/node.json", GP, R_NODES, api_status_node, "status_node"},
    {"/artemis/api/status/cluster.json", GP, R_NODES, api_status_cluster, "status_cluster"},
    {"/artemis/api/status/leases.json", GP, 0, api_status_leases, "status_leases"},
    {"/artemis/api/status/legacy-leases.json", GP, 0, api_status_legacy_leases,
     "status_legacy_leases"},
    {"/artemis/api/status/config.json", GP, 0, api_status_config, "status_config"},
    {"/artemis/api/status/deployment.json", GP, 0, api_status_deployment, "status_deployment"},
    {"/artemis/api/status/websocket/connection.json", M_GET, 0, api_status_ws_connection,
     "status_websocket_connection"},
    {"/health", M_GET, 0, api_ops_health, "health"},
    {"/ready", M_GET, 0, api_ops_ready, "ready"},
    {"/metrics", M_GET, 0, api_ops_metrics, "metrics"},
    /* Management, Java (API.md §5.1, §5.2, §5.4). */
    {MG "operate-instance.json", M_POST, 0, api_mgmt_operate_instance, "mgmt_operate_instance"},
    {MG "operate-server.json", M_POST, 0, api_mgmt_operate_server, "mgmt_operate_server"},
    {MG "instance-operations.json", M_POST, 0, api_mgmt_instance_operations,
     "mgmt_instance_operations"},
    {MG "server-operations.json", M_POST, 0, api_mgmt_server_operations, "mgmt_server_operations"},
    {MG "all-instance-operations.json", GP, 0, api_mgmt_all_instance_operations,
     "mgmt_all_instance_operations"},
    {MG "all-server-operations.json", GP, 0, api_mgmt_all_server_operations,
     "mgmt_all_server_operations"},
    {MG "instance-down.json", M_POST, 0, api_mgmt_instance_down, "mgmt_instance_down"},
    {MG "server-down.json", M_POST, 0, api_mgmt_server_down, "mgmt_server_down"},
    {MG "services.json", GP, 0, api_mgmt_services, "mgmt_services"},
    {MG "service.json", M_POST, 0, api_mgmt_service, "mgmt_service"},
    {MG "log/instance-operation-logs.json", M_POST, 0, api_mgmt_log, "mgmt_log_instance"},
    {MG "log/server-operation-logs.json", M_POST, 0, api_mgmt_log, "mgmt_log_server"},
    {MG "log/zone-operation-logs.json", M_POST, 0, api_mgmt_log, "mgmt_log_zone"},
    {MG "log/group-operation-logs.json", M_POST, 0, api_mgmt_log, "mgmt_log_group_operation"},
    {MG "log/group-logs.json", M_POST, 0, api_mgmt_log, "mgmt_log_group"},
    {MG "log/route-rule-logs.json", M_POST, 0, api_mgmt_log, "mgmt_log_route_rule"},
    {MG "log/route-rule-group-logs.json", M_POST, 0, api_mgmt_log, "mgmt_log_route_rule_group"},
    {MG "log/group-instance-logs.json", M_POST, 0, api_mgmt_log, "mgmt_log_group_instance"},
    {MG "log/service-instance-logs.json", M_POST, 0, api_mgmt_log, "mgmt_log_service_instance"},
    {MG "zone/operate-zone-operations.json", M_POST, 0, api_mgmt_operate_zone_operations,
     "mgmt_operate_zone_operations"},
    {MG "zone/get-all-zone-operations.json", M_POST, 0, api_mgmt_all_zone_operations,
     "mgmt_all_zone_operations"},
    {MG "zone/get-zone-operations.json", M_POST, 0, api_mgmt_zone_operations,
     "mgmt_zone_operations"},
    {MG "zone/get-zone-operations-list.json", M_POST, 0, api_mgmt_zone_operations_list,
     "mgmt_zone_operations_list"},
    {MG "zone/is-zone-down.json", M_POST, 0, api_mgmt_is_zone_down, "mgmt_is_zone_down"},
    /* Management, the Rust rewrite's REST paths (MANAGEMENT.md §3.2, §3.3). */
    {MG "instance/operate-instance.json", M_POST, 0, api_mgmt_rust_operate_instance,
     "mgmt_rust_operate_instance"},
    {MG "instance/get-instance-operations.json", M_POST, 0, api_mgmt_rust_instance_operations,
     "mgmt_rust_instance_operations"},
    {MG "instance/is-instance-down.json", M_POST, 0, api_mgmt_rust_is_instance_down,
     "mgmt_rust_is_instance_down"},
    {MG "server/operate-server.json", M_POST, 0, api_mgmt_rust_operate_server,
     "mgmt_rust_operate_server"},
    {MG "server/is-server-down.json", M_POST, 0, api_mgmt_rust_is_server_down,
     "mgmt_rust_is_server_down"},
    {MG "services", M_GET, 0, api_mgmt_services_page, "mgmt_services_page"},
    {MG "zone", M_GET, 0, api_mgmt_zones, "mgmt_zones"},
    {MG "zone/pull-out", M_POST, 0, api_mgmt_zone_pull_out, "mgmt_zone_pull_out"},
    {MG "zone/pull-in", M_POST, 0, api_mgmt_zone_pull_in, "mgmt_zone_pull_in"},
    {MG "zone/batch-pull-out", M_POST, 0, api_mgmt_zone_batch_pull_out, "mgmt_zone_batch_pull_out"},
    {MG "zone/batch-pull-in", M_POST, 0, api_mgmt_zone_batch_pull_in, "mgmt_zone_batch_pull_in"},
    {MG "zone/operations", M_GET, 0, api_mgmt_zone_list, "mgmt_zone_list"},
    {MG "audit/logs", M_GET, 0, api_mgmt_audit_logs, "mgmt_audit_logs"},
    {MG "audit/logs/export", M_GET, 0, api_mgmt_audit_export, "mgmt_audit_export"},
    {MG "audit/logs/stats", M_GET, 0, api_mgmt_audit_stats, "mgmt_audit_stats"},
    {MG "audit/logs/cleanup", M_DELETE, 0, api_mgmt_audit_cleanup, "mgmt_audit_cleanup"},
    {MG "audit/instance-logs", M_GET, 0, api_mgmt_audit_instance_logs, "mgmt_audit_instance_logs"},
    {MG "audit/server-logs", M_GET, 0, api_mgmt_audit_server_logs, "mgmt_audit_server_logs"},
    {MG "zone/status/{zoneId}/{regionId}", M_GET, 0, api_mgmt_zone_status, "mgmt_zone_status"},
    {MG "zone/{zoneId}/is-down", M_GET, 0, api_mgmt_zone_is_down, "mgmt_zone_is_down"},
    {MG "zone/{zoneId}/instances", M_GET, 0, api_mgmt_zone_instances, "mgmt_zone_instances"},
    {MG "zone/{zoneId}/status", M_PUT, 0, api_mgmt_zone_put_status, "mgmt_zone_put_status"},
    {MG "zone/{zoneId}/{regionId}", M_DELETE, 0, api_mgmt_zone_delete, "mgmt_zone_delete"},
    {MG "zone/{zoneId}", M_GET, 0, api_mgmt_zone_get, "mgmt_zone_get"},
    {MG "audit/logs/{id}", M_GET, 0, api_mgmt_audit_log, "mgmt_audit_log"},
    /* Users, sessions, tokens (MANAGEMENT.md §3.2.7). */
    {AU "login", M_POST, 0, api_auth_login, "auth_login"},
    {AU "roles", M_GET, 0, api_auth_roles, "auth_roles"},
    {AU "logout", M_POST, 0, api_auth_logout, "auth_logout"},
    {AU "refresh", M_POST, 0, api_auth_refresh, "auth_refresh"},
    {AU "user", M_GET, 0, api_auth_user, "auth_user"},
    {AU "permissions", M_GET, 0, api_auth_permissions, "auth_permissions"},
    {AU "check-permission", M_POST, 0, api_auth_check_permission, "auth_check_permission"},
    {AU "password/change", M_POST, 0, api_auth_password_change, "auth_password_change"},
    {AU "sessions", M_GET, 0, api_auth_sessions, "auth_sessions"},
    {AU "users", M_GET, 0, api_auth_users, "auth_users"},
    {AU "users", M_POST, 0, api_auth_user_create, "auth_user_create"},
    {AU "password/reset/{userId}", M_POST, 0, api_auth_password_reset, "auth_password_reset"},
    {AU "sessions/{sessionId}", M_DELETE, 0, api_auth_session_delete, "auth_session_delete"},
    {AU "users/{userId}/status", M_PUT | M_PATCH, 0, api_auth_user_status, "auth_user_status"},
    {AU "users/{userId}/login-history", M_GET, 0, api_auth_login_history, "auth_login_history"},
    {AU "users/{userId}", M_GET, 0, api_auth_user_get, "auth_user_get"},
    {AU "users/{userId}", M_PUT, 0, api_auth_user_update, "auth_user_update"},
    {AU "users/{userId}", M_DELETE, 0, api_auth_user_delete, "auth_user_delete"},
    /* Groups, route rules, canary: Java's (API.md §5.3: the 32 group/...json
     * told apart by name; §5.5). */
    {MG "group/{operation}", M_POST, 0, api_rt_java_group, "mgmt_group"},
    {CN "update-canary-ips.json", M_POST, 0, api_rt_java_canary, "mgmt_canary_update_ips"},
    /* ... and the Rust rewrite's (MANAGEMENT.md §3.2.3-§3.2.5, §3.3). */
    {RT "groups", M_GET | M_POST, 0, api_rt_groups, "routing_groups"},
    {RT "rules", M_GET | M_POST, 0, api_rt_rules, "routing_rules"},
    {CN "config", M_POST, 0, api_rt_canary_config, "canary_config"},
    {CN "configs", M_GET, 0, api_rt_canary_configs, "canary_configs"},
    {CN "enable", M_POST, 0, api_rt_canary_enable, "canary_enable"},
    {CN "disable", M_POST, 0, api_rt_canary_disable, "canary_disable"},
    {CN "stats", M_GET, 0, api_rt_canary_stats, "canary_stats"},
    {RT "groups/by-id/{groupId}", M_GET, 0, api_rt_group_by_id, "routing_group_by_id"},
    {RT "groups/{groupKey}/tags/{tagKey}", M_DELETE, 0, api_rt_group_tag, "routing_group_tag"},
    {RT "groups/{groupKey}/instances/{instanceId}", M_DELETE, 0, api_rt_group_instance,
     "routing_group_instance"},
    {RT "groups/{groupKey}/tags", M_GET | M_POST, 0, api_rt_group_tags, "routing_group_tags"},
    {RT "groups/{groupKey}/instances", M_GET | M_POST, 0, api_rt_group_instances,
     "routing_group_instances"},
    {RT "groups/{groupKey}", M_GET | M_PUT | M_DELETE, 0, api_rt_group, "routing_group"},
    {RT "services/{serviceId}/instances", M_POST, 0, api_rt_service_instances,
     "routing_service_instances"},
    {RT "rules/{routeId}/publish", M_POST, 0, api_rt_rule_publish, "routing_rule_publish"},
    {RT "rules/{routeId}/unpublish", M_POST, 0, api_rt_rule_unpublish, "routing_rule_unpublish"},
    {RT "rules/{routeId}/groups/{groupId}", M_PUT | M_DELETE, 0, api_rt_rule_group,
     "routing_rule_group"},
    {RT "rules/{routeId}/groups", M_GET | M_POST, 0, api_rt_rule_groups, "routing_rule_groups"},
    {RT "rules/{routeId}", M_GET | M_PUT | M_DELETE, 0, api_rt_rule, "routing_rule"},
    {CN "config/{serviceId}", M_GET | M_DELETE, 0, api_rt_canary_config_one, "canary_config_one"},
    {CN "enabled/{serviceId}", M_GET, 0, api_rt_canary_enabled, "canary_enabled"},
    {CN "{serviceId}/whitelist/check/{ip}", M_GET, 0, api_rt_canary_check, "canary_check"},
    {CN "{serviceId}/whitelist/add", M_POST, 0, api_rt_canary_whitelist_add,
     "canary_whitelist_add"},
    {CN "{serviceId}/whitelist/remove", M_POST, 0, api_rt_canary_whitelist_remove,
     "canary_whitelist_remove"},
    {CN "{serviceId}/whitelist", M_GET | M_DELETE, 0, api_rt_canary_whitelist, "canary_whitelist"},
    {CN "{serviceId}/stats", M_GET, 0, api_rt_canary_service_stats, "canary_service_stats"},
};

#undef GP
#undef MG
#undef AU
#undef RT
#undef CN

#define API_NROUTES (sizeof(api__routes) / sizeof(api__routes[0]))
_Static_assert(API_NROUTES <= API_MAX_ROUTES, "route table too large for metrics");

/* Per route: its path length, whether it is a pattern, and the first
 * route of the same name (aliases count under their twin's entry).
 * Computed once. */
static size_t api__path_len[API_NROUTES];
static bool api__pattern[API_NROUTES];
static int api__twin[API_NROUTES];

/* The current request's path parameters (one request at a time per
 * worker). */
#define API_MAX_PARAMS 4
static struct {
	const char *name;
	size_t name_len;
	char value[SHM_MAX_SERVICE + 1];
} api__params[API_MAX_PARAMS];
static int api__nparams;
static bool api__twin_path; /* the running request came in on an /api twin */

static void api__init_routes(void)
{
	for (size_t i = 0; i < API_NROUTES; i++) {
		api__path_len[i] = strlen(api__routes[i].path);
		api__pattern[i] = strchr(api__routes[i].path, '{') != NULL;
		api__twin[i] = (int)i;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(api__routes[j].name, api__routes[i].name) == 0) {
				api__twin[i] = (int)j;
				break;
			}
		}
	}
}

/* Match path against a pattern; with `bind`, record the parameters. */
static bool api__match(const char *pat, const char *path, size_t len, bool bind)
{
	const char *p = path, *end = path + len;
	int n = 0;

	while (*pat && p <= end) {
		const char *pseg = pat, *pe = strchr(pat, '/');
		size_t plen = pe ? (size_t)(pe - pat) : strlen(pat);
		const char *se = memchr(p, '/', (size_t)(end - p));
		size_t slen = se ? (size_t)(se - p) : (size_t)(end - p);

		if (plen > 1 && pseg[0] == '{' && pseg[plen - 1] == '}') {
			if (slen == 0 || slen > SHM_MAX_SERVICE)
				return false;
			if (bind && n < API_MAX_PARAMS) {
				api__params[n].name = pseg + 1;
				api__params[n].name_len = plen - 2;
				memcpy(api__params[n].value, p, slen);
				api__params[n].value[slen] = '\0';
				n++;
			}
		} else if (plen != slen || memcmp(pseg, p, slen) != 0) {
			return false;
		}
		pat += plen;
		p += slen;
		if ((*pat == '/') != (p < end && *p == '/'))
			return false;
		if (*pat == '/') {
			pat++;
			p++;
		}
	}
	if (*pat || p != end)
		return false;
	if (bind)
		api__nparams = n;
	return true;
}

static unsigned api__method_bit(enum http_method m)
{
	switch (m) {
	case HTTP_M_GET:
	case HTTP_M_HEAD:
		return M_GET;
	case HTTP_M_POST:
		return M_POST;
	case HTTP_M_PUT:
		return M_PUT;
	case HTTP_M_DELETE:
		return M_DELETE;
	case HTTP_M_PATCH:
		return M_PATCH;
	default:
		return 0;
	}
}

/* One pass over the literal (or the pattern) routes: the first that has
 * the path and maps the method, or -1; *allow collects the methods of all
 * that have the path. */
static int api__pass(const char *path, size_t len, unsigned method, bool pattern, unsigned *allow)
{
	int found = -1;

	for (size_t i = 0; i < API_NROUTES; i++) {
		if (api__pattern[i] != pattern)
			continue;
		if (pattern
		        ? !api__match(api__routes[i].path, path, len, false)
		        : (api__path_len[i] != len || memcmp(api__routes[i].path, path, len) != 0))
			continue;
		*allow |= api__routes[i].methods;
		if (found < 0 && (api__routes[i].methods & method))
			found = (int)i;
	}
	return found;
}

/* The route for (path, method): its index, or -1 with *allow the methods
 * of the routes that have the path (0: no route has it); *twin when it is
 * an /artemis/api route reached by its /api twin. */
static int api__find_route(const char *path, size_t len, unsigned method, unsigned *allow,
                           bool *twin)
{
	static char twin_path[256]; /* longer than every /artemis/api route */
	size_t from = sizeof(API_TWIN_FROM) - 1, to = sizeof(API_TWIN_TO) - 1;
	int found;

	if (api__path_len[0] == 0)
		api__init_routes();
	*allow = 0;
	*twin = false;
	api__nparams = 0;
	found = api__pass(path, len, method, false, allow);
	if (*allow)
		return found;
	if (len > from && len + to < sizeof(twin_path) && memcmp(path, API_TWIN_FROM, from) == 0) {
		memcpy(twin_path, API_TWIN_TO, to);
		memcpy(twin_path + to, path, len);
		found = api__pass(twin_path, len + to, method, false, allow);
		if (*allow) {
			*twin = true;
			return found;
		}
	}
	found = api__pass(path, len, method, true, allow);
	if (found >= 0)
		api__match(api__routes[found].path, path, len, true);
	return found;
}

int api_route_index(const char *path, size_t len)
{
	unsigned allow;
	bool twin;
	int i = api__find_route(path, len, ~0u, &allow, &twin);

	return i < 0 ? -1 : api__twin[i];
}

bool api_route_first(int idx)
{
	if (idx < 0 || (size_t)idx >= API_NROUTES)
		return false;
	if (api__path_len[0] == 0)
		api__init_routes();
	return api__twin[idx] == idx;
}

int api_route_count(void)
{
	return (int)API_NROUTES;
}

const char *api_route_name(int idx)
{
	if (idx < 0 || (size_t)idx >= API_NROUTES)
		return NULL;
	return api__routes[idx].name;
}

const char *api_param(const char *name)
{
	size_t n = strlen(name);

	for (int i = 0; i < api__nparams; i++)
		if (api__params[i].name_len == n && memcmp(api__params[i].name, name, n) == 0)
			return api__params[i].value;
	return NULL;
}

bool api_rust_path(void)
{
	return api__twin_path;
}

/* Spring's consumes=application/json: the media type, before any
 * parameters, compared case-insensitively. */
static bool api__json_content_type(const char *ct)
{
	static const char want[] = "application/json";
	size_t n;

	if (ct == NULL)
		return true;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (*ct == '\0')
		return true;
	n = strcspn(ct, "; \t");
	return n == sizeof(want) - 1 && strncasecmp(ct, want, n) == 0;
}

static const char *api__allow_header(unsigned m)
{
	static char buf[64];
	static const struct {
		unsigned bit;
		const char *text;
	} names[] = {
	    {M_GET, "GET, HEAD"}, {M_POST, "POST"},   {M_PUT, "PUT"},
	    {M_DELETE, "DELETE"}, {M_PATCH, "PATCH"},
	};
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (m & names[i].bit)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? ", " : "",
			                      names[i].text);
	return buf;
}

void api_dispatch(const http_request_t *req, http_response_t *res)
{
	unsigned allow, method = api__method_bit(req->method);
	bool twin;
	int i;
	char msg[CONFIG_STR + 64];

	if (static_match(req->path, req->path_len)) { /* the web console (static.c) */
		static_serve(req, res);
		return;
	}
	i = api__find_route(req->path, req->path_len, method, &allow, &twin);
	if (i < 0 && allow == 0) {
		http_res_error(res, req, 404, "No message available");
		return;
	}
	if (i < 0) {
		res->allow = api__allow_header(allow);
		snprintf(msg, sizeof(msg), "Request method not supported");
		http_res_error(res, req, 405, msg);
		return;
	}
	if (!api_access_check(req, res)) { /* api_access.c: MANAGEMENT.md §6 */
		api__nparams = 0;
		return;
	}
	if ((method & (M_POST | M_PUT | M_PATCH)) && !api__json_content_type(req->content_type)) {
		snprintf(msg, sizeof(msg), "Content type '%.200s' not supported",
		         req->content_type);
		http_res_error(res, req, 415, msg);
	} else {
		api__twin_path = twin;
		api__routes[i].fn(req, res);
		if (twin)
			api_rust_shape(res, (api__routes[i].flags & R_NODES) != 0);
	}
	api_access_done();
	api__twin_path = false;
	api__nparams = 0;
}

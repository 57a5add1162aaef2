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
	snprintf(url, sizeof(url), "http://%s:%d", host, port);
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
	[API_LIMIT_REGISTER] = 0,            [API_LIMIT_HEARTBEAT] = 0,
	[API_LIMIT_UNREGISTER] = 0,          [API_LIMIT_UP_REGISTRY_NODES] = 10000,
	[API_LIMIT_UP_DISCOVERY_NODES] = 10000, [API_LIMIT_GET_CLUSTER] = 30,
	[API_LIMIT_GET_LEASES] = 10,         [API_LIMIT_GET_LEGACY_LEASES] = 30,
	[API_LIMIT_GET_CONFIG] = 30,         [API_LIMIT_GET_DEPLOYMENT] = 30,
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

enum { M_GET = 1, M_POST = 2 };

typedef struct {
	const char *path;
	unsigned methods;
	api_handler_fn fn;
	const char *name;   /* metric label; aliases repeat their twin's */
} api_route_t;

static const api_route_t api__routes[] = {
	{ "/artemis/api/registry/register.json", M_POST, api_registry_register, "registry_register" },
	{ "/artemis/api/registry/heartbeat.json", M_POST, api_registry_heartbeat, "registry_heartbeat" },
	{ "/artemis/api/registry/unregister.json", M_POST, api_registry_unregister, "registry_unregister" },
	{ "/artemis/api/discovery/lookup.json", M_POST, api_discovery_lookup, "discovery_lookup" },
	{ "/artemis/api/discovery/service.json", M_POST | M_GET, api_discovery_service, "discovery_service" },
	{ "/artemis/api/discovery/services.json", M_POST | M_GET, api_discovery_services, "discovery_services" },
	{ "/artemis/api/discovery/services-delta.json", M_POST, api_discovery_services_delta, "discovery_services_delta" },
	{ "/artemis/api/cluster/up-registry-nodes.json", M_POST | M_GET, api_cluster_up_registry_nodes, "cluster_up_registry_nodes" },
	{ "/artemis/api/cluster/up-discovery-nodes.json", M_POST | M_GET, api_cluster_up_discovery_nodes, "cluster_up_discovery_nodes" },
	{ "/artemis/api/replication/registry/register.json", M_POST, api_replication_register, "replication_register" },
	{ "/artemis/api/replication/registry/heartbeat.json", M_POST, api_replication_heartbeat, "replication_heartbeat" },
	{ "/artemis/api/replication/registry/unregister.json", M_POST, api_replication_unregister, "replication_unregister" },
	{ "/artemis/api/replication/registry/services.json", M_POST | M_GET, api_replication_services, "replication_services" },
	{ "/artemis/api/status/node.json", M_POST | M_GET, api_status_node, "status_node" },
	{ "/artemis/api/status/cluster.json", M_POST | M_GET, api_status_cluster, "status_cluster" },
	{ "/artemis/api/status/leases.json", M_POST | M_GET, api_status_leases, "status_leases" },
	{ "/artemis/api/status/legacy-leases.json", M_POST | M_GET, api_status_legacy_leases, "status_legacy_leases" },
	{ "/artemis/api/status/config.json", M_POST | M_GET, api_status_config, "status_config" },
	{ "/artemis/api/status/deployment.json", M_POST | M_GET, api_status_deployment, "status_deployment" },
	{ "/artemis/api/status/websocket/connection.json", M_GET, api_status_ws_connection, "status_websocket_connection" },
	{ "/health", M_GET, api_ops_health, "health" },
	{ "/ready", M_GET, api_ops_ready, "ready" },
	{ "/metrics", M_GET, api_ops_metrics, "metrics" },
	/* API.md §A: the Rust rewrite's README paths. */
	{ "/api/registry/register.json", M_POST, api_registry_register, "registry_register" },
	{ "/api/registry/heartbeat.json", M_POST, api_registry_heartbeat, "registry_heartbeat" },
	{ "/api/registry/unregister.json", M_POST, api_registry_unregister, "registry_unregister" },
	{ "/api/discovery/service.json", M_POST, api_discovery_service, "discovery_service" },
	{ "/api/discovery/lookup.json", M_POST, api_discovery_lookup, "discovery_lookup" },
	{ "/api/discovery/services.json", M_POST, api_discovery_services, "discovery_services" },
};

#define API_NROUTES (sizeof(api__routes) / sizeof(api__routes[0]))
_Static_assert(API_NROUTES <= API_MAX_ROUTES, "route table too large for metrics");

/* Per route: its path length, and the first route of the same name
 * (aliases count under their twin's entry).  Computed once. */
static size_t api__path_len[API_NROUTES];
static int api__twin[API_NROUTES];

static void api__init_routes(void)
{
	for (size_t i = 0; i < API_NROUTES; i++) {
		api__path_len[i] = strlen(api__routes[i].path);
		api__twin[i] = (int)i;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(api__routes[j].name, api__routes[i].name) == 0) {
				api__twin[i] = (int)j;
				break;
			}
		}
	}
}

static int api__find(const char *path, size_t len)
{
	if (api__path_len[0] == 0)
		api__init_routes();
	for (size_t i = 0; i < API_NROUTES; i++)
		if (api__path_len[i] == len && memcmp(api__routes[i].path, path, len) == 0)
			return (int)i;
	return -1;
}

int api_route_index(const char *path, size_t len)
{
	int i = api__find(path, len);

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

void api_dispatch(const http_request_t *req, http_response_t *res)
{
	int i;
	unsigned m;
	char msg[CONFIG_STR + 64];

	if (static_match(req->path, req->path_len)) { /* the web console (static.c) */
		static_serve(req, res);
		return;
	}
	i = api__find(req->path, req->path_len);
	if (i < 0) {
		http_res_error(res, req, 404, "No message available");
		return;
	}
	m = api__routes[i].methods;
	if (!((req->method == HTTP_M_POST && (m & M_POST)) ||
	      ((req->method == HTTP_M_GET || req->method == HTTP_M_HEAD) && (m & M_GET)))) {
		res->allow = m == M_POST ? "POST" : m == M_GET ? "GET, HEAD" : "GET, HEAD, POST";
		snprintf(msg, sizeof(msg), "Request method not supported");
		http_res_error(res, req, 405, msg);
		return;
	}
	if (req->method == HTTP_M_POST && !api__json_content_type(req->content_type)) {
		snprintf(msg, sizeof(msg), "Content type '%.200s' not supported", req->content_type);
		http_res_error(res, req, 415, msg);
		return;
	}
	api__routes[i].fn(req, res);
}

/*
 * api_status.c - /artemis/api/status/{node,cluster,leases,legacy-leases,
 * config,deployment}.json (API.md §2.5), POST with a JSON body or GET.
 *
 * node.json is polled by peers every 5 s and is not rate limited; the
 * others go through the status limiter (30 per 10 s, get-leases 10).
 * leases.json walks the registry (shm_instances_foreach), so its cost is
 * proportional to the registry; the limiter keeps that bounded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "artemis/clock.h"

#include "api.h"
#include "artemis/codec.h"
#include "metrics.h"
#include "worker.h"

/* A POST must carry a JSON object (Spring @RequestBody); GET has none.
 * Returns -1 when the 400 is already written. */
static int st__body(const http_request_t *req, http_response_t *res, json_t **root)
{
	*root = NULL;
	if (req->method != HTTP_M_POST)
		return 0;
	return api_body_object(req, res, root);
}

/* ---- ServiceNodeStatus ---------------------------------------------------------- */

static void st__put_node(buf_t *b, const char *url, const char *region, const char *zone)
{
	json_put_raw(b, "{\"url\":");
	json_put_cstr(b, url);
	json_put_raw(b, ",\"zone\":{\"metadata\":null,\"regionId\":");
	json_put_cstr(b, region);
	json_put_raw(b, ",\"zoneId\":");
	json_put_cstr(b, zone);
	json_put_raw(b, "}}");
}

int api_put_node_status(buf_t *b)
{
	const config_t *cfg = api_cfg();
	bool up = api_node_up();
	const char *can = up ? "true" : "null";

	json_put_raw(b, "{\"allowDiscoveryFromOtherZone\":");
	json_put_bool(b, cfg->allow_discovery_from_other_zone);
	json_put_raw(b, ",\"allowRegistryFromOtherZone\":");
	json_put_bool(b, cfg->allow_registry_from_other_zone);
	json_put_raw(b, ",\"canServiceDiscovery\":");
	json_put_raw(b, can);
	json_put_raw(b, ",\"canServiceRegistry\":");
	json_put_raw(b, can);
	json_put_raw(b, ",\"node\":");
	st__put_node(b, api_self_url(), cfg->region, cfg->zone);
	json_put_raw(b, ",\"status\":");
	json_put_cstr(b, api_node_status());
	json_put_raw(b, "}");
	return buf_error(b);
}

/* A peer as the replicator last saw it.  Its allow-from-other-zone flags
 * are not exchanged: a cluster shares one configuration, so this node's
 * are reported for a peer whose status is known. */
static void st__put_peer_status(buf_t *b, const shm_peer_t *p)
{
	static const char *const names[] = {"unknown", "starting", "up", "down"};
	const config_t *cfg = api_cfg();
	const char *status = p->state < 4 ? names[p->state] : "unknown";
	const char *can = p->state == SHM_PEER_UP     ? "true"
	                  : p->state == SHM_PEER_DOWN ? "false"
	                                              : "null";
	bool known = p->state != SHM_PEER_UNKNOWN;

	json_put_raw(b, "{\"allowDiscoveryFromOtherZone\":");
	json_put_raw(b, !known ? "null" : cfg->allow_discovery_from_other_zone ? "true" : "false");
	json_put_raw(b, ",\"allowRegistryFromOtherZone\":");
	json_put_raw(b, !known ? "null" : cfg->allow_registry_from_other_zone ? "true" : "false");
	json_put_raw(b, ",\"canServiceDiscovery\":");
	json_put_raw(b, can);
	json_put_raw(b, ",\"canServiceRegistry\":");
	json_put_raw(b, can);
	json_put_raw(b, ",\"node\":");
	st__put_node(b, p->url, cfg->region, p->zone);
	json_put_raw(b, ",\"status\":");
	json_put_cstr(b, status);
	json_put_raw(b, "}");
}

void api_status_node(const http_request_t *req, http_response_t *res)
{
	json_t *root;

	if (st__body(req, res, &root) < 0)
		return;
	json_decref(root);
	buf_reset(&res->body);
	json_put_raw(&res->body, "{\"nodeStatus\":");
	api_put_node_status(&res->body);
	json_put_raw(&res->body, ",\"responseStatus\":" API_STATUS_SUCCESS "}");
}

void api_status_cluster(const http_request_t *req, http_response_t *res)
{
	static shm_peer_t peers[SHM_MAX_NODES];
	json_t *root;
	int n;

	if (st__body(req, res, &root) < 0)
		return;
	json_decref(root);
	buf_reset(&res->body);
	if (api_rate_limited(API_LIMIT_GET_CLUSTER, clock_wall_ms())) {
		json_put_raw(&res->body, "{\"nodeCount\":0,\"nodesStatus\":null,"
		                         "\"responseStatus\":" API_STATUS_RATE_LIMITED "}");
		metrics_fail(req);
		return;
	}
	n = api_peers(peers, SHM_MAX_NODES);
	json_put_raw(&res->body, "{\"nodeCount\":");
	json_put_i64(&res->body, n + 1);
	json_put_raw(&res->body, ",\"nodesStatus\":[");
	api_put_node_status(&res->body);
	for (int i = 0; i < n; i++) {
		json_put_raw(&res->body, ",");
		st__put_peer_status(&res->body, &peers[i]);
	}
	json_put_raw(&res->body, "],\"responseStatus\":" API_STATUS_SUCCESS "}");
}

/* ---- leases.json / legacy-leases.json ----------------------------------------------- */

typedef struct {
	char *service; /* exact case */
	char *display;
	uint64_t creation_ms, renewal_ms, eviction_ms;
	uint32_t ttl_ms;
} st_lease_t;

typedef struct {
	bool legacy;
	st_lease_t *v;
	size_t n, cap;
	int rc;
} st_leases_t;

static int st__lease_add(void *ctx, const shm_instance_view_t *view, const char *json,
                         size_t json_len)
{
	st_leases_t *l = ctx;
	st_lease_t *e;

	(void)json;
	(void)json_len;
	if (view->legacy != l->legacy)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		st_lease_t *p = realloc(l->v, cap * sizeof(*p));
		if (p == NULL) {
			l->rc = -ENOMEM;
			return 1;
		}
		l->v = p;
		l->cap = cap;
	}
	e = &l->v[l->n];
	e->service = strdup(view->service);
	e->display = strdup(view->display);
	if (e->service == NULL || e->display == NULL) {
		free(e->service);
		free(e->display);
		l->rc = -ENOMEM;
		return 1;
	}
	e->creation_ms = view->creation_ms;
	e->renewal_ms = view->renewal_ms;
	e->eviction_ms = view->eviction_ms;
	e->ttl_ms = view->ttl_ms;
	l->n++;
	return 0;
}

static int st__lease_cmp(const void *a, const void *b)
{
	const st_lease_t *x = a, *y = b;
	int c = strcmp(x->service, y->service);

	return c ? c : strcmp(x->display, y->display);
}

/* SimpleDateFormat("yyyy-MM-dd HH:mm:ss.SSS") in the server's time zone. */
static void st__put_time(buf_t *b, uint64_t ms)
{
	char buf[48];
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	localtime_r(&t, &tm);
	snprintf(buf, sizeof(buf), "\"%04d-%02d-%02d %02d:%02d:%02d.%03u\"", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	         (unsigned)(ms % 1000));
	json_put_raw(b, buf);
}

static void st__put_lease(buf_t *b, const st_lease_t *e)
{
	json_put_raw(b, "{\"creationTime\":");
	st__put_time(b, e->creation_ms);
	json_put_raw(b, ",\"evitionTime\":");
	st__put_time(b, e->eviction_ms);
	json_put_raw(b, ",\"instance\":");
	json_put_cstr(b, e->display);
	json_put_raw(b, ",\"renewalTime\":");
	st__put_time(b, e->renewal_ms);
	json_put_raw(b, ",\"ttl\":");
	json_put_u64(b, e->ttl_ms);
	json_put_raw(b, "}");
}

/* Collect the requested services' leases (all when the list is empty). */
static int st__collect(st_leases_t *l, json_t *ids, uint64_t now_ms)
{
	shm_t *shm = api_shm();
	size_t i;
	json_t *v;
	int rc = 0;

	if (json_array_size(ids) == 0)
		return shm_instances_foreach(shm, NULL, now_ms, st__lease_add, l);
	json_array_foreach(ids, i, v)
	{
		shm_str_t s;
		if (!json_is_string(v))
			continue;
		s.ptr = json_string_value(v);
		s.len = json_string_length(v);
		if ((rc = shm_instances_foreach(shm, &s, now_ms, st__lease_add, l)) != 0)
			break;
	}
	return rc;
}

static void st__leases_render(buf_t *b, int mgr, const st_leases_t *l)
{
	shm_preserve_t p;
	const char *prev = NULL;

	shm_preserve_get(api_shm(), mgr, &p);
	json_put_raw(b, "{\"isSafe\":");
	json_put_bool(b, p.safe);
	json_put_raw(b, ",\"isSafeCheckEnabled\":");
	json_put_bool(b, p.enabled);
	json_put_raw(b, ",\"leaseCount\":");
	json_put_u64(b, l->n);
	json_put_raw(b, ",\"leaseUpdateCountLastTimeWindow\":");
	json_put_u64(b, p.window_count);
	json_put_raw(b, ",\"leaseUpdateMaxCount\":");
	json_put_u64(b, p.max_count);
	json_put_raw(b, ",\"leaseUpdateMaxCountLastUpdateTime\":");
	json_put_u64(b, p.max_count_updated_ms);
	json_put_raw(b, ",\"leases\":{");
	for (size_t i = 0; i < l->n; i++) {
		const st_lease_t *e = &l->v[i];
		if (prev == NULL || strcmp(prev, e->service) != 0) {
			json_put_raw(b, prev == NULL ? "" : "],");
			json_put_cstr(b, e->service);
			json_put_raw(b, ":[");
		} else {
			json_put_raw(b, ",");
		}
		st__put_lease(b, e);
		prev = e->service;
	}
	json_put_raw(b, prev == NULL ? "}" : "]}");
	json_put_raw(b, ",\"responseStatus\":" API_STATUS_SUCCESS "}");
}

/* GET ?appIds=a,b -> ["a","b"]. */
static json_t *st__app_ids(const http_request_t *req)
{
	char buf[8192];
	json_t *ids = json_array();
	char *save = NULL, *tok;

	if (ids == NULL || api_query_get(req, "appids", buf, sizeof(buf)) <= 0)
		return ids;
	for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
		if (*tok)
			json_array_append_new(ids, json_string(tok));
	return ids;
}

static void st__leases(const http_request_t *req, http_response_t *res, int mgr,
                       enum api_limit limit)
{
	st_leases_t l = {.legacy = mgr == SHM_MGR_LEGACY};
	json_t *root, *ids;
	int rc;

	if (st__body(req, res, &root) < 0)
		return;
	buf_reset(&res->body);
	if (api_rate_limited(limit, clock_wall_ms())) {
		json_put_raw(&res->body,
		             "{\"isSafe\":false,\"isSafeCheckEnabled\":false,"
		             "\"leaseCount\":0,\"leaseUpdateCountLastTimeWindow\":0,"
		             "\"leaseUpdateMaxCount\":0,\"leaseUpdateMaxCountLastUpdateTime\":0,"
		             "\"leases\":null,\"responseStatus\":" API_STATUS_RATE_LIMITED "}");
		metrics_fail(req);
		json_decref(root);
		return;
	}
	if (root != NULL) {
		ids = json_member(root, "serviceids");
		ids = json_is_array(ids) ? json_incref(ids) : json_array();
	} else {
		ids = st__app_ids(req);
	}
	rc = st__collect(&l, ids, clock_wall_ms());
	if (rc == 0 && l.rc < 0)
		rc = l.rc;
	if (rc < 0) {
		json_put_raw(&res->body,
		             "{\"isSafe\":false,\"isSafeCheckEnabled\":false,"
		             "\"leaseCount\":0,\"leaseUpdateCountLastTimeWindow\":0,"
		             "\"leaseUpdateMaxCount\":0,\"leaseUpdateMaxCountLastUpdateTime\":0,"
		             "\"leases\":null,\"responseStatus\":");
		api_put_fail(&res->body, API_INTERNAL_ERROR, strerror(-rc));
		json_put_raw(&res->body, "}");
		metrics_fail(req);
	} else {
		if (l.n > 1)
			qsort(l.v, l.n, sizeof(*l.v), st__lease_cmp);
		st__leases_render(&res->body, mgr, &l);
	}
	for (size_t i = 0; i < l.n; i++) {
		free(l.v[i].service);
		free(l.v[i].display);
	}
	free(l.v);
	json_decref(ids);
	json_decref(root);
}

void api_status_leases(const http_request_t *req, http_response_t *res)
{
	st__leases(req, res, SHM_MGR_NORMAL, API_LIMIT_GET_LEASES);
}

void api_status_legacy_leases(const http_request_t *req, http_response_t *res)
{
	st__leases(req, res, SHM_MGR_LEGACY, API_LIMIT_GET_LEGACY_LEASES);
}

/* ---- config.json / deployment.json ------------------------------------------------------ */

typedef struct {
	const char *key;
	char value[CONFIG_STR + 32];
} st_prop_t;

#define ST_MAX_PROPS (48 + CONFIG_MAX_PEERS)

static int st__prop_cmp(const void *a, const void *b)
{
	return strcmp(((const st_prop_t *)a)->key, ((const st_prop_t *)b)->key);
}

static size_t st__props(const config_t *c, st_prop_t *p)
{
	static char peer_keys[CONFIG_MAX_PEERS][32];
	size_t n = 0;

#define PS(k, v) (p[n].key = (k), snprintf(p[n].value, sizeof(p[n].value), "%s", (v)), n++)
#define PU(k, v)                                                                                   \
	(p[n].key = (k),                                                                           \
	 snprintf(p[n].value, sizeof(p[n].value), "%llu", (unsigned long long)(v)), n++)
#define PB(k, v) PS(k, (v) ? "true" : "false")
	PS("node.name", c->name);
	PS("node.region", c->region);
	PS("node.zone", c->zone);
	PS("node.listen", c->listen);
	PU("node.workers", c->workers);
	PS("node.data_dir", c->data_dir);
	PB("node.allow_registry_from_other_zone", c->allow_registry_from_other_zone);
	PB("node.allow_discovery_from_other_zone", c->allow_discovery_from_other_zone);
	PS("registry.shm_name", c->shm_name);
	PU("registry.max_instances", c->max_instances);
	PU("registry.max_services", c->max_services);
	PU("registry.changelog_size", c->changelog_size);
	PU("registry.lease_ttl_ms", c->lease_ttl_ms);
	PU("registry.legacy_lease_ttl_ms", c->legacy_lease_ttl_ms);
	PU("registry.reap_interval_ms", c->reap_interval_ms);
	PB("registry.self_preservation", c->self_preservation);
	PU("registry.preserve_window_ms", c->preserve_window_ms);
	PU("registry.legacy_preserve_window_ms", c->legacy_preserve_window_ms);
	PU("http.max_header_bytes", c->max_header_bytes);
	PU("http.max_body_bytes", c->max_body_bytes);
	PU("http.idle_timeout_ms", c->idle_timeout_ms);
	PU("http.max_connections", c->max_connections);
	PU("websocket.session_ttl_ms", c->ws_session_ttl_ms);
	PU("websocket.max_message_bytes", c->ws_max_message_bytes);
	PU("websocket.max_output_bytes", c->ws_max_output_bytes);
	PS("log.file", c->log_file);
	PS("log.level", c->log_level);
	PS("cluster.listen", c->cluster_listen);
	PU("cluster.bootstrap_timeout_ms", c->bootstrap_timeout_ms);
	PU("cluster.digest_interval_ms", c->digest_interval_ms);
	PB("cluster.encrypt", c->cluster_encrypt);
	/* cluster.key is a secret: never shown. */
	for (int i = 0; i < c->npeers && i < CONFIG_MAX_PEERS; i++) {
		snprintf(peer_keys[i], sizeof(peer_keys[i]), "cluster.peer.%d", i + 1);
		p[n].key = peer_keys[i];
		snprintf(p[n].value, sizeof(p[n].value), "%.60s %.60s %.120s", c->peers[i].name,
		         c->peers[i].zone, c->peers[i].url);
		n++;
	}
#undef PS
#undef PU
#undef PB
	qsort(p, n, sizeof(*p), st__prop_cmp);
	return n;
}

static void st__put_props(buf_t *b, const st_prop_t *p, size_t n)
{
	json_put_raw(b, "{");
	for (size_t i = 0; i < n; i++) {
		json_put_raw(b, i ? "," : "");
		json_put_cstr(b, p[i].key);
		json_put_raw(b, ":");
		json_put_cstr(b, p[i].value);
	}
	json_put_raw(b, "}");
}

static void st__put_sources(buf_t *b)
{
	const char *path = api_cfg()->path;

	json_put_raw(b, "{");
	json_put_cstr(b, path[0] ? path : "built-in defaults");
	json_put_raw(b, ":0}");
}

void api_status_config(const http_request_t *req, http_response_t *res)
{
	static st_prop_t props[ST_MAX_PROPS];
	json_t *root;
	size_t n;

	if (st__body(req, res, &root) < 0)
		return;
	json_decref(root);
	buf_reset(&res->body);
	if (api_rate_limited(API_LIMIT_GET_CONFIG, clock_wall_ms())) {
		json_put_raw(&res->body,
		             "{\"properties\":null,\"responseStatus\":" API_STATUS_RATE_LIMITED
		             ",\"sources\":null}");
		metrics_fail(req);
		return;
	}
	n = st__props(api_cfg(), props);
	json_put_raw(&res->body, "{\"properties\":");
	st__put_props(&res->body, props, n);
	json_put_raw(&res->body, ",\"responseStatus\":" API_STATUS_SUCCESS ",\"sources\":");
	st__put_sources(&res->body);
	json_put_raw(&res->body, "}");
}

void api_status_deployment(const http_request_t *req, http_response_t *res)
{
	const config_t *cfg = api_cfg();
	st_prop_t props[4];
	char host[256] = "", ip[CONFIG_STR] = "", url_host[CONFIG_STR];
	const char *self = api_self_url();
	int port = 0;
	json_t *root;

	if (st__body(req, res, &root) < 0)
		return;
	json_decref(root);
	buf_reset(&res->body);
	if (api_rate_limited(API_LIMIT_GET_DEPLOYMENT, clock_wall_ms())) {
		json_put_raw(&res->body,
		             "{\"appId\":null,\"ip\":null,\"machineName\":null,\"path\":null,"
		             "\"port\":0,\"properties\":null,\"protocol\":null,\"regionId\":null,"
		             "\"responseStatus\":" API_STATUS_RATE_LIMITED
		             ",\"sources\":null,\"zoneId\":null}");
		metrics_fail(req);
		return;
	}
	gethostname(host, sizeof(host) - 1);
	if (sscanf(self, "http://%255[^:]:%d", url_host, &port) == 2)
		snprintf(ip, sizeof(ip), "%s", url_host);
	props[0].key = "app.id";
	snprintf(props[0].value, sizeof(props[0].value), "artemis");
	props[1].key = "app.port";
	snprintf(props[1].value, sizeof(props[1].value), "%d", port);
	props[2].key = "region.id";
	snprintf(props[2].value, sizeof(props[2].value), "%s", cfg->region);
	props[3].key = "zone.id";
	snprintf(props[3].value, sizeof(props[3].value), "%s", cfg->zone);
	json_put_raw(&res->body, "{\"appId\":\"artemis\",\"ip\":");
	json_put_cstr(&res->body, ip);
	json_put_raw(&res->body, ",\"machineName\":");
	json_put_cstr(&res->body, host);
	json_put_raw(&res->body, ",\"path\":null,\"port\":");
	json_put_i64(&res->body, port);
	json_put_raw(&res->body, ",\"properties\":");
	st__put_props(&res->body, props, 4);
	json_put_raw(&res->body, ",\"protocol\":\"http\",\"regionId\":");
	json_put_cstr(&res->body, cfg->region);
	json_put_raw(&res->body, ",\"responseStatus\":" API_STATUS_SUCCESS ",\"sources\":");
	st__put_sources(&res->body);
	json_put_raw(&res->body, ",\"zoneId\":");
	json_put_cstr(&res->body, cfg->zone);
	json_put_raw(&res->body, "}");
}

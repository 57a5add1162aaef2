/*
 * api_cluster.c - /artemis/api/cluster/up-{registry,discovery}-nodes.json
 * (API.md §2.4), POST {regionId, zoneId} or GET with the same parameters.
 *
 * Java lists every configured node whose last known status is registry-
 * (discovery-) capable and that either allows the other zones or sits in
 * the requested zone (a case-sensitive comparison of regionId and zoneId).
 * Peer status comes from the region (the replicator writes it); a peer's
 * own allow-from-other-zone flag is not exchanged, so this node's is used
 * (one cluster, one configuration).  See docs/API-NOTES.md.
 */
#include <string.h>

#include "artemis/clock.h"

#include "api.h"
#include "artemis/codec.h"
#include "metrics.h"

/* Java's filter: the node allows the other zones, or its zone is the
 * request's (case-sensitive; every node shares this node's region). */
static bool cl__match(bool allow, const char *region, const char *zone, const char *node_zone)
{
	if (allow)
		return true;
	return region != NULL && zone != NULL && strcmp(region, api_cfg()->region) == 0 &&
	       strcmp(zone, node_zone) == 0;
}

static void cl__put_node(buf_t *b, int *listed, const char *url, const char *zone)
{
	json_put_raw(b, (*listed)++ ? "," : "{\"nodes\":[");
	json_put_raw(b, "{\"url\":");
	json_put_cstr(b, url);
	json_put_raw(b, ",\"zone\":{\"metadata\":null,\"regionId\":");
	json_put_cstr(b, api_cfg()->region);
	json_put_raw(b, ",\"zoneId\":");
	json_put_cstr(b, zone);
	json_put_raw(b, "}}");
}

static void cl__nodes(const http_request_t *req, http_response_t *res, bool registry)
{
	static shm_peer_t peers[SHM_MAX_NODES];
	const config_t *cfg = api_cfg();
	int n, listed = 0;
	char region_q[CONFIG_STR], zone_q[CONFIG_STR];
	const char *region = NULL, *zone = NULL;
	json_t *root = NULL;
	bool allow;

	if (req->method == HTTP_M_POST) {
		json_t *v;
		if (api_body_object(req, res, &root) < 0)
			return;
		v = json_member(root, "regionid");
		region = json_is_string(v) ? json_string_value(v) : NULL;
		v = json_member(root, "zoneid");
		zone = json_is_string(v) ? json_string_value(v) : NULL;
	} else {
		if (api_query_get(req, "regionid", region_q, sizeof(region_q)) >= 0)
			region = region_q;
		if (api_query_get(req, "zoneid", zone_q, sizeof(zone_q)) >= 0)
			zone = zone_q;
	}
	res->body.len = 0;
	if (api_rate_limited(registry ? API_LIMIT_UP_REGISTRY_NODES : API_LIMIT_UP_DISCOVERY_NODES,
	                     clock_wall_ms())) {
		json_put_raw(&res->body,
		             "{\"nodes\":null,\"responseStatus\":" API_STATUS_RATE_LIMITED "}");
		metrics_fail(req);
		goto out;
	}
	allow =
	    registry ? cfg->allow_registry_from_other_zone : cfg->allow_discovery_from_other_zone;
	if (api_node_up() && cl__match(allow, region, zone, cfg->zone))
		cl__put_node(&res->body, &listed, api_self_url(), cfg->zone);
	n = api_peers(peers, SHM_MAX_NODES);
	for (int i = 0; i < n; i++)
		if (peers[i].state == SHM_PEER_UP && cl__match(allow, region, zone, peers[i].zone))
			cl__put_node(&res->body, &listed, peers[i].url, peers[i].zone);
	if (listed == 0) {
		res->body.len = 0;
		json_put_raw(&res->body, "{\"nodes\":null,\"responseStatus\":");
		api_put_fail(&res->body, API_DATA_NOT_FOUND, "No available service nodes.");
		json_put_raw(&res->body, "}");
		metrics_fail(req);
		goto out;
	}
	json_put_raw(&res->body, "],\"responseStatus\":" API_STATUS_SUCCESS "}");
out:
	json_decref(root);
}

void api_cluster_up_registry_nodes(const http_request_t *req, http_response_t *res)
{
	cl__nodes(req, res, true);
}

void api_cluster_up_discovery_nodes(const http_request_t *req, http_response_t *res)
{
	cl__nodes(req, res, false);
}

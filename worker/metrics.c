/*
 * metrics.c - the API's counters and the /metrics exposition.
 *
 * Counters are kept in this process's slice of the region's per-process
 * counter array (shm_proc_counters): the transport reports every response
 * through api_observe() (requests, errors and a latency histogram per
 * endpoint), handlers report handled failures, management writes their
 * result (api_mgmt.c), the push follower the messages it wrote (ws_push.c),
 * and /metrics sums the array over every process (shm_proc_counters_sum)
 * so that any worker answers with the node's totals.  The layout of the
 * array below is this file's own; nothing else writes those entries.
 *
 * Labels stay bounded: endpoint is a route's name from api.c's table (or
 * "other"), kind and result of a management write come from fixed lists.
 *
 * Writers are single-threaded per process: a relaxed atomic add suffices
 * (readers in other processes may see a count one request late).
 */
#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "api.h"

/* Management writes by kind and result (metrics_mgmt_op). */
enum {
	MK_INSTANCE,
	MK_SERVER,
	MK_ZONE,
	MK_GROUP,
	MK_ROUTE_RULE,
	MK_CANARY,
	MK_AUDIT,
	MK_OTHER,
	MX_MGMT_KINDS
};
static const char *const metrics__mgmt_kind[MX_MGMT_KINDS] = {
    "instance", "server", "zone", "group", "route_rule", "canary", "audit", "other",
};

static const char *const metrics__mgmt_result[] = {
    "success",       API_BAD_REQUEST,  API_NO_PERMISSION, API_DATA_NOT_FOUND, API_INTERNAL_ERROR,
    API_UNAVAILABLE, API_RATE_LIMITED, API_UNAUTHORIZED,  API_CONFLICT,       "other",
};
enum { MX_MGMT_RESULTS = sizeof(metrics__mgmt_result) / sizeof(metrics__mgmt_result[0]) };

/* Layout of the per-process counter array.  The latency histogram has one
 * row of buckets per route (a route's index, aliases under their twin's)
 * plus a last row, MX_OTHER, for requests no route matched. */
enum {
	MX_REQ = 0,                             /* API_MAX_ROUTES: requests per route */
	MX_ERR = MX_REQ + API_MAX_ROUTES,       /* API_MAX_ROUTES: errors per route */
	MX_UNMATCHED = MX_ERR + API_MAX_ROUTES, /* requests for no route (404) */
	MX_RATE_LIMITED,
	MX_CACHE_HIT,
	MX_CACHE_MISS,
	MX_WS_SESSIONS, /* 2 gauges: enum metrics_ws_kind (ws.c) */
	MX_WS_SESSIONS_END = MX_WS_SESSIONS + 2,
	MX_PUSH_MESSAGES = MX_WS_SESSIONS_END, /* InstanceChange messages written (ws_push.c) */
	MX_MGMT,                               /* MX_MGMT_KINDS x MX_MGMT_RESULTS */
	MX_OTHER = API_MAX_ROUTES,             /* the histogram row of unmatched requests */
	MX_LAT_BUCKETS = 16,
	MX_LAT = MX_MGMT + MX_MGMT_KINDS * MX_MGMT_RESULTS,          /* (API_MAX_ROUTES + 1) rows */
	MX_LAT_SUM = MX_LAT + (API_MAX_ROUTES + 1) * MX_LAT_BUCKETS, /* per row, microseconds */
	MX_END = MX_LAT_SUM + API_MAX_ROUTES + 1
};
_Static_assert(MX_END <= SHM_PROC_COUNTERS, "metrics do not fit the counter array");

/* Upper bounds of the latency buckets, microseconds; the last is +Inf. */
static const uint64_t metrics__lat_le[MX_LAT_BUCKETS - 1] = {
    50,    100,   250,    500,    1000,   2500,    5000,    10000,
    25000, 50000, 100000, 250000, 500000, 1000000, 5000000,
};

static shm_t *metrics__shm;
static uint64_t *metrics__ctr;

static uint64_t *metrics__counters(void)
{
	shm_t *shm = api_shm();

	if (shm != metrics__shm) {
		metrics__shm = shm;
		metrics__ctr = shm ? shm_proc_counters(shm) : NULL;
	}
	return metrics__ctr;
}

static inline void metrics__inc(uint64_t *c, unsigned idx, uint64_t n)
{
	atomic_fetch_add_explicit((_Atomic uint64_t *)&c[idx], n, memory_order_relaxed);
}

static void metrics__add(unsigned idx, uint64_t n)
{
	uint64_t *c = metrics__counters();

	if (c != NULL)
		metrics__inc(c, idx, n);
}

void api_observe(const http_request_t *req, int status, uint64_t latency_us)
{
	int r = api_route_index(req->path, req->path_len);
	unsigned row = r < 0 ? MX_OTHER : (unsigned)r, b = 0;
	uint64_t *c = metrics__counters();

	if (c == NULL)
		return;
	if (r < 0) {
		metrics__inc(c, MX_UNMATCHED, 1);
	} else {
		metrics__inc(c, MX_REQ + row, 1);
		if (status >= 400)
			metrics__inc(c, MX_ERR + row, 1);
	}
	while (b < MX_LAT_BUCKETS - 1 && latency_us > metrics__lat_le[b])
		b++;
	metrics__inc(c, MX_LAT + row * MX_LAT_BUCKETS + b, 1);
	metrics__inc(c, MX_LAT_SUM + row, latency_us);
}

void metrics_fail(const http_request_t *req)
{
	int r = api_route_index(req->path, req->path_len);

	if (r >= 0)
		metrics__add(MX_ERR + (unsigned)r, 1);
}

void metrics_rate_limited(void)
{
	metrics__add(MX_RATE_LIMITED, 1);
}

void metrics_cache(bool hit)
{
	metrics__add(hit ? MX_CACHE_HIT : MX_CACHE_MISS, 1);
}

void metrics_push(uint32_t n)
{
	if (n > 0)
		metrics__add(MX_PUSH_MESSAGES, n);
}

/* The kind of a management write, from its route's name (api.c's table):
 * what it acts on.  Java's group/{operation} paths carry route rules too. */
static unsigned metrics__kind_of(const http_request_t *req)
{
	static const struct {
		const char *prefix;
		unsigned kind;
	} map[] = {
	    {"mgmt_operate_instance", MK_INSTANCE},
	    {"mgmt_rust_operate_instance", MK_INSTANCE},
	    {"mgmt_operate_server", MK_SERVER},
	    {"mgmt_rust_operate_server", MK_SERVER},
	    {"mgmt_operate_zone", MK_ZONE},
	    {"mgmt_zone", MK_ZONE},
	    {"mgmt_group", MK_GROUP},
	    {"routing_group", MK_GROUP},
	    {"routing_service", MK_GROUP},
	    {"routing_rule", MK_ROUTE_RULE},
	    {"canary", MK_CANARY},
	    {"mgmt_canary", MK_CANARY},
	    {"mgmt_audit", MK_AUDIT},
	};
	const char *name = api_route_name(api_route_index(req->path, req->path_len));
	const char *op;

	for (size_t i = 0; name != NULL && i < sizeof(map) / sizeof(map[0]); i++) {
		if (strncmp(name, map[i].prefix, strlen(map[i].prefix)) != 0)
			continue;
		if (map[i].kind == MK_GROUP && (op = api_param("operation")) != NULL &&
		    strstr(op, "route-rule") != NULL)
			return MK_ROUTE_RULE;
		return map[i].kind;
	}
	return MK_OTHER;
}

void metrics_mgmt_op(const http_request_t *req, const char *code)
{
	unsigned res = code == NULL ? 0 : MX_MGMT_RESULTS - 1;

	for (unsigned i = 1; code != NULL && i < MX_MGMT_RESULTS - 1; i++)
		if (strcmp(code, metrics__mgmt_result[i]) == 0)
			res = i;
	metrics__add(MX_MGMT + metrics__kind_of(req) * MX_MGMT_RESULTS + res, 1);
}

void metrics_ws_session(enum metrics_ws_kind kind, int delta)
{
	/* A decrement is an add of the two's complement: the sum over every
	 * process wraps back to the right count. */
	metrics__add(MX_WS_SESSIONS + (unsigned)kind, (uint64_t)(int64_t)delta);
}

void metrics_ws_reset(void)
{
	uint64_t *c = metrics__counters();

	for (unsigned i = MX_WS_SESSIONS; c != NULL && i < MX_WS_SESSIONS_END; i++)
		atomic_store_explicit((_Atomic uint64_t *)&c[i], 0, memory_order_relaxed);
}

void metrics_ws_totals(uint64_t *registry, uint64_t *discovery)
{
	static uint64_t sum[SHM_PROC_COUNTERS];

	*registry = *discovery = 0;
	if (api_shm() == NULL)
		return;
	shm_proc_counters_sum(api_shm(), sum);
	*registry = sum[MX_WS_SESSIONS + METRICS_WS_REGISTRY];
	*discovery = sum[MX_WS_SESSIONS + METRICS_WS_DISCOVERY];
}

/* ---- Exposition ---------------------------------------------------------- */

/* Appends go to a buf_t (util/buf.c): its error is sticky, so the
 * exposition is written freely and checked once, in metrics_render. */

static void metrics__one(buf_t *b, const char *name, const char *type, const char *help, uint64_t v)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
	           (unsigned long long)v);
}

static void metrics__registry(buf_t *b)
{
	shm_stats_t st;

	shm_stats(api_shm(), &st);
	metrics__one(b, "artemis_instances", "gauge", "Instances in the registry.", st.instances);
	metrics__one(b, "artemis_services", "gauge", "Services with instances.", st.services);
	metrics__one(b, "artemis_registers_total", "counter", "Successful registers.",
	             st.registers);
	metrics__one(b, "artemis_unregisters_total", "counter", "Unregisters.", st.unregisters);
	metrics__one(b, "artemis_renewals_total", "counter", "Successful heartbeats.", st.renewals);
	metrics__one(b, "artemis_renewals_failed_total", "counter",
	             "Heartbeats for unknown or expired instances.", st.renewals_failed);
	metrics__one(b, "artemis_evictions_total", "counter", "Expired leases removed.",
	             st.evictions);
	metrics__one(b, "artemis_removals_total", "counter", "Unregistered leases removed.",
	             st.removals);
	metrics__one(b, "artemis_repairs_total", "counter", "Interrupted writes repaired.",
	             st.repairs);
	metrics__one(b, "artemis_registry_version", "counter", "Global change version.",
	             st.version);
	metrics__one(b, "artemis_arena_used_bytes", "gauge", "Blob arena bytes in use.",
	             st.arena_used);
	metrics__one(b, "artemis_arena_size_bytes", "gauge", "Blob arena size.", st.arena_size);
	metrics__one(b, "artemis_capacity_instances", "gauge", "Instance capacity.",
	             st.max_instances);
}

static void metrics__preserve(buf_t *b)
{
	static const char *const mgr_name[SHM_MGR_COUNT] = {"instance", "legacy-instance"};
	shm_preserve_t p[SHM_MGR_COUNT];

	for (int m = 0; m < SHM_MGR_COUNT; m++)
		shm_preserve_get(api_shm(), m, &p[m]);
	buf_printf(b, "# HELP artemis_self_preservation_safe 1 when the lease manager "
	              "may expire leases.\n# TYPE artemis_self_preservation_safe gauge\n");
	for (int m = 0; m < SHM_MGR_COUNT; m++)
		buf_printf(b, "artemis_self_preservation_safe{manager=\"%s\"} %d\n", mgr_name[m],
		           p[m].safe ? 1 : 0);
	buf_printf(b, "# HELP artemis_self_preservation_enabled 1 when the safe "
	              "check is on.\n# TYPE artemis_self_preservation_enabled gauge\n");
	for (int m = 0; m < SHM_MGR_COUNT; m++)
		buf_printf(b, "artemis_self_preservation_enabled{manager=\"%s\"} %d\n", mgr_name[m],
		           p[m].enabled ? 1 : 0);
	buf_printf(b, "# HELP artemis_lease_renewals_window Renewals in the "
	              "current window, each instance at most once a second.\n"
	              "# TYPE artemis_lease_renewals_window gauge\n");
	for (int m = 0; m < SHM_MGR_COUNT; m++)
		buf_printf(b, "artemis_lease_renewals_window{manager=\"%s\"} %llu\n", mgr_name[m],
		           (unsigned long long)p[m].window_count);
	buf_printf(b, "# HELP artemis_lease_renewals_max Highest window count "
	              "seen.\n# TYPE artemis_lease_renewals_max gauge\n");
	for (int m = 0; m < SHM_MGR_COUNT; m++)
		buf_printf(b, "artemis_lease_renewals_max{manager=\"%s\"} %llu\n", mgr_name[m],
		           (unsigned long long)p[m].max_count);
}

/* One endpoint's histogram row, when it counted a request. */
static void metrics__latency_row(buf_t *b, const uint64_t *c, unsigned row, const char *name)
{
	const uint64_t *bk = c + MX_LAT + row * MX_LAT_BUCKETS;
	uint64_t cum = 0;

	for (int i = 0; i < MX_LAT_BUCKETS; i++)
		cum += bk[i];
	if (cum == 0)
		return;
	cum = 0;
	for (int i = 0; i < MX_LAT_BUCKETS - 1; i++) {
		cum += bk[i];
		buf_printf(b,
		           "artemis_http_request_duration_seconds_bucket{endpoint=\"%s\","
		           "le=\"%g\"} %llu\n",
		           name, (double)metrics__lat_le[i] / 1e6, (unsigned long long)cum);
	}
	cum += bk[MX_LAT_BUCKETS - 1];
	/* _count is the +Inf bucket: one snapshot, consistent however the
	 * counters move while they are read */
	buf_printf(
	    b,
	    "artemis_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %llu\n"
	    "artemis_http_request_duration_seconds_sum{endpoint=\"%s\"} %.6f\n"
	    "artemis_http_request_duration_seconds_count{endpoint=\"%s\"} %llu\n",
	    name, (unsigned long long)cum, name, (double)c[MX_LAT_SUM + row] / 1e6, name,
	    (unsigned long long)cum);
}

/* Request latency by endpoint: the route's name, "other" for unknown paths
 * (a bounded label set); endpoints that served nothing yet are left out. */
static void metrics__latency(buf_t *b, const uint64_t *c)
{
	buf_printf(b, "# HELP artemis_http_request_duration_seconds Request latency "
	              "by endpoint (\"other\": unknown paths).\n"
	              "# TYPE artemis_http_request_duration_seconds histogram\n");
	for (int r = 0; r < api_route_count(); r++)
		if (api_route_first(r))
			metrics__latency_row(b, c, (unsigned)r, api_route_name(r));
	metrics__latency_row(b, c, MX_OTHER, "other");
}

/* Management writes by kind and result: every kind's success always, a
 * failure once it happened. */
static void metrics__mgmt(buf_t *b, const uint64_t *c)
{
	buf_printf(b, "# HELP artemis_mgmt_operations_total Management writes by what "
	              "they act on and their result (success or the errorCode).\n"
	              "# TYPE artemis_mgmt_operations_total counter\n");
	for (unsigned k = 0; k < MX_MGMT_KINDS; k++)
		for (unsigned r = 0; r < MX_MGMT_RESULTS; r++) {
			uint64_t v = c[MX_MGMT + k * MX_MGMT_RESULTS + r];
			if (r == 0 || v > 0)
				buf_printf(b,
				           "artemis_mgmt_operations_total{kind=\"%s\","
				           "result=\"%s\"} %llu\n",
				           metrics__mgmt_kind[k], metrics__mgmt_result[r],
				           (unsigned long long)v);
		}
}

static void metrics__http(buf_t *b, const uint64_t *c)
{
	buf_printf(b, "# HELP artemis_http_requests_total HTTP requests by endpoint.\n"
	              "# TYPE artemis_http_requests_total counter\n");
	for (int r = 0; r < api_route_count(); r++)
		if (api_route_first(r))
			buf_printf(b, "artemis_http_requests_total{endpoint=\"%s\"} %llu\n",
			           api_route_name(r), (unsigned long long)c[MX_REQ + r]);
	buf_printf(b, "# HELP artemis_http_errors_total Failed requests by "
	              "endpoint (HTTP >= 400 or a fail responseStatus).\n"
	              "# TYPE artemis_http_errors_total counter\n");
	for (int r = 0; r < api_route_count(); r++)
		if (api_route_first(r))
			buf_printf(b, "artemis_http_errors_total{endpoint=\"%s\"} %llu\n",
			           api_route_name(r), (unsigned long long)c[MX_ERR + r]);
	metrics__one(b, "artemis_http_unmatched_total", "counter", "Requests for unknown paths.",
	             c[MX_UNMATCHED]);
	metrics__one(b, "artemis_rate_limited_total", "counter",
	             "Requests refused by a rate limiter.", c[MX_RATE_LIMITED]);
	buf_printf(b,
	           "# HELP artemis_websocket_sessions Open WebSocket sessions "
	           "(all-instance-change not counted).\n"
	           "# TYPE artemis_websocket_sessions gauge\n"
	           "artemis_websocket_sessions{endpoint=\"registry\"} %llu\n"
	           "artemis_websocket_sessions{endpoint=\"discovery\"} %llu\n",
	           (unsigned long long)c[MX_WS_SESSIONS + METRICS_WS_REGISTRY],
	           (unsigned long long)c[MX_WS_SESSIONS + METRICS_WS_DISCOVERY]);
	metrics__one(b, "artemis_response_cache_hits_total", "counter",
	             "Service responses served from a worker cache.", c[MX_CACHE_HIT]);
	metrics__one(b, "artemis_response_cache_misses_total", "counter",
	             "Service responses built from the registry.", c[MX_CACHE_MISS]);
	metrics__latency(b, c);
	metrics__one(b, "artemis_push_messages_total", "counter",
	             "InstanceChange messages written to push sessions.", c[MX_PUSH_MESSAGES]);
	metrics__mgmt(b, c);
}

/* Each peer the replicator knows: its state, last contact, our change-log
 * version it acknowledged, and the replication lag measured to it. */
static void metrics__peers(buf_t *b)
{
	static const char *const state[] = {"unknown", "starting", "up", "down"};
	shm_peer_t p;

	buf_printf(b, "# HELP artemis_peer_up Peer replication connection is up.\n"
	              "# TYPE artemis_peer_up gauge\n"
	              "# HELP artemis_peer_acked_version This node's change-log version "
	              "the peer acknowledged.\n# TYPE artemis_peer_acked_version gauge\n"
	              "# HELP artemis_peer_lag_seconds Replication lag measured to the "
	              "peer.\n# TYPE artemis_peer_lag_seconds gauge\n");
	for (int id = 1; id < SHM_MAX_NODES; id++) {
		if (shm_peer_get(api_shm(), id, &p) != 0)
			continue;
		const char *st = p.state < 4 ? state[p.state] : "unknown";
		buf_printf(b,
		           "artemis_peer_up{peer=\"%s\",state=\"%s\"} %d\n"
		           "artemis_peer_acked_version{peer=\"%s\"} %llu\n"
		           "artemis_peer_lag_seconds{peer=\"%s\"} %.3f\n",
		           p.name, st, p.state == SHM_PEER_UP, p.name,
		           (unsigned long long)p.acked_version, p.name, (double)p.lag_ms / 1e3);
	}
}

int metrics_render(buf_t *out)
{
	static uint64_t sum[SHM_PROC_COUNTERS];

	shm_proc_counters_sum(api_shm(), sum);
	metrics__registry(out);
	metrics__preserve(out);
	metrics__http(out, sum);
	metrics__peers(out);
	return buf_error(out);
}

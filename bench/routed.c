/*
 * routed.c - artemis-bench routed: what routing costs a discovery call
 * (docs/BENCHMARKS.md "Routing").
 *
 * Registers N instances over S services (unless --no-setup), then on the
 * first target gives service 0 ten groups, binds every instance of the
 * service to every group (so a routed answer lists as many instances as an
 * unrouted one: the comparison is of the routing, not of the answer's
 * size), and publishes a weighted-round-robin rule over the ten groups
 * (weights 1..10).  Then, in one run of alternating phases of about a
 * second (plain, routed, plain, ...: every connection), the Rust path
 * /api/discovery/service.json is loaded flat out for service 1 (plain: no
 * routing data) or service 0 (routed: every call takes the rule's counter
 * and picks a group).  The report adds the routed calls' cost: the plain
 * phases' requests/s over the routed phases', minus one.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "bench.h"
#include "workload.h"

#define ROUTED_GROUPS 10

/* One blocking request (Connection: close): the status, and the body's
 * "data" (a new reference) when it is JSON. */
static int call(const bench_target_t *t, const char *method, const char *path, const char *body,
                json_t **data)
{
	bbuf_t req = {0}, res = {0};
	char chunk[65536];
	int fd = socket(t->addr.ss_family, SOCK_STREAM, 0), status = -1;
	if (data)
		*data = NULL;
	if (fd < 0 || connect(fd, (const struct sockaddr *)&t->addr, t->addrlen) < 0)
		goto out;
	bbuf_printf(&req,
	            "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
	            "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	            method, path, t->hostport, body ? strlen(body) : 0, body ? body : "");
	for (size_t off = 0; off < req.len;) {
		ssize_t n = write(fd, req.p + off, req.len - off);
		if (n <= 0)
			goto out;
		off += (size_t)n;
	}
	for (ssize_t n; (n = read(fd, chunk, sizeof(chunk))) > 0;)
		bbuf_append(&res, chunk, (size_t)n);
	bbuf_append(&res, "", 1);
	if (res.len < 12 || sscanf(res.p, "HTTP/1.1 %d", &status) != 1)
		goto out;
	const char *b = strstr(res.p, "\r\n\r\n");
	json_t *root = b ? json_loads(b + 4, 0, NULL) : NULL;
	if (data && root)
		*data = json_incref(json_object_get(root, "data"));
	json_decref(root);
out:
	if (fd >= 0)
		close(fd);
	bbuf_free(&req);
	bbuf_free(&res);
	return status;
}

static int must(const char *what, int status, int want)
{
	if (status == want)
		return 0;
	fprintf(stderr, "artemis-bench routed: setup: %s answered HTTP %d (want %d)\n", what,
	        status, want);
	return 1;
}

/* Ten groups of service 0, every instance of it in each, a published rule. */
static int setup_routing(const wl_opts_t *o)
{
	const bench_target_t *t = &o->targets[0];
	char svc[96], route[128], path[256], id[96];
	int64_t gid[ROUTED_GROUPS];
	bbuf_t b = {0};
	int rc = 0;
	wl_service_id(o, 0, svc, sizeof(svc));
	snprintf(route, sizeof(route), "bench-%s", svc);
	for (int k = 0; k < ROUTED_GROUPS && rc == 0; k++) {
		json_t *g = NULL;
		b.len = 0;
		bbuf_printf(&b,
		            "{\"serviceId\":\"%s\",\"regionId\":\"%s\",\"zoneId\":\"%s\","
		            "\"name\":\"rg%d\",\"operatorId\":\"bench\"}",
		            svc, o->region, o->zone, k);
		bbuf_append(&b, "", 1);
		rc = must("a group", call(t, "POST", "/api/routing/groups", b.p, &g), 201);
		gid[k] = (int64_t)json_integer_value(json_object_get(g, "groupId"));
		json_decref(g);
		/* every instance of the service, in this group */
		b.len = 0;
		bbuf_puts(&b, "{\"operatorId\":\"bench\",\"instances\":[");
		for (uint32_t i = 0, n = 0; i < o->instances; i += o->services, n++) {
			wl_instance_id(o, i, 0, id, sizeof(id));
			bbuf_printf(&b, "%s{\"groupId\":%lld,\"instanceId\":\"%s\"}", n ? "," : "",
			            (long long)gid[k], id);
		}
		bbuf_puts(&b, "]}");
		bbuf_append(&b, "", 1);
		snprintf(path, sizeof(path), "/api/routing/services/%s/instances", svc);
		if (rc == 0)
			rc = must("the group's instances", call(t, "POST", path, b.p, NULL), 201);
	}
	b.len = 0;
	bbuf_printf(&b,
	            "{\"routeId\":\"%s\",\"serviceId\":\"%s\",\"name\":\"%s\","
	            "\"strategy\":\"weighted-round-robin\",\"operatorId\":\"bench\"}",
	            route, svc, route);
	bbuf_append(&b, "", 1);
	if (rc == 0)
		rc = must("the rule", call(t, "POST", "/api/routing/rules", b.p, NULL), 201);
	snprintf(path, sizeof(path), "/api/routing/rules/%s/groups", route);
	for (int k = 0; k < ROUTED_GROUPS && rc == 0; k++) {
		b.len = 0;
		bbuf_printf(&b, "{\"groupId\":%lld,\"weight\":%d,\"operatorId\":\"bench\"}",
		            (long long)gid[k], k + 1);
		bbuf_append(&b, "", 1);
		rc = must("a rule group", call(t, "POST", path, b.p, NULL), 201);
	}
	snprintf(path, sizeof(path), "/api/routing/rules/%s/publish", route);
	if (rc == 0)
		rc = must("the publish", call(t, "POST", path, "{\"operatorId\":\"bench\"}", NULL),
		          200);
	bbuf_free(&b);
	fprintf(stderr,
	        "artemis-bench routed: setup: service %s: %d groups of %u instances each, rule %s "
	        "published\n",
	        svc, ROUTED_GROUPS, o->instances / o->services, route);
	return rc;
}

typedef struct {
	const wl_opts_t *o;
	char body[512];
	uint32_t count;
} svc_ctx_t;

static int service_body(bench_class_t *c, unsigned t, bbuf_t *b, bench_req_t *r)
{
	svc_ctx_t *x = c->ctx;
	(void)t;
	bbuf_puts(b, x->body);
	r->instances = x->count;
	return 1;
}

static void usage_routed(FILE *f)
{
	fprintf(f, "usage: artemis-bench routed [options]\n"
	           "  Registers N instances over S services (unless --no-setup), gives service 0\n"
	           "  a published weighted-round-robin rule of 10 groups (each holding every\n"
	           "  instance of the service), then loads POST /api/discovery/service.json in\n"
	           "  alternating phases of a second (plain: service 1, without routing data;\n"
	           "  routed: service 0) and reports the routed calls' cost.\n\n");
	wl_usage_common(f);
}

static void init_class(bench_class_t *c, svc_ctx_t *x, const wl_opts_t *o, const char *name,
                       uint32_t s)
{
	char svc[96];
	wl_service_id(o, s, svc, sizeof(svc));
	x->o = o;
	x->count = o->instances / o->services;
	snprintf(
	    x->body, sizeof(x->body),
	    "{\"discoveryConfig\":{\"serviceId\":\"%s\",\"regionId\":\"%s\",\"zoneId\":\"%s\"}}",
	    svc, o->region, o->zone);
	c->name = name;
	c->path = "/api/discovery/service.json";
	c->body = service_body;
	c->ctx = x;
	c->connections = o->connections;
	c->pipeline = o->pipeline;
	c->rate = o->rate;
	c->gzip = o->gzip;
}

/* Phases of about a second, alternating plain and routed: load from
 * outside the benchmark (other processes on the machine) falls on both
 * alike. */
#define PHASE_S 1.0

int bench_routed_main(int argc, char **argv)
{
	wl_opts_t o;
	memset(&o, 0, sizeof(o));
	o.mode = "routed";
	o.connections = 32;
	o.pipeline = 1;
	o.duration = 20;
	o.timeout = 5;
	o.instances = 10000;
	o.services = 100;
	o.batch = 1;
	o.setup_batch = 100;
	o.setup = true;
	strcpy(o.region, "us-east");
	strcpy(o.zone, "zone-1");
	int rc = wl_parse(&o, argc, argv, usage_routed);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (o.services < 2) {
		fprintf(stderr, "artemis-bench routed: needs at least 2 services (-s)\n");
		return 2;
	}
	if (o.setup && (wl_register_all(&o) || setup_routing(&o)))
		return 1;
	static bench_class_t phase, sum[2];
	static svc_ctx_t ctx[2];
	static const char *const names[2] = {"plain", "routed"};
	bench_run_t total = {.targets = o.targets, .ntargets = o.ntargets, .ctx = &o};
	int phases = (int)(o.duration / PHASE_S);
	phases = phases < 2 ? 2 : phases + phases % 2;
	for (int k = 0; k < 2; k++) {
		init_class(&sum[k], &ctx[k], &o, names[k], k ? 0 : 1);
		hist_init(&sum[k].stats.lat);
	}
	for (int p = 0; p < phases; p++) {
		int k = p % 2;
		bench_class_t *one = &phase;
		memset(&phase, 0, sizeof(phase));
		init_class(&phase, &ctx[k], &o, names[k], k ? 0 : 1);
		bench_run_t run = {.targets = o.targets,
		                   .ntargets = o.ntargets,
		                   .duration = o.duration / phases,
		                   .timeout = o.timeout,
		                   .ctx = &o};
		if ((rc = bench_run(&run, &one, 1)) != 0 || run.unreachable) {
			fprintf(stderr, "artemis-bench routed: %s\n",
			        rc ? strerror(-rc) : "no connection to the node");
			return 1;
		}
		bench_stats_merge(&sum[k].stats, &phase.stats);
		sum[k].elapsed += phase.elapsed;
		total.elapsed += run.elapsed;
		total.cpu_ns += run.cpu_ns;
		total.runq_wait_ns += run.runq_wait_ns;
	}
	double pr = sum[0].elapsed > 0 ? (double)sum[0].stats.ok / sum[0].elapsed : 0;
	double rr = sum[1].elapsed > 0 ? (double)sum[1].stats.ok / sum[1].elapsed : 0;
	double cost = rr > 0 ? (pr / rr - 1) * 100 : 0.0;
	char extra[128];
	snprintf(extra, sizeof(extra), "\"phases\":%d,\"routed_cost_pct\":%.1f", phases, cost);
	bench_class_t *cls[2] = {&sum[0], &sum[1]};
	wl_report(&o, &total, cls, 2, o.json ? extra : NULL);
	if (!o.json)
		printf(
		    "routing's cost: %.1f requests/s plain, %.1f routed (%d alternating phases): "
		    "%+.1f %% per call\n",
		    pr, rr, phases, cost);
	return bench_stats_errors(&sum[0].stats) || bench_stats_errors(&sum[1].stats) ? 1 : 0;
}

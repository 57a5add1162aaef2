/*
 * workload.c - the command line, synthetic instances, request bodies,
 * registration phase and report shared by the HTTP modes (workload.h).
 */
#include "workload.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------ command line --- */

void wl_usage_common(FILE *f)
{
	fprintf(
	    f, "common options:\n"
	       "  -t, --target HOST:PORT   node to load; repeat (or comma-separate) for several\n"
	       "                           nodes: connections are spread round-robin and each\n"
	       "                           instance sticks to node (i %% nodes)  [127.0.0.1:8080]\n"
	       "  -c, --connections N      keep-alive connections of the main traffic  [32]\n"
	       "  -p, --pipeline D         requests in flight per connection  [1]\n"
	       "  -r, --rate R             requests/s over all connections; 0 = flat out  [0]\n"
	       "  -d, --duration S         seconds of measured load  [10]\n"
	       "      --timeout S          a request unanswered this long is a timeout  [5]\n"
	       "  -n, --instances N        synthetic instances  [10000]\n"
	       "  -s, --services S         services they are spread over (instance i is in\n"
	       "                           service i %% S)  [100]\n"
	       "  -b, --batch B            instances (or services, for lookup) per request  [1]\n"
	       "  -m, --metadata M         bytes of each instance's metadata map  [0]\n"
	       "      --setup-batch B      batch size of the registration before the load  [100]\n"
	       "      --no-setup           the instances are registered already\n"
	       "      --prefix P           instance/service id prefix  [b<pid>]\n"
	       "      --region R, --zone Z the instances' region and zone  [us-east, zone-1]\n"
	       "      --gzip               gzip request bodies (Content-Encoding: gzip), as Java\n"
	       "                           clients do\n"
	       "      --seed X             random seed  [pid]\n"
	       "      --json               one JSON line instead of the table\n"
	       "      --label L            a label copied into the JSON line\n"
	       "      --percentiles FILE   write 'percentile latency_us' lines of the whole run's\n"
	       "                           latency distribution (for gnuplot)\n"
	       "\n"
	       "Latency runs from when a request was due (with --rate: its slot in the schedule,\n"
	       "so stalls are charged; flat out: when it was written) to its complete response.\n"
	       "Errors by kind: connect, timeout, closed (reset or EOF with requests in flight),\n"
	       "parse, HTTP status other than 200, responseStatus.errorCode other than success.\n");
}

static int add_targets(wl_opts_t *o, const char *spec)
{
	char tmp[1024];
	snprintf(tmp, sizeof(tmp), "%s", spec);
	for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (o->ntargets == BENCH_MAX_TARGETS) {
			fprintf(stderr, "artemis-bench: at most %d targets\n", BENCH_MAX_TARGETS);
			return -1;
		}
		if (bench_target_parse(t, &o->targets[o->ntargets])) {
			fprintf(stderr, "artemis-bench: bad target '%s' (HOST:PORT)\n", t);
			return -1;
		}
		o->ntargets++;
	}
	return 0;
}

enum {
	O_TIMEOUT = 256,
	O_SETUP_BATCH,
	O_NO_SETUP,
	O_PREFIX,
	O_REGION,
	O_ZONE,
	O_GZIP,
	O_SEED,
	O_JSON,
	O_LABEL,
	O_PCT,
	O_INTERVAL,
	O_CHURN,
	O_LOOKUP_RATE,
	O_PROGRESS,
	O_SUBSCRIBERS,
	O_WS_PATH
};

int wl_parse(wl_opts_t *o, int argc, char **argv, void (*usage)(FILE *f))
{
	static const struct option opts[] = {
	    {"target", required_argument, NULL, 't'},
	    {"connections", required_argument, NULL, 'c'},
	    {"pipeline", required_argument, NULL, 'p'},
	    {"rate", required_argument, NULL, 'r'},
	    {"duration", required_argument, NULL, 'd'},
	    {"instances", required_argument, NULL, 'n'},
	    {"services", required_argument, NULL, 's'},
	    {"batch", required_argument, NULL, 'b'},
	    {"metadata", required_argument, NULL, 'm'},
	    {"help", no_argument, NULL, 'h'},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"setup-batch", required_argument, NULL, O_SETUP_BATCH},
	    {"no-setup", no_argument, NULL, O_NO_SETUP},
	    {"prefix", required_argument, NULL, O_PREFIX},
	    {"region", required_argument, NULL, O_REGION},
	    {"zone", required_argument, NULL, O_ZONE},
	    {"gzip", no_argument, NULL, O_GZIP},
	    {"seed", required_argument, NULL, O_SEED},
	    {"json", no_argument, NULL, O_JSON},
	    {"label", required_argument, NULL, O_LABEL},
	    {"percentiles", required_argument, NULL, O_PCT},
	    {"interval", required_argument, NULL, O_INTERVAL},
	    {"churn", required_argument, NULL, O_CHURN},
	    {"lookup-rate", required_argument, NULL, O_LOOKUP_RATE},
	    {"progress", required_argument, NULL, O_PROGRESS},
	    {"subscribers", required_argument, NULL, O_SUBSCRIBERS},
	    {"ws-path", required_argument, NULL, O_WS_PATH},
	    {NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "t:c:p:r:d:n:s:b:m:h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (add_targets(o, optarg))
				return 2;
			break;
		case 'c':
			o->connections = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'p':
			o->pipeline = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			o->rate = atof(optarg);
			break;
		case 'd':
			o->duration = atof(optarg);
			break;
		case 'n':
			o->instances = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 's':
			o->services = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'b':
			o->batch = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'm':
			o->metadata = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 1;
		case O_TIMEOUT:
			o->timeout = atof(optarg);
			break;
		case O_SETUP_BATCH:
			o->setup_batch = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case O_NO_SETUP:
			o->setup = false;
			break;
		case O_PREFIX:
			snprintf(o->prefix, sizeof(o->prefix), "%s", optarg);
			break;
		case O_REGION:
			snprintf(o->region, sizeof(o->region), "%s", optarg);
			break;
		case O_ZONE:
			snprintf(o->zone, sizeof(o->zone), "%s", optarg);
			break;
		case O_GZIP:
			o->gzip = true;
			break;
		case O_SEED:
			o->seed = strtoull(optarg, NULL, 0);
			break;
		case O_JSON:
			o->json = true;
			break;
		case O_LABEL:
			o->label = optarg;
			break;
		case O_PCT:
			o->percentiles_file = optarg;
			break;
		case O_INTERVAL:
			o->interval_ms = atof(optarg);
			break;
		case O_CHURN:
			o->churn_pct = atof(optarg);
			break;
		case O_LOOKUP_RATE:
			o->lookup_rate = atof(optarg);
			break;
		case O_PROGRESS:
			o->progress = atof(optarg);
			break;
		case O_SUBSCRIBERS:
			o->subscribers = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case O_WS_PATH:
			o->ws_path = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "artemis-bench %s: unexpected argument '%s'\n", o->mode,
		        argv[optind]);
		return 2;
	}
	if (!o->ntargets && add_targets(o, "127.0.0.1:8080"))
		return 2;
	if (!o->prefix[0])
		snprintf(o->prefix, sizeof(o->prefix), "b%d", (int)getpid());
	if (!o->seed)
		o->seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	if (!o->connections || !o->pipeline || !o->instances || !o->services || !o->batch ||
	    !o->setup_batch || o->services > o->instances || o->rate < 0 || o->duration < 0 ||
	    o->metadata > 65536 || o->batch > 100000) {
		fprintf(stderr, "artemis-bench %s: an option is out of range (see --help)\n",
		        o->mode);
		return 2;
	}
	return 0;
}

/* ------------------------------------------------------- instances ----- */

uint64_t wl_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

void wl_instance_id(const wl_opts_t *o, uint32_t i, uint32_t gen, char *out, size_t n)
{
	if (gen)
		snprintf(out, n, "%s-%u.%u", o->prefix, i, gen);
	else
		snprintf(out, n, "%s-%u", o->prefix, i);
}

void wl_service_id(const wl_opts_t *o, uint32_t s, char *out, size_t n)
{
	snprintf(out, n, "%s-svc-%u", o->prefix, s);
}

uint32_t wl_owned(const wl_opts_t *o, unsigned t)
{
	return t < o->instances % o->ntargets ? o->instances / o->ntargets + 1
	                                      : o->instances / o->ntargets;
}

/* Appenders without printf: bodies are generated at the rate the server
 * answers, so the load generator must stay cheap. */
static char *put_mem(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

#define PUT_LIT(p, lit) put_mem((p), (lit), sizeof(lit) - 1)

static char *put_u32(char *p, uint32_t v)
{
	char tmp[10];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static char *put_str(char *p, const char *s)
{
	return put_mem(p, s, strlen(s));
}

void wl_instance_json(const wl_opts_t *o, bbuf_t *b, uint32_t i, uint32_t gen, bool full)
{
	bbuf_reserve(b, 512 + (full ? o->metadata : 0));
	char *p = b->p + b->len;
	p = PUT_LIT(p, "{\"regionId\":\"");
	p = put_str(p, o->region);
	p = PUT_LIT(p, "\",\"zoneId\":\"");
	p = put_str(p, o->zone);
	p = PUT_LIT(p, "\",\"serviceId\":\"");
	p = put_str(p, o->prefix);
	p = PUT_LIT(p, "-svc-");
	p = put_u32(p, i % o->services);
	p = PUT_LIT(p, "\",\"instanceId\":\"");
	p = put_str(p, o->prefix);
	*p++ = '-';
	p = put_u32(p, i);
	if (gen) {
		*p++ = '.';
		p = put_u32(p, gen);
	}
	char *ip = p + 64; /* the address, written once, copied twice */
	char *q = PUT_LIT(ip, "10.");
	q = put_u32(q, (i >> 16) & 255);
	*q++ = '.';
	q = put_u32(q, (i >> 8) & 255);
	*q++ = '.';
	q = put_u32(q, i & 255);
	char addr[16];
	size_t alen = (size_t)(q - ip);
	memcpy(addr, ip, alen);
	p = PUT_LIT(p, "\",\"url\":\"http://");
	p = put_mem(p, addr, alen);
	p = PUT_LIT(p, ":8080\"");
	if (full) {
		p = PUT_LIT(p, ",\"ip\":\"");
		p = put_mem(p, addr, alen);
		p = PUT_LIT(p, "\",\"port\":8080,\"protocol\":\"http\",\"status\":\"up\"");
		if (o->metadata) {
			/* {"bench":"xxx..."}: 12 bytes of frame, the rest value */
			uint32_t v = o->metadata > 12 ? o->metadata - 12 : 0;
			p = PUT_LIT(p, ",\"metadata\":{\"bench\":\"");
			memset(p, 'm', v);
			p += v;
			p = PUT_LIT(p, "\"}");
		}
	}
	*p++ = '}';
	*p = 0;
	b->len = (size_t)(p - b->p);
}

void wl_lookup_json(const wl_opts_t *o, bbuf_t *b, const uint32_t *svcs, unsigned n)
{
	bbuf_printf(b, "{\"regionId\":\"%s\",\"zoneId\":\"%s\",\"discoveryConfigs\":[", o->region,
	            o->zone);
	for (unsigned k = 0; k < n; k++) {
		char svc[64];
		wl_service_id(o, svcs[k], svc, sizeof(svc));
		bbuf_printf(b, "%s{\"serviceId\":\"%s\",\"regionId\":\"%s\",\"zoneId\":\"%s\"}",
		            k ? "," : "", svc, o->region, o->zone);
	}
	bbuf_puts(b, "]}");
}

/* ---------------------------------------------------- registration ----- */

static int reg_body(bench_class_t *c, unsigned t, bbuf_t *b, bench_req_t *r)
{
	wl_reg_ctx_t *x = c->ctx;
	uint32_t owned = wl_owned(x->o, t);
	if (x->next[t] >= owned)
		return 0;
	bbuf_puts(b, "{\"instances\":[");
	uint32_t k;
	for (k = 0; k < x->batch && x->next[t] < owned; k++, x->next[t]++) {
		if (k)
			bbuf_puts(b, ",");
		wl_instance_json(x->o, b, wl_owned_nth(x->o, t, x->next[t]), 0, true);
	}
	bbuf_puts(b, "]}");
	r->instances = k;
	return 1;
}

void wl_register_class(bench_class_t *c, wl_reg_ctx_t *ctx, const wl_opts_t *o, uint32_t batch)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->o = o;
	ctx->batch = batch;
	memset(c, 0, sizeof(*c));
	c->name = "register";
	c->path = "/artemis/api/registry/register.json";
	c->body = reg_body;
	c->ctx = ctx;
	c->gzip = o->gzip;
	for (unsigned t = 0; t < o->ntargets; t++)
		c->limit += (wl_owned(o, t) + batch - 1) / batch;
}

int wl_register_all(const wl_opts_t *o)
{
	static bench_class_t c; /* the stats are large: not on the stack */
	wl_reg_ctx_t ctx;
	wl_register_class(&c, &ctx, o, o->setup_batch);
	c.name = "setup";
	c.connections = o->connections < 8 ? o->connections : 8;
	if (c.connections < o->ntargets)
		c.connections = o->ntargets;
	c.pipeline = 1;
	bench_run_t run = {.targets = o->targets, .ntargets = o->ntargets, .timeout = 30};
	bench_class_t *cls[] = {&c};
	bench_run(&run, cls, 1);
	uint64_t errs = bench_stats_errors(&c.stats);
	fprintf(stderr,
	        "artemis-bench %s: setup: registered %llu of %u instances (%u services, "
	        "metadata %u B) in %.2f s, %llu errors\n",
	        o->mode, (unsigned long long)c.stats.instances, o->instances, o->services,
	        o->metadata, run.elapsed, (unsigned long long)errs);
	return errs || run.unreachable || c.stats.instances != o->instances ? 1 : 0;
}

/* ---------------------------------------------------------- report ----- */

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static void json_errors(bbuf_t *b, const bench_stats_t *s)
{
	bbuf_printf(b,
	            "{\"connect\":%llu,\"timeout\":%llu,\"closed\":%llu,\"parse\":%llu,\"http\":{",
	            (unsigned long long)s->err_connect, (unsigned long long)s->err_timeout,
	            (unsigned long long)s->err_closed, (unsigned long long)s->err_parse);
	bool first = true;
	for (int i = 0; i < 600; i++)
		if (s->http_codes[i] && i != 200) {
			bbuf_printf(b, "%s\"%d\":%u", first ? "" : ",", i, s->http_codes[i]);
			first = false;
		}
	bbuf_puts(b, "},\"status\":{");
	first = true;
	for (int i = 0; i < BENCH_EC_COUNT; i++)
		if (s->err_code[i]) {
			bbuf_printf(b, "%s\"%s\":%llu", first ? "" : ",", bench_ec_names[i],
			            (unsigned long long)s->err_code[i]);
			first = false;
		}
	bbuf_puts(b, "}}");
}

static void json_stats(bbuf_t *b, const char *name, const bench_stats_t *s, double secs)
{
	const hist_t *h = &s->lat;
	bbuf_printf(b,
	            "{\"class\":\"%s\",\"requests\":%llu,\"ok\":%llu,\"instances\":%llu,"
	            "\"seconds\":%.3f,\"rps\":%.1f,\"instances_per_s\":%.1f,\"errors\":%llu,"
	            "\"error_kinds\":",
	            name, (unsigned long long)s->done, (unsigned long long)s->ok,
	            (unsigned long long)s->instances, secs, secs > 0 ? (double)s->done / secs : 0,
	            secs > 0 ? (double)s->instances / secs : 0,
	            (unsigned long long)bench_stats_errors(s));
	json_errors(b, s);
	bbuf_printf(b,
	            ",\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
	            "\"max\":%.1f,\"mean\":%.1f}}",
	            us(hist_percentile(h, 50)), us(hist_percentile(h, 90)),
	            us(hist_percentile(h, 99)), us(hist_percentile(h, 99.9)), us(h->max),
	            hist_mean(h) / 1000.0);
}

static void text_errors(const bench_stats_t *s)
{
	if (!bench_stats_errors(s))
		return;
	printf("    errors: connect %llu, timeout %llu, closed %llu, parse %llu",
	       (unsigned long long)s->err_connect, (unsigned long long)s->err_timeout,
	       (unsigned long long)s->err_closed, (unsigned long long)s->err_parse);
	for (int i = 0; i < 600; i++)
		if (s->http_codes[i] && i != 200)
			printf(", HTTP %d: %u", i, s->http_codes[i]);
	for (int i = 0; i < BENCH_EC_COUNT; i++)
		if (s->err_code[i])
			printf(", %s: %llu", bench_ec_names[i], (unsigned long long)s->err_code[i]);
	printf("\n");
}

static void text_row(const char *name, const bench_stats_t *s, double secs)
{
	const hist_t *h = &s->lat;
	printf("%-10s %10llu %11.1f %12.1f %7llu %8.3f %8.3f %8.3f %8.3f %8.3f\n", name,
	       (unsigned long long)s->done, secs > 0 ? (double)s->done / secs : 0,
	       secs > 0 ? (double)s->instances / secs : 0,
	       (unsigned long long)bench_stats_errors(s), us(hist_percentile(h, 50)) / 1000,
	       us(hist_percentile(h, 90)) / 1000, us(hist_percentile(h, 99)) / 1000,
	       us(hist_percentile(h, 99.9)) / 1000, us(h->max) / 1000);
	text_errors(s);
}

static void write_percentiles(const char *path, const hist_t *h)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		return;
	}
	static const double ps[] = {0,  10, 20, 30, 40, 50,   60,   70,    75,    80, 85,
	                            90, 95, 97, 98, 99, 99.5, 99.9, 99.95, 99.99, 100};
	fprintf(f, "# percentile latency_us\n");
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
		fprintf(f, "%g %.1f\n", ps[i], us(hist_percentile(h, ps[i])));
	fclose(f);
}

void wl_report(const wl_opts_t *o, bench_run_t *run, bench_class_t **cls, unsigned n,
               const char *extra_json)
{
	static bench_stats_t total;
	memset(&total, 0, sizeof(total));
	hist_init(&total.lat);
	for (unsigned i = 0; i < n; i++)
		bench_stats_merge(&total, &cls[i]->stats);
	double secs = n == 1 ? cls[0]->elapsed : run->elapsed;
	if (o->percentiles_file)
		write_percentiles(o->percentiles_file, &total.lat);
	if (o->json) {
		bbuf_t b = {0};
		bbuf_printf(&b, "{\"bench\":\"%s\",", o->mode);
		if (o->label)
			bbuf_printf(&b, "\"label\":\"%s\",", o->label);
		bbuf_puts(&b, "\"targets\":[");
		for (unsigned t = 0; t < o->ntargets; t++)
			bbuf_printf(&b, "%s\"%s\"", t ? "," : "", o->targets[t].hostport);
		bbuf_printf(
		    &b,
		    "],\"connections\":%u,\"pipeline\":%u,\"batch\":%u,\"instances\":%u,"
		    "\"services\":%u,\"metadata\":%u,\"gzip\":%s,\"rate\":%.1f,"
		    "\"duration_s\":%.3f,\"client_cpu_s\":%.3f,\"client_runq_wait_s\":%.3f,",
		    o->connections, o->pipeline, o->batch, o->instances, o->services, o->metadata,
		    o->gzip ? "true" : "false", o->rate, run->elapsed, (double)run->cpu_ns * 1e-9,
		    (double)run->runq_wait_ns * 1e-9);
		if (extra_json)
			bbuf_printf(&b, "%s,", extra_json);
		/* The run as a whole first (what jq reads), then each class. */
		bbuf_t whole = {0};
		json_stats(&whole, "all", &total, secs);
		bbuf_append(&b, whole.p + 1, whole.len - 2); /* without its braces */
		bbuf_puts(&b, ",\"classes\":[");
		for (unsigned i = 0; i < n; i++) {
			if (i)
				bbuf_puts(&b, ",");
			json_stats(&b, cls[i]->name, &cls[i]->stats, cls[i]->elapsed);
		}
		bbuf_puts(&b, "]}");
		printf("%s\n", b.p);
		bbuf_free(&b);
		bbuf_free(&whole);
		fflush(stdout);
		return;
	}
	printf("artemis-bench %s: %u node(s)", o->mode, o->ntargets);
	for (unsigned t = 0; t < o->ntargets; t++)
		printf(" %s", o->targets[t].hostport);
	printf(", %u connections, pipeline %u, batch %u, %.2f s%s\n", o->connections, o->pipeline,
	       o->batch, run->elapsed, o->gzip ? ", gzip" : "");
	printf("  load generator: %.2f s CPU, %.3f s runnable but waiting for a CPU\n",
	       (double)run->cpu_ns * 1e-9, (double)run->runq_wait_ns * 1e-9);
	if (extra_json)
		printf("  %s\n", extra_json);
	printf("%-10s %10s %11s %12s %7s %8s %8s %8s %8s %8s\n", "class", "requests", "req/s",
	       "instances/s", "errors", "p50 ms", "p90 ms", "p99 ms", "p999 ms", "max ms");
	for (unsigned i = 0; i < n; i++)
		text_row(cls[i]->name, &cls[i]->stats, cls[i]->elapsed);
	if (n > 1)
		text_row("all", &total, secs);
	fflush(stdout);
}

void wl_progress(bench_run_t *run, bench_class_t **cls, unsigned n, double at)
{
	const wl_opts_t *o = run->ctx;
	double every = run->progress_every;
	fprintf(o->json ? stderr : stdout, "  t=%6.1fs", at);
	for (unsigned i = 0; i < n; i++) {
		const bench_stats_t *w = &cls[i]->window;
		fprintf(o->json ? stderr : stdout, "  %s %.0f/s p99 %.3f max %.3f ms err %llu",
		        cls[i]->name, (double)w->done / every,
		        us(hist_percentile(&w->lat, 99)) / 1000, us(w->lat.max) / 1000,
		        (unsigned long long)bench_stats_errors(w));
	}
	fprintf(o->json ? stderr : stdout, "\n");
	fflush(o->json ? stderr : stdout);
}

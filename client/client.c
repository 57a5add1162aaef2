/*
 * client.c - the client object: options, creation and destruction, the
 * background loop (a thread of the library's, or the caller's event base),
 * wakeups from other threads, the periodic tick, statistics and errors.
 *
 * The loop owns every event object; other threads reach it only through
 * flags under c->lock plus a write to an eventfd the loop watches, so the
 * caller's base needs no libevent threading support and the library sets
 * no process-wide state.
 *
 * Shutdown (artemis_client_free): stop the loop (its sessions and requests
 * are dropped), then unregister what was kept alive, then free.  Stopping
 * first means no heartbeat or re-registration can race the unregister.
 * Called from one of the client's callbacks, the free is deferred to a
 * fresh event on the loop, after the callback's stack has unwound.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "artemis/clock.h"
#include "artemis/codec.h"
#include "client_int.h"

#define CL_TICK_MS 1000

/* ---- errors and small utilities --------------------------------------------- */

const char *artemis_strerror(int code)
{
	switch (code) {
	case ARTEMIS_OK:
		return "success";
	case ARTEMIS_E_INVAL:
		return "invalid argument";
	case ARTEMIS_E_NOMEM:
		return "out of memory";
	case ARTEMIS_E_CONNECT:
		return "no node reachable";
	case ARTEMIS_E_TIMEOUT:
		return "timed out";
	case ARTEMIS_E_PROTO:
		return "unexpected answer";
	case ARTEMIS_E_HTTP:
		return "HTTP error status";
	case ARTEMIS_E_SERVER:
		return "refused by the node";
	case ARTEMIS_E_NOTFOUND:
		return "not found";
	case ARTEMIS_E_STATE:
		return "not allowed in this state";
	case ARTEMIS_E_LIMIT:
		return "limit reached";
	case ARTEMIS_E_SYS:
		return "system error";
	default:
		return "unknown error";
	}
}

void artemis_free(void *p)
{
	free(p);
}

/* (cl_err): the name, not the analyzer's macro (client_int.h) */
int(cl_err)(cl_err_t *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return code;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return code;
}

void cl_err_clear(cl_err_t *e)
{
	if (e)
		memset(e, 0, sizeof(*e));
}

int cl_err_copy(cl_err_t *dst, const cl_err_t *src)
{
	if (dst && dst != src)
		*dst = *src;
	return src->code;
}

long cl_arg(const char *s, size_t max, bool strict, const char *what, cl_err_t *err)
{
	size_t n;

	if (s == NULL)
		return cl_err(err, ARTEMIS_E_INVAL, "%s is NULL", what);
	n = strnlen(s, max + 1);
	if (n > max)
		return cl_err(err, ARTEMIS_E_INVAL, "%s is longer than %zu bytes", what, max);
	if (strict && n == 0)
		return cl_err(err, ARTEMIS_E_INVAL, "%s is empty", what);
	for (size_t i = 0; strict && i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return cl_err(err, ARTEMIS_E_INVAL, "%s holds a control character", what);
	return (long)n;
}

char *cl_strndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

char *cl_strdup(const char *s)
{
	return cl_strndup(s, strlen(s));
}

void cl_lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

uint64_t cl_random(void)
{
	uint64_t r = 0;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = clock_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&r;
	return r ? r : 0x9e3779b97f4a7c15ull;
}

uint64_t cl_xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* ---- options ------------------------------------------------------------------ */

artemis_options_t *artemis_options_new(void)
{
	artemis_options_t *o = calloc(1, sizeof(*o));

	if (o == NULL)
		return NULL;
	o->conf.connect_timeout_ms = 1000;
	o->conf.request_timeout_ms = 5000;
	o->conf.lease_ttl_ms = 20000;
	o->conf.reload_interval_ms = 60000;
	o->conf.nodes_refresh_ms = 300000;
	o->conf.backoff_max_ms = 30000;
	o->conf.max_instances = 100000;
	o->conf.max_services = 10000;
	o->conf.ws_message_bytes = 60000;
	o->conf.max_response_bytes = 64u << 20;
	o->conf.websocket = true;
	o->conf.unregister_on_close = true;
	return o;
}

void artemis_options_free(artemis_options_t *o)
{
	free(o);
}

int artemis_options_add_url(artemis_options_t *o, const char *urls)
{
	char one[CL_URL_MAX];
	cl_node_t n;

	if (o == NULL || cl_arg(urls, CL_MAX_NODES * CL_URL_MAX, true, "urls", NULL) < 0)
		return ARTEMIS_E_INVAL;
	for (const char *p = urls; *p;) {
		size_t len;
		p += strspn(p, ", \t\r\n");
		len = strcspn(p, ", \t\r\n");
		if (len == 0)
			break;
		if (len >= sizeof(one) || o->nurls >= CL_MAX_NODES)
			return ARTEMIS_E_INVAL;
		memcpy(one, p, len);
		one[len] = '\0';
		p += len;
		if (cl_node_parse(one, &n, NULL) < 0)
			return ARTEMIS_E_INVAL;
		bool dup = false;
		for (int i = 0; i < o->nurls; i++)
			dup = dup || strcmp(o->urls[i], n.url) == 0;
		if (!dup)
			snprintf(o->urls[o->nurls++], CL_URL_MAX, "%s", n.url);
	}
	return 0;
}

int artemis_options_set_str(artemis_options_t *o, artemis_option_t opt, const char *value)
{
	char *dst;
	size_t cap;

	if (o == NULL)
		return ARTEMIS_E_INVAL;
	switch (opt) {
	case ARTEMIS_OPT_REGION:
		dst = o->conf.region, cap = sizeof(o->conf.region);
		break;
	case ARTEMIS_OPT_ZONE:
		dst = o->conf.zone, cap = sizeof(o->conf.zone);
		break;
	case ARTEMIS_OPT_TOKEN:
		dst = o->conf.token, cap = sizeof(o->conf.token);
		for (const char *p = value; p && *p; p++)
			if (*p <= 0x20 || *p == 0x7f) /* it goes into a header line */
				return ARTEMIS_E_INVAL;
		break;
	default:
		return ARTEMIS_E_INVAL;
	}
	if (value == NULL) {
		dst[0] = '\0';
		return 0;
	}
	if (cl_arg(value, cap - 1, opt != ARTEMIS_OPT_TOKEN, "value", NULL) < 0)
		return ARTEMIS_E_INVAL;
	snprintf(dst, cap, "%s", value);
	return 0;
}

int artemis_options_set_int(artemis_options_t *o, artemis_option_t opt, long v)
{
	static const struct {
		artemis_option_t opt;
		long min, max;
		size_t off;
	} t[] = {
#define CL_O(f) offsetof(cl_conf_t, f)
	    {ARTEMIS_OPT_CONNECT_TIMEOUT_MS, 10, 600000, CL_O(connect_timeout_ms)},
	    {ARTEMIS_OPT_REQUEST_TIMEOUT_MS, 50, 3600000, CL_O(request_timeout_ms)},
	    {ARTEMIS_OPT_LEASE_TTL_MS, 1000, 604800000, CL_O(lease_ttl_ms)},
	    {ARTEMIS_OPT_HEARTBEAT_INTERVAL_MS, 0, 86400000, CL_O(heartbeat_interval_ms)},
	    {ARTEMIS_OPT_RELOAD_INTERVAL_MS, 1000, 86400000, CL_O(reload_interval_ms)},
	    {ARTEMIS_OPT_NODES_REFRESH_MS, 1000, 86400000, CL_O(nodes_refresh_ms)},
	    {ARTEMIS_OPT_BACKOFF_MAX_MS, 250, 3600000, CL_O(backoff_max_ms)},
	    {ARTEMIS_OPT_MAX_INSTANCES, 1, 10000000, CL_O(max_instances)},
	    {ARTEMIS_OPT_MAX_SERVICES, 1, 1000000, CL_O(max_services)},
	    {ARTEMIS_OPT_WS_MESSAGE_BYTES, 20000, 16 << 20, CL_O(ws_message_bytes)},
#undef CL_O
	};

	if (o == NULL)
		return ARTEMIS_E_INVAL;
	switch (opt) {
	case ARTEMIS_OPT_WEBSOCKET:
	case ARTEMIS_OPT_UNREGISTER_ON_CLOSE:
		if (v != 0 && v != 1)
			return ARTEMIS_E_INVAL;
		*(opt == ARTEMIS_OPT_WEBSOCKET ? &o->conf.websocket
		                               : &o->conf.unregister_on_close) = v == 1;
		return 0;
	case ARTEMIS_OPT_MAX_RESPONSE_BYTES:
		if (v < 1024 || v > (1l << 30))
			return ARTEMIS_E_INVAL;
		o->conf.max_response_bytes = (uint64_t)v;
		return 0;
	default:
		break;
	}
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (t[i].opt != opt)
			continue;
		if (v < t[i].min || v > t[i].max)
			return ARTEMIS_E_INVAL;
		*(uint32_t *)((char *)&o->conf + t[i].off) = (uint32_t)v;
		if (opt == ARTEMIS_OPT_LEASE_TTL_MS)
			o->conf.lease_ttl_set = true;
		return 0;
	}
	return ARTEMIS_E_INVAL;
}

int artemis_options_set_event_base(artemis_options_t *o, struct event_base *base)
{
	if (o == NULL)
		return ARTEMIS_E_INVAL;
	o->base = base;
	return 0;
}

/* ---- the loop ------------------------------------------------------------------- */

bool cl_on_loop_thread(const cl_t *c)
{
	return atomic_load_explicit(&c->loop_tid_set, memory_order_acquire) &&
	       pthread_equal(pthread_self(), c->loop_tid);
}

void cl_wake(cl_t *c, unsigned flags)
{
	uint64_t one = 1;

	pthread_mutex_lock(&c->lock);
	c->wake_flags |= flags;
	int fd = c->wake_fd;
	pthread_mutex_unlock(&c->lock);
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return; /* the counter is saturated: the loop wakes anyway */
}

typedef struct {
	char *urls[CL_MAX_NODES];
	size_t n;
} cl_urls_t;

static void cl__collect_url(void *arg, const char *url)
{
	cl_urls_t *col = arg;

	if (col->n < CL_MAX_NODES) {
		char *u = cl_strdup(url);
		if (u)
			col->urls[col->n++] = u;
	}
}

static void cl__nodes_done(cl_req_t *r, void *arg)
{
	cl_urls_t col = {.n = 0};

	(void)arg;
	if (r->rc < 0 || strcmp(r->st.status, "success") != 0)
		return;
	cl_decode_nodes(r->json, cl__collect_url, &col);
	cl_nodes_update(r->c, r->purpose, col.urls, col.n);
	for (size_t i = 0; i < col.n; i++)
		free(col.urls[i]);
}

/* Ask the cluster for its up nodes (API.md §2.4), both lists. */
static void cl__refresh_nodes(cl_t *c)
{
	static const char *const paths[CL_P_COUNT] = {
	    "/artemis/api/cluster/up-registry-nodes.json",
	    "/artemis/api/cluster/up-discovery-nodes.json"};
	buf_t body = {0};

	pthread_mutex_lock(&c->lock);
	buf_puts(&body, "{\"regionId\":");
	json_put_cstr(&body, c->conf.region[0] ? c->conf.region : NULL);
	buf_puts(&body, ",\"zoneId\":");
	json_put_cstr(&body, c->conf.zone[0] ? c->conf.zone : NULL);
	buf_puts(&body, "}");
	pthread_mutex_unlock(&c->lock);
	for (int p = 0; p < CL_P_COUNT && !buf_error(&body); p++) {
		cl_req_t *r = cl_req_new(c, p, CL_REQ_JAVA, "POST", paths[p], body.data, body.len);
		if (r == NULL)
			break;
		r->done = cl__nodes_done;
		cl_req_submit(r);
	}
	buf_free(&body);
}

static void cl__on_tick(evutil_socket_t fd, short what, void *arg)
{
	cl_t *c = arg;
	uint64_t now = clock_mono_ms();

	(void)fd;
	(void)what;
	cl_reg_tick(c, now);
	cl_disc_tick(c, now);
	if (now >= c->next_refresh_ms) {
		c->next_refresh_ms = now + c->conf.nodes_refresh_ms;
		cl__refresh_nodes(c);
	}
}

static void cl__on_wake(evutil_socket_t fd, short what, void *arg)
{
	cl_t *c = arg;
	uint64_t n;
	unsigned flags;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&c->lock);
	flags = c->wake_flags;
	c->wake_flags = 0;
	pthread_mutex_unlock(&c->lock);
	if (flags & CL_WAKE_STOP) {
		event_base_loopbreak(c->base);
		return;
	}
	if (flags & CL_WAKE_REG)
		cl_reg_wake(c);
	if (flags & CL_WAKE_DISC)
		cl_disc_wake(c);
}

/* Create the loop's events on c->base (the loop's thread, or before it runs). */
static int cl__loop_setup(cl_t *c, cl_err_t *err)
{
	struct timeval tick = {CL_TICK_MS / 1000, (CL_TICK_MS % 1000) * 1000};
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	if (fd < 0)
		return cl_err(err, ARTEMIS_E_SYS, "eventfd: %s", strerror(errno));
	c->wake_ev = event_new(c->base, fd, EV_READ | EV_PERSIST, cl__on_wake, c);
	c->tick_ev = event_new(c->base, -1, EV_PERSIST, cl__on_tick, c);
	if (c->wake_ev == NULL || c->tick_ev == NULL || event_add(c->wake_ev, NULL) < 0 ||
	    event_add(c->tick_ev, &tick) < 0) {
		if (c->wake_ev)
			event_free(c->wake_ev);
		if (c->tick_ev)
			event_free(c->tick_ev);
		c->wake_ev = c->tick_ev = NULL;
		close(fd);
		return cl_err(err, ARTEMIS_E_SYS, "cannot create the loop's events");
	}
	pthread_mutex_lock(&c->lock);
	c->wake_fd = fd;
	pthread_mutex_unlock(&c->lock);
	c->next_refresh_ms = clock_mono_ms(); /* ask the cluster at the first tick */
	cl_reg_loop_start(c);
	cl_disc_loop_start(c);
	return 0;
}

/* Drop every event object of the loop (the loop's thread, or after it stopped). */
static void cl__loop_teardown(cl_t *c)
{
	cl_reg_loop_stop(c);
	cl_disc_loop_stop(c);
	while (c->reqs)
		cl_req_cancel(c->reqs);
	if (c->wake_ev)
		event_free(c->wake_ev);
	if (c->tick_ev)
		event_free(c->tick_ev);
	c->wake_ev = c->tick_ev = NULL;
	pthread_mutex_lock(&c->lock);
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	c->wake_fd = -1;
	pthread_mutex_unlock(&c->lock);
}

static void cl__destroy(cl_t *c);

static void *cl__thread_main(void *arg)
{
	cl_t *c = arg;

	c->loop_tid = pthread_self();
	atomic_store_explicit(&c->loop_tid_set, true, memory_order_release);
	event_base_loop(c->base, EVLOOP_NO_EXIT_ON_EMPTY);
	if (!c->free_deferred)
		return NULL; /* artemis_client_free joins and finishes */
	cl__loop_teardown(c);
	if (c->conf.unregister_on_close)
		cl_reg_unregister_all(c);
	pthread_detach(pthread_self());
	event_base_free(c->base);
	c->base = NULL;
	cl__destroy(c);
	return NULL;
}

int cl_loop_ensure(cl_t *c, cl_err_t *err)
{
	struct event_config *cfg;
	int rc = 0;

	pthread_mutex_lock(&c->start_lock);
	if (c->loop_started)
		goto out;
	cfg = event_config_new();
	if (cfg)
		event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
	c->base = cfg ? event_base_new_with_config(cfg) : NULL;
	if (cfg)
		event_config_free(cfg);
	if (c->base == NULL) {
		rc = cl_err(err, ARTEMIS_E_SYS, "cannot create an event base");
		goto out;
	}
	c->own_base = true;
	rc = cl__loop_setup(c, err);
	if (rc == 0 && pthread_create(&c->thread, NULL, cl__thread_main, c) != 0)
		rc = cl_err(err, ARTEMIS_E_SYS, "cannot start the client's thread");
	if (rc < 0) {
		cl__loop_teardown(c);
		event_base_free(c->base);
		c->base = NULL;
		goto out;
	}
	c->thread_running = true;
	c->loop_started = true;
out:
	pthread_mutex_unlock(&c->start_lock);
	return rc;
}

/* ---- the client --------------------------------------------------------------------- */

int artemis_client_new(const artemis_options_t *o, artemis_client_t **out, artemis_error_t *err)
{
	cl_t *c;
	int rc;

	cl_err_clear(err);
	if (out == NULL)
		return cl_err(err, ARTEMIS_E_INVAL, "out is NULL");
	*out = NULL;
	if (o == NULL || o->nurls == 0)
		return cl_err(err, ARTEMIS_E_INVAL, "no node URL given");
	if (o->conf.heartbeat_interval_ms != 0 &&
	    (o->conf.heartbeat_interval_ms < 100 ||
	     o->conf.heartbeat_interval_ms >= o->conf.lease_ttl_ms / 3))
		return cl_err(err, ARTEMIS_E_INVAL,
		              "heartbeat interval must be 100 ms or more and below lease_ttl/3");
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return cl_err(err, ARTEMIS_E_NOMEM, "out of memory");
	c->conf = o->conf;
	c->conf.heartbeat_explicit_ms = o->conf.heartbeat_interval_ms;
	c->conf.heartbeat_interval_ms =
	    cl_lease_interval(c->conf.lease_ttl_ms, c->conf.heartbeat_explicit_ms);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->start_lock, NULL);
	c->wake_fd = -1;
	c->rng = cl_random();
	for (int p = 0; p < CL_P_COUNT; p++)
		c->current[p] = -1;
	for (int i = 0; i < o->nurls; i++) {
		if (cl_node_parse(o->urls[i], &c->nodes[c->nnodes], err) == 0)
			c->nodes[c->nnodes++].seed = true;
	}
	c->deployment_known = c->conf.region[0] && c->conf.zone[0];
	for (int s = 0; s < ARTEMIS_STAT_COUNT; s++)
		atomic_init(&c->stats[s], 0);
	if ((rc = cl_reg_init(c)) < 0 || (rc = cl_disc_init(c)) < 0)
		goto fail;
	if (o->base) {
		c->base = o->base;
		if ((rc = cl__loop_setup(c, err)) < 0)
			goto fail;
		c->loop_started = true;
	}
	*out = c;
	return 0;
fail:
	if (err && err->code == 0)
		cl_err(err, rc, "cannot create the client");
	cl__destroy(c);
	return rc;
}

static void cl__destroy(cl_t *c)
{
	cl_reg_free(c);
	cl_disc_free(c);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->start_lock);
	free(c);
}

static void cl__deferred_free(evutil_socket_t fd, short what, void *arg)
{
	cl_t *c = arg;

	(void)fd;
	(void)what;
	if (c->own_base) { /* the thread finishes after its loop returns */
		event_base_loopbreak(c->base);
		return;
	}
	cl__loop_teardown(c);
	if (c->conf.unregister_on_close)
		cl_reg_unregister_all(c);
	cl__destroy(c);
}

void artemis_client_free(artemis_client_t *c)
{
	struct timeval now = {0, 0};

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	bool again = c->closing;
	c->closing = true;
	pthread_mutex_unlock(&c->lock);
	if (again)
		return;
	/* own thread: only its thread can be inside a callback; the caller's
	 * base: free is called on the base's thread (the contract) */
	if ((c->own_base ? cl_on_loop_thread(c) : true) && c->in_callback) {
		c->free_deferred = true;
		if (event_base_once(c->base, -1, EV_TIMEOUT, cl__deferred_free, c, &now) == 0)
			return;
		c->free_deferred = false; /* cannot defer: nothing safe left to do */
		return;
	}
	if (c->own_base && c->thread_running) {
		cl_wake(c, CL_WAKE_STOP);
		pthread_join(c->thread, NULL);
		c->thread_running = false;
	}
	if (c->loop_started)
		cl__loop_teardown(c);
	if (c->own_base && c->base)
		event_base_free(c->base);
	c->base = NULL;
	if (c->conf.unregister_on_close)
		cl_reg_unregister_all(c);
	cl__destroy(c);
}

uint64_t artemis_client_stat(artemis_client_t *c, artemis_stat_t which)
{
	uint64_t v;

	if (c == NULL || (unsigned)which >= ARTEMIS_STAT_COUNT)
		return 0;
	switch (which) {
	case ARTEMIS_STAT_REGISTERED:
	case ARTEMIS_STAT_CACHED_SERVICES:
	case ARTEMIS_STAT_NODES:
		pthread_mutex_lock(&c->lock);
		v = which == ARTEMIS_STAT_REGISTERED        ? c->reg.set.n
		    : which == ARTEMIS_STAT_CACHED_SERVICES ? c->disc.cache.n
		                                            : (uint64_t)c->nnodes;
		pthread_mutex_unlock(&c->lock);
		return v;
	default:
		break;
	}
	return atomic_load_explicit(&c->stats[which], memory_order_relaxed);
}

/*
 * discovery.c - the service cache, kept current by pushes (API.md §6.3).
 *
 * artemis_discover() answers from the cache; a service not cached yet is
 * fetched (lookup.json, blocking the caller) and subscribed: the loop keeps
 * one WebSocket /artemis/websocket/discovery/instance-change and sends each
 * cached service's DiscoveryConfig on it, once per session.  Pushes become
 * new snapshots ("new"/"change" upsert the instance by key, "delete" drops
 * it); a "reload" marker fetches the service again.  Pushes are matched by
 * the exact serviceId, as the nodes match subscriptions (the Java client's
 * lowercase cache keys lose mixed-case pushes; this one does not).
 *
 * Pushes are not replayed (API.md §3): a change made between a fetch and
 * the moment the node holds the subscription is never pushed.  So each
 * service is fetched once more half a second after its subscription went
 * out (first subscription, or again on a new session after a reconnect),
 * and, as a safety net, every cached service each [reload_interval_ms].
 * A fetch that finds the service changed counts as a change ("reload").
 *
 * Subscribers' callbacks run on the loop after each change, with no lock
 * held; artemis_unsubscribe() waits for a callback of that subscription
 * running on another thread, so none runs after it returns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "artemis/clock.h"
#include "artemis/codec.h"
#include "client_int.h"

#define DISC_PATH_LOOKUP "/artemis/api/discovery/lookup.json"

struct artemis_change {
	int type;
	cl_inst_t *inst;
	cl_svc_t *svc;
	int64_t time;
	const char *json;
};

/* ---- changes ---------------------------------------------------------------- */

static const char *const disc__type_names[] = {"new", "delete", "change", "reload"};

artemis_change_type_t artemis_change_type(const artemis_change_t *ch)
{
	return ch ? (artemis_change_type_t)ch->type : ARTEMIS_CHANGE_RELOAD;
}

const char *artemis_change_type_name(const artemis_change_t *ch)
{
	return ch ? disc__type_names[ch->type] : NULL;
}

const artemis_instance_t *artemis_change_instance(const artemis_change_t *ch)
{
	return ch ? ch->inst : NULL;
}

artemis_service_t *artemis_change_service(const artemis_change_t *ch)
{
	return ch ? ch->svc : NULL;
}

int64_t artemis_change_time(const artemis_change_t *ch)
{
	return ch ? ch->time : 0;
}

const char *artemis_change_json(const artemis_change_t *ch)
{
	return ch ? ch->json : NULL;
}

static cl_sub_t *disc__sub(cl_t *c, uint64_t id)
{
	for (cl_sub_t *s = c->disc.subs; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

/* Call the service's subscribers, one at a time, no lock held. */
static void disc__notify(cl_t *c, const char *sid, const artemis_change_t *ch)
{
	uint64_t ids[64];
	size_t n = 0;
	uint64_t after = 0;

	for (;;) { /* in batches of 64, by increasing id */
		pthread_mutex_lock(&c->lock);
		n = 0;
		for (cl_sub_t *s = c->disc.subs; s && n < 64; s = s->next)
			if (s->id > after && strcmp(s->service, sid) == 0)
				ids[n++] = s->id;
		pthread_mutex_unlock(&c->lock);
		if (n == 0)
			return;
		for (size_t k = 0; k < n; k++) {
			artemis_change_fn fn;
			void *arg;
			after = ids[k] > after ? ids[k] : after;
			pthread_mutex_lock(&c->lock);
			cl_sub_t *s = c->closing ? NULL : disc__sub(c, ids[k]);
			if (s) {
				fn = s->fn;
				arg = s->arg;
				c->disc.running = s->id;
				c->disc.cb_thread = pthread_self();
			}
			pthread_mutex_unlock(&c->lock);
			if (s == NULL)
				continue;
			c->in_callback = true;
			fn(ch, arg);
			c->in_callback = false;
			pthread_mutex_lock(&c->lock);
			c->disc.running = 0;
			pthread_cond_broadcast(&c->disc.done_cond);
			pthread_mutex_unlock(&c->lock);
			if (c->free_deferred)
				return;
		}
	}
}

/* Install a new snapshot of sid (takes snap) and tell the subscribers. */
static void disc__replace(cl_t *c, const char *sid, cl_svc_t *snap, int type, cl_inst_t *inst,
                          const char *json, int64_t time)
{
	cl_entry_t *e;
	cl_svc_t *old;
	char built[CL_ID_MAX * 6 + 96];

	pthread_mutex_lock(&c->lock);
	e = cl_map_get(&c->disc.cache, sid);
	if (e == NULL ||
	    (type == ARTEMIS_CHANGE_RELOAD && strcmp(e->snap->json, snap->json) == 0)) {
		if (e)
			e->reload_queued = false;
		pthread_mutex_unlock(&c->lock);
		cl_svc_release(snap);
		return;
	}
	old = e->snap;
	e->snap = snap;
	e->reload_queued = false;
	artemis_service_retain(snap);
	pthread_mutex_unlock(&c->lock);
	if (json == NULL) {
		buf_t b = {0};
		buf_printf(&b, "{\"changeTime\":%lld,\"changeType\":\"reload\",\"serviceId\":",
		           (long long)time);
		json_put_cstr(&b, sid);
		buf_puts(&b, "}");
		snprintf(built, sizeof(built), "%s", buf_error(&b) ? "" : b.data);
		buf_free(&b);
		json = built;
	}
	artemis_change_t ch = {type, inst, snap, time, json};
	disc__notify(c, sid, &ch);
	cl_svc_release(snap);
	cl_svc_release(old);
}

/* ---- reloads (loop thread) ----------------------------------------------------- */

typedef struct {
	size_t n;
	char region[CL_REGION_MAX + 1], zone[CL_REGION_MAX + 1];
	char *ids[CL_LOOKUP_BATCH];
} disc_reload_t;

static void disc__reload_free(disc_reload_t *rl)
{
	if (rl == NULL)
		return;
	for (size_t i = 0; i < rl->n; i++)
		free(rl->ids[i]);
	free(rl);
}

static void disc__reload_done(cl_req_t *r, void *arg)
{
	cl_t *c = r->c;
	disc_reload_t *rl = arg;
	cl_svc_t *snaps[CL_LOOKUP_BATCH];

	c->disc.reload_inflight--;
	if (r->rc < 0 ||
	    cl_lookup_answer(r->json, &r->st, rl->region, rl->zone, rl->n, snaps, NULL) < 0) {
		pthread_mutex_lock(&c->lock);
		for (size_t i = 0; i < rl->n; i++) {
			cl_entry_t *e = cl_map_get(&c->disc.cache, rl->ids[i]);
			if (e)
				e->reload_queued = false;
		}
		pthread_mutex_unlock(&c->lock);
		disc__reload_free(rl);
		return;
	}
	cl_stat_add(c, ARTEMIS_STAT_RELOADS, rl->n);
	for (size_t i = 0; i < rl->n && !c->free_deferred; i++)
		disc__replace(c, rl->ids[i], snaps[i], ARTEMIS_CHANGE_RELOAD, NULL, NULL,
		              (int64_t)clock_wall_ms());
	for (size_t i = 0; i < rl->n && c->free_deferred; i++)
		cl_svc_release(snaps[i]); /* those not installed */
	disc__reload_free(rl);
}

/* A reload the closing client cancelled before its answer. */
static void disc__reload_drop(void *arg)
{
	disc__reload_free(arg);
}

static void disc__reload_send(cl_t *c, disc_reload_t *rl)
{
	buf_t body = {0};
	cl_req_t *r = NULL;

	if (cl_lookup_body(&body, rl->region, rl->zone, rl->ids, rl->n) == 0)
		r = cl_req_new(c, CL_P_DISCOVERY, CL_REQ_JAVA, "POST", DISC_PATH_LOOKUP, body.data,
		               body.len);
	buf_free(&body);
	if (r == NULL) {
		disc__reload_free(rl);
		return;
	}
	r->done = disc__reload_done;
	r->arg = rl;
	r->drop = disc__reload_drop;
	c->disc.reload_inflight++;
	cl_req_submit(r);
}

enum { DISC_ONE, DISC_ALL, DISC_SETTLE };

static bool disc__wanted_for(cl_entry_t *e, int which)
{
	if (e->reload_queued)
		return false;
	if (which == DISC_SETTLE && !e->settle)
		return false;
	e->settle = false;
	return true;
}

/* Fetch again: one service (sid), every cached one, or those settling. */
static void disc__reload_some(cl_t *c, const char *sid, int which)
{
	disc_reload_t *rl = NULL;
	size_t pos = 0;
	cl_map_ent_t *ent = NULL;
	cl_entry_t *one = NULL;

	pthread_mutex_lock(&c->lock);
	if (which == DISC_ONE && ((one = cl_map_get(&c->disc.cache, sid)) == NULL)) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	while (one || cl_map_next(&c->disc.cache, &pos, &ent)) {
		cl_entry_t *e = one ? one : ent->val;
		if (!disc__wanted_for(e, which)) {
			if (one)
				break;
			continue;
		}
		if (rl == NULL && (rl = calloc(1, sizeof(*rl))) == NULL)
			break;
		memcpy(rl->region, c->conf.region, sizeof(rl->region));
		memcpy(rl->zone, c->conf.zone, sizeof(rl->zone));
		if ((rl->ids[rl->n] = cl_strdup(e->id)) == NULL)
			break;
		rl->n++;
		e->reload_queued = true;
		if (rl->n == CL_LOOKUP_BATCH) {
			pthread_mutex_unlock(&c->lock);
			disc__reload_send(c, rl);
			rl = NULL;
			pthread_mutex_lock(&c->lock);
		}
		if (one)
			break;
	}
	pthread_mutex_unlock(&c->lock);
	if (rl && rl->n)
		disc__reload_send(c, rl);
	else
		free(rl);
}

static void disc__reload(cl_t *c, const char *sid)
{
	disc__reload_some(c, sid, sid ? DISC_ONE : DISC_ALL);
}

static void disc__on_settle(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	disc__reload_some(arg, NULL, DISC_SETTLE);
}

/* ---- pushes (loop thread) -------------------------------------------------------- */

static void disc__push(cl_t *c, const char *text, size_t len)
{
	char sid[CL_ID_MAX + 1];
	cl_inst_t *inst;
	cl_entry_t *e;
	cl_svc_t *old, *snap;
	int64_t time;
	int type;

	cl_stat_add(c, ARTEMIS_STAT_PUSHES, 1);
	if (cl_decode_change(text, len, &type, sid, sizeof(sid), &inst, &time) < 0)
		return; /* not an InstanceChange: nothing to apply */
	if (type == ARTEMIS_CHANGE_RELOAD) {
		disc__reload(c, sid);
		return;
	}
	pthread_mutex_lock(&c->lock);
	e = cl_map_get(&c->disc.cache, sid);
	old = e ? artemis_service_retain(e->snap) : NULL;
	pthread_mutex_unlock(&c->lock);
	if (old && cl_svc_apply(old, type, inst, &snap) == 0)
		disc__replace(c, sid, snap, type, inst, text, time);
	cl_svc_release(old);
	cl_inst_release(inst);
}

/* Send the DiscoveryConfig of every service not yet subscribed on this session. */
static void disc__subscribe(cl_t *c)
{
	cl_ws_t *ws = &c->disc.ws;
	buf_t msgs = {0};
	size_t pos = 0;
	cl_map_ent_t *ent = NULL;

	bool fresh = false;

	pthread_mutex_lock(&c->lock);
	while (cl_map_next(&c->disc.cache, &pos, &ent)) {
		cl_entry_t *e = ent->val;
		if (e->sent_gen == ws->generation)
			continue;
		e->sent_gen = ws->generation;
		e->settle = fresh = true;
		buf_puts(&msgs, "{\"serviceId\":");
		json_put_cstr(&msgs, e->id);
		buf_puts(&msgs, ",\"regionId\":");
		json_put_cstr(&msgs, c->conf.region);
		buf_puts(&msgs, ",\"zoneId\":");
		json_put_cstr(&msgs, c->conf.zone);
		buf_append(&msgs, "}\n", 2);
	}
	pthread_mutex_unlock(&c->lock);
	for (char *p = msgs.data, *nl; !buf_error(&msgs) && p && (nl = strchr(p, '\n'));
	     p = nl + 1) {
		/* one message per service: the nodes read one config per message */
		if (cl_ws_send(ws, CL_WS_TEXT, p, (size_t)(nl - p)) < 0)
			break;
	}
	buf_free(&msgs);
	if (fresh && c->disc.settle_ev) {
		struct timeval half = {0, 500000};
		evtimer_add(c->disc.settle_ev, &half);
	}
}

static bool disc__ws_wanted(cl_ws_t *ws)
{
	return cl_ws_needed(ws->c, &ws->c->disc.cache.n);
}

static void disc__ws_open(cl_ws_t *ws)
{
	/* every service subscribed anew, and so fetched again once settled:
	 * that also repairs what changed while no session was open */
	disc__subscribe(ws->c);
}

static void disc__ws_text(cl_ws_t *ws, const char *msg, size_t len)
{
	disc__push(ws->c, msg, len);
}

static const cl_ws_cb_t disc__ws_cb = {
    .wanted = disc__ws_wanted,
    .open = disc__ws_open,
    .text = disc__ws_text,
    .closed = NULL,
};

int cl_disc_init(cl_t *c)
{
	memset(&c->disc, 0, sizeof(c->disc));
	return pthread_cond_init(&c->disc.done_cond, NULL) ? ARTEMIS_E_SYS : 0;
}

void cl_disc_loop_start(cl_t *c)
{
	cl_ws_init(&c->disc.ws, c, CL_P_DISCOVERY, CL_PUSH_CHANGE, &disc__ws_cb);
	c->disc.settle_ev = evtimer_new(c->base, disc__on_settle, c);
	c->disc.next_reload_ms = clock_mono_ms() + c->conf.reload_interval_ms;
}

void cl_disc_wake(cl_t *c)
{
	if (c->disc.ws.state == CL_WS_OPEN)
		disc__subscribe(c);
	else if (c->disc.ws.state == CL_WS_IDLE && disc__ws_wanted(&c->disc.ws))
		cl_ws_connect(&c->disc.ws);
}

void cl_disc_tick(cl_t *c, uint64_t now)
{
	cl_ws_tick(&c->disc.ws, now);
	if (now >= c->disc.next_reload_ms) {
		c->disc.next_reload_ms = now + c->conf.reload_interval_ms;
		if (c->disc.reload_inflight == 0)
			disc__reload(c, NULL);
	}
}

void cl_disc_loop_stop(cl_t *c)
{
	cl_ws_free(&c->disc.ws);
	if (c->disc.settle_ev)
		event_free(c->disc.settle_ev);
	c->disc.settle_ev = NULL;
}

void cl_disc_free(cl_t *c)
{
	size_t pos = 0;
	cl_map_ent_t *ent = NULL;
	cl_sub_t *s, *next;

	while (cl_map_next(&c->disc.cache, &pos, &ent)) {
		cl_entry_t *e = ent->val;
		cl_svc_release(e->snap);
		free(e->id);
		free(e);
	}
	cl_map_free(&c->disc.cache);
	for (s = c->disc.subs; s; s = next) {
		next = s->next;
		free(s->service);
		free(s);
	}
	c->disc.subs = NULL;
	pthread_cond_destroy(&c->disc.done_cond);
}

/* ---- the calls (any thread) ----------------------------------------------------- */

static int disc__get(cl_t *c, const char *sid, cl_svc_t **out, cl_err_t *err)
{
	cl_entry_t *e;
	cl_svc_t *snap;
	char *ids[1] = {(char *)sid};
	int rc;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	e = cl_map_get(&c->disc.cache, sid);
	if (e)
		*out = artemis_service_retain(e->snap);
	bool closing = c->closing;
	pthread_mutex_unlock(&c->lock);
	if (*out)
		return 0;
	if (closing)
		return cl_err(err, ARTEMIS_E_STATE, "the client is closing");
	rc = cl_loop_ensure(c, err);
	if (rc < 0)
		return rc;
	rc = cl_fetch_services(c, ids, 1, &snap, err);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&c->lock);
	e = cl_map_get(&c->disc.cache, sid);
	if (e) { /* another thread cached it meanwhile */
		*out = artemis_service_retain(e->snap);
		pthread_mutex_unlock(&c->lock);
		cl_svc_release(snap);
		return 0;
	}
	if (c->disc.cache.n >= c->conf.max_services) {
		pthread_mutex_unlock(&c->lock);
		cl_svc_release(snap);
		return cl_err(err, ARTEMIS_E_LIMIT, "more than %u services cached",
		              c->conf.max_services);
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL || (e->id = cl_strdup(sid)) == NULL ||
	    cl_map_put(&c->disc.cache, e->id, e, NULL) < 0) {
		pthread_mutex_unlock(&c->lock);
		if (e)
			free(e->id);
		free(e);
		cl_svc_release(snap);
		return cl_err(err, ARTEMIS_E_NOMEM, "out of memory");
	}
	e->snap = snap;
	e->sent_gen = (unsigned)-1;
	*out = artemis_service_retain(snap);
	pthread_mutex_unlock(&c->lock);
	cl_wake(c, CL_WAKE_DISC);
	return 0;
}

/* The checks and the cached fetch the calls on a service share: given
 * says the pointer the call needs besides the id (named what) is there. */
static int disc__begin(cl_t *c, const char *sid, bool given, const char *what, cl_svc_t **s,
                       cl_err_t *err)
{
	*s = NULL;
	cl_err_clear(err);
	if (c == NULL)
		return cl_err(err, ARTEMIS_E_INVAL, "client is NULL");
	if (cl_arg(sid, CL_ID_MAX, true, "serviceId", err) < 0)
		return ARTEMIS_E_INVAL;
	if (!given)
		return cl_err(err, ARTEMIS_E_INVAL, "%s is NULL", what);
	return disc__get(c, sid, s, err);
}

int artemis_discover(artemis_client_t *c, const char *service_id, artemis_service_t **out,
                     artemis_error_t *err)
{
	cl_svc_t *s;
	int rc = disc__begin(c, service_id, out != NULL, "out", &s, err);

	if (out)
		*out = s;
	return rc;
}

int artemis_choose(artemis_client_t *c, const char *service_id, const char *route_id,
                   artemis_instance_t **out, artemis_error_t *err)
{
	const artemis_instance_t *pick;
	cl_svc_t *s;
	int rc;

	if (out)
		*out = NULL;
	rc = disc__begin(c, service_id, out != NULL, "out", &s, err);
	if (rc < 0)
		return rc;
	rc = artemis_service_choose(s, route_id, &pick);
	if (rc == 0)
		*out = cl_inst_retain((cl_inst_t *)pick);
	else
		cl_err(err, rc, "%s: %s", service_id,
		       rc == ARTEMIS_E_NOTFOUND ? "no instance up (or no such route rule)"
		                                : "invalid route rule id");
	cl_svc_release(s);
	return rc;
}

int artemis_subscribe(artemis_client_t *c, const char *service_id, artemis_change_fn fn, void *arg,
                      uint64_t *id, artemis_error_t *err)
{
	cl_svc_t *s;
	cl_sub_t *sub;
	int rc;

	if (id)
		*id = 0;
	rc = disc__begin(c, service_id, fn != NULL, "callback", &s, err);
	if (rc < 0)
		return rc;
	cl_svc_release(s);
	sub = calloc(1, sizeof(*sub));
	if (sub == NULL || (sub->service = cl_strdup(service_id)) == NULL) {
		free(sub);
		return cl_err(err, ARTEMIS_E_NOMEM, "out of memory");
	}
	sub->fn = fn;
	sub->arg = arg;
	pthread_mutex_lock(&c->lock);
	sub->id = ++c->disc.next_sub;
	sub->next = c->disc.subs;
	c->disc.subs = sub;
	pthread_mutex_unlock(&c->lock);
	if (id)
		*id = sub->id;
	return 0;
}

int artemis_unsubscribe(artemis_client_t *c, uint64_t id)
{
	cl_sub_t **pp, *s = NULL;

	if (c == NULL || id == 0)
		return ARTEMIS_E_INVAL;
	pthread_mutex_lock(&c->lock);
	for (pp = &c->disc.subs; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			s = *pp;
			*pp = s->next;
			break;
		}
	}
	/* its callback running elsewhere: wait, so none runs after we return */
	while (s && c->disc.running == id && !pthread_equal(c->disc.cb_thread, pthread_self()))
		pthread_cond_wait(&c->disc.done_cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
	if (s == NULL)
		return ARTEMIS_E_NOTFOUND;
	free(s->service);
	free(s);
	return 0;
}

/*
 * ws_push.c - change push to WebSocket subscribers (API.md §3, §A).
 *
 * Subscriptions: an instance-change session sends one DiscoveryConfig per
 * service it wants; the subscribe alias names one service in its path; an
 * all-instance-change session gets everything.  Matching is by the exact-
 * case serviceId (Java's sessions map), so this worker keeps a hash of
 * topics, one per serviceId with subscribers here, each listing its
 * sessions; a session lists its topics so that freeing it is cheap.
 *
 * The follower: while this worker has at least one change or all-change
 * session, a timer every WS_PUSH_POLL_MS reads the region's change log from
 * the worker's own cursor (shm_changes_next).  Every change, local or
 * replicated from a peer, becomes one InstanceChange message
 * {"instance":{..},"changeType":"new|delete|reload","changeTime":ms},
 * framed once and written to each matching session.  A message larger
 * than the Java client's 8 KB buffer (an instance with big metadata) is
 * sent as a `reload` of its service instead (the marker of API.md §1.5),
 * which makes the client look the service up.  A worker overrun by the log
 * (-EOVERFLOW) has lost changes: it sends `reload` for every subscribed
 * service, and to all-change sessions for every service in the registry.
 * /ws sessions (ws_events.c) get every change as an event.  The messages
 * written are counted (artemis_push_messages_total: per change, the
 * sessions it reached).
 * A `new` of an instance operated down is not pushed (API.md §4.4, Java's
 * ManagementNotificationFilter); `delete` and `reload` always are.  The
 * management notices (pull-out `delete`, pull-in `new`, zone `reload`)
 * arrive through the same log.
 *
 * Runs on the worker's event loop only; never frees a session (ws.c does,
 * from its reap event, after calling ws_push_detach).
 */
#include "ws_int.h"

#include "artemis/codec.h"
#include "metrics.h"

#include "artemis/clock.h"
#include "artemis/log.h"
#include "artemis/mgmt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define WS_PUSH_POLL_MS      2    /* DESIGN.md §3: a short timer; p99 push latency budget 10 ms */
#define WS_PUSH_BATCH        4096 /* changes per tick at most; the rest on the next tick */
#define WS_TOPICS_MIN        256
#define WS_MAX_SUBSCRIPTIONS 4096 /* per session; more are ignored (docs/API-NOTES.md) */
#define WS_PEERS_POLL_MS     250  /* /ws sessions: how often the peers' states are compared */

struct ws_topic {
	ws_topic_t *next; /* hash chain */
	uint64_t hash;
	ws_session_t **subs;
	uint32_t nsubs, cap;
	uint32_t len;
	char name[]; /* exact case, NUL-terminated */
};

static struct {
	struct event_base *base;
	shm_t *shm;
	ws_topic_t **buckets;
	uint32_t nbuckets, ntopics;
	ws_session_t **all; /* all-instance-change sessions */
	uint32_t nall, all_cap;
	ws_session_t **events; /* /ws sessions (ws_events.c) */
	uint32_t nevents, events_cap;
	uint64_t peers_checked_ms;
	unsigned attached; /* change + all-change sessions */
	bool armed;
	struct event ev_tick;
	shm_cursor_t cur;
	buf_t json, msg;
	bool overflow_logged;
} P;

/* ---- Topics ----------------------------------------------------------------- */

static ws_topic_t *ws__topic_find(const char *name, size_t len, uint64_t h)
{
	if (P.nbuckets == 0)
		return NULL;
	for (ws_topic_t *t = P.buckets[h & (P.nbuckets - 1)]; t; t = t->next)
		if (t->hash == h && t->len == len && memcmp(t->name, name, len) == 0)
			return t;
	return NULL;
}

static int ws__topics_grow(void)
{
	uint32_t n = P.nbuckets ? P.nbuckets * 2 : WS_TOPICS_MIN;
	ws_topic_t **b = calloc(n, sizeof(ws_topic_t *));

	if (b == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < P.nbuckets; i++) {
		ws_topic_t *t = P.buckets[i], *next;
		for (; t; t = next) {
			next = t->next;
			t->next = b[t->hash & (n - 1)];
			b[t->hash & (n - 1)] = t;
		}
	}
	free(P.buckets);
	P.buckets = b;
	P.nbuckets = n;
	return 0;
}

static ws_topic_t *ws__topic_get(const char *name, size_t len)
{
	uint64_t h = XXH3_64bits(name, len);
	ws_topic_t *t = ws__topic_find(name, len, h);

	if (t != NULL)
		return t;
	if (P.ntopics >= P.nbuckets && ws__topics_grow() < 0)
		return NULL;
	t = calloc(1, sizeof(*t) + len + 1);
	if (t == NULL)
		return NULL;
	t->hash = h;
	t->len = (uint32_t)len;
	memcpy(t->name, name, len);
	t->next = P.buckets[h & (P.nbuckets - 1)];
	P.buckets[h & (P.nbuckets - 1)] = t;
	P.ntopics++;
	return t;
}

static void ws__topic_drop(ws_topic_t *t)
{
	ws_topic_t **pp = &P.buckets[t->hash & (P.nbuckets - 1)];

	while (*pp != t)
		pp = &(*pp)->next;
	*pp = t->next;
	P.ntopics--;
	free(t->subs);
	free(t);
}

/* Append p to a growable pointer array. */
static int ws__ptr_push(void ***arr, uint32_t *n, uint32_t *cap, void *p)
{
	if (*n == *cap) {
		uint32_t c = *cap ? *cap * 2 : 2;
		void **a = realloc(*arr, c * sizeof(*a));
		if (a == NULL)
			return -ENOMEM;
		*arr = a;
		*cap = c;
	}
	(*arr)[(*n)++] = p;
	return 0;
}

static void ws__ptr_remove(void **arr, uint32_t *n, const void *p)
{
	for (uint32_t i = 0; i < *n; i++) {
		if (arr[i] == p) {
			arr[i] = arr[--*n];
			return;
		}
	}
}

int ws_push_subscribe(ws_session_t *s, const char *service, size_t len)
{
	ws_topic_t *t;

	if (len == 0 || len > SHM_MAX_SERVICE)
		return 0; /* no such service can exist: nothing to push */
	t = ws__topic_get(service, len);
	if (t == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->ntopics; i++)
		if (s->topics[i] == t)
			return 0; /* subscribed already */
	if (s->ntopics >= WS_MAX_SUBSCRIPTIONS)
		return 0;
	if (ws__ptr_push((void ***)&s->topics, &s->ntopics, &s->topics_cap, t) < 0)
		goto fail;
	if (ws__ptr_push((void ***)&t->subs, &t->nsubs, &t->cap, s) < 0) {
		s->ntopics--;
		goto fail;
	}
	return 0;
fail:
	if (t->nsubs == 0)
		ws__topic_drop(t);
	return -ENOMEM;
}

void ws_push_on_text(ws_session_t *s, char *msg, size_t len)
{
	json_t *root = json_loadb(msg, len, 0, NULL);
	json_t *id = json_is_object(root) ? json_member(root, "serviceid") : NULL;

	/* Java logs and drops a DiscoveryConfig it cannot read; no answer. */
	if (json_is_string(id) &&
	    ws_push_subscribe(s, json_string_value(id), json_string_length(id)) < 0)
		ws_session_close(s, WS_CLOSE_INTERNAL, "out of memory");
	json_decref(root);
}

/* ---- Sessions ----------------------------------------------------------------- */

static void ws__on_tick(evutil_socket_t fd, short what, void *arg);

int ws_push_attach(ws_session_t *s)
{
	if (s->attached)
		return 0;
	if (s->kind == WS_KIND_ALL && ws__ptr_push((void ***)&P.all, &P.nall, &P.all_cap, s) < 0)
		return -ENOMEM;
	if (s->kind == WS_KIND_EVENTS) {
		if (P.nevents == 0)
			ws_events_start(P.shm);
		if (ws__ptr_push((void ***)&P.events, &P.nevents, &P.events_cap, s) < 0)
			return -ENOMEM;
	}
	if (P.attached++ == 0 && !P.armed) {
		struct timeval tv = {0, WS_PUSH_POLL_MS * 1000};
		/* Only changes from now on: nobody was here to want older ones. */
		shm_cursor_init(P.shm, &P.cur);
		event_add(&P.ev_tick, &tv);
		P.armed = true;
	}
	s->attached = true;
	return 0;
}

void ws_push_detach(ws_session_t *s)
{
	if (!s->attached)
		return;
	s->attached = false;
	for (uint32_t i = 0; i < s->ntopics; i++) {
		ws_topic_t *t = s->topics[i];
		ws__ptr_remove((void **)t->subs, &t->nsubs, s);
		if (t->nsubs == 0)
			ws__topic_drop(t);
	}
	free(s->topics);
	s->topics = NULL;
	s->ntopics = s->topics_cap = 0;
	if (s->kind == WS_KIND_ALL)
		ws__ptr_remove((void **)P.all, &P.nall, s);
	if (s->kind == WS_KIND_EVENTS) {
		ws__ptr_remove((void **)P.events, &P.nevents, s);
		if (P.nevents == 0)
			ws_events_stop();
	}
	if (P.attached > 0 && --P.attached == 0 && P.armed) {
		event_del(&P.ev_tick);
		P.armed = false;
	}
}

/* ---- Messages ------------------------------------------------------------------- */

static const char *ws__type_name(uint8_t type)
{
	switch (type) {
	case SHM_CHANGE_NEW:
		return "new";
	case SHM_CHANGE_DELETE:
		return "delete";
	default:
		return "reload";
	}
}

/* The reload marker of API.md §1.5 for a service. */
static int ws__put_reload(buf_t *b, const char *service, uint64_t time_ms)
{
	json_instance_t in;
	int rc;

	memset(&in, 0, sizeof(in));
	in.service = (shm_str_t){service, strlen(service)};
	in.instance = (shm_str_t){"reload", 6};
	in.ip = (shm_str_t){"0.0.0.0", 7};
	buf_reset(&P.json);
	json_put_raw(&P.json, "http://");
	buf_append(&P.json, service, strlen(service));
	json_put_raw(&P.json, "/reload");
	if ((rc = buf_error(&P.json)) < 0)
		return rc;
	in.url = (shm_str_t){P.json.data, P.json.len};
	json_put_raw(b, "{\"instance\":");
	if ((rc = json_instance_encode(&in, b)) < 0)
		return rc;
	json_put_raw(b, ",\"changeType\":\"reload\",\"changeTime\":");
	json_put_u64(b, time_ms);
	json_put_raw(b, "}");
	return buf_error(b);
}

/* The InstanceChange text of one change into P.msg (header room first). */
static int ws__build(const shm_change_t *ch, const buf_t *json)
{
	buf_reset(&P.msg);
	if (ch->type != SHM_CHANGE_RELOAD && json->len > 0) {
		json_put_raw(&P.msg, "{\"instance\":");
		buf_append(&P.msg, json->data, json->len);
		json_put_raw(&P.msg, ",\"changeType\":\"");
		json_put_raw(&P.msg, ws__type_name(ch->type));
		json_put_raw(&P.msg, "\",\"changeTime\":");
		json_put_u64(&P.msg, ch->time_ms);
		json_put_raw(&P.msg, "}");
		if (!buf_error(&P.msg) && P.msg.len <= WS_CLIENT_MESSAGE_MAX)
			return 0;
		buf_reset(&P.msg);
	}
	/* A reload, a change without its instance, or one too large for the
	 * client's buffer: make it look the service up. */
	return ws__put_reload(&P.msg, ch->service, ch->time_ms);
}

static void ws__fanout(ws_session_t *const *subs, uint32_t n)
{
	uint8_t hdr[WS_FRAME_HDR_MAX];
	size_t hlen = ws_frame_header(hdr, WS_OP_TEXT, P.msg.len);

	for (uint32_t i = 0; i < n; i++)
		ws_session_send_frame(subs[i], hdr, hlen, P.msg.data, P.msg.len);
	metrics_push(n);
}

static void ws__push_change(const shm_change_t *ch, const buf_t *json)
{
	ws_topic_t *t = NULL;

	if (P.ntopics > 0) {
		size_t len = strlen(ch->service);
		t = ws__topic_find(ch->service, len, XXH3_64bits(ch->service, len));
	}
	if ((t == NULL || t->nsubs == 0) && P.nall == 0)
		return;
	if (ch->type == SHM_CHANGE_NEW && json->len > 0 && mgmt_down(P.shm, ch->tags) != 0)
		return; /* operated down (or the projection busy: the client re-reads) */
	if (ws__build(ch, json) < 0)
		return;
	if (t != NULL)
		ws__fanout(t->subs, t->nsubs);
	ws__fanout(P.all, P.nall);
}

/* ---- Overrun ------------------------------------------------------------------- */

static void ws__reload_to(const char *service, ws_session_t *const *subs, uint32_t n)
{
	buf_reset(&P.msg);
	if (n > 0 && ws__put_reload(&P.msg, service, clock_wall_ms()) == 0)
		ws__fanout(subs, n);
}

static int ws__reload_all_cb(void *ctx, const char *service, size_t len,
                             const shm_service_info_t *info)
{
	(void)ctx;
	(void)len;
	(void)info;
	ws__reload_to(service, P.all, P.nall);
	return 0;
}

static void ws__overrun(void)
{
	if (!P.overflow_logged) {
		log_warn("%s: the change log overran this worker's push cursor: sending reload "
		         "for every subscribed service",
		         __func__);
		P.overflow_logged = true;
	}
	for (uint32_t b = 0; b < P.nbuckets; b++)
		for (ws_topic_t *t = P.buckets[b]; t; t = t->next)
			ws__reload_to(t->name, t->subs, t->nsubs);
	if (P.nall > 0)
		shm_services_foreach(P.shm, ws__reload_all_cb, NULL);
}

/* ---- The follower ---------------------------------------------------------------- */

static void ws__on_tick(evutil_socket_t fd, short what, void *arg)
{
	shm_change_t ch;

	(void)fd;
	(void)what;
	(void)arg;
	for (unsigned i = 0; i < WS_PUSH_BATCH && P.attached > 0; i++) {
		int rc;

		buf_reset(&P.json); /* shm_changes_next appends */
		rc = shm_changes_next(P.shm, &P.cur, &ch, &P.json);
		if (rc == -EOVERFLOW || rc == -EIO) { /* lost changes (overrun, corrupt) */
			ws__overrun();
			continue;
		}
		if (rc < 0)
			break; /* -EAGAIN: nothing new; -EBUSY/-ENOMEM: next tick */
		ws__push_change(&ch, &P.json);
		if (P.nevents > 0)
			ws_events_change(P.shm, &ch, &P.json, P.events, P.nevents);
	}
	if (P.nevents > 0 && clock_mono_coarse_ms() >= P.peers_checked_ms + WS_PEERS_POLL_MS) {
		P.peers_checked_ms = clock_mono_coarse_ms();
		ws_events_peers(P.shm, P.events, P.nevents);
	}
}

int ws_push_init(struct event_base *base, shm_t *shm)
{
	memset(&P, 0, sizeof(P));
	P.base = base;
	P.shm = shm;
	event_assign(&P.ev_tick, base, -1, EV_PERSIST, ws__on_tick, NULL);
	return 0;
}

void ws_push_shutdown(void)
{
	if (P.armed)
		event_del(&P.ev_tick);
	P.armed = false;
	for (uint32_t b = 0; b < P.nbuckets; b++) {
		ws_topic_t *t = P.buckets[b], *next;
		for (; t; t = next) {
			next = t->next;
			free(t->subs);
			free(t);
		}
	}
	free(P.buckets);
	free(P.all);
	free(P.events);
	ws_events_stop();
	buf_free(&P.json);
	buf_free(&P.msg);
	memset(&P, 0, sizeof(P));
}

/*
 * ws_events.c - GET /ws, the Rust rewrite's event socket (MANAGEMENT.md
 * §3.3): {"type":"ping"} is answered {"type":"pong"}, and every change is
 * pushed as {"event", "data", "timestamp"}:
 *
 *   instance.registered / instance.unregistered   a registration, an
 *       unregister or expiry (data: serviceId, instance)
 *   service.registered / service.unregistered     a service's first
 *       instance / its last one gone (data: serviceId)
 *   instance.status_changed   a pull-out or pull-in (data: serviceId,
 *       instance, status "down"|"up"); a zone change names every instance of
 *       each service it touched, with its status now
 *   cluster.node_added / cluster.node_removed     a peer came up / went
 *       away (data: nodeId, url, zoneId, status)
 *
 * Driven by ws_push.c's follower of the change log, in the worker's loop;
 * the state (services seen, peers' states) is this worker's and exists only
 * while it has /ws sessions.  Unlike Java's push this socket shows what the
 * console shows: registrations of instances operated down are events too.
 */
#include "ws_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "artemis/clock.h"
#include "artemis/codec.h"
#include "artemis/mgmt.h"

static struct {
	bool started;
	uint64_t *seen; /* services with instances, by XXH3 of the name (0 = empty) */
	uint32_t mask, count;
	uint8_t peer_state[SHM_MAX_NODES];
	buf_t msg;
} E;

/* ---- The set of services seen ------------------------------------------------ */

static uint64_t name_hash(const char *s)
{
	uint64_t h = XXH3_64bits(s, strlen(s));
	return h ? h : 1;
}

static bool seen_has(uint64_t h, uint32_t *at)
{
	for (uint32_t i = (uint32_t)h & E.mask;; i = (i + 1) & E.mask) {
		if (E.seen[i] == h || E.seen[i] == 0) {
			*at = i;
			return E.seen[i] == h;
		}
	}
}

static void seen_add(uint64_t h)
{
	uint32_t at;
	if (E.seen == NULL || seen_has(h, &at))
		return;
	if ((E.count + 1) * 2 > E.mask + 1) {
		uint32_t cap = (E.mask + 1) * 2;
		uint64_t *old = E.seen, omask = E.mask;
		E.seen = calloc(cap, sizeof(uint64_t));
		if (E.seen == NULL) {
			E.seen = old;
			return;
		}
		E.mask = cap - 1;
		for (uint32_t i = 0; i <= omask; i++)
			if (old[i] && !seen_has(old[i], &at))
				E.seen[at] = old[i];
		free(old);
		seen_has(h, &at);
	}
	E.seen[at] = h;
	E.count++;
}

/* Removal by rehashing the cluster after the slot (linear probing). */
static void seen_del(uint64_t h)
{
	uint32_t at;
	if (E.seen == NULL || !seen_has(h, &at))
		return;
	E.seen[at] = 0;
	E.count--;
	for (uint32_t i = (at + 1) & E.mask; E.seen[i]; i = (i + 1) & E.mask) {
		uint64_t v = E.seen[i];
		uint32_t to;
		E.seen[i] = 0;
		seen_has(v, &to);
		E.seen[to] = v;
	}
}

static int seen_service(void *ctx, const char *service, size_t len, const shm_service_info_t *info)
{
	(void)ctx;
	(void)len;
	(void)info;
	seen_add(name_hash(service));
	return 0;
}

void ws_events_start(shm_t *shm)
{
	ws_events_stop();
	E.mask = 255;
	E.seen = calloc(E.mask + 1, sizeof(uint64_t));
	shm_services_foreach(shm, seen_service, NULL);
	for (int id = 1; id < SHM_MAX_NODES; id++) {
		shm_peer_t p;
		E.peer_state[id] = shm_peer_get(shm, id, &p) == 0 ? (uint8_t)p.state : 0;
	}
	E.started = true;
}

void ws_events_stop(void)
{
	free(E.seen);
	buf_free(&E.msg);
	memset(&E, 0, sizeof(E));
}

/* ---- Messages ----------------------------------------------------------------------- */

static void send_all(ws_session_t *const *subs, uint32_t n)
{
	uint8_t hdr[WS_FRAME_HDR_MAX];
	size_t hlen;

	if (buf_error(&E.msg))
		return;
	hlen = ws_frame_header(hdr, WS_OP_TEXT, E.msg.len);
	for (uint32_t i = 0; i < n; i++)
		ws_session_send_frame(subs[i], hdr, hlen, E.msg.data, E.msg.len);
}

/* {"event":name,"data": ... (the caller writes data, then event_end) */
static void event_begin(const char *name)
{
	buf_reset(&E.msg);
	json_put_raw(&E.msg, "{\"event\":");
	json_put_cstr(&E.msg, name);
	json_put_raw(&E.msg, ",\"data\":");
}

static void event_end(uint64_t time_ms, ws_session_t *const *subs, uint32_t n)
{
	json_put_raw(&E.msg, ",\"timestamp\":");
	json_put_u64(&E.msg, time_ms);
	json_put_raw(&E.msg, "}");
	send_all(subs, n);
}

static void service_event(const char *name, const char *service, uint64_t t,
                          ws_session_t *const *subs, uint32_t n)
{
	event_begin(name);
	json_put_raw(&E.msg, "{\"serviceId\":");
	json_put_cstr(&E.msg, service);
	json_put_raw(&E.msg, "}");
	event_end(t, subs, n);
}

static void instance_event(const char *name, const char *service, const char *json, size_t len,
                           const char *status, uint64_t t, ws_session_t *const *subs, uint32_t n)
{
	event_begin(name);
	json_put_raw(&E.msg, "{\"instance\":");
	if (len)
		buf_append(&E.msg, json, len);
	else
		json_put_raw(&E.msg, "null");
	json_put_raw(&E.msg, ",\"serviceId\":");
	json_put_cstr(&E.msg, service);
	if (status) {
		json_put_raw(&E.msg, ",\"status\":");
		json_put_cstr(&E.msg, status);
	}
	json_put_raw(&E.msg, "}");
	event_end(t, subs, n);
}

typedef struct {
	shm_t *shm;
	const char *service;
	uint64_t time_ms;
	ws_session_t *const *subs;
	uint32_t n;
} zone_walk_t;

static int zone_instance(void *ctx, const shm_instance_view_t *v, const char *json, size_t len)
{
	zone_walk_t *z = ctx;
	int down = mgmt_down(z->shm, v->tags);
	instance_event("instance.status_changed", z->service, json, len, down > 0 ? "down" : "up",
	               z->time_ms, z->subs, z->n);
	return 0;
}

void ws_events_change(shm_t *shm, const shm_change_t *ch, const buf_t *json,
                      ws_session_t *const *subs, uint32_t n)
{
	bool mgmt = ch->origin == SHM_ORIGIN_MGMT;
	uint64_t h = name_hash(ch->service);
	shm_service_info_t info;

	if (!E.started || n == 0)
		return;
	if (mgmt && ch->type == SHM_CHANGE_RELOAD) {
		zone_walk_t z = {shm, ch->service, ch->time_ms, subs, n};
		shm_str_t name = {ch->service, strlen(ch->service)};
		shm_instances_foreach(shm, &name, 0, zone_instance, &z);
		return;
	}
	if (ch->type == SHM_CHANGE_RELOAD)
		return; /* a resynchronisation marker: nothing happened to report */
	if (mgmt) {
		instance_event("instance.status_changed", ch->service, json->data, json->len,
		               ch->type == SHM_CHANGE_DELETE ? "down" : "up", ch->time_ms, subs, n);
		return;
	}
	uint32_t at;
	if (ch->type == SHM_CHANGE_NEW) {
		if (!seen_has(h, &at)) {
			seen_add(h);
			service_event("service.registered", ch->service, ch->time_ms, subs, n);
		}
		instance_event("instance.registered", ch->service, json->data, json->len, NULL,
		               ch->time_ms, subs, n);
		return;
	}
	instance_event("instance.unregistered", ch->service, json->data, json->len, NULL,
	               ch->time_ms, subs, n);
	if (shm_service_info(shm, (shm_str_t){ch->service, strlen(ch->service)}, &info) ==
	        -ENOENT &&
	    seen_has(h, &at)) {
		seen_del(h);
		service_event("service.unregistered", ch->service, ch->time_ms, subs, n);
	}
}

void ws_events_peers(shm_t *shm, ws_session_t *const *subs, uint32_t n)
{
	static const char *const states[] = {"unknown", "starting", "up", "down"};

	if (!E.started)
		return;
	for (int id = 1; id < SHM_MAX_NODES; id++) {
		shm_peer_t p;
		if (shm_peer_get(shm, id, &p) != 0)
			continue;
		bool was_up = E.peer_state[id] == SHM_PEER_UP, is_up = p.state == SHM_PEER_UP;
		E.peer_state[id] = (uint8_t)p.state;
		if (was_up == is_up)
			continue;
		event_begin(is_up ? "cluster.node_added" : "cluster.node_removed");
		json_put_raw(&E.msg, "{\"nodeId\":");
		json_put_cstr(&E.msg, p.name);
		json_put_raw(&E.msg, ",\"status\":");
		json_put_cstr(&E.msg, p.state <= SHM_PEER_DOWN ? states[p.state] : "unknown");
		json_put_raw(&E.msg, ",\"url\":");
		json_put_cstr(&E.msg, p.url);
		json_put_raw(&E.msg, ",\"zoneId\":");
		json_put_cstr(&E.msg, p.zone);
		json_put_raw(&E.msg, "}");
		event_end(clock_wall_ms(), subs, n);
	}
}

void ws_events_on_text(ws_session_t *s, char *msg, size_t len)
{
	json_t *root = json_loadb(msg, len, 0, NULL);
	json_t *type = json_is_object(root) ? json_member(root, "type") : NULL;
	static const char pong[] = "{\"type\":\"pong\"}";

	if (json_is_string(type) && strcmp(json_string_value(type), "ping") == 0)
		ws_session_send(s, WS_OP_TEXT, pong, sizeof(pong) - 1);
	json_decref(root);
}

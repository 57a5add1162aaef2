/*
 * snapshot.c - whole-registry and per-service record streams, and the
 * sweep that makes the receiver's copy match them.
 *
 * A snapshot is SNAP_BEGIN(head, complete), one RECORD per live instance
 * this node holds (whatever its origin: a restarted peer gets back what it
 * had, as Java's bootstrap imports everything), SNAP_END(head).  The
 * records are sent service by service as the connection drains (the
 * sender's tick and write callback continue it); the change stream, the
 * renewals and the digests to that peer wait until SNAP_END.  The
 * sender's cursor is moved to the head first, so what changes during the
 * walk is streamed after it (a record sent twice is harmless).  A snapshot
 * is `complete` only from a node that is up; a starting node's is applied
 * but neither sweeps nor bootstraps anyone.
 *
 * The sweep: after a complete snapshot from peer P (or P's answer to a
 * PULL of one service), every instance stored with origin P that the
 * stream did not refresh since the mark was removed at P in the meantime:
 * it is unregistered here (origin P, so it is not forwarded).
 *
 * Memory: at most REPL_OUT_HIGH plus one service's records are queued.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "artemis/log.h"
#include "repl.h"

int repl_record_send(repl_conn_t *c, uint64_t origin_ms, const char *json, size_t len)
{
	repl_enc_t *e = &c->r->enc;
	int rc = repl_enc_begin(e, REPL_RECORD, 2);

	rc = rc ? rc : repl_enc_u(e, origin_ms);
	rc = rc ? rc : repl_enc_s(e, json, len);
	return rc ? rc : repl_send(c, e);
}

typedef struct {
	repl_conn_t *c;
	uint64_t n;
	int rc;
} snap_walk_t;

static int snap__record(void *ctx, const shm_instance_view_t *view, const char *json,
                        size_t json_len)
{
	snap_walk_t *w = ctx;

	/* What Java peers replicated over HTTP they replicate to every node
	 * themselves (worker/api_replication.c). */
	if (view->evicted || view->expired || view->origin == REPL_HTTP_ORIGIN)
		return 0;
	w->rc = repl_record_send(w->c, view->origin_ms, json, json_len);
	w->n += w->rc == 0;
	return w->rc == -EPIPE; /* the connection went away */
}

static int snap__marker(repl_conn_t *c, int type, uint64_t version, int extra, uint64_t v2)
{
	repl_enc_t *e = &c->r->enc;
	int rc = repl_enc_begin(e, type, (uint32_t)(1 + extra));

	rc = rc ? rc : repl_enc_u(e, version);
	if (extra)
		rc = rc ? rc : repl_enc_u(e, v2);
	return rc ? rc : repl_send(c, e);
}

static int snap__service_name(void *ctx, const char *service, size_t len,
                              const shm_service_info_t *info)
{
	shm_buf_t *b = ctx;

	(void)info;
	return shm_buf_append(b, service, len) < 0 || shm_buf_append(b, "", 1) < 0;
}

static void snap__done(repl_conn_t *c)
{
	c->snapshotting = false;
	shm_buf_free(&c->snap_services);
	c->snap_off = 0;
}

/* The records go out one service at a time, as the connection drains, so
 * a large registry is never queued whole. */
int repl_snapshot_send(repl_conn_t *c)
{
	repl_t *r = c->r;

	snap__done(c);
	c->snap_complete = shm_node_state(r->shm) == SHM_NODE_UP;
	c->snap_count = 0;
	shm_cursor_init(r->shm, &c->cur);
	c->snap_head = c->cur.next - 1;
	int rc = snap__marker(c, REPL_SNAP_BEGIN, c->snap_head, 1, c->snap_complete);
	if (rc == 0 && shm_services_foreach(r->shm, snap__service_name, &c->snap_services) != 0)
		rc = -ENOMEM;
	if (rc < 0) {
		log_warn("peer %s: snapshot not sent: %s", repl_peer_name(r, c->peer),
		         strerror(-rc));
		snap__done(c);
		repl_conn_close(c, "snapshot failed");
		return rc;
	}
	c->snapshotting = true;
	repl_snapshot_continue(c);
	return 0;
}

bool repl_snapshot_continue(repl_conn_t *c)
{
	repl_t *r = c->r;
	int rc = 0;

	if (!c->snapshotting || c->dead)
		return false;
	while (rc == 0 && c->snap_off < c->snap_services.len && !repl_conn_busy(c)) {
		const char *name = c->snap_services.data + c->snap_off;
		shm_str_t service = {name, strlen(name)};
		snap_walk_t w = {c, 0, 0};
		c->snap_off += service.len + 1;
		rc = shm_instances_foreach(r->shm, &service, shm_now_ms(), snap__record, &w);
		if (rc == -ENOENT)
			rc = 0; /* emptied since the list was taken */
		rc = rc ? rc : w.rc;
		c->snap_count += w.n;
	}
	if (rc == 0 && c->snap_off >= c->snap_services.len)
		rc = snap__marker(c, REPL_SNAP_END, c->snap_head, 0, 0);
	else if (rc == 0)
		return true;
	if (rc < 0) {
		log_warn("peer %s: snapshot not sent: %s", repl_peer_name(r, c->peer),
		         strerror(-rc));
		snap__done(c);
		repl_conn_close(c, "snapshot failed");
		return false;
	}
	log_info("peer %s: sent a %s snapshot of %llu instances (version %llu)",
	         repl_peer_name(r, c->peer), c->snap_complete ? "complete" : "partial (starting)",
	         (unsigned long long)c->snap_count, (unsigned long long)c->snap_head);
	snap__done(c);
	return false;
}

int repl_records_send(repl_conn_t *c, shm_str_t service)
{
	repl_t *r = c->r;
	snap_walk_t w = {c, 0, 0};
	repl_enc_t *e = &r->enc;
	int rc = shm_instances_foreach(r->shm, &service, shm_now_ms(), snap__record, &w);

	if (rc < 0 && rc != -ENOENT)
		return rc;
	rc = repl_enc_begin(e, REPL_PULL_END, 1);
	rc = rc ? rc : repl_enc_s(e, service.ptr, service.len);
	return rc ? rc : repl_send(c, e);
}

/* ---- Sweep ------------------------------------------------------------------ */

typedef struct {
	uint8_t origin;
	uint64_t mark_ms;
	shm_buf_t texts; /* JSON of each candidate, NUL-separated */
	size_t n;
	int rc;
} sweep_t;

static int sweep__collect(void *ctx, const shm_instance_view_t *view, const char *json,
                          size_t json_len)
{
	sweep_t *s = ctx;

	if (view->origin != s->origin || view->evicted || view->renewal_ms >= s->mark_ms)
		return 0;
	if (shm_buf_append(&s->texts, json, json_len) < 0 || shm_buf_append(&s->texts, "", 1) < 0) {
		s->rc = -ENOMEM;
		return 1;
	}
	s->n++;
	return 0;
}

void repl_sweep(repl_t *r, int peer, const shm_str_t *service, uint64_t mark_ms)
{
	repl_peer_t *p = &r->peers[peer];
	sweep_t s;
	size_t removed = 0;

	memset(&s, 0, sizeof(s));
	s.origin = (uint8_t)p->id;
	s.mark_ms = mark_ms;
	/* Collect first, write after: no write path runs inside the walk. */
	shm_instances_foreach(r->shm, service, shm_now_ms(), sweep__collect, &s);
	for (size_t off = 0; off < s.texts.len;) {
		const char *json = s.texts.data + off;
		size_t len = strlen(json);
		shm_instance_in_t si;
		off += len + 1;
		if (instance_parse(r->parser, json, len, &si, NULL) == 0 &&
		    shm_unregister(r->shm, &si.key, (uint8_t)p->id) == 0)
			removed++;
	}
	shm_buf_free(&s.texts);
	if (removed)
		log_info("peer %s: removed %zu instances it no longer holds%s%.*s", p->cfg->name,
		         removed, service ? " in service " : "", service ? (int)service->len : 0,
		         service ? service->ptr : "");
}

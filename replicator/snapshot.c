/*
 * snapshot.c - whole-registry and per-service record streams, and the
 * sweep that makes the receiver's copy match them.
 *
 * A snapshot is SNAP_BEGIN(head, complete), one RECORD per live instance
 * this node holds (whatever its origin: a restarted peer gets back what it
 * had, as Java's bootstrap imports everything), SNAP_END(head).  The
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
 * The records are queued in memory (about the registry's JSON size); the
 * REPL_OUT_HIGH limit applies to the stream that follows.
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

int repl_snapshot_send(repl_conn_t *c)
{
	repl_t *r = c->r;
	snap_walk_t w = {c, 0, 0};
	bool complete = shm_node_state(r->shm) == SHM_NODE_UP;

	shm_cursor_init(r->shm, &c->cur);
	uint64_t head = c->cur.next - 1;
	int rc = snap__marker(c, REPL_SNAP_BEGIN, head, 1, complete);
	if (rc == 0)
		rc = shm_instances_foreach(r->shm, NULL, shm_now_ms(), snap__record, &w);
	if (rc == 0)
		rc = snap__marker(c, REPL_SNAP_END, head, 0, 0);
	if (rc < 0) {
		log_warn("peer %s: snapshot not sent: %s", repl_peer_name(r, c->peer),
		         strerror(-rc));
		repl_conn_close(c, "snapshot failed");
		return rc;
	}
	log_info("peer %s: sent a %s snapshot of %llu instances (version %llu)",
	         repl_peer_name(r, c->peer), complete ? "complete" : "partial (starting)",
	         (unsigned long long)w.n, (unsigned long long)head);
	return 0;
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

/*
 * snapshot.c - whole-registry and per-service record streams, and the
 * sweep that makes the receiver's copy match them.
 *
 * A snapshot is SNAP_BEGIN(head, complete), one RECORD per live instance
 * this node holds (whatever its origin: a restarted peer gets back what it
 * had, as Java's bootstrap imports everything), SNAP_END(head), sent in
 * installments of one walk of the registry: the walk stops while the
 * connection's output is above REPL_OUT_HIGH and goes on at the next tick
 * (sender.c), so a snapshot holds at most that much memory per peer.  The
 * sender's cursor is moved to the head first, so what changes during the
 * walk is streamed after SNAP_END (a record sent twice is harmless); the
 * stream, renewals and pull answers wait until then.  A snapshot
 * is `complete` only from a node that is up; a starting node's is applied
 * but neither sweeps nor bootstraps anyone.
 *
 * The sweep: after a complete snapshot from peer P (or P's answer to a
 * PULL of one service), every instance stored with origin P that the
 * stream did not refresh since the mark was removed at P in the meantime:
 * it is unregistered here (origin P, so it is not forwarded).
 *
 * PULLs that arrive together are served by one walk, and their sweeps done
 * by another: shm_instances_foreach visits every slot whatever the
 * service, so a walk per service would cost services x instances.
 *
 * Memory: REPL_OUT_HIGH (8 MiB) plus one record per peer being sent a
 * snapshot, whatever the registry's size.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "artemis/clock.h"
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
	bool pause; /* stop when the output is full (a snapshot's installments) */
} snap_walk_t;

#define SNAP_PAUSED 2 /* the walk stopped for the socket to drain */

static int snap__record(void *ctx, const shm_instance_view_t *view, const char *json,
                        size_t json_len)
{
	snap_walk_t *w = ctx;

	/* What Java peers replicated over HTTP they replicate to every node
	 * themselves (worker/api_replication.c). */
	if (view->evicted || view->expired || view->origin == REPL_HTTP_ORIGIN)
		return 0;
	if (w->pause && repl_conn_busy(w->c))
		return SNAP_PAUSED;
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

	c->snap_complete = shm_node_state(r->shm) == SHM_NODE_UP;
	shm_cursor_init(r->shm, &c->cur);
	c->snap_head = c->cur.next - 1;
	c->snap_next = 0;
	c->snap_sent = 0;
	c->snap_rounds = 0;
	c->snap_active = true;
	int rc = snap__marker(c, REPL_SNAP_BEGIN, c->snap_head, 1, c->snap_complete);
	return rc ? rc : repl_snapshot_continue(c);
}

int repl_snapshot_continue(repl_conn_t *c)
{
	repl_t *r = c->r;
	snap_walk_t w = {c, 0, 0, true};

	if (!c->snap_active || repl_conn_busy(c))
		return 0;
	int rc = shm_instances_walk(r->shm, &c->snap_next, clock_wall_ms(), snap__record, &w);
	c->snap_sent += w.n;
	c->snap_rounds++;
	if (rc == SNAP_PAUSED)
		return 0;
	if (w.rc)
		rc = w.rc; /* a send failed (the walk stopped there) */
	if (rc == 0)
		rc = snap__marker(c, REPL_SNAP_END, c->snap_head, 0, 0);
	c->snap_active = false;
	if (rc != 0) {
		log_warn("peer %s: snapshot not sent: %s", repl_peer_name(r, c->peer),
		         strerror(-rc));
		repl_conn_close(c, "snapshot failed");
		return rc;
	}
	log_info("peer %s: sent a %s snapshot of %llu instances (version %llu) in %llu "
	         "installment%s",
	         repl_peer_name(r, c->peer), c->snap_complete ? "complete" : "partial (starting)",
	         (unsigned long long)c->snap_sent, (unsigned long long)c->snap_head,
	         (unsigned long long)c->snap_rounds, c->snap_rounds == 1 ? "" : "s");
	repl_pulls_flush(c); /* pulls that came meanwhile */
	return 0;
}

/* ---- Sets of service names ------------------------------------------------- */

typedef struct {
	const char **v;
	size_t n;
} snap_set_t;

static int snap__cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Index the NUL-separated names of b (sorted, for bsearch). */
static int snap__set(const buf_t *b, snap_set_t *set)
{
	size_t n = 0;

	set->v = NULL;
	set->n = 0;
	for (size_t off = 0; off < b->len; off += strlen(b->data + off) + 1)
		n++;
	if (n == 0)
		return 0;
	set->v = malloc(n * sizeof(*set->v));
	if (set->v == NULL)
		return -ENOMEM;
	for (size_t off = 0; off < b->len; off += strlen(b->data + off) + 1)
		set->v[set->n++] = b->data + off;
	qsort(set->v, set->n, sizeof(*set->v), snap__cmp);
	return 0;
}

static bool snap__in(const snap_set_t *set, const char *service)
{
	return set == NULL || bsearch(&service, set->v, set->n, sizeof(*set->v), snap__cmp);
}

static void snap__add(buf_t *b, shm_str_t name)
{
	if (memchr(name.ptr, '\0', name.len) == NULL && buf_append(b, name.ptr, name.len) == 0)
		buf_append(b, "", 1);
}

/* ---- Pulls ------------------------------------------------------------------- */

void repl_pull_request(repl_conn_t *c, shm_str_t service)
{
	snap__add(&c->pulls, service);
}

void repl_pull_end(repl_conn_t *c, shm_str_t service)
{
	snap__add(&c->sweeps, service);
}

typedef struct {
	snap_walk_t w;
	const snap_set_t *set;
} pull_walk_t;

static int pull__record(void *ctx, const shm_instance_view_t *view, const char *json,
                        size_t json_len)
{
	pull_walk_t *pw = ctx;

	return snap__in(pw->set, view->service) ? snap__record(&pw->w, view, json, json_len) : 0;
}

static void pull__serve(repl_conn_t *c)
{
	repl_enc_t *e = &c->r->enc;
	snap_set_t set;
	pull_walk_t pw = {{c, 0, 0, false}, &set};

	if (snap__set(&c->pulls, &set) < 0)
		return;
	shm_instances_foreach(c->r->shm, NULL, clock_wall_ms(), pull__record, &pw);
	for (size_t i = 0; i < set.n; i++) {
		int rc = repl_enc_begin(e, REPL_PULL_END, 1);
		rc = rc ? rc : repl_enc_s(e, set.v[i], strlen(set.v[i]));
		if (rc == 0)
			repl_send(c, e);
	}
	free(set.v);
}

static void repl_sweep(repl_t *r, int peer, const snap_set_t *set, uint64_t mark_ms);

void repl_pulls_flush(repl_conn_t *c)
{
	/* Pull answers go after a snapshot being sent, not inside it. */
	if (c->pulls.len && !c->snap_active) {
		pull__serve(c);
		buf_free(&c->pulls);
	}
	if (c->sweeps.len) {
		snap_set_t set;
		if (snap__set(&c->sweeps, &set) == 0) {
			repl_sweep(c->r, c->peer, &set, c->r->peers[c->peer].pull_mark_ms);
			free(set.v);
		}
		buf_free(&c->sweeps);
	}
}

/* ---- Sweep ------------------------------------------------------------------ */

typedef struct {
	uint8_t origin;
	uint64_t mark_ms;
	const snap_set_t *set; /* NULL: every service */
	buf_t texts;       /* JSON of each candidate, NUL-separated */
	size_t n;
	int rc;
} sweep_t;

static int sweep__collect(void *ctx, const shm_instance_view_t *view, const char *json,
                          size_t json_len)
{
	sweep_t *s = ctx;

	if (view->origin != s->origin || view->evicted || view->renewal_ms >= s->mark_ms ||
	    !snap__in(s->set, view->service))
		return 0;
	if (buf_append(&s->texts, json, json_len) < 0 || buf_append(&s->texts, "", 1) < 0) {
		s->rc = -ENOMEM;
		return 1;
	}
	s->n++;
	return 0;
}

static void repl_sweep(repl_t *r, int peer, const snap_set_t *set, uint64_t mark_ms)
{
	repl_peer_t *p = &r->peers[peer];
	sweep_t s;
	size_t removed = 0;

	memset(&s, 0, sizeof(s));
	s.origin = (uint8_t)p->id;
	s.mark_ms = mark_ms;
	s.set = set;
	/* Collect first, write after: no write path runs inside the walk. */
	shm_instances_foreach(r->shm, NULL, clock_wall_ms(), sweep__collect, &s);
	for (size_t off = 0; off < s.texts.len;) {
		const char *json = s.texts.data + off;
		size_t len = strlen(json);
		shm_instance_in_t si;
		off += len + 1;
		if (instance_parse(r->parser, json, len, &si, NULL) == 0 &&
		    shm_unregister(r->shm, &si.key, (uint8_t)p->id) == 0)
			removed++;
	}
	buf_free(&s.texts);
	if (removed)
		log_info("peer %s: removed %zu instances it no longer holds (%s)", p->cfg->name,
		         removed, set ? "pulled services" : "snapshot");
}

void repl_sweep_all(repl_t *r, int peer, uint64_t mark_ms)
{
	repl_sweep(r, peer, NULL, mark_ms);
}

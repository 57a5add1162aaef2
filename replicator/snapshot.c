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
 * Pull answers go the same way: the PULLs that arrived while no answer
 * was being sent are answered by one walk in installments (the records of
 * those services, then a PULL_END for each); PULLs that arrive meanwhile
 * wait for the next walk.  shm_instances_walk visits every slot whatever
 * the service, so a walk per service would cost services x instances.
 *
 * The sweep: after a complete snapshot from peer P (or P's answer to a
 * PULL of one service), every instance stored with origin P that nothing
 * refreshed since the mark (SNAP_BEGIN's arrival, or when the pull was
 * asked: antientropy.c) was removed at P in the meantime: it is
 * unregistered here (origin P, so it is not forwarded).  Each candidate is
 * looked up again right before: one a client or another peer registered
 * since the walk stays.  When the wall clock went back past a mark, that
 * sweep is skipped (its refreshes would look older than the mark).  The
 * PULL_ENDs of one read are swept by one walk, each service with its own
 * pull's mark.
 *
 * Memory: REPL_OUT_HIGH (8 MiB) plus one record per peer being sent a
 * snapshot or an answer, whatever the registry's size.
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

	repl_enc_begin(e, REPL_RECORD, 3);
	repl_enc_u(e, REPL_REC_INSTANCE);
	repl_enc_u(e, origin_ms);
	repl_enc_s(e, json, len);
	return repl_send(c, e);
}

typedef struct {
	repl_conn_t *c;
	uint64_t n;
	int rc;
	bool pause; /* stop when the output is full (a snapshot's installments) */
} snap_walk_t;

#define SNAP_PAUSED 2 /* the walk stopped for the socket to drain */

static void pull__start(repl_conn_t *c);

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

	repl_enc_begin(e, type, (uint32_t)(1 + extra));
	repl_enc_u(e, version);
	if (extra)
		repl_enc_u(e, v2);
	return repl_send(c, e);
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
	pull__start(c); /* pulls that came meanwhile */
	return 0;
}

/* ---- Sets of service names ------------------------------------------------- */

/* A sorted index of names, each with a mark (sweeps) or 0 (pulls). */
typedef struct {
	const char *name;
	uint64_t mark_ms;
} snap_item_t;

typedef struct {
	snap_item_t *v;
	size_t n;
} snap_set_t;

static int snap__cmp(const void *a, const void *b)
{
	return strcmp(((const snap_item_t *)a)->name, ((const snap_item_t *)b)->name);
}

/* Index the entries of b: NUL-terminated names, each after an 8-byte mark
 * when `marked`.  A name listed twice keeps its oldest mark. */
static int snap__set(const buf_t *b, bool marked, snap_set_t *set)
{
	size_t n = 0, skip = marked ? sizeof(uint64_t) : 0, off;

	set->v = NULL;
	set->n = 0;
	for (off = 0; off < b->len; off += skip + strlen(b->data + off + skip) + 1)
		n++;
	if (n == 0)
		return 0;
	set->v = malloc(n * sizeof(*set->v));
	if (set->v == NULL)
		return -ENOMEM;
	for (off = 0; off < b->len; off += skip + strlen(b->data + off + skip) + 1) {
		snap_item_t *it = &set->v[set->n++];
		it->mark_ms = 0;
		if (marked)
			memcpy(&it->mark_ms, b->data + off, sizeof(uint64_t));
		it->name = b->data + off + skip;
	}
	qsort(set->v, set->n, sizeof(*set->v), snap__cmp);
	size_t k = 0;
	for (size_t i = 0; i < set->n; i++) {
		if (k && strcmp(set->v[k - 1].name, set->v[i].name) == 0) {
			if (set->v[i].mark_ms < set->v[k - 1].mark_ms)
				set->v[k - 1].mark_ms = set->v[i].mark_ms;
			continue;
		}
		set->v[k++] = set->v[i];
	}
	set->n = k;
	return 0;
}

/* The item of `service` in set, or NULL. */
static const snap_item_t *snap__in(const snap_set_t *set, const char *service)
{
	snap_item_t key = {service, 0};

	return bsearch(&key, set->v, set->n, sizeof(*set->v), snap__cmp);
}

/* Append a name (one holding a NUL cannot be a service). */
static void snap__add(buf_t *b, shm_str_t name, const uint64_t *mark)
{
	if (memchr(name.ptr, '\0', name.len) != NULL)
		return;
	if (mark)
		buf_append(b, mark, sizeof(*mark));
	buf_append(b, name.ptr, name.len);
	buf_append(b, "", 1);
}

/* ---- Pull answers ------------------------------------------------------------ */

void repl_pull_request(repl_conn_t *c, shm_str_t service)
{
	snap__add(&c->pulls, service, NULL);
}

typedef struct {
	snap_walk_t w;
	snap_set_t set;
} pull_walk_t;

static int pull__record(void *ctx, const shm_instance_view_t *view, const char *json,
                        size_t json_len)
{
	pull_walk_t *pw = ctx;

	return snap__in(&pw->set, view->service) ? snap__record(&pw->w, view, json, json_len) : 0;
}

/* The next installment of the answer being sent; its PULL_ENDs at the
 * end. */
static void pull__continue(repl_conn_t *c)
{
	repl_enc_t *e = &c->r->enc;
	pull_walk_t pw = {{c, 0, 0, true}, {NULL, 0}};

	if (!c->serve_active || c->snap_active || c->dead || c->closing || repl_conn_busy(c))
		return;
	if (buf_error(&c->serving) || snap__set(&c->serving, false, &pw.set) < 0) {
		repl_conn_close(c, "out of memory");
		return;
	}
	int rc = shm_instances_walk(c->r->shm, &c->serve_next, clock_wall_ms(), pull__record, &pw);
	if (rc == SNAP_PAUSED) {
		free(pw.set.v);
		return;
	}
	for (size_t i = 0; i < pw.set.n && pw.w.rc == 0; i++) {
		repl_enc_begin(e, REPL_PULL_END, 2);
		repl_enc_u(e, REPL_REC_INSTANCE);
		repl_enc_s(e, pw.set.v[i].name, strlen(pw.set.v[i].name));
		repl_send(c, e);
	}
	free(pw.set.v);
	c->serve_active = false;
	buf_reset(&c->serving);
}

/* Start answering what was asked, unless a snapshot or an answer is being
 * sent (then it waits for the next walk). */
static void pull__start(repl_conn_t *c)
{
	if (c->snap_active || c->serve_active || c->pulls.len == 0)
		return;
	buf_t t = c->serving;
	c->serving = c->pulls;
	c->pulls = t;
	buf_reset(&c->pulls);
	c->serve_active = true;
	c->serve_next = 0;
	pull__continue(c);
}

void repl_serve_tick(repl_t *r)
{
	for (repl_conn_t *c = r->conns; c; c = c->next) {
		if (c->dead || c->hs != REPL_HS_READY)
			continue;
		pull__continue(c);
		pull__start(c);
	}
}

/* ---- Sweep ------------------------------------------------------------------ */

typedef struct {
	uint8_t origin;
	uint64_t mark_ms;      /* every service (a snapshot) */
	const snap_set_t *set; /* or these, each with its own mark */
	buf_t texts;           /* JSON of each candidate, NUL-separated */
	int rc;
} sweep_t;

static int sweep__collect(void *ctx, const shm_instance_view_t *view, const char *json,
                          size_t json_len)
{
	sweep_t *s = ctx;
	uint64_t mark = s->mark_ms;

	if (view->origin != s->origin || view->evicted)
		return 0;
	if (s->set) {
		const snap_item_t *it = snap__in(s->set, view->service);
		if (it == NULL)
			return 0;
		mark = it->mark_ms;
	}
	if (view->renewal_ms >= mark)
		return 0;
	buf_append(&s->texts, &mark, sizeof(mark));
	buf_append(&s->texts, json, json_len);
	buf_append(&s->texts, "", 1);
	if (buf_error(&s->texts)) {
		s->rc = -ENOMEM;
		return 1;
	}
	return 0;
}

/* Still from that peer and not refreshed since the mark: removed. */
static bool sweep__remove(repl_t *r, const repl_peer_t *p, const shm_key_t *key, uint64_t mark)
{
	shm_instance_view_t view;

	if (shm_lookup(r->shm, key, clock_wall_ms(), &view, NULL) != 0 || view.evicted ||
	    view.origin != p->id || view.renewal_ms >= mark)
		return false;
	return shm_unregister(r->shm, key, (uint8_t)p->id) == 0;
}

static void repl_sweep(repl_t *r, int peer, const snap_set_t *set, uint64_t mark_ms)
{
	repl_peer_t *p = &r->peers[peer];
	sweep_t s;
	size_t removed = 0;
	uint64_t now = clock_wall_ms(), oldest = mark_ms;

	for (size_t i = 0; set && i < set->n; i++)
		oldest = i == 0 || set->v[i].mark_ms < oldest ? set->v[i].mark_ms : oldest;
	if (now < oldest) {
		log_warn("peer %s: the clock went back %llu ms since its records were asked for; "
		         "nothing swept this time",
		         p->cfg->name, (unsigned long long)(oldest - now));
		return;
	}
	memset(&s, 0, sizeof(s));
	s.origin = (uint8_t)p->id;
	s.mark_ms = mark_ms;
	s.set = set;
	/* Collect first, write after: no write path runs inside the walk. */
	shm_instances_foreach(r->shm, NULL, now, sweep__collect, &s);
	for (size_t off = 0; off < s.texts.len;) {
		uint64_t mark;
		memcpy(&mark, s.texts.data + off, sizeof(mark));
		const char *json = s.texts.data + off + sizeof(mark);
		size_t len = strlen(json);
		shm_instance_in_t si;
		off += sizeof(mark) + len + 1;
		if (instance_parse(r->parser, json, len, &si, NULL) == 0 &&
		    sweep__remove(r, p, &si.key, mark))
			removed++;
	}
	buf_free(&s.texts);
	if (removed)
		log_info("peer %s: removed %zu instances it no longer holds (%s)", p->cfg->name,
		         removed, set ? "pulled services" : "snapshot");
}

void repl_sweep_add(repl_conn_t *c, shm_str_t service, uint64_t mark_ms)
{
	snap__add(&c->sweeps, service, &mark_ms);
}

void repl_pulls_flush(repl_conn_t *c)
{
	pull__start(c);
	if (c->sweeps.len == 0)
		return;
	snap_set_t set;
	if (!buf_error(&c->sweeps) && snap__set(&c->sweeps, true, &set) == 0) {
		repl_sweep(c->r, c->peer, &set, 0);
		free(set.v);
	}
	buf_reset(&c->sweeps);
}

void repl_sweep_all(repl_t *r, int peer, uint64_t mark_ms)
{
	repl_sweep(r, peer, NULL, mark_ms);
}

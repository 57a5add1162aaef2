/*
 * antientropy.c - periodic comparison of per-service digests with each
 * peer, and repair of what differs.
 *
 * A service's digest is its count of live instances and the sum of one
 * 64-bit hash per instance (XXH3 of its stored JSON, seeded with its
 * origin registration time): independent of order, equal on two nodes
 * that hold the same registrations.  Every [cluster] digest_interval_ms
 * each node sends its digest to each peer on its outbound connection,
 * after the changes queued before it; the peer compares, PULLs every
 * service that differs (or that only it has), and answers with its own
 * digest so the first node repairs itself the same way.  A pulled
 * service's records are registered as usual; what the other side no
 * longer holds is swept (snapshot.c).
 *
 * The sweep of a pulled service removes what came from that peer and was
 * not refreshed since the pull was asked (its mark): the answer refreshes
 * everything the peer held when it answered, and anything the peer
 * registered later arrives later.  Each pull keeps its own mark until its
 * PULL_END comes on the connection it was asked on (a later digest, or a
 * pull on the other connection, must not move it: that swept what an
 * earlier answer had just refreshed, issue 11); a service is pulled at
 * most once at a time from a peer; a PULL_END nobody asked is ignored.
 *
 * Each digest carries the version the sender's change stream to this node
 * has reached.  On the stream's own connection everything before it is
 * applied; a digest that arrives on the other connection (a reply) while
 * the stream from that peer is still behind it is not compared, nor one
 * from a peer that has not acknowledged every change we sent it: the
 * streams are about to deliver those differences, and pulling them too
 * would send whole services again, from the node that is behind, while a
 * load is going on.
 *
 * Only nodes that are up take part: a starting node's registry is not a
 * reference, and it is being bootstrapped anyway.
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "artemis/clock.h"
#include "artemis/log.h"
#include "repl.h"

#define AE_MAX_PULLS 1024 /* services pulled per digest, at most */
#define AE_PER_FRAME 8192 /* services per DIGEST frame */

typedef struct {
	char *name;
	uint32_t len;
	uint64_t count, hash;
	bool seen; /* listed by the peer */
} ae_svc_t;

typedef struct {
	ae_svc_t *v;
	uint32_t n, cap; /* cap: power of two, open addressing */
	int rc;
} ae_digest_t;

static uint64_t ae__h(const char *p, size_t n)
{
	return XXH3_64bits(p, n);
}

static ae_svc_t *ae__find(ae_digest_t *d, const char *name, size_t len, bool add)
{
	if (add && (d->n + 1) * 2 > d->cap) {
		uint32_t cap = d->cap ? d->cap * 2 : 256;
		ae_svc_t *v = calloc(cap, sizeof(*v));
		if (v == NULL) {
			d->rc = -1;
			return NULL;
		}
		for (uint32_t i = 0; i < d->cap; i++) {
			if (d->v[i].name == NULL)
				continue;
			uint32_t j = (uint32_t)ae__h(d->v[i].name, d->v[i].len) & (cap - 1);
			while (v[j].name)
				j = (j + 1) & (cap - 1);
			v[j] = d->v[i];
		}
		free(d->v);
		d->v = v;
		d->cap = cap;
	}
	if (d->cap == 0)
		return NULL;
	uint32_t j = (uint32_t)ae__h(name, len) & (d->cap - 1);
	while (d->v[j].name) {
		if (d->v[j].len == len && memcmp(d->v[j].name, name, len) == 0)
			return &d->v[j];
		j = (j + 1) & (d->cap - 1);
	}
	if (!add)
		return NULL;
	d->v[j].name = strndup(name, len);
	if (d->v[j].name == NULL) {
		d->rc = -1;
		return NULL;
	}
	d->v[j].len = (uint32_t)len;
	d->n++;
	return &d->v[j];
}

static int ae__add(void *ctx, const shm_instance_view_t *view, const char *json, size_t len)
{
	ae_digest_t *d = ctx;

	if (view->evicted || view->expired || view->origin == REPL_HTTP_ORIGIN)
		return 0;
	ae_svc_t *s = ae__find(d, view->service, strlen(view->service), true);
	if (s == NULL)
		return 1;
	s->count++;
	s->hash += XXH3_64bits_withSeed(json, len, view->origin_ms);
	return 0;
}

static int ae__compute(repl_t *r, ae_digest_t *d)
{
	memset(d, 0, sizeof(*d));
	shm_instances_foreach(r->shm, NULL, clock_wall_ms(), ae__add, d);
	return d->rc;
}

static void ae__free(ae_digest_t *d)
{
	for (uint32_t i = 0; i < d->cap; i++)
		free(d->v[i].name);
	free(d->v);
	memset(d, 0, sizeof(*d));
}

/* The version our change stream to peer has reached (0: not streaming). */
static uint64_t ae__streamed(const repl_conn_t *out)
{
	if (out == NULL || out->dead || out->hs != REPL_HS_READY || !out->streaming ||
	    out->snap_active || out->cur.next == 0)
		return 0;
	return out->cur.next - 1;
}

static void ae__send(repl_conn_t *c, const ae_digest_t *d, bool reply)
{
	repl_enc_t *e = &c->r->enc;
	uint32_t i = 0, left = d->n;
	bool whole = d->n <= AE_PER_FRAME;
	uint64_t version = ae__streamed(c->r->peers[c->peer].out);

	do {
		uint32_t n = left < AE_PER_FRAME ? left : AE_PER_FRAME;
		repl_enc_begin(e, REPL_DIGEST, 3);
		repl_enc_u(e, version);
		repl_enc_u(e, (reply ? REPL_DIGEST_REPLY : 0) | (whole ? REPL_DIGEST_WHOLE : 0));
		repl_enc_array(e, n);
		for (uint32_t k = 0; k < n; i++) {
			const ae_svc_t *s = &d->v[i];
			if (s->name == NULL)
				continue;
			repl_enc_array(e, 4);
			repl_enc_u(e, REPL_REC_INSTANCE);
			repl_enc_s(e, s->name, s->len);
			repl_enc_u(e, s->count);
			repl_enc_u(e, s->hash);
			k++;
		}
		if (repl_send(c, e) != 0)
			return;
		left -= n;
	} while (left > 0);
}

/* Our outbound connection to its peer, streaming and not in a snapshot. */
static bool ae__can_send(const repl_conn_t *c)
{
	return c->outbound && c->streaming && c->hs == REPL_HS_READY && !c->snap_active &&
	       !c->dead && !c->closing && !repl_conn_busy(c);
}

void repl_digest_tick(repl_t *r)
{
	ae_digest_t d;
	bool any = false;

	if (shm_node_state(r->shm) != SHM_NODE_UP)
		return;
	for (repl_conn_t *c = r->conns; c && !any; c = c->next)
		any = ae__can_send(c);
	if (!any)
		return;
	/* Queue what the change log holds first, so the digest does not run
	 * ahead of the stream. */
	repl_sender_tick(r);
	if (ae__compute(r, &d) == 0)
		for (repl_conn_t *c = r->conns; c; c = c->next)
			if (ae__can_send(c))
				ae__send(c, &d, false);
	ae__free(&d);
}

/* ---- Pulls asked, each with its mark ---------------------------------------- */

static int ae__pending_cmp(const repl_pending_t *a, int kind, const char *name, size_t len)
{
	if (a->kind != kind)
		return a->kind < kind ? -1 : 1;
	int d = memcmp(a->name, name, a->len < len ? a->len : len);
	if (d)
		return d;
	return a->len == len ? 0 : a->len < len ? -1 : 1;
}

/* Index of (kind, name) in p->pending, or where it would go (*found). */
static uint32_t ae__pending_find(const repl_peer_t *p, int kind, const char *name, size_t len,
                                 bool *found)
{
	uint32_t lo = 0, hi = p->npending;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int d = ae__pending_cmp(&p->pending[mid], kind, name, len);
		if (d == 0) {
			*found = true;
			return mid;
		}
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static void ae__pending_remove(repl_peer_t *p, uint32_t i)
{
	free(p->pending[i].name);
	memmove(&p->pending[i], &p->pending[i + 1], (p->npending - i - 1) * sizeof(*p->pending));
	p->npending--;
}

/* Ask c's peer for every record of `name`, unless a pull of it is already
 * pending.  1 when asked, 0 when not, -1 when no more may be pending. */
static int ae__pull(repl_conn_t *c, repl_peer_t *p, const char *name, size_t len)
{
	repl_enc_t *e = &c->r->enc;
	bool found;
	uint32_t at = ae__pending_find(p, REPL_REC_INSTANCE, name, len, &found);

	if (found)
		return 0;
	if (p->npending >= REPL_MAX_PENDING_PULLS)
		return -1;
	if (p->npending == p->pending_cap) {
		uint32_t cap = p->pending_cap ? p->pending_cap * 2 : 64;
		repl_pending_t *v = realloc(p->pending, cap * sizeof(*v));
		if (v == NULL)
			return -1;
		p->pending = v;
		p->pending_cap = cap;
	}
	char *copy = malloc(len);
	if (copy == NULL)
		return -1;
	memcpy(copy, name, len);
	repl_enc_begin(e, REPL_PULL, 2);
	repl_enc_u(e, REPL_REC_INSTANCE);
	repl_enc_s(e, name, len);
	if (repl_send(c, e) != 0) {
		free(copy);
		return -1;
	}
	memmove(&p->pending[at + 1], &p->pending[at], (p->npending - at) * sizeof(*p->pending));
	repl_pending_t *pp = &p->pending[at];
	pp->name = copy;
	pp->len = (uint32_t)len;
	pp->kind = REPL_REC_INSTANCE;
	pp->mark_ms = clock_wall_ms();
	pp->c = c;
	p->npending++;
	return 1;
}

void repl_on_pull_end(repl_conn_t *c, const repl_msg_t *m)
{
	repl_peer_t *p = &c->r->peers[c->peer];
	bool found;
	uint32_t i = ae__pending_find(p, (int)m->u[0], m->s[0].ptr, m->s[0].len, &found);

	if (!found || p->pending[i].c != c)
		return; /* not asked on this connection: nothing to sweep */
	repl_sweep_add(c, m->s[0], p->pending[i].mark_ms);
	ae__pending_remove(p, i);
}

void repl_pulls_forget(repl_t *r, const repl_conn_t *c)
{
	for (int k = 0; k < r->npeers; k++) {
		repl_peer_t *p = &r->peers[k];
		for (uint32_t i = p->npending; i-- > 0;)
			if (p->pending[i].c == c)
				ae__pending_remove(p, i);
	}
}

void repl_pending_free(repl_t *r)
{
	for (int k = 0; k < r->npeers; k++) {
		repl_peer_t *p = &r->peers[k];
		while (p->npending)
			ae__pending_remove(p, p->npending - 1);
		free(p->pending);
		p->pending = NULL;
		p->pending_cap = 0;
	}
}

/* ---- A peer's digest ---------------------------------------------------------- */

/* False when this digest is not to be compared: our copy of the peer is
 * being rebuilt by a snapshot, its stream to us has not reached the state
 * the digest describes yet (a reply overtaking the stream), or it has not
 * applied (acknowledged) every change we sent it.  The streams are about to
 * deliver those differences; pulling whole services for them would only
 * load the node that is behind. */
static bool ae__comparable(repl_conn_t *c, repl_peer_t *p, uint64_t version)
{
	repl_conn_t *in = p->in;
	bool stream =
	    in && !in->dead && in->hs == REPL_HS_READY && p->rx_valid && p->rx_inc == in->peer_inc;
	repl_conn_t *out = p->out;

	if (p->in_snapshot)
		return false;
	if (out && !out->dead && out->hs == REPL_HS_READY && p->acked_version < out->sent_version)
		return false;
	if (c == in && stream) { /* after everything streamed before it */
		if (version > p->rx_applied)
			p->rx_applied = version;
		return true;
	}
	return !stream || version == 0 || version <= p->rx_applied;
}

void repl_on_digest(repl_conn_t *c, const repl_msg_t *m)
{
	repl_t *r = c->r;
	repl_peer_t *p = &r->peers[c->peer];
	ae_digest_t d;
	unsigned pulls = 0;
	int rc = 0;
	bool reply = (m->u[1] & REPL_DIGEST_REPLY) != 0, whole = (m->u[1] & REPL_DIGEST_WHOLE) != 0;

	p->node_state = SHM_NODE_UP; /* only nodes that are up send digests */
	if (shm_node_state(r->shm) != SHM_NODE_UP)
		return;
	if (ae__compute(r, &d) < 0) {
		ae__free(&d);
		return;
	}
	bool compare = ae__comparable(c, p, m->u[0]);
	for (uint32_t i = 0; compare && i < m->nlist && pulls < AE_MAX_PULLS && rc >= 0; i++) {
		repl_digest_t pd;
		repl_msg_digest(m, i, &pd);
		ae_svc_t *s = ae__find(&d, pd.name.ptr, pd.name.len, false);
		if (s)
			s->seen = true;
		if (s && s->count == pd.count && s->hash == pd.hash)
			continue;
		rc = ae__pull(c, p, pd.name.ptr, pd.name.len);
		pulls += rc > 0;
	}
	for (uint32_t i = 0; compare && whole && i < d.cap && pulls < AE_MAX_PULLS && rc >= 0; i++)
		if (d.v[i].name && !d.v[i].seen) {
			rc = ae__pull(c, p, d.v[i].name, d.v[i].len);
			pulls += rc > 0;
		}
	if (pulls)
		log_info("peer %s: anti-entropy: %u services differ; pulling them", p->cfg->name,
		         pulls);
	if (!reply)
		ae__send(c, &d, true);
	ae__free(&d);
}

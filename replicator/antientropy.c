/*
 * antientropy.c - periodic comparison of per-service digests with each
 * peer, and repair of what differs.
 *
 * A service's digest is its count of live instances and the sum of one
 * 64-bit hash per instance (XXH3 of its stored JSON, seeded with its
 * origin registration time): independent of order, equal on two nodes
 * that hold the same registrations.  Every [cluster] digest_interval_ms
 * each node sends its digest to each peer on its outbound connection; the
 * peer compares, PULLs every service that differs (or that only it has),
 * and answers with its own digest so the first node repairs itself the
 * same way.  A pulled service's records are registered as usual; what the
 * other side no longer holds is swept (snapshot.c).
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

#define AE_MAX_PULLS  1024 /* services pulled per digest, at most */
#define AE_PER_FRAME  8192 /* services per DIGEST frame */
#define AE_FLAG_REPLY 1u
#define AE_FLAG_WHOLE 2u /* the digest fits this one frame */

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

static void ae__send(repl_conn_t *c, const ae_digest_t *d, bool reply)
{
	repl_enc_t *e = &c->r->enc;
	uint32_t i = 0, left = d->n;
	bool whole = d->n <= AE_PER_FRAME;
	uint64_t version = shm_head_version(c->r->shm);

	do {
		uint32_t n = left < AE_PER_FRAME ? left : AE_PER_FRAME;
		int rc = repl_enc_begin(e, REPL_DIGEST, 3);
		rc = rc ? rc : repl_enc_u(e, version);
		rc = rc ? rc
		        : repl_enc_u(e, (reply ? AE_FLAG_REPLY : 0) | (whole ? AE_FLAG_WHOLE : 0));
		rc = rc ? rc : repl_enc_array(e, n);
		for (uint32_t k = 0; k < n && rc == 0; i++) {
			const ae_svc_t *s = &d->v[i];
			if (s->name == NULL)
				continue;
			rc = repl_enc_array(e, 3);
			rc = rc ? rc : repl_enc_s(e, s->name, s->len);
			rc = rc ? rc : repl_enc_u(e, s->count);
			rc = rc ? rc : repl_enc_u(e, s->hash);
			k++;
		}
		if (rc != 0 || repl_send(c, e) != 0)
			return;
		left -= n;
	} while (left > 0);
}

void repl_digest_tick(repl_t *r)
{
	ae_digest_t d;
	bool any = false;

	if (shm_node_state(r->shm) != SHM_NODE_UP)
		return;
	for (repl_conn_t *c = r->conns; c && !any; c = c->next)
		any = c->outbound && c->streaming && !c->dead && !repl_conn_busy(c);
	if (!any)
		return;
	/* Queue what the change log holds first, so the digest does not run
	 * ahead of the stream. */
	repl_sender_tick(r);
	if (ae__compute(r, &d) == 0)
		for (repl_conn_t *c = r->conns; c; c = c->next)
			if (c->outbound && c->streaming && !c->dead && !c->closing &&
			    !repl_conn_busy(c))
				ae__send(c, &d, false);
	ae__free(&d);
}

static int ae__pull(repl_conn_t *c, const char *name, size_t len)
{
	repl_enc_t *e = &c->r->enc;
	int rc = repl_enc_begin(e, REPL_PULL, 1);

	rc = rc ? rc : repl_enc_s(e, name, len);
	return rc ? rc : repl_send(c, e);
}

void repl_on_digest(repl_conn_t *c, const repl_msg_t *m)
{
	repl_t *r = c->r;
	repl_peer_t *p = &r->peers[c->peer];
	ae_digest_t d;
	unsigned pulls = 0;
	bool reply = (m->u[1] & AE_FLAG_REPLY) != 0, whole = (m->u[1] & AE_FLAG_WHOLE) != 0;

	p->node_state = SHM_NODE_UP; /* only nodes that are up send digests */
	if (shm_node_state(r->shm) != SHM_NODE_UP)
		return;
	if (ae__compute(r, &d) < 0) {
		ae__free(&d);
		return;
	}
	p->pull_mark_ms = clock_wall_ms();
	for (uint32_t i = 0; i < m->nlist && pulls < AE_MAX_PULLS; i++) {
		repl_digest_t pd;
		repl_msg_digest(m, i, &pd);
		ae_svc_t *s = ae__find(&d, pd.service.ptr, pd.service.len, false);
		if (s)
			s->seen = true;
		if (s && s->count == pd.count && s->hash == pd.hash)
			continue;
		pulls += ae__pull(c, pd.service.ptr, pd.service.len) == 0;
	}
	for (uint32_t i = 0; whole && i < d.cap && pulls < AE_MAX_PULLS; i++)
		if (d.v[i].name && !d.v[i].seen)
			pulls += ae__pull(c, d.v[i].name, d.v[i].len) == 0;
	if (pulls)
		log_info("peer %s: anti-entropy: %u services differ; pulling them", p->cfg->name,
		         pulls);
	if (!reply)
		ae__send(c, &d, true);
	ae__free(&d);
}

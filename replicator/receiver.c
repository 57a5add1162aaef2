/*
 * receiver.c - a peer's frames applied to the registry, tagged with the
 * peer's origin id so they are never forwarded (the sender forwards only
 * origin 0) and so a sweep can tell what came from whom.
 *
 * Registers go through instance_parse (the register endpoint's own codec)
 * and shm_register with the origin's registration time.  Last writer wins:
 * newer origin_ms first (shm_register refuses older data with -ESTALE),
 * then, for the same millisecond and different data, the greater node
 * name.  A record we already hold unchanged is not registered again (no
 * `new` change, no push): it only counts as refreshed for a sweep (its
 * lease is renewed; when that fails, an expired lease, it is registered
 * again).  A record older than what we hold from the same peer refreshes
 * it too: the peer still holds that instance, so no sweep may remove it.
 * Renewals use shm_renew_remote; an unknown lease is fetched (FETCH) and
 * its record registered when it arrives.
 *
 * Every frame here passed its tag (seal.c) and its schema (proto.c); the
 * record kind of every frame is one this node knows.  Management rows and
 * their digests and pulls go to mgmt.c.
 */
#include <errno.h>
#include <string.h>

#include "artemis/clock.h"
#include "artemis/log.h"
#include "repl.h"

static void rx__log(repl_t *r, const repl_peer_t *p, const char *what, int rc, const char *field)
{
	uint64_t now = clock_mono_ms();

	if (r->apply_log_ms && now - r->apply_log_ms < 10000)
		return;
	r->apply_log_ms = now;
	log_warn("peer %s: cannot apply %s: %s%s%s (more are not logged for 10 s)", p->cfg->name,
	         what, strerror(-rc), field ? ", field " : "", field ? field : "");
}

static const char *rx__origin_name(const repl_t *r, uint8_t origin)
{
	if (origin == 0)
		return r->cfg->name;
	if (origin <= r->npeers)
		return r->peers[origin - 1].cfg->name;
	return ""; /* a Java peer over HTTP: loses every tie */
}

/* Register one record from peer p. */
static void rx__register(repl_t *r, repl_peer_t *p, uint64_t origin_ms, shm_str_t json)
{
	shm_instance_in_t si;
	shm_instance_view_t view;
	const char *field = NULL;
	int rc = instance_parse(r->parser, json.ptr, json.len, &si, &field);

	if (rc < 0) {
		rx__log(r, p, "a record", rc, field);
		return;
	}
	if (repl_tomb_blocks(r, &si.key, origin_ms))
		return; /* unregistered here after that registration */
	r->json2.len = 0;
	rc = shm_lookup(r->shm, &si.key, clock_wall_ms(), &view, &r->json2);
	if (rc == 0 && view.evicted && view.origin_ms >= origin_ms)
		return; /* the same: being removed */
	if (rc == 0 && !view.evicted) {
		bool ours = view.origin == p->id;
		if (view.origin_ms > origin_ms) {
			if (ours)
				shm_renew_remote(r->shm, &si.key, 0);
			return;
		}
		if (view.origin_ms == origin_ms) {
			bool same = r->json2.len == si.json.len &&
			            memcmp(r->json2.data, si.json.ptr, si.json.len) == 0;
			if (same && (!ours || shm_renew_remote(r->shm, &si.key, 0) == 0))
				return;
			if (!same && strcmp(p->cfg->name, rx__origin_name(r, view.origin)) < 0)
				return;
		}
	}
	si.origin = (uint8_t)p->id;
	si.origin_ms = origin_ms;
	rc = shm_register(r->shm, &si);
	if (rc < 0 && rc != -ESTALE)
		rx__log(r, p, "a register", rc, NULL);
}

static void rx__unregister(repl_t *r, repl_peer_t *p, uint64_t origin_ms, shm_str_t json)
{
	shm_instance_in_t si;
	shm_instance_view_t view;
	int rc = instance_parse(r->parser, json.ptr, json.len, &si, NULL);

	if (rc < 0) {
		rx__log(r, p, "an unregister", rc, NULL);
		return;
	}
	/* A newer registration than the one unregistered at the origin stays. */
	if (shm_lookup(r->shm, &si.key, clock_wall_ms(), &view, NULL) == 0 &&
	    view.origin_ms > origin_ms)
		return;
	rc = shm_unregister(r->shm, &si.key, (uint8_t)p->id);
	if (rc < 0)
		rx__log(r, p, "an unregister", rc, NULL);
}

static void rx__renew(repl_conn_t *c, repl_peer_t *p, const repl_msg_t *m)
{
	repl_t *r = c->r;
	repl_enc_t *e = &r->enc;
	static uint32_t missing[REPL_MAX_LIST];
	uint32_t n = 0;
	uint64_t now = clock_wall_ms();
	shm_key_t key;

	(void)p;
	for (uint32_t i = 0; i < m->nlist; i++) {
		repl_msg_key(m, i, &key);
		if (shm_renew_remote(r->shm, &key, now) == -ENOENT)
			missing[n++] = i;
	}
	if (n == 0)
		return;
	repl_enc_begin(e, REPL_FETCH, 1);
	repl_enc_array(e, n);
	for (uint32_t i = 0; i < n; i++) {
		repl_msg_key(m, missing[i], &key);
		repl_enc_key(e, &key);
	}
	repl_send(c, e);
}

static void rx__snap_begin(repl_peer_t *p, const repl_msg_t *m)
{
	p->in_snapshot = true;
	p->snapshot_complete = m->u[1] != 0;
	p->snapshot_mark_ms = clock_wall_ms();
	p->snapshot_count = 0;
	p->rx_valid = false;
}

static void rx__snap_end(repl_conn_t *c, repl_peer_t *p, const repl_msg_t *m)
{
	if (!p->in_snapshot)
		return;
	p->in_snapshot = false;
	if (p->snapshot_complete)
		repl_sweep_all(c->r, c->peer, p->snapshot_mark_ms);
	p->rx_valid = true;
	p->rx_inc = c->peer_inc;
	p->rx_applied = m->u[0];
	p->bootstrapped_from |= p->snapshot_complete;
	repl_bootstrap_check(c->r, clock_mono_ms());
	log_info("peer %s: applied its %s snapshot (%llu instances)", p->cfg->name,
	         p->snapshot_complete ? "complete" : "partial",
	         (unsigned long long)p->snapshot_count);
}

static void rx__sync(repl_conn_t *c, repl_peer_t *p, const repl_msg_t *m)
{
	p->node_state = (uint32_t)m->u[1];
	if (p->rx_valid && !p->in_snapshot && p->rx_inc == c->peer_inc && m->u[0] > p->rx_applied)
		p->rx_applied = m->u[0];
	c->ack_due = true;
}

void repl_on_frame(repl_conn_t *c, const repl_msg_t *m)
{
	repl_t *r = c->r;
	repl_peer_t *p = &r->peers[c->peer];

	switch (m->type) {
	case REPL_CHANGE: /* u[2]: the kind; management rows travel as ROW */
		if (m->u[2] != REPL_REC_INSTANCE)
			return;
		if (m->u[1] == REPL_OP_REGISTER)
			rx__register(r, p, m->u[3], m->s[0]);
		else if (m->u[1] == REPL_OP_UNREGISTER)
			rx__unregister(r, p, m->u[3], m->s[0]);
		if (p->rx_valid && p->rx_inc == c->peer_inc && m->u[0] > p->rx_applied)
			p->rx_applied = m->u[0];
		return;
	case REPL_RECORD:
		if (m->u[0] != REPL_REC_INSTANCE)
			return;
		rx__register(r, p, m->u[1], m->s[0]);
		p->snapshot_count += p->in_snapshot;
		return;
	case REPL_RENEW:
		rx__renew(c, p, m);
		return;
	case REPL_FETCH:
		repl_on_fetch(c, m);
		return;
	case REPL_SNAP_BEGIN:
		rx__snap_begin(p, m);
		return;
	case REPL_SNAP_END:
		rx__snap_end(c, p, m);
		return;
	case REPL_DIGEST:
		if (m->u[1] & REPL_DIGEST_MGMT)
			repl_mgmt_on_digest(c, m);
		else
			repl_on_digest(c, m);
		return;
	case REPL_PULL:
		if (m->u[0] == REPL_REC_INSTANCE)
			repl_pull_request(c, m->s[0]);
		else
			repl_mgmt_on_pull(c, m);
		return;
	case REPL_PULL_END:
		if (m->u[0] == REPL_REC_INSTANCE)
			repl_on_pull_end(c, m);
		else
			repl_mgmt_on_pull_end(c, m);
		return;
	case REPL_ROW:
	case REPL_MWANT:
	case REPL_MMARK:
	case REPL_MACK:
		repl_mgmt_on_frame(c, m);
		return;
	case REPL_SYNC:
		rx__sync(c, p, m);
		return;
	case REPL_ACK:
		repl_on_ack(c, m);
		return;
	default:
		repl_conn_close(c, "unexpected handshake frame");
	}
}

/* After a read: serve and sweep the pulls it carried, acknowledge what was
 * applied (cumulative). */
void repl_receiver_flush(repl_conn_t *c)
{
	repl_pulls_flush(c);
	repl_peer_t *p = &c->r->peers[c->peer];
	repl_enc_t *e = &c->r->enc;

	uint64_t applied = p->rx_valid ? p->rx_applied : 0;

	if (c->outbound || (!c->ack_due && c->acked == applied))
		return;
	repl_enc_begin(e, REPL_ACK, 2);
	repl_enc_u(e, applied);
	repl_enc_u(e, (uint64_t)shm_node_state(c->r->shm));
	if (repl_send(c, e) == 0) {
		c->acked = applied;
		c->ack_due = false;
	}
}

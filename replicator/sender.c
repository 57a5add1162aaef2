/*
 * sender.c - what this node's clients did, streamed to each peer over our
 * outbound connection to it.
 *
 *   changes   every REPL_TICK_MS, each connection's own cursor over the
 *             change log: `new` with origin 0 becomes CHANGE register,
 *             `delete` by unregister with origin 0 becomes CHANGE
 *             unregister.  Expiries are not sent (each node expires its
 *             replicas from the renewals it stops receiving) and nothing
 *             applied from a peer (origin != 0) is sent again.
 *   resume    the receiver's WANT names the last version it applied of
 *             this incarnation; the cursor restarts after it, and a cursor
 *             the log has overrun (-EOVERFLOW) turns into a full snapshot.
 *   renewals  every REPL_RENEW_MS one scan of the leases renewed by our
 *             clients since the last one (shm_renewals_scan skips renewals
 *             made for peers), each lease once per batch, sent as RENEW.
 *   sync      every REPL_SYNC_MS: the version streamed up to (so a resume
 *             need not go back further than that), our node state, and a
 *             keepalive; the receiver answers with ACK.
 *
 * A connection whose output is above REPL_OUT_HIGH is skipped until it
 * drains: the cursor waits in the change log instead of memory growing.
 * A snapshot goes out the same way, an installment per tick (snapshot.c);
 * the connection streams nothing else until its end.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "artemis/clock.h"
#include "artemis/log.h"
#include "repl.h"

/* Streaming to its peer (SYNC keeps going during a snapshot: the receiver
 * answers with ACK, which keeps the connection alive). */
static bool sender__open(const repl_conn_t *c)
{
	return c->outbound && !c->dead && !c->closing && c->hs == REPL_HS_READY && c->streaming;
}

/* ... and not in the middle of a snapshot: changes and renewals wait. */
static bool sender__live(const repl_conn_t *c)
{
	return sender__open(c) && !c->snap_active;
}

void repl_sender_start(repl_conn_t *c, uint64_t inc, uint64_t version)
{
	repl_t *r = c->r;

	c->streaming = true;
	c->renew_since = 0; /* every live lease once, after the gap */
	c->lag_version = 0;
	if (inc == r->incarnation && version > 0) {
		c->cur.next = version + 1;
		log_info("peer %s: resuming the stream after version %llu",
		         repl_peer_name(r, c->peer), (unsigned long long)version);
		return;
	}
	repl_snapshot_send(c);
}

/* One change: 1 when a frame was queued, 0 when it is not ours to send. */
static int sender__change(repl_conn_t *c, const shm_change_t *ch, const buf_t *json)
{
	repl_enc_t *e = &c->r->enc;
	uint64_t op;

	if (ch->origin != 0 || json->len == 0)
		return 0;
	if (ch->type == SHM_CHANGE_NEW)
		op = REPL_OP_REGISTER;
	else if (ch->type == SHM_CHANGE_DELETE && ch->reason == SHM_DEL_UNREGISTER)
		op = REPL_OP_UNREGISTER;
	else
		return 0;
	repl_enc_begin(e, REPL_CHANGE, 5);
	repl_enc_u(e, ch->version);
	repl_enc_u(e, op);
	repl_enc_u(e, REPL_REC_INSTANCE);
	repl_enc_u(e, ch->origin_ms);
	repl_enc_s(e, json->data, json->len);
	if (repl_send(c, e) != 0)
		return 1;
	c->sent_version = ch->version;
	if (c->lag_version == 0) {
		c->lag_version = ch->version;
		c->lag_change_ms = ch->time_ms;
	}
	return 1;
}

static void sender__stream(repl_conn_t *c)
{
	repl_t *r = c->r;
	shm_change_t ch;

	for (int n = 0; n < REPL_CHANGES_PER_TICK && !repl_conn_busy(c); n++) {
		r->json.len = 0;
		int rc = shm_changes_next(r->shm, &c->cur, &ch, &r->json);
		if (rc == -EOVERFLOW) {
			log_warn("peer %s: the change log moved past what it acknowledged; sending "
			         "a full snapshot",
			         repl_peer_name(r, c->peer));
			repl_snapshot_send(c);
			return;
		}
		if (rc < 0)
			return; /* -EAGAIN: nothing new; -EBUSY: being written, next tick */
		sender__change(c, &ch, &r->json);
	}
}

void repl_sender_tick(repl_t *r)
{
	for (repl_conn_t *c = r->conns; c; c = c->next) {
		if (c->snap_active && sender__open(c))
			repl_snapshot_continue(c);
		if (sender__live(c))
			sender__stream(c);
	}
}

/* ---- Renewals ------------------------------------------------------------- */

typedef struct {
	uint64_t ms;
	uint32_t off;
	uint16_t len[3];
} renew_item_t;

typedef struct {
	renew_item_t *v;
	size_t n, cap;
	buf_t text;
	int rc;
} renew_batch_t;

static int renew__collect(void *ctx, const shm_key_t *key, uint64_t renewal_ms)
{
	renew_batch_t *b = ctx;

	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		renew_item_t *v = realloc(b->v, cap * sizeof(*v));
		if (v == NULL) {
			b->rc = -ENOMEM;
			return 1;
		}
		b->v = v;
		b->cap = cap;
	}
	renew_item_t *it = &b->v[b->n];
	it->ms = renewal_ms;
	it->off = (uint32_t)b->text.len;
	it->len[0] = (uint16_t)key->region.len;
	it->len[1] = (uint16_t)key->service.len;
	it->len[2] = (uint16_t)key->instance.len;
	if (buf_append(&b->text, key->region.ptr, key->region.len) < 0 ||
	    buf_append(&b->text, key->service.ptr, key->service.len) < 0 ||
	    buf_append(&b->text, key->instance.ptr, key->instance.len) < 0) {
		b->rc = -ENOMEM;
		return 1;
	}
	b->n++;
	return 0;
}

static void renew__key(const renew_batch_t *b, size_t i, shm_key_t *k)
{
	const renew_item_t *it = &b->v[i];
	const char *p = b->text.data + it->off;

	k->region = (shm_str_t){p, it->len[0]};
	k->service = (shm_str_t){p + it->len[0], it->len[1]};
	k->instance = (shm_str_t){p + it->len[0] + it->len[1], it->len[2]};
}

static void renew__send(repl_conn_t *c, const renew_batch_t *b, const uint32_t *idx, uint32_t n)
{
	repl_enc_t *e = &c->r->enc;
	shm_key_t k;

	repl_enc_begin(e, REPL_RENEW, 1);
	repl_enc_array(e, n);
	for (uint32_t i = 0; i < n; i++) {
		renew__key(b, idx[i], &k);
		repl_enc_key(e, &k);
	}
	repl_send(c, e);
}

static void renew__conn(repl_conn_t *c, const renew_batch_t *b, uint64_t scan_ms)
{
	static uint32_t idx[REPL_KEYS_PER_FRAME];
	uint32_t n = 0;

	if (repl_conn_busy(c))
		return; /* keeps its `since`: the next scan covers these again */
	for (size_t i = 0; i < b->n; i++) {
		if (b->v[i].ms <= c->renew_since)
			continue;
		idx[n++] = (uint32_t)i;
		if (n == REPL_KEYS_PER_FRAME) {
			renew__send(c, b, idx, n);
			n = 0;
		}
	}
	if (n)
		renew__send(c, b, idx, n);
	c->renew_since = scan_ms - REPL_RENEW_OVERLAP_MS;
}

void repl_renew_tick(repl_t *r)
{
	uint64_t since = UINT64_MAX, scan_ms = clock_wall_ms();
	renew_batch_t b;

	for (repl_conn_t *c = r->conns; c; c = c->next)
		if (sender__live(c) && c->renew_since < since)
			since = c->renew_since;
	if (since == UINT64_MAX)
		return;
	memset(&b, 0, sizeof(b));
	shm_renewals_scan(r->shm, since, renew__collect, &b);
	if (b.rc == 0)
		for (repl_conn_t *c = r->conns; c; c = c->next)
			if (sender__live(c))
				renew__conn(c, &b, scan_ms);
	free(b.v);
	buf_free(&b.text);
}

/* ---- Sync, fetch, ack ----------------------------------------------------- */

void repl_sync_tick(repl_t *r)
{
	repl_enc_t *e = &r->enc;

	for (repl_conn_t *c = r->conns; c; c = c->next) {
		if (!sender__open(c))
			continue;
		repl_enc_begin(e, REPL_SYNC, 3);
		repl_enc_u(e, c->cur.next ? c->cur.next - 1 : 0);
		repl_enc_u(e, (uint64_t)shm_node_state(r->shm));
		repl_enc_u(e, clock_wall_ms());
		repl_send(c, e);
	}
}

void repl_on_fetch(repl_conn_t *c, const repl_msg_t *m)
{
	repl_t *r = c->r;
	uint64_t now = clock_wall_ms();
	shm_instance_view_t view;
	shm_key_t key;

	for (uint32_t i = 0; i < m->nlist; i++) {
		repl_msg_key(m, i, &key);
		r->json.len = 0;
		if (shm_lookup(r->shm, &key, now, &view, &r->json) == 0 && !view.evicted)
			repl_record_send(c, view.origin_ms, r->json.data, r->json.len);
	}
}

void repl_on_ack(repl_conn_t *c, const repl_msg_t *m)
{
	repl_peer_t *p = &c->r->peers[c->peer];

	p->acked_version = m->u[0];
	p->node_state = (uint32_t)m->u[1];
	if (c->lag_version && m->u[0] >= c->lag_version) {
		uint64_t now = clock_wall_ms();
		p->lag_ms = now > c->lag_change_ms ? now - c->lag_change_ms : 0;
		c->lag_version = 0;
	}
}

/*
 * mgmt.c - the management store between nodes (docs/CLUSTER.md,
 * "Management data"): operations, audit records and every other table
 * mgmt/replica.c describes, next to the registry's records on the same
 * connections.  Only between nodes that both list management kinds in
 * their HELLO; each connection carries the kinds both know.
 *
 * Stream (the side that connects sends, as for the registry):
 *   - the acceptor says what it holds of the connector's store: MWANT
 *     (store id, own, all).  `own`: every row the connector wrote itself
 *     with seq <= own is applied; `all`: every row it held, whoever wrote
 *     it, with seq <= all is applied;
 *   - the connector answers with a catch-up: the rows it holds with
 *     all < seq <= head, any origin (its own only above `own`), or every
 *     row it holds (tombstones included) when the store id is not its own
 *     or the cursors are ahead of its generation (another store, or one
 *     restored from a backup); then MMARK(head, catch-up);
 *   - then passes over its own rows: whenever the store generation moved
 *     (PRAGMA data_version says when another process committed), the rows
 *     it wrote itself with own < seq <= head, then MMARK(head).
 * Rows a node applied from a peer are never streamed on (full mesh); they
 * reach a third node by its own connection to their origin, by a
 * catch-up, or by anti-entropy when the origin is out of reach.
 *
 * The receiver applies the rows of one read in one transaction
 * (mgmt_repl_begin/put/commit: the writer lock, last writer wins,
 * published like a local write); an MMARK commits them with the cursor it
 * brings (MACK answers with it), so what the store says it holds of a
 * peer is never ahead of what it applied: a replicator killed anywhere
 * resumes from there, and nothing is applied twice (rows are idempotent,
 * audit records taken once).  A batch that fails (the store, the lock)
 * closes that connection: the peer reconnects and resumes from the cursor.
 * A row this node cannot take is logged (once per 10 s) and skipped.
 *
 * Anti-entropy: every digest interval each node sends its digests (per
 * table and bucket) on its outbound connections, with the generation
 * marked last; the peer compares when everything the streams are about to
 * deliver has been delivered (the sender's catch-up applied here, our own
 * rows acknowledged, its stream to us at least at that generation), PULLs
 * the buckets that differ (each at most once at a time) and answers with
 * its own digests.  A pull's answer is every row of the bucket, whatever
 * their origin; applying them never deletes anything.
 *
 * Tombstones are collected every digest interval once every peer
 * acknowledged our stream past them and they are older than
 * [cluster] mgmt_tombstone_ttl_s.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "artemis/clock.h"
#include "artemis/log.h"
#include "repl.h"

/* ---- Set-up ------------------------------------------------------------------------- */

int repl_mgmt_init(repl_t *r)
{
	char err[512];
	int rc;

	r->mr = NULL;
	r->m_kinds = 0;
	repl_kinds_set(0);
	if ((rc = mgmt_repl_open(r->cfg, r->shm, &r->mr, err, sizeof(err))) < 0) {
		log_warn("the management store is not replicated: %s", err);
		r->mr = NULL;
		return rc;
	}
	if (mgmt_repl_head(r->mr, &r->m_store_id, &r->m_head) < 0) {
		log_warn("the management store is not replicated: cannot read its generation");
		mgmt_repl_close(r->mr);
		r->mr = NULL;
		return -EIO;
	}
	mgmt_repl_moved(r->mr);
	r->m_kinds = mgmt_repl_kinds();
	repl_kinds_set(r->m_kinds);
	r->m_gc_at = clock_mono_ms() + r->cfg->digest_interval_ms;
	return 0;
}

void repl_mgmt_fini(repl_t *r)
{
	if (r->mr) {
		repl_mgmt_flush(r);
		mgmt_repl_close(r->mr);
	}
	r->mr = NULL;
}

bool repl_mgmt_owed(const repl_peer_t *p)
{
	return (p->kinds & repl_kinds_known() & ~(1ull << REPL_REC_INSTANCE)) && !p->m_caught_up;
}

/* At most one line per 10 s about rows not applied. */
static void mg__log(repl_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mg__log(repl_t *r, const char *fmt, ...)
{
	uint64_t now = clock_mono_ms();
	char what[400];
	va_list ap;

	if (r->m_log_ms && now - r->m_log_ms < 10000)
		return;
	r->m_log_ms = now;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	log_warn("%s (more such lines are not logged for 10 s)", what);
}

/* ---- Applying --------------------------------------------------------------------------- */

static bool mg__begin(repl_conn_t *c)
{
	repl_t *r = c->r;
	char err[MGMT_MAX_ERR];

	if (mgmt_repl_active(r->mr))
		return true;
	if (r->m_batch_failed)
		return false;
	if (mgmt_repl_begin(r->mr, err, sizeof(err)) < 0) {
		mg__log(r, "peer %s: cannot apply management rows: %s", repl_peer_name(r, c->peer),
		        err);
		r->m_batch_failed = true;
		return false;
	}
	r->m_batch = 0;
	return true;
}

/* The rows of this read (and a cursor) committed; false when they could
 * not be: the connection is closed, the peer resumes from the cursor. */
static bool mg__commit(repl_conn_t *c, const mgmt_repl_cursor_t *cur)
{
	repl_t *r = c->r;
	char err[MGMT_MAX_ERR];

	if (!mgmt_repl_active(r->mr))
		return !r->m_batch_failed;
	if (mgmt_repl_commit(r->mr, cur ? repl_peer_name(r, c->peer) : NULL, cur, err,
	                     sizeof(err)) < 0) {
		mg__log(r, "peer %s: management rows not applied: %s", repl_peer_name(r, c->peer),
		        err);
		r->m_batch_failed = true;
		return false;
	}
	r->m_batch = 0;
	r->m_applied = true;
	return true;
}

static void mg__broken(repl_conn_t *c)
{
	repl_conn_close(c, "management rows could not be applied; resuming from the cursor");
}

void repl_mgmt_flush(repl_t *r)
{
	if (!r->mr)
		return;
	if (mgmt_repl_active(r->mr)) {
		char err[MGMT_MAX_ERR];
		if (mgmt_repl_commit(r->mr, NULL, NULL, err, sizeof(err)) < 0)
			mg__log(r, "management rows not applied: %s", err);
		else
			r->m_applied = true;
	}
	r->m_batch_failed = false;
	r->m_batch = 0;
}

static void mg__on_row(repl_conn_t *c, const repl_msg_t *m)
{
	repl_t *r = c->r;
	repl_peer_t *p = repl_peer_of(c);
	char err[MGMT_MAX_ERR];
	mgmt_row_t row;

	if (!r->mr)
		return;
	if (!mg__begin(c)) {
		mg__broken(c);
		return;
	}
	repl_msg_row(m, &row);
	int rc = mgmt_repl_put(r->mr, &row, err, sizeof(err));
	if (rc == -EINVAL) {
		mg__log(r, "peer %s: a row not applied: %s", p->cfg->name, err);
		return;
	}
	if (rc < 0) {
		mg__log(r, "peer %s: management rows not applied: %s", p->cfg->name, err);
		r->m_batch_failed = true;
		mg__broken(c);
		return;
	}
	p->m_rows += (uint64_t)rc;
	if (++r->m_batch >= REPL_ROWS_PER_TXN && !mg__commit(c, NULL))
		mg__broken(c);
}

static void mg__send_mack(repl_conn_t *c, uint64_t sid, uint64_t gen)
{
	repl_enc_t *e = &c->r->enc;

	repl_enc_begin(e, REPL_MACK, 2);
	repl_enc_u(e, sid);
	repl_enc_u(e, gen);
	repl_send(c, e);
}

/* MMARK on the stream's connection: what came before it is applied, the
 * cursor with it. */
static void mg__on_mark(repl_conn_t *c, const repl_msg_t *m)
{
	repl_t *r = c->r;
	repl_peer_t *p = repl_peer_of(c);
	bool catchup = (m->u[2] & REPL_MARK_CATCHUP) != 0;

	if (!r->mr || c->outbound)
		return;
	mgmt_repl_cursor_t cur = p->mcur;
	if (cur.store_id != m->u[0]) { /* another store: nothing of it held yet */
		cur.store_id = m->u[0];
		cur.own = cur.all = 0;
	}
	cur.own = m->u[1];
	if (catchup)
		cur.all = m->u[1];
	if (!mg__begin(c) || !mg__commit(c, &cur)) {
		mg__broken(c);
		return;
	}
	p->mcur = cur;
	mg__send_mack(c, cur.store_id, cur.own);
	if (catchup && !p->m_caught_up) {
		p->m_caught_up = true;
		log_info("peer %s: management data caught up (generation %llu, %llu rows applied)",
		         p->cfg->name, (unsigned long long)cur.own, (unsigned long long)p->m_rows);
		repl_bootstrap_check(r, clock_mono_ms());
	}
}

/* ---- Sending ------------------------------------------------------------------------------ */

void repl_mgmt_ready(repl_conn_t *c)
{
	repl_t *r = c->r;
	repl_peer_t *p = repl_peer_of(c);
	repl_enc_t *e = &r->enc;

	memset(c->m_pulls, 0, sizeof(c->m_pulls));
	memset(c->m_asked, 0, sizeof(c->m_asked));
	c->m_streaming = c->m_walking = c->m_catchup = c->m_serving = false;
	p->kinds = c->peer_kinds;
	c->m_kinds = r->mr ? r->m_kinds & c->peer_kinds : 0;
	if (!c->m_kinds || c->outbound)
		return;
	/* The acceptor says what it holds of the connector's store. */
	repl_mgmt_flush(r);
	if (mgmt_repl_cursor_get(r->mr, p->cfg->name, &p->mcur) < 0)
		memset(&p->mcur, 0, sizeof(p->mcur));
	repl_enc_begin(e, REPL_MWANT, 3);
	repl_enc_u(e, p->mcur.store_id);
	repl_enc_u(e, p->mcur.own);
	repl_enc_u(e, p->mcur.all);
	repl_send(c, e);
}

static void mg__head(repl_t *r)
{
	uint64_t sid, gen;

	if (mgmt_repl_head(r->mr, &sid, &gen) == 0) {
		r->m_store_id = sid;
		r->m_head = gen;
	}
}

/* The connector: a catch-up from what the acceptor holds. */
static void mg__on_mwant(repl_conn_t *c, const repl_msg_t *m)
{
	repl_t *r = c->r;
	uint64_t sid = m->u[0], own = m->u[1], all = m->u[2];

	if (!r->mr || !c->outbound || !c->m_kinds)
		return;
	mg__head(r);
	bool resume = sid == r->m_store_id && own <= r->m_head && all <= own;
	memset(&c->m_walk, 0, sizeof(c->m_walk));
	c->m_walk.after = resume ? all : 0;
	c->m_walk.own_after = resume ? own : 0;
	c->m_walk.upto = r->m_head;
	c->m_walk.kinds = c->m_kinds;
	c->m_streaming = c->m_walking = c->m_catchup = true;
	c->m_own = c->m_marked = r->m_head;
	c->m_pass_rows = 0;
	log_info("peer %s: management data: a catch-up of %s up to generation %llu",
	         repl_peer_name(r, c->peer), resume ? "what changed" : "every row",
	         (unsigned long long)r->m_head);
}

static int mg__send_row(void *ctx, const mgmt_row_t *row)
{
	repl_conn_t *c = ctx;
	repl_enc_t *e = &c->r->enc;

	if (c->dead || c->closing || repl_conn_busy(c))
		return 1;
	repl_enc_row(e, row);
	int rc = repl_send(c, e);
	if (rc == -EMSGSIZE) { /* cannot travel: skipped, and said */
		mg__log(c->r, "peer %s: a %s row larger than a frame not sent",
		        repl_peer_name(c->r, c->peer), mgmt_repl_kind_name(row->kind));
		return 0;
	}
	if (rc != 0)
		return 1;
	c->m_pass_rows++;
	return 0;
}

static void mg__mark(repl_conn_t *c, uint64_t gen, uint64_t flags, uint64_t now)
{
	repl_enc_t *e = &c->r->enc;

	repl_enc_begin(e, REPL_MMARK, 3);
	repl_enc_u(e, c->r->m_store_id);
	repl_enc_u(e, gen);
	repl_enc_u(e, flags);
	if (repl_send(c, e) == 0) {
		c->m_marked = gen;
		c->m_mark_ms = now;
	}
}

static void mg__stream(repl_conn_t *c, uint64_t now)
{
	repl_t *r = c->r;

	if (!c->m_walking) {
		if (r->m_head <= c->m_own) {
			if (c->m_marked < c->m_own && now - c->m_mark_ms >= REPL_MARK_IDLE_MS)
				mg__mark(c, c->m_own, 0, now);
			return;
		}
		memset(&c->m_walk, 0, sizeof(c->m_walk));
		c->m_walk.after = c->m_own;
		c->m_walk.upto = r->m_head;
		c->m_walk.own_only = true;
		c->m_walk.kinds = c->m_kinds;
		c->m_walking = true;
		c->m_pass_rows = 0;
	}
	if (repl_conn_busy(c))
		return;
	int rc = mgmt_repl_walk(r->mr, &c->m_walk, REPL_ROWS_PER_TICK, mg__send_row, c);
	if (rc < 0) {
		mg__log(r, "peer %s: reading management rows: %s", repl_peer_name(r, c->peer),
		        strerror(-rc));
		return;
	}
	if (!c->m_walk.done)
		return;
	c->m_walking = false;
	c->m_own = c->m_walk.upto;
	if (c->m_catchup || c->m_pass_rows || now - c->m_mark_ms >= REPL_MARK_IDLE_MS)
		mg__mark(c, c->m_own, c->m_catchup ? REPL_MARK_CATCHUP : 0, now);
	if (c->m_catchup)
		log_info("peer %s: management data: catch-up sent (%llu rows)",
		         repl_peer_name(r, c->peer), (unsigned long long)c->m_pass_rows);
	c->m_catchup = false;
}

static void mg__on_mack(repl_conn_t *c, const repl_msg_t *m)
{
	repl_peer_t *p = repl_peer_of(c);

	if (c->outbound && m->u[0] == c->r->m_store_id && m->u[1] > p->m_acked)
		p->m_acked = m->u[1];
}

/* ---- Pulls ---------------------------------------------------------------------------------- */

static int mg__bit(int kind, int bucket)
{
	return kind * MGMT_REPL_BUCKETS + bucket;
}

static bool mg__has(const uint64_t *set, int bit)
{
	return (set[bit / 64] >> (bit % 64)) & 1;
}

static void mg__set(uint64_t *set, int bit, bool on)
{
	if (on)
		set[bit / 64] |= 1ull << (bit % 64);
	else
		set[bit / 64] &= ~(1ull << (bit % 64));
}

/* A bucket's name on the wire ("0".."15"); -1 when it is not one. */
static int mg__bucket(shm_str_t name)
{
	int b = 0;

	if (name.len == 0 || name.len > 2)
		return -1;
	for (size_t i = 0; i < name.len; i++) {
		if (name.ptr[i] < '0' || name.ptr[i] > '9')
			return -1;
		b = b * 10 + (name.ptr[i] - '0');
	}
	return b < MGMT_REPL_BUCKETS ? b : -1;
}

void repl_mgmt_on_pull(repl_conn_t *c, const repl_msg_t *m)
{
	int kind = (int)m->u[0], b = mg__bucket(m->s[0]);

	if (c->r->mr && b >= 0 && (c->m_kinds >> kind) & 1)
		mg__set(c->m_pulls, mg__bit(kind, b), true);
}

void repl_mgmt_on_pull_end(repl_conn_t *c, const repl_msg_t *m)
{
	int b = mg__bucket(m->s[0]);

	if (b >= 0)
		mg__set(c->m_asked, mg__bit((int)m->u[0], b), false);
}

static void mg__pull_end(repl_conn_t *c, int bit)
{
	repl_enc_t *e = &c->r->enc;
	char name[4];
	int n = snprintf(name, sizeof(name), "%d", bit % MGMT_REPL_BUCKETS);

	repl_enc_begin(e, REPL_PULL_END, 2);
	repl_enc_u(e, (uint64_t)(bit / MGMT_REPL_BUCKETS));
	repl_enc_s(e, name, (size_t)n);
	repl_send(c, e);
}

/* The answer to the pulls asked on c, a bucket at a time, in installments. */
static void mg__serve(repl_conn_t *c)
{
	if (!c->m_serving) {
		int bit = -1;
		for (int w = 0; w < REPL_MGMT_PULL_WORDS && bit < 0; w++)
			if (c->m_pulls[w])
				bit = w * 64 + __builtin_ctzll(c->m_pulls[w]);
		if (bit < 0)
			return;
		mg__set(c->m_pulls, bit, false);
		memset(&c->m_serve, 0, sizeof(c->m_serve));
		c->m_serve.kind = bit / MGMT_REPL_BUCKETS;
		c->m_serve.bucket = bit % MGMT_REPL_BUCKETS;
		c->m_serve_bit = bit;
		c->m_serving = true;
	}
	if (repl_conn_busy(c))
		return;
	if (mgmt_repl_walk(c->r->mr, &c->m_serve, REPL_ROWS_PER_TICK, mg__send_row, c) < 0 ||
	    !c->m_serve.done)
		return;
	mg__pull_end(c, c->m_serve_bit);
	c->m_serving = false;
}

/* ---- Digests ------------------------------------------------------------------------------------
 */

#define MG_MAX_DIGESTS (64 * MGMT_REPL_BUCKETS)

static void mg__digest_send(repl_conn_t *c, bool reply)
{
	static mgmt_repl_digest_t d[MG_MAX_DIGESTS];
	repl_enc_t *e = &c->r->enc;
	size_t n = 0;
	char name[4];

	if (mgmt_repl_digest(c->r->mr, c->m_kinds, d, MG_MAX_DIGESTS, &n) < 0)
		return;
	repl_enc_begin(e, REPL_DIGEST, 3);
	repl_enc_u(e, c->outbound ? c->m_marked : 0);
	repl_enc_u(e, REPL_DIGEST_MGMT | REPL_DIGEST_WHOLE | (reply ? REPL_DIGEST_REPLY : 0));
	repl_enc_array(e, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		int len = snprintf(name, sizeof(name), "%d", d[i].bucket);
		repl_enc_array(e, 4);
		repl_enc_u(e, (uint64_t)d[i].kind);
		repl_enc_s(e, name, (size_t)len);
		repl_enc_u(e, d[i].count);
		repl_enc_u(e, d[i].hash);
	}
	repl_send(c, e);
}

void repl_mgmt_digest_tick(repl_t *r)
{
	if (!r->mr || shm_node_state(r->shm) != SHM_NODE_UP)
		return;
	repl_mgmt_flush(r);
	for (repl_conn_t *c = r->conns; c; c = c->next)
		if (c->outbound && !c->dead && !c->closing && c->hs == REPL_HS_READY &&
		    c->m_streaming && !c->m_catchup && !repl_conn_busy(c))
			mg__digest_send(c, false);
}

/* Whether the peer's digest may be compared with ours now: what the
 * streams are about to deliver is delivered (antientropy.c's reasoning). */
static bool mg__comparable(repl_conn_t *c, repl_peer_t *p, uint64_t version)
{
	repl_conn_t *out = p->out;

	if (!p->m_caught_up)
		return false; /* its catch-up brings it */
	if (out && !out->dead && out->hs == REPL_HS_READY && out->m_kinds &&
	    (out->m_catchup || out->m_walking || p->m_acked < out->m_marked))
		return false; /* it has not applied all we sent */
	return c == p->in || version <= p->mcur.own;
}

void repl_mgmt_on_digest(repl_conn_t *c, const repl_msg_t *m)
{
	static mgmt_repl_digest_t d[MG_MAX_DIGESTS];
	repl_t *r = c->r;
	repl_peer_t *p = repl_peer_of(c);
	size_t n = 0;
	unsigned pulls = 0;

	if (!r->mr || !c->m_kinds || shm_node_state(r->shm) != SHM_NODE_UP)
		return;
	repl_mgmt_flush(r); /* what came before it is in the store */
	if (mg__comparable(c, p, m->u[0]) &&
	    mgmt_repl_digest(r->mr, c->m_kinds, d, MG_MAX_DIGESTS, &n) == 0) {
		for (uint32_t i = 0; i < m->nlist; i++) {
			repl_digest_t pd;
			repl_msg_digest(m, i, &pd);
			int b = mg__bucket(pd.name);
			if (b < 0 || !((c->m_kinds >> pd.kind) & 1))
				continue;
			const mgmt_repl_digest_t *mine = NULL;
			for (size_t k = 0; k < n && !mine; k++)
				if (d[k].kind == pd.kind && d[k].bucket == b)
					mine = &d[k];
			if (mine && mine->count == pd.count && mine->hash == pd.hash)
				continue;
			int bit = mg__bit(pd.kind, b);
			bool asked = (p->in && mg__has(p->in->m_asked, bit)) ||
			             (p->out && mg__has(p->out->m_asked, bit));
			if (asked)
				continue;
			repl_enc_t *e = &r->enc;
			repl_enc_begin(e, REPL_PULL, 2);
			repl_enc_u(e, (uint64_t)pd.kind);
			repl_enc_s(e, pd.name.ptr, pd.name.len);
			if (repl_send(c, e) == 0) {
				mg__set(c->m_asked, bit, true);
				pulls++;
			}
		}
	}
	if (pulls)
		log_info("peer %s: anti-entropy: %u buckets of management tables differ; pulling "
		         "them",
		         p->cfg->name, pulls);
	if (!(m->u[1] & REPL_DIGEST_REPLY))
		mg__digest_send(c, true);
}

/* ---- Frames and ticks
 * ------------------------------------------------------------------------------ */

void repl_mgmt_on_frame(repl_conn_t *c, const repl_msg_t *m)
{
	switch (m->type) {
	case REPL_ROW:
		mg__on_row(c, m);
		return;
	case REPL_MWANT:
		mg__on_mwant(c, m);
		return;
	case REPL_MMARK:
		mg__on_mark(c, m);
		return;
	case REPL_MACK:
		mg__on_mack(c, m);
		return;
	default:
		return;
	}
}

/* Tombstones every peer has: acknowledged past them by each. */
static void mg__gc(repl_t *r)
{
	uint64_t upto = UINT64_MAX, removed = 0;
	uint64_t ttl_ms = (uint64_t)r->cfg->mgmt_tombstone_ttl_s * 1000, now = clock_wall_ms();

	for (int i = 0; i < r->npeers; i++) {
		repl_peer_t *p = &r->peers[i];
		mgmt_repl_cursor_t cur;
		if (p->m_acked > p->m_acked_saved &&
		    mgmt_repl_acked_set(r->mr, p->cfg->name, p->m_acked) == 0)
			p->m_acked_saved = p->m_acked;
		if (mgmt_repl_cursor_get(r->mr, p->cfg->name, &cur) < 0)
			return;
		uint64_t acked = cur.acked > p->m_acked ? cur.acked : p->m_acked;
		upto = acked < upto ? acked : upto;
	}
	if (upto == 0 || upto == UINT64_MAX || now < ttl_ms)
		return;
	if (mgmt_repl_gc(r->mr, upto, now - ttl_ms, &removed) == 0 && removed)
		log_info("management store: %llu tombstones every peer has were removed",
		         (unsigned long long)removed);
}

void repl_mgmt_tick(repl_t *r, uint64_t now)
{
	if (!r->mr)
		return;
	repl_mgmt_flush(r);
	if (mgmt_repl_moved(r->mr) || r->m_applied)
		mg__head(r);
	r->m_applied = false;
	for (repl_conn_t *c = r->conns; c; c = c->next) {
		if (c->dead || c->closing || c->hs != REPL_HS_READY || !c->m_kinds)
			continue;
		if (c->outbound && c->m_streaming)
			mg__stream(c, now);
		mg__serve(c);
	}
	if (now >= r->m_gc_at) {
		mg__gc(r);
		r->m_gc_at = now + r->cfg->digest_interval_ms;
	}
}

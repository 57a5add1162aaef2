/*
 * handshake.c - a connection's handshake (proto.h, auth.c):
 *
 *   connector -> HELLO (version, name, incarnation, nonce, state, zone,
 *                flags, record kinds)
 *   acceptor  -> HELLO, AUTH (its proof over the transcript of both HELLOs)
 *   connector -> AUTH (its proof, the other role)
 *   acceptor  -> WANT (what it already holds from the connector)
 *
 * Every frame after a side's AUTH is sealed with the session keys
 * (seal.c): WANT is the acceptor's first sealed frame.  Encryption is on
 * when either HELLO asks for it.
 *
 * Nothing a connection says counts before its proof: what a HELLO claims
 * (the node's name, state, incarnation) is kept on the connection and
 * applied to the peer only once that peer's AUTH verified; before that the
 * connection is not the peer's (repl_peer_of gives NULL for it).  Only
 * HELLO, AUTH, REFUSE and then WANT are accepted, in that order; anything
 * else closes the connection.  A wrong key is refused (REFUSE, close) and
 * logged once until a handshake with that peer succeeds again; an unknown
 * node name or another protocol version is refused the same way.  An
 * acceptor's REFUSE is believed only on our own (outbound) connections.
 *
 * Called by peer.c for every frame until the connection is READY (and for
 * REFUSE at any time).
 */
#include <event2/buffer.h>
#include <string.h>

#include "artemis/clock.h"
#include "artemis/log.h"
#include "artemis/str.h"
#include "repl.h"

static void hs__refuse(repl_conn_t *c, const char *reason)
{
	repl_enc_t *e = &c->r->enc;

	repl_enc_begin(e, REPL_REFUSE, 1);
	repl_enc_s(e, reason, strlen(reason));
	repl_send(c, e);
	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		repl_conn_close(c, NULL);
}

void repl_hello_send(repl_conn_t *c)
{
	repl_t *r = c->r;
	repl_enc_t *e = &r->enc;

	if (c->hello_sent)
		return;
	c->hello_sent = true;
	repl_enc_begin(e, REPL_HELLO, 8);
	repl_enc_u(e, REPL_PROTO_VERSION);
	repl_enc_s(e, r->cfg->name, strlen(r->cfg->name));
	repl_enc_u(e, r->incarnation);
	repl_enc_s(e, c->nonce, REPL_NONCE_BYTES);
	repl_enc_u(e, (uint64_t)shm_node_state(r->shm));
	repl_enc_s(e, r->cfg->zone, strlen(r->cfg->zone));
	repl_enc_u(e, r->cfg->cluster_encrypt ? REPL_HELLO_ENCRYPT : 0);
	repl_enc_u(e, repl_kinds_known());
	if (repl_enc_end(e) < 0) {
		repl_conn_close(c, "out of memory");
		return;
	}
	repl_hello_hash(e->b.data + REPL_FRAME_HDR, e->b.len - REPL_FRAME_HDR, c->hello_mine);
	repl_send(c, e);
}

/* Both HELLOs, the connector's first. */
static void hs__transcript(const repl_conn_t *c, uint8_t th[REPL_HASH_BYTES])
{
	if (c->outbound)
		repl_transcript(c->hello_mine, c->hello_peer, th);
	else
		repl_transcript(c->hello_peer, c->hello_mine, th);
}

/* Our proof, then every frame we send is sealed. */
static void hs__send_auth(repl_conn_t *c)
{
	repl_t *r = c->r;
	uint8_t th[REPL_HASH_BYTES], mac[REPL_MAC_BYTES];

	hs__transcript(c, th);
	repl_auth_proof(r->key, c->outbound, th, mac);
	repl_enc_begin(&r->enc, REPL_AUTH, 1);
	repl_enc_s(&r->enc, mac, sizeof(mac));
	repl_send(c, &r->enc);
	repl_session_keys(r->key, th, c->outbound, c->encrypt, &c->tx, &c->rx);
	c->tx_sealed = true;
}

static int hs__find(repl_t *r, shm_str_t name)
{
	for (int i = 0; i < r->npeers; i++)
		if (strlen(r->peers[i].cfg->name) == name.len &&
		    memcmp(r->peers[i].cfg->name, name.ptr, name.len) == 0)
			return i;
	return -1;
}

/* A HELLO's version is refused by name (repl_decode lets another version's
 * HELLO through with only its version read). */
static bool hs__version_ok(repl_conn_t *c, const repl_msg_t *m)
{
	if (m->u[0] == REPL_PROTO_VERSION)
		return true;
	if (c->outbound)
		log_warn("peer %s: protocol version %llu, this node speaks %d; refused",
		         repl_peer_name(c->r, c->peer), (unsigned long long)m->u[0],
		         REPL_PROTO_VERSION);
	else
		repl_anon_log(c, "protocol version %llu, this node speaks %d",
		              (unsigned long long)m->u[0], REPL_PROTO_VERSION);
	hs__refuse(c, "protocol version");
	return false;
}

static void hs__on_hello(repl_conn_t *c, const repl_msg_t *m, const char *raw, size_t len)
{
	repl_t *r = c->r;
	shm_str_t name = m->s[0], nonce = m->s[1];

	if (!hs__version_ok(c, m))
		return;
	if (nonce.len != REPL_NONCE_BYTES || !(m->u[4] & (1ull << REPL_REC_INSTANCE))) {
		if (!c->outbound)
			repl_anon_log(c, "a malformed HELLO");
		repl_conn_close(c, "bad HELLO");
		return;
	}
	int idx = hs__find(r, name);
	if (idx < 0 || (c->outbound && idx != c->peer)) {
		char shown[64];
		str_escape(name.ptr, name.len > 63 ? 63 : name.len, shown, sizeof(shown));
		if (c->outbound)
			log_warn("peer %s answered as node '%s'; refused",
			         repl_peer_name(r, c->peer), shown);
		else
			repl_anon_log(c, "node '%s' is not a configured peer", shown);
		hs__refuse(c, "unknown node");
		return;
	}
	/* Kept on the connection: nothing of it counts before the proof. */
	c->peer = idx;
	c->peer_inc = m->u[1];
	c->peer_state = (uint32_t)m->u[2];
	c->peer_kinds = m->u[4];
	c->encrypt = r->cfg->cluster_encrypt || (m->u[3] & REPL_HELLO_ENCRYPT);
	repl_hello_hash(raw, len, c->hello_peer);
	c->hs = REPL_HS_AUTH;
	if (!c->outbound) {
		repl_hello_send(c);
		if (!c->dead)
			hs__send_auth(c);
	}
}

static void hs__send_want(repl_conn_t *c)
{
	repl_peer_t *p = repl_peer_of(c);
	repl_enc_t *e = &c->r->enc;
	bool resume = p->rx_valid && p->rx_inc == c->peer_inc;

	if (!resume) {
		p->rx_valid = false;
		p->rx_inc = c->peer_inc;
		p->rx_applied = 0;
	}
	repl_enc_begin(e, REPL_WANT, 2);
	repl_enc_u(e, resume ? p->rx_inc : 0);
	repl_enc_u(e, resume ? p->rx_applied : 0);
	repl_send(c, e);
}

static void hs__ready(repl_conn_t *c)
{
	repl_peer_t *p = repl_peer_of(c);

	c->hs = REPL_HS_READY;
	p->last_seen_ms = clock_mono_ms();
	p->key_logged = false;
	log_info("peer %s: %s connection up%s%s", p->cfg->name,
	         c->outbound ? "outbound" : "inbound", c->encrypt ? " (encrypted)" : "",
	         c->r->tls ? " (TLS)" : "");
	if (c->outbound) {
		p->down_logged = false;
		p->backoff_ms = 0;
		repl_mgmt_ready(c);
		return;
	}
	if (p->in && p->in != c)
		repl_conn_close(p->in, "replaced by a new connection");
	p->in = c;
	/* It is back (a restart): connect to it now, not after our backoff,
	 * so its bootstrap snapshot is not delayed. */
	if (p->out == NULL) {
		p->connect_at = 0;
		p->backoff_ms = 0;
	}
	hs__send_want(c);
	repl_mgmt_ready(c); /* MWANT after WANT: the connector expects WANT first */
}

/* Logged once until a handshake with that peer succeeds again, whichever
 * side noticed first. */
static void hs__wrong_key(repl_conn_t *c)
{
	repl_peer_t *p = &c->r->peers[c->peer];

	if (!p->key_logged)
		log_error(
		    "peer %s: wrong cluster key ([cluster] key differs)%s%s; refused, nothing "
		    "from it is applied",
		    p->cfg->name, c->outbound ? "" : ", connection from ",
		    c->outbound ? "" : c->addr);
	p->key_logged = true;
}

static void hs__on_auth(repl_conn_t *c, const repl_msg_t *m)
{
	repl_t *r = c->r;
	uint8_t th[REPL_HASH_BYTES];

	hs__transcript(c, th);
	if (repl_auth_verify(r->key, !c->outbound, th, (const uint8_t *)m->s[0].ptr, m->s[0].len) <
	    0) {
		hs__wrong_key(c);
		hs__refuse(c, "authentication failed");
		return;
	}
	/* The peer proved it holds the key: what its HELLO said counts now. */
	repl_peer_t *p = &r->peers[c->peer];
	p->node_state = c->peer_state;
	c->rx_sealed = true;
	if (c->outbound) {
		hs__send_auth(c);
		c->hs = REPL_HS_WANT;
		p->last_seen_ms = clock_mono_ms();
		return;
	}
	c->hs = REPL_HS_WANT; /* authenticated; hs__ready makes it READY */
	hs__ready(c);
}

static void hs__on_refuse(repl_conn_t *c, const repl_msg_t *m)
{
	repl_peer_t *p = repl_peer_of(c);
	shm_str_t why = m->s[0];
	bool key = why.len == 21 && memcmp(why.ptr, "authentication failed", 21) == 0;
	char shown[201];

	if (p == NULL) { /* an unauthenticated acceptor's word is not taken */
		repl_anon_log(c, "refused before its handshake");
		repl_conn_close(c, NULL);
		return;
	}
	if (key)
		hs__wrong_key(c);
	else {
		str_escape(why.ptr, why.len > 200 ? 200 : why.len, shown, sizeof(shown));
		log_error("peer %s refused this node: %s", p->cfg->name, shown);
	}
	repl_conn_close(c, NULL);
}

/* A frame out of place in the handshake: the connection is closed. */
static void hs__bad_order(repl_conn_t *c, const char *where)
{
	repl_peer_t *p = repl_peer_of(c);

	if (p)
		log_warn("peer %s: a frame %s in the handshake; closing the connection",
		         p->cfg->name, where);
	else if (!c->outbound)
		repl_anon_log(c, "a frame %s in the handshake", where);
	repl_conn_close(c, "frame out of order");
}

void repl_handshake(repl_conn_t *c, const repl_msg_t *m, const char *raw, size_t len)
{
	if (m->type == REPL_REFUSE) {
		hs__on_refuse(c, m);
		return;
	}
	switch (c->hs) {
	case REPL_HS_HELLO:
		if (m->type == REPL_HELLO)
			hs__on_hello(c, m, raw, len);
		else
			hs__bad_order(c, "before HELLO");
		return;
	case REPL_HS_AUTH:
		if (m->type == REPL_AUTH)
			hs__on_auth(c, m);
		else
			hs__bad_order(c, "before AUTH");
		return;
	case REPL_HS_WANT:
		if (m->type != REPL_WANT) {
			hs__bad_order(c, "before WANT");
			return;
		}
		hs__ready(c);
		repl_sender_start(c, m->u[0], m->u[1]);
		return;
	case REPL_HS_READY: /* only REFUSE comes here then */
		return;
	}
}

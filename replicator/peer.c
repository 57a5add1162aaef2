/*
 * peer.c - the replicator's connections: the [cluster] listener, one
 * outbound connection per peer (reconnected with backoff), the handshake,
 * framing and dispatch, and each peer's status in the region.
 *
 * Handshake (proto.h, auth.c):
 *   connector -> HELLO (version, name, incarnation, nonce, state, zone)
 *   acceptor  -> HELLO, AUTH (its proof over the connector's nonce)
 *   connector -> AUTH (its proof over the acceptor's nonce)
 *   acceptor  -> WANT (what it already holds from the connector)
 * Nothing but these is accepted before the handshake ends; a wrong key
 * is refused (REFUSE, close) and logged once until a handshake with that
 * peer succeeds again.  An unknown node name is refused the same way.
 *
 * A connection is never freed inside its own callbacks: repl_conn_close
 * marks it dead and repl_conns_check (the tick) frees it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "artemis/clock.h"
#include "artemis/log.h"
#include "repl.h"

const char *repl_peer_name(const repl_t *r, int peer)
{
	return peer >= 0 && peer < r->npeers ? r->peers[peer].cfg->name : "(unidentified)";
}

static repl_peer_t *peer__of(repl_conn_t *c)
{
	return c->peer >= 0 ? &c->r->peers[c->peer] : NULL;
}

/* ---- Sending -------------------------------------------------------------- */

int repl_send(repl_conn_t *c, repl_enc_t *e)
{
	int rc = repl_enc_end(e);

	if (rc < 0)
		return rc;
	if (c->dead || c->closing)
		return -EPIPE;
	return bufferevent_write(c->bev, e->sb.data, e->sb.size) == 0 ? 0 : -ENOMEM;
}

bool repl_conn_busy(const repl_conn_t *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev)) > REPL_OUT_HIGH;
}

static void peer__refuse(repl_conn_t *c, const char *reason)
{
	repl_enc_t *e = &c->r->enc;

	if (repl_enc_begin(e, REPL_REFUSE, 1) == 0 && repl_enc_s(e, reason, strlen(reason)) == 0)
		repl_send(c, e);
	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		repl_conn_close(c, NULL);
}

static void peer__send_hello(repl_conn_t *c)
{
	repl_t *r = c->r;
	repl_enc_t *e = &r->enc;
	int rc = repl_enc_begin(e, REPL_HELLO, 6);

	rc = rc ? rc : repl_enc_u(e, REPL_PROTO_VERSION);
	rc = rc ? rc : repl_enc_s(e, r->cfg->name, strlen(r->cfg->name));
	rc = rc ? rc : repl_enc_u(e, r->incarnation);
	rc = rc ? rc : repl_enc_s(e, c->nonce, REPL_NONCE_BYTES);
	rc = rc ? rc : repl_enc_u(e, (uint64_t)shm_node_state(r->shm));
	rc = rc ? rc : repl_enc_s(e, r->cfg->zone, strlen(r->cfg->zone));
	if (rc == 0)
		repl_send(c, e);
}

static void peer__send_auth(repl_conn_t *c)
{
	repl_t *r = c->r;
	uint8_t mac[REPL_MAC_BYTES];

	repl_auth_proof(r->key, c->outbound, c->nonce, c->peer_nonce, r->cfg->name,
	                repl_peer_name(r, c->peer), mac);
	if (repl_enc_begin(&r->enc, REPL_AUTH, 1) == 0 &&
	    repl_enc_s(&r->enc, mac, sizeof(mac)) == 0)
		repl_send(c, &r->enc);
}

/* ---- Closing -------------------------------------------------------------- */

void repl_conn_close(repl_conn_t *c, const char *why)
{
	repl_t *r = c->r;
	repl_peer_t *p = peer__of(c);

	if (c->dead)
		return;
	c->dead = true;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	if (p == NULL)
		return;
	if (c->hs == REPL_HS_READY && why)
		log_warn("peer %s: %s connection closed: %s", p->cfg->name,
		         c->outbound ? "outbound" : "inbound", why);
	if (p->out == c) {
		p->out = NULL;
		p->connect_at = clock_mono_ms() + p->backoff_ms;
		p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : REPL_BACKOFF_MIN_MS;
		if (p->backoff_ms > REPL_BACKOFF_MAX_MS)
			p->backoff_ms = REPL_BACKOFF_MAX_MS;
	}
	if (p->in == c) {
		p->in = NULL;
		if (p->in_snapshot) { /* a half snapshot says nothing complete */
			p->in_snapshot = false;
			p->rx_valid = false;
		}
	}
	(void)r;
}

/* Free dead connections; close those silent too long or stuck in the
 * handshake.  Called from the tick. */
void repl_conns_check(repl_t *r, uint64_t now)
{
	repl_conn_t **pp = &r->conns;

	while (*pp) {
		repl_conn_t *c = *pp;
		if (!c->dead && c->hs != REPL_HS_READY && now - c->opened_ms > REPL_HANDSHAKE_MS)
			repl_conn_close(c, "handshake timed out");
		else if (!c->dead && c->hs == REPL_HS_READY && now - c->last_rx_ms > REPL_DEAD_MS)
			repl_conn_close(c, "nothing received for 15 s");
		if (c->dead) {
			*pp = c->next;
			buf_free(&c->pulls);
			buf_free(&c->sweeps);
			bufferevent_free(c->bev);
			free(c);
			continue;
		}
		pp = &c->next;
	}
}

void repl_conns_free(repl_t *r)
{
	for (repl_conn_t *c = r->conns; c; c = c->next)
		repl_conn_close(c, NULL);
	repl_conns_check(r, clock_mono_ms());
}

/* ---- Handshake ------------------------------------------------------------ */

static int peer__find(repl_t *r, shm_str_t name)
{
	for (int i = 0; i < r->npeers; i++)
		if (strlen(r->peers[i].cfg->name) == name.len &&
		    memcmp(r->peers[i].cfg->name, name.ptr, name.len) == 0)
			return i;
	return -1;
}

static void peer__on_hello(repl_conn_t *c, const repl_msg_t *m)
{
	repl_t *r = c->r;
	shm_str_t name = m->s[0], nonce = m->s[1];

	if (m->u[0] != REPL_PROTO_VERSION) {
		log_warn("peer %.*s: protocol version %llu, this node speaks %d; refused",
		         (int)(name.len > 63 ? 63 : name.len), name.ptr,
		         (unsigned long long)m->u[0], REPL_PROTO_VERSION);
		peer__refuse(c, "protocol version");
		return;
	}
	if (nonce.len != REPL_NONCE_BYTES) {
		repl_conn_close(c, "bad HELLO");
		return;
	}
	int idx = peer__find(r, name);
	if (idx < 0 || (c->outbound && idx != c->peer)) {
		log_warn("replication connection from unknown node '%.*s'; refused",
		         (int)(name.len > 63 ? 63 : name.len), name.ptr);
		peer__refuse(c, "unknown node");
		return;
	}
	c->peer = idx;
	memcpy(c->peer_nonce, nonce.ptr, REPL_NONCE_BYTES);
	c->peer_inc = m->u[1];
	r->peers[idx].node_state = (uint32_t)m->u[2];
	c->hs = REPL_HS_AUTH;
	if (!c->outbound) {
		peer__send_hello(c);
		peer__send_auth(c);
	}
}

static void peer__send_want(repl_conn_t *c)
{
	repl_peer_t *p = peer__of(c);
	repl_enc_t *e = &c->r->enc;
	bool resume = p->rx_valid && p->rx_inc == c->peer_inc;

	if (!resume) {
		p->rx_valid = false;
		p->rx_inc = c->peer_inc;
		p->rx_applied = 0;
	}
	int rc = repl_enc_begin(e, REPL_WANT, 2);
	rc = rc ? rc : repl_enc_u(e, resume ? p->rx_inc : 0);
	rc = rc ? rc : repl_enc_u(e, resume ? p->rx_applied : 0);
	if (rc == 0)
		repl_send(c, e);
}

static void peer__ready(repl_conn_t *c)
{
	repl_peer_t *p = peer__of(c);

	c->hs = REPL_HS_READY;
	p->last_seen_ms = clock_mono_ms();
	p->key_logged = false;
	log_info("peer %s: %s connection up", p->cfg->name, c->outbound ? "outbound" : "inbound");
	if (c->outbound) {
		p->down_logged = false;
		p->backoff_ms = 0;
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
	peer__send_want(c);
}

/* Logged once until a handshake with that peer succeeds again, whichever
 * side noticed first. */
static void peer__wrong_key(repl_peer_t *p)
{
	if (!p->key_logged)
		log_error("peer %s: wrong cluster key ([cluster] key differs); refused, nothing "
		          "from it is applied",
		          p->cfg->name);
	p->key_logged = true;
}

static void peer__on_auth(repl_conn_t *c, const repl_msg_t *m)
{
	repl_t *r = c->r;
	repl_peer_t *p = peer__of(c);

	if (repl_auth_verify(r->key, !c->outbound, c->peer_nonce, c->nonce, p->cfg->name,
	                     r->cfg->name, (const uint8_t *)m->s[0].ptr, m->s[0].len) < 0) {
		peer__wrong_key(p);
		peer__refuse(c, "authentication failed");
		return;
	}
	if (c->outbound) {
		peer__send_auth(c);
		c->hs = REPL_HS_WANT;
		p->last_seen_ms = clock_mono_ms();
		return;
	}
	peer__ready(c);
}

static void peer__on_refuse(repl_conn_t *c, const repl_msg_t *m)
{
	repl_peer_t *p = peer__of(c);
	shm_str_t why = m->s[0];
	bool key = why.len == 21 && memcmp(why.ptr, "authentication failed", 21) == 0;

	if (p && key)
		peer__wrong_key(p);
	else if (p)
		log_error("peer %s refused this node: %.*s", p->cfg->name,
		          (int)(why.len > 200 ? 200 : why.len), why.ptr);
	repl_conn_close(c, NULL);
}

/* One frame.  Before the handshake ends only its own messages pass. */
static void peer__dispatch(repl_conn_t *c, const repl_msg_t *m)
{
	if (m->type == REPL_REFUSE) {
		peer__on_refuse(c, m);
		return;
	}
	switch (c->hs) {
	case REPL_HS_HELLO:
		if (m->type == REPL_HELLO)
			peer__on_hello(c, m);
		else
			repl_conn_close(c, "frame before HELLO");
		return;
	case REPL_HS_AUTH:
		if (m->type == REPL_AUTH)
			peer__on_auth(c, m);
		else
			repl_conn_close(c, "frame before AUTH");
		return;
	case REPL_HS_WANT:
		if (m->type != REPL_WANT) {
			repl_conn_close(c, "frame before WANT");
			return;
		}
		peer__ready(c);
		repl_sender_start(c, m->u[0], m->u[1]);
		return;
	case REPL_HS_READY:
		peer__of(c)->last_seen_ms = c->last_rx_ms;
		repl_on_frame(c, m);
		return;
	}
}

static void peer__on_read(struct bufferevent *bev, void *arg)
{
	repl_conn_t *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	c->last_rx_ms = clock_mono_ms();
	while (!c->dead && !c->closing) {
		uint8_t hdr[REPL_FRAME_HDR];
		size_t len = 0;
		ssize_t got = evbuffer_copyout(in, hdr, sizeof(hdr));
		int rc = repl_frame_len(hdr, got < 0 ? 0 : (size_t)got, &len);
		if (rc == -EMSGSIZE || (c->hs != REPL_HS_READY && len > REPL_MAX_HS_FRAME)) {
			repl_conn_close(c, "frame too large");
			break;
		}
		if (evbuffer_get_length(in) < REPL_FRAME_HDR + len)
			break;
		const char *p = (const char *)evbuffer_pullup(in, (ssize_t)(REPL_FRAME_HDR + len));
		repl_msg_t m;
		if (p == NULL || repl_decode(p + REPL_FRAME_HDR, len, &m) < 0) {
			if (c->peer >= 0)
				log_warn("peer %s: malformed frame; closing the connection",
				         repl_peer_name(c->r, c->peer));
			repl_conn_close(c, NULL);
			break;
		}
		peer__dispatch(c, &m);
		repl_msg_free(&m);
		evbuffer_drain(in, REPL_FRAME_HDR + len);
	}
	if (!c->dead && c->hs == REPL_HS_READY)
		repl_receiver_flush(c);
}

static void peer__on_write(struct bufferevent *bev, void *arg)
{
	repl_conn_t *c = arg;

	(void)bev;
	if (c->closing)
		repl_conn_close(c, NULL);
}

static void peer__on_event(struct bufferevent *bev, short what, void *arg)
{
	repl_conn_t *c = arg;
	repl_peer_t *p = peer__of(c);

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		int fd = bufferevent_getfd(c->bev), one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		peer__send_hello(c);
		return;
	}
	if (c->outbound && c->hs == REPL_HS_HELLO && p && !p->down_logged) {
		int e = EVUTIL_SOCKET_ERROR();
		log_warn("peer %s (%s): unreachable: %s", p->cfg->name, p->cfg->repl_addr,
		         (what & BEV_EVENT_EOF) ? "connection closed"
		                                : evutil_socket_error_to_string(e));
		p->down_logged = true;
	}
	repl_conn_close(c, (what & BEV_EVENT_EOF) ? "closed by the peer" : "socket error");
}

static repl_conn_t *peer__conn_new(repl_t *r, evutil_socket_t fd, bool outbound, int peer)
{
	repl_conn_t *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->bev = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		free(c);
		return NULL;
	}
	c->r = r;
	c->outbound = outbound;
	c->peer = peer;
	c->opened_ms = c->last_rx_ms = clock_mono_ms();
	repl_auth_nonce(c->nonce);
	bufferevent_setcb(c->bev, peer__on_read, peer__on_write, peer__on_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, REPL_MAX_FRAME + REPL_FRAME_HDR + 65536);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = r->conns;
	r->conns = c;
	return c;
}

/* ---- Listening and connecting -------------------------------------------- */

static int peer__resolve(const char *hostport, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[CONFIG_STR], portstr[16];
	int port;
	struct addrinfo hints, *res = NULL;

	if (config_split_hostport(hostport, host, sizeof(host), &port) < 0)
		return -EINVAL;
	snprintf(portstr, sizeof(portstr), "%d", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if (getaddrinfo(host[0] && strcmp(host, "*") != 0 ? host : NULL, portstr, &hints, &res) != 0 ||
	    res == NULL)
		return -EHOSTUNREACH;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void peer__on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                            int salen, void *arg)
{
	repl_t *r = arg;
	int one = 1;

	(void)l;
	(void)sa;
	(void)salen;
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (peer__conn_new(r, fd, false, -1) == NULL)
		evutil_closesocket(fd);
}

int repl_listen(repl_t *r)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int rc = peer__resolve(r->cfg->cluster_listen, &ss, &len);

	if (rc == 0) {
		r->listener = evconnlistener_new_bind(r->base, peer__on_accept, r,
		                                      LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
		                                          LEV_OPT_CLOSE_ON_EXEC,
		                                      128, (struct sockaddr *)&ss, (int)len);
		if (r->listener == NULL)
			rc = errno ? -errno : -EADDRINUSE;
	}
	if (rc < 0) {
		if (!r->listen_logged)
			log_error("cannot listen on [cluster] listen %s: %s; retrying every second",
			          r->cfg->cluster_listen, strerror(-rc));
		r->listen_logged = true;
		r->listen_retry_at = clock_mono_ms() + 1000;
		return rc;
	}
	if (r->listen_logged)
		log_info("listening on %s for peers", r->cfg->cluster_listen);
	r->listen_logged = false;
	r->listen_retry_at = 0;
	return 0;
}

static void peer__connect(repl_t *r, int idx)
{
	repl_peer_t *p = &r->peers[idx];
	struct sockaddr_storage ss;
	socklen_t len;

	p->ever_tried = true;
	p->connect_at = clock_mono_ms() + (p->backoff_ms ? p->backoff_ms : REPL_BACKOFF_MIN_MS);
	if (peer__resolve(p->cfg->repl_addr, &ss, &len) < 0) {
		if (!p->down_logged)
			log_warn("peer %s: cannot resolve %s", p->cfg->name, p->cfg->repl_addr);
		p->down_logged = true;
		return;
	}
	repl_conn_t *c = peer__conn_new(r, -1, true, idx);
	if (c == NULL)
		return;
	p->out = c;
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, (int)len) < 0)
		repl_conn_close(c, NULL);
}

void repl_connect_due(repl_t *r, uint64_t now)
{
	for (int i = 0; i < r->npeers; i++)
		if (r->peers[i].out == NULL && now >= r->peers[i].connect_at)
			peer__connect(r, i);
}

/* ---- Status --------------------------------------------------------------- */

bool repl_peer_reachable(const repl_peer_t *p, uint64_t now)
{
	bool ready =
	    (p->out && p->out->hs == REPL_HS_READY) || (p->in && p->in->hs == REPL_HS_READY);
	return ready && p->last_seen_ms && now - p->last_seen_ms < REPL_SEEN_MS;
}

void repl_status_publish(repl_t *r)
{
	uint64_t now = clock_mono_ms();

	for (int i = 0; i < r->npeers; i++) {
		repl_peer_t *p = &r->peers[i];
		shm_peer_t sp;
		memset(&sp, 0, sizeof(sp));
		snprintf(sp.name, sizeof(sp.name), "%s", p->cfg->name);
		snprintf(sp.zone, sizeof(sp.zone), "%s", p->cfg->zone);
		snprintf(sp.url, sizeof(sp.url), "%s", p->cfg->url);
		if (repl_peer_reachable(p, now))
			sp.state = p->node_state == SHM_NODE_UP         ? SHM_PEER_UP
			           : p->node_state == SHM_NODE_STARTING ? SHM_PEER_STARTING
			                                                : SHM_PEER_DOWN;
		else
			sp.state =
			    p->ever_tried || p->last_seen_ms ? SHM_PEER_DOWN : SHM_PEER_UNKNOWN;
		sp.last_seen_ms = p->last_seen_ms ? clock_wall_ms() - (now - p->last_seen_ms) : 0;
		sp.acked_version = p->acked_version;
		sp.lag_ms = p->lag_ms;
		shm_peer_set(r->shm, p->id, &sp);
	}
}

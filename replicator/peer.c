/*
 * peer.c - the replicator's connections: the [cluster] listener, one
 * outbound connection per peer (reconnected with backoff), framing (sealed
 * after the handshake, seal.c), dispatch, and each peer's status in the
 * region.  The handshake itself is handshake.c.
 *
 * A frame whose tag does not verify (injected, altered, replayed,
 * reordered) closes the connection and is logged (one line per peer per
 * 10 s); nothing it carried is applied.  Before a connection's handshake
 * ends its frames are at most REPL_MAX_HS_FRAME bytes, at most
 * REPL_MAX_HANDSHAKES accepted connections may be in their handshake (a
 * new one closes the oldest), and each has REPL_HANDSHAKE_MS to finish.
 * What unauthenticated connections do is logged at most once per
 * REPL_ANON_LOG_MS, with their address, never under a peer's name.
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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "artemis/clock.h"
#include "artemis/log.h"
#include "artemis/str.h"
#include "repl.h"

const char *repl_peer_name(const repl_t *r, int peer)
{
	return peer >= 0 && peer < r->npeers ? r->peers[peer].cfg->name : "(unidentified)";
}

repl_peer_t *repl_peer_of(repl_conn_t *c)
{
	if (c->peer < 0 || (!c->outbound && c->hs < REPL_HS_WANT))
		return NULL;
	return &c->r->peers[c->peer];
}

/* A line about a connection that has not proved anything: its address,
 * at most one per REPL_ANON_LOG_MS. */
void repl_anon_log(repl_conn_t *c, const char *fmt, ...)
{
	repl_t *r = c->r;
	uint64_t now = clock_mono_ms();
	char what[256];
	va_list ap;

	if (r->anon_log_ms && now - r->anon_log_ms < REPL_ANON_LOG_MS) {
		r->anon_unlogged++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	log_warn("replication connection from %s: %s; closed (%llu more such lines not logged "
	         "in the last %d s)",
	         c->addr, what, (unsigned long long)r->anon_unlogged, REPL_ANON_LOG_MS / 1000);
	r->anon_log_ms = now;
	r->anon_unlogged = 0;
}

/* ---- Sending -------------------------------------------------------------- */

int repl_send(repl_conn_t *c, repl_enc_t *e)
{
	int rc = repl_enc_end(e);
	size_t n = e->b.len;

	if (rc < 0)
		return rc;
	if (c->dead || c->closing)
		return -EPIPE;
	if (c->tx_sealed) { /* in place: the frame is sent once */
		if (buf_reserve(&e->b, REPL_TAG_BYTES) < 0)
			return -ENOMEM;
		repl_seal(&c->tx, (const uint8_t *)e->b.data, n - REPL_FRAME_HDR,
		          (uint8_t *)e->b.data);
		n += REPL_TAG_BYTES;
	}
	return bufferevent_write(c->bev, e->b.data, n) == 0 ? 0 : -ENOMEM;
}

bool repl_conn_busy(const repl_conn_t *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev)) > REPL_OUT_HIGH;
}

/* ---- Closing -------------------------------------------------------------- */

void repl_conn_close(repl_conn_t *c, const char *why)
{
	repl_t *r = c->r;
	repl_peer_t *p = repl_peer_of(c);

	if (c->dead)
		return;
	c->dead = true;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	repl_pulls_forget(r, c);
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
}

static void peer__conn_free(repl_conn_t *c)
{
	buf_free(&c->pulls);
	buf_free(&c->serving);
	buf_free(&c->sweeps);
	repl_seal_wipe(&c->tx);
	repl_seal_wipe(&c->rx);
	bufferevent_free(c->bev);
	free(c);
}

/* Free dead connections; close those silent too long or stuck in the
 * handshake.  Called from the tick. */
void repl_conns_check(repl_t *r, uint64_t now)
{
	repl_conn_t **pp = &r->conns;

	while (*pp) {
		repl_conn_t *c = *pp;
		if (!c->dead && c->hs != REPL_HS_READY && now - c->opened_ms > REPL_HANDSHAKE_MS) {
			if (!c->outbound)
				repl_anon_log(c, "no handshake within %d ms", REPL_HANDSHAKE_MS);
			repl_conn_close(c, "handshake timed out");
		} else if (!c->dead && c->hs == REPL_HS_READY && now - c->last_rx_ms > REPL_DEAD_MS)
			repl_conn_close(c, "nothing received for 15 s");
		if (c->dead) {
			*pp = c->next;
			peer__conn_free(c);
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

/* A frame that fails its tag or does not decode: the connection is
 * closed; logged for an authenticated peer (one line per 10 s each), with
 * the address otherwise. */
static void peer__bad_frame(repl_conn_t *c, int rc)
{
	repl_peer_t *p = repl_peer_of(c);
	const char *what = rc == -EBADMSG ? "a frame failed authentication (forged, altered, "
	                                    "replayed or out of order); nothing in it was applied"
	                   : rc == -EPROTONOSUPPORT ? "a record kind this node does not know"
	                                            : "a malformed frame";
	uint64_t now = clock_mono_ms();

	if (p == NULL) {
		repl_anon_log(c, "%s", what);
	} else if (p->forged_log_ms && now - p->forged_log_ms < REPL_ANON_LOG_MS) {
		p->forged_unlogged++;
	} else {
		log_error("peer %s: %s connection: %s; closing it (%llu more not logged in the "
		          "last %d s)",
		          p->cfg->name, c->outbound ? "outbound" : "inbound", what,
		          (unsigned long long)p->forged_unlogged, REPL_ANON_LOG_MS / 1000);
		p->forged_log_ms = now;
		p->forged_unlogged = 0;
	}
	repl_conn_close(c, NULL);
}

/* The next whole frame: its payload (opened when sealed) in *payload, the
 * frame's size on the wire in *wire.  -EAGAIN when incomplete; any other
 * error closes the connection. */
static int peer__frame(repl_conn_t *c, struct evbuffer *in, char **payload, size_t *plen,
                       size_t *wire)
{
	uint8_t hdr[REPL_FRAME_HDR];
	size_t len = 0;
	ev_ssize_t got = evbuffer_copyout(in, hdr, sizeof(hdr));
	int rc = repl_frame_len(hdr, got < 0 ? 0 : (size_t)got, &len);

	if (rc == -EMSGSIZE || (!c->rx_sealed && len > REPL_MAX_HS_FRAME))
		return -EMSGSIZE;
	if (evbuffer_get_length(in) < REPL_FRAME_HDR + len)
		return -EAGAIN;
	uint8_t *f = evbuffer_pullup(in, (ev_ssize_t)(REPL_FRAME_HDR + len));
	if (f == NULL)
		return -ENOMEM;
	*wire = REPL_FRAME_HDR + len;
	*payload = (char *)f + REPL_FRAME_HDR;
	*plen = len;
	if (!c->rx_sealed)
		return 0;
	rc = repl_open(&c->rx, f, len);
	if (rc == 0)
		*plen = len - REPL_TAG_BYTES;
	return rc;
}

static void peer__on_read(struct bufferevent *bev, void *arg)
{
	repl_conn_t *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	c->last_rx_ms = clock_mono_ms();
	while (!c->dead && !c->closing) {
		char *payload = NULL;
		size_t plen = 0, wire = 0;
		repl_msg_t m = {0};
		int rc = peer__frame(c, in, &payload, &plen, &wire);
		if (rc == -EAGAIN)
			break;
		if (rc == 0)
			rc = repl_decode(payload, plen, &m);
		if (rc == -EMSGSIZE) {
			if (repl_peer_of(c))
				log_warn("peer %s: a frame too large; closing the connection",
				         repl_peer_of(c)->cfg->name);
			else
				repl_anon_log(c, "a frame too large for the handshake");
			repl_conn_close(c, NULL);
			break;
		}
		if (rc < 0) {
			peer__bad_frame(c, rc);
			break;
		}
		if (m.type == REPL_REFUSE || c->hs != REPL_HS_READY) {
			repl_handshake(c, &m, payload, plen);
		} else {
			repl_peer_of(c)->last_seen_ms = c->last_rx_ms;
			repl_on_frame(c, &m);
		}
		repl_msg_free(&m);
		evbuffer_drain(in, wire);
	}
	if (!c->dead && c->hs == REPL_HS_READY)
		repl_receiver_flush(c);
	repl_mgmt_flush(c->r); /* the rows of this read, committed */
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

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		int fd = bufferevent_getfd(c->bev), one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		repl_hello_send(c);
		return;
	}
	repl_peer_t *p = c->outbound ? &c->r->peers[c->peer] : NULL;
	char tls[128] = "";
	if (c->r->tls && c->hs == REPL_HS_HELLO)
		repl_tls_error(c->bev, tls, sizeof(tls));
	if (p && c->hs == REPL_HS_HELLO && !p->down_logged) {
		int e = EVUTIL_SOCKET_ERROR();
		log_warn("peer %s (%s): unreachable: %s%s", p->cfg->name, p->cfg->repl_addr,
		         tls[0] ? "TLS: " : "",
		         tls[0]                   ? tls
		         : (what & BEV_EVENT_EOF) ? "connection closed"
		                                  : evutil_socket_error_to_string(e));
		p->down_logged = true;
	} else if (!c->outbound && tls[0]) {
		repl_anon_log(c, "TLS: %s", tls);
	}
	repl_conn_close(c, (what & BEV_EVENT_EOF) ? "closed by the peer" : "socket error");
}

static repl_conn_t *peer__conn_new(repl_t *r, evutil_socket_t fd, bool outbound, int peer,
                                   const char *addr)
{
	repl_conn_t *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->bev = r->tls ? repl_tls_bev(r, fd, outbound)
	                : bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		free(c);
		return NULL;
	}
	c->r = r;
	c->outbound = outbound;
	c->peer = peer;
	snprintf(c->addr, sizeof(c->addr), "%s", addr ? addr : "?");
	c->opened_ms = c->last_rx_ms = clock_mono_ms();
	repl_auth_nonce(c->nonce);
	bufferevent_setcb(c->bev, peer__on_read, peer__on_write, peer__on_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0,
	                         REPL_MAX_FRAME + REPL_TAG_BYTES + REPL_FRAME_HDR + 65536);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = r->conns;
	r->conns = c;
	return c;
}

/* Room for one more connection in its handshake: the oldest accepted one
 * still in it is closed when REPL_MAX_HANDSHAKES are. */
static void peer__handshake_room(repl_t *r)
{
	repl_conn_t *oldest = NULL;
	int n = 0;

	for (repl_conn_t *c = r->conns; c; c = c->next) {
		if (c->dead || c->outbound || c->hs >= REPL_HS_WANT)
			continue;
		n++;
		if (oldest == NULL || c->opened_ms <= oldest->opened_ms)
			oldest = c;
	}
	if (n >= REPL_MAX_HANDSHAKES && oldest) {
		repl_anon_log(oldest, "%d connections in their handshake at once; the oldest goes",
		              REPL_MAX_HANDSHAKES);
		repl_conn_close(oldest, NULL);
	}
}

repl_conn_t *repl_conn_open(repl_t *r, int fd, bool outbound, int peer, const char *addr)
{
	int one = 1;

	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!outbound)
		peer__handshake_room(r);
	repl_conn_t *c = peer__conn_new(r, fd, outbound, peer, addr);
	if (c == NULL) {
		evutil_closesocket(fd);
		return NULL;
	}
	if (outbound) {
		r->peers[peer].out = c;
		repl_hello_send(c);
	}
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
	if (getaddrinfo(host[0] && strcmp(host, "*") != 0 ? host : NULL, portstr, &hints, &res) !=
	        0 ||
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
	char addr[INET6_ADDRSTRLEN + 8] = "?";

	(void)l;
	(void)salen;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, addr, sizeof(addr));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, addr, sizeof(addr));
	repl_conn_open(arg, fd, false, -1, addr);
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
	repl_conn_t *c = peer__conn_new(r, -1, true, idx, p->cfg->repl_addr);
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

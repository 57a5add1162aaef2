/*
 * http_server.c - the HTTP server: the set of connections of one event
 * base, accept, limits, timeouts and drain, and the connection objects.
 *
 * Called by worker.c (http_server_new on the worker's event base with the
 * limits from the configuration and api_dispatch as the handler), by the
 * unit tests (socketpairs) and by the fuzzer (detached connections).
 *
 * Accept.  The listener is drained with accept4() in a loop.  At
 * max_connections the listener is disabled until a connection closes; out
 * of descriptors or memory, accepting pauses for HTTP_ACCEPT_RETRY_MS.
 *
 * Timeouts.  A connection with no traffic for idle_timeout_ms is closed:
 * connections sit in a list ordered by their last I/O progress, swept by a
 * timer from the least recently active end.
 *
 * Connection objects are kept on a free list (HTTP_FREE_CONNS) for reuse.
 *
 * Must not: block, log per connection at more than DEBUG, or close the
 * listening socket (the master owns it).
 */
#include "http_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "artemis/clock.h"
#include "artemis/log.h"

static void srv_accept_resume(http_server_t *s);

/* ---- Connection objects ------------------------------------------------- */

static void conns_changed(http_server_t *s)
{
	if (s->conns_fn)
		s->conns_fn(s->conns_arg, s->nconns);
}

static http_conn_t *conn_alloc(http_server_t *s)
{
	http_conn_t *c = s->free_list;
	if (c) {
		s->free_list = c->next;
		s->nfree--;
	} else {
		c = calloc(1, sizeof(*c));
		if (!c)
			return NULL;
	}
	c->srv = s;
	c->fd = -1;
	c->prev = c->next = NULL;
	c->reading = c->writing = false;
	c->ev_init = false;
	c->close_after = c->read_eof = c->out_paused = false;
	c->linger = c->lingering = false;
	c->served = 0;
	c->out.len = c->out_off = 0;
	c->in_pending.len = 0;
	c->peer_ip[0] = '\0';
	c->msg.req.peer_ip = c->peer_ip;
	http__msg_reset(&c->msg);
	http__conn_reset_request(c);
	/* link at the tail: most recently active */
	c->prev = s->tail;
	if (s->tail)
		s->tail->next = c;
	else
		s->head = c;
	s->tail = c;
	s->nconns++;
	c->last_ms = clock_mono_coarse_ms();
	c->t_start_ns = clock_mono_ns();
	return c;
}

static void conn_release_buffers(http_conn_t *c)
{
	buf_free(&c->msg.head);
	buf_free(&c->body);
	buf_free(&c->out);
	buf_free(&c->in_pending);
	http_inflate_free(&c->inflate);
}

void http__conn_free(http_conn_t *c, bool close_fd)
{
	http_server_t *s = c->srv;
	if (c->ev_init) {
		event_del(&c->ev_read);
		event_del(&c->ev_write);
	}
	if (c->lingering)
		event_del(&c->ev_linger);
	if (c->fd >= 0 && close_fd)
		close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		s->tail = c->prev;
	s->nconns--;
	if (s->nfree < HTTP_FREE_CONNS && !s->draining) {
		http__buf_recycle(&c->msg.head);
		http__buf_recycle(&c->body);
		http__buf_recycle(&c->out);
		http__buf_recycle(&c->in_pending);
		c->next = s->free_list;
		s->free_list = c;
		s->nfree++;
	} else {
		conn_release_buffers(c);
		free(c);
	}
	srv_accept_resume(s);
	conns_changed(s);
}

/* Move c to the most recently active end of the list. */
void http__conn_touch(http_conn_t *c)
{
	http_server_t *s = c->srv;
	c->last_ms = clock_mono_coarse_ms();
	if (s->tail == c)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->head = c->next;
	c->next->prev = c->prev;
	c->prev = s->tail;
	c->next = NULL;
	s->tail->next = c;
	s->tail = c;
}

int http_server_add_conn(http_server_t *s, int fd, const char *peer_ip)
{
	http_conn_t *c = conn_alloc(s);
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	snprintf(c->peer_ip, sizeof(c->peer_ip), "%s", peer_ip ? peer_ip : "");
	event_assign(&c->ev_read, s->base, fd, EV_READ | EV_PERSIST, http__conn_on_read, c);
	event_assign(&c->ev_write, s->base, fd, EV_WRITE | EV_PERSIST, http__conn_on_write, c);
	c->ev_init = true;
	http__conn_want(c, true, false);
	conns_changed(s);
	return 0;
}

http_conn_t *http_conn_new_detached(http_server_t *s)
{
	http_conn_t *c = conn_alloc(s);
	if (c)
		snprintf(c->peer_ip, sizeof(c->peer_ip), "%s", "fuzz");
	return c;
}

void http_conn_free(http_conn_t *c)
{
	http__conn_free(c, false);
}

/* ---- Accept ------------------------------------------------------------- */

static bool srv_full(const http_server_t *s)
{
	return s->lim.max_connections && s->nconns >= s->lim.max_connections;
}

static void srv_listen(http_server_t *s, bool on)
{
	if (s->listen_fd < 0 || on == s->listening)
		return;
	if (on)
		event_add(&s->ev_listen, NULL);
	else
		event_del(&s->ev_listen);
	s->listening = on;
}

static void srv_accept_resume(http_server_t *s)
{
	if (!s->draining && !s->retry_pending && !srv_full(s))
		srv_listen(s, true);
}

static void srv_on_retry(evutil_socket_t fd, short what, void *arg)
{
	http_server_t *s = arg;
	(void)fd;
	(void)what;
	s->retry_pending = false;
	srv_accept_resume(s);
}

static void srv_accept_error(http_server_t *s, int err)
{
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		/* Out of descriptors or memory: back off instead of spinning. */
		if (!s->emfile_logged)
			log_warn("%s: accept: %s; pausing accepts", __func__, strerror(err));
		s->emfile_logged = true;
		srv_listen(s, false);
		s->retry_pending = true;
		struct timeval tv = {0, HTTP_ACCEPT_RETRY_MS * 1000};
		event_add(&s->ev_retry, &tv);
		return;
	}
	log_warn("%s: accept: %s", __func__, strerror(err));
}

static void peer_ip_text(const struct sockaddr_storage *ss, char *out, size_t len)
{
	out[0] = '\0';
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out,
		          (socklen_t)len);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out,
		          (socklen_t)len);
}

static void srv_on_accept(evutil_socket_t lfd, short what, void *arg)
{
	http_server_t *s = arg;
	(void)what;
	for (int i = 0; i < HTTP_ACCEPT_BATCH; i++) {
		if (srv_full(s)) {
			srv_listen(s, false);
			return;
		}
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				srv_accept_error(s, errno);
			return;
		}
		s->emfile_logged = false;
		int one = 1;
		if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		char ip[INET6_ADDRSTRLEN];
		peer_ip_text(&ss, ip, sizeof(ip));
		http_server_add_conn(s, fd, ip);
	}
}

/* ---- Timeouts ----------------------------------------------------------- */

static void srv_on_sweep(evutil_socket_t fd, short what, void *arg)
{
	http_server_t *s = arg;
	(void)fd;
	(void)what;
	uint64_t now = clock_mono_coarse_ms();
	uint32_t idle = s->lim.idle_timeout_ms;
	while (s->head && now - s->head->last_ms >= idle) {
		http_conn_t *c = s->head;
		log_debug("%s: %s: idle for %u ms, closing", __func__, c->peer_ip, idle);
		http__conn_free(c, true);
	}
}

/* ---- The server --------------------------------------------------------- */

int http_server_new(struct event_base *base, const http_limits_t *lim,
                    const http_handler_t *handler, int listen_fd, http_server_t **out)
{
	if (!handler || !handler->dispatch)
		return -EINVAL;
	http_server_t *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base = base;
	s->lim = *lim;
	s->handler = *handler;
	s->listen_fd = listen_fd;
	if (listen_fd >= 0)
		event_assign(&s->ev_listen, base, listen_fd, EV_READ | EV_PERSIST, srv_on_accept,
		             s);
	evtimer_assign(&s->ev_retry, base, srv_on_retry, s);
	if (lim->idle_timeout_ms) {
		uint32_t every = lim->idle_timeout_ms / 4;
		every = every < 10 ? 10 : every > 1000 ? 1000 : every;
		struct timeval tv = {every / 1000, (every % 1000) * 1000};
		event_assign(&s->ev_sweep, base, -1, EV_PERSIST, srv_on_sweep, s);
		event_add(&s->ev_sweep, &tv);
	}
	srv_listen(s, true);
	*out = s;
	return 0;
}

void http_server_set_conns_cb(http_server_t *s, http_conns_fn fn, void *arg)
{
	s->conns_fn = fn;
	s->conns_arg = arg;
}

unsigned http_server_conns(const http_server_t *s)
{
	return s->nconns;
}

void http_server_drain(http_server_t *s)
{
	s->draining = true;
	srv_listen(s, false);
	event_del(&s->ev_retry);
	for (http_conn_t *c = s->head, *next; c; c = next) {
		next = c->next;
		/* A request in progress finishes; its response says "close". */
		if (c->msg.phase != HP_IDLE)
			continue;
		if (c->out.len != c->out_off) {
			c->close_after = true;
			continue;
		}
		/* An idle connection is closed, unless a request already
		 * arrived (its read event serves it, with "close"), or it was
		 * just accepted and has not sent its first request yet: closing
		 * those would reset a request the client already sent, which no
		 * client can tell from a lost one.  The drain deadline bounds
		 * the wait. */
		char b;
		ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		bool pending = n > 0;
		bool fresh = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && c->served == 0;
		if (!pending && !fresh)
			http__conn_free(c, true);
	}
}

void http_server_free(http_server_t *s)
{
	if (!s)
		return;
	s->draining = true;
	s->conns_fn = NULL;
	srv_listen(s, false);
	event_del(&s->ev_retry);
	if (event_initialized(&s->ev_sweep))
		event_del(&s->ev_sweep);
	while (s->head)
		http__conn_free(s->head, true);
	while (s->free_list) {
		http_conn_t *c = s->free_list;
		s->free_list = c->next;
		conn_release_buffers(c);
		free(c);
	}
	buf_free(&s->res.body);
	free(s);
}

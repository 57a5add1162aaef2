/*
 * http_server.c - the HTTP server: the set of connections of one event
 * base, accept, limits, timeouts and drain, and the connection objects.
 *
 * Called by worker.c (http_server_new on the worker's event base with the
 * limits from the configuration and api_dispatch as the handler), by the
 * unit tests (socketpairs) and by the fuzzer (detached connections).
 *
 * Accept.  The listener is drained with accept4() in a loop; out of
 * descriptors or memory, accepting pauses for HTTP_ACCEPT_RETRY_MS.
 *
 * Timeouts and the connection cap (issue 11 item 5, slowloris).  A timer
 * checks every connection at a quarter of the shortest timeout: a request
 * head must be complete within header_timeout_ms of its first byte (of the
 * accept, for a connection's first request), a body within
 * body_timeout_ms of its head, and a connection with no I/O progress for
 * idle_timeout_ms is closed.  Connections sit in a list ordered by how
 * long they have waited for a complete request (since the accept or their
 * last answer).  At max_connections a new connection takes the place of
 * the head of that list, the one that waited longest, if it waited at
 * least HTTP_EVICT_MIN_MS; otherwise accepting pauses until a connection
 * closes or the longest waiter has waited that long.  Normal clients send
 * their request at once, so connections that trickle bytes in are the ones
 * that go.
 *
 * Output.  The server keeps the total of its connections' unsent output;
 * over output_budget_bytes the sweep closes connections that took none of
 * theirs for HTTP_STALL_MS (http_io.c stops answering them meanwhile), and
 * write_timeout_ms closes any whose output makes no progress.
 *
 * Connection objects are kept on a free list (HTTP_FREE_CONNS) for reuse,
 * without their buffers.
 *
 * Must not: block, log client-caused events other than through
 * http__log_event (rate-limited), or close the listening socket (the
 * master owns it).
 */
#include "http_int.h"

#include <errno.h>
#include <stdarg.h>
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
static void srv_evict(http_server_t *s);

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
	c->reading = c->writing = false;
	c->ev_init = false;
	c->close_after = c->read_eof = c->out_paused = c->yielded = false;
	c->turn_reqs = 0;
	c->turn_bytes = 0;
	c->linger = c->lingering = false;
	c->served = 0;
	c->out.len = c->out_off = c->out_counted = 0;
	c->in_pending.len = c->in_off = 0;
	c->peer_ip[0] = '\0';
	c->msg.req.peer_ip = c->peer_ip;
	c->tls = NULL;
	c->tls_read_wants_write = false;
	http__msg_reset(&c->msg);
	http__conn_reset_request(c);
	/* link at the tail: it waits for its first request from now */
	c->next = NULL;
	c->prev = s->tail;
	if (s->tail)
		s->tail->next = c;
	else
		s->head = c;
	s->tail = c;
	s->nconns++;
	c->last_ms = c->wait_ms = c->phase_ms = c->out_ms = clock_mono_coarse_ms();
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
		event_del(&c->ev_turn);
	}
	if (c->lingering)
		event_del(&c->ev_linger);
	if (c->tls) {
		if (close_fd && !c->lingering)
			tls_close_notify(c->tls);
		tls_conn_free(c->tls);
		c->tls = NULL;
	}
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
	s->out_total -= c->out_counted;
	if (s->nfree < HTTP_FREE_CONNS && !s->draining) {
		/* A parked connection holds no buffers: what a burst of
		 * connections grew goes back to malloc. */
		conn_release_buffers(c);
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

void http__conn_touch(http_conn_t *c)
{
	http_server_t *s = c->srv;
	c->wait_ms = clock_mono_coarse_ms();
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
	return http_server_add_tls_conn(s, fd, peer_ip, NULL);
}

int http_server_add_tls_conn(http_server_t *s, int fd, const char *peer_ip, tls_ctx_t *tls)
{
	http_conn_t *c = conn_alloc(s);
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	if (tls && !(c->tls = tls_accept_new(tls, fd))) {
		http__conn_free(c, false);
		close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	snprintf(c->peer_ip, sizeof(c->peer_ip), "%s", peer_ip ? peer_ip : "");
	event_assign(&c->ev_read, s->base, fd, EV_READ | EV_PERSIST, http__conn_on_read, c);
	event_assign(&c->ev_write, s->base, fd, EV_WRITE | EV_PERSIST, http__conn_on_write, c);
	evtimer_assign(&c->ev_turn, s->base, http__conn_on_turn, c);
	/* fails harmlessly on a base with one priority */
	event_priority_set(&c->ev_read, HTTP_PRIO_NEW);
	event_priority_set(&c->ev_write, HTTP_PRIO_NEW);
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

/* At the cap, may a new connection take the place of the one that has
 * waited longest for a complete request?  Not one that waited less than
 * HTTP_EVICT_MIN_MS: a burst of honest connections then queues in the
 * backlog instead of closing each other. */
static bool srv_can_evict(const http_server_t *s, uint64_t now)
{
	return s->head && now - s->head->wait_ms >= HTTP_EVICT_MIN_MS;
}

static bool srv_can_accept(const http_server_t *s)
{
	return !srv_full(s) || srv_can_evict(s, clock_mono_coarse_ms());
}

static void srv_listen(http_server_t *s, bool on)
{
	if (on == s->listening)
		return;
	for (int i = 0; i < s->nlisteners; i++) {
		if (on)
			event_add(&s->listeners[i].ev, NULL);
		else
			event_del(&s->listeners[i].ev);
	}
	s->listening = on;
}

static void srv_accept_resume(http_server_t *s)
{
	if (!s->draining && !s->retry_pending && srv_can_accept(s))
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

static void srv_on_full_end(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_accept_resume(arg);
}

/* At the cap with nobody to evict yet: stop accepting until the longest
 * waiter has waited HTTP_EVICT_MIN_MS. */
static void srv_wait_for_evictable(http_server_t *s)
{
	srv_listen(s, false);
	uint64_t waited = clock_mono_coarse_ms() - s->head->wait_ms;
	uint64_t left = waited < HTTP_EVICT_MIN_MS ? HTTP_EVICT_MIN_MS - waited : 1;
	struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
	evtimer_add(&s->ev_full, &tv);
}

/* Slowloris: at the cap, the connection that has waited longest for a
 * complete request makes room for a new one. */
static void srv_evict(http_server_t *s)
{
	http_conn_t *c = s->head;
	http__log_event(
	    s, "%s: connection limit %u reached: closing it after %llu ms without a request",
	    c->peer_ip, s->lim.max_connections,
	    (unsigned long long)(clock_mono_coarse_ms() - c->wait_ms));
	http__conn_free(c, true);
}

static void srv_on_accept(evutil_socket_t lfd, short what, void *arg)
{
	http_listener_t *l = arg;
	http_server_t *s = l->srv;
	(void)what;
	for (int i = 0; i < HTTP_ACCEPT_BATCH; i++) {
		if (!srv_can_accept(s)) {
			srv_wait_for_evictable(s); /* or a close resumes */
			return;
		}
		struct sockaddr_storage ss = {0};
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
		if (srv_full(s))
			srv_evict(s);
		http_server_add_tls_conn(s, fd, ip, l->tls);
	}
}

/* ---- Timeouts ----------------------------------------------------------- */

/* Why c should be closed now, or NULL. */
static const char *conn_expired(const http_conn_t *c, const http_limits_t *lim, uint64_t now)
{
	if (c->lingering)
		return NULL; /* its own timer */
	if (lim->idle_timeout_ms && now - c->last_ms >= lim->idle_timeout_ms)
		return "idle timeout";
	if (c->out.len != c->out_off)
		return lim->write_timeout_ms && now - c->out_ms >= lim->write_timeout_ms
		           ? "no write progress within write_timeout_ms"
		           : NULL;
	if (c->out_paused)
		return NULL; /* resumes as soon as it is written to */
	enum http_phase ph = c->msg.phase;
	uint64_t in_phase = now - c->phase_ms;
	if (ph == HP_HEAD || (ph == HP_IDLE && c->served == 0))
		return lim->header_timeout_ms && in_phase >= lim->header_timeout_ms
		           ? "no complete request head within header_timeout_ms"
		           : NULL;
	if (ph != HP_IDLE && lim->body_timeout_ms && in_phase >= lim->body_timeout_ms)
		return "no complete request body within body_timeout_ms";
	return NULL;
}

/* Over the output budget, close the connections that took no output for
 * HTTP_STALL_MS (they stopped reading), longest waiting first, until under
 * it again; the write timeout would close them later anyway. */
static void srv_over_budget(http_server_t *s, uint64_t now)
{
	size_t budget = s->lim.output_budget_bytes;
	if (!budget || s->out_total <= budget)
		return;
	unsigned closed = 0;
	size_t freed = 0;
	for (http_conn_t *c = s->head, *next; c && s->out_total > budget; c = next) {
		next = c->next;
		if (c->out_counted == 0 || now - c->out_ms < HTTP_STALL_MS)
			continue;
		freed += c->out_counted;
		closed++;
		http__conn_free(c, true);
	}
	if (closed)
		http__log_event(s,
		                "output budget of %zu bytes exceeded: closed %u connections that "
		                "stopped reading (%zu bytes unsent)",
		                budget, closed, freed);
}

static void srv_on_sweep(evutil_socket_t fd, short what, void *arg)
{
	http_server_t *s = arg;
	(void)fd;
	(void)what;
	uint64_t now = clock_mono_coarse_ms();
	for (http_conn_t *c = s->head, *next; c; c = next) {
		next = c->next;
		const char *why = conn_expired(c, &s->lim, now);
		if (why) {
			log_debug("%s: %s: %s, closing", __func__, c->peer_ip, why);
			if (strcmp(why, "idle timeout") != 0)
				http__log_event(s, "%s: %s, closing", c->peer_ip, why);
			http__conn_free(c, true);
		}
	}
	srv_over_budget(s, now);
	http__log_event(s, NULL);
	srv_accept_resume(s);
}

/* The sweep runs at a quarter of the shortest timeout, 10 ms..1 s. */
static uint32_t sweep_every_ms(const http_limits_t *lim)
{
	uint32_t t[] = {lim->idle_timeout_ms, lim->header_timeout_ms, lim->body_timeout_ms,
	                lim->write_timeout_ms};
	uint32_t every = 1000;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i] && t[i] / 4 < every)
			every = t[i] / 4;
	return every < 10 ? 10 : every;
}

void http__log_event(http_server_t *s, const char *fmt, ...)
{
	uint64_t now = clock_mono_coarse_ms();
	if (now - s->log_window_ms >= 1000) {
		if (s->log_dropped)
			log_info(
			    "http: %u more refusals and timeouts were not logged (at most %d a "
			    "second)",
			    s->log_dropped, HTTP_LOG_PER_SEC);
		s->log_window_ms = now;
		s->log_lines = s->log_dropped = 0;
	}
	if (!fmt)
		return; /* only the count, from the sweep */
	if (s->log_lines >= HTTP_LOG_PER_SEC) {
		s->log_dropped++;
		return;
	}
	s->log_lines++;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_info("http: %s", line);
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
	if (lim->cors_origins && strcmp(lim->cors_origins, "*") != 0) {
		s->cors = strdup(lim->cors_origins);
		if (!s->cors) {
			free(s);
			return -ENOMEM;
		}
	}
	s->lim.cors_origins = s->cors;
	evtimer_assign(&s->ev_retry, base, srv_on_retry, s);
	evtimer_assign(&s->ev_full, base, srv_on_full_end, s);
	uint32_t every = sweep_every_ms(lim);
	struct timeval tv = {every / 1000, (every % 1000) * 1000};
	event_assign(&s->ev_sweep, base, -1, EV_PERSIST, srv_on_sweep, s);
	event_add(&s->ev_sweep, &tv);
	*out = s;
	return listen_fd >= 0 ? http_server_add_listener(s, listen_fd, NULL) : 0;
}

int http_server_add_listener(http_server_t *s, int listen_fd, tls_ctx_t *tls)
{
	if (listen_fd < 0 || s->nlisteners >= HTTP_MAX_LISTENERS)
		return -EINVAL;
	http_listener_t *l = &s->listeners[s->nlisteners++];
	l->srv = s;
	l->fd = listen_fd;
	l->tls = tls;
	event_assign(&l->ev, s->base, listen_fd, EV_READ | EV_PERSIST, srv_on_accept, l);
	event_priority_set(&l->ev, HTTP_PRIO_NEW);
	if (s->listening || (s->nlisteners == 1 && !s->draining)) {
		s->listening = true;
		event_add(&l->ev, NULL);
	}
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
	event_del(&s->ev_full);
	for (http_conn_t *c = s->head, *next; c; c = next) {
		next = c->next;
		/* A request in progress finishes, and so do requests read and
		 * not answered yet; their responses say "close". */
		if (c->msg.phase != HP_IDLE || c->in_pending.len > c->in_off)
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
	event_del(&s->ev_full);
	event_del(&s->ev_sweep);
	while (s->head) /* each call unlinks the head (the analyzer loses that) */
		http__conn_free(s->head, true); /* NOLINT(clang-analyzer-unix.Malloc) */
	while (s->free_list) {
		http_conn_t *c = s->free_list;
		s->free_list = c->next;
		conn_release_buffers(c);
		free(c);
	}
	buf_free(&s->res.body);
	free(s->cors);
	free(s);
}

/*
 * worker.c - a worker process's main loop (worker_main, include/artemis/proc.h).
 *
 * The master forks a worker per slot and calls worker_main() in the child
 * with the slot's SO_REUSEPORT listener and one end of a control socketpair.
 * The worker joins the shm process table, runs one libevent base with the
 * HTTP server on it (http_server.c, given the [http] limits and
 * api_dispatch as its handler), beats its process-table entry every second,
 * gives freed memory back to the kernel every few seconds, and obeys the
 * master's one-byte messages (PROC_MSG_*):
 *   QUIT    stop accepting, finish the requests in progress, close keep-alive
 *           connections after their current response; exit when none remain
 *           or after WORKER_DRAIN_MS;
 *   TERM    exit at once;
 *   REOPEN  reopen the log file;
 *   EOF     the master is gone: exit at once.
 * It sends PROC_MSG_READY once it is listening.
 *
 * It never closes the listening socket's underlying file description in a
 * way that affects other processes: it only stops watching it (the master
 * and the other generation of workers keep using it).
 */
#include "worker.h"

#include "api.h"
#include "http_conn.h"
#include "ws.h"

#include "artemis/clock.h"
#include "artemis/log.h"
#include "artemis/proc.h"

#include <errno.h>
#include <event2/event_struct.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WORKER_DRAIN_MS   5000
#define WORKER_BEAT_MS    1000
#define WORKER_TRIM_BEATS 5          /* look at malloc's free memory this often */
#define WORKER_TRIM_FREE  (8u << 20) /* give it back beyond this */
#define WORKER_POLL_MS    5          /* see worker_setup */

worker_t *g_worker;

typedef struct {
	worker_t w;
	http_server_t *http;
	int ctl_fd;
	int exit_code;
	struct event ev_ctl;
	struct event ev_beat;
	struct event ev_drain;
	bool drain_armed;
	bool stopping;
	unsigned beats;
} worker_loop_t;

static void worker_stop(worker_loop_t *wl, const char *why)
{
	if (wl->stopping)
		return;
	wl->stopping = true;
	log_info("%s: worker %d exiting: %s", __func__, wl->w.slot, why);
	event_base_loopbreak(wl->w.base);
}

static void worker_on_conns(void *arg, unsigned nconns)
{
	worker_loop_t *wl = arg;
	wl->w.connections = nconns;
	if (wl->w.draining && nconns == 0 && ws_sessions() == 0)
		worker_stop(wl, "drained");
}

/* WebSocket sessions (ws.c) count as connections for the drain. */
static void worker_on_sessions(void *arg, unsigned nsessions)
{
	worker_loop_t *wl = arg;
	if (wl->w.draining && nsessions == 0 && wl->w.connections == 0)
		worker_stop(wl, "drained");
}

static void worker_on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker_loop_t *wl = arg;
	log_info("%s: %u connections and %u WebSocket sessions still open after %d ms", __func__,
	         wl->w.connections, ws_sessions(), WORKER_DRAIN_MS);
	worker_stop(wl, "drain timeout");
}

static void worker_quit(worker_loop_t *wl)
{
	if (wl->w.draining)
		return;
	wl->w.draining = true;
	ws_drain();                  /* close 1001: clients reconnect to the new workers */
	http_server_drain(wl->http); /* may already stop the loop (worker_on_conns) */
	if (wl->stopping)
		return;
	if (http_server_conns(wl->http) == 0 && ws_sessions() == 0) {
		worker_stop(wl, "quit");
		return;
	}
	struct timeval tv = {WORKER_DRAIN_MS / 1000, (WORKER_DRAIN_MS % 1000) * 1000};
	evtimer_assign(&wl->ev_drain, wl->w.base, worker_on_drain_timeout, wl);
	evtimer_add(&wl->ev_drain, &tv);
	wl->drain_armed = true;
}

static void worker_on_ctl(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	worker_loop_t *wl = arg;
	char msgs[64];
	ssize_t n = read(fd, msgs, sizeof(msgs));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		worker_stop(wl, n == 0 ? "master closed the control channel" : strerror(errno));
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		switch (msgs[i]) {
		case PROC_MSG_QUIT:
			worker_quit(wl);
			break;
		case PROC_MSG_TERM:
			worker_stop(wl, "terminate");
			return;
		case PROC_MSG_REOPEN:
			if (log_reopen() != 0)
				log_warn("%s: cannot reopen the log file", __func__);
			break;
		default:
			log_warn("%s: unknown control message 0x%02x", __func__,
			         (unsigned char)msgs[i]);
			break;
		}
	}
}

/* Give memory back (issue 11 item 12).  glibc keeps freed memory for reuse
 * and returns it to the kernel only from the top of the heap, so after a
 * burst of large connection buffers (thousands of clients not reading) the
 * holes stayed resident for as long as the worker lived.  When malloc holds
 * more than WORKER_TRIM_FREE bytes unused, malloc_trim() hands the free
 * pages of every arena back. */
static void worker_trim_memory(void)
{
	struct mallinfo2 mi = mallinfo2();
	if (mi.fordblks < WORKER_TRIM_FREE)
		return;
	malloc_trim(0);
	log_debug("%s: gave back up to %zu bytes of free heap", __func__, mi.fordblks);
}

static void worker_on_beat(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker_loop_t *wl = arg;
	shm_proc_beat(wl->w.shm, clock_wall_ms());
	if (++wl->beats % WORKER_TRIM_BEATS == 0)
		worker_trim_memory();
}

static int worker_send_ready(int ctl_fd)
{
	char m = PROC_MSG_READY;
	ssize_t w;
	do
		w = write(ctl_fd, &m, 1);
	while (w < 0 && errno == EINTR);
	return w == 1 ? 0 : -errno;
}

/* The HTTP transport's handler: the API layer. */
static void worker_dispatch(void *ctx, const http_request_t *req, http_response_t *res)
{
	(void)ctx;
	api_dispatch(req, res);
}

static void worker_observe(void *ctx, const http_request_t *req, int status, uint64_t latency_us)
{
	(void)ctx;
	api_observe(req, status, latency_us);
}

/* What the transport needs of the [http] section. */
static void worker_http_limits(const config_t *cfg, http_limits_t *lim)
{
	memset(lim, 0, sizeof(*lim));
	lim->max_header_bytes = cfg->max_header_bytes;
	lim->max_body_bytes = cfg->max_body_bytes;
	lim->idle_timeout_ms = cfg->idle_timeout_ms;
	lim->header_timeout_ms = cfg->header_timeout_ms;
	lim->body_timeout_ms = cfg->body_timeout_ms;
	lim->write_timeout_ms = cfg->write_timeout_ms;
	lim->output_budget_bytes = cfg->output_budget_bytes;
	lim->max_response_bytes = cfg->max_response_bytes;
	lim->cors_origins = cfg->cors_origins;
	lim->max_connections = cfg->max_connections;
}

static int worker_setup(worker_loop_t *wl, const proc_listen_t *l)
{
	http_limits_t lim;
	const http_handler_t handler = {worker_dispatch, worker_observe, wl};
	struct event_config *ec = event_config_new();
	if (!ec)
		return -ENOMEM;
	/* One thread per process: no locking inside libevent.  Two
	 * priorities: the HTTP transport runs accepts and new connections'
	 * first requests before established connections' work, and the loop
	 * polls for them at least every WORKER_POLL_MS however much
	 * lower-priority work is ready (a health check stays fast while
	 * thousands of clients pipeline). */
	struct timeval poll_every = {0, WORKER_POLL_MS * 1000};
	event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
	event_config_set_max_dispatch_interval(ec, &poll_every, -1, 1);
	wl->w.base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (!wl->w.base)
		return -ENOMEM;
	if (event_base_priority_init(wl->w.base, 2) != 0)
		return -ENOMEM;
	worker_http_limits(wl->w.cfg, &lim);
	int rc = http_server_new(wl->w.base, &lim, &handler, -1, &wl->http);
	if (rc < 0)
		return rc;
	/* [node] listen is plain, or TLS when there is no second listener. */
	if ((rc = http_server_add_listener(wl->http, l->fd, l->tls_fd < 0 ? l->tls : NULL)) < 0 ||
	    (l->tls_fd >= 0 && (rc = http_server_add_listener(wl->http, l->tls_fd, l->tls)) < 0))
		return rc;
	http_server_set_conns_cb(wl->http, worker_on_conns, wl);
	rc = ws_init(&wl->w, worker_on_sessions, wl);
	if (rc < 0)
		return rc;

	int fl = fcntl(wl->ctl_fd, F_GETFL);
	if (fl >= 0)
		fcntl(wl->ctl_fd, F_SETFL, fl | O_NONBLOCK);
	event_assign(&wl->ev_ctl, wl->w.base, wl->ctl_fd, EV_READ | EV_PERSIST, worker_on_ctl, wl);
	event_add(&wl->ev_ctl, NULL);
	struct timeval beat = {WORKER_BEAT_MS / 1000, 0};
	event_assign(&wl->ev_beat, wl->w.base, -1, EV_PERSIST, worker_on_beat, wl);
	event_add(&wl->ev_beat, &beat);
	return 0;
}

static void worker_teardown(worker_loop_t *wl)
{
	ws_shutdown();
	http_server_free(wl->http);
	wl->http = NULL;
	if (event_initialized(&wl->ev_ctl))
		event_del(&wl->ev_ctl);
	if (event_initialized(&wl->ev_beat))
		event_del(&wl->ev_beat);
	if (wl->drain_armed)
		event_del(&wl->ev_drain);
	if (wl->w.base)
		event_base_free(wl->w.base);
	wl->w.base = NULL;
}

int worker_main(const config_t *cfg, shm_t *shm, const proc_listen_t *l, int ctl_fd, int slot)
{
	static worker_loop_t wl;
	memset(&wl, 0, sizeof(wl));
	wl.w.cfg = cfg;
	wl.w.shm = shm;
	wl.w.slot = slot;
	wl.w.started_ms = clock_wall_ms();
	wl.ctl_fd = ctl_fd;
	g_worker = &wl.w;
	log_set_role("worker");
	signal(SIGPIPE, SIG_IGN);

	int rc = shm_proc_join(shm, SHM_ROLE_WORKER, slot);
	if (rc < 0) {
		log_error("%s: worker %d: cannot join the process table: %s", __func__, slot,
		          strerror(-rc));
		return 1;
	}
	shm_proc_beat(shm, clock_wall_ms());
	/* Its own store connection, opened after the fork.  Without one the
	 * worker still serves the registry; management requests answer an
	 * internal error naming the reason. */
	char err[512];
	if (mgmt_open(cfg, shm, &wl.w.mgmt, err, sizeof(err)) < 0)
		log_error("%s: worker %d: management store: %s", __func__, slot, err);
	else
		api_access_init(); /* the JWT key: logs itself when it fails */
	rc = worker_setup(&wl, l);
	if (rc < 0) {
		log_error("%s: worker %d: setup failed: %s", __func__, slot, strerror(-rc));
		worker_teardown(&wl);
		mgmt_close(wl.w.mgmt);
		shm_proc_leave(shm);
		return 1;
	}
	/* Logged before the master hears of it: its "serving:" line (what
	 * tests and operators wait for) then always follows this one. */
	log_info("%s: worker %d serving", __func__, slot);
	if (worker_send_ready(ctl_fd) != 0)
		log_warn("%s: worker %d: cannot report ready: %s", __func__, slot, strerror(errno));
	event_base_dispatch(wl.w.base);

	worker_teardown(&wl);
	mgmt_close(wl.w.mgmt);
	shm_proc_leave(shm);
	g_worker = NULL;
	return wl.exit_code;
}

/*
 * main.c - the replicator process (include/artemis/proc.h): forked by the
 * master on a node with peers ("artemis: replicator"), respawned when it
 * dies, replaced on reload.
 *
 * One libevent loop: the control channel (QUIT/TERM/REOPEN, EOF = the
 * master is gone), the [cluster] listener, the peer connections (peer.c)
 * and a REPL_TICK_MS timer that drives everything periodic: connecting,
 * streaming changes, snapshot and pull-answer installments, renewal
 * batches, sync, digests, the peer status in the region and the bootstrap
 * decision.  repl_init/repl_fini set the state up without the loop's own
 * events, for the unit test.
 *
 * Bootstrap (API.md §A, §4.8): the master marks a node with peers
 * `starting`.  It becomes `up` once a complete snapshot from one peer is
 * applied; or once every peer is reachable and has had its snapshot applied
 * here, complete or partial (nodes that start together send each other
 * partial snapshots: then this node holds what every node holds, and
 * nobody has more to wait for); or once [cluster] bootstrap_timeout_ms has
 * passed without any peer that is up, connected to us and still to send its
 * snapshot (some peer unreachable, or one that reaches us only one way).
 * A peer that is up but never sends its snapshot cannot hold the node back
 * for more than REPL_BOOTSTRAP_MAX_MS.  A respawned replicator finds the node up and
 * leaves it so.  A peer's snapshot counts once the catch-up of its
 * management data is applied too (mgmt.c), when both nodes have one: a
 * node comes up with the operations in force that its peers hold.
 */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "artemis/clock.h"
#include "artemis/log.h"
#include "artemis/proc.h"
#include "repl.h"

#define REPL_BOOTSTRAP_MAX_MS 30000

typedef struct {
	repl_t r;
	struct event *ctl_ev, *tick_ev, *term_ev, *int_ev;
	uint64_t next_renew, next_sync, next_digest, next_status;
} repl_main_t;

static void main__up(repl_t *r, const char *why)
{
	shm_node_set_state(r->shm, SHM_NODE_UP);
	r->bootstrapping = false;
	log_info("node is up: %s", why);
}

void repl_bootstrap_check(repl_t *r, uint64_t now)
{
	char why[160];
	bool up_peer = false, all_applied = true;

	if (!r->bootstrapping)
		return;
	for (int i = 0; i < r->npeers; i++) {
		repl_peer_t *p = &r->peers[i];
		if (p->bootstrapped_from && !repl_mgmt_owed(p)) {
			snprintf(why, sizeof(why), "bootstrapped from peer %s", p->cfg->name);
			main__up(r, why);
			return;
		}
		/* A peer that is up, connected to us (its snapshot comes on its
		 * own connection) and has not sent its snapshot yet is worth
		 * waiting for; one whose (partial) snapshot is applied is not,
		 * nor one that cannot reach us (it would never come). */
		bool can_send = p->in && p->in->hs == REPL_HS_READY;
		up_peer |= repl_peer_reachable(p, now) && can_send &&
		           p->node_state == SHM_NODE_UP && (!p->rx_valid || repl_mgmt_owed(p));
		all_applied =
		    all_applied && repl_peer_reachable(p, now) && p->rx_valid && !repl_mgmt_owed(p);
	}
	if (all_applied) {
		main__up(r, "every peer's snapshot applied");
		return;
	}
	uint64_t waited = now - r->start_ms;
	uint64_t limit = r->cfg->bootstrap_timeout_ms;
	if (waited >= limit && !up_peer) {
		snprintf(why, sizeof(why), "no peer reachable and up for %llu ms",
		         (unsigned long long)limit);
		main__up(r, why);
	} else if (waited >= limit + REPL_BOOTSTRAP_MAX_MS) {
		log_warn("no snapshot from any peer after %llu ms", (unsigned long long)waited);
		main__up(r, "without a snapshot");
	}
}

static void main__tick(evutil_socket_t fd, short what, void *arg)
{
	repl_main_t *mm = arg;
	repl_t *r = &mm->r;
	uint64_t now = clock_mono_ms();

	(void)fd;
	(void)what;
	if (r->listen_retry_at && now >= r->listen_retry_at)
		repl_listen(r);
	repl_connect_due(r, now);
	repl_tomb_tick(r);
	repl_sender_tick(r);
	repl_serve_tick(r);
	repl_mgmt_tick(r, now);
	if (now >= mm->next_renew) {
		repl_renew_tick(r);
		mm->next_renew = now + REPL_RENEW_MS;
	}
	if (now >= mm->next_sync) {
		repl_sync_tick(r);
		mm->next_sync = now + REPL_SYNC_MS;
	}
	if (now >= mm->next_digest) {
		repl_digest_tick(r);
		repl_mgmt_digest_tick(r);
		mm->next_digest = now + r->cfg->digest_interval_ms;
	}
	if (now >= mm->next_status) {
		repl_bootstrap_check(r, now);
		repl_status_publish(r);
		shm_proc_beat(r->shm, clock_wall_ms());
		mm->next_status = now + REPL_STATUS_MS;
	}
	repl_conns_check(r, now);
}

static void main__ctl(evutil_socket_t fd, short what, void *arg)
{
	repl_main_t *mm = arg;
	char buf[64];
	ssize_t n = read(fd, buf, sizeof(buf));

	(void)what;
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		event_base_loopbreak(mm->r.base);
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == PROC_MSG_QUIT || buf[i] == PROC_MSG_TERM)
			event_base_loopbreak(mm->r.base);
		else if (buf[i] == PROC_MSG_REOPEN)
			log_reopen();
	}
}

static void main__signal(evutil_socket_t sig, short what, void *arg)
{
	repl_main_t *mm = arg;

	(void)sig;
	(void)what;
	event_base_loopbreak(mm->r.base);
}

int repl_init(repl_t *r, const config_t *cfg, shm_t *shm)
{
	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	r->shm = shm;
	r->incarnation = shm_incarnation(shm);
	repl_auth_key(cfg->cluster_key, r->key);
	repl_enc_init(&r->enc);
	r->parser = instance_parser_new();
	r->base = event_base_new();
	if (r->parser == NULL || r->base == NULL || repl_tomb_init(r) < 0)
		return -ENOMEM;
	repl_mgmt_init(r); /* without the store: the registry alone */
	r->npeers = cfg->npeers < REPL_MAX_PEERS ? cfg->npeers : REPL_MAX_PEERS;
	if (cfg->npeers > REPL_MAX_PEERS)
		log_warn("%d peers configured; replicating with the first %d", cfg->npeers,
		         REPL_MAX_PEERS);
	for (int i = 0; i < r->npeers; i++) {
		r->peers[i].cfg = &cfg->peers[i];
		r->peers[i].id = i + 1;
	}
	if (cfg->cluster_tls && r->npeers > 0) {
		char err[512];
		if (repl_tls_ctx(cfg, &r->tls, err, sizeof(err)) < 0) {
			log_error("%s", err);
			return -EINVAL;
		}
	}
	r->start_ms = clock_mono_ms();
	r->bootstrapping = shm_node_state(shm) != SHM_NODE_UP;
	if (r->npeers == 0 && r->bootstrapping)
		main__up(r, "no peers");
	return 0;
}

void repl_fini(repl_t *r)
{
	repl_conns_free(r);
	repl_pending_free(r);
	repl_mgmt_fini(r);
	repl_tls_ctx_free(r->tls);
	r->tls = NULL;
	if (r->listener)
		evconnlistener_free(r->listener);
	r->listener = NULL;
	if (r->base)
		event_base_free(r->base);
	r->base = NULL;
	instance_parser_free(r->parser);
	r->parser = NULL;
	repl_tomb_free(r);
	repl_enc_destroy(&r->enc);
	buf_free(&r->json);
	buf_free(&r->json2);
	sodium_memzero(r->key, sizeof(r->key));
}

static void main__fini(repl_main_t *mm)
{
	repl_t *r = &mm->r;
	struct event *evs[] = {mm->ctl_ev, mm->tick_ev, mm->term_ev, mm->int_ev};

	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i])
			event_free(evs[i]);
	repl_fini(r);
}

int replicator_main(const config_t *cfg, shm_t *shm, int ctl_fd)
{
	static repl_main_t mm;
	struct timeval tick = {0, REPL_TICK_MS * 1000};
	int rc = 1;

	signal(SIGPIPE, SIG_IGN);
	if (shm_proc_join(shm, SHM_ROLE_REPLICATOR, -1) < 0) {
		log_error("cannot join the process table");
		return 1;
	}
	if ((rc = repl_init(&mm.r, cfg, shm)) < 0) {
		if (rc == -ENOMEM)
			log_error("cannot start: out of memory");
		rc = 1;
		goto out;
	}
	rc = 1;
	mm.ctl_ev = event_new(mm.r.base, ctl_fd, EV_READ | EV_PERSIST, main__ctl, &mm);
	mm.tick_ev = event_new(mm.r.base, -1, EV_PERSIST, main__tick, &mm);
	mm.term_ev = evsignal_new(mm.r.base, SIGTERM, main__signal, &mm);
	mm.int_ev = evsignal_new(mm.r.base, SIGINT, main__signal, &mm);
	if (!mm.ctl_ev || !mm.tick_ev || !mm.term_ev || !mm.int_ev) {
		log_error("cannot start: out of memory");
		goto out;
	}
	event_add(mm.ctl_ev, NULL);
	event_add(mm.tick_ev, &tick);
	event_add(mm.term_ev, NULL);
	event_add(mm.int_ev, NULL);
	if (mm.r.npeers > 0)
		repl_listen(&mm.r);
	char ready = PROC_MSG_READY;
	if (write(ctl_fd, &ready, 1) != 1)
		log_warn("cannot report ready: %s", strerror(errno));
	log_info("replicating with %d peers on %s (%s)", mm.r.npeers, cfg->cluster_listen,
	         mm.r.bootstrapping ? "bootstrapping" : "node up");
	event_base_dispatch(mm.r.base);
	rc = 0;
out:
	main__fini(&mm);
	shm_proc_leave(shm);
	return rc;
}

/*
 * repl.h - replicator-internal: the process's state and what its files
 * share (docs/CLUSTER.md describes the protocol for operators).
 *
 *   main.c        replicator_main: the event loop, timers, bootstrap state
 *   peer.c        connections: listen, connect with backoff, framing
 *                 (sealed after the handshake), dispatch, peer status in
 *                 the region
 *   handshake.c   HELLO, AUTH, WANT: the proof, then the session keys
 *   sender.c      our clients' changes and renewals streamed to a peer,
 *                 resume from its acknowledged version, fetch replies
 *   snapshot.c    full snapshots and pull answers, walked in installments;
 *                 the sweep that follows them
 *   receiver.c    a peer's frames applied to the registry with its origin
 *   antientropy.c per-service digests compared with each peer, the pulls
 *                 asked and each one's mark
 *   tombstone.c   recent unregisters, so no late record brings one back
 *   mgmt.c        the management store's rows: the stream of our own, the
 *                 catch-up of a peer that connects, rows applied, digests
 *                 and pulls of its tables, tombstones collected
 *
 * One connection per peer and direction: the side that connects streams
 * its clients' changes (the sender); the side that accepts applies them
 * (the receiver), acknowledges, and asks for records it lacks.  Digests,
 * pulls and records flow both ways, so either side repairs itself.
 *
 * Peers are numbered by their order in the configuration: peer i has the
 * origin id i + 1 in the registry.  REPL_HTTP_ORIGIN is reserved for what
 * Java peers replicate over HTTP (worker/api_replication.c).
 *
 * Single-threaded (one libevent base).  Nothing here blocks but the
 * registry's writer lock; every buffer is bounded (REPL_OUT_HIGH per
 * connection; frames up to REPL_MAX_FRAME; at most REPL_MAX_HANDSHAKES
 * connections in their handshake, each for at most REPL_HANDSHAKE_MS;
 * REPL_MAX_PENDING_PULLS pulls asked of a peer at once).
 */
#ifndef ARTEMIS_REPL_H
#define ARTEMIS_REPL_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdbool.h>
#include <stdint.h>

#include "artemis/clock.h"
#include "artemis/config.h"
#include "artemis/codec.h"
#include "artemis/mgmt.h"
#include "artemis/shm.h"
#include "proto.h"

#define REPL_HTTP_ORIGIN SHM_ORIGIN_HTTP_PEER
#define REPL_MAX_PEERS   (SHM_MAX_NODES - 2) /* ids 1..62 */

#define REPL_TICK_MS           5     /* change-log poll */
#define REPL_RENEW_MS          100   /* renewal batch window */
#define REPL_RENEW_OVERLAP_MS  5     /* scans overlap so a racing renewal is not missed */
#define REPL_SYNC_MS           1000  /* keepalive and streamed-up-to version */
#define REPL_STATUS_MS         250   /* peer status published to the region */
#define REPL_DEAD_MS           15000 /* nothing received this long: reconnect */
#define REPL_SEEN_MS           5000  /* a peer heard from within this is reachable */
#define REPL_HANDSHAKE_MS      3000  /* a handshake must finish within this */
#define REPL_MAX_HANDSHAKES    8     /* accepted connections not yet authenticated */
#define REPL_MAX_PENDING_PULLS 4096  /* pulls asked of one peer, not yet answered */
#define REPL_ANON_LOG_MS       10000 /* one line per this about unauthenticated refusals */
#ifndef REPL_OUT_HIGH
#define REPL_OUT_HIGH (8u << 20) /* bytes queued to a peer before we wait */
#endif
#define REPL_BACKOFF_MIN_MS   100
#define REPL_BACKOFF_MAX_MS   2000
#define REPL_CHANGES_PER_TICK 4096
#define REPL_KEYS_PER_FRAME   4096
#define REPL_ROWS_PER_TICK    2048 /* management rows walked per connection and tick */
#define REPL_ROWS_PER_TXN     4096 /* management rows applied in one transaction */
#define REPL_MARK_IDLE_MS     1000 /* an empty pass is marked at most this often */
#define REPL_MGMT_PULL_WORDS  ((64 * MGMT_REPL_BUCKETS + 63) / 64)

typedef struct repl repl_t;
typedef struct repl_conn repl_conn_t;

enum repl_hs { REPL_HS_HELLO = 0, REPL_HS_AUTH, REPL_HS_WANT, REPL_HS_READY };

struct repl_conn {
	repl_t *r;
	struct bufferevent *bev;
	repl_conn_t *next;
	char addr[64]; /* the other end, for logs about unauthenticated connections */
	bool outbound; /* we connected: we stream to it */
	bool closing;  /* flush what is queued, then close */
	bool dead;     /* closed; freed by repl_conns_check */
	int peer;      /* index in r->peers: configured (outbound), or claimed by its
	                * HELLO and trusted only from REPL_HS_WANT/READY on */
	enum repl_hs hs;
	bool hello_sent;     /* once: a TLS link reports CONNECTED for TCP and for TLS */
	uint64_t opened_ms;  /* monotonic */
	uint64_t last_rx_ms; /* monotonic */
	/* handshake: our nonce, both HELLOs' hashes, what the peer's HELLO said
	 * (applied only once its proof is checked) */
	uint8_t nonce[REPL_NONCE_BYTES];
	uint8_t hello_mine[REPL_HASH_BYTES], hello_peer[REPL_HASH_BYTES];
	uint64_t peer_inc;
	uint32_t peer_state;
	bool encrypt; /* either side asked for it */
	/* sealed frames (seal.c): on from the frame after each side's AUTH */
	repl_seal_t tx, rx;
	bool tx_sealed, rx_sealed;
	/* sender (outbound, after WANT) */
	bool streaming;
	shm_cursor_t cur;
	uint64_t renew_since;   /* wall ms: renewals after this go next */
	uint64_t sent_version;  /* the last CHANGE sent (its ACK: applied) */
	uint64_t lag_version;   /* a CHANGE whose ACK measures the lag */
	uint64_t lag_change_ms; /* when that change was made */
	/* a snapshot being sent, in installments as the socket drains: the
	 * stream, renewals and pull answers wait until its SNAP_END */
	bool snap_active, snap_complete;
	uint32_t snap_next; /* slot the walk goes on from */
	uint64_t snap_head, snap_sent, snap_rounds;
	/* pulls the peer asked (NUL-separated names): they wait in `pulls`
	 * while an answer is being walked (`serving`, from slot serve_next, in
	 * installments like a snapshot), then go together in the next walk */
	buf_t pulls, serving;
	bool serve_active;
	uint32_t serve_next;
	/* answers complete (PULL_END) in this read: each name and the mark of
	 * its pull, swept in one registry walk (snapshot.c) */
	buf_t sweeps;
	/* receiver: the last ACK sent, and one owed (a SYNC came) */
	uint64_t acked;
	bool ack_due;
	/* management rows (mgmt.c): the kinds both sides know; as the sender,
	 * the walk of a catch-up or a pass over our own rows since m_own (the
	 * generation marked last); the pulls the other side asked here
	 * (bit kind * MGMT_REPL_BUCKETS + bucket) and the answer being walked;
	 * the pulls we asked here */
	uint64_t peer_kinds, m_kinds;
	bool m_streaming, m_walking, m_catchup;
	mgmt_repl_walk_t m_walk;
	uint64_t m_own, m_marked, m_mark_ms, m_pass_rows;
	uint64_t m_pulls[REPL_MGMT_PULL_WORDS], m_asked[REPL_MGMT_PULL_WORDS];
	bool m_serving;
	int m_serve_bit;
	mgmt_repl_walk_t m_serve;
};

/* A pull asked of a peer and not answered yet (antientropy.c). */
typedef struct {
	char *name;
	uint32_t len;
	int kind;
	uint64_t mark_ms; /* wall ms when it was asked: the sweep's mark */
	repl_conn_t *c;   /* the connection it was asked on (and is answered on) */
} repl_pending_t;

typedef struct {
	const config_peer_t *cfg;
	int id; /* origin id in the registry */
	repl_conn_t *out, *in;
	uint64_t connect_at; /* monotonic; next connection attempt */
	uint32_t backoff_ms;
	bool down_logged, key_logged, ever_tried;
	/* what we have from it (receiver) */
	bool rx_valid; /* rx_inc/rx_applied describe our data */
	uint64_t rx_inc, rx_applied;
	bool in_snapshot, snapshot_complete;
	uint64_t snapshot_mark_ms, snapshot_count;
	/* pulls asked of it, sorted by (kind, name): at most one per name */
	repl_pending_t *pending;
	uint32_t npending, pending_cap;
	bool bootstrapped_from;                  /* its complete snapshot made us up */
	uint64_t forged_log_ms, forged_unlogged; /* frames that failed their tag */
	/* status */
	uint32_t node_state;   /* enum shm_node_state it reported */
	uint64_t last_seen_ms; /* monotonic; 0 = never */
	uint64_t acked_version, lag_ms;
	/* management rows (mgmt.c) */
	uint64_t kinds;          /* what its last authenticated HELLO listed */
	mgmt_repl_cursor_t mcur; /* what we applied of its store (loaded at connect) */
	bool mcur_loaded;
	bool m_caught_up;                /* a catch-up from it applied here (bootstrap) */
	uint64_t m_acked, m_acked_saved; /* our own rows it applied (MACK) */
	uint64_t m_rows;                 /* rows applied from it, for the log */
} repl_peer_t;

struct repl {
	const config_t *cfg;
	shm_t *shm;
	struct event_base *base;
	struct evconnlistener *listener;
	repl_peer_t peers[REPL_MAX_PEERS];
	int npeers;
	uint8_t key[REPL_KEY_BYTES];
	uint64_t incarnation;
	repl_conn_t *conns;
	repl_enc_t enc;
	instance_parser_t *parser;
	buf_t json;              /* scratch for one instance's JSON */
	buf_t json2;             /* a second one, for what is stored */
	uint64_t apply_log_ms;   /* last "cannot apply" line (one per 10 s) */
	uint64_t anon_log_ms;    /* last line about an unauthenticated connection */
	uint64_t anon_unlogged;  /* ... and how many were not logged since */
	struct repl_tomb *tombs; /* tombstone.c */
	shm_cursor_t tomb_cur;
	bool bootstrapping;
	uint64_t start_ms;        /* monotonic */
	uint64_t listen_retry_at; /* monotonic; 0 = listening */
	bool listen_logged;
	struct ssl_ctx_st *tls; /* [cluster] tls = on (tls.c), else NULL */
	/* the management store (mgmt.c): NULL when it could not be opened */
	mgmt_repl_t *mr;
	uint64_t m_kinds; /* management kinds this node knows */
	uint64_t m_store_id, m_head;
	uint32_t m_batch; /* rows in the open transaction */
	bool m_batch_failed;
	bool m_applied; /* a batch committed: our generation moved (our own
	                 * commits do not move data_version) */
	uint64_t m_log_ms, m_gc_at;
};

/* main.c */
/* Set up and tear down the process's state (also used by the unit test). */
int repl_init(repl_t *r, const config_t *cfg, shm_t *shm);
void repl_fini(repl_t *r);
/* Decide whether a starting node is up now (also after each snapshot). */
void repl_bootstrap_check(repl_t *r, uint64_t now);

/* peer.c */
int repl_listen(repl_t *r);
/* A connected socket: accepted (peer -1, addr its address), or ours to
 * peer `peer` (outbound: HELLO goes at once).  NULL when out of memory
 * (the socket is closed). */
repl_conn_t *repl_conn_open(repl_t *r, int fd, bool outbound, int peer, const char *addr);
void repl_connect_due(repl_t *r, uint64_t now);
void repl_conn_close(repl_conn_t *c, const char *why);
void repl_conns_check(repl_t *r, uint64_t now);
void repl_conns_free(repl_t *r);
/* Queue the encoder's frame on c (sealed in place once the handshake
 * made the connection's keys: encode a frame again for another
 * connection).  -EMSGSIZE/-ENOMEM close nothing. */
int repl_send(repl_conn_t *c, repl_enc_t *e);
bool repl_conn_busy(const repl_conn_t *c); /* output above REPL_OUT_HIGH */
void repl_status_publish(repl_t *r);
bool repl_peer_reachable(const repl_peer_t *p, uint64_t now);
const char *repl_peer_name(const repl_t *r, int peer);
/* The peer of a connection that proved it (our outbound ones are ours
 * from the start: we chose whom to dial), else NULL. */
repl_peer_t *repl_peer_of(repl_conn_t *c);
/* A line about a connection that has not proved anything, with its
 * address; at most one per REPL_ANON_LOG_MS. */
void repl_anon_log(repl_conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* handshake.c */
void repl_hello_send(repl_conn_t *c);
/* A frame before the connection is READY, or a REFUSE. */
void repl_handshake(repl_conn_t *c, const repl_msg_t *m, const char *raw, size_t len);

/* sender.c */
void repl_sender_start(repl_conn_t *c, uint64_t inc, uint64_t version);
void repl_sender_tick(repl_t *r);
void repl_renew_tick(repl_t *r);
void repl_sync_tick(repl_t *r);
void repl_on_fetch(repl_conn_t *c, const repl_msg_t *m);
void repl_on_ack(repl_conn_t *c, const repl_msg_t *m);

/* snapshot.c */
int repl_snapshot_send(repl_conn_t *c);     /* starts one (SNAP_BEGIN and what fits) */
int repl_snapshot_continue(repl_conn_t *c); /* the next installment, SNAP_END at the end */
int repl_record_send(repl_conn_t *c, uint64_t origin_ms, const char *json, size_t len);
/* A PULL to answer: queued, answered by one walk with the others. */
void repl_pull_request(repl_conn_t *c, shm_str_t service);
/* An answer complete: its service is swept with the pull's mark. */
void repl_sweep_add(repl_conn_t *c, shm_str_t service, uint64_t mark_ms);
/* After a read: start answering the pulls queued (when no snapshot or
 * answer is being sent), and do the sweeps. */
void repl_pulls_flush(repl_conn_t *c);
/* Each tick: the next installment of every answer being sent. */
void repl_serve_tick(repl_t *r);
/* Remove what came from peer and was not refreshed since mark_ms (every
 * service: a complete snapshot). */
void repl_sweep_all(repl_t *r, int peer, uint64_t mark_ms);

/* receiver.c */
void repl_on_frame(repl_conn_t *c, const repl_msg_t *m);
void repl_receiver_flush(repl_conn_t *c);

/* tombstone.c */
int repl_tomb_init(repl_t *r);
void repl_tomb_free(repl_t *r);
void repl_tomb_tick(repl_t *r);
/* True when `key` was unregistered here after a registration at origin_ms. */
bool repl_tomb_blocks(repl_t *r, const shm_key_t *key, uint64_t origin_ms);

/* tls.c */
int repl_tls_ctx(const config_t *cfg, struct ssl_ctx_st **out, char *err, size_t err_len);
void repl_tls_ctx_free(struct ssl_ctx_st *ctx);
/* A TLS bufferevent over fd (-1: to be connected), for our side's role. */
struct bufferevent *repl_tls_bev(repl_t *r, int fd, bool outbound);
/* Why the TLS layer of bev failed ("" when it did not), into buf. */
const char *repl_tls_error(struct bufferevent *bev, char *buf, size_t len);

/* mgmt.c */
int repl_mgmt_init(repl_t *r);
void repl_mgmt_fini(repl_t *r);
/* A connection is ready: what both know decides whether rows flow. */
void repl_mgmt_ready(repl_conn_t *c);
/* Frames: ROW, MWANT, MMARK, MACK, and DIGEST/PULL/PULL_END of
 * management kinds. */
void repl_mgmt_on_frame(repl_conn_t *c, const repl_msg_t *m);
void repl_mgmt_on_digest(repl_conn_t *c, const repl_msg_t *m);
void repl_mgmt_on_pull(repl_conn_t *c, const repl_msg_t *m);
void repl_mgmt_on_pull_end(repl_conn_t *c, const repl_msg_t *m);
/* After a read: the open transaction committed. */
void repl_mgmt_flush(repl_t *r);
/* Each tick: the walks (stream, catch-ups, pull answers); each digest
 * interval: digests and tombstones. */
void repl_mgmt_tick(repl_t *r, uint64_t now);
void repl_mgmt_digest_tick(repl_t *r);
/* Management kinds flow with this peer and its catch-up is not applied
 * yet: the bootstrap waits for it. */
bool repl_mgmt_owed(const repl_peer_t *p);

/* antientropy.c */
void repl_digest_tick(repl_t *r);
void repl_on_digest(repl_conn_t *c, const repl_msg_t *m);
/* A PULL_END: the pull it answers is forgotten and its service swept with
 * the pull's own mark.  One nobody asked on this connection is ignored. */
void repl_on_pull_end(repl_conn_t *c, const repl_msg_t *m);
/* A connection closed: its pulls are forgotten (asked again later). */
void repl_pulls_forget(repl_t *r, const repl_conn_t *c);
void repl_pending_free(repl_t *r);

#endif

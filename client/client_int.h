/*
 * client_int.h - what the files of libartemis-client share and nobody else
 * sees (include/artemis/client.h is the public side).
 *
 *   client.c     options, the client's lifecycle, its background loop
 *                (own thread or the caller's base), wakeups, statistics
 *   call.c       calls that block the caller: the sync runner, artemis_call,
 *                the deployment (region, zone) learnt from a node
 *   nodes.c      the address repository: node URLs, failover, backoff,
 *                the cluster's up-*-nodes.json lists
 *   http.c       one HTTP exchange on an event base, with failover across
 *                nodes and deadlines; the response parser
 *   ws.c         WebSocket client sessions and the frame decoder
 *   instance.c   artemis_instance_t: fields, JSON in and out, keys
 *   service.c    artemis_service_t snapshots, route rules, the choice
 *   registry.c   register, keep alive (WebSocket/HTTP heartbeats), re-register
 *   lease.c      the keep-alive interval, from the lease TTL a node tells
 *   discovery.c  the service cache, pushes, reloads, subscriptions
 *   map.c        a string-keyed hash map
 *   decode.c     the decoders of node answers (fuzzed: tests/fuzz/fuzz_client.c)
 *
 * Locking: one mutex per client (c->lock) guards the node table, the set of
 * registered instances, the service cache, the subscriptions and the wake
 * flags.  Event-base objects (events, sessions, async requests) belong to
 * the loop thread alone.  Snapshots and frozen instances are immutable and
 * reference-counted; a snapshot's choice state has its own mutex.
 */
#ifndef ARTEMIS_CLIENT_INT_H
#define ARTEMIS_CLIENT_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <http_parser.h>

#include "artemis/buf.h"
#include "artemis/client.h"

#define CL_MAX_NODES      64
#define CL_URL_MAX        512 /* a node's base URL */
#define CL_HOST_MAX       256
#define CL_ID_MAX         255 /* serviceId and instanceId, as the nodes limit them */
#define CL_REGION_MAX     64
#define CL_TOKEN_MAX      4096
#define CL_PATH_MAX       4096
#define CL_BODY_MAX       (64u << 20) /* a request body artemis_call sends */
#define CL_WS_MAX_MESSAGE (4u << 20)  /* largest message read from a node */
#define CL_LOOKUP_BATCH   64          /* services per lookup.json of a reload */
#define CL_PUSH_CHANGE    "/artemis/websocket/discovery/instance-change"
#define CL_WS_HEARTBEAT   "/artemis/websocket/registry/heartbeat"

typedef struct artemis_client cl_t;
typedef artemis_error_t cl_err_t;

/* ------------------------------------------------------------ errors -- */

/* Record the error in *e (e may be NULL) and return code. */
int cl_err(cl_err_t *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#ifdef __clang_analyzer__
/* The analyzer sees one file at a time: tell it what cl_err returns, or it
 * follows `return cl_err(...)` paths as if they could succeed. */
#define cl_err(e, code, ...) (cl_err((e), (code), __VA_ARGS__), (code))
#endif
void cl_err_clear(cl_err_t *e);
/* Copy src into dst (dst may be NULL); returns src->code. */
int cl_err_copy(cl_err_t *dst, const cl_err_t *src);

/* ----------------------------------------------------------- options -- */

typedef struct {
	char region[CL_REGION_MAX + 1];
	char zone[CL_REGION_MAX + 1];
	char token[CL_TOKEN_MAX + 1];
	uint32_t connect_timeout_ms;
	uint32_t request_timeout_ms;
	uint32_t lease_ttl_ms;
	uint32_t heartbeat_interval_ms; /* in use (lease.c may change it) */
	uint32_t heartbeat_explicit_ms; /* the application's, 0: from the TTL */
	uint32_t reload_interval_ms;
	uint32_t nodes_refresh_ms;
	uint32_t backoff_max_ms;
	uint32_t max_instances;
	uint32_t max_services;
	uint32_t ws_message_bytes;
	uint64_t max_response_bytes;
	bool websocket;
	bool unregister_on_close;
	bool lease_ttl_set; /* by the application: never learnt from a node */
} cl_conf_t;

struct artemis_options {
	cl_conf_t conf;
	char urls[CL_MAX_NODES][CL_URL_MAX];
	int nurls;
	struct event_base *base;
};

/* --------------------------------------------------------------- map -- */

typedef struct cl_map_ent {
	struct cl_map_ent *next;
	uint64_t hash;
	const char *key; /* owned by the value */
	void *val;
} cl_map_ent_t;

typedef struct {
	cl_map_ent_t **b;
	size_t nb; /* a power of 2, or 0 */
	size_t n;
} cl_map_t;

uint64_t cl_hash(const char *s);
void *cl_map_get(const cl_map_t *m, const char *key);
/* Insert or replace; *old (may be NULL) gets the value replaced.  The key
 * must stay valid as long as the entry (it belongs to the value). */
int cl_map_put(cl_map_t *m, const char *key, void *val, void **old);
void *cl_map_del(cl_map_t *m, const char *key);
/* Iterate: start with *pos = 0 and *ent = NULL. */
bool cl_map_next(const cl_map_t *m, size_t *pos, cl_map_ent_t **ent);
void cl_map_free(cl_map_t *m);

/* ----------------------------------------------------------- instance -- */

typedef struct {
	char *key;
	char *value;
} cl_meta_t;

struct artemis_instance {
	atomic_int refs;
	bool frozen;              /* shared and read-only */
	char *f[ARTEMIS_F_COUNT]; /* NULL when absent */
	int port;
	cl_meta_t *meta;
	size_t nmeta;
	/* Set when frozen: */
	char *json; /* the Instance JSON, sorted keys, nulls included */
	size_t json_len;
	char *key;       /* lowercase region \x1f service \x1f instance */
	char *group_key; /* lowercase service/region/zone/group-or-default/instance */
	char *hb;        /* the heartbeat form (registry keys and url), or NULL */
	size_t hb_len;
	bool up;
};

typedef artemis_instance_t cl_inst_t;

enum {
	CL_FREEZE_HB = 1 << 0, /* also the heartbeat form (kept alive) */
	CL_FREEZE_UP = 1 << 1, /* status "up" when none is given (registering) */
};

/* A frozen copy of src with the client's region/zone filled in where they
 * are blank (region/zone may be NULL), the url derived from ip and port
 * when missing, the nodes' limits checked; flags CL_FREEZE_*. */
int cl_inst_freeze(const cl_inst_t *src, const char *region, const char *zone, unsigned flags,
                   cl_inst_t **out, cl_err_t *err);
/* A frozen instance from an Instance object of a node's answer. */
int cl_inst_from_json(json_t *obj, cl_inst_t **out, cl_err_t *err);
cl_inst_t *cl_inst_retain(cl_inst_t *i);
void cl_inst_release(cl_inst_t *i);
/* The key of the Instance object obj (lowercase region \x1f service \x1f
 * instance) into buf; false when a part is missing or it does not fit. */
bool cl_inst_key_of(json_t *obj, char *buf, size_t len);

/* ------------------------------------------------------------ service -- */

enum { CL_STRATEGY_WRR = 0, CL_STRATEGY_CLOSE };

typedef struct {
	char *key;  /* groupKey, lowercase */
	int weight; /* clamped as Java: null or < 0 -> 5, > 10000 -> 10000 */
	char **ids; /* instanceIds */
	size_t nids;
	char **inst_keys; /* keys of groups[].instances (the canary rule) */
	size_t ninst;
} cl_group_spec_t;

typedef struct {
	char *id;
	int strategy;
	cl_group_spec_t *groups;
	size_t ngroups;
} cl_rule_spec_t;

typedef struct cl_rules {
	atomic_int refs;
	cl_rule_spec_t *r;
	size_t n;
	char *json; /* compact JSON text of routeRules, or NULL */
} cl_rules_t;

typedef struct {
	size_t *up; /* indices of member instances that are up */
	size_t nup;
	int weight;
	int64_t cur; /* smooth weighted round robin */
	size_t rr;
} cl_group_t;

typedef struct {
	const char *id; /* points into a spec, or a constant */
	int strategy;
	cl_group_t *groups;
	size_t ngroups;
	size_t *near[3]; /* close-by-visit: up members in zone, region, anywhere */
	size_t nnear[3];
	size_t rr;
} cl_route_t;

struct artemis_service {
	atomic_int refs;
	char *id;
	cl_inst_t **inst; /* sorted by key, unique */
	size_t n;
	char *metadata_json; /* compact JSON text or NULL */
	char *logic_json;
	struct cl_rules *rules; /* as received, shared by the snapshots of a service */
	char *region, *zone;    /* the caller's, for close-by-visit */
	char *json;             /* artemis_service_json */
	cl_route_t *routes;     /* after the Java client's processing */
	size_t nroutes;
	pthread_mutex_t pick; /* the routes' counters */
	size_t *all_up;       /* fallback: every instance up */
	size_t nall_up;
	size_t rr;
};

typedef artemis_service_t cl_svc_t;

/* A snapshot from a Service object of a node's answer. */
int cl_svc_from_json(json_t *obj, const char *region, const char *zone, cl_svc_t **out,
                     cl_err_t *err);
/* old with a pushed change applied (type new/change: upsert; delete). */
int cl_svc_apply(const cl_svc_t *old, int type, cl_inst_t *inst, cl_svc_t **out);
void cl_svc_release(cl_svc_t *s);

/* ------------------------------------------------------------ decoders -- */

/* The envelope of a Java-shaped answer: responseStatus.{status,errorCode,
 * message}.  Missing pieces are "" (an answer without one is not Java's). */
typedef struct {
	char status[32];
	char code[32];
	char message[200];
} cl_status_t;

void cl_status_of(json_t *root, cl_status_t *st);
/* fail + internal-service-error/service-unavailable: the node is down. */
bool cl_status_node_down(const cl_status_t *st);
/* fail + rate-limited/unknown: worth another try. */
bool cl_status_rerunnable(const cl_status_t *st);

/* One failedInstances entry of a registry answer. */
typedef struct {
	char key[CL_REGION_MAX + 2 * CL_ID_MAX + 4];
	char code[32];
	char message[200];
} cl_failed_t;

/* Decode a registry answer (register/heartbeat/unregister.json, or a
 * WebSocket heartbeat answer).  *failed (free()) gets the failed entries
 * with a usable instance key. */
int cl_decode_registry(json_t *root, cl_status_t *st, cl_failed_t **failed, size_t *nfailed);
/* Decode an InstanceChange push: the type (ARTEMIS_CHANGE_*), the service
 * id (into sid), the instance (frozen; NULL for a reload), changeTime. */
int cl_decode_change(const char *text, size_t len, int *type, char *sid, size_t sid_len,
                     cl_inst_t **inst, int64_t *time);
/* Decode nodes[].url of an up-*-nodes.json answer (trailing '/' trimmed);
 * calls fn for each; returns how many, or < 0. */
int cl_decode_nodes(json_t *root, void (*fn)(void *arg, const char *url), void *arg);
/* Parse JSON text (bounded); NULL when it is not JSON. */
json_t *cl_json_parse(const char *text, size_t len);

/* -------------------------------------------------------------- HTTP -- */

/* The response parser: libhttp-parser over bytes as they arrive. */
typedef struct {
	http_parser p;
	int status;
	buf_t body;
	size_t max_body;
	bool complete;
	bool too_big;
	/* The handshake of a WebSocket: the value of Sec-WebSocket-Accept. */
	char accept[64];
	bool in_accept;
	bool last_was_value;
	char field[32];
	size_t field_len;
} cl_resp_t;

void cl_resp_init(cl_resp_t *r, size_t max_body);
/* Feed bytes.  Returns 1 when the response is complete (*used: bytes
 * consumed, the rest belongs to what follows: WebSocket frames), 0 when
 * more is needed, ARTEMIS_E_PROTO or ARTEMIS_E_LIMIT. */
int cl_resp_feed(cl_resp_t *r, const char *data, size_t len, size_t *used);
/* The peer closed: 1 when that completes the response, else an error. */
int cl_resp_eof(cl_resp_t *r);
void cl_resp_free(cl_resp_t *r);

/* ------------------------------------------------------------- nodes -- */

enum { CL_P_REGISTRY = 0, CL_P_DISCOVERY, CL_P_COUNT };

typedef struct {
	char url[CL_URL_MAX]; /* http://host:port[/prefix], no trailing '/' */
	char host[CL_HOST_MAX];
	char hostport[CL_HOST_MAX + 8];
	char prefix[CL_URL_MAX]; /* "" or "/ctx" */
	uint16_t port;
	bool seed;
	uint8_t listed; /* bit per purpose: in the cluster's last list */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint64_t resolved_ms;
	uint64_t dead_until_ms; /* 0: usable */
	uint32_t backoff_ms;
} cl_node_t;

/* A node as one attempt uses it (copied out of the table). */
typedef struct {
	char url[CL_URL_MAX];
	char hostport[CL_HOST_MAX + 8];
	char prefix[CL_URL_MAX];
	struct sockaddr_storage addr;
	socklen_t addrlen;
} cl_target_t;

/* Parse and normalise a node URL. */
int cl_node_parse(const char *url, cl_node_t *n, cl_err_t *err);
/* Pick a node for purpose: the current one while it works, else a random
 * usable one; skip[] (nskip) are URLs hashes this call already tried.
 * With all nodes backing off: when honour_backoff, *wait_ms gets the time
 * to the first retry and -EAGAIN is returned; else the one retried first.
 * Resolves the host when needed (getaddrinfo; cached 60 s).  -ENOENT when
 * every node was tried. */
int cl_nodes_pick(cl_t *c, int purpose, const uint64_t *skip, size_t nskip, bool honour_backoff,
                  cl_target_t *t, uint64_t *wait_ms, cl_err_t *err);
void cl_nodes_failed(cl_t *c, const char *url);
int cl_nodes_count(cl_t *c);
void cl_nodes_ok(cl_t *c, int purpose, const char *url);
/* Merge a cluster list for purpose (urls of up nodes). */
void cl_nodes_update(cl_t *c, int purpose, char **urls, size_t n);

/* ----------------------------------------------------------- requests -- */

enum {
	CL_REQ_JAVA = 1 << 0,     /* Java semantics: JSON envelope; HTTP >= 300 and "node
	                           * down" codes fail over, rerunnable codes retry */
	CL_REQ_ONE_NODE = 1 << 1, /* no failover (a WebSocket's HTTP twin) */
};

typedef struct cl_req cl_req_t;
typedef void (*cl_req_done_fn)(cl_req_t *r, void *arg);

struct cl_req {
	/* In: set before cl_req_start. */
	cl_t *c;
	struct event_base *base;
	int purpose;
	unsigned flags;
	char method[16];
	char *path;           /* owned */
	buf_t body;           /* owned */
	char *token;          /* owned, NULL or "" for none */
	uint64_t deadline_ms; /* monotonic; 0 = now + request timeout */
	cl_req_done_fn done;
	void *arg;
	/* Frees arg when the request is cancelled (the client closing)
	 * before done ran; NULL: arg needs no freeing. */
	void (*drop)(void *arg);
	/* Out, when done is called. */
	int rc;
	cl_err_t err;
	int status;
	cl_resp_t resp;
	json_t *json; /* CL_REQ_JAVA: the parsed answer */
	cl_status_t st;
	char node[CL_URL_MAX];
	/* Private. */
	cl_target_t target;
	int fd;
	int phase;
	struct event *ev;
	struct event *timer;
	buf_t out;
	size_t out_off;
	uint64_t tried[CL_MAX_NODES];
	size_t ntried;
	unsigned attempts;
	uint64_t attempt_deadline;
	bool loop_owned;            /* submitted: freed after done returns */
	struct cl_req *next, *prev; /* the loop's list of requests in flight */
};

/* A request with method, path (copied) and body (copied; may be NULL). */
cl_req_t *cl_req_new(cl_t *c, int purpose, unsigned flags, const char *method, const char *path,
                     const char *body, size_t body_len);
/* Start on r->base; done is called once, from that base, unless cancelled. */
void cl_req_start(cl_req_t *r);
void cl_req_cancel(cl_req_t *r);
void cl_req_free(cl_req_t *r);
/* Run r on a private base on the calling thread; returns r->rc. */
int cl_req_run(cl_req_t *r);
/* Start r on the loop (loop thread only); it is freed after done. */
void cl_req_submit(cl_req_t *r);

/* Non-blocking sockets: open and start connecting; the pending connect's
 * error (0 when connected); write out[*off..] (0 all, 1 would block). */
int cl_sock_open(const cl_target_t *t, int *fd);
int cl_sock_error(int fd);
int cl_sock_flush(int fd, buf_t *out, size_t *off);

/* ---------------------------------------------------------- WebSocket -- */

/* The frame decoder (server to client: unmasked frames). */
typedef struct {
	uint8_t hdr[14];
	size_t hdr_len, hdr_need;
	uint8_t op; /* of the frame being read */
	bool fin;
	uint64_t left;  /* payload bytes still to read */
	uint8_t msg_op; /* 0 when no message is being assembled */
	buf_t msg;
	uint8_t ctl[125];
	size_t ctl_len;
	size_t max;
} cl_wsd_t;

enum { CL_WS_TEXT = 1, CL_WS_BINARY = 2, CL_WS_CLOSE = 8, CL_WS_PING = 9, CL_WS_PONG = 10 };

/* on: a whole data message (text or binary) or a control frame; returns
 * 0 to go on, anything else to stop decoding (the rest of the bytes are
 * not looked at: the session that called it is gone). */
typedef int (*cl_wsd_fn)(void *ctx, int op, const char *data, size_t len);
void cl_wsd_init(cl_wsd_t *d, size_t max);
/* Returns 0, ARTEMIS_E_PROTO (a frame against RFC 6455 from a server),
 * ARTEMIS_E_LIMIT (a message over max) or the callback's non-zero value. */
int cl_wsd_feed(cl_wsd_t *d, const uint8_t *data, size_t len, cl_wsd_fn fn, void *ctx);
void cl_wsd_free(cl_wsd_t *d);
/* Append a masked client frame. */
int cl_ws_frame(buf_t *out, int op, const char *data, size_t len, uint32_t mask);

typedef struct cl_ws cl_ws_t;

typedef struct {
	/* Does the owner need the session now (connect when idle)? */
	bool (*wanted)(cl_ws_t *ws);
	void (*open)(cl_ws_t *ws);
	void (*text)(cl_ws_t *ws, const char *msg, size_t len);
	/* The session ended (rc < 0: it failed and its node is marked); the
	 * session reconnects by itself while wanted.  Never reconnect from here. */
	void (*closed)(cl_ws_t *ws, int rc, const char *why);
} cl_ws_cb_t;

enum { CL_WS_IDLE = 0, CL_WS_CONNECTING, CL_WS_HANDSHAKE, CL_WS_OPEN };

struct cl_ws {
	cl_t *c;
	int purpose;
	const char *path;
	const cl_ws_cb_t *cb;
	int state;
	int fd;
	struct event *ev;    /* readable */
	struct event *ev_w;  /* writable: connect done, output pending */
	struct event *timer; /* connect and handshake deadline */
	struct event *kick;  /* the next (re)connect */
	cl_target_t target;
	buf_t out;
	size_t out_off;
	cl_resp_t hs;
	char key[32];
	cl_wsd_t dec;
	bool reading; /* inside the read handler: the decoder is in use */
	uint64_t opened_ms;
	uint64_t ping_sent_ms; /* 0: no ping outstanding */
	uint64_t last_ping_ms;
	uint64_t retry_ms; /* earliest reconnect */
	uint64_t rng;
	unsigned generation; /* bumped at each open */
};

void cl_ws_init(cl_ws_t *ws, cl_t *c, int purpose, const char *path, const cl_ws_cb_t *cb);
/* A session's wanted(): the WebSocket is on, the client not closing, and
 * *count (the owner's set or cache size, read under the lock) above 0. */
bool cl_ws_needed(cl_t *c, const size_t *count);
/* Connect when idle and due (loop thread). */
void cl_ws_connect(cl_ws_t *ws);
int cl_ws_send(cl_ws_t *ws, int op, const char *data, size_t len);
/* Close now (no callback); the node is marked failed when rc < 0. */
void cl_ws_close(cl_ws_t *ws, int rc, const char *why);
/* Each second: pings, pong deadline, session age, reconnects. */
void cl_ws_tick(cl_ws_t *ws, uint64_t now);
void cl_ws_free(cl_ws_t *ws);

/* ----------------------------------------------------------- registry -- */

typedef struct cl_batch {
	struct cl_batch *next;
	buf_t body; /* {"instances":[...]} */
	size_t count;
	uint64_t sent_ms;
} cl_batch_t;

typedef struct {
	cl_map_t set; /* key -> cl_inst_t* (frozen, with hb); under c->lock */
	cl_ws_t ws;
	struct event *timer;
	cl_batch_t *head, *tail; /* WebSocket batches awaiting their answer */
	unsigned http_inflight;
	bool round_due;            /* run a round when the session opens */
	char ttl_node[CL_URL_MAX]; /* lease.c: the node whose TTL was asked, "" none */
	bool ttl_asking;
} cl_reg_t;

int cl_reg_init(cl_t *c);
void cl_reg_loop_start(cl_t *c);
void cl_reg_wake(cl_t *c);
void cl_reg_tick(cl_t *c, uint64_t now);
void cl_reg_loop_stop(cl_t *c);
/* Unregister everything kept (artemis_client_free). */
void cl_reg_unregister_all(cl_t *c);
void cl_reg_free(cl_t *c);

/* lease.c: the interval between keep-alive rounds for a lease TTL; an
 * application's interval (explicit_ms, 0 = none) is kept while it is below
 * a third of the TTL, otherwise TTL/4 (at least 100 ms). */
uint32_t cl_lease_interval(uint32_t ttl_ms, uint32_t explicit_ms);
/* registry.lease_ttl_ms of a config.json answer (a string or a number in
 * the nodes' bounds, 1000..604800000). */
int cl_decode_lease_ttl(json_t *root, uint32_t *ttl_ms);
/* Ask the registry node its lease TTL if it is not known for that node
 * (url: the node a session just opened on; NULL: the one in use) while
 * instances are kept alive and the application set no TTL (loop thread). */
void cl_lease_learn(cl_t *c, const char *url);

/* ---------------------------------------------------------- discovery -- */

typedef struct {
	char *id;
	cl_svc_t *snap;
	unsigned sent_gen; /* the push session generation it was subscribed on */
	bool reload_queued;
	bool settle; /* fetch again once its subscription is surely active */
} cl_entry_t;

typedef struct cl_sub {
	struct cl_sub *next;
	uint64_t id;
	char *service;
	artemis_change_fn fn;
	void *arg;
} cl_sub_t;

typedef struct {
	cl_map_t cache; /* serviceId (exact case) -> cl_entry_t*; under c->lock */
	cl_sub_t *subs;
	uint64_t next_sub;
	uint64_t running;    /* the subscription whose callback runs, 0 none */
	pthread_t cb_thread; /* the thread running it */
	pthread_cond_t done_cond;
	cl_ws_t ws;
	struct event *settle_ev;
	uint64_t next_reload_ms;
	unsigned reload_inflight;
} cl_disc_t;

int cl_disc_init(cl_t *c);
void cl_disc_loop_start(cl_t *c);
void cl_disc_wake(cl_t *c);
void cl_disc_tick(cl_t *c, uint64_t now);
void cl_disc_loop_stop(cl_t *c);
void cl_disc_free(cl_t *c);

/* ------------------------------------------------------------- client -- */

enum { CL_WAKE_REG = 1 << 0, CL_WAKE_DISC = 1 << 1, CL_WAKE_STOP = 1 << 2 };

struct artemis_client {
	cl_conf_t conf;
	pthread_mutex_t lock;
	/* nodes (under lock) */
	cl_node_t nodes[CL_MAX_NODES];
	int nnodes;
	int current[CL_P_COUNT];
	uint64_t rng;
	bool deployment_known;
	/* the background loop */
	struct event_base *base;
	bool own_base;
	bool loop_started;
	pthread_t thread;
	bool thread_running;
	pthread_t loop_tid; /* set by the loop's thread itself */
	atomic_bool loop_tid_set;
	pthread_mutex_t start_lock;
	int wake_fd;
	struct event *wake_ev;
	struct event *tick_ev;
	unsigned wake_flags; /* under lock */
	cl_req_t *reqs;      /* async requests in flight (loop thread) */
	uint64_t next_refresh_ms;
	bool closing;       /* under lock */
	bool free_deferred; /* artemis_client_free from a callback */
	bool in_callback;   /* loop thread */
	atomic_uint_fast64_t stats[ARTEMIS_STAT_COUNT];
	cl_reg_t reg;
	cl_disc_t disc;
};

static inline void cl_stat_add(cl_t *c, artemis_stat_t s, uint64_t n)
{
	atomic_fetch_add_explicit(&c->stats[s], n, memory_order_relaxed);
}

/* Start the background loop if it is not running (any thread). */
int cl_loop_ensure(cl_t *c, cl_err_t *err);
/* Ask the loop to act on flags (any thread). */
void cl_wake(cl_t *c, unsigned flags);
bool cl_on_loop_thread(const cl_t *c);
/* The region and zone requests carry (learnt from a node when not set). */
int cl_deployment(cl_t *c, char *region, char *zone, cl_err_t *err);
/* A random 64-bit value (getrandom, else time-seeded). */
uint64_t cl_random(void);
uint64_t cl_xorshift(uint64_t *s);

/* -------------------------------------------------------- blocking calls -- */

/* POST a Java-shaped request on a private base (any thread); *out gets the
 * parsed answer (HTTP 200 with a responseStatus), *st its envelope.
 * deadline_ms: monotonic, 0 = now + the request timeout. */
int cl_call_java(cl_t *c, int purpose, const char *path, const char *body, size_t len,
                 uint64_t deadline_ms, json_t **out, cl_status_t *st, cl_err_t *err);
/* ARTEMIS_E_SERVER with the envelope's code and message in err. */
int cl_refused(cl_err_t *err, const char *what, const cl_status_t *st);
/* The services of a lookup.json answer for n requested ids, in order. */
int cl_lookup_answer(json_t *root, const cl_status_t *st, const char *region, const char *zone,
                     size_t n, cl_svc_t **out, cl_err_t *err);
/* lookup.json for n ids, blocking. */
int cl_fetch_services(cl_t *c, char *const *ids, size_t n, cl_svc_t **out, cl_err_t *err);

/* ---------------------------------------------------------- utilities -- */

/* Checks an argument string: not NULL, at most max bytes, no control
 * characters when strict.  Returns its length or ARTEMIS_E_INVAL. */
long cl_arg(const char *s, size_t max, bool strict, const char *what, cl_err_t *err);
char *cl_strdup(const char *s);
char *cl_strndup(const char *s, size_t n);
/* Lowercase in place. */
void cl_lower(char *s);
/* {"regionId":R,"zoneId":Z,"discoveryConfigs":[{"serviceId":..},..]} */
int cl_lookup_body(buf_t *b, const char *region, const char *zone, char *const *ids, size_t n);

#endif

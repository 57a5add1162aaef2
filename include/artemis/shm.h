/*
 * shm.h - the registry region in shared memory (module shm/).
 *
 * One region per node holds every instance, the lease of each, the service
 * table, the instances' stored JSON and the change log.  Every process of a
 * node (master, workers, reaper, replicator, the CLI) maps it; any of them may
 * be killed at any instruction without losing an acknowledged write.
 *
 * Who calls what:
 *   - the master creates/attaches the region and calls shm_repair() when it
 *     reaps a child that died holding the writer lock;
 *   - workers call the read paths, shm_heartbeat() (lock-free) and the write
 *     paths (register, unregister);
 *   - the reaper calls shm_preserve_tick() every second and shm_reap() every
 *     reap interval;
 *   - the replicator follows the change log and applies remote changes
 *     through the same write paths, tagged with their origin.
 *
 * Errors are negative errno values (libuv style):
 *   -EINVAL        a required field is missing or blank, or an argument is bad
 *   -ENAMETOOLONG  a field is longer than its documented maximum (SHM_MAX_*)
 *   -E2BIG         the instance's stored form is larger than SHM_MAX_JSON
 *   -ENOENT        no such live instance (heartbeat: "data-not-found")
 *   -ENOSPC        the region is full (instances, services or arena)
 *   -ENOBUFS       shared memory (/dev/shm) has no room to back the pages
 *                  the write needs; nothing was changed, and writes work
 *                  again once space comes back
 *   -ETIMEDOUT     the writer lock was not free within lock_wait_ms (its
 *                  holder is stopped or stuck); nothing was changed
 *   -EBUSY         a reader gave up after its bounded retries (a writer is
 *                  mid-update, or one died mid-update and is not repaired yet)
 *   -ESTALE        a replicated register lost last-writer-wins to newer data
 *   -EOVERFLOW     a change-log cursor was overrun (caller resynchronises)
 *   -EPROTO        the region's layout version differs from this binary's
 *   -EEXIST        shm_open_region() with SHM_CREATE_EXCL found a region
 *   -EBADMSG       the region's header is inconsistent (corrupt or
 *                  tampered with): shm_error_detail() says what
 *   -EPERM         the region file is not owned by this user, or others may
 *                  write it: shm_error_detail() says which
 *   -EIO           a change-log record is corrupt (shm_changes_next)
 */
#ifndef ARTEMIS_SHM_H
#define ARTEMIS_SHM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "artemis/clock.h"
#include "artemis/buf.h"

/* Field limits, in bytes.  Longer input is rejected, never truncated. */
#define SHM_MAX_REGION   64
#define SHM_MAX_ZONE     64
#define SHM_MAX_SERVICE  255
#define SHM_MAX_INSTANCE 255
#define SHM_MAX_GROUP    128
#define SHM_MAX_IP       64
#define SHM_MAX_STATUS   64
#define SHM_MAX_URL      2048  /* url and healthCheckUrl (checked by the codec) */
#define SHM_MAX_MACHINE  255   /* machineName (checked by the codec) */
#define SHM_MAX_PROTOCOL 32    /* protocol (checked by the codec) */
#define SHM_MAX_METADATA 8192  /* metadata as JSON text (checked by the codec) */
#define SHM_MAX_JSON     16384 /* the instance's whole stored JSON form */

#define SHM_LAYOUT_VERSION   12
#define SHM_MAX_PROCS        64
#define SHM_MAX_NODES        64                  /* origin ids: 0 = this node, 1..62 = peers */
#define SHM_ORIGIN_HTTP_PEER (SHM_MAX_NODES - 1) /* changes from Java peers' HTTP replication */
/* The origin of a management notice (shm_notify): a `delete`, `new` or
 * `reload` that tells subscribers discovery's view of an instance changed
 * (pull-out, pull-in) while the registry did not.  Outside the node ids, so
 * the replicator, which forwards only origin 0, never sends it to a peer as
 * a registry change: each node derives its notices from its own store. */
#define SHM_ORIGIN_MGMT 255

/* Limits of the region's parameters (the configuration checks the same). */
#define SHM_MAX_INSTANCES (1u << 26)
#define SHM_MAX_SERVICES  (16u << 20)
#define SHM_MAX_CHANGELOG (16u << 20)
#define SHM_MAX_ARENA     (1ull << 40)
#define SHM_MIN_TTL_MS    1000u
#define SHM_MAX_TTL_MS    604800000u
#define SHM_MIN_WINDOW_MS 10000u /* self-preservation windows: whole seconds */
#define SHM_MAX_WINDOW_MS 300000u
#define SHM_RESERVE_STEP  (1u << 20) /* growing sections are backed in these steps */
#define SHM_MGMT_STEP     (1u << 16) /* the management section's steps (shm_mgmt_reserve) */

typedef struct shm shm_t; /* a process's handle on a mapped region */

/* A byte string that need not be NUL-terminated. */
typedef struct {
	const char *ptr;
	size_t len;
} shm_str_t;

/* ---- The down filter's tags ---------------------------------------------
 *
 * Management operations hide instances from discovery by key (MANAGEMENT.md
 * §2): the instance's own key, its server (region, ip), its zone (region,
 * zone) for every service or for its service, its group.  Each such key is
 * hashed into a tag: a 64-bit XXH3 of the kind and the lowercase parts, seeded
 * by the region's random seed (so nobody outside can aim collisions at it).
 * An instance's tags are computed once when it is registered and kept with
 * its stored JSON; the management projection (mgmt/) holds the tags of the
 * keys operated down, and a filter is a handful of probes.  A tag is never 0.
 */
enum shm_tag {
	SHM_TAG_INSTANCE = 0, /* region, service, instance */
	SHM_TAG_SERVER,       /* region, ip */
	SHM_TAG_ZONE,         /* region, zone: every service of the zone */
	SHM_TAG_ZONE_SERVICE, /* region, zone, service */
	SHM_TAG_GROUP,        /* service, region, zone, group ("default" when blank) */
	SHM_TAGS
};

/* ---- Region lifecycle ------------------------------------------------- */

typedef struct {
	const char *name;                   /* POSIX shm name, e.g. "/artemis-node1" */
	uint32_t max_instances;             /* capacity of instance slots */
	uint32_t max_services;              /* capacity of the service table (0: derive) */
	uint32_t changelog_size;            /* records in the change log, power of 2 (0: 65536) */
	uint64_t arena_bytes;               /* blob arena size (0: derive from max_instances) */
	uint32_t lease_ttl_ms;              /* lease TTL of normal instances (20000) */
	uint32_t legacy_ttl_ms;             /* lease TTL of "java_registry" instances (90000) */
	bool self_preservation;             /* Java's LeaseUpdateSafeChecker enabled */
	uint32_t preserve_window_ms;        /* normal manager window (12000 packaged) */
	uint32_t legacy_preserve_window_ms; /* legacy manager window (60000) */
	uint32_t lock_wait_ms;              /* a writer's wait for the lock (500); not a
	                                     * layout parameter: set at every open */
	uint64_t mgmt_bytes;         /* the management section (0: none; mgmt/ lays it out) */
	uint64_t mgmt_initial_bytes; /* what of it a start reserves (0: all of it); the
	                              * rest mgmt/ reserves as it fills (shm_mgmt_reserve) */
} shm_params_t;

void shm_params_default(shm_params_t *p, const char *name);

enum {
	SHM_CREATE_EXCL = 1 << 0,  /* fail with -EEXIST if the region exists */
	SHM_CREATE_FRESH = 1 << 1, /* discard an existing region and start empty
	                            * (-EBUSY while a live master claims it) */
};

/* What shm_open_region() found, for the master's log and its decisions. */
typedef struct {
	bool created;           /* a new empty region was made */
	bool was_clean;         /* an existing region had its clean-shutdown flag */
	bool repaired;          /* an interrupted write was repaired on attach */
	uint64_t region_bytes;  /* the region's (sparse) size */
	uint64_t reserve_bytes; /* memory backing it now; on -ENOBUFS, what a start
	                         * needs (and could not get) */
} shm_open_info_t;

/* Create the region (O_EXCL, mode 0600, with the memory a start needs
 * reserved in /dev/shm: -ENOBUFS when there is not that much), or attach to
 * an existing one with the same layout version (parameters of an existing
 * region win; a differing layout version gives -EPROTO).  An existing
 * region must be owned by this user and writable by no one else (-EPERM),
 * and its header must be consistent (-EBADMSG).  Clears the clean-shutdown
 * flag while attached. */
int shm_open_region(const shm_params_t *p, int flags, shm_t **out, shm_open_info_t *info);

/* Attach to an existing region by name, with the checks of
 * shm_open_region.  read_only maps it PROT_READ (used by `artemis check`; no
 * write path may be called on such a handle). */
int shm_attach(const char *name, bool read_only, shm_t **out);

/* The same on an open file (a memfd in tests and the fuzz target); the
 * handle keeps its own duplicate of fd. */
int shm_attach_fd(int fd, bool read_only, shm_t **out);

/* Make a new empty region on an open, empty file (a memfd). */
int shm_create_fd(int fd, const shm_params_t *p, shm_t **out);

/* Why the last shm_open_region/shm_attach failed with -EBADMSG or -EPERM
 * ("" otherwise).  Static storage, overwritten by the next call. */
const char *shm_error_detail(void);

/* How long writers wait for the lock from now on (the master, at start and
 * on reload). */
void shm_set_lock_wait(shm_t *shm, uint32_t ms);

/* The writer lock's holder, for the master's stall watch: pid 0 when free;
 * seq changes with every acquisition. */
typedef struct {
	int pid;
	uint64_t seq;
} shm_lock_state_t;
void shm_lock_state(shm_t *shm, shm_lock_state_t *out);

/* Unmap.  Does not change the region. */
void shm_detach(shm_t *shm);

/* One master per region: claim it for the calling process.  -EBUSY (and
 * *other = its pid) when another live master holds it, whatever its data_dir
 * or config.  The claim is released by shm_release_master or by death. */
int shm_claim_master(shm_t *shm, int *other);
void shm_release_master(shm_t *shm);

/* Mark a clean shutdown (the master calls this last, after every child). */
void shm_set_clean(shm_t *shm, bool clean);
bool shm_was_clean(const shm_t *shm);

/* Extend every live lease by `extra_ms` (after an unclean stop, so clients
 * can heartbeat before anything expires).  0, or the lock's error. */
int shm_extend_leases(shm_t *shm, uint64_t extra_ms);

/* Initialise a robust process-shared mutex that lives in the region (the
 * writer lock, and the management section's).  0 or -errno. */
int shm_mutex_init(pthread_mutex_t *m);

/* Remove the region's name (the memory goes once every process detached). */
int shm_destroy(const char *name);

/* The region's identity and parameters as stored. */
const char *shm_name(const shm_t *shm);
uint64_t shm_incarnation(const shm_t *shm);
void shm_get_params(const shm_t *shm, shm_params_t *out);

/* ---- Process table --------------------------------------------------- */

enum shm_role {
	SHM_ROLE_NONE = 0,
	SHM_ROLE_MASTER,
	SHM_ROLE_WORKER,
	SHM_ROLE_REAPER,
	SHM_ROLE_REPLICATOR,
	SHM_ROLE_CLI,
	SHM_ROLE_TEST
};

/* Claim a process-table entry for the calling process (pid).  Renewal
 * counters of this process are kept there. Returns the entry index. */
int shm_proc_join(shm_t *shm, enum shm_role role, int slot_hint);
void shm_proc_leave(shm_t *shm);
void shm_proc_beat(shm_t *shm, uint64_t now_ms);
/* Free the entries of processes that no longer exist (master, on SIGCHLD). */
void shm_proc_reclaim(shm_t *shm, int pid);

/* Per-process counters for metrics, in the region so any worker can report
 * the node's totals.  The calling process (after shm_proc_join) owns its
 * array and may increment entries with plain relaxed atomics; the meaning of
 * each index belongs to the caller (worker/metrics).  Counters survive the
 * process: an entry reused by a respawned worker keeps counting up. */
#define SHM_PROC_COUNTERS 3072
uint64_t *shm_proc_counters(shm_t *shm);
/* Sum of every process's counters into out[SHM_PROC_COUNTERS]. */
void shm_proc_counters_sum(shm_t *shm, uint64_t *out);

typedef struct {
	int pid;
	int role;         /* enum shm_role */
	uint64_t beat_ms; /* last shm_proc_beat() */
} shm_proc_info_t;
/* List the process table (for status and `artemis check`); returns count. */
int shm_proc_list(shm_t *shm, shm_proc_info_t *out, int max);

/* ---- Node and peer status (written by the master and the replicator,
 * read by workers for /ready and the status and cluster endpoints) ---- */

enum shm_node_state { SHM_NODE_STARTING = 0, SHM_NODE_UP = 1, SHM_NODE_DOWN = 2 };
void shm_node_set_state(shm_t *shm, enum shm_node_state state);
enum shm_node_state shm_node_state(const shm_t *shm);

enum shm_peer_state { SHM_PEER_UNKNOWN = 0, SHM_PEER_STARTING, SHM_PEER_UP, SHM_PEER_DOWN };

typedef struct {
	char name[64];
	char zone[64];
	char url[256];          /* the peer's HTTP base URL */
	uint32_t state;         /* enum shm_peer_state */
	uint64_t last_seen_ms;  /* last frame or status answer from it */
	uint64_t acked_version; /* our change-log version it acknowledged */
	uint64_t lag_ms;        /* replication lag measured to it */
} shm_peer_t;

/* Peers are numbered 1..SHM_MAX_NODES-1 (the origin ids of their changes;
 * 0 is this node).  A single writer (the replicator) sets them. */
int shm_peer_set(shm_t *shm, int id, const shm_peer_t *peer);
/* 0 and *peer; -ENOENT for an unused id; -EBUSY if torn every time. */
int shm_peer_get(shm_t *shm, int id, shm_peer_t *peer);
/* Forget every peer (the master, when the config's peer list changes). */
void shm_peers_clear(shm_t *shm);

/* ---- Instances -------------------------------------------------------- */

/* The identity: (region, service, instance), compared case-insensitively. */
typedef struct {
	shm_str_t region;
	shm_str_t service;
	shm_str_t instance;
} shm_key_t;

/* What register stores.  `json` is the instance's response form, exactly the
 * bytes discovery will serve; the shm module does not parse it. */
typedef struct {
	shm_key_t key;
	shm_str_t zone;
	shm_str_t group;  /* may be empty */
	shm_str_t ip;     /* may be empty */
	shm_str_t status; /* may be empty */
	shm_str_t json;
	bool legacy;        /* metadata has a non-blank java_registry */
	uint32_t ttl_ms;    /* 0: the manager's TTL */
	uint8_t origin;     /* 0 = a local client; else the peer's node id */
	uint64_t origin_ms; /* registration time at the origin (0 = now) */
} shm_instance_in_t;

/* Check every field's presence and length; on error *field names the
 * offending field ("serviceId", ...) for the caller's message. */
int shm_instance_validate(const shm_instance_in_t *in, const char **field);

/* The tag of one key: `parts` are the kind's fields in the order listed at
 * enum shm_tag, compared case-insensitively (ASCII).  Callable on a
 * read-only handle. */
uint64_t shm_tag(const shm_t *shm, enum shm_tag kind, const shm_str_t *parts, size_t nparts);
/* Every tag of an instance, as shm_register stores them. */
void shm_instance_tags(const shm_t *shm, const shm_instance_in_t *in, uint64_t tags[SHM_TAGS]);

/* Upsert the whole instance with a fresh lease; always emits a `new` change.
 * A replicated register (origin != 0) loses to stored data with a newer
 * origin_ms (-ESTALE). */
int shm_register(shm_t *shm, const shm_instance_in_t *in);

/* Renew the lease.  Lock-free.  -ENOENT for an unknown, expired or evicted
 * instance.  `now_ms` is the caller's clock (0 = read it). */
int shm_heartbeat(shm_t *shm, const shm_key_t *key, uint64_t now_ms);

/* Renew a batch of leases (a heartbeat request's instances): the same as
 * shm_heartbeat on each key, with the cache misses of the batch overlapped.
 * rcs[i] gets each key's result; returns how many were renewed. */
int shm_heartbeat_batch(shm_t *shm, const shm_key_t *keys, size_t n, uint64_t now_ms, int *rcs);

/* Renew a lease on behalf of a peer (a replicated heartbeat): the same as
 * shm_heartbeat, but the renewal is marked remote so the replicator does not
 * forward it again.  -ENOENT tells the caller to ask for the full record. */
int shm_renew_remote(shm_t *shm, const shm_key_t *key, uint64_t now_ms);

/* Visit every live lease renewed by a local client (heartbeat or register
 * from this node's clients, not from peers) after since_ms.  The key's
 * strings are the stored lowercase identity (valid during the call).  For
 * the replicator's renewal batches.  Stops when fn returns non-zero. */
typedef int (*shm_renewal_fn)(void *ctx, const shm_key_t *key, uint64_t renewal_ms);
int shm_renewals_scan(shm_t *shm, uint64_t since_ms, shm_renewal_fn fn, void *ctx);

/* Mark the lease evicted (the reap pass removes it and emits `delete`).
 * Unknown keys are a quiet success (returns 0), as in Java. */
int shm_unregister(shm_t *shm, const shm_key_t *key, uint8_t origin);

/* A copied-out view of one instance. */
typedef struct {
	uint32_t slot;
	uint32_t gen;
	uint64_t creation_ms;
	uint64_t renewal_ms;
	uint64_t eviction_ms; /* 0 unless evicted */
	uint32_t ttl_ms;
	bool evicted;
	bool expired; /* now > renewal + ttl, or evicted */
	bool legacy;
	uint8_t origin;
	uint64_t origin_ms;
	char service[SHM_MAX_SERVICE + 1]; /* exact case, as registered */
	char display[SHM_MAX_REGION + SHM_MAX_ZONE + SHM_MAX_SERVICE + SHM_MAX_GROUP +
	             SHM_MAX_INSTANCE + 8]; /* Instance.toString(), lowercase */
	uint64_t tags[SHM_TAGS];            /* the down filter's tags (with the names) */
} shm_instance_view_t;

/* Look up one instance by key. -ENOENT when absent.  With `json` NULL only
 * the slot is read (lease, times, status, origin; view->service and
 * view->display are empty): the cheap form for "is it there, since when".
 * Otherwise the stored JSON is appended to `json` and the names are set. */
int shm_lookup(shm_t *shm, const shm_key_t *key, uint64_t now_ms, shm_instance_view_t *view,
               buf_t *json);

/* Look up a batch of keys with their cache misses overlapped; fn is called
 * once per key, in order, with that key's result (0: view set, and with
 * `with_json` the names and json as shm_lookup sets them; else a negative
 * error and NULLs).  Stops early when fn returns non-zero and returns that
 * value. */
typedef int (*shm_lookup_fn)(void *ctx, size_t i, int rc, const shm_instance_view_t *view,
                             const char *json, size_t json_len);
int shm_lookup_batch(shm_t *shm, const shm_key_t *keys, size_t n, uint64_t now_ms, bool with_json,
                     shm_lookup_fn fn, void *ctx);

/* ---- Services ---------------------------------------------------------- */

typedef struct {
	uint64_t version; /* global version of the service's last change */
	uint32_t count;   /* instances listed */
} shm_service_info_t;

/* Append the JSON array of the service's instances ("[{..},{..}]") to out.
 * The service is looked up by its exact-case serviceId.  A consistent
 * snapshot: no instance is half-written, none is listed twice.
 * -ENOENT when the service has no instances (Java's instances:null). */
int shm_service_read(shm_t *shm, shm_str_t service, buf_t *out, shm_service_info_t *info);

/* shm_service_read with a filter: keep(ctx, tags) is asked for each
 * instance (its tags, SHM_TAGS of them) and returns 1 to list it, 0 to leave
 * it out, or a negative error that ends the read.  info->count is then the
 * number listed; "[]" when every instance was left out.  keep must not call
 * back into the registry. */
typedef int (*shm_keep_fn)(void *ctx, const uint64_t *tags);
int shm_service_read_filtered(shm_t *shm, shm_str_t service, buf_t *out, shm_service_info_t *info,
                              shm_keep_fn keep, void *ctx);

/* The version and count only (cheap; for response caches). */
int shm_service_info(shm_t *shm, shm_str_t service, shm_service_info_t *info);

/* Call fn for each service with at least one instance.  The name is exact
 * case and NUL-terminated.  Stops early when fn returns non-zero. */
typedef int (*shm_service_fn)(void *ctx, const char *service, size_t len,
                              const shm_service_info_t *info);
int shm_services_foreach(shm_t *shm, shm_service_fn fn, void *ctx);

/* Call fn for each instance (all services, or the one named): a view and
 * its JSON.  Used by leases.json, replication services.json, snapshots. */
typedef int (*shm_instance_fn)(void *ctx, const shm_instance_view_t *view, const char *json,
                               size_t json_len);
int shm_instances_foreach(shm_t *shm, const shm_str_t *service, uint64_t now_ms, shm_instance_fn fn,
                          void *ctx);
/* The whole-registry walk of shm_instances_foreach in installments: visits
 * the instances from slot *next on.  When fn returns non-zero the walk stops
 * there, *next names that instance's slot (so the next call visits it
 * again) and fn's value is returned; 0 means the walk reached the end. */
int shm_instances_walk(shm_t *shm, uint32_t *next, uint64_t now_ms, shm_instance_fn fn, void *ctx);

/* ---- Change log ------------------------------------------------------- */

enum shm_change_type { SHM_CHANGE_NEW = 1, SHM_CHANGE_DELETE = 2, SHM_CHANGE_RELOAD = 3 };
enum shm_delete_reason { SHM_DEL_NONE = 0, SHM_DEL_UNREGISTER = 1, SHM_DEL_EXPIRED = 2 };

typedef struct {
	uint64_t version; /* global version of this change */
	uint64_t time_ms;
	uint8_t type;   /* enum shm_change_type */
	uint8_t reason; /* enum shm_delete_reason (deletes) */
	uint8_t origin; /* node that made it (0 = local) */
	uint64_t origin_ms;
	char service[SHM_MAX_SERVICE + 1];
	uint64_t tags[SHM_TAGS]; /* the instance's tags (read with its JSON; 0 otherwise) */
} shm_change_t;

typedef struct {
	uint64_t next; /* version to read next */
} shm_cursor_t;

/* Start at the current head: only changes made after this call are seen. */
void shm_cursor_init(shm_t *shm, shm_cursor_t *cur);
uint64_t shm_head_version(const shm_t *shm);

/* Read the next change.  0 with *out filled (and the instance's JSON
 * appended to json when not NULL), -EAGAIN when there is none yet,
 * -EOVERFLOW when the cursor was overrun (it is moved to the oldest record
 * still held; the caller resynchronises from a snapshot), -EBUSY when the
 * record is being written right now, -EIO when the record is corrupt (it
 * was logged and the cursor moved past it: the caller lost that change and
 * resynchronises as after -EOVERFLOW). */
int shm_changes_next(shm_t *shm, shm_cursor_t *cur, shm_change_t *out, buf_t *json);

/* Emit a `reload` change for a service (management, repair). */
int shm_emit_reload(shm_t *shm, shm_str_t service);

/* Management notices: change records with origin SHM_ORIGIN_MGMT that bump
 * the service's version (so response caches and services.json see it) and
 * tell subscribers.  SHM_CHANGE_DELETE / SHM_CHANGE_NEW name one instance by
 * its slot and its SHM_TAG_INSTANCE tag (from a view): the record carries
 * the instance's current JSON; a slot that no longer holds that instance is
 * skipped.  SHM_CHANGE_RELOAD names a service by its exact-case name.
 * Runs under the writer lock, a bounded batch per lock hold.  Returns the
 * number of records appended, or a negative error. */
typedef struct {
	uint8_t type;      /* enum shm_change_type */
	uint32_t slot;     /* new/delete: view.slot */
	uint64_t tag;      /* new/delete: view.tags[SHM_TAG_INSTANCE] */
	shm_str_t service; /* reload */
} shm_notice_t;
int shm_notify(shm_t *shm, const shm_notice_t *notices, size_t n);

/* ---- The management section --------------------------------------------
 *
 * A zeroed area of shm_params_t.mgmt_bytes (page-aligned) that the shm
 * module reserves and never reads: mgmt/ lays its projection out there and
 * states its own concurrency contract.  NULL (and *len 0) when the region has
 * none. */
void *shm_mgmt_area(const shm_t *shm, size_t *len);

/* The management section is reserved as the rest of the region is
 * (shm/reserve.c): shm_params_t.mgmt_initial_bytes of it at creation, the
 * rest as mgmt/ fills it.  mgmt/ touches no byte of it at or past
 * shm_mgmt_reserved(); a writer, under mgmt/'s own writer lock (the only
 * one that grows this section), calls shm_mgmt_reserve() before it writes
 * past that: 0, -ENOBUFS when /dev/shm has no room (nothing changed; a
 * later call tries again), -ENOSPC past the section. */
int shm_mgmt_reserve(shm_t *shm, uint64_t bytes);
uint64_t shm_mgmt_reserved(const shm_t *shm);

/* ---- Leases: reaper and self-preservation ------------------------------ */

enum { SHM_MGR_NORMAL = 0, SHM_MGR_LEGACY = 1, SHM_MGR_COUNT = 2 };

typedef struct {
	bool enabled;
	bool safe;
	uint64_t max_count;
	uint64_t max_count_updated_ms;
	uint64_t window_count; /* renewals in the current window */
	uint32_t window_ms;
	uint32_t ttl_ms;
} shm_preserve_t;

/* Run Java's checker once per second (the reaper). */
void shm_preserve_tick(shm_t *shm, uint64_t now_ms);
void shm_preserve_get(shm_t *shm, int mgr, shm_preserve_t *out);

typedef struct {
	uint32_t evicted_removed; /* unregistered, removed */
	uint32_t expired_removed; /* expired, removed (manager was safe) */
	uint32_t expired_kept;    /* expired, kept (manager was unsafe) */
} shm_reap_result_t;

/* The cleaner pass: remove evicted leases; remove expired ones while their
 * manager is safe; emit `delete` for each removal. */
int shm_reap(shm_t *shm, uint64_t now_ms, shm_reap_result_t *res);

/* ---- Invariants, repair, counters ------------------------------------- */

/* Verify every invariant of the region.  0 when all hold; otherwise -EIO
 * with a description of the first violation in msg. */
int shm_check(shm_t *shm, char *msg, size_t msg_len);

/* Try the writer lock without waiting, repairing from the undo record if
 * its last owner died, and release it.  Returns 1 when a repair was done,
 * 0 when none was needed, -EBUSY when a live process holds the lock (it, or
 * the next locker after it dies, repairs), <0 on error.  The master calls it
 * after reaping a child. */
int shm_repair(shm_t *shm);

typedef struct {
	uint64_t instances;
	uint64_t services;
	uint64_t registers;
	uint64_t unregisters;
	uint64_t renewals;        /* successful heartbeats */
	uint64_t renewals_failed; /* data-not-found heartbeats */
	uint64_t evictions;       /* expired leases removed */
	uint64_t removals;        /* unregistered leases removed */
	uint64_t repairs;
	uint64_t version;
	uint64_t arena_used; /* bytes of the blob arena handed out */
	uint64_t arena_size;
	uint64_t region_size;
	uint64_t reserved_bytes; /* memory of /dev/shm backing the region now */
	uint32_t max_instances;
	uint32_t max_services;
} shm_stats_t;

void shm_stats(shm_t *shm, shm_stats_t *out);

#endif

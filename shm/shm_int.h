/*
 * shm_int.h - the region's layout and the module's internal helpers.
 * Only the files of shm/ include this; other modules use include/artemis/shm.h.
 *
 * CONCURRENCY CONTRACT (every file of shm/ follows it)
 *
 * The region is mapped by several processes at different addresses, so it
 * holds offsets and indices only, never pointers.  Any process may die at
 * any instruction.
 *
 * Writers.  Every structural change (register, the reap pass's removals,
 * lease extension, repair) runs under hdr->lock, a robust process-shared
 * mutex.  Before touching a slot the writer copies it into hdr->undo and sets
 * undo.active; the change-log head advancing past undo.head_before is the
 * commit point.  A locker that gets EOWNERDEAD (or the master, via
 * shm_repair) restores the slot from the undo record if the op did not
 * commit, then rebuilds every derived structure from the slots (free slot
 * list, index, service lists and counts, arena free and retire lists) and
 * makes every sequence even.  Fields marked (L) below are written only under
 * the lock.
 *
 * Lock-free writers.  Heartbeat and unregister change only a slot's lease
 * word, with a compare-and-swap.  The lease word carries the slot's
 * generation, bumped on every register and removal, so a CAS prepared
 * against an earlier occupant of the slot always fails.  The reaper evicts
 * with a CAS from the exact value it judged expired: a racing heartbeat
 * either wins (the lease lives) or fails with -ENOENT.
 *
 * Readers never block and never spin unboundedly.  Slots are type-stable
 * (never unmapped; reused with a new generation).  A reader copies what it
 * needs between two reads of the slot's sequence (or, for a whole service,
 * the service's sequence) and retries a bounded number of times
 * (SHM_READ_RETRIES) before returning -EBUSY: a sequence left odd by a dead
 * writer costs a reader that bound, never a hang.  Every offset a reader
 * follows is bounds-checked before use, since a torn read can produce any
 * value.
 *
 * Memory.  The region is a sparse /dev/shm file, and a page of tmpfs that
 * has never been touched has no memory behind it: touching it when /dev/shm
 * is full raises SIGBUS.  So no process touches a page outside the reserved
 * part of its section (hdr->sec[i].reserved bytes from the section's start,
 * backed with fallocate): the fixed sections are reserved whole at creation,
 * the growing ones (slots, both index buffers, services, change log, arena)
 * in steps by a writer (L) before it moves their high-water mark (slot_bump,
 * an index mask, svc_used, head, arena_bump) into new pages.  A reservation
 * that fails leaves everything as it was and the op fails with -ENOBUFS.
 * `reserved` only grows; readers bound what they follow by it (reserve.c).
 *
 * Blobs (the stored JSON and display form of an instance) are immutable once
 * published.  A blob replaced or removed is retired, not freed: it stays
 * readable until the change log has moved a full ring past the change that
 * retired it, so a change-log reader that validates its record's version
 * after copying the blob never reads a reused blob.
 *
 * Ordering: ck_pr fences.  Writers: ck_sequence_write_begin/end (store
 * fences inside) around slot and service updates; the index entry, the
 * service-index entry and a change record's version are published last with
 * a store fence before them.  Readers: load fence after reading a sequence or
 * a record version, and before re-reading it (ck_sequence_read_retry).
 */
#ifndef ARTEMIS_SHM_INT_H
#define ARTEMIS_SHM_INT_H

#include <stddef.h>

#include <ck_pr.h>
#include <ck_sequence.h>
#include <pthread.h>

#include "artemis/shm.h"

#define SHM_MAGIC        0x314d534554524141ULL /* "AARTESM1" */
#define SHM_NONE         0u                    /* "no slot" in +1-encoded slot ids */
#define SHM_READ_RETRIES 256
#define SHM_KEY_INLINE   100 /* key bytes kept in the slot */
#define SHM_KEY_LINE0    36  /* of which in the slot's first cache line */
#define SHM_MAX_KEY      (SHM_MAX_REGION + SHM_MAX_SERVICE + SHM_MAX_INSTANCE + 2)
#define SHM_MAX_DISPLAY                                                                            \
	(SHM_MAX_REGION + SHM_MAX_ZONE + SHM_MAX_SERVICE + SHM_MAX_GROUP + SHM_MAX_INSTANCE + 4)
#define SHM_BLOCK_ALIGN        64
#define SHM_ARENA_START        64
#define SHM_MAX_BLOCK          (SHM_BLOCK_ALIGN * 320)
#define SHM_NCLASSES           (SHM_MAX_BLOCK / SHM_BLOCK_ALIGN + 1)
#define SHM_INDEX_MIN          1024u /* entries of an index buffer at first */
#define SHM_PRESERVE_BUCKETS   301
#define SHM_PRESERVE_THRESHOLD 50
#define SHM_PRESERVE_PERCENT   85
#define SHM_PRESERVE_RESET_MS  600000

/* Lease word:
 *   [gen:22][remote:1][evicted:1][counted:1][renewal ms since hdr->epoch_ms:39]
 * remote: the last renewal (or the registration) came from a peer, not from
 * a client of this node; the replicator forwards only local renewals.
 * counted: the last renewal was counted for self-preservation (a
 * registration clears it); a renewal in the same second as a counted one is
 * not counted again (registry.c).  39 bits of ms are 17 years. */
#define LEASE_MS_BITS   39
#define LEASE_MS_MASK   ((1ULL << LEASE_MS_BITS) - 1)
#define LEASE_COUNTED   (1ULL << LEASE_MS_BITS)
#define LEASE_EVICTED   (1ULL << (LEASE_MS_BITS + 1))
#define LEASE_REMOTE    (1ULL << (LEASE_MS_BITS + 2))
#define LEASE_GEN_SHIFT (LEASE_MS_BITS + 3)
#define LEASE_GEN_MASK  ((1ULL << 22) - 1)

static inline uint64_t lease_make(uint32_t gen, bool evicted, uint64_t rel_ms)
{
	return ((uint64_t)(gen & LEASE_GEN_MASK) << LEASE_GEN_SHIFT) |
	       (evicted ? LEASE_EVICTED : 0) | (rel_ms & LEASE_MS_MASK);
}
static inline uint32_t lease_gen(uint64_t w)
{
	return (uint32_t)(w >> LEASE_GEN_SHIFT);
}
static inline uint64_t lease_ms(uint64_t w)
{
	return w & LEASE_MS_MASK;
}
static inline bool lease_remote(uint64_t w)
{
	return (w & LEASE_REMOTE) != 0;
}
static inline bool lease_evicted(uint64_t w)
{
	return (w & LEASE_EVICTED) != 0;
}

/* The sections of the region, in address order after the header: one row
 * each in region.c's table (size, growth step, validation).  A new section
 * is a new enumerator and a new row. */
enum shm_section {
	SHM_SEC_PROCS,     /* process table (fixed) */
	SHM_SEC_COUNTERS,  /* per-process counters (fixed) */
	SHM_SEC_SLOTS,     /* instance slots (grows with slot_bump) */
	SHM_SEC_INDEX0,    /* index buffer 0 (grows with its mask) */
	SHM_SEC_INDEX1,    /* index buffer 1 */
	SHM_SEC_SERVICES,  /* service table (grows with svc_used) */
	SHM_SEC_SVC_INDEX, /* service name index (fixed: probed anywhere) */
	SHM_SEC_CHANGELOG, /* change-log ring (grows until it wraps) */
	SHM_SEC_EVICTED,   /* unregistered-slot bitmap (fixed) */
	SHM_SEC_ARENA,     /* blob arena (grows with arena_bump) */
	SHM_SEC_MGMT,      /* the management projection (fixed; mgmt/ owns it) */
	SHM_SEC_COUNT
};

struct shm_section_sh {
	uint64_t off;      /* from the region base, page-aligned (fixed) */
	uint64_t size;     /* bytes, page-aligned (fixed) */
	uint64_t reserved; /* (L) bytes from off backed by memory; only grows */
	uint64_t pad;
};

enum { SLOT_FREE = 0, SLOT_LIVE = 1 };
enum { SLOT_F_LEGACY = 1 };

/* One instance.  (L) = written under the lock inside the slot's sequence;
 * lease, eviction_ms, evict_origin are also written lock-free (CAS). */
struct shm_slot_sh {
	/* Line 0 is what a heartbeat reads: sequence, lease, hash, TTL and the
	 * first SHM_KEY_LINE0 bytes of the key. */
	ck_sequence_t seq;        /* (L) odd while a writer changes the slot */
	uint8_t state;            /* (L) SLOT_FREE / SLOT_LIVE */
	uint8_t flags;            /* (L) SLOT_F_* */
	uint16_t key_len;         /* (L) length of the lowercase key */
	uint64_t lease;           /* lease word, CAS */
	uint64_t hash;            /* (L) hash of the lowercase key */
	uint32_t ttl_ms;          /* (L) 0 = the manager's TTL */
	char key[SHM_KEY_INLINE]; /* (L) key when key_len <= SHM_KEY_INLINE */
	/* Line 2 is what a lookup reads besides: times, origin, the blob. */
	uint64_t creation_ms; /* (L) epoch ms */
	uint64_t eviction_ms; /* epoch ms of the unregister */
	uint64_t origin_ms;   /* (L) registration time at the origin */
	uint64_t blob;        /* (L) arena offset of the blob */
	uint32_t blob_len;    /* (L) bytes of the blob in use (header included) */
	uint32_t svc;         /* (L) service table index */
	uint32_t svc_next;    /* (L) +1-encoded; derived (rebuilt by repair) */
	uint32_t svc_prev;    /* (L) +1-encoded; derived */
	uint32_t next_free;   /* (L) +1-encoded; derived */
	uint8_t origin;       /* (L) node that registered it */
	uint8_t evict_origin; /* node whose client unregistered it */
	char pad[10];
};
/* Three whole cache lines: slot i never straddles one more than it needs
 * (the array starts page-aligned), so a heartbeat reads line 0 (and line 1
 * only for keys over SHM_KEY_LINE0 bytes), a lookup lines 0 and 2. */
_Static_assert(sizeof(struct shm_slot_sh) == 192, "slot layout");
_Static_assert(offsetof(struct shm_slot_sh, key) + SHM_KEY_LINE0 == 64, "key start in line 0");
_Static_assert(offsetof(struct shm_slot_sh, creation_ms) == 128, "slot tail in line 2");

/* Blob header, at the start of every arena block. Written under the lock. */
enum { BLOB_USED = 0x55534544, BLOB_FREE = 0x46524545, BLOB_RETIRED = 0x52455449 };
struct shm_blob_sh {
	uint32_t state; /* BLOB_* */
	uint32_t size;  /* whole block, multiple of SHM_BLOCK_ALIGN */
	uint32_t owner; /* slot id of the (last) owner */
	uint32_t json_len;
	uint16_t display_len;
	uint16_t key_len;     /* bytes of key stored here (0 when inline) */
	uint16_t service_len; /* serviceId, exact case */
	uint16_t pad;
	uint64_t retire_version; /* change that retired it */
	uint64_t next;           /* free-list / retire-list link (arena offset) */
	uint64_t tags[SHM_TAGS]; /* the down filter's tags of the instance (key.c) */
	                         /* then: key (key_len), display (display_len), json (json_len),
	                          * serviceId (service_len) */
};
_Static_assert(sizeof(struct shm_blob_sh) == 80, "blob header layout");

/* A service.  Entries are never removed (count drops to 0), so indices and
 * names are stable for the life of the region. */
struct shm_service_sh {
	ck_sequence_t seq; /* (L) odd while its list or count changes */
	uint32_t count;    /* (L) instances listed */
	uint64_t version;  /* (L) global version of the last change */
	uint64_t hash;     /* exact-case hash of the name */
	uint32_t head;     /* (L) +1-encoded first slot of the list */
	uint32_t name_len;
	char name[SHM_MAX_SERVICE + 1];
	uint64_t reload_version; /* (L) last `reload` change naming it (reuse waits
	                          * until it left the log: its record holds no blob) */
	char pad[24];
};
_Static_assert(sizeof(struct shm_service_sh) == 320, "service layout");

/* A change-log record; `version` is the commit marker (0 while written). */
struct shm_change_sh {
	uint64_t version;
	uint64_t time_ms;
	uint64_t origin_ms;
	uint64_t blob; /* arena offset of the instance's blob (0: reload) */
	uint32_t svc;
	uint32_t slot;
	uint8_t type;
	uint8_t reason;
	uint8_t origin;
	uint8_t pad[19];
};
_Static_assert(sizeof(struct shm_change_sh) == 64, "change layout");

struct shm_proc_sh {
	int32_t pid;
	int32_t role;
	uint64_t beat_ms;
	uint64_t renewals[SHM_MGR_COUNT]; /* successful heartbeats, monotonic */
	uint64_t renewals_failed;
	uint64_t counted[SHM_MGR_COUNT]; /* renewals self-preservation counts (lease.c) */
	uint64_t pad;
};
_Static_assert(sizeof(struct shm_proc_sh) == 64, "proc layout");

struct shm_undo_sh {
	uint32_t active;        /* 1 while a write is in progress */
	uint32_t slot;          /* slot id touched, or UINT32_MAX */
	uint64_t head_before;   /* change-log head when the op began */
	struct shm_slot_sh old; /* the slot before the op */
};

struct shm_preserve_sh {
	uint32_t safe;
	uint32_t pad;
	uint64_t max_count;
	uint64_t max_count_updated_ms;
	uint64_t window_count;
	uint64_t last_total;
	uint64_t last_tick_ms;
	uint32_t pos;
	uint32_t pad2;
	uint64_t buckets[SHM_PRESERVE_BUCKETS];
};

struct shm_peer_sh {
	ck_sequence_t seq; /* single writer: the replicator */
	uint32_t used;
	shm_peer_t peer;
};

struct shm_header_sh {
	uint64_t magic; /* written last at creation */
	uint32_t layout_version;
	uint32_t header_size;
	uint64_t region_size;
	uint64_t incarnation;
	uint64_t epoch_ms; /* lease times are relative to this */
	char name[128];

	/* parameters (fixed at creation) */
	uint32_t max_instances;
	uint32_t max_services;
	uint32_t changelog_size;
	uint32_t index_size;     /* room per index buffer (entries), power of 2 */
	uint32_t svc_index_size; /* power of 2 */
	uint32_t ttl_ms[SHM_MGR_COUNT];
	uint32_t window_ms[SHM_MGR_COUNT];
	uint32_t self_preservation;
	uint64_t arena_size;

	struct shm_section_sh sec[SHM_SEC_COUNT];
	uint64_t mgmt_size; /* bytes asked for the management section (mgmt/ owns its contents) */
	uint64_t tag_seed;  /* seed of the down filter's tags (random, fixed at creation) */

	uint32_t clean;              /* set by a clean shutdown */
	uint32_t node_state;         /* enum shm_node_state */
	int32_t master_pid;          /* the live master, or 0 */
	uint32_t mgmt_initial_pages; /* of the management section, reserved at creation (0: all) */
	struct shm_peer_sh peers[SHM_MAX_NODES];

	pthread_mutex_t lock __attribute__((aligned(64)));
	int32_t lock_owner;    /* (L) pid holding the lock, 0 when free */
	uint32_t lock_wait_ms; /* how long a writer waits for it (the master sets it) */
	uint64_t lock_seq;     /* (L) acquisitions: the master's progress mark */
	struct shm_undo_sh undo;

	/* writer state (L) */
	uint32_t slot_bump;     /* slots ever handed out */
	uint32_t slot_free;     /* +1-encoded free list head */
	uint32_t live;          /* live slots */
	uint32_t index_active;  /* 0/1; read by readers */
	uint32_t index_mask[2]; /* entries in use per buffer - 1; read by readers */
	uint32_t index_epoch;   /* odd during a flip window; readers validate */
	uint32_t index_used;
	uint32_t index_tombs;
	uint32_t svc_used;
	uint32_t svc_empty;       /* entries with no instance (reclaim candidates) */
	uint32_t svc_tombs;       /* renamed entries' tombstones in svc_index */
	uint32_t svc_index_epoch; /* odd while svc_index is rebuilt in place */
	uint32_t svc_cursor;      /* where the next reclaim scan starts */
	uint64_t arena_bump;
	uint64_t arena_used;
	uint64_t retire_head, retire_tail;
	uint64_t arena_free[SHM_NCLASSES];

	uint64_t head __attribute__((aligned(64))); /* change-log head version */

	/* counters (L unless noted) */
	uint64_t registers, unregisters, evictions, removals, repairs;
	uint32_t reap_cursor; /* the reaper's expiry window (reaper only) */
	uint32_t pad3;
	uint64_t reap_last_ms; /* epoch ms of the last pass (reaper only) */

	struct shm_preserve_sh preserve[SHM_MGR_COUNT];
};

struct shm {
	char *base;
	int fd;              /* the region's file: reservations (writable handles) */
	bool reserve_failed; /* the last reservation failed (logged once) */
	uint64_t stuck_seq;  /* lock_seq + 1 of a holder this process gave up on */
	struct shm_header_sh *hdr;
	struct shm_proc_sh *procs;
	uint64_t *counters; /* [SHM_MAX_PROCS][SHM_PROC_COUNTERS] */
	struct shm_slot_sh *slots;
	struct shm_service_sh *services;
	uint32_t *svc_index;
	struct shm_change_sh *changes;
	char *arena;
	uint64_t *evicted; /* bitmap: slots unregistered, not yet reaped */
	char *mgmt;        /* the management section, or NULL */
	size_t size;
	bool read_only;
	int proc; /* my process-table entry, or -1 */
	char name[128];
};

/* ---- shared helpers (defined across the files of shm/) ---- */

/* key.c */
uint64_t shm__hash(const void *p, size_t n);
int shm__make_key(const shm_key_t *k, char *out, size_t *len);
bool shm__key_equal(shm_t *s, const struct shm_slot_sh *sl, const char *key, size_t len);

/* layout.c */
struct shm_section_def {
	const char *name;
	uint64_t step; /* reservation growth step; 0: reserved whole at creation */
};
extern const struct shm_section_def shm__sections[SHM_SEC_COUNT];
int shm__layout(const shm_params_t *p, struct shm_header_sh *h);
/* writer: also the writers' own state (free lists, counters, undo record),
 * which only a region no writer is changing can be judged on. */
int shm__validate(const struct shm_header_sh *h, uint64_t file_size, bool writer, char *why,
                  size_t len);

/* reserve.c */
int shm__reserve(shm_t *s, enum shm_section sec, uint64_t bytes);
int shm__reserve_range(int fd, uint64_t off, uint64_t len);
int shm__reserve_all(shm_t *s);
int shm__reserve_initial(shm_t *s);
uint64_t shm__reserve_minimum(const struct shm_header_sh *h);
uint64_t shm__reserved_total(const shm_t *s);
const char *shm__section_name(enum shm_section sec);

static inline uint64_t shm__reserved(const shm_t *s, enum shm_section sec)
{
	return ck_pr_load_64((uint64_t *)&s->hdr->sec[sec].reserved);
}

/* lock.c */
int shm__lock(shm_t *s);
void shm__unlock(shm_t *s);
void shm__undo_begin(shm_t *s, uint32_t slot);
void shm__undo_end(shm_t *s);
void shm__rebuild(shm_t *s);
void shm__stall(unsigned attempt);

/* index.c */
int shm__index_find(shm_t *s, uint64_t hash, const char *key, size_t len, uint32_t *slot,
                    uint64_t *lease);
void shm__index_insert(shm_t *s, uint64_t hash, uint32_t slot);
void shm__index_remove(shm_t *s, uint64_t hash, uint32_t slot);
void shm__index_rebuild(shm_t *s);
void shm__index_prefetch(shm_t *s, uint64_t hash);
void shm__slot_prefetch(shm_t *s, uint64_t hash, size_t key_len, bool lookup);
int shm__index_peek(shm_t *s, uint64_t hash, uint32_t *slot);
int shm__index_count(shm_t *s, uint64_t hash, uint32_t slot);
void shm__index_init(shm_t *s);
int shm__index_reserve(shm_t *s);
uint32_t shm__index_entries(shm_t *s);

/* arena.c */
int shm__blob_alloc(shm_t *s, size_t payload, uint64_t *off);
void shm__blob_retire(shm_t *s, uint64_t off, uint64_t version);
void shm__blob_reclaim(shm_t *s);
void shm__arena_rebuild(shm_t *s);
const struct shm_blob_sh *shm__blob_get(const shm_t *s, uint64_t off);
const char *shm__blob_json(const struct shm_blob_sh *b);
const char *shm__blob_display(const struct shm_blob_sh *b);

/* service.c */
int shm__service_get(shm_t *s, shm_str_t name, bool create, uint32_t *idx);
void shm__service_link(shm_t *s, uint32_t svc, uint32_t slot);
void shm__service_unlink(shm_t *s, uint32_t svc, uint32_t slot);
void shm__services_rebuild(shm_t *s);
int shm__service_members(shm_t *s, shm_str_t name, uint32_t **ids, uint32_t *n);

/* changelog.c */
int shm__change_reserve(shm_t *s, uint32_t n);
uint64_t shm__change_append(shm_t *s, uint8_t type, uint8_t reason, uint8_t origin,
                            uint64_t origin_ms, uint32_t svc, uint32_t slot, uint64_t blob);

/* registry.c */
int shm__slot_remove(shm_t *s, uint32_t id, uint8_t reason, uint64_t expect);
uint64_t shm__ttl(const shm_t *s, const struct shm_slot_sh *sl);
bool shm__slot_copy(shm_t *s, uint32_t id, struct shm_slot_sh *out);

static inline struct shm_slot_sh *shm__slot(shm_t *s, uint32_t id)
{
	return &s->slots[id];
}

static inline uint64_t shm__rel_ms(const shm_t *s, uint64_t now_ms)
{
	uint64_t e = s->hdr->epoch_ms;
	return now_ms > e ? now_ms - e : 0;
}

#endif

/*
 * projection.c - the store's down filter, projected into the region's
 * management section (shm_mgmt_area): what discovery reads on every path,
 * lock-free, instead of querying SQLite.
 *
 * Layout: a header page, then PROJ_TABLES tables of `cap` 64-bit tags
 * (open addressing, linear probing, 0 = empty; cap is at least twice
 * max_keys, [management] max_operations).  A table uses only the first
 * mask + 1 entries, a power of 2 at least twice its count (load <= 1/2),
 * so a small set stays within the CPU's caches and a write touches only
 * what it uses.  After the tables, one bitmap per table with a bit set for
 * each of its tags (a one-hash Bloom filter): a probe looks at a tag's bit
 * first, so most of an instance's tags are answered from 32 KiB.  A table holds
 * the tags (shm.h) of every target with an operation in force: an instance
 * key, a server (region, ip), a zone (region, zone) or a zone of one
 * service.  It is a pure function of the store at one generation, which it
 * records; `artemis check` compares it with the store.
 *
 * CONCURRENCY CONTRACT
 *
 * Writers (a worker's management write, the master's boot and repair) hold
 * hdr->lock, a robust process-shared mutex, for the whole of a write: the
 * store transaction and the publish.  So the publishes happen in the order
 * of the store's commits, and only the holder writes anything here except
 * as noted.
 *
 * A publish stages the new set into a table that is neither `active` (what
 * readers use) nor `notified` (the last set whose notices were all sent),
 * inside that table's sequence (odd while written), then stores `active`
 * (store fence before): readers see the new set from then on.  Then the
 * notices: every registered instance whose visibility differs between the
 * `notified` set and the new one gets a `delete` or `new`, or its service a
 * `reload` for zone changes (shm_notify); then `notified` = `active`.
 *
 * A writer that dies at any instruction leaves the mutex to its next locker
 * with EOWNERDEAD: that locker (a worker, or the master, which tries the
 * lock after reaping any child that ended abnormally) marks `dirty`,
 * rebuilds the set from the store and publishes it against `notified`,
 * which no writer overwrote (three tables): the dead writer's flip, if it
 * happened, is kept or corrected, and its notices are sent (again, which is
 * harmless).  A table whose staging it interrupted is left with an odd
 * sequence and is never active; the next stage into it makes the sequence
 * even before beginning its own write.  `dirty` is cleared only when such a rebuild completed, so a
 * repairer that dies is repaired in turn.
 *
 * Readers (mgmt_down) take no lock: load `active`, read its sequence (even),
 * probe, re-read the sequence and `active`; retry when either moved, at
 * most PROJ_READ_RETRIES times (-EBUSY).  A table is rewritten only two
 * publishes after it stopped being active, so a retry is rare.  Response
 * caches compare `generation`, which moves with every flip.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ck_pr.h>
#include <ck_sequence.h>
#include <pthread.h>
#include <xxhash.h>

#include "artemis/clock.h"
#include "artemis/log.h"
#include "mgmt_int.h"
#include "route_int.h"

#define PROJ_MAGIC        0x314a504d474d5241ULL /* "ARGMMPJ1" */
#define PROJ_VERSION      3                     /* 3: auth_generation and the routing area */
#define PROJ_TABLES       3
#define PROJ_HDR_BYTES    4096
#define PROJ_MIN_CAP      64
#define PROJ_READ_RETRIES 256
#define PROJ_BLOOM_BITS   (1u << 18) /* per table: 32 KiB, one bit per tag */
#define PROJ_BLOOM_WORDS  (PROJ_BLOOM_BITS / 64)

struct proj_table_sh {
	ck_sequence_t seq; /* odd while the table is written */
	uint32_t count;    /* tags in it */
	uint32_t mask;     /* entries in use - 1: sized for count, at most cap - 1 */
	uint32_t pad;
	uint64_t store_gen; /* the store generation it was built from */
};

struct proj {
	uint64_t magic; /* written last by proj_init */
	uint32_t version;
	uint32_t cap;      /* entries per table, a power of 2 */
	uint32_t max_keys; /* [management] max_operations, at most cap / 2 */
	uint32_t active;   /* table readers use */
	uint32_t notified; /* table whose notices were all emitted */
	uint32_t built;    /* 1 once built from the store */
	uint32_t dirty;    /* 1: rebuild from the store before the next write */
	int32_t holder;    /* pid of the lock holder, 0 (for check's messages) */
	uint64_t generation;
	uint64_t stamp_ms;
	uint64_t publishes;
	uint64_t repairs;
	struct proj_table_sh table[PROJ_TABLES];
	pthread_mutex_t lock;
	/* Moves after every committed write that can end a session (a
	 * revocation; a user disabled, deleted, demoted or given a new
	 * password).  Workers drop their cached sessions when it moved
	 * (sessions.c).  Written with an atomic increment by the writer, after
	 * its commit and under the lock; read lock-free. */
	uint64_t auth_generation;
	uint64_t route_off;   /* the routing area (route_shm.c), after the tables */
	uint32_t route_bytes; /* its buffers' size */
	uint32_t pad2;
};
_Static_assert(sizeof(struct proj) <= PROJ_HDR_BYTES, "projection header fits its page");

void (*proj_failpoint)(int at);

static void failpoint(int at)
{
	if (proj_failpoint)
		proj_failpoint(at);
}

static uint32_t cap_for(uint64_t keys)
{
	uint64_t c = PROJ_MIN_CAP;
	while (c < keys * 2)
		c <<= 1;
	return (uint32_t)c;
}

/* The tables and their Bloom bits, from the section's start. */
static uint64_t tables_bytes(uint32_t cap)
{
	return PROJ_HDR_BYTES + (uint64_t)PROJ_TABLES * (cap + PROJ_BLOOM_WORDS) * sizeof(uint64_t);
}

/* Where the routing area starts (page-aligned), and the whole section. */
static uint64_t route_start(uint32_t cap)
{
	return (tables_bytes(cap) + 4095) & ~(uint64_t)4095;
}

static uint64_t section_bytes(uint32_t cap, uint32_t route_bytes)
{
	return route_start(cap) + route_area_bytes(route_bytes);
}

uint64_t mgmt_section_bytes(uint32_t max_operations)
{
	return section_bytes(cap_for(max_operations), MGMT_ROUTING_BYTES_DEFAULT);
}

uint64_t mgmt_region_bytes(const config_t *cfg)
{
	return section_bytes(cap_for(cfg->mgmt_max_operations), cfg->mgmt_routing_bytes);
}

uint64_t mgmt_region_initial_bytes(const config_t *cfg)
{
	return route_start(cap_for(cfg->mgmt_max_operations)) + route_area_initial_bytes();
}

static uint64_t *table_of(const proj_t *p, uint32_t t)
{
	return (uint64_t *)((char *)p + PROJ_HDR_BYTES) + (size_t)t * p->cap;
}

static uint64_t *bloom_of(const proj_t *p, uint32_t t)
{
	return table_of(p, PROJ_TABLES) + (size_t)t * PROJ_BLOOM_WORDS;
}

static uint32_t bloom_bit(uint64_t tag)
{
	return (uint32_t)(tag >> 40) & (PROJ_BLOOM_BITS - 1);
}

/* The section, when laid out and of a sane size. */
static proj_t *section(const shm_t *shm)
{
	size_t len;
	proj_t *p = shm ? shm_mgmt_area(shm, &len) : NULL;
	if (!p || len < PROJ_HDR_BYTES || ck_pr_load_64(&p->magic) != PROJ_MAGIC)
		return NULL;
	ck_pr_fence_load();
	if (p->version != PROJ_VERSION || p->cap < PROJ_MIN_CAP || (p->cap & (p->cap - 1)) ||
	    p->route_off != route_start(p->cap) || section_bytes(p->cap, p->route_bytes) > len)
		return NULL;
	return p;
}

struct route_area_sh *route_area_of(const proj_t *p)
{
	return (struct route_area_sh *)((char *)p + p->route_off);
}

proj_t *proj_of(shm_t *shm)
{
	return section(shm);
}

uint32_t proj_capacity(const proj_t *p)
{
	return p->max_keys;
}

bool proj_built(const proj_t *p)
{
	return ck_pr_load_32((uint32_t *)&p->built) != 0;
}

int proj_init(shm_t *shm, uint32_t max_keys, uint32_t route_bytes)
{
	size_t len;
	proj_t *p = shm_mgmt_area(shm, &len);
	if (section(shm))
		return 0; /* a region that survived a restart keeps its section */
	/* A region made with a smaller section keeps it (as its other
	 * parameters): the capacities are what fits, the routing room given
	 * up before the operations'. */
	while (route_bytes > 65536 && section_bytes(cap_for(max_keys), route_bytes) > len)
		route_bytes /= 2;
	while (max_keys > 16 && section_bytes(cap_for(max_keys), route_bytes) > len)
		max_keys /= 2;
	if (!p || max_keys == 0 || len < section_bytes(cap_for(max_keys), route_bytes))
		return -ENODEV;
	uint32_t cap = cap_for(max_keys);
	memset(p, 0, PROJ_HDR_BYTES);
	p->version = PROJ_VERSION;
	p->cap = cap;
	p->max_keys = max_keys;
	p->notified = p->active = 0;
	p->route_off = route_start(cap);
	p->route_bytes = route_bytes;
	memset(table_of(p, 0), 0, tables_bytes(cap) - PROJ_HDR_BYTES);
	route_area_init(route_area_of(p), p->route_off, route_bytes);
	int rc = shm_mutex_init(&p->lock);
	if (rc < 0)
		return rc;
	ck_pr_fence_store();
	ck_pr_store_64(&p->magic, PROJ_MAGIC);
	return 0;
}

/* ---- Tag sets in process memory ---------------------------------------------- */

static uint32_t home(uint64_t tag, uint32_t mask)
{
	return (uint32_t)(tag ^ (tag >> 29)) & mask;
}

int tagset_init(tagset_t *t, uint32_t min_capacity)
{
	uint32_t cap = cap_for(min_capacity);
	t->slot = calloc(cap, sizeof(uint64_t));
	t->mask = cap - 1;
	t->count = 0;
	return t->slot ? 0 : -ENOMEM;
}

void tagset_free(tagset_t *t)
{
	free(t->slot);
	memset(t, 0, sizeof(*t));
}

static void raw_insert(uint64_t *slot, uint32_t mask, uint64_t tag)
{
	uint32_t i = home(tag, mask);
	while (slot[i] != 0 && slot[i] != tag)
		i = (i + 1) & mask;
	slot[i] = tag;
}

bool tagset_has(const tagset_t *t, uint64_t tag)
{
	if (!t->slot || tag == 0)
		return false;
	for (uint32_t i = home(tag, t->mask), n = 0; n <= t->mask; n++, i = (i + 1) & t->mask) {
		if (t->slot[i] == tag)
			return true;
		if (t->slot[i] == 0)
			return false;
	}
	return false;
}

int tagset_add(tagset_t *t, uint64_t tag)
{
	if (tag == 0 || tagset_has(t, tag))
		return 0;
	if ((uint64_t)(t->count + 1) * 2 > (uint64_t)t->mask + 1) {
		uint32_t cap = (t->mask + 1) * 2;
		uint64_t *slot = calloc(cap, sizeof(uint64_t));
		if (!slot)
			return -ENOMEM;
		for (uint32_t i = 0; i <= t->mask; i++)
			if (t->slot[i])
				raw_insert(slot, cap - 1, t->slot[i]);
		free(t->slot);
		t->slot = slot;
		t->mask = cap - 1;
	}
	raw_insert(t->slot, t->mask, tag);
	t->count++;
	return 1;
}

bool tagset_next(const tagset_t *t, uint32_t *i, uint64_t *tag)
{
	for (; t->slot && *i <= t->mask; (*i)++) {
		if (t->slot[*i]) {
			*tag = t->slot[(*i)++];
			return true;
		}
	}
	return false;
}

/* ---- Readers --------------------------------------------------------------------- */

static bool table_has(const uint64_t *t, uint32_t mask, uint64_t tag)
{
	for (uint32_t i = home(tag, mask), n = 0; n <= mask; n++, i = (i + 1) & mask) {
		uint64_t e = ck_pr_load_64((uint64_t *)&t[i]);
		if (e == tag)
			return true;
		if (e == 0)
			return false;
	}
	return false;
}

static void stall(unsigned attempt)
{
	if (attempt < 16)
		ck_pr_stall();
	else
		sched_yield();
}

/* Probe the active table for any of tags[0..n): 1, 0, or -EBUSY. */
static int probe(const proj_t *p, const uint64_t *tags, size_t n)
{
	for (unsigned attempt = 0; attempt < PROJ_READ_RETRIES; attempt++) {
		uint32_t a = ck_pr_load_32((uint32_t *)&p->active);
		if (a >= PROJ_TABLES) {
			stall(attempt);
			continue;
		}
		const struct proj_table_sh *tb = &p->table[a];
		unsigned v = ck_pr_load_uint((unsigned *)&tb->seq.sequence);
		ck_pr_fence_load();
		if (!(v & 1)) {
			int down = 0;
			uint32_t mask = ck_pr_load_32((uint32_t *)&tb->mask);
			if (ck_pr_load_32((uint32_t *)&tb->count) && mask < p->cap &&
			    !(mask & (mask + 1))) {
				const uint64_t *t = table_of(p, a), *bloom = bloom_of(p, a);
				for (size_t i = 0; i < n && !down; i++) {
					uint32_t bit = bloom_bit(tags[i]);
					uint64_t w = ck_pr_load_64((uint64_t *)&bloom[bit / 64]);
					down = tags[i] && (w >> (bit % 64) & 1) &&
					       table_has(t, mask, tags[i]);
				}
			}
			ck_pr_fence_load();
			if (ck_pr_load_uint((unsigned *)&tb->seq.sequence) == v &&
			    ck_pr_load_32((uint32_t *)&p->active) == a)
				return down;
		}
		stall(attempt);
	}
	return -EBUSY;
}

int mgmt_down(shm_t *shm, const uint64_t tags[SHM_TAGS])
{
	const proj_t *p = section(shm);
	return p ? probe(p, tags, SHM_TAGS) : 0;
}

/* A reader's view of the active table for a whole service read: taken
 * before the read, checked after it (snap_still), so the per-instance test
 * (snap_keep) is the Bloom bits and, rarely, a probe. */
typedef struct {
	const struct proj_table_sh *tb;
	unsigned seq;
	uint32_t mask;
	const uint64_t *table, *bloom;
} snap_t;

/* 1 with a snapshot of a non-empty table, 0 when nothing is down, -EAGAIN
 * while the table is being written. */
static int snap_begin(const proj_t *p, snap_t *s)
{
	uint32_t a = ck_pr_load_32((uint32_t *)&p->active) % PROJ_TABLES;
	s->tb = &p->table[a];
	s->seq = ck_pr_load_uint((unsigned *)&s->tb->seq.sequence);
	ck_pr_fence_load();
	if (s->seq & 1)
		return -EAGAIN;
	s->mask = ck_pr_load_32((uint32_t *)&s->tb->mask);
	if (ck_pr_load_32((uint32_t *)&s->tb->count) == 0)
		return 0;
	if (s->mask >= p->cap || (s->mask & (s->mask + 1)))
		return -EAGAIN;
	s->table = table_of(p, a);
	s->bloom = bloom_of(p, a);
	return 1;
}

static bool snap_still(const snap_t *s)
{
	ck_pr_fence_load();
	return ck_pr_load_uint((unsigned *)&s->tb->seq.sequence) == s->seq;
}

/* shm_keep_fn: 1 to list the instance, 0 when one of its tags is down. */
static int snap_keep(void *ctx, const uint64_t *tags)
{
	const snap_t *s = ctx;
	for (int i = 0; i < SHM_TAGS; i++) {
		uint32_t bit = bloom_bit(tags[i]);
		if ((ck_pr_load_64((uint64_t *)&s->bloom[bit / 64]) >> (bit % 64) & 1) && tags[i] &&
		    table_has(s->table, s->mask, tags[i]))
			return 0;
	}
	return 1;
}

/* The down filter and a caller's own filter together. */
typedef struct {
	const snap_t *snap; /* NULL: nothing is down */
	shm_keep_fn extra;
	void *extra_ctx;
} keep_both_t;

static int keep_both(void *ctx, const uint64_t *tags)
{
	const keep_both_t *k = ctx;
	if (k->snap && !snap_keep((void *)k->snap, tags))
		return 0;
	return k->extra(k->extra_ctx, tags);
}

int proj_service_read(shm_t *shm, shm_str_t service, buf_t *out, shm_service_info_t *info,
                      shm_keep_fn extra, void *extra_ctx)
{
	const proj_t *p = section(shm);
	size_t mark = out->len;
	if (!p)
		return extra ? shm_service_read_filtered(shm, service, out, info, extra, extra_ctx)
		             : shm_service_read(shm, service, out, info);
	for (unsigned attempt = 0; attempt < PROJ_READ_RETRIES; attempt++) {
		snap_t s;
		int in = snap_begin(p, &s);
		if (in == -EAGAIN) {
			stall(attempt);
			continue;
		}
		keep_both_t both = {in ? &s : NULL, extra, extra_ctx};
		int rc = extra
		             ? shm_service_read_filtered(shm, service, out, info, keep_both, &both)
		             : shm_service_read_filtered(shm, service, out, info,
		                                         in ? snap_keep : NULL, &s);
		if (snap_still(&s))
			return rc;
		out->len = mark;
		stall(attempt);
	}
	return -EBUSY;
}

int mgmt_service_read(shm_t *shm, shm_str_t service, buf_t *out, shm_service_info_t *info)
{
	return proj_service_read(shm, service, out, info, NULL, NULL);
}

int mgmt_tag_down(shm_t *shm, uint64_t tag)
{
	const proj_t *p = section(shm);
	return p ? probe(p, &tag, 1) : 0;
}

uint64_t mgmt_generation(shm_t *shm)
{
	const proj_t *p = section(shm);
	return p ? ck_pr_load_64((uint64_t *)&p->generation) : 0;
}

uint64_t mgmt_stamp_ms(shm_t *shm)
{
	const proj_t *p = section(shm);
	return p ? ck_pr_load_64((uint64_t *)&p->stamp_ms) : 0;
}

/* Copy table t into out (a fresh set) under the reader protocol. */
static int copy_table(const proj_t *p, uint32_t t, tagset_t *out)
{
	const struct proj_table_sh *tb = &p->table[t];
	const uint64_t *tbl = table_of(p, t);
	for (unsigned attempt = 0; attempt < PROJ_READ_RETRIES; attempt++) {
		unsigned v = ck_pr_load_uint((unsigned *)&tb->seq.sequence);
		ck_pr_fence_load();
		if (!(v & 1)) {
			uint32_t used = ck_pr_load_32((uint32_t *)&tb->mask) + 1;
			int rc = tagset_init(out, ck_pr_load_32((uint32_t *)&tb->count));
			for (uint32_t i = 0; rc >= 0 && i < used && i < p->cap; i++) {
				uint64_t e = ck_pr_load_64((uint64_t *)&tbl[i]);
				if (e)
					rc = tagset_add(out, e);
			}
			if (rc < 0) {
				tagset_free(out);
				return rc;
			}
			ck_pr_fence_load();
			if (ck_pr_load_uint((unsigned *)&tb->seq.sequence) == v)
				return 0;
			tagset_free(out);
		}
		stall(attempt);
	}
	return -EBUSY;
}

int proj_copy_active(const proj_t *p, tagset_t *out)
{
	return copy_table(p, ck_pr_load_32((uint32_t *)&p->active) % PROJ_TABLES, out);
}

int proj_snapshot(const proj_t *p, tagset_t *out, uint64_t *gen, bool *settled, int *holder)
{
	for (unsigned attempt = 0; attempt < PROJ_READ_RETRIES; attempt++) {
		uint32_t a = ck_pr_load_32((uint32_t *)&p->active) % PROJ_TABLES;
		int rc = copy_table(p, a, out);
		if (rc < 0)
			return rc;
		*gen = ck_pr_load_64((uint64_t *)&p->table[a].store_gen);
		*holder = (int)ck_pr_load_32((uint32_t *)&p->holder);
		*settled = proj_built(p) && !ck_pr_load_32((uint32_t *)&p->dirty) &&
		           ck_pr_load_32((uint32_t *)&p->notified) == a;
		if (ck_pr_load_32((uint32_t *)&p->active) % PROJ_TABLES == a)
			return 0;
		tagset_free(out);
		stall(attempt);
	}
	return -EBUSY;
}

/* ---- The writer lock ------------------------------------------------------------------ */

static int after_lock(proj_t *p, int rc)
{
	if (rc == EOWNERDEAD) {
		log_warn("%s: a management writer died holding the projection lock; rebuilding "
		         "the projection from the store",
		         __func__);
		ck_pr_store_32(&p->dirty, 1);
		pthread_mutex_consistent(&p->lock);
		rc = 0;
	}
	if (rc == ETIMEDOUT || rc == EBUSY)
		return -EBUSY;
	if (rc)
		return -rc;
	ck_pr_store_32((uint32_t *)&p->holder, (uint32_t)getpid());
	return ck_pr_load_32(&p->dirty) || !proj_built(p) ? 1 : 0;
}

int proj_lock(proj_t *p, uint32_t timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return after_lock(p, pthread_mutex_timedlock(&p->lock, &ts));
}

int proj_trylock(proj_t *p)
{
	return after_lock(p, pthread_mutex_trylock(&p->lock));
}

void proj_unlock(proj_t *p)
{
	ck_pr_store_32((uint32_t *)&p->holder, 0);
	pthread_mutex_unlock(&p->lock);
}

void proj_note_generation(proj_t *p, uint64_t gen)
{
	struct proj_table_sh *tb = &p->table[ck_pr_load_32(&p->active) % PROJ_TABLES];
	/* store_gen is read by check only (proj_snapshot): no reader of the
	 * tags looks at it, so no sequence is needed around it. */
	ck_pr_store_64(&tb->store_gen, gen);
}

void proj_auth_bump(proj_t *p)
{
	ck_pr_fence_store();
	ck_pr_inc_64(&p->auth_generation);
}

uint64_t proj_auth_generation(const proj_t *p)
{
	return ck_pr_load_64((uint64_t *)&p->auth_generation);
}

void proj_mark_dirty(proj_t *p)
{
	ck_pr_store_32(&p->dirty, 1);
}

void proj_mark_clean(proj_t *p)
{
	ck_pr_store_32(&p->dirty, 0);
	p->repairs++;
}

/* ---- Publishing ------------------------------------------------------------------------- */

static bool table_equals(const proj_t *p, uint32_t t, const tagset_t *set)
{
	const uint64_t *tbl = table_of(p, t);
	if (p->table[t].count != set->count)
		return false;
	for (uint32_t i = 0; i <= p->table[t].mask && i < p->cap; i++)
		if (tbl[i] && !tagset_has(set, tbl[i]))
			return false;
	return true;
}

static void stage(proj_t *p, uint32_t t, const tagset_t *next, uint64_t gen)
{
	struct proj_table_sh *tb = &p->table[t];
	uint64_t *tbl = table_of(p, t), *bloom = bloom_of(p, t);
	uint64_t tag;
	/* A writer that died staging this table left its sequence odd: even
	 * it first, or write_begin would make it even for the whole write. */
	unsigned v = ck_pr_load_uint(&tb->seq.sequence);
	if (v & 1)
		ck_pr_store_uint(&tb->seq.sequence, v + 1);
	uint32_t used = cap_for(next->count);
	if (used > p->cap)
		used = p->cap;
	ck_sequence_write_begin(&tb->seq);
	memset(tbl, 0, (size_t)used * sizeof(uint64_t));
	memset(bloom, 0, PROJ_BLOOM_WORDS * sizeof(uint64_t));
	failpoint(PROJ_AT_STAGING);
	tb->mask = used - 1;
	for (uint32_t i = 0; tagset_next(next, &i, &tag);) {
		raw_insert(tbl, used - 1, tag);
		bloom[bloom_bit(tag) / 64] |= 1ULL << (bloom_bit(tag) % 64);
	}
	tb->count = next->count;
	tb->store_gen = gen;
	ck_sequence_write_end(&tb->seq);
}

void proj_bump(proj_t *p)
{
	uint64_t now = clock_wall_ms();
	ck_pr_fence_store();
	ck_pr_store_64(&p->generation, p->generation + 1);
	ck_pr_store_64(&p->stamp_ms, now > p->stamp_ms ? now : p->stamp_ms + 1);
	p->publishes++;
}

static void flip(proj_t *p, uint32_t t)
{
	ck_pr_fence_store();
	ck_pr_store_32(&p->active, t);
	proj_bump(p);
}

/* ---- Notices ---------------------------------------------------------------------------- */

typedef struct {
	const tagset_t *old, *next;
	tagset_t diff;
	shm_notice_t *v;
	size_t n, cap;
	buf_t names; /* services of the reload notices, NUL-separated */
	tagset_t reloaded;
	shm_t *shm;
	int rc;
} notices_t;

static bool down_in(const tagset_t *set, const uint64_t *tags)
{
	for (int i = 0; i < SHM_TAGS; i++)
		if (tagset_has(set, tags[i]))
			return true;
	return false;
}

static int push_notice(notices_t *ns, const shm_notice_t *n)
{
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 64;
		shm_notice_t *v = realloc(ns->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		ns->v = v;
		ns->cap = cap;
	}
	ns->v[ns->n++] = *n;
	return 0;
}

/* One registered instance: a notice when its visibility changed. */
static int classify(void *ctx, const shm_instance_view_t *view, const char *json, size_t len)
{
	notices_t *ns = ctx;
	const uint64_t *tags = view->tags;
	(void)json;
	(void)len;
	bool any = false;
	for (int i = 0; i < SHM_TAGS && !any; i++)
		any = tagset_has(&ns->diff, tags[i]);
	if (!any)
		return 0;
	bool was = down_in(ns->old, tags), is = down_in(ns->next, tags);
	if (was == is)
		return 0;
	shm_notice_t n = {0};
	if (tagset_has(&ns->diff, tags[SHM_TAG_ZONE]) ||
	    tagset_has(&ns->diff, tags[SHM_TAG_ZONE_SERVICE]) ||
	    tagset_has(&ns->diff, tags[SHM_TAG_GROUP])) {
		/* Zone (and group) changes: one reload per service (MANAGEMENT.md §2). */
		size_t slen = strlen(view->service);
		uint64_t h = XXH3_64bits(view->service, slen) | 1;
		if (tagset_has(&ns->reloaded, h))
			return 0;
		if (tagset_add(&ns->reloaded, h) < 0 ||
		    buf_append(&ns->names, view->service, slen + 1) < 0)
			return ns->rc = -ENOMEM;
		/* The name's offset in ns->names (which may still move): made a
		 * pointer once every notice is collected (send_notices). */
		n.type = SHM_CHANGE_RELOAD;
		n.service.len = slen;
		n.slot = (uint32_t)(ns->names.len - slen - 1);
	} else {
		n.type = is ? SHM_CHANGE_DELETE : SHM_CHANGE_NEW;
		n.slot = view->slot;
		n.tag = tags[SHM_TAG_INSTANCE];
	}
	if (push_notice(ns, &n) < 0)
		return ns->rc = -ENOMEM;
	return 0;
}

/* The write named only instance keys: look each one up. */
static int notices_by_key(notices_t *ns, const mgmt_key_t *hint, size_t nhint)
{
	shm_instance_view_t view;
	buf_t json = {0};
	int rc = 0;
	for (size_t i = 0; i < nhint && rc == 0; i++) {
		const mgmt_key_t *k = &hint[i];
		shm_key_t key = {{k->region, strlen(k->region)},
		                 {k->service, strlen(k->service)},
		                 {k->instance, strlen(k->instance)}};
		buf_reset(&json);
		int r = shm_lookup(ns->shm, &key, 0, &view, &json);
		if (r == 0)
			rc = classify(ns, &view, json.data, json.len);
		else if (r != -ENOENT)
			rc = r;
	}
	buf_free(&json);
	return rc;
}

static int notices_by_walk(notices_t *ns)
{
	uint32_t next = 0;
	return shm_instances_walk(ns->shm, &next, 0, classify, ns);
}

static int send_notices(shm_t *shm, const tagset_t *old, const tagset_t *next,
                        const mgmt_key_t *hint, size_t nhint)
{
	notices_t ns;
	uint64_t tag;
	int rc;
	memset(&ns, 0, sizeof(ns));
	ns.old = old;
	ns.next = next;
	ns.shm = shm;
	if ((rc = tagset_init(&ns.diff, 16)) < 0 || (rc = tagset_init(&ns.reloaded, 16)) < 0)
		goto out;
	for (uint32_t i = 0; rc >= 0 && tagset_next(old, &i, &tag);)
		if (!tagset_has(next, tag))
			rc = tagset_add(&ns.diff, tag);
	for (uint32_t i = 0; rc >= 0 && tagset_next(next, &i, &tag);)
		if (!tagset_has(old, tag))
			rc = tagset_add(&ns.diff, tag);
	if (rc < 0 || ns.diff.count == 0)
		goto out;
	rc = hint ? notices_by_key(&ns, hint, nhint) : notices_by_walk(&ns);
	if (rc == 0)
		rc = ns.rc;
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < ns.n; i++)
		if (ns.v[i].type == SHM_CHANGE_RELOAD)
			ns.v[i].service.ptr = ns.names.data + ns.v[i].slot;
	rc = shm_notify(shm, ns.v, ns.n);
out:
	tagset_free(&ns.diff);
	tagset_free(&ns.reloaded);
	buf_free(&ns.names);
	free(ns.v);
	return rc < 0 ? rc : 0;
}

int proj_publish(proj_t *p, shm_t *shm, const tagset_t *next, uint64_t gen, const mgmt_key_t *hint,
                 size_t nhint)
{
	tagset_t old = {0};
	int rc;
	if (next->count > p->max_keys)
		return -ENOSPC;
	if (proj_built(p))
		rc = copy_table(p, p->notified % PROJ_TABLES, &old);
	else
		rc = tagset_init(&old, 16);
	if (rc < 0)
		return rc;
	uint32_t a = p->active % PROJ_TABLES;
	if (!proj_built(p) || p->table[a].store_gen != gen || !table_equals(p, a, next)) {
		uint32_t t = 0;
		while (t == a || t == p->notified % PROJ_TABLES)
			t++;
		stage(p, t, next, gen);
		flip(p, t);
		failpoint(PROJ_AT_FLIPPED);
	}
	rc = send_notices(shm, &old, next, hint, nhint);
	tagset_free(&old);
	if (rc == 0)
		failpoint(PROJ_AT_NOTIFIED);
	if (rc < 0) {
		/* The set is in force; the notices are owed: the next writer (or
		 * the master) sends them from `notified`. */
		log_warn("%s: notices of a management change not sent: %s; retried by the next "
		         "write",
		         __func__, strerror(-rc));
		ck_pr_store_32(&p->dirty, 1);
		return rc;
	}
	ck_pr_store_32(&p->notified, ck_pr_load_32(&p->active));
	ck_pr_store_32(&p->built, 1);
	return 0;
}

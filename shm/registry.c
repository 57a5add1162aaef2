/*
 * registry.c - register, heartbeat, unregister, lookup (API.md §2.1, §4.3).
 *
 * register: under the writer lock, with an undo record; upserts the whole
 *   instance, gives it a fresh lease and a new generation, retires the old
 *   blob, and emits a `new` change every time (also when nothing changed),
 *   as Java does.  The change append is the commit point.
 * heartbeat: lock-free.  Index probe, key check under the slot's sequence,
 *   then a CAS on the lease word; no allocation, no lock, no logging.  A
 *   batch renews each distinct key once (copies get the first one's result).
 * unregister: lock-free.  Marks the lease evicted with a CAS; the reap pass
 *   (lease.c) removes it and emits `delete`, as Java's cleaner does.
 *
 * The concurrency contract is at the top of shm_int.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artemis/clock.h"

#include "shm_int.h"

static uint64_t now_or(uint64_t now_ms)
{
	return now_ms ? now_ms : clock_wall_ms();
}

uint64_t shm__ttl(const shm_t *s, const struct shm_slot_sh *sl)
{
	uint32_t t = ck_pr_load_32((uint32_t *)&sl->ttl_ms);
	if (t)
		return t;
	return s->hdr->ttl_ms[(ck_pr_load_8((uint8_t *)&sl->flags) & SLOT_F_LEGACY) ? 1 : 0];
}

static size_t put_lower(char *out, shm_str_t s)
{
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	return s.len;
}

/* Instance.toString(): lowercase region/zone/service[/group]/instance. */
static size_t make_display(const shm_instance_in_t *in, char *out)
{
	size_t n = put_lower(out, in->key.region);
	out[n++] = '/';
	n += put_lower(out + n, in->zone);
	out[n++] = '/';
	n += put_lower(out + n, in->key.service);
	if (in->group.len) {
		out[n++] = '/';
		n += put_lower(out + n, in->group);
	}
	out[n++] = '/';
	n += put_lower(out + n, in->key.instance);
	return n;
}

/* (L) A free slot id, -ENOSPC, or -ENOBUFS (no memory for a new one). */
static int slot_take(shm_t *s, uint32_t *id)
{
	struct shm_header_sh *h = s->hdr;
	if (h->slot_free != SHM_NONE) {
		*id = h->slot_free - 1;
		h->slot_free = shm__slot(s, *id)->next_free;
		return 0;
	}
	if (h->slot_bump >= h->max_instances)
		return -ENOSPC;
	int rc = shm__reserve(s, SHM_SEC_SLOTS,
	                      (uint64_t)(h->slot_bump + 1) * sizeof(struct shm_slot_sh));
	if (rc)
		return rc;
	*id = h->slot_bump;
	ck_pr_store_32(&h->slot_bump, h->slot_bump + 1);
	return 0;
}

static void slot_give_back(shm_t *s, uint32_t id)
{
	struct shm_header_sh *h = s->hdr;
	shm__slot(s, id)->next_free = h->slot_free;
	h->slot_free = id + 1;
}

/* Test builds only (make's build/artemis-hooks, compiled with
 * -DARTEMIS_TEST_HOOKS; absent from build/artemis): registering the service
 * "artemis-test-hold-lock" holds the writer lock for a minute, so the
 * integration tests can stop a real worker while it holds it. */
static void test_hold_lock(const shm_instance_in_t *in)
{
#ifdef ARTEMIS_TEST_HOOKS
	static const char name[] = "artemis-test-hold-lock";
	if (in->key.service.len == sizeof(name) - 1 &&
	    memcmp(in->key.service.ptr, name, sizeof(name) - 1) == 0)
		for (int i = 0; i < 600; i++)
			usleep(100000);
#else
	(void)in;
#endif
}

/* The processes' renewal counters: single writer per entry, so a relaxed
 * load and store, no locked op. */
static struct shm_proc_sh *my_counters(shm_t *s)
{
	if (s->proc < 0)
		shm_proc_join(s, SHM_ROLE_TEST, -1);
	return s->proc < 0 ? NULL : &s->procs[s->proc];
}

static void bump(uint64_t *c)
{
	ck_pr_store_64(c, ck_pr_load_64(c) + 1);
}

/* Successful and failed heartbeats, for the metrics. */
static void count_renewal(shm_t *s, int mgr, bool ok)
{
	struct shm_proc_sh *p = my_counters(s);
	if (p)
		bump(ok ? &p->renewals[mgr] : &p->renewals_failed);
}

/* What self-preservation counts (lease.c): distinct instances renewed,
 * second by second.  A renewal counts unless the lease's previous renewal
 * was counted within the same second, so copies of a key in one request, or
 * a burst of renewals, count once, while an instance renewed every second
 * or slower counts every time, as in Java. */
static void count_distinct(shm_t *s, int mgr)
{
	struct shm_proc_sh *p = my_counters(s);
	if (p)
		bump(&p->counted[mgr]);
}

static bool counts(uint64_t prev, uint64_t now)
{
	return !(prev & LEASE_COUNTED) || lease_ms(prev) / 1000 != now / 1000;
}

struct reg_ctx {
	const shm_instance_in_t *in;
	char key[SHM_MAX_KEY];
	size_t key_len;
	uint64_t hash;
	char display[SHM_MAX_DISPLAY];
	size_t display_len;
	uint64_t now;
	uint64_t tags[SHM_TAGS];
};

static void write_blob(shm_t *s, uint64_t off, uint32_t owner, const struct reg_ctx *c)
{
	struct shm_blob_sh *b = (struct shm_blob_sh *)(s->arena + off);
	size_t klen = c->key_len > SHM_KEY_INLINE ? c->key_len : 0;
	b->owner = owner;
	b->key_len = (uint16_t)klen;
	b->display_len = (uint16_t)c->display_len;
	b->json_len = (uint32_t)c->in->json.len;
	b->service_len = (uint16_t)c->in->key.service.len;
	memcpy(b->tags, c->tags, sizeof(b->tags));
	char *p = (char *)(b + 1);
	memcpy(p, c->key, klen);
	p += klen;
	memcpy(p, c->display, c->display_len);
	p += c->display_len;
	memcpy(p, c->in->json.ptr, c->in->json.len);
	p += c->in->json.len;
	memcpy(p, c->in->key.service.ptr, c->in->key.service.len);
}

/* The bytes of a blob a reader copies: header and payload. */
static size_t blob_used(const struct reg_ctx *c)
{
	return sizeof(struct shm_blob_sh) + (c->key_len > SHM_KEY_INLINE ? c->key_len : 0) +
	       c->display_len + c->in->json.len + c->in->key.service.len;
}

static void fill_slot(shm_t *s, struct shm_slot_sh *sl, const struct reg_ctx *c, uint32_t svc,
                      uint64_t blob)
{
	const shm_instance_in_t *in = c->in;
	uint32_t gen = lease_gen(sl->lease) + 1;
	sl->state = SLOT_LIVE;
	sl->flags = in->legacy ? SLOT_F_LEGACY : 0;
	sl->origin = in->origin;
	sl->evict_origin = 0;
	sl->hash = c->hash;
	sl->creation_ms = c->now;
	sl->eviction_ms = 0;
	sl->origin_ms = in->origin_ms ? in->origin_ms : c->now;
	sl->blob = blob;
	sl->blob_len = (uint32_t)blob_used(c);
	sl->ttl_ms = in->ttl_ms;
	sl->svc = svc;
	sl->key_len = (uint16_t)c->key_len;
	memset(sl->key, 0, sizeof(sl->key));
	if (c->key_len <= SHM_KEY_INLINE)
		memcpy(sl->key, c->key, c->key_len);
	ck_pr_store_64(&sl->lease, lease_make(gen, false, shm__rel_ms(s, c->now)) |
	                               (in->origin ? LEASE_REMOTE : 0));
}

/* (L) The body of register, between lock and unlock. */
static int register_locked(shm_t *s, struct reg_ctx *c)
{
	const shm_instance_in_t *in = c->in;
	uint32_t svc, id;
	int rc = shm__service_get(s, in->key.service, true, &svc);
	if (rc)
		return rc;
	bool exists = shm__index_find(s, c->hash, c->key, c->key_len, &id, NULL) == 0;
	if (exists && in->origin) {
		const struct shm_slot_sh *cur = shm__slot(s, id);
		if (cur->origin_ms > in->origin_ms && in->origin_ms)
			return -ESTALE;
	}
	/* Memory first: a reservation that fails leaves nothing changed. */
	if ((rc = shm__change_reserve(s, 1)) || (!exists && (rc = shm__index_reserve(s))))
		return rc;
	size_t payload = blob_used(c) - sizeof(struct shm_blob_sh);
	if (!exists && (rc = slot_take(s, &id)))
		return rc;
	uint64_t blob;
	if ((rc = shm__blob_alloc(s, payload, &blob))) {
		if (!exists)
			slot_give_back(s, id);
		return rc;
	}
	write_blob(s, blob, id, c);

	struct shm_slot_sh *sl = shm__slot(s, id);
	uint32_t old_svc = exists ? sl->svc : svc;
	uint64_t old_blob = exists ? sl->blob : 0;
	struct shm_service_sh *sv = &s->services[svc], *osv = &s->services[old_svc];
	shm__undo_begin(s, id);
	ck_sequence_write_begin(&sv->seq);
	if (osv != sv)
		ck_sequence_write_begin(&osv->seq);
	ck_sequence_write_begin(&sl->seq);
	if (exists && old_svc != svc)
		shm__service_unlink(s, old_svc, id);
	fill_slot(s, sl, c, svc, blob);
	if (!exists || old_svc != svc)
		shm__service_link(s, svc, id);
	if (old_blob)
		shm__blob_retire(s, old_blob, s->hdr->head + 1);
	ck_sequence_write_end(&sl->seq);
	if (!exists) {
		shm__index_insert(s, c->hash, id);
		ck_pr_inc_32(&s->hdr->live);
	}
	shm__change_append(s, SHM_CHANGE_NEW, SHM_DEL_NONE, in->origin, sl->origin_ms, svc, id,
	                   blob);
	if (osv != sv) {
		osv->version = s->hdr->head;
		ck_sequence_write_end(&osv->seq);
	}
	ck_sequence_write_end(&sv->seq);
	s->hdr->registers++;
	shm__undo_end(s);
	return 0;
}

int shm_register(shm_t *s, const shm_instance_in_t *in)
{
	struct reg_ctx c;
	int rc = shm_instance_validate(in, NULL);
	if (rc)
		return rc;
	c.in = in;
	if ((rc = shm__make_key(&in->key, c.key, &c.key_len)))
		return rc;
	c.hash = shm__hash(c.key, c.key_len);
	c.display_len = make_display(in, c.display);
	shm_instance_tags(s, in, c.tags);
	c.now = clock_wall_ms();
	if ((rc = shm__lock(s)) < 0)
		return rc;
	test_hold_lock(in);
	rc = register_locked(s, &c);
	shm__unlock(s);
	return rc;
}

/* Copy a live slot's lease word if it still holds `key` (lock-free).
 * 0, -EAGAIN (torn or reused: retry the lookup), -ENOENT. */
static int read_lease(shm_t *s, uint32_t id, uint64_t hash, const char *key, size_t len,
                      uint64_t *w, uint64_t *ttl, int *mgr)
{
	const struct shm_slot_sh *sl = shm__slot(s, id);
	unsigned v = ck_pr_load_uint(&sl->seq.sequence);
	ck_pr_fence_load();
	if (v & 1)
		return -EAGAIN;
	*w = ck_pr_load_64((uint64_t *)&sl->lease);
	*ttl = shm__ttl(s, sl);
	*mgr = (ck_pr_load_8((uint8_t *)&sl->flags) & SLOT_F_LEGACY) ? 1 : 0;
	bool match = ck_pr_load_8((uint8_t *)&sl->state) == SLOT_LIVE &&
	             ck_pr_load_64((uint64_t *)&sl->hash) == hash &&
	             shm__key_equal(s, sl, key, len);
	if (ck_sequence_read_retry(&sl->seq, v))
		return -EAGAIN;
	return match ? 0 : -EAGAIN;
}

/* Renew the lease of a prepared key (lowercase key, hash) at `now`
 * (relative ms). */
static int heartbeat_key(shm_t *s, const char *k, size_t len, uint64_t hash, uint64_t now,
                         bool remote)
{
	for (unsigned attempt = 0; attempt < SHM_READ_RETRIES; attempt++) {
		uint32_t id;
		uint64_t w, ttl;
		int mgr, rc = shm__index_find(s, hash, k, len, &id, &w);
		if (rc == -ENOENT) {
			count_renewal(s, 0, false);
			return rc;
		}
		if (rc)
			return rc;
		const struct shm_slot_sh *sl = shm__slot(s, id);
		ttl = shm__ttl(s, sl);
		mgr = (ck_pr_load_8((uint8_t *)&sl->flags) & SLOT_F_LEGACY) ? 1 : 0;
		do {
			if (lease_evicted(w) || now > lease_ms(w) + ttl) {
				count_renewal(s, mgr, false);
				return -ENOENT;
			}
			uint64_t nw =
			    lease_make(lease_gen(w), false, now > lease_ms(w) ? now : lease_ms(w)) |
			    (remote ? LEASE_REMOTE : 0) | LEASE_COUNTED;
			if (ck_pr_cas_64(&shm__slot(s, id)->lease, w, nw)) {
				count_renewal(s, mgr, true);
				if (counts(w, now))
					count_distinct(s, mgr);
				return 0;
			}
		} while (read_lease(s, id, hash, k, len, &w, &ttl, &mgr) == 0);
		shm__stall(attempt);
	}
	return -EBUSY;
}

static int renew(shm_t *s, const shm_key_t *key, uint64_t now_ms, bool remote)
{
	char k[SHM_MAX_KEY];
	size_t len;
	int rc = shm__make_key(key, k, &len);
	if (rc)
		return rc;
	return heartbeat_key(s, k, len, shm__hash(k, len), shm__rel_ms(s, now_or(now_ms)), remote);
}

int shm_heartbeat(shm_t *s, const shm_key_t *key, uint64_t now_ms)
{
	return renew(s, key, now_ms, false);
}

int shm_renew_remote(shm_t *s, const shm_key_t *key, uint64_t now_ms)
{
	return renew(s, key, now_ms, true);
}

/* Split a stored lowercase key "region\0service\0instance" into a key. */
static bool split_key(const char *k, size_t len, shm_key_t *out)
{
	const char *a = memchr(k, '\0', len);
	if (!a)
		return false;
	const char *b = memchr(a + 1, '\0', len - (size_t)(a + 1 - k));
	if (!b)
		return false;
	out->region = (shm_str_t){k, (size_t)(a - k)};
	out->service = (shm_str_t){a + 1, (size_t)(b - a - 1)};
	out->instance = (shm_str_t){b + 1, len - (size_t)(b + 1 - k)};
	return true;
}

int shm_renewals_scan(shm_t *s, uint64_t since_ms, shm_renewal_fn fn, void *ctx)
{
	uint32_t bump = ck_pr_load_32(&s->hdr->slot_bump);
	if (bump > s->hdr->max_instances)
		bump = s->hdr->max_instances;
	uint64_t since = shm__rel_ms(s, since_ms);
	char k[SHM_MAX_KEY];
	for (uint32_t id = 0; id < bump; id++) {
		const struct shm_slot_sh *sl = shm__slot(s, id);
		uint64_t w = ck_pr_load_64((uint64_t *)&sl->lease);
		if (lease_evicted(w) || lease_remote(w) || lease_ms(w) <= since ||
		    ck_pr_load_8((uint8_t *)&sl->state) != SLOT_LIVE)
			continue;
		unsigned attempt = 0;
		size_t len = 0;
		for (; attempt < SHM_READ_RETRIES; attempt++) {
			unsigned v = ck_pr_load_uint(&sl->seq.sequence);
			ck_pr_fence_load();
			len = ck_pr_load_16((uint16_t *)&sl->key_len);
			bool ok = !(v & 1) && len <= SHM_MAX_KEY;
			if (ok && len <= SHM_KEY_INLINE) {
				memcpy(k, sl->key, len);
			} else if (ok) {
				const struct shm_blob_sh *b = shm__blob_get(s, sl->blob);
				ok = b && b->key_len == len;
				if (ok)
					memcpy(k, b + 1, len);
			}
			if (ok && !ck_sequence_read_retry(&sl->seq, v))
				break;
			shm__stall(attempt);
		}
		shm_key_t key;
		if (attempt == SHM_READ_RETRIES || !split_key(k, len, &key))
			continue;
		int rc = fn(ctx, &key, s->hdr->epoch_ms + lease_ms(w));
		if (rc)
			return rc;
	}
	return 0;
}

#define HB_DIST 16 /* pipeline distance, in keys */
#define HB_RING (2 * HB_DIST + 1)
#define HB_SEEN 2048 /* set of the keys seen, on the stack up to 1024 keys */

/* The keys of a batch seen so far: entry = (hash tag << 32) | (index + 1). */
struct hb_seen {
	uint64_t *t;
	uint32_t mask;
	uint64_t stack[HB_SEEN];
};

static void seen_init(struct hb_seen *set, size_t n)
{
	size_t size = 16;
	while (size < 2 * n)
		size <<= 1;
	set->t = size <= HB_SEEN ? set->stack : calloc(size, sizeof(uint64_t));
	set->mask = set->t ? (uint32_t)size - 1 : 0;
	if (set->t == set->stack)
		memset(set->t, 0, size * sizeof(uint64_t));
}

static void seen_free(struct hb_seen *set)
{
	if (set->t != set->stack)
		free(set->t);
}

/* The index of an earlier copy of key i (same lowercase key), or -1 after
 * recording i.  A set that could not be allocated dedupes nothing. */
static long seen_check(struct hb_seen *set, const shm_key_t *keys, size_t i, const char *k,
                       size_t len, uint64_t hash)
{
	if (!set->t)
		return -1;
	uint32_t tag = (uint32_t)(hash >> 32), pos = (uint32_t)hash & set->mask;
	for (; set->t[pos]; pos = (pos + 1) & set->mask) {
		uint64_t e = set->t[pos];
		char other[SHM_MAX_KEY];
		size_t olen;
		size_t j = (uint32_t)e - 1;
		if ((uint32_t)(e >> 32) == tag && shm__make_key(&keys[j], other, &olen) == 0 &&
		    olen == len && memcmp(other, k, len) == 0)
			return (long)j;
	}
	set->t[pos] = ((uint64_t)tag << 32) | (uint64_t)(i + 1);
	return -1;
}

/* A batch is software-pipelined: key i is hashed and its index entry
 * prefetched, key i - HB_DIST has its entry read and its slot prefetched,
 * and key i - 2*HB_DIST is renewed, so up to 2*HB_DIST cache misses are in
 * flight instead of two at a time.  A copy of an earlier key is not renewed
 * again: while in flight rcs[i] holds that key's index + 1, then its
 * result. */
int shm_heartbeat_batch(shm_t *s, const shm_key_t *keys, size_t n, uint64_t now_ms, int *rcs)
{
	char kb[HB_RING][SHM_MAX_KEY];
	size_t len[HB_RING];
	uint64_t hash[HB_RING];
	uint64_t now = shm__rel_ms(s, now_or(now_ms));
	struct hb_seen set;
	seen_init(&set, n);
	int ok = 0;
	for (size_t i = 0; i < n + 2 * HB_DIST; i++) {
		if (i < n) {
			size_t r = i % HB_RING;
			rcs[i] = shm__make_key(&keys[i], kb[r], &len[r]);
			if (!rcs[i]) {
				hash[r] = shm__hash(kb[r], len[r]);
				long dup = seen_check(&set, keys, i, kb[r], len[r], hash[r]);
				if (dup >= 0)
					rcs[i] = (int)dup + 1;
				else
					shm__index_prefetch(s, hash[r]);
			}
		}
		if (i >= HB_DIST && i - HB_DIST < n && !rcs[i - HB_DIST]) {
			size_t r = (i - HB_DIST) % HB_RING;
			shm__slot_prefetch(s, hash[r], len[r], false);
		}
		if (i >= 2 * HB_DIST) {
			size_t j = i - 2 * HB_DIST, r = j % HB_RING;
			if (rcs[j] > 0)
				rcs[j] = rcs[rcs[j] - 1];
			else if (rcs[j] == 0)
				ok += (rcs[j] = heartbeat_key(s, kb[r], len[r], hash[r], now,
				                              false)) == 0;
		}
	}
	seen_free(&set);
	return ok;
}

int shm_unregister(shm_t *s, const shm_key_t *key, uint8_t origin)
{
	char k[SHM_MAX_KEY];
	size_t len;
	int rc = shm__make_key(key, k, &len);
	if (rc)
		return rc;
	if (s->read_only)
		return -EROFS;
	uint64_t hash = shm__hash(k, len);
	for (unsigned attempt = 0; attempt < SHM_READ_RETRIES; attempt++) {
		uint32_t id;
		rc = shm__index_find(s, hash, k, len, &id, NULL);
		if (rc == -ENOENT)
			return 0;
		if (rc)
			return rc;
		struct shm_slot_sh *sl = shm__slot(s, id);
		uint64_t w, ttl;
		int mgr;
		while (read_lease(s, id, hash, k, len, &w, &ttl, &mgr) == 0) {
			if (lease_evicted(w))
				return 0;
			ck_pr_store_8(&sl->evict_origin, origin);
			ck_pr_store_64(&sl->eviction_ms, clock_wall_ms());
			if (ck_pr_cas_64(&sl->lease, w, w | LEASE_EVICTED)) {
				ck_pr_inc_64(&s->hdr->unregisters);
				/* A hint for the reaper; the lease word is the truth. */
				ck_pr_or_64(&s->evicted[id / 64], 1ULL << (id % 64));
				return 0;
			}
		}
		shm__stall(attempt);
	}
	return -EBUSY;
}

/* Copy a slot (lock-free, validated); false when torn every time. */
bool shm__slot_copy(shm_t *s, uint32_t id, struct shm_slot_sh *out)
{
	const struct shm_slot_sh *sl = shm__slot(s, id);
	for (unsigned attempt = 0; attempt < SHM_READ_RETRIES; attempt++) {
		unsigned v = ck_pr_load_uint(&sl->seq.sequence);
		ck_pr_fence_load();
		if (!(v & 1)) {
			memcpy(out, sl, sizeof(*out));
			if (!ck_sequence_read_retry(&sl->seq, v))
				return true;
		}
		shm__stall(attempt);
	}
	return false;
}

static void fill_view(shm_t *s, uint32_t id, const struct shm_slot_sh *c, uint64_t now_ms,
                      shm_instance_view_t *v)
{
	uint64_t w = c->lease;
	uint64_t ttl = shm__ttl(s, c);
	memset(v, 0, offsetof(shm_instance_view_t, service));
	v->slot = id;
	v->gen = lease_gen(w);
	v->creation_ms = c->creation_ms;
	v->renewal_ms = s->hdr->epoch_ms + lease_ms(w);
	v->evicted = lease_evicted(w);
	v->eviction_ms = v->evicted ? c->eviction_ms : 0;
	v->ttl_ms = (uint32_t)ttl;
	v->expired = v->evicted || shm__rel_ms(s, now_or(now_ms)) > lease_ms(w) + ttl;
	v->legacy = (c->flags & SLOT_F_LEGACY) != 0;
	v->origin = c->origin;
	v->origin_ms = c->origin_ms;
	v->service[0] = v->display[0] = '\0';
	memset(v->tags, 0, sizeof(v->tags));
}

/* Copy the view of slot `id`; with `json`, also its names (serviceId,
 * display) and stored JSON from the blob.  False when the slot changed
 * meanwhile (the caller retries). */
static bool read_instance(shm_t *s, uint32_t id, uint64_t now_ms, shm_instance_view_t *view,
                          buf_t *json)
{
	struct shm_slot_sh c;
	const struct shm_slot_sh *sl = shm__slot(s, id);
	unsigned v = ck_pr_load_uint(&sl->seq.sequence);
	ck_pr_fence_load();
	if (v & 1)
		return false;
	/* The fields a view needs: the head (lease, flags, TTL) and the tail
	 * (times, origin, blob); the inline key is not needed here. */
	memcpy(&c, sl, offsetof(struct shm_slot_sh, key));
	memcpy(&c.creation_ms, &sl->creation_ms,
	       sizeof(c) - offsetof(struct shm_slot_sh, creation_ms));
	if (c.state != SLOT_LIVE) {
		if (ck_sequence_read_retry(&sl->seq, v))
			return false;
		view->slot = UINT32_MAX; /* removed: not an instance any more */
		return true;
	}
	fill_view(s, id, &c, now_ms, view);
	if (!json)
		return !ck_sequence_read_retry(&sl->seq, v);
	const struct shm_blob_sh *b = shm__blob_get(s, c.blob);
	if (!b)
		return false;
	uint32_t dl = b->display_len, kl = b->key_len, jl = b->json_len, nl = b->service_len;
	if (dl >= sizeof(view->display) || jl > SHM_MAX_JSON || nl > SHM_MAX_SERVICE ||
	    sizeof(*b) + kl + dl + jl + nl > SHM_MAX_BLOCK)
		return false;
	const char *p = (const char *)(b + 1) + kl;
	memcpy(view->display, p, dl);
	view->display[dl] = '\0';
	memcpy(view->service, p + dl + jl, nl);
	view->service[nl] = '\0';
	memcpy(view->tags, b->tags, sizeof(view->tags));
	size_t start = json->len;
	if (buf_append(json, p + dl, jl))
		return false;
	if (ck_sequence_read_retry(&sl->seq, v)) {
		json->len = start;
		return false;
	}
	return true;
}

static int lookup_key(shm_t *s, const char *k, size_t len, uint64_t hash, uint64_t now_ms,
                      shm_instance_view_t *view, buf_t *json)
{
	size_t start = json ? json->len : 0;
	for (unsigned attempt = 0; attempt < SHM_READ_RETRIES; attempt++) {
		uint32_t id;
		uint64_t w;
		int rc = shm__index_find(s, hash, k, len, &id, &w);
		if (rc)
			return rc;
		/* The copy belongs to the key the probe validated when it has the
		 * generation the probe saw (the slot was not reused between). */
		if (read_instance(s, id, now_ms, view, json)) {
			if (view->slot != UINT32_MAX && view->gen == lease_gen(w))
				return 0;
			if (json)
				json->len = start;
		}
		shm__stall(attempt);
	}
	return -EBUSY;
}

int shm_lookup(shm_t *s, const shm_key_t *key, uint64_t now_ms, shm_instance_view_t *view,
               buf_t *json)
{
	char k[SHM_MAX_KEY];
	size_t len;
	int rc = shm__make_key(key, k, &len);
	if (rc)
		return rc;
	return lookup_key(s, k, len, shm__hash(k, len), now_or(now_ms), view, json);
}

#define LK_DIST 6
#define LK_RING (3 * LK_DIST + 1)

/* Prefetch the blob a slot names: the lines a lookup copies. */
static void blob_prefetch(shm_t *s, uint64_t hash)
{
	uint32_t id;
	if (shm__index_peek(s, hash, &id))
		return;
	const struct shm_slot_sh *sl = shm__slot(s, id);
	const char *b = (const char *)shm__blob_get(s, ck_pr_load_64((uint64_t *)&sl->blob));
	uint32_t len = ck_pr_load_32((uint32_t *)&sl->blob_len);
	if (!b || len > SHM_MAX_BLOCK)
		return;
	for (uint32_t at = 0; at < len; at += 64)
		__builtin_prefetch(b + at);
}

/* Pipelined like shm_heartbeat_batch, one stage deeper when the JSON is
 * copied: index entry, then slot, then blob are prefetched before the key
 * is looked up. */
int shm_lookup_batch(shm_t *s, const shm_key_t *keys, size_t n, uint64_t now_ms, bool with_json,
                     shm_lookup_fn fn, void *ctx)
{
	char kb[LK_RING][SHM_MAX_KEY];
	size_t len[LK_RING];
	uint64_t hash[LK_RING];
	int krc[LK_RING] = {0};
	shm_instance_view_t view;
	buf_t json = {0};
	size_t stages = with_json ? 3 : 2;
	now_ms = now_or(now_ms);
	int rc = 0;
	for (size_t i = 0; i < n + stages * LK_DIST && rc == 0; i++) {
		if (i < n) {
			size_t r = i % LK_RING;
			krc[r] = shm__make_key(&keys[i], kb[r], &len[r]);
			if (!krc[r]) {
				hash[r] = shm__hash(kb[r], len[r]);
				shm__index_prefetch(s, hash[r]);
			}
		}
		size_t r = (i - LK_DIST) % LK_RING;
		if (i >= LK_DIST && i - LK_DIST < n && !krc[r])
			shm__slot_prefetch(s, hash[r], len[r], true);
		r = (i - 2 * LK_DIST) % LK_RING;
		if (with_json && i >= 2 * LK_DIST && i - 2 * LK_DIST < n && !krc[r])
			blob_prefetch(s, hash[r]);
		if (i < stages * LK_DIST)
			continue;
		size_t j = i - stages * LK_DIST;
		r = j % LK_RING;
		buf_reset(&json);
		int one = krc[r] ? krc[r]
		                 : lookup_key(s, kb[r], len[r], hash[r], now_ms, &view,
		                              with_json ? &json : NULL);
		rc = fn(ctx, j, one, one ? NULL : &view, json.data, json.len);
	}
	buf_free(&json);
	return rc;
}

/* Visit one slot: copy it out (bounded retries) and call fn, unless it is
 * no longer an instance (of `service`, when given).  Returns fn's result,
 * 0 for a skipped slot, or -EBUSY. */
static int visit_slot(shm_t *s, uint32_t id, const shm_str_t *service, uint64_t now_ms,
                      shm_instance_fn fn, void *ctx, buf_t *json)
{
	shm_instance_view_t view;
	unsigned attempt = 0;
	for (; attempt < SHM_READ_RETRIES; attempt++) {
		buf_reset(json);
		if (read_instance(s, id, now_ms, &view, json))
			break;
		shm__stall(attempt);
	}
	if (attempt == SHM_READ_RETRIES)
		return -EBUSY;
	if (view.slot == UINT32_MAX)
		return 0;
	if (service && (strlen(view.service) != service->len ||
	                memcmp(view.service, service->ptr, service->len) != 0))
		return 0;
	return fn(ctx, &view, json->data, json->len);
}

int shm_instances_foreach(shm_t *s, const shm_str_t *service, uint64_t now_ms, shm_instance_fn fn,
                          void *ctx)
{
	if (!service) {
		uint32_t next = 0;
		return shm_instances_walk(s, &next, now_ms, fn, ctx);
	}
	/* One service: walk its members, not every slot. */
	uint32_t *ids, n;
	int rc = shm__service_members(s, *service, &ids, &n);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	buf_t json = {0};
	for (uint32_t i = 0; i < n && rc == 0; i++)
		rc = visit_slot(s, ids[i], service, now_ms, fn, ctx, &json);
	free(ids);
	buf_free(&json);
	return rc;
}

int shm_instances_walk(shm_t *s, uint32_t *next, uint64_t now_ms, shm_instance_fn fn, void *ctx)
{
	buf_t json = {0};
	int rc = 0;
	uint32_t bump = ck_pr_load_32(&s->hdr->slot_bump);
	if (bump > s->hdr->max_instances)
		bump = s->hdr->max_instances;
	uint32_t id = *next;
	for (; id < bump; id++) {
		if (ck_pr_load_8(&s->slots[id].state) != SLOT_LIVE)
			continue;
		if ((rc = visit_slot(s, id, NULL, now_ms, fn, ctx, &json)))
			break;
	}
	*next = id;
	buf_free(&json);
	return rc;
}

/* (L) Remove a live slot whose lease word is still `expect` (the reap
 * pass): 0, -EAGAIN when a heartbeat changed it first, -ENOBUFS when the
 * change log has no memory for the `delete` (nothing changed).  Commits
 * with the `delete` change. */
int shm__slot_remove(shm_t *s, uint32_t id, uint8_t reason, uint64_t expect)
{
	struct shm_slot_sh *sl = shm__slot(s, id);
	struct shm_service_sh *sv = &s->services[sl->svc];
	int rc = shm__change_reserve(s, 1);
	if (rc)
		return rc;
	shm__undo_begin(s, id);
	uint64_t dead = lease_make(lease_gen(expect) + 1, true, 0);
	if (!ck_pr_cas_64(&sl->lease, expect, dead)) {
		shm__undo_end(s);
		return -EAGAIN;
	}
	ck_sequence_write_begin(&sv->seq);
	ck_sequence_write_begin(&sl->seq);
	shm__service_unlink(s, sl->svc, id);
	shm__index_remove(s, sl->hash, id);
	uint64_t blob = sl->blob;
	shm__blob_retire(s, blob, s->hdr->head + 1);
	sl->state = SLOT_FREE;
	slot_give_back(s, id);
	ck_sequence_write_end(&sl->seq);
	ck_pr_dec_32(&s->hdr->live);
	uint8_t origin = reason == SHM_DEL_UNREGISTER ? sl->evict_origin : 0;
	shm__change_append(s, SHM_CHANGE_DELETE, reason, origin, sl->origin_ms, sl->svc, id, blob);
	ck_sequence_write_end(&sv->seq);
	if (reason == SHM_DEL_EXPIRED)
		s->hdr->evictions++;
	else
		s->hdr->removals++;
	shm__undo_end(s);
	return 0;
}

/*
 * index.c - the open-addressing index from key hash to slot id.
 *
 * Two buffers with room for hdr->index_size 64-bit entries each; a buffer
 * uses its first index_mask[buf] + 1 entries (a power of 2, grown by
 * rebuilding as the registry grows, so an index of a mostly empty region
 * stays small: the untouched rest of the buffer costs no memory).
 * entry = (hash >> 32) << 32 | (slot + 1); 0 is empty, INDEX_TOMB a deleted
 * entry.  Linear probing, load kept at most 1/2 while growing is possible.  Writers (under the
 * lock) publish an entry with a single 64-bit store after the slot is complete.  Readers probe
 * without locking and validate each candidate slot's key under the slot's sequence (and hand back
 * the lease word read in that same window).
 *
 * Growing and clearing tombstones both rebuild into the spare buffer (its
 * mask set first) and flip hdr->index_active.  hdr->index_epoch is bumped around the flip; a reader
 * that saw it change retries, so a reader still probing the old buffer when
 * a later rebuild overwrites it cannot be misled.
 */
#include <errno.h>
#include <string.h>

#include "artemis/log.h"
#include "shm_int.h"

#define INDEX_TOMB  UINT64_MAX
#define HASH_TAG(h) ((h) >> 32)

static uint64_t *index_buf(shm_t *s, uint32_t which)
{
	return (uint64_t *)(s->base + s->hdr->sec[SHM_SEC_INDEX0 + (which & 1)].off);
}

/* The active buffer and its mask, as readers see them (validated by the
 * caller through index_epoch). */
static const uint64_t *active(shm_t *s, uint32_t *mask)
{
	uint32_t which = ck_pr_load_32(&s->hdr->index_active) & 1;
	ck_pr_fence_load();
	*mask = ck_pr_load_32(&s->hdr->index_mask[which]) & (s->hdr->index_size - 1);
	return index_buf(s, which);
}

static uint64_t entry_make(uint64_t hash, uint32_t slot)
{
	return (HASH_TAG(hash) << 32) | (uint64_t)(slot + 1);
}

/* Lock-free lookup: 0 and *slot, -ENOENT, or -EBUSY (torn reads kept
 * failing validation).  The returned slot matched the key at one instant;
 * callers that act on it re-validate (generation in the lease word). */
int shm__index_find(shm_t *s, uint64_t hash, const char *key, size_t len, uint32_t *slot,
                    uint64_t *lease)
{
	struct shm_header_sh *h = s->hdr;
	for (unsigned attempt = 0; attempt < SHM_READ_RETRIES; attempt++) {
		uint32_t epoch = ck_pr_load_32(&h->index_epoch), mask;
		ck_pr_fence_load();
		const uint64_t *ix = active(s, &mask);
		bool torn = false;
		uint32_t pos = (uint32_t)hash & mask;
		for (uint32_t n = 0; n <= mask; n++, pos = (pos + 1) & mask) {
			uint64_t e = ck_pr_load_64((uint64_t *)&ix[pos]);
			if (e == 0)
				break;
			if (e == INDEX_TOMB || (e >> 32) != HASH_TAG(hash))
				continue;
			uint32_t id = (uint32_t)e - 1;
			if (id >= h->max_instances)
				continue;
			const struct shm_slot_sh *sl = shm__slot(s, id);
			unsigned v = ck_pr_load_uint(&sl->seq.sequence);
			ck_pr_fence_load();
			if (v & 1) {
				torn = true;
				break;
			}
			uint64_t w = ck_pr_load_64((uint64_t *)&sl->lease);
			bool match = ck_pr_load_8(&sl->state) == SLOT_LIVE &&
			             ck_pr_load_64(&sl->hash) == hash &&
			             shm__key_equal(s, sl, key, len);
			if (ck_sequence_read_retry(&sl->seq, v)) {
				torn = true;
				break;
			}
			if (match) {
				*slot = id;
				if (lease)
					*lease = w;
				return 0;
			}
		}
		ck_pr_fence_load();
		if (!torn && ck_pr_load_32(&h->index_epoch) == epoch)
			return -ENOENT;
		shm__stall(attempt);
	}
	return -EBUSY;
}

/* Prefetch the index entry of a hash. */
void shm__index_prefetch(shm_t *s, uint64_t hash)
{
	uint32_t mask;
	const uint64_t *ix = active(s, &mask);
	__builtin_prefetch(&ix[(uint32_t)hash & mask]);
}

/* Prefetch the slot the first matching entry of a hash names (after the
 * entry was prefetched): line 0 (for writing, as a heartbeat CASes the
 * lease there), line 1 when the key spills into it, and for a lookup line 2
 * (times, blob) instead of write intent. */
void shm__slot_prefetch(shm_t *s, uint64_t hash, size_t key_len, bool lookup)
{
	uint32_t id;
	if (shm__index_peek(s, hash, &id))
		return;
	const char *p = (const char *)shm__slot(s, id);
	if (lookup) {
		__builtin_prefetch(p);
		__builtin_prefetch(p + 128);
	} else {
		__builtin_prefetch(p, 1);
	}
	if (key_len > SHM_KEY_LINE0 && key_len <= SHM_KEY_INLINE)
		__builtin_prefetch(p + 64);
}

/* The slot the first matching entry of a hash names, unvalidated (for
 * prefetching only). */
int shm__index_peek(shm_t *s, uint64_t hash, uint32_t *slot)
{
	struct shm_header_sh *h = s->hdr;
	uint32_t mask;
	const uint64_t *ix = active(s, &mask);
	uint64_t e = ck_pr_load_64((uint64_t *)&ix[(uint32_t)hash & mask]);
	if (e == 0 || e == INDEX_TOMB || (e >> 32) != HASH_TAG(hash) ||
	    (uint32_t)e - 1 >= h->max_instances)
		return -ENOENT;
	*slot = (uint32_t)e - 1;
	return 0;
}

/* (L) The buffer size for `live` keys: at least 4x, so the load is at most
 * 1/2 until the next growth; at least SHM_INDEX_MIN; at most the capacity. */
static uint32_t size_for(const struct shm_header_sh *h, uint32_t live)
{
	uint64_t want = (uint64_t)live * 4, n = SHM_INDEX_MIN;
	while (n < want)
		n <<= 1;
	return n > h->index_size ? h->index_size : (uint32_t)n;
}

/* (L) Before an insert: memory in both buffers for the size the insert's
 * rebuild (or a repair's after it) may want, so neither ever touches a page
 * that is not backed. */
int shm__index_reserve(shm_t *s)
{
	/* Reservations are whole power-of-2 buffers: when both hold 4x the
	 * keys, size_for() fits in them. */
	uint64_t quick = sizeof(uint64_t) * 4 * ((uint64_t)s->hdr->live + 2);
	if (quick <= s->hdr->sec[SHM_SEC_INDEX0].reserved &&
	    quick <= s->hdr->sec[SHM_SEC_INDEX1].reserved)
		return 0;
	uint64_t bytes = sizeof(uint64_t) * size_for(s->hdr, s->hdr->live + 2);
	int rc = shm__reserve(s, SHM_SEC_INDEX0, bytes);
	return rc ? rc : shm__reserve(s, SHM_SEC_INDEX1, bytes);
}

/* (L) Index a slot that is already live (filled, state SLOT_LIVE). */
void shm__index_insert(shm_t *s, uint64_t hash, uint32_t slot)
{
	struct shm_header_sh *h = s->hdr;
	uint64_t fill = (uint64_t)h->index_used + h->index_tombs + 1;
	uint64_t cur = (uint64_t)h->index_mask[h->index_active & 1] + 1;
	if ((fill * 2 > cur && cur < h->index_size) || fill * 4 > cur * 3) {
		/* The slot is live already, so the rebuild indexed it. */
		shm__index_rebuild(s);
		return;
	}
	uint32_t mask = h->index_mask[h->index_active & 1];
	uint64_t *ix = index_buf(s, h->index_active);
	uint32_t pos = (uint32_t)hash & mask;
	while (ix[pos] != 0 && ix[pos] != INDEX_TOMB)
		pos = (pos + 1) & mask;
	if (ix[pos] == INDEX_TOMB)
		h->index_tombs--;
	h->index_used++;
	ck_pr_fence_store();
	ck_pr_store_64(&ix[pos], entry_make(hash, slot));
}

/* (L) */
void shm__index_remove(shm_t *s, uint64_t hash, uint32_t slot)
{
	struct shm_header_sh *h = s->hdr;
	uint32_t mask = h->index_mask[h->index_active & 1];
	uint64_t *ix = index_buf(s, h->index_active);
	uint64_t want = entry_make(hash, slot);
	uint32_t pos = (uint32_t)hash & mask;
	for (uint32_t n = 0; n <= mask && ix[pos] != 0; n++, pos = (pos + 1) & mask) {
		if (ix[pos] == want) {
			ck_pr_store_64(&ix[pos], INDEX_TOMB);
			h->index_used--;
			h->index_tombs++;
			return;
		}
	}
}

/* (L) Rebuild from the live slots into the spare buffer, sized for the
 * live count, then flip. */
void shm__index_rebuild(shm_t *s)
{
	struct shm_header_sh *h = s->hdr;
	uint32_t spare = (h->index_active + 1) & 1;
	uint64_t *ix = index_buf(s, spare);
	uint32_t live = 0;
	for (uint32_t i = 0; i < h->slot_bump; i++)
		live += shm__slot(s, i)->state == SLOT_LIVE;
	uint32_t size = size_for(h, live + 1);
	/* shm__index_reserve backed this before the insert that could need
	 * it; should a repair still find less, a smaller (fuller) table that
	 * holds every key beats touching memory that is not there. */
	if (shm__reserve(s, SHM_SEC_INDEX0 + spare, sizeof(uint64_t) * size)) {
		uint64_t room = shm__reserved(s, SHM_SEC_INDEX0 + spare) / sizeof(uint64_t);
		while (size > SHM_INDEX_MIN && size > room && size / 2 > live)
			size /= 2;
		log_warn("%s: index buffer %u has memory for %llu entries; rebuilt with %u for %u "
		         "keys",
		         __func__, spare, (unsigned long long)room, size, live);
	}
	uint32_t mask = size - 1;
	ck_pr_store_32(&h->index_epoch, h->index_epoch + 1);
	ck_pr_fence_store();
	ck_pr_store_32(&h->index_mask[spare], mask);
	memset(ix, 0, sizeof(uint64_t) * (size_t)size);
	uint32_t used = 0;
	for (uint32_t i = 0; i < h->slot_bump; i++) {
		const struct shm_slot_sh *sl = shm__slot(s, i);
		if (sl->state != SLOT_LIVE)
			continue;
		uint32_t pos = (uint32_t)sl->hash & mask;
		while (ix[pos] != 0)
			pos = (pos + 1) & mask;
		ix[pos] = entry_make(sl->hash, i);
		used++;
	}
	h->index_used = used;
	h->index_tombs = 0;
	ck_pr_fence_store();
	ck_pr_store_32(&h->index_active, spare);
	ck_pr_fence_store();
	ck_pr_store_32(&h->index_epoch, h->index_epoch + 1);
}

/* For shm_check: count entries of the active buffer pointing at `slot`. */
int shm__index_count(shm_t *s, uint64_t hash, uint32_t slot)
{
	struct shm_header_sh *h = s->hdr;
	const uint64_t *ix = index_buf(s, h->index_active);
	uint32_t mask = h->index_mask[h->index_active & 1];
	uint64_t want = entry_make(hash, slot);
	int n = 0;
	uint32_t pos = (uint32_t)hash & mask;
	for (uint32_t k = 0; k <= mask && ix[pos] != 0; k++, pos = (pos + 1) & mask)
		if (ix[pos] == want)
			n++;
	return n;
}

/* (L) The first size of both buffers, at creation. */
void shm__index_init(shm_t *s)
{
	uint32_t mask = size_for(s->hdr, 0) - 1;
	s->hdr->index_mask[0] = s->hdr->index_mask[1] = mask;
}

/* The active buffer's entry count (for shm_check). */
uint32_t shm__index_entries(shm_t *s)
{
	return s->hdr->index_mask[s->hdr->index_active & 1] + 1;
}

/*
 * arena.c - the blob arena: variable-sized, immutable instance data.
 *
 * Blocks are multiples of SHM_BLOCK_ALIGN bytes, each starting with a
 * struct shm_blob_sh header; block size classes are exact (size / 64), so a
 * free list per class needs no splitting or merging.  New blocks come from
 * a bump pointer into sparse memory.  All of this is writer state (L).
 *
 * A replaced or removed blob is retired, not freed: change-log readers may
 * still follow a record to it.  The retire list is a FIFO in version order;
 * a retired blob returns to its free list once the change log has advanced
 * a whole ring past the change that retired it (that change's record, and
 * every older one, has then been overwritten).
 *
 * Repair rebuilds the free and retire lists by walking the blocks from the
 * start of the arena: the bump pointer only moves after a block's header is
 * written, so the walk always sees whole headers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shm_int.h"

static uint32_t block_size(size_t payload)
{
	size_t n = sizeof(struct shm_blob_sh) + payload;
	return (uint32_t)((n + SHM_BLOCK_ALIGN - 1) / SHM_BLOCK_ALIGN * SHM_BLOCK_ALIGN);
}

static struct shm_blob_sh *blob_at(shm_t *s, uint64_t off)
{
	return (struct shm_blob_sh *)(s->arena + off);
}

/* Bounds-checked for readers: a torn offset yields NULL, never a read
 * outside the mapping or of memory not reserved (the reservation keeps
 * SHM_MAX_BLOCK bytes past the bump pointer, so a whole block read from a
 * valid offset stays inside it). */
const struct shm_blob_sh *shm__blob_get(const shm_t *s, uint64_t off)
{
	if (off < SHM_ARENA_START || off % SHM_BLOCK_ALIGN ||
	    off + SHM_MAX_BLOCK > shm__reserved(s, SHM_SEC_ARENA))
		return NULL;
	return (const struct shm_blob_sh *)(s->arena + off);
}

const char *shm__blob_display(const struct shm_blob_sh *b)
{
	return (const char *)(b + 1) + b->key_len;
}

const char *shm__blob_json(const struct shm_blob_sh *b)
{
	return (const char *)(b + 1) + b->key_len + b->display_len;
}

/* (L) A block for `payload` bytes in *off: 0, -ENOSPC when the arena is
 * full, -ENOBUFS when there is no memory to grow it. */
int shm__blob_alloc(shm_t *s, size_t payload, uint64_t *out)
{
	struct shm_header_sh *h = s->hdr;
	uint32_t size = block_size(payload);
	if (size > SHM_MAX_BLOCK)
		return -ENOSPC;
	shm__blob_reclaim(s);
	uint32_t cls = size / SHM_BLOCK_ALIGN;
	uint64_t off = h->arena_free[cls];
	if (off) {
		h->arena_free[cls] = blob_at(s, off)->next;
	} else {
		off = h->arena_bump;
		if (off + size > h->arena_size)
			return -ENOSPC;
		int rc = shm__reserve(s, SHM_SEC_ARENA, off + size + SHM_MAX_BLOCK);
		if (rc)
			return rc;
		struct shm_blob_sh *b = blob_at(s, off);
		b->size = size;
		b->state = BLOB_FREE;
		ck_pr_fence_store();
		h->arena_bump = off + size;
	}
	struct shm_blob_sh *b = blob_at(s, off);
	b->state = BLOB_USED;
	b->next = 0;
	b->retire_version = 0;
	h->arena_used += size;
	*out = off;
	return 0;
}

static void blob_free(shm_t *s, uint64_t off)
{
	struct shm_header_sh *h = s->hdr;
	struct shm_blob_sh *b = blob_at(s, off);
	uint32_t cls = b->size / SHM_BLOCK_ALIGN;
	b->state = BLOB_FREE;
	b->next = h->arena_free[cls];
	h->arena_free[cls] = off;
	h->arena_used -= b->size;
}

/* (L) */
void shm__blob_retire(shm_t *s, uint64_t off, uint64_t version)
{
	struct shm_header_sh *h = s->hdr;
	struct shm_blob_sh *b = blob_at(s, off);
	b->state = BLOB_RETIRED;
	b->retire_version = version;
	b->next = 0;
	if (h->retire_tail)
		blob_at(s, h->retire_tail)->next = off;
	else
		h->retire_head = off;
	h->retire_tail = off;
}

/* (L) Free retired blobs whose change has left the change log. */
void shm__blob_reclaim(shm_t *s)
{
	struct shm_header_sh *h = s->hdr;
	uint64_t head = h->head;
	while (h->retire_head) {
		struct shm_blob_sh *b = blob_at(s, h->retire_head);
		if (b->retire_version + h->changelog_size > head)
			break;
		uint64_t off = h->retire_head;
		h->retire_head = b->next;
		if (!h->retire_head)
			h->retire_tail = 0;
		blob_free(s, off);
	}
}

struct retired {
	uint64_t version;
	uint64_t off;
};

static int cmp_retired(const void *a, const void *b)
{
	const struct retired *x = a, *y = b;
	if (x->version != y->version)
		return x->version < y->version ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

static bool owned_by_live_slot(shm_t *s, uint64_t off, const struct shm_blob_sh *b)
{
	if (b->owner >= s->hdr->max_instances)
		return false;
	const struct shm_slot_sh *sl = shm__slot(s, b->owner);
	return sl->state == SLOT_LIVE && sl->blob == off;
}

/* (L) Rebuild free lists, the retire FIFO and arena_used from the blocks. */
void shm__arena_rebuild(shm_t *s)
{
	struct shm_header_sh *h = s->hdr;
	memset(h->arena_free, 0, sizeof(h->arena_free));
	h->retire_head = h->retire_tail = 0;
	h->arena_used = 0;
	size_t nret = 0, cap = 0;
	struct retired *ret = NULL;
	uint64_t off = SHM_ARENA_START;
	while (off < h->arena_bump) {
		struct shm_blob_sh *b = blob_at(s, off);
		if (b->size < SHM_BLOCK_ALIGN || b->size > SHM_MAX_BLOCK ||
		    b->size % SHM_BLOCK_ALIGN || off + b->size > h->arena_bump) {
			/* A torn tail (cannot happen with ordered bumps): cut it. */
			h->arena_bump = off;
			break;
		}
		if (owned_by_live_slot(s, off, b)) {
			b->state = BLOB_USED;
			h->arena_used += b->size;
		} else if (b->state == BLOB_RETIRED &&
		           b->retire_version + h->changelog_size > h->head) {
			if (nret == cap) {
				size_t grown = cap ? cap * 2 : 1024;
				struct retired *n = realloc(ret, grown * sizeof(*ret));
				if (!n) {
					/* Out of memory while repairing: keep it
					 * retired but unlisted (leaked until the next
					 * repair) rather than free a blob a change-log
					 * reader may still follow. */
					h->arena_used += b->size;
					goto next;
				}
				ret = n;
				cap = grown;
			}
			ret[nret++] = (struct retired){b->retire_version, off};
		} else {
			h->arena_used += b->size; /* blob_free subtracts it */
			blob_free(s, off);
		}
	next:
		off += b->size;
	}
	if (nret)
		qsort(ret, nret, sizeof(*ret), cmp_retired);
	for (size_t i = 0; i < nret; i++) {
		shm__blob_retire(s, ret[i].off, ret[i].version);
		h->arena_used += blob_at(s, ret[i].off)->size;
	}
	free(ret);
}

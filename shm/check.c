/*
 * check.c - shm_check(): verify every invariant of the region.
 *
 * Tests call it after every crash scenario; the master after repairing;
 * `artemis check` on a read-only mapping.  On a writable handle it holds the
 * writer lock for a consistent view; on a read-only one it cannot lock, so it
 * retries while the change-log head moves under it.
 *
 * Invariants:
 *   header   magic, layout version, no write in progress (undo inactive),
 *            every section where the layout puts it, every high-water mark
 *            inside its section and inside the memory reserved for it
 *            (layout.c, shm__validate: checked first, so the walks below
 *            only touch pages that are backed)
 *   slots    live count; each live slot: even sequence, valid service,
 *            exactly one index entry, hash of its key, a USED blob it owns;
 *            each free slot on the free list exactly once
 *   index    used/tombstone counters; every entry names a live slot
 *   services each list: walk length == count, back links, members point
 *            back; sum of counts == live; even sequences; service index
 *            finds every entry
 *   arena    blocks tile [start, bump); free lists hold FREE blocks of the
 *            list's class; arena_used == used + retired bytes
 *   log      every record in (head - size + 1, head] carries its version
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shm_int.h"

struct chk {
	char *msg;
	size_t len;
	bool failed;
};

__attribute__((format(printf, 2, 3))) static bool fail(struct chk *c, const char *fmt, ...)
{
	if (c->failed)
		return false;
	c->failed = true;
	va_list ap;
	va_start(ap, fmt);
	if (c->msg && c->len)
		vsnprintf(c->msg, c->len, fmt, ap);
	va_end(ap);
	return false;
}

static bool slot_key(shm_t *s, const struct shm_slot_sh *sl, const char **k)
{
	if (sl->key_len > SHM_MAX_KEY)
		return false;
	if (sl->key_len <= SHM_KEY_INLINE) {
		*k = sl->key;
		return true;
	}
	const struct shm_blob_sh *b = shm__blob_get(s, sl->blob);
	if (!b || b->key_len != sl->key_len)
		return false;
	*k = (const char *)(b + 1);
	return true;
}

static bool check_slots(shm_t *s, struct chk *c)
{
	struct shm_header_sh *h = s->hdr;
	uint32_t live = 0;
	for (uint32_t i = 0; i < h->slot_bump; i++) {
		const struct shm_slot_sh *sl = shm__slot(s, i);
		if (sl->seq.sequence & 1)
			return fail(c, "slot %u: odd sequence %u", i, sl->seq.sequence);
		if (sl->state == SLOT_FREE)
			continue;
		if (sl->state != SLOT_LIVE)
			return fail(c, "slot %u: bad state %u", i, sl->state);
		live++;
		if (sl->svc >= h->svc_used)
			return fail(c, "slot %u: service %u out of range", i, sl->svc);
		const char *k;
		if (!slot_key(s, sl, &k))
			return fail(c, "slot %u: key not readable", i);
		if (shm__hash(k, sl->key_len) != sl->hash)
			return fail(c, "slot %u: hash does not match key", i);
		int n = shm__index_count(s, sl->hash, i);
		if (n != 1)
			return fail(c, "slot %u: %d index entries", i, n);
		const struct shm_blob_sh *b = shm__blob_get(s, sl->blob);
		if (!b || sl->blob >= h->arena_bump || b->state != BLOB_USED || b->owner != i)
			return fail(c, "slot %u: blob %llu not a used blob it owns", i,
			            (unsigned long long)sl->blob);
		size_t used = sizeof(*b) + (size_t)b->key_len + b->display_len +
		              (size_t)b->json_len + b->service_len;
		if (b->json_len == 0 || b->size > SHM_MAX_BLOCK || used > b->size ||
		    used != sl->blob_len)
			return fail(c, "slot %u: blob lengths exceed the block or disagree", i);
		const struct shm_service_sh *sv = &s->services[sl->svc];
		const char *name =
		    (const char *)(b + 1) + b->key_len + b->display_len + b->json_len;
		if (b->service_len != sv->name_len || memcmp(name, sv->name, sv->name_len) != 0)
			return fail(c, "slot %u: blob names another service than its list", i);
	}
	if (live != h->live)
		return fail(c, "live count %u, header says %u", live, h->live);
	uint32_t nfree = 0, id = h->slot_free;
	while (id != SHM_NONE) {
		if (id > h->slot_bump)
			return fail(c, "free list: slot %u out of range", id - 1);
		if (shm__slot(s, id - 1)->state != SLOT_FREE)
			return fail(c, "free list: slot %u is live", id - 1);
		if (++nfree > h->slot_bump)
			return fail(c, "free list: cycle");
		id = shm__slot(s, id - 1)->next_free;
	}
	if (nfree + live != h->slot_bump)
		return fail(c, "slots: %u free + %u live != %u used", nfree, live, h->slot_bump);
	return true;
}

static bool check_index(shm_t *s, struct chk *c)
{
	struct shm_header_sh *h = s->hdr;
	const uint64_t *ix =
	    (const uint64_t *)(s->base + h->sec[SHM_SEC_INDEX0 + (h->index_active & 1)].off);
	uint32_t used = 0, tombs = 0;
	uint32_t entries = shm__index_entries(s);
	if (entries > h->index_size || (entries & (entries - 1)))
		return fail(c, "index: %u entries in use of %u", entries, h->index_size);
	for (uint32_t i = 0; i < entries; i++) {
		uint64_t e = ix[i];
		if (e == 0)
			continue;
		if (e == UINT64_MAX) {
			tombs++;
			continue;
		}
		used++;
		uint32_t id = (uint32_t)e - 1;
		if (id >= h->slot_bump || shm__slot(s, id)->state != SLOT_LIVE)
			return fail(c, "index entry %u names slot %u, not live", i, id);
		if ((e >> 32) != (shm__slot(s, id)->hash >> 32))
			return fail(c, "index entry %u: hash tag mismatch", i);
	}
	if (used != h->index_used || tombs != h->index_tombs)
		return fail(c, "index counts %u/%u, header says %u/%u", used, tombs, h->index_used,
		            h->index_tombs);
	if (used != h->live)
		return fail(c, "index holds %u entries for %u live slots", used, h->live);
	return true;
}

static bool check_services(shm_t *s, struct chk *c)
{
	struct shm_header_sh *h = s->hdr;
	uint64_t total = 0;
	uint32_t empty = 0;
	for (uint32_t i = 0; i < h->svc_used; i++) {
		const struct shm_service_sh *sv = &s->services[i];
		if (sv->seq.sequence & 1)
			return fail(c, "service %u: odd sequence", i);
		if (sv->name_len == 0 || sv->name_len > SHM_MAX_SERVICE)
			return fail(c, "service %u: name length %u", i, sv->name_len);
		empty += sv->count == 0;
		uint32_t n = 0, prev = SHM_NONE, id = sv->head;
		while (id != SHM_NONE) {
			if (id > h->slot_bump)
				return fail(c, "service %u: list slot out of range", i);
			const struct shm_slot_sh *sl = shm__slot(s, id - 1);
			if (sl->state != SLOT_LIVE || sl->svc != i)
				return fail(c, "service %u: slot %u listed but not a member", i,
				            id - 1);
			if (sl->svc_prev != prev)
				return fail(c, "service %u: broken back link at slot %u", i,
				            id - 1);
			if (++n > sv->count)
				return fail(c, "service %u: list longer than count %u", i,
				            sv->count);
			prev = id;
			id = sl->svc_next;
		}
		if (n != sv->count)
			return fail(c, "service %u: list %u != count %u", i, n, sv->count);
		total += n;
		uint32_t found;
		shm_str_t name = {sv->name, sv->name_len};
		if (shm__service_get(s, name, false, &found) || found != i)
			return fail(c, "service %u: not found through the service index", i);
	}
	if (total != h->live)
		return fail(c, "services list %llu instances, %u live", (unsigned long long)total,
		            h->live);
	if (empty != h->svc_empty)
		return fail(c, "%u services are empty, header says %u", empty, h->svc_empty);
	/* Each entry once in the service index (found above), nothing else
	 * but empty slots and tombstones of renamed entries. */
	uint32_t listed = 0, tombs = 0;
	for (uint32_t pos = 0; pos < h->svc_index_size; pos++) {
		uint32_t e = s->svc_index[pos];
		tombs += e == UINT32_MAX;
		if (e == 0 || e == UINT32_MAX)
			continue;
		if (e > h->svc_used)
			return fail(c, "service index slot %u names entry %u of %u", pos, e - 1,
			            h->svc_used);
		listed++;
	}
	if (listed != h->svc_used)
		return fail(c, "service index lists %u entries, %u in use", listed, h->svc_used);
	if (tombs != h->svc_tombs)
		return fail(c, "service index holds %u tombstones, header says %u", tombs,
		            h->svc_tombs);
	return true;
}

static bool check_arena(shm_t *s, struct chk *c)
{
	struct shm_header_sh *h = s->hdr;
	uint64_t used = 0, off = SHM_ARENA_START, nfree_blocks = 0;
	while (off < h->arena_bump) {
		const struct shm_blob_sh *b = (const struct shm_blob_sh *)(s->arena + off);
		if (b->size < SHM_BLOCK_ALIGN || b->size > SHM_MAX_BLOCK ||
		    b->size % SHM_BLOCK_ALIGN || off + b->size > h->arena_bump)
			return fail(c, "arena: bad block size %u at %llu", b->size,
			            (unsigned long long)off);
		if (b->state == BLOB_USED || b->state == BLOB_RETIRED)
			used += b->size;
		else if (b->state == BLOB_FREE)
			nfree_blocks++;
		else
			return fail(c, "arena: bad block state at %llu", (unsigned long long)off);
		off += b->size;
	}
	if (used != h->arena_used)
		return fail(c, "arena: %llu bytes in use, header says %llu",
		            (unsigned long long)used, (unsigned long long)h->arena_used);
	uint64_t listed = 0;
	for (uint32_t cls = 0; cls < SHM_NCLASSES; cls++) {
		for (uint64_t f = h->arena_free[cls]; f;
		     f = ((struct shm_blob_sh *)(s->arena + f))->next) {
			const struct shm_blob_sh *b = shm__blob_get(s, f);
			if (!b || f >= h->arena_bump || b->state != BLOB_FREE ||
			    b->size / SHM_BLOCK_ALIGN != cls)
				return fail(c, "arena: free list %u holds a bad block", cls);
			if (++listed > nfree_blocks)
				return fail(c, "arena: free lists longer than free blocks");
		}
	}
	if (listed != nfree_blocks)
		return fail(c, "arena: %llu free blocks, %llu listed",
		            (unsigned long long)nfree_blocks, (unsigned long long)listed);
	return true;
}

static bool check_log(shm_t *s, struct chk *c)
{
	struct shm_header_sh *h = s->hdr;
	uint64_t size = h->changelog_size;
	/* The oldest record may be mid-overwrite by the next append (or by
	 * one rolled back by repair): it is outside what readers may use. */
	uint64_t from = h->head > size - 1 ? h->head - size + 2 : 1;
	for (uint64_t v = from; v <= h->head; v++) {
		const struct shm_change_sh *r = &s->changes[v & (size - 1)];
		if (r->version != v)
			return fail(c, "change log: record of version %llu holds %llu",
			            (unsigned long long)v, (unsigned long long)r->version);
		if (r->type < SHM_CHANGE_NEW || r->type > SHM_CHANGE_RELOAD)
			return fail(c, "change log: version %llu has bad type %u",
			            (unsigned long long)v, r->type);
	}
	return true;
}

static bool check_header(shm_t *s, struct chk *c)
{
	struct shm_header_sh *h = s->hdr;
	char why[200];
	int rc = shm__validate(h, s->size, true, why, sizeof(why));
	if (rc == -EBADMSG)
		return fail(c, "header: %s", why);
	if (rc)
		return fail(c, "header: bad magic, layout version or size");
	if (h->undo.active)
		return fail(c, "header: a write is in progress or was interrupted (undo active)");
	return true;
}

static bool check_all(shm_t *s, struct chk *c)
{
	return check_header(s, c) && check_slots(s, c) && check_index(s, c) &&
	       check_services(s, c) && check_arena(s, c) && check_log(s, c);
}

int shm_check(shm_t *s, char *msg, size_t msg_len)
{
	struct chk c = {msg, msg_len, false};
	if (msg && msg_len)
		msg[0] = '\0';
	if (!s->read_only) {
		int rc = shm__lock(s);
		if (rc < 0)
			return rc;
		bool ok = check_all(s, &c);
		shm__unlock(s);
		return ok ? 0 : -EIO;
	}
	/* Read-only: no lock; accept a pass over a quiet region. */
	for (int attempt = 0; attempt < 20; attempt++) {
		uint64_t head = ck_pr_load_64(&s->hdr->head);
		c.failed = false;
		bool ok = check_all(s, &c);
		ck_pr_fence_load();
		if (ok)
			return 0;
		if (ck_pr_load_64(&s->hdr->head) == head && !s->hdr->undo.active)
			return -EIO;
	}
	return -EIO;
}

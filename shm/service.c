/*
 * service.c - the service table and whole-service reads.
 *
 * Services are keyed by their exact-case serviceId (API.md §8 trap 6: the
 * per-service map, lookup and subscriptions are exact-case; only the lease
 * identity ignores case).  An entry whose count drops to 0 stays (discovery
 * treats it as absent) until the table is full; then a new name takes over
 * an empty entry, renamed inside its sequence.  Nothing else holds an
 * entry's index across time but the change log, whose records take their
 * service name from the instance blob they carry (changelog.c); a `reload`
 * record carries none, so an entry is not renamed while one of its reloads
 * is still in the log.  A reader that found an entry by name checks the
 * name again under the sequence (read_once, read_entry,
 * shm__service_members), so it never lists another service's instances
 * under a name.  hdr->svc_empty counts the empty entries, so a full table
 * with none is refused without a scan, and a scan for one starts where the
 * last ended.
 *
 * The service index (svc_index) maps name hash -> entry + 1, published
 * after the entry; a renamed entry's old slot becomes SVC_TOMB, which
 * probes pass and inserts reuse.  When tombstones fill a quarter of it, it
 * is rebuilt in place with hdr->svc_index_epoch odd meanwhile: a reader
 * that found nothing retries when the epoch moved or was odd.
 *
 * A service's instances form a doubly linked list through the slots
 * (svc_next / svc_prev).  Every change to the list, the count, or to any
 * listed slot's blob happens inside the service's sequence, so a reader
 * that walks the list and copies each blob between two equal even reads of
 * the sequence has a consistent snapshot.  The walk is bounded by the
 * count it read and every slot id is range-checked.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shm_int.h"

#define SVC_TOMB UINT32_MAX

static uint64_t name_hash(shm_str_t name)
{
	return shm__hash(name.ptr, name.len);
}

static bool name_is(const struct shm_service_sh *sv, shm_str_t name)
{
	return ck_pr_load_32((uint32_t *)&sv->name_len) == name.len &&
	       memcmp(sv->name, name.ptr, name.len) == 0;
}

/* One probe of the service index: entry index of the exact name, or
 * -ENOENT. */
static int probe(shm_t *s, shm_str_t name, uint64_t hash, uint32_t *idx)
{
	struct shm_header_sh *h = s->hdr;
	uint32_t mask = h->svc_index_size - 1;
	uint32_t used = ck_pr_load_32(&h->svc_used);
	uint32_t pos = (uint32_t)hash & mask;
	for (uint32_t n = 0; n <= mask; n++, pos = (pos + 1) & mask) {
		uint32_t e = ck_pr_load_32(&s->svc_index[pos]);
		if (e == 0)
			return -ENOENT;
		ck_pr_fence_load();
		uint32_t i = e - 1;
		if (e == SVC_TOMB || i >= used)
			continue;
		const struct shm_service_sh *sv = &s->services[i];
		if (sv->hash == hash && sv->name_len == name.len &&
		    memcmp(sv->name, name.ptr, name.len) == 0) {
			*idx = i;
			return 0;
		}
	}
	return -ENOENT;
}

/* Lock-free: entry index of the exact name, -ENOENT, or -EBUSY when the
 * index was rebuilt under every try. */
static int service_find(shm_t *s, shm_str_t name, uint64_t hash, uint32_t *idx)
{
	uint32_t *ep = &s->hdr->svc_index_epoch;
	for (unsigned attempt = 0; attempt < SHM_READ_RETRIES; attempt++) {
		uint32_t epoch = ck_pr_load_32(ep);
		ck_pr_fence_load();
		if (!(epoch & 1)) {
			if (probe(s, name, hash, idx) == 0)
				return 0;
			ck_pr_fence_load();
			if (ck_pr_load_32(ep) == epoch)
				return -ENOENT;
		}
		shm__stall(attempt);
	}
	return -EBUSY;
}

/* (L) Publish entry i under `hash` in the service index. */
static void index_put(shm_t *s, uint64_t hash, uint32_t i)
{
	uint32_t mask = s->hdr->svc_index_size - 1;
	uint32_t pos = (uint32_t)hash & mask;
	while (s->svc_index[pos] != 0 && s->svc_index[pos] != SVC_TOMB)
		pos = (pos + 1) & mask;
	if (s->svc_index[pos] == SVC_TOMB)
		s->hdr->svc_tombs--;
	ck_pr_store_32(&s->svc_index[pos], i + 1);
}

/* (L) Rebuild the service index in place from the entries (after repair,
 * or when tombstones fill a quarter of it). */
static void index_rebuild(shm_t *s)
{
	struct shm_header_sh *h = s->hdr;
	ck_pr_store_32(&h->svc_index_epoch, h->svc_index_epoch | 1);
	ck_pr_fence_store();
	memset(s->svc_index, 0, sizeof(uint32_t) * (size_t)h->svc_index_size);
	h->svc_tombs = 0;
	for (uint32_t i = 0; i < h->svc_used; i++)
		index_put(s, s->services[i].hash, i);
	ck_pr_fence_store();
	ck_pr_store_32(&h->svc_index_epoch, (h->svc_index_epoch | 1) + 1);
}

/* (L) An empty entry a new name may take over: no instance, and no
 * `reload` of it left in the change log (its record names the service only
 * through the entry).  -ENOSPC if none. */
static int reclaimable(shm_t *s, uint32_t *idx)
{
	struct shm_header_sh *h = s->hdr;
	if (h->svc_empty == 0 || h->svc_used == 0)
		return -ENOSPC;
	uint32_t i = h->svc_cursor < h->svc_used ? h->svc_cursor : 0;
	for (uint32_t n = 0; n < h->svc_used; n++, i = i + 1 < h->svc_used ? i + 1 : 0) {
		const struct shm_service_sh *sv = &s->services[i];
		if (sv->count == 0 && sv->head == SHM_NONE &&
		    (!sv->reload_version || h->head >= sv->reload_version + h->changelog_size)) {
			*idx = i;
			h->svc_cursor = i + 1;
			return 0;
		}
	}
	return -ENOSPC;
}

/* (L) Rename empty entry i to `name`: its index slot becomes a tombstone,
 * the name changes inside its sequence, then the new name is published. */
static void rename_entry(shm_t *s, uint32_t i, shm_str_t name, uint64_t hash)
{
	struct shm_service_sh *sv = &s->services[i];
	uint32_t mask = s->hdr->svc_index_size - 1;
	uint32_t pos = (uint32_t)sv->hash & mask;
	for (uint32_t n = 0; n <= mask && s->svc_index[pos] != 0; n++, pos = (pos + 1) & mask) {
		if (s->svc_index[pos] == i + 1) {
			ck_pr_store_32(&s->svc_index[pos], SVC_TOMB);
			s->hdr->svc_tombs++;
			break;
		}
	}
	ck_sequence_write_begin(&sv->seq);
	memset(sv->name, 0, sizeof(sv->name));
	memcpy(sv->name, name.ptr, name.len);
	sv->name_len = (uint32_t)name.len;
	sv->hash = hash;
	sv->reload_version = 0;
	ck_sequence_write_end(&sv->seq);
	if (s->hdr->svc_tombs > s->hdr->svc_index_size / 4)
		index_rebuild(s);
	else
		index_put(s, hash, i);
}

/* (L when create) */
int shm__service_get(shm_t *s, shm_str_t name, bool create, uint32_t *idx)
{
	if (name.len == 0 || name.len > SHM_MAX_SERVICE)
		return -EINVAL;
	uint64_t hash = name_hash(name);
	int rc = service_find(s, name, hash, idx);
	if (rc == 0 || !create)
		return rc;
	if (rc != -ENOENT)
		return rc;
	struct shm_header_sh *h = s->hdr;
	if (h->svc_used >= h->max_services) {
		if ((rc = reclaimable(s, idx)))
			return rc;
		rename_entry(s, *idx, name, hash);
		return 0;
	}
	uint32_t i = h->svc_used;
	rc = shm__reserve(s, SHM_SEC_SERVICES, (uint64_t)(i + 1) * sizeof(struct shm_service_sh));
	if (rc)
		return rc;
	struct shm_service_sh *sv = &s->services[i];
	memset(sv, 0, sizeof(*sv));
	memcpy(sv->name, name.ptr, name.len);
	sv->name_len = (uint32_t)name.len;
	sv->hash = hash;
	ck_pr_fence_store();
	ck_pr_store_32(&h->svc_used, i + 1);
	h->svc_empty++;
	index_put(s, hash, i);
	*idx = i;
	return 0;
}

/* (L) inside the service's and the slot's sequence */
void shm__service_link(shm_t *s, uint32_t svc, uint32_t slot)
{
	struct shm_service_sh *sv = &s->services[svc];
	struct shm_slot_sh *sl = shm__slot(s, slot);
	sl->svc = svc;
	sl->svc_prev = SHM_NONE;
	sl->svc_next = sv->head;
	if (sv->head != SHM_NONE)
		shm__slot(s, sv->head - 1)->svc_prev = slot + 1;
	sv->head = slot + 1;
	if (sv->count++ == 0)
		s->hdr->svc_empty--;
}

/* (L) inside the service's and the slot's sequence */
void shm__service_unlink(shm_t *s, uint32_t svc, uint32_t slot)
{
	struct shm_service_sh *sv = &s->services[svc];
	struct shm_slot_sh *sl = shm__slot(s, slot);
	if (sl->svc_prev != SHM_NONE)
		shm__slot(s, sl->svc_prev - 1)->svc_next = sl->svc_next;
	else
		sv->head = sl->svc_next;
	if (sl->svc_next != SHM_NONE)
		shm__slot(s, sl->svc_next - 1)->svc_prev = sl->svc_prev;
	sl->svc_next = sl->svc_prev = SHM_NONE;
	if (sv->count && --sv->count == 0)
		s->hdr->svc_empty++;
}

/* (L) Recompute every list and count from the live slots. */
void shm__services_rebuild(shm_t *s)
{
	struct shm_header_sh *h = s->hdr;
	if (h->svc_used > h->max_services)
		h->svc_used = h->max_services;
	for (uint32_t i = 0; i < h->svc_used; i++) {
		struct shm_service_sh *sv = &s->services[i];
		unsigned v = sv->seq.sequence;
		ck_pr_store_uint(&sv->seq.sequence, v | 1);
	}
	ck_pr_fence_store();
	for (uint32_t i = 0; i < h->svc_used; i++) {
		s->services[i].head = SHM_NONE;
		s->services[i].count = 0;
	}
	h->svc_empty = h->svc_used;
	for (uint32_t i = 0; i < h->slot_bump; i++) {
		struct shm_slot_sh *sl = shm__slot(s, i);
		if (sl->state != SLOT_LIVE)
			continue;
		if (sl->svc >= h->svc_used) {
			/* Cannot happen: a live slot names a published service. */
			sl->state = SLOT_FREE;
			continue;
		}
		shm__service_link(s, sl->svc, i);
	}
	/* The version moves so response caches keyed by it are refreshed. */
	uint64_t head = h->head;
	ck_pr_fence_store();
	for (uint32_t i = 0; i < h->svc_used; i++) {
		struct shm_service_sh *sv = &s->services[i];
		sv->version = head;
		ck_pr_store_uint(&sv->seq.sequence, (sv->seq.sequence | 1) + 1);
	}
	/* The service index is rebuilt too (a creation may have died between
	 * publishing the entry and its index slot, or a rebuild half-way). */
	index_rebuild(s);
}

/* Copy one slot's JSON into out, after a comma when `comma`, unless keep
 * leaves it out (reader side; validated by the caller's sequence check).
 * 1 listed, 0 left out, -EAGAIN for a blob that is not readable (torn),
 * -ENOMEM, or keep's error. */
static int copy_json(shm_t *s, const struct shm_slot_sh *sl, buf_t *out, bool comma,
                     shm_keep_fn keep, void *ctx)
{
	const struct shm_blob_sh *b = shm__blob_get(s, ck_pr_load_64(&sl->blob));
	if (!b)
		return -EAGAIN;
	uint32_t jl = ck_pr_load_32(&b->json_len);
	uint32_t skip = (uint32_t)ck_pr_load_16(&b->key_len) + ck_pr_load_16(&b->display_len);
	if (jl == 0 || jl > SHM_MAX_JSON || skip + jl + sizeof(*b) > SHM_MAX_BLOCK)
		return -EAGAIN;
	if (keep) {
		uint64_t tags[SHM_TAGS];
		memcpy(tags, b->tags, sizeof(tags));
		int k = keep(ctx, tags);
		if (k <= 0)
			return k;
	}
	if ((comma && buf_append(out, ",", 1)) || buf_append(out, (const char *)(b + 1) + skip, jl))
		return -ENOMEM;
	return 1;
}

static int read_once(shm_t *s, const struct shm_service_sh *sv, shm_str_t name, buf_t *out,
                     size_t start, shm_service_info_t *info, shm_keep_fn keep, void *ctx)
{
	unsigned v = ck_pr_load_uint(&sv->seq.sequence);
	ck_pr_fence_load();
	if (v & 1)
		return -EAGAIN;
	uint32_t count = ck_pr_load_32(&sv->count);
	uint64_t version = ck_pr_load_64(&sv->version);
	out->len = start;
	if (count == 0 || !name_is(sv, name)) { /* empty, or renamed since found */
		if (ck_sequence_read_retry(&sv->seq, v))
			return -EAGAIN;
		return -ENOENT;
	}
	uint32_t max = s->hdr->max_instances;
	uint32_t id = ck_pr_load_32(&sv->head);
	uint32_t n = 0, listed = 0;
	if (buf_append(out, "[", 1))
		return -ENOMEM;
	while (id != SHM_NONE && n < count) {
		if (id > max)
			return -EAGAIN;
		const struct shm_slot_sh *sl = shm__slot(s, id - 1);
		int r = copy_json(s, sl, out, listed > 0, keep, ctx);
		if (r < 0) {
			if (ck_sequence_read_retry(&sv->seq, v))
				return -EAGAIN;
			return r == -EAGAIN ? -ENOMEM : r;
		}
		listed += (uint32_t)r;
		n++;
		id = ck_pr_load_32(&sl->svc_next);
	}
	if (buf_append(out, "]", 1))
		return -ENOMEM;
	if (ck_sequence_read_retry(&sv->seq, v) || n != count || id != SHM_NONE)
		return -EAGAIN;
	if (info) {
		info->version = version;
		info->count = listed;
	}
	return 0;
}

int shm_service_read_filtered(shm_t *s, shm_str_t name, buf_t *out, shm_service_info_t *info,
                              shm_keep_fn keep, void *ctx)
{
	uint32_t idx;
	if (name.len == 0 || name.len > SHM_MAX_SERVICE)
		return -ENOENT;
	int found = service_find(s, name, name_hash(name), &idx);
	if (found)
		return found;
	const struct shm_service_sh *sv = &s->services[idx];
	size_t start = out->len;
	for (unsigned attempt = 0; attempt < SHM_READ_RETRIES; attempt++) {
		int rc = read_once(s, sv, name, out, start, info, keep, ctx);
		if (rc != -EAGAIN) {
			if (rc)
				out->len = start;
			if (out->data)
				out->data[out->len] = '\0';
			return rc;
		}
		shm__stall(attempt);
	}
	out->len = start;
	return -EBUSY;
}

int shm_service_read(shm_t *s, shm_str_t name, buf_t *out, shm_service_info_t *info)
{
	return shm_service_read_filtered(s, name, out, info, NULL, NULL);
}

/* A service's version, count and name (copied NUL-terminated into `name`,
 * SHM_MAX_SERVICE + 1 bytes), read under its sequence: an entry may be
 * renamed between finding it and reading it, or while the table is walked. */
static int read_entry(const struct shm_service_sh *sv, shm_service_info_t *info, char *name,
                      uint32_t *len)
{
	for (unsigned attempt = 0; attempt < SHM_READ_RETRIES; attempt++) {
		unsigned v = ck_pr_load_uint(&sv->seq.sequence);
		ck_pr_fence_load();
		info->version = ck_pr_load_64((uint64_t *)&sv->version);
		info->count = ck_pr_load_32((uint32_t *)&sv->count);
		*len = ck_pr_load_32((uint32_t *)&sv->name_len);
		if (*len > SHM_MAX_SERVICE)
			*len = 0;
		memcpy(name, sv->name, *len);
		name[*len] = '\0';
		if (!(v & 1) && !ck_sequence_read_retry(&sv->seq, v))
			return 0;
		shm__stall(attempt);
	}
	return -EBUSY;
}

int shm_service_info(shm_t *s, shm_str_t name, shm_service_info_t *info)
{
	uint32_t idx;
	if (name.len == 0 || name.len > SHM_MAX_SERVICE)
		return -ENOENT;
	int found = service_find(s, name, name_hash(name), &idx);
	if (found)
		return found;
	char copy[SHM_MAX_SERVICE + 1];
	uint32_t len;
	int rc = read_entry(&s->services[idx], info, copy, &len);
	if (rc)
		return rc;
	if (len != name.len || memcmp(copy, name.ptr, len) != 0)
		info->count = 0; /* renamed since it was found */
	return info->count ? 0 : -ENOENT;
}

int shm_services_foreach(shm_t *s, shm_service_fn fn, void *ctx)
{
	uint32_t used = ck_pr_load_32(&s->hdr->svc_used);
	if (used > s->hdr->max_services)
		used = s->hdr->max_services;
	ck_pr_fence_load();
	for (uint32_t i = 0; i < used; i++) {
		const struct shm_service_sh *sv = &s->services[i];
		shm_service_info_t info = {0};
		char copy[SHM_MAX_SERVICE + 1];
		uint32_t len;
		if (read_entry(sv, &info, copy, &len))
			return -EBUSY;
		if (!info.count)
			continue;
		int rc = fn(ctx, copy, len, &info);
		if (rc)
			return rc;
	}
	return 0;
}

/* The slot ids listed by a service at one instant (a malloc'd array the
 * caller frees), for walks of one service that must not visit every slot.
 * 0 (with *n possibly 0), -ENOENT for an unknown service, -EBUSY, -ENOMEM. */
int shm__service_members(shm_t *s, shm_str_t name, uint32_t **ids, uint32_t *n)
{
	uint32_t idx;
	*ids = NULL;
	*n = 0;
	if (name.len == 0 || name.len > SHM_MAX_SERVICE)
		return -ENOENT;
	int found = service_find(s, name, name_hash(name), &idx);
	if (found)
		return found;
	const struct shm_service_sh *sv = &s->services[idx];
	uint32_t max = s->hdr->max_instances, cap = 0;
	uint32_t *out = NULL;
	for (unsigned attempt = 0; attempt < SHM_READ_RETRIES; attempt++) {
		unsigned v = ck_pr_load_uint(&sv->seq.sequence);
		ck_pr_fence_load();
		uint32_t count = ck_pr_load_32((uint32_t *)&sv->count);
		if (!(v & 1) && !name_is(sv, name) && !ck_sequence_read_retry(&sv->seq, v)) {
			free(out); /* renamed since it was found: gone */
			return -ENOENT;
		}
		if (!(v & 1) && count <= max) {
			if (count > cap) {
				uint32_t *grown = realloc(out, sizeof(*out) * count);
				if (!grown) {
					free(out);
					return -ENOMEM;
				}
				out = grown;
				cap = count;
			}
			uint32_t k = 0, id = ck_pr_load_32((uint32_t *)&sv->head);
			while (id != SHM_NONE && id <= max && k < count) {
				out[k++] = id - 1;
				id = ck_pr_load_32(&shm__slot(s, id - 1)->svc_next);
			}
			if (!ck_sequence_read_retry(&sv->seq, v) && k == count && id == SHM_NONE) {
				*ids = out;
				*n = k;
				return 0;
			}
		}
		shm__stall(attempt);
	}
	free(out);
	return -EBUSY;
}

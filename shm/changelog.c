/*
 * changelog.c - the change log: a ring of fixed-size records indexed by a
 * global 64-bit version (Varnish's shared-memory log is the model).
 *
 * The writer (under the lock) never waits for readers.  To append version v
 * it first zeroes the record's version (the slot held v - size), fences,
 * fills the fields, fences, stores v, then advances hdr->head to v: the head
 * moving is the commit point of the whole write op (see lock.c).
 *
 * Each reader keeps its own cursor.  It reads a record whose version equals
 * its cursor, copies it (and the blob it names), and re-reads the version:
 * unchanged means the copy is whole, because a blob is reused only after
 * its record has been overwritten (arena.c).  A cursor more than a ring
 * behind the head was overrun: the reader is told (-EOVERFLOW) and
 * resynchronises from a snapshot.  Workers (push), the replicator and
 * incremental discovery all read this one log.
 *
 * A record names its service by table index, and an empty service entry may
 * be renamed for a new service (service.c).  So the name a reader reports
 * comes from the record's blob (every `new` and `delete` has one: the
 * instance's, which holds its serviceId and stays until the record is
 * overwritten); only a `reload` has none, and an entry is not renamed while
 * one of its reloads is in the log.  A record that stays put while it is
 * read but names no valid service or blob is corrupt: the reader is told
 * (-EIO), once, and moved past it.
 */
#include <errno.h>
#include <string.h>

#include "artemis/clock.h"
#include "artemis/log.h"

#include "shm_int.h"

/* (L) Memory for the next n records (the ring is backed as it first
 * fills; once it has wrapped, all of it is). */
int shm__change_reserve(shm_t *s, uint32_t n)
{
	struct shm_header_sh *h = s->hdr;
	uint64_t records = h->head + 1 + n;
	if (records > h->changelog_size)
		records = h->changelog_size;
	return shm__reserve(s, SHM_SEC_CHANGELOG, records * sizeof(struct shm_change_sh));
}

/* (L) Returns the new version.  Also the commit point of the caller's op. */
uint64_t shm__change_append(shm_t *s, uint8_t type, uint8_t reason, uint8_t origin,
                            uint64_t origin_ms, uint32_t svc, uint32_t slot, uint64_t blob)
{
	struct shm_header_sh *h = s->hdr;
	uint64_t v = h->head + 1;
	struct shm_change_sh *r = &s->changes[v & (h->changelog_size - 1)];
	ck_pr_store_64(&r->version, 0);
	ck_pr_fence_store();
	r->time_ms = clock_wall_ms();
	r->origin_ms = origin_ms;
	r->blob = blob;
	r->svc = svc;
	r->slot = slot;
	r->type = type;
	r->reason = reason;
	r->origin = origin;
	if (svc < h->max_services)
		s->services[svc].version = v;
	ck_pr_fence_store();
	ck_pr_store_64(&r->version, v);
	ck_pr_fence_store();
	ck_pr_store_64(&h->head, v);
	return v;
}

uint64_t shm_head_version(const shm_t *s)
{
	return ck_pr_load_64(&s->hdr->head);
}

void shm_cursor_init(shm_t *s, shm_cursor_t *cur)
{
	cur->next = shm_head_version(s) + 1;
}

/* The record's service name: from its blob, or for a reload from the
 * service entry.  False when neither is valid. */
static bool record_service(shm_t *s, const struct shm_change_sh *r, uint64_t blob_off, char *out)
{
	out[0] = '\0';
	if (blob_off) {
		const struct shm_blob_sh *b = shm__blob_get(s, blob_off);
		if (!b)
			return false;
		uint32_t nl = b->service_len,
		         skip = (uint32_t)b->key_len + b->display_len + b->json_len;
		if (nl == 0 || nl > SHM_MAX_SERVICE || skip + nl + sizeof(*b) > SHM_MAX_BLOCK)
			return false;
		memcpy(out, (const char *)(b + 1) + skip, nl);
		out[nl] = '\0';
		return true;
	}
	uint32_t svc = r->svc;
	if (svc >= ck_pr_load_32(&s->hdr->svc_used))
		return false;
	const struct shm_service_sh *sv = &s->services[svc];
	uint32_t n = ck_pr_load_32((uint32_t *)&sv->name_len);
	if (n == 0 || n > SHM_MAX_SERVICE)
		return false;
	memcpy(out, sv->name, n);
	out[n] = '\0';
	return true;
}

static int copy_blob_json(shm_t *s, uint64_t off, buf_t *json, uint64_t *tags)
{
	const struct shm_blob_sh *b = shm__blob_get(s, off);
	if (!b)
		return -EIO;
	uint32_t jl = b->json_len;
	uint32_t skip = (uint32_t)b->key_len + b->display_len;
	if (jl == 0 || jl > SHM_MAX_JSON || skip + jl + sizeof(*b) > SHM_MAX_BLOCK)
		return -EIO;
	memcpy(tags, b->tags, sizeof(b->tags));
	return buf_append(json, shm__blob_json(b), jl) ? -ENOMEM : 0;
}

/* Copy record r (version v) into out and json; -EIO when it is not a valid
 * record, -ENOMEM.  The caller re-reads the version after. */
static int copy_record(shm_t *s, const struct shm_change_sh *r, shm_change_t *out, buf_t *json,
                       size_t start)
{
	out->time_ms = r->time_ms;
	out->origin_ms = r->origin_ms;
	out->type = r->type;
	out->reason = r->reason;
	out->origin = r->origin;
	memset(out->tags, 0, sizeof(out->tags));
	uint64_t blob = ck_pr_load_64((uint64_t *)&r->blob);
	bool needs_blob = out->type == SHM_CHANGE_NEW || out->type == SHM_CHANGE_DELETE;
	if (out->type < SHM_CHANGE_NEW || out->type > SHM_CHANGE_RELOAD ||
	    needs_blob != (blob != 0))
		return -EIO;
	if (!record_service(s, r, blob, out->service))
		return -EIO;
	if (!json)
		return 0;
	json->len = start;
	return blob ? copy_blob_json(s, blob, json, out->tags) : 0;
}

int shm_changes_next(shm_t *s, shm_cursor_t *cur, shm_change_t *out, buf_t *json)
{
	struct shm_header_sh *h = s->hdr;
	uint64_t size = h->changelog_size;
	size_t start = json ? json->len : 0;
	for (unsigned attempt = 0; attempt < SHM_READ_RETRIES; attempt++) {
		uint64_t head = ck_pr_load_64(&h->head);
		ck_pr_fence_load();
		if (cur->next > head)
			return -EAGAIN;
		/* The oldest record of the ring is the one the next append
		 * overwrites: it counts as gone already. */
		if (head - cur->next >= size - 1) {
			cur->next = head - size + 2;
			return -EOVERFLOW;
		}
		const struct shm_change_sh *r = &s->changes[cur->next & (size - 1)];
		uint64_t v = ck_pr_load_64((uint64_t *)&r->version);
		ck_pr_fence_load();
		if (v != cur->next) {
			if (v > cur->next) {
				cur->next = ck_pr_load_64(&h->head) - size + 2;
				return -EOVERFLOW;
			}
			shm__stall(attempt);
			continue;
		}
		out->version = v;
		int rc = copy_record(s, r, out, json, start);
		ck_pr_fence_load();
		if (ck_pr_load_64((uint64_t *)&r->version) != v)
			continue;
		if (rc == -ENOMEM)
			return rc;
		cur->next = v + 1;
		if (rc == -EIO) {
			if (json)
				json->len = start;
			log_error("%s: change-log record %llu of region %s is corrupt (type %u, "
			          "service %u, blob %llu); skipped",
			          __func__, (unsigned long long)v, h->name, r->type, r->svc,
			          (unsigned long long)r->blob);
		}
		return rc;
	}
	return -EBUSY;
}

/* Emit a `reload` change for a service (management, repair). */
int shm_emit_reload(shm_t *s, shm_str_t service)
{
	uint32_t svc;
	int rc = shm__lock(s);
	if (rc < 0)
		return rc;
	rc = shm__change_reserve(s, 1);
	if (rc == 0)
		rc = shm__service_get(s, service, true, &svc);
	if (rc == 0) {
		struct shm_service_sh *sv = &s->services[svc];
		ck_sequence_write_begin(&sv->seq);
		sv->reload_version = shm__change_append(s, SHM_CHANGE_RELOAD, SHM_DEL_NONE, 0, 0,
		                                        svc, UINT32_MAX, 0);
		ck_sequence_write_end(&sv->seq);
	}
	shm__unlock(s);
	return rc;
}

/* ---- Management notices (shm.h) ------------------------------------------- */

#define NOTIFY_BATCH 256 /* notices per lock hold: registry writers wait no longer */

/* (L) One notice; true when a record was appended. */
static bool notify_one(shm_t *s, const shm_notice_t *n)
{
	struct shm_header_sh *h = s->hdr;
	uint32_t svc;
	if (n->type == SHM_CHANGE_RELOAD) {
		/* A service never registered here has nothing cached to refresh. */
		if (shm__service_get(s, n->service, false, &svc))
			return false;
		struct shm_service_sh *sv = &s->services[svc];
		ck_sequence_write_begin(&sv->seq);
		shm__change_append(s, SHM_CHANGE_RELOAD, SHM_DEL_NONE, SHM_ORIGIN_MGMT, 0, svc,
		                   UINT32_MAX, 0);
		ck_sequence_write_end(&sv->seq);
		return true;
	}
	if ((n->type != SHM_CHANGE_NEW && n->type != SHM_CHANGE_DELETE) || n->slot >= h->slot_bump)
		return false;
	const struct shm_slot_sh *sl = shm__slot(s, n->slot);
	const struct shm_blob_sh *b = shm__blob_get(s, sl->blob);
	if (sl->state != SLOT_LIVE || !b || b->tags[SHM_TAG_INSTANCE] != n->tag ||
	    sl->svc >= h->svc_used)
		return false; /* removed or reused since the caller saw it */
	struct shm_service_sh *sv = &s->services[sl->svc];
	ck_sequence_write_begin(&sv->seq);
	shm__change_append(s, n->type, SHM_DEL_NONE, SHM_ORIGIN_MGMT, sl->origin_ms, sl->svc,
	                   n->slot, sl->blob);
	ck_sequence_write_end(&sv->seq);
	return true;
}

int shm_notify(shm_t *s, const shm_notice_t *notices, size_t n)
{
	int appended = 0;
	for (size_t i = 0; i < n;) {
		int rc = shm__lock(s);
		if (rc < 0)
			return rc;
		for (size_t end = i + NOTIFY_BATCH; i < n && i < end; i++)
			appended += notify_one(s, &notices[i]);
		shm__unlock(s);
	}
	return appended;
}

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
 */
#include <errno.h>
#include <string.h>

#include "artemis/clock.h"

#include "shm_int.h"

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

static void copy_service(shm_t *s, uint32_t svc, char *out)
{
	out[0] = '\0';
	if (svc >= s->hdr->max_services)
		return;
	const struct shm_service_sh *sv = &s->services[svc];
	uint32_t n = sv->name_len;
	if (n > SHM_MAX_SERVICE)
		n = SHM_MAX_SERVICE;
	memcpy(out, sv->name, n);
	out[n] = '\0';
}

static int copy_blob_json(shm_t *s, uint64_t off, buf_t *json, uint64_t *tags)
{
	const struct shm_blob_sh *b = shm__blob_get(s, off);
	if (!b)
		return -EAGAIN;
	uint32_t jl = b->json_len;
	uint32_t skip = (uint32_t)b->key_len + b->display_len;
	if (jl == 0 || jl > SHM_MAX_JSON || skip + jl + sizeof(*b) > SHM_MAX_BLOCK)
		return -EAGAIN;
	memcpy(tags, b->tags, sizeof(b->tags));
	return buf_append(json, shm__blob_json(b), jl);
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
		out->time_ms = r->time_ms;
		out->origin_ms = r->origin_ms;
		out->type = r->type;
		out->reason = r->reason;
		out->origin = r->origin;
		copy_service(s, r->svc, out->service);
		int rc = 0;
		memset(out->tags, 0, sizeof(out->tags));
		if (json) {
			json->len = start;
			if (r->blob)
				rc = copy_blob_json(s, r->blob, json, out->tags);
		}
		ck_pr_fence_load();
		if (ck_pr_load_64((uint64_t *)&r->version) != v)
			continue;
		if (rc == -ENOMEM)
			return rc;
		cur->next = v + 1;
		return 0;
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
	rc = shm__service_get(s, service, true, &svc);
	if (rc == 0) {
		struct shm_service_sh *sv = &s->services[svc];
		ck_sequence_write_begin(&sv->seq);
		shm__change_append(s, SHM_CHANGE_RELOAD, SHM_DEL_NONE, 0, 0, svc, UINT32_MAX, 0);
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

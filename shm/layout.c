/*
 * layout.c - the region's layout: the table of sections, their sizes from
 * the parameters, and the validation of a header before anything trusts it.
 *
 * The region is [header][section 0][section 1]...; every section starts on
 * a page.  shm__layout() computes the header's parameters and every
 * section's offset and size from shm_params_t; shm__validate() checks a
 * mapped header against the file's length and against the layout its own
 * parameters give, field by field, so a region that is corrupt, tampered
 * with or made by another build is refused before any process follows one
 * of its offsets.  Callers: region.c (create, attach), check.c.
 *
 * Adding a section: an enumerator in shm_int.h, a row in shm__sections[]
 * and a case in section_bytes(); layout, validation, reservation and
 * `artemis check` pick it up from the table.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "shm_int.h"

#define PAGE           4096u
#define ALIGN_UP(x, a) (((x) + (a)-1) & ~((uint64_t)(a)-1))

/* Growth steps of the reservation (reserve.c): the fixed sections are
 * backed whole at creation; the slots, services, change log and arena in
 * steps of SHM_RESERVE_STEP; an index buffer to the exact size its next
 * rebuild needs (it doubles, so that is geometric already); the management
 * section from what mgmt/ asked for at creation (all of it by default) in
 * steps of SHM_MGMT_STEP. */
const struct shm_section_def shm__sections[SHM_SEC_COUNT] = {
    [SHM_SEC_PROCS] = {"process table", 0},
    [SHM_SEC_COUNTERS] = {"counters", 0},
    [SHM_SEC_SLOTS] = {"instance slots", SHM_RESERVE_STEP},
    [SHM_SEC_INDEX0] = {"index buffer 0", PAGE},
    [SHM_SEC_INDEX1] = {"index buffer 1", PAGE},
    [SHM_SEC_SERVICES] = {"service table", SHM_RESERVE_STEP},
    [SHM_SEC_SVC_INDEX] = {"service index", 0},
    [SHM_SEC_CHANGELOG] = {"change log", SHM_RESERVE_STEP},
    [SHM_SEC_EVICTED] = {"eviction bitmap", 0},
    [SHM_SEC_ARENA] = {"blob arena", SHM_RESERVE_STEP},
    [SHM_SEC_MGMT] = {"management projection", SHM_MGMT_STEP},
};

static uint64_t section_bytes(const struct shm_header_sh *h, enum shm_section sec)
{
	switch (sec) {
	case SHM_SEC_PROCS:
		return sizeof(struct shm_proc_sh) * SHM_MAX_PROCS;
	case SHM_SEC_COUNTERS:
		return sizeof(uint64_t) * SHM_PROC_COUNTERS * SHM_MAX_PROCS;
	case SHM_SEC_SLOTS:
		return sizeof(struct shm_slot_sh) * (uint64_t)h->max_instances;
	case SHM_SEC_INDEX0:
	case SHM_SEC_INDEX1:
		return sizeof(uint64_t) * (uint64_t)h->index_size;
	case SHM_SEC_SERVICES:
		return sizeof(struct shm_service_sh) * (uint64_t)h->max_services;
	case SHM_SEC_SVC_INDEX:
		return sizeof(uint32_t) * (uint64_t)h->svc_index_size;
	case SHM_SEC_CHANGELOG:
		return sizeof(struct shm_change_sh) * (uint64_t)h->changelog_size;
	case SHM_SEC_EVICTED:
		return sizeof(uint64_t) * (((uint64_t)h->max_instances + 63) / 64);
	case SHM_SEC_ARENA:
		/* SHM_MAX_BLOCK of slack: a reader following a torn offset
		 * below arena_size never reads past the section. */
		return h->arena_size + SHM_MAX_BLOCK;
	case SHM_SEC_MGMT:
		return h->mgmt_size;
	case SHM_SEC_COUNT:
		break;
	}
	return 0;
}

static uint32_t pow2_at_least(uint64_t n)
{
	uint64_t p = 16;
	while (p < n)
		p <<= 1;
	return p > UINT32_MAX ? 0x80000000u : (uint32_t)p;
}

static bool window_ok(uint32_t ms)
{
	return ms >= SHM_MIN_WINDOW_MS && ms <= SHM_MAX_WINDOW_MS && ms % 1000 == 0;
}

static bool ttl_ok(uint32_t ms)
{
	return ms >= SHM_MIN_TTL_MS && ms <= SHM_MAX_TTL_MS;
}

static uint32_t services_for(const shm_params_t *p)
{
	uint32_t ms = p->max_services;
	if (!ms) {
		ms = p->max_instances / 4;
		ms = ms < 1024 ? 1024 : ms > 262144 ? 262144 : ms;
	}
	return ms;
}

/* Fill h's identity and parameters from p; -EINVAL for a parameter out of
 * range (nothing is clamped: the caller's value is used or refused). */
static int layout_params(const shm_params_t *p, struct shm_header_sh *h)
{
	if (!p->name || p->name[0] != '/' || strlen(p->name) >= sizeof(h->name))
		return -EINVAL;
	if (p->max_instances == 0 || p->max_instances > SHM_MAX_INSTANCES)
		return -EINVAL;
	uint32_t ms = services_for(p);
	uint32_t cl = p->changelog_size ? p->changelog_size : 65536;
	uint32_t ttl = p->lease_ttl_ms ? p->lease_ttl_ms : 20000;
	uint32_t lttl = p->legacy_ttl_ms ? p->legacy_ttl_ms : 90000;
	uint32_t win = p->preserve_window_ms ? p->preserve_window_ms : 12000;
	uint32_t lwin = p->legacy_preserve_window_ms ? p->legacy_preserve_window_ms : 60000;
	if (ms > SHM_MAX_SERVICES || cl & (cl - 1) || cl < 64 || cl > SHM_MAX_CHANGELOG ||
	    !ttl_ok(ttl) || !ttl_ok(lttl) || !window_ok(win) || !window_ok(lwin))
		return -EINVAL;
	uint64_t arena = p->arena_bytes ? p->arena_bytes
	                                : (uint64_t)p->max_instances * 2048 + (uint64_t)cl * 1024;
	if (arena < SHM_ARENA_START + SHM_MAX_BLOCK || arena > SHM_MAX_ARENA)
		return -EINVAL;
	memset(h, 0, sizeof(*h));
	h->layout_version = SHM_LAYOUT_VERSION;
	h->header_size = sizeof(*h);
	snprintf(h->name, sizeof(h->name), "%s", p->name);
	h->max_instances = p->max_instances;
	h->max_services = ms;
	h->changelog_size = cl;
	h->index_size = pow2_at_least((uint64_t)p->max_instances * 2);
	h->svc_index_size = pow2_at_least((uint64_t)ms * 2);
	h->ttl_ms[SHM_MGR_NORMAL] = ttl;
	h->ttl_ms[SHM_MGR_LEGACY] = lttl;
	h->window_ms[SHM_MGR_NORMAL] = win;
	h->window_ms[SHM_MGR_LEGACY] = lwin;
	h->self_preservation = p->self_preservation;
	h->arena_size = ALIGN_UP(arena, PAGE);
	h->mgmt_size = ALIGN_UP(p->mgmt_bytes, PAGE);
	uint64_t first = ALIGN_UP(p->mgmt_initial_bytes, PAGE);
	h->mgmt_initial_pages = first && first < h->mgmt_size ? (uint32_t)(first / PAGE) : 0;
	return 0;
}

/* Offsets and sizes of every section, in table order, from h's parameters;
 * the region's size. */
static uint64_t layout_sections(struct shm_header_sh *h)
{
	uint64_t off = ALIGN_UP(sizeof(*h), PAGE);
	for (int i = 0; i < SHM_SEC_COUNT; i++) {
		h->sec[i].off = off;
		h->sec[i].size = ALIGN_UP(section_bytes(h, (enum shm_section)i), PAGE);
		h->sec[i].reserved = 0;
		off += h->sec[i].size;
	}
	return off;
}

int shm__layout(const shm_params_t *p, struct shm_header_sh *h)
{
	int rc = layout_params(p, h);
	if (rc)
		return rc;
	h->region_size = layout_sections(h);
	return 0;
}

__attribute__((format(printf, 3, 4))) static int bad(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

/* The parameters must be ones shm__layout accepts, and give exactly the
 * sections the header lists. */
static int validate_layout(const struct shm_header_sh *h, char *why, size_t len)
{
	struct shm_header_sh chk;
	shm_params_t p;
	if (memchr(h->name, '\0', sizeof(h->name)) == NULL)
		return bad(why, len, "the region's name is not terminated");
	shm_params_default(&p, h->name);
	p.max_instances = h->max_instances;
	p.max_services = h->max_services;
	p.changelog_size = h->changelog_size;
	p.arena_bytes = h->arena_size;
	p.lease_ttl_ms = h->ttl_ms[SHM_MGR_NORMAL];
	p.legacy_ttl_ms = h->ttl_ms[SHM_MGR_LEGACY];
	p.preserve_window_ms = h->window_ms[SHM_MGR_NORMAL];
	p.legacy_preserve_window_ms = h->window_ms[SHM_MGR_LEGACY];
	p.mgmt_bytes = h->mgmt_size;
	if (h->max_services == 0 || shm__layout(&p, &chk) != 0)
		return bad(why, len,
		           "parameters out of range (max_instances %u, max_services %u, "
		           "changelog_size %u, arena %llu)",
		           h->max_instances, h->max_services, h->changelog_size,
		           (unsigned long long)h->arena_size);
	if (chk.arena_size != h->arena_size || chk.index_size != h->index_size ||
	    chk.svc_index_size != h->svc_index_size)
		return bad(why, len, "index or arena sizes disagree with the parameters");
	if (chk.region_size != h->region_size)
		return bad(why, len, "region size %llu, the layout gives %llu",
		           (unsigned long long)h->region_size, (unsigned long long)chk.region_size);
	for (int i = 0; i < SHM_SEC_COUNT; i++) {
		const struct shm_section_sh *x = &h->sec[i];
		if (x->off != chk.sec[i].off || x->size != chk.sec[i].size)
			return bad(why, len, "section %s at %llu+%llu, the layout gives %llu+%llu",
			           shm__sections[i].name, (unsigned long long)x->off,
			           (unsigned long long)x->size, (unsigned long long)chk.sec[i].off,
			           (unsigned long long)chk.sec[i].size);
		if (x->reserved > x->size || (shm__sections[i].step == 0 && x->reserved != x->size))
			return bad(why, len, "section %s: %llu bytes reserved of %llu",
			           shm__sections[i].name, (unsigned long long)x->reserved,
			           (unsigned long long)x->size);
	}
	return 0;
}

static bool arena_off_ok(const struct shm_header_sh *h, uint64_t off, uint64_t bump)
{
	return off == 0 || (off >= SHM_ARENA_START && off < bump && off % SHM_BLOCK_ALIGN == 0);
}

static bool reserved_for(const struct shm_header_sh *h, enum shm_section sec, uint64_t bytes)
{
	return bytes <= h->sec[sec].reserved;
}

/* The writers' high-water marks, inside their sections and inside what is
 * reserved of them: what readers rely on.  A writer reserves first, then
 * moves a mark, and marks only grow, so reading every mark before any
 * reservation makes these hold under running writers too (`artemis check`
 * attaches to a live node). */
static int validate_marks(const struct shm_header_sh *h, char *why, size_t len)
{
	uint32_t bump = ck_pr_load_32((uint32_t *)&h->slot_bump);
	uint32_t used = ck_pr_load_32((uint32_t *)&h->svc_used);
	uint64_t abump = ck_pr_load_64((uint64_t *)&h->arena_bump);
	uint64_t head = ck_pr_load_64((uint64_t *)&h->head);
	uint32_t mask[2] = {ck_pr_load_32((uint32_t *)&h->index_mask[0]),
	                    ck_pr_load_32((uint32_t *)&h->index_mask[1])};
	ck_pr_fence_load();
	if (bump > h->max_instances || !reserved_for(h, SHM_SEC_SLOTS, (uint64_t)bump * 192))
		return bad(why, len, "slot_bump %u beyond the slots (%u) or their memory", bump,
		           h->max_instances);
	if (used > h->max_services ||
	    !reserved_for(h, SHM_SEC_SERVICES, (uint64_t)used * sizeof(struct shm_service_sh)))
		return bad(why, len, "svc_used %u beyond the service table (%u) or its memory",
		           used, h->max_services);
	for (int i = 0; i < 2; i++) {
		uint64_t entries = (uint64_t)mask[i] + 1;
		if (entries > h->index_size || (entries & (entries - 1)) ||
		    !reserved_for(h, SHM_SEC_INDEX0 + i, entries * sizeof(uint64_t)))
			return bad(why, len, "index buffer %d: %llu entries of %u, or unreserved",
			           i, (unsigned long long)entries, h->index_size);
	}
	uint64_t records = head + 1 < h->changelog_size ? head + 1 : h->changelog_size;
	if (!reserved_for(h, SHM_SEC_CHANGELOG, records * sizeof(struct shm_change_sh)))
		return bad(why, len, "change log head %llu beyond its memory",
		           (unsigned long long)head);
	if (abump < SHM_ARENA_START || abump > h->arena_size ||
	    !reserved_for(h, SHM_SEC_ARENA, abump + SHM_MAX_BLOCK))
		return bad(why, len, "arena_bump %llu outside the arena (%llu) or its memory",
		           (unsigned long long)abump, (unsigned long long)h->arena_size);
	for (int m = 0; m < SHM_MGR_COUNT; m++)
		if (h->preserve[m].pos >= SHM_PRESERVE_BUCKETS)
			return bad(why, len, "self-preservation bucket %u out of range",
			           h->preserve[m].pos);
	return 0;
}

/* The writers' own state (free lists, counters, the undo record): only
 * writers follow it, and only a region no writer changes meanwhile can be
 * judged (the master's attach, check under the lock or between changes). */
static int validate_writer_state(const struct shm_header_sh *h, char *why, size_t len)
{
	uint32_t bump = h->slot_bump;
	uint64_t abump = h->arena_bump;
	if (h->slot_free > bump || h->live > bump)
		return bad(why, len, "free list head %u or live count %u beyond slot_bump %u",
		           h->slot_free, h->live, bump);
	if (h->svc_empty > h->svc_used)
		return bad(why, len, "svc_empty %u beyond svc_used %u", h->svc_empty, h->svc_used);
	if (h->index_active > 1 || (uint64_t)h->index_used + h->index_tombs >
	                               (uint64_t)h->index_mask[h->index_active & 1] + 1)
		return bad(why, len,
		           "index counters (active %u, %u used, %u tombstones) do not fit",
		           h->index_active, h->index_used, h->index_tombs);
	if (!arena_off_ok(h, h->retire_head, abump) || !arena_off_ok(h, h->retire_tail, abump))
		return bad(why, len, "retire list outside the arena");
	for (int c = 0; c < SHM_NCLASSES; c++)
		if (!arena_off_ok(h, h->arena_free[c], abump))
			return bad(why, len, "free list %d outside the arena", c);
	if (h->undo.active && h->undo.slot != UINT32_MAX && h->undo.slot >= bump)
		return bad(why, len, "undo record names slot %u of %u", h->undo.slot, bump);
	return 0;
}

int shm__validate(const struct shm_header_sh *h, uint64_t file_size, bool writer, char *why,
                  size_t len)
{
	if (file_size < sizeof(*h) || ck_pr_load_64((uint64_t *)&h->magic) != SHM_MAGIC)
		return -ENODATA;
	if (h->layout_version != SHM_LAYOUT_VERSION || h->header_size != sizeof(*h))
		return -EPROTO;
	if (h->region_size != file_size)
		return bad(why, len, "region size %llu, the file holds %llu",
		           (unsigned long long)h->region_size, (unsigned long long)file_size);
	int rc = validate_layout(h, why, len);
	if (rc == 0)
		rc = validate_marks(h, why, len);
	if (rc == 0 && writer)
		rc = validate_writer_state(h, why, len);
	return rc;
}

const char *shm__section_name(enum shm_section sec)
{
	return sec < SHM_SEC_COUNT ? shm__sections[sec].name : "?";
}

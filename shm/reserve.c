/*
 * reserve.c - back the region with memory before any process touches it.
 *
 * The region is a sparse file in /dev/shm (tmpfs).  A page of it that was
 * never touched has no memory; touching it allocates one, and when tmpfs is
 * full the touch raises SIGBUS in whatever process made it -- a worker
 * mid-write, the master repairing, `artemis check`.  So memory is reserved
 * with posix_fallocate() on the region's file before use, and no process
 * touches a page outside what is reserved (the contract in shm_int.h):
 *
 *   - at creation: the header, the fixed sections (process table,
 *     counters, service index, eviction bitmap) whole, the first size of
 *     both index buffers, one step of the slots, services, change log
 *     and arena, and what mgmt/ asked for of the management section (its
 *     down filter's tables; its routing image grows as the registry's
 *     sections do, through shm_mgmt_reserve).  A start that cannot reserve
 *     that much fails (-ENOBUFS, the size needed in shm_open_info_t);
 *   - while it fills: a writer, under the lock, reserves the next step of a
 *     growing section before it moves that section's high-water mark into
 *     new pages.  A reservation that fails leaves everything as it was; the
 *     write fails with -ENOBUFS and the node keeps serving what it has.
 *     Nothing is remembered: the next write tries again, so writes work
 *     again as soon as /dev/shm has room, without a restart;
 *   - at attach (the master, after a restart): every reserved range again,
 *     so pages of a region whose memory went missing fail the start with a
 *     message instead of a SIGBUS later.
 *
 * Reserved memory is never given back (slots, blobs and records are
 * reused).  What it costs is in docs/OPERATIONS.md: the used part of each
 * growing section plus less than one step (SHM_RESERVE_STEP) of each.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "artemis/log.h"
#include "shm_int.h"

#define PAGE           4096u
#define ALIGN_UP(x, a) (((x) + (a)-1) & ~((uint64_t)(a)-1))

int shm__reserve_range(int fd, uint64_t off, uint64_t len)
{
	if (len == 0)
		return 0;
	int rc = posix_fallocate(fd, (off_t)off, (off_t)len);
	if (rc == 0)
		return 0;
	return rc == ENOSPC || rc == ENOMEM || rc == EFBIG || rc == EDQUOT ? -ENOBUFS : -rc;
}

static void reserve_failed(shm_t *s, enum shm_section sec, uint64_t bytes)
{
	if (s->reserve_failed)
		return;
	s->reserve_failed = true;
	log_warn("%s: /dev/shm has no room for %llu more bytes of the %s of region %s: writes "
	         "that need new shared memory are refused until space comes back",
	         __func__, (unsigned long long)bytes, shm__section_name(sec), s->hdr->name);
}

/* (L) Make sure the first `bytes` of section sec are backed. */
int shm__reserve(shm_t *s, enum shm_section sec, uint64_t bytes)
{
	struct shm_section_sh *x = &s->hdr->sec[sec];
	uint64_t have = x->reserved;
	if (bytes <= have)
		return 0;
	if (bytes > x->size)
		return -ENOSPC; /* beyond the section: the section is full */
	uint64_t step = shm__sections[sec].step ? shm__sections[sec].step : x->size;
	uint64_t want = ALIGN_UP(bytes, step);
	if (want > x->size)
		want = x->size;
	int rc = shm__reserve_range(s->fd, x->off + have, want - have);
	if (rc) {
		reserve_failed(s, sec, want - have);
		return rc;
	}
	if (s->reserve_failed) {
		s->reserve_failed = false;
		log_info("%s: /dev/shm has room again: region %s grows", __func__, s->hdr->name);
	}
	ck_pr_fence_store();
	ck_pr_store_64(&x->reserved, want);
	return 0;
}

/* What a new region reserves of section sec. */
static uint64_t initial_bytes(const struct shm_header_sh *h, enum shm_section sec)
{
	const struct shm_section_sh *x = &h->sec[sec];
	uint64_t step = shm__sections[sec].step, want;
	if (step == 0)
		return x->size;
	if (sec == SHM_SEC_INDEX0 || sec == SHM_SEC_INDEX1)
		want = sizeof(uint64_t) *
		       (uint64_t)(h->index_size < SHM_INDEX_MIN ? h->index_size : SHM_INDEX_MIN);
	else if (sec == SHM_SEC_ARENA)
		want = SHM_ARENA_START + SHM_MAX_BLOCK;
	else if (sec == SHM_SEC_MGMT)
		want = h->mgmt_initial_pages ? (uint64_t)h->mgmt_initial_pages * PAGE : x->size;
	else
		want = 1;
	want = ALIGN_UP(want, step);
	return want < x->size ? want : x->size;
}

uint64_t shm__reserve_minimum(const struct shm_header_sh *h)
{
	uint64_t n = ALIGN_UP(sizeof(*h), PAGE);
	for (int i = 0; i < SHM_SEC_COUNT; i++)
		n += initial_bytes(h, (enum shm_section)i);
	return n;
}

/* A new region: the sections' initial memory (the header is backed by the
 * caller before it writes it). */
int shm__reserve_initial(shm_t *s)
{
	for (int i = 0; i < SHM_SEC_COUNT; i++) {
		int rc = shm__reserve(s, (enum shm_section)i,
		                      initial_bytes(s->hdr, (enum shm_section)i));
		if (rc)
			return rc;
	}
	return 0;
}

/* An existing region (the master's attach): back every reserved range
 * again; pages that are backed already cost nothing. */
int shm__reserve_all(shm_t *s)
{
	int rc = shm__reserve_range(s->fd, 0, ALIGN_UP(sizeof(*s->hdr), PAGE));
	for (int i = 0; i < SHM_SEC_COUNT && rc == 0; i++)
		rc = shm__reserve_range(s->fd, s->hdr->sec[i].off, s->hdr->sec[i].reserved);
	return rc;
}

uint64_t shm__reserved_total(const shm_t *s)
{
	uint64_t n = ALIGN_UP(sizeof(*s->hdr), PAGE);
	for (int i = 0; i < SHM_SEC_COUNT; i++)
		n += shm__reserved(s, (enum shm_section)i);
	return n;
}

/* mgmt/ grows its section under its own writer lock, the only writer that
 * moves this section's reservation (shm.h). */
int shm_mgmt_reserve(shm_t *s, uint64_t bytes)
{
	if (!s->mgmt)
		return -ENODEV;
	return shm__reserve(s, SHM_SEC_MGMT, bytes);
}

uint64_t shm_mgmt_reserved(const shm_t *s)
{
	return s->mgmt ? ck_pr_load_64((uint64_t *)&s->hdr->sec[SHM_SEC_MGMT].reserved) : 0;
}

/*
 * lease.c - the cleaner pass and the self-preservation checker (API.md §4.1,
 * §4.2), run by the reaper process (one at a time: only it writes
 * reap_cursor and reap_last_ms).
 *
 * The pass scans the slots without the lock to find candidates, then takes
 * the lock per batch and re-checks each one: an evicted (unregistered) lease
 * is removed; an expired one is removed with a CAS from the exact lease
 * value judged expired, so a heartbeat that renewed it in between wins, but only while its lease
 * manager's checker says safe.  Every removal emits a `delete` change.
 *
 * The checker (Java's LeaseUpdateSafeChecker) counts renewals in a sliding
 * window of 1 s buckets, from per-process counters heartbeats bump without
 * any shared write.  Unlike Java it counts distinct instances second by
 * second: renewals of one instance within one second count once
 * (registry.c), so copies of a key in a request or a burst cannot raise the
 * expected count; renewals a second or more apart count as in Java, so the
 * count of a registry that stops renewing falls steadily over one window.  Only the reaper writes
 * the checker state; everyone may read it.
 */
#include <errno.h>
#include <string.h>

#include "artemis/clock.h"

#include "shm_int.h"

#define REAP_BATCH 256

static bool mgr_safe(shm_t *s, int mgr)
{
	return !s->hdr->self_preservation || ck_pr_load_32(&s->hdr->preserve[mgr].safe);
}

/* (L) Re-check and remove one candidate; updates res.  -ENOBUFS when the
 * change log has no memory for the removal (it stays for a later pass). */
static int reap_one(shm_t *s, uint32_t id, uint64_t now, shm_reap_result_t *res)
{
	struct shm_slot_sh *sl = shm__slot(s, id);
	if (sl->state != SLOT_LIVE)
		return 0;
	uint64_t w = ck_pr_load_64(&sl->lease);
	int rc;
	if (lease_evicted(w)) {
		if ((rc = shm__slot_remove(s, id, SHM_DEL_UNREGISTER, w)) == 0)
			res->evicted_removed++;
		return rc == -ENOBUFS ? rc : 0;
	}
	if (now <= lease_ms(w) + shm__ttl(s, sl))
		return 0;
	int mgr = (sl->flags & SLOT_F_LEGACY) ? 1 : 0;
	if (!mgr_safe(s, mgr)) {
		res->expired_kept++;
		return 0;
	}
	if ((rc = shm__slot_remove(s, id, SHM_DEL_EXPIRED, w)) == 0)
		res->expired_removed++;
	return rc == -ENOBUFS ? rc : 0;
}

struct reap_pass {
	shm_t *s;
	uint64_t now; /* relative ms */
	shm_reap_result_t *res;
	uint32_t batch[REAP_BATCH];
	uint32_t n;
};

/* (L per batch) Remove the batched candidates. */
static int reap_flush(struct reap_pass *p)
{
	if (p->n == 0)
		return 0;
	int rc = shm__lock(p->s);
	if (rc < 0)
		return rc;
	rc = 0;
	for (uint32_t i = 0; i < p->n && rc == 0; i++)
		rc = reap_one(p->s, p->batch[i], p->now, p->res);
	shm__unlock(p->s);
	p->n = 0;
	return rc;
}

/* Batch a slot if it looks evicted or expired (lock-free first look;
 * reap_one decides under the lock). */
static int reap_consider(struct reap_pass *p, uint32_t id)
{
	const struct shm_slot_sh *sl = shm__slot(p->s, id);
	if (ck_pr_load_8((uint8_t *)&sl->state) != SLOT_LIVE)
		return 0;
	uint64_t w = ck_pr_load_64((uint64_t *)&sl->lease);
	if (!lease_evicted(w) && p->now <= lease_ms(w) + shm__ttl(p->s, sl))
		return 0;
	p->batch[p->n++] = id;
	return p->n == REAP_BATCH ? reap_flush(p) : 0;
}

/*
 * What a pass looks at.  Unregistered slots are found through the hint
 * bitmap shm_unregister sets, so they go within one pass, as Java's
 * cleaner does.  For expiry a small registry is scanned whole; a large one
 * is scanned in a window that moves with time so that every slot is seen at
 * least once a second (Java's code-default cleaner interval): the scan
 * reads a cache line per slot, 15 ms a pass at a million instances, and
 * would otherwise take a tenth of a core at a 100 ms interval.
 */
#define REAP_FULL_SLOTS 65536u

int shm_reap(shm_t *s, uint64_t now_ms, shm_reap_result_t *res)
{
	shm_reap_result_t dummy;
	struct shm_header_sh *h = s->hdr;
	if (!res)
		res = &dummy;
	memset(res, 0, sizeof(*res));
	if (!now_ms)
		now_ms = clock_wall_ms();
	struct reap_pass p = {.s = s, .now = shm__rel_ms(s, now_ms), .res = res};
	uint32_t bump = ck_pr_load_32(&h->slot_bump);
	if (bump > h->max_instances)
		bump = h->max_instances;
	int rc = 0;
	for (uint32_t w = 0; w < (bump + 63) / 64 && rc == 0; w++) {
		uint64_t bits = ck_pr_load_64(&s->evicted[w]) ? ck_pr_fas_64(&s->evicted[w], 0) : 0;
		for (; bits && rc == 0; bits &= bits - 1)
			rc = reap_consider(&p, w * 64 + (uint32_t)__builtin_ctzll(bits));
	}
	uint32_t span = bump;
	if (bump > REAP_FULL_SLOTS) {
		uint64_t last = h->reap_last_ms, dt = now_ms > last ? now_ms - last : 0;
		uint64_t want = last ? (uint64_t)bump * dt / 1000 + 1 : bump;
		span = want < REAP_FULL_SLOTS ? REAP_FULL_SLOTS
		       : want > bump          ? bump
		                              : (uint32_t)want;
	}
	h->reap_last_ms = now_ms;
	uint32_t id = h->reap_cursor < bump ? h->reap_cursor : 0;
	for (uint32_t k = 0; k < span && rc == 0; k++, id = id + 1 < bump ? id + 1 : 0)
		rc = reap_consider(&p, id);
	h->reap_cursor = id;
	return rc ? rc : reap_flush(&p);
}

/* Renewals, each instance at most once a second (registry.c,
 * count_distinct): what the checker counts. */
static uint64_t renewals_total(shm_t *s, int mgr)
{
	uint64_t t = 0;
	for (int i = 0; i < SHM_MAX_PROCS; i++)
		t += ck_pr_load_64(&s->procs[i].counted[mgr]);
	return t;
}

static void preserve_tick_one(shm_t *s, int mgr, uint64_t now_ms)
{
	struct shm_preserve_sh *p = &s->hdr->preserve[mgr];
	uint32_t nb = s->hdr->window_ms[mgr] / 1000;
	if (nb == 0 || nb >= SHM_PRESERVE_BUCKETS)
		nb = SHM_PRESERVE_BUCKETS - 1;
	uint64_t total = renewals_total(s, mgr);
	uint64_t delta = total >= p->last_total ? total - p->last_total : 0;
	if (p->last_tick_ms == 0)
		delta = 0; /* first tick: counters may predate this region's use */
	p->last_total = total;
	/* Whole seconds since the last tick get empty buckets. */
	uint64_t gap = p->last_tick_ms ? (now_ms - p->last_tick_ms) / 1000 : 1;
	if (gap == 0)
		gap = 1;
	for (uint64_t i = 1; i < gap && i <= nb; i++) {
		p->pos = (p->pos + 1) % SHM_PRESERVE_BUCKETS;
		p->buckets[p->pos] = 0;
	}
	p->pos = (p->pos + 1) % SHM_PRESERVE_BUCKETS;
	p->buckets[p->pos] = delta;
	p->last_tick_ms = now_ms;
	uint64_t count = 0;
	for (uint32_t i = 0; i < nb; i++)
		count += p->buckets[(p->pos + SHM_PRESERVE_BUCKETS - i) % SHM_PRESERVE_BUCKETS];
	p->window_count = count;

	bool safe;
	if (count > p->max_count) {
		p->max_count = count;
		p->max_count_updated_ms = now_ms;
		safe = true;
	} else if (p->max_count >= SHM_PRESERVE_THRESHOLD &&
	           count * 100 / p->max_count < SHM_PRESERVE_PERCENT) {
		safe = false;
	} else {
		safe = true;
	}
	if (now_ms - p->max_count_updated_ms > SHM_PRESERVE_RESET_MS) {
		p->max_count = count;
		p->max_count_updated_ms = now_ms;
	}
	ck_pr_store_32(&p->safe, safe ? 1 : 0);
}

void shm_preserve_tick(shm_t *s, uint64_t now_ms)
{
	if (!now_ms)
		now_ms = clock_wall_ms();
	for (int m = 0; m < SHM_MGR_COUNT; m++)
		preserve_tick_one(s, m, now_ms);
}

void shm_preserve_get(shm_t *s, int mgr, shm_preserve_t *out)
{
	const struct shm_preserve_sh *p = &s->hdr->preserve[mgr & 1];
	out->enabled = s->hdr->self_preservation != 0;
	out->safe = !out->enabled || ck_pr_load_32((uint32_t *)&p->safe) != 0;
	out->max_count = p->max_count;
	out->max_count_updated_ms = p->max_count_updated_ms;
	out->window_count = p->window_count;
	out->window_ms = s->hdr->window_ms[mgr & 1];
	out->ttl_ms = s->hdr->ttl_ms[mgr & 1];
}

/* Give every live lease at least extra_ms of life from now. */
int shm_extend_leases(shm_t *s, uint64_t extra_ms)
{
	int rc = shm__lock(s);
	if (rc < 0)
		return rc;
	uint64_t now = shm__rel_ms(s, clock_wall_ms());
	for (uint32_t id = 0; id < s->hdr->slot_bump; id++) {
		struct shm_slot_sh *sl = shm__slot(s, id);
		if (sl->state != SLOT_LIVE)
			continue;
		uint64_t ttl = shm__ttl(s, sl);
		uint64_t want = now + extra_ms > ttl ? now + extra_ms - ttl : 0;
		for (;;) {
			uint64_t w = ck_pr_load_64(&sl->lease);
			if (lease_evicted(w) || lease_ms(w) >= want)
				break;
			if (ck_pr_cas_64(&sl->lease, w,
			                 lease_make(lease_gen(w), false, want) |
			                     (w & LEASE_REMOTE)))
				break;
		}
	}
	shm__unlock(s);
	return 0;
}

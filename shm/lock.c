/*
 * lock.c - the writer lock, the undo record, and repair.
 *
 * The writer lock is a robust process-shared mutex in the header.  A writer
 * that dies holding it leaves the next locker EOWNERDEAD; that locker (a
 * worker, the reaper, or the master after reaping the dead child) repairs
 * before anything else happens:
 *
 *   1. If the dead writer's op did not commit (the change-log head did not
 *      move past undo.head_before), the slot it touched is restored from the
 *      undo record.  A committed op is kept.
 *   2. Every derived structure is rebuilt from the slots: the free-slot
 *      list, the index (into the spare buffer, then flipped), service lists
 *      and counts, the arena's free and retire lists.  Every sequence is made
 *      even again.
 *
 * Rebuilding instead of undoing each partial step keeps the undo record to
 * one slot and makes repair obviously complete: whatever the dead writer did
 * to derived state is simply recomputed.  Its cost is one pass over the
 * slots and the arena (about 100 ms at a million instances), paid only when
 * a writer dies.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "artemis/log.h"
#include "shm_int.h"

void shm__stall(unsigned attempt)
{
	if (attempt < 16)
		ck_pr_stall();
	else
		sched_yield();
}

static void make_even(ck_sequence_t *sq)
{
	unsigned v = ck_pr_load_uint(&sq->sequence);
	if (v & 1)
		ck_pr_store_uint(&sq->sequence, v + 1);
}

/* Restore the slot of an uncommitted op.  The restored copy gets a sequence
 * no reader has seen, so a reader that copied the torn slot retries. */
static void undo_restore(shm_t *s)
{
	struct shm_undo_sh *u = &s->hdr->undo;
	if (!u->active)
		return;
	uint64_t head = ck_pr_load_64(&s->hdr->head);
	if (head == u->head_before && u->slot < s->hdr->max_instances) {
		struct shm_slot_sh *sl = shm__slot(s, u->slot);
		unsigned seq = ck_pr_load_uint(&sl->seq.sequence);
		unsigned old = u->old.seq.sequence;
		unsigned next = (seq > old ? seq : old) | 1;
		ck_pr_store_uint(&sl->seq.sequence, next);
		ck_pr_fence_store();
		memcpy((char *)sl + sizeof(sl->seq), (char *)&u->old + sizeof(sl->seq),
		       sizeof(*sl) - sizeof(sl->seq));
		ck_pr_fence_store();
		ck_pr_store_uint(&sl->seq.sequence, next + 1);
		log_warn("%s: rolled back an interrupted write of slot %u", __func__, u->slot);
	}
	ck_pr_store_32(&u->active, 0);
}

/* Recompute the free-slot list and the live count from the slots. */
static void slots_rebuild(shm_t *s)
{
	struct shm_header_sh *h = s->hdr;
	uint32_t live = 0, free_head = SHM_NONE;
	if (h->slot_bump > h->max_instances)
		h->slot_bump = h->max_instances;
	for (uint32_t i = h->slot_bump; i-- > 0;) {
		struct shm_slot_sh *sl = shm__slot(s, i);
		make_even(&sl->seq);
		if (sl->state == SLOT_LIVE) {
			live++;
			continue;
		}
		sl->state = SLOT_FREE;
		sl->next_free = free_head;
		free_head = i + 1;
	}
	h->slot_free = free_head;
	ck_pr_store_32(&h->live, live);
}

void shm__rebuild(shm_t *s)
{
	undo_restore(s);
	slots_rebuild(s);
	shm__services_rebuild(s);
	shm__index_rebuild(s);
	shm__arena_rebuild(s);
	ck_pr_inc_64(&s->hdr->repairs);
}

int shm__lock(shm_t *s)
{
	if (s->read_only)
		return -EROFS;
	int rc = pthread_mutex_lock(&s->hdr->lock);
	if (rc == EOWNERDEAD) {
		log_warn("%s: the previous writer died holding the registry lock; repairing",
			 __func__);
		shm__rebuild(s);
		pthread_mutex_consistent(&s->hdr->lock);
		return 1;
	}
	if (rc)
		return -rc;
	/* A writer that died between taking the lock and setting undo.active
	 * needs nothing; one that died with undo.active set was repaired by
	 * the EOWNERDEAD path.  active here means a repair was interrupted by
	 * its own death: do it again. */
	if (s->hdr->undo.active) {
		shm__rebuild(s);
		return 1;
	}
	return 0;
}

void shm__unlock(shm_t *s)
{
	pthread_mutex_unlock(&s->hdr->lock);
}

void shm__undo_begin(shm_t *s, uint32_t slot)
{
	struct shm_undo_sh *u = &s->hdr->undo;
	u->slot = slot;
	u->head_before = ck_pr_load_64(&s->hdr->head);
	if (slot < s->hdr->max_instances)
		memcpy(&u->old, shm__slot(s, slot), sizeof(u->old));
	ck_pr_fence_store();
	ck_pr_store_32(&u->active, 1);
	ck_pr_fence_store();
}

void shm__undo_end(shm_t *s)
{
	ck_pr_fence_store();
	ck_pr_store_32(&s->hdr->undo.active, 0);
}

/* Never blocks: the master calls it from its loop.  If a live process
 * holds the lock, that process (or whoever locks after it dies) repairs. */
int shm_repair(shm_t *s)
{
	if (s->read_only)
		return -EROFS;
	int rc = pthread_mutex_trylock(&s->hdr->lock);
	if (rc == EBUSY)
		return -EBUSY;
	if (rc == EOWNERDEAD) {
		log_warn("%s: a process died holding the registry lock; repairing", __func__);
		shm__rebuild(s);
		pthread_mutex_consistent(&s->hdr->lock);
		shm__unlock(s);
		return 1;
	}
	if (rc)
		return -rc;
	int repaired = 0;
	if (s->hdr->undo.active) {
		shm__rebuild(s);
		repaired = 1;
	}
	shm__unlock(s);
	return repaired;
}

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
 *
 * A holder that does not die but stops (SIGSTOP, a debugger, a livelock)
 * must not stop the node.  So a writer waits for the lock at most
 * hdr->lock_wait_ms and fails with -ETIMEDOUT past it (nothing changed;
 * the API answers service-unavailable), and once this process has timed
 * out on one acquisition (lock_seq), later writes fail at once while that
 * same acquisition still holds the lock, so a request of many writes costs
 * one wait, not one per write.  The holder records its pid and bumps
 * lock_seq under the lock; the master watches both and kills a child that
 * holds one acquisition longer than [registry] lock_stall_ms, which makes
 * the next locker repair (EOWNERDEAD).  Readers and heartbeats never take
 * the lock.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "artemis/log.h"
#include "shm_int.h"

/* getpid() is a system call; writers record it per acquisition, so it is
 * cached, and forgotten in a child after fork. */
static pid_t my_pid;
static pthread_once_t my_pid_once = PTHREAD_ONCE_INIT;

static void forget_pid(void)
{
	my_pid = 0;
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, forget_pid);
}

static pid_t self_pid(void)
{
	if (!my_pid) {
		pthread_once(&my_pid_once, register_atfork);
		my_pid = getpid();
	}
	return my_pid;
}

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

/* (L) A holder busy with a long job shows the master's stall watch that
 * it makes progress (each phase of a repair of a large region can take a
 * good part of a second). */
static void progress(shm_t *s)
{
	ck_pr_store_64(&s->hdr->lock_seq, s->hdr->lock_seq + 1);
}

void shm__rebuild(shm_t *s)
{
	undo_restore(s);
	slots_rebuild(s);
	progress(s);
	shm__services_rebuild(s);
	progress(s);
	shm__index_rebuild(s);
	progress(s);
	shm__arena_rebuild(s);
	ck_pr_inc_64(&s->hdr->repairs);
}

/* (L) The lock was just taken. */
static void held(shm_t *s)
{
	ck_pr_store_32((uint32_t *)&s->hdr->lock_owner, (uint32_t)self_pid());
	progress(s);
}

/* The lock is busy: wait for it, but not for ever. */
static int lock_wait(shm_t *s)
{
	struct shm_header_sh *h = s->hdr;
	uint64_t seq = ck_pr_load_64(&h->lock_seq);
	if (s->stuck_seq == seq + 1)
		return ETIMEDOUT; /* still the acquisition we gave up on */
	uint32_t wait_ms = ck_pr_load_32(&h->lock_wait_ms);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += wait_ms / 1000;
	ts.tv_nsec += (long)(wait_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	int rc = pthread_mutex_clocklock(&h->lock, CLOCK_MONOTONIC, &ts);
	if (rc != ETIMEDOUT)
		return rc;
	seq = ck_pr_load_64(&h->lock_seq);
	s->stuck_seq = seq + 1;
	log_warn("%s: the registry writer lock has been held by pid %d for over %u ms: "
	         "refusing writes while it holds it",
	         __func__, (int)ck_pr_load_32((uint32_t *)&h->lock_owner), wait_ms);
	return ETIMEDOUT;
}

int shm__lock(shm_t *s)
{
	if (s->read_only)
		return -EROFS;
	int rc = pthread_mutex_trylock(&s->hdr->lock);
	if (rc == EBUSY)
		rc = lock_wait(s);
	if (rc == EOWNERDEAD) {
		log_warn("%s: the previous writer died holding the registry lock; repairing",
		         __func__);
		held(s);
		shm__rebuild(s);
		pthread_mutex_consistent(&s->hdr->lock);
		return 1;
	}
	if (rc)
		return -rc;
	held(s);
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
	ck_pr_store_32((uint32_t *)&s->hdr->lock_owner, 0);
	pthread_mutex_unlock(&s->hdr->lock);
}

void shm_set_lock_wait(shm_t *s, uint32_t ms)
{
	ck_pr_store_32(&s->hdr->lock_wait_ms, ms);
}

void shm_lock_state(shm_t *s, shm_lock_state_t *out)
{
	out->seq = ck_pr_load_64(&s->hdr->lock_seq);
	ck_pr_fence_load();
	out->pid = (int)ck_pr_load_32((uint32_t *)&s->hdr->lock_owner);
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
		held(s);
		shm__rebuild(s);
		pthread_mutex_consistent(&s->hdr->lock);
		shm__unlock(s);
		return 1;
	}
	if (rc)
		return -rc;
	held(s);
	int repaired = 0;
	if (s->hdr->undo.active) {
		shm__rebuild(s);
		repaired = 1;
	}
	shm__unlock(s);
	return repaired;
}

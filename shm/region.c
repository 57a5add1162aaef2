/*
 * region.c - create, attach and describe the region; the process table and
 * per-process counters.
 *
 * The master creates the region (O_EXCL, mode 0600) or attaches to the one
 * it left; every other process inherits the mapping, and `artemis check`
 * attaches by name.  Creation backs the memory a start needs (reserve.c),
 * writes every section, then the header's magic last: a region without the
 * magic is a creation that died half-way and is made anew.
 *
 * The region file is not trusted: before anything is mapped, its owner
 * must be this user and no one else may write it (another local user could
 * otherwise pre-create the name with offsets of their choosing); after it
 * is mapped, every field of the header that names memory is validated
 * against the file's length and the layout (layout.c) before any offset is
 * followed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "artemis/clock.h"

#include "shm_int.h"

static bool pid_alive(int pid);

#define ALIGN_UP(x, a) (((x) + (a)-1) & ~((uint64_t)(a)-1))
#define PAGE           4096

static char error_detail[256];

const char *shm_error_detail(void)
{
	return error_detail;
}

void shm_params_default(shm_params_t *p, const char *name)
{
	memset(p, 0, sizeof(*p));
	p->name = name;
	p->max_instances = 1000000;
	p->lease_ttl_ms = 20000;
	p->legacy_ttl_ms = 90000;
	p->self_preservation = true;
	p->preserve_window_ms = 12000;
	p->legacy_preserve_window_ms = 60000;
	p->lock_wait_ms = 500;
}

static void bind_sections(shm_t *s)
{
	struct shm_header_sh *h = s->hdr;
	s->procs = (struct shm_proc_sh *)(s->base + h->sec[SHM_SEC_PROCS].off);
	s->counters = (uint64_t *)(s->base + h->sec[SHM_SEC_COUNTERS].off);
	s->slots = (struct shm_slot_sh *)(s->base + h->sec[SHM_SEC_SLOTS].off);
	s->services = (struct shm_service_sh *)(s->base + h->sec[SHM_SEC_SERVICES].off);
	s->svc_index = (uint32_t *)(s->base + h->sec[SHM_SEC_SVC_INDEX].off);
	s->changes = (struct shm_change_sh *)(s->base + h->sec[SHM_SEC_CHANGELOG].off);
	s->arena = s->base + h->sec[SHM_SEC_ARENA].off;
	s->evicted = (uint64_t *)(s->base + h->sec[SHM_SEC_EVICTED].off);
	s->mgmt = h->sec[SHM_SEC_MGMT].size ? s->base + h->sec[SHM_SEC_MGMT].off : NULL;
}

int shm_mutex_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int rc = pthread_mutexattr_init(&a);
	if (rc)
		return -rc;
	rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	if (!rc)
		rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	if (!rc)
		rc = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	if (rc)
		snprintf(error_detail, sizeof(error_detail),
		         "cannot make the writer lock (robust, process-shared mutex): %s",
		         strerror(rc));
	return -rc;
}

/* Fill a mapped, backed, zeroed file from the template; the magic last. */
static int init_region(shm_t *s, const struct shm_header_sh *tmpl)
{
	struct shm_header_sh *h = s->hdr;
	if (h == NULL)
		return -EINVAL;
	memcpy(h, tmpl, sizeof(*h));
	h->magic = 0;
	int rc = shm__reserve_initial(s);
	if (rc)
		return rc;
	if ((rc = shm_mutex_init(&h->lock)))
		return rc;
	uint64_t inc = 0;
	if (getrandom(&inc, sizeof(inc), 0) != sizeof(inc))
		inc = clock_wall_ms() ^ ((uint64_t)getpid() << 32);
	h->incarnation = inc;
	if (getrandom(&h->tag_seed, sizeof(h->tag_seed), 0) != sizeof(h->tag_seed))
		h->tag_seed = inc * 0x9e3779b97f4a7c15ULL + clock_mono_ns();
	/* A day in the past: relative times are never 0, and a clock set back
	 * a little does not wrap them. */
	h->epoch_ms = clock_wall_ms() - 86400000ull;
	h->arena_bump = SHM_ARENA_START;
	h->undo.slot = UINT32_MAX;
	for (int m = 0; m < SHM_MGR_COUNT; m++)
		h->preserve[m].safe = 1;
	bind_sections(s);
	shm__index_init(s);
	ck_pr_fence_store();
	ck_pr_store_64(&h->magic, SHM_MAGIC);
	return 0;
}

static int map_fd(int fd, size_t size, bool ro, shm_t *s)
{
	void *p = mmap(NULL, size, ro ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return errno ? -errno : -ENOMEM;
	/* Huge pages cut the TLB misses of random slot and index accesses;
	 * the kernel grants them for a /dev/shm file only when that tmpfs is
	 * mounted with huge=advise (or within_size, always), or when
	 * /sys/kernel/mm/transparent_hugepage/shmem_enabled is "force", and
	 * ignores the advice otherwise (docs/OPERATIONS.md). */
	madvise(p, size, MADV_HUGEPAGE);
	s->base = p;
	s->size = size;
	s->hdr = p;
	s->read_only = ro;
	return 0;
}

static void unmap(shm_t *s)
{
	if (s->base)
		munmap(s->base, s->size);
	s->base = NULL;
	s->hdr = NULL;
}

/* Only this user may have made or changed the file. */
static int check_owner(int fd, struct stat *st)
{
	if (fstat(fd, st) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode)) {
		snprintf(error_detail, sizeof(error_detail), "it is not a regular file");
		return -EPERM;
	}
	if (st->st_uid != geteuid()) {
		snprintf(error_detail, sizeof(error_detail),
		         "it is owned by uid %u, not by this user (uid %u)", (unsigned)st->st_uid,
		         (unsigned)geteuid());
		return -EPERM;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(error_detail, sizeof(error_detail),
		         "its mode %04o lets other users write it",
		         (unsigned)(st->st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* Map an existing region's file and validate its header. */
static int attach_mapped(shm_t *s, int fd, const struct stat *st, bool ro)
{
	if (st->st_size < (off_t)sizeof(struct shm_header_sh))
		return -ENODATA;
	int rc = map_fd(fd, (size_t)st->st_size, ro, s);
	if (rc)
		return rc;
	rc = shm__validate(s->hdr, (uint64_t)st->st_size, !ro, error_detail, sizeof(error_detail));
	if (rc) {
		unmap(s);
		return rc;
	}
	bind_sections(s);
	return 0;
}

static shm_t *handle_new(const char *name)
{
	shm_t *s = calloc(1, sizeof(*s));
	if (s) {
		s->proc = -1;
		s->fd = -1;
		snprintf(s->name, sizeof(s->name), "%s", name);
	}
	return s;
}

static void handle_free(shm_t *s)
{
	unmap(s);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

/* Make a new region on s->fd (empty, or an unfinished creation). */
static int create_on(shm_t *s, const struct shm_header_sh *tmpl, shm_open_info_t *info)
{
	uint64_t head = ALIGN_UP(sizeof(*tmpl), PAGE);
	info->reserve_bytes = shm__reserve_minimum(tmpl);
	if (ftruncate(s->fd, 0) < 0 || ftruncate(s->fd, (off_t)tmpl->region_size) < 0)
		return -errno;
	int rc = shm__reserve_range(s->fd, 0, head);
	if (rc)
		return rc;
	if ((rc = map_fd(s->fd, tmpl->region_size, false, s)))
		return rc;
	if ((rc = init_region(s, tmpl)))
		return rc;
	info->created = true;
	info->reserve_bytes = shm__reserved_total(s);
	return 0;
}

/* The master's attach to the region it left: back its memory, take it. */
static int attach_existing(shm_t *s, const shm_params_t *p, int flags, shm_open_info_t *info)
{
	if (flags & SHM_CREATE_EXCL)
		return -EEXIST;
	int rc = shm__reserve_all(s);
	info->reserve_bytes = shm__reserved_total(s);
	if (rc)
		return rc;
	info->was_clean = s->hdr->clean != 0;
	ck_pr_store_32(&s->hdr->clean, 0);
	shm_set_lock_wait(s, p->lock_wait_ms);
	info->repaired = shm_repair(s) > 0;
	return 0;
}

/* --fresh: never pull a live master's region out from under it, and never
 * discard a file that is not ours. */
static int discard_old(const char *name)
{
	shm_t *old = NULL;
	int rc = shm_attach(name, true, &old);
	if (rc == -EPERM)
		return rc;
	if (rc == 0 && old) {
		int pid = (int)ck_pr_load_32((uint32_t *)&old->hdr->master_pid);
		shm_detach(old);
		if (pid && pid != getpid() && pid_alive(pid))
			return -EBUSY;
	}
	shm_unlink(name);
	return 0;
}

/* *made: the file was (being) made by us, so a failure removes it. */
static int open_or_create(shm_t *s, const shm_params_t *p, const struct shm_header_sh *tmpl,
                          int flags, shm_open_info_t *info, bool *made)
{
	s->fd = shm_open(p->name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (s->fd >= 0) {
		*made = true;
		return create_on(s, tmpl, info);
	}
	if (errno != EEXIST)
		return -errno;
	if ((s->fd = shm_open(p->name, O_RDWR, 0)) < 0)
		return -errno;
	struct stat st;
	int rc = check_owner(s->fd, &st);
	if (rc)
		return rc;
	rc = attach_mapped(s, s->fd, &st, false);
	if (rc == 0)
		return attach_existing(s, p, flags, info);
	if (rc != -ENODATA)
		return rc;
	*made = true; /* an unfinished creation (no magic): anew */
	return create_on(s, tmpl, info);
}

int shm_open_region(const shm_params_t *p, int flags, shm_t **out, shm_open_info_t *info)
{
	struct shm_header_sh tmpl;
	shm_open_info_t dummy;
	if (!info)
		info = &dummy;
	memset(info, 0, sizeof(*info));
	error_detail[0] = '\0';
	int rc = shm__layout(p, &tmpl);
	if (rc)
		return rc;
	tmpl.lock_wait_ms = p->lock_wait_ms;
	info->region_bytes = tmpl.region_size;
	if ((flags & SHM_CREATE_FRESH) && (rc = discard_old(p->name)))
		return rc;
	shm_t *s = handle_new(p->name);
	if (!s)
		return -ENOMEM;
	bool made = false;
	rc = open_or_create(s, p, &tmpl, flags, info, &made);
	if (rc) {
		if (made) /* a creation that failed half-way leaves nothing behind */
			shm_unlink(p->name);
		info->created = false;
		handle_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

static int attach_fd_into(shm_t *s, int fd, bool ro)
{
	struct stat st;
	s->fd = fd;
	int rc = check_owner(fd, &st);
	if (rc == 0)
		rc = attach_mapped(s, fd, &st, ro);
	return rc;
}

int shm_attach(const char *name, bool read_only, shm_t **out)
{
	error_detail[0] = '\0';
	shm_t *s = handle_new(name);
	if (!s)
		return -ENOMEM;
	int fd = shm_open(name, read_only ? O_RDONLY : O_RDWR, 0);
	if (fd < 0) {
		int rc = -errno;
		free(s);
		return rc;
	}
	int rc = attach_fd_into(s, fd, read_only);
	if (rc) {
		handle_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int shm_attach_fd(int fd, bool read_only, shm_t **out)
{
	error_detail[0] = '\0';
	int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dup < 0)
		return -errno;
	shm_t *s = handle_new("(fd)");
	if (!s) {
		close(dup);
		return -ENOMEM;
	}
	int rc = attach_fd_into(s, dup, read_only);
	if (rc) {
		handle_free(s);
		return rc;
	}
	snprintf(s->name, sizeof(s->name), "%s", s->hdr->name);
	*out = s;
	return 0;
}

int shm_create_fd(int fd, const shm_params_t *p, shm_t **out)
{
	struct shm_header_sh tmpl;
	shm_open_info_t info;
	memset(&info, 0, sizeof(info));
	error_detail[0] = '\0';
	int rc = shm__layout(p, &tmpl);
	if (rc)
		return rc;
	tmpl.lock_wait_ms = p->lock_wait_ms;
	int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dup < 0)
		return -errno;
	shm_t *s = handle_new(p->name);
	if (!s) {
		close(dup);
		return -ENOMEM;
	}
	s->fd = dup;
	if ((rc = create_on(s, &tmpl, &info))) {
		handle_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void shm_detach(shm_t *s)
{
	if (!s)
		return;
	if (s->proc >= 0 && !s->read_only)
		shm_proc_leave(s);
	handle_free(s);
}

int shm_destroy(const char *name)
{
	return shm_unlink(name) < 0 ? -errno : 0;
}

void shm_set_clean(shm_t *s, bool clean)
{
	ck_pr_store_32(&s->hdr->clean, clean ? 1 : 0);
	msync(s->base, PAGE, MS_ASYNC);
}

bool shm_was_clean(const shm_t *s)
{
	return ck_pr_load_32(&s->hdr->clean) != 0;
}

const char *shm_name(const shm_t *s)
{
	return s->hdr->name;
}

uint64_t shm_incarnation(const shm_t *s)
{
	return s->hdr->incarnation;
}

void shm_get_params(const shm_t *s, shm_params_t *out)
{
	const struct shm_header_sh *h = s->hdr;
	shm_params_default(out, h->name);
	out->max_instances = h->max_instances;
	out->max_services = h->max_services;
	out->changelog_size = h->changelog_size;
	out->arena_bytes = h->arena_size;
	out->lease_ttl_ms = h->ttl_ms[SHM_MGR_NORMAL];
	out->legacy_ttl_ms = h->ttl_ms[SHM_MGR_LEGACY];
	out->self_preservation = h->self_preservation != 0;
	out->preserve_window_ms = h->window_ms[SHM_MGR_NORMAL];
	out->legacy_preserve_window_ms = h->window_ms[SHM_MGR_LEGACY];
	out->lock_wait_ms = ck_pr_load_32((uint32_t *)&h->lock_wait_ms);
	out->mgmt_bytes = h->mgmt_size;
	out->mgmt_initial_bytes = (uint64_t)h->mgmt_initial_pages * 4096u;
}

void *shm_mgmt_area(const shm_t *s, size_t *len)
{
	if (len)
		*len = s->mgmt ? (size_t)s->hdr->sec[SHM_SEC_MGMT].size : 0;
	return s->mgmt;
}

/* ---- process table ---- */

static bool pid_alive(int pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static bool claim(shm_t *s, int i, int pid, int role)
{
	struct shm_proc_sh *p = &s->procs[i];
	int32_t cur = (int32_t)ck_pr_load_32((uint32_t *)&p->pid);
	if (cur == pid)
		goto mine;
	if (cur != 0 && pid_alive(cur))
		return false;
	if (!ck_pr_cas_32((uint32_t *)&p->pid, (uint32_t)cur, (uint32_t)pid))
		return false;
mine:
	ck_pr_store_32((uint32_t *)&p->role, (uint32_t)role);
	s->proc = i;
	return true;
}

/* Entries: 0 master, 1 reaper, 2 replicator, 8.. workers by slot, the rest
 * for CLIs and tests; a fixed entry keeps a respawned child's counters. */
int shm_proc_join(shm_t *s, enum shm_role role, int slot_hint)
{
	if (s->read_only)
		return -EROFS;
	int pid = getpid();
	int want = -1;
	if (role == SHM_ROLE_MASTER)
		want = 0;
	else if (role == SHM_ROLE_REAPER)
		want = 1;
	else if (role == SHM_ROLE_REPLICATOR)
		want = 2;
	else if (role == SHM_ROLE_WORKER && slot_hint >= 0 && slot_hint < 40)
		want = 8 + slot_hint;
	if (want >= 0 && claim(s, want, pid, role))
		return want;
	for (int i = 48; i < SHM_MAX_PROCS; i++)
		if (claim(s, i, pid, role))
			return i;
	for (int i = 3; i < 48; i++)
		if (claim(s, i, pid, role))
			return i;
	return -ENOSPC;
}

void shm_proc_leave(shm_t *s)
{
	if (s->proc < 0)
		return;
	struct shm_proc_sh *p = &s->procs[s->proc];
	ck_pr_cas_32((uint32_t *)&p->pid, (uint32_t)getpid(), 0);
	s->proc = -1;
}

void shm_proc_beat(shm_t *s, uint64_t now_ms)
{
	if (s->proc >= 0)
		ck_pr_store_64(&s->procs[s->proc].beat_ms, now_ms);
}

void shm_proc_reclaim(shm_t *s, int pid)
{
	for (int i = 0; i < SHM_MAX_PROCS; i++)
		ck_pr_cas_32((uint32_t *)&s->procs[i].pid, (uint32_t)pid, 0);
}

int shm_proc_list(shm_t *s, shm_proc_info_t *out, int max)
{
	int n = 0;
	for (int i = 0; i < SHM_MAX_PROCS && n < max; i++) {
		int pid = (int)ck_pr_load_32((uint32_t *)&s->procs[i].pid);
		if (!pid)
			continue;
		out[n].pid = pid;
		out[n].role = (int)ck_pr_load_32((uint32_t *)&s->procs[i].role);
		out[n].beat_ms = ck_pr_load_64(&s->procs[i].beat_ms);
		n++;
	}
	return n;
}

uint64_t *shm_proc_counters(shm_t *s)
{
	if (s->proc < 0)
		shm_proc_join(s, SHM_ROLE_TEST, -1);
	if (s->proc < 0)
		return NULL;
	return s->counters + (size_t)s->proc * SHM_PROC_COUNTERS;
}

void shm_proc_counters_sum(shm_t *s, uint64_t *out)
{
	memset(out, 0, sizeof(uint64_t) * SHM_PROC_COUNTERS);
	for (int i = 0; i < SHM_MAX_PROCS; i++) {
		const uint64_t *c = s->counters + (size_t)i * SHM_PROC_COUNTERS;
		for (int j = 0; j < SHM_PROC_COUNTERS; j++)
			out[j] += ck_pr_load_64((uint64_t *)&c[j]);
	}
}

void shm_stats(shm_t *s, shm_stats_t *o)
{
	struct shm_header_sh *h = s->hdr;
	memset(o, 0, sizeof(*o));
	o->instances = ck_pr_load_32(&h->live);
	for (uint32_t i = 0; i < ck_pr_load_32(&h->svc_used) && i < h->max_services; i++)
		if (ck_pr_load_32(&s->services[i].count))
			o->services++;
	o->registers = ck_pr_load_64(&h->registers);
	o->unregisters = ck_pr_load_64(&h->unregisters);
	o->evictions = ck_pr_load_64(&h->evictions);
	o->removals = ck_pr_load_64(&h->removals);
	o->repairs = ck_pr_load_64(&h->repairs);
	o->version = ck_pr_load_64(&h->head);
	o->arena_used = ck_pr_load_64(&h->arena_used);
	o->arena_size = h->arena_size;
	o->region_size = h->region_size;
	o->reserved_bytes = shm__reserved_total(s);
	o->max_instances = h->max_instances;
	o->max_services = h->max_services;
	for (int i = 0; i < SHM_MAX_PROCS; i++) {
		for (int m = 0; m < SHM_MGR_COUNT; m++)
			o->renewals += ck_pr_load_64(&s->procs[i].renewals[m]);
		o->renewals_failed += ck_pr_load_64(&s->procs[i].renewals_failed);
	}
}

/* ---- the master's claim ---- */

int shm_claim_master(shm_t *s, int *other)
{
	uint32_t *mp = (uint32_t *)&s->hdr->master_pid;
	uint32_t me = (uint32_t)getpid();
	for (;;) {
		uint32_t cur = ck_pr_load_32(mp);
		if (cur == me)
			return 0;
		if (cur != 0 && pid_alive((int)cur)) {
			if (other)
				*other = (int)cur;
			return -EBUSY;
		}
		if (ck_pr_cas_32(mp, cur, me))
			return 0;
	}
}

void shm_release_master(shm_t *s)
{
	ck_pr_cas_32((uint32_t *)&s->hdr->master_pid, (uint32_t)getpid(), 0);
}

/* ---- node and peer status ---- */

void shm_node_set_state(shm_t *s, enum shm_node_state state)
{
	ck_pr_store_32(&s->hdr->node_state, (uint32_t)state);
}

enum shm_node_state shm_node_state(const shm_t *s)
{
	return (enum shm_node_state)ck_pr_load_32((uint32_t *)&s->hdr->node_state);
}

int shm_peer_set(shm_t *s, int id, const shm_peer_t *peer)
{
	if (id <= 0 || id >= SHM_MAX_NODES)
		return -EINVAL;
	struct shm_peer_sh *p = &s->hdr->peers[id];
	ck_sequence_write_begin(&p->seq);
	memcpy(&p->peer, peer, sizeof(*peer));
	p->peer.name[sizeof(p->peer.name) - 1] = '\0';
	p->peer.zone[sizeof(p->peer.zone) - 1] = '\0';
	p->peer.url[sizeof(p->peer.url) - 1] = '\0';
	p->used = 1;
	ck_sequence_write_end(&p->seq);
	return 0;
}

int shm_peer_get(shm_t *s, int id, shm_peer_t *peer)
{
	if (id <= 0 || id >= SHM_MAX_NODES)
		return -EINVAL;
	const struct shm_peer_sh *p = &s->hdr->peers[id];
	for (unsigned attempt = 0; attempt < SHM_READ_RETRIES; attempt++) {
		unsigned v = ck_pr_load_uint(&p->seq.sequence);
		ck_pr_fence_load();
		if (!(v & 1)) {
			uint32_t used = ck_pr_load_32((uint32_t *)&p->used);
			memcpy(peer, &p->peer, sizeof(*peer));
			if (!ck_sequence_read_retry(&p->seq, v)) {
				peer->name[sizeof(peer->name) - 1] = '\0';
				peer->zone[sizeof(peer->zone) - 1] = '\0';
				peer->url[sizeof(peer->url) - 1] = '\0';
				return used ? 0 : -ENOENT;
			}
		}
		shm__stall(attempt);
	}
	return -EBUSY;
}

void shm_peers_clear(shm_t *s)
{
	for (int id = 1; id < SHM_MAX_NODES; id++) {
		struct shm_peer_sh *p = &s->hdr->peers[id];
		ck_sequence_write_begin(&p->seq);
		p->used = 0;
		memset(&p->peer, 0, sizeof(p->peer));
		ck_sequence_write_end(&p->seq);
	}
}

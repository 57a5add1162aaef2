/*
 * region.c - create, attach and describe the region; the process table and
 * per-process counters.
 *
 * Creation writes every section, then the header's magic last: a region
 * without the magic is a creation that died half-way and is made anew.
 * Attach validates magic, layout version and size before trusting any
 * offset.  The master creates; every other process attaches by name.
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
}

static uint32_t pow2_at_least(uint64_t n)
{
	uint64_t p = 16;
	while (p < n)
		p <<= 1;
	return p > UINT32_MAX ? 0x80000000u : (uint32_t)p;
}

static uint32_t clamp_window(uint32_t ms)
{
	if (ms < 10000)
		ms = 10000;
	if (ms > 300000)
		ms = 300000;
	return ms / 1000 * 1000;
}

/* Compute every section's size and offset from the parameters. */
static int layout(const shm_params_t *p, struct shm_header_sh *h)
{
	if (!p->name || p->name[0] != '/' || strlen(p->name) >= sizeof(h->name))
		return -EINVAL;
	if (p->max_instances == 0 || p->max_instances > (1u << 26))
		return -EINVAL;
	memset(h, 0, sizeof(*h));
	h->layout_version = SHM_LAYOUT_VERSION;
	h->header_size = sizeof(*h);
	snprintf(h->name, sizeof(h->name), "%s", p->name);
	h->max_instances = p->max_instances;
	uint32_t ms = p->max_services;
	if (!ms) {
		ms = p->max_instances / 4;
		if (ms < 1024)
			ms = 1024;
		if (ms > 262144)
			ms = 262144;
	}
	h->max_services = ms;
	uint32_t cl = p->changelog_size ? p->changelog_size : 65536;
	if (cl & (cl - 1) || cl < 64)
		return -EINVAL;
	h->changelog_size = cl;
	h->index_size = pow2_at_least((uint64_t)p->max_instances * 2);
	h->svc_index_size = pow2_at_least((uint64_t)ms * 2);
	h->ttl_ms[SHM_MGR_NORMAL] = p->lease_ttl_ms ? p->lease_ttl_ms : 20000;
	h->ttl_ms[SHM_MGR_LEGACY] = p->legacy_ttl_ms ? p->legacy_ttl_ms : 90000;
	h->window_ms[SHM_MGR_NORMAL] =
	    clamp_window(p->preserve_window_ms ? p->preserve_window_ms : 12000);
	h->window_ms[SHM_MGR_LEGACY] =
	    clamp_window(p->legacy_preserve_window_ms ? p->legacy_preserve_window_ms : 60000);
	h->self_preservation = p->self_preservation;
	uint64_t arena = p->arena_bytes ? p->arena_bytes
	                                : (uint64_t)p->max_instances * 2048 + (uint64_t)cl * 1024;
	h->arena_size = ALIGN_UP(arena, PAGE);

	uint64_t off = ALIGN_UP(sizeof(*h), PAGE);
	h->off_procs = off;
	off = ALIGN_UP(off + sizeof(struct shm_proc_sh) * SHM_MAX_PROCS, PAGE);
	h->off_counters = off;
	off = ALIGN_UP(off + sizeof(uint64_t) * SHM_PROC_COUNTERS * SHM_MAX_PROCS, PAGE);
	h->off_slots = off;
	off = ALIGN_UP(off + sizeof(struct shm_slot_sh) * (uint64_t)p->max_instances, PAGE);
	for (int i = 0; i < 2; i++) {
		h->off_index[i] = off;
		off = ALIGN_UP(off + sizeof(uint64_t) * (uint64_t)h->index_size, PAGE);
	}
	h->off_services = off;
	off = ALIGN_UP(off + sizeof(struct shm_service_sh) * (uint64_t)ms, PAGE);
	h->off_svc_index = off;
	off = ALIGN_UP(off + sizeof(uint32_t) * (uint64_t)h->svc_index_size, PAGE);
	h->off_changelog = off;
	off = ALIGN_UP(off + sizeof(struct shm_change_sh) * (uint64_t)cl, PAGE);
	h->off_evicted = off;
	off = ALIGN_UP(off + sizeof(uint64_t) * (((uint64_t)p->max_instances + 63) / 64), PAGE);
	h->off_arena = off;
	/* SHM_MAX_BLOCK of slack: a reader following a torn offset below
	 * arena_size never reads past the mapping. */
	off = ALIGN_UP(off + h->arena_size + SHM_MAX_BLOCK, PAGE);
	/* The management section last: its size does not move the others. */
	h->mgmt_size = ALIGN_UP(p->mgmt_bytes, PAGE);
	h->off_mgmt = h->mgmt_size ? off : 0;
	off += h->mgmt_size;
	h->region_size = off;
	return 0;
}

static void bind_sections(shm_t *s)
{
	struct shm_header_sh *h = s->hdr;
	s->procs = (struct shm_proc_sh *)(s->base + h->off_procs);
	s->counters = (uint64_t *)(s->base + h->off_counters);
	s->slots = (struct shm_slot_sh *)(s->base + h->off_slots);
	s->services = (struct shm_service_sh *)(s->base + h->off_services);
	s->svc_index = (uint32_t *)(s->base + h->off_svc_index);
	s->changes = (struct shm_change_sh *)(s->base + h->off_changelog);
	s->arena = s->base + h->off_arena;
	s->evicted = (uint64_t *)(s->base + h->off_evicted);
	s->mgmt = h->mgmt_size ? s->base + h->off_mgmt : NULL;
}

int shm_mutex_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int rc = pthread_mutexattr_init(&a);
	if (!rc)
		rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	if (!rc)
		rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	if (!rc)
		rc = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return -rc;
}

static void init_region(shm_t *s, const struct shm_header_sh *tmpl)
{
	struct shm_header_sh *h = s->hdr;
	memcpy(h, tmpl, sizeof(*h));
	h->magic = 0;
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
	shm_mutex_init(&h->lock);
	bind_sections(s);
	shm__index_init(s);
	ck_pr_fence_store();
	ck_pr_store_64(&h->magic, SHM_MAGIC);
}

static int map_fd(int fd, size_t size, bool ro, shm_t *s)
{
	void *p = mmap(NULL, size, ro ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
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

/* Validate a mapped header before trusting its offsets. */
static int validate(shm_t *s, size_t file_size)
{
	struct shm_header_sh *h = s->hdr;
	if (file_size < sizeof(*h) || ck_pr_load_64(&h->magic) != SHM_MAGIC)
		return -ENODATA;
	if (h->layout_version != SHM_LAYOUT_VERSION || h->header_size != sizeof(*h))
		return -EPROTO;
	if (h->region_size != file_size)
		return -EPROTO;
	struct shm_header_sh chk;
	shm_params_t p;
	shm_params_default(&p, h->name);
	p.max_instances = h->max_instances;
	p.max_services = h->max_services;
	p.changelog_size = h->changelog_size;
	p.arena_bytes = h->arena_size;
	p.mgmt_bytes = h->mgmt_size;
	if (layout(&p, &chk) || chk.region_size != h->region_size ||
	    chk.off_arena != h->off_arena || chk.off_slots != h->off_slots ||
	    chk.off_evicted != h->off_evicted || chk.off_mgmt != h->off_mgmt)
		return -EPROTO;
	bind_sections(s);
	return 0;
}

static shm_t *handle_new(const char *name)
{
	shm_t *s = calloc(1, sizeof(*s));
	if (s) {
		s->proc = -1;
		snprintf(s->name, sizeof(s->name), "%s", name);
	}
	return s;
}

int shm_open_region(const shm_params_t *p, int flags, shm_t **out, shm_open_info_t *info)
{
	struct shm_header_sh tmpl;
	shm_open_info_t dummy;
	if (!info)
		info = &dummy;
	memset(info, 0, sizeof(*info));
	int rc = layout(p, &tmpl);
	if (rc)
		return rc;
	if (flags & SHM_CREATE_FRESH) {
		/* Never pull a live master's region out from under it. */
		shm_t *old = NULL;
		if (shm_attach(p->name, true, &old) == 0) {
			int pid = (int)ck_pr_load_32((uint32_t *)&old->hdr->master_pid);
			shm_detach(old);
			if (pid && pid != getpid() && pid_alive(pid))
				return -EBUSY;
		}
		shm_unlink(p->name);
	}
	shm_t *s = handle_new(p->name);
	if (!s)
		return -ENOMEM;
	int fd = shm_open(p->name, O_RDWR | O_CREAT, 0600);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto fail_fd;
	}
	if (st.st_size > 0) {
		if ((rc = map_fd(fd, (size_t)st.st_size, false, s)))
			goto fail_fd;
		rc = validate(s, (size_t)st.st_size);
		if (rc == 0) {
			if (flags & SHM_CREATE_EXCL) {
				rc = -EEXIST;
				goto fail_map;
			}
			info->was_clean = s->hdr->clean != 0;
			ck_pr_store_32(&s->hdr->clean, 0);
			info->repaired = shm_repair(s) > 0;
			close(fd);
			*out = s;
			return 0;
		}
		if (rc != -ENODATA)
			goto fail_map;
		/* An unfinished creation: make it anew. */
		munmap(s->base, s->size);
		s->base = NULL;
	}
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)tmpl.region_size) < 0) {
		rc = -errno;
		goto fail_fd;
	}
	if ((rc = map_fd(fd, tmpl.region_size, false, s)))
		goto fail_fd;
	init_region(s, &tmpl);
	close(fd);
	info->created = true;
	*out = s;
	return 0;
fail_map:
	munmap(s->base, s->size);
fail_fd:
	close(fd);
fail:
	free(s);
	return rc;
}

int shm_attach(const char *name, bool read_only, shm_t **out)
{
	shm_t *s = handle_new(name);
	if (!s)
		return -ENOMEM;
	int rc;
	int fd = shm_open(name, read_only ? O_RDONLY : O_RDWR, 0);
	if (fd < 0) {
		rc = -errno;
		free(s);
		return rc;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto fail_fd;
	}
	if (st.st_size < (off_t)sizeof(struct shm_header_sh)) {
		rc = -ENODATA;
		goto fail_fd;
	}
	if ((rc = map_fd(fd, (size_t)st.st_size, read_only, s)))
		goto fail_fd;
	if ((rc = validate(s, (size_t)st.st_size))) {
		munmap(s->base, s->size);
		goto fail_fd;
	}
	close(fd);
	*out = s;
	return 0;
fail_fd:
	close(fd);
	free(s);
	return rc;
}

void shm_detach(shm_t *s)
{
	if (!s)
		return;
	if (s->proc >= 0 && !s->read_only)
		shm_proc_leave(s);
	munmap(s->base, s->size);
	free(s);
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
	out->mgmt_bytes = h->mgmt_size;
}

void *shm_mgmt_area(const shm_t *s, size_t *len)
{
	if (len)
		*len = s->mgmt ? (size_t)s->hdr->mgmt_size : 0;
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

/*
 * route.c - the routing transaction (mgmt.h: mgmt_rtx_*), and the rebuild
 * and check of the routing image.
 *
 * A routing write, under the projection's writer lock (projection.c):
 *   1. begin: the lock (rebuilding the projection first when a writer
 *      died), BEGIN IMMEDIATE, the write's stamp;
 *   2. the handler's calls (route_model.c): rows and audit records;
 *   3. commit: the down set (operations and group operations) and the
 *      routing image rebuilt from the store inside the transaction; refused
 *      when either exceeds its room; the counters; COMMIT; then the down
 *      set published (notices: `delete`/`new` for instances a group binds,
 *      `reload` per service whose group went down or up), the image
 *      published, the generation moved, and one `reload` per service the
 *      write touched or whose routing changed; unlock.
 * Anything failing before COMMIT rolls back and changes nothing; a death
 * after it is repaired from the store by the next locker (mgmt.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artemis/log.h"
#include "route_int.h"

mgmt_t *mgmt_rtx_handle(mgmt_rtx_t *t)
{
	return t->m;
}

int mgmt_rtx_begin(mgmt_t *m, const mgmt_ctx_t *given, mgmt_rtx_t **out, char *err, size_t err_len)
{
	proj_t *p = proj_of(m->shm);
	mgmt_ctx_t c, *ctx = &c;
	int rc;
	*out = NULL;
	/* The authenticated user is the operator when the request names none. */
	store_ctx_fill(&m->st, given, &c);
	if ((rc = mgmt_check_operator(ctx, err, err_len)) < 0)
		return rc;
	if (!p) {
		snprintf(err, err_len, "the region has no management projection");
		return -ENODEV;
	}
	mgmt_rtx_t *t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	t->m = m;
	t->st = &m->st;
	t->p = p;
	t->ctx = *ctx;
	if ((rc = mgmt_lock_writer(m, p, err, err_len)) < 0) {
		free(t);
		return rc;
	}
	if ((rc = store_begin(t->st, true, err, err_len)) < 0) {
		proj_unlock(p);
		free(t);
		return rc;
	}
	if (store_stamp_load(t->st, &t->stamp) < 0) {
		rc = store_fail(t->st, "reading the counters", err, err_len);
		store_rollback(t->st);
		proj_unlock(p);
		free(t);
		return rc;
	}
	*out = t;
	return 0;
}

static void rtx_free(mgmt_rtx_t *t)
{
	for (size_t i = 0; i < t->nservices; i++)
		free(t->services[i]);
	free(t->services);
	free(t);
}

void mgmt_rtx_abort(mgmt_rtx_t *t)
{
	if (!t)
		return;
	store_rollback(t->st);
	proj_unlock(t->p);
	rtx_free(t);
}

/* ---- Reloads --------------------------------------------------------------------------- */

typedef struct {
	char **names;
	size_t n;
	shm_notice_t *v;
	size_t nv, cap;
	buf_t keep; /* the registered names, NUL-separated (notices point into it) */
} reloads_t;

static int reload_service(void *ctx, const char *service, size_t len,
                          const shm_service_info_t *info)
{
	reloads_t *r = ctx;
	char low[SHM_MAX_SERVICE + 1];
	(void)info;
	if (len > SHM_MAX_SERVICE)
		return 0;
	for (size_t i = 0; i < len; i++)
		low[i] =
		    (char)(service[i] >= 'A' && service[i] <= 'Z' ? service[i] + 32 : service[i]);
	low[len] = '\0';
	for (size_t i = 0; i < r->n; i++) {
		if (strcmp(r->names[i], low) != 0)
			continue;
		if (r->nv == r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 16;
			shm_notice_t *v = realloc(r->v, cap * sizeof(*v));
			if (!v)
				return -ENOMEM;
			r->v = v;
			r->cap = cap;
		}
		r->v[r->nv].type = SHM_CHANGE_RELOAD;
		r->v[r->nv].slot = (uint32_t)r->keep.len; /* made a pointer below */
		r->v[r->nv].service.len = len;
		r->nv++;
		buf_append(&r->keep, service, len + 1);
		break;
	}
	return buf_error(&r->keep);
}

/* One `reload` for each registered service (case-insensitively) among
 * names (lowercase). */
static int send_reloads(shm_t *shm, char **names, size_t n)
{
	reloads_t r = {.names = names, .n = n};
	if (n == 0)
		return 0;
	int rc = shm_services_foreach(shm, reload_service, &r);
	if (rc >= 0 && r.nv) {
		for (size_t i = 0; i < r.nv; i++)
			r.v[i].service.ptr = r.keep.data + r.v[i].slot;
		rc = shm_notify(shm, r.v, r.nv);
	}
	free(r.v);
	buf_free(&r.keep);
	return rc < 0 ? rc : 0;
}

/* ---- Publishing the image -------------------------------------------------------------- */

/* Under the lock: make img the image readers use, and tell the services
 * it changed (plus `touched`). */
static int publish_image(shm_t *shm, proj_t *p, const route_image_t *img, uint64_t gen,
                         char **touched, size_t ntouched)
{
	char **changed = NULL;
	size_t n = 0, cap = 0;
	int rc = route_publish(shm, route_area_of(p), img, gen, &changed, &n, &cap);
	if (rc == 0) {
		proj_bump(p);
		for (size_t i = 0; i < ntouched && rc == 0; i++) {
			size_t j = 0;
			while (j < n && strcmp(changed[j], touched[i]) != 0)
				j++;
			if (j < n)
				continue;
			if (n == cap) {
				size_t c = cap ? cap * 2 : 16;
				char **v = realloc(changed, c * sizeof(*v));
				if (!v) {
					rc = -ENOMEM;
					break;
				}
				changed = v;
				cap = c;
			}
			if (!(changed[n] = strdup(touched[i])))
				rc = -ENOMEM;
			else
				n++;
		}
		int r = send_reloads(shm, changed, n);
		if (r < 0)
			log_warn("%s: the reload notices of a routing change were not sent: %s",
			         __func__, strerror(-r));
	}
	for (size_t i = 0; i < n; i++)
		free(changed[i]);
	free(changed);
	return rc;
}

int route_rebuild_locked(store_t *st, shm_t *shm, proj_t *p, uint64_t gen, char **touched,
                         size_t ntouched, char *err, size_t err_len)
{
	route_image_t img;
	int rc = store_begin(st, false, err, err_len);
	if (rc < 0)
		return rc;
	rc = route_build(st, shm, &img, err, err_len);
	store_rollback(st);
	if (rc < 0)
		return rc;
	rc = publish_image(shm, p, &img, gen, touched, ntouched);
	if (rc == -ENOSPC)
		snprintf(
		    err, err_len,
		    "the store's routing data (%zu bytes) exceeds [management] routing_bytes (%u)",
		    img.len, route_buf_bytes(route_area_of(p)));
	else if (rc == -ENOBUFS)
		snprintf(err, err_len,
		         "/dev/shm has no room for the routing data (%zu bytes); it is published "
		         "when space comes back",
		         img.len);
	else if (rc < 0)
		snprintf(err, err_len, "publishing the routing image: %s", strerror(-rc));
	route_image_free(&img);
	return rc;
}

/* ---- Commit ------------------------------------------------------------------------------- */

int mgmt_rtx_commit(mgmt_rtx_t *t, char *err, size_t err_len)
{
	tagset_t set = {0};
	route_image_t img = {0};
	shm_t *shm = t->m->shm;
	int rc;
	if (t->failed) {
		if (err_len && !err[0])
			snprintf(err, err_len, "a part of the write failed");
		mgmt_rtx_abort(t);
		return -ECANCELED;
	}
	if ((rc = tagset_init(&set, 16)) < 0 ||
	    (rc = mgmt_store_down_set(t->st, shm, &set, err, err_len)) < 0)
		goto fail;
	if (set.count > proj_capacity(t->p)) {
		snprintf(err, err_len,
		         "more than %u operations would be in force ([management] max_operations)",
		         proj_capacity(t->p));
		rc = -ENOSPC;
		goto fail;
	}
	if ((rc = route_build(t->st, shm, &img, err, err_len)) < 0)
		goto fail;
	if (img.len > route_buf_bytes(route_area_of(t->p))) {
		snprintf(
		    err, err_len,
		    "the routing data would take %zu bytes, more than [management] routing_bytes "
		    "(%u)",
		    img.len, route_buf_bytes(route_area_of(t->p)));
		rc = -ENOSPC;
		goto fail;
	}
	if ((rc = route_reserve(shm, route_area_of(t->p), img.len)) < 0) {
		snprintf(err, err_len,
		         "out of shared memory: /dev/shm has no room for the routing data (%zu "
		         "bytes); the write was refused",
		         img.len);
		goto fail;
	}
	if (store_stamp_save(t->st, &t->stamp) < 0) {
		rc = store_fail(t->st, "writing the counters", err, err_len);
		goto fail;
	}
	if ((rc = store_commit(t->st, err, err_len)) < 0)
		goto fail;
	/* Committed: from here on the store has it, and a death is repaired. */
	if (proj_failpoint)
		proj_failpoint(PROJ_AT_COMMITTED);
	uint64_t gen = (uint64_t)t->stamp.generation;
	if ((rc = proj_publish(t->p, shm, &set, gen, NULL, 0)) < 0)
		log_warn("%s: routing write committed; its notices wait: %s", __func__,
		         strerror(-rc));
	if ((rc = publish_image(shm, t->p, &img, gen, t->services, t->nservices)) < 0) {
		/* Not reached with an image that fit: the next writer rebuilds. */
		log_warn("%s: routing write committed; its image waits: %s", __func__,
		         strerror(-rc));
		proj_mark_dirty(t->p);
	}
	tagset_free(&set);
	route_image_free(&img);
	proj_unlock(t->p);
	rtx_free(t);
	return 0;
fail:
	tagset_free(&set);
	route_image_free(&img);
	mgmt_rtx_abort(t);
	return rc;
}

/* ---- Check ----------------------------------------------------------------------------------- */

int route_check(store_t *st, shm_t *shm, proj_t *p, char *msg, size_t len)
{
	route_image_t img;
	uint64_t digest = 0, gen = 0;
	int64_t sgen = 0;
	bool settled = false;
	int rc = store_begin(st, false, msg, len);
	if (rc < 0)
		return rc;
	if (store_meta_get(st, "generation", &sgen) < 0) {
		store_rollback(st);
		return store_fail(st, "reading the generation", msg, len);
	}
	rc = route_build(st, shm, &img, msg, len);
	store_rollback(st);
	if (rc < 0)
		return rc;
	rc = route_snapshot(route_area_of(p), &digest, &gen, &settled);
	uint64_t want = img.digest;
	route_image_free(&img);
	if (rc < 0) {
		snprintf(msg, len, "reading the routing image: %s", strerror(-rc));
		return rc;
	}
	if (!settled) {
		snprintf(msg, len, "routing image: never built from the store");
		return -EIO;
	}
	if (digest != want) {
		snprintf(
		    msg, len,
		    "routing image: differs from the store's groups, rules and canaries (built "
		    "from generation %llu, the store is at %lld)",
		    (unsigned long long)gen, (long long)sgen);
		return -EIO;
	}
	if (!route_in_reserved(shm, route_area_of(p))) {
		snprintf(msg, len, "routing image: not within the memory reserved for it");
		return -EIO;
	}
	return 0;
}

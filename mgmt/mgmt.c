/*
 * mgmt.c - the module's entry points (include/artemis/mgmt.h): a process's
 * handle, the master's boot and repair, `artemis check`, and the write path
 * that ties the store and the projection together.
 *
 * The write path, under the projection's writer lock (projection.c):
 *   1. if the projection must be rebuilt (a writer died, or it was never
 *      built), rebuild it from the store and publish that first;
 *   2. BEGIN IMMEDIATE; for each change the row and its audit record; the
 *      new set of tags in force (the targets whose state the write touched,
 *      re-read); refuse beyond the capacity; the meta counters; COMMIT;
 *   3. publish the set (flip, then notices), unlock.
 * Anything failing before COMMIT rolls back and changes nothing; a death
 * after it is repaired from the store by the next locker.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "artemis/codec.h"
#include "artemis/log.h"
#include "mgmt_int.h"
#include "route_int.h"

/* ---- Keys ------------------------------------------------------------------------ */

static bool blank(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
			return false;
	return true;
}

int mgmt_field_set(char *dst, size_t size, const char *s, size_t len)
{
	while (len && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
		s++, len--;
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' ||
	               s[len - 1] == '\n'))
		len--;
	if (len >= size) {
		dst[0] = '\0';
		return -ENAMETOOLONG;
	}
	if (memchr(s, '\0', len)) {
		dst[0] = '\0';
		return -EINVAL;
	}
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

int mgmt_key_check(const mgmt_key_t *k, const char **field)
{
	const char *dummy;
	if (!field)
		field = &dummy;
	*field = "regionId";
	if (k->kind >= MGMT_KINDS || blank(k->region))
		return -EINVAL;
	switch (k->kind) {
	case MGMT_INSTANCE:
		*field = "serviceId";
		if (blank(k->service))
			return -EINVAL;
		*field = "instanceId";
		if (blank(k->instance))
			return -EINVAL;
		break;
	case MGMT_SERVER:
		*field = "serverId";
		if (blank(k->server))
			return -EINVAL;
		break;
	default:
		*field = "zoneId";
		if (blank(k->zone))
			return -EINVAL;
		break;
	}
	*field = "operation";
	if (blank(k->operation))
		return -EINVAL;
	*field = NULL;
	return 0;
}

uint64_t mgmt_key_tag(const shm_t *shm, const mgmt_key_t *k)
{
	shm_str_t p[3];
	switch (k->kind) {
	case MGMT_INSTANCE:
		p[0] = (shm_str_t){k->region, strlen(k->region)};
		p[1] = (shm_str_t){k->service, strlen(k->service)};
		p[2] = (shm_str_t){k->instance, strlen(k->instance)};
		return shm_tag(shm, SHM_TAG_INSTANCE, p, 3);
	case MGMT_SERVER:
		p[0] = (shm_str_t){k->region, strlen(k->region)};
		p[1] = (shm_str_t){k->server, strlen(k->server)};
		return shm_tag(shm, SHM_TAG_SERVER, p, 2);
	default:
		p[0] = (shm_str_t){k->region, strlen(k->region)};
		p[1] = (shm_str_t){k->zone, strlen(k->zone)};
		p[2] = (shm_str_t){k->service, strlen(k->service)};
		return k->service[0] ? shm_tag(shm, SHM_TAG_ZONE_SERVICE, p, 3)
		                     : shm_tag(shm, SHM_TAG_ZONE, p, 2);
	}
}

/* ---- Rebuilding the projection from the store ---------------------------------------- */

typedef struct {
	const shm_t *shm;
	tagset_t *set;
} collect_t;

static int collect_target(void *ctx, const mgmt_key_t *k)
{
	collect_t *c = ctx;
	return tagset_add(c->set, mgmt_key_tag(c->shm, k)) < 0 ? -ENOMEM : 0;
}

int mgmt_store_down_set(store_t *st, const shm_t *shm, tagset_t *set, char *err, size_t err_len)
{
	collect_t c = {shm, set};
	int rc = model_targets(st, collect_target, &c, err, err_len);
	return rc < 0 ? rc : route_down_tags(st, shm, set, err, err_len);
}

/* The store's targets in force and its generation, in one read transaction. */
static int store_targets(store_t *st, const shm_t *shm, tagset_t *set, uint64_t *gen, char *err,
                         size_t err_len)
{
	int64_t g = 0;
	int rc = tagset_init(set, 16);
	if (rc < 0)
		return rc;
	if ((rc = store_begin(st, false, err, err_len)) < 0)
		goto fail;
	if (store_meta_get(st, "generation", &g) < 0) {
		rc = store_fail(st, "reading the generation", err, err_len);
		goto fail;
	}
	if ((rc = mgmt_store_down_set(st, shm, set, err, err_len)) < 0)
		goto fail;
	store_rollback(st); /* a read: nothing to commit */
	*gen = (uint64_t)g;
	return 0;
fail:
	store_rollback(st);
	tagset_free(set);
	return rc;
}

/* Under the lock: the projection from the store, published. */
int mgmt_rebuild_locked(store_t *st, shm_t *shm, proj_t *p, char *err, size_t err_len)
{
	tagset_t set = {0};
	uint64_t gen = 0;
	int rc = store_targets(st, shm, &set, &gen, err, err_len);
	if (rc < 0)
		return rc;
	if ((rc = route_rebuild_locked(st, shm, p, gen, NULL, 0, err, err_len)) < 0) {
		tagset_free(&set);
		return rc;
	}
	rc = proj_publish(p, shm, &set, gen, NULL, 0);
	tagset_free(&set);
	if (rc == -ENOSPC) {
		snprintf(err, err_len,
		         "the store holds more operations in force than the projection's capacity "
		         "(%u, [management] max_operations)",
		         proj_capacity(p));
		return rc;
	}
	if (rc < 0) {
		snprintf(err, err_len, "publishing the projection: %s", strerror(-rc));
		return rc;
	}
	proj_mark_clean(p);
	return 0;
}

/* Take the writer lock, rebuilding first when that is owed. */
int mgmt_lock_writer(mgmt_t *m, proj_t *p, char *err, size_t err_len)
{
	int rc = proj_lock(p, m->busy_timeout_ms);
	if (rc == -EBUSY) {
		snprintf(err, err_len, "another management write held the lock for %u ms",
		         m->busy_timeout_ms);
		return rc;
	}
	if (rc < 0) {
		snprintf(err, err_len, "projection lock: %s", strerror(-rc));
		return rc;
	}
	if (rc == 1 && (rc = mgmt_rebuild_locked(&m->st, m->shm, p, err, err_len)) < 0) {
		proj_unlock(p);
		return rc;
	}
	return 0;
}

/* ---- Lifecycle ------------------------------------------------------------------------ */

int mgmt_open(const config_t *cfg, shm_t *shm, mgmt_t **out, char *err, size_t err_len)
{
	mgmt_t *m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	int rc = store_open(&m->st, cfg, STORE_RW, err, err_len);
	if (rc < 0) {
		free(m);
		return rc;
	}
	m->shm = shm;
	m->cfg = cfg;
	m->busy_timeout_ms = cfg->mgmt_busy_timeout_ms ? cfg->mgmt_busy_timeout_ms : 500;
	*out = m;
	return 0;
}

void mgmt_close(mgmt_t *m)
{
	if (!m)
		return;
	store_close(&m->st);
	free(m->cache);
	free(m);
}

void mgmt_set_actor(mgmt_t *m, const char *username)
{
	if (m)
		snprintf(m->st.actor, sizeof(m->st.actor), "%s", username ? username : "");
}

void store_ctx_fill(const store_t *st, const mgmt_ctx_t *in, mgmt_ctx_t *out)
{
	*out = *in;
	if ((!out->operator_id || blank(out->operator_id)) && st->actor[0])
		out->operator_id = st->actor;
	if (st->actor[0])
		out->token = NULL;
}

int mgmt_boot(const config_t *cfg, shm_t *shm, char *err, size_t err_len)
{
	store_t st;
	int rc = store_open(&st, cfg, STORE_MIGRATE, err, err_len);
	if (rc < 0)
		return rc;
	if ((rc = proj_init(shm, cfg->mgmt_max_operations,
	                    cfg->mgmt_routing_bytes ? cfg->mgmt_routing_bytes
	                                            : MGMT_ROUTING_BYTES_DEFAULT)) < 0) {
		snprintf(err, err_len, "the region has no management section: %s", strerror(-rc));
		store_close(&st);
		return rc;
	}
	proj_t *p = proj_of(shm);
	rc = proj_lock(p, st.busy_timeout_ms);
	if (rc >= 0) {
		/* Users first: the projection then records the generation of
		 * the store as the boot leaves it. */
		rc = users_boot(&st, cfg, err, err_len);
		if (rc >= 0)
			rc = mgmt_rebuild_locked(&st, shm, p, err, err_len);
		proj_unlock(p);
	} else {
		snprintf(err, err_len, "projection lock: %s", strerror(-rc));
	}
	store_close(&st);
	return rc;
}

int mgmt_repair(const config_t *cfg, shm_t *shm, char *err, size_t err_len)
{
	proj_t *p = proj_of(shm);
	if (!p)
		return 0;
	int rc = proj_trylock(p);
	if (rc <= 0) {
		if (rc == 0)
			proj_unlock(p);
		return rc;
	}
	store_t st;
	rc = store_open(&st, cfg, STORE_RW, err, err_len);
	if (rc == 0) {
		rc = mgmt_rebuild_locked(&st, shm, p, err, err_len);
		store_close(&st);
	}
	proj_unlock(p);
	return rc < 0 ? rc : 1;
}

/* ---- Check ----------------------------------------------------------------------------- */

typedef struct {
	const shm_t *shm;
	instance_parser_t *parser;
	char *msg;
	size_t len;
	int rc;
} tags_check_t;

/* Every registered instance carries the tags of its own fields. */
static int check_instance(void *ctx, const shm_instance_view_t *v, const char *json, size_t len)
{
	tags_check_t *c = ctx;
	shm_instance_in_t si;
	uint64_t want[SHM_TAGS];
	if (instance_parse(c->parser, json, len, &si, NULL) < 0)
		return 0; /* the registry's own check judges its JSON */
	shm_instance_tags(c->shm, &si, want);
	if (memcmp(want, v->tags, sizeof(want)) != 0) {
		snprintf(c->msg, c->len, "instance %s: its filter tags do not match its fields",
		         v->display);
		c->rc = -EIO;
		return 1;
	}
	return 0;
}

static int check_tags(shm_t *shm, char *msg, size_t len)
{
	tags_check_t c = {shm, instance_parser_new(), msg, len, 0};
	uint32_t next = 0;
	if (!c.parser)
		return -ENOMEM;
	int rc = shm_instances_walk(shm, &next, 0, check_instance, &c);
	instance_parser_free(c.parser);
	if (c.rc)
		return c.rc;
	if (rc < 0)
		snprintf(msg, len, "walking the registry: %s", strerror(-rc));
	return rc < 0 ? rc : 0;
}

static bool pid_alive(int pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* One comparison; 0 equal, 1 a write in progress (retry), -EIO different. */
static int compare_once(store_t *st, shm_t *shm, const proj_t *p, char *msg, size_t len)
{
	tagset_t want = {0}, have = {0};
	uint64_t sgen = 0, pgen = 0;
	bool settled = false;
	int holder = 0, rc = store_targets(st, shm, &want, &sgen, msg, len);
	if (rc < 0)
		return rc;
	if ((rc = proj_snapshot(p, &have, &pgen, &settled, &holder)) < 0) {
		tagset_free(&want);
		snprintf(msg, len, "reading the projection: %s", strerror(-rc));
		return rc;
	}
	bool same = want.count == have.count;
	uint32_t wanted = want.count;
	uint64_t tag;
	for (uint32_t i = 0; same && tagset_next(&want, &i, &tag);)
		same = tagset_has(&have, tag);
	tagset_free(&want);
	tagset_free(&have);
	if (same && settled && sgen == pgen)
		return route_check(st, shm, (proj_t *)p, msg, len);
	if (holder && pid_alive(holder))
		return 1;
	if (!settled)
		snprintf(msg, len,
		         "projection: an interrupted management write is not repaired yet (the "
		         "master repairs it when it reaps the writer)");
	else if (!same)
		snprintf(msg, len,
		         "projection: the operations in force differ from the store's (%u in the "
		         "store at generation %llu, projection built from generation %llu)",
		         (unsigned)wanted, (unsigned long long)sgen, (unsigned long long)pgen);
	else
		snprintf(msg, len,
		         "projection built from store generation %llu, the store is at %llu",
		         (unsigned long long)pgen, (unsigned long long)sgen);
	return -EIO;
}

int mgmt_check(const config_t *cfg, shm_t *shm, char *msg, size_t msg_len)
{
	const proj_t *p = proj_of(shm);
	store_t st;
	if (!p) {
		snprintf(msg, msg_len, "the region has no management projection");
		return -EIO;
	}
	int rc = store_open(&st, cfg, STORE_RO, msg, msg_len);
	if (rc < 0)
		return -EIO;
	/* A live writer in the middle of a write: wait for it (at most 5 s). */
	for (int attempt = 0; attempt < 100; attempt++) {
		rc = compare_once(&st, shm, p, msg, msg_len);
		if (rc != 1)
			break;
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
	store_close(&st);
	if (rc == 1) {
		snprintf(msg, msg_len, "projection: a management write stayed in progress");
		return -EIO;
	}
	if (rc < 0)
		return -EIO;
	return check_tags(shm, msg, msg_len) < 0 ? -EIO : 0;
}

/* ---- Writes -------------------------------------------------------------------------------- */

int mgmt_check_operator(const mgmt_ctx_t *ctx, char *err, size_t err_len)
{
	if (!ctx->operator_id || blank(ctx->operator_id)) {
		snprintf(err, err_len, "operatorId is null or empty");
		return -EINVAL;
	}
	if (strlen(ctx->operator_id) > MGMT_MAX_OPERATOR) {
		snprintf(err, err_len, "operatorId is longer than %d", MGMT_MAX_OPERATOR);
		return -EINVAL;
	}
	return 0;
}

static int validate(const mgmt_change_t *changes, size_t n, const mgmt_ctx_t *ctx, char *err,
                    size_t err_len)
{
	const char *field;
	/* Java's order (ModelUtil.check): the key's fields, operation, operator. */
	if (n == 0 || n > MGMT_MAX_BATCH) {
		snprintf(err, err_len, "a write names 1 to %d keys", MGMT_MAX_BATCH);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (mgmt_key_check(&changes[i].key, &field) < 0) {
			snprintf(err, err_len, "%s is null or empty", field);
			return -EINVAL;
		}
	}
	return mgmt_check_operator(ctx, err, err_len);
}

int mgmt_next_set(mgmt_t *m, const mgmt_key_t *keys, size_t n, const tagset_t *old, tagset_t *next,
                  uint32_t capacity, char *err, size_t err_len)
{
	store_t *st = &m->st;
	tagset_t touched = {0}, routed = {0};
	uint64_t tag;
	int rc = 0;
	memset(next, 0, sizeof(*next));
	if (tagset_init(&touched, (uint32_t)n) < 0 || tagset_init(next, old->count) < 0 ||
	    tagset_init(&routed, 16) < 0)
		goto nomem;
	/* An instance a pulled-out group binds stays down. */
	if ((rc = route_down_tags(st, m->shm, &routed, err, err_len)) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		bool live = false;
		if ((rc = model_target_live(st, &keys[i], &live, err, err_len)) < 0)
			goto fail;
		tag = mgmt_key_tag(m->shm, &keys[i]);
		live = live || tagset_has(&routed, tag);
		if (tagset_add(&touched, tag) < 0 || (live && tagset_add(next, tag) < 0))
			goto nomem;
	}
	for (uint32_t i = 0; tagset_next(old, &i, &tag);)
		if (!tagset_has(&touched, tag) && tagset_add(next, tag) < 0)
			goto nomem;
	tagset_free(&touched);
	tagset_free(&routed);
	if (next->count > capacity) {
		snprintf(err, err_len,
		         "more than %u operations would be in force ([management] max_operations)",
		         capacity);
		tagset_free(next);
		return -ENOSPC;
	}
	return 0;
nomem:
	snprintf(err, err_len, "out of memory");
	rc = -ENOMEM;
fail:
	tagset_free(&touched);
	tagset_free(&routed);
	tagset_free(next);
	return rc;
}

void mgmt_publish_keys(mgmt_t *m, proj_t *p, const tagset_t *next, uint64_t gen,
                       const mgmt_key_t *keys, size_t n)
{
	bool by_key = keys != NULL;
	/* Committed: from here on the store has it, and a death is repaired. */
	if (proj_failpoint)
		proj_failpoint(PROJ_AT_COMMITTED);
	for (size_t i = 0; i < n && by_key; i++)
		by_key = keys[i].kind == MGMT_INSTANCE;
	int rc = proj_publish(p, m->shm, next, gen, by_key ? keys : NULL, by_key ? n : 0);
	if (rc < 0) /* in force already (the flip never fails); the notices are
	             * owed and `dirty` makes the next writer send them */
		log_warn("%s: management write committed; its notices wait: %s", __func__,
		         strerror(-rc));
}

/* The write's transaction: rows, records, the new set.  Rolls back on error. */
static int apply_txn(mgmt_t *m, const mgmt_change_t *changes, const mgmt_key_t *keys, size_t n,
                     const mgmt_ctx_t *ctx, const tagset_t *old, tagset_t *next,
                     store_stamp_t *stamp, uint32_t capacity, char *err, size_t err_len)
{
	store_t *st = &m->st;
	memset(next, 0, sizeof(*next));
	int rc = store_begin(st, true, err, err_len);
	if (rc < 0)
		return rc;
	if (store_stamp_load(st, stamp) < 0) {
		rc = store_fail(st, "reading the counters", err, err_len);
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		op_row_t before, after;
		rc = model_apply(st, &changes[i], ctx, stamp, &before, &after, err, err_len);
		if (rc == 0)
			rc = audit_write_change(st, &changes[i], ctx, stamp, &before, &after, err,
			                        err_len);
		if (rc < 0)
			goto fail;
	}
	/* The new set: the old one, with each touched target as the store now
	 * has it (an instance a pulled-out group binds stays down). */
	if ((rc = mgmt_next_set(m, keys, n, old, next, capacity, err, err_len)) < 0)
		goto fail;
	if (store_stamp_save(st, stamp) < 0) {
		rc = store_fail(st, "writing the counters", err, err_len);
		goto fail;
	}
	return store_commit(st, err, err_len);
fail:
	store_rollback(st);
	tagset_free(next);
	return rc;
}

int mgmt_apply(mgmt_t *m, const mgmt_change_t *changes, size_t n, const mgmt_ctx_t *given,
               char *err, size_t err_len)
{
	proj_t *p = proj_of(m->shm);
	tagset_t old = {0}, next = {0};
	store_stamp_t stamp;
	mgmt_ctx_t c, *ctx = &c;
	mgmt_key_t *keys;
	store_ctx_fill(&m->st, given, &c);
	int rc = validate(changes, n, ctx, err, err_len);
	if (rc < 0)
		return rc;
	if (!p) {
		snprintf(err, err_len, "the region has no management projection");
		return -ENODEV;
	}
	if (!(keys = malloc(n * sizeof(*keys)))) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		keys[i] = changes[i].key;
	if ((rc = mgmt_lock_writer(m, p, err, err_len)) < 0)
		goto out_keys;
	if ((rc = proj_copy_active(p, &old)) < 0) {
		snprintf(err, err_len, "reading the projection: %s", strerror(-rc));
		goto out;
	}
	rc = apply_txn(m, changes, keys, n, ctx, &old, &next, &stamp, proj_capacity(p), err,
	               err_len);
	tagset_free(&old);
	if (rc < 0)
		goto out;
	mgmt_publish_keys(m, p, &next, (uint64_t)stamp.generation, keys, n);
	tagset_free(&next);
out:
	proj_unlock(p);
out_keys:
	free(keys);
	return rc;
}

uint64_t mgmt_auth_generation(mgmt_t *m)
{
	proj_t *p = m ? proj_of(m->shm) : NULL;
	return p ? proj_auth_generation(p) : 0;
}

/* ---- Reads --------------------------------------------------------------------------------- */

int mgmt_ops(mgmt_t *m, const mgmt_op_filter_t *f, mgmt_op_fn fn, void *ctx)
{
	return model_list(&m->st, f, fn, ctx);
}

int mgmt_audit_query(mgmt_t *m, const mgmt_audit_filter_t *f, mgmt_audit_fn fn, void *ctx)
{
	return audit_query(&m->st, f, fn, ctx);
}

int mgmt_audit_get(mgmt_t *m, int64_t id, mgmt_audit_fn fn, void *ctx)
{
	return audit_get(&m->st, id, fn, ctx);
}

int mgmt_audit_stats(mgmt_t *m, const mgmt_audit_filter_t *f, buf_t *out)
{
	return audit_stats(&m->st, f, out);
}

int mgmt_write(mgmt_t *m, mgmt_write_fn fn, void *arg, bool ends_sessions, char *err,
               size_t err_len)
{
	proj_t *p = proj_of(m->shm);
	store_stamp_t stamp;
	store_t *st = &m->st;
	int rc;
	if (!p) {
		snprintf(err, err_len, "the region has no management projection");
		return -ENODEV;
	}
	if ((rc = mgmt_lock_writer(m, p, err, err_len)) < 0)
		return rc;
	if ((rc = store_begin(st, true, err, err_len)) < 0)
		goto out;
	if (store_stamp_load(st, &stamp) < 0) {
		rc = store_fail(st, "reading the counters", err, err_len);
		store_rollback(st);
		goto out;
	}
	if ((rc = fn(st, &stamp, arg, err, err_len)) < 0) {
		store_rollback(st);
		goto out;
	}
	if (store_stamp_save(st, &stamp) < 0) {
		rc = store_fail(st, "writing the counters", err, err_len);
		store_rollback(st);
		goto out;
	}
	if (store_commit(st, err, err_len) < 0) {
		rc = -EIO;
		goto out;
	}
	/* Nothing in force changed: the projection records the generation;
	 * every worker drops its sessions when one may have ended. */
	proj_note_generation(p, (uint64_t)stamp.generation);
	if (ends_sessions)
		proj_auth_bump(p);
out:
	proj_unlock(p);
	return rc;
}

typedef struct {
	uint64_t before_ms;
	uint64_t *deleted;
	const mgmt_ctx_t *ctx;
} cleanup_t;

static int cleanup_txn(store_t *st, store_stamp_t *stamp, void *arg, char *err, size_t err_len)
{
	cleanup_t *c = arg;
	int rc = audit_delete_before(st, c->before_ms, c->deleted, err, err_len);
	if (rc == 0)
		rc =
		    audit_write_cleanup(st, c->before_ms, *c->deleted, c->ctx, stamp, err, err_len);
	return rc;
}

int mgmt_audit_cleanup(mgmt_t *m, uint64_t before_ms, const mgmt_ctx_t *given, uint64_t *deleted,
                       char *err, size_t err_len)
{
	mgmt_ctx_t ctx;
	store_ctx_fill(&m->st, given, &ctx);
	int rc = mgmt_check_operator(&ctx, err, err_len);
	if (rc < 0)
		return rc;
	cleanup_t c = {before_ms, deleted, &ctx};
	return mgmt_write(m, cleanup_txn, &c, false, err, err_len);
}

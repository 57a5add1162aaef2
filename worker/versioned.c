/*
 * versioned.c - per-worker snapshots of all services for services.json and
 * services-delta.json (see versioned.h for the versioning rule).
 *
 * A snapshot holds the services.json array as it was served, plus an index
 * of its instances: (serviceId, 128-bit hash of the lowercase InstanceKey,
 * the instance's JSON).  A delta is a merge of two such sorted indexes:
 * instances only in the old one are `delete`, only in the new one `new`
 * (Java's ServicesDeltaGenerator: diffed by InstanceKey, changed data of a
 * kept instance is not a change).
 *
 * Built only when a client asks (never on the heartbeat or lookup paths).
 * Memory: each held snapshot costs about the size of the services.json
 * response; at most VERSIONED_COUNT are held.
 */
#include "versioned.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "artemis/codec.h"
#include "artemis/mgmt.h"

typedef struct {
	uint32_t svc_off, svc_len;   /* service name in blob */
	uint32_t json_off, json_len; /* instance JSON in blob */
	XXH128_hash_t key;
} snap_inst_t;

typedef struct {
	bool used;
	uint64_t version;
	buf_t services; /* "[..]" as served */
	buf_t blob;
	snap_inst_t *inst;
	size_t n, cap;
} snap_t;

static snap_t snaps[VERSIONED_COUNT];
static shm_t *snaps_shm;

static void snap_free(snap_t *s)
{
	buf_free(&s->services);
	buf_free(&s->blob);
	free(s->inst);
	memset(s, 0, sizeof(*s));
}

void versioned_reset(void)
{
	for (int i = 0; i < VERSIONED_COUNT; i++)
		snap_free(&snaps[i]);
}

/* The lowercase InstanceKey "region\0service\0instance" of one stored
 * instance, hashed. */
static int snap_key(const char *json, size_t len, XXH128_hash_t *out)
{
	static const char *const canon[3] = {"regionid", "serviceid", "instanceid"};
	char buf[SHM_MAX_REGION + SHM_MAX_SERVICE + SHM_MAX_INSTANCE + 3];
	size_t n = 0;
	json_t *root = json_loadb(json, len, 0, NULL);

	if (root == NULL)
		return -EINVAL;
	for (int f = 0; f < 3; f++) {
		json_t *v = json_member(root, canon[f]);
		const char *s = json_is_string(v) ? json_string_value(v) : "";
		size_t l = json_is_string(v) ? json_string_length(v) : 0;
		if (n + l + 1 > sizeof(buf)) {
			json_decref(root);
			return -EINVAL;
		}
		for (size_t i = 0; i < l; i++)
			buf[n++] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
		buf[n++] = '\0';
	}
	json_decref(root);
	*out = XXH3_128bits(buf, n);
	return 0;
}

static int snap_push(snap_t *s, uint32_t svc_off, uint32_t svc_len, const char *json, size_t len)
{
	snap_inst_t *in;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		snap_inst_t *p = realloc(s->inst, cap * sizeof(*p));
		if (p == NULL)
			return -ENOMEM;
		s->inst = p;
		s->cap = cap;
	}
	in = &s->inst[s->n];
	if (snap_key(json, len, &in->key) < 0)
		return 0; /* not ours to judge: left out of the delta index */
	in->svc_off = svc_off;
	in->svc_len = svc_len;
	in->json_off = (uint32_t)s->blob.len;
	in->json_len = (uint32_t)len;
	if (buf_append(&s->blob, json, len) < 0)
		return -ENOMEM;
	s->n++;
	return 0;
}

/* Split the "[{..},{..}]" array of one service into its elements. */
static int snap_index_array(snap_t *s, uint32_t svc_off, uint32_t svc_len, const char *a,
                            size_t len)
{
	for (size_t i = 1; i < len;) {
		size_t n = a[i] == '{' ? json_value_len(a + i, len - i) : 0;
		if (n == 0) {
			i++; /* the separators, and the closing bracket */
			continue;
		}
		int rc = snap_push(s, svc_off, svc_len, a + i, n);
		if (rc < 0)
			return rc;
		i += n;
	}
	return 0;
}

typedef struct {
	shm_t *shm;
	snap_t *snap;
	buf_t arr; /* one service's instances array */
	bool first;
	bool all; /* list the instances operated down too */
	int rc;
} snap_build_t;

static int snap_service(void *ctx, const char *service, size_t len, const shm_service_info_t *info)
{
	snap_build_t *b = ctx;
	snap_t *s = b->snap;
	shm_str_t name = {service, len};
	shm_service_info_t got;
	uint32_t svc_off = (uint32_t)s->blob.len;
	int rc;

	(void)info;
	b->arr.len = 0;
	rc = b->all ? shm_service_read(b->shm, name, &b->arr, &got)
	            : mgmt_service_read(b->shm, name, &b->arr, &got);
	if (rc == -ENOENT || (rc == 0 && got.count == 0))
		return 0; /* empty (or every instance down): omitted, as Java omits them */
	if (rc < 0 || (rc = buf_append(&s->blob, service, len)) < 0)
		goto fail;
	if ((rc = snap_index_array(s, svc_off, (uint32_t)len, b->arr.data, b->arr.len)) < 0)
		goto fail;
	json_put_raw(&s->services, b->first ? "" : ",");
	json_put_raw(&s->services, "{\"instances\":");
	buf_append(&s->services, b->arr.data, b->arr.len);
	if ((rc = mgmt_route_frame(b->shm, name, &s->services)) < 0)
		goto fail;
	json_put_raw(&s->services, ",\"serviceId\":");
	json_put_str(&s->services, service, len);
	json_put_raw(&s->services, "}");
	if ((rc = buf_error(&s->services)) < 0)
		goto fail;
	b->first = false;
	return 0;
fail:
	b->rc = rc;
	return 1;
}

static int snap_cmp(const void *pa, const void *pb, void *blob)
{
	const snap_inst_t *a = pa, *b = pb;
	const char *base = blob;
	size_t n = a->svc_len < b->svc_len ? a->svc_len : b->svc_len;
	int c = memcmp(base + a->svc_off, base + b->svc_off, n);

	if (c)
		return c;
	if (a->svc_len != b->svc_len)
		return a->svc_len < b->svc_len ? -1 : 1;
	if (a->key.high64 != b->key.high64)
		return a->key.high64 < b->key.high64 ? -1 : 1;
	if (a->key.low64 != b->key.low64)
		return a->key.low64 < b->key.low64 ? -1 : 1;
	return 0;
}

static int snap_build(shm_t *shm, snap_t *s, uint64_t version, bool all)
{
	snap_build_t b = {.shm = shm, .snap = s, .first = true, .all = all};
	int rc;

	memset(s, 0, sizeof(*s));
	s->version = version;
	json_put_raw(&s->services, "[");
	rc = shm_services_foreach(shm, snap_service, &b);
	if (b.rc < 0)
		rc = b.rc; /* snap_service stopped the walk (returned 1) */
	json_put_raw(&s->services, "]");
	if (rc == 0)
		rc = buf_error(&s->services);
	buf_free(&b.arr);
	if (rc < 0) {
		snap_free(s);
		return rc;
	}
	if (s->n > 1)
		qsort_r(s->inst, s->n, sizeof(*s->inst), snap_cmp, s->blob.data);
	s->used = true;
	return 0;
}

static snap_t *snap_newest(void)
{
	snap_t *best = NULL;

	for (int i = 0; i < VERSIONED_COUNT; i++)
		if (snaps[i].used && (best == NULL || snaps[i].version > best->version))
			best = &snaps[i];
	return best;
}

static snap_t *snap_find(uint64_t version)
{
	for (int i = 0; i < VERSIONED_COUNT; i++)
		if (snaps[i].used && snaps[i].version == version)
			return &snaps[i];
	return NULL;
}

/* Drop snapshots of periods Java would no longer hold, then make room. */
static snap_t *snap_slot_for(uint64_t version)
{
	snap_t *oldest = NULL;

	for (int i = 0; i < VERSIONED_COUNT; i++) {
		snap_t *s = &snaps[i];
		if (s->used &&
		    s->version + (uint64_t)(VERSIONED_COUNT - 1) * VERSIONED_INTERVAL_MS < version)
			snap_free(s);
	}
	for (int i = 0; i < VERSIONED_COUNT; i++) {
		if (!snaps[i].used)
			return &snaps[i];
		if (oldest == NULL || snaps[i].version < oldest->version)
			oldest = &snaps[i];
	}
	snap_free(oldest);
	return oldest;
}

int versioned_force(shm_t *shm, uint64_t version)
{
	snap_t *s;

	if (shm != snaps_shm) {
		versioned_reset();
		snaps_shm = shm;
	}
	if ((s = snap_find(version)) != NULL)
		snap_free(s);
	return snap_build(shm, snap_slot_for(version), version, false);
}

/* The version of the current period, 0 during the initial delay.  A
 * management change (pull-out, pull-in) starts a new version at once: its
 * time, the same in every worker (mgmt_stamp_ms), so no worker serves a
 * snapshot older than the change. */
static uint64_t period_of(shm_t *shm, uint64_t now_ms, uint64_t started_ms)
{
	if (now_ms < started_ms + VERSIONED_INIT_DELAY_MS)
		return 0;
	uint64_t v = now_ms / VERSIONED_INTERVAL_MS * VERSIONED_INTERVAL_MS;
	uint64_t changed = mgmt_stamp_ms(shm);
	return changed > v ? changed : v;
}

static int refresh(shm_t *shm, uint64_t now_ms, uint64_t started_ms)
{
	uint64_t v = period_of(shm, now_ms, started_ms);
	snap_t *newest;

	if (shm != snaps_shm) {
		versioned_reset();
		snaps_shm = shm;
	}
	if (v == 0)
		return 0;
	newest = snap_newest();
	if (newest != NULL && newest->version >= v)
		return 0;
	return snap_build(shm, snap_slot_for(v), v, false);
}

int versioned_services(shm_t *shm, uint64_t now_ms, uint64_t started_ms, buf_t *out,
                       uint64_t *version)
{
	snap_t live;
	snap_t *s;
	int rc = refresh(shm, now_ms, started_ms);

	if (rc < 0)
		return rc;
	s = period_of(shm, now_ms, started_ms) ? snap_newest() : NULL;
	if (s != NULL) {
		*version = s->version;
		return buf_append(out, s->services.data, s->services.len);
	}
	/* Before the first period: computed live, version 0 (as Java). */
	if ((rc = snap_build(shm, &live, 0, false)) < 0)
		return rc;
	*version = 0;
	rc = buf_append(out, live.services.data, live.services.len);
	snap_free(&live);
	return rc;
}

int versioned_services_all(shm_t *shm, buf_t *out)
{
	snap_t live;
	int rc = snap_build(shm, &live, 0, true);

	if (rc < 0)
		return rc;
	rc = buf_append(out, live.services.data, live.services.len);
	snap_free(&live);
	return rc;
}

static void put_change(buf_t *out, const snap_t *s, const snap_inst_t *in, const char *type,
                       uint64_t now_ms, bool first)
{
	json_put_raw(out, first ? "{\"changeTime\":" : ",{\"changeTime\":");
	json_put_u64(out, now_ms);
	json_put_raw(out, ",\"changeType\":");
	json_put_cstr(out, type);
	json_put_raw(out, ",\"instance\":");
	buf_append(out, s->blob.data + in->json_off, in->json_len);
	json_put_raw(out, "}");
}

typedef struct {
	buf_t *out;
	const char *svc; /* service whose list is open, or NULL */
	size_t svc_len;
	bool first_service;
	bool first_change;
} delta_writer_t;

static void delta_emit(delta_writer_t *w, const snap_t *s, const snap_inst_t *in, const char *type,
                       uint64_t now_ms)
{
	const char *svc = s->blob.data + in->svc_off;

	if (w->svc == NULL || w->svc_len != in->svc_len || memcmp(w->svc, svc, in->svc_len) != 0) {
		if (w->svc != NULL)
			json_put_raw(w->out, "]");
		json_put_raw(w->out, w->first_service ? "" : ",");
		json_put_str(w->out, svc, in->svc_len);
		json_put_raw(w->out, ":[");
		w->svc = svc;
		w->svc_len = in->svc_len;
		w->first_service = false;
		w->first_change = true;
	}
	put_change(w->out, s, in, type, now_ms, w->first_change);
	w->first_change = false;
}

int versioned_delta(shm_t *shm, uint64_t now_ms, uint64_t started_ms, uint64_t version, buf_t *out,
                    uint64_t *newest_version)
{
	snap_t *old, *cur;
	delta_writer_t w = {.out = out, .first_service = true};
	size_t i = 0, j = 0;
	int rc = refresh(shm, now_ms, started_ms);

	if (rc < 0)
		return rc;
	old = version ? snap_find(version) : NULL;
	cur = snap_newest();
	if (old == NULL || cur == NULL || cur == old)
		return -ENOENT;
	json_put_raw(out, "{");
	while (!buf_error(out) && (i < old->n || j < cur->n)) {
		int c;
		if (i == old->n)
			c = 1;
		else if (j == cur->n)
			c = -1;
		else {
			/* Compare across two blobs: service name, then key. */
			const snap_inst_t *a = &old->inst[i], *b = &cur->inst[j];
			size_t n = a->svc_len < b->svc_len ? a->svc_len : b->svc_len;
			c = memcmp(old->blob.data + a->svc_off, cur->blob.data + b->svc_off, n);
			if (c == 0 && a->svc_len != b->svc_len)
				c = a->svc_len < b->svc_len ? -1 : 1;
			if (c == 0 && a->key.high64 != b->key.high64)
				c = a->key.high64 < b->key.high64 ? -1 : 1;
			if (c == 0 && a->key.low64 != b->key.low64)
				c = a->key.low64 < b->key.low64 ? -1 : 1;
		}
		if (c < 0)
			delta_emit(&w, old, &old->inst[i++], "delete", now_ms);
		else if (c > 0)
			delta_emit(&w, cur, &cur->inst[j++], "new", now_ms);
		else {
			i++;
			j++;
		}
	}
	if (w.svc != NULL)
		json_put_raw(out, "]");
	json_put_raw(out, "}");
	*newest_version = cur->version;
	return buf_error(out);
}

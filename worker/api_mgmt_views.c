/*
 * api_mgmt_views.c - the management views of the registry (API.md §5.1):
 * POST|GET /api/management/services.json and POST service.json, and the
 * console's paged list GET /api/management/services (counts, no instances).
 *
 * Unlike discovery they list every instance, each with `status` "down" when
 * an operation hides it and its registered status otherwise ("up" when it
 * registered none), and the lease in its metadata:
 * creationTime, renewalTime (epoch ms) and ttl, as strings (Java's
 * ManagementRepository.setServiceInstances).  The console lists services
 * of 10,000 instances and registries of 100,000 from here, so an instance
 * as this process stores it (compact, plain keys) is copied member by
 * member with only those changed (splice_instance); any other shape is
 * re-encoded through jansson, the same answer at ten times the cost.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "api_mgmt.h"
#include "artemis/clock.h"
#include "artemis/codec.h"

/* The length of the member value at s[0] (object, array, string, or a
 * number, true, false, null up to the next ',', '}' or ']'); 0 when it
 * does not end within n bytes. */
static size_t member_len(const char *s, size_t n)
{
	size_t i = 0;
	if (n && (s[0] == '{' || s[0] == '[' || s[0] == '"'))
		return json_value_len(s, n);
	while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']')
		i++;
	return i < n ? i : 0;
}

/* Walk the members of the compact object o[0..n): fn(key with its quotes,
 * value) for each.  -EAGAIN when it is not such an object (blanks, escaped
 * keys, truncation) or fn says so. */
static int each_member(const char *o, size_t n, int (*fn)(void *, shm_str_t, shm_str_t), void *ctx)
{
	size_t i = 1;
	if (n < 2 || o[0] != '{' || o[n - 1] != '}')
		return -EAGAIN;
	if (n == 2)
		return 0;
	for (;;) {
		shm_str_t k = {o + i, i < n ? json_value_len(o + i, n - i) : 0}, v;
		if (o[i] != '"' || k.len < 2 || memchr(k.ptr, '\\', k.len) || i + k.len >= n ||
		    o[i + k.len] != ':')
			return -EAGAIN;
		i += k.len + 1;
		v.ptr = o + i;
		v.len = member_len(o + i, n - i);
		if (v.len == 0)
			return -EAGAIN;
		i += v.len;
		if (i >= n)
			return -EAGAIN;
		int rc = fn(ctx, k, v);
		if (rc < 0)
			return rc;
		if (o[i] == '}' && i == n - 1)
			return 0;
		if (o[i] != ',')
			return -EAGAIN;
		i++;
	}
}

typedef struct {
	buf_t *b;
	int down;
	const char *lease; /* "creationTime":"..","renewalTime":"..","ttl":".." */
	int n;             /* members written at this level */
	bool status, metadata;
} splice_t;

static bool key_is(shm_str_t k, const char *quoted)
{
	return k.len == strlen(quoted) && memcmp(k.ptr, quoted, k.len) == 0;
}

static void put_member(splice_t *s, shm_str_t k, const char *v, size_t vlen)
{
	if (s->n++)
		json_put_raw(s->b, ",");
	buf_append(s->b, k.ptr, k.len);
	json_put_raw(s->b, ":");
	buf_append(s->b, v, vlen);
}

static int splice_metadata(void *ctx, shm_str_t k, shm_str_t v)
{
	splice_t *s = ctx;
	if (!key_is(k, "\"creationTime\"") && !key_is(k, "\"renewalTime\"") &&
	    !key_is(k, "\"ttl\""))
		put_member(s, k, v.ptr, v.len);
	return 0;
}

static int splice_top(void *ctx, shm_str_t k, shm_str_t v)
{
	splice_t *s = ctx;
	if (key_is(k, "\"status\"")) {
		s->status = true;
		if (s->down > 0 || v.ptr[0] != '"' || v.len < 3)
			v = s->down > 0 ? (shm_str_t){"\"down\"", 6} : (shm_str_t){"\"up\"", 4};
		put_member(s, k, v.ptr, v.len);
	} else if (key_is(k, "\"metadata\"")) {
		s->metadata = true;
		put_member(s, k, "{", 1);
		splice_t md = {.b = s->b};
		if (v.ptr[0] == '{' && each_member(v.ptr, v.len, splice_metadata, &md) < 0)
			return -EAGAIN;
		if (md.n)
			json_put_raw(s->b, ",");
		json_put_raw(s->b, s->lease);
		json_put_raw(s->b, "}");
	} else {
		put_member(s, k, v.ptr, v.len);
	}
	return 0;
}

/* The answer of api_mgmt_put_instance from the stored text itself; -EAGAIN
 * (nothing written) when it is not of the compact plain shape. */
static int splice_instance(buf_t *b, const char *json, size_t len, int down, const char *lease)
{
	size_t mark = b->len;
	splice_t s = {.b = b, .down = down, .lease = lease};
	json_put_raw(b, "{");
	if (each_member(json, len, splice_top, &s) < 0) {
		b->len = mark;
		return -EAGAIN;
	}
	if (!s.status)
		put_member(&s, (shm_str_t){"\"status\"", 8}, down > 0 ? "\"down\"" : "\"up\"",
		           down > 0 ? 6 : 4);
	if (!s.metadata) {
		put_member(&s, (shm_str_t){"\"metadata\"", 10}, "{", 1);
		json_put_raw(b, lease);
		json_put_raw(b, "}");
	}
	json_put_raw(b, "}");
	return buf_error(b);
}

int api_mgmt_put_instance(buf_t *b, const shm_instance_view_t *v, const char *json, size_t len)
{
	char num[32], lease[128];
	json_t *in, *md;
	char *text;
	int down = mgmt_down(api_shm(), v->tags);

	snprintf(lease, sizeof(lease),
	         "\"creationTime\":\"%llu\",\"renewalTime\":\"%llu\",\"ttl\":\"%u\"",
	         (unsigned long long)v->creation_ms, (unsigned long long)v->renewal_ms, v->ttl_ms);
	if (splice_instance(b, json, len, down, lease) != -EAGAIN)
		return buf_error(b);
	in = json_loadb(json, len, 0, NULL);
	if (!json_is_object(in)) {
		json_decref(in);
		return -EINVAL;
	}
	/* Down when an operation hides it; otherwise the status it registered
	 * with (MANAGEMENT.md §2: "every instance with its status"), "up" when
	 * it registered none. */
	json_t *st = json_object_get(in, "status");
	if (down > 0 || !json_is_string(st) || json_string_length(st) == 0)
		json_object_set_new(in, "status", json_string(down > 0 ? "down" : "up"));
	md = json_object_get(in, "metadata");
	if (!json_is_object(md)) {
		md = json_object();
		json_object_set_new(in, "metadata", md);
	}
	snprintf(num, sizeof(num), "%llu", (unsigned long long)v->creation_ms);
	json_object_set_new(md, "creationTime", json_string(num));
	snprintf(num, sizeof(num), "%llu", (unsigned long long)v->renewal_ms);
	json_object_set_new(md, "renewalTime", json_string(num));
	snprintf(num, sizeof(num), "%u", v->ttl_ms);
	json_object_set_new(md, "ttl", json_string(num));
	text = json_dumps(in, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(in);
	if (text == NULL)
		return -ENOMEM;
	int rc = buf_puts(b, text);
	free(text);
	return rc;
}

typedef struct {
	buf_t *out;
	int n;
	int rc;
} view_t;

static int view_instance(void *ctx, const shm_instance_view_t *v, const char *json, size_t len)
{
	view_t *w = ctx;
	int rc;

	if (w->n++)
		json_put_raw(w->out, ",");
	rc = api_mgmt_put_instance(w->out, v, json, len);
	if (rc == -EINVAL) { /* not ours to judge: as stored */
		buf_append(w->out, json, len);
		rc = 0;
	}
	return rc ? (w->rc = rc) : 0;
}

/* One Service object with every instance. */
static int put_service(buf_t *b, const char *service, size_t len)
{
	shm_str_t name = {service, len};
	view_t w = {b, 0, 0};
	size_t mark;
	int rc;

	json_put_raw(b, "{\"instances\":[");
	mark = b->len;
	rc = shm_instances_foreach(api_shm(), &name, 0, view_instance, &w);
	if (rc == 0)
		rc = w.rc;
	if (rc < 0)
		return rc;
	if (w.n == 0) {
		b->len = mark - 1;
		json_put_raw(b, "null");
	} else {
		json_put_raw(b, "]");
	}
	mgmt_route_frame(api_shm(), name, b);
	json_put_raw(b, ",\"serviceId\":");
	json_put_str(b, service, len);
	json_put_raw(b, "}");
	return buf_error(b);
}

typedef struct {
	buf_t *out;
	int n;
	int rc;
} services_t;

static int each_service(void *ctx, const char *service, size_t len, const shm_service_info_t *info)
{
	services_t *s = ctx;
	(void)info;
	if (s->n++)
		json_put_raw(s->out, ",");
	s->rc = put_service(s->out, service, len);
	return s->rc;
}

void api_mgmt_services(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	services_t s;

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_JAVA, MGMT_READ, true))
		return;
	api_mgmt_ok_open(&r);
	s = (services_t){api_mgmt_out(&r), 0, 0};
	json_put_raw(s.out, ",\"services\":[");
	int rc = shm_services_foreach(api_shm(), each_service, &s);
	if (rc < 0 || s.rc < 0) {
		api_mgmt_fail_rc(&r, rc < 0 ? rc : s.rc, NULL);
	} else {
		json_put_raw(s.out, "],\"version\":");
		json_put_u64(s.out, clock_wall_ms());
		api_mgmt_ok_close(&r);
	}
	api_mgmt_end(&r);
}

void api_mgmt_service(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	char svc[SHM_MAX_SERVICE + 2];

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_JAVA, MGMT_READ, false))
		return;
	const char *id = api_mgmt_arg(&r, "serviceid", svc, sizeof(svc));
	if (id == NULL || api_blank((shm_str_t){id, strlen(id)})) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "Request is null or request.servcieId is null.");
	} else {
		api_mgmt_ok_open(&r);
		buf_t *b = api_mgmt_out(&r);
		json_put_raw(b, ",\"groups\":[],\"service\":");
		int rc = put_service(b, id, strlen(id));
		api_mgmt_done(&r, rc);
	}
	api_mgmt_end(&r);
}

/* ---- GET /api/management/services: one page of services, counted ---------------------- */

/*
 * The console's services list for registries of 100,000 instances: the
 * services whose id contains q (any case), sorted by id, from offset, at
 * most limit of them, each with its instances counted by status and its
 * zones; no instance is serialised.  Only the page's services are walked
 * instance by instance; the totals come from the service table.
 */
#define PAGE_LIMIT_DEFAULT 100
#define PAGE_LIMIT_MAX     1000
#define PAGE_Q_MAX         SHM_MAX_SERVICE
#define PAGE_STATUSES      8  /* distinct statuses counted; the rest count as "other" */
#define PAGE_STATUS_LEN    34 /* a status literal, quotes included */
#define PAGE_ZONES         16 /* zones listed per service */

typedef struct {
	buf_t names;   /* matching service ids, each NUL-terminated */
	buf_t offsets; /* size_t offsets into names */
	const char *q;
	size_t qlen;
	uint64_t services;  /* every service */
	uint64_t instances; /* of the matching ones */
} page_t;

static bool contains_nocase(const char *s, size_t len, const char *q, size_t qlen)
{
	for (size_t i = 0; i + qlen <= len; i++)
		if (strncasecmp(s + i, q, qlen) == 0)
			return true;
	return false;
}

static int page_collect(void *ctx, const char *service, size_t len, const shm_service_info_t *info)
{
	page_t *p = ctx;
	size_t off = p->names.len;

	p->services++;
	if (p->qlen && !contains_nocase(service, len, p->q, p->qlen))
		return 0;
	p->instances += info->count;
	buf_append(&p->offsets, &off, sizeof(off));
	buf_append(&p->names, service, len + 1);
	return buf_error(&p->names) ? buf_error(&p->names) : buf_error(&p->offsets);
}

static int page_cmp(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	int c = strcasecmp(x, y);
	return c ? c : strcmp(x, y);
}

typedef struct {
	char status[PAGE_STATUSES][PAGE_STATUS_LEN + 1]; /* JSON literals, lowercase */
	uint32_t status_n[PAGE_STATUSES];
	int nstatus;
	uint32_t other;
	char zone[PAGE_ZONES][SHM_MAX_ZONE * 2 + 3]; /* JSON literals */
	int nzone;
	uint32_t n;
	shm_str_t st, zn; /* the instance being counted */
} counts_t;

static int find_status_zone(void *ctx, shm_str_t k, shm_str_t v)
{
	counts_t *c = ctx;
	if (key_is(k, "\"status\""))
		c->st = v;
	else if (key_is(k, "\"zoneId\""))
		c->zn = v;
	return 0;
}

static void count_status(counts_t *c, shm_str_t st)
{
	char lit[PAGE_STATUS_LEN + 1];
	if (st.len > PAGE_STATUS_LEN || (st.len == 7 && strncasecmp(st.ptr, "\"other\"", 7) == 0)) {
		c->other++;
		return;
	}
	for (size_t i = 0; i < st.len; i++)
		lit[i] =
		    (st.ptr[i] >= 'A' && st.ptr[i] <= 'Z') ? (char)(st.ptr[i] + 32) : st.ptr[i];
	lit[st.len] = '\0';
	for (int i = 0; i < c->nstatus; i++)
		if (strcmp(c->status[i], lit) == 0) {
			c->status_n[i]++;
			return;
		}
	if (c->nstatus == PAGE_STATUSES) {
		c->other++;
		return;
	}
	memcpy(c->status[c->nstatus], lit, st.len + 1);
	c->status_n[c->nstatus++] = 1;
}

static void count_zone(counts_t *c, shm_str_t zn)
{
	if (zn.len < 3 || zn.ptr[0] != '"' || zn.len >= sizeof(c->zone[0]) ||
	    c->nzone == PAGE_ZONES)
		return;
	for (int i = 0; i < c->nzone; i++)
		if (strlen(c->zone[i]) == zn.len && memcmp(c->zone[i], zn.ptr, zn.len) == 0)
			return;
	memcpy(c->zone[c->nzone], zn.ptr, zn.len);
	c->zone[c->nzone++][zn.len] = '\0';
}

/* A string member of obj as its JSON literal into b; "" (nothing) otherwise. */
static shm_str_t literal_of(json_t *obj, const char *name, buf_t *b)
{
	json_t *v = json_object_get(obj, name);
	size_t mark = b->len;
	if (!json_is_string(v))
		return (shm_str_t){NULL, 0};
	json_put_str(b, json_string_value(v), json_string_length(v));
	return buf_error(b) ? (shm_str_t){NULL, 0} : (shm_str_t){b->data + mark, b->len - mark};
}

static int count_instance(void *ctx, const shm_instance_view_t *v, const char *json, size_t len)
{
	counts_t *c = ctx;
	buf_t st = {0}, zn = {0}; /* apart: one growing must not move the other */
	json_t *in = NULL;

	c->n++;
	c->st = c->zn = (shm_str_t){NULL, 0};
	if (each_member(json, len, find_status_zone, c) < 0) { /* not compact: through jansson */
		in = json_loadb(json, len, 0, NULL);
		c->st = literal_of(in, "status", &st);
		c->zn = literal_of(in, "zoneId", &zn);
	}
	if (mgmt_down(api_shm(), v->tags) > 0)
		count_status(c, (shm_str_t){"\"down\"", 6});
	else if (c->st.ptr == NULL || c->st.ptr[0] != '"' || c->st.len < 3)
		count_status(c, (shm_str_t){"\"up\"", 4});
	else
		count_status(c, c->st);
	if (c->zn.ptr)
		count_zone(c, c->zn);
	json_decref(in);
	buf_free(&st);
	buf_free(&zn);
	return 0;
}

static int zone_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int put_counted(buf_t *b, const char *service)
{
	shm_str_t name = {service, strlen(service)};
	counts_t *c = calloc(1, sizeof(*c));
	int rc;

	if (c == NULL)
		return -ENOMEM;
	rc = shm_instances_foreach(api_shm(), &name, 0, count_instance, c);
	if (rc == 0) {
		api_mgmt_kv(b, '{', "serviceId", service);
		api_mgmt_kv_i64(b, ',', "instances", c->n);
		json_put_raw(b, ",\"statuses\":{");
		for (int i = 0; i < c->nstatus; i++) {
			json_put_raw(b, i ? "," : "");
			json_put_raw(b, c->status[i]);
			json_put_raw(b, ":");
			json_put_u64(b, c->status_n[i]);
		}
		if (c->other)
			buf_printf(b, "%s\"other\":%u", c->nstatus ? "," : "", c->other);
		json_put_raw(b, "},\"zones\":[");
		qsort(c->zone, (size_t)c->nzone, sizeof(c->zone[0]), zone_cmp);
		for (int i = 0; i < c->nzone; i++) {
			json_put_raw(b, i ? "," : "");
			json_put_raw(b, c->zone[i]);
		}
		json_put_raw(b, "]}");
		rc = buf_error(b);
	}
	free(c);
	return rc;
}

void api_mgmt_services_page(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	page_t p = {0};
	char num[64], q[4096];
	uint32_t offset, limit;
	int rc;

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_READ, true))
		return;
	if (!api_mgmt_arg_u32(&r, "offset", "offset", 0, UINT32_MAX, &offset, num, sizeof(num)) ||
	    !api_mgmt_arg_u32(&r, "limit", "limit", PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, &limit, num,
	                      sizeof(num)))
		goto out;
	if (limit == 0) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "limit must be a number from 1 to %u",
		              PAGE_LIMIT_MAX);
		goto out;
	}
	p.q = api_mgmt_arg(&r, "q", q, sizeof(q));
	p.qlen = p.q ? strlen(p.q) : 0;
	if (p.qlen > PAGE_Q_MAX) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "q is longer than %u bytes", PAGE_Q_MAX);
		goto out;
	}
	rc = shm_services_foreach(api_shm(), page_collect, &p);
	if (rc < 0) {
		api_mgmt_fail_rc(&r, rc, NULL);
		goto out;
	}
	/* The offsets become pointers, in place, now that the names no longer move. */
	_Static_assert(sizeof(size_t) == sizeof(const char *), "offsets and pointers");
	size_t n = p.offsets.len / sizeof(size_t);
	const char **ids = (const char **)(void *)p.offsets.data;
	for (size_t i = 0; i < n; i++) {
		size_t off;
		memcpy(&off, p.offsets.data + i * sizeof(size_t), sizeof(off));
		ids[i] = p.names.data + off;
	}
	if (n)
		qsort(ids, n, sizeof(*ids), page_cmp);
	api_mgmt_ok_open(&r);
	buf_t *b = api_mgmt_out(&r);
	api_mgmt_kv_i64(b, '{', "offset", offset);
	api_mgmt_kv_i64(b, ',', "limit", limit);
	api_mgmt_kv(b, ',', "q", p.qlen ? p.q : "");
	api_mgmt_kv_i64(b, ',', "total", (int64_t)n);
	api_mgmt_kv_i64(b, ',', "totalInstances", (int64_t)p.instances);
	api_mgmt_kv_i64(b, ',', "allServices", (int64_t)p.services);
	json_put_raw(b, ",\"services\":[");
	rc = 0;
	for (size_t i = offset; rc == 0 && i < n && i < (size_t)offset + limit; i++) {
		json_put_raw(b, i > offset ? "," : "");
		rc = put_counted(b, ids[i]);
	}
	json_put_raw(b, "]}");
	api_mgmt_done(&r, rc < 0 ? rc : buf_error(b));
out:
	buf_free(&p.names);
	buf_free(&p.offsets);
	api_mgmt_end(&r);
}

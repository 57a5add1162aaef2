/*
 * api_mgmt_views.c - the management views of the registry (API.md §5.1):
 * POST|GET /api/management/services.json and POST service.json.
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

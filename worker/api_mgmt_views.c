/*
 * api_mgmt_views.c - the management views of the registry (API.md §5.1):
 * POST|GET /api/management/services.json and POST service.json.
 *
 * Unlike discovery they list every instance, each with `status` "down" when
 * an operation hides it and its registered status otherwise ("up" when it
 * registered none), and the lease in its metadata:
 * creationTime, renewalTime (epoch ms) and ttl, as strings (Java's
 * ManagementRepository.setServiceInstances).  Not a hot path: each instance
 * is re-encoded through jansson.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_mgmt.h"
#include "artemis/clock.h"
#include "artemis/codec.h"

int api_mgmt_put_instance(buf_t *b, const shm_instance_view_t *v, const char *json, size_t len)
{
	char num[32];
	json_t *in = json_loadb(json, len, 0, NULL), *md;
	char *text;
	int down = mgmt_down(api_shm(), v->tags);

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

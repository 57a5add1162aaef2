/*
 * call.c - the calls that block their caller: artemis_call (any request),
 * artemis_lookup and artemis_services (discovery without the cache), and
 * the helpers the registry and the cache use for their own blocking calls
 * (cl_call_java, cl_fetch_services).  Each runs one request (http.c) on a
 * private event base on the calling thread, so it works from any thread,
 * the loop's included, and never waits on the background loop.
 *
 * Also: the deployment (region and zone) requests carry, from the options
 * or, when they leave it out, from the first node's status/node.json.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artemis/codec.h"
#include "client_int.h"

struct artemis_response {
	int status;
	buf_t body;
	char node[CL_URL_MAX];
};

int cl_call_java(cl_t *c, int purpose, const char *path, const char *body, size_t len,
                 uint64_t deadline_ms, json_t **out, cl_status_t *st, cl_err_t *err)
{
	cl_req_t *r = cl_req_new(c, purpose, CL_REQ_JAVA, "POST", path, body, len);
	int rc;

	*out = NULL;
	if (r == NULL)
		return cl_err(err, ARTEMIS_E_NOMEM, "out of memory");
	r->deadline_ms = deadline_ms;
	rc = cl_req_run(r);
	if (rc < 0) {
		cl_err_copy(err, &r->err);
		cl_req_free(r);
		return rc;
	}
	*out = r->json;
	r->json = NULL;
	*st = r->st;
	if (err)
		err->http_status = r->status;
	cl_req_free(r);
	return 0;
}

/* The node's refusal as the caller's error. */
int cl_refused(cl_err_t *err, const char *what, const cl_status_t *st)
{
	if (err)
		snprintf(err->server_code, sizeof(err->server_code), "%s", st->code);
	return cl_err(err, ARTEMIS_E_SERVER, "%s: %s%s%s", what, st->code,
	              st->message[0] ? ": " : "", st->message);
}

static void call__json_field(json_t *obj, const char *canon, char *dst, size_t cap)
{
	json_t *v = json_member(obj, canon);

	if (json_is_string(v) && dst[0] == '\0')
		snprintf(dst, cap, "%s", json_string_value(v));
}

int cl_deployment(cl_t *c, char *region, char *zone, cl_err_t *err)
{
	json_t *root, *zoneobj;
	cl_status_t st;
	char r[CL_REGION_MAX + 1] = "", z[CL_REGION_MAX + 1] = "";
	int rc;

	pthread_mutex_lock(&c->lock);
	bool known = c->deployment_known;
	if (known) {
		memcpy(region, c->conf.region, sizeof(c->conf.region));
		memcpy(zone, c->conf.zone, sizeof(c->conf.zone));
	}
	pthread_mutex_unlock(&c->lock);
	if (known)
		return 0;
	rc = cl_call_java(c, CL_P_DISCOVERY, "/artemis/api/status/node.json", "{}", 2, 0, &root,
	                  &st, err);
	if (rc < 0)
		return rc;
	zoneobj = json_member(json_member(json_member(root, "nodestatus"), "node"), "zone");
	call__json_field(zoneobj, "regionid", r, sizeof(r));
	call__json_field(zoneobj, "zoneid", z, sizeof(z));
	json_decref(root);
	if (r[0] == '\0')
		return cl_err(err, ARTEMIS_E_PROTO,
		              "the node does not tell its region: set ARTEMIS_OPT_REGION");
	pthread_mutex_lock(&c->lock);
	if (c->conf.region[0] == '\0')
		memcpy(c->conf.region, r, sizeof(r));
	if (c->conf.zone[0] == '\0')
		memcpy(c->conf.zone, z, sizeof(z));
	c->deployment_known = true;
	memcpy(region, c->conf.region, sizeof(c->conf.region));
	memcpy(zone, c->conf.zone, sizeof(c->conf.zone));
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int cl_lookup_body(buf_t *b, const char *region, const char *zone, char *const *ids, size_t n)
{
	buf_puts(b, "{\"regionId\":");
	json_put_cstr(b, region);
	buf_puts(b, ",\"zoneId\":");
	json_put_cstr(b, zone);
	buf_puts(b, ",\"discoveryConfigs\":[");
	for (size_t i = 0; i < n; i++) {
		buf_puts(b, i ? ",{\"serviceId\":" : "{\"serviceId\":");
		json_put_cstr(b, ids[i]);
		buf_puts(b, ",\"regionId\":");
		json_put_cstr(b, region);
		buf_puts(b, ",\"zoneId\":");
		json_put_cstr(b, zone);
		buf_puts(b, "}");
	}
	buf_puts(b, "]}");
	return buf_error(b) ? ARTEMIS_E_NOMEM : 0;
}

int cl_lookup_answer(json_t *root, const cl_status_t *st, const char *region, const char *zone,
                     size_t n, cl_svc_t **out, cl_err_t *err)
{
	json_t *list = json_member(root, "services");
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		out[i] = NULL;
	if (strcmp(st->status, "success") != 0)
		return cl_refused(err, "lookup", st);
	if (!json_is_array(list) || json_array_size(list) != n)
		return cl_err(err, ARTEMIS_E_PROTO, "lookup: services do not match the request");
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = cl_svc_from_json(json_array_get(list, i), region, zone, &out[i], err);
	if (rc < 0)
		for (size_t i = 0; i < n; i++) {
			cl_svc_release(out[i]);
			out[i] = NULL;
		}
	return rc;
}

int cl_fetch_services(cl_t *c, char *const *ids, size_t n, cl_svc_t **out, cl_err_t *err)
{
	char region[CL_REGION_MAX + 1], zone[CL_REGION_MAX + 1];
	buf_t body = {0};
	json_t *root;
	cl_status_t st;
	int rc = cl_deployment(c, region, zone, err);

	if (rc < 0)
		return rc;
	if (cl_lookup_body(&body, region, zone, ids, n) < 0) {
		buf_free(&body);
		return cl_err(err, ARTEMIS_E_NOMEM, "out of memory");
	}
	rc = cl_call_java(c, CL_P_DISCOVERY, "/artemis/api/discovery/lookup.json", body.data,
	                  body.len, 0, &root, &st, err);
	buf_free(&body);
	if (rc < 0)
		return rc;
	rc = cl_lookup_answer(root, &st, region, zone, n, out, err);
	json_decref(root);
	return rc;
}

int artemis_lookup(artemis_client_t *c, const char *service_id, artemis_service_t **out,
                   artemis_error_t *err)
{
	cl_err_clear(err);
	if (out)
		*out = NULL;
	if (c == NULL || out == NULL)
		return cl_err(err, ARTEMIS_E_INVAL, "client or out is NULL");
	if (cl_arg(service_id, CL_ID_MAX, true, "serviceId", err) < 0)
		return ARTEMIS_E_INVAL;
	char *ids[1] = {(char *)service_id};
	return cl_fetch_services(c, ids, 1, out, err);
}

int artemis_services(artemis_client_t *c, artemis_service_t ***out, size_t *n, artemis_error_t *err)
{
	char region[CL_REGION_MAX + 1], zone[CL_REGION_MAX + 1];
	buf_t body = {0};
	json_t *root, *list, *v;
	cl_status_t st;
	cl_svc_t **arr;
	size_t i;
	int rc;

	cl_err_clear(err);
	if (out)
		*out = NULL;
	if (n)
		*n = 0;
	if (c == NULL || out == NULL || n == NULL)
		return cl_err(err, ARTEMIS_E_INVAL, "client, out or n is NULL");
	rc = cl_deployment(c, region, zone, err);
	if (rc < 0)
		return rc;
	buf_puts(&body, "{\"regionId\":");
	json_put_cstr(&body, region);
	buf_puts(&body, ",\"zoneId\":");
	json_put_cstr(&body, zone);
	buf_puts(&body, "}");
	if (buf_error(&body)) {
		buf_free(&body);
		return cl_err(err, ARTEMIS_E_NOMEM, "out of memory");
	}
	rc = cl_call_java(c, CL_P_DISCOVERY, "/artemis/api/discovery/services.json", body.data,
	                  body.len, 0, &root, &st, err);
	buf_free(&body);
	if (rc < 0)
		return rc;
	list = json_member(root, "services");
	if (strcmp(st.status, "success") != 0)
		rc = cl_refused(err, "services", &st);
	else if (list != NULL && !json_is_null(list) && !json_is_array(list))
		rc = cl_err(err, ARTEMIS_E_PROTO, "services: not a list");
	arr = rc ? NULL : calloc(json_array_size(list) + 1, sizeof(cl_svc_t *));
	if (rc == 0 && arr == NULL)
		rc = cl_err(err, ARTEMIS_E_NOMEM, "out of memory");
	json_array_foreach(list, i, v)
	{
		if (rc < 0)
			break;
		rc = cl_svc_from_json(v, region, zone, &arr[i], err);
		if (rc == 0)
			(*n)++;
	}
	json_decref(root);
	if (rc < 0) {
		artemis_service_list_free(arr, *n);
		*n = 0;
		return rc;
	}
	*out = arr;
	return 0;
}

/* ---- artemis_call ------------------------------------------------------------ */

static bool call__method_ok(const char *m)
{
	size_t n = strnlen(m, 16);

	if (n == 0 || n >= 16)
		return false;
	for (size_t i = 0; i < n; i++)
		if (m[i] < 'A' || m[i] > 'Z')
			return false;
	return true;
}

static bool call__path_ok(const char *p)
{
	if (p[0] != '/')
		return false;
	for (; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return false;
	return true;
}

int artemis_call(artemis_client_t *c, const char *method, const char *path, const char *json_body,
                 const char *token, artemis_response_t **out, artemis_error_t *err)
{
	artemis_response_t *res;
	cl_req_t *r;
	long blen = 0;
	int rc;

	cl_err_clear(err);
	if (out)
		*out = NULL;
	if (c == NULL || out == NULL || method == NULL || !call__method_ok(method))
		return cl_err(err, ARTEMIS_E_INVAL, "client, method or out missing or invalid");
	if (cl_arg(path, CL_PATH_MAX, true, "path", err) < 0)
		return ARTEMIS_E_INVAL;
	if (!call__path_ok(path))
		return cl_err(err, ARTEMIS_E_INVAL, "path must start with '/' and hold no spaces");
	if (json_body && (blen = cl_arg(json_body, CL_BODY_MAX, false, "body", err)) < 0)
		return ARTEMIS_E_INVAL;
	if (token && cl_arg(token, CL_TOKEN_MAX, false, "token", err) < 0)
		return ARTEMIS_E_INVAL;
	for (const char *p = token; p && *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return cl_err(err, ARTEMIS_E_INVAL,
			              "token holds a space or control character");
	r = cl_req_new(c, CL_P_DISCOVERY, 0, method, path, json_body, (size_t)blen);
	res = calloc(1, sizeof(*res));
	if (r == NULL || res == NULL) {
		cl_req_free(r);
		free(res);
		return cl_err(err, ARTEMIS_E_NOMEM, "out of memory");
	}
	pthread_mutex_lock(&c->lock);
	r->token = cl_strdup(token ? token : c->conf.token);
	pthread_mutex_unlock(&c->lock);
	rc = r->token ? cl_req_run(r) : cl_err(&r->err, ARTEMIS_E_NOMEM, "out of memory");
	if (rc < 0) {
		cl_err_copy(err, &r->err);
		cl_req_free(r);
		free(res);
		return rc;
	}
	res->status = r->status;
	res->body = r->resp.body;
	r->resp.body = (buf_t){0};
	buf_append(&res->body, "", 0); /* NUL-terminated, even when empty */
	snprintf(res->node, sizeof(res->node), "%s", r->target.url);
	if (err)
		err->http_status = r->status;
	cl_req_free(r);
	if (buf_error(&res->body)) {
		artemis_response_free(res);
		return cl_err(err, ARTEMIS_E_NOMEM, "out of memory");
	}
	*out = res;
	return 0;
}

int artemis_response_status(const artemis_response_t *r)
{
	return r ? r->status : 0;
}

const char *artemis_response_body(const artemis_response_t *r, size_t *len)
{
	if (len)
		*len = r ? r->body.len : 0;
	return r ? r->body.data : NULL;
}

const char *artemis_response_node(const artemis_response_t *r)
{
	return r ? r->node : NULL;
}

void artemis_response_free(artemis_response_t *r)
{
	if (r == NULL)
		return;
	buf_free(&r->body);
	free(r);
}

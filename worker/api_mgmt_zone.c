/*
 * api_mgmt_zone.c - zone operations, both surfaces.
 *
 * A zone operation is on (region, zone, service), service "" meaning every
 * service of the zone (MANAGEMENT.md §1); while one is in force the zone's
 * instances (of that service) are hidden from discovery, and the change
 * pushes a `reload` per affected service (§2).
 *
 * Java (API.md §5.4): operate-zone-operations (a list, operationComplete),
 * get-all-zone-operations, get-zone-operations, get-zone-operations-list,
 * is-zone-down.  Rust (§3.2.2, §3.3): pull-out / pull-in, batches, status,
 * the list of operations, and the console's zone views.  On the Rust paths a
 * missing regionId is this node's region and a missing operation "pullout".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "api_mgmt.h"
#include "artemis/codec.h"

#define ZONE_OP_DEFAULT "pullout"

/* ---- Writes -------------------------------------------------------------------- */

static void apply_changes(api_mgmt_req_t *r, mgmt_change_t *ch, size_t n, api_mgmt_ctx_t *c,
                          const char *done)
{
	char err[MGMT_MAX_ERR * 2];
	int rc = mgmt_apply(r->m, ch, n, &c->ctx, err, sizeof(err));

	if (rc < 0) {
		api_mgmt_fail_rc(r, rc, err);
		return;
	}
	api_mgmt_ok_open(r);
	if (r->style == MGMT_STYLE_REST)
		json_put_cstr(api_mgmt_out(r), done);
	api_mgmt_ok_close(r);
}

void api_mgmt_operate_zone_operations(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	api_mgmt_ctx_t c;
	mgmt_change_t *ch = NULL;
	size_t n = 0;
	const char *field = NULL;

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_JAVA, MGMT_WRITE, false))
		return;
	if (!api_mgmt_req_ctx(&r, &c, "java"))
		goto out;
	ch = calloc(MGMT_MAX_BATCH, sizeof(*ch));
	if (ch == NULL) {
		api_mgmt_fail(&r, API_INTERNAL_ERROR, "out of memory");
		goto out;
	}
	int rc = api_mgmt_decode_zone_list(r.body, NULL, "", c.ctx.complete != 1, ch,
	                                   MGMT_MAX_BATCH, &n, &field);
	if (rc < 0)
		api_mgmt_fail(&r, API_BAD_REQUEST, "%s is not valid", field);
	else if (n == 0)
		api_mgmt_fail(&r, API_BAD_REQUEST, "zoneOperationsList is null or empty");
	else
		apply_changes(&r, ch, n, &c, NULL);
out:
	free(ch);
	api_mgmt_end(&r);
}

/* One Rust zone write: the key from the body (or the path), defaults. */
static void rust_zone_write(const http_request_t *req, http_response_t *res, bool insert,
                            const char *zone_param, const char *region_param)
{
	api_mgmt_req_t r;
	api_mgmt_ctx_t c;
	mgmt_change_t ch;
	const char *field = NULL;
	char msg[MGMT_MAX_ZONE + MGMT_MAX_REGION + 64], arg[MGMT_MAX_SERVICE + 2];

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_WRITE, true))
		return;
	if (!api_mgmt_req_ctx(&r, &c, "rust"))
		goto out;
	memset(&ch, 0, sizeof(ch));
	ch.insert = insert;
	if (api_mgmt_decode_key(r.body, MGMT_ZONE, &ch.key, &field) < 0 ||
	    api_mgmt_decode_operation(r.body, &ch.key, &field) < 0) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "%s is not valid", field);
		goto out;
	}
	const char *v;
	if (zone_param &&
	    mgmt_field_set(ch.key.zone, sizeof(ch.key.zone), zone_param, strlen(zone_param)) < 0) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "zoneId is longer than allowed");
		goto out;
	}
	if (region_param)
		mgmt_field_set(ch.key.region, sizeof(ch.key.region), region_param,
		               strlen(region_param));
	if (!ch.key.service[0] && (v = api_mgmt_arg(&r, "serviceid", arg, sizeof(arg))) != NULL)
		mgmt_field_set(ch.key.service, sizeof(ch.key.service), v, strlen(v));
	if (!ch.key.region[0])
		strcpy(ch.key.region, api_cfg()->region);
	/* On the Rust paths "pullin" names the direction (MANAGEMENT.md §2):
	 * it ends the pull-out, as no operation does. */
	if (!ch.key.operation[0] || (!insert && !strcasecmp(ch.key.operation, "pullin")))
		strcpy(ch.key.operation, ZONE_OP_DEFAULT);
	snprintf(msg, sizeof(msg), "zone %s of region %s pulled %s", ch.key.zone, ch.key.region,
	         insert ? "out" : "in");
	apply_changes(&r, &ch, 1, &c, msg);
out:
	api_mgmt_end(&r);
}

void api_mgmt_zone_pull_out(const http_request_t *req, http_response_t *res)
{
	rust_zone_write(req, res, true, NULL, NULL);
}

void api_mgmt_zone_pull_in(const http_request_t *req, http_response_t *res)
{
	rust_zone_write(req, res, false, NULL, NULL);
}

void api_mgmt_zone_delete(const http_request_t *req, http_response_t *res)
{
	rust_zone_write(req, res, false, api_param("zoneId"), api_param("regionId"));
}

/* PUT .../zone/{zoneId}/status {"status": "down"|"up"} */
void api_mgmt_zone_put_status(const http_request_t *req, http_response_t *res)
{
	static const char *const out[] = {"down", "pullout", "pulled_out", "pulled-out", "out"};
	static const char *const in[] = {"up", "pullin", "pulled_in", "pulled-in", "in"};
	shm_str_t st = {NULL, 0};
	json_t *body = NULL;
	char err[256];

	if (req->body_len &&
	    json_parse_body(req->body, req->body_len, &body, err, sizeof(err)) == 0)
		st = json_member_str(body, "status");
	for (size_t i = 0; st.ptr && i < 5; i++) {
		if (st.len == strlen(out[i]) && !strncasecmp(st.ptr, out[i], st.len)) {
			json_decref(body);
			rust_zone_write(req, res, true, api_param("zoneId"), NULL);
			return;
		}
		if (st.len == strlen(in[i]) && !strncasecmp(st.ptr, in[i], st.len)) {
			json_decref(body);
			rust_zone_write(req, res, false, api_param("zoneId"), NULL);
			return;
		}
	}
	json_decref(body);
	api_mgmt_req_t r;
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_WRITE, true))
		return;
	api_mgmt_fail(&r, API_BAD_REQUEST,
	              "status must be \"down\" (pull-out) or \"up\" (pull-in)");
	api_mgmt_end(&r);
}

static void batch(const http_request_t *req, http_response_t *res, bool insert)
{
	api_mgmt_req_t r;
	api_mgmt_ctx_t c;
	mgmt_change_t *ch = NULL;
	size_t n = 0;
	const char *field = NULL;
	char op[MGMT_MAX_OPERATION + 1] = ZONE_OP_DEFAULT, msg[64];
	mgmt_key_t k;

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_WRITE, false))
		return;
	if (!api_mgmt_req_ctx(&r, &c, "rust"))
		goto out;
	if (api_mgmt_decode_operation(r.body, &k, &field) == 0 && k.operation[0] &&
	    (insert || strcasecmp(k.operation, "pullin") != 0))
		strcpy(op, k.operation);
	ch = calloc(MGMT_MAX_BATCH, sizeof(*ch));
	if (ch == NULL) {
		api_mgmt_fail(&r, API_INTERNAL_ERROR, "out of memory");
		goto out;
	}
	int rc = api_mgmt_decode_zone_list(r.body, api_cfg()->region, op, insert, ch,
	                                   MGMT_MAX_BATCH, &n, &field);
	if (rc < 0) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "%s is not valid", field);
		goto out;
	}
	if (n == 0) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "zones is null or empty");
		goto out;
	}
	snprintf(msg, sizeof(msg), "%zu zone%s pulled %s", n, n == 1 ? "" : "s",
	         insert ? "out" : "in");
	apply_changes(&r, ch, n, &c, msg);
out:
	free(ch);
	api_mgmt_end(&r);
}

void api_mgmt_zone_batch_pull_out(const http_request_t *req, http_response_t *res)
{
	batch(req, res, true);
}

void api_mgmt_zone_batch_pull_in(const http_request_t *req, http_response_t *res)
{
	batch(req, res, false);
}

/* ---- Java's reads --------------------------------------------------------------------- */

static bool decode_zone_key(api_mgmt_req_t *r, const json_t *obj, mgmt_key_t *k)
{
	const char *field = NULL;

	if (obj == NULL || json_is_null(obj)) {
		api_mgmt_fail(r, API_BAD_REQUEST, "request.zoneKey is null");
		return false;
	}
	if (api_mgmt_decode_key(obj, MGMT_ZONE, k, &field) < 0) {
		api_mgmt_fail(r, API_BAD_REQUEST, "%s is not valid", field);
		return false;
	}
	strcpy(k->operation, "-");
	if (mgmt_key_check(k, &field) < 0) {
		api_mgmt_fail(r, API_BAD_REQUEST, "%s is null or empty", field);
		return false;
	}
	return true;
}

/* Answer with the groups of the operations matching f under `name`
 * (single: the one group or null). */
static void answer_groups(api_mgmt_req_t *r, const mgmt_op_filter_t *f, const char *name,
                          bool single)
{
	api_mgmt_op_list_t l;
	int rc = api_mgmt_op_list(r->m, f, &l);

	if (rc < 0) {
		api_mgmt_fail_rc(r, rc, NULL);
	} else {
		api_mgmt_ok_open(r);
		buf_t *b = api_mgmt_out(r);
		if (single) {
			json_put_raw(b, ",\"");
			json_put_raw(b, name);
			json_put_raw(b, "\":");
			if (l.ngroups)
				buf_append(b, l.groups.data, l.groups.len);
			else
				json_put_raw(b, "null");
		} else {
			api_mgmt_put_list(b, name, &l.groups);
		}
		api_mgmt_ok_close(r);
	}
	api_mgmt_op_list_free(&l);
}

void api_mgmt_all_zone_operations(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	char region[MGMT_MAX_REGION + 2];
	mgmt_op_filter_t f = {.kind = MGMT_ZONE};

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_JAVA, MGMT_READ, true))
		return;
	f.region = api_mgmt_arg(&r, "regionid", region, sizeof(region));
	if (f.region && !*f.region)
		f.region = NULL;
	answer_groups(&r, &f, "allZoneOperations", false);
	api_mgmt_end(&r);
}

void api_mgmt_zone_operations(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_key_t k;

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_JAVA, MGMT_READ, false))
		return;
	if (decode_zone_key(&r, json_member(r.body, "zonekey"), &k)) {
		mgmt_op_filter_t f = {
		    .kind = MGMT_ZONE, .region = k.region, .zone = k.zone, .service = k.service};
		answer_groups(&r, &f, "operations", true);
	}
	api_mgmt_end(&r);
}

void api_mgmt_zone_operations_list(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_key_t k;
	const char *field = NULL;

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_JAVA, MGMT_READ, true))
		return;
	if (api_mgmt_decode_key(r.body, MGMT_ZONE, &k, &field) < 0) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "%s is not valid", field);
	} else {
		mgmt_op_filter_t f = {.kind = MGMT_ZONE,
		                      .region = k.region[0] ? k.region : NULL,
		                      .zone = k.zone[0] ? k.zone : NULL,
		                      .service =
		                          json_member(r.body, "serviceid") ? k.service : NULL};
		answer_groups(&r, &f, "zoneOperationsList", false);
	}
	api_mgmt_end(&r);
}

void api_mgmt_is_zone_down(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_key_t k;

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_JAVA, MGMT_READ, false))
		return;
	if (decode_zone_key(&r, json_member(r.body, "zonekey"), &k)) {
		int down = mgmt_tag_down(api_shm(), mgmt_key_tag(api_shm(), &k));
		if (down < 0) {
			api_mgmt_fail_rc(&r, down, NULL);
		} else {
			api_mgmt_ok_open(&r);
			json_put_raw(api_mgmt_out(&r), ",\"down\":");
			json_put_bool(api_mgmt_out(&r), down != 0);
			api_mgmt_ok_close(&r);
		}
	}
	api_mgmt_end(&r);
}

/* ---- The Rust rewrite's reads ------------------------------------------------------------ */

/* The zone in force for every service: its first operation, or none. */
typedef struct {
	int n;
	char operation[MGMT_MAX_OPERATION + 1];
	char operator_id[MGMT_MAX_OPERATOR + 1];
	uint64_t time_ms;
} zone_state_t;

static int zone_state_op(void *ctx, const mgmt_op_t *op)
{
	zone_state_t *z = ctx;
	if (op->key.service[0])
		return 0;
	if (z->n++ == 0) {
		snprintf(z->operation, sizeof(z->operation), "%s", op->key.operation);
		snprintf(z->operator_id, sizeof(z->operator_id), "%s",
		         op->operator_id ? op->operator_id : "");
		z->time_ms = op->update_ms;
	}
	return 0;
}

static int zone_state(api_mgmt_req_t *r, const char *region, const char *zone, zone_state_t *z)
{
	mgmt_op_filter_t f = {.kind = MGMT_ZONE, .region = region, .zone = zone};
	memset(z, 0, sizeof(*z));
	return mgmt_ops(r->m, &f, zone_state_op, z);
}

static const char *region_arg(api_mgmt_req_t *r, char *buf, size_t len)
{
	const char *v = api_param("regionId");
	if (v == NULL)
		v = api_mgmt_arg(r, "regionid", buf, len);
	return v && *v ? v : api_cfg()->region;
}

/* Registered instances of a zone, or counts per zone: by a walk of the
 * registry (the display form "region/zone/service/..." is lowercase). */
typedef struct {
	char region[MGMT_MAX_REGION + 1];
	char zone[MGMT_MAX_ZONE + 1];
	uint32_t instances;
	uint32_t down;
} zone_count_t;

typedef struct {
	const char *region, *zone; /* one zone, or NULL: every zone */
	zone_count_t *v;
	size_t n, cap;
	buf_t *list; /* instances of the one zone, when not NULL */
	int listed;
	int rc;
} zone_walk_t;

static bool split_display(const char *d, char *region, size_t rlen, char *zone, size_t zlen)
{
	const char *a = strchr(d, '/'), *b = a ? strchr(a + 1, '/') : NULL;
	if (!b || (size_t)(a - d) >= rlen || (size_t)(b - a - 1) >= zlen)
		return false;
	memcpy(region, d, (size_t)(a - d));
	region[a - d] = '\0';
	memcpy(zone, a + 1, (size_t)(b - a - 1));
	zone[b - a - 1] = '\0';
	return true;
}

static zone_count_t *zone_slot(zone_walk_t *w, const char *region, const char *zone)
{
	for (size_t i = 0; i < w->n; i++)
		if (!strcasecmp(w->v[i].region, region) && !strcasecmp(w->v[i].zone, zone))
			return &w->v[i];
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		zone_count_t *v = realloc(w->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		w->v = v;
		w->cap = cap;
	}
	zone_count_t *z = &w->v[w->n++];
	memset(z, 0, sizeof(*z));
	snprintf(z->region, sizeof(z->region), "%s", region);
	snprintf(z->zone, sizeof(z->zone), "%s", zone);
	return z;
}

static int zone_walk_instance(void *ctx, const shm_instance_view_t *v, const char *json, size_t len)
{
	zone_walk_t *w = ctx;
	char region[MGMT_MAX_REGION + 1], zone[MGMT_MAX_ZONE + 1];

	if (!split_display(v->display, region, sizeof(region), zone, sizeof(zone)))
		return 0;
	if (w->zone && (strcasecmp(zone, w->zone) != 0 || strcasecmp(region, w->region) != 0))
		return 0;
	zone_count_t *z = zone_slot(w, region, zone);
	if (z == NULL)
		return w->rc = -ENOMEM;
	z->instances++;
	z->down += mgmt_down(api_shm(), v->tags) > 0;
	if (w->list) {
		if (w->listed++)
			json_put_raw(w->list, ",");
		int rc = api_mgmt_put_instance(w->list, v, json, len);
		if (rc < 0 && rc != -EINVAL)
			return w->rc = rc;
	}
	return 0;
}

static int zone_walk(zone_walk_t *w)
{
	uint32_t next = 0;
	int rc = shm_instances_walk(api_shm(), &next, 0, zone_walk_instance, w);
	return rc < 0 ? rc : w->rc;
}

static int zone_op_slot(void *ctx, const mgmt_op_t *op)
{
	zone_walk_t *w = ctx;
	if (w->zone &&
	    (strcasecmp(op->key.zone, w->zone) != 0 || strcasecmp(op->key.region, w->region) != 0))
		return 0;
	return zone_slot(w, op->key.region, op->key.zone) ? 0 : -ENOMEM;
}

/* {"downInstanceCount","instanceCount","isDown","operation","operatorId","regionId","zoneId"} */
static int put_zone(api_mgmt_req_t *r, buf_t *b, const zone_count_t *z)
{
	zone_state_t st;
	int rc = zone_state(r, z->region, z->zone, &st);
	if (rc < 0)
		return rc;
	api_mgmt_kv_i64(b, '{', "downInstanceCount", z->down);
	api_mgmt_kv_i64(b, ',', "instanceCount", z->instances);
	api_mgmt_kv_bool(b, ',', "isDown", st.n > 0);
	api_mgmt_kv(b, ',', "operation", st.n ? st.operation : NULL);
	api_mgmt_kv(b, ',', "operatorId", st.n ? st.operator_id : NULL);
	api_mgmt_kv(b, ',', "regionId", z->region);
	api_mgmt_kv(b, ',', "zoneId", z->zone);
	return json_put_raw(b, "}");
}

/* GET /api/management/zone: every zone with instances or operations. */
void api_mgmt_zones(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	zone_walk_t w;
	mgmt_op_filter_t f = {.kind = MGMT_ZONE};
	int rc;

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_READ, true))
		return;
	memset(&w, 0, sizeof(w));
	if ((rc = zone_walk(&w)) < 0 || (rc = mgmt_ops(r.m, &f, zone_op_slot, &w)) < 0) {
		api_mgmt_fail_rc(&r, rc, NULL);
		goto out;
	}
	api_mgmt_ok_open(&r);
	buf_t *b = api_mgmt_out(&r);
	json_put_raw(b, "[");
	for (size_t i = 0; i < w.n && rc == 0; i++) {
		if (i)
			json_put_raw(b, ",");
		rc = put_zone(&r, b, &w.v[i]);
	}
	json_put_raw(b, "]");
	api_mgmt_done(&r, rc);
out:
	free(w.v);
	api_mgmt_end(&r);
}

/* GET .../zone/{zoneId}: that zone (404 when it has neither instances nor
 * operations), or with instances=true its instances. */
static void one_zone(const http_request_t *req, http_response_t *res, bool instances)
{
	api_mgmt_req_t r;
	zone_walk_t w;
	buf_t list = {0};
	char region[MGMT_MAX_REGION + 2];
	mgmt_op_filter_t f = {.kind = MGMT_ZONE};
	int rc;

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_READ, true))
		return;
	memset(&w, 0, sizeof(w));
	w.region = region_arg(&r, region, sizeof(region));
	w.zone = api_param("zoneId");
	w.list = instances ? &list : NULL;
	f.region = w.region;
	f.zone = w.zone;
	if ((rc = zone_walk(&w)) < 0 || (rc = mgmt_ops(r.m, &f, zone_op_slot, &w)) < 0) {
		api_mgmt_fail_rc(&r, rc, NULL);
		goto out;
	}
	if (!instances && w.n == 0) {
		api_mgmt_fail(&r, API_DATA_NOT_FOUND, "zone %s of region %s is not known", w.zone,
		              w.region);
		goto out;
	}
	api_mgmt_ok_open(&r);
	buf_t *b = api_mgmt_out(&r);
	if (instances) {
		json_put_raw(b, "[");
		buf_append(b, list.data ? list.data : "", list.len);
		json_put_raw(b, "]");
	} else if ((rc = put_zone(&r, b, &w.v[0])) < 0) {
		api_mgmt_fail_rc(&r, rc, NULL);
		goto out;
	}
	api_mgmt_ok_close(&r);
out:
	free(w.v);
	buf_free(&list);
	api_mgmt_end(&r);
}

void api_mgmt_zone_get(const http_request_t *req, http_response_t *res)
{
	one_zone(req, res, false);
}

void api_mgmt_zone_instances(const http_request_t *req, http_response_t *res)
{
	one_zone(req, res, true);
}

/* GET .../zone/{zoneId}/is-down[?regionId=&serviceId=]: data true|false. */
void api_mgmt_zone_is_down(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_key_t k;
	char region[MGMT_MAX_REGION + 2], svc[MGMT_MAX_SERVICE + 2];

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_READ, true))
		return;
	memset(&k, 0, sizeof(k));
	k.kind = MGMT_ZONE;
	const char *service = api_mgmt_arg(&r, "serviceid", svc, sizeof(svc));
	const char *rg = region_arg(&r, region, sizeof(region)), *zone = api_param("zoneId");
	mgmt_field_set(k.region, sizeof(k.region), rg, strlen(rg));
	mgmt_field_set(k.zone, sizeof(k.zone), zone, strlen(zone));
	int down = mgmt_tag_down(api_shm(), mgmt_key_tag(api_shm(), &k));
	if (down == 0 && service && *service &&
	    mgmt_field_set(k.service, sizeof(k.service), service, strlen(service)) == 0)
		down = mgmt_tag_down(api_shm(), mgmt_key_tag(api_shm(), &k));
	if (down < 0) {
		api_mgmt_fail_rc(&r, down, NULL);
	} else {
		api_mgmt_ok_open(&r);
		json_put_bool(api_mgmt_out(&r), down != 0);
		api_mgmt_ok_close(&r);
	}
	api_mgmt_end(&r);
}

/* GET .../zone/status/{zoneId}/{regionId} */
void api_mgmt_zone_status(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	zone_state_t st;
	const char *zone = api_param("zoneId"), *region = api_param("regionId");

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_READ, true))
		return;
	int rc = zone_state(&r, region, zone, &st);
	if (rc < 0) {
		api_mgmt_fail_rc(&r, rc, NULL);
	} else {
		api_mgmt_ok_open(&r);
		buf_t *b = api_mgmt_out(&r);
		/* Both spellings: the Rust API emitted the snake ones. */
		for (int snake = 0; snake < 2; snake++) {
			api_mgmt_kv_bool(b, snake ? ',' : '{', snake ? "is_down" : "isDown",
			                 st.n > 0);
			api_mgmt_kv(b, ',', snake ? "operator_id" : "operatorId",
			            st.n ? st.operator_id : NULL);
			api_mgmt_kv(b, ',', snake ? "region_id" : "regionId", region);
			api_mgmt_kv(b, ',', snake ? "zone_id" : "zoneId", zone);
		}
		api_mgmt_kv(b, ',', "operation", st.n ? st.operation : NULL);
		json_put_raw(b, "}");
		api_mgmt_ok_close(&r);
	}
	api_mgmt_end(&r);
}

/* GET .../zone/operations[?regionId=] */
void api_mgmt_zone_list(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	api_mgmt_op_list_t l;
	char region[MGMT_MAX_REGION + 2];
	mgmt_op_filter_t f = {.kind = MGMT_ZONE};

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_READ, true))
		return;
	f.region = api_mgmt_arg(&r, "regionid", region, sizeof(region));
	if (f.region && !*f.region)
		f.region = NULL;
	int rc = api_mgmt_op_list(r.m, &f, &l);
	if (rc < 0) {
		api_mgmt_fail_rc(&r, rc, NULL);
	} else {
		api_mgmt_ok_open(&r);
		buf_t *b = api_mgmt_out(&r);
		json_put_raw(b, "[");
		buf_append(b, l.records.data ? l.records.data : "", l.records.len);
		json_put_raw(b, "]");
		api_mgmt_ok_close(&r);
	}
	api_mgmt_op_list_free(&l);
	api_mgmt_end(&r);
}

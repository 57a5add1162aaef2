/*
 * api_mgmt_ops.c - operations on instances and servers, both surfaces.
 *
 * Java (API.md §5.1): operate-instance / operate-server put an operation in
 * force (operationComplete false) or remove it (true); the operation string
 * is free-form and any one in force makes the target down.  The views:
 * instance-operations, server-operations, all-*-operations (regionId: an
 * exact-case filter), instance-down, server-down.
 *
 * Rust (MANAGEMENT.md §3.2.1): /instance/operate-instance.json and
 * /server/operate-server.json take "pullout" (down) or "pullin" (up);
 * operationComplete is recorded in the audit.  all-*-operations.json is one
 * path for both surfaces: the answer carries both shapes.
 *
 * Whether something is down is read from the projection (the same answer
 * discovery acts on), never from SQLite.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "api_mgmt.h"
#include "artemis/codec.h"

#define OP_PULLOUT "pullout"
#define OP_PULLIN  "pullin"

/* ---- Writes --------------------------------------------------------------------- */

/* Decode the key (from member `key_member`, or the body itself when NULL),
 * the operation and the context; apply.  rust: pullout/pullin. */
static void operate(const http_request_t *req, http_response_t *res, mgmt_kind_t kind,
                    const char *key_member, bool rust)
{
	api_mgmt_req_t r;
	api_mgmt_ctx_t c;
	mgmt_change_t ch;
	const char *field = NULL;
	char err[MGMT_MAX_ERR * 2];
	int rc;

	if (!api_mgmt_begin(&r, req, res, rust ? MGMT_STYLE_STATUS : MGMT_STYLE_JAVA, MGMT_WRITE,
	                    false))
		return;
	const json_t *kobj = key_member ? json_member(r.body, key_member) : r.body;
	memset(&ch, 0, sizeof(ch));
	if (kobj == NULL || json_is_null(kobj)) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "%s is null",
		              kind == MGMT_INSTANCE ? "instanceKey" : "serverKey");
		goto out;
	}
	if ((rc = api_mgmt_decode_key(kobj, kind, &ch.key, &field)) < 0 ||
	    (rc = api_mgmt_decode_operation(r.body, &ch.key, &field)) < 0 ||
	    (rc = api_mgmt_decode_ctx(r.body, NULL, &c, &field)) < 0) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "%s %s", field,
		              rc == -ENAMETOOLONG ? "is longer than allowed" : "is not valid");
		goto out;
	}
	c.ctx.surface = rust ? "rust" : "java";
	if (rust) {
		/* pullout puts "pullout" in force, pullin removes it. */
		bool in = strcasecmp(ch.key.operation, OP_PULLIN) == 0;
		if (ch.key.operation[0] && !in && strcasecmp(ch.key.operation, OP_PULLOUT) != 0) {
			api_mgmt_fail(&r, API_BAD_REQUEST, "operation must be %s or %s", OP_PULLOUT,
			              OP_PULLIN);
			goto out;
		}
		if (ch.key.operation[0])
			strcpy(ch.key.operation, OP_PULLOUT);
		ch.insert = !in;
	} else {
		ch.insert = c.ctx.complete != 1;
	}
	rc = mgmt_apply(r.m, &ch, 1, &c.ctx, err, sizeof(err));
	if (rc < 0)
		api_mgmt_fail_rc(&r, rc, err);
	else
		api_mgmt_ok(&r);
out:
	api_mgmt_end(&r);
}

void api_mgmt_operate_instance(const http_request_t *req, http_response_t *res)
{
	operate(req, res, MGMT_INSTANCE, "instancekey", false);
}

void api_mgmt_operate_server(const http_request_t *req, http_response_t *res)
{
	operate(req, res, MGMT_SERVER, "serverkey", false);
}

void api_mgmt_rust_operate_instance(const http_request_t *req, http_response_t *res)
{
	operate(req, res, MGMT_INSTANCE, "instancekey", true);
}

void api_mgmt_rust_operate_server(const http_request_t *req, http_response_t *res)
{
	operate(req, res, MGMT_SERVER, NULL, true);
}

/* ---- Lists of operations -------------------------------------------------------------- */

static void all_operations(const http_request_t *req, http_response_t *res, mgmt_kind_t kind)
{
	api_mgmt_req_t r;
	api_mgmt_op_list_t l;
	char region[MGMT_MAX_REGION + 2];
	mgmt_op_filter_t f = {.kind = kind, .region_exact = true};
	int rc;

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_BOTH, MGMT_READ, true))
		return;
	f.region = api_mgmt_arg(&r, "regionid", region, sizeof(region));
	if (f.region && !*f.region)
		f.region = NULL; /* blank: every region (Java) */
	if ((rc = api_mgmt_op_list(r.m, &f, &l)) < 0) {
		api_mgmt_fail_rc(&r, rc, NULL);
	} else {
		api_mgmt_ok_open(&r);
		buf_t *b = api_mgmt_out(&r);
		api_mgmt_put_list(
		    b, kind == MGMT_INSTANCE ? "allInstanceOperations" : "allServerOperations",
		    &l.groups);
		api_mgmt_put_list(b,
		                  kind == MGMT_INSTANCE ? "instanceOperationRecords"
		                                        : "serverOperationRecords",
		                  &l.records);
		api_mgmt_ok_close(&r);
	}
	api_mgmt_op_list_free(&l);
	api_mgmt_end(&r);
}

void api_mgmt_all_instance_operations(const http_request_t *req, http_response_t *res)
{
	all_operations(req, res, MGMT_INSTANCE);
}

void api_mgmt_all_server_operations(const http_request_t *req, http_response_t *res)
{
	all_operations(req, res, MGMT_SERVER);
}

/* The operations of one target: key from member `key_member` (or the body). */
static int target_ops(api_mgmt_req_t *r, mgmt_kind_t kind, const char *key_member, mgmt_key_t *k,
                      api_mgmt_op_list_t *l)
{
	const json_t *kobj = key_member ? json_member(r->body, key_member) : r->body;
	const char *field = NULL;
	int rc;

	if (kobj == NULL || json_is_null(kobj)) {
		api_mgmt_fail(r, API_BAD_REQUEST, "request.%s is null",
		              kind == MGMT_INSTANCE ? "instanceKey" : "serverKey");
		return -EINVAL;
	}
	if ((rc = api_mgmt_decode_key(kobj, kind, k, &field)) < 0) {
		api_mgmt_fail(r, API_BAD_REQUEST, "%s %s", field,
		              rc == -ENAMETOOLONG ? "is longer than allowed" : "is not valid");
		return rc;
	}
	k->operation[0] = '\0';
	if ((rc = mgmt_key_check(k, &field)) < 0 && strcmp(field, "operation") != 0) {
		api_mgmt_fail(r, API_BAD_REQUEST, "%s is null or empty", field);
		return rc;
	}
	mgmt_op_filter_t f = {.kind = kind,
	                      .region = k->region,
	                      .service = kind == MGMT_INSTANCE ? k->service : NULL,
	                      .instance = kind == MGMT_INSTANCE ? k->instance : NULL,
	                      .server = kind == MGMT_SERVER ? k->server : NULL};
	if ((rc = api_mgmt_op_list(r->m, &f, l)) < 0) {
		api_mgmt_fail_rc(r, rc, NULL);
		return rc;
	}
	return 0;
}

static void operations_of(const http_request_t *req, http_response_t *res, mgmt_kind_t kind)
{
	api_mgmt_req_t r;
	api_mgmt_op_list_t l;
	mgmt_key_t k;

	memset(&l, 0, sizeof(l));
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_JAVA, MGMT_READ, false))
		return;
	if (target_ops(&r, kind, kind == MGMT_INSTANCE ? "instancekey" : "serverkey", &k, &l) ==
	    0) {
		api_mgmt_ok_open(&r);
		buf_t *b = api_mgmt_out(&r);
		json_put_raw(b, ",\"operations\":");
		if (l.n == 0)
			json_put_raw(b, "null");
		else
			buf_append(b, l.groups.data, l.groups.len);
		api_mgmt_ok_close(&r);
	}
	api_mgmt_op_list_free(&l);
	api_mgmt_end(&r);
}

void api_mgmt_instance_operations(const http_request_t *req, http_response_t *res)
{
	operations_of(req, res, MGMT_INSTANCE);
}

void api_mgmt_server_operations(const http_request_t *req, http_response_t *res)
{
	operations_of(req, res, MGMT_SERVER);
}

void api_mgmt_rust_instance_operations(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	api_mgmt_op_list_t l;
	mgmt_key_t k;

	memset(&l, 0, sizeof(l));
	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_STATUS, MGMT_READ, false))
		return;
	if (target_ops(&r, MGMT_INSTANCE, "instancekey", &k, &l) == 0) {
		api_mgmt_ok_open(&r);
		buf_t *b = api_mgmt_out(&r);
		json_put_raw(b, ",\"operations\":[");
		buf_append(b, l.names.data ? l.names.data : "", l.names.len);
		json_put_raw(b, "]");
		api_mgmt_ok_close(&r);
	}
	api_mgmt_op_list_free(&l);
	api_mgmt_end(&r);
}

/* ---- Is it down? ------------------------------------------------------------------------ */

static void put_down(api_mgmt_req_t *r, const char *name, int down)
{
	if (down < 0) {
		api_mgmt_fail_rc(r, down, NULL);
		return;
	}
	api_mgmt_ok_open(r);
	buf_t *b = api_mgmt_out(r);
	json_put_raw(b, ",\"");
	json_put_raw(b, name);
	json_put_raw(b, "\":");
	json_put_bool(b, down != 0);
	api_mgmt_ok_close(r);
}

/* Decode a key and check its fields (not the operation). */
static int decode_target(api_mgmt_req_t *r, const json_t *obj, mgmt_kind_t kind, mgmt_key_t *k,
                         const char *what)
{
	const char *field = NULL;
	int rc;

	if (obj == NULL || json_is_null(obj)) {
		api_mgmt_fail(r, API_BAD_REQUEST, "request.%s is null", what);
		return -EINVAL;
	}
	if ((rc = api_mgmt_decode_key(obj, kind, k, &field)) < 0) {
		api_mgmt_fail(r, API_BAD_REQUEST, "%s %s", field,
		              rc == -ENAMETOOLONG ? "is longer than allowed" : "is not valid");
		return rc;
	}
	strcpy(k->operation, "-");
	if ((rc = mgmt_key_check(k, &field)) < 0) {
		api_mgmt_fail(r, API_BAD_REQUEST, "%s is null or empty", field);
		return rc;
	}
	return 0;
}

/* Java: {instance: Instance} -> down by any rule, from its fields. */
void api_mgmt_instance_down(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	json_instance_t in;
	const char *field = NULL;
	uint64_t tags[SHM_TAGS];

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_JAVA, MGMT_READ, false))
		return;
	json_t *obj = json_member(r.body, "instance");
	if (obj == NULL || json_is_null(obj)) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "request.instance is null");
	} else if (!json_is_object(obj) || json_instance_decode(obj, &in, &field) < 0) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "request.instance is not valid%s%s",
		              field ? ": " : "", field ? field : "");
	} else {
		shm_instance_in_t si;
		memset(&si, 0, sizeof(si));
		json_instance_key(&in, &si.key);
		si.zone = in.zone;
		si.group = in.group;
		si.ip = in.ip;
		shm_instance_tags(api_shm(), &si, tags);
		put_down(&r, "down", mgmt_down(api_shm(), tags));
	}
	api_mgmt_end(&r);
}

void api_mgmt_server_down(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_key_t k;

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_JAVA, MGMT_READ, false))
		return;
	if (decode_target(&r, json_member(r.body, "serverkey"), MGMT_SERVER, &k, "serverKey") == 0)
		put_down(&r, "down", mgmt_tag_down(api_shm(), mgmt_key_tag(api_shm(), &k)));
	api_mgmt_end(&r);
}

void api_mgmt_rust_is_server_down(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_key_t k;

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_STATUS, MGMT_READ, false))
		return;
	if (decode_target(&r, r.body, MGMT_SERVER, &k, "serverId") == 0)
		put_down(&r, "isDown", mgmt_tag_down(api_shm(), mgmt_key_tag(api_shm(), &k)));
	api_mgmt_end(&r);
}

/* Rust: the instance's own operations, or, when it is registered, any rule
 * that hides it (its server, zone). */
void api_mgmt_rust_is_instance_down(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_key_t k;
	shm_instance_view_t view;
	buf_t json = {0};

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_STATUS, MGMT_READ, false))
		return;
	if (decode_target(&r, json_member(r.body, "instancekey"), MGMT_INSTANCE, &k,
	                  "instanceKey") == 0) {
		int down = mgmt_tag_down(api_shm(), mgmt_key_tag(api_shm(), &k));
		shm_key_t key = {{k.region, strlen(k.region)},
		                 {k.service, strlen(k.service)},
		                 {k.instance, strlen(k.instance)}};
		if (down == 0 && shm_lookup(api_shm(), &key, 0, &view, &json) == 0)
			down = mgmt_down(api_shm(), view.tags);
		put_down(&r, "isDown", down);
	}
	buf_free(&json);
	api_mgmt_end(&r);
}

/*
 * api_mgmt.h - worker-internal: what the management handlers share
 * (api_mgmt.c), and the request decoders (api_mgmt_decode.c, also driven by
 * tests/fuzz/fuzz_mgmt.c).
 *
 * The handlers are split by area:
 *   api_mgmt_ops.c     instance and server operations, both surfaces
 *   api_mgmt_views.c   the management views of the registry (services.json, service.json,
 *                      the paged services list)
 *   api_mgmt_zone.c    zone operations, both surfaces
 *   api_mgmt_audit.c   the audit trail: Java's log endpoints, the Rust audit calls
 *
 * Two surfaces answer from one model (MANAGEMENT.md §3): Java's (API.md §5,
 * a responseStatus envelope, HTTP 200 for handled errors) and the Rust
 * rewrite's (real HTTP statuses; §3.2.1 with a {"status":{errorCode}}
 * envelope, the rest with {"success", "data", "message"}).  Who may call a
 * handler is decided before it runs, by path and method (api_access.c);
 * every handler starts with api_mgmt_begin(), which parses the body, and
 * answers through the writers below.
 */
#ifndef ARTEMIS_WORKER_API_MGMT_H
#define ARTEMIS_WORKER_API_MGMT_H

#include <jansson.h>
#include <stdbool.h>

#include "artemis/mgmt.h"
#include "http.h"

enum api_mgmt_style {
	MGMT_STYLE_JAVA,   /* {"responseStatus":{..},..}; handled errors are HTTP 200 */
	MGMT_STYLE_STATUS, /* {"status":{"errorCode",..},..} with real HTTP statuses */
	MGMT_STYLE_BOTH,   /* all-*-operations.json: responseStatus and status, HTTP 200 */
	MGMT_STYLE_REST,   /* {"success":..,"data":..,"message":..} with real HTTP statuses */
};

enum api_mgmt_access {
	MGMT_READ,  /* views, operations, audit queries */
	MGMT_WRITE, /* operations put in force or removed */
	MGMT_ADMIN, /* audit cleanup */
};

typedef struct {
	const http_request_t *req;
	http_response_t *res;
	enum api_mgmt_style style;
	json_t *body; /* the request's JSON object; NULL without a body */
	mgmt_t *m;    /* this worker's store connection */
	enum api_mgmt_access access;
	const char *failed; /* the errorCode answered, NULL while none */
	bool counted;       /* a write's result is in the metrics */
} api_mgmt_req_t;

/* Parse the body (a JSON object; `body_optional` lets it be absent), then
 * for writes the node state, then the store.
 * false when the response is already written (the caller returns).
 * A write's result (success, or the errorCode answered) is counted in the
 * metrics once, here when it fails or at api_mgmt_end. */
bool api_mgmt_begin(api_mgmt_req_t *r, const http_request_t *req, http_response_t *res,
                    enum api_mgmt_style style, enum api_mgmt_access access, bool body_optional);
void api_mgmt_end(api_mgmt_req_t *r);

/* A failure in the request's style: Java error codes (API.md §1.6) mapped
 * to HTTP statuses on the Rust surface (bad-request 400, data-not-found 404,
 * no-permission 403, service-unavailable 503, the rest 500).  Logged once
 * for internal errors. */
void api_mgmt_fail(api_mgmt_req_t *r, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The failure of a mgmt_* call: -EINVAL/-ENAMETOOLONG bad-request, -ENOENT
 * data-not-found, anything else internal-service-error with err. */
void api_mgmt_fail_rc(api_mgmt_req_t *r, int rc, const char *err);

/* Success: open the envelope (STYLE_JAVA, _STATUS, _BOTH: the status
 * members, then the handler appends ",\"name\":value" members; STYLE_REST:
 * "{\"success\":true,\"data\":" and the handler writes one value), then
 * close it. */
void api_mgmt_ok_open(api_mgmt_req_t *r);
void api_mgmt_ok_close(api_mgmt_req_t *r);
/* The end of a handler: api_mgmt_fail_rc when rc < 0, else ok_close. */
void api_mgmt_done(api_mgmt_req_t *r, int rc);
/* A success with no payload. */
void api_mgmt_ok(api_mgmt_req_t *r);
buf_t *api_mgmt_out(api_mgmt_req_t *r);

/* A request argument by canonical name: the query string first, then the
 * body's member (a string, or a number's text).  NULL when absent or
 * longer than len - 1. */
const char *api_mgmt_arg(const api_mgmt_req_t *r, const char *canon, char *buf, size_t len);

/* A whole number argument from 0 to max (dflt when absent or empty) into
 * *out; false when the 400 naming `name` is answered. */
bool api_mgmt_arg_u32(api_mgmt_req_t *r, const char *canon, const char *name, uint32_t dflt,
                      uint32_t max, uint32_t *out, char *buf, size_t len);

/* ---- Output pieces ------------------------------------------------------------ */

/* One member: `sep` ('{' opens the object, ',' continues it), the name,
 * then the value: a string (NULL: null), a number, a boolean. */
void api_mgmt_kv(buf_t *b, char sep, const char *name, const char *value);
void api_mgmt_kv_i64(buf_t *b, char sep, const char *name, int64_t value);
void api_mgmt_kv_bool(buf_t *b, char sep, const char *name, bool value);

int api_mgmt_put_key(buf_t *b, const mgmt_key_t *k); /* InstanceKey/ServerKey/ZoneKey */
int api_mgmt_put_time_s(buf_t *b, uint64_t ms);      /* epoch seconds */
int api_mgmt_put_iso(buf_t *b, uint64_t ms);         /* "2024-05-01T10:00:00.000Z" */
/* Operations in force, listed two ways at once: Java's groups, one per
 * target ({"instanceKey"|"serverKey"|"zoneKey":{..},"operations":[..]}),
 * and the Rust records, one per operation; `names` has the operation
 * strings alone. */
typedef struct {
	buf_t groups;
	buf_t records;
	buf_t names;
	mgmt_key_t last;
	bool open; /* a group is open in `groups` */
	int n;     /* operations */
	int ngroups;
} api_mgmt_op_list_t;
int api_mgmt_op_list(mgmt_t *m, const mgmt_op_filter_t *f, api_mgmt_op_list_t *l);
void api_mgmt_op_list_free(api_mgmt_op_list_t *l);
/* ,"name":[items] */
void api_mgmt_put_list(buf_t *b, const char *name, const buf_t *items);

/* The management form of a registered instance (api_mgmt_views.c): its
 * stored JSON with status "up" or "down" and the lease in its metadata. */
int api_mgmt_put_instance(buf_t *b, const shm_instance_view_t *v, const char *json, size_t len);
/* Same target (kind and key fields), case-insensitively. */
bool api_mgmt_same_target(const mgmt_key_t *a, const mgmt_key_t *b);

/* ---- Decoders (api_mgmt_decode.c): no worker state, bounded, fuzzed ---------- */

/* Java's OperationContext and the Rust fields around it. */
typedef struct {
	mgmt_ctx_t ctx; /* points into the buffers below */
	char operator_id[MGMT_MAX_OPERATOR + 1];
	char token[MGMT_MAX_TOKEN + 1];
	char reason[MGMT_MAX_REASON + 1];
	char extensions[MGMT_MAX_EXTENSIONS + 1];
} api_mgmt_ctx_t;

/* A string member (numbers and booleans coerced, as Jackson does) into dst
 * of `size` bytes, blanks trimmed.  Absent or null: "".  -EINVAL (an object
 * or array) or -ENAMETOOLONG. */
int api_mgmt_decode_str(const json_t *obj, const char *canon, char *dst, size_t size);
/* The key fields of `kind` from obj (regionId, serviceId, instanceId /
 * serverId / zoneId and serviceId), blanks trimmed; absent fields are "".
 * The operation is not touched.  0; -EINVAL (a field is not a string) or
 * -ENAMETOOLONG with *field naming it. */
int api_mgmt_decode_key(const json_t *obj, mgmt_kind_t kind, mgmt_key_t *k, const char **field);
/* The operation string into k->operation (member `canon` of obj). */
int api_mgmt_decode_operation(const json_t *obj, mgmt_key_t *k, const char **field);
/* operatorId, token, reason, extensions (a string, or an object kept as
 * its JSON text), operationComplete.  The operator may come from the query
 * (`operator_q`, may be NULL) when the body has none. */
int api_mgmt_decode_ctx(const json_t *body, const char *operator_q, api_mgmt_ctx_t *c,
                        const char **field);
/* The request's OperationContext (operatorId, token, ...: the body's,
 * operatorId also from the query) for a write of `surface`; false when
 * the failure (400 naming the field) is answered. */
bool api_mgmt_req_ctx(api_mgmt_req_t *r, api_mgmt_ctx_t *c, const char *surface);
/* A boolean as Jackson takes one: true/false, "true"/"false", 0/1; -1 when
 * absent or null; -EINVAL otherwise. */
int api_mgmt_decode_bool(const json_t *v);
/* Java's zoneOperationsList (or the Rust batch's zones / zoneIds) into
 * changes: at most max; *n gets the count.  region_default fills an absent
 * regionId (Rust); insert sets every change's direction. */
int api_mgmt_decode_zone_list(const json_t *body, const char *region_default,
                              const char *operation_default, bool insert, mgmt_change_t *out,
                              size_t max, size_t *n, const char **field);

#endif

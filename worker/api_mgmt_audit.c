/*
 * api_mgmt_audit.c - the audit trail, as each surface reads it.
 *
 * Java (API.md §5.2): nine POST /api/management/log/...json, filters in the
 * body, answer {"logs":[..],"responseStatus"}: views of the audit records
 * of their kind (instance, server, zone; the group and route kinds come
 * with groups and have no records yet).  The same paths without a body take
 * their filters from the query string and answer {"success","data"}
 * (MANAGEMENT.md §3.2.6).
 *
 * Rust (§3.2.6, §3.3): GET audit/logs, instance-logs, server-logs,
 * logs/{id}, logs/export (CSV or JSON), logs/stats, DELETE logs/cleanup.
 * Query parameters in camel or snake case; times ISO 8601 or epoch.
 *
 * Tokens are stored with the records but never served back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "api_mgmt.h"
#include "artemis/codec.h"

#define AUDIT_LIMIT_DEFAULT 100
#define AUDIT_LIMIT_MAX     10000
#define EXPORT_LIMIT_MAX    100000

/* Filter text of a request (query first, then the body). */
typedef struct {
	char type[32], operator_id[MGMT_MAX_OPERATOR + 2], target[600],
	    operation[MGMT_MAX_OPERATION + 2];
	char username[MGMT_MAX_USERNAME + 2];
	char region[MGMT_MAX_REGION + 2], service[MGMT_MAX_SERVICE + 2];
	char instance[MGMT_MAX_INSTANCE + 2], server[MGMT_MAX_SERVER + 2], zone[MGMT_MAX_ZONE + 2];
	char num[64];
} filter_text_t;

/* The first present of the canonical names. */
static const char *arg2(api_mgmt_req_t *r, const char *a, const char *b, char *buf, size_t len)
{
	const char *v = api_mgmt_arg(r, a, buf, len);
	if (v == NULL && b != NULL)
		v = api_mgmt_arg(r, b, buf, len);
	return v && *v ? v : NULL;
}

static bool parse_time(api_mgmt_req_t *r, const char *a, const char *b, const char *name,
                       uint64_t *out, char *buf, size_t len)
{
	const char *v = arg2(r, a, b, buf, len);
	*out = 0;
	if (v == NULL)
		return true;
	if (mgmt_parse_time(v, out) < 0) {
		api_mgmt_fail(r, API_BAD_REQUEST, "%s is not a time (ISO 8601 or epoch)", name);
		return false;
	}
	return true;
}

/* The filters every audit query takes; type fixes operationType. */
static bool read_filter(api_mgmt_req_t *r, mgmt_audit_filter_t *f, filter_text_t *t,
                        const char *type, uint32_t limit_max)
{
	memset(f, 0, sizeof(*f));
	f->complete = -1;
	f->type = type ? type : arg2(r, "operationtype", "resourcetype", t->type, sizeof(t->type));
	f->operator_id = arg2(r, "operatorid", NULL, t->operator_id, sizeof(t->operator_id));
	f->username = arg2(r, "username", NULL, t->username, sizeof(t->username));
	f->target = arg2(r, "targetid", "resourceid", t->target, sizeof(t->target));
	f->operation = arg2(r, "operation", NULL, t->operation, sizeof(t->operation));
	f->region = arg2(r, "regionid", NULL, t->region, sizeof(t->region));
	f->service = arg2(r, "serviceid", NULL, t->service, sizeof(t->service));
	f->instance = arg2(r, "instanceid", NULL, t->instance, sizeof(t->instance));
	f->server = arg2(r, "serverid", NULL, t->server, sizeof(t->server));
	f->zone = arg2(r, "zoneid", NULL, t->zone, sizeof(t->zone));
	const char *c = arg2(r, "complete", NULL, t->num, sizeof(t->num));
	if (c) {
		f->complete = !strcmp(c, "true") || !strcmp(c, "1")    ? 1
		              : !strcmp(c, "false") || !strcmp(c, "0") ? 0
		                                                       : -2;
		if (f->complete == -2) {
			api_mgmt_fail(r, API_BAD_REQUEST, "complete must be true or false");
			return false;
		}
	}
	return parse_time(r, "from", "starttime", "from", &f->from_ms, t->num, sizeof(t->num)) &&
	       parse_time(r, "to", "endtime", "to", &f->to_ms, t->num, sizeof(t->num)) &&
	       api_mgmt_arg_u32(r, "limit", "limit", AUDIT_LIMIT_DEFAULT, limit_max, &f->limit,
	                        t->num, sizeof(t->num)) &&
	       api_mgmt_arg_u32(r, "offset", "offset", 0, UINT32_MAX, &f->offset, t->num,
	                        sizeof(t->num));
}

/* ---- Record writers ------------------------------------------------------------------ */

static int complete_of(const mgmt_audit_t *rec)
{
	return rec->complete >= 0 ? rec->complete : !strcmp(rec->action, "delete");
}

/* Java's log item (API.md §5.2) of any kind. */
static void put_java_log(buf_t *b, const mgmt_audit_t *rec)
{
	api_mgmt_kv_bool(b, '{', "complete", complete_of(rec));
	api_mgmt_kv_i64(b, ',', "createTime", (int64_t)rec->time_ms);
	api_mgmt_kv(b, ',', "extensions", rec->extensions ? rec->extensions : "{}");
	api_mgmt_kv_i64(b, ',', "id", rec->id);
	if (rec->instance)
		api_mgmt_kv(b, ',', "instanceId", rec->instance);
	api_mgmt_kv(b, ',', "operation", rec->operation);
	api_mgmt_kv(b, ',', "operatorId", rec->operator_id);
	api_mgmt_kv(b, ',', "reason", rec->reason);
	api_mgmt_kv(b, ',', "regionId", rec->region);
	if (rec->server)
		api_mgmt_kv(b, ',', "serverId", rec->server);
	else
		api_mgmt_kv(b, ',', "serviceId", rec->service);
	api_mgmt_kv(b, ',', "token", NULL);
	api_mgmt_kv_i64(b, ',', "updateTime", (int64_t)rec->time_ms);
	api_mgmt_kv(b, ',', "username", rec->username);
	if (rec->zone)
		api_mgmt_kv(b, ',', "zoneId", rec->zone);
	json_put_raw(b, "}");
}

/* The Rust record, with the console's names beside it (MANAGEMENT.md
 * §3.2.6, §3.3). */
static void put_rust_record(buf_t *b, const mgmt_audit_t *rec)
{
	char ts[40];
	mgmt_format_time(rec->time_ms, ts, sizeof(ts));
	api_mgmt_kv(b, '{', "action", rec->action);
	json_put_raw(b, ",\"details\":");
	json_put_raw(b, rec->details && rec->details[0] == '{' ? rec->details : "{}");
	api_mgmt_kv(b, ',', "errorMessage", NULL);
	api_mgmt_kv_i64(b, ',', "id", rec->id);
	api_mgmt_kv_i64(b, ',', "logId", rec->id);
	api_mgmt_kv(b, ',', "operation", rec->operation);
	api_mgmt_kv_bool(b, ',', "operationComplete", complete_of(rec));
	api_mgmt_kv_i64(b, ',', "operationTime", (int64_t)(rec->time_ms / 1000));
	api_mgmt_kv(b, ',', "operationType", rec->type);
	api_mgmt_kv(b, ',', "operatorId", rec->operator_id);
	api_mgmt_kv(b, ',', "originNode", rec->origin_node);
	api_mgmt_kv_i64(b, ',', "originSeq", rec->origin_seq);
	api_mgmt_kv(b, ',', "resourceId", rec->target);
	api_mgmt_kv(b, ',', "resourceType", rec->type);
	api_mgmt_kv(b, ',', "result", rec->result);
	api_mgmt_kv(b, ',', "targetId", rec->target);
	api_mgmt_kv(b, ',', "timestamp", ts);
	api_mgmt_kv(b, ',', "username", rec->username);
	json_put_raw(b, "}");
}

static void csv_field(buf_t *b, const char *s, bool last)
{
	if (s == NULL)
		s = "";
	if (strpbrk(s, ",\"\r\n")) {
		buf_puts(b, "\"");
		for (; *s; s++) {
			if (*s == '"')
				buf_puts(b, "\"\"");
			else
				buf_append(b, s, 1);
		}
		buf_puts(b, "\"");
	} else {
		buf_puts(b, s);
	}
	buf_puts(b, last ? "\r\n" : ",");
}

static void put_csv_record(buf_t *b, const mgmt_audit_t *rec)
{
	char num[32], ts[40];
	snprintf(num, sizeof(num), "%lld", (long long)rec->id);
	mgmt_format_time(rec->time_ms, ts, sizeof(ts));
	csv_field(b, num, false);
	csv_field(b, ts, false);
	csv_field(b, rec->type, false);
	csv_field(b, rec->target, false);
	csv_field(b, rec->operation, false);
	csv_field(b, rec->action, false);
	csv_field(b, rec->operator_id, false);
	csv_field(b, rec->username, false);
	csv_field(b, rec->result, false);
	csv_field(b, rec->details, true);
}

enum rec_form { FORM_JAVA, FORM_RUST, FORM_CSV };

typedef struct {
	buf_t *out;
	enum rec_form form;
	int n;
} rec_list_t;

static int list_record(void *ctx, const mgmt_audit_t *rec)
{
	rec_list_t *l = ctx;
	if (l->form == FORM_CSV) {
		put_csv_record(l->out, rec);
	} else {
		if (l->n)
			json_put_raw(l->out, ",");
		if (l->form == FORM_JAVA)
			put_java_log(l->out, rec);
		else
			put_rust_record(l->out, rec);
	}
	l->n++;
	return buf_error(l->out);
}

/* ---- Lists of records ------------------------------------------------------------------ */

/* Java's log endpoints with a body answer {logs, responseStatus} and have
 * no limit unless asked; everything else answers {success, data}. */
static void list_records(const http_request_t *req, http_response_t *res, const char *type,
                         bool java_path)
{
	api_mgmt_req_t r;
	mgmt_audit_filter_t f;
	filter_text_t t;
	bool java = java_path && req->body_len > 0;

	if (!api_mgmt_begin(&r, req, res, java ? MGMT_STYLE_JAVA : MGMT_STYLE_REST, MGMT_READ,
	                    true))
		return;
	if (!read_filter(&r, &f, &t, type, AUDIT_LIMIT_MAX))
		goto out;
	if (java && !json_member(r.body, "limit"))
		f.limit = 0;
	api_mgmt_ok_open(&r);
	buf_t *b = api_mgmt_out(&r);
	json_put_raw(b, java ? ",\"logs\":[" : "[");
	rec_list_t l = {b, java ? FORM_JAVA : FORM_RUST, 0};
	int rc = mgmt_audit_query(r.m, &f, list_record, &l);
	if (rc < 0) {
		api_mgmt_fail_rc(&r, rc, NULL);
		goto out;
	}
	json_put_raw(b, "]");
	api_mgmt_ok_close(&r);
out:
	api_mgmt_end(&r);
}

/* POST /api/management/log/<kind>-logs.json: the records of the kind its
 * name says (the group and route kinds have none yet). */
void api_mgmt_log(const http_request_t *req, http_response_t *res)
{
	static const struct {
		const char *file, *type;
	} kinds[] = {
	    {"instance-operation-logs.json", "instance"},
	    {"server-operation-logs.json", "server"},
	    {"zone-operation-logs.json", "zone"},
	    {"group-operation-logs.json", "group-operation"},
	    {"group-logs.json", "group"},
	    {"route-rule-logs.json", "route-rule"},
	    {"route-rule-group-logs.json", "route-rule-group"},
	    {"group-instance-logs.json", "group-instance"},
	    {"service-instance-logs.json", "service-instance"},
	};
	const char *file = strrchr(req->path, '/');
	const char *type = "?";

	for (size_t i = 0; file && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(file + 1, kinds[i].file) == 0)
			type = kinds[i].type;
	list_records(req, res, type, true);
}

/* ---- The Rust audit calls ---------------------------------------------------------------- */

void api_mgmt_audit_logs(const http_request_t *req, http_response_t *res)
{
	list_records(req, res, NULL, false);
}

void api_mgmt_audit_instance_logs(const http_request_t *req, http_response_t *res)
{
	list_records(req, res, "instance", false);
}

void api_mgmt_audit_server_logs(const http_request_t *req, http_response_t *res)
{
	list_records(req, res, "server", false);
}

void api_mgmt_audit_log(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	const char *id = api_param("id");
	char *end;

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_READ, true))
		return;
	long long n = strtoll(id, &end, 10);
	if (*id < '0' || *id > '9' || *end) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "a log id is a number");
		goto out;
	}
	api_mgmt_ok_open(&r);
	rec_list_t l = {api_mgmt_out(&r), FORM_RUST, 0};
	int rc = mgmt_audit_get(r.m, n, list_record, &l);
	if (rc == -ENOENT)
		api_mgmt_fail(&r, API_DATA_NOT_FOUND, "no audit record %lld", n);
	else
		api_mgmt_done(&r, rc);
out:
	api_mgmt_end(&r);
}

void api_mgmt_audit_export(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_audit_filter_t f;
	filter_text_t t;
	char fmt[16];

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_READ, true))
		return;
	const char *format = arg2(&r, "format", NULL, fmt, sizeof(fmt));
	bool csv = format && strcasecmp(format, "csv") == 0;
	if (format && !csv && strcasecmp(format, "json") != 0) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "format is csv or json");
		goto out;
	}
	if (!read_filter(&r, &f, &t, NULL, EXPORT_LIMIT_MAX))
		goto out;
	if (!arg2(&r, "limit", NULL, t.num, sizeof(t.num)))
		f.limit = EXPORT_LIMIT_MAX;
	buf_t *b = api_mgmt_out(&r);
	b->len = 0;
	if (csv) {
		res->content_type = "text/csv;charset=UTF-8";
		buf_puts(
		    b,
		    "logId,timestamp,operationType,targetId,operation,action,operatorId,username,"
		    "result,details\r\n");
	} else {
		json_put_raw(b, "[");
	}
	rec_list_t l = {b, csv ? FORM_CSV : FORM_RUST, 0};
	int rc = mgmt_audit_query(r.m, &f, list_record, &l);
	if (rc < 0) {
		api_mgmt_fail_rc(&r, rc, NULL);
		goto out;
	}
	if (!csv)
		json_put_raw(b, "]");
	if (buf_error(b))
		api_mgmt_fail(&r, API_INTERNAL_ERROR, "out of memory");
out:
	api_mgmt_end(&r);
}

void api_mgmt_audit_stats(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_audit_filter_t f;
	filter_text_t t;

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_READ, true))
		return;
	if (!read_filter(&r, &f, &t, NULL, AUDIT_LIMIT_MAX))
		goto out;
	f.limit = f.offset = 0;
	api_mgmt_ok_open(&r);
	int rc = mgmt_audit_stats(r.m, &f, api_mgmt_out(&r));
	api_mgmt_done(&r, rc);
out:
	api_mgmt_end(&r);
}

/* DELETE .../audit/logs/cleanup?before=<time>&operatorId=..: admin. */
void api_mgmt_audit_cleanup(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	api_mgmt_ctx_t c;
	char buf[64], op[MGMT_MAX_OPERATOR + 2], err[MGMT_MAX_ERR * 2];
	const char *field = NULL;
	uint64_t before, deleted = 0;

	if (!api_mgmt_begin(&r, req, res, MGMT_STYLE_REST, MGMT_ADMIN, true))
		return;
	const char *q = api_query_get(req, "operatorid", op, sizeof(op)) >= 0 ? op : NULL;
	if (!parse_time(&r, "before", NULL, "before", &before, buf, sizeof(buf)))
		goto out;
	if (before == 0) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "before is required (ISO 8601 or epoch)");
		goto out;
	}
	if (api_mgmt_decode_ctx(r.body, q, &c, &field) < 0) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "%s is not valid", field);
		goto out;
	}
	c.ctx.surface = "rust";
	int rc = mgmt_audit_cleanup(r.m, before, &c.ctx, &deleted, err, sizeof(err));
	if (rc < 0) {
		api_mgmt_fail_rc(&r, rc, err);
		goto out;
	}
	api_mgmt_ok_open(&r);
	buf_t *b = api_mgmt_out(&r);
	json_put_raw(b, "{\"before\":");
	json_put_u64(b, before);
	json_put_raw(b, ",\"deleted\":");
	json_put_u64(b, deleted);
	json_put_raw(b, "}");
	api_mgmt_ok_close(&r);
out:
	api_mgmt_end(&r);
}

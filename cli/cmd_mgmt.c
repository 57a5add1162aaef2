/*
 * cmd_mgmt.c - artemis ops and audit: operations on instances, servers and
 * zones, and the audit trail, through the management API (API.md §5,
 * MANAGEMENT.md §3).
 *
 *   ops pull-out|pull-in instance SERVICE INSTANCE   operate-instance.json
 *   ops pull-out|pull-in server IP                   operate-server.json
 *   ops pull-out|pull-in zone ZONE [--service S]     zone/operate-zone-operations.json
 *   ops list [instances|servers|zones]               what is in force
 *   audit [filters] [--json|--csv]                   /api/management/audit/logs(/export)
 *
 * The region is --region, else the local configuration's; the operation
 * is --operation (default "pullout", as the console writes it); the
 * operator is --operator, else the node takes the logged-in user's name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"

#define M "/api/management/"

static const char *mgmt__region(cli_t *c)
{
	return c->region ? c->region : c->cfg_region[0] ? c->cfg_region : "us-east";
}

/* The request of one pull-out / pull-in. */
static json_t *mgmt__operate_body(cli_t *c, const char *kind, bool out, const char **path)
{
	const char *op = c->operation ? c->operation : "pullout", *region = mgmt__region(c);
	json_t *b = NULL;
	if (!strcmp(kind, "instance") && c->nargs == 4) {
		*path = M "operate-instance.json";
		b = json_pack("{s:{s:s, s:s, s:s}}", "instanceKey", "regionId", region, "serviceId",
		              c->args[2], "instanceId", c->args[3]);
	} else if (!strcmp(kind, "server") && c->nargs == 3) {
		*path = M "operate-server.json";
		b = json_pack("{s:{s:s, s:s}}", "serverKey", "regionId", region, "serverId",
		              c->args[2]);
	} else if (!strcmp(kind, "zone") && c->nargs == 3) {
		*path = M "zone/operate-zone-operations.json";
		b = json_pack("{s:[{s:{s:s, s:s, s:s}, s:[s]}]}", "zoneOperationsList", "zoneKey",
		              "regionId", region, "zoneId", c->args[2], "serviceId",
		              c->service ? c->service : "", "operations", op);
	} else {
		return NULL;
	}
	if (strcmp(kind, "zone") != 0)
		json_object_set_new(b, "operation", json_string(op));
	json_object_set_new(b, "operationComplete", json_boolean(!out));
	if (c->operator_id)
		json_object_set_new(b, "operatorId", json_string(c->operator_id));
	return b;
}

static int mgmt__operate(cli_t *c, bool out)
{
	const char *path = NULL;
	json_t *res = NULL,
	       *body = mgmt__operate_body(c, c->nargs > 1 ? c->args[1] : "", out, &path);
	if (!body)
		return cli_usage(c, "ops %s instance SERVICE INSTANCE | server IP | zone ZONE",
		                 c->args[0]);
	int rc = cli_client(c, false);
	if (rc == 0)
		rc = cli_api(c, "POST", path, body, &res);
	json_decref(body);
	json_decref(res);
	if (rc == 0)
		printf("%s %s %s%s%s: done\n", c->args[1], c->args[2],
		       c->nargs == 4 ? c->args[3] : "", c->nargs == 4 ? " " : "",
		       out ? "pulled out" : "pulled in");
	return rc;
}

/* One table row per operation in force, from the Rust records of
 * all-*-operations.json or the zone list. */
static void mgmt__op_rows(cli_table_t *t, const char *kind, json_t *list)
{
	json_t *r;
	size_t i;
	json_array_foreach(list, i, r)
	{
		json_t *k = json_object_get(r, "instanceKey");
		const char *row[5] = {kind, cli_str(k ? k : r, "regionId"), "",
		                      cli_str(r, "operation"), cli_str(r, "operatorId")};
		char target[600];
		if (!strcmp(kind, "instance"))
			snprintf(target, sizeof(target), "%s/%s", cli_str(k, "serviceId"),
			         cli_str(k, "instanceId"));
		else if (!strcmp(kind, "server"))
			snprintf(target, sizeof(target), "%s", cli_str(r, "serverId"));
		else
			snprintf(target, sizeof(target), "%s%s%s", cli_str(r, "zoneId"),
			         *cli_str(r, "serviceId") ? "/" : "", cli_str(r, "serviceId"));
		row[2] = target;
		cli_table_row(t, row);
	}
}

static int mgmt__list(cli_t *c)
{
	static const struct {
		const char *name, *kind, *method, *path, *member;
	} lists[] = {
	    {"instances", "instance", "POST", M "all-instance-operations.json",
	     "instanceOperationRecords"},
	    {"servers", "server", "POST", M "all-server-operations.json", "serverOperationRecords"},
	    {"zones", "zone", "GET", M "zone/operations", "data"},
	};
	const char *which = c->nargs > 1 ? c->args[1] : NULL;
	cli_table_t t;
	int rc = 0, found = 0;
	if (c->nargs > 2)
		return cli_usage(c, "ops list [instances|servers|zones]");
	for (size_t i = 0; i < 3; i++)
		found += !which || !strcmp(which, lists[i].name);
	if (!found)
		return cli_usage(c, "ops list [instances|servers|zones], not '%s'", which);
	if ((rc = cli_client(c, false)) != 0)
		return rc;
	json_t *all = json_object(), *empty = json_object();
	cli_table_init(&t, 5);
	const char *head[5] = {"KIND", "REGION", "TARGET", "OPERATION", "OPERATOR"};
	cli_table_row(&t, head);
	for (size_t i = 0; i < 3 && rc == 0; i++) {
		json_t *out = NULL;
		if (which && strcmp(which, lists[i].name) != 0)
			continue;
		json_t *body = !strcmp(lists[i].method, "POST") ? empty : NULL;
		if ((rc = cli_api(c, lists[i].method, lists[i].path, body, &out)) == 0) {
			mgmt__op_rows(&t, lists[i].kind, json_object_get(out, lists[i].member));
			json_object_set(all, lists[i].name, json_object_get(out, lists[i].member));
		}
		json_decref(out);
	}
	if (rc == 0 && c->json) {
		cli_print_json(all);
	} else if (rc == 0) {
		cli_table_print(&t, stdout);
	}
	cli_table_free(&t);
	json_decref(all);
	json_decref(empty);
	return rc;
}

int cli_cmd_ops(cli_t *c)
{
	const char *sub = c->args[0];
	if (!strcmp(sub, "pull-out") || !strcmp(sub, "pull-in"))
		return mgmt__operate(c, !strcmp(sub, "pull-out"));
	if (!strcmp(sub, "list"))
		return mgmt__list(c);
	return cli_usage(c, "ops pull-out|pull-in|list, not '%s'", sub);
}

/* ---- audit -------------------------------------------------------------------------- */

/* The query string of the filters, URL-encoded. */
static void mgmt__query(cli_t *c, char *q, size_t len, bool csv)
{
	const struct {
		const char *name, *value;
	} args[] = {{"operatorId", c->operator_id},
	            {"operationType", c->type},
	            {"from", c->since},
	            {"to", c->until}};
	size_t n = (size_t)snprintf(q, len, "?limit=%ld&offset=%ld%s", c->limit ? c->limit : 100,
	                            c->offset, csv ? "&format=csv" : "");
	for (size_t i = 0; i < sizeof(args) / sizeof(args[0]) && n < len; i++) {
		if (!args[i].value)
			continue;
		n += (size_t)snprintf(q + n, len - n, "&%s=", args[i].name);
		for (const unsigned char *p = (const unsigned char *)args[i].value;
		     *p && n + 4 < len; p++) {
			bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			             (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
			             *p == '.';
			n += (size_t)snprintf(q + n, len - n, plain ? "%c" : "%%%02X", *p);
		}
	}
}

static int mgmt__audit_csv(cli_t *c, const char *query)
{
	char path[1200];
	artemis_response_t *r;
	artemis_error_t err;
	snprintf(path, sizeof(path), M "audit/logs/export%s", query);
	if (artemis_call(c->client, "GET", path, NULL, NULL, &r, &err) < 0)
		return cli_fail(c, &err);
	int status = artemis_response_status(r);
	size_t len = 0;
	const char *body = artemis_response_body(r, &len);
	if (status != 200) {
		fprintf(stderr, "artemis audit: HTTP %d from %s%s\n", status,
		        artemis_response_node(r),
		        status == 401 ? "; log in first: artemis login" : "");
		artemis_response_free(r);
		return 1;
	}
	fwrite(body, 1, len, stdout);
	artemis_response_free(r);
	return 0;
}

static void mgmt__audit_row(json_t *rec, const char **cells, char scratch[8][64])
{
	static const char *const keys[] = {"timestamp", "operationType", "targetId",
	                                   "operation", "operatorId",    "username"};
	(void)scratch;
	for (int i = 0; i < 6; i++)
		cells[i] = cli_str(rec, keys[i]);
}

int cli_cmd_audit(cli_t *c)
{
	static const char *const head[] = {"TIME",      "TYPE",     "TARGET",
	                                   "OPERATION", "OPERATOR", "USER"};
	char query[1024], path[1200];
	int rc = cli_client(c, false);
	if (rc != 0)
		return rc;
	mgmt__query(c, query, sizeof(query), c->csv);
	if (c->csv)
		return mgmt__audit_csv(c, query);
	snprintf(path, sizeof(path), M "audit/logs%s", query);
	return cli_list(c, path, head, 6, mgmt__audit_row);
}

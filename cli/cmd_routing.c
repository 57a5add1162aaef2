/*
 * cmd_routing.c - artemis groups | rules | canary: the routing of a
 * registry (docs/ROUTING.md) over the node's REST API (MANAGEMENT.md
 * §3.2.3-§3.2.5), through the client library's calls (artemis_call, with
 * --token or the stored credential).
 *
 *   groups list [SERVICE]                      groups create SERVICE NAME
 *   groups delete GROUP                        groups tag GROUP KEY=VALUE... [--remove]
 *   groups bind GROUP INSTANCE...              groups unbind GROUP INSTANCE...
 *   rules list [SERVICE]                       rules create SERVICE ROUTE_ID
 *   rules add-group ROUTE_ID GROUP [--weight N]
 *   rules set-weight ROUTE_ID GROUP WEIGHT     rules publish|unpublish|delete ROUTE_ID
 *   canary set SERVICE [IP|CIDR]...            canary enable|disable SERVICE
 *   canary show [SERVICE]
 *
 * A GROUP is its numeric id or serviceId:regionId:zoneId:name (the rules'
 * commands also take a group's name within the rule's service).  Output: a
 * table or a line for people, the answer's data with --json.  Exit codes:
 * 0 done, 1 the node refused or failed, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "artemis/buf.h"
#include "cli_int.h"

/* Append s percent-encoded as one path segment or query value. */
static void rt__enc(buf_t *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("-._~:", ch)) {
			buf_append(b, s, 1);
		} else {
			char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
			buf_append(b, e, 3);
		}
	}
}

/* path with %s replaced by the encoded args, in order (at most 3). */
static char *rt__path(const char *fmt, const char *a, const char *b, const char *c)
{
	const char *args[3] = {a, b, c};
	buf_t p = {0};
	int k = 0;
	for (const char *f = fmt; *f; f++) {
		if (f[0] == '%' && f[1] == 's' && k < 3) {
			rt__enc(&p, args[k++]);
			f++;
		} else {
			buf_append(&p, f, 1);
		}
	}
	return buf_error(&p) ? NULL : p.data;
}

/* One call (cli_api: the token, the node's refusal printed): the answer's
 * data (a new reference), or NULL.  path is freed; body may be NULL (stolen
 * otherwise).  A write names --operator when given, else the node records
 * the logged-in user. */
static json_t *rt__call(cli_t *c, const char *method, char *path, json_t *body)
{
	json_t *root = NULL, *data = NULL;

	if (!path) {
		fprintf(stderr, "artemis %s: out of memory\n", c->cmd);
		json_decref(body);
		return NULL;
	}
	if (!body && strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0)
		body = json_object();
	if (body && c->operator_id)
		json_object_set_new(body, "operatorId", json_string(c->operator_id));
	if (cli_api(c, method, path, body, &root) == 0) {
		data = json_incref(json_object_get(root, "data"));
		if (!data)
			data = json_null();
	}
	json_decref(root);
	json_decref(body);
	free(path);
	return data;
}

/* Print data as JSON (--json), or msg. */
static int rt__done(cli_t *c, json_t *data, const char *msg)
{
	if (!data)
		return 1;
	if (c->json) {
		json_dumpf(data, stdout, JSON_COMPACT | JSON_ENCODE_ANY);
		putchar('\n');
	} else if (msg) {
		printf("%s\n", msg);
	}
	json_decref(data);
	return 0;
}

static void rt__int(const json_t *o, const char *key, char *buf, size_t len)
{
	const json_t *v = json_object_get(o, key);
	if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else
		snprintf(buf, len, "-");
}

/* The region and zone of a new group: --region/--zone, else the node's. */
static int rt__where(cli_t *c, char *region, char *zone, size_t len)
{
	artemis_response_t *r = NULL;
	artemis_error_t err;
	snprintf(region, len, "%s", c->region ? c->region : "");
	snprintf(zone, len, "%s", c->zone ? c->zone : "");
	if (region[0] && zone[0])
		return 0;
	if (artemis_call(c->client, "POST", "/artemis/api/status/node.json", "{}", "", &r, &err) <
	    0)
		return cli_fail(c, &err);
	json_t *root = json_loads(artemis_response_body(r, NULL), 0, NULL);
	json_t *z =
	    json_object_get(json_object_get(json_object_get(root, "nodeStatus"), "node"), "zone");
	if (!region[0])
		snprintf(region, len, "%s", cli_str(z, "regionId"));
	if (!zone[0])
		snprintf(zone, len, "%s", cli_str(z, "zoneId"));
	json_decref(root);
	artemis_response_free(r);
	if (!region[0] || !zone[0]) {
		fprintf(stderr,
		        "artemis %s: give --region and --zone (the node did not say its own)\n",
		        c->cmd);
		return 1;
	}
	return 0;
}

/* ---- groups ----------------------------------------------------------------------- */

static int groups_list(cli_t *c)
{
	char *path = c->nargs > 1
	                 ? rt__path("/api/routing/groups?serviceId=%s", c->args[1], NULL, NULL)
	                 : strdup("/api/routing/groups");
	json_t *data = rt__call(c, "GET", path, NULL), *g;
	size_t i;
	if (!data || c->json)
		return rt__done(c, data, NULL);
	cli_table_t t;
	const char *head[6] = {"ID", "GROUP", "TYPE", "STATUS", "INSTANCES", "TAGS"};
	cli_table_init(&t, 6);
	cli_table_row(&t, head);
	json_array_foreach(data, i, g)
	{
		char id[32], n[32];
		buf_t tags = {0};
		const char *k;
		json_t *v;
		rt__int(g, "groupId", id, sizeof(id));
		rt__int(g, "instanceCount", n, sizeof(n));
		json_object_foreach(json_object_get(g, "tags"), k, v)
		{
			buf_printf(&tags, "%s%s=%s", tags.len ? "," : "", k, json_string_value(v));
		}
		const char *row[6] = {id,
		                      cli_str(g, "groupKey"),
		                      cli_str(g, "groupType"),
		                      cli_str(g, "status"),
		                      n,
		                      tags.data};
		cli_table_row(&t, row);
		buf_free(&tags);
	}
	cli_table_print(&t, stdout);
	cli_table_free(&t);
	json_decref(data);
	return 0;
}

static int groups_create(cli_t *c)
{
	char region[128], zone[128], msg[1024];
	int rc;
	if (c->nargs != 3)
		return cli_usage(c, "groups create SERVICE NAME");
	if ((rc = rt__where(c, region, zone, sizeof(region))) != 0)
		return rc;
	json_t *body = json_pack("{s:s,s:s,s:s,s:s,s:s}", "serviceId", c->args[1], "regionId",
	                         region, "zoneId", zone, "name", c->args[2], "groupType",
	                         c->type ? c->type : "physical");
	if (c->app_id)
		json_object_set_new(body, "appId", json_string(c->app_id));
	if (c->description)
		json_object_set_new(body, "description", json_string(c->description));
	json_t *g = rt__call(c, "POST", strdup("/api/routing/groups"), body);
	if (g)
		snprintf(msg, sizeof(msg), "group %lld %s created",
		         (long long)json_integer_value(json_object_get(g, "groupId")),
		         cli_str(g, "groupKey"));
	return rt__done(c, g, msg);
}

static int groups_delete(cli_t *c)
{
	char msg[600];
	if (c->nargs != 2)
		return cli_usage(c, "groups delete GROUP");
	snprintf(msg, sizeof(msg), "group %s deleted", c->args[1]);
	return rt__done(
	    c,
	    rt__call(c, "DELETE", rt__path("/api/routing/groups/%s", c->args[1], NULL, NULL), NULL),
	    msg);
}

static int groups_tag(cli_t *c)
{
	if (c->nargs < 3)
		return cli_usage(c, "groups tag GROUP KEY=VALUE... (or KEY... --remove)");
	if (c->remove) {
		for (int i = 2; i < c->nargs; i++) {
			json_t *d = rt__call(c, "DELETE",
			                     rt__path("/api/routing/groups/%s/tags/%s", c->args[1],
			                              c->args[i], NULL),
			                     NULL);
			if (!d)
				return 1;
			json_decref(d);
		}
		printf("%d tag%s removed from %s\n", c->nargs - 2, c->nargs == 3 ? "" : "s",
		       c->args[1]);
		return 0;
	}
	json_t *tags = json_array();
	for (int i = 2; i < c->nargs; i++) {
		const char *eq = strchr(c->args[i], '=');
		if (!eq || eq == c->args[i]) {
			json_decref(tags);
			return cli_usage(c, "%s: a tag is KEY=VALUE", c->args[i]);
		}
		json_array_append_new(tags, json_pack("{s:s%,s:s}", "key", c->args[i],
		                                      (size_t)(eq - c->args[i]), "value", eq + 1));
	}
	char msg[600];
	snprintf(msg, sizeof(msg), "%d tag%s set on %s", c->nargs - 2, c->nargs == 3 ? "" : "s",
	         c->args[1]);
	return rt__done(c,
	                rt__call(c, "POST",
	                         rt__path("/api/routing/groups/%s/tags", c->args[1], NULL, NULL),
	                         json_pack("{s:o}", "tags", tags)),
	                msg);
}

/* bind: one batch (all or nothing) on the group's service. */
static int groups_bind(cli_t *c)
{
	if (c->nargs < 3)
		return cli_usage(c, "groups bind GROUP INSTANCE...");
	json_t *g =
	    rt__call(c, "GET", rt__path("/api/routing/groups/%s", c->args[1], NULL, NULL), NULL);
	if (!g)
		return 1;
	json_t *list = json_array();
	for (int i = 2; i < c->nargs; i++)
		json_array_append_new(list, json_pack("{s:O,s:s}", "groupId",
		                                      json_object_get(g, "groupId"), "instanceId",
		                                      c->args[i]));
	char *path =
	    rt__path("/api/routing/services/%s/instances", cli_str(g, "serviceId"), NULL, NULL);
	char msg[600];
	snprintf(msg, sizeof(msg), "%d instance%s bound to %s", c->nargs - 2,
	         c->nargs == 3 ? "" : "s", cli_str(g, "groupKey"));
	json_decref(g);
	return rt__done(c, rt__call(c, "POST", path, json_pack("{s:o}", "instances", list)), msg);
}

static int groups_unbind(cli_t *c)
{
	if (c->nargs < 3)
		return cli_usage(c, "groups unbind GROUP INSTANCE...");
	for (int i = 2; i < c->nargs; i++) {
		json_t *d = rt__call(
		    c, "DELETE",
		    rt__path("/api/routing/groups/%s/instances/%s", c->args[1], c->args[i], NULL),
		    NULL);
		if (!d)
			return 1;
		json_decref(d);
	}
	printf("%d instance%s unbound from %s\n", c->nargs - 2, c->nargs == 3 ? "" : "s",
	       c->args[1]);
	return 0;
}

/* ---- rules ------------------------------------------------------------------------ */

static int rules_list(cli_t *c)
{
	char *path = c->nargs > 1
	                 ? rt__path("/api/routing/rules?serviceId=%s", c->args[1], NULL, NULL)
	                 : strdup("/api/routing/rules");
	json_t *data = rt__call(c, "GET", path, NULL), *r, *g;
	size_t i, k;
	if (!data || c->json)
		return rt__done(c, data, NULL);
	cli_table_t t;
	const char *head[5] = {"RULE", "SERVICE", "STRATEGY", "STATUS", "GROUPS"};
	cli_table_init(&t, 5);
	cli_table_row(&t, head);
	json_array_foreach(data, i, r)
	{
		buf_t groups = {0};
		char w[32];
		json_array_foreach(json_object_get(r, "groups"), k, g)
		{
			rt__int(g, "weight", w, sizeof(w));
			buf_printf(&groups, "%s%s:%s", groups.len ? "," : "",
			           cli_str(g, "groupName"), w);
		}
		const char *status =
		    !strcmp(cli_str(r, "status"), "active") ? "published" : "unpublished";
		const char *row[5] = {cli_str(r, "routeId"), cli_str(r, "serviceId"),
		                      cli_str(r, "strategy"), status, groups.data};
		cli_table_row(&t, row);
		buf_free(&groups);
	}
	cli_table_print(&t, stdout);
	cli_table_free(&t);
	json_decref(data);
	return 0;
}

static int rules_create(cli_t *c)
{
	char msg[600];
	if (c->nargs != 3)
		return cli_usage(c, "rules create SERVICE ROUTE_ID [--strategy S] [--name N]");
	json_t *body = json_pack("{s:s,s:s,s:s,s:s}", "serviceId", c->args[1], "routeId",
	                         c->args[2], "name", c->name ? c->name : c->args[2], "strategy",
	                         c->strategy ? c->strategy : "weighted-round-robin");
	if (c->description)
		json_object_set_new(body, "description", json_string(c->description));
	snprintf(msg, sizeof(msg), "rule %s created (unpublished)", c->args[2]);
	return rt__done(c, rt__call(c, "POST", strdup("/api/routing/rules"), body), msg);
}

/* A group of a rule in a path or a body: the numeric id as a number. */
static json_t *rt__group_ref(const char *s)
{
	char *end;
	long long id = strtoll(s, &end, 10);
	return *s && !*end && id > 0 ? json_integer(id) : json_string(s);
}

static int rules_group(cli_t *c, bool add)
{
	char msg[700];
	long weight = c->weight;
	if (add && c->nargs != 3)
		return cli_usage(c, "rules add-group ROUTE_ID GROUP [--weight N]");
	if (!add) {
		char *end;
		if (c->nargs != 4)
			return cli_usage(c, "rules set-weight ROUTE_ID GROUP WEIGHT");
		weight = strtol(c->args[3], &end, 10);
		if (!*c->args[3] || *end)
			return cli_usage(c, "%s: a weight is a number (1..100)", c->args[3]);
	}
	json_t *body = json_pack("{s:i}", "weight", (int)(weight ? weight : 5));
	char *path;
	if (add) {
		json_object_set_new(body, "groupId", rt__group_ref(c->args[2]));
		path = rt__path("/api/routing/rules/%s/groups", c->args[1], NULL, NULL);
	} else {
		path = rt__path("/api/routing/rules/%s/groups/%s", c->args[1], c->args[2], NULL);
	}
	json_t *d = rt__call(c, add ? "POST" : "PUT", path, body);
	if (d)
		snprintf(msg, sizeof(msg), "rule %s: group %s weight %lld", c->args[1], c->args[2],
		         (long long)json_integer_value(json_object_get(d, "weight")));
	return rt__done(c, d, msg);
}

static int rules_state(cli_t *c, const char *what)
{
	char msg[600];
	if (c->nargs != 2)
		return cli_usage(c, "rules %s ROUTE_ID", what);
	snprintf(msg, sizeof(msg), "rule %s %s%s", c->args[1], what,
	         strcmp(what, "delete") ? "ed" : "d");
	if (!strcmp(what, "delete"))
		return rt__done(c,
		                rt__call(c, "DELETE",
		                         rt__path("/api/routing/rules/%s", c->args[1], NULL, NULL),
		                         NULL),
		                msg);
	char fmt[64];
	snprintf(fmt, sizeof(fmt), "/api/routing/rules/%%s/%s", what);
	return rt__done(
	    c, rt__call(c, "POST", rt__path(fmt, c->args[1], NULL, NULL), json_object()), msg);
}

/* ---- canary ----------------------------------------------------------------------- */

static int canary_show(cli_t *c)
{
	json_t *data, *one;
	size_t i;
	if (c->nargs > 1)
		data = rt__call(
		    c, "GET", rt__path("/api/management/canary/config/%s", c->args[1], NULL, NULL),
		    NULL);
	else
		data = rt__call(c, "GET", strdup("/api/management/canary/configs"), NULL);
	if (!data || c->json)
		return rt__done(c, data, NULL);
	if (json_is_object(data)) {
		json_t *list = json_array();
		json_array_append(list, data);
		json_decref(data);
		data = list;
	}
	cli_table_t t;
	const char *head[3] = {"SERVICE", "STATE", "WHITELIST"};
	cli_table_init(&t, 3);
	cli_table_row(&t, head);
	json_array_foreach(data, i, one)
	{
		buf_t ips = {0};
		size_t k;
		json_t *ip;
		json_array_foreach(json_object_get(one, "ipWhitelist"), k, ip)
		{
			buf_printf(&ips, "%s%s", ips.len ? "," : "", json_string_value(ip));
		}
		const char *row[3] = {cli_str(one, "serviceId"),
		                      json_is_true(json_object_get(one, "enabled")) ? "enabled"
		                                                                    : "disabled",
		                      ips.data};
		cli_table_row(&t, row);
		buf_free(&ips);
	}
	cli_table_print(&t, stdout);
	cli_table_free(&t);
	json_decref(data);
	return 0;
}

static int canary_set(cli_t *c)
{
	char msg[600];
	if (c->nargs < 2)
		return cli_usage(c, "canary set SERVICE [IP|CIDR]...");
	json_t *ips = json_array();
	for (int i = 2; i < c->nargs; i++)
		json_array_append_new(ips, json_string(c->args[i]));
	snprintf(msg, sizeof(msg), "canary of %s: %d whitelist entr%s, enabled", c->args[1],
	         c->nargs - 2, c->nargs == 3 ? "y" : "ies");
	return rt__done(
	    c,
	    rt__call(c, "POST", strdup("/api/management/canary/config"),
	             json_pack("{s:s,s:o}", "serviceId", c->args[1], "ipWhitelist", ips)),
	    msg);
}

static int canary_switch(cli_t *c, bool on)
{
	char msg[600];
	if (c->nargs != 2)
		return cli_usage(c, "canary %s SERVICE", on ? "enable" : "disable");
	snprintf(msg, sizeof(msg), "canary of %s %s", c->args[1], on ? "enabled" : "disabled");
	return rt__done(c,
	                rt__call(c, "POST",
	                         strdup(on ? "/api/management/canary/enable"
	                                   : "/api/management/canary/disable"),
	                         json_pack("{s:s,s:b}", "serviceId", c->args[1], "enabled", on)),
	                msg);
}

/* ---- dispatch ------------------------------------------------------------------------ */

int cli_cmd_groups(cli_t *c)
{
	static const char *const subs = "list, create, delete, tag, bind or unbind";
	const char *s = c->args[0];
	int rc = cli_client(c, false);
	if (rc != 0)
		return rc;
	if (!strcmp(s, "list") && c->nargs <= 2)
		return groups_list(c);
	if (!strcmp(s, "create"))
		return groups_create(c);
	if (!strcmp(s, "delete"))
		return groups_delete(c);
	if (!strcmp(s, "tag"))
		return groups_tag(c);
	if (!strcmp(s, "bind"))
		return groups_bind(c);
	if (!strcmp(s, "unbind"))
		return groups_unbind(c);
	return cli_usage(c, "%s: the subcommands are %s", s, subs);
}

int cli_cmd_rules(cli_t *c)
{
	const char *s = c->args[0];
	int rc = cli_client(c, false);
	if (rc != 0)
		return rc;
	if (!strcmp(s, "list") && c->nargs <= 2)
		return rules_list(c);
	if (!strcmp(s, "create"))
		return rules_create(c);
	if (!strcmp(s, "add-group"))
		return rules_group(c, true);
	if (!strcmp(s, "set-weight"))
		return rules_group(c, false);
	if (!strcmp(s, "publish") || !strcmp(s, "unpublish") || !strcmp(s, "delete"))
		return rules_state(c, s);
	return cli_usage(c,
	                 "%s: the subcommands are list, create, add-group, set-weight, publish, "
	                 "unpublish or delete",
	                 s);
}

int cli_cmd_canary(cli_t *c)
{
	const char *s = c->args[0];
	int rc = cli_client(c, false);
	if (rc != 0)
		return rc;
	if (!strcmp(s, "show") && c->nargs <= 2)
		return canary_show(c);
	if (!strcmp(s, "set"))
		return canary_set(c);
	if (!strcmp(s, "enable") || !strcmp(s, "disable"))
		return canary_switch(c, !strcmp(s, "enable"));
	return cli_usage(c, "%s: the subcommands are set, enable, disable or show", s);
}

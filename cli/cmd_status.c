/*
 * cmd_status.c - artemis status: the node's own state (status/node.json)
 * and the cluster it sees (status/cluster.json), API.md §2.5.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli_int.h"

/* POST {} to a status path; the parsed answer or NULL (printed why). */
static json_t *status__get(cli_t *c, const char *path)
{
	artemis_response_t *r;
	artemis_error_t err;
	json_t *root;

	if (artemis_call(c->client, "POST", path, "{}", NULL, &r, &err) < 0) {
		cli_fail(c, &err);
		return NULL;
	}
	root = json_loads(artemis_response_body(r, NULL), 0, NULL);
	if (artemis_response_status(r) != 200 || !json_is_object(root)) {
		fprintf(stderr, "artemis status: %s on %s: HTTP %d%s\n", path,
		        artemis_response_node(r), artemis_response_status(r),
		        json_is_object(root) ? "" : ", not JSON");
		json_decref(root);
		root = NULL;
	}
	artemis_response_free(r);
	return root;
}

static const char *status__str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s ? s : "-";
}

static const char *status__yes(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_true(v) ? "yes" : json_is_false(v) ? "no" : "-";
}

static void status__row(cli_table_t *t, json_t *ns)
{
	json_t *node = json_object_get(ns, "node");
	json_t *zone = json_object_get(node, "zone");
	const char *row[6] = {status__str(node, "url"),
	                      status__str(zone, "regionId"),
	                      status__str(zone, "zoneId"),
	                      status__str(ns, "status"),
	                      status__yes(ns, "canServiceRegistry"),
	                      status__yes(ns, "canServiceDiscovery")};
	cli_table_row(t, row);
}

int cli_cmd_status(cli_t *c)
{
	json_t *node, *cluster, *list, *ns;
	cli_table_t t;
	const char *head[6] = {"NODE", "REGION", "ZONE", "STATUS", "REGISTRY", "DISCOVERY"};
	size_t k;
	int rc;

	if ((rc = cli_client(c, false)) != 0)
		return rc;
	if ((node = status__get(c, "/artemis/api/status/node.json")) == NULL)
		return 1;
	if ((cluster = status__get(c, "/artemis/api/status/cluster.json")) == NULL) {
		json_decref(node);
		return 1;
	}
	ns = json_object_get(node, "nodeStatus");
	list = json_object_get(cluster, "nodesStatus");
	if (c->json) {
		json_t *out = json_pack("{s:O?,s:O?,s:O?}", "node", ns, "nodeCount",
		                        json_object_get(cluster, "nodeCount"), "nodesStatus", list);
		if (out) {
			json_dumpf(out, stdout, JSON_COMPACT);
			putchar('\n');
			json_decref(out);
		}
	} else {
		cli_table_init(&t, 6);
		cli_table_row(&t, head);
		status__row(&t, ns);
		printf("this node:\n");
		cli_table_print(&t, stdout);
		cli_table_free(&t);
		cli_table_init(&t, 6);
		cli_table_row(&t, head);
		json_array_foreach(list, k, ns)
		{
			status__row(&t, ns);
		}
		printf("cluster: %zu nodes\n", json_array_size(list));
		cli_table_print(&t, stdout);
		cli_table_free(&t);
	}
	json_decref(node);
	json_decref(cluster);
	return 0;
}

/*
 * api_rust.c - what the /api/... twins of the /artemis/api/... paths add to
 * a response (MANAGEMENT.md §3.3), for the earlier Rust rewrite's clients:
 *
 *   - the top-level responseStatus object also carries `errorMessage` (the
 *     Rust name; the same text as `message`);
 *   - with `nodes` (status and cluster paths), every ServiceNode (an object
 *     with a `url` and a `zone` object) also carries the flat `nodeId`,
 *     `regionId` and `zoneId`; nodeId is the node's configured name (this
 *     node's, or the peer's whose url it is).
 *
 * Called by api_dispatch() after the handler, on the finished body.  The
 * responseStatus is found by a scan that tracks strings and depth (it comes
 * first in discovery answers, so the scan is short there) and rewritten in
 * place; node fields need the whole (small) body through jansson.  A body
 * that is not what is expected (a framework error, an empty body) is left
 * as it is.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "artemis/codec.h"

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The extent [*start, *end) of the top-level "responseStatus" object: a
 * walk over the members of the body's object. */
static bool find_status(const char *b, size_t n, size_t *start, size_t *end)
{
	static const char key[] = "\"responseStatus\"";
	size_t i = 1;

	while (i < n) {
		while (i < n && (is_blank(b[i]) || b[i] == ','))
			i++;
		if (i >= n || b[i] != '"')
			return false;
		size_t klen = json_value_len(b + i, n - i);
		bool match = klen == sizeof(key) - 1 && memcmp(b + i, key, klen) == 0;
		i += klen;
		while (i < n && (is_blank(b[i]) || b[i] == ':'))
			i++;
		if (klen == 0 || i >= n)
			return false;
		size_t vlen = json_value_len(b + i, n - i);
		if (match && b[i] == '{' && vlen) {
			*start = i;
			*end = i + vlen;
			return true;
		}
		if (vlen) {
			i += vlen;
			continue;
		}
		while (i < n && b[i] != ',' && b[i] != '}') /* a number or a literal */
			i++;
	}
	return false;
}

static void add_error_message(http_response_t *res)
{
	size_t start, end;
	json_t *rs;
	char *text;
	buf_t out = {0};

	if (!find_status(res->body.data, res->body.len, &start, &end))
		return;
	rs = json_loadb(res->body.data + start, end - start, 0, NULL);
	if (!json_is_object(rs)) {
		json_decref(rs);
		return;
	}
	json_object_set(rs, "errorMessage", json_object_get(rs, "message"));
	text = json_dumps(rs, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(rs);
	if (text == NULL)
		return;
	buf_append(&out, res->body.data, start);
	buf_puts(&out, text);
	buf_append(&out, res->body.data + end, res->body.len - end);
	free(text);
	if (buf_error(&out) == 0) {
		res->body.len = 0;
		buf_append(&res->body, out.data, out.len);
	}
	buf_free(&out);
}

/* The configured name of the node at url, or NULL. */
static const char *node_name(const char *url)
{
	shm_peer_t peers[SHM_MAX_NODES];
	static char name[64];
	int n;

	if (strcmp(url, api_self_url()) == 0)
		return api_cfg()->name;
	n = api_peers(peers, SHM_MAX_NODES);
	for (int i = 0; i < n; i++) {
		if (strcmp(peers[i].url, url) == 0) {
			memcpy(name, peers[i].name, sizeof(name));
			name[sizeof(name) - 1] = '\0';
			return name;
		}
	}
	return NULL;
}

static void flatten_nodes(json_t *v)
{
	size_t i;
	const char *k;
	json_t *x, *zone = json_object_get(v, "zone"), *url = json_object_get(v, "url");

	if (json_is_object(v) && json_is_string(url) && json_is_object(zone)) {
		const char *name = node_name(json_string_value(url));
		json_object_set_new(v, "nodeId", name ? json_string(name) : json_null());
		json_object_set(v, "regionId", json_object_get(zone, "regionId"));
		json_object_set(v, "zoneId", json_object_get(zone, "zoneId"));
	}
	if (json_is_object(v)) {
		json_object_foreach(v, k, x)
		{
			flatten_nodes(x);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x)
		{
			flatten_nodes(x);
		}
	}
}

static void add_node_fields(http_response_t *res)
{
	json_t *root = json_loadb(res->body.data, res->body.len, 0, NULL);
	char *text;

	if (root == NULL)
		return;
	flatten_nodes(root);
	text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(root);
	if (text == NULL)
		return;
	res->body.len = 0;
	buf_puts(&res->body, text);
	free(text);
}

void api_rust_shape(http_response_t *res, bool nodes)
{
	if (res->status != 200 || res->body.len == 0 || res->body.data[0] != '{')
		return;
	if (nodes)
		add_node_fields(res);
	add_error_message(res);
}

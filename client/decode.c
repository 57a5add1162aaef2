/*
 * decode.c - the decoders of what nodes answer, in one place because they
 * read untrusted bytes: the responseStatus envelope (API.md §1.6), the
 * registry answers with their failedInstances (§1.7), an InstanceChange
 * push (§1.5) and the cluster's node lists (§2.4).  Keys are matched as
 * the nodes match them (case-insensitively, underscores ignored).
 *
 * Each decoder either succeeds or returns an error; none trusts a type,
 * a length or a count.  tests/fuzz/fuzz_client.c feeds them garbage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "artemis/codec.h"
#include "client_int.h"

json_t *cl_json_parse(const char *text, size_t len)
{
	if (text == NULL)
		return NULL;
	return json_loadb(text, len, 0, NULL);
}

static void dec__copy(char *dst, size_t cap, json_t *v)
{
	const char *s = json_is_string(v) ? json_string_value(v) : "";
	size_t n = json_is_string(v) ? json_string_length(v) : 0;

	if (n >= cap)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
	/* a NUL inside a JSON string ends the C string there; harmless */
}

void cl_status_of(json_t *root, cl_status_t *st)
{
	json_t *rs = json_member(root, "responsestatus");

	dec__copy(st->status, sizeof(st->status), json_member(rs, "status"));
	dec__copy(st->code, sizeof(st->code), json_member(rs, "errorcode"));
	dec__copy(st->message, sizeof(st->message), json_member(rs, "message"));
}

bool cl_status_node_down(const cl_status_t *st)
{
	return strcmp(st->status, "fail") == 0 &&
	       (strcmp(st->code, "internal-service-error") == 0 ||
	        strcmp(st->code, "service-unavailable") == 0);
}

bool cl_status_rerunnable(const cl_status_t *st)
{
	return strcmp(st->status, "fail") == 0 &&
	       (strcmp(st->code, "rate-limited") == 0 || strcmp(st->code, "unknown") == 0);
}

int cl_decode_registry(json_t *root, cl_status_t *st, cl_failed_t **failed, size_t *nfailed)
{
	json_t *list, *e;
	size_t i;

	*failed = NULL;
	*nfailed = 0;
	if (!json_is_object(root))
		return ARTEMIS_E_PROTO;
	cl_status_of(root, st);
	if (st->status[0] == '\0')
		return ARTEMIS_E_PROTO;
	list = json_member(root, "failedinstances");
	if (list == NULL || json_is_null(list))
		return 0;
	if (!json_is_array(list))
		return ARTEMIS_E_PROTO;
	*failed = calloc(json_array_size(list) + 1, sizeof(**failed));
	if (*failed == NULL)
		return ARTEMIS_E_NOMEM;
	json_array_foreach(list, i, e)
	{
		cl_failed_t *f = &(*failed)[*nfailed];
		if (!cl_inst_key_of(json_member(e, "instance"), f->key, sizeof(f->key)))
			continue;
		dec__copy(f->code, sizeof(f->code), json_member(e, "errorcode"));
		dec__copy(f->message, sizeof(f->message), json_member(e, "errormessage"));
		(*nfailed)++;
	}
	return 0;
}

static int dec__change_type(json_t *v)
{
	static const char *const names[] = {"new", "delete", "change", "reload"};
	const char *s = json_string_value(v);

	for (int t = 0; s && t < 4; t++)
		if (strcasecmp(s, names[t]) == 0)
			return t;
	return -1;
}

int cl_decode_change(const char *text, size_t len, int *type, char *sid, size_t sid_len,
                     cl_inst_t **inst, int64_t *time)
{
	json_t *root = cl_json_parse(text, len);
	json_t *obj = json_member(root, "instance");
	json_t *id = json_member(obj, "serviceid");
	json_t *t = json_member(root, "changetime");
	int rc = ARTEMIS_E_PROTO;

	*inst = NULL;
	*type = dec__change_type(json_member(root, "changetype"));
	if (*type < 0 || !json_is_string(id) || json_string_length(id) == 0 ||
	    json_string_length(id) >= sid_len ||
	    strlen(json_string_value(id)) != json_string_length(id))
		goto out;
	memcpy(sid, json_string_value(id), json_string_length(id) + 1);
	*time = json_is_integer(t) ? (int64_t)json_integer_value(t) : 0;
	if (*type == ARTEMIS_CHANGE_RELOAD) {
		rc = 0;
		goto out;
	}
	if (cl_inst_from_json(obj, inst, NULL) < 0)
		goto out;
	if ((*inst)->f[ARTEMIS_F_REGION] == NULL || (*inst)->f[ARTEMIS_F_INSTANCE] == NULL ||
	    (*inst)->f[ARTEMIS_F_SERVICE] == NULL) {
		cl_inst_release(*inst);
		*inst = NULL;
		goto out;
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int cl_decode_nodes(json_t *root, void (*fn)(void *arg, const char *url), void *arg)
{
	json_t *nodes = json_member(root, "nodes"), *n;
	size_t i;
	int count = 0;
	char url[CL_URL_MAX];

	if (!json_is_object(root))
		return ARTEMIS_E_PROTO;
	if (nodes == NULL || json_is_null(nodes))
		return 0;
	if (!json_is_array(nodes))
		return ARTEMIS_E_PROTO;
	json_array_foreach(nodes, i, n)
	{
		json_t *u = json_member(n, "url");
		size_t len;
		if (!json_is_string(u) || json_string_length(u) >= sizeof(url))
			continue;
		len = json_string_length(u);
		memcpy(url, json_string_value(u), len + 1);
		while (len > 0 && url[len - 1] == '/')
			url[--len] = '\0';
		if (len == 0 || strlen(url) != len)
			continue;
		fn(arg, url);
		count++;
	}
	return count;
}

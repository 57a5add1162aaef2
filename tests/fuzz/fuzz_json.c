/*
 * fuzz_json.c - libFuzzer target for the API's JSON codec (codec/):
 * arbitrary bytes as a request body, read the way the handlers read it
 * (registry request instances, lookup request discovery configs, a single
 * discovery config, query-like keys), then every decoded instance written
 * back out.  Must never crash, leak or read out of bounds; what it
 * produces must be valid JSON.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "artemis/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_valid_json(const buf_t *b)
{
	json_t *j = json_loadb(b->data, b->len, 0, NULL);

	if (j == NULL)
		abort();
	json_decref(j);
}

static void fuzz_instance(json_t *v)
{
	json_instance_t in;
	const char *field = NULL;
	buf_t b = {0};
	char display[2048];
	shm_key_t key;
	int rc = json_instance_decode(v, &in, &field);

	if (rc == -EINVAL)
		return;
	json_instance_display(&in, display, sizeof(display));
	json_instance_key(&in, &key);
	if (json_instance_encode(&in, &b) == 0)
		check_valid_json(&b);
	buf_free(&b);
}

static void fuzz_config(json_t *c)
{
	shm_str_t s;
	char scratch[64];
	json_t *v = json_member(c, "serviceid");

	if (v != NULL)
		(void)json_to_str(v, &s, scratch, sizeof(scratch));
	(void)json_member(c, "regionid");
	(void)json_member(c, "discoverydata");
}

static bool same_str(shm_str_t a, shm_str_t b)
{
	if (a.ptr == NULL || b.ptr == NULL)
		return a.ptr == b.ptr;
	return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

/* Differential check: whatever the heartbeat fast path accepts, the
 * jansson path must accept with the same fields. */
static void fuzz_fast_path(const uint8_t *data, size_t size)
{
	static json_instance_t fast[64];
	static shm_str_t spans[64];
	json_instance_t slow;
	char err[256];
	json_t *root = NULL, *arr;
	size_t n = 0;

	if (json_fast_instances((const char *)data, size, fast, spans, 64, &n) < 0)
		return;
	if (json_parse_body((const char *)data, size, &root, err, sizeof(err)) < 0 ||
	    !json_is_object(root))
		abort();
	arr = json_member(root, "instances");
	if (!json_is_array(arr) || json_array_size(arr) != n)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (json_instance_decode(json_array_get(arr, i), &slow, NULL) != 0)
			abort();
		if (!same_str(fast[i].region, slow.region) || !same_str(fast[i].zone, slow.zone) ||
		    !same_str(fast[i].group, slow.group) ||
		    !same_str(fast[i].service, slow.service) ||
		    !same_str(fast[i].instance, slow.instance) ||
		    !same_str(fast[i].url, slow.url) || !same_str(fast[i].ip, slow.ip) ||
		    fast[i].port != slow.port)
			abort();
	}
	json_decref(root);
}

/* Differential check of the lookup fast path against jansson. */
static void fuzz_fast_lookup(const uint8_t *data, size_t size)
{
	static json_lookup_t lk;
	char err[256];
	json_t *root = NULL, *arr, *c;
	size_t i, n = 0;

	if (json_fast_lookup((const char *)data, size, &lk) < 0)
		return;
	if (json_parse_body((const char *)data, size, &root, err, sizeof(err)) < 0 ||
	    !json_is_object(root))
		abort();
	if (!same_str(lk.region, json_member_str(root, "regionid")) ||
	    !same_str(lk.zone, json_member_str(root, "zoneid")))
		abort();
	arr = json_member(root, "discoveryconfigs");
	if (!json_is_array(arr) || json_array_size(arr) == 0)
		abort();
	json_array_foreach(arr, i, c)
	{
		if (!json_is_object(c) || n >= lk.n)
			abort();
		if (!same_str(lk.cfg[n].service, json_member_str(c, "serviceid")) ||
		    !same_str(lk.cfg[n].region, json_member_str(c, "regionid")) ||
		    !same_str(lk.cfg[n].zone, json_member_str(c, "zoneid")))
			abort();
		n++;
	}
	if (n != lk.n)
		abort();
	json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	json_t *root = NULL, *arr, *v;
	buf_t b = {0};
	size_t i;

	fuzz_fast_path(data, size);
	fuzz_fast_lookup(data, size);
	if (json_parse_body((const char *)data, size, &root, err, sizeof(err)) < 0)
		return 0;
	arr = json_member(root, "instances");
	json_array_foreach(arr, i, v) fuzz_instance(v);
	arr = json_member(root, "discoveryconfigs");
	json_array_foreach(arr, i, v) fuzz_config(v);
	fuzz_config(json_member(root, "discoveryconfig"));
	if (json_is_object(root))
		fuzz_instance(root);
	if (json_put_value(&b, root) == 0)
		check_valid_json(&b);
	buf_free(&b);
	json_decref(root);
	return 0;
}

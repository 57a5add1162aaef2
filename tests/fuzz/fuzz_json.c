/*
 * fuzz_json.c - libFuzzer target for the API's JSON codec (worker/json.c):
 * arbitrary bytes as a request body, read the way the handlers read it
 * (registry request instances, lookup request discovery configs, a single
 * discovery config, query-like keys), then every decoded instance written
 * back out.  Must never crash, leak or read out of bounds; what it
 * produces must be valid JSON.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../worker/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_valid_json(const shm_buf_t *b)
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
	shm_buf_t b = { 0 };
	char display[2048];
	shm_key_t key;
	int rc = json_instance_decode(v, &in, &field);

	if (rc == -EINVAL)
		return;
	json_instance_display(&in, display, sizeof(display));
	json_instance_key(&in, &key);
	if (json_instance_encode(&in, &b) == 0)
		check_valid_json(&b);
	shm_buf_free(&b);
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	json_t *root = NULL, *arr, *v;
	shm_buf_t b = { 0 };
	size_t i;

	if (json_parse_body((const char *)data, size, &root, err, sizeof(err)) < 0)
		return 0;
	arr = json_member(root, "instances");
	json_array_foreach(arr, i, v)
		fuzz_instance(v);
	arr = json_member(root, "discoveryconfigs");
	json_array_foreach(arr, i, v)
		fuzz_config(v);
	fuzz_config(json_member(root, "discoveryconfig"));
	if (json_is_object(root))
		fuzz_instance(root);
	if (json_put_value(&b, root) == 0)
		check_valid_json(&b);
	shm_buf_free(&b);
	json_decref(root);
	return 0;
}

/*
 * fuzz_mgmt.c - libFuzzer target for the management requests' decoders
 * (worker/api_mgmt_decode.c): arbitrary bytes as a request body, read the
 * way the handlers read it (keys of every kind from the body and from its
 * instanceKey/serverKey/zoneKey, the operation, Java's OperationContext,
 * zone lists of both surfaces), plus the audit time parser on the bytes as
 * text and the /api responseStatus rewrite on the bytes as a response.
 * Must never crash, leak or read out of bounds; every decoded field must be
 * within its bound, and a rewritten response must still be valid JSON when
 * the original was.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../worker/api.h"
#include "../../worker/api_mgmt.h"
#include "artemis/codec.h"
#include "artemis/mgmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_key(const mgmt_key_t *k)
{
	if (strlen(k->region) > MGMT_MAX_REGION || strlen(k->service) > MGMT_MAX_SERVICE ||
	    strlen(k->instance) > MGMT_MAX_INSTANCE || strlen(k->server) > MGMT_MAX_SERVER ||
	    strlen(k->zone) > MGMT_MAX_ZONE || strlen(k->operation) > MGMT_MAX_OPERATION)
		abort();
	const char *field = NULL;
	int rc = mgmt_key_check(k, &field);
	if (rc < 0 && field == NULL)
		abort();
}

static void fuzz_keys(const json_t *body)
{
	static const char *const members[MGMT_KINDS] = {"instancekey", "serverkey", "zonekey"};
	mgmt_key_t k;
	const char *field;

	for (int kind = 0; kind < MGMT_KINDS; kind++) {
		const json_t *objs[2] = {body, json_member(body, members[kind])};
		for (int i = 0; i < 2; i++) {
			field = NULL;
			memset(&k, 0, sizeof(k));
			if (api_mgmt_decode_key(objs[i], (mgmt_kind_t)kind, &k, &field) < 0) {
				if (field == NULL)
					abort();
				continue;
			}
			if (api_mgmt_decode_operation(body, &k, &field) == 0)
				check_key(&k);
		}
	}
}

static void fuzz_ctx(const json_t *body)
{
	api_mgmt_ctx_t c;
	const char *field = NULL;

	if (api_mgmt_decode_ctx(body, "query-operator", &c, &field) < 0) {
		if (field == NULL)
			abort();
		return;
	}
	if (strlen(c.operator_id) > MGMT_MAX_OPERATOR || strlen(c.token) > MGMT_MAX_TOKEN ||
	    strlen(c.reason) > MGMT_MAX_REASON || strlen(c.extensions) > MGMT_MAX_EXTENSIONS ||
	    c.ctx.complete < -1 || c.ctx.complete > 1)
		abort();
}

static void fuzz_zones(const json_t *body)
{
	static mgmt_change_t ch[64];
	size_t n = 0;
	const char *field = NULL;

	for (int insert = 0; insert < 2; insert++) {
		int rc = api_mgmt_decode_zone_list(body, insert ? "us-east" : NULL, "pullout",
		                                   insert, ch, 64, &n, &field);
		if (rc < 0 && field == NULL)
			abort();
		if (n > 64)
			abort();
		for (size_t i = 0; rc == 0 && i < n; i++) {
			if (ch[i].key.kind != MGMT_ZONE || ch[i].insert != insert)
				abort();
			check_key(&ch[i].key);
		}
	}
}

static void fuzz_time(const uint8_t *data, size_t size)
{
	char text[128];
	uint64_t ms;

	if (size >= sizeof(text))
		return;
	memcpy(text, data, size);
	text[size] = '\0';
	if (mgmt_parse_time(text, &ms) == 0) {
		char out[40];
		mgmt_format_time(ms, out, sizeof(out));
	}
}

static void fuzz_rust_status(const uint8_t *data, size_t size)
{
	http_response_t res;
	json_t *before = json_loadb((const char *)data, size, 0, NULL), *after;

	memset(&res, 0, sizeof(res));
	res.status = 200;
	if (buf_append(&res.body, data, size) < 0)
		abort();
	api_rust_shape(&res, false);
	after = json_loadb(res.body.data, res.body.len, 0, NULL);
	if (before != NULL && after == NULL)
		abort();
	json_decref(before);
	json_decref(after);
	buf_free(&res.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *body = NULL;
	char err[256];

	fuzz_time(data, size);
	fuzz_rust_status(data, size);
	if (json_parse_body((const char *)data, size, &body, err, sizeof(err)) < 0)
		return 0;
	if (json_is_object(body)) {
		fuzz_keys(body);
		fuzz_ctx(body);
		fuzz_zones(body);
		(void)api_mgmt_decode_bool(json_member(body, "operationcomplete"));
	}
	json_decref(body);
	return 0;
}

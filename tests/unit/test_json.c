/*
 * test_json.c - the API's JSON codec (codec/): lenient key
 * matching, Jackson-like coercions, Spring-shaped output (sorted keys,
 * nulls included), url derivation, field limits and malformed input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artemis/codec.h"

static json_t *load(const char *s)
{
	char err[256];
	json_t *j = NULL;

	assert_int_equal(json_parse_body(s, strlen(s), &j, err, sizeof(err)), 0);
	return j;
}

static char *encode(const json_instance_t *in)
{
	buf_t b = {0};

	assert_int_equal(json_instance_encode(in, &b), 0);
	assert_int_equal(buf_append(&b, "", 1), 0);
	return b.data;
}

static void test_key_matching(void **state)
{
	json_t *j = load("{\"ServiceID\":\"a\",\"service_id\":\"b\",\"zone_Id\":\"z\"}");

	(void)state;
	/* Case and underscores ignored; the last duplicate wins (Jackson). */
	assert_string_equal(json_string_value(json_member(j, "serviceid")), "b");
	assert_string_equal(json_string_value(json_member(j, "zoneid")), "z");
	assert_null(json_member(j, "regionid"));
	assert_null(json_member(NULL, "x"));
	json_decref(j);
}

static void test_decode_encode_sorted_nulls(void **state)
{
	json_t *j =
	    load("{\"region_id\":\"us-east\",\"ZONEID\":\"zone-1\",\"serviceId\":\"MySvc\","
	         "\"instanceId\":\"i1\",\"ip\":\"1.2.3.4\",\"port\":\"8080\",\"unknown\":[1],"
	         "\"metadata\":{\"b\":\"2\",\"a\":1,\"n\":null,\"t\":true},\"status\":\"up\"}");
	json_instance_t in;
	const char *field = NULL;
	char *out;

	(void)state;
	assert_int_equal(json_instance_decode(j, &in, &field), 0);
	assert_int_equal(in.port, 8080);
	out = encode(&in);
	assert_string_equal(
	    out,
	    "{\"groupId\":null,\"healthCheckUrl\":null,\"instanceId\":\"i1\",\"ip\":\"1.2.3.4\","
	    "\"machineName\":null,\"metadata\":{\"b\":\"2\",\"a\":\"1\",\"n\":null,\"t\":\"true\"},"
	    "\"port\":8080,\"protocol\":null,\"regionId\":\"us-east\",\"serviceId\":\"MySvc\","
	    "\"status\":\"up\",\"url\":\"http://1.2.3.4:8080\",\"zoneId\":\"zone-1\"}");
	free(out);
	json_decref(j);
}

static void test_url_derivation(void **state)
{
	json_instance_t in;
	json_t *j;
	char *out;

	(void)state;
	/* Present url wins. */
	j = load("{\"ip\":\"h\",\"port\":1,\"url\":\"http://x\"}");
	assert_int_equal(json_instance_decode(j, &in, NULL), 0);
	assert_int_equal(in.url.len, 8);
	json_decref(j);
	/* Blank url with ip and port: derived. */
	j = load("{\"ip\":\"h\",\"port\":1,\"url\":\"  \"}");
	assert_int_equal(json_instance_decode(j, &in, NULL), 0);
	assert_memory_equal(in.url.ptr, "http://h:1", 10);
	json_decref(j);
	/* No port: nothing to derive, url stays null. */
	j = load("{\"ip\":\"h\"}");
	assert_int_equal(json_instance_decode(j, &in, NULL), 0);
	assert_null(in.url.ptr);
	out = encode(&in);
	assert_non_null(strstr(out, "\"url\":null"));
	assert_non_null(strstr(out, "\"port\":0"));
	free(out);
	json_decref(j);
}

static void test_coercion_and_shape(void **state)
{
	json_instance_t in;
	const char *field;
	json_t *j;

	(void)state;
	j = load("{\"serviceId\":123,\"instanceId\":true,\"port\":80.9,\"status\":null}");
	assert_int_equal(json_instance_decode(j, &in, &field), 0);
	assert_memory_equal(in.service.ptr, "123", 3);
	assert_memory_equal(in.instance.ptr, "true", 4);
	assert_int_equal(in.port, 80);
	assert_null(in.status.ptr);
	json_decref(j);

	j = load("{\"serviceId\":{}}");
	assert_int_equal(json_instance_decode(j, &in, &field), -EINVAL);
	assert_string_equal(field, "serviceId");
	json_decref(j);
	j = load("{\"port\":\"eighty\"}");
	assert_int_equal(json_instance_decode(j, &in, &field), -EINVAL);
	json_decref(j);
	j = load("{\"port\":99999999999}");
	assert_int_equal(json_instance_decode(j, &in, &field), -EINVAL);
	json_decref(j);
	j = load("{\"metadata\":\"x\"}");
	assert_int_equal(json_instance_decode(j, &in, &field), -EINVAL);
	json_decref(j);
	j = load("{\"metadata\":{\"k\":{\"nested\":1}}}");
	assert_int_equal(json_instance_decode(j, &in, &field), -EINVAL);
	json_decref(j);
	j = load("[]");
	assert_int_equal(json_instance_decode(j, &in, &field), -EINVAL);
	json_decref(j);
}

static void test_limits(void **state)
{
	char *body = malloc(20000);
	json_instance_t in;
	const char *field;
	json_t *j;
	size_t n;

	(void)state;
	/* serviceId at the limit passes, one more byte is rejected. */
	n = (size_t)snprintf(body, 20000, "{\"serviceId\":\"");
	memset(body + n, 's', SHM_MAX_SERVICE);
	snprintf(body + n + SHM_MAX_SERVICE, 100, "\"}");
	j = load(body);
	assert_int_equal(json_instance_decode(j, &in, &field), 0);
	json_decref(j);
	snprintf(body + n + SHM_MAX_SERVICE, 100, "s\"}");
	j = load(body);
	assert_int_equal(json_instance_decode(j, &in, &field), -ENAMETOOLONG);
	assert_string_equal(field, "serviceId");
	json_decref(j);

	/* Metadata over 8 KiB of JSON text. */
	n = (size_t)snprintf(body, 20000, "{\"metadata\":{\"k\":\"");
	memset(body + n, 'v', SHM_MAX_METADATA);
	snprintf(body + n + SHM_MAX_METADATA, 100, "\"}}");
	j = load(body);
	assert_int_equal(json_instance_decode(j, &in, &field), -ENAMETOOLONG);
	assert_string_equal(field, "metadata");
	json_decref(j);
	free(body);
}

static void test_display_and_legacy(void **state)
{
	json_instance_t in;
	json_t *j;
	char buf[256];

	(void)state;
	j = load(
	    "{\"regionId\":\"US\",\"serviceId\":\"Svc\",\"groupId\":\"G\",\"instanceId\":\"I\","
	    "\"metadata\":{\"java_registry\":\"x\"}}");
	assert_int_equal(json_instance_decode(j, &in, NULL), 0);
	json_instance_display(&in, buf, sizeof(buf));
	assert_string_equal(buf, "us/null/svc/g/i");
	assert_true(in.legacy);
	json_decref(j);
	j = load("{\"metadata\":{\"java_registry\":\"  \"}}");
	assert_int_equal(json_instance_decode(j, &in, NULL), 0);
	assert_false(in.legacy);
	json_decref(j);
}

static void test_malformed_and_escapes(void **state)
{
	char err[256];
	json_t *j = NULL;
	buf_t b = {0};

	(void)state;
	assert_int_equal(json_parse_body("{\"a\":", 5, &j, err, sizeof(err)), -EINVAL);
	assert_int_equal(json_parse_body("", 0, &j, err, sizeof(err)), -EINVAL);
	assert_int_equal(json_parse_body("  \n", 3, &j, err, sizeof(err)), -EINVAL);
	assert_int_equal(json_parse_body("{\"a\":\"\xff\"}", 9, &j, err, sizeof(err)), -EINVAL);
	assert_int_equal(json_put_str(&b, "a\"b\\c\n\x01/é", strlen("a\"b\\c\n\x01/é")), 0);
	buf_append(&b, "", 1);
	assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001/é\"");
	buf_free(&b);
	assert_int_equal(json_put_status(&b, "success", "success", ""), 0);
	buf_append(&b, "", 1);
	assert_string_equal(b.data,
	                    "{\"errorCode\":\"success\",\"message\":\"\",\"status\":\"success\"}");
	buf_free(&b);
}

static int fast(const char *body, json_instance_t *in, size_t *n)
{
	static shm_str_t spans[8];

	return json_fast_instances(body, strlen(body), in, spans, 8, n);
}

static void test_heartbeat_fast_path(void **state)
{
	json_instance_t in[8];
	size_t n = 0;

	(void)state;
	assert_int_equal(
	    fast(" {\"INSTANCES\" : [ {\"region_id\":\"us\",\"serviceId\":\"S\","
	         "\"instanceId\":\"i\",\"ip\":\"h\",\"port\":81,\"metadata\":{\"a\":\"b\"},"
	         "\"x\":[1,2.5e3,{\"y\":null}]}, {\"serviceId\":null}], \"z\":true } ",
	         in, &n),
	    0);
	assert_int_equal(n, 2);
	assert_memory_equal(in[0].region.ptr, "us", 2);
	assert_int_equal(in[0].port, 81);
	assert_memory_equal(in[0].url.ptr, "http://h:81", 11);
	assert_null(in[1].service.ptr);
	/* Everything unusual goes to the jansson path. */
	assert_int_equal(fast("{\"instances\":[]}", in, &n), -EAGAIN);
	assert_int_equal(fast("{\"instances\":[null]}", in, &n), -EAGAIN);
	assert_int_equal(fast("{\"instances\":[{\"serviceId\":\"a\\u0041\"}]}", in, &n), -EAGAIN);
	assert_int_equal(fast("{\"instances\":[{\"serviceId\":\"\xc3\xa9\"}]}", in, &n), -EAGAIN);
	assert_int_equal(fast("{\"instances\":[{\"serviceId\":1}]}", in, &n), -EAGAIN);
	assert_int_equal(fast("{\"instances\":[{\"port\":\"80\"}]}", in, &n), -EAGAIN);
	assert_int_equal(fast("{\"instances\":[{\"port\":8.5}]}", in, &n), -EAGAIN);
	assert_int_equal(
	    fast("{\"instances\":[{\"serviceId\":\"a\",\"service_id\":\"b\"}]}", in, &n), -EAGAIN);
	assert_int_equal(fast("{\"instances\":[{}],\"instances\":[{}]}", in, &n), -EAGAIN);
	assert_int_equal(fast("{\"instances\":[{\"metadata\":{\"a\":1}}]}", in, &n), -EAGAIN);
	assert_int_equal(fast("{\"instances\":[{}]} x", in, &n), -EAGAIN);
	assert_int_equal(fast("{\"instances\":[{}],\"n\":1234567890123456789}", in, &n), -EAGAIN);
	/* A double overflow jansson refuses (found by fuzz_json); 9e99 is fine. */
	assert_int_equal(fast("{\"instances\":[{\"x\":8e7010}]}", in, &n), -EAGAIN);
	assert_int_equal(fast("{\"instances\":[{\"x\":9e99}]}", in, &n), 0);
	assert_int_equal(fast("{\"instances\":[{}]", in, &n), -EAGAIN);
	assert_int_equal(fast("[]", in, &n), -EAGAIN);
	assert_int_equal(fast("{\"instances\":[{},{},{},{},{},{},{},{},{}]}", in, &n), -EAGAIN);
}

static void test_lookup_fast_path(void **state)
{
	static json_lookup_t lk;
	const char *ok =
	    "{\"regionId\":\"us\",\"zone_id\":null,\"discoveryConfigs\":[{\"serviceId\":"
	    "\"A\",\"discoveryData\":{\"appid\":\"1\"}},{\"service_id\":\"b\",\"regionId\":\"r\"},{"
	    "}]}";

	(void)state;
	assert_int_equal(json_fast_lookup(ok, strlen(ok), &lk), 0);
	assert_int_equal(lk.n, 3);
	assert_memory_equal(lk.region.ptr, "us", 2);
	assert_null(lk.zone.ptr);
	assert_memory_equal(lk.cfg[0].service.ptr, "A", 1);
	assert_memory_equal(lk.cfg[1].region.ptr, "r", 1);
	assert_null(lk.cfg[2].service.ptr);
#define NOFAST(b) assert_int_equal(json_fast_lookup(b, strlen(b), &lk), -EAGAIN)
	NOFAST("{\"regionId\":\"us\"}");
	NOFAST("{\"discoveryConfigs\":[]}");
	NOFAST("{\"discoveryConfigs\":[null]}");
	NOFAST("{\"discoveryConfigs\":[{\"serviceId\":1}]}");
	NOFAST("{\"regionId\":1,\"discoveryConfigs\":[{}]}");
	NOFAST("{\"regionId\":\"a\",\"region_id\":\"b\",\"discoveryConfigs\":[{}]}");
	NOFAST("{\"discoveryConfigs\":[{\"serviceId\":\"a\",\"ServiceId\":\"b\"}]}");
	NOFAST("{\"r_e_g_i_o_n_i_d______________________\":\"x\",\"discoveryConfigs\":[{}]}");
#undef NOFAST
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_key_matching),
	    cmocka_unit_test(test_decode_encode_sorted_nulls),
	    cmocka_unit_test(test_url_derivation),
	    cmocka_unit_test(test_coercion_and_shape),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_display_and_legacy),
	    cmocka_unit_test(test_malformed_and_escapes),
	    cmocka_unit_test(test_heartbeat_fast_path),
	    cmocka_unit_test(test_lookup_fast_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

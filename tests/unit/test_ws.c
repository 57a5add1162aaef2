/*
 * test_ws.c - unit tests of the WebSocket codec (worker/ws_frame.c) and of
 * the heartbeat response cap (worker/ws_heartbeat.c ws_heartbeat_fit):
 * RFC 6455 examples, every close code the parser produces, UTF-8 edge
 * cases, header encoding at the length boundaries, and the 8 KB fitting
 * rule (data-not-found entries first, whole entries only).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "../../worker/ws_frame.h"
#include "../../worker/ws_int.h"

typedef struct {
	char text[4096];
	size_t text_len;
	int ntext;
	int op[8];
	char ctl[8][128];
	size_t ctl_len[8];
	int nctl;
} events_t;

static int on_text(void *ctx, char *msg, size_t len)
{
	events_t *e = ctx;

	assert_true(len < sizeof(e->text));
	memcpy(e->text, msg, len + 1);
	e->text_len = len;
	e->ntext++;
	return 0;
}

static int on_control(void *ctx, enum ws_opcode op, const uint8_t *p, size_t len)
{
	events_t *e = ctx;

	assert_true(e->nctl < 8);
	e->op[e->nctl] = op;
	memcpy(e->ctl[e->nctl], p, len);
	e->ctl_len[e->nctl++] = len;
	return 0;
}

static const ws_parser_cb_t cb = {on_text, on_control};

/* Feed a hex-free byte string (copied: the parser unmasks in place). */
static int feed(ws_parser_t *p, events_t *e, const void *bytes, size_t n)
{
	uint8_t buf[1024];

	assert_true(n <= sizeof(buf));
	memcpy(buf, bytes, n);
	return ws_parser_feed(p, buf, n, &cb, e);
}

/* A masked client frame. */
static size_t mk(uint8_t *out, int b0, const char *payload, size_t n)
{
	static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
	size_t o = 0;

	out[o++] = (uint8_t)b0;
	if (n < 126) {
		out[o++] = (uint8_t)(0x80 | n);
	} else {
		out[o++] = 0x80 | 126;
		out[o++] = (uint8_t)(n >> 8);
		out[o++] = (uint8_t)n;
	}
	memcpy(out + o, key, 4);
	o += 4;
	for (size_t i = 0; i < n; i++)
		out[o + i] = (uint8_t)(payload[i] ^ key[i & 3]);
	return o + n;
}

static void test_rfc_masked_hello(void **state)
{
	/* RFC 6455 §5.7: a single-frame masked text message "Hello". */
	static const uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
	                                0x7f, 0x9f, 0x4d, 0x51, 0x58};
	ws_parser_t p;
	events_t e = {0};

	(void)state;
	ws_parser_init(&p, 1024);
	assert_int_equal(feed(&p, &e, hello, sizeof(hello)), 0);
	assert_int_equal(e.ntext, 1);
	assert_string_equal(e.text, "Hello");
	ws_parser_release(&p);
}

static void test_rfc_unmasked_is_1002(void **state)
{
	static const uint8_t hello[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
	ws_parser_t p;
	events_t e = {0};

	(void)state;
	ws_parser_init(&p, 1024);
	assert_int_equal(feed(&p, &e, hello, sizeof(hello)), WS_CLOSE_PROTOCOL);
	assert_int_equal(p.error, WS_CLOSE_PROTOCOL);
	/* further input is ignored */
	assert_int_equal(feed(&p, &e, hello, sizeof(hello)), WS_CLOSE_PROTOCOL);
	assert_int_equal(e.ntext, 0);
	ws_parser_release(&p);
}

static void test_fragments_and_interleaved_ping(void **state)
{
	uint8_t buf[256];
	size_t n = 0;
	ws_parser_t p;
	events_t e = {0};

	(void)state;
	n += mk(buf + n, 0x01, "Hel", 3);
	n += mk(buf + n, 0x89, "ping", 4);
	n += mk(buf + n, 0x00, "l", 1);
	n += mk(buf + n, 0x80, "o", 1);
	ws_parser_init(&p, 1024);
	/* byte by byte: read boundaries do not matter */
	for (size_t i = 0; i < n; i++)
		assert_int_equal(feed(&p, &e, buf + i, 1), 0);
	assert_int_equal(e.ntext, 1);
	assert_string_equal(e.text, "Hello");
	assert_int_equal(e.nctl, 1);
	assert_int_equal(e.op[0], WS_OP_PING);
	assert_memory_equal(e.ctl[0], "ping", 4);
	ws_parser_release(&p);
}

static int expect_error(const uint8_t *bytes, size_t n, uint32_t max)
{
	ws_parser_t p;
	events_t e = {0};
	int rc;

	ws_parser_init(&p, max);
	rc = feed(&p, &e, bytes, n);
	ws_parser_release(&p);
	return rc;
}

static void test_close_codes(void **state)
{
	uint8_t buf[512];
	char big[300];

	(void)state;
	memset(big, 'x', sizeof(big));
	assert_int_equal(expect_error(buf, mk(buf, 0x82, "\x01", 1), 1024), WS_CLOSE_UNACCEPTABLE);
	assert_int_equal(expect_error(buf, mk(buf, 0x81, "\xc3\x28", 2), 1024), WS_CLOSE_BAD_DATA);
	assert_int_equal(expect_error(buf, mk(buf, 0x81, big, 200), 199), WS_CLOSE_TOO_BIG);
	assert_int_equal(expect_error(buf, mk(buf, 0x81, big, 200), 200), 0);
	assert_int_equal(expect_error(buf, mk(buf, 0xC1, "x", 1), 1024),
	                 WS_CLOSE_PROTOCOL); /* RSV1 */
	assert_int_equal(expect_error(buf, mk(buf, 0x80, "x", 1), 1024),
	                 WS_CLOSE_PROTOCOL); /* lone cont */
	assert_int_equal(expect_error(buf, mk(buf, 0x83, "x", 1), 1024),
	                 WS_CLOSE_PROTOCOL); /* opcode 3 */
	assert_int_equal(expect_error(buf, mk(buf, 0x09, "x", 1), 1024),
	                 WS_CLOSE_PROTOCOL); /* frag ping */
	assert_int_equal(expect_error(buf, mk(buf, 0x89, big, 126), 1024), WS_CLOSE_PROTOCOL);
	assert_int_equal(expect_error(buf, mk(buf, 0x88, "\x03", 1), 1024), WS_CLOSE_PROTOCOL);
	assert_int_equal(expect_error(buf, mk(buf, 0x88, "\x03\xed", 2), 1024), WS_CLOSE_PROTOCOL);
	assert_int_equal(expect_error(buf, mk(buf, 0x88, "\x03\xe8\xff", 3), 1024),
	                 WS_CLOSE_BAD_DATA);
	assert_int_equal(expect_error(buf, mk(buf, 0x88, "\x03\xe8ok", 4), 1024), 0);
	/* a text frame while a fragmented message is open */
	size_t n = mk(buf, 0x01, "a", 1);
	n += mk(buf + n, 0x81, "b", 1);
	assert_int_equal(expect_error(buf, n, 1024), WS_CLOSE_PROTOCOL);
	/* the size limit counts the whole message, not one fragment */
	n = mk(buf, 0x01, big, 150);
	n += mk(buf + n, 0x80, big, 150);
	assert_int_equal(expect_error(buf, n, 299), WS_CLOSE_TOO_BIG);
	/* a 64-bit length with the top bit set */
	static const uint8_t huge[] = {0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
	assert_int_equal(expect_error(huge, sizeof(huge), 1024), WS_CLOSE_PROTOCOL);
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(ws_utf8_valid((const uint8_t *)"", 0));
	assert_true(ws_utf8_valid((const uint8_t *)"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 12));
	assert_false(ws_utf8_valid((const uint8_t *)"\xc0\xaf", 2));         /* overlong */
	assert_false(ws_utf8_valid((const uint8_t *)"\xe0\x80\xaf", 3));     /* overlong */
	assert_false(ws_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));     /* surrogate */
	assert_false(ws_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(ws_utf8_valid((const uint8_t *)"\xe2\x82", 2));         /* truncated */
	assert_false(ws_utf8_valid((const uint8_t *)"\x80", 1));
	assert_true(ws_utf8_valid((const uint8_t *)"\xf4\x8f\xbf\xbf", 4));
}

static void test_frame_header(void **state)
{
	uint8_t h[WS_FRAME_HDR_MAX];

	(void)state;
	assert_int_equal(ws_frame_header(h, WS_OP_TEXT, 125), 2);
	assert_int_equal(h[0], 0x81);
	assert_int_equal(h[1], 125);
	assert_int_equal(ws_frame_header(h, WS_OP_TEXT, 126), 4);
	assert_int_equal(h[1], 126);
	assert_int_equal(h[2] << 8 | h[3], 126);
	assert_int_equal(ws_frame_header(h, WS_OP_PONG, 65535), 4);
	assert_int_equal(h[0], 0x8A);
	assert_int_equal(ws_frame_header(h, WS_OP_TEXT, 65536), 10);
	assert_int_equal(h[1], 127);
	assert_int_equal(h[7], 1);
	assert_int_equal(h[8], 0);
	assert_int_equal(h[9], 0);
}

/* A heartbeat response with n data-not-found and m no-permission entries
 * (no-permission listed first). */
static void make_response(buf_t *b, int nf, int np)
{
	char entry[512];

	b->len = 0;
	buf_append(b, "{\"failedInstances\":[", 20);
	for (int i = 0; i < np + nf; i++) {
		int len =
		    snprintf(entry, sizeof(entry),
		             "%s{\"errorCode\":\"%s\",\"errorMessage\":\"m\",\"instance\":"
		             "{\"instanceId\":\"%s%d\",\"serviceId\":\"svc\",\"url\":\"http://"
		             "x/%0100d\"}}",
		             i ? "," : "", i < np ? "no-permission" : "data-not-found",
		             i < np ? "np" : "nf", i, 0);
		buf_append(b, entry, (size_t)len);
	}
	const char *tail = "],\"responseStatus\":{\"errorCode\":\"partial_fail\",\"message\":\"\","
	                   "\"status\":\"partial_fail\"}}";
	buf_append(b, tail, strlen(tail));
}

static void test_heartbeat_fit(void **state)
{
	buf_t b = {0};
	json_t *root, *arr, *v;
	size_t i, seen_np = 0;

	(void)state;
	make_response(&b, 2, 1);
	size_t small = b.len;
	assert_int_equal(ws_heartbeat_fit(&b, WS_CLIENT_MESSAGE_MAX), 0);
	assert_int_equal(b.len, small); /* small enough: untouched */

	make_response(&b, 60, 40);
	assert_true(b.len > WS_CLIENT_MESSAGE_MAX);
	assert_int_equal(ws_heartbeat_fit(&b, WS_CLIENT_MESSAGE_MAX), 0);
	assert_true(b.len <= WS_CLIENT_MESSAGE_MAX);
	root = json_loadb(b.data, b.len, 0, NULL);
	assert_non_null(root);
	arr = json_object_get(root, "failedInstances");
	assert_true(json_array_size(arr) > 10);
	json_array_foreach(arr, i, v)
	{
		const char *code = json_string_value(json_object_get(v, "errorCode"));
		if (strcmp(code, "no-permission") == 0)
			seen_np++;
		else
			assert_int_equal(seen_np, 0); /* data-not-found first */
	}
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(root, "responseStatus"), "status")),
	    "partial_fail");
	json_decref(root);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc_masked_hello),
	    cmocka_unit_test(test_rfc_unmasked_is_1002),
	    cmocka_unit_test(test_fragments_and_interleaved_ping),
	    cmocka_unit_test(test_close_codes),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_frame_header),
	    cmocka_unit_test(test_heartbeat_fit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

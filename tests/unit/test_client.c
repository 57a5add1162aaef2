/*
 * test_client.c - unit tests of libartemis-client (client/), without a
 * node:
 *   - the public API's argument checks (NULL, blank, over-long: an error
 *     code, never a crash), instances, options;
 *   - the decoders: HTTP responses (whole, split, chunked, close-delimited,
 *     over the limit, garbage), WebSocket frames (fragments, controls, what
 *     a server must not send), registry answers, pushes, node lists;
 *   - service snapshots and the choice: weighted round robin 70/30 over
 *     10,000 picks, weight clamps, members by instanceIds and by group-key
 *     prefix, empty groups and rules dropped, the default rule,
 *     close-by-visit (zone, region, any), down instances skipped, canary;
 *     pushes applied to snapshots;
 *   - against fake nodes in a thread of this process: garbage, a close in
 *     the middle of a response, a stall, HTTP 503: each call ends with an
 *     error within its deadline, fails over to the next node, and the
 *     client stays usable.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "artemis/clock.h"
#include "client_int.h"

/* ---- helpers ------------------------------------------------------------------ */

static char *long_string(size_t n)
{
	char *s = malloc(n + 1);
	assert_non_null(s);
	memset(s, 'x', n);
	s[n] = '\0';
	return s;
}

static cl_svc_t *svc_of(const char *json, const char *region, const char *zone)
{
	json_t *root = json_loads(json, 0, NULL);
	cl_svc_t *s = NULL;
	cl_err_t err = {0};

	assert_non_null(root);
	int rc = cl_svc_from_json(root, region, zone, &s, &err);
	json_decref(root);
	if (rc != 0)
		fail_msg("cl_svc_from_json: %d %s", rc, err.message);
	return s;
}

static const char *pick_id(cl_svc_t *s, const char *route)
{
	const artemis_instance_t *i;
	assert_int_equal(artemis_service_choose(s, route, &i), 0);
	return artemis_instance_get(i, ARTEMIS_F_INSTANCE);
}

/* ---- the public API with bad arguments ------------------------------------------ */

static void test_null_and_long_arguments(void **state)
{
	artemis_error_t err;
	artemis_instance_t *i = NULL;
	artemis_options_t *o = artemis_options_new();
	char *big = long_string(100000);
	const artemis_instance_t *ci;
	artemis_service_t **list;
	size_t n;
	uint64_t id;
	artemis_response_t *r;

	(void)state;
	assert_int_equal(artemis_instance_new(NULL, "i", "http://x", &i), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_instance_new("s", NULL, "http://x", &i), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_instance_new("s", "i", "http://x", NULL), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_instance_new(big, "i", "http://x", &i), ARTEMIS_E_INVAL);
	assert_null(i);
	assert_int_equal(artemis_instance_set(NULL, ARTEMIS_F_IP, "1"), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_instance_set_port(NULL, 1), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_instance_set_meta(NULL, "k", "v"), ARTEMIS_E_INVAL);
	assert_null(artemis_instance_get(NULL, ARTEMIS_F_URL));
	assert_null(artemis_instance_to_json(NULL));
	assert_int_equal(artemis_instance_copy(NULL, &i), ARTEMIS_E_INVAL);
	artemis_instance_free(NULL);

	assert_int_equal(artemis_options_add_url(NULL, "http://a:1"), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_options_add_url(o, NULL), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_options_add_url(o, big), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_options_set_str(o, ARTEMIS_OPT_REGION, big), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_options_set_str(o, ARTEMIS_OPT_TOKEN, "a b"), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_options_set_str(o, ARTEMIS_OPT_TOKEN, "a\r\nX: y"),
	                 ARTEMIS_E_INVAL);
	assert_int_equal(artemis_options_set_str(o, 9999, "x"), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_options_set_int(o, ARTEMIS_OPT_REQUEST_TIMEOUT_MS, 0),
	                 ARTEMIS_E_INVAL);
	assert_int_equal(artemis_options_set_int(o, ARTEMIS_OPT_WEBSOCKET, 2), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_options_set_int(o, 9999, 1), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_options_set_event_base(NULL, NULL), ARTEMIS_E_INVAL);

	artemis_client_t *c = NULL;
	assert_int_equal(artemis_client_new(NULL, &c, &err), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_client_new(o, &c, &err), ARTEMIS_E_INVAL); /* no URL */
	assert_string_equal(err.message, "no node URL given");
	assert_int_equal(artemis_client_new(o, NULL, NULL), ARTEMIS_E_INVAL);
	artemis_client_free(NULL);

	assert_int_equal(artemis_options_add_url(o, "http://127.0.0.1:1"), 0);
	assert_int_equal(artemis_client_new(o, &c, &err), 0);
	assert_int_equal(artemis_register(c, NULL, &err), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_register(NULL, NULL, NULL), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_register_many(c, NULL, 1, &err), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_unregister(c, NULL, &err), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_registry_send(c, 7, NULL, &err), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_discover(c, NULL, NULL, &err), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_discover(c, big, NULL, &err), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_discover(c, "", NULL, &err), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_lookup(c, "a\nb", NULL, &err), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_services(c, &list, NULL, &err), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_choose(c, "s", big, NULL, &err), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_subscribe(c, "s", NULL, NULL, &id, &err), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_unsubscribe(c, 0), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_unsubscribe(c, 42), ARTEMIS_E_NOTFOUND);
	assert_int_equal(artemis_call(c, "get", "/x", NULL, NULL, &r, &err), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_call(c, "GET", "x", NULL, NULL, &r, &err), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_call(c, "GET", "/a b", NULL, NULL, &r, &err), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_call(c, "GET", big, NULL, NULL, &r, &err), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_call(c, "GET", "/x", NULL, "t\r\nX: 1", &r, &err),
	                 ARTEMIS_E_INVAL);
	assert_int_equal(artemis_service_choose(NULL, NULL, &ci), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_service_choose(NULL, NULL, NULL), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_client_node(c, NULL, 0), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_client_stat(c, 1000), 0);
	assert_int_equal(artemis_client_stat(NULL, ARTEMIS_STAT_PUSHES), 0);
	assert_null(artemis_service_id(NULL));
	assert_int_equal(artemis_service_size(NULL), 0);
	assert_null(artemis_service_instance(NULL, 0));
	assert_null(artemis_service_json(NULL));
	assert_null(artemis_response_body(NULL, &n));
	assert_int_equal(n, 0);
	assert_null(artemis_change_json(NULL));
	artemis_service_release(NULL);
	artemis_response_free(NULL);
	artemis_service_list_free(NULL, 3);
	assert_string_equal(artemis_strerror(ARTEMIS_E_TIMEOUT), "timed out");
	assert_string_equal(artemis_strerror(12345), "unknown error");
	artemis_client_free(c);
	artemis_options_free(o);
	free(big);
}

static void test_options(void **state)
{
	artemis_options_t *o = artemis_options_new();
	artemis_client_t *c;
	artemis_error_t err;

	(void)state;
	assert_int_equal(artemis_options_add_url(o, "https://a:1"), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_options_add_url(o, "ftp://a:1"), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_options_add_url(o, "http://:1"), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_options_add_url(o, "http://a:0"), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_options_add_url(o, "http://a:70000"), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_options_add_url(o, "http://a:1?x=1"), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_options_add_url(o, "http://u@a:1"), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_options_add_url(o, "http://[::1:1"), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_options_add_url(o, "http://a:1, http://b:2/ctx/ ,http://a:1"), 0);
	assert_int_equal(o->nurls, 2);
	assert_string_equal(o->urls[1], "http://b:2/ctx");
	assert_int_equal(artemis_options_set_int(o, ARTEMIS_OPT_LEASE_TTL_MS, 9000), 0);
	assert_int_equal(artemis_options_set_int(o, ARTEMIS_OPT_HEARTBEAT_INTERVAL_MS, 3000), 0);
	assert_int_equal(artemis_client_new(o, &c, &err), ARTEMIS_E_INVAL); /* >= ttl/3 */
	assert_int_equal(artemis_options_set_int(o, ARTEMIS_OPT_HEARTBEAT_INTERVAL_MS, 2999), 0);
	assert_int_equal(artemis_client_new(o, &c, &err), 0);
	assert_int_equal(c->conf.heartbeat_interval_ms, 2999);
	artemis_client_free(c);
	assert_int_equal(artemis_options_set_int(o, ARTEMIS_OPT_HEARTBEAT_INTERVAL_MS, 0), 0);
	assert_int_equal(artemis_client_new(o, &c, &err), 0);
	assert_int_equal(c->conf.heartbeat_interval_ms, 2250); /* ttl/4 */
	artemis_client_free(c);
	artemis_options_free(o);
}

/* The keep-alive interval from a lease TTL, and the TTL of a config.json. */
static void test_lease_interval(void **state)
{
	static const struct {
		const char *json;
		int rc;
		uint32_t ttl;
	} answers[] = {
	    {"{\"properties\":{\"registry.lease_ttl_ms\":\"3000\"}}", 0, 3000},
	    {"{\"properties\":{\"registry.lease_ttl_ms\":2000}}", 0, 2000},
	    {"{\"Properties\":{\"Registry.LeaseTtlMs\":\"604800000\"}}", 0, 604800000},
	    {"{\"properties\":{\"registry.lease_ttl_ms\":\"999\"}}", ARTEMIS_E_PROTO, 0},
	    {"{\"properties\":{\"registry.lease_ttl_ms\":\"604800001\"}}", ARTEMIS_E_PROTO, 0},
	    {"{\"properties\":{\"registry.lease_ttl_ms\":\"3000ms\"}}", ARTEMIS_E_PROTO, 0},
	    {"{\"properties\":{\"registry.lease_ttl_ms\":\"-3000\"}}", ARTEMIS_E_PROTO, 0},
	    {"{\"properties\":{\"registry.lease_ttl_ms\":-3000}}", ARTEMIS_E_PROTO, 0},
	    {"{\"properties\":{\"registry.lease_ttl_ms\":\"99999999999999999999\"}}",
	     ARTEMIS_E_PROTO, 0},
	    {"{\"properties\":{\"registry.lease_ttl_ms\":3000.5}}", ARTEMIS_E_PROTO, 0},
	    {"{\"properties\":{\"registry.lease_ttl_ms\":null}}", ARTEMIS_E_PROTO, 0},
	    {"{\"properties\":{}}", ARTEMIS_E_PROTO, 0},
	    {"{\"properties\":[1]}", ARTEMIS_E_PROTO, 0},
	    {"[]", ARTEMIS_E_PROTO, 0},
	};

	(void)state;
	assert_int_equal(cl_lease_interval(20000, 0), 5000);
	assert_int_equal(cl_lease_interval(3000, 0), 750);
	assert_int_equal(cl_lease_interval(1000, 0), 250);
	assert_int_equal(cl_lease_interval(20000, 2000), 2000); /* the application's */
	assert_int_equal(cl_lease_interval(3000, 999), 999);
	assert_int_equal(cl_lease_interval(3000, 1000), 750); /* not below TTL/3: TTL/4 */
	assert_int_equal(cl_lease_interval(3000, 5000), 750);
	assert_int_equal(cl_lease_interval(300, 0), 100); /* never below 100 ms */
	for (size_t k = 0; k < sizeof(answers) / sizeof(answers[0]); k++) {
		json_t *root = cl_json_parse(answers[k].json, strlen(answers[k].json));
		uint32_t ttl = 0;
		assert_non_null(root);
		assert_int_equal(cl_decode_lease_ttl(root, &ttl), answers[k].rc);
		assert_int_equal(ttl, answers[k].ttl);
		json_decref(root);
	}
	assert_int_equal(cl_decode_lease_ttl(NULL, &(uint32_t){0}), ARTEMIS_E_PROTO);

	/* an explicit TTL is the application's: never learnt from a node */
	artemis_options_t *o = artemis_options_new();
	assert_false(o->conf.lease_ttl_set);
	assert_int_equal(artemis_options_set_int(o, ARTEMIS_OPT_LEASE_TTL_MS, 999),
	                 ARTEMIS_E_INVAL);
	assert_false(o->conf.lease_ttl_set);
	assert_int_equal(artemis_options_set_int(o, ARTEMIS_OPT_LEASE_TTL_MS, 3000), 0);
	assert_true(o->conf.lease_ttl_set);
	artemis_options_free(o);
}

static void test_node_parse(void **state)
{
	cl_node_t n;

	(void)state;
	assert_int_equal(cl_node_parse("http://Node1.Example:8080/", &n, NULL), 0);
	assert_string_equal(n.url, "http://node1.example:8080");
	assert_string_equal(n.hostport, "node1.example:8080");
	assert_string_equal(n.prefix, "");
	assert_int_equal(cl_node_parse("HTTP://10.0.0.1", &n, NULL), 0);
	assert_int_equal(n.port, 80);
	assert_int_equal(cl_node_parse("http://[::1]:9/a/b//", &n, NULL), 0);
	assert_string_equal(n.host, "::1");
	assert_string_equal(n.url, "http://[::1]:9/a/b");
	assert_string_equal(n.prefix, "/a/b");
	assert_int_equal(cl_node_parse("http://[::1]x:9", &n, NULL), ARTEMIS_E_INVAL);
	assert_int_equal(cl_node_parse("http://a:9x", &n, NULL), ARTEMIS_E_INVAL);
	assert_int_equal(cl_node_parse(NULL, &n, NULL), ARTEMIS_E_INVAL);
}

static void test_instance(void **state)
{
	artemis_instance_t *i, *copy;
	cl_inst_t *fz;
	cl_err_t err = {0};
	const char *k, *v;
	char *json;

	(void)state;
	assert_int_equal(artemis_instance_new("Svc", "I-1", NULL, &i), 0);
	assert_int_equal(artemis_instance_set(i, ARTEMIS_F_IP, "10.0.0.9"), 0);
	assert_int_equal(artemis_instance_set_port(i, 8081), 0);
	assert_int_equal(artemis_instance_set_port(i, 70000), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_instance_set_meta(i, "a", "1"), 0);
	assert_int_equal(artemis_instance_set_meta(i, "b", "2"), 0);
	assert_int_equal(artemis_instance_set_meta(i, "a", "3"), 0);
	assert_int_equal(artemis_instance_set_meta(i, "b", NULL), 0);
	assert_int_equal(artemis_instance_meta_count(i), 1);
	assert_int_equal(artemis_instance_meta_at(i, 0, &k, &v), 0);
	assert_string_equal(k, "a");
	assert_string_equal(v, "3");
	assert_int_equal(artemis_instance_meta_at(i, 1, &k, &v), ARTEMIS_E_INVAL);
	assert_true(artemis_instance_is_up(i)); /* no status: up */
	assert_int_equal(artemis_instance_set(i, ARTEMIS_F_STATUS, "DOWN"), 0);
	assert_false(artemis_instance_is_up(i));
	assert_int_equal(artemis_instance_set(i, ARTEMIS_F_STATUS, NULL), 0);

	/* frozen: url derived, region and zone filled, status up, read-only */
	assert_int_equal(
	    cl_inst_freeze(i, "us-east", "zone-1", CL_FREEZE_HB | CL_FREEZE_UP, &fz, &err), 0);
	assert_string_equal(artemis_instance_get(fz, ARTEMIS_F_URL), "http://10.0.0.9:8081");
	assert_string_equal(artemis_instance_get(fz, ARTEMIS_F_REGION), "us-east");
	assert_string_equal(artemis_instance_get(fz, ARTEMIS_F_STATUS), "up");
	assert_string_equal(fz->key, "us-east\x1fsvc\x1fi-1");
	assert_string_equal(fz->group_key, "svc/us-east/zone-1/default/i-1");
	assert_string_equal(fz->hb,
	                    "{\"instanceId\":\"I-1\",\"regionId\":\"us-east\",\"serviceId\":"
	                    "\"Svc\",\"url\":\"http://10.0.0.9:8081\",\"zoneId\":\"zone-1\"}");
	assert_string_equal(
	    fz->json, "{\"groupId\":null,\"healthCheckUrl\":null,\"instanceId\":\"I-1\",\"ip\":"
	              "\"10.0.0.9\",\"machineName\":null,\"metadata\":{\"a\":\"3\"},\"port\":"
	              "8081,\"protocol\":null,\"regionId\":\"us-east\",\"serviceId\":\"Svc\","
	              "\"status\":\"up\",\"url\":\"http://10.0.0.9:8081\",\"zoneId\":\"zone-1\"}");
	assert_int_equal(artemis_instance_set(fz, ARTEMIS_F_IP, "x"), ARTEMIS_E_STATE);
	assert_int_equal(artemis_instance_set_meta(fz, "x", "y"), ARTEMIS_E_STATE);
	json = artemis_instance_to_json(fz);
	assert_string_equal(json, fz->json);
	artemis_free(json);
	assert_int_equal(artemis_instance_copy(fz, &copy), 0);
	assert_int_equal(artemis_instance_set(copy, ARTEMIS_F_IP, "10.0.0.8"), 0);
	assert_string_equal(artemis_instance_get(fz, ARTEMIS_F_IP), "10.0.0.9");
	artemis_instance_free(copy);
	cl_inst_release(fz);

	/* no url and no ip/port; blank ids; a value the nodes refuse */
	assert_int_equal(artemis_instance_set(i, ARTEMIS_F_IP, NULL), 0);
	assert_int_equal(cl_inst_freeze(i, "r", "z", 0, &fz, &err), ARTEMIS_E_INVAL);
	assert_non_null(strstr(err.message, "url"));
	assert_int_equal(artemis_instance_set(i, ARTEMIS_F_URL, "http://u"), 0);
	assert_int_equal(artemis_instance_set(i, ARTEMIS_F_INSTANCE, "  "), 0);
	assert_int_equal(cl_inst_freeze(i, "r", "z", 0, &fz, &err), ARTEMIS_E_INVAL);
	assert_int_equal(artemis_instance_set(i, ARTEMIS_F_INSTANCE, "i"), 0);
	assert_int_equal(artemis_instance_set_meta(i, "bad", "\xff\xfe"), 0);
	assert_int_equal(cl_inst_freeze(i, "r", "z", 0, &fz, &err), ARTEMIS_E_INVAL);
	artemis_instance_free(i);
}

/* ---- HTTP responses ------------------------------------------------------------- */

static int feed_all(cl_resp_t *r, const char *s, size_t len, size_t step)
{
	size_t off = 0, used;
	int rc = 0;

	while (off < len && rc == 0) {
		size_t n = len - off < step ? len - off : step;
		rc = cl_resp_feed(r, s + off, n, &used);
		off += used;
		if (rc == 0 && used != n)
			return -99;
	}
	return rc;
}

static void test_http_response(void **state)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	                         "Content-Length: 13\r\n\r\n{\"a\":\"bcde\"}\n";
	static const char chunked[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	                              "4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
	static const char eof[] = "HTTP/1.0 404 Not Found\r\n\r\nnot here";
	static const char up[] =
	    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Accept: abc=\r\n\r\n\x81\x02hi";
	cl_resp_t r = {0};
	size_t used;

	(void)state;
	for (size_t step = 1; step <= sizeof(ok); step += 7) {
		cl_resp_init(&r, 1000);
		assert_int_equal(feed_all(&r, ok, sizeof(ok) - 1, step), 1);
		assert_int_equal(r.status, 200);
		assert_int_equal(r.body.len, 13);
		assert_memory_equal(r.body.data, "{\"a\":\"bcde\"}\n", 13);
	}
	cl_resp_init(&r, 1000);
	assert_int_equal(feed_all(&r, chunked, sizeof(chunked) - 1, 3), 1);
	assert_int_equal(r.body.len, 7);
	cl_resp_init(&r, 1000);
	assert_int_equal(feed_all(&r, eof, sizeof(eof) - 1, 5), 0);
	assert_int_equal(cl_resp_eof(&r), 1);
	assert_int_equal(r.status, 404);
	assert_int_equal(r.body.len, 8);
	/* cut short: the peer closed before Content-Length bytes */
	cl_resp_init(&r, 1000);
	assert_int_equal(feed_all(&r, ok, sizeof(ok) - 5, 100), 0);
	assert_int_equal(cl_resp_eof(&r), ARTEMIS_E_CONNECT);
	/* over the limit */
	cl_resp_init(&r, 10);
	assert_int_equal(feed_all(&r, ok, sizeof(ok) - 1, 100), ARTEMIS_E_LIMIT);
	/* garbage */
	cl_resp_init(&r, 1000);
	assert_int_equal(cl_resp_feed(&r, "SSH-2.0-OpenSSH\r\n\r\n", 19, &used), ARTEMIS_E_PROTO);
	cl_resp_init(&r, 1000);
	assert_int_equal(cl_resp_feed(&r, "HTTP/1.1 2000 OK\r\n", 18, &used), ARTEMIS_E_PROTO);
	cl_resp_init(&r, 1000); /* a status http_parser takes but HTTP has not */
	assert_int_equal(cl_resp_feed(&r, "HTTP/1.1 20 OK\r\n\r\n", 19, &used), ARTEMIS_E_PROTO);
	/* the WebSocket handshake: accept header kept, frames left over */
	cl_resp_init(&r, 1000);
	assert_int_equal(cl_resp_feed(&r, up, sizeof(up) - 1, &used), 1);
	assert_int_equal(r.status, 101);
	assert_string_equal(r.accept, "abc=");
	assert_int_equal(sizeof(up) - 1 - used, 4);
	cl_resp_free(&r);
}

/* ---- WebSocket frames ----------------------------------------------------------- */

typedef struct {
	int ops[16];
	char data[16][256];
	size_t len[16];
	int n;
} frames_t;

static int on_frame(void *ctx, int op, const char *data, size_t len)
{
	frames_t *f = ctx;

	if (f->n < 16) {
		f->ops[f->n] = op;
		memcpy(f->data[f->n], data, len < 255 ? len : 255);
		f->len[f->n] = len;
		f->n++;
	}
	return 0;
}

static int stop_at_first(void *ctx, int op, const char *data, size_t len)
{
	(void)op;
	(void)data;
	(void)len;
	++*(int *)ctx;
	return 1;
}

static int wsd_run(const uint8_t *data, size_t len, size_t step, size_t max, frames_t *f)
{
	cl_wsd_t d;
	int rc = 0;

	memset(f, 0, sizeof(*f));
	cl_wsd_init(&d, max);
	for (size_t off = 0; off < len && rc == 0; off += step)
		rc = cl_wsd_feed(&d, data + off, len - off < step ? len - off : step, on_frame, f);
	cl_wsd_free(&d);
	return rc;
}

static void test_ws_frames(void **state)
{
	/* "Hel" + "lo" fragmented with a ping between, then a 300-byte text
	 * (16-bit length), a pong, a close */
	uint8_t in[600];
	size_t n = 0;
	frames_t f;

	(void)state;
	memcpy(in + n, "\x01\x03Hel", 5), n += 5;
	memcpy(in + n, "\x89\x02hi", 4), n += 4;
	memcpy(in + n, "\x80\x02lo", 4), n += 4;
	in[n++] = 0x81, in[n++] = 126, in[n++] = 300 >> 8, in[n++] = 300 & 0xff;
	memset(in + n, 'z', 300), n += 300;
	memcpy(in + n, "\x8a\x00", 2), n += 2;
	memcpy(in + n, "\x88\x02\x03\xe8", 4), n += 4;
	for (size_t step = 1; step < n; step = step * 2 + 1) {
		assert_int_equal(wsd_run(in, n, step, 1000, &f), 0);
		assert_int_equal(f.n, 5);
		assert_int_equal(f.ops[0], CL_WS_PING);
		assert_int_equal(f.ops[1], CL_WS_TEXT);
		assert_int_equal(f.len[1], 5);
		assert_memory_equal(f.data[1], "Hello", 5);
		assert_int_equal(f.len[2], 300);
		assert_int_equal(f.ops[3], CL_WS_PONG);
		assert_int_equal(f.ops[4], CL_WS_CLOSE);
	}
	/* what a server must not send */
	assert_int_equal(wsd_run((const uint8_t *)"\x81\x82\0\0\0\0hi", 8, 8, 100, &f),
	                 ARTEMIS_E_PROTO); /* masked */
	assert_int_equal(wsd_run((const uint8_t *)"\xc1\x00", 2, 2, 100, &f),
	                 ARTEMIS_E_PROTO); /* rsv */
	assert_int_equal(wsd_run((const uint8_t *)"\x83\x00", 2, 2, 100, &f),
	                 ARTEMIS_E_PROTO); /* op 3 */
	assert_int_equal(wsd_run((const uint8_t *)"\x80\x00", 2, 2, 100, &f),
	                 ARTEMIS_E_PROTO); /* cont */
	assert_int_equal(wsd_run((const uint8_t *)"\x09\x00", 2, 2, 100, &f),
	                 ARTEMIS_E_PROTO); /* frag ping */
	assert_int_equal(wsd_run((const uint8_t *)"\x01\x01"
	                                          "a\x81\x00",
	                         5, 5, 100, &f),
	                 ARTEMIS_E_PROTO); /* text inside a text */
	uint8_t big[10] = {0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 1};
	assert_int_equal(wsd_run(big, 10, 10, 100, &f), ARTEMIS_E_PROTO);
	big[2] = 0, big[9] = 200;
	assert_int_equal(wsd_run(big, 10, 10, 100, &f), ARTEMIS_E_LIMIT);
	uint8_t ping[4] = {0x89, 126, 0, 126};
	assert_int_equal(wsd_run(ping, 4, 4, 1000, &f), ARTEMIS_E_PROTO); /* control > 125 */
	/* a callback that stops the decoder (its session closed): nothing more */
	cl_wsd_t d;
	int calls = 0;
	cl_wsd_init(&d, 100);
	assert_int_equal(cl_wsd_feed(&d,
	                             (const uint8_t *)"\x81\x01"
	                                              "a\x81\x01"
	                                              "b",
	                             6, stop_at_first, &calls),
	                 1);
	assert_int_equal(calls, 1);
	cl_wsd_free(&d);
	/* an empty text message */
	assert_int_equal(wsd_run((const uint8_t *)"\x81\x00", 2, 1, 100, &f), 0);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.len[0], 0);
}

static void test_ws_encode(void **state)
{
	buf_t b = {0};
	char payload[70000];
	uint32_t mask = 0x11223344;
	uint8_t m[4];

	(void)state;
	memcpy(m, &mask, 4);
	memset(payload, 'p', sizeof(payload));
	size_t sizes[] = {0, 5, 125, 126, 65535, 65536, sizeof(payload)};
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t len = sizes[k], h;
		buf_reset(&b);
		assert_int_equal(cl_ws_frame(&b, CL_WS_TEXT, payload, len, mask), 0);
		const uint8_t *p = (const uint8_t *)b.data;
		assert_int_equal(p[0], 0x81);
		assert_true(p[1] & 0x80);
		h = len < 126 ? 2 : len < 65536 ? 4 : 10;
		assert_int_equal(b.len, h + 4 + len);
		assert_memory_equal(p + h, m, 4);
		for (size_t i = 0; i < len; i++)
			if ((p[h + 4 + i] ^ m[i & 3]) != 'p')
				fail_msg("byte %zu of %zu badly masked", i, len);
	}
	buf_free(&b);
}

/* ---- answers -------------------------------------------------------------------- */

static void test_decode_answers(void **state)
{
	json_t *root;
	cl_status_t st;
	cl_failed_t *failed;
	size_t n;
	int type;
	char sid[64];
	cl_inst_t *inst;
	int64_t t;

	(void)state;
	root =
	    json_loads("{\"failedInstances\":[{\"instance\":{\"regionId\":\"US-East\",\"serviceId"
	               "\":\"S\",\"instanceId\":\"I\"},\"errorCode\":\"data-not-found\","
	               "\"errorMessage\":\"m\"},{\"instance\":7},{\"errorCode\":\"x\"}],"
	               "\"responseStatus\":{\"status\":\"partial_fail\",\"errorCode\":"
	               "\"partial_fail\",\"message\":\"\"}}",
	               0, NULL);
	assert_int_equal(cl_decode_registry(root, &st, &failed, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(failed[0].key, "us-east\x1fs\x1fi");
	assert_string_equal(failed[0].code, "data-not-found");
	assert_string_equal(st.status, "partial_fail");
	free(failed);
	json_decref(root);
	root = json_loads("{\"failedInstances\":{},\"responseStatus\":{\"status\":\"success\"}}", 0,
	                  NULL);
	assert_int_equal(cl_decode_registry(root, &st, &failed, &n), ARTEMIS_E_PROTO);
	json_decref(root);
	root = json_loads("[1]", 0, NULL);
	assert_int_equal(cl_decode_registry(root, &st, &failed, &n), ARTEMIS_E_PROTO);
	json_decref(root);
	assert_int_equal(cl_decode_registry(NULL, &st, &failed, &n), ARTEMIS_E_PROTO);

	const char *push = "{\"instance\":{\"regionId\":\"r\",\"serviceId\":\"Svc\",\"instanceId\":"
	                   "\"i1\",\"url\":\"http://u\",\"status\":\"up\",\"port\":\"80\"},"
	                   "\"changeType\":\"NEW\",\"changeTime\":1234}";
	assert_int_equal(cl_decode_change(push, strlen(push), &type, sid, sizeof(sid), &inst, &t),
	                 0);
	assert_int_equal(type, ARTEMIS_CHANGE_NEW);
	assert_string_equal(sid, "Svc");
	assert_int_equal(t, 1234);
	assert_int_equal(artemis_instance_port(inst), 80);
	cl_inst_release(inst);
	const char *reload = "{\"instance\":{\"serviceId\":\"Svc\",\"instanceId\":\"reload\"},"
	                     "\"changeType\":\"reload\",\"changeTime\":1}";
	assert_int_equal(
	    cl_decode_change(reload, strlen(reload), &type, sid, sizeof(sid), &inst, &t), 0);
	assert_int_equal(type, ARTEMIS_CHANGE_RELOAD);
	assert_null(inst);
	const char *bad[] = {
	    "",
	    "null",
	    "{}",
	    "{\"changeType\":\"new\"}",
	    "{\"changeType\":\"odd\",\"instance\":{\"serviceId\":\"s\"}}",
	    "{\"changeType\":\"new\",\"instance\":{\"serviceId\":\"s\"}}",
	    "{\"changeType\":\"new\",\"instance\":{\"serviceId\":5}}",
	    "{\"changeType\":\"delete\",\"instance\":{\"serviceId\":\"s\",\"regionId\""
	    ":\"r\",\"instanceId\":\"i\",\"port\":{}}}"};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		assert_int_equal(
		    cl_decode_change(bad[k], strlen(bad[k]), &type, sid, sizeof(sid), &inst, &t),
		    ARTEMIS_E_PROTO);
}

static int nurls;
static void count_url(void *arg, const char *url)
{
	(void)arg;
	assert_true(url[strlen(url) - 1] != '/');
	nurls++;
}

static void test_decode_nodes(void **state)
{
	json_t *root = json_loads("{\"nodes\":[{\"url\":\"http://a:1/\"},{\"url\":5},{},{\"url\":"
	                          "\"http://b:2\"}],\"responseStatus\":{\"status\":\"success\"}}",
	                          0, NULL);

	(void)state;
	nurls = 0;
	assert_int_equal(cl_decode_nodes(root, count_url, NULL), 2);
	assert_int_equal(nurls, 2);
	json_decref(root);
	root = json_loads("{\"nodes\":\"x\"}", 0, NULL);
	assert_int_equal(cl_decode_nodes(root, count_url, NULL), ARTEMIS_E_PROTO);
	json_decref(root);
}

/* ---- snapshots and the choice ---------------------------------------------------- */

#define INST(id, zone, group, status)                                                              \
	"{\"regionId\":\"us-east\",\"zoneId\":\"" zone                                             \
	"\",\"serviceId\":\"pay\",\"instanceId\":\"" id "\",\"groupId\":" group                    \
	",\"url\":\"http://" id "\",\"status\":\"" status "\"}"

static const char svc_7030[] =
    "{\"serviceId\":\"pay\",\"instances\":[" INST("a1", "zone-1", "\"blue\"", "up") "," INST(
        "a2", "zone-1", "\"blue\"",
        "up") "," INST("b1", "zone-2", "\"green\"",
                       "up") "," INST("b2", "zone-2", "\"green\"",
                                      "down") "," INST("c1", "zone-1", "null",
                                                       "up") "],"
                                                             "\"routeRules\":[{\"routeId\":"
                                                             "\"canary-route-rule\",\"strategy\":"
                                                             "\"weighted-round-robin\","
                                                             "\"groups\":[{\"groupKey\":\"pay/"
                                                             "us-east/canary/"
                                                             "app\",\"weight\":5,\"instanceIds\":[]"
                                                             ","
                                                             "\"instances\":[" INST(
                                                                 "c1", "zone-1", "null",
                                                                 "up") "]}]},"
                                                                       "{\"routeId\":\"main\","
                                                                       "\"strategy\":\"weighted-"
                                                                       "round-robin\",\"groups\":["
                                                                       "{\"groupKey\":\"pay/"
                                                                       "us-east/zone-1/"
                                                                       "blue\",\"weight\":70},"
                                                                       "{\"groupKey\":\"x/"
                                                                       "other\",\"weight\":30,"
                                                                       "\"instanceIds\":[\"B1\","
                                                                       "\"b2\"]},"
                                                                       "{\"groupKey\":\"pay/"
                                                                       "us-east/zone-9/"
                                                                       "empty\",\"weight\":50}]}]}";

static void test_weighted_choice(void **state)
{
	cl_svc_t *s = svc_of(svc_7030, "us-east", "zone-1");
	int a = 0, b = 0, other = 0, run = 0, maxrun = 0;
	char last = 0;

	(void)state;
	assert_int_equal(artemis_service_size(s), 5);
	/* rules: canary, main (the empty group dropped), and the default added */
	assert_int_equal(artemis_service_rule_count(s), 3);
	assert_string_equal(artemis_service_rule_id(s, 2), "default-route-rule");
	assert_int_equal(s->routes[1].ngroups, 2);
	for (int k = 0; k < 10000; k++) {
		const char *id = pick_id(s, NULL);
		if (id[0] == 'a')
			a++;
		else if (strcmp(id, "b1") == 0)
			b++;
		else
			other++;
		run = id[0] == last ? run + 1 : 1;
		maxrun = run > maxrun ? run : maxrun;
		last = id[0];
	}
	/* smooth weighted round robin is exact over whole cycles, and interleaves */
	assert_int_equal(a, 7000);
	assert_int_equal(b, 3000);
	assert_int_equal(other, 0);
	assert_true(maxrun <= 3);
	/* round robin inside a group */
	int a1 = 0;
	for (int k = 0; k < 100; k++)
		a1 += strcmp(pick_id(s, "main"), "a1") == 0;
	assert_true(a1 >= 34 && a1 <= 36);
	/* the canary rule only when asked; the default rule: every up instance */
	for (int k = 0; k < 5; k++)
		assert_string_equal(pick_id(s, "canary-route-rule"), "c1");
	int seen[4] = {0};
	for (int k = 0; k < 40; k++) {
		const char *id = pick_id(s, "default-route-rule");
		assert_string_not_equal(id, "b2"); /* down */
		seen[id[0] - 'a' + (id[1] == '2' && id[0] == 'a' ? 3 : 0)]++;
	}
	assert_true(seen[0] && seen[1] && seen[2] && seen[3]);
	const artemis_instance_t *i;
	assert_int_equal(artemis_service_choose(s, "nope", &i), ARTEMIS_E_NOTFOUND);
	cl_svc_release(s);
}

static void test_weights_clamped(void **state)
{
	static const char json[] =
	    "{\"serviceId\":\"pay\",\"instances\":[" INST("a1", "z", "\"g1\"", "up") "," INST(
	        "b1", "z", "\"g2\"",
	        "up") "," INST("c1", "z", "\"g3\"",
	                       "up") "],\"routeRules\":["
	                             "{\"routeId\":\"r\",\"groups\":[{\"groupKey\":\"pay/us-east/z/"
	                             "g1\",\"weight\":null},"
	                             "{\"groupKey\":\"pay/us-east/z/g2\",\"weight\":-3},"
	                             "{\"groupKey\":\"pay/us-east/z/g3\",\"weight\":20000}]},"
	                             "{\"routeId\":\"zero\",\"groups\":[{\"groupKey\":\"pay/"
	                             "us-east/z/g1\",\"weight\":0},"
	                             "{\"groupKey\":\"pay/us-east/z/g2\",\"weight\":1}]},"
	                             "{\"routeId\":\"empty\",\"groups\":[{\"groupKey\":\"nothing\"}"
	                             "]}]}";
	cl_svc_t *s = svc_of(json, "us-east", "z");
	int n[3] = {0};

	(void)state;
	assert_int_equal(s->routes[0].groups[0].weight, 5);
	assert_int_equal(s->routes[0].groups[1].weight, 5);
	assert_int_equal(s->routes[0].groups[2].weight, 10000);
	for (int k = 0; k < 10010; k++)
		n[pick_id(s, "r")[0] - 'a']++;
	assert_int_equal(n[0], 5);
	assert_int_equal(n[1], 5);
	assert_int_equal(n[2], 10000);
	for (int k = 0; k < 10; k++) /* weight 0: no traffic */
		assert_string_equal(pick_id(s, "zero"), "b1");
	/* a rule whose groups have no members is dropped */
	const artemis_instance_t *i;
	assert_int_equal(artemis_service_choose(s, "empty", &i), ARTEMIS_E_NOTFOUND);
	/* a route rule named default-route-rule replaces the synthetic one */
	assert_int_equal(artemis_service_rule_count(s), 3);
	cl_svc_release(s);
}

static void test_close_by_visit(void **state)
{
	static const char json[] =
	    "{\"serviceId\":\"pay\",\"instances\":["
	    "{\"regionId\":\"us-east\",\"zoneId\":\"z1\",\"serviceId\":\"pay\",\"instanceId\":"
	    "\"near\","
	    "\"url\":\"u\"},"
	    "{\"regionId\":\"us-east\",\"zoneId\":\"z2\",\"serviceId\":\"pay\",\"instanceId\":"
	    "\"mid\","
	    "\"url\":\"u\"},"
	    "{\"regionId\":\"eu\",\"zoneId\":\"z1\",\"serviceId\":\"pay\",\"instanceId\":\"far\","
	    "\"url\":\"u\"}],"
	    "\"routeRules\":[{\"routeId\":\"cbv\",\"strategy\":\"close-by-visit\",\"groups\":["
	    "{\"groupKey\":\"g\",\"instanceIds\":[\"near\",\"mid\",\"far\"]}]}]}";
	cl_svc_t *s = svc_of(json, "us-east", "z1");

	(void)state;
	for (int k = 0; k < 5; k++)
		assert_string_equal(pick_id(s, NULL), "near");
	cl_svc_release(s);
	s = svc_of(json, "us-east", "z9"); /* no instance in our zone: our region */
	for (int k = 0; k < 6; k++)
		assert_string_not_equal(pick_id(s, NULL), "far");
	cl_svc_release(s);
	s = svc_of(json, "ap", "z9"); /* neither: any */
	int far = 0;
	for (int k = 0; k < 6; k++)
		far += strcmp(pick_id(s, NULL), "far") == 0;
	assert_int_equal(far, 2);
	cl_svc_release(s);
}

static void test_down_instances(void **state)
{
	static const char json[] =
	    "{\"serviceId\":\"pay\",\"instances\":[" INST("a1", "z", "\"g1\"", "down") "," INST(
	        "b1", "z", "\"g2\"",
	        "starting") "," INST("c1", "z", "\"g3\"",
	                             "UP") "],"
	                                   "\"routeRules\":[{\"routeId\":\"r\",\"groups\":[{"
	                                   "\"groupKey\":\"pay/us-east/z/g1\","
	                                   "\"weight\":90},{\"groupKey\":\"pay/us-east/z/"
	                                   "g2\",\"weight\":10}]}]}";
	static const char none[] =
	    "{\"serviceId\":\"pay\",\"instances\":[" INST("a1", "z", "null", "down") "]}";
	cl_svc_t *s = svc_of(json, "us-east", "z");
	const artemis_instance_t *i;

	(void)state;
	/* neither group has an instance up: every up instance of the service */
	for (int k = 0; k < 5; k++)
		assert_string_equal(pick_id(s, NULL), "c1");
	cl_svc_release(s);
	s = svc_of(none, "us-east", "z");
	assert_int_equal(artemis_service_choose(s, NULL, &i), ARTEMIS_E_NOTFOUND);
	cl_svc_release(s);
	s = svc_of("{\"serviceId\":\"x\",\"instances\":null}", "r", "z");
	assert_int_equal(artemis_service_size(s), 0);
	assert_int_equal(artemis_service_choose(s, NULL, &i), ARTEMIS_E_NOTFOUND);
	assert_string_equal(artemis_service_json(s),
	                    "{\"instances\":[],\"logicInstances\":null,\"metadata\":null,"
	                    "\"routeRules\":null,\"serviceId\":\"x\"}");
	cl_svc_release(s);
}

static void test_snapshot_apply(void **state)
{
	static const char json[] =
	    "{\"serviceId\":\"pay\",\"metadata\":{\"k\":\"v\"},\"instances\":[" INST(
	        "b", "z", "null", "up") "," INST("a", "z", "null",
	                                         "up") "," INST("b", "z", "\"late\"", "up") "]}";
	cl_svc_t *s = svc_of(json, "us-east", "z"), *s2, *s3;
	cl_inst_t *inst;
	json_t *obj = json_loads(INST("c", "z", "null", "up"), 0, NULL);
	const artemis_instance_t *pick;

	(void)state;
	/* sorted by key; of two equal keys the later wins */
	assert_int_equal(artemis_service_size(s), 2);
	assert_string_equal(
	    artemis_instance_get(artemis_service_instance(s, 0), ARTEMIS_F_INSTANCE), "a");
	assert_string_equal(artemis_instance_get(artemis_service_instance(s, 1), ARTEMIS_F_GROUP),
	                    "late");
	assert_int_equal(cl_inst_from_json(obj, &inst, NULL), 0);
	json_decref(obj);
	assert_int_equal(cl_svc_apply(s, ARTEMIS_CHANGE_NEW, inst, &s2), 0);
	assert_int_equal(artemis_service_size(s2), 3);
	assert_string_equal(
	    artemis_instance_get(artemis_service_instance(s2, 2), ARTEMIS_F_INSTANCE), "c");
	assert_non_null(strstr(artemis_service_json(s2), "\"metadata\":{\"k\":\"v\"}"));
	assert_int_equal(cl_svc_apply(s2, ARTEMIS_CHANGE_DELETE, inst, &s3), 0);
	assert_int_equal(artemis_service_size(s3), 2);
	assert_string_equal(artemis_service_json(s3), artemis_service_json(s));
	assert_int_equal(artemis_service_choose(s3, NULL, &pick), 0);
	cl_inst_release(inst);
	cl_svc_release(s);
	cl_svc_release(s2);
	cl_svc_release(s3);
}

static void test_bad_services(void **state)
{
	const char *bad[] = {
	    "[]",
	    "{\"instances\":[]}",
	    "{\"serviceId\":\"s\",\"instances\":{}}",
	    "{\"serviceId\":\"s\",\"instances\":[{\"port\":[1]}]}",
	    "{\"serviceId\":\"s\",\"routeRules\":{}}",
	    "{\"serviceId\":\"s\",\"routeRules\":[{\"groups\":[]}]}",
	    "{\"serviceId\":\"s\",\"routeRules\":[{\"routeId\":\"r\",\"groups\":[1]}]}",
	    "{\"serviceId\":\"s\",\"routeRules\":[{\"routeId\":\"r\",\"groups\":[{\"instanceIds\":"
	    "3}]}]}",
	};
	cl_svc_t *s;

	(void)state;
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		json_t *root = json_loads(bad[k], 0, NULL);
		assert_non_null(root);
		assert_int_equal(cl_svc_from_json(root, "r", "z", &s, NULL), ARTEMIS_E_PROTO);
		assert_null(s);
		json_decref(root);
	}
}

/* ---- fake nodes ------------------------------------------------------------------- */

enum { FAKE_OK, FAKE_GARBAGE, FAKE_CLOSE_MID, FAKE_STALL, FAKE_503, FAKE_SLOW_BODY };

typedef struct {
	int fd;
	int port;
	atomic_int mode;
	atomic_int requests;
	atomic_bool stop;
	pthread_t thread;
	char last[4096];
} fake_t;

static void fake_answer(fake_t *f, int cfd)
{
	static const char ok_body[] = "{\"responseStatus\":{\"status\":\"success\",\"errorCode\":"
	                              "\"success\",\"message\":\"\"},\"services\":[{\"serviceId\":"
	                              "\"s\",\"instances\":null}]}";
	char buf[8192], head[256];
	size_t got = 0;

	/* the request: headers and a Content-Length body (at most buf) */
	for (;;) {
		struct pollfd p = {cfd, POLLIN, 0};
		if (poll(&p, 1, 2000) <= 0)
			return;
		ssize_t n = recv(cfd, buf + got, sizeof(buf) - 1 - got, 0);
		if (n <= 0)
			return;
		got += (size_t)n;
		buf[got] = '\0';
		char *end = strstr(buf, "\r\n\r\n");
		const char *cl = strstr(buf, "Content-Length: ");
		if (end && (!cl || got >= (size_t)(end + 4 - buf) + (size_t)atoi(cl + 16)))
			break;
	}
	memcpy(f->last, buf, got < sizeof(f->last) ? got + 1 : sizeof(f->last));
	f->last[sizeof(f->last) - 1] = '\0';
	atomic_fetch_add(&f->requests, 1);
	switch (atomic_load(&f->mode)) {
	case FAKE_OK:
		snprintf(head, sizeof(head),
		         "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
		         "%zu\r\n\r\n",
		         sizeof(ok_body) - 1);
		send(cfd, head, strlen(head), MSG_NOSIGNAL);
		send(cfd, ok_body, sizeof(ok_body) - 1, MSG_NOSIGNAL);
		break;
	case FAKE_GARBAGE:
		send(cfd, "\x16\x03\x01garbage\r\n\r\n", 14, MSG_NOSIGNAL);
		break;
	case FAKE_CLOSE_MID:
		send(cfd, "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"respo", 47,
		     MSG_NOSIGNAL);
		break;
	case FAKE_503:
		send(cfd, "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", 40, MSG_NOSIGNAL);
		break;
	case FAKE_SLOW_BODY: /* headers, then nothing: a stall mid-response */
		send(cfd, "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{", 41, MSG_NOSIGNAL);
		/* fall through */
	case FAKE_STALL:
		while (!atomic_load(&f->stop)) {
			struct pollfd p = {cfd, POLLIN, 0};
			if (poll(&p, 1, 50) > 0 && recv(cfd, buf, sizeof(buf), 0) <= 0)
				break;
		}
		break;
	}
}

static void *fake_main(void *arg)
{
	fake_t *f = arg;

	while (!atomic_load(&f->stop)) {
		struct pollfd p = {f->fd, POLLIN, 0};
		if (poll(&p, 1, 50) <= 0)
			continue;
		int cfd = accept(f->fd, NULL, NULL);
		if (cfd < 0)
			continue;
		fake_answer(f, cfd);
		close(cfd);
	}
	return NULL;
}

static void fake_start(fake_t *f, int mode)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);

	memset(f, 0, sizeof(*f));
	atomic_init(&f->mode, mode);
	f->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->fd >= 0);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(f->fd, 16), 0);
	getsockname(f->fd, (struct sockaddr *)&sin, &len);
	f->port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(fake_t *f)
{
	atomic_store(&f->stop, true);
	pthread_join(f->thread, NULL);
	close(f->fd);
}

/* A port nothing listens on. */
static int dead_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	getsockname(fd, (struct sockaddr *)&sin, &len);
	close(fd);
	return ntohs(sin.sin_port);
}

static artemis_client_t *client_for(const char *urls, long timeout_ms)
{
	artemis_options_t *o = artemis_options_new();
	artemis_client_t *c;
	artemis_error_t err;

	assert_int_equal(artemis_options_add_url(o, urls), 0);
	artemis_options_set_str(o, ARTEMIS_OPT_REGION, "us-east");
	artemis_options_set_str(o, ARTEMIS_OPT_ZONE, "zone-1");
	artemis_options_set_int(o, ARTEMIS_OPT_REQUEST_TIMEOUT_MS, timeout_ms);
	artemis_options_set_int(o, ARTEMIS_OPT_CONNECT_TIMEOUT_MS, 200);
	assert_int_equal(artemis_client_new(o, &c, &err), 0);
	artemis_options_free(o);
	return c;
}

static void test_bad_nodes(void **state)
{
	static const struct {
		int mode;
		int code;
	} cases[] = {
	    {FAKE_GARBAGE, ARTEMIS_E_PROTO}, {FAKE_CLOSE_MID, ARTEMIS_E_CONNECT},
	    {FAKE_STALL, ARTEMIS_E_TIMEOUT}, {FAKE_SLOW_BODY, ARTEMIS_E_TIMEOUT},
	    {FAKE_503, ARTEMIS_E_HTTP},
	};
	fake_t f;
	char url[64];
	artemis_service_t *s;
	artemis_error_t err;

	(void)state;
	fake_start(&f, FAKE_OK);
	snprintf(url, sizeof(url), "http://localhost:%d", f.port); /* a name, resolved */
	artemis_client_t *c = client_for(url, 400);
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		atomic_store(&f.mode, cases[k].mode);
		uint64_t t0 = clock_mono_ms();
		assert_int_equal(artemis_lookup(c, "s", &s, &err), cases[k].code);
		assert_null(s);
		/* ended by the deadline (400 ms), not hanging: a loose bound */
		assert_true(clock_mono_ms() - t0 < 3000);
		assert_true(err.message[0] != '\0');
		/* still usable */
		atomic_store(&f.mode, FAKE_OK);
		assert_int_equal(artemis_lookup(c, "s", &s, &err), 0);
		assert_string_equal(artemis_service_id(s), "s");
		artemis_service_release(s);
	}
	/* what a lookup sends */
	assert_non_null(strstr(f.last, "POST /artemis/api/discovery/lookup.json HTTP/1.1\r\n"));
	assert_non_null(strstr(f.last, "\"discoveryConfigs\":[{\"serviceId\":\"s\",\"regionId\":"
	                               "\"us-east\",\"zoneId\":\"zone-1\"}]"));
	artemis_client_free(c);
	fake_stop(&f);
}

static void test_failover(void **state)
{
	fake_t bad, good;
	char urls[128];
	artemis_service_t *s;
	artemis_response_t *r;
	artemis_error_t err;

	(void)state;
	fake_start(&bad, FAKE_503);
	fake_start(&good, FAKE_OK);
	/* a dead port, a node answering 503, a good one: sticky once found */
	snprintf(urls, sizeof(urls), "http://127.0.0.1:%d,http://127.0.0.1:%d,http://127.0.0.1:%d",
	         dead_port(), bad.port, good.port);
	artemis_client_t *c = client_for(urls, 2000);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(artemis_lookup(c, "s", &s, &err), 0);
		artemis_service_release(s);
	}
	assert_int_equal(atomic_load(&good.requests), 3);
	assert_true(atomic_load(&bad.requests) <= 1);
	uint64_t failures = artemis_client_stat(c, ARTEMIS_STAT_NODE_FAILURES);
	assert_true(failures <= 2);
	/* artemis_call: 503 fails over too; the answer says which node */
	assert_int_equal(artemis_call(c, "GET", "/health", NULL, "tok-1", &r, &err), 0);
	assert_int_equal(artemis_response_status(r), 200);
	char want[64];
	snprintf(want, sizeof(want), "http://127.0.0.1:%d", good.port);
	assert_string_equal(artemis_response_node(r), want);
	assert_non_null(strstr(good.last, "Authorization: Bearer tok-1\r\n"));
	artemis_response_free(r);
	/* every node down: an error, quickly (backoff does not stop a call from trying) */
	artemis_client_free(c);
	snprintf(urls, sizeof(urls), "http://127.0.0.1:%d", dead_port());
	c = client_for(urls, 1000);
	assert_int_equal(artemis_lookup(c, "s", &s, &err), ARTEMIS_E_CONNECT);
	assert_non_null(strstr(err.message, "Connection refused"));
	assert_int_equal(artemis_lookup(c, "s", &s, &err), ARTEMIS_E_CONNECT);
	artemis_client_free(c);
	fake_stop(&bad);
	fake_stop(&good);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_null_and_long_arguments),
	    cmocka_unit_test(test_options),
	    cmocka_unit_test(test_lease_interval),
	    cmocka_unit_test(test_node_parse),
	    cmocka_unit_test(test_instance),
	    cmocka_unit_test(test_http_response),
	    cmocka_unit_test(test_ws_frames),
	    cmocka_unit_test(test_ws_encode),
	    cmocka_unit_test(test_decode_answers),
	    cmocka_unit_test(test_decode_nodes),
	    cmocka_unit_test(test_weighted_choice),
	    cmocka_unit_test(test_weights_clamped),
	    cmocka_unit_test(test_close_by_visit),
	    cmocka_unit_test(test_down_instances),
	    cmocka_unit_test(test_snapshot_apply),
	    cmocka_unit_test(test_bad_services),
	    cmocka_unit_test(test_bad_nodes),
	    cmocka_unit_test(test_failover),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

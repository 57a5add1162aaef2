/*
 * test_http.c - the HTTP transport (worker/http_*.c).
 *
 * Each test runs an http_server_t on a private event base and talks to it
 * over a socketpair (one test uses a TCP listener on 127.0.0.1 for the
 * accept path and max_connections).  The handler is the echo function
 * below, given to http_server_new(), so the test does not depend on the
 * API layer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "artemis/clock.h"
#include "artemis/log.h"

#include "../../worker/http_body.h"
#include "../../worker/http_conn.h"

#define CLIENT_BUF  (8u << 20)
#define DEADLINE_MS 5000

static struct event_base *base;
static http_server_t *srv;
static http_limits_t cfg;
static int cli = -1; /* client end of the socketpair */
static char *cbuf;   /* bytes received by the client, not yet parsed */
static size_t clen;
static bool ceof;
static unsigned dispatched, observed;
static unsigned mark_at;  /* the dispatch count when /mark was dispatched */
static int taken_fd = -1; /* the socket the upgrade hook took */
static bool last_origin_allowed;
static int last_observed_status;

typedef struct {
	int status;
	char head[4096];
	char *body; /* points into a malloc'd copy */
	size_t body_len;
} resp_t;

/* ---- The test's API layer ---------------------------------------------- */

/* Echo: "<method> <path> q=<query> gz=<0|1> ct=<type>\n<body>".  Paths
 * select special behaviour. */
static void echo_dispatch(void *ctx, const http_request_t *req, http_response_t *res)
{
	(void)ctx;
	dispatched++;
	if (strcmp(req->path, "/mark") == 0)
		mark_at = dispatched;
	if (strcmp(req->path, "/big") == 0) {
		size_t n = (size_t)atol(req->query);
		for (size_t i = 0; i < n; i++)
			http_res_append(res, "abcdefghijklmnopqrstuvwxyz0123456789" + i % 36, 1);
		res->content_type = "text/plain";
		return;
	}
	if (strcmp(req->path, "/304") == 0) {
		/* The console's conditional GET: no body, no length, its headers. */
		res->status = 304;
		res->headers = "ETag: \"abc\"\r\nCache-Control: no-cache\r\n";
		return;
	}
	if (strcmp(req->path, "/headers") == 0) {
		res->headers = "Location: /console/\r\n";
		res->status = 302;
		http_res_append(res, "moved", 5);
		return;
	}
	if (strcmp(req->path, "/405") == 0) {
		res->allow = "POST";
		http_res_error(res, req, 405, "Request method 'GET' not supported");
		return;
	}
	const char *x = http_request_header(req, "X-Test");
	http_res_printf(res, "%d %s q=%s gz=%d ct=%s x=%s\n", (int)req->method, req->path,
	                req->query, req->body_was_gzip ? 1 : 0, req->content_type, x ? x : "-");
	http_res_append(res, req->body, req->body_len);
	res->content_type = "text/plain";
}

static void test_observe(void *ctx, const http_request_t *req, int status, uint64_t latency_us)
{
	(void)ctx;
	(void)req;
	(void)latency_us;
	observed++;
	last_observed_status = status;
}

/* ---- Harness ------------------------------------------------------------ */

static const http_handler_t handler = {echo_dispatch, test_observe, NULL};

static void cfg_init(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.max_header_bytes = 8192;
	cfg.max_body_bytes = 1u << 20;
	cfg.idle_timeout_ms = 60000;
	cfg.header_timeout_ms = 10000;
	cfg.body_timeout_ms = 10000;
	cfg.write_timeout_ms = 10000;
	cfg.max_connections = 100;
	cfg.output_budget_bytes = 64u << 20;
}

static void server_start(void)
{
	base = event_base_new();
	assert_non_null(base);
	assert_int_equal(http_server_new(base, &cfg, &handler, -1, &srv), 0);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(http_server_add_conn(srv, sv[0], "127.0.0.1"), 0);
	cli = sv[1];
	clen = 0;
	ceof = false;
}

static int setup(void **state)
{
	(void)state;
	cfg_init();
	dispatched = observed = mark_at = 0;
	clen = 0;
	ceof = false;
	if (!cbuf)
		cbuf = malloc(CLIENT_BUF);
	return cbuf ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	if (cli >= 0)
		close(cli);
	cli = -1;
	if (srv)
		http_server_free(srv);
	srv = NULL;
	if (base)
		event_base_free(base);
	base = NULL;
	return 0;
}

/* Run the server's loop once and collect what the client received. */
static void pump(int fd)
{
	event_base_loop(base, EVLOOP_NONBLOCK);
	for (;;) {
		if (clen == CLIENT_BUF)
			return;
		ssize_t n = recv(fd, cbuf + clen, CLIENT_BUF - clen, 0);
		if (n > 0) {
			clen += (size_t)n;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			ceof = true;
		return;
	}
}

static void pump_wait(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	poll(&p, 1, 1);
	pump(fd);
}

static void client_send_fd(int fd, const void *data, size_t len)
{
	const char *p = data;
	uint64_t deadline = clock_mono_ms() + DEADLINE_MS;
	while (len > 0 && clock_mono_ms() < deadline) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			return; /* the server closed: fine for the limit tests */
		}
		pump(fd);
	}
}

static void send_str(int fd, const char *s)
{
	client_send_fd(fd, s, strlen(s));
}

static void client_send(const char *s)
{
	send_str(cli, s);
}

/* Take one complete response from the client's buffer.  head_only: a
 * response to HEAD (Content-Length without a body). */
static int take_response(resp_t *r, bool head_only)
{
	char *end = memmem(cbuf, clen, "\r\n\r\n", 4);
	if (!end)
		return -1;
	size_t hlen = (size_t)(end - cbuf) + 4;
	if (hlen >= sizeof(r->head))
		return -1;
	memcpy(r->head, cbuf, hlen);
	r->head[hlen] = '\0';
	r->status = atoi(r->head + 9);
	const char *cl = strcasestr(r->head, "\r\nContent-Length: ");
	size_t blen = cl && r->status >= 200 && !head_only ? (size_t)atol(cl + 18) : 0;
	if (clen < hlen + blen)
		return -1;
	free(r->body);
	r->body = malloc(blen + 1);
	memcpy(r->body, cbuf + hlen, blen);
	r->body[blen] = '\0';
	r->body_len = blen;
	memmove(cbuf, cbuf + hlen + blen, clen - hlen - blen);
	clen -= hlen + blen;
	return 0;
}

static int read_response_fd(int fd, resp_t *r, bool head_only)
{
	uint64_t deadline = clock_mono_ms() + DEADLINE_MS;
	while (clock_mono_ms() < deadline) {
		if (take_response(r, head_only) == 0)
			return 0;
		if (ceof)
			return -1;
		pump_wait(fd);
	}
	return -1;
}

static void expect_response(resp_t *r, int status)
{
	assert_int_equal(read_response_fd(cli, r, false), 0);
	assert_int_equal(r->status, status);
}

static bool wait_eof(int fd)
{
	uint64_t deadline = clock_mono_ms() + DEADLINE_MS;
	while (!ceof && clock_mono_ms() < deadline)
		pump_wait(fd);
	return ceof;
}

static bool has_header(const resp_t *r, const char *line)
{
	return strcasestr(r->head, line) != NULL;
}

static size_t gzip_bytes(const void *in, size_t n, unsigned char *out, size_t cap)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	size_t len = z.total_out;
	deflateEnd(&z);
	return len;
}

/* "<hex>\r\n<data>\r\n" pieces of `step` bytes, then the last chunk. */
static size_t chunk_bytes(const unsigned char *in, size_t n, size_t step, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i += step) {
		size_t k = n - i < step ? n - i : step;
		o += (size_t)sprintf(out + o, "%zx\r\n", k);
		memcpy(out + o, in + i, k);
		o += k;
		memcpy(out + o, "\r\n", 2);
		o += 2;
	}
	memcpy(out + o, "0\r\n\r\n", 5);
	return o + 5;
}

/* Send raw on cli: the answer is `status` with `needle` in its body,
 * nothing is dispatched, and the connection closes. */
static void expect_refused(const char *raw, int status, const char *needle)
{
	resp_t r = {0};
	client_send(raw);
	expect_response(&r, status);
	assert_non_null(strstr(r.body, needle));
	assert_true(wait_eof(cli));
	assert_int_equal(dispatched, 0);
	free(r.body);
}

/* ---- Tests -------------------------------------------------------------- */

static const char json[] = "{\"instances\":[{\"serviceId\":\"svc\",\"instanceId\":\"i1\"}]}";

static void test_plain_post(void **state)
{
	(void)state;
	server_start();
	char req[512];
	snprintf(req, sizeof(req),
	         "POST /artemis/api/registry/heartbeat.json?a=1 HTTP/1.1\r\nHost: x\r\n"
	         "Content-Type: application/json\r\nX-Test:  spaced  \r\n"
	         "Content-Length: %zu\r\n\r\n%s",
	         strlen(json), json);
	client_send(req);
	resp_t r = {0};
	expect_response(&r, 200);
	char want[256];
	snprintf(
	    want, sizeof(want),
	    "%d /artemis/api/registry/heartbeat.json q=a=1 gz=0 ct=application/json x=spaced\n%s",
	    HTTP_M_POST, json);
	assert_string_equal(r.body, want);
	assert_true(has_header(&r, "\r\nConnection: keep-alive\r\n"));
	assert_true(has_header(&r, "\r\nAccess-Control-Allow-Origin: *\r\n"));
	assert_true(has_header(&r, "\r\nAccess-Control-Expose-Headers: *\r\n"));
	assert_true(has_header(&r, "\r\nAccess-Control-Allow-Credentials: true\r\n"));
	assert_true(has_header(&r, "\r\nContent-Type: text/plain\r\n"));
	assert_int_equal(observed, 1);
	assert_int_equal(last_observed_status, 200);
	free(r.body);
}

static void test_chunked(void **state)
{
	(void)state;
	server_start();
	char body[512], req[1024];
	size_t n = chunk_bytes((const unsigned char *)json, strlen(json), 7, body);
	int h = snprintf(req, sizeof(req),
	                 "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
	memcpy(req + h, body, n);
	client_send_fd(cli, req, (size_t)h + n);
	resp_t r = {0};
	expect_response(&r, 200);
	assert_non_null(strstr(r.body, "gz=0"));
	assert_string_equal(strchr(r.body, '\n') + 1, json);
	free(r.body);
}

static void send_gzip(const char *te_or_cl, size_t chunk_step, const void *plain, size_t plen)
{
	static unsigned char gz[1 << 20];
	static char chunked[1 << 21];
	char head[256];
	size_t glen = gzip_bytes(plain, plen, gz, sizeof(gz));
	if (chunk_step) {
		size_t n = chunk_bytes(gz, glen, chunk_step, chunked);
		snprintf(head, sizeof(head),
		         "POST /gz HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
		         "Content-Type: application/json\r\n%s\r\n\r\n",
		         te_or_cl);
		client_send(head);
		client_send_fd(cli, chunked, n);
	} else {
		snprintf(head, sizeof(head),
		         "POST /gz HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
		         "Content-Length: %zu\r\n\r\n",
		         glen);
		client_send(head);
		client_send_fd(cli, gz, glen);
	}
}

static void test_gzip_content_length(void **state)
{
	(void)state;
	server_start();
	send_gzip(NULL, 0, json, strlen(json));
	resp_t r = {0};
	expect_response(&r, 200);
	assert_non_null(strstr(r.body, "gz=1"));
	assert_string_equal(strchr(r.body, '\n') + 1, json);
	free(r.body);
}

static void test_gzip_chunked(void **state)
{
	(void)state;
	server_start();
	/* A body larger than one inflate step, split into odd-sized chunks. */
	size_t plen = 200000;
	char *plain = malloc(plen + 1);
	for (size_t i = 0; i < plen; i++)
		plain[i] = (char)('a' + (i * 7 + i / 13) % 26);
	plain[plen] = '\0';
	send_gzip("Transfer-Encoding: chunked", 333, plain, plen);
	resp_t r = {0};
	expect_response(&r, 200);
	assert_non_null(strstr(r.body, "gz=1"));
	assert_int_equal(strlen(strchr(r.body, '\n') + 1), plen);
	assert_memory_equal(strchr(r.body, '\n') + 1, plain, plen);
	/* and the connection is still usable */
	client_send("GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
	expect_response(&r, 200);
	assert_non_null(strstr(r.body, " /after "));
	free(plain);
	free(r.body);
}

static void test_gzip_truncated(void **state)
{
	(void)state;
	server_start();
	unsigned char gz[512];
	size_t glen = gzip_bytes(json, strlen(json), gz, sizeof(gz));
	char head[256];
	snprintf(head, sizeof(head),
	         "POST /gz HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
	         "Content-Length: %zu\r\n\r\n",
	         glen - 10);
	client_send(head);
	client_send_fd(cli, gz, glen - 10);
	resp_t r = {0};
	expect_response(&r, 400);
	assert_non_null(strstr(r.body, "\"status\":400"));
	assert_non_null(strstr(r.body, "\"error\":\"Bad Request\""));
	assert_non_null(strstr(r.body, "\"path\":\"/gz\""));
	assert_non_null(strstr(r.body, "\"timestamp\":"));
	assert_int_equal(dispatched, 0);
	/* corrupt, not truncated: also 400; the connection survives both */
	memset(gz + 10, 0xff, 8);
	snprintf(head, sizeof(head),
	         "POST /gz HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
	         "Content-Length: %zu\r\n\r\n",
	         glen);
	client_send(head);
	client_send_fd(cli, gz, glen);
	expect_response(&r, 400);
	client_send("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
	expect_response(&r, 200);
	free(r.body);
}

static void test_gzip_bomb(void **state)
{
	(void)state;
	server_start();
	size_t plen = 16u << 20; /* inflates to 16 MiB, limit is 1 MiB */
	char *zeros = calloc(1, plen);
	send_gzip("Transfer-Encoding: chunked", 4096, zeros, plen);
	free(zeros);
	resp_t r = {0};
	expect_response(&r, 413);
	assert_non_null(strstr(r.body, "\"status\":413"));
	assert_int_equal(dispatched, 0);
	assert_int_equal(last_observed_status, 413);
	free(r.body);
}

static void test_body_too_large(void **state)
{
	(void)state;
	server_start();
	client_send("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n");
	resp_t r = {0};
	expect_response(&r, 413);
	assert_true(has_header(&r, "\r\nConnection: close\r\n"));
	assert_true(wait_eof(cli));
	free(r.body);
}

static void test_chunked_too_large(void **state)
{
	(void)state;
	server_start();
	client_send("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
	static char chunk[70000];
	int h = snprintf(chunk, sizeof(chunk), "%x\r\n", 65536);
	memset(chunk + h, 'a', 65536);
	memcpy(chunk + h + 65536, "\r\n", 2);
	for (int i = 0; i < 17; i++)
		client_send_fd(cli, chunk, (size_t)h + 65538);
	resp_t r = {0};
	expect_response(&r, 413);
	assert_true(wait_eof(cli));
	free(r.body);
}

static void test_header_too_large(void **state)
{
	(void)state;
	server_start();
	char *big = malloc(20000);
	int n = snprintf(big, 20000, "GET /x HTTP/1.1\r\nHost: x\r\nX-Big: ");
	memset(big + n, 'b', 10000);
	strcpy(big + n + 10000, "\r\n\r\n");
	client_send(big);
	free(big);
	resp_t r = {0};
	expect_response(&r, 431);
	assert_non_null(strstr(r.body, "\"status\":431"));
	assert_true(has_header(&r, "\r\nConnection: close\r\n"));
	assert_true(wait_eof(cli));
	assert_int_equal(dispatched, 0);
	free(r.body);
}

static void test_pipelined_in_order(void **state)
{
	(void)state;
	server_start();
	/* A large response in the middle exercises the direct-send path and the
	 * output high-water mark (2 MiB > HTTP_OUT_HIGH). */
	client_send("GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
	            "POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
	            "GET /big?2097152 HTTP/1.1\r\nHost: x\r\n\r\n"
	            "GET /big?100000 HTTP/1.1\r\nHost: x\r\n\r\n"
	            "HEAD /four HTTP/1.1\r\nHost: x\r\n\r\n"
	            "GET /five HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_t r = {0};
	expect_response(&r, 200);
	assert_non_null(strstr(r.body, " /one "));
	expect_response(&r, 200);
	assert_non_null(strstr(r.body, " /two "));
	assert_string_equal(strchr(r.body, '\n') + 1, "abc");
	expect_response(&r, 200);
	assert_int_equal(r.body_len, 2097152);
	assert_int_equal(r.body[36 * 1000 + 5], 'f');
	expect_response(&r, 200);
	assert_int_equal(r.body_len, 100000);
	assert_int_equal(read_response_fd(cli, &r, true), 0);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "\r\nContent-Length: "));
	expect_response(&r, 200);
	assert_non_null(strstr(r.body, " /five "));
	assert_int_equal(dispatched, 6);
	free(r.body);
}

static void test_keepalive_vs_close(void **state)
{
	(void)state;
	server_start();
	resp_t r = {0};
	client_send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	expect_response(&r, 200);
	assert_true(has_header(&r, "\r\nConnection: keep-alive\r\n"));
	client_send("GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
	expect_response(&r, 200);
	assert_true(has_header(&r, "\r\nConnection: keep-alive\r\n"));
	/* the request after "close" is ignored */
	client_send("GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	            "GET /d HTTP/1.1\r\nHost: x\r\n\r\n");
	expect_response(&r, 200);
	assert_non_null(strstr(r.body, " /c "));
	assert_true(has_header(&r, "\r\nConnection: close\r\n"));
	assert_true(wait_eof(cli));
	assert_int_equal(clen, 0);
	teardown(NULL);

	server_start();
	client_send("GET /e HTTP/1.0\r\n\r\n");
	expect_response(&r, 200);
	assert_true(has_header(&r, "\r\nConnection: close\r\n"));
	assert_true(wait_eof(cli));
	free(r.body);
}

static void test_options_preflight(void **state)
{
	(void)state;
	server_start();
	client_send("OPTIONS /artemis/api/registry/register.json HTTP/1.1\r\nHost: x\r\n"
	            "Origin: http://a\r\nAccess-Control-Request-Method: POST\r\n"
	            "Access-Control-Request-Headers: content-type,x-y\r\n\r\n");
	resp_t r = {0};
	expect_response(&r, 200);
	assert_int_equal(dispatched, 0);
	assert_int_equal(r.body_len, 0);
	assert_true(has_header(&r, "\r\nAccess-Control-Allow-Methods: POST\r\n"));
	assert_true(has_header(&r, "\r\nAccess-Control-Allow-Headers: content-type,x-y\r\n"));
	assert_true(has_header(&r, "\r\nAccess-Control-Max-Age: 3600\r\n"));
	assert_true(has_header(&r, "\r\nAccess-Control-Allow-Origin: *\r\n"));
	assert_int_equal(observed, 1);
	free(r.body);
}

static void test_malformed(void **state)
{
	(void)state;
	server_start();
	expect_refused("GARBAGE\x01\x02 / HTTP/1.1\r\n\r\n", 400, "\"error\":\"Bad Request\"");
}

/* A request on a connection of its own: the status of the first answer. */
static int status_of(const char *raw, size_t len)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(http_server_add_conn(srv, sv[0], "127.0.0.1"), 0);
	clen = 0;
	ceof = false;
	client_send_fd(sv[1], raw, len);
	resp_t r = {0};
	int st = read_response_fd(sv[1], &r, false) == 0 ? r.status : -1;
	free(r.body);
	close(sv[1]);
	return st;
}

/* Issue 11 item 10: what a lax parser accepts and a proxy may frame
 * differently is refused (request smuggling). */
static void test_strict_framing(void **state)
{
	(void)state;
	static const struct {
		const char *raw;
		int status;
	} cases[] = {
	    /* chunk data without its CRLF */
	    {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
	     400},
	    /* obs-fold */
	    {"GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400},
	    /* whitespace before the colon */
	    {"GET /a HTTP/1.1\r\nHost : x\r\n\r\n", 400},
	    {"GET /a HTTP/1.1\r\nHost\t: x\r\n\r\n", 400},
	    /* HTTP/1.1 without Host, two Hosts */
	    {"GET /a HTTP/1.1\r\n\r\n", 400},
	    {"GET /a HTTP/1.0\r\nHost: x\r\nHost: y\r\n\r\n", 400},
	    /* a request line without a version (HTTP/0.9), or a bad one */
	    {"GET /a\r\n\r\n", 400},
	    {"GET /a HTTP/1\r\nHost: x\r\n\r\n", 400},
	    {"GET /a HTTP/2.0\r\nHost: x\r\n\r\n", 505},
	    {"GET  /a HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	    /* Content-Length and Transfer-Encoding together; lengths that differ */
	    {"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: "
	     "chunked\r\n\r\n0\r\n\r\n",
	     400},
	    {"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
	     400},
	    {"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\nab", 400},
	    {"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\nab", 400},
	    {"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
	    /* invalid chunk sizes */
	    {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
	     "chunked\r\n\r\n-1\r\nab\r\n0\r\n\r\n",
	     400},
	    {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
	     "chunked\r\n\r\n0x2\r\nab\r\n0\r\n\r\n",
	     400},
	    {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2 "
	     "\r\nab\r\n0\r\n\r\n",
	     400},
	    {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\r\nab\r\n0\r\n\r\n",
	     400},
	    {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
	     "chunked\r\n\r\n10000000000000000\r\n",
	     400},
	    /* Transfer-Encoding other than a single chunked */
	    {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
	     400},
	    {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
	     501},
	    {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
	     400},
	    {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
	     "chunked\r\n\r\n0\r\n\r\n",
	     400},
	    {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400},
	    {"POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	    /* bare LF or CR, control characters, an empty field name */
	    {"GET /a HTTP/1.1\nHost: x\n\n", 400},
	    {"GET /a HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", 400},
	    {"GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\x01"
	     "b\r\n\r\n",
	     400},
	    {"GET /a HTTP/1.1\r\nHost: x\r\n: y\r\n\r\n", 400},
	    {"GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	    {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n X: y\r\n\r\n",
	     400},
	    /* and what stays accepted: extensions, trailers, leading empty
	     * lines, HTTP/1.x minor versions, absolute-form targets */
	    {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
	     "chunked\r\n\r\n2;a=b\r\nab\r\n0\r\nX: y\r\n\r\n",
	     200},
	    {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n002 ; "
	     "e\r\nab\r\n0\r\n\r\n",
	     200},
	    {"\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n", 200},
	    {"GET /a HTTP/1.2\r\nHost: x\r\n\r\n", 200},
	    {"GET /a HTTP/1.0\r\n\r\n", 200},
	    {"GET http://x/a HTTP/1.1\r\nHost: x\r\n\r\n", 200},
	};
	server_start();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int st = status_of(cases[i].raw, strlen(cases[i].raw));
		if (st != cases[i].status)
			fail_msg("case %zu (%s): status %d, want %d", i, cases[i].raw, st,
			         cases[i].status);
	}
	/* A refused request is never dispatched, and its connection is closed. */
	dispatched = 0;
	expect_refused("GET /a HTTP/1.1\r\nHost : x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n", 400,
	               "colon");
}

static void test_unsupported_encoding(void **state)
{
	(void)state;
	server_start();
	client_send("POST /x HTTP/1.1\r\nHost: x\r\nContent-Encoding: br\r\n"
	            "Content-Length: 4\r\n\r\nabcd"
	            "GET /y HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_t r = {0};
	expect_response(&r, 415);
	assert_non_null(strstr(r.body, "\"error\":\"Unsupported Media Type\""));
	expect_response(&r, 200);
	assert_non_null(strstr(r.body, " /y "));
	free(r.body);
}

static void test_405_allow_and_defaults(void **state)
{
	(void)state;
	server_start();
	client_send("GET /405 HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_t r = {0};
	expect_response(&r, 405);
	assert_true(has_header(&r, "\r\nAllow: POST\r\n"));
	assert_true(has_header(&r, "\r\nContent-Type: application/json;charset=UTF-8\r\n"));
	assert_non_null(strstr(r.body, "\"error\":\"Method Not Allowed\""));
	free(r.body);
}

/* Extra header lines reach the wire; a 304 has neither a body nor a
 * Content-Length, and the request after it on the connection is answered
 * normally (so the framing held); the next response does not inherit the
 * headers. */
static void test_extra_headers_and_304(void **state)
{
	(void)state;
	server_start();
	client_send("GET /304 HTTP/1.1\r\nHost: x\r\n\r\n"
	            "GET /headers HTTP/1.1\r\nHost: x\r\n\r\n"
	            "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_t r = {0};
	expect_response(&r, 304);
	assert_true(has_header(&r, "\r\nETag: \"abc\"\r\n"));
	assert_true(has_header(&r, "\r\nCache-Control: no-cache\r\n"));
	assert_false(has_header(&r, "\r\nContent-Length:"));
	assert_false(has_header(&r, "\r\nContent-Type:"));
	expect_response(&r, 302);
	assert_true(has_header(&r, "\r\nLocation: /console/\r\n"));
	assert_true(has_header(&r, "\r\nContent-Length: 5\r\n"));
	assert_string_equal(r.body, "moved");
	expect_response(&r, 200);
	assert_false(has_header(&r, "\r\nLocation:"));
	assert_non_null(strstr(r.body, " /plain "));
	free(r.body);
}

static void test_expect_continue(void **state)
{
	(void)state;
	server_start();
	client_send("POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
	            "Content-Length: 2\r\n\r\n");
	resp_t r = {0};
	expect_response(&r, 100);
	client_send("hi");
	expect_response(&r, 200);
	assert_string_equal(strchr(r.body, '\n') + 1, "hi");
	free(r.body);
}

static void test_path_decoding(void **state)
{
	(void)state;
	server_start();
	client_send("GET /a%20b%2Fc%zz%00?x=%20#frag HTTP/1.1\r\nHost: x\r\n\r\n"
	            "GET http://host:1/abs?q=1 HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_t r = {0};
	expect_response(&r, 200);
	assert_non_null(strstr(r.body, " /a b/c%zz%00 q=x=%20 "));
	expect_response(&r, 200);
	assert_non_null(strstr(r.body, " /abs q=q=1 "));
	free(r.body);
}

static void test_idle_timeout(void **state)
{
	(void)state;
	cfg.idle_timeout_ms = 100;
	server_start();
	client_send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_t r = {0};
	expect_response(&r, 200);
	assert_int_equal(http_server_conns(srv), 1);
	assert_true(wait_eof(cli));
	assert_int_equal(http_server_conns(srv), 0);
	free(r.body);
}

/* Run the server's loop for ms milliseconds without reading anything. */
static void run_for(unsigned ms)
{
	uint64_t end = clock_mono_ms() + ms;
	while (clock_mono_ms() < end) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		poll(NULL, 0, 2);
	}
}

static int new_client(void)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(http_server_add_conn(srv, sv[0], "127.0.0.1"), 0);
	return sv[1];
}

/* Send one byte every 10 ms until the server closes (true) or 3 s pass. */
static bool trickle_until_closed(int fd)
{
	uint64_t deadline = clock_mono_ms() + 3000;
	while (!ceof && clock_mono_ms() < deadline) {
		if (send(fd, "x", 1, MSG_NOSIGNAL) < 0 && errno != EAGAIN)
			ceof = true;
		for (int i = 0; i < 10 && !ceof; i++)
			pump_wait(fd);
	}
	return ceof;
}

/* Issue 11 item 5: a client trickling its request head or body in is
 * closed at the deadline, however active it looks to the idle timeout. */
static void test_header_and_body_timeouts(void **state)
{
	(void)state;
	cfg.header_timeout_ms = 100;
	cfg.body_timeout_ms = 150;
	server_start();
	client_send("GET /a HTTP/1.1\r\nHost: x\r\nX-Slow: ");
	assert_true(trickle_until_closed(cli));
	assert_int_equal(dispatched, 0);
	assert_int_equal(http_server_conns(srv), 0);
	teardown(NULL);

	server_start();
	client_send("POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nab");
	assert_true(trickle_until_closed(cli));
	assert_int_equal(dispatched, 0);
	teardown(NULL);

	/* A fresh connection that sends nothing is closed at the header
	 * deadline; one that was served and is idle between requests is not
	 * (the idle timeout is its deadline). */
	server_start();
	int silent = new_client();
	client_send("GET /c HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_t r = {0};
	expect_response(&r, 200);
	assert_true(wait_eof(silent));
	assert_int_equal(http_server_conns(srv), 1);
	ceof = false;
	client_send("GET /d HTTP/1.1\r\nHost: x\r\n\r\n");
	expect_response(&r, 200);
	close(silent);
	free(r.body);
}

/* Issue 11 item 4: a client that never reads is closed after the write
 * timeout, and it is not read from meanwhile (nothing it pipelines is
 * dispatched beyond the back-pressure bound). */
static void test_write_timeout_and_back_pressure(void **state)
{
	(void)state;
	cfg.write_timeout_ms = 200;
	server_start();
	char reqs[64 * 64];
	size_t n = 0;
	for (int i = 0; i < 64; i++)
		n += (size_t)sprintf(reqs + n, "GET /big?400000 HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(send(cli, reqs, n, 0), (ssize_t)n);
	uint64_t deadline = clock_mono_ms() + DEADLINE_MS;
	while (http_server_conns(srv) > 0 && clock_mono_ms() < deadline)
		run_for(10);
	assert_int_equal(http_server_conns(srv), 0);
	/* 1 MiB of unsent output stops the connection after a few answers */
	assert_true(dispatched < 10);
}

/* Over the output budget, a connection with unsent output gets no further
 * answer and one that stopped reading is closed; a connection with none
 * is still served (a health check during the attack). */
static void test_output_budget(void **state)
{
	(void)state;
	cfg.output_budget_bytes = 1u << 20;
	cfg.write_timeout_ms = 600000;
	server_start();
	int hogs[4];
	const char two[] = "GET /big?900000 HTTP/1.1\r\nHost: x\r\n\r\n"
	                   "GET /big?900000 HTTP/1.1\r\nHost: x\r\n\r\n";
	for (int i = 0; i < 4; i++) {
		hogs[i] = new_client();
		assert_int_equal(send(hogs[i], two, sizeof(two) - 1, 0), (ssize_t)sizeof(two) - 1);
	}
	run_for(50);
	/* Under the budget the first hog gets both answers; past it the others
	 * get one each (they had nothing unsent) and their second waits. */
	assert_int_equal(dispatched, 5);
	send_str(cli, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_t r = {0};
	expect_response(&r, 200);
	assert_non_null(strstr(r.body, " /ok "));
	/* the hogs took nothing for HTTP_STALL_MS: closed until under budget */
	uint64_t deadline = clock_mono_ms() + DEADLINE_MS;
	while (http_server_conns(srv) > 1 && clock_mono_ms() < deadline)
		run_for(10);
	assert_true(http_server_conns(srv) < 5);
	for (int i = 0; i < 4; i++)
		close(hogs[i]);
	free(r.body);
}

/* A client pipelining many requests gets HTTP_TURN_REQUESTS answers per
 * turn of the event loop; another client's request is answered in between. */
static void test_turns_between_connections(void **state)
{
	(void)state;
	server_start();
	int hog = new_client();
	char reqs[200 * 40];
	size_t n = 0;
	for (int i = 0; i < 200; i++)
		n += (size_t)sprintf(reqs + n, "GET /p HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(send(hog, reqs, n, 0), (ssize_t)n);
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_true(dispatched > 0 && dispatched < 200);
	send_str(cli, "GET /mark HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_t r = {0};
	expect_response(&r, 200);
	assert_true(mark_at < 100);
	/* and the pipelining client gets all its answers, in order */
	char *all = malloc(1 << 20);
	size_t got = 0;
	uint64_t deadline = clock_mono_ms() + DEADLINE_MS;
	while (dispatched < 201 && clock_mono_ms() < deadline) {
		run_for(2);
		ssize_t k = recv(hog, all + got, (1 << 20) - got, MSG_DONTWAIT);
		if (k > 0)
			got += (size_t)k;
	}
	assert_int_equal(dispatched, 201);
	close(hog);
	free(all);
	free(r.body);
}

static void test_drain(void **state)
{
	(void)state;
	server_start();
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(http_server_add_conn(srv, sv[0], "127.0.0.1"), 0);
	int busy = sv[1];
	/* A third connection was just accepted and has sent nothing yet. */
	int fv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fv), 0);
	assert_int_equal(http_server_add_conn(srv, fv[0], "127.0.0.1"), 0);
	/* `cli` served a request and is idle; `busy` has a request half sent */
	client_send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_t first = {0};
	expect_response(&first, 200);
	free(first.body);
	send_str(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n");
	pump(busy);
	assert_int_equal(http_server_conns(srv), 3);
	http_server_drain(srv);
	assert_true(wait_eof(cli));
	assert_int_equal(http_server_conns(srv), 2);
	/* The fresh connection's first request is served, with close. */
	ceof = false;
	clen = 0;
	send_str(fv[1], "GET /late HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_t late = {0};
	assert_int_equal(read_response_fd(fv[1], &late, false), 0);
	assert_int_equal(late.status, 200);
	assert_true(has_header(&late, "\r\nConnection: close\r\n"));
	free(late.body);
	close(fv[1]);
	assert_int_equal(http_server_conns(srv), 1);
	ceof = false;
	clen = 0;
	send_str(busy, "\r\n");
	resp_t r = {0};
	assert_int_equal(read_response_fd(busy, &r, false), 0);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "\r\nConnection: close\r\n"));
	assert_true(wait_eof(busy));
	assert_int_equal(http_server_conns(srv), 0);
	close(busy);
	free(r.body);
}

static void test_listener_max_connections(void **state)
{
	(void)state;
	cfg.max_connections = 1;
	base = event_base_new();
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	socklen_t sl = sizeof(sa);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 16), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	assert_int_equal(http_server_new(base, &cfg, &handler, lfd, &srv), 0);

	int c1 = socket(AF_INET, SOCK_STREAM, 0), c2 = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(c1, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(connect(c2, (struct sockaddr *)&sa, sizeof(sa)), 0);
	fcntl(c1, F_SETFL, O_NONBLOCK);
	fcntl(c2, F_SETFL, O_NONBLOCK);
	send_str(c1, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n");
	send_str(c2, "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_t r = {0};
	assert_int_equal(read_response_fd(c1, &r, false), 0);
	assert_non_null(strstr(r.body, " /1 "));
	/* c2 waits in the accept queue while c1 is open and has just been
	 * served */
	for (int i = 0; i < 20; i++)
		pump_wait(c2);
	assert_int_equal(clen, 0);
	assert_int_equal(http_server_conns(srv), 1);
	/* Once c1 has waited HTTP_EVICT_MIN_MS for its next request, the
	 * waiting connection takes its place. */
	assert_true(wait_eof(c1));
	ceof = false;
	assert_int_equal(read_response_fd(c2, &r, false), 0);
	assert_non_null(strstr(r.body, " /2 "));
	assert_int_equal(http_server_conns(srv), 1);
	close(c1);
	close(c2);
	http_server_free(srv);
	srv = NULL;
	close(lfd);
	free(r.body);
}

/* A stand-in for the WebSocket module: answer 101 and echo the bytes that
 * followed the request head. */
static bool test_upgrade(const http_upgrade_t *up)
{
	const char *key = http_request_header(up->req, "Sec-WebSocket-Key");
	last_origin_allowed = up->origin_allowed;
	if (!key || strcmp(up->req->path, "/ws") != 0)
		return false;
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "HTTP/1.1 101 Switching Protocols\r\nX-Key: %s\r\n\r\n",
	                 key);
	assert_int_equal(send(up->fd, up->unsent, up->unsent_len, 0), (ssize_t)up->unsent_len);
	assert_int_equal(send(up->fd, msg, (size_t)n, 0), n);
	assert_int_equal(send(up->fd, up->rest, up->rest_len, 0), (ssize_t)up->rest_len);
	taken_fd = up->fd;
	return true;
}

/* [http] cors_origins as a list (issue 12 item 5). */
static void test_cors_origins_list(void **state)
{
	(void)state;
	cfg.cors_origins = "https://a.example, http://b.example:8080";
	server_start();
	resp_t r = {0};
	/* no Origin: not a cross-origin call; no CORS headers */
	client_send("GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
	expect_response(&r, 200);
	assert_false(has_header(&r, "Access-Control-Allow-Origin"));
	assert_true(has_header(&r, "\r\nVary: Origin\r\n"));
	/* a listed origin is echoed (origins compare case-insensitively) */
	client_send("GET /x HTTP/1.1\r\nHost: x\r\nOrigin: HTTP://B.example:8080\r\n\r\n");
	expect_response(&r, 200);
	assert_true(has_header(&r, "\r\nAccess-Control-Allow-Origin: HTTP://B.example:8080\r\n"));
	assert_true(has_header(&r, "\r\nAccess-Control-Allow-Credentials: true\r\n"));
	/* another one is refused before the handler, and the connection stays */
	dispatched = 0;
	client_send("POST /x HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n"
	            "Content-Length: 2\r\n\r\n{}");
	expect_response(&r, 403);
	assert_non_null(strstr(r.body, "Invalid CORS request"));
	assert_false(has_header(&r, "Access-Control-Allow-Origin"));
	assert_int_equal(dispatched, 0);
	/* preflights alike */
	client_send("OPTIONS /x HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\n"
	            "Access-Control-Request-Method: POST\r\n\r\n");
	expect_response(&r, 200);
	assert_true(has_header(&r, "\r\nAccess-Control-Allow-Origin: https://a.example\r\n"));
	client_send("OPTIONS /x HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example.evil\r\n"
	            "Access-Control-Request-Method: POST\r\n\r\n");
	expect_response(&r, 403);
	free(r.body);
}

static void test_upgrade_takeover(void **state)
{
	(void)state;
	http_set_upgrade_handler(test_upgrade);
	server_start();
	client_send("GET /before HTTP/1.1\r\nHost: x\r\n\r\n"
	            "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
	            "Sec-WebSocket-Key: k123\r\n\r\nFRAMES");
	resp_t r = {0};
	expect_response(&r, 200);
	assert_non_null(strstr(r.body, " /before "));
	assert_int_equal(read_response_fd(cli, &r, true), 0);
	assert_int_equal(r.status, 101);
	assert_true(has_header(&r, "\r\nX-Key: k123\r\n"));
	uint64_t deadline = clock_mono_ms() + DEADLINE_MS;
	while (clen < 6 && clock_mono_ms() < deadline)
		pump_wait(cli);
	assert_int_equal(clen, 6);
	assert_memory_equal(cbuf, "FRAMES", 6);
	assert_int_equal(http_server_conns(srv), 0); /* the transport let go */
	assert_true(taken_fd >= 0);
	close(taken_fd);
	taken_fd = -1;
	/* a declined upgrade is answered as plain HTTP, then closed */
	teardown(NULL);
	server_start();
	client_send(
	    "GET /other HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n");
	expect_response(&r, 200);
	assert_true(has_header(&r, "\r\nConnection: close\r\n"));
	assert_true(wait_eof(cli));
	/* the hook learns whether the Origin passes cors_origins */
	teardown(NULL);
	cfg.cors_origins = "https://a.example";
	server_start();
	const char *ws = "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
	                 "Upgrade: websocket\r\nSec-WebSocket-Key: k\r\nOrigin: %s\r\n\r\n";
	const char *origins[] = {"https://a.example", "https://evil.example"};
	for (int i = 0; i < 2; i++) {
		char req[512];
		snprintf(req, sizeof(req), ws, origins[i]);
		taken_fd = -1;
		client_send(req);
		assert_int_equal(read_response_fd(cli, &r, true), 0);
		assert_int_equal(r.status, 101);
		assert_int_equal(last_origin_allowed, i == 0);
		close(taken_fd);
		teardown(NULL);
		server_start();
	}
	http_set_upgrade_handler(NULL);
	free(r.body);
}

static void test_inflate_unit(void **state)
{
	(void)state;
	enum http_body_coding cd;
	assert_int_equal(http_body_coding_parse(" GZIP ", &cd), 0);
	assert_int_equal(cd, HTTP_CODING_GZIP);
	assert_int_equal(http_body_coding_parse("identity", &cd), 0);
	assert_int_equal(cd, HTTP_CODING_IDENTITY);
	assert_int_equal(http_body_coding_parse("br", &cd), -ENOTSUP);

	/* two gzip members, fed one byte at a time */
	unsigned char gz[1024];
	size_t a = gzip_bytes("hello ", 6, gz, sizeof(gz));
	size_t b = gzip_bytes("world", 5, gz + a, sizeof(gz) - a);
	http_inflate_t z = {0};
	buf_t out = {0};
	assert_int_equal(http_inflate_start(&z, HTTP_CODING_GZIP), 0);
	for (size_t i = 0; i < a + b; i++)
		assert_int_equal(http_inflate_feed(&z, gz + i, 1, &out, 100), 0);
	assert_int_equal(http_inflate_finish(&z), 0);
	assert_int_equal(out.len, 11);
	assert_memory_equal(out.data, "hello world", 11);
	/* exactly at the limit is fine, one byte more is not */
	out.len = 0;
	assert_int_equal(http_inflate_start(&z, HTTP_CODING_GZIP), 0);
	assert_int_equal(http_inflate_feed(&z, gz, a, &out, 6), 0);
	assert_int_equal(http_inflate_finish(&z), 0);
	out.len = 0;
	assert_int_equal(http_inflate_start(&z, HTTP_CODING_GZIP), 0);
	assert_int_equal(http_inflate_feed(&z, gz, a, &out, 5), -E2BIG);
	/* empty body is not a gzip stream */
	assert_int_equal(http_inflate_start(&z, HTTP_CODING_GZIP), 0);
	assert_int_equal(http_inflate_finish(&z), -EBADMSG);
	http_inflate_free(&z);
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_plain_post, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chunked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_gzip_content_length, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_gzip_chunked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_gzip_truncated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_gzip_bomb, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_body_too_large, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chunked_too_large, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_header_too_large, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pipelined_in_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keepalive_vs_close, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_options_preflight, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_strict_framing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unsupported_encoding, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_405_allow_and_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_extra_headers_and_304, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expect_continue, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_path_decoding, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_header_and_body_timeouts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_timeout_and_back_pressure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_output_budget, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_turns_between_connections, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_listener_max_connections, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cors_origins_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upgrade_takeover, setup, teardown),
	    cmocka_unit_test(test_inflate_unit),
	};
	log_set_level(LOG_WARN); /* the transport logs each refusal at INFO */
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(cbuf);
	return rc;
}

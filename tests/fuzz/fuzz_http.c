/*
 * fuzz_http.c - libFuzzer target for request decoding (worker/http_parse.c,
 * worker/http_io.c, worker/http_response.c, worker/http_body.c): the strict
 * HTTP parser (framing errors, obs-fold, Host, chunk sizes and trailers),
 * header handling, chunked bodies, gzip/deflate inflation, limits,
 * pipelining and the error responses.
 *
 * Each input is one connection's byte stream, fed to a socket-less
 * connection (http_conn_feed).  The first byte picks how the stream is cut
 * into reads (0: one read; n: pieces of n bytes), since the parser keeps
 * state across reads at every byte.  Limits are small so that 413 and 431
 * paths are reached quickly.  The dispatch function reads every byte of the
 * decoded request and answers with a body of varying size.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../worker/http_conn.h"

#include "artemis/log.h"

static struct event_base *base;
static http_server_t *srv;
static http_limits_t cfg;

static void fuzz_dispatch(void *ctx, const http_request_t *req, http_response_t *res)
{
	(void)ctx;
	unsigned sum = 0;
	for (size_t i = 0; i < req->body_len; i++)
		sum += (unsigned char)req->body[i];
	sum += (unsigned)strlen(req->path) + (unsigned)strlen(req->query) +
	       (unsigned)strlen(req->content_type);
	const char *h = http_request_header(req, "X-Fuzz");
	if (h)
		sum += (unsigned)strlen(h);
	if (req->path_len > 1 && req->path[1] == 'e') {
		res->allow = "POST";
		http_res_error(res, req, 405, req->path);
		return;
	}
	http_res_printf(res, "{\"sum\":%u,\"len\":%zu}", sum, req->body_len);
	if (req->path_len > 1 && req->path[1] == 'b')
		for (unsigned i = 0; i < (sum & 0xffff); i++)
			http_res_append(res, "x", 1);
}

static void fuzz_observe(void *ctx, const http_request_t *req, int status, uint64_t latency_us)
{
	(void)ctx;
	(void)req;
	(void)status;
	(void)latency_us;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!base) {
		log_set_level(LOG_ERROR);
		memset(&cfg, 0, sizeof(cfg));
		cfg.max_header_bytes = 4096;
		cfg.max_body_bytes = 65536;
		cfg.idle_timeout_ms = 0;
		cfg.max_connections = 0;
		base = event_base_new();
		const http_handler_t handler = {fuzz_dispatch, fuzz_observe, NULL};
		if (!base || http_server_new(base, &cfg, &handler, -1, &srv) != 0)
			return 0;
	}
	if (size == 0)
		return 0;
	size_t step = data[0] ? data[0] : size;
	data++;
	size--;
	http_conn_t *c = http_conn_new_detached(srv);
	if (!c)
		return 0;
	for (size_t off = 0; off < size;) {
		size_t n = size - off < step ? size - off : step;
		if (http_conn_feed(c, data + off, n) != 0)
			break;
		off += n;
	}
	http_conn_free(c);
	return 0;
}

/*
 * http_response.c - responses to bytes: the handlers' helpers of http.h,
 * the status line and headers every answer carries (CORS included), the
 * CORS preflight, and http__respond(), which answers one complete request
 * by the transport's own error, a preflight, or the injected handler.
 *
 * Called by http_io.c once per complete request, and by handlers through
 * http.h.  Output is appended to the connection's output buffer; a large
 * body is handed to the socket straight from the response buffer and only
 * what the socket does not take is copied.
 *
 * Must not: block, or log other than the transport's refusals (once each,
 * rate-limited by http__log_event).
 */
#include "http_int.h"

/* libhttp-parser names the status reasons; its `enum http_method` clashes
 * with http.h's, so its tag is renamed here. */
#define http_method http_parser_method
#include <http_parser.h>
#undef http_method

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "artemis/clock.h"
#include "artemis/codec.h"

/* Drop a buffer that grew beyond `keep` for one request, so idle
 * connections stay small; otherwise just empty it. */
void http__buf_recycle(buf_t *b, size_t keep)
{
	if (b->cap > keep)
		buf_free(b);
	buf_reset(b);
}

static const char *status_reason(int status)
{
	const char *r = http_status_str((enum http_status)status);
	return strcmp(r, "<unknown>") == 0 ? "Unknown" : r;
}

/* ---- Helpers for handlers (http.h) -------------------------------------- */

int http_res_append(http_response_t *res, const void *p, size_t n)
{
	return buf_append(&res->body, p, n);
}

int http_res_printf(http_response_t *res, const char *fmt, ...)
{
	va_list ap;
	size_t room = res->body.cap - res->body.len;
	va_start(ap, fmt);
	int n = vsnprintf(room ? res->body.data + res->body.len : NULL, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= room) {
		if (buf_reserve(&res->body, (size_t)n + 1) != 0)
			return -ENOMEM;
		va_start(ap, fmt);
		vsnprintf(res->body.data + res->body.len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	res->body.len += (size_t)n;
	return 0;
}

void http_res_error(http_response_t *res, const http_request_t *req, int status,
                    const char *message)
{
	const char *path = req && req->path ? req->path : "";
	buf_t *b = &res->body;
	res->status = status;
	res->content_type = NULL;
	buf_reset(b);
	/* A failed append leaves a short body; the status line still tells. */
	buf_printf(b, "{\"timestamp\":%llu,\"status\":%d,\"error\":",
	           (unsigned long long)clock_wall_ms(), status);
	json_put_str(b, status_reason(status), strlen(status_reason(status)));
	buf_puts(b, ",\"message\":");
	json_put_str(b, message ? message : "", message ? strlen(message) : 0);
	buf_puts(b, ",\"path\":");
	json_put_str(b, path, strlen(path));
	buf_puts(b, "}");
}

/* ---- Status line and headers -------------------------------------------- */

static const char cors_any[] = "Access-Control-Allow-Origin: *\r\n"
                               "Access-Control-Expose-Headers: *\r\n"
                               "Access-Control-Allow-Credentials: true\r\n";

bool http_origin_listed(const char *list, const char *origin)
{
	size_t len = strlen(origin);
	for (const char *p = list + strspn(list, " \t,"); *p;) {
		size_t n = strcspn(p, " \t,");
		if (n == len && strncasecmp(p, origin, n) == 0)
			return true;
		p += n;
		p += strspn(p, " \t,");
	}
	return false;
}

bool http__origin_allowed(const http_conn_t *c)
{
	const char *list = c->srv->cors;
	if (!list)
		return true;
	const char *origin = http_request_header(&c->msg.req, "Origin");
	if (!origin)
		return true; /* not a browser's cross-origin call */
	return http_origin_listed(list, origin);
}

/* CORS (API.md §0, issue 12 item 5).  With cors_origins "*", the three
 * headers Java's filter sets, on every response.  With a list, an allowed
 * Origin is echoed (a listed one: the value is one of ours), and every
 * answer says it varies by Origin. */
static void out_cors(const http_conn_t *c, buf_t *o)
{
	if (!c->srv->cors) {
		BUF_LIT(o, cors_any);
		return;
	}
	const char *origin = http_request_header(&c->msg.req, "Origin");
	if (origin && http__origin_allowed(c))
		buf_printf(o,
		           "Access-Control-Allow-Origin: %s\r\nAccess-Control-Expose-Headers: *\r\n"
		           "Access-Control-Allow-Credentials: true\r\n",
		           origin);
	BUF_LIT(o, "Vary: Origin\r\n");
}

/* Status line and the headers every response has, without the final CRLF. */
static void out_head(const http_conn_t *c, buf_t *o, int status, const char *ct, size_t body_len,
                     bool keep)
{
	if (status == 200)
		BUF_LIT(o, "HTTP/1.1 200 OK\r\n");
	else
		buf_printf(o, "HTTP/1.1 %d %s\r\n", status, status_reason(status));
	if (ct)
		buf_printf(o, "Content-Type: %s\r\n", ct);
	/* A 304 has no body and announces no length (RFC 9110 §15.4.5). */
	if (status != 304)
		buf_printf(o, "Content-Length: %zu\r\n", body_len);
	out_cors(c, o);
	if (keep)
		BUF_LIT(o, "Connection: keep-alive\r\n");
	else
		BUF_LIT(o, "Connection: close\r\n");
}

int http__queue_continue(http_conn_t *c)
{
	return BUF_LIT(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
}

/* CORS preflight (API.md §0): 200, echoing what was asked for. */
static int queue_preflight(http_conn_t *c, bool keep)
{
	const http_request_t *req = &c->msg.req;
	const char *m = http_request_header(req, "Access-Control-Request-Method");
	const char *h = http_request_header(req, "Access-Control-Request-Headers");
	buf_t *o = &c->out;
	out_head(c, o, 200, NULL, 0, keep);
	buf_printf(o, "Access-Control-Allow-Methods: %s\r\n",
	           m && *m ? m : "GET, POST, PUT, DELETE, HEAD, OPTIONS");
	if (h && *h)
		buf_printf(o, "Access-Control-Allow-Headers: %s\r\n", h);
	BUF_LIT(o, "Access-Control-Max-Age: 3600\r\n\r\n");
	return buf_error(o);
}

static int queue_res(http_conn_t *c, const http_response_t *res, bool keep)
{
	int status = res->status >= 100 && res->status <= 999 ? res->status : 500;
	const char *ct = res->content_type ? res->content_type : HTTP_DEFAULT_CT;
	buf_t *o = &c->out;
	out_head(c, o, status, status == 304 ? NULL : ct, res->body.len, keep);
	if (status == 405 && res->allow)
		buf_printf(o, "Allow: %s\r\n", res->allow);
	if (res->headers)
		buf_puts(o, res->headers);
	BUF_LIT(o, "\r\n");
	if (buf_error(o))
		return buf_error(o);
	if (c->head_only || res->body.len == 0)
		return 0;
	if (res->body.len <= HTTP_COPY_BODY_MAX || c->fd < 0)
		return buf_append(o, res->body.data, res->body.len);
	int rc = http__conn_send(c, res->body.data, res->body.len);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0)
		c->close_after = true; /* the next send reports the error again */
	return 0;
}

/* ---- Answering a request ------------------------------------------------ */

/* The last line of defence of [http] max_response_bytes (issue 11 item 3):
 * a handler's answer beyond it is not sent (handlers that can build large
 * answers stop before, with an answer of their own). */
static void check_size(http_conn_t *c, http_response_t *res)
{
	size_t len = res->body.len;
	if (!res->max_body || len <= res->max_body)
		return;
	char msg[160];
	snprintf(msg, sizeof(msg),
	         "The response (%zu bytes) is larger than [http] max_response_bytes (%zu bytes)",
	         len, res->max_body);
	http__log_event(c->srv, "%s: %s %s: 500 %s", c->peer_ip, http__method_name(&c->msg),
	                c->msg.req.path, msg);
	http__buf_recycle(&res->body, HTTP_KEEP_RES);
	http_res_error(res, &c->msg.req, 500, msg);
}

int http__respond(http_conn_t *c, bool keep)
{
	http_server_t *s = c->srv;
	http_request_t *req = &c->msg.req;
	http_response_t *res = &s->res;
	int rc;
	res->status = 200;
	res->content_type = NULL;
	res->allow = NULL;
	res->headers = NULL;
	res->max_body = s->lim.max_response_bytes;
	buf_reset(&res->body);
	if (!c->err_status && !http__origin_allowed(c)) {
		c->err_status = 403; /* as Spring's CorsFilter: never reaches a handler */
		c->err_msg = "Invalid CORS request";
	}
	if (c->err_status) {
		c->linger |= c->err_fatal;
		http__log_event(s, "%s: %s %s: %d %s", c->peer_ip, http__method_name(&c->msg),
		                *req->path ? req->path : "-", c->err_status, c->err_msg);
		http_res_error(res, req, c->err_status, c->err_msg);
		rc = queue_res(c, res, keep);
	} else if (req->method == HTTP_M_OPTIONS) {
		rc = queue_preflight(c, keep);
	} else {
		if (req->method == HTTP_M_HEAD)
			req->method = HTTP_M_GET;
		s->handler.dispatch(s->handler.ctx, req, res);
		if (c->head_only)
			req->method = HTTP_M_HEAD;
		check_size(c, res);
		rc = queue_res(c, res, keep);
	}
	if (s->handler.observe)
		s->handler.observe(s->handler.ctx, req, c->err_status ? c->err_status : res->status,
		                   (clock_mono_ns() - c->t_start_ns) / 1000u);
	c->turn_reqs++;
	c->turn_bytes += res->body.len;
	http__buf_recycle(&res->body, HTTP_KEEP_RES);
	c->served++;
	return rc;
}

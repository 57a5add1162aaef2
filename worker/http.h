/*
 * http.h - worker-internal contract between the HTTP transport (http_*.c) and
 * the API handlers (api*.c).
 *
 * The transport (http_*.c, see http_int.h) owns connections: accept,
 * parsing, keep-alive and pipelining, de-chunking and gunzip of request
 * bodies, limits (413, 431, timeouts, max connections), CORS headers and
 * OPTIONS, and writing the response.  It calls the handler it was given
 * (worker.c gives api_dispatch) once per complete request with the body
 * fully decoded.  Handlers never see sockets.
 */
#ifndef ARTEMIS_WORKER_HTTP_H
#define ARTEMIS_WORKER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "artemis/shm.h"

enum http_method {
	HTTP_M_OTHER = 0,
	HTTP_M_GET,
	HTTP_M_POST,
	HTTP_M_HEAD,
	HTTP_M_OPTIONS,
	HTTP_M_PUT,
	HTTP_M_DELETE,
	HTTP_M_PATCH
};

typedef struct {
	enum http_method method;
	const char *path; /* decoded path, NUL-terminated, no query */
	size_t path_len;
	const char *query; /* raw query string after '?', NUL-terminated, or "" */
	const char *body;  /* decoded body (de-chunked, gunzipped), NUL-terminated */
	size_t body_len;
	const char *content_type; /* "" when absent */
	bool body_was_gzip;
	const char *peer_ip; /* textual client address */
} http_request_t;

typedef struct {
	int status;               /* 200 default */
	const char *content_type; /* NULL: "application/json;charset=UTF-8" */
	buf_t body;               /* owned by the transport, reused across requests */
	const char *allow;        /* Allow header for 405, or NULL */
	const char *headers;      /* more header lines, each ending "\r\n", or NULL;
	                           * read once the handler returns */
	size_t max_body;          /* [http] max_response_bytes (0: no limit): a body
	                           * beyond it is replaced by a 500 error; a handler
	                           * that builds a large answer stops there itself */
} http_response_t;

/* A request header's value (NUL-terminated, surrounding blanks removed) by
 * case-insensitive name, or NULL when absent.  Valid during dispatch. */
const char *http_request_header(const http_request_t *req, const char *name);

/* Is `origin` one of `list` ([http] cors_origins: origins separated by
 * blanks or commas; case-insensitive, whole entries)?  "*" is not read as
 * a wildcard here: callers decide what it means. */
bool http_origin_listed(const char *list, const char *origin);

/* Helpers for handlers. */
int http_res_append(http_response_t *res, const void *p, size_t n);
int http_res_printf(http_response_t *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Spring Boot style error body {timestamp,status,error,message,path}. */
void http_res_error(http_response_t *res, const http_request_t *req, int status,
                    const char *message);

#endif

/*
 * http.h - worker-internal contract between the HTTP transport (http.c) and
 * the API handlers (api*.c).
 *
 * http.c owns connections: accept, parse (libhttp-parser), keep-alive and
 * pipelining, de-chunking and gunzip of request bodies, limits (413, 431,
 * idle timeout, max connections), CORS headers and OPTIONS, and writing the
 * response.  It calls api_dispatch() once per complete request with the body
 * fully decoded.  Handlers never see sockets.
 */
#ifndef ARTEMIS_WORKER_HTTP_H
#define ARTEMIS_WORKER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "artemis/shm.h"

enum http_method { HTTP_M_OTHER = 0, HTTP_M_GET, HTTP_M_POST, HTTP_M_HEAD, HTTP_M_OPTIONS,
		   HTTP_M_PUT, HTTP_M_DELETE, HTTP_M_PATCH };

typedef struct {
	enum http_method method;
	const char *path;          /* decoded path, NUL-terminated, no query */
	size_t path_len;
	const char *query;         /* raw query string after '?', NUL-terminated, or "" */
	const char *body;          /* decoded body (de-chunked, gunzipped), NUL-terminated */
	size_t body_len;
	const char *content_type;  /* "" when absent */
	bool body_was_gzip;
	const char *peer_ip;       /* textual client address */
} http_request_t;

typedef struct {
	int status;                /* 200 default */
	const char *content_type;  /* NULL: "application/json;charset=UTF-8" */
	buf_t body;            /* owned by the connection, reused across requests */
	const char *allow;         /* Allow header for 405, or NULL */
} http_response_t;

/* Implemented by the API layer (api.c): route and run one request.
 * HEAD requests arrive as HTTP_M_GET (the transport drops the body, as
 * Spring does); OPTIONS requests never arrive (CORS preflight, http.c). */
void api_dispatch(const http_request_t *req, http_response_t *res);

/* Implemented by the API layer (metrics.c): called once per response after
 * it is queued, including the transport's own error responses and OPTIONS;
 * latency_us runs from the first byte of the request to the queued
 * response. */
void api_observe(const http_request_t *req, int status, uint64_t latency_us);

/* A request header's value (NUL-terminated, surrounding blanks removed) by
 * case-insensitive name, or NULL when absent.  Valid during api_dispatch. */
const char *http_request_header(const http_request_t *req, const char *name);

/* Helpers for handlers. */
int http_res_append(http_response_t *res, const void *p, size_t n);
int http_res_printf(http_response_t *res, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Spring Boot style error body {timestamp,status,error,message,path}. */
void http_res_error(http_response_t *res, const http_request_t *req, int status,
		    const char *message);

#endif

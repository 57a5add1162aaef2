/*
 * static.h - worker-internal: the web console's files (static.c).
 *
 * api_dispatch() asks static_match() first; a path it claims is answered by
 * static_serve() and never reaches the API route table.
 */
#ifndef ARTEMIS_WORKER_STATIC_H
#define ARTEMIS_WORKER_STATIC_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/* True for the console's paths ("/", "/console" and everything under
 * "/console/") while [http] console is on. */
bool static_match(const char *path, size_t len);

/* Answer one request for a path static_match() claimed: a file, 304, a
 * redirect, 404 or 405.  The first call in a process reads the files. */
void static_serve(const http_request_t *req, http_response_t *res);

/* Forget the files read (tests; the next request reads them again). */
void static_reset(void);

#endif

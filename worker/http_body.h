/*
 * http_body.h - streaming decompression of request bodies (http_body.c),
 * used by the HTTP transport (http_io.c) for Content-Encoding: gzip / deflate.
 *
 * De-chunking is done by the parser (http_parse.c) before the bytes get
 * here; this module only inflates.  One decoder lives in each connection and is reset
 * per request, so zlib's state and window are allocated once per connection,
 * not per request.
 */
#ifndef ARTEMIS_WORKER_HTTP_BODY_H
#define ARTEMIS_WORKER_HTTP_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <zlib.h>

#include "artemis/shm.h"

enum http_body_coding { HTTP_CODING_IDENTITY = 0, HTTP_CODING_GZIP, HTTP_CODING_DEFLATE };

typedef struct {
	z_stream zs;
	bool init;    /* inflateInit2 done (zs owns memory) */
	bool ended;   /* the last member reached Z_STREAM_END */
	bool started; /* at least one byte fed since the reset */
	int wbits;
} http_inflate_t;

/* Parse a Content-Encoding value.  Returns 0 and the coding, or -ENOTSUP
 * for a coding this server cannot decode (the caller answers 415). */
int http_body_coding_parse(const char *value, enum http_body_coding *out);

/* Prepare for a new body in `coding` (not identity).  0 or -ENOMEM. */
int http_inflate_start(http_inflate_t *z, enum http_body_coding coding);

/* Inflate n compressed bytes, appending to out.  Output beyond max_out bytes
 * in total is refused with -E2BIG (the zip bomb case: 413); corrupt input is
 * -EBADMSG; allocation failure -ENOMEM. */
int http_inflate_feed(http_inflate_t *z, const void *in, size_t n, buf_t *out, size_t max_out);

/* The body is complete: 0 when the compressed stream ended properly,
 * -EBADMSG when it was truncated (or empty). */
int http_inflate_finish(const http_inflate_t *z);

void http_inflate_free(http_inflate_t *z);

#endif

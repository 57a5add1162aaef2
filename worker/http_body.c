/*
 * http_body.c - streaming inflate of request bodies (see http_body.h).
 *
 * Called by http_io.c as the parser (http_parse.c) reports body bytes, so
 * the input arrives in arbitrary pieces.  The output limit is enforced while inflating:
 * a small compressed body that expands beyond max_body_bytes is stopped at
 * max_out + 1 bytes of output, never inflated in full.  Gzip bodies may hold
 * several members (RFC 1952 §2.2); each one is decoded in turn.
 */
#include "http_body.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#define INFLATE_STEP 16384

static bool coding_is(const char *v, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(v, name, n) == 0;
}

int http_body_coding_parse(const char *value, enum http_body_coding *out)
{
	while (*value == ' ' || *value == '\t')
		value++;
	size_t n = strlen(value);
	while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		n--;
	if (n == 0 || coding_is(value, n, "identity")) {
		*out = HTTP_CODING_IDENTITY;
		return 0;
	}
	if (coding_is(value, n, "gzip") || coding_is(value, n, "x-gzip")) {
		*out = HTTP_CODING_GZIP;
		return 0;
	}
	if (coding_is(value, n, "deflate")) {
		*out = HTTP_CODING_DEFLATE;
		return 0;
	}
	return -ENOTSUP;
}

int http_inflate_start(http_inflate_t *z, enum http_body_coding coding)
{
	/* gzip: header and trailer checked (16 + 15); deflate: the zlib wrapper. */
	int wbits = coding == HTTP_CODING_GZIP ? 16 + 15 : 15;
	z->ended = false;
	z->started = false;
	if (!z->init) {
		memset(&z->zs, 0, sizeof(z->zs));
		if (inflateInit2(&z->zs, wbits) != Z_OK)
			return -ENOMEM;
		z->init = true;
		z->wbits = wbits;
		return 0;
	}
	if (inflateReset2(&z->zs, wbits) != Z_OK)
		return -ENOMEM;
	z->wbits = wbits;
	return 0;
}

/* Room for the next inflate step, never more than the limit allows + 1 byte
 * (that byte is how an over-limit body is detected). */
static int inflate_reserve(buf_t *out, size_t max_out, size_t *room)
{
	if (out->len > max_out)
		return -E2BIG;
	size_t allowed = max_out + 1 - out->len;
	size_t want = out->cap > out->len ? out->cap - out->len : 0;
	if (want == 0) {
		want = allowed < INFLATE_STEP ? allowed : INFLATE_STEP;
		if (out->len > want && out->len < allowed)
			want = out->len; /* grow geometrically for large bodies */
		if (buf_reserve(out, want) != 0)
			return -ENOMEM;
	}
	*room = out->cap - out->len;
	if (*room > allowed)
		*room = allowed;
	return 0;
}

int http_inflate_feed(http_inflate_t *z, const void *in, size_t n, buf_t *out, size_t max_out)
{
	z->zs.next_in = (Bytef *)(uintptr_t)in;
	z->zs.avail_in = (uInt)n;
	if (n > 0)
		z->started = true;
	bool full = false; /* the last step filled its room: zlib may hold more */
	while (z->zs.avail_in > 0 || (full && !z->ended)) {
		if (z->ended) {
			/* Another gzip member follows; a zlib stream has only one. */
			if (z->wbits != 16 + 15 || inflateReset(&z->zs) != Z_OK)
				return -EBADMSG;
			z->ended = false;
		}
		size_t room;
		int rc = inflate_reserve(out, max_out, &room);
		if (rc < 0)
			return rc;
		z->zs.next_out = (Bytef *)out->data + out->len;
		z->zs.avail_out = (uInt)room;
		uInt in_before = z->zs.avail_in;
		int zr = inflate(&z->zs, Z_NO_FLUSH);
		size_t produced = room - z->zs.avail_out;
		out->len += produced;
		full = z->zs.avail_out == 0;
		if (out->len > max_out)
			return -E2BIG;
		if (zr == Z_STREAM_END) {
			z->ended = true;
			continue;
		}
		if (zr == Z_MEM_ERROR)
			return -ENOMEM;
		if (zr != Z_OK && zr != Z_BUF_ERROR)
			return -EBADMSG;
		if (produced == 0 && z->zs.avail_in == in_before) {
			if (in_before == 0)
				break;   /* everything flushed; wait for more input */
			return -EBADMSG; /* input that cannot make progress */
		}
	}
	return 0;
}

int http_inflate_finish(const http_inflate_t *z)
{
	return z->started && z->ended ? 0 : -EBADMSG;
}

void http_inflate_free(http_inflate_t *z)
{
	if (z->init)
		inflateEnd(&z->zs);
	z->init = false;
}

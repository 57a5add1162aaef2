/*
 * json_out.c - the Java-shaped JSON writer: strings escaped as Jackson
 * writes them, numbers, jansson values re-encoded, and the responseStatus
 * envelope.  Writers append to a buf_t (whose error is sticky), so callers
 * may append freely and check the buffer once.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_int.h"

/* ---- Output ----------------------------------------------------------- */

int json_put_raw(buf_t *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int json_put_str(buf_t *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = 0;
	int rc;

	if (s == NULL)
		return buf_append(b, "null", 4);
	rc = buf_reserve(b, len + 2);
	if (rc < 0)
		return rc;
	b->data[b->len++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6];
		size_t n = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		if ((rc = buf_append(b, s + start, i - start)) < 0)
			return rc;
		esc[0] = '\\';
		switch (c) {
		case '"':
			esc[1] = '"';
			break;
		case '\\':
			esc[1] = '\\';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		if ((rc = buf_append(b, esc, n)) < 0)
			return rc;
		start = i + 1;
	}
	if ((rc = buf_append(b, s + start, len - start)) < 0)
		return rc;
	return buf_append(b, "\"", 1);
}

int json_put_cstr(buf_t *b, const char *s)
{
	return json_put_str(b, s, s ? strlen(s) : 0);
}

int json_put_u64(buf_t *b, uint64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);

	return buf_append(b, tmp, (size_t)n);
}

int json_put_i64(buf_t *b, int64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);

	return buf_append(b, tmp, (size_t)n);
}

int json_put_bool(buf_t *b, bool v)
{
	return v ? buf_append(b, "true", 4) : buf_append(b, "false", 5);
}

int json_put_value(buf_t *b, const json_t *v)
{
	const char *key;
	json_t *m;
	char scratch[64];
	shm_str_t s;
	size_t i;
	int rc;
	bool first = true;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		buf_append(b, "{", 1);
		json_object_foreach((json_t *)v, key, m)
		{
			if (!first)
				buf_append(b, ",", 1);
			json_put_str(b, key, strlen(key));
			buf_append(b, ":", 1);
			if ((rc = json_put_value(b, m)) < 0)
				return rc;
			first = false;
		}
		buf_append(b, "}", 1);
		return buf_error(b);
	case JSON_ARRAY:
		buf_append(b, "[", 1);
		json_array_foreach((json_t *)v, i, m)
		{
			if (i > 0)
				buf_append(b, ",", 1);
			if ((rc = json_put_value(b, m)) < 0)
				return rc;
		}
		buf_append(b, "]", 1);
		return buf_error(b);
	case JSON_STRING:
		return json_put_str(b, json_string_value(v), json_string_length(v));
	case JSON_NULL:
		return buf_append(b, "null", 4);
	default:
		if (json_to_str(v, &s, scratch, sizeof(scratch)) < 0)
			return -EINVAL;
		return buf_append(b, s.ptr, s.len);
	}
}

int json_put_status(buf_t *b, const char *status, const char *code, const char *message)
{
	json_put_raw(b, "{\"errorCode\":");
	json_put_cstr(b, code);
	json_put_raw(b, ",\"message\":");
	json_put_cstr(b, message);
	json_put_raw(b, ",\"status\":");
	json_put_cstr(b, status);
	json_put_raw(b, "}");
	return buf_error(b);
}

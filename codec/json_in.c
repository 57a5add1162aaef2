/*
 * json_in.c - lenient JSON input on jansson: request bodies, and object keys
 * matched as Jackson does for Java Artemis (case-insensitively; for the
 * older snake_case clients, ignoring underscores).  Unknown keys are
 * ignored, scalars coerce to strings, null means absent.
 *
 * Called by every API handler, the replicator's decoders and the fuzz
 * targets.  Nothing here touches the registry or the network.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_int.h"

/* ---- Input ------------------------------------------------------------ */

int json_parse_body(const char *body, size_t len, json_t **out, char *err, size_t err_len)
{
	json_error_t jerr;
	size_t i = 0;

	while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
		i++;
	if (i == len) {
		/* No body at all: Spring would say "Required request body is
		 * missing" (400). */
		snprintf(err, err_len, "Required request body is missing");
		return -EINVAL;
	}
	*out = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);
	if (*out == NULL) {
		snprintf(err, err_len, "JSON parse error: %s (line %d, column %d)", jerr.text,
		         jerr.line, jerr.column);
		return -EINVAL;
	}
	return 0;
}

bool json_canon_key(const char *key, char *buf, size_t buf_len)
{
	size_t n = 0;

	for (; *key; key++) {
		char c = *key;
		if (c == '_')
			continue;
		if (n + 1 >= buf_len)
			return false;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		buf[n++] = c;
	}
	buf[n] = '\0';
	return true;
}

json_t *json_member(const json_t *obj, const char *canon)
{
	const char *key;
	json_t *v;
	json_t *found = NULL;
	char buf[64];

	if (!json_is_object(obj))
		return NULL;
	json_object_foreach((json_t *)obj, key, v)
	{
		if (json_canon_key(key, buf, sizeof(buf)) && strcmp(buf, canon) == 0)
			found = v;
	}
	return found;
}

shm_str_t json_member_str(const json_t *obj, const char *canon)
{
	json_t *v = json_member(obj, canon);
	shm_str_t s = {NULL, 0};

	if (json_is_string(v)) {
		s.ptr = json_string_value(v);
		s.len = json_string_length(v);
	}
	return s;
}

int json_to_str(const json_t *v, shm_str_t *out, char *scratch, size_t scratch_len)
{
	int n;

	out->ptr = NULL;
	out->len = 0;
	switch (json_typeof(v)) {
	case JSON_NULL:
		return 0;
	case JSON_STRING:
		out->ptr = json_string_value(v);
		out->len = json_string_length(v);
		return 0;
	case JSON_TRUE:
	case JSON_FALSE:
		out->ptr = json_is_true(v) ? "true" : "false";
		out->len = strlen(out->ptr);
		return 0;
	case JSON_INTEGER:
		n = snprintf(scratch, scratch_len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		n = snprintf(scratch, scratch_len, "%.17g", json_real_value(v));
		break;
	default:
		return -EINVAL;
	}
	if (n < 0 || (size_t)n >= scratch_len)
		return -EINVAL;
	out->ptr = scratch;
	out->len = (size_t)n;
	return 0;
}

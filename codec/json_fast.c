/*
 * json_fast.c - scanners for the two hottest request shapes (a registry
 * request's instances, a lookup's discovery configs) that record pointers
 * into the body without allocating.  Anything unusual returns -EAGAIN and
 * the caller takes the jansson path (json_in.c, instance.c), which decides
 * exactly as before; the two paths never disagree (fuzz_json checks it).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_int.h"

/* ---- Heartbeat fast path ------------------------------------------------ */

/*
 * A scanner for the common shape of a registry request: an object whose
 * "instances" is a non-empty array of flat instance objects with plain
 * ASCII strings (no escapes), integer ports and string-valued metadata.
 * It validates what it reads and records pointers into the body, so a
 * heartbeat costs no allocation.  Anything else (escapes, non-ASCII text,
 * coercions, nulls in the array, over-long fields, trailing garbage)
 * returns -EAGAIN and the caller takes the jansson path, which decides
 * exactly as before; the two paths therefore never disagree.
 */
typedef struct {
	const char *p;
	const char *end;
} json__scan_t;

static void json__ws(json__scan_t *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static bool json__lit(json__scan_t *s, char c)
{
	json__ws(s);
	if (s->p < s->end && *s->p == c) {
		s->p++;
		return true;
	}
	return false;
}

static bool json__plain_str(json__scan_t *s, shm_str_t *out)
{
	const char *q;

	json__ws(s);
	if (s->p >= s->end || *s->p != '"')
		return false;
	for (q = s->p + 1; q < s->end; q++) {
		unsigned char c = (unsigned char)*q;
		if (c == '"')
			break;
		if (c == '\\' || c < 0x20 || c >= 0x80)
			return false;
	}
	if (q >= s->end)
		return false;
	out->ptr = s->p + 1;
	out->len = (size_t)(q - s->p - 1);
	s->p = q + 1;
	return true;
}

static bool json__word(json__scan_t *s, const char *w)
{
	size_t n = strlen(w);

	json__ws(s);
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
		return false;
	s->p += n;
	return true;
}

/* A JSON number; *is_int tells whether it had no fraction or exponent. */
static bool json__number(json__scan_t *s, bool *is_int)
{
	const char *p;

	json__ws(s);
	p = s->p;
	*is_int = true;
	if (p < s->end && *p == '-')
		p++;
	if (p >= s->end || *p < '0' || *p > '9')
		return false;
	if (*p == '0')
		p++;
	else
		while (p < s->end && *p >= '0' && *p <= '9')
			p++;
	if (p < s->end && *p == '.') {
		*is_int = false;
		if (++p >= s->end || *p < '0' || *p > '9')
			return false;
		while (p < s->end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < s->end && (*p == 'e' || *p == 'E')) {
		*is_int = false;
		if (++p < s->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= s->end || *p < '0' || *p > '9')
			return false;
		const char *digits = p;
		while (p < s->end && *p >= '0' && *p <= '9')
			p++;
		/* 8e7010 overflows a double, which jansson refuses: its call. */
		if (p - digits > 2)
			return false;
	}
	/* Long numbers may overflow where jansson refuses them: its call
	 * (15 characters with an exponent of two digits stay below 1e113). */
	if (p - s->p > 15)
		return false;
	s->p = p;
	return true;
}

static bool json__skip(json__scan_t *s, int depth);
static int json__canon_span(shm_str_t k, char *canon, size_t len);

static bool json__skip_container(json__scan_t *s, int depth, char close, bool keyed)
{
	shm_str_t k;

	if (depth > 32)
		return false;
	if (json__lit(s, close))
		return true;
	do {
		if (keyed && (!json__plain_str(s, &k) || !json__lit(s, ':')))
			return false;
		if (!json__skip(s, depth + 1))
			return false;
	} while (json__lit(s, ','));
	return json__lit(s, close);
}

/* Validate and skip any value. */
static bool json__skip(json__scan_t *s, int depth)
{
	shm_str_t str;
	bool is_int;

	json__ws(s);
	if (s->p >= s->end)
		return false;
	switch (*s->p) {
	case '{':
		s->p++;
		return json__skip_container(s, depth, '}', true);
	case '[':
		s->p++;
		return json__skip_container(s, depth, ']', false);
	case '"':
		return json__plain_str(s, &str);
	case 'n':
		return json__word(s, "null");
	case 't':
		return json__word(s, "true");
	case 'f':
		return json__word(s, "false");
	default:
		return json__number(s, &is_int);
	}
}

static enum json__field json__field_of_span(shm_str_t k)
{
	static size_t canon_len[F_COUNT];
	char buf[32];
	size_t n = 0;

	for (size_t i = 0; i < k.len; i++) {
		char c = k.ptr[i];
		if (c == '_')
			continue;
		if (n + 1 >= sizeof(buf))
			return F_NONE;
		buf[n++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	buf[n] = '\0';
	if (canon_len[0] == 0)
		for (int f = 0; f < F_COUNT; f++)
			canon_len[f] = strlen(json__fields[f].canon);
	for (int f = 0; f < F_COUNT; f++)
		if (canon_len[f] == n && memcmp(buf, json__fields[f].canon, n) == 0)
			return (enum json__field)f;
	return F_NONE;
}

/* Metadata with string or null values only; its span bounds its size. */
static bool json__fast_metadata(json__scan_t *s)
{
	const char *start;
	shm_str_t k, v;

	json__ws(s);
	if (json__word(s, "null"))
		return true;
	start = s->p;
	if (!json__lit(s, '{'))
		return false;
	if (!json__lit(s, '}')) {
		do {
			if (!json__plain_str(s, &k) || !json__lit(s, ':'))
				return false;
			if (!json__plain_str(s, &v) && !json__word(s, "null"))
				return false;
		} while (json__lit(s, ','));
		if (!json__lit(s, '}'))
			return false;
	}
	return (size_t)(s->p - start) <= SHM_MAX_METADATA;
}

static bool json__fast_port(json__scan_t *s, int32_t *port)
{
	const char *start;
	char digits[16];
	bool is_int;
	long long v;

	json__ws(s);
	if (json__word(s, "null")) {
		*port = 0;
		return true;
	}
	start = s->p;
	if (!json__number(s, &is_int) || !is_int || s->p - start > 11)
		return false;
	memcpy(digits, start, (size_t)(s->p - start));
	digits[s->p - start] = '\0';
	v = strtoll(digits, NULL, 10);
	if (v < INT32_MIN || v > INT32_MAX)
		return false;
	*port = (int32_t)v;
	return true;
}

static bool json__fast_instance(json__scan_t *s, json_instance_t *inst, shm_str_t *span)
{
	const char *start;
	shm_str_t k;
	unsigned seen = 0;

	json__ws(s);
	start = s->p;
	memset(inst, 0, offsetof(json_instance_t, derived_url));
	inst->derived_url[0] = '\0';
	if (!json__lit(s, '{'))
		return false;
	if (!json__lit(s, '}')) {
		do {
			enum json__field f;
			shm_str_t *dst;
			if (!json__plain_str(s, &k) || !json__lit(s, ':'))
				return false;
			f = json__field_of_span(k);
			if (f == F_NONE) {
				if (!json__skip(s, 1))
					return false;
				continue;
			}
			/* Duplicates: jansson's order decides which wins. */
			if (seen & (1u << f))
				return false;
			seen |= 1u << f;
			if (f == F_PORT) {
				if (!json__fast_port(s, &inst->port))
					return false;
				continue;
			}
			if (f == F_METADATA) {
				if (!json__fast_metadata(s))
					return false;
				continue;
			}
			dst = json__str_field(inst, f);
			if (json__word(s, "null")) {
				dst->ptr = NULL;
				dst->len = 0;
			} else if (!json__plain_str(s, dst) || dst->len > json__fields[f].max) {
				return false;
			}
		} while (json__lit(s, ','));
		if (!json__lit(s, '}'))
			return false;
	}
	span->ptr = start;
	span->len = (size_t)(s->p - start);
	json__derive_url(inst);
	return true;
}

static bool json__fast_array(json__scan_t *s, json_instance_t *out, shm_str_t *spans, size_t max,
                             size_t *n)
{
	*n = 0;
	if (!json__lit(s, '[') || json__lit(s, ']'))
		return false; /* empty: the slow path answers bad-request */
	do {
		if (*n == max || !json__fast_instance(s, &out[*n], &spans[*n]))
			return false;
		(*n)++;
	} while (json__lit(s, ','));
	return json__lit(s, ']');
}

int json_fast_instances(const char *body, size_t len, json_instance_t *out, shm_str_t *spans,
                        size_t max, size_t *n)
{
	json__scan_t s = {body, body + len};
	bool found = false;
	shm_str_t k;

	*n = 0;
	if (!json__lit(&s, '{') || json__lit(&s, '}'))
		return -EAGAIN;
	do {
		char canon[32];
		if (!json__plain_str(&s, &k) || !json__lit(&s, ':'))
			return -EAGAIN;
		if (json__canon_span(k, canon, sizeof(canon)) < 0)
			return -EAGAIN; /* jansson's matching decides long keys */
		if (strcmp(canon, "instances") == 0) {
			if (found || !json__fast_array(&s, out, spans, max, n))
				return -EAGAIN;
			found = true;
		} else if (!json__skip(&s, 1)) {
			return -EAGAIN;
		}
	} while (json__lit(&s, ','));
	if (!json__lit(&s, '}'))
		return -EAGAIN;
	json__ws(&s);
	return found && s.p == s.end ? 0 : -EAGAIN;
}

/* ---- Lookup fast path --------------------------------------------------- */

static bool json__fast_opt_str(json__scan_t *s, shm_str_t *out)
{
	if (json__word(s, "null")) {
		out->ptr = NULL;
		out->len = 0;
		return true;
	}
	return json__plain_str(s, out);
}

static int json__canon_span(shm_str_t k, char *canon, size_t len)
{
	char key[32];

	if (k.len >= sizeof(key))
		return -1;
	memcpy(key, k.ptr, k.len);
	key[k.len] = '\0';
	return json_canon_key(key, canon, len) ? 0 : -1;
}

static bool json__fast_config(json__scan_t *s, json_lookup_cfg_t *c)
{
	shm_str_t k;
	char canon[32];
	unsigned seen = 0;

	memset(c, 0, sizeof(*c));
	if (!json__lit(s, '{'))
		return false;
	if (json__lit(s, '}'))
		return true;
	do {
		unsigned bit = 0;
		shm_str_t *dst = NULL;
		if (!json__plain_str(s, &k) || !json__lit(s, ':'))
			return false;
		if (json__canon_span(k, canon, sizeof(canon)) < 0)
			return false; /* jansson's matching decides long keys */
		{
			if (strcmp(canon, "serviceid") == 0)
				dst = &c->service, bit = 1;
			else if (strcmp(canon, "regionid") == 0)
				dst = &c->region, bit = 2;
			else if (strcmp(canon, "zoneid") == 0)
				dst = &c->zone, bit = 4;
		}
		if (dst == NULL) {
			if (!json__skip(s, 2))
				return false;
			continue;
		}
		if ((seen & bit) || !json__fast_opt_str(s, dst))
			return false;
		seen |= bit;
	} while (json__lit(s, ','));
	return json__lit(s, '}');
}

static bool json__fast_configs(json__scan_t *s, json_lookup_t *out)
{
	if (!json__lit(s, '[') || json__lit(s, ']'))
		return false;
	do {
		if (out->n == JSON_FAST_CONFIGS || !json__fast_config(s, &out->cfg[out->n]))
			return false;
		out->n++;
	} while (json__lit(s, ','));
	return json__lit(s, ']');
}

int json_fast_lookup(const char *body, size_t len, json_lookup_t *out)
{
	json__scan_t s = {body, body + len};
	unsigned seen = 0;
	shm_str_t k;
	char canon[32];

	memset(out, 0, offsetof(json_lookup_t, cfg));
	if (!json__lit(&s, '{') || json__lit(&s, '}'))
		return -EAGAIN;
	do {
		unsigned bit = 0;
		if (!json__plain_str(&s, &k) || !json__lit(&s, ':'))
			return -EAGAIN;
		if (json__canon_span(k, canon, sizeof(canon)) < 0)
			return -EAGAIN;
		{
			if (strcmp(canon, "regionid") == 0)
				bit = 1;
			else if (strcmp(canon, "zoneid") == 0)
				bit = 2;
			else if (strcmp(canon, "discoveryconfigs") == 0)
				bit = 4;
		}
		if (seen & bit)
			return -EAGAIN;
		seen |= bit;
		if (bit == 1 && !json__fast_opt_str(&s, &out->region))
			return -EAGAIN;
		if (bit == 2 && !json__fast_opt_str(&s, &out->zone))
			return -EAGAIN;
		if (bit == 4 && !json__fast_configs(&s, out))
			return -EAGAIN;
		if (bit == 0 && !json__skip(&s, 1))
			return -EAGAIN;
	} while (json__lit(&s, ','));
	if (!json__lit(&s, '}'))
		return -EAGAIN;
	json__ws(&s);
	return (seen & 4) && s.p == s.end ? 0 : -EAGAIN;
}

/* ---- Splitting JSON text (codec.h) ---------------------------------------- */

size_t json_value_len(const char *s, size_t n)
{
	int depth = 0;
	bool in_str = false, esc = false;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (in_str) {
			if (esc) {
				esc = false;
			} else if (c == '\\') {
				esc = true;
			} else if (c == '"') {
				in_str = false;
				if (depth == 0)
					return i + 1;
			}
			continue;
		}
		if (c == '"')
			in_str = true;
		else if (c == '{' || c == '[')
			depth++;
		else if ((c == '}' || c == ']') && --depth == 0)
			return i + 1;
		else if (depth == 0)
			return 0; /* not a string, object or array */
	}
	return 0;
}

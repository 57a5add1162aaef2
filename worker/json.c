/*
 * json.c - the API's JSON codec: lenient input, Spring-shaped output.
 *
 * Called by the api_*.c handlers (and the fuzz target).  Input leniency
 * follows Jackson as configured by Java Artemis: keys match
 * case-insensitively (and, for the older snake_case clients, ignoring
 * underscores), unknown keys are ignored, scalars coerce to strings, null
 * means absent.  Output is written by hand with sorted keys so that the
 * bytes match what Spring would send and can be stored in the registry once
 * and concatenated by discovery.
 *
 * Must not allocate per field on the heartbeat path: decoding only records
 * pointers into the jansson tree.
 */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	json_object_foreach((json_t *)obj, key, v) {
		if (json_canon_key(key, buf, sizeof(buf)) && strcmp(buf, canon) == 0)
			found = v;
	}
	return found;
}

shm_str_t json_member_str(const json_t *obj, const char *canon)
{
	json_t *v = json_member(obj, canon);
	shm_str_t s = { NULL, 0 };

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

static bool json__blank(shm_str_t s)
{
	for (size_t i = 0; i < s.len; i++)
		if (s.ptr[i] != ' ' && s.ptr[i] != '\t' && s.ptr[i] != '\r' && s.ptr[i] != '\n')
			return false;
	return true;
}

/* Jackson's int coercion: integers, reals truncated, numeric strings; the
 * empty string and null are 0. */
static int json__to_int(const json_t *v, int32_t *out)
{
	json_int_t i;
	double d;
	char *end;
	long long ll;

	switch (json_typeof(v)) {
	case JSON_NULL:
		*out = 0;
		return 0;
	case JSON_INTEGER:
		i = json_integer_value(v);
		if (i < INT32_MIN || i > INT32_MAX)
			return -EINVAL;
		*out = (int32_t)i;
		return 0;
	case JSON_REAL:
		d = json_real_value(v);
		if (!isfinite(d) || d < (double)INT32_MIN || d > (double)INT32_MAX)
			return -EINVAL;
		*out = (int32_t)d;
		return 0;
	case JSON_STRING:
		if (json_string_length(v) == 0) {
			*out = 0;
			return 0;
		}
		errno = 0;
		ll = strtoll(json_string_value(v), &end, 10);
		if (errno || *end != '\0' || end == json_string_value(v) || ll < INT32_MIN ||
		    ll > INT32_MAX)
			return -EINVAL;
		*out = (int32_t)ll;
		return 0;
	default:
		return -EINVAL;
	}
}

/* Length of s once escaped and quoted by json_put_str(). */
static size_t json__escaped_len(const char *s, size_t len)
{
	size_t n = 2;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' ||
		    c == '\f')
			n += 2;
		else if (c < 0x20)
			n += 6;
		else
			n += 1;
	}
	return n;
}

/* Metadata: a string -> string map.  Values coerce like strings; nested
 * objects or arrays are a type mismatch.  Returns the size of its JSON
 * text through *size. */
static int json__check_metadata(const json_t *md, size_t *size)
{
	const char *key;
	json_t *v;
	size_t n = 2;
	char scratch[64];
	shm_str_t s;

	json_object_foreach((json_t *)md, key, v) {
		if (json_to_str(v, &s, scratch, sizeof(scratch)) < 0)
			return -EINVAL;
		n += json__escaped_len(key, strlen(key)) + 2;
		n += s.ptr ? json__escaped_len(s.ptr, s.len) : 4;
	}
	*size = n;
	return 0;
}

static bool json__legacy(const json_t *md)
{
	json_t *v;
	shm_str_t s;
	char scratch[64];

	if (md == NULL)
		return false;
	v = json_object_get(md, "java_registry");
	if (v == NULL || json_to_str(v, &s, scratch, sizeof(scratch)) < 0 || s.ptr == NULL)
		return false;
	return !json__blank(s);
}

enum json__field { F_NONE = -1, F_REGION, F_ZONE, F_GROUP, F_SERVICE, F_INSTANCE, F_MACHINE,
		   F_IP, F_PROTOCOL, F_URL, F_HEALTH, F_STATUS, F_PORT, F_METADATA, F_COUNT };

static const struct {
	const char *canon;
	const char *name;   /* camelCase, for messages */
	size_t max;
} json__fields[F_COUNT] = {
	[F_REGION] = { "regionid", "regionId", SHM_MAX_REGION },
	[F_ZONE] = { "zoneid", "zoneId", SHM_MAX_ZONE },
	[F_GROUP] = { "groupid", "groupId", SHM_MAX_GROUP },
	[F_SERVICE] = { "serviceid", "serviceId", SHM_MAX_SERVICE },
	[F_INSTANCE] = { "instanceid", "instanceId", SHM_MAX_INSTANCE },
	[F_MACHINE] = { "machinename", "machineName", SHM_MAX_MACHINE },
	[F_IP] = { "ip", "ip", SHM_MAX_IP },
	[F_PROTOCOL] = { "protocol", "protocol", SHM_MAX_PROTOCOL },
	[F_URL] = { "url", "url", SHM_MAX_URL },
	[F_HEALTH] = { "healthcheckurl", "healthCheckUrl", SHM_MAX_URL },
	[F_STATUS] = { "status", "status", SHM_MAX_STATUS },
	[F_PORT] = { "port", "port", 0 },
	[F_METADATA] = { "metadata", "metadata", SHM_MAX_METADATA },
};

static enum json__field json__field_of(const char *key)
{
	char buf[32];

	if (!json_canon_key(key, buf, sizeof(buf)))
		return F_NONE;
	for (int f = 0; f < F_COUNT; f++)
		if (strcmp(buf, json__fields[f].canon) == 0)
			return (enum json__field)f;
	return F_NONE;
}

static shm_str_t *json__str_field(json_instance_t *inst, enum json__field f)
{
	switch (f) {
	case F_REGION: return &inst->region;
	case F_ZONE: return &inst->zone;
	case F_GROUP: return &inst->group;
	case F_SERVICE: return &inst->service;
	case F_INSTANCE: return &inst->instance;
	case F_MACHINE: return &inst->machine;
	case F_IP: return &inst->ip;
	case F_PROTOCOL: return &inst->protocol;
	case F_URL: return &inst->url;
	case F_HEALTH: return &inst->health;
	case F_STATUS: return &inst->status;
	default: return NULL;
	}
}

/* Scalars given as numbers or booleans are coerced to text; that text must
 * outlive the decode, so it is kept in the jansson tree by replacing the
 * value with a string. */
static int json__set_str(json_t *obj, const char *key, json_t *v, shm_str_t *dst)
{
	char scratch[64];
	json_t *s;

	if (json_to_str(v, dst, scratch, sizeof(scratch)) < 0)
		return -EINVAL;
	if (!json_is_number(v))
		return 0; /* strings live in the tree; "true"/"false" are static */
	s = json_stringn(scratch, dst->len);
	if (s == NULL || json_object_set_new(obj, key, s) < 0)
		return -ENOMEM;
	dst->ptr = json_string_value(s);
	return 0;
}

static void json__derive_url(json_instance_t *inst)
{
	int n;

	if (inst->url.ptr != NULL && !json__blank(inst->url))
		return;
	if (inst->ip.ptr == NULL || json__blank(inst->ip) || inst->port <= 0)
		return;
	n = snprintf(inst->derived_url, sizeof(inst->derived_url), "http://%.*s:%d",
		     (int)inst->ip.len, inst->ip.ptr, (int)inst->port);
	if (n < 0 || (size_t)n >= sizeof(inst->derived_url))
		return;
	inst->url.ptr = inst->derived_url;
	inst->url.len = (size_t)n;
}

static int json__check_limits(json_instance_t *inst, const char **field)
{
	size_t md_size = 0;

	for (int f = 0; f < F_COUNT; f++) {
		shm_str_t *s = json__str_field(inst, (enum json__field)f);
		if (s != NULL && s->ptr != NULL && s->len > json__fields[f].max) {
			*field = json__fields[f].name;
			return -ENAMETOOLONG;
		}
		if (s != NULL && s->ptr != NULL && memchr(s->ptr, '\0', s->len) != NULL) {
			/* An embedded NUL cannot be a key or a C string. */
			*field = json__fields[f].name;
			return -EINVAL;
		}
	}
	if (inst->metadata != NULL) {
		if (json__check_metadata(inst->metadata, &md_size) < 0) {
			*field = "metadata";
			return -EINVAL;
		}
		if (md_size > SHM_MAX_METADATA) {
			*field = "metadata";
			return -ENAMETOOLONG;
		}
	}
	return 0;
}

int json_instance_decode(json_t *obj, json_instance_t *inst, const char **field)
{
	const char *key;
	json_t *v;
	void *tmp;
	const char *dummy;

	if (field == NULL)
		field = &dummy;
	*field = NULL;
	memset(inst, 0, offsetof(json_instance_t, derived_url));
	inst->derived_url[0] = '\0';
	if (!json_is_object(obj))
		return -EINVAL;
	json_object_foreach_safe(obj, tmp, key, v) {
		enum json__field f = json__field_of(key);
		shm_str_t *dst;

		if (f == F_NONE)
			continue;
		*field = json__fields[f].name;
		if (f == F_PORT) {
			if (json__to_int(v, &inst->port) < 0)
				return -EINVAL;
			continue;
		}
		if (f == F_METADATA) {
			if (json_is_null(v))
				inst->metadata = NULL;
			else if (json_is_object(v))
				inst->metadata = v;
			else
				return -EINVAL;
			continue;
		}
		dst = json__str_field(inst, f);
		if (json__set_str(obj, key, v, dst) < 0)
			return -EINVAL;
	}
	*field = NULL;
	json__derive_url(inst);
	inst->legacy = json__legacy(inst->metadata);
	return json__check_limits(inst, field);
}

void json_instance_key(const json_instance_t *inst, shm_key_t *key)
{
	key->region = inst->region;
	key->service = inst->service;
	key->instance = inst->instance;
}

static size_t json__put_lower(char *buf, size_t pos, size_t cap, shm_str_t s)
{
	const char *p = s.ptr ? s.ptr : "null";
	size_t n = s.ptr ? s.len : 4;

	for (size_t i = 0; i < n && pos + 1 < cap; i++) {
		char c = p[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		buf[pos++] = c;
	}
	return pos;
}

size_t json_instance_display(const json_instance_t *inst, char *buf, size_t buf_len)
{
	static const shm_str_t slash = { "/", 1 };
	size_t pos = 0;

	if (buf_len == 0)
		return 0;
	pos = json__put_lower(buf, pos, buf_len, inst->region);
	pos = json__put_lower(buf, pos, buf_len, slash);
	pos = json__put_lower(buf, pos, buf_len, inst->zone);
	pos = json__put_lower(buf, pos, buf_len, slash);
	pos = json__put_lower(buf, pos, buf_len, inst->service);
	if (inst->group.ptr != NULL && !json__blank(inst->group)) {
		pos = json__put_lower(buf, pos, buf_len, slash);
		pos = json__put_lower(buf, pos, buf_len, inst->group);
	}
	pos = json__put_lower(buf, pos, buf_len, slash);
	pos = json__put_lower(buf, pos, buf_len, inst->instance);
	buf[pos] = '\0';
	return pos;
}

/* ---- Output ----------------------------------------------------------- */

int json_put_raw(shm_buf_t *b, const char *s)
{
	return shm_buf_append(b, s, strlen(s));
}

int json_put_str(shm_buf_t *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = 0;
	int rc;

	if (s == NULL)
		return shm_buf_append(b, "null", 4);
	rc = shm_buf_reserve(b, len + 2);
	if (rc < 0)
		return rc;
	b->data[b->len++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6];
		size_t n = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		if ((rc = shm_buf_append(b, s + start, i - start)) < 0)
			return rc;
		esc[0] = '\\';
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		if ((rc = shm_buf_append(b, esc, n)) < 0)
			return rc;
		start = i + 1;
	}
	if ((rc = shm_buf_append(b, s + start, len - start)) < 0)
		return rc;
	return shm_buf_append(b, "\"", 1);
}

int json_put_cstr(shm_buf_t *b, const char *s)
{
	return json_put_str(b, s, s ? strlen(s) : 0);
}

int json_put_u64(shm_buf_t *b, uint64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);

	return shm_buf_append(b, tmp, (size_t)n);
}

int json_put_i64(shm_buf_t *b, int64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);

	return shm_buf_append(b, tmp, (size_t)n);
}

int json_put_bool(shm_buf_t *b, bool v)
{
	return v ? shm_buf_append(b, "true", 4) : shm_buf_append(b, "false", 5);
}

int json_put_value(shm_buf_t *b, const json_t *v)
{
	const char *key;
	json_t *m;
	char scratch[64];
	shm_str_t s;
	size_t i;
	int rc = 0;
	bool first = true;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		rc = shm_buf_append(b, "{", 1);
		json_object_foreach((json_t *)v, key, m) {
			if (rc == 0 && !first)
				rc = shm_buf_append(b, ",", 1);
			if (rc == 0)
				rc = json_put_str(b, key, strlen(key));
			if (rc == 0)
				rc = shm_buf_append(b, ":", 1);
			if (rc == 0)
				rc = json_put_value(b, m);
			first = false;
		}
		return rc ? rc : shm_buf_append(b, "}", 1);
	case JSON_ARRAY:
		rc = shm_buf_append(b, "[", 1);
		json_array_foreach((json_t *)v, i, m) {
			if (rc == 0 && i > 0)
				rc = shm_buf_append(b, ",", 1);
			if (rc == 0)
				rc = json_put_value(b, m);
		}
		return rc ? rc : shm_buf_append(b, "]", 1);
	case JSON_STRING:
		return json_put_str(b, json_string_value(v), json_string_length(v));
	case JSON_NULL:
		return shm_buf_append(b, "null", 4);
	default:
		if (json_to_str(v, &s, scratch, sizeof(scratch)) < 0)
			return -EINVAL;
		return shm_buf_append(b, s.ptr, s.len);
	}
}

/* Metadata values are strings in Java (Map<String,String>): numbers and
 * booleans sent by a client come back as strings. */
static int json__put_metadata(shm_buf_t *b, const json_t *md)
{
	const char *key;
	json_t *v;
	char scratch[64];
	shm_str_t s;
	int rc;
	bool first = true;

	if (md == NULL)
		return shm_buf_append(b, "null", 4);
	rc = shm_buf_append(b, "{", 1);
	json_object_foreach((json_t *)md, key, v) {
		if (rc == 0 && !first)
			rc = shm_buf_append(b, ",", 1);
		if (rc == 0)
			rc = json_put_str(b, key, strlen(key));
		if (rc == 0)
			rc = shm_buf_append(b, ":", 1);
		if (rc == 0 && json_to_str(v, &s, scratch, sizeof(scratch)) < 0)
			rc = -EINVAL;
		if (rc == 0)
			rc = json_put_str(b, s.ptr, s.len);
		first = false;
	}
	return rc ? rc : shm_buf_append(b, "}", 1);
}

static int json__put_field(shm_buf_t *b, const char *name, shm_str_t s)
{
	int rc = json_put_raw(b, name);

	return rc ? rc : json_put_str(b, s.ptr, s.len);
}

int json_instance_encode(const json_instance_t *in, shm_buf_t *out)
{
	int rc = 0;

	/* Alphabetical, as Spring sorts bean properties. */
	rc = rc ? rc : json__put_field(out, "{\"groupId\":", in->group);
	rc = rc ? rc : json__put_field(out, ",\"healthCheckUrl\":", in->health);
	rc = rc ? rc : json__put_field(out, ",\"instanceId\":", in->instance);
	rc = rc ? rc : json__put_field(out, ",\"ip\":", in->ip);
	rc = rc ? rc : json__put_field(out, ",\"machineName\":", in->machine);
	rc = rc ? rc : json_put_raw(out, ",\"metadata\":");
	rc = rc ? rc : json__put_metadata(out, in->metadata);
	rc = rc ? rc : json_put_raw(out, ",\"port\":");
	rc = rc ? rc : json_put_i64(out, in->port);
	rc = rc ? rc : json__put_field(out, ",\"protocol\":", in->protocol);
	rc = rc ? rc : json__put_field(out, ",\"regionId\":", in->region);
	rc = rc ? rc : json__put_field(out, ",\"serviceId\":", in->service);
	rc = rc ? rc : json__put_field(out, ",\"status\":", in->status);
	rc = rc ? rc : json__put_field(out, ",\"url\":", in->url);
	rc = rc ? rc : json__put_field(out, ",\"zoneId\":", in->zone);
	rc = rc ? rc : json_put_raw(out, "}");
	return rc;
}

int json_put_status(shm_buf_t *b, const char *status, const char *code, const char *message)
{
	int rc = json_put_raw(b, "{\"errorCode\":");

	rc = rc ? rc : json_put_cstr(b, code);
	rc = rc ? rc : json_put_raw(b, ",\"message\":");
	rc = rc ? rc : json_put_cstr(b, message);
	rc = rc ? rc : json_put_raw(b, ",\"status\":");
	rc = rc ? rc : json_put_cstr(b, status);
	return rc ? rc : json_put_raw(b, "}");
}

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
	json__scan_t s = { body, body + len };
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
	json__scan_t s = { body, body + len };
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

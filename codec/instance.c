/*
 * instance.c - an Instance (API.md §1.1) in and out: decoding a jansson
 * object with Jackson's coercions, the field limits, the derived url,
 * Instance.toString(), and the stored form written once with Spring's
 * sorted keys (the bytes discovery concatenates).
 *
 * Must not allocate per field on the heartbeat path: decoding only records
 * pointers into the jansson tree.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_int.h"

bool json__blank(shm_str_t s)
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

	json_object_foreach((json_t *)md, key, v)
	{
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

const json__field_desc_t json__fields[F_COUNT] = {
    [F_REGION] = {"regionid", "regionId", SHM_MAX_REGION},
    [F_ZONE] = {"zoneid", "zoneId", SHM_MAX_ZONE},
    [F_GROUP] = {"groupid", "groupId", SHM_MAX_GROUP},
    [F_SERVICE] = {"serviceid", "serviceId", SHM_MAX_SERVICE},
    [F_INSTANCE] = {"instanceid", "instanceId", SHM_MAX_INSTANCE},
    [F_MACHINE] = {"machinename", "machineName", SHM_MAX_MACHINE},
    [F_IP] = {"ip", "ip", SHM_MAX_IP},
    [F_PROTOCOL] = {"protocol", "protocol", SHM_MAX_PROTOCOL},
    [F_URL] = {"url", "url", SHM_MAX_URL},
    [F_HEALTH] = {"healthcheckurl", "healthCheckUrl", SHM_MAX_URL},
    [F_STATUS] = {"status", "status", SHM_MAX_STATUS},
    [F_PORT] = {"port", "port", 0},
    [F_METADATA] = {"metadata", "metadata", SHM_MAX_METADATA},
};

enum json__field json__field_of(const char *key)
{
	char buf[32];

	if (!json_canon_key(key, buf, sizeof(buf)))
		return F_NONE;
	for (int f = 0; f < F_COUNT; f++)
		if (strcmp(buf, json__fields[f].canon) == 0)
			return (enum json__field)f;
	return F_NONE;
}

shm_str_t *json__str_field(json_instance_t *inst, enum json__field f)
{
	switch (f) {
	case F_REGION:
		return &inst->region;
	case F_ZONE:
		return &inst->zone;
	case F_GROUP:
		return &inst->group;
	case F_SERVICE:
		return &inst->service;
	case F_INSTANCE:
		return &inst->instance;
	case F_MACHINE:
		return &inst->machine;
	case F_IP:
		return &inst->ip;
	case F_PROTOCOL:
		return &inst->protocol;
	case F_URL:
		return &inst->url;
	case F_HEALTH:
		return &inst->health;
	case F_STATUS:
		return &inst->status;
	default:
		return NULL;
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

void json__derive_url(json_instance_t *inst)
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
	json_object_foreach_safe(obj, tmp, key, v)
	{
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
	static const shm_str_t slash = {"/", 1};
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

/* Metadata values are strings in Java (Map<String,String>): numbers and
 * booleans sent by a client come back as strings. */
static int json__put_metadata(buf_t *b, const json_t *md)
{
	const char *key;
	json_t *v;
	char scratch[64];
	shm_str_t s;
	bool first = true;

	if (md == NULL)
		return buf_append(b, "null", 4);
	buf_append(b, "{", 1);
	json_object_foreach((json_t *)md, key, v)
	{
		if (!first)
			buf_append(b, ",", 1);
		json_put_str(b, key, strlen(key));
		buf_append(b, ":", 1);
		if (json_to_str(v, &s, scratch, sizeof(scratch)) < 0)
			return -EINVAL;
		json_put_str(b, s.ptr, s.len);
		first = false;
	}
	buf_append(b, "}", 1);
	return buf_error(b);
}

static void json__put_field(buf_t *b, const char *name, shm_str_t s)
{
	json_put_raw(b, name);
	json_put_str(b, s.ptr, s.len);
}

int json_instance_encode(const json_instance_t *in, buf_t *out)
{
	int rc;

	/* Alphabetical, as Spring sorts bean properties. */
	json__put_field(out, "{\"groupId\":", in->group);
	json__put_field(out, ",\"healthCheckUrl\":", in->health);
	json__put_field(out, ",\"instanceId\":", in->instance);
	json__put_field(out, ",\"ip\":", in->ip);
	json__put_field(out, ",\"machineName\":", in->machine);
	json_put_raw(out, ",\"metadata\":");
	/* the one part that fails on its own: a value that is not a string */
	if ((rc = json__put_metadata(out, in->metadata)) < 0)
		return rc;
	json_put_raw(out, ",\"port\":");
	json_put_i64(out, in->port);
	json__put_field(out, ",\"protocol\":", in->protocol);
	json__put_field(out, ",\"regionId\":", in->region);
	json__put_field(out, ",\"serviceId\":", in->service);
	json__put_field(out, ",\"status\":", in->status);
	json__put_field(out, ",\"url\":", in->url);
	json__put_field(out, ",\"zoneId\":", in->zone);
	json_put_raw(out, "}");
	return buf_error(out);
}

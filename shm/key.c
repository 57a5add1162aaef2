/*
 * key.c - the instance identity: (region, service, instance), compared
 * case-insensitively (API.md §1.1).  The key is stored lowercase as
 * "region\0service\0instance"; NUL is not allowed inside a field.  Case
 * folding is ASCII only (Java's toLowerCase also folds other scripts; ids
 * outside ASCII are compared as their exact bytes).
 */
#include <errno.h>
#include <string.h>
#include <xxhash.h>

#include "shm_int.h"

uint64_t shm__hash(const void *p, size_t n)
{
	return XXH3_64bits(p, n);
}

static bool str_blank(shm_str_t s)
{
	for (size_t i = 0; i < s.len; i++)
		if (s.ptr[i] != ' ' && s.ptr[i] != '\t' && s.ptr[i] != '\n' && s.ptr[i] != '\r' &&
		    s.ptr[i] != '\f' && s.ptr[i] != '\v')
			return false;
	return true;
}

static size_t put_lower(char *out, shm_str_t s)
{
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	return s.len;
}

static int check_field(shm_str_t s, size_t max, bool required)
{
	if (s.len && !s.ptr)
		return -EINVAL;
	if (required && str_blank(s))
		return -EINVAL;
	if (s.len > max)
		return -ENAMETOOLONG;
	if (s.len && memchr(s.ptr, '\0', s.len))
		return -EINVAL;
	return 0;
}

int shm__make_key(const shm_key_t *k, char *out, size_t *len)
{
	int rc;
	if ((rc = check_field(k->region, SHM_MAX_REGION, true)) ||
	    (rc = check_field(k->service, SHM_MAX_SERVICE, true)) ||
	    (rc = check_field(k->instance, SHM_MAX_INSTANCE, true)))
		return rc;
	size_t n = put_lower(out, k->region);
	out[n++] = '\0';
	n += put_lower(out + n, k->service);
	out[n++] = '\0';
	n += put_lower(out + n, k->instance);
	*len = n;
	return 0;
}

int shm_instance_validate(const shm_instance_in_t *in, const char **field)
{
	static const struct {
		size_t off;
		size_t max;
		bool required;
		const char *name;
	} fields[] = {
		{offsetof(shm_instance_in_t, key.region), SHM_MAX_REGION, true, "regionId"},
		{offsetof(shm_instance_in_t, key.service), SHM_MAX_SERVICE, true, "serviceId"},
		{offsetof(shm_instance_in_t, key.instance), SHM_MAX_INSTANCE, true, "instanceId"},
		{offsetof(shm_instance_in_t, zone), SHM_MAX_ZONE, false, "zoneId"},
		{offsetof(shm_instance_in_t, group), SHM_MAX_GROUP, false, "groupId"},
		{offsetof(shm_instance_in_t, ip), SHM_MAX_IP, false, "ip"},
		{offsetof(shm_instance_in_t, status), SHM_MAX_STATUS, false, "status"},
	};
	const char *dummy;
	if (!field)
		field = &dummy;
	*field = NULL;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const shm_str_t *s = (const shm_str_t *)((const char *)in + fields[i].off);
		int rc = check_field(*s, fields[i].max, fields[i].required);
		if (rc) {
			*field = fields[i].name;
			return rc;
		}
	}
	if (!in->json.ptr || in->json.len == 0) {
		*field = "json";
		return -EINVAL;
	}
	if (in->json.len > SHM_MAX_JSON) {
		*field = "json";
		return -E2BIG;
	}
	return 0;
}

/* Compare a slot's key with `key`; the caller validates the slot's
 * sequence afterwards, so torn values only cause a retry. */
bool shm__key_equal(shm_t *s, const struct shm_slot_sh *sl, const char *key, size_t len)
{
	uint16_t klen = ck_pr_load_16(&sl->key_len);
	if (klen != len)
		return false;
	if (len <= SHM_KEY_INLINE)
		return memcmp(sl->key, key, len) == 0;
	const struct shm_blob_sh *b = shm__blob_get(s, ck_pr_load_64(&sl->blob));
	if (!b || b->key_len != len)
		return false;
	return memcmp((const char *)(b + 1), key, len) == 0;
}

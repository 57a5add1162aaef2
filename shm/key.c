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

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Eight bytes lowercased (ASCII A-Z only); *nul gets a non-zero bit if one
 * of them is NUL.  Bytes >= 0x80 are left alone. */
static inline uint64_t lower8(uint64_t x, uint64_t *nul)
{
	uint64_t low7 = x & ~HIGHS;
	uint64_t ge_a = low7 + ONES * (0x80 - 'A'); /* high bit: byte >= 'A' */
	uint64_t gt_z = low7 + ONES * (0x7f - 'Z'); /* high bit: byte > 'Z' */
	*nul |= (x - ONES) & ~x & HIGHS;
	return x | ((ge_a & ~gt_z & ~x & HIGHS) >> 2);
}

/* Append field `f` lowercased to out, checking it as check_field does in
 * the same pass, eight bytes at a time (a key is made for every heartbeat
 * and lookup).  out has room for `max` bytes. */
static int put_key_field(shm_str_t f, size_t max, char *out)
{
	if (f.len && !f.ptr)
		return -EINVAL;
	if (f.len > max)
		return str_blank(f) ? -EINVAL : -ENAMETOOLONG;
	/* Blank is rare: a first byte above ' ' rules it out. */
	if (f.len == 0 || (unsigned char)f.ptr[0] <= ' ') {
		if (str_blank(f))
			return -EINVAL;
	}
	uint64_t nul = 0, w;
	size_t i = 0;
	for (; i + 8 <= f.len; i += 8) {
		memcpy(&w, f.ptr + i, 8);
		w = lower8(w, &nul);
		memcpy(out + i, &w, 8);
	}
	for (; i < f.len; i++) {
		unsigned char c = (unsigned char)f.ptr[i];
		nul |= c == '\0';
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	return nul ? -EINVAL : 0;
}

int shm__make_key(const shm_key_t *k, char *out, size_t *len)
{
	int rc;
	size_t n = 0;
	const shm_str_t *f[3] = {&k->region, &k->service, &k->instance};
	static const size_t max[3] = {SHM_MAX_REGION, SHM_MAX_SERVICE, SHM_MAX_INSTANCE};
	for (int i = 0; i < 3; i++) {
		if ((rc = put_key_field(*f[i], max[i], out + n)))
			return rc;
		n += f[i]->len;
		out[n++] = '\0';
	}
	*len = n - 1;
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

/* ---- The down filter's tags (shm.h) ---------------------------------- */

#define TAG_MAX_INPUT 1024 /* every part is bounded by its SHM_MAX_*: far below */

uint64_t shm_tag(const shm_t *s, enum shm_tag kind, const shm_str_t *parts, size_t nparts)
{
	char buf[TAG_MAX_INPUT];
	size_t n = 0;
	buf[n++] = (char)('A' + kind);
	for (size_t i = 0; i < nparts; i++) {
		size_t len = parts[i].ptr ? parts[i].len : 0;
		if (len > sizeof(buf) - n - 1)
			len = sizeof(buf) - n - 1;
		for (size_t j = 0; j < len; j++) {
			unsigned char c = (unsigned char)parts[i].ptr[j];
			buf[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		if (n < sizeof(buf))
			buf[n++] = '\0';
	}
	uint64_t t = XXH3_64bits_withSeed(buf, n, s->hdr->tag_seed);
	return t ? t : 1;
}

void shm_instance_tags(const shm_t *s, const shm_instance_in_t *in, uint64_t tags[SHM_TAGS])
{
	static const shm_str_t dflt = {"default", 7};
	const shm_key_t *k = &in->key;
	shm_str_t group = in->group.len && !str_blank(in->group) ? in->group : dflt;
	shm_str_t inst[3] = {k->region, k->service, k->instance};
	shm_str_t server[2] = {k->region, in->ip};
	shm_str_t zone[3] = {k->region, in->zone, k->service};
	shm_str_t grp[4] = {k->service, k->region, in->zone, group};

	tags[SHM_TAG_INSTANCE] = shm_tag(s, SHM_TAG_INSTANCE, inst, 3);
	tags[SHM_TAG_SERVER] = shm_tag(s, SHM_TAG_SERVER, server, 2);
	tags[SHM_TAG_ZONE] = shm_tag(s, SHM_TAG_ZONE, zone, 2);
	tags[SHM_TAG_ZONE_SERVICE] = shm_tag(s, SHM_TAG_ZONE_SERVICE, zone, 3);
	tags[SHM_TAG_GROUP] = shm_tag(s, SHM_TAG_GROUP, grp, 4);
}

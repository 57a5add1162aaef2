/*
 * route_shm.c - the routing image in the region, and the lock-free readers
 * discovery calls on every request: mgmt_route_decide (which instances a
 * Rust-path call gets), mgmt_service_read_routed (those instances) and
 * mgmt_route_frame (a Java Service's logicInstances and routeRules).
 *
 * Layout (in the management section, after the down filter's tables): a
 * header page with the two images' descriptors and ROUTE_COUNTERS
 * round-robin counters, then a data area of three times buf_bytes holding
 * the current image and the one before it (route_int.h: the format;
 * route_build.c: the making).
 *
 * MEMORY
 *
 * The data area is reserved in /dev/shm as it is used, as the registry's
 * sections are (shm/reserve.c): a start reserves the header page and
 * ROUTE_FIRST_BYTES of it (an image of a few rules), and a writer reserves
 * the part a new image needs (shm_mgmt_reserve) before the write commits:
 * when /dev/shm has no room the write is refused (-ENOBUFS) and nothing
 * changed.  A new image goes at the area's start when it fits before the
 * current one, otherwise right after the current one (page-aligned): it
 * never overlaps the current image, the pair stays within 3 * buf_bytes
 * (the current image then starts below the new one's length, which is at
 * most buf_bytes), and images of about L bytes use about 2L of memory.
 *
 * CONCURRENCY CONTRACT
 *
 * Writers hold the projection's writer lock (projection.c), the same lock
 * as the down filter's, for the whole of a routing write.  A publish
 * stages the new image into the buffer that is not `active`, inside that
 * buffer's sequence (odd while written; a writer that died there left it
 * odd and the next stage evens it first), then stores `active` after a
 * store fence, then the caller moves the projection's generation (response
 * caches).  A dead writer is repaired as the down filter is: the next
 * locker rebuilds the image from the store and publishes it.
 *
 * Readers take no lock: load `active`, read its sequence (retry while odd),
 * use the buffer, then re-read the sequence and `active`; when either moved
 * the result is dropped and the read done again, at most ROUTE_READ_RETRIES
 * times (-EBUSY).  An image's place (off, len) is checked against the
 * memory reserved now before it is read, and every offset read from an
 * image against its length before it is followed, so a torn read never
 * leaves the image nor touches an unreserved page; it is only ever
 * discarded.  A descriptor is rewritten one publish after it stopped being
 * active, and routing writes are rare, so a retry is too.
 *
 * The counters are plain 64-bit words, one per rule (rule id modulo
 * ROUTE_COUNTERS), moved with one atomic fetch-and-add per call that the
 * rule routes by weighted round robin: no lock, shared by every worker.
 * They are not part of the image (a republish does not reset them) and
 * `artemis check` does not look at them.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <ck_pr.h>
#include <ck_sequence.h>

#include "artemis/codec.h"
#include "route_int.h"

#define ROUTE_MAGIC        0x31544f5254524121ULL
#define ROUTE_HDR_BYTES    (((sizeof(struct route_area_sh) + 4095) / 4096) * 4096)
#define ROUTE_READ_RETRIES 256

struct route_buf_sh {
	ck_sequence_t seq; /* odd while written */
	uint32_t len;      /* bytes of the image; 0 = none */
	uint32_t nsvc;
	uint64_t store_gen; /* the store generation it was built from */
	uint64_t digest;
	uint64_t off; /* where the image starts in the data area (page-aligned) */
};

struct route_area_sh {
	uint64_t magic;
	uint32_t buf_bytes;
	uint32_t active; /* the descriptor readers use: 0 or 1 */
	uint32_t built;  /* 1 once an image was published */
	uint32_t pad;
	uint64_t data_off; /* the data area's offset in the management section */
	struct route_buf_sh buf[2];
	uint64_t counters[ROUTE_COUNTERS];
};

static uint64_t page_up(uint64_t n)
{
	return (n + 4095) & ~(uint64_t)4095;
}

uint64_t route_area_bytes(uint32_t buf_bytes)
{
	return ROUTE_HDR_BYTES + 3 * page_up(buf_bytes);
}

uint64_t route_area_initial_bytes(void)
{
	return ROUTE_HDR_BYTES + ROUTE_FIRST_BYTES;
}

static uint64_t data_room(const struct route_area_sh *a)
{
	return 3 * page_up(a->buf_bytes);
}

static uint8_t *data_of(const struct route_area_sh *a)
{
	return (uint8_t *)a + ROUTE_HDR_BYTES;
}

/* The bytes of the data area backed by memory now (readers' bound). */
static uint64_t data_reserved(shm_t *shm, const struct route_area_sh *a)
{
	uint64_t r = shm_mgmt_reserved(shm), room = data_room(a);
	r = r > a->data_off ? r - a->data_off : 0;
	return r < room ? r : room;
}

void route_area_init(void *area, uint64_t area_off, uint32_t buf_bytes)
{
	struct route_area_sh *a = area;
	memset(a, 0, sizeof(*a));
	a->buf_bytes = buf_bytes;
	a->data_off = area_off + ROUTE_HDR_BYTES;
	ck_pr_fence_store();
	ck_pr_store_64(&a->magic, ROUTE_MAGIC);
}

uint32_t route_buf_bytes(const struct route_area_sh *a)
{
	return a->buf_bytes;
}

static const struct route_area_sh *area_of(shm_t *shm)
{
	size_t len;
	const void *sec = shm_mgmt_area(shm, &len);
	if (!sec || !len)
		return NULL;
	proj_t *p = proj_of(shm);
	if (!p)
		return NULL;
	const struct route_area_sh *a = route_area_of(p);
	if (ck_pr_load_64((uint64_t *)&a->magic) != ROUTE_MAGIC)
		return NULL;
	return a;
}

static void stall(unsigned attempt)
{
	if (attempt < 16)
		ck_pr_stall();
	else
		sched_yield();
}

/* ---- Reading one image ------------------------------------------------------------------ */

typedef struct {
	const struct route_buf_sh *b;
	unsigned seq;
	uint32_t active;
	const uint8_t *img;
	uint32_t len;
} view_t;

/* 1 with an image, 0 when there is none, -EAGAIN while one is written. */
static int view_begin(shm_t *shm, const struct route_area_sh *a, view_t *v)
{
	v->active = ck_pr_load_32((uint32_t *)&a->active) & 1;
	v->b = &a->buf[v->active];
	v->seq = ck_pr_load_uint((unsigned *)&v->b->seq.sequence);
	ck_pr_fence_load();
	if (v->seq & 1)
		return -EAGAIN;
	v->len = ck_pr_load_32((uint32_t *)&v->b->len);
	uint64_t off = ck_pr_load_64((uint64_t *)&v->b->off);
	if (v->len < sizeof(struct route_img_hdr))
		return 0;
	/* A torn (off, len) is dropped before a byte of it is read. */
	if (v->len > a->buf_bytes || off > data_room(a) || off + v->len > data_reserved(shm, a))
		return -EAGAIN;
	v->img = data_of(a) + off;
	return 1;
}

static bool view_still(const struct route_area_sh *a, const view_t *v)
{
	ck_pr_fence_load();
	return ck_pr_load_uint((unsigned *)&v->b->seq.sequence) == v->seq &&
	       (ck_pr_load_32((uint32_t *)&a->active) & 1) == v->active;
}

/* `size` bytes at off of the image, or NULL when they are not within it. */
static const void *at(const view_t *v, uint64_t off, uint64_t size)
{
	return off + size <= v->len && off + size >= off ? v->img + off : NULL;
}

/* The record of a service (case-insensitive), or NULL. */
static const struct route_svc_rec *find(const view_t *v, shm_str_t service)
{
	struct route_img_hdr h;
	const void *hp = at(v, 0, sizeof(h));
	if (!hp || !service.ptr || service.len == 0 || service.len > MGMT_MAX_SERVICE)
		return NULL;
	memcpy(&h, hp, sizeof(h));
	if (h.magic != ROUTE_IMG_MAGIC || (h.mask & (h.mask + 1)) ||
	    !at(v, sizeof(h), ((uint64_t)h.mask + 1) * 4))
		return NULL;
	const uint32_t *index = (const uint32_t *)(v->img + sizeof(h));
	uint64_t hash = route_hash_lower(service.ptr, service.len);
	for (uint32_t k = (uint32_t)hash & h.mask, n = 0; n <= h.mask; n++, k = (k + 1) & h.mask) {
		uint32_t off = index[k];
		if (off == 0)
			return NULL;
		const struct route_svc_rec *r = at(v, off, sizeof(*r));
		if (!r || r->len < sizeof(*r) || !at(v, off, r->len))
			return NULL;
		if (r->name_hash != hash || r->name_len != service.len ||
		    sizeof(*r) + r->name_len + 1 > r->len)
			continue;
		if (strncasecmp((const char *)(r + 1), service.ptr, service.len) == 0)
			return r;
	}
	return NULL;
}

/* `size` bytes at off within a record, or NULL. */
static const void *in_rec(const struct route_svc_rec *r, uint64_t off, uint64_t size)
{
	return off >= sizeof(*r) && off + size <= r->len ? (const uint8_t *)r + off : NULL;
}

/* The groups of the applied rule (n set), or NULL. */
static const struct route_grp_rec *rule_groups(const struct route_svc_rec *r,
                                               struct route_rule_rec *rule)
{
	const void *p = r->rule_off ? in_rec(r, r->rule_off, sizeof(*rule)) : NULL;
	if (!p)
		return NULL;
	memcpy(rule, p, sizeof(*rule));
	if (rule->ngroups == 0 || rule->ngroups > MGMT_MAX_RULE_GROUPS)
		return NULL;
	return in_rec(r, r->rule_off + sizeof(*rule),
	              (uint64_t)rule->ngroups * sizeof(struct route_grp_rec));
}

/* The canary's whitelist and groups, or NULL. */
static const struct route_canary_rec *canary_of(const struct route_svc_rec *r,
                                                const struct route_cidr **white,
                                                const struct route_grp_rec **groups)
{
	const struct route_canary_rec *c =
	    r->canary_off ? in_rec(r, r->canary_off, sizeof(*c)) : NULL;
	if (!c || c->nwhite > MGMT_MAX_WHITELIST || c->ngroups > MGMT_MAX_RULE_GROUPS)
		return NULL;
	uint64_t woff = r->canary_off + sizeof(*c);
	uint64_t goff = woff + (uint64_t)c->nwhite * sizeof(struct route_cidr);
	*white = in_rec(r, woff, (uint64_t)c->nwhite * sizeof(struct route_cidr));
	*groups = in_rec(r, goff, (uint64_t)c->ngroups * sizeof(struct route_grp_rec));
	if ((c->nwhite && !*white) || (c->ngroups && !*groups))
		return NULL;
	return c;
}

/* Whether an instance's tags make it a member of g. */
static bool member(const struct route_svc_rec *r, const struct route_grp_rec *g,
                   const uint64_t *tags)
{
	if (tags[SHM_TAG_GROUP] == g->group_tag)
		return true;
	const uint64_t *b = g->nbind ? in_rec(r, g->bind_off, (uint64_t)g->nbind * 8) : NULL;
	if (!b)
		return false;
	uint64_t want = tags[SHM_TAG_INSTANCE];
	uint32_t lo = 0, hi = g->nbind;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (b[mid] < want)
			lo = mid + 1;
		else if (b[mid] > want)
			hi = mid;
		else
			return true;
	}
	return false;
}

/* ---- Variants: which instances a call gets ------------------------------------------------ */

enum { POOL_ALL = 0, POOL_NO_CANARY = 1, POOL_CANARY = 2 };
#define VARIANT(pool, group) (((uint32_t)(pool) << 16) | (uint32_t)(group))
#define VARIANT_POOL(v)      ((v) >> 16)
#define VARIANT_GROUP(v)     ((v)&0xffff) /* 0: the whole pool, g + 1: rule group g */

static bool whitelisted(const struct route_cidr *white, uint32_t n, const uint8_t addr[16])
{
	for (uint32_t i = 0; i < n; i++)
		if (route_cidr_match(&white[i], addr))
			return true;
	return false;
}

int mgmt_route_decide(shm_t *shm, shm_str_t service, const mgmt_caller_t *caller, uint32_t *variant)
{
	const struct route_area_sh *a = area_of(shm);
	struct route_grp_rec groups[MGMT_MAX_RULE_GROUPS];
	uint8_t addr[16];
	bool have_addr =
	    caller && caller->ip.ptr && route_ip_parse(caller->ip.ptr, caller->ip.len, addr) == 0;
	*variant = 0;
	if (!a)
		return 0;
	for (unsigned attempt = 0; attempt < ROUTE_READ_RETRIES; attempt++) {
		view_t v;
		struct route_rule_rec rule = {0};
		uint32_t pool = POOL_ALL, ngroups = 0;
		int in = view_begin(shm, a, &v);
		if (in == -EAGAIN) {
			stall(attempt);
			continue;
		}
		const struct route_svc_rec *r = in ? find(&v, service) : NULL;
		if (r) {
			const struct route_cidr *white = NULL;
			const struct route_grp_rec *cg = NULL;
			const struct route_canary_rec *c = canary_of(r, &white, &cg);
			if (c && c->ngroups) {
				bool yes = have_addr && whitelisted(white, c->nwhite, addr);
				pool = yes ? POOL_CANARY : POOL_NO_CANARY;
			}
			const struct route_grp_rec *g =
			    pool == POOL_CANARY ? NULL : rule_groups(r, &rule);
			if (g) {
				ngroups = rule.ngroups;
				memcpy(groups, g, ngroups * sizeof(*g));
			}
		}
		if (!view_still(a, &v)) {
			stall(attempt);
			continue;
		}
		/* From here on, copies only: the counter moves once per call. */
		int pick = -1;
		if (ngroups) {
			switch (rule.strategy) {
			case ROUTE_CLOSE:
				pick = route_pick_close(
				    groups, ngroups,
				    caller ? route_hash_lower(caller->zone.ptr, caller->zone.len)
				           : 0,
				    caller
				        ? route_hash_lower(caller->region.ptr, caller->region.len)
				        : 0);
				break;
			case ROUTE_HASH:
				pick =
				    route_pick_hash(groups, ngroups, caller ? caller->ip.ptr : "",
				                    caller && caller->ip.ptr ? caller->ip.len : 0);
				break;
			default: {
				uint64_t *ctr =
				    (uint64_t *)&a->counters[rule.counter % ROUTE_COUNTERS];
				pick = route_pick_wrr(groups, ngroups, ck_pr_faa_64(ctr, 1));
				break;
			}
			}
		}
		*variant = VARIANT(pool, pick >= 0 ? pick + 1 : 0);
		return 0;
	}
	return -EBUSY;
}

/* What an instance must be to be kept in a variant. */
typedef struct {
	const struct route_svc_rec *r;
	const struct route_grp_rec *canary; /* the canary groups */
	uint32_t ncanary;
	uint32_t pool;
	const struct route_grp_rec *group; /* the rule group, or NULL */
} keep_t;

static int keep_variant(void *ctx, const uint64_t *tags)
{
	const keep_t *k = ctx;
	if (k->pool != POOL_ALL) {
		bool in = false;
		for (uint32_t i = 0; i < k->ncanary && !in; i++)
			in = member(k->r, &k->canary[i], tags);
		if (in != (k->pool == POOL_CANARY))
			return 0;
	}
	return k->group ? member(k->r, k->group, tags) : 1;
}

/* One read of a variant against view v; *empty when it listed nothing. */
static int read_variant(shm_t *shm, const view_t *v, shm_str_t service, uint32_t pool,
                        uint32_t group, buf_t *out, shm_service_info_t *info)
{
	const struct route_svc_rec *r = find(v, service);
	keep_t k = {.r = r, .pool = POOL_ALL};
	if (r) {
		const struct route_cidr *white = NULL;
		const struct route_canary_rec *c = canary_of(r, &white, &k.canary);
		struct route_rule_rec rule;
		const struct route_grp_rec *g = rule_groups(r, &rule);
		if (c && c->ngroups && pool != POOL_ALL) {
			k.pool = pool;
			k.ncanary = c->ngroups;
		}
		if (g && group >= 1 && group <= rule.ngroups && pool != POOL_CANARY)
			k.group = &g[group - 1];
	}
	if (k.pool == POOL_ALL && !k.group)
		return proj_service_read(shm, service, out, info, NULL, NULL);
	return proj_service_read(shm, service, out, info, keep_variant, &k);
}

int mgmt_service_read_routed(shm_t *shm, shm_str_t service, uint32_t variant, buf_t *out,
                             shm_service_info_t *info)
{
	const struct route_area_sh *a = area_of(shm);
	size_t mark = out->len;
	uint32_t pool = VARIANT_POOL(variant), group = VARIANT_GROUP(variant);
	if (!a || variant == 0)
		return mgmt_service_read(shm, service, out, info);
	for (unsigned attempt = 0; attempt < ROUTE_READ_RETRIES; attempt++) {
		view_t v;
		int in = view_begin(shm, a, &v), rc;
		if (in == -EAGAIN) {
			stall(attempt);
			continue;
		}
		if (in == 0)
			return mgmt_service_read(shm, service, out, info);
		rc = read_variant(shm, &v, service, pool, group, out, info);
		/* A group with no instance up: the pool; an empty pool: every
		 * instance (MANAGEMENT.md §2). */
		if (rc == 0 && info->count == 0 && group) {
			out->len = mark;
			rc = read_variant(shm, &v, service, pool, 0, out, info);
		}
		if (rc == 0 && info->count == 0 && pool != POOL_ALL) {
			out->len = mark;
			rc = read_variant(shm, &v, service, POOL_ALL, 0, out, info);
		}
		if (view_still(a, &v))
			return rc;
		out->len = mark;
		stall(attempt);
	}
	return -EBUSY;
}

/* ---- The Java frame ------------------------------------------------------------------------ */

typedef struct {
	const struct route_svc_rec *r;
	const struct route_grp_rec *g;
} hole_t;

static int keep_member(void *ctx, const uint64_t *tags)
{
	const hole_t *h = ctx;
	return member(h->r, h->g, tags);
}

/* The rules text with its holes filled. */
static int put_rules(shm_t *shm, shm_str_t service, const struct route_svc_rec *r, buf_t *out)
{
	const char *text = in_rec(r, r->rules_off, r->rules_len);
	const struct route_grp_rec *holes =
	    r->nholes ? in_rec(r, r->holes_off, (uint64_t)r->nholes * sizeof(*holes)) : NULL;
	if (!text || r->rules_len == 0 || (r->nholes && !holes))
		return json_put_raw(out, "[]");
	size_t i = 0;
	while (i < r->rules_len) {
		const char *h = memchr(text + i, ROUTE_HOLE, r->rules_len - i);
		size_t n = h ? (size_t)(h - (text + i)) : r->rules_len - i;
		buf_append(out, text + i, n);
		i += n;
		if (!h)
			break;
		uint32_t k = i + 1 < r->rules_len ? (uint8_t)text[i + 1] : 0;
		i += 2;
		if (k == 0 || k > r->nholes) {
			json_put_raw(out, "null");
			continue;
		}
		hole_t ctx = {r, &holes[k - 1]};
		shm_service_info_t info;
		size_t mark = out->len;
		int rc = proj_service_read(shm, service, out, &info, keep_member, &ctx);
		if (rc == -ENOENT) {
			out->len = mark;
			json_put_raw(out, "[]");
		} else if (rc < 0) {
			return rc;
		}
	}
	return buf_error(out);
}

static int frame(shm_t *shm, shm_str_t service, buf_t *out, bool rules)
{
	static const char none[] = ",\"logicInstances\":null,\"metadata\":null,\"routeRules\":null";
	const struct route_area_sh *a = area_of(shm);
	size_t mark = out->len;
	if (!a)
		return json_put_raw(out, none);
	for (unsigned attempt = 0; attempt < ROUTE_READ_RETRIES; attempt++) {
		view_t v;
		int in = view_begin(shm, a, &v), rc = 0;
		if (in == -EAGAIN) {
			stall(attempt);
			continue;
		}
		const struct route_svc_rec *r = in ? find(&v, service) : NULL;
		const char *logic = r ? in_rec(r, r->logic_off, r->logic_len) : NULL;
		if (!r || !logic || r->logic_len == 0) {
			rc = json_put_raw(out, none);
		} else {
			json_put_raw(out, ",\"logicInstances\":");
			buf_append(out, logic, r->logic_len);
			json_put_raw(out, ",\"metadata\":null,\"routeRules\":");
			rc = rules ? put_rules(shm, service, r, out) : json_put_raw(out, "[]");
		}
		if (in == 0 || view_still(a, &v))
			return rc;
		out->len = mark;
		stall(attempt);
	}
	return -EBUSY;
}

int mgmt_route_frame(shm_t *shm, shm_str_t service, buf_t *out)
{
	return frame(shm, service, out, true);
}

int mgmt_route_frame_routed(shm_t *shm, shm_str_t service, buf_t *out)
{
	return frame(shm, service, out, false);
}

/* ---- Publishing ------------------------------------------------------------------------------ */

/* Names and digests of an image's records. */
typedef struct {
	const char *name;
	uint32_t len;
	uint64_t digest;
} entry_t;

static size_t entries(const uint8_t *img, uint32_t len, entry_t **out)
{
	struct route_img_hdr h;
	*out = NULL;
	if (len < sizeof(h))
		return 0;
	memcpy(&h, img, sizeof(h));
	if (h.magic != ROUTE_IMG_MAGIC || (h.mask & (h.mask + 1)) ||
	    sizeof(h) + ((uint64_t)h.mask + 1) * 4 > len)
		return 0;
	entry_t *v = calloc(h.nsvc ? h.nsvc : 1, sizeof(*v));
	size_t n = 0;
	const uint32_t *index = (const uint32_t *)(img + sizeof(h));
	for (uint32_t k = 0; v && k <= h.mask && n < h.nsvc; k++) {
		uint32_t off = index[k];
		if (!off || (uint64_t)off + sizeof(struct route_svc_rec) > len)
			continue;
		const struct route_svc_rec *r = (const void *)(img + off);
		if ((uint64_t)off + r->len > len || sizeof(*r) + r->name_len + 1 > r->len)
			continue;
		v[n++] = (entry_t){(const char *)(r + 1), r->name_len, r->digest};
	}
	*out = v;
	return n;
}

static int add_changed(char ***changed, size_t *n, size_t *cap, const char *name, uint32_t len)
{
	for (size_t i = 0; i < *n; i++)
		if (strlen((*changed)[i]) == len && !strncmp((*changed)[i], name, len))
			return 0;
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		char **v = realloc(*changed, c * sizeof(*v));
		if (!v)
			return -ENOMEM;
		*changed = v;
		*cap = c;
	}
	if (!((*changed)[*n] = strndup(name, len)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

/* The services whose records differ between two images. */
static int diff(const uint8_t *old, uint32_t olen, const route_image_t *img, char ***changed,
                size_t *n, size_t *cap)
{
	entry_t *a = NULL, *b = NULL;
	size_t na = entries(old, olen, &a), nb = entries(img->data, (uint32_t)img->len, &b);
	int rc = 0;
	for (size_t i = 0; i < nb && rc == 0; i++) {
		bool same = false;
		for (size_t j = 0; j < na && !same; j++)
			same = a[j].len == b[i].len && !memcmp(a[j].name, b[i].name, b[i].len) &&
			       a[j].digest == b[i].digest;
		if (!same)
			rc = add_changed(changed, n, cap, b[i].name, b[i].len);
	}
	for (size_t j = 0; j < na && rc == 0; j++) {
		bool kept = false;
		for (size_t i = 0; i < nb && !kept; i++)
			kept = a[j].len == b[i].len && !memcmp(a[j].name, b[i].name, a[j].len);
		if (!kept)
			rc = add_changed(changed, n, cap, a[j].name, a[j].len);
	}
	free(a);
	free(b);
	return rc;
}

/* The current image's place, when it is whole (a writer that died left
 * none: the data area is then free). */
static bool current(const struct route_area_sh *a, uint64_t *off, uint64_t *len)
{
	const struct route_buf_sh *c = &a->buf[a->active & 1];
	if (!a->built || (c->seq.sequence & 1) || c->len > a->buf_bytes ||
	    c->off + page_up(c->len) > data_room(a))
		return false;
	*off = c->off;
	*len = c->len;
	return true;
}

/* Where an image of len bytes goes (MEMORY above). */
static uint64_t place(const struct route_area_sh *a, size_t len)
{
	uint64_t off, cur;
	if (!current(a, &off, &cur) || page_up(len) <= off)
		return 0;
	return off + page_up(cur);
}

bool route_in_reserved(shm_t *shm, const struct route_area_sh *a)
{
	uint64_t off, len;
	return !current(a, &off, &len) || off + len <= data_reserved(shm, a);
}

int route_reserve(shm_t *shm, const struct route_area_sh *a, size_t len)
{
	if (len > a->buf_bytes)
		return -ENOSPC;
	return shm_mgmt_reserve(shm, a->data_off + place(a, len) + len);
}

int route_publish(shm_t *shm, struct route_area_sh *a, const route_image_t *img, uint64_t gen,
                  char ***changed, size_t *nchanged, size_t *cap)
{
	uint64_t off = place(a, img->len), coff = 0, clen = 0;
	int rc = route_reserve(shm, a, img->len);
	if (rc < 0)
		return rc;
	bool have = current(a, &coff, &clen);
	rc = diff(data_of(a) + coff, have ? (uint32_t)clen : 0, img, changed, nchanged, cap);
	if (rc < 0)
		return rc;
	uint32_t t = (a->active & 1) ^ 1;
	struct route_buf_sh *b = &a->buf[t];
	unsigned s = ck_pr_load_uint(&b->seq.sequence);
	if (s & 1)
		ck_pr_store_uint(&b->seq.sequence, s + 1);
	ck_sequence_write_begin(&b->seq);
	memcpy(data_of(a) + off, img->data, img->len);
	b->off = off;
	b->len = (uint32_t)img->len;
	b->nsvc = img->nsvc;
	b->store_gen = gen;
	b->digest = img->digest;
	ck_sequence_write_end(&b->seq);
	ck_pr_fence_store();
	ck_pr_store_32(&a->active, t);
	ck_pr_store_32(&a->built, 1);
	return 0;
}

int route_snapshot(const struct route_area_sh *a, uint64_t *digest, uint64_t *gen, bool *settled)
{
	for (unsigned attempt = 0; attempt < ROUTE_READ_RETRIES; attempt++) {
		uint32_t cur = ck_pr_load_32((uint32_t *)&a->active) & 1;
		const struct route_buf_sh *b = &a->buf[cur];
		unsigned s = ck_pr_load_uint((unsigned *)&b->seq.sequence);
		ck_pr_fence_load();
		if (!(s & 1)) {
			*digest = b->digest;
			*gen = b->store_gen;
			*settled = ck_pr_load_32((uint32_t *)&a->built) != 0;
			ck_pr_fence_load();
			if (ck_pr_load_uint((unsigned *)&b->seq.sequence) == s)
				return 0;
		}
		stall(attempt);
	}
	return -EBUSY;
}

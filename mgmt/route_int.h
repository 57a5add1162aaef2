/*
 * route_int.h - internal to mgmt/: what the routing files share (groups,
 * route rules, canary; MANAGEMENT.md §1, §2).
 *
 *   route_model.c  the rows: groups, tags, group instances, group
 *                  operations, logical instances, rules, rule groups,
 *                  canary configs (writes inside a routing transaction)
 *   route_read.c   the reads of those rows (lists and lookups)
 *   route_build.c  the routing image: a pure function of the store that the
 *                  projection holds (route_shm.c) and `artemis check` compares
 *   route_shm.c    the image in the region: publish (two descriptors, a
 *                  sequence each; memory reserved as the images grow), the
 *                  lock-free readers discovery calls,
 *                  the rule counters
 *   route_pick.c   the strategies and the whitelist: pure functions (unit
 *                  tested on their own)
 *   route.c        the routing transaction: lock, store transaction, the
 *                  down set and the image rebuilt, publish, reloads
 *
 * WHAT A REPLICATOR NEEDS OF THESE TABLES
 *
 * Every routing table follows the store's row conventions: a natural key,
 * `deleted` tombstones (a delete sets deleted = 1, never removes the row),
 * `hlc` + `origin_node` of the last write (last writer wins), `seq` = the
 * store generation of the last write (the cursor a replicator follows:
 * "rows with seq > N").  Unique keys hold among live rows only (partial
 * indexes WHERE deleted = 0); a write to a natural key revives its
 * tombstone when there is one, so a key has one row.
 *
 * Numeric ids (groupId, routeRuleId, routeRuleGroupId, group instance and
 * logical instance ids) are this node's: another node may number the same
 * group differently.  Between nodes, rows are identified by natural keys:
 *
 *   service_group             (service_id, region_id, zone_id, name)
 *   service_group_tag         (group's natural key, tag)
 *   service_group_instance    (group's natural key, instance_id)
 *   service_group_operation   (group's natural key, operation)
 *   service_instance          (service_id, instance_id)
 *   service_route_rule        (route_id); (service_id, name) is unique too
 *   service_route_rule_group  (rule's route_id, group's natural key)
 *   canary_config             (service_id)
 *
 * so the replicator (replica.c) sends child rows with their parents'
 * natural keys and maps them to local ids on arrival (creating a missing
 * parent as a tombstone to hang them on), applies last writer wins by hlc
 * per row, and then calls the same rebuild a local write does
 * (route_rebuild_locked):
 * the down set and the routing image are functions of the tables only.
 * Audit records of these kinds travel as the other audit records do.
 */
#ifndef ARTEMIS_MGMT_ROUTE_INT_H
#define ARTEMIS_MGMT_ROUTE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "mgmt_int.h"

/* Migration 2 of the store (store.c runs it): the routing tables. */
extern const char route_schema_v3[];

/* ---- route_model.c -------------------------------------------------------------- */

/* The transaction a routing write runs in (route.c): the store, the
 * write's stamp and context, and the services it touched (each gets a
 * `reload`). */
struct mgmt_rtx {
	mgmt_t *m;
	store_t *st;
	proj_t *p;
	store_stamp_t stamp;
	mgmt_ctx_t ctx;
	char **services; /* touched, lowercase, NUL-terminated */
	size_t nservices, cap;
	int failed; /* a write failed: commit refuses */
};

/* Note a service the write touched. */
int rtx_touch(mgmt_rtx_t *t, const char *service);

/* ---- route_read.c ------------------------------------------------------------------ */

int route_rule_by_id(mgmt_t *m, int64_t id, mgmt_rule_t *out);

/* ---- route_build.c --------------------------------------------------------------- */

/* The down tags routing adds to the filter (MANAGEMENT.md §2): for each
 * group with an operation in force, its group tag and the instance tag of
 * each of its group instances.  Inside the caller's transaction. */
int route_down_tags(store_t *st, const shm_t *shm, tagset_t *out, char *err, size_t err_len);

/* The routing image of the store (inside the caller's transaction): bytes
 * the region's routing buffer holds, a pure function of the tables (and
 * the region's tag seed).  *out is malloc'd. */
typedef struct {
	uint8_t *data;
	size_t len;
	uint32_t nsvc;
	uint64_t digest; /* XXH3 of data */
} route_image_t;
int route_build(store_t *st, const shm_t *shm, route_image_t *out, char *err, size_t err_len);
void route_image_free(route_image_t *img);

/* ---- route_shm.c ------------------------------------------------------------------- */

/* The image format (offsets from the buffer's start, little-endian as the
 * host; 8-byte aligned records):
 *
 *   struct route_img_hdr     nsvc, index size, total length
 *   uint32_t index[mask+1]   offsets of service records, 0 = empty; probed
 *                            linearly from XXH3(lowercase serviceId)
 *   records                  struct route_svc_rec, each followed by its
 *                            name, its Java fragments, its applied rule and
 *                            its canary (see the structs)
 */
#define ROUTE_HOLE 0x01 /* in the Java rules text: ROUTE_HOLE, hole index */

struct route_img_hdr {
	uint32_t magic;
	uint32_t nsvc;
	uint32_t mask; /* index entries - 1 */
	uint32_t len;  /* bytes of the image */
};

/* A group as routing tests membership: an instance belongs when its group
 * tag is group_tag (its registered groupId names the group) or its
 * instance tag is among the group's bindings (sorted). */
struct route_grp_rec {
	uint64_t group_tag;
	uint64_t key_hash;    /* consistent hashing: XXH3 of the lowercase group key */
	uint64_t zone_hash;   /* close-by-visit: XXH3 of the lowercase zone (hint or group's) */
	uint64_t region_hash; /* and region */
	uint32_t weight;      /* the released weight as Rust reads it (null: 5) */
	uint32_t nbind;
	uint32_t bind_off; /* uint64_t[nbind] instance tags, sorted */
	uint32_t pad;
};

enum route_strategy {
	ROUTE_WRR = 0,   /* weighted-round-robin */
	ROUTE_CLOSE = 1, /* close-by-visit */
	ROUTE_HASH = 2,  /* consistent-hash */
};

struct route_rule_rec {
	uint32_t strategy; /* enum route_strategy */
	uint32_t counter;  /* slot of the rule's round-robin counter */
	uint32_t ngroups;
	uint32_t pad;
	/* struct route_grp_rec groups[ngroups] */
};

/* A whitelist entry: an address and a prefix length (the whole address
 * for a plain IP).  IPv4 is kept as its IPv4-mapped IPv6 form. */
struct route_cidr {
	uint8_t addr[16];
	uint8_t bits; /* 0..128 */
	uint8_t pad[7];
};

struct route_canary_rec {
	uint32_t nwhite;
	uint32_t ngroups; /* the canary groups (their union is the canary pool) */
	/* struct route_cidr white[nwhite]; struct route_grp_rec groups[ngroups] */
};

struct route_svc_rec {
	uint32_t len; /* of the whole record */
	uint32_t name_len;
	uint64_t name_hash;            /* XXH3 of the lowercase name */
	uint64_t digest;               /* XXH3 of the rest of the record: what changed */
	uint32_t logic_off, logic_len; /* "[..]" logicInstances */
	uint32_t rules_off, rules_len; /* "[..]" routeRules, with holes */
	uint32_t holes_off, nholes;    /* struct route_grp_rec[nholes]: the groups whose
	                                * members fill the holes */
	uint32_t rule_off;             /* struct route_rule_rec applied on the Rust
	                                * paths, 0 = none */
	uint32_t canary_off;           /* struct route_canary_rec, 0 = none (or disabled) */
	                               /* char name[name_len + 1], lowercase */
};

#define ROUTE_IMG_MAGIC   0x52544d31u /* "RTM1" */
#define ROUTE_COUNTERS    4096u       /* round-robin counters (rule id % this) */
#define ROUTE_FIRST_BYTES (64u << 10) /* of the image area, reserved at start */

/* The routing area of the management section (its bytes for images of at
 * most buf_bytes), laid out by proj_init at area_off of the section; what
 * of it a start reserves (the rest is reserved as images need it). */
uint64_t route_area_bytes(uint32_t buf_bytes);
uint64_t route_area_initial_bytes(void);
void route_area_init(void *area, uint64_t area_off, uint32_t buf_bytes);
/* The area of a section (NULL when it has none). */
struct route_area_sh;
struct route_area_sh *route_area_of(const proj_t *p);
/* Writer, under the projection lock: back the memory the next image of
 * len bytes needs (0; -ENOSPC past buf_bytes; -ENOBUFS when /dev/shm has
 * no room: nothing changed).  A write calls it before it commits. */
int route_reserve(shm_t *shm, const struct route_area_sh *a, size_t len);
/* Writer, under the projection lock: make img the active image (reserving
 * first, as route_reserve).  The services whose records differ from the
 * previous image are added to *changed (lowercase names; the caller frees
 * them). */
int route_publish(shm_t *shm, struct route_area_sh *a, const route_image_t *img, uint64_t gen,
                  char ***changed, size_t *nchanged, size_t *cap);
/* check: the active image's digest and store generation. */
int route_snapshot(const struct route_area_sh *a, uint64_t *digest, uint64_t *gen, bool *settled);
uint32_t route_buf_bytes(const struct route_area_sh *a);
/* check: the active image lies within the area and its reserved memory. */
bool route_in_reserved(shm_t *shm, const struct route_area_sh *a);

/* ---- route.c ------------------------------------------------------------------------- */

/* Under the projection lock: the image rebuilt from the store (at store
 * generation gen) and published; `reload` for the services it changed and
 * for those of touched (lowercase; NULL: none), as a routing write's. */
int route_rebuild_locked(store_t *st, shm_t *shm, proj_t *p, uint64_t gen, char **touched,
                         size_t ntouched, char *err, size_t err_len);
/* check: the published image equals the store's.  0, or -EIO with msg. */
int route_check(store_t *st, shm_t *shm, proj_t *p, char *msg, size_t len);

/* ---- route_pick.c ------------------------------------------------------------------- */

/* The group a call goes to, as an index into groups, or -1 for every
 * instance (no group has a weight).  Pure functions of their arguments;
 * wrr takes the counter's value for this call. */
int route_pick_wrr(const struct route_grp_rec *g, uint32_t n, uint64_t count);
int route_pick_close(const struct route_grp_rec *g, uint32_t n, uint64_t zone_hash,
                     uint64_t region_hash);
int route_pick_hash(const struct route_grp_rec *g, uint32_t n, const char *ip, size_t ip_len);
/* XXH3 of s lowercased (ASCII); 0 for an empty or absent s. */
uint64_t route_hash_lower(const char *s, size_t len);

/* "10.0.0.1", "10.1.0.0/16", "fd00::1", "fd00::/8" into *out; -EINVAL. */
int route_cidr_parse(const char *s, size_t len, struct route_cidr *out);
/* An address (no prefix) into 16 bytes (IPv4 mapped); -EINVAL. */
int route_ip_parse(const char *s, size_t len, uint8_t addr[16]);
bool route_cidr_match(const struct route_cidr *c, const uint8_t addr[16]);

#endif

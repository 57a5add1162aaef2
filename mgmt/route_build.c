/*
 * route_build.c - what the projection holds of the routing tables: the
 * down tags of the group operations, and the routing image discovery reads
 * (route_int.h has its format).  Both are pure functions of the store (and
 * of the region's tag seed), computed inside the caller's transaction: by a
 * routing write before it commits (so a write whose image would not fit is
 * refused with nothing written), by the master at start and after a
 * repair, and by `artemis check`, which compares the digests.
 *
 * Per service with routing data (a group, a rule, a logical instance or a
 * canary config), in the order of its lowercase name:
 *   - logicInstances: its logical instances, status "up" (API.md §4.10);
 *   - routeRules: its published rules with their active groups, in id
 *     order, rules without groups dropped; each group with its Java key,
 *     released weight (null: 5), bound instanceIds and tags; the canary
 *     rule's groups with a hole where their instances go;
 *   - the rule the Rust paths apply: the first published rule other than
 *     the canary rule that has an active group;
 *   - the canary: when its config is enabled, the whitelist and the canary
 *     groups (those of the service's canary-route-rule, else its groups
 *     named "canary").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <xxhash.h>

#include "artemis/codec.h"
#include "route_int.h"

#define IMG_MAX_BYTES (256u << 20)

static sqlite3_stmt *prep(store_t *st, const char *sql)
{
	sqlite3_stmt *q = NULL;
	return sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) == SQLITE_OK ? q : NULL;
}

static const char *txt(sqlite3_stmt *q, int i)
{
	const char *v = (const char *)sqlite3_column_text(q, i);
	return v ? v : "";
}

static shm_str_t str_of(const char *s)
{
	return (shm_str_t){s, strlen(s)};
}

static uint64_t group_tag(const shm_t *shm, const char *svc, const char *region, const char *zone,
                          const char *name)
{
	shm_str_t p[4] = {str_of(svc), str_of(region), str_of(zone), str_of(name)};
	return shm_tag(shm, SHM_TAG_GROUP, p, 4);
}

static uint64_t instance_tag(const shm_t *shm, const char *region, const char *svc,
                             const char *inst)
{
	shm_str_t p[3] = {str_of(region), str_of(svc), str_of(inst)};
	return shm_tag(shm, SHM_TAG_INSTANCE, p, 3);
}

/* ---- The down tags ----------------------------------------------------------------- */

int route_down_tags(store_t *st, const shm_t *shm, tagset_t *out, char *err, size_t err_len)
{
	/* Every write of an operation asks: a statement kept prepared. */
	sqlite3_stmt *q =
	    store_stmt(st, SQ_ROUTE_DOWN,
	               "SELECT g.service_id, g.region_id, g.zone_id, g.name, "
	               "b.instance_id, b.region_id FROM service_group g LEFT JOIN "
	               "service_group_instance b ON b.group_id = g.id AND b.deleted = "
	               "0 WHERE g.deleted = 0 AND EXISTS (SELECT 1 FROM "
	               "service_group_operation o WHERE o.group_id = g.id AND "
	               "o.deleted = 0)");
	int rc;
	if (!q)
		return store_fail(st, "listing group operations", err, err_len);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *svc = txt(q, 0), *region = txt(q, 1);
		if (tagset_add(out, group_tag(shm, svc, region, txt(q, 2), txt(q, 3))) < 0)
			break;
		if (sqlite3_column_type(q, 4) != SQLITE_NULL) {
			const char *br = txt(q, 5);
			if (tagset_add(out,
			               instance_tag(shm, br[0] ? br : region, svc, txt(q, 4))) < 0)
				break;
		}
	}
	sqlite3_reset(q);
	if (rc == SQLITE_ROW) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	return rc == SQLITE_DONE ? 0 : store_fail(st, "listing group operations", err, err_len);
}

/* ---- The image ------------------------------------------------------------------------ */

/* The statements of one build, prepared once. */
typedef struct {
	store_t *st;
	const shm_t *shm;
	sqlite3_stmt *logic, *rules, *groups, *tags, *binds, *canary, *canary_rule, *canary_named;
} build_t;

/* One group of a rule, as built. */
typedef struct {
	struct route_grp_rec rec;
	uint64_t *binds;
} grp_t;

typedef struct {
	buf_t logic, rules; /* Java text */
	buf_t rule_groups;  /* the applied rule: route_grp_rec[] */
	struct route_rule_rec rule;
	bool has_rule;
	buf_t holes; /* route_grp_rec[] of the canary rule's groups */
	uint32_t nholes;
	buf_t binds; /* every group's bindings, uint64_t[] each */
	bool has_canary;
	buf_t canary; /* route_canary_rec + cidrs + groups */
} svc_t;

static void svc_free(svc_t *s)
{
	buf_free(&s->logic);
	buf_free(&s->rules);
	buf_free(&s->rule_groups);
	buf_free(&s->holes);
	buf_free(&s->binds);
	buf_free(&s->canary);
}

static void put_opt(buf_t *b, const char *v)
{
	json_put_cstr(b, v && *v ? v : NULL);
}

/* logicInstances: Java's Instance of each row, status "up". */
static int build_logic(build_t *bd, const char *svc, svc_t *s)
{
	sqlite3_stmt *q = bd->logic;
	int rc, n = 0;
	sqlite3_reset(q);
	sqlite3_bind_text(q, 1, svc, -1, SQLITE_STATIC);
	json_put_raw(&s->logic, "[");
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		json_t *md = NULL;
		const char *meta = txt(q, 4);
		if (meta[0])
			md = json_loads(meta, 0, NULL);
		json_put_raw(&s->logic, n++ ? "," : "");
		json_put_raw(&s->logic, "{\"groupId\":");
		put_opt(&s->logic, txt(q, 9));
		json_put_raw(&s->logic, ",\"healthCheckUrl\":");
		put_opt(&s->logic, txt(q, 10));
		json_put_raw(&s->logic, ",\"instanceId\":");
		json_put_cstr(&s->logic, txt(q, 1));
		json_put_raw(&s->logic, ",\"ip\":");
		put_opt(&s->logic, txt(q, 2));
		json_put_raw(&s->logic, ",\"machineName\":");
		put_opt(&s->logic, txt(q, 3));
		json_put_raw(&s->logic, ",\"metadata\":");
		if (json_is_object(md))
			json_put_value(&s->logic, md);
		else
			json_put_raw(&s->logic, "{}");
		json_decref(md);
		json_put_raw(&s->logic, ",\"port\":");
		json_put_i64(&s->logic, sqlite3_column_int(q, 5));
		json_put_raw(&s->logic, ",\"protocol\":");
		put_opt(&s->logic, txt(q, 6));
		json_put_raw(&s->logic, ",\"regionId\":");
		put_opt(&s->logic, txt(q, 7));
		json_put_raw(&s->logic, ",\"serviceId\":");
		json_put_cstr(&s->logic, txt(q, 0));
		json_put_raw(&s->logic, ",\"status\":\"up\",\"url\":");
		put_opt(&s->logic, txt(q, 11));
		json_put_raw(&s->logic, ",\"zoneId\":");
		put_opt(&s->logic, txt(q, 8));
		json_put_raw(&s->logic, "}");
	}
	json_put_raw(&s->logic, "]");
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* The Java weight of a released value (ServiceGroups.fixWeight). */
static int java_weight(sqlite3_stmt *q, int i)
{
	if (sqlite3_column_type(q, i) == SQLITE_NULL)
		return MGMT_WEIGHT_DEFAULT;
	int w = sqlite3_column_int(q, i);
	return w < 0 ? MGMT_WEIGHT_DEFAULT : w > MGMT_WEIGHT_JAVA_MAX ? MGMT_WEIGHT_JAVA_MAX : w;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* A group's record and, when java is not NULL, its Java ServiceGroup
 * (hole: its instances are the hole's).  q's row: id, service, region,
 * zone, name, weight, hint region, hint zone. */
static int build_group(build_t *bd, sqlite3_stmt *q, grp_t *g, buf_t *java, int hole)
{
	const char *svc = txt(q, 1), *region = txt(q, 2), *zone = txt(q, 3), *name = txt(q, 4);
	const char *hr = txt(q, 6), *hz = txt(q, 7);
	int64_t id = sqlite3_column_int64(q, 0);
	mgmt_group_t key;
	char jkey[MGMT_MAX_SERVICE + MGMT_MAX_REGION + MGMT_MAX_ZONE + MGMT_MAX_NAME + 8];
	int rc;
	memset(g, 0, sizeof(*g));
	snprintf(key.service, sizeof(key.service), "%s", svc);
	snprintf(key.region, sizeof(key.region), "%s", region);
	snprintf(key.zone, sizeof(key.zone), "%s", zone);
	snprintf(key.name, sizeof(key.name), "%s", name);
	mgmt_group_key(&key, jkey, sizeof(jkey));
	g->rec.group_tag = group_tag(bd->shm, svc, region, zone, name);
	g->rec.key_hash = route_hash_lower(jkey, strlen(jkey));
	g->rec.zone_hash = route_hash_lower(hz[0] ? hz : zone, strlen(hz[0] ? hz : zone));
	g->rec.region_hash = route_hash_lower(hr[0] ? hr : region, strlen(hr[0] ? hr : region));
	g->rec.weight = (uint32_t)java_weight(q, 5);
	if (java) {
		json_put_raw(java, "{\"groupKey\":");
		json_put_cstr(java, jkey);
		json_put_raw(java, ",\"instanceIds\":[");
	}
	/* bindings */
	size_t cap = 0;
	sqlite3_reset(bd->binds);
	sqlite3_bind_int64(bd->binds, 1, id);
	while ((rc = sqlite3_step(bd->binds)) == SQLITE_ROW) {
		const char *inst = txt(bd->binds, 0), *br = txt(bd->binds, 1);
		if (g->rec.nbind == cap) {
			cap = cap ? cap * 2 : 8;
			uint64_t *v = realloc(g->binds, cap * sizeof(*v));
			if (!v)
				return -ENOMEM;
			g->binds = v;
		}
		g->binds[g->rec.nbind++] = instance_tag(bd->shm, br[0] ? br : region, svc, inst);
		if (java) {
			json_put_raw(java, g->rec.nbind > 1 ? "," : "");
			json_put_cstr(java, inst);
		}
	}
	if (rc != SQLITE_DONE)
		return -EIO;
	if (g->rec.nbind > 1)
		qsort(g->binds, g->rec.nbind, sizeof(uint64_t), cmp_u64);
	if (!java)
		return 0;
	json_put_raw(java, "],\"instances\":");
	if (hole >= 0) {
		char h[2] = {ROUTE_HOLE, (char)(hole + 1)};
		buf_append(java, h, 2);
	} else {
		json_put_raw(java, "null");
	}
	json_put_raw(java, ",\"metadata\":");
	sqlite3_reset(bd->tags);
	sqlite3_bind_int64(bd->tags, 1, id);
	int ntags = 0;
	while ((rc = sqlite3_step(bd->tags)) == SQLITE_ROW) {
		json_put_raw(java, ntags++ ? "," : "{");
		json_put_cstr(java, txt(bd->tags, 0));
		json_put_raw(java, ":");
		json_put_cstr(java, txt(bd->tags, 1));
	}
	if (rc != SQLITE_DONE)
		return -EIO;
	json_put_raw(java, ntags ? "}" : "null");
	json_put_raw(java, ",\"weight\":");
	json_put_i64(java, g->rec.weight);
	json_put_raw(java, "}");
	return 0;
}

/* A group record and its bindings into the service's buffers: the
 * bindings' offset is relative to the binds buffer until the record is laid
 * out (svc_layout fixes it). */
static int keep_group(svc_t *s, buf_t *recs, grp_t *g)
{
	g->rec.bind_off = (uint32_t)s->binds.len;
	buf_append(&s->binds, g->binds, g->rec.nbind * sizeof(uint64_t));
	buf_append(recs, &g->rec, sizeof(g->rec));
	free(g->binds);
	g->binds = NULL;
	return buf_error(&s->binds) ? buf_error(&s->binds) : buf_error(recs);
}

static enum route_strategy strategy_code(const char *s)
{
	return !strcasecmp(s, "close-by-visit")    ? ROUTE_CLOSE
	       : !strcasecmp(s, "consistent-hash") ? ROUTE_HASH
	                                           : ROUTE_WRR;
}

/* One rule: its Java text (when published) and, for the first published
 * non-canary rule, the applied rule. */
static int build_rule(build_t *bd, svc_t *s, int64_t rule_id, const char *name,
                      const char *strategy, bool published, int *nrules)
{
	bool canary = !strcasecmp(name, MGMT_CANARY_RULE);
	bool applied = published && !canary && !s->has_rule;
	buf_t java = {0}, recs = {0};
	uint32_t n = 0;
	int rc;
	sqlite3_stmt *q = bd->groups;
	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, rule_id);
	json_put_raw(&java, "{\"groups\":[");
	while ((rc = sqlite3_step(q)) == SQLITE_ROW && n < MGMT_MAX_RULE_GROUPS) {
		grp_t g;
		json_put_raw(&java, n ? "," : "");
		int hole = published && canary ? (int)s->nholes : -1;
		if ((rc = build_group(bd, q, &g, published ? &java : NULL, hole)) < 0) {
			free(g.binds);
			goto out;
		}
		if (hole >= 0) {
			grp_t copy = g;
			copy.binds = malloc((g.rec.nbind ? g.rec.nbind : 1) * sizeof(uint64_t));
			if (!copy.binds) {
				free(g.binds);
				rc = -ENOMEM;
				goto out;
			}
			if (g.rec.nbind)
				memcpy(copy.binds, g.binds, g.rec.nbind * sizeof(uint64_t));
			keep_group(s, &s->holes, &copy);
			s->nholes++;
		}
		if ((rc = keep_group(s, &recs, &g)) < 0)
			goto out;
		n++;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		rc = -EIO;
		goto out;
	}
	rc = 0;
	if (n == 0)
		goto out; /* Java drops a rule without groups; nothing to apply */
	if (published) {
		json_put_raw(&java, "],\"routeId\":");
		json_put_cstr(&java, name);
		json_put_raw(&java, ",\"strategy\":");
		json_put_cstr(&java, strategy);
		json_put_raw(&java, "}");
		json_put_raw(&s->rules, (*nrules)++ ? "," : "");
		buf_append(&s->rules, java.data, java.len);
	}
	if (applied) {
		s->has_rule = true;
		s->rule.strategy = strategy_code(strategy);
		s->rule.counter = (uint32_t)(rule_id % ROUTE_COUNTERS);
		s->rule.ngroups = n;
		buf_append(&s->rule_groups, recs.data, recs.len);
	}
	rc = buf_error(&s->rules) ? buf_error(&s->rules) : buf_error(&s->rule_groups);
out:
	buf_free(&java);
	buf_free(&recs);
	return rc;
}

static int build_rules(build_t *bd, const char *svc, svc_t *s)
{
	sqlite3_stmt *q = bd->rules;
	int rc, nrules = 0;
	sqlite3_reset(q);
	sqlite3_bind_text(q, 1, svc, -1, SQLITE_STATIC);
	json_put_raw(&s->rules, "[");
	/* The rules' rows first: building a rule runs other statements. */
	typedef struct {
		int64_t id;
		char name[MGMT_MAX_NAME + 1];
		char strategy[32];
		bool published;
	} rule_row_t;
	rule_row_t *rows = NULL;
	size_t n = 0, cap = 0;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			rule_row_t *v = realloc(rows, cap * sizeof(*v));
			if (!v) {
				free(rows);
				return -ENOMEM;
			}
			rows = v;
		}
		rows[n].id = sqlite3_column_int64(q, 0);
		snprintf(rows[n].name, sizeof(rows[n].name), "%s", txt(q, 1));
		snprintf(rows[n].strategy, sizeof(rows[n].strategy), "%s", txt(q, 2));
		rows[n].published = !strcasecmp(txt(q, 3), "active");
		n++;
	}
	if (rc != SQLITE_DONE) {
		free(rows);
		return -EIO;
	}
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = build_rule(bd, s, rows[i].id, rows[i].name, rows[i].strategy,
		                rows[i].published, &nrules);
	free(rows);
	json_put_raw(&s->rules, "]");
	return rc;
}

/* The canary groups: q's rows (the canary rule's, or those named
 * "canary"). */
static int canary_groups(build_t *bd, sqlite3_stmt *q, const char *svc, svc_t *s, buf_t *recs,
                         uint32_t *n)
{
	int rc;
	sqlite3_reset(q);
	sqlite3_bind_text(q, 1, svc, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW && *n < MGMT_MAX_RULE_GROUPS) {
		grp_t g;
		if ((rc = build_group(bd, q, &g, NULL, -1)) < 0) {
			free(g.binds);
			return rc;
		}
		if ((rc = keep_group(s, recs, &g)) < 0)
			return rc;
		(*n)++;
	}
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -EIO;
}

static int build_canary(build_t *bd, const char *svc, svc_t *s)
{
	sqlite3_stmt *q = bd->canary;
	struct route_canary_rec rec = {0};
	buf_t cidrs = {0}, recs = {0};
	int rc;
	sqlite3_reset(q);
	sqlite3_bind_text(q, 1, svc, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return -EIO;
	if (sqlite3_column_int(q, 1) == 0)
		return 0; /* disabled: no canary routing */
	json_t *white = json_loads(txt(q, 0), 0, NULL), *v;
	size_t i;
	json_array_foreach(white, i, v)
	{
		struct route_cidr c;
		const char *e = json_string_value(v);
		if (e && route_cidr_parse(e, strlen(e), &c) == 0 &&
		    rec.nwhite < MGMT_MAX_WHITELIST) {
			buf_append(&cidrs, &c, sizeof(c));
			rec.nwhite++;
		}
	}
	json_decref(white);
	rc = canary_groups(bd, bd->canary_rule, svc, s, &recs, &rec.ngroups);
	if (rc == 0 && rec.ngroups == 0)
		rc = canary_groups(bd, bd->canary_named, svc, s, &recs, &rec.ngroups);
	if (rc == 0) {
		s->has_canary = true;
		buf_append(&s->canary, &rec, sizeof(rec));
		buf_append(&s->canary, cidrs.data, cidrs.len);
		buf_append(&s->canary, recs.data, recs.len);
		rc = buf_error(&s->canary);
	}
	buf_free(&cidrs);
	buf_free(&recs);
	return rc;
}

/* ---- Laying the image out --------------------------------------------------------------- */

static void pad8(buf_t *b)
{
	static const char zero[8];
	if (b->len % 8)
		buf_append(b, zero, 8 - b->len % 8);
}

/* Fix a run of group records' binding offsets: +base (relative to the
 * record's start). */
static void fix_binds(uint8_t *recs, uint32_t n, uint32_t base)
{
	for (uint32_t i = 0; i < n; i++) {
		struct route_grp_rec g;
		memcpy(&g, recs + i * sizeof(g), sizeof(g));
		g.bind_off += base;
		memcpy(recs + i * sizeof(g), &g, sizeof(g));
	}
}

/* The record of one service appended to img (8-aligned); its offset. */
static int svc_layout(buf_t *img, const char *name, svc_t *s, uint32_t *off_out)
{
	struct route_svc_rec r = {0};
	buf_t rec = {0};
	size_t nlen = strlen(name);
	r.name_len = (uint32_t)nlen;
	r.name_hash = route_hash_lower(name, nlen);
	buf_append(&rec, &r, sizeof(r));
	buf_append(&rec, name, nlen + 1);
	pad8(&rec);
	uint32_t binds = (uint32_t)rec.len;
	buf_append(&rec, s->binds.data, s->binds.len);
	pad8(&rec);
	r.logic_off = (uint32_t)rec.len;
	r.logic_len = (uint32_t)s->logic.len;
	buf_append(&rec, s->logic.data, s->logic.len);
	r.rules_off = (uint32_t)rec.len;
	r.rules_len = (uint32_t)s->rules.len;
	buf_append(&rec, s->rules.data, s->rules.len);
	pad8(&rec);
	if (s->nholes) {
		r.holes_off = (uint32_t)rec.len;
		r.nholes = s->nholes;
		buf_append(&rec, s->holes.data, s->holes.len);
	}
	if (s->has_rule) {
		r.rule_off = (uint32_t)rec.len;
		buf_append(&rec, &s->rule, sizeof(s->rule));
		buf_append(&rec, s->rule_groups.data, s->rule_groups.len);
	}
	if (s->has_canary) {
		r.canary_off = (uint32_t)rec.len;
		buf_append(&rec, s->canary.data, s->canary.len);
	}
	pad8(&rec);
	if (buf_error(&rec) || rec.len > IMG_MAX_BYTES) {
		buf_free(&rec);
		return -ENOMEM;
	}
	uint8_t *p = (uint8_t *)rec.data;
	if (r.nholes)
		fix_binds(p + r.holes_off, r.nholes, binds);
	if (r.rule_off)
		fix_binds(p + r.rule_off + sizeof(struct route_rule_rec), s->rule.ngroups, binds);
	if (r.canary_off) {
		struct route_canary_rec c;
		memcpy(&c, p + r.canary_off, sizeof(c));
		fix_binds(p + r.canary_off + sizeof(c) + c.nwhite * sizeof(struct route_cidr),
		          c.ngroups, binds);
	}
	r.len = (uint32_t)rec.len;
	r.digest = XXH3_64bits(p + sizeof(r), rec.len - sizeof(r));
	memcpy(p, &r, sizeof(r));
	pad8(img);
	*off_out = (uint32_t)img->len;
	buf_append(img, rec.data, rec.len);
	buf_free(&rec);
	return buf_error(img);
}

static int build_service(build_t *bd, const char *svc, buf_t *img, uint32_t *off)
{
	svc_t s;
	memset(&s, 0, sizeof(s));
	int rc = build_logic(bd, svc, &s);
	if (rc == 0)
		rc = build_rules(bd, svc, &s);
	if (rc == 0)
		rc = build_canary(bd, svc, &s);
	if (rc == 0 && (buf_error(&s.logic) || buf_error(&s.holes) || buf_error(&s.binds)))
		rc = -ENOMEM;
	if (rc == 0)
		rc = svc_layout(img, svc, &s, off);
	svc_free(&s);
	return rc;
}

static const char *const build_sql[] = {
    /* logic */
    "SELECT service_id, instance_id, ip, machine_name, metadata, port, protocol, region_id, "
    "zone_id, group_id, health_check_url, url FROM service_instance WHERE service_id = ?1 AND "
    "deleted = 0 ORDER BY id",
    /* rules */
    "SELECT id, name, strategy, status FROM service_route_rule WHERE service_id = ?1 AND "
    "deleted = 0 ORDER BY id",
    /* groups of a rule: active, live */
    "SELECT g.id, g.service_id, g.region_id, g.zone_id, g.name, x.weight, x.region_id, "
    "x.zone_id FROM service_route_rule_group x JOIN service_group g ON g.id = x.group_id AND "
    "g.deleted = 0 AND g.status = 'active' WHERE x.route_rule_id = ?1 AND x.deleted = 0 ORDER "
    "BY x.id",
    /* tags */
    "SELECT tag, value FROM service_group_tag WHERE group_id = ?1 AND deleted = 0 ORDER BY id",
    /* bindings */
    "SELECT instance_id, region_id FROM service_group_instance WHERE group_id = ?1 AND "
    "deleted = 0 ORDER BY id",
    /* canary */
    "SELECT ip_whitelist, enabled FROM canary_config WHERE service_id = ?1 AND deleted = 0",
    /* the canary rule's groups */
    "SELECT g.id, g.service_id, g.region_id, g.zone_id, g.name, x.weight, x.region_id, "
    "x.zone_id FROM service_route_rule r JOIN service_route_rule_group x ON x.route_rule_id = "
    "r.id AND x.deleted = 0 JOIN service_group g ON g.id = x.group_id AND g.deleted = 0 AND "
    "g.status = 'active' WHERE r.service_id = ?1 AND r.name = '" MGMT_CANARY_RULE
    "' AND r.deleted = 0 ORDER BY x.id",
    /* groups named canary */
    "SELECT id, service_id, region_id, zone_id, name, NULL, '', '' FROM service_group WHERE "
    "service_id = ?1 AND name = 'canary' AND deleted = 0 AND status = 'active' ORDER BY id",
};

static void build_close(build_t *bd)
{
	sqlite3_stmt **q[] = {&bd->logic, &bd->rules,  &bd->groups,      &bd->tags,
	                      &bd->binds, &bd->canary, &bd->canary_rule, &bd->canary_named};
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		sqlite3_finalize(*q[i]);
		*q[i] = NULL;
	}
}

static int build_open(build_t *bd)
{
	sqlite3_stmt **q[] = {&bd->logic, &bd->rules,  &bd->groups,      &bd->tags,
	                      &bd->binds, &bd->canary, &bd->canary_rule, &bd->canary_named};
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++)
		if (!(*q[i] = prep(bd->st, build_sql[i])))
			return -EIO;
	return 0;
}

/* The services with routing data, lowercase, sorted. */
static int service_names(store_t *st, char ***out, size_t *n)
{
	sqlite3_stmt *q =
	    prep(st, "SELECT lower(service_id) AS s FROM service_group WHERE "
	             "deleted = 0 UNION SELECT lower(service_id) FROM "
	             "service_route_rule WHERE deleted = 0 UNION SELECT "
	             "lower(service_id) FROM service_instance WHERE deleted = 0 UNION "
	             "SELECT lower(service_id) FROM canary_config WHERE deleted = 0 "
	             "ORDER BY s");
	char **v = NULL;
	size_t cap = 0;
	int rc;
	*n = 0;
	if (!q)
		return -EIO;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nv = realloc(v, cap * sizeof(*nv));
			if (!nv)
				break;
			v = nv;
		}
		if (!(v[*n] = strdup(txt(q, 0))))
			break;
		(*n)++;
	}
	sqlite3_finalize(q);
	*out = v;
	return rc == SQLITE_DONE ? 0 : rc == SQLITE_ROW ? -ENOMEM : -EIO;
}

static uint32_t pow2_for(uint32_t n)
{
	uint32_t c = 16;
	while (c < n * 2)
		c <<= 1;
	return c;
}

int route_build(store_t *st, const shm_t *shm, route_image_t *out, char *err, size_t err_len)
{
	build_t bd = {.st = st, .shm = shm};
	char **names = NULL;
	size_t n = 0;
	buf_t img = {0};
	uint32_t *index = NULL;
	int rc = service_names(st, &names, &n);
	memset(out, 0, sizeof(*out));
	if (rc == 0)
		rc = build_open(&bd);
	uint32_t slots = pow2_for((uint32_t)n);
	struct route_img_hdr hdr = {ROUTE_IMG_MAGIC, (uint32_t)n, slots - 1, 0};
	if (rc == 0 && !(index = calloc(slots, sizeof(*index))))
		rc = -ENOMEM;
	if (rc == 0) {
		buf_append(&img, &hdr, sizeof(hdr));
		buf_append(&img, index, slots * sizeof(*index));
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint32_t off = 0;
		rc = build_service(&bd, names[i], &img, &off);
		if (rc < 0)
			break;
		uint64_t h = route_hash_lower(names[i], strlen(names[i]));
		uint32_t k = (uint32_t)h & (slots - 1);
		while (index[k])
			k = (k + 1) & (slots - 1);
		index[k] = off;
	}
	build_close(&bd);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (rc == 0 && (buf_error(&img) || img.len > IMG_MAX_BYTES))
		rc = -ENOMEM;
	if (rc < 0) {
		free(index);
		buf_free(&img);
		if (rc == -EIO)
			return store_fail(st, "building the routing image", err, err_len);
		snprintf(err, err_len, "building the routing image: %s", strerror(-rc));
		return rc;
	}
	hdr.len = (uint32_t)img.len;
	/* no buf_error: img holds the header and index appended first */
	memcpy(img.data, &hdr, sizeof(hdr)); /* NOLINT(clang-analyzer-core.NonNullParamChecker) */
	memcpy(img.data + sizeof(hdr), index, slots * sizeof(*index));
	free(index);
	out->data = (uint8_t *)img.data;
	out->len = img.len;
	out->nsvc = (uint32_t)n;
	out->digest = XXH3_64bits(out->data, out->len);
	return 0;
}

void route_image_free(route_image_t *img)
{
	free(img->data);
	memset(img, 0, sizeof(*img));
}

/*
 * replica.c - the management store between nodes (MANAGEMENT.md §5,
 * docs/CLUSTER.md "Management data"): one descriptor per replicated table,
 * the rows walked for a peer, the rows a peer sent applied, digests, and the
 * collection of tombstones every peer has.  Called by the replicator only,
 * on its own connection (mgmt_repl_open, after fork).
 *
 * A descriptor names a table's record kind on the wire, its natural key,
 * the columns that travel and how two versions of one row meet:
 *
 *   POLICY_LWW    last writer wins: the greater (hlc, origin node), byte
 *                 order on the name for the same hlc.  A tombstone is a
 *                 version like any other (deleted = 1), so a later
 *                 removal wins over an earlier write and the other way
 *                 round.  A `sticky` column (0/1) that is 1 on either side
 *                 wins whatever the clocks say (a revocation stays).
 *   POLICY_FIRST  first writer wins: the smaller (hlc, origin node), so
 *                 two nodes that each made one before they met keep the
 *                 same one (the JWT secret).
 *   POLICY_ONCE   insert once, keyed by (origin node, key): audit records
 *                 and the like, never changed after they are written.
 *
 * Adding a table to replication is one line in `tables` (its rows must
 * follow the store's conventions: hlc, origin_node, seq on every row;
 * deleted for tombstones; natural keys between nodes, never local ids).
 *
 * A row that names another by its local id (a group's tag, a rule's
 * group: `refs`) travels with that parent's natural key instead, first in
 * its own key; on arrival the parent's id here is looked up by that key,
 * and a parent this store does not hold yet is made a tombstone that any
 * real version of it wins over (a stand-in that keeps the child's place;
 * `stub`).  A table with a second key unique among live rows (`unique2`:
 * a rule's serviceId and name) keeps the later of two live rows that
 * share it: the other one is removed here, by a write of this node that
 * travels like any other, so every node ends with the same one.
 *
 * Applying (mgmt_repl_begin/put/commit): under the projection's writer
 * lock, one IMMEDIATE transaction, like a local write: each row compared
 * with what the store holds by its natural key and written when it wins
 * (every replicated column, keys included, so a key's case converges too),
 * with this store's next generation in `seq` (the node's own stream and
 * its catch-ups follow that); the HLC merged with every timestamp received
 * (a later local write wins over everything seen); this node's own
 * sequences moved past its own records coming back (a store that lost
 * them numbers new ones after); the set in force recomputed for the
 * operation rows' targets; the sender's cursor stored in the same
 * transaction, so a cursor never runs ahead of what was applied.  After
 * the commit the projection is published (notices, versions, caches): the
 * same path as mgmt_apply.
 *
 * Walks (mgmt_repl_walk) read in short transactions, a page at a time,
 * ordered by (seq, pk) so a walk resumes exactly after the last row it
 * gave; a row written meanwhile moves to a seq above the walk's bound and
 * comes with the next one.
 *
 * Digests: per table and bucket (the natural key's hash), the count and
 * the sum of one hash per live row over its lower-cased key, hlc and
 * origin: two stores holding the same versions have equal digests.
 * Tombstones are left out: each node collects them in its own time, and a
 * tombstone differs from nothing only when the other side holds an older
 * live row, which its digest shows.  A pull's answer carries tombstones
 * all the same (they win over the puller's older rows); one of a row this
 * store does not hold and older than [cluster] mgmt_tombstone_ttl_s is
 * not kept (it would only be collected again).  A table's digest is
 * computed again only when its max(seq) moved or a collection removed
 * rows.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "artemis/clock.h"
#include "artemis/log.h"
#include "mgmt_int.h"
#include "route_int.h"

typedef enum { POLICY_LWW = 0, POLICY_FIRST, POLICY_ONCE } policy_t;

typedef struct table table_t;

typedef struct {
	const char *col;    /* this table's column with the parent's local id */
	const char *parent; /* the parent's table (listed before, without refs) */
} ref_t;

typedef struct {
	const char *table;
	int kind;         /* record kind on the wire: stable, 2..63 */
	const char *key;  /* natural key columns, comma-separated */
	const char *cols; /* the other replicated columns */
	policy_t policy;
	bool tombstones;      /* a `deleted` column */
	const char *pk;       /* orders the rows of a walk: rowid or the primary key */
	const char *sticky;   /* LWW: a 0/1 column whose 1 always wins, or NULL */
	const char *seq_meta; /* ONCE: this node's sequence (meta key) behind key column 0 */
	int down_kind;        /* its rows put targets in force (mgmt_kind_t), or -1 */
	unsigned effects;     /* FX_*: what applying its rows must tell the processes */
	ref_t refs[2];        /* parents named by natural key: their keys lead this key */
	/* A parent's stand-in: the columns besides its key it needs, and
	 * their values (SQL), or NULL when nothing refers to this table. */
	const char *stub_cols, *stub_vals;
	const char *unique2; /* another key unique among live rows, or NULL */
	/* A column this node keeps for itself, set from a replicated one when
	 * a row is inserted (sessions' last_activity from create_time). */
	const char *local_col, *local_from;
	/* Rows each node prunes in its own time: live_sql says which count
	 * (?1 = now, epoch ms) for the digests, gone() the same of a row
	 * received, which is not taken when this store does not hold it. */
	const char *live_sql;
	bool (*gone)(const mgmt_repl_t *r, const table_t *t, const mgmt_row_t *row);
	/* Optional: whether a row not held yet is taken (false: not), and
	 * what follows a row taken (inside the batch's transaction). */
	bool (*admit)(mgmt_repl_t *r, const table_t *t, const mgmt_row_t *row);
	int (*applied)(mgmt_repl_t *r, const table_t *t, const mgmt_row_t *row);
} repl_table_t;

#define FX_AUTH  1u /* sessions may end, the JWT secret may change: the auth generation */
#define FX_ROUTE 2u /* routing data: the down set and the routing image rebuilt */

/* The operation tables' columns besides their keys (model.c), the
 * routing tables' too (route_model.c); a parent's stand-in's. */
#define OP_COLS   "operator_id, token, create_time, update_time"
#define STUB_COLS "operator_id, create_time, update_time"
#define STUB_VALS "'', 0, 0"
/* What every routing table is (route_int.h): rows by natural key, tombstones,
 * the last writer wins; a change rebuilds the routing. */
#define ROUTING_TABLE                                                                              \
	.policy = POLICY_LWW, .tombstones = true, .pk = "id", .down_kind = -1, .effects = FX_ROUTE

static int col_index(const table_t *t, const char *name);
static void touched_free(mgmt_repl_t *r);
static bool audit_admit(mgmt_repl_t *r, const table_t *t, const mgmt_row_t *row);
static int audit_applied(mgmt_repl_t *r, const table_t *t, const mgmt_row_t *row);
static bool session_gone(const mgmt_repl_t *r, const table_t *t, const mgmt_row_t *row);
static bool login_gone(const mgmt_repl_t *r, const table_t *t, const mgmt_row_t *row);

/* What sessions.c prunes (sessions ended a day ago) and the login
 * history's age limit, as SQL for the digests; session_gone and
 * login_gone say the same of a row received. */
#define SESSION_LIVE "expire_time >= ?1 AND NOT (revoked = 1 AND revoke_time < ?1 - 86400000)"
#define LOGIN_LIVE   "time_ms >= ?1 - ?2"
_Static_assert(SESSION_PRUNE_MS == 86400000, "SESSION_LIVE follows sessions.c's pruning");

static const repl_table_t tables[] = {
    {.table = "instance",
     .kind = 2,
     .key = "region_id, service_id, instance_id, operation",
     .cols = OP_COLS,
     .policy = POLICY_LWW,
     .tombstones = true,
     .pk = "id",
     .down_kind = MGMT_INSTANCE},
    {.table = "server",
     .kind = 3,
     .key = "region_id, server_id, operation",
     .cols = OP_COLS,
     .policy = POLICY_LWW,
     .tombstones = true,
     .pk = "id",
     .down_kind = MGMT_SERVER},
    {.table = "service_zone",
     .kind = 4,
     .key = "region_id, zone_id, service_id, operation",
     .cols = OP_COLS,
     .policy = POLICY_LWW,
     .tombstones = true,
     .pk = "id",
     .down_kind = MGMT_ZONE},
    {.table = "audit",
     .kind = 5,
     .key = "origin_seq",
     .cols = "time_ms, operation_type, target_id, operation, action, complete, operator_id, "
             "token, reason, extensions, region_id, service_id, instance_id, server_id, "
             "zone_id, details, result, error",
     .policy = POLICY_ONCE,
     .pk = "id",
     .seq_meta = "audit_seq",
     .down_kind = -1,
     .admit = audit_admit,
     .applied = audit_applied},
    /* users: userId derives from the username (replica_key_id), so it
     * travels as a column like the others */
    {.table = "users",
     .kind = 6,
     .key = "username",
     .cols = "id, email, description, role, status, password_hash, create_time, update_time",
     .policy = POLICY_LWW,
     .tombstones = true,
     .pk = "id",
     .down_kind = -1,
     .effects = FX_AUTH},
    /* sessions: a revocation wins whatever the clocks say */
    {.table = "sessions",
     .kind = 7,
     .key = "session_id",
     .cols = "username, ip_address, user_agent, create_time, expire_time, revoked, revoke_time",
     .policy = POLICY_LWW,
     .pk = "session_id",
     .sticky = "revoked",
     .down_kind = -1,
     .effects = FX_AUTH,
     .local_col = "last_activity",
     .local_from = "create_time",
     .live_sql = SESSION_LIVE,
     .gone = session_gone},
    {.table = "login_history",
     .kind = 8,
     .key = "origin_seq",
     .cols = "time_ms, username, ip_address, user_agent, result, reason",
     .policy = POLICY_ONCE,
     .pk = "id",
     .seq_meta = "login_seq",
     .down_kind = -1,
     .live_sql = LOGIN_LIVE,
     .gone = login_gone},
    /* the JWT secret: the first one made stays (lowest hlc, then origin) */
    {.table = "secrets",
     .kind = 9,
     .key = "name",
     .cols = "value",
     .policy = POLICY_FIRST,
     .pk = "name",
     .down_kind = -1,
     .effects = FX_AUTH},
    /* routing (route_int.h): groups and rules first, the rows naming them
     * after; every change rebuilds the down set and the routing image */
    {.table = "service_group",
     .kind = 10,
     .key = "service_id, region_id, zone_id, name",
     .cols = "app_id, description, status, group_type, " OP_COLS,
     ROUTING_TABLE,
     .stub_cols = STUB_COLS,
     .stub_vals = STUB_VALS},
    {.table = "service_route_rule",
     .kind = 11,
     .key = "route_id",
     .cols = "service_id, name, description, status, strategy, " OP_COLS,
     ROUTING_TABLE,
     .stub_cols = "service_id, name, " STUB_COLS,
     .stub_vals = "'', '', " STUB_VALS,
     .unique2 = "service_id, name"},
    {.table = "service_group_tag",
     .kind = 12,
     .key = "tag",
     .cols = "value, " OP_COLS,
     ROUTING_TABLE,
     .refs = {{"group_id", "service_group"}}},
    {.table = "service_group_instance",
     .kind = 13,
     .key = "instance_id",
     .cols = "region_id, zone_id, binding_type, " OP_COLS,
     ROUTING_TABLE,
     .refs = {{"group_id", "service_group"}}},
    {.table = "service_group_operation",
     .kind = 14,
     .key = "operation",
     .cols = OP_COLS,
     ROUTING_TABLE,
     .refs = {{"group_id", "service_group"}}},
    {.table = "service_instance",
     .kind = 15,
     .key = "service_id, instance_id",
     .cols = "ip, machine_name, metadata, port, protocol, region_id, zone_id, group_id, "
             "health_check_url, url, description, " OP_COLS,
     ROUTING_TABLE},
    {.table = "service_route_rule_group",
     .kind = 16,
     .key = "",
     .cols = "weight, unreleased_weight, region_id, zone_id, " OP_COLS,
     ROUTING_TABLE,
     .refs = {{"route_rule_id", "service_route_rule"}, {"group_id", "service_group"}}},
    {.table = "canary_config",
     .kind = 17,
     .key = "service_id",
     .cols = "ip_whitelist, enabled, " OP_COLS,
     ROUTING_TABLE},
};

#define NTABLES       (int)(sizeof(tables) / sizeof(tables[0]))
#define DIGEST_AGE_MS 30000 /* a table with live_sql is digested again this often */
#define MAX_NAMES     MGMT_REPL_MAX_VALUES
#define PAGE_ROWS     512u
#define PUT_KEYS      MGMT_MAX_BATCH /* touched targets kept per batch; more: a rebuild */

#define MAX_REFS    2
#define MAX_TOUCHED 4096 /* services a batch notes for their reload */

enum {
	ST_FIND,
	ST_INSERT,
	ST_UPDATE,
	ST_WALK_SEQ,
	ST_WALK_PK,
	ST_DIGEST,
	ST_MAXSEQ,
	ST_STUB,   /* a parent's stand-in */
	ST_RIVAL,  /* unique2: a live row sharing it under another key */
	ST_REMOVE, /* unique2: that row removed */
	ST_N
};

struct table {
	const repl_table_t *d;
	char names_buf[1024];
	/* The values of a row on the wire: the parents' keys ("p0.col"), its
	 * own key columns, then the others. */
	const char *names[MAX_NAMES];
	int nkey, ncol;
	int nparent;           /* values naming parents (names[0, nparent)) */
	int nrefs;             /* refs: parents */
	int ref_at[MAX_REFS];  /* where a parent's key starts in the values */
	int ref_tab[MAX_REFS]; /* the parent's table (index in tables) */
	int service_at;        /* routing: the value naming the service, -1 */
	int sticky;            /* index of the sticky column in names, -1 */
	int local_from;        /* index of the local column's source in names, -1 */
	bool digest_valid;     /* the digest cache below */
	int64_t digest_ms;     /* when a table with live_sql was last digested */
	int64_t digest_seq;
	uint64_t count[MGMT_REPL_BUCKETS], hash[MGMT_REPL_BUCKETS];
	sqlite3_stmt *st[ST_N];
};

struct mgmt_repl {
	mgmt_t *m;
	proj_t *p;
	table_t t[NTABLES];
	int64_t version_seen; /* PRAGMA data_version */
	uint64_t tomb_ttl_ms; /* [cluster] mgmt_tombstone_ttl_s */
	buf_t scratch;
	/* the batch being applied */
	bool active, changed, rebuild;
	unsigned effects; /* FX_* of the tables it changed */
	store_stamp_t stamp;
	tagset_t old;
	mgmt_key_t *keys;
	size_t nkeys;
	int64_t own_seq[NTABLES]; /* ONCE: the highest of this node's own sequences seen */
	char **touched;           /* routing: the services its rows name (lowercase) */
	size_t ntouched, touched_cap;
	sqlite3_stmt *data_version, *horizon, *cleanup;
};

static int64_t kinds_mask;

/* ---- Descriptors ------------------------------------------------------------------------ */

static table_t *table_of_kind(mgmt_repl_t *r, int kind)
{
	for (int i = 0; i < NTABLES; i++)
		if (tables[i].kind == kind)
			return &r->t[i];
	return NULL;
}

uint64_t mgmt_repl_kinds(void)
{
	if (!kinds_mask)
		for (int i = 0; i < NTABLES; i++)
			kinds_mask |= (int64_t)(1ull << tables[i].kind);
	return (uint64_t)kinds_mask;
}

const char *mgmt_repl_kind_name(int kind)
{
	for (int i = 0; i < NTABLES; i++)
		if (tables[i].kind == kind)
			return tables[i].table;
	return NULL;
}

/* Split "a, b, c" into names (into buf); the count, or -E2BIG. */
static int split_names(const char *list, char *buf, size_t size, const char **names, int max)
{
	int n = 0;
	size_t len = strlen(list);
	if (len + 1 > size)
		return -E2BIG;
	memcpy(buf, list, len + 1);
	for (char *tok = strtok(buf, ", "); tok; tok = strtok(NULL, ", ")) {
		if (n == max)
			return -E2BIG;
		names[n++] = tok;
	}
	return n;
}

static int table_index(const char *name)
{
	for (int i = 0; i < NTABLES; i++)
		if (!strcmp(tables[i].table, name))
			return i;
	return -1;
}

/* Table i of all (its parents, listed before it, made already). */
static int table_init(table_t *all, int i)
{
	table_t *t = &all[i];
	const repl_table_t *d = &tables[i];
	char list[1024];
	memset(t, 0, sizeof(*t));
	t->d = d;
	t->sticky = -1;
	t->local_from = -1;
	t->service_at = -1;
	/* The parents' keys, as "p<ref>.<column>". */
	size_t used = 0;
	int n = 0;
	for (; t->nrefs < MAX_REFS && d->refs[t->nrefs].col; t->nrefs++) {
		int r = t->nrefs, pi = table_index(d->refs[r].parent);
		if (pi < 0 || pi >= i || d->unique2)
			return -EINVAL; /* a parent comes first; no second key with parents */
		if (tables[pi].refs[0].col || !tables[pi].stub_cols)
			return -EINVAL; /* a parent has no parents, and a stand-in */
		t->ref_at[r] = n;
		t->ref_tab[r] = pi;
		for (int k = 0; k < all[pi].nkey; k++) {
			int w = snprintf(t->names_buf + used, sizeof(t->names_buf) - used, "p%d.%s",
			                 r, all[pi].names[k]);
			if (w < 0 || used + (size_t)w + 1 > sizeof(t->names_buf) || n == MAX_NAMES)
				return -E2BIG;
			t->names[n++] = t->names_buf + used;
			used += (size_t)w + 1;
		}
	}
	t->nparent = n;
	int len = snprintf(list, sizeof(list), "%s%s%s", d->key, d->key[0] ? ", " : "", d->cols);
	if (len < 0 || (size_t)len >= sizeof(list))
		return -E2BIG;
	int own = split_names(list, t->names_buf + used, sizeof(t->names_buf) - used, t->names + n,
	                      MAX_NAMES - n);
	char keys[512];
	const char *knames[MAX_NAMES];
	int nkey = split_names(d->key, keys, sizeof(keys), knames, MAX_NAMES);
	if (own < 0 || nkey < 0 || n + nkey <= 0)
		return -E2BIG;
	t->nkey = n + nkey;
	t->ncol = n + own;
	for (int k = 0; k < t->ncol; k++) {
		size_t nl = strlen(t->names[k]);
		if (t->service_at < 0 && nl >= 10 && !strcmp(t->names[k] + nl - 10, "service_id") &&
		    (nl == 10 || t->names[k][nl - 11] == '.'))
			t->service_at = k;
		if (d->sticky && !strcmp(t->names[k], d->sticky))
			t->sticky = k;
		if (d->local_from && !strcmp(t->names[k], d->local_from))
			t->local_from = k;
	}
	return d->local_col && t->local_from < 0 ? -EINVAL : 0;
}

/* Every table's; -E2BIG or -EINVAL when a descriptor is wrong. */
static int tables_init(table_t *all)
{
	for (int i = 0; i < NTABLES; i++) {
		int rc = table_init(all, i);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---- SQL --------------------------------------------------------------------------------- */

/* A value of the wire as SQL over the table (alias t) and its parents
 * (p0, p1): "p0.name" or "t.tag". */
static void put_expr(buf_t *b, const table_t *t, int i)
{
	if (i >= t->nparent)
		buf_puts(b, "t.");
	buf_puts(b, t->names[i]);
}

/* The expressions of values [from, to), each followed by " = ?<k>" (k
 * from first_param) when first_param > 0. */
static void put_exprs(buf_t *b, const table_t *t, int from, int to, const char *sep,
                      int first_param)
{
	for (int i = from; i < to; i++) {
		if (i > from)
			buf_puts(b, sep);
		put_expr(b, t, i);
		if (first_param > 0)
			buf_printf(b, " = ?%d", first_param + i - from);
	}
}

/* The columns a write sets: the parents' ids, then the row's own values
 * (each followed by " = ?<k>" when first_param > 0); their count. */
static int put_wcols(buf_t *b, const table_t *t, int first_param)
{
	int k = 0;
	for (int r = 0; r < t->nrefs; r++, k++) {
		buf_printf(b, "%s%s", k ? ", " : "", t->d->refs[r].col);
		if (first_param > 0)
			buf_printf(b, " = ?%d", first_param + k);
	}
	for (int i = t->nparent; i < t->ncol; i++, k++) {
		buf_printf(b, "%s%s", k ? ", " : "", t->names[i]);
		if (first_param > 0)
			buf_printf(b, " = ?%d", first_param + k);
	}
	return k;
}

/* The write's parameter of value i (an own value). */
static int wparam(const table_t *t, int i)
{
	return t->nrefs + i - t->nparent + 1;
}

/* The table as t, with its parents as p0, p1. */
static void put_from(buf_t *b, const table_t *t)
{
	buf_printf(b, " FROM %s t", t->d->table);
	for (int r = 0; r < t->nrefs; r++) {
		const repl_table_t *pd = &tables[t->ref_tab[r]];
		buf_printf(b, " JOIN %s p%d ON p%d.%s = t.%s", pd->table, r, r, pd->pk,
		           t->d->refs[r].col);
	}
}

static const char *deleted_col(const table_t *t)
{
	return t->d->tombstones ? "t.deleted" : "0";
}

static void put_sticky(buf_t *b, const table_t *t)
{
	if (t->sticky >= 0)
		put_expr(b, t, t->sticky);
	else
		buf_puts(b, "0");
}

/* The SQL of statement `which` of table t into b. */
static void sql_of(const table_t *t, int which, buf_t *b)
{
	const repl_table_t *d = t->d;
	bool once = d->policy == POLICY_ONCE;
	int n = t->ncol, w;
	switch (which) {
	case ST_FIND:
		/* ?1.. the key (ONCE: origin first) */
		buf_printf(b, "SELECT t.%s, t.hlc, t.origin_node, %s, ", d->pk, deleted_col(t));
		put_sticky(b, t);
		put_from(b, t);
		buf_puts(b, " WHERE ");
		if (once)
			buf_puts(b, "t.origin_node = ?1 AND ");
		put_exprs(b, t, 0, t->nkey, " AND ", once ? 2 : 1);
		buf_printf(b, " ORDER BY %st.%s DESC LIMIT 1", d->tombstones ? "t.deleted, " : "",
		           d->pk);
		break;
	case ST_INSERT:
		/* the write's columns, then [deleted], hlc, origin, seq */
		buf_printf(b, "INSERT INTO %s (", d->table);
		w = put_wcols(b, t, 0);
		buf_printf(b, "%s, hlc, origin_node, seq%s%s) VALUES (",
		           d->tombstones ? ", deleted" : "", d->local_col ? ", " : "",
		           d->local_col ? d->local_col : "");
		for (int i = 1; i <= w + 3 + d->tombstones; i++)
			buf_printf(b, "%s?%d", i > 1 ? ", " : "", i);
		if (d->local_col)
			buf_printf(b, ", ?%d", wparam(t, t->local_from));
		buf_puts(b, ")");
		break;
	case ST_UPDATE:
		/* ?1..?w the write's columns, ?w+1 deleted, ?w+2 hlc, ?w+3 origin,
		 * ?w+4 seq, ?w+5 pk */
		buf_printf(b, "UPDATE %s SET ", d->table);
		w = put_wcols(b, t, 1);
		if (d->tombstones)
			buf_printf(b, ", deleted = ?%d", w + 1);
		buf_printf(b, ", hlc = ?%d, origin_node = ?%d, seq = ?%d WHERE %s = ?%d", w + 2,
		           w + 3, w + 4, d->pk, w + 5);
		break;
	case ST_WALK_SEQ:
	case ST_WALK_PK:
		buf_puts(b, "SELECT ");
		put_exprs(b, t, 0, n, ", ", 0);
		buf_printf(b, ", %s, t.hlc, t.origin_node, t.seq, t.%s", deleted_col(t), d->pk);
		put_from(b, t);
		if (which == ST_WALK_SEQ)
			buf_printf(
			    b,
			    " WHERE t.seq > ?1 AND t.seq <= ?2 AND (t.seq, t.%s) > (?3, ?4) AND "
			    "(?5 = 0 OR t.origin_node = ?6) AND (t.origin_node <> ?6 OR t.seq > "
			    "?7) ORDER BY t.seq, t.%s LIMIT ?8",
			    d->pk, d->pk);
		else
			buf_printf(b, " WHERE t.%s > ?1 ORDER BY t.%s LIMIT ?2", d->pk, d->pk);
		break;
	case ST_DIGEST: /* live rows: tombstones are collected at different times */
		buf_puts(b, "SELECT ");
		put_exprs(b, t, 0, t->nkey, ", ", 0);
		buf_printf(b, ", %s, t.hlc, t.origin_node, ", deleted_col(t));
		put_sticky(b, t);
		put_from(b, t);
		buf_printf(b, " WHERE %s%s%s", d->tombstones ? "t.deleted = 0" : "1",
		           d->live_sql ? " AND " : "", d->live_sql ? d->live_sql : "");
		break;
	case ST_STUB:
		/* ?1.. the key, then origin, seq: a tombstone older than anything */
		buf_printf(b, "INSERT INTO %s (", d->table);
		for (int i = 0; i < t->nkey; i++) /* a parent: no parents of its own */
			buf_printf(b, "%s, ", t->names[i]);
		buf_printf(b, "%s, deleted, hlc, origin_node, seq) VALUES (", d->stub_cols);
		for (int i = 1; i <= t->nkey; i++)
			buf_printf(b, "?%d, ", i);
		buf_printf(b, "%s, 1, 1, ?%d, ?%d)", d->stub_vals, t->nkey + 1, t->nkey + 2);
		break;
	case ST_RIVAL:
		/* ?1.. unique2's values, then the key: a live row with the same
		 * unique2 under another key */
		buf_printf(b,
		           "SELECT t.%s, t.hlc, t.origin_node FROM %s t WHERE t.deleted = 0 AND ",
		           d->pk, d->table);
		w = 1;
		for (const char *c = d->unique2; *c; w++) {
			size_t len = strcspn(c, ",");
			buf_printf(b, "t.%.*s = ?%d AND ", (int)len, c, w);
			c += len;
			c += strspn(c, ", ");
		}
		buf_puts(b, "NOT (");
		put_exprs(b, t, 0, t->nkey, " AND ", w);
		buf_puts(b, ") LIMIT 1");
		break;
	case ST_REMOVE:
		buf_printf(
		    b,
		    "UPDATE %s SET deleted = 1, hlc = ?1, origin_node = ?2, seq = ?3 WHERE %s = "
		    "?4",
		    d->table, d->pk);
		break;
	default: /* ST_MAXSEQ */
		buf_printf(b, "SELECT coalesce(max(seq), 0) FROM %s", d->table);
		break;
	}
}

static sqlite3_stmt *stmt(mgmt_repl_t *r, table_t *t, int which)
{
	if (!t->st[which]) {
		buf_reset(&r->scratch);
		sql_of(t, which, &r->scratch);
		buf_append(&r->scratch, "", 1);
		if (buf_error(&r->scratch) ||
		    sqlite3_prepare_v3(r->m->st.db, r->scratch.data, -1, SQLITE_PREPARE_PERSISTENT,
		                       &t->st[which], NULL) != SQLITE_OK) {
			log_error("%s: %s: %s", __func__, t->d->table, sqlite3_errmsg(r->m->st.db));
			return NULL;
		}
	}
	sqlite3_reset(t->st[which]);
	sqlite3_clear_bindings(t->st[which]);
	return t->st[which];
}

static void bind_value(sqlite3_stmt *q, int i, const mgmt_value_t *v)
{
	switch (v->type) {
	case MGMT_V_INT:
		sqlite3_bind_int64(q, i, v->i);
		break;
	case MGMT_V_REAL:
		sqlite3_bind_double(q, i, v->d);
		break;
	case MGMT_V_TEXT:
		sqlite3_bind_text(q, i, v->s ? v->s : "", (int)v->len, SQLITE_STATIC);
		break;
	case MGMT_V_BLOB:
		sqlite3_bind_blob(q, i, v->s ? v->s : "", (int)v->len, SQLITE_STATIC);
		break;
	default:
		sqlite3_bind_null(q, i);
	}
}

static void column_value(sqlite3_stmt *q, int i, mgmt_value_t *v)
{
	memset(v, 0, sizeof(*v));
	switch (sqlite3_column_type(q, i)) {
	case SQLITE_INTEGER:
		v->type = MGMT_V_INT;
		v->i = sqlite3_column_int64(q, i);
		break;
	case SQLITE_FLOAT:
		v->type = MGMT_V_REAL;
		v->d = sqlite3_column_double(q, i);
		break;
	case SQLITE_TEXT:
		v->type = MGMT_V_TEXT;
		v->s = (const char *)sqlite3_column_text(q, i);
		v->len = (size_t)sqlite3_column_bytes(q, i);
		break;
	case SQLITE_BLOB:
		v->type = MGMT_V_BLOB;
		v->s = sqlite3_column_blob(q, i);
		v->len = (size_t)sqlite3_column_bytes(q, i);
		break;
	default:
		v->type = MGMT_V_NULL;
	}
}

/* ---- Handle ------------------------------------------------------------------------------- */

int mgmt_repl_open(const config_t *cfg, shm_t *shm, mgmt_repl_t **out, char *err, size_t err_len)
{
	mgmt_repl_t *r = calloc(1, sizeof(*r));
	int rc;
	if (!r) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	if ((rc = tables_init(r->t)) < 0) {
		snprintf(err, err_len, "a replicated table's descriptor is wrong: %s",
		         strerror(-rc));
		free(r);
		return rc;
	}
	if ((rc = mgmt_open(cfg, shm, &r->m, err, err_len)) < 0) {
		free(r);
		return rc;
	}
	r->p = proj_of(shm);
	r->tomb_ttl_ms = (uint64_t)cfg->mgmt_tombstone_ttl_s * 1000;
	r->keys = calloc(PUT_KEYS, sizeof(*r->keys));
	if (!r->keys) {
		mgmt_repl_close(r);
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

void mgmt_repl_close(mgmt_repl_t *r)
{
	if (!r)
		return;
	if (r->active)
		mgmt_repl_rollback(r);
	for (int i = 0; i < NTABLES; i++)
		for (int k = 0; k < ST_N; k++)
			sqlite3_finalize(r->t[i].st[k]);
	sqlite3_finalize(r->data_version);
	sqlite3_finalize(r->horizon);
	sqlite3_finalize(r->cleanup);
	mgmt_close(r->m);
	buf_free(&r->scratch);
	free(r->keys);
	free(r->touched);
	free(r);
}

/* A statement of the handle's own, prepared once. */
static sqlite3_stmt *own_stmt(mgmt_repl_t *r, sqlite3_stmt **q, const char *sql)
{
	if (!*q && sqlite3_prepare_v3(r->m->st.db, sql, -1, SQLITE_PREPARE_PERSISTENT, q, NULL) !=
	               SQLITE_OK) {
		log_error("%s: %s", __func__, sqlite3_errmsg(r->m->st.db));
		return NULL;
	}
	sqlite3_reset(*q);
	sqlite3_clear_bindings(*q);
	return *q;
}

bool mgmt_repl_moved(mgmt_repl_t *r)
{
	sqlite3_stmt *q = own_stmt(r, &r->data_version, "PRAGMA data_version");
	int64_t v = r->version_seen;
	if (q && sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int64(q, 0);
	if (q)
		sqlite3_reset(q);
	bool moved = v != r->version_seen;
	r->version_seen = v;
	return moved;
}

/* The store's identity: made once, by the first replicator that asks. */
static int store_id(mgmt_repl_t *r, uint64_t *id)
{
	store_t *st = &r->m->st;
	int64_t v = 0;
	if (store_meta_get(st, "store_id", &v) == 0 && v > 0) {
		*id = (uint64_t)v;
		return 0;
	}
	if (store_exec(st,
	               "INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', "
	               "(random() & 0x3fffffffffffffff) | 1)",
	               NULL, 0) < 0 ||
	    store_meta_get(st, "store_id", &v) < 0)
		return -EIO;
	*id = (uint64_t)v;
	return 0;
}

int mgmt_repl_head(mgmt_repl_t *r, uint64_t *sid, uint64_t *generation)
{
	int64_t g = 0;
	if (store_id(r, sid) < 0 || store_meta_get(&r->m->st, "generation", &g) < 0)
		return -EIO;
	*generation = (uint64_t)g;
	return 0;
}

/* ---- Walks --------------------------------------------------------------------------------- */

/* The row at q (a walk's columns) into row; false when its stamp is not
 * usable (no origin). */
static bool row_of(const table_t *t, sqlite3_stmt *q, mgmt_row_t *row)
{
	int n = t->ncol;
	memset(row, 0, offsetof(mgmt_row_t, vals));
	row->kind = t->d->kind;
	row->nvals = (uint32_t)n;
	for (int i = 0; i < n; i++)
		column_value(q, i, &row->vals[i]);
	row->deleted = sqlite3_column_int(q, n) != 0;
	row->hlc = sqlite3_column_int64(q, n + 1);
	row->origin = (const char *)sqlite3_column_text(q, n + 2);
	row->origin_len = (size_t)sqlite3_column_bytes(q, n + 2);
	return row->origin != NULL;
}

/* Remember the place after the row at q: its seq and pk. */
static int keep_place(const table_t *t, sqlite3_stmt *q, mgmt_repl_walk_t *w)
{
	int n = t->ncol;
	w->last_seq = sqlite3_column_int64(q, n + 3);
	w->have_pk = true;
	w->pk_is_text = sqlite3_column_type(q, n + 4) == SQLITE_TEXT;
	if (!w->pk_is_text) {
		w->pk_int = sqlite3_column_int64(q, n + 4);
		return 0;
	}
	size_t len = (size_t)sqlite3_column_bytes(q, n + 4);
	if (len > sizeof(w->pk_text))
		return -ENAMETOOLONG;
	memcpy(w->pk_text, sqlite3_column_text(q, n + 4), len);
	w->pk_len = len;
	return 0;
}

static void bind_place(sqlite3_stmt *q, int i, const mgmt_repl_walk_t *w)
{
	if (!w->have_pk)
		sqlite3_bind_int64(q, i, INT64_MIN); /* below every integer and every text */
	else if (w->pk_is_text)
		sqlite3_bind_text(q, i, w->pk_text, (int)w->pk_len, SQLITE_STATIC);
	else
		sqlite3_bind_int64(q, i, w->pk_int);
}

static int bucket_of(mgmt_repl_t *r, const table_t *t, const mgmt_row_t *row);

/* One page of table t.  *more when the page was full. */
static int walk_page(mgmt_repl_t *r, table_t *t, mgmt_repl_walk_t *w, uint32_t max, mgmt_row_fn fn,
                     void *ctx, uint32_t *given, bool *more, bool *stopped)
{
	bool by_seq = w->kind == 0;
	sqlite3_stmt *q = stmt(r, t, by_seq ? ST_WALK_SEQ : ST_WALK_PK);
	uint32_t rows = 0;
	int rc;
	if (!q)
		return -EIO;
	if (by_seq) {
		sqlite3_bind_int64(q, 1, (int64_t)w->after);
		sqlite3_bind_int64(q, 2, (int64_t)w->upto);
		sqlite3_bind_int64(q, 3, w->have_pk ? w->last_seq : (int64_t)w->after);
		bind_place(q, 4, w);
		sqlite3_bind_int(q, 5, w->own_only);
		sqlite3_bind_text(q, 6, r->m->st.node, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 7, (int64_t)w->own_after);
		sqlite3_bind_int64(q, 8, max);
	} else {
		bind_place(q, 1, w);
		sqlite3_bind_int64(q, 2, max);
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		mgmt_row_t row;
		rows++;
		if (!row_of(t, q, &row))
			continue;
		if (by_seq || w->bucket < 0 || bucket_of(r, t, &row) == w->bucket) {
			if (fn(ctx, &row)) {
				*stopped = true;
				break;
			}
			(*given)++;
		}
		if ((rc = keep_place(t, q, w)) < 0)
			break;
	}
	sqlite3_reset(q);
	*more = rows == max && !*stopped;
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : rc < 0 ? rc : -EIO;
}

int mgmt_repl_walk(mgmt_repl_t *r, mgmt_repl_walk_t *w, uint32_t max_rows, mgmt_row_fn fn,
                   void *ctx)
{
	store_t *st = &r->m->st;
	uint32_t given = 0;
	int rc = 0;
	if (w->done)
		return 0;
	if (w->kind) { /* a bucket walk: that table only */
		const table_t *t = table_of_kind(r, w->kind);
		if (!t)
			return -ENOENT;
		w->table = (int)(t - r->t);
	}
	if (store_begin(st, false, NULL, 0) < 0)
		return -EIO;
	while (w->table < NTABLES && given < max_rows) {
		table_t *t = &r->t[w->table];
		bool more = false, stopped = false;
		if (!w->kinds || (w->kinds >> t->d->kind) & 1) {
			uint32_t page = max_rows - given < PAGE_ROWS ? max_rows - given : PAGE_ROWS;
			rc = walk_page(r, t, w, page, fn, ctx, &given, &more, &stopped);
			if (rc < 0 || stopped)
				break;
		}
		if (more)
			continue;
		/* this table is done */
		w->have_pk = false;
		w->last_seq = 0;
		w->table = w->kind ? NTABLES : w->table + 1;
	}
	store_rollback(st); /* a read */
	if (rc == 0 && w->table >= NTABLES)
		w->done = true;
	return rc;
}

/* ---- Cursors
 * ------------------------------------------------------------------------------------- */

static void cursor_key(char *out, size_t len, const char *peer, const char *what)
{
	snprintf(out, len, "repl.%s.%s", peer, what);
}

static int64_t meta_or_zero(store_t *st, const char *peer, const char *what)
{
	char key[128];
	int64_t v = 0;
	cursor_key(key, sizeof(key), peer, what);
	return store_meta_get(st, key, &v) == 0 ? v : 0;
}

int mgmt_repl_cursor_get(mgmt_repl_t *r, const char *peer, mgmt_repl_cursor_t *out)
{
	store_t *st = &r->m->st;
	if (store_begin(st, false, NULL, 0) < 0)
		return -EIO;
	out->store_id = (uint64_t)meta_or_zero(st, peer, "store");
	out->own = (uint64_t)meta_or_zero(st, peer, "own");
	out->all = (uint64_t)meta_or_zero(st, peer, "all");
	out->acked = (uint64_t)meta_or_zero(st, peer, "acked");
	store_rollback(st);
	return 0;
}

static int meta_put(store_t *st, const char *peer, const char *what, uint64_t v)
{
	char key[128];
	cursor_key(key, sizeof(key), peer, what);
	return store_meta_set(st, key, (int64_t)v);
}

int mgmt_repl_acked_set(mgmt_repl_t *r, const char *peer, uint64_t acked)
{
	store_t *st = &r->m->st;
	if (store_begin(st, true, NULL, 0) < 0)
		return -EIO;
	if (meta_put(st, peer, "acked", acked) < 0 || store_commit(st, NULL, 0) < 0) {
		store_rollback(st);
		return -EIO;
	}
	return 0;
}

/* ---- Applying
 * ------------------------------------------------------------------------------------ */

bool mgmt_repl_active(const mgmt_repl_t *r)
{
	return r->active;
}

int mgmt_repl_begin(mgmt_repl_t *r, char *err, size_t err_len)
{
	int rc;
	if (r->active)
		return 0;
	if (!r->p) {
		snprintf(err, err_len, "the region has no management projection");
		return -ENODEV;
	}
	if ((rc = mgmt_lock_writer(r->m, r->p, err, err_len)) < 0)
		return rc;
	if ((rc = proj_copy_active(r->p, &r->old)) < 0) {
		snprintf(err, err_len, "reading the projection: %s", strerror(-rc));
		proj_unlock(r->p);
		return rc;
	}
	if ((rc = store_begin(&r->m->st, true, err, err_len)) < 0 ||
	    (rc = store_stamp_load(&r->m->st, &r->stamp)) < 0) {
		if (rc != -EIO || !err[0])
			store_fail(&r->m->st, "reading the counters", err, err_len);
		store_rollback(&r->m->st);
		tagset_free(&r->old);
		proj_unlock(r->p);
		return -EIO;
	}
	r->active = true;
	r->changed = false;
	r->rebuild = false;
	r->effects = 0;
	r->nkeys = 0;
	memset(r->own_seq, 0, sizeof(r->own_seq));
	return 0;
}

void mgmt_repl_rollback(mgmt_repl_t *r)
{
	if (!r->active)
		return;
	store_rollback(&r->m->st);
	tagset_free(&r->old);
	touched_free(r);
	proj_unlock(r->p);
	r->active = false;
}

static int bad_row(char *err, size_t err_len, const table_t *t, const char *why)
{
	snprintf(err, err_len, "%s row: %s", t ? t->d->table : "a", why);
	return -EINVAL;
}

static bool value_ok(const mgmt_value_t *v)
{
	return v->type <= MGMT_V_BLOB && ((v->type != MGMT_V_TEXT && v->type != MGMT_V_BLOB) ||
	                                  (v->len <= MGMT_REPL_MAX_VALUE && (v->s || v->len == 0)));
}

static int check_row(const table_t *t, const mgmt_row_t *row, char *err, size_t err_len)
{
	if (!t)
		return bad_row(err, err_len, t, "unknown record kind");
	if (row->nvals < (uint32_t)t->nkey || row->nvals > MGMT_REPL_MAX_VALUES)
		return bad_row(err, err_len, t, "too few or too many values");
	if (row->hlc <= 0)
		return bad_row(err, err_len, t, "no timestamp");
	if (!row->origin || row->origin_len == 0 || row->origin_len > MGMT_REPL_MAX_ORIGIN ||
	    memchr(row->origin, '\0', row->origin_len))
		return bad_row(err, err_len, t, "no origin node");
	if (row->deleted && !t->d->tombstones)
		return bad_row(err, err_len, t, "a tombstone of a table without them");
	for (uint32_t i = 0; i < row->nvals; i++)
		if (!value_ok(&row->vals[i]) ||
		    (i < (uint32_t)t->nkey &&
		     (row->vals[i].type == MGMT_V_NULL || row->vals[i].type == MGMT_V_REAL)))
			return bad_row(err, err_len, t, "a value of the wrong type");
	return 0;
}

/* (hlc, origin) of a against b: <0, 0, >0. */
static int stamp_cmp(int64_t ha, const char *oa, size_t la, int64_t hb, const char *ob, size_t lb)
{
	if (ha != hb)
		return ha < hb ? -1 : 1;
	int d = memcmp(oa, ob, la < lb ? la : lb);
	if (d)
		return d;
	return la == lb ? 0 : la < lb ? -1 : 1;
}

/* The value of column i of row for a statement (absent trailing columns are NULL). */
static const mgmt_value_t *row_val(const mgmt_row_t *row, int i)
{
	static const mgmt_value_t null_value = {MGMT_V_NULL, 0, 0, NULL, 0};
	return (uint32_t)i < row->nvals ? &row->vals[i] : &null_value;
}

static int64_t sticky_of(const table_t *t, const mgmt_row_t *row)
{
	const mgmt_value_t *v = t->sticky >= 0 ? row_val(row, t->sticky) : NULL;
	return v && v->type == MGMT_V_INT ? v->i != 0 : 0;
}

/* Does the incoming row win over what the store holds (q: a FIND row)? */
static bool wins(const table_t *t, const mgmt_row_t *row, sqlite3_stmt *q)
{
	const char *lo = (const char *)sqlite3_column_text(q, 2);
	size_t ll = (size_t)sqlite3_column_bytes(q, 2);
	int cmp = stamp_cmp(row->hlc, row->origin, row->origin_len, sqlite3_column_int64(q, 1),
	                    lo ? lo : "", lo ? ll : 0);
	if (t->sticky >= 0) {
		int64_t mine = sqlite3_column_int64(q, 4), theirs = sticky_of(t, row);
		if (mine != theirs)
			return theirs > mine;
	}
	return t->d->policy == POLICY_FIRST ? cmp < 0 : cmp > 0;
}

/* The operation key a row of a down table names (its key columns):
 * -EINVAL when they do not make a key (mgmt_key_check, field sizes). */
static int row_target(const table_t *t, const mgmt_row_t *row, mgmt_key_t *k)
{
	char *dst[4];
	size_t size[4];
	int n = 0;
	memset(k, 0, sizeof(*k));
	k->kind = (mgmt_kind_t)t->d->down_kind;
	dst[n] = k->region, size[n++] = sizeof(k->region);
	if (k->kind == MGMT_INSTANCE) {
		dst[n] = k->service, size[n++] = sizeof(k->service);
		dst[n] = k->instance, size[n++] = sizeof(k->instance);
	} else if (k->kind == MGMT_SERVER) {
		dst[n] = k->server, size[n++] = sizeof(k->server);
	} else {
		dst[n] = k->zone, size[n++] = sizeof(k->zone);
		dst[n] = k->service, size[n++] = sizeof(k->service);
	}
	dst[n] = k->operation, size[n++] = sizeof(k->operation);
	if (n != t->nkey)
		return -EINVAL;
	for (int i = 0; i < n; i++) {
		const mgmt_value_t *v = &row->vals[i];
		if (v->type != MGMT_V_TEXT || v->len >= size[i] || memchr(v->s, '\0', v->len))
			return -EINVAL;
		memcpy(dst[i], v->s, v->len);
		dst[i][v->len] = '\0';
	}
	return mgmt_key_check(k, NULL) < 0 ? -EINVAL : 0;
}

static void note_target(mgmt_repl_t *r, const mgmt_key_t *k)
{
	if (r->nkeys == PUT_KEYS)
		r->rebuild = true; /* too many to follow one by one */
	else
		r->keys[r->nkeys++] = *k;
}

/* Write row (its values, deleted and stamp as given) over the row whose
 * pk is given, or as a new one (pk NULL); ids: the parents' here. */
static int write_row(mgmt_repl_t *r, table_t *t, const mgmt_row_t *row, const int64_t *ids,
                     sqlite3_value *pk)
{
	int n = t->ncol, w = t->nrefs + n - t->nparent;
	sqlite3_stmt *q = stmt(r, t, pk ? ST_UPDATE : ST_INSERT);
	if (!q)
		return -EIO;
	for (int k = 0; k < t->nrefs; k++)
		sqlite3_bind_int64(q, k + 1, ids[k]);
	for (int i = t->nparent; i < n; i++)
		bind_value(q, wparam(t, i), row_val(row, i));
	int at = w + 1;
	if (t->d->tombstones)
		sqlite3_bind_int(q, at, row->deleted);
	if (pk || t->d->tombstones)
		at++; /* the update's places are fixed; the insert's follow its columns */
	sqlite3_bind_int64(q, at++, row->hlc);
	sqlite3_bind_text(q, at++, row->origin, (int)row->origin_len, SQLITE_STATIC);
	sqlite3_bind_int64(q, at++, r->stamp.generation);
	if (pk)
		sqlite3_bind_value(q, at, pk);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	if (rc == SQLITE_DONE)
		return 1;
	return (rc & 0xff) == SQLITE_CONSTRAINT || (rc & 0xff) == SQLITE_MISMATCH ||
	               (rc & 0xff) == SQLITE_TOOBIG
	           ? -EINVAL
	           : -EIO;
}

/* The local id of ref k's parent of row: found by its natural key, else
 * made a stand-in tombstone (below every version of it: hlc 1). */
static int parent_id(mgmt_repl_t *r, table_t *t, int k, const mgmt_row_t *row, int64_t *id)
{
	table_t *pt = &r->t[t->ref_tab[k]];
	const mgmt_value_t *key = &row->vals[t->ref_at[k]];
	sqlite3_stmt *q = stmt(r, pt, ST_FIND);
	if (!q)
		return -EIO;
	for (int i = 0; i < pt->nkey; i++)
		bind_value(q, i + 1, &key[i]);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE || !(q = stmt(r, pt, ST_STUB)))
		return -EIO;
	for (int i = 0; i < pt->nkey; i++)
		bind_value(q, i + 1, &key[i]);
	sqlite3_bind_text(q, pt->nkey + 1, row->origin, (int)row->origin_len, SQLITE_STATIC);
	sqlite3_bind_int64(q, pt->nkey + 2, r->stamp.generation);
	rc = sqlite3_step(q);
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return (rc & 0xff) == SQLITE_CONSTRAINT ? -EINVAL : -EIO;
	*id = sqlite3_last_insert_rowid(r->m->st.db);
	return 0;
}

/* unique2: a live row that shares it under another key and is older than
 * row is removed by this node (a write of its own, which travels); when
 * that row is the later one, *lost says row is to be removed instead. */
static int settle_rival(mgmt_repl_t *r, table_t *t, const mgmt_row_t *row, bool *lost)
{
	const char *c = t->d->unique2;
	sqlite3_stmt *q = stmt(r, t, ST_RIVAL);
	int at = 1;
	*lost = false;
	if (!q)
		return -EIO;
	while (*c) {
		char name[64];
		size_t len = strcspn(c, ",");
		snprintf(name, sizeof(name), "%.*s", (int)len, c);
		bind_value(q, at++, row_val(row, col_index(t, name)));
		c += len;
		c += strspn(c, ", ");
	}
	for (int i = 0; i < t->nkey; i++)
		bind_value(q, at++, &row->vals[i]);
	int rc = sqlite3_step(q);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(q);
		return rc == SQLITE_DONE ? 0 : -EIO;
	}
	const char *o = (const char *)sqlite3_column_text(q, 2);
	size_t olen = (size_t)sqlite3_column_bytes(q, 2);
	int64_t pk = sqlite3_column_int64(q, 0);
	*lost = stamp_cmp(row->hlc, row->origin, row->origin_len, sqlite3_column_int64(q, 1),
	                  o ? o : "", o ? olen : 0) < 0;
	sqlite3_reset(q);
	if (*lost)
		return 0;
	if (!(q = stmt(r, t, ST_REMOVE)))
		return -EIO;
	sqlite3_bind_int64(q, 1, store_hlc_next(&r->stamp));
	sqlite3_bind_text(q, 2, r->m->st.node, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, r->stamp.generation);
	sqlite3_bind_int64(q, 4, pk);
	rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* This node's own record coming back (a store that lost it): its sequence
 * moves past it. */
static void note_own_seq(mgmt_repl_t *r, const table_t *t, const mgmt_row_t *row)
{
	const mgmt_value_t *v = row_val(row, 0);
	if (!t->d->seq_meta || v->type != MGMT_V_INT || row->origin_len != strlen(r->m->st.node) ||
	    memcmp(row->origin, r->m->st.node, row->origin_len) != 0)
		return;
	int i = (int)(t - r->t);
	if (v->i > r->own_seq[i])
		r->own_seq[i] = v->i;
}

/* check_row, and an operation table's key into *target. */
static int check_all(const table_t *t, const mgmt_row_t *row, mgmt_key_t *target, char *err,
                     size_t err_len)
{
	int rc = check_row(t, row, err, err_len);
	if (rc == 0 && t && t->d->down_kind >= 0 && row_target(t, row, target) < 0)
		rc = bad_row(err, err_len, t, "its key is not an operation's key");
	return rc;
}

int mgmt_repl_row_check(const mgmt_row_t *row, char *err, size_t err_len)
{
	static table_t t[NTABLES];
	static bool ready;
	mgmt_key_t target;
	if (!ready) {
		if (tables_init(t) < 0)
			return -E2BIG;
		ready = true;
	}
	for (int i = 0; i < NTABLES; i++)
		if (tables[i].kind == row->kind)
			return check_all(&t[i], row, &target, err, err_len);
	return check_all(NULL, row, &target, err, err_len);
}

/* A routing row's service, for its `reload` (as a routing write notes
 * the services it touched); more than MAX_TOUCHED in a batch: the rest get
 * theirs only when their routing image changed. */
static void note_service(mgmt_repl_t *r, const table_t *t, const mgmt_row_t *row)
{
	const mgmt_value_t *v = row_val(row, t->service_at);
	if (t->service_at < 0 || v->type != MGMT_V_TEXT || v->len > MGMT_MAX_SERVICE)
		return;
	char low[MGMT_MAX_SERVICE + 1];
	for (size_t i = 0; i < v->len; i++)
		low[i] = (char)(v->s[i] >= 'A' && v->s[i] <= 'Z' ? v->s[i] - 'A' + 'a' : v->s[i]);
	low[v->len] = '\0';
	for (size_t i = 0; i < r->ntouched; i++)
		if (!strcmp(r->touched[i], low))
			return;
	if (r->ntouched == r->touched_cap) {
		size_t cap = r->touched_cap ? r->touched_cap * 2 : 16;
		char **grown =
		    cap <= MAX_TOUCHED ? realloc(r->touched, cap * sizeof(*grown)) : NULL;
		if (!grown)
			return;
		r->touched = grown;
		r->touched_cap = cap;
	}
	if ((r->touched[r->ntouched] = strdup(low)))
		r->ntouched++;
}

static void touched_free(mgmt_repl_t *r)
{
	for (size_t i = 0; i < r->ntouched; i++)
		free(r->touched[i]);
	r->ntouched = 0;
}

/* The row written over pk (NULL: a new one), its parents found or made,
 * a rival under unique2 settled first. */
static int put_row(mgmt_repl_t *r, table_t *t, const mgmt_row_t *row, sqlite3_value *pk)
{
	int64_t ids[MAX_REFS] = {0};
	mgmt_row_t removed;
	int rc;
	for (int k = 0; k < t->nrefs; k++)
		if ((rc = parent_id(r, t, k, row, &ids[k])) < 0)
			return rc;
	if (t->d->unique2 && !row->deleted) {
		bool lost = false;
		if ((rc = settle_rival(r, t, row, &lost)) < 0)
			return rc;
		if (lost) { /* kept, removed by this node: the later live row stays */
			memcpy(&removed, row, sizeof(removed));
			removed.deleted = true;
			removed.hlc = store_hlc_next(&r->stamp);
			removed.origin = r->m->st.node;
			removed.origin_len = strlen(r->m->st.node);
			row = &removed;
		}
	}
	return write_row(r, t, row, ids, pk);
}

int mgmt_repl_put(mgmt_repl_t *r, const mgmt_row_t *row, char *err, size_t err_len)
{
	table_t *t = table_of_kind(r, row->kind);
	mgmt_key_t target;
	int rc = check_all(t, row, &target, err, err_len);
	if (rc < 0)
		return rc;
	if (!r->active)
		return -EINVAL;
	if (t->d->admit && !t->d->admit(r, t, row))
		return 0; /* removed here by a cleanup after it was written */
	sqlite3_stmt *q = stmt(r, t, ST_FIND);
	if (!q)
		goto io;
	int at = 1;
	if (t->d->policy == POLICY_ONCE)
		sqlite3_bind_text(q, at++, row->origin, (int)row->origin_len, SQLITE_STATIC);
	for (int i = 0; i < t->nkey; i++)
		bind_value(q, at++, &row->vals[i]);
	rc = sqlite3_step(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		sqlite3_reset(q);
		goto io;
	}
	bool found = rc == SQLITE_ROW;
	if ((found && (t->d->policy == POLICY_ONCE || !wins(t, row, q))) ||
	    (!found && row->deleted &&
	     (uint64_t)(row->hlc >> 16) + r->tomb_ttl_ms < clock_wall_ms()) ||
	    (!found && t->d->gone && t->d->gone(r, t, row))) {
		sqlite3_reset(q);
		return 0;
	}
	sqlite3_value *pk = found ? sqlite3_value_dup(sqlite3_column_value(q, 0)) : NULL;
	sqlite3_reset(q);
	if (found && !pk)
		goto io;
	/* A later local write must win over what was received (HLC merge). */
	if (row->hlc > r->stamp.hlc)
		r->stamp.hlc = row->hlc;
	rc = put_row(r, t, row, pk);
	sqlite3_value_free(pk);
	if (rc == -EINVAL)
		return bad_row(err, err_len, t, sqlite3_errmsg(r->m->st.db));
	if (rc < 0)
		goto io;
	r->changed = true;
	r->effects |= t->d->effects;
	if (t->d->effects & FX_ROUTE) {
		r->rebuild = true; /* group operations: the down set from the store */
		note_service(r, t, row);
	}
	if (t->d->down_kind >= 0)
		note_target(r, &target);
	note_own_seq(r, t, row);
	if (t->d->applied && t->d->applied(r, t, row) < 0)
		goto io;
	return 1;
io:
	rc = store_fail(&r->m->st, "applying a replicated row", err, err_len);
	mgmt_repl_rollback(r);
	return rc;
}

/* Inside the transaction: this node's sequences past its own records. */
static int save_own_seqs(mgmt_repl_t *r)
{
	for (int i = 0; i < NTABLES; i++) {
		int64_t cur = 0;
		const char *key = tables[i].seq_meta;
		if (!key || r->own_seq[i] == 0)
			continue;
		if (!strcmp(key, "audit_seq")) { /* the stamp writes this one */
			if (r->own_seq[i] > r->stamp.audit_seq)
				r->stamp.audit_seq = r->own_seq[i];
			continue;
		}
		if (store_meta_get(&r->m->st, key, &cur) < 0)
			cur = 0;
		if (r->own_seq[i] > cur && store_meta_set(&r->m->st, key, r->own_seq[i]) < 0)
			return -EIO;
	}
	return 0;
}

static int save_cursor(store_t *st, const char *peer, const mgmt_repl_cursor_t *cur)
{
	if (!peer || !cur)
		return 0;
	if (meta_put(st, peer, "store", cur->store_id) < 0 ||
	    meta_put(st, peer, "own", cur->own) < 0 || meta_put(st, peer, "all", cur->all) < 0)
		return -EIO;
	return 0;
}

/* The set in force after the batch: its targets re-read, or every target
 * when it touched too many to follow. */
static int batch_next_set(mgmt_repl_t *r, tagset_t *next, char *err, size_t err_len)
{
	if (!r->rebuild)
		return mgmt_next_set(r->m, r->keys, r->nkeys, &r->old, next, proj_capacity(r->p),
		                     err, err_len);
	int rc = tagset_init(next, 16);
	if (rc < 0) {
		snprintf(err, err_len, "out of memory");
		return rc;
	}
	rc = mgmt_store_down_set(&r->m->st, r->m->shm, next, err, err_len);
	if (rc == 0 && next->count > proj_capacity(r->p)) {
		snprintf(err, err_len,
		         "more than %u operations would be in force ([management] max_operations)",
		         proj_capacity(r->p));
		rc = -ENOSPC;
	}
	if (rc < 0)
		tagset_free(next);
	return rc;
}

/* After a batch with routing rows, under the lock: the routing image
 * from the store, published with a `reload` for every service whose
 * routing it changed, as a routing write does.  Rows that do not fit this
 * node's [management] routing_bytes stay in the store and are said; the
 * image in force stays the last that fitted. */
static void publish_routing(mgmt_repl_t *r)
{
	char err[MGMT_MAX_ERR];
	int rc = route_rebuild_locked(&r->m->st, r->m->shm, r->p, (uint64_t)r->stamp.generation,
	                              r->touched, r->ntouched, err, sizeof(err));
	if (rc < 0)
		log_error("replicated routing data applied but not in force: %s", err);
}

int mgmt_repl_commit(mgmt_repl_t *r, const char *peer, const mgmt_repl_cursor_t *cur, char *err,
                     size_t err_len)
{
	store_t *st = &r->m->st;
	tagset_t next = {0};
	int rc = 0;
	if (!r->active)
		return -EINVAL;
	if (r->changed) {
		rc = batch_next_set(r, &next, err, err_len);
		if (rc == 0 && (save_own_seqs(r) < 0 || store_stamp_save(st, &r->stamp) < 0))
			rc = store_fail(st, "writing the counters", err, err_len);
	}
	if (rc == 0 && save_cursor(st, peer, cur) < 0)
		rc = store_fail(st, "writing a cursor", err, err_len);
	if (rc == 0)
		rc = store_commit(st, err, err_len);
	if (rc < 0) {
		tagset_free(&next);
		mgmt_repl_rollback(r);
		return rc;
	}
	if (r->changed && (r->nkeys || r->rebuild))
		mgmt_publish_keys(r->m, r->p, &next, (uint64_t)r->stamp.generation,
		                  r->rebuild ? NULL : r->keys, r->rebuild ? 0 : r->nkeys);
	else if (r->changed) /* nothing projected: the generation noted, no flip */
		proj_note_generation(r->p, (uint64_t)r->stamp.generation);
	if (r->effects & FX_AUTH) /* every process drops its sessions, reads the key again */
		proj_auth_bump(r->p);
	if (r->effects & FX_ROUTE)
		publish_routing(r);
	tagset_free(&next);
	tagset_free(&r->old);
	touched_free(r);
	proj_unlock(r->p);
	r->active = false;
	return rc;
}

/* ---- Audit records and their cleanups
 * ------------------------------------------------------------- *
 *
 * A cleanup (mgmt_audit_cleanup) removes the records older than its
 * `before` on the node where it is made and leaves a record of itself
 * (operationType "audit", action "cleanup", details.before).  That record
 * travels like the others; applying it removes here what it removed there
 * (the records written before it, by HLC, and older than `before`), and
 * a record it removed is not taken again from a peer that still has it
 * (a pull, a catch-up): so a cleanup is in force on every node, and
 * anti-entropy does not bring its records back. */

static int col_index(const table_t *t, const char *name)
{
	for (int i = 0; i < t->ncol; i++)
		if (!strcmp(t->names[i], name))
			return i;
	return -1;
}

static bool text_is(const mgmt_value_t *v, const char *s)
{
	size_t n = strlen(s);
	return v->type == MGMT_V_TEXT && v->len == n && memcmp(v->s, s, n) == 0;
}

static bool audit_is_cleanup(const table_t *t, const mgmt_row_t *row)
{
	return text_is(row_val(row, col_index(t, "operation_type")), "audit") &&
	       text_is(row_val(row, col_index(t, "action")), "cleanup");
}

#define CLEANUP_BEFORE(x)                                                                          \
	"CASE WHEN json_valid(" x ") THEN CAST(json_extract(" x ", '$.before') AS INTEGER) END"

static bool audit_admit(mgmt_repl_t *r, const table_t *t, const mgmt_row_t *row)
{
	const mgmt_value_t *time = row_val(row, col_index(t, "time_ms"));
	if (audit_is_cleanup(t, row) || time->type != MGMT_V_INT)
		return true;
	sqlite3_stmt *q = own_stmt(
	    r, &r->horizon,
	    "SELECT EXISTS (SELECT 1 FROM audit WHERE operation_type = "
	    "'audit' AND action = 'cleanup' AND hlc > ?1 AND " CLEANUP_BEFORE("details") " > ?2)");
	bool removed = false;
	if (!q)
		return true;
	sqlite3_bind_int64(q, 1, row->hlc);
	sqlite3_bind_int64(q, 2, time->i);
	if (sqlite3_step(q) == SQLITE_ROW)
		removed = sqlite3_column_int(q, 0) != 0;
	sqlite3_reset(q);
	return !removed;
}

static int audit_applied(mgmt_repl_t *r, const table_t *t, const mgmt_row_t *row)
{
	const mgmt_value_t *details = row_val(row, col_index(t, "details"));
	if (!audit_is_cleanup(t, row) || details->type != MGMT_V_TEXT)
		return 0;
	sqlite3_stmt *q = own_stmt(
	    r, &r->cleanup, "DELETE FROM audit WHERE hlc < ?1 AND time_ms < " CLEANUP_BEFORE("?2"));
	if (!q)
		return -EIO;
	sqlite3_bind_int64(q, 1, row->hlc);
	sqlite3_bind_text(q, 2, details->s, (int)details->len, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* ---- Rows each node prunes itself
 * ------------------------------------------------------------------- */

static int64_t history_ms(const mgmt_repl_t *r)
{
	const config_t *cfg = r->m->cfg;
	return (int64_t)(cfg ? cfg->login_history_days : 90) * 24 * 3600 * 1000;
}

static int64_t int_of(const table_t *t, const mgmt_row_t *row, const char *col)
{
	const mgmt_value_t *v = row_val(row, col_index(t, col));
	return v->type == MGMT_V_INT ? v->i : 0;
}

/* SESSION_LIVE's negation, of a row received. */
static bool session_gone(const mgmt_repl_t *r, const table_t *t, const mgmt_row_t *row)
{
	int64_t now = (int64_t)clock_wall_ms();
	(void)r;
	return int_of(t, row, "expire_time") < now ||
	       (int_of(t, row, "revoked") == 1 &&
	        int_of(t, row, "revoke_time") < now - (int64_t)SESSION_PRUNE_MS);
}

/* LOGIN_LIVE's negation. */
static bool login_gone(const mgmt_repl_t *r, const table_t *t, const mgmt_row_t *row)
{
	return int_of(t, row, "time_ms") < (int64_t)clock_wall_ms() - history_ms(r);
}

/* ---- Ids the same on every node
 * ------------------------------------------------------------------------ */

int64_t replica_key_id(const char *key)
{
	char low[512];
	size_t n = strlen(key);
	if (n >= sizeof(low))
		n = sizeof(low) - 1;
	for (size_t i = 0; i < n; i++)
		low[i] = (char)(key[i] >= 'A' && key[i] <= 'Z' ? key[i] - 'A' + 'a' : key[i]);
	int64_t id = (int64_t)(XXH3_64bits(low, n) & ((1ull << 53) - 1));
	return id ? id : 1;
}

int64_t replica_boot_hlc(uint64_t now_ms)
{
	/* Writes' HLCs are (ms << 16) | counter, far above 2^41. */
	return (int64_t)((1ull << 41) - (now_ms & ((1ull << 41) - 1)));
}

/* ---- Digests
 * --------------------------------------------------------------------------------------- */

/* The lower-cased key of a row (ONCE: its origin first) into r->scratch. */
static void key_bytes(mgmt_repl_t *r, const table_t *t, const mgmt_value_t *vals,
                      const char *origin, size_t origin_len)
{
	buf_t *b = &r->scratch;
	buf_reset(b);
	if (t->d->policy == POLICY_ONCE) {
		buf_append(b, origin, origin_len);
		buf_append(b, "", 1);
	}
	for (int i = 0; i < t->nkey; i++) {
		const mgmt_value_t *v = &vals[i];
		char type = (char)('0' + v->type);
		buf_append(b, &type, 1);
		if (v->type == MGMT_V_INT) {
			buf_append(b, &v->i, sizeof(v->i));
			continue;
		}
		size_t at = b->len;
		buf_append(b, v->s, v->len);
		for (size_t k = at; k < b->len && !buf_error(b); k++)
			if (b->data[k] >= 'A' && b->data[k] <= 'Z')
				b->data[k] = (char)(b->data[k] - 'A' + 'a');
		buf_append(b, "", 1);
	}
}

static int bucket_of(mgmt_repl_t *r, const table_t *t, const mgmt_row_t *row)
{
	key_bytes(r, t, row->vals, row->origin, row->origin_len);
	return (int)(XXH3_64bits(r->scratch.data, r->scratch.len) % MGMT_REPL_BUCKETS);
}

static int digest_table(mgmt_repl_t *r, table_t *t)
{
	sqlite3_stmt *q = stmt(r, t, ST_DIGEST);
	mgmt_value_t vals[MAX_NAMES] = {0};
	int rc, n = t->nkey;
	if (!q)
		return -EIO;
	if (t->d->live_sql) {
		sqlite3_bind_int64(q, 1, (int64_t)clock_wall_ms());
		sqlite3_bind_int64(q, 2, history_ms(r));
	}
	memset(t->count, 0, sizeof(t->count));
	memset(t->hash, 0, sizeof(t->hash));
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct {
			int64_t hlc;
			int64_t deleted, sticky;
		} stamp;
		const char *origin = (const char *)sqlite3_column_text(q, n + 2);
		size_t olen = (size_t)sqlite3_column_bytes(q, n + 2);
		for (int i = 0; i < n; i++)
			column_value(q, i, &vals[i]);
		key_bytes(r, t, vals, origin ? origin : "", origin ? olen : 0);
		int b = (int)(XXH3_64bits(r->scratch.data, r->scratch.len) % MGMT_REPL_BUCKETS);
		memset(&stamp, 0, sizeof(stamp));
		stamp.deleted = sqlite3_column_int64(q, n);
		stamp.hlc = sqlite3_column_int64(q, n + 1);
		stamp.sticky = sqlite3_column_int64(q, n + 3);
		buf_append(&r->scratch, &stamp, sizeof(stamp));
		buf_append(&r->scratch, origin ? origin : "", origin ? olen : 0);
		if (buf_error(&r->scratch)) {
			sqlite3_reset(q);
			return -ENOMEM;
		}
		t->count[b]++;
		t->hash[b] +=
		    XXH3_64bits_withSeed(r->scratch.data, r->scratch.len, (uint64_t)t->d->kind);
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static int table_max_seq(mgmt_repl_t *r, table_t *t, int64_t *seq)
{
	sqlite3_stmt *q = stmt(r, t, ST_MAXSEQ);
	if (!q)
		return -EIO;
	int rc = sqlite3_step(q);
	*seq = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
	sqlite3_reset(q);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

int mgmt_repl_digest(mgmt_repl_t *r, uint64_t kinds, mgmt_repl_digest_t *out, size_t cap, size_t *n)
{
	store_t *st = &r->m->st;
	int rc = 0;
	*n = 0;
	if (store_begin(st, false, NULL, 0) < 0)
		return -EIO;
	for (int i = 0; i < NTABLES && rc == 0; i++) {
		table_t *t = &r->t[i];
		int64_t seq = 0;
		if (!((kinds >> t->d->kind) & 1))
			continue;
		if ((rc = table_max_seq(r, t, &seq)) < 0)
			break;
		/* What counts of a table with live_sql also changes with time. */
		int64_t now = (int64_t)clock_wall_ms();
		if (!t->digest_valid || t->digest_seq != seq ||
		    (t->d->live_sql && now - t->digest_ms >= DIGEST_AGE_MS)) {
			if ((rc = digest_table(r, t)) < 0)
				break;
			t->digest_valid = true;
			t->digest_seq = seq;
			t->digest_ms = now;
		}
		for (int b = 0; b < MGMT_REPL_BUCKETS; b++) {
			if (*n == cap) {
				rc = -ENOSPC;
				break;
			}
			out[(*n)++] = (mgmt_repl_digest_t){t->d->kind, b, t->count[b], t->hash[b]};
		}
	}
	store_rollback(st);
	return rc;
}

/* ---- Tombstones
 * ---------------------------------------------------------------------------------------- */

/* The collection of table i's tombstones: parents still named by a row
 * (a stand-in, or a group removed while a peer added to it) stay. */
static void gc_sql(int i, buf_t *b)
{
	buf_printf(b, "DELETE FROM %s WHERE deleted = 1 AND seq <= ?1 AND hlc < ?2",
	           tables[i].table);
	for (int j = i + 1; j < NTABLES; j++)
		for (int k = 0; k < MAX_REFS && tables[j].refs[k].col; k++)
			if (!strcmp(tables[j].refs[k].parent, tables[i].table))
				buf_printf(
				    b, " AND NOT EXISTS (SELECT 1 FROM %s c WHERE c.%s = %s.%s)",
				    tables[j].table, tables[j].refs[k].col, tables[i].table,
				    tables[i].pk);
}

int mgmt_repl_gc(mgmt_repl_t *r, uint64_t upto, uint64_t before_ms, uint64_t *removed)
{
	store_t *st = &r->m->st;
	int rc = 0;
	*removed = 0;
	if (store_begin(st, true, NULL, 0) < 0)
		return -EIO;
	/* Children before their parents (descriptors list parents first). */
	for (int i = NTABLES - 1; i >= 0 && rc == 0; i--) {
		sqlite3_stmt *q = NULL;
		if (!tables[i].tombstones)
			continue;
		buf_reset(&r->scratch);
		gc_sql(i, &r->scratch);
		buf_append(&r->scratch, "", 1);
		if (buf_error(&r->scratch) ||
		    sqlite3_prepare_v2(st->db, r->scratch.data, -1, &q, NULL) != SQLITE_OK) {
			rc = -EIO;
			break;
		}
		sqlite3_bind_int64(q, 1, (int64_t)upto);
		sqlite3_bind_int64(q, 2, (int64_t)(before_ms << 16));
		int s = sqlite3_step(q);
		if (s == SQLITE_DONE) {
			int k = sqlite3_changes(st->db);
			*removed += (uint64_t)k;
			if (k)
				r->t[i].digest_valid = false;
		} else {
			rc = -EIO;
		}
		sqlite3_finalize(q);
	}
	if (rc == 0 && store_commit(st, NULL, 0) < 0)
		rc = -EIO;
	if (rc < 0)
		store_rollback(st);
	return rc;
}

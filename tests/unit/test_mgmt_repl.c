/*
 * test_mgmt_repl.c - the management store between nodes (mgmt/replica.c):
 * two nodes in one process (two regions, two stores), rows walked out of
 * one and applied to the other as the replicator does, without the wire.
 *
 * Last writer wins by (hlc, origin) whatever the order of arrival, and
 * both nodes end with equal digests; tombstones win over late records;
 * audit records are taken once; the HLC is merged with what is received;
 * a node's own records coming back move its sequence; cleanups are in
 * force everywhere and their records are not taken again; walks resume
 * exactly; malformed rows are refused one by one; tombstones are
 * collected.  Users, sessions and the JWT secret: a session opened on one
 * node is valid on the other, a logout or a disabled user there ends it
 * here (the auth generation moves, caches drop), a revocation never goes
 * back; the first start of the oldest node gives the cluster its first
 * admin and its secret; a fresh store never reuses the record numbers of
 * a store its node lost; rows a node pruned are not taken back.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "artemis/clock.h"
#include "artemis/config.h"
#include "artemis/mgmt.h"
#include "artemis/shm.h"
#include "mgmt_fixture.h"

#define V_TEXT(x) ((mgmt_value_t){MGMT_V_TEXT, 0, 0, (x), strlen(x)})
#define V_INT(x)  ((mgmt_value_t){MGMT_V_INT, (x), 0, NULL, 0})
#define V_NULL    ((mgmt_value_t){MGMT_V_NULL, 0, 0, NULL, 0})

#define KIND_INSTANCE 2
#define KIND_SERVER   3
#define KIND_AUDIT    5

typedef struct {
	char name[16];
	char dir[128];
	char region[64];
	config_t cfg;
	shm_t *shm;
	mgmt_t *m;
	mgmt_repl_t *r;
} node_t;

static node_t A, B;

static void node_up(node_t *n, const char *name)
{
	shm_params_t p;
	char err[512], cmd[300];
	memset(n, 0, sizeof(*n));
	snprintf(n->name, sizeof(n->name), "%s", name);
	snprintf(n->dir, sizeof(n->dir), "/tmp/artemis-unit-mrepl-%d-%s", (int)getpid(), name);
	snprintf(n->region, sizeof(n->region), "/artemis-unit-mrepl-%d-%s", (int)getpid(), name);
	config_defaults(&n->cfg);
	snprintf(n->cfg.name, sizeof(n->cfg.name), "%s", name);
	snprintf(n->cfg.data_dir, sizeof(n->cfg.data_dir), "%s", n->dir);
	n->cfg.mgmt_max_operations = 64;
	snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s", n->dir, n->dir);
	assert_int_equal(system(cmd), 0);
	shm_params_default(&p, n->region);
	p.max_instances = 100;
	p.changelog_size = 1024;
	p.mgmt_bytes = mgmt_section_bytes(64);
	assert_int_equal(shm_open_region(&p, SHM_CREATE_FRESH, &n->shm, NULL), 0);
	if (mgmt_boot(&n->cfg, n->shm, err, sizeof(err)) < 0)
		fail_msg("mgmt_boot: %s", err);
	if (mgmt_open(&n->cfg, n->shm, &n->m, err, sizeof(err)) < 0)
		fail_msg("mgmt_open: %s", err);
	if (mgmt_repl_open(&n->cfg, n->shm, &n->r, err, sizeof(err)) < 0)
		fail_msg("mgmt_repl_open: %s", err);
}

static void node_down(node_t *n)
{
	char cmd[300];
	mgmt_repl_close(n->r);
	mgmt_close(n->m);
	shm_detach(n->shm);
	shm_destroy(n->region);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", n->dir);
	assert_int_equal(system(cmd), 0);
}

static int sync_all(node_t *from, node_t *to);

/* Two nodes that met: each one's first start (its first admin, its JWT
 * secret, their audit records) applied to the other. */
static int setup(void **state)
{
	(void)state;
	node_up(&A, "node-a");
	node_up(&B, "node-b");
	sync_all(&A, &B);
	sync_all(&B, &A);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	node_down(&A);
	node_down(&B);
	return 0;
}

static long long sql_int(node_t *n, const char *stmt)
{
	char path[256];
	sqlite3 *db;
	sqlite3_stmt *q;
	snprintf(path, sizeof(path), "%s/%s", n->dir, MGMT_DB_FILE);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_prepare_v2(db, stmt, -1, &q, NULL) != SQLITE_OK)
		fail_msg("%s: %s", stmt, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	long long v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

static void sql_exec(node_t *n, const char *stmt)
{
	char path[256];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/%s", n->dir, MGMT_DB_FILE);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, stmt, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", stmt, sqlite3_errmsg(db));
	sqlite3_close(db);
}

static void op(node_t *n, mgmt_kind_t kind, const char *a, const char *b, bool insert,
               const char *operator_id)
{
	mgmt_change_t c;
	char err[256];
	memset(&c, 0, sizeof(c));
	c.key.kind = kind;
	snprintf(c.key.region, sizeof(c.key.region), "us-east");
	if (kind == MGMT_INSTANCE) {
		snprintf(c.key.service, sizeof(c.key.service), "%s", a);
		snprintf(c.key.instance, sizeof(c.key.instance), "%s", b);
	} else {
		snprintf(c.key.server, sizeof(c.key.server), "%s", a);
	}
	snprintf(c.key.operation, sizeof(c.key.operation), "pullout");
	c.insert = insert;
	mgmt_ctx_t ctx = {.operator_id = operator_id, .complete = -1, .surface = "rust"};
	if (mgmt_apply(n->m, &c, 1, &ctx, err, sizeof(err)) < 0)
		fail_msg("mgmt_apply: %s", err);
}

/* Rows walked out of a node, kept (deep copies) to apply elsewhere. */
typedef struct {
	mgmt_row_t *v;
	char **bufs;
	size_t n, cap;
	uint32_t stop_after; /* stop the walk after this many (0 = never) */
	uint32_t given;
} rows_t;

static int keep_row(void *ctx, const mgmt_row_t *row)
{
	rows_t *rs = ctx;
	if (rs->stop_after && rs->given == rs->stop_after)
		return 1;
	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 16;
		rs->v = realloc(rs->v, rs->cap * sizeof(*rs->v));
		rs->bufs = realloc(rs->bufs, rs->cap * sizeof(*rs->bufs));
		assert_non_null(rs->v);
	}
	size_t need = row->origin_len + 1;
	for (uint32_t i = 0; i < row->nvals; i++)
		need += row->vals[i].len + 1;
	char *b = malloc(need), *p = b;
	mgmt_row_t *c = &rs->v[rs->n];
	*c = *row;
	memcpy(p, row->origin, row->origin_len);
	c->origin = p;
	p += row->origin_len + 1;
	for (uint32_t i = 0; i < row->nvals; i++) {
		if (row->vals[i].s) {
			memcpy(p, row->vals[i].s, row->vals[i].len);
			c->vals[i].s = p;
			p += row->vals[i].len + 1;
		}
	}
	rs->bufs[rs->n++] = b;
	rs->given++;
	return 0;
}

static void rows_free(rows_t *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		free(rs->bufs[i]);
	free(rs->v);
	free(rs->bufs);
	memset(rs, 0, sizeof(*rs));
}

/* Every row of a node with seq > after (any origin). */
static void walk_all(node_t *n, uint64_t after, rows_t *rs)
{
	mgmt_repl_walk_t w;
	uint64_t sid, gen;
	memset(&w, 0, sizeof(w));
	assert_int_equal(mgmt_repl_head(n->r, &sid, &gen), 0);
	w.after = after;
	w.upto = gen;
	while (!w.done)
		assert_int_equal(mgmt_repl_walk(n->r, &w, 1000, keep_row, rs), 0);
}

static int apply_rows(node_t *n, const rows_t *rs, size_t from, size_t to)
{
	char err[256];
	int applied = 0;
	assert_int_equal(mgmt_repl_begin(n->r, err, sizeof(err)), 0);
	for (size_t i = from; i < to; i++) {
		int rc = mgmt_repl_put(n->r, &rs->v[i], err, sizeof(err));
		if (rc < 0)
			fail_msg("mgmt_repl_put: %d %s", rc, err);
		applied += rc;
	}
	assert_int_equal(mgmt_repl_commit(n->r, NULL, NULL, err, sizeof(err)), 0);
	return applied;
}

/* Everything of `from` applied to `to`. */
static int sync_all(node_t *from, node_t *to)
{
	rows_t rs = {0};
	walk_all(from, 0, &rs);
	int n = rs.n ? apply_rows(to, &rs, 0, rs.n) : 0;
	rows_free(&rs);
	return n;
}

static void assert_same_digests(void)
{
	mgmt_repl_digest_t da[256], db[256];
	size_t na, nb;
	assert_int_equal(mgmt_repl_digest(A.r, mgmt_repl_kinds(), da, 256, &na), 0);
	assert_int_equal(mgmt_repl_digest(B.r, mgmt_repl_kinds(), db, 256, &nb), 0);
	assert_int_equal(na, nb);
	for (size_t i = 0; i < na; i++) {
		assert_int_equal(da[i].kind, db[i].kind);
		if (da[i].count != db[i].count || da[i].hash != db[i].hash)
			fail_msg("kind %d bucket %d differs: %llu/%llx against %llu/%llx",
			         da[i].kind, da[i].bucket, (unsigned long long)da[i].count,
			         (unsigned long long)da[i].hash, (unsigned long long)db[i].count,
			         (unsigned long long)db[i].hash);
	}
}

static bool tag_down(node_t *n, const char *svc, const char *inst)
{
	mgmt_key_t k;
	memset(&k, 0, sizeof(k));
	k.kind = MGMT_INSTANCE;
	snprintf(k.region, sizeof(k.region), "us-east");
	snprintf(k.service, sizeof(k.service), "%s", svc);
	snprintf(k.instance, sizeof(k.instance), "%s", inst);
	return mgmt_tag_down(n->shm, mgmt_key_tag(n->shm, &k)) == 1;
}

/* ---- Tests ---------------------------------------------------------------------------- */

static void test_kinds(void **state)
{
	(void)state;
	uint64_t k = mgmt_repl_kinds();
	assert_true(k & (1ull << KIND_INSTANCE));
	assert_true(k & (1ull << KIND_AUDIT));
	assert_false(k & 3ull); /* 0 unused, 1 the registry's */
	assert_string_equal(mgmt_repl_kind_name(KIND_SERVER), "server");
	assert_null(mgmt_repl_kind_name(1));
}

static void test_operation_reaches_peer(void **state)
{
	(void)state;
	fixture_register(B.shm, "svc", "i1", "10.0.0.1", "zone-1");
	op(&A, MGMT_INSTANCE, "svc", "i1", true, "alice");
	assert_false(tag_down(&B, "svc", "i1"));
	uint64_t gen_before = mgmt_generation(B.shm);
	assert_true(sync_all(&A, &B) >= 2); /* the operation and its audit record */
	assert_true(tag_down(&B, "svc", "i1"));
	assert_true(mgmt_generation(B.shm) > gen_before); /* caches follow */
	assert_int_equal(sql_int(&B, "SELECT count(*) FROM audit WHERE origin_node = 'node-a' AND "
	                             "operation_type = 'instance'"),
	                 1);
	assert_int_equal(sql_int(&B, "SELECT count(*) FROM instance WHERE origin_node = 'node-a' "
	                             "AND operator_id = 'alice' AND deleted = 0"),
	                 1);
	/* again: nothing new (idempotent), and the projection agrees with the store */
	assert_int_equal(sync_all(&A, &B), 0);
	char msg[256];
	assert_int_equal(mgmt_check(&B.cfg, B.shm, msg, sizeof(msg)), 0);
	assert_same_digests();
}

static void test_last_writer_wins_both_orders(void **state)
{
	(void)state;
	/* i2: A's operation, then B's removal of its own (a tombstone, in
	 * another case); i3: A's removal, then B's operation.  The later
	 * version wins on both nodes in whichever order the two arrive. */
	op(&A, MGMT_INSTANCE, "svc", "i2", true, "alice");
	op(&A, MGMT_INSTANCE, "svc", "i3", true, "alice");
	op(&A, MGMT_INSTANCE, "svc", "i3", false, "alice");
	op(&B, MGMT_INSTANCE, "SVC", "I2", true, "bob");
	op(&B, MGMT_INSTANCE, "SVC", "I2", false, "bob");
	op(&B, MGMT_INSTANCE, "svc", "i3", true, "bob");
	rows_t ra = {0}, rb = {0};
	walk_all(&A, 0, &ra);
	walk_all(&B, 0, &rb);
	apply_rows(&A, &rb, 0, rb.n);
	apply_rows(&B, &ra, 0, ra.n);
	rows_free(&ra);
	rows_free(&rb);
	assert_false(tag_down(&A, "svc", "i2"));
	assert_false(tag_down(&B, "svc", "i2"));
	assert_true(tag_down(&A, "svc", "i3"));
	assert_true(tag_down(&B, "svc", "i3"));
	/* the winner's row, key case included, on both */
	for (node_t *n = &A; n; n = n == &A ? &B : NULL)
		assert_int_equal(
		    sql_int(n, "SELECT count(*) FROM instance WHERE service_id = 'SVC' "
		               "COLLATE BINARY AND deleted = 1 AND origin_node = 'node-b'"),
		    1);
	assert_same_digests();
	char msg[256];
	assert_int_equal(mgmt_check(&A.cfg, A.shm, msg, sizeof(msg)), 0);
	assert_int_equal(mgmt_check(&B.cfg, B.shm, msg, sizeof(msg)), 0);
}

static void test_tombstone_wins_over_late_record(void **state)
{
	(void)state;
	rows_t live = {0}, dead = {0};
	op(&A, MGMT_SERVER, "10.0.0.9", NULL, true, "alice");
	walk_all(&A, 0, &live);
	uint64_t sid, gen;
	assert_int_equal(mgmt_repl_head(A.r, &sid, &gen), 0);
	op(&A, MGMT_SERVER, "10.0.0.9", NULL, false, "alice");
	walk_all(&A, gen, &dead);
	assert_true(dead.n >= 1);
	apply_rows(&B, &dead, 0, dead.n);                           /* the removal first */
	assert_int_equal(apply_rows(&B, &live, 0, live.n) >= 1, 1); /* its audit record only */
	assert_int_equal(sql_int(&B, "SELECT count(*) FROM server WHERE deleted = 0"), 0);
	assert_int_equal(sql_int(&B, "SELECT count(*) FROM server WHERE deleted = 1"), 1);
	rows_free(&live);
	rows_free(&dead);
	assert_same_digests();
}

static void test_audit_once_and_own_sequence(void **state)
{
	(void)state;
	op(&A, MGMT_INSTANCE, "svc", "i3", true, "alice");
	op(&A, MGMT_INSTANCE, "svc", "i4", true, "alice");
	sync_all(&A, &B);
	sync_all(&A, &B);
	assert_int_equal(sql_int(&B, "SELECT count(*) FROM audit WHERE operator_id = 'alice'"), 2);
	assert_int_equal(sql_int(&B, "SELECT count(DISTINCT origin_node || '/' || origin_seq) FROM "
	                             "audit WHERE operator_id = 'alice'"),
	                 2);
	long long last =
	    sql_int(&A, "SELECT max(origin_seq) FROM audit WHERE origin_node = 'node-a'");
	/* A loses its store and starts again: the record of its new first
	 * admin does not take the number of one B holds of its old store. */
	node_down(&A);
	node_up(&A, "node-a");
	assert_true(sql_int(&A, "SELECT min(origin_seq) FROM audit") > last);
	sync_all(&B, &A);
	assert_int_equal(sql_int(&A, "SELECT count(*) FROM audit WHERE operator_id = 'alice'"), 2);
	sync_all(&A, &B);
	assert_same_digests();
	/* A store restored from a backup older than its last record: that
	 * record comes back from B, and A's next one is numbered after it, so
	 * B takes it. */
	op(&A, MGMT_INSTANCE, "svc", "i5", true, "alice");
	sync_all(&A, &B);
	long long i5 = sql_int(&A, "SELECT origin_seq FROM audit WHERE instance_id = 'i5'");
	sql_exec(&A, "DELETE FROM audit WHERE instance_id = 'i5'");
	sql_exec(&A, "UPDATE meta SET value = value - 1 WHERE key = 'audit_seq'");
	sync_all(&B, &A);
	assert_int_equal(sql_int(&A, "SELECT value FROM meta WHERE key = 'audit_seq'"), i5);
	op(&A, MGMT_INSTANCE, "svc", "i6", true, "alice");
	assert_int_equal(sql_int(&A, "SELECT origin_seq FROM audit WHERE instance_id = 'i6'"),
	                 i5 + 1);
	sync_all(&A, &B);
	assert_int_equal(sql_int(&B, "SELECT count(*) FROM audit WHERE operator_id = 'alice'"), 4);
	assert_same_digests();
}

/* A row of the instance table, made by hand. */
static mgmt_row_t hand_row(const char *origin, int64_t hlc, bool deleted, const char *inst)
{
	mgmt_row_t row;
	memset(&row, 0, sizeof(row));
	row.kind = KIND_INSTANCE;
	row.hlc = hlc;
	row.origin = origin;
	row.origin_len = strlen(origin);
	row.deleted = deleted;
	const char *texts[] = {"us-east", "svc", inst, "pullout", "zed"};
	for (int i = 0; i < 5; i++)
		row.vals[i] = V_TEXT(texts[i]);
	row.vals[5] = V_NULL;
	row.vals[6] = V_INT(1000);
	row.vals[7] = V_INT(1000);
	row.nvals = 8;
	return row;
}

static void test_hlc_merge(void **state)
{
	(void)state;
	int64_t future = (int64_t)((clock_wall_ms() + 3600 * 1000) << 16);
	mgmt_row_t row = hand_row("node-c", future, false, "i6");
	char err[256];
	assert_int_equal(mgmt_repl_begin(B.r, err, sizeof(err)), 0);
	assert_int_equal(mgmt_repl_put(B.r, &row, err, sizeof(err)), 1);
	assert_int_equal(mgmt_repl_commit(B.r, NULL, NULL, err, sizeof(err)), 0);
	assert_true(tag_down(&B, "svc", "i6"));
	/* B's own later write wins over it, although B's clock is an hour behind */
	op(&B, MGMT_INSTANCE, "svc", "i6", false, "bob");
	assert_false(tag_down(&B, "svc", "i6"));
	assert_true(sql_int(&B, "SELECT hlc FROM instance WHERE instance_id = 'i6'") > future);
}

static void test_bad_rows_refused_one_by_one(void **state)
{
	(void)state;
	char err[256];
	mgmt_row_t good = hand_row("node-c", 5 << 16, false, "i7");
	mgmt_row_t bad[6];
	for (int i = 0; i < 6; i++)
		bad[i] = hand_row("node-c", 5 << 16, false, "i8");
	bad[0].kind = 40;          /* unknown kind */
	bad[1].nvals = 2;          /* too few values */
	bad[2].hlc = 0;            /* no timestamp */
	bad[3].origin_len = 0;     /* no origin */
	bad[4].vals[2] = V_INT(7); /* a key not text */
	bad[5].vals[3].len = 0;    /* a blank operation */
	assert_int_equal(mgmt_repl_begin(B.r, err, sizeof(err)), 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(mgmt_repl_put(B.r, &bad[i], err, sizeof(err)), -EINVAL);
	assert_int_equal(mgmt_repl_put(B.r, &good, err, sizeof(err)), 1);
	assert_int_equal(mgmt_repl_commit(B.r, NULL, NULL, err, sizeof(err)), 0);
	assert_int_equal(sql_int(&B, "SELECT count(*) FROM instance"), 1);
	char msg[256];
	assert_int_equal(mgmt_check(&B.cfg, B.shm, msg, sizeof(msg)), 0);
}

static void test_walk_resumes_exactly(void **state)
{
	(void)state;
	uint64_t sid, gen0, gen;
	assert_int_equal(mgmt_repl_head(A.r, &sid, &gen0), 0); /* after the nodes met */
	for (int i = 0; i < 7; i++) {
		char inst[16];
		snprintf(inst, sizeof(inst), "w%d", i);
		op(&A, MGMT_INSTANCE, "svc", inst, true, "alice");
	}
	rows_t all = {0}, step = {0};
	walk_all(&A, gen0, &all);
	assert_int_equal(all.n, 14);
	/* one row per call, and a callback that refuses every other row */
	mgmt_repl_walk_t w;
	memset(&w, 0, sizeof(w));
	assert_int_equal(mgmt_repl_head(A.r, &sid, &gen), 0);
	w.after = gen0;
	w.upto = gen;
	for (int calls = 0; !w.done; calls++) {
		assert_true(calls < 100);
		step.stop_after = step.given + (calls % 2);
		assert_int_equal(mgmt_repl_walk(A.r, &w, 1, keep_row, &step), 0);
	}
	assert_int_equal(step.n, all.n);
	for (size_t i = 0; i < all.n; i++) {
		assert_int_equal(step.v[i].kind, all.v[i].kind);
		assert_int_equal(step.v[i].hlc, all.v[i].hlc);
	}
	/* own rows only, and own rows after a mark */
	rows_t own = {0};
	memset(&w, 0, sizeof(w));
	w.after = gen0;
	w.upto = gen;
	w.own_only = true;
	w.kinds = 1ull << KIND_AUDIT;
	while (!w.done)
		assert_int_equal(mgmt_repl_walk(A.r, &w, 3, keep_row, &own), 0);
	assert_int_equal(own.n, 7);
	rows_free(&all);
	rows_free(&step);
	rows_free(&own);
}

static void test_bucket_walk(void **state)
{
	(void)state;
	for (int i = 0; i < 20; i++) {
		char inst[16];
		snprintf(inst, sizeof(inst), "b%d", i);
		op(&A, MGMT_INSTANCE, "svc", inst, true, "alice");
	}
	size_t total = 0;
	for (int b = 0; b < MGMT_REPL_BUCKETS; b++) {
		rows_t rs = {0};
		mgmt_repl_walk_t w;
		memset(&w, 0, sizeof(w));
		w.kind = KIND_INSTANCE;
		w.bucket = b;
		while (!w.done)
			assert_int_equal(mgmt_repl_walk(A.r, &w, 4, keep_row, &rs), 0);
		total += rs.n;
		rows_free(&rs);
	}
	assert_int_equal(total, 20);
}

static void test_cleanup_everywhere(void **state)
{
	(void)state;
	op(&A, MGMT_INSTANCE, "svc", "c1", true, "alice");
	sync_all(&A, &B);
	assert_int_equal(
	    sql_int(&B, "SELECT count(*) FROM audit WHERE operation_type = 'instance'"), 1);
	rows_t old = {0};
	walk_all(&A, 0, &old); /* the records, as a late peer would still send them */
	uint64_t deleted = 0;
	char err[256];
	mgmt_ctx_t ctx = {.operator_id = "alice", .complete = -1, .surface = "rust"};
	long long held = sql_int(&A, "SELECT count(*) FROM audit"); /* c1's and the first admins' */
	assert_int_equal(
	    mgmt_audit_cleanup(A.m, clock_wall_ms() + 1, &ctx, &deleted, err, sizeof(err)), 0);
	assert_int_equal(deleted, held);
	sync_all(&A, &B); /* the cleanup's record removes it on B too */
	assert_int_equal(sql_int(&B, "SELECT count(*) FROM audit WHERE action <> 'cleanup'"), 0);
	/* and the old record is not taken again */
	apply_rows(&B, &old, 0, old.n);
	apply_rows(&A, &old, 0, old.n);
	assert_int_equal(sql_int(&B, "SELECT count(*) FROM audit WHERE action <> 'cleanup'"), 0);
	assert_int_equal(sql_int(&A, "SELECT count(*) FROM audit WHERE action <> 'cleanup'"), 0);
	/* a record written after the cleanup stays on both */
	op(&A, MGMT_INSTANCE, "svc", "c2", true, "alice");
	sync_all(&A, &B);
	assert_int_equal(sql_int(&B, "SELECT count(*) FROM audit WHERE action <> 'cleanup'"), 1);
	rows_free(&old);
	assert_same_digests();
}

static void test_cursor_in_the_batch(void **state)
{
	(void)state;
	char err[256];
	mgmt_repl_cursor_t c = {.store_id = 77, .own = 5, .all = 3}, got;
	mgmt_row_t row = hand_row("node-c", 9 << 16, false, "k1");
	assert_int_equal(mgmt_repl_begin(B.r, err, sizeof(err)), 0);
	assert_int_equal(mgmt_repl_put(B.r, &row, err, sizeof(err)), 1);
	mgmt_repl_rollback(B.r); /* a death before the commit: neither stays */
	assert_int_equal(mgmt_repl_cursor_get(B.r, "node-c", &got), 0);
	assert_int_equal(got.store_id, 0);
	assert_int_equal(sql_int(&B, "SELECT count(*) FROM instance"), 0);
	assert_int_equal(mgmt_repl_begin(B.r, err, sizeof(err)), 0);
	assert_int_equal(mgmt_repl_put(B.r, &row, err, sizeof(err)), 1);
	assert_int_equal(mgmt_repl_commit(B.r, "node-c", &c, err, sizeof(err)), 0);
	assert_int_equal(mgmt_repl_cursor_get(B.r, "node-c", &got), 0);
	assert_int_equal(got.store_id, 77);
	assert_int_equal(got.own, 5);
	assert_int_equal(got.all, 3);
	assert_int_equal(mgmt_repl_acked_set(B.r, "node-c", 12), 0);
	assert_int_equal(mgmt_repl_cursor_get(B.r, "node-c", &got), 0);
	assert_int_equal(got.acked, 12);
	/* a cursor alone moves no generation */
	uint64_t sid, g1, g2;
	assert_int_equal(mgmt_repl_head(B.r, &sid, &g1), 0);
	assert_int_equal(mgmt_repl_begin(B.r, err, sizeof(err)), 0);
	assert_int_equal(mgmt_repl_commit(B.r, "node-c", &c, err, sizeof(err)), 0);
	assert_int_equal(mgmt_repl_head(B.r, &sid, &g2), 0);
	assert_int_equal(g1, g2);
	assert_true(sid > 0);
}

static void test_gc(void **state)
{
	(void)state;
	op(&A, MGMT_INSTANCE, "svc", "g1", true, "alice");
	op(&A, MGMT_INSTANCE, "svc", "g1", false, "alice");
	op(&A, MGMT_INSTANCE, "svc", "g2", true, "alice");
	uint64_t sid, gen, removed = 0;
	assert_int_equal(mgmt_repl_head(A.r, &sid, &gen), 0);
	/* not acknowledged that far, or too young: kept */
	assert_int_equal(mgmt_repl_gc(A.r, gen - 2, clock_wall_ms() + 1000, &removed), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(mgmt_repl_gc(A.r, gen, clock_wall_ms() - 60000, &removed), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(mgmt_repl_gc(A.r, gen, clock_wall_ms() + 1000, &removed), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(sql_int(&A, "SELECT count(*) FROM instance"), 1);
	assert_true(tag_down(&A, "svc", "g2"));
}

/* ---- Users, sessions, the login history, the JWT secret ------------------------------- */

#define KIND_USERS    6
#define KIND_SESSIONS 7
#define KIND_LOGINS   8

static mgmt_ctx_t admin_ctx = {.operator_id = "admin", .complete = -1, .surface = "rust"};

static int64_t user_make(node_t *n, const char *name, mgmt_role_t role)
{
	mgmt_user_t u;
	char err[256];
	memset(&u, 0, sizeof(u));
	u.role = role;
	u.active = true;
	snprintf(u.username, sizeof(u.username), "%s", name);
	snprintf(u.hash, sizeof(u.hash), "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA");
	if (mgmt_user_create(n->m, &u, &admin_ctx, err, sizeof(err)) < 0)
		fail_msg("mgmt_user_create: %s", err);
	return u.id;
}

static void session_open(node_t *n, const char *user, mgmt_session_t *s)
{
	char err[256];
	memset(s, 0, sizeof(*s));
	snprintf(s->username, sizeof(s->username), "%s", user);
	snprintf(s->ip, sizeof(s->ip), "127.0.0.1");
	s->expire_ms = clock_wall_ms() + 3600 * 1000;
	if (mgmt_session_open(n->m, s, NULL, err, sizeof(err)) < 0)
		fail_msg("mgmt_session_open: %s", err);
}

static int session_check(node_t *n, const mgmt_session_t *s, mgmt_principal_t *p)
{
	return mgmt_session_check(n->m, s->sid, s->username, clock_wall_ms(), p);
}

static void test_sessions_between_nodes(void **state)
{
	(void)state;
	mgmt_session_t s, s2;
	mgmt_principal_t p;
	mgmt_user_t ua, ub;
	char err[256];
	int64_t id = user_make(&A, "carol", MGMT_ROLE_OPERATOR);
	session_open(&A, "carol", &s);
	assert_int_equal(session_check(&B, &s, &p), -EACCES); /* not there yet */
	sync_all(&A, &B);
	/* the same user, the same userId; the session A opened is valid on B */
	assert_int_equal(mgmt_user_find(A.m, "carol", &ua), 0);
	assert_int_equal(mgmt_user_find(B.m, "CAROL", &ub), 0);
	assert_int_equal(ua.id, id);
	assert_int_equal(ub.id, id);
	assert_string_equal(ua.hash, ub.hash);
	assert_int_equal(session_check(&B, &s, &p), 0);
	assert_int_equal(p.role, MGMT_ROLE_OPERATOR);
	assert_int_equal(p.user_id, id);
	/* A checked it (cached); a logout on B is refused on A once applied */
	assert_int_equal(session_check(&A, &s, &p), 0);
	uint64_t gen = mgmt_auth_generation(A.m);
	assert_int_equal(mgmt_session_revoke(B.m, s.sid, NULL, err, sizeof(err)), 0);
	assert_int_equal(session_check(&A, &s, &p), 0);
	sync_all(&B, &A);
	assert_true(mgmt_auth_generation(A.m) != gen);
	assert_int_equal(session_check(&A, &s, &p), -EACCES);
	/* a user disabled on B: its sessions opened on A end on A */
	session_open(&A, "carol", &s2);
	sync_all(&A, &B);
	assert_int_equal(session_check(&A, &s2, &p), 0);
	mgmt_user_change_t off = {.role = -1, .active = 0};
	assert_int_equal(mgmt_user_update(B.m, id, &off, &admin_ctx, NULL, err, sizeof(err)), 0);
	sync_all(&B, &A);
	assert_int_equal(session_check(&A, &s2, &p), -EACCES);
	assert_int_equal(session_check(&B, &s2, &p), -EACCES);
	/* a revocation stays whatever the clocks say: an older unrevoked
	 * copy of the session (a late pull) does not bring it back */
	rows_t late = {0};
	walk_all(&A, 0, &late);
	for (size_t i = 0; i < late.n; i++)
		if (late.v[i].kind == KIND_SESSIONS)
			late.v[i].vals[6] = V_INT(0); /* revoked */
	apply_rows(&B, &late, 0, late.n);
	rows_free(&late);
	assert_int_equal(session_check(&B, &s, &p), -EACCES);
	assert_int_equal(sql_int(&B, "SELECT count(*) FROM sessions WHERE revoked = 0"), 0);
	/* every login on both nodes, once */
	sync_all(&A, &B);
	assert_int_equal(sql_int(&B, "SELECT count(*) FROM login_history WHERE username = 'carol'"),
	                 2);
	assert_same_digests();
}

static void test_first_admin_and_secret_converge(void **state)
{
	(void)state;
	uint8_t ka[64], kb[64];
	size_t la = 0, lb = 0;
	mgmt_user_t ua, ub;
	char err[256];
	/* A started first: its first admin and its secret are the cluster's */
	assert_int_equal(mgmt_jwt_key(A.m, ka, sizeof(ka), &la), 0);
	assert_int_equal(mgmt_jwt_key(B.m, kb, sizeof(kb), &lb), 0);
	assert_int_equal(la, lb);
	assert_memory_equal(ka, kb, la);
	assert_int_equal(mgmt_user_find(A.m, "admin", &ua), 0);
	assert_int_equal(mgmt_user_find(B.m, "admin", &ub), 0);
	assert_string_equal(ua.hash, ub.hash);
	assert_int_equal(ua.id, ub.id);
	assert_int_equal(sql_int(&B, "SELECT count(*) FROM users WHERE origin_node = 'node-a'"), 1);
	/* a third node's first start loses to both, whenever it meets them */
	node_t C;
	node_up(&C, "node-c");
	sync_all(&C, &A);
	sync_all(&A, &C);
	assert_int_equal(mgmt_jwt_key(C.m, kb, sizeof(kb), &lb), 0);
	assert_memory_equal(ka, kb, la);
	assert_int_equal(mgmt_user_find(C.m, "admin", &ub), 0);
	assert_string_equal(ua.hash, ub.hash);
	node_down(&C);
	/* any write wins over a first start: B's new admin description */
	mgmt_user_change_t c = {.description = "changed on B", .role = -1, .active = -1};
	assert_int_equal(mgmt_user_update(B.m, ub.id, &c, &admin_ctx, NULL, err, sizeof(err)), 0);
	sync_all(&B, &A);
	assert_int_equal(mgmt_user_find(A.m, "admin", &ua), 0);
	assert_string_equal(ua.description, "changed on B");
	sync_all(&A, &B); /* C's first start's records */
	assert_same_digests();
}

/* A session row made by hand (kind 7): key, then username, ip, agent,
 * create, expire, revoked, revoke_time. */
static mgmt_row_t session_row(const char *sid, int64_t create, int64_t expire)
{
	mgmt_row_t row;
	memset(&row, 0, sizeof(row));
	row.kind = KIND_SESSIONS;
	row.hlc = create << 16;
	row.origin = "node-c";
	row.origin_len = 6;
	const char *texts[] = {sid, "admin", "10.0.0.1", "test"};
	for (int i = 0; i < 4; i++)
		row.vals[i] = V_TEXT(texts[i]);
	row.vals[4] = V_INT(create);
	row.vals[5] = V_INT(expire);
	row.vals[6] = V_INT(0);
	row.vals[7] = V_NULL;
	row.nvals = 8;
	return row;
}

static void test_pruned_rows_not_taken(void **state)
{
	(void)state;
	char err[256];
	int64_t now = (int64_t)clock_wall_ms(), day = 24 * 3600 * 1000;
	mgmt_row_t live = session_row("0123456789abcdef0123456789abcdef", now, now + day);
	mgmt_row_t ended =
	    session_row("fedcba9876543210fedcba9876543210", now - 2 * day, now - day);
	mgmt_row_t login;
	memset(&login, 0, sizeof(login));
	login.kind = KIND_LOGINS;
	login.hlc = (now - 100 * day) << 16;
	login.origin = "node-c";
	login.origin_len = 6;
	login.vals[0] = V_INT(1);
	login.vals[1] = V_INT(now - 100 * day);
	const char *texts[] = {"admin", "10.0.0.1", "test", "success", ""};
	for (int i = 0; i < 5; i++)
		login.vals[2 + i] = V_TEXT(texts[i]);
	login.nvals = 7;
	/* what B would have pruned already is not taken from a peer that has not */
	assert_int_equal(mgmt_repl_begin(B.r, err, sizeof(err)), 0);
	assert_int_equal(mgmt_repl_put(B.r, &ended, err, sizeof(err)), 0);
	assert_int_equal(mgmt_repl_put(B.r, &login, err, sizeof(err)), 0);
	assert_int_equal(mgmt_repl_put(B.r, &live, err, sizeof(err)), 1);
	assert_int_equal(mgmt_repl_commit(B.r, NULL, NULL, err, sizeof(err)), 0);
	assert_int_equal(sql_int(&B, "SELECT count(*) FROM sessions"), 1);
	assert_int_equal(sql_int(&B, "SELECT count(*) FROM login_history WHERE origin_node = "
	                             "'node-c'"),
	                 0);
	/* the session's last activity is this node's own, from its creation */
	assert_int_equal(sql_int(&B, "SELECT last_activity FROM sessions"), now);
	/* and rows one node holds past their time do not make digests differ */
	sync_all(&B, &A);
	assert_same_digests();
	sql_exec(&A, "UPDATE sessions SET expire_time = 1, seq = seq + 1000"); /* a new digest */
	assert_int_equal(sql_int(&B, "SELECT count(*) FROM sessions WHERE expire_time > 1"), 1);
	mgmt_repl_digest_t da[256], db[256];
	size_t na, nb;
	assert_int_equal(mgmt_repl_digest(A.r, 1ull << KIND_SESSIONS, da, 256, &na), 0);
	sql_exec(&B, "DELETE FROM sessions");
	assert_int_equal(mgmt_repl_digest(B.r, 1ull << KIND_SESSIONS, db, 256, &nb), 0);
	assert_int_equal(na, nb);
	for (size_t i = 0; i < na; i++) {
		assert_int_equal(da[i].count, db[i].count);
		assert_int_equal(da[i].hash, db[i].hash);
	}
}

/* ---- Routing: groups, rules, canary ------------------------------------------------------ */

#define KIND_GROUP     10
#define KIND_RULE      11
#define KIND_GROUP_TAG 12

static mgmt_ctx_t olga = {.operator_id = "olga", .complete = -1, .surface = "rust"};

static mgmt_rtx_t *rtx(node_t *n)
{
	return fixture_rtx(n->m, &olga);
}

static int64_t group_make(node_t *n, const char *name)
{
	mgmt_group_t g;
	char err[256];
	memset(&g, 0, sizeof(g));
	snprintf(g.service, sizeof(g.service), "rsvc");
	snprintf(g.region, sizeof(g.region), "us-east");
	snprintf(g.zone, sizeof(g.zone), "zone-1");
	snprintf(g.name, sizeof(g.name), "%s", name);
	mgmt_rtx_t *t = rtx(n);
	if (mgmt_group_create(t, &g, false, err, sizeof(err)) < 0)
		fail_msg("mgmt_group_create: %s", err);
	fixture_commit(t);
	return g.id;
}

static int64_t group_here(node_t *n, const char *name)
{
	mgmt_group_t g;
	int rc = mgmt_group_find(n->m, "rsvc", "us-east", "zone-1", name, &g);
	return rc == 0 ? g.id : rc;
}

static int64_t rule_make(node_t *n, const char *route_id, const char *name)
{
	mgmt_rule_t r;
	char err[256];
	memset(&r, 0, sizeof(r));
	snprintf(r.service, sizeof(r.service), "rsvc");
	snprintf(r.route_id, sizeof(r.route_id), "%s", route_id);
	snprintf(r.name, sizeof(r.name), "%s", name);
	snprintf(r.strategy, sizeof(r.strategy), "weighted-round-robin");
	mgmt_rtx_t *t = rtx(n);
	if (mgmt_rule_create(t, &r, false, err, sizeof(err)) < 0)
		fail_msg("mgmt_rule_create: %s", err);
	fixture_commit(t);
	return r.id;
}

static int count_rule_groups(void *ctx, const mgmt_rule_group_t *rg)
{
	int64_t *v = ctx;
	v[0]++;
	v[1] = rg->group_id;
	v[2] = rg->weight;
	return 0;
}

static bool frame_has(node_t *n, const char *what)
{
	buf_t b = {0};
	assert_int_equal(mgmt_route_frame(n->shm, (shm_str_t){"rsvc", 4}, &b), 0);
	buf_append(&b, "", 1);
	bool has = strstr(b.data, what) != NULL;
	buf_free(&b);
	return has;
}

static void test_routing_between_nodes(void **state)
{
	(void)state;
	char err[256], msg[512];
	fixture_register(B.shm, "rsvc", "b1", "10.0.0.5", "zone-1");
	/* B numbers its groups differently: one of its own first */
	group_make(&B, "only-on-b");
	int64_t ga = group_make(&A, "g1");
	int64_t ra = rule_make(&A, "r1", "r1");
	mgmt_rtx_t *t = rtx(&A);
	mgmt_binding_t bind = {.group_id = ga};
	snprintf(bind.instance, sizeof(bind.instance), "b1");
	mgmt_rule_group_t rg = {.rule_id = ra, .group_id = ga, .unreleased_weight = 40};
	mgmt_rule_t pub = {.id = ra};
	snprintf(pub.status, sizeof(pub.status), "active");
	if (mgmt_tag_put(t, ga, "color", "blue", err, sizeof(err)) < 0 ||
	    mgmt_binding_put(t, &bind, err, sizeof(err)) < 0 ||
	    mgmt_rule_group_put(t, &rg, MGMT_WEIGHT_PUBLISH, err, sizeof(err)) < 0 ||
	    mgmt_rule_update(t, &pub, MGMT_RF_STATUS, err, sizeof(err)) < 0 ||
	    mgmt_group_op(t, ga, "pullout", true, err, sizeof(err)) < 0)
		fail_msg("routing write: %s", err);
	fixture_commit(t);
	assert_false(tag_down(&B, "rsvc", "b1"));
	assert_false(frame_has(&B, "\"r1\""));
	uint64_t gen = mgmt_generation(B.shm);
	sync_all(&A, &B);
	/* in force on B, by B's own ids */
	int64_t gb = group_here(&B, "g1");
	assert_true(gb > 0 && gb != ga);
	mgmt_rule_t rb;
	assert_int_equal(mgmt_rule_get(B.m, "r1", &rb), 0);
	int64_t got[3] = {0, 0, 0};
	assert_int_equal(mgmt_rule_groups(B.m, 0, rb.id, 0, count_rule_groups, got), 0);
	assert_int_equal(got[0], 1);
	assert_int_equal(got[1], gb);
	assert_int_equal(got[2], 40);
	assert_true(tag_down(&B, "rsvc", "b1")); /* the group's pull-out binds it */
	assert_true(frame_has(&B, "\"r1\""));    /* the routing image republished */
	assert_true(mgmt_generation(B.shm) > gen);
	assert_int_equal(mgmt_check(&B.cfg, B.shm, msg, sizeof(msg)), 0);
	/* the pull-in, made on B, travels back */
	t = rtx(&B);
	if (mgmt_group_op(t, gb, "pullout", false, err, sizeof(err)) < 0)
		fail_msg("pull-in: %s", err);
	fixture_commit(t);
	assert_false(tag_down(&B, "rsvc", "b1"));
	sync_all(&B, &A);
	sync_all(&A, &B);
	assert_int_equal(sql_int(&A, "SELECT count(*) FROM service_group_operation WHERE "
	                             "deleted = 0"),
	                 0);
	assert_int_equal(mgmt_check(&A.cfg, A.shm, msg, sizeof(msg)), 0);
	assert_same_digests();
}

static void test_routing_conflicts_converge(void **state)
{
	(void)state;
	char err[256];
	uint64_t removed = 0;
	/* a group's tag before the group: a stand-in, then the group itself */
	int64_t ga = group_make(&A, "g2");
	mgmt_rtx_t *t = rtx(&A);
	if (mgmt_tag_put(t, ga, "k", "v", err, sizeof(err)) < 0)
		fail_msg("tag: %s", err);
	fixture_commit(t);
	rows_t rs = {0}, tags = {0};
	walk_all(&A, 0, &rs);
	for (size_t i = 0; i < rs.n; i++)
		if (rs.v[i].kind == KIND_GROUP_TAG)
			keep_row(&tags, &rs.v[i]);
	assert_int_equal(apply_rows(&B, &tags, 0, tags.n), 1);
	assert_int_equal(sql_int(&B, "SELECT deleted FROM service_group WHERE name = 'g2'"), 1);
	apply_rows(&B, &rs, 0, rs.n);
	rows_free(&rs);
	rows_free(&tags);
	assert_int_equal(sql_int(&B, "SELECT count(*) FROM service_group WHERE name = 'g2'"), 1);
	assert_int_equal(sql_int(&B, "SELECT deleted FROM service_group WHERE name = 'g2'"), 0);
	assert_int_equal(sql_int(&B,
	                         "SELECT count(*) FROM service_group_tag t JOIN service_group "
	                         "g ON g.id = t.group_id WHERE g.name = 'g2' AND t.deleted = 0"),
	                 1);
	/* two rules of one name, made apart: the later stays on both */
	rule_make(&A, "ra", "same");
	rule_make(&B, "rb", "same");
	sync_all(&A, &B);
	sync_all(&B, &A);
	sync_all(&A, &B);
	for (node_t *n = &A; n; n = n == &A ? &B : NULL) {
		assert_int_equal(sql_int(n, "SELECT count(*) FROM service_route_rule WHERE name = "
		                            "'same' AND deleted = 0"),
		                 1);
		assert_int_equal(sql_int(n, "SELECT count(*) FROM service_route_rule WHERE name = "
		                            "'same' AND deleted = 0 AND route_id = 'rb'"),
		                 1);
	}
	assert_same_digests();
	/* a group removed on A while B tags it: the tag stays, the group's
	 * tombstone too (collections keep what is named) */
	t = rtx(&A);
	if (mgmt_group_delete(t, group_here(&A, "g2"), err, sizeof(err)) < 0)
		fail_msg("delete: %s", err);
	fixture_commit(t);
	t = rtx(&B);
	if (mgmt_tag_put(t, group_here(&B, "g2"), "late", "yes", err, sizeof(err)) < 0)
		fail_msg("late tag: %s", err);
	fixture_commit(t);
	sync_all(&A, &B);
	sync_all(&B, &A);
	assert_same_digests();
	for (node_t *n = &A; n; n = n == &A ? &B : NULL) {
		assert_int_equal(group_here(n, "g2"), -ENOENT);
		assert_int_equal(sql_int(n, "SELECT count(*) FROM service_group_tag WHERE tag = "
		                            "'late' AND deleted = 0"),
		                 1);
		uint64_t sid, gen;
		assert_int_equal(mgmt_repl_head(n->r, &sid, &gen), 0);
		assert_int_equal(mgmt_repl_gc(n->r, gen, clock_wall_ms() + 1000, &removed), 0);
		assert_int_equal(sql_int(n, "SELECT count(*) FROM service_group WHERE name = 'g2'"),
		                 1);
		char msg[512];
		assert_int_equal(mgmt_check(&n->cfg, n->shm, msg, sizeof(msg)), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kinds),
	    cmocka_unit_test_setup_teardown(test_operation_reaches_peer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_last_writer_wins_both_orders, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tombstone_wins_over_late_record, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_audit_once_and_own_sequence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hlc_merge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_rows_refused_one_by_one, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_walk_resumes_exactly, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bucket_walk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cleanup_everywhere, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cursor_in_the_batch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_gc, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sessions_between_nodes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_first_admin_and_secret_converge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pruned_rows_not_taken, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_routing_between_nodes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_routing_conflicts_converge, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

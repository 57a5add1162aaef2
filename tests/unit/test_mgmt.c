/*
 * test_mgmt.c - the management module (mgmt/): the store (migrations,
 * transactions, a full disk), the model (keys, case, tombstones), the audit
 * trail (records, filters, stats, cleanup, times) and the projection (the
 * down filter, notices in the change log, capacity, repair, check), users,
 * sessions and the login history (the last admin, revocation seen by every
 * process's cache, the lockout), against a real region and a real SQLite
 * file in a temporary directory.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "artemis/codec.h"
#include "artemis/config.h"
#include "artemis/mgmt.h"
#include "artemis/shm.h"
#include "../../mgmt/mgmt_int.h"
#include "../../worker/versioned.h"
#include "mgmt_fixture.h"
#include "artemis/auth.h"
#include "artemis/clock.h"

static char region_name[64];
static char dir[128];
static config_t cfg;
static shm_t *shm;
static mgmt_t *mg;

static void sql(const char *stmt)
{
	char path[256];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/%s", dir, MGMT_DB_FILE);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	char *err = NULL;
	if (sqlite3_exec(db, stmt, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", stmt, err);
	sqlite3_close(db);
}

static long long sql_int(const char *stmt)
{
	char path[256];
	sqlite3 *db;
	sqlite3_stmt *q;
	snprintf(path, sizeof(path), "%s/%s", dir, MGMT_DB_FILE);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, stmt, -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	long long v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

/* A node's pieces: config with a temp data_dir, a fresh region with a
 * management section, the store booted, a worker's handle. */
static void setup_node(uint32_t max_ops, uint32_t max_pages)
{
	shm_params_t p;
	char err[512];
	snprintf(dir, sizeof(dir), "/tmp/artemis-unit-mgmt-%d", (int)getpid());
	snprintf(region_name, sizeof(region_name), "/artemis-unit-mgmt-%d", (int)getpid());
	config_defaults(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "unit");
	snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dir);
	cfg.mgmt_max_operations = max_ops;
	cfg.mgmt_store_max_pages = max_pages;
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s", dir, dir);
	assert_int_equal(system(cmd), 0);
	shm_params_default(&p, region_name);
	p.max_instances = 1000;
	p.changelog_size = 1024;
	p.mgmt_bytes = mgmt_section_bytes(max_ops);
	assert_int_equal(shm_open_region(&p, SHM_CREATE_FRESH, &shm, NULL), 0);
	snprintf(cfg.initial_admin_password, sizeof(cfg.initial_admin_password), "unit-admin-pw");
	cfg.password_memlimit_kib = 8192; /* the cheapest Argon2id: tests hash often */
	cfg.password_opslimit = 1;
	if (mgmt_boot(&cfg, shm, err, sizeof(err)) < 0)
		fail_msg("mgmt_boot: %s", err);
	/* The tests below count the records of their own writes only. */
	sql("DELETE FROM audit WHERE operation_type = 'user'");
	if (mgmt_open(&cfg, shm, &mg, err, sizeof(err)) < 0)
		fail_msg("mgmt_open: %s", err);
}

static void teardown_node(void)
{
	char cmd[300];
	mgmt_close(mg);
	mg = NULL;
	shm_detach(shm);
	shm_destroy(region_name);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void reg(const char *svc, const char *id, const char *ip, const char *zone)
{
	fixture_register(shm, svc, id, ip, zone);
}

/* Instances discovery lists for a service (the filtered read). */
static int listed(const char *svc)
{
	buf_t out = {0};
	shm_service_info_t info;
	int rc = mgmt_service_read(shm, (shm_str_t){svc, strlen(svc)}, &out, &info);
	buf_free(&out);
	return rc == -ENOENT ? 0 : rc < 0 ? rc : (int)info.count;
}

static mgmt_change_t change(mgmt_kind_t kind, const char *a, const char *b, const char *c,
                            bool insert)
{
	mgmt_change_t ch;
	memset(&ch, 0, sizeof(ch));
	ch.key.kind = kind;
	ch.insert = insert;
	snprintf(ch.key.region, sizeof(ch.key.region), "us-east");
	snprintf(ch.key.operation, sizeof(ch.key.operation), "pullout");
	if (kind == MGMT_INSTANCE) {
		snprintf(ch.key.service, sizeof(ch.key.service), "%s", a);
		snprintf(ch.key.instance, sizeof(ch.key.instance), "%s", b);
	} else if (kind == MGMT_SERVER) {
		snprintf(ch.key.server, sizeof(ch.key.server), "%s", a);
	} else {
		snprintf(ch.key.zone, sizeof(ch.key.zone), "%s", a);
		snprintf(ch.key.service, sizeof(ch.key.service), "%s", b ? b : "");
	}
	(void)c;
	return ch;
}

static const mgmt_ctx_t ctx = {.operator_id = "alice", .complete = -1, .surface = "java"};

static void apply_ok(mgmt_change_t ch)
{
	char err[512];
	if (mgmt_apply(mg, &ch, 1, &ctx, err, sizeof(err)) < 0)
		fail_msg("mgmt_apply: %s", err);
}

static void check_ok(void)
{
	char msg[512];
	if (mgmt_check(&cfg, shm, msg, sizeof(msg)) < 0)
		fail_msg("mgmt_check: %s", msg);
}

/* The change log from cursor on: counts of management notices by type. */
static void notices(shm_cursor_t *cur, int *del, int *neu, int *reload)
{
	shm_change_t ch;
	buf_t json = {0};
	*del = *neu = *reload = 0;
	while (shm_changes_next(shm, cur, &ch, &json) == 0) {
		if (ch.origin != SHM_ORIGIN_MGMT)
			continue;
		*del += ch.type == SHM_CHANGE_DELETE;
		*neu += ch.type == SHM_CHANGE_NEW;
		*reload += ch.type == SHM_CHANGE_RELOAD;
	}
	buf_free(&json);
}

static void test_store_created_and_migrated(void **state)
{
	char err[512];
	(void)state;
	setup_node(1000, 0);
	assert_int_equal(sql_int("PRAGMA user_version"), 4);
	/* The boot made the JWT secret and the first admin: one write. */
	assert_int_equal(sql_int("SELECT value FROM meta WHERE key = 'generation'"), 1);
	assert_int_equal(sql_int("SELECT COUNT(*) FROM users WHERE role = 'admin'"), 1);
	assert_int_equal(sql_int("SELECT COUNT(*) FROM secrets WHERE name = 'jwt'"), 1);
	/* A second boot (a restart) keeps the store and its data. */
	apply_ok(change(MGMT_INSTANCE, "svc", "i1", NULL, true));
	assert_int_equal(mgmt_boot(&cfg, shm, err, sizeof(err)), 0);
	assert_int_equal(sql_int("SELECT COUNT(*) FROM instance WHERE deleted = 0"), 1);
	check_ok();
	/* A store from a newer binary is refused with the path and the reason. */
	sql("PRAGMA user_version = 99");
	assert_int_equal(mgmt_boot(&cfg, shm, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, MGMT_DB_FILE));
	assert_non_null(strstr(err, "schema version 99"));
	sql("PRAGMA user_version = 4");
	teardown_node();
}

static void test_unopenable_store_names_path_and_reason(void **state)
{
	char err[512];
	(void)state;
	setup_node(1000, 0);
	config_t bad = cfg;
	snprintf(bad.data_dir, sizeof(bad.data_dir), "%s/missing/dir", dir);
	assert_true(mgmt_boot(&bad, shm, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "missing/dir/artemis.db"));
	/* Not a database at all. */
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/other && echo not-sqlite-at-all > %s/other/%s", dir,
	         dir, MGMT_DB_FILE);
	assert_int_equal(system(cmd), 0);
	snprintf(bad.data_dir, sizeof(bad.data_dir), "%s/other", dir);
	assert_true(mgmt_boot(&bad, shm, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "other/artemis.db"));
	assert_non_null(strstr(err, "not a database"));
	teardown_node();
}

static void test_instance_pull_out_and_in(void **state)
{
	shm_cursor_t cur;
	int del, neu, rel;
	(void)state;
	setup_node(1000, 0);
	reg("svc", "i1", "10.0.0.1", "zone-1");
	reg("svc", "i2", "10.0.0.2", "zone-1");
	assert_int_equal(listed("svc"), 2);
	shm_cursor_init(shm, &cur);
	uint64_t gen = mgmt_generation(shm);
	/* Case-insensitive key, as the InstanceKey. */
	apply_ok(change(MGMT_INSTANCE, "SVC", "I1", NULL, true));
	assert_true(mgmt_generation(shm) > gen);
	assert_int_equal(listed("svc"), 1);
	notices(&cur, &del, &neu, &rel);
	assert_int_equal(del, 1);
	assert_int_equal(neu + rel, 0);
	/* A second operation on the same key; removing one keeps it down. */
	mgmt_change_t other = change(MGMT_INSTANCE, "svc", "i1", NULL, true);
	snprintf(other.key.operation, sizeof(other.key.operation), "maintenance");
	apply_ok(other);
	other.insert = false;
	apply_ok(change(MGMT_INSTANCE, "svc", "i1", NULL, false));
	assert_int_equal(listed("svc"), 1);
	apply_ok(other);
	assert_int_equal(listed("svc"), 2);
	notices(&cur, &del, &neu, &rel);
	assert_int_equal(del, 0);
	assert_int_equal(neu, 1);
	/* Rows stay as tombstones; the audit has one record per write. */
	assert_int_equal(sql_int("SELECT COUNT(*) FROM instance"), 2);
	assert_int_equal(sql_int("SELECT COUNT(*) FROM instance WHERE deleted = 0"), 0);
	assert_int_equal(sql_int("SELECT COUNT(*) FROM audit"), 4);
	assert_int_equal(sql_int("SELECT COUNT(*) FROM instance_log"), 4);
	assert_int_equal(sql_int("SELECT COUNT(DISTINCT origin_seq) FROM audit"), 4);
	/* An instance operated down before it registers is down when it comes. */
	apply_ok(change(MGMT_INSTANCE, "svc", "late", NULL, true));
	reg("svc", "late", "10.0.0.9", "zone-1");
	assert_int_equal(listed("svc"), 2);
	check_ok();
	teardown_node();
}

static void test_server_and_zone_operations(void **state)
{
	shm_cursor_t cur;
	int del, neu, rel;
	(void)state;
	setup_node(1000, 0);
	reg("a", "a1", "10.0.0.1", "zone-1");
	reg("a", "a2", "10.0.0.2", "zone-2");
	reg("b", "b1", "10.0.0.1", "zone-1");
	reg("b", "b2", "10.0.0.3", "zone-1");
	shm_cursor_init(shm, &cur);
	apply_ok(change(MGMT_SERVER, "10.0.0.1", NULL, NULL, true));
	assert_int_equal(listed("a"), 1);
	assert_int_equal(listed("b"), 1);
	notices(&cur, &del, &neu, &rel);
	assert_int_equal(del, 2);
	apply_ok(change(MGMT_SERVER, "10.0.0.1", NULL, NULL, false));
	notices(&cur, &del, &neu, &rel);
	assert_int_equal(neu, 2);
	/* A zone of every service: a reload per affected service. */
	apply_ok(change(MGMT_ZONE, "ZONE-1", NULL, NULL, true));
	assert_int_equal(listed("a"), 1);
	assert_int_equal(listed("b"), 0);
	notices(&cur, &del, &neu, &rel);
	assert_int_equal(rel, 2);
	assert_int_equal(del + neu, 0);
	apply_ok(change(MGMT_ZONE, "zone-1", NULL, NULL, false));
	/* A zone of one service. */
	apply_ok(change(MGMT_ZONE, "zone-1", "b", NULL, true));
	assert_int_equal(listed("a"), 2);
	assert_int_equal(listed("b"), 0);
	notices(&cur, &del, &neu, &rel);
	assert_int_equal(rel, 3); /* the pull-in of every service (a, b), then b */
	apply_ok(change(MGMT_ZONE, "zone-1", "b", NULL, false));
	assert_int_equal(listed("b"), 2);
	check_ok();
	teardown_node();
}

typedef struct {
	int n;
	char last[600];
} count_t;

static int count_op(void *c, const mgmt_op_t *op)
{
	count_t *k = c;
	k->n++;
	snprintf(k->last, sizeof(k->last), "%s/%s", op->key.instance, op->key.operation);
	return 0;
}

static int count_rec(void *c, const mgmt_audit_t *r)
{
	count_t *k = c;
	k->n++;
	snprintf(k->last, sizeof(k->last), "%s:%s", r->type, r->action);
	return 0;
}

static void test_listing_and_audit_queries(void **state)
{
	count_t c = {0};
	char err[512];
	(void)state;
	setup_node(1000, 0);
	apply_ok(change(MGMT_INSTANCE, "svc", "i1", NULL, true));
	apply_ok(change(MGMT_INSTANCE, "svc", "i2", NULL, true));
	apply_ok(change(MGMT_SERVER, "10.0.0.7", NULL, NULL, true));
	apply_ok(change(MGMT_INSTANCE, "svc", "i2", NULL, false));
	mgmt_op_filter_t f = {.kind = MGMT_INSTANCE};
	assert_int_equal(mgmt_ops(mg, &f, count_op, &c), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.last, "i1/pullout");
	/* Java's all-*-operations region filter is exact case. */
	f.region = "US-EAST";
	f.region_exact = true;
	c.n = 0;
	assert_int_equal(mgmt_ops(mg, &f, count_op, &c), 0);
	assert_int_equal(c.n, 0);
	f.region_exact = false;
	assert_int_equal(mgmt_ops(mg, &f, count_op, &c), 0);
	assert_int_equal(c.n, 1);
	/* Audit: newest first, filters, limit/offset. */
	mgmt_audit_filter_t af = {.complete = -1};
	c.n = 0;
	assert_int_equal(mgmt_audit_query(mg, &af, count_rec, &c), 0);
	assert_int_equal(c.n, 4);
	af.limit = 1;
	c.n = 0;
	assert_int_equal(mgmt_audit_query(mg, &af, count_rec, &c), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.last, "instance:delete");
	af.limit = 0;
	af.type = "server";
	c.n = 0;
	assert_int_equal(mgmt_audit_query(mg, &af, count_rec, &c), 0);
	assert_int_equal(c.n, 1);
	af.type = NULL;
	af.from_ms = 1;
	af.to_ms = 2;
	c.n = 0;
	assert_int_equal(mgmt_audit_query(mg, &af, count_rec, &c), 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(mgmt_audit_get(mg, 2, count_rec, &c), 0);
	assert_int_equal(mgmt_audit_get(mg, 999, count_rec, &c), -ENOENT);
	buf_t stats = {0};
	memset(&af, 0, sizeof(af));
	af.complete = -1;
	assert_int_equal(mgmt_audit_stats(mg, &af, &stats), 0);
	assert_non_null(strstr(stats.data, "\"total\":4"));
	assert_non_null(strstr(stats.data, "\"instance\":3"));
	buf_free(&stats);
	/* Cleanup deletes what is older and records itself. */
	uint64_t deleted = 0;
	assert_int_equal(
	    mgmt_audit_cleanup(mg, UINT64_C(4000000000000), &ctx, &deleted, err, sizeof(err)), 0);
	assert_int_equal(deleted, 4);
	assert_int_equal(sql_int("SELECT COUNT(*) FROM audit WHERE operation_type = 'audit'"), 1);
	check_ok();
	teardown_node();
}

static void test_bad_input_writes_nothing(void **state)
{
	char err[512];
	(void)state;
	setup_node(1000, 0);
	mgmt_change_t ch = change(MGMT_INSTANCE, "svc", " ", NULL, true);
	assert_int_equal(mgmt_apply(mg, &ch, 1, &ctx, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "instanceId"));
	ch = change(MGMT_INSTANCE, "svc", "i1", NULL, true);
	mgmt_ctx_t anon = ctx;
	anon.operator_id = "";
	assert_int_equal(mgmt_apply(mg, &ch, 1, &anon, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "operatorId"));
	ch.key.operation[0] = '\0';
	assert_int_equal(mgmt_apply(mg, &ch, 1, &ctx, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "operation"));
	char field[400];
	memset(field, 'x', sizeof(field));
	assert_int_equal(mgmt_field_set(ch.key.service, sizeof(ch.key.service), field, 300),
	                 -ENAMETOOLONG);
	assert_int_equal(mgmt_field_set(ch.key.service, sizeof(ch.key.service), "  a b ", 6), 0);
	assert_string_equal(ch.key.service, "a b");
	assert_int_equal(sql_int("SELECT COUNT(*) FROM audit"), 0);
	teardown_node();
}

static void test_capacity_refuses_before_commit(void **state)
{
	char err[512];
	(void)state;
	setup_node(16, 0);
	int ok = 0, rc = 0;
	for (int i = 0; i < 100 && rc == 0; i++) {
		char id[16];
		snprintf(id, sizeof(id), "i%d", i);
		mgmt_change_t ch = change(MGMT_INSTANCE, "svc", id, NULL, true);
		rc = mgmt_apply(mg, &ch, 1, &ctx, err, sizeof(err));
		ok += rc == 0;
	}
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(ok, 16);
	assert_int_equal(sql_int("SELECT COUNT(*) FROM instance"), 16);
	assert_int_equal(sql_int("SELECT COUNT(*) FROM audit"), 16);
	/* Pulling one in makes room again. */
	apply_ok(change(MGMT_INSTANCE, "svc", "i0", NULL, false));
	apply_ok(change(MGMT_INSTANCE, "svc", "new", NULL, true));
	check_ok();
	teardown_node();
}

static void test_full_store_applies_nothing(void **state)
{
	char err[512];
	(void)state;
	setup_node(1000, 40); /* pages: the schema takes most of them */
	reg("svc", "i1", "10.0.0.1", "zone-1");
	int rc = 0, ok = 0;
	for (int i = 0; i < 5000 && rc == 0; i++) {
		char id[48];
		snprintf(id, sizeof(id), "instance-with-a-long-name-%d", i);
		mgmt_change_t ch = change(MGMT_INSTANCE, "svc", id, NULL, true);
		rc = mgmt_apply(mg, &ch, 1, &ctx, err, sizeof(err));
		ok += rc == 0;
	}
	assert_int_equal(rc, -EIO);
	assert_non_null(strstr(err, "full"));
	/* The failed write left neither its row nor its record. */
	assert_int_equal(sql_int("SELECT COUNT(*) FROM instance"), ok);
	assert_int_equal(sql_int("SELECT COUNT(*) FROM audit"), ok);
	/* Reads still work; the projection still agrees. */
	assert_int_equal(listed("svc"), 1);
	check_ok();
	teardown_node();
}

/* A writer dies holding the projection's lock: the next locker (here the
 * master's repair) rebuilds from the store. */
static void test_repair_after_a_dead_writer(void **state)
{
	char err[512];
	(void)state;
	setup_node(1000, 0);
	reg("svc", "i1", "10.0.0.1", "zone-1");
	/* Behind the projection's back: the store has an operation the
	 * projection does not (as after a death between COMMIT and publish). */
	sql("INSERT INTO instance (region_id, service_id, instance_id, operation, operator_id, "
	    "create_time, update_time, hlc, origin_node, seq) VALUES ('us-east', 'svc', 'i1', "
	    "'pullout', 'x', 1, 1, 1, 'unit', 1); UPDATE meta SET value = 1 WHERE key = "
	    "'generation'");
	assert_int_equal(listed("svc"), 1);
	char msg[512];
	assert_int_equal(mgmt_check(&cfg, shm, msg, sizeof(msg)), -EIO);
	assert_non_null(strstr(msg, "differ"));
	/* No dead writer: the master's repair has nothing to do. */
	assert_int_equal(mgmt_repair(&cfg, shm, err, sizeof(err)), 0);
	assert_int_equal(listed("svc"), 1);
	pid_t pid = fork();
	if (pid == 0) {
		proj_lock(proj_of(shm), 1000);
		raise(SIGKILL);
		_exit(2);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	/* The master's repair after reaping it rebuilds from the store. */
	assert_int_equal(mgmt_repair(&cfg, shm, err, sizeof(err)), 1);
	assert_int_equal(listed("svc"), 0);
	check_ok();
	assert_int_equal(mgmt_repair(&cfg, shm, err, sizeof(err)), 0);
	teardown_node();
}

/* services.json: a management change starts a new version at once (the
 * same in every worker), without the instance; the delta from the version
 * before names it deleted. */
static void test_services_json_versions_move_with_a_change(void **state)
{
	buf_t out = {0}, delta = {0};
	uint64_t v1, v2, newest, now = clock_wall_ms(), started = now - 3600 * 1000;
	(void)state;
	setup_node(1000, 0);
	versioned_reset();
	reg("svc", "i1", "10.0.0.1", "zone-1");
	reg("svc", "i2", "10.0.0.2", "zone-1");
	assert_int_equal(versioned_services(shm, now, started, &out, &v1), 0);
	assert_non_null(strstr(out.data, "\"i1\""));
	apply_ok(change(MGMT_INSTANCE, "svc", "i1", NULL, true));
	buf_reset(&out);
	assert_int_equal(versioned_services(shm, now, started, &out, &v2), 0);
	assert_true(v2 > v1);
	assert_int_equal(v2, mgmt_stamp_ms(shm));
	assert_null(strstr(out.data, "\"i1\""));
	assert_non_null(strstr(out.data, "\"i2\""));
	assert_int_equal(versioned_delta(shm, now, started, v1, &delta, &newest), 0);
	assert_int_equal(newest, v2);
	assert_non_null(strstr(delta.data, "\"changeType\":\"delete\""));
	assert_non_null(strstr(delta.data, "\"i1\""));
	/* The Rust services.json lists it still. */
	buf_reset(&out);
	assert_int_equal(versioned_services_all(shm, &out), 0);
	assert_non_null(strstr(out.data, "\"i1\""));
	buf_free(&out);
	buf_free(&delta);
	versioned_reset();
	teardown_node();
}

static int kill_at;

static void die_at(int at)
{
	if (at == kill_at)
		raise(SIGKILL);
}

/* A writer killed at each point of a write, three times at each (so a
 * table left half staged is staged again later): the master's repair
 * makes the projection agree with the store, readable, every time. */
static void test_killed_at_each_point_of_a_write(void **state)
{
	char err[512];
	(void)state;
	setup_node(1000, 0);
	reg("svc", "a", "10.0.0.1", "zone-1");
	reg("svc", "b", "10.0.0.2", "zone-1");
	int step = 0;
	for (int at = 0; at < PROJ_AT_COUNT; at++) {
		for (int round = 0; round < 3; round++, step++) {
			pid_t pid = fork();
			if (pid == 0) {
				mgmt_t *child;
				kill_at = at;
				proj_failpoint = die_at;
				mgmt_change_t ch =
				    change(MGMT_INSTANCE, "svc", "a", NULL, step % 2 == 0);
				if (mgmt_open(&cfg, shm, &child, err, sizeof(err)) == 0)
					mgmt_apply(child, &ch, 1, &ctx, err, sizeof(err));
				_exit(3); /* the failpoint did not fire */
			}
			int st;
			assert_int_equal(waitpid(pid, &st, 0), pid);
			assert_true(WIFSIGNALED(st));
			assert_int_equal(mgmt_repair(&cfg, shm, err, sizeof(err)), 1);
			check_ok();
			/* The write committed: the repair put it in force. */
			assert_int_equal(listed("svc"), step % 2 == 0 ? 1 : 2);
			apply_ok(change(MGMT_SERVER, "10.0.0.2", NULL, NULL, true));
			assert_int_equal(listed("svc"), step % 2 == 0 ? 0 : 1);
			apply_ok(change(MGMT_SERVER, "10.0.0.2", NULL, NULL, false));
			check_ok();
		}
	}
	teardown_node();
}

static void test_times(void **state)
{
	uint64_t ms;
	char out[40];
	(void)state;
	assert_int_equal(mgmt_parse_time("1714557600", &ms), 0);
	assert_int_equal(ms, UINT64_C(1714557600000));
	assert_int_equal(mgmt_parse_time("1714557600123", &ms), 0);
	assert_int_equal(ms, UINT64_C(1714557600123));
	assert_int_equal(mgmt_parse_time("2024-05-01T10:00:00Z", &ms), 0);
	assert_int_equal(ms, UINT64_C(1714557600000));
	assert_int_equal(mgmt_parse_time("2024-05-01T12:00:00.5+02:00", &ms), 0);
	assert_int_equal(ms, UINT64_C(1714557600500));
	assert_int_equal(mgmt_parse_time("2024-05-01", &ms), 0);
	assert_int_equal(ms, UINT64_C(1714521600000));
	assert_int_equal(mgmt_parse_time("2024-13-01", &ms), -EINVAL);
	assert_int_equal(mgmt_parse_time("yesterday", &ms), -EINVAL);
	assert_int_equal(mgmt_parse_time("", &ms), -EINVAL);
	mgmt_format_time(UINT64_C(1714557600500), out, sizeof(out));
	assert_string_equal(out, "2024-05-01T10:00:00.500Z");
}

/* ---- Users, sessions, the login history ------------------------------------------ */

static int count_logins(void *arg, const mgmt_login_t *l)
{
	int *n = arg;
	assert_non_null(l->result);
	(*n)++;
	return 0;
}

static mgmt_user_t new_user(const char *name, mgmt_role_t role)
{
	mgmt_user_t u = {.role = role, .active = true};
	auth_cost_t cost = {1, 8192 * 1024};
	snprintf(u.username, sizeof(u.username), "%s", name);
	assert_int_equal(auth_password_hash("password1", 9, &cost, u.hash), 0);
	return u;
}

static mgmt_session_t open_session(mgmt_t *m, const char *name)
{
	char err[256];
	mgmt_session_t s = {0};
	snprintf(s.username, sizeof(s.username), "%s", name);
	snprintf(s.ip, sizeof(s.ip), "10.0.0.9");
	s.expire_ms = clock_wall_ms() + 60000;
	if (mgmt_session_open(m, &s, NULL, err, sizeof(err)) != 0)
		fail_msg("session: %s", err);
	assert_int_equal(strlen(s.sid), MGMT_SID_LEN);
	return s;
}

static void test_users_and_the_last_admin(void **state)
{
	char err[256];
	mgmt_user_t admin, u, got;
	(void)state;
	setup_node(1000, 0);
	assert_int_equal(mgmt_user_find(mg, "ADMIN", &admin), 0); /* names: any case */
	assert_int_equal(auth_password_verify(admin.hash, "unit-admin-pw", 13), 0);
	u = new_user("bob", MGMT_ROLE_OPERATOR);
	assert_int_equal(mgmt_user_create(mg, &u, &ctx, err, sizeof(err)), 0);
	assert_true(u.id > 0 && u.id != admin.id);
	got = new_user("Bob", MGMT_ROLE_VIEWER);
	assert_int_equal(mgmt_user_create(mg, &got, &ctx, err, sizeof(err)), -EEXIST);
	got = new_user("-x", MGMT_ROLE_VIEWER);
	assert_int_equal(mgmt_user_create(mg, &got, &ctx, err, sizeof(err)), -EINVAL);
	/* The last active admin can be neither demoted, disabled nor removed. */
	mgmt_user_change_t demote = {.role = MGMT_ROLE_VIEWER, .active = -1};
	mgmt_user_change_t disable = {.role = -1, .active = 0};
	assert_int_equal(mgmt_user_update(mg, admin.id, &demote, &ctx, NULL, err, sizeof(err)),
	                 -EMLINK);
	assert_int_equal(mgmt_user_update(mg, admin.id, &disable, &ctx, NULL, err, sizeof(err)),
	                 -EMLINK);
	assert_int_equal(mgmt_user_delete(mg, admin.id, &ctx, err, sizeof(err)), -EMLINK);
	/* With a second admin it can. */
	mgmt_user_change_t promote = {.role = MGMT_ROLE_ADMIN, .active = -1};
	assert_int_equal(mgmt_user_update(mg, u.id, &promote, &ctx, &got, err, sizeof(err)), 0);
	assert_int_equal(got.role, MGMT_ROLE_ADMIN);
	assert_int_equal(mgmt_user_update(mg, admin.id, &demote, &ctx, NULL, err, sizeof(err)), 0);
	assert_int_equal(mgmt_user_delete(mg, u.id, &ctx, err, sizeof(err)), -EMLINK);
	assert_int_equal(mgmt_user_delete(mg, admin.id, &ctx, err, sizeof(err)), 0);
	assert_int_equal(mgmt_user_get(mg, admin.id, &got), -ENOENT);
	assert_int_equal(mgmt_user_delete(mg, admin.id, &ctx, err, sizeof(err)), -ENOENT);
	/* A removed name is free again (its tombstone is revived). */
	got = new_user("admin", MGMT_ROLE_VIEWER);
	assert_int_equal(mgmt_user_create(mg, &got, &ctx, err, sizeof(err)), 0);
	/* Every change has its record; none holds a hash. */
	assert_int_equal(sql_int("SELECT COUNT(*) FROM audit WHERE operation_type = 'user'"), 5);
	assert_int_equal(sql_int("SELECT COUNT(*) FROM audit WHERE details LIKE '%argon%'"), 0);
	check_ok();
	teardown_node();
}

static void test_sessions_end_on_every_process_at_once(void **state)
{
	char err[256];
	mgmt_t *other = NULL;
	mgmt_principal_t p;
	mgmt_user_t u;
	(void)state;
	setup_node(1000, 0);
	/* A second handle on the same store and region: another worker. */
	assert_int_equal(mgmt_open(&cfg, shm, &other, err, sizeof(err)), 0);
	u = new_user("carol", MGMT_ROLE_OPERATOR);
	assert_int_equal(mgmt_user_create(mg, &u, &ctx, err, sizeof(err)), 0);
	mgmt_session_t s1 = open_session(mg, "carol"), s2 = open_session(mg, "carol");
	uint64_t now = clock_wall_ms();
	assert_int_equal(mgmt_session_check(other, s1.sid, "carol", now, &p), 0);
	assert_int_equal(p.role, MGMT_ROLE_OPERATOR);
	assert_int_equal(mgmt_session_check(other, s1.sid, "dave", now, &p), -EACCES);
	assert_int_equal(mgmt_session_check(other, s1.sid, "carol", s1.expire_ms, &p), -EACCES);
	/* Cached now: the row's removal behind its back is not seen... */
	sql("UPDATE sessions SET revoked = 1");
	assert_int_equal(mgmt_session_check(other, s1.sid, "carol", now, &p), 0);
	sql("UPDATE sessions SET revoked = 0");
	/* ...but a revocation through the store is, by every handle. */
	assert_int_equal(mgmt_session_revoke(mg, s1.sid, NULL, err, sizeof(err)), 0);
	assert_int_equal(mgmt_session_check(other, s1.sid, "carol", now, &p), -EACCES);
	assert_int_equal(mgmt_session_check(mg, s1.sid, "carol", now, &p), -EACCES);
	assert_int_equal(mgmt_session_check(other, s2.sid, "carol", now, &p), 0);
	/* A demotion applies to the live session at once. */
	mgmt_user_change_t demote = {.role = MGMT_ROLE_VIEWER, .active = -1};
	assert_int_equal(mgmt_user_update(mg, u.id, &demote, &ctx, NULL, err, sizeof(err)), 0);
	assert_int_equal(mgmt_session_check(other, s2.sid, "carol", now, &p), 0);
	assert_int_equal(p.role, MGMT_ROLE_VIEWER);
	/* A refresh replaces a session; the old one ends. */
	mgmt_session_t s3 = {0};
	snprintf(s3.username, sizeof(s3.username), "carol");
	s3.expire_ms = now + 60000;
	assert_int_equal(mgmt_session_open(mg, &s3, s2.sid, err, sizeof(err)), 0);
	assert_int_equal(mgmt_session_check(other, s2.sid, "carol", now, &p), -EACCES);
	assert_int_equal(mgmt_session_check(other, s3.sid, "carol", now, &p), 0);
	assert_int_equal(mgmt_session_open(mg, &s3, s2.sid, err, sizeof(err)), -EACCES);
	/* A new password ends the others' sessions but the one kept. */
	mgmt_session_t s4 = open_session(mg, "carol");
	char hash[AUTH_HASH_MAX];
	auth_cost_t cost = {1, 8192 * 1024};
	assert_int_equal(auth_password_hash("another-pw", 10, &cost, hash), 0);
	mgmt_user_change_t pw = {.role = -1, .active = -1, .hash = hash, .keep_sid = s4.sid};
	assert_int_equal(mgmt_user_update(mg, u.id, &pw, &ctx, NULL, err, sizeof(err)), 0);
	assert_int_equal(mgmt_session_check(other, s3.sid, "carol", now, &p), -EACCES);
	assert_int_equal(mgmt_session_check(other, s4.sid, "carol", now, &p), 0);
	/* Disabling the user, or removing it, ends every session. */
	mgmt_user_change_t off = {.role = -1, .active = 0};
	assert_int_equal(mgmt_user_update(mg, u.id, &off, &ctx, NULL, err, sizeof(err)), 0);
	assert_int_equal(mgmt_session_check(other, s4.sid, "carol", now, &p), -EACCES);
	mgmt_session_t got;
	assert_int_equal(mgmt_session_get(mg, s4.sid, &got), 0);
	assert_true(got.revoked);
	assert_int_equal(
	    mgmt_session_revoke(mg, "00000000000000000000000000000000", NULL, err, sizeof(err)),
	    -ENOENT);
	assert_int_equal(mgmt_session_check(other, "short", "carol", now, &p), -EACCES);
	mgmt_close(other);
	check_ok();
	teardown_node();
}

static void test_login_lockout(void **state)
{
	char err[256];
	uint32_t wait = 0;
	(void)state;
	setup_node(1000, 0);
	cfg.login_max_failures = 3;
	cfg.login_max_failures_ip = 5;
	cfg.login_lockout_s = 10;
	cfg.login_lockout_max_s = 25;
	uint64_t now = clock_wall_ms();
	for (int i = 0; i < 2; i++)
		assert_int_equal(mgmt_login_record(mg, "eve", "10.0.0.1", "ua", MGMT_LOGIN_FAILURE,
		                                   "wrong password", err, sizeof(err)),
		                 0);
	assert_int_equal(mgmt_login_locked(mg, "eve", "10.0.0.2", now, &wait), 0);
	assert_int_equal(mgmt_login_record(mg, "eve", "10.0.0.1", "ua", MGMT_LOGIN_FAILURE,
	                                   "wrong password", err, sizeof(err)),
	                 0);
	/* Three failures: 10 s for the name, from any address. */
	assert_int_equal(mgmt_login_locked(mg, "EVE", "10.0.0.2", now, &wait), 1);
	assert_true(wait >= 9 && wait <= 11);
	assert_int_equal(mgmt_login_locked(mg, "eve", "10.0.0.2", now + 11000, &wait), 0);
	/* A fourth doubles it; the cap holds. */
	assert_int_equal(mgmt_login_record(mg, "eve", "10.0.0.1", "ua", MGMT_LOGIN_FAILURE,
	                                   "wrong password", err, sizeof(err)),
	                 0);
	assert_int_equal(mgmt_login_locked(mg, "eve", "10.0.0.2", now + 11000, &wait), 1);
	assert_true(wait >= 8 && wait <= 21);
	for (int i = 0; i < 3; i++)
		mgmt_login_record(mg, "eve", "10.0.0.1", "ua", MGMT_LOGIN_FAILURE, "x", err,
		                  sizeof(err));
	assert_int_equal(mgmt_login_locked(mg, "eve", "10.0.0.2", now, &wait), 1);
	assert_true(wait <= 26);
	/* The address is locked for other names too (5 failures from it). */
	assert_int_equal(mgmt_login_locked(mg, "frank", "10.0.0.1", now, &wait), 1);
	assert_int_equal(mgmt_login_locked(mg, "frank", "10.0.0.3", now, &wait), 0);
	/* Refused attempts are recorded but do not count. */
	assert_int_equal(mgmt_login_record(mg, "frank", "10.0.0.3", "ua", MGMT_LOGIN_LOCKED,
	                                   "locked out", err, sizeof(err)),
	                 0);
	assert_int_equal(mgmt_login_locked(mg, "frank", "10.0.0.3", now, &wait), 0);
	/* A success clears the name's failures (not the address's). */
	mgmt_user_t u = new_user("eve", MGMT_ROLE_VIEWER);
	assert_int_equal(mgmt_user_create(mg, &u, &ctx, err, sizeof(err)), 0);
	open_session(mg, "eve");
	assert_int_equal(mgmt_login_locked(mg, "eve", "10.0.0.3", clock_wall_ms(), &wait), 0);
	int n = 0;
	assert_int_equal(mgmt_logins(mg, "eve", 3, count_logins, &n), 0);
	assert_int_equal(n, 3);
	check_ok();
	teardown_node();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_store_created_and_migrated),
	    cmocka_unit_test(test_unopenable_store_names_path_and_reason),
	    cmocka_unit_test(test_instance_pull_out_and_in),
	    cmocka_unit_test(test_server_and_zone_operations),
	    cmocka_unit_test(test_listing_and_audit_queries),
	    cmocka_unit_test(test_bad_input_writes_nothing),
	    cmocka_unit_test(test_capacity_refuses_before_commit),
	    cmocka_unit_test(test_full_store_applies_nothing),
	    cmocka_unit_test(test_repair_after_a_dead_writer),
	    cmocka_unit_test(test_killed_at_each_point_of_a_write),
	    cmocka_unit_test(test_services_json_versions_move_with_a_change),
	    cmocka_unit_test(test_times),
	    cmocka_unit_test(test_users_and_the_last_admin),
	    cmocka_unit_test(test_sessions_end_on_every_process_at_once),
	    cmocka_unit_test(test_login_lockout),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

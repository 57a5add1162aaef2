/*
 * test_routing.c - routing in the management module: the strategies and
 * the whitelist matching as pure functions (weight 0, one group, no
 * group, exact shares), then the store and the projection together
 * (groups, rules, weights released and not, the Java frame, the variants
 * the Rust paths get, canary, group pull-out, check, a rebuild, the image's
 * memory reserved as it grows and a full /dev/shm refusing a write),
 * against a real region and a real SQLite file in a temporary directory.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "artemis/codec.h"
#include "artemis/config.h"
#include "artemis/mgmt.h"
#include "artemis/shm.h"
#include "../../mgmt/route_int.h"
#include "mgmt_fixture.h"

/* /dev/shm full on demand: posix_fallocate is wrapped (the Makefile links
 * this test with --wrap=posix_fallocate). */
int __real_posix_fallocate(int fd, off_t off, off_t len);
int __wrap_posix_fallocate(int fd, off_t off, off_t len);
static int shm_full;

int __wrap_posix_fallocate(int fd, off_t off, off_t len)
{
	return shm_full ? ENOSPC : __real_posix_fallocate(fd, off, len);
}

/* ---- The strategies ---------------------------------------------------------------- */

static struct route_grp_rec grp(uint32_t weight, const char *zone, const char *region,
                                const char *key)
{
	struct route_grp_rec g;
	memset(&g, 0, sizeof(g));
	g.weight = weight;
	g.zone_hash = route_hash_lower(zone, strlen(zone));
	g.region_hash = route_hash_lower(region, strlen(region));
	g.key_hash = route_hash_lower(key, strlen(key));
	return g;
}

static void test_wrr_exact_shares(void **state)
{
	(void)state;
	struct route_grp_rec g[3] = {grp(70, "z1", "r", "a"), grp(30, "z2", "r", "b"),
	                             grp(0, "z3", "r", "c")};
	/* Any 100 consecutive counter values: exactly 70 and 30, never the
	 * drained group. */
	for (uint64_t start = 0; start < 300; start += 37) {
		int n[3] = {0, 0, 0};
		for (uint64_t c = start; c < start + 100; c++)
			n[route_pick_wrr(g, 3, c)]++;
		assert_int_equal(n[0], 70);
		assert_int_equal(n[1], 30);
		assert_int_equal(n[2], 0);
	}
	/* One group: always it.  No group, or every weight 0: every instance. */
	assert_int_equal(route_pick_wrr(g, 1, 12345), 0);
	assert_int_equal(route_pick_wrr(g, 0, 7), -1);
	assert_int_equal(route_pick_wrr(&g[2], 1, 7), -1);
	/* The counter wraps without a hiccup. */
	assert_true(route_pick_wrr(g, 2, UINT64_MAX) >= 0);
}

static void test_close_by_visit(void **state)
{
	(void)state;
	struct route_grp_rec g[4] = {grp(5, "z1", "east", "a"), grp(5, "z2", "east", "b"),
	                             grp(5, "z1", "west", "c"), grp(0, "z9", "east", "d")};
	uint64_t z1 = route_hash_lower("Z1", 2), z2 = route_hash_lower("z2", 2);
	uint64_t east = route_hash_lower("east", 4), west = route_hash_lower("WEST", 4);
	uint64_t z9 = route_hash_lower("z9", 2), z7 = route_hash_lower("z7", 2);
	assert_int_equal(route_pick_close(g, 4, z1, east), 0); /* zone and region */
	assert_int_equal(route_pick_close(g, 4, z2, east), 1);
	assert_int_equal(route_pick_close(g, 4, z1, west), 2); /* z1 of the caller's region */
	assert_int_equal(route_pick_close(g, 4, z7, west), 2); /* its region */
	assert_int_equal(route_pick_close(g, 4, z7, route_hash_lower("north", 5)), 0); /* first */
	assert_int_equal(route_pick_close(g, 4, z9, east), 0); /* weight 0: never */
	assert_int_equal(route_pick_close(g, 4, z2, 0), 1);    /* no region given */
	assert_int_equal(route_pick_close(&g[3], 1, z9, east), -1);
	assert_int_equal(route_pick_close(g, 0, z1, east), -1);
}

static void test_consistent_hash(void **state)
{
	(void)state;
	struct route_grp_rec g[3] = {grp(70, "z", "r", "svc/r/z/a"), grp(30, "z", "r", "svc/r/z/b"),
	                             grp(0, "z", "r", "svc/r/z/c")};
	int n[3] = {0, 0, 0};
	char ip[32];
	for (int i = 0; i < 20000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i / 65536, (i / 256) % 256, i % 256);
		int a = route_pick_hash(g, 3, ip, strlen(ip));
		assert_int_equal(a, route_pick_hash(g, 3, ip, strlen(ip))); /* stable */
		n[a]++;
	}
	assert_int_equal(n[2], 0);
	/* The weights' shares, within 2 points over 20,000 addresses. */
	assert_true(fabs(n[0] / 20000.0 - 0.7) < 0.02);
	/* A group removed moves only the addresses it had. */
	int moved = 0;
	for (int i = 0; i < 2000; i++) {
		snprintf(ip, sizeof(ip), "172.16.%d.%d", i / 256, i % 256);
		int with = route_pick_hash(g, 3, ip, strlen(ip));
		int without = route_pick_hash(g, 1, ip, strlen(ip));
		moved += with != without;
		if (with == 0)
			assert_int_equal(without, 0);
	}
	assert_true(moved > 0);
	assert_int_equal(route_pick_hash(&g[2], 1, "1.2.3.4", 7), -1);
	assert_int_equal(route_pick_hash(g, 1, "", 0), 0);
}

static void test_whitelist_matching(void **state)
{
	(void)state;
	struct route_cidr c;
	uint8_t a[16];
	assert_int_equal(route_cidr_parse("10.1.0.0/16", 11, &c), 0);
	assert_int_equal(route_ip_parse("10.1.200.7", 10, a), 0);
	assert_true(route_cidr_match(&c, a));
	assert_int_equal(route_ip_parse("10.2.0.1", 8, a), 0);
	assert_false(route_cidr_match(&c, a));
	assert_int_equal(route_ip_parse("::ffff:10.1.3.4", 15, a), 0); /* mapped: the same */
	assert_true(route_cidr_match(&c, a));
	assert_int_equal(route_cidr_parse("192.168.1.5", 11, &c), 0);
	assert_int_equal(route_ip_parse(" 192.168.1.5:8080", 17, a), 0); /* a hop with a port */
	assert_true(route_cidr_match(&c, a));
	assert_int_equal(route_ip_parse("192.168.1.6", 11, a), 0);
	assert_false(route_cidr_match(&c, a));
	assert_int_equal(route_cidr_parse("fd00::/8", 8, &c), 0);
	assert_int_equal(route_ip_parse("[fd12::1]", 9, a), 0);
	assert_true(route_cidr_match(&c, a));
	assert_int_equal(route_cidr_parse("0.0.0.0/0", 9, &c), 0);
	assert_true(route_cidr_match(&c, a) == false); /* IPv4's /0 is not every IPv6 */
	static const char *const bad[] = {"300.1.1.1",   "10.0.0.0/33", "fd00::/129",
	                                  "10.0.0.1/",   "abc",         "",
	                                  "10.0.0.1:80", "1.2.3.4/-1",  "[::1]"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(route_cidr_parse(bad[i], strlen(bad[i]), &c), 0);
	assert_true(mgmt_ipspec_valid("fd00::1", 7));
	assert_false(mgmt_ipspec_valid("fd00::1/200", 11));
}

/* ---- The store and the projection ----------------------------------------------------- */

static char region_name[64];
static char dir[128];
static config_t cfg;
static shm_t *shm;
static mgmt_t *mg;
static const mgmt_ctx_t ctx = {.operator_id = "olga", .complete = -1, .surface = "rust"};

static int setup(void **state)
{
	shm_params_t p;
	char err[512], cmd[300];
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/artemis-unit-routing-%d", (int)getpid());
	snprintf(region_name, sizeof(region_name), "/artemis-unit-routing-%d", (int)getpid());
	config_defaults(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "unit");
	snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dir);
	cfg.mgmt_max_operations = 1000;
	cfg.mgmt_routing_bytes = 256 * 1024;
	snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s", dir, dir);
	assert_int_equal(system(cmd), 0);
	shm_params_default(&p, region_name);
	p.max_instances = 1000;
	p.changelog_size = 1024;
	p.mgmt_bytes = mgmt_region_bytes(&cfg);
	p.mgmt_initial_bytes = mgmt_region_initial_bytes(&cfg);
	assert_int_equal(shm_open_region(&p, SHM_CREATE_FRESH, &shm, NULL), 0);
	if (mgmt_boot(&cfg, shm, err, sizeof(err)) < 0)
		fail_msg("mgmt_boot: %s", err);
	if (mgmt_open(&cfg, shm, &mg, err, sizeof(err)) < 0)
		fail_msg("mgmt_open: %s", err);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	mgmt_close(mg);
	shm_detach(shm);
	shm_destroy(region_name);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void reg(const char *svc, const char *id, const char *zone, const char *group)
{
	char json[512];
	shm_instance_in_t si;
	instance_parser_t *p = instance_parser_new();
	snprintf(
	    json, sizeof(json),
	    "{\"regionId\":\"us-east\",\"zoneId\":\"%s\",\"serviceId\":\"%s\",\"groupId\":%s%s%s,"
	    "\"instanceId\":\"%s\",\"ip\":\"10.0.0.1\",\"port\":80,\"url\":\"http://x/\"}",
	    zone, svc, group ? "\"" : "", group ? group : "null", group ? "\"" : "", id);
	assert_int_equal(instance_parse(p, json, strlen(json), &si, NULL), 0);
	assert_int_equal(shm_register(shm, &si), 0);
	instance_parser_free(p);
}

static mgmt_rtx_t *begin(void)
{
	return fixture_rtx(mg, &ctx);
}

static void commit(mgmt_rtx_t *t)
{
	fixture_commit(t);
}

static int64_t make_group(const char *svc, const char *zone, const char *name)
{
	char err[256];
	mgmt_group_t g;
	memset(&g, 0, sizeof(g));
	snprintf(g.service, sizeof(g.service), "%s", svc);
	snprintf(g.region, sizeof(g.region), "us-east");
	snprintf(g.zone, sizeof(g.zone), "%s", zone);
	snprintf(g.name, sizeof(g.name), "%s", name);
	mgmt_rtx_t *t = begin();
	if (mgmt_group_create(t, &g, false, err, sizeof(err)) < 0)
		fail_msg("group: %s", err);
	commit(t);
	return g.id;
}

static int64_t make_rule(const char *svc, const char *route_id, const char *strategy)
{
	char err[256];
	mgmt_rule_t r;
	memset(&r, 0, sizeof(r));
	snprintf(r.service, sizeof(r.service), "%s", svc);
	snprintf(r.route_id, sizeof(r.route_id), "%s", route_id);
	snprintf(r.name, sizeof(r.name), "%s", route_id);
	snprintf(r.strategy, sizeof(r.strategy), "%s", strategy);
	mgmt_rtx_t *t = begin();
	if (mgmt_rule_create(t, &r, false, err, sizeof(err)) < 0)
		fail_msg("rule: %s", err);
	commit(t);
	return r.id;
}

static void put_weight(int64_t rule, int64_t group, int w, enum mgmt_weight_mode mode)
{
	char err[256];
	mgmt_rule_group_t rg;
	memset(&rg, 0, sizeof(rg));
	rg.rule_id = rule;
	rg.group_id = group;
	rg.unreleased_weight = w;
	mgmt_rtx_t *t = begin();
	if (mgmt_rule_group_put(t, &rg, mode, err, sizeof(err)) < 0)
		fail_msg("rule group: %s", err);
	commit(t);
}

static void publish(int64_t rule, bool on)
{
	char err[256];
	mgmt_rule_t r = {.id = rule};
	snprintf(r.status, sizeof(r.status), "%s", on ? "active" : "inactive");
	mgmt_rtx_t *t = begin();
	if (mgmt_rule_update(t, &r, MGMT_RF_STATUS, err, sizeof(err)) < 0)
		fail_msg("publish: %s", err);
	commit(t);
}

static void check_ok(void)
{
	char msg[512];
	if (mgmt_check(&cfg, shm, msg, sizeof(msg)) < 0)
		fail_msg("mgmt_check: %s", msg);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The instanceIds of one Rust-path call, sorted, joined by ','. */
static void routed(const char *svc, const char *ip, const char *zone, char *out, size_t len)
{
	mgmt_caller_t c = {{ip, strlen(ip)}, {zone, strlen(zone)}, {"us-east", 7}};
	shm_str_t s = {svc, strlen(svc)};
	uint32_t v;
	buf_t b = {0};
	shm_service_info_t info;
	assert_int_equal(mgmt_route_decide(shm, s, &c, &v), 0);
	assert_int_equal(mgmt_service_read_routed(shm, s, v, &b, &info), 0);
	json_t *a = json_loads(b.data, 0, NULL);
	const char *ids[64];
	size_t i, n = 0, k = 0;
	json_t *e;
	json_array_foreach(a, i, e) if (k < 64) ids[k++] =
	    json_string_value(json_object_get(e, "instanceId"));
	qsort(ids, k, sizeof(ids[0]), cmp_str);
	out[0] = '\0';
	for (i = 0; i < k; i++)
		n += (size_t)snprintf(out + n, len - n, "%s%s", i ? "," : "", ids[i]);
	json_decref(a);
	buf_free(&b);
}

static json_t *frame(const char *svc)
{
	buf_t b = {0};
	assert_int_equal(mgmt_route_frame(shm, (shm_str_t){svc, strlen(svc)}, &b), 0);
	char *text = malloc(b.len + 3);
	snprintf(text, b.len + 3, "{%s}", b.data + 1);
	json_t *o = json_loads(text, 0, NULL);
	assert_non_null(o);
	free(text);
	buf_free(&b);
	return o;
}

static void test_rules_route_and_java_sees_released_weights(void **state)
{
	char got[256], err[256];
	(void)state;
	reg("svc", "b1", "zone-1", "blue");
	reg("svc", "b2", "zone-1", "blue");
	reg("svc", "g1", "zone-1", "green");
	reg("svc", "x1", "zone-1", NULL);
	/* No routing data: null, every instance. */
	json_t *f = frame("svc");
	assert_true(json_is_null(json_object_get(f, "routeRules")));
	json_decref(f);
	int64_t blue = make_group("svc", "zone-1", "blue"),
	        green = make_group("svc", "zone-1", "green");
	int64_t rule = make_rule("svc", "split", "weighted-round-robin");
	f = frame("svc");
	assert_int_equal(json_array_size(json_object_get(f, "routeRules")), 0); /* [] now */
	assert_int_equal(json_array_size(json_object_get(f, "logicInstances")), 0);
	json_decref(f);
	put_weight(rule, blue, 70, MGMT_WEIGHT_RUST);
	put_weight(rule, green, 300, MGMT_WEIGHT_RUST); /* clamped to 100 */
	routed("svc", "1.1.1.1", "zone-1", got, sizeof(got));
	assert_string_equal(got, "b1,b2,g1,x1"); /* unpublished: every instance */
	publish(rule, true);
	int blue_n = 0, green_n = 0;
	for (int i = 0; i < 170; i++) {
		routed("svc", "1.1.1.1", "zone-1", got, sizeof(got));
		blue_n += !strcmp(got, "b1,b2");
		green_n += !strcmp(got, "g1");
	}
	assert_int_equal(blue_n, 70);
	assert_int_equal(green_n, 100);
	/* Java: the released weights, group keys and members. */
	f = frame("svc");
	json_t *rr = json_array_get(json_object_get(f, "routeRules"), 0);
	assert_string_equal(json_string_value(json_object_get(rr, "routeId")), "split");
	json_t *gs = json_object_get(rr, "groups");
	assert_int_equal(json_array_size(gs), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(gs, 0), "groupKey")),
	                    "svc/us-east/zone-1/blue");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(gs, 1), "weight")), 100);
	json_decref(f);
	/* A Java update stages; the release publishes it. */
	put_weight(rule, green, 9000, MGMT_WEIGHT_STAGE);
	f = frame("svc");
	gs = json_object_get(json_array_get(json_object_get(f, "routeRules"), 0), "groups");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(gs, 1), "weight")), 100);
	json_decref(f);
	mgmt_rtx_t *t = begin();
	assert_int_equal(mgmt_rule_group_release(t, rule, green, err, sizeof(err)), 0);
	commit(t);
	f = frame("svc");
	gs = json_object_get(json_array_get(json_object_get(f, "routeRules"), 0), "groups");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(gs, 1), "weight")),
	                 9000);
	json_decref(f);
	check_ok();
	/* Unpublished: every instance again, and no rule for Java. */
	publish(rule, false);
	routed("svc", "1.1.1.1", "zone-1", got, sizeof(got));
	assert_string_equal(got, "b1,b2,g1,x1");
	f = frame("svc");
	assert_int_equal(json_array_size(json_object_get(f, "routeRules")), 0);
	json_decref(f);
	check_ok();
}

/* One write: for each of nsvc services prefix-<i>, n groups in one
 * published rule; the commit's rc. */
static int bulk(const char *prefix, int nsvc, int n, char *err, size_t err_len)
{
	mgmt_rtx_t *t = begin();
	for (int s = 0; s < nsvc; s++) {
		mgmt_rule_t r;
		memset(&r, 0, sizeof(r));
		snprintf(r.service, sizeof(r.service), "%s-%d", prefix, s);
		snprintf(r.route_id, sizeof(r.route_id), "bulk-%s-%d", prefix, s);
		snprintf(r.name, sizeof(r.name), "bulk");
		snprintf(r.strategy, sizeof(r.strategy), "weighted-round-robin");
		snprintf(r.status, sizeof(r.status), "active");
		if (mgmt_rule_create(t, &r, false, err, err_len) < 0)
			fail_msg("rule: %s", err);
		for (int i = 0; i < n; i++) {
			mgmt_group_t g;
			memset(&g, 0, sizeof(g));
			snprintf(g.service, sizeof(g.service), "%s", r.service);
			snprintf(g.region, sizeof(g.region), "us-east");
			snprintf(g.zone, sizeof(g.zone), "zone-%d", i % 3);
			snprintf(g.name, sizeof(g.name), "group-%d-with-a-longish-name", i);
			if (mgmt_group_create(t, &g, false, err, err_len) < 0)
				fail_msg("group: %s", err);
			mgmt_rule_group_t rg = {
			    .rule_id = r.id, .group_id = g.id, .unreleased_weight = 1 + i};
			if (mgmt_rule_group_put(t, &rg, MGMT_WEIGHT_RUST, err, err_len) < 0)
				fail_msg("rule group: %s", err);
		}
	}
	return mgmt_rtx_commit(t, err, err_len);
}

static size_t rule_groups_of(const char *svc)
{
	json_t *f = frame(svc);
	size_t n = json_array_size(
	    json_object_get(json_array_get(json_object_get(f, "routeRules"), 0), "groups"));
	json_decref(f);
	return n;
}

static void test_image_memory_grows_and_full_shm_refuses(void **state)
{
	char err[512] = "";
	(void)state;
	uint64_t start = shm_mgmt_reserved(shm), whole = mgmt_region_bytes(&cfg);
	/* A start reserves the tables and the image's first part only. */
	assert_true(start < whole);
	assert_true(start <= mgmt_region_initial_bytes(&cfg) + SHM_MGMT_STEP);
	for (int s = 0; s < 12; s++) {
		char prefix[32];
		snprintf(prefix, sizeof(prefix), "grow%d", s);
		if (bulk(prefix, 1, 24, err, sizeof(err)) < 0)
			fail_msg("bulk %s: %s", prefix, err);
	}
	uint64_t grown = shm_mgmt_reserved(shm);
	assert_true(grown > start);
	assert_true(grown <= whole);
	assert_int_equal(rule_groups_of("grow0-0"), 24);
	assert_int_equal(rule_groups_of("grow11-0"), 24);
	check_ok();
	/* /dev/shm full: a write whose image needs more memory is refused
	 * with nothing written; the node keeps serving what it has. */
	shm_full = 1;
	err[0] = '\0';
	assert_int_equal(bulk("huge", 10, 60, err, sizeof(err)), -ENOBUFS);
	assert_non_null(strstr(err, "/dev/shm"));
	shm_full = 0;
	assert_int_equal(shm_mgmt_reserved(shm), grown);
	assert_int_equal(rule_groups_of("huge-9"), 0);
	assert_int_equal(rule_groups_of("grow3-0"), 24);
	check_ok();
	/* Space back: the same write works, without a restart, and the
	 * memory stays within the section. */
	if (bulk("huge", 10, 60, err, sizeof(err)) < 0)
		fail_msg("bulk huge: %s", err);
	assert_int_equal(rule_groups_of("huge-9"), 60);
	assert_int_equal(rule_groups_of("grow3-0"), 24);
	assert_true(shm_mgmt_reserved(shm) > grown);
	assert_true(shm_mgmt_reserved(shm) <= whole);
	check_ok();
}

static void test_bad_input_writes_nothing(void **state)
{
	char err[256];
	(void)state;
	int64_t a = make_group("alpha", "zone-1", "a");
	int64_t other = make_group("beta", "zone-1", "b");
	int64_t rule = make_rule("alpha", "r-alpha", "close-by-visit");
	mgmt_rtx_t *t = begin();
	mgmt_group_t dup;
	memset(&dup, 0, sizeof(dup));
	snprintf(dup.service, sizeof(dup.service), "ALPHA");
	snprintf(dup.region, sizeof(dup.region), "us-east");
	snprintf(dup.zone, sizeof(dup.zone), "zone-1");
	snprintf(dup.name, sizeof(dup.name), "A");
	assert_int_equal(mgmt_group_create(t, &dup, false, err, sizeof(err)), -EEXIST);
	mgmt_rtx_abort(t);
	/* A group of another service in a rule: refused, and the write that
	 * contained it leaves nothing behind. */
	t = begin();
	mgmt_rule_group_t rg = {.rule_id = rule, .group_id = a, .unreleased_weight = 5};
	assert_int_equal(mgmt_rule_group_put(t, &rg, MGMT_WEIGHT_RUST, err, sizeof(err)), 0);
	rg.group_id = other;
	assert_int_equal(mgmt_rule_group_put(t, &rg, MGMT_WEIGHT_RUST, err, sizeof(err)), -EXDEV);
	assert_int_equal(mgmt_rtx_commit(t, err, sizeof(err)), -ECANCELED);
	t = begin();
	assert_int_equal(mgmt_group_delete(t, 999999, err, sizeof(err)), -ENOENT);
	mgmt_rtx_abort(t);
	t = begin();
	mgmt_rule_t dupr;
	memset(&dupr, 0, sizeof(dupr));
	snprintf(dupr.service, sizeof(dupr.service), "gamma");
	snprintf(dupr.route_id, sizeof(dupr.route_id), "r-alpha");
	snprintf(dupr.name, sizeof(dupr.name), "x");
	assert_int_equal(mgmt_rule_create(t, &dupr, false, err, sizeof(err)), -EEXIST);
	mgmt_rtx_abort(t);
	check_ok();
}

static int count_rg(void *c, const mgmt_rule_group_t *rg)
{
	(void)rg;
	(*(int *)c)++;
	return 0;
}

static void test_failed_write_leaves_no_rule_group(void **state)
{
	char err[256];
	int n = 0;
	(void)state;
	int64_t rule = make_rule("delta", "r-delta", "weighted-round-robin");
	int64_t g = make_group("delta", "zone-1", "d");
	int64_t other = make_group("epsilon", "zone-1", "e");
	mgmt_rtx_t *t = begin();
	mgmt_rule_group_t rg = {.rule_id = rule, .group_id = g, .unreleased_weight = 5};
	assert_int_equal(mgmt_rule_group_put(t, &rg, MGMT_WEIGHT_RUST, err, sizeof(err)), 0);
	rg.group_id = other;
	assert_int_equal(mgmt_rule_group_put(t, &rg, MGMT_WEIGHT_RUST, err, sizeof(err)), -EXDEV);
	assert_int_equal(mgmt_rtx_commit(t, err, sizeof(err)), -ECANCELED);
	assert_int_equal(mgmt_rule_groups(mg, 0, rule, 0, count_rg, &n), 0);
	assert_int_equal(n, 0);
	check_ok();
}

static void test_canary_and_group_pull_out(void **state)
{
	char got[256], err[256];
	(void)state;
	reg("pay", "p1", "zone-1", NULL);
	reg("pay", "p2", "zone-2", NULL);
	reg("pay", "c1", "zone-1", "canary");
	make_group("pay", "zone-1", "canary");
	mgmt_canary_t c = {.enabled = true, .whitelist = "[\"10.9.0.0/16\",\"192.168.0.7\"]"};
	snprintf(c.service, sizeof(c.service), "pay");
	mgmt_rtx_t *t = begin();
	assert_int_equal(mgmt_canary_put(t, &c, err, sizeof(err)), 0);
	commit(t);
	routed("pay", "10.9.3.3", "zone-1", got, sizeof(got));
	assert_string_equal(got, "c1");
	routed("pay", "192.168.0.7", "zone-1", got, sizeof(got));
	assert_string_equal(got, "c1");
	routed("pay", "10.8.3.3", "zone-1", got, sizeof(got));
	assert_string_equal(got, "p1,p2");
	routed("pay", "not-an-ip", "zone-1", got, sizeof(got));
	assert_string_equal(got, "p1,p2");
	/* A bad whitelist entry: refused. */
	t = begin();
	c.whitelist = "[\"10.0.0.0/40\"]";
	assert_int_equal(mgmt_canary_put(t, &c, err, sizeof(err)), -EINVAL);
	mgmt_rtx_abort(t);
	/* Close-by-visit within the non-canary pool. */
	int64_t z1 = make_group("pay", "zone-1", "default"),
	        z2 = make_group("pay", "zone-2", "default");
	int64_t rule = make_rule("pay", "near", "close-by-visit");
	put_weight(rule, z1, 5, MGMT_WEIGHT_RUST);
	put_weight(rule, z2, 5, MGMT_WEIGHT_RUST);
	publish(rule, true);
	routed("pay", "10.8.3.3", "zone-2", got, sizeof(got));
	assert_string_equal(got, "p2");
	routed("pay", "10.8.3.3", "zone-1", got, sizeof(got));
	assert_string_equal(got, "p1");
	/* The group of zone-2 pulled out: its instances are down everywhere,
	 * and the rule falls back to every instance up. */
	t = begin();
	assert_int_equal(mgmt_group_op(t, z2, "pullout", true, err, sizeof(err)), 0);
	commit(t);
	routed("pay", "10.8.3.3", "zone-2", got, sizeof(got));
	assert_string_equal(got, "p1");
	buf_t b = {0};
	shm_service_info_t info;
	assert_int_equal(mgmt_service_read(shm, (shm_str_t){"pay", 3}, &b, &info), 0);
	assert_int_equal(info.count, 2);
	buf_free(&b);
	check_ok();
	/* A rebuild from the store (as the master does at start) changes nothing. */
	assert_int_equal(mgmt_boot(&cfg, shm, err, sizeof(err)), 0);
	routed("pay", "10.9.0.1", "zone-1", got, sizeof(got));
	assert_string_equal(got, "c1");
	t = begin();
	assert_int_equal(mgmt_group_op(t, z2, "pullout", false, err, sizeof(err)), 0);
	commit(t);
	routed("pay", "10.8.3.3", "zone-2", got, sizeof(got));
	assert_string_equal(got, "p2");
	check_ok();
}

int main(void)
{
	const struct CMUnitTest pure[] = {
	    cmocka_unit_test(test_wrr_exact_shares),
	    cmocka_unit_test(test_close_by_visit),
	    cmocka_unit_test(test_consistent_hash),
	    cmocka_unit_test(test_whitelist_matching),
	};
	const struct CMUnitTest store[] = {
	    cmocka_unit_test(test_rules_route_and_java_sees_released_weights),
	    cmocka_unit_test(test_bad_input_writes_nothing),
	    cmocka_unit_test(test_failed_write_leaves_no_rule_group),
	    cmocka_unit_test(test_canary_and_group_pull_out),
	    cmocka_unit_test(test_image_memory_grows_and_full_shm_refuses),
	};
	int rc = cmocka_run_group_tests(pure, NULL, NULL);
	return rc | cmocka_run_group_tests(store, setup, teardown);
}

/*
 * test_shm.c - unit tests of the registry region (shm/): every operation
 * and every error code, repair of a writer killed holding the lock, a reader
 * facing a sequence left odd, and attach from a separately exec'd process.
 * White-box where the contract is about internals (shm_int.h).
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../shm/shm_int.h"
#include "artemis/clock.h"
#include "artemis/shm.h"
#include "shm_test.h"

static char region_name[64];

/* A new region; max_services and changelog 0: the defaults. */
static shm_t *open_sized(uint32_t max_instances, uint32_t max_services, uint32_t changelog)
{
	shm_params_t p;
	snprintf(region_name, sizeof(region_name), "/artemis-unit-%d", (int)getpid());
	shm_params_default(&p, region_name);
	p.max_instances = max_instances;
	p.max_services = max_services;
	p.changelog_size = changelog;
	shm_t *s = NULL;
	shm_open_info_t info;
	assert_int_equal(shm_open_region(&p, SHM_CREATE_FRESH, &s, &info), 0);
	assert_true(info.created);
	return s;
}

static shm_t *open_fresh(uint32_t max_instances, uint32_t changelog)
{
	return open_sized(max_instances, 0, changelog);
}

static void close_region(shm_t *s)
{
	shm_detach(s);
	shm_destroy(region_name);
}

static void test_register_lookup_case(void **state)
{
	shm_t *s = open_fresh(100, 0);
	shm_instance_in_t in = inst("MySvc", "Inst-1", "{\"v\":1}");
	in.group = S("GroupA");
	assert_int_equal(shm_register(s, &in), 0);
	shm_key_t k = key("US-EAST", "mysvc", "INST-1");
	shm_instance_view_t v;
	buf_t json = {0};
	assert_int_equal(shm_lookup(s, &k, 0, &v, &json), 0);
	assert_string_equal(json.data, "{\"v\":1}");
	assert_string_equal(v.service, "MySvc");
	assert_string_equal(v.display, "us-east/zone-1/mysvc/groupa/inst-1");
	assert_false(v.expired);
	assert_int_equal(v.ttl_ms, 20000);

	/* Re-register replaces the data and keeps one instance. */
	in = inst("MySvc", "inst-1", "{\"v\":2}");
	assert_int_equal(shm_register(s, &in), 0);
	json.len = 0;
	assert_int_equal(shm_lookup(s, &k, 0, &v, &json), 0);
	assert_string_equal(json.data, "{\"v\":2}");
	assert_string_equal(v.display, "us-east/zone-1/mysvc/inst-1");
	shm_stats_t st;
	shm_stats(s, &st);
	assert_int_equal(st.instances, 1);
	assert_int_equal(st.registers, 2);

	/* Unknown key. */
	k = key("us-east", "mysvc", "other");
	assert_int_equal(shm_lookup(s, &k, 0, &v, NULL), -ENOENT);
	assert_check(s);
	buf_free(&json);
	close_region(s);
}

/* The reference: check each field, then lowercase byte by byte. */
static int naive_key(const shm_key_t *k, char *out, size_t *len)
{
	const shm_str_t *f[3] = {&k->region, &k->service, &k->instance};
	const size_t max[3] = {SHM_MAX_REGION, SHM_MAX_SERVICE, SHM_MAX_INSTANCE};
	for (int i = 0; i < 3; i++) {
		bool blank = true;
		for (size_t j = 0; j < f[i]->len; j++)
			blank = blank && strchr(" \t\n\v\f\r", f[i]->ptr[j]) && f[i]->ptr[j];
		if (blank)
			return -EINVAL;
		if (f[i]->len > max[i])
			return -ENAMETOOLONG;
		if (memchr(f[i]->ptr, '\0', f[i]->len))
			return -EINVAL;
	}
	size_t n = 0;
	for (int i = 0; i < 3; i++) {
		for (size_t j = 0; j < f[i]->len; j++) {
			unsigned char c = (unsigned char)f[i]->ptr[j];
			out[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		out[n++] = '\0';
	}
	*len = n - 1;
	return 0;
}

/* shm__make_key (eight bytes at a time) agrees with the reference on
 * random fields of every length, byte values and error. */
static void test_make_key_random(void **state)
{
	static const char alphabet[] = "aZ@[`{ \t\r\x80\xff\x01"
	                               "AzQ09\0";
	uint64_t x = 0x9E3779B97F4A7C15ull;
	char buf[3][SHM_MAX_SERVICE + 8];
	for (int round = 0; round < 200000; round++) {
		shm_str_t f[3];
		for (int i = 0; i < 3; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			size_t len = x % 24;
			if (x % 97 == 0)
				len = (x >> 8) % (SHM_MAX_SERVICE + 4);
			for (size_t j = 0; j < len; j++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				/* Mostly letters, sometimes anything in the alphabet. */
				buf[i][j] = x % 8 ? (char)('A' + x % 58)
				                  : alphabet[(x >> 8) % (sizeof(alphabet) - 1)];
			}
			f[i] = (shm_str_t){buf[i], len};
		}
		shm_key_t k = {f[0], f[1], f[2]};
		char a[SHM_MAX_KEY], b[SHM_MAX_KEY];
		size_t la = 0, lb = 0;
		int ra = shm__make_key(&k, a, &la), rb = naive_key(&k, b, &lb);
		if (ra != rb)
			fail_msg("round %d: make_key %d, reference %d", round, ra, rb);
		if (ra == 0 && (la != lb || memcmp(a, b, la) != 0))
			fail_msg("round %d: keys differ", round);
	}
}

/* What a batch callback saw, per key. */
struct seen {
	int rc[16];
	char service[16][SHM_MAX_SERVICE + 1];
	size_t json_len[16];
};

static int batch_seen(void *ctx, size_t i, int rc, const shm_instance_view_t *view,
                      const char *json, size_t json_len)
{
	struct seen *x = ctx;
	x->rc[i] = rc;
	snprintf(x->service[i], sizeof(x->service[i]), "%s", view ? view->service : "");
	x->json_len[i] = json_len;
	return 0;
}

/* Keys around the slot's line boundary (SHM_KEY_LINE0) and the inline
 * limit (SHM_KEY_INLINE), up to the longest key: every operation, single
 * and batched, and the names a lookup reads from the blob. */
static void test_key_lengths_and_batches(void **state)
{
	shm_t *s = open_fresh(100, 0);
	/* "us-east\0s\0" + instance: 10 + the instance's length. */
	const size_t lens[] = {SHM_KEY_LINE0 - 1,  SHM_KEY_LINE0,        SHM_KEY_LINE0 + 1,
	                       SHM_KEY_INLINE - 1, SHM_KEY_INLINE,       SHM_KEY_INLINE + 1,
	                       SHM_KEY_INLINE + 2, 10 + SHM_MAX_INSTANCE};
	enum { N = sizeof(lens) / sizeof(lens[0]) };
	char ids[N][SHM_MAX_INSTANCE + 1];
	shm_key_t keys[N + 1];
	for (size_t i = 0; i < N; i++) {
		size_t n = lens[i] - 10;
		memset(ids[i], 'a' + (int)i, n);
		ids[i][n] = '\0';
		shm_instance_in_t in = inst("S", ids[i], "{\"k\":1}");
		assert_int_equal(shm_register(s, &in), 0);
		keys[i] = key("US-EAST", "s", ids[i]);
	}
	keys[N] = key("us-east", "s", "absent");
	int rcs[N + 1];
	assert_int_equal(shm_heartbeat_batch(s, keys, N + 1, 0, rcs), N);
	assert_int_equal(rcs[N], -ENOENT);
	shm_instance_view_t v;
	buf_t json = {0};
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(rcs[i], 0);
		assert_int_equal(shm_heartbeat(s, &keys[i], 0), 0);
		json.len = 0;
		assert_int_equal(shm_lookup(s, &keys[i], 0, &v, &json), 0);
		assert_string_equal(v.service, "S");
		/* "us-east/zone-1/s/" + instance */
		assert_int_equal(strlen(v.display), lens[i] + 7);
		assert_memory_equal(json.data, "{\"k\":1}", 7);
		/* Without json only the slot is read: no names. */
		assert_int_equal(shm_lookup(s, &keys[i], 0, &v, NULL), 0);
		assert_string_equal(v.service, "");
		assert_string_equal(v.display, "");
		assert_false(v.expired);
	}
	struct seen x;
	for (int with_json = 0; with_json < 2; with_json++) {
		memset(&x, 0, sizeof(x));
		assert_int_equal(shm_lookup_batch(s, keys, N + 1, 0, with_json, batch_seen, &x), 0);
		for (size_t i = 0; i < N; i++) {
			assert_int_equal(x.rc[i], 0);
			assert_string_equal(x.service[i], with_json ? "S" : "");
			assert_int_equal(x.json_len[i], with_json ? 7 : 0);
		}
		assert_int_equal(x.rc[N], -ENOENT);
	}
	/* The same instance re-registered under another spelling of its
	 * service moves to that service; the blob names the new spelling. */
	shm_instance_in_t in = inst("s", ids[N - 1], "{\"k\":2}");
	assert_int_equal(shm_register(s, &in), 0);
	json.len = 0;
	assert_int_equal(shm_lookup(s, &keys[N - 1], 0, &v, &json), 0);
	assert_string_equal(v.service, "s");
	assert_check(s);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(shm_unregister(s, &keys[i], 0), 0);
	shm_reap_result_t r;
	assert_int_equal(shm_reap(s, 0, &r), 0);
	assert_int_equal(r.evicted_removed, N);
	assert_check(s);
	buf_free(&json);
	close_region(s);
}

static void test_validation_errors(void **state)
{
	shm_t *s = open_fresh(100, 0);
	const char *field;
	shm_instance_in_t in = inst("  ", "i", "{}");
	assert_int_equal(shm_register(s, &in), -EINVAL);
	assert_int_equal(shm_instance_validate(&in, &field), -EINVAL);
	assert_string_equal(field, "serviceId");

	char longname[SHM_MAX_SERVICE + 2];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	in = inst(longname, "i", "{}");
	assert_int_equal(shm_register(s, &in), -ENAMETOOLONG);
	assert_int_equal(shm_instance_validate(&in, &field), -ENAMETOOLONG);
	assert_string_equal(field, "serviceId");
	longname[SHM_MAX_SERVICE] = '\0'; /* exactly the maximum is fine */
	in = inst(longname, "i", "{}");
	assert_int_equal(shm_register(s, &in), 0);

	in = inst("svc", "", "{}");
	assert_int_equal(shm_instance_validate(&in, &field), -EINVAL);
	assert_string_equal(field, "instanceId");
	in = inst("svc", "i", "{}");
	in.key.region = S("");
	assert_int_equal(shm_instance_validate(&in, &field), -EINVAL);
	assert_string_equal(field, "regionId");
	in = inst("svc", "i", "{}");
	in.zone = (shm_str_t){"zone\0x", 6};
	assert_int_equal(shm_instance_validate(&in, &field), -EINVAL);
	assert_string_equal(field, "zoneId");
	in = inst("svc", "i", "");
	assert_int_equal(shm_register(s, &in), -EINVAL);

	char *big = malloc(SHM_MAX_JSON + 2);
	memset(big, 'x', SHM_MAX_JSON + 1);
	big[SHM_MAX_JSON + 1] = '\0';
	in = inst("svc", "i", big);
	assert_int_equal(shm_register(s, &in), -E2BIG);
	big[SHM_MAX_JSON] = '\0';
	in = inst("svc", "big", big);
	assert_int_equal(shm_register(s, &in), 0);
	free(big);

	/* Long keys (beyond the inline part) work end to end. */
	char longid[SHM_MAX_INSTANCE + 1];
	memset(longid, 'Q', SHM_MAX_INSTANCE);
	longid[SHM_MAX_INSTANCE] = '\0';
	in = inst("svc", longid, "{}");
	assert_int_equal(shm_register(s, &in), 0);
	shm_key_t k = key("us-east", "SVC", longid);
	assert_int_equal(shm_heartbeat(s, &k, 0), 0);
	shm_key_t bad = key("us-east", "svc", "");
	assert_int_equal(shm_heartbeat(s, &bad, 0), -EINVAL);
	assert_check(s);
	close_region(s);
}

static void test_heartbeat(void **state)
{
	shm_t *s = open_fresh(100, 0);
	shm_key_t k = key("us-east", "svc", "i1");
	assert_int_equal(shm_heartbeat(s, &k, 0), -ENOENT);
	shm_instance_in_t in = inst("svc", "i1", "{}");
	assert_int_equal(shm_register(s, &in), 0);
	uint64_t now = clock_wall_ms();
	assert_int_equal(shm_heartbeat(s, &k, now + 10000), 0);
	shm_instance_view_t v;
	assert_int_equal(shm_lookup(s, &k, now + 10000, &v, NULL), 0);
	assert_true(v.renewal_ms >= now + 10000 - 1);
	/* Expired: now > renewal + ttl. */
	assert_int_equal(shm_heartbeat(s, &k, now + 10000 + 20001), -ENOENT);
	/* Still listed until the cleaner removes it (Java). */
	assert_int_equal(shm_lookup(s, &k, now + 10000 + 20001, &v, NULL), 0);
	assert_true(v.expired);
	/* Legacy manager TTL (90 s). */
	in = inst("svc", "legacy", "{}");
	in.legacy = true;
	assert_int_equal(shm_register(s, &in), 0);
	shm_key_t kl = key("us-east", "svc", "legacy");
	assert_int_equal(shm_heartbeat(s, &kl, now + 60000), 0);
	shm_stats_t st;
	shm_stats(s, &st);
	assert_int_equal(st.renewals, 2);
	assert_int_equal(st.renewals_failed, 2);
	close_region(s);
}

static void test_unregister_and_reap(void **state)
{
	shm_t *s = open_fresh(100, 0);
	shm_key_t k = key("us-east", "svc", "i1");
	assert_int_equal(shm_unregister(s, &k, 0), 0); /* unknown: quiet success */
	shm_instance_in_t in = inst("svc", "i1", "{\"x\":1}");
	assert_int_equal(shm_register(s, &in), 0);
	shm_cursor_t cur;
	shm_cursor_init(s, &cur);
	assert_int_equal(shm_unregister(s, &k, 0), 0);
	assert_int_equal(shm_heartbeat(s, &k, 0), -ENOENT);
	/* Still present (lazily removed) until the reap pass. */
	shm_instance_view_t v;
	assert_int_equal(shm_lookup(s, &k, 0, &v, NULL), 0);
	assert_true(v.evicted);
	assert_true(v.eviction_ms > 0);
	shm_reap_result_t r;
	assert_int_equal(shm_reap(s, 0, &r), 0);
	assert_int_equal(r.evicted_removed, 1);
	assert_int_equal(shm_lookup(s, &k, 0, &v, NULL), -ENOENT);
	shm_change_t ch;
	buf_t json = {0};
	assert_int_equal(shm_changes_next(s, &cur, &ch, &json), 0);
	assert_int_equal(ch.type, SHM_CHANGE_DELETE);
	assert_int_equal(ch.reason, SHM_DEL_UNREGISTER);
	assert_string_equal(ch.service, "svc");
	assert_string_equal(json.data, "{\"x\":1}");
	assert_int_equal(shm_changes_next(s, &cur, &ch, &json), -EAGAIN);
	/* Service gone from listings once empty. */
	buf_t out = {0};
	assert_int_equal(shm_service_read(s, S("svc"), &out, NULL), -ENOENT);
	assert_check(s);
	buf_free(&json);
	buf_free(&out);
	close_region(s);
}

static void test_expiry_and_self_preservation(void **state)
{
	shm_t *s = open_fresh(1000, 0);
	char id[32];
	for (int i = 0; i < 100; i++) {
		snprintf(id, sizeof(id), "i%d", i);
		shm_instance_in_t in = inst("svc", id, "{}");
		assert_int_equal(shm_register(s, &in), 0);
	}
	uint64_t t = clock_wall_ms();
	/* 12 s window: 100 renewals a second establishes maxCount. */
	for (int sec = 1; sec <= 13; sec++) {
		for (int i = 0; i < 100; i++) {
			snprintf(id, sizeof(id), "i%d", i);
			shm_key_t k = key("us-east", "svc", id);
			assert_int_equal(shm_heartbeat(s, &k, t + (uint64_t)sec * 1000), 0);
		}
		shm_preserve_tick(s, t + (uint64_t)sec * 1000);
	}
	shm_preserve_t p;
	shm_preserve_get(s, SHM_MGR_NORMAL, &p);
	assert_true(p.enabled);
	assert_true(p.safe);
	assert_int_equal(p.window_count, 1200);
	assert_int_equal(p.max_count, 1200);
	/* Renewals collapse: the window drops below 85% of maxCount. */
	for (int sec = 14; sec <= 16; sec++)
		shm_preserve_tick(s, t + (uint64_t)sec * 1000);
	shm_preserve_get(s, SHM_MGR_NORMAL, &p);
	assert_false(p.safe);
	/* Unsafe: expired leases are kept, explicit unregisters still apply. */
	shm_key_t k0 = key("us-east", "svc", "i0");
	assert_int_equal(shm_unregister(s, &k0, 0), 0);
	shm_reap_result_t r;
	assert_int_equal(shm_reap(s, t + 60000, &r), 0);
	assert_int_equal(r.evicted_removed, 1);
	assert_int_equal(r.expired_removed, 0);
	assert_int_equal(r.expired_kept, 99);
	/* Safe again after the window settles at the lower level long enough
	 * that maxCount resets (10 min). */
	for (int sec = 17; sec <= 700; sec++)
		shm_preserve_tick(s, t + (uint64_t)sec * 1000);
	shm_preserve_get(s, SHM_MGR_NORMAL, &p);
	assert_true(p.safe);
	assert_int_equal(shm_reap(s, t + 700000, &r), 0);
	assert_int_equal(r.expired_removed, 99);
	shm_stats_t st;
	shm_stats(s, &st);
	assert_int_equal(st.instances, 0);
	assert_int_equal(st.evictions, 99);
	assert_int_equal(st.removals, 1);
	assert_check(s);
	close_region(s);
}

static void test_self_preservation_disabled(void **state)
{
	shm_params_t p;
	snprintf(region_name, sizeof(region_name), "/artemis-unit-%d", (int)getpid());
	shm_params_default(&p, region_name);
	p.max_instances = 100;
	p.self_preservation = false;
	shm_t *s;
	assert_int_equal(shm_open_region(&p, SHM_CREATE_FRESH, &s, NULL), 0);
	shm_instance_in_t in = inst("svc", "i", "{}");
	assert_int_equal(shm_register(s, &in), 0);
	shm_preserve_t pr;
	shm_preserve_get(s, SHM_MGR_NORMAL, &pr);
	assert_false(pr.enabled);
	assert_true(pr.safe);
	shm_reap_result_t r;
	assert_int_equal(shm_reap(s, clock_wall_ms() + 20001 + 5, &r), 0);
	assert_int_equal(r.expired_removed, 1);
	close_region(s);
}

static void test_services(void **state)
{
	shm_t *s = open_fresh(100, 0);
	shm_instance_in_t a = inst("Alpha", "1", "{\"i\":1}");
	shm_instance_in_t b = inst("Alpha", "2", "{\"i\":2}");
	shm_instance_in_t c = inst("alpha", "3", "{\"i\":3}");
	assert_int_equal(shm_register(s, &a), 0);
	assert_int_equal(shm_register(s, &b), 0);
	assert_int_equal(shm_register(s, &c), 0);
	buf_t out = {0};
	shm_service_info_t info;
	assert_int_equal(shm_service_read(s, S("Alpha"), &out, &info), 0);
	assert_int_equal(info.count, 2);
	assert_true(strcmp(out.data, "[{\"i\":2},{\"i\":1}]") == 0 ||
	            strcmp(out.data, "[{\"i\":1},{\"i\":2}]") == 0);
	out.len = 0;
	assert_int_equal(shm_service_read(s, S("alpha"), &out, &info), 0);
	assert_int_equal(info.count, 1);
	assert_int_equal(shm_service_read(s, S("ALPHA"), &out, &info), -ENOENT);
	/* Re-registering instance 1 under "alpha" moves it (same lease key). */
	shm_instance_in_t moved = inst("alpha", "1", "{\"i\":9}");
	uint64_t before = info.version;
	assert_int_equal(shm_register(s, &moved), 0);
	assert_int_equal(shm_service_info(s, S("alpha"), &info), 0);
	assert_int_equal(info.count, 2);
	assert_true(info.version > before);
	assert_int_equal(shm_service_info(s, S("Alpha"), &info), 0);
	assert_int_equal(info.count, 1);
	buf_free(&out);
	close_region(s);
}

static int count_services(void *ctx, const char *service, size_t len,
                          const shm_service_info_t *info)
{
	(*(int *)ctx) += (int)info->count;
	assert_int_equal(strlen(service), len);
	return 0;
}

static int count_instances(void *ctx, const shm_instance_view_t *view, const char *json,
                           size_t json_len)
{
	(*(int *)ctx)++;
	assert_true(json_len > 0 && json[0] == '{');
	assert_true(view->service[0] != '\0');
	return 0;
}

struct installments {
	int budget, taken;
	int seen[10];
};

/* Take up to `budget` instances, then ask the walk to stop (7). */
static int take_some(void *ctx, const shm_instance_view_t *view, const char *json, size_t json_len)
{
	struct installments *x = ctx;
	if (x->budget == 0)
		return 7;
	x->budget--;
	x->taken++;
	x->seen[atoi(strrchr(view->display, '/') + 1)]++; /* ".../<id>" */
	return 0;
}

static void test_foreach(void **state)
{
	shm_t *s = open_fresh(100, 0);
	char id[16];
	for (int i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "%d", i);
		shm_instance_in_t in = inst(i % 2 ? "odd" : "even", id, "{}");
		assert_int_equal(shm_register(s, &in), 0);
	}
	int total = 0;
	assert_int_equal(shm_services_foreach(s, count_services, &total), 0);
	assert_int_equal(total, 10);
	int n = 0;
	assert_int_equal(shm_instances_foreach(s, NULL, 0, count_instances, &n), 0);
	assert_int_equal(n, 10);
	n = 0;
	shm_str_t odd = S("odd");
	assert_int_equal(shm_instances_foreach(s, &odd, 0, count_instances, &n), 0);
	assert_int_equal(n, 5);

	/* In installments: stopped every third visit, resumed at the slot it
	 * stopped on; every instance is taken exactly once. */
	struct installments x = {0};
	uint32_t next = 0;
	int calls = 0, rc;
	while ((rc = shm_instances_walk(s, &next, 0, take_some, &x)) != 0) {
		assert_int_equal(rc, 7);
		x.budget = 3;
		calls++;
		assert_true(calls < 20);
	}
	assert_int_equal(calls, 4); /* 0 (budget 0), 3, 3, 3, then the last 1 */
	assert_int_equal(x.taken, 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(x.seen[i], 1);
	close_region(s);
}

/* A full service table takes over an empty entry once its last change has
 * left the change log, and not before; the old name is gone, the others
 * stay found, and the index stays consistent over many renames. */
/* Read every change from cur on; each one's service name must be the one
 * the instance it carries was registered under (the JSON names it). */
static int changes_attributed(shm_t *s, shm_cursor_t *cur)
{
	shm_change_t ch;
	buf_t json = {0};
	int n = 0, rc;
	while ((rc = shm_changes_next(s, cur, &ch, &json)) == 0) {
		if (ch.type != SHM_CHANGE_RELOAD) {
			char want[SHM_MAX_SERVICE + 16];
			snprintf(want, sizeof(want), "\"svc\":\"%s\"", ch.service);
			assert_non_null(json.data);
			if (!strstr(json.data, want))
				fail_msg("change %llu says %s for %s",
				         (unsigned long long)ch.version, ch.service, json.data);
		}
		json.len = 0;
		n++;
	}
	assert_int_equal(rc, -EAGAIN);
	buf_free(&json);
	return n;
}

static shm_instance_in_t svc_inst(const char *svc, const char *id, char *json, size_t len)
{
	snprintf(json, len, "{\"svc\":\"%s\"}", svc);
	return inst(svc, id, json);
}

/* A full service table takes a new name into an emptied entry at once;
 * change-log readers keep naming every change's own service, and readers
 * by name never see the new service's instances under the old name. */
static void test_service_table_reuse(void **state)
{
	shm_t *s = open_sized(256, 16, 1024);
	char svc[32], json[64];
	shm_cursor_t cur;
	shm_cursor_init(s, &cur);
	for (int i = 0; i < 16; i++) {
		snprintf(svc, sizeof(svc), "Svc-%d", i);
		shm_instance_in_t in = svc_inst(svc, "a", json, sizeof(json));
		assert_int_equal(shm_register(s, &in), 0);
	}
	shm_instance_in_t extra = svc_inst("New-0", "x", json, sizeof(json));
	assert_int_equal(shm_register(s, &extra), -ENOSPC); /* none is empty */
	buf_t out = {0};
	shm_reap_result_t r;
	for (int round = 0; round < 40; round++) {
		/* Empty the service created last (Svc-0 first). */
		char gone[32];
		if (round == 0)
			snprintf(gone, sizeof(gone), "Svc-0");
		else
			snprintf(gone, sizeof(gone), "New-%d", round - 1);
		shm_key_t k = key("us-east", gone, round == 0 ? "a" : "x");
		assert_int_equal(shm_unregister(s, &k, 0), 0);
		assert_int_equal(shm_reap(s, 0, &r), 0);
		assert_int_equal(r.evicted_removed, 1);
		static char fresh[32];
		snprintf(fresh, sizeof(fresh), "New-%d", round);
		extra = svc_inst(fresh, "x", json, sizeof(json));
		/* Its `new` and `delete` are still in the change log: the entry
		 * is taken over all the same. */
		assert_int_equal(shm_register(s, &extra), 0);
		out.len = 0;
		assert_int_equal(shm_service_read(s, S(gone), &out, NULL), -ENOENT);
		shm_service_info_t info;
		assert_int_equal(shm_service_info(s, S(gone), &info), -ENOENT);
		out.len = 0;
		assert_int_equal(shm_service_read(s, extra.key.service, &out, NULL), 0);
		char want[64];
		snprintf(want, sizeof(want), "[{\"svc\":\"%s\"}]", fresh);
		assert_string_equal(out.data, want);
		for (int i = 1; i < 16; i++) {
			snprintf(svc, sizeof(svc), "Svc-%d", i);
			out.len = 0;
			assert_int_equal(shm_service_read(s, S(svc), &out, NULL), 0);
		}
		assert_check(s);
	}
	/* 16 registers, 40 rounds of a delete and a new. */
	assert_int_equal(changes_attributed(s, &cur), 16 + 40 * 2);
	int total = 0;
	assert_int_equal(shm_services_foreach(s, count_services, &total), 0);
	assert_int_equal(total, 16);
	buf_free(&out);
	close_region(s);
}

/* An emptied service whose `reload` is still in the change log keeps its
 * entry (the record names it only through the entry) until the log moved
 * past it. */
static void test_service_reuse_waits_for_reloads(void **state)
{
	shm_t *s = open_sized(64, 2, 64);
	char json[64];
	shm_instance_in_t a = svc_inst("A", "1", json, sizeof(json));
	assert_int_equal(shm_register(s, &a), 0);
	shm_instance_in_t b = svc_inst("B", "1", json, sizeof(json));
	assert_int_equal(shm_register(s, &b), 0);
	shm_cursor_t cur;
	shm_cursor_init(s, &cur);
	assert_int_equal(shm_emit_reload(s, S("A")), 0);
	shm_key_t ka = key("us-east", "A", "1");
	assert_int_equal(shm_unregister(s, &ka, 0), 0);
	shm_reap_result_t r;
	assert_int_equal(shm_reap(s, 0, &r), 0);
	shm_instance_in_t c = svc_inst("C", "1", json, sizeof(json));
	assert_int_equal(shm_register(s, &c), -ENOSPC);
	shm_change_t ch;
	assert_int_equal(shm_changes_next(s, &cur, &ch, NULL), 0);
	assert_int_equal(ch.type, SHM_CHANGE_RELOAD);
	assert_string_equal(ch.service, "A");
	for (int i = 0; i < 64; i++)
		assert_int_equal(shm_register(s, &b), 0);
	assert_int_equal(shm_register(s, &c), 0);
	assert_check(s);
	close_region(s);
}

static void test_changelog_overrun(void **state)
{
	shm_t *s = open_fresh(100, 64);
	shm_cursor_t cur;
	shm_cursor_init(s, &cur);
	shm_instance_in_t in = inst("svc", "i", "{}");
	for (int i = 0; i < 10; i++)
		assert_int_equal(shm_register(s, &in), 0); /* `new` every time */
	shm_change_t ch;
	for (int i = 0; i < 10; i++) {
		assert_int_equal(shm_changes_next(s, &cur, &ch, NULL), 0);
		assert_int_equal(ch.type, SHM_CHANGE_NEW);
	}
	assert_int_equal(shm_changes_next(s, &cur, &ch, NULL), -EAGAIN);
	for (int i = 0; i < 100; i++)
		assert_int_equal(shm_register(s, &in), 0);
	assert_int_equal(shm_changes_next(s, &cur, &ch, NULL), -EOVERFLOW);
	assert_int_equal(shm_changes_next(s, &cur, &ch, NULL), 0);
	assert_int_equal(shm_emit_reload(s, S("svc")), 0);
	while (shm_changes_next(s, &cur, &ch, NULL) == 0 && ch.type != SHM_CHANGE_RELOAD)
		;
	assert_int_equal(ch.type, SHM_CHANGE_RELOAD);
	assert_string_equal(ch.service, "svc");
	assert_int_equal(shm_head_version(s), 111);
	/* Retired blobs were reclaimed as the ring moved on. */
	shm_stats_t st;
	shm_stats(s, &st);
	assert_true(st.arena_used < 70 * 128);
	assert_check(s);
	close_region(s);
}

static void test_capacity(void **state)
{
	shm_params_t p;
	snprintf(region_name, sizeof(region_name), "/artemis-unit-%d", (int)getpid());
	shm_params_default(&p, region_name);
	p.max_instances = 16;
	p.max_services = 4;
	shm_t *s;
	assert_int_equal(shm_open_region(&p, SHM_CREATE_FRESH, &s, NULL), 0);
	char id[16];
	for (int i = 0; i < 16; i++) {
		snprintf(id, sizeof(id), "%d", i);
		shm_instance_in_t in = inst("svc", id, "{}");
		assert_int_equal(shm_register(s, &in), 0);
	}
	shm_instance_in_t in = inst("svc", "x", "{}");
	assert_int_equal(shm_register(s, &in), -ENOSPC);
	/* Same lease key, other exact-case service: moves instance 0 and
	 * creates a service entry each time. */
	const char *cases[] = {"SVC", "Svc", "sVc"};
	for (int i = 0; i < 3; i++) {
		in = inst(cases[i], "0", "{}");
		assert_int_equal(shm_register(s, &in), 0);
	}
	/* SVC and Svc are empty now: new names take their entries; then
	 * there is none left. */
	in = inst("svC", "1", "{}");
	assert_int_equal(shm_register(s, &in), 0);
	in = inst("SVc", "2", "{}");
	assert_int_equal(shm_register(s, &in), 0);
	in = inst("sVC", "3", "{}");
	assert_int_equal(shm_register(s, &in), -ENOSPC);
	assert_check(s);
	close_region(s);
}

/* The index grows with the registry (rebuilding into the spare buffer) and
 * is cleared of tombstones under churn; every phase keeps the invariants. */
static void test_index_growth_and_churn(void **state)
{
	shm_t *s = open_fresh(20000, 0);
	uint32_t first = shm__index_entries(s);
	char id[32];
	for (int i = 0; i < 6000; i++) {
		snprintf(id, sizeof(id), "i%d", i);
		shm_instance_in_t in = inst(i % 7 ? "svc" : "Other", id, "{}");
		assert_int_equal(shm_register(s, &in), 0);
	}
	assert_check(s);
	assert_true(shm__index_entries(s) >= 4 * 6000 / 2 && shm__index_entries(s) > first);
	for (int round = 0; round < 3; round++) {
		for (int i = round; i < 6000; i += 2) {
			snprintf(id, sizeof(id), "i%d", i);
			shm_key_t k = key("us-east", i % 7 ? "svc" : "Other", id);
			assert_int_equal(shm_unregister(s, &k, 0), 0);
		}
		shm_reap_result_t r;
		assert_int_equal(shm_reap(s, 0, &r), 0);
		for (int i = round; i < 6000; i += 2) {
			snprintf(id, sizeof(id), "i%d", i);
			shm_instance_in_t in = inst(i % 7 ? "svc" : "Other", id, "{}");
			assert_int_equal(shm_register(s, &in), 0);
		}
		assert_check(s);
	}
	for (int i = 0; i < 6000; i++) {
		snprintf(id, sizeof(id), "i%d", i);
		shm_key_t k = key("us-east", i % 7 ? "svc" : "Other", id);
		assert_int_equal(shm_heartbeat(s, &k, 0), 0);
	}
	close_region(s);
}

/* A large registry: unregistered leases go in the next pass (hint bitmap);
 * expired ones within a second of passes (a moving window). */
static void test_reap_large_registry(void **state)
{
	shm_params_t p;
	snprintf(region_name, sizeof(region_name), "/artemis-unit-%d", (int)getpid());
	shm_params_default(&p, region_name);
	p.max_instances = 80000;
	p.self_preservation = false;
	shm_t *s;
	assert_int_equal(shm_open_region(&p, SHM_CREATE_FRESH, &s, NULL), 0);
	char id[32];
	for (int i = 0; i < 80000; i++) {
		snprintf(id, sizeof(id), "i%d", i);
		shm_instance_in_t in = inst("svc", id, "{}");
		assert_int_equal(shm_register(s, &in), 0);
	}
	uint64_t t = clock_wall_ms();
	shm_reap_result_t r;
	assert_int_equal(shm_reap(s, t, &r), 0); /* the first pass scans everything */
	for (int i = 0; i < 80000; i += 8000) {
		snprintf(id, sizeof(id), "i%d", i);
		shm_key_t k = key("us-east", "svc", id);
		assert_int_equal(shm_unregister(s, &k, 0), 0);
	}
	assert_int_equal(shm_reap(s, t + 100, &r), 0);
	assert_int_equal(r.evicted_removed, 10);
	/* Everything expires; passes every 100 ms remove it all within ~1 s. */
	uint64_t later = t + 30000, removed = 0;
	for (int pass = 0; pass < 11; pass++) {
		assert_int_equal(shm_reap(s, later + (uint64_t)pass * 100, &r), 0);
		removed += r.expired_removed;
	}
	assert_int_equal(removed, 79990);
	assert_check(s);
	close_region(s);
}

static void test_attach_and_layout(void **state)
{
	shm_t *s = open_fresh(100, 0);
	shm_instance_in_t in = inst("svc", "i", "{}");
	assert_int_equal(shm_register(s, &in), 0);
	shm_t *ro;
	assert_int_equal(shm_attach(region_name, true, &ro), 0);
	assert_int_equal(shm_check(ro, NULL, 0), 0);
	shm_stats_t st;
	shm_stats(ro, &st);
	assert_int_equal(st.instances, 1);
	assert_int_equal(shm_register(ro, &in), -EROFS);
	shm_detach(ro);
	assert_int_equal(shm_attach("/artemis-does-not-exist-x", true, &ro), -ENOENT);
	/* A region of another layout version is refused, never misread. */
	s->hdr->layout_version = SHM_LAYOUT_VERSION + 1;
	assert_int_equal(shm_attach(region_name, false, &ro), -EPROTO);
	shm_params_t p;
	shm_params_default(&p, region_name);
	p.max_instances = 100;
	assert_int_equal(shm_open_region(&p, 0, &ro, NULL), -EPROTO);
	s->hdr->layout_version = SHM_LAYOUT_VERSION;
	/* Re-attach with other parameters: the region's own win. */
	p.max_instances = 5000;
	shm_open_info_t info;
	assert_int_equal(shm_open_region(&p, 0, &ro, &info), 0);
	assert_false(info.created);
	assert_false(info.was_clean);
	shm_get_params(ro, &p);
	assert_int_equal(p.max_instances, 100);
	shm_set_clean(ro, true);
	assert_true(shm_was_clean(s));
	shm_detach(ro);
	p.name = region_name;
	assert_int_equal(shm_open_region(&p, SHM_CREATE_EXCL, &ro, NULL), -EEXIST);
	close_region(s);
}

/* Child: die holding the lock in the middle of a register (undo active,
 * slot half-written, sequences odd). */
static void die_mid_write(shm_t *s, uint32_t slot)
{
	assert_int_equal(shm__lock(s), 0);
	shm__undo_begin(s, slot);
	struct shm_slot_sh *sl = shm__slot(s, slot);
	struct shm_service_sh *sv = &s->services[sl->svc];
	ck_sequence_write_begin(&sv->seq);
	ck_sequence_write_begin(&sl->seq);
	memset(sl->key, 'Z', 16);
	sl->hash ^= 0xdeadbeef;
	sl->svc_next = 77777;
	raise(SIGKILL);
}

static void test_repair_after_writer_death(void **state)
{
	shm_t *s = open_fresh(100, 0);
	shm_instance_in_t a = inst("svc", "a", "{\"a\":1}");
	shm_instance_in_t b = inst("svc", "b", "{\"b\":1}");
	assert_int_equal(shm_register(s, &a), 0);
	assert_int_equal(shm_register(s, &b), 0);
	shm_key_t ka = key("us-east", "svc", "a");
	shm_instance_view_t v;
	assert_int_equal(shm_lookup(s, &ka, 0, &v, NULL), 0);
	pid_t pid = fork();
	if (pid == 0)
		die_mid_write(s, v.slot);
	int st;
	waitpid(pid, &st, 0);
	assert_true(WIFSIGNALED(st));
	/* A reader facing the odd sequence returns busy, never hangs. */
	assert_int_equal(shm_heartbeat(s, &ka, 0), -EBUSY);
	buf_t out = {0};
	assert_int_equal(shm_service_read(s, S("svc"), &out, NULL), -EBUSY);
	/* The next writer repairs. */
	assert_int_equal(shm_repair(s), 1);
	assert_check(s);
	assert_int_equal(shm_heartbeat(s, &ka, 0), 0);
	out.len = 0;
	shm_service_info_t info;
	assert_int_equal(shm_service_read(s, S("svc"), &out, &info), 0);
	assert_int_equal(info.count, 2);
	shm_stats_t sst;
	shm_stats(s, &sst);
	assert_int_equal(sst.repairs, 1);
	assert_int_equal(shm_repair(s), 0);
	/* A writer that died holding the lock without undo is repaired too. */
	pid = fork();
	if (pid == 0) {
		shm__lock(s);
		raise(SIGKILL);
	}
	waitpid(pid, &st, 0);
	assert_int_equal(shm_register(s, &a), 0);
	assert_check(s);
	buf_free(&out);
	close_region(s);
}

static void test_procs_and_counters(void **state)
{
	shm_t *s = open_fresh(100, 0);
	int e = shm_proc_join(s, SHM_ROLE_WORKER, 3);
	assert_int_equal(e, 11);
	uint64_t *c = shm_proc_counters(s);
	c[5] = 42;
	uint64_t sum[SHM_PROC_COUNTERS];
	shm_proc_counters_sum(s, sum);
	assert_int_equal(sum[5], 42);
	shm_proc_beat(s, 1234);
	shm_proc_info_t list[SHM_MAX_PROCS];
	int n = shm_proc_list(s, list, SHM_MAX_PROCS);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].pid, getpid());
	assert_int_equal(list[0].role, SHM_ROLE_WORKER);
	assert_int_equal(list[0].beat_ms, 1234);
	shm_proc_reclaim(s, getpid());
	assert_int_equal(shm_proc_list(s, list, SHM_MAX_PROCS), 0);
	close_region(s);
}

static void test_extend_leases(void **state)
{
	shm_t *s = open_fresh(100, 0);
	shm_instance_in_t in = inst("svc", "i", "{}");
	assert_int_equal(shm_register(s, &in), 0);
	shm_key_t k = key("us-east", "svc", "i");
	uint64_t later = clock_wall_ms() + 30000; /* past its TTL */
	shm_extend_leases(s, 40000);
	assert_int_equal(shm_heartbeat(s, &k, later), 0);
	close_region(s);
}

static int collect_renewals(void *ctx, const shm_key_t *k, uint64_t renewal_ms)
{
	char *out = ctx;
	size_t n = strlen(out);
	snprintf(out + n, 256 - n, "%.*s/%.*s/%.*s;", (int)k->region.len, k->region.ptr,
	         (int)k->service.len, k->service.ptr, (int)k->instance.len, k->instance.ptr);
	assert_true(renewal_ms > 0);
	return 0;
}

static void test_remote_renewals(void **state)
{
	shm_t *s = open_fresh(100, 0);
	shm_instance_in_t local = inst("Svc", "Local", "{}");
	shm_instance_in_t remote = inst("svc", "remote", "{}");
	remote.origin = 3;
	remote.origin_ms = clock_wall_ms();
	assert_int_equal(shm_register(s, &local), 0);
	assert_int_equal(shm_register(s, &remote), 0);
	uint64_t since = clock_wall_ms() - 1000;
	char seen[256] = "";
	assert_int_equal(shm_renewals_scan(s, since, collect_renewals, seen), 0);
	assert_string_equal(seen, "us-east/svc/local;"); /* registered by a peer: not local */
	shm_key_t kr = key("us-east", "svc", "remote");
	shm_key_t kl = key("us-east", "svc", "local");
	uint64_t later = clock_wall_ms() + 5000;
	assert_int_equal(shm_renew_remote(s, &kl, later), 0);
	assert_int_equal(shm_heartbeat(s, &kr, later), 0);
	seen[0] = '\0';
	assert_int_equal(shm_renewals_scan(s, later - 1, collect_renewals, seen), 0);
	assert_string_equal(seen, "us-east/svc/remote;"); /* the local client renewed it */
	shm_key_t unknown = key("us-east", "svc", "nope");
	assert_int_equal(shm_renew_remote(s, &unknown, 0), -ENOENT);
	/* Last writer wins for replicated registers. */
	remote.origin_ms -= 10000;
	assert_int_equal(shm_register(s, &remote), -ESTALE);
	remote.origin_ms += 20000;
	assert_int_equal(shm_register(s, &remote), 0);
	close_region(s);
}

static void test_node_and_peers(void **state)
{
	shm_t *s = open_fresh(100, 0);
	assert_int_equal(shm_node_state(s), SHM_NODE_STARTING);
	shm_node_set_state(s, SHM_NODE_UP);
	assert_int_equal(shm_node_state(s), SHM_NODE_UP);
	shm_peer_t p = {.state = SHM_PEER_UP, .last_seen_ms = 5};
	strcpy(p.name, "node2");
	strcpy(p.url, "http://127.0.0.1:8081");
	shm_peer_t got;
	assert_int_equal(shm_peer_get(s, 2, &got), -ENOENT);
	assert_int_equal(shm_peer_set(s, 2, &p), 0);
	assert_int_equal(shm_peer_get(s, 2, &got), 0);
	assert_string_equal(got.name, "node2");
	assert_int_equal(got.state, SHM_PEER_UP);
	assert_int_equal(shm_peer_set(s, 0, &p), -EINVAL);
	assert_int_equal(shm_peer_get(s, SHM_MAX_NODES, &got), -EINVAL);
	shm_peers_clear(s);
	assert_int_equal(shm_peer_get(s, 2, &got), -ENOENT);
	/* One master per region. */
	int other = 0;
	assert_int_equal(shm_claim_master(s, &other), 0);
	pid_t pid = fork();
	if (pid == 0)
		_exit(shm_claim_master(s, &other) == -EBUSY && other == getppid() ? 0 : 1);
	int st;
	waitpid(pid, &st, 0);
	assert_int_equal(WEXITSTATUS(st), 0);
	shm_release_master(s);
	pid = fork();
	if (pid == 0)
		_exit(shm_claim_master(s, &other) == 0 ? 0 : 1); /* dies holding it */
	waitpid(pid, &st, 0);
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(shm_claim_master(s, &other), 0); /* a dead claimant's is free */
	close_region(s);
}

/* Exec'd child: attach by name, check, and find what the parent wrote. */
static int attach_child(const char *name, int expect)
{
	shm_t *s;
	if (shm_attach(name, false, &s))
		return 10;
	if (shm_check(s, NULL, 0))
		return 11;
	shm_stats_t st;
	shm_stats(s, &st);
	if ((int)st.instances != expect)
		return 12;
	char id[16];
	for (int i = 0; i < expect; i++) {
		snprintf(id, sizeof(id), "%d", i);
		shm_key_t k = key("us-east", "svc", id);
		if (shm_heartbeat(s, &k, 0))
			return 13;
	}
	shm_detach(s);
	return 0;
}

/* One tampering per case: what a local attacker (or a bug) could write into
 * a header, and the words the refusal must use. */
static const char *tamper(struct shm_header_sh *h, int which)
{
	switch (which) {
	case 0:
		h->slot_bump = h->max_instances + 1;
		return "slot_bump";
	case 1:
		h->sec[SHM_SEC_SLOTS].off += 4096;
		return "section instance slots";
	case 2:
		h->sec[SHM_SEC_ARENA].reserved = h->sec[SHM_SEC_ARENA].size + 4096;
		return "section blob arena";
	case 3:
		h->index_size *= 2;
		return "index or arena sizes";
	case 4:
		h->arena_free[3] = h->arena_bump + 64;
		return "free list 3";
	case 5:
		h->index_mask[1] = h->index_size * 2 - 1;
		return "index buffer 1";
	case 6:
		h->svc_used = h->max_services + 1;
		return "svc_used";
	case 7:
		h->head = h->sec[SHM_SEC_CHANGELOG].reserved / sizeof(struct shm_change_sh) + 5;
		return "change log head";
	case 8:
		h->preserve[0].pos = 9999;
		return "bucket";
	case 9:
		memset(h->name, 'x', sizeof(h->name));
		return "not terminated";
	case 10:
		h->retire_head = SHM_ARENA_START + 1;
		return "retire list";
	case 11:
		h->undo.active = 1;
		h->undo.slot = h->slot_bump + 5;
		return "undo record";
	case 12:
		h->ttl_ms[SHM_MGR_NORMAL] = 5;
		return "parameters out of range";
	case 13:
		h->sec[SHM_SEC_SVC_INDEX].size -= 4096;
		return "section service index";
	case 14:
		h->arena_bump = h->sec[SHM_SEC_ARENA].reserved;
		return "arena_bump";
	}
	return NULL;
}

/* Issue 12 item 1: every field of the header that names memory is checked
 * against the file and the layout before use; a region failing any check is
 * refused (-EBADMSG) and says what failed; the untouched region attaches.
 * (A read-only attach, which may meet running writers, leaves the writers'
 * own lists and counters to shm_check.) */
static void test_tampered_header_refused(void **state)
{
	shm_t *s = open_fresh(1000, 0);
	shm_instance_in_t in = inst("svc", "a", "{}");
	assert_int_equal(shm_register(s, &in), 0);
	shm_key_t k = key("us-east", "svc", "a");
	assert_int_equal(shm_unregister(s, &k, 0), 0);
	shm_reap_result_t r;
	assert_int_equal(shm_reap(s, 0, &r), 0);
	struct shm_header_sh saved;
	memcpy(&saved, s->hdr, sizeof(saved));
	shm_t *ro = NULL; /* attached before: check must see what changed */
	assert_int_equal(shm_attach(region_name, true, &ro), 0);
	for (int which = 0;; which++) {
		struct shm_header_sh *h = s->hdr;
		const char *want = tamper(h, which);
		if (!want)
			break;
		shm_t *t = NULL;
		int rc = shm_attach(region_name, false, &t);
		if (rc != -EBADMSG || !strstr(shm_error_detail(), want))
			fail_msg("tampering %d: attach %d, \"%s\"; want -EBADMSG and \"%s\"", which,
			         rc, shm_error_detail(), want);
		char msg[256];
		assert_int_equal(shm_check(ro, msg, sizeof(msg)), -EIO);
		assert_non_null(strstr(msg, "header: "));
		memcpy(h, &saved, sizeof(saved));
		assert_int_equal(shm_attach(region_name, true, &t), 0);
		shm_detach(t);
	}
	shm_detach(ro);
	assert_check(s);
	close_region(s);
}

/* Issue 12 item 1: the region is made with O_EXCL and mode 0600; one made
 * by another user (a throwaway uid, in a forked child) or writable by
 * others is refused, and --fresh does not discard it. */
static void test_foreign_region_refused(void **state)
{
	if (geteuid() != 0) {
		printf("skipped: needs root to make a region as another uid\n");
		return;
	}
	shm_t *s = open_fresh(64, 0);
	char path[96];
	snprintf(path, sizeof(path), "/dev/shm%s", region_name);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_uid, geteuid());
	close_region(s);

	shm_params_t p;
	shm_params_default(&p, region_name);
	p.max_instances = 64;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		shm_t *mine = NULL;
		if (setresgid(54321, 54321, 54321) || setresuid(54321, 54321, 54321))
			_exit(2);
		_exit(shm_open_region(&p, SHM_CREATE_EXCL, &mine, NULL) == 0 ? 0 : 1);
	}
	int wst;
	assert_int_equal(waitpid(pid, &wst, 0), pid);
	assert_true(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
	shm_t *t = NULL;
	assert_int_equal(shm_open_region(&p, 0, &t, NULL), -EPERM);
	assert_non_null(strstr(shm_error_detail(), "owned by uid 54321, not by this user"));
	assert_int_equal(shm_attach(region_name, true, &t), -EPERM);
	assert_int_equal(shm_open_region(&p, SHM_CREATE_FRESH, &t, NULL), -EPERM);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, 54321);
	assert_int_equal(shm_destroy(region_name), 0);

	s = open_fresh(64, 0);
	shm_detach(s);
	assert_int_equal(chmod(path, 0666), 0);
	assert_int_equal(shm_open_region(&p, 0, &t, NULL), -EPERM);
	assert_non_null(strstr(shm_error_detail(), "lets other users write it"));
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(shm_open_region(&p, 0, &t, NULL), 0);
	close_region(t);
}

/* A region on a memfd (the fuzz target's way): made, attached, refused
 * when its mode lets others write. */
static void test_region_on_a_memfd(void **state)
{
	int fd = memfd_create("artemis-unit", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0600), 0);
	shm_params_t p;
	shm_params_default(&p, "/artemis-memfd");
	p.max_instances = 64;
	shm_t *s = NULL, *t = NULL;
	assert_int_equal(shm_create_fd(fd, &p, &s), 0);
	shm_instance_in_t in = inst("svc", "a", "{}");
	assert_int_equal(shm_register(s, &in), 0);
	assert_int_equal(shm_attach_fd(fd, true, &t), 0);
	assert_check(t);
	shm_detach(t);
	assert_int_equal(fchmod(fd, 0620), 0);
	assert_int_equal(shm_attach_fd(fd, true, &t), -EPERM);
	shm_detach(s);
	close(fd);
}

static void test_exec_attach(void **state)
{
	shm_t *s = open_fresh(1000, 0);
	char id[16];
	for (int i = 0; i < 500; i++) {
		snprintf(id, sizeof(id), "%d", i);
		shm_instance_in_t in = inst("svc", id, "{}");
		assert_int_equal(shm_register(s, &in), 0);
	}
	pid_t pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", "test_shm", "--attach-child", region_name, "500", NULL);
		_exit(99);
	}
	int st;
	waitpid(pid, &st, 0);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	close_region(s);
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--attach-child") == 0)
		return attach_child(argv[2], atoi(argv[3]));
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_register_lookup_case),
	    cmocka_unit_test(test_make_key_random),
	    cmocka_unit_test(test_key_lengths_and_batches),
	    cmocka_unit_test(test_validation_errors),
	    cmocka_unit_test(test_heartbeat),
	    cmocka_unit_test(test_unregister_and_reap),
	    cmocka_unit_test(test_expiry_and_self_preservation),
	    cmocka_unit_test(test_self_preservation_disabled),
	    cmocka_unit_test(test_services),
	    cmocka_unit_test(test_foreach),
	    cmocka_unit_test(test_service_table_reuse),
	    cmocka_unit_test(test_service_reuse_waits_for_reloads),
	    cmocka_unit_test(test_changelog_overrun),
	    cmocka_unit_test(test_capacity),
	    cmocka_unit_test(test_index_growth_and_churn),
	    cmocka_unit_test(test_reap_large_registry),
	    cmocka_unit_test(test_attach_and_layout),
	    cmocka_unit_test(test_repair_after_writer_death),
	    cmocka_unit_test(test_procs_and_counters),
	    cmocka_unit_test(test_extend_leases),
	    cmocka_unit_test(test_remote_renewals),
	    cmocka_unit_test(test_node_and_peers),
	    cmocka_unit_test(test_exec_attach),
	    cmocka_unit_test(test_tampered_header_refused),
	    cmocka_unit_test(test_foreign_region_refused),
	    cmocka_unit_test(test_region_on_a_memfd),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	shm_destroy(region_name); /* a failed test leaves its region behind */
	return failed;
}

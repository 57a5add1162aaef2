/*
 * test_config.c - config/config.c: the shipped file equals the built-in
 * defaults, every key parses, and every kind of error is reported as
 * "file:line: message".
 *
 * Run from the repository root (make unit), or set ARTEMIS_CONF to the path
 * of conf/artemis.conf.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artemis/config.h"

static const char *conf_path(void)
{
	const char *p = getenv("ARTEMIS_CONF");
	return p ? p : "conf/artemis.conf";
}

/* Write text to a new temporary file; the caller unlinks it. */
static void write_tmp(char *path, size_t len, const char *text)
{
	snprintf(path, len, "/tmp/artemis-test-config-%d-XXXXXX", (int)getpid());
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t n = strlen(text);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	close(fd);
}

/* Load text over the defaults; returns config_load's result, err filled. */
static int load_text(config_t *cfg, const char *text, char *err, size_t err_len, char *path,
                     size_t path_len)
{
	write_tmp(path, path_len, text);
	config_defaults(cfg);
	err[0] = '\0';
	int rc = config_load(cfg, path, err, err_len);
	unlink(path);
	return rc;
}

/* The error must read "<path>:<line>: ...<needle>...". */
static void expect_error(const char *text, int line, const char *needle)
{
	config_t cfg;
	char err[512], path[128], prefix[160];
	assert_int_equal(load_text(&cfg, text, err, sizeof(err), path, sizeof(path)), -1);
	snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
	if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, needle))
		fail_msg("want \"%s...%s...\", got \"%s\"", prefix, needle, err);
}

#define EQ_STR(f) assert_string_equal(a->f, b->f)
#define EQ_NUM(f) assert_int_equal(a->f, b->f)

static void compare_configs(const config_t *a, const config_t *b)
{
	EQ_STR(name), EQ_STR(region), EQ_STR(zone), EQ_STR(listen);
	EQ_NUM(workers);
	EQ_STR(data_dir);
	EQ_NUM(allow_registry_from_other_zone), EQ_NUM(allow_discovery_from_other_zone);
	EQ_STR(user);
	EQ_STR(shm_name);
	EQ_NUM(max_instances), EQ_NUM(max_services), EQ_NUM(changelog_size);
	EQ_NUM(lease_ttl_ms), EQ_NUM(legacy_lease_ttl_ms), EQ_NUM(reap_interval_ms);
	EQ_NUM(self_preservation), EQ_NUM(preserve_window_ms), EQ_NUM(legacy_preserve_window_ms);
	EQ_NUM(max_header_bytes), EQ_NUM(max_body_bytes), EQ_NUM(idle_timeout_ms);
	EQ_NUM(header_timeout_ms), EQ_NUM(body_timeout_ms), EQ_NUM(write_timeout_ms);
	EQ_NUM(output_budget_bytes), EQ_NUM(max_response_bytes);
	EQ_STR(cors_origins);
	EQ_NUM(rate_limit), EQ_NUM(response_cache_bytes);
	EQ_NUM(lock_wait_ms), EQ_NUM(lock_stall_ms);
	EQ_NUM(max_connections), EQ_NUM(console);
	EQ_STR(console_dir);
	EQ_NUM(ws_session_ttl_ms), EQ_NUM(ws_max_message_bytes), EQ_NUM(ws_max_output_bytes);
	EQ_STR(log_file), EQ_STR(log_level);
	EQ_STR(cluster_listen), EQ_STR(cluster_key);
	EQ_NUM(bootstrap_timeout_ms), EQ_NUM(digest_interval_ms);
	EQ_NUM(cluster_encrypt), EQ_NUM(njava_peers);
	EQ_NUM(npeers);
}

/* Load the shipped file over garbage: a key missing from the file would
 * keep the garbage and differ from the defaults. */
static void test_shipped_file_equals_defaults(void **state)
{
	(void)state;
	config_t file, def;
	char err[512];
	memset(&file, 0xa5, sizeof(file));
	file.npeers = 0;
	file.cluster_encrypt = false; /* a bool must hold 0 or 1 */
	if (config_load(&file, conf_path(), err, sizeof(err)) != 0)
		fail_msg("%s", err);
	config_defaults(&def);
	compare_configs(&file, &def);
	assert_string_equal(file.path, conf_path());

	/* The whole struct too (so a field added to config_t without a
	 * comparison above still has to match), once strings are normalised. */
	config_t again;
	config_defaults(&again);
	assert_int_equal(config_load(&again, conf_path(), err, sizeof(err)), 0);
	memset(again.path, 0, sizeof(again.path));
	assert_memory_equal(&again, &def, sizeof(def));
}

static void test_defaults_match_the_design(void **state)
{
	(void)state;
	config_t c;
	config_defaults(&c);
	assert_string_equal(c.region, "us-east");
	assert_string_equal(c.zone, "zone-1");
	assert_string_equal(c.listen, "0.0.0.0:8080");
	assert_int_equal(c.workers, 0);
	assert_string_equal(c.data_dir, "./data");
	assert_int_equal(c.max_instances, 1000000);
	assert_int_equal(c.lease_ttl_ms, 20000);
	assert_int_equal(c.legacy_lease_ttl_ms, 90000);
	assert_int_equal(c.reap_interval_ms, 100);
	assert_true(c.self_preservation);
	assert_int_equal(c.max_body_bytes, 8 * 1024 * 1024);
	assert_string_equal(c.cluster_listen, "0.0.0.0:9090");
	assert_string_equal(c.cluster_key, "change-me");
	assert_true(c.cluster_encrypt);
	assert_int_equal(c.njava_peers, 0);
	assert_int_equal(c.npeers, 0);
}

static void test_every_key_parses(void **state)
{
	(void)state;
	config_t c;
	char err[512], path[128];
	const char *text =
	    "[node]\n"
	    "name = n1\nregion = eu-west\nzone = z9\nlisten = 127.0.0.1:18080\n"
	    "workers = 3\ndata_dir = /tmp/x\n"
	    "allow_registry_from_other_zone = off\nallow_discovery_from_other_zone = no\n"
	    "user = artemis\n"
	    "[registry]\nshm_name = /a-b\nmax_instances = 5000\nmax_services = 100\n"
	    "changelog_size = 4096\nlease_ttl_ms = 3000\nlegacy_lease_ttl_ms = 60000\n"
	    "reap_interval_ms = 50\nself_preservation = false\npreserve_window_ms = 15000\n"
	    "legacy_preserve_window_ms = 70000\nlock_wait_ms = 250\nlock_stall_ms = 4000\n"
	    "[http]\nmax_header_bytes = 4096\nmax_body_bytes = 100000\n"
	    "idle_timeout_ms = 2000\nmax_connections = 7\n"
	    "[websocket]\nsession_ttl_ms = 9000\nmax_message_bytes = 1000\n"
	    "max_output_bytes = 8192\n"
	    "[log]\nfile = /tmp/a.log ; comment\nlevel = DEBUG\n"
	    "[cluster]\nlisten = [::1]:9191\nkey = s3cret\nbootstrap_timeout_ms = 0\n"
	    "digest_interval_ms = 2000\nencrypt = off\n"
	    "java_peers = 10.0.0.5  192.168.0.0/16\t::1 fd00::/8\n"
	    "peer = n2 z1 http://10.0.0.2:8080 10.0.0.2:9090\n"
	    "peer = n3  z2\thttps://h3:443   h3:9090\n";
	if (load_text(&c, text, err, sizeof(err), path, sizeof(path)) != 0)
		fail_msg("%s", err);
	assert_string_equal(c.name, "n1");
	assert_string_equal(c.region, "eu-west");
	assert_string_equal(c.zone, "z9");
	assert_string_equal(c.listen, "127.0.0.1:18080");
	assert_int_equal(c.workers, 3);
	assert_string_equal(c.data_dir, "/tmp/x");
	assert_false(c.allow_registry_from_other_zone);
	assert_false(c.allow_discovery_from_other_zone);
	assert_string_equal(c.user, "artemis");
	assert_string_equal(c.shm_name, "/a-b");
	assert_int_equal(c.max_instances, 5000);
	assert_int_equal(c.max_services, 100);
	assert_int_equal(c.changelog_size, 4096);
	assert_int_equal(c.lease_ttl_ms, 3000);
	assert_int_equal(c.legacy_lease_ttl_ms, 60000);
	assert_int_equal(c.reap_interval_ms, 50);
	assert_false(c.self_preservation);
	assert_int_equal(c.preserve_window_ms, 15000);
	assert_int_equal(c.legacy_preserve_window_ms, 70000);
	assert_int_equal(c.lock_wait_ms, 250);
	assert_int_equal(c.lock_stall_ms, 4000);
	assert_int_equal(c.max_header_bytes, 4096);
	assert_int_equal(c.max_body_bytes, 100000);
	assert_int_equal(c.idle_timeout_ms, 2000);
	assert_int_equal(c.max_connections, 7);
	assert_int_equal(c.ws_session_ttl_ms, 9000);
	assert_int_equal(c.ws_max_message_bytes, 1000);
	assert_int_equal(c.ws_max_output_bytes, 8192);
	assert_string_equal(c.log_file, "/tmp/a.log");
	assert_string_equal(c.log_level, "DEBUG");
	assert_string_equal(c.cluster_listen, "[::1]:9191");
	assert_string_equal(c.cluster_key, "s3cret");
	assert_int_equal(c.bootstrap_timeout_ms, 0);
	assert_int_equal(c.digest_interval_ms, 2000);
	assert_false(c.cluster_encrypt);
	assert_int_equal(c.njava_peers, 4);
	assert_int_equal(c.npeers, 2);
	assert_string_equal(c.peers[0].name, "n2");
	assert_string_equal(c.peers[0].zone, "z1");
	assert_string_equal(c.peers[0].url, "http://10.0.0.2:8080");
	assert_string_equal(c.peers[0].repl_addr, "10.0.0.2:9090");
	assert_string_equal(c.peers[1].name, "n3");
	assert_string_equal(c.peers[1].zone, "z2");
	assert_string_equal(c.peers[1].url, "https://h3:443");
	assert_string_equal(c.peers[1].repl_addr, "h3:9090");
}

static void test_booleans(void **state)
{
	(void)state;
	const char *yes[] = {"on", "true", "yes", "1", "ON", "True"};
	const char *no[] = {"off", "false", "no", "0", "OFF", "No"};
	for (size_t i = 0; i < 6; i++) {
		config_t c;
		char err[256];
		config_defaults(&c);
		assert_int_equal(
		    config_set(&c, "registry", "self_preservation", no[i], err, sizeof(err)), 0);
		assert_false(c.self_preservation);
		assert_int_equal(
		    config_set(&c, "registry", "self_preservation", yes[i], err, sizeof(err)), 0);
		assert_true(c.self_preservation);
	}
}

static void test_error_unknown_section(void **state)
{
	(void)state;
	expect_error("[node]\nregion = a\n\n[nodes]\nzone = b\n", 5, "unknown section [nodes]");
}

static void test_error_unknown_key(void **state)
{
	(void)state;
	expect_error("[node]\nregion = a\nregoin = b\n", 3, "unknown key 'regoin' in [node]");
	/* a key of another section is unknown here */
	expect_error("[http]\nlease_ttl_ms = 20000\n", 2, "unknown key 'lease_ttl_ms' in [http]");
	/* keys before any section */
	expect_error("workers = 1\n", 1, "unknown section []");
}

/* [http] cors_origins: "*", a list of origins, or empty (issue 12 item 5). */
static void test_cors_origins(void **state)
{
	(void)state;
	config_t c;
	char err[512], path[128];
	assert_int_equal(load_text(&c,
	                           "[http]\ncors_origins = https://a.example, "
	                           "http://localhost:3000  http://[::1]:8080\n",
	                           err, sizeof(err), path, sizeof(path)),
	                 0);
	assert_string_equal(c.cors_origins,
	                    "https://a.example, http://localhost:3000  http://[::1]:8080");
	assert_int_equal(
	    load_text(&c, "[http]\ncors_origins =\n", err, sizeof(err), path, sizeof(path)), 0);
	assert_string_equal(c.cors_origins, "");
	expect_error("[http]\ncors_origins = https://a.example/path\n", 2, "is not an origin");
	expect_error("[http]\ncors_origins = a.example\n", 2, "'a.example' is not an origin");
	expect_error("[http]\ncors_origins = * https://a.example\n", 2, "'*' is not an origin");
	expect_error("[http]\ncors_origins = https://*.example\n", 2, "is not an origin");
}

static void test_error_invalid_values(void **state)
{
	(void)state;
	expect_error("[registry]\nlease_ttl_ms = 999\n", 2,
	             "lease_ttl_ms 999 out of range 1000..604800000");
	expect_error("[registry]\nlegacy_lease_ttl_ms = 999\n", 2,
	             "legacy_lease_ttl_ms 999 out of range 1000..604800000");
	/* What the region cannot count is refused, never clamped. */
	expect_error("[registry]\npreserve_window_ms = 5000\n", 2,
	             "preserve_window_ms 5000 out of range 10000..300000");
	expect_error("[registry]\npreserve_window_ms = 12500\n", 2,
	             "preserve_window_ms 12500 is not a whole number of seconds");
	expect_error("[registry]\nlegacy_preserve_window_ms = 400000\n", 2,
	             "legacy_preserve_window_ms 400000 out of range 10000..300000");
	expect_error("[registry]\nlock_wait_ms = 5\n", 2, "lock_wait_ms 5 out of range 10..60000");
	expect_error("[registry]\nlock_stall_ms = 99\n", 2,
	             "lock_stall_ms 99 out of range 100..3600000");
	expect_error("[node]\nuser = root user\n", 2, "only letters, digits");
	expect_error("[registry]\nlease_ttl_ms = 604800001\n", 2, "out of range");
	expect_error("[registry]\nlease_ttl_ms = 20s\n", 2, "not a non-negative integer");
	expect_error("[registry]\nlease_ttl_ms = -1\n", 2, "not a non-negative integer");
	expect_error("[registry]\nlease_ttl_ms = 99999999999999999999999\n", 2,
	             "not a non-negative integer");
	expect_error("[registry]\nlease_ttl_ms =\n", 2, "not a non-negative integer");
	expect_error("[registry]\nself_preservation = maybe\n", 2,
	             "not on/off/true/false/yes/no/1/0");
	expect_error("[registry]\nchangelog_size = 5000\n", 2, "not a power of 2");
	expect_error("[registry]\nshm_name = artemis\n", 2, "must be '/' followed by");
	expect_error("[registry]\nshm_name = /a/b\n", 2, "must be '/' followed by");
	expect_error("[node]\nworkers = 29\n", 2, "workers 29 out of range 0..28");
	expect_error("[node]\nlisten = 8080\n", 2, "not host:port");
	expect_error("[node]\nlisten = host:0\n", 2, "not host:port");
	expect_error("[node]\nlisten = host:65536\n", 2, "not host:port");
	expect_error("[node]\nlisten = ::1:80\n", 2, "not host:port");
	expect_error("[node]\nregion =\n", 2, "region must not be empty");
	expect_error("[node]\nname = a b\n", 2, "only letters, digits");
	expect_error("[node]\ndata_dir =\n", 2, "data_dir must not be empty");
	expect_error("[log]\nlevel = loud\n", 2, "level 'loud' is not debug/info/warn/error");
	expect_error("[cluster]\nkey =\n", 2, "key must not be empty");
	expect_error("[cluster]\npeer = n2 z1 http://h:1\n", 2,
	             "want \"name zone http-url replication-addr\"");
	expect_error("[cluster]\npeer = n2 z1 http://h:1 h:2 extra\n", 2, "want \"name zone");
	expect_error("[cluster]\npeer = n2 z1 ftp://h:1 h:2\n", 2, "must start with http://");
	expect_error("[cluster]\npeer = n2 z1 http://h:1 h\n", 2,
	             "replication address 'h' is not host:port");
	expect_error("[cluster]\npeer = n2 z1 http://h:1 h:2\npeer = n2 z1 http://h:3 h:4\n", 3,
	             "peer n2 is listed twice");
	expect_error("[cluster]\nencrypt = maybe\n", 2, "not on/off");
	expect_error("[cluster]\njava_peers = 10.0.0.1 peer-host\n", 2,
	             "java_peers 'peer-host' is not an IP address");
	expect_error("[cluster]\njava_peers = 10.0.0.0/33\n", 2, "java_peers '10.0.0.0/33'");
	expect_error("[cluster]\njava_peers = ::/129\n", 2, "java_peers '::/129'");
	expect_error("[cluster]\njava_peers = 10.0.0.0/\n", 2, "java_peers '10.0.0.0/'");
	expect_error("[cluster]\njava_peers = /8\n", 2, "java_peers '/8'");
}

/* [cluster] java_peers: addresses and networks, v4 (also as v4-mapped v6,
 * as a dual-stack listener reports them) and v6. */
static void test_java_peers_match(void **state)
{
	config_t c;
	char err[256];

	(void)state;
	config_defaults(&c);
	assert_false(config_net_match(c.java_peers, c.njava_peers, "127.0.0.1"));
	assert_int_equal(config_set(&c, "cluster", "java_peers",
	                            "10.1.2.3 192.168.0.0/16 172.16.0.0/12 fd00::/8 ::1 0.0.0.0/0",
	                            err, sizeof(err)),
	                 0);
	assert_int_equal(c.njava_peers, 6);
	c.njava_peers = 5; /* without 0.0.0.0/0 */
	static const char *const in[] = {"10.1.2.3",   "::ffff:10.1.2.3", "192.168.255.1",
	                                 "172.31.0.9", "fd12::7",         "::1"};
	static const char *const out[] = {"10.1.2.4", "192.169.0.1", "172.32.0.1",
	                                  "fe80::1",  "::2",         "::ffff:10.1.2.4",
	                                  "",         "nonsense",    NULL};
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		if (!config_net_match(c.java_peers, c.njava_peers, in[i]))
			fail_msg("%s should match", in[i]);
	for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
		if (config_net_match(c.java_peers, c.njava_peers, out[i]))
			fail_msg("%s should not match", out[i] ? out[i] : "NULL");
	c.njava_peers = 6; /* every IPv4 address */
	assert_true(config_net_match(c.java_peers, c.njava_peers, "8.8.8.8"));
	assert_false(config_net_match(c.java_peers, c.njava_peers, "2001:db8::1"));
	/* empty: off again */
	assert_int_equal(config_set(&c, "cluster", "java_peers", "", err, sizeof(err)), 0);
	assert_int_equal(c.njava_peers, 0);
}

/* With peers, the default key and keys shorter than 16 bytes are refused,
 * naming the key but never printing it. */
static void test_cluster_key_checked_with_peers(void **state)
{
	config_t c;
	char err[512];

	(void)state;
	config_defaults(&c);
	assert_int_equal(config_finish(&c, err, sizeof(err)), 0); /* no peers: unused */
	assert_int_equal(config_set(&c, "cluster", "peer", "n2 z http://a:1 a:2", err, sizeof(err)),
	                 0);
	assert_int_equal(config_finish(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "[cluster] key is the default 'change-me'"));
	assert_int_equal(config_set(&c, "cluster", "key", "fifteen-bytes-k", err, sizeof(err)), 0);
	assert_int_equal(config_finish(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "[cluster] key is shorter than 16 bytes"));
	assert_null(strstr(err, "fifteen-bytes-k"));
	assert_int_equal(config_set(&c, "cluster", "key", "sixteen-bytes-ky", err, sizeof(err)), 0);
	assert_int_equal(config_finish(&c, err, sizeof(err)), 0);
}

static void test_error_duplicate_key(void **state)
{
	(void)state;
	expect_error("[node]\nzone = a\n[registry]\n[node]\nzone = b\n", 5,
	             "duplicate key 'zone' in [node]");
}

static void test_error_syntax(void **state)
{
	(void)state;
	expect_error("[node]\nregion us-east\n", 2, "syntax error");
	expect_error("[node\n", 1, "syntax error");
	/* the first error is the one reported */
	expect_error("[node]\nfoo = 1\nbar = 2\n", 2, "unknown key 'foo'");
}

static void test_error_long_line(void **state)
{
	(void)state;
	char text[600];
	snprintf(text, sizeof(text), "[node]\ndata_dir = /%0300d\n", 0);
	expect_error(text, 2, "line longer than");
}

static void test_error_missing_file(void **state)
{
	(void)state;
	config_t c;
	char err[256];
	config_defaults(&c);
	assert_int_equal(config_load(&c, "/nonexistent/artemis.conf", err, sizeof(err)), -1);
	assert_string_equal(err, "/nonexistent/artemis.conf: No such file or directory");
}

static void test_config_set(void **state)
{
	(void)state;
	config_t c;
	char err[256];
	config_defaults(&c);
	assert_int_equal(config_set(&c, "node", "workers", "4", err, sizeof(err)), 0);
	assert_int_equal(c.workers, 4);
	assert_int_equal(config_set(&c, "node", "workers", "x", err, sizeof(err)), -1);
	assert_string_equal(err, "workers 'x' is not a non-negative integer");
	assert_int_equal(config_set(&c, "node", "nope", "1", err, sizeof(err)), -1);
	assert_string_equal(err, "unknown key 'nope' in [node]");
}

static void test_finish_derives_names(void **state)
{
	(void)state;
	config_t c;
	char err[256];
	config_defaults(&c);
	strcpy(c.listen, "127.0.0.1:18080");
	assert_int_equal(config_finish(&c, err, sizeof(err)), 0);
	assert_string_equal(c.name, "127.0.0.1-18080");
	assert_string_equal(c.shm_name, "/artemis-127.0.0.1-18080");
	assert_true(c.workers >= 1 && c.workers <= 28);

	/* wildcard: the short host name */
	char host[256];
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	host[strcspn(host, ".")] = '\0';
	char want[320];
	snprintf(want, sizeof(want), "%.50s-8080", host);
	config_defaults(&c);
	assert_int_equal(config_finish(&c, err, sizeof(err)), 0);
	if (strlen(host) <= 50)
		assert_string_equal(c.name, want);

	/* set values are kept */
	config_defaults(&c);
	strcpy(c.name, "n1");
	strcpy(c.shm_name, "/x");
	c.workers = 2;
	assert_int_equal(config_finish(&c, err, sizeof(err)), 0);
	assert_string_equal(c.name, "n1");
	assert_string_equal(c.shm_name, "/x");
	assert_int_equal(c.workers, 2);

	/* a peer with our name */
	config_defaults(&c);
	assert_int_equal(config_set(&c, "node", "name", "n1", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "cluster", "peer", "n1 z http://a:1 a:2", err, sizeof(err)),
	                 0);
	assert_int_equal(config_finish(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "peer n1 has this node's own name"));
}

static void test_split_hostport(void **state)
{
	(void)state;
	char host[64];
	int port;
	assert_int_equal(config_split_hostport("127.0.0.1:80", host, sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 80);
	assert_int_equal(config_split_hostport("[::1]:443", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 443);
	assert_int_equal(config_split_hostport(":8080", host, sizeof(host), &port), 0);
	assert_string_equal(host, "0.0.0.0");
	assert_int_equal(config_split_hostport("*:8080", host, sizeof(host), &port), 0);
	assert_string_equal(host, "0.0.0.0");
	assert_int_equal(config_split_hostport("localhost:1", host, sizeof(host), &port), 0);
	assert_int_equal(config_split_hostport("localhost", host, sizeof(host), &port), -1);
	assert_int_equal(config_split_hostport("h:", host, sizeof(host), &port), -1);
	assert_int_equal(config_split_hostport("h:1x", host, sizeof(host), &port), -1);
	assert_int_equal(config_split_hostport("[::1:80", host, sizeof(host), &port), -1);
	assert_int_equal(config_split_hostport("a-very-long-host-name:1", host, 8, &port), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cors_origins),
	    cmocka_unit_test(test_shipped_file_equals_defaults),
	    cmocka_unit_test(test_defaults_match_the_design),
	    cmocka_unit_test(test_every_key_parses),
	    cmocka_unit_test(test_booleans),
	    cmocka_unit_test(test_error_unknown_section),
	    cmocka_unit_test(test_error_unknown_key),
	    cmocka_unit_test(test_error_invalid_values),
	    cmocka_unit_test(test_error_duplicate_key),
	    cmocka_unit_test(test_error_syntax),
	    cmocka_unit_test(test_error_long_line),
	    cmocka_unit_test(test_error_missing_file),
	    cmocka_unit_test(test_config_set),
	    cmocka_unit_test(test_finish_derives_names),
	    cmocka_unit_test(test_split_hostport),
	    cmocka_unit_test(test_java_peers_match),
	    cmocka_unit_test(test_cluster_key_checked_with_peers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

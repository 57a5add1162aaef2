/*
 * test_config_env.c - the ARTEMIS_<SECTION>_<KEY> environment overrides
 * (config_apply_env in config/config.c) and their place between the file
 * and the command line (master_load_config).
 *
 * Every key of the shipped conf/artemis.conf is tried: a value that the key
 * accepts and that differs from its default is set once through the
 * environment and once through config_set(); the two configurations must be
 * identical and differ from the defaults.  The values are derived from the
 * defaults, so a key added later is covered without editing this file.
 *
 * Run from the repository root (make unit), or set ARTEMIS_CONF.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../master/master.h"
#include "artemis/config.h"

#define MAX_KEYS 128

typedef struct {
	char section[32];
	char key[64];
	char value[CONFIG_STR]; /* the shipped default */
} shipped_key_t;

static const char *conf_path(void)
{
	const char *p = getenv("ARTEMIS_CONF");
	return p ? p : "conf/artemis.conf";
}

static void trim(char *s)
{
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	size_t lead = strspn(s, " \t");
	memmove(s, s + lead, strlen(s + lead) + 1);
}

/* Every "key = value" of the shipped file, and the commented example of
 * the repeatable peer key ("# peer = ..."). */
static int shipped_keys(shipped_key_t *out, int max)
{
	FILE *f = fopen(conf_path(), "r");
	assert_non_null(f);
	char line[512], section[32] = "";
	int n = 0;
	while (fgets(line, sizeof(line), f)) {
		char *l = line;
		if (*l == '[') {
			assert_int_equal(sscanf(l, "[%31[^]]]", section), 1);
			continue;
		}
		if (strncmp(l, "# peer =", 8) == 0)
			l += 2;
		else if (*l == '#' || *l == ';' || isspace((unsigned char)*l))
			continue;
		char *eq = strchr(l, '=');
		if (!eq)
			continue;
		*eq = '\0';
		char *val = eq + 1;
		char *semi = strstr(val, " ;");
		if (semi)
			*semi = '\0';
		assert_true(n < max);
		snprintf(out[n].section, sizeof(out[n].section), "%.31s", section);
		snprintf(out[n].key, sizeof(out[n].key), "%.63s", l);
		snprintf(out[n].value, sizeof(out[n].value), "%.255s", val);
		trim(out[n].key);
		trim(out[n].value);
		n++;
	}
	fclose(f);
	return n;
}

static void env_name(const shipped_key_t *k, char *out, size_t len)
{
	snprintf(out, len, "ARTEMIS_%.31s_%.63s", k->section, k->key);
	for (char *c = out; *c; c++)
		*c = (char)toupper((unsigned char)*c);
}

/* A value the key accepts that changes the configuration: variations of the
 * default first, then values of every kind for keys empty by default. */
static int changing_value(const shipped_key_t *k, char *out, size_t len)
{
	static const char *const generic[] = {
	    "env-value",
	    "/env-value",
	    "127.0.0.1:18181",
	    "debug",
	    "n2 zone-1 http://10.0.0.2:8080 10.0.0.2:9090",
	    "http://env.example:8080",
	    "10.0.0.0/8 ::1", /* addresses ([cluster] java_peers) */
	};
	char cand[20][CONFIG_STR];
	int n = 0;
	char *end;
	unsigned long long d = strtoull(k->value, &end, 10);
	if (k->value[0] && *end == '\0') {
		snprintf(cand[n++], CONFIG_STR, "%llu", d * 2);
		snprintf(cand[n++], CONFIG_STR, "%llu", d / 2);
		snprintf(cand[n++], CONFIG_STR, "%llu", d + 1);
		snprintf(cand[n++], CONFIG_STR, "%llu", d ? d - 1 : 1);
	}
	snprintf(cand[n++], CONFIG_STR, "%s", strcmp(k->value, "on") == 0 ? "off" : "on");
	snprintf(cand[n++], CONFIG_STR, "%.200s-env", k->value);
	const char *colon = strrchr(k->value, ':');
	if (colon)
		snprintf(cand[n++], CONFIG_STR, "%.*s:%d", (int)(colon - k->value), k->value,
		         atoi(colon + 1) + 1);
	for (size_t i = 0; i < sizeof(generic) / sizeof(generic[0]); i++)
		snprintf(cand[n++], CONFIG_STR, "%s", generic[i]);

	config_t def, c;
	config_defaults(&def);
	for (int i = 0; i < n; i++) {
		char err[256];
		config_defaults(&c);
		if (config_set(&c, k->section, k->key, cand[i], err, sizeof(err)) == 0 &&
		    memcmp(&c, &def, sizeof(c)) != 0) {
			snprintf(out, len, "%.*s", (int)len - 1, cand[i]);
			return 0;
		}
	}
	return -1;
}

static void test_every_key_has_an_override(void **state)
{
	(void)state;
	static shipped_key_t keys[MAX_KEYS];
	int n = shipped_keys(keys, MAX_KEYS);
	assert_true(n >= 34); /* the 34 keys of the first release, peer included */
	for (int i = 0; i < n; i++) {
		char name[128], value[CONFIG_STR], var[512], err[256];
		env_name(&keys[i], name, sizeof(name));
		if (changing_value(&keys[i], value, sizeof(value)) < 0)
			fail_msg("[%s] %s: no value found that changes it", keys[i].section,
			         keys[i].key);
		snprintf(var, sizeof(var), "%s=%s", name, value);
		char *envp[] = {var, NULL};

		static config_t by_env, by_set, def;
		config_defaults(&def);
		config_defaults(&by_env);
		config_defaults(&by_set);
		if (config_apply_env(&by_env, envp, err, sizeof(err)) != 0)
			fail_msg("%s: %s", var, err);
		assert_int_equal(
		    config_set(&by_set, keys[i].section, keys[i].key, value, err, sizeof(err)), 0);
		if (memcmp(&by_env, &by_set, sizeof(by_env)) != 0)
			fail_msg("%s does not set [%s] %s", var, keys[i].section, keys[i].key);
		if (memcmp(&by_env, &def, sizeof(by_env)) == 0)
			fail_msg("%s changed nothing", var);

		/* lower case works too; an invalid value names the variable */
		for (char *c = var + 8; *c != '='; c++)
			*c = (char)tolower((unsigned char)*c);
		config_defaults(&by_env);
		assert_int_equal(config_apply_env(&by_env, envp, err, sizeof(err)), 0);
		assert_memory_equal(&by_env, &by_set, sizeof(by_env));
		snprintf(var, sizeof(var), "%s=bad\001value", name);
		assert_int_equal(config_apply_env(&by_env, envp, err, sizeof(err)), -1);
		char want[160];
		snprintf(want, sizeof(want), "environment %s: ", name);
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("%s: error \"%s\"", name, err);
	}
}

static void test_other_variables_are_left_alone(void **state)
{
	(void)state;
	char err[256];
	char *envp[] = {"ARTEMIS_BIN=/usr/bin/artemis",
	                "ARTEMIS_CONF=x",
	                "PATH=/bin",
	                "ARTEMIS_=1",
	                "ARTEMIS_NODEX=1",
	                "ARTEMIS_NODE",
	                NULL};
	static config_t c, def;
	config_defaults(&c);
	config_defaults(&def);
	assert_int_equal(config_apply_env(&c, envp, err, sizeof(err)), 0);
	assert_memory_equal(&c, &def, sizeof(c));
}

/* The error of one variable applied over the defaults (it must fail). */
static const char *env_error(const char *var)
{
	static char err[256];
	static config_t c;
	char *envp[] = {(char *)var, NULL};
	config_defaults(&c);
	assert_int_equal(config_apply_env(&c, envp, err, sizeof(err)), -1);
	return err;
}

static void test_unknown_key_of_a_known_section(void **state)
{
	(void)state;
	assert_string_equal(env_error("ARTEMIS_REGISTRY_MAX_INSTANCE=5"),
	                    "environment ARTEMIS_REGISTRY_MAX_INSTANCE: unknown key "
	                    "'max_instance' in [registry]");
	assert_string_equal(env_error("ARTEMIS_NODE_=5"),
	                    "environment ARTEMIS_NODE_: unknown key in [node]");
}

static void test_secret_values_stay_out_of_errors(void **state)
{
	(void)state;
	const char *err = env_error("ARTEMIS_CLUSTER_KEY=s3cret\tvalue");
	assert_null(strstr(err, "s3cret"));
	assert_string_equal(err,
	                    "environment ARTEMIS_CLUSTER_KEY: key contains a control character");
}

static void test_peer_list_replaces_the_file(void **state)
{
	(void)state;
	char err[256];
	static config_t c;
	config_defaults(&c);
	assert_int_equal(
	    config_set(&c, "cluster", "peer", "old z http://o:1 o:2", err, sizeof(err)), 0);
	char *envp[] = {"ARTEMIS_CLUSTER_PEER=n2 zone-1 http://h2:8080 h2:9090, "
	                "n3 zone-2 http://h3:8080 h3:9090,",
	                NULL};
	assert_int_equal(config_apply_env(&c, envp, err, sizeof(err)), 0);
	assert_int_equal(c.npeers, 2);
	assert_string_equal(c.peers[0].name, "n2");
	assert_string_equal(c.peers[1].name, "n3");
	assert_string_equal(c.peers[1].zone, "zone-2");
	assert_string_equal(c.peers[1].repl_addr, "h3:9090");

	char *none[] = {"ARTEMIS_CLUSTER_PEER=", NULL};
	assert_int_equal(config_apply_env(&c, none, err, sizeof(err)), 0);
	assert_int_equal(c.npeers, 0);

	char *bad[] = {"ARTEMIS_CLUSTER_PEER=n2 zone-1 http://h2:8080", NULL};
	assert_int_equal(config_apply_env(&c, bad, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "environment ARTEMIS_CLUSTER_PEER: peer 'n2 zone-1"));
}

/* defaults < file < environment < command line, on every load (a reload too) */
static void test_precedence(void **state)
{
	(void)state;
	char path[] = "/tmp/artemis-test-config-env-XXXXXX", err[512];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "[node]\nworkers = 2\nregion = file-region\nzone = file-zone\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);

	static config_t cfg;
	static master_opts_t opts;
	memset(&opts, 0, sizeof(opts));
	opts.noverrides = 1;
	opts.overrides[0] = (master_override_t){"--workers", "node", "workers", "4"};
	assert_int_equal(setenv("ARTEMIS_NODE_WORKERS", "3", 1), 0);
	assert_int_equal(setenv("ARTEMIS_NODE_ZONE", "env-zone", 1), 0);
	assert_int_equal(master_load_config(&cfg, path, &opts, err, sizeof(err)), 0);
	assert_int_equal(cfg.workers, 4);               /* command line wins */
	assert_string_equal(cfg.zone, "env-zone");      /* environment over the file */
	assert_string_equal(cfg.region, "file-region"); /* the file over the defaults */
	assert_int_equal(cfg.max_instances, 1000000);   /* defaults */

	opts.noverrides = 0;
	assert_int_equal(master_load_config(&cfg, path, &opts, err, sizeof(err)), 0);
	assert_int_equal(cfg.workers, 3);

	assert_int_equal(setenv("ARTEMIS_NODE_WORKERS", "lots", 1), 0);
	assert_int_equal(master_load_config(&cfg, path, &opts, err, sizeof(err)), -1);
	assert_string_equal(err, "environment ARTEMIS_NODE_WORKERS: workers 'lots' is not a "
	                         "non-negative integer");
	unsetenv("ARTEMIS_NODE_WORKERS");
	unsetenv("ARTEMIS_NODE_ZONE");
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_key_has_an_override),
	    cmocka_unit_test(test_other_variables_are_left_alone),
	    cmocka_unit_test(test_unknown_key_of_a_known_section),
	    cmocka_unit_test(test_secret_values_stay_out_of_errors),
	    cmocka_unit_test(test_peer_list_replaces_the_file),
	    cmocka_unit_test(test_precedence),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

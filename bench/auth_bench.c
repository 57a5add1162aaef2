/*
 * auth_bench.c - `artemis-bench auth`: what checking a token costs a
 * management request, in-process (no HTTP, so no network or scheduler
 * noise).
 *
 * A region and a store in a temporary directory, a user and a session
 * opened as a login opens them, its token signed as a login signs it.
 * Then, for --seconds each, what the worker's access check does per
 * request (worker/api_access.c):
 *   verify   jwt_verify (base64url, HMAC-SHA-256, the claims' JSON) and
 *            mgmt_session_check answered from the process's cache;
 *   body     the same with the token taken from a Java request body (the
 *            body parsed once more, as the dispatcher does);
 *   miss     mgmt_session_check after every write that can end a session
 *            (the cache dropped: the session read from SQLite), the cost
 *            of the first request of a session on each worker;
 *   login    a whole login's Argon2id check at the configured cost.
 * Prints ns per operation.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "artemis/auth.h"
#include "artemis/clock.h"
#include "artemis/codec.h"
#include "artemis/config.h"
#include "artemis/mgmt.h"
#include "artemis/shm.h"
#include "bench.h"

typedef struct {
	double seconds;
	shm_t *shm;
	mgmt_t *m;
	config_t cfg;
	char dir[128], region[64];
	uint8_t key[64];
	size_t key_len;
	buf_t token;
	char sid[MGMT_SID_LEN + 1];
} ab_t;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int setup(ab_t *b)
{
	char err[512], cmd[300];
	shm_params_t p;
	mgmt_session_t s = {0};
	mgmt_user_t u = {0};
	snprintf(b->dir, sizeof(b->dir), "/tmp/artemis-auth-bench-%d", (int)getpid());
	snprintf(b->region, sizeof(b->region), "/artemis-auth-bench-%d", (int)getpid());
	snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s", b->dir, b->dir);
	if (system(cmd) != 0)
		return -EIO;
	config_defaults(&b->cfg);
	snprintf(b->cfg.name, sizeof(b->cfg.name), "auth-bench");
	snprintf(b->cfg.data_dir, sizeof(b->cfg.data_dir), "%s", b->dir);
	snprintf(b->cfg.initial_admin_password, sizeof(b->cfg.initial_admin_password),
	         "bench-password");
	shm_params_default(&p, b->region);
	p.max_instances = 1024;
	p.mgmt_bytes = mgmt_section_bytes(b->cfg.mgmt_max_operations);
	int rc = shm_open_region(&p, SHM_CREATE_FRESH, &b->shm, NULL);
	if (rc == 0 && (rc = mgmt_boot(&b->cfg, b->shm, err, sizeof(err))) == 0)
		rc = mgmt_open(&b->cfg, b->shm, &b->m, err, sizeof(err));
	if (rc == 0 && (rc = mgmt_jwt_key(b->m, b->key, sizeof(b->key), &b->key_len)) < 0)
		snprintf(err, sizeof(err), "no JWT key");
	if (rc == 0 && (rc = mgmt_user_find(b->m, "admin", &u)) < 0)
		snprintf(err, sizeof(err), "no admin");
	snprintf(s.username, sizeof(s.username), "admin");
	s.expire_ms = clock_wall_ms() + 3600 * 1000;
	if (rc == 0)
		rc = mgmt_session_open(b->m, &s, NULL, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "artemis-bench auth: %s\n", err);
		return rc;
	}
	jwt_claims_t c = {.iat = (int64_t)(clock_wall_ms() / 1000)};
	c.exp = c.iat + 3600;
	snprintf(c.sub, sizeof(c.sub), "%lld", (long long)u.id);
	snprintf(c.username, sizeof(c.username), "admin");
	snprintf(c.role, sizeof(c.role), "admin");
	snprintf(c.sid, sizeof(c.sid), "%s", s.sid);
	snprintf(b->sid, sizeof(b->sid), "%s", s.sid);
	return jwt_sign(&c, b->key, b->key_len, &b->token);
}

static void teardown(ab_t *b)
{
	char cmd[300];
	mgmt_close(b->m);
	shm_detach(b->shm);
	shm_destroy(b->region);
	buf_free(&b->token);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", b->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "artemis-bench auth: cannot remove %s\n", b->dir);
}

/* One check as the worker makes it; 0 when the token passes. */
static int check(ab_t *b, const char *tok, size_t len)
{
	jwt_claims_t c;
	mgmt_principal_t who;
	uint64_t now = clock_wall_ms();
	int rc = jwt_verify(tok, len, b->key, b->key_len, (int64_t)(now / 1000), &c);
	return rc < 0 ? rc : mgmt_session_check(b->m, c.sid, c.username, now, &who);
}

static int check_body(ab_t *b, const char *body, size_t len)
{
	json_t *o = NULL;
	int rc = json_parse_body(body, len, &o, NULL, 0);
	const json_t *t = rc == 0 ? json_member(o, "token") : NULL;
	rc = json_is_string(t) ? check(b, json_string_value(t), json_string_length(t)) : -EINVAL;
	json_decref(o);
	return rc;
}

typedef enum { AB_VERIFY, AB_BODY } ab_what_t;

/* ns per check for b->seconds; -1 when a check failed. */
static double run(ab_t *b, ab_what_t what, const buf_t *body)
{
	uint64_t n = 0;
	double start = now_s(), end = start + b->seconds, t = start;
	while (t < end) {
		for (int i = 0; i < 256; i++, n++) {
			int rc = what == AB_BODY ? check_body(b, body->data, body->len)
			                         : check(b, b->token.data, b->token.len);
			if (rc != 0)
				return -1;
		}
		t = now_s();
	}
	return (t - start) * 1e9 / (double)n;
}

/* A revocation (of a session that does not exist) moves the auth
 * generation and so empties the cache: the check after it reads SQLite.
 * Only the check is timed. */
static double run_miss(ab_t *b)
{
	double total = 0, start = now_s();
	uint64_t n = 0;
	char err[128];
	while (now_s() - start < b->seconds) {
		mgmt_session_revoke(b->m, "00000000000000000000000000000000", NULL, err,
		                    sizeof(err));
		double t = now_s();
		if (check(b, b->token.data, b->token.len) != 0)
			return -1;
		total += now_s() - t;
		n++;
	}
	return n ? total * 1e9 / (double)n : -1;
}

static double run_login(ab_t *b)
{
	mgmt_user_t u;
	uint64_t n = 0;
	double start = now_s();
	if (mgmt_user_find(b->m, "admin", &u) < 0)
		return -1;
	while (now_s() - start < b->seconds || n == 0) {
		if (auth_password_verify(u.hash, "bench-password", 14) != 0)
			return -1;
		n++;
	}
	return (now_s() - start) * 1e9 / (double)n;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: artemis-bench auth [--seconds S] [--json]\n"
	           "  What checking a token costs a management request, in-process: the\n"
	           "  JWT and the cached session (verify), the same from a Java body (body),\n"
	           "  a session's first check on a worker (miss: SQLite), a login's\n"
	           "  Argon2id at the default cost (login).  ns per operation.\n");
}

int bench_auth_main(int argc, char **argv)
{
	static const struct option opts[] = {{"seconds", required_argument, NULL, 's'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	ab_t b;
	bool json = false;
	int ch;
	memset(&b, 0, sizeof(b));
	b.seconds = 2;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "s:jh", opts, NULL)) != -1) {
		if (ch == 's')
			b.seconds = atof(optarg);
		else if (ch == 'j')
			json = true;
		else {
			usage(ch == 'h' ? stdout : stderr);
			return ch == 'h' ? 0 : 2;
		}
	}
	if (setup(&b) < 0) {
		teardown(&b);
		return 1;
	}
	buf_t body = {0};
	buf_printf(&body,
	           "{\"instanceKey\":{\"regionId\":\"us-east\",\"serviceId\":\"svc-1\","
	           "\"instanceId\":\"inst-1\"},\"operation\":\"pullout\",\"operationComplete\":"
	           "false,\"operatorId\":\"alice\",\"token\":\"%.*s\"}",
	           (int)b.token.len, b.token.data);
	double verify = run(&b, AB_VERIFY, NULL), in_body = run(&b, AB_BODY, &body);
	double miss = run_miss(&b), login = run_login(&b);
	if (json)
		printf("{\"verify_ns\":%.0f,\"body_ns\":%.0f,\"miss_ns\":%.0f,\"login_ns\":%.0f}\n",
		       verify, in_body, miss, login);
	else
		printf("token check per management request, in-process (%.1f s each)\n"
		       "  verify (JWT + cached session)      %8.0f ns\n"
		       "  Java body token (parse + verify)   %8.0f ns\n"
		       "  first check on a worker (SQLite)   %8.0f ns\n"
		       "  login's Argon2id (default cost)    %8.0f ns\n",
		       b.seconds, verify, in_body, miss, login);
	buf_free(&body);
	teardown(&b);
	return verify < 0 || in_body < 0 || miss < 0 || login < 0 ? 1 : 0;
}

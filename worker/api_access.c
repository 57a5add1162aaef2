/*
 * api_access.c - who may call what (MANAGEMENT.md §6): the one check every
 * request passes in api_dispatch(), after its route is found and before
 * its handler runs.
 *
 * The decision is by path and method, from the table below (first match
 * wins), never by handler, so routes added later are covered by the
 * prefix they live under:
 *   - /api/auth/login and /api/auth/roles are open;
 *   - /api/auth/users... and /api/auth/password/reset/... need admin;
 *   - the rest of /api/auth/ needs a valid token (any role; the sessions
 *     handler keeps other users' sessions to admins);
 *   - the audit cleanup needs admin;
 *   - under /api/management/ and /api/routing/: reads (GET, and Java's
 *     read-only POSTs, listed) need a token; every other method writes
 *     and needs operator;
 *   - everything else (registry, discovery, status, replication, the
 *     WebSockets, /health, /ready, /metrics, the console's files) is open:
 *     Java clients and peers send no credential.
 *
 * The credential is `Authorization: Bearer <JWT>`; on Java's surface
 * (paths ending in .json under /api/management/) and on /api/auth/refresh
 * the body's `token` member is taken when there is no such header.  A
 * token is valid when its signature and expiry check out (auth/jwt.c) and
 * its session is live and its user active (mgmt_session_check, answered
 * from the worker's cache: no SQLite for a token seen before).  The role
 * that counts is the user's role now, not the token's claim.
 *
 * Refusals: Java's surface answers HTTP 200 with errorCode no-permission
 * (its clients take any other status for a dead node); the Rust rewrite's
 * answers 401 (no valid token) or 403 (role too low) with its envelope.
 *
 * Cross-site requests (CSRF): a browser sends Origin with every
 * cross-origin request and with same-origin writes.  A request under the
 * three areas with a method other than GET or HEAD and an Origin is
 * refused (403) unless that origin is the node's own (its host[:port] is
 * the Host header) or listed in [http] cors_origins ("*" lists none).  So
 * a page elsewhere cannot make the console's writes, with or without a
 * token, [auth] enabled = off included.  Requests without Origin (the CLI,
 * Java tooling, scripts) are not a browser's and pass.
 *
 * [auth] enabled = off skips every other check (the master warns at each start);
 * a valid token is still recognised, so the console and the audit know
 * who is calling.
 *
 * Nothing here logs a token.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "artemis/auth.h"
#include "artemis/clock.h"
#include "artemis/codec.h"
#include "artemis/log.h"
#include "metrics.h"
#include "worker.h"

enum need { OPEN = 0, TOKEN, OPERATOR, ADMIN };
enum match { EXACT, PREFIX, GLOB };

#define A_ANY   0u
#define A_READS (1u << HTTP_M_GET | 1u << HTTP_M_HEAD)
#define A_POST  (1u << HTTP_M_POST)

typedef struct {
	const char *path;
	enum match how;
	unsigned methods; /* 1 << enum http_method; A_ANY: every method */
	enum need need;
} access_rule_t;

#define MG "/api/management/"

static const access_rule_t access__rules[] = {
    {"/api/auth/login", EXACT, A_ANY, OPEN},
    {"/api/auth/roles", EXACT, A_ANY, OPEN},
    {"/api/auth/users", EXACT, A_ANY, ADMIN},
    {"/api/auth/users/", PREFIX, A_ANY, ADMIN},
    {"/api/auth/password/reset/", PREFIX, A_ANY, ADMIN},
    {"/api/auth/", PREFIX, A_ANY, TOKEN},
    {MG "audit/logs/cleanup", EXACT, A_ANY, ADMIN},
    /* Reads that are POSTs: Java's views and log queries (API.md §5), the
     * Rust rewrite's instance and server views. */
    {MG "instance-operations.json", EXACT, A_POST, TOKEN},
    {MG "server-operations.json", EXACT, A_POST, TOKEN},
    {MG "all-instance-operations.json", EXACT, A_POST, TOKEN},
    {MG "all-server-operations.json", EXACT, A_POST, TOKEN},
    {MG "instance-down.json", EXACT, A_POST, TOKEN},
    {MG "server-down.json", EXACT, A_POST, TOKEN},
    {MG "services.json", EXACT, A_POST, TOKEN},
    {MG "service.json", EXACT, A_POST, TOKEN},
    {MG "log/*.json", GLOB, A_POST, TOKEN},
    {MG "zone/get-*.json", GLOB, A_POST, TOKEN},
    {MG "zone/is-zone-down.json", EXACT, A_POST, TOKEN},
    {MG "group/get-*.json", GLOB, A_POST, TOKEN},
    {MG "instance/get-instance-operations.json", EXACT, A_POST, TOKEN},
    {MG "instance/is-instance-down.json", EXACT, A_POST, TOKEN},
    {MG "server/is-server-down.json", EXACT, A_POST, TOKEN},
    {MG, PREFIX, A_READS, TOKEN},
    {MG, PREFIX, A_ANY, OPERATOR},
    {"/api/routing/", PREFIX, A_READS, TOKEN},
    {"/api/routing/", PREFIX, A_ANY, OPERATOR},
};

#define NRULES (sizeof(access__rules) / sizeof(access__rules[0]))

/* The worker's JWT key and the running request's caller.  The key is read
 * again whenever the region's auth generation moved since it was read: a
 * node that joins a cluster takes the cluster's secret from its peers
 * (docs/CLUSTER.md), and every token it signs or checks after that uses
 * it. */
static struct {
	uint8_t key[CONFIG_STR];
	size_t key_len;
	bool ready, said; /* said: a failure to read it was logged */
	uint64_t key_gen; /* the auth generation the key was read at */
	api_principal_t who;
} A;

/* ---- Rules --------------------------------------------------------------------------- */

static bool access__matches(const access_rule_t *r, const char *path, size_t len)
{
	size_t n = strlen(r->path);
	switch (r->how) {
	case EXACT:
		return n == len && memcmp(r->path, path, len) == 0;
	case PREFIX:
		return len >= n && memcmp(r->path, path, n) == 0;
	default:
		return fnmatch(r->path, path, FNM_PATHNAME) == 0;
	}
}

/* Every rule is under one of these: other paths (the registry's traffic,
 * its /api twins included) cost a few comparisons. */
static bool access__protected_area(const char *path, size_t len)
{
	static const struct {
		const char *p;
		size_t n;
	} areas[] = {{"/api/auth/", 10}, {MG, sizeof(MG) - 1}, {"/api/routing/", 13}};
	if (len < 10 || memcmp(path, "/api/", 5) != 0)
		return false;
	for (size_t i = 0; i < sizeof(areas) / sizeof(areas[0]); i++)
		if (len >= areas[i].n && memcmp(path, areas[i].p, areas[i].n) == 0)
			return true;
	return false;
}

static enum need access__need(const http_request_t *req)
{
	if (!access__protected_area(req->path, req->path_len))
		return OPEN;
	for (size_t i = 0; i < NRULES; i++) {
		const access_rule_t *r = &access__rules[i];
		if ((r->methods == A_ANY || (r->methods >> req->method & 1)) &&
		    access__matches(r, req->path, req->path_len))
			return r->need;
	}
	return OPEN;
}

static bool access__java_surface(const http_request_t *req)
{
	static const char mg[] = MG;
	return req->path_len > sizeof(mg) + 4 && memcmp(req->path, mg, sizeof(mg) - 1) == 0 &&
	       memcmp(req->path + req->path_len - 5, ".json", 5) == 0;
}

/* The Rust rewrite's .json paths with real statuses (MANAGEMENT.md §3.2.1). */
static bool access__status_surface(const http_request_t *req)
{
	return strncmp(req->path, MG "instance/", sizeof(MG "instance/") - 1) == 0 ||
	       strncmp(req->path, MG "server/", sizeof(MG "server/") - 1) == 0;
}

/* ---- Refusals -------------------------------------------------------------------------- */

/* status: 401 (no valid token), 403 (role too low) or 500 (the store
 * failed); Java's surface says it with an errorCode in HTTP 200. */
static void access__refuse(const http_request_t *req, http_response_t *res, int status,
                           const char *msg)
{
	const char *code = status == 500 ? API_INTERNAL_ERROR : API_NO_PERMISSION;
	buf_t *b = &res->body;
	b->len = 0;
	res->content_type = NULL;
	if (access__java_surface(req) && !access__status_surface(req)) {
		/* Java: a handled error, HTTP 200 (API.md §1.6); `status` for
		 * the all-*-operations.json readers of the Rust shape. */
		json_put_raw(b, "{\"responseStatus\":");
		api_put_fail(b, code, msg);
		json_put_raw(b, ",\"status\":");
		api_put_fail(b, code, msg);
		json_put_raw(b, "}");
	} else if (access__java_surface(req)) {
		res->status = status;
		json_put_raw(b, "{\"message\":");
		json_put_cstr(b, msg);
		json_put_raw(b, ",\"status\":");
		api_put_fail(b, code, msg);
		json_put_raw(b, ",\"success\":false}");
	} else {
		res->status = status;
		json_put_raw(b, "{\"data\":null,\"errorCode\":");
		json_put_cstr(b, status == 401 ? "unauthorized" : code);
		json_put_raw(b, ",\"message\":");
		json_put_cstr(b, msg);
		json_put_raw(b, ",\"success\":false}");
	}
	if (res->status == 401)
		res->headers = "WWW-Authenticate: Bearer\r\n";
	metrics_fail(req);
}

/* ---- Credentials ------------------------------------------------------------------------- */

/* The key from the store, when it was never read or the auth generation
 * moved since (the generation first: a secret replaced meanwhile moves it
 * again, and the next call reads once more). */
static int access__key_load(mgmt_t *m)
{
	uint64_t gen = mgmt_auth_generation(m);
	if (A.ready && gen == A.key_gen)
		return 0;
	int rc = mgmt_jwt_key(m, A.key, sizeof(A.key), &A.key_len);
	if (rc < 0) {
		if (!A.said) /* once, not at every request */
			log_error("the JWT secret is not readable from the store: %s; every token "
			          "is refused",
			          strerror(-rc));
		A.ready = false;
		A.said = true;
		return rc;
	}
	A.ready = true;
	A.said = false;
	A.key_gen = gen;
	return 0;
}

int api_access_init(void)
{
	mgmt_t *m = g_worker ? g_worker->mgmt : NULL;
	const config_t *cfg = api_cfg();
	memset(&A, 0, sizeof(A));
	if (!m)
		return -ENODEV;
	int rc = access__key_load(m);
	if (rc < 0)
		return rc;
	if (cfg->auth_enabled) {
		/* The dummy hash of unknown users' logins, made now rather
		 * than by the first such login (its timing would stand out). */
		auth_cost_t cost = api_auth_cost();
		auth_password_dummy("", 0, &cost);
	}
	return 0;
}

int api_access_key(const uint8_t **key, size_t *len)
{
	mgmt_t *m = g_worker ? g_worker->mgmt : NULL;
	if (!m || access__key_load(m) < 0)
		return -ENOENT;
	*key = A.key;
	*len = A.key_len;
	return 0;
}

/* The credential of a request: the bearer token, else (where taken) the
 * body's `token`.  *tok points into req or into *body (which the caller
 * frees).  false when there is none. */
static bool access__credential(const http_request_t *req, json_t **body, const char **tok,
                               size_t *len)
{
	const char *h = http_request_header(req, "Authorization");
	if (h) {
		if (strncasecmp(h, "Bearer ", 7) != 0)
			return false;
		h += 7;
		h += strspn(h, " ");
		*tok = h;
		*len = strlen(h);
		return *len > 0;
	}
	bool body_token = access__java_surface(req) ||
	                  (req->path_len == sizeof("/api/auth/refresh") - 1 &&
	                   memcmp(req->path, "/api/auth/refresh", req->path_len) == 0);
	if (!body_token || req->body_len == 0 ||
	    json_parse_body(req->body, req->body_len, body, NULL, 0) < 0)
		return false;
	const json_t *t = json_member(*body, "token");
	if (!json_is_string(t) || json_string_length(t) == 0)
		return false;
	*tok = json_string_value(t);
	*len = json_string_length(t);
	return true;
}

int api_access_verify(const char *tok, size_t len, mgmt_principal_t *who, const char **why)
{
	jwt_claims_t c;
	mgmt_t *m = g_worker ? g_worker->mgmt : NULL;
	uint64_t now_ms = clock_wall_ms();
	*why = "the token is not valid";
	if (!m || access__key_load(m) < 0)
		return -EACCES;
	int rc = jwt_verify(tok, len, A.key, A.key_len, (int64_t)(now_ms / 1000), &c);
	if (rc == -ETIME)
		*why = "the token has expired";
	if (rc < 0)
		return -EACCES;
	rc = mgmt_session_check(m, c.sid, c.username, now_ms, who);
	if (rc == -EACCES)
		*why = "the session has ended";
	else if (rc < 0)
		*why = "the session could not be checked";
	return rc < 0 ? rc : 0;
}

/* ---- The check ----------------------------------------------------------------------------- */

const api_principal_t *api_principal(void)
{
	return &A.who;
}

static void access__anonymous(void)
{
	memset(&A.who, 0, sizeof(A.who));
	snprintf(A.who.who.username, sizeof(A.who.who.username), "anonymous");
	A.who.who.role = MGMT_ROLE_ADMIN;
}

/* May a browser page at the request's Origin write here? */
static bool access__origin_ok(const http_request_t *req, const config_t *cfg)
{
	const char *origin = http_request_header(req, "Origin");
	if (!origin)
		return true;
	if (strcmp(cfg->cors_origins, "*") != 0 && http_origin_listed(cfg->cors_origins, origin))
		return true;
	const char *host = http_request_header(req, "Host");
	const char *authority = strstr(origin, "://");
	return host && *host && authority && strcasecmp(authority + 3, host) == 0;
}

bool api_access_check(const http_request_t *req, http_response_t *res)
{
	const config_t *cfg = api_cfg();
	enum need need = access__need(req);
	json_t *body = NULL;
	const char *tok = NULL, *why = "a token is needed (log in: POST /api/auth/login)";
	size_t len = 0;
	int rc = -EACCES;

	memset(&A.who, 0, sizeof(A.who));
	if (req->method != HTTP_M_GET && req->method != HTTP_M_HEAD &&
	    access__protected_area(req->path, req->path_len) && !access__origin_ok(req, cfg)) {
		access__refuse(req, res, 403,
		               "cross-origin request refused: the page's Origin is not this node's "
		               "and not in [http] cors_origins");
		return false;
	}
	/* Open paths cost nothing, but for the auth calls themselves when
	 * checks are off: they still tell who is calling. */
	if (need == OPEN && (cfg->auth_enabled || strncmp(req->path, "/api/auth/", 10) != 0))
		return true;
	if (access__credential(req, &body, &tok, &len))
		rc = api_access_verify(tok, len, &A.who.who, &why);
	json_decref(body);
	if (rc == 0) {
		A.who.authenticated = true;
		mgmt_set_actor(g_worker->mgmt, A.who.who.username);
	}
	if (!cfg->auth_enabled) {
		if (rc != 0)
			access__anonymous();
		return true;
	}
	if (need == OPEN)
		return true;
	if (rc == -EIO || rc == -ENOMEM) {
		access__refuse(req, res, 500, why);
		return false;
	}
	if (rc < 0) {
		access__refuse(req, res, 401, why);
		return false;
	}
	if ((need == OPERATOR && A.who.who.role < MGMT_ROLE_OPERATOR) ||
	    (need == ADMIN && A.who.who.role < MGMT_ROLE_ADMIN)) {
		char msg[160];
		snprintf(msg, sizeof(msg), "role %s may not do this (%s needed)",
		         mgmt_role_name(A.who.who.role), need == ADMIN ? "admin" : "operator");
		access__refuse(req, res, 403, msg);
		return false;
	}
	return true;
}

void api_access_done(void)
{
	if (A.who.authenticated && g_worker)
		mgmt_set_actor(g_worker->mgmt, NULL);
	memset(&A.who, 0, sizeof(A.who));
}

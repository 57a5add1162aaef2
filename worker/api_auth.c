/*
 * api_auth.c - /api/auth: logins, tokens, sessions, users (MANAGEMENT.md
 * §3.2.7, §6), in the Rust rewrite's envelope ({"success", "data",
 * "message"} with real statuses).
 *
 * Who may call what is decided before these run (api_access.c): here the
 * caller is api_principal(), already checked.  What is left to a handler
 * is what depends on the record: a session that is not the caller's is an
 * admin's business (DELETE /sessions/{id}), the last active admin stays
 * one (409), an old password must match.
 *
 * A login: the lockout first ([auth] login_*: refused attempts cost no
 * hash), then the user, then Argon2id; an unknown or disabled user is
 * checked against a dummy hash so the answer takes as long and says the
 * same (401 "invalid username or password").  Every attempt lands in the
 * login history.  A success opens a session and signs a JWT bound to it
 * (claims sub, username, role, sid, iat, exp = the session's expiry).
 *
 * Secrets never reach a log: not passwords, not tokens, not hashes.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "api_mgmt.h"
#include "artemis/clock.h"
#include "artemis/codec.h"
#include "worker.h"

#define LOGIN_HISTORY_DEFAULT 100
#define LOGIN_HISTORY_MAX     1000

auth_cost_t api_auth_cost(void)
{
	const config_t *cfg = api_cfg();
	return (auth_cost_t){cfg->password_opslimit, (size_t)cfg->password_memlimit_kib * 1024};
}

/* ---- Request pieces ----------------------------------------------------------------------- */

/* A string member: NULL when absent or null; *bad when present but not a
 * string or longer than cap - 1. */
static const char *member(const json_t *body, const char *canon, size_t cap, bool *bad)
{
	const json_t *v = json_member(body, canon);
	if (!v || json_is_null(v))
		return NULL;
	if (!json_is_string(v) || json_string_length(v) >= cap ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		*bad = true;
		return NULL;
	}
	return json_string_value(v);
}

static bool password_ok(const char *pw)
{
	size_t n = pw ? strlen(pw) : 0;
	return n >= CONFIG_MIN_PASSWORD && n <= CONFIG_MAX_PASSWORD;
}

/* The {userId} of the path; false (400 written) when it is not one. */
static bool path_user_id(api_mgmt_req_t *r, int64_t *id)
{
	const char *p = api_param("userId");
	char *end = NULL;
	long long v = p ? strtoll(p, &end, 10) : 0;
	if (!p || *p < '0' || *p > '9' || *end || v <= 0) {
		api_mgmt_fail(r, API_BAD_REQUEST, "userId must be a positive number");
		return false;
	}
	*id = v;
	return true;
}

/* The audit context of a user write: the request's operatorId, else the
 * caller's name. */
static mgmt_ctx_t write_ctx(api_mgmt_req_t *r, char *buf, size_t cap)
{
	bool bad = false;
	const char *op = member(r->body, "operatorid", cap, &bad);
	snprintf(buf, cap, "%s", op && *op ? op : api_principal()->who.username);
	return (mgmt_ctx_t){.operator_id = buf, .complete = -1, .surface = "rust"};
}

static const char *user_agent(const http_request_t *req, char *buf, size_t cap)
{
	const char *ua = http_request_header(req, "User-Agent");
	snprintf(buf, cap, "%s", ua ? ua : "");
	return buf;
}

static bool begin(api_mgmt_req_t *r, const http_request_t *req, http_response_t *res,
                  bool body_optional)
{
	return api_mgmt_begin(r, req, res, MGMT_STYLE_REST, MGMT_READ, body_optional);
}

/* ---- Output pieces ------------------------------------------------------------------------ */

static void put_user(buf_t *b, const mgmt_user_t *u)
{
	api_mgmt_kv_i64(b, '{', "createdAt", (int64_t)(u->create_ms / 1000));
	api_mgmt_kv(b, ',', "description", u->description);
	api_mgmt_kv(b, ',', "email", u->email);
	api_mgmt_kv(b, ',', "role", mgmt_role_name(u->role));
	api_mgmt_kv(b, ',', "status", u->active ? "active" : "inactive");
	api_mgmt_kv_i64(b, ',', "updatedAt", (int64_t)(u->update_ms / 1000));
	api_mgmt_kv_i64(b, ',', "userId", u->id);
	api_mgmt_kv(b, ',', "username", u->username);
	json_put_raw(b, "}");
}

static void put_session(buf_t *b, const mgmt_session_t *s)
{
	api_mgmt_kv_i64(b, '{', "createdAt", (int64_t)(s->create_ms / 1000));
	api_mgmt_kv_bool(b, ',', "current",
	                 api_principal()->authenticated &&
	                     !strcmp(api_principal()->who.sid, s->sid));
	api_mgmt_kv_i64(b, ',', "expiresAt", (int64_t)(s->expire_ms / 1000));
	api_mgmt_kv(b, ',', "ipAddress", s->ip);
	api_mgmt_kv_i64(b, ',', "lastActivity", (int64_t)(s->last_ms / 1000));
	api_mgmt_kv(b, ',', "sessionId", s->sid);
	api_mgmt_kv(b, ',', "userAgent", s->agent);
	api_mgmt_kv_i64(b, ',', "userId", s->user_id);
	api_mgmt_kv(b, ',', "username", s->username);
	json_put_raw(b, "}");
}

/* A failure of a mgmt_* user or session call, by its errno. */
static void fail_rc(api_mgmt_req_t *r, int rc, const char *err)
{
	if (rc == -EEXIST || rc == -EMLINK)
		api_mgmt_fail(r, API_CONFLICT, "%s", err);
	else if (rc == -EACCES)
		api_mgmt_fail(r, API_UNAUTHORIZED, "%s", err);
	else
		api_mgmt_fail_rc(r, rc, err);
}

/* ---- Tokens ------------------------------------------------------------------------------- */

/* Open a session for u (replacing old_sid when refreshing) and answer
 * {accessToken, tokenType, expiresIn} with its token. */
static void issue(api_mgmt_req_t *r, const mgmt_user_t *u, const char *old_sid)
{
	const config_t *cfg = api_cfg();
	char err[MGMT_MAX_ERR];
	mgmt_session_t s = {0};
	jwt_claims_t c = {0};
	const uint8_t *key;
	size_t key_len;
	buf_t tok = {0};
	int64_t now_s = (int64_t)(clock_wall_ms() / 1000);

	if (api_access_key(&key, &key_len) < 0) {
		api_mgmt_fail(r, API_INTERNAL_ERROR, "this node has no JWT secret (see its log)");
		return;
	}
	snprintf(s.username, sizeof(s.username), "%s", u->username);
	snprintf(s.ip, sizeof(s.ip), "%s", r->req->peer_ip ? r->req->peer_ip : "");
	user_agent(r->req, s.agent, sizeof(s.agent));
	s.expire_ms = (uint64_t)(now_s + (int64_t)cfg->token_ttl_s) * 1000;
	int rc = mgmt_session_open(r->m, &s, old_sid, err, sizeof(err));
	if (rc < 0) {
		fail_rc(r, rc, err);
		return;
	}
	snprintf(c.sub, sizeof(c.sub), "%lld", (long long)u->id);
	snprintf(c.username, sizeof(c.username), "%s", u->username);
	snprintf(c.role, sizeof(c.role), "%s", mgmt_role_name(u->role));
	snprintf(c.sid, sizeof(c.sid), "%s", s.sid);
	c.iat = now_s;
	c.exp = (int64_t)(s.expire_ms / 1000);
	if (jwt_sign(&c, key, key_len, &tok) < 0) {
		buf_free(&tok);
		api_mgmt_fail(r, API_INTERNAL_ERROR, "signing the token failed");
		return;
	}
	buf_t *b = api_mgmt_out(r);
	api_mgmt_ok_open(r);
	json_put_raw(b, "{\"accessToken\":");
	json_put_str(b, tok.data, tok.len);
	api_mgmt_kv_i64(b, ',', "expiresAt", c.exp);
	api_mgmt_kv_i64(b, ',', "expiresIn", c.exp - now_s);
	api_mgmt_kv(b, ',', "tokenType", "Bearer");
	json_put_raw(b, ",\"user\":");
	put_user(b, u);
	json_put_raw(b, "}");
	api_mgmt_ok_close(r);
	sodium_memzero(tok.data, tok.len);
	buf_free(&tok);
}

void api_auth_login(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_user_t u;
	char agent[MGMT_MAX_AGENT + 1], err[MGMT_MAX_ERR];
	auth_cost_t cost = api_auth_cost();
	bool bad = false;
	uint32_t wait_s = 0;

	if (!begin(&r, req, res, false))
		return;
	const char *name = member(r.body, "username", MGMT_MAX_USERNAME + 1, &bad);
	const char *pw = member(r.body, "password", CONFIG_MAX_PASSWORD + 1, &bad);
	const char *ip = req->peer_ip ? req->peer_ip : "";
	user_agent(req, agent, sizeof(agent));
	if (bad || !name || !*name || !pw) {
		api_mgmt_fail(&r, API_BAD_REQUEST,
		              "username and password are required (strings of "
		              "at most %d and %d bytes)",
		              MGMT_MAX_USERNAME, CONFIG_MAX_PASSWORD);
		goto out;
	}
	int rc = mgmt_login_locked(r.m, name, ip, clock_wall_ms(), &wait_s);
	if (rc == 1) {
		static char retry[48];
		mgmt_login_record(r.m, name, ip, agent, MGMT_LOGIN_LOCKED, "locked out", err,
		                  sizeof(err));
		snprintf(retry, sizeof(retry), "Retry-After: %u\r\n", wait_s);
		api_mgmt_fail(&r, API_RATE_LIMITED, "too many failed logins; try again in %u s",
		              wait_s);
		res->headers = retry;
		goto out;
	}
	if (rc < 0) {
		api_mgmt_fail(&r, API_INTERNAL_ERROR, "the login history could not be read");
		goto out;
	}
	rc = mgmt_user_find(r.m, name, &u);
	if (rc < 0 && rc != -ENOENT) {
		api_mgmt_fail(&r, API_INTERNAL_ERROR, "the users could not be read");
		goto out;
	}
	const char *why = rc == -ENOENT ? "unknown user" : !u.active ? "user inactive" : NULL;
	if (why)
		auth_password_dummy(pw, strlen(pw), &cost);
	else if (auth_password_verify(u.hash, pw, strlen(pw)) != 0)
		why = "wrong password";
	if (why) {
		mgmt_login_record(r.m, name, ip, agent, MGMT_LOGIN_FAILURE, why, err, sizeof(err));
		api_mgmt_fail(&r, API_UNAUTHORIZED, "invalid username or password");
		goto out;
	}
	if (auth_password_needs_rehash(u.hash, &cost)) {
		/* The configured cost changed: the same password, hashed anew. */
		mgmt_user_change_t ch = {
		    .role = -1, .active = -1, .rehash = true, .operation = "password-rehash"};
		mgmt_ctx_t ctx = {.operator_id = u.username, .complete = -1, .surface = "rust"};
		char hash[AUTH_HASH_MAX];
		if (auth_password_hash(pw, strlen(pw), &cost, hash) == 0) {
			ch.hash = hash;
			mgmt_user_update(r.m, u.id, &ch, &ctx, NULL, err, sizeof(err));
		}
	}
	issue(&r, &u, NULL);
out:
	api_mgmt_end(&r);
}

void api_auth_refresh(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_user_t u;
	const api_principal_t *p = api_principal();

	if (!begin(&r, req, res, true))
		return;
	if (!p->authenticated)
		api_mgmt_fail(&r, API_UNAUTHORIZED, "a valid token is needed to refresh it");
	else if (mgmt_user_find(r.m, p->who.username, &u) < 0)
		api_mgmt_fail(&r, API_UNAUTHORIZED, "the user is gone");
	else
		issue(&r, &u, p->who.sid);
	api_mgmt_end(&r);
}

void api_auth_logout(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	char err[MGMT_MAX_ERR];
	const api_principal_t *p = api_principal();

	if (!begin(&r, req, res, true))
		return;
	int rc =
	    p->authenticated ? mgmt_session_revoke(r.m, p->who.sid, NULL, err, sizeof(err)) : 0;
	if (rc < 0)
		fail_rc(&r, rc, err);
	else
		api_mgmt_ok(&r);
	api_mgmt_end(&r);
}

void api_auth_roles(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	if (!begin(&r, req, res, true))
		return;
	api_mgmt_ok_open(&r);
	json_put_raw(api_mgmt_out(&r), "[\"admin\",\"operator\",\"viewer\"]");
	api_mgmt_ok_close(&r);
	api_mgmt_end(&r);
}

/* ---- The caller ------------------------------------------------------------------------------ */

void api_auth_user(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_user_t u;
	const api_principal_t *p = api_principal();

	if (!begin(&r, req, res, true))
		return;
	memset(&u, 0, sizeof(u));
	if (p->authenticated && mgmt_user_find(r.m, p->who.username, &u) < 0) {
		api_mgmt_fail(&r, API_UNAUTHORIZED, "the user is gone");
	} else {
		if (!p->authenticated) { /* [auth] enabled = off, no token */
			snprintf(u.username, sizeof(u.username), "%s", p->who.username);
			u.role = p->who.role;
			u.active = true;
		}
		api_mgmt_ok_open(&r);
		put_user(api_mgmt_out(&r), &u);
		api_mgmt_ok_close(&r);
	}
	api_mgmt_end(&r);
}

/* The permissions of each role (MANAGEMENT.md §3.2.7), as resource:action
 * patterns. */
static const char *const role_perms[][7] = {
    [MGMT_ROLE_VIEWER] = {"*:read"},
    [MGMT_ROLE_OPERATOR] = {"services:*", "instances:*", "routing:*", "cluster:read", "audit:read",
                            "auth:read"},
    [MGMT_ROLE_ADMIN] = {"*:*"},
};

void api_auth_permissions(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	if (!begin(&r, req, res, true))
		return;
	buf_t *b = api_mgmt_out(&r);
	const char *const *perms = role_perms[api_principal()->who.role];
	api_mgmt_ok_open(&r);
	json_put_raw(b, "[");
	for (int i = 0; i < 7 && perms[i]; i++) {
		json_put_raw(b, i ? "," : "");
		json_put_cstr(b, perms[i]);
	}
	json_put_raw(b, "]");
	api_mgmt_ok_close(&r);
	api_mgmt_end(&r);
}

/* The resource families of the permission list: what operators write
 * (zones, servers, operations are instances; groups, rules, canary are
 * routing), as the enforcement does. */
static const char *family(const char *resource)
{
	static const char *const alias[][2] = {
	    {"zones", "instances"},      {"servers", "instances"}, {"operations", "instances"},
	    {"groups", "routing"},       {"rules", "routing"},     {"canary", "routing"},
	    {"management", "instances"}, {"users", "auth"},        {"sessions", "auth"},
	};
	for (size_t i = 0; i < sizeof(alias) / sizeof(alias[0]); i++)
		if (strcasecmp(resource, alias[i][0]) == 0)
			return alias[i][1];
	return resource;
}

static bool allowed(mgmt_role_t role, const char *resource, const char *action)
{
	const char *const *perms = role_perms[role];
	const char *fam = family(resource);
	for (int i = 0; i < 7 && perms[i]; i++) {
		const char *colon = strchr(perms[i], ':');
		size_t n = (size_t)(colon - perms[i]);
		bool res_ok = (n == 1 && perms[i][0] == '*') ||
		              (strlen(fam) == n && strncasecmp(fam, perms[i], n) == 0);
		bool act_ok = !strcmp(colon + 1, "*") || !strcasecmp(colon + 1, action);
		if (res_ok && act_ok)
			return true;
	}
	return false;
}

void api_auth_check_permission(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	bool bad = false;
	if (!begin(&r, req, res, false))
		return;
	const char *resource = member(r.body, "resource", 64, &bad);
	const char *action = member(r.body, "action", 64, &bad);
	if (bad || !resource || !action || !*resource || !*action) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "resource and action are required");
	} else {
		buf_t *b = api_mgmt_out(&r);
		api_mgmt_ok_open(&r);
		api_mgmt_kv(b, '{', "action", action);
		api_mgmt_kv_bool(b, ',', "allowed",
		                 allowed(api_principal()->who.role, resource, action));
		api_mgmt_kv(b, ',', "resource", resource);
		api_mgmt_kv(b, ',', "role", mgmt_role_name(api_principal()->who.role));
		json_put_raw(b, "}");
		api_mgmt_ok_close(&r);
	}
	api_mgmt_end(&r);
}

/* ---- Passwords ------------------------------------------------------------------------------- */

/* Set user id's password to pw (keep_sid: the caller's own session stays). */
static void set_password(api_mgmt_req_t *r, int64_t id, const char *pw, const char *keep_sid,
                         const char *operation)
{
	char hash[AUTH_HASH_MAX], err[MGMT_MAX_ERR], op[MGMT_MAX_OPERATOR + 1];
	auth_cost_t cost = api_auth_cost();
	mgmt_ctx_t ctx = write_ctx(r, op, sizeof(op));
	mgmt_user_change_t ch = {
	    .role = -1, .active = -1, .hash = hash, .keep_sid = keep_sid, .operation = operation};
	if (auth_password_hash(pw, strlen(pw), &cost, hash) < 0) {
		api_mgmt_fail(r, API_INTERNAL_ERROR, "hashing the password failed");
		return;
	}
	int rc = mgmt_user_update(r->m, id, &ch, &ctx, NULL, err, sizeof(err));
	if (rc < 0)
		fail_rc(r, rc, err);
	else
		api_mgmt_ok(r);
}

void api_auth_password_change(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_user_t u;
	bool bad = false;
	const api_principal_t *p = api_principal();

	if (!begin(&r, req, res, false))
		return;
	const char *old = member(r.body, "oldpassword", CONFIG_MAX_PASSWORD + 1, &bad);
	const char *pw = member(r.body, "newpassword", CONFIG_MAX_PASSWORD + 1, &bad);
	if (!p->authenticated)
		api_mgmt_fail(&r, API_UNAUTHORIZED, "log in to change your password");
	else if (bad || !old || !password_ok(pw))
		api_mgmt_fail(&r, API_BAD_REQUEST,
		              "oldPassword, and a newPassword of %d to %d "
		              "characters, are required",
		              CONFIG_MIN_PASSWORD, CONFIG_MAX_PASSWORD);
	else if (mgmt_user_find(r.m, p->who.username, &u) < 0)
		api_mgmt_fail(&r, API_UNAUTHORIZED, "the user is gone");
	else if (auth_password_verify(u.hash, old, strlen(old)) != 0)
		api_mgmt_fail(&r, API_BAD_REQUEST, "oldPassword is not the current password");
	else
		set_password(&r, u.id, pw, p->who.sid, "password-change");
	api_mgmt_end(&r);
}

void api_auth_password_reset(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	int64_t id;
	bool bad = false;

	if (!begin(&r, req, res, false))
		return;
	const char *pw = member(r.body, "newpassword", CONFIG_MAX_PASSWORD + 1, &bad);
	if (path_user_id(&r, &id)) {
		if (bad || !password_ok(pw))
			api_mgmt_fail(&r, API_BAD_REQUEST,
			              "a newPassword of %d to %d characters is "
			              "required",
			              CONFIG_MIN_PASSWORD, CONFIG_MAX_PASSWORD);
		else
			set_password(&r, id, pw, NULL, "password-reset");
	}
	api_mgmt_end(&r);
}

/* ---- Sessions -----------------------------------------------------------------------------------
 */

typedef struct {
	buf_t *b;
	int n;
} list_t;

static int list_session(void *ctx, const mgmt_session_t *s)
{
	list_t *l = ctx;
	json_put_raw(l->b, l->n++ ? "," : "");
	put_session(l->b, s);
	return 0;
}

void api_auth_sessions(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	char name[MGMT_MAX_USERNAME + 2];
	const api_principal_t *p = api_principal();

	if (!begin(&r, req, res, true))
		return;
	/* An admin sees every session (?username= narrows); others their own. */
	const char *who = p->who.role == MGMT_ROLE_ADMIN
	                      ? api_mgmt_arg(&r, "username", name, sizeof(name))
	                      : p->who.username;
	buf_t *b = api_mgmt_out(&r);
	api_mgmt_ok_open(&r);
	json_put_raw(b, "[");
	list_t l = {b, 0};
	int rc = mgmt_sessions(r.m, who && *who ? who : NULL, clock_wall_ms(), list_session, &l);
	json_put_raw(b, "]");
	if (rc < 0)
		api_mgmt_fail_rc(&r, rc, "reading the sessions failed");
	else
		api_mgmt_ok_close(&r);
	api_mgmt_end(&r);
}

void api_auth_session_delete(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_session_t s;
	char err[MGMT_MAX_ERR], op[MGMT_MAX_OPERATOR + 1];
	const api_principal_t *p = api_principal();
	const char *sid = api_param("sessionId");

	if (!begin(&r, req, res, true))
		return;
	int rc = mgmt_session_get(r.m, sid, &s);
	if (rc == -ENOENT) {
		api_mgmt_fail(&r, API_DATA_NOT_FOUND, "no session %s", sid);
	} else if (rc < 0) {
		api_mgmt_fail_rc(&r, rc, "reading the session failed");
	} else if (p->who.role != MGMT_ROLE_ADMIN && strcasecmp(s.username, p->who.username) != 0) {
		api_mgmt_fail(&r, API_NO_PERMISSION, "only an admin ends another user's session");
	} else {
		mgmt_ctx_t ctx = write_ctx(&r, op, sizeof(op));
		rc = mgmt_session_revoke(r.m, sid, &ctx, err, sizeof(err));
		if (rc < 0)
			fail_rc(&r, rc, err);
		else
			api_mgmt_ok(&r);
	}
	api_mgmt_end(&r);
}

/* ---- Users -------------------------------------------------------------------------------------
 */

static int list_user(void *ctx, const mgmt_user_t *u)
{
	list_t *l = ctx;
	json_put_raw(l->b, l->n++ ? "," : "");
	put_user(l->b, u);
	return 0;
}

void api_auth_users(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	if (!begin(&r, req, res, true))
		return;
	buf_t *b = api_mgmt_out(&r);
	list_t l = {b, 0};
	api_mgmt_ok_open(&r);
	json_put_raw(b, "[");
	int rc = mgmt_users(r.m, list_user, &l);
	json_put_raw(b, "]");
	if (rc < 0)
		api_mgmt_fail_rc(&r, rc, "reading the users failed");
	else
		api_mgmt_ok_close(&r);
	api_mgmt_end(&r);
}

static void answer_user(api_mgmt_req_t *r, const mgmt_user_t *u, int status)
{
	api_mgmt_ok_open(r);
	put_user(api_mgmt_out(r), u);
	api_mgmt_ok_close(r);
	if (r->res->status == 200)
		r->res->status = status;
}

/* role / status members: -1 absent, else the value; false (400 written)
 * when invalid. */
static bool role_status(api_mgmt_req_t *r, int *role, int *active)
{
	bool bad = false;
	mgmt_role_t rl;
	const char *rs = member(r->body, "role", 16, &bad);
	const char *ss = member(r->body, "status", 16, &bad);
	*role = *active = -1;
	if (bad || (rs && mgmt_role_parse(rs, &rl) < 0) ||
	    (ss && strcasecmp(ss, "active") != 0 && strcasecmp(ss, "inactive") != 0)) {
		api_mgmt_fail(r, API_BAD_REQUEST,
		              "role is admin, operator or viewer; status is "
		              "active or inactive");
		return false;
	}
	if (rs)
		*role = (int)rl;
	if (ss)
		*active = strcasecmp(ss, "active") == 0;
	return true;
}

void api_auth_user_create(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_user_t u;
	char err[MGMT_MAX_ERR], op[MGMT_MAX_OPERATOR + 1];
	auth_cost_t cost = api_auth_cost();
	bool bad = false;
	int role, active;

	if (!begin(&r, req, res, false))
		return;
	memset(&u, 0, sizeof(u));
	const char *name = member(r.body, "username", MGMT_MAX_USERNAME + 1, &bad);
	const char *pw = member(r.body, "password", CONFIG_MAX_PASSWORD + 1, &bad);
	const char *email = member(r.body, "email", MGMT_MAX_EMAIL + 1, &bad);
	const char *desc = member(r.body, "description", MGMT_MAX_DESCRIPTION + 1, &bad);
	if (!role_status(&r, &role, &active))
		goto out;
	if (bad || !name || mgmt_username_check(name) < 0) {
		api_mgmt_fail(&r, API_BAD_REQUEST,
		              "username must have 3 to %d of A-Z a-z 0-9 . _ "
		              "@ -, starting with a letter or digit; email and "
		              "description are bounded strings",
		              MGMT_MAX_USERNAME);
		goto out;
	}
	if (!password_ok(pw)) {
		api_mgmt_fail(&r, API_BAD_REQUEST, "password must have %d to %d characters",
		              CONFIG_MIN_PASSWORD, CONFIG_MAX_PASSWORD);
		goto out;
	}
	snprintf(u.username, sizeof(u.username), "%s", name);
	snprintf(u.email, sizeof(u.email), "%s", email ? email : "");
	snprintf(u.description, sizeof(u.description), "%s", desc ? desc : "");
	u.role = role < 0 ? MGMT_ROLE_VIEWER : (mgmt_role_t)role;
	u.active = active != 0;
	if (auth_password_hash(pw, strlen(pw), &cost, u.hash) < 0) {
		api_mgmt_fail(&r, API_INTERNAL_ERROR, "hashing the password failed");
		goto out;
	}
	mgmt_ctx_t ctx = write_ctx(&r, op, sizeof(op));
	int rc = mgmt_user_create(r.m, &u, &ctx, err, sizeof(err));
	if (rc < 0)
		fail_rc(&r, rc, err);
	else
		answer_user(&r, &u, 201);
out:
	api_mgmt_end(&r);
}

void api_auth_user_get(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_user_t u;
	int64_t id;
	if (!begin(&r, req, res, true))
		return;
	if (path_user_id(&r, &id)) {
		int rc = mgmt_user_get(r.m, id, &u);
		if (rc < 0)
			fail_rc(&r, rc, rc == -ENOENT ? "no such user" : "reading the user failed");
		else
			answer_user(&r, &u, 200);
	}
	api_mgmt_end(&r);
}

/* PUT /users/{id} and PUT|PATCH /users/{id}/status: one change. */
static void update(const http_request_t *req, http_response_t *res, bool status_only)
{
	api_mgmt_req_t r;
	mgmt_user_t after;
	char err[MGMT_MAX_ERR], op[MGMT_MAX_OPERATOR + 1];
	bool bad = false;
	int64_t id;
	mgmt_user_change_t ch = {.role = -1, .active = -1, .operation = "update"};

	if (!begin(&r, req, res, false))
		return;
	if (!path_user_id(&r, &id) || !role_status(&r, &ch.role, &ch.active))
		goto out;
	if (status_only) {
		ch.role = -1;
		ch.operation = "status";
		if (ch.active < 0) {
			api_mgmt_fail(&r, API_BAD_REQUEST,
			              "status (active or inactive) is required");
			goto out;
		}
	} else {
		ch.email = member(r.body, "email", MGMT_MAX_EMAIL + 1, &bad);
		ch.description = member(r.body, "description", MGMT_MAX_DESCRIPTION + 1, &bad);
		if (bad) {
			api_mgmt_fail(&r, API_BAD_REQUEST,
			              "email and description are bounded "
			              "strings");
			goto out;
		}
	}
	mgmt_ctx_t ctx = write_ctx(&r, op, sizeof(op));
	int rc = mgmt_user_update(r.m, id, &ch, &ctx, &after, err, sizeof(err));
	if (rc < 0)
		fail_rc(&r, rc, err);
	else
		answer_user(&r, &after, 200);
out:
	api_mgmt_end(&r);
}

void api_auth_user_update(const http_request_t *req, http_response_t *res)
{
	update(req, res, false);
}

void api_auth_user_status(const http_request_t *req, http_response_t *res)
{
	update(req, res, true);
}

void api_auth_user_delete(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	char err[MGMT_MAX_ERR], op[MGMT_MAX_OPERATOR + 1];
	int64_t id;
	if (!begin(&r, req, res, true))
		return;
	if (path_user_id(&r, &id)) {
		mgmt_ctx_t ctx = write_ctx(&r, op, sizeof(op));
		int rc = mgmt_user_delete(r.m, id, &ctx, err, sizeof(err));
		if (rc < 0)
			fail_rc(&r, rc, err);
		else
			api_mgmt_ok(&r);
	}
	api_mgmt_end(&r);
}

typedef struct {
	buf_t *b;
	int n;
	int64_t user_id;
} history_t;

static int list_login(void *ctx, const mgmt_login_t *l)
{
	history_t *h = ctx;
	buf_t *b = h->b;
	json_put_raw(b, h->n++ ? "," : "");
	api_mgmt_kv_i64(b, '{', "id", l->id);
	api_mgmt_kv(b, ',', "ipAddress", l->ip);
	api_mgmt_kv(b, ',', "reason", l->reason);
	api_mgmt_kv(b, ',', "result", l->result);
	api_mgmt_kv_bool(b, ',', "success", !strcmp(l->result ? l->result : "", "success"));
	api_mgmt_kv_i64(b, ',', "time", (int64_t)(l->time_ms / 1000));
	api_mgmt_kv(b, ',', "userAgent", l->agent);
	api_mgmt_kv_i64(b, ',', "userId", h->user_id);
	api_mgmt_kv(b, ',', "username", l->username);
	json_put_raw(b, "}");
	return 0;
}

void api_auth_login_history(const http_request_t *req, http_response_t *res)
{
	api_mgmt_req_t r;
	mgmt_user_t u;
	char lim[16];
	int64_t id;
	if (!begin(&r, req, res, true))
		return;
	if (!path_user_id(&r, &id))
		goto out;
	int rc = mgmt_user_get(r.m, id, &u);
	if (rc < 0) {
		fail_rc(&r, rc, rc == -ENOENT ? "no such user" : "reading the user failed");
		goto out;
	}
	long limit = api_mgmt_arg(&r, "limit", lim, sizeof(lim)) ? strtol(lim, NULL, 10)
	                                                         : LOGIN_HISTORY_DEFAULT;
	if (limit <= 0 || limit > LOGIN_HISTORY_MAX)
		limit = LOGIN_HISTORY_MAX;
	buf_t *b = api_mgmt_out(&r);
	history_t h = {b, 0, u.id};
	api_mgmt_ok_open(&r);
	json_put_raw(b, "[");
	rc = mgmt_logins(r.m, u.username, (uint32_t)limit, list_login, &h);
	json_put_raw(b, "]");
	if (rc < 0)
		api_mgmt_fail_rc(&r, rc, "reading the login history failed");
	else
		api_mgmt_ok_close(&r);
out:
	api_mgmt_end(&r);
}

"""
test_auth.py - users, roles, sessions and tokens (MANAGEMENT.md §3.2.7, §6)
through the whole /api/auth surface, as a console or a script uses it:
login and its refusals, the token's claims, logout and refresh (revoked on
every worker at once), the caller's user and permissions, passwords, the
sessions, users CRUD with the last admin kept, the login history; tokens
expired, malformed, signed with another key, of a deleted or disabled user,
of a demoted user; the Java surface's body token; both identities in the
audit; [auth] enabled = off; restart keeps users and sessions; the first
admin's random password file; the lockout of repeated failed logins.
"""

import os
import re
import signal
import stat
import time

import pytest

from artemis_it import ADMIN_PASSWORD, REGION, uniq, wait_for
from auth_util import (A, JWT_SECRET, assert_refused_everywhere, call, claims, login,
                       make_user, sign)

M = "/api/management/"


@pytest.fixture(scope="module")
def node(module_node_factory):
    return module_node_factory(auth={"jwt_secret": JWT_SECRET})


@pytest.fixture(scope="module")
def admin(node):
    return login(node)


# ------------------------------------------------------------------ login ---

def test_login_answers_a_bearer_jwt_bound_to_a_session(node):
    st, b, _ = call(node, "POST", A + "login", {"username": "admin", "password": ADMIN_PASSWORD})
    assert st == 200 and b["success"] is True, b
    d = b["data"]
    assert d["tokenType"] == "Bearer" and d["expiresIn"] == 3600, d
    c = claims(d["accessToken"])
    assert set(c) == {"sub", "username", "role", "sid", "iat", "exp"}, c
    assert c["username"] == "admin" and c["role"] == "admin" and c["exp"] - c["iat"] == 3600
    assert abs(c["iat"] - time.time()) < 60 and re.fullmatch(r"[0-9a-f]{32}", c["sid"])
    assert d["user"]["username"] == "admin" and "password" not in str(d["user"]).lower()
    # The usernames' case does not matter; the password's does.
    assert call(node, "POST", A + "login", {"username": "ADMIN",
                                           "password": ADMIN_PASSWORD})[0] == 200


def test_login_refusals_say_the_same_for_unknown_users(node):
    wrong = call(node, "POST", A + "login", {"username": "admin", "password": "nope-nope"})
    nobody = call(node, "POST", A + "login", {"username": uniq("ghost"), "password": "nope-nope"})
    for st, b, _ in (wrong, nobody):
        assert st == 401 and b == {"data": None, "errorCode": "unauthorized",
                                   "message": "invalid username or password",
                                   "success": False}, b
    for body in ({}, {"username": "admin"}, {"password": "x"}, {"username": 7, "password": "x"},
                 {"username": "a" * 100, "password": "x"}, {"username": "admin",
                                                            "password": "p" * 200}):
        st, b, _ = call(node, "POST", A + "login", body)
        assert st == 400 and b["success"] is False, (body, b)
    st, _, _ = call(node, "GET", A + "login")
    assert st == 405


def test_roles_are_public(node):
    st, b, _ = call(node, "GET", A + "roles")
    assert st == 200 and b == {"success": True, "data": ["admin", "operator", "viewer"]}


# ---------------------------------------------------- logout and refresh ---

def test_logout_revokes_on_every_worker_at_once(node):
    token = login(node)
    for _ in range(8):  # cached on both workers first
        assert call(node, "GET", A + "user", token=token)[0] == 200
    st, b, _ = call(node, "POST", A + "logout", {}, token)
    assert st == 200 and b["success"] is True
    assert_refused_everywhere(node, token)
    st, b, h = call(node, "GET", A + "user", token=token)
    assert b["message"] == "the session has ended" and h["www-authenticate"] == "Bearer"


def test_refresh_gives_a_new_token_and_ends_the_old(node):
    old = login(node)
    st, b, _ = call(node, "POST", A + "refresh", {"token": old})  # the body's token
    assert st == 200, b
    new = b["data"]["accessToken"]
    assert new != old and claims(new)["sid"] != claims(old)["sid"]
    assert call(node, "GET", A + "user", token=new)[0] == 200
    assert_refused_everywhere(node, old)
    assert call(node, "POST", A + "refresh", {"token": old})[0] == 401
    st, b, _ = call(node, "POST", A + "refresh", {}, new)  # or the header's
    assert st == 200 and b["data"]["accessToken"] != new


# ------------------------------------------------------------- the caller ---

def test_user_and_permissions_per_role(node, admin):
    perms = {"admin": ["*:*"], "viewer": ["*:read"],
             "operator": ["services:*", "instances:*", "routing:*", "cluster:read",
                          "audit:read", "auth:read"]}
    for role in ("viewer", "operator"):
        uid, tok = make_user(node, admin, uniq(role), role)
        st, b, _ = call(node, "GET", A + "user", token=tok)
        assert st == 200 and b["data"]["role"] == role and b["data"]["userId"] == uid
        assert set(b["data"]) == {"userId", "username", "email", "description", "role",
                                  "status", "createdAt", "updatedAt"}
        assert call(node, "GET", A + "permissions", token=tok)[1]["data"] == perms[role]
    assert call(node, "GET", A + "permissions", token=admin)[1]["data"] == perms["admin"]
    assert call(node, "GET", A + "user")[0] == 401


@pytest.mark.parametrize("role,resource,action,allowed", [
    ("viewer", "instances", "read", True), ("viewer", "instances", "write", False),
    ("operator", "routing", "write", True), ("operator", "canary", "write", True),
    ("operator", "zones", "delete", True), ("operator", "users", "write", False),
    ("operator", "audit", "read", True), ("operator", "cluster", "write", False),
    ("admin", "users", "delete", True)])
def test_check_permission(node, admin, role, resource, action, allowed):
    tok = admin if role == "admin" else make_user(node, admin, uniq(role), role)[1]
    st, b, _ = call(node, "POST", A + "check-permission",
                    {"resource": resource, "action": action}, tok)
    assert st == 200 and b["data"]["allowed"] is allowed, b
    assert call(node, "POST", A + "check-permission", {"resource": "x"}, tok)[0] == 400


# -------------------------------------------------------------- passwords ---

def test_password_change_keeps_this_session_and_ends_the_others(node, admin):
    name = uniq("pw")
    _, here = make_user(node, admin, name, "viewer", "first-password")
    elsewhere = login(node, name, "first-password")
    st, b, _ = call(node, "POST", A + "password/change",
                    {"oldPassword": "wrong-password", "newPassword": "second-password"}, here)
    assert st == 400 and "oldPassword" in b["message"]
    st, b, _ = call(node, "POST", A + "password/change",
                    {"oldPassword": "first-password", "newPassword": "short"}, here)
    assert st == 400
    st, b, _ = call(node, "POST", A + "password/change",
                    {"oldPassword": "first-password", "newPassword": "second-password"}, here)
    assert st == 200, b
    assert call(node, "GET", A + "user", token=here)[0] == 200
    assert_refused_everywhere(node, elsewhere)
    assert call(node, "POST", A + "login", {"username": name,
                                           "password": "first-password"})[0] == 401
    login(node, name, "second-password")


def test_password_reset_by_an_admin_ends_every_session(node, admin):
    name = uniq("reset")
    uid, tok = make_user(node, admin, name, "operator")
    st, _, _ = call(node, "POST", A + "password/reset/%d" % uid, {"newPassword": "reset-pass-1"},
                    tok)
    assert st == 403  # not an admin
    st, b, _ = call(node, "POST", A + "password/reset/%d" % uid, {"newPassword": "reset-pass-1"},
                    admin)
    assert st == 200, b
    assert_refused_everywhere(node, tok)
    login(node, name, "reset-pass-1")
    assert call(node, "POST", A + "password/reset/99999999", {"newPassword": "reset-pass-1"},
                admin)[0] == 404
    assert call(node, "POST", A + "password/reset/abc", {"newPassword": "reset-pass-1"},
                admin)[0] == 400


# --------------------------------------------------------------- sessions ---

def test_sessions_own_and_others(node, admin):
    name = uniq("sess")
    _, mine = make_user(node, admin, name, "operator")
    other_name = uniq("sess")
    _, other = make_user(node, admin, other_name, "viewer")
    st, b, _ = call(node, "GET", A + "sessions", token=mine)
    assert st == 200 and [s["username"] for s in b["data"]] == [name], b
    s = b["data"][0]
    assert set(s) >= {"sessionId", "userId", "ipAddress", "userAgent", "createdAt",
                      "expiresAt", "lastActivity"}
    assert s["current"] is True and s["ipAddress"] == "127.0.0.1"
    assert s["expiresAt"] - s["createdAt"] == 3600
    # An admin sees everyone's; ?username= narrows it.
    st, b, _ = call(node, "GET", A + "sessions", token=admin)
    names = {x["username"] for x in b["data"]}
    assert {name, other_name, "admin"} <= names
    st, b, _ = call(node, "GET", A + "sessions?username=" + other_name, token=admin)
    assert [x["username"] for x in b["data"]] == [other_name]
    other_sid = b["data"][0]["sessionId"]
    # Another user's session is an admin's business.
    assert call(node, "DELETE", A + "sessions/" + other_sid, token=mine)[0] == 403
    assert call(node, "DELETE", A + "sessions/" + "0" * 32, token=admin)[0] == 404
    assert call(node, "DELETE", A + "sessions/" + other_sid, token=admin)[0] == 200
    assert_refused_everywhere(node, other)
    # One's own: a logout.
    assert call(node, "DELETE", A + "sessions/" + claims(mine)["sid"], token=mine)[0] == 200
    assert_refused_everywhere(node, mine)


# ------------------------------------------------------------------ users ---

def test_users_crud(node, admin):
    name = uniq("crud")
    st, b, _ = call(node, "POST", A + "users", {"username": name, "password": "crud-password",
                                                "role": "operator", "email": "c@example.com",
                                                "description": "made by a test"}, admin)
    assert st == 201, b
    u = b["data"]
    assert (u["username"], u["role"], u["status"], u["email"]) == (name, "operator", "active",
                                                                   "c@example.com")
    uid = u["userId"]
    assert call(node, "POST", A + "users", {"username": name.upper(), "password": "crud-password",
                                           "role": "viewer"}, admin)[0] == 409
    for bad in ({"username": name + "x", "password": "crud-password", "role": "root"},
                {"username": "-x", "password": "crud-password"},
                {"username": "ab", "password": "crud-password"},
                {"username": name + "y", "password": "short"},
                {"username": name + "z"}):
        st, b, _ = call(node, "POST", A + "users", bad, admin)
        assert st == 400 and b["success"] is False, (bad, b)
    st, b, _ = call(node, "GET", A + "users", token=admin)
    assert name in [x["username"] for x in b["data"]]
    assert all("hash" not in str(x).lower() and "password" not in x for x in b["data"])
    assert call(node, "GET", A + "users/%d" % uid, token=admin)[1]["data"]["username"] == name
    assert call(node, "GET", A + "users/99999999", token=admin)[0] == 404
    st, b, _ = call(node, "PUT", A + "users/%d" % uid, {"role": "viewer",
                                                       "description": "changed"}, admin)
    assert st == 200 and b["data"]["role"] == "viewer" and b["data"]["description"] == "changed"
    st, b, _ = call(node, "PATCH", A + "users/%d/status" % uid, {"status": "inactive"}, admin)
    assert st == 200 and b["data"]["status"] == "inactive"
    assert call(node, "POST", A + "login", {"username": name,
                                           "password": "crud-password"})[0] == 401
    st, b, _ = call(node, "PUT", A + "users/%d/status" % uid, {"status": "active"}, admin)
    assert st == 200
    assert call(node, "PUT", A + "users/%d/status" % uid, {"status": "gone"}, admin)[0] == 400
    assert call(node, "DELETE", A + "users/%d" % uid, token=admin)[0] == 200
    assert call(node, "GET", A + "users/%d" % uid, token=admin)[0] == 404
    assert call(node, "DELETE", A + "users/%d" % uid, token=admin)[0] == 404


def test_the_last_admin_stays(node_factory):
    n = node_factory()
    admin = login(n)
    st, b, _ = call(n, "GET", A + "user", token=admin)
    aid = b["data"]["userId"]
    for method, path, body in (("DELETE", "users/%d" % aid, None),
                               ("PUT", "users/%d" % aid, {"role": "operator"}),
                               ("PUT", "users/%d/status" % aid, {"status": "inactive"})):
        st, b, _ = call(n, method, A + path, body, admin)
        assert st == 409 and "last active admin" in b["message"], (path, b)
    other, other_tok = make_user(n, admin, "second-admin", "admin")
    assert call(n, "PUT", A + "users/%d" % aid, {"role": "viewer"}, admin)[0] == 200
    # Demoted at once: the same token is a viewer's now.
    st, _, _ = call(n, "GET", A + "users", token=admin)
    assert st == 403
    assert call(n, "DELETE", A + "users/%d" % other, token=other_tok)[0] == 409


def test_login_history(node, admin):
    name = uniq("hist")
    uid, _ = make_user(node, admin, name, "viewer", "history-password")
    call(node, "POST", A + "login", {"username": name, "password": "wrong-one"},
         headers={"User-Agent": "history-test/1"})
    st, b, _ = call(node, "GET", A + "users/%d/login-history" % uid, token=admin)
    assert st == 200, b
    got = [(x["result"], x["success"], x["username"], x["userId"]) for x in b["data"]]
    assert got == [("failure", False, name, uid), ("success", True, name, uid)], b
    assert b["data"][0]["userAgent"] == "history-test/1"
    assert b["data"][0]["ipAddress"] == "127.0.0.1" and b["data"][0]["reason"]
    assert len(call(node, "GET", A + "users/%d/login-history?limit=1" % uid,
                    token=admin)[1]["data"]) == 1


# ----------------------------------------------------------- bad tokens ---

def test_tokens_that_do_not_pass(node, admin):
    c = claims(admin)
    now = int(time.time())
    bad = {
        "expired": sign(dict(c, iat=now - 7200, exp=now - 3600)),
        "another key": sign(c, secret="another secret, also 32 characters long"),
        "alg none": sign(c, header={"alg": "none", "typ": "JWT"}).rsplit(".", 1)[0] + ".",
        "tampered": admin[:-2] + ("A" if admin[-2] != "A" else "B") + admin[-1],
        "malformed": "not.a.token",
        "empty": "",
        "unknown session": sign(dict(c, sid="f" * 32)),
        "someone else's name": sign(dict(c, username="nobody-at-all")),
    }
    for why, tok in bad.items():
        st, b, _ = call(node, "GET", A + "user", headers={"Authorization": "Bearer " + tok})
        assert st == 401, (why, b)
    st, b, _ = call(node, "GET", A + "user", token=bad["expired"])
    assert b["message"] == "the token has expired"
    # A valid signature with a longer life than its session: the session decides.
    assert call(node, "GET", A + "user", token=sign(dict(c, exp=now + 99999)))[0] == 200
    assert call(node, "GET", A + "user", headers={"Authorization": "Basic YWRtaW4="})[0] == 401


def test_tokens_of_deleted_and_disabled_users(node, admin):
    gone, gone_tok = make_user(node, admin, uniq("gone"), "operator")
    off, off_tok = make_user(node, admin, uniq("off"), "operator")
    for tok in (gone_tok, off_tok):
        assert call(node, "GET", M + "zone/operations", token=tok)[0] == 200
    call(node, "DELETE", A + "users/%d" % gone, token=admin)
    call(node, "PUT", A + "users/%d/status" % off, {"status": "inactive"}, admin)
    assert_refused_everywhere(node, gone_tok, M + "zone/operations")
    assert_refused_everywhere(node, off_tok, M + "zone/operations")


# ------------------------------------------------ roles on the surfaces ---

def test_viewer_reads_and_cannot_write_on_both_surfaces(node, admin):
    _, viewer = make_user(node, admin, uniq("view"), "viewer")
    _, operator = make_user(node, admin, uniq("oper"), "operator")
    svc = uniq()
    java = {"instanceKey": {"regionId": REGION, "serviceId": svc, "instanceId": "i1"},
            "operation": "pullout", "operationComplete": False, "operatorId": "op"}
    st, b, _ = call(node, "POST", M + "operate-instance.json", java, viewer)
    assert st == 200 and b["responseStatus"]["errorCode"] == "no-permission", b
    assert "viewer" in b["responseStatus"]["message"]
    st, b, _ = call(node, "POST", M + "zone/pull-out", {"zoneId": "z", "regionId": REGION},
                    viewer)
    assert st == 403 and b["success"] is False and "viewer" in b["message"], b
    st, b, _ = call(node, "POST", M + "instance/operate-instance.json", java, viewer)
    assert st == 403 and b["status"]["errorCode"] == "no-permission", b
    # Reads, including Java's read-only POSTs, are a viewer's.
    assert call(node, "POST", M + "all-instance-operations.json", {}, viewer)[0] == 200
    assert call(node, "GET", M + "audit/logs", token=viewer)[0] == 200
    # Operators write; nobody's write without a token.
    st, b, _ = call(node, "POST", M + "operate-instance.json", java, operator)
    assert b["responseStatus"]["errorCode"] == "success", b
    st, b, _ = call(node, "POST", M + "operate-instance.json", java)
    assert st == 200 and b["responseStatus"]["errorCode"] == "no-permission"
    assert "token" in b["responseStatus"]["message"]
    # The audit cleanup and users are an admin's.
    assert call(node, "DELETE", M + "audit/logs/cleanup?before=1", token=operator)[0] == 403
    assert call(node, "GET", A + "users", token=operator)[0] == 403


def test_java_body_token_and_both_identities_in_the_audit(node, admin):
    name = uniq("javaop")
    _, tok = make_user(node, admin, name, "operator")
    svc = uniq()
    body = {"instanceKey": {"regionId": REGION, "serviceId": svc, "instanceId": "i1"},
            "operation": "pullout", "operationComplete": False, "operatorId": "ticket-42",
            "token": tok}
    st, b, _ = call(node, "POST", M + "operate-instance.json", body)  # no header
    assert b["responseStatus"]["errorCode"] == "success", b
    logs = call(node, "GET", M + "audit/logs?serviceId=" + svc, token=admin)[1]["data"]
    assert [(x["operatorId"], x["username"]) for x in logs] == [("ticket-42", name)]
    st, b, _ = call(node, "POST", M + "log/instance-operation-logs.json",
                    {"serviceId": svc, "token": tok})
    (log,) = b["logs"]
    assert log["operatorId"] == "ticket-42" and log["username"] == name
    assert log["token"] is None  # a credential is never shown back
    # Filters by the authenticated user.
    logs = call(node, "GET", M + "audit/logs?username=" + name, token=admin)[1]["data"]
    assert [x["targetId"] for x in logs] == ["%s/%s/i1" % (REGION, svc)]
    # The body token is not taken on the Rust surface.
    st, _, _ = call(node, "POST", M + "zone/pull-out", {"zoneId": "z", "token": tok})
    assert st == 401


# ------------------------------------------------------------ auth off ---

def test_auth_off_takes_everything_and_warns(node_factory):
    n = node_factory(auth={"enabled": "off"})
    assert "[auth] enabled = off" in n.read_log()
    st, b, _ = call(n, "POST", M + "zone/pull-out", {"zoneId": "z1", "regionId": REGION,
                                                     "operatorId": "lab"})
    assert st == 200 and b["success"] is True
    st, b, _ = call(n, "GET", A + "user")
    assert st == 200 and b["data"]["username"] == "anonymous" and b["data"]["role"] == "admin"
    assert call(n, "GET", A + "users")[0] == 200
    # A token still says who is calling.
    tok = login(n)
    assert call(n, "GET", A + "user", token=tok)[1]["data"]["username"] == "admin"



# ------------------------------------------------------------ durability ---

def test_restart_keeps_users_and_sessions(node_factory):
    n = node_factory(auth={"jwt_secret": JWT_SECRET})
    admin = login(n)
    uid, tok = make_user(n, admin, "keeper", "operator")
    n.stop()
    n.start()
    assert call(n, "GET", A + "user", token=tok)[1]["data"]["userId"] == uid
    assert call(n, "GET", M + "zone/operations", token=tok)[0] == 200
    login(n, "keeper", "keeper-password")
    # kill -9 and a start without --fresh: the same.
    n.send_signal(signal.SIGKILL)
    n.proc.wait(5)
    n.fresh = False
    n.start()
    assert call(n, "GET", A + "user", token=tok)[0] == 200
    # A store's own secret survives too (no [auth] jwt_secret).
    m = node_factory()
    t = login(m)
    m.stop()
    m.start()
    assert call(m, "GET", A + "user", token=t)[0] == 200


def test_first_admin_random_password_file(node_factory):
    def no_password(node):
        node.sections["auth"].pop("initial_admin_password")
    n = node_factory(prepare=no_password)
    path = os.path.join(n.data_dir, "initial-admin-password")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as f:
        password = f.read().strip()
    assert re.fullmatch(r"[A-Za-z0-9]{20}", password)
    log = n.read_log()
    assert password not in log and path in log  # the file named, the secret not logged
    login(n, "admin", password)
    assert call(n, "POST", A + "login", {"username": "admin",
                                         "password": ADMIN_PASSWORD})[0] == 401
    # A restart makes no second admin and no new password.
    n.stop()
    n.start()
    with open(path) as f:
        assert f.read().strip() == password
    assert password not in n.read_log()
    login(n, "admin", password)


def test_secrets_stay_out_of_the_log(node):
    login(node)
    call(node, "POST", A + "login", {"username": "admin", "password": "wrong-password-here"})
    log = node.read_log()
    for secret in (ADMIN_PASSWORD, JWT_SECRET, "wrong-password-here", "eyJ"):
        assert secret not in log, secret


# ---------------------------------------------------------- brute force ---

def test_failed_logins_lock_out_by_name_and_by_address(node_factory):
    n = node_factory(auth={"login_max_failures": "3", "login_max_failures_ip": "6",
                           "login_lockout_s": "30", "login_lockout_max_s": "60"})
    admin = login(n)
    uid, _ = make_user(n, admin, "victim", "viewer", "victim-password")
    for _ in range(3):
        assert call(n, "POST", A + "login", {"username": "victim", "password": "bad-guess"})[0] \
            == 401
    # Locked: even the right password waits, with the time to wait.
    st, b, h = call(n, "POST", A + "login", {"username": "victim",
                                             "password": "victim-password"})
    assert st == 429 and b["success"] is False and "try again in" in b["message"], b
    assert 1 <= int(h["retry-after"]) <= 30
    # The same for a name that does not exist (no enumeration).
    for _ in range(3):
        call(n, "POST", A + "login", {"username": "nobody-here", "password": "bad-guess"})
    assert call(n, "POST", A + "login", {"username": "nobody-here",
                                         "password": "bad-guess"})[0] == 429
    # The address has 6 failures now: other names from it wait too.
    st, _, _ = call(n, "POST", A + "login", {"username": "admin", "password": ADMIN_PASSWORD})
    assert st == 429
    # Every attempt is in the history, the refused ones as "locked".
    hist = call(n, "GET", A + "users/%d/login-history" % uid, token=admin)[1]["data"]
    assert [x["result"] for x in hist] == ["locked", "failure", "failure", "failure", "success"]

"""
test_auth_matrix.py - who may call what (MANAGEMENT.md §6), for every
management, routing, audit and auth route the node serves × {no token,
viewer, operator, admin}, on both surfaces.

The routes come from the route tables in worker/*.c (the parser of
test_docs.py, with the methods), so a route added later is covered
without touching this file.  The expected rule is the contract's, stated
here on its own: /api/auth/login and /roles are open; /api/auth/users...
and password resets need admin, the rest of /api/auth a token; the audit
cleanup needs admin; under /api/management/ and /api/routing/ GET and
Java's read-only POSTs need a token, every other method operator.

A refusal is 401 (no valid token) or 403 (role too low) on the Rust
surface, HTTP 200 with errorCode no-permission on Java's (paths ending in
.json under /api/management/, where the body's token counts too).  A
request that passes may still fail on its dummy input (400, 404): that is
the handler's business, not access control's.
"""

import fnmatch
import re

import pytest

from auth_util import call, is_java, login, make_user, refusal
from test_docs import HTTP_ROUTE_RE, worker_sources

PROTECTED = ("/api/management/", "/api/routing/", "/api/auth/")
# { "path", METHODS, ...} with METHODS e.g. M_POST, GP, M_PUT | M_PATCH
ROUTE_RE = re.compile(r'\{\s*"(/[^"]*)"\s*,\s*((?:M_[A-Z]+|GP)(?:\s*\|\s*M_[A-Z]+)*)\s*,')
METHOD_NAMES = {"M_GET": ["GET"], "M_POST": ["POST"], "M_PUT": ["PUT"], "M_DELETE": ["DELETE"],
                "M_PATCH": ["PATCH"], "GP": ["GET", "POST"]}
READ_POSTS = ["instance-operations.json", "server-operations.json",
              "all-instance-operations.json", "all-server-operations.json",
              "instance-down.json", "server-down.json", "services.json", "service.json",
              "log/*.json", "zone/get-*.json", "zone/is-zone-down.json", "group/get-*.json",
              "instance/get-instance-operations.json", "instance/is-instance-down.json",
              "server/is-server-down.json"]
ROLES = ("none", "viewer", "operator", "admin")
RANK = {"viewer": 1, "operator": 2, "admin": 3}


def protected_routes():
    """[(path, method)] of every route under the protected prefixes."""
    out = set()
    for name, text in worker_sources():
        assert len(ROUTE_RE.findall(text)) == len(HTTP_ROUTE_RE.findall(text)), \
            "%s: a route whose methods this parser does not read" % name
        for path, methods in ROUTE_RE.findall(text):
            if path.startswith(PROTECTED):
                for m in re.split(r"\s*\|\s*", methods):
                    out.update((path, x) for x in METHOD_NAMES[m])
    return sorted(out)


def need(path, method):
    """The contract's rule: open, token, operator or admin."""
    if path in ("/api/auth/login", "/api/auth/roles"):
        return "open"
    if path.startswith(("/api/auth/users", "/api/auth/password/reset/")):
        return "admin"
    if path.startswith("/api/auth/"):
        return "token"
    if path == "/api/management/audit/logs/cleanup":
        return "admin"
    if method == "GET":
        return "token"
    rest = path[len("/api/management/"):] if path.startswith("/api/management/") else None
    if method == "POST" and rest is not None and \
            any(fnmatch.fnmatchcase(rest, p) and ("/" in p) == ("/" in rest) for p in READ_POSTS):
        return "token"
    return "operator"


def expected(path, method, role):
    n = need(path, method)
    if n == "open":
        return "none"
    if role == "none":
        return "token"
    if n == "token" or RANK[role] >= RANK[n]:
        return "none"
    return "role"


def concrete(path):
    return (path.replace("{userId}", "99999999").replace("{sessionId}", "0" * 32)
            .replace("{", "matrix-").replace("}", ""))


ROUTES = protected_routes()


@pytest.fixture(scope="module")
def tokens(node):
    admin = login(node)
    toks = {"none": None, "admin": admin}
    for role in ("viewer", "operator"):
        toks[role] = make_user(node, admin, "matrix-" + role, role)[1]
    return toks


def test_the_parser_sees_every_protected_area():
    paths = {p for p, _ in ROUTES}
    for p in ("/api/auth/login", "/api/auth/users/{userId}", "/api/management/zone/pull-out",
              "/api/management/operate-instance.json", "/api/management/audit/logs/cleanup"):
        assert p in paths, p
    assert ("/api/auth/users/{userId}/status", "PATCH") in ROUTES


@pytest.mark.parametrize("path,method", ROUTES, ids=["%s %s" % (m, p) for p, m in ROUTES])
def test_access(node, tokens, path, method):
    got = {}
    for role in ROLES:
        tok = tokens[role]
        if path in ("/api/auth/logout", "/api/auth/refresh") and tok:
            tok = login(node, *(("admin",) if role == "admin" else
                                ("matrix-" + role, "matrix-" + role + "-password")))
        body = {} if method in ("POST", "PUT", "PATCH") else None
        st, b, h = call(node, method, concrete(path), body, tok)
        got[role] = refusal(path, st, b)
        if got[role] == "token" and not is_java(path):
            assert h.get("www-authenticate") == "Bearer", (role, st, b)
        # Java's surface: the same token in the body counts the same.
        if is_java(path) and tok and method == "POST":
            st, b, _ = call(node, method, concrete(path), {"token": tok})
            assert refusal(path, st, b) == got[role], (role, "body token", st, b)
    want = {r: expected(path, method, r) for r in ROLES}
    assert got == want, "%s %s" % (method, path)


def test_open_paths_stay_open(node):
    """Registry, discovery, status, replication, ops and the console take
    no credential (Java clients send none)."""
    for method, path, body in (
            ("POST", "/artemis/api/discovery/services.json", {}),
            ("POST", "/api/discovery/services.json", {}),
            ("POST", "/artemis/api/registry/heartbeat.json", {"instances": []}),
            ("POST", "/artemis/api/status/node.json", {}),
            ("POST", "/artemis/api/replication/registry/services.json", {}),
            ("POST", "/artemis/api/cluster/up-discovery-nodes.json", {}),
            ("GET", "/health", None), ("GET", "/ready", None), ("GET", "/metrics", None),
            ("GET", "/console/", None)):
        st, b, _ = call(node, method, path, body)
        assert st == 200, (path, st, b)

"""
test_csrf.py - a page on another site cannot make the console's writes
(issue 16, Bad input; worker/api_access.c).

A browser sends Origin with every cross-origin request and with a
same-origin write.  Under /api/management/, /api/routing/ and /api/auth/
a request with a method other than GET/HEAD and an Origin is answered
only when that origin is the node's own (host[:port] = the Host header)
or listed in [http] cors_origins; otherwise 403 and nothing runs, with or
without a token, and with [auth] enabled = off.  Requests without Origin
(CLI, Java tooling, scripts) and the registry's open paths are untouched.
"""

from artemis_it import REGION
from auth_util import call, login

ZONE_OUT = "/api/management/zone/pull-out"
EVIL = "http://evil.example"


def pull_out(node, zone, token, origin=None, content_type=None):
    headers = {}
    if origin is not None:
        headers["Origin"] = origin
    if content_type:
        headers["Content-Type"] = content_type
    return call(node, "POST", ZONE_OUT, {"zoneId": zone, "regionId": REGION, "operatorId": "t"},
                token, headers)


def zones_out(node, token):
    st, b, _ = call(node, "GET", "/api/management/zone/operations", token=token)
    assert st == 200, (st, b)
    return {o["zoneId"] for o in b["data"]}


def own_origin(node):
    return "http://%s:%d" % (node.host, node.port)


def test_a_foreign_origin_is_refused_even_with_a_token(node):
    admin = login(node)
    for origin in (EVIL, "null", "http://%s:%d" % (node.host, node.port + 1),
                   "https://%s:%d.evil.example" % (node.host, node.port), ""):
        st, b, _ = pull_out(node, "z-foreign", admin, origin)
        assert st == 403, (origin, st, b)
        assert b["success"] is False and "cross-origin" in b["message"], b
    assert "z-foreign" not in zones_out(node, admin)
    # The login and the routing writes are covered the same way.
    st, b, _ = call(node, "POST", "/api/auth/login", {"username": "admin", "password": "x"},
                    headers={"Origin": EVIL})
    assert st == 403, (st, b)
    st, b, _ = call(node, "POST", "/api/routing/groups", {}, admin, {"Origin": EVIL})
    assert st == 403, (st, b)
    # Java's surface refuses the way it refuses everything (HTTP 200).
    st, b, _ = call(node, "POST", "/api/management/operate-instance.json", {}, admin, {"Origin": EVIL})
    assert st == 200 and b["responseStatus"]["errorCode"] == "no-permission", b


def test_the_own_origin_and_no_origin_write(node):
    admin = login(node)
    st, b, _ = pull_out(node, "z-own", admin, own_origin(node))
    assert st == 200, (st, b)
    st, b, _ = pull_out(node, "z-cli", admin)
    assert st == 200, (st, b)
    assert {"z-own", "z-cli"} <= zones_out(node, admin)
    # Reads from elsewhere are CORS's business, as before.
    st, b, _ = call(node, "GET", "/api/management/zone/operations", token=admin,
                    headers={"Origin": EVIL})
    assert st == 200, (st, b)
    # The registry's open paths keep Java's any-origin behaviour.
    st, b, _ = call(node, "POST", "/api/registry/unregister.json", {"instances": []},
                    headers={"Origin": EVIL})
    assert st == 200, (st, b)


def test_without_auth_a_form_post_from_elsewhere_is_refused(node_factory):
    """[auth] enabled = off: no token to steal, so the Origin is the only
    guard against a cross-site form (text/plain needs no preflight)."""
    n = node_factory(auth={"enabled": "off"})
    st, b, _ = pull_out(n, "z-form", None, EVIL, "text/plain")
    assert st == 403, (st, b)
    st, b, _ = pull_out(n, "z-same", None, own_origin(n))
    assert st == 200, (st, b)
    assert zones_out(n, None) == {"z-same"}


def test_listed_origins_may_write(node_factory):
    n = node_factory(http={"cors_origins": "https://admin.example.com, " + EVIL})
    admin = login(n)
    st, b, _ = pull_out(n, "z-listed", admin, EVIL)
    assert st == 200, (st, b)
    st, b, _ = pull_out(n, "z-other", admin, "http://other.example")
    assert st == 403, (st, b)
    assert zones_out(n, admin) == {"z-listed"}

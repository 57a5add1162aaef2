"""
routing_util.py - shortcuts for the routing tests (test_routing_*.py):
groups, rules and canary configs through both surfaces, and what the
discovery paths answer a caller (the Rust paths route; the Java paths carry
routeRules).

Every management call goes through call() (one place to add credentials).
"""

import json

from artemis_it import REGION, ZONE, SUCCESS, assert_status, http_request

RT = "/api/routing/"
CN = "/api/management/canary/"
JG = "/api/management/group/"
JAVA_CTX = {"operation": "routing-test", "operatorId": "java-ops", "token": "t0ken"}


def call(node, method, path, body=None, headers=None):
    """(status, parsed body) of one management request, with the node's
    admin token (logged in on first use) unless its access control is off."""
    if node.token is None and node.sections["auth"].get("enabled", "on") != "off":
        node.login()
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    data = json.dumps(body).encode() if body is not None else None
    st, _, raw = http_request(node.host, node.port, method, path, data,
                              node.auth_headers(hdrs))
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw
    return st, parsed


def ok(node, method, path, body=None, expect=200):
    """The `data` of a Rust call that must succeed with `expect`."""
    st, b = call(node, method, path, body)
    assert st == expect, "%s %s -> HTTP %s %r" % (method, path, st, b)
    assert b["success"] is True, b
    return b["data"]


def fails(node, method, path, body, status):
    st, b = call(node, method, path, body)
    assert st == status, "%s %s -> HTTP %s %r (want %s)" % (method, path, st, b, status)
    assert b["success"] is False and b["message"], b
    return b["message"]


def java(node, name, body, code="success", base=JG):
    """A Java group (or canary) call; asserts its errorCode."""
    full = dict(JAVA_CTX)
    full.update(body)
    st, b = call(node, "POST", base + name, full)
    assert st == 200, (name, st, b)
    assert b["responseStatus"]["errorCode"] == code, (name, b)
    return b


# --------------------------------------------------------------- objects ---

def group(node, svc, name, zone=ZONE, region=REGION, **extra):
    body = {"serviceId": svc, "regionId": region, "zoneId": zone, "name": name,
            "groupType": "physical", "operatorId": "olga"}
    body.update(extra)
    return ok(node, "POST", RT + "groups", body, expect=201)


def rule(node, svc, route_id, strategy="weighted-round-robin", groups=(), publish=False):
    """A rule with (group id or name, weight) pairs; published when asked."""
    r = ok(node, "POST", RT + "rules", {"routeId": route_id, "serviceId": svc,
                                        "name": route_id + " rule", "strategy": strategy,
                                        "operatorId": "olga"}, expect=201)
    for gid, weight in groups:
        ok(node, "POST", RT + "rules/%s/groups" % route_id,
           {"groupId": gid, "weight": weight, "operatorId": "olga"}, expect=201)
    if publish:
        ok(node, "POST", RT + "rules/%s/publish" % route_id, {"operatorId": "olga"})
    return r


def canary(node, svc, ips):
    return ok(node, "POST", CN + "config", {"serviceId": svc, "ipWhitelist": list(ips),
                                           "operatorId": "olga"}, expect=201)


# ------------------------------------------------------------- discovery ---

def _post(node, path, obj, headers=None):
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    st, _, raw = http_request(node.host, node.port, "POST", path, json.dumps(obj).encode(),
                              hdrs)
    assert st == 200, (path, st, raw[:300])
    return json.loads(raw)


def routed(node, svc, zone=ZONE, region=REGION, xff=None, path="service"):
    """The sorted instanceIds one Rust-path call gets (a fresh connection,
    so any worker)."""
    headers = {"X-Forwarded-For": xff} if xff else None
    dc = {"serviceId": svc, "regionId": region, "zoneId": zone}
    if path == "service":
        b = _post(node, "/api/discovery/service.json", {"discoveryConfig": dc}, headers)
        assert_status(b, SUCCESS)
        got = b["service"]["instances"] or []
    else:
        b = _post(node, "/api/discovery/lookup.json",
                  {"regionId": region, "zoneId": zone, "discoveryConfigs": [dc]}, headers)
        got = b["services"][0]["instances"] or []
    return tuple(sorted(i["instanceId"] for i in got))


def java_service(node, svc):
    """The Service a Java client gets from service.json."""
    b = _post(node, "/artemis/api/discovery/service.json",
              {"regionId": REGION, "zoneId": ZONE,
               "discoveryConfig": {"serviceId": svc, "regionId": REGION, "zoneId": ZONE}})
    assert_status(b, SUCCESS)
    return b["service"]


def java_rules(node, svc):
    return java_service(node, svc)["routeRules"]

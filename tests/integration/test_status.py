"""
test_status.py - API.md §2.5: status/node.json, cluster.json, leases.json,
legacy-leases.json, config.json and deployment.json, each by POST {} and by
GET.  leases.json is rate limited in Java (get-leases: 10 per 10 s), so the
lease tests use a fresh node each and few calls.
"""

import datetime

import pytest

from artemis_it import (REGION, SUCCESS, TIME_RE, ZONE, assert_status, inst, register,
                        to_string, uniq)

STATUS = "/artemis/api/status/"
LEASES_KEYS = {"leaseUpdateMaxCount", "leaseUpdateMaxCountLastUpdateTime",
               "leaseUpdateCountLastTimeWindow", "isSafe", "isSafeCheckEnabled",
               "leaseCount", "leases", "responseStatus"}
LEASE_STATUS_KEYS = {"instance", "creationTime", "renewalTime", "evitionTime", "ttl"}


def both_ways(node, name, post_body=None):
    """POST {} and GET the same status path; both must be HTTP 200."""
    st, _, posted = node.post_json(STATUS + name, post_body or {})
    assert st == 200, (name, st, posted)
    st, _, got = node.get(STATUS + name)
    assert st == 200, (name, st, got)
    return posted, got


def check_node_status(ns, node, allow_reg=True, allow_disc=True):
    assert ns["status"] == "up", ns
    assert ns["canServiceRegistry"] is True and ns["canServiceDiscovery"] is True, ns
    assert ns["allowRegistryFromOtherZone"] is allow_reg, ns
    assert ns["allowDiscoveryFromOtherZone"] is allow_disc, ns
    zone = ns["node"]["zone"]
    assert zone["regionId"] == REGION and zone["zoneId"] == ZONE, zone
    url = ns["node"]["url"]
    assert url.startswith("http://") and url.rstrip("/").endswith(":%d" % node.port), url


# ---------------------------------------------------------------- node ---

def test_node_json(node):
    for body in both_ways(node, "node.json"):
        assert_status(body, SUCCESS)
        check_node_status(body["nodeStatus"], node)


def test_node_json_reports_zone_flags(node_factory):
    n = node_factory(node={"allow_registry_from_other_zone": "off",
                           "allow_discovery_from_other_zone": "off"})
    body = n.api(STATUS + "node.json", {})
    check_node_status(body["nodeStatus"], n, allow_reg=False, allow_disc=False)


def test_cluster_json(node):
    for body in both_ways(node, "cluster.json"):
        assert_status(body, SUCCESS)
        assert body["nodeCount"] == 1, body
        assert isinstance(body["nodesStatus"], list) and len(body["nodesStatus"]) == 1, body
        check_node_status(body["nodesStatus"][0], node)


# -------------------------------------------------------------- leases ---

def parse_time(s):
    assert TIME_RE.match(s), "not yyyy-MM-dd HH:mm:ss.SSS: %r" % s
    return datetime.datetime.strptime(s, "%Y-%m-%d %H:%M:%S.%f")


def check_lease_status(ls, sent, ttl):
    assert LEASE_STATUS_KEYS <= set(ls), "LeaseStatus lacks %s: %r" % (
        LEASE_STATUS_KEYS - set(ls), ls)
    assert ls["instance"] == to_string(sent), ls
    created, renewed = parse_time(ls["creationTime"]), parse_time(ls["renewalTime"])
    assert created <= renewed, ls
    now = datetime.datetime.now()
    assert abs((created - now).total_seconds()) < 86400, "creationTime far from now: %r" % ls
    if ls["evitionTime"] is not None:
        parse_time(ls["evitionTime"])
    assert ls["ttl"] == ttl, ls


def test_leases_post(fresh_node):
    n = fresh_node
    a, b = uniq("a"), uniq("b")
    ia1, ia2, ib1 = inst(a, "a1"), inst(a, "a2"), inst(b, "b1", groupId="grp")
    register(n, ia1, ia2, ib1)
    body = n.api(STATUS + "leases.json", {})
    assert_status(body, SUCCESS)
    assert LEASES_KEYS <= set(body), "missing %s" % (LEASES_KEYS - set(body))
    assert body["isSafeCheckEnabled"] is True
    assert body["isSafe"] is True
    assert body["leaseCount"] == 3, body
    for k in ("leaseUpdateMaxCount", "leaseUpdateMaxCountLastUpdateTime",
              "leaseUpdateCountLastTimeWindow"):
        assert isinstance(body[k], int), (k, body)
    assert set(body["leases"]) == {a, b}, body["leases"]
    by_inst = {ls["instance"]: ls for ls in body["leases"][a] + body["leases"][b]}
    for sent in (ia1, ia2, ib1):
        check_lease_status(by_inst[to_string(sent)], sent, 20000)


def test_leases_filtered_by_service_ids_and_app_ids(fresh_node):
    n = fresh_node
    a, b, c = uniq("a"), uniq("b"), uniq("c")
    register(n, inst(a, "a1"), inst(b, "b1"), inst(c, "c1"))
    body = n.api(STATUS + "leases.json", {"serviceIds": [a, c]})
    assert_status(body, SUCCESS)
    assert set(body["leases"]) == {a, c}, body["leases"]
    st, _, body = n.get(STATUS + "leases.json?appIds=%s,%s" % (b, c))
    assert st == 200
    assert_status(body, SUCCESS)
    assert set(body["leases"]) == {b, c}, body["leases"]
    st, _, body = n.get(STATUS + "leases.json")
    assert st == 200 and set(body["leases"]) == {a, b, c}, body


def test_leases_safe_check_disabled(node_factory):
    n = node_factory(registry={"self_preservation": "off", "lease_ttl_ms": "15000"})
    svc = uniq()
    sent = inst(svc, "i1")
    register(n, sent)
    body = n.api(STATUS + "leases.json", {"serviceIds": [svc]})
    assert body["isSafeCheckEnabled"] is False and body["isSafe"] is True, body
    check_lease_status(body["leases"][svc][0], sent, 15000)


def test_legacy_leases(fresh_node):
    n = fresh_node
    svc = uniq()
    legacy = inst(svc, "old", metadata={"java_registry": "true"})
    normal = inst(svc, "new", metadata={"java_registry": " "})
    register(n, legacy, normal)
    legacy_body, legacy_get = both_ways(n, "legacy-leases.json")
    for body in (legacy_body, legacy_get):
        assert_status(body, SUCCESS)
        assert LEASES_KEYS <= set(body), body
        (ls,) = body["leases"][svc]
        check_lease_status(ls, legacy, 90000)
    body = n.api(STATUS + "leases.json", {"serviceIds": [svc]})
    (ls,) = body["leases"][svc]
    check_lease_status(ls, normal, 20000)


# --------------------------------------------------- config, deployment ---

def test_config_json(node):
    for body in both_ways(node, "config.json"):
        assert_status(body, SUCCESS)
        assert isinstance(body["sources"], dict), body
        assert all(isinstance(v, int) for v in body["sources"].values()), body["sources"]
        assert isinstance(body["properties"], dict), body
        assert all(isinstance(v, str) for v in body["properties"].values()), body


def test_deployment_json(node):
    keys = {"regionId", "zoneId", "appId", "machineName", "ip", "port", "protocol", "path",
            "sources", "properties", "responseStatus"}
    for body in both_ways(node, "deployment.json"):
        assert_status(body, SUCCESS)
        assert keys <= set(body), "missing %s" % (keys - set(body))
        assert body["regionId"] == REGION and body["zoneId"] == ZONE, body
        assert isinstance(body["port"], int), body


@pytest.mark.parametrize("name", ["node.json", "cluster.json", "config.json",
                                  "deployment.json"])
def test_status_json_content_type(node, name):
    st, headers, _ = node.post_json(STATUS + name, {})
    assert st == 200
    assert headers.get("content-type", "").startswith("application/json"), headers

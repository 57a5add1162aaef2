"""
test_lifecycle.py - node states and capacity: a node with peers is
`starting` until the bootstrap timeout (§A, §4.8: registry and discovery
give service-unavailable, /ready 503), a single node is up at once; the
rate-limited envelope (§1.6, §4.6); a full registry; and the request
coercions Jackson performs (§0 JSON parsing, docs/API-NOTES.md).
"""

import json

import pytest

from artemis_it import (PARTIAL_FAIL, REGION, ZONE, Session, assert_ok, assert_spring_error,
                        assert_status, failed_by_id, free_port, inst, instance_ids, lookup,
                        register, uniq, unregister, wait_for)

REGISTER = "/artemis/api/registry/register.json"
UNAVAILABLE = {"status": "fail", "errorCode": "service-unavailable"}


def with_peer(bootstrap_ms):
    peer_port, peer_repl = free_port(), free_port()
    return {"cluster": {"bootstrap_timeout_ms": str(bootstrap_ms), "key": "it-secret-key-0123456789",
                        "peer": "peer1 zone-1 http://127.0.0.1:%d 127.0.0.1:%d"
                        % (peer_port, peer_repl)},
            "peer_url": "http://127.0.0.1:%d" % peer_port}


# -------------------------------------------------------------- states ---

def test_node_with_unreachable_peer_is_starting(node_factory):
    cfg = with_peer(600000)
    n = node_factory(cluster=cfg["cluster"])
    assert n.get("/health")[0] == 200
    assert n.get("/ready")[0] == 503
    ns = n.api("/artemis/api/status/node.json", {})["nodeStatus"]
    assert ns["status"] == "starting", ns
    assert not ns.get("canServiceRegistry") and not ns.get("canServiceDiscovery"), ns
    body = register(n, inst(uniq(), "i1"))
    assert_status(body, dict(UNAVAILABLE, message=(
        "Serivce registry is not in up state. Current status: starting")))
    assert body.get("failedInstances") is None, body
    assert_status(lookup(n, uniq()), UNAVAILABLE)
    assert_status(n.api("/artemis/api/discovery/service.json", {
        "regionId": REGION, "zoneId": ZONE, "discoveryConfig": {"serviceId": "x"}}),
        UNAVAILABLE)
    # still validated first: bad-request comes before the node-status check
    assert_status(n.api(REGISTER, {"instances": []}), {"errorCode": "bad-request"})
    body = n.api("/artemis/api/cluster/up-registry-nodes.json",
                 {"regionId": REGION, "zoneId": ZONE})
    assert_status(body, {"status": "fail", "errorCode": "data-not-found"})


def test_cluster_json_lists_configured_peer(node_factory):
    cfg = with_peer(600000)
    n = node_factory(cluster=cfg["cluster"])
    body = n.api("/artemis/api/status/cluster.json", {})
    assert body["nodeCount"] == 2, body
    urls = {s["node"]["url"].rstrip("/"): s for s in body["nodesStatus"]}
    assert cfg["peer_url"] in urls, urls
    assert urls[cfg["peer_url"]]["status"] in ("unknown", "down"), urls[cfg["peer_url"]]


def test_node_comes_up_after_bootstrap_timeout(node_factory):
    cfg = with_peer(1500)
    n = node_factory(cluster=cfg["cluster"])
    wait_for(lambda: n.get("/ready")[0] == 200, 10.0, what="/ready after the bootstrap timeout")
    assert n.api("/artemis/api/status/node.json", {})["nodeStatus"]["status"] == "up"
    svc = uniq()
    assert_ok(register(n, inst(svc, "i1")))
    assert instance_ids(n, svc) == ["i1"]


# --------------------------------------------------------- rate limits ---

RATE_LIMITED = {"status": "fail", "errorCode": "rate-limited",
                "message": "Request is rate limited."}


@pytest.mark.parametrize("path,limit", [("leases.json", 10), ("config.json", 30)])
def test_status_rate_limit(node_factory, path, limit):
    n = node_factory()
    with Session(n) as s:
        for k in range(limit):
            st, _, body = s.post_json("/artemis/api/status/" + path, {})
            assert st == 200
            assert_status(body, {"status": "success"})
        st, _, body = s.post_json("/artemis/api/status/" + path, {})
        assert st == 200, "rate limiting must answer HTTP 200"
        assert_status(body, RATE_LIMITED)
        # node.json and discovery are never limited
        for _ in range(limit + 5):
            st, _, body = s.post_json("/artemis/api/status/node.json", {})
            assert_status(body, {"status": "success"})


def test_registry_rate_limit_when_configured(node_factory):
    """[registry] rate_limit caps each registry operation per 10 s and
    worker (Java's limiter); the heartbeat window is separate from register's."""
    n = node_factory(registry={"rate_limit": "5"})
    svc = uniq()
    with Session(n) as s:
        for k in range(5):
            st, _, body = s.post_json("/artemis/api/registry/register.json",
                                      {"instances": [inst(svc, "i%d" % k)]})
            assert_status(body, {"status": "success"})
        st, _, body = s.post_json("/artemis/api/registry/register.json",
                                  {"instances": [inst(svc, "late")]})
        assert st == 200
        assert_status(body, RATE_LIMITED)
        assert body.get("failedInstances") is None
        st, _, body = s.post_json("/artemis/api/registry/heartbeat.json",
                                  {"instances": [inst(svc, "i0")]})
        assert_status(body, {"status": "success"})


def test_registry_is_not_rate_limited_by_default(node):
    svc = uniq()
    with Session(node) as s:
        for k in range(300):
            st, _, body = s.post_json("/artemis/api/registry/heartbeat.json",
                                      {"instances": [inst(svc, "i%d" % k)]})
            assert st == 200 and body["responseStatus"]["errorCode"] != "rate-limited"


# ------------------------------------------------------------ capacity ---

def test_full_registry(node_factory):
    n = node_factory(registry={"max_instances": "16"})
    svc = uniq()
    batch = [inst(svc, "i%02d" % k) for k in range(24)]
    body = register(n, *batch)
    assert_status(body, PARTIAL_FAIL)
    fails = failed_by_id(body)
    assert fails, "24 instances fit a registry of 16"
    assert {f["errorCode"] for f in fails.values()} == {"internal-service-error"}, fails
    assert all("Exception" in f["errorMessage"] for f in fails.values())
    stored = instance_ids(n, svc)
    assert len(stored) + len(fails) == 24 and len(stored) >= 16, (len(stored), len(fails))
    # room comes back once removed leases are reaped
    unregister(n, *[inst(svc, i) for i in stored])
    wait_for(lambda: instance_ids(n, svc) == [], 5.0, what="the reaper to free the slots")
    assert_ok(register(n, *batch[:16]))


# ----------------------------------------------------------- coercions ---

def test_numeric_string_port_is_coerced(node):
    svc = uniq()
    assert_ok(register(node, inst(svc, "i1", port="8081")))
    st, _, body = node.post_json("/artemis/api/discovery/service.json", {
        "regionId": REGION, "discoveryConfig": {"serviceId": svc}})
    assert body["service"]["instances"][0]["port"] == 8081


@pytest.mark.parametrize("bad", [
    {"instances": [1]},
    {"instances": [{"serviceId": "s", "port": "eighty"}]},
    {"instances": [{"serviceId": "s", "metadata": {"k": {"nested": 1}}}]},
    {"instances": [{"serviceId": "s", "metadata": ["not", "a", "map"]}]},
    {"instances": [{"serviceId": "s\u0000x", "instanceId": "i", "url": "u",
                    "regionId": REGION}]},
])
def test_unbindable_values_are_400_and_nothing_written(node, bad):
    svc = uniq()
    good = inst(svc, "first")
    bad = dict(bad, instances=[good] + bad["instances"])
    st, _, body = node.post_json(REGISTER, bad)
    assert_spring_error(st, body, 400, REGISTER)
    assert instance_ids(node, svc) == [], "a refused request wrote part of its batch"


def test_head_like_get(node):
    st, headers, body = node.request("HEAD", "/health")
    assert st == 200 and body is None
    st, headers, body = node.request("HEAD", "/artemis/api/status/node.json")
    assert st == 200 and body is None


def test_whole_response_is_valid_json_with_null_fields(node):
    st, _, raw = node.request_raw("POST", "/artemis/api/registry/unregister.json",
                                  json.dumps({"instances": [inst(uniq(), "x")]}).encode(),
                                  {"Content-Type": "application/json"})
    assert st == 200
    assert json.loads(raw) == {"failedInstances": None, "responseStatus": {
        "errorCode": "success", "message": "", "status": "success"}}
    assert b'"failedInstances":null' in raw.replace(b" ", b""), raw

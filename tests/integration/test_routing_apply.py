"""
test_routing_apply.py - routing applied on the Rust discovery paths
(MANAGEMENT.md §2): weighted round robin with one counter shared by every
worker (70/30 over 100 calls is exactly 70 and 30), close-by-visit by the
caller's zone then region, consistent hashing of the caller's address,
canary by whitelist (peer address, X-Forwarded-For when trusted, CIDR),
fallbacks, unpublish, group pull-out, Rust's single lookup, a `reload` push
for every change, and routing kept across a restart (`artemis check` agreeing).
"""

import json
from collections import Counter

import pytest

from artemis_it import REGION, ZONE, inst, register, run_cli, uniq
from mgmt_util import assert_everywhere
from routing_util import CN, RT, canary, group, java_rules, ok, routed, rule

websocket = pytest.importorskip("websocket")
from test_websocket import first_push, is_change, recv_change, ws_connect  # noqa: E402
from test_survival import shm_ns  # noqa: E402,F401  (a fixture: a private /dev/shm)


@pytest.fixture(scope="module")
def trusting(module_node_factory):
    """A node that takes the caller's address from X-Forwarded-For."""
    return module_node_factory(http={"trust_forwarded_for": "on"})


def blue_green(node, blue=("b1", "b2"), green=("g1",), other=("x1",)):
    svc = uniq()
    register(node, *[inst(svc, i, groupId="blue") for i in blue],
             *[inst(svc, i, groupId="green") for i in green], *[inst(svc, i) for i in other])
    return svc, group(node, svc, "blue"), group(node, svc, "green")


def test_weighted_round_robin_is_exact_across_workers(node):
    svc, blue, green = blue_green(node)
    rule(node, svc, uniq("wrr"), groups=[(blue["groupId"], 70), (green["groupId"], 30)],
         publish=True)
    got = Counter(routed(node, svc) for _ in range(100))  # a fresh connection each
    assert got == {("b1", "b2"): 70, ("g1",): 30}, got
    # The batch lookup of the Rust path routes too, on the same counter.
    got = Counter(routed(node, svc, path="lookup") for _ in range(100))
    assert got == {("b1", "b2"): 70, ("g1",): 30}, got
    # The Java paths are not routed: every instance, and the rule as data.
    assert_java_all(node, svc, ["b1", "b2", "g1", "x1"])
    assert [g["weight"] for g in java_rules(node, svc)[0]["groups"]] == [70, 30]
    # A routed answer carries no rule: the node applied it, nothing is left
    # for a client to balance.
    from routing_util import _post
    b = _post(node, "/api/discovery/service.json",
              {"discoveryConfig": {"serviceId": svc, "regionId": REGION, "zoneId": ZONE}})
    assert b["service"]["routeRules"] == [] and b["service"]["logicInstances"] == [], b


def assert_java_all(node, svc, want):
    from routing_util import java_service
    assert sorted(i["instanceId"] for i in java_service(node, svc)["instances"]) == want


def test_weight_changes_take_effect_at_once(node):
    svc, blue, green = blue_green(node)
    route = uniq("wrr")
    rule(node, svc, route, groups=[(blue["groupId"], 1), (green["groupId"], 1)], publish=True)
    assert Counter(routed(node, svc) for _ in range(10)) == {("b1", "b2"): 5, ("g1",): 5}
    ok(node, "PUT", RT + "rules/%s/groups/%d" % (route, green["groupId"]), {"weight": 9})
    assert Counter(routed(node, svc) for _ in range(10)) == {("b1", "b2"): 1, ("g1",): 9}
    # Unpublished: every instance again.
    ok(node, "POST", RT + "rules/%s/unpublish" % route)
    assert {routed(node, svc) for _ in range(8)} == {("b1", "b2", "g1", "x1")}


def test_close_by_visit(node):
    svc = uniq()
    register(node, inst(svc, "e1", zoneId="zone-1"), inst(svc, "e2", zoneId="zone-2"),
             inst(svc, "w1", region=REGION, zoneId="zone-3"))
    z1, z2 = group(node, svc, "default", zone="zone-1"), group(node, svc, "default",
                                                                zone="zone-2")
    z3 = group(node, svc, "default", zone="zone-3")
    route = uniq("near")
    rule(node, svc, route, strategy="close-by-visit",
         groups=[(z1["groupId"], 5), (z2["groupId"], 5), (z3["groupId"], 5)])
    # Hints: zone-3's group counts as the west region's.
    ok(node, "POST", RT + "rules/%s/groups" % route,
       {"groupId": z3["groupId"], "weight": 5, "regionId": "us-west"}, expect=201)
    ok(node, "POST", RT + "rules/%s/publish" % route)
    assert {routed(node, svc, zone="zone-2") for _ in range(6)} == {("e2",)}
    assert {routed(node, svc, zone="zone-1") for _ in range(6)} == {("e1",)}
    # Another zone of the caller's region: the region's first group.
    assert {routed(node, svc, zone="zone-9") for _ in range(4)} == {("e1",)}
    ok(node, "PUT", RT + "rules/%s/groups/%d" % (route, z1["groupId"]), {"weight": 5,
                                                                         "regionId": "eu"})
    assert routed(node, svc, zone="zone-9") == ("e2",)


def test_consistent_hash_by_caller_address(trusting):
    node = trusting
    svc, blue, green = blue_green(node)
    rule(node, svc, uniq("hash"), strategy="consistent-hash",
         groups=[(blue["groupId"], 70), (green["groupId"], 30)], publish=True)
    first = {}
    for i in range(300):
        ip = "10.%d.%d.%d" % (i % 3, i // 7, i)
        first[ip] = routed(node, svc, xff=ip)
    for ip in list(first)[:40]:  # the same address: the same group, on any worker
        assert routed(node, svc, xff=ip) == first[ip]
    share = Counter(first.values())
    assert set(share) == {("b1", "b2"), ("g1",)}
    assert 0.6 < share[("b1", "b2")] / 300 < 0.8, share


def test_canary_by_whitelist(trusting):
    node = trusting
    svc = uniq()
    register(node, inst(svc, "c1", groupId="canary"), inst(svc, "n1"), inst(svc, "n2"))
    group(node, svc, "canary")
    canary(node, svc, ["10.9.0.0/16", "192.168.1.5"])
    assert {routed(node, svc, xff="10.9.8.7") for _ in range(5)} == {("c1",)}
    assert routed(node, svc, xff="192.168.1.5, 10.0.0.1") == ("c1",)  # the first hop
    assert {routed(node, svc, xff=ip) for ip in ("10.8.0.1", "192.168.1.6", "::1")} == {
        ("n1", "n2")}
    assert routed(node, svc) == ("n1", "n2")  # the peer, 127.0.0.1
    # With a rule: the others are routed among the non-canary instances.
    rule(node, svc, uniq("r"), groups=[(group(node, svc, "default")["groupId"], 5)],
         publish=True)
    assert routed(node, svc, xff="10.0.0.7") == ("n1", "n2")
    assert routed(node, svc, xff="10.9.0.1") == ("c1",)
    ok(node, "POST", CN + "disable", {"serviceId": svc})
    assert routed(node, svc, xff="10.9.8.7") == ("n1", "n2")  # the rule's group
    ok(node, "POST", CN + "enable", {"serviceId": svc})
    assert routed(node, svc, xff="10.9.8.7") == ("c1",)


def test_canary_by_peer_address_and_untrusted_header(node):
    svc = uniq()
    register(node, inst(svc, "c1", groupId="canary"), inst(svc, "n1"))
    group(node, svc, "canary")
    canary(node, svc, ["10.1.2.3"])
    # Without trust_forwarded_for the header is ignored: the peer decides.
    assert routed(node, svc, xff="10.1.2.3") == ("n1",)
    ok(node, "POST", CN + "%s/whitelist/add" % svc, {"ips": ["127.0.0.0/8"]})
    assert routed(node, svc) == ("c1",)
    # The canary group with no instance up: every instance.
    st = node.post_json("/api/management/instance/operate-instance.json", {
        "instanceKey": {"regionId": REGION, "serviceId": svc, "instanceId": "c1"},
        "operation": "pullout", "operatorId": "olga"})[0]
    assert st == 200
    assert routed(node, svc) == ("n1",)


def test_fallbacks_and_group_pull_out(node):
    svc, blue, green = blue_green(node)
    # Green pulled out: its instances are down on every path...
    st = node.post_json("/api/management/group/operate-group-operations.json", {
        "groupOperationsList": [{"groupId": green["groupId"], "operations": ["pullout"]}],
        "operationComplete": False, "operation": "pullout", "operatorId": "olga",
        "token": "t"})
    assert st[2]["responseStatus"]["errorCode"] == "success", st
    assert_everywhere(node, svc, ["b1", "b2", "x1"])
    # ... and the calls a rule sends to green get every instance up.
    rule(node, svc, uniq("wrr"), groups=[(blue["groupId"], 1), (green["groupId"], 1)],
         publish=True)
    got = Counter(routed(node, svc) for _ in range(10))
    assert got == {("b1", "b2"): 5, ("b1", "b2", "x1"): 5}, got


def test_single_lookup(node):
    svc, blue, green = blue_green(node)
    rule(node, svc, uniq("wrr"), groups=[(blue["groupId"], 1)], publish=True)
    seen = set()
    for _ in range(6):
        st, _, b = node.post_json("/api/discovery/lookup.json", {
            "discoveryConfig": {"serviceId": svc, "regionId": REGION, "zoneId": ZONE},
            "strategy": "round-robin"})
        assert st == 200 and b["success"] is True, b
        seen.add(b["instance"]["instanceId"])
    assert seen <= {"b1", "b2"} and seen
    st, _, b = node.post_json("/api/discovery/lookup.json", {
        "discovery_config": {"service_id": svc}, "strategy": "random"})
    assert st == 200 and b["instance"]["instanceId"] in ("b1", "b2")
    st, _, b = node.post_json("/api/discovery/lookup.json",
                              {"discoveryConfig": {"serviceId": uniq()}})
    assert st == 404 and b["success"] is False and b["message"]
    st, _, b = node.post_json("/api/discovery/lookup.json",
                              {"discoveryConfig": {"serviceId": svc}, "strategy": "psychic"})
    assert st == 400 and b["success"] is False
    # discoveryConfigs keeps the Java batch shape.
    st, _, b = node.post_json("/api/discovery/lookup.json", {
        "regionId": REGION, "zoneId": ZONE, "discoveryConfigs": [{"serviceId": svc}]})
    assert st == 200 and b["services"][0]["serviceId"] == svc


def test_every_routing_change_pushes_reload(node):
    svc = uniq()
    register(node, inst(svc, "a1", groupId="a"))
    ws = ws_connect(node, "/artemis/websocket/discovery/instance-change")
    try:
        ws.send(json.dumps({"serviceId": svc, "regionId": REGION, "zoneId": ZONE}))
        first_push(node, ws, inst(svc, "probe"), "the subscription",
                   is_change(svc, "probe", "new"))

        def reloaded(what):
            m = recv_change(ws, lambda m: m["changeType"] == "reload")
            assert m["instance"]["serviceId"] == svc, what

        a = group(node, svc, "a")
        reloaded("group")
        ok(node, "POST", RT + "groups/%d/tags" % a["groupId"], {"tags": {"k": "v"}}, expect=201)
        reloaded("tag")
        route = uniq("r")
        rule(node, svc, route)
        reloaded("rule")
        ok(node, "POST", RT + "rules/%s/groups" % route, {"groupId": a["groupId"], "weight": 3},
           expect=201)
        reloaded("rule group")
        ok(node, "POST", RT + "rules/%s/publish" % route)
        reloaded("publish")
        canary(node, svc, ["10.0.0.1"])
        reloaded("canary")
        ok(node, "POST", RT + "groups/%d/instances" % a["groupId"], {"instanceId": "zz"},
           expect=201)
        reloaded("group instance")
        st = node.post_json("/api/management/group/insert-service-instances.json", {
            "serviceInstances": [{"serviceId": svc, "instanceId": "l1", "url": "http://l"}],
            "operation": "add", "operatorId": "olga", "token": "t"})
        assert st[2]["responseStatus"]["errorCode"] == "success"
        reloaded("logical instance")
    finally:
        ws.close()


def test_routing_survives_a_restart_and_check_agrees(fresh_node):
    n = fresh_node
    svc, blue, green = blue_green(n)
    rule(n, svc, uniq("keep"), groups=[(blue["groupId"], 3), (green["groupId"], 1)],
         publish=True)
    canary(n, svc, ["10.44.0.0/16"])
    assert run_cli("check", "-c", n.conf_path).returncode == 0
    assert run_cli("stop", "-c", n.conf_path).returncode == 0
    n.start()  # --fresh: a new region, the store kept
    register(n, inst(svc, "b1", groupId="blue"), inst(svc, "b2", groupId="blue"),
             inst(svc, "g1", groupId="green"), inst(svc, "x1"))
    got = Counter(routed(n, svc) for _ in range(8))
    assert got == {("b1", "b2"): 6, ("g1",): 2}, got
    assert [g["weight"] for g in java_rules(n, svc)[0]["groups"]] == [3, 1]
    c = run_cli("check", "-c", n.conf_path)
    assert c.returncode == 0, c.stdout + c.stderr


def test_a_version_2_store_is_migrated(fresh_node):
    """A store of the previous schema (operations, audit, users, no routing
    tables) is brought to the current one at start, its data kept."""
    import os
    import sqlite3
    from mgmt_util import java_instance
    n = fresh_node
    n.login()
    svc = uniq()
    register(n, inst(svc, "a"), inst(svc, "b"))
    java_instance(n, svc, "a")
    n.stop()
    path = os.path.join(n.data_dir, "artemis.db")
    with sqlite3.connect(path) as db:
        for t in ("service_route_rule_group", "service_route_rule", "canary_config",
                  "service_instance", "service_group_operation", "service_group_instance",
                  "service_group_tag", "service_group"):
            db.execute("DROP TABLE %s" % t)
        db.execute("DROP INDEX audit_group")
        db.execute("ALTER TABLE audit DROP COLUMN group_id")
        db.execute("ALTER TABLE audit DROP COLUMN route_rule_id")
        db.execute("PRAGMA user_version = 2")
    n.fresh = False
    n.start()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 4
    assert_everywhere(n, svc, ["b"])
    g = group(n, svc, "blue")
    assert g["groupId"] >= 1
    assert run_cli("check", "-c", n.conf_path).returncode == 0


def test_bench_routed_mode_runs(node_factory):
    """`artemis-bench routed` as docs/BENCHMARKS.md runs it, on a node
    without access control (functional only: the figures are measured with
    bench/, never asserted)."""
    fresh_node = node_factory(auth={"enabled": "off"})
    import os
    import subprocess
    bench = os.environ.get("ARTEMIS_BENCH") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "artemis-bench")
    p = subprocess.run([bench, "routed", "-t", "127.0.0.1:%d" % fresh_node.port, "-n", "400",
                        "-s", "4", "-d", "2", "-c", "4", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1]
    r = json.loads(line)
    assert [c["class"] for c in r["classes"]] == ["plain", "routed"]
    assert "routed_cost_pct" in r and r["phases"] == 2
    assert all(c["errors"] == 0 and c["requests"] > 0 for c in r["classes"]), r
    rules = ok(fresh_node, "GET", RT + "rules")
    assert [(len(x["groups"]), x["status"]) for x in rules] == [(10, "active")]


def test_full_dev_shm_refuses_a_routing_write_and_recovers(shm_ns, tmp_path):
    """The routing data is reserved in /dev/shm as it grows (a start
    reserves only its first part): with /dev/shm full, a write whose data
    needs more is refused with service-unavailable and nothing written,
    discovery keeps answering and `artemis check` passes; once space comes
    back the same write works, without a restart."""
    from artemis_it import finish_node
    from routing_util import java, java_service
    from test_survival import NsNode  # noqa: E402

    ns = shm_ns("32m")
    node = NsNode(str(tmp_path), ns)
    node.start()
    try:
        svc = uniq("shmfull")
        register(node, inst(svc, "real"))
        many = [{"serviceId": svc, "instanceId": "logic-%03d" % i,
                 "ip": "10.9.%d.%d" % (i // 200, i % 200), "port": 9090,
                 "url": "http://10.9.0.1:9090", "regionId": REGION, "zoneId": ZONE,
                 "metadata": {"pad": "x" * 900}} for i in range(300)]
        ns.fill("filler")  # until ENOSPC
        b = java(node, "insert-service-instances.json", {"serviceInstances": many},
                 code="service-unavailable")
        assert "/dev/shm" in json.dumps(b["responseStatus"]), b
        got = java(node, "get-service-instances.json", {"serviceId": svc})
        assert not got["serviceInstances"], got
        s = java_service(node, svc)
        assert [i["instanceId"] for i in s["instances"]] == ["real"] and not s["logicInstances"]
        c = node.check()
        assert c.returncode == 0, c.stdout + c.stderr
        assert ns.run("rm", "/dev/shm/filler").returncode == 0
        java(node, "insert-service-instances.json", {"serviceInstances": many})
        assert len(java_service(node, svc)["logicInstances"]) == 300
        c = node.check()
        assert c.returncode == 0, c.stdout + c.stderr
    finally:
        finish_node(node)

"""
test_routing_rust.py - groups, route rules and canary configs on the Rust
surface (MANAGEMENT.md §3.2.3-§3.2.5, §3.3): every path, the console's
request and answer shapes, and bad input (404 unknown, 400 a group of
another service, 409 duplicates, weights clamped, nothing half-written),
with an audit record for each write.
"""

from artemis_it import REGION, ZONE, inst, register, uniq
from routing_util import CN, RT, call, canary, fails, group, ok, rule


# ----------------------------------------------------------------- groups ---

def test_group_create_read_update_delete(node):
    svc = uniq()
    register(node, inst(svc, "b1", groupId="blue"), inst(svc, "x1"))
    g = ok(node, "POST", RT + "groups",
           {"service_id": svc, "region_id": REGION, "zone_id": ZONE, "name": "blue",
            "groupType": {"type": "WEIGHT"}, "appId": "shop", "description": "the blue ones"},
           expect=201)
    key = "%s:%s:%s:blue" % (svc, REGION, ZONE)
    assert g["groupKey"] == key and isinstance(g["groupId"], int) and g["id"] == g["groupId"]
    assert g["groupType"] == "physical" and g["groupTypeInfo"] == {"type": "WEIGHT"}
    assert g["status"] == "active" and g["statusInfo"] == {"status": "active"}
    assert g["instance_count"] == 1 and g["instanceCount"] == 1  # b1: its groupId names it
    assert g["created_at"] == g["createdAt"] > 1e9 and g["appId"] == "shop"
    assert g["tags"] == {} and g["metadata"] == {}
    # Read by key, by numeric id (both paths), and in the list.
    for path in (RT + "groups/" + key, RT + "groups/%d" % g["groupId"],
                 RT + "groups/by-id/%d" % g["groupId"]):
        assert ok(node, "GET", path)["groupKey"] == key
    listed = ok(node, "GET", RT + "groups?serviceId=" + svc)
    assert [x["name"] for x in listed] == ["blue"]
    assert ok(node, "GET", RT + "groups?service_id=%s&regionId=nowhere" % svc) == []
    # Update, then delete.
    u = ok(node, "PUT", RT + "groups/" + key, {"description": "now green-ish",
                                               "status": {"status": "inactive"}})
    assert u["description"] == "now green-ish" and u["status"] == "inactive"
    ok(node, "DELETE", RT + "groups/%d" % g["groupId"])
    fails(node, "GET", RT + "groups/" + key, None, 404)
    # The same key again: a group again.
    assert group(node, svc, "blue")["groupKey"] == key


def test_group_bad_input(node):
    svc = uniq()
    group(node, svc, "g")
    msg = fails(node, "POST", RT + "groups", {"serviceId": svc, "regionId": REGION,
                                              "zoneId": ZONE, "name": "G"}, 409)
    assert "exists" in msg
    for missing in ("serviceId", "regionId", "zoneId", "name"):
        body = {"serviceId": svc, "regionId": REGION, "zoneId": ZONE, "name": "h"}
        del body[missing]
        assert missing in fails(node, "POST", RT + "groups", body, 400)
    fails(node, "POST", RT + "groups", {"serviceId": svc, "regionId": REGION, "zoneId": ZONE,
                                        "name": "x" * 200}, 400)
    fails(node, "POST", RT + "groups", {"serviceId": svc, "regionId": REGION, "zoneId": ZONE,
                                        "name": "h", "groupType": "sideways"}, 400)
    fails(node, "GET", RT + "groups/999999", None, 404)
    fails(node, "GET", RT + "groups/not-a-key", None, 400)
    fails(node, "PUT", RT + "groups/999999", {"status": "inactive"}, 404)
    fails(node, "DELETE", RT + "groups/%s:%s:%s:nope" % (svc, REGION, ZONE), None, 404)
    assert [g["name"] for g in ok(node, "GET", RT + "groups?serviceId=" + svc)] == ["g"]


def test_group_tags(node):
    svc = uniq()
    g = group(node, svc, "t")
    base = RT + "groups/%d/tags" % g["groupId"]
    got = ok(node, "POST", base, {"tags": [{"key": "color", "value": "blue"},
                                           {"key": "tier", "value": "1"}]}, expect=201)
    assert {(t["key"], t["value"]) for t in got} == {("color", "blue"), ("tier", "1")}
    ok(node, "POST", base, {"tags": {"color": "navy"}}, expect=201)
    assert {t["key"]: t["value"] for t in ok(node, "GET", base)} == {"color": "navy",
                                                                      "tier": "1"}
    assert ok(node, "GET", RT + "groups/%d" % g["groupId"])["tags"] == {"color": "navy",
                                                                        "tier": "1"}
    ok(node, "DELETE", base + "/tier")
    fails(node, "DELETE", base + "/tier", None, 404)
    fails(node, "POST", base, {"tags": []}, 400)
    assert [t["key"] for t in ok(node, "GET", base)] == ["color"]


def test_group_members(node):
    svc, other = uniq(), uniq()
    register(node, inst(svc, "m1", groupId="canary"), inst(svc, "m2"), inst(svc, "m3"))
    g = group(node, svc, "canary")
    base = RT + "groups/%s:%s:%s:canary/instances" % (svc, REGION, ZONE)
    assert [m["instanceId"] for m in ok(node, "GET", base)] == ["m1"]
    b = ok(node, "POST", base, {"instanceId": "m2", "regionId": REGION, "zoneId": ZONE,
                                "serviceId": svc, "operatorId": "olga"}, expect=201)
    assert b["instanceId"] == "m2" and b["groupId"] == g["groupId"]
    got = ok(node, "GET", base + "?regionId=" + REGION)
    assert sorted(m["instanceId"] for m in got) == ["m1", "m2"]
    assert {m["status"] for m in got} == {"up"}
    fails(node, "POST", base, {"instanceId": "m3", "serviceId": other}, 400)
    ok(node, "DELETE", base + "/m2?regionId=%s&zoneId=%s" % (REGION, ZONE))
    fails(node, "DELETE", base + "/m2", None, 404)
    fails(node, "POST", base, {"serviceId": svc}, 400)
    assert ok(node, "GET", RT + "groups/%d" % g["groupId"])["instance_count"] == 1


def test_service_instances_batch(node):
    svc, other = uniq(), uniq()
    register(node, *(inst(svc, "s%d" % i) for i in range(3)))
    a, b = group(node, svc, "a"), group(node, svc, "b")
    o = group(node, other, "o")
    n = ok(node, "POST", RT + "services/%s/instances" % svc, {"instances": [
        {"groupId": a["groupId"], "instanceId": "s0", "regionId": REGION, "zoneId": ZONE,
         "serviceId": svc, "bindingType": "manual", "operatorId": "olga"},
        {"groupId": str(b["groupId"]), "instanceId": "s1", "serviceId": svc},
        {"groupId": "b", "instanceId": "s2"}]}, expect=201)
    assert n == 3
    members = ok(node, "GET", RT + "groups/%d/instances" % b["groupId"])
    assert sorted(m["instanceId"] for m in members) == ["s1", "s2"]
    # An element of another service, or a group of another service: 400,
    # and nothing of the request is written.
    for bad in ({"groupId": a["groupId"], "instanceId": "s9", "serviceId": other},
                {"groupId": o["groupId"], "instanceId": "s9"}):
        fails(node, "POST", RT + "services/%s/instances" % svc,
              {"instances": [{"groupId": a["groupId"], "instanceId": "s8"}, bad]}, 400)
    fails(node, "POST", RT + "services/%s/instances" % svc,
          {"instances": [{"groupId": 999999, "instanceId": "s8"}]}, 404)
    fails(node, "POST", RT + "services/%s/instances" % svc, {"instances": []}, 400)
    members = ok(node, "GET", RT + "groups/%d/instances" % a["groupId"])
    assert [m["instanceId"] for m in members] == ["s0"]


# ------------------------------------------------------------------ rules ---

def test_rule_lifecycle_and_groups(node):
    svc = uniq()
    register(node, inst(svc, "b1", groupId="blue"), inst(svc, "g1", groupId="green"))
    blue, green = group(node, svc, "blue"), group(node, svc, "green")
    route = uniq("route")
    r = ok(node, "POST", RT + "rules", {"routeId": route, "serviceId": svc, "name": "split",
                                        "strategy": {"strategy": "CONSISTENT_HASH"}},
           expect=201)
    assert r["status"] == "inactive" and r["statusInfo"] == {"status": "inactive"}
    assert r["strategy"] == "consistent-hash"
    assert r["strategyInfo"] == {"strategy": "CONSISTENT_HASH"}
    assert r["routeRuleId"] == r["id"] and r["routeId"] == route and r["groups"] == []
    assert r["created_at"] > 1e9
    # Groups by number, by a string of digits, by name; weights clamped to 1..100.
    base = RT + "rules/%s/groups" % route
    x = ok(node, "POST", base, {"groupId": blue["groupId"], "weight": 700}, expect=201)
    assert x["weight"] == 100 and x["unreleasable"] is False and x["routeId"] == route
    assert x["groupKey"] == blue["groupKey"] and x["regionId"] == REGION
    ok(node, "POST", base, {"groupId": "green", "weight": 0}, expect=201)
    got = ok(node, "GET", base)
    assert [(g["groupId"], g["weight"]) for g in got] == [(blue["groupId"], 100),
                                                          (green["groupId"], 1)]
    ok(node, "PUT", base + "/%d" % green["groupId"], {"weight": 30})
    assert ok(node, "PUT", base + "/green", {"weight": "40"})["weight"] == 40
    # Update, publish, unpublish.
    u = ok(node, "PUT", RT + "rules/" + route, {"name": "split two",
                                                "strategy": "weighted-round-robin"})
    assert u["name"] == "split two" and u["strategy"] == "weighted-round-robin"
    p = ok(node, "POST", RT + "rules/%s/publish" % route)
    assert p["status"] == "active" and p["applied"] is True
    assert [g["weight"] for g in p["groups"]] == [100, 40]
    assert ok(node, "GET", RT + "rules?serviceId=" + svc)[0]["status"] == "active"
    assert ok(node, "GET", RT + "rules?service_id=" + svc)[0]["routeId"] == route
    assert ok(node, "POST", RT + "rules/%s/unpublish" % route)["status"] == "inactive"
    # By numeric routeRuleId too.
    assert ok(node, "GET", RT + "rules/%d" % r["routeRuleId"])["routeId"] == route
    ok(node, "DELETE", base + "/%d" % green["groupId"])
    fails(node, "DELETE", base + "/%d" % green["groupId"], None, 404)
    ok(node, "DELETE", RT + "rules/" + route)
    fails(node, "GET", RT + "rules/" + route, None, 404)


def test_rule_bad_input(node):
    svc, other = uniq(), uniq()
    mine, theirs = group(node, svc, "mine"), group(node, other, "theirs")
    route = uniq("route")
    rule(node, svc, route)
    fails(node, "POST", RT + "rules", {"routeId": route, "serviceId": other, "name": "x"}, 409)
    fails(node, "POST", RT + "rules", {"routeId": uniq(), "serviceId": svc,
                                       "name": route + " rule"}, 409)
    for missing in ("routeId", "serviceId", "name"):
        body = {"routeId": uniq(), "serviceId": svc, "name": uniq()}
        del body[missing]
        assert missing in fails(node, "POST", RT + "rules", body, 400)
    fails(node, "POST", RT + "rules", {"routeId": uniq(), "serviceId": svc, "name": uniq(),
                                       "strategy": {"strategy": "FASTEST"}}, 400)
    base = RT + "rules/%s/groups" % route
    assert "of service" in fails(node, "POST", base, {"groupId": theirs["groupId"],
                                                      "weight": 5}, 400)
    fails(node, "POST", base, {"groupId": 999999, "weight": 5}, 404)
    fails(node, "POST", base, {"groupId": "nope", "weight": 5}, 404)
    fails(node, "POST", base, {"weight": 5}, 400)
    fails(node, "POST", base, {"groupId": mine["groupId"], "weight": "heavy"}, 400)
    fails(node, "PUT", base + "/%d" % mine["groupId"], {"weight": 5}, 404)  # not in the rule
    fails(node, "GET", RT + "rules/" + uniq(), None, 404)
    fails(node, "POST", RT + "rules/%s/publish" % uniq(), None, 404)
    fails(node, "POST", RT + "rules/%s/groups" % uniq(), {"groupId": mine["groupId"]}, 404)
    assert ok(node, "GET", base) == []


def test_rule_with_no_member_says_so(node):
    svc = uniq()
    register(node, inst(svc, "x1"))
    empty = group(node, svc, "empty")
    route = uniq("route")
    rule(node, svc, route, groups=[(empty["groupId"], 50)], publish=True)
    r = ok(node, "GET", RT + "rules/" + route)
    assert r["status"] == "active" and r["applied"] is True
    assert "every instance" in r["statusMessage"]


# ----------------------------------------------------------------- canary ---

def test_canary_calls(node):
    svc = uniq()
    c = canary(node, svc, ["10.0.0.1", "10.1.0.0/16", "fd00::/8"])
    assert c["serviceId"] == svc and c["enabled"] is True
    assert c["ipWhitelist"] == ["10.0.0.1", "10.1.0.0/16", "fd00::/8"]
    assert c["createdAt"] > 1e9 and c["updatedAt"] >= c["createdAt"]
    assert ok(node, "GET", CN + "config/" + svc)["ipWhitelist"][1] == "10.1.0.0/16"
    assert svc in [x["serviceId"] for x in ok(node, "GET", CN + "configs")]
    assert ok(node, "GET", CN + "enabled/" + svc) is True
    assert ok(node, "POST", CN + "disable", {"serviceId": svc})["enabled"] is False
    assert ok(node, "GET", CN + "enabled/" + svc) is False
    assert ok(node, "POST", CN + "enable", {"serviceId": svc, "enabled": True})["enabled"]
    w = ok(node, "POST", CN + "%s/whitelist/add" % svc, {"ips": ["192.168.0.9", "10.0.0.1"]})
    assert w["ipWhitelist"] == ["10.0.0.1", "10.1.0.0/16", "fd00::/8", "192.168.0.9"]
    w = ok(node, "POST", CN + "%s/whitelist/remove" % svc, {"ips": ["10.0.0.1"]})
    assert w["ipWhitelist"] == ["10.1.0.0/16", "fd00::/8", "192.168.0.9"]
    assert ok(node, "GET", CN + "%s/whitelist" % svc) == w["ipWhitelist"]
    chk = ok(node, "GET", CN + "%s/whitelist/check/10.1.7.7" % svc)
    assert chk["whitelisted"] is True and chk["matchedEntry"] == "10.1.0.0/16"
    assert ok(node, "GET", CN + "%s/whitelist/check/10.2.0.1" % svc)["whitelisted"] is False
    assert ok(node, "GET", CN + "%s/whitelist/check/fd00::5" % svc)["whitelisted"] is True
    fails(node, "GET", CN + "%s/whitelist/check/not-an-ip" % svc, None, 400)
    stats = ok(node, "GET", CN + "stats")
    assert stats["totalConfigs"] >= 1 and stats["enabledConfigs"] >= 1
    s = ok(node, "GET", CN + "%s/stats" % svc)
    assert s["whitelistSize"] == 3 and s["enabled"] is True and s["canaryGroups"] == []
    assert ok(node, "DELETE", CN + "%s/whitelist" % svc)["ipWhitelist"] == []
    ok(node, "DELETE", CN + "config/" + svc)
    fails(node, "GET", CN + "config/" + svc, None, 404)
    assert ok(node, "GET", CN + "enabled/" + svc) is False


def test_canary_bad_input(node):
    svc = uniq()
    for bad in (["300.1.1.1"], ["10.0.0.0/33"], ["fd00::/129"], [7], ["10.0.0.1:80"]):
        fails(node, "POST", CN + "config", {"serviceId": svc, "ipWhitelist": bad}, 400)
    fails(node, "POST", CN + "config", {"ipWhitelist": ["10.0.0.1"]}, 400)
    fails(node, "GET", CN + "config/" + svc, None, 404)
    fails(node, "POST", CN + "enable", {"serviceId": svc}, 404)
    fails(node, "POST", CN + "disable", {"serviceId": svc}, 404)
    fails(node, "POST", CN + "%s/whitelist/add" % svc, {"ips": ["10.0.0.1"]}, 404)
    canary(node, svc, [])
    fails(node, "POST", CN + "%s/whitelist/add" % svc, {"ips": ["999.0.0.1"]}, 400)
    fails(node, "POST", CN + "%s/whitelist/add" % svc, {"ips": []}, 400)
    assert ok(node, "GET", CN + "config/" + svc)["ipWhitelist"] == []
    fails(node, "DELETE", CN + "config/" + uniq(), None, 404)


# ------------------------------------------------------------------ audit ---

def test_every_write_is_audited(node):
    svc = uniq()
    g = group(node, svc, "audited", operatorId="ivan")
    route = uniq("route")
    rule(node, svc, route, groups=[(g["groupId"], 10)], publish=True)
    canary(node, svc, ["10.0.0.1"])
    st, b = call(node, "GET", "/api/management/audit/logs?limit=1000&operatorId=ivan")
    assert st == 200
    mine = [x for x in b["data"] if x["resourceId"].startswith(svc.lower())]
    assert [x["operationType"] for x in mine] == ["group"]
    types = set()
    for t in ("group", "route-rule", "route-rule-group", "canary"):
        st, b = call(node, "GET", "/api/management/audit/logs?limit=1000&operationType=" + t)
        if any(svc.lower() in x["resourceId"].lower() or route in x["resourceId"]
               for x in b["data"]):
            types.add(t)
    assert types == {"group", "route-rule", "route-rule-group", "canary"}


def test_a_write_naming_no_operator_is_the_token_users(node):
    """MANAGEMENT.md §6: the logged-in user is the operator when the body
    names none (the Rust console names none)."""
    svc = uniq()
    st, b = call(node, "POST", RT + "groups",
                 {"serviceId": svc, "regionId": REGION, "zoneId": ZONE, "name": "mine"})
    assert st in (200, 201) and b["success"] is True, b
    assert b["data"]["operatorId"] == "admin", b
    st, b = call(node, "GET", "/api/management/audit/logs?limit=1000&operationType=group")
    mine = [x for x in b["data"] if svc.lower() in x["resourceId"].lower()]
    assert [x["operatorId"] for x in mine] == ["admin"], mine

"""
test_routing_java.py - Java's group and route-rule endpoints (API.md §5.3),
update-canary-ips (§5.5), and the routing data every Java discovery answer
carries (§4.10): routeRules with released weights only, members and tags,
the canary rule's resolved instances, logicInstances, and group operations
hiding their instances on every path.
"""

from artemis_it import REGION, ZONE, SUCCESS, assert_status, inst, register, uniq
from mgmt_util import assert_everywhere
from routing_util import CN, JG, JAVA_CTX, RT, call, java, java_rules, java_service, ok, routed


def group_id(node, svc, name, zone=ZONE):
    b = java(node, "get-groups.json", {"serviceId": svc, "zoneId": zone, "name": name})
    assert len(b["groups"]) == 1, b
    return b["groups"][0]["groupId"]


def rule_id(node, svc, name):
    b = java(node, "get-route-rules.json", {"serviceId": svc, "name": name})
    assert len(b["routeRules"]) == 1, b
    return b["routeRules"][0]["routeRuleId"]


def test_groups_and_tags(node):
    svc = uniq()
    java(node, "insert-groups.json", {"groups": [
        {"serviceId": svc, "regionId": REGION, "zoneId": ZONE, "name": "g1", "appId": "app",
         "description": "one", "status": "active"},
        {"serviceId": svc, "regionId": REGION, "zoneId": ZONE, "name": "g2"}]})
    g1 = group_id(node, svc, "g1")
    all_groups = java(node, "get-all-groups.json", {"regionId": REGION})["groups"]
    mine = sorted((g["name"], g["groupKey"]) for g in all_groups if g["serviceId"] == svc)
    assert mine == [("g1", "%s/%s/%s/g1" % (svc.lower(), REGION, ZONE)),
                    ("g2", "%s/%s/%s/g2" % (svc.lower(), REGION, ZONE))]
    java(node, "update-groups.json", {"groups": [{"groupId": g1, "description": "uno",
                                                   "status": "inactive"}]})
    g = java(node, "get-groups.json", {"groupId": g1})["groups"][0]
    assert g["description"] == "uno" and g["status"] == "inactive" and g["appId"] == "app"
    assert java(node, "get-groups.json", {"serviceId": svc, "status": "inactive"})["groups"][0][
        "name"] == "g1"
    # Tags.
    java(node, "insert-group-tags.json", {"groupTagsList": [{"groupId": g1,
                                                              "tags": {"a": "1", "b": "2"}}]})
    java(node, "update-group-tags.json", {"groupTagsList": [{"groupId": g1, "tags": {"a": "9"}}]})
    t = java(node, "get-group-tags.json", {"groupId": g1})["groupTags"]
    assert t == {"groupId": g1, "tags": {"a": "9", "b": "2"}}
    assert {"groupId": g1, "tags": {"a": "9", "b": "2"}} in java(
        node, "get-all-group-tags.json", {})["allGroupTags"]
    java(node, "delete-group-tags.json", {"groupId": g1, "tag": "b"})
    assert java(node, "get-group-tags.json", {"groupId": g1})["groupTags"]["tags"] == {"a": "9"}
    assert java(node, "get-groups.json", {"groupId": g1})["groups"][0]["metadata"] == {"a": "9"}
    # Deletes skip ids that do not exist.
    java(node, "delete-groups.json", {"groupIds": [g1, 999999]})
    assert java(node, "get-groups.json", {"groupId": g1})["groups"] == []
    assert java(node, "get-group-tags.json", {"groupId": g1})["groupTags"] is None


def test_writes_need_the_operation_context(node, node_factory):
    svc = uniq()
    body = {"groups": [{"serviceId": svc, "regionId": REGION, "zoneId": ZONE, "name": "x"}]}
    # Java's rule, on a node without access control: operation, operatorId
    # and token are each required.
    open_node = node_factory(auth={"enabled": "off"})
    for drop in ("operation", "operatorId", "token"):
        full = dict(JAVA_CTX)
        full.update(body)
        del full[drop]
        st, b = call(open_node, "POST", JG + "insert-groups.json", full)
        assert st == 200 and b["responseStatus"]["errorCode"] == "internal-service-error", b
        assert drop in b["responseStatus"]["message"]
    # A bearer header stands for the token.
    full = dict(JAVA_CTX, **body)
    del full["token"]
    st, b = call(open_node, "POST", JG + "insert-groups.json", full,
                 headers={"Authorization": "Bearer abc"})
    assert b["responseStatus"]["errorCode"] == "success", b
    # With access control the credential is the token, and the logged-in
    # user is the operator when the body names none: operation stays required.
    full = dict(JAVA_CTX, **body)
    del full["operation"]
    st, b = call(node, "POST", JG + "insert-groups.json", full)
    assert b["responseStatus"]["errorCode"] == "internal-service-error", b
    assert "operation" in b["responseStatus"]["message"]
    full = dict(JAVA_CTX, **body)
    del full["operatorId"]
    del full["token"]
    st, b = call(node, "POST", JG + "insert-groups.json", full)
    assert b["responseStatus"]["errorCode"] == "success", b
    got = ok(node, "GET", RT + "groups/%s:%s:%s:x" % (svc, REGION, ZONE))
    assert got["operatorId"] == "admin", got
    java(node, "insert-groups.json", {"groups": []}, code="bad-request")
    st, b = call(node, "POST", JG + "no-such-thing.json", {})
    assert st == 404
    # A batch with a bad element writes nothing.
    java(node, "insert-groups.json", {"groups": [
        {"serviceId": svc, "regionId": REGION, "zoneId": ZONE, "name": "y"},
        {"serviceId": svc, "regionId": REGION, "zoneId": ZONE, "name": "y" * 300}]},
        code="bad-request")
    assert java(node, "get-groups.json", {"serviceId": svc, "name": "y"})["groups"] == []


def test_route_rules_release_and_discovery(node):
    svc = uniq()
    register(node, inst(svc, "b1", groupId="blue"), inst(svc, "b2", groupId="blue"),
             inst(svc, "g1", groupId="green"), inst(svc, "x1"))
    # No routing data: null, as Java without management data.
    s = java_service(node, svc)
    assert s["routeRules"] is None and s["logicInstances"] is None
    java(node, "insert-groups.json", {"groups": [
        {"serviceId": svc, "regionId": REGION, "zoneId": ZONE, "name": n} for n in
        ("blue", "green")]})
    blue, green = group_id(node, svc, "blue"), group_id(node, svc, "green")
    java(node, "insert-route-rules.json", {"routeRules": [
        {"serviceId": svc, "name": "main", "status": "active", "strategy": "weighted-round-robin"}]})
    rid = rule_id(node, svc, "main")
    assert java_rules(node, svc) == []  # a rule without groups is dropped
    java(node, "insert-route-rule-groups.json", {"routeRuleGroups": [
        {"routeRuleId": rid, "groupId": blue, "unreleasedWeight": 70},
        {"routeRuleId": rid, "groupId": green, "weight": 20000}]})
    # Inserted, not released: weight null, Java's default 5 in discovery.
    rgs = java(node, "get-route-rule-groups.json", {"routeRuleId": rid})["routeRuleGroups"]
    assert [(x["weight"], x["unreleasedWeight"]) for x in rgs] == [(None, 70), (None, 10000)]
    rules = java_rules(node, svc)
    assert [g["weight"] for g in rules[0]["groups"]] == [5, 5]
    java(node, "release-route-rule-groups.json", {"routeRuleGroups": [
        {"routeRuleId": rid, "groupId": blue}, {"routeRuleId": rid, "groupId": green}]})
    rules = java_rules(node, svc)
    assert rules[0]["routeId"] == "main" and rules[0]["strategy"] == "weighted-round-robin"
    assert [(g["groupKey"], g["weight"]) for g in rules[0]["groups"]] == [
        ("%s/%s/%s/blue" % (svc.lower(), REGION, ZONE), 70),
        ("%s/%s/%s/green" % (svc.lower(), REGION, ZONE), 10000)]
    # An update is staged: invisible to discovery until released.
    java(node, "update-route-rule-groups.json", {"routeRuleGroups": [
        {"routeRuleId": rid, "groupId": blue, "unreleasedWeight": 1}]})
    assert [g["weight"] for g in java_rules(node, svc)[0]["groups"]] == [70, 10000]
    java(node, "release-route-rule-groups.json", {"routeRuleGroups": [
        {"routeRuleId": rid, "groupId": blue}]})
    assert [g["weight"] for g in java_rules(node, svc)[0]["groups"]] == [1, 10000]
    # Members and tags travel with the groups.
    java(node, "insert-group-instances.json", {"groupInstances": [
        {"groupId": green, "instanceId": "x1"}]})
    java(node, "insert-group-tags.json", {"groupTagsList": [{"groupId": green,
                                                              "tags": {"color": "green"}}]})
    g = java_rules(node, svc)[0]["groups"][1]
    assert g["instanceIds"] == ["x1"] and g["metadata"] == {"color": "green"}
    assert g["instances"] is None
    # The same on lookup and services.json.
    b = node.api("/artemis/api/discovery/lookup.json", {
        "regionId": REGION, "zoneId": ZONE, "discoveryConfigs": [{"serviceId": svc}]})
    assert b["services"][0]["routeRules"] == java_rules(node, svc)
    b = node.api("/artemis/api/discovery/services.json", {"regionId": REGION})
    assert [x for x in b["services"] if x["serviceId"] == svc][0]["routeRules"] == \
        java_rules(node, svc)
    # Unpublished: gone.
    java(node, "update-route-rules.json", {"routeRules": [{"routeRuleId": rid,
                                                            "status": "inactive"}]})
    assert java_rules(node, svc) == []
    all_rules = java(node, "get-all-route-rules.json", {})["routeRules"]
    assert [r["status"] for r in all_rules if r["routeRuleId"] == rid] == ["inactive"]
    all_rgs = java(node, "get-all-route-rule-groups.json", {})["routeRuleGroups"]
    mine = [x for x in all_rgs if x["routeRuleId"] == rid]
    assert len(mine) == 2
    java(node, "delete-route-rule-groups.json", {"routeRuleGroupIds": [mine[0]["routeRuleGroupId"],
                                                                       999999]})
    assert len(java(node, "get-route-rule-groups.json", {"routeRuleId": rid})[
        "routeRuleGroups"]) == 1
    java(node, "delete-route-rules.json", {"routeRuleIds": [rid]})
    assert java(node, "get-route-rules.json", {"routeRuleId": rid})["routeRules"] == []


def test_create_route_rule_with_groups(node):
    svc = uniq()
    java(node, "create-route-rule.json", {
        "routeRule": {"serviceId": svc, "name": "cr", "status": "active"},
        "groups": [{"serviceId": svc, "regionId": REGION, "zoneId": ZONE, "name": "a",
                    "weight": 30},
                   {"serviceId": svc, "regionId": REGION, "zoneId": ZONE, "name": "b"}]})
    rid = rule_id(node, svc, "cr")
    rgs = java(node, "get-route-rule-groups.json", {"routeRuleId": rid})["routeRuleGroups"]
    assert [x["unreleasedWeight"] for x in rgs] == [30, 5]
    assert len(java_rules(node, svc)[0]["groups"]) == 2
    # The Rust surface sees the same rule.
    r = ok(node, "GET", RT + "rules/" + str(rid))
    assert r["name"] == "cr" and r["status"] == "active" and len(r["groups"]) == 2


def test_group_operations_hide_instances_everywhere(node):
    svc = uniq()
    register(node, inst(svc, "a1", groupId="a"), inst(svc, "a2", groupId="a"),
             inst(svc, "b1", groupId="b"), inst(svc, "bound"))
    java(node, "insert-groups.json", {"groups": [
        {"serviceId": svc, "regionId": REGION, "zoneId": ZONE, "name": "a"}]})
    a = group_id(node, svc, "a")
    java(node, "insert-group-instances.json", {"groupInstances": [
        {"groupId": a, "instanceId": "bound"}]})
    gi = java(node, "get-group-instances.json", {"groupId": a})["groupInstances"]
    assert [(x["groupId"], x["instanceId"]) for x in gi] == [(a, "bound")]
    assert_everywhere(node, svc, ["a1", "a2", "b1", "bound"])
    java(node, "operate-group-operations.json", {
        "groupOperationsList": [{"groupId": a, "operations": ["pullout"]}],
        "operationComplete": False})
    assert_everywhere(node, svc, ["b1"])
    ops = java(node, "get-group-operations.json", {"groupId": a})["groupOperations"]
    assert ops == {"groupId": a, "operations": ["pullout"]}
    assert ops in java(node, "get-all-group-operations.json", {})["allGroupOperations"]
    st, b = call(node, "POST", "/api/management/services.json", {})
    statuses = {i["instanceId"]: i["status"] for s in b["services"] if s["serviceId"] == svc
                for i in s["instances"]}
    assert statuses == {"a1": "down", "a2": "down", "b1": "up", "bound": "down"}
    java(node, "operate-group-operations.json", {
        "groupOperationsList": [{"groupId": a, "operations": ["pullout"]}],
        "operationComplete": True})
    assert_everywhere(node, svc, ["a1", "a2", "b1", "bound"])
    assert java(node, "get-group-operations.json", {"groupId": a})["groupOperations"] is None
    # operate-group-operation names the group by its key (and makes it).
    java(node, "operate-group-operation.json", {
        "serviceId": svc, "regionId": REGION, "zoneId": ZONE, "name": "b",
        "operation": "pullout", "operationComplete": False})
    assert_everywhere(node, svc, ["a1", "a2", "bound"])
    java(node, "operate-group-operation.json", {
        "serviceId": svc, "regionId": REGION, "zoneId": ZONE, "name": "b",
        "operation": "pullout", "operationComplete": True})
    assert_everywhere(node, svc, ["a1", "a2", "b1", "bound"])
    java(node, "delete-group-instances.json", {"groupInstanceIds": [gi[0]["id"]]})
    assert java(node, "get-group-instances.json", {"groupId": a})["groupInstances"] == []
    # The log view of the group operations.
    st, b = call(node, "POST", "/api/management/log/group-operation-logs.json",
                 {"groupId": a})
    assert st == 200 and len(b["logs"]) >= 2, b
    assert {x["operation"] for x in b["logs"]} == {"pullout"}


def test_logical_instances(node):
    svc = uniq()
    register(node, inst(svc, "real"))
    java(node, "insert-service-instances.json", {"serviceInstances": [
        {"serviceId": svc, "instanceId": "logic-1", "ip": "10.9.9.9", "port": 9090,
         "url": "http://10.9.9.9:9090", "regionId": REGION, "zoneId": ZONE,
         "metadata": {"k": "v"}}]})
    si = java(node, "get-service-instances.json", {"serviceId": svc})["serviceInstances"]
    assert [(x["instanceId"], x["port"], x["metadata"]) for x in si] == [("logic-1", 9090,
                                                                         {"k": "v"})]
    s = java_service(node, svc)
    assert [i["instanceId"] for i in s["instances"]] == ["real"]
    li = s["logicInstances"]
    assert len(li) == 1 and li[0]["instanceId"] == "logic-1" and li[0]["status"] == "up"
    assert li[0]["metadata"] == {"k": "v"} and li[0]["url"] == "http://10.9.9.9:9090"
    assert s["routeRules"] == []
    java(node, "delete-service-instances.json", {"serviceInstanceIds": [si[0]["id"]]})
    assert java_service(node, svc)["logicInstances"] is None


def test_update_canary_ips(node):
    svc = uniq()
    register(node, inst(svc, "c1", zoneId="canary", groupId="shop"), inst(svc, "n1"),
             inst(svc, "n2"))
    java(node, "update-canary-ips.json",
         {"serviceId": svc, "appId": "shop", "canaryIps": ["10.5.0.1", "10.5.0.2"]}, base=CN)
    # The canary rule, its group (zone "canary", named by appId) and its
    # instances resolved in the Java answer.
    rules = java_rules(node, svc)
    assert [r["routeId"] for r in rules] == ["canary-route-rule"]
    g = rules[0]["groups"][0]
    assert g["groupKey"] == "%s/%s/canary/shop" % (svc.lower(), REGION)
    assert g["weight"] == 5 and g["instanceIds"] == ["10.5.0.1", "10.5.0.2"]
    assert [i["instanceId"] for i in g["instances"]] == ["c1"]
    # The same config on the Rust surface, and it routes.
    c = ok(node, "GET", "/api/management/canary/config/" + svc)
    assert c["enabled"] is True and c["ipWhitelist"] == ["10.5.0.1", "10.5.0.2"]
    st, b = call(node, "GET", "/api/management/canary/%s/stats" % svc)
    assert b["data"]["canaryInstances"] == 1
    # A second call replaces the IPs.
    java(node, "update-canary-ips.json",
         {"serviceId": svc, "appId": "shop", "canaryIps": ["10.5.0.3"]}, base=CN)
    assert java_rules(node, svc)[0]["groups"][0]["instanceIds"] == ["10.5.0.3"]
    java(node, "update-canary-ips.json", {"serviceId": svc, "canaryIps": []}, base=CN,
         code="bad-request")
    java(node, "update-canary-ips.json",
         {"serviceId": svc, "appId": "shop", "canaryIps": ["not-an-ip"]}, base=CN,
         code="bad-request")
    assert routed(node, svc) == ("n1", "n2")

"""
test_mgmt_java.py - the Java management surface (API.md §5.1, §5.2, §5.4):
every endpoint, its answer's shape, its errors (HTTP 200 with a
responseStatus), and writes refused while the node is not up.
"""

import pytest

from artemis_it import (REGION, ZONE, SUCCESS, assert_spring_error, assert_status, inst,
                        register, uniq)
from mgmt_util import M, java_instance, java_server, java_zone


@pytest.fixture(scope="module", autouse=True)
def _logged_in(node):
    """Management calls need a token (MANAGEMENT.md §6): the tests speak as admin."""
    node.login()


BAD = {"status": "fail", "errorCode": "bad-request"}


def ikey(svc, iid, region=REGION):
    return {"regionId": region, "serviceId": svc, "instanceId": iid}


# ---------------------------------------------------------- operate-* ---

@pytest.mark.parametrize("drop,field", [("regionId", "regionId"), ("serviceId", "serviceId"),
                                        ("instanceId", "instanceId"),
                                        ("operation", "operation")])
def test_operate_instance_names_the_missing_field(node, drop, field):
    body = {"instanceKey": ikey(uniq(), "i1"), "operation": "pullout",
            "operationComplete": False, "operatorId": "alice"}
    if drop in body:
        body[drop] = "  "
    else:
        body["instanceKey"][drop] = ""
    b = node.api(M + "operate-instance.json", body)
    assert_status(b, dict(BAD, message="%s is null or empty" % field))


def test_operator_is_the_token_user_when_absent(node):
    """A blank operatorId is the authenticated user's name (MANAGEMENT.md §6);
    the record keeps both identities."""
    svc = uniq()
    body = {"instanceKey": ikey(svc, "i1"), "operation": "pullout",
            "operationComplete": False, "operatorId": "  "}
    assert_status(node.api(M + "operate-instance.json", body), SUCCESS)
    body["operatorId"] = "ops-robot"
    body["operationComplete"] = True
    assert_status(node.api(M + "operate-instance.json", body), SUCCESS)
    logs = node.api(M + "log/instance-operation-logs.json", {"serviceId": svc})["logs"]
    assert [(x["operatorId"], x["username"]) for x in logs] == [
        ("ops-robot", "admin"), ("admin", "admin")], logs
    assert all(x["token"] is None for x in logs), logs


def test_operate_bad_shapes_and_bounds(node):
    b = node.api(M + "operate-instance.json", {"operation": "x", "operatorId": "a"})
    assert_status(b, dict(BAD, message="instanceKey is null"))
    b = node.api(M + "operate-instance.json", {"instanceKey": [1], "operation": "x",
                                               "operatorId": "a"})
    assert_status(b, BAD)
    b = node.api(M + "operate-instance.json", {"instanceKey": ikey("s" * 256, "i"),
                                               "operation": "x", "operatorId": "a"})
    assert_status(b, BAD)
    assert "serviceId" in b["responseStatus"]["message"]
    b = node.api(M + "operate-server.json", {"serverKey": {"regionId": REGION, "serverId": ""},
                                             "operation": "x", "operatorId": "a"})
    assert_status(b, dict(BAD, message="serverId is null or empty"))
    b = node.api(M + "operate-server.json", {"serverKey": {"regionId": REGION, "serverId": "1"},
                                             "operation": "x", "operatorId": "o" * 200})
    assert_status(b, BAD)
    # Not JSON at all: the framework's 400.
    st, _, body = node.request("POST", M + "operate-instance.json", b"{nope",
                               {"Content-Type": "application/json"})
    assert_spring_error(st, body, 400, M + "operate-instance.json")
    # Nothing of these was written.
    b = node.api(M + "all-instance-operations.json", {})
    assert all(o["instanceKey"]["serviceId"] != "s" * 256 for o in b["allInstanceOperations"])


def test_instance_operations_views(node):
    svc = uniq()
    register(node, inst(svc, "i1", ip="10.4.0.1"))
    b = node.api(M + "instance-operations.json", {"instanceKey": ikey(svc, "i1")})
    assert_status(b, SUCCESS)
    assert b["operations"] is None
    java_instance(node, svc, "i1", operation="pullout")
    java_instance(node, svc, "i1", operation="hold")
    b = node.api(M + "instance-operations.json", {"instanceKey": ikey(svc.upper(), "I1")})
    assert b["operations"]["instanceKey"] == ikey(svc, "i1")
    assert sorted(b["operations"]["operations"]) == ["hold", "pullout"]
    b = node.api(M + "instance-down.json", {"instance": inst(svc, "I1")})
    assert_status(b, SUCCESS)
    assert b["down"] is True
    b = node.api(M + "instance-down.json", {"instance": inst(svc, "other", ip="10.4.0.9")})
    assert b["down"] is False
    b = node.api(M + "instance-down.json", {})
    assert_status(b, dict(BAD, message="request.instance is null"))
    b = node.api(M + "instance-operations.json", {})
    assert_status(b, BAD)


def test_server_operations_views(node):
    ip = "10.77.%d.%d" % (hash(uniq()) % 200, hash(uniq()) % 200)
    key = {"regionId": REGION, "serverId": ip}
    b = node.api(M + "server-operations.json", {"serverKey": key})
    assert b["operations"] is None
    b = node.api(M + "server-down.json", {"serverKey": key})
    assert b["down"] is False
    java_server(node, ip)
    b = node.api(M + "server-operations.json", {"serverKey": key})
    assert b["operations"] == {"serverKey": key, "operations": ["pullout"]}
    assert node.api(M + "server-down.json", {"serverKey": key})["down"] is True
    # An instance on that server is down by the server rule.
    b = node.api(M + "instance-down.json", {"instance": inst(uniq(), "x", ip=ip)})
    assert b["down"] is True
    java_server(node, ip, complete=True)
    assert node.api(M + "server-down.json", {"serverKey": key})["down"] is False


def test_all_operations_answer_both_shapes(node):
    svc = uniq()
    java_instance(node, svc, "a", operator="zed")
    java_instance(node, svc, "a", operation="other", operator="zed")
    for method in ("POST", "GET"):
        if method == "POST":
            b = node.api(M + "all-instance-operations.json", {"regionId": REGION})
        else:
            st, _, b = node.get(M + "all-instance-operations.json?regionId=" + REGION)
            assert st == 200
        assert_status(b, SUCCESS)
        assert b["status"]["errorCode"] == "success"
        mine = [o for o in b["allInstanceOperations"] if o["instanceKey"]["serviceId"] == svc]
        assert mine == [{"instanceKey": ikey(svc, "a"), "operations": ["other", "pullout"]}]
        recs = [r for r in b["instanceOperationRecords"]
                if r["instanceKey"]["serviceId"] == svc]
        assert sorted(r["operation"] for r in recs) == ["other", "pullout"]
        assert all(r["operationComplete"] is False and r["operatorId"] == "zed" for r in recs)
    # Java's regionId filter is exact-case.
    b = node.api(M + "all-instance-operations.json", {"regionId": REGION.upper()})
    assert b["allInstanceOperations"] == [] and b["instanceOperationRecords"] == []
    ip = "10.78.0.%d" % (hash(svc) % 250)
    java_server(node, ip, operator="zed")
    st, _, b = node.get(M + "all-server-operations.json")
    assert st == 200
    assert {"serverKey": {"regionId": REGION, "serverId": ip},
            "operations": ["pullout"]} in b["allServerOperations"]
    assert {"operation": "pullout", "operatorId": "zed", "regionId": REGION,
            "serverId": ip} in b["serverOperationRecords"]
    java_server(node, ip, complete=True)


def test_management_service_views(node):
    svc = uniq()
    register(node, inst(svc, "u", metadata={"k": "v"}), inst(svc, "d"),
             inst(svc, "s", status="starting"), inst(svc, "sd", status="starting"))
    java_instance(node, svc, "d")
    java_instance(node, svc, "sd")
    b = node.api(M + "service.json", {"serviceId": svc, "regionId": REGION})
    assert_status(b, SUCCESS)
    assert b["groups"] == []
    s = b["service"]
    assert s["serviceId"] == svc
    by_id = {i["instanceId"]: i for i in s["instances"]}
    # Down when an operation hides it; else the status it registered with.
    assert by_id["u"]["status"] == "up" and by_id["d"]["status"] == "down"
    assert by_id["s"]["status"] == "starting" and by_id["sd"]["status"] == "down"
    md = by_id["u"]["metadata"]
    assert md["k"] == "v"
    assert int(md["creationTime"]) > 0 and int(md["renewalTime"]) >= int(md["creationTime"])
    assert md["ttl"] == "20000"
    b = node.api(M + "service.json", {"serviceId": ""})
    assert_status(b, dict(BAD, message="Request is null or request.servcieId is null."))
    b = node.api(M + "service.json", {"serviceId": uniq()})
    assert b["service"]["instances"] is None
    st, _, b = node.get(M + "services.json")
    assert st == 200 and b["version"] > 0
    assert svc in [x["serviceId"] for x in b["services"]]


# ----------------------------------------------------------------- zones ---

def test_zone_endpoints(node):
    svc, zone = uniq(), uniq("z")
    zk = {"regionId": REGION, "serviceId": svc, "zoneId": zone}
    b = node.api(M + "zone/is-zone-down.json", {"zoneKey": zk})
    assert_status(b, SUCCESS)
    assert b["down"] is False
    b = node.api(M + "zone/get-zone-operations.json", {"zoneKey": zk})
    assert b["operations"] is None
    java_zone(node, zone, service=svc, operations=("pullout", "drain"))
    assert node.api(M + "zone/is-zone-down.json", {"zoneKey": zk})["down"] is True
    b = node.api(M + "zone/get-zone-operations.json", {"zoneKey": zk})
    assert b["operations"] == {"zoneKey": zk, "operations": ["drain", "pullout"]}
    b = node.api(M + "zone/get-all-zone-operations.json", {"regionId": REGION})
    assert {"zoneKey": zk, "operations": ["drain", "pullout"]} in b["allZoneOperations"]
    b = node.api(M + "zone/get-zone-operations-list.json", {"regionId": REGION, "zoneId": zone})
    assert b["zoneOperationsList"] == [{"zoneKey": zk, "operations": ["drain", "pullout"]}]
    java_zone(node, zone, service=svc, operations=("pullout", "drain"), complete=True)
    assert node.api(M + "zone/is-zone-down.json", {"zoneKey": zk})["down"] is False
    b = node.api(M + "zone/operate-zone-operations.json", {"operatorId": "a",
                                                            "zoneOperationsList": []})
    assert_status(b, dict(BAD, message="zoneOperationsList is null or empty"))
    b = node.api(M + "zone/operate-zone-operations.json", {
        "zoneOperationsList": [{"zoneKey": {"regionId": REGION, "zoneId": ""},
                                "operations": ["x"]}], "operatorId": "a"})
    assert_status(b, dict(BAD, message="zoneId is null or empty"))
    b = node.api(M + "zone/is-zone-down.json", {})
    assert_status(b, BAD)


# ------------------------------------------------------------------ logs ---

def test_log_endpoints(node):
    svc = uniq()
    ip = "10.79.0.%d" % (hash(svc) % 250)
    zone = uniq("z")
    java_instance(node, svc, "i1", operator="logger")
    java_instance(node, svc, "i1", complete=True, operator="logger")
    java_server(node, ip, operator="logger")
    java_zone(node, zone, service=svc, operator="logger")
    b = node.api(M + "log/instance-operation-logs.json", {"serviceId": svc})
    assert_status(b, SUCCESS)
    logs = b["logs"]
    assert [l["complete"] for l in logs] == [True, False]  # newest first
    for l in logs:
        assert l["serviceId"] == svc and l["instanceId"] == "i1" and l["regionId"] == REGION
        assert l["operation"] == "pullout" and l["operatorId"] == "logger"
        assert l["createTime"] > 0 and l["token"] is None and isinstance(l["id"], int)
    b = node.api(M + "log/instance-operation-logs.json", {"serviceId": svc, "complete": False})
    assert len(b["logs"]) == 1
    b = node.api(M + "log/server-operation-logs.json", {"serverId": ip})
    assert [l["serverId"] for l in b["logs"]] == [ip]
    b = node.api(M + "log/zone-operation-logs.json", {"zoneId": zone})
    assert [(l["zoneId"], l["serviceId"]) for l in b["logs"]] == [(zone, svc)]
    for name in ("group-operation-logs", "group-logs", "route-rule-logs",
                 "route-rule-group-logs", "group-instance-logs", "service-instance-logs"):
        b = node.api(M + "log/%s.json" % name, {"operatorId": "logger"})
        assert_status(b, SUCCESS)
        assert b["logs"] == []
    # Without a body: the Rust shape, filters in the query string.
    st, _, b = node.request("POST", M + "log/zone-operation-logs.json?zone_id=" + zone)
    assert st == 200 and b["success"] is True
    assert [r["targetId"] for r in b["data"]] == ["%s/%s/%s" % (REGION, zone, svc)]
    java_zone(node, zone, service=svc, complete=True)
    java_server(node, ip, complete=True)


# -------------------------------------------------------- node not up ---

def test_writes_refused_unless_the_node_is_up(node_factory):
    from artemis_it import free_port
    n = node_factory(cluster={"bootstrap_timeout_ms": "600000",
                              "key": "it-secret-key-0123456789",
                              "peer": "ghost zone-1 http://127.0.0.1:%d 127.0.0.1:%d"
                                      % (free_port(), free_port())})
    n.login()  # logins work on a node that is still starting
    b = n.api(M + "operate-instance.json", {"instanceKey": ikey("s", "i"),
                                            "operation": "pullout", "operatorId": "a"})
    assert_status(b, {"status": "fail", "errorCode": "service-unavailable"})
    st, _, b = n.post_json(M + "zone/pull-out", {"zoneId": ZONE, "operatorId": "a"})
    assert st == 503 and b["success"] is False
    st, _, b = n.post_json(M + "instance/operate-instance.json", {
        "instanceKey": ikey("s", "i"), "operation": "pullout", "operatorId": "a"})
    assert st == 503 and b["status"]["errorCode"] == "service-unavailable"
    # Reads still answer.
    b = n.api(M + "all-instance-operations.json", {})
    assert_status(b, SUCCESS)

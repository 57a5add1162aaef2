"""
test_mgmt_rust.py - the Rust rewrite's surface (MANAGEMENT.md §3.2.1,
§3.2.2, §3.2.6, §3.3): instance and server operations with the
{"status":{errorCode}} envelope, zones, the audit calls (filters, paging,
times, one record, export, stats, cleanup), and the whole /api prefix
(errorMessage, flat node fields, every /artemis/api path).
"""

import csv
import io
import time

import pytest

from artemis_it import REGION, ZONE, SUCCESS, assert_status, inst, register, uniq, wait_for
from mgmt_util import M, rust_instance, rust_post, rust_server, rust_zone


@pytest.fixture(scope="module", autouse=True)
def _logged_in(node):
    """Management calls need a token (MANAGEMENT.md §6): the tests speak as admin."""
    node.login()


def ikey(svc, iid):
    return {"regionId": REGION, "serviceId": svc, "instanceId": iid, "zoneId": ZONE,
            "groupId": "g"}


# ------------------------------------------------ instances and servers ---

def test_instance_operations(node):
    svc = uniq()
    register(node, inst(svc, "i1"))
    b = rust_post(node, "instance/get-instance-operations.json", {"instanceKey": ikey(svc, "i1")})
    assert b["status"]["errorCode"] == "success" and b["operations"] == []
    b = rust_post(node, "instance/is-instance-down.json", {"instanceKey": ikey(svc, "i1")})
    assert b["isDown"] is False
    rust_instance(node, svc, "i1", "pullout", operationComplete=False)
    b = rust_post(node, "instance/get-instance-operations.json", {"instance_key": ikey(svc, "i1")})
    assert b["operations"] == ["pullout"]
    assert rust_post(node, "instance/is-instance-down.json",
                     {"instanceKey": ikey(svc, "i1")})["isDown"] is True
    rust_instance(node, svc, "i1", "pullin")
    assert rust_post(node, "instance/is-instance-down.json",
                     {"instanceKey": ikey(svc, "i1")})["isDown"] is False
    # Down by its server: is-instance-down sees every rule for a registered one.
    rust_server(node, "10.0.0.1", "pullout")
    assert rust_post(node, "instance/is-instance-down.json",
                     {"instanceKey": ikey(svc, "i1")})["isDown"] is True
    assert rust_post(node, "server/is-server-down.json",
                     {"serverId": "10.0.0.1", "regionId": REGION})["isDown"] is True
    rust_server(node, "10.0.0.1", "pullin")
    assert rust_post(node, "server/is-server-down.json",
                     {"server_id": "10.0.0.1", "region_id": REGION})["isDown"] is False


def test_instance_operation_bad_input_is_400(node):
    for body, field in (({"operation": "pullout", "operatorId": "a"}, "instanceKey"),
                        ({"instanceKey": ikey("s", "i"), "operatorId": "a"}, "operation"),
                        ({"instanceKey": ikey("s", ""), "operation": "pullout",
                          "operatorId": "a"}, "instanceId")):
        b = rust_post(node, "instance/operate-instance.json", body, expect=400)
        assert b["status"]["errorCode"] == "bad-request", b
        assert field in b["status"]["errorMessage"], (field, b)
    b = rust_post(node, "instance/operate-instance.json",
                  {"instanceKey": ikey("s", "i"), "operation": "sideways", "operatorId": "a"},
                  expect=400)
    assert "pullout" in b["status"]["errorMessage"]
    b = rust_post(node, "server/operate-server.json",
                  {"regionId": REGION, "operation": "pullout", "operatorId": "a"}, expect=400)
    assert "serverId" in b["status"]["errorMessage"]


# ----------------------------------------------------------------- zones ---

def test_zone_calls(node):
    zone, svc = uniq("z"), uniq()
    register(node, inst(svc, "z1", zoneId=zone), inst(svc, "z2", zoneId=zone))
    st, _, b = node.get(M + "zone/status/%s/%s" % (zone, REGION))
    assert st == 200 and b["data"]["isDown"] is False and b["data"]["is_down"] is False
    rust_zone(node, zone, out=True, operator="ops")
    st, _, b = node.get(M + "zone/status/%s/%s" % (zone, REGION))
    d = b["data"]
    assert d["isDown"] is True and d["is_down"] is True
    assert d["zoneId"] == d["zone_id"] == zone and d["regionId"] == d["region_id"] == REGION
    assert d["operation"] == "pullout" and d["operatorId"] == d["operator_id"] == "ops"
    st, _, b = node.get(M + "zone/operations?regionId=" + REGION)
    mine = [o for o in b["data"] if o["zoneId"] == zone]
    assert len(mine) == 1
    o = mine[0]
    assert o["serviceId"] == "" and o["operation"] == "pullout" and o["operatorId"] == "ops"
    assert abs(o["operationTime"] - time.time()) < 600  # seconds
    st, _, b = node.get(M + "zone/%s/is-down" % zone)
    assert st == 200 and b["data"] is True
    st, _, b = node.get(M + "zone/%s" % zone)
    assert b["data"]["isDown"] is True and b["data"]["instanceCount"] == 2
    assert b["data"]["downInstanceCount"] == 2
    st, _, b = node.get(M + "zone")
    assert zone in [z["zoneId"] for z in b["data"]]
    st, _, b = node.get(M + "zone/%s/instances" % zone)
    assert sorted((i["instanceId"], i["status"]) for i in b["data"]) == [("z1", "down"),
                                                                          ("z2", "down")]
    # DELETE = pull-in.
    st, _, b = node.request("DELETE", M + "zone/%s/%s?operatorId=ops" % (zone, REGION))
    assert st == 200 and b["success"] is True, b
    assert node.get(M + "zone/%s/is-down" % zone)[2]["data"] is False
    # PUT status.
    st, _, b = node.request("PUT", M + "zone/%s/status" % zone,
                            b'{"status":"down","operatorId":"ops"}',
                            {"Content-Type": "application/json"})
    assert st == 200 and b["success"], b
    assert node.get(M + "zone/%s/is-down" % zone)[2]["data"] is True
    st, _, b = node.request("PUT", M + "zone/%s/status" % zone,
                            b'{"status":"up","operatorId":"ops"}',
                            {"Content-Type": "application/json"})
    assert st == 200 and node.get(M + "zone/%s/is-down" % zone)[2]["data"] is False
    st, _, b = node.request("PUT", M + "zone/%s/status" % zone, b'{"status":"sideways"}',
                            {"Content-Type": "application/json"})
    assert st == 400 and b["success"] is False
    # Batches, one write.
    z2 = uniq("z")
    b = rust_post(node, "zone/batch-pull-out",
                  {"zones": [{"zoneId": zone}, {"zoneId": z2, "regionId": REGION}],
                   "operatorId": "ops"})
    assert b["success"]
    assert node.get(M + "zone/%s/is-down" % z2)[2]["data"] is True
    b = rust_post(node, "zone/batch-pull-in", {"zoneIds": [zone, z2], "operatorId": "ops"})
    assert b["success"]
    assert node.get(M + "zone/%s/is-down" % zone)[2]["data"] is False
    st, _, b = node.get(M + "zone/" + uniq("nowhere"))
    assert st == 404 and b["success"] is False
    b = rust_post(node, "zone/pull-out", {"operatorId": "ops"}, expect=400)
    assert "zoneId" in b["message"]
    # Without operatorId the caller's name stands in (MANAGEMENT.md §6).
    rust_post(node, "zone/pull-out", {"zoneId": zone})
    assert node.get(M + "zone/status/%s/%s" % (zone, REGION))[2]["data"]["operatorId"] == "admin"
    st, h, b = node.request("GET", M + "zone/pull-out")
    assert st == 405


# ----------------------------------------------------------------- audit ---

def test_audit_calls(node):
    svc = uniq()
    who = uniq("auditor")
    t0 = int(time.time() * 1000)
    rust_instance(node, svc, "i1", "pullout", operator=who)
    rust_instance(node, svc, "i1", "pullin", operator=who)
    rust_server(node, "10.55.0.1", "pullout", operator=who)
    rust_server(node, "10.55.0.1", "pullin", operator=who)
    st, _, b = node.get(M + "audit/logs?operatorId=" + who)
    assert st == 200 and b["success"]
    recs = b["data"]
    assert [r["operationType"] for r in recs] == ["server", "server", "instance", "instance"]
    ids = [r["logId"] for r in recs]
    assert ids == sorted(ids, reverse=True)  # newest first
    r = recs[-1]
    assert r["targetId"] == "%s/%s/i1" % (REGION, svc) == r["resourceId"]
    assert r["operation"] == "pullout" and r["action"] == "insert" and r["result"] == "SUCCESS"
    assert r["id"] == r["logId"] and r["resourceType"] == "instance"
    assert r["details"]["before"] is None and r["details"]["after"]["operatorId"] == who
    assert r["timestamp"].endswith("Z") and abs(r["operationTime"] * 1000 - t0) < 600000
    assert recs[2]["details"]["before"]["operation"] == "pullout"
    assert recs[2]["details"]["after"] is None
    # Filters, snake case, paging, time ranges (ISO and epoch).
    b = node.get(M + "audit/logs?operation_type=instance&operator_id=%s&limit=1&offset=1" % who)[2]
    assert [x["logId"] for x in b["data"]] == [ids[3]]
    b = node.get(M + "audit/logs?resourceType=server&operatorId=" + who)[2]
    assert len(b["data"]) == 2
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 / 1000 - 3600))
    b = node.get(M + "audit/logs?operatorId=%s&startTime=%s&endTime=%d" % (who, iso, t0 + 600000))[2]
    assert len(b["data"]) == 4
    b = node.get(M + "audit/logs?operatorId=%s&from=%d" % (who, (t0 + 600000) // 1000))[2]
    assert b["data"] == []
    b = node.get(M + "audit/logs?targetId=%s/10.55.0.1&operatorId=%s" % (REGION, who))[2]
    assert len(b["data"]) == 2
    b = node.get(M + "audit/instance-logs?serviceId=%s&instanceId=i1" % svc)[2]
    assert len(b["data"]) == 2
    b = node.get(M + "audit/server-logs?serverId=10.55.0.1&operatorId=" + who)[2]
    assert len(b["data"]) == 2
    st, _, b = node.get(M + "audit/logs?from=yesterday")
    assert st == 400 and "from" in b["message"]
    st, _, b = node.get(M + "audit/logs?limit=lots")
    assert st == 400
    # One record.
    st, _, b = node.get(M + "audit/logs/%d" % ids[0])
    assert st == 200 and b["data"]["logId"] == ids[0]
    st, _, b = node.get(M + "audit/logs/999999999")
    assert st == 404 and b["success"] is False
    st, _, b = node.get(M + "audit/logs/abc")
    assert st == 400
    # Export.
    st, h, raw = node.request_raw("GET", M + "audit/logs/export?format=csv&operatorId=" + who)
    assert st == 200 and h["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(raw.decode())))
    assert rows[0][:3] == ["logId", "timestamp", "operationType"] and len(rows) == 5
    assert rows[1][0] == str(ids[0])
    st, _, b = node.get(M + "audit/logs/export?format=json&operatorId=" + who)
    assert st == 200 and [x["logId"] for x in b] == ids
    st, _, b = node.get(M + "audit/logs/export?format=xml")
    assert st == 400
    # Stats.
    b = node.get(M + "audit/logs/stats?operatorId=" + who)[2]["data"]
    assert b["total"] == 4 and b["byOperationType"] == {"instance": 2, "server": 2}
    assert b["byOperator"] == {who: 4} and b["byResult"] == {"SUCCESS": 4}
    assert b["oldestTime"] <= b["newestTime"]


def test_audit_cleanup(fresh_node):
    n = fresh_node
    n.login()
    rust_instance(n, "svc", "i1", "pullout", operator="old")
    st, _, b = n.request("DELETE", M + "audit/logs/cleanup?operatorId=admin")
    assert st == 400 and "before" in b["message"]
    cut = int(time.time() * 1000) + 1000
    st, _, b = n.request("DELETE", M + "audit/logs/cleanup?before=%d&operatorId=admin" % cut)
    # The operation's record and the first admin's creation.
    assert st == 200 and b["data"]["deleted"] == 2, b
    recs = n.get(M + "audit/logs")[2]["data"]
    assert [(r["operationType"], r["operation"], r["operatorId"], r["username"])
            for r in recs] == [("audit", "cleanup", "admin", "admin")]
    assert recs[0]["details"]["deleted"] == 2
    # The operation itself is still in force: only the trail was cleaned.
    b = n.api(M + "all-instance-operations.json", {})
    assert len(b["allInstanceOperations"]) == 1


# ------------------------------------------------------------ /api prefix ---

def test_every_artemis_path_under_api(node, node_factory):
    svc = uniq()
    register(node, inst(svc, "i1"))
    for path, body in (("status/node.json", {}), ("status/cluster.json", {}),
                       ("status/leases.json", {}), ("status/legacy-leases.json", {}),
                       ("status/config.json", {}), ("status/deployment.json", {}),
                       ("cluster/up-registry-nodes.json", {"regionId": REGION, "zoneId": ZONE}),
                       ("cluster/up-discovery-nodes.json", {"regionId": REGION, "zoneId": ZONE}),
                       ("replication/registry/services.json", {"regionId": REGION}),
                       ("discovery/services.json", {}),
                       ("discovery/services-delta.json", {"version": 1})):
        a = node.api("/artemis/api/" + path, body)
        b = node.api("/api/" + path, body)
        rs = b["responseStatus"]
        assert rs["errorMessage"] == rs["message"] == a["responseStatus"]["message"], path
        assert "errorMessage" not in a["responseStatus"], path
    st, _, b = node.get("/api/status/websocket/connection.json")
    assert st == 200 and "registry" in b
    b = node.api("/api/status/cluster.json", {})
    nodes = [s["node"] for s in b["nodesStatus"]]
    assert nodes and all(x["nodeId"] == node.name and x["regionId"] == REGION and
                         x["zoneId"] == ZONE and x["zone"]["zoneId"] == ZONE for x in nodes)
    b = node.api("/api/cluster/up-discovery-nodes.json", {"regionId": REGION, "zoneId": ZONE})
    assert b["nodes"][0]["nodeId"] == node.name
    # The Java replication writes answer only [cluster] java_peers.
    jp = node_factory(cluster={"java_peers": "127.0.0.1"})
    b = jp.api("/api/replication/registry/register.json", {"instances": [inst(svc, "r1")]})
    assert b["responseStatus"]["errorMessage"] == ""
    # A failure carries its message under both names.
    b = node.api("/api/discovery/lookup.json", {"discoveryConfigs": []})
    assert b["responseStatus"]["errorCode"] == "bad-request"
    assert b["responseStatus"]["errorMessage"] == b["responseStatus"]["message"] != ""


def test_api_services_json_lists_down_instances(node):
    svc = uniq()
    register(node, inst(svc, "up1"), inst(svc, "down1"))
    rust_instance(node, svc, "down1", "pullout")
    b = node.api("/api/discovery/services.json", {})
    assert_status(b, SUCCESS)
    mine = [s for s in b["services"] if s["serviceId"] == svc][0]
    assert sorted(i["instanceId"] for i in mine["instances"]) == ["down1", "up1"]
    b = node.api("/artemis/api/discovery/services.json", {})
    mine = [s for s in b["services"] if s["serviceId"] == svc][0]
    assert [i["instanceId"] for i in mine["instances"]] == ["up1"]


# --------------------------------------------------- /ws cluster events ---

def test_ws_cluster_node_events(tmp_path):
    import json
    websocket = pytest.importorskip("websocket")
    from cluster_util import Cluster
    from test_mgmt_filter import Events
    from test_websocket import ws_connect
    c = Cluster(str(tmp_path), 2).start()
    try:
        a, b = c[0], c[1]
        ws = ws_connect(a, "/ws")
        e = Events(ws)
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv()) == {"type": "pong"}  # attached

        def b_up():
            st = a.api("/artemis/api/status/cluster.json", {})["nodesStatus"]
            return [s for s in st if s["node"]["url"] == b.base and s["status"] == "up"]

        wait_for(b_up, 15.0, what="node a to see node b up")
        b.kill_all()
        m = e.wait(lambda m: m.get("event") == "cluster.node_removed", timeout=15.0)
        assert m["data"]["nodeId"] == b.name and m["data"]["url"] == b.base
        b.fresh = False
        b.start()
        m = e.wait(lambda m: m.get("event") == "cluster.node_added", timeout=15.0)
        assert m["data"]["nodeId"] == b.name and m["data"]["status"] == "up"
        ws.close()
    finally:
        c.finish()


def test_zone_pull_in_with_the_direction_word(node):
    """`pullin` names the direction on the Rust paths (MANAGEMENT.md §2): a
    pull-in (one zone or a batch) that says so ends the pull-out."""
    zone, other = uniq("z"), uniq("z")
    rust_zone(node, zone, out=True, operator="ops")
    rust_post(node, "zone/batch-pull-out", {"zones": [{"zoneId": other, "regionId": REGION}],
                                            "operatorId": "ops"})
    assert node.get(M + "zone/%s/is-down" % zone)[2]["data"] is True
    assert node.get(M + "zone/%s/is-down" % other)[2]["data"] is True
    res = rust_post(node, "zone/pull-in", {"zoneId": zone, "regionId": REGION,
                                           "operation": "pullin", "operatorId": "ops"})
    assert res["success"] is True, res
    res = rust_post(node, "zone/batch-pull-in", {"zones": [{"zoneId": other, "regionId": REGION}],
                                                 "operation": "pullin", "operatorId": "ops"})
    assert res["success"] is True, res
    assert node.get(M + "zone/%s/is-down" % zone)[2]["data"] is False
    assert node.get(M + "zone/%s/is-down" % other)[2]["data"] is False

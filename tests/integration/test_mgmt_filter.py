"""
test_mgmt_filter.py - the down filter (MANAGEMENT.md §2): each kind of
operation, through each surface, hides instances from every discovery path
on every worker as soon as the write returns, and shows them again when it
is removed; the management views mark them "down"; POST
/api/discovery/services.json still lists them; and the pushes each change
causes (Java's instance-change socket, the subscribe alias, /ws).
"""

import json

import pytest

from artemis_it import REGION, ZONE, SUCCESS, assert_status, inst, register, uniq, wait_for
from mgmt_util import (M, assert_everywhere, java_instance, java_server, java_zone,
                       mgmt_statuses, rust_instance, rust_server, rust_zone)

websocket = pytest.importorskip("websocket")
from test_websocket import first_push, is_change, recv_change, ws_connect  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _logged_in(node):
    """Management calls need a token (MANAGEMENT.md §6): the tests speak as admin."""
    node.login()


def three(svc, zone2="zone-2"):
    return [inst(svc, "a", ip="10.1.0.1"), inst(svc, "b", ip="10.1.0.2"),
            inst(svc, "c", ip="10.1.0.3", zoneId=zone2)]


def test_instance_operation_java_hides_and_shows_everywhere(node):
    svc = uniq()
    register(node, *three(svc))
    assert_everywhere(node, svc, ["a", "b", "c"])  # warms both workers' caches
    java_instance(node, svc, "a")
    assert_everywhere(node, svc, ["b", "c"])
    assert mgmt_statuses(node, svc) == {"a": "down", "b": "up", "c": "up"}
    # The Rust services.json lists it, with its registered status.
    b = node.api("/api/discovery/services.json", {})
    listed = [s for s in b["services"] if s["serviceId"] == svc][0]["instances"]
    assert sorted(i["instanceId"] for i in listed) == ["a", "b", "c"]
    assert {i["status"] for i in listed} == {"up"}
    java_instance(node, svc, "a", complete=True)
    assert_everywhere(node, svc, ["a", "b", "c"])
    assert mgmt_statuses(node, svc) == {"a": "up", "b": "up", "c": "up"}


def test_instance_key_is_case_insensitive_and_any_operation_counts(node):
    svc = uniq("Svc")
    register(node, *three(svc))
    java_instance(node, svc.upper(), "A", operation="maintenance", region=REGION.upper())
    java_instance(node, svc, "a", operation="pullout")
    assert_everywhere(node, svc, ["b", "c"])
    java_instance(node, svc, "a", operation="pullout", complete=True)
    assert_everywhere(node, svc, ["b", "c"])  # "maintenance" is still in force
    java_instance(node, svc, "a", operation="MAINTENANCE", complete=True)
    assert_everywhere(node, svc, ["a", "b", "c"])


def test_instance_operation_rust_pullout_pullin(node):
    svc = uniq()
    register(node, *three(svc))
    rust_instance(node, svc, "b", "pullout")
    assert_everywhere(node, svc, ["a", "c"])
    rust_instance(node, svc, "b", "pullin", operationComplete=True)
    assert_everywhere(node, svc, ["a", "b", "c"])


def test_server_operation_hides_every_instance_on_the_ip(node):
    s1, s2 = uniq(), uniq()
    register(node, inst(s1, "x", ip="10.9.9.9"), inst(s1, "y", ip="10.9.9.8"),
             inst(s2, "z", ip="10.9.9.9"))
    assert_everywhere(node, s1, ["x", "y"])
    assert_everywhere(node, s2, ["z"])
    java_server(node, "10.9.9.9")
    assert_everywhere(node, s1, ["y"])
    assert_everywhere(node, s2, [])
    java_server(node, "10.9.9.9", complete=True)
    assert_everywhere(node, s1, ["x", "y"])
    rust_server(node, "10.9.9.8", "pullout")
    assert_everywhere(node, s1, ["x"])
    rust_server(node, "10.9.9.8", "pullin")
    assert_everywhere(node, s1, ["x", "y"])
    assert_everywhere(node, s2, ["z"])


def test_zone_operation_of_every_service_and_of_one(node):
    s1, s2 = uniq(), uniq()
    zone = uniq("zone")
    register(node, inst(s1, "p", zoneId=zone), inst(s1, "q"), inst(s2, "r", zoneId=zone))
    assert_everywhere(node, s1, ["p", "q"])
    assert_everywhere(node, s2, ["r"])
    rust_zone(node, zone, out=True)  # every service of the zone
    assert_everywhere(node, s1, ["q"])
    assert_everywhere(node, s2, [])
    rust_zone(node, zone, out=False)
    assert_everywhere(node, s1, ["p", "q"])
    java_zone(node, zone, service=s2)  # one service of the zone
    assert_everywhere(node, s1, ["p", "q"])
    assert_everywhere(node, s2, [])
    assert mgmt_statuses(node, s2) == {"r": "down"}
    java_zone(node, zone, service=s2, complete=True)
    assert_everywhere(node, s2, ["r"])


def test_operation_before_registration_hides_it_when_it_comes(node):
    svc = uniq()
    register(node, inst(svc, "old"))
    java_instance(node, svc, "early")
    register(node, inst(svc, "early"))
    assert_everywhere(node, svc, ["old"])
    assert mgmt_statuses(node, svc) == {"early": "down", "old": "up"}


def test_service_with_every_instance_down(node):
    svc = uniq()
    register(node, inst(svc, "only"))
    java_instance(node, svc, "only")
    b = node.api("/artemis/api/discovery/service.json", {
        "regionId": REGION, "zoneId": ZONE, "discoveryConfig": {"serviceId": svc}})
    assert b["service"]["instances"] == []
    b = node.api("/artemis/api/discovery/services.json", {})
    assert svc not in [s["serviceId"] for s in b["services"]]


# ---------------------------------------------------------------- pushes ---

def subscribe(node, svc, path="/artemis/websocket/discovery/instance-change"):
    ws = ws_connect(node, path)
    if path.endswith("instance-change"):
        ws.send(json.dumps({"serviceId": svc, "regionId": REGION, "zoneId": ZONE}))
    first_push(node, ws, inst(svc, "probe"), "the subscription to %s" % svc,
               is_change(svc, "probe", "new"))
    return ws


@pytest.mark.parametrize("path", ["/artemis/websocket/discovery/instance-change",
                                  "/api/v1/discovery/subscribe/{svc}"])
def test_pushes_delete_on_pull_out_and_new_on_pull_in(node, path):
    svc = uniq()
    register(node, inst(svc, "a", ip="10.2.0.1"), inst(svc, "b", ip="10.2.0.2"))
    ws = subscribe(node, svc, path.replace("{svc}", svc))
    try:
        java_instance(node, svc, "a")
        m = recv_change(ws, is_change(svc, "a", "delete"))
        assert m["instance"]["ip"] == "10.2.0.1"
        rust_instance(node, svc, "a", "pullin")
        recv_change(ws, is_change(svc, "a", "new"))
        java_server(node, "10.2.0.2")
        recv_change(ws, is_change(svc, "b", "delete"))
        java_server(node, "10.2.0.2", complete=True)
        recv_change(ws, is_change(svc, "b", "new"))
        # A zone change: one reload marker for the service.
        rust_zone(node, ZONE, out=True, service=svc)
        m = recv_change(ws, lambda m: m["changeType"] == "reload")
        assert m["instance"]["instanceId"] == "reload" and m["instance"]["serviceId"] == svc
        rust_zone(node, ZONE, out=False, service=svc)
        recv_change(ws, lambda m: m["changeType"] == "reload")
    finally:
        ws.close()


def test_no_new_is_pushed_for_a_down_instance(node):
    svc = uniq()
    ws = subscribe(node, svc)
    try:
        java_instance(node, svc, "hidden")
        register(node, inst(svc, "hidden"))
        register(node, inst(svc, "visible"))
        first = recv_change(ws, lambda m: m["changeType"] == "new")
        assert first["instance"]["instanceId"] == "visible", first
    finally:
        ws.close()


class Events:
    """The /ws messages of one session; wait() finds a matching one among
    those read already or the next ones (events of one change may arrive in
    any order relative to another's)."""

    def __init__(self, ws):
        self.ws = ws
        self.seen = []
        self.used = set()

    def wait(self, pred, timeout=5.0):
        def one():
            for i, m in enumerate(self.seen):
                if i not in self.used and pred(m):
                    self.used.add(i)
                    return m
            self.ws.settimeout(0.5)
            try:
                self.seen.append(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                pass
            return None

        try:
            return wait_for(one, timeout, interval=0, what="a matching /ws event")
        except AssertionError as e:
            raise AssertionError("%s; seen %r" % (e, self.seen[-5:]))


def ev(name, svc, iid=None):
    def pred(m):
        d = m.get("data") or {}
        if m.get("event") != name or d.get("serviceId") != svc:
            return False
        return iid is None or (d.get("instance") or {}).get("instanceId") == iid
    return pred


def test_ws_events(node):
    svc = uniq()
    ws = ws_connect(node, "/ws")
    e = Events(ws)
    try:
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv()) == {"type": "pong"}
        # The session is attached once it answered: events from now on.
        register(node, inst(svc, "a", ip="10.3.0.1"), inst(svc, "b", ip="10.3.0.2"))
        m = e.wait(ev("service.registered", svc))
        assert set(m) == {"event", "data", "timestamp"} and isinstance(m["timestamp"], int)
        e.wait(ev("instance.registered", svc, "a"))
        e.wait(ev("instance.registered", svc, "b"))
        java_instance(node, svc, "a")
        m = e.wait(ev("instance.status_changed", svc, "a"))
        assert m["data"]["status"] == "down"
        rust_server(node, "10.3.0.1", "pullout")  # a is down already: no change
        rust_server(node, "10.3.0.2", "pullout")
        m = e.wait(ev("instance.status_changed", svc, "b"))
        assert m["data"]["status"] == "down"
        rust_server(node, "10.3.0.2", "pullin")
        m = e.wait(ev("instance.status_changed", svc, "b"))
        assert m["data"]["status"] == "up"
        rust_zone(node, ZONE, out=True, service=svc)
        m = e.wait(ev("instance.status_changed", svc, "b"))
        assert m["data"]["status"] == "down"
        rust_zone(node, ZONE, out=False, service=svc)
        m = e.wait(ev("instance.status_changed", svc, "b"))
        assert m["data"]["status"] == "up"
        node.api("/artemis/api/registry/unregister.json",
                 {"instances": [inst(svc, "a"), inst(svc, "b")]})
        e.wait(ev("instance.unregistered", svc, "a"))
        e.wait(ev("instance.unregistered", svc, "b"))
        e.wait(ev("service.unregistered", svc))
    finally:
        ws.close()


def test_management_writes_answer_at_once_without_a_sleep(node):
    """Java sleeps 2 s in every write; these answer when the change is in
    force on every worker (measured in bench/, asserted here only as
    'visible right after the answer')."""
    svc = uniq()
    register(node, inst(svc, "a"), inst(svc, "b"))
    assert_everywhere(node, svc, ["a", "b"])
    for _ in range(3):
        java_instance(node, svc, "a")
        assert_everywhere(node, svc, ["b"])
        java_instance(node, svc, "a", complete=True)
        assert_everywhere(node, svc, ["a", "b"])
    b = node.api(M + "all-instance-operations.json", {"regionId": REGION})
    assert_status(b, SUCCESS)

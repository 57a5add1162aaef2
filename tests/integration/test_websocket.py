"""
test_websocket.py - API.md §3 WebSocket endpoints (registry heartbeat,
per-service instance-change, all-instance-change), ping/pong, binary frames,
the §A subscribe alias, the 1.x paths (§8 trap 3) and
status/websocket/connection.json (§2.5).
Uses python3-websocket (websocket-client).
"""

import json
import struct

import pytest

websocket = pytest.importorskip("websocket")

from artemis_it import (NOT_EXISTING, PARTIAL_FAIL, SUCCESS, assert_ok, assert_status,  # noqa: E402
                        failed_by_id, inst, register, to_string, uniq, unregister, wait_for)

HB = "/artemis/websocket/registry/heartbeat"
CHANGE = "/artemis/websocket/discovery/instance-change"
ALL = "/artemis/websocket/discovery/all-instance-change"


def ws_connect(node, path, timeout=5.0):
    return websocket.create_connection("ws://%s:%d%s" % (node.host, node.port, path),
                                       timeout=timeout)


def recv_json(ws):
    return json.loads(ws.recv())


def recv_change(ws, pred, timeout=5.0):
    """Read pushed InstanceChanges until one satisfies pred (others are
    skipped: ordering across changes is not guaranteed)."""
    seen = []

    def one():
        ws.settimeout(0.5)
        try:
            msg = json.loads(ws.recv())
        except websocket.WebSocketTimeoutException:
            return None
        seen.append(msg)
        return msg if pred(msg) else None

    return wait_for(one, timeout, interval=0, what="a matching push (seen %r)" % seen[-5:])


def first_push(node, ws, instance, what, pred=None):
    """Register `instance` until the session pushes a message (that satisfies
    pred, when given) and return it: a subscription has no ack, so the first
    registers may come before it is in place."""
    def pushed():
        register(node, instance)
        ws.settimeout(0.3)
        try:
            msg = json.loads(ws.recv())
        except websocket.WebSocketTimeoutException:
            return None
        return msg if pred is None or pred(msg) else None

    return wait_for(pushed, 5.0, interval=0, what=what)


def is_change(svc, iid, ctype):
    return lambda m: (m.get("changeType") == ctype and m.get("instance", {}).get("serviceId") == svc
                      and m["instance"].get("instanceId") == iid)


# ---------------------------------------------------- registry heartbeat ---

def test_ws_heartbeat_unknown_then_known(node):
    svc = uniq()
    i = inst(svc, "i1")
    ws = ws_connect(node, HB)
    try:
        ws.send(json.dumps({"instances": [i]}))
        body = recv_json(ws)
        assert_status(body, PARTIAL_FAIL)
        f = failed_by_id(body)["i1"]
        assert f["errorCode"] == "data-not-found"
        assert f["errorMessage"] == "%s: %s" % (to_string(i), NOT_EXISTING)
        register(node, i)
        ws.send(json.dumps({"instances": [i]}))
        assert_ok(recv_json(ws))
    finally:
        ws.close()


def test_ws_heartbeat_one_response_per_message(node):
    svc = uniq()
    known = [inst(svc, "k%d" % k) for k in range(3)]
    register(node, *known)
    ws = ws_connect(node, HB)
    try:
        for _ in range(5):
            ws.send(json.dumps({"instances": known + [inst(svc, "unknown")]}))
        for _ in range(5):
            body = recv_json(ws)
            assert list(failed_by_id(body)) == ["unknown"], body
    finally:
        ws.close()


def test_ws_heartbeat_garbage_gets_generic_success(node):
    ws = ws_connect(node, HB)
    try:
        ws.send("this is not json")
        assert recv_json(ws) == {"failedInstances": None, "responseStatus": SUCCESS}
        # the session survives
        ws.send(json.dumps({"instances": [inst(uniq(), "x")]}))
        assert failed_by_id(recv_json(ws))["x"]["errorCode"] == "data-not-found"
    finally:
        ws.close()


def test_ws_ping_pong(node):
    ws = ws_connect(node, HB, timeout=1.0)
    try:
        ws.ping(b"artemis")
        opcode, frame = ws.recv_data_frame(True)
        assert opcode == websocket.ABNF.OPCODE_PONG, opcode
        assert frame.data == b"artemis"
    finally:
        ws.close()


def test_ws_binary_frame_closes_1003(node):
    ws = ws_connect(node, HB)
    try:
        ws.send_binary(b"\x00\x01")
        opcode, frame = ws.recv_data_frame(True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE, opcode
        assert struct.unpack("!H", frame.data[:2])[0] == 1003, frame.data
    finally:
        ws.close()


# ------------------------------------------------------------------ push ---

def test_instance_change_new_and_delete(node):
    svc = uniq("Push")
    ws = ws_connect(node, CHANGE)
    try:
        ws.send(json.dumps({"serviceId": svc, "regionId": "us-east", "zoneId": "zone-1"}))
        i = inst(svc, "i1", metadata={"k": "v"})
        msg = first_push(node, ws, i, "a push after subscribing")
        assert msg["changeType"] == "new", msg
        assert isinstance(msg["changeTime"], int), msg
        assert msg["instance"]["serviceId"] == svc and msg["instance"]["instanceId"] == "i1"
        assert msg["instance"]["metadata"] == {"k": "v"}
        unregister(node, i)
        recv_change(ws, is_change(svc, "i1", "delete"))
    finally:
        ws.close()


def test_register_always_pushes_new(node):
    svc = uniq()
    i = inst(svc, "i1")
    ws = ws_connect(node, ALL)
    try:
        first_push(node, ws, i, "the all-instance-change session to be live",
                   is_change(svc, "i1", "new"))
        register(node, i)  # identical re-register: still a `new`
        recv_change(ws, is_change(svc, "i1", "new"))
    finally:
        ws.close()


def test_all_instance_change_sees_every_service(node):
    a, b = uniq("a"), uniq("b")
    ws = ws_connect(node, ALL)
    try:
        first_push(node, ws, inst(a, "a1"), "all-instance-change to push",
                   is_change(a, "a1", "new"))
        register(node, inst(b, "b1"))
        recv_change(ws, is_change(b, "b1", "new"))
    finally:
        ws.close()


def test_subscribe_alias(node):
    svc = uniq()
    ws = ws_connect(node, "/api/v1/discovery/subscribe/%s" % svc)
    try:
        msg = first_push(node, ws, inst(svc, "i1"), "a push on the subscribe alias")
        assert msg["changeType"] == "new" and msg["instance"]["serviceId"] == svc, msg
    finally:
        ws.close()


def test_1x_paths(node):
    """API.md §8 trap 3: the 1.x WebSocket paths answer as the 2.x ones."""
    svc = uniq()
    i = inst(svc, "i1")
    register(node, i)
    hb = ws_connect(node, "/ws/registry/heartbeat")
    change = ws_connect(node, "/ws/discovery/instance-change")
    every = ws_connect(node, "/ws/discovery/all-instance-change")
    try:
        hb.send(json.dumps({"instances": [i]}))
        assert_ok(recv_json(hb))
        change.send(json.dumps({"serviceId": svc, "regionId": "us-east", "zoneId": "zone-1"}))
        msg = first_push(node, change, i, "a push on /ws/discovery/instance-change")
        assert msg["changeType"] == "new" and msg["instance"]["serviceId"] == svc, msg
        recv_change(every, lambda m: m.get("instance", {}).get("serviceId") == svc)
    finally:
        for ws in (hb, change, every):
            ws.close()


# --------------------------------------------------------------- status ---

def test_connection_counts(fresh_node):
    n = fresh_node
    path = "/artemis/api/status/websocket/connection.json"
    socks = [ws_connect(n, HB), ws_connect(n, HB), ws_connect(n, CHANGE), ws_connect(n, ALL)]
    try:
        def counts():
            st, _, body = n.get(path)
            assert st == 200, (st, body)
            return body if body == {"registry": "2", "discovery": "1"} else None

        wait_for(counts, 5.0, what='{"registry":"2","discovery":"1"} (strings; all-instance-'
                                   'change not counted)')
    finally:
        for ws in socks:
            ws.close()

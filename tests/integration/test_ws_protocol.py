"""
test_ws_protocol.py - the WebSocket server's protocol rules and limits
(issue 4): handshake (version 13 else 426, key, accept value), masking,
fragmentation, ping/pong, the close handshake, max_message_bytes (1009),
UTF-8 (1007), binary (1003), the output limit (1008), the session TTL,
reload (1001 and reconnect), the 8 KB cap of messages to clients, change
push details (exact case, peers, log overrun) and connection.json counts.
Raw sockets (ws_util.RawWS) for what a client library will not send.
A route that is missing (an endpoint answering 404) fails a test; nothing
here is skipped.
"""

import json
import signal
import struct
import time

from artemis_it import (NOT_EXISTING, PARTIAL_FAIL, REGION, SUCCESS, ZONE, assert_ok,  # noqa: F401
                        assert_status, child_pids, failed_by_id, inst, instance_ids, register,
                        uniq, unregister, wait_for)
from cluster_util import Cluster
from ws_util import (ALL, CHANGE, HB, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RawWS,
                     frame)

CONN = "/artemis/api/status/websocket/connection.json"


def ws_section(**kv):
    def prepare(node):
        node.sections.setdefault("websocket", {}).update({k: str(v) for k, v in kv.items()})
    return prepare


def subscribe_until_live(node, ws, svc, iid="probe"):
    """Subscriptions have no ack: register until a push arrives."""
    ws.send_text(json.dumps({"serviceId": svc, "regionId": "us-east"}))

    def pushed():
        register(node, inst(svc, iid))
        try:
            return ws.recv_json(timeout=0.3)
        except OSError:
            return None
    return wait_for(pushed, 5.0, interval=0, what="push after subscribing to %s" % svc)


def recv_until(ws, pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            msg = ws.recv_json(timeout=max(0.1, deadline - time.monotonic()))
        except OSError:
            continue
        seen.append(msg)
        if pred(msg):
            return msg
    raise AssertionError("no matching push; seen %r" % seen[-5:])


# ------------------------------------------------------------ handshake ---

def test_handshake_accept_value_rfc_example(node):
    ws = RawWS(node, HB, key="dGhlIHNhbXBsZSBub25jZQ==")
    assert ws.headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert ws.headers["upgrade"].lower() == "websocket"
    ws.close()


def test_handshake_wrong_version_is_426(node):
    ws = RawWS(node, HB, version="8", expect_status=426)
    assert ws.headers.get("sec-websocket-version") == "13", ws.headers
    ws.expect_eof()
    ws.close()


def test_handshake_bad_key_is_400(node):
    ws = RawWS(node, HB, key="short", expect_status=400)
    ws.close()


def test_unknown_websocket_path_is_404(node):
    ws = RawWS(node, "/artemis/websocket/nothing", expect_status=404)
    ws.close()


def test_frames_right_after_the_handshake_are_read(node):
    """Bytes sent together with the upgrade request belong to the session."""
    ws = RawWS(node, HB, preamble=frame(OP_PING, b"early"))
    fin, op, payload = ws.recv_frame()
    assert (op, payload) == (OP_PONG, b"early")
    ws.close()


# ------------------------------------------------------------- framing ---

def test_unmasked_frame_closes_1002(node):
    ws = RawWS(node, HB)
    ws.send(frame(OP_TEXT, "{}", mask=False))
    ws.expect_close(1002)
    ws.close()


def test_reserved_bits_and_unknown_opcode_close_1002(node):
    for data in (frame(OP_TEXT, "{}", rsv=4), frame(0x3, b"x"), frame(OP_CONT, b"x")):
        ws = RawWS(node, HB)
        ws.send(data)
        ws.expect_close(1002)
        ws.close()


def test_fragmented_message_with_ping_between(node):
    svc = uniq()
    body = json.dumps({"instances": [inst(svc, "frag")]})
    a, b, c = body[:10], body[10:30], body[30:]
    ws = RawWS(node, HB)
    ws.send(frame(OP_TEXT, a, fin=False))
    ws.send(frame(OP_CONT, b, fin=False))
    ws.send(frame(OP_PING, b"mid"))
    fin, op, payload = ws.recv_frame()
    assert (op, payload) == (OP_PONG, b"mid")
    ws.send(frame(OP_CONT, c, fin=True))
    resp = ws.recv_json()
    assert failed_by_id(resp)["frag"]["errorCode"] == "data-not-found"
    ws.close()


def test_utf8_split_across_fragments_is_fine(node):
    """A code point cut between two fragments is valid once reassembled."""
    text = json.dumps({"instances": [inst(uniq("é"), "ü")]}, ensure_ascii=False).encode()
    cut = text.index("é".encode()) + 1
    ws = RawWS(node, HB)
    ws.send(frame(OP_TEXT, text[:cut], fin=False))
    ws.send(frame(OP_CONT, text[cut:], fin=True))
    assert failed_by_id(ws.recv_json())["ü"]["errorCode"] == "data-not-found"
    ws.close()


def test_bad_utf8_closes_1007(node):
    ws = RawWS(node, HB)
    ws.send(frame(OP_TEXT, b'{"instances":"\xc3\x28"}'))
    ws.expect_close(1007)
    ws.close()


def test_ping_answered_within_one_second(node):
    ws = RawWS(node, CHANGE)
    for i in range(5):
        t0 = time.monotonic()
        ws.send(frame(OP_PING, b"p%d" % i))
        fin, op, payload = ws.recv_frame(timeout=1.0)
        assert (op, payload) == (OP_PONG, b"p%d" % i)
        assert time.monotonic() - t0 < 1.0
    ws.close()


def test_client_close_is_echoed_and_socket_closed(node):
    ws = RawWS(node, HB)
    ws.send(frame(OP_CLOSE, struct.pack("!H", 1000) + b"bye"))
    ws.expect_close(1000)
    ws.expect_eof()
    ws.close()


def test_binary_closes_1003_raw(node):
    ws = RawWS(node, ALL)
    ws.send(frame(0x2, b"\x00\x01"))
    ws.expect_close(1003)
    ws.close()


def test_message_too_big_closes_1009(node_factory):
    n = node_factory(prepare=ws_section(max_message_bytes=1024))
    ws = RawWS(n, HB)
    ws.send(frame(OP_TEXT, "x" * 1025))
    ws.expect_close(1009)
    ws.close()
    # the limit is on the reassembled message, not on each fragment
    ws = RawWS(n, HB)
    ws.send(frame(OP_TEXT, "x" * 600, fin=False))
    ws.send(frame(OP_CONT, "x" * 600, fin=True))
    ws.expect_close(1009)
    ws.close()
    # exactly the limit is fine (garbage: the generic success answer)
    ws = RawWS(n, HB)
    ws.send(frame(OP_TEXT, "x" * 1024))
    assert ws.recv_json() == {"failedInstances": None, "responseStatus": SUCCESS}
    ws.close()


# ------------------------------------------------------------ lifetimes ---

def test_session_ttl_is_a_fixed_lifetime(node_factory):
    """Closed session_ttl_ms after it was established, however busy."""
    n = node_factory(prepare=ws_section(session_ttl_ms=1500))
    t0 = time.monotonic()
    ws = RawWS(n, HB)
    while True:
        ws.send(frame(OP_PING, b"busy"))
        fin, op, payload = ws.recv_frame(timeout=5.0)
        if op == OP_CLOSE:
            assert struct.unpack("!H", payload[:2])[0] == 1000, payload
            break
        assert op == OP_PONG
        time.sleep(0.1)
    elapsed = time.monotonic() - t0
    assert 1.4 <= elapsed < 4.0, elapsed
    ws.send(frame(OP_CLOSE, struct.pack("!H", 1000)))
    ws.expect_eof()
    ws.close()


def test_slow_consumer_closed_1008_and_logged_once(node_factory):
    n = node_factory(prepare=ws_section(max_output_bytes=4096))
    ws = RawWS(n, ALL, rcvbuf=4096)
    svc = uniq("slow")
    big = {"blob": "b" * 6000}
    for batch in range(12):
        register(n, *[inst(svc, "i%d-%d" % (batch, k), metadata=big) for k in range(100)])
    # now read: pushes, then the close frame with 1008
    ws.expect_close(1008, timeout=20.0, skip_text=True)
    ws.close()
    lines = [ln for ln in n.read_log().splitlines() if "ws__slow_consumer:" in ln]
    assert len(lines) == 1, lines


def test_reload_closes_1001_and_clients_reconnect(node_factory):
    n = node_factory()
    # /health answers as soon as one worker serves: wait for both.
    old = wait_for(lambda: (lambda p: p if len(p) == 2 else None)(child_pids(n.pid, "worker")),
                   10.0, what="both workers")
    hb, sub = RawWS(n, HB), RawWS(n, CHANGE)
    n.send_signal(signal.SIGHUP)
    hb.expect_close(1001, timeout=10.0)
    sub.expect_close(1001, timeout=10.0)
    for ws in (hb, sub):
        ws.send(frame(OP_CLOSE, struct.pack("!H", 1001)))
        ws.expect_eof()
        ws.close()
    # the old workers exit once their sessions are gone
    wait_for(lambda: not set(old) & set(child_pids(n.pid, "worker")), 10.0,
             what="the old workers to exit")
    hb = RawWS(n, HB)
    svc = uniq()
    hb.send_text(json.dumps({"instances": [inst(svc, "again")]}))
    assert failed_by_id(hb.recv_json())["again"]["errorCode"] == "data-not-found"
    sub = RawWS(n, CHANGE)
    subscribe_until_live(n, sub, svc)
    hb.close()
    sub.close()


# ------------------------------------------------------- heartbeat cap ---

def test_heartbeat_response_fits_the_java_buffer(node):
    """Many failed instances: one response, at most 8 KB, data-not-found
    entries first (those drive registration), the status partial_fail."""
    svc = uniq()
    foreign = [inst(svc, "np%d" % k, region="elsewhere") for k in range(20)]
    unknown = [inst(svc, "nf%d" % k) for k in range(60)]
    ws = RawWS(node, HB)
    ws.send_text(json.dumps({"instances": foreign + unknown}))
    fin, op, payload = ws.recv_frame()
    assert op == OP_TEXT and len(payload) <= 8192, len(payload)
    body = json.loads(payload)
    assert_status(body, PARTIAL_FAIL)
    codes = [f["errorCode"] for f in body["failedInstances"]]
    assert 0 < len(codes) < 80
    assert set(codes) == {"data-not-found"}, codes
    # the client registers what it was told; the next heartbeat lists the rest
    register(node, *[f["instance"] for f in body["failedInstances"]])
    ws.send_text(json.dumps({"instances": foreign + unknown}))
    again = json.loads(ws.recv_frame()[2])
    listed = {f["instance"]["instanceId"] for f in again["failedInstances"]}
    first = {f["instance"]["instanceId"] for f in body["failedInstances"]}
    assert listed and not listed & first, (listed, first)
    ws.close()


def test_heartbeat_small_response_is_complete(node):
    svc = uniq()
    known = inst(svc, "k")
    register(node, known)
    ws = RawWS(node, HB)
    ws.send_text(json.dumps({"instances": [known, inst(svc, "u", region="other")]}))
    body = ws.recv_json()
    assert_status(body, PARTIAL_FAIL)
    assert failed_by_id(body)["u"]["errorCode"] == "no-permission"
    ws.send_text(json.dumps({"instances": []}))
    assert ws.recv_json()["responseStatus"]["errorCode"] == "bad-request"
    ws.close()


# ---------------------------------------------------------------- push ---

def test_push_larger_than_8k_becomes_reload(node):
    svc = uniq("Big")
    ws = RawWS(node, CHANGE)
    subscribe_until_live(node, ws, svc)
    register(node, inst(svc, "huge", metadata={"m": "x" * 7900}))
    msg = recv_until(ws, lambda m: m["changeType"] == "reload")
    i = msg["instance"]
    assert (i["serviceId"], i["instanceId"], i["ip"], i["port"], i["url"]) == \
        (svc, "reload", "0.0.0.0", 0, "http://%s/reload" % svc), msg
    assert i["regionId"] is None and i["metadata"] is None
    assert isinstance(msg["changeTime"], int)
    ws.close()


def test_subscription_is_exact_case(node):
    svc = uniq("CaseSvc")
    ws = RawWS(node, CHANGE)
    subscribe_until_live(node, ws, svc)
    register(node, inst(svc.lower(), "lower"))
    register(node, inst(svc, "exact"))
    msg = ws.recv_json()
    assert msg["instance"]["instanceId"] == "exact", msg
    ws.close()


def test_many_subscriptions_per_session_and_delete(node):
    a, b = uniq("a"), uniq("b")
    ws = RawWS(node, CHANGE)
    subscribe_until_live(node, ws, a)
    subscribe_until_live(node, ws, b)
    unregister(node, inst(b, "probe"))
    msg = recv_until(ws, lambda m: m["changeType"] == "delete")
    assert msg["instance"]["serviceId"] == b and msg["instance"]["instanceId"] == "probe"
    ws.close()


def test_changes_from_peers_are_pushed(node_factory):
    """A change applied through the replication endpoint (origin != 0),
    open to this test's address by [cluster] java_peers."""
    node = node_factory(cluster={"java_peers": "127.0.0.1"})
    svc = uniq("peer")
    ws = RawWS(node, ALL)
    st, _, body = node.post_json("/artemis/api/replication/registry/register.json",
                                 {"instances": [inst(svc, "from-peer")]})
    assert st == 200, "the replication endpoint must be served: HTTP %d %r" % (st, body)
    assert_ok(body)
    msg = recv_until(ws, lambda m: m["instance"]["serviceId"] == svc)
    assert msg["changeType"] == "new" and msg["instance"]["instanceId"] == "from-peer"
    ws.close()


def test_log_overrun_sends_reload(node_factory):
    """One worker, the smallest change log, one request that writes more
    changes than the log holds: the follower is overrun before its next
    tick and must send reload for what its sessions follow."""
    n = node_factory(node={"workers": 1}, registry={"changelog_size": 1024})
    svc, other = uniq("over"), uniq("other")
    sub, every = RawWS(n, CHANGE), RawWS(n, ALL)
    subscribe_until_live(n, sub, svc)
    register(n, inst(other, "x"))
    recv_until(every, lambda m: m["instance"]["serviceId"] == other)
    register(n, *[inst(svc, "n%d" % k) for k in range(1100)])
    got = recv_until(sub, lambda m: m["changeType"] == "reload", timeout=10.0)
    assert got["instance"]["serviceId"] == svc
    recv_until(every, lambda m: m["changeType"] == "reload" and
               m["instance"]["serviceId"] == other, timeout=10.0)
    # and pushes go on afterwards
    register(n, inst(svc, "after"))
    recv_until(sub, lambda m: m["instance"]["instanceId"] == "after")
    assert "overran" in n.read_log()
    sub.close()
    every.close()


# -------------------------------------------------------------- counts ---

def test_connection_counts_across_workers(fresh_node):
    n = fresh_node
    hbs = [RawWS(n, HB) for _ in range(6)]
    subs = [RawWS(n, CHANGE) for _ in range(3)] + [RawWS(n, "/api/v1/discovery/subscribe/x")]
    alls = [RawWS(n, ALL) for _ in range(2)]
    want = {"registry": "6", "discovery": "4"}

    def all_agree():
        # each GET lands on either worker: all must report the node's total
        return all(n.get(CONN)[2] == want for _ in range(8))
    wait_for(all_agree, 5.0, what="connection.json == %r on every worker" % want)
    for ws in hbs[:4] + subs[:1]:
        ws.send(frame(OP_CLOSE, struct.pack("!H", 1000)))
        ws.expect_close(1000)
        ws.close()
    want = {"registry": "2", "discovery": "3"}
    wait_for(all_agree, 5.0, what="connection.json == %r after closes" % want)
    for ws in hbs[4:] + subs[1:] + alls:
        ws.close()
    want = {"registry": "0", "discovery": "0"}
    wait_for(all_agree, 5.0, what="connection.json back to zero after EOFs")


def test_connection_json_is_get_only(node):
    st, _, body = node.get(CONN)
    assert st == 200 and set(body) == {"registry", "discovery"}
    assert all(isinstance(v, str) for v in body.values())
    st, _, _ = node.post_json(CONN, {})
    assert st == 405


def test_changes_replicated_from_a_peer_node_are_pushed(tmp_path):
    """Two real nodes: a register and an unregister on node 0 are pushed to
    subscribers of node 1 (changes with origin != 0)."""
    c = Cluster(str(tmp_path), 2).start()
    try:
        svc = uniq("Repl")
        sub, every = RawWS(c[1], CHANGE), RawWS(c[1], ALL)
        sub.send_text(json.dumps({"serviceId": svc}))
        # the subscription has no ack: a local probe on node 1 shows it is live
        subscribe_until_live(c[1], sub, svc, iid="local-probe")
        register(c[0], inst(svc, "remote"))
        for ws in (sub, every):
            recv_until(ws, lambda m: m["changeType"] == "new" and
                       m["instance"]["instanceId"] == "remote", timeout=10.0)
        unregister(c[0], inst(svc, "remote"))
        recv_until(sub, lambda m: m["changeType"] == "delete" and
                   m["instance"]["instanceId"] == "remote", timeout=10.0)
        sub.close()
        every.close()
    finally:
        c.finish()


def synced(ws):
    """A ping answered means every message sent before it was processed."""
    ws.send(frame(OP_PING, b"sync"))
    while True:
        fin, op, payload = ws.recv_frame()
        if op == OP_PONG and payload == b"sync":
            return


def test_java_client_flow_over_websockets(fresh_node):
    """API.md §6.2-6.4 as the Java clients do it: unregister first, the
    heartbeat socket's data-not-found drives register.json, the discovery
    client subscribes by DiscoveryConfig and follows pushes."""
    n = fresh_node
    svc = uniq("JavaApp")
    mine = [inst(svc, "j%d" % k) for k in range(3)]
    assert_ok(unregister(n, *mine))          # RegistryClient.register()
    sub = RawWS(n, CHANGE)
    sub.send_text(json.dumps({"serviceId": svc, "regionId": REGION, "zoneId": ZONE}))
    synced(sub)
    hb = RawWS(n, HB)
    hb.send_text(json.dumps({"instances": mine}))
    body = hb.recv_json()
    assert_status(body, PARTIAL_FAIL)
    again = [f["instance"] for f in body["failedInstances"]
             if f["errorCode"] in ("data-not-found", "unknown")]
    assert sorted(i["instanceId"] for i in again) == ["j0", "j1", "j2"]
    assert_ok(register(n, *again))
    hb.send_text(json.dumps({"instances": mine}))
    assert hb.recv_json() == {"failedInstances": None, "responseStatus": SUCCESS}
    news = set()
    while news != {"j0", "j1", "j2"}:
        m = sub.recv_json()
        assert m["changeType"] == "new" and m["instance"]["serviceId"] == svc, m
        news.add(m["instance"]["instanceId"])
    assert sorted(instance_ids(n, svc)) == ["j0", "j1", "j2"]
    assert_ok(unregister(n, mine[0]))
    m = recv_until(sub, lambda m: m["changeType"] == "delete")
    assert m["instance"]["instanceId"] == "j0"
    for ws in (hb, sub):
        ws.close()

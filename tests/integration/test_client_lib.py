"""
test_client_lib.py - libartemis-client against real nodes (through ctypes,
client_ffi.py) and against fake nodes served from this process:

  - register: kept alive over the WebSocket heartbeat (no HTTP), listed by
    the node, unregistered by artemis_client_free; HTTP heartbeats when the
    WebSocket is off;
  - a node restarted empty (--fresh): every kept instance is registered
    again (data-not-found -> register.json), 200 of them so the 8 KB cut of
    WebSocket answers is crossed;
  - a 3-node cluster: the client learns the peers from up-*-nodes.json and,
    when its node is killed, renews on a peer within 2 s;
  - pushes: a subscriber sees "new" and "delete", the cache follows;
  - the choice: 70/30 weighted groups within +-5 % over 10,000 picks, from
    route rules a fake node serves, and what a real node answers for a
    service without routing data (no rules: round robin over the instances
    up);
  - a reload marker pushed by a fake node: the service is fetched again
    and the change delivered as "reload";
  - bad nodes: garbage, a close mid-response, a stall: an error within the
    deadline, and the client keeps working.
"""

import base64
import hashlib
import http.server
import json
import os
import socket
import socketserver
import struct
import threading
import time

import pytest

from artemis_it import REGION, ZONE, instance_ids, uniq, wait_for
from client_ffi import (E_CONNECT, E_PROTO, E_TIMEOUT, OK, OP_REGISTER, Client, Instance)
from cluster_util import Cluster, wait_ids


def inst(service, iid, **kw):
    return Instance(service, iid, url="http://10.1.0.1:80/%s" % iid, **kw)


def fast_client(node, **kw):
    opts = {"heartbeat_interval_ms": 200}
    opts.update(kw)
    return Client(node.base, **opts)


# ------------------------------------------------------------ registry ---

def test_register_kept_alive_over_websocket_then_unregistered(node):
    svc = uniq("cl-reg")
    c = fast_client(node)
    i = inst(svc, "a", metadata={"k": "v"})
    rc, err = c.register(i)
    assert rc == OK, str(err)
    assert instance_ids(node, svc) == ["a"]
    stored = node.api("/artemis/api/discovery/service.json", {
        "regionId": REGION, "discoveryConfig": {"serviceId": svc, "regionId": REGION}})
    got = stored["service"]["instances"][0]
    assert got["status"] == "up" and got["zoneId"] == ZONE and got["metadata"] == {"k": "v"}
    wait_for(lambda: c.stat("ws_sessions") >= 1, 10, what="the heartbeat session")
    http, beats = c.stat("heartbeats_http"), c.stat("heartbeats")
    wait_for(lambda: c.stat("heartbeats") >= beats + 3, 10, what="three renewals")
    assert c.stat("heartbeats_http") == http  # all over the WebSocket
    assert c.stat("registered") == 1
    c.close()
    wait_for(lambda: instance_ids(node, svc) == [], 5, what="the unregister at close")
    i.free()


def test_http_heartbeats_without_websocket(node):
    svc = uniq("cl-http")
    with fast_client(node, websocket=0) as c:
        i = inst(svc, "a")
        assert c.register(i)[0] == OK
        wait_for(lambda: c.stat("heartbeats_http") >= 2, 10, what="HTTP renewals")
        assert c.stat("ws_sessions") == 0
        assert c.stat("heartbeats") == c.stat("heartbeats_http")
        rc, err = c.unregister(i)
        assert rc == OK, str(err)
        assert c.stat("registered") == 0
        i.free()
    wait_for(lambda: instance_ids(node, svc) == [], 5, what="the unregister")


def test_refused_registration_is_not_kept(node):
    with fast_client(node) as c:
        i = inst(uniq("cl-ref"), "a", regionId="elsewhere")
        rc, err = c.register(i)
        assert rc == -7, str(err)  # ARTEMIS_E_SERVER
        assert err.server_code == b"no-permission"
        assert c.stat("registered") == 0
        i.free()


def test_registration_survives_a_node_restart(node_factory):
    n = node_factory()
    svc = uniq("cl-restart")
    c = fast_client(n, backoff_max_ms=500)
    insts = [inst(svc, "i%03d" % k) for k in range(200)]
    for i in insts:
        assert c.register(i)[0] == OK
    assert len(instance_ids(n, svc)) == 200
    n.stop()
    n.start()  # --fresh: the registry is empty
    wait_for(lambda: len(instance_ids(n, svc)) == 200, 15,
             what="every instance registered again after the restart")
    # the node applies a registration before the client reads its answer
    wait_for(lambda: c.stat("reregisters") >= 200, 10, what="the client counted them")
    c.close()
    for i in insts:
        i.free()


# ------------------------------------------------------------- failover ---

@pytest.fixture
def cluster3(tmp_path):
    c = Cluster(str(tmp_path), 3).start()
    yield c
    c.finish()


def test_failover_to_a_peer_within_2s(cluster3):
    first = cluster3[0]
    svc = uniq("cl-fail")
    # only the first node is given: the others come from up-*-nodes.json
    c = Client(first.base, heartbeat_interval_ms=300, nodes_refresh_ms=1000,
               connect_timeout_ms=500)
    i = inst(svc, "a")
    assert c.register(i)[0] == OK
    wait_ids(cluster3[1], svc, ["a"])
    wait_for(lambda: c.stat("heartbeats") >= 2 and c.node() == first.base, 10,
             what="renewals on the first node")
    # the peers are known once the cluster answered (a refresh each second)
    assert c.stat("nodes") in (1, 3)
    wait_for(lambda: c.stat("nodes") == 3, 5, what="the peers from up-*-nodes.json")
    before = c.stat("heartbeats")
    first.expect_exit = True
    t0 = time.monotonic()
    first.kill_all()
    wait_for(lambda: c.node() != first.base and c.stat("heartbeats") > before, 2.0,
             interval=0.01, what="renewals on a peer within 2 s of the kill")
    took = time.monotonic() - t0
    print("failover took %.3f s to %s" % (took, c.node()))
    assert c.node() in (cluster3[1].base, cluster3[2].base)
    # the instance stays listed on the peers (replicated, and renewed there)
    wait_ids(cluster3[1], svc, ["a"])
    c.close()
    wait_ids(cluster3[2], svc, [])
    i.free()


# --------------------------------------------------------------- pushes ---

def test_push_arrives_and_the_cache_follows(node):
    svc = uniq("cl-push")
    with fast_client(node) as watcher, fast_client(node) as owner:
        got = watcher.subscribe(svc)
        wait_for(lambda: watcher.stat("ws_sessions") >= 1, 5, what="the push session")
        i = inst(svc, "p1")
        # a push is lost only if it is made before the node holds the
        # subscription: the settle reload then reports it as a "reload"
        assert owner.register(i)[0] == OK
        wait_for(lambda: any(t in ("new", "reload") for t, _ in got), 5, what="a push")
        wait_for(lambda: watcher.discover_ids(svc) == ["p1"], 5, what="the cache")
        n = len(got)
        assert owner.unregister(i)[0] == OK
        wait_for(lambda: any(t == "delete" for t, _ in got[n:]), 5, what="the delete push")
        change = json.loads([j for t, j in got[n:] if t == "delete"][0])
        assert change["instance"]["instanceId"] == "p1"
        assert watcher.discover_ids(svc) == []
        assert watcher.stat("pushes") >= 1
        i.free()


def test_choice_on_a_real_nodes_answers(node):
    """What a real node serves for a service without routing data: no
    routeRules, so the default rule (every instance up, round robin)."""
    svc = uniq("cl-real")
    with fast_client(node) as c:
        for iid, status in (("a", "up"), ("b", "up"), ("c", "down")):
            i = inst(svc, iid, status=status)
            assert c.send(OP_REGISTER, i)[0] == OK
            i.free()
        picks = {}
        for _ in range(300):
            iid, e = c.choose(svc)
            assert iid is not None, e
            picks[iid] = picks.get(iid, 0) + 1
        assert picks == {"a": 150, "b": 150}
        rc, err, svcs = c.lookup(svc)
        assert rc == OK
        route = c.choose(svc, "no-such-rule")
        assert route[0] is None and route[1][0] == -8  # ARTEMIS_E_NOTFOUND


# ------------------------------------------------------------ fake nodes ---

class _Fake(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-artemis"

    def log_message(self, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        self.server.requests.append(self.path)
        mode = self.server.mode
        if mode == "garbage":
            self.wfile.write(b"\x00\x01garbage\r\n\r\n")
            return
        if mode == "close":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 900\r\n\r\n{\"resp")
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "stall":
            self.server.stalled.wait(10)
            return
        if self.path.endswith("/lookup.json"):
            body = {"responseStatus": {"status": "success", "errorCode": "success",
                                       "message": ""},
                    "services": [self.server.service]}
        else:
            body = {"responseStatus": {"status": "fail", "errorCode": "data-not-found",
                                       "message": "fake"}}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class FakeNode:
    def __init__(self, service=None):
        self.srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Fake)
        self.srv.daemon_threads = True
        self.srv.mode = "ok"
        self.srv.service = service
        self.srv.requests = []
        self.srv.stalled = threading.Event()
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.stalled.set()
        self.srv.shutdown()
        self.srv.server_close()


def member(iid, group, zone="zone-1", status="up"):
    return {"regionId": REGION, "zoneId": zone, "serviceId": "pay", "instanceId": iid,
            "groupId": group, "url": "http://%s" % iid, "status": status}


ROUTED = {
    "serviceId": "pay",
    "instances": [member("a1", "blue"), member("a2", "blue"), member("b1", "green"),
                  member("b2", "green", status="down"), member("c1", None)],
    "routeRules": [{"routeId": "main", "strategy": "weighted-round-robin", "groups": [
        {"groupKey": "pay/%s/zone-1/blue" % REGION, "weight": 70, "instanceIds": None},
        {"groupKey": "pay/%s/zone-1/green" % REGION, "weight": 30, "instanceIds": []},
    ]}],
}


def test_weighted_choice_70_30_over_10000_picks():
    fake = FakeNode(ROUTED)
    try:
        with Client(fake.url, region=REGION, zone=ZONE, websocket=0) as c:
            counts = {}
            for _ in range(10000):
                iid, e = c.choose("pay")
                assert iid is not None, e
                counts[iid] = counts.get(iid, 0) + 1
            blue = counts.get("a1", 0) + counts.get("a2", 0)
            green = counts.get("b1", 0)
            assert abs(blue - 7000) <= 500 and abs(green - 3000) <= 500, counts
            assert set(counts) == {"a1", "a2", "b1"}  # b2 is down; c1 in no group
            # served from the cache: one lookup for 10,000 choices
            assert sum(p.endswith("/lookup.json") for p in fake.srv.requests) == 1
    finally:
        fake.close()


@pytest.mark.parametrize("mode,code", [("garbage", E_PROTO), ("close", E_CONNECT),
                                       ("stall", E_TIMEOUT)])
def test_bad_node_answers_end_within_the_deadline(mode, code):
    fake = FakeNode({"serviceId": "s", "instances": []})
    try:
        with Client(fake.url, region=REGION, zone=ZONE, websocket=0,
                    request_timeout_ms=500) as c:
            fake.srv.mode = mode
            t0 = time.monotonic()
            rc, err, _ = c.lookup("s")
            took = time.monotonic() - t0
            assert rc == code, str(err)
            assert took < 5, "a %s node held the call %.1f s" % (mode, took)
            fake.srv.mode = "ok"
            rc, err, insts = c.lookup("s")
            assert rc == OK and insts == [], str(err)
    finally:
        fake.close()



# ------------------------------------------------ the node's lease TTL ---

class _LeaseFake(http.server.BaseHTTPRequestHandler):
    """Registry answers (all success), status/config.json with the lease TTL
    server.ttl, or 503 for everything while server.down; requests logged as
    (method, path) in server.requests."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, body):
        self.server.requests.append((self.command, self.path))
        data = json.dumps(body).encode()
        self.send_response(503 if self.server.down else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.answer({"properties": {"registry.lease_ttl_ms": self.server.ttl},
                     "responseStatus": {"status": "success", "errorCode": "success",
                                        "message": ""}})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.answer({"responseStatus": {"status": "success", "errorCode": "success",
                                        "message": ""}})


def lease_fake(ttl):
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _LeaseFake)
    srv.daemon_threads, srv.ttl, srv.down, srv.requests = True, ttl, False, []
    srv.url = "http://127.0.0.1:%d" % srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_lease_ttl_asked_of_each_registry_node():
    """issue 17: the keep-alive interval follows the TTL of the node that
    renews: asked once of a node (status/config.json), asked again of the
    node a failover moves to; never asked when the application set
    ARTEMIS_OPT_LEASE_TTL_MS.  Three renewals within 10 s need the learnt
    TTL (3 s and 2 s: every 750 and 500 ms), not the 20 s default (5 s)."""
    a, b, fixed = lease_fake("3000"), lease_fake(2000), lease_fake("3000")
    try:
        def asked(srv):
            return [r for r in srv.requests if r == ("GET", "/artemis/api/status/config.json")]

        def beats(srv):
            return [r for r in srv.requests if r[1].endswith("/heartbeat.json")]

        with Client(a.url + "," + b.url, region=REGION, zone=ZONE, websocket=0) as c, \
                Client(fixed.url, region=REGION, zone=ZONE, websocket=0,
                       lease_ttl_ms=20000) as f:
            i, j = inst("cl-ttl", "a"), inst("cl-ttl", "f")
            assert c.register(i)[0] == OK and f.register(j)[0] == OK
            first, second = (a, b) if c.node() == a.url else (b, a)
            wait_for(lambda: len(beats(first)) >= 3, 10, what="renewals at the node's TTL")
            assert len(asked(first)) == 1 and not asked(second), first.requests
            first.down = True  # 503: the client moves to the other node
            wait_for(lambda: len(beats(second)) >= 3, 10, what="renewals after the failover")
            assert len(asked(second)) == 1, second.requests
            assert c.node() == second.url
            assert not asked(fixed), fixed.requests
            i.free()
            j.free()
    finally:
        for srv in (a, b, fixed):
            srv.shutdown()
            srv.server_close()


# --------------------------------------------------- a fake node that pushes ---

class _PushFake(socketserver.BaseRequestHandler):
    """HTTP lookup.json answers from server.service; a WebSocket upgrade is
    accepted and kept in server.ws (pings answered)."""

    def handle(self):
        f = self.request.makefile("rb")
        f.readline()
        headers = {}
        while True:
            line = f.readline().decode("latin-1").strip()
            if not line:
                break
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if headers.get("upgrade", "").lower() == "websocket":
            accept = base64.b64encode(hashlib.sha1(
                (headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                .encode()).digest()).decode()
            self.request.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                  "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
                                  % accept).encode())
            self.server.ws = self.request
            self.server.ws_ready.set()
            while True:
                hdr = f.read(2)
                if len(hdr) < 2:
                    return
                n = hdr[1] & 0x7f
                if n == 126:
                    n = struct.unpack("!H", f.read(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", f.read(8))[0]
                mask = f.read(4)
                data = bytes(b ^ mask[i & 3] for i, b in enumerate(f.read(n)))
                if hdr[0] & 0x0f == 9:
                    self.send_frame(10, data)
                elif hdr[0] & 0x0f == 1:
                    self.server.subscriptions.append(json.loads(data))
            return
        n = int(headers.get("content-length") or 0)
        f.read(n)
        body = json.dumps({"responseStatus": {"status": "success", "errorCode": "success",
                                              "message": ""},
                           "services": [self.server.service]}).encode()
        self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
                             + body)

    def send_frame(self, op, data):
        assert len(data) < 126
        self.request.sendall(bytes([0x80 | op, len(data)]) + data)


def test_reload_marker_fetches_the_service_again():
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _PushFake)
    srv.daemon_threads = True
    srv.service = {"serviceId": "pay", "instances": [member("a1", "blue")]}
    srv.ws, srv.ws_ready, srv.subscriptions = None, threading.Event(), []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d" % srv.server_address[1]
    try:
        with Client(url, region=REGION, zone=ZONE) as c:
            got = c.subscribe("pay")
            assert srv.ws_ready.wait(5), "no WebSocket session"
            wait_for(lambda: srv.subscriptions, 5, what="the subscription")
            assert srv.subscriptions[0]["serviceId"] == "pay"
            # the settle fetch after subscribing: same answer, no change
            wait_for(lambda: c.stat("reloads") >= 1, 5, what="the settle fetch")
            assert got == []
            srv.service = {"serviceId": "pay", "instances": [member("a1", "blue"),
                                                             member("b1", "green")],
                           "routeRules": ROUTED["routeRules"]}
            marker = json.dumps({"instance": {"serviceId": "pay", "instanceId": "reload",
                                              "ip": "0.0.0.0", "url": "http://pay/reload",
                                              "port": 0},
                                 "changeType": "reload", "changeTime": 1}).encode()
            srv.ws.sendall(bytes([0x81, 126]) + struct.pack("!H", len(marker)) + marker)
            wait_for(lambda: [t for t, _ in got] == ["reload"], 5, what="the reload change")
            assert c.discover_ids("pay") == ["a1", "b1"]
            assert json.loads(got[0][1])["changeType"] == "reload"
            assert c.stat("pushes") == 1
    finally:
        srv.shutdown()
        srv.server_close()

"""
test_robustness.py - behaviour under load and abuse that the contract
implies but no single endpoint test shows: every worker sees every write at
once (per-worker response caches), concurrent writers, big services, exact
round trip of awkward strings, over-long fields rejected rather than
truncated, heavy pipelining, clients vanishing mid-request, idle timeouts,
answer amplification (repeated serviceIds, max_response_bytes), slow
clients (slowloris at the connection cap, trickled heads and bodies, slow
readers, clients that never read and the memory they cost), and the master
respawning killed children (DESIGN.md §1).
"""

import json
import os
import signal
import socket
import threading
import time

import pytest

from artemis_it import (HOST, PARTIAL_FAIL, REGION, ZONE, assert_ok, assert_status,
                        child_pids, failed_by_id, heartbeat, inst, instance_ids,
                        instances_of, lookup, raw_exchange, read_response, register, run_cli,
                        uniq, unregister, wait_for)

LOOKUP = "/artemis/api/discovery/lookup.json"


def ports_seen(node, svc, times=24):
    """Look the service up on `times` fresh connections (SO_REUSEPORT spreads
    them over the workers); return the distinct port lists seen."""
    seen = set()
    for _ in range(times):
        body = lookup(node, svc)
        seen.add(tuple(sorted(i["port"] for i in body["services"][0]["instances"] or [])))
    return seen


def test_every_worker_sees_writes_at_once(node):
    svc = uniq()
    register(node, inst(svc, "i1", port=1001))
    assert ports_seen(node, svc) == {(1001,)}
    register(node, inst(svc, "i1", port=1002))
    assert ports_seen(node, svc) == {(1002,)}, "a worker served a stale cached response"
    register(node, inst(svc, "i2", port=2000))
    assert ports_seen(node, svc) == {(1002, 2000)}
    unregister(node, inst(svc, "i2"))
    wait_for(lambda: ports_seen(node, svc, 4) == {(1002,)}, 3.0, what="i2 to go")
    assert ports_seen(node, svc) == {(1002,)}, "a worker still lists the removed instance"


def test_duplicate_in_one_batch(node):
    svc = uniq()
    i = inst(svc, "dup")
    assert_ok(register(node, i, dict(i, port=2), dict(i, port=3)))
    got = instances_of(node, svc)
    assert len(got) == 1 and got[0]["port"] == 3, got


def test_concurrent_writers(node):
    svc = uniq()
    errors = []

    def client(k):
        try:
            mine = [inst(svc, "c%d-%d" % (k, j)) for j in range(50)]
            for chunk in range(0, 50, 10):
                assert_ok(register(node, *mine[chunk:chunk + 10]))
            for _ in range(3):
                assert_ok(heartbeat(node, *mine))
            assert_ok(unregister(node, *mine[:10]))
        except Exception as e:  # reported below, with the thread's number
            errors.append((k, repr(e)))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    wait_for(lambda: len(instance_ids(node, svc)) == 8 * 40, 5.0,
             what="320 instances after concurrent writes (have %d)"
             % len(instance_ids(node, svc)))
    assert sorted(instance_ids(node, svc)) == sorted(
        "c%d-%d" % (k, j) for k in range(8) for j in range(10, 50))


def test_large_service(node):
    svc = uniq()
    total = 3000
    for start in range(0, total, 500):
        assert_ok(register(node, *[inst(svc, "i%05d" % k, metadata={"n": str(k)})
                                   for k in range(start, start + 500)], gzip=True))
    got = instances_of(node, svc)
    assert len(got) == total
    assert sorted(i["instanceId"] for i in got) == ["i%05d" % k for k in range(total)]
    st, headers, body = node.request("POST", LOOKUP, json.dumps({
        "regionId": REGION, "zoneId": ZONE, "discoveryConfigs": [{"serviceId": svc}]}).encode(),
        {"Content-Type": "application/json", "Accept-Encoding": "gzip"})
    assert st == 200 and len(body["services"][0]["instances"]) == total


AWKWARD = 'quote " backslash \\ slash / nl \n tab \t ctl \x01 uni \u00e9\u4e2d emoji \U0001F600'


def test_awkward_strings_round_trip(node):
    svc = uniq("svc-\u00fcn\u00ef")
    short = 'q"\\\n\t\x01\u00e9\U0001F600'  # status is limited to 64 bytes
    sent = inst(svc, "inst-\u4e2d\u6587", status=short, machineName=AWKWARD,
                metadata={AWKWARD: AWKWARD, "empty": "", "json": '{"a":[1]}'})
    assert_ok(register(node, sent))
    (got,) = instances_of(node, svc)
    for k, v in sent.items():
        assert got[k] == v, (k, got[k], v)
    assert_ok(heartbeat(node, sent))


@pytest.mark.parametrize("field,size", [("serviceId", 300), ("instanceId", 300),
                                        ("regionId", 100), ("url", 5000),
                                        ("metadata", 20000)])
def test_overlong_field_is_rejected_not_truncated(node, field, size):
    svc = uniq()
    i = inst(svc, "i1")
    if field == "metadata":
        i["metadata"] = {"big": "m" * size}
    elif field == "regionId":
        i["regionId"] = REGION + "x" * size
    else:
        i[field] = i[field] + "x" * size
    body = register(node, i, inst(svc, "ok"))
    assert_status(body, PARTIAL_FAIL)
    assert list(failed_by_id(body)) == [i["instanceId"]], body["failedInstances"]
    if field != "serviceId":
        assert instance_ids(node, svc) == ["ok"]


def test_deep_or_huge_json_does_not_crash(node):
    deep = ("[" * 100000 + "]" * 100000).encode()
    st, _, _ = node.request("POST", "/artemis/api/registry/register.json",
                            b'{"instances":' + deep + b"}", {"Content-Type": "application/json"})
    assert st in (200, 400), st
    assert node.get("/health")[0] == 200


def test_many_pipelined_heartbeats(node):
    svc = uniq()
    i = inst(svc, "i1")
    register(node, i)
    body = json.dumps({"instances": [i]}).encode()
    one = ("POST /artemis/api/registry/heartbeat.json HTTP/1.1\r\nHost: x\r\n"
           "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)).encode()
    rs = raw_exchange(node.port, (one + body) * 300, 300, timeout=20)
    assert len(rs) == 300
    assert all(r[1] == 200 and json.loads(r[3])["responseStatus"]["status"] == "success"
               for r in rs)


@pytest.mark.parametrize("cut", ["POST /artemis/api/registry/regis",
                                 "POST /artemis/api/registry/register.json HTTP/1.1\r\nHost:",
                                 "POST /artemis/api/registry/register.json HTTP/1.1\r\n"
                                 "Content-Length: 1000\r\nContent-Type: application/json\r\n\r\n"
                                 '{"instances":[',
                                 "POST /artemis/api/registry/register.json HTTP/1.1\r\n"
                                 "Transfer-Encoding: chunked\r\n\r\n10\r\nabc"])
def test_client_vanishing_mid_request(node, cut):
    for _ in range(20):
        s = socket.create_connection((HOST, node.port), timeout=5)
        s.sendall(cut.encode())
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # RST
    assert node.get("/health")[0] == 200


def test_many_idle_connections(node):
    socks = [socket.create_connection((HOST, node.port), timeout=5) for _ in range(300)]
    try:
        assert node.get("/health")[0] == 200
        s = socks[123]
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(s.makefile("rb"))[1] == 200
    finally:
        for s in socks:
            s.close()


def test_idle_timeout_closes_connection(node_factory):
    n = node_factory(http={"idle_timeout_ms": "1000"})
    with socket.create_connection((HOST, n.port), timeout=10) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        assert read_response(f)[1] == 200
        t0 = time.monotonic()
        assert f.read() == b"", "idle connection got data instead of a close"
        elapsed = time.monotonic() - t0
    assert 0.5 <= elapsed <= 5.0, "idle connection closed after %.2fs (timeout 1 s)" % elapsed


# ------------------------------------------------- answer amplification ---
# Issue 11 item 3: a 1.35 MB lookup.json repeating one serviceId 50,000
# times produced a 1.21 GB answer and a 2.37 GB worker.

def big_service(node, n=60):
    """A service whose lookup answer is about 30 KB."""
    svc = uniq()
    register(node, *[inst(svc, "i%02d" % k, metadata={"k%d" % j: "v" * 40 for j in range(5)})
                     for k in range(n)])
    return svc


def lookup_raw(node, service_ids):
    return node.post_json(LOOKUP, {"regionId": REGION, "zoneId": ZONE,
                                   "discoveryConfigs": [{"serviceId": s} for s in service_ids]},
                          timeout=120)


def test_repeated_service_ids_are_answered_once(node_factory):
    n = node_factory()
    svc = big_service(n)
    st, _, body = lookup_raw(n, [svc] * 50000)
    assert st == 200 and body["responseStatus"]["status"] == "success", st
    assert len(body["services"]) == 1, "%d services answered" % len(body["services"])
    assert body["services"][0]["serviceId"] == svc
    assert len(body["services"][0]["instances"]) == 60
    peak = max(worker_status(n, "VmHWM").values())
    assert peak < 256, "a worker peaked at %d MB" % peak
    # the order is that of each serviceId's first occurrence
    a, b, c = uniq(), uniq(), uniq()
    body = lookup(n, a, b, a, c, b, c, a)
    assert [x["serviceId"] for x in body["services"]] == [a, b, c]


def test_too_many_services_in_one_lookup(node):
    st, _, body = lookup_raw(node, ["svc-%05d" % k for k in range(10001)])
    assert st == 200
    rs = body["responseStatus"]
    assert (rs["status"], rs["errorCode"]) == ("fail", "bad-request"), rs
    assert "10001" in body["responseStatus"]["message"]
    assert body["services"] is None
    st, _, body = lookup_raw(node, ["svc-%05d" % k for k in range(10000)])
    assert st == 200 and len(body["services"]) == 10000


def test_max_response_bytes(node_factory):
    n = node_factory(http={"max_response_bytes": "65536"})
    a, b, c = big_service(n), big_service(n), big_service(n)
    assert len(lookup(n, a)["services"]) == 1  # about 30 KB: fine
    st, _, body = lookup_raw(n, [a, b, c])
    assert st == 200
    assert_status(body, {"status": "fail", "errorCode": "bad-request"})
    assert "max_response_bytes" in body["responseStatus"]["message"]
    assert body["services"] is None
    # any other answer past the limit is a 500 with the Spring error body
    st, _, body = n.get("/artemis/api/discovery/services.json")
    assert st == 500 and "max_response_bytes" in body["message"], body
    assert n.get("/health")[0] == 200


# -------------------------------------------------------- slow clients ---
# Issue 11 item 5 and issue 12 item 13: clients that send or read slowly.
# The deadlines below are generous (the machine is shared); they bound how
# long a test may wait, they do not measure the server.

HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


class Trickler(threading.Thread):
    """Slowloris: n connections that each send a request head one byte at
    a time, one byte every `every` seconds per connection, and never finish
    it.  A connection the server closes is opened again (as an attacker
    would, to keep its slots).  closed counts the closes seen."""

    def __init__(self, port, n, every=0.3):
        super().__init__(daemon=True)
        self.port, self.n, self.every = port, n, every
        self.stop = threading.Event()
        self.closed = 0
        self.socks = []

    def _open(self):
        s = socket.create_connection((HOST, self.port), timeout=5)
        s.setblocking(False)
        s.send(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        return s

    def run(self):
        self.socks = [self._open() for _ in range(self.n)]
        while not self.stop.wait(self.every):
            for k, s in enumerate(self.socks):
                try:
                    if s.recv(4096, socket.MSG_DONTWAIT) == b"":
                        raise ConnectionResetError
                except BlockingIOError:
                    pass
                except OSError:
                    self.closed += 1
                    s.close()
                    try:
                        self.socks[k] = self._open()
                    except OSError:
                        continue
                try:
                    self.socks[k].send(b"a")
                except OSError:
                    pass

    def finish(self):
        self.stop.set()
        self.join(10)
        for s in self.socks:
            s.close()


def trickled_until_closed(node, start, byte, seconds=15):
    """Send start, then byte every 100 ms until the server closes the
    connection (True) or `seconds` pass (False)."""
    with socket.create_connection((HOST, node.port), timeout=10) as s:
        s.sendall(start)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                s.sendall(byte)
                if s.recv(4096, socket.MSG_DONTWAIT) == b"":
                    return True
            except BlockingIOError:
                pass
            except OSError:
                return True
            time.sleep(0.1)
    return False


def test_trickled_request_head_is_closed_at_the_header_timeout(node_factory):
    """One byte every 100 ms kept a connection alive forever (the idle
    timeout restarts with every byte); the head must be complete within
    header_timeout_ms of its first byte."""
    n = node_factory(http={"header_timeout_ms": "1000"})
    assert trickled_until_closed(n, b"GET /health HTTP/1.1\r\nHost: x\r\n", b"X"), \
        "a trickling request head was still open after 15 s"
    assert n.get("/health")[0] == 200


def test_trickled_request_body_is_closed_at_the_body_timeout(node_factory):
    n = node_factory(http={"body_timeout_ms": "1000"})
    head = (b"POST /artemis/api/registry/register.json HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
    assert trickled_until_closed(n, head, b" "), \
        "a trickling request body was still open after 15 s"


def test_slowloris_at_the_connection_cap_does_not_lock_out_clients(node_factory):
    """With max_connections = 20 per worker, 100 trickling connections used
    to hold every slot (the listener stopped accepting at the cap) and
    normal clients waited until the attackers gave up.  Now a new
    connection evicts the one that has waited longest for a complete
    request.  The header timeout is set high so that only the eviction can
    explain the clients being served."""
    n = node_factory(http={"max_connections": "20", "header_timeout_ms": "600000"})
    attack = Trickler(n.port, 100)  # more than 2 workers x 20, however they are spread
    attack.start()
    try:
        wait_for(lambda: len(attack.socks) == 100, 10, what="the attackers connected")
        for _ in range(5):
            r = raw_exchange(n.port, HEALTH, 1, timeout=15)
            assert r and r[0][1] == 200, r
        wait_for(lambda: attack.closed > 0, 10, what="an attacker evicted")
        assert attack.is_alive(), "the attack stopped early"
    finally:
        attack.finish()


def test_slow_reader_gets_the_whole_answer(node):
    """A client reading a large answer slowly is not cut off while it keeps
    reading (issue 12 item 13)."""
    svc = uniq()
    register(node, *[inst(svc, "i%03d" % k, metadata={"m": "v" * 500}) for k in range(200)])
    body = json.dumps({"regionId": REGION, "zoneId": ZONE,
                       "discoveryConfigs": [{"serviceId": svc}]}).encode()
    req = (b"POST " + LOOKUP.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    with socket.create_connection((HOST, node.port), timeout=10) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(req * 3)
        data = b""
        while data.count(b"HTTP/1.1 200") < 3 or not data.endswith(b"]}"):
            chunk = s.recv(8192)
            assert chunk, "the server closed a slow reader after %d bytes" % len(data)
            data += chunk
            time.sleep(0.002)
    f = __import__("io").BytesIO(data)
    for _ in range(3):
        r = read_response(f)
        assert r[1] == 200 and len(json.loads(r[3])["services"][0]["instances"]) == 200


def worker_status(node, key):
    """{pid: value in MB} of /proc/PID/status `key` (VmRSS, VmHWM) for each
    worker of the node."""
    out = {}
    for pid in child_pids(node.pid, "worker"):
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    out[pid] = int(line.split()[1]) // 1024
    return out


def worker_sockets(node):
    """Open sockets of all the node's workers (from /proc/PID/fd)."""
    n = 0
    for pid in child_pids(node.pid, "worker"):
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
            except OSError:
                pass
    return n


def test_clients_that_never_read(node_factory):
    """Issue 11 items 4 and 12: 1,500 connections sending pipelined lookups
    of a 31 KB answer and never reading grew a worker to 1.66 GB, /health
    took 10 s, and the memory stayed after they left.  Now: back-pressure
    and an output budget bound the worker, /health is answered meanwhile,
    the connections are closed after the write timeout, and the workers
    give the memory back."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    n = node_factory(http={"write_timeout_ms": "2000"})
    svc = uniq()
    register(n, *[inst(svc, "i%02d" % k, metadata={"k%d" % j: "v" * 40 for j in range(5)})
                  for k in range(60)])
    body = json.dumps({"regionId": REGION, "zoneId": ZONE,
                       "discoveryConfigs": [{"serviceId": svc}]}).encode()
    one = (b"POST " + LOOKUP.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    baseline = worker_sockets(n)
    attackers = []
    try:
        for _ in range(1500):
            s = socket.create_connection((HOST, n.port), timeout=10)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.setblocking(False)
            try:
                s.send(one * 200)
            except BlockingIOError:
                pass
            attackers.append(s)
        for _ in range(3):
            st, _, health = n.get("/health", timeout=30)
            assert st == 200 and health == {"status": "up"}
        # the connections that never read are closed (write timeout 2 s)
        wait_for(lambda: worker_sockets(n) < baseline + 50, 60,
                 what="the server to close the connections that never read")
        peak = worker_status(n, "VmHWM")
        assert max(peak.values()) <= 512, "worker peak RSS %r MB" % peak
    finally:
        for s in attackers:
            s.close()
    # and, idle again, the workers give the memory back
    wait_for(lambda: max(worker_status(n, "VmRSS").values()) < 64, 60,
             what="idle workers under 64 MB RSS (now %r MB)" % worker_status(n, "VmRSS"))
    assert n.get("/health")[0] == 200


# --------------------------------------------------------- supervision ---

def test_killed_worker_is_respawned_without_losing_data(fresh_node):
    n = fresh_node
    svc = uniq()
    register(n, *[inst(svc, "i%d" % k) for k in range(10)])
    workers = wait_for(lambda: (lambda w: w if len(w) == 2 else None)(child_pids(n.pid, "worker")),
                       5.0, what="2 workers")
    os.kill(workers[0], signal.SIGKILL)
    wait_for(lambda: (lambda w: len(w) == 2 and workers[0] not in w)(
        child_pids(n.pid, "worker")), 5.0, what="the killed worker to be replaced")
    for _ in range(10):
        assert instance_ids(n, svc) == ["i%d" % k for k in range(10)]
    assert_ok(heartbeat(n, inst(svc, "i3")))
    p = run_cli("check", "-c", n.conf_path)
    assert p.returncode == 0, (p.stdout, p.stderr)


def test_killed_reaper_is_respawned(fresh_node):
    n = fresh_node
    reaper = wait_for(lambda: child_pids(n.pid, "reaper"), 5.0, what="a reaper process")
    os.kill(reaper[0], signal.SIGKILL)
    wait_for(lambda: (lambda r: len(r) == 1 and r[0] != reaper[0])(child_pids(n.pid, "reaper")),
             5.0, what="a new reaper")
    svc = uniq()
    i = inst(svc, "i1")
    register(n, i)
    unregister(n, i)
    wait_for(lambda: instance_ids(n, svc) == [], 3.0, what="the new reaper to remove i1")


def test_workers_die_with_master(node_factory):
    n = node_factory()
    kids = wait_for(lambda: child_pids(n.pid), 5.0, what="children")
    os.kill(n.pid, signal.SIGKILL)
    n.proc.wait(5)
    n.expect_exit = True

    def running(pid):
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def all_gone():
        return not any(running(k) for k in kids)

    wait_for(all_gone, 5.0, what="children %s to exit after the master died" % kids)

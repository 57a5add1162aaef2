#!/usr/bin/python3
"""
mgmt_repl_bench.py - how fast management data reaches the other nodes of a
cluster (docs/BENCHMARKS.md, "Management data between nodes").

  /usr/bin/python3 bench/mgmt_repl_bench.py [--build build] [--nodes 2] [--ops 1000]
                                            [--burst 5000] [--rounds 50]

Nodes on loopback, one worker each, a full mesh with one cluster key, access
control on (a token from the first node is used everywhere: it is valid on
every node), 100 instances registered on the first node.

1. visibility: --ops pull-outs and pull-ins (Java operate-instance.json) of
   registered instances, one at a time on the first node; after each answer
   the other nodes' service.json is read until the change shows: the time
   from the answer to the last node showing it (p50, p99, max).
2. burst: --burst pull-outs written on the first node as fast as one
   keep-alive client can, then the time from the last answer until every
   other node holds all of them (all-instance-operations.json), and the
   write rate.
3. routing: --rounds times a rule published on the first node (one group of
   one instance) and unpublished: the time until the other nodes' Rust
   service.json routes by it (and no longer does).
4. logout: --rounds times a session opened on the first node, checked on
   the last, logged out there: the time until the first node refuses it.

Prints a Markdown summary on stdout.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REGION, ZONE = "us-east", "zone-1"
KEY = "bench-cluster-key-0123456789abcdef"
PASSWORD = "bench-admin-password"
SVC, N = "rb-svc", 100


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, build, work, i):
        self.name = "rb%d" % i
        self.port, self.repl = free_port(), free_port()
        self.dir = os.path.join(work, self.name)
        os.makedirs(self.dir)
        self.shm = "/artemis-rbench-%d-%d" % (os.getpid(), i)
        self.conf = os.path.join(self.dir, "artemis.conf")
        self.build = build
        self.proc = None
        self.token = None
        self.c = None

    def peer_line(self):
        return "peer = %s %s http://127.0.0.1:%d 127.0.0.1:%d\n" % (self.name, ZONE, self.port,
                                                                  self.repl)

    def start(self, peers):
        with open(self.conf, "w") as f:
            f.write("[node]\nname = %s\nlisten = 127.0.0.1:%d\nworkers = 1\ndata_dir = %s/data\n"
                    "[registry]\nshm_name = %s\nmax_instances = 10000\n"
                    "[log]\nfile = %s/artemis.log\nlevel = warn\n"
                    "[auth]\ninitial_admin_password = %s\npassword_memlimit_kib = 8192\n"
                    "password_opslimit = 1\n"
                    "[management]\nmax_operations = 100000\n"
                    "[cluster]\nlisten = 127.0.0.1:%d\nkey = %s\nbootstrap_timeout_ms = 1000\n"
                    % (self.name, self.port, self.dir, self.shm, self.dir, PASSWORD, self.repl,
                       KEY))
            for p in peers:
                f.write(p.peer_line())
        self.proc = subprocess.Popen([os.path.join(self.build, "artemis"), "server", "-c",
                                      self.conf, "--fresh"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_ready(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/ready", fresh=True)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("node %s did not come up" % self.name)

    def request(self, method, path, obj=None, token=None, fresh=False):
        if fresh or self.c is None:
            if self.c is not None:
                self.c.close()
            self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        tok = token if token is not None else self.token
        if tok:
            headers["Authorization"] = "Bearer " + tok
        self.c.request(method, path, json.dumps(obj) if obj is not None else None, headers)
        r = self.c.getresponse()
        raw = r.read()
        return r.status, json.loads(raw) if raw else None

    def login(self):
        st, b = self.request("POST", "/api/auth/login",
                             {"username": "admin", "password": PASSWORD}, token="")
        assert st == 200, (st, b)
        return b["data"]["accessToken"]

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        path = "/dev/shm/" + self.shm.lstrip("/")
        if os.path.exists(path):
            os.unlink(path)


def ok(st_body):
    st, b = st_body
    assert st == 200, st_body
    rs = b.get("responseStatus") or b.get("status") or {}
    assert rs.get("errorCode") == "success" or b.get("success") is True, b
    return b


def instance_key(i):
    return {"regionId": REGION, "serviceId": SVC, "instanceId": "i%d" % i}


def operate(node, i, complete, svc=SVC):
    k = instance_key(i)
    k["serviceId"] = svc
    ok(node.request("POST", "/api/management/operate-instance.json",
                    {"instanceKey": k, "operation": "pullout", "operationComplete": complete,
                     "operatorId": "bench"}))


def listed(node, path="/artemis/api/discovery/service.json"):
    st, b = node.request("POST", path, {"regionId": REGION, "zoneId": ZONE, "discoveryConfig": {
        "serviceId": SVC, "regionId": REGION, "zoneId": ZONE}})
    assert st == 200, (st, b)
    return {i["instanceId"] for i in (b["service"] or {}).get("instances") or []}


def until(cond, limit=30.0):
    """Seconds until cond() holds (polled every 0.5 ms)."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > limit:
            raise RuntimeError("not within %.0f s" % limit)
        time.sleep(0.0005)
    return time.monotonic() - t0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def ms(x):
    return "%.1f" % (x * 1000)


def visibility(nodes, ops):
    a, others = nodes[0], nodes[1:]
    lat = []
    for k in range(ops):
        i = (k // 2) % N
        complete = k % 2 == 1  # out, then back in
        operate(a, i, complete)
        t0 = time.monotonic()
        want = complete
        for n in others:
            until(lambda: ("i%d" % i in listed(n)) == want)
        lat.append(time.monotonic() - t0)
    return lat


def burst(nodes, count):
    a, others = nodes[0], nodes[1:]
    t0 = time.monotonic()
    for k in range(count):
        operate(a, k, False, svc="burst-svc")
    t1 = time.monotonic()

    def held(n):
        st, b = n.request("POST", "/api/management/all-instance-operations.json", {})
        return sum(1 for o in b["allInstanceOperations"]
                   if o["instanceKey"]["serviceId"] == "burst-svc")

    for n in others:
        until(lambda: held(n) == count, limit=120)
    t2 = time.monotonic()
    return count / (t1 - t0), t2 - t1


def routing(nodes, rounds):
    a, others = nodes[0], nodes[1:]
    st, g = a.request("POST", "/api/routing/groups",
                      {"serviceId": SVC, "regionId": REGION, "zoneId": ZONE, "name": "solo",
                       "groupType": "physical", "operatorId": "bench"})
    assert st == 201, (st, g)
    gid = g["data"]["groupId"]
    st, _ = a.request("POST", "/api/routing/groups/%d/instances" % gid,
                      {"instanceId": "i7", "operatorId": "bench"})
    assert st == 201, st
    st, _ = a.request("POST", "/api/routing/rules",
                      {"routeId": "rb-rule", "serviceId": SVC, "name": "rb rule",
                       "strategy": "weighted-round-robin", "operatorId": "bench"})
    assert st == 201, st
    st, _ = a.request("POST", "/api/routing/rules/rb-rule/groups",
                      {"groupId": gid, "weight": 1, "operatorId": "bench"})
    assert st == 201, st
    on, off = [], []
    for _ in range(rounds):
        for verb, want, into in (("publish", {"i7"}, on), ("unpublish", None, off)):
            st, _ = a.request("POST", "/api/routing/rules/rb-rule/" + verb,
                              {"operatorId": "bench"})
            assert st == 200, st
            t0 = time.monotonic()
            for n in others:
                until(lambda: (listed(n, "/api/discovery/service.json") == want)
                      if want else len(listed(n, "/api/discovery/service.json")) > 1)
            into.append(time.monotonic() - t0)
    return on, off


def logout(nodes, rounds):
    a, b = nodes[0], nodes[-1]
    lat = []
    for _ in range(rounds):
        tok = a.login()
        until(lambda: b.request("GET", "/api/auth/user", token=tok)[0] == 200)
        st, _ = b.request("POST", "/api/auth/logout", {}, token=tok)
        assert st == 200, st
        t0 = time.monotonic()
        until(lambda: a.request("GET", "/api/auth/user", token=tok)[0] == 401)
        lat.append(time.monotonic() - t0)
    return lat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--nodes", type=int, default=2)
    ap.add_argument("--ops", type=int, default=1000)
    ap.add_argument("--burst", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=50)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="artemis-rbench-")
    nodes = [Node(args.build, work, i) for i in range(args.nodes)]
    try:
        for n in nodes:
            n.start([p for p in nodes if p is not n])
        for n in nodes:
            n.wait_ready()
        token = nodes[0].login()
        for n in nodes:
            n.token = token
            until(lambda: n.request("GET", "/api/auth/user")[0] == 200)
        ok(nodes[0].request("POST", "/artemis/api/registry/register.json", {"instances": [
            {"regionId": REGION, "zoneId": ZONE, "serviceId": SVC, "instanceId": "i%d" % i,
             "ip": "10.8.%d.%d" % (i // 250, i % 250 + 1), "port": 80, "status": "up",
             "url": "http://10.8.0.1/"} for i in range(N)]}))
        for n in nodes[1:]:
            until(lambda: len(listed(n)) == N)
        vis = visibility(nodes, args.ops)
        rate, conv = burst(nodes, args.burst)
        on, off = routing(nodes, args.rounds)
        out = logout(nodes, args.rounds)
        print("| %d nodes | p50 (ms) | p99 (ms) | max (ms) |" % args.nodes)
        print("|---|---|---|---|")
        print("| pull-out/in visible on every peer (%d) | %s | %s | %s |"
              % (len(vis), ms(pct(vis, 50)), ms(pct(vis, 99)), ms(max(vis))))
        print("| rule published, routing on every peer (%d) | %s | %s | %s |"
              % (len(on), ms(pct(on, 50)), ms(pct(on, 99)), ms(max(on))))
        print("| rule unpublished, on every peer (%d) | %s | %s | %s |"
              % (len(off), ms(pct(off, 50)), ms(pct(off, 99)), ms(max(off))))
        print("| logout on the last node refused on the first (%d) | %s | %s | %s |"
              % (len(out), ms(pct(out, 50)), ms(pct(out, 99)), ms(max(out))))
        print()
        print("Burst: %d pull-outs written at %.0f/s on the first node; every peer held all "
              "of them %s ms after the last answer." % (args.burst, rate, ms(conv)))
    finally:
        for n in nodes:
            n.stop()
        if os.environ.get("KEEP") is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("kept", work, file=sys.stderr)


if __name__ == "__main__":
    main()

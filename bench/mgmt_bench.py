#!/usr/bin/python3
"""
mgmt_bench.py - the management benchmarks of docs/BENCHMARKS.md
("Management: the down filter").

  /usr/bin/python3 bench/mgmt_bench.py [--build build] [--seconds 5] [--rounds 3] [--ops 1000]

1. throughput: one node (one worker, pinned to a CPU; the load generator on
   another, as scripts/bench.sh does), 10,000 instances over 100 services.
   lookup.json throughput (artemis-bench lookup) with no operation stored,
   then with 10,000 operations stored (1,000 instance operations on
   registered instances, so 1,000 instances are down, and 9,000 zone
   operations on zones nobody uses), alternately, twice each (A B A B), in
   one run; once with the response cache (the default) and once without
   ([http] response_cache_bytes = 0: every lookup rebuilds its answer
   through the filter); `--rounds` times A then B.
2. visibility: a node with two workers; 1,000 pull-outs and pull-ins of
   registered instances; after each answer, one service.json on each of 16
   keep-alive connections (the kernel spreads them over both workers),
   sent together: how many answers still showed the old state (the design
   says none), and the time until all 16 showed the new one.

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
import threading
import time

REGION, ZONE = "us-east", "zone-1"
N, S, PREFIX = 10000, 100, "mb"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, build, work, name, workers, extra="", cpu=None):
        self.port = free_port()
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.shm = "/artemis-mbench-%d-%s" % (os.getpid(), name)
        self.conf = os.path.join(self.dir, "artemis.conf")
        with open(self.conf, "w") as f:
            f.write("[node]\nname = mb-%s\nlisten = 127.0.0.1:%d\nworkers = %d\n"
                    "data_dir = %s/data\n[registry]\nshm_name = %s\nmax_instances = 200000\n"
                    "[cluster]\nlisten = 127.0.0.1:%d\n[log]\nfile = %s/artemis.log\n"
                    "level = warn\n"
                    # what is measured is discovery, not access control
                    "[auth]\nenabled = off\n%s"
                    % (name, self.port, workers, self.dir, self.shm, free_port(), self.dir,
                       extra))
        cmd = [os.path.join(build, "artemis"), "server", "-c", self.conf, "--fresh"]
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu)] + cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(400):
            try:
                if self.get("/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("node %s did not start" % name)

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def get(self, path):
        c = self.conn()
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        path = "/dev/shm/" + self.shm.lstrip("/")
        if os.path.exists(path):
            os.unlink(path)


def post(conn, path, obj):
    conn.request("POST", path, json.dumps(obj), {"Content-Type": "application/json"})
    r = conn.getresponse()
    body = json.loads(r.read())
    assert r.status == 200, (path, r.status, body)
    return body


def ok(body):
    rs = body.get("responseStatus") or {}
    assert rs.get("errorCode") == "success", body


def instance_key(i):
    return {"regionId": REGION, "serviceId": "%s-svc-%d" % (PREFIX, i % S),
            "instanceId": "%s-%d" % (PREFIX, i)}


def operate_instances(node, indexes, complete):
    c = node.conn()
    for i in indexes:
        ok(post(c, "/api/management/operate-instance.json", {
            "instanceKey": instance_key(i), "operation": "pullout",
            "operationComplete": complete, "operatorId": "bench"}))
    c.close()


def operate_zones(node, count, complete):
    c = node.conn()
    for start in range(0, count, 1000):
        ok(post(c, "/api/management/zone/operate-zone-operations.json", {
            "zoneOperationsList": [{"zoneKey": {"regionId": REGION, "serviceId": "",
                                                "zoneId": "unused-%d" % z},
                                    "operations": ["pullout"]}
                                   for z in range(start, min(start + 1000, count))],
            "operationComplete": complete, "operatorId": "bench"}))
    c.close()


def stored(node):
    c = node.conn()
    a = post(c, "/api/management/all-instance-operations.json", {})
    z = post(c, "/api/management/zone/get-all-zone-operations.json", {})
    c.close()
    return len(a["allInstanceOperations"]), len(z["allZoneOperations"])


def lookup(build, node, seconds, setup, cpu):
    cmd = [os.path.join(build, "artemis-bench"), "lookup", "-t", "127.0.0.1:%d" % node.port,
           "-n", str(N), "-s", str(S), "--prefix", PREFIX, "-d", str(seconds), "--json",
           "-c", "32"]
    if not setup:
        cmd.append("--no-setup")
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = [ln for ln in out.splitlines() if ln.startswith("{")][-1]
    r = json.loads(line)
    cls = r["classes"][0] if "classes" in r else r
    return r, cls


def rps_of(result):
    r, cls = result
    for k in ("rps", "requests_per_s", "req_s"):
        if k in cls:
            return float(cls[k])
        if k in r:
            return float(r[k])
    raise KeyError("no requests/s in %r" % r)


def throughput(build, work, seconds, rounds, cache, server_cpu, client_cpu):
    extra = "" if cache else "[http]\nresponse_cache_bytes = 0\n"
    node = Node(build, work, "tp-%s" % ("cache" if cache else "nocache"), 1, extra, server_cpu)
    try:
        down = list(range(0, N, N // 1000))  # 1,000 registered instances
        runs = []
        first = True
        for rnd in range(rounds):
            a = rps_of(lookup(build, node, seconds, first, client_cpu))
            first = False
            operate_instances(node, down, False)
            operate_zones(node, 9000, False)
            n_inst, n_zone = stored(node)
            assert (n_inst, n_zone) == (1000, 9000), (n_inst, n_zone)
            b = rps_of(lookup(build, node, seconds, False, client_cpu))
            operate_instances(node, down, True)
            operate_zones(node, 9000, True)
            assert stored(node) == (0, 0)
            runs.append((a, b))
        return runs
    finally:
        node.stop()


def visibility(build, work, ops):
    """Each pull-out (pull-in) answered, then one request on each of 16
    keep-alive connections, sent together and read together: how many of
    those answers still show the old state (should be none), and how long
    until all 16 show the new one."""
    node = Node(build, work, "vis", 2)
    try:
        c = node.conn()
        for start in range(0, 100, 50):
            ok(post(c, "/artemis/api/registry/register.json", {"instances": [
                {"regionId": REGION, "zoneId": ZONE, "serviceId": "vis",
                 "instanceId": "v%d" % i, "ip": "10.9.%d.%d" % (i // 250, i % 250),
                 "port": 80, "url": "http://x/%d" % i} for i in range(start, start + 50)]}))
        probes = [node.conn() for _ in range(16)]
        body = json.dumps({"regionId": REGION, "zoneId": ZONE,
                           "discoveryConfig": {"serviceId": "vis"}})
        lat, stale = [], 0
        for k in range(ops):
            iid = "v%d" % (k % 100)
            pull_out = (k // 100) % 2 == 0
            c.request("POST", "/api/management/operate-instance.json", json.dumps({
                "instanceKey": {"regionId": REGION, "serviceId": "vis", "instanceId": iid},
                "operation": "pullout", "operationComplete": not pull_out,
                "operatorId": "bench"}), {"Content-Type": "application/json"})
            ok(json.loads(c.getresponse().read()))
            answered = time.monotonic()
            pending = list(probes)
            while pending:
                for p in pending:
                    p.request("POST", "/artemis/api/discovery/service.json", body,
                              {"Content-Type": "application/json"})
                left = []
                for p in pending:
                    r = json.loads(p.getresponse().read())
                    ids = {i["instanceId"] for i in r["service"]["instances"] or []}
                    if (iid not in ids) != pull_out:
                        stale += 1
                        left.append(p)
                pending = left
            lat.append((time.monotonic() - answered) * 1000.0)
        lat.sort()
        return lat, stale
    finally:
        node.stop()


def pct(xs, p):
    return xs[min(len(xs) - 1, int(len(xs) * p / 100.0))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ops", type=int, default=1000)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    cpus = os.cpu_count() or 1
    server_cpu, client_cpu = (1, 0) if cpus >= 2 and shutil.which("taskset") else (None, None)
    work = tempfile.mkdtemp(prefix="artemis-mgmt-bench.")
    try:
        print("## Management: the down filter\n")
        print("lookup.json, %d instances over %d services, %d s per run, 32 connections; "
              "A = no operation stored, B = 10,000 stored (1,000 instances down); "
              "A and B alternate on the same node.\n" % (N, S, args.seconds))
        print("| response cache | round | A (req/s) | B (req/s) | B/A |")
        print("|---|---|---|---|---|")
        for cache in (True, False):
            runs = throughput(build, work, args.seconds, args.rounds, cache, server_cpu,
                              client_cpu)
            for k, (a, b) in enumerate(runs):
                print("| %s | %d | %.0f | %.0f | %.3f |" % ("on" if cache else "off", k + 1,
                                                          a, b, b / a))
            sa = sum(a for a, _ in runs)
            sb = sum(b for _, b in runs)
            print("| %s | all | %.0f | %.0f | **%.3f** |"
                  % ("on" if cache else "off", sa / len(runs), sb / len(runs), sb / sa))
            sys.stdout.flush()
        lat, stale = visibility(build, work, args.ops)
        print("\n%d pull-outs and pull-ins on a two-worker node; after each answer one "
              "service.json on each of 16 keep-alive connections: %d answers of %d showed "
              "the state before the write; all 16 answered with the change after p50 %.2f ms, "
              "p99 %.2f ms, max %.2f ms.\n"
              % (len(lat), stale, 16 * len(lat), pct(lat, 50), pct(lat, 99), lat[-1]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""
slow_clients.py - abusive clients against a running node (issue 11 items 4,
5 and 12): what a new client sees meanwhile, and what the workers' memory
does during and after.

  never-read  N connections each send P pipelined lookups of one service
              (a --instances-instance service: 60 gives a 31 KB answer) and
              never read.  Measures /health latency on fresh connections
              during the attack, the workers' peak RSS, how long until the
              server has closed the attackers (write timeout), and, once
              they are gone, how long until every worker's RSS is back
              under --idle-mb.  --rounds 2 --client-close repeats a short
              attack (the case that left freed memory resident).
  slowloris   N connections trickle a request head in, one byte per
              connection every --every seconds, reconnecting when closed.
              Measures /health latency on fresh connections meanwhile.

/health latency is from connect to the complete answer, one probe every
--probe-ms, each on a new connection.  Memory comes from /proc/PID/status
(VmRSS, VmHWM) of the master's worker children.

  python3 bench/slow_clients.py --port 18480 --master-pid PID never-read -n 1500 -p 200
  python3 bench/slow_clients.py --port 18480 --master-pid PID never-read --rounds 2 \\
      --client-close --duration 3
  python3 bench/slow_clients.py --port 18480 --master-pid PID slowloris -n 1000

Prints a table, or one JSON line with --json.
"""

import argparse
import json
import os
import resource
import socket
import sys
import time

from ws_idle_mem import children  # bench/, beside this script

HOST = "127.0.0.1"
HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def workers(master):
    return sorted(children(master, "worker"))


def status_mb(pid, key):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def sockets_of(pids):
    n = 0
    for pid in pids:
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
                except OSError:
                    pass
        except OSError:
            pass
    return n


def request(port, method, path, body=b""):
    s = socket.create_connection((HOST, port), timeout=30)
    try:
        head = "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" % (method, path)
        if body:
            head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        s.sendall(head.encode() + b"\r\n" + body)
        data = b""
        while True:
            k = s.recv(65536)
            if not k:
                return data
            data += k
    finally:
        s.close()


def probe(port, timeout):
    """Seconds for one /health on a new connection, or None on failure."""
    t0 = time.monotonic()
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(HEALTH)
            data = b""
            while True:
                k = s.recv(4096)
                if not k:
                    break
                data += k
        if not data.startswith(b"HTTP/1.1 200"):
            return None
    except OSError:
        return None
    return time.monotonic() - t0


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    return sorted_vals[min(len(sorted_vals) - 1, int(p / 100.0 * len(sorted_vals)))]


class Sampler:
    def __init__(self, args):
        self.args = args
        self.lat = []
        self.failed = 0
        self.peak = {}

    def sample(self, duration):
        end = time.monotonic() + duration
        while time.monotonic() < end:
            t = probe(self.args.port, self.args.probe_timeout)
            if t is None:
                self.failed += 1
            else:
                self.lat.append(t)
            for pid in workers(self.args.master_pid):
                self.peak[pid] = max(self.peak.get(pid, 0), status_mb(pid, "VmHWM"))
            time.sleep(self.args.probe_ms / 1000.0)

    def report(self):
        lat = sorted(self.lat)
        ms = lambda v: None if v is None else round(v * 1000, 1)
        return {"health_probes": len(lat) + self.failed, "health_failed": self.failed,
                "health_p50_ms": ms(pct(lat, 50)), "health_p90_ms": ms(pct(lat, 90)),
                "health_p99_ms": ms(pct(lat, 99)), "health_max_ms": ms(lat[-1] if lat else None),
                "worker_peak_rss_mb": {str(k): round(v, 1) for k, v in self.peak.items()}}


def never_read(args):
    svc = "slowbench-%d" % os.getpid()
    insts = [{"regionId": args.region, "zoneId": args.zone, "serviceId": svc,
              "instanceId": "i%03d" % k, "ip": "10.0.0.1", "port": 8080,
              "url": "http://10.0.0.1:8080/i%03d" % k, "status": "up",
              "metadata": {"k%d" % j: "v" * 40 for j in range(5)}}
             for k in range(args.instances)]
    request(args.port, "POST", "/artemis/api/registry/register.json",
            json.dumps({"instances": insts}).encode())
    body = json.dumps({"regionId": args.region, "zoneId": args.zone,
                       "discoveryConfigs": [{"serviceId": svc}]}).encode()
    answer = request(args.port, "POST", "/artemis/api/discovery/lookup.json", body)
    one = (b"POST /artemis/api/discovery/lookup.json HTTP/1.1\r\nHost: x\r\n"
           b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    pids = workers(args.master_pid)
    base_socks = sockets_of(pids)
    sampler = Sampler(args)
    closed_after = None
    rss_attack = {}
    t0 = time.monotonic()
    for rnd in range(args.rounds):
        attackers = []
        t0 = time.monotonic()
        for _ in range(args.n):
            s = socket.create_connection((HOST, args.port), timeout=10)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.setblocking(False)
            try:
                s.send(one * args.p)
            except BlockingIOError:
                pass
            attackers.append(s)
        sampler.sample(args.duration)
        last = rnd == args.rounds - 1
        while last and not args.client_close and time.monotonic() - t0 < args.close_wait:
            if sockets_of(pids) < base_socks + args.n // 100 + 5:
                closed_after = time.monotonic() - t0
                break
            sampler.sample(0.5)
        rss_attack = {str(p): round(status_mb(p, "VmRSS"), 1) for p in pids}
        for s in attackers:
            s.close()
    t1 = time.monotonic()
    idle_after = None
    while time.monotonic() - t1 < args.idle_wait:
        if max(status_mb(p, "VmRSS") for p in pids) < args.idle_mb:
            idle_after = time.monotonic() - t1
            break
        time.sleep(0.5)
    out = sampler.report()
    out.update({"mode": "never-read", "connections": args.n, "pipelined": args.p,
                "rounds": args.rounds, "client_closes": args.client_close,
                "answer_bytes": len(answer.split(b"\r\n\r\n", 1)[-1]),
                "server_closed_attackers_after_s": closed_after and round(closed_after, 1),
                "worker_rss_before_clients_left_mb": rss_attack,
                "idle_under_mb": args.idle_mb,
                "idle_after_clients_left_s": idle_after and round(idle_after, 1),
                "worker_rss_end_mb": {str(p): round(status_mb(p, "VmRSS"), 1) for p in pids}})
    return out


def slowloris(args):
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: "

    def connect():
        s = socket.create_connection((HOST, args.port), timeout=10)
        s.setblocking(False)
        s.send(head)
        return s

    socks = [connect() for _ in range(args.n)]
    sampler = Sampler(args)
    closed = 0
    end = time.monotonic() + args.duration
    while time.monotonic() < end:
        for k, s in enumerate(socks):
            try:
                if s.recv(4096) == b"":
                    raise ConnectionResetError
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
                s.close()
                socks[k] = connect()
            try:
                socks[k].send(b"a")
            except OSError:
                pass
        sampler.sample(args.every)
    for s in socks:
        s.close()
    out = sampler.report()
    out.update({"mode": "slowloris", "connections": args.n, "closed_by_server": closed})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--master-pid", type=int, required=True)
    ap.add_argument("--region", default="us-east")
    ap.add_argument("--zone", default="zone-1")
    ap.add_argument("--probe-ms", type=float, default=100)
    ap.add_argument("--probe-timeout", type=float, default=30)
    ap.add_argument("--json", action="store_true")
    sub = ap.add_subparsers(dest="mode", required=True)
    nr = sub.add_parser("never-read")
    nr.add_argument("-n", type=int, default=1500)
    nr.add_argument("-p", type=int, default=200, help="pipelined lookups per connection")
    nr.add_argument("--instances", type=int, default=60)
    nr.add_argument("--duration", type=float, default=10, help="probing during the attack (s)")
    nr.add_argument("--close-wait", type=float, default=120,
                    help="wait this long (s, from the start) for the server to close them")
    nr.add_argument("--rounds", type=int, default=1, help="attacks one after the other")
    nr.add_argument("--client-close", action="store_true",
                    help="the clients close after --duration instead of waiting for the server")
    nr.add_argument("--idle-mb", type=float, default=64)
    nr.add_argument("--idle-wait", type=float, default=90)
    sl = sub.add_parser("slowloris")
    sl.add_argument("-n", type=int, default=1000)
    sl.add_argument("--every", type=float, default=1.0)
    sl.add_argument("--duration", type=float, default=20)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    out = never_read(args) if args.mode == "never-read" else slowloris(args)
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print("%-36s %s" % (k, v))
    return 0


if __name__ == "__main__":
    sys.exit(main())

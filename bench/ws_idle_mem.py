#!/usr/bin/env python3
"""
ws_idle_mem.py - memory per idle WebSocket subscriber session on a running
node (issue 4 goal: at most 8 KiB).

Opens N sessions on /artemis/websocket/discovery/instance-change, each
subscribing to one service (service k % S), waits until connection.json
counts them, then reads the workers' memory from /proc (RSS and the
private dirty bytes of smaps_rollup, summed over the master's worker
children) and prints the growth per session.  The sessions are idle: no
push, no ping.  Kernel socket memory is not in these figures.

  python3 bench/ws_idle_mem.py --port 8080 --master-pid PID -n 10000
"""

import argparse
import base64
import json
import os
import socket
import struct
import sys
import time
import urllib.request


def children(pid, word):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = open("/proc/%s/stat" % d).read()
            cmd = open("/proc/%s/cmdline" % d, "rb").read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and word in cmd:
            out.append(int(d))
    return out


def mem_kib(pids):
    rss = dirty = 0
    for p in pids:
        for ln in open("/proc/%d/smaps_rollup" % p):
            k, v = ln.split(":", 1)[0], ln.split(":", 1)[1].split()
            if k == "Rss":
                rss += int(v[0])
            elif k == "Private_Dirty":
                dirty += int(v[0])
    return rss, dirty


def frame_text(text):
    payload = text.encode()
    key = os.urandom(4)
    n = len(payload)
    hdr = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x81, 0x80 | 126, n)
    return hdr + key + bytes(c ^ key[i & 3] for i, c in enumerate(payload))


def open_session(host, port, path, service):
    s = socket.create_connection((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
               % (path, host, key)).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    assert buf.startswith(b"HTTP/1.1 101"), buf[:100]
    s.sendall(frame_text(json.dumps({"serviceId": service, "regionId": "us-east"})))
    return s


def counts(host, port):
    with urllib.request.urlopen("http://%s:%d/artemis/api/status/websocket/connection.json"
                                % (host, port)) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--master-pid", type=int, required=True)
    ap.add_argument("-n", "--sessions", type=int, default=10000)
    ap.add_argument("-s", "--services", type=int, default=100)
    ap.add_argument("--path", default="/artemis/websocket/discovery/instance-change")
    a = ap.parse_args()
    workers = children(a.master_pid, "worker")
    if not workers:
        sys.exit("no worker children of pid %d" % a.master_pid)
    base = counts(a.host, a.port)
    rss0, dirty0 = mem_kib(workers)
    socks = [open_session(a.host, a.port, a.path, "idle-%d" % (k % a.services))
             for k in range(a.sessions)]
    want = int(base["discovery"]) + a.sessions
    deadline = time.monotonic() + 30
    while int(counts(a.host, a.port)["discovery"]) < want:
        if time.monotonic() > deadline:
            sys.exit("connection.json never counted %d sessions" % want)
        time.sleep(0.1)
    time.sleep(1.0)  # the sessions' DiscoveryConfig messages are processed
    rss1, dirty1 = mem_kib(workers)
    print("workers %s, %d idle sessions over %d services" % (workers, a.sessions, a.services))
    print("RSS           %8d KiB -> %8d KiB: %7.0f bytes per session"
          % (rss0, rss1, (rss1 - rss0) * 1024.0 / a.sessions))
    print("Private_Dirty %8d KiB -> %8d KiB: %7.0f bytes per session"
          % (dirty0, dirty1, (dirty1 - dirty0) * 1024.0 / a.sessions))
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()

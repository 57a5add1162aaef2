#!/usr/bin/env python3
"""
ws_heartbeat.py - instances renewed per second over the heartbeat
WebSocket (/artemis/websocket/registry/heartbeat), issue 4.

Registers N instances (register.json, in batches), then opens C sessions;
session c renews its own slice of the instances, B per HeartbeatRequest
(the Java client sends all its instances in one message every 5 s), with
W messages in flight per session, for D seconds.  Each response is checked
to be the constant success answer (a data-not-found would mean a lost
lease).  Prints messages/s and instances renewed/s.  One Python process
drives the load: for small B the client, not the server, is the limit
(the figures say which, from the node's CPU time).

  python3 bench/ws_heartbeat.py --port 8080 -n 100000 -b 100 -c 8 -w 4 -d 10
"""

import argparse
import base64
import json
import os
import selectors
import socket
import struct
import time
import urllib.request

SUCCESS = b'{"failedInstances":null,"responseStatus":{"errorCode":"success","message":"","status":"success"}}'


def inst(prefix, i):
    return {"regionId": "us-east", "zoneId": "zone-1", "serviceId": "%s-svc%d" % (prefix, i % 100),
            "instanceId": "%s-%d" % (prefix, i), "ip": "10.0.0.1", "port": 8080,
            "url": "http://10.0.0.1:8080/%d" % i, "status": "up"}


def register_all(host, port, prefix, n):
    for start in range(0, n, 500):
        body = json.dumps({"instances": [inst(prefix, i) for i in range(start, min(n, start + 500))]})
        req = urllib.request.Request("http://%s:%d/artemis/api/registry/register.json" % (host, port),
                                     body.encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            assert b'"success"' in r.read()


def frame_text(payload):
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    return hdr + key + bytes(c ^ key[i & 3] for i, c in enumerate(payload))


class Session:
    def __init__(self, host, port, messages):
        self.sock = socket.create_connection((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /artemis/websocket/registry/heartbeat HTTP/1.1\r\nHost: x\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n" % key).encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += self.sock.recv(4096)
        assert buf.startswith(b"HTTP/1.1 101"), buf[:80]
        self.buf = buf.split(b"\r\n\r\n", 1)[1]
        self.sock.setblocking(False)
        self.messages = messages  # pre-framed
        self.next = 0
        self.inflight = 0
        self.done = 0
        self.bad = 0

    def send_one(self):
        self.sock.setblocking(True)
        self.sock.sendall(self.messages[self.next % len(self.messages)])
        self.sock.setblocking(False)
        self.next += 1
        self.inflight += 1

    def on_readable(self):
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return 0
        self.buf += data
        got = 0
        while len(self.buf) >= 2:
            n, off = self.buf[1] & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    break
                n, off = struct.unpack("!H", self.buf[2:4])[0], 4
            if len(self.buf) < off + n:
                break
            if self.buf[off:off + n] != SUCCESS:
                self.bad += 1
            self.buf = self.buf[off + n:]
            self.inflight -= 1
            self.done += 1
            got += 1
        return got


def cpu_seconds(port):
    """CPU time (user+sys) of the node's processes listening-side: all
    processes named 'artemis: worker'."""
    tot = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cmd = open("/proc/%s/cmdline" % d, "rb").read()
            if not cmd.startswith(b"artemis: worker"):
                continue
            f = open("/proc/%s/stat" % d).read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tot += (int(f[11]) + int(f[12])) / tick
    return tot


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("-n", "--instances", type=int, default=100000)
    ap.add_argument("-b", "--batch", type=int, default=100)
    ap.add_argument("-c", "--sessions", type=int, default=8)
    ap.add_argument("-w", "--window", type=int, default=4)
    ap.add_argument("-d", "--duration", type=float, default=10.0)
    ap.add_argument("--no-setup", action="store_true")
    ap.add_argument("--prefix", default="wshb")
    a = ap.parse_args()
    if not a.no_setup:
        register_all(a.host, a.port, a.prefix, a.instances)
    per = a.instances // a.sessions
    sessions = []
    for c in range(a.sessions):
        msgs = []
        for start in range(c * per, (c + 1) * per, a.batch):
            batch = [inst(a.prefix, i) for i in range(start, min((c + 1) * per, start + a.batch))]
            msgs.append(frame_text(json.dumps({"instances": batch}).encode()))
        sessions.append(Session(a.host, a.port, msgs))
    sel = selectors.DefaultSelector()
    for s in sessions:
        sel.register(s.sock, selectors.EVENT_READ, s)
        for _ in range(a.window):
            s.send_one()
    cpu0, t0 = cpu_seconds(a.port), time.monotonic()
    end = t0 + a.duration
    while time.monotonic() < end:
        for key, _ in sel.select(0.5):
            s = key.data
            for _ in range(s.on_readable()):
                s.send_one()
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(a.port) - cpu0
    msgs = sum(s.done for s in sessions)
    bad = sum(s.bad for s in sessions)
    print("ws heartbeat: %d sessions, batch %d, window %d, %.1f s" % (a.sessions, a.batch, a.window,
                                                                     elapsed))
    print("  messages/s %.0f   instances renewed/s %.0f   non-success responses %d"
          % (msgs / elapsed, msgs * a.batch / elapsed, bad))
    print("  worker CPU %.2f s over %.1f s (%.0f%% of one core)" % (cpu, elapsed,
                                                                    100 * cpu / elapsed))


if __name__ == "__main__":
    main()

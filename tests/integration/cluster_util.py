"""
cluster_util.py - real Artemis clusters on loopback for the replication
tests (test_replication.py), and enough of the peer protocol to speak its
handshake from a test (a HELLO that proves nothing).

A Cluster is N artemis_it.Node processes whose configs list every other
node as a peer (name, zone, HTTP url, replication address), with short
timers so the tests stay fast: bootstrap_timeout_ms 1000, digest_interval_ms
1000, lease TTL 10 s (the minimum), self-preservation off.  Each node keeps
the suite's conventions (own ports picked by the kernel, own shm region,
own data dir, crash lines fail the teardown).

Helpers poll with a deadline (artemis_it.wait_for); nothing sleeps to
synchronise, except where a test must show that something does NOT happen.
"""

import os
import signal
import socket
import threading

from artemis_it import (Node, child_pids, finish_nodes, instance_ids, wait_for)

CLUSTER_KEY = "it-cluster-key-0123456789"

FAST = {"bootstrap_timeout_ms": "1000", "digest_interval_ms": "1000"}


class ClusterNode(Node):
    """A Node whose config has one `peer =` line per other node."""

    def __init__(self, workdir, **kw):
        self.peer_lines = []
        super().__init__(workdir, **kw)

    def write_config(self):
        lines = ["; written by tests/integration/cluster_util.py"]
        for sec, kv in self.sections.items():
            if not kv and not (sec == "cluster" and self.peer_lines):
                continue
            lines.append("[%s]" % sec)
            lines.extend("%s = %s" % (k, v) for k, v in kv.items())
            if sec == "cluster":
                lines.extend("peer = %s" % p for p in self.peer_lines)
            lines.append("")
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines))

    def peer_line(self, repl_port=None):
        return "%s %s http://%s:%d %s:%d" % (self.name, self.sections["node"]["zone"],
                                             self.host, self.port, self.host,
                                             repl_port or self.cluster_port)

    def wait_ready(self, timeout=15.0):
        wait_for(lambda: self.get("/ready", timeout=2.0)[0] == 200, timeout,
                 what="GET /ready = 200 on %s" % self.name)

    def kill_all(self):
        """kill -9 the master and every child at once (a whole node dies)."""
        pids = [self.pid] + child_pids(self.pid)
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(5)
        return pids

    def replicator_pid(self):
        pids = child_pids(self.pid, "replicator")
        assert len(pids) == 1, pids
        return pids[0]


class Cluster:
    def __init__(self, base_dir, n=3, keys=None, cluster=None, registry=None,
                 wrong_ports=None, peer_ports=None):
        """keys: per-node [cluster] key (default: all CLUSTER_KEY).
        wrong_ports: {i: j} makes node i's peer line for node j name a port
        where nothing listens (i cannot connect to j; j can connect to i).
        peer_ports: {(i, j): port} makes node i reach node j's replication
        listener through that port (a proxy)."""
        self.nodes = []
        for i in range(n):
            workdir = os.path.join(base_dir, "node%d" % i)
            os.makedirs(workdir, exist_ok=True)
            cl = dict(FAST)
            cl["key"] = (keys or {}).get(i, CLUSTER_KEY)
            cl.update(cluster or {})
            reg = {"lease_ttl_ms": "10000", "self_preservation": "off"}
            reg.update(registry or {})
            self.nodes.append(ClusterNode(workdir, node={"workers": "1"}, cluster=cl,
                                          registry=reg))
        from artemis_it import free_port
        for i, a in enumerate(self.nodes):
            for j, b in enumerate(self.nodes):
                if i == j:
                    continue
                bad = (wrong_ports or {}).get(i) == j
                port = (peer_ports or {}).get((i, j))
                a.peer_lines.append(b.peer_line(free_port() if bad else port))
            a.write_config()

    def start(self, ready=True):
        try:
            for node in self.nodes:
                node.start()
            if ready:
                for node in self.nodes:
                    node.wait_ready()
        except BaseException:
            self.finish()
            raise
        return self

    def finish(self):
        finish_nodes(self.nodes)

    def __getitem__(self, i):
        return self.nodes[i]

    def __iter__(self):
        return iter(self.nodes)


def wait_ids(node, service, want, timeout=10.0):
    """Wait until node lists exactly the instance ids `want` for service."""
    want = sorted(want)
    return wait_for(lambda: sorted(instance_ids(node, service)) == want, timeout,
                    what="%s to list %d instances of %s" % (node.name, len(want), service))


def wait_everywhere(cluster, service, want, timeout=10.0):
    for node in cluster:
        wait_ids(node, service, want, timeout)


# ---------------------------------------------------- raw peer protocol ---
# Enough of the replication protocol (docs/CLUSTER.md) to speak its
# handshake from a test without the cluster key: msgpack arrays of
# integers, strings and byte strings, in 4-byte length-prefixed frames.

PROTO_VERSION = 2
HELLO, AUTH, WANT, REFUSE = 1, 2, 3, 4
NODE_STARTING, NODE_UP, NODE_DOWN = 0, 1, 2
REC_INSTANCE = 1


def mp_pack(obj):
    """msgpack of an int >= 0, str, bytes or list of those."""
    if isinstance(obj, bool) or not isinstance(obj, (int, str, bytes, list)):
        raise TypeError(obj)
    if isinstance(obj, int):
        if obj < 0x80:
            return bytes([obj])
        for tag, n in ((0xcc, 1), (0xcd, 2), (0xce, 4), (0xcf, 8)):
            if obj < 1 << (8 * n):
                return bytes([tag]) + obj.to_bytes(n, "big")
        raise ValueError(obj)
    if isinstance(obj, str):
        raw = obj.encode()
        if len(raw) < 32:
            return bytes([0xa0 | len(raw)]) + raw
        return b"\xd9" + bytes([len(raw)]) + raw
    if isinstance(obj, bytes):
        return b"\xc4" + bytes([len(obj)]) + obj
    head = bytes([0x90 | len(obj)]) if len(obj) < 16 else b"\xdc" + len(obj).to_bytes(2, "big")
    return head + b"".join(mp_pack(x) for x in obj)


def frame(fields):
    payload = mp_pack(fields)
    return len(payload).to_bytes(4, "big") + payload


def hello_frame(name, state=NODE_DOWN, version=PROTO_VERSION, nonce=None):
    """A HELLO claiming to be node `name` (it proves nothing)."""
    return frame([HELLO, version, name, 1, nonce or os.urandom(32), state, "zone-1", 0,
                  1 << REC_INSTANCE])


class FrameProxy:
    """A man in the middle on one replication connection: forwards a
    node's outbound connection to a peer's listener, cutting the
    connector-to-acceptor direction into frames (4-byte length + bytes) so
    that a test can tamper with one of them.

    arm(action) tampers with the next frame of the stream whose body is
    larger than `big` bytes (a CHANGE carrying an instance; SYNC and ACK
    are smaller):
      "flip"    one bit of it flipped (at `marker` when the frame shows it)
      "inject"  a frame of random bytes, as long, sent before it
      "replay"  it goes through, and is sent again after the next big frame
      "reorder" it is held and sent after the next big frame
    After a tampered frame the proxy holds: connections are closed as they
    come until release(), so a test can look at the receiver before the
    sender reconnects.  `closed` counts connections the receiver closed
    after a tampered frame; `wire` keeps every byte of that direction."""

    def __init__(self, upstream_port=None, big=150):
        self.upstream = upstream_port
        self.big = big
        self.lock = threading.Lock()
        self.action = None
        self.marker = None
        self.tampered = False
        self.holding = False
        self.closed = 0
        self.frames = 0
        self.wire = bytearray()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, action, marker=None):
        with self.lock:
            self.action, self.marker, self.tampered = action, marker, False

    def release(self):
        with self.lock:
            self.holding = False

    def stop(self):
        self.stopping = True
        self.sock.close()

    def _accept(self):
        while not self.stopping:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                hold = self.holding
            if hold:
                client.close()
                continue
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._back, args=(up, client), daemon=True).start()
            threading.Thread(target=self._forth, args=(client, up), daemon=True).start()

    @staticmethod
    def _read(sock, n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def _back(self, up, client):
        """acceptor -> connector, untouched; its EOF ends both."""
        try:
            while True:
                data = up.recv(65536)
                if not data:
                    break
                client.sendall(data)
        except OSError:
            pass
        with self.lock:
            if self.tampered:
                self.closed += 1
                self.tampered = False
                self.holding = True
        for s in (client, up):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _tamper(self, frame, held):
        """The frames to send for this one (and what stays held)."""
        body = frame[4:]
        if self.action is None or len(body) <= self.big:
            if held is not None and len(body) > self.big:
                return [frame, held], None
            return [frame], held
        action, self.action = self.action, None
        self.tampered = True
        if action == "flip":
            at = body.find(self.marker) if self.marker else -1
            pos = 4 + (at + len(self.marker) - 1 if at >= 0 else len(body) // 2)
            bad = bytearray(frame)
            bad[pos] ^= 0x02
            return [bytes(bad)], held
        if action == "inject":
            return [frame[:4] + os.urandom(len(body)), frame], held
        if action == "replay":
            return [frame], frame  # and again after the next one
        return [], frame  # reorder: after the next one

    def _forth(self, client, up):
        held = None
        try:
            while True:
                head = self._read(client, 4)
                if head is None:
                    break
                body = self._read(client, int.from_bytes(head, "big"))
                if body is None:
                    break
                with self.lock:
                    self.frames += 1
                    self.wire += head + body
                    out, held = self._tamper(head + body, held)
                for f in out:
                    up.sendall(f)
        except OSError:
            pass
        for s in (client, up):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

"""
cluster_util.py - real Artemis clusters on loopback for the replication
tests (test_replication.py).

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
                 wrong_ports=None):
        """keys: per-node [cluster] key (default: all CLUSTER_KEY).
        wrong_ports: {i: j} makes node i's peer line for node j name a port
        where nothing listens (i cannot connect to j; j can connect to i)."""
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
                a.peer_lines.append(b.peer_line(free_port() if bad else None))
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

"""
test_deploy_cluster_logs.py - `scripts/cluster.sh logs [N]`: the last lines
of every node's log with a node prefix, then (by default) following them as
the nodes write.

A two-node cluster is started with scripts/cluster.sh itself, on ports
checked free, its own directory and shm prefix, and stopped with it.
"""

import os
import select
import signal
import socket
import subprocess
import time

import pytest

from artemis_it import HOST, artemis_bin, wait_for

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(REPO, "scripts", "cluster.sh")


def free_run(n):
    """A base port B such that B+1..B+n are free now (for HTTP and for
    replication: two runs apart)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((HOST, 0))
            base = s.getsockname()[1]
        if base + 2 * n + 2 > 65535:
            continue
        socks = []
        try:
            for p in range(base + 1, base + 2 * n + 2):
                s = socket.socket()
                s.bind((HOST, p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.fail("no run of free ports")


@pytest.fixture
def cluster(tmp_path):
    base = free_run(2)
    env = dict(os.environ, ARTEMIS_BIN=artemis_bin(), CLUSTER_DIR=str(tmp_path / "cluster"),
               HTTP_BASE=str(base), REPL_BASE=str(base + 3), MAX_INSTANCES="1000",
               SHM_PREFIX="/artemis-test-%d-logs-node" % os.getpid(), FRESH="1")
    subprocess.run(["sh", SCRIPT, "start", "2"], env=env, check=True, capture_output=True,
                   timeout=60)
    try:
        for k in (1, 2):
            log = tmp_path / "cluster" / ("node%d" % k) / "artemis.log"
            wait_for(lambda: log.exists() and "] serving: " in log.read_text(), 20.0,
                     what="node%d serving" % k)
        yield env
    finally:
        subprocess.run(["sh", SCRIPT, "stop", "2"], env=env, capture_output=True, timeout=60)
        for k in (1, 2):
            path = "/dev/shm" + env["SHM_PREFIX"] + str(k)
            if os.path.exists(path):
                os.unlink(path)


def test_logs_prints_each_node_with_a_prefix(cluster):
    env = dict(cluster, FOLLOW="no", LOG_LINES="3")
    p = subprocess.run(["sh", SCRIPT, "logs", "2"], env=env, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert [ln.split(" | ")[0] for ln in lines] == ["node1"] * 3 + ["node2"] * 3, lines
    assert all(" INFO " in ln or " WARN " in ln for ln in lines), lines

    p = subprocess.run(["sh", SCRIPT, "logs", "3"], env=env, capture_output=True, text=True,
                       timeout=30)
    assert "node3 | no log: " in p.stdout


def test_logs_follows_new_lines(cluster):
    proc = subprocess.Popen(["sh", SCRIPT, "logs", "2"], env=dict(cluster, LOG_LINES="1"),
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    seen = []
    try:
        def read_until(text):
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                r, _, _ = select.select([proc.stdout], [], [], 0.5)
                if r:
                    line = proc.stdout.readline()
                    seen.append(line)
                    if text in line:
                        return line
            raise AssertionError("no %r in %r" % (text, seen))
        # Both tails must be following before the reload: a line written
        # before node2's tail opens its file would never be shown (-n 1).
        for prefix in ("node1 | ", "node2 | "):
            if not any(ln.startswith(prefix) for ln in seen):
                read_until(prefix)
        conf = os.path.join(cluster["CLUSTER_DIR"], "node2", "artemis.conf")
        subprocess.run([artemis_bin(), "reload", "-c", conf], check=True, capture_output=True)
        line = read_until("reload: reading")
        assert line.startswith("node2 | "), line
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        proc.stdout.close()

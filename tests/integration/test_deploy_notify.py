"""
test_deploy_notify.py - the master under a service manager: systemd's
sd_notify protocol observed on a datagram socket made here (NOTIFY_SOCKET),
and a node configured by ARTEMIS_* environment variables alone, as a
container runs it.

The messages checked: STATUS= before and after READY=1, READY=1 once every
worker serves, STATUS= refreshed with the instance counts, RELOADING=1 (with
MONOTONIC_USEC=) then READY=1 around a SIGHUP generation, also when the new
configuration is refused, and STOPPING=1 at a stop.
"""

import os
import signal
import socket
import subprocess
import time

from artemis_it import HOST, artemis_bin, free_port, inst, register, uniq, wait_for


class NotifySocket:
    """A datagram socket standing in for systemd's notification socket."""

    def __init__(self, path=None, abstract=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            self.sock.bind("\0" + abstract)
            self.address = "@" + abstract
        else:
            self.sock.bind(path)
            self.address = path
        self.sock.settimeout(0.2)
        self.messages = []

    def drain(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return
            self.messages.append(dict(line.split("=", 1)
                                      for line in data.decode().split("\n") if line))

    def wait(self, pred, what, timeout=15.0):
        """The first message from the index after the last match that
        satisfies pred; returns it."""
        start = getattr(self, "_pos", 0)

        def found():
            self.drain()
            for i in range(start, len(self.messages)):
                if pred(self.messages[i]):
                    self._pos = i + 1
                    return self.messages[i]
            return None
        return wait_for(found, timeout, interval=0.01,
                        what="notify message %s (got %r)" % (what, self.messages[start:]))

    def close(self):
        self.sock.close()


def is_ready(m):
    return m.get("READY") == "1"


def test_ready_status_reload_stop(node_factory, tmp_path, monkeypatch):
    ns = NotifySocket(path=str(tmp_path / "notify.sock"))
    monkeypatch.setenv("NOTIFY_SOCKET", ns.address)
    try:
        n = node_factory()
        first = ns.wait(is_ready, "READY=1")
        assert first["STATUS"].startswith("up: 0 instances, 0 services (capacity 100000); "
                                          "2 workers, generation 0"), first
        # READY=1 comes once every worker serves, and only once
        assert "] serving: 2 workers ready" in n.read_log()
        ns.drain()
        assert sum(1 for m in ns.messages if is_ready(m)) == 1

        svc = uniq()
        register(n, inst(svc, "i1"), inst(svc, "i2"))
        ns.wait(lambda m: m.get("STATUS", "").startswith("up: 2 instances, 1 services"),
                "STATUS= with the new counts")

        before = time.clock_gettime(time.CLOCK_MONOTONIC)
        n.send_signal(signal.SIGHUP)
        rel = ns.wait(lambda m: m.get("RELOADING") == "1", "RELOADING=1")
        after = time.clock_gettime(time.CLOCK_MONOTONIC)
        assert before * 1e6 <= int(rel["MONOTONIC_USEC"]) <= after * 1e6
        assert rel["STATUS"] == "reloading: starting generation 1"
        done = ns.wait(is_ready, "READY=1 after the reload")
        assert "generation 1" in done["STATUS"] and "2 instances" in done["STATUS"], done
        assert "reload: generation 1 serving" in n.read_log()

        # a configuration the reload refuses: RELOADING=1, then READY=1 at once
        # (once the old generation is gone: a SIGHUP while it drains is refused)
        wait_for(lambda: "generation 1 complete" in n.read_log(), 40.0,
                 what="generation 0 to drain")
        with open(n.conf_path, "a") as f:
            f.write("\n[registry]\nlease_ttl_ms = 5\n")
        n.send_signal(signal.SIGHUP)
        ns.wait(lambda m: m.get("RELOADING") == "1", "RELOADING=1 (bad config)")
        again = ns.wait(is_ready, "READY=1 after a refused reload")
        assert "generation 1" in again["STATUS"], again
        assert "keeping the current configuration" in n.read_log()

        n.send_signal(signal.SIGTERM)
        stop = ns.wait(lambda m: m.get("STOPPING") == "1", "STOPPING=1")
        assert stop["STATUS"] == "stopping"
        assert n.proc.wait(10) == 0
    finally:
        ns.close()


def test_node_configured_by_the_environment_alone(tmp_path):
    """No file: every setting from ARTEMIS_* (as deploy/compose.yaml does),
    an abstract notification socket, and the client commands finding the
    node through the same environment."""
    port, cport = free_port(), free_port()
    shm = "/artemis-test-%d-env" % os.getpid()
    ns = NotifySocket(abstract="artemis-test-notify-%d" % os.getpid())
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "NOTIFY_SOCKET": ns.address,
           "ARTEMIS_NODE_NAME": "env-node",
           "ARTEMIS_NODE_LISTEN": "%s:%d" % (HOST, port),
           "ARTEMIS_NODE_WORKERS": "1",
           "ARTEMIS_NODE_DATA_DIR": str(tmp_path / "data"),
           "ARTEMIS_REGISTRY_SHM_NAME": shm,
           "ARTEMIS_REGISTRY_MAX_INSTANCES": "1000",
           "ARTEMIS_LOG_FILE": str(tmp_path / "artemis.log"),
           "ARTEMIS_CLUSTER_LISTEN": "%s:%d" % (HOST, cport),
           "ARTEMIS_BIN": "/not/a/config/key"}
    proc = subprocess.Popen([artemis_bin(), "server", "--fresh"], env=env, cwd=str(tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        ready = ns.wait(is_ready, "READY=1")
        assert ready["STATUS"].startswith("up: 0 instances, 0 services (capacity 1000); "
                                          "1 worker, generation 0"), ready
        log = (tmp_path / "artemis.log").read_text()
        assert "node env-node (region us-east, zone zone-1), 1 workers on %s:%d" % (
            HOST, port) in log
        chk = subprocess.run([artemis_bin(), "check"], env=env, capture_output=True,
                             text=True, timeout=30)
        assert chk.returncode == 0, chk.stderr
        assert "region %s:" % shm in chk.stdout and "instances 0 of 1000" in chk.stdout
        stop = subprocess.run([artemis_bin(), "stop"], env=env, capture_output=True,
                              text=True, timeout=30)
        assert stop.returncode == 0, stop.stderr
        ns.wait(lambda m: m.get("STOPPING") == "1", "STOPPING=1")
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stderr.close()
        ns.close()
        if os.path.exists("/dev/shm" + shm):
            os.unlink("/dev/shm" + shm)


def test_a_bad_environment_override_stops_the_node(tmp_path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "ARTEMIS_NODE_DATA_DIR": str(tmp_path / "data"),
           "ARTEMIS_REGISTRY_LEASE_TTL_MS": "500"}
    p = subprocess.run([artemis_bin(), "server"], env=env, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 2
    assert p.stderr == ("artemis: environment ARTEMIS_REGISTRY_LEASE_TTL_MS: lease_ttl_ms 500 "
                        "out of range 1000..604800000\n")
    env["ARTEMIS_REGISTRY_LEASE_TTL_MS"] = "30000"
    env["ARTEMIS_HTTP_MAX_BODY"] = "1"
    p = subprocess.run([artemis_bin(), "check"], env=env, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 2
    assert "environment ARTEMIS_HTTP_MAX_BODY: unknown key 'max_body' in [http]" in p.stderr
    assert not os.path.exists(tmp_path / "data")

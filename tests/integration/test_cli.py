"""
test_cli.py - DESIGN.md §6 command line: `artemis server` options (--listen,
--addr, --workers, --name, --fresh), the pid file, config errors (exit code
2 with "file:line: message"), `artemis stop|quit|reload -c FILE`, and
`artemis check`; plus that the registry survives a restart of the master
(file-backed shm) unless --fresh is given.
"""

import os
import signal
import socket
import subprocess

import pytest

from artemis_it import (HOST, Node, artemis_bin, assert_ok, child_pids, free_port, inst,
                        instance_ids, register, run_cli, uniq, wait_for)


def workers_of(node):
    return child_pids(node.pid, "worker")


def settled_workers(node, count=2):
    """The worker pids once all `count` are up (/health answers as soon as
    the first one is)."""
    return set(wait_for(lambda: (lambda w: w if len(w) == count else None)(workers_of(node)),
                        5.0, what="%d workers (have %s)" % (count, workers_of(node))))


def refuses(port):
    try:
        socket.create_connection((HOST, port), timeout=1).close()
    except OSError:
        return True
    return False


def wait_exit(node, timeout=10.0):
    try:
        return node.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("master %d still running %.0fs after the signal\n%s"
                             % (node.pid, timeout, node.diagnostics()))


# ------------------------------------------------------- server options ---

@pytest.mark.parametrize("flag", ["--listen", "--addr"])
def test_listen_flag_overrides_config(node_factory, flag):
    def prepare(n):
        n.config_port = n.port
        n.port = free_port()
        n.extra_args = [flag, "%s:%d" % (HOST, n.port)]

    n = node_factory(prepare=prepare)
    assert n.get("/health")[0] == 200
    assert refuses(n.config_port), "config listen port answers although %s overrides it" % flag


@pytest.mark.parametrize("count", [1, 3])
def test_workers_flag(node_factory, count):
    n = node_factory(extra_args=["--workers", str(count)])
    wait_for(lambda: len(workers_of(n)) == count, 5.0,
             what="%d worker processes (have %s)" % (count, workers_of(n)))


def test_workers_from_config(node):
    wait_for(lambda: len(workers_of(node)) == 2, 5.0,
             what="the 2 workers of [node] workers = 2 (have %s)" % workers_of(node))


def test_name_flag_derives_shm_name(node_factory):
    name = uniq("itname")

    def prepare(n):
        del n.sections["registry"]["shm_name"]
        n.sections["node"]["name"] = "config-name-unused"
        n.shm_name = "/artemis-" + name
        n.extra_args = ["--name", name]

    n = node_factory(prepare=prepare)
    assert n.get("/health")[0] == 200
    assert os.path.exists("/dev/shm/artemis-" + name), sorted(
        f for f in os.listdir("/dev/shm") if "artemis" in f)
    assert not os.path.exists("/dev/shm/artemis-config-name-unused")


def test_pid_file(node):
    path = os.path.join(node.data_dir, "artemis.pid")
    wait_for(lambda: os.path.exists(path), 5.0, what=path)
    with open(path) as f:
        assert int(f.read().strip()) == node.pid


# -------------------------------------------------------- config errors ---

def config_error(tmp_path, text):
    """Run `artemis server -c` on a bad config; expect exit code 2 at once."""
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    shm = "/artemis-test-%d-bad" % os.getpid()
    try:
        p = run_cli("server", "-c", str(conf), timeout=10)
    except subprocess.TimeoutExpired:
        raise AssertionError("server kept running with a bad config:\n" + text)
    finally:
        if os.path.exists("/dev/shm" + shm):
            os.unlink("/dev/shm" + shm)
    assert p.returncode == 2, (p.returncode, p.stderr)
    return str(conf), p.stderr


def good_lines(tmp_path):
    port = free_port()
    return ["[node]", "listen = %s:%d" % (HOST, port), "data_dir = %s" % tmp_path,
            "[registry]", "shm_name = /artemis-test-%d-bad" % os.getpid(),
            "max_instances = 1000", "[cluster]", "listen = %s:%d" % (HOST, free_port())]


@pytest.mark.parametrize("bad_line", ["no_such_key = 1", "lease_ttl_ms = soon",
                                      "lease_ttl_ms = 5", "max_instances = -4"])
def test_bad_registry_key_exits_2_with_file_line(tmp_path, bad_line):
    lines = good_lines(tmp_path)
    lines.insert(lines.index("[registry]") + 1, bad_line)
    lineno = lines.index(bad_line) + 1
    conf, err = config_error(tmp_path, "\n".join(lines) + "\n")
    assert "%s:%d:" % (conf, lineno) in err, "expected '%s:%d: message' in %r" % (
        conf, lineno, err)


def test_unknown_section_exits_2(tmp_path):
    lines = good_lines(tmp_path) + ["[bogus]", "x = 1"]
    conf, err = config_error(tmp_path, "\n".join(lines) + "\n")
    assert "%s:%d:" % (conf, len(lines) - 1) in err or "%s:%d:" % (conf, len(lines)) in err, err


def test_missing_config_file_fails(tmp_path):
    p = run_cli("server", "-c", str(tmp_path / "absent.conf"), timeout=10)
    assert p.returncode != 0
    assert "absent.conf" in p.stderr, p.stderr


# ------------------------------------------------------ signal commands ---

def test_stop_command(fresh_node):
    n = fresh_node
    p = run_cli("stop", "-c", n.conf_path)
    assert p.returncode == 0, p.stderr
    assert wait_exit(n) == 0
    wait_for(lambda: refuses(n.port), 5.0, what="the port to close")


def test_quit_command_drains(fresh_node):
    n = fresh_node
    register(n, inst(uniq(), "i1"))
    p = run_cli("quit", "-c", n.conf_path)
    assert p.returncode == 0, p.stderr
    assert wait_exit(n) == 0


def test_sigterm_exits_0(fresh_node):
    assert fresh_node.stop() == 0


def test_reload_replaces_workers_and_keeps_serving(fresh_node):
    n = fresh_node
    svc = uniq()
    register(n, inst(svc, "i1"))
    old = settled_workers(n)
    p = run_cli("reload", "-c", n.conf_path)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: (lambda now: len(now) == 2 and not (now & old))(set(workers_of(n))),
             10.0, what="a new generation of workers (old %s)" % sorted(old))
    assert n.alive()
    assert instance_ids(n, svc) == ["i1"]


def test_reload_applies_new_config(fresh_node):
    n = fresh_node
    node_json = "/artemis/api/status/node.json"
    assert n.api(node_json, {})["nodeStatus"]["allowRegistryFromOtherZone"] is True
    n.sections["node"]["allow_registry_from_other_zone"] = "off"
    n.write_config()
    assert run_cli("reload", "-c", n.conf_path).returncode == 0
    wait_for(lambda: n.api(node_json, {})["nodeStatus"]["allowRegistryFromOtherZone"] is False,
             10.0, what="the reloaded config to take effect")


def append_bad_key(n):
    """Append an unknown key to the node's config; return "file:line:"."""
    with open(n.conf_path) as f:
        nlines = len(f.read().splitlines())
    with open(n.conf_path, "a") as f:
        f.write("\n[registry]\nno_such_key = 1\n")
    return "%s:%d:" % (n.conf_path, nlines + 3)


def assert_still_serving(n, workers_before):
    assert n.alive()
    assert n.get("/health")[0] == 200
    assert set(workers_of(n)) == workers_before
    assert_ok(register(n, inst(uniq(), "i1")))


def test_sighup_with_bad_config_keeps_running(fresh_node):
    n = fresh_node
    before = settled_workers(n)
    where = append_bad_key(n)
    n.send_signal(signal.SIGHUP)
    wait_for(lambda: where in n.read_log(), 5.0, what="'%s ...' in the log" % where)
    assert_still_serving(n, before)


def test_reload_command_with_bad_config(fresh_node):
    """Either the CLI refuses (exit 2, file:line) or the master does; the
    server keeps running on its old config in both cases."""
    n = fresh_node
    before = settled_workers(n)
    where = append_bad_key(n)
    p = run_cli("reload", "-c", n.conf_path)
    if p.returncode == 0:
        wait_for(lambda: where in n.read_log(), 5.0, what="'%s ...' in the log" % where)
    else:
        assert p.returncode == 2 and where in p.stderr, (p.returncode, p.stderr)
    assert_still_serving(n, before)


def test_signal_command_without_server_fails(tmp_path):
    n = Node(str(tmp_path))
    p = run_cli("stop", "-c", n.conf_path)
    assert p.returncode != 0, "stop succeeded with no server running"


def test_sighup_directly(fresh_node):
    n = fresh_node
    old = settled_workers(n)
    n.send_signal(signal.SIGHUP)
    wait_for(lambda: (lambda now: len(now) == 2 and not (now & old))(set(workers_of(n))),
             10.0, what="new workers after SIGHUP")
    assert n.get("/health")[0] == 200


# ------------------------------------------------------- check, restart ---

def test_check_command(fresh_node):
    n = fresh_node
    register(n, *[inst(uniq(), "i%d" % k) for k in range(20)])
    p = run_cli("check", "-c", n.conf_path)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)


def test_registry_survives_restart_unless_fresh(fresh_node):
    n = fresh_node
    svc = uniq()
    register(n, inst(svc, "i1"), inst(svc, "i2"))
    assert n.stop() == 0
    n.fresh = False
    n.start()
    assert instance_ids(n, svc) == ["i1", "i2"]
    assert n.stop() == 0
    n.fresh = True
    n.start()
    assert instance_ids(n, svc) == []


def test_binary_exists():
    assert os.access(artemis_bin(), os.X_OK)

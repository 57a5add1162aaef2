"""
test_master.py - the master process as an operator sees it: process
titles, respawn of killed children (same slot, crash-loop backoff), the
pid file, reload generations, stops (fast, graceful, master killed), log
reopening, `artemis check`, and command-line usage errors.

Uses the node fixtures of conftest.py.  Children are found through /proc
(parent pid and process title), never by name across the machine, so other
nodes running at the same time are never touched.
"""

import os
import signal
import subprocess
import threading
import time

import pytest

from artemis_it import artemis_bin, inst, instance_ids, register, uniq, wait_for


# ------------------------------------------------------------- helpers ---

def title(pid):
    """The process title as ps shows it ("" when the process is gone)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            raw = f.read()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def parent_of(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return None
    # pid (comm) state ppid ...: comm may hold spaces, so split after ')'
    return int(stat.rsplit(")", 1)[1].split()[1])


def is_zombie_or_gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def children(master_pid):
    """{title: pid} of the master's live children."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if parent_of(pid) == master_pid and not is_zombie_or_gone(pid):
            out[title(pid)] = pid
    return out


def wait_children(node, titles, timeout=10.0):
    want = set(titles)
    return wait_for(lambda: (lambda c: c if want <= set(c) else None)(children(node.pid)),
                    timeout, what="children %s of master %d" % (sorted(want), node.pid))


def wait_respawn(node, name, old_pid, timeout=10.0):
    """Wait until `name` runs again with another pid; return the new pid."""
    def respawned():
        pid = children(node.pid).get(name)
        return pid if pid and pid != old_pid else None
    return wait_for(respawned, timeout, what="%s to be respawned" % name)


def wait_log(node, text, timeout=10.0):
    wait_for(lambda: text in node.read_log(), timeout, what="log line %r" % text)


def run(*args, timeout=20):
    return subprocess.run([artemis_bin()] + list(args), capture_output=True, text=True,
                          timeout=timeout)


def pid_file(node):
    return os.path.join(node.data_dir, "artemis.pid")


WORKERS = ["artemis: worker 1", "artemis: worker 2"]
ALL = WORKERS + ["artemis: reaper"]


# --------------------------------------------------------------- titles ---

def test_process_titles(fresh_node):
    n = fresh_node
    assert title(n.pid) == "artemis: master"
    kids = wait_children(n, ALL)
    assert sorted(kids) == sorted(ALL), kids


# -------------------------------------------------------------- respawn ---

def test_killed_worker_respawns_into_its_slot(fresh_node):
    n = fresh_node
    kids = wait_children(n, ALL)
    old = kids["artemis: worker 1"]
    os.kill(old, signal.SIGKILL)
    new = wait_respawn(n, "artemis: worker 1", old)
    assert new != old
    after = children(n.pid)
    assert after["artemis: worker 2"] == kids["artemis: worker 2"]
    assert after["artemis: reaper"] == kids["artemis: reaper"]
    wait_log(n, "worker 1 (pid %d) was killed by signal 9 (SIGKILL)" % old)
    # the respawned worker serves on the same listening socket
    for _ in range(20):
        assert n.get("/health")[0] == 200


def test_worker_exit_code_is_logged(fresh_node):
    n = fresh_node
    kids = wait_children(n, ALL)
    old = kids["artemis: worker 2"]
    os.kill(old, signal.SIGTERM)  # a worker's own TERM handling: it exits
    wait_respawn(n, "artemis: worker 2", old)
    log = n.read_log()
    assert ("worker 2 (pid %d) exited with code" % old in log
            or "worker 2 (pid %d) was killed by signal 15" % old in log), n.diagnostics()


def test_killed_reaper_respawns(fresh_node):
    n = fresh_node
    old = wait_children(n, ALL)["artemis: reaper"]
    os.kill(old, signal.SIGKILL)
    wait_respawn(n, "artemis: reaper", old)
    wait_log(n, "reaper (pid %d) was killed by signal 9" % old)


def test_crash_loop_backs_off(fresh_node):
    n = fresh_node
    pid = wait_children(n, ALL)["artemis: worker 1"]
    for _ in range(5):
        os.kill(pid, signal.SIGKILL)
        pid = wait_respawn(n, "artemis: worker 1", pid)
    wait_log(n, "worker 1 is crash-looping (5 exits within 10 s): respawning in 100 ms")
    os.kill(pid, signal.SIGKILL)
    pid = wait_respawn(n, "artemis: worker 1", pid)
    wait_log(n, "respawning in 200 ms")
    assert n.get("/health")[0] == 200


def test_killing_workers_under_write_load_keeps_the_registry_consistent(fresh_node):
    """Workers killed mid-request (maybe mid-write): the master repairs, the
    registry's invariants hold, and every acknowledged register is there."""
    n = fresh_node
    svc = uniq()
    acked = set()
    stop = threading.Event()

    def writer(k):
        i = 0
        while not stop.is_set():
            iid = "w%d-%d" % (k, i)
            i += 1
            try:
                body = register(n, inst(svc, iid), timeout=5.0)
            except Exception:
                continue  # the connection died with its worker
            if body.get("responseStatus", {}).get("status") == "success":
                acked.add(iid)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(6):
            for name in WORKERS:
                pid = wait_children(n, ALL)[name]
                os.kill(pid, signal.SIGKILL)
                wait_respawn(n, name, pid)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    p = run("check", "-c", n.conf_path)
    assert p.returncode == 0, (p.stdout, p.stderr, n.diagnostics())
    assert acked, "no register succeeded"
    have = set(instance_ids(n, svc))
    assert acked <= have, sorted(acked - have)[:10]


# ------------------------------------------------------------- pid file ---

def test_pid_file_names_the_master(fresh_node):
    with open(pid_file(fresh_node)) as f:
        assert int(f.read()) == fresh_node.pid


def test_second_master_on_the_same_data_dir_is_refused(fresh_node):
    n = fresh_node
    p = run("server", "-c", n.conf_path)
    assert p.returncode == 1, (p.returncode, p.stderr)
    wait_log(n, "another master (pid %d) is running on this data_dir" % n.pid)
    # the running node is untouched
    assert n.alive() and n.get("/health")[0] == 200
    with open(pid_file(n)) as f:
        assert int(f.read()) == n.pid


def test_second_master_on_the_same_region_is_refused(fresh_node, tmp_path):
    """Another data_dir and port, the same shm_name: refused, with or
    without --fresh, and the running node keeps its registrations."""
    from artemis_it import Node
    n = fresh_node
    register(n, inst("svc-claim", "i1"))
    for fresh in (False, True):
        other = Node(str(tmp_path / ("other-%d" % fresh)), fresh=fresh,
                     registry={"shm_name": n.shm_name})
        p = subprocess.run(other.command(), capture_output=True, text=True, timeout=20,
                           cwd=other.workdir)
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert "in use by another running master" in other.read_log() + p.stderr
    assert n.alive()
    assert instance_ids(n, "svc-claim") == ["i1"]


def test_stale_pid_file_is_taken_over(node_factory):
    def prepare(node):
        with open(os.path.join(node.data_dir, "artemis.pid"), "w") as f:
            f.write("999999\n")
    n = node_factory(prepare=prepare)
    with open(pid_file(n)) as f:
        assert int(f.read()) == n.pid
    p = run("reload", "-c", n.conf_path)
    assert p.returncode == 0, p.stderr


def test_signal_commands_without_a_master(fresh_node):
    n = fresh_node
    assert n.stop() == 0
    for cmd in ("reload", "stop", "quit"):
        p = run(cmd, "-c", n.conf_path)
        assert p.returncode == 1, (cmd, p.returncode)
        assert "no master is running on data_dir" in p.stderr, p.stderr


# ---------------------------------------------------------------- stops ---

def _stop_and_check(n, sig, log_text):
    kids = wait_children(n, ALL)
    n.send_signal(sig)
    n.proc.wait(8)
    assert n.proc.returncode == 0, n.diagnostics()
    for pid in kids.values():
        wait_for(lambda pid=pid: is_zombie_or_gone(pid), 5.0, what="child %d to exit" % pid)
    assert not os.path.exists(pid_file(n))
    assert log_text in n.read_log()
    p = run("check", "-c", n.conf_path)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "clean (no node attached)" in p.stdout, p.stdout


def test_sigterm_fast_stop(fresh_node):
    register(fresh_node, inst(uniq(), "i1"))
    _stop_and_check(fresh_node, signal.SIGTERM, "fast stop")


def test_sigint_fast_stop(fresh_node):
    _stop_and_check(fresh_node, signal.SIGINT, "fast stop")


def test_sigquit_graceful_stop(fresh_node):
    register(fresh_node, inst(uniq(), "i1"))
    _stop_and_check(fresh_node, signal.SIGQUIT, "graceful stop (drain)")


def test_stop_kills_a_child_that_does_not_exit(fresh_node):
    n = fresh_node
    kids = wait_children(n, ALL)
    stuck = kids["artemis: worker 1"]
    os.kill(stuck, signal.SIGSTOP)
    t0 = time.monotonic()
    n.send_signal(signal.SIGQUIT)
    n.proc.wait(10)
    assert n.proc.returncode == 0
    assert 4.0 <= time.monotonic() - t0 <= 8.0
    assert "did not exit in time: killing it" in n.read_log()
    assert is_zombie_or_gone(stuck)


def test_master_killed_children_follow_and_restart_extends_leases(fresh_node):
    n = fresh_node
    svc = uniq()
    register(n, inst(svc, "i1"))
    kids = wait_children(n, ALL)
    os.kill(n.pid, signal.SIGKILL)
    n.proc.wait(5)
    for pid in kids.values():
        wait_for(lambda pid=pid: is_zombie_or_gone(pid) or parent_of(pid) != n.pid, 5.0,
                 what="child %d to exit" % pid)
        wait_for(lambda pid=pid: is_zombie_or_gone(pid), 5.0, what="child %d to exit" % pid)
    # a new master takes over the stale pid file and the region
    n.fresh = False
    n.start()
    assert instance_ids(n, svc) == ["i1"]
    wait_log(n, "after an unclean stop")
    wait_log(n, "extending every lease by 20000 ms")


# --------------------------------------------------------------- reload ---

def test_reload_starts_a_new_generation(fresh_node):
    n = fresh_node
    old = wait_children(n, ALL)
    n.send_signal(signal.SIGHUP)
    wait_log(n, "reload: generation 1 serving (2 workers); generation 0 draining")

    def replaced():
        now = children(n.pid)
        return now if set(now) == set(ALL) and not set(now.values()) & set(old.values()) \
            else None
    wait_for(replaced, 10.0, what="every child replaced")
    assert n.get("/health")[0] == 200


def test_reload_changes_worker_count(fresh_node):
    n = fresh_node
    wait_children(n, ALL)
    for gen, count in ((1, 3), (2, 1)):
        n.sections["node"]["workers"] = str(count)
        n.write_config()
        n.send_signal(signal.SIGHUP)
        wait_log(n, "generation %d serving (%d workers)" % (gen, count))
        want = sorted(["artemis: reaper"] + ["artemis: worker %d" % (k + 1)
                                             for k in range(count)])
        wait_for(lambda: sorted(children(n.pid)) == want, 10.0,
                 what="children %s" % want)
        for _ in range(10):
            assert n.get("/health")[0] == 200


def test_hup_while_reloading_is_refused(fresh_node):
    n = fresh_node
    kids = wait_children(n, ALL)
    # a stopped old worker cannot drain, so the reload stays in progress
    stuck = kids["artemis: worker 1"]
    os.kill(stuck, signal.SIGSTOP)
    try:
        n.send_signal(signal.SIGHUP)
        wait_log(n, "generation 0 draining")
        n.send_signal(signal.SIGHUP)
        wait_log(n, "reload already in progress; SIGHUP ignored")
    finally:
        os.kill(stuck, signal.SIGCONT)
    wait_for(lambda: is_zombie_or_gone(stuck), 10.0, what="old worker to drain")
    assert "starting generation 2" not in n.read_log()


def test_reload_keeps_restart_only_keys(fresh_node):
    n = fresh_node
    n.sections["registry"]["max_instances"] = "5000"
    n.write_config()
    n.send_signal(signal.SIGHUP)
    wait_log(n, "reload: max_instances cannot change without a restart; keeping 100000")
    wait_log(n, "generation 1 serving")


# ----------------------------------------------------------------- logs ---

def test_sigusr1_reopens_the_log_file(fresh_node):
    n = fresh_node
    wait_children(n, ALL)
    rotated = n.log_path + ".1"
    os.rename(n.log_path, rotated)
    n.send_signal(signal.SIGUSR1)
    wait_for(lambda: os.path.exists(n.log_path), 5.0, what="a new log file")
    with open(n.log_path) as f:
        assert "reopened the log file" in f.read()
    # children write to the new file too: a respawn is logged by the master,
    # a reload by the new workers
    old = children(n.pid)["artemis: reaper"]
    os.kill(old, signal.SIGKILL)
    wait_respawn(n, "artemis: reaper", old)
    wait_for(lambda: "reaper[" in open(n.log_path).read(), 5.0, what="reaper log line")


# ---------------------------------------------------------------- check ---

def test_check_prints_the_region(fresh_node):
    n = fresh_node
    register(n, inst(uniq(), "i1"), inst(uniq(), "i2"))
    p = run("check", "-c", n.conf_path)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "region %s:" % n.shm_name in p.stdout
    assert "instances 2 of 100000" in p.stdout, p.stdout
    assert "check: ok" in p.stdout
    assert ": reaper" in p.stdout and ": worker" in p.stdout


def test_check_without_a_region_fails(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("[registry]\nshm_name = /artemis-test-%d-absent\n" % os.getpid())
    p = run("check", "-c", str(conf))
    assert p.returncode == 1
    assert "cannot attach region /artemis-test-%d-absent" % os.getpid() in p.stderr


# --------------------------------------------------------- command line ---

@pytest.mark.parametrize("args", [[], ["bogus"], ["server", "--bogus"], ["stop", "extra"],
                                  ["check", "--workers", "2"], ["server", "--workers"],
                                  ["server", "--workers", "x"], ["server", "--listen", "8080"]])
def test_usage_errors_exit_2(args, tmp_path):
    p = run(*args)
    assert p.returncode == 2, (args, p.returncode, p.stdout, p.stderr)
    assert p.stderr.startswith("artemis: "), p.stderr


def test_version_and_help():
    p = run("version")
    assert p.returncode == 0 and p.stdout.startswith("artemis "), p.stdout
    for args in (["help"], ["--help"], ["server", "--help"]):
        p = run(*args)
        assert p.returncode == 0 and "usage: artemis" in p.stdout, (args, p.stdout)

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


def test_workers_log_serving_before_the_master_announces(fresh_node):
    """Each worker's own "serving" line is in the log before the master's
    "serving:" (what Node.start waits for), so a test may count them."""
    log = fresh_node.read_log()
    announced = log.index("] serving: ")
    for slot in (0, 1):
        at = log.find("worker_main: worker %d serving" % slot)
        assert 0 <= at < announced, log


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


# ----------------------------------------------------- the writer lock ---

def hooks_bin():
    """build/artemis-hooks: build/artemis with the test-only hook that makes
    a worker hold the writer lock (a registration of the service
    "artemis-test-hold-lock"); None when it was not built."""
    path = os.environ.get("ARTEMIS_HOOKS_BIN") or os.path.join(
        os.path.dirname(artemis_bin()), "artemis-hooks")
    return path if os.access(path, os.X_OK) else None


def lock_holder(node):
    """The pid `artemis check` names as holding the writer lock, or None."""
    p = run("check", "-c", node.conf_path)
    for ln in p.stdout.splitlines():
        if "writer lock held by pid" in ln:
            return int(ln.rsplit(" ", 1)[1])
    return None


def post_register(node, instance, timeout):
    """POST register.json on a new connection: the body, or the error."""
    from artemis_it import http_request
    import json as _json
    try:
        st, _, raw = http_request(node.host, node.port, "POST",
                                  "/artemis/api/registry/register.json",
                                  _json.dumps({"instances": [instance]}).encode(),
                                  {"Content-Type": "application/json"}, timeout=timeout)
        return _json.loads(raw)
    except OSError as e:
        return e


def test_a_stopped_lock_holder_does_not_freeze_the_node(node_factory):
    """Issue 11 item 7: a worker stopped (SIGSTOP) while it holds the writer
    lock.  Writers on the other worker wait a bounded time and answer
    service-unavailable; heartbeats and /health never wait; the master
    notices the holder made no progress for lock_stall_ms, kills it, and the
    node repairs, respawns and serves writes again."""
    hooks = hooks_bin()
    if hooks is None:
        pytest.skip("needs build/artemis-hooks (make build/artemis-hooks)")

    def use_hooks(node):
        node.command = lambda: [hooks, "server", "-c", node.conf_path, "--fresh"]
    n = node_factory(prepare=use_hooks, registry={"lock_wait_ms": "300",
                                                 "lock_stall_ms": "3000"})
    wait_children(n, ALL)
    svc = uniq("lock")
    alive = inst(svc, "alive")
    register(n, alive)
    holder_req = threading.Thread(target=post_register, daemon=True,
                                  args=(n, inst("artemis-test-hold-lock", "h"), 30))
    holder_req.start()
    holder = wait_for(lambda: lock_holder(n), 10.0, what="a worker to hold the lock")
    assert holder in children(n.pid).values()
    os.kill(holder, signal.SIGSTOP)
    stopped_at = time.monotonic()
    # Writers: each answers (no hang); those that meet the stopped holder
    # say service-unavailable.
    answers = [None] * 8
    threads = [threading.Thread(target=lambda k=k: answers.__setitem__(
        k, post_register(n, inst(svc, "w%d" % k), 15)), daemon=True) for k in range(8)]
    for t in threads:
        t.start()
    # Reads, heartbeats and /health on new connections all answer.
    for _ in range(15):
        assert n.get("/health", timeout=10)[0] == 200
    from artemis_it import heartbeat
    assert heartbeat(n, alive, timeout=10)["responseStatus"]["errorCode"] == "success"
    for t in threads:
        t.join(20)
    assert all(isinstance(a, dict) for a in answers), answers
    codes = set()
    for a in answers:
        rs = a["responseStatus"]
        if rs["errorCode"] == "success":
            continue
        f = a["failedInstances"][0]
        codes.add(f["errorCode"])
        assert "writer lock was not free" in f["errorMessage"], f
    assert codes == {"service-unavailable"}, answers
    wait_log(n, "(pid %d) has held the registry writer lock" % holder, timeout=15)
    assert "killing it" in n.read_log()
    wait_for(lambda: is_zombie_or_gone(holder), 10.0, what="the stopped holder to be killed")
    assert time.monotonic() - stopped_at < 30
    wait_children(n, ALL)
    body = register(n, inst(svc, "after"))
    assert body["responseStatus"]["errorCode"] == "success", body
    p = run("check", "-c", n.conf_path)
    assert p.returncode == 0 and "writer lock held" not in p.stdout, p.stdout


# ------------------------------------------------ config and the region ---

def test_every_registry_key_reaches_the_region(node_factory):
    """Issue 12 item 13: each [registry] key set to a value other than its
    default is what the region (or the process that applies it) uses; none
    is clamped or dropped on the way."""
    n = node_factory(registry={
        "max_instances": "5000", "max_services": "300", "changelog_size": "2048",
        "lease_ttl_ms": "7000", "legacy_lease_ttl_ms": "45000", "self_preservation": "off",
        "preserve_window_ms": "15000", "legacy_preserve_window_ms": "70000",
        "lock_wait_ms": "250", "lock_stall_ms": "4000", "reap_interval_ms": "50"})
    p = run("check", "-c", n.conf_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "region %s:" % n.shm_name in p.stdout  # shm_name
    for want in ("instances 0 of 5000", "services 0 of 300",
                 "max_instances 5000, max_services 300, changelog_size 2048",
                 "lease_ttl_ms 7000, legacy_lease_ttl_ms 45000, self_preservation off, "
                 "preserve_window_ms 15000, legacy_preserve_window_ms 70000, lock_wait_ms 250"):
        assert want in p.stdout, (want, p.stdout)
    log = n.read_log()
    assert "reaping every 50 ms" in log
    assert "writes wait for it up to 250 ms; a child holding it 4000 ms is killed" in log
    leases = n.api("/artemis/api/status/leases.json", {"serviceIds": []})
    assert leases["isSafeCheckEnabled"] is False, leases


def test_the_region_is_private_to_its_user(node_factory, tmp_path):
    """Issue 12 item 1: the master creates the region with O_EXCL and mode
    0600, and refuses one another user made, or one others may write."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make a file owned by another uid")
    from artemis_it import Node
    n = node_factory()
    st = os.stat("/dev/shm/" + n.shm_name.lstrip("/"))
    assert st.st_mode & 0o777 == 0o600 and st.st_uid == os.geteuid(), oct(st.st_mode)
    for owner, mode, why in ((54321, 0o600, "owned by uid 54321, not by this user"),
                             (0, 0o666, "lets other users write it")):
        other = Node(str(tmp_path / ("o%o" % mode)))
        path = "/dev/shm/" + other.shm_name.lstrip("/")
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode)
            os.ftruncate(fd, 1 << 20)
            os.fchown(fd, owner, owner)
            os.fchmod(fd, mode)
            os.close(fd)
            p = subprocess.run(other.command()[:-1], capture_output=True, text=True,
                               timeout=20, cwd=other.workdir)
            log = other.read_log() + p.stderr
            assert p.returncode == 1, (p.returncode, log[-2000:])
            assert "refusing region %s" % other.shm_name in log and why in log, log[-2000:]
            c = run("check", "-c", other.conf_path)
            assert c.returncode == 1 and why in c.stderr, c.stderr
            assert os.stat(path).st_uid == owner  # left alone
        finally:
            os.unlink(path)


# ---------------------------------------------------------- privileges ---

def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(ln.rstrip("\n").split(":\t", 1) for ln in f if ":\t" in ln)


@pytest.fixture
def throwaway_user():
    """A system user made for this test and removed after it."""
    import pwd
    import secrets
    import shutil
    if os.geteuid() != 0:
        pytest.skip("needs root: the master switches its children's user only as root")
    if shutil.which("useradd") is None or shutil.which("userdel") is None:
        pytest.skip("needs useradd and userdel to make a throwaway user")
    name = "artemis-it-%s" % secrets.token_hex(3)
    subprocess.run(["useradd", "--system", "--no-create-home", "--user-group",
                    "--shell", "/usr/sbin/nologin", name], check=True, capture_output=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True)


def test_children_run_as_the_configured_user(throwaway_user):
    """Issue 12 item 4: started as root, the master keeps root (it binds)
    and runs every child as [node] user: no supplementary groups,
    no_new_privs; data_dir and the log file are theirs, so a log rotation
    (SIGUSR1) works for them; the region stays the master's."""
    import shutil
    import tempfile
    from artemis_it import finish_node, start_node, unregister
    pw = throwaway_user
    base = tempfile.mkdtemp(prefix="artemis-priv-", dir="/tmp")
    os.chmod(base, 0o755)
    n = None
    try:
        # The user must reach its log file to reopen it: the directories
        # on the way are searchable (start_node makes its own 0700).
        n = start_node(base, node={"user": pw.pw_name},
                       prepare=lambda node: os.chmod(node.workdir, 0o755))
        kids = wait_children(n, ALL)
        assert proc_status(n.pid)["Uid"].split() == ["0"] * 4
        for name in ALL:
            st = proc_status(kids[name])
            assert st["Uid"].split() == [str(pw.pw_uid)] * 4, (name, st["Uid"])
            assert st["Gid"].split() == [str(pw.pw_gid)] * 4, (name, st["Gid"])
            assert st["Groups"].strip() == "", (name, st["Groups"])
            assert st["NoNewPrivs"].strip() == "1", name
        assert "children run as user %s" % pw.pw_name in n.read_log()
        assert os.stat(n.data_dir).st_uid == pw.pw_uid
        region = os.stat("/dev/shm/" + n.shm_name.lstrip("/"))
        assert region.st_uid == 0 and region.st_mode & 0o777 == 0o600
        svc = uniq("priv")
        register(n, inst(svc, "i1"), inst(svc, "i2"))
        assert instance_ids(n, svc) == ["i1", "i2"]
        # Rotate the log: the children reopen it as the user.
        os.rename(n.log_path, n.log_path + ".1")
        n.send_signal(signal.SIGUSR1)
        wait_for(lambda: os.path.exists(n.log_path), 5.0, what="a new log file")
        assert os.stat(n.log_path).st_uid == pw.pw_uid
        unregister(n, inst(svc, "i1"))
        wait_for(lambda: "reaper[" in open(n.log_path).read(), 5.0,
                 what="the reaper to log to the reopened file")
        # A respawned child drops too.
        old = kids["artemis: worker 1"]
        os.kill(old, signal.SIGKILL)
        new = wait_respawn(n, "artemis: worker 1", old)
        assert proc_status(new)["Uid"].split() == [str(pw.pw_uid)] * 4
        assert run("check", "-c", n.conf_path).returncode == 0
    finally:
        if n is not None:
            finish_node(n)
        shutil.rmtree(base, ignore_errors=True)


def test_an_unknown_user_is_a_configuration_error(tmp_path):
    from artemis_it import Node
    n = Node(str(tmp_path), node={"user": "artemis-no-such-user"})
    p = subprocess.run(n.command(), capture_output=True, text=True, timeout=20,
                       cwd=n.workdir)
    log = n.read_log() + p.stderr
    assert p.returncode == 2, (p.returncode, log[-1000:])
    assert "[node] user 'artemis-no-such-user': no such user" in log, log[-1000:]
    assert not os.path.exists("/dev/shm/" + n.shm_name.lstrip("/"))

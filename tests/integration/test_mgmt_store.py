"""
test_mgmt_store.py - the management store (MANAGEMENT.md §4): operations
and audit records survive `stop`, kill -9 of every process and `--fresh`;
a store that cannot be opened or migrated stops the start with exit 1, its
path and SQLite's reason; a full disk fails the write with
internal-service-error and applies nothing while the node keeps serving;
workers killed in the middle of management writes leave the store and the
projection agreeing (`artemis check`); a running store can be backed up.
"""

import os
import random
import signal
import sqlite3
import stat
import subprocess
import threading
import time

from artemis_it import (REGION, SUCCESS, artemis_bin, assert_status, child_pids, inst,
                        register, run_cli, uniq, wait_for)
from mgmt_util import M, assert_everywhere, java_instance, java_server, rust_zone
from test_master import WORKERS, wait_children



def audit_count(node):
    """Records of operations (the first admin's creation is not counted)."""
    st, _, b = node.get(M + "audit/logs/stats")
    assert st == 200, b
    return b["data"]["total"] - b["data"]["byOperationType"].get("user", 0)


def in_force(node):
    b = node.api(M + "all-instance-operations.json", {})
    return sorted((o["instanceKey"]["serviceId"], o["instanceKey"]["instanceId"])
                  for o in b["allInstanceOperations"])


def db_path(node):
    return os.path.join(node.data_dir, "artemis.db")


def test_store_file_and_schema(fresh_node):
    n = fresh_node
    n.login()
    mode = stat.S_IMODE(os.stat(db_path(n)).st_mode)
    assert mode == 0o600, oct(mode)
    with sqlite3.connect(db_path(n)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == 4
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert {"instance", "server", "service_zone", "audit", "instance_log", "server_log",
            "service_zone_log", "meta", "users", "sessions", "login_history",
            "secrets", "service_group", "service_group_tag",
            "service_group_instance", "service_group_operation", "service_instance",
            "service_route_rule", "service_route_rule_group", "canary_config"} <= tables


def test_operations_and_records_survive_stop_kill_and_fresh(fresh_node):
    n = fresh_node
    n.login()
    svc = uniq()
    java_instance(n, svc, "a")
    java_server(n, "10.66.0.1")
    rust_zone(n, uniq("z"), out=True)
    records = audit_count(n)
    assert records == 3
    # artemis stop, then a start on the same data_dir (with --fresh: it
    # discards the registry region, never the store).
    assert run_cli("stop", "-c", n.conf_path).returncode == 0
    n.start()
    assert in_force(n) == [(svc, "a")]
    assert audit_count(n) == records
    register(n, inst(svc, "a"), inst(svc, "b"), inst(uniq(), "s", ip="10.66.0.1"))
    assert_everywhere(n, svc, ["b"])
    # kill -9 of every process, then a start without --fresh.
    pids = [n.pid] + child_pids(n.pid)
    for p in pids:
        os.kill(p, signal.SIGKILL)
    n.proc.wait(5)
    n.fresh = False
    n.start()
    assert in_force(n) == [(svc, "a")]
    assert audit_count(n) == records
    assert_everywhere(n, svc, ["b"])
    assert run_cli("check", "-c", n.conf_path).returncode == 0


def start_fails(node):
    p = subprocess.run(node.command(), capture_output=True, text=True, timeout=30,
                       cwd=node.workdir)
    return p.returncode, node.read_log() + p.stderr


def test_store_that_cannot_be_opened_stops_the_start(fresh_node):
    n = fresh_node
    n.stop()
    with open(db_path(n), "wb") as f:
        f.write(b"this is not an sqlite database at all, not even close" * 100)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(db_path(n) + suffix):
            os.unlink(db_path(n) + suffix)
    rc, log = start_fails(n)
    assert rc == 1, log[-2000:]
    assert db_path(n) in log and "not a database" in log, log[-2000:]
    n.expect_exit = True


def test_a_version_3_store_gets_user_ids_from_usernames(fresh_node):
    """Schema 4: a user's id derives from its username (the same on every
    node of a cluster); a store numbered by AUTOINCREMENT is renumbered at
    start, its users, sessions and tokens kept."""
    from auth_util import A, call, make_user
    n = fresh_node
    n.login()
    uid, token = make_user(n, n.token, "renumbered", "viewer")
    def ids():
        return {u["username"]: u["userId"]
                for u in call(n, "GET", A + "users", token=n.token)[1]["data"]}

    want = ids()
    n.stop()
    with sqlite3.connect(db_path(n)) as db:
        db.execute("UPDATE users SET id = id % 1000 + 1")  # a version 3 store's small numbers
        db.execute("PRAGMA user_version = 3")
        assert db.execute("SELECT max(id) FROM users").fetchone()[0] <= 1000
    n.fresh = False
    n.start()
    with sqlite3.connect(db_path(n)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 4
    got = ids()
    assert got == want and got["renumbered"] == uid
    st, body, _ = call(n, "GET", A + "user", token=token)
    assert st == 200 and body["data"]["userId"] == uid, body


def test_store_of_a_newer_schema_stops_the_start(fresh_node):
    n = fresh_node
    n.stop()
    with sqlite3.connect(db_path(n)) as db:
        db.execute("PRAGMA user_version = 42")
    rc, log = start_fails(n)
    assert rc == 1
    assert db_path(n) in log and "schema version 42" in log, log[-2000:]
    with sqlite3.connect(db_path(n)) as db:
        db.execute("PRAGMA user_version = 4")
    n.start()
    assert n.get("/health")[0] == 200


def test_full_store_fails_the_write_and_applies_nothing(node_factory):
    n = node_factory()
    n.login()
    # The store as migrated, then a cap a little above it.
    with sqlite3.connect(db_path(n)) as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    n.stop()
    with open(n.conf_path, "a") as f:
        f.write("\n[management]\nstore_max_pages = %d\n" % (pages + 3))
    n.start()
    svc = uniq()
    register(n, inst(svc, "keep"))
    failed = None
    for i in range(2000):
        b = n.api(M + "operate-instance.json", {
            "instanceKey": {"regionId": REGION, "serviceId": svc, "instanceId": "x%04d-%s"
                            % (i, "p" * 200)},
            "operation": "pullout", "operatorId": "filler"})
        if b["responseStatus"]["errorCode"] != "success":
            failed = (i, b)
            break
    assert failed is not None, "the store never filled"
    i, b = failed
    assert_status(b, {"status": "fail", "errorCode": "internal-service-error"})
    assert "full" in b["responseStatus"]["message"]
    # Nothing of it: neither the operation nor its record.
    ops = [k for k in in_force(n) if k[0] == svc]
    assert len(ops) == i
    assert audit_count(n) == i
    # The node keeps serving, discovery included.
    assert_everywhere(n, svc, ["keep"])
    # The Rust surface: HTTP 500 with the message.
    st, _, b = n.post_json(M + "instance/operate-instance.json", {
        "instanceKey": {"regionId": REGION, "serviceId": svc, "instanceId": "y%s" % ("q" * 250)},
        "operation": "pullout", "operatorId": "filler" * 20})
    assert st == 500 and "full" in b["status"]["errorMessage"], (st, b)
    assert run_cli("check", "-c", n.conf_path).returncode == 0


def test_killed_workers_during_writes_leave_store_and_projection_agreeing(fresh_node):
    """kill -9 workers while management writes run (a few kills: the master
    backs a crash-looping worker off; tests/unit/test_mgmt_crash.c does 200
    rounds on the write path itself), then `artemis check`."""
    n = fresh_node
    n.login()
    svc = uniq()
    register(n, *[inst(svc, "i%d" % k, ip="10.88.0.%d" % (k % 3)) for k in range(6)])
    stop = threading.Event()
    errors = []

    def writer(seed):
        rnd = random.Random(seed)
        while not stop.is_set():
            k = rnd.randrange(6)
            try:
                if rnd.random() < 0.5:
                    n.post_json(M + "operate-instance.json", {
                        "instanceKey": {"regionId": REGION, "serviceId": svc,
                                        "instanceId": "i%d" % k},
                        "operation": "pullout", "operationComplete": rnd.random() < 0.5,
                        "operatorId": "w"}, timeout=5)
                else:
                    n.post_json(M + "operate-server.json", {
                        "serverKey": {"regionId": REGION, "serverId": "10.88.0.%d" % (k % 3)},
                        "operation": "pullout", "operationComplete": rnd.random() < 0.5,
                        "operatorId": "w"}, timeout=5)
            except OSError:
                pass  # the worker died under the request: expected
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    try:
        for k in range(8):
            kids = wait_children(n, WORKERS)
            time.sleep(0.05 + random.random() * 0.2)  # the kill cadence, not a wait
            os.kill(kids[WORKERS[k % 2]], signal.SIGKILL)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert not errors, errors
    wait_children(n, WORKERS)
    c = run_cli("check", "-c", n.conf_path)
    assert c.returncode == 0, c.stdout + c.stderr
    assert "management projection" in c.stdout
    # Discovery agrees with the store's view of what is down.
    b = n.api(M + "services.json", {})
    down = {i["instanceId"] for s in b["services"] if s["serviceId"] == svc
            for i in s["instances"] if i["status"] == "down"}
    visible = set()
    for s in n.api("/artemis/api/discovery/services.json", {})["services"]:
        if s["serviceId"] == svc:
            visible = {i["instanceId"] for i in s["instances"]}
    assert visible == {"i%d" % k for k in range(6)} - down


def test_backup_while_running(fresh_node, tmp_path):
    n = fresh_node
    n.login()
    java_instance(n, uniq(), "a")
    copy = str(tmp_path / "backup.db")
    src = sqlite3.connect(db_path(n))
    dst = sqlite3.connect(copy)
    src.backup(dst)  # what `sqlite3 artemis.db ".backup copy.db"` does
    src.close()
    with dst:
        assert dst.execute("SELECT COUNT(*) FROM instance WHERE deleted = 0").fetchone()[0] == 1
        assert dst.execute("SELECT COUNT(*) FROM audit WHERE operation_type = 'instance'"
                           ).fetchone()[0] == 1
    dst.close()
    java_instance(n, uniq(), "b")  # the node writes on after the backup
    assert_status(n.api(M + "all-instance-operations.json", {}), SUCCESS)

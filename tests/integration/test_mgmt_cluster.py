"""
test_mgmt_cluster.py - management data between nodes (MANAGEMENT.md §5,
docs/CLUSTER.md "Management data") on real clusters on loopback:

- an operation on one node is in force on the others (discovery hides
  the instance there, and pushes `delete`), and its removal too;
- a node started afterwards comes up with every operation in force
  (bootstrap), and a node that was down while operations changed hides and
  shows what it should as soon as it is up (catch-up), a removal made
  meanwhile winning over the operation it held (tombstones);
- concurrent conflicting writes on two nodes converge to the same state
  everywhere, and `artemis check` passes on each;
- every node's audit records are on every node exactly once;
- a replicator killed in the middle of a stream resumes without losing or
  repeating anything;
- tombstones every peer has are collected;
- users and sessions: a token issued by one node works on every node
  (started afterwards too: the bootstrap brings the session); a logout on
  one node, or a user disabled there, is refused on the others;
- routing: groups, a rule and its weights, a canary whitelist, a group
  pull-out made on one node route the other's Rust discovery answers (and
  its Java answers carry the rule), with a `reload` pushed there;
- three nodes where two cannot reach each other: what one writes reaches
  the other through the third's digests (anti-entropy).

Timing is not asserted (the machine is shared): waits have generous
deadlines; bench/mgmt_repl_bench.py measures how fast.
"""

import os
import signal
import sqlite3
import subprocess
import threading

import pytest

from artemis_it import REGION, SUCCESS, assert_status, inst, register, run_cli, uniq, wait_for
from auth_util import A, call, login, make_user
from cluster_util import Cluster
from mgmt_util import M, java_instance, java_server, listed, mgmt_statuses
from routing_util import RT, canary, group, java_rules, ok, routed, rule

websocket = pytest.importorskip("websocket")
from test_websocket import first_push, is_change, recv_change, ws_connect  # noqa: E402

SOON = 10.0  # seconds a change has to show on a peer (it takes milliseconds)


@pytest.fixture(scope="module")
def cl(tmp_path_factory):
    """Three nodes configured, the first two running; the third is started
    by the bootstrap test.  Tombstones are collected as soon as every peer
    has them."""
    c = Cluster(str(tmp_path_factory.mktemp("mgmt-cluster")), n=3,
                cluster={"mgmt_tombstone_ttl_s": "0"})
    c.nodes[0].start()
    c.nodes[1].start()
    try:
        c.nodes[0].wait_ready()
        c.nodes[1].wait_ready()
        c.nodes[0].login()
        c.nodes[1].token = c.nodes[0].token  # one token for the cluster
    except BaseException:
        c.finish()
        raise
    yield c
    c.finish()


def up(cl, node):
    """Start a node of the cluster that is not running; the cluster's
    token is valid on it as soon as it is up (the bootstrap brought it)."""
    if not node.alive():
        node.start()
        node.wait_ready()
    node.token = cl[0].token


def running(cl):
    return [n for n in cl if n.proc is not None and n.alive()]


def ops_in_force(node):
    """{(serviceId, instanceId, operation)} of the instance operations in force."""
    b = node.api(M + "all-instance-operations.json", {})
    assert_status(b, SUCCESS)
    return {(o["instanceKey"]["serviceId"], o["instanceKey"]["instanceId"], op)
            for o in b["allInstanceOperations"] for op in o["operations"]}


def servers_down(node):
    b = node.api(M + "all-server-operations.json", {})
    assert_status(b, SUCCESS)
    return {(o["serverKey"]["serverId"], op) for o in b["allServerOperations"]
            for op in o["operations"]}


def audit(node, operator):
    st, _, b = node.get(M + "audit/logs?limit=10000&operatorId=" + operator)
    assert st == 200 and b["success"], b
    return b["data"]


def wait_listed(node, svc, want, path="service"):
    want = sorted(want)
    wait_for(lambda: listed(node, svc, path) == want, SOON,
             what="%s to list %r for %s" % (node.name, want, svc))


def store_rows(node, sql):
    db = sqlite3.connect("file:%s/artemis.db?mode=ro" % node.data_dir, uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def check(node):
    c = run_cli("check", "-c", node.conf_path)
    assert c.returncode == 0, c.stdout + c.stderr


# ------------------------------------------------------------------- tests ---

def test_operation_in_force_on_the_peer_and_pushed(cl):
    a, b = cl[0], cl[1]
    svc = uniq()
    register(a, inst(svc, "x", ip="10.9.0.1"), inst(svc, "y", ip="10.9.0.2"))
    wait_listed(b, svc, ["x", "y"])
    ws = ws_connect(b, "/artemis/websocket/discovery/instance-change")
    try:
        ws.send('{"serviceId": "%s", "regionId": "%s", "zoneId": "zone-1"}' % (svc, REGION))
        first_push(b, ws, inst(svc, "probe"), "the subscription on the peer",
                   is_change(svc, "probe", "new"))
        java_instance(a, svc, "x")
        recv_change(ws, is_change(svc, "x", "delete"), timeout=SOON)
        for path in ("service", "lookup", "api_service"):
            wait_listed(b, svc, ["probe", "y"], path)
        # The removal, made on the peer, travels back.
        java_instance(b, svc, "x", complete=True)
        wait_listed(a, svc, ["probe", "x", "y"])
        recv_change(ws, is_change(svc, "x", "new"), timeout=SOON)
        # A server operation hides every instance of that ip on the peer.
        java_server(a, "10.9.0.2")
        wait_listed(b, svc, ["probe", "x"])
        java_server(a, "10.9.0.2", complete=True)
        wait_listed(b, svc, ["probe", "x", "y"])
    finally:
        ws.close()


def test_concurrent_conflicting_writes_converge(cl):
    a, b = cl[0], cl[1]
    svc = uniq()
    keys = ["k%d" % i for i in range(20)]

    def writer(node, complete):
        for k in keys:  # the same keys, opposite operations, at once
            java_instance(node, svc, k, complete=complete, operator=node.name)

    for k in keys[::2]:
        java_instance(b, svc, k)  # some exist before: both the insert and the delete apply
    ts = [threading.Thread(target=writer, args=(a, False)),
          threading.Thread(target=writer, args=(b, True))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()

    def mine(node):
        return {k for (s, k, _) in ops_in_force(node) if s == svc}

    wait_for(lambda: mine(a) == mine(b), SOON, what="both nodes to agree on %s" % svc)
    # ... and stay so once nothing moves (the last writer won on both)
    final = mine(a)
    wait_for(lambda: mine(a) == final == mine(b), SOON, what="a stable agreement")
    rows = [sorted(store_rows(n, "SELECT instance_id, deleted, hlc, origin_node FROM instance "
                                 "WHERE service_id = '%s'" % svc)) for n in (a, b)]
    assert rows[0] == rows[1]
    check(a)
    check(b)


def test_audit_records_of_every_node_everywhere_once(cl):
    a, b = cl[0], cl[1]
    who = uniq("auditor")
    svc = uniq()
    java_instance(a, svc, "i1", operator=who)
    java_instance(b, svc, "i2", operator=who)
    java_instance(a, svc, "i1", complete=True, operator=who)

    def ids(node):
        return sorted((r["originNode"], r["originSeq"]) for r in audit(node, who))

    wait_for(lambda: len(ids(a)) == 3 and ids(a) == ids(b), SOON,
             what="3 records on both nodes")
    recs = ids(a)
    assert len(set(recs)) == 3
    assert sorted({o for o, _ in recs}) == sorted([a.name, b.name])


def test_node_started_afterwards_has_everything_when_up(cl):
    a, b, c = cl[0], cl[1], cl[2]
    svc = uniq()
    register(a, inst(svc, "keep"), inst(svc, "hide"))
    register(b, inst(svc, "hide2"))
    java_instance(a, svc, "hide")
    java_instance(b, svc, "hide2")
    java_instance(a, svc, "gone")
    java_instance(a, svc, "gone", complete=True)
    up(cl, c)
    # Up means its peers' operations are in force here already.
    assert listed(c, svc, "service") == ["keep"]
    assert ops_in_force(c) >= {(svc, "hide", "pullout"), (svc, "hide2", "pullout")}
    assert (svc, "gone", "pullout") not in ops_in_force(c)
    # The management view: every instance is there, the hidden ones down.
    wait_for(lambda: mgmt_statuses(c, svc) == {"keep": "up", "hide": "down", "hide2": "down"},
             SOON, what="the management view of %s on the new node" % svc)


def test_three_nodes_operation_everywhere_and_audit_once(cl):
    for n in cl:
        up(cl, n)
    a, b, c = cl[0], cl[1], cl[2]
    svc, who = uniq(), uniq("three")
    register(a, inst(svc, "x"), inst(svc, "y"))
    for n in cl:
        wait_listed(n, svc, ["x", "y"])
    java_instance(c, svc, "x", operator=who)
    for n in cl:
        wait_listed(n, svc, ["y"])
    java_instance(b, svc, "x", complete=True, operator=who)
    for n in cl:
        wait_listed(n, svc, ["x", "y"])

    def recs(node):
        return sorted((r["originNode"], r["originSeq"]) for r in audit(node, who))

    wait_for(lambda: len(recs(a)) == 2 and recs(a) == recs(b) == recs(c), SOON,
             what="both records on the three nodes, once")


def test_node_down_catches_up_and_removals_win(cl):
    a, b, c = cl[0], cl[1], cl[2]
    up(cl, c)
    svc = uniq()
    register(a, inst(svc, "p"), inst(svc, "q"), inst(svc, "r"))
    java_instance(a, svc, "p")
    wait_for(lambda: (svc, "p", "pullout") in ops_in_force(c), SOON, what="p out on c")
    c.kill_all()
    # While c is down: p comes back in (a tombstone), q goes out, from both nodes.
    java_instance(b, svc, "p", complete=True)
    java_instance(a, svc, "q")
    java_server(b, "10.77.0.1")
    up(cl, c)
    assert (svc, "p", "pullout") not in ops_in_force(c)
    assert (svc, "q", "pullout") in ops_in_force(c)
    assert ("10.77.0.1", "pullout") in servers_down(c)
    # The operation c held is not brought back to the others (anti-entropy
    # runs every second here: give it a few rounds).
    wait_for(lambda: all(listed(n, svc, "service") == ["p", "r"] for n in cl), SOON,
             what="p and r listed everywhere")
    for _ in range(3):
        done = [False]

        def round_trip():
            done[0] = "pullout" not in {o for (s, k, o) in ops_in_force(a) if k == "p" and
                                        s == svc}
            return done[0]
        wait_for(round_trip, SOON, what="p still in on a")
    check(c)


def test_replicator_killed_mid_stream(cl):
    a, b = cl[0], cl[1]
    for n in cl:
        up(cl, n)
    who = uniq("burst")
    svc = uniq()
    n_writes = 240
    progress = [0]

    def burst():
        for i in range(n_writes):
            java_instance(a, svc, "i%d" % i, operator=who)
            progress[0] = i + 1

    t = threading.Thread(target=burst)
    t.start()
    wait_for(lambda: progress[0] >= 60, 60, what="60 writes")
    os.kill(b.replicator_pid(), signal.SIGKILL)  # the receiver
    wait_for(lambda: progress[0] >= 140, 60, what="140 writes")
    old = a.replicator_pid()
    os.kill(old, signal.SIGKILL)  # the sender
    t.join()
    wait_for(lambda: len([o for o in ops_in_force(b) if o[0] == svc]) == n_writes, 30,
             what="every operation on the peer")

    def seqs(node):
        return [(r["originNode"], r["originSeq"]) for r in audit(node, who)]

    wait_for(lambda: len(seqs(b)) >= n_writes, 30, what="every record on the peer")
    got = seqs(b)
    assert len(got) == len(set(got)) == n_writes, "lost or repeated: %d records, %d distinct" % (
        len(got), len(set(got)))
    assert sorted(got) == sorted(seqs(a))
    check(b)


def test_tombstones_every_peer_has_are_collected(cl):
    for n in cl:
        up(cl, n)
    svc = uniq()
    java_instance(cl[0], svc, "t")
    wait_for(lambda: (svc, "t", "pullout") in ops_in_force(cl[1]), SOON, what="t out on 1")
    java_instance(cl[1], svc, "t", complete=True)

    def tombstones(node):
        return store_rows(node, "SELECT count(*) FROM instance WHERE service_id = '%s' AND "
                                "deleted = 1" % svc)[0][0]

    wait_for(lambda: all((svc, "t", "pullout") not in ops_in_force(n) for n in cl), SOON,
             what="t in on every node")
    wait_for(lambda: all(tombstones(n) == 0 for n in cl), 90,
             what="the tombstone collected everywhere")


# ------------------------------------------------------ users and sessions ---

def test_token_of_one_node_works_on_the_other_and_logout_ends_it_everywhere(cl):
    a, b = cl[0], cl[1]
    token = login(a)  # a session made on a
    wait_for(lambda: call(b, "GET", A + "user", token=token)[0] == 200, SOON,
             what="a's token accepted on b")
    st, body, _ = call(b, "POST", A + "logout", {}, token)
    assert st == 200, body
    assert call(b, "GET", A + "user", token=token)[0] == 401
    wait_for(lambda: call(a, "GET", A + "user", token=token)[0] == 401, SOON,
             what="the logout made on b refused on a")


def test_user_disabled_on_one_node_is_refused_on_the_other(cl):
    a, b = cl[0], cl[1]
    name = uniq("dora")
    uid, on_a = make_user(a, a.token, name, "operator")

    def login_on_b():
        return call(b, "POST", A + "login", {"username": name,
                                             "password": name + "-password"})[0] == 200

    wait_for(login_on_b, SOON, what="the user made on a logging in on b")
    on_b = login(b, name, name + "-password")
    st, body, _ = call(b, "GET", A + "users/%d" % uid, token=b.token)
    assert st == 200 and body["data"]["username"] == name, body  # the same userId
    wait_for(lambda: call(a, "GET", A + "user", token=on_b)[0] == 200, SOON,
             what="b's session on a")
    st, body, _ = call(b, "PUT", A + "users/%d/status" % uid, {"status": "inactive"}, b.token)
    assert st == 200, body
    for tok in (on_a, on_b):
        wait_for(lambda: call(a, "GET", A + "user", token=tok)[0] == 401, SOON,
                 what="the user disabled on b refused on a")


# ----------------------------------------------------------------- routing ---

def test_routing_made_on_one_node_routes_on_the_other(cl):
    a, b = cl[0], cl[1]
    svc = uniq()
    register(a, inst(svc, "b1", groupId="blue"), inst(svc, "g1", groupId="green"),
             inst(svc, "x1"))
    wait_for(lambda: routed(b, svc) == ("b1", "g1", "x1"), SOON, what="%s on b" % svc)
    ws = ws_connect(b, "/artemis/websocket/discovery/instance-change")
    try:
        ws.send('{"serviceId": "%s", "regionId": "%s", "zoneId": "zone-1"}' % (svc, REGION))
        first_push(b, ws, inst(svc, "probe"), "the subscription on b",
                   is_change(svc, "probe", "new"))
        blue, green = group(a, svc, "blue"), group(a, svc, "green")
        route = uniq("wrr")
        rule(a, svc, route, groups=[(blue["groupId"], 1)], publish=True)
        wait_for(lambda: routed(b, svc) == ("b1",), SOON, what="a's rule routing on b")
        recv_change(ws, lambda m: m["changeType"] == "reload" and
                    m["instance"]["serviceId"] == svc, timeout=SOON)
        assert [g["weight"] for g in java_rules(b, svc)[0]["groups"]] == [1]
        # b's own numbers for the same groups; a weight and a canary set on b
        on_b = {g["name"]: g["groupId"] for g in ok(b, "GET", RT + "groups?serviceId=" + svc)}
        ok(b, "POST", RT + "rules/%s/groups" % route, {"groupId": on_b["green"], "weight": 1},
           expect=201)
        wait_for(lambda: {routed(a, svc) for _ in range(4)} == {("b1",), ("g1",)}, SOON,
                 what="b's weight routing on a")
        # b pulls the green group out: its instance is hidden on a too
        st = b.post_json(M + "group/operate-group-operations.json", {
            "groupOperationsList": [{"groupId": on_b["green"], "operations": ["pullout"]}],
            "operationComplete": False, "operation": "pullout", "operatorId": "olga"})
        assert st[2]["responseStatus"]["errorCode"] == "success", st
        wait_listed(a, svc, ["b1", "probe", "x1"])
        # unpublished on b: every instance up, on a
        ok(b, "POST", RT + "rules/%s/unpublish" % route)
        wait_for(lambda: routed(a, svc) == ("b1", "probe", "x1"), SOON,
                 what="the rule unpublished on b, on a")
        # a canary whitelist set on a sends b's whitelisted callers (the
        # loopback) to the canary group there
        register(a, inst(svc, "c1", groupId="canary"))
        group(a, svc, "canary")
        canary(a, svc, ["127.0.0.0/8"])
        wait_for(lambda: routed(b, svc) == ("c1",), SOON, what="a's canary routing on b")
    finally:
        ws.close()
    check(a)
    check(b)


def test_a_routing_change_pushes_reload_on_the_other_node(cl):
    """A tag on a group no rule uses changes no answer, yet a local write
    pushes `reload` for its service: so does the replicated one."""
    a, b = cl[0], cl[1]
    svc = uniq()
    register(a, inst(svc, "t1", groupId="tagged"))
    wait_for(lambda: routed(b, svc) == ("t1",), SOON, what="%s on b" % svc)
    g = group(a, svc, "tagged")
    wait_for(lambda: [x["name"] for x in ok(b, "GET", RT + "groups?serviceId=" + svc)] ==
             ["tagged"], SOON, what="the group on b")
    ws = ws_connect(b, "/artemis/websocket/discovery/instance-change")
    try:
        ws.send('{"serviceId": "%s", "regionId": "%s", "zoneId": "zone-1"}' % (svc, REGION))
        first_push(b, ws, inst(svc, "probe"), "the subscription on b",
                   is_change(svc, "probe", "new"))
        ok(a, "POST", RT + "groups/%d/tags" % g["groupId"], {"tags": {"k": "v"}}, expect=201)
        recv_change(ws, lambda m: m["changeType"] == "reload" and
                    m["instance"]["serviceId"] == svc, timeout=SOON)
    finally:
        ws.close()


# ------------------------------------------------------------ anti-entropy ---

@pytest.fixture
def split(tmp_path):
    """Three nodes; 0 and 1 cannot reach each other (each one's peer line
    for the other names a port where nothing listens); both reach 2."""
    c = Cluster(str(tmp_path), n=3, wrong_ports={0: 1, 1: 0})
    c.start()
    try:
        c[0].login()
        for n in c:
            n.token = c[0].token
    except BaseException:
        c.finish()
        raise
    yield c
    c.finish()


def test_anti_entropy_brings_what_a_node_out_of_reach_wrote(split):
    a, b, c = split[0], split[1], split[2]
    svc = uniq()
    register(c, inst(svc, "x"), inst(svc, "y"))
    for n in split:
        wait_listed(n, svc, ["x", "y"])
    # a's session reaches b only through c's digests: a pull from c.
    wait_for(lambda: call(b, "GET", A + "user", token=a.token)[0] == 200, SOON,
             what="a's session on b")
    java_instance(a, svc, "x")
    wait_listed(c, svc, ["y"])  # a's stream
    wait_listed(b, svc, ["y"])  # c's digests, and b's pull
    assert "buckets of management tables differ" in b.read_log()
    java_instance(b, svc, "x", complete=True)
    wait_listed(a, svc, ["x", "y"])
    check(a)
    check(b)


# ------------------------------------------------------------------ bench ---

def test_bench_runs():
    """bench/mgmt_repl_bench.py as docs/BENCHMARKS.md runs it, small
    (functional only: the figures are measured with it, never asserted)."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    build = os.path.dirname(os.environ.get("ARTEMIS_BIN") or
                            os.path.join(root, "build", "artemis"))
    p = subprocess.run(["/usr/bin/python3", os.path.join(root, "bench", "mgmt_repl_bench.py"),
                        "--build", build, "--ops", "10", "--burst", "50", "--rounds", "2"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "visible on every peer (10)" in p.stdout and "Burst: 50 pull-outs" in p.stdout

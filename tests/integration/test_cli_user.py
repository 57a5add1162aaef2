"""
test_cli_user.py - the artemis commands for users of a registry
(register, heartbeat, unregister, discover, services, watch, status): what
they print for people and with --json, their exit codes (0 ok, 1 failed,
2 usage or configuration), the node they talk to by default (the local
configuration's listen address, a wildcard made loopback), register
--keep, and watch printing pushes as they arrive.  test_cli.py covers the
server-side commands.
"""

import json
import os
import signal
import subprocess
import time

from artemis_it import (HOST, REGION, ZONE, artemis_bin, free_port, instance_ids, register,
                        inst, run_cli, scrape, uniq, wait_for)


def cli(node, *args):
    return run_cli(*args, "-c", node.conf_path)


def test_register_discover_heartbeat_unregister(node):
    svc = uniq("cli")
    r = cli(node, "register", svc, "a1", "http://10.2.0.1:80", "--meta", "team=pay",
            "--group", "blue")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "registered %s/a1 at http://10.2.0.1:80 on %s\n" % (svc, node.base)
    assert instance_ids(node, svc) == ["a1"]

    r = cli(node, "discover", svc)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "service %s: 1 instances, 1 up" % svc
    assert lines[1].split() == ["INSTANCE", "STATUS", "ZONE", "GROUP", "URL"]
    assert lines[2].split() == ["a1", "up", ZONE, "blue", "http://10.2.0.1:80"]

    r = cli(node, "discover", svc, "--json")
    service = json.loads(r.stdout)
    assert service["serviceId"] == svc
    assert service["instances"][0]["metadata"] == {"team": "pay"}
    assert service["instances"][0]["regionId"] == REGION

    r = cli(node, "discover", svc, "--choose")
    assert r.returncode == 0 and r.stdout == "a1 http://10.2.0.1:80\n", r

    # heartbeat and unregister find the url themselves
    r = cli(node, "heartbeat", svc, "a1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("renewed %s/a1" % svc)
    r = cli(node, "unregister", svc, "a1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("unregistered %s/a1" % svc)
    wait_for(lambda: instance_ids(node, svc) == [], 5, what="the unregister")

    r = cli(node, "heartbeat", svc, "a1", "http://10.2.0.1:80")
    assert r.returncode == 1
    assert "is not registered" in r.stderr and "data-not-found" in r.stderr
    r = cli(node, "heartbeat", svc, "a1")  # not listed any more: nothing to renew
    assert r.returncode == 1 and "is not registered" in r.stderr
    r = cli(node, "discover", svc, "--choose")
    assert r.returncode == 1 and "no instance up" in r.stderr


def test_json_outputs(node):
    svc = uniq("clij")
    r = cli(node, "register", svc, "j1", "--ip", "10.3.0.1", "--port", "81", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"result": "registered", "serviceId": svc,
                                    "instanceId": "j1", "url": "http://10.3.0.1:81",
                                    "node": node.base}
    assert instance_ids(node, svc) == ["j1"]

    services = json.loads(cli(node, "services", "--json").stdout)["services"]
    mine = [s for s in services if s["serviceId"] == svc]
    assert len(mine) == 1 and mine[0]["instances"][0]["url"] == "http://10.3.0.1:81"

    r = cli(node, "services")
    assert r.returncode == 0
    row = [ln.split() for ln in r.stdout.splitlines() if ln.startswith(svc + " ")]
    assert row == [[svc, "1", "1"]]

    chosen = json.loads(cli(node, "discover", svc, "--choose", "--json").stdout)
    assert chosen["instanceId"] == "j1" and chosen["port"] == 81

    status = json.loads(cli(node, "status", "--json").stdout)
    assert status["node"]["status"] == "up"
    assert status["node"]["node"]["url"] == node.base
    assert status["nodeCount"] == 1 and len(status["nodesStatus"]) == 1


def test_status_table(node):
    r = cli(node, "status")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "this node:"
    assert lines[1].split() == ["NODE", "REGION", "ZONE", "STATUS", "REGISTRY", "DISCOVERY"]
    assert lines[2].split() == [node.base, REGION, ZONE, "up", "yes", "yes"]
    assert lines[3] == "cluster: 1 nodes"


def test_usage_and_config_errors(node, tmp_path):
    for args in (["discover"], ["discover", "a", "b"], ["register", "s", "i"],
                 ["register", "s", "i", "http://u", "--port", "0"], ["status", "--bogus"],
                 ["status", "--url", "ftp://x"], ["status", "--url", "https://x:1"],
                 ["watch", "s", "--count", "x"], ["status", "--timeout", "5"],
                 ["services", "--keep"], ["register", "s", "i", "http://u", "--meta", "novalue"],
                 ["status", "-c", str(tmp_path / "missing.conf")]):
        r = run_cli(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert r.stderr.startswith("artemis %s: " % args[0]), (args, r.stderr)
    bad = tmp_path / "bad.conf"
    bad.write_text("[node]\nlisten = nowhere\n")
    r = run_cli("status", "-c", str(bad))
    assert r.returncode == 2 and "bad.conf:2" in r.stderr, r.stderr
    r = run_cli("discover", "--help")
    assert r.returncode == 0 and "discover SERVICE" in r.stdout
    r = run_cli("help")
    assert r.returncode == 0 and "watch SERVICE" in r.stdout and "server [-c FILE]" in r.stdout


def test_unreachable_node_is_exit_1():
    port = free_port()
    r = run_cli("status", "--url", "http://127.0.0.1:%d" % port, "--timeout", "1000")
    assert r.returncode == 1
    assert "127.0.0.1:%d" % port in r.stderr and "refused" in r.stderr.lower(), r.stderr
    r = run_cli("discover", "svc", "--url", "http://127.0.0.1:%d" % port, "--region", REGION,
                "--zone", ZONE)
    assert r.returncode == 1


def test_default_url_is_the_configs_listen_address(node_factory):
    def prepare(n):
        n.sections["node"]["listen"] = "0.0.0.0:%d" % n.port
    n = node_factory(prepare=prepare)
    r = run_cli("status", "-c", n.conf_path)
    assert r.returncode == 0, r.stderr  # it reached 127.0.0.1:port: the only URL it had
    assert ":%d " % n.port in r.stdout  # the node names itself by its address


def test_watch_prints_pushes(node):
    svc = uniq("cliw")
    p = subprocess.Popen([artemis_bin(), "watch", svc, "-c", node.conf_path, "--count", "2",
                          "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = p.stderr.readline()
        assert banner.startswith("watching %s on %s" % (svc, node.base)), banner
        i = inst(svc, "w1")
        seen = []
        # a push is never replayed: register again until the watcher prints it
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            register(node, i)
            line = _readline(p, 0.5)
            if line:
                seen.append(json.loads(line))
        assert seen and seen[0]["changeType"] in ("new", "reload"), seen
        node.api("/artemis/api/registry/unregister.json", {"instances": [i]})
        line = _readline(p, 10)
        assert line, "no second change printed"
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def _readline(p, timeout):
    """One line of p's stdout within timeout seconds, or None."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    ready = sel.select(timeout)
    sel.close()
    return p.stdout.readline() if ready else None


def test_watch_human_lines_and_signal(node):
    svc = uniq("cliw")
    p = subprocess.Popen([artemis_bin(), "watch", svc, "-c", node.conf_path],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stderr.readline().startswith("watching %s" % svc)
        i = inst(svc, "h1")
        line = None
        deadline = time.monotonic() + 10
        while line is None and time.monotonic() < deadline:
            register(node, i)
            line = _readline(p, 0.5)
        assert line is not None
        parts = line.split()
        assert parts[1] in ("new", "reload") and svc in parts[2], line
        p.send_signal(signal.SIGINT)
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_register_keep_until_a_signal(node):
    n = node
    svc = uniq("clik")
    p = subprocess.Popen([artemis_bin(), "register", svc, "k1", "http://10.4.0.1:80", "--keep",
                          "-c", n.conf_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().startswith("registered %s/k1" % svc)
        assert instance_ids(n, svc) == ["k1"]
        p.send_signal(signal.SIGTERM)
        assert p.wait(15) == 0, p.stderr.read()
        assert p.stdout.readline().startswith("unregistered %s/k1" % svc)
        wait_for(lambda: instance_ids(n, svc) == [], 5, what="the unregister at exit")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()



def test_register_keep_renews_within_the_nodes_lease_ttl(node_factory):
    """issue 17: the library renews at a fraction of the lease TTL the node
    tells (status/config.json), not of its own 20 s default.  A node with
    3 s leases keeps two `register --keep` instances, one with -c and one
    with --url alone, for three and a half TTLs: every discovery poll finds
    both, no delete is pushed for them, and no lease expires."""
    import websocket
    ttl = 3.0
    n = node_factory(registry={"lease_ttl_ms": int(ttl * 1000)})
    svc = uniq("clittl")
    ws = websocket.create_connection("ws://%s:%d/artemis/websocket/discovery/instance-change"
                                     % (n.host, n.port), timeout=5)
    ws.send(json.dumps({"serviceId": svc, "regionId": REGION, "zoneId": ZONE}))
    procs = []
    try:
        for iid, where in (("c1", ["-c", n.conf_path]), ("u1", ["--url", n.base])):
            procs.append(subprocess.Popen(
                [artemis_bin(), "register", svc, iid, "http://10.5.0.1:80", "--keep"] + where,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for p in procs:
            assert p.stdout.readline().startswith("registered %s/" % svc), p.stderr.read()
        start = time.monotonic()
        deadline, polls = start + 3.5 * ttl, 0
        while time.monotonic() < deadline:
            # each poll: a push if one comes (a delete fails), then discovery
            ws.settimeout(max(0.01, min(0.25, deadline - time.monotonic())))
            try:
                msg = json.loads(ws.recv())
            except websocket.WebSocketTimeoutException:
                msg = None
            assert not msg or msg.get("changeType") != "delete", \
                "pushed after %.1f s: %r" % (time.monotonic() - start, msg)
            assert instance_ids(n, svc) == ["c1", "u1"], \
                "a lease expired after %.1f s" % (time.monotonic() - start)
            polls += 1
        assert polls >= 10, polls
        evictions = [v for name, _, v in scrape(n)[0] if name == "artemis_evictions_total"]
        assert evictions == [0.0], evictions
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(15) == 0, p.stderr.read()
            assert p.stdout.readline().startswith("unregistered %s/" % svc)
    finally:
        ws.close()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_man_pages_cover_every_command_and_key():
    """man/artemis.1 documents every command `artemis help` lists, and
    man/artemis.conf.5 every key of conf/artemis.conf in its section."""
    import re
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    with open(os.path.join(root, "man", "artemis.1")) as f:
        man1 = f.read()
    with open(os.path.join(root, "man", "artemis.conf.5")) as f:
        man5 = f.read()
    helptext = run_cli("help").stdout
    commands = set(re.findall(r"^  ([a-z]+)\b", helptext, re.M)) - {"common", "help", "version"}
    assert {"server", "check", "register", "discover", "watch", "status"} <= commands
    for cmd in commands:
        assert re.search(r"^\.B %s\b" % cmd, man1, re.M), "artemis(1) lacks %s" % cmd
    section = None
    with open(os.path.join(root, "conf", "artemis.conf")) as f:
        for line in f:
            m = re.match(r"^\[(\w+)\]", line)
            if m:
                section = m.group(1)
                body = man5.split(".SH [%s]" % section, 1)
                assert len(body) == 2, "artemis.conf(5) lacks [%s]" % section
                body = body[1].split("\n.SH ", 1)[0]
                continue
            m = re.match(r"^([a-z_]+)\s*=", line)
            if m:
                assert re.search(r"^\.BR %s\b" % m.group(1), body, re.M), \
                    "artemis.conf(5) lacks [%s] %s" % (section, m.group(1))


def test_readme_commands_work(node):
    """The README's command-line example, as written (against the test node)."""
    import re
    import shlex
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    with open(os.path.join(root, "README.md")) as f:
        readme = f.read()
    section = readme.split("## Client library and command line", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    commands = [ln.split("#", 1)[0].strip() for ln in block.splitlines() if ln.strip()]
    assert len(commands) >= 5
    for cmd in commands:
        argv = shlex.split(cmd)
        assert argv[0] == "build/artemis", cmd
        if argv[1] == "watch":  # runs until interrupted
            argv += ["--for", "1"]
        r = run_cli(*argv[1:], "-c", node.conf_path)
        assert r.returncode == 0, (cmd, r.stdout, r.stderr)
        if argv[1] == "discover":
            assert "inst-1" in r.stdout, r.stdout

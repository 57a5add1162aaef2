"""
test_routing_cli.py - `artemis groups | rules | canary` against a node:
each subcommand as a user types it, --json, exit codes (0 done, 1 refused,
2 usage), and that what the commands set routes discovery.
"""

import json
from collections import Counter

from artemis_it import REGION, ZONE, inst, register, run_cli, uniq
from routing_util import routed


def cli(node, *args):
    """The command with the node's admin token (--token: no token file)."""
    if node.token is None:
        node.login()
    return run_cli(*args, "--url", node.base, "--token", node.token)


def ok_out(node, *args):
    p = cli(node, *args)
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p.stdout


def test_groups_rules_canary_commands(node):
    svc = uniq()
    register(node, inst(svc, "b1", groupId="blue"), inst(svc, "g1", groupId="green"),
             inst(svc, "x1"))
    assert "created" in ok_out(node, "groups", "create", svc, "blue", "--description", "b")
    out = ok_out(node, "groups", "create", svc, "green", "--region", REGION, "--zone", ZONE,
                 "--json")
    green = json.loads(out)
    assert green["groupKey"] == "%s:%s:%s:green" % (svc, REGION, ZONE)
    key = "%s:%s:%s:blue" % (svc, REGION, ZONE)
    ok_out(node, "groups", "tag", key, "color=blue", "tier=1")
    ok_out(node, "groups", "tag", key, "tier", "--remove")
    table = ok_out(node, "groups", "list", svc)
    assert "color=blue" in table and "tier" not in table and "green" in table
    listed = json.loads(ok_out(node, "groups", "list", svc, "--json"))
    assert sorted(g["name"] for g in listed) == ["blue", "green"]
    assert "2 instances bound" in ok_out(node, "groups", "bind", key, "x1", "zz")
    ok_out(node, "groups", "unbind", key, "zz")
    # A rule of 3/1, published: the Rust paths route by it.
    route = uniq("r")
    ok_out(node, "rules", "create", svc, route, "--strategy", "weighted-round-robin")
    ok_out(node, "rules", "add-group", route, "blue", "--weight", "3")
    ok_out(node, "rules", "add-group", route, str(green["groupId"]))
    ok_out(node, "rules", "set-weight", route, "green", "1")
    ok_out(node, "rules", "publish", route)
    assert "%s:3" % "blue" in ok_out(node, "rules", "list", svc)
    got = Counter(routed(node, svc) for _ in range(8))
    assert got == {("b1", "x1"): 6, ("g1",): 2}, got
    ok_out(node, "rules", "unpublish", route)
    rules = json.loads(ok_out(node, "rules", "list", svc, "--json"))
    assert [r["status"] for r in rules] == ["inactive"]
    ok_out(node, "rules", "delete", route)
    # Canary.
    ok_out(node, "canary", "set", svc, "10.0.0.0/8", "192.168.7.7")
    show = ok_out(node, "canary", "show", svc)
    assert "enabled" in show and "10.0.0.0/8,192.168.7.7" in show
    ok_out(node, "canary", "disable", svc)
    assert json.loads(ok_out(node, "canary", "show", svc, "--json"))["enabled"] is False
    ok_out(node, "canary", "enable", svc)
    assert svc in ok_out(node, "canary", "show")
    ok_out(node, "groups", "delete", key)


def test_cli_failures_and_usage(node):
    svc = uniq()
    p = cli(node, "rules", "publish", uniq())
    assert p.returncode == 1 and "no route rule" in p.stderr and "404" in p.stderr
    p = cli(node, "groups", "create", svc, "dup")
    assert p.returncode == 0
    p = cli(node, "groups", "create", svc, "dup")
    assert p.returncode == 1 and "exists" in p.stderr
    p = cli(node, "canary", "set", svc, "300.0.0.1")
    assert p.returncode == 1
    for args in (("groups", "frob"), ("rules",), ("groups", "tag", "1", "novalue"),
                 ("rules", "add-group", "r", "g", "--weight", "1000"),
                 ("rules", "set-weight", "r", "g", "heavy"), ("canary", "enable")):
        p = cli(node, *args)
        assert p.returncode == 2, (args, p.stdout, p.stderr)

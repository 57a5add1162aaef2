"""
test_cli_auth.py - the operators' commands (docs/MANAGEMENT.md): artemis
login and logout (the token file, mode 0600, sent by every later command
unless --token names another), users list|create|delete|passwd|role, ops
pull-out|pull-in instance|server|zone and ops list, audit with its filters,
--json and --csv; their exit codes (0 ok, 1 refused, 2 usage).
"""

import csv
import io
import json
import os
import stat
import subprocess

import pytest

from artemis_it import ADMIN_PASSWORD, REGION, artemis_bin, uniq
from auth_util import A, call, login
from mgmt_util import M


@pytest.fixture
def home(tmp_path):
    return str(tmp_path / "home")


def cli(node, home, *args, stdin=None):
    """Run `artemis ARGS -c <node's config>` with its own HOME."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home}
    return subprocess.run([artemis_bin(), *args, "-c", node.conf_path], input=stdin,
                          capture_output=True, text=True, timeout=30, env=env)


def token_file(home):
    return os.path.join(home, ".config", "artemis", "token")


def test_login_keeps_a_private_token_that_later_commands_send(node, home):
    r = cli(node, home, "users", "list")
    assert r.returncode == 1 and "artemis login" in r.stderr, r.stderr
    r = cli(node, home, "login", stdin="wrong-password\n")
    assert r.returncode == 1 and "invalid username or password" in r.stderr
    assert not os.path.exists(token_file(home))
    r = cli(node, home, "login", "admin", stdin=ADMIN_PASSWORD + "\n")
    assert r.returncode == 0 and r.stdout.startswith("logged in as admin"), r.stderr
    path = token_file(home)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    with open(path) as f:
        tok = f.read().strip()
    assert call(node, "GET", A + "user", token=tok)[0] == 200
    assert ADMIN_PASSWORD not in r.stdout + r.stderr
    r = cli(node, home, "users", "list")
    assert r.returncode == 0 and r.stdout.split()[:6] == ["ID", "USER", "ROLE", "STATUS",
                                                          "EMAIL", "CREATED"], r.stdout
    # --token wins over the file.
    r = cli(node, home, "users", "list", "--token", "not-a-token")
    assert r.returncode == 1 and "HTTP 401" in r.stderr
    # logout ends the session and forgets the file.
    r = cli(node, home, "logout")
    assert r.returncode == 0 and not os.path.exists(path)
    assert call(node, "GET", A + "user", token=tok)[0] == 401
    assert cli(node, home, "users", "list").returncode == 1


def test_users_commands(node, home):
    assert cli(node, home, "login", stdin=ADMIN_PASSWORD + "\n").returncode == 0
    name = uniq("cli")
    r = cli(node, home, "users", "create", name, "--role", "operator", "--email", "o@x.org",
            stdin="first-password\n")
    assert r.returncode == 0, r.stderr
    assert "first-password" not in r.stdout + r.stderr
    r = cli(node, home, "users", "list", "--json")
    users = {u["username"]: u for u in json.loads(r.stdout)}
    assert users[name]["role"] == "operator" and users[name]["email"] == "o@x.org"
    login(node, name, "first-password")
    assert cli(node, home, "users", "create", name, stdin="another-password\n").returncode == 1
    assert cli(node, home, "users", "role", name, "viewer").returncode == 0
    assert call(node, "GET", A + "user", token=login(node, name, "first-password"))[1][
        "data"]["role"] == "viewer"
    r = cli(node, home, "users", "passwd", name, stdin="second-password\n")
    assert r.returncode == 0, r.stderr
    login(node, name, "second-password")
    r = cli(node, home, "users", "delete", name)
    assert r.returncode == 0, r.stderr
    assert cli(node, home, "users", "delete", name).returncode == 1
    assert cli(node, home, "users", "frob").returncode == 2
    assert cli(node, home, "users", "role", name).returncode == 2
    # One's own password: the old one, then the new one.
    own = uniq("own")
    assert cli(node, home, "users", "create", own, stdin="own-password-1\n").returncode == 0
    other_home = home + "-own"
    assert cli(node, other_home, "login", own, stdin="own-password-1\n").returncode == 0
    r = cli(node, other_home, "users", "passwd", stdin="wrong-old-pw\nown-password-2\n")
    assert r.returncode == 1
    r = cli(node, other_home, "users", "passwd", stdin="own-password-1\nown-password-2\n")
    assert r.returncode == 0, r.stderr
    login(node, own, "own-password-2")
    # A viewer may not manage users.
    assert cli(node, other_home, "users", "list").returncode == 1


def test_ops_and_audit(node, home):
    assert cli(node, home, "login", stdin=ADMIN_PASSWORD + "\n").returncode == 0
    svc, zone = uniq(), uniq("z")
    for args in (("instance", svc, "i1"), ("server", "10.77.0.1"), ("zone", zone, "--service", svc)):
        r = cli(node, home, "ops", "pull-out", *args, "--operator", "ops-bot")
        assert r.returncode == 0, (args, r.stderr)
    r = cli(node, home, "ops", "list")
    rows = [ln.split() for ln in r.stdout.splitlines()]
    assert rows[0] == ["KIND", "REGION", "TARGET", "OPERATION", "OPERATOR"]
    assert ["instance", REGION, "%s/i1" % svc, "pullout", "ops-bot"] in rows
    assert ["server", REGION, "10.77.0.1", "pullout", "ops-bot"] in rows
    assert ["zone", REGION, "%s/%s" % (zone, svc), "pullout", "ops-bot"] in rows
    r = cli(node, home, "ops", "list", "zones", "--json")
    assert any(z["zoneId"] == zone for z in json.loads(r.stdout)["zones"])
    # The node knows them: the Java view agrees.
    b = call(node, "POST", M + "instance-operations.json",
             {"instanceKey": {"regionId": REGION, "serviceId": svc, "instanceId": "i1"}},
             login(node))[1]
    assert b["operations"]["operations"] == ["pullout"]
    assert cli(node, home, "ops", "pull-in", "instance", svc, "i1").returncode == 0
    rows = cli(node, home, "ops", "list", "instances").stdout
    assert "%s/i1" % svc not in rows
    # audit: newest first, filters, both identities, JSON and CSV.
    r = cli(node, home, "audit", "--operator", "ops-bot", "--limit", "2")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["TIME", "TYPE", "TARGET", "OPERATION", "OPERATOR", "USER"]
    assert len(lines) == 3 and all(ln.split()[4:6] == ["ops-bot", "admin"] for ln in lines[1:])
    r = cli(node, home, "audit", "--type", "instance", "--json", "--limit", "100")
    recs = [x for x in json.loads(r.stdout) if svc in x["targetId"]]
    assert [(x["operation"], x["action"]) for x in recs] == [("pullout", "delete"),
                                                             ("pullout", "insert")]
    assert recs[1]["operatorId"] == "ops-bot" and recs[0]["operatorId"] == "admin"
    r = cli(node, home, "audit", "--csv", "--since", "2000-01-01", "--type", "zone")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert any(x["targetId"] == "%s/%s/%s" % (REGION, zone, svc) and x["username"] == "admin"
               for x in rows), rows[:3]
    assert cli(node, home, "audit", "--since", "not-a-time").returncode == 1
    # Usage errors.
    assert cli(node, home, "ops", "pull-out", "instance", svc).returncode == 2
    assert cli(node, home, "ops", "pull-out", "galaxy", "x").returncode == 2
    assert cli(node, home, "ops", "list", "planets").returncode == 2


def test_a_viewer_cannot_operate(node, home):
    admin = login(node)
    name = uniq("cliview")
    call(node, "POST", A + "users", {"username": name, "password": "viewer-password",
                                     "role": "viewer"}, admin)
    assert cli(node, home, "login", name, stdin="viewer-password\n").returncode == 0
    r = cli(node, home, "ops", "pull-out", "server", "10.78.0.1")
    assert r.returncode == 1 and "viewer" in r.stderr, r.stderr
    assert cli(node, home, "ops", "list").returncode == 0

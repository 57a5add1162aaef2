"""
test_routing_docs.py - the examples of docs/ROUTING.md work as written: every
command of its ```sh blocks runs, in order, against a fresh node on the
default region and zone (localhost:8080 replaced by the node's port, the
admin's password filled in, the variables the doc sets (TOKEN, AUTH) kept
for later commands; the `artemis` commands get --url for it and --token
where the doc's reader ran `artemis login`), each succeeds (exit 0, and no failure
in a JSON answer), and where the doc shows a command's output (a plain ```
block right after the block ending with that command) the command prints it.
"""

import json
import os
import re
import shutil
import subprocess

import pytest

from artemis_it import ADMIN_PASSWORD, artemis_bin

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOC = os.path.join(ROOT, "docs", "ROUTING.md")
FENCE_RE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)


def blocks():
    """[(lang, text)] of the fenced blocks, in order."""
    with open(DOC, encoding="utf-8") as f:
        return [(m.group(1), m.group(2)) for m in FENCE_RE.finditer(f.read())]


def commands(text):
    """The shell commands of a block: lines joined while they end with a
    backslash or a single quote is open."""
    out, cur = [], ""
    for line in text.splitlines():
        cur = cur + "\n" + line if cur else line
        if cur.endswith("\\") or cur.count("'") % 2:
            continue
        out.append(cur.strip())
        cur = ""
    assert not cur, "unterminated command in docs/ROUTING.md: %r" % cur
    return [c for c in out if c and not c.startswith("#")]


ASSIGN_RE = re.compile(r"^([A-Z_]+)=(.*)$", re.S)


def run(node, cmd, env):
    """Run one command of the doc in env (its variables: TOKEN, AUTH)."""
    cmd = cmd.replace("localhost:8080", "127.0.0.1:%d" % node.port)
    cmd = cmd.replace('"password":"..."', '"password":"%s"' % ADMIN_PASSWORD)
    if cmd.startswith("artemis "):
        cmd = "%s %s --url %s --token \"$TOKEN\"" % (artemis_bin(), cmd[len("artemis "):],
                                                     node.base)
    m = ASSIGN_RE.match(cmd)
    if m:
        cmd = 'printf %%s %s' % m.group(2)
    p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=30,
                       env=env)
    assert p.returncode == 0, "%s\n-> %d\n%s%s" % (cmd, p.returncode, p.stdout, p.stderr)
    if m:
        assert p.stdout, "%s set nothing" % cmd
        env[m.group(1)] = p.stdout
        return ""
    try:
        body = json.loads(p.stdout)
    except ValueError:
        return p.stdout
    if isinstance(body, dict):
        assert body.get("success") is not False, (cmd, body)
        rs = body.get("responseStatus")
        assert not rs or rs.get("errorCode") == "success", (cmd, body)
    return p.stdout


def squash(text):
    return [" ".join(line.split()) for line in text.strip().splitlines()]


@pytest.fixture
def default_node(node_factory):
    return node_factory(omit=("node.region", "node.zone"))


def test_routing_doc_examples_work_as_written(default_node):
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed (scripts/deps.sh installs it)")
    found = blocks()
    ran = 0
    env = dict(os.environ)
    for k, (lang, text) in enumerate(found):
        if lang != "sh":
            continue
        out = ""
        for cmd in commands(text):
            out = run(default_node, cmd, env)
            ran += 1
        nxt = found[k + 1] if k + 1 < len(found) else None
        if nxt and nxt[0] == "":
            assert squash(out) == squash(nxt[1]), \
                "docs/ROUTING.md shows\n%s\nthe command printed\n%s" % (nxt[1], out)
    assert ran >= 30, "docs/ROUTING.md has only %d example commands" % ran

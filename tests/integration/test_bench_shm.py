"""
test_bench_shm.py - `artemis-bench shm` as a user runs it (docs/BENCHMARKS.md):
every measurement reports a positive rate, --only picks measurements, the
region passes shm_check at the end (exit 0), and nothing is left in /dev/shm.
Functional only: the figures themselves are measured with bench/, never
asserted here.
"""

import json
import os
import subprocess

import pytest

BENCH = os.environ.get("ARTEMIS_BENCH") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "artemis-bench")

SMALL = ["--instances", "20000", "--services", "200", "--seconds", "0.1", "--json"]


def run_shm(*args):
    """Run it; its regions are /artemis-bench-<pid>[-baseline], gone after."""
    p = subprocess.Popen([BENCH, "shm", *SMALL, *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=120)
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    mine = ("artemis-bench-%d" % p.pid, "artemis-bench-%d-baseline" % p.pid)
    left = [n for n in os.listdir("/dev/shm") if n in mine]
    assert not left, "left in /dev/shm: %s" % left
    return subprocess.CompletedProcess(p.args, p.returncode, out, err), rows


@pytest.fixture(scope="module")
def full_run():
    p, rows = run_shm()
    return p, rows


def test_every_measurement_reports(full_run):
    p, rows = full_run
    assert p.returncode == 0, p.stderr
    ops = {r["op"]: r for r in rows}
    for op in ("fill (register new)", "baseline: random 64 B reads",
               "heartbeat (1 process)", "heartbeat x100 (1 process)", "lookup (1 process)",
               "lookup view x100 (1 process)", "lookup x100 (1 process)",
               "service read (1 process)", "register (1 process)",
               "mixed: register (writer)", "mixed: heartbeat x100 (reader)",
               "mixed: lookup view x100 (reader)", "mixed: lookup x100 (reader)"):
        assert op in ops, "missing %r in %s" % (op, sorted(ops))
        assert ops[op]["rate"] > 0, ops[op]
    assert any(op.startswith("baseline: random") and op != "baseline: random 64 B reads"
               for op in ops)
    mem = ops["memory"]
    assert mem["instances"] == 20000 and mem["metadata"] == 200
    assert 0 < mem["bytes_per_instance"] < 4096
    assert "shm_check" not in p.stderr


def test_only_runs_the_named_measurements():
    p, rows = run_shm("--only", "lookup-view-batch,heartbeat")
    assert p.returncode == 0, p.stderr
    assert [r["op"] for r in rows] == ["fill (register new)", "memory",
                                       "heartbeat (1 process)",
                                       "lookup view x100 (1 process)"]


def test_bad_arguments_exit_2_with_usage():
    for args in (["--metadata", "9000"], ["--seconds", "0"], ["--instances", "10",
                                                             "--services", "20"]):
        p = subprocess.run([BENCH, "shm", *args], capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, (args, p.returncode)
        assert "usage: artemis-bench shm" in p.stderr

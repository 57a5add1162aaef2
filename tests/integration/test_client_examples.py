"""
test_client_examples.py - the programs of examples/ (built by make next to
the artemis binary): a C service that registers itself and answers HTTP
(the client on the service's own event base), and a C caller that
discovers it, picks an instance and calls it (the client on its own
thread).  Both run as a user would run them, and again under valgrind:
after artemis_client_free nothing is leaked and no memory error is seen.
"""

import os
import shutil
import signal
import subprocess

import pytest

from artemis_it import artemis_bin, instance_ids, uniq, wait_for

EXAMPLES = os.path.join(os.path.dirname(artemis_bin()), "examples")
VALGRIND = ["valgrind", "--quiet", "--leak-check=full", "--show-leak-kinds=all",
            "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=99"]


def example(name):
    path = os.path.join(EXAMPLES, name)
    assert os.access(path, os.X_OK), "%s is not built (make)" % path
    return path


def start_service(node, svc, wrap=()):
    p = subprocess.Popen(list(wrap) + [example("hello-service"), "--url", node.base,
                                       "--service", svc],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.startswith("ready http://127.0.0.1:"), (line, p.stderr.read())
    return p, line.split()[1]


def stop_service(p):
    p.send_signal(signal.SIGTERM)
    rc = p.wait(30)
    out, err = p.communicate()
    return rc, out, err


def test_service_and_caller(node):
    svc = uniq("hello")
    s1, url1 = start_service(node, svc)
    s2, url2 = start_service(node, svc)
    try:
        assert len(instance_ids(node, svc)) == 2
        r = subprocess.run([example("hello-caller"), "--url", node.base, "--service", svc,
                            "--count", "4"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        answers = r.stdout.splitlines()
        assert len(answers) == 4
        # round robin over the two instances (no route rules: the default group)
        assert sorted(set(answers)) == sorted("hello from hello-%s" % u.rsplit(":", 1)[1]
                                              .rstrip("/") for u in (url1, url2))
    finally:
        rc1, out1, _ = stop_service(s1)
        rc2, out2, _ = stop_service(s2)
    assert (rc1, rc2) == (0, 0)
    assert out1.strip() == out2.strip() == "stopped"
    wait_for(lambda: instance_ids(node, svc) == [], 5, what="both unregistered at exit")
    r = subprocess.run([example("hello-caller"), "--url", node.base, "--service", svc],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "no instance up" in r.stderr, r


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind missing (scripts/deps.sh)")
def test_examples_are_valgrind_clean(node):
    svc = uniq("vg")
    s, _ = start_service(node, svc, VALGRIND)
    try:
        r = subprocess.run(VALGRIND + [example("hello-caller"), "--url", node.base,
                                       "--service", svc, "--count", "3"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("hello from") == 3
    finally:
        rc, out, err = stop_service(s)
    assert rc == 0, err
    assert "stopped" in out
    wait_for(lambda: instance_ids(node, svc) == [], 5, what="the unregister at exit")


def test_install_and_build_against_it(node, tmp_path):
    """make install-client PREFIX=/usr DESTDIR=...: the header, the libraries
    and artemis-client.pc; a program built with pkg-config from there (and
    one linked with the static library) runs."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    dest = str(tmp_path / "dest")
    r = subprocess.run(["make", "-s", "-C", root, "BUILD=" + os.path.dirname(artemis_bin()),
                        "install-client", "PREFIX=/usr", "DESTDIR=" + dest],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    for f in ("include/artemis/client.h", "lib/libartemis-client.so.1", "lib/libartemis-client.so",
              "lib/libartemis-client.a", "lib/pkgconfig/artemis-client.pc"):
        assert os.path.exists(os.path.join(dest, "usr", f)), f
    with open(os.path.join(dest, "usr/lib/pkgconfig/artemis-client.pc")) as f:
        assert "prefix=/usr\n" in f.read()
    env.update(PKG_CONFIG_PATH=os.path.join(dest, "usr/lib/pkgconfig"),
               PKG_CONFIG_SYSROOT_DIR=dest)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "artemis-client"],
                           capture_output=True, text=True, env=env, check=True).stdout.split()
    src = os.path.join(root, "examples", "hello_caller.c")
    shared, static = str(tmp_path / "caller"), str(tmp_path / "caller-static")
    subprocess.run(["cc", "-o", shared, src] + flags, check=True, env=env)
    subprocess.run(["cc", "-o", static, src, "-I" + os.path.join(dest, "usr/include"),
                    os.path.join(dest, "usr/lib/libartemis-client.a"), "-lhttp_parser",
                    "-lnettle", "-levent", "-ljansson", "-lpthread"], check=True)
    svc = uniq("none")
    for prog, extra in ((shared, {"LD_LIBRARY_PATH": os.path.join(dest, "usr/lib")}),
                        (static, {})):
        r = subprocess.run([prog, "--url", node.base, "--service", svc], capture_output=True,
                           text=True, timeout=30, env=dict(env, **extra))
        assert r.returncode == 1 and "%s: no instance up" % svc in r.stderr, (prog, r)

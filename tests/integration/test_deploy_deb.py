"""
test_deploy_deb.py - the Debian package as an operator gets it: built by
`make deb` in a clean clone of this repository, installed with apt into a
minimal Debian root made at test time (debootstrap, no container), and run
there as the artemis user.

It needs root, the packaging tools (scripts/deps.sh --deb) and Debian's
mirror.  The first run, `make test-deb` (or ARTEMIS_TEST_DEB=1), makes a
minimal root with debootstrap and caches it in build/debroot (a tarball,
apt's package lists and downloaded packages, and ccache's compilations of
the package build); `make test` runs this test whenever that cache exists
and says it is skipped, and why, otherwise.  With the cache a run takes 30
to 90 s on 2 shared cores (the upper end when a changed header makes the
package build compile everything again); the first about 4 to 5 minutes.
What each step took is printed at the end (make test-deb).  Every chroot
runs in a private mount namespace (unshare -m): /proc and the caches are
mounted there and vanish with it.

Checked: the package builds from a clean clone; apt installs it and its
dependencies; `artemis version` matches the package version; the config is
in /etc/artemis (data_dir /var/lib/artemis, log in /var/log/artemis, owned
root:artemis 0640); the artemis user exists; /var/lib/artemis is 0750; the
unit is installed, enabled and `systemd-analyze verify` accepts it in that
root; a node runs there as artemis and `artemis check` passes; logrotate
with the packaged configuration rotates the log and the node reopens it
(SIGUSR1); reinstalling keeps a changed config and the store; remove keeps
the config, purge removes it and the logs but keeps the store.  And the
Dockerfile, carried out by hand in a fresh bookworm root (no Docker engine
here), gives an image whose command serves and whose HEALTHCHECK passes.
"""

import os
import json
import re
import shlex
import shutil
import subprocess
import time
import urllib.request

import pytest

from artemis_it import HOST, free_port, http_request, wait_for

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CACHE = os.path.join(REPO, "build", "debroot")
SUITE = "bookworm"
MIRROR = os.environ.get("ARTEMIS_DEB_MIRROR", "http://deb.debian.org/debian")
BASE_TAR = os.path.join(CACHE, "%s-minbase.tar" % SUITE)

TIMES = {}


def _missing_tools():
    if os.geteuid() != 0:
        return "root (debootstrap and chroot)"
    for tool in ("git", "dpkg-buildpackage", "debootstrap", "unshare", "chroot", "tar"):
        if shutil.which(tool) is None:
            return tool
    return None


def remove_later(path):
    """Delete a root in the background: a few hundred MB just written take
    the disk seconds to let go of, and nothing waits for them."""
    subprocess.Popen(["rm", "-rf", path], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(cmd, timeout=900, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert p.returncode == 0, "%s -> %d\n--- stdout\n%s\n--- stderr\n%s" % (
        cmd, p.returncode, p.stdout[-4000:], p.stderr[-4000:])
    return p


def chroot(root, script, env=None, check=True, timeout=600, cache_lists=True):
    """Run a shell script as root inside `root`, in a private mount
    namespace with /proc and apt's caches mounted (the package lists only
    with cache_lists: a script that deletes them must not reach the cache).
    Returns the process."""
    for d in ("apt-lists", "apt-archives"):
        os.makedirs(os.path.join(CACHE, d, "partial"), exist_ok=True)
    setup = (
        'mount -t proc proc "$R/proc"\n' +
        ('mount --bind "$C/apt-lists" "$R/var/lib/apt/lists"\n' if cache_lists else '') +
        'mount --bind "$C/apt-archives" "$R/var/cache/apt/archives"\n'
        'cp /etc/resolv.conf "$R/etc/resolv.conf"\n'
        'mkdir -p "$R/dev/shm" && chmod 1777 "$R/dev/shm"\n'
        'exec chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin '
        'DEBIAN_FRONTEND=noninteractive /bin/sh -ec "$S"\n')
    exports = "".join("export %s=%s\n" % (k, shlex.quote(v)) for k, v in (env or {}).items())
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", "/bin/sh", "-ec",
                        setup],
                       env={"R": root, "C": CACHE, "S": exports + script,
                            "PATH": os.environ["PATH"]},
                       capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, "chroot script failed (%d)\n%s\n--- stdout\n%s\n--- " \
            "stderr\n%s" % (p.returncode, script, p.stdout[-4000:], p.stderr[-4000:])
    return p


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    missing = _missing_tools()
    if missing:
        pytest.skip("the Debian package test needs %s (scripts/deps.sh --deb installs the "
                    "tools)" % missing)
    try:
        urllib.request.urlopen(urllib.request.Request(
            "%s/dists/%s/InRelease" % (MIRROR, SUITE), method="HEAD"), timeout=10).close()
    except OSError as e:
        pytest.skip("the Debian package test needs Debian's mirror %s: %s" % (MIRROR, e))
    if not os.path.exists(BASE_TAR) and os.environ.get("ARTEMIS_TEST_DEB") != "1":
        pytest.skip("the Debian package test: no minimal Debian root in %s yet; `make "
                    "test-deb` makes it once (debootstrap and a first compile: about 4 "
                    "minutes), then every make test runs this test (30 to 90 s)" % CACHE)
    return str(tmp_path_factory.mktemp("deb"))


@pytest.fixture(scope="module")
def package(work):
    """`make deb` in a clean clone of the repository: the .deb's path."""
    t = time.monotonic()
    src = os.path.join(work, "src")
    run(["git", "clone", "-q", REPO, src])
    env = dict(os.environ)
    if shutil.which("ccache"):  # compilations kept across runs (hits: the same flags and text)
        env.update(CC="ccache gcc", CCACHE_DIR=os.path.join(CACHE, "ccache"))
    run(["make", "-C", src, "deb"], timeout=1800, env=env)
    TIMES["build the package from a clean clone"] = time.monotonic() - t
    debs = [f for f in os.listdir(os.path.join(src, "build", "deb"))
            if re.match(r"artemis_[^_]+_[a-z0-9]+\.deb$", f)]
    assert len(debs) == 1, debs
    return os.path.join(src, "build", "deb", debs[0])


@pytest.fixture(scope="module")
def root(work, package):
    """A minimal Debian root with the package installed by apt."""
    t = time.monotonic()
    if not os.path.exists(BASE_TAR):
        os.makedirs(CACHE, exist_ok=True)
        tmp = os.path.join(CACHE, "root.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        run(["debootstrap", "--variant=minbase", SUITE, tmp, MIRROR], timeout=1800)
        for f in os.listdir(os.path.join(tmp, "var", "cache", "apt", "archives")):
            if f.endswith(".deb"):
                os.unlink(os.path.join(tmp, "var", "cache", "apt", "archives", f))
        run(["tar", "-C", tmp, "-cf", BASE_TAR + ".part", "."])
        os.rename(BASE_TAR + ".part", BASE_TAR)
        shutil.rmtree(tmp)
        TIMES["debootstrap a minimal %s root (cached afterwards)" % SUITE] = \
            time.monotonic() - t
        t = time.monotonic()
    r = os.path.join(work, "root")
    os.makedirs(r)
    run(["tar", "-C", r, "-xf", BASE_TAR])
    shutil.copy(package, os.path.join(r, "tmp", "artemis.deb"))
    chroot(r, "printf '#!/bin/sh\\nexit 101\\n' >/usr/sbin/policy-rc.d\n"
              "chmod +x /usr/sbin/policy-rc.d\n"
              "apt-get update -qq\n"
              "apt-get install -y -qq --no-install-recommends /tmp/artemis.deb logrotate "
              ">/tmp/apt.log 2>&1 || "
              "{ cat /tmp/apt.log; exit 1; }\n")
    TIMES["install the package and its dependencies with apt"] = time.monotonic() - t
    yield r
    remove_later(r)


def passwd_entry(root, user):
    with open(os.path.join(root, "etc", "passwd")) as f:
        for line in f:
            fields = line.rstrip("\n").split(":")
            if fields[0] == user:
                return fields
    return None


def test_package_installs(root):
    p = chroot(root, "artemis version; dpkg-query -W -f='${Version}\\n${Recommends}\\n' artemis")
    version, pkg, recommends = p.stdout.split("\n")[:3]
    assert recommends == "logrotate", recommends
    assert re.match(r"artemis \S+ \(registry layout \d+\)$", version), version
    assert version.split()[1] == pkg, "binary %s, package %s" % (version, pkg)

    user = passwd_entry(root, "artemis")
    assert user is not None, "no artemis user"
    assert int(user[2]) < 1000 and user[5] == "/var/lib/artemis", user
    uid = int(user[2])
    for d in ("var/lib/artemis", "var/log/artemis"):
        st = os.stat(os.path.join(root, d))
        assert (st.st_uid, st.st_mode & 0o7777) == (uid, 0o750), (d, oct(st.st_mode))

    conf = os.path.join(root, "etc", "artemis", "artemis.conf")
    st = os.stat(conf)
    assert st.st_uid == 0 and st.st_gid == int(user[3]) and st.st_mode & 0o777 == 0o640
    text = open(conf).read()
    assert re.search(r"^data_dir = /var/lib/artemis ;", text, re.M)
    assert re.search(r"^file = /var/log/artemis/artemis.log ;", text, re.M)

    unit = os.path.join(root, "lib", "systemd", "system", "artemis.service")
    assert "Type=notify" in open(unit).read()
    wants = os.path.join(root, "etc", "systemd", "system", "multi-user.target.wants",
                         "artemis.service")
    assert os.path.islink(wants), "artemis.service is not enabled"
    assert os.path.exists(os.path.join(root, "etc", "logrotate.d", "artemis"))


def test_unit_verifies_in_the_root(root):
    t = time.monotonic()
    p = chroot(root, "apt-get install -y -qq --no-install-recommends systemd >/tmp/apt.log 2>&1 || "
                     "{ cat /tmp/apt.log; exit 1; }\n"
                     "systemd-analyze verify /lib/systemd/system/artemis.service 2>&1")
    TIMES["install systemd into the root and verify the unit"] = time.monotonic() - t
    assert p.stdout.strip() == "", p.stdout


def node_env(port, cport):
    return {"ARTEMIS_NODE_LISTEN": "%s:%d" % (HOST, port),
            "ARTEMIS_CLUSTER_LISTEN": "%s:%d" % (HOST, cport),
            "ARTEMIS_NODE_WORKERS": "1",
            "ARTEMIS_REGISTRY_MAX_INSTANCES": "10000",
            "ARTEMIS_REGISTRY_SHM_NAME": "/artemis-debtest-%d" % os.getpid()}


def test_node_runs_as_artemis_and_reopens_its_log(root):
    port, cport = free_port(), free_port()
    env = node_env(port, cport)
    log = os.path.join(root, "var", "log", "artemis", "artemis.log")
    # Left running when the script ends: the namespace lives on with it.
    chroot(root, "runuser -u artemis -- /usr/bin/artemis server -c /etc/artemis/artemis.conf "
                 "</dev/null >/var/lib/artemis/stdout.log 2>&1 &", env=env)
    try:
        wait_for(lambda: os.path.exists(log) and "] serving: 1 workers ready" in open(log).read(),
                 30.0, what="the packaged node to serve")
        st, _, _ = http_request(HOST, port, "GET", "/ready")
        assert st == 200
        p = chroot(root, "runuser -u artemis -- artemis check -c /etc/artemis/artemis.conf\n"
                         "ps -o user=,args= -u artemis", env=env)
        assert "check: ok" in p.stdout, p.stdout
        assert re.search(r"^artemis +artemis: master", p.stdout, re.M), p.stdout
        assert re.search(r"^artemis +artemis: worker 1", p.stdout, re.M), p.stdout

        chroot(root, "logrotate -f /etc/logrotate.d/artemis")
        assert "] serving: 1 workers ready" in open(log + ".1").read()
        wait_for(lambda: "reopened the log file" in open(log).read(), 10.0,
                 what="the master to reopen its log after logrotate")
        st = os.stat(log)
        assert st.st_mode & 0o777 == 0o640 and st.st_uid == int(passwd_entry(root, "artemis")[2])
    finally:
        stop = chroot(root, "runuser -u artemis -- artemis stop -c /etc/artemis/artemis.conf",
                      env=env, check=False)
    assert stop.returncode == 0, stop.stderr
    assert "] stopped" in open(log).read()


def test_reinstall_keeps_config_and_store(root):
    conf = os.path.join(root, "etc", "artemis", "artemis.conf")
    store = os.path.join(root, "var", "lib", "artemis", "artemis.db")
    with open(conf, "a") as f:
        f.write("; changed by the operator\n")
    with open(store, "w") as f:
        f.write("the store")
    chroot(root, "apt-get install -y -qq --reinstall /tmp/artemis.deb >/tmp/apt.log 2>&1 || "
                 "{ cat /tmp/apt.log; exit 1; }")
    assert open(conf).read().endswith("; changed by the operator\n")
    assert open(store).read() == "the store"

    chroot(root, "apt-get remove -y -qq artemis >/tmp/apt.log 2>&1 || "
                 "{ cat /tmp/apt.log; exit 1; }")
    assert not os.path.exists(os.path.join(root, "usr", "bin", "artemis"))
    assert os.path.exists(conf) and os.path.exists(store)

    chroot(root, "apt-get purge -y -qq artemis >/tmp/apt.log 2>&1 || "
                 "{ cat /tmp/apt.log; exit 1; }")
    assert not os.path.exists(conf)
    assert not os.path.exists(os.path.join(root, "var", "log", "artemis"))
    assert open(store).read() == "the store"


def test_container_image_built_in_a_debian_root(work):
    """No Docker engine here: the Dockerfile is carried out by hand.  The
    build stage's RUN on this Debian 12 machine, the runtime stage in a
    fresh minimal bookworm root (what bookworm-slim is): its COPY, RUN, USER,
    WORKDIR and ENV in order, then ENTRYPOINT + CMD as that user: the
    HEALTHCHECK command must succeed against it and it serves the console."""
    from test_deploy_files import dockerfile, runtime_copy

    t = time.monotonic()
    instrs = dockerfile()
    out = os.path.join(work, "out")
    (build_run,) = [a for s, i, a in instrs if s == 0 and i == "RUN"]
    run(["sh", "-ec", build_run.replace("/out", out)], cwd=REPO)

    img = os.path.join(work, "image")
    os.makedirs(img)
    run(["tar", "-C", img, "-xf", BASE_TAR])
    # apt's lists as the cache has them (a copy: the image's RUN deletes its
    # own), so its `apt-get update` finds them current instead of downloading
    lists = os.path.join(CACHE, "apt-lists")
    run(["cp", "-a", "--no-target-directory", lists, os.path.join(img, "var/lib/apt/lists")])
    user, workdir, env = "root", "/", {}
    for stage, instr, args in instrs:
        if stage != 1:
            continue
        if instr == "COPY":
            runtime_copy(args, out, img)
        elif instr == "RUN":
            assert user == "root", "RUN after USER: %s" % args
            chroot(img, args, env=env, cache_lists=False)
        elif instr == "USER":
            user = args
        elif instr == "WORKDIR":
            workdir = args
        elif instr == "ENV":
            k, v = args.split("=", 1)
            env[k] = v
    entry = json.loads([a for s, i, a in instrs if s == 1 and i == "ENTRYPOINT"][0])
    cmd = json.loads([a for s, i, a in instrs if s == 1 and i == "CMD"][0])
    (health,) = [a for s, i, a in instrs if s == 1 and i == "HEALTHCHECK"]
    health = health[health.index(" CMD ") + 5:]

    port = free_port()
    env.update(node_env(port, free_port()))
    env["HEALTHCHECK_URL"] = "http://%s:%d/ready" % (HOST, port)
    argv = " ".join(shlex.quote(a) for a in entry + cmd)
    chroot(img, "cd %s\nrunuser -u %s -- %s </dev/null >/tmp/stderr.log 2>&1 &"
           % (workdir, user, argv), env=env)
    try:
        wait_for(lambda: chroot(img, "runuser -u %s -- sh -c %s" % (user, shlex.quote(health)),
                                env=env, check=False).returncode == 0,
                 30.0, interval=0.5, what="the image's HEALTHCHECK to pass")
        log = open(os.path.join(img, "tmp", "stderr.log")).read()
        assert "serving: 1 workers ready" in log, log
        st, headers, _ = http_request(HOST, port, "GET", "/console/")
        assert st == 200 and headers.get("content-type", "").startswith("text/html"), st
        owner = chroot(img, "stat -c %U /proc/$(cat /var/lib/artemis/artemis.pid)", env=env)
        assert owner.stdout.strip() == user == "artemis", owner.stdout
    finally:
        stop = chroot(img, "runuser -u %s -- artemis stop -c /etc/artemis/artemis.conf" % user,
                      env=env, check=False)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    TIMES["carry out the Dockerfile in a bookworm root"] = time.monotonic() - t
    remove_later(img)


def test_report_times():
    """Not a check: prints what each step took (make test-deb shows it)."""
    for what, secs in TIMES.items():
        print("deb test: %-55s %6.1f s" % (what, secs))

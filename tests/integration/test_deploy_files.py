"""
test_deploy_files.py - the deployment files that cannot run here in full:
the Dockerfile (no Docker engine on this machine, and hadolint is not a
Debian package), deploy/compose.yaml, the systemd unit, and what the Debian
package is built from.  The package itself is built and installed by
test_deploy_deb.py (make test-deb).

- Dockerfile: its instructions are parsed and checked (two stages, Debian
  bookworm pinned by a dated tag or digest, slim runtime, no ADD, non-root
  USER, a HEALTHCHECK on /ready, exec-form ENTRYPOINT/CMD), and the build
  stage's RUN command is executed here with /out replaced by a temporary
  directory; the runtime stage's COPYs, carried out into an empty root,
  must bring everything `make install` put under /usr/share (the console),
  its package list must name real Debian packages, and the node run from
  that root must answer the HEALTHCHECK's URL and serve /console/.
- compose.yaml: valid YAML, three nodes each peering with the other two, a
  cluster key required from the environment, every ARTEMIS_* variable a
  real configuration key (artemis check reads them), and a shm_size that
  holds the region of its max_instances (measured on a real region).
- the unit: `systemd-analyze verify` prints nothing.
- debian/: Build-Depends covers scripts/deps.sh's build packages.
"""

import json
import os
import re
import shlex
import shutil
import subprocess

import pytest
import yaml

from artemis_it import HOST, artemis_bin, free_port, http_request, wait_for

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def read(*path):
    with open(os.path.join(REPO, *path)) as f:
        return f.read()


# ---------------------------------------------------------------- Dockerfile

def dockerfile():
    """[(stage index, INSTRUCTION, arguments)] with continuations joined and
    comments (but not parser directives) dropped."""
    lines, cur = [], ""
    for raw in read("Dockerfile").splitlines():
        s = raw.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        lines.append(cur + s)
        cur = ""
    out, stage = [], -1
    for ln in lines:
        instr, _, args = ln.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            stage += 1
        out.append((stage, instr, args.strip()))
    return out


def expand_args(text, instrs):
    args = dict(re.match(r"(\w+)=(\S+)", a).groups()
                for s, i, a in instrs if i == "ARG" and s == -1 and "=" in a)
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], text)


def test_dockerfile_structure():
    instrs = dockerfile()
    froms = [(s, a) for s, i, a in instrs if i == "FROM"]
    assert len(froms) == 2, froms
    build = expand_args(froms[0][1], instrs)
    runtime = expand_args(froms[1][1], instrs)
    assert re.match(r"^debian:bookworm-\d{8}(@sha256:[0-9a-f]{64})? AS build$", build), build
    assert re.match(r"^debian:bookworm-\d{8}-slim(@sha256:[0-9a-f]{64})? AS runtime$",
                    runtime), runtime
    assert not [a for s, i, a in instrs if i == "ADD"], "ADD (use COPY; never fetch URLs)"
    assert not re.search(r"\b(curl|wget)\b[^|&;]*https?://", read("Dockerfile").split(
        "HEALTHCHECK")[0]), "the image must not download anything but Debian packages"

    final = [(i, a) for s, i, a in instrs if s == 1]
    kinds = [i for i, _ in final]
    assert "USER" in kinds and [a for i, a in final if i == "USER"][-1] not in ("root", "0")
    assert kinds.index("USER") < kinds.index("ENTRYPOINT"), "USER comes before ENTRYPOINT"
    hc = [a for i, a in final if i == "HEALTHCHECK"]
    assert len(hc) == 1 and "CMD" in hc[0], hc
    env = dict(a.split("=", 1) for i, a in final if i == "ENV")
    assert env["HEALTHCHECK_URL"].endswith("/ready") and "$HEALTHCHECK_URL" in hc[0]
    entry = json.loads([a for i, a in final if i == "ENTRYPOINT"][0])
    cmd = json.loads([a for i, a in final if i == "CMD"][0])
    assert entry == ["/usr/bin/artemis"] and cmd[:1] == ["server"], (entry, cmd)
    assert "8080" in [a for i, a in final if i == "EXPOSE"][0].split()
    for i, a in final:
        if i == "COPY":
            assert a.startswith("--from=build "), "runtime COPY only from the build stage: " + a

    ignore = read(".dockerignore").split()
    assert ".git" in ignore and "build" in ignore
    for needed in ("Makefile", "scripts", "conf", "include", "master", "shm"):
        assert needed not in ignore, needed


def runtime_copy(args, out, root):
    """One COPY --from=build of the runtime stage, carried out from the
    build output `out` (the stage's /out) into the directory `root`."""
    flag, src, dst = args.split()
    assert flag == "--from=build" and src.startswith("/out/"), args
    src = os.path.join(out, src[len("/out/"):])
    assert os.path.exists(src), "missing in the build output: " + src
    if os.path.isdir(src):
        shutil.copytree(src, root + dst, dirs_exist_ok=True)
    else:
        os.makedirs(os.path.dirname(root + dst), exist_ok=True)
        shutil.copy(src, root + dst)


def files_under(top):
    return sorted(os.path.relpath(os.path.join(d, f), top)
                  for d, _, fs in os.walk(top) for f in fs)


def test_dockerfile_build_stage_runs(tmp_path):
    """The build stage's RUN, executed here with /out in a temporary
    directory; then the runtime stage's COPYs into an empty root: every
    file `make install` put under PREFIX/share (the console, the man pages)
    must be there, and the image's CMD run from that root must serve
    /ready and the console."""
    instrs = dockerfile()
    run = [a for s, i, a in instrs if s == 0 and i == "RUN"]
    assert len(run) == 1
    out = str(tmp_path / "out")
    script = run[0].replace("/out", out)
    p = subprocess.run(["sh", "-ec", script], cwd=REPO, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]

    root = str(tmp_path / "image")
    for s, i, a in instrs:
        if s == 1 and i == "COPY":
            runtime_copy(a, out, root)
    share = files_under(os.path.join(out, "usr", "share"))
    assert "artemis/console/index.html" in share, share[:20]
    missing = sorted(set(share) - set(files_under(os.path.join(root, "usr", "share"))))
    assert not missing, "installed under /usr/share but not in the image: %s" % missing[:10]
    pkgs = open(os.path.join(out, "runtime-packages")).read().split()
    assert "libevent-2.1-7" in pkgs and "libjansson4" in pkgs, pkgs
    for pkg in pkgs:
        q = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True,
                           text=True)
        assert "installed" in q.stdout, "runtime package %s is not a Debian package here" % pkg

    conf = os.path.join(root, "etc", "artemis", "artemis.conf")
    assert re.search(r"^data_dir = /var/lib/artemis ;", open(conf).read(), re.M)
    cmd = json.loads([a for s, i, a in instrs if s == 1 and i == "CMD"][0])
    port = free_port()
    shm = "/artemis-test-%d-image" % os.getpid()
    env = {"PATH": os.environ["PATH"],
           "ARTEMIS_NODE_LISTEN": "%s:%d" % (HOST, port),
           "ARTEMIS_NODE_DATA_DIR": str(tmp_path / "data"),
           "ARTEMIS_NODE_WORKERS": "1",
           "ARTEMIS_REGISTRY_SHM_NAME": shm,
           "ARTEMIS_REGISTRY_MAX_INSTANCES": "1000",
           "ARTEMIS_CLUSTER_LISTEN": "%s:%d" % (HOST, free_port())}
    argv = [os.path.join(root, "usr", "bin", "artemis")] + [conf if c.endswith(".conf") else c
                                                            for c in cmd]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = "/ready"
        wait_for(lambda: http_request(HOST, port, "GET", url, timeout=1.0)[0] == 200, 15.0,
                 what="the image's CMD to answer /ready")
        st, headers, _ = http_request(HOST, port, "GET", "/console/", timeout=5.0)
        assert st == 200 and headers.get("content-type", "").startswith("text/html"), \
            (st, headers)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
        if os.path.exists("/dev/shm" + shm):
            os.unlink("/dev/shm" + shm)
    assert proc.returncode == 0, err
    assert b"serving: 1 workers ready" in err, "the image logs to stderr (docker logs)"


def test_runtime_deps_refuses_a_library_of_no_package(tmp_path):
    lib = tmp_path / "libfake.so"
    src = tmp_path / "f.c"
    src.write_text("int fake(void) { return 1; }\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    main = tmp_path / "m.c"
    main.write_text("int fake(void);\nint main(void) { return fake() - 1; }\n")
    exe = tmp_path / "m"
    subprocess.run(["cc", "-o", str(exe), str(main), "-L", str(tmp_path), "-lfake",
                    "-Wl,-rpath," + str(tmp_path)], check=True)
    p = subprocess.run(["sh", os.path.join(REPO, "scripts", "runtime-deps.sh"), str(exe)],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "no Debian package ships %s" % lib in p.stderr, p


# ------------------------------------------------------------------ compose

def compose():
    return yaml.safe_load(read("deploy", "compose.yaml"))


def test_compose_three_node_cluster():
    c = compose()
    nodes = {k: v for k, v in c["services"].items() if k.startswith("node")}
    assert sorted(nodes) == ["node1", "node2", "node3"]
    host_ports = set()
    for name, svc in nodes.items():
        ctx = os.path.normpath(os.path.join(REPO, "deploy", svc["build"]["context"]))
        assert os.path.exists(os.path.join(ctx, svc["build"]["dockerfile"]))
        env = svc["environment"]
        assert env["ARTEMIS_NODE_NAME"] == name
        assert re.match(r"^\$\{ARTEMIS_CLUSTER_KEY:\?[^}]+\}$", env["ARTEMIS_CLUSTER_KEY"])
        peers = [p.split() for p in env["ARTEMIS_CLUSTER_PEER"].split(",")]
        assert sorted(p[0] for p in peers) == sorted(set(nodes) - {name})
        for pname, zone, url, repl in peers:
            assert (zone, url, repl) == (env["ARTEMIS_NODE_ZONE"], "http://%s:8080" % pname,
                                         "%s:9090" % pname)
        (port,) = svc["ports"]
        host, _, container = port.partition(":")
        assert container == "8080" and host not in host_ports
        host_ports.add(host)
        assert svc["volumes"][0].endswith(":/var/lib/artemis")
    for svc in ("prometheus", "grafana"):
        assert c["services"][svc]["profiles"] == ["monitoring"]
        for vol in c["services"][svc]["volumes"]:
            assert os.path.exists(os.path.join(REPO, "deploy", vol.split(":")[0]))


def test_compose_environment_is_real_configuration(tmp_path):
    """artemis check parses the configuration before looking for the
    region: exit 2 would be a bad variable, 1 is "no region"."""
    for name, svc in compose()["services"].items():
        if not name.startswith("node"):
            continue
        env = {k: str(v) for k, v in svc["environment"].items()}
        env["ARTEMIS_CLUSTER_KEY"] = "a-test-key-of-32-characters-long!"
        env["ARTEMIS_NODE_DATA_DIR"] = str(tmp_path)
        env["ARTEMIS_REGISTRY_SHM_NAME"] = "/artemis-test-%d-none" % os.getpid()
        env["PATH"] = os.environ["PATH"]
        p = subprocess.run([artemis_bin(), "check"], env=env, capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 1 and "cannot attach region" in p.stderr, \
            (name, p.returncode, p.stderr)


def size_bytes(text):
    m = re.match(r"^(\d+)\s*([kmg]?)b?$", text.lower())
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2)]


def test_compose_shm_size_holds_the_region(node_factory):
    c = compose()
    for name, svc in c["services"].items():
        if not name.startswith("node"):
            continue
        want = int(svc["environment"]["ARTEMIS_REGISTRY_MAX_INSTANCES"])
        n = node_factory(registry={"max_instances": want}, node={"workers": 1})
        region = os.stat("/dev/shm" + n.shm_name).st_size
        assert size_bytes(svc["shm_size"]) >= region, (name, svc["shm_size"], region)
        break  # the nodes share one definition (x-node)


# --------------------------------------------------------------------- unit

def test_systemd_unit_verifies(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: scripts/deps.sh installs systemd")
    unit = read("debian", "artemis.service")
    # verify checks that ExecStart's binary exists: point it at the build
    unit = unit.replace("/usr/bin/artemis", artemis_bin())
    path = tmp_path / "artemis.service"
    path.write_text(unit)
    p = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "" and p.stderr.strip() == "", \
        (p.returncode, p.stdout, p.stderr)
    # and the hardening the issue asks for is there
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "PrivateTmp=yes", "User=artemis", "RemoveIPC=no",
                 "ReadWritePaths=/var/lib/artemis /var/log/artemis",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"):
        assert re.search("^%s$" % re.escape(line), unit, re.M), line
    assert re.search(r"^LimitNOFILE=\d+$", unit, re.M)


# ------------------------------------------------------------------- debian

def test_build_depends_cover_the_build_packages():
    deps = read("scripts", "deps.sh")
    build = re.search(r'^BUILD="([^"]*)"', deps, re.M).group(1).split()
    control = read("debian", "control")
    bd = re.search(r"^Build-Depends:(.*?)^\S", control, re.M | re.S).group(1)
    have = {re.split(r"[\s(]", d.strip())[0] for d in bd.split(",") if d.strip()}
    missing = set(build) - have - {"gcc", "make"}  # build-essential
    assert not missing, "debian/control Build-Depends lacks %s" % sorted(missing)


def test_changelog_version_is_the_binary_version():
    top = read("debian", "changelog").split("\n")[0]
    version = re.match(r"^artemis \(([^)]+)\)", top).group(1)
    out = subprocess.run([artemis_bin(), "version"], capture_output=True, text=True).stdout
    assert out.split()[1] == version, (out, version)


def test_default_file_overrides_are_real_keys(tmp_path):
    """Every ARTEMIS_* example of /etc/default/artemis, uncommented, is a
    configuration key; DAEMON_ARGS is not mistaken for one."""
    env = {"PATH": os.environ["PATH"], "ARTEMIS_NODE_DATA_DIR": str(tmp_path),
           "ARTEMIS_REGISTRY_SHM_NAME": "/artemis-test-%d-none" % os.getpid()}
    for line in read("debian", "artemis.default").splitlines():
        m = re.match(r"^#?((?:ARTEMIS_\w+|DAEMON_ARGS))=(.*)$", line)
        if m:
            env[m.group(1)] = shlex.split(m.group(2))[0] if m.group(2) else ""
    assert "DAEMON_ARGS" in env and len(env) >= 5
    p = subprocess.run([artemis_bin(), "check"], env=env, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1 and "cannot attach region" in p.stderr, p.stderr

"""
artemis_it.py - shared machinery of the black-box integration suite.

Starts real `artemis server` processes (the binary named by $ARTEMIS_BIN) on
free loopback ports with a private shm region, and speaks HTTP to them with
the standard library only.  Every test module imports from here; conftest.py
turns Node into pytest fixtures.

Nothing here sleeps to synchronise: wait_for() polls a condition against a
deadline.
"""

import gzip as gzipmod
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time

REGION = "us-east"
ZONE = "zone-1"
HOST = "127.0.0.1"

SUCCESS = {"status": "success", "errorCode": "success", "message": ""}
PARTIAL_FAIL = {"status": "partial_fail", "errorCode": "partial_fail", "message": ""}
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")
CRASH_RE = re.compile(r"signal (6|11)\b|SIGSEGV|SIGABRT|SIGBUS|core dumped|AddressSanitizer",
                      re.IGNORECASE)
NOT_EXISTING = "Instance is not exising! Need re-register."
# Every test node's first admin ([auth] initial_admin_password), and the
# cheapest Argon2id cost so that logins take milliseconds.
ADMIN_PASSWORD = "test-admin-password"
AUTH_DEFAULTS = {"initial_admin_password": ADMIN_PASSWORD, "password_memlimit_kib": "8192",
                 "password_opslimit": "1"}


def artemis_bin():
    """The binary under test: $ARTEMIS_BIN, else build/artemis of the repo."""
    path = os.environ.get("ARTEMIS_BIN")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "build", "artemis")
    return os.path.abspath(path)


def free_port():
    """A port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def uniq(prefix="svc"):
    """A name no other test uses (tests share module-scoped nodes)."""
    return "%s-%s" % (prefix, secrets.token_hex(4))


def wait_for(cond, timeout=10.0, interval=0.05, what="condition"):
    """Poll cond() until it returns a truthy value; return that value.
    Fails the test with `what` when the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = cond()
        except (OSError, http.client.HTTPException) as e:
            last = None
            err = e
        else:
            err = None
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last value %r%s)"
                                 % (timeout, what, last, ", error %r" % err if err else ""))
        time.sleep(interval)


# ---------------------------------------------------------------- HTTP ----

def _decode_body(headers, raw):
    if headers.get("content-encoding", "").lower() == "gzip":
        raw = gzipmod.decompress(raw)
    return raw


def _parse_json(raw):
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None


def http_request(host, port, method, path, body=None, headers=None, chunked=False,
                 timeout=10.0, tls=None):
    """One request on a fresh connection (HTTPS with tls, an ssl.SSLContext).
    Returns (status, headers, raw body) with header names lowercased and the
    body gunzipped when needed."""
    conn = (http.client.HTTPSConnection(host, port, timeout=timeout, context=tls) if tls
            else http.client.HTTPConnection(host, port, timeout=timeout))
    try:
        hdrs = dict(headers or {})
        if chunked and body is not None:
            data = body
            pieces = [data[i:i + 1000] for i in range(0, len(data), 1000)] or [b""]
            hdrs["Transfer-Encoding"] = "chunked"
            conn.request(method, path, body=iter(pieces), headers=hdrs, encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        rh = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, rh, _decode_body(rh, raw)
    finally:
        conn.close()


def read_response(f):
    """Read one HTTP/1.x response from a binary file object (raw sockets,
    pipelining).  Returns (version, status, headers, body) or None on EOF."""
    line = f.readline()
    if not line:
        return None
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    version, status = parts[0], int(parts[1])
    headers = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int(f.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while f.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            body += f.read(size)
            f.readline()
    elif "content-length" in headers:
        body = f.read(int(headers["content-length"]))
    else:
        body = f.read()  # delimited by close
    return version, status, headers, _decode_body(headers, body)


def raw_exchange(port, data, nresponses, timeout=10.0):
    """Send raw bytes on one connection and read nresponses responses."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(data)
        f = s.makefile("rb")
        out = []
        for _ in range(nresponses):
            r = read_response(f)
            if r is None:
                break
            out.append(r)
        return out


# ---------------------------------------------------------------- nodes ---

class Node:
    """One running `artemis server` with its own config, data dir, ports
    and shm region."""

    def __init__(self, workdir, node=None, registry=None, http=None, log=None,
                 cluster=None, auth=None, omit=(), extra_args=(), fresh=True):
        self.workdir = workdir
        self.port = free_port()
        self.cluster_port = free_port()
        self.name = "it-%d-%s" % (os.getpid(), secrets.token_hex(3))
        self.shm_name = "/artemis-test-%d-%s" % (os.getpid(), secrets.token_hex(4))
        self.data_dir = os.path.join(workdir, "data")
        self.log_path = os.path.join(workdir, "artemis.log")
        self.stdout_path = os.path.join(workdir, "stdout.log")
        self.stderr_path = os.path.join(workdir, "stderr.log")
        self.conf_path = os.path.join(workdir, "artemis.conf")
        self.host = HOST
        self.proc = None
        # A bearer token sent with every request that names none
        # (login()); None: requests go without.
        self.token = None
        # An ssl.SSLContext when [node] listen speaks TLS (test_tls.py).
        self.tls = None
        os.makedirs(self.data_dir, exist_ok=True)
        self.sections = {
            "node": {"name": self.name, "region": REGION, "zone": ZONE,
                     "listen": "%s:%d" % (HOST, self.port), "workers": "2",
                     "data_dir": self.data_dir},
            "registry": {"shm_name": self.shm_name, "max_instances": "100000",
                         "reap_interval_ms": "100"},
            "http": {},
            "cluster": {"listen": "%s:%d" % (HOST, self.cluster_port)},
            "auth": dict(AUTH_DEFAULTS),
            "log": {"file": self.log_path, "level": "info"},
        }
        for sec, kv in (("node", node), ("registry", registry), ("http", http),
                        ("log", log), ("cluster", cluster), ("auth", auth)):
            for k, v in (kv or {}).items():
                self.sections[sec][k] = str(v)
        for dotted in omit:
            sec, _, key = dotted.partition(".")
            self.sections[sec].pop(key, None)
        self.write_config()
        self.extra_args = list(extra_args)
        self.fresh = fresh

    @property
    def base(self):
        return "http://%s:%d" % (self.host, self.port)

    def write_config(self):
        lines = ["; written by tests/integration"]
        for sec, kv in self.sections.items():
            if not kv:
                continue
            lines.append("[%s]" % sec)
            lines.extend("%s = %s" % (k, v) for k, v in kv.items())
            lines.append("")
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines))

    # -- process lifecycle

    def command(self):
        cmd = [artemis_bin(), "server", "-c", self.conf_path]
        if self.fresh:
            cmd.append("--fresh")
        return cmd + self.extra_args

    def start(self, timeout=15.0):
        served = self.read_log().count("] serving: ")
        out = open(self.stdout_path, "ab")
        err = open(self.stderr_path, "ab")
        try:
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, cwd=self.workdir)
        finally:
            out.close()
            err.close()
        self.wait_healthy(timeout)
        # /health answers once one worker serves; the master says when all do.
        wait_for(lambda: self.read_log().count("] serving: ") > served or not self.alive(),
                 timeout, what="every worker of %s serving" % self.name)
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_healthy(self, timeout=15.0):
        def healthy():
            if not self.alive():
                raise AssertionError("artemis exited with %s before answering /health\n%s"
                                     % (self.proc.returncode, self.diagnostics()))
            try:
                st, _, _ = self.get("/health", timeout=1.0)
            except OSError:
                return False
            return st == 200
        wait_for(healthy, timeout, what="GET /health on %s" % self.base)

    def send_signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Stop the master; kill -9 after `timeout`.  Returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode

    def remove_shm(self):
        path = "/dev/shm/" + self.shm_name.lstrip("/")
        if os.path.exists(path):
            os.unlink(path)

    def read_log(self):
        text = ""
        for p in (self.log_path, self.stderr_path, self.stdout_path):
            if os.path.exists(p):
                with open(p, "r", errors="replace") as f:
                    text += f.read()
        return text

    def diagnostics(self, tail=40):
        lines = self.read_log().splitlines()
        return "--- last log lines of %s ---\n%s" % (self.name, "\n".join(lines[-tail:]))

    def crash_lines(self):
        return [ln for ln in self.read_log().splitlines() if CRASH_RE.search(ln)]

    # -- HTTP helpers

    def auth_headers(self, headers=None):
        """headers with this node's token, unless they carry an
        Authorization of their own (or there is no token)."""
        hdrs = dict(headers or {})
        if self.token and not any(k.lower() == "authorization" for k in hdrs):
            hdrs["Authorization"] = "Bearer " + self.token
        return hdrs

    def request(self, method, path, body=None, headers=None, chunked=False, timeout=10.0):
        st, h, raw = http_request(self.host, self.port, method, path, body,
                                  self.auth_headers(headers), chunked, timeout, self.tls)
        return st, h, _parse_json(raw) if raw else None

    def request_raw(self, method, path, body=None, headers=None, chunked=False, timeout=10.0):
        return http_request(self.host, self.port, method, path, body,
                            self.auth_headers(headers), chunked, timeout, self.tls)

    def login(self, username="admin", password=ADMIN_PASSWORD, keep=True):
        """POST /api/auth/login; the access token (kept as self.token, sent
        with every later request, unless keep is False)."""
        st, _, body = http_request(self.host, self.port, "POST", "/api/auth/login",
                                   json.dumps({"username": username,
                                               "password": password}).encode(),
                                   {"Content-Type": "application/json"}, tls=self.tls)
        data = _parse_json(body) if body else None
        assert st == 200, "login as %s -> HTTP %s %r" % (username, st, data)
        token = data["data"]["accessToken"]
        if keep:
            self.token = token
        return token

    def post_json(self, path, obj, gzip=False, chunked=False, headers=None, timeout=10.0):
        data = json.dumps(obj).encode("utf-8")
        hdrs = {"Content-Type": "application/json", "Accept": "application/json"}
        if gzip:
            data = gzipmod.compress(data)
            hdrs["Content-Encoding"] = "gzip"
        hdrs.update(headers or {})
        return self.request("POST", path, data, hdrs, chunked, timeout)

    def get(self, path, headers=None, timeout=10.0):
        return self.request("GET", path, None, headers, timeout=timeout)

    def api(self, path, obj, **kw):
        """POST and insist on HTTP 200 with a JSON body; return the body."""
        st, _, body = self.post_json(path, obj, **kw)
        assert st == 200, "POST %s -> HTTP %s %r" % (path, st, body)
        assert isinstance(body, dict), "POST %s -> non-JSON body %r" % (path, body)
        return body


class Session:
    """One keep-alive connection (one worker sees every request: per-worker
    state such as rate-limiter windows is then exact)."""

    def __init__(self, node, timeout=10.0):
        self.conn = http.client.HTTPConnection(node.host, node.port, timeout=timeout)

    def post_json(self, path, obj):
        data = json.dumps(obj).encode("utf-8")
        self.conn.request("POST", path, body=data, headers={
            "Content-Type": "application/json", "Connection": "keep-alive"})
        resp = self.conn.getresponse()
        raw = resp.read()
        rh = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, rh, _parse_json(_decode_body(rh, raw)) if raw else None

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def start_node(base_dir=None, prepare=None, **kw):
    """Start a node in a fresh directory under base_dir (or a new temp dir).
    prepare(node), when given, runs after the config is written and before
    the process starts (to edit node.sections, node.port, node.extra_args)."""
    workdir = tempfile.mkdtemp(prefix="artemis-it-", dir=base_dir)
    node = Node(workdir, **kw)
    try:
        if prepare is not None:
            prepare(node)
            node.write_config()
        node.start()
    except BaseException:
        node.stop(signal.SIGKILL)
        node.remove_shm()
        raise
    return node


def finish_nodes(nodes):
    """finish_node for each node; every failure is reported together."""
    errors = []
    for node in nodes:
        try:
            finish_node(node)
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        raise AssertionError("\n\n".join(errors))


def finish_node(node):
    """Teardown: SIGTERM (kill -9 after 5 s), remove the shm, and report a
    server that died or crashed during the test."""
    died = node.proc is not None and node.proc.poll() is not None
    rc = node.proc.returncode if died else None
    node.stop()
    node.remove_shm()
    crashes = node.crash_lines()
    problems = []
    if died and rc not in (0, None) and not getattr(node, "expect_exit", False):
        problems.append("master exited on its own with code %s" % rc)
    if crashes:
        problems.append("crash lines in log: %s" % crashes[:5])
    if problems:
        raise AssertionError("node %s: %s\n%s" % (node.name, "; ".join(problems),
                                                   node.diagnostics()))
    shutil.rmtree(node.workdir, ignore_errors=True)


# ------------------------------------------------------- API shortcuts ---

def inst(service, instance_id, region=REGION, zone=ZONE, url=None, **fields):
    """An Instance as a Java client sends it."""
    d = {"regionId": region, "zoneId": zone, "serviceId": service,
         "instanceId": instance_id, "ip": "10.0.0.1", "port": 8080,
         "protocol": "http", "status": "up",
         "url": url if url is not None else "http://10.0.0.1:8080/%s" % instance_id}
    d.update(fields)
    return d


def to_string(i):
    """Java Instance.toString(): lowercase region/zone/service[/group]/instance."""
    parts = [i.get("regionId") or "", i.get("zoneId") or "", i.get("serviceId") or ""]
    if i.get("groupId"):
        parts.append(i["groupId"])
    parts.append(i.get("instanceId") or "")
    return "/".join(str(p) for p in parts).lower()


def register(node, *instances, prefix="/artemis/api/registry/", **kw):
    return node.api(prefix + "register.json", {"instances": list(instances)}, **kw)


def heartbeat(node, *instances, prefix="/artemis/api/registry/", **kw):
    return node.api(prefix + "heartbeat.json", {"instances": list(instances)}, **kw)


def unregister(node, *instances, prefix="/artemis/api/registry/", **kw):
    return node.api(prefix + "unregister.json", {"instances": list(instances)}, **kw)


def lookup(node, *service_ids, region=REGION, zone=ZONE):
    return node.api("/artemis/api/discovery/lookup.json", {
        "regionId": region, "zoneId": zone,
        "discoveryConfigs": [{"serviceId": s, "regionId": region, "zoneId": zone}
                             for s in service_ids]})


def get_service(node, service_id, region=REGION, zone=ZONE):
    """service.json; returns the Service object (asserting success)."""
    body = node.api("/artemis/api/discovery/service.json", {
        "regionId": region, "zoneId": zone,
        "discoveryConfig": {"serviceId": service_id, "regionId": region, "zoneId": zone}})
    assert_status(body, SUCCESS)
    return body["service"]


def instances_of(node, service_id):
    """The instances discovery lists for a service ([] for none)."""
    return get_service(node, service_id).get("instances") or []


def instance_ids(node, service_id):
    return sorted(i["instanceId"] for i in instances_of(node, service_id))


def assert_status(body, expected):
    """expected: a full ResponseStatus dict, or a dict with a subset of
    status/errorCode/message."""
    rs = body.get("responseStatus")
    assert isinstance(rs, dict), "no responseStatus in %r" % (body,)
    got = {k: rs.get(k) for k in expected}
    assert got == expected, "responseStatus %r, expected %r (body %r)" % (rs, expected, body)


def assert_ok(body):
    assert_status(body, SUCCESS)
    assert "failedInstances" not in body or body["failedInstances"] is None, body


def failed_by_id(body):
    """failedInstances indexed by instanceId."""
    fails = body.get("failedInstances")
    assert isinstance(fails, list), "failedInstances is %r in %r" % (fails, body)
    return {f["instance"]["instanceId"]: f for f in fails}


def assert_spring_error(status, body, expected_status, path=None):
    """The Spring Boot error JSON {timestamp,status,error,message,path}."""
    assert status == expected_status, "HTTP %s, expected %s (%r)" % (status, expected_status,
                                                                  body)
    assert isinstance(body, dict), "error body is not JSON: %r" % (body,)
    for k in ("timestamp", "status", "error", "message", "path"):
        assert k in body, "error JSON lacks %r: %r" % (k, body)
    assert body["status"] == expected_status, body
    if path is not None:
        assert body["path"] == path, body


def child_pids(pid, word=None):
    """Pids of the direct children of pid whose command line (process title)
    contains word."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and (word is None or word in cmdline):
            out.append(int(d))
    return sorted(out)


# ------------------------------------------------------------ metrics ---

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)(\s+-?\d+)?$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Validate the text format; return (samples, types) where samples is a
    list of (name, {label: value}, float) and types maps name -> type."""
    samples, types = [], {}
    for ln in text.splitlines():
        if not ln.strip():
            continue
        if ln.startswith("#"):
            parts = ln.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                assert parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"), ln
                types[parts[2]] = parts[3]
            continue
        m = SAMPLE_RE.match(ln)
        assert m, "not a Prometheus sample line: %r" % ln
        labels = dict(LABEL_RE.findall(m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples, types


def scrape(node):
    st, headers, raw = node.request_raw("GET", "/metrics")
    assert st == 200, st
    ctype = headers.get("content-type", "")
    assert ctype.startswith("text/plain"), ctype
    assert "0.0.4" in ctype, "Prometheus text format version missing: %r" % ctype
    return parse_metrics(raw.decode("utf-8"))


def find_metrics(samples, *words, labels_with=None):
    """Samples whose name contains every word (and, optionally, whose label
    values include labels_with)."""
    out = []
    for name, labels, value in samples:
        if all(w in name.lower() for w in words):
            if labels_with is None or any(labels_with in v for v in labels.values()):
                out.append((name, labels, value))
    return out


def run_cli(*args, timeout=20.0, cwd=None):
    """Run the artemis binary; returns CompletedProcess with text output."""
    return subprocess.run([artemis_bin()] + list(args), capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)

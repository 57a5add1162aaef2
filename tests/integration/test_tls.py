"""
test_tls.py - HTTPS and WSS ([http] tls_cert, tls_key, tls_listen;
docs/SECURITY.md) with a CA made at test time by the openssl command:

- plain HTTP on [node] listen and TLS on tls_listen side by side; keep-alive,
  pipelining and a large answer over TLS; a login and a management call;
  WSS pushes and the /ws event socket;
- [node] listen itself speaking TLS when there is no tls_listen;
- a missing, unreadable or mismatched certificate or key stops the start
  with exit code 2 and the file's path;
- SIGHUP reads the files again: new connections get the new certificate
  while a connection in the middle of a request is answered by the old
  generation (not dropped); a broken file refuses the reload and the old
  certificate stays.
"""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess

import pytest

from artemis_it import (ADMIN_PASSWORD, HOST, free_port, http_request, inst, read_response,
                        register, uniq, wait_for)
from auth_util import call

websocket = pytest.importorskip("websocket")


def openssl(*args, cwd):
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and two server certificates of 127.0.0.1 it signed (a, b)."""
    d = str(tmp_path_factory.mktemp("pki"))
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=artemis test CA",
            cwd=d)
    for name in ("a", "b"):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=node-" + name,
                cwd=d)
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile",
                name + ".ext", cwd=d)
    return d


def ctx(pki):
    return ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))


def der(pki, name):
    with open(os.path.join(pki, name + ".pem")) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def tls_conn(pki, port):
    s = socket.create_connection((HOST, port), timeout=10)
    return ctx(pki).wrap_socket(s, server_hostname="127.0.0.1")


def installed(pki, tmp, name):
    """Copies of certificate `name` at fixed paths (a reload rewrites them)."""
    for ext in ("pem", "key"):
        shutil.copy(os.path.join(pki, "%s.%s" % (name, ext)), os.path.join(tmp, "server." + ext))
    return os.path.join(tmp, "server.pem"), os.path.join(tmp, "server.key")


@pytest.fixture
def side_by_side(node_factory, pki, tmp_path):
    cert, key = installed(pki, str(tmp_path), "a")
    port = free_port()
    n = node_factory(http={"tls_cert": cert, "tls_key": key, "tls_listen": "%s:%d" % (HOST, port)})
    n.tls_port = port
    return n


def https(node, pki, method, path, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    st, _, raw = http_request(HOST, node.tls_port, method, path,
                              json.dumps(body).encode() if body is not None else None, headers,
                              tls=ctx(pki))
    return st, json.loads(raw) if raw else None


def test_plain_and_tls_side_by_side(side_by_side, pki):
    n = side_by_side
    assert n.get("/health")[0] == 200
    assert https(n, pki, "GET", "/health") == (200, {"status": "up"})
    # Logins and management calls over HTTPS.
    st, b = https(n, pki, "POST", "/api/auth/login",
                  {"username": "admin", "password": ADMIN_PASSWORD})
    assert st == 200, b
    tok = b["data"]["accessToken"]
    assert https(n, pki, "GET", "/api/management/zone/operations", token=tok)[0] == 200
    assert https(n, pki, "GET", "/api/management/zone/operations")[0] == 401
    # Plain HTTP on the TLS port gets no answer; TLS on the plain port fails.
    assert b"HTTP/1.1" not in plain_answer(n.tls_port)
    with pytest.raises((ssl.SSLError, OSError)):
        tls_conn(pki, n.port).close()
    assert "TLS on %s:%d" % (HOST, n.tls_port) in n.read_log()


def test_keep_alive_pipelining_and_a_large_answer_over_tls(side_by_side, pki):
    n = side_by_side
    svc = uniq()
    register(n, *[inst(svc, "i%04d" % i, metadata={"pad": "x" * 200}) for i in range(600)])
    with tls_conn(pki, n.tls_port) as t:
        f = t.makefile("rb")
        req = (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 40 +
               b"POST /artemis/api/discovery/service.json HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n")
        body = json.dumps({"discoveryConfig": {"serviceId": svc, "regionId": "us-east"}}).encode()
        t.sendall(req % len(body) + body)
        for _ in range(40):
            assert read_response(f)[1] == 200
        _, st, _, raw = read_response(f)
        service = json.loads(raw)["service"]
        assert st == 200 and len(service["instances"]) == 600 and len(raw) > 200000
        # The connection stays usable.
        t.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(f)[1] == 200


def test_wss_push_and_events(side_by_side, pki):
    n = side_by_side
    svc = uniq()
    opts = {"ca_certs": os.path.join(pki, "ca.pem")}
    url = "wss://%s:%d" % (HOST, n.tls_port)
    ws = websocket.create_connection(url + "/ws", sslopt=opts, timeout=10)
    ws.send(json.dumps({"type": "ping"}))
    assert json.loads(ws.recv()) == {"type": "pong"}
    ws.close()
    sub = websocket.create_connection(url + "/api/v1/discovery/subscribe/" + svc, sslopt=opts,
                                      timeout=10)
    register(n, inst(svc, "pushed"))
    msg = json.loads(sub.recv())
    assert msg["changeType"] == "new" and msg["instance"]["instanceId"] == "pushed", msg
    sub.close()


def test_the_main_listener_speaks_tls_without_tls_listen(node_factory, pki, tmp_path):
    cert, key = installed(pki, str(tmp_path), "a")

    def use_tls(node):
        node.tls = ctx(pki)
    n = node_factory(http={"tls_cert": cert, "tls_key": key}, prepare=use_tls)
    assert n.get("/health")[0] == 200  # over TLS
    assert b"HTTP/1.1" not in plain_answer(n.port)
    assert "(TLS)" in n.read_log()
    # The node's own URL says https.
    st, _, b = n.get("/artemis/api/status/node.json")
    assert st == 200 and b["nodeStatus"]["node"]["url"].startswith("https://"), b


@pytest.mark.parametrize("what", ["missing cert", "missing key", "not a certificate",
                                  "mismatched key", "directory"])
def test_bad_tls_files_stop_the_start_with_exit_2(node_factory, pki, tmp_path, what):
    cert, key = installed(pki, str(tmp_path), "a")
    bad = {"missing cert": (str(tmp_path / "nope.pem"), key),
           "missing key": (cert, str(tmp_path / "nope.key")),
           "not a certificate": (key, key),
           "mismatched key": (cert, os.path.join(pki, "b.key")),
           "directory": (str(tmp_path), key)}[what]
    n = node_factory()
    n.stop()
    n.sections["http"].update({"tls_cert": bad[0], "tls_key": bad[1]})
    n.write_config()
    p = subprocess.run(n.command(), capture_output=True, text=True, timeout=30, cwd=n.workdir)
    assert p.returncode == 2, (p.returncode, p.stderr)
    log = n.read_log() + p.stderr
    culprit = bad[1] if what in ("missing key", "mismatched key") else bad[0]
    assert culprit in log, log[-1500:]
    n.expect_exit = True


def test_config_refuses_half_a_tls_setup(node_factory, tmp_path):
    n = node_factory()
    n.stop()
    for http in ({"tls_cert": "/x.pem"}, {"tls_listen": "127.0.0.1:1"}):
        n.sections["http"] = dict(http)
        n.write_config()
        p = subprocess.run(n.command(), capture_output=True, text=True, timeout=30,
                           cwd=n.workdir)
        assert p.returncode == 2 and "tls_" in p.stderr, (http, p.stderr)
    n.expect_exit = True


def plain_answer(port):
    """What a plain HTTP request to a TLS port gets back: nothing (the
    handshake fails and the connection is closed, or reset)."""
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            return s.recv(4096)
        except ConnectionResetError:
            return b""


def peer_cert(pki, port):
    with tls_conn(pki, port) as t:
        return t.getpeercert(binary_form=True)


def test_sighup_swaps_the_certificate_without_dropping_a_connection(side_by_side, pki,
                                                                     tmp_path):
    n = side_by_side
    assert peer_cert(pki, n.tls_port) == der(pki, "a")
    # A connection in the middle of a request (its head half sent).
    old = tls_conn(pki, n.tls_port)
    old.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    installed(pki, str(tmp_path), "b")
    n.send_signal(signal.SIGHUP)
    wait_for(lambda: peer_cert(pki, n.tls_port) == der(pki, "b"), 10,
             what="new connections to get certificate b")
    assert old.getpeercert(binary_form=True) == der(pki, "a")
    old.sendall(b"\r\n")
    f = old.makefile("rb")
    _, st, h, body = read_response(f)
    assert st == 200 and json.loads(body) == {"status": "up"}
    assert h.get("connection") == "close"  # answered by the draining generation
    old.close()
    assert n.get("/health")[0] == 200


def test_a_broken_file_refuses_the_reload(side_by_side, pki, tmp_path):
    n = side_by_side
    workers = n.read_log().count("worker_main: worker 0 serving")
    with open(str(tmp_path / "server.pem"), "w") as f:
        f.write("this is not a certificate\n")
    n.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload: [http] TLS:" in n.read_log(), 10, what="the refused reload")
    assert "keeping the current configuration" in n.read_log()
    assert n.read_log().count("worker_main: worker 0 serving") == workers
    assert peer_cert(pki, n.tls_port) == der(pki, "a")
    # A reload with good files again works.
    installed(pki, str(tmp_path), "b")
    n.send_signal(signal.SIGHUP)
    wait_for(lambda: peer_cert(pki, n.tls_port) == der(pki, "b"), 10, what="certificate b")
    assert call(n, "GET", "/health")[0] == 200

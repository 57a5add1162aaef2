"""
test_mgmt_cluster_tls.py - the replicator's links in TLS ([cluster] tls,
docs/CLUSTER.md "TLS"), with a CA made at test time by the openssl CLI:

- two nodes with certificates from the CA replicate registrations and
  management operations over TLS (the cluster key's handshake inside);
- the listener speaks only TLS: a client that shows a certificate of the
  CA gets through the TLS handshake, one with a certificate from another
  CA (or none) is refused, and so is a plain-TCP HELLO;
- a node whose certificate comes from another CA is refused by the
  others: nothing it registers reaches them, and they say why; so is a
  node that does not speak TLS;
- a missing or unreadable certificate, key or CA file stops the start
  with exit code 2 and the file's path.
"""

import os
import shutil
import socket
import ssl
import subprocess

import pytest

from artemis_it import Node, inst, register, uniq, wait_for
from cluster_util import Cluster, hello_frame, wait_ids
from mgmt_util import java_instance, listed

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
            "-subj", "/CN=" + name, cwd=d)
    return os.path.join(d, name + ".pem")


def make_cert(d, ca, name):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-CAcreateserial", "-out", name + ".pem", "-days", "2", cwd=d)
    return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    ca = make_ca(d, "ca")
    other_ca = make_ca(d, "other-ca")
    certs = [make_cert(d, "ca", "node%d" % i) for i in range(2)]
    stranger = make_cert(d, "other-ca", "stranger")
    return {"dir": d, "ca": ca, "other_ca": other_ca, "certs": certs, "stranger": stranger}


def tls_conf(cert, ca):
    return {"tls": "on", "tls_cert": cert[0], "tls_key": cert[1], "tls_ca": ca}


@pytest.fixture(scope="module")
def cl(tmp_path_factory, pki):
    """node0, node1: certificates of the CA; node2: one of another CA;
    node3: no TLS at all (the same cluster key)."""
    c = Cluster(str(tmp_path_factory.mktemp("tls-cluster")), n=4)
    confs = [tls_conf(pki["certs"][0], pki["ca"]), tls_conf(pki["certs"][1], pki["ca"]),
             tls_conf(pki["stranger"], pki["ca"]), {"tls": "off"}]
    for n, conf in zip(c, confs):
        n.sections["cluster"].update(conf)
        n.write_config()
    c.start()
    for n in c.nodes[:2]:
        n.login()
    yield c
    c.finish()


def test_replication_over_tls(cl):
    a, b = cl[0], cl[1]
    svc = uniq()
    register(a, inst(svc, "i1"), inst(svc, "i2"))
    wait_ids(b, svc, ["i1", "i2"])
    java_instance(b, svc, "i2")
    wait_for(lambda: listed(a, svc, "service") == ["i1"], 10, what="the operation on a")
    assert "connection up (encrypted) (TLS)" in a.read_log()


def tls_client(node, cert, ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(ca)
    if cert:
        ctx.load_cert_chain(cert[0], cert[1])
    raw = socket.create_connection((node.host, node.cluster_port), timeout=5)
    s = ctx.wrap_socket(raw)
    s.settimeout(5)
    return s


def refused(node, cert, ca):
    """True when the node ends the TLS connection without serving it."""
    try:
        s = tls_client(node, cert, ca)
        s.sendall(hello_frame("nobody"))  # TLS 1.3: the verdict comes with the first read
        return s.recv(1) == b""
    except (ssl.SSLError, ConnectionError, socket.timeout, OSError):
        return True


def test_listener_requires_a_certificate_of_the_ca(cl, pki):
    a = cl[0]
    s = tls_client(a, pki["certs"][1], pki["ca"])  # a peer's certificate: TLS completes
    assert s.version() in ("TLSv1.2", "TLSv1.3")
    s.close()
    assert refused(a, pki["stranger"], pki["ca"])  # another CA
    assert refused(a, None, pki["ca"])  # no certificate
    # A plain HELLO in clear: not TLS, refused.
    raw = socket.create_connection((a.host, a.cluster_port), timeout=5)
    raw.sendall(hello_frame("nobody"))
    raw.settimeout(5)
    try:
        assert raw.recv(4096)[:4] != hello_frame("x")[:4]
    except (ConnectionError, socket.timeout):
        pass
    raw.close()


def assert_outside(a, b, outsider, refused):
    """outsider's registrations reach neither a nor b once refused() says
    they refuse each other, and theirs do not reach it; a and b still
    replicate with each other."""
    svc = uniq()
    register(outsider, inst(svc, "from-the-outsider"))
    wait_for(refused, 15, what="the refusals logged")
    svc2 = uniq()
    register(a, inst(svc2, "i"))
    wait_ids(b, svc2, ["i"])
    assert listed(a, svc, "service") == [] and listed(b, svc, "service") == []
    assert listed(outsider, svc2, "service") == []


def test_peer_with_a_certificate_of_another_ca_is_refused(cl):
    a, b, stranger = cl[0], cl[1], cl[2]
    assert_outside(a, b, stranger,
                   lambda: "TLS: " in a.read_log() and "TLS: " in stranger.read_log())


def test_peer_without_tls_is_refused(cl):
    a, b, plain = cl[0], cl[1], cl[3]
    # Its connections to the others are reset; theirs to it are not its
    # handshake's frames.
    assert_outside(a, b, plain,
                   lambda: "unreachable: Connection reset" in plain.read_log() and
                   "too large for the handshake" in plain.read_log())


@pytest.mark.parametrize("key", ["tls_cert", "tls_key", "tls_ca"])
def test_missing_or_unreadable_file_exits_2(tmp_path, pki, key):
    n = Node(str(tmp_path), cluster=tls_conf(pki["certs"][0], pki["ca"]))
    n.sections["cluster"]["key"] = "a-long-enough-cluster-key"
    n.sections["cluster"]["peer"] = "other zone-1 http://127.0.0.1:1 127.0.0.1:1"
    missing = os.path.join(str(tmp_path), "missing-" + key + ".pem")
    n.sections["cluster"][key] = missing
    n.write_config()
    p = subprocess.run(n.command(), capture_output=True, text=True, timeout=30,
                       cwd=n.workdir)
    assert p.returncode == 2, (p.returncode, p.stderr)
    out = p.stderr + n.read_log()
    assert missing in out and key in out, out
    # unreadable: a directory where the file should be
    os.makedirs(missing)
    p = subprocess.run(n.command(), capture_output=True, text=True, timeout=30,
                       cwd=n.workdir)
    assert p.returncode == 2 and missing in p.stderr + n.read_log()

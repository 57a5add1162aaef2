"""
test_http.py - API.md §0 wire conventions: CORS on every response (and
[http] cors_origins), OPTIONS preflight, framework errors with the Spring
Boot error JSON (404, 405, 400, 415, 413, 431), keep-alive, pipelining and
HTTP/1.0 over raw sockets, strict framing against request smuggling, and
refusals logged once, escaped.
"""

import gzip
import json
import socket

import pytest

from artemis_it import (HOST, SUCCESS, assert_spring_error, assert_status, inst, lookup,
                        raw_exchange, read_response, uniq, wait_for)

REGISTER = "/artemis/api/registry/register.json"
LOOKUP = "/artemis/api/discovery/lookup.json"
MIB = 1024 * 1024


def assert_cors(headers):
    assert headers.get("access-control-allow-origin") == "*", headers
    assert headers.get("access-control-expose-headers") == "*", headers
    assert headers.get("access-control-allow-credentials") == "true", headers


def http_req(method, path, headers=(), body=b"", version="HTTP/1.1"):
    """Bytes of one request; Content-Length added when there is a body."""
    lines = ["%s %s %s" % (method, path, version), "Host: %s" % HOST]
    lines += ["%s: %s" % h for h in headers]
    if body:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# ----------------------------------------------------------------- CORS ---

@pytest.mark.parametrize("method,path,body", [
    ("POST", REGISTER, {"instances": []}),
    ("GET", "/artemis/api/status/node.json", None),
    ("GET", "/health", None),
    ("GET", "/no/such/path.json", None),
    ("GET", REGISTER, None),
    ("POST", REGISTER, "{broken"),
])
def test_cors_headers_on_every_response(node, method, path, body):
    data = None if body is None else (body if isinstance(body, str)
                                      else json.dumps(body)).encode()
    st, headers, _ = node.request(method, path, data,
                                  {"Content-Type": "application/json", "Origin": "http://x"})
    assert st in (200, 400, 404, 405)
    assert_cors(headers)


@pytest.mark.parametrize("path", [REGISTER, "/artemis/api/discovery/lookup.json",
                                  "/anything/at/all"])
def test_options_preflight(node, path):
    st, headers, _ = node.request("OPTIONS", path, None, {
        "Origin": "http://example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-artemis-test"})
    assert st == 200, (st, headers)
    assert_cors(headers)
    assert headers.get("access-control-max-age") == "3600", headers
    assert "POST" in headers.get("access-control-allow-methods", ""), headers
    allowed = headers.get("access-control-allow-headers", "").lower()
    assert "content-type" in allowed and "x-artemis-test" in allowed, headers


def test_options_echoes_other_method(node):
    st, headers, _ = node.request("OPTIONS", REGISTER, None, {
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "X-Other"})
    assert st == 200
    assert "PUT" in headers.get("access-control-allow-methods", ""), headers
    assert "x-other" in headers.get("access-control-allow-headers", "").lower(), headers


@pytest.fixture(scope="module")
def cors_node(module_node_factory):
    return module_node_factory(http={"cors_origins": "https://admin.example.com, "
                                                     "http://localhost:3000"})


def test_cors_origins_list_echoes_allowed_origins(cors_node):
    """[http] cors_origins (issue 12 item 5): with a list, an allowed Origin
    is echoed instead of '*', and the answer varies by Origin."""
    st, headers, _ = cors_node.request("GET", "/health", None,
                                       {"Origin": "http://localhost:3000"})
    assert st == 200
    assert headers.get("access-control-allow-origin") == "http://localhost:3000", headers
    assert headers.get("access-control-allow-credentials") == "true", headers
    assert "origin" in headers.get("vary", "").lower(), headers
    # a client that is not a browser sends no Origin and is served as before
    st, headers, body = cors_node.request("GET", "/health")
    assert st == 200 and body == {"status": "up"}
    assert "access-control-allow-origin" not in headers, headers
    st, headers, _ = cors_node.request("OPTIONS", REGISTER, None, {
        "Origin": "https://admin.example.com", "Access-Control-Request-Method": "POST"})
    assert st == 200
    assert headers.get("access-control-allow-origin") == "https://admin.example.com"


@pytest.mark.parametrize("method", ["GET", "POST", "OPTIONS"])
def test_cors_origins_list_refuses_other_origins(cors_node, method):
    svc = uniq()
    body = json.dumps({"instances": [inst(svc, "i1")]}).encode() if method == "POST" else None
    path = REGISTER if method != "GET" else "/health"
    st, headers, err = cors_node.request(method, path, body, {
        "Origin": "https://evil.example.com", "Content-Type": "application/json",
        "Access-Control-Request-Method": "POST"})
    assert_spring_error(st, err, 403, path)
    assert err["message"] == "Invalid CORS request", err
    assert "access-control-allow-origin" not in headers, headers
    # and the request never ran
    assert lookup(cors_node, svc)["services"][0]["instances"] is None


def test_cors_default_is_any_origin(node):
    st, headers, _ = node.request("GET", "/health", None, {"Origin": "https://evil.example"})
    assert st == 200 and headers.get("access-control-allow-origin") == "*"


def test_websocket_origin_follows_cors_origins(cors_node, node):
    """The WebSocket handshake's Origin check uses the same list."""
    from ws_util import CHANGE, RawWS
    RawWS(cors_node, CHANGE, extra="Origin: https://evil.example.com\r\n",
          expect_status=403).close()
    RawWS(cors_node, CHANGE, extra="Origin: https://admin.example.com\r\n").close()
    RawWS(cors_node, CHANGE).close()  # no Origin: not a browser
    RawWS(node, CHANGE, extra="Origin: https://evil.example.com\r\n").close()  # "*"


# --------------------------------------------------------------- errors ---

@pytest.mark.parametrize("method,path", [
    ("GET", "/no/such/path.json"),
    ("POST", "/artemis/api/registry/nope.json"),
    ("POST", "/artemis/api/registry/Register.json"),   # paths are case-sensitive
    ("POST", "/artemis/api/registry/register"),        # all end in .json
])
def test_unknown_path_is_404_spring_error(node, method, path):
    st, headers, body = node.request(method, path, b"{}" if method == "POST" else None,
                                     {"Content-Type": "application/json"})
    assert_spring_error(st, body, 404, path)
    assert body["error"] == "Not Found", body
    assert headers.get("content-type", "").startswith("application/json"), headers


@pytest.mark.parametrize("method,path", [
    ("GET", REGISTER),
    ("GET", "/artemis/api/registry/heartbeat.json"),
    ("GET", LOOKUP),
    ("PUT", "/artemis/api/discovery/service.json"),
    ("DELETE", "/artemis/api/status/node.json"),
])
def test_wrong_method_is_405(node, method, path):
    st, headers, body = node.request(method, path)
    assert_spring_error(st, body, 405, path)
    assert body["error"] == "Method Not Allowed", body
    assert "POST" in headers.get("allow", ""), headers


@pytest.mark.parametrize("payload", [b"{not json", b'{"instances": [', b"",
                                     b'{"instances": "nope"}', b"[1,2", b"\xff\xfe{}"])
def test_malformed_json_is_400(node, payload):
    st, _, body = node.request("POST", REGISTER, payload,
                               {"Content-Type": "application/json"})
    assert_spring_error(st, body, 400, REGISTER)
    assert body["error"] == "Bad Request", body


def test_bad_gzip_body_is_client_error(node):
    st, _, body = node.request("POST", REGISTER, b"this is not gzip",
                               {"Content-Type": "application/json",
                                "Content-Encoding": "gzip"})
    assert 400 <= st < 500, (st, body)
    assert node.get("/health")[0] == 200


def test_wrong_content_type_is_415(node):
    st, _, body = node.request("POST", REGISTER, json.dumps({"instances": []}).encode(),
                               {"Content-Type": "text/plain"})
    assert_spring_error(st, body, 415, REGISTER)


def test_content_type_with_charset_accepted(node):
    st, _, body = node.request("POST", REGISTER,
                               json.dumps({"instances": [inst(uniq(), "i")]}).encode(),
                               {"Content-Type": "application/json;charset=UTF-8"})
    assert st == 200
    assert_status(body, SUCCESS)


# ------------------------------------------------------------ body limits ---

def send_oversized(port, head, body, chunk=256 * 1024):
    """Send a request whose body the server may refuse early; read its
    answer even if it stopped reading.  Returns the parsed response."""
    with socket.create_connection((HOST, port), timeout=15) as s:
        s.sendall(head)
        try:
            for i in range(0, len(body), chunk):
                s.sendall(body[i:i + chunk])
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            return read_response(s.makefile("rb"))
        except ConnectionResetError as e:
            raise AssertionError("connection reset before a response arrived: %r" % e)


def test_body_over_8mib_is_413(node):
    body = b" " * (8 * MIB + 1)
    head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % (REGISTER, len(body))).encode()
    r = send_oversized(node.port, head, body)
    assert r is not None, "no response to an oversized body"
    assert r[1] == 413, r[:3]
    assert node.get("/health")[0] == 200


def test_body_just_under_limit_is_parsed(node):
    filler = " " * (8 * MIB - 200)
    data = ('{"instances":[]}' + filler).encode()
    st, _, body = node.request("POST", REGISTER, data, {"Content-Type": "application/json"})
    assert st == 200, (st, body)
    assert body["responseStatus"]["errorCode"] == "bad-request"


def test_chunked_body_over_limit_is_413(node):
    piece = b" " * MIB
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(9)) + b"0\r\n\r\n"
    head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n" % REGISTER).encode()
    r = send_oversized(node.port, head, chunks)
    assert r is not None and r[1] == 413, r and r[:3]


def test_gzip_bomb_is_413(node):
    """The limit applies after decompression too."""
    bomb = gzip.compress(b'{"instances":[' + b" " * (9 * MIB) + b"]}")
    assert len(bomb) < MIB
    st, _, _ = node.request("POST", REGISTER, bomb, {"Content-Type": "application/json",
                                                     "Content-Encoding": "gzip"})
    assert st == 413
    assert node.get("/health")[0] == 200


def test_configured_body_limit(node_factory):
    n = node_factory(http={"max_body_bytes": "4096"})
    small = {"instances": [inst(uniq(), "i1")]}
    st, _, body = n.post_json(REGISTER, small)
    assert st == 200 and body["responseStatus"]["status"] == "success", body
    big = {"instances": [inst(uniq(), "i%d" % k) for k in range(40)]}
    assert len(json.dumps(big)) > 4096
    st, _, _ = n.post_json(REGISTER, big)
    assert st == 413
    st, _, _ = n.post_json(REGISTER, big, gzip=True)
    assert st == 413, "gzip body under the limit but over it decompressed"


def test_large_header_under_default_limit(node):
    r = raw_exchange(node.port, http_req("GET", "/health", [("X-Big", "a" * 20000)]), 1)
    assert r and r[0][1] == 200, r


def test_expect_100_continue(node):
    """curl sends Expect: 100-continue for bodies over 1 KiB and waits 1 s
    for the interim answer before sending the body anyway."""
    body = json.dumps({"instances": [inst(uniq(), "i%d" % k) for k in range(10)]}).encode()
    head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (REGISTER, len(body)))
    with socket.create_connection((HOST, node.port), timeout=0.5) as s:
        s.sendall(head.encode())
        f = s.makefile("rb")
        try:
            interim = f.readline()
        except socket.timeout:
            interim = b""
        s.settimeout(10)
        s.sendall(body)
        if interim:
            assert interim.startswith(b"HTTP/1.1 100"), interim
            assert f.readline() == b"\r\n"
        r = read_response(f)
    assert r[1] == 200 and json.loads(r[3])["responseStatus"] == SUCCESS, r
    assert interim, "no '100 Continue' within 0.5 s: curl would stall 1 s per request"


def test_header_too_large_is_431(node_factory):
    n = node_factory(http={"max_header_bytes": "4096"})
    r = raw_exchange(n.port, http_req("GET", "/health", [("X-Big", "a" * 8192)]), 1)
    assert r and r[0][1] == 431, r
    assert n.get("/health")[0] == 200


# --------------------------------------------------- connection handling ---

def test_keep_alive_serves_many_requests_on_one_socket(node):
    with socket.create_connection((HOST, node.port), timeout=10) as s:
        f = s.makefile("rb")
        for k in range(5):
            s.sendall(http_req("GET", "/health"))
            r = read_response(f)
            assert r is not None, "server closed the keep-alive connection after %d" % k
            assert r[1] == 200 and json.loads(r[3]) == {"status": "up"}, r


def test_pipelined_requests_answered_in_order(node):
    svc = uniq()
    reg = json.dumps({"instances": [inst(svc, "p1")]}).encode()
    look = json.dumps({"regionId": "us-east", "zoneId": "zone-1",
                       "discoveryConfigs": [{"serviceId": svc}]}).encode()
    ct = [("Content-Type", "application/json")]
    data = (http_req("POST", REGISTER, ct, reg) + http_req("GET", "/no/such") +
            http_req("POST", LOOKUP, ct, look) + http_req("GET", "/health"))
    rs = raw_exchange(node.port, data, 4)
    assert [r[1] for r in rs] == [200, 404, 200, 200], [r[:2] for r in rs]
    assert json.loads(rs[0][3])["responseStatus"]["status"] == "success"
    services = json.loads(rs[2][3])["services"]
    assert [i["instanceId"] for i in services[0]["instances"]] == ["p1"]


def test_pipelined_request_split_across_writes(node):
    """A request whose bytes arrive in pieces still parses."""
    body = json.dumps({"instances": [inst(uniq(), "i1")]}).encode()
    data = http_req("POST", REGISTER, [("Content-Type", "application/json")], body)
    with socket.create_connection((HOST, node.port), timeout=10) as s:
        for i in range(0, len(data), 7):
            s.sendall(data[i:i + 7])
        r = read_response(s.makefile("rb"))
    assert r[1] == 200 and json.loads(r[3])["responseStatus"]["status"] == "success"


def test_http_1_0_closes_after_response(node):
    with socket.create_connection((HOST, node.port), timeout=10) as s:
        s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        f = s.makefile("rb")
        r = read_response(f)
        assert r is not None and r[1] == 200, r
        assert json.loads(r[3]) == {"status": "up"}
        assert f.read() == b"", "HTTP/1.0 connection not closed after the response"


def test_http_1_0_post(node):
    body = json.dumps({"instances": [inst(uniq(), "i1")]}).encode()
    rs = raw_exchange(node.port, http_req("POST", REGISTER,
                                          [("Content-Type", "application/json")], body,
                                          version="HTTP/1.0"), 1)
    assert rs and rs[0][1] == 200 and json.loads(rs[0][3])["responseStatus"] == SUCCESS


def test_connection_close_honoured(node):
    with socket.create_connection((HOST, node.port), timeout=10) as s:
        s.sendall(http_req("GET", "/health", [("Connection", "close")]))
        f = s.makefile("rb")
        assert read_response(f)[1] == 200
        assert f.read() == b""


def test_gzip_response_when_accepted(node):
    st, headers, body = node.request("POST", LOOKUP, json.dumps({
        "regionId": "us-east", "zoneId": "zone-1",
        "discoveryConfigs": [{"serviceId": uniq()}]}).encode(),
        {"Content-Type": "application/json", "Accept-Encoding": "gzip,deflate"})
    assert st == 200
    assert_status(body, SUCCESS)


# ------------------------------------------- strict framing (smuggling) ---
# Issue 11 item 10: behind a proxy, every framing question this server
# answers differently from the proxy is a request-smuggling hole.  Each of
# these was answered 200 by the lax parser; each is refused now, the
# request is not run, and the connection is closed.

HB = "/artemis/api/registry/heartbeat.json"


@pytest.mark.parametrize("raw,status", [
    pytest.param(b"POST " + HB.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n", 400,
                 id="chunk-data-without-crlf"),
    pytest.param(b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400, id="obs-fold"),
    pytest.param(b"GET /health HTTP/1.1\r\nHost : x\r\n\r\n", 400, id="space-before-colon"),
    pytest.param(b"GET /health HTTP/1.1\r\n\r\n", 400, id="http-1.1-without-host"),
    pytest.param(b"GET /health\r\n\r\n", 400, id="no-version"),
    pytest.param(b"GET /health HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, id="two-hosts"),
    pytest.param(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, id="cl-and-te"),
    pytest.param(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                 b"Content-Length: 3\r\n\r\nabc", 400, id="two-content-lengths"),
    pytest.param(b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"0x2\r\nab\r\n0\r\n\r\n", 400, id="chunk-size-0x"),
    pytest.param(b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, id="two-transfer-encodings"),
    pytest.param(b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                 b"0\r\n\r\n", 501, id="unknown-transfer-coding"),
    pytest.param(b"POST /health HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
                 id="te-in-http-1.0"),
    pytest.param(b"GET /health HTTP/1.1\nHost: x\n\n", 400, id="bare-lf"),
    pytest.param(b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505, id="http-2.0-request-line"),
])
def test_lax_framing_is_refused(node, raw, status):
    with socket.create_connection((HOST, node.port), timeout=10) as s:
        s.sendall(raw + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        r = read_response(f)
        assert r is not None and r[1] == status, r
        assert r[2].get("connection") == "close", r
        body = json.loads(r[3])
        assert body["status"] == status and body["message"], body
        # the pipelined request behind it is not answered: the stream is dropped
        assert f.read() == b"", "connection kept open after a framing error"


def test_strict_parser_still_accepts_what_clients_send(node):
    """Chunk extensions, trailers, an empty line before the request and
    absolute-form targets are valid HTTP/1.1 and stay accepted."""
    body = json.dumps({"instances": [inst(uniq(), "i1")]}).encode()
    chunked = b"%x;ext=1\r\n%s\r\n0\r\nX-Trailer: t\r\n\r\n" % (len(body), body)
    data = (b"\r\nPOST " + REGISTER.encode() + b" HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked +
            b"GET http://localhost/health HTTP/1.1\r\nHost: x\r\n\r\n")
    rs = raw_exchange(node.port, data, 2)
    assert [r[1] for r in rs] == [200, 200], [r[:2] for r in rs]
    assert json.loads(rs[0][3])["responseStatus"] == SUCCESS


# ---------------------------------------------------------------- logging ---

def test_refused_request_is_logged_once_and_escaped(node_factory):
    """Issue 12 item 6: a path with control characters (here CR LF and an
    ANSI escape, percent-encoded) must not forge log lines; a refusal is
    logged once per event, not per byte received."""
    n = node_factory()
    raw = (b"POST /x%0d%0aFORGED%20LINE%1b[31m HTTP/1.1\r\nHost: x\r\n"
           b"Content-Type: application/json\r\nContent-Encoding: br\r\n"
           b"Content-Length: 2\r\n\r\n{}")
    with socket.create_connection((HOST, n.port), timeout=10) as s:
        for i in range(len(raw)):  # one byte per send: still one event
            s.send(raw[i:i + 1])
        r = read_response(s.makefile("rb"))
    assert r[1] == 415, r
    log = wait_for(lambda: "FORGED" in n.read_log() and n.read_log(), 10,
                   what="the refusal in the log")
    lines = [ln for ln in log.splitlines() if "FORGED" in ln]
    assert len(lines) == 1, lines
    assert "POST /x\\x0d\\x0aFORGED LINE\\x1b[31m: 415" in lines[0], lines
    assert "\x1b" not in log and not any(ln.startswith("FORGED") for ln in log.splitlines())

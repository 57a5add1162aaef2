"""
auth_util.py - shortcuts for the access-control tests (test_auth*.py,
test_tls.py): calls with an explicit token, users made through the API,
tokens signed here with a node's known [auth] jwt_secret (to forge expired
or tampered ones), and the refusals of both surfaces.
"""

import base64
import hashlib
import hmac
import json

from artemis_it import ADMIN_PASSWORD, http_request

A = "/api/auth/"
JWT_SECRET = "a-test-jwt-secret-of-at-least-32-characters"
WORKER_PROBES = 16  # fresh connections: both workers answer (see mgmt_util.py)


def call(node, method, path, body=None, token=None, headers=None):
    """(status, parsed JSON or None, headers) of one request with exactly
    this token (None: no Authorization header)."""
    hdrs = {"Content-Type": "application/json"}
    if token:
        hdrs["Authorization"] = "Bearer " + token
    hdrs.update(headers or {})
    data = json.dumps(body).encode() if body is not None else None
    st, h, raw = http_request(node.host, node.port, method, path, data, hdrs)
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return st, parsed, h


def login(node, username="admin", password=ADMIN_PASSWORD):
    return node.login(username, password, keep=False)


def make_user(node, admin_token, username, role, password=None):
    """A user made through the API; returns (userId, its token)."""
    password = password or username + "-password"
    st, b, _ = call(node, "POST", A + "users",
                    {"username": username, "password": password, "role": role}, admin_token)
    assert st == 201, (st, b)
    return b["data"]["userId"], login(node, username, password)


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def claims(token):
    return json.loads(unb64(token.split(".")[1]))


def sign(payload, secret=JWT_SECRET, header=None):
    """A token as the node makes them (its header, sorted compact claims)."""
    head = header if header is not None else {"alg": "HS256", "typ": "JWT"}
    msg = "%s.%s" % (b64(json.dumps(head, separators=(",", ":")).encode()),
                     b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()))
    mac = hmac.new(secret.encode(), msg.encode(), hashlib.sha256).digest()
    return msg + "." + b64(mac)


def assert_refused_everywhere(node, token, path=A + "user"):
    """Every worker refuses the token (401), on WORKER_PROBES connections."""
    for _ in range(WORKER_PROBES):
        st, b, _ = call(node, "GET", path, token=token)
        assert st == 401, (st, b)


def is_java(path):
    return (path.startswith("/api/management/") and path.endswith(".json")
            and not path.startswith(("/api/management/instance/", "/api/management/server/")))


def refusal(path, status, body):
    """'none' (not refused), 'token' (no valid token) or 'role' (role too
    low), from an answer of either surface."""
    if is_java(path):
        assert status == 200 or status >= 400, (path, status, body)
        rs = (body or {}).get("responseStatus") or {}
        if rs.get("errorCode") == "no-permission":
            return "token" if "token" in (rs.get("message") or "") else "role"
        return "none"
    if status == 401:
        return "token"
    if status == 403:
        return "role"
    return "none"

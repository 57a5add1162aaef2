"""
test_console.py - the web console's files as the node serves them
(worker/static.c): redirects, caching (ETag, 304, Cache-Control), gzip,
MIME types, the versioned asset prefix, where the files are found
([http] console_dir, next to the binary, the source tree), [http] console
= off, and what must never be served (path traversal, hidden files,
symlinks, directory listings).  The pages themselves are tested in a
browser by tests/browser/.
"""

import gzip
import os
import re
import shutil
import socket

import pytest

from artemis_it import HOST, artemis_bin

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONSOLE = os.path.join(REPO, "console")
VERSIONED_RE = re.compile(r'_v/([0-9a-f]{16})/app\.js')


def get(node, path, headers=None, method="GET"):
    """(status, headers, raw body) without gunzipping."""
    with socket.create_connection((HOST, node.port), timeout=10) as s:
        hdrs = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        s.sendall(("%s %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n"
                   % (method, path, hdrs)).encode("latin-1"))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    h = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        h[k.strip().lower()] = v.strip()
    return status, h, body


def version_of(node):
    st, _, body = get(node, "/console/")
    assert st == 200
    m = VERSIONED_RE.search(body.decode())
    assert m, body[:300]
    return m.group(1)


def test_root_and_bare_prefix_redirect(node):
    st, h, _ = get(node, "/")
    assert st == 302 and h["location"] == "/console/"
    st, h, _ = get(node, "/console")
    assert st == 301 and h["location"] == "/console/"


def test_index_is_html_revalidated_with_strong_etag(node):
    st, h, body = get(node, "/console/")
    assert st == 200
    assert h["content-type"] == "text/html; charset=utf-8"
    assert h["cache-control"] == "no-cache"
    assert re.fullmatch(r'"[0-9a-f]{16}"', h["etag"]), h["etag"]
    assert "{{ASSETS}}" not in body.decode()
    assert "script-src 'self'" in h["content-security-policy"]
    assert h["x-content-type-options"] == "nosniff"
    assert h["vary"] == "Accept-Encoding"
    # index.html by name is the same document
    st2, h2, body2 = get(node, "/console/index.html")
    assert st2 == 200 and body2 == body and h2["etag"] == h["etag"]


def test_gzip_when_accepted_and_not_when_refused(node):
    _, plain_h, plain = get(node, "/console/app.js")
    st, h, body = get(node, "/console/app.js", {"Accept-Encoding": "br, gzip;q=0.8"})
    assert st == 200 and h["content-encoding"] == "gzip"
    assert gzip.decompress(body) == plain
    assert int(h["content-length"]) == len(body) < len(plain)
    assert h["etag"] != plain_h["etag"], "each representation has its own strong ETag"
    st, h, body = get(node, "/console/app.js", {"Accept-Encoding": "gzip;q=0, deflate"})
    assert "content-encoding" not in h and body == plain


def test_not_modified(node):
    for enc in ({}, {"Accept-Encoding": "gzip"}):
        st, h, _ = get(node, "/console/app.css", enc)
        etag = h["etag"]
        for inm in (etag, "W/" + etag, '"nope", ' + etag, "*"):
            st, h304, body = get(node, "/console/app.css", dict(enc, **{"If-None-Match": inm}))
            assert st == 304, inm
            assert body == b"" and "content-length" not in h304 and "content-type" not in h304
            assert h304["etag"] == etag and h304["cache-control"] == "no-cache"
        st, _, body = get(node, "/console/app.css", dict(enc, **{"If-None-Match": '"other"'}))
        assert st == 200 and body


def test_versioned_assets_are_immutable(node):
    ver = version_of(node)
    st, h, body = get(node, "/console/_v/%s/app.js" % ver)
    assert st == 200
    assert h["cache-control"] == "public, max-age=31536000, immutable"
    assert h["content-type"] == "text/javascript; charset=utf-8"
    with open(os.path.join(CONSOLE, "app.js"), "rb") as f:
        assert body == f.read()
    st, h, _ = get(node, "/console/_v/%s/lib/table.js" % ver)
    assert st == 200 and "immutable" in h["cache-control"]
    for bad in ("0" * 16, ver[:-1], ver + "0"):
        st, _, _ = get(node, "/console/_v/%s/app.js" % bad)
        assert st == 404, bad
    st, _, _ = get(node, "/console/_v/%s/" % ver)
    assert st == 404


def test_every_shipped_file_is_served_with_its_type(node):
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
             ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml"}
    n = 0
    for root, _, files in os.walk(CONSOLE):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), CONSOLE)
            st, h, _ = get(node, "/console/" + rel)
            assert st == 200, rel
            assert h["content-type"] == types[os.path.splitext(name)[1]], rel
            n += 1
    assert n >= 10


def test_head_and_methods(node):
    st, h, body = get(node, "/console/app.js", method="HEAD")
    assert st == 200 and body == b"" and int(h["content-length"]) > 1000
    for m in ("POST", "PUT", "DELETE"):
        st, h, _ = get(node, "/console/", method=m)
        assert st == 405 and h["allow"] == "GET, HEAD", m


@pytest.mark.parametrize("path", [
    "/console/../README.md",
    "/console/%2e%2e/README.md",
    "/console/..%2fREADME.md",
    "/console/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/console/../../../../etc/passwd",
    "/console/lib/../app.js",
    "/console/./app.js",
    "/console//app.js",
    "/console/app.js%00.png",
    "/console/%00",
    "/console/lib",
    "/console/lib/",
    "/console/pages/",
    "/console/app.js/",
    "/console/APP.JS",
    "/console/_v/",
    "/console/\\app.js",
])
def test_no_traversal_no_listing(node, path):
    st, h, body = get(node, path)
    assert st in (400, 404), (path, st, body[:200])
    assert b"root:" not in body and b"Artemis in C" not in body


def test_api_paths_are_untouched(node):
    st, _, _ = get(node, "/health")
    assert st == 200
    st, _, _ = get(node, "/consoles")
    assert st == 404
    st, _, _ = get(node, "/artemis/api/status/node.json")
    assert st == 200


def test_console_off(node_factory):
    n = node_factory(http={"console": "off"})
    for path in ("/", "/console", "/console/", "/console/app.js"):
        st, _, _ = get(n, path)
        assert st == 404, path
    st, _, _ = get(n, "/health")
    assert st == 200


def test_console_dir_serves_only_plain_named_regular_files(node_factory, tmp_path):
    d = tmp_path / "ui"
    (d / "sub").mkdir(parents=True)
    (d / "index.html").write_text('<script src="{{ASSETS}}/x.js"></script>{{ASSETS}}')
    (d / "x.js").write_text("export const x = 1;\n")
    (d / "sub" / "deep.json").write_text('{"a": 1}')
    (d / ".secret").write_text("hidden")
    (d / "_private.js").write_text("reserved")
    (d / "bad name.js").write_text("bad")
    (d / "link.txt").symlink_to("/etc/hostname")
    (d / "linkdir").symlink_to(str(tmp_path))
    (d / "odd.xyz").write_bytes(b"\x00\x01")
    n = node_factory(http={"console_dir": str(d)})
    st, h, body = get(n, "/console/")
    ver = VERSIONED_RE.pattern.replace("app\\.js", "x\\.js")
    assert st == 200 and re.search(ver, body.decode()), body
    assert "{{ASSETS}}" not in body.decode()
    assert get(n, "/console/x.js")[0] == 200
    st, h, body = get(n, "/console/sub/deep.json")
    assert st == 200 and h["content-type"] == "application/json" and body == b'{"a": 1}'
    st, h, _ = get(n, "/console/odd.xyz")
    assert st == 200 and h["content-type"] == "application/octet-stream"
    for path in ("/console/.secret", "/console/_private.js", "/console/bad%20name.js",
                 "/console/link.txt", "/console/linkdir/ui/x.js", "/console/sub"):
        assert get(n, path)[0] == 404, path
    assert "console: 4 files" in n.read_log()


def test_missing_console_dir_is_a_404_logged_once(node_factory, tmp_path):
    n = node_factory(http={"console_dir": str(tmp_path / "nowhere")})
    for _ in range(6):
        st, _, body = get(n, "/console/")
        assert st == 404 and b"not found" in body
    assert get(n, "/")[0] == 302
    assert get(n, "/health")[0] == 200
    lines = [ln for ln in n.read_log().splitlines() if "console: cannot serve" in ln]
    assert 1 <= len(lines) <= 2, lines  # once per worker that was asked


def test_found_next_to_an_installed_binary(node_factory, tmp_path):
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    shutil.copy(artemis_bin(), prefix / "bin" / "artemis")
    share = prefix / "share" / "artemis" / "console"
    share.mkdir(parents=True)
    (share / "index.html").write_text("installed {{ASSETS}}")

    def use_copy(node):
        node.command = lambda: [str(prefix / "bin" / "artemis"), "server", "-c",
                                node.conf_path, "--fresh"]

    n = node_factory(prepare=use_copy)
    st, _, body = get(n, "/console/")
    assert st == 200 and body.startswith(b"installed _v/"), body


def test_modules_import_only_files_that_exist():
    imp = re.compile(r"""(?:from|import)\s*\(?\s*['"](\.{1,2}/[^'"]+)['"]""")
    for root, _, files in os.walk(CONSOLE):
        for name in files:
            if not name.endswith(".js"):
                continue
            path = os.path.join(root, name)
            with open(path) as f:
                src = f.read()
            for target in imp.findall(src):
                assert os.path.isfile(os.path.normpath(os.path.join(root, target))), (path, target)


def test_console_never_parses_markup_from_strings():
    banned = re.compile(r"\.innerHTML|\.outerHTML|\.insertAdjacentHTML|document\.write|\beval\(|"
                        r"new Function\(|createContextualFragment|DOMParser")
    for root, _, files in os.walk(CONSOLE):
        for name in files:
            if not name.endswith(".js"):
                continue
            with open(os.path.join(root, name)) as f:
                for i, line in enumerate(f, 1):
                    code = line.split("//", 1)[0]
                    assert not banned.search(code), "%s:%d: %s" % (name, i, line.strip())


def test_first_load_is_small(node):
    """index.html, the stylesheet, the icon and every module, gzipped: the
    most a first visit can transfer (the budget is 300 KB)."""
    total = 0
    for root, _, files in os.walk(CONSOLE):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), CONSOLE)
            st, h, body = get(node, "/console/" + rel, {"Accept-Encoding": "gzip"})
            assert st == 200
            total += len(body)
    assert total < 300 * 1024, total

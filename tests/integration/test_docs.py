"""
test_docs.py - the documentation stays true to the node and stands alone
(issue 12, item 12).

- Every path in the node's route tables (the HTTP table in worker/api.c and
  any other table of the same form in worker/, the WebSocket paths in
  worker/ws.c) is in the endpoint index of docs/API.md, and every path of
  that index is served; management, auth and routing paths
  (/api/management/..., /api/auth/..., /api/routing/...) are documented
  in docs/MANAGEMENT.md instead.  The parser is checked against
  a running node: each parsed HTTP path exists (PUT answers 405, not 404),
  each WebSocket path completes a handshake.
- README.md and docs/ link nowhere outside the repository: no ../shared,
  no absolute file paths, every relative link resolves to a file of the
  repository, and every #anchor to a heading of its target.
- The JSON examples of docs/API.md are valid JSON.
"""

import json
import os
import re

from ws_util import RawWS

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
API_MD = os.path.join(ROOT, "docs", "API.md")
MANAGEMENT_MD = os.path.join(ROOT, "docs", "MANAGEMENT.md")
MANAGEMENT_PREFIX = ("/api/management/", "/api/auth/", "/api/routing/")

# { "/artemis/api/registry/register.json", M_POST, ... }  (HTTP tables; the
# methods may be a macro such as GP, the path may start with a string macro
# such as MG "operate-instance.json", expanded first)
HTTP_ROUTE_RE = re.compile(r'\{\s*"(/[^"]*)"\s*,\s*(?:M_[A-Z]+|[A-Z]{2})\b')
STRING_MACRO_RE = re.compile(r'^#define\s+([A-Z][A-Z0-9_]*)\s+"(/[^"]*)"\s*$', re.M)
# Every /artemis/api/... route also answers under /api/... (worker/api.c);
# docs/API.md states that rule once instead of listing each twin.
TWIN_FROM, TWIN_TO = "/artemis/api/", "/api/"
# {"/artemis/websocket/registry/heartbeat", WS_KIND_HEARTBEAT}  (ws.c)
WS_ROUTE_RE = re.compile(r'\{\s*"(/[^"]*)"\s*,\s*WS_KIND_[A-Z_]+\s*\}')
WS_PREFIX_RE = re.compile(r'#define\s+WS_SUBSCRIBE_PREFIX\s+"(/[^"]*)"')
INDEX_RE = re.compile(r"<!-- endpoint-index:begin.*?-->(.*?)<!-- endpoint-index:end -->", re.S)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def worker_sources():
    """[(file name, text)] of worker/*.c with their path macros expanded
    (MG "operate-instance.json" -> "/api/management/operate-instance.json")."""
    out = []
    worker = os.path.join(ROOT, "worker")
    for name in sorted(os.listdir(worker)):
        if not name.endswith(".c"):
            continue
        text = read(os.path.join(worker, name))
        for macro, value in STRING_MACRO_RE.findall(text):
            text = re.sub(r'(?<!#define )\b%s\s+"' % macro, '"' + value, text)
        out.append((name, text))
    return out


def routes():
    """(http_paths, ws_paths) from the C sources; the subscribe alias as
    '<prefix>{serviceId}'."""
    http, ws = set(), set()
    for _, text in worker_sources():
        http.update(HTTP_ROUTE_RE.findall(text))
        ws.update(WS_ROUTE_RE.findall(text))
        ws.update(p + "{serviceId}" for p in WS_PREFIX_RE.findall(text))
    http.update(TWIN_TO + p[len(TWIN_FROM):] for p in list(http) if p.startswith(TWIN_FROM))
    # The parser must see the tables at all: a few paths that every build has.
    for p in ("/artemis/api/registry/register.json", "/health", "/api/discovery/service.json",
              "/artemis/api/status/websocket/connection.json"):
        assert p in http, "route table parser missed %s (worker/api.c changed shape?)" % p
    for p in ("/artemis/websocket/registry/heartbeat", "/ws/discovery/all-instance-change",
              "/api/v1/discovery/subscribe/{serviceId}"):
        assert p in ws, "WebSocket route parser missed %s (worker/ws.c changed shape?)" % p
    return http, ws


def index_paths():
    """The backquoted paths of the endpoint index table of docs/API.md."""
    m = INDEX_RE.search(read(API_MD))
    assert m, "docs/API.md has no endpoint index (<!-- endpoint-index:begin --> ... end)"
    paths = set()
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[1].startswith("`/"):
            paths.add(cells[1].strip("`"))
    assert len(paths) > 10, "the endpoint index of docs/API.md lists no paths"
    return paths


# ---------------------------------------------------------------- routes ---

def test_every_route_is_documented():
    http, ws = routes()
    indexed = index_paths()
    missing = sorted(p for p in http | ws
                     if not p.startswith(MANAGEMENT_PREFIX) and p not in indexed
                     and not (p.startswith(TWIN_TO) and
                              TWIN_FROM + p[len(TWIN_TO):] in indexed))
    assert not missing, "served but not in the endpoint index of docs/API.md: %s" % missing
    mgmt = sorted(p for p in http if p.startswith(MANAGEMENT_PREFIX))
    if mgmt:
        assert os.path.exists(MANAGEMENT_MD), \
            "management routes %s... are served but docs/MANAGEMENT.md is missing" % mgmt[:3]
        text = read(MANAGEMENT_MD)
        undocumented = [p for p in mgmt if p not in text]
        assert not undocumented, "not in docs/MANAGEMENT.md: %s" % undocumented
    section = re.search(r"^## Management API$(.*?)^## ", read(API_MD), re.S | re.M)
    assert section and "MANAGEMENT.md" in section.group(1), \
        "docs/API.md needs its Management API section pointing to docs/MANAGEMENT.md"


def test_every_documented_endpoint_is_served():
    http, ws = routes()
    stale = sorted(indexed for indexed in index_paths() if indexed not in http | ws)
    assert not stale, "docs/API.md lists endpoints the node does not serve: %s" % stale


def test_route_parser_agrees_with_the_node(node):
    """PROPFIND is mapped nowhere: a served path answers 405, an unknown one
    404, so this proves each path exists without running its handler (paths
    with {parameters} are probed with the parameter's name as its value)."""
    http, ws = routes()
    st, _, _ = node.request("PROPFIND", "/artemis/api/no-such-endpoint.json")
    assert st == 404
    wrong = {}
    for path in sorted(http):
        st, _, _ = node.request("PROPFIND", path.replace("{", "").replace("}", ""))
        if st != 405:
            wrong[path] = st
    assert not wrong, "parsed from worker/ but not served as expected (PROPFIND status): %r" % wrong
    for path in sorted(ws):
        sock = RawWS(node, path.replace("{serviceId}", "docs-probe"))
        sock.close()


# ----------------------------------------------------------------- links ---

FENCE_RE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[ \t]*$", re.S | re.M)
CODE_SPAN_RE = re.compile(r"`[^`\n]*`")
INLINE_LINK_RE = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF_RE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
HTML_LINK_RE = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)
SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
HEADING_RE = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
EXPLICIT_ANCHOR_RE = re.compile(r"""<a\s+(?:name|id)\s*=\s*["']([^"']+)["']""", re.I)


def doc_files():
    files = [os.path.join(ROOT, "README.md")]
    for dirpath, _, names in os.walk(os.path.join(ROOT, "docs")):
        files.extend(os.path.join(dirpath, n) for n in sorted(names) if n.endswith(".md"))
    return files


def rel(path):
    return os.path.relpath(path, ROOT)


def without_code(text):
    return CODE_SPAN_RE.sub("", FENCE_RE.sub("", text))


def links(text):
    body = without_code(text)
    return (INLINE_LINK_RE.findall(body) + REF_DEF_RE.findall(body) +
            HTML_LINK_RE.findall(body))


def slug(heading):
    """GitHub's anchor for a heading: the rendered text, lowercased, without
    punctuation other than '-' and '_', spaces as '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # links -> their text
    text = re.sub(r"<[^>]+>", "", text)                          # inline HTML
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    text = FENCE_RE.sub("", read(path))
    seen, out = {}, set(EXPLICIT_ANCHOR_RE.findall(text))
    for h in HEADING_RE.findall(text):
        s = slug(h)
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.add(s if n == 0 else "%s-%d" % (s, n))
    return out


def test_docs_do_not_point_outside_the_repository():
    bad = []
    for path in doc_files():
        text = read(path)
        for needle in ("../shared", "/work/shared"):
            if needle in text:
                bad.append("%s mentions %s" % (rel(path), needle))
    assert not bad, bad


def test_links_resolve_inside_the_repository():
    bad = []
    checked = 0
    for path in doc_files():
        for target in links(read(path)):
            checked += 1
            if SCHEME_RE.match(target):
                if not target.lower().startswith(("http://", "https://", "mailto:")):
                    bad.append("%s: %s (not a web link)" % (rel(path), target))
                continue
            file_part, _, fragment = target.partition("#")
            if file_part.startswith("/"):
                bad.append("%s: %s (absolute path)" % (rel(path), target))
                continue
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) \
                if file_part else path
            if os.path.commonpath([ROOT, os.path.realpath(dest)]) != ROOT:
                bad.append("%s: %s (leaves the repository)" % (rel(path), target))
            elif not os.path.exists(dest):
                bad.append("%s: %s (no such file)" % (rel(path), target))
            elif fragment and dest.endswith(".md") and fragment not in anchors(dest):
                bad.append("%s: %s (no heading #%s in %s)" % (rel(path), target, fragment,
                                                              rel(dest)))
    assert checked > 20, "the link parser found only %d links" % checked
    assert not bad, "broken links:\n  " + "\n  ".join(bad)


def test_readme_links_the_api_reference():
    targets = links(read(os.path.join(ROOT, "README.md")))
    assert "docs/API.md" in targets and "docs/API-NOTES.md" in targets, targets
    notes = links(read(os.path.join(ROOT, "docs", "API-NOTES.md")))
    assert any(t.startswith("API.md") for t in notes), "API-NOTES.md must link into API.md"


def test_link_checker_catches_what_it_must():
    """The checker itself: a sample with every kind of bad link."""
    sample = ("[a](../shared/API.md) [b](API.md#nope) ![c](img.png)\n"
              "[d]: ../../outside.md\n```\n[not a link](ignored.md)\n```\n`[x](y.md)`\n")
    assert links(sample) == ["../shared/API.md", "API.md#nope", "img.png",
                             "../../outside.md"]
    assert slug("`GET /health`") == "get-health"
    assert slug("up-registry-nodes.json and up-discovery-nodes.json") == \
        "up-registry-nodesjson-and-up-discovery-nodesjson"
    assert slug("[cluster]") == "cluster"


# -------------------------------------------------------------- examples ---

def test_json_examples_parse():
    text = read(API_MD)
    blocks = re.findall(r"^```json\n(.*?)^```", text, re.S | re.M)
    assert len(blocks) > 20, "docs/API.md has only %d JSON examples" % len(blocks)
    bad = []
    for block in blocks:
        for line in block.splitlines():
            if line.strip():
                try:
                    json.loads(line)
                except ValueError as e:
                    bad.append("%s: %s" % (e, line[:80]))
    assert not bad, "JSON examples that do not parse:\n  " + "\n  ".join(bad)

"""
test_ops.py - API.md §A operations endpoints: GET /health, GET /ready and
GET /metrics (Prometheus text format 0.0.4).  Metric names are not fixed by
the contract, so they are matched loosely (by the words they must contain)
but their values must move with what the test did.
"""

import re

from artemis_it import heartbeat, inst, register, uniq, unregister, wait_for

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


def find(samples, *words, labels_with=None):
    """Samples whose name contains every word (and, optionally, whose label
    values include labels_with)."""
    out = []
    for name, labels, value in samples:
        if all(w in name.lower() for w in words):
            if labels_with is None or any(labels_with in v for v in labels.values()):
                out.append((name, labels, value))
    return out


def test_health(node):
    st, headers, body = node.get("/health")
    assert st == 200 and body == {"status": "up"}, (st, body)
    assert headers.get("content-type", "").startswith("application/json")


def test_ready_on_single_node(node):
    st, _, _ = node.get("/ready")
    assert st == 200


def test_metrics_format_and_families(node):
    samples, types = scrape(node)
    assert samples, "no samples"
    assert types, "no # TYPE lines"
    for name, _, _ in samples:
        base = re.sub(r"_(bucket|sum|count|total|created)$", "", name)
        assert name in types or base in types, "sample %s has no # TYPE" % name


def test_metrics_instance_count_follows_registry(fresh_node):
    n = fresh_node
    svc = uniq()
    register(n, *[inst(svc, "i%d" % k) for k in range(3)])

    def gauge_is(v):
        samples, _ = scrape(n)
        return [s for s in find(samples, "instance")
                if s[2] == v and not s[0].endswith(("_total", "_bucket", "_count", "_sum"))]

    wait_for(lambda: gauge_is(3.0), 5.0, what="an instances gauge equal to 3")
    unregister(n, inst(svc, "i0"))
    wait_for(lambda: gauge_is(2.0), 5.0, what="the instances gauge to drop to 2")


def test_metrics_requests_by_endpoint(fresh_node):
    n = fresh_node
    i = inst(uniq(), "i1")
    register(n, i)
    for _ in range(4):
        heartbeat(n, i)
    samples, _ = scrape(n)
    reqs = find(samples, "request")
    assert reqs, "no request-count metric"
    hb = [s for s in reqs if any("heartbeat" in v for v in s[1].values())
          and not s[0].endswith(("_bucket", "_sum"))]
    assert hb, "no request metric labelled with the heartbeat endpoint: %r" % reqs[:10]
    assert max(s[2] for s in hb) >= 4, hb
    reg = [s for s in reqs if any("register" in v and "unregister" not in v
                                  for v in s[1].values())]
    assert reg and max(s[2] for s in reg) >= 1, reqs[:10]


def test_metrics_latency_histogram(fresh_node):
    n = fresh_node
    register(n, inst(uniq(), "i1"))
    samples, types = scrape(n)
    hist = [name for name, t in types.items() if t == "histogram"]
    assert hist, "no histogram family"
    assert any(("latency" in h or "duration" in h or "seconds" in h) for h in hist), hist
    h = hist[0]
    buckets = [s for s in samples if s[0] == h + "_bucket"]
    assert any(s[1].get("le") == "+Inf" for s in buckets), "histogram %s lacks le=+Inf" % h
    assert [s for s in samples if s[0] == h + "_count"], h
    assert [s for s in samples if s[0] == h + "_sum"], h
    inf = [s[2] for s in buckets if s[1].get("le") == "+Inf"]
    assert sum(inf) >= 1, "the histogram counted no request"


def test_metrics_evictions_and_self_preservation(node):
    samples, _ = scrape(node)
    assert find(samples, "evict") or find(samples, "expire"), \
        "no eviction metric among %s" % sorted({s[0] for s in samples})
    sp = find(samples, "safe") + find(samples, "preserv")
    assert sp, "no self-preservation metric among %s" % sorted({s[0] for s in samples})

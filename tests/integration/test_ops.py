"""
test_ops.py - API.md §A operations endpoints: GET /health, GET /ready and
GET /metrics (Prometheus text format 0.0.4).  Metric names are not fixed by
the contract, so they are matched loosely (by the words they must contain)
but their values must move with what the test did.
"""

import re

from artemis_it import find_metrics as find
from artemis_it import heartbeat, inst, register, scrape, uniq, unregister, wait_for

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


def endpoint_counters(n, word):
    """{(name, labels): value} of request counters labelled with word."""
    samples, _ = scrape(n)
    return {(name, tuple(sorted(labels.items()))): v for name, labels, v in samples
            if "request" in name and not any(x in name for x in ("error", "fail"))
            and not name.endswith(("_bucket", "_sum", "_count"))
            and any(word in lv and "un" + word not in lv for lv in labels.values())}


def test_metrics_requests_by_endpoint(fresh_node):
    """Counted per request, summed over all workers (each request may land
    on either of the 2 workers)."""
    n = fresh_node
    i = inst(uniq(), "i1")
    register(n, i)
    before = endpoint_counters(n, "heartbeat")
    assert before, "no request counter labelled with the heartbeat endpoint"
    for _ in range(7):
        heartbeat(n, i)
    after = endpoint_counters(n, "heartbeat")
    deltas = {k: after.get(k, 0) - v for k, v in before.items()}
    assert 7 in deltas.values(), "7 heartbeats, counter deltas %r" % deltas
    reg = endpoint_counters(n, "register")
    assert reg and max(reg.values()) >= 1, reg


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

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


# ---- issue 18 item 5: latency per endpoint, management writes, push fan-out ----

def series(n, name):
    """{frozenset(labels.items()): value} of one metric."""
    samples, _ = scrape(n)
    return {frozenset(labels.items()): v for s, labels, v in samples if s == name}


def latency(n, endpoint):
    """(+Inf bucket, _count, _sum, [bucket values in le order]) of one endpoint."""
    samples, _ = scrape(n)
    mine = [(s, lb, v) for s, lb, v in samples
            if s.startswith("artemis_http_request_duration_seconds_")
            and lb.get("endpoint") == endpoint]
    buckets = [v for s, lb, v in mine if s.endswith("_bucket")]
    inf = [v for s, lb, v in mine if s.endswith("_bucket") and lb["le"] == "+Inf"]
    count = [v for s, lb, v in mine if s.endswith("_count")]
    total = [v for s, lb, v in mine if s.endswith("_sum")]
    return (inf or [0])[0], (count or [0])[0], (total or [0])[0], buckets


def test_metrics_latency_per_endpoint(fresh_node):
    """A histogram per endpoint, labelled with the route's name ("other"
    for unknown paths, so the label set stays bounded); each request moves
    its own endpoint's series only."""
    n = fresh_node
    i = inst(uniq(), "i1")
    register(n, i)
    hb0, other0 = latency(n, "registry_heartbeat"), latency(n, "other")
    lookups0 = latency(n, "discovery_lookup")
    for _ in range(5):
        heartbeat(n, i)
    for k in range(3):
        n.get("/no/such/path/%d" % k)
    hb, other = latency(n, "registry_heartbeat"), latency(n, "other")
    assert hb[0] - hb0[0] == 5 and hb[1] == hb[0], (hb0, hb)
    assert other[0] - other0[0] == 3 and other[1] == other[0], (other0, other)
    assert hb[2] > hb0[2] and other[2] > other0[2]
    assert hb[3] == sorted(hb[3]) and len(hb[3]) == 16, hb[3]  # cumulative buckets
    assert latency(n, "discovery_lookup") == lookups0
    samples, types = scrape(n)
    assert types["artemis_http_request_duration_seconds"] == "histogram"
    routes = {lb["endpoint"] for s, lb, _ in samples if s == "artemis_http_requests_total"}
    labels = {lb.get("endpoint") for s, lb, _ in samples
              if s.startswith("artemis_http_request_duration_seconds_")}
    assert labels <= routes | {"other"}, labels - routes


def test_metrics_management_operations(fresh_node):
    """Management writes by kind and result; reads are not counted."""
    from mgmt_util import M, java_instance, java_zone
    from routing_util import group

    n = fresh_node
    n.login()

    def ops():
        return {(dict(k)["kind"], dict(k)["result"]): v
                for k, v in series(n, "artemis_mgmt_operations_total").items()}

    before = ops()
    assert {k for k, r in before} >= {"instance", "server", "zone", "group", "route_rule",
                                      "canary", "other"}
    svc = uniq()
    java_instance(n, svc, "i1")
    java_instance(n, svc, "i1", complete=True)
    java_zone(n, "zone-9")
    n.api(M + "operate-instance.json", {"operation": "pullout"})       # no instanceKey
    n.api(M + "instance-operations.json", {"instanceKey": {"regionId": "us-east",
                                                           "serviceId": svc,
                                                           "instanceId": "i1"}})  # a read
    group(n, svc, "blue")
    after = ops()
    moved = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert moved == {("instance", "success"): 2, ("instance", "bad-request"): 1,
                     ("zone", "success"): 1, ("group", "success"): 1}, moved


def test_metrics_push_messages_count_the_sessions_reached(fresh_node):
    """artemis_push_messages_total counts a message per session reached:
    three subscribers, one change -> 3 messages; artemis_registry_version
    moves by 1 (the dashboard's fan-out is their ratio)."""
    import json
    import websocket

    n = fresh_node
    svc = uniq("push")
    socks = [websocket.create_connection("ws://%s:%d/artemis/websocket/discovery/"
                                         "instance-change" % (n.host, n.port), timeout=5)
             for _ in range(3)]

    def reached(iid):
        """Register iid; wait until every session got its push."""
        register(n, inst(svc, iid))
        for ws in socks:
            while True:
                msg = json.loads(ws.recv())
                if msg["instance"]["instanceId"] == iid:
                    break

    def counters():
        return (series(n, "artemis_push_messages_total")[frozenset()],
                series(n, "artemis_registry_version")[frozenset()])

    try:
        for ws in socks:
            ws.send(json.dumps({"serviceId": svc, "regionId": "us-east", "zoneId": "zone-1"}))
        # a subscription has no ack: register until all three sessions push
        k = 0

        def all_subscribed():
            nonlocal k
            k += 1
            register(n, inst(svc, "warm%d" % k))
            got = 0
            for ws in socks:
                ws.settimeout(0.3)
                try:
                    while json.loads(ws.recv())["instance"]["instanceId"] != "warm%d" % k:
                        pass
                    got += 1
                except websocket.WebSocketTimeoutException:
                    pass
                ws.settimeout(5)
            return got == len(socks)

        wait_for(all_subscribed, 10.0, interval=0, what="three active subscriptions")
        reached("sync")  # the warm-up's pushes are all out
        msgs0, version0 = counters()
        reached("x")
        wait_for(lambda: counters()[0] - msgs0 >= 3, 5.0, what="the messages counted")
        msgs, version = counters()
        assert (msgs - msgs0, version - version0) == (3, 1), (msgs0, msgs, version0, version)
    finally:
        for ws in socks:
            ws.close()

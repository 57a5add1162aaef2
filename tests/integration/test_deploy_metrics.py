"""
test_deploy_metrics.py - the Grafana dashboard (deploy/grafana/artemis.json)
and the Prometheus alerts (deploy/prometheus/alerts.yml) only query what a
node really exports.

A two-node cluster runs (the peer metrics appear only with peers), serves a
few requests, and node 1's /metrics is scraped.  Every metric name a query
mentions must have samples there; every label a query filters or groups by
must be a label of one of its metrics (or instance/job, which Prometheus
adds at scrape time); every label value a query matches exactly must occur.
"""

import json
import os
import re

import pytest
import yaml

from artemis_it import inst, register, uniq
from cluster_util import Cluster

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DASHBOARD = os.path.join(REPO, "deploy", "grafana", "artemis.json")
ALERTS = os.path.join(REPO, "deploy", "prometheus", "alerts.yml")

SCRAPE_LABELS = {"instance", "job"}        # added by Prometheus
PROMETHEUS_METRICS = {"up"}                # Prometheus's own
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
METRIC = re.compile(r'\b(artemis_[a-z0-9_]+)\b')
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)\s*"([^"]*)"')
GROUPING = re.compile(r'\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)')


def parse_exposition(text):
    """{metric name: [label dict per sample]}"""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "unparsable /metrics line %r" % line
        samples.setdefault(m.group(1), []).append(dict(LABEL.findall(m.group(2) or "")))
    return samples


def dashboard_queries():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            out.append(("panel %r" % p["title"], t["expr"]))
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            out.append(("variable %r" % v["name"], v["query"]["query"]))
    return out


def alert_queries():
    with open(ALERTS) as f:
        rules = yaml.safe_load(f)
    return [("alert %r" % r["alert"], r["expr"]) for g in rules["groups"] for r in g["rules"]]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    cluster = Cluster(str(tmp_path_factory.mktemp("metrics")), n=2).start()
    try:
        n = cluster[0]
        svc = uniq()
        register(n, inst(svc, "i1"))
        n.post_json("/api/discovery/service.json",
                    {"discovery_config": {"service_id": svc, "region_id": "us-east"}})
        n.get("/no/such/path")
        st, _, raw = n.request_raw("GET", "/metrics")
        assert st == 200
        yield parse_exposition(raw.decode())
    finally:
        cluster.finish()


def check_query(where, expr, exported, allowed_extra=()):
    problems = []
    names = set(METRIC.findall(expr)) | {m for m in allowed_extra if re.search(
        r'\b%s\b' % m, expr)}
    if not names:
        problems.append("%s: no metric in %r" % (where, expr))
    labels = set(SCRAPE_LABELS)
    for name in names:
        if name in PROMETHEUS_METRICS:
            continue
        if name not in exported:
            problems.append("%s: %s is not exported" % (where, name))
            continue
        for s in exported[name]:
            labels |= set(s)
    used = {lbl.strip() for g in GROUPING.findall(expr) for lbl in g.split(",") if lbl.strip()}
    for lbl, op, value in MATCHER.findall(expr):
        used.add(lbl)
        if op == "=" and "$" not in value and lbl not in SCRAPE_LABELS:
            if not any(s.get(lbl) == value for n in names if n in exported
                       for s in exported[n]):
                problems.append("%s: no sample has %s=%r" % (where, lbl, value))
    for lbl in sorted(used - labels):
        problems.append("%s: label %r is on none of %s" % (where, lbl, sorted(names)))
    if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
        problems.append("%s: unbalanced brackets in %r" % (where, expr))
    return problems


def test_peer_metrics_are_exported_with_peers(exported):
    for name in ("artemis_peer_up", "artemis_peer_lag_seconds", "artemis_peer_acked_version"):
        assert exported.get(name), "%s has no sample on a node with a peer" % name
        assert all("peer" in s for s in exported[name])


def test_dashboard_queries_only_exported_metrics(exported):
    problems = []
    queries = dashboard_queries()
    assert len(queries) >= 20
    for where, expr in queries:
        problems += check_query(where, expr, exported)
    assert not problems, "\n".join(problems)


def test_alerts_query_only_exported_metrics(exported):
    problems = []
    for where, expr in alert_queries():
        problems += check_query(where, expr, exported, allowed_extra=PROMETHEUS_METRICS)
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_wrong_name_or_label(exported):
    assert check_query("t", "rate(artemis_http_request_total[5m])", exported)
    assert check_query("t", 'sum by (route) (artemis_http_requests_total)', exported)
    assert check_query("t", 'artemis_websocket_sessions{endpoint="push"}', exported)
    assert not check_query("t", 'sum by (endpoint) (artemis_http_requests_total)', exported)


def test_dashboard_and_alerts_are_well_formed():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    assert dash["uid"] and dash["title"] == "Artemis"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    names = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "instance"} <= names
    titles = [p["title"] for p in dash["panels"]]
    assert len(titles) == len(set(titles)), "panel titles repeat"
    for p in dash["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        if p["type"] != "row":
            assert p["targets"] and p["datasource"]["uid"] == "${datasource}", p["title"]
    # what the issue asks the dashboard to show
    text = json.dumps(dash)
    for metric in ("artemis_instances", "artemis_http_requests_total",
                   "artemis_http_request_duration_seconds_bucket", "artemis_evictions_total",
                   "artemis_self_preservation_safe", "artemis_peer_lag_seconds",
                   "artemis_websocket_sessions", "artemis_push_messages_total",
                   "artemis_mgmt_operations_total"):
        assert metric in text, metric
    assert re.search(r"by \(endpoint, le\) \(rate\(artemis_http_request_duration_seconds_bucket",
                     text), "no latency panel per endpoint"

    with open(ALERTS) as f:
        rules = yaml.safe_load(f)["groups"][0]["rules"]
    alerts = {r["alert"] for r in rules}
    assert {"ArtemisNodeDown", "ArtemisReplicationLag", "ArtemisSelfPreservation",
            "ArtemisHighErrorRate", "ArtemisSlowRequests", "ArtemisManagementFailing"} <= alerts
    for r in rules:
        assert set(r) <= {"alert", "expr", "for", "labels", "annotations"}, r
        assert r["labels"]["severity"] in ("critical", "warning", "info")
        assert r["annotations"]["summary"]
        assert re.match(r"^\d+[smh]$", r.get("for", "0s")), r

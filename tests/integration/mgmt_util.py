"""
mgmt_util.py - shortcuts for the management tests (test_mgmt_*.py): the
operations of both surfaces, and what discovery shows on every path and
every worker.

A node of the suite runs two workers behind SO_REUSEPORT sockets; each new
connection lands on one of them at the kernel's choice.  `everywhere()`
asks on WORKER_PROBES fresh connections, so both workers answer (and both
workers' response caches are exercised) unless the kernel sends every one of
them to the same worker (2 * 2^-16).
"""

from artemis_it import REGION, ZONE, SUCCESS, assert_status, http_request

M = "/api/management/"
WORKER_PROBES = 16


# ------------------------------------------------------------ operations ---

def java_instance(node, svc, iid, complete=False, operation="pullout", operator="alice",
                  region=REGION):
    body = node.api(M + "operate-instance.json", {
        "instanceKey": {"regionId": region, "serviceId": svc, "instanceId": iid},
        "operation": operation, "operationComplete": complete, "operatorId": operator})
    assert_status(body, SUCCESS)
    return body


def java_server(node, ip, complete=False, operation="pullout", operator="alice",
                region=REGION):
    body = node.api(M + "operate-server.json", {
        "serverKey": {"regionId": region, "serverId": ip},
        "operation": operation, "operationComplete": complete, "operatorId": operator})
    assert_status(body, SUCCESS)
    return body


def java_zone(node, zone, service="", complete=False, operations=("pullout",),
              operator="alice", region=REGION):
    body = node.api(M + "zone/operate-zone-operations.json", {
        "zoneOperationsList": [{"zoneKey": {"regionId": region, "serviceId": service,
                                            "zoneId": zone},
                                "operations": list(operations)}],
        "operationComplete": complete, "operatorId": operator})
    assert_status(body, SUCCESS)
    return body


def rust_post(node, path, obj, expect=200):
    st, _, body = node.post_json(M + path, obj)
    assert st == expect, "POST %s -> HTTP %s %r" % (path, st, body)
    return body


def rust_instance(node, svc, iid, operation="pullout", operator="bob", **extra):
    body = {"instanceKey": {"regionId": REGION, "serviceId": svc, "instanceId": iid,
                            "zoneId": ZONE},
            "operation": operation, "operatorId": operator}
    body.update(extra)
    out = rust_post(node, "instance/operate-instance.json", body)
    assert out["status"]["errorCode"] == "success", out
    return out


def rust_server(node, ip, operation="pullout", operator="bob"):
    out = rust_post(node, "server/operate-server.json", {
        "serverId": ip, "regionId": REGION, "operation": operation, "operatorId": operator})
    assert out["status"]["errorCode"] == "success", out
    return out


def rust_zone(node, zone, out=True, service=None, operator="carol"):
    body = {"zoneId": zone, "regionId": REGION, "operatorId": operator}
    if service is not None:
        body["serviceId"] = service
    res = rust_post(node, "zone/pull-out" if out else "zone/pull-in", body)
    assert res["success"] is True, res
    return res


# ------------------------------------------------------------- discovery ---

def _post(node, path, obj):
    import json
    st, _, raw = http_request(node.host, node.port, "POST", path,
                              json.dumps(obj).encode(), {"Content-Type": "application/json"})
    assert st == 200, (path, st, raw[:300])
    return json.loads(raw)


def _get(node, path):
    import json
    st, _, raw = http_request(node.host, node.port, "GET", path)
    assert st == 200, (path, st, raw[:300])
    return json.loads(raw)


def _ids(instances):
    return sorted(i["instanceId"] for i in (instances or []))


def _service_ids(services, svc):
    for s in services or []:
        if s["serviceId"] == svc:
            return _ids(s.get("instances"))
    return []


DISCOVERY_PATHS = ("service", "service_get", "lookup", "services", "api_service",
                   "api_lookup")


def listed(node, svc, path):
    """The instanceIds discovery lists for svc on one path (one fresh
    connection, so one worker)."""
    dc = {"serviceId": svc, "regionId": REGION, "zoneId": ZONE}
    if path == "service":
        b = _post(node, "/artemis/api/discovery/service.json",
                  {"regionId": REGION, "zoneId": ZONE, "discoveryConfig": dc})
        return _ids(b["service"]["instances"])
    if path == "service_get":
        b = _get(node, "/artemis/api/discovery/service.json?serviceId=%s&regionId=%s&zoneId=%s"
                 % (svc, REGION, ZONE))
        return _ids(b["service"]["instances"])
    if path == "lookup":
        b = _post(node, "/artemis/api/discovery/lookup.json",
                  {"regionId": REGION, "zoneId": ZONE, "discoveryConfigs": [dc]})
        return _ids(b["services"][0]["instances"])
    if path == "services":
        b = _post(node, "/artemis/api/discovery/services.json", {"regionId": REGION})
        return _service_ids(b["services"], svc)
    if path == "api_service":
        b = _post(node, "/api/discovery/service.json", {"discovery_config": dc})
        return _ids(b["service"]["instances"])
    if path == "api_lookup":
        b = _post(node, "/api/discovery/lookup.json",
                  {"region_id": REGION, "zone_id": ZONE, "discovery_configs": [dc]})
        return _ids(b["services"][0]["instances"])
    raise ValueError(path)


def everywhere(node, svc):
    """{path: set of the answers over WORKER_PROBES connections each}."""
    out = {}
    for path in DISCOVERY_PATHS:
        out[path] = {tuple(listed(node, svc, path)) for _ in range(WORKER_PROBES)}
    return out


def assert_everywhere(node, svc, want):
    """Every discovery path on every worker lists exactly `want`."""
    want = tuple(sorted(want))
    got = everywhere(node, svc)
    for path, answers in got.items():
        assert answers == {want}, "%s answered %r, want %r" % (path, answers, want)


def mgmt_statuses(node, svc):
    """{instanceId: status} from the management view (services.json)."""
    b = node.api(M + "services.json", {})
    assert_status(b, SUCCESS)
    for s in b["services"]:
        if s["serviceId"] == svc:
            return {i["instanceId"]: i["status"] for i in s["instances"] or []}
    return {}

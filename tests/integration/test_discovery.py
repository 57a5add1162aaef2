"""
test_discovery.py - API.md §2.2: lookup.json (batched by service),
service.json (POST and GET), services.json (POST and GET),
services-delta.json, the region and zone checks, exact-case service lookup
and the §A discovery aliases.
"""

import pytest

from artemis_it import (REGION, SUCCESS, ZONE, assert_spring_error, assert_status,
                        get_service, inst, instance_ids, lookup, register, uniq, unregister,
                        wait_for)

DISC = "/artemis/api/discovery/"
NO_PERMISSION = {"status": "fail", "errorCode": "no-permission"}
BAD_REQUEST = {"status": "fail", "errorCode": "bad-request"}


def ids(service):
    return sorted(i["instanceId"] for i in service.get("instances") or [])


def service_request(svc, region=REGION, zone=ZONE, nested_region=True):
    cfg = {"serviceId": svc}
    if nested_region:
        cfg.update(regionId=region, zoneId=zone)
    return {"regionId": region, "zoneId": zone, "discoveryConfig": cfg}


# -------------------------------------------------------------- lookup ---

def test_lookup_in_request_order_with_unknown_service(node):
    a, b, unknown = uniq("a"), uniq("b"), uniq("unknown")
    register(node, inst(a, "a1"), inst(a, "a2"), inst(b, "b1"))
    body = lookup(node, b, unknown, a)
    assert_status(body, SUCCESS)
    services = body["services"]
    assert [s["serviceId"] for s in services] == [b, unknown, a]
    assert ids(services[0]) == ["b1"]
    assert services[1]["instances"] is None, services[1]
    assert ids(services[2]) == ["a1", "a2"]


def test_lookup_instance_is_full_instance_object(node):
    svc = uniq()
    sent = inst(svc, "i1", metadata={"k": "v"}, groupId="g1")
    register(node, sent)
    (got,) = lookup(node, svc)["services"][0]["instances"]
    for k, v in sent.items():
        assert got[k] == v, (k, got)


@pytest.mark.parametrize("configs", [[], None])
def test_lookup_empty_configs_is_bad_request(node, configs):
    body = node.api(DISC + "lookup.json",
                    {"regionId": REGION, "zoneId": ZONE, "discoveryConfigs": configs})
    assert_status(body, BAD_REQUEST)


def test_lookup_skips_blank_service_ids(node):
    a, b = uniq("a"), uniq("b")
    body = node.api(DISC + "lookup.json", {
        "regionId": REGION, "zoneId": ZONE,
        "discoveryConfigs": [{"serviceId": a}, {"serviceId": " "}, {"serviceId": None},
                             {"serviceId": b}]})
    assert_status(body, SUCCESS)
    assert [s["serviceId"] for s in body["services"]] == [a, b]


@pytest.mark.parametrize("region", ["eu-west", "", None])
def test_lookup_region_mismatch_is_no_permission(node, region):
    body = node.api(DISC + "lookup.json", {
        "regionId": region, "zoneId": ZONE, "discoveryConfigs": [{"serviceId": uniq()}]})
    assert_status(body, NO_PERMISSION)


def test_lookup_region_is_case_insensitive(node):
    svc = uniq()
    register(node, inst(svc, "i1"))
    body = lookup(node, svc, region="US-East")
    assert_status(body, SUCCESS)
    assert ids(body["services"][0]) == ["i1"]


def test_lookup_service_id_is_exact_case(node):
    svc = uniq("ExactCase")
    register(node, inst(svc, "i1"))
    body = lookup(node, svc, svc.lower(), svc.upper())
    assert_status(body, SUCCESS)
    got = body["services"]
    assert [s["serviceId"] for s in got] == [svc, svc.lower(), svc.upper()]
    assert ids(got[0]) == ["i1"]
    assert got[1]["instances"] is None and got[2]["instances"] is None


def test_lookup_lists_other_zone_instances(node):
    svc = uniq()
    register(node, inst(svc, "near"), inst(svc, "far", zone="zone-9"))
    assert ids(lookup(node, svc)["services"][0]) == ["far", "near"]


# -------------------------------------------------------------- service ---

def test_service_post(node):
    svc = uniq()
    register(node, inst(svc, "i1"), inst(svc, "i2"))
    body = node.api(DISC + "service.json", service_request(svc))
    assert_status(body, SUCCESS)
    assert body["service"]["serviceId"] == svc
    assert ids(body["service"]) == ["i1", "i2"]


def test_service_post_unknown_has_null_instances(node):
    svc = uniq()
    service = get_service(node, svc)
    assert service["serviceId"] == svc and service["instances"] is None


@pytest.mark.parametrize("blank", ["", "  ", None])
def test_service_post_blank_service_id_is_bad_request(node, blank):
    body = node.api(DISC + "service.json", service_request(blank))
    assert_status(body, BAD_REQUEST)


def test_service_post_missing_config_is_bad_request(node):
    body = node.api(DISC + "service.json", {"regionId": REGION, "zoneId": ZONE})
    assert_status(body, BAD_REQUEST)


def test_service_post_region_mismatch_is_no_permission(node):
    body = node.api(DISC + "service.json", service_request(uniq(), region="eu-west"))
    assert_status(body, NO_PERMISSION)


def test_service_post_without_any_region_is_no_permission(node):
    body = node.api(DISC + "service.json",
                    {"discoveryConfig": {"serviceId": uniq()}})
    assert_status(body, NO_PERMISSION)


def test_service_post_region_only_in_discovery_config(node):
    """The §A README request carries the region only inside discovery_config."""
    svc = uniq()
    register(node, inst(svc, "i1"))
    body = node.api(DISC + "service.json",
                    {"discoveryConfig": {"serviceId": svc, "regionId": REGION}})
    assert_status(body, SUCCESS)
    assert ids(body["service"]) == ["i1"]


def test_service_post_wrong_top_level_region_wins(node):
    """A present but wrong top-level regionId fails even when the nested one
    is right (Java reads the top-level one)."""
    svc = uniq()
    register(node, inst(svc, "i1"))
    body = node.api(DISC + "service.json", {
        "regionId": "eu-west", "discoveryConfig": {"serviceId": svc, "regionId": REGION}})
    assert_status(body, NO_PERMISSION)


def test_service_get(node):
    svc = uniq()
    register(node, inst(svc, "i1"))
    st, _, body = node.get(DISC + "service.json?serviceId=%s&regionId=%s&zoneId=%s"
                           % (svc, REGION, ZONE))
    assert st == 200, body
    assert_status(body, SUCCESS)
    assert body["service"]["serviceId"] == svc and ids(body["service"]) == ["i1"]


def test_service_get_without_service_id_is_http_400(node):
    path = DISC + "service.json"
    st, _, body = node.get(path + "?regionId=%s&zoneId=%s" % (REGION, ZONE))
    assert_spring_error(st, body, 400, path)


def test_service_get_without_region_is_no_permission(node):
    st, _, body = node.get(DISC + "service.json?serviceId=" + uniq())
    assert st == 200, body
    assert_status(body, NO_PERMISSION)


# ------------------------------------------------------------- services ---

def services_map(body):
    return {s["serviceId"]: s for s in body["services"]}


def test_services_post_and_get(fresh_node):
    n = fresh_node
    a, b = uniq("a"), uniq("b")
    register(n, inst(a, "a1"), inst(b, "b1"), inst(b, "b2"))

    def both_listed():
        body = n.api(DISC + "services.json", {"regionId": REGION, "zoneId": ZONE})
        m = services_map(body)
        return body if a in m and b in m else None

    body = wait_for(both_listed, 5.0, what="services.json to list both services")
    assert_status(body, SUCCESS)
    assert isinstance(body["version"], int) and body["version"] >= 0
    m = services_map(body)
    assert ids(m[a]) == ["a1"] and ids(m[b]) == ["b1", "b2"]
    st, _, got = n.get(DISC + "services.json")
    assert st == 200
    assert_status(got, SUCCESS)
    assert {a, b} <= set(services_map(got))
    st, _, got = n.get(DISC + "services.json?regionId=%s&zoneId=%s" % (REGION, ZONE))
    assert st == 200 and {a, b} <= set(services_map(got))


def test_services_ignores_region_and_omits_empty_services(fresh_node):
    n = fresh_node
    keep, gone = uniq("keep"), uniq("gone")
    register(n, inst(keep, "k1"), inst(gone, "g1"))
    unregister(n, inst(gone, "g1"))

    def settled():
        body = n.api(DISC + "services.json", {"regionId": "elsewhere", "zoneId": "nowhere"})
        m = services_map(body)
        return body if keep in m and gone not in m else None

    body = wait_for(settled, 5.0, what="services.json without the emptied service")
    assert_status(body, SUCCESS)
    for s in body["services"]:
        assert s["instances"], "service with no instances listed: %r" % s


# ------------------------------------------------------- services-delta ---

NO_DELTA = {"status": "fail", "errorCode": "data-not-found", "message": "Delta is not found."}


def test_services_delta_version_zero_not_found(node):
    body = node.api(DISC + "services-delta.json",
                    {"regionId": REGION, "zoneId": ZONE, "version": 0})
    assert_status(body, NO_DELTA)
    assert body["version"] == 0


def test_services_delta_current_version_not_found(node):
    current = node.api(DISC + "services.json", {"regionId": REGION, "zoneId": ZONE})["version"]
    body = node.api(DISC + "services-delta.json",
                    {"regionId": REGION, "zoneId": ZONE, "version": current})
    assert_status(body, NO_DELTA)
    assert body["version"] == 0


def test_services_delta_unknown_version_not_found(node):
    body = node.api(DISC + "services-delta.json",
                    {"regionId": REGION, "zoneId": ZONE, "version": 123456789})
    assert_status(body, NO_DELTA)
    assert body["version"] == 0


# ----------------------------------------------------------- zone rules ---

def test_other_zone_discovery_allowed_by_default(node):
    svc = uniq()
    register(node, inst(svc, "i1"))
    assert_status(lookup(node, svc, zone="zone-far"), SUCCESS)
    assert_status(node.api(DISC + "service.json", service_request(svc, zone="zone-far")),
                  SUCCESS)


def test_other_zone_discovery_refused_when_disallowed(node_factory):
    n = node_factory(node={"allow_discovery_from_other_zone": "off"})
    svc = uniq()
    register(n, inst(svc, "i1"))
    assert_status(lookup(n, svc, zone="zone-2"), NO_PERMISSION)
    assert_status(lookup(n, svc, zone=""), NO_PERMISSION)
    assert_status(n.api(DISC + "service.json", service_request(svc, zone="zone-2")),
                  NO_PERMISSION)
    body = lookup(n, svc, zone=ZONE)
    assert_status(body, SUCCESS)
    assert ids(body["services"][0]) == ["i1"]
    assert instance_ids(n, svc) == ["i1"]


# -------------------------------------------------------------- aliases ---

def test_alias_service_lookup_services_snake_case(node):
    svc = uniq()
    register(node, inst(svc, "i1"))
    body = node.api("/api/discovery/service.json",
                    {"discovery_config": {"service_id": svc, "region_id": REGION}})
    assert_status(body, SUCCESS)
    assert ids(body["service"]) == ["i1"]
    body = node.api("/api/discovery/lookup.json", {
        "region_id": REGION, "zone_id": ZONE,
        "discovery_configs": [{"service_id": svc}]})
    assert_status(body, SUCCESS)
    assert ids(body["services"][0]) == ["i1"]
    body = wait_for(lambda: (lambda b: b if svc in services_map(b) else None)(
        node.api("/api/discovery/services.json", {"region_id": REGION})), 5.0,
        what="alias services.json to list the service")
    assert_status(body, SUCCESS)

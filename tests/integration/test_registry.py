"""
test_registry.py - API.md §2.1 (register / heartbeat / unregister), the §0
request encodings Java clients use (gzip, chunked), the §A aliases with
snake_case keys, and lease expiry with and without self-preservation (§4.1,
§4.2).
"""

import json
import time

import pytest

from artemis_it import (NOT_EXISTING, PARTIAL_FAIL, REGION, SUCCESS, ZONE, assert_ok,
                        assert_status, failed_by_id, find_metrics, get_service, heartbeat,
                        inst, instance_ids, instances_of, register, scrape, to_string, uniq,
                        unregister, wait_for)

REG = "/artemis/api/registry/"
ALL_INSTANCE_FIELDS = {"regionId", "zoneId", "groupId", "serviceId", "instanceId",
                       "machineName", "ip", "port", "protocol", "url", "healthCheckUrl",
                       "status", "metadata"}


def wait_ids(node, svc, expected, timeout=5.0):
    """Poll discovery until the service lists exactly `expected` ids."""
    expected = sorted(expected)
    wait_for(lambda: instance_ids(node, svc) == expected, timeout,
             what="%s to list %s (now %s)" % (svc, expected, instance_ids(node, svc)))


# ------------------------------------------------------------ register ---

def test_register_success_envelope(node):
    svc = uniq()
    body = register(node, inst(svc, "i1"))
    assert body == {"failedInstances": None, "responseStatus": SUCCESS}
    assert instance_ids(node, svc) == ["i1"]


def test_register_batch_of_many(node):
    svc = uniq()
    body = register(node, *[inst(svc, "i%d" % n) for n in range(50)])
    assert_ok(body)
    assert len(instances_of(node, svc)) == 50


@pytest.mark.parametrize("op", ["register", "heartbeat", "unregister"])
@pytest.mark.parametrize("payload", [{"instances": []}, {}, {"instances": None}])
def test_empty_instances_is_bad_request(node, op, payload):
    body = node.api(REG + op + ".json", payload)
    assert_status(body, {"status": "fail", "errorCode": "bad-request",
                         "message": "request.instances is null or empty."})
    assert body.get("failedInstances") is None


def test_null_items_are_skipped(node):
    svc = uniq()
    body = node.api(REG + "register.json", {"instances": [None, inst(svc, "i1")]})
    assert_ok(body)
    assert instance_ids(node, svc) == ["i1"]


@pytest.mark.parametrize("op", ["register", "heartbeat", "unregister"])
def test_region_mismatch_is_no_permission_per_instance(node, op):
    svc = uniq()
    good = inst(svc, "good")
    register(node, good)
    bad = inst(svc, "bad", region="eu-west")
    blank = inst(svc, "blank", region="")
    body = node.api(REG + op + ".json", {"instances": [good, bad, blank]})
    assert_status(body, PARTIAL_FAIL)
    fails = failed_by_id(body)
    assert sorted(fails) == ["bad", "blank"], body
    for iid, sent in (("bad", bad), ("blank", blank)):
        assert fails[iid]["errorCode"] == "no-permission", fails[iid]
        assert fails[iid]["instance"]["serviceId"] == svc
        assert fails[iid]["errorMessage"].startswith(to_string(sent) + ": "), fails[iid]


def test_region_match_is_case_insensitive(node):
    svc = uniq()
    body = register(node, inst(svc, "i1", region=REGION.upper()))
    assert_ok(body)
    assert instance_ids(node, svc) == ["i1"]


def test_partial_fail_even_when_all_fail(node):
    svc = uniq()
    body = register(node, inst(svc, "a", region="nowhere"), inst(svc, "b", region="nowhere"))
    assert_status(body, PARTIAL_FAIL)
    assert sorted(failed_by_id(body)) == ["a", "b"]
    assert body["responseStatus"]["message"] == ""


@pytest.mark.parametrize("field", ["serviceId", "instanceId", "url"])
@pytest.mark.parametrize("blank", ["", "   ", None])
def test_blank_required_field_is_internal_service_error(node, field, blank):
    svc = uniq()
    good = inst(svc, "good")
    bad = inst(svc, "bad")
    bad[field] = blank
    if field == "url":
        # with ip and port present a missing url is derived (§A); without
        # them it stays blank
        del bad["ip"], bad["port"]
    body = register(node, good, bad)
    assert_status(body, PARTIAL_FAIL)
    fails = body["failedInstances"]
    assert isinstance(fails, list) and len(fails) == 1, body
    assert fails[0]["errorCode"] == "internal-service-error", fails[0]
    assert "Exception" in fails[0]["errorMessage"], fails[0]
    # the good one of the batch is registered regardless
    assert instance_ids(node, svc) == ["good"]


def test_register_replaces_instance_data(node):
    svc = uniq()
    register(node, inst(svc, "i1", port=1111, metadata={"v": "1"}, status="starting"))
    register(node, inst(svc, "i1", port=2222, metadata={"v": "2"}, status="up"))
    got = instances_of(node, svc)
    assert len(got) == 1, got
    assert got[0]["port"] == 2222 and got[0]["metadata"] == {"v": "2"}, got
    assert got[0]["status"] == "up"


def test_register_stores_instance_as_sent(node):
    svc = uniq("Stored")
    sent = inst(svc, "i1", groupId="blue", machineName="host-1", ip="192.0.2.7", port=9000,
                protocol="https", url="https://192.0.2.7:9000/x",
                healthCheckUrl="https://192.0.2.7:9000/health", status="Weird-Status",
                metadata={"k": "v", "java_registry": ""})
    register(node, sent)
    (got,) = instances_of(node, svc)
    for k, v in sent.items():
        assert got[k] == v, "field %s: sent %r, discovery gives %r" % (k, v, got[k])


def test_instance_output_has_every_field_with_nulls(node):
    """Responses include null fields (§0); port is 0 when absent (§1.1)."""
    svc = uniq()
    register(node, {"regionId": REGION, "zoneId": ZONE, "serviceId": svc,
                    "instanceId": "i1", "url": "http://h/"})
    (got,) = instances_of(node, svc)
    assert ALL_INSTANCE_FIELDS <= set(got), "missing %s" % (ALL_INSTANCE_FIELDS - set(got))
    assert got["port"] == 0
    for k in ("groupId", "machineName", "ip", "protocol", "healthCheckUrl", "status",
              "metadata"):
        assert got[k] is None, (k, got)


def test_unknown_properties_ignored_and_keys_case_insensitive(node):
    svc = uniq()
    body = register(node, {"REGIONID": REGION, "zoneid": ZONE, "ServiceId": svc,
                           "INSTANCEID": "i1", "Url": "http://h/", "port": None,
                           "noSuchField": {"deep": [1, 2]}})
    assert_ok(body)
    (got,) = instances_of(node, svc)
    assert got["serviceId"] == svc and got["instanceId"] == "i1" and got["url"] == "http://h/"
    assert got["port"] == 0
    assert "noSuchField" not in got and "REGIONID" not in got


# ----------------------------------------------------------- heartbeat ---

def test_heartbeat_known_instance_succeeds(node):
    svc = uniq()
    i = inst(svc, "i1")
    register(node, i)
    assert heartbeat(node, i) == {"failedInstances": None, "responseStatus": SUCCESS}


def test_heartbeat_unknown_is_data_not_found_with_exact_message(node):
    svc = uniq("HbSvc")
    plain = inst(svc, "Inst-X")
    grouped = inst(svc, "inst-y", groupId="GroupA")
    body = heartbeat(node, plain, grouped)
    assert_status(body, PARTIAL_FAIL)
    fails = failed_by_id(body)
    assert sorted(fails) == ["Inst-X", "inst-y"]
    for iid, sent in (("Inst-X", plain), ("inst-y", grouped)):
        f = fails[iid]
        assert f["errorCode"] == "data-not-found", f
        assert f["errorMessage"] == "%s: %s" % (to_string(sent), NOT_EXISTING), f
        assert f["instance"]["serviceId"] == svc
    assert fails["Inst-X"]["errorMessage"] == (
        "us-east/zone-1/%s/inst-x: %s" % (svc.lower(), NOT_EXISTING))


def test_heartbeat_mixed_known_and_unknown(node):
    svc = uniq()
    known = inst(svc, "known")
    register(node, known)
    body = heartbeat(node, known, inst(svc, "unknown"))
    assert_status(body, PARTIAL_FAIL)
    assert list(failed_by_id(body)) == ["unknown"]


def test_heartbeat_does_not_update_instance_data(node):
    svc = uniq()
    register(node, inst(svc, "i1", port=1111, status="up"))
    assert_ok(heartbeat(node, inst(svc, "i1", port=2222, status="down")))
    (got,) = instances_of(node, svc)
    assert got["port"] == 1111 and got["status"] == "up", got


def test_heartbeat_after_unregister_is_data_not_found(node):
    svc = uniq()
    i = inst(svc, "i1")
    register(node, i)
    assert_ok(unregister(node, i))
    body = heartbeat(node, i)
    assert_status(body, PARTIAL_FAIL)
    assert failed_by_id(body)["i1"]["errorCode"] == "data-not-found"


def test_reregister_after_unregister_revives(node):
    svc = uniq()
    i = inst(svc, "i1")
    register(node, i)
    unregister(node, i)
    assert_ok(register(node, i))
    assert_ok(heartbeat(node, i))
    wait_ids(node, svc, ["i1"])


def test_key_is_case_insensitive_for_heartbeat_and_unregister(node):
    svc = uniq("CaseSvc")
    register(node, inst(svc, "Inst-A"))
    other_case = inst(svc.upper(), "iNST-a", region=REGION.upper())
    assert_ok(heartbeat(node, other_case))
    assert_ok(unregister(node, inst(svc.lower(), "INST-A", region="Us-East")))
    wait_ids(node, svc, [])


def test_reregister_with_other_case_replaces(node):
    """Same key (case-insensitive): the lease is replaced, never duplicated,
    and the data is stored as last sent."""
    svc = uniq("CaseRe")
    register(node, inst(svc, "Inst-A", port=1))
    assert_ok(register(node, inst(svc, "INST-a", port=2)))
    got = instances_of(node, svc)
    assert len(got) == 1, got
    assert got[0]["instanceId"] == "INST-a" and got[0]["port"] == 2, got


def test_service_id_case_is_preserved(node):
    svc = uniq("MixedCase")
    register(node, inst(svc, "i1"))
    service = get_service(node, svc)
    assert service["serviceId"] == svc
    assert service["instances"][0]["serviceId"] == svc


# ---------------------------------------------------------- unregister ---

def test_unregister_unknown_is_quiet_success(node):
    body = unregister(node, inst(uniq(), "never-registered"))
    assert body == {"failedInstances": None, "responseStatus": SUCCESS}


def test_unregister_removes_from_discovery(node):
    svc = uniq()
    a, b = inst(svc, "a"), inst(svc, "b")
    register(node, a, b)
    assert_ok(unregister(node, a))
    wait_ids(node, svc, ["b"], timeout=3.0)


def test_unregister_last_instance_gives_null_instances(node):
    svc = uniq()
    i = inst(svc, "a")
    register(node, i)
    unregister(node, i)
    wait_for(lambda: get_service(node, svc)["instances"] is None, 3.0,
             what="instances:null after the last unregister")


# ----------------------------------------------------------- encodings ---

@pytest.mark.parametrize("gz,chunked", [(True, False), (False, True), (True, True)])
def test_gzip_and_chunked_request_bodies(node, gz, chunked):
    svc = uniq()
    many = [inst(svc, "i%03d" % n, metadata={"pad": "x" * 200}) for n in range(40)]
    body = register(node, *many, gzip=gz, chunked=chunked)
    assert_ok(body)
    assert len(instance_ids(node, svc)) == 40
    assert_ok(heartbeat(node, *many, gzip=gz, chunked=chunked))
    assert_ok(unregister(node, *many, gzip=gz, chunked=chunked))
    wait_ids(node, svc, [])


def test_java_client_headers(node):
    """What Apache HttpClient + GzipCompressingEntity sends (§0)."""
    svc = uniq()
    body = node.api(REG + "register.json", {"instances": [inst(svc, "i1")]}, gzip=True,
                    chunked=True, headers={
                        "Content-Type": "application/json; charset=UTF-8",
                        "Accept-Encoding": "gzip,deflate",
                        "User-Agent": "Apache-HttpClient/4.5.13 (Java/1.8.0)"})
    assert_ok(body)
    assert instance_ids(node, svc) == ["i1"]


def test_java_client_registration_flow(node):
    """§6.2 / §8 trap 1: unregister first, heartbeat until data-not-found,
    then register, then heartbeats succeed; all gzip + chunked."""
    svc = uniq()
    i = inst(svc, "client-1")
    java = {"gzip": True, "chunked": True}
    assert_ok(unregister(node, i, **java))
    body = heartbeat(node, i, **java)
    assert failed_by_id(body)["client-1"]["errorCode"] == "data-not-found"
    assert_ok(register(node, *[f["instance"] for f in body["failedInstances"]], **java))
    assert_ok(heartbeat(node, i, **java))
    assert instance_ids(node, svc) == ["client-1"]


# ------------------------------------------------------------- aliases ---

def snake(service, instance_id, **extra):
    d = {"region_id": REGION, "zone_id": ZONE, "service_id": service,
         "instance_id": instance_id, "ip": "192.168.1.100", "port": 8080, "status": "up"}
    d.update(extra)
    return d


def test_alias_register_snake_case_derives_url(node):
    svc = uniq()
    body = node.api("/api/registry/register.json", {"instances": [snake(svc, "inst-1")]})
    # The /api paths also name the message errorMessage (MANAGEMENT.md §3.3).
    assert body == {"failedInstances": None, "responseStatus": dict(SUCCESS, errorMessage="")}
    (got,) = instances_of(node, svc)
    assert got["url"] == "http://192.168.1.100:8080", got
    assert got["serviceId"] == svc and got["regionId"] == REGION and got["zoneId"] == ZONE
    assert not any("_" in k for k in got), "output keys must be camelCase: %r" % got


def test_alias_heartbeat_and_unregister(node):
    svc = uniq()
    node.api("/api/registry/register.json", {"instances": [snake(svc, "inst-1")]})
    assert_ok(node.api("/api/registry/heartbeat.json", {"instances": [snake(svc, "inst-1")]}))
    body = node.api("/api/registry/heartbeat.json", {"instances": [snake(svc, "nope")]})
    assert failed_by_id(body)["nope"]["errorCode"] == "data-not-found"
    assert_ok(node.api("/api/registry/unregister.json", {"instances": [snake(svc, "inst-1")]}))
    wait_ids(node, svc, [])


def test_explicit_url_wins_over_ip_port(node):
    svc = uniq()
    node.api("/api/registry/register.json",
             {"instances": [snake(svc, "i1", url="http://explicit/")]})
    assert instances_of(node, svc)[0]["url"] == "http://explicit/"


def test_missing_url_without_ip_port_is_rejected(node):
    svc = uniq()
    i = snake(svc, "i1")
    del i["ip"]
    del i["port"]
    body = node.api("/api/registry/register.json", {"instances": [i]})
    assert_status(body, PARTIAL_FAIL)
    assert failed_by_id(body)["i1"]["errorCode"] == "internal-service-error"


# ---------------------------------------------------------- zone rules ---

def test_other_zone_allowed_by_default(node):
    svc = uniq()
    assert_ok(register(node, inst(svc, "i1", zone="zone-elsewhere")))
    assert_ok(register(node, inst(svc, "i2", zone="")))
    assert instance_ids(node, svc) == ["i1", "i2"]


def test_other_zone_refused_when_disallowed(node_factory):
    n = node_factory(node={"allow_registry_from_other_zone": "off"})
    svc = uniq()
    here = inst(svc, "here")
    other = inst(svc, "other", zone="zone-2")
    blank = inst(svc, "blank", zone="")
    body = register(n, here, other, blank)
    assert_status(body, PARTIAL_FAIL)
    fails = failed_by_id(body)
    assert sorted(fails) == ["blank", "other"]
    assert {f["errorCode"] for f in fails.values()} == {"no-permission"}
    assert instance_ids(n, svc) == ["here"]
    assert_ok(heartbeat(n, here))
    assert failed_by_id(heartbeat(n, other))["other"]["errorCode"] == "no-permission"


# ------------------------------------------------------- lease expiry ---

@pytest.mark.slow
def test_lease_expires_without_heartbeat(node_factory):
    ttl = 10.0
    n = node_factory(registry={"lease_ttl_ms": "10000", "self_preservation": "off"})
    svc = uniq()
    dying, living = inst(svc, "dying"), inst(svc, "living")
    t0 = time.monotonic()
    register(n, dying, living)

    def dying_gone():
        assert_ok(heartbeat(n, living))
        return instance_ids(n, svc) == ["living"]

    wait_for(dying_gone, timeout=ttl + 5.0, interval=0.5, what="the unrenewed lease to expire")
    elapsed = time.monotonic() - t0
    assert elapsed >= ttl - 0.5, "expired after %.1fs, lease_ttl_ms is 10000" % elapsed
    body = heartbeat(n, dying)
    assert failed_by_id(body)["dying"]["errorCode"] == "data-not-found"
    # renewed one is still there and still renewable
    assert_ok(heartbeat(n, living))
    assert instance_ids(n, svc) == ["living"]
    samples, _ = scrape(n)
    evictions = find_metrics(samples, "evict") or find_metrics(samples, "expire")
    assert evictions and max(v for _, _, v in evictions) >= 1, \
        "an expired lease was removed but no eviction metric counts it: %r" % evictions


@pytest.mark.slow
def test_self_preservation_keeps_expired_leases(node_factory):
    """§4.2: after renewals drop below 85% of the max (max >= 50), expired
    leases are kept and listed; unregisters still apply."""
    n = node_factory(registry={"lease_ttl_ms": "20000", "self_preservation": "on",
                               "preserve_window_ms": "10000"})
    svc = uniq()
    many = [inst(svc, "i%03d" % k) for k in range(100)]
    register(n, *many)
    t0 = time.monotonic()
    for _ in range(3):
        assert_ok(heartbeat(n, *many))

    def leases():
        return n.api("/artemis/api/status/leases.json", {"serviceIds": [svc]})

    wait_for(lambda: leases().get("isSafe") is False, timeout=20.0, interval=1.5,
             what="isSafe to become false after renewals stop")
    assert_ok(unregister(n, many[0]))
    # well past the TTL: expired, but kept and listed while unsafe
    wait_for(lambda: time.monotonic() - t0 > 23.0, timeout=30.0, interval=0.5,
             what="the lease TTL to pass")
    ids = instance_ids(n, svc)
    assert ids == sorted(i["instanceId"] for i in many[1:]), \
        "expected the 99 expired-but-preserved instances, got %d" % len(ids)
    body = heartbeat(n, many[1])
    assert failed_by_id(body)["i001"]["errorCode"] == "data-not-found"
    assert leases()["isSafe"] is False
    samples, _ = scrape(n)
    safe = [s for s in find_metrics(samples, "safe")
            if "enabled" not in s[0] and s[1].get("manager", "instance") == "instance"]
    assert safe and all(v == 0 for _, _, v in safe), \
        "self-preservation is active but the metric says %r" % safe


def test_large_heartbeat_batch_reports_exactly_the_unknown_ones_in_order(node):
    """A Java client heartbeats all its instances in one message; the
    renewals run as one batch and the failures come back in request order."""
    svc = uniq("bighb")
    known = [inst(svc, "k%04d" % i) for i in range(300)]
    for start in range(0, 300, 100):
        assert_ok(register(node, *known[start:start + 100]))
    unknown = [inst(svc, "u%d" % i) for i in range(5)]
    batch = list(known)
    for pos, u in zip((0, 77, 150, 151, 299), unknown):
        batch.insert(pos, u)
    batch.insert(10, inst(svc, "x", region="other-region"))
    body = heartbeat(node, *batch)
    assert_status(body, PARTIAL_FAIL)
    failed = body["failedInstances"]
    assert [f["instance"]["instanceId"] for f in failed] == \
        [b["instanceId"] for b in batch if b["instanceId"][0] in "ux"]
    codes = {f["instance"]["instanceId"]: f["errorCode"] for f in failed}
    assert codes.pop("x") == "no-permission"
    assert set(codes.values()) == {"data-not-found"}
    assert failed[0]["errorMessage"].endswith(NOT_EXISTING)


# ------------------------------------------- duplicates, short leases ---

def metric(node, name, **labels):
    samples, _ = scrape(node)
    return sum(v for n, lab, v in samples
               if n == name and all(lab.get(k) == want for k, want in labels.items()))


def test_copies_of_one_key_renew_it_once_and_count_once(fresh_node):
    """Issue 11 item 8: 64 copies of one key in a heartbeat request renew it
    once (over HTTP, by the fast and the general path, and over WebSocket),
    and self-preservation counts one renewed instance, not 64 renewals."""
    from ws_util import HB, RawWS
    n = fresh_node
    one = inst(uniq("dup"), "only")
    assert_ok(register(n, one))
    base = metric(n, "artemis_renewals_total")
    assert_ok(heartbeat(n, *([one] * 64)))
    assert metric(n, "artemis_renewals_total") == base + 1
    # An escaped character sends the request down the general path.
    body = json.dumps({"instances": [one] * 64}).replace('"only"', '"onl\\u0079"')
    assert body.count("\\u0079") == 64
    st, _, answer = n.request("POST", REG + "heartbeat.json", body.encode(),
                              {"Content-Type": "application/json"})
    assert st == 200 and answer["responseStatus"] == SUCCESS, answer
    assert metric(n, "artemis_renewals_total") == base + 2
    ws = RawWS(n, HB)
    try:
        ws.send_text(json.dumps({"instances": [one] * 64}))
        assert ws.recv_json()["responseStatus"] == SUCCESS
    finally:
        ws.close()
    assert metric(n, "artemis_renewals_total") == base + 3
    # The checker's window: the instance, counted at most once a second
    # (three requests, possibly in three seconds), not 192 renewals.
    window = "artemis_lease_renewals_window"
    wait_for(lambda: metric(n, window, manager="instance") >= 1, 5.0,
             what="the self-preservation window to count the instance")
    assert metric(n, window, manager="instance") <= 3
    assert metric(n, "artemis_lease_renewals_max", manager="instance") <= 3


def test_three_second_leases_with_one_second_heartbeats(node_factory):
    """Issue 11, also: lease_ttl_ms down to 1000 ms.  With 3 s leases and
    1 s heartbeats, renewed instances never expire between heartbeats, the
    one that stops is removed after its TTL, and one instance in twenty
    going away does not turn self-preservation on."""
    n = node_factory(registry={"lease_ttl_ms": "3000", "self_preservation": "on"})
    svc = uniq("fast")
    living = [inst(svc, "l%02d" % k) for k in range(19)]
    dying = inst(svc, "dying")
    assert_ok(register(n, dying, *living))
    t0 = time.monotonic()

    def dying_gone():
        assert_ok(heartbeat(n, *living))  # 1 s heartbeats
        return instance_ids(n, svc) == sorted(i["instanceId"] for i in living)

    wait_for(dying_gone, timeout=15.0, interval=1.0, what="the unrenewed 3 s lease to go")
    assert time.monotonic() - t0 >= 2.5, "removed before its 3 s TTL"
    for _ in range(3):  # a few more heartbeat periods: nothing else goes
        assert_ok(heartbeat(n, *living))
        time.sleep(1.0)
    assert len(instance_ids(n, svc)) == 19
    assert failed_by_id(heartbeat(n, dying))["dying"]["errorCode"] == "data-not-found"
    leases = n.api("/artemis/api/status/leases.json", {"serviceIds": [svc]})
    assert leases.get("isSafe") is True, leases


# ------------------------------------------------------ service table ---

def test_full_service_table_reclaims_emptied_services(node_factory):
    """Issue 11 item 11: once the service table is full, a new serviceId
    takes over the entry of a service whose instances are all gone, at once
    (not after that service's last change left the change log), and the
    emptied service reads as unknown."""
    node = node_factory(registry={"max_services": "16", "changelog_size": "65536",
                                  "lease_ttl_ms": "3000", "self_preservation": "off"})
    names = [uniq("tbl") for _ in range(16)]
    for name in names:
        assert_ok(register(node, inst(name, "a")))
    late = uniq("late")
    failed = failed_by_id(register(node, inst(late, "a")))["a"]
    assert failed["errorCode"] == "internal-service-error", failed
    assert failed["errorMessage"].endswith("the registry is full."), failed
    # Every filler expires (3 s leases, no heartbeats): the table is empty.
    wait_for(lambda: all(instance_ids(node, name) == [] for name in names), 15.0,
             what="every filler service to expire")
    fresh = [uniq("new") for _ in range(16)]
    for name in fresh:
        assert_ok(register(node, inst(name, "b")))
        assert instance_ids(node, name) == ["b"]
    for name in names:
        assert instance_ids(node, name) == []
    # The table is full of live services again: nothing to reclaim.
    assert_ok(heartbeat(node, *[inst(name, "b") for name in fresh]))
    failed = failed_by_id(register(node, inst(late, "a")))["a"]
    assert failed["errorMessage"].endswith("the registry is full."), failed

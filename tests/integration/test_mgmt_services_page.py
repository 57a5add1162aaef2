"""
test_mgmt_services_page.py - GET /api/management/services (MANAGEMENT.md,
"Paged services list"): one page of services sorted by serviceId, filtered
by a case-insensitive substring q, each with its instances counted by
status and its zones, and the totals; bounded, 400 on bad parameters, a
token needed.  services.json without parameters keeps its answer.
"""

import secrets
from urllib.parse import quote

import pytest

from artemis_it import ZONE, inst, register
from mgmt_util import M, java_instance

PATH = M + "services"


@pytest.fixture(scope="module")
def seeded(node):
    """A prefix and 12 services under it: Svc-<p>-00 .. 11, mixed case."""
    node.login()
    p = secrets.token_hex(3)
    ids = ["%s-%s-%02d" % ("Svc" if i % 2 else "svc", p, i) for i in range(12)]
    for i, sid in enumerate(ids):
        register(node, *[inst(sid, "i%d" % k, zone="z%d" % (k % 2)) for k in range(i % 3 + 1)])
    # svc-<p>-00 gets one of each: up, starting, pulled out (down).
    register(node, inst(ids[0], "starting", status="STARTING"), inst(ids[0], "pulled"))
    java_instance(node, ids[0], "pulled")
    return p, ids


def page(node, query):
    st, _, body = node.get(PATH + "?" + query)
    assert st == 200, (st, body)
    assert body["success"] is True
    return body["data"]


def test_pages_are_sorted_and_total_counted(node, seeded):
    p, ids = seeded
    want = sorted(ids, key=lambda s: (s.lower(), s))
    first = page(node, "q=%s&limit=5" % p)
    assert first["total"] == 12 and first["offset"] == 0 and first["limit"] == 5
    assert [s["serviceId"] for s in first["services"]] == want[:5]
    third = page(node, "q=%s&limit=5&offset=10" % p)
    assert [s["serviceId"] for s in third["services"]] == want[10:]
    past = page(node, "q=%s&offset=50" % p)
    assert past["services"] == [] and past["total"] == 12
    assert first["totalInstances"] == sum(i % 3 + 1 for i in range(12)) + 2
    assert first["allServices"] >= 12


def test_q_is_a_case_insensitive_substring(node, seeded):
    p, ids = seeded
    got = page(node, "q=" + quote(("SVC-%s-1" % p).upper()))
    assert [s["serviceId"] for s in got["services"]] == sorted(ids[10:], key=str.lower)
    assert got["total"] == 2 and got["q"] == ("SVC-%s-1" % p).upper()
    assert page(node, "q=no-such-%s" % p)["total"] == 0


def test_counts_by_status_and_zones(node, seeded):
    p, ids = seeded
    one = page(node, "q=%s-00" % p)["services"]
    assert one == [{"serviceId": ids[0], "instances": 3,
                    "statuses": {"up": 1, "starting": 1, "down": 1}, "zones": sorted(["z0", ZONE])}]
    two = page(node, "q=%s-02" % p)["services"][0]
    assert two["instances"] == 3 and two["statuses"] == {"up": 3}
    assert sorted(two["zones"]) == ["z0", "z1"]


def test_default_and_bounds(node, seeded):
    p, _ = seeded
    assert page(node, "q=" + p)["limit"] == 100
    assert page(node, "limit=1000")["limit"] == 1000
    for q, word in (("limit=0", "limit"), ("limit=1001", "limit"), ("limit=-1", "limit"),
                    ("limit=ten", "limit"), ("offset=x", "offset"), ("offset=1.5", "offset"),
                    ("q=" + "a" * 256, "q")):
        st, _, body = node.get(PATH + "?" + q)
        assert st == 400, (q, st, body)
        assert body["success"] is False and word in body["message"], (q, body)


def test_a_token_is_needed(node, seeded):
    st, _, body = node.get(PATH, headers={"Authorization": "Bearer not-a-token"})
    assert st == 401, (st, body)
    saved, node.token = node.token, None
    try:
        st, _, _ = node.get(PATH)
        assert st == 401
    finally:
        node.token = saved


def test_services_json_without_parameters_is_unchanged(node, seeded):
    p, ids = seeded
    body = node.api(M + "services.json", {})
    mine = [s for s in body["services"] if p in s["serviceId"]]
    assert len(mine) == 12 and all(isinstance(s["instances"], list) for s in mine)
    assert "total" not in body and "data" not in body


def test_statuses_past_eight_long_ones_and_other_count_as_other(node, seeded):
    p, _ = seeded
    sid = "many-%s" % p
    odd = {'we"ird\\key': 'q"uote,}{'}
    register(node, *[inst(sid, "s%d" % k, status="st%d" % k, metadata=odd) for k in range(10)],
             inst(sid, "long", status="x" * 40, zoneId='z"q\\<b>'),
             inst(sid, "named-other", status="Other"))
    got = page(node, "q=" + sid)["services"][0]
    assert got["instances"] == 12
    st = dict(got["statuses"])
    assert st.pop("other") == 4 and len(st) == 8  # which eight: the walk's order
    assert set(st) <= {"st%d" % k for k in range(10)} and set(st.values()) == {1}
    assert sorted(got["zones"]) == sorted([ZONE, 'z"q\\<b>'])

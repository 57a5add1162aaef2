"""
test_mgmt_view_shapes.py - the management views (POST
/api/management/service.json and services.json, API.md §5.1) answer every
instance as it registered, but for `status` ("down" when an operation hides
it, else the registered one, "up" when none) and the lease in `metadata`
(creationTime, renewalTime, ttl as strings, replacing any the client sent),
whatever the instance's shape: the copy of the stored text that serves the
common shape (worker/api_mgmt_views.c) and the jansson path that serves the
rest must agree with that, member for member.
"""

import pytest

from artemis_it import REGION, inst, register, uniq
from mgmt_util import M, java_instance

LEASE = ("creationTime", "renewalTime", "ttl")


@pytest.fixture(scope="module", autouse=True)
def _logged_in(node):
    node.login()


def expected(registered, down):
    want = dict(registered)
    if down:
        want["status"] = "down"
    elif not isinstance(want.get("status"), str) or not want["status"]:
        want["status"] = "up"
    md = registered.get("metadata")
    want["metadata"] = {k: v for k, v in (md if isinstance(md, dict) else {}).items() if k not in LEASE}
    return want


def test_every_shape_answers_the_same(node):
    svc = uniq()
    odd = {'we"ird\\key': 'q"uote,}{', "ü-\u2603": "}{,:[]", "k": ""}
    shapes = [
        inst(svc, "plain", metadata={"b": "1", "a": "2"}),
        inst(svc, "no-metadata"),
        inst(svc, "lease-sent", metadata={"creationTime": "x", "ttl": "y", "keep": "v"}),
        inst(svc, "no-status", status=None),
        inst(svc, "empty-status", status=""),
        inst(svc, "starting", status="starting"),
        inst(svc, "escapes", metadata=odd, healthCheckUrl='http://h/{a},"b"'),
        inst(svc, "pulled", status="starting", metadata={}),
        inst(svc, "pulled-escapes", metadata=odd),
    ]
    for s in shapes:
        if s.get("status") is None:
            s.pop("status", None)
    register(node, *shapes)
    for iid in ("pulled", "pulled-escapes"):
        java_instance(node, svc, iid)
    # What the instances registered as, down ones included (MANAGEMENT.md §3.3).
    disc = node.api("/api/discovery/services.json", {})
    registered = {i["instanceId"]: i for s in disc["services"] if s["serviceId"] == svc
                  for i in s["instances"]}
    assert len(registered) == len(shapes)
    one = node.api(M + "service.json", {"serviceId": svc, "regionId": REGION})["service"]["instances"]
    every = [s for s in node.api(M + "services.json", {})["services"] if s["serviceId"] == svc]
    assert len(every) == 1
    for answer in (one, every[0]["instances"]):
        assert len(answer) == len(shapes)
        for got in answer:
            iid = got["instanceId"]
            md = dict(got["metadata"])
            lease = {k: md.pop(k) for k in LEASE}
            assert int(lease["creationTime"]) > 0, (iid, lease)
            assert int(lease["renewalTime"]) >= int(lease["creationTime"]), (iid, lease)
            assert lease["ttl"] == "20000", (iid, lease)
            assert dict(got, metadata=md) == expected(registered[iid], iid.startswith("pulled")), iid

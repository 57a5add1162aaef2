"""
test_cluster.py - API.md §2.4: up-registry-nodes.json and
up-discovery-nodes.json (POST and GET) list this node; the zone filter
applies only when the node refuses other zones, and compares regionId and
zoneId case-sensitively.  Empty result: fail / data-not-found
"No available service nodes." with nodes:null.
"""

import pytest

from artemis_it import REGION, SUCCESS, ZONE, assert_status

CLUSTER = "/artemis/api/cluster/"
PATHS = ["up-registry-nodes.json", "up-discovery-nodes.json"]
NO_NODES = {"status": "fail", "errorCode": "data-not-found",
            "message": "No available service nodes."}


def nodes_post(node, path, region=REGION, zone=ZONE):
    return node.api(CLUSTER + path, {"regionId": region, "zoneId": zone})


def nodes_get(node, path, region=REGION, zone=ZONE):
    st, _, body = node.get(CLUSTER + path + "?regionId=%s&zoneId=%s" % (region, zone))
    assert st == 200, (st, body)
    return body


def assert_lists_self(body, node):
    assert_status(body, SUCCESS)
    nodes = body["nodes"]
    assert isinstance(nodes, list) and len(nodes) == 1, body
    (n,) = nodes
    assert n["zone"]["regionId"] == REGION and n["zone"]["zoneId"] == ZONE, n
    url = n["url"]
    assert url.startswith("http://") and url.rstrip("/").endswith(":%d" % node.port), n


@pytest.mark.parametrize("path", PATHS)
def test_lists_this_node(node, path):
    assert_lists_self(nodes_post(node, path), node)
    assert_lists_self(nodes_get(node, path), node)


@pytest.mark.parametrize("path", PATHS)
def test_other_zone_and_region_listed_when_allowed(node, path):
    assert_lists_self(nodes_post(node, path, zone="zone-other"), node)
    assert_lists_self(nodes_post(node, path, region="eu-west", zone="z"), node)


@pytest.fixture(scope="module")
def strict_node(module_node_factory):
    return module_node_factory(node={"allow_registry_from_other_zone": "off",
                                     "allow_discovery_from_other_zone": "off"})


@pytest.mark.parametrize("path", PATHS)
def test_strict_node_same_zone_listed(strict_node, path):
    assert_lists_self(nodes_post(strict_node, path), strict_node)
    assert_lists_self(nodes_get(strict_node, path), strict_node)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("region,zone", [(REGION, "zone-2"), (REGION, ZONE.upper()),
                                         (REGION.upper(), ZONE), ("eu-west", ZONE)])
def test_strict_node_zone_filter_is_exact(strict_node, path, region, zone):
    for body in (nodes_post(strict_node, path, region, zone),
                 nodes_get(strict_node, path, region, zone)):
        assert_status(body, NO_NODES)
        assert body["nodes"] is None, body


def test_filter_follows_each_capability(node_factory):
    """Only registry from other zones refused: discovery still lists it."""
    n = node_factory(node={"allow_registry_from_other_zone": "off",
                           "allow_discovery_from_other_zone": "on"})
    assert_status(nodes_post(n, "up-registry-nodes.json", zone="zone-2"), NO_NODES)
    assert_lists_self(nodes_post(n, "up-discovery-nodes.json", zone="zone-2"), n)

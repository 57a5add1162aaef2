"""
test_readme.py - the two curl commands of API.md §A, exactly as written
there (only localhost:8080 replaced by the test node's port), against a node
on the default region and zone (the config sets neither).
"""

import json
import shlex
import shutil
import subprocess

import pytest

REGISTER_CURL = (
    "curl -X POST http://localhost:8080/api/registry/register.json "
    "-H 'Content-Type: application/json' -d '{\"instances\":[{\"region_id\":\"us-east\","
    "\"zone_id\":\"zone-1\",\"service_id\":\"my-service\",\"instance_id\":\"inst-1\","
    "\"ip\":\"192.168.1.100\",\"port\":8080,\"status\":\"up\"}]}'")
SERVICE_CURL = (
    "curl -X POST http://localhost:8080/api/discovery/service.json "
    "-H 'Content-Type: application/json' -d '{\"discovery_config\":{\"service_id\":"
    "\"my-service\",\"region_id\":\"us-east\"}}'")


@pytest.fixture
def default_node(node_factory):
    return node_factory(omit=("node.region", "node.zone"))


def run_curl(cmd, port):
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed (scripts/deps.sh installs it)")
    argv = shlex.split(cmd.replace("localhost:8080", "localhost:%d" % port))
    argv[1:1] = ["-sS", "--max-time", "10"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, "curl failed (%d): %s" % (p.returncode, p.stderr)
    try:
        return json.loads(p.stdout)
    except ValueError:
        raise AssertionError("curl output is not JSON: %r" % p.stdout)


def test_readme_register_then_service(default_node):
    body = run_curl(REGISTER_CURL, default_node.port)
    # The /api paths also name the message errorMessage (MANAGEMENT.md §3.3).
    assert body == {"failedInstances": None, "responseStatus": {
        "status": "success", "errorCode": "success", "message": "", "errorMessage": ""}}, body
    body = run_curl(SERVICE_CURL, default_node.port)
    assert body["responseStatus"]["status"] == "success", body
    service = body["service"]
    assert service["serviceId"] == "my-service"
    (i,) = service["instances"]
    assert i["instanceId"] == "inst-1" and i["regionId"] == "us-east", i
    assert i["zoneId"] == "zone-1" and i["ip"] == "192.168.1.100" and i["port"] == 8080, i
    assert i["status"] == "up" and i["url"] == "http://192.168.1.100:8080", i

"""
conftest.py - pytest fixtures that run real Artemis nodes.

  node          module-scoped node on the test configuration (tests share it,
                so each test uses its own service names: artemis_it.uniq())
  fresh_node    function-scoped node: a clean registry for this test only
  node_factory  function-scoped factory: node_factory(registry={...}, ...)
                starts a node with extra config keys; all are stopped after
                the test

Each node: temp dir with config, data_dir and log; listen and cluster ports
picked by the kernel; shm name /artemis-test-<pid>-<random>; started with
`$ARTEMIS_BIN server -c <conf> --fresh`; ready when GET /health answers.
Teardown sends SIGTERM (kill -9 after 5 s), removes the shm region if left,
and fails the test if the server died or logged a crash.
"""

import os

import pytest

from artemis_it import artemis_bin, finish_nodes, start_node


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: waits for lease expiry (10+ s)")


@pytest.fixture(scope="session", autouse=True)
def _binary_present():
    path = artemis_bin()
    if not os.access(path, os.X_OK):
        pytest.exit("ARTEMIS_BIN=%s is not an executable; build it first "
                    "(make BUILD=... all)" % path, returncode=4)


class _Factory:
    def __init__(self, base_dir):
        self.base_dir = base_dir
        self.nodes = []

    def __call__(self, **kw):
        node = start_node(self.base_dir, **kw)
        self.nodes.append(node)
        return node

    def finish(self):
        finish_nodes(self.nodes)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    factory = _Factory(str(tmp_path_factory.mktemp("node")))
    yield factory()
    factory.finish()


@pytest.fixture
def fresh_node(tmp_path):
    factory = _Factory(str(tmp_path))
    yield factory()
    factory.finish()


@pytest.fixture
def node_factory(tmp_path):
    factory = _Factory(str(tmp_path))
    yield factory
    factory.finish()


@pytest.fixture(scope="module")
def module_node_factory(tmp_path_factory):
    factory = _Factory(str(tmp_path_factory.mktemp("nodes")))
    yield factory
    factory.finish()

"""Container tests: they need a Docker engine and the images from ``make images``.

Every test here is marked ``containers`` and ``containers_tier`` (CI runs them in the
containers tier, ``make test-containers``). Without an engine they fail with the fix
in the message; they are never skipped.

The containers tier (``pytest --kafka-backend=containers -m containers_tier tests/containers
tests/integration``) also runs the integration tests that matter most on containers: those
carrying ``@pytest.mark.containers_tier`` in their own file, and those listed in
``INTEGRATION_TESTS`` below (node ids; the list is the one place to adjust the selection).
They must get their clusters from the fixtures (``kafka_cluster``, ``cluster_factory``,
``fresh_kafka_cluster``, or ``kafkaops.testing.plugin.new_cluster``), not from LocalCluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kafkaops.testing.containers import ContainerCluster

HERE = Path(__file__).parent

INTEGRATION_TESTS = (
    # round trips: raw RF-3 topic, typed Avro producer -> consumer, consumer restart
    "tests/integration/test_local_cluster.py::test_rf3_topic_round_trip",
    "tests/integration/test_serde_registry.py::test_every_schema_round_trips_through_kafka",
    "tests/integration/test_clients_consumer.py::test_at_least_once_across_a_restart",
    # failover with no loss: kill/stop/start brokers under acks=all
    "tests/integration/test_local_cluster.py::test_broker_failures_lose_nothing",
    # checkpoint restore: a consumer resumes from its ZooKeeper checkpoint
    "tests/integration/test_checkpoint_consumer.py::test_resumes_from_checkpoint_and_fences_the_older_instance",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.containers)
            item.add_marker(pytest.mark.containers_tier)
        elif any(item.nodeid == t or item.nodeid.startswith(t + "[") for t in INTEGRATION_TESTS):
            item.add_marker(pytest.mark.containers_tier)
    # the containers tier must not shrink silently when a listed test is renamed
    if "containers_tier" in (config.getoption("-m") or "") and any(
        i.nodeid.startswith("tests/integration/") for i in items
    ):
        ids = {i.nodeid.split("[")[0] for i in items}
        missing = [t for t in INTEGRATION_TESTS if t not in ids]
        if missing:
            raise pytest.UsageError(f"tests/containers/conftest.py lists tests that do not exist: {missing}")


@pytest.fixture(scope="session")
def container_cluster(request: pytest.FixtureRequest, pytestconfig: pytest.Config) -> Iterator[ContainerCluster]:
    """The session's container cluster: ``kafka_cluster`` when the backend is containers
    (one cluster for the whole containers tier), else a 3-broker ContainerCluster of its own."""
    from kafkaops.testing.plugin import backend

    if backend(pytestconfig) == "containers":
        shared: Any = request.getfixturevalue("kafka_cluster")
        assert isinstance(shared, ContainerCluster)
        yield shared
        return
    cluster = ContainerCluster(brokers=3).start()
    try:
        yield cluster
    finally:
        cluster.destroy()

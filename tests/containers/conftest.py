"""Container tests: they need a Docker engine and the images from ``make images``.

Every test here is marked ``containers`` and ``containers_tier`` (CI runs them in the
containers tier, ``make test-containers``). Without an engine they fail with the fix
in the message; they are never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kafkaops.testing.containers import ContainerCluster

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.containers)
            item.add_marker(pytest.mark.containers_tier)


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

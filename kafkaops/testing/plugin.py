"""pytest plugin (entry point ``pytest11``): real Kafka + ZooKeeper cluster fixtures.

Fixtures:
- ``kafka_cluster``: one 3-broker cluster for the whole session (do not break it).
- ``kafka_topic``: a factory making fresh, uniquely named topics on that cluster.
- ``fresh_kafka_cluster``: a 3-broker cluster of the test's own, for destructive tests.
- ``cluster_factory``: start clusters of any shape (4 brokers, 3 ZooKeeper nodes,
  ``mode="kraft"`` with ``controllers=3``, ``secure=True``...).
- ``secure_kafka_cluster``: one secured 3-broker cluster for the session (SASL_SSL/SCRAM,
  ACLs, ZooKeeper SASL); its ``profile`` is the admin's.
- ``kraft_kafka_cluster``: one KRaft cluster (Kafka 4.x, 3 brokers) for the session whatever
  the Kafka mode, for what exists on KRaft only (share groups).

Nothing starts unless a test asks for a fixture.

Kafka mode: ZooKeeper (default) or KRaft (``--kafka-mode=kraft`` or
``KAFKAOPS_KAFKA_MODE=kraft``) for every cluster a fixture starts unless the test asks
for a mode; tests that apply to one mode only carry ``@pytest.mark.zookeeper_mode`` or
``@pytest.mark.kraft_mode`` and are deselected in the other mode (see
``pytest_collection_modifyitems``). ``make test`` runs the integration tier in both
(``make test-local``, then ``make test-kraft``).

Backend: local JVM processes (default) or containers (``--kafka-backend=containers`` or
``KAFKAOPS_BACKEND=containers``; see :mod:`kafkaops.testing.containers`), where the
cluster fixtures return a ContainerCluster with the same interface (plus
``disconnect_broker`` / ``reconnect_broker``). Tests that should also run on containers
in CI carry the ``containers_tier`` marker.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, Union

import pytest

from kafkaops.admin import create_topic
from kafkaops.local.cluster import LocalCluster

if TYPE_CHECKING:
    from kafkaops.testing.containers import ContainerCluster

BACKEND_ENV = "KAFKAOPS_BACKEND"
MODE_ENV = "KAFKAOPS_KAFKA_MODE"
Cluster = Union[LocalCluster, "ContainerCluster"]
"""What the cluster fixtures yield: same interface on either backend."""


class TopicFactory(Protocol):
    def __call__(
        self,
        partitions: int = 3,
        replication_factor: int = 3,
        config: dict[str, str] | None = None,
        prefix: str = "t",
    ) -> str: ...


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kafkaops")
    group.addoption(
        "--kafka-backend",
        default=None,
        choices=("local", "containers"),
        help="where cluster fixtures run: local JVM processes (default) or containers "
        "(env KAFKAOPS_BACKEND)",
    )
    group.addoption(
        "--kafka-mode",
        default=None,
        choices=("zookeeper", "kraft"),
        help="Kafka mode of the clusters fixtures start: zookeeper (Kafka 3.9, default) or kraft "
        "(Kafka 4.x) (env KAFKAOPS_KAFKA_MODE)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "containers_tier: also run in CI's containers tier (make test-containers: --kafka-backend=containers)",
    )
    config.addinivalue_line("markers", "zookeeper_mode: applies to ZooKeeper-mode Kafka only")
    config.addinivalue_line("markers", "kraft_mode: applies to KRaft-mode Kafka only")
    config.addinivalue_line("markers", "security: runs on the secured cluster (make test's security tier)")
    chosen = backend(config)
    if chosen not in ("local", "containers"):
        raise pytest.UsageError(f"{BACKEND_ENV}={chosen!r}: use 'local' or 'containers'")
    if kafka_mode(config) not in ("zookeeper", "kraft"):
        raise pytest.UsageError(f"{MODE_ENV}={kafka_mode(config)!r}: use 'zookeeper' or 'kraft'")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests marked for the other Kafka mode (reported as deselected, not skipped).
    The KRaft pass deselects the ``security`` tests too: a secured cluster runs in ZooKeeper mode,
    and the ZooKeeper-mode pass has run them."""
    other = ("zookeeper_mode", "security") if kafka_mode(config) == "kraft" else ("kraft_mode",)

    def elsewhere(item: pytest.Item) -> bool:
        return any(item.get_closest_marker(m) is not None for m in other)

    dropped = [i for i in items if elsewhere(i)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if not elsewhere(i)]


def kafka_mode(config: pytest.Config) -> str:
    """``--kafka-mode`` if given, else ``$KAFKAOPS_KAFKA_MODE``, else zookeeper."""
    return str(config.getoption("--kafka-mode") or os.environ.get(MODE_ENV) or "zookeeper")


def backend(config: pytest.Config) -> str:
    """``--kafka-backend`` if given, else ``$KAFKAOPS_BACKEND``, else local."""
    return str(config.getoption("--kafka-backend") or os.environ.get(BACKEND_ENV) or "local")


def new_cluster(config: pytest.Config, base_dir: Any, **kwargs: Any) -> Cluster:
    """A not yet started cluster on the selected backend (for fixtures of other scopes:
    ``new_cluster(request.config, tmp_path_factory.mktemp("x"), brokers=4).start()``)."""
    kwargs.setdefault("mode", kafka_mode(config))
    if backend(config) == "containers":
        from kafkaops.testing.containers import ContainerCluster

        if kwargs.pop("mode") != "zookeeper" or kwargs.pop("secure", False):
            raise pytest.UsageError("the containers backend runs plaintext ZooKeeper-mode clusters only")
        return ContainerCluster(base_dir, **kwargs)
    return LocalCluster(base_dir, **kwargs)


def _topic_factory(cluster: LocalCluster) -> TopicFactory:
    def make(
        partitions: int = 3,
        replication_factor: int = 3,
        config: dict[str, str] | None = None,
        prefix: str = "t",
    ) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        create_topic(cluster.profile, name, partitions, replication_factor, config)
        return name

    return make


@pytest.fixture(scope="session")
def kafka_cluster(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[LocalCluster]:
    """A session-wide ZooKeeper + 3-broker cluster; tests must leave it healthy."""
    cluster: Any = new_cluster(pytestconfig, tmp_path_factory.mktemp("kafka-session"), brokers=3)
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def secure_kafka_cluster(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[LocalCluster]:
    """A session-wide secured cluster (ZooKeeper mode): SASL_SSL/SCRAM-SHA-512 listeners,
    an authorizer denying what no ACL allows, ZooKeeper with SASL and ACLs. Use its
    ``profile`` (the ``admin`` super user) to reach it; tests must leave it healthy."""
    cluster: Any = new_cluster(pytestconfig, tmp_path_factory.mktemp("kafka-secure"), brokers=3, secure=True,
                               mode="zookeeper")
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def kraft_kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A session-wide KRaft cluster (Kafka 4.x: 3 brokers, 1 controller, local JVMs on either
    backend) whatever ``--kafka-mode`` says: for KRaft-only features such as share groups, so
    their tests run in every mode. Tests must leave it healthy."""
    cluster = LocalCluster(tmp_path_factory.mktemp("kafka-kraft"), brokers=3, mode="kraft", controllers=1)
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def secure_kafka_topic(secure_kafka_cluster: LocalCluster) -> TopicFactory:
    """Factory: a new topic on the secured session cluster."""
    return _topic_factory(secure_kafka_cluster)


@pytest.fixture
def kafka_topic(kafka_cluster: LocalCluster) -> TopicFactory:
    """Factory: ``kafka_topic(partitions=3, replication_factor=3)`` -> a new topic name."""
    return _topic_factory(kafka_cluster)


@pytest.fixture
def cluster_factory(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Callable[..., LocalCluster]]:
    """Start clusters of a test's own shape; all are destroyed after the test."""
    started: list[Any] = []

    def start(**kwargs: Any) -> LocalCluster:
        cluster: Any = new_cluster(pytestconfig, tmp_path_factory.mktemp("kafka-own"), **kwargs)
        started.append(cluster)
        cluster.start()
        return cluster  # type: ignore[no-any-return]

    yield start
    for cluster in started:
        cluster.destroy()


@pytest.fixture
def fresh_kafka_cluster(cluster_factory: Callable[..., LocalCluster]) -> LocalCluster:
    """A 3-broker cluster of this test's own, free to be broken."""
    return cluster_factory(brokers=3)


@pytest.fixture
def fresh_topic_factory() -> Callable[[LocalCluster], TopicFactory]:
    """``fresh_topic_factory(cluster)`` -> a topic factory on any cluster."""
    return _topic_factory

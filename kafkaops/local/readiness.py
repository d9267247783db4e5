"""What every test cluster shares, whatever runs its JVMs (local processes or
containers): the brokers' settings and the waits that say a cluster is usable.

``ClusterReadiness`` is a mixin: the cluster class supplies ``zk_hosts``, ``chroot``,
``bootstrap_servers``, ``brokers``, ``zookeepers``, ``broker(id)`` and
``_check_running(nodes)``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from confluent_kafka import Consumer, KafkaException, TopicPartition
from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError

from kafkaops.admin import admin_client
from kafkaops.config import ClusterProfile, ZooKeeperSettings
from kafkaops.errors import ClusterError, UnknownBrokerError

log = logging.getLogger(__name__)

BROKER_SESSION_TIMEOUT_MS = 6000
"""Kafka's ZooKeeper session timeout here: a SIGKILLed broker is seen gone after this."""


def broker_defaults(brokers: int) -> dict[str, str]:
    """No-loss defaults scaled to the cluster size, plus settings for fast tests on a
    small machine. Listeners, ids, directories and ZooKeeper come from the caller."""
    rf = str(min(3, brokers))
    min_isr = "2" if brokers >= 3 else "1"
    return {
        "zookeeper.session.timeout.ms": str(BROKER_SESSION_TIMEOUT_MS),
        "zookeeper.connection.timeout.ms": "15000",
        # no-loss defaults
        "default.replication.factor": rf,
        "min.insync.replicas": min_isr,
        "unclean.leader.election.enable": "false",
        "offsets.topic.replication.factor": rf,
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": min_isr,
        "auto.create.topics.enable": "false",
        "num.partitions": "3",
        # small machine, fast tests
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.num.partitions": "10",
        "group.initial.rebalance.delay.ms": "0",
        "replica.lag.time.max.ms": "10000",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "background.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
        "controlled.shutdown.enable": "true",
        "delete.topic.enable": "true",
    }


class ClusterNode(Protocol):
    """What the shared code needs of a node: its id and a process that says if it runs."""

    id: int
    process: Any


N = TypeVar("N", bound=ClusterNode)


class ClusterReadiness(Generic[N]):
    """Node look-up, readiness waits and ZooKeeper look-ups shared by LocalCluster and ContainerCluster."""

    chroot: str
    brokers: Sequence[N]
    zookeepers: Sequence[N]

    @property
    def zk_hosts(self) -> str:
        raise NotImplementedError

    @property
    def bootstrap_servers(self) -> str:
        raise NotImplementedError

    @property
    def profile(self) -> ClusterProfile:
        """How kafkaops reaches this cluster: its brokers, its ZooKeeper and the brokers' chroot."""
        return ClusterProfile(self.bootstrap_servers, zookeeper=ZooKeeperSettings(self.zk_hosts, kafka_chroot=self.chroot),
                              name="local")

    def broker(self, broker_id: int) -> N:
        for node in self.brokers:
            if node.id == broker_id:
                return node
        known = ", ".join(str(b.id) for b in self.brokers)
        raise UnknownBrokerError(f"no broker {broker_id} in this cluster (brokers: {known})")

    def zookeeper(self, node_id: int) -> N:
        for node in self.zookeepers:
            if node.id == node_id:
                return node
        known = ", ".join(str(z.id) for z in self.zookeepers)
        raise UnknownBrokerError(f"no ZooKeeper node {node_id} (nodes: {known})")

    def _check_running(self, nodes: Iterable[N]) -> None:
        """Raise ClusterError naming the first node that is not running (with its logs)."""
        raise NotImplementedError

    def kazoo(self, timeout: float = 15.0) -> KazooClient:
        """A started KazooClient on this cluster's ZooKeeper (no chroot); caller stops it."""
        zk = KazooClient(hosts=self.zk_hosts, timeout=10.0)
        try:
            zk.start(timeout=timeout)
        except KazooTimeoutError as exc:
            raise ClusterError(f"ZooKeeper at {self.zk_hosts} not reachable: {exc}") from exc
        return zk

    def controller_id(self) -> int | None:
        """The controller broker's id, read from ZooKeeper; None if there is none."""
        zk = self.kazoo()
        try:
            data, _ = zk.get(f"{self.chroot}/controller")
            return int(json.loads(data)["brokerid"])
        except Exception:  # noqa: BLE001 - no controller elected right now
            return None
        finally:
            zk.stop()
            zk.close()

    def any_running(self) -> bool:
        return any(n.process.is_running() for n in [*self.zookeepers, *self.brokers])

    def wait_brokers(self, broker_ids: Iterable[int], timeout: float = 90.0) -> None:
        """Wait until the brokers are registered in ZooKeeper and visible in metadata."""
        wanted = {int(b) for b in broker_ids}
        deadline = time.monotonic() + timeout
        zk = self.kazoo(timeout=max(15.0, timeout / 2))
        try:
            while True:
                self._check_running(self.broker(b) for b in sorted(wanted))
                try:
                    ids = {int(i) for i in zk.get_children(f"{self.chroot}/brokers/ids")}
                except Exception:  # noqa: BLE001 - the path appears with the first broker
                    ids = set()
                if wanted <= ids:
                    break
                if time.monotonic() > deadline:
                    raise ClusterError(f"brokers {sorted(wanted - ids)} did not register in {timeout:.0f}s")
                time.sleep(0.2)
        finally:
            zk.stop()
            zk.close()
        admin = admin_client(self.bootstrap_servers)
        while True:
            try:
                seen = set(admin.list_topics(timeout=5).brokers)
            except Exception:  # noqa: BLE001 - metadata not served yet
                seen = set()
            if wanted <= seen:
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"brokers {sorted(wanted - seen)} not in metadata after {timeout:.0f}s")
            time.sleep(0.2)

    def _wait_registration_gone(self, broker_id: int) -> None:
        """A SIGKILLed broker's ephemeral ``/brokers/ids/<id>`` lives until its ZooKeeper
        session expires; a broker started before that fails to register under its id."""
        path = f"{self.chroot}/brokers/ids/{broker_id}"
        zk = self.kazoo()
        try:
            deadline = time.monotonic() + 3 * BROKER_SESSION_TIMEOUT_MS / 1000
            while zk.exists(path) and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            zk.stop()
            zk.close()

    def _create_offsets_topic(self, timeout: float) -> None:
        """Make the group coordinator create ``__consumer_offsets`` now, while every
        broker is up: created lazily after a broker died, it would fail for lack of
        replicas and leave consumer groups without a coordinator."""
        group = "kafkaops-warmup"
        consumer = Consumer({"bootstrap.servers": self.bootstrap_servers, "group.id": group, "logger": log})
        admin = admin_client(self.bootstrap_servers)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:  # an offset fetch goes through the group coordinator, which creates the topic
                    consumer.committed([TopicPartition(group, 0)], timeout=5)
                    md = admin.list_topics(topic="__consumer_offsets", timeout=5).topics["__consumer_offsets"]
                    if md.error is None and md.partitions and all(p.leader >= 0 for p in md.partitions.values()):
                        return
                except KafkaException:
                    pass  # coordinator not available while the topic is being created
                if time.monotonic() > deadline:
                    raise ClusterError(f"__consumer_offsets not ready after {timeout:.0f}s")
                time.sleep(0.2)
        finally:
            consumer.close()

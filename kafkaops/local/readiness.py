"""What every test cluster shares, whatever runs its JVMs (local processes or
containers): the brokers' settings and the waits that say a cluster is usable.

``ClusterReadiness`` is a mixin: the cluster class supplies ``chroot``, ``brokers``,
``zookeepers``, ``_zookeeper_serves(node)`` and ``_logs_hint(nodes)``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from confluent_kafka import Consumer, KafkaException, TopicPartition
from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError

from kafkaops.admin import admin_client
from kafkaops.config import ClusterProfile, ZooKeeperSettings
from kafkaops.errors import ClusterError, UnknownBrokerError
from kafkaops.waits import Deadline, WaitTimeout, wait_until

log = logging.getLogger(__name__)

BROKER_SESSION_TIMEOUT_MS = 6000
"""Kafka's ZooKeeper session timeout here: a SIGKILLed broker is seen gone after this."""


def check_shape(brokers: int, zookeepers: int) -> None:
    """ClusterError unless the cluster has a broker and a ZooKeeper ensemble of 1, 3 or 5."""
    if brokers < 1:
        raise ClusterError(f"a cluster needs at least one broker, not {brokers}")
    if zookeepers not in (1, 3, 5):
        raise ClusterError(f"ZooKeeper runs 1, 3 or 5 nodes, not {zookeepers}")


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
    """What the shared code needs of a node: kind, id, address and a process that says if it runs."""

    kind: str  # "zookeeper" | "broker"
    id: int
    process: Any

    @property
    def address(self) -> str: ...


N = TypeVar("N", bound=ClusterNode)


class ClusterReadiness(Generic[N]):
    """Node look-up, readiness waits and ZooKeeper look-ups shared by LocalCluster and ContainerCluster."""

    chroot: str
    brokers: Sequence[N]
    zookeepers: Sequence[N]
    mode: str = "zookeeper"
    """"zookeeper" (brokers register in ZooKeeper under ``chroot``) or "kraft"."""
    secure: bool = False
    """Brokers' znodes carry ACLs and the chroot is theirs to create."""

    @property
    def zk_hosts(self) -> str:
        """ZooKeeper connect string without chroot (for kazoo / kafkaops' own znodes)."""
        return ",".join(n.address for n in self.zookeepers)

    @property
    def zk_connect(self) -> str:
        """ZooKeeper connect string with the brokers' chroot (``zookeeper.connect``)."""
        return self.zk_hosts + self.chroot

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(n.address for n in self.brokers)

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

    def _zookeeper_serves(self, node: N) -> bool:
        """True once the ZooKeeper node answers clients."""
        raise NotImplementedError

    def _logs_hint(self, nodes: Iterable[N]) -> str:
        """Where to look for why the first of ``nodes`` failed ("; see ..."), or ""."""
        raise NotImplementedError

    def _check_running(self, nodes: Iterable[N]) -> None:
        """Raise ClusterError naming the first node that is not running (with its logs)."""
        dead = [n for n in nodes if not n.process.is_running()]
        if dead:
            raise ClusterError(f"{dead[0].kind} {dead[0].id} exited" + self._logs_hint(dead))

    def _wait_zookeeper(self, timeout: float) -> None:
        """Wait until every ZooKeeper node serves, then create the brokers' chroot."""

        def serving() -> bool:
            self._check_running(self.zookeepers)
            if not all(self._zookeeper_serves(z) for z in self.zookeepers):
                return False
            if self.mode == "kraft" or self.secure:
                return True  # no chroot to make (KRaft), or Kafka makes it with its ACLs (secure)
            zk = self.kazoo()
            try:
                zk.ensure_path(self.chroot)
            finally:
                zk.stop()
                zk.close()
            return True

        wait_until(serving, timeout, "ZooKeeper", interval=0.2, error=lambda _: ClusterError(
            f"ZooKeeper did not come up in {timeout:.0f}s" + self._logs_hint(self.zookeepers)))

    def kazoo(self, timeout: float = 15.0) -> KazooClient:
        """A started KazooClient on this cluster's ZooKeeper (no chroot); caller stops it."""
        zk = KazooClient(hosts=self.zk_hosts, timeout=10.0)
        try:
            zk.start(timeout=timeout)
        except KazooTimeoutError as exc:
            raise ClusterError(f"ZooKeeper at {self.zk_hosts} not reachable: {exc}") from exc
        return zk

    def controller_id(self) -> int | None:
        """The active controller's id (ZooKeeper's ``/controller``; KRaft: the quorum leader),
        None if there is none."""
        if self.mode == "kraft":
            from kafkaops.quorum import QuorumError, describe_quorum

            try:
                return describe_quorum(self.profile).leader_id
            except QuorumError:
                return None
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
        deadline = Deadline(timeout)
        if self.mode == "zookeeper":
            self._wait_registered(wanted, deadline, timeout)
        admin = admin_client(self.profile)
        in_metadata: set[int] = set()

        def served() -> bool:
            self._check_running(self.broker(b) for b in sorted(wanted))
            in_metadata.clear()
            try:
                in_metadata.update(admin.list_topics(timeout=5).brokers)
            except Exception:  # noqa: BLE001 - metadata not served yet
                pass
            return wanted <= in_metadata

        wait_until(served, deadline.remaining(), "brokers in metadata", error=lambda _: ClusterError(
            f"brokers {sorted(wanted - in_metadata)} not in metadata after {timeout:.0f}s"))

    def _wait_registered(self, wanted: set[int], deadline: Deadline, timeout: float) -> None:
        """ZooKeeper mode: wait for the brokers' ephemeral ``/brokers/ids/<id>`` znodes."""
        seen: set[int] = set()
        zk = self.kazoo(timeout=max(15.0, timeout / 2))
        try:
            def registered() -> bool:
                self._check_running(self.broker(b) for b in sorted(wanted))
                seen.clear()
                try:
                    seen.update(int(i) for i in zk.get_children(f"{self.chroot}/brokers/ids"))
                except Exception:  # noqa: BLE001 - the path appears with the first broker
                    pass
                return wanted <= seen

            wait_until(registered, deadline.remaining(), "broker registrations", error=lambda _: ClusterError(
                f"brokers {sorted(wanted - seen)} did not register in {timeout:.0f}s"))
        finally:
            zk.stop()
            zk.close()

    def _wait_registration_gone(self, broker_id: int) -> None:
        """A SIGKILLed broker's ephemeral ``/brokers/ids/<id>`` lives until its ZooKeeper
        session expires; a broker started before that fails to register under its id."""
        if self.mode == "kraft":
            return  # a restarted KRaft broker registers a new incarnation at once
        path = f"{self.chroot}/brokers/ids/{broker_id}"
        zk = self.kazoo()
        try:
            wait_until(lambda: not zk.exists(path), 3 * BROKER_SESSION_TIMEOUT_MS / 1000, f"{path} to go")
        except WaitTimeout:
            log.warning("%s is still registered; starting broker %d anyway", path, broker_id)
        finally:
            zk.stop()
            zk.close()

    def _create_offsets_topic(self, timeout: float) -> None:
        """Make the group coordinator create ``__consumer_offsets`` now, while every
        broker is up: created lazily after a broker died, it would fail for lack of
        replicas and leave consumer groups without a coordinator."""
        group = "kafkaops-warmup"
        consumer = Consumer(self.profile.librdkafka(**{"group.id": group, "logger": log}))
        admin = admin_client(self.profile)

        def led() -> bool:
            try:  # an offset fetch goes through the group coordinator, which creates the topic
                consumer.committed([TopicPartition(group, 0)], timeout=5)
                md = admin.list_topics(topic="__consumer_offsets", timeout=5).topics["__consumer_offsets"]
            except KafkaException:
                return False  # coordinator not available while the topic is being created
            return md.error is None and bool(md.partitions) and all(p.leader >= 0 for p in md.partitions.values())

        try:
            wait_until(led, timeout, "__consumer_offsets", error=lambda _: ClusterError(
                f"__consumer_offsets not ready after {timeout:.0f}s"))
        finally:
            consumer.close()

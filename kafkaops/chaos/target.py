"""The cluster a chaos run breaks, and what the faults ask of it: who leads a partition,
which ZooKeeper node leads the ensemble, when everything is healthy again.

A target is a :class:`~kafkaops.local.cluster.LocalCluster` or a
:class:`~kafkaops.testing.containers.ContainerCluster` (duck-typed by :class:`ChaosCluster`;
this package never imports either, so the library stays free of test infrastructure).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from confluent_kafka import KafkaException
from confluent_kafka.cimpl import NewTopic

from kafkaops.admin import admin_client, wait_for_leaders
from kafkaops.config import ClusterProfile
from kafkaops.coord.four_letter import server_mode
from kafkaops.errors import KafkaopsError
from kafkaops.ops.health import cluster_health
from kafkaops.waits import wait_until

log = logging.getLogger(__name__)


class ChaosError(KafkaopsError):
    """A chaos run could not set up, inject or heal (not a property violation: those are checks)."""


class ChaosCluster(Protocol):
    """What faults and workloads use of a cluster (LocalCluster and ContainerCluster have it)."""

    mode: str

    @property
    def profile(self) -> ClusterProfile: ...
    @property
    def brokers(self) -> Sequence[Any]: ...
    @property
    def zookeepers(self) -> Sequence[Any]: ...

    def broker(self, broker_id: int) -> Any: ...
    def kill_broker(self, broker_id: int) -> None: ...
    def stop_broker(self, broker_id: int, timeout: float = 60.0) -> None: ...
    def start_broker(self, broker_id: int, wait: bool = True, timeout: float = 90.0) -> None: ...
    def pause_broker(self, broker_id: int) -> None: ...
    def resume_broker(self, broker_id: int) -> None: ...
    def kill_zookeeper(self, node_id: int) -> None: ...
    def start_zookeeper(self, node_id: int) -> None: ...
    def controller_id(self) -> int | None: ...
    def wait_brokers(self, broker_ids: Any, timeout: float = 90.0) -> None: ...


def create_chaos_topic(cluster: ChaosCluster, prefix: str, partitions: int = 3) -> str:
    """A fresh topic (replication factor 3, the brokers' min ISR 2) whose leaders are the
    first two brokers: the third follows every partition and leads none, so killing it
    is a pure follower fault."""
    ids = sorted(b.id for b in cluster.brokers)
    if len(ids) < 3:
        raise ChaosError(f"a chaos run needs 3 brokers or more, the cluster has {len(ids)}")
    leaders, follower = ids[:2], ids[2]
    assignment = [[leaders[p % 2], leaders[(p + 1) % 2], follower] for p in range(partitions)]
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = admin_client(cluster.profile)
    future = admin.create_topics([NewTopic(name, partitions, replica_assignment=assignment)], operation_timeout=30)[name]
    try:
        future.result(timeout=60)
    except KafkaException as exc:
        raise ChaosError(f"cannot create topic {name}: {exc.args[0].str()}") from None
    wait_for_leaders(admin, name, partitions, 60, cluster.profile)
    return name


def partition_roles(cluster: ChaosCluster, topic: str) -> dict[int, tuple[int, list[int]]]:
    """partition -> (leader, replicas) from metadata."""
    try:
        md = admin_client(cluster.profile).list_topics(topic=topic, timeout=15).topics[topic]
    except (KafkaException, KeyError) as exc:
        raise ChaosError(f"no metadata for {topic}: {exc}") from None
    return {p.id: (p.leader, list(p.replicas)) for p in md.partitions.values()}


def leader_of(cluster: ChaosCluster, topic: str, partition: int = 0) -> int:
    leader = partition_roles(cluster, topic)[partition][0]
    if leader < 0:
        raise ChaosError(f"{topic}[{partition}] has no leader now")
    return leader


def pure_follower(cluster: ChaosCluster, topic: str) -> int:
    """A broker that replicates the topic and leads none of its partitions (not the controller if possible)."""
    roles = partition_roles(cluster, topic)
    leaders = {leader for leader, _ in roles.values()}
    replicas = {r for _, rs in roles.values() for r in rs}
    candidates = sorted(replicas - leaders)
    if not candidates:
        raise ChaosError(f"every replica of {topic} leads a partition: no pure follower to kill")
    controller = cluster.controller_id() if cluster.mode == "zookeeper" else None
    return next((b for b in candidates if b != controller), candidates[0])


def zookeeper_leader(cluster: ChaosCluster) -> int | None:
    """The id of the ensemble's leader (None with a single node or no quorum)."""
    for z in cluster.zookeepers:
        host, port = z.address.rsplit(":", 1)
        if server_mode(host, int(port)) == "leader":
            return int(z.id)
    return None


def healthy(cluster: ChaosCluster) -> str | None:
    """None when every node runs and no partition is under-replicated, else what is not."""
    down = [f"{n.kind} {n.id}" for n in [*cluster.zookeepers, *cluster.brokers, *controllers(cluster)] if not n.alive]
    if down:
        return "not running: " + ", ".join(down)
    zk = [z for z in cluster.zookeepers if _zk_role(z) is None]
    if zk:
        return f"ZooKeeper node {zk[0].id} not serving"
    try:
        h = cluster_health(cluster.profile, timeout=10)
    except KafkaopsError as exc:
        return str(exc)
    missing = {b.id for b in cluster.brokers} - set(h.live_brokers)
    if missing:
        return f"brokers {sorted(missing)} not in metadata"
    c = h.counts
    if c.under_replicated or c.offline:
        return f"{c.under_replicated} partition(s) under-replicated, {c.offline} offline"
    if cluster.mode == "kraft" and cluster.controller_id() is None:
        return "no active KRaft controller"
    return None


def _zk_role(node: Any) -> str | None:
    host, port = node.address.rsplit(":", 1)
    return server_mode(host, int(port))


def controllers(cluster: ChaosCluster) -> list[Any]:
    """Dedicated KRaft controllers (none in ZooKeeper mode or on combined nodes)."""
    return [c for c in getattr(cluster, "controllers", []) if c.kind == "controller"]


def wait_healthy(cluster: ChaosCluster, timeout: float = 300.0) -> None:
    """Wait until :func:`healthy` says nothing is wrong; ChaosError naming what still is."""
    last: list[str | None] = [None]

    def ok() -> bool:
        last[0] = healthy(cluster)
        return last[0] is None

    wait_until(ok, timeout, "a healthy cluster", interval=1.0,
               error=lambda msg: ChaosError(f"{msg}: {last[0]}"))

"""ClusterHealth: the one snapshot of brokers, controller and partition replication.

A pure, immutable model (what the ReplicaMonitor keeps up to date and diffs into
events, what the failover policy and playbook gates judge, what ``kafkaops status``
renders) plus :func:`cluster_health`, which computes one snapshot straight from
Admin API metadata for callers that need a single look.

A partition is *under-replicated* when its ISR is smaller than its replica set,
*under min ISR* when its ISR is smaller than the topic's ``min.insync.replicas``
(producers with acks=all then fail: the no-loss default is 2), and *offline*
when it has no leader.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType  # type: ignore[attr-defined]

from kafkaops.admin import AdminError, admin_client
from kafkaops.config import ClusterProfile, as_profile
from kafkaops.types import TP

log = logging.getLogger(__name__)

Address = tuple[str | None, int | None]
DEFAULT_MIN_ISR = 1
"""Kafka's own default for ``min.insync.replicas`` when a topic's value is unknown."""


@dataclass(frozen=True)
class BrokerHealth:
    id: int
    alive: bool
    host: str | None = None
    port: int | None = None


@dataclass(frozen=True)
class PartitionHealth:
    """Leader, replicas (preferred leader first) and ISR (sorted) of one partition."""

    topic: str
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    min_isr: int = DEFAULT_MIN_ISR

    @property
    def tp(self) -> TP:
        return (self.topic, self.partition)

    @property
    def offline(self) -> bool:
        return self.leader < 0

    @property
    def under_replicated(self) -> bool:
        return len(self.isr) < len(self.replicas)

    @property
    def under_min_isr(self) -> bool:
        return len(self.isr) < self.min_isr

    @property
    def healthy(self) -> bool:
        return not (self.offline or self.under_replicated or self.under_min_isr)

    @property
    def preferred_leader(self) -> int | None:
        return self.replicas[0] if self.replicas else None

    @property
    def leader_is_preferred(self) -> bool:
        return self.leader >= 0 and self.leader == self.preferred_leader

    @property
    def status(self) -> str:
        """The worst condition: offline, under_min_isr, under_replicated or ok."""
        if self.offline:
            return "offline"
        if self.under_min_isr:
            return "under_min_isr"
        if self.under_replicated:
            return "under_replicated"
        return "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "leader": self.leader,
            "replicas": list(self.replicas),
            "isr": list(self.isr),
            "min_isr": self.min_isr,
            "status": self.status,
        }


@dataclass(frozen=True)
class PartitionCounts:
    total: int
    under_replicated: int
    under_min_isr: int
    offline: int
    preferred_leader_imbalance: int
    """Partitions with a leader that is not their preferred (first) replica."""

    def to_json(self) -> dict[str, int]:
        return {
            "total": self.total,
            "under_replicated": self.under_replicated,
            "under_min_isr": self.under_min_isr,
            "offline": self.offline,
            "preferred_leader_imbalance": self.preferred_leader_imbalance,
        }


@dataclass(frozen=True)
class ClusterHealth:
    """Brokers (alive or known dead), the controller and every partition's replication."""

    brokers: Mapping[int, BrokerHealth]
    controller_id: int | None
    partitions: Mapping[TP, PartitionHealth]
    timestamp: float = field(default_factory=time.time)

    @property
    def live_brokers(self) -> frozenset[int]:
        return frozenset(b.id for b in self.brokers.values() if b.alive)

    @property
    def dead_brokers(self) -> frozenset[int]:
        return frozenset(b.id for b in self.brokers.values() if not b.alive)

    @property
    def topics(self) -> frozenset[str]:
        return frozenset(topic for topic, _ in self.partitions)

    def with_dead(self, broker_ids: Iterable[int]) -> ClusterHealth:
        """The same snapshot with ``broker_ids`` marked not alive (e.g. local brokers known to be
        stopped or paused, which metadata still lists until their ZooKeeper session ends)."""
        dead = set(broker_ids)
        brokers = {i: replace(b, alive=False) if i in dead else b for i, b in self.brokers.items()}
        return replace(self, brokers=brokers)

    @property
    def counts(self) -> PartitionCounts:
        ps = list(self.partitions.values())
        return PartitionCounts(
            total=len(ps),
            under_replicated=sum(p.under_replicated for p in ps),
            under_min_isr=sum(p.under_min_isr for p in ps),
            offline=sum(p.offline for p in ps),
            preferred_leader_imbalance=sum(1 for p in ps if not p.offline and not p.leader_is_preferred),
        )

    def partitions_with(self, status: str) -> list[PartitionHealth]:
        return [p for _, p in sorted(self.partitions.items()) if p.status == status]

    def replicas_on(self, broker_id: int) -> list[PartitionHealth]:
        """Partitions with a replica on ``broker_id``."""
        return [p for _, p in sorted(self.partitions.items()) if broker_id in p.replicas]

    def to_json(self, with_partitions: bool = False) -> dict[str, Any]:
        """JSON-ready: brokers, controller_id, partition counts (+ the unhealthy partitions)."""
        doc: dict[str, Any] = {
            "timestamp": self.timestamp,
            "controller_id": self.controller_id,
            "topics": len(self.topics),
            "brokers": [
                {"id": b.id, "alive": b.alive, "host": b.host, "port": b.port}
                for _, b in sorted(self.brokers.items())
            ],
            "partitions": self.counts.to_json(),
            "unhealthy_partitions": [p.to_json() for _, p in sorted(self.partitions.items()) if not p.healthy],
        }
        if with_partitions:
            doc["partition_details"] = [p.to_json() for _, p in sorted(self.partitions.items())]
        return doc


def build_health(
    live: Mapping[int, Address],
    controller_id: int | None,
    partitions: Iterable[tuple[str, int, int, Iterable[int], Iterable[int]]],
    min_isr: Mapping[str, int] | None = None,
    known_brokers: Iterable[int] = (),
    timestamp: float | None = None,
    addresses: Mapping[int, Address] | None = None,
) -> ClusterHealth:
    """Assemble a ClusterHealth from raw facts.

    ``live`` maps live broker ids to (host, port); ``partitions`` yields
    (topic, partition, leader, replicas, isr). Brokers named in ``known_brokers``
    or in any replica set but not live are listed as dead, with their last known
    address from ``addresses`` if any.
    """
    mins = dict(min_isr or {})
    parts: dict[TP, PartitionHealth] = {}
    referenced: set[int] = set(known_brokers)
    for topic, partition, leader, replicas, isr in partitions:
        reps = tuple(replicas)
        referenced.update(reps)
        parts[(topic, partition)] = PartitionHealth(
            topic, partition, leader, reps, tuple(sorted(isr)), mins.get(topic, DEFAULT_MIN_ISR)
        )
    brokers = {i: BrokerHealth(i, True, h, p) for i, (h, p) in live.items()}
    for i in referenced - set(live):
        host, port = (addresses or {}).get(i, (None, None))
        brokers[i] = BrokerHealth(i, False, host, port)
    return ClusterHealth(
        brokers=dict(sorted(brokers.items())),
        controller_id=controller_id,
        partitions=parts,
        timestamp=time.time() if timestamp is None else timestamp,
    )


def topic_min_isr(admin: AdminClient, topics: Iterable[str], timeout: float = 10.0) -> dict[str, int]:
    """Effective ``min.insync.replicas`` of each topic (topic override or broker default)."""
    resources = [ConfigResource(ResourceType.TOPIC, t) for t in topics]
    if not resources:
        return {}
    result: dict[str, int] = {}
    for res, fut in admin.describe_configs(resources, request_timeout=timeout).items():
        try:
            entries = fut.result(timeout=timeout)
            result[res.name] = int(entries["min.insync.replicas"].value)
        except (KafkaException, KeyError, ValueError, TypeError) as exc:
            log.debug("min.insync.replicas of %s unknown: %s", res.name, exc)
        except Exception as exc:  # noqa: BLE001 - future timeouts
            log.debug("min.insync.replicas of %s unknown: %s", res.name, exc)
    return result


def cluster_health(
    cluster: ClusterProfile | str,
    *,
    known_brokers: Iterable[int] | Mapping[int, Address] = (),
    timeout: float = 10.0,
    admin: AdminClient | None = None,
    min_isr: Mapping[str, int] | None = None,
) -> ClusterHealth:
    """One ClusterHealth snapshot from Admin API metadata (works in any cluster mode).

    ``known_brokers`` adds brokers that should exist (they show as dead when they are
    not in metadata); a mapping ``{id: (host, port)}`` also gives their addresses.
    ``min_isr`` skips the describe-configs round trip for the topics it covers.
    Raises AdminError when no broker answers within ``timeout`` seconds.
    """
    profile = as_profile(cluster)
    admin = admin or admin_client(profile)
    try:
        md = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise AdminError(f"cannot read metadata from {profile.bootstrap_servers}: {exc.args[0].str()}") from None
    mins = dict(min_isr or {})
    missing = [t for t in md.topics if t not in mins]
    if missing:
        mins.update(topic_min_isr(admin, missing, timeout))
    rows = [
        (name, p.id, p.leader, list(p.replicas), list(p.isrs))
        for name, t in md.topics.items()
        if t.error is None or t.partitions
        for p in t.partitions.values()
    ]
    return build_health(
        {b.id: (b.host, b.port) for b in md.brokers.values()},
        md.controller_id if md.controller_id >= 0 else None,
        rows,
        mins,
        known_brokers,
        addresses=known_brokers if isinstance(known_brokers, Mapping) else None,
    )

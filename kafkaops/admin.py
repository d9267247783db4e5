"""Small Admin API helpers shared by the CLI, ops and tests: topics and a status view.

Built on confluent-kafka's AdminClient; every call has a timeout and turns broker
errors into KafkaopsError with the topic or broker named.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.cimpl import NewTopic
from confluent_kafka.admin import AdminClient

from kafkaops.config import ClusterProfile, as_profile
from kafkaops.errors import KafkaopsError

log = logging.getLogger(__name__)


class AdminError(KafkaopsError):
    """An Admin API call failed or timed out."""


def admin_client(cluster: ClusterProfile | str, **config: Any) -> AdminClient:
    """An AdminClient for a profile (or bootstrap string); librdkafka logs go to Python logging."""
    return AdminClient(as_profile(cluster).librdkafka(logger=log, **config))


def create_topic(
    cluster: ClusterProfile | str,
    name: str,
    partitions: int = 3,
    replication_factor: int = 3,
    config: dict[str, str] | None = None,
    *,
    timeout: float = 30.0,
    exist_ok: bool = False,
) -> None:
    """Create a topic and wait until every partition has a leader in metadata."""
    if partitions < 1 or replication_factor < 1:
        raise AdminError(f"topic {name}: partitions and replication factor must be >= 1")
    profile = as_profile(cluster)
    admin = admin_client(profile)
    future = admin.create_topics(
        [NewTopic(name, partitions, replication_factor, config=config or {})],
        operation_timeout=timeout,
        request_timeout=timeout,
    )[name]
    try:
        future.result(timeout=timeout)
    except KafkaException as exc:
        err = exc.args[0]
        if exist_ok and err.name() == "TOPIC_ALREADY_EXISTS":
            return
        raise AdminError(f"cannot create topic {name}: {err.str()}") from None
    wait_for_leaders(admin, name, partitions, timeout, profile)


def wait_for_leaders(
    admin: AdminClient, topic: str, partitions: int, timeout: float, profile: ClusterProfile | None = None
) -> None:
    """Wait until every live broker's metadata shows the topic's partitions with leaders.

    The controller updates brokers' metadata caches one by one: a client that asks another
    broker right after creation can still be told the topic has no partitions. Each broker
    is asked by a client bootstrapped on it alone (its first request goes there).
    """
    deadline = time.monotonic() + timeout

    def ready(client: AdminClient) -> bool:
        md = client.list_topics(topic=topic, timeout=max(1.0, deadline - time.monotonic())).topics.get(topic)
        return (
            md is not None and md.error is None and len(md.partitions) >= partitions
            and all(p.leader >= 0 for p in md.partitions.values())
        )

    def wait(check: Callable[[], bool], where: str) -> None:
        while not check():
            if time.monotonic() > deadline:
                raise AdminError(f"topic {topic}: partitions have no leader {where} after {timeout:.0f}s")
            time.sleep(0.1)

    wait(lambda: ready(admin), "in metadata")
    for broker in admin.list_topics(timeout=timeout).brokers.values():
        one = f"{broker.host}:{broker.port}"
        wait(lambda: ready(admin_client(profile.with_bootstrap(one) if profile else one)), f"on broker {broker.id}")


@dataclass
class BrokerStatus:
    id: int
    host: str
    port: int
    alive: bool


@dataclass
class PartitionCounts:
    total: int = 0
    under_replicated: int = 0
    offline: int = 0


@dataclass
class ClusterStatus:
    """What `kafkaops status` shows: brokers, controller, topics and partition health."""

    brokers: list[BrokerStatus]
    controller_id: int | None
    topics: int
    partitions: PartitionCounts = field(default_factory=PartitionCounts)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def cluster_status(
    bootstrap_servers: str,
    expected: dict[int, tuple[str, int]] | None = None,
    *,
    timeout: float = 10.0,
) -> ClusterStatus:
    """Read cluster metadata; ``expected`` ({id: (host, port)}) adds brokers that are gone.

    A broker is alive when it is in the controller's metadata (registered in
    ZooKeeper). Partitions count as under-replicated when the ISR is smaller than
    the replica set, offline when they have no leader.
    """
    admin = admin_client(bootstrap_servers)
    try:
        md = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise AdminError(f"cannot read metadata from {bootstrap_servers}: {exc.args[0].str()}") from None
    live = {b.id: (b.host or "", b.port) for b in md.brokers.values()}
    known = dict(expected or {})
    known.update(live)
    brokers = [BrokerStatus(i, h, p, i in live) for i, (h, p) in sorted(known.items())]
    counts = PartitionCounts()
    topics = 0
    for t in md.topics.values():
        topics += 1
        for p in t.partitions.values():
            counts.total += 1
            if p.leader < 0:
                counts.offline += 1
            if len(p.isrs) < len(p.replicas):
                counts.under_replicated += 1
    return ClusterStatus(
        brokers=brokers,
        controller_id=md.controller_id if md.controller_id >= 0 else None,
        topics=topics,
        partitions=counts,
    )

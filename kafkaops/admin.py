"""Small Admin API helpers shared by the CLI, ops and tests: clients and topic creation.

Built on confluent-kafka's AdminClient; every call has a timeout and turns broker
errors into KafkaopsError with the topic or broker named.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.cimpl import NewTopic
from confluent_kafka.admin import AdminClient

from kafkaops.config import ClusterProfile, as_profile
from kafkaops.errors import KafkaopsError
from kafkaops.waits import Deadline, wait_until

log = logging.getLogger(__name__)


class AdminError(KafkaopsError):
    """An Admin API call failed or timed out."""


def admin_client(cluster: ClusterProfile | str, **config: Any) -> AdminClient:
    """An AdminClient for a profile (or bootstrap string); librdkafka logs go to Python logging,
    and a refused connection raises from ``poll`` (see :func:`await_result`)."""
    from kafkaops.clients.connection import watched

    profile = as_profile(cluster)
    conf, _watch = watched(profile, profile.librdkafka(**config), log)
    return AdminClient(conf)


def await_result(admin: AdminClient, future: Any, timeout: float, what: str) -> Any:
    """An Admin API future's result, serving the client meanwhile (a refused connection raises at once)."""
    from kafkaops.clients.connection import await_result as wait_serving

    return wait_serving(admin, future, timeout, what)


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
        await_result(admin, future, timeout, f"create topic {name}")
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
    deadline = Deadline(timeout)

    def ready(client: AdminClient) -> bool:
        md = client.list_topics(topic=topic, timeout=deadline.remaining(floor=1.0)).topics.get(topic)
        return (
            md is not None and md.error is None and len(md.partitions) >= partitions
            and all(p.leader >= 0 for p in md.partitions.values())
        )

    def wait(check: Callable[[], bool], where: str) -> None:
        wait_until(check, deadline.remaining(), f"topic {topic}'s partitions to have leaders {where}",
                   interval=0.1, error=AdminError)

    wait(lambda: ready(admin), "in metadata")
    for broker in admin.list_topics(timeout=timeout).brokers.values():
        one = f"{broker.host}:{broker.port}"
        wait(lambda: ready(admin_client(profile.with_bootstrap(one) if profile else one)), f"on broker {broker.id}")


def add_partitions(cluster: ClusterProfile | str, name: str, partitions: int, *, timeout: float = 60.0) -> int:
    """Grow a topic to ``partitions`` in total and wait for their leaders; returns the count before.
    Kafka cannot shrink a topic: fewer partitions than it has is an AdminError."""
    from confluent_kafka.admin import NewPartitions  # type: ignore[attr-defined]

    profile = as_profile(cluster)
    admin = admin_client(profile)
    md = admin.list_topics(topic=name, timeout=15).topics.get(name)
    if md is None or md.error is not None:
        raise AdminError(f"topic {name} does not exist")
    have = len(md.partitions)
    if have > partitions:
        raise AdminError(f"topic {name} has {have} partitions; Kafka cannot shrink it to {partitions}")
    if have < partitions:
        fut = admin.create_partitions([NewPartitions(name, partitions)], request_timeout=timeout)[name]
        try:
            await_result(admin, fut, timeout, f"add partitions to {name}")
        except KafkaException as exc:
            raise AdminError(f"cannot add partitions to {name}: {exc.args[0].str()}") from None
        wait_for_leaders(admin, name, partitions, timeout, profile)
    return have

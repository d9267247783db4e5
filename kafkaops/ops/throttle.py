"""Replication throttles: the configs ``kafka-reassign-partitions.sh --throttle`` sets.

Broker configs ``leader.replication.throttled.rate`` / ``follower.replication.throttled.rate``
cap the replication traffic of the replicas listed in the topic configs
``leader.replication.throttled.replicas`` / ``follower.replication.throttled.replicas``.
Set and cleared through confluent-kafka's ``incremental_alter_configs``. Kafka never
throttles replicas that are in sync, so a throttle cannot push a follower out of the ISR.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, not in __all__
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from kafkaops.admin import admin_client
from kafkaops.config import ClusterProfile
from kafkaops.errors import KafkaopsError
from kafkaops.types import TP

log = logging.getLogger(__name__)

THROTTLE_RATE_KEYS = ("leader.replication.throttled.rate", "follower.replication.throttled.rate")
THROTTLE_REPLICA_KEYS = ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas")

Moves = Mapping[TP, tuple[Sequence[int], Sequence[int]]]
"""Partition moves ``{tp: (current replicas, target replicas)}``."""


class ThrottleError(KafkaopsError):
    """A throttle could not be set, cleared or read on some broker or topic."""


def throttled_replicas(moves: Moves) -> tuple[dict[str, str], dict[str, str]]:
    """The topic throttle lists for ``moves``: (leader lists, follower lists), each ``{topic: "p:b,..."}``.

    As ``kafka-reassign-partitions.sh`` does: the leader throttle covers the current
    replicas (the ones that may serve the copy), the follower throttle the replicas added.
    """
    leader: dict[str, list[str]] = defaultdict(list)
    follower: dict[str, list[str]] = defaultdict(list)
    for (topic, partition), (current, target) in sorted(moves.items()):
        leader[topic].extend(f"{partition}:{b}" for b in current)
        follower[topic].extend(f"{partition}:{b}" for b in target if b not in current)
    return ({t: ",".join(v) for t, v in leader.items()}, {t: ",".join(v) for t, v in follower.items() if v})


def set_throttle(
    cluster: ClusterProfile | str,
    rate_bytes_per_sec: int,
    brokers: Iterable[int],
    moves: Moves,
    *,
    timeout: float = 30.0,
) -> None:
    """Throttle the replication traffic of ``moves`` to ``rate_bytes_per_sec`` per broker."""
    if rate_bytes_per_sec <= 0:
        raise ThrottleError(f"throttle rate must be positive, not {rate_bytes_per_sec}")
    leader, follower = throttled_replicas(moves)
    rate = str(rate_bytes_per_sec)
    resources = [_broker(b, {k: rate for k in THROTTLE_RATE_KEYS}) for b in sorted(set(brokers))]
    for topic in sorted(set(leader) | set(follower)):
        lists = {THROTTLE_REPLICA_KEYS[0]: leader[topic]}
        if topic in follower:
            lists[THROTTLE_REPLICA_KEYS[1]] = follower[topic]
        resources.append(_topic(topic, lists))
    _alter_configs(cluster, resources, timeout)


def clear_throttle(cluster: ClusterProfile | str, brokers: Iterable[int], topics: Iterable[str], *, timeout: float = 30.0) -> None:
    """Remove the throttle rates from ``brokers`` and the throttled-replica lists from ``topics``."""
    resources = [_broker(b, dict.fromkeys(THROTTLE_RATE_KEYS)) for b in sorted(set(brokers))]
    resources += [_topic(t, dict.fromkeys(THROTTLE_REPLICA_KEYS)) for t in sorted(set(topics))]
    _alter_configs(cluster, resources, timeout)


def throttles_in_force(
    cluster: ClusterProfile | str, brokers: Iterable[int], topics: Iterable[str], *, timeout: float = 30.0
) -> dict[str, dict[str, str]]:
    """The throttle configs set on ``brokers`` and ``topics``: ``{"broker 1": {key: value}, "topic t": {...}}``.

    Only resources with a throttle appear; an empty result means nothing is throttled.
    """
    admin = admin_client(cluster)
    wanted = [ConfigResource(ResourceType.BROKER, str(b)) for b in sorted(set(brokers))]
    wanted += [ConfigResource(ResourceType.TOPIC, t) for t in sorted(set(topics))]
    found: dict[str, dict[str, str]] = {}
    futures = [f for batch in _per_call(wanted) for f in admin.describe_configs(batch, request_timeout=timeout).items()]
    for res, fut in futures:  # all requests in flight at once
        keys = THROTTLE_RATE_KEYS if res.restype == ResourceType.BROKER else THROTTLE_REPLICA_KEYS
        try:
            entries = fut.result(timeout=timeout)
        except KafkaException as exc:
            raise ThrottleError(f"cannot describe {_name(res)}: {exc.args[0].str()}") from None
        except Exception as exc:  # noqa: BLE001 - timeouts
            raise ThrottleError(f"cannot describe {_name(res)}: {exc}") from None
        set_here = {k: str(e.value) for k in keys if (e := entries.get(k)) is not None and not e.is_default and e.value}
        if set_here:
            found[_name(res)] = set_here
    return found


def _broker(broker: int, values: Mapping[str, str | None]) -> ConfigResource:
    return ConfigResource(ResourceType.BROKER, str(broker), incremental_configs=_entries(values))


def _topic(topic: str, values: Mapping[str, str | None]) -> ConfigResource:
    return ConfigResource(ResourceType.TOPIC, topic, incremental_configs=_entries(values))


def _entries(values: Mapping[str, str | None]) -> list[ConfigEntry]:
    """SET for a value, DELETE for None."""
    return [
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.DELETE if v is None else AlterConfigOpType.SET)
        for k, v in values.items()
    ]


def _name(res: ConfigResource) -> str:
    return f"{res.restype.name.lower()} {res.name}"


def _per_call(resources: list[ConfigResource]) -> list[list[ConfigResource]]:
    """Requests librdkafka accepts: one broker resource per call, every topic resource in one."""
    brokers = [[r] for r in resources if r.restype == ResourceType.BROKER]
    others = [r for r in resources if r.restype != ResourceType.BROKER]
    return brokers + ([others] if others else [])


def _alter_configs(cluster: ClusterProfile | str, resources: list[ConfigResource], timeout: float) -> None:
    """Apply incremental config changes; librdkafka takes one broker resource per call."""
    if not resources:
        return
    admin = admin_client(cluster)
    failures = []
    futures = [
        f for batch in _per_call(resources) for f in admin.incremental_alter_configs(batch, request_timeout=timeout).items()
    ]
    for res, fut in futures:  # all requests in flight at once
        try:
            fut.result(timeout=timeout)
        except KafkaException as exc:
            failures.append(f"{_name(res)}: {exc.args[0].str()}")
        except Exception as exc:  # noqa: BLE001 - timeouts
            failures.append(f"{_name(res)}: {exc}")
    if failures:
        raise ThrottleError("cannot alter configs: " + "; ".join(failures))
    log.info("throttle configs altered: %s", ", ".join(_name(r) for r in resources))

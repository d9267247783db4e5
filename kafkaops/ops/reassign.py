"""Partition reassignment, replication throttles and preferred leader election.

Small typed primitives over the Admin API, shared by the FailoverPolicy
(``ops/failover.py``) and the playbook actions (``ops/actions.py``):

- :func:`submit_reassignments` / :func:`cancel_reassignments` /
  :func:`list_reassignments` / :func:`wait_reassignments`: KIP-455 partition
  reassignment. confluent-kafka has no API for it, so these use kafka-python's
  ``KafkaAdminClient.alter_partition_reassignments`` and
  ``list_partition_reassignments``. Kafka adds the new replicas first and drops
  the removed ones only once the new ones are in sync, so a reassignment that
  replaces a dead replica never shrinks the ISR by itself.
- :func:`set_throttle` / :func:`clear_throttle`: the replication throttle that
  ``kafka-reassign-partitions.sh --throttle`` sets (broker configs
  ``leader.replication.throttled.rate`` / ``follower.replication.throttled.rate``
  and topic configs ``leader.replication.throttled.replicas`` /
  ``follower.replication.throttled.replicas``), through confluent-kafka's
  ``incremental_alter_configs``. Kafka never throttles replicas that are in sync,
  so a throttle cannot push an in-sync follower out of the ISR.
- :func:`elect_preferred_leaders`: confluent-kafka ``AdminClient.elect_leaders``.

Partitions are ``(topic, partition)`` tuples throughout; results map each
partition to ``None`` (accepted) or an error string.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import ElectionType, KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, not in __all__
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from kafkaops.admin import admin_client
from kafkaops.errors import KafkaopsError

log = logging.getLogger(__name__)

TP = tuple[str, int]
"""A topic partition: (topic, partition)."""
T = TypeVar("T")

THROTTLE_RATE_KEYS = ("leader.replication.throttled.rate", "follower.replication.throttled.rate")
THROTTLE_REPLICA_KEYS = ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas")


class ReassignError(KafkaopsError):
    """A reassignment, throttle or leader election request failed as a whole."""


@dataclass(frozen=True)
class Reassignment:
    """An ongoing reassignment of one partition, as the controller reports it."""

    topic: str
    partition: int
    replicas: tuple[int, ...]
    adding: tuple[int, ...]
    removing: tuple[int, ...]


def _kp_call(bootstrap_servers: str, timeout: float, what: str, call: Callable[[Any], T]) -> T:
    """Run ``call(KafkaAdminClient)``, retrying connection failures with a fresh client.

    kafka-python fails a request with ECONNREFUSED when it picks a dead broker
    (a bootstrap address, or one its metadata still names); this retries with a
    fresh client and the bootstrap list rotated until ``timeout`` seconds have
    passed. Pass live brokers first when you know them.
    """
    from kafka.admin import KafkaAdminClient  # kafka-python: only for the reassignment API
    from kafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError

    servers = [s.strip() for s in bootstrap_servers.split(",") if s.strip()]
    if not servers:
        raise ReassignError(f"{what}: no bootstrap servers given")
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    attempt = 0
    while attempt < 3 or time.monotonic() < deadline:
        rotated = servers[attempt % len(servers):] + servers[: attempt % len(servers)]
        attempt += 1
        try:
            client = KafkaAdminClient(
                bootstrap_servers=rotated,
                client_id="kafkaops-reassign",
                request_timeout_ms=int(timeout * 1000),
            )
        except Exception as exc:  # noqa: BLE001 - kafka-python raises many kinds here
            last = exc
            time.sleep(0.3)
            continue
        try:
            return call(client)
        except (KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError) as exc:
            last = exc  # e.g. its metadata still names a dead broker: a fresh client retries
            log.info("%s: %s (attempt %d)", what, exc, attempt)
            time.sleep(0.3)
        except Exception as exc:  # noqa: BLE001
            raise ReassignError(f"{what} failed: {type(exc).__name__}: {exc}") from None
        finally:
            client.close()
    raise ReassignError(f"{what} failed: cannot reach {bootstrap_servers}: {last}")


def _error_name(err: Any) -> str | None:
    if err is None:
        return None
    return getattr(err, "__name__", None) or type(err).__name__


def submit_reassignments(
    bootstrap_servers: str, targets: Mapping[TP, Sequence[int]], *, timeout: float = 30.0
) -> dict[TP, str | None]:
    """Ask the controller to move each partition to its target replica list.

    The first broker of a target list is the partition's preferred leader. Returns
    ``{tp: None}`` for accepted partitions and ``{tp: error name}`` otherwise.
    """
    if not targets:
        return {}
    for tp, replicas in targets.items():
        if not replicas or len(set(replicas)) != len(replicas):
            raise ReassignError(f"{tp[0]}[{tp[1]}]: target replicas {list(replicas)} must be distinct and non-empty")
    return _alter(bootstrap_servers, {tp: list(r) for tp, r in targets.items()}, timeout)


def cancel_reassignments(bootstrap_servers: str, partitions: Iterable[TP], *, timeout: float = 30.0) -> dict[TP, str | None]:
    """Cancel ongoing reassignments (replica sets revert to what they were)."""
    return _alter(bootstrap_servers, {tp: None for tp in partitions}, timeout)


def _alter(bootstrap_servers: str, targets: dict[TP, list[int] | None], timeout: float) -> dict[TP, str | None]:
    from kafka.structs import TopicPartition as KpTopicPartition

    if not targets:
        return {}
    request = {KpTopicPartition(t, p): r for (t, p), r in targets.items()}
    raw = _kp_call(
        bootstrap_servers,
        timeout,
        "partition reassignment request",
        lambda c: c.alter_partition_reassignments(request, timeout_ms=int(timeout * 1000)),
    )
    result: dict[TP, str | None] = {tp: "NO_RESPONSE" for tp in targets}
    for ktp, err in raw.items():
        result[(ktp.topic, ktp.partition)] = _error_name(err)
    log.info("reassignment request %s -> %s", targets, result)
    return result


def list_reassignments(
    bootstrap_servers: str, partitions: Iterable[TP] | None = None, *, timeout: float = 30.0
) -> dict[TP, Reassignment]:
    """Ongoing reassignments (all, or of the given partitions)."""
    from kafka.structs import TopicPartition as KpTopicPartition

    tps = None if partitions is None else [KpTopicPartition(t, p) for t, p in partitions]
    raw = _kp_call(
        bootstrap_servers,
        timeout,
        "listing partition reassignments",
        lambda c: c.list_partition_reassignments(tps, timeout_ms=int(timeout * 1000)),
    )
    return {
        (k.topic, k.partition): Reassignment(
            k.topic,
            k.partition,
            tuple(v["replicas"]),
            tuple(v["adding_replicas"]),
            tuple(v["removing_replicas"]),
        )
        for k, v in raw.items()
    }


def wait_reassignments(
    bootstrap_servers: str, partitions: Iterable[TP], *, timeout: float = 300.0, poll: float = 1.0
) -> None:
    """Block until none of the partitions has an ongoing reassignment."""
    wanted = set(partitions)
    deadline = time.monotonic() + timeout
    while wanted:
        ongoing = set(list_reassignments(bootstrap_servers, wanted))
        if not ongoing:
            return
        if time.monotonic() > deadline:
            raise ReassignError(f"reassignment of {sorted(ongoing)} still running after {timeout:.0f}s")
        time.sleep(poll)


def throttled_replicas(moves: Mapping[TP, tuple[Sequence[int], Sequence[int]]]) -> tuple[dict[str, str], dict[str, str]]:
    """The topic throttle lists for moves ``{tp: (current replicas, target replicas)}``.

    As ``kafka-reassign-partitions.sh`` does: the leader throttle covers the
    current replicas (the ones that may serve the copy), the follower throttle the
    replicas being added. Returns (leader lists, follower lists), each
    ``{topic: "partition:broker,..."}``.
    """
    leader: dict[str, list[str]] = defaultdict(list)
    follower: dict[str, list[str]] = defaultdict(list)
    for (topic, partition), (current, target) in sorted(moves.items()):
        leader[topic].extend(f"{partition}:{b}" for b in current)
        follower[topic].extend(f"{partition}:{b}" for b in target if b not in current)
    return ({t: ",".join(v) for t, v in leader.items()}, {t: ",".join(v) for t, v in follower.items() if v})


def set_throttle(
    bootstrap_servers: str,
    rate_bytes_per_sec: int,
    brokers: Iterable[int],
    moves: Mapping[TP, tuple[Sequence[int], Sequence[int]]],
    *,
    timeout: float = 30.0,
) -> None:
    """Throttle the replication traffic of ``moves`` to ``rate_bytes_per_sec`` per broker."""
    if rate_bytes_per_sec <= 0:
        raise ReassignError(f"throttle rate must be positive, not {rate_bytes_per_sec}")
    leader, follower = throttled_replicas(moves)
    resources: list[ConfigResource] = []
    for b in sorted(set(brokers)):
        resources.append(
            ConfigResource(
                ResourceType.BROKER,
                str(b),
                incremental_configs=[
                    ConfigEntry(k, str(rate_bytes_per_sec), incremental_operation=AlterConfigOpType.SET)
                    for k in THROTTLE_RATE_KEYS
                ],
            )
        )
    for topic in sorted(set(leader) | set(follower)):
        entries = [ConfigEntry(THROTTLE_REPLICA_KEYS[0], leader[topic], incremental_operation=AlterConfigOpType.SET)]
        if topic in follower:
            entries.append(
                ConfigEntry(THROTTLE_REPLICA_KEYS[1], follower[topic], incremental_operation=AlterConfigOpType.SET)
            )
        resources.append(ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries))
    _alter_configs(bootstrap_servers, resources, timeout)


def clear_throttle(bootstrap_servers: str, brokers: Iterable[int], topics: Iterable[str], *, timeout: float = 30.0) -> None:
    """Remove the throttle rates from brokers and the throttled-replica lists from topics."""
    resources = [
        ConfigResource(
            ResourceType.BROKER,
            str(b),
            incremental_configs=[ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE) for k in THROTTLE_RATE_KEYS],
        )
        for b in sorted(set(brokers))
    ] + [
        ConfigResource(
            ResourceType.TOPIC,
            t,
            incremental_configs=[ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE) for k in THROTTLE_REPLICA_KEYS],
        )
        for t in sorted(set(topics))
    ]
    _alter_configs(bootstrap_servers, resources, timeout)


def _alter_configs(bootstrap_servers: str, resources: list[ConfigResource], timeout: float) -> None:
    """Apply incremental config changes; librdkafka takes one broker resource per call."""
    if not resources:
        return
    admin = admin_client(bootstrap_servers)
    brokers = [r for r in resources if r.restype == ResourceType.BROKER]
    others = [r for r in resources if r.restype != ResourceType.BROKER]
    batches = [[b] for b in brokers] + ([others] if others else [])
    failures = []
    futures = [f for batch in batches for f in admin.incremental_alter_configs(batch, request_timeout=timeout).items()]
    for res, fut in futures:  # all requests in flight at once
        try:
            fut.result(timeout=timeout)
        except KafkaException as exc:
            failures.append(f"{res.restype.name.lower()} {res.name}: {exc.args[0].str()}")
        except Exception as exc:  # noqa: BLE001 - timeouts
            failures.append(f"{res.restype.name.lower()} {res.name}: {exc}")
    if failures:
        raise ReassignError("cannot alter configs: " + "; ".join(failures))


def elect_preferred_leaders(
    bootstrap_servers: str, partitions: Iterable[TP] | None = None, *, timeout: float = 30.0
) -> dict[TP, str | None]:
    """Make each partition's first replica its leader again, where it is in sync.

    ``partitions=None`` means every partition. A partition already led by its
    preferred replica counts as success (None); others map to the error text.
    """
    admin = admin_client(bootstrap_servers)
    tps = None if partitions is None else [TopicPartition(t, p) for t, p in partitions]
    if tps == []:
        return {}
    try:
        # no timeout kwargs: confluent-kafka 2.16's binding rejects them (SystemError)
        raw = admin.elect_leaders(ElectionType.PREFERRED, tps).result(timeout=timeout)
    except KafkaException as exc:
        raise ReassignError(f"preferred leader election failed: {exc.args[0].str()}") from None
    except Exception as exc:  # noqa: BLE001 - timeouts
        raise ReassignError(f"preferred leader election failed: {exc}") from None
    result: dict[TP, str | None] = {}
    for tp, err in raw.items():
        if err is None:
            result[(tp.topic, tp.partition)] = None
            continue
        kerr: Any = err.args[0] if isinstance(err, KafkaException) and err.args else err
        name = str(kerr.name()) if hasattr(kerr, "name") else str(kerr)
        result[(tp.topic, tp.partition)] = None if name == "ELECTION_NOT_NEEDED" else name
    return result

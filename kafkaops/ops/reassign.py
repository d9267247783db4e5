"""Partition reassignment, preferred leader election, and the one pipeline that moves replicas.

The pipeline, shared by the FailoverPolicy and the playbook actions:
throttle -> submit -> wait -> clear the throttle -> (optionally) elect preferred leaders,
the throttle cleared whatever happens. :func:`execute` runs it blocking; the policy,
which must not block, runs :func:`start` and later :func:`finish` around its own polls.

KIP-455 reassignment has no confluent-kafka API, so :func:`submit_reassignments`,
:func:`cancel_reassignments` and :func:`list_reassignments` use kafka-python's
``KafkaAdminClient`` (configured by the ClusterProfile). Kafka adds the new replicas
first and drops the removed ones only once the new ones are in sync, so a move that
replaces a dead replica never shrinks the ISR by itself. Results map each partition to
``None`` (accepted) or an error name.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from confluent_kafka import ElectionType, KafkaException, TopicPartition

from kafkaops.admin import admin_client
from kafkaops.config import ClusterProfile, as_profile
from kafkaops.errors import KafkaopsError
from kafkaops.ops.health import ClusterHealth
from kafkaops.ops.placement import Move
from kafkaops.ops.throttle import ThrottleError, clear_throttle, set_throttle
from kafkaops.types import TP
from kafkaops.waits import Deadline, WaitTimeout, wait_until

log = logging.getLogger(__name__)

T = TypeVar("T")
Cluster = ClusterProfile | str


class ReassignError(KafkaopsError):
    """A reassignment or leader election request failed as a whole, or did not finish in time."""


@dataclass(frozen=True)
class Reassignment:
    """An ongoing reassignment of one partition, as the controller reports it."""

    topic: str
    partition: int
    replicas: tuple[int, ...]
    adding: tuple[int, ...]
    removing: tuple[int, ...]


# ---------------------------------------------------------------------- the Admin API calls
def live_first(cluster: Cluster, health: ClusterHealth) -> ClusterProfile:
    """The profile with live brokers' addresses first and dead ones left out (kafka-python
    may insist on a dead bootstrap broker)."""
    profile = as_profile(cluster)
    live = [f"{b.host}:{b.port}" for b in health.brokers.values() if b.alive and b.host and b.port]
    dead = {f"{b.host}:{b.port}" for b in health.brokers.values() if not b.alive and b.host and b.port}
    rest = [s for s in profile.bootstrap_servers.split(",") if s not in live and s not in dead]
    return profile.with_bootstrap(",".join(live + rest) or profile.bootstrap_servers)


def _kp_call(cluster: Cluster, timeout: float, what: str, call: Callable[[Any], T]) -> T:
    """Run ``call(KafkaAdminClient)``, retrying connection failures with a fresh client.

    kafka-python fails a request with ECONNREFUSED when it picks a dead broker (a
    bootstrap address, or one its metadata still names); this retries with a fresh
    client and the bootstrap list rotated until ``timeout`` seconds have passed. Pass
    live brokers first when you know them.
    """
    from kafka.admin import KafkaAdminClient  # kafka-python: only for the reassignment API
    from kafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError

    profile = as_profile(cluster)
    servers = [s.strip() for s in profile.bootstrap_servers.split(",") if s.strip()]
    deadline = Deadline(timeout)
    last: Exception | None = None
    attempt = 0
    while attempt < 3 or not deadline.expired:
        shift = attempt % len(servers)
        attempt += 1
        rotated = profile.with_bootstrap(",".join(servers[shift:] + servers[:shift]))
        try:
            client = KafkaAdminClient(
                **rotated.kafka_python(client_id="kafkaops-reassign", request_timeout_ms=int(timeout * 1000))
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
    raise ReassignError(f"{what} failed: cannot reach {profile.bootstrap_servers}: {last}")


def _error_name(err: Any) -> str | None:
    if err is None:
        return None
    return getattr(err, "__name__", None) or type(err).__name__


def submit_reassignments(cluster: Cluster, targets: Mapping[TP, Sequence[int]], *, timeout: float = 30.0) -> dict[TP, str | None]:
    """Ask the controller to move each partition to its target replica list (first = preferred leader)."""
    for tp, replicas in targets.items():
        if not replicas or len(set(replicas)) != len(replicas):
            raise ReassignError(f"{tp[0]}[{tp[1]}]: target replicas {list(replicas)} must be distinct and non-empty")
    return _alter(cluster, {tp: list(r) for tp, r in targets.items()}, timeout)


def cancel_reassignments(cluster: Cluster, partitions: Iterable[TP], *, timeout: float = 30.0) -> dict[TP, str | None]:
    """Cancel ongoing reassignments (replica sets revert to what they were)."""
    return _alter(cluster, {tp: None for tp in partitions}, timeout)


def _alter(cluster: Cluster, targets: dict[TP, list[int] | None], timeout: float) -> dict[TP, str | None]:
    from kafka.structs import TopicPartition as KpTopicPartition

    if not targets:
        return {}
    request = {KpTopicPartition(t, p): r for (t, p), r in targets.items()}
    raw = _kp_call(
        cluster, timeout, "partition reassignment request",
        lambda c: c.alter_partition_reassignments(request, timeout_ms=int(timeout * 1000)),
    )
    result: dict[TP, str | None] = {tp: "NO_RESPONSE" for tp in targets}
    for ktp, err in raw.items():
        result[(ktp.topic, ktp.partition)] = _error_name(err)
    log.info("reassignment request %s -> %s", targets, result)
    return result


def list_reassignments(cluster: Cluster, partitions: Iterable[TP] | None = None, *, timeout: float = 30.0) -> dict[TP, Reassignment]:
    """Ongoing reassignments (all, or of the given partitions)."""
    from kafka.structs import TopicPartition as KpTopicPartition

    tps = None if partitions is None else [KpTopicPartition(t, p) for t, p in partitions]
    raw = _kp_call(
        cluster, timeout, "listing partition reassignments",
        lambda c: c.list_partition_reassignments(tps, timeout_ms=int(timeout * 1000)),
    )
    return {
        (k.topic, k.partition): Reassignment(
            k.topic, k.partition, tuple(v["replicas"]), tuple(v["adding_replicas"]), tuple(v["removing_replicas"])
        )
        for k, v in raw.items()
    }


def wait_reassignments(cluster: Cluster, partitions: Iterable[TP], *, timeout: float = 300.0, poll: float = 1.0) -> None:
    """Block until none of the partitions has an ongoing reassignment; ReassignError after ``timeout``."""
    wanted = set(partitions)
    if not wanted:
        return
    ongoing: set[TP] = set()

    def finished() -> bool:
        ongoing.clear()
        ongoing.update(list_reassignments(cluster, wanted))
        return not ongoing

    try:
        wait_until(finished, timeout, "reassignments to finish", interval=poll)
    except WaitTimeout:
        raise ReassignError(f"reassignment of {sorted(ongoing)} still running after {timeout:.0f}s") from None


def elect_preferred_leaders(cluster: Cluster, partitions: Iterable[TP] | None = None, *, timeout: float = 30.0) -> dict[TP, str | None]:
    """Make each partition's first replica its leader again, where it is in sync.

    ``partitions=None`` means every partition. A partition already led by its preferred
    replica counts as success (None); others map to the error name.
    """
    tps = None if partitions is None else [TopicPartition(t, p) for t, p in partitions]
    if tps == []:
        return {}
    admin = admin_client(cluster)  # held until the result is in: a collected client fails its futures
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


# ---------------------------------------------------------------------- the pipeline
@dataclass(frozen=True)
class Batch:
    """Partition moves submitted together, and the replication throttle they run under."""

    moves: Mapping[TP, Move]
    throttle: int = 0
    """Bytes/s per broker; 0 = unthrottled."""
    brokers: tuple[int, ...] = ()
    """The brokers whose replication rate the throttle sets (the live ones the moves touch)."""

    @classmethod
    def plan(cls, moves: Mapping[TP, Move], throttle: int, live: Iterable[int]) -> Batch:
        touched = {b for m in moves.values() for b in (*m.current, *m.target)}
        brokers = tuple(sorted(touched & set(live))) if throttle > 0 else ()
        return cls(dict(moves), max(throttle, 0), brokers)

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(sorted({t for t, _ in self.moves}))

    def to_json(self) -> dict[str, Any]:
        return {
            "moves": [{"topic": t, "partition": p, "from": list(m.current), "to": list(m.target)}
                      for (t, p), m in sorted(self.moves.items())],
            "throttle": self.throttle,
            "brokers": list(self.brokers),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Batch:
        moves = {(str(m["topic"]), int(m["partition"])): Move(tuple(m["from"]), tuple(m["to"])) for m in doc["moves"]}
        return cls(moves, int(doc.get("throttle", 0)), tuple(int(b) for b in doc.get("brokers", ())))


@dataclass(frozen=True)
class Started:
    """What :func:`start` achieved: partitions the controller refused, and a throttle failure if any."""

    refused: dict[TP, str] = field(default_factory=dict)
    throttle_error: str | None = None


@dataclass(frozen=True)
class Finished:
    """What :func:`finish` achieved: a failure to clear the throttle, and each partition's election."""

    throttle_error: str | None = None
    elected: dict[TP, str | None] = field(default_factory=dict)
    election_error: str | None = None


def _throttle_scope(batches: Iterable[Batch]) -> tuple[set[int], set[str]]:
    brokers: set[int] = set()
    topics: set[str] = set()
    for b in batches:
        if b.throttle > 0:
            brokers.update(b.brokers)
            topics.update(b.topics)
    return brokers, topics


def start(cluster: Cluster, batch: Batch, *, in_flight: Sequence[Batch] = (), must_throttle: bool = True) -> Started:
    """Throttle, then submit ``batch``. ``in_flight``: batches already running, whose throttle stays.

    If the throttle cannot be set, ReassignError (nothing submitted) unless not
    ``must_throttle`` (then the moves run unthrottled and :attr:`Started.throttle_error`
    says why). If the submission fails as a whole, or every partition is refused, the
    throttle this batch set is cleared again.
    """
    throttle_error = None
    if batch.throttle > 0 and batch.moves:
        everything = {tp: m for b in (*in_flight, batch) for tp, m in b.moves.items()}
        try:
            set_throttle(cluster, batch.throttle, batch.brokers, everything)
        except ThrottleError as exc:
            if must_throttle:
                _clear_quietly(cluster, batch, in_flight)
                raise ReassignError(f"cannot set the replication throttle: {exc}") from None
            throttle_error = str(exc)
    try:
        result = submit_reassignments(cluster, {tp: m.target for tp, m in batch.moves.items()})
    except BaseException:
        _clear_quietly(cluster, batch, in_flight)
        raise
    refused = {tp: err for tp, err in result.items() if err}
    if batch.moves and len(refused) == len(batch.moves):
        _clear_quietly(cluster, batch, in_flight)
    return Started(refused, throttle_error)


def finish(
    cluster: Cluster, batches: Sequence[Batch], *, live: Iterable[int], clear: bool = True, elect: bool = True
) -> Finished:
    """Clear the throttle of finished ``batches`` (on the live brokers), then elect their preferred leaders."""
    brokers, topics = _throttle_scope(batches) if clear else (set(), set())
    throttle_error = None
    if brokers or topics:
        try:
            clear_throttle(cluster, brokers & set(live), topics)
        except ThrottleError as exc:
            throttle_error = str(exc)
    if not elect:
        return Finished(throttle_error)
    partitions = sorted({tp for b in batches for tp in b.moves})
    try:
        elected = elect_preferred_leaders(cluster, partitions)
    except ReassignError as exc:
        return Finished(throttle_error, {}, str(exc))
    return Finished(throttle_error, elected)


def _clear_quietly(cluster: Cluster, batch: Batch, in_flight: Sequence[Batch]) -> None:
    """Clear what ``batch`` throttled and no batch in flight still needs; log a failure."""
    brokers, topics = _throttle_scope([batch])
    keep_brokers, keep_topics = _throttle_scope(in_flight)
    try:
        clear_throttle(cluster, brokers - keep_brokers, topics - keep_topics)
    except ThrottleError as exc:
        log.warning("could not clear the replication throttle: %s", exc)


def execute(
    cluster: Cluster,
    moves: Mapping[TP, Move],
    *,
    throttle: int,
    live: Iterable[int],
    timeout: float = 600.0,
    poll: float = 1.0,
    elect: bool = False,
    progress: Callable[[str], None] = lambda _msg: None,
) -> Finished:
    """Run the whole pipeline for ``moves`` and block until done; ReassignError if any step fails.

    The throttle is cleared whatever happens (a failure to clear is raised unless an
    earlier failure is being raised); preferred leaders are elected only after success.
    """
    live = set(live)
    batch = Batch.plan({tp: m for tp, m in moves.items() if m.current != m.target}, throttle, live)
    if not batch.moves:
        return Finished()
    started = start(cluster, batch)
    finished = Finished()
    try:
        if started.refused:
            sample = ", ".join(f"{t}[{p}]: {e}" for (t, p), e in list(started.refused.items())[:5])
            raise ReassignError(f"reassignment refused for {len(started.refused)} partition(s): {sample}")
        progress(f"moving {len(batch.moves)} partition(s)" + (f", throttled to {throttle} B/s" if throttle > 0 else ""))
        wait_reassignments(cluster, list(batch.moves), timeout=timeout, poll=poll)
    finally:
        cleared = finish(cluster, [batch], live=live, elect=False)
        if cleared.throttle_error:
            log.warning("replication throttle not cleared: %s", cleared.throttle_error)
    if cleared.throttle_error:
        raise ReassignError(f"replicas moved, but the throttle is still set: {cleared.throttle_error}")
    if elect:
        finished = finish(cluster, [batch], live=live, clear=False, elect=True)
    return finished

"""The balance bench's scenarios on a real cluster: healthy, keyed, a paused broker, a killed leader.

Every scenario runs ``rounds`` rounds; the contestants' order rotates every round (who
starts first, or whose thread starts first) and each figure is the median of the rounds.

- ``healthy``: records without a key as fast as possible, ``messages`` per contestant, one
  contestant after the other.
- ``keyed``: the same with 10,000 distinct keys, ``key-hash`` against librdkafka's
  ``murmur2_random``; the placements must be identical.
- ``paused``: all contestants at once, each at a fixed rate on its own topic, while one
  broker is frozen with SIGSTOP for 1 s in every 3 s (a GC pause or a hung disk), ``acks=1``
  and no idempotence so that only the leader's responsiveness counts. ``paused-acks-all``:
  the same with the no-loss defaults, so the paused broker (a follower of every partition)
  holds back every write.
- ``leader-kill``: all contestants at once, ``acks=all`` + idempotence; a leader (not the
  controller) is SIGKILLed mid-run and restarted afterwards; the topics are read back to
  count lost records.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import Consumer, TopicPartition

from kafkaops.admin import admin_client, create_topic
from kafkaops.apps.bench.balance_driver import PARTITIONS, STRATEGIES, WARM_UP, Driver, StrategyRun, rotated
from kafkaops.config import ClusterProfile
from kafkaops.waits import Deadline, wait_until

log = logging.getLogger(__name__)


class BalanceCluster(Protocol):
    """What the bench needs of a cluster it may break (``LocalCluster``, ``ContainerCluster``)."""

    @property
    def profile(self) -> ClusterProfile: ...

    def pause_broker(self, broker_id: int) -> None: ...
    def resume_broker(self, broker_id: int) -> None: ...
    def kill_broker(self, broker_id: int) -> None: ...
    def start_broker(self, broker_id: int, wait: bool = True, timeout: float = 90.0) -> None: ...
    def controller_id(self) -> int | None: ...


def create_topics(cluster: ClusterProfile, count: int, prefix: str) -> list[str]:
    names = [f"{prefix}-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    for name in names:
        create_topic(cluster, name, PARTITIONS, 3)
    return names


def delete_topics(cluster: ClusterProfile, topics: Sequence[str]) -> None:
    if not topics:
        return
    admin = admin_client(cluster)  # keep the client alive until its futures resolve
    try:
        for f in admin.delete_topics(list(topics), operation_timeout=30).values():
            f.result(timeout=30)
    except Exception as exc:  # noqa: BLE001 - cleanup is best effort
        log.warning("bench topics not deleted: %s", exc)


def topic_leaders(cluster: ClusterProfile | str, topic: str, partitions: int = PARTITIONS,
                  timeout: float = 30.0) -> tuple[int, ...]:
    """Leader per partition, once metadata shows every partition with a leader."""
    admin = admin_client(cluster)

    def leaders() -> tuple[int, ...]:  # () until every partition has one
        md = admin.list_topics(topic, timeout=10).topics.get(topic)
        if md is None or md.error is not None or len(md.partitions) != partitions:
            return ()
        found = tuple(md.partitions[p].leader for p in range(partitions))
        return found if min(found) >= 0 else ()

    return wait_until(leaders, timeout, f"a leader for every partition of {topic}")


def _victim(cluster: BalanceCluster, leaders: tuple[int, ...]) -> int:
    """A broker that leads partitions and is not the controller."""
    controller = cluster.controller_id()
    candidates = sorted({b for b in leaders if b >= 0 and b != controller}) or sorted(set(leaders))
    return candidates[0]


def _read_back(cluster: ClusterProfile, topic: str, timeout: float = 60.0) -> set[int]:
    """Sequence numbers of the records in ``topic`` (read from the beginning to the end offsets)."""
    consumer = Consumer(cluster.librdkafka(**{
        "group.id": f"bench-balance-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "logger": log,
    }))
    seen: set[int] = set()
    try:
        ends = {}
        for p in range(PARTITIONS):
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        done = {p for p, high in ends.items() if high == 0}
        deadline = Deadline(timeout)
        while len(done) < PARTITIONS and not deadline.expired:
            for msg in consumer.consume(1000, 1.0):
                if msg.error() is not None:
                    continue
                value, offset, partition = msg.value(), msg.offset(), msg.partition()
                if value is not None:
                    seen.add(int(value[:10]))
                if offset is not None and partition is not None and offset + 1 >= ends[partition]:
                    done.add(partition)
    finally:
        consumer.close()
    return seen


def _run_threads(drivers: Sequence[Driver], target: Callable[[Driver], None]) -> None:
    threads = [threading.Thread(target=target, args=(d,), name=f"bench-{d.run.strategy}") for d in drivers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _warm_drivers(cluster: ClusterProfile, topics: dict[str, str], order: Sequence[str], acks: str,
                  timeline: bool = False) -> tuple[list[Driver], float]:
    """A warmed-up Driver per contestant (in ``order``) on its topic, and the start time they
    share (``perf_counter``, half a second ahead)."""
    drivers = []
    for strategy in order:
        d = Driver(strategy, cluster, topics[strategy], acks, 0.0)
        d.timeline = timeline
        d.warm_up()
        drivers.append(d)
    start = time.perf_counter() + 0.5
    for d in drivers:
        d.t0 = start
    return drivers, start


def _paced_while(drivers: Sequence[Driver], rate: float, duration: float, start: float,
                 disturb: Callable[[], None], name: str, stop: threading.Event | None = None) -> None:
    """Every driver at ``rate`` records/s from ``start`` for ``duration`` s, while ``disturb``
    (pausing or killing a broker) runs on a thread of its own; ``stop`` ends it afterwards."""
    disturber = threading.Thread(target=disturb, name=name)
    disturber.start()
    try:
        _run_threads(drivers, lambda d: d.paced(rate, duration, start))
    finally:
        if stop is not None:
            stop.set()
        disturber.join()


def sequential(cluster: BalanceCluster, contestants: Sequence[str], messages: int, rounds: int = 3,
               linger_ms: float = 5, keyed: bool = False, prefix: str = "balance-healthy",
               settle_s: float = 1.0) -> dict[str, list[StrategyRun]]:
    """Throughput: each contestant alone, ``messages`` records as fast as possible, the order
    rotated every round (:func:`rotated`), ``settle_s`` of quiet before each; every contestant
    gets the same settings (and keys, if ``keyed``)."""
    profile = cluster.profile
    names = create_topics(profile, len(contestants), prefix)
    topics = dict(zip(contestants, names, strict=True))
    runs: dict[str, list[StrategyRun]] = {s: [] for s in contestants}
    try:
        for r in range(max(1, rounds)):
            for strategy in rotated(contestants, r):
                time.sleep(settle_s)  # the brokers finish the previous contestant's work first
                d = Driver(strategy, profile, topics[strategy], "all", time.perf_counter(), seed=r + 1,
                           linger_ms=linger_ms, keyed=keyed)
                try:
                    d.warm_up()
                    d.burst(messages)
                finally:
                    d.close()
                runs[strategy].append(d.run)
    finally:
        delete_topics(profile, names)
    return runs


@dataclass
class PausedResult:
    """One round of the paused scenario."""

    runs: dict[str, StrategyRun]
    broker: int
    paused_partitions: dict[str, list[int]]
    pauses: list[tuple[float, float]]
    duration: float

    def share_during_pauses(self, strategy: str) -> float:
        """Share of the records produced while the broker was paused that went to its partitions."""
        return self.runs[strategy].share(self.paused_partitions[strategy], self.pauses)


def paused(cluster: BalanceCluster, acks: str, rate: float = 500.0, duration: float = 12.0,
           order: Sequence[str] = STRATEGIES) -> PausedResult:
    """All contestants at ``rate`` each (threads started in ``order``) while one broker is
    paused 1 s in every 3 s."""
    profile = cluster.profile
    names = create_topics(profile, len(order), "balance-paused")
    topics = dict(zip(order, names, strict=True))
    leaders = {t: topic_leaders(profile, t) for t in names}
    broker = _victim(cluster, leaders[names[0]])
    pauses: list[tuple[float, float]] = []
    drivers: list[Driver] = []
    try:
        drivers, start = _warm_drivers(profile, topics, order, acks, timeline=True)
        stop = threading.Event()

        def pauser() -> None:
            offset = 1.0
            while offset + 1.0 <= duration and not stop.is_set():
                if stop.wait(max(0.0, start + offset - time.perf_counter())):
                    return
                cluster.pause_broker(broker)
                began = time.perf_counter() - start
                try:
                    stop.wait(1.0)
                finally:
                    cluster.resume_broker(broker)
                pauses.append((began, time.perf_counter() - start))
                offset += 3.0

        try:
            _paced_while(drivers, rate, duration, start, pauser, "bench-pauser", stop)
        finally:
            cluster.resume_broker(broker)
    finally:
        for d in drivers:
            d.close()
        delete_topics(profile, names)
    return PausedResult(
        runs={d.run.strategy: d.run for d in drivers},
        broker=broker,
        paused_partitions={d.run.strategy: [p for p, b in enumerate(leaders[d.topic]) if b == broker] for d in drivers},
        pauses=pauses,
        duration=duration,
    )


@dataclass
class KillResult:
    """One round of the leader-kill scenario."""

    runs: dict[str, StrategyRun]
    broker: int
    kill_at: float


def leader_kill(cluster: BalanceCluster, rate: float = 1000.0, duration: float = 16.0, kill_at: float = 3.0,
                order: Sequence[str] = STRATEGIES) -> KillResult:
    """All contestants at ``rate`` each (acks=all, idempotence); a leader is killed at ``kill_at``.
    A contestant recovers at the first acknowledgement of a record it produced after the kill
    to a partition the dead broker led (so after a new leader was elected for it)."""
    profile = cluster.profile
    names = create_topics(profile, len(order), "balance-kill")
    topics = dict(zip(order, names, strict=True))
    leaders = {t: topic_leaders(profile, t) for t in names}
    broker = _victim(cluster, leaders[names[0]])
    drivers: list[Driver] = []
    killed = False
    try:
        drivers, start = _warm_drivers(profile, topics, order, "all")

        def killer() -> None:
            nonlocal killed
            time.sleep(max(0.0, start + kill_at - time.perf_counter()))
            for d in drivers:
                d.watch = frozenset(p for p, b in enumerate(leaders[d.topic]) if b == broker)
            mark = time.perf_counter()
            cluster.kill_broker(broker)
            killed = True
            for d in drivers:
                d.mark = mark

        _paced_while(drivers, rate, duration, start, killer, "bench-killer")
        for d in drivers:
            found = _read_back(profile, d.topic)
            # warm-up records carry the first sequence numbers: count the run's own only
            d.run.lost = sum(1 for i in range(WARM_UP, WARM_UP + d.run.sent) if i not in found)
    finally:
        for d in drivers:
            d.close()
        if killed:
            cluster.start_broker(broker, wait=True)
        delete_topics(profile, names)
    return KillResult({d.run.strategy: d.run for d in drivers}, broker, kill_at)

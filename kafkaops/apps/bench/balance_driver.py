"""The balance bench's contestant: one producer with one partitioning strategy, and its run.

A :class:`Driver` produces numbered 100-byte records to one topic (as fast as possible or
at a fixed rate) and records what its delivery reports say in a :class:`StrategyRun`:
delivered, failed, latencies (librdkafka's ``Message.latency()``, produce() to
acknowledgement), records per partition and, when asked, when each was produced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from kafkaops.clients.partitioners import BasePartitioner, make_partitioner
from kafkaops.config import ClusterProfile, as_profile

log = logging.getLogger(__name__)

STRATEGIES = ("round-robin", "random", "least-loaded", "key-hash", "librdkafka")
PARTITIONS = 12
VALUE_SIZE = 100


def producer_config(cluster: ClusterProfile | str, acks: str, linger_ms: float = 5) -> dict[str, Any]:
    """Every contestant's librdkafka settings; ``acks=all`` comes with idempotence."""
    return as_profile(cluster).librdkafka(**{
        "logger": log,
        "acks": acks,
        "enable.idempotence": acks == "all",
        "linger.ms": linger_ms,
        "queue.buffering.max.messages": 500_000,
        "partitioner": "murmur2_random",
    })


def _value(i: int) -> bytes:
    return (b"%010d" % i).ljust(VALUE_SIZE, b".")


@dataclass
class StrategyRun:
    """One strategy's producer in one scenario and what its delivery reports said."""

    strategy: str
    topic: str
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    per_partition: list[int] = field(default_factory=lambda: [0] * PARTITIONS)
    timeline: list[tuple[float, int]] = field(default_factory=list)
    """(produce time relative to the scenario start, partition) of delivered records."""
    first_ok_after_mark: float | None = None
    lost: int | None = None

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        data = sorted(self.latencies)
        return data[min(len(data) - 1, int(q * len(data)))] * 1000.0

    def summary(self, paused_partitions: Sequence[int] | None = None, recovery: bool = False) -> dict[str, Any]:
        counts = self.per_partition
        low = min(counts)
        result: dict[str, Any] = {
            "messages": self.sent,
            "msgs_per_s": round(self.delivered / self.seconds, 1) if self.seconds > 0 else 0.0,
            "p50_ms": round(self.percentile(0.50), 2),
            "p99_ms": round(self.percentile(0.99), 2),
            "per_partition": list(counts),
            "max_min_ratio": round(max(counts) / low, 4) if low > 0 else None,
            "lost": self.lost if self.lost is not None else self.sent - self.delivered,
        }
        if paused_partitions is not None:
            total = sum(counts)
            result["paused_broker_share"] = round(sum(counts[p] for p in paused_partitions) / total, 4) if total else 0.0
        if recovery:
            result["recovery_s"] = None if self.first_ok_after_mark is None else round(self.first_ok_after_mark, 2)
        return result


class Driver:
    """One producer with one strategy; produces numbered 100-byte records to one topic."""

    def __init__(
        self, strategy: str, cluster: ClusterProfile | str, topic: str, acks: str, t0: float, seed: int = 1,
        linger_ms: float = 5,
    ) -> None:
        self.run = StrategyRun(strategy, topic)
        self.topic = topic
        self.t0 = t0
        self.mark: float | None = None  # e.g. the kill time (perf_counter)
        self.partitioner: BasePartitioner | None = None
        conf = producer_config(cluster, acks, linger_ms)
        if strategy != "librdkafka":
            kwargs: dict[str, Any] = {"refresh_interval_s": 1.0}
            if strategy in ("random", "key-hash", "least-loaded"):
                kwargs["seed"] = seed
            self.partitioner = make_partitioner(strategy, **kwargs)
            conf.update(self.partitioner.producer_config(500))
        self.producer = Producer(conf)
        if self.partitioner is not None:
            self.partitioner.bind(self.producer)
        self.keyed = strategy == "key-hash"
        self.timeline = False
        self._i = 0

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        run = self.run
        p = msg.partition() or 0  # None/-1 only for records that failed before partitioning
        lat = msg.latency() if err is None else None
        if err is None and lat is not None:
            run.delivered += 1
            run.latencies.append(lat)
            run.per_partition[p] += 1
            if self.timeline or self.mark is not None:
                now = time.perf_counter()
                sent_at = now - lat
                if self.timeline:
                    run.timeline.append((sent_at - self.t0, p))
                if self.mark is not None and sent_at > self.mark and run.first_ok_after_mark is None:
                    run.first_ok_after_mark = now - self.mark
        else:
            run.failed += 1
        if self.partitioner is not None:
            self.partitioner.on_delivery(self.topic, p, err, lat or 0.0)

    def produce_one(self) -> None:
        i = self._i
        key = b"%d" % i if self.keyed else None
        part = self.partitioner
        p = part.partition(self.topic, key) if part is not None else None
        value = _value(i)
        while True:
            try:
                self.producer.produce(self.topic, value, key, -1 if p is None else p, on_delivery=self._on_delivery)
                break
            except BufferError:
                self.producer.poll(0.05)
        self._i += 1
        self.run.sent += 1

    def burst(self, n: int) -> None:
        """``n`` records as fast as possible, then flush; ``seconds`` is the time to the last ack."""
        poll = self.producer.poll
        start = time.perf_counter()
        for j in range(n):
            self.produce_one()
            if not j & 1023:
                poll(0)
        self.flush()
        self.run.seconds = time.perf_counter() - start

    def paced(self, rate: float, duration: float, start: float) -> None:
        """``rate`` records/s from ``start`` (perf_counter) for ``duration`` seconds, then flush."""
        poll = self.producer.poll
        while time.perf_counter() < start:
            poll(0.001)
        sent = 0
        while True:
            elapsed = time.perf_counter() - start
            if elapsed >= duration:
                break
            due = int(elapsed * rate)
            while sent < due:
                self.produce_one()
                sent += 1
            poll(0.001)
        self.flush()
        self.run.seconds = time.perf_counter() - start

    def flush(self, timeout: float = 120.0) -> None:
        remaining = self.producer.flush(timeout)
        if remaining:
            log.warning("%s: %d records still in queue after %.0fs", self.run.strategy, remaining, timeout)

    def warm_up(self, n: int = 200) -> None:
        """Metadata and connections ready, then forget the warm-up records."""
        for _ in range(n):
            self.produce_one()
        self.flush(60)
        topic, t0, strategy = self.topic, self.t0, self.run.strategy
        self.run = StrategyRun(strategy, topic)
        self.t0 = t0

    def close(self) -> None:
        if self.partitioner is not None:
            self.partitioner.close()

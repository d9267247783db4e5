"""The balance bench's contestant: one producer with one partitioning strategy, and its run.

A :class:`Driver` produces numbered 100-byte records to one topic (as fast as possible or
at a fixed rate) and records what its delivery reports say in a :class:`StrategyRun`:
delivered, failed, latencies (librdkafka's ``Message.latency()``, produce() to the
delivery report), records per partition and, when asked, when each was produced.
Every contestant runs with TypedProducer's librdkafka settings (:data:`DEFAULT_CONFIG`),
``acks`` and ``linger.ms`` as the scenario says; a strategy's partitioner is bound to the
producer with that config, exactly as TypedProducer binds it.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from kafkaops.clients.partitioners import BasePartitioner, make_partitioner
from kafkaops.clients.producer import DEFAULT_CONFIG
from kafkaops.config import ClusterProfile, as_profile

log = logging.getLogger(__name__)

STRATEGIES = ("round-robin", "random", "least-loaded", "key-hash", "librdkafka")
UNBOUNDED_RR = "round-robin(max_skew=None)"
"""RoundRobin without its evenness bound: in the healthy and cost scenarios, to show what the bound costs."""


def contestant_partitioner(name: str, **kwargs: Any) -> BasePartitioner:
    """The partitioner of a contestant named by its strategy (or :data:`UNBOUNDED_RR`)."""
    if name == UNBOUNDED_RR:
        return make_partitioner("round-robin", max_skew=None, **kwargs)
    return make_partitioner(name, **kwargs)
PARTITIONS = 12
VALUE_SIZE = 100
WARM_UP = 200


def producer_config(cluster: ClusterProfile | str, acks: str, linger_ms: float = 5) -> dict[str, Any]:
    """Every contestant's librdkafka settings: TypedProducer's, with ``acks`` (``all`` comes with
    idempotence), ``linger.ms`` and a local queue large enough never to push back."""
    return as_profile(cluster).librdkafka(**{
        **DEFAULT_CONFIG,
        "logger": log,
        "acks": acks,
        "enable.idempotence": acks == "all",
        "linger.ms": linger_ms,
        "queue.buffering.max.messages": 1_000_000,
    })


def settings(acks: str, linger_ms: float = 5) -> dict[str, Any]:
    """The producer settings a scenario ran with, for the report."""
    conf = {k: v for k, v in DEFAULT_CONFIG.items() if k != "delivery.timeout.ms"}
    conf.update({"acks": acks, "enable.idempotence": acks == "all", "linger.ms": linger_ms})
    return conf


def value(i: int) -> bytes:
    """Record ``i``'s value: its sequence number, padded to 100 bytes."""
    return (b"%010d" % i).ljust(VALUE_SIZE, b".")


def key_of(i: int) -> bytes:
    """Record ``i``'s key in keyed scenarios: 10,000 distinct customer ids."""
    return b"customer-%d" % (i * 7919 % 10_000)


def rotated(names: Sequence[str], r: int) -> list[str]:
    """Round ``r``'s order: ``names`` starting at position ``r``, reversed in odd rounds, so that
    every contestant goes first in some round and follows a different one from round to round."""
    k = r % len(names)
    order = list(names[k:]) + list(names[:k])
    return order[::-1] if r % 2 else order


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
    recovered_after: float | None = None
    """Seconds from the mark (a kill) to the first acknowledgement of a record produced after
    it to a partition in :attr:`Driver.watch` (the dead leader's)."""
    lost: int | None = None

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        data = sorted(self.latencies)
        return data[min(len(data) - 1, int(q * len(data)))] * 1000.0

    def max_min(self) -> float | None:
        low = min(self.per_partition)
        return round(max(self.per_partition) / low, 4) if low > 0 else None

    def share(self, partitions: Iterable[int], windows: Sequence[tuple[float, float]] | None = None) -> float:
        """Share of delivered records that went to ``partitions``; with ``windows``, of those
        produced within them (timeline needed)."""
        wanted = set(partitions)
        if windows is None:
            total = sum(self.per_partition)
            return sum(self.per_partition[p] for p in wanted) / total if total else 0.0
        inside = [p for t, p in self.timeline if any(a <= t <= b for a, b in windows)]
        return sum(1 for p in inside if p in wanted) / len(inside) if inside else 0.0


def summary(runs: Sequence[StrategyRun], baseline: Sequence[StrategyRun] | None = None) -> dict[str, Any]:
    """One contestant over its rounds: median rate and latencies; the round with the worst
    max/min partition ratio for the distribution (evenness must hold in every round). With
    ``baseline`` (the same rounds of another contestant), ``rate_ratio`` is the median of the
    rounds' rate ratios: each round compares runs made minutes apart at most, so a machine
    whose load changes between rounds disturbs it far less than a ratio of medians."""
    worst = max(runs, key=lambda r: r.max_min() or float("inf"))
    extra: dict[str, Any] = {}
    if baseline is not None:
        ratios = [r.rate / b.rate if b.rate else 0.0 for r, b in zip(runs, baseline, strict=True)]
        extra = {"rate_ratio": round(statistics.median(ratios), 3), "rounds_rate_ratio": [round(x, 3) for x in ratios]}
    return {
        "messages": worst.sent,
        "msgs_per_s": round(statistics.median(r.rate for r in runs), 1),
        "rounds_msgs_per_s": [round(r.rate, 1) for r in runs],
        "p50_ms": round(statistics.median(r.percentile(0.50) for r in runs), 2),
        "p99_ms": round(statistics.median(r.percentile(0.99) for r in runs), 2),
        "per_partition": list(worst.per_partition),
        "max_min_ratio": worst.max_min(),
        "lost": sum(r.lost if r.lost is not None else r.sent - r.delivered for r in runs),
        **extra,
    }


class Driver:
    """One producer with one strategy; produces numbered 100-byte records to one topic."""

    def __init__(
        self, strategy: str, cluster: ClusterProfile | str, topic: str, acks: str, t0: float, seed: int = 1,
        linger_ms: float = 5, keyed: bool = False,
    ) -> None:
        self.run = StrategyRun(strategy, topic)
        self.topic = topic
        self.t0 = t0
        self.mark: float | None = None  # e.g. the kill time (perf_counter)
        self.watch: frozenset[int] = frozenset()  # partitions whose first ack after the mark counts
        self.partitioner: BasePartitioner | None = None
        conf = producer_config(cluster, acks, linger_ms)
        if strategy != "librdkafka":
            kwargs: dict[str, Any] = {"refresh_interval_s": 1.0}
            if strategy in ("random", "key-hash"):
                kwargs["seed"] = seed
            self.partitioner = contestant_partitioner(strategy, **kwargs)
            conf.update(self.partitioner.producer_config(500))
        self.producer = Producer(conf)
        if self.partitioner is not None:
            self.partitioner.bind(self.producer, conf)
        self.keyed = keyed
        self.timeline = False
        self._i = 0

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        run = self.run
        p = msg.partition()
        p = 0 if p is None or p < 0 else p  # None/-1 only for records that failed before partitioning
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
                if (self.mark is not None and run.recovered_after is None and sent_at > self.mark
                        and p in self.watch):
                    run.recovered_after = now - self.mark
        else:
            run.failed += 1

    def _on_probe(self, err: KafkaError | None, msg: Message) -> None:
        """A record the partitioner asked to hear about: its report goes to both."""
        self._on_delivery(err, msg)
        p = msg.partition()
        if self.partitioner is not None and p is not None:
            self.partitioner.on_delivery(self.topic, p, err, 0.0)

    def produce_one(self) -> None:
        i = self._i
        key = key_of(i) if self.keyed else None
        part = self.partitioner
        if part is not None:
            p = part.partition(self.topic, key)
            cb = self._on_probe if part.probe is not None else self._on_delivery
        else:
            p, cb = -1, self._on_delivery
        data = value(i)
        while True:
            try:
                self.producer.produce(self.topic, data, key, p, cb)  # on_delivery positionally (cheaper)
                break
            except BufferError:
                self.producer.poll(0.05)
        self._i += 1
        self.run.sent += 1

    def burst(self, n: int) -> None:
        """``n`` records as fast as possible, then flush; ``seconds`` is the time to the last ack."""
        poll = self.producer.poll
        produce_one = self.produce_one
        start = time.perf_counter()
        for j in range(n):
            produce_one()
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

    def warm_up(self, n: int = WARM_UP) -> None:
        """Metadata and connections ready, then forget the warm-up records."""
        for _ in range(n):
            self.produce_one()
        self.flush(60)
        self.run = StrategyRun(self.run.strategy, self.topic)

    def close(self) -> None:
        if self.partitioner is not None:
            self.partitioner.close()

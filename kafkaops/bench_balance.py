"""`kafkaops bench balance`: the partitioning strategies side by side on a real 3-broker cluster.

Contestants: ``round-robin``, ``random``, ``least-loaded``, ``key-hash`` (our partitioners,
records with keys for ``key-hash`` only) and ``librdkafka`` (its own ``murmur2_random``
partitioner, no Python choice) as the baseline. Every topic has 12 partitions, RF 3.

Scenarios:

- ``healthy``: as fast as possible, ``messages`` records per strategy, rounds interleaved,
  the best round kept (the machine is shared and noisy).
- ``paused``: all strategies at once, each at a fixed rate on its own topic, while one broker
  is frozen with SIGSTOP for 1 s in every 3 s (a GC pause or a hung disk), ``acks=1`` and no
  idempotence so that only the leader's responsiveness counts. ``paused_broker_share`` is
  the share of records delivered to partitions that broker leads.
- ``paused-acks-all``: the same with the no-loss defaults (``acks=all``, idempotence): the
  paused broker also follows every partition, so every write waits (see
  :mod:`kafkaops.clients.partitioners` for what that means for users).
- ``leader-kill``: all strategies at once, ``acks=all`` + idempotence; a leader (not the
  controller) is SIGKILLed mid-run and restarted afterwards. ``lost`` counts records produced
  but not found when the topic is read back; ``recovery_s`` is the time from the kill until
  the first successful delivery of a record produced after it.

Why ``round-robin`` trails ``librdkafka`` in ``healthy``: not the Python choice (about
0.2 us per record) but the placement. librdkafka's sticky partitioner fills one partition
for ``sticky.partitioning.linger.ms`` before moving on; spreading consecutive records over
12 partitions makes librdkafka wake its broker threads far more often, which on a small,
busy machine costs several times the CPU per record (a raw ``confluent_kafka.Producer``
given ``partition=i % 12`` shows the same gap). ``RoundRobin(batch=N)`` narrows it at
the price of evenness over short runs.

Latency is librdkafka's per-record delivery latency (``Message.latency()``, produce() to
acknowledgement). ``lost`` elsewhere is records without a successful delivery report.
"""

from __future__ import annotations

import logging
import threading
import time
import timeit
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from kafkaops.admin import admin_client, create_topic
from kafkaops.clients.partitioners import BasePartitioner, make_partitioner

log = logging.getLogger(__name__)

STRATEGIES = ("round-robin", "random", "least-loaded", "key-hash", "librdkafka")
SCENARIOS = ("healthy", "paused", "paused-acks-all", "leader-kill")
PARTITIONS = 12
BUCKET_S = 0.1
VALUE_SIZE = 100


class BalanceCluster(Protocol):
    """What the bench needs of a local cluster (``kafkaops.local.cluster.LocalCluster``)."""

    bootstrap_servers: str

    def pause_broker(self, broker_id: int) -> None: ...
    def resume_broker(self, broker_id: int) -> None: ...
    def kill_broker(self, broker_id: int) -> None: ...
    def start_broker(self, broker_id: int, wait: bool = True, timeout: float = 90.0) -> None: ...
    def controller_id(self) -> int | None: ...


def producer_config(bootstrap: str, acks: str, linger_ms: float = 5) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "logger": log,
        "acks": acks,
        "enable.idempotence": acks == "all",
        "linger.ms": linger_ms,
        "queue.buffering.max.messages": 500_000,
        "partitioner": "murmur2_random",
    }
    return conf


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
        self, strategy: str, bootstrap: str, topic: str, acks: str, t0: float, seed: int = 1, linger_ms: float = 5
    ) -> None:
        self.run = StrategyRun(strategy, topic)
        self.topic = topic
        self.t0 = t0
        self.mark: float | None = None  # e.g. the kill time (perf_counter)
        self.partitioner: BasePartitioner | None = None
        conf = producer_config(bootstrap, acks, linger_ms)
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


# ---------------------------------------------------------------------- helpers
def _topics(bootstrap: str, count: int, prefix: str) -> list[str]:
    names = [f"{prefix}-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    for name in names:
        create_topic(bootstrap, name, PARTITIONS, 3)
    return names


def _delete(bootstrap: str, topics: Sequence[str]) -> None:
    if not topics:
        return
    admin = admin_client(bootstrap)  # keep the client alive until its futures resolve
    try:
        for f in admin.delete_topics(list(topics), operation_timeout=30).values():
            f.result(timeout=30)
    except Exception as exc:  # noqa: BLE001 - cleanup is best effort
        log.warning("bench topics not deleted: %s", exc)


def topic_leaders(bootstrap: str, topic: str, partitions: int = PARTITIONS, timeout: float = 30.0) -> tuple[int, ...]:
    """Leader per partition, once metadata shows every partition with a leader."""
    admin = admin_client(bootstrap)
    deadline = time.monotonic() + timeout
    while True:
        md = admin.list_topics(topic, timeout=10).topics.get(topic)
        if md is not None and md.error is None and len(md.partitions) == partitions:
            leaders = tuple(md.partitions[p].leader for p in range(partitions))
            if min(leaders) >= 0:
                return leaders
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic}: not every partition has a leader after {timeout:.0f}s")
        time.sleep(0.2)


def _victim(cluster: BalanceCluster, leaders: tuple[int, ...]) -> int:
    """A broker that leads partitions and is not the controller."""
    controller = cluster.controller_id()
    candidates = sorted({b for b in leaders if b >= 0 and b != controller}) or sorted(set(leaders))
    return candidates[0]


def _read_back(bootstrap: str, topic: str, expected: int, timeout: float = 60.0) -> set[int]:
    """Sequence numbers of the records in ``topic`` (read from the beginning to the end offsets)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-balance-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "logger": log,
        }
    )
    seen: set[int] = set()
    try:
        ends = {}
        for p in range(PARTITIONS):
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        done = {p for p, high in ends.items() if high == 0}
        deadline = time.monotonic() + timeout
        while len(done) < PARTITIONS and time.monotonic() < deadline:
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


# ---------------------------------------------------------------------- scenarios
def healthy(cluster: BalanceCluster, messages: int, rounds: int = 3, linger_ms: float = 5) -> dict[str, StrategyRun]:
    """Throughput side by side; every contestant gets the same ``linger.ms``."""
    bootstrap = cluster.bootstrap_servers
    topics = _topics(bootstrap, len(STRATEGIES), "balance-healthy")
    best: dict[str, StrategyRun] = {}
    try:
        for r in range(rounds):
            for strategy, topic in zip(STRATEGIES, topics, strict=True):
                d = Driver(strategy, bootstrap, topic, "all", time.perf_counter(), seed=r + 1, linger_ms=linger_ms)
                d.warm_up()
                d.burst(messages)
                d.close()
                run = d.run
                prev = best.get(strategy)
                if prev is None or run.delivered / run.seconds > prev.delivered / prev.seconds:
                    best[strategy] = run
    finally:
        _delete(bootstrap, topics)
    return best


@dataclass
class PausedResult:
    runs: dict[str, StrategyRun]
    broker: int
    paused_partitions: dict[str, list[int]]
    pauses: list[tuple[float, float]]
    duration: float


def paused(cluster: BalanceCluster, acks: str, rate: float = 500.0, duration: float = 12.0) -> PausedResult:
    """All strategies at ``rate`` each while one broker is paused 1 s in every 3 s."""
    bootstrap = cluster.bootstrap_servers
    topics = _topics(bootstrap, len(STRATEGIES), "balance-paused")
    leaders = {t: topic_leaders(bootstrap, t) for t in topics}
    broker = _victim(cluster, leaders[topics[0]])
    pauses: list[tuple[float, float]] = []
    drivers: list[Driver] = []
    try:
        t0 = time.perf_counter() + 60.0  # replaced below once everything is warm
        for strategy, topic in zip(STRATEGIES, topics, strict=True):
            d = Driver(strategy, bootstrap, topic, acks, t0)
            d.timeline = True
            d.warm_up()
            drivers.append(d)
        start = time.perf_counter() + 0.5
        for d in drivers:
            d.t0 = start
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

        pt = threading.Thread(target=pauser, name="bench-pauser")
        pt.start()
        try:
            _run_threads(drivers, lambda d: d.paced(rate, duration, start))
        finally:
            stop.set()
            pt.join()
            cluster.resume_broker(broker)
    finally:
        for d in drivers:
            d.close()
        _delete(bootstrap, topics)
    return PausedResult(
        runs={d.run.strategy: d.run for d in drivers},
        broker=broker,
        paused_partitions={d.run.strategy: [p for p, b in enumerate(leaders[d.topic]) if b == broker] for d in drivers},
        pauses=pauses,
        duration=duration,
    )


@dataclass
class KillResult:
    runs: dict[str, StrategyRun]
    broker: int
    kill_at: float


def leader_kill(cluster: BalanceCluster, rate: float = 1000.0, duration: float = 16.0, kill_at: float = 3.0) -> KillResult:
    """All strategies at ``rate`` each (acks=all, idempotence); a leader is killed at ``kill_at``."""
    bootstrap = cluster.bootstrap_servers
    topics = _topics(bootstrap, len(STRATEGIES), "balance-kill")
    broker = _victim(cluster, topic_leaders(bootstrap, topics[0]))
    drivers: list[Driver] = []
    killed = False
    try:
        for strategy, topic in zip(STRATEGIES, topics, strict=True):
            d = Driver(strategy, bootstrap, topic, "all", 0.0)
            d.warm_up()
            drivers.append(d)
        start = time.perf_counter() + 0.5
        for d in drivers:
            d.t0 = start

        def killer() -> None:
            nonlocal killed
            time.sleep(max(0.0, start + kill_at - time.perf_counter()))
            mark = time.perf_counter()
            cluster.kill_broker(broker)
            killed = True
            for d in drivers:
                d.mark = mark

        kt = threading.Thread(target=killer, name="bench-killer")
        kt.start()
        try:
            _run_threads(drivers, lambda d: d.paced(rate, duration, start))
        finally:
            kt.join()
        for d in drivers:
            found = _read_back(bootstrap, d.topic, d.run.sent)
            # warm-up records carry the first sequence numbers too: count the run's own only
            d.run.lost = sum(1 for i in range(200, 200 + d.run.sent) if i not in found)
    finally:
        for d in drivers:
            d.close()
        if killed:
            cluster.start_broker(broker, wait=True)
        _delete(bootstrap, topics)
    return KillResult({d.run.strategy: d.run for d in drivers}, broker, kill_at)


# ---------------------------------------------------------------------- per-call overhead
def overhead_us(partitions: int = PARTITIONS, number: int = 200, repeat: int = 1500) -> dict[str, float]:
    """Microseconds per ``partition()`` call with ``partitions`` partitions on 3 leaders.

    timeit in chunks well under a scheduler time slice (~0.1-1 ms), the best chunk kept: on a
    shared machine preemption only ever adds time.
    """
    leaders = tuple(p % 3 + 1 for p in range(partitions))
    result: dict[str, float] = {}
    for name in ("round-robin", "random", "least-loaded", "key-hash"):
        part = make_partitioner(name, seed=1) if name != "round-robin" else make_partitioner(name)
        part.metadata.set_leaders("t", leaders, {1, 2, 3})
        key = b"order-12345" if name == "key-hash" else None
        fn = part.partition
        if name == "least-loaded":
            deliver = part.on_delivery

            def call(fn: Callable[[str, bytes | None], int | None] = fn) -> None:
                p = fn("t", None)
                deliver("t", p if p is not None else 0, None, 0.0)

            # LeastLoaded's per-record cost includes its delivery bookkeeping: measured together
            timer = timeit.Timer(call)
        else:
            timer = timeit.Timer(lambda fn=fn, key=key: fn("t", key))  # type: ignore[misc]
        best = min(timer.repeat(repeat=repeat, number=number)) / number
        empty = min(timeit.Timer(lambda: None).repeat(repeat=repeat, number=number)) / number
        result[name] = round((best - empty) * 1e6, 3)
        part.close()
    return result


# ---------------------------------------------------------------------- report
@dataclass
class BalanceReport:
    scenarios: dict[str, dict[str, dict[str, Any]]]
    overhead_us: dict[str, float]
    paused: PausedResult | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Exactly ``{"scenarios": {...}}`` (the per-call overhead is in :attr:`overhead_us`)."""
        return {"scenarios": self.scenarios}

    def targets(self) -> list[tuple[str, str, str, bool]]:
        """(target, measured, wanted, met) for the issue's targets."""
        rows: list[tuple[str, str, str, bool]] = []
        h = self.scenarios.get("healthy")
        if h:
            rr = h["round-robin"]
            ratio = rr["max_min_ratio"] or float("inf")
            rows.append(("RR max/min partition count", f"{ratio:.4f}", "<= 1.01", ratio <= 1.01))
            tp = rr["msgs_per_s"] / h["librdkafka"]["msgs_per_s"] if h["librdkafka"]["msgs_per_s"] else 0.0
            rows.append(("RR throughput / librdkafka", f"{tp:.3f}x", ">= 0.90x", tp >= 0.90))
        for name, limit in (("round-robin", 2.0), ("random", 2.0), ("least-loaded", 5.0)):
            if name in self.overhead_us:
                v = self.overhead_us[name]
                rows.append((f"{name} per-call overhead", f"{v:.2f} us", f"<= {limit:.0f} us", v <= limit))
        p = self.scenarios.get("paused")
        if p:
            ll, rr = p["least-loaded"], p["round-robin"]
            r = ll["p99_ms"] / rr["p99_ms"] if rr["p99_ms"] else float("inf")
            rows.append(("paused: LL p99 / RR p99", f"{r:.3f}", "<= 0.5", r <= 0.5))
            rows.append(
                (
                    "paused: share to paused broker LL vs RR",
                    f"{ll['paused_broker_share']:.3f} vs {rr['paused_broker_share']:.3f}",
                    "LL clearly below",
                    ll["paused_broker_share"] < 0.75 * rr["paused_broker_share"],
                )
            )
        k = self.scenarios.get("leader-kill")
        if k:
            lost = {s: v["lost"] for s, v in k.items()}
            rows.append(("leader-kill: lost", ", ".join(f"{s} {n}" for s, n in lost.items()), "0 each", not any(lost.values())))
        return rows


def run(
    cluster: BalanceCluster,
    messages: int = 100_000,
    scenarios: Sequence[str] = SCENARIOS,
    progress: Callable[[str], None] = lambda s: None,
    rounds: int = 3,
    linger_ms: float = 5,
) -> BalanceReport:
    """Run the chosen scenarios and measure per-call overhead; nothing is printed."""
    result: dict[str, dict[str, dict[str, Any]]] = {}
    paused_result = None
    progress("per-call overhead (timeit)")
    over = overhead_us()
    if "healthy" in scenarios:
        progress(f"healthy: {messages} records per strategy, best of {rounds} round(s), linger.ms={linger_ms:g}")
        runs = healthy(cluster, messages, rounds, linger_ms)
        result["healthy"] = {s: runs[s].summary() for s in STRATEGIES}
    for name, acks in (("paused", "1"), ("paused-acks-all", "all")):
        if name in scenarios:
            progress(f"{name}: one broker paused 1 s in every 3 s, acks={acks}")
            pr = paused(cluster, acks)
            result[name] = {s: pr.runs[s].summary(pr.paused_partitions[s]) for s in STRATEGIES}
            if name == "paused":
                paused_result = pr
    if "leader-kill" in scenarios:
        progress("leader-kill: a leader SIGKILLed mid-run, then restarted")
        kr = leader_kill(cluster)
        result["leader-kill"] = {s: kr.runs[s].summary(recovery=True) for s in STRATEGIES}
    return BalanceReport(result, over, paused_result)


def plot_paused(result: PausedResult, path: Path) -> Path:
    """A PNG of per-partition records per 100 ms over time, one panel per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buckets = int(result.duration / BUCKET_S) + 1
    fig, axes = plt.subplots(len(STRATEGIES), 1, figsize=(11, 2.2 * len(STRATEGIES)), sharex=True)
    xs = [i * BUCKET_S for i in range(buckets)]
    for ax, strategy in zip(axes, STRATEGIES, strict=True):
        run = result.runs[strategy]
        series = [[0] * buckets for _ in range(PARTITIONS)]
        for t, p in run.timeline:
            b = int(t / BUCKET_S)
            if 0 <= b < buckets:
                series[p][b] += 1
        hot = set(result.paused_partitions[strategy])
        for p in range(PARTITIONS):
            ax.plot(xs, series[p], color="tab:red" if p in hot else "tab:gray", linewidth=1.2 if p in hot else 0.6,
                    alpha=0.9 if p in hot else 0.5)
        for began, ended in result.pauses:
            ax.axvspan(began, ended, color="tab:orange", alpha=0.15)
        ax.set_ylabel("records/100ms")
        ax.set_title(f"{strategy}: red = partitions led by paused broker {result.broker}", fontsize=9)
    axes[-1].set_xlabel("seconds (orange: broker paused)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

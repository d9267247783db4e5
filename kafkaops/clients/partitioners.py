"""Partitioners the producer applies itself (confluent-kafka takes no Python callback).

A Partitioner picks the partition for each record; the producer passes it as
``partition=`` to ``Producer.produce``. :data:`UNASSIGNED` (-1, or None from a
partitioner of your own) leaves the choice to librdkafka.

Strategies (``make_partitioner(name)`` with the CLI names):

- ``round-robin`` :class:`RoundRobin`: runs in strict partition order, every partition kept
  within ``max_skew`` (1 %) of the others' record counts.
- ``random`` :class:`Random`: each run to a uniformly random available partition.
- ``least-loaded`` :class:`LeastLoaded`: each run to the leader with the fewest records in
  flight, never to a stalled (silent) one (:mod:`kafkaops.clients.load`), like the Java
  producer's adaptive partitioning (KIP-794).
- ``key-hash`` :class:`KeyHash`: Kafka's murmur2 for keys, runs to random available
  partitions for records without one (librdkafka's ``murmur2_random``).

*Runs*: records without a key go to one partition for a *run* of about
``sticky.partitioning.linger.ms`` (10 ms), as librdkafka's and the Java client's sticky
partitioners do (KIP-480), then the strategy picks the next partition. librdkafka sends one
ProduceRequest per partition, so spreading consecutive records over every partition
multiplies requests and shrinks batches (several times the CPU per record, client and
brokers); a run fills one batch instead. A run's length in records follows the measured send
rate, and the clock is read only every eighth of a run, so the common case of
:meth:`BasePartitioner.partition` is a counter decrement.

*Keyed records* keep ``(murmur2(key) & 0x7fffffff) % partitions`` in every strategy (their
order per key holds; a key's partition never moves while its leader is away: its records
wait in the producer's queue) unless the strategy is built with ``ignore_keys=True``. When
the producer's own ``partitioner`` is ``murmur2_random`` or ``murmur2`` (TypedProducer's
default; :meth:`BasePartitioner.producer_config` sets it), keyed records are left to
librdkafka, which computes the same partition natively.

*Availability* (:mod:`kafkaops.clients.metadata`): only partitions whose leader is alive and
reachable start runs; a run ends early when its partition's availability changes.

*Probes*: after :meth:`~BasePartitioner.partition`, ``probe`` is the delivery callback the
record must carry (``produce(topic, value, key, p, part.probe)``: positionally, keyword
parsing costs more than the strategy), or None; LeastLoaded asks for
one per run, the others for none. TypedProducer does this itself.

*acks=all and a paused follower* (the bench scenario ``paused-acks-all``): with ``acks=all``
every write waits for all in-sync replicas, so a stalled broker that is still in the ISR
holds back every partition it *follows*: no partitioner can route around it. LeastLoaded
steers around a slow *leader* (visible with ``acks=1``).
"""

from __future__ import annotations

import logging
import random as _random
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol

from confluent_kafka import KafkaError, Message

from kafkaops.clients.load import LoadTracker, Probe
from kafkaops.clients.metadata import MetadataCache, TopicView
from kafkaops.clients.murmur2 import murmur2, murmur2_partition
from kafkaops.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = [
    "NATIVE_KEY_PARTITIONERS", "STRATEGIES", "UNASSIGNED", "BasePartitioner", "KeyHash", "LeastLoaded",
    "Partitioner", "Random", "RoundRobin", "Run", "make_partitioner", "murmur2", "murmur2_partition",
]

UNASSIGNED = -1
"""``produce(partition=-1)``: librdkafka's own partitioner decides."""
NATIVE_KEY_PARTITIONERS = frozenset({"murmur2_random", "murmur2"})
"""librdkafka partitioners that place keyed records exactly as :func:`murmur2_partition` does."""
STICKY_MS = 10.0
"""Default run length in time: librdkafka's ``sticky.partitioning.linger.ms``."""

DeliveryCallback = Callable[[KafkaError | None, Message], None]


class Partitioner(Protocol):
    """Chooses a partition per record and learns from delivery reports."""

    def bind(self, client: Any) -> None:
        """Called once with the underlying ``confluent_kafka.Producer`` (for metadata)."""

    def partition(self, topic: str, key: bytes | None) -> int | None:
        """The partition for a record, or None / -1 for librdkafka's own choice."""

    def on_delivery(self, topic: str, partition: int, error: KafkaError | None, latency_s: float) -> None:
        """Called with the delivery report of the records this partitioner asked for."""


# ---------------------------------------------------------------------- runs
class Run:
    """A topic's current run: ``partition`` gets the next ``left`` records without a question."""

    __slots__ = ("topic", "partition", "left", "done", "length", "seg", "started", "view", "probe")

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.partition = UNASSIGNED
        self.left = 0
        self.done = 0
        self.length = 1
        self.seg = 1
        self.started = 0.0
        self.view: TopicView | None = None
        self.probe: Probe | None = None


class BasePartitioner:
    """Runs, metadata, availability and the keyed-record rule shared by all strategies.

    Subclasses implement :meth:`_choose` (the partition of the next run). ``sticky_ms``: a
    run's length in time (default: the producer's ``sticky.partitioning.linger.ms``, else
    10 ms); ``max_run``: its most records. Safe to share between threads (under contention
    a run may get a record more or less).
    """

    name: ClassVar[str] = ""
    probe: DeliveryCallback | None = None
    """The delivery callback the record just placed must carry, or None (see the module docstring)."""

    def __init__(
        self,
        *,
        ignore_keys: bool = False,
        sticky_ms: float | None = None,
        max_run: int = 10_000,
        refresh_interval_s: float = 5.0,
        metadata: MetadataCache | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_run < 1:
            raise ConfigError(f"max_run must be >= 1, not {max_run}")
        self.ignore_keys = ignore_keys
        self.max_run = max_run
        self.sticky_s = (STICKY_MS if sticky_ms is None else sticky_ms) / 1000.0
        self._sticky_given = sticky_ms is not None
        self.metadata = metadata or MetadataCache(refresh_interval_s=refresh_interval_s)
        self._views = self.metadata._views  # read on every run switch
        self._clock = clock
        self.native_keys = False
        """Keyed records left to librdkafka (its partitioner is murmur2_random or murmur2)."""
        self._runs: dict[str, Run] = {}
        self._last = Run("\0")  # no topic is named NUL: the first record takes the slow path
        self._rate = 0.0  # records per second, measured over runs
        self._proposal = 1
        self.runs = 0
        """Runs started so far."""

    # -- Partitioner protocol
    def bind(self, client: Any, config: Mapping[str, Any] | None = None) -> None:
        """Use ``client`` for metadata; ``config`` (the producer's) says whether librdkafka hashes
        keys as Kafka does and how long its sticky runs last."""
        self.metadata.bind(client)
        if config is not None:
            self.native_keys = config.get("partitioner") in NATIVE_KEY_PARTITIONERS
            sticky = config.get("sticky.partitioning.linger.ms")
            if sticky is not None and not self._sticky_given:
                self.sticky_s = float(sticky) / 1000.0

    def partition(self, topic: str, key: bytes | None = None) -> int:
        """The partition for a record; :data:`UNASSIGNED` when librdkafka decides."""
        if key is not None and not self.ignore_keys:
            return UNASSIGNED if self.native_keys else self._hash(topic, key)
        run = self._last
        if run.topic == topic:
            left = run.left - 1
            if left >= 0:
                run.left = left
                return run.partition
        return self._advance(topic)

    def on_delivery(self, topic: str, partition: int, error: KafkaError | None, latency_s: float) -> None:
        if error is not None:
            self.metadata.report_error(topic, partition)

    def release(self, topic: str, partition: int) -> None:
        """Undo a probe whose ``produce()`` raised (no delivery report will come)."""

    # -- statistics and lifecycle
    def on_stats(self, stats: str | Mapping[str, Any]) -> None:
        """librdkafka statistics JSON (the producer's ``stats_cb``): broker connection states."""
        self.metadata.on_stats(stats)

    def producer_config(self, statistics_interval_ms: int = 500) -> dict[str, Any]:
        """Producer config entries this partitioner works with: statistics for broker states,
        and ``murmur2_random`` so that keyed records can be left to librdkafka."""
        return {"statistics.interval.ms": statistics_interval_ms, "stats_cb": self.on_stats,
                "partitioner": "murmur2_random"}

    def close(self) -> None:
        """Stop the metadata refresh thread."""
        self.metadata.close()

    # -- runs
    def _hash(self, topic: str, key: bytes) -> int:
        view = self._views.get(topic) or self.metadata.view(topic)
        if view is None:
            return UNASSIGNED  # unknown topic or no metadata yet: librdkafka decides (and reports the error)
        return (murmur2(key) & 0x7FFFFFFF) % len(view.leaders)

    def _advance(self, topic: str) -> int:
        """The slow path: a new topic, a checkpoint within a run (clock, availability), or a new run."""
        if self.probe is not None:
            self.probe = None
        run = self._last
        if run.topic != topic:
            found = self._runs.get(topic)
            if found is None:
                if self.metadata.view(topic) is None:
                    return UNASSIGNED
                found = self._runs[topic] = Run(topic)
            run = self._last = found
        view = self._views.get(topic)
        if view is None:
            return UNASSIGNED
        now = self._clock()
        if run.view is view and run.done < run.length and now - run.started < self.sticky_s:
            n = min(run.seg, run.length - run.done)
            run.done += n
            run.left = n - 1
            return run.partition
        if run.partition >= 0:  # learn the send rate from the run that just ended
            elapsed = now - run.started
            if elapsed > 0:
                rate = run.done / elapsed
                self._rate = 0.5 * (self._rate + rate) if self._rate else rate
        # records a sticky window holds at that rate, at most doubling per run
        length = self._proposal = max(1, min(self.max_run, 2 * self._proposal, int(self._rate * self.sticky_s) + 1))
        run.partition = self._choose(run, view, now, length)
        if run.length < 1:
            run.length = 1
        # the clock is read about 8 times per sticky window, whatever the run's length in records
        run.seg = max(1, min(run.length, length >> 3))
        run.started = now
        run.view = view
        self.runs += 1
        if self.probe is not None:
            run.done = 1
            run.left = 0  # the next record comes back here once, to clear ``probe``
        else:
            n = min(run.seg, run.length)
            run.done = n
            run.left = n - 1
        return run.partition

    def _choose(self, run: Run, view: TopicView, now: float, length: int) -> int:
        """The partition of the next run (and ``run.length``); ``length`` is the rate-based proposal.
        ``run`` still describes the run that ended (``partition`` -1 before the first)."""
        raise NotImplementedError


class RoundRobin(BasePartitioner):
    """Runs in strict partition order over the available partitions, even to ``max_skew``.

    Every cycle gives each partition one run of the same length, so after each cycle all
    partitions have the same count, and within one the spread is one run. A run is at most
    ``max_skew`` (default 1 %) of the records the partitions already have, which bounds
    max/min to ``1 + max_skew`` at any moment; within that bound runs grow to a sticky
    window's worth (fewer, fuller batches). A partition that comes back after being
    unavailable catches up by at most one extra run per cycle. ``max_skew=None``: runs as
    long as the window allows (throughput over evenness on short horizons).
    """

    name = "round-robin"

    def __init__(self, max_skew: float | None = 0.01, **kwargs: Any) -> None:
        if max_skew is not None and not 0 < max_skew:
            raise ConfigError(f"RoundRobin max_skew must be > 0 or None, not {max_skew}")
        super().__init__(**kwargs)
        self.max_skew = max_skew
        self._cycles: dict[str, _Cycle] = {}

    def _choose(self, run: Run, view: TopicView, now: float, length: int) -> int:
        cycle = self._cycles.get(run.topic)
        if cycle is None or len(cycle.given) < view.partition_count:
            cycle = self._cycles[run.topic] = _Cycle(view.partition_count, cycle)
        given = cycle.given
        if 0 <= run.partition < len(given):
            given[run.partition] += run.done  # the run that ended
        choices = view.choices
        i = cycle.cursor % len(choices)
        cycle.cursor = i + 1
        if i == 0:  # a new cycle: one run length for all of it
            low = min(given[p] for p in choices)
            if self.max_skew is not None:
                length = max(1, min(length, int(self.max_skew * low)))
            cycle.length = length
            cycle.level = max(cycle.level, low) + length
        p = choices[i]
        run.length = max(1, min(2 * cycle.length, cycle.level - given[p]))
        return p


class _Cycle:
    """RoundRobin's state per topic: records given per partition, the level this cycle reaches."""

    __slots__ = ("given", "cursor", "level", "length")

    def __init__(self, partitions: int, old: _Cycle | None = None) -> None:
        self.given = [0] * partitions
        self.cursor = 0
        self.level = 0
        self.length = 1
        if old is not None:  # the topic grew: keep what the old partitions had
            self.given[:len(old.given)] = old.given
            self.level = old.level


class Random(BasePartitioner):
    """Each run to a uniformly random available partition; ``seed`` makes the sequence repeatable."""

    name = "random"

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._random = _random.Random(seed).random

    def _choose(self, run: Run, view: TopicView, now: float, length: int) -> int:
        run.length = length
        choices = view.choices
        return choices[int(self._random() * len(choices))]


class KeyHash(Random):
    """murmur2 of the key over all partitions; records without a key go in runs to random
    available partitions (librdkafka's ``murmur2_random``), or with ``null_keys="hash"``
    are hashed as an empty key (librdkafka's ``murmur2``)."""

    name = "key-hash"

    def __init__(self, null_keys: str = "random", seed: int | None = None, **kwargs: Any) -> None:
        if null_keys not in ("random", "hash"):
            raise ConfigError(f"KeyHash null_keys must be 'random' or 'hash', not {null_keys!r}")
        kwargs.pop("ignore_keys", None)  # the point of KeyHash is the key
        super().__init__(seed=seed, **kwargs)
        self.null_keys = null_keys

    def _choose(self, run: Run, view: TopicView, now: float, length: int) -> int:
        if self.null_keys == "hash":
            run.length = self.max_run
            return murmur2_partition(b"", len(view.leaders))
        return super()._choose(run, view, now, length)


class LeastLoaded(BasePartitioner):
    """Each run to the available leader with the fewest records in flight, never to a stalled one.

    ``load`` is the :class:`~kafkaops.clients.load.LoadTracker` (its ``stall_min_s`` and
    ``stall_factor`` say when a leader counts as stalled). The first record of every run
    is a probe: its delivery report (``on_delivery``) tells the tracker the run is done.
    Within a leader, runs rotate over its available partitions; ties between leaders rotate.
    """

    name = "least-loaded"

    def __init__(self, load: LoadTracker | None = None, **kwargs: Any) -> None:
        kwargs.pop("seed", None)  # nothing random here; accepted like the other strategies
        super().__init__(**kwargs)
        self.load = load or LoadTracker(clock=self._clock)
        self._tick = 0
        self._cursor: dict[int, int] = {}

    def _report(self, err: KafkaError | None, msg: Message) -> None:
        """The probe's delivery callback for a raw ``confluent_kafka.Producer``."""
        partition = msg.partition()
        self.on_delivery(msg.topic() or "", UNASSIGNED if partition is None else partition, err, 0.0)

    def _choose(self, run: Run, view: TopicView, now: float, length: int) -> int:
        if run.probe is not None and run.done > 1:
            self.load.grew(run.probe, run.done - 1)  # the run that ended
        run.probe = None
        run.length = length
        self._tick += 1
        if not view.leader_ids:  # no partition available: every partition, in turn
            choices = view.choices
            return choices[self._tick % len(choices)]
        broker = self.load.choose(view.leader_ids, self._tick)
        parts = view.by_leader[broker]
        k = self._cursor.get(broker, 0)
        self._cursor[broker] = k + 1
        p = parts[k % len(parts)]
        run.probe = self.load.sent(run.topic, p, broker)
        self.probe = self._report
        return p

    def on_delivery(self, topic: str, partition: int, error: KafkaError | None, latency_s: float) -> None:
        self.load.acked(topic, partition)
        if error is not None:
            self.metadata.report_error(topic, partition)

    def release(self, topic: str, partition: int) -> None:
        """Undo a probe whose ``produce()`` raised (no delivery report will come)."""
        self.load.release(topic, partition)


STRATEGIES: dict[str, type[BasePartitioner]] = {
    cls.name: cls for cls in (RoundRobin, Random, LeastLoaded, KeyHash)
}


def make_partitioner(name: str, **kwargs: Any) -> BasePartitioner:
    """A partitioner by its CLI name: ``round-robin``, ``random``, ``least-loaded``, ``key-hash``."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise ConfigError(f"unknown partitioning strategy {name!r}; choose one of {', '.join(STRATEGIES)}") from None
    if cls is RoundRobin:
        kwargs.pop("seed", None)
    return cls(**kwargs)

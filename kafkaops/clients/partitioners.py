"""Partitioners the producer applies itself (confluent-kafka takes no Python callback).

A Partitioner picks the partition for each record; the producer passes it as
``partition=`` to ``Producer.produce``. ``None`` leaves the choice to librdkafka.

Strategies (``make_partitioner(name)`` with the CLI names):

- ``round-robin`` :class:`RoundRobin`: the next available partition, per topic.
- ``random`` :class:`Random`: uniform over available partitions; seedable.
- ``least-loaded`` :class:`LeastLoaded`: the available partition whose leader has the
  fewest records in flight (see :mod:`kafkaops.clients.load`), ties round robin; power of
  two choices for topics with many partitions. Steers records away from a slow or paused
  leader, like the Java producer's adaptive partitioning (KIP-794).
- ``key-hash`` :class:`KeyHash`: Kafka's murmur2, ``(murmur2(key) & 0x7fffffff) % partitions``,
  identical to the Java client and librdkafka's ``murmur2``/``murmur2_random``.

*Keyed records* go through :class:`KeyHash` in every strategy (so each key keeps its
partition and its order) unless the strategy is built with ``ignore_keys=True``. Key
hashing uses the topic's partition count, available or not: a key's partition never
moves while its leader is away (its records wait in the producer's queue instead).

*Availability* (:mod:`kafkaops.clients.metadata`): only partitions whose leader is alive
and reachable are chosen for records without a key. For the producer's broker states,
TypedProducer merges :meth:`BasePartitioner.producer_config` into its config
(``statistics.interval.ms`` and a ``stats_cb``); without them, leaders are still taken
from metadata refreshed on a timer and after every delivery error.

*acks=all and a paused follower* (the bench scenario ``paused-acks-all``): with the
no-loss default ``acks=all``, every write waits for all in-sync replicas. A broker that
stalls (GC pause, slow disk) without leaving the ISR (``replica.lag.time.max.ms``, 10 s
here, 30 s by default) holds back every partition it *follows*, not just those it leads,
so no partitioner can route around it: expect the stall in p99 latency whatever the
strategy. LeastLoaded helps against a slow *leader* (visible with ``acks=1``, which gives
up the no-loss guarantee), and the ISR shrink is what helps against a slow follower.
"""

from __future__ import annotations

import itertools
import json
import logging
import random as _random
import struct
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol

from confluent_kafka import KafkaError

from kafkaops.clients.load import LoadTracker
from kafkaops.clients.metadata import MetadataCache, TopicView
from kafkaops.errors import ConfigError

log = logging.getLogger(__name__)


class Partitioner(Protocol):
    """Chooses a partition per record and learns from delivery reports."""

    def bind(self, client: Any) -> None:
        """Called once with the underlying ``confluent_kafka.Producer`` (for metadata)."""

    def partition(self, topic: str, key: bytes | None) -> int | None:
        """The partition for a record, or None for librdkafka's own choice."""

    def on_delivery(self, topic: str, partition: int, error: KafkaError | None, latency_s: float) -> None:
        """Called from the delivery callback of every record this partitioner placed."""


# ---------------------------------------------------------------------- murmur2
_MASK = 0xFFFFFFFF
_M = 0x5BD1E995
_SEED = 0x9747B28C


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2`` (seed 0x9747b28c), as a signed 32-bit int like Java's."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    n4 = length >> 2
    if n4:
        for k in struct.unpack_from(f"<{n4}I", data):
            k = (k * _M) & _MASK
            k ^= k >> 24
            h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    tail = length & 3
    if tail:
        i = n4 << 2
        if tail == 3:
            h ^= data[i + 2] << 16
        if tail >= 2:
            h ^= data[i + 1] << 8
        h ^= data[i]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - 0x100000000 if h & 0x80000000 else h


def murmur2_partition(key: bytes, partitions: int) -> int:
    """The partition Java's default partitioner and librdkafka's ``murmur2`` give ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


# ---------------------------------------------------------------------- strategies
class BasePartitioner:
    """Metadata, availability, the keyed-record rule and delivery feedback shared by all strategies.

    Subclasses implement :meth:`_choose` for records without a key (or all records with
    ``ignore_keys=True``).
    """

    name: ClassVar[str] = ""

    def __init__(
        self,
        *,
        ignore_keys: bool = False,
        refresh_interval_s: float = 5.0,
        metadata: MetadataCache | None = None,
    ) -> None:
        self.ignore_keys = ignore_keys
        self.metadata = metadata or MetadataCache(refresh_interval_s=refresh_interval_s)
        self._views = self.metadata._views  # the hot path reads this dict directly

    # -- Partitioner protocol
    def bind(self, client: Any) -> None:
        self.metadata.bind(client)

    def partition(self, topic: str, key: bytes | None) -> int | None:
        view = self._views.get(topic) or self.metadata.view(topic)
        if view is None:
            return None  # unknown topic or no metadata yet: librdkafka decides (and reports the error)
        if key is not None and not self.ignore_keys:
            p = (murmur2(key) & 0x7FFFFFFF) % len(view.leaders)
            self._placed(topic, p)
            return p
        return self._choose(view)

    def on_delivery(self, topic: str, partition: int, error: KafkaError | None, latency_s: float) -> None:
        if error is not None:
            self.metadata.report_error(topic, partition)

    def release(self, topic: str, partition: int) -> None:
        """Undo a placement whose ``produce()`` raised (no delivery report will come)."""

    # -- statistics and lifecycle
    def on_stats(self, stats: str | Mapping[str, Any]) -> None:
        """librdkafka statistics JSON (the producer's ``stats_cb``): broker connection states."""
        self.metadata.on_stats(stats)

    def producer_config(self, statistics_interval_ms: int = 500) -> dict[str, Any]:
        """Producer config entries that feed this partitioner librdkafka's statistics."""
        return {"statistics.interval.ms": statistics_interval_ms, "stats_cb": self.on_stats}

    def close(self) -> None:
        """Stop the metadata refresh thread."""
        self.metadata.close()

    # -- for subclasses
    def _choose(self, view: TopicView) -> int:
        raise NotImplementedError

    def _placed(self, topic: str, partition: int) -> None:
        """A keyed record was placed on ``partition``."""


class RoundRobin(BasePartitioner):
    """The next available partition of the topic, cycling in partition order.

    ``batch`` records go to each partition before moving on (default 1: strict
    per-record cycling). Spreading every record costs librdkafka throughput: its
    per-partition batches get smaller than with its own sticky partitioner, which fills
    one partition for ``sticky.partitioning.linger.ms``; a larger ``batch`` trades
    evenness over short runs for bigger batches.
    """

    name = "round-robin"

    def __init__(self, batch: int = 1, **kwargs: Any) -> None:
        if batch < 1:
            raise ConfigError(f"RoundRobin batch must be >= 1, not {batch}")
        super().__init__(**kwargs)
        self.batch = batch
        self._counters: dict[str, Callable[[], int]] = {}

    def _choose(self, view: TopicView) -> int:
        counter = self._counters.get(view.topic)
        if counter is None:
            counter = self._counters.setdefault(view.topic, itertools.count().__next__)
        choices = view.choices
        return choices[(counter() // self.batch) % len(choices)]


class Random(BasePartitioner):
    """A uniformly random available partition; ``seed`` makes the sequence repeatable."""

    name = "random"

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._random = _random.Random(seed).random

    def _choose(self, view: TopicView) -> int:
        choices = view.choices
        return choices[int(self._random() * len(choices))]


class KeyHash(BasePartitioner):
    """murmur2 of the key over all partitions; records without a key go to a random
    available partition (librdkafka's ``murmur2_random``), or with ``null_keys="hash"``
    are hashed as an empty key (librdkafka's ``murmur2``)."""

    name = "key-hash"

    def __init__(self, null_keys: str = "random", seed: int | None = None, **kwargs: Any) -> None:
        if null_keys not in ("random", "hash"):
            raise ConfigError(f"KeyHash null_keys must be 'random' or 'hash', not {null_keys!r}")
        kwargs.pop("ignore_keys", None)  # the point of KeyHash is the key
        super().__init__(**kwargs)
        self.null_keys = null_keys
        self._random = _random.Random(seed).random

    def _choose(self, view: TopicView) -> int:
        if self.null_keys == "hash":
            return murmur2_partition(b"", len(view.leaders))
        choices = view.choices
        return choices[int(self._random() * len(choices))]


class LeastLoaded(BasePartitioner):
    """The available partition whose leader has the fewest records in flight; ties round robin.

    ``load`` is the :class:`~kafkaops.clients.load.LoadTracker` (give it ``stats_weight``/
    ``rtt_weight`` to blend in librdkafka statistics). For topics with more than
    ``two_choices_above`` available partitions it samples two at random and keeps the
    less loaded one (power of two choices) instead of scanning every leader.
    """

    name = "least-loaded"

    def __init__(
        self,
        load: LoadTracker | None = None,
        two_choices_above: int = 64,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.load = load or LoadTracker()
        self.two_choices_above = two_choices_above
        self._tick = itertools.count().__next__
        self._random = _random.Random(seed)
        self._pick = self.load.pick
        self.metadata.listeners.append(lambda old, new: self.load.track(new))

    def partition(self, topic: str, key: bytes | None) -> int | None:
        view = self._views.get(topic) or self.metadata.view(topic)
        if view is None:
            return None
        if key is not None and not self.ignore_keys:
            p = (murmur2(key) & 0x7FFFFFFF) % len(view.leaders)
            self.load.sent(topic, p)
            return p
        if len(view.available) > self.two_choices_above:
            a, b = self._random.sample(view.available, 2)
            return self.load.pick_of_two(view, a, b)
        return self._pick(view, self._tick())

    def _choose(self, view: TopicView) -> int:
        return self._pick(view, self._tick())

    def _placed(self, topic: str, partition: int) -> None:
        self.load.sent(topic, partition)

    def on_delivery(self, topic: str, partition: int, error: KafkaError | None, latency_s: float) -> None:
        self.load.done(topic, partition)
        if error is not None:
            self.metadata.report_error(topic, partition)

    def release(self, topic: str, partition: int) -> None:
        """Undo a placement whose ``produce()`` raised (no delivery report will come)."""
        self.load.done(topic, partition)

    def on_stats(self, stats: str | Mapping[str, Any]) -> None:
        data = json.loads(stats) if isinstance(stats, str) else stats
        self.metadata.on_stats(data)
        self.load.on_stats(data)


STRATEGIES: dict[str, type[BasePartitioner]] = {
    cls.name: cls for cls in (RoundRobin, Random, LeastLoaded, KeyHash)
}


def make_partitioner(name: str, **kwargs: Any) -> BasePartitioner:
    """A partitioner by its CLI name: ``round-robin``, ``random``, ``least-loaded``, ``key-hash``."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise ConfigError(f"unknown partitioning strategy {name!r}; choose one of {', '.join(STRATEGIES)}") from None
    return cls(**kwargs)

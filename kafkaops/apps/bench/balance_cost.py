"""The client-side cost of each strategy: CPU time of the producing thread per record.

Each contestant is the loop a user writes: the strategy's ``partition()``, then
``produce(topic, value, key, partition, part.probe)`` (``on_delivery`` given positionally:
keyword parsing alone costs 0.2 µs per call) (LeastLoaded's probes are
served by ``poll``, in the same thread), ``poll(0)`` every 1024 records, ``flush()``. The
baseline, ``bare``, is the same loop with the partition picked by no code at all (a
constant per 1024-record chunk, rotating); ``bare-keyed`` the same with keys, the baseline
of ``key-hash`` on keyed records; ``librdkafka`` and ``librdkafka-keyed`` leave the choice to
librdkafka's ``murmur2_random`` (sticky runs, or the key's hash) for comparison. ``time.thread_time`` counts only the calling thread, so
librdkafka's own threads and the brokers are not in it, and the local queue is large
enough that the brokers never push back: the broker is not the bottleneck.
"""

from __future__ import annotations

import gc
import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Producer

from kafkaops.apps.bench.balance_driver import (
    PARTITIONS,
    UNBOUNDED_RR,
    contestant_partitioner,
    key_of,
    producer_config,
    rotated,
    value,
)
from kafkaops.clients.partitioners import BasePartitioner
from kafkaops.config import ClusterProfile

CONTESTANTS = ("bare", "librdkafka", "round-robin", UNBOUNDED_RR, "random", "least-loaded", "bare-keyed",
               "librdkafka-keyed", "key-hash")
CHUNK = 1024


def _loop(producer: Producer, topic: str, values: list[bytes], keys: list[bytes] | None,
          choose: Callable[[str, bytes | None], int] | None, probing: BasePartitioner | None) -> float:
    """Thread CPU seconds of producing ``values`` (and ``keys``) the way the contestant does."""
    produce, poll = producer.produce, producer.poll
    n = len(values)
    t0 = time.thread_time()
    if choose is None:  # bare: the partition comes from the chunk, no code per record
        for start, p in zip(range(0, n, CHUNK), itertools.cycle(range(PARTITIONS)), strict=False):
            if keys is None:
                for v in values[start:start + CHUNK]:
                    produce(topic, v, None, p)
            else:
                for v, k in zip(values[start:start + CHUNK], keys[start:start + CHUNK], strict=True):
                    produce(topic, v, k, p)
            poll(0)
    elif probing is None:
        for start in range(0, n, CHUNK):
            if keys is None:
                for v in values[start:start + CHUNK]:
                    produce(topic, v, None, choose(topic, None))
            else:
                for v, k in zip(values[start:start + CHUNK], keys[start:start + CHUNK], strict=True):
                    produce(topic, v, k, choose(topic, k))
            poll(0)
    else:  # a strategy with probes (LeastLoaded): its callback rides on the records it asks for
        for start in range(0, n, CHUNK):
            for v in values[start:start + CHUNK]:
                p = choose(topic, None)
                produce(topic, v, None, p, probing.probe)  # on_delivery, positional: no keyword parsing
            poll(0)
    producer.flush(120)
    return time.thread_time() - t0


def _one(name: str, cluster: ClusterProfile, topic: str, values: list[bytes], keys: list[bytes]) -> float:
    conf = producer_config(cluster, "all")
    part = None
    if name not in ("bare", "bare-keyed", "librdkafka", "librdkafka-keyed"):
        part = contestant_partitioner(name)
        conf.update(part.producer_config(500))
    producer = Producer(conf)
    try:
        if part is not None:
            part.bind(producer, conf)
        keyed = name in ("bare-keyed", "librdkafka-keyed", "key-hash")
        warm = [value(i) for i in range(200)]
        _loop(producer, topic, warm, keys[:200] if keyed else None,
              part.partition if part is not None else None, None)
        if name.startswith("librdkafka"):
            return _loop(producer, topic, values, keys if keyed else None, lambda t, k: -1, None) / len(values)  # noqa: ARG005
        probing = part if name == "least-loaded" else None
        return _loop(producer, topic, values, keys if keyed else None,
                     part.partition if part is not None else None, probing) / len(values)
    finally:
        if part is not None:
            part.close()


def client_cost(cluster: ClusterProfile, topic: str, records: int = 50_000, rounds: int = 3) -> dict[str, Any]:
    """µs of producing-thread CPU per record for every contestant (median of ``rounds``, the
    order rotated each round) and each strategy's ratio to its bare baseline."""
    values = [value(i) for i in range(records)]
    keys = [key_of(i) for i in range(records)]
    per: dict[str, list[float]] = {name: [] for name in CONTESTANTS}
    for r in range(max(1, rounds)):
        for name in rotated(CONTESTANTS, r):
            gc.collect()
            per[name].append(_one(name, cluster, topic, values, keys) * 1e6)
    us = {name: round(statistics.median(v), 3) for name, v in per.items()}
    ratio = {name: round(us[name] / us["bare-keyed" if "key" in name else "bare"], 3)
             for name in CONTESTANTS if not name.startswith("bare")}
    return {"us_per_record": us, "rounds_us_per_record": {k: [round(x, 3) for x in v] for k, v in per.items()},
            "ratio_to_bare": ratio, "records": records, "rounds": rounds}

"""`kafkaops bench checkpoint`: checkpoints next to the bare calls they are made of, in one run.

- small states: ``CheckpointStore.save`` (inline in the znode) vs a bare kazoo transaction
  (create + set) of the same znode size on the same session, interleaved so machine
  noise hits both alike; p50/p99 and their ratios.
- large states (10 and 100 MB, incompressible): save + load through the state topic vs a
  bare produce + consume of the same bytes, in the same record sizes, to the same topic
  with the same client settings; rounds interleaved, medians, throughput ratio.
- sustained: 50 saves of a 10 MB state in a row (pruned as a job prunes): ZooKeeper's
  heap after a full GC before and after (``jcmd``, when its pid is known) and its
  ``mntr`` data size, then the cluster's health snapshot.

Every ZooKeeper wait is bounded: with ZooKeeper gone the bench fails with
NotWritableError instead of hanging.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from kafkaops.apps.bench.zookeeper_probe import ProbeError, heap_after_gc_mb, mntr
from kafkaops.config import ClusterProfile
from kafkaops.coord.checkpoint_format import INLINE_LIMIT, checkpoint_znode, encode_header, prepare_state
from kafkaops.coord.checkpoint_zk import BoundedZooKeeper
from kafkaops.coord.checkpoints import CheckpointStore
from kafkaops.coord.session import Coordinator
from kafkaops.coord.state_topic import CONSUMER_CONFIG, PRODUCER_CONFIG, STATE_TOPIC, TopicStateBackend
from kafkaops.errors import KafkaopsError
from kafkaops.ops.health import cluster_health
from kafkaops.waits import Deadline

MB = 1024 * 1024


class BenchError(KafkaopsError):
    """The bench could not complete a measurement."""


@dataclass(frozen=True)
class LatencyStats:
    name: str
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "samples": self.samples, "p50_ms": round(self.p50_ms, 3),
                "p99_ms": round(self.p99_ms, 3), "max_ms": round(self.max_ms, 3)}


def _stats(name: str, seconds: list[float]) -> LatencyStats:
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
    return LatencyStats(name, len(ms), statistics.median(ms), p99, ms[-1])


def save_latency(coord: Coordinator, *, rounds: int = 500, state_bytes: int = 1024,
                 warmup: int = 50) -> dict[str, Any]:
    """p50/p99 of checkpoint saves vs bare create+set transactions of the same size."""
    store = CheckpointStore(coord)
    zk = BoundedZooKeeper(coord)
    job = f"bench-{uuid.uuid4().hex[:8]}"
    bare_dir = coord.path(f"bench-bare-{uuid.uuid4().hex[:8]}")
    client = coord.client
    epoch = store.claim(job, "bench")
    offsets = {("bench", p): 1000 + p for p in range(3)}
    state = os.urandom(state_bytes)
    prepared = prepare_state(job, state)
    znode_size = len(checkpoint_znode(job, encode_header(job, offsets, {}, epoch, "0" * 16, prepared.doc("inline")),
                                      prepared.stored))
    payload = os.urandom(znode_size)
    zk.ensure_path("bench checkpoint", bare_dir)
    ours: list[float] = []
    bare: list[float] = []

    def one_save() -> float:
        t = time.perf_counter()
        store.save(job, offsets, state, epoch=epoch)
        return time.perf_counter() - t

    def one_bare(i: int) -> float:
        t = time.perf_counter()
        txn = client.transaction()
        txn.create(f"{bare_dir}/n-{i:010d}", payload, acl=coord.acl)
        txn.set_data(bare_dir, b"n-%010d" % i)
        zk.commit("bare create+set transaction", txn)
        return time.perf_counter() - t

    try:
        for i in range(warmup + rounds):
            if i % 2:  # alternate who goes first
                a, b = one_save(), one_bare(i)
            else:
                b, a = one_bare(i), one_save()
            if i >= warmup:
                ours.append(a)
                bare.append(b)
            if i % 100 == 99:
                store.prune(job, keep=5)
    finally:
        store.delete_job(job)
        zk.delete_tree("bench checkpoint", bare_dir)
    s_ours, s_bare = _stats("checkpoint save", ours), _stats("bare kazoo create+set", bare)
    return {
        "znode_bytes": znode_size,
        "state_bytes": state_bytes,
        "ours": s_ours.to_json(),
        "bare": s_bare.to_json(),
        "ratio_p50": round(s_ours.p50_ms / s_bare.p50_ms, 2),
        "ratio_p99": round(s_ours.p99_ms / s_bare.p99_ms, 2),
    }


class BareTopicIO:
    """The baseline: a plain idempotent producer and an assigned consumer on the state topic."""

    def __init__(self, profile: ClusterProfile, topic: str, chunk_bytes: int, timeout: float = 120.0) -> None:
        self.topic, self.chunk, self.timeout = topic, chunk_bytes, timeout
        self.producer = Producer(profile.librdkafka(**PRODUCER_CONFIG, **{
            "message.max.bytes": max(1_000_000, chunk_bytes + 2048)}))
        self.consumer = Consumer(profile.librdkafka(**CONSUMER_CONFIG, **{"group.id": "kafkaops-bench-bare"}))
        self.keys: list[bytes] = []

    def write(self, data: bytes, partition: int) -> tuple[int, int]:
        prefix = uuid.uuid4().hex[:16]
        offsets: list[int] = []
        n = max(1, -(-len(data) // self.chunk))
        keys = [f"bench-bare/{prefix}/{i:05d}".encode() for i in range(n)]
        for i, key in enumerate(keys):
            self.producer.produce(self.topic, key=key, value=data[i * self.chunk:(i + 1) * self.chunk],
                                  partition=partition, on_delivery=lambda e, m: offsets.append(int(m.offset() or 0)))
        if self.producer.flush(self.timeout) or len(offsets) != n:
            raise BenchError(f"bare produce to {self.topic}: not acknowledged within {self.timeout:.0f}s")
        self.keys += keys
        return min(offsets), max(offsets)

    def read(self, partition: int, first: int, last: int) -> bytes:
        parts: list[bytes] = []
        self.consumer.assign([TopicPartition(self.topic, partition, first)])
        deadline = Deadline(self.timeout)
        try:
            while not parts or len(parts) < last - first + 1:
                if deadline.expired:
                    raise BenchError(f"bare consume from {self.topic}: incomplete after {self.timeout:.0f}s")
                for msg in self.consumer.consume(num_messages=last - first + 1, timeout=deadline.remaining(cap=1)):
                    err = msg.error()
                    if err is not None and err.code() != KafkaError._PARTITION_EOF:
                        raise BenchError(f"bare consume from {self.topic}: {err.str()}")
                    if err is None and first <= int(msg.offset() or 0) <= last:
                        parts.append(msg.value() or b"")
        finally:
            self.consumer.unassign()
        return b"".join(parts)

    def close(self, partition: int) -> None:
        for key in self.keys:  # tombstones: compaction reclaims the bench's records
            self.producer.produce(self.topic, key=key, value=None, partition=partition)
        self.producer.flush(self.timeout)
        self.consumer.close()


def large_state(store: CheckpointStore, backend: TopicStateBackend, *, size: int,
                rounds: int = 3) -> dict[str, Any]:
    """Save + load of ``size`` incompressible bytes through the store vs bare produce + consume."""
    state = os.urandom(size)
    job = f"bench-large-{uuid.uuid4().hex[:8]}"
    epoch = store.claim(job, "bench")
    location = backend.locate(job, "probe", size)
    bare = BareTopicIO(backend.profile, backend.topic, int(location["chunk_bytes"]))
    results: list[dict[str, float]] = []

    def ours() -> dict[str, float]:
        t0 = time.perf_counter()
        ckpt = store.save(job, {("bench", 0): len(results)}, state, epoch=epoch)
        t1 = time.perf_counter()
        loaded = store.get(job, ckpt)
        t2 = time.perf_counter()
        if loaded.state != state:
            raise BenchError("large state did not round-trip")
        return {"save_s": t1 - t0, "load_s": t2 - t1, "total_s": t2 - t0}

    def baseline() -> dict[str, float]:
        t0 = time.perf_counter()
        first, last = bare.write(state, int(location["partition"]))
        t1 = time.perf_counter()
        if bare.read(int(location["partition"]), first, last) != state:
            raise BenchError("bare records did not round-trip")
        t2 = time.perf_counter()
        return {"bare_write_s": t1 - t0, "bare_read_s": t2 - t1, "bare_total_s": t2 - t0}

    try:
        baseline()  # warm both: connections, metadata, the topic's first segment
        ours()
        for r in range(rounds):
            pair = (ours, baseline) if r % 2 else (baseline, ours)
            row: dict[str, float] = {}
            for run in pair:
                row.update(run())
            results.append(row)
            store.prune(job, keep=1)
    finally:
        store.delete_job(job)
        bare.close(int(location["partition"]))
    med = {k: round(statistics.median(r[k] for r in results), 3) for k in results[0]}
    return {"bytes": size, "rounds": rounds, "median": med,
            "mb_per_s": round(2 * size / MB / med["total_s"], 1),
            "bare_mb_per_s": round(2 * size / MB / med["bare_total_s"], 1),
            # each round runs both back to back: the median of the rounds' ratios resists load drift
            "throughput_ratio": round(statistics.median(r["bare_total_s"] / r["total_s"] for r in results), 2),
            "runs": [{k: round(v, 3) for k, v in r.items()} for r in results]}


def zookeeper_footprint(coord: Coordinator, pids: Sequence[int]) -> dict[str, Any]:
    """mntr data size / znode count of the first server, heap after GC of each pid."""
    host = coord.hosts.split(",")[0]
    doc: dict[str, Any] = {}
    try:
        m = mntr(host)
        doc["data_bytes"] = int(m.get("zk_approximate_data_size", 0))
        doc["znodes"] = int(m.get("zk_znode_count", 0))
    except (ProbeError, ValueError) as exc:
        doc["mntr_error"] = str(exc)
    heaps = []
    for pid in pids:
        try:
            heaps.append(round(heap_after_gc_mb(pid), 1))
        except ProbeError as exc:
            doc["heap_error"] = str(exc)
    if heaps:
        doc["heap_after_gc_mb"] = max(heaps)
    return doc


def sustained(coord: Coordinator, store: CheckpointStore, profile: ClusterProfile, *, saves: int = 50,
              size: int = 10 * MB, zookeeper_pids: Sequence[int] = (), keep: int = 3) -> dict[str, Any]:
    """``saves`` saves of a ``size`` state in a row (pruned every ``keep`` saves, keeping
    ``keep``); ZooKeeper's footprint before and after, and the health snapshot after."""
    job = f"bench-sustained-{uuid.uuid4().hex[:8]}"
    epoch = store.claim(job, "bench")
    before = zookeeper_footprint(coord, zookeeper_pids)
    times: list[float] = []
    try:
        for i in range(saves):
            state = os.urandom(size)
            t = time.perf_counter()
            store.save(job, {("bench", 0): i}, state, epoch=epoch)
            times.append(time.perf_counter() - t)
            if (i + 1) % keep == 0:
                store.prune(job, keep=keep)
        after = zookeeper_footprint(coord, zookeeper_pids)
    finally:
        store.delete_job(job)
    health = cluster_health(profile)
    counts = health.counts
    doc: dict[str, Any] = {
        "saves": saves, "bytes": size, "save": _stats("10 MB save", times).to_json(),
        "zookeeper_before": before, "zookeeper_after": after,
        "health": {"brokers_alive": len(health.live_brokers), "brokers_dead": sorted(health.dead_brokers),
                   "under_replicated": counts.under_replicated, "under_min_isr": counts.under_min_isr,
                   "offline": counts.offline},
    }
    doc["health"]["clean"] = not (health.dead_brokers or counts.under_replicated or counts.under_min_isr
                                  or counts.offline)
    if "heap_after_gc_mb" in before and "heap_after_gc_mb" in after:
        doc["heap_growth_mb"] = round(after["heap_after_gc_mb"] - before["heap_after_gc_mb"], 1)
    return doc


def targets(result: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(target, measured, wanted, met) rows for the figures present in ``result``."""
    rows: list[tuple[str, str, str, bool]] = []
    save = result.get("save")
    if save:
        rows.append(("small save p99 vs bare kazoo txn", f"{save['ratio_p99']:.2f}x", "<= 2x", save["ratio_p99"] <= 2))
    for large in result.get("large", []):
        mb, med = large["bytes"] // MB, large["median"]
        limit = {10: 1.0, 100: 8.0}.get(mb)
        if limit is not None:
            rows.append((f"{mb} MB save+load", f"{med['total_s']:.2f} s", f"<= {limit:g} s", med["total_s"] <= limit))
        rows.append((f"{mb} MB throughput vs bare produce+consume", f"{large['throughput_ratio']:.2f}x", ">= 0.8x",
                     large["throughput_ratio"] >= 0.8))
    s = result.get("sustained")
    if s:
        if "heap_growth_mb" in s:
            rows.append((f"ZooKeeper heap after {s['saves']} x {s['bytes'] // MB} MB saves",
                         f"{s['heap_growth_mb']:+.1f} MB", "<= +64 MB", s["heap_growth_mb"] <= 64))
        rows.append(("cluster health after the bench", "clean" if s["health"]["clean"] else str(s["health"]),
                     "clean", bool(s["health"]["clean"])))
    return rows


def bench_checkpoint(
    profile: ClusterProfile,
    coord: Coordinator,
    *,
    rounds: int = 1000,
    large_mb: Sequence[int] = (10, 100),
    large_rounds: int = 3,
    sustained_saves: int = 50,
    sustained_mb: int = 10,
    zookeeper_pids: Sequence[int] = (),
    topic: str = STATE_TOPIC,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """All three parts (a part with 0 rounds / sizes / saves is skipped); ``targets`` lists the verdicts."""
    say = progress or (lambda _: None)
    BoundedZooKeeper(coord).writable("bench checkpoint")
    result: dict[str, Any] = {"inline_limit": INLINE_LIMIT, "topic": topic}
    if rounds > 0:
        say(f"small states: {rounds} saves and bare transactions")
        result["save"] = save_latency(coord, rounds=rounds)
    if large_mb or sustained_saves:
        with TopicStateBackend(profile, topic) as backend:
            store = CheckpointStore(coord, state_backend=backend)
            result["large"] = []
            for mb in large_mb:
                say(f"{mb} MB state: {large_rounds} rounds of save+load and bare produce+consume")
                result["large"].append(large_state(store, backend, size=mb * MB, rounds=large_rounds))
            if sustained_saves:
                say(f"{sustained_saves} saves of a {sustained_mb} MB state in a row")
                result["sustained"] = sustained(coord, store, profile, saves=sustained_saves, size=sustained_mb * MB,
                                                zookeeper_pids=zookeeper_pids)
    result["targets"] = [{"target": t, "measured": m, "wanted": w, "met": ok} for t, m, w, ok in targets(result)]
    return result

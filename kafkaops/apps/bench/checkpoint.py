"""`kafkaops bench checkpoint`: checkpoint saves and loads next to bare kazoo calls, in one run.

- save latency: ``CheckpointStore.save`` of a small state vs a bare kazoo transaction
  (create + set) of the same znode size on the same session, interleaved so machine
  noise hits both alike; reported as p50/p99 and their ratios.
- large state: save + load of a 10 MB incompressible state, next to bare kazoo writes
  and reads of the same bytes in 900 KB znodes.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from dataclasses import dataclass
from typing import Any

from kafkaops.coord.checkpoint_format import CHUNK_BYTES, encode
from kafkaops.coord.checkpoints import CheckpointStore
from kafkaops.coord.session import Coordinator


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
    job = f"bench-{uuid.uuid4().hex[:8]}"
    bare_dir = coord.path(f"bench-bare-{uuid.uuid4().hex[:8]}")
    client = coord.client
    epoch = store.claim(job, "bench")
    offsets = {("bench", p): 1000 + p for p in range(3)}
    state = os.urandom(state_bytes)
    znode_size = len(encode(job, offsets, state, {}, epoch, "0" * 16).znode)
    payload = os.urandom(znode_size)
    coord.ensure_path(bare_dir)
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
        txn.commit()
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
        client.delete(bare_dir, recursive=True)
    s_ours, s_bare = _stats("checkpoint save", ours), _stats("bare kazoo create+set", bare)
    return {
        "znode_bytes": znode_size,
        "state_bytes": state_bytes,
        "ours": s_ours.to_json(),
        "bare": s_bare.to_json(),
        "ratio_p50": round(s_ours.p50_ms / s_bare.p50_ms, 2),
        "ratio_p99": round(s_ours.p99_ms / s_bare.p99_ms, 2),
    }


def large_state(coord: Coordinator, *, size: int = 10 * 1024 * 1024, rounds: int = 3) -> dict[str, Any]:
    """Save + load of ``size`` bytes of incompressible state vs bare chunk writes/reads."""
    store = CheckpointStore(coord)
    client = coord.client
    state = os.urandom(size)
    results: list[dict[str, float]] = []
    for r in range(rounds):
        job = f"bench-large-{uuid.uuid4().hex[:8]}"
        bare_dir = coord.path(f"bench-bare-{uuid.uuid4().hex[:8]}")
        try:
            epoch = store.claim(job, "bench")
            t0 = time.perf_counter()
            ckpt = store.save(job, {("bench", 0): r}, state, epoch=epoch)
            t1 = time.perf_counter()
            loaded = store.get(job, ckpt)
            t2 = time.perf_counter()
            if loaded.state != state:
                raise AssertionError("large state did not round-trip")
            store.delete_job(job)
            coord.ensure_path(bare_dir)
            chunks = [state[i:i + CHUNK_BYTES] for i in range(0, size, CHUNK_BYTES)]
            t3 = time.perf_counter()
            pending = [client.create_async(f"{bare_dir}/{i:04d}", c, acl=coord.acl) for i, c in enumerate(chunks)]
            for p in pending:
                p.get()
            t4 = time.perf_counter()
            reads = [client.get_async(f"{bare_dir}/{i:04d}") for i in range(len(chunks))]
            data = b"".join(bytes(g.get()[0]) for g in reads)
            t5 = time.perf_counter()
            if data != state:
                raise AssertionError("bare chunks did not round-trip")
            results.append({"save_s": t1 - t0, "load_s": t2 - t1, "total_s": t2 - t0,
                            "bare_write_s": t4 - t3, "bare_read_s": t5 - t4, "bare_total_s": t5 - t3})
        finally:
            store.delete_job(job)
            if client.exists(bare_dir):
                client.delete(bare_dir, recursive=True)
    med = {k: round(statistics.median(r[k] for r in results), 3) for k in results[0]}
    return {"bytes": size, "rounds": rounds, "median": med,
            "ratio_total": round(med["total_s"] / med["bare_total_s"], 2),
            "runs": [{k: round(v, 3) for k, v in r.items()} for r in results]}


def bench_checkpoint(coord: Coordinator, *, rounds: int = 1000, large_mb: int = 10) -> dict[str, Any]:
    """Save latency over ``rounds`` saves, and (unless ``large_mb`` is 0) a large state's round trip."""
    result: dict[str, Any] = {"save": save_latency(coord, rounds=rounds)}
    if large_mb > 0:
        result["large"] = large_state(coord, size=large_mb * 1024 * 1024)
    return result

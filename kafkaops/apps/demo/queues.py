"""`kafkaops demo queues`: point-to-point (a share group) beside publish-subscribe (consumer groups).

On one topic of 2 partitions: two consumer groups each receive every record (pub-sub;
inside a group a partition has one member); a share group of 4 member processes, twice as
many members as partitions, splits the records among all 4, each processed once; in a
second share group one member is SIGKILLed while it holds a fetched batch: its connection
drops, the broker releases what it held, and the others get those records again; in a
third, a member frozen by SIGSTOP keeps its connection, and its records come back when the
acquisition lock expires. Nothing lost. Last, share group vs consumer group throughput,
side by side. Needs Kafka 4.2+ (KRaft).
"""

from __future__ import annotations

import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kafkaops.admin import admin_client, create_topic
from kafkaops.apps.bench.queues import PARTITIONS, bench_queues, produce_json
from kafkaops.apps.demo.share_members import Coord, ShareRun, run_share_group
from kafkaops.apps.demo.steps import Step
from kafkaops.clients.share_groups import (
    AUTO_OFFSET_RESET,
    LOCK_DURATION,
    ShareConsumerError,
    configure_share_group,
    share_group_config,
)
from kafkaops.config import ClusterProfile
from kafkaops.waits import Deadline

MEMBERS = 4
LOCK_MS = 3000
"""The demo share groups' acquisition lock: a dead member's records come back after this."""


def queue_steps(profile: ClusterProfile, records: int = 2000, *, bench_records: int = 20_000,
                rounds: int = 3, workdir: Path | None = None) -> Iterator[Step]:
    """The demo, step by step (see the module docstring); each Step's detail carries its figures."""
    share_group_config(profile, f"demo-probe-{uuid.uuid4().hex[:6]}")  # a clear error without share groups
    run_id = uuid.uuid4().hex[:6]
    brokers = len(admin_client(profile).list_topics(timeout=15).brokers)
    topic = f"demo-queue-{run_id}"
    create_topic(profile, topic, PARTITIONS, min(3, brokers))
    coords = produce_json(profile, topic, records, batch_records=10)
    yield Step("topic", f"{topic}: {PARTITIONS} partitions, {len(coords)} records acknowledged "
                        f"({_per_partition(coords)})", len(coords) == records)
    yield _pubsub_step(profile, topic, coords, run_id)
    with tempfile.TemporaryDirectory(prefix="kafkaops-queues-") as tmp:
        where = workdir or Path(tmp)
        yield _split_step(_share_run(profile, topic, f"demo-workers-{run_id}", where, coords))
        yield _fault_step(_share_run(profile, topic, f"demo-killed-{run_id}", where, coords, "kill"))
        yield _fault_step(_share_run(profile, topic, f"demo-frozen-{run_id}", where, coords, "pause"))
    if bench_records > 0:
        yield _throughput_step(profile, bench_records, rounds)


def _share_run(profile: ClusterProfile, topic: str, group: str, workdir: Path, coords: set[Coord],
               fault: str | None = None) -> ShareRun:
    """A share group of MEMBERS processes over the topic, from its first record, with a short lock."""
    configure_share_group(profile, group, {AUTO_OFFSET_RESET: "earliest"})
    try:
        configure_share_group(profile, group, {LOCK_DURATION: LOCK_MS})
    except ShareConsumerError:  # the brokers' group.share.min.record.lock.duration.ms is higher: keep theirs
        pass
    return run_share_group(profile, topic, group, workdir, lambda: coords, members=MEMBERS, fault=fault)


def _pubsub_step(profile: ClusterProfile, topic: str, coords: set[Coord], run_id: str) -> Step:
    """Two consumer groups read the topic; each must see every record."""
    got = {f"demo-{name}-{run_id}": _read_group(profile, topic, f"demo-{name}-{run_id}", len(coords))
           for name in ("audit", "billing")}
    parts = "; ".join(f"{g}: {len(seen & coords)} records ({_per_partition(seen)})" for g, seen in got.items())
    ok = all(seen >= coords for seen in got.values())
    return Step("publish-subscribe: 2 consumer groups", f"each group receives every record: {parts}", ok)


def _split_step(run: ShareRun) -> Step:
    counts = run.counts
    once = all(n == 1 for n in counts.values())
    first = all(dc == 1 for m in run.members for _, _, dc in m.processed)
    busy = all(n > 0 for n in run.per_member.values())
    detail = (f"{MEMBERS} members on {PARTITIONS} partitions split {len(run.expected)} records: "
              f"{_members(run)}; processed exactly once: {'yes' if once and first else 'no'}, "
              f"lost {run.lost}, in {run.seconds:.1f}s")
    return Step("point-to-point: a share group of 4", detail, busy and once and first and run.lost == 0)


def _fault_step(run: ShareRun) -> Step:
    victim = next(m for m in run.members if m.fault)
    how = "SIGKILLed" if victim.fault == "kill" else "frozen (SIGSTOP)"
    why = ("its connection closed, the broker released its records" if victim.fault == "kill"
           else f"its records' acquisition lock ({LOCK_MS / 1000:.0f}s) expired")
    held = victim.holding
    again = run.redelivered
    got_held = held is not None and any((p, o) == held[:2] for _, p, o, _ in again)
    takers = Counter(name for name, *_ in again)
    after = f"{run.redelivered_after:.1f}s" if run.redelivered_after is not None else "never"
    detail = (f"{victim.name} {how} after {len(victim.processed)} records, holding "
              f"{_coord(held)} and the rest of its batch; {why}: {len(again)} record(s) delivered again "
              f"(delivery count 2) to {', '.join(f'{n} ({c})' for n, c in sorted(takers.items())) or 'nobody'}, "
              f"the last {after} after the fault; lost {run.lost}, processed twice {run.duplicates}; {_members(run)}")
    title = "a member dies mid-batch" if victim.fault == "kill" else "a member freezes mid-batch"
    return Step(title, detail, got_held and run.lost == 0)


def _throughput_step(profile: ClusterProfile, records: int, rounds: int) -> Step:
    report = bench_queues(profile, records, rounds, skewed_records=0)
    cg, sg = report.measurement("consumer-group"), report.measurement("share-group")
    ratio = report.ratios["share-group/consumer-group"]
    detail = (f"one member each, {records} records, median of {rounds}: consumer group {cg.rate:,.0f} records/s, "
              f"share group {sg.rate:,.0f} records/s: ratio {ratio:.2f}x "
              f"(CPU per record {report.ratios['share-group/consumer-group (cpu)']:.2f}x)")
    return Step("throughput: share group vs consumer group", detail, cg.records == records and sg.records == records)


def _read_group(profile: ClusterProfile, topic: str, group: str, count: int, timeout: float = 60.0) -> set[Coord]:
    """What one member of a new consumer group reads from the start (stops at ``count`` or ``timeout``)."""
    from kafkaops.clients.consumer import TypedConsumer
    from kafkaops.serde.codec import JsonCodec

    seen: set[Coord] = set()
    deadline = Deadline(timeout)
    with TypedConsumer(profile, topic, group, JsonCodec(), dead_letter=False) as consumer:
        while len(seen) < count and not deadline.expired:
            for rec in consumer.poll_batch(500, timeout=deadline.remaining(cap=1.0)):
                seen.add((rec.partition, rec.offset))
    return seen


def _per_partition(coords: set[Coord]) -> str:
    per = Counter(p for p, _ in coords)
    return ", ".join(f"partition {p}: {per[p]}" for p in sorted(per))


def _members(run: ShareRun) -> str:
    return ", ".join(f"{name} {n}" + (f" ({_FAULTED[m.fault]})" if m.fault else "")
                     for m, (name, n) in zip(run.members, run.per_member.items(), strict=True))


def _coord(c: Any) -> str:
    return f"partition {c[0]} offset {c[1]}" if c is not None else "nothing"


_FAULTED = {"kill": "killed", "pause": "frozen"}

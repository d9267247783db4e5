"""Share-group members as child processes, and what they did: the demo's and the tests' workers.

Each member is a :class:`~kafkaops.clients.share_consumer.TypedShareConsumer` in its own
process (so one can die by SIGKILL holding records, as a crashed worker does), writing
JSON lines to a file of its own: ``ready``, one ``processed`` per record it finished,
``holding`` (a member told to hang, just before it does), ``closed`` with its stats.
:func:`run_share_group` starts the members, feeds the topic, optionally kills (SIGKILL) or
freezes (SIGSTOP) one while it holds a fetched batch, waits until every expected record was
processed, stops the rest with SIGTERM and returns a :class:`ShareRun`.

What brings a failed member's records back differs: a killed process' connections close,
and the broker releases what it held at once; a frozen one keeps its connections, and its
records come back when their acquisition lock expires (``share.record.lock.duration.ms``).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kafkaops.config import ClusterProfile
from kafkaops.waits import WaitTimeout, wait_until

Coord = tuple[int, int]
"""(partition, offset) of a record on the run's one topic."""


@dataclass
class MemberRun:
    """One member's events: records processed as (partition, offset, delivery_count), in order."""

    name: str
    processed: list[tuple[int, int, int]] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    holding: tuple[int, int, int] | None = None
    fault: str | None = None
    """"kill" or "pause" when this member was the one made to fail."""
    ready: bool = False
    closed: bool = False
    last_redelivery: float | None = None
    """Wall-clock time this member finished its last record that came on a second or later delivery."""


@dataclass
class ShareRun:
    """A share group's run over a known set of records."""

    group: str
    members: list[MemberRun]
    expected: set[Coord]
    seconds: float
    fault_at: float | None = None
    """Seconds from the start to the fault (kill or pause)."""
    redelivered_after: float | None = None
    """Seconds from the fault until the last record the failed member held was processed by another."""

    @property
    def per_member(self) -> dict[str, int]:
        return {m.name: len(m.processed) for m in self.members}

    @property
    def counts(self) -> Counter[Coord]:
        """How many times each record was processed, over all members."""
        return Counter((p, o) for m in self.members for p, o, _ in m.processed)

    @property
    def lost(self) -> int:
        return len(self.expected - set(self.counts))

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.counts.values() if n > 1)

    @property
    def redelivered(self) -> list[tuple[str, int, int, int]]:
        """(member, partition, offset, delivery_count) of every record processed on a second or later delivery."""
        return [(m.name, p, o, dc) for m in self.members for p, o, dc in m.processed if dc > 1]

    def to_json(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k not in ("expected", "members")},
                "expected": len(self.expected), "per_member": self.per_member, "lost": self.lost,
                "duplicates": self.duplicates, "redelivered": len(self.redelivered),
                "failed": {m.name: m.fault for m in self.members if m.fault}}


def share_member(profile: ClusterProfile, topic: str, group: str, out: str, go: str, work_ms: float,
                 hold_after: int | None, max_poll_records: int) -> None:
    """A member's process: once the file ``go`` exists (all members start together), process
    records (``work_ms`` each) until SIGTERM or its parent dies.
    With ``hold_after``: after that many records, accept and commit each one as it is done,
    then announce ``holding`` and hang on the next, keeping the rest of its fetched batch."""
    from kafkaops.clients.share_consumer import ShareRecord, TypedShareConsumer
    from kafkaops.serde.codec import JsonCodec

    parent = os.getppid()
    with open(out, "a", buffering=1) as f:
        def emit(**doc: Any) -> None:
            f.write(json.dumps(doc) + "\n")

        consumer: TypedShareConsumer[Any] = TypedShareConsumer(
            profile, topic, group, JsonCodec(), handle_sigterm=True, dead_letter=False,
            config={"max.poll.records": max_poll_records})
        emit(event="ready", pid=os.getpid())
        while not os.path.exists(go) and os.getppid() == parent and not consumer.stopping:
            time.sleep(0.02)
        done = 0

        def handle(rec: ShareRecord[Any]) -> None:
            nonlocal done
            if hold_after is not None and done >= hold_after:
                emit(event="holding", p=rec.partition, o=rec.offset, dc=rec.delivery_count)
                while os.getppid() == parent:  # until SIGKILL (or the parent is gone)
                    time.sleep(0.05)
                raise SystemExit(1)
            time.sleep(work_ms / 1000)
            if hold_after is not None:
                consumer.accept(rec)
                consumer.commit()
            emit(event="processed", p=rec.partition, o=rec.offset, dc=rec.delivery_count, t=time.time())
            done += 1

        with consumer:
            while not consumer.stopping and os.getppid() == parent:
                consumer.process(handle, idle_timeout=1.0)
        emit(event="closed", stats=asdict(consumer.stats))


def read_member(name: str, path: Path) -> MemberRun:
    """A member's events so far (a line being written is skipped)."""
    run = MemberRun(name)
    if not path.exists():
        return run
    for line in path.read_text().splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        ev = doc.get("event")
        if ev == "processed":
            run.processed.append((doc["p"], doc["o"], doc["dc"]))
            if doc["dc"] > 1:
                run.last_redelivery = max(run.last_redelivery or 0.0, doc["t"])
        elif ev == "holding":
            run.holding = (doc["p"], doc["o"], doc["dc"])
        elif ev == "ready":
            run.ready = True
        elif ev == "closed":
            run.closed, run.stats = True, doc["stats"]
    return run


def run_share_group(
    profile: ClusterProfile,
    topic: str,
    group: str,
    workdir: Path,
    feed: Callable[[], set[Coord]],
    *,
    members: int = 4,
    work_ms: float = 2.0,
    max_poll_records: int = 10,
    fault: str | None = None,
    fault_after: int = 5,
    timeout: float = 120.0,
) -> ShareRun:
    """Start ``members`` member processes of ``group``; once all are ready, ``feed()`` returns
    the coordinates of the records to process (producing them if need be) and the members
    start. With ``fault`` ("kill" or "pause"), the last member hangs after ``fault_after``
    records and is SIGKILLed or SIGSTOPped as soon as it says so. Returns when every record
    was processed (or ``timeout`` passed: the run then shows what was lost)."""
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = multiprocessing.get_context("spawn")
    names = [f"member-{i + 1}" for i in range(members)]
    paths = [workdir / f"{group}-{n}.jsonl" for n in names]
    go = workdir / f"{group}.go"
    if fault not in (None, "kill", "pause"):
        raise ValueError(f"fault: kill or pause, not {fault!r}")
    victim = members - 1 if fault is not None else None
    procs = [ctx.Process(target=share_member, name=n, daemon=True, args=(
        profile, topic, group, str(p), str(go), work_ms, fault_after if i == victim else None, max_poll_records))
        for i, (n, p) in enumerate(zip(names, paths, strict=True))]

    def runs() -> list[MemberRun]:
        return [read_member(n, p) for n, p in zip(names, paths, strict=True)]

    def all_processed() -> bool:
        return expected <= {(p, o) for r in runs() for p, o, _ in r.processed}

    expected: set[Coord] = set()
    fault_at: float | None = None
    fault_wall = 0.0
    try:
        for proc in procs:
            proc.start()
        wait_until(lambda: all(r.ready for r in runs()) or _dead(procs), 90, f"{members} members of {group} to start")
        if _dead(procs):
            raise WaitTimeout(f"a member of {group} exited at start (exit codes {[p.exitcode for p in procs]})")
        expected = feed()
        start = time.monotonic()
        go.touch()
        if victim is not None:
            wait_until(lambda: runs()[victim].holding is not None, timeout, f"{names[victim]} to hold records")
            os.kill(procs[victim].pid or 0, signal.SIGKILL if fault == "kill" else signal.SIGSTOP)
            fault_at, fault_wall = time.monotonic() - start, time.time()
        try:
            wait_until(all_processed, timeout, f"every record of {topic} processed by {group}", interval=0.1)
        except WaitTimeout:
            pass  # the ShareRun shows what was lost
        seconds = time.monotonic() - start
    finally:
        if victim is not None and procs[victim].is_alive():
            procs[victim].kill()  # SIGKILL ends a stopped process too
        for proc in procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: the member stops after its record, acknowledges, leaves
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
    result = runs()
    redelivered_after = None
    if victim is not None:
        result[victim].fault = fault
        last = [r.last_redelivery for r in result if r.last_redelivery is not None]
        redelivered_after = max(last) - fault_wall if last else None
    return ShareRun(group, result, expected, seconds, fault_at, redelivered_after)


def _dead(procs: list[Any]) -> bool:
    return any(p.exitcode is not None for p in procs)

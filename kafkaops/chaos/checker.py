"""The properties a chaos cell must keep, checked on its history (pure functions).

Producer side, against the topic read back at the end: no acknowledged record lost or
moved from the offset it was acknowledged at; no (writer, sequence) twice in the log (the
idempotent producer promises it); no record visible that was neither acknowledged nor in
doubt; each writer's records in sequence order within a partition. Consumer side: every
record of the log reached the group; within one ownership of a partition, offsets strictly
increase and each key's records come in order; nothing delivered that is not in the log.
Aggregate: the checkpointed per-key counts equal the log's, exactly.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from kafkaops.chaos.history import Delivery, LogRecord, Sent

EXAMPLES = 5


@dataclass(frozen=True)
class Check:
    """One property: how many times it was violated, with a few examples."""

    name: str
    violations: int
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.violations == 0

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "passed": self.passed, "violations": self.violations, "detail": self.detail}


def _check(name: str, bad: Sequence[object], what: str) -> Check:
    if not bad:
        return Check(name, 0)
    sample = ", ".join(str(b) for b in list(bad)[:EXAMPLES])
    return Check(name, len(bad), f"{len(bad)} {what}, e.g. {sample}")


def check_producer(sent: Iterable[Sent], log: Sequence[LogRecord]) -> list[Check]:
    """Acknowledged records kept at their offsets, no duplicates, nothing unacknowledged
    visible, and each writer's order per partition."""
    by_id = {(s.writer, s.seq): s for s in sent}
    at_offset = {(r.partition, r.offset): r for r in log}
    in_log = Counter((r.writer, r.seq) for r in log if r.writer >= 0)
    lost, moved = [], []
    for (w, q), s in sorted(by_id.items()):
        if s.acked_at is None:
            continue
        if in_log[(w, q)] == 0:
            lost.append(f"w{w}#{q}@{s.partition}:{s.offset}")
            continue
        r = at_offset.get((s.partition or 0, s.offset if s.offset is not None else -1))
        if r is None or (r.writer, r.seq) != (w, q):
            moved.append(f"w{w}#{q} acked at {s.partition}:{s.offset}")
    duplicates = [f"w{w}#{q} x{n}" for (w, q), n in sorted(in_log.items()) if n > 1]
    phantoms = []
    for r in log:
        found = by_id.get((r.writer, r.seq))
        if found is None or not (found.acked or found.in_doubt):
            why = "never sent" if found is None else f"failed: {found.error}"
            phantoms.append(f"w{r.writer}#{r.seq} at {r.partition}:{r.offset} ({why})")
    disorder = []
    last: dict[tuple[int, int], LogRecord] = {}
    for r in sorted(log, key=lambda r: (r.partition, r.offset)):
        if r.writer < 0:
            continue
        prev = last.get((r.writer, r.partition))
        if prev is not None and r.seq <= prev.seq:
            disorder.append(f"w{r.writer} #{prev.seq}@{prev.offset} before #{r.seq}@{r.offset} in partition {r.partition}")
        last[(r.writer, r.partition)] = r
    return [
        _check("acknowledged records lost", lost, "acknowledged records not in the log"),
        _check("acknowledged offsets kept", moved, "acknowledged records not at their acknowledged offset"),
        _check("no duplicates", duplicates, "(writer, sequence) pairs written more than once"),
        _check("nothing unacknowledged visible", phantoms, "records in the log never acknowledged nor in doubt"),
        _check("writer order per partition", disorder, "records out of their writer's order"),
    ]


def _unseen_and_foreign(deliveries: Sequence[Delivery], log: Sequence[LogRecord], who: str) -> list[Check]:
    at_offset = {(r.partition, r.offset): r for r in log}
    delivered = {(d.partition, d.offset) for d in deliveries}
    unseen = [f"{r.partition}:{r.offset}" for r in log if (r.partition, r.offset) not in delivered]
    foreign = []
    for d in deliveries:
        r = at_offset.get((d.partition, d.offset))
        if r is None or (r.writer, r.seq) != (d.writer, d.seq):
            foreign.append(f"{d.member} got w{d.writer}#{d.seq} at {d.partition}:{d.offset}")
    return [
        _check(f"every record reached the {who}", unseen, f"records of the log the {who} never got"),
        _check(f"{who} got only the log's records", foreign, "deliveries that do not match the log"),
    ]


def check_group(deliveries: Sequence[Delivery], log: Sequence[LogRecord]) -> list[Check]:
    """Every record delivered at least once; per ownership of a partition, offsets strictly
    increasing and per-key order kept; nothing delivered that the log does not hold."""
    runs: dict[tuple[str, int, int], list[Delivery]] = defaultdict(list)
    for d in deliveries:
        runs[(d.member, d.segment, d.partition)].append(d)
    backwards, key_order = [], []
    for (member, _segment, partition), ds in runs.items():
        keys: dict[tuple[int, str], Delivery] = {}
        for prev, cur in zip(ds, ds[1:], strict=False):
            if cur.offset <= prev.offset:
                backwards.append(f"{member} partition {partition}: {prev.offset} then {cur.offset}")
        for d in ds:
            before = keys.get((d.writer, d.key))
            if before is not None and d.seq <= before.seq:
                key_order.append(f"key {d.key}: w{d.writer}#{before.seq} then #{d.seq} ({member})")
            keys[(d.writer, d.key)] = d
    return [
        *_unseen_and_foreign(deliveries, log, "group"),
        _check("offsets strictly increasing", backwards, "offsets that did not increase within one assignment"),
        _check("per-key order kept", key_order, "records of a key out of order"),
    ]


def check_share(deliveries: Sequence[Delivery], log: Sequence[LogRecord]) -> list[Check]:
    """Every record reached the share group (at least once); nothing foreign."""
    return _unseen_and_foreign(deliveries, log, "share group")


def log_counts(log: Iterable[LogRecord]) -> Counter[str]:
    """Records per key in the log: what an exactly-once aggregate must hold."""
    return Counter(r.key for r in log)


def check_counts(counts: Mapping[str, int], log: Sequence[LogRecord]) -> Check:
    """The aggregate's per-key counts equal the log's, key by key."""
    truth = log_counts(log)
    wrong = [f"{k}: {counts.get(k, 0)} counted, {truth.get(k, 0)} in the log"
             for k in sorted(set(truth) | set(counts)) if counts.get(k, 0) != truth.get(k, 0)]
    return _check("aggregate counts exact", wrong, "keys counted wrong")


def max_ack_gap(sent: Iterable[Sent]) -> float:
    """The longest time between two consecutive acknowledgements (any writer), seconds."""
    times = sorted(s.acked_at for s in sent if s.acked_at is not None)
    return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)

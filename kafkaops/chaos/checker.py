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

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from kafkaops.chaos.history import Delivery, LogRecord, Sent

EXAMPLES = 5
R = TypeVar("R")


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


def _not_increasing(items: Iterable[R], group: Callable[[R], Hashable], value: Callable[[R], int]) -> list[tuple[R, R]]:
    """Consecutive items of one group (in the given order) whose value did not increase: (before, after)."""
    last: dict[Hashable, R] = {}
    bad = []
    for item in items:
        g = group(item)
        prev = last.get(g)
        if prev is not None and value(item) <= value(prev):
            bad.append((prev, item))
        last[g] = item
    return bad


def check_producer(sent: Iterable[Sent], log: Sequence[LogRecord]) -> list[Check]:
    """Acknowledged records kept at their offsets, no duplicates, nothing unacknowledged
    visible, and each writer's order per partition.

    An idempotent producer's retry of a batch the broker had already written is answered
    DUPLICATE_SEQUENCE_NUMBER, and librdkafka (as the Java client) acknowledges its records
    without an offset: those must be in the log, at whatever offset."""
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
        if s.offset is None or s.partition is None:
            continue  # acknowledged without an offset (a retry the broker knew): in the log is all we can check
        r = at_offset.get((s.partition, s.offset))
        if r is None or (r.writer, r.seq) != (w, q):
            moved.append(f"w{w}#{q} acked at {s.partition}:{s.offset}")
    duplicates = [f"w{w}#{q} x{n}" for (w, q), n in sorted(in_log.items()) if n > 1]
    phantoms = []
    for r in log:
        found = by_id.get((r.writer, r.seq))
        if found is None or not (found.acked or found.in_doubt):
            why = "never sent" if found is None else f"failed: {found.error}"
            phantoms.append(f"w{r.writer}#{r.seq} at {r.partition}:{r.offset} ({why})")
    ordered = sorted((r for r in log if r.writer >= 0), key=lambda r: (r.partition, r.offset))
    disorder = [f"w{r.writer} #{prev.seq}@{prev.offset} before #{r.seq}@{r.offset} in partition {r.partition}"
                for prev, r in _not_increasing(ordered, lambda r: (r.writer, r.partition), lambda r: r.seq)]
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
    backwards = [f"{d.member} partition {d.partition}: {prev.offset} then {d.offset}" for prev, d in
                 _not_increasing(deliveries, lambda d: (d.member, d.segment, d.partition), lambda d: d.offset)]
    key_order = [f"key {d.key}: w{d.writer}#{prev.seq} then #{d.seq} ({d.member})" for prev, d in
                 _not_increasing(deliveries, lambda d: (d.member, d.segment, d.writer, d.key), lambda d: d.seq)]
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

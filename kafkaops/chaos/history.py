"""What a chaos cell saw: every record sent and its outcome, every record a consumer got,
and the topic as read back at the end. Plain data, so the checker is pure and testable.

Times are ``time.monotonic()`` seconds of the runner's process.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

DEFINITE_FAILURES = frozenset({
    "NOT_ENOUGH_REPLICAS", "MSG_SIZE_TOO_LARGE", "_MSG_SIZE_TOO_LARGE", "TOPIC_AUTHORIZATION_FAILED",
    "UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC", "_UNKNOWN_PARTITION", "INVALID_RECORD", "CORRUPT_MESSAGE",
    "RECORD_LIST_TOO_LARGE", "INVALID_REQUIRED_ACKS",
})
"""Delivery errors after which the record is certainly not in the log (the broker refused it
before appending). Any other failure (a timeout, a purge, a lost connection) is in doubt."""


@dataclass(slots=True)
class Sent:
    """One record a writer handed to its producer, and what became of it."""

    writer: int
    seq: int
    key: str
    sent_at: float
    acked_at: float | None = None
    partition: int | None = None
    offset: int | None = None
    error: str | None = None
    """The delivery error's name, when the producer gave up on the record."""

    @property
    def acked(self) -> bool:
        return self.acked_at is not None

    @property
    def in_doubt(self) -> bool:
        """No delivery report came, or one whose error leaves it open whether the record was written."""
        if self.acked_at is not None:
            return False
        return self.error is None or self.error not in DEFINITE_FAILURES


class Delivery(NamedTuple):
    """One record handed to a consumer. ``segment`` numbers the member's ownership of the
    partition (a new number on every assignment); share groups have no segments (0)."""

    member: str
    segment: int
    partition: int
    offset: int
    writer: int
    seq: int
    key: str
    at: float


class LogRecord(NamedTuple):
    """One record of the topic as read back at the end (writer -1: not a chaos record)."""

    partition: int
    offset: int
    writer: int
    seq: int
    key: str


@dataclass(frozen=True)
class Injection:
    """A fault's moment: what was done to which node, and when."""

    at: float
    what: str


def first_seen_after(
    sent: Iterable[Sent], seen: Iterable[tuple[int, int, float]], since: float, partitions: Iterable[int]
) -> dict[int, float | None]:
    """Per partition, when the consumer side first saw a record that was sent at or after
    ``since`` (``seen``: (partition, offset, time) observations), or None if it never did.

    This is end-to-end recovery: the write was acknowledged and the record reached the
    consumers (a group member, a share-group member, a checkpoint)."""
    sent_at = {(s.partition, s.offset): s.sent_at for s in sent if s.acked_at is not None}
    first: dict[int, float | None] = {p: None for p in partitions}
    for partition, offset, at in seen:
        t = sent_at.get((partition, offset))
        if t is None or t < since:
            continue
        best = first.get(partition)
        if best is None or at < best:
            first[partition] = at
    return first


def first_covered_after(
    sent: Iterable[Sent], progress: Iterable[tuple[float, dict[int, int]]], since: float, partitions: Iterable[int]
) -> dict[int, float | None]:
    """Like :func:`first_seen_after` for a consumer whose progress is a series of
    (time, {partition: next offset}) snapshots, such as checkpoints: per partition, the
    first snapshot that covers a record sent at or after ``since``."""
    earliest: dict[int, int] = {}
    for s in sent:
        if s.acked_at is not None and s.sent_at >= since and s.partition is not None and s.offset is not None:
            earliest[s.partition] = min(earliest.get(s.partition, s.offset), s.offset)
    first: dict[int, float | None] = {p: None for p in partitions}
    for at, offsets in sorted(progress, key=lambda snap: snap[0]):
        for p, wanted in earliest.items():
            if first.get(p) is None and offsets.get(p, -1) > wanted:
                first[p] = at
    return first

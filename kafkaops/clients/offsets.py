"""At-least-once offset bookkeeping of one consumer, apart from fetching and decoding.

Per partition it keeps the NEXT offset after the last record that was handed out
but not yet acknowledged (``unacked``), acknowledged (``processed``), and handed to
librdkafka's offset store (``stored``). Only ``processed`` offsets of partitions
the consumer still owns are ever stored or committed, so a crash re-delivers what
was not acknowledged and skips nothing. The dicts are mutated in place, never
replaced: the consumer's hot loop binds them once.
"""

from __future__ import annotations

from collections.abc import Iterable

from kafkaops.types import TP


class OffsetTracker:
    """Unacknowledged, processed and stored offsets per assigned partition."""

    __slots__ = ("assigned", "unacked", "processed", "stored")

    def __init__(self) -> None:
        self.assigned: set[TP] = set()
        self.unacked: dict[TP, int] = {}
        self.processed: dict[TP, int] = {}
        self.stored: dict[TP, int] = {}

    # ------------------------------------------------------------------ records
    def delivered(self, tp: TP, offset: int) -> None:
        """A record at ``offset`` was handed out (it counts once acknowledged)."""
        self.unacked[tp] = offset + 1

    def ack_all(self) -> None:
        """Every record handed out so far is processed."""
        if self.unacked:
            self.processed.update(self.unacked)
            self.unacked.clear()

    def ack(self, tp: TP, offset: int) -> None:
        """The record at ``offset`` and the ones before it in its partition are processed."""
        nxt = offset + 1
        if self.processed.get(tp, -1) < nxt:
            self.processed[tp] = nxt
        if self.unacked.get(tp, -1) <= nxt:
            self.unacked.pop(tp, None)

    def skipped(self, tp: TP, offset: int) -> None:
        """A record that will not be handed out (dead-lettered) is done: processed with the
        records before it, or together with an earlier record still being processed."""
        if tp in self.unacked:
            self.unacked[tp] = offset + 1
        else:
            self.processed[tp] = offset + 1

    # ------------------------------------------------------------------ offsets
    def processed_offsets(self, tps: Iterable[TP] | None = None) -> dict[TP, int]:
        """Processed offsets of assigned partitions (of ``tps`` only, if given)."""
        owned = self.assigned if tps is None else self.assigned.intersection(tps)
        return {tp: off for tp, off in self.processed.items() if tp in owned}

    def unstored(self, offsets: dict[TP, int]) -> dict[TP, int]:
        """The part of ``offsets`` librdkafka's offset store does not hold yet."""
        stored = self.stored
        return {tp: off for tp, off in offsets.items() if stored.get(tp) != off}

    def mark_stored(self, offsets: dict[TP, int]) -> None:
        self.stored.update(offsets)

    # ------------------------------------------------------------------ assignment
    def assign(self, tps: Iterable[TP], *, incremental: bool) -> None:
        """Partitions were assigned (added to the assignment, or replacing it); progress
        left from an earlier ownership of them is dropped."""
        tps = list(tps)
        for tp in tps:
            self.processed.pop(tp, None)
            self.stored.pop(tp, None)
        if not incremental:
            self.assigned.clear()
        self.assigned.update(tps)

    def start_at(self, tp: TP, offset: int) -> None:
        """The partition starts at ``offset`` from an offset source: the records before it count as processed."""
        self.processed[tp] = offset

    def forget(self, tps: Iterable[TP]) -> None:
        """Partitions were revoked or lost: nothing about them may be stored or committed any more."""
        for tp in tps:
            self.assigned.discard(tp)
            self.unacked.pop(tp, None)
            self.processed.pop(tp, None)
            self.stored.pop(tp, None)

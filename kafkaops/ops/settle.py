"""Settling: transient leaderless states held back between the model and its publication.

During a leader election a source can show a partition without a leader for a moment
(leader -1 in one metadata answer, then the new leader). Diffed naively that is
``LeaderChanged 3->-1``, ``PartitionOffline``, ``LeaderChanged -1->2`` for a partition
clients never lost. :class:`Settler` sits between the monitor's model and the view it
publishes (and diffs into events):

- a partition that was led in the published view and is leaderless in the model keeps
  its published state for up to ``settle`` seconds; if a leader comes back in time, the
  next diff reports one ``LeaderChanged old->new`` (and whatever ISR change came with it);
  if not, the partition is published offline once the time is up (``PartitionOffline``);
- a new partition (a new topic) that has no leader yet is left out of the view for up to
  ``settle`` seconds, so a topic being created is not reported offline.

Everything else passes straight through, so each real change still yields its events
once. The monitor asks :meth:`Settler.due_in` how long it may sleep before a held
partition must be published.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from kafkaops.ops.health import ClusterHealth, PartitionHealth
from kafkaops.types import TP

DEFAULT_SETTLE = 1.0
"""Seconds a partition must stay leaderless before it is reported offline."""


class Settler:
    """Holds back leaderless partitions for ``settle`` seconds (see module doc)."""

    def __init__(self, settle: float = DEFAULT_SETTLE, clock: Callable[[], float] = time.monotonic) -> None:
        if settle < 0:
            raise ValueError(f"the settle time must be >= 0 seconds, not {settle}")
        self.settle = settle
        self._clock = clock
        self._since: dict[TP, float] = {}
        """Leaderless partitions being held, and since when (monotonic)."""
        self._sources: dict[TP, str] = {}

    def view(self, published: ClusterHealth | None, model: ClusterHealth,
             sources: dict[tuple[object, ...], str] | None = None) -> ClusterHealth:
        """The health to publish after ``published`` given the ``model``.

        ``sources`` (event subject -> source) gets the source that made a held partition
        leaderless when it is finally published offline.
        """
        if published is None or self.settle == 0:
            self._since.clear()
            return model
        now = self._clock()
        held: dict[TP, PartitionHealth | None] = {}
        for tp, p in model.partitions.items():
            if not p.offline:
                self._forget(tp)
                continue
            before = published.partitions.get(tp)
            if before is not None and before.offline:
                self._forget(tp)  # it was published offline already
                continue
            since = self._since.setdefault(tp, now)
            key = ("partition", *tp)
            if sources is not None and key in sources:
                self._sources.setdefault(tp, sources[key])
            if now - since < self.settle:
                held[tp] = before  # None: a new partition, left out for now
            elif sources is not None:
                sources.setdefault(key, self._sources.get(tp, ""))
        for tp in [tp for tp in self._since if tp not in model.partitions]:
            self._forget(tp)
        if not held:
            return model
        parts = {tp: p for tp, p in model.partitions.items() if tp not in held}
        parts.update({tp: p for tp, p in held.items() if p is not None})
        return replace(model, partitions=parts)

    def due_in(self) -> float | None:
        """Seconds until the earliest held partition must be published (None: none held)."""
        if not self._since:
            return None
        return max(0.0, min(self._since.values()) + self.settle - self._clock())

    @property
    def holding(self) -> frozenset[TP]:
        return frozenset(self._since)

    def _forget(self, tp: TP) -> None:
        self._since.pop(tp, None)
        self._sources.pop(tp, None)

"""Consumer lag judged as Burrow judges it: a sliding window per partition, no thresholds.

Burrow (LinkedIn; ``core/internal/evaluator/caching.go``) keeps each partition's last N
committed offsets, each with its lag and commit time, and applies five rules in order:

1. the lag was zero at some point in the window (or is zero now) -> OK;
2. the committed offset went down between two entries -> REWIND;
3. ``now - last commit time > last commit time - first commit time`` (the consumer has
   not committed for longer than the window spans) -> STOP;
4. the committed offset did not change over the window (lag > 0) -> STALL;
5. offsets advance but the lag never decreased -> WARN;
otherwise OK. A group's status is its worst partition's, with STOP, STALL and REWIND
reported as ERR.

Burrow sees every commit (it reads ``__consumer_offsets``); kafkaops polls committed
offsets through the Admin API, so it adapts the window:

- An entry is one *poll* (offset, lag = log-end offset - committed offset), and its
  "commit time" is when the polled committed offset last changed. Rule 3 then says "the
  committed offset has not moved for longer than the window's span of movement"; rule 4
  (offsets unchanged across the window) is the limit of rule 3 (span 0).
- A poll cannot tell a commit of the same offset from no commit at all, which is what
  separates Burrow's STALL from STOP. kafkaops asks the group instead: when rule 3 or 4
  holds and a live member of the group owns the partition, the consumer is there but its
  offset does not move (it polls but cannot commit, or is stuck on a record): **STALL**;
  with no live owner (the consumer stopped, or the group is empty): **STOP**.
- ``allowed_lag`` (default 0) counts a lag up to that many records as zero in rule 1.
- A partition is judged once its window is full (``window`` polls); before that it is OK,
  as Burrow's incomplete windows are. Choose ``poll interval x window`` several times the
  consumers' commit interval, so that a healthy consumer commits within every window.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from kafkaops.types import TP

DEFAULT_WINDOW = 10
"""Burrow's default number of offsets per window (``intervals``)."""


class LagStatus(IntEnum):
    """Burrow's statuses, in its order of severity (a group takes its worst partition's)."""

    OK = 1
    WARN = 2
    ERR = 3
    STOP = 4
    STALL = 5
    REWIND = 6

    @property
    def group_status(self) -> LagStatus:
        """What this partition status makes its group: STOP, STALL and REWIND count as ERR."""
        return LagStatus.ERR if self > LagStatus.ERR else self


@dataclass(frozen=True)
class Observation:
    """One poll of one partition: committed offset, its lag, and when the offset last changed."""

    offset: int
    lag: int
    commit_time: float


def evaluate(window: Sequence[Observation], now: float, *, owned: bool, allowed_lag: int = 0) -> LagStatus:
    """Burrow's rules (module doc) on one partition's window; the last entry is the current poll."""
    if not window:
        return LagStatus.OK
    pairs = list(zip(window, list(window)[1:]))
    if any(o.lag <= allowed_lag for o in window):
        return LagStatus.OK  # rule 1 (the current lag is the last entry's)
    if any(b.offset < a.offset for a, b in pairs):
        return LagStatus.REWIND  # rule 2
    first, last = window[0], window[-1]
    stopped = now - last.commit_time > last.commit_time - first.commit_time  # rule 3
    unchanged = all(o.offset == first.offset for o in window)  # rule 4
    if stopped or unchanged:
        return LagStatus.STALL if owned else LagStatus.STOP
    if all(b.lag >= a.lag for a, b in pairs):
        return LagStatus.WARN  # rule 5
    return LagStatus.OK


def group_status(statuses: Iterable[LagStatus]) -> LagStatus:
    """The worst partition's status, STOP/STALL/REWIND as ERR (OK for no partitions)."""
    return max((s.group_status for s in statuses), default=LagStatus.OK)


@dataclass(frozen=True)
class PartitionLagStatus:
    """One partition's judgement: status, current lag, committed and log-end offsets, owner."""

    group: str
    topic: str
    partition: int
    status: LagStatus
    lag: int
    committed: int
    log_end: int
    owned: bool
    observations: int

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "topic": self.topic, "partition": self.partition, "status": self.status.name,
                "lag": self.lag, "committed": self.committed, "log_end": self.log_end, "owned": self.owned,
                "observations": self.observations}


@dataclass(frozen=True)
class GroupLagStatus:
    """A group's judgement: its status (worst partition), total lag and each partition."""

    group: str
    status: LagStatus
    total_lag: int
    partitions: tuple[PartitionLagStatus, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "status": self.status.name, "total_lag": self.total_lag,
                "partitions": [p.to_json() for p in self.partitions]}


class LagEvaluator:
    """Windows of observations for every (group, partition) it is fed; judges them.

    Feed it one poll of a group at a time with :meth:`observe` (committed offsets,
    log-end offsets, and the partitions a live member owns); it returns the group's
    judgement. Partitions without a committed offset are not judged (Burrow knows only
    committed ones); partitions that disappear from a group's commits are forgotten.
    """

    def __init__(self, window: int = DEFAULT_WINDOW, allowed_lag: int = 0) -> None:
        if window < 2:
            raise ValueError(f"a lag window needs at least 2 observations, not {window}")
        if allowed_lag < 0:
            raise ValueError(f"allowed lag must be >= 0, not {allowed_lag}")
        self.window = window
        self.allowed_lag = allowed_lag
        self._windows: dict[str, dict[TP, deque[Observation]]] = {}

    def observe(
        self,
        group: str,
        committed: Mapping[TP, int],
        log_end: Mapping[TP, int],
        owned: Iterable[TP] = (),
        now: float | None = None,
    ) -> GroupLagStatus:
        """Add one poll of ``group`` and judge it (``now``: wall-clock seconds)."""
        now = time.time() if now is None else now
        owners = set(owned)
        windows = self._windows.setdefault(group, {})
        for tp in [tp for tp in windows if tp not in committed]:
            del windows[tp]
        results = []
        for tp in sorted(committed):
            offset = committed[tp]
            end = log_end.get(tp)
            if end is None:
                continue  # the partition's log end is unknown this poll: no entry
            lag = max(0, end - offset)
            win = windows.get(tp)
            if win is None:
                win = windows[tp] = deque(maxlen=self.window)
            changed_at = now if not win or win[-1].offset != offset else win[-1].commit_time
            win.append(Observation(offset, lag, changed_at))
            full = len(win) == self.window
            status = evaluate(win, now, owned=tp in owners, allowed_lag=self.allowed_lag) if full else LagStatus.OK
            results.append(PartitionLagStatus(group, tp[0], tp[1], status, lag, offset, end, tp in owners, len(win)))
        return GroupLagStatus(group, group_status(p.status for p in results), sum(p.lag for p in results),
                              tuple(results))

    def forget(self, group: str) -> None:
        """Drop a group's windows (it was deleted, or is no longer tracked)."""
        self._windows.pop(group, None)

    @property
    def groups(self) -> list[str]:
        return sorted(self._windows)

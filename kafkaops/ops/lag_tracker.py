"""LagTracker: polls consumer groups' offsets and judges them over time (Burrow's rules).

Each poll reads, through the Admin API, the tracked groups (given, or every group the
cluster lists), their members' assignments (one DescribeGroups for all), each group's
committed offsets (one OffsetFetch per group: the API takes one group at a time) and the
log-end offsets of all their partitions (one ListOffsets round), then feeds a
:class:`~kafkaops.ops.lag.LagEvaluator`. A partition whose status changes yields a
:class:`~kafkaops.ops.events.ConsumerLagStatusChanged` for ``on_events`` (the replica
monitor passes its own event delivery, so lag changes go through the same stream).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from kafkaops.admin import admin_client
from kafkaops.config import ClusterProfile, as_profile
from kafkaops.errors import KafkaopsError
from kafkaops.ops.events import ConsumerLagStatusChanged, Event
from kafkaops.ops.groups import committed_offsets, describe_groups, list_groups, log_end_offsets
from kafkaops.ops.lag import DEFAULT_WINDOW, GroupLagStatus, LagEvaluator, LagStatus
from kafkaops.types import TP

log = logging.getLogger(__name__)


class LagTracker:
    """Judges the lag of ``groups`` (None: every group) every ``interval`` seconds.

    :meth:`poll` runs one round on the caller's thread; :meth:`start` runs rounds on a
    thread of its own until :meth:`stop`. :meth:`statuses` is the latest judgement.
    """

    def __init__(
        self,
        cluster: ClusterProfile | str,
        *,
        groups: Iterable[str] | None = None,
        interval: float = 5.0,
        window: int = DEFAULT_WINDOW,
        allowed_lag: int = 0,
        timeout: float = 10.0,
        on_events: Callable[[list[Event]], None] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"the lag poll interval must be > 0 seconds, not {interval}")
        self.profile = as_profile(cluster)
        self.groups = None if groups is None else sorted(set(groups))
        self.interval = interval
        self.timeout = timeout
        self.evaluator = LagEvaluator(window, allowed_lag)
        self.members: dict[str, int] = {}
        self.poll_seconds = 0.0
        """Wall time of the last poll (Admin round trips and evaluation)."""
        self.polls = 0
        """Polls completed so far."""
        self.version = 0
        """Changes with every new judgement (readers cache what they derive from :meth:`statuses`)."""
        self._on_events = on_events
        self._admin: Any = None
        self._lock = threading.Lock()
        self._statuses: dict[str, GroupLagStatus] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def statuses(self) -> dict[str, GroupLagStatus]:
        with self._lock:
            return dict(self._statuses)

    def poll(self, now: float | None = None) -> list[Event]:
        """One round: read offsets, judge every tracked group, report status changes."""
        t0 = time.monotonic()
        if self._admin is None:
            self._admin = admin_client(self.profile)
        admin = self._admin
        names = self.groups if self.groups is not None else [g.group for g in list_groups(self.profile, admin=admin,
                                                                                              timeout=self.timeout)]
        descs = describe_groups(self.profile, names, admin=admin, timeout=self.timeout)
        committed: dict[str, dict[TP, int]] = {}
        for name in names:
            try:
                committed[name] = committed_offsets(self.profile, name, admin=admin, timeout=self.timeout)
            except KafkaopsError as exc:
                log.warning("lag tracker: %s", exc)
        ends = log_end_offsets(self.profile, {tp for c in committed.values() for tp in c}, admin=admin, timeout=self.timeout)
        now = time.time() if now is None else now
        events: list[Event] = []
        new: dict[str, GroupLagStatus] = {}
        with self._lock:
            old = self._statuses
        for name in names:
            if name not in committed:
                continue
            desc = descs.get(name)
            owned = desc.owners() if desc is not None else {}
            judged = self.evaluator.observe(name, committed[name], ends, owned, now=now)
            new[name] = judged
            self.members[name] = len(desc.members) if desc is not None else 0
            before = {(p.topic, p.partition): p.status for p in old[name].partitions} if name in old else {}
            for p in judged.partitions:
                previous = before.get((p.topic, p.partition), LagStatus.OK)
                if p.status is not previous:
                    events.append(ConsumerLagStatusChanged(name, p.topic, p.partition, previous.name, p.status.name,
                                                           p.lag, timestamp=now, source="lag"))
        for gone in set(old) - set(new):
            self.evaluator.forget(gone)
            self.members.pop(gone, None)
        with self._lock:
            self._statuses = new
            self.version += 1
        self.poll_seconds = time.monotonic() - t0
        self.polls += 1
        if events and self._on_events is not None:
            self._on_events(events)
        return events

    # ------------------------------------------------------------------ thread
    def start(self) -> LagTracker:
        self._thread = threading.Thread(target=self._run, name="lag-tracker", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.timeout + 2)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - one failed round (broker down) must not end tracking
                log.warning("lag tracker: poll failed", exc_info=True)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

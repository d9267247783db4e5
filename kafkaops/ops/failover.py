"""FailoverPolicy: restore replication off dead brokers and leadership on returned ones.

Run by the one monitor instance that holds leadership (:class:`MonitorLeadership`):

- a broker down for longer than ``grace`` seconds: each partition with a replica on it
  is moved by the one planner (``ops/placement.py``: the dead replica replaced in place
  by the least-loaded live broker) through the one pipeline (``ops/reassign.py``: under a
  replication throttle); when the moves finish the throttle is cleared and preferred
  leaders are elected for the moved partitions;
- a broker that comes back: preferred leader election for the partitions whose preferred
  (first) replica it is, once it is back in their ISR.

What the policy has seen and started (dead brokers since when, handled brokers,
reassignments and throttles in flight) is written to its store *before* it acts: with a
Coordinator, znodes under ``/kafkaops/failover/`` (``ops/failover_state.py``), so an
instance that takes over leadership resumes watching the reassignments in flight and
clears the throttles they set. Without one, the state lives in this process only.

Every action is recorded as an :class:`Action` (what, why, result), and each one that
changes the cluster also in the audit trail (``audit``); with ``dry_run`` the
policy records what it would do and changes nothing (not even its ZooKeeper state). It
never takes an action that by itself drops a partition below ``min.insync.replicas``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from kafkaops.audit import AuditLog
from kafkaops.config import ClusterProfile, as_profile
from kafkaops.coord.session import Coordinator
from kafkaops.errors import KafkaopsError
from kafkaops.ops import reassign
from kafkaops.ops.events import BrokerDown, BrokerUp, Event
from kafkaops.ops.failover_state import (PLANNED, SUBMITTED, Action, DownBroker, FailoverState, FailoverStore,
                                         InFlight, ZooKeeperFailoverStore)
from kafkaops.ops.health import ClusterHealth
from kafkaops.ops.monitor import ReplicaMonitor
from kafkaops.ops.monitor_leadership import LEADERSHIP_NAME, LeaderLike, MonitorLeadership
from kafkaops.ops.placement import Move, plan_replacements
from kafkaops.types import TP

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_THROTTLE", "LEADERSHIP_NAME", "Action", "FailoverPolicy", "LeaderLike", "MonitorLeadership",
           "preferred_election_candidates"]

DEFAULT_THROTTLE = 50 * 1024 * 1024
"""Replication throttle while moving replicas: 50 MiB/s per broker."""


def preferred_election_candidates(health: ClusterHealth, brokers: Iterable[int] | None = None) -> list[TP]:
    """Partitions whose preferred replica (in ``brokers``, if given) is live and in sync but not leader."""
    wanted = None if brokers is None else set(brokers)
    return [
        tp for tp, p in sorted(health.partitions.items())
        if (pref := p.preferred_leader) is not None and p.leader != pref and pref in p.isr
        and pref in health.live_brokers and (wanted is None or pref in wanted)
    ]


def _tp_str(tp: TP) -> str:
    return f"{tp[0]}[{tp[1]}]"


class FailoverPolicy:
    """Acts on a ReplicaMonitor's model; only while ``leadership.is_leader`` (if given).

    Call :meth:`start` to run it on its own thread (one decision every ``tick`` seconds),
    or :meth:`step` to take one decision synchronously.
    """

    def __init__(
        self,
        monitor: ReplicaMonitor,
        cluster: ClusterProfile | str,
        *,
        coordinator: Coordinator | None = None,
        grace: float = 30.0,
        throttle: int = DEFAULT_THROTTLE,
        dry_run: bool = False,
        leadership: LeaderLike | None = None,
        tick: float = 0.5,
        on_action: Callable[[Action], None] | None = None,
        retry_after: float = 10.0,
        election_window: float = 300.0,
        audit: AuditLog | None = None,
    ) -> None:
        if grace < 0:
            raise KafkaopsError(f"grace must be >= 0 seconds, not {grace}")
        if throttle <= 0:
            raise KafkaopsError(f"the replication throttle must be > 0 bytes/s, not {throttle}")
        self.monitor = monitor
        self.profile = as_profile(cluster)
        self.grace, self.throttle, self.dry_run = grace, throttle, dry_run
        self.leadership, self.tick, self.on_action = leadership, tick, on_action
        self.retry_after, self.election_window = retry_after, election_window
        self.audit = audit
        self.election_retry = 5.0
        fence = getattr(leadership, "fence", None)
        self.store: FailoverStore = (
            ZooKeeperFailoverStore(coordinator, fence) if coordinator is not None and not dry_run else FailoverStore()
        )
        self._state = FailoverState()  # what this instance knows; written to the store while acting
        self._stored = FailoverState()  # what the store holds, as far as this instance wrote or read it
        self._acting = False
        self._lock = threading.Lock()
        self._actions: list[Action] = []
        self._events: list[Event] = []
        self._returned: dict[int, float] = {}
        self._last_election: dict[int, float] = {}
        self._elected: dict[int, set[TP]] = {}
        self._next_try = 0.0  # next attempt at moving replicas after a failure
        self._next_clear = 0.0  # next attempt at clearing a throttle after a failure
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FailoverPolicy:
        self._unsubscribe = self.monitor.subscribe(self._on_event)
        now = time.time()
        for b in self.monitor.snapshot().dead_brokers:
            self._state.brokers.setdefault(b, DownBroker(now))
        self._thread = threading.Thread(target=self._run, name="failover-policy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._unsubscribe:
            self._unsubscribe()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=60)

    def __enter__(self) -> FailoverPolicy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def actions(self) -> list[Action]:
        with self._lock:
            return list(self._actions)

    @property
    def is_acting(self) -> bool:
        return self.leadership is None or self.leadership.is_leader

    @property
    def in_flight(self) -> dict[str, InFlight]:
        """The reassignments this instance knows to be in flight, by batch id."""
        return dict(self._state.reassignments)

    def _on_event(self, event: Event) -> None:  # monitor worker thread: record only
        with self._lock:
            self._events.append(event)

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.step()
            except Exception:  # noqa: BLE001 - one failed decision must not end the policy
                log.exception("failover policy step failed")

    def _record(self, action: Action) -> None:
        """Log the action, audit it if it changed the cluster, then list it (so a listed action is audited)."""
        log.log(logging.INFO if action.ok else logging.WARNING, "failover: %s (%s): %s", action.what, action.why, action.result)
        if self.audit is not None and action.changes_cluster:
            try:
                self.audit.record(f"failover.{action.what}", action.target,
                                  {"why": action.why, **action.details}, action.result)
            except KafkaopsError as exc:  # the action is done; a lost audit record must not stop the policy
                log.error("failover: could not audit %s: %s", action.what, exc)
        with self._lock:
            self._actions.append(action)
        if self.on_action is not None:
            try:
                self.on_action(action)
            except Exception:  # noqa: BLE001
                log.exception("failover on_action callback failed")

    # ------------------------------------------------------------------ state
    def _sync(self) -> None:
        """Write what changed in this instance's state since the store last saw it (one transaction)."""
        old = self._stored
        brokers: dict[int, DownBroker | None] = {b: r for b, r in self._state.brokers.items() if old.brokers.get(b) != r}
        brokers.update({b: None for b in old.brokers if b not in self._state.brokers})
        flights: dict[str, InFlight | None] = {
            i: f for i, f in self._state.reassignments.items() if old.reassignments.get(i) != f}
        flights.update({i: None for i in old.reassignments if i not in self._state.reassignments})
        self.store.update(brokers, flights)
        self._stored = self._state.copy()

    def _take_over(self, health: ClusterHealth, now: float) -> None:
        """Now acting: merge the stored state (a predecessor's) into what this instance saw."""
        stored = self.store.load()
        self._stored = stored.copy()
        for b, rec in stored.brokers.items():
            mine = self._state.brokers.get(b)
            if b in health.live_brokers and mine is None:
                continue  # it came back meanwhile: _sync drops the record
            since = min(rec.down_since, mine.down_since) if mine is not None else rec.down_since
            self._state.brokers[b] = DownBroker(since, rec.handled or (mine is not None and mine.handled))
        self._state.reassignments = dict(stored.reassignments)
        self._sync()
        if stored.brokers or stored.reassignments:
            details = {
                "brokers_down": {str(b): r.to_json() for b, r in sorted(stored.brokers.items())},
                "reassignments": {i: f.to_json() for i, f in sorted(stored.reassignments.items())},
            }
            self._record(Action("resume", "this instance now acts: state of the previous one read", "ok", details))

    def _mark_handled(self, brokers: Iterable[int]) -> None:
        for b in brokers:
            rec = self._state.brokers.get(b)
            if rec is not None:
                self._state.brokers[b] = replace(rec, handled=True)

    # ------------------------------------------------------------------ decisions
    def step(self, now: float | None = None) -> None:
        """Take one round of decisions on the monitor's current model."""
        now = time.time() if now is None else now
        with self._lock:
            events, self._events = self._events, []
        down = self._state.brokers
        for ev in events:
            if isinstance(ev, BrokerDown):
                down.setdefault(ev.broker, DownBroker(ev.timestamp))
            elif isinstance(ev, BrokerUp):
                down.pop(ev.broker, None)
                self._returned[ev.broker] = ev.timestamp
        health = self.monitor.snapshot()
        for b in health.dead_brokers:
            down.setdefault(b, DownBroker(now))
        for b in list(down):
            if b in health.live_brokers:
                down.pop(b)
                self._returned.setdefault(b, now)
        if not self.is_acting:
            self._acting = False
            return
        if not self._acting:
            self._take_over(health, now)
            self._acting = True
        self._sync()
        if self._state.reassignments:
            self._check_in_flight(health, now)
        expired = {b for b, r in down.items() if now - r.down_since >= self.grace and not r.handled}
        if expired and now >= self._next_try:
            self._replace(health, expired, now)
        if self._returned:
            self._elect_for_returned(health, now)

    def _replace(self, health: ClusterHealth, expired: set[int], now: float) -> None:
        dead = set(self._state.brokers) | set(health.dead_brokers)
        plan = plan_replacements(health, dead)
        busy = {tp for f in self._state.reassignments.values() for tp in f.batch.moves}
        mine = {tp: m for tp, m in plan.moves.items() if set(m.current) & expired and tp not in busy}
        why = f"broker(s) {sorted(expired)} down for more than {self.grace:g}s"
        for tp, reason in plan.skipped.items():
            if set(health.partitions[tp].replicas) & expired:
                self._record(Action("skip", why, reason, {"topic": tp[0], "partition": tp[1]}, dry_run=self.dry_run))
        if not mine:
            self._mark_handled(expired)
            self._sync()
            if not any(set(p.replicas) & expired for p in health.partitions.values()):
                self._record(Action("skip", why, "no partition has a replica on it", {"brokers": sorted(expired)},
                                    dry_run=self.dry_run))
            return
        details: dict[str, Any] = {
            "brokers": sorted(expired),
            "moves": {_tp_str(tp): {"from": list(m.current), "to": list(m.target)} for tp, m in sorted(mine.items())},
            "throttle_bytes_per_sec": self.throttle,
        }
        if self.dry_run:
            self._mark_handled(expired)
            self._record(Action("reassign", why, "dry-run", details, dry_run=True))
            return
        cluster = reassign.live_first(self.profile, health)
        try:
            ongoing = reassign.list_reassignments(cluster, list(mine))
        except KafkaopsError as exc:
            self._next_try = now + self.retry_after
            self._record(Action("reassign", why, f"error: {exc}", details))
            return
        for tp in ongoing:
            self._record(Action("skip", why, "a reassignment is already in progress", {"topic": tp[0], "partition": tp[1]}))
            mine.pop(tp, None)
        if mine:
            self._submit(cluster, health, expired, dead, mine, why, details, now)
        else:
            self._mark_handled(expired)
            self._sync()

    def _submit(
        self, cluster: ClusterProfile, health: ClusterHealth, expired: set[int], dead: set[int],
        moves: dict[TP, Move], why: str, details: dict[str, Any], now: float,
    ) -> None:
        """Write the batch as planned, then throttle and submit it; record it submitted with its brokers handled."""
        others = [f.batch for f in self._state.reassignments.values()]
        batch = reassign.Batch.plan(moves, self.throttle, health.live_brokers - dead)
        flight = InFlight(uuid.uuid4().hex[:12], batch, PLANNED, why, now)
        self._state.reassignments[flight.id] = flight
        self._sync()  # before acting: whoever takes over knows this throttle may be set
        t0 = time.monotonic()
        try:
            started = reassign.start(cluster, flight.batch, in_flight=others, must_throttle=False)
        except KafkaopsError as exc:
            del self._state.reassignments[flight.id]
            self._sync()
            self._next_try = now + self.retry_after
            self._record(Action("reassign", why, f"error: {exc}", details))
            return
        accepted = {tp: m for tp, m in moves.items() if tp not in started.refused}
        if accepted:
            self._state.reassignments[flight.id] = replace(
                flight, batch=replace(flight.batch, moves=accepted), state=SUBMITTED
            )
        else:
            del self._state.reassignments[flight.id]
        self._mark_handled(expired)
        self._sync()
        details.update(reassignment=flight.id, brokers_throttled=list(flight.batch.brokers),
                       submit_s=round(time.monotonic() - t0, 2))
        if started.refused:
            details["errors"] = {_tp_str(tp): e for tp, e in started.refused.items()}
        outcome = "ok" if not started.refused else f"error: {len(started.refused)} of {len(moves)} partitions refused"
        note = f" (unthrottled: {started.throttle_error})" if started.throttle_error else ""
        self._record(Action("reassign", why, outcome + note, details))

    def _check_in_flight(self, health: ClusterHealth, now: float) -> None:
        """Once no partition of any batch in flight is still moving: clear the throttle, elect leaders."""
        flights = self._state.reassignments
        cluster = reassign.live_first(self.profile, health)
        try:
            ongoing = reassign.list_reassignments(cluster, [tp for f in flights.values() for tp in f.batch.moves])
        except KafkaopsError as exc:
            log.warning("failover: cannot list reassignments: %s", exc)
            return
        if ongoing:  # a planned batch seen moving was submitted: its partitions get their election
            for i, f in list(flights.items()):
                if f.state == PLANNED and set(f.batch.moves) & set(ongoing):
                    flights[i] = replace(f, state=SUBMITTED)
            self._sync()
            return  # the throttle is cleared once every batch has finished
        if now < self._next_clear:
            return
        done = list(flights.values())
        moved = [f.batch for f in done if f.state == SUBMITTED]
        result = reassign.finish(cluster, [f.batch for f in done], live=health.live_brokers, elect=False)
        brokers = sorted({b for f in done for b in f.batch.brokers} & health.live_brokers)
        topics = sorted({t for f in done for t in f.batch.topics})
        scope = {"brokers": brokers, "topics": topics, "reassignments": sorted(flights)}
        why = f"reassignment of {sum(len(f.batch.moves) for f in done)} partition(s) finished"
        if result.throttle_error:
            self._next_clear = now + self.retry_after
            self._record(Action("clear_throttle", why, f"error: {result.throttle_error}", scope))
            return
        flights.clear()
        self._sync()
        self._record(Action("clear_throttle", why, "ok", scope))
        self._elect(health, sorted({tp for b in moved for tp in b.moves}), "restore preferred leaders of the moved partitions")

    def _elect_for_returned(self, health: ClusterHealth, now: float) -> None:
        for b, since in list(self._returned.items()):
            if b not in health.live_brokers:
                self._returned.pop(b)
                continue
            tps = preferred_election_candidates(health, [b])
            tried = self._elected.setdefault(b, set())
            retry = now - self._last_election.get(b, 0.0) >= self.election_retry
            if tps and (retry or set(tps) - tried):  # new candidates at once, failed ones again later
                self._last_election[b] = now
                tried.update(tps)
                self._elect(health, tps, f"broker {b} is back and in sync")
                if self.dry_run:
                    self._returned.pop(b)  # report once: a dry run changes nothing to wait for
                    continue
            pending = [p for p in health.partitions.values() if p.preferred_leader == b and p.leader != b]
            if not pending or now - since > self.election_window:
                self._returned.pop(b)
                self._elected.pop(b, None)

    def _elect(self, health: ClusterHealth, tps: list[TP], why: str) -> None:
        if not tps:
            return
        details: dict[str, Any] = {"partitions": [_tp_str(tp) for tp in tps]}
        if self.dry_run:
            self._record(Action("elect_preferred_leaders", why, "dry-run", details, dry_run=True))
            return
        try:
            result = reassign.elect_preferred_leaders(reassign.live_first(self.profile, health), tps)
        except KafkaopsError as exc:
            self._record(Action("elect_preferred_leaders", why, f"error: {exc}", details))
            return
        failed = {_tp_str(tp): e for tp, e in result.items() if e}
        if failed:
            details["errors"] = failed
        self._record(Action("elect_preferred_leaders", why, "ok" if not failed else f"error: {len(failed)} failed", details))

"""FailoverPolicy: restore replication off dead brokers and leadership on returned ones.

Run by the one monitor instance that holds leadership (``coord/election.py``):

- a broker down for longer than ``grace`` seconds: each partition with a replica
  on it is reassigned, the dead replica replaced in place by the least-loaded
  live broker outside the replica set (so the replication factor is restored and
  new replicas spread evenly), under a replication throttle; when the moves
  finish the throttle is cleared and preferred leaders are elected for the moved
  partitions;
- a broker that comes back: preferred leader election for the partitions whose
  preferred (first) replica it is, once it is back in their ISR.

Every action is recorded as an :class:`Action` (what, why, result); with
``dry_run`` the policy records what it would do and changes nothing. The policy
never takes an action that by itself drops a partition below
``min.insync.replicas`` (:func:`min_isr_violation`): Kafka's reassignment adds the
new replica and waits for it to catch up before it drops the old one, and the
policy only ever drops replicas that are out of the ISR. Preferred leader
election and throttles do not change the ISR (Kafka never throttles in-sync
replicas).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kafkaops.errors import KafkaopsError
from kafkaops.ops import reassign
from kafkaops.ops.events import BrokerDown, BrokerUp, Event
from kafkaops.ops.health import TP, ClusterHealth
from kafkaops.ops.monitor import ReplicaMonitor

log = logging.getLogger(__name__)

DEFAULT_THROTTLE = 50 * 1024 * 1024
"""Replication throttle while moving replicas: 50 MiB/s per broker."""

LEADERSHIP_NAME = "replica-monitor"
"""The Leadership name monitor instances compete for (``/kafkaops/leaders/replica-monitor``)."""


class LeaderLike(Protocol):
    @property
    def is_leader(self) -> bool: ...


@dataclass(frozen=True)
class Action:
    """One thing the policy did (or, in a dry run, would do): what, why, and the result."""

    what: str  # "reassign" | "elect_preferred_leaders" | "clear_throttle" | "skip"
    why: str
    result: str  # "ok", "dry-run", "error: ...", or the reason of a skip
    details: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return self.result in ("ok", "dry-run")

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "Action",
            "what": self.what,
            "why": self.why,
            "result": self.result,
            "dry_run": self.dry_run,
            "timestamp": self.timestamp,
            **self.details,
        }


# ---------------------------------------------------------------------- pure rules
def min_isr_violation(
    replicas: Iterable[int], isr: Iterable[int], target: Iterable[int], min_isr: int
) -> str | None:
    """Why moving a partition from ``replicas`` to ``target`` could drop it below min ISR; None if safe.

    Kafka adds ``target - replicas`` first and removes ``replicas - target`` only
    once every target replica is in sync. The move is unsafe by itself when the
    target is smaller than ``min_isr`` (the ISR can never reach it again), or when
    it removes in-sync replicas and fewer than ``min_isr`` in-sync replicas would
    remain meanwhile.
    """
    cur, in_sync, tgt = list(replicas), set(isr), list(target)
    if len(tgt) < min_isr:
        return f"target {tgt} has fewer than min.insync.replicas={min_isr} replicas"
    removed_in_sync = in_sync & (set(cur) - set(tgt))
    if removed_in_sync and len(in_sync - removed_in_sync) < min_isr:
        return (
            f"removing in-sync replica(s) {sorted(removed_in_sync)} leaves ISR "
            f"{sorted(in_sync - removed_in_sync)} below min.insync.replicas={min_isr}"
        )
    return None


def plan_replacements(
    health: ClusterHealth, dead: Iterable[int]
) -> tuple[dict[TP, tuple[tuple[int, ...], tuple[int, ...]]], dict[TP, str]]:
    """Replace replicas on ``dead`` brokers by live brokers, evenly.

    Returns (moves ``{tp: (current, target)}``, skipped ``{tp: reason}``). Each
    dead replica is replaced in place (the replica order, and so the preferred
    leader position, is kept) by the live broker outside the replica set holding
    the fewest replicas, counting moves already planned; ties go to the broker
    that is preferred leader least often, then the lowest id.
    """
    dead_set = set(dead)
    live = sorted(health.live_brokers - dead_set)
    load = {b: 0 for b in live}
    preferred = {b: 0 for b in live}
    for p in health.partitions.values():
        for i, b in enumerate(p.replicas):
            if b in load:
                load[b] += 1
                preferred[b] += i == 0
    moves: dict[TP, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    skipped: dict[TP, str] = {}
    for tp, p in sorted(health.partitions.items()):
        gone = [b for b in p.replicas if b in dead_set]
        if not gone:
            continue
        if p.offline:
            skipped[tp] = "offline: no leader to copy from"
            continue
        target = list(p.replicas)
        for i, b in enumerate(target):
            if b not in dead_set:
                continue
            candidates = [c for c in live if c not in target]
            if not candidates:
                break
            choice = min(candidates, key=lambda c: (load[c], preferred[c], c))
            target[i] = choice
            load[choice] += 1
            preferred[choice] += i == 0
        if any(b in dead_set for b in target):
            skipped[tp] = f"no live broker outside replicas {list(p.replicas)} to take the replica"
            continue
        reason = min_isr_violation(p.replicas, p.isr, target, p.min_isr)
        if reason:
            skipped[tp] = reason
            continue
        moves[tp] = (tuple(p.replicas), tuple(target))
    return moves, skipped


def preferred_election_candidates(health: ClusterHealth, brokers: Iterable[int] | None = None) -> list[TP]:
    """Partitions whose preferred replica (in ``brokers``, if given) is in sync but not leader."""
    wanted = None if brokers is None else set(brokers)
    result = []
    for tp, p in sorted(health.partitions.items()):
        pref = p.preferred_leader
        if pref is None or p.leader == pref or pref not in p.isr:
            continue
        if pref not in health.live_brokers:
            continue
        if wanted is None or pref in wanted:
            result.append(tp)
    return result


def _tp_str(tp: TP) -> str:
    return f"{tp[0]}[{tp[1]}]"


# ---------------------------------------------------------------------- the policy
class FailoverPolicy:
    """Acts on a ReplicaMonitor's model; only while ``leadership.is_leader`` (if given).

    Call :meth:`start` to run it on its own thread (one decision every ``tick``
    seconds), or :meth:`step` to take one decision synchronously.
    """

    def __init__(
        self,
        monitor: ReplicaMonitor,
        bootstrap_servers: str,
        *,
        grace: float = 30.0,
        throttle: int = DEFAULT_THROTTLE,
        dry_run: bool = False,
        leadership: LeaderLike | None = None,
        tick: float = 0.5,
        on_action: Callable[[Action], None] | None = None,
        retry_after: float = 10.0,
        election_window: float = 300.0,
    ) -> None:
        if grace < 0:
            raise KafkaopsError(f"grace must be >= 0 seconds, not {grace}")
        if throttle <= 0:
            raise KafkaopsError(f"the replication throttle must be > 0 bytes/s, not {throttle}")
        self.monitor = monitor
        self.bootstrap_servers = bootstrap_servers
        self.grace = grace
        self.throttle = throttle
        self.dry_run = dry_run
        self.leadership = leadership
        self.tick = tick
        self.on_action = on_action
        self.retry_after = retry_after
        self.election_window = election_window
        self.election_retry = 5.0
        self._last_election: dict[int, float] = {}
        self._elected: dict[int, set[TP]] = {}
        self._lock = threading.Lock()
        self._actions: list[Action] = []
        self._down_since: dict[int, float] = {}
        self._handled: set[int] = set()
        self._returned: dict[int, float] = {}
        self._in_flight: dict[TP, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        self._next_try = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._events: list[Event] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FailoverPolicy:
        self._unsubscribe = self.monitor.subscribe(self._on_event)
        now = time.time()
        for b in self.monitor.snapshot().dead_brokers:
            self._down_since.setdefault(b, now)
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
        with self._lock:
            self._actions.append(action)
        log.log(logging.INFO if action.ok else logging.WARNING, "failover: %s (%s): %s", action.what, action.why, action.result)
        if self.on_action is not None:
            try:
                self.on_action(action)
            except Exception:  # noqa: BLE001
                log.exception("failover on_action callback failed")

    # ------------------------------------------------------------------ decisions
    def step(self, now: float | None = None) -> None:
        """Take one round of decisions on the monitor's current model."""
        now = time.time() if now is None else now
        with self._lock:
            events, self._events = self._events, []
        for ev in events:
            if isinstance(ev, BrokerDown):
                self._down_since.setdefault(ev.broker, ev.timestamp)
            elif isinstance(ev, BrokerUp):
                self._down_since.pop(ev.broker, None)
                self._handled.discard(ev.broker)
                self._returned[ev.broker] = ev.timestamp
        health = self.monitor.snapshot()
        for b in health.dead_brokers:
            self._down_since.setdefault(b, now)
        for b in list(self._down_since):
            if b in health.live_brokers:
                self._down_since.pop(b)
                self._handled.discard(b)
                self._returned.setdefault(b, now)
        if not self.is_acting:
            return
        if self._in_flight:
            self._check_in_flight(health)
        expired = {b for b, t in self._down_since.items() if now - t >= self.grace and b not in self._handled}
        if expired and now >= self._next_try:
            self._replace(health, expired, now)
        if self._returned:
            self._elect_for_returned(health, now)

    def _bootstrap(self, health: ClusterHealth) -> str:
        """Live brokers' addresses first (kafka-python may insist on a dead bootstrap broker)."""
        live = [f"{b.host}:{b.port}" for b in health.brokers.values() if b.alive and b.host and b.port]
        dead = {f"{b.host}:{b.port}" for b in health.brokers.values() if not b.alive and b.host and b.port}
        rest = [s for s in self.bootstrap_servers.split(",") if s not in live and s not in dead]
        return ",".join(live + rest)

    def _replace(self, health: ClusterHealth, expired: set[int], now: float) -> None:
        bootstrap = self._bootstrap(health)
        dead = set(self._down_since) | set(health.dead_brokers)
        moves, skipped = plan_replacements(health, dead)
        mine = {tp: m for tp, m in moves.items() if set(m[0]) & expired and tp not in self._in_flight}
        why = f"broker(s) {sorted(expired)} down for more than {self.grace:g}s"
        for tp, reason in skipped.items():
            if set(health.partitions[tp].replicas) & expired:
                self._record(Action("skip", why, reason, {"topic": tp[0], "partition": tp[1]}, dry_run=self.dry_run))
        if not mine:
            self._handled |= expired
            if not any(set(p.replicas) & expired for p in health.partitions.values()):
                self._record(Action("skip", why, "no partition has a replica on it", {"brokers": sorted(expired)}, dry_run=self.dry_run))
            return
        details: dict[str, Any] = {
            "brokers": sorted(expired),
            "moves": {_tp_str(tp): {"from": list(c), "to": list(t)} for tp, (c, t) in sorted(mine.items())},
            "throttle_bytes_per_sec": self.throttle,
        }
        if self.dry_run:
            self._handled |= expired
            self._record(Action("reassign", why, "dry-run", details, dry_run=True))
            return
        t0 = time.monotonic()
        try:
            ongoing = reassign.list_reassignments(bootstrap, list(mine))
        except reassign.ReassignError as exc:
            self._next_try = now + self.retry_after
            self._record(Action("reassign", why, f"error: {exc}", details))
            return
        timings = {"list_s": round(time.monotonic() - t0, 2)}
        for tp in ongoing:
            self._record(Action("skip", why, "a reassignment is already in progress", {"topic": tp[0], "partition": tp[1]}))
            mine.pop(tp, None)
        if not mine:
            self._handled |= expired
            return
        brokers = (set().union(*(set(c) | set(t) for c, t in mine.values()))) - dead
        throttle_note = ""
        t1 = time.monotonic()
        try:
            reassign.set_throttle(bootstrap, self.throttle, brokers, mine)
        except reassign.ReassignError as exc:
            throttle_note = f" (unthrottled: {exc})"
        timings["throttle_s"] = round(time.monotonic() - t1, 2)
        t1 = time.monotonic()
        try:
            result = reassign.submit_reassignments(bootstrap, {tp: t for tp, (_, t) in mine.items()})
        except reassign.ReassignError as exc:
            self._next_try = now + self.retry_after
            self._record(Action("reassign", why, f"error: {exc}", details))
            return
        self._handled |= expired
        timings["submit_s"] = round(time.monotonic() - t1, 2)
        details["timings"] = timings
        log.info("failover: reassignment of %d partitions submitted via %s: %s", len(mine), bootstrap, timings)
        failed = {tp: err for tp, err in result.items() if err}
        for tp, (c, t) in mine.items():
            if tp not in failed:
                self._in_flight[tp] = (c, t)
        details["brokers_throttled"] = sorted(brokers)
        if failed:
            details["errors"] = {_tp_str(tp): e for tp, e in failed.items()}
        outcome = "ok" if not failed else f"error: {len(failed)} of {len(mine)} partitions refused"
        self._record(Action("reassign", why, outcome + throttle_note, details))

    def _check_in_flight(self, health: ClusterHealth) -> None:
        bootstrap = self._bootstrap(health)
        try:
            ongoing = reassign.list_reassignments(bootstrap, list(self._in_flight))
        except reassign.ReassignError as exc:
            log.warning("failover: cannot list reassignments: %s", exc)
            return
        done = {tp: m for tp, m in self._in_flight.items() if tp not in ongoing}
        if not done or len(done) < len(self._in_flight):
            return  # clear the throttle once the whole batch has finished
        self._in_flight.clear()
        topics = sorted({tp[0] for tp in done})
        brokers = sorted(set().union(*(set(c) | set(t) for c, t in done.values())) & health.live_brokers)
        why = f"reassignment of {len(done)} partition(s) finished"
        try:
            reassign.clear_throttle(bootstrap, brokers, topics)
            self._record(Action("clear_throttle", why, "ok", {"brokers": brokers, "topics": topics}))
        except reassign.ReassignError as exc:
            self._record(Action("clear_throttle", why, f"error: {exc}", {"brokers": brokers, "topics": topics}))
        self._elect(health, list(done), "restore preferred leaders of the moved partitions")

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
            result = reassign.elect_preferred_leaders(self._bootstrap(health), tps)
        except reassign.ReassignError as exc:
            self._record(Action("elect_preferred_leaders", why, f"error: {exc}", details))
            return
        failed = {_tp_str(tp): e for tp, e in result.items() if e}
        if failed:
            details["errors"] = failed
        self._record(Action("elect_preferred_leaders", why, "ok" if not failed else f"error: {len(failed)} failed", details))



class MonitorLeadership:
    """Leadership of the replica monitor among instances, sought in the background.

    Wraps ``coord.election.Leadership`` (name :data:`LEADERSHIP_NAME` under
    ``/kafkaops`` on ``zk_hosts``, the ZooKeeper hosts *without* the brokers'
    chroot): :meth:`start` returns at once; ``is_leader`` turns True when this
    instance wins, and a standby takes over when the leader's session ends.
    """

    def __init__(self, zk_hosts: str, identifier: str, name: str = LEADERSHIP_NAME) -> None:
        self.zk_hosts = zk_hosts
        self.identifier = identifier
        self.name = name
        self._coordinator: Any = None
        self._leadership: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> MonitorLeadership:
        from kafkaops.coord.election import Leadership
        from kafkaops.coord.session import Coordinator

        self._coordinator = Coordinator(self.zk_hosts).start()
        self._leadership = Leadership(self._coordinator, self.name, self.identifier, rejoin=True)
        self._thread = threading.Thread(target=self._acquire, name="monitor-leadership", daemon=True)
        self._thread.start()
        return self

    def _acquire(self) -> None:
        try:
            epoch = self._leadership.acquire()
            log.info("%s leads the replica monitor (epoch %s)", self.identifier, epoch)
        except Exception as exc:  # noqa: BLE001 - stopped while waiting, or session gone
            log.info("%s stopped seeking monitor leadership: %s", self.identifier, exc)

    @property
    def is_leader(self) -> bool:
        return bool(self._leadership is not None and self._leadership.is_leader)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for leadership; True if this instance leads."""
        deadline = time.monotonic() + timeout
        while not self.is_leader and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.is_leader

    def stop(self) -> None:
        if self._leadership is not None:
            self._leadership.release()
        if self._coordinator is not None:
            self._coordinator.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)

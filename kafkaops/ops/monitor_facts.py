"""The replica monitor's model: facts from ZooKeeper, the KRaft quorum and the Admin API in one view.

Sources never emit events. They deliver *facts* (a broker's liveness and address, the
controller, a partition's replicas, its leader and ISR, a topic's ``min.insync.replicas``)
as :class:`Facts`; :class:`FactModel` merges them and builds the
:class:`~kafkaops.ops.health.ClusterHealth` the monitor diffs into events. The merge
rules decide which source may change what, so that each real change shows once:

- **ZooKeeper is authoritative** for the facts it watches while its session is
  connected: brokers learn these facts from ZooKeeper, so Admin metadata can only
  lag behind it.
- **Admin facts fill gaps at once**: facts ZooKeeper does not watch, or everything
  when ZooKeeper is not configured or disconnected.
- **A known fact changes from Admin metadata on a transition within one broker's own
  views**, or once one broker has kept disagreeing with the model for ``settle``
  seconds. Each metadata answer comes from one broker's cache; the controller updates
  the caches one after another, so a broker that lags repeats its old view, which is
  no transition there and changes nothing. (Comparing views of *different* brokers
  flaps: one answer from an updated broker, the next from a lagging one.) Caches
  catch up within moments, so a value a broker keeps showing is the cluster's (the
  client switched brokers, or the model's value came from a broker that died). A
  broker's views start over when it goes down (its cache starts empty on restart).
- **The KRaft quorum owns the controller**: on a KRaft cluster the active controller is
  the metadata quorum's leader; the "controller" of Metadata answers is a random broker,
  so Admin facts never set it there.
- **After a ZooKeeper disconnect**, ZooKeeper becomes authoritative again with a
  fresh read of its znodes, never with the view it had before (the brokers may have
  come and gone meanwhile).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kafkaops.ops.health import DEFAULT_MIN_ISR, Address, ClusterHealth, build_health

ZOOKEEPER = "zookeeper"
ADMIN = "admin"
QUORUM = "quorum"

Key = tuple[Any, ...]
"""A fact's key: ("broker", id) -> bool, ("addr", id) -> (host, port), ("controller",) -> id|None,
("replicas", topic, p) -> tuple, ("state", topic, p) -> (leader, sorted isr), ("min_isr", topic) -> int."""


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()
"""A fact that a source saw disappear (a deleted topic)."""

_MISSING: Any = object()
_PARTITION_KEYS = ("replicas", "state")


@dataclass(frozen=True)
class Facts:
    """What one source saw: ``facts`` plus what the source says about itself.

    ``origin`` (Admin): the broker whose metadata cache answered (its id, or a name
    when the id is unknown; None: unknown, the view can only fill gaps).
    ``live_brokers`` (ZooKeeper): every live broker; other known brokers are dead.
    ``connected`` (ZooKeeper): False when the session is suspended or lost; True with
    the fresh read after it is back. ``ready``: the source's first full view is in.
    """

    source: str
    facts: Sequence[tuple[Key, Any]] = ()
    origin: int | str | None = None
    live_brokers: frozenset[int] | None = None
    connected: bool | None = None
    ready: bool = False


Task = Callable[[], Iterable[Facts]]
"""Work a source runs on the monitor's worker thread (reads, watch set-up); returns facts."""


class FactSink(Protocol):
    """Where sources deliver: the monitor's worker queue."""

    def put(self, item: Facts | Task) -> None:
        """Queue facts, or a task for the worker thread (callable from any thread)."""

    def idle(self) -> bool:
        """True when nothing is queued (asked from the worker thread)."""

    def fail(self, message: str) -> None:
        """The source cannot give a first view: the monitor's start fails with ``message``."""


class FactModel:
    """Facts by key, merged by the rules in the module docstring; builds ClusterHealth.

    ``settle``: seconds a broker's metadata must keep disagreeing with the model (with no
    transition of its own) before the model takes its value.
    """

    def __init__(self, *, zookeeper: bool, quorum: bool = False, known_brokers: Iterable[int] = (),
                 default_min_isr: int = DEFAULT_MIN_ISR, settle: float = 3.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.zookeeper = zookeeper
        self.quorum = quorum
        """KRaft: the controller comes from the quorum source only."""
        self.zookeeper_authoritative = zookeeper
        self.default_min_isr = default_min_isr
        self.settle = settle
        self._clock = clock
        self._known = set(known_brokers)
        self._facts: dict[Key, Any] = {}
        self._zk_view: dict[Key, Any] = {}
        self._zk_lost_at = float("-inf")
        self._set_at: dict[Key, float] = {}
        self._admin_views: dict[int | str, dict[Key, tuple[Any, float]]] = {}

    def merge(self, upd: Facts, changed: dict[Key, str]) -> None:
        """Apply ``upd``; every fact that changed goes into ``changed`` with its source."""
        if upd.source == ZOOKEEPER:
            self._merge_zookeeper(upd, changed)
        elif upd.source == QUORUM:
            for key, value in upd.facts:
                self._set(key, value, QUORUM, changed)
        else:
            self._merge_admin(upd, changed)

    # ------------------------------------------------------------------ ZooKeeper
    def _merge_zookeeper(self, upd: Facts, changed: dict[Key, str]) -> None:
        if upd.connected is False and self.zookeeper_authoritative:
            self.zookeeper_authoritative = False
            self._zk_lost_at = self._clock()
        facts = list(upd.facts)
        if upd.live_brokers is not None:
            for b in sorted(self.broker_ids() | upd.live_brokers):
                facts.append((("broker", b), b in upd.live_brokers))
        for key, value in facts:
            self._zk_view[key] = value
            if self.zookeeper_authoritative:
                self._set(key, value, ZOOKEEPER, changed)
        if upd.connected is True and not self.zookeeper_authoritative:
            self.zookeeper_authoritative = True
            for key, value in list(self._zk_view.items()):
                self._set(key, value, ZOOKEEPER, changed)

    # ------------------------------------------------------------------ Admin API
    def _merge_admin(self, upd: Facts, changed: dict[Key, str]) -> None:
        now = self._clock()
        view = dict(upd.facts)
        if self.quorum:
            view.pop(("controller",), None)
        prev = self._admin_views.get(upd.origin, {}) if upd.origin is not None else {}
        # a full view: a partition it does not list is absent there (a deleted topic)
        for key in [*self._facts, *(k for k, (v, _) in prev.items() if v is not ABSENT)]:
            if key[0] in _PARTITION_KEYS:
                view.setdefault(key, ABSENT)
        zk_rules = self.zookeeper and self.zookeeper_authoritative
        seen: dict[Key, tuple[Any, float]] = {}
        for key, value in view.items():
            before = prev.get(key)
            since = before[1] if before is not None and before[0] == value else now
            seen[key] = (value, since)
            if zk_rules and key in self._zk_view:
                continue  # ZooKeeper is authoritative for what it watches
            have = self._facts.get(key, _MISSING)
            if have is _MISSING or value == have:
                if value is not ABSENT:
                    self._set(key, value, ADMIN, changed)  # fill a gap
            elif before is not None and before[0] is not ABSENT and before[0] != value:
                self._set(key, value, ADMIN, changed)  # a transition this broker's metadata went through
            elif now - max(since, self._set_at.get(key, since), self._zk_lost_at if key in self._zk_view else since) \
                    >= self.settle:
                self._set(key, value, ADMIN, changed)  # this broker has kept disagreeing long enough
        if upd.origin is not None:
            self._admin_views[upd.origin] = seen

    # ------------------------------------------------------------------ the model
    def _set(self, key: Key, value: Any, source: str, changed: dict[Key, str]) -> None:
        if value is ABSENT:
            if key in self._facts:
                del self._facts[key]
                self._set_at.pop(key, None)
                changed[key] = source
            return
        if self._facts.get(key, _MISSING) != value:
            self._facts[key] = value
            self._set_at[key] = self._clock()
            changed[key] = source
            if key[0] == "broker" and not value:
                self._admin_views.pop(key[1], None)  # its metadata cache starts over when it returns

    def broker_ids(self) -> set[int]:
        """Every broker id the model or ZooKeeper's view knows."""
        return {k[1] for k in self._facts if k[0] == "broker"} | {k[1] for k in self._zk_view if k[0] == "broker"}

    def build(self) -> ClusterHealth:
        """The ClusterHealth of the current facts (a partition needs both replicas and state)."""
        live: dict[int, Address] = {}
        known: set[int] = set(self._known)
        controller = None
        rows = []
        mins: dict[str, int] = {}
        addresses: dict[int, Address] = {}
        for key, value in self._facts.items():
            kind = key[0]
            if kind == "addr":
                addresses[key[1]] = value
            elif kind == "broker":
                known.add(key[1])
                if value:
                    live[key[1]] = self._facts.get(("addr", key[1]), (None, None))
            elif kind == "controller":
                controller = value
            elif kind == "min_isr":
                mins[key[1]] = value
            elif kind == "replicas":
                state = self._facts.get(("state", key[1], key[2]))
                if state is not None:
                    rows.append((key[1], key[2], state[0], value, state[1]))
        for topic in {r[0] for r in rows} - set(mins):
            mins[topic] = self.default_min_isr
        return build_health(live, controller, rows, mins, known, addresses=addresses)


def event_sources(changed: dict[Key, str]) -> dict[Key, str]:
    """Changed facts -> the event subjects of :func:`~kafkaops.ops.events.diff_health` and who saw them."""
    sources: dict[Key, str] = {}
    for key, src in changed.items():
        if key[0] == "broker":
            sources[("broker", key[1])] = src
        elif key[0] == "controller":
            sources[("controller",)] = src
        elif key[0] in _PARTITION_KEYS:
            sources.setdefault(("partition", key[1], key[2]), src)
    return sources

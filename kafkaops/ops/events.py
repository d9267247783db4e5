"""Typed replica-monitor events and the pure diff that derives them.

The ReplicaMonitor never emits an event straight from a source: it updates its
ClusterHealth model and calls :func:`diff_health` on the previous and the new
model. An event therefore fires exactly once per change of the model, whichever
source (ZooKeeper watch or Admin API poll) brought the change first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from kafkaops.ops.health import ClusterHealth, PartitionHealth


@dataclass(frozen=True)
class Event:
    """Base of all monitor events: ``type`` is the class name; ``source`` says who saw it first."""

    timestamp: float = field(default=0.0, kw_only=True)
    source: str = field(default="", kw_only=True)
    kind: ClassVar[str] = "broker"

    @property
    def type(self) -> str:
        return type(self).__name__

    def to_json(self) -> dict[str, Any]:
        doc = {"type": self.type}
        doc.update(asdict(self))
        return doc

    def describe(self) -> str:
        fields = {k: v for k, v in asdict(self).items() if k not in ("timestamp", "source")}
        return f"{self.type} " + " ".join(f"{k}={v}" for k, v in fields.items())


@dataclass(frozen=True)
class BrokerDown(Event):
    broker: int


@dataclass(frozen=True)
class BrokerUp(Event):
    broker: int


@dataclass(frozen=True)
class ControllerChanged(Event):
    previous: int | None
    controller: int | None
    kind: ClassVar[str] = "cluster"


@dataclass(frozen=True)
class PartitionEvent(Event):
    topic: str
    partition: int
    kind: ClassVar[str] = "partition"


@dataclass(frozen=True)
class LeaderChanged(PartitionEvent):
    previous: int
    leader: int


@dataclass(frozen=True)
class IsrShrunk(PartitionEvent):
    isr: tuple[int, ...]
    removed: tuple[int, ...]


@dataclass(frozen=True)
class IsrExpanded(PartitionEvent):
    isr: tuple[int, ...]
    added: tuple[int, ...]


@dataclass(frozen=True)
class UnderReplicated(PartitionEvent):
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True)
class UnderMinIsr(PartitionEvent):
    isr: tuple[int, ...]
    min_isr: int


@dataclass(frozen=True)
class PartitionOffline(PartitionEvent):
    replicas: tuple[int, ...]


@dataclass(frozen=True)
class Recovered(PartitionEvent):
    """The partition is fully healthy again (ISR == replicas, leader present, ISR >= min)."""

    replicas: tuple[int, ...]


@dataclass(frozen=True)
class ConsumerLagStatusChanged(Event):
    """A consumer group's partition changed lag status (Burrow's rules, :mod:`kafkaops.ops.lag`)."""

    group: str
    topic: str
    partition: int
    previous: str
    status: str
    lag: int
    kind: ClassVar[str] = "group"


EVENT_TYPES: dict[str, type[Event]] = {
    c.__name__: c
    for c in (
        BrokerDown,
        BrokerUp,
        ControllerChanged,
        LeaderChanged,
        IsrShrunk,
        IsrExpanded,
        UnderReplicated,
        UnderMinIsr,
        PartitionOffline,
        Recovered,
        ConsumerLagStatusChanged,
    )
}


def _partition_events(old: PartitionHealth | None, new: PartitionHealth, ts: float, src: str) -> list[Event]:
    t, p = new.topic, new.partition
    events: list[Event] = []
    if old is not None:
        if old.leader != new.leader:
            events.append(LeaderChanged(t, p, old.leader, new.leader, timestamp=ts, source=src))
        removed = tuple(sorted(set(old.isr) - set(new.isr)))
        added = tuple(sorted(set(new.isr) - set(old.isr)))
        if removed:
            events.append(IsrShrunk(t, p, new.isr, removed, timestamp=ts, source=src))
        if added:
            events.append(IsrExpanded(t, p, new.isr, added, timestamp=ts, source=src))
    was_ur = old is not None and old.under_replicated
    was_umi = old is not None and old.under_min_isr
    was_off = old is not None and old.offline
    if new.under_replicated and not was_ur:
        events.append(UnderReplicated(t, p, new.replicas, new.isr, timestamp=ts, source=src))
    if new.under_min_isr and not was_umi:
        events.append(UnderMinIsr(t, p, new.isr, new.min_isr, timestamp=ts, source=src))
    if new.offline and not was_off:
        events.append(PartitionOffline(t, p, new.replicas, timestamp=ts, source=src))
    if old is not None and not old.healthy and new.healthy:
        events.append(Recovered(t, p, new.replicas, timestamp=ts, source=src))
    return events


def diff_health(
    old: ClusterHealth | None,
    new: ClusterHealth,
    *,
    timestamp: float | None = None,
    sources: dict[tuple[Any, ...], str] | None = None,
) -> list[Event]:
    """The events that lead from ``old`` to ``new`` (none for the first snapshot).

    Broker events come first, then the controller, then partitions in order. A
    partition that appears (a new topic) reports only its unhealthy conditions;
    one that disappears (a deleted topic) reports nothing. ``sources`` maps a
    subject (("broker", id), ("controller",), ("partition", topic, p)) to the
    source that changed it, copied into the events.
    """
    if old is None:
        return []
    ts = new.timestamp if timestamp is None else timestamp
    src = sources or {}
    events: list[Event] = []
    for bid in sorted(set(old.brokers) | set(new.brokers)):
        was = old.brokers.get(bid)
        now = new.brokers.get(bid)
        was_alive = was is not None and was.alive
        is_alive = now is not None and now.alive
        s = src.get(("broker", bid), "")
        if was_alive and not is_alive:
            events.append(BrokerDown(bid, timestamp=ts, source=s))
        elif is_alive and not was_alive:
            events.append(BrokerUp(bid, timestamp=ts, source=s))
    if old.controller_id != new.controller_id:
        events.append(ControllerChanged(old.controller_id, new.controller_id, timestamp=ts, source=src.get(("controller",), "")))
    for tp in sorted(new.partitions):
        now_p = new.partitions[tp]
        was_p = old.partitions.get(tp)
        if was_p == now_p:
            continue
        events.extend(_partition_events(was_p, now_p, ts, src.get(("partition", *tp), "")))
    return events

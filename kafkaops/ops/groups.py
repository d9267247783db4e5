"""Consumer groups through confluent-kafka's AdminClient: list, describe, offsets and lag, delete.

What ``kafka-consumer-groups.sh --describe`` shows, as values: each group's members and
their assignment, and per partition the committed offset, the log-end offset (high
watermark) and the lag between them. "Lag in time" is estimated as now minus the
timestamp of the next record the group has not consumed (the record at its committed
offset), read with a group-less consumer on request (one fetch per lagging partition).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from kafkaops.admin import AdminError, admin_client
from kafkaops.config import ClusterProfile, as_profile
from kafkaops.types import TP
from kafkaops.waits import Deadline

log = logging.getLogger(__name__)


class GroupError(AdminError):
    """A consumer-group call failed (unknown group, group not empty, broker error)."""


@dataclass(frozen=True)
class GroupListing:
    group: str
    state: str
    type: str
    simple: bool

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "state": self.state, "type": self.type, "simple": self.simple}


@dataclass(frozen=True)
class Member:
    """A live member: its ids, host and assigned partitions."""

    member_id: str
    client_id: str
    host: str
    assignment: tuple[TP, ...]
    instance_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"member_id": self.member_id, "client_id": self.client_id, "host": self.host,
                "instance_id": self.instance_id, "assignment": [list(tp) for tp in self.assignment]}


@dataclass(frozen=True)
class GroupDescription:
    group: str
    state: str
    type: str
    assignor: str
    coordinator: int | None
    members: tuple[Member, ...]

    def owners(self) -> dict[TP, Member]:
        """Partition -> the live member it is assigned to."""
        return {tp: m for m in self.members for tp in m.assignment}

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "state": self.state, "type": self.type, "assignor": self.assignor,
                "coordinator": self.coordinator, "members": [m.to_json() for m in self.members]}


@dataclass(frozen=True)
class PartitionLag:
    """One partition of a group: committed and log-end offsets, lag, owner, lag in time."""

    topic: str
    partition: int
    committed: int | None
    log_end: int | None
    owner: Member | None = None
    next_timestamp_ms: int | None = None
    """Timestamp of the next unconsumed record (the one at the committed offset), if read."""

    @property
    def lag(self) -> int | None:
        if self.committed is None or self.log_end is None:
            return None
        return max(0, self.log_end - self.committed)

    def lag_seconds(self, now: float | None = None) -> float | None:
        """How far behind in time: now - the next unconsumed record's timestamp (0 without lag)."""
        if self.lag == 0:
            return 0.0
        if self.next_timestamp_ms is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.next_timestamp_ms / 1000)

    def to_json(self, now: float | None = None) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "committed": self.committed,
                "log_end": self.log_end, "lag": self.lag, "lag_seconds": self.lag_seconds(now),
                "owner": self.owner.client_id if self.owner else None,
                "owner_host": self.owner.host if self.owner else None}


@dataclass(frozen=True)
class GroupLag:
    """A group's offsets and lag per partition (committed partitions and assigned ones)."""

    group: str
    state: str
    members: tuple[Member, ...]
    partitions: tuple[PartitionLag, ...] = field(default=())
    timestamp: float = field(default_factory=time.time)

    @property
    def total_lag(self) -> int:
        return sum(p.lag or 0 for p in self.partitions)

    @property
    def max_lag_seconds(self) -> float | None:
        values = [s for p in self.partitions if (s := p.lag_seconds(self.timestamp)) is not None]
        return max(values) if values else None

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "state": self.state, "members": len(self.members),
                "total_lag": self.total_lag, "max_lag_seconds": self.max_lag_seconds,
                "partitions": [p.to_json(self.timestamp) for p in self.partitions]}


# ---------------------------------------------------------------------- calls
def _admin(cluster: ClusterProfile | str, admin: AdminClient | None) -> AdminClient:
    return admin if admin is not None else admin_client(cluster)


def _err(exc: BaseException) -> str:
    if isinstance(exc, KafkaException) and exc.args:
        inner = exc.args[0]
        return str(inner.str()) if hasattr(inner, "str") else str(inner)
    return str(exc) or type(exc).__name__


def _name(value: Any) -> str:
    return str(getattr(value, "name", value)).lower()


def list_groups(cluster: ClusterProfile | str, *, admin: AdminClient | None = None, timeout: float = 10.0) -> list[GroupListing]:
    """Every consumer group the cluster knows, sorted by id."""
    client = _admin(cluster, admin)
    try:
        result = client.list_consumer_groups(request_timeout=timeout).result(timeout=timeout + 5)
    except Exception as exc:  # noqa: BLE001 - KafkaException or a future timeout
        raise GroupError(f"cannot list consumer groups: {_err(exc)}") from None
    for error in result.errors or []:
        log.warning("listing consumer groups: %s", error)
    return sorted(
        (GroupListing(g.group_id, _name(g.state), _name(g.type), bool(g.is_simple_consumer_group)) for g in result.valid),
        key=lambda g: g.group,
    )


def describe_groups(
    cluster: ClusterProfile | str, groups: Iterable[str], *, admin: AdminClient | None = None, timeout: float = 10.0
) -> dict[str, GroupDescription]:
    """Members and assignments of each group (one request for all of them)."""
    ids = list(groups)
    if not ids:
        return {}
    client = _admin(cluster, admin)
    out: dict[str, GroupDescription] = {}
    for gid, fut in client.describe_consumer_groups(ids, request_timeout=timeout).items():
        try:
            d = fut.result(timeout=timeout + 5)
        except Exception as exc:  # noqa: BLE001
            raise GroupError(f"cannot describe consumer group {gid}: {_err(exc)}") from None
        members = tuple(
            Member(m.member_id, m.client_id, m.host,
                   tuple(sorted((tp.topic, tp.partition) for tp in (m.assignment.topic_partitions or []))),
                   m.group_instance_id)
            for m in d.members
        )
        coordinator = d.coordinator.id if d.coordinator is not None else None
        out[gid] = GroupDescription(gid, _name(d.state), _name(d.type), d.partition_assignor or "", coordinator, members)
    return out


def describe_group(cluster: ClusterProfile | str, group: str, *, admin: AdminClient | None = None,
                   timeout: float = 10.0) -> GroupDescription:
    """One group's description; GroupError if the cluster does not know it."""
    client = _admin(cluster, admin)
    if group not in {g.group for g in list_groups(cluster, admin=client, timeout=timeout)}:
        raise GroupError(f"consumer group {group} does not exist")
    return describe_groups(cluster, [group], admin=client, timeout=timeout)[group]


def committed_offsets(cluster: ClusterProfile | str, group: str, *, admin: AdminClient | None = None,
                      timeout: float = 10.0) -> dict[TP, int]:
    """The group's committed offsets (partitions without a commit are left out)."""
    client = _admin(cluster, admin)
    futures = client.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=timeout)
    try:
        result = futures[group].result(timeout=timeout + 5)
    except Exception as exc:  # noqa: BLE001
        raise GroupError(f"cannot read the committed offsets of group {group}: {_err(exc)}") from None
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions or [] if tp.offset >= 0 and tp.error is None}


def log_end_offsets(cluster: ClusterProfile | str, tps: Iterable[TP], *, admin: AdminClient | None = None,
                    timeout: float = 10.0) -> dict[TP, int]:
    """High watermarks of ``tps`` in one ListOffsets round; partitions that fail are left out (logged)."""
    wanted = sorted(set(tps))
    if not wanted:
        return {}
    client = _admin(cluster, admin)
    latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    futures = client.list_offsets({TopicPartition(t, p): latest for t, p in wanted}, request_timeout=timeout)
    out: dict[TP, int] = {}
    for tp, fut in futures.items():
        try:
            out[(tp.topic, tp.partition)] = int(fut.result(timeout=timeout + 5).offset)
        except Exception as exc:  # noqa: BLE001 - a partition without a leader, a deleted topic
            log.debug("log-end offset of %s[%d] unknown: %s", tp.topic, tp.partition, _err(exc))
    return out


def next_record_timestamps(cluster: ClusterProfile | str, positions: Mapping[TP, int], *,
                           timeout: float = 5.0) -> dict[TP, int]:
    """Timestamp (ms) of the record at each position, read by a consumer without a group.

    Partitions whose record is not fetched within ``timeout`` (compacted away, deleted
    by retention) are left out.
    """
    if not positions:
        return {}
    profile = as_profile(cluster)
    consumer = Consumer(profile.librdkafka(**{
        "group.id": "kafkaops-lag-probe", "enable.auto.commit": False, "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest", "enable.partition.eof": False, "logger": log,
    }))
    try:
        consumer.assign([TopicPartition(t, p, off) for (t, p), off in positions.items()])
        out: dict[TP, int] = {}
        deadline = Deadline(timeout)
        while len(out) < len(positions) and not deadline.expired:
            for msg in consumer.consume(num_messages=500, timeout=deadline.remaining(cap=0.5)):
                if msg.error() is not None:
                    continue
                tp = (str(msg.topic()), int(msg.partition() or 0))
                if tp in positions and tp not in out:
                    out[tp] = int(msg.timestamp()[1])
                    consumer.pause([TopicPartition(tp[0], tp[1])])
        return out
    finally:
        consumer.close()


def group_lag(
    cluster: ClusterProfile | str,
    group: str,
    *,
    admin: AdminClient | None = None,
    timeout: float = 10.0,
    with_time: bool = True,
    description: GroupDescription | None = None,
) -> GroupLag:
    """Committed offset, log-end offset, lag (and lag in time with ``with_time``) of every
    partition the group has committed or has assigned."""
    client = _admin(cluster, admin)
    desc = description or describe_group(cluster, group, admin=client, timeout=timeout)
    committed = committed_offsets(cluster, group, admin=client, timeout=timeout)
    owners = desc.owners()
    tps = sorted(set(committed) | set(owners))
    ends = log_end_offsets(cluster, tps, admin=client, timeout=timeout)
    stamps: dict[TP, int] = {}
    if with_time:
        lagging = {tp: committed[tp] for tp in tps if tp in committed and tp in ends and ends[tp] > committed[tp]}
        stamps = next_record_timestamps(cluster, lagging, timeout=min(timeout, 5.0))
    parts = tuple(PartitionLag(t, p, committed.get((t, p)), ends.get((t, p)), owners.get((t, p)), stamps.get((t, p)))
                  for t, p in tps)
    return GroupLag(group, desc.state, desc.members, parts)


def delete_group(cluster: ClusterProfile | str, group: str, *, admin: AdminClient | None = None,
                 timeout: float = 10.0) -> None:
    """Delete a group's committed offsets and metadata; refused while it has members."""
    client = _admin(cluster, admin)
    fut = client.delete_consumer_groups([group], request_timeout=timeout)[group]
    try:
        fut.result(timeout=timeout + 5)
    except Exception as exc:  # noqa: BLE001
        reason = _err(exc)
        if "NON_EMPTY" in reason.upper().replace(" ", "_") or "not empty" in reason.lower():
            raise GroupError(f"consumer group {group} has active members: stop its consumers before deleting it") from None
        if "GROUP_ID_NOT_FOUND" in reason.upper().replace(" ", "_") or "does not exist" in reason.lower():
            raise GroupError(f"consumer group {group} does not exist") from None
        raise GroupError(f"cannot delete consumer group {group}: {reason}") from None

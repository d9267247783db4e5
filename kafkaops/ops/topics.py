"""Topics: list, describe (partitions and config overrides), delete, read and change configs.

Partition states come from Admin metadata and are judged by the one health model
(:class:`~kafkaops.ops.health.PartitionHealth`: under-replicated, under min ISR, offline).
Config changes go through ``incremental_alter_configs`` (only the named keys change) and
refuse to weaken the no-loss defaults — ``min.insync.replicas`` below 2 or above the
replication factor, ``unclean.leader.election.enable=true`` — unless forced. Changes are
recorded in an :class:`~kafkaops.audit.AuditLog` when one is given.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    ResourceType,
)

from kafkaops.admin import AdminError, admin_client
from kafkaops.audit import audited
from kafkaops.config import ClusterProfile, as_profile
from kafkaops.ops.health import PartitionHealth, build_health, topic_min_isr
from kafkaops.waits import wait_until

if TYPE_CHECKING:
    from kafkaops.audit import AuditLog

INTERNAL_PREFIX = "__"


class TopicError(AdminError):
    """A topic call failed or was refused (unknown topic, unsafe config, broker error)."""


@dataclass(frozen=True)
class ConfigValue:
    name: str
    value: str | None
    source: str
    default: bool
    sensitive: bool = False
    read_only: bool = False

    @property
    def overrides(self) -> bool:
        """Set on the topic itself (it differs from the broker's default)."""
        return self.source == "dynamic_topic"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": None if self.sensitive else self.value, "source": self.source,
                "default": self.default, "read_only": self.read_only}


@dataclass(frozen=True)
class TopicSummary:
    name: str
    partitions: int
    replication_factor: int
    under_replicated: int
    under_min_isr: int
    offline: int
    internal: bool

    def to_json(self) -> dict[str, Any]:
        return {"topic": self.name, "partitions": self.partitions, "replication_factor": self.replication_factor,
                "under_replicated": self.under_replicated, "under_min_isr": self.under_min_isr,
                "offline": self.offline, "internal": self.internal}


@dataclass(frozen=True)
class TopicDescription:
    """Partitions with leader, replicas, ISR and their marks; configs set on the topic."""

    name: str
    partitions: tuple[PartitionHealth, ...]
    overrides: tuple[ConfigValue, ...]

    @property
    def replication_factor(self) -> int:
        return max((len(p.replicas) for p in self.partitions), default=0)

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.name, "replication_factor": self.replication_factor,
            "partitions": [{**p.to_json(), "under_replicated": p.under_replicated, "under_min_isr": p.under_min_isr,
                            "offline": p.offline} for p in self.partitions],
            "configs": {c.name: None if c.sensitive else c.value for c in self.overrides},
        }


# ---------------------------------------------------------------------- reading
def _metadata(admin: AdminClient, profile: ClusterProfile, topic: str | None, timeout: float) -> Any:
    try:
        return admin.list_topics(topic=topic, timeout=timeout)
    except KafkaException as exc:
        raise TopicError(f"cannot read metadata from {profile.bootstrap_servers}: {exc.args[0].str()}") from None


def _partitions(md: Any, names: list[str], mins: Mapping[str, int]) -> dict[str, list[PartitionHealth]]:
    rows = [(n, p.id, p.leader, list(p.replicas), list(p.isrs)) for n in names for p in md.topics[n].partitions.values()]
    health = build_health({}, None, rows, mins)
    out: dict[str, list[PartitionHealth]] = {n: [] for n in names}
    for (topic, _), p in sorted(health.partitions.items()):
        out[topic].append(p)
    return out


def list_topics(cluster: ClusterProfile | str, *, internal: bool = False, timeout: float = 10.0) -> list[TopicSummary]:
    """Every topic (``internal``: also ``__consumer_offsets`` and friends) with its partition health."""
    profile = as_profile(cluster)
    admin = admin_client(profile)
    md = _metadata(admin, profile, None, timeout)
    names = sorted(n for n, t in md.topics.items() if t.error is None and (internal or not n.startswith(INTERNAL_PREFIX)))
    parts = _partitions(md, names, topic_min_isr(admin, names, timeout))
    return [TopicSummary(n, len(ps), max((len(p.replicas) for p in ps), default=0),
                         sum(p.under_replicated for p in ps), sum(p.under_min_isr for p in ps), sum(p.offline for p in ps),
                         n.startswith(INTERNAL_PREFIX))
            for n, ps in parts.items()]


def _require(md: Any, topic: str) -> None:
    t = md.topics.get(topic)
    if t is None or (t.error is not None and not t.partitions):
        raise TopicError(f"topic {topic} does not exist")


def topic_configs(cluster: ClusterProfile | str, topic: str, *, admin: AdminClient | None = None,
                  timeout: float = 10.0) -> dict[str, ConfigValue]:
    """Every config of the topic with its value and where it comes from."""
    client = admin or admin_client(cluster)
    res = ConfigResource(ResourceType.TOPIC, topic)
    try:
        entries: dict[str, ConfigEntry] = client.describe_configs([res], request_timeout=timeout)[res].result(timeout=timeout + 5)
    except KafkaException as exc:
        err = exc.args[0]
        if err.name() == "UNKNOWN_TOPIC_OR_PART":
            raise TopicError(f"topic {topic} does not exist") from None
        raise TopicError(f"cannot read the configs of topic {topic}: {err.str()}") from None
    return {
        name: ConfigValue(name, e.value, ConfigSource(e.source).name.lower().removesuffix("_config"),
                          bool(e.is_default) or ConfigSource(e.source) == ConfigSource.DEFAULT_CONFIG,
                          bool(e.is_sensitive), bool(e.is_read_only))
        for name, e in sorted(entries.items())
    }


def describe_topic(cluster: ClusterProfile | str, topic: str, *, timeout: float = 10.0) -> TopicDescription:
    """Partitions (leader, replicas, ISR, marks) and the configs set on the topic itself."""
    profile = as_profile(cluster)
    admin = admin_client(profile)
    md = _metadata(admin, profile, topic, timeout)
    _require(md, topic)
    configs = topic_configs(profile, topic, admin=admin, timeout=timeout)
    mins = {topic: int(configs["min.insync.replicas"].value or 1)} if "min.insync.replicas" in configs else {}
    parts = _partitions(md, [topic], mins)[topic]
    overrides = tuple(c for c in configs.values() if c.overrides)
    return TopicDescription(topic, tuple(parts), overrides)


# ---------------------------------------------------------------------- changing
def unsafe_changes(changes: Mapping[str, str], replication_factor: int) -> list[str]:
    """Why ``changes`` would weaken the no-loss defaults (empty: they do not)."""
    reasons = []
    mis = changes.get("min.insync.replicas")
    if mis is not None:
        try:
            value = int(mis)
        except ValueError:
            raise TopicError(f"min.insync.replicas must be an integer, not {mis!r}") from None
        if value < 2:
            reasons.append(f"min.insync.replicas={value} lets acks=all acknowledge a record only one broker holds "
                           "(the no-loss default is 2)")
        if replication_factor and value > replication_factor:
            reasons.append(f"min.insync.replicas={value} exceeds the replication factor {replication_factor}: "
                           "every acks=all write would fail")
    unclean = changes.get("unclean.leader.election.enable")
    if unclean is not None and unclean.strip().lower() == "true":
        reasons.append("unclean.leader.election.enable=true lets an out-of-sync replica become leader and lose "
                       "acknowledged records")
    return reasons


def set_topic_config(
    cluster: ClusterProfile | str,
    topic: str,
    changes: Mapping[str, str | None],
    *,
    force: bool = False,
    audit: AuditLog | None = None,
    timeout: float = 10.0,
) -> dict[str, ConfigValue]:
    """Set (or, for a None value, reset to the default) the named configs only; returns the new configs.

    Refused with TopicError, before anything changes, when a change weakens the no-loss
    defaults and ``force`` is False.
    """
    if not changes:
        raise TopicError("no config to change")
    profile = as_profile(cluster)
    admin = admin_client(profile)
    md = _metadata(admin, profile, topic, timeout)
    _require(md, topic)
    rf = max((len(p.replicas) for p in md.topics[topic].partitions.values()), default=0)
    reasons = unsafe_changes({k: v for k, v in changes.items() if v is not None}, rf)
    if reasons and not force:
        raise TopicError(f"refused for topic {topic}: " + "; ".join(reasons) + " (--force to do it anyway)")
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET if v is not None else AlterConfigOpType.DELETE)
               for k, v in changes.items()]
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    with audited(audit, "topic.config.set", topic, {"changes": dict(changes), "force": force}):
        try:
            admin.incremental_alter_configs([res], request_timeout=timeout)[res].result(timeout=timeout + 5)
        except KafkaException as exc:
            raise TopicError(f"cannot change the configs of topic {topic}: {exc.args[0].str()}") from None
    return topic_configs(profile, topic, admin=admin, timeout=timeout)


def delete_topic(cluster: ClusterProfile | str, topic: str, *, audit: AuditLog | None = None,
                 timeout: float = 30.0) -> None:
    """Delete a topic and wait until metadata no longer lists it."""
    profile = as_profile(cluster)
    admin = admin_client(profile)
    _require(_metadata(admin, profile, topic, timeout), topic)
    with audited(audit, "topic.delete", topic, {}):
        try:
            admin.delete_topics([topic], operation_timeout=timeout, request_timeout=timeout)[topic].result(timeout + 5)
        except KafkaException as exc:
            raise TopicError(f"cannot delete topic {topic}: {exc.args[0].str()}") from None
        wait_until(lambda: topic not in _metadata(admin, profile, None, timeout).topics, timeout,
                   f"topic {topic} to leave metadata", error=TopicError)

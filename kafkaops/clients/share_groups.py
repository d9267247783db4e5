"""Share group administration: a share group's configuration, read and set with the Admin API.

A share group's behaviour is group configuration on the brokers, not client settings:
where a new group starts (``share.auto.offset.reset``, Kafka's default: latest), how long
a member holds the records it fetched (``share.record.lock.duration.ms``), how many
deliveries a record gets before the broker drops it (``share.delivery.count.limit``).
The brokers bound each value (``group.share.min/max.*``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    ResourceType,
)

from kafkaops.admin import admin_client
from kafkaops.config import ClusterProfile, as_profile
from kafkaops.errors import KafkaopsError

AUTO_OFFSET_RESET = "share.auto.offset.reset"
LOCK_DURATION = "share.record.lock.duration.ms"
DELIVERY_LIMIT = "share.delivery.count.limit"

T = TypeVar("T")


class ShareConsumerError(KafkaopsError):
    """A share group or share consumer cannot go on (bad configuration, fatal client error, no share groups)."""


def share_group_config(cluster: ClusterProfile | str, group: str, timeout: float = 15.0) -> dict[str, str]:
    """The effective ``share.*`` configuration of a share group (its own settings over the
    brokers' defaults); ShareConsumerError naming the cluster when there are none (no share groups)."""
    return {k: e.value for k, e in _describe(as_profile(cluster), group, timeout).items()}


def _describe(profile: ClusterProfile, group: str, timeout: float) -> dict[str, Any]:
    """The group's ``share.*`` ConfigEntry objects (value, source)."""
    resource = ConfigResource(ResourceType.GROUP, group)
    admin = admin_client(profile)  # kept alive until the result is in
    none = f"{profile.bootstrap_servers} has no share groups (Kafka 4.2+ in KRaft mode needed)"
    try:
        entries = admin.describe_configs([resource], request_timeout=timeout)[resource].result(timeout)
    except KafkaException as exc:
        if exc.args[0].code() in _NO_GROUP_CONFIGS:  # brokers before group configs (Kafka 3.x)
            raise ShareConsumerError(none) from None
        raise ShareConsumerError(f"cannot read share group {group}'s configuration from "
                                 f"{profile.bootstrap_servers}: {exc.args[0].str()}") from None
    except TimeoutError:
        raise ShareConsumerError(f"cannot read share group {group}'s configuration from "
                                 f"{profile.bootstrap_servers}: no answer within {timeout:.0f}s") from None
    configs = {k: e for k, e in entries.items() if k.startswith("share.")}
    if not configs:
        raise ShareConsumerError(none)
    return configs


_NO_GROUP_CONFIGS = frozenset({KafkaError.INVALID_REQUEST, KafkaError.UNSUPPORTED_VERSION})


def configure_share_group(cluster: ClusterProfile | str, group: str, configs: Mapping[str, str | int],
                          timeout: float = 15.0) -> None:
    """Set group configs of a share group (``share.auto.offset.reset``, ``share.record.lock.duration.ms``,
    ``share.delivery.count.limit``...) with IncrementalAlterConfigs; the brokers bound each value."""
    profile = as_profile(cluster)
    resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
        ConfigEntry(k, str(v), incremental_operation=AlterConfigOpType.SET) for k, v in configs.items()])
    admin = admin_client(profile)  # kept alive until the result is in
    _result(lambda: admin.incremental_alter_configs([resource], request_timeout=timeout)[resource], timeout,
            f"cannot set {dict(configs)} on share group {group}")


def prepare_share_group(cluster: ClusterProfile | str, group: str, topics: list[str], *, max_deliveries: int,
                        auto_offset_reset: str | None = None, timeout: float = 15.0) -> dict[str, str]:
    """Before a member joins: the topics exist, the cluster has share groups, a group with no
    ``share.auto.offset.reset`` of its own gets ``auto_offset_reset`` (if given), and the broker
    will not drop a failing record before its ``max_deliveries``-th delivery. Returns the group's configuration."""
    profile = as_profile(cluster)
    admin = admin_client(profile)
    try:
        known = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        why = exc.args[0].str()
        raise ShareConsumerError(f"cannot read metadata from {profile.bootstrap_servers}: {why}") from None
    missing = [t for t in topics if t not in known or known[t].error is not None]
    if missing:
        raise ShareConsumerError(f"topic(s) {', '.join(missing)} do not exist on {profile.bootstrap_servers}")
    entries = _describe(profile, group, timeout)
    configs = {k: e.value for k, e in entries.items()}
    own = entries.get(AUTO_OFFSET_RESET) is not None and entries[AUTO_OFFSET_RESET].source == ConfigSource.GROUP_CONFIG
    if auto_offset_reset is not None and not own and configs.get(AUTO_OFFSET_RESET) != auto_offset_reset:
        configure_share_group(profile, group, {AUTO_OFFSET_RESET: auto_offset_reset}, timeout)
        configs[AUTO_OFFSET_RESET] = auto_offset_reset
    limit = configs.get(DELIVERY_LIMIT)
    if limit is not None and int(limit) < max_deliveries:
        raise ShareConsumerError(
            f"max_deliveries={max_deliveries} exceeds share group {group}'s {DELIVERY_LIMIT}={limit}: "
            "the broker would drop a failing record before it reaches the dead-letter queue")
    return configs


def _result(call: Callable[[], Future[T]], timeout: float, what: str) -> T:
    """The result of an Admin API future, or ShareConsumerError saying ``what`` failed and why."""
    try:
        return call().result(timeout)
    except KafkaException as exc:
        raise ShareConsumerError(f"{what}: {exc.args[0].str()}") from None
    except TimeoutError:
        raise ShareConsumerError(f"{what}: no answer within {timeout:.0f}s") from None

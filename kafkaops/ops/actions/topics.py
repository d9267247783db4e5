"""Topic actions: create a topic, add partitions to one."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import NewPartitions  # type: ignore[attr-defined]

from kafkaops.admin import admin_client, create_topic as admin_create_topic, wait_for_leaders
from kafkaops.ops.actions.registry import ActionContext, ActionError, action


@action()
def create_topic(
    ctx: ActionContext,
    *,
    topic: str,
    partitions: int = 3,
    replication_factor: int = 3,
    config: dict[str, str] | None = None,
    exist_ok: bool = True,
) -> str:
    """Create a topic (RF 3 by default) and wait until every partition has a leader."""
    admin_create_topic(ctx.profile, topic, partitions, replication_factor, config, exist_ok=exist_ok)
    return f"topic {topic}: {partitions} partitions, replication factor {replication_factor}"


@action()
def add_partitions(ctx: ActionContext, *, topic: str, partitions: int, timeout: float = 60.0) -> str:
    """Grow a topic to ``partitions`` in total (keyed records may map to new partitions afterwards)."""
    admin = admin_client(ctx.profile)
    md = admin.list_topics(topic=topic, timeout=15).topics.get(topic)
    if md is None or md.error is not None:
        raise ActionError(f"topic {topic} does not exist")
    have = len(md.partitions)
    if have == partitions:
        return f"topic {topic} already has {partitions} partitions"
    if have > partitions:
        raise ActionError(f"topic {topic} has {have} partitions; Kafka cannot shrink it to {partitions}")
    fut = admin.create_partitions([NewPartitions(topic, partitions)], request_timeout=timeout)[topic]
    try:
        fut.result(timeout=timeout)
    except KafkaException as exc:
        raise ActionError(f"cannot add partitions to {topic}: {exc.args[0].str()}") from None
    wait_for_leaders(admin, topic, partitions, timeout, ctx.profile)
    return f"topic {topic}: {have} -> {partitions} partitions"

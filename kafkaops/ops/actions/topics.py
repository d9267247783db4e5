"""Topic actions: create a topic, add partitions to one."""

from __future__ import annotations

from kafkaops.admin import AdminError, add_partitions as admin_add_partitions, create_topic as admin_create_topic
from kafkaops.audit import audited
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
    with audited(ctx.audit, "topic.create", topic, {"partitions": partitions, "replication_factor": replication_factor,
                                                    "config": config or {}, "exist_ok": exist_ok}):
        admin_create_topic(ctx.profile, topic, partitions, replication_factor, config, exist_ok=exist_ok)
    return f"topic {topic}: {partitions} partitions, replication factor {replication_factor}"


@action()
def add_partitions(ctx: ActionContext, *, topic: str, partitions: int, timeout: float = 60.0) -> str:
    """Grow a topic to ``partitions`` in total (keyed records may map to new partitions afterwards)."""
    with audited(ctx.audit, "topic.alter", topic, {"partitions": partitions}):
        try:
            have = admin_add_partitions(ctx.profile, topic, partitions, timeout=timeout)
        except AdminError as exc:
            raise ActionError(str(exc)) from None
    if have == partitions:
        return f"topic {topic} already has {partitions} partitions"
    return f"topic {topic}: {have} -> {partitions} partitions"

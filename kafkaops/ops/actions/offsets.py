"""Consumer-group offset actions: reset a group's offsets, restore a job's checkpoint.

No-loss default: offsets are never reset under a live group (its members would
overwrite the reset with their next commit).
"""

from __future__ import annotations

from typing import Any, Literal

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

from kafkaops.admin import admin_client
from kafkaops.audit import audited
from kafkaops.coord.checkpoints import CheckpointError, CheckpointStore
from kafkaops.ops.actions.registry import ActionContext, ActionError, action


def _check_reset(args: dict[str, Any]) -> str | None:
    to = args.get("to")
    if to == "timestamp" and args.get("timestamp") is None:
        return "reset_offsets to: timestamp needs 'timestamp' (milliseconds since the epoch)"
    if to == "checkpoint" and not args.get("job"):
        return "reset_offsets to: checkpoint needs 'job' (and optionally 'checkpoint')"
    return None


def _require_empty_group(admin: Any, group: str, timeout: float) -> None:
    try:
        desc = admin.describe_consumer_groups([group], request_timeout=timeout)[group].result(timeout=timeout)
    except KafkaException as exc:
        raise ActionError(f"cannot describe consumer group {group}: {exc.args[0].str()}") from None
    if desc.members:
        who = ", ".join(sorted({m.client_id or m.member_id for m in desc.members}))
        raise ActionError(
            f"consumer group {group} has {len(desc.members)} active member(s) ({who}); "
            "stop its consumers before resetting offsets"
        )


@action(check=_check_reset)
def reset_offsets(
    ctx: ActionContext,
    *,
    group: str,
    topic: str,
    to: Literal["earliest", "latest", "timestamp", "checkpoint"],
    timestamp: int | None = None,
    job: str | None = None,
    checkpoint: str | None = None,
    timeout: float = 30.0,
) -> str:
    """Set a group's committed offsets on a topic: earliest, latest, a timestamp (ms) or a job's checkpoint.

    Refused while the group has active members (they would overwrite the reset).
    """
    problem = _check_reset({"to": to, "timestamp": timestamp, "job": job})
    if problem:
        raise ActionError(problem)
    admin = admin_client(ctx.profile)
    md = admin.list_topics(topic=topic, timeout=15).topics.get(topic)
    if md is None or md.error is not None:
        raise ActionError(f"topic {topic} does not exist")
    _require_empty_group(admin, group, timeout)
    parts = sorted(md.partitions)
    if to == "checkpoint":
        assert job is not None
        offsets = _checkpoint_offsets(ctx, job, checkpoint, topic)
    else:
        spec = _offset_spec(to, timestamp)
        futs = admin.list_offsets({TopicPartition(topic, p): spec for p in parts}, request_timeout=timeout)
        offsets = {}
        ends: dict[int, int] = {}
        for tp, fut in futs.items():
            try:
                offsets[tp.partition] = int(fut.result(timeout=timeout).offset)
            except KafkaException as exc:
                raise ActionError(f"cannot list offsets of {topic}[{tp.partition}]: {exc.args[0].str()}") from None
        if to == "timestamp" and any(o < 0 for o in offsets.values()):  # no record that late: the end
            latest = admin.list_offsets(
                {TopicPartition(topic, p): _offset_spec("latest", None) for p, o in offsets.items() if o < 0},
                request_timeout=timeout,
            )
            ends = {tp.partition: int(f.result(timeout=timeout).offset) for tp, f in latest.items()}
            offsets.update(ends)
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, o) for p, o in sorted(offsets.items())])
    with audited(ctx.audit, "group.offsets.reset", group,
                 {"topic": topic, "to": to, "offsets": {str(p): o for p, o in sorted(offsets.items())}}):
        try:
            result = admin.alter_consumer_group_offsets([request], request_timeout=timeout)[group].result(timeout=timeout)
        except KafkaException as exc:
            raise ActionError(f"cannot reset offsets of group {group}: {exc.args[0].str()}") from None
        errors = [f"{tp.partition}: {tp.error.str()}" for tp in result.topic_partitions if tp.error is not None]
        if errors:
            raise ActionError(f"offset reset of group {group} failed for partitions {', '.join(errors)}")
    total = sum(offsets.values())
    return f"group {group} on {topic} reset to {to}: {len(offsets)} partition(s), offsets {dict(sorted(offsets.items()))} (sum {total})"


def _offset_spec(to: str, timestamp: int | None) -> Any:
    if to == "earliest":
        return OffsetSpec.earliest()  # type: ignore[no-untyped-call]
    if to == "latest":
        return OffsetSpec.latest()  # type: ignore[no-untyped-call]
    return OffsetSpec.for_timestamp(int(timestamp or 0))


def _checkpoint_store(ctx: ActionContext) -> CheckpointStore:
    if ctx.coordinator is None:
        raise ActionError("checkpoint actions need ZooKeeper (--zookeeper or the local cluster)")
    return CheckpointStore(ctx.coordinator)


def checkpoint_id(value: str | int) -> str:
    """A checkpoint id as CheckpointStore names it: ``42`` or ``"42"`` -> ``ckpt-0000000042``."""
    text = str(value).strip()
    return f"ckpt-{int(text):010d}" if text.isdigit() else text


def _checkpoint_offsets(ctx: ActionContext, job: str, checkpoint: str | None, topic: str) -> dict[int, int]:
    store = _checkpoint_store(ctx)
    try:
        cp = store.info(job, checkpoint_id(checkpoint) if checkpoint is not None else None)  # header only
    except CheckpointError as exc:
        raise ActionError(str(exc)) from None
    if cp is None:
        raise ActionError(f"job {job} has no checkpoint")
    offsets = {int(p): int(o) for (t, p), o in cp.offsets.items() if t == topic}
    if not offsets:
        raise ActionError(f"checkpoint {cp.id} of job {job} has no offsets for topic {topic}")
    return offsets


@action()
def restore_checkpoint(ctx: ActionContext, *, job: str, checkpoint: str) -> str:
    """Point a checkpointed job at one of its checkpoints (``42`` or ``ckpt-0000000042``).

    The job's current writer is fenced (its next save fails) and its next run resumes
    from that checkpoint's offsets and state.
    """
    store = _checkpoint_store(ctx)
    ckpt = checkpoint_id(checkpoint)
    try:
        with audited(ctx.audit, "checkpoint.restore", job, {"checkpoint": ckpt}):
            epoch = store.restore(job, ckpt, owner="playbook")
    except CheckpointError as exc:
        raise ActionError(str(exc)) from None
    cp = store.info(job)  # the header: the state may live in a backend this context has no client for
    if cp.id != ckpt:
        raise ActionError(f"job {job}: latest checkpoint is {cp.id} after restoring {ckpt}")
    return f"job {job} now resumes from {ckpt} ({len(cp.offsets)} partition offsets, epoch {epoch})"

"""The named actions a playbook step may call, each a small typed function.

An action takes an :class:`ActionContext` and keyword-only arguments; its
signature *is* its schema (the validator reads the annotations and defaults), so
``broker: int`` in the code means ``broker: one`` is refused before any step runs.
Each returns a one-line detail of what it did and raises :class:`ActionError`
(or another KafkaopsError) when it cannot reach its outcome.

No-loss defaults stay on: broker restarts wait until no partition would fall below
``min.insync.replicas`` (as Strimzi does), reassignments add replicas before
dropping any and are throttled, and offsets are never reset under a live group.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    NewPartitions,
    OffsetSpec,
)

from kafkaops.admin import admin_client, create_topic as admin_create_topic, wait_for_leaders
from kafkaops.coord.checkpoints import CheckpointError, CheckpointStore
from kafkaops.coord.session import Coordinator
from kafkaops.errors import KafkaopsError
from kafkaops.ops import health, reassign
from kafkaops.ops.brokers import BrokerControl
from kafkaops.ops.health import ClusterHealth, PartitionHealth
from kafkaops.ops.playbook_schema import ActionSpec

log = logging.getLogger(__name__)


class ActionError(KafkaopsError):
    """An action could not reach its outcome (the step fails, the run stops)."""


@dataclass
class ActionContext:
    """What actions may use: the cluster, broker control, ZooKeeper and the operator."""

    bootstrap_servers: str
    brokers: BrokerControl | None = None
    coordinator: Coordinator | None = None
    """The started ZooKeeper Coordinator, for checkpoint actions."""
    confirm: Callable[[str], bool] | None = None
    """Asks the operator; True to go on. The CLI supplies it; the library never reads stdin."""
    assume_yes: bool = False
    progress: Callable[[str], None] = field(default=lambda _msg: None)
    """Receives short progress notes while an action waits (the CLI shows them)."""
    poll_interval: float = 1.0

    def control(self) -> BrokerControl:
        if self.brokers is None:
            raise ActionError("no broker control configured (local cluster, docker or shell templates)")
        return self.brokers


ACTIONS: dict[str, ActionSpec] = {}


def action(
    name: str | None = None, check: Callable[[dict[str, Any]], str | None] | None = None
) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Register a function as a playbook action; its keyword-only parameters are the schema."""

    def register(func: Callable[..., str]) -> Callable[..., str]:
        spec = ActionSpec.from_function(name or func.__name__, func, check)
        ACTIONS[spec.name] = spec
        return func

    return register


# --------------------------------------------------------------------------- health
def cluster_health(bootstrap_servers: str) -> ClusterHealth:
    """One ClusterHealth snapshot (ops/health.py) from the Admin API."""
    return health.cluster_health(bootstrap_servers, timeout=15.0)


def is_healthy(h: ClusterHealth, allow_under_replicated: bool = False) -> bool:
    """Nothing offline or under min ISR, and (unless allowed) nothing under-replicated."""
    c = h.counts
    if c.offline or c.under_min_isr:
        return False
    return allow_under_replicated or not c.under_replicated


def summary(h: ClusterHealth) -> str:
    c = h.counts
    return (
        f"{len(h.live_brokers)} brokers alive {sorted(h.live_brokers)}, {c.total} partitions: "
        f"{c.under_replicated} under-replicated, {c.under_min_isr} under min ISR, {c.offline} offline"
    )


def unsafe_to_stop(h: ClusterHealth, broker: int) -> list[PartitionHealth]:
    """Partitions that would fall below min ISR if ``broker`` stopped now (Strimzi's rule).

    As Strimzi does, partitions whose ``min.insync.replicas`` is not below their replication
    factor (e.g. RF 1) are ignored: no restart order can keep them writable.
    """
    return [
        p
        for _, p in sorted(h.partitions.items())
        if broker in p.isr and p.min_isr < len(p.replicas) and len(p.isr) - 1 < p.min_isr
    ]


def _unhealthy(h: ClusterHealth) -> list[PartitionHealth]:
    return [p for _, p in sorted(h.partitions.items()) if not p.healthy]


def _wait(
    ctx: ActionContext, what: str, timeout: float, probe: Callable[[], tuple[bool, str]]
) -> str:
    """Poll ``probe`` until it says done; ActionError naming the last state after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            done, last = probe()
        except KafkaopsError as exc:  # a broker just went away: keep polling
            done, last = False, str(exc)
        if done:
            return last
        if time.monotonic() > deadline:
            raise ActionError(f"timed out after {timeout:.0f}s waiting for {what}: {last}")
        ctx.progress(f"waiting for {what}: {last}")
        time.sleep(ctx.poll_interval)


def wait_for_health(ctx: ActionContext, timeout: float, allow_under_replicated: bool = False) -> ClusterHealth:
    """Poll until the cluster is healthy (see :func:`is_healthy`); ActionError after ``timeout``."""
    holder: list[ClusterHealth] = []

    def probe() -> tuple[bool, str]:
        h = cluster_health(ctx.bootstrap_servers)
        holder[:] = [h]
        return is_healthy(h, allow_under_replicated), summary(h)

    what = "no partition under min ISR or offline" if allow_under_replicated else "no partition under-replicated"
    _wait(ctx, what, timeout, probe)
    return holder[0]


def _partitions_str(parts: Iterable[PartitionHealth], limit: int = 5) -> str:
    items = [f"{p.topic}[{p.partition}] isr={list(p.isr)} min={p.min_isr}" for p in parts]
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _broker_ids(ctx: ActionContext) -> set[int]:
    return set(cluster_health(ctx.bootstrap_servers).live_brokers)


# --------------------------------------------------------------------------- health actions
@action()
def check_health(ctx: ActionContext, *, expect_brokers: int | None = None, allow_under_replicated: bool = False) -> str:
    """Fail unless the cluster is healthy now (nothing under-replicated, under min ISR or offline)."""
    h = cluster_health(ctx.bootstrap_servers)
    live = sorted(h.live_brokers)
    if expect_brokers is not None and len(live) < expect_brokers:
        raise ActionError(f"expected {expect_brokers} live brokers, found {len(live)}: {live}")
    if not is_healthy(h, allow_under_replicated):
        raise ActionError(f"cluster is not healthy: {summary(h)} ({_partitions_str(_unhealthy(h))})")
    return summary(h)


@action()
def wait_healthy(ctx: ActionContext, *, timeout: float = 300.0, allow_under_replicated: bool = False) -> str:
    """Wait until no partition is under-replicated (or, if allowed, under min ISR / offline)."""
    return summary(wait_for_health(ctx, timeout, allow_under_replicated))


@action()
def sleep(ctx: ActionContext, *, seconds: float) -> str:
    """Pause for a number of seconds (let clients reconnect, metrics settle)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ctx.progress(f"sleeping, {left:.0f}s left")
        time.sleep(min(left, 1.0))
    return f"slept {seconds:g}s"


@action()
def confirm(ctx: ActionContext, *, message: str) -> str:
    """Ask the operator to confirm before going on (skipped with --yes)."""
    if ctx.assume_yes:
        return "confirmed by --yes"
    if ctx.confirm is None:
        raise ActionError(f"needs operator confirmation ({message}); run interactively or with --yes")
    if not ctx.confirm(message):
        raise ActionError(f"operator declined: {message}")
    return "confirmed by the operator"


# --------------------------------------------------------------------------- broker lifecycle
def _wait_membership(ctx: ActionContext, broker: int, present: bool, timeout: float) -> None:
    state = "in" if present else "out of"

    def probe() -> tuple[bool, str]:
        ids = _broker_ids(ctx)
        return (broker in ids) == present, f"live brokers {sorted(ids)}"

    _wait(ctx, f"broker {broker} {state} the cluster metadata", timeout, probe)


def _wait_safe(ctx: ActionContext, broker: int, timeout: float) -> None:
    def probe() -> tuple[bool, str]:
        unsafe = unsafe_to_stop(cluster_health(ctx.bootstrap_servers), broker)
        return not unsafe, f"{len(unsafe)} partition(s) would fall below min ISR: {_partitions_str(unsafe)}"

    _wait(ctx, f"broker {broker} to be safe to stop", timeout, probe)


@action()
def broker_stop(ctx: ActionContext, *, broker: int, safe: bool = True, safe_timeout: float = 300.0, timeout: float = 120.0) -> str:
    """Stop a broker (controlled shutdown); with ``safe``, only when no partition would fall below min ISR."""
    if broker not in _broker_ids(ctx):
        return f"broker {broker} is already out of the cluster"
    if safe:
        _wait_safe(ctx, broker, safe_timeout)
    ctx.control().stop(broker, timeout)
    _wait_membership(ctx, broker, False, timeout)
    return f"broker {broker} stopped ({ctx.control().describe()})"


@action()
def broker_start(ctx: ActionContext, *, broker: int, timeout: float = 120.0) -> str:
    """Start a broker and wait until it is back in the cluster metadata."""
    if broker not in _broker_ids(ctx):
        ctx.control().start(broker, timeout)
    _wait_membership(ctx, broker, True, timeout)
    return f"broker {broker} is up"


@action()
def broker_restart(
    ctx: ActionContext, *, broker: int, safe: bool = True, safe_timeout: float = 300.0, timeout: float = 180.0
) -> str:
    """Restart a broker; with ``safe`` (default) only when no partition would fall below min ISR."""
    if broker not in _broker_ids(ctx):
        raise ActionError(f"broker {broker} is not in the cluster metadata; start it with broker_start")
    if safe:
        _wait_safe(ctx, broker, safe_timeout)
    t0 = time.monotonic()
    ctx.control().restart(broker, timeout)
    _wait_membership(ctx, broker, True, timeout)
    return f"broker {broker} restarted in {time.monotonic() - t0:.1f}s"


# --------------------------------------------------------------------------- leadership and replicas
@action()
def elect_preferred_leaders(ctx: ActionContext, *, topics: list[str] | None = None, timeout: float = 60.0) -> str:
    """Move leadership back to each partition's preferred (first) replica."""
    h = cluster_health(ctx.bootstrap_servers)
    parts = [tp for tp in sorted(h.partitions) if not topics or tp[0] in topics]
    if topics:
        missing = set(topics) - {t for t, _ in parts}
        if missing:
            raise ActionError(f"unknown topic(s): {', '.join(sorted(missing))}")
    moved = [tp for tp in parts if h.partitions[tp].replicas and not h.partitions[tp].leader_is_preferred]
    if not moved:
        return f"all {len(parts)} partitions already led by their preferred replica"
    result = reassign.elect_preferred_leaders(ctx.bootstrap_servers, moved, timeout=timeout)
    failed = {tp: e for tp, e in result.items() if e is not None}
    if failed:
        sample = ", ".join(f"{t}[{p}]: {e}" for (t, p), e in list(failed.items())[:5])
        raise ActionError(f"preferred leader election failed for {len(failed)} partition(s): {sample}")
    return f"preferred leader elected for {len(moved)} of {len(parts)} partitions"


Assignment = dict[tuple[str, int], list[int]]


def _execute_moves(
    ctx: ActionContext, current: Assignment, target: Assignment, throttle: int, timeout: float, live: Iterable[int]
) -> int:
    """Submit the changed partitions, throttled (on the live brokers); wait until done; always clear the throttle."""
    moves = {tp: r for tp, r in target.items() if r != current[tp]}
    if not moves:
        return 0
    brokers = {b for tp in moves for b in current[tp] + moves[tp]} & set(live)
    topics = {t for t, _ in moves}
    if throttle > 0:
        reassign.set_throttle(
            ctx.bootstrap_servers, throttle, brokers, {tp: (current[tp], r) for tp, r in moves.items()}, timeout=30.0
        )
    try:
        result = reassign.submit_reassignments(ctx.bootstrap_servers, moves)
        failed = {tp: e for tp, e in result.items() if e is not None}
        if failed:
            sample = ", ".join(f"{t}[{p}]: {e}" for (t, p), e in list(failed.items())[:5])
            raise ActionError(f"reassignment refused for {len(failed)} partition(s): {sample}")
        ctx.progress(f"moving {len(moves)} partition(s), throttled to {throttle} B/s")
        reassign.wait_reassignments(ctx.bootstrap_servers, list(moves), timeout=timeout, poll=ctx.poll_interval)
    finally:
        if throttle > 0:
            reassign.clear_throttle(ctx.bootstrap_servers, brokers, topics)
    return len(moves)


def plan_off_broker(current: Assignment, broker: int, live: Iterable[int]) -> Assignment:
    """Replace ``broker`` in every replica list by the live broker holding the fewest replicas."""
    live_set = sorted(set(live) - {broker})
    load = Counter({b: 0 for b in live_set})
    for replicas in current.values():
        load.update(b for b in replicas if b in load)
    target: Assignment = {}
    for tp, replicas in sorted(current.items()):
        if broker not in replicas:
            target[tp] = list(replicas)
            continue
        candidates = [b for b in live_set if b not in replicas]
        if not candidates:
            raise ActionError(
                f"{tp[0]}[{tp[1]}]: no live broker left to take broker {broker}'s replica "
                f"(replicas {replicas}, live {live_set}); add a broker first"
            )
        new = min(candidates, key=lambda b: (load[b], b))
        load[new] += 1
        target[tp] = [new if b == broker else b for b in replicas]
    return target


def plan_balanced(current: Assignment, live: Iterable[int]) -> Assignment:
    """Spread each topic's replicas and preferred leaders evenly over the live brokers.

    Greedy and move-minimal: replicas on dead brokers are replaced first, then a replica
    moves from the most to the least loaded broker until counts differ by at most one;
    finally replicas are reordered within each partition to even out preferred leaders.
    """
    brokers = sorted(set(live))
    if not brokers:
        raise ActionError("no live brokers to balance over")
    target: Assignment = {tp: list(r) for tp, r in current.items()}
    by_topic: dict[str, list[tuple[str, int]]] = {}
    for tp in sorted(target):
        by_topic.setdefault(tp[0], []).append(tp)
    for tps in by_topic.values():
        counts = Counter({b: 0 for b in brokers})
        for tp in tps:
            counts.update(b for b in target[tp] if b in counts)
        for tp in tps:  # replicas on brokers that are gone
            for i, b in enumerate(target[tp]):
                if b not in counts:
                    free = [x for x in brokers if x not in target[tp]]
                    if free:
                        new = min(free, key=lambda x: (counts[x], x))
                        target[tp][i] = new
                        counts[new] += 1
        for _ in range(10 * len(tps) * len(brokers)):
            hi = max(brokers, key=lambda b: (counts[b], -b))
            lo = min(brokers, key=lambda b: (counts[b], b))
            if counts[hi] - counts[lo] <= 1:
                break
            for tp in tps:
                if hi in target[tp] and lo not in target[tp]:
                    target[tp][target[tp].index(hi)] = lo
                    counts[hi] -= 1
                    counts[lo] += 1
                    break
            else:
                break
        leaders = Counter({b: 0 for b in brokers})
        leaders.update(target[tp][0] for tp in tps)
        for _ in range(10 * len(tps) * len(brokers)):
            hi = max(brokers, key=lambda b: (leaders[b], -b))
            lo = min(brokers, key=lambda b: (leaders[b], b))
            if leaders[hi] - leaders[lo] <= 1:
                break
            for tp in tps:
                r = target[tp]
                if r[0] == hi and lo in r:
                    j = r.index(lo)
                    r[0], r[j] = r[j], r[0]
                    leaders[hi] -= 1
                    leaders[lo] += 1
                    break
            else:
                break
    return target


def _current_assignment(h: ClusterHealth, topics: list[str] | None) -> Assignment:
    return {tp: list(p.replicas) for tp, p in sorted(h.partitions.items()) if not topics or tp[0] in topics}


@action()
def reassign_off_broker(
    ctx: ActionContext, *, broker: int, throttle: int = 50_000_000, timeout: float = 600.0
) -> str:
    """Move every replica off a broker (dead or to be removed) to live brokers, throttled (bytes/s; 0 = off)."""
    h = cluster_health(ctx.bootstrap_servers)
    current = _current_assignment(h, None)
    target = plan_off_broker(current, broker, h.live_brokers)
    moved = _execute_moves(ctx, current, target, throttle, timeout, h.live_brokers)
    return f"moved {moved} partition(s) off broker {broker} onto {sorted(h.live_brokers - {broker})}"


@action()
def rebalance(
    ctx: ActionContext, *, topics: list[str] | None = None, throttle: int = 50_000_000, timeout: float = 600.0
) -> str:
    """Spread replicas and preferred leaders evenly over the live brokers (throttled; 0 = off), then elect leaders."""
    h = cluster_health(ctx.bootstrap_servers)
    current = _current_assignment(h, topics)
    if topics and not current:
        raise ActionError(f"unknown topic(s): {', '.join(topics)}")
    target = plan_balanced(current, h.live_brokers)
    moved = _execute_moves(ctx, current, target, throttle, timeout, h.live_brokers)
    changed = [tp for tp in target if target[tp] != current[tp]]
    if changed:
        result = reassign.elect_preferred_leaders(ctx.bootstrap_servers, changed)
        failed = [tp for tp, e in result.items() if e is not None]
        if failed:
            raise ActionError(f"replicas moved, but preferred leader election failed for {failed[:5]}")
    load = Counter(b for r in target.values() for b in r)
    lead = Counter(r[0] for r in target.values())
    return (
        f"{moved} partition(s) moved; replicas per broker {dict(sorted(load.items()))}, "
        f"leaders per broker {dict(sorted(lead.items()))}"
    )


# --------------------------------------------------------------------------- topics
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
    admin_create_topic(ctx.bootstrap_servers, topic, partitions, replication_factor, config, exist_ok=exist_ok)
    return f"topic {topic}: {partitions} partitions, replication factor {replication_factor}"


@action()
def add_partitions(ctx: ActionContext, *, topic: str, partitions: int, timeout: float = 60.0) -> str:
    """Grow a topic to ``partitions`` in total (keyed records may map to new partitions afterwards)."""
    admin = admin_client(ctx.bootstrap_servers)
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
    wait_for_leaders(admin, topic, partitions, timeout)
    return f"topic {topic}: {have} -> {partitions} partitions"


# --------------------------------------------------------------------------- consumer groups
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
    admin = admin_client(ctx.bootstrap_servers)
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
        cp = store.get(job, checkpoint_id(checkpoint)) if checkpoint is not None else store.latest(job)
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
        epoch = store.restore(job, ckpt, owner="playbook")
    except CheckpointError as exc:
        raise ActionError(str(exc)) from None
    cp = store.latest(job)
    if cp is None or cp.id != ckpt:
        raise ActionError(f"job {job}: latest checkpoint is {cp.id if cp else None} after restoring {ckpt}")
    return f"job {job} now resumes from {ckpt} ({len(cp.offsets)} partition offsets, epoch {epoch})"

"""Replica actions: preferred leader election, draining a broker, rebalancing topics.

Where replicas go is decided by the one planner (``ops/placement.py``) and moved by the
one pipeline (``ops/reassign.py``): throttled, new replicas added before old ones are
dropped, and the throttle cleared whatever happens.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from kafkaops.ops import reassign
from kafkaops.ops.actions.registry import ActionContext, ActionError, action, cluster_health
from kafkaops.ops.placement import plan_balanced, plan_replacements
from kafkaops.types import TP


def _sample(items: Mapping[TP, str | None], limit: int = 5) -> str:
    return ", ".join(f"{t}[{p}]: {e}" for (t, p), e in list(items.items())[:limit])


@action()
def elect_preferred_leaders(ctx: ActionContext, *, topics: list[str] | None = None, timeout: float = 60.0) -> str:
    """Move leadership back to each partition's preferred (first) replica."""
    h = cluster_health(ctx.profile)
    parts = [tp for tp in sorted(h.partitions) if not topics or tp[0] in topics]
    if topics:
        missing = set(topics) - {t for t, _ in parts}
        if missing:
            raise ActionError(f"unknown topic(s): {', '.join(sorted(missing))}")
    moved = [tp for tp in parts if h.partitions[tp].replicas and not h.partitions[tp].leader_is_preferred]
    if not moved:
        return f"all {len(parts)} partitions already led by their preferred replica"
    result = reassign.elect_preferred_leaders(ctx.profile, moved, timeout=timeout)
    failed = {tp: e for tp, e in result.items() if e is not None}
    if failed:
        raise ActionError(f"preferred leader election failed for {len(failed)} partition(s): {_sample(failed)}")
    return f"preferred leader elected for {len(moved)} of {len(parts)} partitions"


@action()
def reassign_off_broker(
    ctx: ActionContext, *, broker: int, throttle: int = 50_000_000, timeout: float = 600.0
) -> str:
    """Move every replica off a broker (dead or to be removed) to live brokers, throttled (bytes/s; 0 = off)."""
    h = cluster_health(ctx.profile)
    plan = plan_replacements(h, {broker})
    if plan.skipped:
        raise ActionError(
            f"cannot move {len(plan.skipped)} partition(s) off broker {broker}, nothing was moved: {_sample(plan.skipped)}"
        )
    reassign.execute(
        reassign.live_first(ctx.profile, h), plan.moves, throttle=throttle, live=h.live_brokers, timeout=timeout,
        poll=ctx.poll_interval, progress=ctx.progress,
    )
    return f"moved {len(plan.moves)} partition(s) off broker {broker} onto {sorted(h.live_brokers - {broker})}"


@action()
def rebalance(
    ctx: ActionContext, *, topics: list[str] | None = None, throttle: int = 50_000_000, timeout: float = 600.0
) -> str:
    """Spread replicas and preferred leaders evenly over the live brokers (throttled; 0 = off), then elect leaders."""
    h = cluster_health(ctx.profile)
    if topics:
        missing = set(topics) - {t for t, _ in h.partitions}
        if missing:
            raise ActionError(f"unknown topic(s): {', '.join(sorted(missing))}")
    plan = plan_balanced(h, topics)
    done = reassign.execute(
        reassign.live_first(ctx.profile, h), plan.moves, throttle=throttle, live=h.live_brokers, timeout=timeout,
        poll=ctx.poll_interval, progress=ctx.progress, elect=True,
    )
    failed = {tp: e for tp, e in done.elected.items() if e is not None}
    if done.election_error or failed:
        raise ActionError(f"replicas moved, but preferred leader election failed: {done.election_error or _sample(failed)}")
    after = {tp: (plan.moves[tp].target if tp in plan.moves else p.replicas)
             for tp, p in h.partitions.items() if not topics or tp[0] in topics}
    load = Counter(b for r in after.values() for b in r)
    lead = Counter(r[0] for r in after.values() if r)
    skipped = f"; left alone: {_sample(plan.skipped)}" if plan.skipped else ""
    return (
        f"{len(plan.moves)} partition(s) moved; replicas per broker {dict(sorted(load.items()))}, "
        f"leaders per broker {dict(sorted(lead.items()))}{skipped}"
    )

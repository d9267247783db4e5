"""Actions that check, wait or ask: health checks, pauses and operator confirmation."""

from __future__ import annotations

import time

from kafkaops.ops.actions.registry import (
    ActionContext,
    ActionError,
    action,
    cluster_health,
    is_healthy,
    partitions_str,
    summary,
    unhealthy,
    wait_for_health,
)
from kafkaops.waits import Deadline


@action()
def check_health(ctx: ActionContext, *, expect_brokers: int | None = None, allow_under_replicated: bool = False) -> str:
    """Fail unless the cluster is healthy now (nothing under-replicated, under min ISR or offline)."""
    h = cluster_health(ctx.profile)
    live = sorted(h.live_brokers)
    if expect_brokers is not None and len(live) < expect_brokers:
        raise ActionError(f"expected {expect_brokers} live brokers, found {len(live)}: {live}")
    if not is_healthy(h, allow_under_replicated):
        raise ActionError(f"cluster is not healthy: {summary(h)} ({partitions_str(unhealthy(h))})")
    return summary(h)


@action()
def wait_healthy(ctx: ActionContext, *, timeout: float = 300.0, allow_under_replicated: bool = False) -> str:
    """Wait until no partition is under-replicated (or, if allowed, under min ISR / offline)."""
    return summary(wait_for_health(ctx, timeout, allow_under_replicated))


@action()
def sleep(ctx: ActionContext, *, seconds: float) -> str:
    """Pause for a number of seconds (let clients reconnect, metrics settle)."""
    deadline = Deadline(seconds)
    while not deadline.expired:
        ctx.progress(f"sleeping, {deadline.remaining():.0f}s left")
        time.sleep(deadline.remaining(cap=1.0))
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

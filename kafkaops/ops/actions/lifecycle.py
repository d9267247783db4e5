"""Broker lifecycle actions: stop, start and restart a broker through its BrokerControl.

No-loss default: a broker is stopped or restarted only once no partition would fall
below ``min.insync.replicas`` without it (as Strimzi does), and the action waits until
the broker has left or rejoined the cluster metadata, whatever kind of control ran it.
"""

from __future__ import annotations

import time

from kafkaops.ops.actions.registry import (
    ActionContext,
    ActionError,
    action,
    cluster_health,
    live_brokers,
    partitions_str,
    unsafe_to_stop,
    wait_for,
)


def _wait_membership(ctx: ActionContext, broker: int, present: bool, timeout: float) -> None:
    state = "in" if present else "out of"

    def probe() -> tuple[bool, str]:
        ids = live_brokers(ctx)
        return (broker in ids) == present, f"live brokers {sorted(ids)}"

    wait_for(ctx, f"broker {broker} {state} the cluster metadata", timeout, probe)


def _wait_safe(ctx: ActionContext, broker: int, timeout: float) -> None:
    def probe() -> tuple[bool, str]:
        unsafe = unsafe_to_stop(cluster_health(ctx.profile), broker)
        return not unsafe, f"{len(unsafe)} partition(s) would fall below min ISR: {partitions_str(unsafe)}"

    wait_for(ctx, f"broker {broker} to be safe to stop", timeout, probe)


@action()
def broker_stop(ctx: ActionContext, *, broker: int, safe: bool = True, safe_timeout: float = 300.0, timeout: float = 120.0) -> str:
    """Stop a broker (controlled shutdown); with ``safe``, only when no partition would fall below min ISR."""
    if broker not in live_brokers(ctx):
        return f"broker {broker} is already out of the cluster"
    if safe:
        _wait_safe(ctx, broker, safe_timeout)
    ctx.broker_control().stop(broker, timeout)
    _wait_membership(ctx, broker, False, timeout)
    return f"broker {broker} stopped ({ctx.broker_control().describe()})"


@action()
def broker_start(ctx: ActionContext, *, broker: int, timeout: float = 120.0) -> str:
    """Start a broker and wait until it is back in the cluster metadata."""
    if broker not in live_brokers(ctx):
        ctx.broker_control().start(broker, timeout)
    _wait_membership(ctx, broker, True, timeout)
    return f"broker {broker} is up"


@action()
def broker_restart(
    ctx: ActionContext, *, broker: int, safe: bool = True, safe_timeout: float = 300.0, timeout: float = 180.0
) -> str:
    """Restart a broker; with ``safe`` (default) only when no partition would fall below min ISR."""
    if broker not in live_brokers(ctx):
        raise ActionError(f"broker {broker} is not in the cluster metadata; start it with broker_start")
    if safe:
        _wait_safe(ctx, broker, safe_timeout)
    t0 = time.monotonic()
    ctx.broker_control().restart(broker, timeout)
    _wait_membership(ctx, broker, True, timeout)
    return f"broker {broker} restarted in {time.monotonic() - t0:.1f}s"

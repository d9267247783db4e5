"""Broker and KRaft controller lifecycle actions, through the BrokerControl.

No-loss default: a broker is stopped or restarted only once no partition would fall
below ``min.insync.replicas`` without it (as Strimzi does), and the action waits until
the broker has left or rejoined the cluster metadata, whatever kind of control ran it.
A KRaft controller is restarted only while every other voter of the metadata quorum
is caught up, and the action waits until the restarted one has caught up again, so a
rolling restart never has two voters down (a 3-voter quorum survives one).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kafkaops.config import ClusterProfile
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
from kafkaops.quorum import CAUGHT_UP_LAG, NotKRaftError, QuorumClient, QuorumError, QuorumState


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


# --------------------------------------------------------------------------- the KRaft quorum
def _quorum(ctx: ActionContext) -> QuorumState | None:
    """The metadata quorum, or None in ZooKeeper mode (asked of the cluster, whatever the
    profile says: a restart must not skip the quorum checks because of a profile's chroot)."""
    try:
        with QuorumClient(ctx.profile) as client:
            return client.describe()
    except NotKRaftError:
        return None


def _wait_quorum(ctx: ActionContext, what: str, timeout: float,
                 ready: Callable[[QuorumState], tuple[bool, str]]) -> QuorumState:
    """Poll DescribeQuorum until ``ready(state)`` gives (done, detail); ActionError after ``timeout``."""
    got: list[QuorumState] = []
    with QuorumClient(ctx.profile) as client:
        def probe() -> tuple[bool, str]:
            state = client.describe()  # a QuorumError (an election is on) counts as not done
            got[:] = [state]
            return ready(state)

        wait_for(ctx, what, timeout, probe)
    return got[0]


def _lagging(state: QuorumState, besides: int) -> dict[int, int | None]:
    return {v: state.lag(v) for v in state.voter_ids if v != besides and (state.lag(v) or 0) > CAUGHT_UP_LAG}


def _wait_others_caught_up(ctx: ActionContext, node: int, timeout: float) -> None:
    """Never two voters down: every voter but ``node`` has caught up with the high watermark."""
    def ready(state: QuorumState) -> tuple[bool, str]:
        behind = _lagging(state, node)
        return not behind, f"voters behind the quorum (records): {behind or 'none'}"

    _wait_quorum(ctx, f"every voter but {node} caught up with the metadata quorum", timeout, ready)


def _wait_caught_up(ctx: ActionContext, node: int, timeout: float, since_ms: float | None = None) -> QuorumState:
    """Until ``node`` has caught up with the quorum (and, with ``since_ms``, the leader saw it
    caught up after that moment of the leader's clock)."""
    def ready(state: QuorumState) -> tuple[bool, str]:
        return state.caught_up(node, since_ms), f"lag {state.lag(node)} records, active controller {state.leader_id}"

    return _wait_quorum(ctx, f"node {node} caught up with the metadata quorum", timeout, ready)


def roll_facts(cluster: ClusterProfile | str) -> dict[str, Any]:
    """The playbooks' built-in variables: ``all_brokers`` (live brokers, the controller last),
    ``all_controllers`` (KRaft: the dedicated controllers, the active one last; [] otherwise)
    and ``controller`` (ZooKeeper mode: the controller broker; KRaft: the active controller)."""
    ctx = ActionContext(cluster)
    h = cluster_health(ctx.profile)
    quorum = _quorum(ctx)
    active = quorum.leader_id if quorum is not None else h.controller_id
    brokers = sorted(h.live_brokers, key=lambda b: (b == active, b))
    voters = [v for v in (quorum.voter_ids if quorum is not None else ()) if v not in h.live_brokers]
    controllers = sorted(voters, key=lambda v: (v == active, v))
    return {"all_brokers": brokers, "all_controllers": controllers, "controller": active if active is not None else -1}


# --------------------------------------------------------------------------- actions
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
    """Restart a broker; with ``safe`` (default) only when no partition would fall below min ISR
    (and, for a KRaft broker that is also a controller, only while the other voters are caught up)."""
    if broker not in live_brokers(ctx):
        raise ActionError(f"broker {broker} is not in the cluster metadata; start it with broker_start")
    quorum = _quorum(ctx)
    voter = quorum is not None and broker in quorum.voter_ids
    if safe:
        _wait_safe(ctx, broker, safe_timeout)
        if voter:
            _wait_others_caught_up(ctx, broker, safe_timeout)
    t0 = time.monotonic()
    ctx.broker_control().restart(broker, timeout)
    _wait_membership(ctx, broker, True, timeout)
    if voter:
        _wait_caught_up(ctx, broker, timeout)
    return f"broker {broker} restarted in {time.monotonic() - t0:.1f}s" + (" (a voter: caught up)" if voter else "")


@action()
def controller_restart(ctx: ActionContext, *, node: int, safe_timeout: float = 300.0, timeout: float = 180.0) -> str:
    """Restart a KRaft controller: only while every other voter is caught up with the metadata
    quorum, then wait until it has caught up again (so two voters are never down together)."""
    try:
        quorum = _quorum(ctx)
    except QuorumError as exc:
        raise ActionError(str(exc)) from None
    if quorum is None:
        raise ActionError("not a KRaft cluster: in ZooKeeper mode the controller is a broker (use broker_restart)")
    if node not in quorum.voter_ids:
        raise ActionError(f"node {node} is not a voter of the metadata quorum (voters: {list(quorum.voter_ids)})")
    if node in live_brokers(ctx):
        raise ActionError(f"node {node} is a broker too (combined mode): restart it with broker_restart")
    _wait_others_caught_up(ctx, node, safe_timeout)
    t0 = time.monotonic()
    was_active = quorum.leader_id == node
    control = ctx.broker_control()
    control.stop_controller(node, timeout)
    # the leader's "last caught up" time of a stopped voter stands still: "caught up" after the
    # start must be later than it (a stale log end offset can equal the high watermark)
    stopped = _wait_quorum(ctx, f"a quorum leader while {node} is down", timeout,
                           lambda s: (s.leader_id != node, f"active controller {s.leader_id}"))
    frozen = stopped.member(node)
    control.start_controller(node, timeout)
    state = _wait_caught_up(ctx, node, timeout, since_ms=(frozen.last_caught_up_ms if frozen else -1) + 1)
    moved = f"; leadership moved to {state.leader_id}" if was_active and state.leader_id != node else ""
    return f"controller {node} restarted and caught up in {time.monotonic() - t0:.1f}s{moved}"

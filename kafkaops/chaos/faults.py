"""The faults a chaos cell injects, each one injected, held, and healed again.

Every fault goes through the cluster's own node control (SIGKILL, SIGSTOP, controlled
restart, network disconnect) and checks that it took effect before it counts; each
returns once the cluster has what it needs to heal (the node is back), while the runner
waits for the workload and the cluster to recover.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kafkaops.chaos.target import (
    ChaosCluster,
    ChaosError,
    leader_of,
    pure_follower,
    zookeeper_leader,
)
from kafkaops.chaos.history import Injection
from kafkaops.chaos.workload import Workload
from kafkaops.coord.four_letter import server_mode
from kafkaops.waits import wait_until

log = logging.getLogger(__name__)


@dataclass
class FaultContext:
    """What a fault acts on: the cluster, the running workload, how long to hold the fault."""

    cluster: ChaosCluster
    workload: Workload
    hold: float
    injections: list[Injection] = field(default_factory=list)

    def inject(self, what: str) -> None:
        log.info("chaos: %s", what)
        self.injections.append(Injection(time.monotonic(), what))

    @property
    def topic(self) -> str:
        return self.workload.topic


@dataclass(frozen=True)
class Fault:
    """A named fault: ``run(ctx)`` injects and heals; ``unsupported`` says where it cannot run."""

    name: str
    description: str
    run: Callable[[FaultContext], None]
    unsupported: Callable[[ChaosCluster, type[Workload]], str | None] = lambda _c, _w: None
    hold: float | None = None
    """A fixed hold (the brief's 10 s pause), else the run's."""


def _restart_broker(ctx: FaultContext, broker: int) -> None:
    time.sleep(ctx.hold)
    ctx.cluster.start_broker(broker, wait=True, timeout=180)


def _kill(ctx: FaultContext, broker: int, role: str) -> None:
    ctx.inject(f"SIGKILL broker {broker} ({role})")
    ctx.cluster.kill_broker(broker)
    if ctx.cluster.broker(broker).process.is_running():
        raise ChaosError(f"broker {broker} still runs after SIGKILL")
    _restart_broker(ctx, broker)


def leader_kill(ctx: FaultContext) -> None:
    b = leader_of(ctx.cluster, ctx.topic, 0)
    _kill(ctx, b, f"leader of {ctx.topic}[0]")


def follower_kill(ctx: FaultContext) -> None:
    b = pure_follower(ctx.cluster, ctx.topic)
    _kill(ctx, b, f"follower of every partition of {ctx.topic}, leader of none")


def controller_kill(ctx: FaultContext) -> None:
    c = ctx.cluster
    controller = c.controller_id()
    if controller is None:
        raise ChaosError("no active controller to kill")
    if c.mode != "kraft":
        _kill(ctx, controller, "the controller")
        return
    ctx.inject(f"SIGKILL KRaft controller {controller} (the active one)")
    c.kill_controller(controller)  # type: ignore[attr-defined]
    time.sleep(ctx.hold)
    c.start_controller(controller)  # type: ignore[attr-defined]
    wait_until(lambda: c.controller_id() is not None, 120, "an active KRaft controller")


def leader_pause(ctx: FaultContext) -> None:
    b = leader_of(ctx.cluster, ctx.topic, 0)
    ctx.inject(f"SIGSTOP broker {b} (leader of {ctx.topic}[0]) for {ctx.hold:.0f}s")
    ctx.cluster.pause_broker(b)
    try:
        time.sleep(ctx.hold)
    finally:
        ctx.cluster.resume_broker(b)
    ctx.cluster.wait_brokers([b], 180)


def rolling_restart(ctx: FaultContext) -> None:
    """The playbook's ``broker_restart`` action on every broker, controller last: each one
    only when no partition would fall below min ISR without it, then back in metadata."""
    from kafkaops.ops.actions.lifecycle import broker_restart
    from kafkaops.ops.actions.registry import ActionContext
    from kafkaops.ops.brokers import LocalBrokerControl

    c = ctx.cluster
    action = ActionContext(c.profile, control=LocalBrokerControl(c), poll_interval=0.5)
    controller = c.controller_id() if c.mode == "zookeeper" else None
    order = sorted((b.id for b in c.brokers), key=lambda b: (b == controller, b))
    for b in order:
        ctx.inject(f"restart broker {b} (controlled shutdown, then start)")
        broker_restart(action, broker=b, timeout=240)


def zookeeper_kill(ctx: FaultContext) -> None:
    c = ctx.cluster
    victim = zookeeper_leader(c) or int(c.zookeepers[0].id)
    ctx.inject(f"SIGKILL ZooKeeper node {victim} (of {len(c.zookeepers)})")
    c.kill_zookeeper(victim)
    time.sleep(ctx.hold)
    c.start_zookeeper(victim)
    host, port = c.zookeeper(victim).address.rsplit(":", 1)  # type: ignore[attr-defined]
    wait_until(lambda: server_mode(host, int(port)) is not None, 120, f"ZooKeeper node {victim} to serve")


def _needs_ensemble(cluster: ChaosCluster, _w: type[Workload]) -> str | None:
    n = len(cluster.zookeepers)
    return None if n >= 3 else f"needs a 3-node ZooKeeper ensemble (this cluster has {n})"


def session_expiry(ctx: FaultContext) -> None:
    from kafkaops.coord.expiry import expire_session

    w = ctx.workload
    session = w.zookeeper_session() or wait_until(w.zookeeper_session, 60, "the job's ZooKeeper session")
    assert session is not None
    zk = ctx.cluster.profile.zookeeper
    assert zk is not None
    ctx.inject(f"expire the job's ZooKeeper session 0x{session[0]:x}")
    expire_session(zk.connect, session)

    def renewed() -> bool:
        now = w.zookeeper_session()
        return now is not None and now[0] != session[0]

    wait_until(renewed, 60, "the job to open a new ZooKeeper session",
               error=lambda msg: ChaosError(f"session 0x{session[0]:x} did not expire: {msg}"))


def _holds_session(_c: ChaosCluster, workload: type[Workload]) -> str | None:
    if workload.zookeeper_session is Workload.zookeeper_session:
        return f"not applicable: the {workload.name} workload holds no ZooKeeper session"
    return None


def network_cut(ctx: FaultContext) -> None:
    c = ctx.cluster
    b = leader_of(c, ctx.topic, 0)
    ctx.inject(f"cut broker {b} (leader of {ctx.topic}[0]) off the network for {ctx.hold:.0f}s")
    c.disconnect_broker(b)  # type: ignore[attr-defined]
    try:
        time.sleep(ctx.hold)
    finally:
        c.reconnect_broker(b)  # type: ignore[attr-defined]
    c.wait_brokers([b], 180)


def _needs_network(cluster: ChaosCluster, _w: type[Workload]) -> str | None:
    if hasattr(cluster, "disconnect_broker"):
        return None
    return "not supported on this cluster: needs the containers backend (disconnect_broker)"


def no_fault(ctx: FaultContext) -> None:
    ctx.inject("nothing (baseline)")
    time.sleep(ctx.hold)


FAULTS: dict[str, Fault] = {f.name: f for f in (
    Fault("none", "no fault: the baseline", no_fault),
    Fault("leader-kill", "SIGKILL of the leader of partition 0, restarted after the hold", leader_kill),
    Fault("follower-kill", "SIGKILL of a broker following every partition and leading none", follower_kill),
    Fault("controller-kill", "SIGKILL of the controller (ZooKeeper mode: its broker; KRaft: the active controller)",
          controller_kill),
    Fault("leader-pause", "SIGSTOP of the leader of partition 0 for 10 s", leader_pause, hold=10.0),
    Fault("rolling-restart", "every broker restarted one by one (playbook action broker_restart), controller last",
          rolling_restart),
    Fault("zookeeper-kill", "SIGKILL of the ZooKeeper ensemble's leader (3 nodes)", zookeeper_kill, _needs_ensemble),
    Fault("session-expiry", "the checkpointing job's ZooKeeper session expired from outside", session_expiry,
          _holds_session),
    Fault("network-cut", "the leader of partition 0 cut off the network (containers backend)", network_cut,
          _needs_network, hold=15.0),
)}

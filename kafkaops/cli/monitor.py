"""`kafkaops monitor`: a live view, one snapshot, or an event stream of brokers and
partition replication; with ``--auto-failover`` also the FailoverPolicy (leader only),
with ``--groups`` consumer lag judged as Burrow does, with ``--metrics-port`` Prometheus metrics."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from kafkaops.cli.common import Target, connection, coordinator, err, out

if TYPE_CHECKING:
    from rich.console import RenderableType

    from kafkaops.ops.events import Event
    from kafkaops.ops.failover import Action
    from kafkaops.ops.health import ClusterHealth


@connection()
def monitor(
    once: Annotated[bool, typer.Option("--once", help="print one snapshot and exit")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="with --once: one JSON object")] = False,
    events: Annotated[bool, typer.Option("--events", help="stream events as JSON lines")] = False,
    auto_failover: Annotated[bool, typer.Option("--auto-failover", help="run the FailoverPolicy (leader instance only)")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="with --auto-failover: only report actions")] = False,
    grace: Annotated[float, typer.Option(help="seconds a broker must stay down before its replicas move")] = 30.0,
    throttle: Annotated[int, typer.Option(help="replication throttle while moving replicas, bytes/s per broker")] = 50 * 1024 * 1024,
    poll_interval: Annotated[float, typer.Option(help="Admin API poll interval, seconds")] = 1.0,
    connect_timeout: Annotated[float, typer.Option(help="seconds to wait for the first cluster view")] = 30.0,
    settle: Annotated[float, typer.Option(help="seconds a partition must stay leaderless to be reported offline")] = 1.0,
    groups: Annotated[str | None, typer.Option(help="judge these consumer groups' lag (g1,g2 or all)")] = None,
    lag_interval: Annotated[float, typer.Option(help="with --groups: seconds between offset polls")] = 5.0,
    lag_window: Annotated[int, typer.Option(help="with --groups: polls per evaluation window (Burrow)")] = 10,
    allowed_lag: Annotated[int, typer.Option(help="with --groups: a lag up to this counts as caught up")] = 0,
    metrics_port: Annotated[int | None, typer.Option(help="serve Prometheus /metrics on this port (e.g. 9308)")] = None,
    metrics_address: Annotated[str, typer.Option(help="with --metrics-port: the address to listen on")] = "0.0.0.0",
    *,
    target: Target,
) -> None:
    """Watch brokers and partition replication: live view, one snapshot, or an event stream.

    Sources: ZooKeeper watches (with -z host:2181/kafka: the brokers' chroot) and Admin API
    polls (with -b); -z alone watches ZooKeeper only, -b alone polls only.
    """
    from kafkaops.ops.monitor import ReplicaMonitor

    if as_json and not once:
        raise typer.BadParameter("--json goes with --once (use --events for a JSON stream)")
    if dry_run and not auto_failover:
        raise typer.BadParameter("--dry-run goes with --auto-failover")
    if once and (events or auto_failover or metrics_port is not None):
        raise typer.BadParameter("--once prints one snapshot; it does not go with --events, --auto-failover or --metrics-port")
    zookeeper_only = target.is_local and bool(target.zookeeper)
    if auto_failover and zookeeper_only:
        raise typer.BadParameter("--auto-failover needs --bootstrap-server (reassignments use the Admin API)")
    cluster = None if zookeeper_only else target.cluster()
    zk = target.coordination() if zookeeper_only else cluster.zookeeper if cluster else None
    with contextlib.ExitStack() as stack:
        coord = stack.enter_context(coordinator(zk)) if zk is not None else None
        chroot = zk.kafka_chroot if zk is not None else None  # None: the brokers keep no znodes (KRaft)
        mon = ReplicaMonitor(cluster, coordinator=coord if chroot else None, kafka_chroot=chroot,
                             poll_interval=poll_interval, settle=settle).start(timeout=connect_timeout)
        stack.callback(mon.stop)
        if groups:
            if cluster is None:
                raise typer.BadParameter("--groups needs --bootstrap-server (offsets come from the Admin API)")
            chosen = None if groups.strip() == "all" else [g.strip() for g in groups.split(",") if g.strip()]
            mon.track_lag(chosen, interval=lag_interval, window=lag_window, allowed_lag=allowed_lag)
        if once:
            health = mon.snapshot()
            if as_json:
                print(json.dumps(health.to_json()), flush=True)
            else:
                out.print(render_monitor(health, [], [], ""))
            return
        _watch(stack, mon, cluster, coord, events=events, auto_failover=auto_failover, dry_run=dry_run,
               grace=grace, throttle=throttle, metrics=(metrics_address, metrics_port) if metrics_port is not None else None)


def _watch(stack: contextlib.ExitStack, mon: Any, cluster: Any, coord: Any, *, events: bool,
           auto_failover: bool, dry_run: bool, grace: float, throttle: int, metrics: tuple[str, int] | None) -> None:
    """Until SIGTERM or SIGINT: stream events or show the live view; run the policy if asked."""
    from kafkaops.ops.failover import FailoverPolicy, MonitorLeadership
    from kafkaops.ops.monitor import format_event_line

    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    policy = None
    if auto_failover:
        leadership = None
        if coord is not None:
            ident = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
            leadership = MonitorLeadership(coord, ident).start()
            stack.callback(leadership.stop)
        else:
            err.print("[yellow]warning:[/] no ZooKeeper: this instance acts without leader election")

        def on_action(action: Action) -> None:
            if events:
                print(json.dumps(action.to_json()), flush=True)

        from kafkaops.audit import AuditLog
        from kafkaops.cli.audit import audit_file

        policy = FailoverPolicy(mon, cluster, coordinator=coord, grace=grace, throttle=throttle, dry_run=dry_run,
                                leadership=leadership, on_action=on_action,
                                audit=AuditLog(audit_file(), cluster)).start()
        stack.callback(policy.stop)
    if metrics is not None:
        from kafkaops.ops.metrics import serve_metrics

        server = serve_metrics(mon, metrics[1], address=metrics[0], policy=policy, coordinator=coord)
        stack.callback(server.stop)
        err.print(f"metrics: {server.url}")
    if events:
        stream = mon.events()
        while not stop.is_set():
            event = stream.get(timeout=0.2)
            if event is not None:
                print(format_event_line(event), flush=True)
        stream.close()
        return
    from rich.live import Live

    role = "monitoring only"
    with Live(console=out, refresh_per_second=2, screen=False) as live:
        while not stop.is_set():
            if policy is not None:
                role = ("[bold]leader: auto-failover" if policy.is_acting else "standby") + (" (dry run)" if dry_run else "")
            live.update(render_monitor(mon.snapshot(), mon.recent_events(), policy.actions if policy else [], role))
            stop.wait(0.5)


def render_monitor(health: ClusterHealth, events: list[Event], actions: list[Action], role: str) -> RenderableType:
    """Brokers, partitions by health, and the recent events and failover actions."""
    from rich.console import Group
    from rich.panel import Panel

    c = health.counts
    brokers = Table(title=f"controller: {health.controller_id}", expand=False)
    for col in ("broker", "address", "alive"):
        brokers.add_column(col)
    for b in health.brokers.values():
        addr = f"{b.host}:{b.port}" if b.host else "-"
        brokers.add_row(str(b.id), addr, "[green]yes" if b.alive else "[red]no")
    parts = Table(title="partitions by health")
    for col in ("status", "count", "examples"):
        parts.add_column(col)
    for status, count, color in (
        ("offline", c.offline, "red"),
        ("under_min_isr", c.under_min_isr, "red"),
        ("under_replicated", c.under_replicated, "yellow"),
    ):
        examples = ", ".join(f"{p.topic}[{p.partition}]" for p in health.partitions_with(status)[:4])
        parts.add_row(f"[{color}]{status}" if count else status, str(count), examples)
    parts.add_row("total", str(c.total), f"preferred-leader imbalance: {c.preferred_leader_imbalance}")
    lines = [f"{_clock(e.timestamp)}  {e.describe()}  [dim]({e.source})" for e in events[-12:]]
    lines += [f"{_clock(a.timestamp)}  [bold]{a.what}[/] {a.result}: {a.why}" for a in actions[-5:]]
    title = "recent events and actions" + (f" - {role}" if role else "")
    return Group(brokers, parts, Panel("\n".join(lines) or "[dim]no events yet", title=title))


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))

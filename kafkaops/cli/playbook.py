"""`kafkaops playbook list|validate|run`: validated, resumable, locked and audited runbooks."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from kafkaops.audit import AuditLog
from kafkaops.cli.audit import audit_file as default_audit_file
from kafkaops.cli.common import Target, connection, coordinator, find_local_cluster, key_values, out

if TYPE_CHECKING:
    from kafkaops.ops.actions import ActionContext
    from kafkaops.ops.playbook_schema import Playbook
    from kafkaops.ops.playbooks import Plan, PlaybookRunner, RunEvent

playbook_app = typer.Typer(help="Operational playbooks: list, validate, run (resumable, locked, audited).",
                           no_args_is_help=True)

VarOpt = Annotated[list[str] | None, typer.Option("--var", "-v", help="playbook variable name=value (repeatable)")]


@playbook_app.command("list")
def playbook_list() -> None:
    """The shipped playbooks, what they do and their variables (* = required)."""
    from kafkaops.ops import playbooks as pbs
    from kafkaops.ops.playbook_schema import REQUIRED
    from kafkaops.resources import shipped_dir

    table = Table(title=f"playbooks in {shipped_dir('playbooks')}")
    for col in ("name", "description", "variables"):
        table.add_column(col)
    for path in pbs.shipped():
        pb = pbs.load(path)
        variables = ", ".join(f"{v.name}{'*' if v.default is REQUIRED else ''}" for v in pb.variables.values())
        table.add_row(pb.name, pb.description, variables)
    out.print(table)


@playbook_app.command("validate")
def playbook_validate(
    file: Annotated[str, typer.Argument(help="playbook file or shipped playbook name")],
    var: VarOpt = None,
) -> None:
    """Validate a playbook (syntax, actions, argument types, variables) without touching a cluster."""
    from kafkaops.ops import playbooks as pbs
    from kafkaops.ops.playbook_schema import REQUIRED

    pb = pbs.load(pbs.find(file))
    if var:  # also bind the variables and type-check every argument after substitution
        pbs.make_plan(pb, key_values(var, "--var"), lambda: {"all_brokers": [], "controller": -1})
    required = [v.name for v in pb.variables.values() if v.default is REQUIRED]
    out.print(f"[green]ok[/] {pb.file}: playbook {pb.name!r}, {len(pb.steps)} steps"
              + (f"; required variables: {', '.join(required)}" if required else ""), highlight=False)


@playbook_app.command("run")
@connection()
def playbook_run(
    name: Annotated[str, typer.Argument(help="shipped playbook name (see `playbook list`) or a YAML file")],
    var: VarOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the plan; change nothing")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="continue the interrupted run at its first unfinished step")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="answer yes to confirm steps")] = False,
    broker_control: Annotated[str | None, typer.Option("--broker-control", envvar="KAFKAOPS_BROKER_CONTROL",
                                                       help="BrokerControl config: YAML/JSON file or inline JSON (local | docker | shell)")] = None,
    lock_wait: Annotated[float, typer.Option("--lock-wait", help="seconds to wait for another run's lock (default: fail at once)")] = 0.0,
    audit_file: Annotated[Path | None, typer.Option("--audit-file", help="audit file (default $KAFKAOPS_HOME/audit/audit.jsonl; also the cluster's audit topic)")] = None,
    *,
    target: Target,
) -> None:
    """Run a playbook: validate it whole, then run its steps with health gates, under a lock.
    Progress, lock and audit live in ZooKeeper under --zk-root."""
    from kafkaops.ops import actions as acts
    from kafkaops.ops import brokers as bc
    from kafkaops.ops import playbooks as pbs

    pb = pbs.load(pbs.find(name))
    overrides = key_values(var or [], "--var")
    cluster = target.cluster()
    if dry_run and not resume:
        _show_plan(pbs.make_plan(pb, overrides, pbs.cluster_facts(cluster)), set())
        return
    local = find_local_cluster() if broker_control is None else None
    if local is not None and local.bootstrap_servers != cluster.bootstrap_servers:
        local = None  # the local cluster's processes control only the local cluster
    control = bc.load_config(broker_control) if broker_control else (
        bc.LocalBrokerControl.attach(local.base_dir) if local is not None else None)
    with coordinator(cluster.require_zookeeper("a playbook run (lock, progress, audit)")) as coord:
        audit = AuditLog(audit_file or default_audit_file(), cluster)
        ctx = acts.ActionContext(cluster, control, coord, assume_yes=yes, audit=audit)
        runner = pbs.PlaybookRunner(ctx, coord, lock_timeout=lock_wait, audit=audit)
        if resume:
            plan, done = runner.resume_plan(pb, overrides)
            if dry_run:
                _show_plan(plan, done)
                return
        else:
            plan = pbs.make_plan(pb, overrides, pbs.cluster_facts(cluster))
        _run_with_progress(runner, ctx, plan, resume, pb, yes)


def _show_plan(plan: Plan, done: set[int]) -> None:
    table = Table(title=f"plan: {plan.playbook} ({len(plan.steps)} steps)   variables: "
                        + ", ".join(f"{k}={v!r}" for k, v in plan.variables.items()))
    for col in ("#", "step", "action", "arguments", "gate") + (("status",) if done else ()):
        table.add_column(col)
    for s in plan.steps:
        args = ", ".join(f"{k}={v!r}" for k, v in s.args.items())
        row = [str(s.index), s.name, s.action, args, s.gate]
        if done:
            row.append("[green]done" if s.index in done else "to do")
        table.add_row(*row)
    out.print(table)
    out.print("[dim]dry run: nothing was changed[/]")


def _run_with_progress(runner: PlaybookRunner, ctx: ActionContext, plan: Plan, resume: bool, pb: Playbook,
                       yes: bool) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=out, transient=True)
    task = progress.add_task(plan.playbook, total=len(plan.steps))
    started: dict[int, float] = {}

    def on_event(e: RunEvent) -> None:
        s = e.step
        tag = f"[{s.index}/{e.total}]" if s else ""
        if e.kind == "start" and s:
            started[s.index] = time.monotonic()
            progress.update(task, description=f"{tag} {s.name}")
        elif e.kind in ("progress", "gate") and s:
            progress.update(task, description=f"{tag} {s.name}: [dim]{e.message}[/]")
        elif e.kind == "done" and s:
            took = time.monotonic() - started.get(s.index, time.monotonic())
            progress.console.print(f"[green]ok[/]      {tag} {s.name}: {e.message} [dim]({took:.1f}s)[/]", highlight=False)
            progress.advance(task)
        elif e.kind == "skip" and s:
            progress.console.print(f"[dim]skipped {tag} {s.name}: {e.message}[/]", highlight=False)
            progress.advance(task)
        elif e.kind == "failed" and s:
            progress.console.print(f"[red]FAILED[/]  {tag} {s.name}: {e.message}", highlight=False)
        elif e.kind == "lock":
            progress.update(task, description=e.message)
        elif e.kind == "note":
            progress.console.print(f"[yellow]note[/]    {e.message}", highlight=False)

    def ask(message: str) -> bool:
        progress.stop()
        try:
            return typer.confirm(message, default=False)
        finally:
            progress.start()

    runner.on_event = on_event
    if not yes and sys.stdin.isatty():
        ctx.confirm = ask
    with progress:
        result = runner.run(plan, resume=resume, playbook=pb)
    note = f", {len(result.skipped)} done earlier" if result.skipped else ""
    out.print(f"[bold green]playbook {plan.playbook} finished[/]: run {result.run_id}, "
              f"{len(result.executed)} steps run{note}", highlight=False)

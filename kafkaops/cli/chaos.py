"""`kafkaops chaos list | run | table`: the chaos matrix (workloads under faults, properties checked).

``run`` starts a cluster of its own (3 brokers, 3 ZooKeeper nodes; ``--mode``, ``--backend``)
or uses the running local cluster (``--local``), runs every chosen workload x fault cell,
prints each cell as it ends and the matrix at the end, and exits 1 unless every cell passed
or is honestly not supported there."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kafkaops.cli.common import err, local_cluster, out
from kafkaops.errors import ConfigError

chaos_app = typer.Typer(help="Chaos matrix: workloads under broker, controller, ZooKeeper and network faults.",
                        no_args_is_help=True)


def _choose(given: list[str], known: list[str], what: str) -> list[str]:
    if not given or given == ["all"]:
        return known
    unknown = [g for g in given if g not in known]
    if unknown:
        raise ConfigError(f"unknown {what} {', '.join(unknown)}: choose from {', '.join(known)} (or all)")
    return given


@chaos_app.command("list")
def list_command() -> None:
    """The workloads and faults a run can combine."""
    from kafkaops.chaos.faults import FAULTS
    from kafkaops.chaos.runner import WORKLOADS

    table = Table(title="chaos workloads and faults")
    table.add_column("kind")
    table.add_column("name")
    table.add_column("what")
    for w in WORKLOADS.values():
        table.add_row("workload", w.name, w.description)
    for f in FAULTS.values():
        table.add_row("fault", f.name, f.description)
    out.print(table)


@chaos_app.command("run")
def run_command(
    fault: Annotated[list[str], typer.Option("--fault", "-f", help="fault to inject (repeatable; default all)")] = [],  # noqa: B006
    workload: Annotated[list[str], typer.Option("--workload", "-w", help="workload (repeatable, or all; default group)")] = [],  # noqa: B006
    duration: Annotated[float, typer.Option(help="seconds each cell runs (the fault's recovery may extend it)")] = 30.0,
    hold: Annotated[float, typer.Option(help="seconds a killed node stays down")] = 8.0,
    mode: Annotated[str, typer.Option(help="Kafka mode of the cluster started: zookeeper or kraft")] = "zookeeper",
    backend: Annotated[str, typer.Option(help="where that cluster runs: local (JVMs) or containers")] = "local",
    local: Annotated[bool, typer.Option("--local", help="use the running local cluster (`kafkaops up`) instead")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the run as one JSON object on stdout")] = False,
    output: Annotated[Path | None, typer.Option(help="also write the run's JSON to this file")] = None,
    markdown: Annotated[Path | None, typer.Option(help="also write the matrix as a Markdown table")] = None,
) -> None:
    """Run workload x fault cells and check that no acknowledged record is lost."""
    from kafkaops.chaos.clusters import start_cluster
    from kafkaops.chaos.faults import FAULTS
    from kafkaops.chaos.report import markdown as table_md
    from kafkaops.chaos.report import run_json
    from kafkaops.chaos.runner import WORKLOADS, CellResult, run_matrix

    faults = _choose(fault, list(FAULTS), "fault")
    workloads = _choose(workload or ["group"], list(WORKLOADS), "workload")
    if duration <= 0 or hold <= 0:
        raise ConfigError("--duration and --hold must be positive")
    started = time.strftime("%Y-%m-%d %H:%M:%S")

    def progress(r: CellResult) -> None:
        colour = {"pass": "green", "unsupported": "yellow"}.get(r.status, "red")
        err.print(f"[{colour}]{r.status}[/] {r.workload} x {r.fault} ({r.seconds:.0f}s): "
                  f"{r.reason or json.dumps(r.figures)}", highlight=False, soft_wrap=True)
        for c in r.failures:
            err.print(f"  [red]{c.name}[/]: {c.detail}", highlight=False, soft_wrap=True)

    workdir = Path(tempfile.mkdtemp(prefix="kafkaops-chaos-"))
    if local:
        cluster: Any = local_cluster()
        where = f"the local cluster ({cluster.mode} mode, {len(cluster.zookeepers)} ZooKeeper nodes)"
    else:
        err.print(f"starting a {mode} cluster ({backend}: 3 brokers, 3 ZooKeeper nodes) ...")
        cluster = start_cluster(mode, backend, workdir / "cluster")
        label = "ZooKeeper-mode" if mode == "zookeeper" else "KRaft"
        where = f"{label} cluster, 3 brokers, 3 ZooKeeper nodes ({'containers' if backend == 'containers' else 'local JVMs'})"
    try:
        results = run_matrix(cluster, workloads, faults, duration=duration, hold=hold, workdir=workdir,
                             progress=progress)
    finally:
        if not local:
            cluster.destroy()
    doc = run_json(results, started=started, cluster=where, mode=cluster.mode,
                   kafka_version=getattr(cluster, "kafka_version", None), duration=duration, hold=hold)
    if output is not None:
        output.write_text(json.dumps(doc, indent=2))
    if markdown is not None:
        markdown.write_text(table_md(results) + "\n")
    if as_json:
        out.print_json(json.dumps(doc))
    else:
        out.print(table_md(results), highlight=False, soft_wrap=True)
    if not doc["ok"]:
        err.print(f"the job processes' logs are in {workdir}")
        raise typer.Exit(1)
    shutil.rmtree(workdir, ignore_errors=True)


@chaos_app.command("table")
def table_command(
    runs: Annotated[list[Path], typer.Argument(help="JSON files written by `chaos run --output`")],
) -> None:
    """Each saved run as a Markdown matrix under a line saying where and when it ran."""
    from kafkaops.chaos.report import heading
    from kafkaops.chaos.report import markdown as table_md

    for i, path in enumerate(runs):
        try:
            doc = json.loads(path.read_text())
            text = f"{heading(doc)}\n\n{table_md(doc['cells'])}"
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path} is not a chaos run's JSON: {exc}") from None
        out.print(("\n" if i else "") + text, highlight=False, soft_wrap=True)

"""`kafkaops demo` (the end-to-end demo on the local cluster) and `kafkaops demo aggregate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kafkaops.cli.common import Target, connection, local_cluster, out

demo_app = typer.Typer(help="The end-to-end demo, and the demo applications it runs.")


@demo_app.callback(invoke_without_command=True)
def demo(
    ctx: typer.Context,
    messages: Annotated[int, typer.Option(help="records per round trip")] = 1000,
) -> None:
    """Run the end-to-end demo against the local cluster (`kafkaops up` first): it kills and restarts brokers."""
    from kafkaops.apps import demo as demo_steps

    if ctx.invoked_subcommand is not None:
        return
    cluster = local_cluster()
    failed = 0
    for step in demo_steps.run(cluster, messages):
        mark = "[green]ok[/]" if step.ok else "[red]FAILED[/]"
        out.print(f"{mark}  [bold]{step.title}[/]: {step.detail}")
        failed += not step.ok
    if failed:
        raise demo_steps.DemoFailed(f"{failed} demo step(s) failed")
    out.print("[bold green]demo finished[/]")


@demo_app.command("aggregate")
@connection()
def demo_aggregate(
    topic: Annotated[str, typer.Option("--topic", "-t", help="topic to count")],
    job: Annotated[str, typer.Option("--job", "-j", help="job name: checkpoints live under /kafkaops/checkpoints/JOB")],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSON file {key: count}, rewritten atomically")],
    idle_exit: Annotated[float | None, typer.Option("--idle-exit", help="exit after this many seconds without new records")] = None,
    every_records: Annotated[int, typer.Option("--every-records", help="checkpoint every N records")] = 1000,
    every_seconds: Annotated[float, typer.Option("--every-seconds", help="... or every T seconds")] = 2.0,
    *,
    target: Target,
) -> None:
    """Count records per key, exactly once across crashes (checkpointed consumer); stops on SIGTERM."""
    from kafkaops.apps.aggregate import run_aggregate

    cluster = target.cluster()
    result = run_aggregate(cluster, topic, job, output, idle_exit=idle_exit, every_records=every_records,
                           every_seconds=every_seconds, handle_sigterm=True)
    resumed = f"resumed from {result.resumed_from}" if result.resumed_from else "fresh start"
    out.print(f"job {job}: {result.records} records counted in this run ({resumed}); "
              f"{result.total} records over {result.keys} keys in {output}; "
              f"{result.checkpoints} checkpoints, last {result.last_checkpoint}", highlight=False, soft_wrap=True)

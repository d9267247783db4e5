"""`kafkaops demo` (the end-to-end demo on the local cluster), `kafkaops demo aggregate`
and `kafkaops demo queues`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kafkaops.cli.common import Target, connection, local_cluster, out

if TYPE_CHECKING:
    from kafkaops.apps.demo.steps import Step

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
    _render_steps(demo_steps.run(cluster, messages))
    out.print("[bold green]demo finished[/]")


def _render_steps(steps: Iterable[Step]) -> None:
    """Each step as it comes (ok / FAILED, title, figures); DemoFailed at the end if any failed."""
    from kafkaops.apps.demo.steps import DemoFailed

    failed = 0
    for step in steps:
        mark = "[green]ok[/]" if step.ok else "[red]FAILED[/]"
        out.print(f"{mark}  [bold]{step.title}[/]: {step.detail}", soft_wrap=True)
        failed += not step.ok
    if failed:
        raise DemoFailed(f"{failed} demo step(s) failed")


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


@demo_app.command("queues")
@connection()
def demo_queues(
    records: Annotated[int, typer.Option("--records", "-n", help="records on the demo topic")] = 2000,
    bench_records: Annotated[int, typer.Option(help="records per throughput round (0: no throughput step)")] = 50_000,
    rounds: Annotated[int, typer.Option(help="throughput rounds (interleaved; medians count)")] = 3,
    *,
    target: Target,
) -> None:
    """Point-to-point beside pub-sub on one topic of 2 partitions: 2 consumer groups each get every
    record; a share group of 4 member processes splits them; a member killed (SIGKILL) or frozen
    (SIGSTOP) mid-batch: its records go to the others, nothing lost; share vs consumer group
    throughput. Needs Kafka 4.2+ (KRaft: `kafkaops up --mode kraft`)."""
    from kafkaops.apps.demo.queues import queue_steps

    _render_steps(queue_steps(target.cluster(), records, bench_records=bench_records, rounds=rounds))
    out.print("[bold green]queues demo finished[/]")

"""`kafkaops bench produce | consume | queues | balance | checkpoint`: runs the benchmarks in
:mod:`kafkaops.apps.bench` and renders their reports (tables of rates and ratios, or JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from kafkaops.cli.common import Target, connection, coordinator, err, local_cluster, out
from kafkaops.errors import ConfigError

if TYPE_CHECKING:
    from kafkaops.apps.bench.balance import BalanceReport
    from kafkaops.apps.bench.timing import BenchReport

bench_app = typer.Typer(help="Side-by-side benchmarks on the local cluster (ratios, not absolute times).",
                        no_args_is_help=True)

RecordsOpt = Annotated[int, typer.Option("--records", "-n", help="records per contestant and round")]
RoundsOpt = Annotated[int, typer.Option(help="interleaved rounds; each contestant's median counts")]
JsonOpt = Annotated[bool, typer.Option("--json", help="one JSON object")]


def render(report: BenchReport, as_json: bool = False) -> None:
    """A table of rates and one of ratios (with their targets), or one JSON object."""
    if as_json:
        out.print_json(json.dumps(report.to_json()))
        return
    table = Table(title=f"bench {report.benchmark}: {report.records} records, median of {report.rounds} round(s)")
    for col in ("contestant", "records", "seconds", "records/s", "cpu µs/record"):
        table.add_column(col, justify="right" if col != "contestant" else "left")
    for m in report.measurements:
        table.add_row(m.name, str(m.records), f"{m.seconds:.3f}", f"{m.rate:,.0f}", f"{m.cpu_us_per_record:.1f}")
    out.print(table)
    ratios = Table(title="ratios (side by side, same run)")
    for col in ("ratio", "value", "target", "met"):
        ratios.add_column(col)
    for key, value in report.ratios.items():
        target = report.targets.get(key)
        met = "" if target is None else ("[green]yes[/]" if value >= target else "[red]no[/]")
        ratios.add_row(key, f"{value:.2f}x", "" if target is None else f">= {target:.2f}x", met)
    out.print(ratios)
    out.print("settings: " + json.dumps(report.settings, default=str), highlight=False)
    for note in report.notes:
        out.print(f"[dim]{note}[/]")


@bench_app.command("produce")
@connection()
def produce_command(
    records: RecordsOpt = 50_000,
    rounds: RoundsOpt = 3,
    peer_records: Annotated[int | None, typer.Option(help="records for kafka-python (default: --records)")] = None,
    as_json: JsonOpt = False,
    *,
    target: Target,
) -> None:
    """TypedProducer (Avro) vs raw confluent_kafka + fastavro vs kafka-python: rates and ratios.
    With ZooKeeper (the profile's, -z, or the local cluster's) the schema is registered first."""
    from kafkaops.apps.bench.clients import bench_produce

    cluster = target.cluster()
    render(bench_produce(cluster, records, rounds, peer_records), as_json)


@bench_app.command("consume")
@connection()
def consume_command(
    records: Annotated[int, typer.Option("--records", "-n", help="records to read per contestant and round")] = 50_000,
    rounds: RoundsOpt = 3,
    as_json: JsonOpt = False,
    *,
    target: Target,
) -> None:
    """TypedConsumer (Avro) vs raw confluent_kafka consumer + fastavro: rates and ratios."""
    from kafkaops.apps.bench.clients import bench_consume

    cluster = target.cluster()
    render(bench_consume(cluster, records, rounds), as_json)


@bench_app.command("queues")
@connection()
def queues_command(
    records: RecordsOpt = 50_000,
    rounds: RoundsOpt = 3,
    skewed_records: Annotated[int, typer.Option(help="records of the fetch.wait.max.ms comparison (0: skip it)")] = 10_000,
    as_json: JsonOpt = False,
    *,
    target: Target,
) -> None:
    """Share group vs consumer group, one member each, on the same topic: rates and ratios; and the
    share consumer's fetch.wait.max.ms on a skewed topic (Kafka 4.2+)."""
    from kafkaops.apps.bench.queues import bench_queues

    render(bench_queues(target.cluster(), records, rounds, skewed_records), as_json)


@bench_app.command("balance")
def balance_command(
    messages: Annotated[int, typer.Option("--messages", "-n", help="records per contestant in healthy and keyed")] = 100_000,
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", "-s", help="healthy, keyed, cost, paused, paused-acks-all, leader-kill (default: all)"),
    ] = None,
    plot: Annotated[Path, typer.Option(help="PNG of per-partition counts over time in the paused scenario")] = Path(
        "balance-paused.png"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object: settings, scenarios, cost, targets")] = False,
    rounds: Annotated[int, typer.Option(help="rounds of every scenario (order rotated); figures are medians")] = 3,
    linger_ms: Annotated[float, typer.Option("--linger-ms", help="linger.ms of every contestant (librdkafka's default: 5)")] = 5,
) -> None:
    """Partitioners side by side on the local cluster (`kafkaops up`): it pauses and kills a broker."""
    from kafkaops.apps.bench import balance

    chosen = scenario or list(balance.SCENARIOS)
    unknown = [s for s in chosen if s not in balance.SCENARIOS]
    if unknown:
        raise ConfigError(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(balance.SCENARIOS)}")
    if messages < 1000:
        raise ConfigError(f"--messages must be at least 1000, not {messages}")
    report = balance.run(local_cluster(), messages, chosen, progress=lambda s: err.print(f"[dim]{s}[/]"),
                         rounds=max(1, rounds), linger_ms=linger_ms)
    if as_json:
        out.print_json(json.dumps(report.to_json()))
        return
    _render_balance(report)
    if report.paused is not None:
        try:
            path = balance.plot_paused(report.paused, plot)
            out.print(f"plot of the paused scenario (last round): {path}")
        except ImportError:
            err.print("no plot: matplotlib is not installed (pip install 'kafkaops[bench]')")


def _render_balance(report: BalanceReport) -> None:
    """The settings, one table per scenario, the client cost, then the targets."""
    out.print("settings: " + json.dumps(report.settings), highlight=False)
    for name, rows in report.scenarios.items():
        extra = ("paused_broker_share", "paused_broker_share_all") if name.startswith("paused") else (
            ("recovery_s",) if name == "leader-kill" else ())
        table = Table(title=f"{name} (median of {report.settings['rounds']} round(s))")
        for col in ("strategy", "messages", "msgs/s", "p50 ms", "p99 ms", "max/min", "lost") + extra:
            table.add_column(col, justify="left" if col == "strategy" else "right")
        for strategy, r in rows.items():
            ratio = "-" if r["max_min_ratio"] is None else f"{r['max_min_ratio']:.4f}"
            cells = [strategy, str(r["messages"]), f"{r['msgs_per_s']:,.0f}", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}",
                     ratio, str(r["lost"])]
            cells += ["-" if r[col] is None else f"{r[col]:.3f}" for col in extra]
            table.add_row(*cells)
        out.print(table)
    if report.cost is not None:
        table = Table(title=f"cost: producing-thread CPU per record ({report.cost['records']} records, "
                            f"median of {report.cost['rounds']})")
        for col in ("contestant", "µs/record", "/ bare"):
            table.add_column(col, justify="left" if col == "contestant" else "right")
        for name, us in report.cost["us_per_record"].items():
            ratio = report.cost["ratio_to_bare"].get(name)
            table.add_row(name, f"{us:.3f}", "-" if ratio is None else f"{ratio:.2f}x")
        out.print(table)
    targets = Table(title="targets (side by side, same run)")
    for col in ("target", "measured", "wanted", "met"):
        targets.add_column(col)
    for target, measured, wanted, met in report.targets():
        targets.add_row(target, measured, wanted, "[green]yes[/]" if met else "[red]no[/]")
    out.print(targets)


@bench_app.command("checkpoint")
@connection()
def checkpoint_command(
    rounds: Annotated[int, typer.Option("--rounds", "-n", help="small-state saves (and bare transactions) to time")] = 1000,
    large_mb: Annotated[list[int] | None, typer.Option(help="large-state sizes in MB, repeatable (default 10 and 100)")] = None,
    large_rounds: Annotated[int, typer.Option(help="interleaved rounds per large size")] = 3,
    sustained: Annotated[int, typer.Option(help="saves in a row for the ZooKeeper heap check (0: skip)")] = 50,
    sustained_mb: Annotated[int, typer.Option(help="state size of those saves in MB")] = 10,
    topic: Annotated[str, typer.Option(help="the state topic")] = "_kafkaops_state",
    as_json: JsonOpt = False,
    *,
    target: Target,
) -> None:
    """Checkpoints next to the bare calls they are made of, in one run: small-state save p50/p99 vs a
    bare kazoo create+set transaction; 10/100 MB save + load through the state topic vs a bare
    produce + consume of the same bytes; 50 x 10 MB saves with ZooKeeper's heap after GC before and
    after, and the cluster's health."""
    from kafkaops.apps.bench.checkpoint import bench_checkpoint
    from kafkaops.cli.common import find_local_cluster

    profile = target.cluster()
    local = find_local_cluster() if target.is_local else None
    pids = [z.process.pid for z in local.zookeepers if z.process.pid and z.process.is_running()] if local else []
    with coordinator(profile) as coord:
        result = bench_checkpoint(profile, coord, rounds=rounds, large_mb=[10, 100] if large_mb is None else large_mb,
                                  large_rounds=large_rounds, sustained_saves=sustained, sustained_mb=sustained_mb,
                                  zookeeper_pids=pids, topic=topic,
                                  progress=None if as_json else lambda m: err.print(m, highlight=False))
    if as_json:
        out.print_json(json.dumps(result))
        return
    _render_checkpoint(result)


def _render_checkpoint(result: dict[str, Any]) -> None:
    save = result.get("save")
    if save:
        table = Table(title=f"small state: checkpoint save vs bare create+set transaction ({save['znode_bytes']} B "
                            f"znode, {save['ours']['samples']} each, interleaved)")
        for col in ("contestant", "p50 ms", "p99 ms", "max ms"):
            table.add_column(col, justify="right" if col != "contestant" else "left")
        for m in (save["ours"], save["bare"]):
            table.add_row(m["name"], f"{m['p50_ms']:.2f}", f"{m['p99_ms']:.2f}", f"{m['max_ms']:.2f}")
        out.print(table)
    if result.get("large"):
        table = Table(title=f"large states via topic {result['topic']} vs bare produce + consume (medians)")
        for col in ("state", "save s", "load s", "total s", "MB/s", "bare total s", "bare MB/s", "throughput ratio"):
            table.add_column(col, justify="right")
        for large in result["large"]:
            med = large["median"]
            table.add_row(f"{large['bytes'] // (1024 * 1024)} MB", f"{med['save_s']:.3f}", f"{med['load_s']:.3f}",
                          f"{med['total_s']:.3f}", f"{large['mb_per_s']:.0f}", f"{med['bare_total_s']:.3f}",
                          f"{large['bare_mb_per_s']:.0f}", f"{large['throughput_ratio']:.2f}x")
        out.print(table)
    s = result.get("sustained")
    if s:
        b, a = s["zookeeper_before"], s["zookeeper_after"]
        heap = (f"heap after GC {b['heap_after_gc_mb']} -> {a['heap_after_gc_mb']} MB, "
                if "heap_after_gc_mb" in b and "heap_after_gc_mb" in a else f"heap: {a.get('heap_error', 'n/a')}, ")
        out.print(f"{s['saves']} saves of {s['bytes'] // (1024 * 1024)} MB: p50 {s['save']['p50_ms']:.0f} ms, "
                  f"max {s['save']['max_ms']:.0f} ms; ZooKeeper {heap}data {b.get('data_bytes')} -> "
                  f"{a.get('data_bytes')} bytes, znodes {b.get('znodes')} -> {a.get('znodes')}", highlight=False)
    targets = Table(title="targets (side by side, same run)")
    for col in ("target", "measured", "wanted", "met"):
        targets.add_column(col)
    for t in result["targets"]:
        targets.add_row(t["target"], t["measured"], t["wanted"], "[green]yes[/]" if t["met"] else "[red]no[/]")
    out.print(targets)

"""`kafkaops bench`: side-by-side throughput runs on one cluster, reported as ratios.

Every benchmark runs its contestants one after the other in the same process on
the same cluster (same topic layout, same pre-built records), several rounds
interleaved, and keeps each contestant's best round: the machine is shared and
noisy, so absolute rates mean little; the ratios between contestants measured
side by side are what we report.

Layout, so more benchmarks can be added without touching the others:
- shared helpers: ``Measurement``, ``BenchReport``, ``timed``, ``bench_topic``,
  ``run_rounds``, ``render``;
- one function per benchmark returning a ``BenchReport`` (``bench_produce``,
  ``bench_consume``), free of printing;
- one typer command per benchmark in ``bench_app`` that calls it and renders.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

log = logging.getLogger(__name__)

bench_app = typer.Typer(help="Side-by-side benchmarks on the local cluster (ratios, not absolute times).", no_args_is_help=True)

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"


# ---------------------------------------------------------------------- shared helpers
@dataclass
class Measurement:
    """One contestant's run: how many records (and bytes) in how many seconds."""

    name: str
    records: int
    seconds: float
    bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Records per second."""
        return self.records / self.seconds if self.seconds > 0 else 0.0


@dataclass
class BenchReport:
    """A benchmark's result: every contestant's best run, and ratios ``a / b`` of their rates."""

    benchmark: str
    records: int
    rounds: int
    measurements: list[Measurement]
    ratios: dict[str, float] = field(default_factory=dict)
    targets: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def measurement(self, name: str) -> Measurement:
        for m in self.measurements:
            if m.name == name:
                return m
        raise KeyError(name)

    def add_ratio(self, numerator: str, denominator: str, target: float | None = None) -> float:
        """Record ``rate(numerator) / rate(denominator)`` under the key ``"numerator/denominator"``."""
        den = self.measurement(denominator).rate
        value = self.measurement(numerator).rate / den if den > 0 else 0.0
        key = f"{numerator}/{denominator}"
        self.ratios[key] = value
        if target is not None:
            self.targets[key] = target
        return value

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for m, d in zip(self.measurements, data["measurements"], strict=True):
            d["rate"] = m.rate
        return data


def timed(name: str, records: int, fn: Callable[[], int | dict[str, Any] | None], nbytes: int = 0) -> Measurement:
    """Run ``fn`` once and time it. ``fn`` may return the record count it really handled
    (then that count is used) or a dict of extra facts (kept in ``Measurement.extra``)."""
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    m = Measurement(name, records, seconds, nbytes)
    if isinstance(result, int):
        m.records = result
    elif isinstance(result, dict):
        m.extra.update(result)
    return m


def run_rounds(contestants: dict[str, Callable[[], Measurement]], rounds: int) -> list[Measurement]:
    """Run every contestant ``rounds`` times, interleaved; keep each one's fastest run."""
    best: dict[str, Measurement] = {}
    for _ in range(max(1, rounds)):
        for name, run in contestants.items():
            m = run()
            if name not in best or m.rate > best[name].rate:
                best[name] = m
    return [best[name] for name in contestants]


def bench_topic(bootstrap_servers: str, partitions: int = 3, replication_factor: int = 3, prefix: str = "bench") -> str:
    """A fresh topic for one benchmark run (RF capped by the number of brokers)."""
    from kafkaops.admin import admin_client, create_topic

    brokers = len(admin_client(bootstrap_servers).list_topics(timeout=10).brokers)
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap_servers, name, partitions, min(replication_factor, max(1, brokers)))
    return name


def render(report: BenchReport, console: Console, as_json: bool = False) -> None:
    """A rich table of rates and ratios, or one JSON object."""
    if as_json:
        console.print_json(json.dumps(report.to_json()))
        return
    table = Table(title=f"bench {report.benchmark}: {report.records} records, best of {report.rounds} round(s)")
    for col in ("contestant", "records", "seconds", "records/s"):
        table.add_column(col, justify="right" if col != "contestant" else "left")
    for m in report.measurements:
        table.add_row(m.name, str(m.records), f"{m.seconds:.3f}", f"{m.rate:,.0f}")
    console.print(table)
    ratios = Table(title="ratios (side by side, same run)")
    for col in ("ratio", "value", "target", "met"):
        ratios.add_column(col)
    for key, value in report.ratios.items():
        target = report.targets.get(key)
        met = "" if target is None else ("[green]yes[/]" if value >= target else "[red]no[/]")
        ratios.add_row(key, f"{value:.2f}x", "" if target is None else f">= {target:.2f}x", met)
    console.print(ratios)
    for note in report.notes:
        console.print(f"[dim]{note}[/]")


def _cli_bootstrap(bootstrap: str | None) -> str:
    from kafkaops.cli import _bootstrap

    return _bootstrap(bootstrap)


def _sequence_rates(ms: Sequence[Measurement]) -> str:
    return ", ".join(f"{m.name} {m.rate:,.0f}/s" for m in ms)

"""What every benchmark shares: measurements, the report with its ratios, timing and rounds.

The machine is shared and noisy, so absolute rates mean little: contestants run one
after the other in the same process on the same cluster, several rounds interleaved,
and each contestant's median round counts. Reported are the ratios between contestants
measured side by side (wall-clock rates, and CPU time per record, which a loaded
machine disturbs less).
"""

from __future__ import annotations

import gc
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from kafkaops.config import ClusterProfile, as_profile

Clock = tuple[float, float]
"""(wall, process CPU) clock readings, from :func:`now`."""


@dataclass
class Measurement:
    """One contestant's run: how many records (and bytes) in how many seconds."""

    name: str
    records: int
    seconds: float
    bytes: int = 0
    cpu_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    median_rate: float | None = None
    """Over several rounds: the median of the rounds' rates (see :func:`run_rounds`)."""
    median_cpu_us: float | None = None
    """Over several rounds: the median of the rounds' CPU µs per record."""

    @property
    def rate(self) -> float:
        """Records per second (wall clock): the median of the rounds' rates, or this run's."""
        if self.median_rate is not None:
            return self.median_rate
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_record(self) -> float:
        """Process CPU time (all threads, librdkafka's too) per record, in microseconds."""
        if self.median_cpu_us is not None:
            return self.median_cpu_us
        return self.cpu_seconds / self.records * 1e6 if self.records else 0.0


@dataclass
class BenchReport:
    """A benchmark's result: every contestant's median run, and ratios ``a / b`` of their rates."""

    benchmark: str
    records: int
    rounds: int
    measurements: list[Measurement]
    ratios: dict[str, float] = field(default_factory=dict)
    targets: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    """The client settings every contestant ran with."""

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

    def add_cpu_ratio(self, numerator: str, denominator: str) -> float:
        """CPU efficiency ``cpu/record(denominator) / cpu/record(numerator)`` (higher: numerator cheaper),
        under the key ``"numerator/denominator (cpu)"``: less sensitive to a loaded machine than wall rates."""
        num = self.measurement(numerator).cpu_us_per_record
        value = self.measurement(denominator).cpu_us_per_record / num if num > 0 else 0.0
        self.ratios[f"{numerator}/{denominator} (cpu)"] = value
        return value

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for m, d in zip(self.measurements, data["measurements"], strict=True):
            d["rate"] = m.rate
            d["cpu_us_per_record"] = m.cpu_us_per_record
            del d["median_rate"], d["median_cpu_us"]
        return data


def timed(name: str, records: int, fn: Callable[[], int | dict[str, Any] | None], nbytes: int = 0) -> Measurement:
    """Run ``fn`` once and time it. ``fn`` may return the record count it really handled
    (then that count is used) or a dict of extra facts (kept in ``Measurement.extra``)."""
    c0 = time.process_time()
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    m = Measurement(name, records, seconds, nbytes, time.process_time() - c0)
    if isinstance(result, int):
        m.records = result
    elif isinstance(result, dict):
        m.extra.update(result)
    return m


def now() -> Clock:
    """(wall, process CPU) clock readings, for :func:`spanned`."""
    return time.perf_counter(), time.process_time()


def spanned(name: str, expected: int, fn: Callable[..., dict[str, Any]], *args: Any) -> Measurement:
    """Run ``fn(*args)``, which reports ``{"seen": n, "first": now(), "end": now()}`` around
    the span it wants measured (e.g. without client start-up or group join)."""
    r = fn(*args)
    if not r["seen"]:
        return Measurement(name, 0, 0.0, 0, 0.0, {"expected": expected})
    (w0, c0), (w1, c1) = r["first"], r["end"]
    return Measurement(name, int(r["seen"]), w1 - w0, 0, c1 - c0, {"expected": expected})


def run_rounds(contestants: dict[str, Callable[[], Measurement]], rounds: int) -> list[Measurement]:
    """Run every contestant ``rounds`` times, interleaved, the order rotated each round (so no
    contestant always follows the same one). Each round's rate (and CPU per record) is
    computed from that round's own count and time, and the contestant's figure is the median
    of the rounds: robust on a shared, noisy machine. The record count is the smallest seen
    in any round, so a round that lost records shows."""
    runs: dict[str, list[Measurement]] = {name: [] for name in contestants}
    names = list(contestants)
    for r in range(max(1, rounds)):
        for name in names[r % len(names):] + names[: r % len(names)]:
            gc.collect()  # each contestant starts without the previous one's garbage
            runs[name].append(contestants[name]())
    result = []
    for name in names:
        ms = runs[name]
        records = min(m.records for m in ms)
        seconds = statistics.median(m.seconds for m in ms)
        cpu = statistics.median(m.cpu_seconds for m in ms)
        extra = {**ms[0].extra, "rounds_seconds": [round(m.seconds, 4) for m in ms],
                 "rounds_rate": [round(m.rate, 1) for m in ms]}
        result.append(Measurement(name, records, seconds, ms[0].bytes, cpu, extra,
                                  median_rate=statistics.median(m.rate for m in ms),
                                  median_cpu_us=statistics.median(m.cpu_us_per_record for m in ms)))
    return result


def bench_topic(cluster: ClusterProfile | str, partitions: int = 3, replication_factor: int = 3,
                prefix: str = "bench") -> str:
    """A fresh topic for one benchmark run (RF capped by the number of brokers)."""
    from kafkaops.admin import admin_client, create_topic

    profile = as_profile(cluster)
    brokers = len(admin_client(profile).list_topics(timeout=10).brokers)
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    create_topic(profile, name, partitions, min(replication_factor, max(1, brokers)))
    return name

"""Run chaos cells: a workload, a fault injected once it flows, the properties checked after.

One cell: wait until the cluster is healthy; start the workload and wait until records
flow end to end; let it run; inject the fault (held, then healed); wait until the flow
is back; crash the consumer process too where the workload has one; run to the end of
the duration; stop the writers; read the topic back; let the consumers drain; check.
Then the cluster must become healthy again, so the next cell can share it.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafkaops.chaos.aggregate import AggregateWorkload
from kafkaops.chaos.checker import Check
from kafkaops.chaos.faults import FAULTS, Fault, FaultContext
from kafkaops.chaos.group import GroupWorkload
from kafkaops.chaos.readback import read_topic
from kafkaops.chaos.share import ShareWorkload
from kafkaops.chaos.target import ChaosCluster, ChaosError, wait_healthy
from kafkaops.chaos.workload import Workload
from kafkaops.errors import KafkaopsError
from kafkaops.waits import Deadline, WaitTimeout, wait_until

log = logging.getLogger(__name__)

WORKLOADS: dict[str, type[Workload]] = {w.name: w for w in (GroupWorkload, AggregateWorkload, ShareWorkload)}

FLOW_TIMEOUT = 180.0
"""How long a workload may take to flow end to end (at the start, after a fault)."""


@dataclass
class CellResult:
    """One cell: pass | fail | error (the run itself failed) | unsupported, with checks and figures."""

    workload: str
    fault: str
    status: str
    reason: str = ""
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    injections: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Passed, or honestly not supported here (never counted as a pass)."""
        return self.status in ("pass", "unsupported")

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        if self.status in ("unsupported", "error"):
            return f"{self.workload} x {self.fault}: {self.status}: {self.reason}"
        bad = "; ".join(f"{c.name}: {c.detail}" for c in self.failures)
        return f"{self.workload} x {self.fault}: {self.status}{': ' + bad if bad else ''} {self.figures}"

    def to_json(self) -> dict[str, Any]:
        return {"workload": self.workload, "fault": self.fault, "status": self.status, "reason": self.reason,
                "checks": [c.to_json() for c in self.checks], "figures": self.figures,
                "injections": self.injections, "seconds": round(self.seconds, 1)}


def _fault(fault: str | Fault) -> Fault:
    if isinstance(fault, Fault):
        return fault
    if fault not in FAULTS:
        raise ChaosError(f"unknown fault {fault!r}: one of {', '.join(FAULTS)}")
    return FAULTS[fault]


def unsupported(cluster: ChaosCluster, workload: str, fault: str | Fault) -> str | None:
    """Why this cell cannot run on ``cluster`` (None: it can)."""
    w = WORKLOADS[workload]
    return w.unsupported(cluster) or _fault(fault).unsupported(cluster, w)


def run_cell(
    cluster: ChaosCluster,
    workload: str,
    fault: str | Fault,
    *,
    duration: float = 20.0,
    hold: float = 8.0,
    workdir: Path | None = None,
) -> CellResult:
    """Run one cell on ``cluster`` (left healthy again) and return its result. ``fault``: a
    name from FAULTS, or a Fault of the caller's own."""
    if workload not in WORKLOADS:
        raise ChaosError(f"unknown workload {workload!r}: one of {', '.join(WORKLOADS)}")
    f = _fault(fault)
    fault = f.name
    started = time.monotonic()
    reason = unsupported(cluster, workload, f)
    if reason:
        return CellResult(workload, fault, "unsupported", reason)
    w = WORKLOADS[workload](cluster, workdir=workdir)
    ctx = FaultContext(cluster, w, f.hold if f.hold is not None else hold)
    try:
        wait_healthy(cluster)
        result = _run(w, ctx, f, duration)
    except Exception as exc:  # noqa: BLE001 - one cell's failure to run is its result, not the matrix's end
        log.error("chaos cell %s x %s could not run: %s\n%s", workload, fault, exc, traceback.format_exc())
        result = CellResult(workload, fault, "error", f"{type(exc).__name__}: {exc}",
                            injections=[i.what for i in ctx.injections])
    finally:
        w.close()
    healing = time.monotonic()
    try:
        wait_healthy(cluster)
        result.figures["healthy_after"] = round(time.monotonic() - healing, 1)
    except KafkaopsError as exc:
        result.checks.append(Check("cluster healthy again", 1, str(exc)))
        if result.status == "pass":
            result.status = "fail"
    result.seconds = time.monotonic() - started
    log.info("chaos cell done: %s", result.summary())
    return result


def _run(w: Workload, ctx: FaultContext, fault: Fault, duration: float) -> CellResult:
    w.start()
    begun = time.monotonic()
    if _await_flow(w, begun) is None:
        raise ChaosError(f"the {w.name} workload did not flow within {FLOW_TIMEOUT:.0f}s; errors: {w.errors}")
    end = Deadline(duration)
    time.sleep(min(duration * 0.2, 5.0))  # steady state before the fault
    fault.run(ctx)
    healed = time.monotonic()
    checks: list[Check] = []
    recovered = _await_flow(w, healed)
    checks.append(Check("flow resumed after the fault", 0 if recovered else 1,
                        "" if recovered else f"no record went end to end within {FLOW_TIMEOUT:.0f}s of healing"))
    recovery = [w.recovered_since(i.at) for i in ctx.injections]
    figures: dict[str, Any] = {"recovery": None if None in recovery else round(max((r for r in recovery if r is not None), default=0.0), 2)}
    crash_at = time.monotonic()
    crash = w.crash_consumer()
    if crash is not None:
        ctx.inject(crash)
        figures["consumer_recovery"] = _await_flow(w, crash_at)
    time.sleep(end.remaining())
    w.stop_writers()
    log_records, ends = read_topic(w.profile, w.topic)
    w.drain(ends, FLOW_TIMEOUT)
    outcome = w.check(log_records, ends)
    figures = {**outcome.figures, **figures}
    checks = [*outcome.checks, *checks]
    status = "pass" if all(c.passed for c in checks) else "fail"
    return CellResult(w.name, fault.name, status, checks=checks, figures=figures,
                      injections=[i.what for i in ctx.injections])


def _await_flow(w: Workload, since: float) -> float | None:
    """Seconds from ``since`` until records written after it flowed end to end again (None: never)."""
    seconds: list[float] = []

    def flowed() -> bool:
        got = w.recovered_since(since)
        if got is not None:
            seconds.append(got)
        return got is not None

    try:
        wait_until(flowed, FLOW_TIMEOUT, "the flow to resume")
    except WaitTimeout:
        return None
    return round(seconds[-1], 2)


def run_matrix(
    cluster: ChaosCluster,
    workloads: Iterable[str],
    faults: Iterable[str],
    *,
    duration: float = 20.0,
    hold: float = 8.0,
    workdir: Path | None = None,
    progress: Callable[[CellResult], None] | None = None,
) -> list[CellResult]:
    """Every workload x fault cell on the one cluster, in order (the cluster healed between cells)."""
    results = []
    for workload in workloads:
        for fault in faults:
            result = run_cell(cluster, workload, fault, duration=duration, hold=hold, workdir=workdir)
            results.append(result)
            if progress is not None:
                progress(result)
    return results

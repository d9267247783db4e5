"""A chaos run as JSON and as the Markdown table the README prints (faults x workloads;
each cell: pass/fail, acknowledged records, longest acknowledgement gap, recovery time)."""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from typing import Any

from kafkaops.chaos.runner import CellResult


def run_json(results: Sequence[CellResult], **about: Any) -> dict[str, Any]:
    """The whole run: where and when it ran, every cell, and whether all held."""
    return {
        "started": about.pop("started", time.strftime("%Y-%m-%d %H:%M:%S")),
        "host": platform.node(),
        **about,
        "ok": all(r.ok for r in results),
        "cells": [r.to_json() for r in results],
    }


def heading(doc: dict[str, Any]) -> str:
    """Where and when a run ran: ``ZooKeeper-mode cluster (local, Kafka 3.9.2), 45 s cells, 2026-...``."""
    version = f", Kafka {doc['kafka_version']}" if doc.get("kafka_version") else ""
    return (f"{doc.get('cluster', 'a cluster')}{version}: {doc.get('duration', '?')} s cells, "
            f"{doc.get('hold', '?')} s holds, {doc.get('started', '')}")


def _seconds(value: Any) -> str:
    return "–" if value is None else f"{value:.1f} s"


def cell_text(r: CellResult | dict[str, Any]) -> str:
    """One table cell: ``pass · 6,012 acked · gap 6.3 s · recovery 7.0 s`` (or why it did not run)."""
    doc = r.to_json() if isinstance(r, CellResult) else r
    status = doc["status"]
    if status == "unsupported":
        return "n/a: " + str(doc["reason"]).split(": ", 1)[-1]
    if status == "error":
        return f"**error**: {doc['reason']}"
    f = doc["figures"]
    text = (f"**{status}** · {f.get('records', 0):,} acked · gap {_seconds(f.get('max_ack_gap'))}"
            f" · recovery {_seconds(f.get('recovery'))}")
    if status == "fail":
        bad = [c["name"] for c in doc["checks"] if not c["passed"]]
        text += " · failed: " + ", ".join(bad)
    return text


def markdown(cells: Sequence[CellResult | dict[str, Any]]) -> str:
    """Faults as rows, workloads as columns, in the order they ran."""
    docs = [c.to_json() if isinstance(c, CellResult) else c for c in cells]
    workloads = list(dict.fromkeys(d["workload"] for d in docs))
    faults = list(dict.fromkeys(d["fault"] for d in docs))
    by_cell = {(d["workload"], d["fault"]): d for d in docs}
    lines = ["| fault | " + " | ".join(workloads) + " |", "|---" * (len(workloads) + 1) + "|"]
    for fault in faults:
        row = [cell_text(by_cell[(w, fault)]) if (w, fault) in by_cell else "" for w in workloads]
        lines.append(f"| {fault} | " + " | ".join(row) + " |")
    return "\n".join(lines)

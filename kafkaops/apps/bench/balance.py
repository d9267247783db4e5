"""`kafkaops bench balance`: the partitioning strategies side by side on a real 3-broker cluster.

Contestants: ``round-robin``, ``random``, ``least-loaded``, ``key-hash`` (our partitioners)
and ``librdkafka`` (its own ``murmur2_random`` partitioner, no Python choice) as the
baseline, each a :class:`~kafkaops.apps.bench.balance_driver.Driver` with the same producer
settings. Every topic has 12 partitions, RF 3. The scenarios are in
:mod:`kafkaops.apps.bench.balance_scenarios`, the client-side cost in
:mod:`kafkaops.apps.bench.balance_cost`; this module runs them for ``rounds`` rounds (the
order rotated every round, each figure the median) and checks the targets.

``round-robin(max_skew=None)`` (RoundRobin without its 1 % evenness bound) joins the healthy
and cost scenarios to show what the bound costs; it is no target of its own.

In the report, ``paused_broker_share`` is the share of the records produced *while the broker
was paused* that went to partitions it leads (``paused_broker_share_all``: over the whole
run); ``lost`` counts records produced but not found when the topic is read back
(leader-kill), elsewhere records without a successful delivery report; ``recovery_s`` is the
time from the SIGKILL to the first acknowledgement of a record produced after it to a
partition the dead broker led. Latency is produce() to delivery report.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafkaops.apps.bench.balance_cost import client_cost
from kafkaops.apps.bench.balance_driver import (
    PARTITIONS,
    STRATEGIES,
    UNBOUNDED_RR,
    StrategyRun,
    rotated,
    settings,
    summary,
)
from kafkaops.apps.bench.balance_scenarios import (
    BalanceCluster,
    PausedResult,
    delete_topics,
    create_topics,
    leader_kill,
    paused,
    sequential,
)

SCENARIOS = ("healthy", "keyed", "cost", "paused", "paused-acks-all", "leader-kill")
BUCKET_S = 0.1
SESSION_TIMEOUT_S = 6.0
"""The local cluster's brokers' ZooKeeper session timeout: a killed broker's partitions get
new leaders after it."""


@dataclass
class BalanceReport:
    """What ``bench balance`` measured: settings, per-scenario rows, the client cost, targets."""

    settings: dict[str, Any]
    scenarios: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    cost: dict[str, Any] | None = None
    paused: PausedResult | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"settings": self.settings, "scenarios": self.scenarios}
        if self.cost is not None:
            doc["cost"] = self.cost
        doc["targets"] = [{"target": t, "measured": m, "wanted": w, "met": ok} for t, m, w, ok in self.targets()]
        return doc

    def targets(self) -> list[tuple[str, str, str, bool]]:
        """(target, measured, wanted, met) for every target the measured scenarios cover."""
        rows: list[tuple[str, str, str, bool]] = []
        h = self.scenarios.get("healthy")
        if h:
            for name in ("round-robin", "random", "least-loaded"):
                tp = h[name]["rate_ratio"]
                rows.append((f"healthy: {name} records/s / librdkafka (median of the rounds' ratios)",
                             f"{tp:.3f}x", ">= 0.90x", tp >= 0.90))
            ratio = h["round-robin"]["max_min_ratio"] or float("inf")
            rows.append(("healthy: round-robin max/min partition count (worst round)", f"{ratio:.4f}", "<= 1.01",
                         ratio <= 1.01))
        k = self.scenarios.get("keyed")
        if k:
            tp = k["key-hash"]["rate_ratio"]
            rows.append(("keyed: key-hash records/s / librdkafka murmur2_random (median of the rounds' ratios)",
                         f"{tp:.3f}x", ">= 0.95x", tp >= 0.95))
            same = k["key-hash"]["per_partition"] == k["librdkafka"]["per_partition"]
            rows.append(("keyed: identical placement", "yes" if same else "no", "yes", same))
        if self.cost is not None:
            for name, r in self.cost["ratio_to_bare"].items():
                if name.startswith("librdkafka") or name == UNBOUNDED_RR:
                    continue
                us = self.cost["us_per_record"][name]
                rows.append((f"cost: {name} thread CPU / bare produce", f"{r:.2f}x ({us:.2f} us)", "<= 1.20x", r <= 1.20))
        p = self.scenarios.get("paused")
        if p:
            ll = p["least-loaded"]
            for other in ("round-robin", "librdkafka"):
                r = ll["p99_ms"] / p[other]["p99_ms"] if p[other]["p99_ms"] else float("inf")
                rows.append((f"paused: least-loaded p99 / {other} p99", f"{r:.3f}", "<= 0.5", r <= 0.5))
            share = ll["paused_broker_share"]
            rows.append(("paused: least-loaded share to the paused broker while paused", f"{share:.3f}", "<= 0.05",
                         share <= 0.05))
        kill = self.scenarios.get("leader-kill")
        if kill:
            limit = SESSION_TIMEOUT_S + 2.0
            for name, row in kill.items():
                rec = row["recovery_s"]
                rows.append((f"leader-kill: {name} recovery_s", "-" if rec is None else f"{rec:.2f}",
                             f"<= {limit:.0f}", rec is not None and rec <= limit))
            lost = {s: v["lost"] for s, v in kill.items()}
            rows.append(("leader-kill: lost", ", ".join(f"{s} {n}" for s, n in lost.items()), "0 each",
                         not any(lost.values())))
        return rows


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if len(present) == len(values) and present else None


def _paused_rows(results: Sequence[PausedResult]) -> dict[str, dict[str, Any]]:
    rows = {}
    for s in STRATEGIES:
        runs = [r.runs[s] for r in results]
        row = summary(runs)
        row["paused_broker_share"] = _median([r.share_during_pauses(s) for r in results])
        row["paused_broker_share_all"] = _median([r.runs[s].share(r.paused_partitions[s]) for r in results])
        rows[s] = row
    return rows


def _kill_rows(runs: dict[str, list[StrategyRun]]) -> dict[str, dict[str, Any]]:
    rows = {}
    for s in STRATEGIES:
        row = summary(runs[s])
        rec = [r.recovered_after for r in runs[s]]
        row["recovery_s"] = _median(rec)
        row["rounds_recovery_s"] = [None if v is None else round(v, 2) for v in rec]
        rows[s] = row
    return rows


def run(
    cluster: BalanceCluster,
    messages: int = 100_000,
    scenarios: Sequence[str] = SCENARIOS,
    progress: Callable[[str], None] = lambda s: None,
    rounds: int = 3,
    linger_ms: float = 5,
) -> BalanceReport:
    """Run the chosen scenarios, ``rounds`` rounds each; nothing is printed."""
    report = BalanceReport({
        "rounds": rounds, "messages": messages, "partitions": PARTITIONS, "replication_factor": 3,
        "value_bytes": 100, "producer": settings("all", linger_ms), "order": "rotated every round, reversed in odd rounds",
        "figures": "median of the rounds; ratios: median of the rounds' ratios",
    })
    progress("warm-up: 20,000 records (the brokers' JVMs compile their hot paths), not measured")
    sequential(cluster, ("librdkafka",), 20_000, rounds=1, linger_ms=linger_ms, prefix="balance-warm-up", settle_s=0)
    if "healthy" in scenarios:
        progress(f"healthy: {messages} records without a key per contestant, {rounds} round(s)")
        contestants = (*STRATEGIES[:-1], UNBOUNDED_RR, STRATEGIES[-1])
        runs = sequential(cluster, contestants, messages, rounds, linger_ms)
        report.scenarios["healthy"] = {s: summary(runs[s], runs["librdkafka"]) for s in contestants}
    if "keyed" in scenarios:
        progress(f"keyed: {messages} records with 10,000 distinct keys, key-hash vs librdkafka, {rounds} round(s)")
        runs = sequential(cluster, ("key-hash", "librdkafka"), messages, rounds, linger_ms, keyed=True,
                          prefix="balance-keyed")
        report.scenarios["keyed"] = {s: summary(runs[s], runs["librdkafka"]) for s in ("key-hash", "librdkafka")}
    if "cost" in scenarios:
        progress(f"cost: producing-thread CPU per record, {min(messages, 50_000)} records, {rounds} round(s)")
        profile = cluster.profile
        topic = create_topics(profile, 1, "balance-cost")
        try:
            report.cost = client_cost(profile, topic[0], min(messages, 50_000), rounds)
        finally:
            delete_topics(profile, topic)
    for name, acks in (("paused", "1"), ("paused-acks-all", "all")):
        if name in scenarios:
            progress(f"{name}: one broker paused 1 s in every 3 s, acks={acks}, 500 records/s each, {rounds} round(s)")
            results = [paused(cluster, acks, order=rotated(STRATEGIES, r)) for r in range(max(1, rounds))]
            report.scenarios[name] = _paused_rows(results)
            report.settings[name] = {"acks": acks, "rate_per_contestant": 500, "seconds": 12,
                                     "pause": "SIGSTOP 1 s in every 3 s"}
            if name == "paused":
                report.paused = results[-1]
    if "leader-kill" in scenarios:
        progress(f"leader-kill: a leader SIGKILLed mid-run, then restarted, {rounds} round(s)")
        kills: dict[str, list[StrategyRun]] = {s: [] for s in STRATEGIES}
        for r in range(max(1, rounds)):
            kr = leader_kill(cluster, order=rotated(STRATEGIES, r))
            for s in STRATEGIES:
                kills[s].append(kr.runs[s])
        report.scenarios["leader-kill"] = _kill_rows(kills)
        report.settings["leader-kill"] = {"acks": "all", "rate_per_contestant": 1000, "seconds": 16, "kill_at_s": 3}
    return report


def plot_paused(result: PausedResult, path: Path) -> Path:
    """A PNG of per-partition records per 100 ms over time, one panel per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buckets = int(result.duration / BUCKET_S) + 1
    fig, axes = plt.subplots(len(STRATEGIES), 1, figsize=(11, 2.2 * len(STRATEGIES)), sharex=True)
    xs = [i * BUCKET_S for i in range(buckets)]
    for ax, strategy in zip(axes, STRATEGIES, strict=True):
        run = result.runs[strategy]
        series = [[0] * buckets for _ in range(PARTITIONS)]
        for t, p in run.timeline:
            b = int(t / BUCKET_S)
            if 0 <= b < buckets:
                series[p][b] += 1
        hot = set(result.paused_partitions[strategy])
        for p in range(PARTITIONS):
            ax.plot(xs, series[p], color="tab:red" if p in hot else "tab:gray", linewidth=1.2 if p in hot else 0.6,
                    alpha=0.9 if p in hot else 0.5)
        for began, ended in result.pauses:
            ax.axvspan(began, ended, color="tab:orange", alpha=0.15)
        ax.set_ylabel("records/100ms")
        ax.set_title(f"{strategy}: red = partitions led by paused broker {result.broker}", fontsize=9)
    axes[-1].set_xlabel("seconds (orange: broker paused)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

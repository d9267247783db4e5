"""Replica monitor figures (a script, not a test): run ``python tests/integration/bench_monitor.py``.

1. Detection latency, SIGKILL -> BrokerDown, over N kills on a 3-broker cluster,
   measured side by side for a monitor with both sources (ZooKeeper + Admin API)
   and an Admin-API-only monitor in the same run.
2. Time to under-replicated = 0 after a broker loss with auto-failover on a
   4-broker cluster (kill -> BrokerDown -> reassignment submitted -> 0 URP).

Prints a JSON summary on the last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from typing import Any

from kafkaops.admin import create_topic
from kafkaops.local.cluster import LocalCluster
from kafkaops.ops.events import BrokerDown, Event
from kafkaops.ops.failover import FailoverPolicy
from kafkaops.ops.monitor import ReplicaMonitor


class FirstDown:
    def __init__(self) -> None:
        self.at: dict[int, float] = {}
        self.source: dict[int, str] = {}
        self.cond = threading.Condition()

    def __call__(self, e: Event) -> None:
        if isinstance(e, BrokerDown):
            with self.cond:
                self.at[e.broker] = e.timestamp
                self.source[e.broker] = e.source
                self.cond.notify_all()

    def wait(self, broker: int, timeout: float) -> float:
        with self.cond:
            self.cond.wait_for(lambda: broker in self.at, timeout)
            return self.at.pop(broker)


def summary(xs: list[float]) -> dict[str, float]:
    return {"n": len(xs), "p50": round(statistics.median(xs), 3), "max": round(max(xs), 3), "min": round(min(xs), 3)}


def detection(kills: int) -> dict[str, Any]:
    with LocalCluster(tempfile.mkdtemp(prefix="bench-mon-"), brokers=3) as cluster:
        create_topic(cluster.bootstrap_servers, "bench", 6, 3)
        both = ReplicaMonitor(cluster.profile).start()
        admin = ReplicaMonitor(cluster.bootstrap_servers, poll_interval=1.0).start()
        d_both, d_admin = FirstDown(), FirstDown()
        both.subscribe(d_both)
        admin.subscribe(d_admin)
        lat_both: list[float] = []
        lat_admin: list[float] = []
        sources: list[str] = []
        for i in range(kills):
            victim = i % 3 + 1
            t0 = time.time()
            cluster.kill_broker(victim)
            lat_both.append(d_both.wait(victim, 60) - t0)
            sources.append(d_both.source.get(victim, "?"))
            lat_admin.append(d_admin.wait(victim, 60) - t0)
            print(f"kill {i + 1}: broker {victim}: zk+admin {lat_both[-1]:.2f}s ({sources[-1]}), admin-only {lat_admin[-1]:.2f}s", flush=True)
            cluster.start_broker(victim)
            both.wait_for(lambda h: h.counts.under_replicated == 0 and len(h.live_brokers) == 3, 120)
            admin.wait_for(lambda h: len(h.live_brokers) == 3, 60)
        both.stop()
        admin.stop()
    return {
        "kill_to_BrokerDown_s": summary(lat_both),
        "kill_to_BrokerDown_admin_only_s": summary(lat_admin),
        "admin_only_over_zookeeper_p50_ratio": round(statistics.median(lat_admin) / statistics.median(lat_both), 3),
        "sources": sorted(set(sources)),
    }


def failover(runs: int, grace: float) -> dict[str, Any]:
    totals: list[float] = []
    phases: list[dict[str, float]] = []
    with LocalCluster(tempfile.mkdtemp(prefix="bench-fo-"), brokers=4) as cluster:
        create_topic(cluster.bootstrap_servers, "bench", 12, 3)
        mon = ReplicaMonitor(cluster.profile).start()
        downs = FirstDown()
        mon.subscribe(downs)
        policy = FailoverPolicy(mon, cluster.bootstrap_servers, grace=grace).start()
        for i in range(runs):
            h = mon.snapshot()
            victim = max((b for b in h.live_brokers if b != h.controller_id), key=lambda b: (len(h.replicas_on(b)), b))
            n_actions = len(policy.actions)
            t0 = time.time()
            cluster.kill_broker(victim)
            down = downs.wait(victim, 60)
            mon.wait_for(lambda h: h.counts.under_replicated == 0 and not h.replicas_on(victim), 300)
            t_done = time.time()
            moved = next(a for a in policy.actions[n_actions:] if a.what == "reassign")
            totals.append(t_done - t0)
            phases.append(
                {
                    "detect": round(down - t0, 2),
                    "down_to_reassign": round(moved.timestamp - down, 2),
                    "reassign_to_0_urp": round(t_done - moved.timestamp, 2),
                    "partitions_moved": len(moved.details["moves"]),
                }
            )
            print(f"failover {i + 1}: broker {victim}: {totals[-1]:.2f}s {phases[-1]}", flush=True)
            cluster.start_broker(victim)
            mon.wait_for(lambda h: victim in h.live_brokers, 120)
        policy.stop()
        mon.stop()
    return {"grace_s": grace, "kill_to_0_under_replicated_s": summary(totals), "phases": phases}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--failovers", type=int, default=3)
    ap.add_argument("--grace", type=float, default=2.0)
    args = ap.parse_args()
    result: dict[str, Any] = {}
    if args.kills > 0:
        result["detection"] = detection(args.kills)
    if args.failovers > 0:
        result["failover"] = failover(args.failovers, args.grace)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

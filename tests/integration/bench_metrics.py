"""Lag and metrics figures (a script, not a test): run ``python tests/integration/bench_metrics.py``.

On a 3-broker local cluster with 1,000 partitions (20 topics x 50, RF 3) and 20 consumer
groups (one per topic, all 50 partitions committed):

1. Lag evaluation cost per group per poll: the Burrow rules alone (LagEvaluator.observe
   on a full window) and a whole LagTracker poll (Admin round trips included) / groups.
2. ``/metrics`` scrape time: HTTP GET of a monitor tracking the 20 groups, median of N,
   between changes (cached exposition) and right after one (everything formatted anew).

Prints a JSON summary on the last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import urllib.request

from confluent_kafka import Consumer, TopicPartition

from kafkaops.admin import create_topic
from kafkaops.local.cluster import LocalCluster
from kafkaops.ops.groups import committed_offsets, log_end_offsets
from kafkaops.ops.lag import LagEvaluator
from kafkaops.ops.metrics import serve_metrics
from kafkaops.ops.monitor import ReplicaMonitor


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--topics", type=int, default=20)
    ap.add_argument("--partitions", type=int, default=50)
    ap.add_argument("--scrapes", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as base:
        cluster = LocalCluster(base, brokers=3).start()
        try:
            profile = cluster.profile
            topics = [f"bench-{i:02d}" for i in range(args.topics)]
            for t in topics:
                create_topic(profile, t, args.partitions, 3)
            groups = [f"bench-g{i:02d}" for i in range(args.topics)]
            for g, t in zip(groups, topics):
                c = Consumer(profile.librdkafka(**{"group.id": g, "enable.auto.commit": False}))
                c.commit(offsets=[TopicPartition(t, p, 0) for p in range(args.partitions)], asynchronous=False)
                c.close()

            # 1a. the rules alone: one group's observe() on full windows
            committed = committed_offsets(profile, groups[0])
            ends = log_end_offsets(profile, committed)
            ev = LagEvaluator(window=10)
            for i in range(10):
                ev.observe(groups[0], committed, ends, now=float(i))
            n = 2000
            t0 = time.perf_counter()
            for i in range(n):
                ev.observe(groups[0], committed, ends, now=10.0 + i)
            rules_us = (time.perf_counter() - t0) / n * 1e6

            with ReplicaMonitor(profile) as mon:
                tracker = mon.track_lag(groups, interval=2.0, window=10)
                mon.wait_for(lambda h: h.counts.total >= args.topics * args.partitions, 120)
                deadline = time.monotonic() + 120
                while tracker.polls < 5 and time.monotonic() < deadline:
                    time.sleep(0.5)
                poll_samples = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    tracker.poll()
                    poll_samples.append(time.perf_counter() - t0)
                server = serve_metrics(mon, 0, address="127.0.0.1")
                try:
                    scrapes, fresh, size = [], [], 0
                    for i in range(2 * args.scrapes):
                        if i % 2:  # every other scrape formats everything anew (as after a change)
                            server.collector._rendered.clear()  # noqa: SLF001 - a benchmark's look inside
                        t0 = time.perf_counter()
                        with urllib.request.urlopen(server.url, timeout=30) as r:
                            size = len(r.read())
                        (fresh if i % 2 else scrapes).append(time.perf_counter() - t0)
                finally:
                    server.stop()
                partitions = mon.snapshot().counts.total
            summary = {
                "partitions": partitions, "groups": len(groups), "group_partitions": len(committed),
                "rules_per_group_us": round(rules_us, 1),
                "poll_per_group_ms_p50": round(statistics.median(poll_samples) / len(groups) * 1000, 2),
                "poll_all_groups_s_p50": round(statistics.median(poll_samples), 3),
                "scrape_cached_ms_p50": round(statistics.median(scrapes) * 1000, 1),
                "scrape_after_change_ms_p50": round(statistics.median(fresh) * 1000, 1),
                "scrape_after_change_ms_max": round(max(fresh) * 1000, 1),
                "metrics_bytes": size,
            }
            print(json.dumps(summary))
        finally:
            cluster.destroy()


if __name__ == "__main__":
    main()

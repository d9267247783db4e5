"""Producer-side load per partition and per leader broker, for the LeastLoaded partitioner.

The main signal is *in flight*: records handed to the producer and not yet
acknowledged, counted per partition and per leader from the produce and delivery
callbacks. By Little's law it grows with both the send rate and the broker's
latency, so a slow or paused leader accumulates in-flight records within
milliseconds, long before any statistics arrive. librdkafka statistics
(``statistics.interval.ms``: per broker ``outbuf_msg_cnt``, ``waitresp_msg_cnt``,
``rtt``) can be blended in with weights (off by default: they are up to one interval
old, and they also count records this tracker did not place).

Thread-safe: one lock around every update; counts never go below zero.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from kafkaops.clients.metadata import TopicView


class LoadTracker:
    """In-flight counts per (topic, partition) and per leader, plus optional stats blending."""

    def __init__(self, stats_weight: float = 0.0, rtt_weight: float = 0.0) -> None:
        self.stats_weight = stats_weight
        """Weight of the broker's queued records from statistics (outbuf + waitresp)."""
        self.rtt_weight = rtt_weight
        """Load added per millisecond of the broker's average round-trip time (statistics)."""
        self.lock = threading.Lock()
        self._partition: dict[str, list[int]] = {}
        self._leaders: dict[str, tuple[int, ...]] = {}
        self._leader: dict[int, int] = {}
        self._stats_load: dict[int, float] = {}

    # ------------------------------------------------------------------ updates
    def track(self, view: TopicView) -> None:
        """Follow a topic's leaders; in-flight counts move with a partition to its new leader."""
        with self.lock:
            counts = self._partition.get(view.topic)
            if counts is None:
                counts = self._partition[view.topic] = [0] * view.partition_count
            elif len(counts) < view.partition_count:
                counts.extend([0] * (view.partition_count - len(counts)))
            old = self._leaders.get(view.topic, ())
            for p, n in enumerate(counts):
                before = old[p] if p < len(old) else -1
                after = view.leaders[p] if p < len(view.leaders) else -1
                if n and before != after:
                    self._add(before, -n)
                    self._add(after, n)
            self._leaders[view.topic] = view.leaders

    def sent(self, topic: str, partition: int) -> None:
        """A record was handed to the producer for this partition."""
        with self.lock:
            self.sent_locked(topic, partition)

    def sent_locked(self, topic: str, partition: int) -> None:
        """:meth:`sent` for a caller already holding :attr:`lock`."""
        counts = self._partition.get(topic)
        if counts is None or partition < 0 or partition >= len(counts):
            return
        counts[partition] += 1
        leader = self._leaders[topic][partition]
        self._leader[leader] = self._leader.get(leader, 0) + 1

    def done(self, topic: str, partition: int) -> None:
        """A record for this partition was acknowledged or failed (or never sent)."""
        with self.lock:
            counts = self._partition.get(topic)
            if counts is None or partition < 0 or partition >= len(counts) or counts[partition] <= 0:
                return
            counts[partition] -= 1
            self._add(self._leaders[topic][partition], -1)

    def on_stats(self, stats: str | Mapping[str, Any]) -> None:
        """Take librdkafka statistics JSON: per broker queued records and rtt (microseconds)."""
        data = json.loads(stats) if isinstance(stats, str) else stats
        loads: dict[int, float] = {}
        for b in data.get("brokers", {}).values():
            node = int(b.get("nodeid", -1))
            if node < 0:
                continue
            queued = float(b.get("outbuf_msg_cnt", 0)) + float(b.get("waitresp_msg_cnt", 0))
            rtt_ms = float((b.get("rtt") or {}).get("avg", 0)) / 1000.0
            loads[node] = self.stats_weight * queued + self.rtt_weight * rtt_ms
        with self.lock:
            self._stats_load = loads

    # ------------------------------------------------------------------ choices
    def pick(self, view: TopicView, tick: int) -> int:
        """The least-loaded leader's least-loaded available partition, counted as sent.

        Leaders are scanned starting at ``tick`` (mod their number) and partitions of
        the chosen leader likewise, keeping the first strict minimum: ties go round robin.
        """
        leaders = view.leader_ids
        topic = view.topic
        with self.lock:
            counts = self._partition.get(topic)
            if not leaders or counts is None:
                choices = view.choices
                p = choices[tick % len(choices)]
                self.sent_locked(topic, p)
                return p
            leader_load = self._leader
            stats = self._stats_load
            n = len(leaders)
            best = leaders[tick % n]
            best_load = leader_load.get(best, 0) + stats.get(best, 0.0)
            for j in range(1, n):
                b = leaders[(tick + j) % n]
                load = leader_load.get(b, 0) + stats.get(b, 0.0)
                if load < best_load:
                    best, best_load = b, load
            parts = view.by_leader[best]
            m = len(parts)
            p = parts[tick % m]
            if m > 1:
                low = counts[p]
                for j in range(1, m):
                    q = parts[(tick + j) % m]
                    if counts[q] < low:
                        p, low = q, counts[q]
            counts[p] += 1
            leader_load[best] = leader_load.get(best, 0) + 1
            return p

    def pick_of_two(self, view: TopicView, a: int, b: int) -> int:
        """Power of two choices: of partitions ``a`` and ``b``, the one whose leader
        (then the partition itself) has less load, counted as sent; ``a`` on a tie."""
        topic = view.topic
        with self.lock:
            counts = self._partition.get(topic)
            if counts is None:
                return a
            la, lb = view.leaders[a], view.leaders[b]
            sa = self._leader.get(la, 0) + self._stats_load.get(la, 0.0)
            sb = self._leader.get(lb, 0) + self._stats_load.get(lb, 0.0)
            p = b if (sb, counts[b]) < (sa, counts[a]) else a
            self.sent_locked(topic, p)
            return p

    # ------------------------------------------------------------------ reads
    def inflight(self, topic: str, partition: int) -> int:
        counts = self._partition.get(topic)
        return counts[partition] if counts is not None and 0 <= partition < len(counts) else 0

    def leader_inflight(self, broker: int) -> int:
        return self._leader.get(broker, 0)

    def leader_load(self, broker: int) -> float:
        """The score LeastLoaded minimises: in flight plus the weighted statistics."""
        return self._leader.get(broker, 0) + self._stats_load.get(broker, 0.0)

    def partition_counts(self, topic: str) -> list[int]:
        """The topic's in-flight counts (callers must hold :attr:`lock` to use it while others write)."""
        return self._partition.get(topic, [])

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "partitions": {t: list(c) for t, c in self._partition.items()},
                "leaders": dict(self._leader),
                "stats": dict(self._stats_load),
            }

    def _add(self, leader: int, n: int) -> None:
        value = self._leader.get(leader, 0) + n
        self._leader[leader] = value if value > 0 else 0

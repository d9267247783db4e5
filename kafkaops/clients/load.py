"""Producer-side load per partition and per leader broker, for the LeastLoaded partitioner.

The main signal is *in flight*: records handed to the producer and not yet
acknowledged, counted per partition and per leader from the produce and delivery
callbacks. By Little's law it grows with both the send rate and the broker's
latency, so a slow leader accumulates in-flight records. A second, faster signal is
*stalled*: a leader with records in flight and no delivery report for ``stall_s``
(the role of the Java producer's ``partitioner.availability.timeout.ms``, KIP-794)
counts as loaded beyond every leader that makes progress, so a frozen broker (GC
pause, hung disk) stops receiving records within ``stall_s`` even when the whole
cluster is slow. librdkafka statistics (``statistics.interval.ms``: per broker
``outbuf_msg_cnt``, ``waitresp_msg_cnt``, ``rtt``) can be blended in with weights
(off by default: they are up to one interval old and also count records this tracker
did not place).

Thread-safe: one lock around every update; counts never go below zero.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from kafkaops.clients.metadata import TopicView

STALLED = 1e9
"""Added to a stalled leader's load: it ranks after every leader that makes progress."""
STALL_CHECK_S = 0.005
"""How often ``pick`` re-evaluates which leaders are stalled."""


class LoadTracker:
    """In-flight counts per (topic, partition) and per leader, stall detection, optional stats blending."""

    def __init__(
        self,
        stats_weight: float = 0.0,
        rtt_weight: float = 0.0,
        stall_s: float | None = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stats_weight = stats_weight
        """Weight of the broker's queued records from statistics (outbuf + waitresp)."""
        self.rtt_weight = rtt_weight
        """Load added per millisecond of the broker's average round-trip time (statistics)."""
        self.stall_s = stall_s
        """A leader with records in flight and no delivery report for this long is stalled (None: off)."""
        self.clock = clock
        self.lock = threading.Lock()
        self._partition: dict[str, list[int]] = {}
        self._leaders: dict[str, tuple[int, ...]] = {}
        self._leader: dict[int, int] = {}
        self._progress: dict[int, float] = {}
        self._stats_load: dict[int, float] = {}
        self._stalled: set[int] = set()
        self._stall_due = 0.0

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
            now = self.clock()
            for p, n in enumerate(counts):
                before = old[p] if p < len(old) else -1
                after = view.leaders[p] if p < len(view.leaders) else -1
                if n and before != after:
                    self._add(before, -n)
                    self._add(after, n)
                    self._progress[after] = now
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
        n = self._leader.get(leader, 0)
        if not n:
            self._progress[leader] = self.clock()  # busy from now on: the stall clock starts
        self._leader[leader] = n + 1

    def done(self, topic: str, partition: int) -> None:
        """A record for this partition was acknowledged or failed (or never sent)."""
        now = self.clock()
        with self.lock:
            counts = self._partition.get(topic)
            if counts is None or partition < 0 or partition >= len(counts) or counts[partition] <= 0:
                return
            counts[partition] -= 1
            leader = self._leaders[topic][partition]
            n = self._leader.get(leader, 0)
            self._leader[leader] = n - 1 if n > 0 else 0
            self._progress[leader] = now
            if self._stalled:
                self._stalled.discard(leader)

    def on_stats(self, stats: str | Mapping[str, Any]) -> None:
        """Take librdkafka statistics JSON: per broker queued records and rtt (microseconds)."""
        data = json.loads(stats) if isinstance(stats, str) else stats
        loads: dict[int, float] = {}
        if self.stats_weight or self.rtt_weight:
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
    def _load_locked(self, broker: int, now: float) -> float:
        n = self._leader.get(broker, 0)
        load = n + self._stats_load.get(broker, 0.0) if self._stats_load else float(n)
        if n and self.stall_s is not None and now - self._progress.get(broker, now) > self.stall_s:
            load += STALLED
        return load

    def _check_stalls(self, now: float) -> None:
        """Recompute the stalled leaders, at most every few milliseconds (keeps ``pick`` cheap)."""
        self._stall_due = now + STALL_CHECK_S
        stall = self.stall_s
        if stall is None:
            return
        progress = self._progress
        self._stalled = {b for b, n in self._leader.items() if n and now - progress.get(b, now) > stall}

    def pick(self, view: TopicView, tick: int) -> int:
        """The least-loaded leader's least-loaded available partition, counted as sent.

        Ties go round robin: the leader (and partition) at position ``tick`` of the
        rotation wins when it is among the least loaded, else the first of them.
        """
        leaders = view.leader_ids
        now = self.clock()
        with self.lock:
            counts = self._partition.get(view.topic)
            if not leaders or counts is None:
                choices = view.choices
                p = choices[tick % len(choices)]
                self.sent_locked(view.topic, p)
                return p
            if now >= self._stall_due:
                self._check_stalls(now)
            inflight = self._leader
            get = inflight.get
            if self._stalled or self._stats_load:
                stalled = self._stalled
                stats = self._stats_load
                loads = [get(b, 0) + stats.get(b, 0.0) + (STALLED if b in stalled else 0.0) for b in leaders]
            else:
                loads = [get(b, 0) for b in leaders]
            low = min(loads)
            k = tick % len(loads)
            best = leaders[k] if loads[k] == low else leaders[loads.index(low)]
            parts = view.by_leader[best]
            p = parts[tick % len(parts)]
            if counts[p] and len(parts) > 1:
                q = min(parts, key=counts.__getitem__)
                if counts[q] < counts[p]:
                    p = q
            counts[p] += 1
            n = get(best, 0)
            if not n:
                self._progress[best] = now
            inflight[best] = n + 1
            return p

    def pick_of_two(self, view: TopicView, a: int, b: int) -> int:
        """Power of two choices: of partitions ``a`` and ``b``, the one whose leader
        (then the partition itself) has less load, counted as sent; ``a`` on a tie."""
        topic = view.topic
        now = self.clock()
        with self.lock:
            counts = self._partition.get(topic)
            if counts is None:
                return a
            sa = self._load_locked(view.leaders[a], now)
            sb = self._load_locked(view.leaders[b], now)
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
        """The score LeastLoaded minimises: in flight, weighted statistics, and the stall penalty."""
        with self.lock:
            return self._load_locked(broker, self.clock())

    def stalled(self) -> set[int]:
        """Leaders with records in flight and no delivery report for ``stall_s``."""
        return {b for b in list(self._leader) if self.leader_load(b) >= STALLED}

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

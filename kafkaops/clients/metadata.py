"""Cached partition metadata: leaders and which partitions can take writes right now.

librdkafka counts a partition as available while its leader is merely known, even
when that broker is unreachable (librdkafka issue #929). This cache does not: a
partition is *available* when it has a leader (``leader >= 0``), that broker is in
the cluster metadata, the producer's own connection to it is not down (librdkafka
statistics, ``brokers[].state``), and no delivery to it has just failed.

Metadata is fetched with the producer's ``list_topics(topic)`` once per topic,
then refreshed by a background thread every ``refresh_interval_s`` (every
``degraded_refresh_s`` while some partition is unavailable, so a new leader elected
for a dead broker's partitions is used within that time) and at once after a
delivery error. The
hot path (:meth:`MetadataCache.view`) is one dict lookup: views are immutable and
replaced whole.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

DOWN_STATES = frozenset({"DOWN", "TRY_CONNECT"})
"""librdkafka broker states that mean the connection failed (CONNECT/INIT may be a first connect)."""
QUIET_DOWN_US = 15_000_000
"""A broker DOWN for longer than librdkafka's longest reconnect backoff (10 s) is not being retried:
the connection went idle and was closed. A dead broker that librdkafka retries changes state sooner."""


@dataclass(frozen=True)
class TopicView:
    """One topic's partitions as last seen: leaders and the writable (available) subset."""

    topic: str
    leaders: tuple[int, ...]
    """Leader broker id per partition id (-1: no leader)."""
    available: tuple[int, ...]
    """Partitions whose leader is alive and reachable, in partition order."""
    by_leader: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    """Available partitions grouped by their leader."""
    leader_ids: tuple[int, ...] = ()
    """The leaders of available partitions, in order of first appearance."""

    @property
    def partition_count(self) -> int:
        return len(self.leaders)

    @property
    def choices(self) -> tuple[int, ...]:
        """Available partitions, or every partition when none is available (records then wait in queue)."""
        return self.available or tuple(range(len(self.leaders)))


def build_view(topic: str, leaders: tuple[int, ...], down: set[int] | frozenset[int], suspect: set[int] | frozenset[int] = frozenset()) -> TopicView:
    """The view of a topic given its leaders, the brokers that are down and partitions under suspicion."""
    available = tuple(
        p for p, leader in enumerate(leaders) if leader >= 0 and leader not in down and p not in suspect
    )
    by_leader: dict[int, list[int]] = {}
    for p in available:
        by_leader.setdefault(leaders[p], []).append(p)
    return TopicView(topic, leaders, available, {b: tuple(ps) for b, ps in by_leader.items()}, tuple(by_leader))


class MetadataCache:
    """Per-topic :class:`TopicView`s for one producer; see the module docstring.

    ``listeners`` are called (with the old and new view) whenever a topic's view
    changes, e.g. so a load tracker can move in-flight counts to a new leader.
    """

    def __init__(self, refresh_interval_s: float = 5.0, request_timeout_s: float = 10.0,
                 degraded_refresh_s: float = 0.5) -> None:
        self.refresh_interval_s = refresh_interval_s
        self.degraded_refresh_s = degraded_refresh_s
        self.request_timeout_s = request_timeout_s
        self._client: Any = None
        self._views: dict[str, TopicView] = {}
        self._leaders: dict[str, tuple[int, ...]] = {}
        self._suspect: dict[str, set[int]] = {}
        self._metadata_brokers: set[int] | None = None
        self._stats_down: set[int] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed_at: dict[str, float] = {}
        self._misses: dict[str, int] = {}
        self.listeners: list[Callable[[TopicView | None, TopicView], None]] = []
        self.refreshes = 0

    # ------------------------------------------------------------------ wiring
    def bind(self, client: Any) -> None:
        """Use this client's ``list_topics`` (a confluent_kafka Producer or AdminClient)."""
        self._client = client

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.request_timeout_s + 1)

    # ------------------------------------------------------------------ reads
    def view(self, topic: str) -> TopicView | None:
        """The topic's current view; fetched synchronously the first time (None if unknown)."""
        v = self._views.get(topic)
        if v is not None:
            return v
        return self._first_fetch(topic)

    def _first_fetch(self, topic: str) -> TopicView | None:
        if self._client is None:
            return None
        failed = self._failed_at.get(topic)
        if failed is not None and time.monotonic() - failed < 1.0:
            return None  # do not hammer the cluster for a topic that just failed
        if not self._fetch([topic]):
            self._failed_at[topic] = time.monotonic()
            return None
        self._ensure_thread()
        return self._views.get(topic)

    @property
    def down_brokers(self) -> frozenset[int]:
        """Brokers considered down now (gone from metadata, or the producer's connection failed)."""
        return frozenset(self._down())

    # ------------------------------------------------------------------ inputs
    def on_stats(self, stats: str | Mapping[str, Any]) -> None:
        """Take librdkafka statistics (``stats_cb`` JSON): broker connection states."""
        data = json.loads(stats) if isinstance(stats, str) else stats
        down = set()
        for b in data.get("brokers", {}).values():
            node = int(b.get("nodeid", -1))
            if node < 0:
                continue  # bootstrap entries
            state = b.get("state")
            if state in ("UP", "INIT"):
                continue
            if state == "DOWN" and b.get("stateage", 0) > QUIET_DOWN_US:
                continue  # an idle connection closed long ago, not a broker refusing us: let records reconnect it
            if state in DOWN_STATES or b.get("disconnects", 0) > 0:
                down.add(node)
        if down != self._stats_down:
            log.info("broker connection states changed: down %s", sorted(down))
            self._stats_down = down
            self._rebuild_all()

    def report_error(self, topic: str, partition: int) -> None:
        """A delivery to this partition failed: skip it until the next refresh, refresh now."""
        if partition >= 0:
            with self._lock:
                suspects = self._suspect.setdefault(topic, set())
                if partition in suspects:
                    return
                suspects.add(partition)
            self._rebuild(topic)
        self._wake.set()

    def request_refresh(self) -> None:
        self._wake.set()

    def set_leaders(self, topic: str, leaders: tuple[int, ...], brokers: set[int] | None = None) -> None:
        """Install metadata directly (what a refresh does; also for callers with their own metadata)."""
        with self._lock:
            self._leaders[topic] = leaders
            if brokers is not None:
                self._metadata_brokers = set(brokers)
            self._suspect.pop(topic, None)
        self._rebuild(topic)

    # ------------------------------------------------------------------ internals
    def _down(self) -> set[int]:
        down = set(self._stats_down)
        if self._metadata_brokers is not None:
            for leaders in self._leaders.values():
                down.update(b for b in leaders if b >= 0 and b not in self._metadata_brokers)
        return down

    def _rebuild(self, topic: str) -> None:
        with self._lock:
            leaders = self._leaders.get(topic)
            if leaders is None:
                return
            new = build_view(topic, leaders, self._down(), self._suspect.get(topic, set()))
            old = self._views.get(topic)
            if old == new:
                return
            self._views[topic] = new
        if old is not None and old.available != new.available:
            log.info("topic %s: available partitions %s -> %s", topic, list(old.available), list(new.available))
        for listener in self.listeners:
            listener(old, new)

    def _rebuild_all(self) -> None:
        for topic in list(self._leaders):
            self._rebuild(topic)

    def _fetch(self, topics: list[str]) -> bool:
        ok = True
        for topic in topics:
            try:
                md = self._client.list_topics(topic, timeout=self.request_timeout_s)
            except Exception as exc:  # noqa: BLE001 - KafkaException or timeout: keep the old view
                misses = self._misses[topic] = self._misses.get(topic, 0) + 1
                level = logging.WARNING if misses == 3 else logging.INFO  # a busy cluster misses one now and then
                log.log(level, "metadata for %s not refreshed (%d in a row): %s", topic, misses, exc)
                ok = False
                continue
            self._misses.pop(topic, None)
            t = md.topics.get(topic)
            if t is None or t.error is not None or not t.partitions:
                log.warning("metadata for %s: %s", topic, t.error if t is not None else "topic not in metadata")
                ok = False
                continue
            leaders = tuple(t.partitions[p].leader if p in t.partitions else -1 for p in range(max(t.partitions) + 1))
            self.set_leaders(topic, leaders, set(md.brokers))
        self.refreshes += 1
        return ok

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kafkaops-metadata", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._closed.is_set():
            degraded = any(len(v.available) < len(v.leaders) for v in list(self._views.values()))
            self._wake.wait(min(self.refresh_interval_s, self.degraded_refresh_s) if degraded else self.refresh_interval_s)
            self._wake.clear()
            if self._closed.is_set():
                return
            self._fetch(list(self._leaders))

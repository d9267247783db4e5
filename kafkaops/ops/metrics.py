"""Prometheus metrics of a ReplicaMonitor: read from its snapshot at scrape time.

:class:`MonitorCollector` is a prometheus_client Collector: nothing is updated on the
hot path; each scrape reads the monitor's current ClusterHealth, its lag tracker's
judgements, the event counts, the failover policy's actions and (through ZooKeeper, at
most every ``playbook_refresh`` seconds) the playbook runs. Names follow kafka_exporter
where it has the metric (``kafka_brokers``, ``kafka_topic_partitions``,
``kafka_topic_partition_under_replicated_partition``, ``kafka_consumergroup_lag``, ...),
so its dashboards work; the rest are ``kafkaops_*``. :func:`serve_metrics` serves
``/metrics`` on a port of its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kafkaops.errors import KafkaopsError
from kafkaops.ops.events import Event

if TYPE_CHECKING:
    from kafkaops.coord.session import Coordinator
    from kafkaops.ops.health import ClusterHealth
    from kafkaops.ops.failover import FailoverPolicy
    from kafkaops.ops.monitor import ReplicaMonitor

log = logging.getLogger(__name__)

PlaybookRuns = Callable[[], list[dict[str, Any]]]
"""Returns the progress records of the playbooks' last runs (``playbook``, ``state``, ``updated_at``)."""


def playbook_runs_in(coordinator: Coordinator) -> PlaybookRuns:
    """The playbook progress records kept in ZooKeeper (``<root>/playbooks/runs/*``)."""
    from kazoo.exceptions import NoNodeError

    from kafkaops.ops.playbook_journal import RunJournal

    journal = RunJournal(coordinator)

    def read() -> list[dict[str, Any]]:
        try:
            names = coordinator.retry(coordinator.client.get_children, f"{journal.base}/runs")
        except NoNodeError:
            return []
        return [r for r in (journal.progress(n) for n in sorted(names)) if r is not None]

    return read


def _result_kind(result: str) -> str:
    if result in ("ok", "dry-run"):
        return result
    return "error" if result.startswith("error") else "skipped"


def _iso_seconds(value: Any) -> float | None:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


@dataclass
class _Cached:
    value: list[dict[str, Any]]
    at: float


class MonitorCollector(Collector):
    """The monitor's state as Prometheus metrics (module doc); counts events from its creation."""

    def __init__(
        self,
        monitor: ReplicaMonitor,
        *,
        policy: FailoverPolicy | None = None,
        playbook_runs: PlaybookRuns | None = None,
        playbook_refresh: float = 10.0,
    ) -> None:
        self.monitor = monitor
        self.policy = policy
        self._playbook_runs = playbook_runs
        self._playbook_refresh = playbook_refresh
        self._playbooks: _Cached | None = None
        self._lock = threading.Lock()
        self._events: Counter[str] = Counter()
        self._rendered: dict[str, tuple[object, bytes]] = {}
        self._render_lock = threading.Lock()
        self._unsubscribe = monitor.subscribe(self._count)

    def _count(self, event: Event) -> None:
        with self._lock:
            self._events[event.type] += 1

    def close(self) -> None:
        self._unsubscribe()

    def collect(self) -> Iterator[Metric]:
        """Every metric family (for a prometheus_client registry of your own)."""
        yield from self._cluster(self.monitor.snapshot())
        yield from self._lag()
        yield from self._activity()

    def render(self) -> bytes:
        """The text exposition of :meth:`collect`. The cluster's and the groups' parts are
        formatted once per monitor snapshot and per lag judgement, so scrapes between
        changes cost little (formatting dominates with thousands of partitions)."""
        health = self.monitor.snapshot()
        tracker = self.monitor.lag
        with self._render_lock:
            cluster = self._cached("cluster", health, lambda: self._cluster(health))
            lag = self._cached("lag", tracker.version if tracker else -1, self._lag)
        return cluster + lag + generate_latest(_Families(list(self._activity())))

    def _cached(self, part: str, key: object, families: Callable[[], Iterator[Metric]]) -> bytes:
        """``part`` formatted, again only when ``key`` changed (the same object, or an equal version number)."""
        hit = self._rendered.get(part)
        if hit is None or not (hit[0] is key or (isinstance(key, int) and hit[0] == key)):
            hit = self._rendered[part] = (key, generate_latest(_Families(list(families()))))
        return hit[1]

    # ------------------------------------------------------------------ brokers and partitions
    def _cluster(self, health: ClusterHealth) -> Iterator[Metric]:
        yield GaugeMetricFamily("kafka_brokers", "Number of live brokers in the Kafka cluster", len(health.live_brokers))
        up = GaugeMetricFamily("kafkaops_broker_up", "1 if the broker is alive, 0 if known but down", labels=["broker"])
        info = GaugeMetricFamily("kafka_broker_info", "Information about a live broker", labels=["address", "id"])
        for b in health.brokers.values():
            up.add_metric([str(b.id)], 1 if b.alive else 0)
            if b.alive:
                info.add_metric([f"{b.host}:{b.port}", str(b.id)], 1)
        yield up
        yield info
        yield GaugeMetricFamily("kafkaops_controller_id", "Broker id of the active controller (-1: none)",
                                -1 if health.controller_id is None else health.controller_id)
        c = health.counts
        yield GaugeMetricFamily("kafkaops_partitions", "Partitions in the cluster", c.total)
        yield GaugeMetricFamily("kafkaops_partitions_under_replicated", "Partitions whose ISR is smaller than their replica set",
                                c.under_replicated)
        yield GaugeMetricFamily("kafkaops_partitions_under_min_isr", "Partitions whose ISR is below min.insync.replicas",
                                c.under_min_isr)
        yield GaugeMetricFamily("kafkaops_partitions_offline", "Partitions without a leader", c.offline)
        yield GaugeMetricFamily("kafkaops_partitions_preferred_leader_imbalance",
                                "Partitions led by a broker other than their preferred replica", c.preferred_leader_imbalance)
        labels = ["topic", "partition"]
        per_topic: Counter[str] = Counter()
        fams = {
            "ur": GaugeMetricFamily("kafka_topic_partition_under_replicated_partition",
                                    "1 if Topic/Partition is under Replicated", labels=labels),
            "umi": GaugeMetricFamily("kafkaops_topic_partition_under_min_isr",
                                     "1 if Topic/Partition has fewer in-sync replicas than min.insync.replicas", labels=labels),
            "off": GaugeMetricFamily("kafkaops_topic_partition_offline", "1 if Topic/Partition has no leader", labels=labels),
            "leader": GaugeMetricFamily("kafka_topic_partition_leader", "Leader Broker ID of this Topic/Partition",
                                        labels=labels),
            "isr": GaugeMetricFamily("kafka_topic_partition_in_sync_replica",
                                     "Number of In-Sync Replicas for this Topic/Partition", labels=labels),
            "replicas": GaugeMetricFamily("kafka_topic_partition_replicas", "Number of Replicas for this Topic/Partition",
                                          labels=labels),
            "preferred": GaugeMetricFamily("kafka_topic_partition_leader_is_preferred",
                                           "1 if Topic/Partition is using the Preferred Broker", labels=labels),
        }
        for (topic, partition), p in health.partitions.items():
            key = [topic, str(partition)]
            per_topic[topic] += 1
            fams["ur"].add_metric(key, 1 if p.under_replicated else 0)
            fams["umi"].add_metric(key, 1 if p.under_min_isr else 0)
            fams["off"].add_metric(key, 1 if p.offline else 0)
            fams["leader"].add_metric(key, p.leader)
            fams["isr"].add_metric(key, len(p.isr))
            fams["replicas"].add_metric(key, len(p.replicas))
            fams["preferred"].add_metric(key, 1 if p.leader_is_preferred else 0)
        topics = GaugeMetricFamily("kafka_topic_partitions", "Number of partitions for this Topic", labels=["topic"])
        for topic, n in sorted(per_topic.items()):
            topics.add_metric([topic], n)
        yield topics
        yield from fams.values()

    # ------------------------------------------------------------------ consumer groups
    def _lag(self) -> Iterator[Metric]:
        tracker = self.monitor.lag
        if tracker is None:
            return
        statuses = tracker.statuses()
        tpl = ["consumergroup", "topic", "partition"]
        lag = GaugeMetricFamily("kafka_consumergroup_lag", "Current Approximate Lag of a ConsumerGroup at Topic/Partition",
                                labels=tpl)
        offset = GaugeMetricFamily("kafka_consumergroup_current_offset",
                                   "Current Offset of a ConsumerGroup at Topic/Partition", labels=tpl)
        lag_sum = GaugeMetricFamily("kafka_consumergroup_lag_sum",
                                    "Current Approximate Lag of a ConsumerGroup at Topic for all partitions",
                                    labels=["consumergroup", "topic"])
        members = GaugeMetricFamily("kafka_consumergroup_members", "Amount of members in a consumer group",
                                    labels=["consumergroup"])
        pstatus = GaugeMetricFamily("kafkaops_consumergroup_partition_status",
                                    "1 for the partition's current lag status (Burrow's rules: OK, WARN, STOP, STALL, REWIND)",
                                    labels=[*tpl, "status"])
        gstatus = GaugeMetricFamily("kafkaops_consumergroup_status",
                                    "1 for the group's current lag status (OK, WARN, ERR)", labels=["consumergroup", "status"])
        total = GaugeMetricFamily("kafkaops_consumergroup_total_lag", "Lag of the group over all its partitions",
                                  labels=["consumergroup"])
        for name, g in sorted(statuses.items()):
            sums: Counter[str] = Counter()
            for p in g.partitions:
                key = [name, p.topic, str(p.partition)]
                lag.add_metric(key, p.lag)
                offset.add_metric(key, p.committed)
                pstatus.add_metric([*key, p.status.name], 1)
                sums[p.topic] += p.lag
            for topic, s in sorted(sums.items()):
                lag_sum.add_metric([name, topic], s)
            members.add_metric([name], tracker.members.get(name, 0))
            gstatus.add_metric([name, g.status.name], 1)
            total.add_metric([name], g.total_lag)
        yield from (lag, offset, lag_sum, members, pstatus, gstatus, total)
        yield GaugeMetricFamily("kafkaops_lag_poll_seconds", "Wall time of the lag tracker's last poll of all groups",
                                tracker.poll_seconds)

    # ------------------------------------------------------------------ events, failover, playbooks
    def _activity(self) -> Iterator[Metric]:
        events = CounterMetricFamily("kafkaops_monitor_events", "Events the monitor reported, by type", labels=["type"])
        with self._lock:
            counts = dict(self._events)
        for kind, n in sorted(counts.items()):
            events.add_metric([kind], n)
        yield events
        if self.policy is not None:
            actions = CounterMetricFamily("kafkaops_failover_actions", "Failover policy actions by action and result",
                                          labels=["action", "result"])
            by: Counter[tuple[str, str]] = Counter((a.what, _result_kind(a.result)) for a in self.policy.actions)
            for (what, result), n in sorted(by.items()):
                actions.add_metric([what, result], n)
            yield actions
            yield GaugeMetricFamily("kafkaops_failover_acting", "1 if this instance's failover policy is acting (leader)",
                                    1 if self.policy.is_acting else 0)
        runs = self._playbooks_now()
        if runs is not None:
            last = GaugeMetricFamily("kafkaops_playbook_last_run", "1 for the state of each playbook's last run",
                                     labels=["playbook", "state"])
            when = GaugeMetricFamily("kafkaops_playbook_last_run_timestamp_seconds",
                                     "When each playbook's last run last changed", labels=["playbook"])
            for r in runs:
                last.add_metric([str(r.get("playbook")), str(r.get("state"))], 1)
                ts = _iso_seconds(r.get("updated_at"))
                if ts is not None:
                    when.add_metric([str(r.get("playbook"))], ts)
            yield last
            yield when

    def _playbooks_now(self) -> list[dict[str, Any]] | None:
        if self._playbook_runs is None:
            return None
        now = time.monotonic()
        if self._playbooks is None or now - self._playbooks.at >= self._playbook_refresh:
            try:
                self._playbooks = _Cached(self._playbook_runs(), now)
            except Exception:  # noqa: BLE001 - ZooKeeper away: the last known runs, or none
                log.warning("metrics: cannot read playbook runs", exc_info=True)
                return self._playbooks.value if self._playbooks else None
        return self._playbooks.value


class MetricsError(KafkaopsError):
    """The metrics endpoint could not be served (e.g. its port is taken)."""


class _Families:
    """Ready metric families, in the shape ``generate_latest`` reads (a ``collect()``)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


class _HttpServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("metrics: " + format, *args)


class MetricsServer:
    """``/metrics`` of one monitor on ``address:port`` (a thread of its own)."""

    def __init__(self, collector: MonitorCollector, port: int, address: str = "0.0.0.0") -> None:
        self.collector = collector
        try:
            self._server = make_server(address, port, self._app, server_class=_HttpServer, handler_class=_QuietHandler)
        except OSError as exc:
            collector.close()
            raise MetricsError(f"cannot serve metrics on {address}:{port}: {exc.strerror or exc}") from None
        self.port = int(self._server.server_port)
        self.address = address
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)
        self._thread.start()

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO", "/") not in ("/metrics", "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"see /metrics\n"]
        try:
            body = self.collector.render()
        except Exception as exc:  # noqa: BLE001 - a scrape error is the scraper's to see, the server goes on
            log.warning("metrics: scrape failed", exc_info=True)
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [f"{type(exc).__name__}: {exc}\n".encode()]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
        return [body]

    @property
    def url(self) -> str:
        return f"http://{'127.0.0.1' if self.address in ('0.0.0.0', '') else self.address}:{self.port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self.collector.close()


def serve_metrics(
    monitor: ReplicaMonitor,
    port: int = 9308,
    *,
    address: str = "0.0.0.0",
    policy: FailoverPolicy | None = None,
    coordinator: Coordinator | None = None,
) -> MetricsServer:
    """Serve the monitor's metrics (module doc) until ``stop()``; ``port=0`` picks a free port.
    With ``coordinator`` the playbook runs it keeps in ZooKeeper are included."""
    runs = playbook_runs_in(coordinator) if coordinator is not None else None
    return MetricsServer(MonitorCollector(monitor, policy=policy, playbook_runs=runs), port, address)

"""The metrics collector's exposition: kafka_exporter names, and caches that follow every change."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from kafkaops.ops.events import BrokerDown, Event
from kafkaops.ops.health import ClusterHealth, build_health
from kafkaops.ops.lag import LagEvaluator
from kafkaops.ops.metrics import MonitorCollector


def health(live: tuple[int, ...], isr: tuple[int, ...]) -> ClusterHealth:
    rows = [("orders", p, 1, (1, 2, 3), isr) for p in range(2)]
    return build_health({b: ("h", 9000 + b) for b in live}, 1, rows, {"orders": 2}, known_brokers=(1, 2, 3))


class FakeMonitor:
    """The two things the collector reads: a snapshot and a lag tracker (plus subscribe)."""

    def __init__(self, h: ClusterHealth) -> None:
        self.health = h
        self.lag: Any = None
        self.subscribers: list[Callable[[Event], None]] = []

    def snapshot(self) -> ClusterHealth:
        return self.health

    def subscribe(self, cb: Callable[[Event], None]) -> Callable[[], None]:
        self.subscribers.append(cb)
        return lambda: self.subscribers.remove(cb)


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text.decode()) for s in fam.samples}


def test_cluster_metrics_follow_each_snapshot() -> None:
    mon = FakeMonitor(health((1, 2, 3), (1, 2, 3)))
    col = MonitorCollector(mon)  # type: ignore[arg-type]
    s = samples(col.render())
    assert s[("kafka_brokers", ())] == 3
    assert s[("kafka_topic_partitions", (("topic", "orders"),))] == 2
    assert s[("kafka_topic_partition_under_replicated_partition", (("partition", "0"), ("topic", "orders")))] == 0
    assert s[("kafkaops_controller_id", ())] == 1
    assert s[("kafkaops_partitions_under_replicated", ())] == 0
    assert col.render() is not None and samples(col.render()) == s  # cached, same content

    mon.health = health((1, 2), (1, 2))
    s = samples(col.render())
    assert s[("kafka_brokers", ())] == 2
    assert s[("kafkaops_broker_up", (("broker", "3"),))] == 0
    assert s[("kafka_topic_partition_under_replicated_partition", (("partition", "1"), ("topic", "orders")))] == 1
    assert s[("kafkaops_partitions_under_replicated", ())] == 2
    assert s[("kafka_topic_partition_in_sync_replica", (("partition", "1"), ("topic", "orders")))] == 2


def test_lag_metrics_follow_each_judgement_and_events_are_counted() -> None:
    mon = FakeMonitor(health((1, 2, 3), (1, 2, 3)))
    ev = LagEvaluator(window=2)
    judged = {}
    tracker = SimpleNamespace(statuses=lambda: dict(judged), members={"billing": 1}, poll_seconds=0.2, version=0)
    mon.lag = tracker
    col = MonitorCollector(mon)  # type: ignore[arg-type]
    for t in (0.0, 1.0):
        judged["billing"] = ev.observe("billing", {("orders", 0): 5}, {("orders", 0): 9}, now=t)
    tracker.version = 1
    s = samples(col.render())
    key = (("consumergroup", "billing"), ("partition", "0"), ("topic", "orders"))
    assert s[("kafka_consumergroup_lag", key)] == 4
    assert s[("kafka_consumergroup_current_offset", key)] == 5
    assert s[("kafkaops_consumergroup_partition_status", (*key[:2], ("status", "STOP"), key[2]))] == 1
    assert s[("kafkaops_consumergroup_status", (("consumergroup", "billing"), ("status", "ERR")))] == 1
    assert s[("kafka_consumergroup_members", (("consumergroup", "billing"),))] == 1

    judged["billing"] = ev.observe("billing", {("orders", 0): 9}, {("orders", 0): 9}, owned=[("orders", 0)], now=2.0)
    tracker.version = 2
    for cb in mon.subscribers:
        cb(BrokerDown(3))
    s = samples(col.render())
    assert s[("kafka_consumergroup_lag", key)] == 0
    assert s[("kafkaops_consumergroup_partition_status", (*key[:2], ("status", "OK"), key[2]))] == 1
    assert ("kafkaops_consumergroup_partition_status", (*key[:2], ("status", "STOP"), key[2])) not in s
    assert s[("kafkaops_monitor_events_total", (("type", "BrokerDown"),))] == 1
    col.close()
    assert mon.subscribers == []


def test_failover_actions_and_playbook_runs() -> None:
    from kafkaops.ops.failover_state import Action

    mon = FakeMonitor(health((1, 2, 3), (1, 2, 3)))
    policy = SimpleNamespace(is_acting=True, actions=[
        Action("reassign", "broker 3 down", "ok"), Action("reassign", "broker 2 down", "error: timed out"),
        Action("elect_preferred_leaders", "broker 3 back", "ok"), Action("skip", "x", "not the leader")])
    reads = []

    def runs() -> list[dict[str, Any]]:
        reads.append(1)
        return [{"playbook": "rolling-restart", "state": "failed", "updated_at": "2026-01-02T03:04:05.000+00:00"}]

    col = MonitorCollector(mon, policy=policy, playbook_runs=runs, playbook_refresh=60)  # type: ignore[arg-type]
    s = samples(col.render())
    assert s[("kafkaops_failover_actions_total", (("action", "reassign"), ("result", "ok")))] == 1
    assert s[("kafkaops_failover_actions_total", (("action", "reassign"), ("result", "error")))] == 1
    assert s[("kafkaops_failover_actions_total", (("action", "skip"), ("result", "skipped")))] == 1
    assert s[("kafkaops_failover_acting", ())] == 1
    assert s[("kafkaops_playbook_last_run", (("playbook", "rolling-restart"), ("state", "failed")))] == 1
    assert s[("kafkaops_playbook_last_run_timestamp_seconds", (("playbook", "rolling-restart"),))] == 1767323045.0
    col.render()
    assert len(reads) == 1  # ZooKeeper is read at most every playbook_refresh seconds

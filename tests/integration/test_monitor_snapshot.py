"""Health snapshots on the session cluster (non-destructive): Admin-API snapshot and monitor agree."""

from __future__ import annotations

from kafkaops.local.cluster import LocalCluster
from kafkaops.ops.health import cluster_health
from kafkaops.ops.monitor import ReplicaMonitor
from kafkaops.testing.plugin import TopicFactory


def test_snapshot_and_monitor_follow_new_topics(kafka_cluster: LocalCluster, kafka_topic: TopicFactory) -> None:
    strict = kafka_topic(partitions=2, replication_factor=3, config={"min.insync.replicas": "3"}, prefix="mon-strict")
    with ReplicaMonitor(kafka_cluster.bootstrap_servers, kafka_cluster.zk_connect) as mon, ReplicaMonitor(
        kafka_cluster.bootstrap_servers, poll_interval=0.5
    ) as admin_only:
        events = mon.events()
        plain = kafka_topic(partitions=4, replication_factor=3, prefix="mon-plain")  # created after start
        for m in (mon, admin_only):
            h = m.wait_for(
                lambda h: sum(p.topic == plain for p in h.partitions.values()) == 4
                and h.partitions[(strict, 0)].min_isr == 3
                and h.partitions[(plain, 0)].min_isr == 2,
                30,
            )
            assert h.live_brokers == {1, 2, 3} and h.controller_id in {1, 2, 3}
            assert all(p.healthy for p in h.partitions.values() if p.topic in (plain, strict))
        snap = cluster_health(kafka_cluster.bootstrap_servers)
        watched = mon.snapshot()
        for tp in [(plain, p) for p in range(4)] + [(strict, p) for p in range(2)]:
            a, b = snap.partitions[tp], watched.partitions[tp]
            assert (a.replicas, a.isr, a.leader, a.min_isr) == (b.replicas, b.isr, b.leader, b.min_isr)
        assert snap.counts.under_replicated == 0 and snap.to_json()["partitions"]["total"] >= 6
        mine = []  # a healthy new topic is not an event (other topics may still be recovering)
        while (e := events.get(timeout=1.0)) is not None:
            if getattr(e, "topic", None) in (plain, strict):
                mine.append(e)
        assert mine == []
    assert events.closed or events.get(timeout=5.0) is None  # the stream ends with the monitor

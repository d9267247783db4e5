"""Health snapshots on the session cluster (non-destructive): Admin-API snapshot and monitor agree
(ZooKeeper mode: ZooKeeper watches + Admin API; KRaft: the quorum + Admin API)."""

from __future__ import annotations

import pytest

from kafkaops.coord.session import Coordinator
from kafkaops.local.cluster import LocalCluster
from kafkaops.ops.health import cluster_health
from kafkaops.ops.monitor import MonitorError, ReplicaMonitor
from kafkaops.testing.plugin import TopicFactory
from kafkaops.testing.waits import wait_until


def controllers(cluster: LocalCluster) -> set[int]:
    """Who may be the controller: a broker (ZooKeeper mode) or a KRaft controller."""
    return {c.id for c in cluster.controllers} if cluster.mode == "kraft" else {b.id for b in cluster.brokers}


def test_snapshot_and_monitor_follow_new_topics(kafka_cluster: LocalCluster, kafka_topic: TopicFactory) -> None:
    strict = kafka_topic(partitions=2, replication_factor=3, config={"min.insync.replicas": "3"}, prefix="mon-strict")
    first = (ReplicaMonitor(kafka_cluster.profile) if kafka_cluster.mode == "kraft"
             else ReplicaMonitor(kafka_cluster.bootstrap_servers, zk_connect=kafka_cluster.zk_connect))
    with first as mon, ReplicaMonitor(kafka_cluster.bootstrap_servers, poll_interval=0.5) as admin_only:
        events = mon.events()
        plain = kafka_topic(partitions=4, replication_factor=3, prefix="mon-plain")  # created after start
        for m in (mon, admin_only):
            h = m.wait_for(
                lambda h: sum(p.topic == plain for p in h.partitions.values()) == 4
                and h.partitions[(strict, 0)].min_isr == 3
                and h.partitions[(plain, 0)].min_isr == 2,
                30,
            )
            assert h.live_brokers == {1, 2, 3} and h.controller_id in controllers(kafka_cluster)
            assert all(p.healthy for p in h.partitions.values() if p.topic in (plain, strict))
        snap = cluster_health(kafka_cluster.profile)
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


@pytest.mark.zookeeper_mode  # the ZooKeeper source's watches on a shared session
def test_monitor_on_a_coordinator_it_does_not_own(kafka_cluster: LocalCluster, kafka_topic: TopicFactory) -> None:
    with Coordinator(kafka_cluster.profile) as coord:
        client = coord.client
        mon = ReplicaMonitor(kafka_cluster.bootstrap_servers, coordinator=coord).start()
        try:
            assert mon.zk_connect == kafka_cluster.zk_connect and mon.zookeeper_connected
            before = mon.snapshot()
            assert before.live_brokers == {1, 2, 3} and before.controller_id in {1, 2, 3}
        finally:
            mon.stop()
        # the session outlives the monitor: still usable, and the monitor's watches end at their next event
        assert coord.started and client.exists("/") is not None
        listeners = len(client.state_listeners)
        kafka_topic(partitions=1, replication_factor=1, prefix="mon-after-stop")  # fires the topics watch
        wait_until(lambda: len(client.state_listeners) < listeners, 30, "the stopped monitor's topics watch to end")
        assert mon.snapshot() is before  # a stopped monitor's model does not move


def test_wrong_chroot_is_a_clear_error(kafka_cluster: LocalCluster) -> None:
    with pytest.raises(MonitorError, match="no /nowhere/brokers/ids in ZooKeeper .*brokers' chroot"):
        ReplicaMonitor(zk_connect=kafka_cluster.zk_hosts + "/nowhere").start(timeout=30)

"""ReplicaMonitor across a ZooKeeper restart: Admin polls carry on, ZooKeeper's view is re-read.

One cluster of the test's own (destructive): its single ZooKeeper node is stopped and
started again. Sessions live in ZooKeeper's data, so the brokers keep theirs if they
reconnect in time; whether they did is read from ZooKeeper afterwards (a broker that
lost its session registers anew, with a new czxid), and the monitor must report
exactly that.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kafkaops.coord.session import Coordinator
from kafkaops.local.cluster import LocalCluster
from kafkaops.ops.events import BrokerDown, BrokerUp, Event
from kafkaops.ops.health import cluster_health
from kafkaops.ops.monitor import ReplicaMonitor
from kafkaops.testing.plugin import TopicFactory
from kafkaops.testing.waits import wait_until


pytestmark = pytest.mark.zookeeper_mode  # the ZooKeeper source across a ZooKeeper restart


def registrations(cluster: LocalCluster) -> dict[int, int]:
    """Each live broker's registration in ZooKeeper: the czxid of its /brokers/ids znode."""
    with Coordinator(cluster.profile) as coord:
        ids = cluster.chroot + "/brokers/ids"
        return {int(b): coord.client.exists(f"{ids}/{b}").czxid for b in coord.client.get_children(ids)}


def test_zookeeper_restart_is_followed_by_a_fresh_view(
    fresh_kafka_cluster: LocalCluster, fresh_topic_factory: Callable[[LocalCluster], TopicFactory]
) -> None:
    cluster = fresh_kafka_cluster
    topic = fresh_topic_factory(cluster)(partitions=3, replication_factor=3, prefix="zkr")
    seen: list[Event] = []
    with ReplicaMonitor(cluster.profile, poll_interval=0.5) as mon:
        mon.subscribe(seen.append)
        mon.wait_for(lambda h: sum(p.topic == topic for p in h.partitions.values()) == 3 and h.counts.under_replicated == 0, 60)
        before = registrations(cluster)
        assert set(before) == {1, 2, 3}

        cluster.stop_zookeeper(1)
        wait_until(lambda: not mon.zookeeper_connected, 60, "the monitor to see its ZooKeeper session suspended")
        cluster.start_zookeeper(1)
        wait_until(lambda: mon.zookeeper_connected, 120, "the monitor's ZooKeeper session back")
        after = registrations(cluster)
        # the monitor reports a broker down and up only if it really lost its registration
        flapped = sorted(b for b in before if after.get(b) != before[b])
        assert sorted(e.broker for e in seen if isinstance(e, BrokerDown)) == flapped, [e.describe() for e in seen]
        wait_until(lambda: mon.snapshot().live_brokers == {1, 2, 3}, 60, "all brokers live in the monitor's view")
        assert sorted(e.broker for e in seen if isinstance(e, BrokerUp)) == flapped

        # the view is the cluster's, and the watches still report first
        truth = cluster_health(cluster.profile)
        wait_until(
            lambda: all(mon.snapshot().partitions[tp].isr == p.isr for tp, p in truth.partitions.items() if tp[0] == topic),
            60, "the monitor's ISRs to match metadata",
        )
        controller = mon.snapshot().controller_id
        victim = next(b for b in (3, 2, 1) if b != controller)
        n = len(seen)
        cluster.kill_broker(victim)
        wait_until(lambda: any(isinstance(e, BrokerDown) for e in seen[n:]), 60, "BrokerDown after the restart")
        downs = [e for e in seen[n:] if isinstance(e, BrokerDown)]
        assert [(e.broker, e.source) for e in downs] == [(victim, "zookeeper")]

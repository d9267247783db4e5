"""KRaft clusters (Kafka 4.x) on real JVMs: the metadata quorum, controller faults, combined
mode, and the replica monitor's quorum source. Runs in the KRaft pass (``--kafka-mode=kraft``).

The active controller is killed and paused: the other voters elect a new leader, the
cluster keeps taking acks=all writes, the monitor reports exactly one ControllerChanged
(to the new active controller) and a restarted controller catches up with the quorum.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from kafkaops.admin import admin_client, create_topic
from kafkaops.coord.session import Coordinator
from kafkaops.local.cluster import BROKER_SESSION_TIMEOUT_MS, LocalCluster
from kafkaops.ops.events import BrokerDown, ControllerChanged
from kafkaops.ops.monitor import ReplicaMonitor
from kafkaops.quorum import describe_quorum
from kafkaops.testing.plugin import TopicFactory
from kafkaops.testing.waits import wait_until
from tests.integration.test_monitor_broker_loss import Collector
from tests.kafka_io import consume_all, produce

pytestmark = pytest.mark.kraft_mode

# SIGKILL -> BrokerDown on KRaft: the controllers fence a broker whose heartbeats stop for
# broker.session.timeout.ms (6 s here); brokers learn it from the metadata log at once and
# the Admin source polls every 0.5 s. The issue allows + 1 s; as in
# test_monitor_broker_loss.py, 3 s of scheduling slack for a shared 2-core machine.
DETECTION_BOUND = BROKER_SESSION_TIMEOUT_MS / 1000 + 1.0 + 3.0


def new_leader(cluster: LocalCluster, old: int) -> int | None:
    leader = cluster.controller_id()
    return leader if leader is not None and leader != old else None


def test_quorum_and_the_zookeeper_beside_it(kafka_cluster: LocalCluster, kafka_topic: TopicFactory) -> None:
    assert kafka_cluster.mode == "kraft" and kafka_cluster.kafka_version is not None
    assert kafka_cluster.kafka_version.startswith("4.")
    quorum = describe_quorum(kafka_cluster.profile)
    assert quorum.voter_ids == (101, 102, 103) and quorum.leader_id in quorum.voter_ids
    assert sorted(m.node_id for m in quorum.observers) == [1, 2, 3]
    assert kafka_cluster.controller_id() == quorum.leader_id
    assert sorted(admin_client(kafka_cluster.profile).list_topics(timeout=10).brokers) == [1, 2, 3]
    # the profile says KRaft: a ZooKeeper for kafkaops, no brokers' chroot
    assert kafka_cluster.profile.zookeeper is not None and kafka_cluster.profile.zookeeper.kafka_chroot is None
    zk = kafka_cluster.kazoo()
    try:
        assert not zk.exists("/brokers") and not zk.exists("/kafka"), "Kafka keeps nothing in ZooKeeper on KRaft"
    finally:
        zk.stop()
    # the no-loss defaults reach topics created through the controllers
    topic = kafka_topic(partitions=3, replication_factor=3)
    coord = Coordinator(kafka_cluster.profile).start()  # kafkaops' coordination beside KRaft
    try:
        coord.client.ensure_path(f"{coord.settings.root}/kraft-test")
    finally:
        coord.stop()
    values = [f"k-{i}".encode() for i in range(300)]
    assert sorted(produce(kafka_cluster.bootstrap_servers, topic, values)) == sorted(values)


def test_active_controller_killed_and_paused_monitor_reports_each_change_once(
    fresh_kafka_cluster: LocalCluster, fresh_topic_factory: Callable[[LocalCluster], TopicFactory]
) -> None:
    cluster = fresh_kafka_cluster
    topic = fresh_topic_factory(cluster)(partitions=3, replication_factor=3)
    with ReplicaMonitor(cluster.profile, poll_interval=0.5) as mon:
        assert mon.kraft and not mon.zookeeper_connected  # the quorum source, no ZooKeeper watches
        events = Collector()
        mon.subscribe(events)
        first = mon.snapshot().controller_id
        assert first == describe_quorum(cluster.profile).leader_id and first in (101, 102, 103)

        # SIGKILL the active controller: a new leader, one ControllerChanged, writes go on
        cluster.kill_controller(first)
        second = wait_until(lambda: new_leader(cluster, first), 60, "a new active controller")
        wait_until(lambda: events.of(ControllerChanged), 30, "ControllerChanged")
        (changed,) = events.of(ControllerChanged)
        assert (changed.previous, changed.controller, changed.source) == (first, second, "quorum")
        values = [f"a-{i}".encode() for i in range(200)]
        assert sorted(produce(cluster.bootstrap_servers, topic, values)) == sorted(values)

        # start it again: start_controller returns once it has caught up with the quorum (or raises)
        cluster.start_controller(first)
        assert cluster.controller(first).alive and first in describe_quorum(cluster.profile).voter_ids
        # SIGSTOP the new active controller: the others elect again; SIGCONT: it rejoins as a follower
        cluster.pause_controller(second)
        third = wait_until(lambda: new_leader(cluster, second), 60, "a leader other than the paused one")
        wait_until(lambda: len(events.of(ControllerChanged)) == 2, 30, "the second ControllerChanged")
        assert events.of(ControllerChanged)[1].controller == third
        cluster.resume_controller(second)
        cluster.wait_controller_caught_up(second, 60)
        more = [f"b-{i}".encode() for i in range(200)]
        assert sorted(produce(cluster.bootstrap_servers, topic, more)) == sorted(more)
        assert sorted(consume_all(cluster.bootstrap_servers, topic, 400)) == sorted(values + more)
        time.sleep(2)  # several quorum polls: no further change is reported
        assert [(e.previous, e.controller) for e in events.of(ControllerChanged)] == [(first, second), (second, third)]
        assert not events.of(BrokerDown)

        # a killed broker is fenced after the broker session timeout and reported once
        killed_at = time.time()
        cluster.kill_broker(3)
        wait_until(lambda: events.of(BrokerDown), 30, "BrokerDown")
        (down,) = events.of(BrokerDown)
        latency = down.timestamp - killed_at
        print(f"\nKRaft kill -> BrokerDown: {latency:.2f}s (source {down.source})")
        assert down.broker == 3 and down.source == "admin"
        assert latency <= DETECTION_BOUND, f"BrokerDown after {latency:.2f}s"


def test_combined_mode_runs_controllers_inside_brokers(cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = cluster_factory(mode="kraft", brokers=3, controllers=3, combined=True)
    assert [c.id for c in cluster.controllers] == [1, 2, 3] and cluster.combined
    quorum = describe_quorum(cluster.profile)
    assert quorum.voter_ids == (1, 2, 3) and quorum.leader_id in (1, 2, 3)
    topic = f"combined-{int(time.time())}"
    create_topic(cluster.profile, topic, 3, 3)
    # the active controller is also a broker: kill it, the others elect and keep serving
    cluster.kill_broker(quorum.leader_id)
    wait_until(lambda: new_leader(cluster, quorum.leader_id), 60, "a new active controller")
    values = [f"c-{i}".encode() for i in range(200)]
    assert sorted(produce(cluster.bootstrap_servers, topic, values)) == sorted(values)
    cluster.start_broker(quorum.leader_id)
    cluster.wait_controller_caught_up(quorum.leader_id, 60)

"""A network partition, which containers make easy: a broker cut off the network is
reported by the ReplicaMonitor, the other two keep taking acks=all writes, and after
it reconnects every acknowledged record is still there."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import pytest

from kafkaops.admin import create_topic
from kafkaops.ops.events import BrokerDown, BrokerUp, Event, UnderReplicated
from kafkaops.ops.monitor import ReplicaMonitor
from kafkaops.testing.containers import ContainerCluster
from kafkaops.testing.waits import wait_until
from tests.kafka_io import Writer, consume_all, full_isr


@pytest.fixture
def partition_cluster() -> Iterator[ContainerCluster]:
    cluster = ContainerCluster(brokers=3).start()
    try:
        yield cluster
    finally:
        cluster.destroy()


def reachable(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


def test_partitioned_broker_is_reported_and_no_acked_record_is_lost(partition_cluster: ContainerCluster) -> None:
    c = partition_cluster
    topic = f"part-{uuid.uuid4().hex[:8]}"
    create_topic(c.bootstrap_servers, topic, 3, 3)
    events: list[Event] = []
    monitor = ReplicaMonitor(c.bootstrap_servers, zk_connect=c.zk_connect).start(timeout=60)
    monitor.subscribe(events.append)
    writer = Writer(c.bootstrap_servers, topic)
    victim = next(b.id for b in reversed(c.brokers) if b.id != c.controller_id())
    try:
        monitor.wait_for(lambda h: h.live_brokers == {1, 2, 3} and h.counts.under_replicated == 0, 60)
        writer.start()
        wait_until(lambda: len(writer.acked) >= 200, 120, "the first acknowledged writes")

        c.disconnect_broker(victim)
        assert c.broker(victim).state == "disconnected" and not c.broker(victim).alive
        assert not reachable(c.broker(victim).address)  # the host lost it too: a real partition
        cut_at = time.monotonic()

        # ZooKeeper expires the broker's session; the monitor reports it down and its
        # partitions under-replicated
        wait_until(lambda: any(isinstance(e, BrokerDown) and e.broker == victim for e in events), 90,
                   f"the monitor to report broker {victim} down")
        print(f"\ndisconnect -> BrokerDown after {time.monotonic() - cut_at:.1f}s")
        wait_until(lambda: {e.partition for e in events if isinstance(e, UnderReplicated) and e.topic == topic}
                   == {0, 1, 2}, 90, "UnderReplicated for the topic's partitions")
        assert monitor.snapshot().live_brokers == {1, 2, 3} - {victim}
        # the two brokers left are the ISR (min.insync.replicas=2): acks=all writes go on
        during = len(writer.acked)
        wait_until(lambda: len(writer.acked) >= during + 500, 180, "acknowledged writes during the partition")

        c.reconnect_broker(victim)
        wait_until(lambda: any(isinstance(e, BrokerUp) and e.broker == victim for e in events), 180,
                   f"the monitor to report broker {victim} back")
        wait_until(lambda: full_isr(c.bootstrap_servers, topic), 180, "the broker to rejoin every ISR")
        after = len(writer.acked)
        wait_until(lambda: len(writer.acked) >= after + 200, 120, "acknowledged writes after the partition")
    finally:
        writer.stop.set()
        monitor.stop()
        if not c.broker(victim).connected:
            c.reconnect_broker(victim)
    writer.finish()  # every record acknowledged, none failed

    acked = set(writer.acked)
    assert not writer.errors and len(acked) == len(writer.acked)  # no failure, no duplicate acknowledgement
    consumed = consume_all(c.bootstrap_servers, topic, len(acked))
    got = {int(v) for v in consumed}
    lost = acked - got
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {sorted(lost)[:10]}"

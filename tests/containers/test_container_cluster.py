"""The container cluster fixture itself: brokers come up on their network addresses,
an RF-3 topic round-trips, and a killed broker comes back without losing records."""

from __future__ import annotations

import uuid

from kafkaops.admin import admin_client, create_topic
from kafkaops.testing.containers import ContainerCluster
from tests.kafka_io import consume_all, full_isr, produce, replicas_and_isr
from kafkaops.testing.waits import wait_until


def test_three_brokers_come_up_on_their_container_addresses(container_cluster: ContainerCluster) -> None:
    c = container_cluster
    md = admin_client(c.bootstrap_servers).list_topics(timeout=15)
    assert sorted(md.brokers) == [1, 2, 3]
    # each broker advertises its container's address on the cluster network
    advertised = {b.id: f"{b.host}:{b.port}" for b in md.brokers.values()}
    assert advertised == {n.id: n.address for n in c.brokers}
    assert all(n.alive and n.state == "running" for n in c.brokers + c.zookeepers)
    assert c.controller_id() in (1, 2, 3)
    zk = c.kazoo()
    try:
        assert sorted(int(i) for i in zk.get_children(f"{c.chroot}/brokers/ids")) == [1, 2, 3]
    finally:
        zk.stop()
        zk.close()
    # the containers run the configured images, on one private network
    for node in c.brokers:
        container = node.process.container
        assert container.image.tags and c.kafka_image in container.image.tags
        networks = container.attrs["NetworkSettings"]["Networks"]
        assert networks[c.network_name]["IPAddress"] == node.ip


def test_rf3_topic_round_trip(container_cluster: ContainerCluster) -> None:
    c = container_cluster
    topic = f"ct-{uuid.uuid4().hex[:8]}"
    create_topic(c.bootstrap_servers, topic, 3, 3)
    parts = replicas_and_isr(c.bootstrap_servers, topic)
    assert all(replicas == [1, 2, 3] for replicas, _ in parts.values())
    values = [f"v{i}".encode() for i in range(1000)]
    acked = produce(c.bootstrap_servers, topic, values)
    assert sorted(acked) == sorted(values)
    assert sorted(consume_all(c.bootstrap_servers, topic, len(values))) == sorted(values)


def test_killed_broker_restarts_with_its_data(container_cluster: ContainerCluster) -> None:
    c = container_cluster
    topic = f"ck-{uuid.uuid4().hex[:8]}"
    create_topic(c.bootstrap_servers, topic, 3, 3)
    before = [f"before-{i}".encode() for i in range(300)]
    produce(c.bootstrap_servers, topic, before)
    victim = 3
    try:
        c.kill_broker(victim)
        assert c.broker(victim).state == "stopped" and not c.broker(victim).alive

        def gone() -> bool:
            zk = c.kazoo()
            try:
                return str(victim) not in zk.get_children(f"{c.chroot}/brokers/ids")
            finally:
                zk.stop()
                zk.close()

        wait_until(gone, 90, f"broker {victim} to leave /brokers/ids")
        # min.insync.replicas=2: two brokers still take acks=all writes
        during = [f"during-{i}".encode() for i in range(300)]
        assert sorted(produce(c.bootstrap_servers, topic, during)) == sorted(during)
        c.start_broker(victim, wait=True, timeout=180)
        assert c.broker(victim).alive
        wait_until(lambda: full_isr(c.bootstrap_servers, topic), 180, "the restarted broker to rejoin the ISR")
    finally:
        if not c.broker(victim).process.is_running():
            c.start_broker(victim, wait=True, timeout=180)
    got = consume_all(c.bootstrap_servers, topic, len(before) + len(during))
    assert sorted(got) == sorted(before + during)

"""The local cluster on real JVMs: it comes up, keeps data through broker failures,
and leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kafkaops.admin import admin_client
from kafkaops.local.cluster import LocalCluster
from kafkaops.testing.plugin import TopicFactory, kafka_mode
from kafkaops.testing.waits import wait_until
from tests.kafka_io import consume_all, produce


def leader_of(bootstrap: str, topic: str, partition: int = 0) -> int:
    md = admin_client(bootstrap).list_topics(topic=topic, timeout=10)
    return int(md.topics[topic].partitions[partition].leader)


def isr_of(bootstrap: str, topic: str, partition: int = 0) -> list[int]:
    md = admin_client(bootstrap).list_topics(topic=topic, timeout=10)
    return sorted(md.topics[topic].partitions[partition].isrs)


def test_three_brokers_register_and_serve_metadata(kafka_cluster: LocalCluster) -> None:
    md = admin_client(kafka_cluster.bootstrap_servers).list_topics(timeout=10)
    assert sorted(md.brokers) == [1, 2, 3]
    assert all(b.alive for b in kafka_cluster.brokers)
    zk = kafka_cluster.kazoo()
    try:
        if kafka_cluster.mode == "kraft":  # a quorum of dedicated controllers; nothing of Kafka's in ZooKeeper
            assert kafka_cluster.controller_id() in (101, 102, 103)
            assert all(c.alive for c in kafka_cluster.controllers)
            assert not zk.exists("/brokers") and not zk.exists(kafka_cluster.chroot)
        else:
            assert kafka_cluster.controller_id() in (1, 2, 3)
            assert sorted(zk.get_children("/kafka/brokers/ids")) == ["1", "2", "3"]
            assert not zk.exists("/brokers"), "brokers must live under the /kafka chroot"
    finally:
        zk.stop()


def test_rf3_topic_round_trip(kafka_cluster: LocalCluster, kafka_topic: TopicFactory) -> None:
    topic = kafka_topic(partitions=3, replication_factor=3)
    md = admin_client(kafka_cluster.bootstrap_servers).list_topics(topic=topic, timeout=10)
    assert all(len(p.replicas) == 3 for p in md.topics[topic].partitions.values())
    values = [f"m-{i}".encode() for i in range(1000)]
    acked = produce(kafka_cluster.bootstrap_servers, topic, values)
    assert sorted(acked) == sorted(values)
    assert sorted(consume_all(kafka_cluster.bootstrap_servers, topic, 1000)) == sorted(values)


def test_broker_failures_lose_nothing(fresh_kafka_cluster: LocalCluster,
                                      fresh_topic_factory: Callable[[LocalCluster], TopicFactory]) -> None:
    cluster = fresh_kafka_cluster
    bootstrap = cluster.bootstrap_servers
    topic = fresh_topic_factory(cluster)(partitions=1, replication_factor=3)

    # SIGKILL the leader: acks=all still succeeds with 2 of 3 in sync, nothing acknowledged is lost
    before = produce(bootstrap, topic, [f"a-{i}".encode() for i in range(500)])
    victim = leader_of(bootstrap, topic)
    cluster.kill_broker(victim)
    assert not cluster.broker(victim).process.is_running()
    after = produce(bootstrap, topic, [f"b-{i}".encode() for i in range(500)])  # asserts no delivery error
    assert len(after) == 500
    assert leader_of(bootstrap, topic) != victim
    assert sorted(consume_all(bootstrap, topic, 1000)) == sorted(before + after)

    # start again with the same id and data: back into the ISR
    cluster.start_broker(victim)
    wait_until(lambda: victim in isr_of(bootstrap, topic), 60, f"broker {victim} back in ISR")

    # controlled shutdown (SIGTERM) and start
    other = next(b.id for b in cluster.brokers if b.id != victim)
    cluster.stop_broker(other)
    assert cluster.broker(other).state == "stopped"
    cluster.start_broker(other)
    wait_until(lambda: isr_of(bootstrap, topic) == [1, 2, 3], 60, "full ISR after stop/start")

    # pause freezes the JVM; resume brings it back serving
    cluster.pause_broker(other)
    assert cluster.broker(other).state == "paused" and not cluster.broker(other).alive
    cluster.resume_broker(other)
    assert cluster.broker(other).state == "running"
    more = produce(bootstrap, topic, [f"c-{i}".encode() for i in range(100)])
    assert len(more) == 100
    wait_until(lambda: isr_of(bootstrap, topic) == [1, 2, 3], 60, "full ISR after resume")


def _java_pids_under(path: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(path) in cmd and "java" in cmd and state != "Z":
            pids.append(int(entry.name))
    return pids


def test_jvms_die_with_their_owner(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    mode = kafka_mode(pytestconfig)
    script = (
        "import sys, time\n"
        "from kafkaops.local.cluster import LocalCluster\n"
        f"c = LocalCluster({str(tmp_path)!r}, brokers=1, mode={mode!r}, controllers=1).start()\n"
        "print('up', flush=True)\n"
        "time.sleep(600)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "up"
        # ZooKeeper + 1 broker (+ 1 KRaft controller)
        assert len(_java_pids_under(tmp_path)) == (3 if mode == "kraft" else 2)
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        wait_until(lambda: not _java_pids_under(tmp_path), 20, "JVMs to die with their owner")
    finally:
        owner.kill()
        for pid in _java_pids_under(tmp_path):
            os.kill(pid, signal.SIGKILL)


def test_stop_takes_over_brokers_restarted_elsewhere(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    mode = kafka_mode(pytestconfig)
    owner = LocalCluster(tmp_path, brokers=1, mode=mode, controllers=1).start()
    try:
        other = LocalCluster.attach(tmp_path)  # e.g. the CLI or a playbook in another process
        other.kill_broker(1)
        other.start_broker(1)
        new_pid = other.broker(1).process.pid
        assert new_pid != owner.broker(1).process.pid
        if mode == "kraft":  # and a controller
            other.kill_controller(101)
            other.start_controller(101)
            assert other.controller(101).process.pid != owner.controller(101).process.pid
        owner.stop(graceful=False)
        wait_until(lambda: not _java_pids_under(tmp_path), 20, "the restarted broker to stop too")
    finally:
        owner.destroy()
        for pid in _java_pids_under(tmp_path):
            os.kill(pid, signal.SIGKILL)

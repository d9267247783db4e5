"""A standby monitor takes over a failover its leader started, and leaves no throttle behind.

Two monitor + FailoverPolicy instances run in two processes (this file run as a script),
sharing their state through ZooKeeper (``/kafkaops/failover/``). A broker holding
replicas of a topic with data is killed; once the acting instance's znode shows its
reassignment submitted, that process is SIGKILLed mid-reassignment, with the replication
throttle it set still in force. The standby takes over when the dead instance's session
expires, resumes watching the reassignment it finds in ZooKeeper (it does not plan it
again), clears the throttle once the moves are done, and replication is whole again.
A write fenced by the dead leader's epoch (what a zombie would attempt) is refused.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from kafkaops.admin import admin_client, create_topic
from kafkaops.config import ClusterProfile
from kafkaops.coord.election import current_epoch, epoch_path
from kafkaops.coord.session import Coordinator
from kafkaops.local.cluster import LocalCluster
from kafkaops.ops.failover_state import DownBroker, FencedError, ZooKeeperFailoverStore
from kafkaops.ops.health import cluster_health
from kafkaops.ops.monitor_leadership import LEADERSHIP_NAME
from kafkaops.ops.throttle import throttles_in_force
from kafkaops.testing.waits import wait_until

THROTTLE = 100_000
"""Bytes/s per broker: slow enough that the moves outlast the acting instance."""


class Instance:
    """One monitor + policy process; its stdout is JSON lines (``started``, ``leader``, actions)."""

    def __init__(self, name: str, profile_file: Path) -> None:
        self.name = name
        self.lines: list[dict[str, Any]] = []
        self.log = profile_file.parent / f"{name}.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "--profile", str(profile_file), "--id", name],
                stdout=subprocess.PIPE, stderr=log, text=True,
            )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def said(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in list(self.lines) if d.get("type") == kind or d.get("what") == kind]

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            tail = self.log.read_text().splitlines()[-20:]
            raise AssertionError(f"instance {self.name} exited {self.proc.returncode}:\n" + "\n".join(tail))
        return True

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)


def submitted_batches(coord: Coordinator) -> list[dict[str, Any]]:
    path = coord.path("failover", "reassignments")
    if coord.client.exists(path) is None:
        return []
    docs = [json.loads(coord.client.get(f"{path}/{c}")[0]) for c in coord.client.get_children(path)]
    return [d for d in docs if d["state"] == "submitted"]


def test_standby_takes_over_mid_reassignment_and_leaves_no_throttle(
    cluster_factory: Callable[..., LocalCluster], tmp_path: Path
) -> None:
    cluster = cluster_factory(brokers=4)
    profile_file = cluster.profile.save(tmp_path / "profile.yaml")
    topic = f"takeover-{uuid.uuid4().hex[:6]}"
    create_topic(cluster.profile, topic, 8, 3)
    producer = Producer(cluster.profile.librdkafka(acks="all", **{"linger.ms": 20}))
    for i in range(8 * 2000):  # ~2 MB per partition: each new replica copies it under the throttle
        producer.produce(topic, value=b"x" * 1000, partition=i % 8)
        producer.poll(0)
    assert producer.flush(60) == 0
    coord = Coordinator(cluster.profile).start()
    instances: list[Instance] = []
    try:
        first = Instance("first", profile_file)
        instances.append(first)
        wait_until(lambda: first.alive() and first.said("leader"), 60, "the first instance to lead")
        second = Instance("second", profile_file)
        instances.append(second)
        wait_until(lambda: second.alive() and second.said("started"), 60, "the second instance to stand by")
        h = cluster_health(cluster.profile)
        victim = next(b for b in (4, 3, 2, 1) if b != h.controller_id)
        assert sum(victim in p.replicas for p in h.partitions.values() if p.topic == topic) == 6

        cluster.kill_broker(victim)
        batches = wait_until(lambda: first.alive() and submitted_batches(coord), 120, "the leader's reassignment in ZooKeeper")
        (batch,) = batches
        assert batch["throttle"] == THROTTLE and victim not in batch["brokers"]
        assert {m["partition"] for m in batch["moves"] if m["topic"] == topic} == {
            p.partition for p in h.partitions.values() if p.topic == topic and victim in p.replicas
        }
        first.kill()  # mid-reassignment: the throttle it set is still in force
        killed = time.time()
        assert not first.said("clear_throttle"), "the moves finished before the leader was killed"

        wait_until(lambda: second.alive() and second.said("resume"), 90, "the standby to take over")
        (resume,) = second.said("resume")
        assert list(resume["reassignments"]) == [batch["id"]]
        wait_until(lambda: second.alive() and second.said("clear_throttle"), 240, "the standby to clear the throttle")
        assert all(a["result"] == "ok" for a in second.said("clear_throttle")), second.lines
        assert not second.said("reassign"), "the standby resumed the reassignment instead of planning it again"

        final = wait_until(
            lambda: (s := cluster_health(cluster.profile)).counts.under_replicated == 0
            and not s.replicas_on(victim) and s,
            120, "replication whole again without the dead broker",
        )
        assert victim not in final.live_brokers  # it stayed dead
        assert submitted_batches(coord) == [] and coord.client.get_children(coord.path("failover", "reassignments")) == []
        topics = list(admin_client(cluster.profile).list_topics(timeout=15).topics)
        # brokers apply a dynamic config change when notified (ZooKeeper / the metadata log): describe shows it shortly after
        wait_until(lambda: throttles_in_force(cluster.profile, final.live_brokers, topics) == {}, 30, "no throttle left")
        elections = wait_until(lambda: second.said("elect_preferred_leaders"), 60, "preferred leaders elected")
        assert all(a["result"] == "ok" for a in elections), second.lines
        # the dead leader's epoch is fenced: a write in its name (a zombie's) changes nothing
        epoch, owner = current_epoch(coord, LEADERSHIP_NAME) or (0, "")
        assert owner == "second"
        zombie = ZooKeeperFailoverStore(coord, lambda: (epoch_path(coord, LEADERSHIP_NAME), epoch - 1))
        with pytest.raises(FencedError):
            zombie.update({victim: DownBroker(0.0)})
        assert zombie.load().brokers[victim].down_since > 0
        cleared = second.said("clear_throttle")[0]["timestamp"]
        print(f"\nleader killed -> standby resumed {resume['timestamp'] - killed:.1f}s, cleared the throttle "
              f"{cleared - resume['timestamp']:.1f}s later")
    finally:
        for instance in instances:
            instance.kill()
        coord.stop()


# --------------------------------------------------------------------------- the instance
def _instance(profile_file: str, name: str) -> None:
    """A monitor with an auto-failover policy under leader election, reporting on stdout."""
    from kafkaops.ops.failover import FailoverPolicy, MonitorLeadership
    from kafkaops.ops.monitor import ReplicaMonitor

    lock = threading.Lock()

    def say(doc: dict[str, Any]) -> None:
        with lock:
            print(json.dumps(doc), flush=True)

    profile = ClusterProfile.load(profile_file)
    assert profile.zookeeper is not None
    coordinator = Coordinator.shared(profile)
    monitor = ReplicaMonitor(profile, poll_interval=0.5).start()  # either Kafka mode: the profile says which
    leadership = MonitorLeadership(coordinator, name).start()
    FailoverPolicy(
        monitor, profile, coordinator=coordinator, grace=2, throttle=THROTTLE, leadership=leadership,
        on_action=lambda a: say(a.to_json()),
    ).start()
    say({"type": "started", "id": name})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if leadership.wait(3600):
        say({"type": "leader", "id": name})
    stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", required=True)
    parser.add_argument("--id", required=True)
    args = parser.parse_args()
    _instance(args.profile, args.id)

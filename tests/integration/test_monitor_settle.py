"""Events without noise on a real cluster: a leader's death is one LeaderChanged per partition.

A broker leads 20 partitions (replicas on all three brokers) and holds the only replica
of one more. It is killed. Two monitors (ZooKeeper + Admin API, and Admin API alone)
must report, for each of the 20, exactly one LeaderChanged from the victim to a live
broker and no PartitionOffline (clients always had a leader within the settle time);
the single-replica partition really is offline and is reported so within the settle
time + 1 s of the broker's loss being seen. Then, with a settle time longer than a broker
restart, the single-replica partition's leaderless spell (victim -> -1 -> victim) is not
reported at all, while a monitor with 1 s reports it (offline, then recovered).
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter

from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from kafkaops.admin import admin_client, wait_for_leaders
from kafkaops.local.cluster import LocalCluster
from kafkaops.ops.events import BrokerDown, Event, LeaderChanged, PartitionOffline
from kafkaops.ops.monitor import ReplicaMonitor
from kafkaops.testing.waits import wait_until

SETTLE = 1.0


class Seen:
    def __init__(self, monitor: ReplicaMonitor) -> None:
        self.lock = threading.Lock()
        self.events: list[Event] = []
        monitor.subscribe(self._on)

    def _on(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)

    def all(self) -> list[Event]:
        with self.lock:
            return list(self.events)


def create(cluster: LocalCluster, name: str, assignment: list[list[int]]) -> None:
    admin = admin_client(cluster.profile)
    admin.create_topics([NewTopic(name, num_partitions=len(assignment), replication_factor=-1, replica_assignment=assignment,
                                  config={"min.insync.replicas": str(min(2, len(assignment[0])))})])[name].result(60)
    wait_for_leaders(admin, name, len(assignment), 60, cluster.profile)


def test_killing_a_leader_of_20_partitions_reports_leader_changes_only(fresh_kafka_cluster: LocalCluster) -> None:
    cluster = fresh_kafka_cluster
    both = ReplicaMonitor(cluster.profile, settle=SETTLE).start()
    admin_only = ReplicaMonitor(cluster.bootstrap_servers, poll_interval=0.5, settle=SETTLE).start()
    try:
        controller = both.snapshot().controller_id
        victim = next(b for b in (3, 2, 1) if b != controller)
        others = [b for b in (1, 2, 3) if b != victim]
        led = f"led-{uuid.uuid4().hex[:6]}"
        single = f"single-{uuid.uuid4().hex[:6]}"
        create(cluster, led, [[victim, *others] for _ in range(20)])
        create(cluster, single, [[victim]])
        for mon in (both, admin_only):
            mon.wait_for(lambda h: sum(1 for p in h.partitions.values() if p.topic in (led, single) and p.leader == victim)
                         == 21 and h.counts.under_replicated == 0, 60)
        seen_both, seen_admin = Seen(both), Seen(admin_only)

        cluster.kill_broker(victim)
        for seen, name in ((seen_both, "zookeeper+admin"), (seen_admin, "admin only")):
            wait_until(lambda: any(isinstance(e, PartitionOffline) and e.topic == single for e in seen.all())
                       and len({e.partition for e in seen.all() if isinstance(e, LeaderChanged) and e.topic == led}) == 20,
                       90, f"{name}: the single-replica partition offline and 20 leader changes")
        settle_time = both._settler.settle  # noqa: SLF001 - the value the monitor runs with
        assert settle_time == SETTLE
        for seen, name in ((seen_both, "zookeeper+admin"), (seen_admin, "admin only")):
            events = seen.all()
            changes = [e for e in events if isinstance(e, LeaderChanged) and e.topic == led]
            assert Counter(e.partition for e in changes) == Counter(range(20)), (name, [e.describe() for e in changes])
            assert all(e.previous == victim and e.leader in others for e in changes), (name, [e.describe() for e in changes])
            offline = [e for e in events if isinstance(e, PartitionOffline)]
            assert [(e.topic, e.partition) for e in offline] == [(single, 0)], (name, [e.describe() for e in offline])
        # the real offline partition: reported within settle + 1 s of the broker's loss being seen
        (down,) = [e for e in seen_both.all() if isinstance(e, BrokerDown)]
        (off,) = [e for e in seen_both.all() if isinstance(e, PartitionOffline)]
        delay = off.timestamp - down.timestamp
        print(f"\nBrokerDown -> PartitionOffline: {delay:.2f}s (settle {SETTLE}s)")
        assert 0 <= delay <= SETTLE + 1.0, delay

        # a settle time longer than a broker restart: the single-replica partition goes
        # leaderless and comes back with the same leader; that monitor reports nothing of it
        cluster.start_broker(victim)
        both.wait_for(lambda h: h.partitions[(single, 0)].leader == victim, 90)
        patient = ReplicaMonitor(cluster.profile, settle=120.0).start()
        try:
            seen_patient = Seen(patient)
            before = len(seen_both.all())
            cluster.kill_broker(victim)
            wait_until(lambda: any(isinstance(e, BrokerDown) for e in seen_patient.all()), 60, "BrokerDown")
            both.wait_for(lambda h: h.partitions[(single, 0)].offline, 30)
            cluster.start_broker(victim)
            both.wait_for(lambda h: h.partitions[(single, 0)].leader == victim, 90)
            patient.wait_for(lambda h: victim in h.live_brokers, 30)
            again = [e.type for e in seen_both.all()[before:] if getattr(e, "topic", None) == single]
            # at 1 s the spell shows (ZooKeeper mode: LeaderChanged, PartitionOffline, LeaderChanged,
            # Recovered; KRaft also shrinks and regrows the ISR)
            assert again[0] == "LeaderChanged" and again.count("PartitionOffline") == 1 and again[-1] == "Recovered", again
            quiet = [e.describe() for e in seen_patient.all() if getattr(e, "topic", None) == single]
            assert quiet == [], quiet
            assert [e.type for e in seen_patient.all() if e.kind == "broker"] == ["BrokerDown", "BrokerUp"]
        finally:
            patient.stop()
    finally:
        both.stop()
        admin_only.stop()

"""FailoverPolicy on a real 4-broker cluster: a dead broker's replicas move to the spare.

Phase 1, dry run: the policy reports the reassignment it would make and the
cluster does not change. Phase 2, two monitor instances, each with its own ZooKeeper
session (Coordinator) and a policy keeping its state there, compete for leadership
(coord/election.py): exactly one acts; the dead broker's replicas move (throttled, then
unthrottled), under-replicated returns to 0 while the broker stays dead, replicas spread
evenly, preferred leaders are elected, and no failover state is left in ZooKeeper.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from kafkaops.admin import admin_client
from kafkaops.audit import AuditLog, parse_records, read_file, verify
from kafkaops.coord.session import Coordinator
from kafkaops.local.cluster import LocalCluster
from kafkaops.ops import reassign
from kafkaops.ops.failover import FailoverPolicy, MonitorLeadership
from kafkaops.ops.health import ClusterHealth
from kafkaops.ops.monitor import ReplicaMonitor
from kafkaops.ops.throttle import throttles_in_force
from kafkaops.testing.plugin import TopicFactory
from kafkaops.testing.waits import wait_until


def replica_sets(h: ClusterHealth, topic: str) -> dict[int, tuple[int, ...]]:
    return {p.partition: p.replicas for p in h.partitions.values() if p.topic == topic}


def test_auto_failover_moves_dead_brokers_replicas_only_leader_acts_dry_run_changes_nothing(
    own_cluster: Callable[..., LocalCluster], fresh_topic_factory: Callable[[LocalCluster], TopicFactory],
    tmp_path: Path,
) -> None:
    """On a plaintext and on a secured cluster (reassignments through kafka-python over SASL_SSL);
    each action that changed the cluster is in the audit trail."""
    cluster = own_cluster(brokers=4)
    topic = fresh_topic_factory(cluster)(partitions=8, replication_factor=3, prefix="fo")
    m1 = ReplicaMonitor(cluster.profile).start()  # ZooKeeper watches in ZooKeeper mode, the quorum on KRaft
    m2 = ReplicaMonitor(cluster.profile).start()
    c1, c2 = Coordinator(cluster.profile).start(), Coordinator(cluster.profile).start()
    l1 = MonitorLeadership(c1, "monitor-1").start()
    assert l1.wait(30)
    l2 = MonitorLeadership(c2, "monitor-2").start()
    audit = AuditLog(tmp_path / "audit.jsonl")
    policies: list[FailoverPolicy] = []
    try:
        h = m1.wait_for(lambda h: len(replica_sets(h, topic)) == 8 and h.counts.under_replicated == 0, 30)
        victim = next(b for b in (4, 3, 2, 1) if b != h.controller_id)
        before = replica_sets(h, topic)
        on_victim = {p for p, r in before.items() if victim in r}
        assert len(on_victim) == 6  # 8 partitions x RF 3 over 4 brokers

        # ---- phase 1: dry run
        dry = FailoverPolicy(m1, cluster.profile, grace=1, dry_run=True, audit=audit).start()
        policies.append(dry)
        cluster.kill_broker(victim)
        m1.wait_for(lambda h: victim in h.dead_brokers and h.counts.under_replicated >= 6, 60)
        wait_until(lambda: any(a.what == "reassign" for a in dry.actions), 30, "a dry-run reassignment report")
        (report,) = [a for a in dry.actions if a.what == "reassign"]
        assert report.result == "dry-run" and report.dry_run
        assert {k for k in report.details["moves"] if k.startswith(topic)} == {f"{topic}[{p}]" for p in on_victim}
        time.sleep(3)  # a dry run that acted would show a reassignment by now
        dry.stop()
        assert reassign.list_reassignments(cluster.profile) == {}
        assert replica_sets(m1.snapshot(), topic) == before
        assert m1.snapshot().counts.under_replicated >= 6

        # ---- phase 2: two instances, only the leader acts
        assert l1.is_leader and not l2.is_leader
        killed = time.time()
        p1 = FailoverPolicy(m1, cluster.profile, coordinator=c1, grace=2, leadership=l1, audit=audit).start()
        p2 = FailoverPolicy(m2, cluster.profile, coordinator=c2, grace=2, leadership=l2, audit=audit).start()
        policies += [p1, p2]
        h = m1.wait_for(
            lambda h: h.counts.under_replicated == 0 and not h.replicas_on(victim), 180
        )
        print(f"\npolicies started -> under-replicated 0: {time.time() - killed:.1f}s (grace 2s)")
        assert victim in h.dead_brokers  # it stayed dead
        after = replica_sets(h, topic)
        for p, reps in after.items():
            assert len(reps) == 3 and victim not in reps
            kept = [b for b in before[p] if b != victim]
            assert all(b in reps for b in kept)  # only the dead replica was replaced
        load = Counter(b for reps in after.values() for b in reps)
        assert max(load.values()) - min(load.values()) <= 1, load  # 24 replicas on 3 brokers
        assert p2.actions == []  # the standby did nothing
        moves = [a for a in p1.actions if a.what == "reassign"]
        assert len(moves) == 1 and moves[0].ok and moves[0].details["throttle_bytes_per_sec"] > 0
        wait_until(lambda: any(a.what == "clear_throttle" for a in p1.actions), 60, "throttle cleared")
        assert all(a.ok for a in p1.actions), [a.to_json() for a in p1.actions]
        # the throttle is gone again from every live broker and every topic (brokers apply a
        # dynamic config change when ZooKeeper notifies them: describe shows it shortly after)
        topics = list(admin_client(cluster.profile).list_topics(timeout=15).topics)
        wait_until(lambda: throttles_in_force(cluster.profile, h.live_brokers, topics) == {}, 30, "no throttle left")
        wait_until(lambda: any(a.what == "elect_preferred_leaders" for a in p1.actions), 60, "preferred leader election")
        m1.wait_for(lambda h: h.counts.preferred_leader_imbalance == 0, 60)
        assert p2.actions == []
        assert p1.in_flight == {} and c2.client.get_children(c2.path("failover", "reassignments")) == []
        assert list(p1.store.load().brokers) == [victim]  # still dead, its replicas handled
        assert p1.store.load().brokers[victim].handled
        # the audit trail: one record per action that changed the cluster, none for the dry run
        expected = [(f"failover.{a.what}", a.target, a.result) for a in p1.actions if a.changes_cluster]
        lines = read_file(audit.file)  # read after the actions: an action is audited before it is listed
        assert verify(lines).ok
        audited = [(r.action, r.target, r.result) for r in parse_records(lines)]
        assert audited[: len(expected)] == expected and len(expected) >= 3
        assert audited[0][0] == "failover.reassign" and {f"{topic}[{p}]" for p in on_victim} <= set(audited[0][1].split(","))
    finally:
        for policy in policies:
            policy.stop()
        l2.stop()
        l1.stop()
        c2.stop()
        c1.stop()
        m2.stop()
        m1.stop()

"""The demo's replica monitor: a broker SIGKILLed and its recovery seen as events, and
the failover policy electing preferred leaders when it returns."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from kafkaops.admin import create_topic
from kafkaops.apps.demo.steps import DemoCluster, Step, replication
from kafkaops.waits import WaitTimeout, wait_until


def monitor_steps(cluster: DemoCluster, timeout: float = 120.0) -> Iterator[Step]:
    """Kill a broker that is not the controller under the monitor's eyes, then restart it."""
    from kafkaops.ops.events import BrokerDown, Event, Recovered, UnderReplicated
    from kafkaops.ops.failover import FailoverPolicy
    from kafkaops.ops.monitor import MonitorError, ReplicaMonitor

    profile = cluster.profile
    topic = f"demo-mon-{uuid.uuid4().hex[:6]}"
    create_topic(profile, topic, partitions=3, replication_factor=replication(cluster))
    mon = ReplicaMonitor(profile).start()
    seen: list[Event] = []
    mon.subscribe(seen.append)
    policy = FailoverPolicy(mon, profile, grace=3600).start()  # elects preferred leaders on return
    try:
        h = mon.wait_for(lambda h: h.counts.under_replicated == 0, timeout)
        yield Step(
            "replica monitor",
            f"watching {len(h.live_brokers)} brokers (controller {h.controller_id}) and {h.counts.total} partitions "
            f"through ZooKeeper watches and Admin API polls; {h.counts.under_replicated} under-replicated",
        )
        victim = max(b for b in h.live_brokers if b != h.controller_id)
        killed = time.time()
        cluster.kill_broker(victim)
        try:
            h = mon.wait_for(
                lambda h: victim in h.dead_brokers and h.counts.under_replicated >= len(h.replicas_on(victim)), timeout
            )
            down = next(e for e in list(seen) if isinstance(e, BrokerDown) and e.broker == victim)
            urp = sum(1 for e in list(seen) if isinstance(e, UnderReplicated))
            yield Step(
                "monitor: broker killed",
                f"SIGKILL broker {victim}: BrokerDown after {down.timestamp - killed:.1f}s (seen by {down.source}), "
                f"{urp} UnderReplicated events, {h.counts.under_replicated} partitions under-replicated now",
            )
        except MonitorError as exc:
            yield Step("monitor: broker killed", str(exc), ok=False)
        finally:
            cluster.start_broker(victim)
        t0 = time.time()
        try:
            h = mon.wait_for(
                lambda h: h.counts.under_replicated == 0
                and all(p.leader == victim for p in h.partitions.values() if p.preferred_leader == victim),
                timeout,
            )
            recovered = sum(1 for e in list(seen) if isinstance(e, Recovered))
            try:  # the policy records its election once the call returns
                elections = wait_until(
                    lambda: [a for a in policy.actions if a.what == "elect_preferred_leaders" and a.ok],
                    10, "the failover policy's preferred leader election")
            except WaitTimeout:
                elections = []
            yield Step(
                "monitor: broker recovered",
                f"BrokerUp {victim}, {recovered} partitions Recovered {time.time() - t0:.1f}s after restart; "
                f"0 under-replicated; broker {victim} leads its preferred partitions again "
                f"({len(elections)} preferred leader election(s) by the failover policy)",
            )
        except MonitorError as exc:
            yield Step("monitor: broker recovered", str(exc), ok=False)
    finally:
        policy.stop()
        mon.stop()

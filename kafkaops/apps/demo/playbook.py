"""The demo's playbook: the shipped expand-partitions playbook, validated, planned and run
under the ZooKeeper lock, a Step per playbook step, audited."""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Iterator

from kafkaops.admin import admin_client, create_topic
from kafkaops.apps.demo.steps import DemoCluster, Step, replication


def playbook_steps(cluster: DemoCluster, partitions: int = 6, timeout: float = 300.0) -> Iterator[Step]:
    """Grow a new 3-partition topic to ``partitions`` with the expand-partitions playbook."""
    from kafkaops.audit import AuditLog
    from kafkaops.config import Settings
    from kafkaops.coord.session import Coordinator
    from kafkaops.ops import playbooks as pbs
    from kafkaops.ops.actions import ActionContext, wait_for_health
    from kafkaops.ops.brokers import LocalBrokerControl

    profile = cluster.profile
    topic = f"demo-expand-{uuid.uuid4().hex[:6]}"
    create_topic(profile, topic, partitions=3, replication_factor=replication(cluster))
    coord = Coordinator.shared(profile)
    try:
        audit = AuditLog(Settings.from_env().home / "audit" / "audit.jsonl", profile)
        ctx = ActionContext(profile, LocalBrokerControl(cluster), coord, assume_yes=True, audit=audit)
        wait_for_health(ctx, timeout)
        pb = pbs.load(pbs.find("expand-partitions"))
        plan = pbs.make_plan(pb, {"topic": topic, "partitions": str(partitions)}, pbs.cluster_facts(profile))
        yield Step("playbook: plan", f"{pb.name} validated, {len(plan.steps)} steps: " + "; ".join(s.name for s in plan.steps))
        events: queue.Queue[pbs.RunEvent | BaseException | None] = queue.Queue()
        runner = pbs.PlaybookRunner(ctx, coord, audit=audit, on_event=events.put)
        result: list[pbs.RunResult] = []

        def work() -> None:
            try:
                result.append(runner.run(plan))
                events.put(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the generator
                events.put(exc)

        threading.Thread(target=work, name="demo-playbook", daemon=True).start()
        while (e := events.get(timeout=timeout)) is not None:
            if isinstance(e, BaseException):
                yield Step("playbook: run", str(e), ok=False)
                return
            if e.kind == "done" and e.step is not None:
                yield Step(f"playbook: step {e.step.index}/{e.total}", f"{e.step.name}: {e.message}")
        have = len(admin_client(profile).list_topics(topic=topic, timeout=10).topics[topic].partitions)
        trail = runner.audit_trail(result[0].run_id)
        done = sum(r["event"] == "succeeded" for r in trail)
        yield Step(
            "playbook: finished",
            f"{topic} has {have} partitions; run {result[0].run_id}: {done} steps audited in ZooKeeper and {audit.file}",
            have == partitions and done == len(plan.steps),
        )
    finally:
        coord.stop()

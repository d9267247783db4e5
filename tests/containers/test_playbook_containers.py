"""A playbook on containers: rolling-restart through DockerBrokerControl (the ``docker``
CLI restarting the broker containers by name), under an idempotent acks=all producer.
Every broker restarted is back in every ISR, and no acknowledged record is lost."""

from __future__ import annotations

import uuid
from pathlib import Path

from kafkaops.admin import create_topic
from kafkaops.audit import AuditLog
from kafkaops.coord.session import Coordinator
from kafkaops.ops import playbooks as pbs
from kafkaops.ops.actions import ActionContext, cluster_health
from kafkaops.ops.brokers import DockerBrokerControl
from kafkaops.testing.containers import ContainerCluster
from tests.kafka_io import Writer, consume_all, full_isr
from kafkaops.testing.waits import wait_until
from tests.audit_io import playbook_steps


def test_rolling_restart_playbook_on_containers_loses_nothing(
    container_cluster: ContainerCluster, tmp_path: Path
) -> None:
    c = container_cluster
    topic = f"pb-roll-{uuid.uuid4().hex[:6]}"
    create_topic(c.bootstrap_servers, topic, 3, 3)
    control = DockerBrokerControl({b.id: b.name for b in c.brokers})
    audit_file = tmp_path / "audit.jsonl"
    writer = Writer(c.bootstrap_servers, topic)
    coord = Coordinator(c.zk_hosts, f"/kafkaops-test-{uuid.uuid4().hex[:8]}").start()
    try:
        writer.start()
        wait_until(lambda: len(writer.acked) >= 200, 120, "the first acknowledged writes")
        before = len(writer.acked)
        controller = cluster_health(c.profile).controller_id
        rolled = [b.id for b in c.brokers if b.id != controller][:2]  # the controller's failover adds time, not coverage
        pb = pbs.load(pbs.find("rolling-restart"))
        plan = pbs.make_plan(pb, {"brokers": ",".join(map(str, rolled))}, pbs.cluster_facts(c.profile))
        audit = AuditLog(audit_file)
        ctx = ActionContext(c.profile, control, coord, assume_yes=True, poll_interval=0.5, audit=audit)
        result = pbs.PlaybookRunner(ctx, coord, audit=audit).run(plan)
        assert result.executed == [s.index for s in plan.steps]
        during = len(writer.acked)
    finally:
        writer.finish()
        coord.client.delete(coord.root, recursive=True)
        coord.stop()
        for b in c.brokers:  # leave the session cluster whole whatever happened
            if not b.process.is_running():
                c.start_broker(b.id, wait=True, timeout=180)

    records = playbook_steps(audit_file, result.run_id)
    restarted = [r["args"]["broker"] for r in records if r["action"] == "broker_restart" and r["event"] == "succeeded"]
    assert restarted == rolled
    assert during > before, "records were acknowledged during the restarts"
    wait_until(lambda: full_isr(c.bootstrap_servers, topic), 180, "every broker back in every ISR")
    acked = set(writer.acked)
    got = {int(v) for v in consume_all(c.bootstrap_servers, topic, len(acked))}
    assert acked <= got, f"{len(acked - got)} acknowledged records lost"

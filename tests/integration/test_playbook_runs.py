"""Every shipped playbook runs to success on a real 4-broker cluster (ZooKeeper mode or
KRaft); runs are locked, resumable after SIGKILL without repeating completed steps,
audited, and a rolling restart under an idempotent acks=all producer loses nothing.

One module-scoped cluster of this file's own serves all tests (they run in file order:
the broker-failover test leaves broker 4 drained and stopped, so the rolling restart
that follows rolls all three live brokers, the controller last; on KRaft it first rolls
the three controllers one at a time, never two down, the active one last).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from kafkaops.admin import admin_client, create_topic, wait_for_leaders
from kafkaops.audit import AuditLog, parse_records, read_file
from kafkaops.coord.checkpoints import CheckpointStore
from kafkaops.coord.session import Coordinator
from kafkaops.local.cluster import LocalCluster
from kafkaops.ops import playbooks as pbs
from kafkaops.ops.actions import ActionContext, cluster_health
from kafkaops.ops.brokers import LocalBrokerControl
from kafkaops.quorum import describe_quorum
from kafkaops.testing.plugin import new_cluster
from kafkaops.testing.waits import wait_until
from tests.audit_io import playbook_steps as audit

pytestmark = pytest.mark.destructive


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[LocalCluster]:
    c: Any = new_cluster(pytestconfig, tmp_path_factory.mktemp("playbooks"), brokers=4)
    c.start()
    yield c
    c.destroy()


@pytest.fixture(scope="module")
def coord(cluster: LocalCluster) -> Iterator[Coordinator]:
    co = Coordinator(cluster.profile).start()
    yield co
    co.stop()


@pytest.fixture
def audit_file(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


def runner_for(cluster: LocalCluster, coord: Coordinator, audit_file: Path, **kw: Any) -> pbs.PlaybookRunner:
    audit_log = AuditLog(audit_file)  # the file alone: a chain of this test's own
    ctx = ActionContext(cluster.profile, LocalBrokerControl(cluster), coord, assume_yes=True, poll_interval=0.5,
                        audit=audit_log)
    return pbs.PlaybookRunner(ctx, coord, audit=audit_log, **kw)


def run(cluster: LocalCluster, coord: Coordinator, audit_file: Path, name: str, **variables: Any) -> pbs.RunResult:
    pb = pbs.load(pbs.find(name))
    plan = pbs.make_plan(pb, {k: str(v) for k, v in variables.items()}, pbs.cluster_facts(cluster.profile))
    result = runner_for(cluster, coord, audit_file).run(plan)
    assert result.executed == [s.index for s in plan.steps]
    return result


def assignment(cluster: LocalCluster, topic: str) -> dict[int, list[int]]:
    md = admin_client(cluster.bootstrap_servers).list_topics(topic=topic, timeout=15).topics[topic]
    return {p.id: list(p.replicas) for p in md.partitions.values()}


def committed(cluster: LocalCluster, group: str, topic: str, partitions: int) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": group, "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=15)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def produce(cluster: LocalCluster, topic: str, n: int, partition: int | None = None) -> None:
    p = Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all", "enable.idempotence": True})
    for i in range(n):
        if partition is None:
            p.produce(topic, value=str(i).encode())
        else:
            p.produce(topic, value=str(i).encode(), partition=partition)
    assert p.flush(30) == 0


# --------------------------------------------------------------------------- playbooks
def test_expand_partitions(cluster: LocalCluster, coord: Coordinator, audit_file: Path) -> None:
    topic = f"pb-expand-{uuid.uuid4().hex[:6]}"
    create_topic(cluster.bootstrap_servers, topic, 3, 3)
    result = run(cluster, coord, audit_file, "expand-partitions", topic=topic, partitions=6)
    assert len(assignment(cluster, topic)) == 6
    records = audit(audit_file, result.run_id)
    done = [r for r in records if r["event"] == "succeeded"]
    assert [r["action"] for r in done] == ["check_health", "confirm", "add_partitions"]
    assert all({"user", "host", "pid", "time", "args"} <= set(r) for r in records)
    zk_records = runner_for(cluster, coord, audit_file).audit_trail(result.run_id)
    assert [(r["index"], r["event"]) for r in zk_records if r["event"] != "started"] == [
        (r["index"], r["event"]) for r in records]
    assert [r["event"] for r in zk_records] == ["started", "succeeded"] * 3
    topic_changes = [r for r in parse_records(read_file(audit_file)) if r.action == "topic.alter"]
    assert [(r.target, r.args, r.result) for r in topic_changes] == [(topic, {"partitions": 6}, "ok")]
    assert runner_for(cluster, coord, audit_file).progress("expand-partitions")["state"] == "succeeded"  # type: ignore[index]


def test_failed_step_stops_the_run_and_names_it(cluster: LocalCluster, coord: Coordinator, audit_file: Path) -> None:
    topic = f"pb-shrink-{uuid.uuid4().hex[:6]}"
    create_topic(cluster.bootstrap_servers, topic, 4, 3)
    pb = pbs.parse(
        f"""
name: shrink-test
steps:
  - name: healthy
    action: check_health
  - name: shrink
    action: add_partitions
    args: {{topic: {topic}, partitions: 2}}
  - name: never
    action: create_topic
    args: {{topic: {topic}-never}}
""",
        "shrink.yaml",
    )
    runner = runner_for(cluster, coord, audit_file)
    with pytest.raises(pbs.StepFailed) as info:
        runner.run(pbs.make_plan(pb))
    msg = str(info.value)
    assert "step 2/3 'shrink' (add_partitions) failed" in msg and "cannot shrink it to 2" in msg
    record = runner.progress("shrink-test")
    assert record is not None and record["state"] == "failed" and record["status"] == {"1": "done", "2": "failed"}
    assert not any(r["index"] == 3 for r in audit(audit_file))
    (failed,) = [r for r in audit(audit_file) if r["index"] == 2]
    assert failed["event"] == "failed" and failed["result"].startswith("error: ") and "cannot shrink" in failed["result"]
    assert f"{topic}-never" not in admin_client(cluster.bootstrap_servers).list_topics(timeout=15).topics


def test_reset_consumer_group(cluster: LocalCluster, coord: Coordinator, audit_file: Path) -> None:
    topic = f"pb-reset-{uuid.uuid4().hex[:6]}"
    group = f"g-{uuid.uuid4().hex[:6]}"
    create_topic(cluster.bootstrap_servers, topic, 2, 3)
    produce(cluster, topic, 10, partition=0)
    time.sleep(0.05)
    middle = int(time.time() * 1000)
    time.sleep(0.05)
    produce(cluster, topic, 5, partition=0)
    produce(cluster, topic, 4, partition=1)
    run(cluster, coord, audit_file, "reset-consumer-group", group=group, topic=topic, to="latest")
    assert committed(cluster, group, topic, 2) == {0: 15, 1: 4}
    run(cluster, coord, audit_file, "reset-consumer-group", group=group, topic=topic, to="timestamp", timestamp=middle)
    assert committed(cluster, group, topic, 2) == {0: 10, 1: 0}
    run(cluster, coord, audit_file, "reset-consumer-group", group=group, topic=topic)  # to: earliest (default)
    assert committed(cluster, group, topic, 2) == {0: 0, 1: 0}

    member = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": group, "auto.offset.reset": "earliest"})
    member.subscribe([topic])
    try:
        def joined() -> bool:
            member.poll(0.2)
            return bool(member.assignment())

        wait_until(joined, 60, "the consumer to join the group")
        with pytest.raises(pbs.StepFailed, match=r"has 1 active member\(s\).*stop its consumers"):
            run(cluster, coord, audit_file, "reset-consumer-group", group=group, topic=topic, to="latest")
    finally:
        member.close()


def test_restore_from_checkpoint(cluster: LocalCluster, coord: Coordinator, audit_file: Path) -> None:
    topic = f"pb-ckpt-{uuid.uuid4().hex[:6]}"
    job, group = f"job-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    create_topic(cluster.bootstrap_servers, topic, 2, 3)
    produce(cluster, topic, 20)
    store = CheckpointStore(coord)
    epoch = store.claim(job, "writer")
    first = store.save(job, {(topic, 0): 3, (topic, 1): 4}, b"state-1", epoch=epoch)
    store.save(job, {(topic, 0): 9, (topic, 1): 9}, b"state-2", epoch=epoch)
    run(cluster, coord, audit_file, "restore-from-checkpoint", job=job, checkpoint=str(int(first[5:])), group=group, topic=topic)
    latest = store.latest(job)
    assert latest is not None and latest.id == first and latest.state == b"state-1"
    assert committed(cluster, group, topic, 2) == {0: 3, 1: 4}


def test_rebalance_after_add(cluster: LocalCluster, coord: Coordinator, audit_file: Path) -> None:
    topic = f"pb-rebal-{uuid.uuid4().hex[:6]}"
    layout = [[1, 2, 3], [2, 3, 1], [3, 1, 2], [1, 3, 2], [2, 1, 3], [3, 2, 1], [1, 2, 3], [2, 3, 1]]
    admin = admin_client(cluster.bootstrap_servers)
    admin.create_topics([NewTopic(topic, len(layout), replica_assignment=layout)])[topic].result(timeout=30)
    wait_for_leaders(admin, topic, len(layout), 30)
    produce(cluster, topic, 200)
    run(cluster, coord, audit_file, "rebalance-after-add", expect_brokers=4, topics=topic)
    after = assignment(cluster, topic)
    load = {b: sum(b in r for r in after.values()) for b in (1, 2, 3, 4)}
    leaders = {b: sum(r[0] == b for r in after.values()) for b in (1, 2, 3, 4)}
    assert load == {1: 6, 2: 6, 3: 6, 4: 6}, after
    assert max(leaders.values()) - min(leaders.values()) <= 1, after
    md = admin_client(cluster.bootstrap_servers).list_topics(topic=topic, timeout=15).topics[topic]
    assert all(p.leader == p.replicas[0] and len(p.isrs) == 3 for p in md.partitions.values())


def test_broker_failover(cluster: LocalCluster, coord: Coordinator, audit_file: Path) -> None:
    topic = f"pb-fail-{uuid.uuid4().hex[:6]}"
    layout = [[4, 1, 2], [1, 4, 3], [2, 3, 4], [4, 3, 1]]
    admin = admin_client(cluster.bootstrap_servers)
    admin.create_topics([NewTopic(topic, len(layout), replica_assignment=layout)])[topic].result(timeout=30)
    wait_for_leaders(admin, topic, len(layout), 30)
    produce(cluster, topic, 200)
    cluster.kill_broker(4)
    result = run(cluster, coord, audit_file, "broker-failover", broker=4)
    h = cluster_health(cluster.bootstrap_servers)
    assert not any(4 in p.replicas for p in h.partitions.values())
    assert h.counts.under_replicated == 0 and h.counts.offline == 0
    assert 4 not in h.live_brokers
    assert [r["action"] for r in audit(audit_file, result.run_id) if r["event"] == "succeeded"] == [
        "confirm", "broker_stop", "reassign_off_broker", "elect_preferred_leaders", "check_health"
    ]


def test_rolling_restart_of_every_broker_controller_last_loses_nothing(
    cluster: LocalCluster, coord: Coordinator, audit_file: Path
) -> None:
    rolling_restart_loses_nothing(cluster, coord, audit_file)


def rolling_restart_loses_nothing(cluster: LocalCluster, coord: Coordinator, audit_file: Path) -> None:
    """The shipped rolling-restart playbook restarts every live broker once, the controller last,
    while an idempotent acks=all producer writes: every acknowledged record is read back.
    (Also run on the secured cluster: test_security_features.py.)"""
    topic = f"pb-roll-{uuid.uuid4().hex[:6]}"
    create_topic(cluster.profile, topic, 3, 3)
    acked: set[str] = set()
    failed: list[str] = []
    stop = threading.Event()

    def on_delivery(err: Any, msg: Any) -> None:
        if err is None:
            acked.add(msg.value().decode())
        else:
            failed.append(str(err))

    def producer_loop() -> None:
        p = Producer(cluster.profile.librdkafka(**{
            "acks": "all", "enable.idempotence": True, "linger.ms": 5, "message.timeout.ms": 300000,
        }))
        i = 0
        while not stop.is_set():
            p.produce(topic, value=f"m-{i}".encode(), on_delivery=on_delivery)
            i += 1
            p.poll(0)
            time.sleep(0.003)  # a steady ~300 records/s: continuous, without starving the brokers of CPU
        p.flush(120)

    kraft = cluster.mode == "kraft"
    most_controllers_down = [0]

    def watch_controllers() -> None:  # KRaft: never two voters down at once
        while not stop.is_set():
            down = sum(not c.process.is_running() for c in cluster.controllers)
            most_controllers_down[0] = max(most_controllers_down[0], down)
            time.sleep(0.05)

    t = threading.Thread(target=producer_loop, daemon=True)
    t.start()
    watcher = threading.Thread(target=watch_controllers, daemon=True)
    watcher.start()
    try:
        wait_until(lambda: len(acked) >= 200, 60, "the first acknowledged records")
        before = len(acked)
        start = cluster_health(cluster.profile)
        live = sorted(start.live_brokers)
        controller = describe_quorum(cluster.profile).leader_id if kraft else start.controller_id
        assert controller is not None and len(live) >= 3
        t0 = time.monotonic()
        result = run(cluster, coord, audit_file, "rolling-restart")  # brokers: every live one, controller last
        print(f"\nrolling restart ({cluster.mode}): {time.monotonic() - t0:.1f}s")
        mid = len(acked)
    finally:
        stop.set()
        t.join(180)
        watcher.join(5)
    records = audit(audit_file, result.run_id)
    for r in records:
        if r["event"] == "succeeded":
            print(f"step {r['index']} {r['action']}: {r['duration_s']}s")  # shown with -s or on failure
    restarted = [r["args"]["broker"] for r in records if r["action"] == "broker_restart" and r["event"] == "succeeded"]
    assert sorted(restarted) == live, "every live broker was restarted, once"
    rolled = [r["args"]["node"] for r in records if r["action"] == "controller_restart" and r["event"] == "succeeded"]
    if kraft:  # the controllers first, one at a time, the active one last; then the brokers
        assert sorted(rolled) == [101, 102, 103] and rolled[-1] == controller, rolled
        last_controller = max(r["index"] for r in records if r["action"] == "controller_restart")
        assert last_controller < min(r["index"] for r in records if r["action"] == "broker_restart")
        assert most_controllers_down[0] == 1, "exactly one controller down at a time"
    else:
        assert rolled == [] and most_controllers_down[0] == 0
        assert restarted[-1] == controller, f"the controller at the start ({controller}) goes last: {restarted}"
    stored = runner_for(cluster, coord, audit_file).progress("rolling-restart")
    assert stored is not None and stored["plan"]["variables"]["brokers"] == restarted
    assert stored["plan"]["variables"]["controllers"] == rolled
    assert mid > before, "records were acknowledged during the restarts"
    assert not failed, failed[:3]

    consumer = Consumer(cluster.profile.librdkafka(**{
        "group.id": f"v-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest", "enable.auto.commit": False,
    }))
    consumer.subscribe([topic])
    seen: set[str] = set()

    def read_all() -> bool:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            seen.add(msg.value().decode())
        return acked <= seen

    try:
        wait_until(read_all, 120, "every acknowledged record to be read back", interval=0)
    finally:
        consumer.close()


# --------------------------------------------------------------------------- lock + resume, through the CLI
SLOW = """\
name: slow-test
variables:
  topic:
    type: str
steps:
  - name: create {{ topic }}
    action: create_topic
    args:
      topic: "{{ topic }}"
      partitions: 2
  - name: wait a while
    action: sleep
    args:
      seconds: 12
    gate: none
  - name: grow {{ topic }}
    action: add_partitions
    args:
      topic: "{{ topic }}"
      partitions: 4
"""


def _cli(cluster: LocalCluster, home: Path, *args: str) -> list[str]:
    exe = Path(sys.executable).parent / "kafkaops"
    profile = cluster.profile.save(home / "profile.yaml")  # says the mode: a ZooKeeper chroot, or none (KRaft)
    return [str(exe), "playbook", "run", *args, "--profile", str(profile), "--yes"]


def test_killed_run_resumes_without_repeating_steps_and_runs_exclude_each_other(
    cluster: LocalCluster, coord: Coordinator, tmp_path: Path
) -> None:
    book = tmp_path / "slow.yaml"
    book.write_text(SLOW)
    audit_path = tmp_path / "audit.jsonl"
    topic = f"pb-resume-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "KAFKAOPS_HOME": str(tmp_path / "home")}
    cmd = _cli(cluster, tmp_path, str(book), "--var", f"topic={topic}", "--audit-file", str(audit_path))
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def sleeping() -> bool:
            assert first.poll() is None, first.communicate()
            record = runner_for(cluster, coord, tmp_path / "probe.jsonl").progress("slow-test")
            return record is not None and record["status"] == {"1": "done", "2": "running"}

        wait_until(sleeping, 120, "the first run to reach its sleep step", interval=0.1)

        # a second run on the same cluster is refused at once, naming the holder
        other = pbs.parse("name: other\nsteps:\n  - name: h\n    action: check_health\n", "other.yaml")
        with pytest.raises(pbs.PlaybookLocked, match=rf"slow-test run .* \(pid {first.pid}\)"):
            runner_for(cluster, coord, tmp_path / "other.jsonl").run(pbs.make_plan(other))
        assert not (tmp_path / "other.jsonl").exists(), "the refused run did nothing"

        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    run_id = audit(audit_path)[0]["run_id"]
    assert [(r["index"], r["event"]) for r in audit(audit_path)] == [(1, "succeeded")]
    trail = runner_for(cluster, coord, tmp_path / "probe.jsonl").audit_trail(run_id)
    assert [(r["index"], r["event"]) for r in trail] == [(1, "started"), (1, "succeeded"), (2, "started")]

    resumed = subprocess.run(
        _cli(cluster, tmp_path, str(book), "--resume", "--audit-file", str(audit_path)),
        env=env, capture_output=True, text=True, timeout=180,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "skipped [1/3]" in resumed.stdout
    records = audit(audit_path, run_id)
    assert len(records) == len(audit(audit_path)), "the resumed run continues the same run id"
    succeeded = [r["index"] for r in records if r["event"] == "succeeded"]
    assert succeeded == [1, 2, 3], "each step completed exactly once"
    trail = runner_for(cluster, coord, tmp_path / "probe.jsonl").audit_trail(run_id)
    assert [r["index"] for r in trail if r["event"] == "started"] == [1, 2, 2, 3]
    created = [r for r in parse_records(read_file(audit_path)) if r.action == "topic.create"]
    assert [(r.target, r.result) for r in created] == [(topic, "ok")]
    assert len(assignment(cluster, topic)) == 4

    again = subprocess.run(
        _cli(cluster, tmp_path, str(book), "--resume"), env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 1 and "nothing to resume" in again.stderr and "Traceback" not in again.stderr


def test_dry_run_shows_plan_and_changes_nothing(cluster: LocalCluster, tmp_path: Path) -> None:
    topic = f"pb-dry-{uuid.uuid4().hex[:6]}"
    create_topic(cluster.bootstrap_servers, topic, 2, 3)
    env = {**os.environ, "KAFKAOPS_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    proc = subprocess.run(
        _cli(cluster, tmp_path, "expand-partitions", "--var", f"topic={topic}", "--var", "partitions=5", "--dry-run"),
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "add_partitions" in proc.stdout and "partitions=5" in proc.stdout and "dry run" in proc.stdout
    assert len(assignment(cluster, topic)) == 2

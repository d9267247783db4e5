"""The demo's checkpoints: the aggregate job is SIGKILLed mid-stream and restarted; it
resumes from its ZooKeeper checkpoint and its counts equal the orders produced exactly."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from confluent_kafka import Producer

from kafkaops.admin import create_topic
from kafkaops.apps.demo.steps import DemoCluster, Step, replication
from kafkaops.waits import Deadline

log = logging.getLogger(__name__)


def checkpoint_steps(cluster: DemoCluster, messages: int = 1000) -> Iterator[Step]:
    """Orders counted per customer by ``kafkaops demo aggregate`` (its own process), killed
    and restarted while orders stream in."""
    from kafkaops.coord.checkpoints import CheckpointInfo, CheckpointNotFoundError, CheckpointStore
    from kafkaops.coord.session import Coordinator

    profile = cluster.profile
    topic = f"demo-orders-{uuid.uuid4().hex[:6]}"
    job = f"demo-{topic}"
    create_topic(profile, topic, partitions=3, replication_factor=replication(cluster))
    total = max(2 * messages, 2000)
    truth: Counter[str] = Counter()
    workdir = Path(tempfile.mkdtemp(prefix="kafkaops-demo-"))
    output = workdir / "orders-per-customer.json"
    profile_file = profile.save(workdir / "profile.yaml")  # the job's own process reaches the cluster by it

    def produce_orders() -> None:
        producer = Producer(profile.librdkafka(**{"acks": "all", "enable.idempotence": True, "logger": log}))
        for i in range(total):
            customer = f"customer-{(i * 7919) % 13:02d}"
            producer.produce(topic, key=customer.encode(), value=f'{{"order": {i}}}'.encode())
            truth[customer] += 1
            if i % 100 == 99:
                producer.poll(0)
                time.sleep(0.02)  # a steady stream, so the kill lands mid-stream
        producer.flush(60)

    def aggregate(idle_exit: float | None) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "kafkaops.cli", "demo", "aggregate", "--topic", topic, "--job", job,
               "--output", str(output), "--every-records", "200", "--every-seconds", "1",
               "--profile", str(profile_file)]
        if idle_exit is not None:
            cmd += ["--idle-exit", str(idle_exit)]
        with (workdir / "aggregate.log").open("ab") as logf:
            return subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=dict(os.environ))

    coord = Coordinator.shared(profile)
    store = CheckpointStore(coord)

    def current(job: str) -> CheckpointInfo | None:
        """The job's current checkpoint header (its state may live in a backend: not read here)."""
        try:
            return store.info(job)
        except CheckpointNotFoundError:
            return None
    try:
        producer = threading.Thread(target=produce_orders, daemon=True)
        producer.start()
        proc = aggregate(None)
        deadline = Deadline(60)
        first = None
        while not deadline.expired and proc.poll() is None:
            first = current(job)
            if first is not None and sum(first.offsets.values()) > 0:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if first is None:
            yield Step("order consumer checkpoints", f"no checkpoint within 60s; see {workdir}/aggregate.log", False)
            return
        killed_at = current(job)
        assert killed_at is not None
        yield Step("order consumer checkpoints",
                   f"`kafkaops demo aggregate` counts orders per customer on {topic}; checkpoint "
                   f"{first.id} in ZooKeeper: offsets + counts, one fenced transaction")
        yield Step("kill order consumer",
                   f"SIGKILL mid-stream; last checkpoint {killed_at.id} covers "
                   f"{sum(killed_at.offsets.values())} of {total} orders (epoch {killed_at.epoch})")
        producer.join(120)
        proc = aggregate(idle_exit=3.0)
        rc = proc.wait(180)
        counts = json.loads(output.read_text()) if output.exists() else {}
        latest = current(job)
        exact = rc == 0 and counts == dict(truth)
        yield Step("order consumer resumes",
                   f"restarted from {killed_at.id}, epoch {latest.epoch if latest else '?'}; "
                   f"{sum(counts.values())} orders counted over {len(counts)} customers vs {sum(truth.values())} "
                   f"produced: {'exact, nothing lost or counted twice' if exact else 'MISMATCH'}",
                   exact)
        store.delete_job(job)
    finally:
        coord.stop()

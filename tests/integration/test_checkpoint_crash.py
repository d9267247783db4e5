"""Crash test: `kafkaops demo aggregate` is SIGKILLed several times at random moments while
keyed records (50,000 at least) are produced; after the last restart its counts equal the
true counts exactly (nothing lost, nothing counted twice)."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Producer

from kafkaops.config import ClusterProfile
from kafkaops.coord.checkpoints import CheckpointStore
from kafkaops.coord.session import Coordinator
from kafkaops.local.cluster import LocalCluster
from kafkaops.testing.plugin import TopicFactory
from kafkaops.testing.waits import wait_until

log = logging.getLogger(__name__)

RECORDS = 50_000
BATCH = 500
KILLS = 5


def produce(cluster: ClusterProfile, topic: str, seed: int, truth: Counter[str], kills_over: threading.Event,
            done: threading.Event) -> None:
    """Batches of 500 records over 100 keys every ~0.15 s (acks=all, idempotent): 50,000 at
    least, and on until the kills are over (so every killed instance had records to count),
    then one last batch for the final run."""
    rng = random.Random(seed)
    producer = Producer(cluster.librdkafka(**{"acks": "all", "enable.idempotence": True, "linger.ms": 5,
                                              "logger": log}))
    failures: list[str] = []

    def delivered(err: object, msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    def batch() -> None:
        for _ in range(BATCH):
            key = f"key-{rng.randrange(100):03d}"
            producer.produce(topic, key=key.encode(), value=b"ignored", on_delivery=delivered)
            truth[key] += 1
        producer.poll(0)
        time.sleep(0.15)

    try:
        batches = 0
        while batches < RECORDS // BATCH or not kills_over.is_set():
            batch()
            batches += 1
        batch()
        assert producer.flush(60) == 0 and not failures, failures
    finally:
        done.set()


def start_aggregate(profile: Path, topic: str, job: str, root: str, output: Path, log_file: Path,
                    idle_exit: float | None = None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "kafkaops.cli", "demo", "aggregate", "--topic", topic, "--job", job,
           "--output", str(output), "--every-records", "500", "--every-seconds", "1",
           "--profile", str(profile), "--zk-root", root]
    if idle_exit is not None:
        cmd += ["--idle-exit", str(idle_exit)]
    env = {**os.environ, "KAFKAOPS_LOG_LEVEL": "INFO"}
    with log_file.open("ab") as f:
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)


def test_aggregate_is_exactly_once_across_sigkills(
    any_cluster: LocalCluster, any_topic: TopicFactory, tmp_path: Path, profile_file: Callable[[LocalCluster], Path]
) -> None:
    """On the plaintext and on the secured cluster (the job's process reaches it through a profile file)."""
    kafka_cluster, profile = any_cluster, profile_file(any_cluster)
    topic = any_topic(partitions=3, prefix="crash")
    job = f"crash-{uuid.uuid4().hex[:6]}"
    root = f"/kafkaops-test-{uuid.uuid4().hex[:8]}"
    output, log_file = tmp_path / "counts.json", tmp_path / "aggregate.log"
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    log.info("crash test seed %d (logs in %s)", seed, log_file)
    truth: Counter[str] = Counter()
    kills_over, produced = threading.Event(), threading.Event()
    producer = threading.Thread(target=produce,
                                args=(kafka_cluster.profile, topic, seed, truth, kills_over, produced))
    producer.start()

    coord = Coordinator(kafka_cluster.profile, root=root).start()
    store = CheckpointStore(coord)

    def current() -> str | None:
        latest = store.latest(job)
        return latest.id if latest else None

    kills = 0
    try:
        while kills < KILLS:
            before = current()
            proc = start_aggregate(profile, topic, job, root, output, log_file)
            try:
                # kill at a random moment after this instance has saved a checkpoint of its own
                wait_until(lambda: current() != before or proc.poll() is not None, 90, "aggregate progress")
                assert proc.poll() is None, f"aggregate exited early (rc {proc.returncode}); see {log_file}"
                time.sleep(rng.uniform(0.0, 1.5))
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait(30)
            kills += 1
        kills_over.set()
        producer.join(120)
        assert produced.is_set() and not producer.is_alive()

        final = start_aggregate(profile, topic, job, root, output, log_file, idle_exit=5)
        assert final.wait(180) == 0, f"final run failed; see {log_file}"
        counts = json.loads(output.read_text())
        total = sum(truth.values())
        assert total >= RECORDS
        assert counts == dict(truth), (
            f"seed {seed}: {sum(counts.values())} counted vs {total} produced; "
            f"differing keys: {sorted(k for k in truth if counts.get(k) != truth[k])[:10]}")

        latest = store.latest(job)
        assert latest is not None and latest.epoch == KILLS + 1  # each restart claimed the job
        assert json.loads(latest.state or b"{}") == dict(truth)
        assert sum(latest.offsets.values()) == total
    finally:
        kills_over.set()
        produced.wait(120)
        producer.join(120)
        coord.client.delete(root, recursive=True)
        coord.stop()

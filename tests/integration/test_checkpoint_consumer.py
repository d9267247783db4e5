"""CheckpointedConsumer in-process on the session cluster: resume from the checkpoint
(not the group's offsets) and fencing of an older instance of the same job."""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from kafkaops.clients.checkpointed import CheckpointedConsumer
from kafkaops.coord.checkpoints import CheckpointStore, FencedError
from kafkaops.coord.session import Coordinator
from kafkaops.local.cluster import LocalCluster
from kafkaops.serde.codec import BytesCodec
from kafkaops.testing.plugin import TopicFactory
from kafkaops.waits import Deadline


@pytest.fixture
def store(kafka_cluster: LocalCluster) -> Iterator[CheckpointStore]:
    root = f"/kafkaops-test-{uuid.uuid4().hex[:8]}"
    with Coordinator(kafka_cluster.zk_hosts, root) as coord:
        yield CheckpointStore(coord)
        coord.client.delete(root, recursive=True)


def produce(bootstrap: str, topic: str, count: int, start: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for i in range(start, start + count):
        producer.produce(topic, key=f"k{i % 5}".encode(), value=str(i).encode())
    assert producer.flush(30) == 0


def consume(c: CheckpointedConsumer[bytes, dict[str, int]], count: int, timeout: float = 60.0) -> list[int]:
    """Count ``count`` records into c.state; returns the values seen."""
    seen: list[int] = []
    deadline = Deadline(timeout)
    while len(seen) < count:
        assert not deadline.expired, f"only {len(seen)} of {count} records within {timeout}s"
        record = c.poll(0.5)
        if record is not None:
            key = (record.key or b"").decode()
            c.state[key] = c.state.get(key, 0) + 1
            seen.append(int(record.value))
    return seen


def test_resumes_from_checkpoint_and_fences_the_older_instance(
    kafka_cluster: LocalCluster, kafka_topic: TopicFactory, store: CheckpointStore
) -> None:
    bootstrap = kafka_cluster.bootstrap_servers
    topic = kafka_topic(partitions=3, prefix="ckc")
    job = f"ckc-{uuid.uuid4().hex[:6]}"
    produce(bootstrap, topic, 300)
    sigterm = signal.getsignal(signal.SIGTERM)

    first: CheckpointedConsumer[bytes, dict[str, int]] = CheckpointedConsumer(
        store, job, kafka_cluster.profile, topic, BytesCodec(), every_records=50)
    assert signal.getsignal(signal.SIGTERM) is sigterm  # a library object leaves the process' handler alone
    seen_first = consume(first, 120)
    ckpt = first.checkpoint()
    checkpointed = dict(first.state)
    assert store.get(job, ckpt).offsets == first.offsets()
    seen_first += consume(first, 30)  # processed, in state, group offsets committed...
    first.consumer.ack()
    assert sum(first.consumer.commit().values()) == 150
    # ... but not checkpointed: a new instance resumes from the checkpoint, at 120
    second: CheckpointedConsumer[bytes, dict[str, int]] = CheckpointedConsumer(
        store, job, bootstrap, topic, BytesCodec(), every_records=50)
    try:
        assert second.epoch > first.epoch and second.checkpoint_id == ckpt
        assert second.state == checkpointed and sum(second.state.values()) == 120
        with pytest.raises(FencedError):
            first.checkpoint()
        assert first.stopped
        first.close()  # no final checkpoint from a fenced instance, no error
        assert store.latest(job).id == ckpt  # type: ignore[union-attr]

        seen_second = consume(second, 180)
        assert sorted(seen_first[:120] + seen_second) == list(range(300))  # nothing twice, nothing lost
        assert sum(second.state.values()) == 300
        produce(bootstrap, topic, 20, start=300)
        consume(second, 20)
    finally:
        second.close()
    latest = store.latest(job)
    assert latest is not None and latest.epoch == second.epoch
    assert sum(latest.offsets.values()) == 320
    assert sum(json.loads(latest.state or b"{}").values()) == 320

"""Checkpoint states in a compacted Kafka topic, on the session cluster: a 10 MB round trip
with only a pointer in ZooKeeper, tombstones on prune, a missing record (deleted, or
tombstoned and compacted away) reported as such, and a writer crashing between the state
write and the ZooKeeper commit leaving only an unreferenced state that is then deleted."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from kafkaops.admin import admin_client
from kafkaops.coord.checkpoints import CheckpointCorruptError, CheckpointStore, FencedError, PendingState
from kafkaops.coord.session import Coordinator
from kafkaops.coord.state_topic import TopicStateBackend
from kafkaops.local.cluster import LocalCluster
from tests.integration.test_checkpoint_store import coord  # noqa: F401 - the fixture: a Coordinator under a fresh root
from kafkaops.testing.waits import wait_until


@pytest.fixture
def backend(kafka_cluster: LocalCluster) -> Iterator[TopicStateBackend]:
    with TopicStateBackend(kafka_cluster.profile, f"state-{uuid.uuid4().hex[:8]}") as b:
        yield b


def records(cluster: LocalCluster, topic: str, partition: int, start: int = 0) -> dict[bytes, list[bytes | None]]:
    """Every record of a partition from ``start`` to its end: key -> values in order (None = tombstone)."""
    consumer = Consumer(cluster.profile.librdkafka(**{"group.id": "test-scan", "enable.partition.eof": True,
                                                      "enable.auto.commit": False}))
    consumer.assign([TopicPartition(topic, partition, start)])
    found: dict[bytes, list[bytes | None]] = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = consumer.poll(1)
            if msg is None:
                continue
            if msg.error() is not None:
                assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                return found
            found.setdefault(msg.key() or b"", []).append(msg.value())
        raise AssertionError(f"{topic}[{partition}] not read to its end within 60 s")
    finally:
        consumer.close()


def test_ten_megabyte_state_round_trip_with_a_pointer_in_zookeeper(
    coord: Coordinator, backend: TopicStateBackend, kafka_cluster: LocalCluster
) -> None:
    store = CheckpointStore(coord, state_backend=backend)
    epoch = store.claim("big", "w")
    state = os.urandom(10 * 1024 * 1024)
    ckpt = store.save("big", {("orders", 0): 7}, state, {"kind": "10MB"}, epoch=epoch)
    info = store.info("big")
    loc = info.location
    assert (info.id, info.where, info.state_size, info.codec) == (ckpt, "topic", len(state), "none")
    assert loc["topic"] == backend.topic and loc["chunks"] == 11 and loc["offsets"][1] - loc["offsets"][0] >= 10
    znode, _ = coord.client.get(f"{store.job_path('big')}/{ckpt}")
    assert len(znode) < 1024  # offsets, epoch, metadata and the pointer: no state
    loaded = store.latest("big")
    assert loaded is not None and hashlib.sha256(loaded.state or b"").digest() == hashlib.sha256(state).digest()

    # the topic is what the issue asks for: compacted, replicated 3 ways, min ISR 2
    admin = admin_client(kafka_cluster.profile)
    md = admin.list_topics(backend.topic, timeout=10).topics[backend.topic]
    assert all(len(p.replicas) == 3 for p in md.partitions.values())
    from confluent_kafka.admin import ConfigResource, ResourceType  # type: ignore[attr-defined]

    conf = next(iter(admin.describe_configs([ConfigResource(ResourceType.TOPIC, backend.topic)]).values())).result(10)
    assert conf["cleanup.policy"].value == "compact" and conf["min.insync.replicas"].value == "2"

    # a newer checkpoint, then prune: the first state's records get tombstones
    second = store.save("big", {("orders", 0): 8}, os.urandom(300_000), epoch=epoch)
    assert store.prune("big", keep=1) == [ckpt] and store.unreferenced("big") == []
    seen = records(kafka_cluster, backend.topic, loc["partition"], loc["offsets"][0])
    keys = [f"big/{info.token}/{i:05d}".encode() for i in range(11)]
    assert all(len(seen[k]) == 2 and seen[k][0] is not None and seen[k][1] is None for k in keys)
    assert store.latest("big").id == second  # type: ignore[union-attr]


def test_a_deleted_record_is_a_missing_chunk(coord: Coordinator, kafka_cluster: LocalCluster) -> None:
    # DeleteRecords needs the delete policy too (a compacted-only topic refuses it)
    backend = TopicStateBackend(kafka_cluster.profile, f"state-{uuid.uuid4().hex[:8]}",
                                topic_config={"cleanup.policy": "compact,delete"})
    store = CheckpointStore(coord, state_backend=backend)
    epoch = store.claim("del", "w")
    ckpt = store.save("del", {}, os.urandom(3 * 1024 * 1024), epoch=epoch)
    loc = store.info("del").location
    first = loc["offsets"][0]
    admin = admin_client(kafka_cluster.profile)
    futures = admin.delete_records([TopicPartition(backend.topic, loc["partition"], first + 1)])
    for f in futures.values():
        f.result(30)
    with pytest.raises(CheckpointCorruptError, match="chunk 0 of 4 is missing"):
        store.get("del", ckpt)
    backend.close()


def test_a_tombstoned_record_compacted_away_is_a_missing_chunk(coord: Coordinator,
                                                               kafka_cluster: LocalCluster) -> None:
    """Real compaction: the broker's cleaner removes the record a tombstone supersedes."""
    fast = {"segment.ms": "100", "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "100",
            "min.compaction.lag.ms": "0"}
    with TopicStateBackend(kafka_cluster.profile, f"state-{uuid.uuid4().hex[:8]}", topic_config=fast) as backend:
        store = CheckpointStore(coord, state_backend=backend)
        epoch = store.claim("cmp", "w")
        ckpt = store.save("cmp", {}, os.urandom(3 * 1024 * 1024), epoch=epoch)
        info = store.info("cmp")
        assert store.get("cmp", ckpt).state is not None
        producer = Producer(kafka_cluster.profile.librdkafka(acks="all"))
        partition = info.location["partition"]

        def append(key: bytes, value: bytes | None) -> None:
            producer.produce(backend.topic, key=key, value=value, partition=partition)
            assert producer.flush(30) == 0
            time.sleep(0.2)  # the next append rolls the segment (segment.ms=100)

        append(f"cmp/{info.token}/00002".encode(), None)

        def gone() -> bool:
            append(b"filler", b"x")  # closes the segment holding the tombstone: the cleaner may compact it
            try:
                store.get("cmp", ckpt)
            except CheckpointCorruptError as exc:
                assert "chunk 2 of 4 is missing" in str(exc)
                return True
            return False

        wait_until(gone, 120, "the cleaner to compact the tombstoned record away", interval=2)


CRASH = """
import os, sys
from kafkaops.config import ClusterProfile
from kafkaops.coord.checkpoints import CheckpointStore
from kafkaops.coord.session import Coordinator
from kafkaops.coord.state_topic import TopicStateBackend
profile = ClusterProfile.load(sys.argv[1])
coord = Coordinator(profile.zookeeper, sys.argv[2], timeout=4.0).start()
store = CheckpointStore(coord, state_backend=TopicStateBackend(profile, sys.argv[3]))
store._commit = lambda *a, **k: os._exit(9)  # the process dies between the state write and the commit
store.save("crash", {("t", 0): 1}, os.urandom(3_000_000), epoch=int(sys.argv[4]))
"""


def test_crash_between_state_write_and_commit_leaves_an_unreferenced_state_that_is_deleted(
    coord: Coordinator, backend: TopicStateBackend, kafka_cluster: LocalCluster, tmp_path: Path
) -> None:
    store = CheckpointStore(coord, state_backend=backend)
    epoch = store.claim("crash", "w")
    kept = store.save("crash", {("t", 0): 0}, b"before", epoch=epoch)
    profile = kafka_cluster.profile.save(tmp_path / "profile.yaml")

    def crash() -> PendingState:
        known = {p.token for p in store.unreferenced("crash")}
        res = subprocess.run([sys.executable, "-c", CRASH, str(profile), coord.root, backend.topic, str(epoch)],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 9, res.stderr
        [orphan] = [p for p in store.unreferenced("crash") if p.token not in known]
        assert orphan.where == "topic" and not orphan.dropped and orphan.location["chunks"] == 3
        assert [i.id for i in store.list("crash")] == [kept] and store.latest("crash").state == b"before"  # type: ignore[union-attr]
        return orphan

    # prune deletes it once the crashed writer's session has ended (until then it could be saving)
    first = crash()
    wait_until(lambda: (store.prune("crash", keep=5), store.unreferenced("crash") == [])[1], 60,
               "prune to delete the crashed save's state")
    # the next save of a new writer deletes it at once (the crashed writer's epoch is fenced)
    second = crash()
    new = CheckpointStore(coord, state_backend=backend)
    new_epoch = new.claim("crash", "w2")
    new.save("crash", {("t", 0): 2}, b"after", epoch=new_epoch)
    assert new.unreferenced("crash") == []
    with pytest.raises(FencedError):
        store.save("crash", {}, b"zombie", epoch=epoch)
    seen = records(kafka_cluster, backend.topic, int(first.location["partition"]))
    for p in (first, second):
        keys = [f"crash/{p.token}/{i:05d}".encode() for i in range(3)]
        assert all(seen[k][0] is not None and seen[k][-1] is None for k in keys), f"state {p.token}: no tombstones"

"""Checkpoints on a 3-node ZooKeeper ensemble of the module's own: a 10 MB state round
trip (directory backend, a pointer in ZooKeeper), checkpoints going on while the ensemble
node the session uses is killed, and saves, the checkpointed consumer and the bench failing
with a clear error within a bounded wait while all of ZooKeeper is frozen."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from kafkaops.admin import create_topic
from kafkaops.apps.bench.checkpoint import bench_checkpoint
from kafkaops.clients.checkpointed import CheckpointedConsumer
from kafkaops.coord.checkpoints import CheckpointStore, FencedError
from kafkaops.coord.election import Leadership, bump_epoch
from kafkaops.coord.session import Coordinator, NotWritableError
from kafkaops.coord.state_backends import DirectoryStateBackend
from kafkaops.local.cluster import LocalCluster
from kafkaops.resources import schema_path
from kafkaops.serde.avro import AvroSchema
from kafkaops.serde.codec import BytesCodec
from kafkaops.serde.registry import SchemaRegistry
from kafkaops.testing.waits import wait_until

log = logging.getLogger(__name__)
# Runs once, in the ZooKeeper-mode pass: the ensemble is kafkaops' coordination, the same
# beside either Kafka mode, and this module's cluster is its own (ZooKeeper mode).
pytestmark = pytest.mark.zookeeper_mode


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """ZooKeeper x3 (the default heap: states do not live there) + 1 broker; the last test breaks it."""
    cluster = LocalCluster(tmp_path_factory.mktemp("coord-ensemble"), brokers=1, zookeepers=3)
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.mark.destructive
def test_ten_megabyte_state_round_trip(ensemble: LocalCluster, tmp_path: Path) -> None:
    """10 MB of incompressible state in a directory backend, written before the commit, read
    back byte-identical; ZooKeeper holds a pointer only; a fenced 10 MB save keeps nothing."""
    with Coordinator(ensemble.zk_hosts) as coord:
        store = CheckpointStore(coord, state_backend=DirectoryStateBackend(tmp_path))
        epoch = store.claim("big", "w")
        state = os.urandom(10 * 1024 * 1024)
        ckpt = store.save("big", {("t", 0): 1}, state, {"kind": "10MB"}, epoch=epoch)
        loaded = store.get("big", ckpt)
        assert loaded.info.where == "directory" and loaded.info.state_size == len(state)
        assert hashlib.sha256(loaded.state or b"").digest() == hashlib.sha256(state).digest()
        assert len(coord.client.get(f"{store.job_path('big')}/{ckpt}")[0]) < 1024
        store.claim("big", "someone-else")
        with pytest.raises(FencedError):
            store.save("big", {}, state, epoch=epoch)
        assert [p.name for p in (tmp_path / "big").iterdir()] == [f"{loaded.info.token}.state"]
        assert [i.id for i in store.list("big")] == [ckpt] and store.unreferenced("big") == []


@pytest.mark.destructive
def test_frozen_zookeeper_fails_saves_consumer_and_bench_within_a_bounded_wait(
    ensemble: LocalCluster, tmp_path: Path
) -> None:
    """All of ZooKeeper frozen (SIGSTOP): a save, a large save, the checkpointed consumer, the
    bench, an epoch claim and a schema registration each fail with NotWritableError naming ZooKeeper, in bounded time, instead of
    waiting for ZooKeeper forever; nothing is half-written, and all recover afterwards."""
    profile = ensemble.profile
    topic = f"frozen-{uuid.uuid4().hex[:6]}"
    create_topic(profile, topic, 1, 1)
    producer = Producer(profile.librdkafka(acks="all"))
    for i in range(2000):
        producer.produce(topic, key=f"k{i % 7}".encode(), value=b"v")
    assert producer.flush(30) == 0
    schema = AvroSchema.load(schema_path("order-v1"))
    with Coordinator(ensemble.zk_hosts, timeout=4.0) as coord:
        store = CheckpointStore(coord, state_backend=DirectoryStateBackend(tmp_path), zookeeper_wait=3.0)
        epoch = store.claim("frozen", "w")
        store.save("frozen", {("t", 0): 1}, b"before", epoch=epoch)
        consumer: CheckpointedConsumer[bytes, dict[str, int]] = CheckpointedConsumer(
            store, "frozen-consumer", profile, topic, BytesCodec(), every_records=50, every_seconds=0.2,
            max_zookeeper_outage=3.0)
        try:
            wait_until(lambda: consumer.poll(0.2) is not None and consumer.checkpoints > 0, 60, "a first checkpoint")
            for node in ensemble.zookeepers:
                ensemble.pause_zookeeper(node.id)
            try:
                for name, attempt in (
                    ("small save", lambda: store.save("frozen", {("t", 0): 2}, b"during", epoch=epoch)),
                    ("large save", lambda: store.save("frozen", {("t", 0): 3}, os.urandom(1_000_000), epoch=epoch)),
                    ("consumer", lambda: [consumer.poll(0.2) for _ in range(10_000)]),
                    ("bench", lambda: bench_checkpoint(profile, coord, rounds=10, large_mb=(), sustained_saves=0)),
                    ("epoch claim", lambda: bump_epoch(coord, "frozen-other", "w")),  # Coordinator.retry: bounded
                    ("schema registration", lambda: SchemaRegistry(coord).register("frozen-value", schema)),
                ):
                    started = time.monotonic()
                    with pytest.raises(NotWritableError, match="ZooKeeper .*unavailable") as failed:
                        attempt()
                    took = time.monotonic() - started
                    assert took < 30, f"{name}: {took:.0f}s to fail ({failed.value})"
                    log.info("frozen ZooKeeper: %s failed after %.1fs: %s", name, took, failed.value)
                assert list(tmp_path.iterdir()) == []  # the large save stopped before writing its state
            finally:
                for node in ensemble.zookeepers:
                    ensemble.resume_zookeeper(node.id)
            coord.wait_writable(90)
            # the small save's commit was sent before ZooKeeper froze: its outcome is unknown, both are legal
            assert store.latest("frozen").state in (b"before", b"during")  # type: ignore[union-attr]
            after = store.save("frozen", {("t", 0): 4}, os.urandom(1_000_000), epoch=epoch)
            assert store.info("frozen").id == after and store.unreferenced("frozen") == []
        finally:
            consumer.close(processed=False)


@pytest.mark.destructive
def test_leadership_given_up_when_suspended_past_the_session_timeout(ensemble: LocalCluster) -> None:
    """All of ZooKeeper freezes (SIGSTOP): the leader stops leading at once (SUSPENDED),
    fires on_lost after a session timeout, and its lock does not block a successor."""
    with Coordinator(ensemble.zk_hosts, timeout=4.0) as coord:
        lost = threading.Event()
        lead = Leadership(coord, "frozen", "p1", on_lost=lost.set)
        epoch = lead.acquire(timeout=10)
        for node in ensemble.zookeepers:
            ensemble.pause_zookeeper(node.id)
        try:
            wait_until(lambda: not lead.is_leader, 15, "suspension noticed")
            assert lost.wait(30), "on_lost did not fire while ZooKeeper was unreachable"
        finally:
            for node in ensemble.zookeepers:
                ensemble.resume_zookeeper(node.id)
        coord.wait_writable(90)
        with Coordinator(ensemble.zk_hosts) as other:
            successor = Leadership(other, "frozen", "p2")
            assert successor.acquire(timeout=60) > epoch
            assert not lead.is_leader and successor.leader() == "p2"
            successor.release()


@pytest.mark.destructive
def test_checkpoints_go_on_when_an_ensemble_node_dies(ensemble: LocalCluster) -> None:
    """3-node ZooKeeper ensemble: the node our session is connected to (possibly the
    quorum leader) is killed while a writer checkpoints continuously. The coordinator
    stops writing while SUSPENDED, moves to a survivor, and checkpoints go on with the
    same epoch; every acknowledged save is there and the latest is the last one."""
    cluster = ensemble
    with Coordinator(cluster.zk_hosts, timeout=10.0) as coord:
        states: list[str] = []
        writable: list[bool] = []

        def on_state(state: str) -> None:
            states.append(state)
            writable.append(coord.writable)

        coord.add_listener(on_state)
        store = CheckpointStore(coord)
        epoch = store.claim("ens", "w")
        saved: list[tuple[str, int]] = []
        stop = threading.Event()
        errors: list[BaseException] = []
        retried: list[BaseException] = []

        def writer() -> None:
            i = 0
            while not stop.is_set():
                try:
                    saved.append((store.save("ens", {("t", 0): i}, str(i).encode(), epoch=epoch), i))
                    i += 1
                except NotWritableError as exc:  # ZooKeeper unavailable for a moment: retry, as apps do
                    retried.append(exc)
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)
                    return

        t = threading.Thread(target=writer)
        t.start()
        try:
            wait_until(lambda: len(saved) >= 20, 30, "first checkpoints")
            port = coord.client._connection._socket.getpeername()[1]
            victim = next(n for n in cluster.zookeepers if n.port == port)
            cluster.kill_zookeeper(victim.id)
            before = len(saved)
            wait_until(lambda: len(saved) >= before + 50 or bool(errors), 90, "checkpoints after the kill")
        finally:
            stop.set()
            t.join(60)
        assert not errors, errors
        assert "SUSPENDED" in states and states[-1] == "CONNECTED", states
        assert [w for st, w in zip(states, writable) if st != "CONNECTED"] == [False] * (
            len(states) - states.count("CONNECTED"))
        assert coord.writable and len(retried) < 10
        latest = store.latest("ens")
        assert latest is not None and (latest.id, int(latest.state or b"-1")) == saved[-1]
        ids = {i.id for i in store.list("ens")}
        assert {s[0] for s in saved} <= ids  # every acknowledged save is there
        assert [int(store.get("ens", i).state or b"-1") for i, _ in saved[-5:]] == [v for _, v in saved[-5:]]

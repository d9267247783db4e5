"""CheckpointStore on real ZooKeeper: round trips, fencing, restore, prune, integrity,
a 10 MB state, and checkpoints going on while a 3-node ensemble loses a node."""

from __future__ import annotations

import os
import time
import threading
import uuid
from collections.abc import Iterator

import pytest

from kafkaops.coord.checkpoints import (
    CHUNK_BYTES,
    CheckpointCorruptError,
    CheckpointNotFoundError,
    CheckpointStore,
    FencedError,
)
from kafkaops.coord.election import Leadership
from kafkaops.coord.session import Coordinator
from kafkaops.local.cluster import LocalCluster


@pytest.fixture
def coord(kafka_cluster: LocalCluster) -> Iterator[Coordinator]:
    root = f"/kafkaops-test-{uuid.uuid4().hex[:8]}"
    with Coordinator(kafka_cluster.zk_hosts, root) as c:
        yield c
        c.client.delete(root, recursive=True)


def test_save_and_restore_round_trip(coord: Coordinator) -> None:
    store = CheckpointStore(coord)
    assert store.latest("orders-agg") is None
    epoch = store.claim("orders-agg", "worker-1")
    offsets = {("orders", 0): 120, ("orders", 1): 98, ("payments", 0): 7}
    first = store.save("orders-agg", offsets, b'{"a": 1}', {"records": 225}, epoch=epoch)
    second = store.save("orders-agg", {**offsets, ("orders", 0): 130}, b'{"a": 2}', {"records": 235}, epoch=epoch)
    assert first < second

    latest = store.latest("orders-agg")
    assert latest is not None and latest.id == second and latest.info.latest
    assert latest.offsets[("orders", 0)] == 130 and latest.state == b'{"a": 2}'
    assert latest.metadata == {"records": 235} and latest.epoch == epoch
    old = store.get("orders-agg", first)
    assert old.offsets == offsets and old.state == b'{"a": 1}' and not old.info.latest
    assert [i.id for i in store.list("orders-agg")] == [first, second]
    assert store.jobs() == ["orders-agg"]

    # restore points the job back at the first checkpoint and fences the running writer
    new_epoch = store.restore("orders-agg", first, owner="operator")
    assert new_epoch > epoch
    assert store.latest("orders-agg").id == first  # type: ignore[union-attr]
    with pytest.raises(FencedError):
        store.save("orders-agg", offsets, b"zombie", epoch=epoch)
    third = store.save("orders-agg", offsets, b"resumed", epoch=store.claim("orders-agg", "worker-2"))
    assert store.latest("orders-agg").state == b"resumed" and third > second  # type: ignore[union-attr]

    with pytest.raises(CheckpointNotFoundError):
        store.get("orders-agg", "ckpt-0000009999")
    with pytest.raises(CheckpointNotFoundError):
        store.restore("orders-agg", "ckpt-0000009999")


def test_two_writers_only_the_owner_lands(coord: Coordinator, kafka_cluster: LocalCluster) -> None:
    """Writer A leads; B takes over (A's session is slow/stuck = a zombie). A's saves
    are fenced and write nothing; B's land. Both race from threads on two sessions."""
    with Coordinator(kafka_cluster.zk_hosts, coord.root) as other:
        a, b = CheckpointStore(coord), CheckpointStore(other)
        epoch_a = a.claim("job", "A")
        a.save("job", {("t", 0): 1}, b"A1", epoch=epoch_a)
        epoch_b = b.claim("job", "B")
        results: dict[str, list[str]] = {"A": [], "B": [], "A-fenced": []}

        def run(store: CheckpointStore, name: str, epoch: int) -> None:
            for i in range(30):
                try:
                    results[name].append(store.save("job", {("t", 0): i}, f"{name}{i}".encode(), epoch=epoch))
                except FencedError:
                    results[f"{name}-fenced"].append(str(i))

        threads = [threading.Thread(target=run, args=(a, "A", epoch_a)),
                   threading.Thread(target=run, args=(b, "B", epoch_b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert results["A"] == [] and len(results["A-fenced"]) == 30 and len(results["B"]) == 30
        states = [a.get("job", i.id).state for i in a.list("job")]
        assert states == [b"A1"] + [f"B{i}".encode() for i in range(30)]


def test_leadership_epoch_fences_checkpoints(coord: Coordinator, kafka_cluster: LocalCluster) -> None:
    with Coordinator(kafka_cluster.zk_hosts, coord.root) as other:
        first = Leadership(coord, "agg", "w1")
        e1 = first.acquire(timeout=10)
        CheckpointStore(coord).save("agg", {}, b"one", epoch=e1)
        first.release()
        second = Leadership(other, "agg", "w2")
        e2 = second.acquire(timeout=10)
        with pytest.raises(FencedError, match="w2"):
            CheckpointStore(coord).save("agg", {}, b"late", epoch=e1)
        CheckpointStore(other).save("agg", {}, b"two", epoch=e2)
        second.release()
        assert CheckpointStore(coord).latest("agg").state == b"two"  # type: ignore[union-attr]


def test_prune_keeps_newest_and_pointer_and_removes_orphan_chunks(coord: Coordinator) -> None:
    store = CheckpointStore(coord)
    epoch = store.claim("p", "w")
    big = os.urandom(2_000_000)  # incompressible: 3 chunks per checkpoint
    ids = [store.save("p", {("t", 0): i}, big if i % 2 else b"small", epoch=epoch) for i in range(8)]
    chunks_dir = store.job_path("p") + "/chunks"
    # an orphan chunk, as left by a writer that crashed between chunks and commit
    coord.client.create(f"{chunks_dir}/deadbeefdeadbeef-0000", b"x" * 100)
    # prune removes orphans strictly older (ZooKeeper ctime, in ms) than the newest checkpoint;
    # one from the same millisecond could belong to a save in flight and is kept
    time.sleep(0.01)
    store.save("p", {("t", 0): 8}, b"small", epoch=epoch)
    ids.append(store.list("p")[-1].id)
    store.restore("p", ids[1])  # the pointer now refers to an old checkpoint
    deleted = store.prune("p", keep=3)
    remaining = [i.id for i in store.list("p")]
    assert remaining == [ids[1]] + ids[-3:]
    assert sorted(deleted) == sorted(set(ids) - set(remaining))
    # only the chunks of surviving checkpoints remain (ids[1] and ids[7] are the big ones)
    assert len(coord.client.get_children(chunks_dir)) == 6
    assert store.get("p", ids[1]).state == big and store.get("p", ids[7]).state == big


def test_compressible_state_beyond_a_chunk_is_compressed_chunked_and_read_back(coord: Coordinator) -> None:
    """The zlib + chunk path: a state zlib shrinks, still larger than one znode after that."""
    store = CheckpointStore(coord)
    epoch = store.claim("z", "w")
    state = os.urandom(2 * CHUNK_BYTES).hex().encode()  # 3.6 MB of hex text: zlib about halves it
    ckpt = store.save("z", {("t", 0): 1}, state, epoch=epoch)
    info = store.list("z")[-1]
    assert info.id == ckpt and info.codec == "zlib" and info.state_size == len(state)
    assert info.chunks >= 2  # compressed, and still more than one znode's worth
    chunk_paths = store.chunks.paths("z", info.token, info.chunks)
    assert sorted(coord.client.get_children(store.chunks.directory("z"))) == [p.rsplit("/", 1)[1] for p in chunk_paths]
    stored = sum(len(coord.client.get(p)[0]) for p in chunk_paths)
    assert stored < 0.7 * len(state)  # what ZooKeeper holds is the compressed form
    back = store.latest("z")
    assert back is not None and back.id == ckpt and back.state == state


def test_corrupt_state_is_detected_by_hash(coord: Coordinator) -> None:
    store = CheckpointStore(coord)
    epoch = store.claim("c", "w")
    big = os.urandom(1_500_000)
    ckpt = store.save("c", {}, big, epoch=epoch)
    chunks_dir = store.job_path("c") + "/chunks"
    first = sorted(coord.client.get_children(chunks_dir))[0]
    data, _ = coord.client.get(f"{chunks_dir}/{first}")
    coord.client.set(f"{chunks_dir}/{first}", bytes([data[0] ^ 1]) + data[1:])
    with pytest.raises(CheckpointCorruptError, match="SHA-256"):
        store.get("c", ckpt)
    coord.client.delete(f"{chunks_dir}/{first}")
    with pytest.raises(CheckpointCorruptError, match="missing"):
        store.latest("c")

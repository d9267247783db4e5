"""CheckpointStore on real ZooKeeper: round trips, fencing, restore, prune, integrity, and
large states kept in a directory backend with only a pointer in ZooKeeper (the topic
backend: test_checkpoint_topic.py)."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kafkaops.coord.checkpoints import (
    INLINE_LIMIT,
    CheckpointCorruptError,
    CheckpointNotFoundError,
    CheckpointStore,
    FencedError,
    StateTooLargeError,
)
from kafkaops.coord.election import Leadership
from kafkaops.coord.session import Coordinator
from kafkaops.coord.state_backends import DirectoryStateBackend
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


def test_prune_keeps_newest_and_pointer_and_deletes_their_states(coord: Coordinator, tmp_path: Path) -> None:
    backend = DirectoryStateBackend(tmp_path / "states")
    store = CheckpointStore(coord, state_backend=backend)
    epoch = store.claim("p", "w")
    big = os.urandom(300_000)  # over the inline limit: a file per checkpoint
    ids = [store.save("p", {("t", 0): i}, big if i % 2 else b"small", epoch=epoch) for i in range(8)]
    files = tmp_path / "states" / "p"
    assert len(list(files.iterdir())) == 4
    store.restore("p", ids[1])  # the pointer now refers to an old checkpoint
    deleted = store.prune("p", keep=3)
    remaining = [i.id for i in store.list("p")]
    assert remaining == [ids[1]] + ids[-3:]
    assert sorted(deleted) == sorted(set(ids) - set(remaining))
    # only the states of surviving checkpoints remain (odd ones are big: ids[1], ids[5], ids[7])
    infos = {i.id: i for i in store.list("p")}
    assert sorted(p.name for p in files.iterdir()) == sorted(f"{infos[i].token}.state" for i in ids[1::4] + ids[7:])
    assert store.get("p", ids[1]).state == big and store.get("p", ids[7]).state == big
    assert store.unreferenced("p") == []


def test_zookeeper_holds_a_pointer_and_the_state_lives_in_the_backend(coord: Coordinator, tmp_path: Path) -> None:
    store = CheckpointStore(coord, state_backend=DirectoryStateBackend(tmp_path))
    epoch = store.claim("z", "w")
    text = os.urandom(1_000_000).hex().encode()  # 2 MB of hex text: zlib about halves it
    ckpt = store.save("z", {("t", 0): 1}, text, epoch=epoch)
    info = store.info("z")
    assert (info.id, info.where, info.codec, info.state_size, info.latest) == (ckpt, "directory", "zlib", len(text), True)
    assert info.stored_size is not None and info.stored_size < 0.7 * len(text)
    data, _ = coord.client.get(f"{store.job_path('z')}/{ckpt}")
    assert len(data) < 1024  # the pointer: backend, location, size, SHA-256
    assert (tmp_path / "z" / f"{info.token}.state").stat().st_size == info.stored_size
    assert store.latest("z").state == text  # type: ignore[union-attr]
    small = store.save("z", {("t", 0): 2}, b"x" * INLINE_LIMIT, epoch=epoch)  # at the limit: inline
    assert store.info("z", small).where == "inline"


def test_state_over_the_limits_is_refused_before_anything_is_written(coord: Coordinator, tmp_path: Path) -> None:
    no_backend = CheckpointStore(coord)
    epoch = no_backend.claim("big", "w")
    first = no_backend.save("big", {("t", 0): 1}, b"ok", epoch=epoch)
    with pytest.raises(StateTooLargeError, match="no state backend.*nothing was written"):
        no_backend.save("big", {("t", 0): 2}, b"x" * (INLINE_LIMIT + 1), epoch=epoch)
    capped = CheckpointStore(coord, state_backend=DirectoryStateBackend(tmp_path), max_state_bytes=1_000_000)
    with pytest.raises(StateTooLargeError, match="per-checkpoint limit"):
        capped.save("big", {("t", 0): 3}, os.urandom(1_000_001), epoch=epoch)
    assert [i.id for i in no_backend.list("big")] == [first] and no_backend.info("big").latest
    assert list(tmp_path.iterdir()) == [] and capped.unreferenced("big") == []


def test_corrupt_or_missing_state_is_detected(coord: Coordinator, tmp_path: Path) -> None:
    store = CheckpointStore(coord, state_backend=DirectoryStateBackend(tmp_path))
    epoch = store.claim("c", "w")
    ckpt = store.save("c", {}, os.urandom(1_500_000), epoch=epoch)
    state_file = tmp_path / "c" / f"{store.info('c').token}.state"
    data = bytearray(state_file.read_bytes())
    data[1000] ^= 1
    state_file.write_bytes(bytes(data))
    with pytest.raises(CheckpointCorruptError, match="SHA-256"):
        store.get("c", ckpt)
    state_file.unlink()
    with pytest.raises(CheckpointCorruptError, match="missing"):
        store.latest("c")


def test_a_fenced_save_keeps_no_state(coord: Coordinator, tmp_path: Path) -> None:
    store = CheckpointStore(coord, state_backend=DirectoryStateBackend(tmp_path))
    epoch = store.claim("f", "old")
    kept = store.save("f", {}, os.urandom(400_000), epoch=epoch)
    store.claim("f", "new")
    with pytest.raises(FencedError):
        store.save("f", {}, os.urandom(400_000), epoch=epoch)
    assert [p.name for p in (tmp_path / "f").iterdir()] == [f"{store.info('f', kept).token}.state"]
    assert store.unreferenced("f") == [] and [i.id for i in store.list("f")] == [kept]

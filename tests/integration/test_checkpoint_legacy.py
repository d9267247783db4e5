"""Migration: checkpoints written in format 1 (the state inline, or chunked into znodes under
``chunks/``) load with today's store, list where their state lives, and prune cleanly.

``write_format_1`` is the save path of the store before state backends, kept here as it
was (header, zlib when it pays, 900 KB chunk znodes, one fenced transaction)."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
import zlib

import pytest

from kafkaops.coord.checkpoint_format import compressible
from kafkaops.coord.checkpoints import CheckpointCorruptError, CheckpointStore
from kafkaops.coord.election import epoch_path
from kafkaops.coord.session import Coordinator
from tests.integration.test_checkpoint_store import coord  # noqa: F401 - the fixture: a Coordinator under a fresh root

CHUNK = 900_000


def write_format_1(coord: Coordinator, job: str, offsets: dict[tuple[str, int], int], state: bytes,
                   epoch: int) -> str:
    """The format-1 save: returns the checkpoint id."""
    client = coord.client
    token = uuid.uuid4().hex[:16]
    codec, stored = "none", state
    if len(state) > CHUNK and compressible(state):
        packed = zlib.compress(state, 1)
        if len(packed) < len(state):
            codec, stored = "zlib", packed
    doc = {"v": 1, "epoch": epoch, "created": time.time(), "token": token,
           "offsets": sorted([t, p, o] for (t, p), o in offsets.items()), "metadata": {},
           "state": {"size": len(state), "sha256": hashlib.sha256(state).hexdigest(), "codec": codec,
                     "stored": len(stored), "chunks": 0}}
    inline, chunks = stored, []
    if len(stored) + 400 > CHUNK:
        chunks = [stored[i:i + CHUNK] for i in range(0, len(stored), CHUNK)]
        doc["state"]["chunks"] = len(chunks)  # type: ignore[index]
        inline = b""
    job_dir = coord.path("checkpoints", job)
    coord.ensure_path(f"{job_dir}/chunks")
    if not client.exists(f"{job_dir}/latest"):
        client.create(f"{job_dir}/latest", b"")
    paths = [f"{job_dir}/chunks/{token}-{i:04d}" for i in range(len(chunks))]
    for path, chunk in zip(paths, chunks):
        client.create(path, chunk)
    version = client.exists(f"{job_dir}/latest").version
    ckpt_id = f"ckpt-{version + 1:010d}"
    txn = client.transaction()
    txn.check(epoch_path(coord, job), epoch)
    for path in paths:
        txn.check(path, 0)
    txn.create(f"{job_dir}/{ckpt_id}", json.dumps(doc, separators=(",", ":")).encode() + b"\n" + inline)
    txn.set_data(f"{job_dir}/latest", ckpt_id.encode(), version=version)
    assert not any(isinstance(r, Exception) for r in txn.commit())
    return ckpt_id


def test_format_1_checkpoints_load_list_and_prune(coord: Coordinator) -> None:
    store = CheckpointStore(coord)  # no state backend: format-1 states are in ZooKeeper already
    epoch = store.claim("old", "w")
    inline_state = b'{"customer-1": 3}'
    chunked_state = os.urandom(2_000_000)  # incompressible: 3 chunk znodes
    text_state = os.urandom(1_000_000).hex().encode()  # compressible: zlib, then 2 chunks
    ids = [write_format_1(coord, "old", {("orders", 0): 10 * i}, s, epoch)
           for i, s in enumerate((inline_state, chunked_state, text_state))]

    infos = store.list("old")
    assert [(i.id, i.where, i.chunks) for i in infos] == [(ids[0], "inline", 0), (ids[1], "znodes", 3),
                                                          (ids[2], "znodes", 2)]
    assert infos[2].codec == "zlib" and infos[2].latest
    assert store.get("old", ids[0]).state == inline_state
    assert store.get("old", ids[1]).state == chunked_state
    latest = store.latest("old")
    assert latest is not None and latest.state == text_state and latest.offsets == {("orders", 0): 20}

    # the job goes on with today's format; prune removes format-1 checkpoints and their chunks
    new = store.save("old", {("orders", 0): 30}, b"new", epoch=epoch)
    assert store.info("old").id == new and store.info("old").where == "inline"
    assert store.prune("old", keep=1) == ids
    assert coord.client.get_children(store.job_path("old") + "/chunks") == []
    assert store.latest("old").state == b"new"  # type: ignore[union-attr]


def test_a_missing_format_1_chunk_is_reported(coord: Coordinator) -> None:
    store = CheckpointStore(coord)
    epoch = store.claim("gap", "w")
    ckpt = write_format_1(coord, "gap", {}, os.urandom(2_000_000), epoch)
    chunks = store.job_path("gap") + "/chunks"
    coord.client.delete(f"{chunks}/{sorted(coord.client.get_children(chunks))[1]}")
    with pytest.raises(CheckpointCorruptError, match="chunk .*-0001 is missing"):
        store.get("gap", ckpt)

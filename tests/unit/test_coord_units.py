"""Pure logic of kafkaops.coord: paths, ACLs, checkpoint encoding (no ZooKeeper needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kafkaops.coord import checkpoint_format as ck
from kafkaops.coord.checkpoints import CheckpointStore
from kafkaops.coord.session import Coordinator, CoordinatorError


def test_paths_are_under_the_root_and_names_are_validated() -> None:
    coord = Coordinator("127.0.0.1:1", "/kafkaops")
    assert coord.path() == "/kafkaops"
    assert coord.path("checkpoints", "orders-agg") == "/kafkaops/checkpoints/orders-agg"
    for bad in ("", "a/b", "..", "."):
        with pytest.raises(CoordinatorError):
            coord.path("checkpoints", bad)
    with pytest.raises(CoordinatorError):
        Coordinator("127.0.0.1:1", "relative")
    with pytest.raises(CoordinatorError):
        Coordinator("127.0.0.1:1", read_protected=True)  # needs auth


def test_acls_follow_auth_and_read_protection() -> None:
    open_acl = Coordinator("127.0.0.1:1").acl
    assert [a.id.scheme for a in open_acl] == ["world"] and open_acl[0].perms == 31
    acl = Coordinator("127.0.0.1:1", auth=("alice", "s3cret")).acl
    assert [a.id.scheme for a in acl] == ["digest", "world"]
    assert acl[0].id.id.startswith("alice:") and acl[0].perms == 31
    assert acl[1].perms == 1  # world: READ only
    private = Coordinator("127.0.0.1:1", auth=("alice", "s3cret"), read_protected=True).acl
    assert [a.id.scheme for a in private] == ["digest"]


def test_unstarted_coordinator_refuses_use() -> None:
    coord = Coordinator("127.0.0.1:1")
    assert not coord.writable
    with pytest.raises(CoordinatorError):
        _ = coord.client


def test_small_state_is_inline_and_header_is_json() -> None:
    header, inline, chunks = ck.encode("j", {("orders", 1): 42, ("orders", 0): 7}, b"abc", {"n": 1}, 3, "tok")
    doc = json.loads(header)
    assert inline == b"abc" and chunks == []
    assert doc["offsets"] == [["orders", 0, 7], ["orders", 1, 42]]
    assert doc["epoch"] == 3 and doc["token"] == "tok" and doc["metadata"] == {"n": 1}
    assert doc["state"]["size"] == 3 and doc["state"]["codec"] == "none" and doc["state"]["chunks"] == 0


def test_large_random_state_is_chunked_uncompressed() -> None:
    state = os.urandom(2 * ck.CHUNK_BYTES + 123)
    header, inline, chunks = ck.encode("j", {}, state, None, 1, "t")
    doc = json.loads(header)
    assert inline == b"" and len(chunks) == 3 and b"".join(chunks) == state
    assert doc["state"]["codec"] == "none" and doc["state"]["chunks"] == 3
    assert all(len(c) <= ck.CHUNK_BYTES for c in chunks)


def test_large_compressible_state_is_compressed_inline() -> None:
    state = b'{"key-1": 12, "key-2": 7}' * 100_000  # 2.5 MB of JSON-like text
    header, inline, chunks = ck.encode("j", {}, state, None, 1, "t")
    doc = json.loads(header)
    assert doc["state"]["codec"] == "zlib" and chunks == [] and len(inline) < ck.MAX_ZNODE_BYTES
    assert doc["state"]["stored"] == len(inline) < len(state)


def test_no_state_and_bad_inputs() -> None:
    header, inline, chunks = ck.encode("j", {("t", 0): 1}, None, None, 1, "t")
    assert json.loads(header)["state"] is None and inline == b"" and chunks == []
    with pytest.raises(ck.CheckpointError, match="JSON"):
        ck.encode("j", {}, None, {"x": object()}, 1, "t")
    with pytest.raises(ck.CheckpointError, match="bytes"):
        ck.encode("j", {}, "text", None, 1, "t")  # type: ignore[arg-type]
    with pytest.raises(ck.CheckpointNotFoundError):
        CheckpointStore(Coordinator("127.0.0.1:1"))._ckpt_path("j", "latest")


def test_large_compressible_state_beyond_a_znode_is_compressed_then_chunked() -> None:
    state = os.urandom(2 * ck.CHUNK_BYTES).hex().encode()  # hex text: zlib halves it, still > 1 chunk
    header, inline, chunks = ck.encode("j", {}, state, None, 1, "t")
    doc = json.loads(header)["state"]
    assert doc["codec"] == "zlib" and inline == b""
    assert doc["chunks"] == len(chunks) >= 2 and doc["stored"] == sum(map(len, chunks)) < len(state)
    info, _ = ck.decode_header("j", "ckpt-0000000001", header + b"\n")
    assert (info.codec, info.chunks, info.state_size) == ("zlib", len(chunks), len(state))
    assert ck.decode_state(info, b"".join(chunks)) == state


def test_decoding_checks_size_and_hash() -> None:
    header, inline, _ = ck.encode("j", {("t", 0): 5}, b"state", {"m": 1}, 2, "tok")
    info, stored = ck.decode_header("j", "ckpt-0000000007", header + b"\n" + inline)
    assert (info.offsets, info.metadata, info.epoch, info.token, info.seq) == ({("t", 0): 5}, {"m": 1}, 2, "tok", 7)
    assert ck.decode_state(info, stored) == b"state"
    with pytest.raises(ck.CheckpointCorruptError, match="SHA-256"):
        ck.decode_state(info, b"stale")
    with pytest.raises(ck.CheckpointCorruptError, match="unreadable header"):
        ck.decode_header("j", "ckpt-0000000007", b"{not json\n")
    assert ck.header_token(header + b"\n") == "tok" and ck.header_token(b"garbage") is None


def test_compressibility_probe() -> None:
    assert ck.compressible(b"a" * 1_000_000)
    assert not ck.compressible(os.urandom(1_000_000))


def test_aggregate_key_names_and_atomic_output(tmp_path: Path) -> None:
    from kafkaops.apps.aggregate import AggregateError, key_name, write_json_atomic

    assert key_name(b"customer-1") == "customer-1"
    assert key_name(None) == "<null>"
    assert key_name(b"\xff") == "\\xff"
    out = tmp_path / "counts.json"
    write_json_atomic(out, {"b": 2, "a": 1})
    assert json.loads(out.read_text()) == {"a": 1, "b": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["counts.json"]  # no temp file left behind
    with pytest.raises(AggregateError):
        write_json_atomic(tmp_path / "missing-dir" / "x.json", {})

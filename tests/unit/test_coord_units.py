"""Pure logic of kafkaops.coord: paths, ACLs, checkpoint encoding, the directory state backend
(no ZooKeeper needed)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from kafkaops.coord import checkpoint_format as ck
from kafkaops.coord.checkpoints import CheckpointStore, PendingState
from kafkaops.coord.session import Coordinator, CoordinatorError
from kafkaops.coord.state_backends import DirectoryStateBackend, backend_for


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


def _znode(job: str, offsets: dict[tuple[str, int], int], state: bytes | None, metadata: dict[str, int] | None,
           epoch: int, token: str) -> bytes:
    prepared = None if state is None else ck.prepare_state(job, state)
    header = ck.encode_header(job, offsets, metadata, epoch, token, prepared.doc(ck.INLINE) if prepared else None)
    return ck.checkpoint_znode(job, header, prepared.stored if prepared else b"")


def test_small_state_is_inline_and_header_is_json() -> None:
    data = _znode("j", {("orders", 1): 42, ("orders", 0): 7}, b"abc", {"n": 1}, 3, "tok")
    header, _, inline = data.partition(b"\n")
    doc = json.loads(header)
    assert inline == b"abc" and doc["v"] == 2
    assert doc["offsets"] == [["orders", 0, 7], ["orders", 1, 42]]
    assert doc["epoch"] == 3 and doc["token"] == "tok" and doc["metadata"] == {"n": 1}
    assert doc["state"] == {"size": 3, "sha256": hashlib.sha256(b"abc").hexdigest(), "codec": "none", "stored": 3,
                            "where": "inline"}


def test_large_state_is_compressed_when_it_pays_and_never_inline_sized() -> None:
    text = b'{"key-1": 12, "key-2": 7}' * 100_000  # 2.5 MB of JSON-like text
    packed = ck.prepare_state("j", text)
    assert packed.codec == "zlib" and len(packed.stored) < len(text) / 10 and packed.size == len(text)
    noise = os.urandom(2 * ck.INLINE_LIMIT)
    raw = ck.prepare_state("j", noise)
    assert raw.codec == "none" and raw.stored == noise
    small = b"x" * 1000  # compressible, but inline states are kept as they are
    assert ck.prepare_state("j", small).codec == "none"
    lazy = ck.prepare_state("j", noise, digest=False)
    assert lazy.sha256 == "" and ck.sha256_later(noise).result(10) == raw.sha256


def test_state_limits_are_checked_before_anything_else() -> None:
    with pytest.raises(ck.StateTooLargeError, match="exceeds the per-checkpoint limit of 1.0 MiB"):
        ck.prepare_state("j", b"x" * (1024 * 1024 + 1), max_bytes=1024 * 1024)
    with pytest.raises(ck.CheckpointError, match="bytes"):
        ck.prepare_state("j", "text")  # type: ignore[arg-type]


def test_pointer_header_round_trips_where_and_location() -> None:
    state = os.urandom(400_000)
    prepared = ck.prepare_state("j", state)
    location = {"topic": "_kafkaops_state", "partition": 2, "chunks": 1, "offsets": [10, 10]}
    data = ck.checkpoint_znode("j", ck.encode_header("j", {("t", 0): 5}, None, 4, "tok", prepared.doc("topic", location)))
    assert len(data) < 1000  # ZooKeeper holds the pointer, not the state
    info, inline = ck.decode_header("j", "ckpt-0000000003", data)
    assert inline == b"" and info.where == "topic" and info.external and info.location == location
    assert (info.state_size, info.stored_size, info.codec, info.chunks) == (len(state), len(state), "none", 0)
    assert ck.decode_state(info, state) == state


def test_format_1_headers_still_decode() -> None:
    """Headers written before state backends: inline, and chunked into znodes."""
    inline_v1 = b'{"v":1,"epoch":2,"created":1.5,"token":"t1","offsets":[["o",0,9]],"metadata":{},' \
                b'"state":{"size":3,"sha256":"%s","codec":"none","stored":3,"chunks":0}}\nabc' % (
                    hashlib.sha256(b"abc").hexdigest().encode())
    info, inline = ck.decode_header("j", "ckpt-0000000001", inline_v1)
    assert (info.where, info.external, info.chunks) == (ck.INLINE, False, 0)
    assert ck.decode_state(info, inline) == b"abc"
    chunked_v1 = b'{"v":1,"epoch":2,"created":1.5,"token":"t2","offsets":[],"metadata":{},' \
                 b'"state":{"size":2000000,"sha256":"00","codec":"zlib","stored":1900000,"chunks":3}}\n'
    info, _ = ck.decode_header("j", "ckpt-0000000002", chunked_v1)
    assert (info.where, info.external, info.chunks, info.codec, info.stored_size) == (ck.ZNODES, False, 3, "zlib",
                                                                                      1_900_000)


def test_no_state_and_bad_inputs() -> None:
    data = _znode("j", {("t", 0): 1}, None, None, 1, "t")
    assert json.loads(data.partition(b"\n")[0])["state"] is None
    with pytest.raises(ck.CheckpointError, match="JSON"):
        ck.encode_header("j", {}, {"x": object()}, 1, "t", None)
    with pytest.raises(ck.CheckpointError, match="exceeds a znode"):
        ck.checkpoint_znode("j", b"h" * ck.MAX_ZNODE_BYTES)
    with pytest.raises(ck.CheckpointNotFoundError):
        CheckpointStore(Coordinator("127.0.0.1:1"))._ckpt_path("j", "latest")


def test_decoding_checks_size_and_hash() -> None:
    info, stored = ck.decode_header("j", "ckpt-0000000007", _znode("j", {("t", 0): 5}, b"state", {"m": 1}, 2, "tok"))
    assert (info.offsets, info.metadata, info.epoch, info.token, info.seq) == ({("t", 0): 5}, {"m": 1}, 2, "tok", 7)
    assert ck.decode_state(info, stored) == b"state"
    with pytest.raises(ck.CheckpointCorruptError, match="SHA-256"):
        ck.decode_state(info, b"stale")
    with pytest.raises(ck.CheckpointCorruptError, match="unreadable header"):
        ck.decode_header("j", "ckpt-0000000007", b"{not json\n")
    assert ck.header_token(_znode("j", {}, None, None, 1, "tok")) == "tok" and ck.header_token(b"garbage") is None


def test_compressibility_probe() -> None:
    assert ck.compressible(b"a" * 1_000_000)
    assert not ck.compressible(os.urandom(1_000_000))


def test_directory_backend_writes_atomically_and_reports_missing_or_short_files(tmp_path: Path) -> None:
    backend = DirectoryStateBackend(tmp_path / "states")
    location = backend.locate("job-1", "tok", 5)
    assert location == {"path": str(tmp_path / "states"), "file": "job-1/tok.state"}
    assert backend.write("job-1", "tok", b"hello", location) == location
    assert backend.read("job-1", "tok", location, 5) == b"hello"
    assert [p.name for p in (tmp_path / "states" / "job-1").iterdir()] == ["tok.state"]  # no temp file left
    with pytest.raises(ck.CheckpointCorruptError, match="has 5 bytes, expected 6"):
        backend.read("job-1", "tok", location, 6)
    (tmp_path / "states" / "job-1" / ".tok.x.tmp").write_bytes(b"half")  # a write cut short by a crash
    backend.delete("job-1", "tok", location)
    backend.delete("job-1", "tok", location)  # already gone: no error
    assert list((tmp_path / "states" / "job-1").iterdir()) == []
    with pytest.raises(ck.CheckpointCorruptError, match="missing"):
        backend.read("job-1", "tok", location, 5)
    with pytest.raises(ck.CheckpointCorruptError, match="leaves its directory"):
        backend.read("j", "t", {"path": str(tmp_path), "file": "../../etc/passwd"}, 1)
    blocked = DirectoryStateBackend(tmp_path / "file-not-dir")
    (tmp_path / "file-not-dir").write_text("x")
    with pytest.raises(ck.CheckpointError, match="cannot write state"):
        blocked.write("j", "t", b"x", blocked.locate("j", "t", 1))


def test_backend_for_a_state_names_what_is_missing(tmp_path: Path) -> None:
    own = DirectoryStateBackend(tmp_path)
    assert backend_for("directory", {"path": "/elsewhere"}, own) is own
    other = backend_for("directory", {"path": "/elsewhere", "file": "j/t.state"}, None)
    assert isinstance(other, DirectoryStateBackend) and other.root == Path("/elsewhere")
    with pytest.raises(ck.CheckpointError, match="lives in Kafka topic '_kafkaops_state'.*TopicStateBackend"):
        backend_for("topic", {"topic": "_kafkaops_state"}, own)
    with pytest.raises(ck.CheckpointCorruptError, match="unknown state backend"):
        backend_for("s3", {}, None)


def test_pending_states_are_stale_when_dropped_crashed_fenced_or_superseded() -> None:
    p = PendingState("j", "tok", epoch=3, where="topic", created_ms=1000, writing=True)
    assert not p.stale(job_epoch=3, newest_checkpoint_ms=900)  # a save of the current writer in flight
    assert p.stale(job_epoch=4, newest_checkpoint_ms=900)  # its writer was fenced
    assert p.stale(job_epoch=3, newest_checkpoint_ms=1001)  # its writer committed a later save
    assert PendingState("j", "t", 3, "topic", created_ms=1000).stale(3, 0)  # its writer's session is gone
    assert PendingState("j", "t", 3, "topic", dropped=True, created_ms=1000, writing=True).stale(3, 0)


def test_local_zookeeper_is_configured_for_coordination_only(tmp_path: Path) -> None:
    from kafkaops.local.configs import zookeeper_cfg

    cfg = dict(line.split("=", 1) for line in zookeeper_cfg(tmp_path, 2181, []).splitlines())
    assert int(cfg["largeRequestThreshold"]) <= 256 * 1024 < int(cfg["largeRequestMaxBytes"]) <= 32 * 1024 * 1024
    assert cfg["autopurge.purgeInterval"] == "1" and int(cfg["snapSizeLimitInKb"]) <= 256 * 1024


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

"""What a checkpoint is, byte for byte: header, state encoding, integrity check.

A checkpoint znode holds a JSON header (offsets, metadata, the writer's epoch, the
state's size, SHA-256, codec and chunk count) and, after a newline, the state when
it fits inline. A state that does not fit is compressed with zlib when that pays
(a quick probe of three samples decides) and, if still too large, cut into chunks
stored beside the checkpoint. Reading reverses this and checks size and SHA-256, so
a damaged or partial state is never handed back. No ZooKeeper in here: the store
(:mod:`kafkaops.coord.checkpoints`) moves these bytes.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from kafkaops.errors import KafkaopsError
from kafkaops.types import TP

MAX_ZNODE_BYTES = 900_000
"""Largest znode payload we write (ZooKeeper's jute.maxbuffer is 1 MiB per request)."""
CHUNK_BYTES = 900_000
"""Size of one state chunk."""
PREFIX = "ckpt-"
"""Checkpoint znodes are ``ckpt-`` and ten digits."""
FORMAT_VERSION = 1


class CheckpointError(KafkaopsError):
    """A checkpoint could not be written or read."""


class FencedError(CheckpointError):
    """The writer's epoch is no longer the job's: another owner took over; nothing was written."""


class CheckpointNotFoundError(CheckpointError):
    """No such job or checkpoint."""


class CheckpointCorruptError(CheckpointError):
    """A checkpoint's state does not match its recorded size or SHA-256 (or a chunk is missing)."""


@dataclass(frozen=True)
class CheckpointInfo:
    """A checkpoint's header: everything but the state bytes."""

    job: str
    id: str
    epoch: int
    created: float
    offsets: dict[TP, int]
    metadata: dict[str, Any]
    state_size: int | None
    state_sha256: str | None
    codec: str
    chunks: int
    token: str
    latest: bool = False

    @property
    def seq(self) -> int:
        return int(self.id[len(PREFIX):])

    def marked_latest(self, latest: bool) -> CheckpointInfo:
        """This header with ``latest`` set as given."""
        return self if self.latest == latest else replace(self, latest=latest)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint with its state (None when saved without one)."""

    info: CheckpointInfo
    state: bytes | None = field(repr=False)

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def job(self) -> str:
        return self.info.job

    @property
    def offsets(self) -> dict[TP, int]:
        return self.info.offsets

    @property
    def metadata(self) -> dict[str, Any]:
        return self.info.metadata

    @property
    def epoch(self) -> int:
        return self.info.epoch


class Encoded(NamedTuple):
    """A checkpoint ready to write: header JSON, the inline state bytes and the state's chunks."""

    header: bytes
    inline: bytes
    chunks: list[bytes]

    @property
    def znode(self) -> bytes:
        """The checkpoint znode's data: header, newline, inline state."""
        return self.header + b"\n" + self.inline


def is_checkpoint_id(name: str) -> bool:
    return name.startswith(PREFIX) and name[len(PREFIX):].isdigit()


def encode(
    job: str,
    offsets: Mapping[TP, int],
    state: bytes | None,
    metadata: Mapping[str, Any] | None,
    epoch: int,
    token: str,
) -> Encoded:
    """Header and state of a checkpoint: inline if it fits a znode, else (zlib-compressed
    when compressible) in chunks. CheckpointError for a state that is not bytes, offsets or
    metadata that are not JSON, or a header too large for a znode."""
    state_doc: dict[str, Any] | None = None
    inline = b""
    chunks: list[bytes] = []
    if state is not None:
        if not isinstance(state, (bytes, bytearray, memoryview)):
            raise CheckpointError(f"job {job!r}: state must be bytes, not {type(state).__name__}")
        raw = bytes(state)
        codec, stored = "none", raw
        if len(raw) > MAX_ZNODE_BYTES and compressible(raw):
            packed = zlib.compress(raw, 1)
            if len(packed) < len(raw):
                codec, stored = "zlib", packed
        state_doc = {"size": len(raw), "sha256": hashlib.sha256(raw).hexdigest(), "codec": codec,
                     "stored": len(stored), "chunks": 0}
        inline = stored
    try:
        doc = {
            "v": FORMAT_VERSION,
            "epoch": epoch,
            "created": time.time(),
            "token": token,
            "offsets": sorted([t, int(p), int(o)] for (t, p), o in offsets.items()),
            "metadata": dict(metadata or {}),
            "state": state_doc,
        }
        header = json.dumps(doc, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"job {job!r}: offsets/metadata are not JSON-serialisable: {exc}") from exc
    if len(header) + 1 + len(inline) > MAX_ZNODE_BYTES and state_doc is not None:
        chunks = [inline[i:i + CHUNK_BYTES] for i in range(0, len(inline), CHUNK_BYTES)] or [b""]
        state_doc["chunks"] = len(chunks)
        inline = b""
        header = json.dumps(doc, separators=(",", ":")).encode()
    if len(header) + 1 + len(inline) > MAX_ZNODE_BYTES:
        raise CheckpointError(f"job {job!r}: checkpoint header of {len(header)} bytes exceeds a znode "
                              "(too many partitions or too much metadata)")
    return Encoded(header, inline, chunks)


def decode_header(job: str, ckpt_id: str, data: bytes) -> tuple[CheckpointInfo, bytes]:
    """The header of checkpoint znode data, and its inline state bytes."""
    head, _, inline = data.partition(b"\n")
    try:
        doc = json.loads(head)
        st = doc.get("state") or {}
        info = CheckpointInfo(
            job=job,
            id=ckpt_id,
            epoch=int(doc["epoch"]),
            created=float(doc["created"]),
            offsets={(str(t), int(p)): int(o) for t, p, o in doc["offsets"]},
            metadata=dict(doc.get("metadata") or {}),
            state_size=int(st["size"]) if st else None,
            state_sha256=str(st["sha256"]) if st else None,
            codec=str(st.get("codec", "none")) if st else "none",
            chunks=int(st.get("chunks", 0)) if st else 0,
            token=str(doc.get("token", "")),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointCorruptError(f"job {job!r}: checkpoint {ckpt_id} has an unreadable header: {exc}") from exc
    return info, inline


def header_token(data: bytes) -> str | None:
    """The save token in checkpoint znode data (names its chunks), None if unreadable."""
    try:
        return str(json.loads(data.partition(b"\n")[0]).get("token", ""))
    except (ValueError, AttributeError):
        return None


def decode_state(info: CheckpointInfo, stored: bytes) -> bytes:
    """The state from its stored bytes (inline or joined chunks): decompressed and checked
    against the header's size and SHA-256; CheckpointCorruptError when it does not match."""
    where = f"job {info.job!r}: checkpoint {info.id}"
    state = stored
    if info.codec == "zlib":
        try:
            state = zlib.decompress(stored)
        except zlib.error as exc:
            raise CheckpointCorruptError(f"{where}: state does not decompress") from exc
    elif info.codec != "none":
        raise CheckpointCorruptError(f"{where}: unknown codec {info.codec!r}")
    if len(state) != info.state_size or hashlib.sha256(state).hexdigest() != info.state_sha256:
        raise CheckpointCorruptError(
            f"{where}: state fails its SHA-256/size check ({len(state)} bytes, expected {info.state_size})")
    return state


def compressible(data: bytes, sample: int = 64 * 1024) -> bool:
    """Whether zlib is worth it: compress three samples (start, middle, end) and
    skip compression of already-compressed or random data (saves ~0.1 s per MB)."""
    mid = len(data) // 2
    probe = data[:sample] + data[mid:mid + sample] + data[-sample:]
    return len(zlib.compress(probe, 1)) < 0.9 * len(probe)

"""What a checkpoint is, byte for byte: header, where its state lives, integrity check.

A checkpoint znode holds a JSON header (offsets, metadata, the writer's epoch and the
state's size, SHA-256, codec and *where* it lives) and, after a newline, the state
itself when it is small (``inline``). A larger state lives in a state backend (a
compacted Kafka topic or a directory, see :mod:`kafkaops.coord.state_backends`): the
header then holds only a pointer to it (backend + location + stored size + SHA-256),
so ZooKeeper keeps coordination data only. Large states are zlib-compressed first when
that pays (a quick probe of three samples decides).

Format 1 (before state backends) chunked large states into znodes beside the
checkpoint; those headers still decode (``where == "znodes"``) so old checkpoints load.
Reading checks size and SHA-256, so a damaged or partial state is never handed back.
No ZooKeeper and no Kafka in here: the store moves these bytes.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from kafkaops.errors import KafkaopsError
from kafkaops.types import TP

MAX_ZNODE_BYTES = 900_000
"""Largest checkpoint znode we write (ZooKeeper's jute.maxbuffer is 1 MiB per request)."""
INLINE_LIMIT = 256 * 1024
"""States up to this size stay inline in the checkpoint znode; larger ones go to a state backend."""
MAX_STATE_BYTES = 512 * 1024 * 1024
"""Default per-checkpoint state size limit (checked before anything is written)."""
PREFIX = "ckpt-"
"""Checkpoint znodes are ``ckpt-`` and ten digits."""
FORMAT_VERSION = 2
INLINE, ZNODES = "inline", "znodes"
"""``where`` of states kept in the checkpoint znode, and of format-1 chunked states."""


class CheckpointError(KafkaopsError):
    """A checkpoint could not be written or read."""


class FencedError(CheckpointError):
    """The writer's epoch is no longer the job's: another owner took over; nothing was written."""


class CheckpointNotFoundError(CheckpointError):
    """No such job or checkpoint."""


class CheckpointCorruptError(CheckpointError):
    """A checkpoint's state does not match its recorded size or SHA-256 (or a part of it is missing)."""


class StateTooLargeError(CheckpointError):
    """A state over the store's limits (refused before anything is written)."""


@dataclass(frozen=True)
class CheckpointInfo:
    """A checkpoint's header: everything but the state bytes.

    ``where`` is ``inline`` (in the znode), ``topic`` or ``directory`` (a state backend;
    ``location`` says where in it), or ``znodes`` (format-1 chunks, ``chunks`` of them);
    ``stored_size`` is the size as stored (compressed when ``codec`` is ``zlib``).
    """

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
    where: str = INLINE
    location: dict[str, Any] = field(default_factory=dict)
    stored_size: int | None = None

    @property
    def seq(self) -> int:
        return int(self.id[len(PREFIX):])

    @property
    def external(self) -> bool:
        """True when the state lives in a state backend (the znode holds a pointer)."""
        return self.state_size is not None and self.where not in (INLINE, ZNODES)

    def marked_latest(self, latest: bool) -> CheckpointInfo:
        """This header with ``latest`` set as given."""
        return self if self.latest == latest else replace(self, latest=latest)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint with its state (None when saved without one, or not loaded)."""

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


@dataclass(frozen=True)
class PreparedState:
    """A state ready to store: its digest and the bytes to store (maybe compressed)."""

    size: int
    sha256: str
    codec: str
    stored: bytes = field(repr=False)

    def doc(self, where: str, location: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The header's ``state`` section for this state stored ``where``."""
        doc: dict[str, Any] = {"size": self.size, "sha256": self.sha256, "codec": self.codec,
                               "stored": len(self.stored), "where": where}
        if location:
            doc["location"] = dict(location)
        return doc


def is_checkpoint_id(name: str) -> bool:
    return name.startswith(PREFIX) and name[len(PREFIX):].isdigit()


def state_bytes(job: str, state: Any) -> bytes:
    """``state`` as bytes; CheckpointError when it is not bytes-like."""
    if not isinstance(state, (bytes, bytearray, memoryview)):
        raise CheckpointError(f"job {job!r}: state must be bytes, not {type(state).__name__}")
    return bytes(state)


def prepare_state(job: str, state: bytes, *, inline_limit: int = INLINE_LIMIT,
                  max_bytes: int = MAX_STATE_BYTES, digest: bool = True) -> PreparedState:
    """Digest (and compress, when it goes to a backend and compresses) a state.
    StateTooLargeError over ``max_bytes``; CheckpointError when it is not bytes.
    ``digest=False`` leaves ``sha256`` empty for the caller to fill in (see :func:`sha256_later`)."""
    raw = state_bytes(job, state)
    if len(raw) > max_bytes:
        raise StateTooLargeError(
            f"job {job!r}: state of {_size(len(raw))} exceeds the per-checkpoint limit of {_size(max_bytes)} "
            "(CheckpointStore(max_state_bytes=...)); nothing was written")
    codec, stored = "none", raw
    if len(raw) > inline_limit and compressible(raw):
        packed = zlib.compress(raw, 1)
        if len(packed) < len(raw):
            codec, stored = "zlib", packed
    return PreparedState(len(raw), hashlib.sha256(raw).hexdigest() if digest else "", codec, stored)


_HASHER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kafkaops-sha256")


def sha256_later(data: bytes) -> Future[str]:
    """The SHA-256 of ``data`` computed on a helper thread (hashlib releases the GIL), so a
    large state is hashed while it is being written rather than before."""
    return _HASHER.submit(lambda: hashlib.sha256(data).hexdigest())


def encode_header(
    job: str,
    offsets: Mapping[TP, int],
    metadata: Mapping[str, Any] | None,
    epoch: int,
    token: str,
    state_doc: Mapping[str, Any] | None,
) -> bytes:
    """The header JSON. CheckpointError for offsets or metadata that are not JSON."""
    try:
        doc = {
            "v": FORMAT_VERSION,
            "epoch": epoch,
            "created": time.time(),
            "token": token,
            "offsets": sorted([t, int(p), int(o)] for (t, p), o in offsets.items()),
            "metadata": dict(metadata or {}),
            "state": dict(state_doc) if state_doc is not None else None,
        }
        return json.dumps(doc, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"job {job!r}: offsets/metadata are not JSON-serialisable: {exc}") from exc


def checkpoint_znode(job: str, header: bytes, inline: bytes = b"") -> bytes:
    """The checkpoint znode's data: header, newline, inline state; CheckpointError when too large."""
    if len(header) + 1 + len(inline) > MAX_ZNODE_BYTES:
        raise CheckpointError(f"job {job!r}: checkpoint header of {len(header)} bytes exceeds a znode "
                              "(too many partitions or too much metadata)")
    return header + b"\n" + inline


def decode_header(job: str, ckpt_id: str, data: bytes) -> tuple[CheckpointInfo, bytes]:
    """The header of checkpoint znode data (format 1 or 2), and its inline state bytes."""
    head, _, inline = data.partition(b"\n")
    try:
        doc = json.loads(head)
        st = doc.get("state") or {}
        chunks = int(st.get("chunks", 0)) if st else 0
        where = str(st.get("where") or (ZNODES if chunks else INLINE)) if st else INLINE
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
            chunks=chunks,
            token=str(doc.get("token", "")),
            where=where,
            location=dict(st.get("location") or {}) if st else {},
            stored_size=int(st.get("stored", st["size"])) if st else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointCorruptError(f"job {job!r}: checkpoint {ckpt_id} has an unreadable header: {exc}") from exc
    return info, inline


def header_token(data: bytes) -> str | None:
    """The save token in checkpoint znode data (names its state), None if unreadable."""
    try:
        return str(json.loads(data.partition(b"\n")[0]).get("token", ""))
    except (ValueError, AttributeError):
        return None


def decode_state(info: CheckpointInfo, stored: bytes, sha256: str | None = None) -> bytes:
    """The state from its stored bytes (inline, joined chunks or a backend's): decompressed
    and checked against the header's size and SHA-256 (``sha256``: the state's digest when the
    caller computed it already); CheckpointCorruptError when it does not match."""
    where = f"job {info.job!r}: checkpoint {info.id}"
    state = stored
    if info.codec == "zlib":
        try:
            state = zlib.decompress(stored)
        except zlib.error as exc:
            raise CheckpointCorruptError(f"{where}: state does not decompress (damaged)") from exc
    elif info.codec != "none":
        raise CheckpointCorruptError(f"{where}: unknown codec {info.codec!r}")
    if len(state) != info.state_size or (sha256 or hashlib.sha256(state).hexdigest()) != info.state_sha256:
        raise CheckpointCorruptError(
            f"{where}: state fails its SHA-256/size check ({len(state)} bytes, expected {info.state_size})")
    return state


def compressible(data: bytes, sample: int = 16 * 1024) -> bool:
    """Whether zlib is worth it: compress three samples (start, middle, end) and
    skip compression of already-compressed or random data (a millisecond, where
    compressing random data would cost ~10 ms per MB for nothing)."""
    mid = len(data) // 2
    probe = data[:sample] + data[mid:mid + sample] + data[-sample:]
    return len(zlib.compress(probe, 1)) < 0.9 * len(probe)


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"

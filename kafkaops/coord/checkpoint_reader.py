"""CheckpointReader: the read side of checkpoints — headers, states, jobs, pending states.

Paths, the job's pointer and checkpoint znodes (see :mod:`kafkaops.coord.checkpoints`
for the layout and the write side), and loading a state from where its header says it
lives: inline, a state backend (the store's own, or a directory named in the pointer),
or format-1 chunk znodes; always checked against its size and SHA-256. Every ZooKeeper
wait is bounded.
"""

from __future__ import annotations

import builtins
import hashlib
from typing import Any

from kazoo.exceptions import NoNodeError

from kafkaops.coord.checkpoint_chunks import StateChunks
from kafkaops.coord.checkpoint_format import (
    INLINE,
    ZNODES,
    Checkpoint,
    CheckpointError,
    CheckpointInfo,
    CheckpointNotFoundError,
    decode_header,
    decode_state,
    is_checkpoint_id,
)
from kafkaops.coord.checkpoint_pending import PendingState, PendingStates
from kafkaops.coord.checkpoint_zk import ZOOKEEPER_WAIT, BoundedZooKeeper
from kafkaops.coord.election import epoch_path
from kafkaops.coord.session import Coordinator
from kafkaops.coord.state_backends import Location, StateBackend, backend_for

POINTER = "latest"
"""The pointer znode's name."""


class CheckpointReader:
    """Reads jobs' checkpoints under ``<root>/checkpoints`` on one Coordinator; states in a
    topic need ``state_backend`` (a TopicStateBackend), directory states name their directory."""

    def __init__(self, coordinator: Coordinator, state_backend: StateBackend | None = None, *,
                 zookeeper_wait: float = ZOOKEEPER_WAIT) -> None:
        self.coordinator = coordinator
        self.state_backend = state_backend
        self.zk = BoundedZooKeeper(coordinator, zookeeper_wait)
        self.chunks = StateChunks(self.zk)
        self.pending = PendingStates(self.zk)

    # ---- paths -----------------------------------------------------------------------

    def job_path(self, job: str) -> str:
        return self.coordinator.path("checkpoints", job)

    def _ckpt_path(self, job: str, ckpt_id: str) -> str:
        if not is_checkpoint_id(ckpt_id):
            raise CheckpointNotFoundError(f"job {job!r}: {ckpt_id!r} is not a checkpoint id (ckpt-NNNNNNNNNN)")
        return self.coordinator.path("checkpoints", job, ckpt_id)

    def _pointer(self, job: str) -> str:
        return self.coordinator.path("checkpoints", job, POINTER)

    # ---- ownership -------------------------------------------------------------------

    def owner(self, job: str) -> tuple[int, str] | None:
        """(epoch, owner) of the job, None if never claimed."""
        what = f"owner of job {job!r}"
        with self.coordinator.translate_errors(what):
            try:
                data, stat = self.zk.call(what, self.coordinator.client.get_async, epoch_path(self.coordinator, job))
            except NoNodeError:
                return None
            return int(stat.version), bytes(data or b"").decode("utf-8", "replace")

    # ---- reading ---------------------------------------------------------------------

    def _get_znode(self, job: str, ckpt_id: str) -> tuple[bytes, Any]:
        client = self.coordinator.client
        try:
            data, stat = self.zk.call(f"read checkpoint {ckpt_id} of job {job!r}", client.get_async,
                                      self._ckpt_path(job, ckpt_id))
        except NoNodeError:
            raise CheckpointNotFoundError(f"job {job!r} has no checkpoint {ckpt_id}") from None
        return bytes(data or b""), stat

    def _pointer_target_or_none(self, job: str) -> str | None:
        client = self.coordinator.client
        try:
            data, _ = self.zk.call(f"read the checkpoint pointer of job {job!r}", client.get_async,
                                   self._pointer(job))
        except NoNodeError:
            return None
        return bytes(data or b"").decode() or None

    def _read(self, job: str, ckpt_id: str) -> tuple[CheckpointInfo, bytes]:
        return decode_header(job, ckpt_id, self._get_znode(job, ckpt_id)[0])

    def _backend(self, where: str, location: Location) -> StateBackend:
        return backend_for(where, location, self.state_backend)

    def _load(self, info: CheckpointInfo, inline: bytes) -> Checkpoint:
        if info.state_size is None:
            return Checkpoint(info, None)
        if info.where == INLINE:
            stored = inline
        elif info.where == ZNODES:
            stored = self.chunks.read(info)
        else:
            backend = self._backend(info.where, info.location)
            hasher, fed = hashlib.sha256(), [0]

            def hash_part(part: bytes) -> None:  # the state is hashed while the rest is read
                hasher.update(part)
                fed[0] += len(part)

            stored = backend.read(info.job, info.token, info.location, int(info.stored_size or 0),
                                  hash_part if info.codec == "none" else None)
            digest = hasher.hexdigest() if info.codec == "none" and fed[0] == len(stored) else None
            return Checkpoint(info, decode_state(info, stored, digest))
        return Checkpoint(info, decode_state(info, stored))

    def info(self, job: str, ckpt_id: str | None = None) -> CheckpointInfo:
        """The header of checkpoint ``ckpt_id`` (default: the job's current one), without its state."""
        with self.coordinator.translate_errors(f"read checkpoint header of job {job!r}"):
            target = self._pointer_target_or_none(job)
            ckpt_id = ckpt_id or target
            if ckpt_id is None:
                raise CheckpointNotFoundError(f"job {job!r} has no checkpoints")
            return self._read(job, ckpt_id)[0].marked_latest(ckpt_id == target)

    def get(self, job: str, ckpt_id: str) -> Checkpoint:
        """The checkpoint ``ckpt_id`` with its state, verified against its SHA-256."""
        what = f"read checkpoint {ckpt_id} of job {job!r}"
        with self.coordinator.translate_errors(what):
            self.zk.writable(what)
            pointer = self.coordinator.client.get_async(self._pointer(job))  # pipelined with the header read
            info, inline = self._read(job, ckpt_id)
            try:
                latest = bytes(pointer.get(timeout=self.zk.wait)[0] or b"").decode() == ckpt_id
            except NoNodeError:
                latest = False
            return self._load(info.marked_latest(latest), inline)

    def latest(self, job: str) -> Checkpoint | None:
        """The checkpoint the job's pointer refers to (None if the job has none)."""
        for _ in range(5):
            with self.coordinator.translate_errors(f"read latest checkpoint of job {job!r}"):
                target = self._pointer_target_or_none(job)
                if target is None:
                    return None
                try:
                    info, inline = self._read(job, target)
                except CheckpointNotFoundError:
                    continue  # pruned/restored between the two reads: read the pointer again
                return self._load(info.marked_latest(True), inline)
        raise CheckpointError(f"job {job!r}: latest checkpoint kept changing while reading it")

    def list(self, job: str) -> list[CheckpointInfo]:
        """Headers of the job's checkpoints, oldest first (``latest`` marks the pointer's)."""
        with self.coordinator.translate_errors(f"list checkpoints of job {job!r}"):
            ids = self._ids(job)
            target = self._pointer_target_or_none(job)
            infos: builtins.list[CheckpointInfo] = []
            for ckpt_id in ids:
                try:
                    infos.append(self._read(job, ckpt_id)[0].marked_latest(ckpt_id == target))
                except CheckpointNotFoundError:
                    continue
            return infos

    def jobs(self) -> builtins.list[str]:
        """Names of all jobs with a checkpoint directory."""
        client = self.coordinator.client
        with self.coordinator.translate_errors("list checkpoint jobs"):
            try:
                return sorted(self.zk.call("list checkpoint jobs", client.get_children_async,
                                           self.coordinator.path("checkpoints")))
            except NoNodeError:
                return []

    def unreferenced(self, job: str) -> builtins.list[PendingState]:
        """States no checkpoint of the job references: saves in flight or abandoned, and
        states of pruned checkpoints not deleted yet."""
        with self.coordinator.translate_errors(f"list unreferenced states of job {job!r}"):
            return self.pending.list(job)

    def _ids(self, job: str) -> builtins.list[str]:
        client = self.coordinator.client
        try:
            children = self.zk.call(f"list checkpoints of job {job!r}", client.get_children_async, self.job_path(job))
        except NoNodeError:
            raise CheckpointNotFoundError(f"no checkpoints for job {job!r}") from None
        return sorted(c for c in children if is_checkpoint_id(c))


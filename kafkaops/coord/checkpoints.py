"""CheckpointStore: versioned, fenced, chunked checkpoints of a job in ZooKeeper.

Layout under ``<root>/checkpoints/<job>/``::

    latest                   the pointer: data = id of the current checkpoint;
                             its version numbers the checkpoints (ids never repeat)
    ckpt-0000000042          JSON header (offsets, metadata, epoch, state digest)
                             + newline + the state bytes when they fit inline
    chunks/<token>-0000 ...  compressed state in chunks when it does not fit a znode

A save is ONE ZooKeeper transaction: check the job's epoch znode
(``<root>/leaders/<job>/epoch``, see :mod:`kafkaops.coord.election`) still has the
writer's epoch as its version, check every chunk is there, create the checkpoint and
move the pointer. A writer whose epoch is stale (a zombie after losing its session or
its leadership) gets :class:`FencedError` and writes nothing; chunks it wrote before
the commit are removed, and chunks left by a crashed writer are pruned later.
"""

from __future__ import annotations

import builtins
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from kazoo.exceptions import (
    BadVersionError,
    ConnectionLoss,
    NodeExistsError,
    NoNodeError,
    OperationTimeoutError,
    RolledBackError,
    RuntimeInconsistency,
)

from kafkaops.coord.checkpoint_chunks import StateChunks
from kafkaops.coord.checkpoint_format import (
    CHUNK_BYTES,
    MAX_ZNODE_BYTES,
    PREFIX,
    Checkpoint,
    CheckpointCorruptError,
    CheckpointError,
    CheckpointInfo,
    CheckpointNotFoundError,
    FencedError,
    decode_header,
    decode_state,
    encode,
    header_token,
    is_checkpoint_id,
)
from kafkaops.coord.election import bump_epoch, current_epoch, epoch_path
from kafkaops.coord.session import Coordinator, CoordinatorError
from kafkaops.types import TP

log = logging.getLogger(__name__)

POINTER = "latest"
"""The pointer znode's name."""


class CheckpointStore:
    """Checkpoints of jobs under ``<root>/checkpoints`` on one Coordinator."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator
        self.chunks = StateChunks(coordinator)
        self._pointer_version: dict[str, int] = {}
        self._ready: set[str] = set()

    # ---- paths -----------------------------------------------------------------------

    def job_path(self, job: str) -> str:
        return self.coordinator.path("checkpoints", job)

    def _ckpt_path(self, job: str, ckpt_id: str) -> str:
        if not is_checkpoint_id(ckpt_id):
            raise CheckpointNotFoundError(f"job {job!r}: {ckpt_id!r} is not a checkpoint id (ckpt-NNNNNNNNNN)")
        return self.coordinator.path("checkpoints", job, ckpt_id)

    # ---- ownership -------------------------------------------------------------------

    def claim(self, job: str, owner: str) -> int:
        """Become the job's writer ("last claim wins"): returns the new epoch; every
        writer holding an older epoch is fenced. A job run under
        :class:`~kafkaops.coord.election.Leadership` of the same name uses the
        leadership epoch instead."""
        with self.coordinator.translate_errors(f"claim job {job!r}"):
            return bump_epoch(self.coordinator, job, owner)

    def owner(self, job: str) -> tuple[int, str] | None:
        """(epoch, owner) of the job, None if never claimed."""
        with self.coordinator.translate_errors(f"owner of job {job!r}"):
            return current_epoch(self.coordinator, job)

    # ---- writing ---------------------------------------------------------------------

    def save(
        self,
        job: str,
        offsets: Mapping[TP, int],
        state: bytes | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        epoch: int,
    ) -> str:
        """Write a checkpoint fenced by ``epoch``; returns its id (``ckpt-NNNNNNNNNN``).

        Raises FencedError (nothing written) if the job's epoch moved on, and
        CheckpointError / NotWritableError when ZooKeeper cannot take it.
        """
        coord = self.coordinator
        coord.wait_writable()
        with coord.translate_errors(f"save checkpoint of job {job!r}"):
            self._prepare(job)
            token = uuid.uuid4().hex[:16]
            encoded = encode(job, offsets, state, metadata, epoch, token)
            chunk_paths = self.chunks.write(job, token, encoded.chunks)
            try:
                return self._commit(job, epoch, token, encoded.znode, chunk_paths)
            except BaseException:
                self.chunks.delete_quietly(chunk_paths)
                raise

    def _prepare(self, job: str) -> None:
        if job in self._ready:
            return
        coord = self.coordinator
        coord.ensure_path(self.job_path(job))
        coord.ensure_path(self.chunks.directory(job))
        try:
            coord.retry(coord.client.create, coord.path("checkpoints", job, POINTER), b"", acl=coord.acl)
        except NodeExistsError:
            pass
        self._ready.add(job)

    def _commit(self, job: str, epoch: int, token: str, data: bytes, chunk_paths: list[str]) -> str:
        coord = self.coordinator
        client = coord.client
        fence = epoch_path(coord, job)
        pointer = coord.path("checkpoints", job, POINTER)
        for _ in range(20):
            version = self._pointer_version.get(job)
            if version is None:
                version = int(coord.retry(client.exists, pointer).version)
            ckpt_id = f"{PREFIX}{version + 1:010d}"
            txn = client.transaction()
            txn.check(fence, epoch)
            for p in chunk_paths:
                txn.check(p, 0)
            txn.create(coord.path("checkpoints", job, ckpt_id), data, acl=coord.acl)
            txn.set_data(pointer, ckpt_id.encode(), version=version)
            try:
                results = txn.commit()
            except (ConnectionLoss, OperationTimeoutError):
                # outcome unknown: look whether our checkpoint became the latest
                coord.wait_writable()
                self._pointer_version.pop(job, None)
                landed = self._latest_token(job)
                if landed is not None and landed[1] == token:
                    return landed[0]
                continue
            errors = [r for r in results
                      if isinstance(r, Exception) and not isinstance(r, (RolledBackError, RuntimeInconsistency))]
            if not errors:
                self._pointer_version[job] = version + 1
                log.debug("job %s: saved %s (epoch %d)", job, ckpt_id, epoch)
                return ckpt_id
            if isinstance(results[0], (BadVersionError, NoNodeError)):
                self._pointer_version.pop(job, None)
                owner = current_epoch(coord, job)
                now = f"epoch {owner[0]} of {owner[1]!r}" if owner else "never claimed"
                raise FencedError(f"job {job!r}: writer with epoch {epoch} is fenced (job is at {now}); "
                                  "nothing was written")
            if any(isinstance(r, NoNodeError) for r in results[1:1 + len(chunk_paths)]):
                raise CheckpointCorruptError(f"job {job!r}: state chunks vanished before commit")
            # pointer moved (another save with the same epoch, or a restore): re-read, retry
            self._pointer_version.pop(job, None)
        raise CheckpointError(f"job {job!r}: could not commit checkpoint (pointer kept moving)")

    def _latest_token(self, job: str) -> tuple[str, str] | None:
        try:
            info = self._info(job, self._pointer_target(job))
        except CheckpointNotFoundError:
            return None
        return info.id, info.token

    # ---- reading ---------------------------------------------------------------------

    def _pointer_target(self, job: str) -> str:
        coord = self.coordinator
        try:
            data, _ = coord.retry(coord.client.get, coord.path("checkpoints", job, POINTER))
        except NoNodeError:
            raise CheckpointNotFoundError(f"job {job!r} has no checkpoints") from None
        target = bytes(data or b"").decode()
        if not target:
            raise CheckpointNotFoundError(f"job {job!r} has no checkpoints")
        return target

    def _read(self, job: str, ckpt_id: str) -> tuple[CheckpointInfo, bytes]:
        coord = self.coordinator
        try:
            data, _ = coord.retry(coord.client.get, self._ckpt_path(job, ckpt_id))
        except NoNodeError:
            raise CheckpointNotFoundError(f"job {job!r} has no checkpoint {ckpt_id}") from None
        return decode_header(job, ckpt_id, bytes(data or b""))

    def _info(self, job: str, ckpt_id: str) -> CheckpointInfo:
        return self._read(job, ckpt_id)[0]

    def get(self, job: str, ckpt_id: str) -> Checkpoint:
        """The checkpoint ``ckpt_id`` with its state, verified against its SHA-256."""
        with self.coordinator.translate_errors(f"read checkpoint {ckpt_id} of job {job!r}"):
            latest = self._pointer_target_or_none(job) == ckpt_id
        return self._get(job, ckpt_id, latest)

    def _get(self, job: str, ckpt_id: str, latest: bool) -> Checkpoint:
        with self.coordinator.translate_errors(f"read checkpoint {ckpt_id} of job {job!r}"):
            info, inline = self._read(job, ckpt_id)
            info = info.marked_latest(latest)
            if info.state_size is None:
                return Checkpoint(info, None)
            stored = self.chunks.read(info) if info.chunks else inline
        return Checkpoint(info, decode_state(info, stored))

    def _pointer_target_or_none(self, job: str) -> str | None:
        try:
            return self._pointer_target(job)
        except CheckpointNotFoundError:
            return None

    def latest(self, job: str) -> Checkpoint | None:
        """The checkpoint the job's pointer refers to (None if the job has none)."""
        for _ in range(5):
            with self.coordinator.translate_errors(f"read latest checkpoint of job {job!r}"):
                target = self._pointer_target_or_none(job)
            if target is None:
                return None
            try:
                return self._get(job, target, True)
            except CheckpointNotFoundError:
                continue  # pruned/restored between the two reads: read the pointer again
        raise CheckpointError(f"job {job!r}: latest checkpoint kept changing while reading it")

    def list(self, job: str) -> list[CheckpointInfo]:
        """Headers of the job's checkpoints, oldest first (``latest`` marks the pointer's)."""
        with self.coordinator.translate_errors(f"list checkpoints of job {job!r}"):
            ids = self._ids(job)
            target = self._pointer_target_or_none(job)
            infos: builtins.list[CheckpointInfo] = []
            for ckpt_id in ids:
                try:
                    infos.append(self._info(job, ckpt_id).marked_latest(ckpt_id == target))
                except CheckpointNotFoundError:
                    continue
            return infos

    def jobs(self) -> builtins.list[str]:
        """Names of all jobs with a checkpoint directory."""
        coord = self.coordinator
        with coord.translate_errors("list checkpoint jobs"):
            try:
                return sorted(coord.retry(coord.client.get_children, coord.path("checkpoints")))
            except NoNodeError:
                return []

    def _ids(self, job: str) -> builtins.list[str]:
        coord = self.coordinator
        try:
            children = coord.retry(coord.client.get_children, self.job_path(job))
        except NoNodeError:
            raise CheckpointNotFoundError(f"no checkpoints for job {job!r}") from None
        return sorted(c for c in children if c.startswith(PREFIX))

    # ---- operating -------------------------------------------------------------------

    def restore(self, job: str, ckpt_id: str, *, owner: str = "restore") -> int:
        """Point the job at checkpoint ``ckpt_id``. Claims the job first, so a writer
        still running is fenced and cannot move the pointer past it; returns the new
        epoch (the job's next writer claims again)."""
        coord = self.coordinator
        with coord.translate_errors(f"restore job {job!r}"):
            self._info(job, ckpt_id)  # exists and is readable
            epoch = self.claim(job, owner)
            pointer = coord.path("checkpoints", job, POINTER)
            txn = coord.client.transaction()
            txn.check(epoch_path(coord, job), epoch)
            txn.check(self._ckpt_path(job, ckpt_id), 0)
            txn.set_data(pointer, ckpt_id.encode())
            results = txn.commit()
            if any(isinstance(r, Exception) for r in results):
                raise CheckpointError(f"job {job!r}: restore to {ckpt_id} raced with another owner or prune")
        self._pointer_version.pop(job, None)
        log.info("job %s now points at %s (epoch %d)", job, ckpt_id, epoch)
        return epoch

    def prune(self, job: str, keep: int = 5) -> builtins.list[str]:
        """Delete all but the newest ``keep`` checkpoints (never the pointer's) and orphan
        chunks left by aborted saves; returns the deleted checkpoint ids."""
        if keep < 1:
            raise CheckpointError(f"prune keeps at least one checkpoint, not {keep}")
        coord = self.coordinator
        client = coord.client
        deleted: builtins.list[str] = []
        with coord.translate_errors(f"prune job {job!r}"):
            ids = self._ids(job)
            target = self._pointer_target_or_none(job)
            doomed = [i for i in ids[:-keep] if i != target] if len(ids) > keep else []
            survivors = [i for i in ids if i not in doomed]
            tokens: set[str] = set()
            newest_ctime = 0
            for ckpt_id in survivors:
                try:
                    data, stat = coord.retry(client.get, self._ckpt_path(job, ckpt_id))
                except NoNodeError:
                    continue
                newest_ctime = max(newest_ctime, int(stat.ctime))
                token = header_token(bytes(data or b""))
                if token is not None:
                    tokens.add(token)
            for ckpt_id in doomed:
                try:
                    coord.retry(client.delete, self._ckpt_path(job, ckpt_id))
                    deleted.append(ckpt_id)
                except NoNodeError:
                    pass
            # chunks of deleted checkpoints, and orphans older than the newest checkpoint
            removed_chunks = self.chunks.remove_orphans(job, tokens, newest_ctime)
        if deleted or removed_chunks:
            log.info("job %s: pruned %d checkpoints and %d chunks", job, len(deleted), removed_chunks)
        return deleted

    def delete_job(self, job: str) -> None:
        """Remove all of a job's checkpoints and its epoch (for tests and cleanup)."""
        coord = self.coordinator
        with coord.translate_errors(f"delete job {job!r}"):
            for path in (self.job_path(job), coord.path("leaders", job)):
                try:
                    coord.retry(coord.client.delete, path, recursive=True)
                except NoNodeError:
                    pass
        self._ready.discard(job)
        self._pointer_version.pop(job, None)


__all__ = [
    "CHUNK_BYTES",
    "MAX_ZNODE_BYTES",
    "POINTER",
    "PREFIX",
    "Checkpoint",
    "CheckpointCorruptError",
    "CheckpointError",
    "CheckpointInfo",
    "CheckpointNotFoundError",
    "CheckpointStore",
    "CoordinatorError",
    "FencedError",
]

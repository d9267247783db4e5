"""CheckpointStore: versioned, fenced checkpoints of a job; ZooKeeper holds what coordinates.

Layout under ``<root>/checkpoints/<job>/``::

    latest                   the pointer: data = id of the current checkpoint;
                             its version numbers the checkpoints (ids never repeat)
    ckpt-0000000042          JSON header (offsets, metadata, epoch, state digest)
                             + newline + the state when it is small (inline)
    pending/<token>          a backend state no checkpoint references (see checkpoint_pending)
    chunks/<token>-NNNN      format-1 chunked states (read, never written)

A state over ``inline_limit`` (256 KB) goes to the store's state backend (a compacted
Kafka topic or a directory) and the checkpoint keeps a pointer: backend, location,
size and SHA-256. The order cannot lose: the state is written and acknowledged first,
then ONE ZooKeeper transaction checks the job's epoch znode
(``<root>/leaders/<job>/epoch``, see :mod:`kafkaops.coord.election`) still has the
writer's epoch, creates the checkpoint and moves the pointer. A writer whose epoch is
stale (a zombie) gets :class:`FencedError` and its state is deleted again; a crash in
between leaves only an unreferenced state, which the next save and ``prune`` delete.
Every ZooKeeper wait is bounded (``zookeeper_wait``): with ZooKeeper gone a save fails
with NotWritableError instead of hanging.
"""

from __future__ import annotations

import builtins
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
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

from kafkaops.coord.checkpoint_format import (
    INLINE,
    INLINE_LIMIT,
    MAX_STATE_BYTES,
    PREFIX,
    Checkpoint,
    CheckpointCorruptError,
    CheckpointError,
    CheckpointInfo,
    CheckpointNotFoundError,
    FencedError,
    StateTooLargeError,
    checkpoint_znode,
    decode_header,
    encode_header,
    header_token,
    prepare_state,
    sha256_later,
    state_bytes,
)
from kafkaops.coord.checkpoint_pending import PendingState
from kafkaops.coord.checkpoint_reader import POINTER, CheckpointReader
from kafkaops.coord.checkpoint_zk import ZOOKEEPER_WAIT
from kafkaops.coord.election import epoch_path
from kafkaops.coord.session import Coordinator, CoordinatorError, NotWritableError
from kafkaops.coord.state_backends import Location, StateBackend
from kafkaops.types import TP

log = logging.getLogger(__name__)


class StateDroppedError(CheckpointError):
    """A save's state was deleted by a concurrent prune before its commit; nothing was committed."""


class CheckpointStore(CheckpointReader):
    """Checkpoints of jobs under ``<root>/checkpoints`` on one Coordinator: writes them,
    and reads them as :class:`~kafkaops.coord.checkpoint_reader.CheckpointReader` does.

    ``state_backend`` takes states over ``inline_limit`` bytes (without one, such a save
    is refused before anything is written); ``max_state_bytes`` caps a state;
    ``zookeeper_wait`` bounds every wait for ZooKeeper (NotWritableError after it).
    """

    def __init__(
        self,
        coordinator: Coordinator,
        state_backend: StateBackend | None = None,
        *,
        inline_limit: int = INLINE_LIMIT,
        max_state_bytes: int = MAX_STATE_BYTES,
        zookeeper_wait: float = ZOOKEEPER_WAIT,
    ) -> None:
        super().__init__(coordinator, state_backend, zookeeper_wait=zookeeper_wait)
        self.inline_limit = inline_limit
        self.max_state_bytes = max_state_bytes
        self._pointer_version: dict[str, int] = {}
        self._ready: set[str] = set()
        self._abandoned: dict[str, set[str]] = {}

    # ---- ownership -------------------------------------------------------------------

    def claim(self, job: str, owner: str) -> int:
        """Become the job's writer ("last claim wins"): returns the new epoch; every
        writer holding an older epoch is fenced. A job run under
        :class:`~kafkaops.coord.election.Leadership` of the same name uses the
        leadership epoch instead."""
        what = f"claim job {job!r}"
        client = self.coordinator.client
        path = epoch_path(self.coordinator, job)
        with self.coordinator.translate_errors(what):  # election.bump_epoch, with bounded waits
            self.zk.ensure_path(what, path.rsplit("/", 1)[0])
            while True:
                try:
                    _, stat = self.zk.call(what, client.get_async, path)
                except NoNodeError:
                    try:
                        self.zk.call(what, client.create_async, path, b"", acl=self.coordinator.acl)
                    except NodeExistsError:
                        pass
                    continue
                try:
                    new = self.zk.call(what, client.set_async, path, owner.encode(), version=stat.version)
                except BadVersionError:
                    continue
                log.info("job %s claimed by %s: epoch %d", job, owner, new.version)
                return int(new.version)

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

        Raises StateTooLargeError (nothing written) for a state over the limits,
        FencedError (nothing kept) if the job's epoch moved on, NotWritableError when
        ZooKeeper stays unavailable past ``zookeeper_wait``, and CheckpointError when a
        state backend or ZooKeeper cannot take it.
        """
        backend = self.state_backend
        raw = None if state is None else state_bytes(job, state)
        external = raw is not None and len(raw) > self.inline_limit
        prepared = None if raw is None else prepare_state(job, raw, inline_limit=self.inline_limit,
                                                          max_bytes=self.max_state_bytes, digest=not external)
        if external and backend is None:
            raise StateTooLargeError(
                f"job {job!r}: state of {len(raw or b'')} bytes is over the inline limit of "
                f"{self.inline_limit} bytes and the store has no state backend (CheckpointStore(coordinator, "
                "state_backend=TopicStateBackend(profile) or DirectoryStateBackend(path))); nothing was written")
        token = uuid.uuid4().hex[:16]
        what = f"save checkpoint of job {job!r}"
        with self.coordinator.translate_errors(what):
            if prepared is None or not external:
                data = checkpoint_znode(job, encode_header(job, offsets, metadata, epoch, token,
                                                           prepared.doc(INLINE) if prepared else None),
                                        prepared.stored if prepared else b"")
                self._prepare(job, epoch)
                return self._commit(job, epoch, token, data, pending=False)
            assert backend is not None
            location = backend.locate(job, token, len(prepared.stored))
            # the header must fit before anything is written (its offsets are the bulk)
            checkpoint_znode(job, encode_header(job, offsets, metadata, epoch, token,
                                                prepared.doc(backend.kind, {**location, "offsets": [0, 0]})))
            self._prepare(job, epoch)
            try:
                self.pending.record(job, token, epoch, backend.kind, location)
                digest = sha256_later(raw or b"")  # hashed while the backend writes
                location = backend.write(job, token, prepared.stored, location)
                prepared = replace(prepared, sha256=digest.result())
                data = checkpoint_znode(job, encode_header(job, offsets, metadata, epoch, token,
                                                           prepared.doc(backend.kind, location)))
                return self._commit(job, epoch, token, data, pending=True)
            except CheckpointError:  # definitely not committed: delete the state again
                self._discard(job, token, epoch, backend.kind, location)
                raise
            except BaseException:  # outcome unknown or interrupted: the next save / prune cleans up
                self._abandoned.setdefault(job, set()).add(token)
                raise

    def _prepare(self, job: str, epoch: int) -> None:
        """Paths on a job's first save; states left by crashed or fenced writers or by this
        store's abandoned saves are deleted (they are never referenced)."""
        coord = self.coordinator
        if job not in self._ready:
            what = f"prepare checkpoints of job {job!r}"
            self.zk.ensure_path(what, self.job_path(job))
            try:
                self.zk.call(what, coord.client.create_async, self._pointer(job), b"", acl=coord.acl)
            except NodeExistsError:
                pass
            self._ready.add(job)
            self._clean_pending(job, lambda p: p.stale(epoch))
        elif self._abandoned.get(job):
            tokens = self._abandoned.pop(job)
            self._clean_pending(job, lambda p: p.stale(epoch) or p.token in tokens)

    def _discard(self, job: str, token: str, epoch: int, where: str, location: Location) -> None:
        try:
            self.pending.clean(PendingState(job, token, epoch, where, location), self._backend)
        except Exception:  # noqa: BLE001 - best effort: the record stays, a prune finishes it
            self._abandoned.setdefault(job, set()).add(token)
            log.warning("job %s: state %s of a failed save not deleted yet", job, token, exc_info=True)

    def _commit(self, job: str, epoch: int, token: str, data: bytes, *, pending: bool) -> str:
        client = self.coordinator.client
        what = f"commit checkpoint of job {job!r}"
        fence, pointer = epoch_path(self.coordinator, job), self._pointer(job)
        for _ in range(20):
            version = self._pointer_version.get(job)
            if version is None:
                stat = self.zk.call(what, client.exists_async, pointer)
                if stat is None:
                    raise CheckpointError(f"job {job!r}: pointer znode vanished (job deleted?)")
                version = int(stat.version)
            ckpt_id = f"{PREFIX}{version + 1:010d}"
            txn = client.transaction()
            txn.check(fence, epoch)
            if pending:
                self.pending.commit_op(txn, job, token)
            txn.create(self._ckpt_path(job, ckpt_id), data, acl=self.coordinator.acl)
            txn.set_data(pointer, ckpt_id.encode(), version=version)
            try:
                results = self.zk.commit(what, txn)
            except (ConnectionLoss, OperationTimeoutError):
                self._pointer_version.pop(job, None)
                try:
                    landed = self._landed(job, token, pending)
                except NotWritableError as exc:
                    raise NotWritableError(f"{what}: outcome unknown ({exc}); the next save cleans up "
                                           "if it did not commit") from exc
                if landed is not None:
                    return landed
                continue
            errors = [r for r in results
                      if isinstance(r, Exception) and not isinstance(r, (RolledBackError, RuntimeInconsistency))]
            if not errors:
                self._pointer_version[job] = version + 1
                log.debug("job %s: saved %s (epoch %d)", job, ckpt_id, epoch)
                return ckpt_id
            self._pointer_version.pop(job, None)
            if isinstance(results[0], (BadVersionError, NoNodeError)):
                owner = self.owner(job)
                now = f"epoch {owner[0]} of {owner[1]!r}" if owner else "never claimed"
                raise FencedError(f"job {job!r}: writer with epoch {epoch} is fenced (job is at {now}); "
                                  "nothing was written")
            if pending and isinstance(results[1], (BadVersionError, NoNodeError)):
                raise StateDroppedError(f"job {job!r}: the state of this save was deleted by a concurrent "
                                        "prune before its commit; nothing was committed")
            # pointer moved (another save with the same epoch, or a restore): re-read, retry
        raise CheckpointError(f"job {job!r}: could not commit checkpoint (pointer kept moving)")

    def _landed(self, job: str, token: str, pending: bool) -> str | None:
        """After a commit of unknown outcome: the checkpoint id if it committed, None if not."""
        if pending and self.pending.exists(job, token):
            return None  # the commit deletes the record: it did not commit
        target = self._pointer_target_or_none(job)
        if target is not None:
            try:
                data, _ = self._get_znode(job, target)
                if header_token(data) == token:
                    return target
            except CheckpointNotFoundError:
                pass
        if pending:  # record gone but not committed: a concurrent prune dropped the state
            raise StateDroppedError(f"job {job!r}: the state of this save was deleted by a concurrent prune")
        return None
    # ---- operating -------------------------------------------------------------------

    def restore(self, job: str, ckpt_id: str, *, owner: str = "restore") -> int:
        """Point the job at checkpoint ``ckpt_id``. Claims the job first, so a writer
        still running is fenced and cannot move the pointer past it; returns the new
        epoch (the job's next writer claims again)."""
        coord = self.coordinator
        what = f"restore job {job!r}"
        with coord.translate_errors(what):
            self._read(job, ckpt_id)  # exists and is readable
            epoch = self.claim(job, owner)
            txn = coord.client.transaction()
            txn.check(epoch_path(coord, job), epoch)
            txn.check(self._ckpt_path(job, ckpt_id), 0)
            txn.set_data(self._pointer(job), ckpt_id.encode())
            results = self.zk.commit(what, txn)
            if any(isinstance(r, Exception) for r in results):
                raise CheckpointError(f"job {job!r}: restore to {ckpt_id} raced with another owner or prune")
        self._pointer_version.pop(job, None)
        log.info("job %s now points at %s (epoch %d)", job, ckpt_id, epoch)
        return epoch

    def prune(self, job: str, keep: int = 5) -> builtins.list[str]:
        """Delete all but the newest ``keep`` checkpoints (never the pointer's) with their
        states, and states no checkpoint references (abandoned saves); returns the
        deleted checkpoint ids. A backend state whose backend is not at hand (or fails)
        stays recorded in ``pending/`` for a later prune."""
        if keep < 1:
            raise CheckpointError(f"prune keeps at least one checkpoint, not {keep}")
        client = self.coordinator.client
        what = f"prune job {job!r}"
        deleted: builtins.list[str] = []
        with self.coordinator.translate_errors(what):
            ids = self._ids(job)
            target = self._pointer_target_or_none(job)
            doomed = [i for i in ids[:-keep] if i != target] if len(ids) > keep else []
            tokens: set[str] = set()
            newest_ms = 0
            for ckpt_id in ids:
                try:
                    data, stat = self._get_znode(job, ckpt_id)
                except CheckpointNotFoundError:
                    continue
                if ckpt_id in doomed:
                    if self._delete_checkpoint(job, ckpt_id, data, int(stat.version)):
                        deleted.append(ckpt_id)
                    continue
                newest_ms = max(newest_ms, int(stat.ctime))
                token = header_token(data)
                if token is not None:
                    tokens.add(token)
            owner = self.owner(job)
            job_epoch = owner[0] if owner else 0
            cleaned = self._clean_pending(job, lambda p: p.stale(job_epoch, newest_ms))
            removed_chunks = self.chunks.remove_orphans(job, tokens)
        if deleted or cleaned or removed_chunks:
            log.info("job %s: pruned %d checkpoints, %d backend states, %d format-1 chunks", job, len(deleted),
                     cleaned, removed_chunks)
        return deleted

    def _delete_checkpoint(self, job: str, ckpt_id: str, data: bytes, version: int) -> bool:
        """Delete one checkpoint znode; a backend state becomes a dropped pending record in
        the same transaction, so it is deleted even if we crash right after."""
        client = self.coordinator.client
        what = f"delete checkpoint {ckpt_id} of job {job!r}"
        try:
            info, _ = decode_header(job, ckpt_id, data)
        except CheckpointCorruptError:
            info = None
        txn = client.transaction()
        txn.delete(self._ckpt_path(job, ckpt_id), version=version)
        if info is not None and info.external:
            self.pending.drop_op(txn, job, info.token, info.epoch, info.where, info.location)
        try:
            results = self.zk.commit(what, txn)
        except (ConnectionLoss, OperationTimeoutError):
            return False  # the next prune looks again
        return not any(isinstance(r, Exception) for r in results)

    def _clean_pending(self, job: str, stale: Callable[[PendingState], bool]) -> int:
        cleaned = 0
        for p in self.pending.list(job):
            if stale(p) and self.pending.clean(p, self._backend):
                cleaned += 1
        return cleaned

    def delete_job(self, job: str) -> None:
        """Remove all of a job's checkpoints, their backend states (best effort) and its
        epoch (for tests and cleanup)."""
        coord = self.coordinator
        with coord.translate_errors(f"delete job {job!r}"):
            try:
                infos = self.list(job)
            except CheckpointNotFoundError:
                infos = []
            refs = [(i.token, i.where, i.location) for i in infos if i.external]
            refs += [(p.token, p.where, p.location) for p in self.pending.list(job)]
            for token, where, location in refs:
                try:
                    self._backend(where, location).delete(job, token, location)
                except CheckpointError as exc:
                    log.warning("job %s: state %s not deleted: %s", job, token, exc)
            for path in (self.job_path(job), coord.path("leaders", job)):
                self.zk.delete_tree(f"delete job {job!r}", path)
        self._ready.discard(job)
        self._pointer_version.pop(job, None)
        self._abandoned.pop(job, None)
        self.pending.forget(job)


__all__ = [
    "INLINE_LIMIT",
    "MAX_STATE_BYTES",
    "POINTER",
    "PREFIX",
    "Checkpoint",
    "CheckpointCorruptError",
    "CheckpointError",
    "CheckpointInfo",
    "CheckpointNotFoundError",
    "CheckpointReader",
    "CheckpointStore",
    "CoordinatorError",
    "FencedError",
    "NotWritableError",
    "PendingState",
    "StateDroppedError",
    "StateTooLargeError",
]

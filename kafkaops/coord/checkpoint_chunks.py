"""A checkpoint state's chunks in ZooKeeper, beside the checkpoint znodes.

Chunks live under ``<root>/checkpoints/<job>/chunks/<token>-NNNN``: the token is the
save's, so the checkpoint header names its chunks. They are written (and read) as
pipelined async requests, retried once the connection is back, and written before
the transaction that commits the checkpoint; chunks no checkpoint names are orphans
of aborted saves and are removed by :meth:`StateChunks.remove_orphans`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from kazoo.exceptions import ConnectionLoss, NodeExistsError, NoNodeError, NotEmptyError, OperationTimeoutError

from kafkaops.coord.checkpoint_format import CheckpointCorruptError, CheckpointInfo
from kafkaops.coord.session import Coordinator

log = logging.getLogger(__name__)


class StateChunks:
    """The chunk znodes of checkpointed states on one Coordinator."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator

    def directory(self, job: str) -> str:
        return self.coordinator.path("checkpoints", job, "chunks")

    def paths(self, job: str, token: str, count: int) -> list[str]:
        return [f"{self.directory(job)}/{token}-{i:04d}" for i in range(count)]

    def write(self, job: str, token: str, chunks: list[bytes]) -> list[str]:
        """Create the chunks of one save; returns their paths (all written, or none left behind)."""
        if not chunks:
            return []
        coord = self.coordinator
        paths = self.paths(job, token, len(chunks))
        pending = [coord.client.create_async(p, c, acl=coord.acl) for p, c in zip(paths, chunks)]
        failures: list[BaseException] = []
        for p, c, result in zip(paths, chunks, pending):
            try:
                result.get()
            except (ConnectionLoss, OperationTimeoutError):
                try:  # retry once the connection is back; NodeExists means it did land
                    coord.retry(self._create_if_missing, p, c)
                except BaseException as exc:
                    failures.append(exc)
            except BaseException as exc:
                failures.append(exc)
        if failures:
            self.delete_quietly(paths)
            raise failures[0]
        return paths

    def read(self, info: CheckpointInfo) -> bytes:
        """The stored state of a chunked checkpoint; CheckpointCorruptError if a chunk is missing."""
        coord = self.coordinator
        paths = self.paths(info.job, info.token, info.chunks)
        pending = [coord.client.get_async(p) for p in paths]
        parts: list[bytes] = []
        for p, result in zip(paths, pending):
            try:
                data, _ = result.get()
            except NoNodeError:
                raise CheckpointCorruptError(f"job {info.job!r}: checkpoint {info.id}: chunk {p} is missing") from None
            except (ConnectionLoss, OperationTimeoutError):
                data, _ = coord.retry(coord.client.get, p)
            parts.append(bytes(data or b""))
        return b"".join(parts)

    def delete_quietly(self, paths: list[str]) -> None:
        """Best effort: what stays behind is an orphan, removed by a later prune."""
        for p in paths:
            try:
                self.coordinator.client.delete(p)
            except Exception:
                log.debug("could not delete %s (pruned later)", p, exc_info=True)

    def remove_orphans(self, job: str, keep_tokens: Collection[str], older_than_ctime: int) -> int:
        """Delete chunks whose token is not in ``keep_tokens`` and that were created before
        ``older_than_ctime`` (ZooKeeper ms; younger ones may belong to a save in flight).
        Returns how many were deleted."""
        coord = self.coordinator
        client = coord.client
        directory = self.directory(job)
        try:
            names = coord.retry(client.get_children, directory)
        except NoNodeError:
            return 0
        removed = 0
        for name in names:
            if name.rsplit("-", 1)[0] in keep_tokens:
                continue
            path = f"{directory}/{name}"
            stat = coord.retry(client.exists, path)
            if stat is None or int(stat.ctime) >= older_than_ctime:
                continue
            try:
                coord.retry(client.delete, path)
                removed += 1
            except (NoNodeError, NotEmptyError):
                pass
        return removed

    def _create_if_missing(self, path: str, data: bytes) -> None:
        try:
            self.coordinator.client.create(path, data, acl=self.coordinator.acl)
        except NodeExistsError:
            pass

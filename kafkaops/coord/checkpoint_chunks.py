"""Format-1 state chunks in ZooKeeper: read them, and remove them once unreferenced.

Before state backends, a state too large for its checkpoint znode was cut into chunk
znodes ``<root>/checkpoints/<job>/chunks/<token>-NNNN`` (the token is the save's, so
the header names its chunks). Nothing writes them any more; checkpoints that use them
still load, and a prune removes the chunks of checkpoints it deletes and those of
saves that never committed.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from kazoo.exceptions import ConnectionLoss, NoNodeError, NotEmptyError, OperationTimeoutError
from kazoo.handlers.threading import KazooTimeoutError

from kafkaops.coord.checkpoint_format import CheckpointCorruptError, CheckpointInfo
from kafkaops.coord.checkpoint_zk import BoundedZooKeeper
from kafkaops.waits import Deadline

log = logging.getLogger(__name__)


class StateChunks:
    """The format-1 chunk znodes of checkpointed states on one Coordinator."""

    def __init__(self, zk: BoundedZooKeeper) -> None:
        self.zk = zk
        self.coordinator = zk.coordinator

    def directory(self, job: str) -> str:
        return self.coordinator.path("checkpoints", job, "chunks")

    def paths(self, job: str, token: str, count: int) -> list[str]:
        return [f"{self.directory(job)}/{token}-{i:04d}" for i in range(count)]

    def read(self, info: CheckpointInfo) -> bytes:
        """The stored state of a chunked checkpoint; CheckpointCorruptError if a chunk is missing."""
        client = self.coordinator.client
        what = f"read state chunks of checkpoint {info.id} of job {info.job!r}"
        paths = self.paths(info.job, info.token, info.chunks)
        deadline = Deadline(self.zk.wait + len(paths))
        self.zk.writable(what, deadline)
        pending = [client.get_async(p) for p in paths]  # pipelined
        parts: list[bytes] = []
        for p, result in zip(paths, pending):
            try:
                data, _ = result.get(timeout=deadline.remaining(floor=0.01))
            except NoNodeError:
                raise CheckpointCorruptError(f"job {info.job!r}: checkpoint {info.id}: chunk {p} is missing") from None
            except (ConnectionLoss, OperationTimeoutError, KazooTimeoutError):  # one bounded retry of this chunk
                try:
                    data, _ = self.zk.call(what, client.get_async, p)
                except NoNodeError:
                    raise CheckpointCorruptError(
                        f"job {info.job!r}: checkpoint {info.id}: chunk {p} is missing") from None
            parts.append(bytes(data or b""))
        return b"".join(parts)

    def remove_orphans(self, job: str, keep_tokens: Collection[str]) -> int:
        """Delete chunks whose token is not in ``keep_tokens`` (no format-1 save is in flight:
        nothing writes chunks any more). Returns how many were deleted."""
        client = self.coordinator.client
        directory = self.directory(job)
        what = f"remove unreferenced state chunks of job {job!r}"
        try:
            names = self.zk.call(what, client.get_children_async, directory)
        except NoNodeError:
            return 0
        removed = 0
        for name in names:
            if name.rsplit("-", 1)[0] in keep_tokens:
                continue
            try:
                self.zk.call(what, client.delete_async, f"{directory}/{name}")
                removed += 1
            except (NoNodeError, NotEmptyError):
                pass
        if not removed and not names:
            try:  # the directory of a job whose format-1 checkpoints are all gone
                self.zk.call(what, client.delete_async, directory)
            except (NoNodeError, NotEmptyError):
                pass
        return removed

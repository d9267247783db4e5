"""Where large checkpoint states live: the StateBackend protocol and the directory backend.

ZooKeeper keeps every znode in heap and is built for small coordination data, so a
checkpoint whose state is over the store's inline limit keeps only a pointer in its
znode; the bytes go to a state backend. A save asks the backend where the state will
go (:meth:`StateBackend.locate`, recorded in ZooKeeper *before* writing, so a crash
mid-write leaves something a prune can find), writes it and waits until it is durable
(:meth:`write`), and only then commits the ZooKeeper transaction that references it.

Two backends: :class:`~kafkaops.coord.state_topic.TopicStateBackend` (a replicated,
compacted Kafka topic) and :class:`DirectoryStateBackend` (a directory, e.g. on a
filesystem every worker mounts at the same path).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from kafkaops.coord.checkpoint_format import CheckpointCorruptError, CheckpointError

log = logging.getLogger(__name__)

Location = dict[str, Any]
"""Where a state is in its backend (JSON, kept in the checkpoint header)."""


@runtime_checkable
class StateBackend(Protocol):
    """Stores checkpoint states outside ZooKeeper, named by (job, save token)."""

    kind: str
    """``topic`` or ``directory``: recorded in the checkpoint header as ``where``."""

    def locate(self, job: str, token: str, size: int) -> Location:
        """Where the ``size`` bytes of this save will go (enough to delete them after a crash)."""
        ...

    def write(self, job: str, token: str, data: bytes, location: Location) -> Location:
        """Store ``data`` and return once it is durable; returns its final location."""
        ...

    def read(self, job: str, token: str, location: Location, size: int,
             on_part: Callable[[bytes], None] | None = None) -> bytes:
        """The stored bytes; CheckpointCorruptError when a part is missing. ``on_part`` sees
        the bytes in order as they arrive (the store hashes them while the rest is read)."""
        ...

    def delete(self, job: str, token: str, location: Location) -> None:
        """Remove a state (a state already gone is no error)."""
        ...

    def describe(self, location: Location) -> str:
        """One line for humans: where the state is."""
        ...

    def close(self) -> None:
        """Release clients and files."""
        ...


class DirectoryStateBackend:
    """States as files ``<root>/<job>/<token>.state`` (written to a temporary file,
    fsynced, then renamed into place), for a filesystem every worker shares."""

    kind = "directory"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()

    def locate(self, job: str, token: str, size: int) -> Location:
        return {"path": str(self.root), "file": f"{job}/{token}.state"}

    def _file(self, location: Location) -> Path:
        try:
            root, name = Path(str(location["path"])), str(location["file"])
        except KeyError as exc:
            raise CheckpointCorruptError(f"directory state location {location!r} lacks {exc}") from None
        if name.startswith("/") or ".." in Path(name).parts:
            raise CheckpointCorruptError(f"directory state location {location!r} leaves its directory")
        return root / name

    def write(self, job: str, token: str, data: bytes, location: Location) -> Location:
        path = self._file(location)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{token}.", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise CheckpointError(f"job {job!r}: cannot write state to {path}: {exc.strerror or exc}") from exc
        return location

    def read(self, job: str, token: str, location: Location, size: int,
             on_part: Callable[[bytes], None] | None = None) -> bytes:
        path = self._file(location)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CheckpointCorruptError(f"job {job!r}: state file {path} is missing") from None
        except OSError as exc:
            raise CheckpointError(f"job {job!r}: cannot read state file {path}: {exc.strerror or exc}") from exc
        if len(data) != size:
            raise CheckpointCorruptError(f"job {job!r}: state file {path} has {len(data)} bytes, expected {size}")
        if on_part is not None:
            on_part(data)
        return data

    def delete(self, job: str, token: str, location: Location) -> None:
        path = self._file(location)
        try:
            path.unlink(missing_ok=True)
            for tmp in path.parent.glob(f".{token}.*.tmp"):  # a write cut short by a crash
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise CheckpointError(f"job {job!r}: cannot delete state file {path}: {exc.strerror or exc}") from exc

    def describe(self, location: Location) -> str:
        return str(self._file(location))

    def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"DirectoryStateBackend({str(self.root)!r})"


def backend_for(where: str, location: Mapping[str, Any], configured: StateBackend | None) -> StateBackend:
    """The backend that can read a state stored ``where``: the store's own when its kind
    matches, else a directory backend for a directory state (the location names its
    directory); CheckpointError naming what to configure otherwise."""
    if configured is not None and configured.kind == where:
        return configured
    if where == DirectoryStateBackend.kind:
        return DirectoryStateBackend(str(location.get("path", "")))
    if where == "topic":
        raise CheckpointError(
            f"state lives in Kafka topic {location.get('topic')!r}: give the store a TopicStateBackend "
            "(CheckpointStore(coordinator, state_backend=TopicStateBackend(profile)); CLI: --profile or -b)")
    raise CheckpointCorruptError(f"unknown state backend {where!r}")

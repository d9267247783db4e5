"""Pending states: backend states that no checkpoint references, recorded in ZooKeeper.

A save records ``<job>/pending/<token>`` (its epoch, its ZooKeeper session, backend
and planned location) *before* it writes the state; its commit transaction deletes the
record (at version 0) in the same transaction that creates the checkpoint referencing
the state. So a record exists exactly while a state is not referenced: a crash between
the state write and the commit leaves one behind, and pruning a checkpoint turns it
into one (``dropped``) in the transaction that deletes the checkpoint znode. Each
writer session keeps an ephemeral ``writer-<session>`` beside the records: a record
whose writer's marker is gone belongs to a writer that crashed (or lost its session).

Cleaning a record first bumps its version (a commit still in flight then fails instead
of referencing a state being deleted), then deletes the state in its backend, then
the record. A record whose backend is not at hand stays for a later prune.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

from kafkaops.coord.checkpoint_format import CheckpointError
from kafkaops.coord.checkpoint_zk import BoundedZooKeeper
from kafkaops.coord.state_backends import Location, StateBackend

log = logging.getLogger(__name__)

DIRECTORY = "pending"
WRITER = "writer-"


@dataclass(frozen=True)
class PendingState:
    """A backend state no checkpoint references: being written, abandoned or dropped."""

    job: str
    token: str
    epoch: int
    where: str
    location: Location = field(default_factory=dict)
    dropped: bool = False
    created_ms: int = 0
    version: int = 0
    writing: bool = False

    def stale(self, job_epoch: int, newest_checkpoint_ms: int = 0) -> bool:
        """Safe to clean: dropped, its writer's session gone (crashed), written by a fenced
        writer, or older than a later commit of its own writer (which saves one at a time)."""
        return (self.dropped or not self.writing or self.epoch < job_epoch
                or self.created_ms < newest_checkpoint_ms)


class PendingStates:
    """The pending-state records of jobs under ``<root>/checkpoints/<job>/pending``."""

    def __init__(self, zk: BoundedZooKeeper) -> None:
        self.zk = zk
        self.coordinator = zk.coordinator
        self._markers: set[tuple[str, int]] = set()

    def directory(self, job: str) -> str:
        return self.coordinator.path("checkpoints", job, DIRECTORY)

    def path(self, job: str, token: str) -> str:
        return self.coordinator.path("checkpoints", job, DIRECTORY, token)

    @staticmethod
    def data(epoch: int, where: str, location: Location, dropped: bool = False, session: int | None = None) -> bytes:
        return json.dumps({"epoch": epoch, "where": where, "location": location, "dropped": dropped,
                           "session": f"{session or 0:x}"}, separators=(",", ":")).encode()

    def record(self, job: str, token: str, epoch: int, where: str, location: Location) -> None:
        """Before a state is written: where it will be, so a crash mid-write can be cleaned."""
        coord = self.coordinator
        client = coord.client
        what = f"record pending state of job {job!r}"
        session = coord.session_id or 0
        if (job, session) not in self._markers:  # once per job and session
            self.zk.ensure_path(what, self.directory(job))
            try:
                self.zk.call(what, client.create_async, self.path(job, f"{WRITER}{session:x}"), b"",
                             acl=coord.acl, ephemeral=True)
            except NodeExistsError:
                pass
            self._markers.add((job, session))
        self.zk.call(what, client.create_async, self.path(job, token), self.data(epoch, where, location,
                                                                                  session=session), acl=coord.acl)

    def forget(self, job: str) -> None:
        """The job's records are gone (deleted job): its writer marker is created again if needed."""
        self._markers = {m for m in self._markers if m[0] != job}

    def commit_op(self, txn: Any, job: str, token: str) -> None:
        """In the commit transaction: the state is referenced from now on (fails if it was dropped)."""
        txn.delete(self.path(job, token), version=0)

    def drop_op(self, txn: Any, job: str, token: str, epoch: int, where: str, location: Location) -> None:
        """In the transaction deleting a checkpoint: its state becomes pending, dropped."""
        txn.create(self.path(job, token), self.data(epoch, where, location, dropped=True), acl=self.coordinator.acl)

    def exists(self, job: str, token: str) -> bool:
        client = self.coordinator.client
        return self.zk.call(f"look up pending state of job {job!r}", client.exists_async, self.path(job, token)) is not None

    def list(self, job: str) -> list[PendingState]:
        client = self.coordinator.client
        what = f"list pending states of job {job!r}"
        try:
            names = self.zk.call(what, client.get_children_async, self.directory(job))
        except NoNodeError:
            return []
        found: list[PendingState] = []
        writers = {n[len(WRITER):] for n in names if n.startswith(WRITER)}
        for name in sorted(n for n in names if not n.startswith(WRITER)):
            try:
                data, stat = self.zk.call(what, client.get_async, self.path(job, name))
            except NoNodeError:
                continue
            try:
                doc = json.loads(bytes(data or b""))
                found.append(PendingState(job, name, int(doc["epoch"]), str(doc["where"]), dict(doc["location"]),
                                          bool(doc.get("dropped")), int(stat.ctime), int(stat.version),
                                          str(doc.get("session")) in writers))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("job %s: unreadable pending state record %s (%s); left alone", job, name, exc)
        return found

    def clean(self, pending: PendingState, backend: Callable[[str, Location], StateBackend]) -> bool:
        """Delete a pending state and its record; False when it is not ours to clean (a
        commit or another cleaner got there first) or its backend failed (record kept)."""
        client = self.coordinator.client
        path = self.path(pending.job, pending.token)
        what = f"clean pending state {pending.token} of job {pending.job!r}"
        try:
            stat = self.zk.call(what, client.set_async, path,
                                self.data(pending.epoch, pending.where, pending.location, dropped=True),
                                version=pending.version)
        except (NoNodeError, BadVersionError):
            return False
        try:
            backend(pending.where, pending.location).delete(pending.job, pending.token, pending.location)
        except CheckpointError as exc:
            log.warning("job %s: state %s not deleted yet (%s); a later prune retries", pending.job,
                        pending.token, exc)
            return False
        try:
            self.zk.call(what, client.delete_async, path, version=int(stat.version))
        except (NoNodeError, BadVersionError):
            pass
        log.info("job %s: deleted unreferenced state %s (%s)", pending.job, pending.token, pending.where)
        return True

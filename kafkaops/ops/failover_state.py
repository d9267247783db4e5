"""Failover state: what the acting FailoverPolicy has seen and started, where a standby finds it.

(And :class:`Action`, the record of one thing the policy did.)

Under ``<root>/failover/`` (``coordinator.path("failover", ...)``):

- ``brokers/<id>``: a broker seen dead, ``{"down_since": t, "handled": bool}`` (handled:
  the moves of its replicas were submitted, or there was nothing to move);
- ``reassignments/<id>``: a batch of partition moves and the replication throttle it runs
  under (:class:`~kafkaops.ops.reassign.Batch`), in state ``planned`` (written *before*
  the throttle is set) or ``submitted``.

Each update is one ZooKeeper transaction. With a fence (the leadership epoch znode and
the epoch this instance was elected with, see ``coord/election.py``) the transaction
also checks that epoch, so an instance that lost leadership cannot overwrite its
successor's state. :class:`FailoverStore` keeps the same records in memory for a policy
without ZooKeeper (state then dies with the process, as it always did).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kazoo.exceptions import BadVersionError, ConnectionLoss, NoNodeError, OperationTimeoutError

from kafkaops.coord.session import Coordinator
from kafkaops.errors import KafkaopsError
from kafkaops.ops.reassign import Batch

log = logging.getLogger(__name__)

PLANNED = "planned"
SUBMITTED = "submitted"

Fence = Callable[[], tuple[str, int] | None]
"""Returns (epoch znode path, epoch) while this instance leads; None when there is no fence."""


@dataclass(frozen=True)
class Action:
    """One thing the policy did (or, in a dry run, would do): what, why, and the result."""

    what: str  # "reassign" | "clear_throttle" | "elect_preferred_leaders" | "resume" | "skip"
    why: str
    result: str  # "ok", "dry-run", "error: ...", or the reason of a skip
    details: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return self.result in ("ok", "dry-run")

    @property
    def changes_cluster(self) -> bool:
        """A move, throttle clearance or election that was attempted (these are audited; skips,
        resumes and dry runs change nothing)."""
        return self.what in ("reassign", "clear_throttle", "elect_preferred_leaders") and not self.dry_run

    @property
    def target(self) -> str:
        """What the action changed: the partitions moved or elected, else the brokers it concerned."""
        parts = list(self.details.get("moves", {})) or list(self.details.get("partitions", []))
        if parts:
            return ",".join(parts)
        return "brokers " + ",".join(map(str, self.details.get("brokers", [])))

    def to_json(self) -> dict[str, Any]:
        return {"type": "Action", "what": self.what, "why": self.why, "result": self.result,
                "dry_run": self.dry_run, "timestamp": self.timestamp, **self.details}


class FencedError(KafkaopsError):
    """This instance's leadership epoch is no longer current: nothing was written."""


@dataclass(frozen=True)
class DownBroker:
    """A broker seen dead: since when, and whether the moves of its replicas were started."""

    down_since: float
    handled: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"down_since": self.down_since, "handled": self.handled}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> DownBroker:
        return cls(float(doc["down_since"]), bool(doc.get("handled", False)))


@dataclass(frozen=True)
class InFlight:
    """A batch of moves this policy started, with why and when; ``state`` planned or submitted."""

    id: str
    batch: Batch
    state: str = PLANNED
    why: str = ""
    started_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "why": self.why, "started_at": self.started_at, **self.batch.to_json()}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> InFlight:
        return cls(str(doc["id"]), Batch.from_json(doc), str(doc["state"]), str(doc.get("why", "")),
                   float(doc.get("started_at", 0.0)))


@dataclass
class FailoverState:
    """Dead brokers and reassignments in flight, by broker id and batch id."""

    brokers: dict[int, DownBroker] = field(default_factory=dict)
    reassignments: dict[str, InFlight] = field(default_factory=dict)

    def copy(self) -> FailoverState:
        return FailoverState(dict(self.brokers), dict(self.reassignments))


class FailoverStore:
    """Failover state in this process's memory: for a policy without ZooKeeper."""

    def __init__(self) -> None:
        self._state = FailoverState()

    def load(self) -> FailoverState:
        return self._state.copy()

    def update(
        self,
        brokers: Mapping[int, DownBroker | None] | None = None,
        reassignments: Mapping[str, InFlight | None] | None = None,
    ) -> None:
        """Apply all changes at once (a value of None deletes the record)."""
        _apply(self._state.brokers, brokers or {})
        _apply(self._state.reassignments, reassignments or {})


def _apply(records: dict[Any, Any], changes: Mapping[Any, Any]) -> None:
    for key, value in changes.items():
        if value is None:
            records.pop(key, None)
        else:
            records[key] = value


class ZooKeeperFailoverStore(FailoverStore):
    """Failover state in znodes under ``<root>/failover/`` (see module doc)."""

    def __init__(self, coordinator: Coordinator, fence: Fence | None = None) -> None:
        self.coordinator = coordinator
        self.fence = fence
        self.brokers_path = coordinator.path("failover", "brokers")
        self.reassignments_path = coordinator.path("failover", "reassignments")
        self._dirs_made = False

    def _dirs(self) -> None:
        if not self._dirs_made:
            with self.coordinator.translate_errors("failover state"):
                self.coordinator.ensure_path(self.brokers_path)
                self.coordinator.ensure_path(self.reassignments_path)
            self._dirs_made = True

    def load(self) -> FailoverState:
        self._dirs()
        state = FailoverState()
        for name, doc in self._read_children(self.brokers_path).items():
            if name.isdigit():
                state.brokers[int(name)] = DownBroker.from_json(doc)
        for name, doc in self._read_children(self.reassignments_path).items():
            state.reassignments[name] = InFlight.from_json(doc)
        return state

    def _read_children(self, path: str) -> dict[str, Mapping[str, Any]]:
        coord, client = self.coordinator, self.coordinator.client
        docs: dict[str, Mapping[str, Any]] = {}
        with coord.translate_errors("reading failover state"):
            for name in sorted(coord.retry(client.get_children, path)):
                try:
                    data, _ = coord.retry(client.get, f"{path}/{name}")
                    docs[name] = json.loads(data.decode())
                except NoNodeError:
                    continue  # removed meanwhile
                except (ValueError, KeyError) as exc:
                    log.warning("failover state %s/%s is unreadable, ignored: %s", path, name, exc)
        return docs

    def update(
        self,
        brokers: Mapping[int, DownBroker | None] | None = None,
        reassignments: Mapping[str, InFlight | None] | None = None,
    ) -> None:
        changes: dict[str, bytes | None] = {}
        for b, rec in (brokers or {}).items():
            changes[f"{self.brokers_path}/{b}"] = None if rec is None else json.dumps(rec.to_json()).encode()
        for rid, flight in (reassignments or {}).items():
            changes[f"{self.reassignments_path}/{rid}"] = None if flight is None else json.dumps(flight.to_json()).encode()
        if not changes:
            return
        self._dirs()
        with self.coordinator.translate_errors("writing failover state"):
            self._commit(changes)

    def _commit(self, changes: Mapping[str, bytes | None]) -> None:
        """One transaction (fenced if a fence is given); rebuilt and retried when its outcome is unknown."""
        coord, client = self.coordinator, self.coordinator.client
        fence = self.fence() if self.fence is not None else None
        for _ in range(10):
            txn = client.transaction()
            if fence is not None:
                txn.check(fence[0], fence[1])
            for path, data in changes.items():
                exists = coord.retry(client.exists, path) is not None
                if data is None:
                    if exists:
                        txn.delete(path)
                elif exists:
                    txn.set_data(path, data)
                else:
                    txn.create(path, data, acl=coord.acl)
            try:
                results = txn.commit()
            except (ConnectionLoss, OperationTimeoutError):
                coord.wait_writable()
                continue  # outcome unknown: every change is idempotent, so build it again
            errors = [r for r in results if isinstance(r, Exception)]
            if not errors:
                return
            if fence is not None and isinstance(results[0], (BadVersionError, NoNodeError)):
                raise FencedError(f"failover state not written: leadership epoch {fence[1]} is no longer current")
            log.info("failover state changed meanwhile (%s); writing again", errors[0])
        raise KafkaopsError("failover state: could not write it (znodes kept changing)")

"""Where playbook runs leave their traces: progress and audit records in ZooKeeper (and a file).

Through the process's Coordinator, under ``<root>/playbooks/``:

- ``runs/<playbook>``: the progress record of the playbook's last run (its plan, each
  step's status, the run's state), so ``--resume`` continues at the first unfinished step;
- ``audit/<run id>/r-NNNNNNNNNN``: one sequential znode per step start and outcome (who,
  when, what, outcome).

Each step's outcome also goes to the audit trail (:class:`~kafkaops.audit.AuditLog`, if
given): action ``playbook.step``, target ``<playbook> step <index>``, the run id, step,
action, arguments and duration in its arguments, the outcome as its result.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from datetime import UTC, datetime
from typing import Any

from kazoo.exceptions import NoNodeError, NodeExistsError

from kafkaops.audit import AuditLog
from kafkaops.coord.session import Coordinator

OUTCOMES = {"succeeded": "ok", "failed": "error", "interrupted": "error: interrupted"}
"""Step events that end a step, and the audit result each one gives."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def identity() -> dict[str, Any]:
    """Who runs this process: user, host and pid (in every record and in the lock)."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = str(os.getuid())
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid()}


class RunJournal:
    """Progress records and the audit trail of playbook runs (see module doc)."""

    def __init__(self, coordinator: Coordinator, audit: AuditLog | None = None) -> None:
        self.coordinator = coordinator
        self.audit_log = audit
        self.base = coordinator.path("playbooks")

    def run_path(self, playbook: str) -> str:
        return f"{self.base}/runs/{playbook}"

    def audit_path(self, run_id: str) -> str:
        return f"{self.base}/audit/{run_id}"

    def progress(self, playbook: str) -> dict[str, Any] | None:
        """The stored progress record of the playbook's last run, or None."""
        coord = self.coordinator
        try:
            data, _ = coord.retry(coord.client.get, self.run_path(playbook))
        except NoNodeError:
            return None
        record: dict[str, Any] = json.loads(data.decode())
        return record

    def audit_trail(self, run_id: str) -> list[dict[str, Any]]:
        """The audit records of one run from ZooKeeper, oldest first."""
        coord, path = self.coordinator, self.audit_path(run_id)
        try:
            children = sorted(coord.retry(coord.client.get_children, path))
        except NoNodeError:
            return []
        return [json.loads(coord.retry(coord.client.get, f"{path}/{c}")[0].decode()) for c in children]

    def save(self, record: dict[str, Any]) -> None:
        """Write the progress record of ``record["playbook"]`` (stamped ``updated_at``)."""
        record["updated_at"] = now_iso()
        coord, path = self.coordinator, self.run_path(record["playbook"])
        data = json.dumps(record).encode()
        if coord.retry(coord.client.exists, path) is None:
            coord.ensure_path(path.rsplit("/", 1)[0])
            try:
                coord.retry(coord.client.create, path, data, acl=coord.acl)
                return
            except NodeExistsError:
                pass
        coord.retry(coord.client.set, path, data)

    def audit(self, entry: dict[str, Any]) -> None:
        """Record one event of run ``entry["run_id"]``: a znode, and for a step's outcome an audit record."""
        coord, path = self.coordinator, self.audit_path(entry["run_id"])
        coord.ensure_path(path)
        coord.retry(coord.client.create, f"{path}/r-", json.dumps(entry).encode(), acl=coord.acl, sequence=True)
        result = OUTCOMES.get(entry["event"])
        if self.audit_log is None or result is None:
            return
        if result == "error":
            result = f"error: {entry.get('error', 'failed')}"
        args = {k: v for k, v in entry.items() if k not in ("time", "user", "host")}
        self.audit_log.record("playbook.step", f"{entry['playbook']} step {entry['index']}", args, result)

"""Where playbook runs leave their traces: progress and audit records in ZooKeeper (and a file).

Through the process's Coordinator, under ``<root>/playbooks/``:

- ``runs/<playbook>``: the progress record of the playbook's last run (its plan, each
  step's status, the run's state), so ``--resume`` continues at the first unfinished step;
- ``audit/<run id>/r-NNNNNNNNNN``: one sequential znode per step start and outcome (who,
  when, what, outcome), also appended as a JSON line to a local audit file if one is given.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kazoo.exceptions import NoNodeError, NodeExistsError

from kafkaops.coord.session import Coordinator


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

    def __init__(self, coordinator: Coordinator, audit_file: Path | None = None) -> None:
        self.coordinator = coordinator
        self.audit_file = audit_file
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
        """Append one audit record of run ``entry["run_id"]`` (znode, then the local file if any)."""
        coord, path = self.coordinator, self.audit_path(entry["run_id"])
        coord.ensure_path(path)
        coord.retry(coord.client.create, f"{path}/r-", json.dumps(entry).encode(), acl=coord.acl, sequence=True)
        if self.audit_file is not None:
            self.audit_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self.audit_file, "a") as f:
                f.write(json.dumps(entry) + "\n")
                f.flush()
                os.fsync(f.fileno())

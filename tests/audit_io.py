"""Reading a playbook run back from the audit file, the way an operator's tooling would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kafkaops.audit import parse_records, read_file, verify


def playbook_steps(audit_file: Path, run_id: str | None = None) -> list[dict[str, Any]]:
    """The playbook steps' audit records (their outcomes), with who and when beside their
    arguments; the hash chain of the whole file verified."""
    lines = read_file(audit_file)
    assert verify(lines).ok, verify(lines).reason
    records = [r for r in parse_records(lines) if r.action == "playbook.step"]
    steps = [{**r.args, "user": r.os_user, "host": r.host, "time": r.time, "result": r.result} for r in records]
    return [s for s in steps if run_id is None or s["run_id"] == run_id]

"""The audit trail of CLI commands that change a cluster: ``$KAFKAOPS_HOME/audit/audit.jsonl``
plus the cluster's audit topic (see :mod:`kafkaops.audit`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from kafkaops.config import ClusterProfile, Settings

if TYPE_CHECKING:
    from kafkaops.audit import AuditLog


def audit_file() -> str:
    return str(Settings.from_env().home / "audit" / "audit.jsonl")


@contextmanager
def audit_log(cluster: ClusterProfile) -> Iterator[AuditLog]:
    """An AuditLog for one command, flushed and closed at the end."""
    from kafkaops.audit import AuditLog

    log = AuditLog(audit_file(), cluster)
    try:
        yield log
    finally:
        log.close()

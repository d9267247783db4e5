"""The aggregate workload's job process: a CheckpointedConsumer counting records per key.

Run as ``python -m kafkaops.chaos.aggregate_worker PROFILE TOPIC JOB SESSION_FILE``. It
checkpoints every 200 records or second; SIGTERM ends it after a final checkpoint, SIGKILL
at any moment (the next instance resumes from the last checkpoint). So that a chaos run can
expire its ZooKeeper session from outside, it keeps the session's id and password in
SESSION_FILE (mode 0600, in the run's own directory), rewritten when the session changes.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from kafkaops.clients.checkpointed import CheckpointedConsumer
from kafkaops.config import ClusterProfile
from kafkaops.coord.checkpoints import CheckpointStore
from kafkaops.coord.session import Coordinator
from kafkaops.serde.codec import BytesCodec

log = logging.getLogger("kafkaops.chaos.aggregate_worker")


def write_session(path: Path, coord: Coordinator) -> int | None:
    """Publish the session (id, password) for the chaos runner; returns the session id."""
    client_id = coord.client.client_id
    if not client_id:
        return None
    session_id, password = client_id
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"session_id": int(session_id), "password": bytes(password).hex()}, f)
    tmp.replace(path)
    return int(session_id)


def read_session(path: Path) -> tuple[int, bytes] | None:
    """What :func:`write_session` wrote, or None before the worker connected."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return int(doc["session_id"]), bytes.fromhex(doc["password"])


def run(profile: ClusterProfile, topic: str, job: str, session_file: Path) -> int:
    coord = Coordinator.shared(profile)
    try:
        consumer: CheckpointedConsumer[bytes, dict[str, int]] = CheckpointedConsumer(
            CheckpointStore(coord), job, profile, topic, BytesCodec(), every_records=200, every_seconds=1.0,
            handle_sigterm=True)
        published = write_session(session_file, coord)
        ok = False
        try:
            counts = consumer.state
            while not consumer.stopped:
                record = consumer.poll(0.5)
                if coord.session_id != published and coord.writable:
                    published = write_session(session_file, coord)
                if record is None:
                    continue
                key = record.key.decode() if isinstance(record.key, bytes) else str(record.key)
                counts[key] = counts.get(key, 0) + 1
            ok = True
        finally:
            consumer.close(processed=ok)
        return 0
    finally:
        coord.stop()


def main(argv: list[str]) -> int:
    logging.basicConfig(level=os.environ.get("KAFKAOPS_LOG_LEVEL", "WARNING").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    profile_file, topic, job, session_file = argv
    return run(ClusterProfile.load(profile_file), topic, job, Path(session_file))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

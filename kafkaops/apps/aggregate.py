"""The aggregate job (``kafkaops demo aggregate``): records per key, exactly once across crashes.

A CheckpointedConsumer bound to a job counts records per key (values are ignored).
The counts are the checkpointed state; at each checkpoint and at exit they are
written to the output file as one JSON object ``{key: count}``, atomically (temp
file + rename). Kill it at any moment and start it again: it resumes from its last
checkpoint, so the final counts equal the true counts (nothing lost or counted twice).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException, TopicPartition

from kafkaops.clients.checkpointed import CheckpointedConsumer
from kafkaops.config import ClusterProfile
from kafkaops.coord.checkpoints import CheckpointStore
from kafkaops.coord.session import Coordinator
from kafkaops.coord.state_topic import TopicStateBackend
from kafkaops.errors import KafkaopsError
from kafkaops.serde.codec import BytesCodec
from kafkaops.waits import Deadline

log = logging.getLogger(__name__)

NULL_KEY = "<null>"


class AggregateError(KafkaopsError):
    """The aggregate job cannot run (missing topic, nothing assigned, unwritable output)."""


@dataclass(frozen=True)
class AggregateResult:
    """What one run did: records counted in this run, distinct keys, checkpoints saved,
    the checkpoint it resumed from (None for a fresh job) and the last one it saved."""

    records: int
    keys: int
    total: int
    checkpoints: int
    resumed_from: str | None
    last_checkpoint: str | None


def key_name(key: Any) -> str:
    """A record key as a JSON object key (bytes decoded as UTF-8, undecodable bytes escaped)."""
    if key is None:
        return NULL_KEY
    if isinstance(key, (bytes, bytearray)):
        return bytes(key).decode("utf-8", "backslashreplace")
    return str(key)


def write_json_atomic(path: Path, doc: Any) -> None:
    """Write ``doc`` as JSON to ``path`` so readers see the old or the new file, never half."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise AggregateError(f"cannot write {path}: {exc.strerror or exc}") from exc


def run_aggregate(
    cluster: ClusterProfile,
    topic: str,
    job: str,
    output: Path,
    *,
    idle_exit: float | None = None,
    every_records: int = 1000,
    every_seconds: float = 2.0,
    assign_timeout: float = 60.0,
    handle_sigterm: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> AggregateResult:
    """Count records of ``topic`` per key as job ``job`` until stopped (SIGTERM, with
    ``handle_sigterm``) or until ``idle_exit`` seconds (counted while partitions are
    assigned) pass without a new record. Checkpoints live in the profile's ZooKeeper,
    under its root, as its identity; counts over the inline limit go to the state topic."""
    output = Path(output)
    if not output.parent.is_dir():
        raise AggregateError(f"output directory {output.parent} does not exist")
    coord = Coordinator.shared(cluster.require_zookeeper("the aggregate job's checkpoints"))
    backend = TopicStateBackend(cluster)  # the topic is created at the first large state only
    try:
        def publish(_ckpt: str, counts: dict[str, int]) -> None:
            write_json_atomic(output, counts)

        consumer: CheckpointedConsumer[bytes, dict[str, int]] = CheckpointedConsumer(
            CheckpointStore(coord, state_backend=backend), job, cluster, topic, BytesCodec(),
            every_records=every_records, every_seconds=every_seconds, on_checkpoint=publish,
            handle_sigterm=handle_sigterm,
        )
        resumed_from = consumer.checkpoint_id
        counts = consumer.state
        ok = False
        try:
            _check_topic(consumer, topic)
            write_json_atomic(output, counts)
            records = _count(consumer, counts, topic, job, idle_exit, assign_timeout, progress)
            ok = True
        finally:
            consumer.close(processed=ok)
            if ok:
                write_json_atomic(output, counts)
        return AggregateResult(records, len(counts), sum(counts.values()), consumer.checkpoints,
                               resumed_from, consumer.checkpoint_id)
    finally:
        backend.close()
        coord.stop()


def _count(
    consumer: CheckpointedConsumer[bytes, dict[str, int]],
    counts: dict[str, int],
    topic: str,
    job: str,
    idle_exit: float | None,
    assign_timeout: float,
    progress: Callable[[int, int], None] | None,
) -> int:
    """Count records per key into ``counts`` until stopped or idle; the records counted."""
    records = 0
    assigning = Deadline(assign_timeout)
    assigned = False
    last = time.monotonic()
    while not consumer.stopped:
        record = consumer.poll(0.5)
        now = time.monotonic()
        if record is not None:
            k = key_name(record.key)
            counts[k] = counts.get(k, 0) + 1
            records += 1
            last = now
            if progress is not None and records % 1000 == 0:
                progress(records, sum(counts.values()))
            continue
        if not assigned:
            if consumer.assignment:
                assigned, last = True, now
            elif assigning.expired:
                raise AggregateError(f"no partition of {topic} was assigned to job {job} within {assign_timeout:.0f}s")
            continue
        if idle_exit is not None and now - last >= idle_exit:
            if _lagging(consumer):  # records are there, we are just slow: not idle
                last = now
                continue
            log.info("job %s: no new record for %.1fs, exiting", job, idle_exit)
            break
    return records


def _lagging(consumer: CheckpointedConsumer[Any, Any]) -> bool:
    """Whether a partition's last known high watermark (from fetch responses, no broker
    round trip) is beyond the next offset this job would process."""
    client = consumer.consumer.client
    nxt = consumer.offsets()
    for tp in consumer.assignment:
        try:
            _, high = client.get_watermark_offsets(TopicPartition(*tp), cached=True)
        except KafkaException:
            continue
        if high is not None and high >= 0 and nxt.get(tp, 0) < high:
            return True
    return False


def _check_topic(consumer: CheckpointedConsumer[Any, Any], topic: str) -> None:
    try:
        md = consumer.consumer.client.list_topics(topic, timeout=15)
    except KafkaException as exc:
        raise AggregateError(f"cannot read metadata of topic {topic}: {exc.args[0].str()}") from None
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        raise AggregateError(f"topic {topic} does not exist (create it first: kafkaops topic create)")

"""CheckpointedConsumer: a TypedConsumer bound to a job whose offsets and application
state are checkpointed together in ZooKeeper, for exactly-once state across crashes.

On assignment it seeks to the checkpointed offsets (not the group's committed ones;
partitions the job never read start at the earliest offset, so no record can be
skipped). Every ``every_records`` records or ``every_seconds`` seconds, and on close,
it saves the state with the offsets of exactly the records that state contains
(records count once the caller asks for the next one, as in TypedConsumer). After a
crash the next instance loads state + offsets of the last checkpoint and re-reads
what came after it: each record's effect is in the state exactly once.

The job is claimed at start (a new epoch): an older instance still running is fenced
(its next checkpoint raises FencedError and it stops). Kafka's group offsets are still
committed by TypedConsumer, for lag monitoring only. Where the state lives (inline in
ZooKeeper, or a state backend for large states) is the store's business. While
ZooKeeper is unreachable, checkpoints are deferred and consumption goes on for at most
``max_zookeeper_outage`` seconds; then polling raises NotWritableError (the job fails
loudly instead of running on without checkpoints).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

from confluent_kafka import KafkaException, TopicPartition

from kafkaops.clients.consumer import ConsumerRecord, TypedConsumer
from kafkaops.clients.sigterm import SigtermHandler
from kafkaops.config import ClusterProfile
from kafkaops.coord.checkpoints import CheckpointStore, FencedError, NotWritableError
from kafkaops.serde.codec import Codec, Deserializer
from kafkaops.types import TP

log = logging.getLogger(__name__)

T = TypeVar("T")
S = TypeVar("S")

#: librdkafka settings of a checkpointed consumer (``config`` overrides them). The job
#: is also a static group member (``group.instance.id = kafkaops-job-<job>``), so a
#: restarted instance takes its partitions back at once instead of waiting for the
#: dead one's session to time out. One instance per job runs at a time.
CHECKPOINTED_CONFIG: dict[str, Any] = {
    "session.timeout.ms": 10000,
}


def json_load(data: bytes | None) -> Any:
    """Default state loader: a JSON document (an empty dict when there is no state yet)."""
    return {} if data is None else json.loads(data)


def json_dump(state: Any) -> bytes:
    """Default state dumper: compact JSON with sorted keys."""
    return json.dumps(state, separators=(",", ":"), sort_keys=True).encode()


class CheckpointedConsumer(Generic[T, S]):
    """A TypedConsumer for ``job`` whose ``state`` (an S) and offsets are checkpointed together.

    ``state`` is loaded from the latest checkpoint by ``load`` (or ``load(None)`` for a
    new job) and saved with ``dump``. Mutate ``consumer.state`` while processing the
    records that ``poll()`` or iteration return. ``on_checkpoint(ckpt_id, state)`` runs
    after each successful save (e.g. to publish the state). ``new_partitions``:
    where partitions without a checkpointed offset start ("earliest" or "latest").
    ``cluster``: a :class:`~kafkaops.config.ClusterProfile` or a bootstrap string.
    ``handle_sigterm`` (off by default, as in TypedConsumer): in the main thread,
    SIGTERM ends iteration after a final checkpoint; the job's process opts in.
    ``max_zookeeper_outage``: seconds of deferred checkpoints before NotWritableError.
    """

    def __init__(
        self,
        store: CheckpointStore,
        job: str,
        cluster: ClusterProfile | str,
        topics: str | Iterable[str],
        value_codec: Codec[T] | Deserializer[T],
        *,
        load: Callable[[bytes | None], S] = json_load,
        dump: Callable[[S], bytes] = json_dump,
        every_records: int = 1000,
        every_seconds: float = 5.0,
        keep: int = 10,
        group_id: str | None = None,
        owner: str | None = None,
        new_partitions: str = "earliest",
        key_codec: Deserializer[Any] | None = None,
        config: dict[str, Any] | None = None,
        on_checkpoint: Callable[[str, S], None] | None = None,
        handle_sigterm: bool = False,
        poll_timeout: float = 0.5,
        max_zookeeper_outage: float = 30.0,
    ) -> None:
        if new_partitions not in ("earliest", "latest"):
            raise ValueError(f"new_partitions must be 'earliest' or 'latest', not {new_partitions!r}")
        self.store = store
        self.job = job
        self.every_records = max(1, every_records)
        self.every_seconds = every_seconds
        self.keep = keep
        self.dump = dump
        self.on_checkpoint = on_checkpoint
        self.new_partitions = new_partitions
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.max_zookeeper_outage = max_zookeeper_outage
        self._unwritable_since: float | None = None
        self._stop = threading.Event()
        # claim first: from here on an older instance of the job is fenced
        self.epoch = store.claim(job, self.owner)
        checkpoint = store.latest(job)
        self.checkpoint_id: str | None = checkpoint.id if checkpoint else None
        self._offsets: dict[TP, int] = dict(checkpoint.offsets) if checkpoint else {}
        self.state: S = load(checkpoint.state if checkpoint else None)
        self.records_since_checkpoint = 0
        self.checkpoints = 0
        self._last_checkpoint = time.monotonic()
        if checkpoint:
            log.info("job %s resumes from %s (%d partitions, epoch %d)", job, checkpoint.id,
                     len(self._offsets), self.epoch)
        conf = {**CHECKPOINTED_CONFIG, "group.instance.id": f"kafkaops-job-{job}", **(config or {})}
        self.consumer: TypedConsumer[T] = TypedConsumer(
            cluster,
            topics,
            group_id or f"kafkaops-job-{job}",
            value_codec,
            key_codec=key_codec,
            config=conf,
            offset_source=self,
            poll_timeout=poll_timeout,
            handle_sigterm=False,
        )
        self.sigterm = SigtermHandler(self.stop, f"job {job} (after a final checkpoint)")
        if handle_sigterm:
            self.sigterm.install()

    # ---- OffsetSource ----------------------------------------------------------------

    def starting_offsets(self, partitions: list[TP]) -> dict[TP, int]:
        """Checkpointed offsets; for partitions the job never read, the earliest (or
        latest) offset, so the group's committed offsets never decide."""
        starts: dict[TP, int] = {}
        for tp in partitions:
            if tp in self._offsets:
                starts[tp] = self._offsets[tp]
                continue
            try:
                low, high = self.consumer.client.get_watermark_offsets(TopicPartition(*tp), timeout=10)
            except KafkaException as exc:
                log.warning("watermarks of %s unavailable (%s): starting at the logical %s",
                            tp, exc.args[0].str(), self.new_partitions)
                starts[tp] = -2 if self.new_partitions == "earliest" else -1
                continue
            starts[tp] = int(low if self.new_partitions == "earliest" else high)
        log.info("job %s starts at %s", self.job, starts)
        return starts

    # ---- consuming -------------------------------------------------------------------

    def poll(self, timeout: float = 1.0) -> ConsumerRecord[T] | None:
        """The next record or None; the records returned before count as processed
        (their effect is in ``state``) and may be checkpointed now."""
        self.consumer.ack()  # the records returned before are in the state now
        self.maybe_checkpoint()
        record = self.consumer.poll(0 if self._stop.is_set() else timeout)
        if record is not None:
            self.records_since_checkpoint += 1
        return record

    def __iter__(self) -> Iterator[ConsumerRecord[T]]:
        """Records until ``stop()`` / SIGTERM; checkpoints between them as configured."""
        while not self._stop.is_set():
            record = self.poll(self.consumer.poll_timeout)
            if record is not None:
                yield record
        self.consumer.ack()

    @property
    def assignment(self) -> list[TP]:
        return self.consumer.assignment()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Ask iteration to end (thread- and signal-safe)."""
        self._stop.set()

    def maybe_checkpoint(self) -> str | None:
        """Checkpoint if ``every_records`` or ``every_seconds`` has been reached."""
        if self.records_since_checkpoint >= self.every_records or (
            self.records_since_checkpoint and time.monotonic() - self._last_checkpoint >= self.every_seconds
        ):
            if not self.store.coordinator.writable:
                # ZooKeeper connection suspended: keep consuming for a while, checkpoint once it is back
                now = time.monotonic()
                self._unwritable_since = self._unwritable_since or now
                if now - self._unwritable_since > self.max_zookeeper_outage:
                    raise NotWritableError(
                        f"job {self.job}: ZooKeeper at {self.store.coordinator.hosts} unavailable for "
                        f"{now - self._unwritable_since:.0f}s; no checkpoint since {self.checkpoint_id or 'the start'} "
                        f"({self.records_since_checkpoint} records processed since)")
                if now - self._last_checkpoint >= self.every_seconds:
                    log.warning("job %s: ZooKeeper not writable, checkpoint deferred", self.job)
                    self._last_checkpoint = now
                return None
            self._unwritable_since = None
            return self.checkpoint()
        return None

    def offsets(self) -> dict[TP, int]:
        """Offsets a checkpoint now would record: processed records of assigned
        partitions over the last checkpoint's (kept for partitions not assigned now)."""
        return {**self._offsets, **self.consumer.processed_offsets()}

    def checkpoint(self) -> str:
        """Save state + offsets now; every record returned so far must be in ``state``.
        FencedError (and the consumer stops) if another instance took the job."""
        self.consumer.ack()
        offsets = self.offsets()
        data = self.dump(self.state)
        try:
            ckpt_id = self.store.save(
                self.job, offsets, data,
                {"owner": self.owner, "records": self.records_since_checkpoint},
                epoch=self.epoch,
            )
        except FencedError:
            log.error("job %s: this instance (epoch %d) was fenced by a newer one; stopping", self.job, self.epoch)
            self._stop.set()
            raise
        self._offsets = offsets
        self.checkpoint_id = ckpt_id
        self.records_since_checkpoint = 0
        self.checkpoints += 1
        self._last_checkpoint = time.monotonic()
        if self.keep and self.checkpoints % max(1, self.keep) == 0:
            try:
                self.store.prune(self.job, keep=self.keep)
            except Exception:
                log.warning("job %s: pruning old checkpoints failed", self.job, exc_info=True)
        if self.on_checkpoint is not None:
            self.on_checkpoint(ckpt_id, self.state)
        return ckpt_id

    def close(self, processed: bool = True) -> None:
        """Final checkpoint, then close the consumer. ``processed``: the records
        returned so far are in ``state``; False (a failure mid-record, state maybe
        half-updated) skips the checkpoint: the next instance resumes from the last one."""
        try:
            if processed:
                self.consumer.ack()
                if self.records_since_checkpoint:
                    self.checkpoint()
        except FencedError:
            pass
        finally:
            self.consumer.close()
            self.sigterm.restore()

    def __enter__(self) -> CheckpointedConsumer[T, S]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(processed=exc_type is None)

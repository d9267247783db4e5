"""Audit trail: one hash-chained record per mutating operation, in a topic and a local file.

Each record says who (Kafka principal, OS user, host), what (``action``, e.g.
``topic.create``), on what (``target``), with which arguments (secrets redacted), the
result and when. Records of one writer form a *chain*: each carries its sequence number
and the SHA-256 of the previous record, so an edited record (its hash no longer matches
its content, or the next record's ``prev`` no longer matches its hash) and a deleted one
(a gap in the sequence) are found by :func:`verify`. The local JSON-lines file is the
chain (appends are serialized with ``flock``); every record also goes to the replicated
topic ``_kafkaops_audit`` (acks=all, idempotent), where the chains of all writers meet.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from kafkaops.config import ClusterProfile, Secret
from kafkaops.errors import KafkaopsError
from kafkaops.waits import Deadline

log = logging.getLogger(__name__)

AUDIT_TOPIC = "_kafkaops_audit"
SECRET_WORDS = ("password", "passwd", "secret", "token", "credential")
"""Argument names whose values are replaced by ``***`` (any key containing one of these)."""


class AuditError(KafkaopsError):
    """The audit trail could not be written or read."""


def redact(value: Any, key: str = "") -> Any:
    """A JSON-able copy of ``value`` with secrets replaced by ``***``."""
    if isinstance(value, Secret) or (key and any(w in key.lower() for w in SECRET_WORDS) and value is not None):
        return "***"
    if isinstance(value, Mapping):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


@dataclass(frozen=True)
class AuditRecord:
    """One audited operation; ``hash`` is the SHA-256 of every other field."""

    chain: str
    seq: int
    time: float
    principal: str
    os_user: str
    host: str
    action: str
    target: str
    args: dict[str, Any]
    result: str
    prev: str
    hash: str = ""

    def canonical(self) -> bytes:
        doc = asdict(self)
        doc.pop("hash")
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def digest(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> AuditRecord:
        names = {f.name for f in fields(cls)}
        missing = names - set(doc)
        if missing:
            raise AuditError(f"audit record lacks {', '.join(sorted(missing))}")
        return cls(**{k: doc[k] for k in names})

    @property
    def ok(self) -> bool:
        return self.result in ("ok", "dry-run")


@dataclass
class Verification:
    """What :func:`verify` found: records checked per chain, and the first break (if any)."""

    records: int = 0
    chains: dict[str, int] = field(default_factory=dict)
    broken_at: int | None = None
    """Index (0-based, in the order given) of the first record whose chain breaks."""
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify(records: Iterable[AuditRecord | Mapping[str, Any] | str]) -> Verification:
    """Check every chain: each record's hash matches its content, its ``prev`` is the hash
    of its chain's previous record, and its ``seq`` follows without a gap. Items may be
    records, dicts or raw JSON lines (an unreadable line is a break)."""
    result = Verification()
    last: dict[str, AuditRecord] = {}
    for i, item in enumerate(records):
        result.records = i + 1
        try:
            rec = item if isinstance(item, AuditRecord) else AuditRecord.from_json(
                json.loads(item) if isinstance(item, str) else item)
        except (ValueError, TypeError, AuditError) as exc:
            result.broken_at, result.reason = i, f"record {i + 1} is unreadable ({exc})"
            return result
        prev = last.get(rec.chain)
        where = f"record {i + 1} (chain {rec.chain[:8]}, seq {rec.seq})"
        if rec.digest() != rec.hash:
            result.broken_at, result.reason = i, f"{where} was altered: its hash does not match its content"
            return result
        if prev is None:
            if rec.seq != 0 and rec.chain not in result.chains:
                result.broken_at, result.reason = i, f"{where}: the chain's records before seq {rec.seq} are missing"
                return result
        elif rec.seq != prev.seq + 1:
            result.broken_at, result.reason = i, (
                f"{where}: records {prev.seq + 1}..{rec.seq - 1} of the chain are missing (deleted)"
                if rec.seq > prev.seq + 1 else f"{where}: seq goes back after {prev.seq} (records reordered or replayed)")
            return result
        elif rec.prev != prev.hash:
            result.broken_at, result.reason = i, f"{where}: prev does not match the hash of seq {prev.seq} (altered)"
            return result
        last[rec.chain] = rec
        result.chains[rec.chain] = result.chains.get(rec.chain, 0) + 1
    return result


def read_file(path: Path | str) -> list[str]:
    """The raw lines of an audit file (for :func:`verify` and :func:`search`)."""
    try:
        return [line for line in Path(path).read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise AuditError(f"cannot read audit file {path}: {exc.strerror}") from None


def search(
    records: Iterable[AuditRecord],
    *,
    action: str | None = None,
    target: str | None = None,
    principal: str | None = None,
    since: float | None = None,
    failed_only: bool = False,
) -> list[AuditRecord]:
    """Records matching every given filter (``action`` and ``target`` match as substrings)."""
    return [
        r for r in records
        if (action is None or action in r.action)
        and (target is None or target in r.target)
        and (principal is None or principal in (r.principal, r.os_user))
        and (since is None or r.time >= since)
        and (not failed_only or not r.ok)
    ]


def parse_records(lines: Iterable[str]) -> list[AuditRecord]:
    """Records from JSON lines, skipping unreadable ones (``verify`` reports those)."""
    out = []
    for line in lines:
        try:
            out.append(AuditRecord.from_json(json.loads(line)))
        except (ValueError, TypeError, AuditError):
            continue
    return out


class AuditLog:
    """Appends audit records to ``file`` (the chain) and to the cluster's audit topic.

    ``cluster`` None: file only. ``principal`` defaults to the profile's Kafka principal.
    A record that the topic did not acknowledge is still in the file; the failure is
    logged and reported in :attr:`topic_failures`.
    """

    def __init__(
        self,
        file: Path | str,
        cluster: ClusterProfile | None = None,
        *,
        topic: str = AUDIT_TOPIC,
        principal: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.file = Path(file)
        self.cluster = cluster
        self.topic = topic
        self.timeout = timeout
        self.principal = principal or (cluster.principal if cluster else "User:ANONYMOUS")
        self.os_user = _os_user()
        self.host = socket.gethostname()
        self.topic_failures = 0
        self._producer: Any = None

    # ------------------------------------------------------------------ writing
    def record(self, action: str, target: str, args: Mapping[str, Any] | None = None, result: str = "ok") -> AuditRecord:
        """Append one record (file first, then the topic) and return it."""
        rec = self._append(action, target, redact(dict(args or {})), result)
        if self.cluster is not None:
            self._publish(rec)
        return rec

    @contextlib.contextmanager
    def operation(self, action: str, target: str, args: Mapping[str, Any] | None = None) -> Iterator[None]:
        """Record the operation run inside the ``with`` block: ``ok``, or ``error: ...`` and re-raise.
        ``args`` is read when the block ends, so the block may add what it found out."""
        try:
            yield
        except BaseException as exc:
            self.record(action, target, args, f"error: {type(exc).__name__}: {exc}")
            raise
        self.record(action, target, args, "ok")

    def _append(self, action: str, target: str, args: dict[str, Any], result: str) -> AuditRecord:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.file, "a+", encoding="utf-8") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    last = _last_record(f)
                    chain = last.chain if last else uuid.uuid4().hex
                    rec = AuditRecord(
                        chain=chain, seq=last.seq + 1 if last else 0, time=time.time(),
                        principal=self.principal, os_user=self.os_user, host=self.host,
                        action=action, target=target, args=args, result=result,
                        prev=last.hash if last else "",
                    )
                    rec = AuditRecord(**{**asdict(rec), "hash": rec.digest()})
                    f.seek(0, os.SEEK_END)
                    f.write(json.dumps(rec.to_json(), sort_keys=True) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)
        except OSError as exc:
            raise AuditError(f"cannot append to audit file {self.file}: {exc.strerror}") from None
        return rec

    def _publish(self, rec: AuditRecord) -> None:
        from confluent_kafka import Producer

        assert self.cluster is not None
        try:
            if self._producer is None:
                ensure_topic(self.cluster, self.topic, self.timeout)
                self._producer = Producer(self.cluster.librdkafka(
                    acks="all", **{"enable.idempotence": True, "logger": log, "linger.ms": 0}))
            errors: list[str] = []
            self._producer.produce(self.topic, json.dumps(rec.to_json(), sort_keys=True).encode(),
                                   rec.chain.encode(), on_delivery=lambda e, _m: errors.append(e.str()) if e else None)
            left = self._producer.flush(self.timeout)
            if left or errors:
                raise AuditError(errors[0] if errors else f"not acknowledged within {self.timeout:.0f}s")
        except KafkaopsError as exc:
            self.topic_failures += 1
            log.warning("audit record %s seq %d is in %s but not in topic %s: %s",
                        rec.action, rec.seq, self.file, self.topic, exc)
        except Exception as exc:  # noqa: BLE001 - librdkafka errors: the file keeps the record
            self.topic_failures += 1
            log.warning("audit record %s seq %d is in %s but not in topic %s: %s",
                        rec.action, rec.seq, self.file, self.topic, exc)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(self.timeout)
            self._producer = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def audited(audit: AuditLog | None, action: str, target: str,
            args: Mapping[str, Any] | None = None) -> contextlib.AbstractContextManager[None]:
    """``audit.operation(...)``, or nothing when the caller gave no audit log (library entry
    points take ``audit: AuditLog | None`` and never make one themselves)."""
    return contextlib.nullcontext() if audit is None else audit.operation(action, target, args)


def ensure_topic(cluster: ClusterProfile, topic: str = AUDIT_TOPIC, timeout: float = 15.0) -> None:
    """Create the audit topic if missing: one partition (one total order), replicated like
    the no-loss defaults (RF up to 3, min ISR up to 2), kept forever."""
    from kafkaops.admin import admin_client, create_topic

    md = admin_client(cluster).list_topics(timeout=timeout)
    if topic in md.topics and md.topics[topic].error is None:
        return
    rf = min(3, len(md.brokers))
    create_topic(cluster, topic, 1, rf, {"min.insync.replicas": str(min(2, rf)), "retention.ms": "-1"},
                 timeout=timeout, exist_ok=True)


def read_topic(cluster: ClusterProfile, topic: str = AUDIT_TOPIC, timeout: float = 15.0) -> list[str]:
    """Every record of the audit topic, in order, as JSON lines."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer(cluster.librdkafka(**{"group.id": f"kafkaops-audit-{uuid.uuid4().hex[:8]}",
                                              "enable.auto.commit": False, "logger": log}))
    try:
        try:
            _low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=timeout)
        except KafkaException as exc:
            raise AuditError(f"cannot read audit topic {topic}: {exc.args[0].str()}") from None
        consumer.assign([TopicPartition(topic, 0, 0)])
        lines: list[str] = []
        deadline = Deadline(timeout)
        position = 0
        while position < high:
            if deadline.expired:
                raise AuditError(f"audit topic {topic}: read {len(lines)} of {high} records in {timeout:.0f}s")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                raise AuditError(f"cannot read audit topic {topic}: {err.str()}")
            lines.append((msg.value() or b"").decode("utf-8", "replace"))
            position = (msg.offset() or 0) + 1
        return lines
    finally:
        consumer.close()


def _last_record(f: Any) -> AuditRecord | None:
    """The last record of an open audit file (read backwards from its end)."""
    f.seek(0, os.SEEK_END)
    end = f.tell()
    if end == 0:
        return None
    block = min(end, 64 * 1024)
    f.seek(end - block)
    lines = [line for line in f.read(block).splitlines() if line.strip()]
    if not lines:
        return None
    try:
        return AuditRecord.from_json(json.loads(lines[-1]))
    except (ValueError, TypeError, AuditError) as exc:
        raise AuditError(f"the last record of {f.name} is unreadable ({exc}); run `kafkaops audit verify`") from None


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())

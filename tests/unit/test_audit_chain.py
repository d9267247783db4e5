"""The audit trail's hash chain: appends, redaction, and verify finding edits and deletions."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from kafkaops.audit import AuditLog, parse_records, read_file, redact, search, verify
from kafkaops.config import Secret


def _log(tmp_path: Path, n: int) -> Path:
    log = AuditLog(tmp_path / "audit.jsonl", principal="User:admin")
    for i in range(n):
        log.record("topic.create", f"orders-{i}", {"partitions": 3, "password": "hunter22"})
    return log.file


def test_chain_links_every_record(tmp_path: Path) -> None:
    lines = read_file(_log(tmp_path, 5))
    recs = parse_records(lines)
    assert [r.seq for r in recs] == [0, 1, 2, 3, 4]
    assert len({r.chain for r in recs}) == 1
    assert all(b.prev == a.hash for a, b in zip(recs, recs[1:]))
    assert all(r.args["password"] == "***" and r.args["partitions"] == 3 for r in recs)
    v = verify(lines)
    assert v.ok and v.records == 5


def test_verify_finds_an_edited_record(tmp_path: Path) -> None:
    lines = read_file(_log(tmp_path, 5))
    doc = json.loads(lines[2])
    doc["target"] = "payments"  # the edit
    lines[2] = json.dumps(doc)
    v = verify(lines)
    assert not v.ok and v.broken_at == 2 and "altered" in (v.reason or "")


def test_verify_finds_an_edit_that_recomputed_its_own_hash(tmp_path: Path) -> None:
    from kafkaops.audit import AuditRecord

    lines = read_file(_log(tmp_path, 5))
    rec = AuditRecord.from_json(json.loads(lines[1]))
    forged = AuditRecord(**{**rec.to_json(), "result": "error: nothing happened"})
    forged = AuditRecord(**{**forged.to_json(), "hash": forged.digest()})
    lines[1] = json.dumps(forged.to_json())
    v = verify(lines)
    assert not v.ok and v.broken_at == 2 and "prev does not match" in (v.reason or "")


def test_verify_finds_a_deleted_record(tmp_path: Path) -> None:
    lines = read_file(_log(tmp_path, 5))
    del lines[3]
    v = verify(lines)
    assert not v.ok and v.broken_at == 3 and "3..3" in (v.reason or "") and "missing" in (v.reason or "")


def test_verify_finds_a_deleted_first_record_and_garbage(tmp_path: Path) -> None:
    lines = read_file(_log(tmp_path, 3))
    assert verify(lines[1:]).broken_at == 0
    assert verify([*lines, "{not json"]).broken_at == 3


def test_concurrent_writers_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"

    def writer(k: int) -> None:
        log = AuditLog(path)
        for i in range(25):
            log.record("checkpoint.prune", f"job-{k}", {"keep": i})

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = read_file(path)
    assert len(lines) == 100
    assert verify(lines).ok
    assert len(search(parse_records(lines), target="job-2")) == 25


def test_redact_secrets_everywhere() -> None:
    out = redact({"user": "svc", "sasl_password": "x", "nested": {"token": "t", "s": Secret("y")}, "l": [Secret("z")]})
    assert out == {"user": "svc", "sasl_password": "***", "nested": {"token": "***", "s": "***"}, "l": ["***"]}

"""The compatibility matrix over the shipped schemas and the incompatible fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

from kafkaops.serde.avro import AvroSchema
from kafkaops.serde.compatibility import Compatibility, check_compatibility, reader_problems

ROOT = Path(__file__).resolve().parents[2]
S = {p.stem: AvroSchema.load(p) for p in [*ROOT.glob("schemas/*.avsc"), *ROOT.glob("tests/fixtures/schemas/*.avsc")]}

B, F, FULL, NONE = Compatibility.BACKWARD, Compatibility.FORWARD, Compatibility.FULL, Compatibility.NONE


@pytest.mark.parametrize(
    ("old", "new", "mode", "ok"),
    [
        # v2 of order, payment, iot reading: optional fields with defaults -> FULL
        *[(f"{d}-v1", f"{d}-v2", m, True) for d in ("order", "payment", "iot-device-reading") for m in (B, F, FULL)],
        # trade v2 widens quantity int -> long: a v2 reader reads v1 data, not the other way round
        ("trade-v1", "trade-v2", B, True),
        ("trade-v1", "trade-v2", F, False),
        ("trade-v1", "trade-v2", FULL, False),
        # the fixture adds a required field without default
        ("order-v2", "order-v3-incompatible", B, False),
        ("order-v2", "order-v3-incompatible", F, True),
        ("order-v2", "order-v3-incompatible", FULL, False),
        ("order-v2", "order-v3-incompatible", NONE, True),
        # going back: v1 as the "new" schema after v2 (drops fields that had defaults) -> FULL too
        ("order-v2", "order-v1", FULL, True),
        # a different record altogether
        ("order-v1", "payment-v1", B, False),
    ],
)
def test_compatibility_matrix(old: str, new: str, mode: Compatibility, ok: bool) -> None:
    problems = check_compatibility(S[new], [S[old]], mode)
    assert (problems == []) is ok, problems


def test_incompatibility_names_the_breaking_field() -> None:
    problems = check_compatibility(S["order-v3-incompatible"], [S["order-v2"]], B)
    assert len(problems) == 1
    assert "Order.warehouse_id" in problems[0] and "no default" in problems[0]
    trade = check_compatibility(S["trade-v2"], [S["trade-v1"]], F)
    assert any("Trade.quantity" in p and "long" in p for p in trade)


def test_transitive_modes_check_every_earlier_version() -> None:
    old = AvroSchema.parse({"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]})
    mid = AvroSchema.parse({"type": "record", "name": "R", "fields": [{"name": "a", "type": "int", "default": 0}]})
    new = AvroSchema.parse({"type": "record", "name": "R", "fields": [{"name": "b", "type": "string", "default": ""}]})
    # new reads mid-written and old-written data (a is ignored, b defaulted): BACKWARD both ways
    assert check_compatibility(new, [old, mid], Compatibility.BACKWARD_TRANSITIVE) == []
    # FORWARD: old (a required, no default) cannot read new data; mid can (a has a default)
    assert check_compatibility(new, [old, mid], F) == []
    problems = check_compatibility(new, [old, mid], Compatibility.FORWARD_TRANSITIVE)
    assert problems and "R.a" in problems[0]


@pytest.mark.parametrize(
    ("writer", "reader", "fragment"),
    [
        ({"type": "enum", "name": "E", "symbols": ["A", "B"]}, {"type": "enum", "name": "E", "symbols": ["A"]}, "B"),
        ("string", "int", "string to int"),
        (["null", "string"], "string", "null"),
        ({"type": "fixed", "name": "H", "size": 4}, {"type": "fixed", "name": "H", "size": 8}, "fixed"),
        ({"type": "array", "items": "long"}, {"type": "array", "items": "int"}, "[]"),
    ],
)
def test_structural_rules(writer: object, reader: object, fragment: str) -> None:
    problems = reader_problems(AvroSchema.parse(writer), AvroSchema.parse(reader))
    assert problems and fragment in problems[0], problems


def test_promotions_and_enum_default_are_compatible() -> None:
    assert reader_problems(AvroSchema.parse("int"), AvroSchema.parse("double")) == []
    assert reader_problems(AvroSchema.parse("string"), AvroSchema.parse(["null", "string"])) == []
    e1 = AvroSchema.parse({"type": "enum", "name": "E", "symbols": ["A", "B"]})
    e2 = AvroSchema.parse({"type": "enum", "name": "E", "symbols": ["A", "X"], "default": "X"})
    assert reader_problems(e1, e2) == []

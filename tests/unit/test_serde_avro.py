"""Avro codec: Confluent wire format byte for byte, dataclass mapping, typed decode errors."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastavro.utils import generate_many

from kafkaops.serde.avro import AvroCodec, AvroSchema, SchemaError, split_wire, wire_header
from kafkaops.serde.codec import (
    EncodeError,
    TruncatedMessageError,
    UndecodableError,
    UnknownSchemaIdError,
    WrongMagicByteError,
)

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"

POINT = {
    "type": "record",
    "name": "Point",
    "fields": [
        {"name": "name", "type": "string"},
        {"name": "x", "type": "int"},
        {"name": "ok", "type": "boolean"},
    ],
}


def test_wire_format_bytes_of_a_known_record() -> None:
    codec: AvroCodec[dict[str, object]] = AvroCodec(AvroSchema.parse(POINT), 258)
    data = codec.encode({"name": "ab", "x": -3, "ok": True})
    # magic 0 | schema id 258 big-endian | "ab": zigzag len 2 -> 0x04, 'a' 'b' | -3 -> zigzag 5 | true -> 0x01
    assert data == bytes([0x00, 0x00, 0x00, 0x01, 0x02, 0x04, 0x61, 0x62, 0x05, 0x01])
    assert codec.decode(data) == {"name": "ab", "x": -3, "ok": True}
    assert wire_header(258) == b"\x00\x00\x00\x01\x02"


def test_wire_format_of_a_demo_order() -> None:
    schema = AvroSchema.load(SCHEMAS / "order-v1.avsc")
    codec: AvroCodec[dict[str, object]] = AvroCodec(schema, 7)
    order = {
        "order_id": "o1", "customer_id": "c9", "created_at": 1, "status": "PAID",
        "lines": [{"sku": "s", "quantity": 2, "unit_price_cents": 150}], "total_cents": 300, "currency": "EUR",
    }
    expected = (
        b"\x00" + struct.pack(">I", 7)
        + b"\x04o1" + b"\x04c9" + b"\x02"  # strings; created_at 1 -> zigzag 2
        + b"\x02"  # enum index 1 (PAID) -> zigzag 2
        + b"\x02" + b"\x02s" + b"\x04" + b"\xac\x02" + b"\x00"  # 1 block of 1 line; qty 2; 150 -> 300 varint; end
        + b"\xd8\x04"  # 300 -> zigzag 600 varint
        + b"\x06EUR"
    )
    assert codec.encode(order) == expected


class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"


@dataclass
class Line:
    sku: str
    quantity: int


@dataclass
class Basket:
    id: str
    side: Side
    lines: list[Line]
    main: Line | None = None
    tags: dict[str, str] = field(default_factory=dict)


BASKET = {
    "type": "record", "name": "Basket", "fields": [
        {"name": "id", "type": "string"},
        {"name": "side", "type": {"type": "enum", "name": "Side", "symbols": ["BUY", "SELL"]}},
        {"name": "lines", "type": {"type": "array", "items": {
            "type": "record", "name": "Line", "fields": [
                {"name": "sku", "type": "string"}, {"name": "quantity", "type": "int"}]}}},
        {"name": "main", "type": ["null", "Line"], "default": None},
        {"name": "tags", "type": {"type": "map", "values": "string"}, "default": {}},
    ],
}


def test_dataclass_round_trip_with_nested_optional_and_enum() -> None:
    codec = AvroCodec(AvroSchema.parse(BASKET), 3, record_type=Basket)
    value = Basket("b1", Side.SELL, [Line("a", 1), Line("b", 2)], Line("m", 9), {"k": "v"})
    assert codec.decode(codec.encode(value)) == value
    empty = Basket("b2", Side.BUY, [])
    assert codec.decode(codec.encode(empty)) == empty


@dataclass
class Flat:
    name: str
    x: int
    ok: bool


def test_flat_dataclass_and_dict_encode_identically() -> None:
    schema = AvroSchema.parse(POINT)
    typed = AvroCodec(schema, 1, record_type=Flat)
    plain: AvroCodec[dict[str, object]] = AvroCodec(schema, 1)
    assert typed.encode(Flat("n", 5, False)) == plain.encode({"name": "n", "x": 5, "ok": False})
    assert typed.decode(plain.encode({"name": "n", "x": 5, "ok": False})) == Flat("n", 5, False)


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.avsc")), ids=lambda p: p.name)
def test_every_shipped_schema_round_trips_generated_records(path: Path) -> None:
    schema = AvroSchema.load(path)
    codec: AvroCodec[dict[str, object]] = AvroCodec(schema, 11)
    for record in generate_many(schema.parsed, 20):
        data = codec.encode(record)
        assert data[:5] == wire_header(11)
        assert codec.encode(codec.decode(data)) == data


def test_encode_error_names_the_problem() -> None:
    codec: AvroCodec[dict[str, object]] = AvroCodec(AvroSchema.parse(POINT), 1)
    with pytest.raises(EncodeError, match="name"):
        codec.encode({"name": 5, "x": 1, "ok": True})
    with pytest.raises(EncodeError):
        codec.encode({"name": "a"})


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", TruncatedMessageError),
        (b"\x00\x00\x00", TruncatedMessageError),
        (b"\x01\x00\x00\x00\x01\x02a", WrongMagicByteError),
        (b"{\"json\": true}", WrongMagicByteError),
        (b"\x00\x00\x00\x00\x01\x04a", TruncatedMessageError),  # string of 2 bytes, 1 present
        (b"\x00\x00\x00\x00\x01\x02a\x02\x01\xff\xff", UndecodableError),  # trailing garbage
        (b"\x00\x00\x00\x00\x63\x02a\x02\x01", UnknownSchemaIdError),  # id 99, no registry
    ],
)
def test_poison_bytes_raise_typed_decode_errors(data: bytes, error: type[Exception]) -> None:
    codec: AvroCodec[dict[str, object]] = AvroCodec(AvroSchema.parse(POINT), 1)
    with pytest.raises(error):
        codec.decode(data)


class _Lookup:
    def __init__(self, schemas: dict[int, AvroSchema]) -> None:
        self.schemas = schemas

    def schema_by_id(self, schema_id: int) -> AvroSchema:
        if schema_id not in self.schemas:
            raise UnknownSchemaIdError(str(schema_id))
        return self.schemas[schema_id]


def test_reader_schema_resolution_fills_defaults_of_a_newer_version() -> None:
    v1 = AvroSchema.load(SCHEMAS / "payment-v1.avsc")
    v2 = AvroSchema.load(SCHEMAS / "payment-v2.avsc")
    writer: AvroCodec[dict[str, object]] = AvroCodec(v1, 1)
    reader: AvroCodec[dict[str, object]] = AvroCodec(v2, 2, registry=_Lookup({1: v1, 2: v2}))
    record = next(generate_many(v1.parsed, 1))
    decoded = reader.decode(writer.encode(record))
    assert decoded["processor_ref"] is None
    assert decoded["payment_id"] == record["payment_id"]
    generic: AvroCodec[dict[str, object]] = AvroCodec(registry=_Lookup({1: v1}))
    assert "processor_ref" not in generic.decode(writer.encode(record))
    with pytest.raises(SchemaError):
        generic.encode(record)


def test_split_wire_and_schema_errors() -> None:
    sid, body = split_wire(b"\x00\x00\x00\x01\x00xyz")
    assert (sid, bytes(body)) == (256, b"xyz")
    with pytest.raises(SchemaError, match="invalid Avro schema"):
        AvroSchema.parse({"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]})
    with pytest.raises(SchemaError, match="not valid JSON"):
        AvroSchema.parse("{broken")
    assert AvroSchema.parse(POINT).fingerprint != AvroSchema.parse(
        {**POINT, "fields": [*POINT["fields"][:2], {"name": "ok", "type": "boolean", "default": False}]}  # type: ignore[index]
    ).fingerprint


def test_unresolvable_dataclass_hints_are_a_schema_error() -> None:
    @dataclass
    class Local:
        when: "NotDefinedAnywhere"  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(SchemaError, match="module level"):
        AvroCodec(AvroSchema.parse(POINT), 1, record_type=Local)
    with pytest.raises(SchemaError, match="dataclass"):
        AvroCodec(AvroSchema.parse(POINT), 1, record_type=dict)

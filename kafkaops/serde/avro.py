"""Avro on fastavro, in the Confluent wire format (magic byte 0, 4-byte big-endian schema id, body).

Standard Kafka tooling (Confluent's deserializers, kcat -s avro, ...) reads what
``AvroCodec`` writes, given the same schema id. Values may be dicts or dataclasses
(nested dataclasses, ``Optional``/``list``/``dict`` of them, and ``Enum`` fields
are mapped); a codec bound to a registry decodes records written with any
registered schema, resolving them to its own (reader) schema.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import struct
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.schema import SchemaParseException, UnknownType, to_parsing_canonical_form

from kafkaops.serde.codec import (
    EncodeError,
    SerdeError,
    TruncatedMessageError,
    UndecodableError,
    UnknownSchemaIdError,
    WrongMagicByteError,
)

T = TypeVar("T")

MAGIC_BYTE = 0
WIRE_HEADER = struct.Struct(">bI")
"""magic byte (0) + schema id (unsigned 32-bit, big-endian): 5 bytes before the Avro body."""


_READ_ERRORS = (
    EOFError, SchemaResolutionError, ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError,
    OverflowError, MemoryError,
)
"""What fastavro raises on bytes that are not what the schema says (truncated, garbage)."""


class SchemaError(SerdeError):
    """A schema that does not parse, or does not fit where it is used."""


@dataclass(frozen=True)
class AvroSchema:
    """A parsed Avro schema, its Parsing Canonical Form, and a SHA-256 fingerprint of its full JSON."""

    source: Any
    parsed: Any = dataclasses.field(repr=False, compare=False)
    canonical: str = dataclasses.field(repr=False)
    fingerprint: str = dataclasses.field(repr=False, compare=False)

    @classmethod
    def parse(cls, schema: Any) -> AvroSchema:
        """From a JSON string, or the already-loaded JSON (dict, list or str type name)."""
        if isinstance(schema, AvroSchema):
            return schema
        if isinstance(schema, bytes | str) and not _is_primitive_name(schema):
            try:
                schema = json.loads(schema)
            except ValueError as exc:
                raise SchemaError(f"schema is not valid JSON: {exc}") from None
        try:
            parsed = parse_schema(schema, _write_hint=True)
            canonical = to_parsing_canonical_form(parsed)
        except (SchemaParseException, UnknownType, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SchemaError(f"invalid Avro schema: {exc}") from None
        # fingerprint of the full JSON (keys sorted): unlike the canonical form it keeps
        # defaults and aliases, which change what a schema means to a reader
        normalized = json.dumps(schema, sort_keys=True, separators=(",", ":"))
        return cls(schema, parsed, canonical, hashlib.sha256(normalized.encode()).hexdigest())

    @classmethod
    def load(cls, path: str | Path) -> AvroSchema:
        """From an ``.avsc`` file."""
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise SchemaError(f"cannot read schema file {p}: {exc.strerror}") from None
        try:
            return cls.parse(text)
        except SchemaError as exc:
            raise SchemaError(f"{p}: {exc}") from None

    @property
    def name(self) -> str:
        """The full name of a named type, else the type itself (e.g. ``"string"``)."""
        p = self.parsed
        if isinstance(p, dict):
            return str(p.get("name", p.get("type")))
        return "union" if isinstance(p, list) else str(p)

    def to_json(self) -> str:
        """The schema as the user wrote it (JSON), for storage and display."""
        return json.dumps(self.source, separators=(",", ":"))


def _is_primitive_name(s: str | bytes) -> bool:
    text = s.decode() if isinstance(s, bytes) else s
    return text in {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


class SchemaLookup(Protocol):
    """Finds a writer schema by its global id (the registry implements it)."""

    def schema_by_id(self, schema_id: int) -> AvroSchema: ...


def wire_header(schema_id: int) -> bytes:
    """The 5 bytes that precede the Avro body in the Confluent wire format."""
    return WIRE_HEADER.pack(MAGIC_BYTE, schema_id)


def split_wire(data: bytes) -> tuple[int, memoryview]:
    """(schema id, Avro body) of a wire-format record; typed errors for poison input."""
    if len(data) < WIRE_HEADER.size:
        if data and data[0] != MAGIC_BYTE:
            raise WrongMagicByteError(f"magic byte is {data[0]}, expected {MAGIC_BYTE} (not Confluent Avro)")
        raise TruncatedMessageError(f"{len(data)} bytes, shorter than the {WIRE_HEADER.size}-byte wire header")
    magic, schema_id = WIRE_HEADER.unpack_from(data)
    if magic != MAGIC_BYTE:
        raise WrongMagicByteError(f"magic byte is {magic & 0xFF}, expected {MAGIC_BYTE} (not Confluent Avro)")
    return schema_id, memoryview(data)[WIRE_HEADER.size :]


class AvroCodec(Generic[T]):
    """Encode values of type T with one schema under one id; decode any known writer schema.

    ``schema``/``schema_id``: the schema this codec writes (and reads into). Without
    ``schema`` the codec is generic: it only decodes, into dicts, using each record's
    writer schema from ``registry``. ``record_type``: a dataclass the values are
    mapped to and from (default: dicts).
    """

    def __init__(
        self,
        schema: AvroSchema | None = None,
        schema_id: int | None = None,
        *,
        record_type: type[T] | None = None,
        registry: SchemaLookup | None = None,
    ) -> None:
        if schema is not None and schema_id is None:
            raise SchemaError("an AvroCodec with a schema needs that schema's registry id")
        if schema is None and registry is None:
            raise SchemaError("a generic AvroCodec (no schema) needs a registry to look writer schemas up")
        self.schema = schema
        self.schema_id = schema_id
        self.record_type = record_type
        self._registry = registry
        self._parsed: Any = schema.parsed if schema is not None else None
        self._header = wire_header(schema_id) if schema_id is not None else b""
        self._writers: dict[int, Any] = {}
        self._to_avro: Callable[[Any], Any] | None = None
        self._from_avro: Callable[[Any], Any] | None = None
        if record_type is not None:
            if not dataclasses.is_dataclass(record_type):
                raise SchemaError(f"record_type must be a dataclass, not {record_type!r}")
            self._to_avro, self._from_avro = _dataclass_mappers(record_type)

    def encode(self, value: T) -> bytes:
        """Wire header + Avro body. Raises EncodeError when the value does not fit the schema."""
        if self._parsed is None:
            raise SchemaError("this AvroCodec is generic (decode only): give it a schema to encode")
        datum = self._to_avro(value) if self._to_avro is not None else value
        buf = BytesIO()
        buf.write(self._header)
        try:
            schemaless_writer(buf, self._parsed, datum)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise EncodeError(f"value does not fit schema {self.schema.name if self.schema else ''}: {exc}") from None
        return buf.getvalue()

    def decode(self, data: bytes) -> T:
        """The value of a wire-format record; DecodeError subclasses for poison input."""
        header = self._header
        if header and data[:5] == header:  # fast path: written with this codec's own schema
            buf = BytesIO(data)
            buf.seek(5)
            try:
                datum = schemaless_reader(buf, self._parsed, None)
            except _READ_ERRORS as exc:
                raise self._decode_error(exc, self.schema_id or 0, len(data) - 5) from None
            if buf.tell() != len(data):
                raise UndecodableError(f"trailing bytes after the Avro body (schema id {self.schema_id})")
        else:
            datum = self._decode_other(data)
        if self._from_avro is not None:
            try:
                return self._from_avro(datum)  # type: ignore[no-any-return]
            except (TypeError, ValueError, KeyError) as exc:
                raise UndecodableError(f"record does not map to {self.record_type}: {exc}") from None
        return datum  # type: ignore[return-value]

    def _decode_other(self, data: bytes) -> Any:
        """Any other writer schema (resolved to this codec's schema), or poison."""
        schema_id, body = split_wire(data)
        writer: Any
        if schema_id == self.schema_id:
            writer, reader = self._parsed, None
        else:
            writer, reader = self._writer(schema_id), self._parsed
        buf = BytesIO(body)
        try:
            datum = schemaless_reader(buf, writer, reader)
        except _READ_ERRORS as exc:
            raise self._decode_error(exc, schema_id, len(body)) from None
        if buf.tell() != len(body):
            raise UndecodableError(f"trailing bytes after the Avro body (schema id {schema_id})")
        return datum

    def _decode_error(self, exc: BaseException, schema_id: int, size: int) -> Exception:
        if isinstance(exc, EOFError):
            return TruncatedMessageError(f"Avro body of {size} bytes ends early (schema id {schema_id})")
        if isinstance(exc, SchemaResolutionError):
            return UndecodableError(f"schema id {schema_id} cannot be read as {self.schema and self.schema.name}: {exc}")
        return UndecodableError(f"Avro body does not decode with schema id {schema_id}: {type(exc).__name__}: {exc}")

    def _writer(self, schema_id: int) -> Any:
        writer = self._writers.get(schema_id)
        if writer is None:
            if self._registry is None:
                raise UnknownSchemaIdError(
                    f"schema id {schema_id} is not this codec's ({self.schema_id}) and no registry is bound"
                )
            writer = self._registry.schema_by_id(schema_id).parsed
            self._writers[schema_id] = writer
        return writer


# ---------------------------------------------------------------------- dataclass mapping
def _identity(v: Any) -> Any:
    return v


def _field_mappers(hint: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]] | None:
    """(to_avro, from_avro) for one annotated type, or None when values pass through unchanged."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(inner) == 1:
            m = _field_mappers(inner[0])
            if m is None:
                return None
            to, frm = m
            return (lambda v: None if v is None else to(v)), (lambda v: None if v is None else frm(v))
        return None
    if origin in (list, typing.List):  # noqa: UP006
        (arg,) = typing.get_args(hint) or (Any,)
        m = _field_mappers(arg)
        if m is None:
            return None
        to, frm = m
        return (lambda v: [to(x) for x in v]), (lambda v: [frm(x) for x in v])
    if origin in (dict, typing.Dict):  # noqa: UP006
        args = typing.get_args(hint)
        m = _field_mappers(args[1]) if len(args) == 2 else None
        if m is None:
            return None
        to, frm = m
        return (lambda v: {k: to(x) for k, x in v.items()}), (lambda v: {k: frm(x) for k, x in v.items()})
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass_mappers(hint)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        enum_type = hint
        return (lambda v: v.name if isinstance(v, enum.Enum) else v), (lambda v: enum_type[v])
    return None


def _dataclass_mappers(cls: type[Any]) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """Functions dataclass -> dict and dict -> dataclass, built once per type."""
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError) as exc:
        raise SchemaError(
            f"cannot resolve the field types of {cls.__qualname__} ({exc}); define it at module level"
        ) from None
    fields = [f.name for f in dataclasses.fields(cls)]
    mappers = {name: m for name in fields if (m := _field_mappers(hints.get(name, Any))) is not None}
    slots = not hasattr(cls, "__dict__") or "__slots__" in cls.__dict__
    if not mappers and not slots:
        # flat dataclass: its __dict__ is the Avro record (fastavro reads the fields it needs)
        return vars, lambda d: cls(**d)
    to_fns = [(n, mappers[n][0] if n in mappers else _identity) for n in fields]
    from_fns = {n: m[1] for n, m in mappers.items()}

    def to_avro(v: Any) -> dict[str, Any]:
        return {n: fn(getattr(v, n)) for n, fn in to_fns}

    def from_avro(d: dict[str, Any]) -> Any:
        for n, fn in from_fns.items():
            if n in d:
                d[n] = fn(d[n])
        return cls(**d)

    return to_avro, from_avro

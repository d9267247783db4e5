"""The small Codec protocol every value/key format implements, its errors, and the plain codecs.

A codec turns one Python value into the bytes of a Kafka record and back. Decoding
errors are typed (``DecodeError`` subclasses) so a consumer can tell a poison
message from a bug and dead-letter it.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import enum
import json
import uuid
from typing import Any, Protocol, TypeVar

from kafkaops.errors import KafkaopsError

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
T_contra = TypeVar("T_contra", contravariant=True)


class SerdeError(KafkaopsError):
    """A value could not be serialized, or a schema could not be used."""


class EncodeError(SerdeError):
    """A value does not fit the codec (e.g. a record missing a field its Avro schema requires)."""


class DecodeError(SerdeError):
    """The bytes of a record cannot be decoded: a poison message for the consumer."""


class WrongMagicByteError(DecodeError):
    """The first byte is not the Confluent wire format's magic byte 0."""


class TruncatedMessageError(DecodeError):
    """The record is shorter than its header, or its body ends before the schema says."""


class UnknownSchemaIdError(DecodeError):
    """The wire header names a schema id the registry does not know."""


class UndecodableError(DecodeError):
    """The body does not decode with its schema (bad JSON, bad UTF-8, trailing garbage...)."""


class Serializer(Protocol[T_contra]):
    def encode(self, value: T_contra) -> bytes: ...


class Deserializer(Protocol[T_co]):
    def decode(self, data: bytes) -> T_co: ...


class Codec(Protocol[T]):
    """Encode a value of type T into record bytes, and decode them back."""

    def encode(self, value: T) -> bytes: ...

    def decode(self, data: bytes) -> T: ...


class BytesCodec:
    """Raw bytes, passed through unchanged."""

    def encode(self, value: bytes) -> bytes:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise EncodeError(f"BytesCodec takes bytes, not {type(value).__name__}")
        return bytes(value)

    def decode(self, data: bytes) -> bytes:
        return data


class StringCodec:
    """UTF-8 text; accepts bytes as-is on encode (the default key codec)."""

    def encode(self, value: str | bytes) -> bytes:
        if isinstance(value, str):
            return value.encode()
        if isinstance(value, bytes):
            return value
        raise EncodeError(f"StringCodec takes str or bytes, not {type(value).__name__}")

    def decode(self, data: bytes) -> str:
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            raise UndecodableError(f"not UTF-8: {exc}") from None


class JsonCodec:
    """JSON documents (UTF-8, compact separators). Decodes to plain dicts/lists/scalars."""

    def __init__(self, *, sort_keys: bool = False, default: Any = None) -> None:
        self._dumps = json.JSONEncoder(separators=(",", ":"), sort_keys=sort_keys, default=default).encode
        self._loads = json.JSONDecoder().decode

    def encode(self, value: Any) -> bytes:
        try:
            return self._dumps(value).encode()
        except (TypeError, ValueError) as exc:
            raise EncodeError(f"not JSON-serializable: {exc}") from None

    def decode(self, data: bytes) -> Any:
        try:
            return self._loads(data.decode())
        except UnicodeDecodeError as exc:
            raise UndecodableError(f"JSON body is not UTF-8: {exc}") from None
        except ValueError as exc:
            raise UndecodableError(f"not JSON: {exc}") from None


def to_jsonable(value: Any) -> Any:
    """A decoded value as plain JSON types: datetimes ISO 8601, Decimals and UUIDs as strings,
    bytes as base64, enums by name, dataclasses as dicts."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.name
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)

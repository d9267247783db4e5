"""JSON, string and bytes codecs behind the Codec protocol; JSON rendering of decoded values."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest

from kafkaops.serde.codec import (
    BytesCodec,
    Codec,
    EncodeError,
    JsonCodec,
    StringCodec,
    UndecodableError,
    to_jsonable,
)


def test_codecs_round_trip_and_satisfy_the_protocol() -> None:
    json_codec: Codec[object] = JsonCodec()
    assert json_codec.encode({"a": [1, "x"]}) == b'{"a":[1,"x"]}'
    assert json_codec.decode(b'{"a":[1,"x"]}') == {"a": [1, "x"]}
    assert BytesCodec().decode(BytesCodec().encode(b"\x00\xff")) == b"\x00\xff"
    assert StringCodec().encode("é") == "é".encode()
    assert StringCodec().encode(b"raw") == b"raw"
    assert StringCodec().decode("é".encode()) == "é"


def test_codec_errors_are_typed() -> None:
    with pytest.raises(UndecodableError, match="not JSON"):
        JsonCodec().decode(b"{nope")
    with pytest.raises(UndecodableError, match="UTF-8"):
        JsonCodec().decode(b"\xff\xfe")
    with pytest.raises(UndecodableError):
        StringCodec().decode(b"\xff")
    with pytest.raises(EncodeError):
        JsonCodec().encode({"a": object()})
    with pytest.raises(EncodeError):
        BytesCodec().encode("text")  # type: ignore[arg-type]


def test_to_jsonable() -> None:
    u = uuid.UUID(int=1)
    out = to_jsonable({
        "t": datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc), "d": decimal.Decimal("1.50"),
        "b": b"\x00\x01", "u": u, "l": (1, 2),
    })
    assert out == {"t": "2024-01-02T00:00:00+00:00", "d": "1.50", "b": "AAE=", "u": str(u), "l": [1, 2]}

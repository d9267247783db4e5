"""Avro schema compatibility (BACKWARD, FORWARD, FULL, NONE and their transitive forms).

"Can a reader with schema R decode data written with schema W?" is answered in two
passes: a structural walk following the Avro resolution rules (which names the
field that breaks, e.g. ``Order.coupon``), then fastavro's own schema resolution
(``schemaless_reader(writer, reader)``) on sample records generated from W, which
catches whatever the walk might miss.
"""

from __future__ import annotations

import enum
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import expand_schema
from fastavro.utils import generate_many

from kafkaops.serde.avro import AvroSchema

PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
PROMOTIONS = {
    ("int", "long"), ("int", "float"), ("int", "double"),
    ("long", "float"), ("long", "double"), ("float", "double"),
    ("string", "bytes"), ("bytes", "string"),
}
SAMPLES = 25


class Compatibility(str, enum.Enum):
    """Which earlier versions a new schema must stay compatible with, and in which direction.

    BACKWARD: the new schema reads data written with the latest one (upgrade consumers first).
    FORWARD: the latest schema reads data written with the new one (upgrade producers first).
    FULL: both. NONE: no check. ``*_TRANSITIVE``: against every earlier version, not just the latest.
    """

    BACKWARD = "BACKWARD"
    FORWARD = "FORWARD"
    FULL = "FULL"
    NONE = "NONE"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @classmethod
    def parse(cls, value: str | Compatibility) -> Compatibility:
        from kafkaops.serde.codec import SerdeError

        try:
            return cls(str(getattr(value, "value", value)).upper())
        except ValueError:
            raise SerdeError(f"unknown compatibility mode {value!r}: one of {', '.join(m.value for m in cls)}") from None

    @property
    def transitive(self) -> bool:
        return self.value.endswith("_TRANSITIVE")


def check_compatibility(new: AvroSchema, previous: list[AvroSchema], mode: Compatibility) -> list[str]:
    """Problems that make ``new`` incompatible with ``previous`` (oldest first) under ``mode``; [] if none."""
    if mode is Compatibility.NONE or not previous:
        return []
    against = previous if mode.transitive else previous[-1:]
    base = mode.value.removesuffix("_TRANSITIVE")
    problems: list[str] = []
    for old in against:
        if base in ("BACKWARD", "FULL"):
            problems += [f"BACKWARD: {p}" for p in reader_problems(writer=old, reader=new)]
        if base in ("FORWARD", "FULL"):
            problems += [f"FORWARD: {p}" for p in reader_problems(writer=new, reader=old)]
    return list(dict.fromkeys(problems))


def reader_problems(writer: AvroSchema, reader: AvroSchema) -> list[str]:
    """Why data written with ``writer`` cannot be read with ``reader`` ([] when it can)."""
    walk = _Walk(writer.source, reader.source)
    walk.check(walk.writer, walk.reader, _root_name(walk.reader))
    if walk.problems:
        return walk.problems
    return _resolution_problems(writer, reader)


def _resolution_problems(writer: AvroSchema, reader: AvroSchema) -> list[str]:
    """fastavro's schema resolution on generated sample records of ``writer``."""
    try:
        samples = list(generate_many(writer.parsed, SAMPLES))
    except Exception:  # noqa: BLE001 - a schema fastavro cannot sample: the walk's verdict stands
        return []
    for datum in samples:
        buf = BytesIO()
        try:
            schemaless_writer(buf, writer.parsed, datum)
        except Exception:  # noqa: BLE001 - generator produced something unwritable; not the reader's fault
            continue
        buf.seek(0)
        try:
            schemaless_reader(buf, writer.parsed, reader.parsed)
        except Exception as exc:  # noqa: BLE001 - any failure here is a resolution failure
            return [f"fastavro schema resolution failed: {exc}"]
    return []


def _root_name(schema: Any) -> str:
    if isinstance(schema, dict) and "name" in schema:
        return _short(schema["name"])
    return "<root>"


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _type_of(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        t = schema["type"]
        return t if isinstance(t, str) else _type_of(t)
    return str(schema)


def _describe(schema: Any) -> str:
    if isinstance(schema, dict) and "name" in schema:
        return f"{schema['type']} {_short(schema['name'])}"
    if isinstance(schema, list):
        return "[" + ", ".join(_describe(s) for s in schema) + "]"
    if isinstance(schema, dict):
        return str(schema["type"])
    return str(schema)


class _Walk:
    """Structural Avro schema resolution (the spec's rules), collecting problems with field paths."""

    def __init__(self, writer: Any, reader: Any) -> None:
        self.named: dict[str, dict[str, dict[str, Any]]] = {"w": {}, "r": {}}
        self.writer = expand_schema(writer)
        self.reader = expand_schema(reader)
        self._collect(self.writer, self.named["w"])
        self._collect(self.reader, self.named["r"])
        self.problems: list[str] = []
        self._seen: set[tuple[str, str]] = set()

    def _collect(self, schema: Any, into: dict[str, dict[str, Any]]) -> None:
        if isinstance(schema, list):
            for s in schema:
                self._collect(s, into)
        elif isinstance(schema, dict):
            if "name" in schema and schema.get("type") in ("record", "error", "enum", "fixed"):
                if schema["name"] in into:
                    return
                into[schema["name"]] = schema
            for f in schema.get("fields", []):
                self._collect(f["type"], into)
            for key in ("items", "values"):
                if key in schema:
                    self._collect(schema[key], into)
            if isinstance(schema.get("type"), dict | list):
                self._collect(schema["type"], into)

    def _resolve(self, schema: Any, side: str) -> Any:
        if isinstance(schema, str) and schema not in PRIMITIVES:
            return self.named[side].get(schema, schema)
        if isinstance(schema, dict) and isinstance(schema.get("type"), dict | list) and "name" not in schema:
            return self._resolve(schema["type"], side)
        return schema

    def _matches(self, w: Any, r: Any) -> bool:
        """Whether a union branch pair is the same kind (spec: first matching reader branch)."""
        wt, rt = _type_of(w), _type_of(r)
        if wt in ("record", "error", "enum", "fixed") and wt == rt:
            return _short(w["name"]) == _short(r["name"]) or w["name"] in r.get("aliases", []) or _short(
                w["name"]
            ) in [_short(a) for a in r.get("aliases", [])]
        if wt == rt:
            return True
        return (wt, rt) in PROMOTIONS

    def check(self, w: Any, r: Any, path: str) -> None:
        w, r = self._resolve(w, "w"), self._resolve(r, "r")
        if isinstance(w, list):
            for branch in w:
                self.check(branch, r, path)
            return
        if isinstance(r, list):
            for branch in r:
                rb = self._resolve(branch, "r")
                if self._matches(w, rb):
                    self.check(w, rb, path)
                    return
            self.problems.append(
                f"{path}: the writer's {_describe(w)} matches no branch of the reader's union {_describe(r)}"
            )
            return
        wt, rt = _type_of(w), _type_of(r)
        if wt in ("record", "error") and rt in ("record", "error"):
            self._record(w, r, path)
        elif wt == rt == "enum":
            if not self._matches(w, r):
                self.problems.append(f"{path}: enum {_short(w['name'])} is not enum {_short(r['name'])}")
                return
            missing = [s for s in w["symbols"] if s not in r["symbols"]]
            if missing and "default" not in r:
                self.problems.append(
                    f"{path}: enum symbol(s) {', '.join(missing)} written but unknown to the reader (no enum default)"
                )
        elif wt == rt == "fixed":
            if not self._matches(w, r) or w["size"] != r["size"]:
                self.problems.append(f"{path}: {_describe(w)}({w['size']}) cannot be read as {_describe(r)}({r['size']})")
        elif wt == rt == "array":
            self.check(w["items"], r["items"], f"{path}[]")
        elif wt == rt == "map":
            self.check(w["values"], r["values"], f"{path}{{}}")
        elif wt == rt and wt in PRIMITIVES:
            return
        elif (wt, rt) in PROMOTIONS:
            return
        else:
            self.problems.append(f"{path}: type changed from {_describe(w)} to {_describe(r)}")

    def _record(self, w: dict[str, Any], r: dict[str, Any], path: str) -> None:
        if not self._matches(w, r):
            self.problems.append(f"{path}: record {_short(w['name'])} is not record {_short(r['name'])} (name changed)")
            return
        key = (w["name"], r["name"])
        if key in self._seen:  # recursive type: already being checked
            return
        self._seen.add(key)
        written = {f["name"]: f for f in w["fields"]}
        for f in r["fields"]:
            names = [f["name"], *f.get("aliases", [])]
            wf = next((written[n] for n in names if n in written), None)
            field_path = f"{path}.{f['name']}"
            if wf is None:
                if "default" not in f:
                    self.problems.append(
                        f"field {field_path} ({_describe(self._resolve(f['type'], 'r'))}) has no default "
                        f"and the writer schema does not have it"
                    )
                continue
            self.check(wf["type"], f["type"], field_path)

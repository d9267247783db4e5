"""`kafkaops schema ...`: Avro schemas in the ZooKeeper schema registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from kafkaops.audit import audited
from kafkaops.cli.audit import audit_log
from kafkaops.cli.common import Target, connection, coordinator, out

if TYPE_CHECKING:
    from kafkaops.serde.avro import AvroSchema
    from kafkaops.serde.registry import SchemaRegistry

schema_app = typer.Typer(help="Avro schemas in the ZooKeeper schema registry.", no_args_is_help=True)

SchemaArg = Annotated[str, typer.Argument(help="an .avsc file, or a shipped schema's name (order-v2)")]


@contextmanager
def registry(target: Target) -> Iterator[SchemaRegistry]:
    """The schema registry on the command's ZooKeeper session."""
    from kafkaops.serde.registry import SchemaRegistry

    with coordinator(target.coordination()) as coord:
        yield SchemaRegistry(coord)


def load_schema(name_or_file: str) -> AvroSchema:
    """A shipped schema by name (``order-v2``) or an .avsc file."""
    from kafkaops.resources import schema_path
    from kafkaops.serde.avro import AvroSchema

    return AvroSchema.load(schema_path(name_or_file))


@schema_app.command("register")
@connection(kafka=False)
def schema_register(
    subject: str,
    file: SchemaArg,
    compatibility: Annotated[str | None, typer.Option(help="set the subject's mode first: BACKWARD, FORWARD, FULL, NONE (+_TRANSITIVE)")] = None,
    *,
    target: Target,
) -> None:
    """Register a schema as the next version of SUBJECT (refused if incompatible)."""
    schema = load_schema(file)
    audit = audit_log(target)
    with registry(target) as reg:
        if compatibility:
            with audited(audit, "schema.compatibility", subject, {"compatibility": compatibility}):
                reg.set_compatibility(compatibility, subject)
        with audited(audit, "schema.register", subject, {"schema": schema.name, "file": file}):
            r = reg.register(subject, schema)
    out.print(f"{r.subject} version {r.version}: schema id {r.id} ({schema.name})")


@schema_app.command("list")
@connection(kafka=False)
def schema_list(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
    *,
    target: Target,
) -> None:
    """Subjects with their versions, latest schema id and compatibility mode."""
    rows: list[dict[str, Any]] = []
    with registry(target) as reg:
        for subject in reg.subjects():
            versions = reg.versions(subject)
            latest = reg.get(subject) if versions else None
            rows.append({
                "subject": subject, "versions": versions, "latest_id": latest.id if latest else None,
                "schema": latest.schema.name if latest else None, "compatibility": reg.compatibility(subject).value,
            })
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title="schema registry")
    for col in ("subject", "versions", "latest id", "schema", "compatibility"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["subject"]), ",".join(map(str, r["versions"])), str(r["latest_id"]), str(r["schema"]),
                      str(r["compatibility"]))
    out.print(table)


@schema_app.command("show")
@connection(kafka=False)
def schema_show(
    subject: Annotated[str | None, typer.Argument(help="subject (omit with --id)")] = None,
    version: Annotated[int | None, typer.Option(help="version (default: latest)")] = None,
    schema_id: Annotated[int | None, typer.Option("--id", help="show a schema by its global id")] = None,
    *,
    target: Target,
) -> None:
    """Print a registered schema (JSON) with its subject, version and id."""
    if (subject is None) == (schema_id is None):
        raise typer.BadParameter("give a SUBJECT or --id, not both")
    with registry(target) as reg:
        if schema_id is not None:
            data: dict[str, Any] = {"id": schema_id, "schema": reg.schema_by_id(schema_id).source}
        else:
            assert subject is not None
            data = reg.get(subject, version).to_json()
    out.print_json(json.dumps(data))


@schema_app.command("check")
@connection(kafka=False)
def schema_check(
    subject: str,
    file: SchemaArg,
    compatibility: Annotated[str | None, typer.Option(help="check against this mode instead of the subject's")] = None,
    *,
    target: Target,
) -> None:
    """Would the schema be accepted as the next version of SUBJECT? Exit 1 and the breaking fields if not."""
    from kafkaops.serde.registry import IncompatibleSchemaError

    schema = load_schema(file)
    with registry(target) as reg:
        result = reg.check(subject, schema, compatibility)
    if not result.compatible:
        raise IncompatibleSchemaError(subject, result.mode, result.problems)
    against = ", ".join(map(str, result.against_versions)) or "none"
    out.print(f"compatible ({result.mode.value}) with {subject} version(s): {against}")

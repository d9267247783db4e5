"""`kafkaops user add|list|remove` (SCRAM credentials) and `kafkaops acl list|grant|revoke|
grant-producer|grant-consumer`. Every change is audited.

A password comes from a prompt, ``--password-file`` or ``--password-env``: never from an
argument (it would stay in the shell history and the process list), never printed.
ACL words are checked before any call, so a typo is refused with the valid words.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from kafkaops.cli.audit import audit_log
from kafkaops.cli.common import Target, connection, out
from kafkaops.config import Secret
from kafkaops.errors import ConfigError

if TYPE_CHECKING:
    from kafkaops.security.acls import Acl

user_app = typer.Typer(help="SCRAM users (SASL/SCRAM credentials).", no_args_is_help=True)
acl_app = typer.Typer(help="ACLs: list, grant, revoke; what a producer or consumer needs in one line.",
                      no_args_is_help=True)

MechanismOpt = Annotated[str, typer.Option(help="SCRAM-SHA-512 or SCRAM-SHA-256")]
JsonOpt = Annotated[bool, typer.Option("--json", help="one JSON document")]
PrefixedOpt = Annotated[bool, typer.Option("--prefixed", help="topic/group names are prefixes (PREFIXED pattern)")]


def read_password(name: str, password_file: Path | None, password_env: str | None) -> Secret:
    """The new password of ``name``: from the file, the variable, or a hidden prompt (twice)."""
    if password_file is not None and password_env is not None:
        raise typer.BadParameter("--password-file or --password-env, not both")
    if password_file is not None:
        try:
            text = password_file.expanduser().read_text().splitlines()
        except OSError as exc:
            raise ConfigError(f"cannot read password file {password_file}: {exc.strerror}") from None
        if not text or not text[0]:
            raise ConfigError(f"password file {password_file} is empty")
        return Secret(text[0])
    if password_env is not None:
        value = os.environ.get(password_env)
        if not value:
            raise ConfigError(f"environment variable {password_env} is not set or empty")
        return Secret(value)
    if not sys.stdin.isatty():
        raise ConfigError("no password given: use --password-file FILE or --password-env VAR "
                          "(a password is never a command-line argument)")
    return Secret(typer.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True))


# ---------------------------------------------------------------------- users
@user_app.command("add")
@connection(zookeeper=False)
def user_add(
    name: str,
    password_file: Annotated[Path | None, typer.Option("--password-file", help="read the password from this file's first line")] = None,
    password_env: Annotated[str | None, typer.Option("--password-env", help="read the password from this environment variable")] = None,
    mechanism: MechanismOpt = "SCRAM-SHA-512",
    iterations: Annotated[int, typer.Option(help="SCRAM iterations (4096..16384)")] = 8192,
    *,
    target: Target,
) -> None:
    """Create NAME's SCRAM credential, or change its password (prompted unless a file or variable gives it)."""
    from kafkaops.security.users import add_user, validate_user

    validate_user(name)
    password = read_password(name, password_file, password_env)
    cluster = target.cluster()
    add_user(cluster, name, password, mechanism=mechanism, iterations=iterations, audit=audit_log(target))
    out.print(f"user {name}: {mechanism} credential set", highlight=False)


@user_app.command("list")
@connection(zookeeper=False)
def user_list(as_json: JsonOpt = False, *, target: Target) -> None:
    """Users with SCRAM credentials and their mechanisms."""
    from kafkaops.security.users import list_users

    users = list_users(target.cluster())
    if as_json:
        out.print_json(json.dumps([{"name": u.name, "mechanisms": [{"mechanism": m, "iterations": i}
                                                                   for m, i in u.mechanisms]} for u in users]))
        return
    table = Table(title=f"SCRAM users: {len(users)}")
    table.add_column("user")
    table.add_column("mechanisms (iterations)")
    for u in users:
        table.add_row(u.name, ", ".join(f"{m} ({i})" for m, i in u.mechanisms))
    out.print(table)


@user_app.command("remove")
@connection(zookeeper=False)
def user_remove(name: str, mechanism: MechanismOpt = "SCRAM-SHA-512", *, target: Target) -> None:
    """Delete NAME's SCRAM credential (its ACLs stay: `kafkaops acl revoke`)."""
    from kafkaops.security.users import remove_user

    remove_user(target.cluster(), name, mechanism=mechanism, audit=audit_log(target))
    out.print(f"user {name}: {mechanism} credential removed", highlight=False)


# ---------------------------------------------------------------------- ACLs
def _acls(principal: str, resource_type: str, resource_name: str, operations: list[str], permission: str,
          pattern: str, host: str) -> list[Acl]:
    from kafkaops.security.acls import Acl

    if not operations:
        raise typer.BadParameter("give at least one --operation")
    return [Acl(principal, resource_type, resource_name, op, permission, pattern, host) for op in operations]


def _show(verb: str, acls: list[Acl]) -> None:
    for a in acls:
        out.print(f"{verb}: {a.describe()}", highlight=False)


PrincipalOpt = Annotated[str, typer.Option("--principal", "-p", help="User:name (or a bare user name)")]
TypeOpt = Annotated[str, typer.Option("--resource-type", "-t", help="topic | group | cluster | transactional-id")]
NameOpt = Annotated[str, typer.Option("--resource-name", "-r", help="name ('*' for all; kafka-cluster for the cluster)")]
OperationOpt = Annotated[list[str], typer.Option("--operation", "-o", help="read, write, describe, create, ... (repeatable)")]
PermissionOpt = Annotated[str, typer.Option("--permission", help="allow or deny")]
PatternOpt = Annotated[str, typer.Option("--pattern", help="literal or prefixed")]
HostOpt = Annotated[str, typer.Option("--host", help="client host the ACL applies to ('*' for any)")]


@acl_app.command("list")
@connection(zookeeper=False)
def acl_list(
    principal: Annotated[str | None, typer.Option("--principal", "-p", help="only this principal")] = None,
    resource_type: Annotated[str | None, typer.Option("--resource-type", "-t", help="only this resource type")] = None,
    resource_name: Annotated[str | None, typer.Option("--resource-name", "-r", help="only this resource name")] = None,
    as_json: JsonOpt = False,
    *,
    target: Target,
) -> None:
    """The ACLs matching the filters (all of them without filters)."""
    from dataclasses import asdict

    from kafkaops.security.acls import list_acls

    acls = list_acls(target.cluster(), principal=principal, resource_type=resource_type, resource_name=resource_name)
    if as_json:
        out.print_json(json.dumps([asdict(a) for a in acls]))
        return
    table = Table(title=f"ACLs: {len(acls)}")
    for col in ("principal", "permission", "operation", "resource", "pattern", "host"):
        table.add_column(col)
    for a in acls:
        table.add_row(a.principal, a.permission, a.operation, f"{a.resource_type}:{a.resource_name}", a.pattern, a.host)
    out.print(table)


def _acl_change(grant: bool) -> Callable[..., None]:
    """The `acl grant` or `acl revoke` command: the same ACL words, created or deleted."""

    def command(
        principal: PrincipalOpt,
        resource_type: TypeOpt,
        resource_name: NameOpt,
        operation: OperationOpt,
        permission: PermissionOpt = "allow",
        pattern: PatternOpt = "literal",
        host: HostOpt = "*",
        *,
        target: Target,
    ) -> None:
        from kafkaops.security.acls import create_acls, delete_acls

        acls = _acls(principal, resource_type, resource_name, operation, permission, pattern, host)
        if grant:
            _show("granted", create_acls(target.cluster(), acls, audit=audit_log(target)))
            return
        deleted = delete_acls(target.cluster(), acls, audit=audit_log(target))
        if not deleted:
            raise ConfigError("no such ACL: " + "; ".join(a.describe() for a in acls))
        _show("revoked", deleted)

    return command


acl_app.command("grant", help="Create ACLs: PRINCIPAL may (or, with --permission deny, may not) do OPERATION "
                              "on the resource.")(connection(zookeeper=False)(_acl_change(grant=True)))
acl_app.command("revoke", help="Delete exactly these ACLs (exit 1 if none of them existed).")(
    connection(zookeeper=False)(_acl_change(grant=False)))


@acl_app.command("grant-producer")
@connection(zookeeper=False)
def acl_grant_producer(
    user: Annotated[str, typer.Option("--user", "-u", help="the producing user")],
    topic: Annotated[str, typer.Option("--topic", help="the topic it writes")],
    prefixed: PrefixedOpt = False,
    *,
    target: Target,
) -> None:
    """What an idempotent producer needs: Write + Describe on the topic, IdempotentWrite on the cluster."""
    from kafkaops.security.acls import create_acls, producer_acls

    acls = producer_acls(user, topic, pattern="prefixed" if prefixed else "literal")
    _show("granted", create_acls(target.cluster(), acls, audit=audit_log(target)))


@acl_app.command("grant-consumer")
@connection(zookeeper=False)
def acl_grant_consumer(
    user: Annotated[str, typer.Option("--user", "-u", help="the consuming user")],
    topic: Annotated[str, typer.Option("--topic", help="the topic it reads")],
    group: Annotated[str, typer.Option("--group", "-g", help="its consumer group")],
    prefixed: PrefixedOpt = False,
    *,
    target: Target,
) -> None:
    """What a consumer in a group needs: Read + Describe on the topic, Read on the group."""
    from kafkaops.security.acls import consumer_acls, create_acls

    acls = consumer_acls(user, topic, group, pattern="prefixed" if prefixed else "literal")
    _show("granted", create_acls(target.cluster(), acls, audit=audit_log(target)))

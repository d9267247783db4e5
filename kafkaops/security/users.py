"""SCRAM users: add, list and remove SASL/SCRAM credentials through the Admin API.

Kafka stores SCRAM credentials (salted, iterated hashes, never the password) in the
cluster's metadata; ``alter_user_scram_credentials`` / ``describe_user_scram_credentials``
(KIP-554) manage them in ZooKeeper and KRaft mode alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from kafkaops.admin import AdminError, admin_client, await_result
from kafkaops.audit import AuditLog, audited
from kafkaops.config import ClusterProfile, Secret
from kafkaops.errors import ConfigError

log = logging.getLogger(__name__)

MECHANISMS = {"SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256, "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512}
DEFAULT_ITERATIONS = 8192
"""Kafka accepts 4096..16384 iterations; 8192 is what Kafka's own tools suggest."""
MIN_PASSWORD = 8


@dataclass(frozen=True)
class ScramUser:
    """A user and the SCRAM mechanisms (with iteration counts) it has credentials for."""

    name: str
    mechanisms: tuple[tuple[str, int], ...]


def _mechanism(name: str) -> ScramMechanism:
    try:
        return MECHANISMS[name.upper()]
    except KeyError:
        raise ConfigError(f"SCRAM mechanism {name!r}: choose one of {', '.join(MECHANISMS)}") from None


def validate_user(name: str) -> str:
    """A Kafka user name as SCRAM takes it: non-empty, no ',' or '=' (they delimit SCRAM
    attributes), no whitespace at either end."""
    if not name or name != name.strip() or any(c in name for c in ",=") or any(ord(c) < 32 for c in name):
        raise ConfigError(f"user name {name!r}: non-empty, without ',' '=' control characters or surrounding spaces")
    return name


def add_user(
    cluster: ClusterProfile | str,
    name: str,
    password: Secret | str,
    *,
    mechanism: str = "SCRAM-SHA-512",
    iterations: int = DEFAULT_ITERATIONS,
    timeout: float = 15.0,
    audit: AuditLog | None = None,
) -> None:
    """Create or update ``name``'s SCRAM credential (the password is never logged nor audited)."""
    validate_user(name)
    secret = password if isinstance(password, Secret) else Secret(password)
    if len(secret.reveal()) < MIN_PASSWORD:
        raise ConfigError(f"password of {name!r}: at least {MIN_PASSWORD} characters")
    if not 4096 <= iterations <= 16384:
        raise ConfigError(f"SCRAM iterations must be 4096..16384, not {iterations}")
    upsert = UserScramCredentialUpsertion(
        name, ScramCredentialInfo(_mechanism(mechanism), iterations), secret.reveal().encode()
    )
    with audited(audit, "user.add", f"User:{name}", {"mechanism": mechanism, "iterations": iterations}):
        _alter(cluster, [upsert], f"add user {name}", timeout)
    log.info("SCRAM credential (%s) set for user %s", mechanism, name)


def remove_user(
    cluster: ClusterProfile | str, name: str, *, mechanism: str = "SCRAM-SHA-512", timeout: float = 15.0,
    audit: AuditLog | None = None,
) -> None:
    """Delete ``name``'s SCRAM credential for ``mechanism``; AdminError if it has none."""
    validate_user(name)
    with audited(audit, "user.remove", f"User:{name}", {"mechanism": mechanism}):
        _alter(cluster, [UserScramCredentialDeletion(name, _mechanism(mechanism))], f"remove user {name}", timeout)
    log.info("SCRAM credential (%s) removed for user %s", mechanism, name)


def list_users(cluster: ClusterProfile | str, *, timeout: float = 15.0) -> list[ScramUser]:
    """Every user with SCRAM credentials, by name."""
    admin = admin_client(cluster)
    try:
        future = admin.describe_user_scram_credentials(request_timeout=timeout)
        assert not isinstance(future, dict)  # all users: one future
        described = await_result(admin, future, timeout, "list SCRAM users")
    except KafkaException as exc:
        raise AdminError(f"cannot list SCRAM users: {exc.args[0].str()}") from None
    users = []
    for name, desc in sorted(described.items()):
        mechs = tuple(sorted((str(i.mechanism.name).replace("_", "-"), int(i.iterations))
                             for i in desc.scram_credential_infos))
        users.append(ScramUser(name, mechs))
    return users


def _alter(cluster: ClusterProfile | str, alterations: list[UserScramCredentialAlteration], what: str, timeout: float) -> None:
    admin = admin_client(cluster)
    futures = admin.alter_user_scram_credentials(alterations, request_timeout=timeout)
    for fut in futures.values():
        try:
            await_result(admin, fut, timeout, what)
        except KafkaException as exc:
            err = exc.args[0]
            raise AdminError(f"{what}: {err.str()} ({err.name()})") from None

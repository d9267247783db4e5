"""ACLs: typed, validated bindings, and the shapes a service needs (producer, consumer).

An :class:`Acl` is one Kafka ACL binding — principal, resource (type, name, pattern),
operation, permission, host — checked before any call so that a typo is refused with
the list of valid words instead of becoming an ACL that matches nothing.
:func:`producer_acls` and :func:`consumer_acls` give the bindings Strimzi's
``KafkaUser`` simple authorization gives a producer (Write + Describe on the topic,
IdempotentWrite on the cluster) and a consumer (Read + Describe on the topic, Read on
the group).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from kafkaops.admin import AdminError, admin_client, await_result
from kafkaops.audit import AuditLog, audited
from kafkaops.config import ClusterProfile
from kafkaops.errors import ConfigError

log = logging.getLogger(__name__)

CLUSTER_RESOURCE = "kafka-cluster"
"""The one name of the cluster resource."""

RESOURCE_TYPES = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP, "cluster": ResourceType.BROKER,
                  "transactional-id": ResourceType.TRANSACTIONAL_ID}
PATTERNS = {"literal": ResourcePatternType.LITERAL, "prefixed": ResourcePatternType.PREFIXED}
OPERATIONS = {name.lower().replace("_", "-"): op for name, op in AclOperation.__members__.items()
              if name not in ("UNKNOWN", "ANY")}
PERMISSIONS = {"allow": AclPermissionType.ALLOW, "deny": AclPermissionType.DENY}

# which operations make sense on which resource (Kafka's own table, docs "Operations and Resources")
_VALID_OPS = {
    "topic": {"all", "read", "write", "create", "delete", "alter", "describe", "describe-configs", "alter-configs"},
    "group": {"all", "read", "delete", "describe"},
    "cluster": {"all", "create", "alter", "describe", "cluster-action", "describe-configs", "alter-configs",
                "idempotent-write"},
    "transactional-id": {"all", "write", "describe"},
}


def _word(value: str, table: Mapping[str, object], what: str) -> str:
    key = value.strip().lower().replace("_", "-")
    if key not in table:
        raise ConfigError(f"{what} {value!r}: choose one of {', '.join(table)}")
    return key


def principal_of(user_or_principal: str) -> str:
    """``svc`` -> ``User:svc``; ``User:svc`` stays; anything else without a name is refused."""
    p = user_or_principal.strip()
    kind, sep, name = p.partition(":")
    if not sep:
        kind, name = "User", p
    if not name or not kind or kind == "*" or " " in name:
        raise ConfigError(f"principal {user_or_principal!r}: give a user name or Type:name (e.g. User:svc)")
    return f"{kind}:{name}"


@dataclass(frozen=True)
class Acl:
    """One ACL binding in words: ``Acl("User:svc", "topic", "orders", "write")``."""

    principal: str
    resource_type: str
    resource_name: str
    operation: str
    permission: str = "allow"
    pattern: str = "literal"
    host: str = "*"

    def __post_init__(self) -> None:
        rtype = _word(self.resource_type, RESOURCE_TYPES, "resource type")
        op = _word(self.operation, OPERATIONS, "operation")
        object.__setattr__(self, "resource_type", rtype)
        object.__setattr__(self, "operation", op)
        object.__setattr__(self, "permission", _word(self.permission, PERMISSIONS, "permission"))
        object.__setattr__(self, "pattern", _word(self.pattern, PATTERNS, "pattern type"))
        object.__setattr__(self, "principal", principal_of(self.principal))
        if rtype == "cluster" and self.resource_name != CLUSTER_RESOURCE:
            raise ConfigError(f"the cluster resource is named {CLUSTER_RESOURCE!r}, not {self.resource_name!r}")
        if not self.resource_name:
            raise ConfigError(f"a {rtype} ACL needs a resource name ('*' for all)")
        if op not in _VALID_OPS[rtype]:
            raise ConfigError(f"operation {op!r} does not apply to a {rtype}; "
                              f"valid: {', '.join(sorted(_VALID_OPS[rtype]))}")

    def binding(self) -> AclBinding:
        return AclBinding(RESOURCE_TYPES[self.resource_type], self.resource_name, PATTERNS[self.pattern],
                          self.principal, self.host, OPERATIONS[self.operation], PERMISSIONS[self.permission])

    @classmethod
    def from_binding(cls, b: AclBinding) -> Acl:
        rtype = next(k for k, v in RESOURCE_TYPES.items() if v == b.restype)
        pattern = next((k for k, v in PATTERNS.items() if v == b.resource_pattern_type), "literal")
        op = next(k for k, v in OPERATIONS.items() if v == b.operation)
        perm = next(k for k, v in PERMISSIONS.items() if v == b.permission_type)
        return cls(b.principal, rtype, b.name, op, perm, pattern, b.host)

    def describe(self) -> str:
        return (f"{self.permission} {self.principal} {self.operation} on {self.resource_type} "
                f"{self.resource_name}{' (prefixed)' if self.pattern == 'prefixed' else ''}"
                f"{'' if self.host == '*' else f' from {self.host}'}")


def producer_acls(user: str, topic: str, *, pattern: str = "literal") -> list[Acl]:
    """Write + Describe on the topic, IdempotentWrite on the cluster."""
    p = principal_of(user)
    return [Acl(p, "topic", topic, "write", pattern=pattern), Acl(p, "topic", topic, "describe", pattern=pattern),
            Acl(p, "cluster", CLUSTER_RESOURCE, "idempotent-write")]


def consumer_acls(user: str, topic: str, group: str, *, pattern: str = "literal") -> list[Acl]:
    """Read + Describe on the topic, Read on the group."""
    p = principal_of(user)
    return [Acl(p, "topic", topic, "read", pattern=pattern), Acl(p, "topic", topic, "describe", pattern=pattern),
            Acl(p, "group", group, "read", pattern=pattern)]


def create_acls(cluster: ClusterProfile | str, acls: Iterable[Acl], *, timeout: float = 15.0,
                audit: AuditLog | None = None) -> list[Acl]:
    """Create the bindings (creating an existing one is a no-op); returns them."""
    wanted = list(dict.fromkeys(acls))
    if not wanted:
        return []
    with audited(audit, "acl.create", _targets(wanted), {"acls": [a.describe() for a in wanted]}):
        return _create(cluster, wanted, timeout)


def _targets(acls: list[Acl]) -> str:
    """The audit target of ACL changes: the resources, in words (``topic:orders,cluster:kafka-cluster``)."""
    return ",".join(dict.fromkeys(f"{a.resource_type}:{a.resource_name}" for a in acls))


def _create(cluster: ClusterProfile | str, wanted: list[Acl], timeout: float) -> list[Acl]:
    admin = admin_client(cluster)
    futures = admin.create_acls([a.binding() for a in wanted], request_timeout=timeout)
    failures = []
    for binding, fut in futures.items():
        try:
            await_result(admin, fut, timeout, "create ACLs")
        except KafkaException as exc:
            failures.append(f"{Acl.from_binding(binding).describe()}: {exc.args[0].str()}")
    if failures:
        raise AdminError("cannot create ACLs: " + "; ".join(failures))
    log.info("ACLs created: %s", "; ".join(a.describe() for a in wanted))
    return wanted


def _filter(principal: str | None, resource_type: str | None, resource_name: str | None,
            operation: str | None, pattern: str | None) -> AclBindingFilter:
    rtype = RESOURCE_TYPES[_word(resource_type, RESOURCE_TYPES, "resource type")] if resource_type else ResourceType.ANY
    op = OPERATIONS[_word(operation, OPERATIONS, "operation")] if operation else AclOperation.ANY
    pat = PATTERNS[_word(pattern, PATTERNS, "pattern type")] if pattern else ResourcePatternType.ANY
    # None matches any name, principal or host (the stubs say str)
    anything: Any = None
    return AclBindingFilter(rtype, resource_name or anything, pat, principal_of(principal) if principal else anything,
                            anything, op, AclPermissionType.ANY)


def list_acls(
    cluster: ClusterProfile | str,
    *,
    principal: str | None = None,
    resource_type: str | None = None,
    resource_name: str | None = None,
    timeout: float = 15.0,
) -> list[Acl]:
    """The ACLs matching the filter (None matches anything), sorted."""
    admin = admin_client(cluster)
    try:
        bindings = await_result(admin, admin.describe_acls(_filter(principal, resource_type, resource_name, None, None),
                                                           request_timeout=timeout), timeout, "list ACLs")
    except KafkaException as exc:
        raise AdminError(f"cannot list ACLs: {exc.args[0].str()}") from None
    return sorted((Acl.from_binding(b) for b in bindings),
                  key=lambda a: (a.principal, a.resource_type, a.resource_name, a.operation))


def delete_acls(cluster: ClusterProfile | str, acls: Iterable[Acl], *, timeout: float = 15.0,
                audit: AuditLog | None = None) -> list[Acl]:
    """Delete exactly these bindings; returns those that existed and were deleted."""
    wanted = list(dict.fromkeys(acls))
    if not wanted:
        return []
    args: dict[str, Any] = {"acls": [a.describe() for a in wanted]}
    with audited(audit, "acl.delete", _targets(wanted), args):
        deleted = _delete(cluster, wanted, timeout)
        args["deleted"] = len(deleted)  # recorded with the outcome
    return deleted


def _delete(cluster: ClusterProfile | str, acls: list[Acl], timeout: float) -> list[Acl]:
    admin = admin_client(cluster)
    filters = [AclBindingFilter(RESOURCE_TYPES[a.resource_type], a.resource_name, PATTERNS[a.pattern], a.principal,
                                a.host, OPERATIONS[a.operation], PERMISSIONS[a.permission]) for a in acls]
    deleted: list[Acl] = []
    for _flt, fut in admin.delete_acls(filters, request_timeout=timeout).items():
        try:
            deleted.extend(Acl.from_binding(b) for b in await_result(admin, fut, timeout, "delete ACLs"))
        except KafkaException as exc:
            raise AdminError(f"cannot delete ACLs: {exc.args[0].str()}") from None
    log.info("ACLs deleted: %s", "; ".join(a.describe() for a in deleted) or "none matched")
    return deleted

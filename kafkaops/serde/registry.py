"""A schema registry kept in ZooKeeper: subjects, versions, global ids, compatibility.

Layout under the Coordinator's ``schemas`` znode (``/kafkaops/schemas`` for the
default root)::

    config                        {"compatibility": "BACKWARD"}   registry default
    ids/id-0000000000             the schema JSON of global id 1 (sequence node: id = seq + 1)
    fingerprints/<sha256>         the global id of a schema (dedup: same schema, same id)
    subjects/<subject>            {"compatibility": null | mode}  bumped on every new version
    subjects/<subject>/versions/0000000001   {"id": 1}

Ids come from ZooKeeper sequence nodes and are claimed for a schema with a
``create`` of its fingerprint znode, so concurrent registrations of one schema
agree on one id and different schemas never share one. A new subject version is
written in one transaction that checks the subject znode's version, so two
concurrent registrations cannot both pass the compatibility check against the same
latest version. Lookups by id are cached (ids are immutable). Every ZooKeeper call
goes through the process' Coordinator: its session, retry policy, ACLs and errors.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, KazooException, NodeExistsError, NoNodeError

from kafkaops.coord.session import Coordinator
from kafkaops.serde.avro import AvroSchema, SchemaError
from kafkaops.serde.codec import SerdeError, UnknownSchemaIdError
from kafkaops.serde.compatibility import Compatibility, check_compatibility

log = logging.getLogger(__name__)

SCHEMAS = "schemas"
"""The registry's znode under the Coordinator's root."""
DEFAULT_ROOT = "/kafkaops/schemas"
"""Where the registry lives for the default Coordinator root."""


class RegistryError(SerdeError):
    """The registry in ZooKeeper could not be read or written."""


class SubjectNotFoundError(RegistryError):
    """No such subject, or no such version of it."""


class IncompatibleSchemaError(RegistryError):
    """A schema breaks the subject's compatibility mode; the message names the fields."""

    def __init__(self, subject: str, mode: Compatibility, problems: list[str]) -> None:
        self.subject, self.mode, self.problems = subject, mode, problems
        super().__init__(f"schema is not {mode.value}-compatible with subject {subject}: " + "; ".join(problems))


@dataclass(frozen=True)
class RegisteredSchema:
    """One version of a subject: its global id and the schema."""

    subject: str
    version: int
    id: int
    schema: AvroSchema

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "version": self.version, "id": self.id, "schema": self.schema.source}


@dataclass(frozen=True)
class CompatibilityResult:
    subject: str
    mode: Compatibility
    compatible: bool
    problems: list[str]
    against_versions: list[int]


class SchemaRegistry:
    """Schema registry in ZooKeeper, under ``coordinator.path("schemas")``, on a started
    Coordinator (the caller owns and stops it)."""

    def __init__(
        self,
        coordinator: Coordinator,
        default_compatibility: Compatibility | str = Compatibility.BACKWARD,
    ) -> None:
        self.coordinator = coordinator
        self.root = coordinator.path(SCHEMAS)
        self.default_compatibility = Compatibility.parse(default_compatibility)
        self._by_id: dict[int, AvroSchema] = {}
        self._id_by_fp: dict[str, int] = {}
        self._lock = threading.Lock()
        self._ensured = False

    @property
    def _zk(self) -> KazooClient:
        return self.coordinator.client

    # ------------------------------------------------------------------ reads
    def schema_by_id(self, schema_id: int) -> AvroSchema:
        """The schema of a global id (cached). UnknownSchemaIdError if there is none."""
        schema = self._by_id.get(schema_id)
        if schema is not None:
            return schema
        if schema_id < 1:
            raise UnknownSchemaIdError(f"schema id {schema_id} is not registered in {self.root}")
        try:
            data, _ = self._call(self._zk.get, f"{self.root}/ids/id-{schema_id - 1:010d}")
        except NoNodeError:
            raise UnknownSchemaIdError(f"schema id {schema_id} is not registered in {self.root}") from None
        schema = AvroSchema.parse(data.decode())
        with self._lock:
            self._by_id[schema_id] = schema
        return schema

    def subjects(self) -> list[str]:
        try:
            return sorted(self._call(self._zk.get_children, f"{self.root}/subjects"))
        except NoNodeError:
            return []

    def versions(self, subject: str) -> list[int]:
        _check_subject(subject)
        try:
            children = self._call(self._zk.get_children, f"{self._subject_path(subject)}/versions")
        except NoNodeError:
            raise SubjectNotFoundError(f"no subject {subject!r} in {self.root}") from None
        return sorted(int(c) for c in children)

    def get(self, subject: str, version: int | None = None) -> RegisteredSchema:
        """A version of a subject (default: the latest)."""
        versions = self.versions(subject)
        if not versions:
            raise SubjectNotFoundError(f"subject {subject!r} has no versions")
        if version is None or version == -1:
            version = versions[-1]
        elif version not in versions:
            raise SubjectNotFoundError(f"subject {subject!r} has no version {version} (has {versions})")
        try:
            data, _ = self._call(self._zk.get, f"{self._subject_path(subject)}/versions/{version:010d}")
        except NoNodeError:
            raise SubjectNotFoundError(f"subject {subject!r} has no version {version}") from None
        schema_id = int(json.loads(data)["id"])
        return RegisteredSchema(subject, version, schema_id, self.schema_by_id(schema_id))

    def lookup(self, subject: str, schema: AvroSchema) -> RegisteredSchema | None:
        """The version of ``subject`` holding exactly ``schema``, if any."""
        schema_id = self._existing_id(schema)
        if schema_id is None:
            return None
        try:
            versions = self.versions(subject)
        except SubjectNotFoundError:
            return None
        for v in reversed(versions):
            r = self.get(subject, v)
            if r.id == schema_id:
                return r
        return None

    def compatibility(self, subject: str | None = None) -> Compatibility:
        """The subject's mode, else the registry-wide one, else the constructor default."""
        paths = ([self._subject_path(subject)] if subject else []) + [f"{self.root}/config"]
        for path in paths:
            try:
                data, _ = self._call(self._zk.get, path)
            except NoNodeError:
                continue
            mode = json.loads(data or b"{}").get("compatibility") if data else None
            if mode:
                return Compatibility.parse(mode)
        return self.default_compatibility

    def check(self, subject: str, schema: AvroSchema, mode: Compatibility | str | None = None) -> CompatibilityResult:
        """Would ``schema`` be accepted as the next version of ``subject``? Writes nothing."""
        _check_subject(subject)
        m = Compatibility.parse(mode) if mode is not None else self.compatibility(subject)
        try:
            versions = self.versions(subject)
        except SubjectNotFoundError:
            versions = []
        previous = [self.get(subject, v).schema for v in versions]
        problems = check_compatibility(schema, previous, m)
        against = versions if m.transitive else versions[-1:]
        return CompatibilityResult(subject, m, not problems, problems, against if m is not Compatibility.NONE else [])

    # ------------------------------------------------------------------ writes
    def set_compatibility(self, mode: Compatibility | str, subject: str | None = None) -> None:
        """Set a subject's mode (or, without subject, the registry-wide default)."""
        m = Compatibility.parse(mode)
        self._ensure_layout()
        path = self._subject_path(subject) if subject else f"{self.root}/config"
        if subject:
            _check_subject(subject)
        self._ensure(path, b"{}")
        if subject:
            self._ensure(f"{path}/versions", b"")
        data = json.dumps({"compatibility": m.value}).encode()
        self._call(self._zk.set, path, data)

    def register(self, subject: str, schema: AvroSchema | str | dict[str, Any]) -> RegisteredSchema:
        """Add ``schema`` as the next version of ``subject`` (or return the version that has it).

        Raises IncompatibleSchemaError, naming the breaking fields, when the schema
        violates the subject's compatibility mode.
        """
        _check_subject(subject)
        s = AvroSchema.parse(schema)
        self._ensure_layout()
        spath = self._subject_path(subject)
        self._ensure(spath, b"{}")
        self._ensure(f"{spath}/versions", b"")
        schema_id: int | None = None
        for _ in range(50):
            data, stat = self._call(self._zk.get, spath)
            versions = self.versions(subject)
            existing = [self.get(subject, v) for v in versions]
            if schema_id is None:
                schema_id = self._existing_id(s)
            for r in existing:
                if schema_id is not None and r.id == schema_id:
                    return r
            mode = self.compatibility(subject)
            problems = check_compatibility(s, [r.schema for r in existing], mode)
            if problems:
                raise IncompatibleSchemaError(subject, mode, problems)
            if schema_id is None:
                schema_id = self._claim_id(s)
            version = (versions[-1] if versions else 0) + 1
            tx = self._zk.transaction()
            tx.set_data(spath, data, version=stat.version)
            tx.create(f"{spath}/versions/{version:010d}", json.dumps({"id": schema_id}).encode(),
                      acl=self.coordinator.acl)
            try:
                with self.coordinator.translate_errors(f"register a version of {subject}"):
                    results = tx.commit()
            except KazooException as exc:
                raise RegistryError(f"cannot register a version of {subject}: {exc}") from None
            failed = [r for r in results if isinstance(r, Exception)]
            if not failed:
                log.info("registered %s version %d as id %d", subject, version, schema_id)
                return RegisteredSchema(subject, version, schema_id, s)
            if not all(isinstance(r, BadVersionError | NodeExistsError | KazooException) for r in failed):
                raise RegistryError(f"cannot register a version of {subject}: {failed}")
            log.debug("concurrent registration on %s, retrying", subject)
        raise RegistryError(f"gave up registering a version of {subject}: too much contention")

    def delete_subject(self, subject: str) -> None:
        """Remove a subject and its versions (global ids stay valid for old data)."""
        _check_subject(subject)
        try:
            self._call(self._zk.delete, self._subject_path(subject), recursive=True)
        except NoNodeError:
            raise SubjectNotFoundError(f"no subject {subject!r}") from None

    # ------------------------------------------------------------------ internals
    def _existing_id(self, schema: AvroSchema) -> int | None:
        cached = self._id_by_fp.get(schema.fingerprint)
        if cached is not None:
            return cached
        try:
            data, _ = self._call(self._zk.get, f"{self.root}/fingerprints/{schema.fingerprint}")
        except NoNodeError:
            return None
        schema_id = int(data)
        with self._lock:
            self._id_by_fp[schema.fingerprint] = schema_id
        return schema_id

    def _claim_id(self, schema: AvroSchema) -> int:
        """A new global id for ``schema``, or the one a concurrent registration just claimed."""
        existing = self._existing_id(schema)
        if existing is not None:
            return existing
        acl = self.coordinator.acl
        path = self._call(self._zk.create, f"{self.root}/ids/id-", schema.to_json().encode(), sequence=True, acl=acl)
        schema_id = int(path.rsplit("-", 1)[1]) + 1
        try:
            self._call(self._zk.create, f"{self.root}/fingerprints/{schema.fingerprint}", str(schema_id).encode(),
                       acl=acl)
        except NodeExistsError:
            # someone registered the same schema at the same moment: theirs wins, drop ours
            self._call(self._zk.delete, path)
            winner = self._existing_id(schema)
            if winner is None:
                raise RegistryError("fingerprint znode vanished during registration") from None
            return winner
        with self._lock:
            self._by_id[schema_id] = schema
            self._id_by_fp[schema.fingerprint] = schema_id
        return schema_id

    def _ensure_layout(self) -> None:
        """The shared directories: open for every identity to add its schemas to."""
        if self._ensured:
            return
        coord = self.coordinator
        for sub in ("ids", "fingerprints", "subjects"):
            with coord.translate_errors(f"create the schema registry at {self.root}"):
                coord.ensure_path(f"{self.root}/{sub}", acl=coord.dir_acl)
        self._ensured = True

    def _ensure(self, path: str, data: bytes) -> None:
        try:
            self._call(self._zk.create, path, data, acl=self.coordinator.acl, makepath=True)
        except NodeExistsError:
            pass

    def _subject_path(self, subject: str) -> str:
        return f"{self.root}/subjects/{subject}"

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args)`` with the Coordinator's retry; connection and permission failures as
        its CoordinatorErrors, other ZooKeeper failures as RegistryError."""
        coord = self.coordinator
        try:
            with coord.translate_errors(f"schema registry at {self.root}"):
                return coord.retry(fn, *args, **kwargs)
        except (NoNodeError, NodeExistsError, BadVersionError):
            raise
        except KazooException as exc:
            raise RegistryError(f"ZooKeeper error in the schema registry ({self.root}): {exc!r}") from None


def _check_subject(subject: str) -> None:
    if not subject or "/" in subject or subject in (".", "..", "zookeeper") or len(subject) > 255:
        raise SchemaError(f"invalid subject name {subject!r} (non-empty, no '/')")

"""Profile files and environment: the YAML shape of a ClusterProfile, and flag values.

A profile file names the cluster, its bootstrap servers, client security and ZooKeeper;
passwords may be inline, ``{file: PATH}`` or ``{env: VAR}``. Errors name the file and
the key that is wrong. PyYAML is imported only here, so the clients never load it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kafkaops.config import (
    DEFAULT_ZK_ROOT,
    PROFILE_ENV,
    ClusterProfile,
    KafkaSecurity,
    Secret,
    ZooKeeperSettings,
)
from kafkaops.errors import ConfigError


def load_profile(path: Path | str) -> ClusterProfile:
    """Read a profile YAML file; ConfigError names the file and what is wrong."""
    import yaml

    p = Path(path).expanduser()
    try:
        doc = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise ConfigError(f"profile {p}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"profile {p}: not valid YAML ({exc})") from None
    if not isinstance(doc, Mapping):
        raise ConfigError(f"profile {p}: expected a mapping with bootstrap_servers, security, zookeeper")
    return profile_from_dict(doc, f"profile {p}", p.parent)


def save_profile(profile: ClusterProfile, path: Path | str) -> Path:
    """Write ``profile`` as YAML, readable only by the owner (it holds passwords)."""
    import yaml

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(profile_to_dict(profile, reveal=True), f, sort_keys=False)
    return p


def profile_to_dict(profile: ClusterProfile, *, reveal: bool = False) -> dict[str, Any]:
    """The YAML document of ``profile``; passwords as ``***`` unless ``reveal``."""
    def secret(s: Secret | None) -> str | None:
        return None if s is None else (s.reveal() if reveal else "***")

    s = profile.security
    sec: dict[str, Any] = {"protocol": s.protocol}
    if s.sasl:
        sec.update(sasl_mechanism=s.sasl_mechanism, username=s.username, password=secret(s.password))
    if s.tls:
        sec.update(ca_file=_str(s.ca_file), cert_file=_str(s.cert_file), key_file=_str(s.key_file),
                   check_hostname=s.check_hostname)
    doc: dict[str, Any] = {"name": profile.name, "bootstrap_servers": profile.bootstrap_servers, "security": sec}
    z = profile.zookeeper
    if z is not None:
        zk: dict[str, Any] = {"connect": z.connect, "kafka_chroot": z.kafka_chroot, "root": z.root,
                              "session_timeout": z.session_timeout}
        if z.sasl_username is not None:
            zk["sasl"] = {"username": z.sasl_username, "password": secret(z.sasl_password)}
        if z.digest_username is not None:
            zk["digest"] = {"username": z.digest_username, "password": secret(z.digest_password)}
        if z.read_protected:
            zk["read_protected"] = True
        doc["zookeeper"] = zk
    return {k: v for k, v in doc.items() if v is not None}


def profile_from_env(env: Mapping[str, str] | None = None) -> ClusterProfile | None:
    """A profile from ``$KAFKAOPS_PROFILE`` (a file), else from ``KAFKAOPS_BOOTSTRAP`` and
    friends (``KAFKAOPS_SECURITY_PROTOCOL``, ``KAFKAOPS_SASL_MECHANISM``,
    ``KAFKAOPS_SASL_USERNAME``, ``KAFKAOPS_SASL_PASSWORD``, ``KAFKAOPS_SSL_CA_FILE``,
    ``KAFKAOPS_ZOOKEEPER``, ``KAFKAOPS_ZK_ROOT``); None when none is set."""
    env = os.environ if env is None else env
    if env.get(PROFILE_ENV):
        return load_profile(env[PROFILE_ENV])
    if not env.get("KAFKAOPS_BOOTSTRAP"):
        return None
    return build_profile(
        env["KAFKAOPS_BOOTSTRAP"],
        zookeeper=env.get("KAFKAOPS_ZOOKEEPER"),
        zk_root=env.get("KAFKAOPS_ZK_ROOT") or DEFAULT_ZK_ROOT,
        protocol=env.get("KAFKAOPS_SECURITY_PROTOCOL") or "PLAINTEXT",
        sasl_mechanism=env.get("KAFKAOPS_SASL_MECHANISM"),
        username=env.get("KAFKAOPS_SASL_USERNAME"),
        password=env.get("KAFKAOPS_SASL_PASSWORD"),
        ca_file=env.get("KAFKAOPS_SSL_CA_FILE"),
        name="env",
    )


def build_profile(
    bootstrap_servers: str,
    *,
    zookeeper: str | None = None,
    zk_root: str = DEFAULT_ZK_ROOT,
    zk_digest: str | None = None,
    protocol: str = "PLAINTEXT",
    sasl_mechanism: str | None = None,
    username: str | None = None,
    password: str | None = None,
    ca_file: str | Path | None = None,
    name: str = "flags",
) -> ClusterProfile:
    """A profile from flag-shaped values; ``zookeeper`` may carry the brokers' chroot
    (``host:2181/kafka``), ``zk_digest`` is ``user:password``."""
    zk = None
    if zookeeper:
        connect, slash, chroot = zookeeper.partition("/")
        du = dp = None
        if zk_digest:
            du, sep, dp = zk_digest.partition(":")
            if not sep or not du:
                raise ConfigError("ZooKeeper digest auth takes user:password")
        zk = ZooKeeperSettings(
            connect, kafka_chroot=("/" + chroot) if slash and chroot else "/kafka", root=zk_root,
            digest_username=du, digest_password=None if dp is None else Secret(dp),
        )
    if sasl_mechanism is None and protocol.startswith("SASL_"):
        sasl_mechanism = "SCRAM-SHA-512"
    security = KafkaSecurity(
        protocol=protocol.upper(), sasl_mechanism=sasl_mechanism, username=username,
        password=None if password is None else Secret(password),
        ca_file=Path(ca_file) if ca_file else None,
    )
    return ClusterProfile(bootstrap_servers, security, zk, name)


def _str(p: Path | None) -> str | None:
    return None if p is None else str(p)


def _secret(raw: Any, where: str) -> Secret | None:
    """A password given inline, as ``{file: path}`` or as ``{env: VAR}``."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return Secret(raw)
    if isinstance(raw, Mapping) and len(raw) == 1:
        if "env" in raw:
            value = os.environ.get(str(raw["env"]))
            if value is None:
                raise ConfigError(f"{where}: environment variable {raw['env']} is not set")
            return Secret(value)
        if "file" in raw:
            try:
                return Secret(Path(str(raw["file"])).expanduser().read_text().rstrip("\n"))
            except OSError as exc:
                raise ConfigError(f"{where}: cannot read password file {raw['file']} ({exc.strerror})") from None
    raise ConfigError(f"{where}: a password is a string, {{file: PATH}} or {{env: VAR}}")


def profile_from_dict(doc: Mapping[str, Any], source: str, base: Path | None) -> ClusterProfile:
    known = {"name", "bootstrap_servers", "security", "zookeeper"}
    unknown = set(doc) - known
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    if not isinstance(doc.get("bootstrap_servers"), str):
        raise ConfigError(f"{source}: bootstrap_servers (host:port,...) is required")

    def path(value: Any) -> Path | None:
        if value is None:
            return None
        p = Path(str(value)).expanduser()
        return p if p.is_absolute() or base is None else base / p

    def section(key: str, allowed: set[str]) -> Mapping[str, Any]:
        raw = doc.get(key) or {}
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{source}: {key} must be a mapping")
        bad = set(raw) - allowed
        if bad:
            raise ConfigError(f"{source}: {key}: unknown key(s) {', '.join(sorted(bad))} (known: {', '.join(sorted(allowed))})")
        return raw

    try:
        sec = section("security", {"protocol", "sasl_mechanism", "username", "password", "ca_file",
                                   "cert_file", "key_file", "check_hostname"})
        protocol = str(sec.get("protocol", "PLAINTEXT")).upper()
        security = KafkaSecurity(
            protocol=protocol,
            sasl_mechanism=sec.get("sasl_mechanism") or ("SCRAM-SHA-512" if protocol.startswith("SASL_") else None),
            username=sec.get("username"),
            password=_secret(sec.get("password"), f"{source}: security.password"),
            ca_file=path(sec.get("ca_file")),
            cert_file=path(sec.get("cert_file")),
            key_file=path(sec.get("key_file")),
            check_hostname=bool(sec.get("check_hostname", True)),
        )
        zk = None
        if doc.get("zookeeper"):
            z = section("zookeeper", {"connect", "kafka_chroot", "root", "sasl", "digest", "read_protected",
                                      "session_timeout"})
            creds: dict[str, Any] = {}
            for kind in ("sasl", "digest"):
                c = z.get(kind)
                if c is None:
                    continue
                if not isinstance(c, Mapping) or set(c) != {"username", "password"}:
                    raise ConfigError(f"{source}: zookeeper.{kind} needs username and password")
                creds[f"{kind}_username"] = str(c["username"])
                creds[f"{kind}_password"] = _secret(c["password"], f"{source}: zookeeper.{kind}.password")
            zk = ZooKeeperSettings(
                connect=str(z.get("connect", "")),
                kafka_chroot=z.get("kafka_chroot", "/kafka"),
                root=str(z.get("root", DEFAULT_ZK_ROOT)),
                read_protected=bool(z.get("read_protected", False)),
                session_timeout=float(z.get("session_timeout", 10.0)),
                **creds,
            )
        return ClusterProfile(str(doc["bootstrap_servers"]), security, zk, str(doc.get("name", "default")))
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(source) else f"{source}: {msg}") from None

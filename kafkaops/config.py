"""Where kafkaops keeps its files, and the ClusterProfile: how to reach one cluster.

A :class:`ClusterProfile` is the one place connection settings live: Kafka's bootstrap
servers and client security (TLS, SASL), ZooKeeper's connect string, the brokers'
chroot and ZooKeeper credentials, and the root of kafkaops' own znodes. It renders
the configuration each client library takes — librdkafka (:meth:`~ClusterProfile.librdkafka`),
kafka-python (:meth:`~ClusterProfile.kafka_python`) and kazoo
(:meth:`ZooKeeperSettings.kazoo_args`) — so every part of kafkaops talks to the same
cluster with the same identity. Passwords are :class:`Secret` values: their ``repr``
and ``str`` are ``***``; only the rendered client configs hold the clear text.

A profile comes from a YAML file (``--profile FILE`` / ``$KAFKAOPS_PROFILE``), from
environment variables (:meth:`ClusterProfile.from_env`), or from a bootstrap string
(:func:`as_profile`); ``kafkaops up`` writes one for the local cluster.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kafkaops.errors import ConfigError

KAFKA_VERSION = "3.9.2"
"""Newest release of the last Apache Kafka line that still runs in ZooKeeper mode."""
KRAFT_KAFKA_VERSION = "4.4.0"
"""The Kafka 4.x release KRaft-mode local clusters run (share groups need 4.2 or newer)."""

PROFILE_ENV = "KAFKAOPS_PROFILE"
DEFAULT_ZK_ROOT = "/kafkaops"


@dataclass(frozen=True)
class Settings:
    """Where kafkaops keeps state and caches, and which Kafka it runs."""

    home: Path
    """``$KAFKAOPS_HOME`` (default ``~/.kafkaops``): state of the cluster `kafkaops up` started."""
    cache_dir: Path
    """``$KAFKAOPS_CACHE`` (default ``~/.cache/kafkaops``): fetched Kafka jars."""
    kafka_version: str
    """``$KAFKAOPS_KAFKA_VERSION`` (default 3.9.2)."""
    kafka_home: Path | None
    """``$KAFKA_HOME``: an existing Apache Kafka install whose ``libs/`` to use instead."""
    kraft_version: str = KRAFT_KAFKA_VERSION
    """``$KAFKAOPS_KRAFT_VERSION`` (default 4.4.0): the Kafka of KRaft-mode clusters."""

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        home = Path(env.get("KAFKAOPS_HOME") or Path.home() / ".kafkaops")
        cache = Path(env.get("KAFKAOPS_CACHE") or Path.home() / ".cache" / "kafkaops")
        kafka_home = env.get("KAFKA_HOME")
        return cls(
            home=home.expanduser(),
            cache_dir=cache.expanduser(),
            kafka_version=env.get("KAFKAOPS_KAFKA_VERSION") or KAFKA_VERSION,
            kafka_home=Path(kafka_home).expanduser() if kafka_home else None,
            kraft_version=env.get("KAFKAOPS_KRAFT_VERSION") or KRAFT_KAFKA_VERSION,
        )

    @property
    def cluster_dir(self) -> Path:
        """The directory of the local cluster ``kafkaops up`` starts."""
        return self.home / "cluster"

    @property
    def local_profile(self) -> Path:
        """The profile file ``kafkaops up`` writes for the local cluster."""
        return self.cluster_dir / "profile.yaml"


class Secret:
    """A password or key: compares by value, but prints as ``***`` everywhere."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The clear text, for the one place that must hand it to a client library."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:  # pickling/copying keeps the value; printing never shows it
        return (Secret, (self._value,))


PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


@dataclass(frozen=True)
class KafkaSecurity:
    """How a client authenticates to the brokers and protects the connection.

    ``protocol`` is Kafka's ``security.protocol``. With SASL, ``username``/``password``
    are the SCRAM (or PLAIN) credentials; with TLS, ``ca_file`` is the PEM file of the
    CA that signed the brokers' certificates, ``cert_file``/``key_file`` a client
    certificate for mutual TLS.
    """

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: Secret | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    check_hostname: bool = True

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"security protocol {self.protocol!r}: choose one of {', '.join(PROTOCOLS)}")
        if self.sasl:
            if self.sasl_mechanism not in SASL_MECHANISMS:
                raise ConfigError(
                    f"SASL mechanism {self.sasl_mechanism!r}: choose one of {', '.join(SASL_MECHANISMS)}"
                )
            if not self.username or self.password is None:
                raise ConfigError(f"{self.protocol} needs a username and a password")
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError("a client certificate needs both cert_file and key_file")

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")


@dataclass(frozen=True)
class ZooKeeperSettings:
    """How to reach ZooKeeper: ``connect`` is ``host:port,...`` without a chroot.

    ``kafka_chroot`` is where the brokers keep their znodes in ZooKeeper mode (``/kafka``
    for kafkaops' clusters; ``None`` for a KRaft cluster, whose brokers do not use
    ZooKeeper); ``root`` is the root of kafkaops' own znodes. Credentials: ``sasl_*``
    authenticate the session with SASL DIGEST-MD5 (the ``sasl`` principal a ZooKeeper
    server configured with a JAAS ``DigestLoginModule`` knows), ``digest`` adds a
    digest identity (``addauth digest user:password``); kafkaops' znodes then get ACLs
    for that identity.
    """

    connect: str
    kafka_chroot: str | None = "/kafka"
    root: str = DEFAULT_ZK_ROOT
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    digest_username: str | None = None
    digest_password: Secret | None = None
    read_protected: bool = False
    session_timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.connect or "/" in self.connect:
            raise ConfigError(
                f"ZooKeeper connect string {self.connect!r}: give host:port[,host:port...] and the chroot separately"
            )
        for name, path in (("root", self.root), ("kafka_chroot", self.kafka_chroot)):
            if path is not None and (not path.startswith("/") or (path != "/" and path.endswith("/"))):
                raise ConfigError(f"ZooKeeper {name} must be an absolute path without a trailing '/': {path!r}")
        if (self.sasl_username is None) != (self.sasl_password is None):
            raise ConfigError("ZooKeeper SASL needs both a username and a password")
        if (self.digest_username is None) != (self.digest_password is None):
            raise ConfigError("ZooKeeper digest auth needs both a username and a password")
        if self.read_protected and self.identity is None:
            raise ConfigError("read-protected znodes need a ZooKeeper identity (SASL or digest)")

    @property
    def kafka_connect(self) -> str | None:
        """The brokers' ``zookeeper.connect`` (with chroot), or None for KRaft."""
        return None if self.kafka_chroot is None else self.connect + self.kafka_chroot

    @property
    def identity(self) -> tuple[str, str] | None:
        """(scheme, id) kafkaops' znodes' ACLs name: ``("sasl", user)`` or ``("digest", user)``."""
        if self.sasl_username is not None:
            return ("sasl", self.sasl_username)
        if self.digest_username is not None:
            return ("digest", self.digest_username)
        return None

    def kazoo_args(self) -> dict[str, Any]:
        """Keyword arguments of ``kazoo.client.KazooClient`` (hosts, timeout, auth)."""
        args: dict[str, Any] = {"hosts": self.connect, "timeout": self.session_timeout}
        if self.sasl_username is not None and self.sasl_password is not None:
            args["sasl_options"] = {
                "mechanism": "DIGEST-MD5",
                "username": self.sasl_username,
                "password": self.sasl_password.reveal(),
            }
        if self.digest_username is not None and self.digest_password is not None:
            args["auth_data"] = [("digest", f"{self.digest_username}:{self.digest_password.reveal()}")]
        return args


@dataclass(frozen=True)
class ClusterProfile:
    """One Kafka cluster as kafkaops reaches it: brokers, security, ZooKeeper.

    ``zookeeper`` is None when the cluster has no ZooKeeper kafkaops may use (then the
    coordination features — checkpoints, schema registry, leadership, playbook locks —
    are not available and say so).
    """

    bootstrap_servers: str
    security: KafkaSecurity = field(default_factory=KafkaSecurity)
    zookeeper: ZooKeeperSettings | None = None
    name: str = "default"

    def __post_init__(self) -> None:
        if not self.bootstrap_servers or not all(s.strip() for s in self.bootstrap_servers.split(",")):
            raise ConfigError(f"bootstrap servers {self.bootstrap_servers!r}: give host:port[,host:port...]")

    # ------------------------------------------------------------------ rendering
    def librdkafka(self, **overrides: Any) -> dict[str, Any]:
        """confluent-kafka (librdkafka) config: bootstrap servers and security, plus ``overrides``."""
        s = self.security
        conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers}
        if s.protocol != "PLAINTEXT":
            conf["security.protocol"] = s.protocol
        if s.sasl and s.password is not None:
            conf["sasl.mechanism"] = s.sasl_mechanism
            conf["sasl.username"] = s.username
            conf["sasl.password"] = s.password.reveal()
        if s.tls:
            if s.ca_file is not None:
                conf["ssl.ca.location"] = str(s.ca_file)
            if s.cert_file is not None:
                conf["ssl.certificate.location"] = str(s.cert_file)
                conf["ssl.key.location"] = str(s.key_file)
            conf["ssl.endpoint.identification.algorithm"] = "https" if s.check_hostname else "none"
        conf.update(overrides)
        return conf

    def kafka_python(self, **overrides: Any) -> dict[str, Any]:
        """kafka-python config (``KafkaAdminClient(**profile.kafka_python())``)."""
        s = self.security
        conf: dict[str, Any] = {
            "bootstrap_servers": [b.strip() for b in self.bootstrap_servers.split(",")],
            "security_protocol": s.protocol,
        }
        if s.sasl and s.password is not None:
            conf["sasl_mechanism"] = s.sasl_mechanism
            conf["sasl_plain_username"] = s.username
            conf["sasl_plain_password"] = s.password.reveal()
        if s.tls:
            conf["ssl_check_hostname"] = s.check_hostname
            if s.ca_file is not None:
                conf["ssl_cafile"] = str(s.ca_file)
            if s.cert_file is not None:
                conf["ssl_certfile"] = str(s.cert_file)
                conf["ssl_keyfile"] = str(s.key_file)
        conf.update(overrides)
        return conf

    def require_zookeeper(self, what: str) -> ZooKeeperSettings:
        """The ZooKeeper settings, or ConfigError naming ``what`` needs them."""
        if self.zookeeper is None:
            raise ConfigError(
                f"{what} needs ZooKeeper: give --zookeeper host:port (or a profile with a zookeeper section)"
            )
        return self.zookeeper

    @property
    def principal(self) -> str:
        """The Kafka principal this profile authenticates as (``User:ANONYMOUS`` without SASL)."""
        return f"User:{self.security.username}" if self.security.sasl else "User:ANONYMOUS"

    def with_bootstrap(self, bootstrap_servers: str) -> ClusterProfile:
        """The same profile with other bootstrap servers (e.g. live brokers first)."""
        return replace(self, bootstrap_servers=bootstrap_servers)

    def __str__(self) -> str:
        sec = self.security.protocol + (f"/{self.security.sasl_mechanism} as {self.security.username}"
                                         if self.security.sasl else "")
        zk = f", zookeeper {self.zookeeper.connect}" if self.zookeeper else ""
        return f"profile {self.name!r}: {self.bootstrap_servers} ({sec}){zk}"

    # ------------------------------------------------------------------ files and environment
    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], *, source: str = "profile", base: Path | None = None) -> ClusterProfile:
        """Build from the YAML document's shape (see :meth:`to_dict`); paths are relative to ``base``."""
        from kafkaops.profile_file import profile_from_dict

        return profile_from_dict(doc, source, base)

    @classmethod
    def load(cls, path: Path | str) -> ClusterProfile:
        """Read a profile YAML file; ConfigError names the file and what is wrong."""
        from kafkaops.profile_file import load_profile

        return load_profile(path)

    def save(self, path: Path | str) -> Path:
        """Write this profile as YAML, readable only by the owner (it holds passwords)."""
        from kafkaops.profile_file import save_profile

        return save_profile(self, path)

    def to_dict(self, *, reveal: bool = False) -> dict[str, Any]:
        """The YAML document; passwords as ``***`` unless ``reveal``."""
        from kafkaops.profile_file import profile_to_dict

        return profile_to_dict(self, reveal=reveal)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClusterProfile | None:
        """A profile from ``$KAFKAOPS_PROFILE`` (a file), else from ``KAFKAOPS_BOOTSTRAP`` and
        friends; None when none is set (see :func:`kafkaops.profile_file.profile_from_env`)."""
        from kafkaops.profile_file import profile_from_env

        return profile_from_env(env)


def as_profile(cluster: ClusterProfile | str) -> ClusterProfile:
    """A profile for what a library entry point was given: a profile, or a bootstrap string."""
    if isinstance(cluster, ClusterProfile):
        return cluster
    if isinstance(cluster, str):
        return ClusterProfile(cluster, name="bootstrap")
    raise ConfigError(f"expected a ClusterProfile or a bootstrap string, not {type(cluster).__name__}")

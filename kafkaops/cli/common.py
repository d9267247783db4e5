"""What every command shares: the consoles, the connection options, profile resolution,
the local cluster, and rendering an error as one line.

A command reaches a cluster through a :class:`Target` (its connection flags) and asks it
for a :class:`~kafkaops.config.ClusterProfile`: ``--profile FILE`` (``$KAFKAOPS_PROFILE``)
if given, else the flags (``-b``, ``-z``, ``--zk-root``, ``--zk-auth`` and their env
vars), else the profile ``kafkaops up`` wrote for the local cluster. Flags given with a
profile override its fields.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from kafkaops.config import DEFAULT_ZK_ROOT, ClusterProfile, Settings, ZooKeeperSettings
from kafkaops.profile_file import build_profile
from kafkaops.errors import KafkaopsError, NoClusterError

if TYPE_CHECKING:
    from kafkaops.coord.session import Coordinator
    from kafkaops.local.cluster import LocalCluster

out = Console()
"""Results, for humans or as JSON."""
err = Console(stderr=True)
"""Diagnostics and errors."""

ProfileOpt = Annotated[
    Path | None,
    typer.Option("--profile", envvar="KAFKAOPS_PROFILE",
                 help="cluster profile YAML (brokers, security, ZooKeeper); flags override its fields"),
]
BootstrapOpt = Annotated[
    str | None,
    typer.Option("--bootstrap-server", "-b", envvar="KAFKAOPS_BOOTSTRAP",
                 help="Kafka bootstrap servers (default: the profile, else the local cluster)"),
]
ZookeeperOpt = Annotated[
    str | None,
    typer.Option("--zookeeper", "-z", envvar="KAFKAOPS_ZOOKEEPER",
                 help="ZooKeeper host:port,... optionally followed by the brokers' chroot, e.g. host:2181/kafka "
                      "(chroot default /kafka; default: the profile, else the local cluster)"),
]
ZkRootOpt = Annotated[
    str | None,
    typer.Option("--zk-root", envvar="KAFKAOPS_ZK_ROOT", help="root of kafkaops' znodes (default /kafkaops)"),
]
ZkAuthOpt = Annotated[
    str | None,
    typer.Option("--zk-auth", envvar="KAFKAOPS_ZK_AUTH",
                 help="ZooKeeper digest identity user:password (znodes then writable only by it)"),
]

_NO_KAFKA = "unused:0"
"""build_profile parses ZooKeeper flags only beside a bootstrap string; ZooKeeper-only
commands never use it."""


@dataclass(frozen=True)
class Target:
    """One command's connection flags, all optional; resolved into a profile on demand."""

    profile: Path | None = None
    bootstrap: str | None = None
    zookeeper: str | None = None
    zk_root: str | None = None
    zk_auth: str | None = None

    @property
    def is_local(self) -> bool:
        """True when the command falls back to the local cluster (no profile, no ``-b``)."""
        return self.profile is None and not self.bootstrap

    def cluster(self) -> ClusterProfile:
        """The profile to pass to the library: ``--profile``, else ``-b`` and friends,
        else the local cluster's (NoClusterError when it is not running). Brokers that
        refuse it (credentials, TLS, protocol) are named here, in seconds."""
        profile = self._profile()
        refused_connection(profile)
        return profile

    def _profile(self) -> ClusterProfile:
        if self.profile is not None:
            return self._override(ClusterProfile.load(self.profile))
        if self.bootstrap:
            return self._flags(self.bootstrap)
        return self._override(local_profile())

    def coordination(self) -> ZooKeeperSettings:
        """ZooKeeper only (schemas, checkpoints): ``-z`` alone needs no Kafka and no local cluster."""
        if self.is_local and self.zookeeper:
            zk = self._flags(_NO_KAFKA).zookeeper
            assert zk is not None
            return zk
        return self._profile().require_zookeeper("this command")

    def _flags(self, bootstrap: str, zookeeper: str | None = None) -> ClusterProfile:
        return build_profile(bootstrap, zookeeper=zookeeper or self.zookeeper, zk_root=self.zk_root or DEFAULT_ZK_ROOT,
                             zk_digest=self.zk_auth)

    def _override(self, base: ClusterProfile) -> ClusterProfile:
        p = base if not self.bootstrap else dataclasses.replace(base, bootstrap_servers=self.bootstrap)
        if not (self.zookeeper or self.zk_root or self.zk_auth):
            return p
        zk_flag = self.zookeeper or (p.zookeeper.connect if p.zookeeper else None)
        if zk_flag is None:  # --zk-root/--zk-auth refine a ZooKeeper; commands that need one say so
            return p
        flags = self._flags(p.bootstrap_servers, zk_flag).zookeeper
        assert flags is not None
        if p.zookeeper is None:
            return dataclasses.replace(p, zookeeper=flags)
        changes: dict[str, Any] = {}
        if self.zookeeper:
            changes["connect"] = flags.connect
            if "/" in self.zookeeper:  # a chroot given with the hosts replaces the profile's
                changes["kafka_chroot"] = flags.kafka_chroot
        if self.zk_root:
            changes["root"] = flags.root
        if self.zk_auth:
            changes["digest_username"], changes["digest_password"] = flags.digest_username, flags.digest_password
        return dataclasses.replace(p, zookeeper=dataclasses.replace(p.zookeeper, **changes))


Command = TypeVar("Command", bound=Callable[..., None])

_CONNECTION_OPTIONS: dict[str, Any] = {
    "profile": ProfileOpt, "bootstrap": BootstrapOpt, "zookeeper": ZookeeperOpt, "zk_root": ZkRootOpt,
    "zk_auth": ZkAuthOpt,
}


def connection(*, kafka: bool = True, zookeeper: bool = True) -> Callable[[Command], Command]:
    """Give a command the connection options, after its own: ``--profile``, ``-b`` (with
    ``kafka``), ``-z``, ``--zk-root``, ``--zk-auth`` (with ``zookeeper``). It receives them
    as one ``target: Target`` keyword argument."""
    names = ["profile", *(["bootstrap"] if kafka else []), *(["zookeeper", "zk_root", "zk_auth"] if zookeeper else [])]

    def decorate(command: Command) -> Command:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "target"]
        extra = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=_CONNECTION_OPTIONS[n])
                 for n in names]

        @functools.wraps(command)
        def with_target(*args: Any, **kwargs: Any) -> None:
            flags = {n: kwargs.pop(n, None) for n in names}
            command(*args, target=Target(**flags), **kwargs)

        params = [*own, *extra]
        with_target.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        with_target.__annotations__ = {p.name: p.annotation for p in params}
        return with_target  # type: ignore[return-value]

    return decorate


_CHECKED: set[ClusterProfile] = set()


def refused_connection(profile: ClusterProfile, timeout: float = 10.0) -> None:
    """Raise the brokers' refusal of ``profile`` (wrong credentials, untrusted certificate,
    protocol mismatch) at once, rather than after a command's request timeouts. Unreachable
    brokers are the command's to report. Once per profile and process."""
    from kafkaops.clients.connection import NoBrokerAnswered, check_connection

    if profile in _CHECKED:
        return
    try:
        check_connection(profile, timeout)
    except NoBrokerAnswered as exc:
        logging.getLogger(__name__).debug("%s", exc)
    _CHECKED.add(profile)


# ---------------------------------------------------------------------- the local cluster
def cluster_dir() -> Path:
    return Settings.from_env().cluster_dir


def local_cluster() -> LocalCluster:
    """The running local cluster (``kafkaops up``), or NoClusterError saying how to start one."""
    from kafkaops.local.cluster import LocalCluster

    cluster = LocalCluster.attach(cluster_dir())
    if not cluster.any_running():
        raise NoClusterError(f"the local cluster in {cluster.base_dir} is not running; start one with `kafkaops up`")
    return cluster


def find_local_cluster() -> LocalCluster | None:
    """The running local cluster, or None (for commands where it is only a default)."""
    try:
        return local_cluster()
    except KafkaopsError:
        return None


def local_profile() -> ClusterProfile:
    """The profile file ``kafkaops up`` wrote, once the cluster is known to be running."""
    cluster = local_cluster()
    path = Settings.from_env().local_profile
    return ClusterProfile.load(path) if path.exists() else cluster.profile


@contextmanager
def coordinator(zookeeper: ZooKeeperSettings | ClusterProfile) -> Iterator[Coordinator]:
    """The process's shared ZooKeeper session for the command, released at the end."""
    from kafkaops.coord.session import Coordinator

    coord = Coordinator.shared(zookeeper)
    try:
        yield coord
    finally:
        coord.stop()


# ---------------------------------------------------------------------- parsing and rendering
def key_values(items: list[str], flag: str) -> dict[str, str]:
    """``key=value`` options as a dict; a usage error names the flag and the bad item."""
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{flag} takes key=value, not {item!r}")
        result[key] = value
    return result


def _not_librdkafka(record: logging.LogRecord) -> bool:
    """librdkafka reports every refused connection to a dead broker; the CLI shows
    outcomes instead, unless KAFKAOPS_LOG_LEVEL asks for the details."""
    return not (isinstance(record.args, tuple) and len(record.args) == 3 and str(record.args[1]).startswith("rdkafka#"))


def setup_logging() -> None:
    """Warnings and errors on stderr (``$KAFKAOPS_LOG_LEVEL`` for more), without client chatter."""
    level = os.environ.get("KAFKAOPS_LOG_LEVEL")
    logging.basicConfig(
        level=(level or "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if level is None:
        logging.getLogger("kazoo.client").setLevel(logging.ERROR)  # reconnect chatter
        logging.getLogger("kafka").setLevel(logging.CRITICAL)  # kafka-python's lost connections (a dead controller)
        for handler in logging.getLogger().handlers:
            handler.addFilter(_not_librdkafka)


def run_reporting_errors(app: Callable[[], object]) -> None:
    """Run the app: a deliberate error (KafkaopsError) is one line on stderr and exit 1."""
    try:
        app()
    except KafkaopsError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)  # one line, however long
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)

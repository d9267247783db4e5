"""Coordinator: one ZooKeeper session (a started KazooClient) under a namespace root.

It tracks the connection state the way kazoo's recipes expect: while SUSPENDED the
process must not write (``writable`` is False, ``wait_writable`` blocks); after LOST
(session expired) kazoo opens a new session and the coordinator runs the registered
``on_reconnect`` hooks so holders of ephemeral things (locks, leadership) re-acquire
them. With an identity (SASL DIGEST-MD5 or digest), every znode it creates is writable
(and, if ``read_protected``, readable) only by that identity; a SASL identity is proven at
start (:mod:`kafkaops.coord.zk_auth`), so a wrong user or password fails there, in seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from types import TracebackType
from typing import Any, ClassVar, TypeVar, cast

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    ConnectionLoss,
    KazooException,
    NoAuthError,
    NodeExistsError,
    OperationTimeoutError,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

from kafkaops.config import DEFAULT_ZK_ROOT, ClusterProfile, Secret, ZooKeeperSettings
from kafkaops.coord.zk_auth import confirm_sasl_identity, directory_acl, znode_acl
from kafkaops.errors import ConfigError, KafkaopsError
from kafkaops.waits import Deadline

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_ROOT = DEFAULT_ZK_ROOT


class CoordinatorError(KafkaopsError):
    """ZooKeeper could not be reached or used (connection, session, bad path)."""


class ZnodePermissionError(CoordinatorError):
    """ZooKeeper refused the operation: the znode's ACL belongs to another identity."""


class NotWritableError(CoordinatorError):
    """The ZooKeeper connection is suspended or lost: writes are not allowed now."""


_SAME_ASYNC = frozenset({"get", "get_children", "exists", "create", "set", "get_acls", "set_acls", "sync"})
"""KazooClient methods whose ``*_async`` form takes the same arguments (``delete`` too,
unless recursive: only the synchronous form walks a tree)."""

StateListener = Callable[[str], None]
ReconnectHook = Callable[[], None]


class Coordinator:
    """One ZooKeeper session for kafkaops' znodes under ``root`` (default ``/kafkaops``).

    Built from a :class:`~kafkaops.config.ClusterProfile` (its ``zookeeper`` section), a
    :class:`~kafkaops.config.ZooKeeperSettings`, or a ``host:port,...`` string. The
    session authenticates as the settings say (SASL DIGEST-MD5 and/or a digest
    identity; ``auth=(user, password)`` is the digest shorthand); znodes created with
    :attr:`acl` are then writable only by that identity (and readable only by it when
    ``read_protected``). Without an identity the ACL is ZooKeeper's open ACL.

    Use :meth:`shared` for the process-wide instance: every ZooKeeper user in kafkaops
    (checkpoints, schema registry, leadership, playbook runs, the monitor's ZooKeeper
    source) goes through it, so a process holds one session with one retry policy.
    """

    _shared: ClassVar[dict[tuple[Any, ...], Coordinator]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        zookeeper: ZooKeeperSettings | ClusterProfile | str,
        root: str | None = None,
        *,
        auth: tuple[str, str] | None = None,
        read_protected: bool | None = None,
        timeout: float | None = None,
        client: KazooClient | None = None,
    ) -> None:
        try:
            self.settings = _settings(zookeeper, root, auth, read_protected, timeout)
        except ConfigError as exc:
            raise CoordinatorError(str(exc)) from None
        s = self.settings
        self.hosts = s.connect
        self.root = s.root
        self.read_protected = s.read_protected
        self.timeout = s.session_timeout
        self._own_client = client is None  # a client handed in is not stopped by stop()
        self._client: KazooClient | None = client
        self._listeners: list[StateListener] = []
        self._reconnect_hooks: list[ReconnectHook] = []
        self._lock = threading.Lock()
        self._writable = threading.Event()
        self._lost_since_connect = False
        self._refs = 0
        self._shared_key: tuple[Any, ...] | None = None
        self.acl: list[Any] = znode_acl(self.settings)

    @property
    def auth(self) -> tuple[str, str] | None:
        """The digest identity (user, password), if the session has one."""
        s = self.settings
        if s.digest_username is None or s.digest_password is None:
            return None
        return (s.digest_username, s.digest_password.reveal())

    # ---- lifecycle -------------------------------------------------------------------

    @classmethod
    def shared(
        cls,
        zookeeper: ZooKeeperSettings | ClusterProfile | str,
        root: str | None = None,
        *,
        auth: tuple[str, str] | None = None,
        read_protected: bool | None = None,
        timeout: float | None = None,
    ) -> Coordinator:
        """The process-wide started Coordinator for these settings (reference counted:
        each ``shared()`` call needs one ``stop()``; the session closes at the last)."""
        try:
            settings = _settings(zookeeper, root, auth, read_protected, timeout)
        except ConfigError as exc:
            raise CoordinatorError(str(exc)) from None
        key = (settings,)
        with cls._shared_lock:
            coord = cls._shared.get(key)
            if coord is None or coord._client is None:
                coord = cls(settings)
                coord._shared_key = key
                coord.start()
                cls._shared[key] = coord
            coord._refs += 1
            return coord

    def start(self, timeout: float = 15.0) -> Coordinator:
        """Connect (no-op when already started); raises CoordinatorError if ZooKeeper
        is not reachable within ``timeout`` seconds."""
        with self._lock:
            if self._client is not None:  # already started, or a client handed in
                if not self._owns_listener():
                    self._client.add_listener(self._on_state)
                if not self._client.connected:
                    try:
                        self._client.start(timeout=timeout)
                    except (KazooTimeoutError, KazooException) as exc:
                        raise CoordinatorError(f"ZooKeeper at {self.hosts} not reachable: {exc}") from exc
                self._writable.set()
                return self
            client = KazooClient(
                **self.settings.kazoo_args(),
                default_acl=self.acl,
                logger=logging.getLogger("kazoo.client"),
                # reconnect forever, at most 5 s apart (kazoo's default backs off to an hour)
                connection_retry=KazooRetry(max_tries=-1, delay=0.1, backoff=2, max_delay=5.0),
                command_retry=KazooRetry(max_tries=-1, delay=0.05, backoff=2, max_delay=2.0,
                                         deadline=max(self.timeout, 5.0) * 2),
            )
            client.add_listener(self._on_state)
            try:
                client.start(timeout=timeout)
                confirm_sasl_identity(client, self.settings, self.root)  # kazoo says CONNECTED before SASL is done
            except (KazooTimeoutError, KazooException, KafkaopsError) as exc:
                client.remove_listener(self._on_state)
                client.stop()
                client.close()
                if isinstance(exc, KafkaopsError):
                    raise CoordinatorError(str(exc)) from None
                raise CoordinatorError(f"ZooKeeper at {self.hosts} not reachable: {exc}") from exc
            self._client = client
            self._own_client = True
            self._writable.set()
        log.info("coordinator connected to %s (root %s)", self.hosts, self.root)
        return self

    def _owns_listener(self) -> bool:
        assert self._client is not None
        return self._on_state in self._client.state_listeners

    def stop(self) -> None:
        """Close the session (ephemeral znodes go away at once). For a shared
        coordinator, only the last holder's ``stop()`` closes it."""
        if self._shared_key is not None:
            with self._shared_lock:
                self._refs -= 1
                if self._refs > 0:
                    return
                self._shared.pop(self._shared_key, None)
        with self._lock:
            client, self._client = self._client, None
            self._writable.clear()
        if client is None:
            return
        client.remove_listener(self._on_state)
        if self._own_client:
            try:
                client.stop()
                client.close()
            except Exception:  # pragma: no cover - best effort on shutdown
                log.debug("error closing ZooKeeper client", exc_info=True)

    def __enter__(self) -> Coordinator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- accessors -------------------------------------------------------------------

    @property
    def client(self) -> KazooClient:
        """The started KazooClient (raises CoordinatorError when not started)."""
        if self._client is None:
            raise CoordinatorError("coordinator is not started")
        return self._client

    @property
    def started(self) -> bool:
        return self._client is not None

    @property
    def writable(self) -> bool:
        """True while the session is connected; False while SUSPENDED or LOST."""
        return self._client is not None and self._writable.is_set()

    @property
    def session_id(self) -> int | None:
        """The current ZooKeeper session id (changes after an expiry)."""
        if self._client is None:
            return None
        sid = self._client.client_id
        return int(sid[0]) if sid else None

    def wait_writable(self, timeout: float | None = None) -> None:
        """Block until the session is connected; NotWritableError after ``timeout``."""
        if self._client is None:
            raise NotWritableError("coordinator is not started")
        if not self._writable.wait(timeout if timeout is not None else self.timeout):
            raise NotWritableError(f"ZooKeeper connection to {self.hosts} is suspended or lost")

    def path(self, *parts: str) -> str:
        """Absolute znode path under the root: ``path("checkpoints", "job")``."""
        for p in parts:
            if not p or "/" in p or p in (".", "..") or "\x00" in p:
                raise CoordinatorError(f"invalid znode name {p!r}")
        base = "" if self.root == "/" else self.root
        return "/".join([base, *parts]) if parts else (self.root)

    def retry(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a ZooKeeper call within a bounded wait (the session timeout x 2).

        ``fn`` is a KazooClient method such as ``client.get``: it runs as its ``*_async``
        form through :meth:`call`, so a call made while ZooKeeper is away fails with
        NotWritableError after the wait instead of blocking until it returns (kazoo queues
        requests made while disconnected). Anything else runs under KazooRetry (connection
        loss and operation timeouts retried with backoff; session expiry is not).
        """
        name = getattr(fn, "__name__", "")
        if getattr(fn, "__self__", None) is self._client and self._client is not None and (
                name in _SAME_ASYNC or (name == "delete" and not kwargs.get("recursive"))):
            return cast(T, self.call(f"ZooKeeper {name}", getattr(self._client, f"{name}_async"), *args, **kwargs))
        retry = KazooRetry(max_tries=8, delay=0.05, backoff=2, max_delay=2.0, deadline=self.timeout * 2,
                           ignore_expire=False)
        return cast(T, retry(fn, *args, **kwargs))

    def call(self, what: str, fn: Callable[..., Any], *args: Any, deadline: Deadline | None = None,
             retry: bool = True, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs).get()`` for a kazoo ``*_async`` method, waited for at most
        ``deadline`` (default: the session timeout x 2): it waits for a writable session,
        retries a lost connection while the deadline lasts (``retry``), then raises
        NotWritableError naming ``what`` and how long it waited. kazoo's other errors
        (NoNodeError, NodeExistsError, ...) propagate."""
        deadline = deadline or Deadline(self.timeout * 2)
        while True:
            try:
                self.wait_writable(deadline.remaining(floor=0.01))
                return fn(*args, **kwargs).get(timeout=deadline.remaining(floor=0.01))
            except (NotWritableError, KazooTimeoutError):
                raise self.unavailable(what, deadline.timeout) from None
            except (ConnectionLoss, OperationTimeoutError):
                if not retry or deadline.expired:
                    raise
                time.sleep(deadline.remaining(cap=0.05))

    def unavailable(self, what: str, waited: float) -> NotWritableError:
        """The error of a call that found ZooKeeper away for ``waited`` seconds."""
        return NotWritableError(f"{what}: ZooKeeper at {self.hosts} unavailable for {waited:.0f}s "
                                "(is it running? `kafkaops status` shows the cluster)")

    @contextmanager
    def translate_errors(self, what: str) -> Iterator[None]:
        """Turn kazoo's bare exceptions into CoordinatorError subclasses naming ``what``."""
        try:
            yield
        except NoAuthError as exc:
            raise ZnodePermissionError(
                f"{what}: ZooKeeper denied access (the znodes' ACL belongs to another identity"
                f"{'' if self.settings.identity else '; the profile gives no ZooKeeper identity'})"
            ) from exc
        except (ConnectionLoss, OperationTimeoutError, SessionExpiredError, KazooTimeoutError) as exc:
            raise NotWritableError(f"{what}: ZooKeeper at {self.hosts} unavailable ({type(exc).__name__})") from exc

    def ensure_path(self, path: str, acl: list[Any] | None = None) -> None:
        """Create ``path`` if missing: the znode gets ``acl`` (default :attr:`acl`), missing parents
        :attr:`dir_acl` (with a digest identity, shared directories such as ``/kafkaops/checkpoints``
        stay open for other identities to create their own protected znodes in)."""
        client = self.client
        if self.retry(client.exists, path) is not None:
            return
        parts = [p for p in path.split("/") if p]
        for i in range(1, len(parts) + 1):
            node = "/" + "/".join(parts[:i])
            node_acl = (self.acl if acl is None else acl) if i == len(parts) else self.dir_acl
            try:
                self.retry(client.create, node, b"", acl=node_acl)
            except NodeExistsError:
                pass

    @property
    def dir_acl(self) -> list[Any]:
        """ACL for parent directories (see :func:`kafkaops.coord.zk_auth.directory_acl`)."""
        return directory_acl(self.settings)

    # ---- state handling --------------------------------------------------------------

    def add_listener(self, listener: StateListener) -> None:
        """``listener(state)`` with state in "CONNECTED" | "SUSPENDED" | "LOST". Called
        on kazoo's connection thread: it must not block or call ZooKeeper."""
        self._listeners.append(listener)

    def remove_listener(self, listener: StateListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def add_reconnect_hook(self, hook: ReconnectHook) -> None:
        """``hook()`` runs on its own thread after a lost (expired) session has been
        replaced by a new one: re-create ephemeral znodes, re-acquire locks there."""
        self._reconnect_hooks.append(hook)

    def remove_reconnect_hook(self, hook: ReconnectHook) -> None:
        if hook in self._reconnect_hooks:
            self._reconnect_hooks.remove(hook)

    def _on_state(self, state: str) -> bool:
        if state == KazooState.CONNECTED:
            self._writable.set()
            if self._lost_since_connect:
                self._lost_since_connect = False
                log.warning("ZooKeeper session re-established after loss; running reconnect hooks")
                threading.Thread(target=self._run_reconnect_hooks, name="kafkaops-zk-reconnect",
                                 daemon=True).start()
        elif state == KazooState.SUSPENDED:
            log.warning("ZooKeeper connection suspended: writes paused")
            self._writable.clear()
        else:  # LOST
            self._writable.clear()
            if self._client is not None:
                log.warning("ZooKeeper session lost: ephemeral znodes are gone")
                self._lost_since_connect = True
        for listener in list(self._listeners):
            try:
                listener(str(state))
            except Exception:
                log.exception("ZooKeeper state listener failed")
        return False  # keep listening

    def _run_reconnect_hooks(self) -> None:
        for hook in list(self._reconnect_hooks):
            try:
                hook()
            except Exception:
                log.exception("reconnect hook %r failed", hook)

    def __repr__(self) -> str:
        return f"Coordinator(hosts={self.hosts!r}, root={self.root!r}, writable={self.writable})"


def _settings(
    zookeeper: ZooKeeperSettings | ClusterProfile | str,
    root: str | None,
    auth: tuple[str, str] | None,
    read_protected: bool | None,
    timeout: float | None,
) -> ZooKeeperSettings:
    """The ZooKeeperSettings a Coordinator was given, with the keyword overrides applied."""
    if isinstance(zookeeper, ClusterProfile):
        settings = zookeeper.require_zookeeper("the coordinator")
    elif isinstance(zookeeper, ZooKeeperSettings):
        settings = zookeeper
    elif isinstance(zookeeper, str) and zookeeper:
        settings = ZooKeeperSettings(zookeeper.split("/", 1)[0])
    else:
        raise ConfigError("no ZooKeeper hosts given")
    changes: dict[str, Any] = {}
    if root is not None:
        changes["root"] = root
    if auth is not None:
        changes["digest_username"], changes["digest_password"] = auth[0], Secret(auth[1])
    if read_protected is not None:
        changes["read_protected"] = read_protected
    if timeout is not None:
        changes["session_timeout"] = timeout
    return replace(settings, **changes) if changes else settings

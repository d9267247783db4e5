"""Leadership for singleton jobs (replica monitor, playbook runner, checkpointed consumers).

A kazoo Lock at ``<root>/leaders/<name>/lock`` decides who leads; on each acquisition
the leader bumps ``<root>/leaders/<name>/epoch`` with a check-and-set, so the epoch
(that znode's version) grows monotonically per name. Writers fence their writes by
checking that version in the same ZooKeeper transaction (see CheckpointStore): a
leader that lost its session (a zombie) cannot write once a successor was elected.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

from kazoo.client import KazooState
from kazoo.exceptions import BadVersionError, CancelledError, LockTimeout, NodeExistsError, NoNodeError
from kazoo.protocol.states import WatchedEvent
from kazoo.recipe.lock import Lock

from kafkaops.coord.session import Coordinator, CoordinatorError

log = logging.getLogger(__name__)


class LeadershipTimeout(CoordinatorError):
    """Leadership was not acquired within the given time (another instance leads)."""


class NotLeaderError(CoordinatorError):
    """An operation needs leadership this instance does not hold."""


def epoch_path(coordinator: Coordinator, name: str) -> str:
    """The epoch znode of ``name``; its version is the current owner's epoch."""
    return coordinator.path("leaders", name, "epoch")


def bump_epoch(coordinator: Coordinator, name: str, owner: str) -> int:
    """Claim ``name``: increment its epoch by check-and-set and record ``owner`` there.

    Returns the new epoch (>= 1). Any writer holding an older epoch is fenced from
    then on. Leadership calls this under its lock; a job without a standby may call it
    directly ("last claim wins").
    """
    path = epoch_path(coordinator, name)
    client = coordinator.client
    coordinator.ensure_path(path.rsplit("/", 1)[0])
    while True:
        try:
            _, stat = coordinator.retry(client.get, path)
        except NoNodeError:
            try:
                coordinator.retry(client.create, path, b"", acl=coordinator.acl)
            except NodeExistsError:
                pass
            continue
        try:
            new = coordinator.retry(client.set, path, owner.encode(), version=stat.version)
        except BadVersionError:
            continue
        epoch = int(new.version)
        log.info("epoch of %s is now %d (owner %s)", name, epoch, owner)
        return epoch


def current_epoch(coordinator: Coordinator, name: str) -> tuple[int, str] | None:
    """(epoch, owner) of ``name``, or None if never claimed."""
    try:
        data, stat = coordinator.retry(coordinator.client.get, epoch_path(coordinator, name))
    except NoNodeError:
        return None
    return int(stat.version), bytes(data or b"").decode("utf-8", "replace")


class Leadership:
    """Leadership of one singleton job ``name`` among instances named ``identifier``.

    ``acquire()`` blocks until this instance leads and returns its epoch. ``on_lost``
    fires (on a helper thread) when leadership is lost involuntarily: session expiry
    or the lock znode deleted. While the connection is SUSPENDED, ``is_leader`` is
    False (the lock may be gone already) but leadership is not yet considered lost.
    With ``rejoin=True`` a lost leadership is sought again in the background and
    ``on_elected(epoch)`` fires when it is regained.
    """

    def __init__(
        self,
        coordinator: Coordinator,
        name: str,
        identifier: str,
        on_lost: Callable[[], None] | None = None,
        *,
        rejoin: bool = False,
        on_elected: Callable[[int], None] | None = None,
    ) -> None:
        coordinator.path(name)  # validates the name
        self.coordinator = coordinator
        self.name = name
        self.identifier = identifier
        self.on_lost = on_lost
        self.on_elected = on_elected
        self.rejoin = rejoin
        self.lock_path = coordinator.path("leaders", name, "lock")
        self._lock: Lock | None = None
        self._pending: Lock | None = None
        self._stale_lock: Lock | None = None
        self._timer: threading.Timer | None = None
        self._wakeup = threading.Event()
        self._held = False
        self._epoch: int | None = None
        self._closed = False
        self._mutex = threading.RLock()
        self._generation = 0

    # ---- public API ------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """True while this instance holds leadership and the session is connected."""
        return self._held and self.coordinator.writable

    @property
    def epoch(self) -> int | None:
        """The epoch of the current (or last) leadership term, None before the first."""
        return self._epoch

    def acquire(self, timeout: float | None = None) -> int:
        """Block until leader (LeadershipTimeout after ``timeout`` s); returns the epoch."""
        with self._mutex:
            self._closed = False
            self._wakeup.clear()
        return self._acquire(timeout)

    def _acquire(self, timeout: float | None) -> int:
        with self._mutex:
            if self._held:
                assert self._epoch is not None
                return self._epoch
        self.coordinator.wait_writable(timeout)
        with self.coordinator.translate_errors(f"leadership of {self.name!r}"):
            self.coordinator.ensure_path(self.lock_path)
        lock = self.coordinator.client.Lock(self.lock_path, self.identifier)
        with self._mutex:
            if self._closed:
                raise NotLeaderError(f"leadership of {self.name!r} was released")
            self._pending = lock
        try:
            with self.coordinator.translate_errors(f"leadership of {self.name!r}"):
                got = lock.acquire(blocking=True, timeout=timeout)
        except CancelledError as exc:
            raise NotLeaderError(f"leadership of {self.name!r} was released while waiting") from exc
        except LockTimeout as exc:
            raise LeadershipTimeout(
                f"leadership of {self.name!r} not acquired within {timeout}s (leader: {self.leader()})"
            ) from exc
        finally:
            with self._mutex:
                self._pending = None
        if not got:  # pragma: no cover - blocking acquire returns True or raises
            raise LeadershipTimeout(f"leadership of {self.name!r} not acquired")
        try:
            with self.coordinator.translate_errors(f"epoch of {self.name!r}"):
                epoch = bump_epoch(self.coordinator, self.name, self.identifier)
        except BaseException:
            lock.release()
            raise
        with self._mutex:
            if self._closed:  # released while we were waiting
                lock.release()
                raise NotLeaderError(f"leadership of {self.name!r} was released")
            self._lock = lock
            self._held = True
            self._epoch = epoch
            self._generation += 1
            generation = self._generation
        self.coordinator.add_listener(self._on_state)
        self._watch_lock_node(lock, generation)
        log.info("%s is leader of %s (epoch %d)", self.identifier, self.name, epoch)
        return epoch

    def release(self) -> None:
        """Give up leadership, or stop waiting for it (no ``on_lost`` callback; no rejoin)."""
        self._cancel_timer()
        with self._mutex:
            self._closed = True
            self._wakeup.set()
            if self._pending is not None:
                self._pending.cancel()
            lock, self._lock = self._lock, None
            was_held, self._held = self._held, False
            self._generation += 1
        self.coordinator.remove_listener(self._on_state)
        if lock is not None and was_held:
            try:
                lock.release()
            except Exception:
                log.warning("could not release leadership lock of %s", self.name, exc_info=True)
            log.info("%s released leadership of %s", self.identifier, self.name)

    def leader(self) -> str | None:
        """The identifier of the current leader (None when nobody leads)."""
        try:
            contenders = self.coordinator.client.Lock(self.lock_path).contenders()
        except NoNodeError:
            return None
        return str(contenders[0]) if contenders else None

    def require(self) -> int:
        """The epoch, or NotLeaderError if this instance does not lead right now."""
        if not self.is_leader or self._epoch is None:
            raise NotLeaderError(f"{self.identifier} is not the leader of {self.name!r}")
        return self._epoch

    def __enter__(self) -> Leadership:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    # ---- loss detection --------------------------------------------------------------

    def _on_state(self, state: str) -> None:
        if state == KazooState.LOST:
            self._cancel_timer()
            if self._held:
                self._lose("ZooKeeper session lost", self._generation)
        elif state == KazooState.SUSPENDED and self._held:
            # is_leader is already False; if the connection stays away for a session
            # timeout, ZooKeeper has expired us and a standby may lead: say so now.
            self._cancel_timer()
            generation = self._generation
            self._timer = threading.Timer(self.coordinator.timeout, self._suspended_too_long, (generation,))
            self._timer.daemon = True
            self._timer.start()
        elif state == KazooState.CONNECTED:
            self._cancel_timer()

    def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _suspended_too_long(self, generation: int) -> None:
        if self.coordinator.writable:
            return
        with self._mutex:
            self._stale_lock = self._lock  # its znode may outlive us if the session survives
        self._lose(f"connection suspended for more than the {self.coordinator.timeout:.0f}s session timeout",
                   generation)

    def _watch_lock_node(self, lock: Lock, generation: int) -> None:
        node = lock.node
        if not node:
            return
        path = f"{lock.path}/{node}"

        def watch(event: WatchedEvent) -> None:
            if event.type == "DELETED" and self._generation == generation:
                self._lose("lock znode deleted", generation)
            elif self._generation == generation and event.type != "NONE":
                self._rewatch(path, watch, generation)

        self._rewatch(path, watch, generation)

    def _rewatch(self, path: str, watch: Callable[[WatchedEvent], None], generation: int) -> None:
        try:
            if self.coordinator.client.exists(path, watch=watch) is None and self._generation == generation:
                self._lose("lock znode missing", generation)
        except Exception:
            # connection trouble: the session listener decides about loss
            log.debug("could not watch %s", path, exc_info=True)

    def _lose(self, reason: str, generation: int) -> None:
        with self._mutex:
            if not self._held or generation != self._generation:
                return
            self._held = False
            self._lock = None
            self._generation += 1
        log.warning("%s lost leadership of %s (epoch %s): %s", self.identifier, self.name, self._epoch, reason)
        threading.Thread(target=self._after_loss, name=f"leadership-lost-{self.name}", daemon=True).start()

    def _after_loss(self) -> None:
        self.coordinator.remove_listener(self._on_state)
        self._cancel_timer()
        if self.on_lost is not None:
            try:
                self.on_lost()
            except Exception:
                log.exception("on_lost callback of %s failed", self.name)
        self._drop_stale_lock()
        while self.rejoin and not self._closed and self.coordinator.started:
            try:
                epoch = self._acquire(timeout=30.0)
            except LeadershipTimeout:
                continue  # another instance leads: keep standing by
            except Exception:
                if self._closed or not self.coordinator.started:
                    return
                log.warning("re-acquiring leadership of %s failed; retrying", self.name, exc_info=True)
                self._wakeup.wait(1.0)
                continue
            if self.on_elected is not None:
                try:
                    self.on_elected(epoch)
                except Exception:
                    log.exception("on_elected callback of %s failed", self.name)
            return

    def _drop_stale_lock(self) -> None:
        """After giving up on a long suspension: once connected again, delete our old
        lock znode in case the session survived, so it does not block the standbys."""
        with self._mutex:
            stale, self._stale_lock = self._stale_lock, None
        if stale is None:
            return
        while not self._closed and self.coordinator.started:
            try:
                self.coordinator.wait_writable(5.0)
            except CoordinatorError:
                continue
            try:
                stale.release()
            except Exception:
                log.debug("stale lock znode of %s already gone", self.name, exc_info=True)
            return

    def __repr__(self) -> str:
        return f"Leadership(name={self.name!r}, identifier={self.identifier!r}, leader={self._held}, epoch={self._epoch})"

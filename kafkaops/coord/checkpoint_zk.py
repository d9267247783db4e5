"""ZooKeeper calls of the checkpoint store, each with the store's own bounded wait.

kazoo queues a request made while the connection is down until the connection comes
back; with ZooKeeper gone for good a synchronous call would wait forever (a bench once
printed "ZooKeeper connection suspended: writes paused" for eight minutes). Every call
goes through :meth:`Coordinator.call` (bounded, retrying a lost connection within the
budget); :class:`BoundedZooKeeper` gives it the store's budget (``wait`` seconds per
operation) and the multi-step operations the store needs (ensure a path, delete a tree).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kazoo.exceptions import NodeExistsError, NoNodeError, NotEmptyError
from kazoo.interfaces import IAsyncResult

from kafkaops.coord.session import Coordinator, NotWritableError
from kafkaops.waits import Deadline

ZOOKEEPER_WAIT = 15.0
"""Default: how long a checkpoint operation waits for ZooKeeper before it fails."""


class BoundedZooKeeper:
    """Asynchronous kazoo calls on a Coordinator's session, waited for at most ``wait`` seconds."""

    def __init__(self, coordinator: Coordinator, wait: float = ZOOKEEPER_WAIT) -> None:
        self.coordinator = coordinator
        self.wait = wait

    def unavailable(self, what: str, waited: float | None = None) -> NotWritableError:
        return self.coordinator.unavailable(what, waited or self.wait)

    def writable(self, what: str, deadline: Deadline | None = None) -> None:
        """Wait until the session is connected, NotWritableError after the budget."""
        deadline = deadline or Deadline(self.wait)
        try:
            self.coordinator.wait_writable(deadline.remaining(floor=0.01))
        except NotWritableError:
            raise self.unavailable(what, deadline.timeout) from None

    def call(self, what: str, fn: Callable[..., IAsyncResult], *args: Any,
             deadline: Deadline | None = None, retry: bool = True, **kwargs: Any) -> Any:
        """:meth:`Coordinator.call` with this store's budget (``wait`` seconds per operation)."""
        return self.coordinator.call(what, fn, *args, deadline=deadline or Deadline(self.wait), retry=retry, **kwargs)

    def commit(self, what: str, txn: Any, deadline: Deadline | None = None) -> list[Any]:
        """Commit a kazoo transaction once (its outcome is unknown after ConnectionLoss,
        which propagates); NotWritableError when ZooKeeper does not answer in time."""
        return list(self.call(what, txn.commit_async, deadline=deadline, retry=False))

    def ensure_path(self, what: str, path: str) -> None:
        """Create ``path`` if missing, as :meth:`Coordinator.ensure_path` does (its own ACL,
        shared parents open for others to create in), each call bounded."""
        coord = self.coordinator
        client = coord.client
        if self.call(what, client.exists_async, path) is not None:
            return
        parts = [p for p in path.split("/") if p]
        for i in range(1, len(parts) + 1):
            node = "/" + "/".join(parts[:i])
            try:
                self.call(what, client.create_async, node, b"", acl=coord.acl if i == len(parts) else coord.dir_acl)
            except NodeExistsError:
                pass

    def delete_tree(self, what: str, path: str) -> None:
        """Delete ``path`` and everything under it (gone already is fine), each call bounded."""
        client = self.coordinator.client
        try:
            children = self.call(what, client.get_children_async, path)
        except NoNodeError:
            return
        for child in children:
            self.delete_tree(what, f"{path.rstrip('/')}/{child}")
        try:
            self.call(what, client.delete_async, path)
        except NoNodeError:
            pass
        except NotEmptyError:  # a child appeared meanwhile
            self.delete_tree(what, path)

"""Expiring a ZooKeeper session from outside, the way ZooKeeper's own tests do it.

A second client joins the session with its id and password and closes it; the server
then expires the session and its owner sees ``SESSION_EXPIRED`` (ephemeral nodes go,
leadership and fencing must recover). The chaos matrix's session-expiry fault and the
Coordinator's recovery tests use it.
"""

from __future__ import annotations

from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError

from kafkaops.coord.session import CoordinatorError


def expire_session(hosts: str, session: tuple[int, bytes], timeout: float = 15.0) -> None:
    """Expire the session ``(id, password)`` on the ensemble at ``hosts``."""
    zk = KazooClient(hosts=hosts, client_id=session, timeout=10.0)
    try:
        zk.start(timeout=timeout)
    except KazooTimeoutError as exc:
        raise CoordinatorError(f"could not join ZooKeeper session 0x{session[0]:x} on {hosts} "
                               f"within {timeout:.0f} s: {exc}") from exc
    finally:
        zk.stop()
        zk.close()

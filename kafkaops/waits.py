"""Deadlines and ``wait_until``: the one way kafkaops waits for an outcome.

Clusters change state asynchronously (a broker registers, a leader is elected, a
reassignment finishes), so code waits for an observable outcome with a deadline and
fails naming what it waited for, instead of sleeping a fixed time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from kafkaops.errors import KafkaopsError

T = TypeVar("T")


class WaitTimeout(KafkaopsError, TimeoutError):
    """An awaited outcome did not come before its deadline."""


class Deadline:
    """A point in monotonic time: ``remaining()`` seconds left, ``expired`` once passed."""

    __slots__ = ("at", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.at = time.monotonic() + timeout

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def remaining(self, cap: float | None = None, floor: float = 0.0) -> float:
        """Seconds left (at least ``floor``, at most ``cap``)."""
        left = max(floor, self.at - time.monotonic())
        return left if cap is None else min(cap, left)


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    what: str,
    *,
    interval: float = 0.2,
    error: Callable[[str], Exception] = WaitTimeout,
) -> T:
    """Poll ``predicate()`` until it returns something truthy, and return that.

    After ``timeout`` seconds raise ``error(message)`` (WaitTimeout by default) with a
    message naming ``what``. The predicate is always called at least once.
    """
    deadline = Deadline(timeout)
    while True:
        result = predicate()
        if result:
            return result
        if deadline.expired:
            raise error(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(deadline.remaining(cap=interval))

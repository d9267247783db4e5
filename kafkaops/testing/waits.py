"""``wait_until`` for tests: :func:`kafkaops.waits.wait_until` failing with AssertionError.

A noisy machine makes fixed sleeps flaky and absolute timings meaningless; tests wait
for an outcome with a generous deadline and fail with what they waited for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from kafkaops import waits

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Return ``predicate()``'s first truthy value; AssertionError naming ``what`` after ``timeout`` s."""
    return waits.wait_until(predicate, timeout, what, interval=interval, error=AssertionError)

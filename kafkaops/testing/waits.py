"""``wait_until``: poll a condition with a deadline, the way cluster tests wait.

A noisy machine makes fixed sleeps flaky and absolute timings meaningless; tests wait
for an outcome with a generous deadline and fail with what they waited for.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2) -> None:
    """Return once ``predicate()`` is truthy; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)

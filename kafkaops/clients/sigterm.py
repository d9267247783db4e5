"""Opt-in SIGTERM handling for long-running consumers: stop gracefully, then hand the signal back.

A library object leaves process-wide state alone unless asked: consumers install this
only with ``handle_sigterm=True`` (the CLI and the apps, which own their process).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)


class SigtermHandler:
    """While installed, SIGTERM calls ``on_sigterm()`` instead of the process' previous handler.

    Python runs signal handlers in the main thread only, so it is installed from there
    (elsewhere ``install`` does nothing and says so); ``restore`` puts the previous handler back.
    """

    def __init__(self, on_sigterm: Callable[[], None], what: str) -> None:
        self.on_sigterm = on_sigterm
        self.what = what
        self._previous: Any = None
        self.installed = False

    def install(self) -> bool:
        """Take SIGTERM over; False (nothing changed) outside the main thread."""
        if threading.current_thread() is not threading.main_thread():
            log.warning("%s: SIGTERM handling asked for outside the main thread; not installed", self.what)
            return False
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        self.installed = True
        return True

    def restore(self) -> None:
        """Give SIGTERM back to the handler it had before ``install`` (no-op if not installed)."""
        if not self.installed:
            return
        try:
            signal.signal(signal.SIGTERM, self._previous)
        except ValueError:  # closed from another thread: the handler stays until the process exits
            log.debug("%s: SIGTERM handler not restored (not in the main thread)", self.what)
            return
        self.installed = False
        self._previous = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        log.info("SIGTERM: %s stops gracefully", self.what)
        self.on_sigterm()

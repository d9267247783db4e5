"""SigtermHandler: opt-in, main thread only, the previous handler given back."""

from __future__ import annotations

import os
import signal
import threading

from kafkaops.clients.sigterm import SigtermHandler
from kafkaops.testing.waits import wait_until


def test_installed_handler_stops_and_restore_gives_the_signal_back() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    stopped = threading.Event()
    handler = SigtermHandler(stopped.set, "test consumer")
    assert handler.install() and handler.installed
    assert signal.getsignal(signal.SIGTERM) is not previous  # never SIGTERM pytest itself
    os.kill(os.getpid(), signal.SIGTERM)
    wait_until(stopped.is_set, 10, "the SIGTERM handler to run")
    handler.restore()
    assert not handler.installed and signal.getsignal(signal.SIGTERM) is previous
    handler.restore()  # twice: nothing more to do
    assert signal.getsignal(signal.SIGTERM) is previous


def test_outside_the_main_thread_nothing_is_installed() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    handler = SigtermHandler(lambda: None, "test consumer")
    outcome: list[bool] = []
    t = threading.Thread(target=lambda: outcome.append(handler.install()))
    t.start()
    t.join(10)
    assert outcome == [False] and not handler.installed and signal.getsignal(signal.SIGTERM) is previous

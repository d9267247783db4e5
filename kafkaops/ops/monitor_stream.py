"""EventStream: a replica monitor's events as an iterator, from the moment it was opened.

:meth:`kafkaops.ops.monitor.ReplicaMonitor.events` hands one out; the monitor's worker
thread puts each event into every open stream, and ends them when it stops.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from typing import Any

from kafkaops.ops.events import Event


class EventStream:
    """An iterator over a monitor's events from the moment it was opened.

    Iteration blocks until the next event and ends when the stream is closed or
    the monitor stops; :meth:`get` waits at most ``timeout`` seconds.
    """

    _END: Any = object()

    def __init__(self, on_close: Callable[[EventStream], None]) -> None:
        self._q: queue.Queue[Any] = queue.Queue()
        self._on_close = on_close
        self.closed = False

    def _put(self, event: Event) -> None:
        self._q.put(event)

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or None after ``timeout`` seconds or when the stream ended."""
        try:
            item = self._q.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is self._END:
            self._q.put(item)
            return None
        assert isinstance(item, Event)
        return item

    def __iter__(self) -> Iterator[Event]:
        while True:
            item = self._q.get()
            if item is self._END:
                self._q.put(item)
                return
            yield item

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._on_close(self)
            self._q.put(self._END)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

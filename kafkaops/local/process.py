"""One JVM process of a local cluster: spawn, signal, liveness, and a log file.

ZooKeeper nodes and Kafka brokers differ only in their main class and config file,
so both are a JvmProcess. A process can be owned (spawned here, killed with us by
PR_SET_PDEATHSIG) or attached (known by pid from a state file).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kafkaops.waits import WaitTimeout, wait_until

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGKILL this child when the process that spawned it dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@dataclass
class JvmProcess:
    """A java main class run with one config file, its output in one log file."""

    name: str
    main_class: str
    config: Path
    log_file: Path
    jvm_opts: list[str]
    pid: int | None = None
    _popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def spawn(self, java: str, classpath: str, *, detached: bool) -> int:
        """Start the process; ``detached`` ones outlive this Python process."""
        if self.is_running():
            return self.pid  # type: ignore[return-value]
        cmd = [java, *self.jvm_opts, "-cp", classpath, self.main_class, str(self.config)]
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as out:
            preexec = None if detached or not sys.platform.startswith("linux") else _die_with_parent
            self._popen = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=preexec,
                close_fds=True,
            )
        self.pid = self._popen.pid
        log.info("started %s (pid %d), log %s", self.name, self.pid, self.log_file)
        return self.pid

    def is_running(self) -> bool:
        """True while the process exists and is ours (a paused one counts as running)."""
        if self.pid is None:
            return False
        if self._popen is not None:
            return self._popen.poll() is None
        return _pid_runs(self.pid, str(self.config))

    def is_paused(self) -> bool:
        return self.pid is not None and self.is_running() and _proc_state(self.pid) == "T"

    def signal(self, sig: int) -> bool:
        """Send ``sig`` if the process runs; False when it did not."""
        if not self.is_running():
            return False
        assert self.pid is not None
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def wait_exit(self, timeout: float) -> bool:
        """Wait until the process has exited; False on timeout."""
        try:
            wait_until(lambda: not self.is_running(), timeout, f"{self.name} to exit", interval=0.05)
        except WaitTimeout:
            return False
        self._reap()
        return True

    def terminate(self, timeout: float) -> None:
        """SIGTERM (after SIGCONT, in case it is paused), then SIGKILL after ``timeout``."""
        self.signal(signal.SIGCONT)
        if self.signal(signal.SIGTERM) and not self.wait_exit(timeout):
            log.warning("%s did not stop within %.0fs, killing it", self.name, timeout)
            self.kill()

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait_exit(10)

    def _reap(self) -> None:
        if self._popen is not None:
            self._popen.wait()


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _pid_runs(pid: int, marker: str) -> bool:
    """True if ``pid`` lives, is not a zombie, and its command line names ``marker``.

    The marker (the node's config path) guards against a recycled pid.
    """
    state = _proc_state(pid)
    if state is None:
        if sys.platform.startswith("linux"):
            return False
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    if state in ("Z", "X"):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return marker in cmdline

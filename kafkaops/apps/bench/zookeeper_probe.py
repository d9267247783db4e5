"""What a ZooKeeper server holds: its ``mntr`` figures and its JVM heap after a full GC.

The checkpoint bench reads these before and after a run to show that checkpoints no
longer grow ZooKeeper: ``mntr`` (a four-letter-word command: data size, znode count)
works for any server that whitelists it; the heap after ``jcmd <pid> GC.run`` needs the
server's pid on this host and a JDK's ``jcmd``.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess

from kafkaops.errors import KafkaopsError

_USED = re.compile(r"total (\d+)K, used (\d+)K")


class ProbeError(KafkaopsError):
    """A ZooKeeper server could not be probed."""


def mntr(host_port: str, timeout: float = 5.0) -> dict[str, str]:
    """The ``mntr`` command's key/value lines of one server (``host:port``)."""
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout) as sock:
            sock.sendall(b"mntr")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except (OSError, ValueError) as exc:
        raise ProbeError(f"ZooKeeper {host_port}: mntr failed: {exc}") from exc
    text = b"".join(chunks).decode("utf-8", "replace")
    if "not in the whitelist" in text or not text.strip():
        raise ProbeError(f"ZooKeeper {host_port}: mntr not allowed (4lw.commands.whitelist)")
    pairs = (line.split("\t", 1) for line in text.splitlines() if "\t" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def heap_after_gc_mb(pid: int, timeout: float = 60.0) -> float:
    """Heap in use (MB) of JVM ``pid`` right after a full GC (``jcmd GC.run``, ``GC.heap_info``)."""
    jcmd = shutil.which("jcmd")
    if jcmd is None:
        raise ProbeError("jcmd not found (it comes with a JDK): cannot read ZooKeeper's heap")

    def run(*args: str) -> str:
        try:
            res = subprocess.run([jcmd, str(pid), *args], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ProbeError(f"jcmd {pid} {' '.join(args)} timed out") from None
        if res.returncode != 0:
            raise ProbeError(f"jcmd {pid} {' '.join(args)} failed: {(res.stdout + res.stderr).strip()[:200]}")
        return res.stdout

    run("GC.run")
    used_kb = 0
    for line in run("GC.heap_info").splitlines():
        low = line.strip().lower()
        if low.startswith(("metaspace", "class space")):
            continue
        m = _USED.search(line)
        if m and ("generation" in low or "heap" in low):
            used_kb += int(m.group(2))
    if not used_kb:
        raise ProbeError(f"jcmd {pid} GC.heap_info: no heap figures found")
    return used_kb / 1024

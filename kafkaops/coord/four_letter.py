"""ZooKeeper's four-letter-word commands (``srvr``, ``ruok``, ``mntr``): a server's own
answer about itself on its client port, without a session (the server must whitelist
the word in ``4lw.commands.whitelist``; ``srvr`` is allowed by default)."""

from __future__ import annotations

import socket


def four_letter_word(host: str, port: int, word: str, timeout: float = 2.0) -> str | None:
    """The server's whole answer to ``word``, or None when it cannot be reached."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(word.encode())
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
    except OSError:
        return None
    return reply.decode("utf-8", "replace")


def server_mode(host: str, port: int, timeout: float = 2.0) -> str | None:
    """The server's role from ``srvr``: leader, follower, observer or standalone; None while it
    does not serve (unreachable, or not in a quorum)."""
    for line in (four_letter_word(host, port, "srvr", timeout) or "").splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None

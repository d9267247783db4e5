"""The files kafkaops ships: playbooks (YAML) and Avro schemas (.avsc).

They live at the top of the repository (``playbooks/``, ``schemas/``) and inside the
installed package (``kafkaops/playbooks``, ``kafkaops/schemas``: package data), so a
wheel install finds them exactly as a checkout does.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from kafkaops.errors import ConfigError


def shipped_dir(kind: str) -> Path:
    """The installed directory of ``kind`` ("playbooks" or "schemas"); ConfigError if it
    is missing or empty (a broken install must not look like an empty catalogue)."""
    if kind not in ("playbooks", "schemas"):
        raise ValueError(f"unknown kind of shipped file: {kind!r}")
    path = Path(str(resources.files("kafkaops").joinpath(kind)))
    pattern = "*.yaml" if kind == "playbooks" else "*.avsc"
    if not path.is_dir() or not any(path.glob(pattern)):
        raise ConfigError(f"kafkaops' shipped {kind} are missing from {path}: the installation is incomplete")
    return path


def schema_path(name_or_path: str | Path) -> Path:
    """An Avro schema file by path, or by the name of a shipped schema (``order-v2``)."""
    p = Path(name_or_path).expanduser()
    if p.exists():
        return p
    if p.suffix == ".avsc" or len(p.parts) > 1:
        raise ConfigError(f"no schema file {p}")
    base = shipped_dir("schemas")
    candidate = base / f"{p.name}.avsc"
    if candidate.exists():
        return candidate
    known = ", ".join(sorted(s.stem for s in base.glob("*.avsc")))
    raise ConfigError(f"no schema named {str(name_or_path)!r}: give a .avsc file or one of {known}")

"""A service that imports kafkaops' clients pays for the clients only: no CLI stack
(typer, rich), no PyYAML, no kafka-python. Each import runs in a fresh interpreter,
so nothing another test imported hides a heavy dependency."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("typer", "rich", "yaml", "kafka")
"""Top-level names of the CLI and operations dependencies (``kafka`` is kafka-python)."""

LIGHT_MODULES = [
    "kafkaops",
    "kafkaops.config",
    "kafkaops.admin",
    "kafkaops.clients",
    "kafkaops.clients.producer",
    "kafkaops.clients.consumer",
    "kafkaops.clients.checkpointed",
    "kafkaops.serde.avro",
    "kafkaops.serde.registry",
    "kafkaops.coord.session",
    "kafkaops.coord.checkpoints",
]


def heavy_imports(module: str) -> list[str]:
    """The HEAVY packages (and their submodules) in ``sys.modules`` after ``import module``."""
    code = (
        "import json, sys\n"
        f"import {module}\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"import {module} failed:\n{proc.stderr}"
    found: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_library_module_imports_no_cli_yaml_or_kafka_python(module: str) -> None:
    assert heavy_imports(module) == []


def test_the_check_sees_a_heavy_import() -> None:
    """The CLI does import typer and rich: the subprocess check reports what it finds."""
    found = heavy_imports("kafkaops.cli")
    assert "typer" in found and "rich" in found

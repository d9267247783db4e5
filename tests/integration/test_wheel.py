"""kafkaops installed as a user installs it: the wheel (built from the sdist, as
``python -m build`` does), ``pip install -c constraints.txt`` into a fresh venv, and the
``kafkaops`` command run from a directory outside the repository. The shipped playbooks
and schemas must come from the installed package, not from a checkout."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition

from kafkaops.local.cluster import LocalCluster
from kafkaops.testing.plugin import TopicFactory
from kafkaops.testing.waits import wait_until

ROOT = Path(__file__).resolve().parents[2]
BUILD_LEFTOVERS = (".git", ".venv", ".kafkaops", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "out")


@dataclass
class InstalledWheel:
    """A fresh venv with the kafkaops wheel installed, and a working directory outside the repo."""

    venv: Path
    cwd: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.venv / "bin" / "kafkaops"), *args], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def package_dir(self) -> Path:
        proc = subprocess.run([str(self.venv / "bin" / "python"), "-c", "import kafkaops; print(kafkaops.__file__)"],
                              cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=60, check=True)
        return Path(proc.stdout.strip()).parent


def _run(cmd: list[str], **kwargs: Any) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="session")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InstalledWheel]:
    base = tmp_path_factory.mktemp("wheel")
    # built from a clean copy of the sources: setuptools reuses a checkout's build/ and
    # *.egg-info/SOURCES.txt, which would hide files missing from the package data
    src = base / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(*BUILD_LEFTOVERS))
    dist = base / "dist"
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(src)], timeout=600)
    wheels = list(dist.glob("kafkaops-*.whl"))
    assert len(wheels) == 1, f"expected one wheel in {dist}: {sorted(p.name for p in dist.iterdir())}"
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}", VIRTUAL_ENV=str(venv),
               COLUMNS="200",  # rich tables: no wrapped cells
               KAFKAOPS_HOME=str(base / "home"))
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"),
          str(wheels[0])], env=env, timeout=600)
    cwd = base / "elsewhere"
    cwd.mkdir()
    yield InstalledWheel(venv, cwd, env)


def shipped_playbook_names() -> list[str]:
    return sorted(yaml.safe_load(p.read_text())["name"] for p in (ROOT / "playbooks").glob("*.yaml"))


def test_wheel_is_a_real_install(installed_wheel: InstalledWheel) -> None:
    """The package runs from the venv's site-packages, with its data files beside it."""
    pkg = installed_wheel.package_dir()
    assert pkg.is_relative_to(installed_wheel.venv) and not pkg.is_symlink(), pkg
    assert sorted(p.name for p in (pkg / "playbooks").glob("*.yaml")) == sorted(
        p.name for p in (ROOT / "playbooks").glob("*.yaml"))
    assert sorted(p.name for p in (pkg / "schemas").glob("*.avsc")) == sorted(
        p.name for p in (ROOT / "schemas").glob("*.avsc"))
    assert (pkg / "py.typed").is_file() and (pkg / "local" / "kafka-pom.xml").is_file()


def test_playbook_list_shows_the_shipped_playbooks(installed_wheel: InstalledWheel) -> None:
    names = shipped_playbook_names()
    assert len(names) == 6
    r = installed_wheel.run("playbook", "list")
    assert r.returncode == 0, r.stderr
    listed = {line.split("│")[1].strip() for line in r.stdout.splitlines() if line.count("│") >= 3}
    assert set(names) <= listed, r.stdout


@pytest.mark.parametrize("broken", ["missing", "empty"])
def test_playbook_list_without_playbooks_is_an_error(installed_wheel: InstalledWheel, broken: str) -> None:
    """A broken install says so and exits 1; it never shows an empty table."""
    shipped = installed_wheel.package_dir() / "playbooks"
    aside = shipped.with_name("playbooks.aside")
    shipped.rename(aside)
    try:
        if broken == "empty":
            shipped.mkdir()
        r = installed_wheel.run("playbook", "list")
    finally:
        if shipped.exists():
            shutil.rmtree(shipped)
        aside.rename(shipped)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "playbooks are missing" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "│" not in r.stdout, r.stdout


def test_produce_with_a_shipped_schema_by_name(
    installed_wheel: InstalledWheel, kafka_cluster: LocalCluster, kafka_topic: TopicFactory
) -> None:
    topic = kafka_topic(partitions=3, prefix="wheel")
    conn = ["-b", kafka_cluster.bootstrap_servers, "-z", kafka_cluster.zk_hosts]
    r = installed_wheel.run("produce", topic, "--schema", "order-v2", "--generate", "20", *conn)
    assert r.returncode == 0, r.stderr
    assert "produced 20 records" in r.stdout, r.stdout

    schema = fastavro.parse_schema(json.loads((ROOT / "schemas" / "order-v2.avsc").read_text()))
    orders = [fastavro.schemaless_reader(io.BytesIO(v[5:]), schema, None) for v in _read_all(kafka_cluster, topic)]
    assert len(orders) == 20
    assert all(isinstance(o, dict) and isinstance(o["order_id"], str) and "lines" in o for o in orders)

    r = installed_wheel.run("produce", topic, "--schema", "order-v9", "--generate", "1", *conn)
    assert r.returncode == 1 and "no schema named 'order-v9'" in r.stderr and "order-v2" in r.stderr, r.stderr


def _read_all(cluster: LocalCluster, topic: str) -> list[bytes]:
    """Every value in ``topic`` (Confluent wire format: magic byte 0 and a schema id first)."""
    c = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": f"wheel-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False})
    try:
        parts = c.list_topics(topic, timeout=30).topics[topic].partitions
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in parts}
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        seen = {p: 0 for p in parts}
        values: list[bytes] = []

        def caught_up() -> bool:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                seen[m.partition() or 0] = (m.offset() or 0) + 1
                value = m.value()
                assert value is not None and value[:1] == b"\x00", value
                values.append(value)
            return all(seen[p] >= ends[p] for p in parts)

        wait_until(caught_up, 120, f"the records of {topic} up to offsets {ends}", interval=0)
        return values
    finally:
        c.close()

"""How a command finds its cluster: --profile, else the flags, else the local cluster's profile."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kafkaops.cli import app
from kafkaops.cli.common import Target
from kafkaops.config import ClusterProfile, Secret
from kafkaops.errors import ConfigError, NoClusterError

PASSWORD = "pw-7c1d9e20"


def _profile(tmp_path: Path) -> Path:
    f = tmp_path / "prod.yaml"
    f.write_text(f"""
name: prod
bootstrap_servers: kafka-1:9092,kafka-2:9092
security: {{protocol: SASL_PLAINTEXT, username: ops, password: {PASSWORD}}}
zookeeper:
  connect: zk-1:2181,zk-2:2181
  kafka_chroot: /prod-kafka
  root: /ops
  sasl: {{username: kafkaops, password: zk-secret}}
""")
    return f


def test_a_profile_file_is_used_as_written(tmp_path: Path) -> None:
    p = Target(profile=_profile(tmp_path)).cluster()
    assert p == ClusterProfile.load(_profile(tmp_path))
    assert p.zookeeper is not None and p.zookeeper.kafka_chroot == "/prod-kafka" and p.zookeeper.root == "/ops"


def test_flags_override_a_profiles_fields_and_keep_the_rest(tmp_path: Path) -> None:
    p = Target(_profile(tmp_path), bootstrap="other:9093", zookeeper="zk-9:2181", zk_root="/elsewhere",
               zk_auth="alice:s3cret").cluster()
    assert p.bootstrap_servers == "other:9093"
    assert p.security.username == "ops" and p.security.password == Secret(PASSWORD)  # security kept
    zk = p.zookeeper
    assert zk is not None
    assert (zk.connect, zk.kafka_chroot, zk.root) == ("zk-9:2181", "/prod-kafka", "/elsewhere")  # no chroot given: kept
    assert zk.sasl_username == "kafkaops"  # the profile's ZooKeeper SASL stays
    assert (zk.digest_username, zk.digest_password) == ("alice", Secret("s3cret"))
    chrooted = Target(_profile(tmp_path), zookeeper="zk-9:2181/other").cluster().zookeeper
    assert chrooted is not None and chrooted.kafka_chroot == "/other"


def test_flags_alone_make_a_profile_without_a_local_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKAOPS_HOME", str(tmp_path / "no-cluster-here"))
    p = Target(bootstrap="h:1", zookeeper="z:2181/kafka", zk_auth="u:p").cluster()
    assert p.bootstrap_servers == "h:1" and p.zookeeper is not None
    assert (p.zookeeper.connect, p.zookeeper.kafka_chroot, p.zookeeper.root) == ("z:2181", "/kafka", "/kafkaops")
    assert Target(bootstrap="h:1").cluster().zookeeper is None  # -b alone: no ZooKeeper (Admin API only)
    zk = Target(zookeeper="z:2181", zk_root="/jobs").coordination()  # ZooKeeper-only commands need no Kafka
    assert (zk.connect, zk.root) == ("z:2181", "/jobs")


def test_without_profile_or_flags_the_local_cluster_is_required(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKAOPS_HOME", str(tmp_path))
    for target in (Target(), Target(zookeeper="z:2181")):  # -z alone overrides the local profile's ZooKeeper
        with pytest.raises(NoClusterError, match="kafkaops up"):
            target.cluster()
    with pytest.raises(NoClusterError, match="kafkaops up"):
        Target().coordination()


def test_bad_flags_and_files_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="user:password"):
        Target(bootstrap="h:1", zookeeper="z:2181", zk_auth="no-colon").cluster()
    with pytest.raises(ConfigError, match="needs ZooKeeper: give --zookeeper"):
        Target(bootstrap="h:1", zk_root="/x").coordination()  # --zk-root alone names no ZooKeeper
    no_zk = tmp_path / "no-zk.yaml"
    no_zk.write_text("bootstrap_servers: h:1\n")
    with pytest.raises(ConfigError, match="needs ZooKeeper"):
        Target(no_zk).coordination()
    with pytest.raises(ConfigError, match="cannot read it"):
        Target(tmp_path / "missing.yaml").cluster()


def test_the_cli_takes_the_profile_from_the_environment(tmp_path: Path) -> None:
    """KAFKAOPS_PROFILE names the file; a broken one is one line on stderr, at once, without the password."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"bootstrap_servers: h:1\nsecurity: {{protocol: SASL_SSL, password: {PASSWORD}}}\n")
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "kafkaops.cli", "status"], capture_output=True, text=True,
                          timeout=60, env={"KAFKAOPS_PROFILE": str(bad), "KAFKAOPS_HOME": str(tmp_path),
                                           "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and "needs a username and a password" in proc.stderr
    assert str(bad) in proc.stderr and PASSWORD not in proc.stderr + proc.stdout
    assert time.monotonic() - t0 < 30


def test_every_cluster_command_takes_a_profile() -> None:
    runner = CliRunner()
    commands = [["status"], ["topic", "create"], ["produce"], ["consume"], ["monitor"], ["schema", "list"],
                ["schema", "register"], ["schema", "show"], ["schema", "check"], ["checkpoint", "list"],
                ["checkpoint", "show"], ["checkpoint", "restore"], ["checkpoint", "prune"], ["playbook", "run"],
                ["demo", "aggregate"], ["bench", "produce"], ["bench", "consume"], ["bench", "checkpoint"]]
    for cmd in commands:
        r = runner.invoke(app, [*cmd, "--help"], env={"COLUMNS": "200"})
        assert r.exit_code == 0 and "--profile" in r.stdout and "KAFKAOPS_PROFILE" in r.stdout, cmd

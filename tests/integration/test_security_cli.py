"""`kafkaops up --secure` and every command through the profile it writes, as an operator runs them.

One secured local cluster (SASL_SSL/SCRAM-SHA-512, authorizer, ZooKeeper SASL): status from
another home, topics, schemas, produce/consume, a playbook, a bench, users and ACLs (a
service user that then produces and consumes with what it was granted), the audit trail
(verified, and tampering caught), a refusal, and the end-to-end demo.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kafkaops.config import ClusterProfile, Secret

pytestmark = [pytest.mark.security, pytest.mark.destructive]

KAFKAOPS = [sys.executable, "-m", "kafkaops.cli"]


class Cli:
    """Runs `kafkaops` with its own $KAFKAOPS_HOME; remembers every output to check for secrets."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.outputs: list[str] = []

    def __call__(self, *args: str, check: bool = True, env: dict[str, str] | None = None,
                 timeout: float = 300) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*KAFKAOPS, *args], env={**os.environ, "KAFKAOPS_HOME": str(self.home), "COLUMNS": "250",
                                                        **(env or {})},
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        self.outputs.append(proc.stdout + proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(f"kafkaops {' '.join(args)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self(*args).stdout)


def test_up_secure_then_every_command_through_its_profile(tmp_path: Path) -> None:
    cli, elsewhere = Cli(tmp_path / "home"), Cli(tmp_path / "elsewhere")
    profile = cli.home / "cluster" / "profile.yaml"
    secrets: list[str] = []
    try:
        t0 = time.monotonic()
        up = cli("up", "--secure")
        print(f"\nkafkaops up --secure: {time.monotonic() - t0:.1f}s")
        assert f"profile: {profile}" in up.stdout and "SASL_SSL / SCRAM-SHA-512 as User:admin" in up.stdout
        admin = ClusterProfile.load(profile)
        assert admin.security.protocol == "SASL_SSL" and admin.security.username == "admin"
        assert admin.security.ca_file is not None and admin.security.ca_file.exists()
        assert admin.zookeeper is not None and admin.zookeeper.sasl_username == "kafkaops"
        assert profile.stat().st_mode & 0o777 == 0o600  # it holds passwords
        secrets += [admin.security.password.reveal(), admin.zookeeper.sasl_password.reveal()]  # type: ignore[union-attr]

        # the profile alone reaches the cluster, from a home without a local cluster
        st = elsewhere.json("status", "--json", "--profile", str(profile))
        assert [(b["id"], b["alive"]) for b in st["brokers"]] == [(1, True), (2, True), (3, True)]

        cli("topic", "create", "orders", "--partitions", "3")
        cli("schema", "register", "orders-value", "order-v1")
        assert [s["subject"] for s in cli.json("schema", "list", "--json")] == ["orders-value"]
        cli("produce", "orders", "--schema", "order-v1", "--generate", "50")
        consumed = cli("consume", "orders", "--group", "audit", "--max", "50").stdout.splitlines()
        assert len(consumed) == 50 and all(json.loads(line)["value"]["order_id"] for line in consumed)
        cli("playbook", "run", "expand-partitions", "--var", "topic=orders", "--var", "partitions=6", "--yes")
        bench = cli.json("bench", "produce", "--records", "2000", "--rounds", "1", "--json")
        assert bench["ratios"]["typed/raw"] > 0, bench

        # a service user: a password from a file and from a variable, never an argument, never printed
        password_file = tmp_path / "svc.password"
        password_file.write_text("svc-password-1\n")
        cli("user", "add", "svc", "--password-file", str(password_file))
        cli("user", "add", "svc", "--password-env", "SVC_PASSWORD", env={"SVC_PASSWORD": "svc-password-2"})
        no_password = cli("user", "add", "other", check=False)
        assert no_password.returncode == 1 and "--password-file" in no_password.stderr
        assert {"svc", "admin", "broker"} <= {u["name"] for u in cli.json("user", "list", "--json")}
        cli("acl", "grant-producer", "--user", "svc", "--topic", "orders")
        cli("acl", "grant-consumer", "--user", "svc", "--topic", "orders", "--group", "billing")
        acls = {(a["operation"], a["resource_type"], a["resource_name"])
                for a in cli.json("acl", "list", "--principal", "svc", "--json")}
        assert acls == {("write", "topic", "orders"), ("describe", "topic", "orders"), ("read", "topic", "orders"),
                        ("idempotent-write", "cluster", "kafka-cluster"), ("read", "group", "billing")}
        typo = cli("acl", "grant", "-p", "svc", "-t", "topic", "-r", "orders", "-o", "raed", check=False)
        assert typo.returncode == 1 and "operation 'raed': choose one of" in typo.stderr
        svc = ClusterProfile.load(profile)
        svc_file = admin_profile_as(svc, "svc", "svc-password-2", tmp_path / "svc.yaml")
        cli("produce", "orders", "--schema", "order-v1", "--generate", "10", "--profile", str(svc_file))
        assert len(cli("consume", "orders", "--group", "billing", "--max", "60", "--profile", str(svc_file))
                   .stdout.splitlines()) == 60
        denied = cli("consume", "orders", "--group", "elsewhere", "--max", "1", "--profile", str(svc_file), check=False)
        assert denied.returncode == 1 and "may not read group 'elsewhere'" in denied.stderr
        cli("acl", "revoke", "-p", "svc", "-t", "group", "-r", "billing", "-o", "read")
        gone = cli("acl", "revoke", "-p", "svc", "-t", "group", "-r", "billing", "-o", "read", check=False)
        assert gone.returncode == 1 and "no such ACL" in gone.stderr
        cli("user", "remove", "svc")

        # a refusal through the CLI: one line naming the cause, in seconds
        wrong = admin_profile_as(admin, "admin", "wrong-password", tmp_path / "wrong.yaml")
        t0 = time.monotonic()
        refused = cli("status", "--profile", str(wrong), check=False)
        took = time.monotonic() - t0
        assert refused.returncode == 1 and "authentication failed for mechanism SCRAM-SHA-512 as user 'admin'" in refused.stderr
        assert took < 15 and "Traceback" not in refused.stderr
        print(f"wrong password through `kafkaops status`: {took:.1f}s")

        # the audit trail: who did what, in the file and the topic; tampering is caught
        records = [json.loads(line) for line in cli("audit", "search", "--json").stdout.splitlines()]
        actions = [r["action"] for r in records]
        for wanted in ("topic.create", "topic.alter", "schema.register", "playbook.step",
                       "user.add", "acl.create", "acl.delete", "user.remove"):
            assert wanted in actions, (wanted, actions)
        assert all(r["principal"] == "User:admin" and r["os_user"] and r["host"] for r in records)
        (svc_added, *_) = [r for r in records if r["action"] == "user.add" and r["target"] == "User:svc"]
        assert svc_added["args"] == {"mechanism": "SCRAM-SHA-512", "iterations": 8192}
        assert [(r["result"], r["args"]["deleted"]) for r in records if r["action"] == "acl.delete"] == [("ok", 1), ("ok", 0)]
        assert "ok" in cli("audit", "verify").stdout
        assert f"{len(records)} record(s) verified" in cli("audit", "verify", "--topic").stdout
        assert_tampering_caught(cli, cli.home / "audit" / "audit.jsonl", tmp_path)

        t0 = time.monotonic()
        demo = cli("demo", timeout=900)
        print(f"kafkaops demo on the secured cluster: {time.monotonic() - t0:.1f}s")
        assert "demo finished" in demo.stdout and "FAILED" not in demo.stdout
    finally:
        cli("down", check=False)
    leaked = [s for s in secrets for text in cli.outputs + elsewhere.outputs if s in text]
    assert leaked == [], "a password reached the CLI's output"


def admin_profile_as(base: ClusterProfile, user: str, password: str, path: Path) -> Path:
    """``base`` with other Kafka credentials, saved (ZooKeeper identity unchanged)."""
    import dataclasses

    return dataclasses.replace(base, security=dataclasses.replace(base.security, username=user,
                                                                  password=Secret(password))).save(path)


def assert_tampering_caught(cli: Cli, audit_file: Path, tmp_path: Path) -> None:
    """`audit verify` names the first broken record of a copy with one record edited, and of
    a copy with one record deleted, and exits 1."""
    lines = audit_file.read_text().splitlines()
    assert len(lines) >= 6
    edited = tmp_path / "edited.jsonl"
    doc = json.loads(lines[3])
    doc["target"] = "someone-else"
    edited.write_text("\n".join([*lines[:3], json.dumps(doc, sort_keys=True), *lines[4:]]) + "\n")
    bad = cli("audit", "verify", "--file", str(edited), check=False)
    assert bad.returncode == 1 and "record 4" in bad.stderr and "altered" in bad.stderr, bad.stderr
    deleted = tmp_path / "deleted.jsonl"
    deleted.write_text("\n".join([*lines[:2], *lines[3:]]) + "\n")
    bad = cli("audit", "verify", "--file", str(deleted), check=False)
    assert bad.returncode == 1 and "record 3" in bad.stderr and "missing (deleted)" in bad.stderr, bad.stderr
    shutil.copy(audit_file, tmp_path / "intact.jsonl")
    assert cli("audit", "verify", "--file", str(tmp_path / "intact.jsonl")).returncode == 0

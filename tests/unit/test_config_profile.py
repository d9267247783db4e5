"""ClusterProfile: loading, rendering for each client library, and secrets kept out of text."""

from __future__ import annotations

from pathlib import Path

import pytest

from kafkaops.config import ClusterProfile, Secret, ZooKeeperSettings, as_profile
from kafkaops.profile_file import build_profile
from kafkaops.errors import ConfigError

PASSWORD = "pw-9f3c1e7a"
ZK_PASSWORD = "zk-5d2b8c41"


def _secure_yaml(tmp_path: Path) -> Path:
    (tmp_path / "ca.pem").write_text("not a real CA")
    f = tmp_path / "admin.yaml"
    f.write_text(f"""
name: secure
bootstrap_servers: 127.0.0.1:9092,127.0.0.1:9093
security:
  protocol: sasl_ssl
  username: admin
  password: {PASSWORD}
  ca_file: ca.pem
zookeeper:
  connect: 127.0.0.1:2181
  kafka_chroot: /kafka
  sasl: {{username: kafkaops, password: {ZK_PASSWORD}}}
""")
    return f


def test_yaml_profile_renders_every_client_library(tmp_path: Path) -> None:
    p = ClusterProfile.load(_secure_yaml(tmp_path))
    rd = p.librdkafka(**{"client.id": "x"})
    assert rd["security.protocol"] == "SASL_SSL"
    assert rd["sasl.mechanism"] == "SCRAM-SHA-512"  # the default SASL mechanism
    assert rd["sasl.password"] == PASSWORD
    assert rd["ssl.ca.location"] == str(tmp_path / "ca.pem")  # relative to the profile file
    assert rd["client.id"] == "x"
    kp = p.kafka_python()
    assert kp["bootstrap_servers"] == ["127.0.0.1:9092", "127.0.0.1:9093"]
    assert kp["sasl_plain_password"] == PASSWORD and kp["ssl_cafile"] == str(tmp_path / "ca.pem")
    assert p.zookeeper is not None
    zk = p.zookeeper.kazoo_args()
    assert zk["sasl_options"] == {"mechanism": "DIGEST-MD5", "username": "kafkaops", "password": ZK_PASSWORD}
    assert p.zookeeper.kafka_connect == "127.0.0.1:2181/kafka"
    assert p.principal == "User:admin"


def test_secrets_never_in_repr_str_or_dict(tmp_path: Path) -> None:
    p = ClusterProfile.load(_secure_yaml(tmp_path))
    for text in (repr(p), str(p), repr(p.security), repr(p.zookeeper), str(p.to_dict())):
        assert PASSWORD not in text and ZK_PASSWORD not in text
    assert "***" in repr(p.security)
    saved = ClusterProfile.load(p.save(tmp_path / "copy.yaml"))
    assert saved == p  # save() keeps the clear text for the owner only
    assert (tmp_path / "copy.yaml").stat().st_mode & 0o077 == 0


def test_password_from_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    monkeypatch.setenv("SVC_PW", PASSWORD)
    for ref in ("{file: pw_path}".replace("pw_path", str(tmp_path / "pw")), "{env: SVC_PW}"):
        f = tmp_path / "p.yaml"
        f.write_text(f"bootstrap_servers: h:1\nsecurity: {{protocol: SASL_PLAINTEXT, username: u, password: {ref}}}\n")
        assert ClusterProfile.load(f).librdkafka()["sasl.password"] == PASSWORD


@pytest.mark.parametrize("body, message", [
    ("bootstrap_servers: h:1\nsecurity: {protocol: TLS}\n", "security protocol 'TLS'"),
    ("bootstrap_servers: h:1\nsecurity: {protocol: SASL_SSL, username: u}\n", "needs a username and a password"),
    ("bootstrap_servers: h:1\nzookeeper: {connect: 'z:2181/kafka'}\n", "give host:port"),
    ("bootstrap_servers: h:1\nsurprise: 1\n", "unknown key(s) surprise"),
    ("security: {}\n", "bootstrap_servers (host:port,...) is required"),
    ("bootstrap_servers: h:1\nsecurity: {protocol: SASL_SSL, username: u, password: {env: NOPE_NOT_SET}}\n",
     "NOPE_NOT_SET is not set"),
    ("bootstrap_servers: [h:1\n", "not valid YAML"),
])
def test_bad_profiles_name_file_and_cause(tmp_path: Path, body: str, message: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(body)
    with pytest.raises(ConfigError) as info:
        ClusterProfile.load(f)
    assert str(f) in str(info.value)
    assert message in str(info.value)


def test_missing_profile_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        ClusterProfile.load(tmp_path / "nope.yaml")


def test_env_and_flags() -> None:
    p = ClusterProfile.from_env({"KAFKAOPS_BOOTSTRAP": "b:1", "KAFKAOPS_ZOOKEEPER": "z:2181/kafka",
                                 "KAFKAOPS_SECURITY_PROTOCOL": "SASL_SSL", "KAFKAOPS_SASL_USERNAME": "u",
                                 "KAFKAOPS_SASL_PASSWORD": PASSWORD})
    assert p is not None and p.security.password == Secret(PASSWORD)
    assert p.zookeeper == ZooKeeperSettings("z:2181", kafka_chroot="/kafka")
    assert ClusterProfile.from_env({}) is None
    assert as_profile("b:1").librdkafka() == {"bootstrap.servers": "b:1"}
    flags = build_profile("b:1", zookeeper="z:1", zk_digest="me:" + PASSWORD)
    assert flags.zookeeper is not None and flags.zookeeper.identity == ("digest", "me")
    assert PASSWORD not in repr(flags)
    with pytest.raises(ConfigError):
        as_profile(42)  # type: ignore[arg-type]

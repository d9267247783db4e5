"""Security material of a secured local cluster: a throwaway CA, certificates, JAAS, passwords.

A secured local cluster (``kafkaops up --secure``) runs its client and inter-broker
listeners as ``SASL_SSL`` with ``SCRAM-SHA-512``, an authorizer with
``allow.everyone.if.no.acl.found=false``, and ZooKeeper with SASL (DigestLoginModule):
the brokers write Kafka's znodes with ``zookeeper.set.acl=true`` as ZooKeeper user
``kafka``, kafkaops' coordinator authenticates as ZooKeeper user ``kafkaops``. Everything
lives under ``<cluster>/security`` (mode 0700): ``ca.pem`` (what clients trust), one PEM
key + certificate chain per broker (SAN 127.0.0.1 and localhost), the JAAS files and
``secrets.json`` with the generated passwords. The CA and certificates are made with the
``cryptography`` package.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509

from kafkaops.config import ClusterProfile, KafkaSecurity, Secret, ZooKeeperSettings
from kafkaops.errors import ClusterError

MECHANISM = "SCRAM-SHA-512"
SUPER_USERS = ("broker", "admin")
ZK_KAFKA_USER = "kafka"
ZK_KAFKAOPS_USER = "kafkaops"


@dataclass(frozen=True)
class Passwords:
    """The generated passwords of one secured cluster (kept in ``secrets.json``, 0600)."""

    broker: str
    admin: str
    zk_kafka: str
    zk_kafkaops: str

    @classmethod
    def generate(cls) -> Passwords:
        return cls(*(secrets.token_urlsafe(18) for _ in range(4)))


class LocalSecurity:
    """The CA, certificates, JAAS files and passwords of one secured local cluster."""

    def __init__(self, directory: Path, passwords: Passwords) -> None:
        self.dir = directory
        self.passwords = passwords

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, directory: Path) -> LocalSecurity:
        """New passwords and a new CA in ``directory`` (kept if they exist: a restart keeps them)."""
        if (directory / "secrets.json").exists():
            return cls.load(directory)
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        sec = cls(directory, Passwords.generate())
        _write_private(directory / "secrets.json", json.dumps(asdict(sec.passwords)))
        sec._make_ca()
        sec._write_jaas()
        return sec

    @classmethod
    def load(cls, directory: Path) -> LocalSecurity:
        try:
            doc = json.loads((directory / "secrets.json").read_text())
            return cls(directory, Passwords(**doc))
        except (OSError, ValueError, TypeError) as exc:
            raise ClusterError(f"security material in {directory} is unreadable ({exc})") from None

    @property
    def ca_file(self) -> Path:
        return self.dir / "ca.pem"

    def keystore(self, name: str, *, expired: bool = False) -> Path:
        """A PEM file with a new key and its certificate chain for ``name`` (SAN 127.0.0.1,
        localhost), signed by the cluster's CA; ``expired`` makes one valid only in the past."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID

        ca_key = serialization.load_pem_private_key((self.dir / "ca-key.pem").read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate(self.ca_file.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        not_before, not_after = ((now - dt.timedelta(days=10), now - dt.timedelta(days=1)) if expired
                                 else (now - dt.timedelta(minutes=5), now + dt.timedelta(days=825)))
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name)).issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        pem += cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
        path = self.dir / f"{name}{'-expired' if expired else ''}.pem"
        _write_private(path, pem.decode())
        return path

    # ------------------------------------------------------------------ configuration
    def broker_properties(self, broker_id: int, listener_port: int) -> dict[str, str]:
        """server.properties entries of a secured broker (ZooKeeper mode)."""
        listener = f"SASL_SSL://127.0.0.1:{listener_port}"
        store = self.dir / f"broker-{broker_id}.pem"
        if not store.exists():
            store = self.keystore(f"broker-{broker_id}")
        return {
            "listeners": listener,
            "advertised.listeners": listener,
            "security.inter.broker.protocol": "SASL_SSL",
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            "sasl.enabled.mechanisms": MECHANISM,
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="broker" password="{self.passwords.broker}";'
            ),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(store),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_file),
            "ssl.endpoint.identification.algorithm": "https",
            "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
            "super.users": ";".join(f"User:{u}" for u in SUPER_USERS),
            "allow.everyone.if.no.acl.found": "false",
            "zookeeper.set.acl": "true",
        }

    def zookeeper_config_lines(self) -> list[str]:
        """zoo.cfg lines: SASL authentication (the JAAS ``Server`` section names the users)."""
        return ["authProvider.sasl=org.apache.zookeeper.server.auth.SASLAuthenticationProvider"]

    def jvm_opts(self, kind: str) -> list[str]:
        """JVM options of a ZooKeeper node (``kind="zookeeper"``) or a broker / Kafka tool."""
        return jaas_jvm_opts(self.dir, kind)

    def create_chroot(self, zk_hosts: str, chroot: str, timeout: float = 30.0) -> None:
        """Create the brokers' chroot as ZooKeeper user ``kafka``, with the ACL Kafka gives its
        own znodes (``zookeeper.set.acl``): all for ``sasl:kafka``, read for everyone."""
        from kazoo.client import KazooClient
        from kazoo.exceptions import NodeExistsError
        from kazoo.security import make_acl

        zk = KazooClient(hosts=zk_hosts, timeout=10.0, sasl_options={
            "mechanism": "DIGEST-MD5", "username": ZK_KAFKA_USER, "password": self.passwords.zk_kafka})
        try:
            zk.start(timeout=timeout)
            acl = [make_acl("sasl", ZK_KAFKA_USER, all=True), make_acl("world", "anyone", read=True)]
            try:
                zk.create(chroot, b"", acl=acl, makepath=True)
            except NodeExistsError:
                pass
        except Exception as exc:  # noqa: BLE001 - kazoo's many kinds; say what failed
            raise ClusterError(f"cannot create the brokers' chroot {chroot} as ZooKeeper user kafka: "
                               f"{type(exc).__name__}: {exc}") from None
        finally:
            zk.stop()
            zk.close()

    def create_scram_users(self, java: str, classpath: str, zk_connect: str, timeout: float = 120.0) -> None:
        """The brokers' and admin's SCRAM credentials, written to ZooKeeper before any broker
        starts (``kafka.admin.ConfigCommand --zookeeper``, as Kafka's security docs describe)."""
        for user, password in (("broker", self.passwords.broker), ("admin", self.passwords.admin)):
            cmd = [java, "-Xmx128m", *self.jvm_opts("kafka"), "-cp", classpath, "kafka.admin.ConfigCommand",
                   "--zookeeper", zk_connect, "--alter", "--entity-type", "users", "--entity-name", user,
                   "--add-config", f"{MECHANISM}=[password={password}]"]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise ClusterError(f"creating the SCRAM credential of {user!r} took over {timeout:.0f}s") from None
            if proc.returncode != 0 or "Completed updating config" not in proc.stdout:
                detail = (proc.stdout + proc.stderr).replace(password, "***").strip().splitlines()[-5:]
                raise ClusterError(f"cannot create the SCRAM credential of {user!r}: " + " | ".join(detail))

    def profile(self, bootstrap_servers: str, zk_hosts: str, chroot: str | None, *, user: str = "admin",
                name: str = "local-secure") -> ClusterProfile:
        """The profile of ``admin`` (a super user) on this cluster, with ZooKeeper as ``kafkaops``."""
        password = self.passwords.admin if user == "admin" else self.passwords.broker
        return ClusterProfile(
            bootstrap_servers,
            KafkaSecurity("SASL_SSL", MECHANISM, user, Secret(password), self.ca_file),
            ZooKeeperSettings(zk_hosts, kafka_chroot=chroot, sasl_username=ZK_KAFKAOPS_USER,
                              sasl_password=Secret(self.passwords.zk_kafkaops)),
            name,
        )

    # ------------------------------------------------------------------ files
    def _make_ca(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        subject = _name("kafkaops local CA")
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=825))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256())
        )
        _write_private(self.dir / "ca-key.pem", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())
        self.ca_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def _write_jaas(self) -> None:
        p = self.passwords
        _write_private(self.dir / "zookeeper-jaas.conf", (
            "Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n"
            f'  user_{ZK_KAFKA_USER}="{p.zk_kafka}"\n  user_{ZK_KAFKAOPS_USER}="{p.zk_kafkaops}";\n}};\n'))
        _write_private(self.dir / "kafka-jaas.conf", (
            "Client {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n"
            f'  username="{ZK_KAFKA_USER}"\n  password="{p.zk_kafka}";\n}};\n'))


def jaas_jvm_opts(directory: Path, kind: str) -> list[str]:
    """The JAAS option of a secured cluster's JVMs: ZooKeeper's server section for
    ``kind="zookeeper"``, the ZooKeeper client section (user ``kafka``) for the rest."""
    jaas = directory / ("zookeeper-jaas.conf" if kind == "zookeeper" else "kafka-jaas.conf")
    return [f"-Djava.security.auth.login.config={jaas}"]


def _name(cn: str) -> x509.Name:
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)

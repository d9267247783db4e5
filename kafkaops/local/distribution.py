"""Resolves an Apache Kafka distribution: the broker jar, its runtime dependencies
and a logging binding, from Maven Central (once, into a cache) or ``$KAFKA_HOME/libs``.

The classpath it returns also holds ZooKeeper's server, so one jar set runs both.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from kafkaops.config import Settings
from kafkaops.errors import DistributionError

log = logging.getLogger(__name__)

_MARKER = ".complete"


@dataclass(frozen=True)
class KafkaDistribution:
    """A directory of jars that runs ``kafka.Kafka`` and ZooKeeper's ``QuorumPeerMain``."""

    libs: Path
    version: str

    @property
    def classpath(self) -> str:
        return str(self.libs / "*")

    def java(self) -> str:
        """The ``java`` executable to run it with; raises if there is none."""
        return find_java()


def find_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise DistributionError(
            "java not found on PATH: install a Java 17 runtime "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless)"
        )
    return java


def resolve(settings: Settings | None = None, *, version: str | None = None, kraft: bool = False) -> KafkaDistribution:
    """Return a usable distribution, fetching it from Maven Central on first use.

    ``version`` overrides the settings' (ZooKeeper-mode) version; ``kraft`` asks for the
    KRaft line (4.x, ``settings.kraft_version``). ``$KAFKA_HOME`` wins when it is set
    and its version suits the mode.
    """
    settings = settings or Settings.from_env()
    wanted = version or (settings.kraft_version if kraft else settings.kafka_version)
    if settings.kafka_home is not None and version is None:
        dist = _from_kafka_home(settings.kafka_home, zookeeper=not kraft)
        if not kraft or not dist.version.startswith(("0.", "1.", "2.", "3.")):
            return dist
    libs = settings.cache_dir / f"kafka-{wanted}" / "libs"
    if not (libs / _MARKER).exists():
        _fetch(wanted, libs)
    return KafkaDistribution(libs=libs, version=wanted)


def _from_kafka_home(home: Path, *, zookeeper: bool = True) -> KafkaDistribution:
    libs = home / "libs"
    jars = sorted(libs.glob("kafka_2.*-*.jar")) if libs.is_dir() else []
    jars = [j for j in jars if not j.name.endswith(("-sources.jar", "-javadoc.jar", "-test.jar"))]
    if not jars:
        raise DistributionError(
            f"KAFKA_HOME={home} has no libs/kafka_2.*.jar: point it at an unpacked "
            "Apache Kafka 3.x install, or unset it to fetch Kafka from Maven Central"
        )
    if zookeeper and not any(libs.glob("zookeeper-*.jar")):
        raise DistributionError(
            f"KAFKA_HOME={home} has no ZooKeeper jar in libs/: kafkaops needs a Kafka "
            "release that still runs in ZooKeeper mode (3.x; 4.0 dropped it)"
        )
    version = jars[0].stem.split("-", 1)[1]
    return KafkaDistribution(libs=libs, version=version)


def _fetch(version: str, libs: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DistributionError(
            "mvn not found on PATH: install Apache Maven (Debian/Ubuntu: apt-get install "
            "maven) so kafkaops can fetch Kafka from Maven Central, or set KAFKA_HOME to "
            "an existing Apache Kafka 3.x install"
        )
    find_java()
    log.info("fetching Apache Kafka %s from Maven Central into %s", version, libs)
    libs.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=libs.parent))
    pom = resources.files("kafkaops.local").joinpath("kafka-pom.xml")
    with resources.as_file(pom) as pom_path:
        cmd = [
            mvn, "-q", "-B", "-f", str(pom_path),
            "dependency:copy-dependencies",
            f"-Dkafka.version={version}",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise DistributionError(
            f"could not fetch org.apache.kafka:kafka_2.13:{version} with Maven "
            f"(exit {proc.returncode}); check that Maven Central is reachable and the "
            f"version exists.\n{tail}"
        )
    (staging / _MARKER).write_text(version)
    if libs.exists():
        shutil.rmtree(libs)
    staging.rename(libs)
    log.info("Kafka %s ready in %s", version, libs)

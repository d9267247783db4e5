"""Metrics scraped by a real Prometheus (Debian's `prometheus`), and the alert rules checked by promtool.

A monitor on a cluster of the test's own serves /metrics; a Prometheus server of the
test's own (1 s scrape and rule evaluation, its own data directory and port, the
project's compose/prometheus/alerts.yml) scrapes it. A broker is killed: Prometheus'
HTTP API must show ``kafka_brokers`` dropping to 2 and the topic's under-replicated
series rising within two scrape intervals of the monitor seeing each change, and the
KafkaBrokerDown alert pending. Missing `prometheus`/`promtool` binaries fail the tests
(`.ci/run` installs them): they are never skipped.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from kafkaops.admin import create_topic
from kafkaops.coord.session import Coordinator
from kafkaops.local.cluster import LocalCluster
from kafkaops.ops.events import BrokerDown, Event, UnderReplicated
from kafkaops.ops.metrics import MetricsError, serve_metrics
from kafkaops.ops.monitor import ReplicaMonitor
from kafkaops.ops.playbook_journal import RunJournal
from kafkaops.testing.waits import wait_until

RULES_DIR = Path(__file__).resolve().parents[2] / "compose" / "prometheus"
SCRAPE = 1.0


def binary(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"`{name}` is not installed: apt-get install prometheus (.ci/run installs it)"
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_alert_rules_pass_promtool() -> None:
    promtool = binary("promtool")
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"], ["check", "config", "prometheus.yml"]):
        result = subprocess.run([promtool, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in subprocess.run([promtool, "check", "rules", "alerts.yml"], cwd=RULES_DIR,
                                                      capture_output=True, text=True, timeout=60).stdout


class Prometheus:
    """A Prometheus server of the test's own, scraping one target."""

    def __init__(self, base: Path, target: str) -> None:
        self.port = free_port()
        config = base / "prometheus.yml"
        config.write_text(json.dumps({
            "global": {"scrape_interval": f"{SCRAPE:g}s", "evaluation_interval": f"{SCRAPE:g}s"},
            "rule_files": [str(RULES_DIR / "alerts.yml")],
            "scrape_configs": [{"job_name": "kafkaops", "static_configs": [{"targets": [target]}]}],
        }))
        self.log = (base / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [binary("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={base / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until(self._ready, 60, "Prometheus to be ready", interval=0.3)

    def _ready(self) -> bool:
        assert self.proc.poll() is None, f"prometheus exited {self.proc.returncode}"
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as r:
            doc = json.load(r)
        assert doc["status"] == "success", doc
        return doc["data"]

    def samples(self, selector: str, window: str = "5m") -> list[tuple[float, float]]:
        """Raw samples of one series (the first one matched) over the last ``window``."""
        result = self.api("query", query=f"{selector}[{window}]")["result"]
        return [(float(t), float(v)) for t, v in result[0]["values"]] if result else []

    def value(self, expr: str) -> float | None:
        result = self.api("query", query=expr)["result"]
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[Prometheus] = []

    def start(target: str) -> Prometheus:
        p = Prometheus(tmp_path, target)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def test_prometheus_sees_a_broker_loss_within_two_scrapes(
    fresh_kafka_cluster: LocalCluster, prometheus_factory: Any
) -> None:
    cluster = fresh_kafka_cluster
    topic = f"prom-{uuid.uuid4().hex[:6]}"
    group = f"prom-g-{uuid.uuid4().hex[:6]}"
    create_topic(cluster.profile, topic, 3, 3)
    producer = Producer(cluster.profile.librdkafka(acks="all"))
    for i in range(30):
        producer.produce(topic, value=b"x", partition=i % 3)
    assert producer.flush(60) == 0
    consumer = Consumer(cluster.profile.librdkafka(**{"group.id": group, "enable.auto.commit": False}))
    consumer.commit(offsets=[TopicPartition(topic, p, 4) for p in range(3)], asynchronous=False)  # lag 6 each
    consumer.close()

    mon = ReplicaMonitor(cluster.profile).start()
    mon.track_lag([group], interval=1.0, window=3)
    downs: list[Event] = []
    lock = threading.Lock()

    urps: list[Event] = []

    def on_event(e: Event) -> None:
        with lock:
            if isinstance(e, BrokerDown):
                downs.append(e)
            if isinstance(e, UnderReplicated) and e.topic == topic and e.partition == 0:
                urps.append(e)

    mon.subscribe(on_event)
    coord = Coordinator.shared(cluster.profile)
    RunJournal(coord).save({"playbook": "rolling-restart", "state": "succeeded", "status": {}})
    server = serve_metrics(mon, 0, address="127.0.0.1", coordinator=coord)
    try:
        with pytest.raises(MetricsError, match=f"cannot serve metrics on 127.0.0.1:{server.port}"):
            serve_metrics(mon, server.port, address="127.0.0.1")
        prom = prometheus_factory(f"127.0.0.1:{server.port}")
        wait_until(lambda: prom.value("kafka_brokers") == 3, 60, "Prometheus to scrape kafka_brokers 3")
        wait_until(lambda: prom.value(f'kafka_consumergroup_lag{{consumergroup="{group}",topic="{topic}",partition="1"}}') == 6,
                   60, "the group's lag in Prometheus")
        assert prom.value(f'sum(kafka_topic_partition_under_replicated_partition{{topic="{topic}"}})') == 0
        assert prom.value(f'kafka_topic_partitions{{topic="{topic}"}}') == 3
        assert prom.value(f'kafkaops_consumergroup_status{{consumergroup="{group}"}}') == 1
        assert prom.value('kafkaops_broker_up{broker="1"}') == 1
        assert prom.value('kafkaops_playbook_last_run{playbook="rolling-restart",state="succeeded"}') == 1

        victim = next(b for b in (3, 2, 1) if b != mon.snapshot().controller_id)
        killed_at = time.time()
        cluster.kill_broker(victim)
        wait_until(lambda: downs, 60, "the monitor's BrokerDown")
        seen_at = downs[0].timestamp
        ur = f'sum(kafka_topic_partition_under_replicated_partition{{topic="{topic}"}})'
        wait_until(lambda: prom.value("kafka_brokers") == 2 and prom.value(ur) == 3, 30,
                   "Prometheus to show 2 brokers and 3 under-replicated partitions")
        # when did the scraped samples change? (sample timestamps are the scrapes' own)
        first_two = min(t for t, v in prom.samples("kafka_brokers") if v == 2)
        first_ur = min(t for t, v in prom.samples(
            f'kafka_topic_partition_under_replicated_partition{{topic="{topic}",partition="0"}}') if v == 1)
        print(f"\nkill -> monitor BrokerDown {seen_at - killed_at:.2f}s; -> Prometheus sample kafka_brokers=2 "
              f"{first_two - killed_at:.2f}s, under-replicated {first_ur - killed_at:.2f}s (scrape {SCRAPE:g}s)")
        assert first_two - seen_at <= 2 * SCRAPE + 0.5, (first_two, seen_at)
        wait_until(lambda: urps, 30, "the monitor's UnderReplicated for partition 0")
        assert first_ur - urps[0].timestamp <= 2 * SCRAPE + 0.5, (first_ur, urps[0].timestamp)

        alert = wait_until(lambda: next((a for a in prom.api("alerts")["alerts"] if a["labels"]["alertname"] == "KafkaBrokerDown"),
                                        None), 30, "the KafkaBrokerDown alert")
        assert alert["state"] == "pending" and alert["labels"]["broker"] == str(victim), alert
        assert prom.value('kafkaops_monitor_events_total{type="BrokerDown"}') == 1
    finally:
        server.stop()
        mon.stop()
        coord.stop()


def test_monitor_command_serves_metrics_and_reports_lag(kafka_cluster: LocalCluster, tmp_path: Path) -> None:
    """`kafkaops monitor --events --groups G --metrics-port P`: lag events on stdout, metrics on P."""
    import os
    import sys

    topic = f"cli-prom-{uuid.uuid4().hex[:6]}"
    group = f"cli-prom-g-{uuid.uuid4().hex[:6]}"
    create_topic(kafka_cluster.profile, topic, 1, 3)
    producer = Producer(kafka_cluster.profile.librdkafka(acks="all"))
    for _ in range(10):
        producer.produce(topic, value=b"x")
    assert producer.flush(60) == 0
    consumer = Consumer(kafka_cluster.profile.librdkafka(**{"group.id": group, "enable.auto.commit": False}))
    consumer.commit(offsets=[TopicPartition(topic, 0, 3)], asynchronous=False)  # nobody consumes: lag 7
    consumer.close()
    port = free_port()
    out = tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kafkaops.cli", "monitor", "--events", "-b", kafka_cluster.bootstrap_servers,
         "--groups", group, "--lag-interval", "0.5", "--lag-window", "3", "--metrics-port", str(port),
         "--metrics-address", "127.0.0.1"],
        stdout=out.open("w"), stderr=subprocess.PIPE, text=True, env={**os.environ, "KAFKAOPS_LOG_LEVEL": "WARNING"})
    try:
        def lag_events() -> list[dict[str, Any]]:
            return [e for e in map(json.loads, out.read_text().splitlines()) if e["type"] == "ConsumerLagStatusChanged"]

        stop = wait_until(lambda: [e for e in lag_events() if e["group"] == group and e["status"] == "STOP"], 60,
                          "the CLI's ConsumerLagStatusChanged to STOP")
        assert (stop[0]["topic"], stop[0]["partition"], stop[0]["previous"], stop[0]["lag"]) == (topic, 0, "OK", 7)

        def scrape() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                return str(r.read().decode())

        def stopped() -> str | None:
            text = scrape()
            return text if 'status="STOP"' in text else None

        text = wait_until(stopped, 30, "STOP in /metrics")
        assert f'kafka_consumergroup_lag{{consumergroup="{group}",partition="0",topic="{topic}"}} 7.0' in text
        assert "kafka_brokers 3.0" in text
    finally:
        proc.terminate()
        proc.wait(30)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""

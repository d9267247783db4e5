"""Security figures (a script, not a test): run ``python tests/integration/bench_security.py``.

1. Start time: a secured local cluster (certificates, SCRAM users created with
   ConfigCommand, SASL_SSL listeners, ZooKeeper SASL) vs a plaintext one, alternately.
2. `kafkaops bench produce`'s contestants (TypedProducer + Avro, raw confluent_kafka +
   fastavro) over SASL_SSL and over plaintext in one run, interleaved rounds: the ratio.
3. The time to each refusal (check_connection and a TypedProducer): plaintext client on
   the SASL_SSL port, wrong password, unknown user, untrusted CA, expired certificate, and
   a wrong ZooKeeper SASL password (Coordinator.start).

Prints a JSON summary on the last line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import socket
import ssl
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from kafkaops.apps.bench.clients import avro_workload, produce_raw, produce_typed
from kafkaops.apps.bench.timing import BenchReport, Measurement, bench_topic, run_rounds, spanned
from kafkaops.clients.connection import ConnectionRefused, check_connection
from kafkaops.clients.producer import TypedProducer
from kafkaops.config import ClusterProfile, KafkaSecurity, Secret
from kafkaops.coord.session import Coordinator, CoordinatorError
from kafkaops.local.cluster import LocalCluster
from kafkaops.serde.codec import JsonCodec


def start_times(rounds: int, base: str) -> tuple[dict[str, list[float]], dict[str, LocalCluster]]:
    """Start plaintext and secured clusters alternately; the last of each stays up."""
    times: dict[str, list[float]] = {"plaintext": [], "secured": []}
    kept: dict[str, LocalCluster] = {}
    for r in range(rounds):
        for kind in ("plaintext", "secured") if r % 2 == 0 else ("secured", "plaintext"):
            cluster = LocalCluster(tempfile.mkdtemp(prefix=f"bench-{kind}-", dir=base), brokers=3,
                                   secure=kind == "secured")
            t0 = time.monotonic()
            cluster.start()
            times[kind].append(time.monotonic() - t0)
            print(f"start {kind}: {times[kind][-1]:.1f}s", flush=True)
            if r == rounds - 1:
                kept[kind] = cluster
            else:
                cluster.destroy()
    return times, kept


def produce_over_both(plain: ClusterProfile, secured: ClusterProfile, records: int, rounds: int) -> BenchReport:
    """The typed and raw produce contestants on both clusters, in one interleaved run."""
    work = avro_workload(records, cluster=secured)
    topics = {"plaintext": bench_topic(plain, 3, prefix="bench-sec"), "sasl_ssl": bench_topic(secured, 3, prefix="bench-sec")}
    profiles = {"plaintext": plain, "sasl_ssl": secured}
    contestants: dict[str, Callable[[], Measurement]] = {}
    for proto in ("plaintext", "sasl_ssl"):
        for name, fn in (("typed", produce_typed), ("raw", produce_raw)):
            contestants[f"{name}-{proto}"] = (lambda n=f"{name}-{proto}", f=fn, p=proto:
                                              spanned(n, records, f, profiles[p], topics[p], work, records))
    report = BenchReport("produce over SASL_SSL vs plaintext", records, rounds, run_rounds(contestants, rounds))
    for name in ("typed", "raw"):
        report.add_ratio(f"{name}-sasl_ssl", f"{name}-plaintext")
        report.add_cpu_ratio(f"{name}-sasl_ssl", f"{name}-plaintext")
    return report


def expired_endpoint(cluster: LocalCluster) -> str:
    assert cluster.security is not None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cluster.security.keystore("endpoint", expired=True))
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            conn, _ = server.accept()
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    return f"127.0.0.1:{server.getsockname()[1]}"


def refusal_times(cluster: LocalCluster, repeats: int) -> dict[str, dict[str, float]]:
    admin = cluster.profile

    def sec(**changes: Any) -> ClusterProfile:
        return dataclasses.replace(admin, security=dataclasses.replace(admin.security, **changes))

    cases = {
        "plaintext client on SASL_SSL": dataclasses.replace(admin, security=KafkaSecurity()),
        "wrong password": sec(password=Secret("wrong-password")),
        "unknown user": sec(username="ghost"),
        "untrusted CA": sec(ca_file=None),
        "expired certificate": admin.with_bootstrap(expired_endpoint(cluster)),
    }

    def produce(p: ClusterProfile) -> None:
        with TypedProducer(p, "bench-refusal", JsonCodec()) as producer:
            producer.produce({"n": 1}).result(120)

    out: dict[str, dict[str, float]] = {}
    for name, profile in cases.items():
        for client, call in (("check_connection", lambda p: check_connection(p, 120)), ("TypedProducer", produce)):
            took = []
            for _ in range(repeats):
                t0 = time.monotonic()
                try:
                    call(profile)
                    raise AssertionError(f"{name}: {client} was not refused")
                except ConnectionRefused:
                    took.append(time.monotonic() - t0)
            out.setdefault(name, {})[client] = round(statistics.median(took), 3)
            print(f"refusal {name} / {client}: median {out[name][client]:.2f}s", flush=True)
    zk = admin.zookeeper
    assert zk is not None
    took = []
    for _ in range(repeats):
        t0 = time.monotonic()
        try:
            Coordinator(dataclasses.replace(zk, sasl_password=Secret("wrong"))).start().stop()
            raise AssertionError("ZooKeeper accepted a wrong password")
        except CoordinatorError:
            took.append(time.monotonic() - t0)
    out["ZooKeeper wrong SASL password"] = {"Coordinator.start": round(statistics.median(took), 3)}
    print(f"refusal ZooKeeper wrong SASL password: median {statistics.median(took):.2f}s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--start-rounds", type=int, default=2, help="clusters of each kind started")
    parser.add_argument("--records", type=int, default=20000, help="records per contestant and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved produce rounds")
    parser.add_argument("--repeats", type=int, default=3, help="tries of each refusal")
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="kafkaops-bench-security-")
    times, clusters = start_times(args.start_rounds, base)
    try:
        report = produce_over_both(clusters["plaintext"].profile, clusters["secured"].profile, args.records, args.rounds)
        for m in report.measurements:
            print(f"{m.name}: {m.rate:,.0f} records/s, {m.cpu_us_per_record:.1f} us CPU/record", flush=True)
        print({k: round(v, 3) for k, v in report.ratios.items()}, flush=True)
        refusals = refusal_times(clusters["secured"], args.repeats)
    finally:
        for c in clusters.values():
            c.destroy()
    start = {k: round(statistics.median(v), 1) for k, v in times.items()}
    print(json.dumps({
        "start_seconds": {k: [round(x, 1) for x in v] for k, v in times.items()},
        "start_median_seconds": start,
        "start_ratio_secured_vs_plaintext": round(start["secured"] / start["plaintext"], 2),
        "produce_rates": {m.name: round(m.rate) for m in report.measurements},
        "produce_ratios": {k: round(v, 3) for k, v in report.ratios.items()},
        "refusal_seconds": refusals,
    }))


if __name__ == "__main__":
    main()

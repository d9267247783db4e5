"""KRaft vs ZooKeeper mode, side by side in one run (a script, not a test):
``python tests/integration/bench_kraft.py [--kills 10] [--resumes 5] [--controller-kills 3]``.

For each mode, on a fresh 3-broker local cluster (KRaft: plus 3 dedicated controllers),
one after the other on the same machine:

1. cluster start time (``LocalCluster.start()``: JVMs up, brokers in metadata,
   ``__consumer_offsets`` led);
2. SIGKILL -> BrokerDown over N kills (a ReplicaMonitor on the cluster's profile with its
   default poll interval: ZooKeeper watches + Admin API, or the quorum + Admin API);
3. SIGKILL of the active controller -> ControllerChanged (ZooKeeper mode: the controller
   broker; KRaft: the quorum leader);
4. SIGKILL of a partition leader -> producer deliveries resume: the first acknowledgement
   (acks=all, idempotent) of a record produced after the kill, with a producer sending
   every 5 ms;
5. the shipped ``rolling-restart`` playbook's duration (KRaft: controllers, then brokers).

Prints progress and, on the last line, a JSON summary with KRaft/ZooKeeper p50 ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench_monitor import FirstDown, summary  # run as a script: this directory is on sys.path
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from kafkaops.admin import admin_client, wait_for_leaders
from kafkaops.coord.session import Coordinator
from kafkaops.local.cluster import LocalCluster
from kafkaops.ops import playbooks as pbs
from kafkaops.ops import reassign
from kafkaops.ops.actions import ActionContext
from kafkaops.ops.brokers import LocalBrokerControl
from kafkaops.ops.events import ControllerChanged, Event
from kafkaops.ops.monitor import ReplicaMonitor
from kafkaops.waits import wait_until


class Controllers:
    """ControllerChanged events, awaited one at a time."""

    def __init__(self) -> None:
        self.events: list[ControllerChanged] = []
        self.cond = threading.Condition()

    def __call__(self, e: Event) -> None:
        if isinstance(e, ControllerChanged) and e.controller is not None:
            with self.cond:
                self.events.append(e)
                self.cond.notify_all()

    def wait_new(self, seen: int, timeout: float) -> ControllerChanged:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.events) > seen, timeout), "no ControllerChanged"
            return self.events[seen]


def healthy(mon: ReplicaMonitor, timeout: float = 180) -> None:
    mon.wait_for(lambda h: len(h.live_brokers) == 3 and h.counts.under_replicated == 0 and h.counts.offline == 0, timeout)


def detection(cluster: LocalCluster, mon: ReplicaMonitor, kills: int) -> dict[str, Any]:
    downs = FirstDown()
    mon.subscribe(downs)
    latencies: list[float] = []
    for i in range(kills):
        victim = i % 3 + 1
        t0 = time.time()
        cluster.kill_broker(victim)
        latencies.append(downs.wait(victim, 60) - t0)
        print(f"  [{cluster.mode}] kill {i + 1}: broker {victim} -> BrokerDown {latencies[-1]:.2f}s", flush=True)
        cluster.start_broker(victim)
        healthy(mon)
    return summary(latencies)


def controller_failover(cluster: LocalCluster, mon: ReplicaMonitor, kills: int) -> dict[str, Any]:
    changes = Controllers()
    mon.subscribe(changes)
    latencies: list[float] = []
    for i in range(kills):
        active = mon.snapshot().controller_id
        assert active is not None
        seen = len(changes.events)
        t0 = time.time()
        if cluster.mode == "kraft":
            cluster.kill_controller(active)
        else:
            cluster.kill_broker(active)
        event = changes.wait_new(seen, 60)
        latencies.append(event.timestamp - t0)
        print(f"  [{cluster.mode}] controller {active} killed -> ControllerChanged to {event.controller} "
              f"{latencies[-1]:.2f}s", flush=True)
        if cluster.mode == "kraft":
            cluster.start_controller(active)
        else:
            cluster.start_broker(active)
        healthy(mon)
    return summary(latencies)


def producer_resume(cluster: LocalCluster, mon: ReplicaMonitor, kills: int) -> dict[str, Any]:
    """Leader SIGKILL -> first acknowledgement of a record produced after it."""
    topic = "resume"
    admin = admin_client(cluster.profile)
    admin.create_topics([NewTopic(topic, 1, replica_assignment=[[1, 2, 3]])])[topic].result(timeout=30)
    wait_for_leaders(admin, topic, 1, 30)
    acks: list[tuple[int, float]] = []  # (sequence number, ack time)
    sent: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()

    def run() -> None:
        p = Producer(cluster.profile.librdkafka(**{"acks": "all", "enable.idempotence": True, "linger.ms": 0,
                                                   "message.timeout.ms": 120000}))
        i = 0
        while not stop.is_set():
            seq = i

            def done(err: Any, _msg: Any, seq: int = seq) -> None:
                if err is None:
                    with lock:
                        acks.append((seq, time.time()))

            with lock:
                sent.append(time.time())
            p.produce(topic, value=str(seq).encode(), on_delivery=done)
            p.poll(0.005)
            i += 1
        p.flush(120)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    latencies: list[float] = []
    try:
        wait_until(lambda: len(acks) > 100, 60, "the producer's first acknowledgements")
        for i in range(kills):
            leader = int(admin.list_topics(topic=topic, timeout=10).topics[topic].partitions[0].leader)
            t0 = time.time()
            cluster.kill_broker(leader)
            with lock:
                first_after = len(sent)  # sequence numbers from here on were produced after the kill
            ack = wait_until(lambda: next((t for s, t in list(acks) if s >= first_after), None), 120,
                             "an acknowledgement after the kill")
            latencies.append(ack - t0)
            print(f"  [{cluster.mode}] leader {leader} killed -> deliveries resume {latencies[-1]:.2f}s", flush=True)
            cluster.start_broker(leader)
            healthy(mon)
            reassign.elect_preferred_leaders(cluster.profile, [(topic, 0)])
    finally:
        stop.set()
        thread.join(150)
    return summary(latencies)


def rolling_restart(cluster: LocalCluster, mon: ReplicaMonitor) -> dict[str, Any]:
    coord = Coordinator(cluster.profile).start()
    audit = Path(tempfile.mkdtemp(prefix="bench-roll-")) / "audit.jsonl"
    try:
        ctx = ActionContext(cluster.profile, LocalBrokerControl(cluster), coord, assume_yes=True, poll_interval=0.5)
        plan = pbs.make_plan(pbs.load(pbs.find("rolling-restart")), {}, pbs.cluster_facts(cluster.profile))
        t0 = time.monotonic()
        pbs.PlaybookRunner(ctx, coord, audit_file=audit).run(plan)
        total = time.monotonic() - t0
    finally:
        coord.stop()
    steps = [json.loads(line) for line in audit.read_text().splitlines()]
    done = [s for s in steps if s["event"] == "succeeded"]
    controllers = sum(s["duration_s"] for s in done if s["action"] == "controller_restart")
    result = {"total_s": round(total, 1), "controllers_s": round(controllers, 1),
              "nodes": len([s for s in done if s["action"] in ("controller_restart", "broker_restart")])}
    print(f"  [{cluster.mode}] rolling restart {result}", flush=True)
    healthy(mon)
    return result


def bench_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    print(f"{mode}: starting a 3-broker cluster", flush=True)
    cluster = LocalCluster(tempfile.mkdtemp(prefix=f"bench-{mode}-"), mode=mode, brokers=3)
    t0 = time.monotonic()
    cluster.start()
    result: dict[str, Any] = {"kafka": cluster.kafka_version, "start_s": round(time.monotonic() - t0, 2)}
    print(f"  [{mode}] started in {result['start_s']}s (Kafka {cluster.kafka_version})", flush=True)
    try:
        admin = admin_client(cluster.profile)
        admin.create_topics([NewTopic("bench", 6, 3)])["bench"].result(timeout=30)
        with ReplicaMonitor(cluster.profile) as mon:
            healthy(mon)
            result["kill_to_BrokerDown_s"] = detection(cluster, mon, args.kills)
            result["controller_kill_to_ControllerChanged_s"] = controller_failover(cluster, mon, args.controller_kills)
            result["leader_kill_to_deliveries_resume_s"] = producer_resume(cluster, mon, args.resumes)
            result["rolling_restart"] = rolling_restart(cluster, mon)
    finally:
        cluster.destroy()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--controller-kills", type=int, default=3)
    ap.add_argument("--resumes", type=int, default=5)
    ap.add_argument("--modes", default="zookeeper,kraft")
    args = ap.parse_args()
    results = {mode: bench_mode(mode, args) for mode in args.modes.split(",")}
    if set(results) == {"zookeeper", "kraft"}:
        zk, kr = results["zookeeper"], results["kraft"]
        results["kraft_over_zookeeper"] = {
            "start": round(kr["start_s"] / zk["start_s"], 2),
            **{k: round(kr[k]["p50"] / zk[k]["p50"], 2) for k in (
                "kill_to_BrokerDown_s", "controller_kill_to_ControllerChanged_s", "leader_kill_to_deliveries_resume_s")},
            "rolling_restart": round(kr["rolling_restart"]["total_s"] / zk["rolling_restart"]["total_s"], 2),
        }
    print(json.dumps(results))


if __name__ == "__main__":
    main()

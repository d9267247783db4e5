"""The aggregate workload: writers plus a CheckpointedConsumer job in a process of its own
(:mod:`kafkaops.chaos.aggregate_worker`) counting records per key, exactly once across
crashes. The runner watches its checkpoints in ZooKeeper; the workload can SIGKILL the job
and start it again; at the end the last checkpoint's counts must equal the log's."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kafkaops.chaos.aggregate_worker import read_session
from kafkaops.chaos.checker import Check, check_counts
from kafkaops.chaos.history import LogRecord, first_covered_after
from kafkaops.chaos.target import ChaosCluster, ChaosError
from kafkaops.chaos.workload import Outcome, Workload
from kafkaops.coord.checkpoints import CheckpointStore
from kafkaops.coord.session import Coordinator
from kafkaops.errors import KafkaopsError
from kafkaops.waits import Deadline, wait_until

log = logging.getLogger(__name__)


class AggregateWorkload(Workload):
    """TypedProducer writers + a CheckpointedConsumer per-key count job (its process killed too)."""

    name = "aggregate"
    description = "TypedProducer + a CheckpointedConsumer job counting per key (process SIGKILLed mid-run)"

    @classmethod
    def unsupported(cls, cluster: ChaosCluster) -> str | None:
        if cluster.profile.zookeeper is None:
            return "not supported on this cluster: no ZooKeeper for the checkpoints"
        return None

    def start_consumers(self) -> None:
        self.dir = Path(self.workdir or tempfile.mkdtemp(prefix="kafkaops-chaos-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.job = self.topic
        self.profile_file = self.profile.save(self.dir / f"{self.job}.profile.yaml")
        self.session_file = self.dir / f"{self.job}.session.json"
        self.coord = Coordinator.shared(self.profile)
        self.store = CheckpointStore(self.coord)
        self.progress: list[tuple[float, dict[int, int]]] = []
        self.kills = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._spawn()
        self._watch = threading.Thread(target=self._watch_checkpoints, name="chaos-checkpoints", daemon=True)
        self._watch.start()

    def _spawn(self) -> None:
        cmd = [sys.executable, "-m", "kafkaops.chaos.aggregate_worker", str(self.profile_file), self.topic,
               self.job, str(self.session_file)]
        with (self.dir / f"{self.job}.log").open("ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))

    def _watch_checkpoints(self) -> None:
        """Record each new checkpoint's offsets with the time it was seen; notice a job that died."""
        last = None
        while not self._stop.wait(0.25):
            with self._lock:
                proc = self.proc
                if proc is not None and proc.poll() is not None:
                    self.errors.append(f"the job process exited by itself (code {proc.returncode}); "
                                       f"see {self.dir / (self.job + '.log')}")
                    self.proc = None
            try:
                ckpt = self.store.latest(self.job)
            except KafkaopsError:
                continue  # ZooKeeper unavailable for a moment: the next look will see it
            if ckpt is not None and ckpt.id != last:
                last = ckpt.id
                self.progress.append((time.monotonic(), {p: o for (_, p), o in ckpt.offsets.items()}))

    def flowing_since(self, since: float) -> dict[int, float | None]:
        assert self.writers is not None
        return first_covered_after(self.writers.sent, list(self.progress), since, self.partitions)

    def zookeeper_session(self) -> tuple[int, bytes] | None:
        return read_session(self.session_file)

    def crash_consumer(self) -> str | None:
        with self._lock:
            if self.proc is None:
                return None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
            self.kills += 1
            self._spawn()
        return "SIGKILL of the aggregate job's process, started again"

    def drain(self, ends: dict[int, int], timeout: float) -> None:
        def caught_up() -> bool:
            offsets = self.progress[-1][1] if self.progress else {}
            return all(offsets.get(p, 0) >= end for p, end in ends.items()) or self.proc is None

        try:
            wait_until(caught_up, timeout, "the aggregate job to checkpoint the whole topic", interval=0.5)
        except KafkaopsError as exc:
            self.errors.append(str(exc))
        with self._lock:
            proc, self.proc = self.proc, None
        if proc is not None:
            proc.send_signal(signal.SIGTERM)  # a final checkpoint, then exit 0
            try:
                rc = proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = -9
            if rc != 0:
                self.errors.append(f"the job process exited {rc} on SIGTERM; see {self.dir / (self.job + '.log')}")

    def check_consumers(self, log: list[LogRecord], ends: dict[int, int]) -> Outcome:
        deadline = Deadline(60)
        ckpt = None
        while ckpt is None and not deadline.expired:
            try:
                ckpt = self.store.latest(self.job)
            except KafkaopsError:
                time.sleep(1)
        if ckpt is None:
            raise ChaosError(f"job {self.job} has no checkpoint to check")
        counts: dict[str, int] = json.loads(ckpt.state) if ckpt.state else {}
        offsets = {p: o for (_, p), o in ckpt.offsets.items()}
        behind = [f"partition {p}: {offsets.get(p, 0)} of {end}" for p, end in sorted(ends.items())
                  if offsets.get(p, 0) != end]
        checks = [check_counts(counts, log),
                  Check("checkpoint covers the log", len(behind), "; ".join(behind))]
        figures: dict[str, Any] = {"checkpoints": len(self.progress), "consumer_kills": self.kills}
        return Outcome(checks, figures)

    def close(self) -> None:
        if not hasattr(self, "store"):
            return
        self._stop.set()
        self._watch.join(10)
        with self._lock:
            if self.proc is not None:
                self.proc.kill()
                self.proc.wait(30)
                self.proc = None
        try:
            self.store.delete_job(self.job)
        except KafkaopsError as exc:
            log.warning("could not delete chaos job %s: %s", self.job, exc)
        finally:
            self.coord.stop()
        self.session_file.unlink(missing_ok=True)

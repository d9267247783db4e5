"""The cluster a chaos run starts for itself: 3 brokers and a 3-node ZooKeeper ensemble
(the ZooKeeper fault needs one), in ZooKeeper mode or KRaft (3 controllers), as local
JVMs or containers. The one chaos module that reaches for the test infrastructure, lazily."""

from __future__ import annotations

from pathlib import Path

from kafkaops.chaos.target import ChaosCluster, ChaosError

BACKENDS = ("local", "containers")
MODES = ("zookeeper", "kraft")


def start_cluster(mode: str = "zookeeper", backend: str = "local", base_dir: Path | None = None) -> ChaosCluster:
    """A started cluster for a chaos run; the caller destroys it (``destroy()``)."""
    if mode not in MODES:
        raise ChaosError(f"Kafka mode {mode!r}: one of {', '.join(MODES)}")
    if backend not in BACKENDS:
        raise ChaosError(f"backend {backend!r}: one of {', '.join(BACKENDS)}")
    if backend == "containers":
        if mode != "zookeeper":
            raise ChaosError("the containers backend runs ZooKeeper-mode clusters only")
        from kafkaops.testing.containers import ContainerCluster

        containers = ContainerCluster(base_dir, brokers=3, zookeepers=3)
        containers.start()
        return containers
    from kafkaops.local.cluster import LocalCluster

    local = LocalCluster(base_dir, brokers=3, zookeepers=3, mode=mode, controllers=3)
    local.start(timeout=300)
    return local

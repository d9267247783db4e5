"""The chaos matrix's network-cut cell, which needs containers: the leader of partition 0 is
disconnected from the network for 15 s under the main workload (TypedProducer + a
TypedConsumer group) and every chaos property must hold: nothing acknowledged lost or
moved, no duplicates, nothing unacknowledged visible, order kept, every record consumed,
the flow back after the cut, the cluster healthy again."""

from __future__ import annotations

from pathlib import Path

from kafkaops.chaos.runner import run_cell
from kafkaops.testing.containers import ContainerCluster


def test_network_cut_of_a_leader_keeps_every_property(container_cluster: ContainerCluster, tmp_path: Path) -> None:
    result = run_cell(container_cluster, "group", "network-cut", duration=20.0, workdir=tmp_path)
    print(f"\n{result.summary()}")
    assert result.status == "pass", result.summary()
    assert result.injections and "off the network" in result.injections[0]
    f = result.figures
    assert f["records"] > 500 and f["recovery"] is not None

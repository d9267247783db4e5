"""The end-to-end demo `kafkaops demo` runs against a local cluster.

Each area of kafkaops contributes steps; each step is a generator item (a :class:`Step`:
title, detail, ok) so the CLI renders progress while the demo itself prints nothing. The
cluster comes in as an argument (the demo kills and restarts its brokers).
"""

from __future__ import annotations

from collections.abc import Iterator

from kafkaops.apps.demo.basics import broker_steps
from kafkaops.apps.demo.checkpoints import checkpoint_steps
from kafkaops.apps.demo.monitor import monitor_steps
from kafkaops.apps.demo.orders import typed_order_steps
from kafkaops.apps.demo.playbook import playbook_steps
from kafkaops.apps.demo.steps import DemoCluster, DemoFailed, Step

__all__ = ["DemoCluster", "DemoFailed", "Step", "run"]


def run(cluster: DemoCluster, messages: int = 1000) -> Iterator[Step]:
    """Every area in turn: brokers and round trips, typed orders, the replica monitor,
    checkpoints across a crash, a playbook."""
    yield from broker_steps(cluster, messages)
    yield from typed_order_steps(cluster, messages)
    yield from monitor_steps(cluster)
    yield from checkpoint_steps(cluster, messages)
    yield from playbook_steps(cluster)

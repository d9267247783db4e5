"""Destructive features on a secured cluster of their own: the rolling-restart playbook (its
broker restarts, health gates, ZooKeeper lock and progress all through SASL) loses nothing.

(The other features run on both clusters by parametrization: typed round trip and DLQ on
the session clusters, checkpoint crash, monitor broker loss and auto-failover; see
tests/integration/conftest.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kafkaops.coord.session import Coordinator
from kafkaops.local.cluster import LocalCluster
from tests.integration.test_playbook_runs import rolling_restart_loses_nothing

pytestmark = [pytest.mark.security, pytest.mark.destructive]


def test_rolling_restart_of_a_secured_cluster_loses_nothing(
    cluster_factory: Callable[..., LocalCluster], tmp_path: Path
) -> None:
    cluster = cluster_factory(brokers=3, secure=True, mode="zookeeper")
    with Coordinator(cluster.profile) as coord:
        rolling_restart_loses_nothing(cluster, coord, tmp_path / "audit.jsonl")

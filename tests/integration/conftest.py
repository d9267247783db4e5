"""Fixtures that run a test on the plaintext cluster and again on the secured one.

The secured variant (SASL_SSL/SCRAM-SHA-512 listeners, an authorizer that denies what no
ACL allows, ZooKeeper with SASL and ACLs; ZooKeeper mode) carries the ``security`` marker:
``-m security`` runs the security tier alone. A test reaches either cluster through its
``profile`` (the admin super user's), never through a bare bootstrap string.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kafkaops.local.cluster import LocalCluster
from kafkaops.testing.plugin import TopicFactory

@pytest.fixture(autouse=True)
def own_kafkaops_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$KAFKAOPS_HOME of the test's own: what its CLI commands record (the audit trail) stays
    out of the user's home. Tests that need a home of their choice pass it themselves."""
    home = tmp_path_factory.mktemp("kafkaops-home")
    monkeypatch.setenv("KAFKAOPS_HOME", str(home))
    return home


SECURITY = ["plaintext", pytest.param("secured", marks=pytest.mark.security)]


@pytest.fixture(params=SECURITY)
def any_cluster(request: pytest.FixtureRequest) -> LocalCluster:
    """The session's plaintext cluster, then the session's secured one."""
    name = "kafka_cluster" if request.param == "plaintext" else "secure_kafka_cluster"
    cluster: LocalCluster = request.getfixturevalue(name)
    return cluster


@pytest.fixture
def any_topic(any_cluster: LocalCluster, fresh_topic_factory: Callable[[LocalCluster], TopicFactory]) -> TopicFactory:
    """New topics on ``any_cluster``."""
    return fresh_topic_factory(any_cluster)


@pytest.fixture(params=SECURITY)
def secured(request: pytest.FixtureRequest) -> bool:
    """False, then True: for tests that start clusters of their own (``own_cluster``)."""
    return bool(request.param == "secured")


@pytest.fixture
def own_cluster(cluster_factory: Callable[..., LocalCluster], secured: bool) -> Callable[..., LocalCluster]:
    """``cluster_factory`` that starts a secured cluster (ZooKeeper mode) in the secured variant."""
    def start(**kwargs: Any) -> LocalCluster:
        if secured:
            kwargs.update(secure=True, mode="zookeeper")
        return cluster_factory(**kwargs)

    return start


@pytest.fixture
def profile_file(tmp_path: Path) -> Callable[[LocalCluster], Path]:
    """``profile_file(cluster)``: the cluster's profile saved for a CLI child process (``--profile FILE``)."""
    def save(cluster: LocalCluster) -> Path:
        return cluster.profile.save(tmp_path / f"profile-{cluster.base_dir.name}.yaml")

    return save

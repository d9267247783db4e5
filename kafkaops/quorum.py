"""The KRaft metadata quorum: which controller is active, and how far each voter is.

Clients cannot reach KRaft controllers, and the Metadata response names a broker as
"controller"; the active controller comes from DescribeQuorum (KIP-595), which brokers
forward to the quorum. confluent-kafka has no call for it, so this uses kafka-python's
``KafkaAdminClient.describe_metadata_quorum``. A ZooKeeper-mode cluster (Kafka 3.x
brokers under ZooKeeper) does not serve it: :class:`NotKRaftError` says so.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from kafkaops.config import ClusterProfile, as_profile
from kafkaops.errors import KafkaopsError
from kafkaops.waits import Deadline, wait_until

log = logging.getLogger(__name__)

CAUGHT_UP_LAG = 0
"""Metadata records a voter may be behind the high watermark and still count as caught up."""


class QuorumError(KafkaopsError):
    """The quorum could not be described (no broker answered, or no leader right now)."""


class NotKRaftError(QuorumError):
    """The cluster runs in ZooKeeper mode: it has no KRaft quorum."""


@dataclass(frozen=True)
class QuorumMember:
    node_id: int
    log_end_offset: int
    last_caught_up_ms: int
    last_fetch_ms: int = -1


@dataclass(frozen=True)
class QuorumState:
    """The active controller (``leader_id``), its epoch, the voters and the observers (brokers)."""

    leader_id: int
    leader_epoch: int
    high_watermark: int
    voters: tuple[QuorumMember, ...]
    observers: tuple[QuorumMember, ...]

    @property
    def voter_ids(self) -> tuple[int, ...]:
        return tuple(sorted(m.node_id for m in self.voters))

    def member(self, node_id: int) -> QuorumMember | None:
        """The voter or observer ``node_id`` (None: not in the quorum's view)."""
        return next((m for m in (*self.voters, *self.observers) if m.node_id == node_id), None)

    def lag(self, node_id: int) -> int | None:
        """How many metadata records ``node_id`` is behind the high watermark (None: not a member)."""
        for m in (*self.voters, *self.observers):
            if m.node_id == node_id:
                return max(0, self.high_watermark - m.log_end_offset)
        return None

    def caught_up(self, node_id: int, since_ms: float | None = None) -> bool:
        """True when ``node_id`` is within :data:`CAUGHT_UP_LAG` of the high watermark, and
        (with ``since_ms``, epoch milliseconds) the leader saw it caught up after that time."""
        lag = self.lag(node_id)
        member = self.member(node_id)
        if lag is None or member is None or lag > CAUGHT_UP_LAG:
            return False
        return since_ms is None or node_id == self.leader_id or member.last_caught_up_ms >= since_ms

    def to_json(self) -> dict[str, Any]:
        def member(m: QuorumMember) -> dict[str, Any]:
            return {"id": m.node_id, "log_end_offset": m.log_end_offset, "lag": self.lag(m.node_id),
                    "last_caught_up_ms": m.last_caught_up_ms}

        return {"leader_id": self.leader_id, "leader_epoch": self.leader_epoch, "high_watermark": self.high_watermark,
                "voters": [member(m) for m in self.voters], "observers": [member(m) for m in self.observers]}


class QuorumClient:
    """One kafka-python admin connection that describes the quorum as often as asked
    (the replica monitor polls it); :func:`describe_quorum` is the one-shot form."""

    def __init__(self, cluster: ClusterProfile | str, *, timeout: float = 10.0) -> None:
        from kafka.admin import KafkaAdminClient

        self.profile = as_profile(cluster)
        self.timeout = timeout
        try:
            self._client: Any = KafkaAdminClient(**self.profile.kafka_python(
                client_id="kafkaops-quorum", request_timeout_ms=int(timeout * 1000)))
        except Exception as exc:  # noqa: BLE001 - kafka-python raises many kinds here
            raise QuorumError(f"cannot reach {self.profile.bootstrap_servers}: {exc}") from None

    def describe(self) -> QuorumState:
        """The quorum's state now; NotKRaftError on a ZooKeeper-mode cluster."""
        from kafka.errors import IncompatibleBrokerVersion, UnsupportedVersionError

        from kafka.errors import KafkaConnectionError, NodeNotReadyError

        deadline = Deadline(self.timeout)
        while True:
            try:
                raw: Any = self._client.describe_metadata_quorum()
            except (IncompatibleBrokerVersion, UnsupportedVersionError):
                raise NotKRaftError(f"{self.profile.bootstrap_servers} is not a KRaft cluster "
                                    "(ZooKeeper mode: no metadata quorum)") from None
            except (KafkaConnectionError, NodeNotReadyError) as exc:
                # the node asked was going away (a rolling restart): ask again, another node answers
                if deadline.expired:
                    raise QuorumError(f"cannot describe the metadata quorum of {self.profile.bootstrap_servers}: "
                                      f"{type(exc).__name__}: {exc}") from None
                time.sleep(deadline.remaining(cap=0.5))
                continue
            except Exception as exc:  # noqa: BLE001
                raise QuorumError(f"cannot describe the metadata quorum of {self.profile.bootstrap_servers}: "
                                  f"{type(exc).__name__}: {exc}") from None
            return parse_quorum(raw)

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # noqa: BLE001 - closing a client whose brokers are gone
            log.debug("closing the quorum client", exc_info=True)

    def __enter__(self) -> QuorumClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_quorum(raw: Any) -> QuorumState:
    """A QuorumState from kafka-python's DescribeQuorum answer (a dict)."""
    try:
        part = raw["topics"][0]["partitions"][0]
        if part.get("error"):
            raise QuorumError(f"describe quorum: {part['error']}")
        if int(part["leader_id"]) < 0:
            raise QuorumError("the metadata quorum has no leader right now (an election is on)")

        def members(key: str) -> tuple[QuorumMember, ...]:
            return tuple(QuorumMember(int(m["replica_id"]), int(m["log_end_offset"]),
                                      int(m.get("last_caught_up_timestamp") or -1),
                                      int(m.get("last_fetch_timestamp") or -1)) for m in part[key])

        return QuorumState(int(part["leader_id"]), int(part["leader_epoch"]), int(part["high_watermark"]),
                           members("current_voters"), members("observers"))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise QuorumError(f"unexpected DescribeQuorum answer: {exc}") from None


def describe_quorum(cluster: ClusterProfile | str, *, timeout: float = 10.0) -> QuorumState:
    """The KRaft metadata quorum's state; NotKRaftError on a ZooKeeper-mode cluster."""
    with QuorumClient(cluster, timeout=timeout) as client:
        return client.describe()


def kafka_mode(cluster: ClusterProfile | str, *, timeout: float = 10.0) -> str:
    """``"kraft"`` or ``"zookeeper"``: a profile whose ZooKeeper section names the brokers'
    chroot is ZooKeeper mode, one with a ZooKeeper but no chroot is KRaft; otherwise the
    cluster is asked (DescribeQuorum). QuorumError when no broker answers."""
    profile = as_profile(cluster)
    if profile.zookeeper is not None:
        return "zookeeper" if profile.zookeeper.kafka_chroot is not None else "kraft"
    try:
        describe_quorum(profile, timeout=timeout)
    except NotKRaftError:
        return "zookeeper"
    return "kraft"


def wait_caught_up(client: QuorumClient, node_id: int, timeout: float, *, since: float | None = None) -> QuorumState:
    """Wait until ``node_id`` (a voter or an observer) has caught up with the quorum's high
    watermark and, with ``since`` (epoch seconds), was seen caught up after that moment.
    QuorumError naming the last lag after ``timeout``; NotKRaftError at once in ZooKeeper mode."""
    last = ["not asked yet"]
    since_ms = None if since is None else since * 1000

    def probe() -> QuorumState | None:
        try:
            state = client.describe()
        except NotKRaftError:
            raise
        except QuorumError as exc:
            last[0] = str(exc)
            return None
        last[0] = f"lag {state.lag(node_id)} records, leader {state.leader_id}"
        return state if state.caught_up(node_id, since_ms) else None

    state = wait_until(probe, timeout, f"node {node_id} to catch up with the metadata quorum", interval=0.5,
                       error=lambda msg: QuorumError(f"{msg}: {last[0]}"))
    assert state is not None
    return state

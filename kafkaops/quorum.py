"""The KRaft metadata quorum: which controller is active, and how far each voter is.

Clients cannot reach KRaft controllers, and the Metadata response names a broker as
"controller"; the active controller comes from DescribeQuorum (KIP-595), which brokers
forward to the quorum. confluent-kafka has no call for it, so this uses kafka-python's
``KafkaAdminClient.describe_metadata_quorum``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kafkaops.config import ClusterProfile, as_profile
from kafkaops.errors import KafkaopsError

log = logging.getLogger(__name__)


class QuorumError(KafkaopsError):
    """The quorum could not be described (not a KRaft cluster, or no broker answered)."""


@dataclass(frozen=True)
class QuorumMember:
    node_id: int
    log_end_offset: int
    last_caught_up_ms: int


@dataclass(frozen=True)
class QuorumState:
    """The active controller (``leader_id``), its epoch, the voters and the observers (brokers)."""

    leader_id: int
    leader_epoch: int
    high_watermark: int
    voters: tuple[QuorumMember, ...]
    observers: tuple[QuorumMember, ...]

    def lag(self, node_id: int) -> int | None:
        """How many metadata records ``node_id`` is behind the high watermark."""
        for m in (*self.voters, *self.observers):
            if m.node_id == node_id:
                return max(0, self.high_watermark - m.log_end_offset)
        return None


def describe_quorum(cluster: ClusterProfile | str, *, timeout: float = 10.0) -> QuorumState:
    """The KRaft metadata quorum's state; QuorumError on a ZooKeeper-mode cluster."""
    from kafka.admin import KafkaAdminClient

    profile = as_profile(cluster)
    try:
        client = KafkaAdminClient(**profile.kafka_python(client_id="kafkaops-quorum",
                                                         request_timeout_ms=int(timeout * 1000)))
    except Exception as exc:  # noqa: BLE001 - kafka-python raises many kinds here
        raise QuorumError(f"cannot reach {profile.bootstrap_servers}: {exc}") from None
    try:
        raw: Any = client.describe_metadata_quorum()
    except Exception as exc:  # noqa: BLE001
        raise QuorumError(f"cannot describe the metadata quorum of {profile.bootstrap_servers} "
                          f"(a KRaft cluster?): {type(exc).__name__}: {exc}") from None
    finally:
        client.close()
    try:
        part = raw["topics"][0]["partitions"][0]
        if part.get("error"):
            raise QuorumError(f"describe quorum: {part['error']}")

        def members(key: str) -> tuple[QuorumMember, ...]:
            return tuple(QuorumMember(int(m["replica_id"]), int(m["log_end_offset"]),
                                      int(m.get("last_caught_up_timestamp") or -1)) for m in part[key])

        return QuorumState(int(part["leader_id"]), int(part["leader_epoch"]), int(part["high_watermark"]),
                           members("current_voters"), members("observers"))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise QuorumError(f"unexpected DescribeQuorum answer: {exc}") from None

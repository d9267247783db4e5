"""Exception hierarchy: every error kafkaops raises on purpose is a KafkaopsError.

The CLI turns these into one plain line on stderr and a non-zero exit code; a
traceback means a bug.
"""

from __future__ import annotations


class KafkaopsError(Exception):
    """Base class of every error kafkaops raises deliberately."""


class ConfigError(KafkaopsError):
    """Settings or input that cannot be used as given (bad value, missing key)."""


class DistributionError(KafkaopsError):
    """Kafka's jars could not be found or fetched, or Java/Maven is missing."""


class ClusterError(KafkaopsError):
    """A local cluster could not be started, reached or controlled."""


class NoClusterError(ClusterError):
    """No local cluster is running where one was expected."""


class UnknownBrokerError(ClusterError):
    """A broker (or ZooKeeper node) id that the cluster does not have."""

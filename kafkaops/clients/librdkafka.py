"""librdkafka configs of kafkaops' clients: rendered from a ClusterProfile, shown masked.

A rendered config holds the profile's passwords, so it is handed to confluent-kafka
and nowhere else: what a client keeps for inspection (``producer.config``) is the
:func:`masked` copy, and errors name the bootstrap servers only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafkaops.config import ClusterProfile

MASK = "***"
_SECRET_WORDS = ("password", "secret", "jaas", "token")


def render(profile: ClusterProfile, *layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """The profile's librdkafka config (bootstrap servers, security) with ``layers`` applied in order."""
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer:
            merged.update(layer)
    return profile.librdkafka(**merged)


def masked(conf: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``conf`` with every secret-bearing value (passwords, secrets, JAAS, tokens) as ``***``."""
    return {k: MASK if any(w in k.lower() for w in _SECRET_WORDS) and v is not None else v
            for k, v in conf.items()}

"""The named actions a playbook step may call, each a small typed function.

``registry`` holds the registry (:data:`ACTIONS`, :func:`action`), the
:class:`ActionContext` and the health checks actions share; the actions themselves live
by area: ``checks`` (health, sleep, confirm), ``lifecycle`` (broker stop/start/restart),
``replicas`` (leader election, draining, rebalancing), ``topics`` and ``offsets``
(consumer groups, checkpoints). Importing this package registers them all.

No-loss defaults stay on: broker restarts wait until no partition would fall below
``min.insync.replicas`` (as Strimzi does), reassignments add replicas before dropping any
and are throttled, and offsets are never reset under a live group.
"""

from kafkaops.ops.actions import checks, lifecycle, offsets, replicas, topics
from kafkaops.ops.actions.checks import confirm
from kafkaops.ops.actions.offsets import checkpoint_id
from kafkaops.ops.actions.registry import (
    ACTIONS,
    ActionContext,
    ActionError,
    action,
    cluster_health,
    is_healthy,
    summary,
    unsafe_to_stop,
    wait_for_health,
)

__all__ = [
    "ACTIONS", "ActionContext", "ActionError", "action", "checkpoint_id", "checks", "cluster_health", "confirm",
    "is_healthy", "lifecycle", "offsets", "replicas", "summary", "topics", "unsafe_to_stop", "wait_for_health",
]

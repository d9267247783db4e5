"""The action registry, the context actions run in, and the health checks they share.

An action is a small typed function registered with :func:`action`: it takes an
:class:`ActionContext` and keyword-only arguments; its signature *is* its schema (the
validator reads the annotations and defaults), so ``broker: int`` in the code means
``broker: one`` is refused before any step runs. It returns a one-line detail of what it
did and raises :class:`ActionError` (or another KafkaopsError) when it cannot reach its
outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kafkaops.audit import AuditLog
from kafkaops.config import ClusterProfile, as_profile
from kafkaops.coord.session import Coordinator
from kafkaops.errors import KafkaopsError
from kafkaops.ops import health
from kafkaops.ops.brokers import BrokerControl
from kafkaops.ops.health import ClusterHealth, PartitionHealth
from kafkaops.ops.playbook_types import ActionSpec
from kafkaops.waits import wait_until


class ActionError(KafkaopsError):
    """An action could not reach its outcome (the step fails, the run stops)."""


@dataclass
class ActionContext:
    """What actions may use: the cluster, broker control, ZooKeeper and the operator."""

    cluster: ClusterProfile | str
    control: BrokerControl | None = None
    """Stops, starts and restarts brokers (local processes, containers or shell templates)."""
    coordinator: Coordinator | None = None
    """The started ZooKeeper Coordinator, for checkpoint actions."""
    confirm: Callable[[str], bool] | None = None
    """Asks the operator; True to go on. The CLI supplies it; the library never reads stdin."""
    assume_yes: bool = False
    progress: Callable[[str], None] = field(default=lambda _msg: None)
    """Receives short progress notes while an action waits (the CLI shows them)."""
    poll_interval: float = 1.0
    audit: AuditLog | None = None
    """Where actions that change the cluster (topics, offsets, checkpoints) record what they did."""

    @property
    def profile(self) -> ClusterProfile:
        return as_profile(self.cluster)

    def broker_control(self) -> BrokerControl:
        if self.control is None:
            raise ActionError("no broker control configured (local cluster, docker or shell templates)")
        return self.control


ACTIONS: dict[str, ActionSpec] = {}


def action(
    name: str | None = None, check: Callable[[dict[str, Any]], str | None] | None = None
) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Register a function as a playbook action; its keyword-only parameters are the schema."""

    def register(func: Callable[..., str]) -> Callable[..., str]:
        spec = ActionSpec.from_function(name or func.__name__, func, check)
        ACTIONS[spec.name] = spec
        return func

    return register


# --------------------------------------------------------------------------- health
def cluster_health(cluster: ClusterProfile | str) -> ClusterHealth:
    """One ClusterHealth snapshot (ops/health.py) from the Admin API."""
    return health.cluster_health(cluster, timeout=15.0)


def is_healthy(h: ClusterHealth, allow_under_replicated: bool = False) -> bool:
    """Nothing offline or under min ISR, and (unless allowed) nothing under-replicated."""
    c = h.counts
    if c.offline or c.under_min_isr:
        return False
    return allow_under_replicated or not c.under_replicated


def summary(h: ClusterHealth) -> str:
    c = h.counts
    return (
        f"{len(h.live_brokers)} brokers alive {sorted(h.live_brokers)}, {c.total} partitions: "
        f"{c.under_replicated} under-replicated, {c.under_min_isr} under min ISR, {c.offline} offline"
    )


def unsafe_to_stop(h: ClusterHealth, broker: int) -> list[PartitionHealth]:
    """Partitions that would fall below min ISR if ``broker`` stopped now (Strimzi's rule).

    As Strimzi does, partitions whose ``min.insync.replicas`` is not below their replication
    factor (e.g. RF 1) are ignored: no restart order can keep them writable.
    """
    return [
        p
        for _, p in sorted(h.partitions.items())
        if broker in p.isr and p.min_isr < len(p.replicas) and len(p.isr) - 1 < p.min_isr
    ]


def unhealthy(h: ClusterHealth) -> list[PartitionHealth]:
    return [p for _, p in sorted(h.partitions.items()) if not p.healthy]


def partitions_str(parts: Iterable[PartitionHealth], limit: int = 5) -> str:
    items = [f"{p.topic}[{p.partition}] isr={list(p.isr)} min={p.min_isr}" for p in parts]
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def live_brokers(ctx: ActionContext) -> set[int]:
    return set(cluster_health(ctx.profile).live_brokers)


def wait_for(ctx: ActionContext, what: str, timeout: float, probe: Callable[[], tuple[bool, str]]) -> str:
    """Poll ``probe`` (done?, state) until done; ActionError naming the last state after ``timeout``.

    A probe that fails with a KafkaopsError (a broker just went away) counts as not done.
    """
    last = [""]

    def done() -> bool:
        try:
            ok, last[0] = probe()
        except KafkaopsError as exc:
            ok, last[0] = False, str(exc)
        if not ok:
            ctx.progress(f"waiting for {what}: {last[0]}")
        return ok

    wait_until(done, timeout, what, interval=ctx.poll_interval, error=lambda msg: ActionError(f"{msg}: {last[0]}"))
    return last[0]


def wait_for_health(ctx: ActionContext, timeout: float, allow_under_replicated: bool = False) -> ClusterHealth:
    """Poll until the cluster is healthy (see :func:`is_healthy`); ActionError after ``timeout``."""
    holder: list[ClusterHealth] = []

    def probe() -> tuple[bool, str]:
        h = cluster_health(ctx.profile)
        holder[:] = [h]
        return is_healthy(h, allow_under_replicated), summary(h)

    what = "no partition under min ISR or offline" if allow_under_replicated else "no partition under-replicated"
    wait_for(ctx, what, timeout, probe)
    return holder[0]

"""The one replica planner: where replicas go when a broker dies, is drained, or joins.

One set of rules, used by the FailoverPolicy and the playbook actions alike:

- a replica on a broker being removed (dead, or drained) is replaced *in place*: the
  replica order, and so the preferred-leader position, stays as it was;
- the replacement is the least-loaded live broker outside the partition's replica set:
  fewest replicas (counting the moves planned so far), ties to the broker that is
  preferred leader least often, then to the lowest id (:class:`BrokerLoad`);
- no move that by itself could drop a partition below ``min.insync.replicas``
  (:func:`min_isr_violation`), and none for an offline partition (no leader to copy
  from): those partitions are reported as skipped, with the reason.

:func:`plan_replacements` empties brokers; :func:`plan_balanced` spreads each topic's
replicas and preferred leaders evenly over the live brokers with the same choice rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from kafkaops.ops.health import ClusterHealth, PartitionHealth
from kafkaops.types import TP


class Move(NamedTuple):
    """One partition's replica list now and after the move (first replica = preferred leader)."""

    current: tuple[int, ...]
    target: tuple[int, ...]

    @property
    def adding(self) -> tuple[int, ...]:
        return tuple(b for b in self.target if b not in self.current)

    @property
    def removing(self) -> tuple[int, ...]:
        return tuple(b for b in self.current if b not in self.target)


@dataclass(frozen=True)
class Placement:
    """A plan: the moves to make, and the partitions left alone with the reason."""

    moves: dict[TP, Move] = field(default_factory=dict)
    skipped: dict[TP, str] = field(default_factory=dict)


def min_isr_violation(
    replicas: Iterable[int], isr: Iterable[int], target: Iterable[int], min_isr: int
) -> str | None:
    """Why moving a partition from ``replicas`` to ``target`` could drop it below min ISR; None if safe.

    Kafka adds ``target - replicas`` first and removes ``replicas - target`` only once
    every target replica is in sync. The move is unsafe by itself when the target is
    smaller than ``min_isr`` (the ISR can never reach it again), or when it removes
    in-sync replicas and fewer than ``min_isr`` in-sync replicas would remain meanwhile.
    """
    cur, in_sync, tgt = list(replicas), set(isr), list(target)
    if len(tgt) < min_isr:
        return f"target {tgt} has fewer than min.insync.replicas={min_isr} replicas"
    removed_in_sync = in_sync & (set(cur) - set(tgt))
    if removed_in_sync and len(in_sync - removed_in_sync) < min_isr:
        return (
            f"removing in-sync replica(s) {sorted(removed_in_sync)} leaves ISR "
            f"{sorted(in_sync - removed_in_sync)} below min.insync.replicas={min_isr}"
        )
    return None


class BrokerLoad:
    """Replicas and preferred leaderships per live broker, kept current as moves are planned."""

    def __init__(self, brokers: Iterable[int], assignments: Iterable[Sequence[int]] = ()) -> None:
        self.replicas: Counter[int] = Counter({b: 0 for b in brokers})
        self.leaders: Counter[int] = Counter({b: 0 for b in self.replicas})
        for replicas in assignments:
            for position, b in enumerate(replicas):
                self.place(b, position)

    def place(self, broker: int, position: int) -> None:
        """Count a replica of ``broker`` at ``position`` of a replica list (0 = preferred leader)."""
        if broker in self.replicas:
            self.replicas[broker] += 1
            self.leaders[broker] += position == 0

    def unplace(self, broker: int, position: int) -> None:
        if broker in self.replicas:
            self.replicas[broker] -= 1
            self.leaders[broker] -= position == 0

    def least_loaded(self, candidates: Iterable[int]) -> int | None:
        """Fewest replicas, then fewest preferred leaderships, then the lowest id; None if no candidate."""
        known = [b for b in candidates if b in self.replicas]
        return min(known, key=lambda b: (self.replicas[b], self.leaders[b], b)) if known else None

    def most_loaded(self) -> int:
        """Most replicas, then most preferred leaderships, then the lowest id."""
        return min(self.replicas, key=lambda b: (-self.replicas[b], -self.leaders[b], b))

    def spread(self) -> int:
        """Replicas on the most loaded broker minus replicas on the least loaded one."""
        return max(self.replicas.values()) - min(self.replicas.values()) if self.replicas else 0


def plan_replacements(health: ClusterHealth, remove: Iterable[int], live: Iterable[int] | None = None) -> Placement:
    """Move every replica off the brokers in ``remove`` onto live brokers, evenly (see module doc).

    ``live`` defaults to the snapshot's live brokers; brokers in ``remove`` never take a
    replica. A partition that cannot be moved by the rules is in ``skipped``.
    """
    removed = set(remove)
    live_set = sorted((set(health.live_brokers) if live is None else set(live)) - removed)
    load = BrokerLoad(live_set, (p.replicas for p in health.partitions.values()))
    plan = Placement()
    for tp, p in sorted(health.partitions.items()):
        gone = [b for b in p.replicas if b in removed]
        if not gone:
            continue
        if p.offline:
            plan.skipped[tp] = "offline: no leader to copy from"
            continue
        target = list(p.replicas)
        for i, b in enumerate(target):
            if b in removed:
                choice = load.least_loaded(c for c in live_set if c not in target)
                if choice is None:
                    break
                target[i] = choice
                load.place(choice, i)
        reason = _unplaceable(p, target, removed, gone, live_set)
        if reason is not None:
            for i, b in enumerate(target):
                if b != p.replicas[i]:
                    load.unplace(b, i)
            plan.skipped[tp] = reason
            continue
        plan.moves[tp] = Move(tuple(p.replicas), tuple(target))
    return plan


def _unplaceable(p: PartitionHealth, target: list[int], removed: set[int], gone: list[int], live: list[int]) -> str | None:
    if any(b in removed for b in target):
        return (
            f"no live broker left to take the replica(s) of broker(s) {gone} "
            f"(replicas {list(p.replicas)}, live brokers {live})"
        )
    return min_isr_violation(p.replicas, p.isr, target, p.min_isr)


def plan_balanced(health: ClusterHealth, topics: Iterable[str] | None = None, live: Iterable[int] | None = None) -> Placement:
    """Spread each topic's replicas and preferred leaders evenly over the live brokers.

    Greedy and move-minimal, per topic: replicas on brokers that are not live are
    replaced first (as :func:`plan_replacements` does); then one replica at a time moves,
    in place, from the most to the least loaded broker until replica counts differ by at
    most one; last, replicas are reordered within partitions to even out preferred
    leaders (no data moves for that). Moves that could drop a partition below min ISR
    are not made; offline partitions are skipped.
    """
    brokers = sorted(health.live_brokers if live is None else set(live))
    wanted = None if topics is None else set(topics)
    plan = Placement()
    by_topic: dict[str, list[PartitionHealth]] = {}
    for tp, p in sorted(health.partitions.items()):
        if wanted is None or tp[0] in wanted:
            by_topic.setdefault(tp[0], []).append(p)
    if not brokers:
        plan.skipped.update({p.tp: "no live brokers to balance over" for ps in by_topic.values() for p in ps})
        return plan
    for parts in by_topic.values():
        _balance_topic(parts, brokers, plan)
    return plan


def _balance_topic(parts: list[PartitionHealth], brokers: list[int], plan: Placement) -> None:
    online = [p for p in parts if not p.offline]
    plan.skipped.update({p.tp: "offline: no leader to copy from" for p in parts if p.offline})
    target = {p.tp: list(p.replicas) for p in online}
    load = BrokerLoad(brokers, target.values())

    def safe(p: PartitionHealth, candidate: list[int]) -> bool:
        return min_isr_violation(p.replicas, p.isr, candidate, p.min_isr) is None

    for p in online:  # replicas on brokers that are gone
        reps = target[p.tp]
        for i, b in enumerate(reps):
            if b not in load.replicas:
                choice = load.least_loaded(x for x in brokers if x not in reps)
                if choice is not None and safe(p, [*reps[:i], choice, *reps[i + 1:]]):
                    reps[i] = choice
                    load.place(choice, i)
    for _ in range(10 * len(online) * len(brokers)):  # even out replica counts
        hi, lo = load.most_loaded(), load.least_loaded(brokers)
        if lo is None or load.replicas[hi] - load.replicas[lo] <= 1:
            break
        for p in online:
            reps = target[p.tp]
            if hi in reps and lo not in reps:
                i = reps.index(hi)
                candidate = [*reps[:i], lo, *reps[i + 1:]]
                if safe(p, candidate):
                    target[p.tp] = candidate
                    load.unplace(hi, i)
                    load.place(lo, i)
                    break
        else:
            break
    leaders = Counter({b: 0 for b in brokers})
    leaders.update(reps[0] for reps in target.values() if reps)
    for _ in range(10 * len(online) * len(brokers)):  # even out preferred leaders: reorder only
        hi = min(brokers, key=lambda b: (-leaders[b], b))
        lo = min(brokers, key=lambda b: (leaders[b], b))
        if leaders[hi] - leaders[lo] <= 1:
            break
        for reps in target.values():
            if reps and reps[0] == hi and lo in reps:
                j = reps.index(lo)
                reps[0], reps[j] = reps[j], reps[0]
                leaders[hi] -= 1
                leaders[lo] += 1
                break
        else:
            break
    for p in online:
        if tuple(target[p.tp]) != p.replicas:
            plan.moves[p.tp] = Move(p.replicas, tuple(target[p.tp]))

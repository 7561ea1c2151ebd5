"""The gate: which pending runs may start now under their definition's ``maxConcurrentRuns`` and their pool's
slots, and why the others wait. Pure: the dispatcher's leader asks it with the runs and pools as folded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from queue_core.domain.runs import PENDING, RECENTLY_SUBMITTED, TERMINAL
from queue_core.specs.run_control import DEFAULT_PRIORITY

__all__ = [
    "WAITING_FOR",
    "Decision",
    "Need",
    "decide_gate",
    "holds_slots",
    "is_gated",
    "is_waiting",
    "needs_of",
    "priority_of",
    "start_order",
]

WAITING_FOR = "Waiting for "  # how every reason the gate gives starts


@dataclass(frozen=True)
class Need:
    """What a run takes from one gate while it holds: ``amount`` of ``gate``'s capacity (None: no such pool)."""

    gate: str
    amount: int
    capacity: int | None
    reason: str


@dataclass
class Decision:
    """The runs to start now (in order) and, for each run that waits, why."""

    admit: list[str] = field(default_factory=list)
    wait: dict[str, str] = field(default_factory=dict)


def is_gated(job: Mapping[str, Any]) -> bool:
    """Whether a run of ``job`` goes through the gate (it has a limit or a pool) rather than straight to its queue."""
    return "maxConcurrentRuns" in job or "pool" in job


def priority_of(job: Mapping[str, Any]) -> int:
    return int(job.get("priority", DEFAULT_PRIORITY))  # absent: defined without one


def is_waiting(doc: Mapping[str, Any]) -> bool:
    """A gated run not yet let through: just submitted, or held back by the gate."""
    return doc["status"] == PENDING and (doc["reason"] == RECENTLY_SUBMITTED or doc["reason"].startswith(WAITING_FOR))


def holds_slots(doc: Mapping[str, Any]) -> bool:
    """A gated run holds its slots from the moment the gate lets it through until it ends: queued, running
    (across a worker crash, until ``WorkerLost``), and waiting to retry. A cancel or any end frees them."""
    return doc["status"] not in TERMINAL and not is_waiting(doc)


def needs_of(doc: Mapping[str, Any], pools: Mapping[str, int]) -> list[Need]:
    """The gates a run passes: its definition's concurrency limit, its pool (``pools``: name -> slots)."""
    job = doc["job"]
    needs = []
    if "maxConcurrentRuns" in job:
        limit = job["maxConcurrentRuns"]
        # With the name: a workflow's inline tasks share the workflow's id, each its own limit.
        key = f"definition:{doc['definition_id']}:{doc['definition']}"
        needs.append(Need(key, 1, limit, f"{WAITING_FOR}a slot (maxConcurrentRuns {limit})"))
    if "pool" in job:
        name = job["pool"]
        reason = f"{WAITING_FOR}pool {name}" + ("" if name in pools else " (no such pool)")
        needs.append(Need(f"pool:{name}", job["poolSlots"], pools.get(name), reason))
    return needs


def start_order(doc: Mapping[str, Any]) -> tuple[int, float]:
    """Higher priority first, then submission order."""
    return (-priority_of(doc["job"]), doc["order"])


def decide_gate(
    waiting: Iterable[Mapping[str, Any]], holding: Sequence[Mapping[str, Any]], pools: Mapping[str, int]
) -> Decision:
    """Let waiting runs through while each of their gates has room, highest priority first, then in submission
    order; a run that must wait blocks the later ones at the same gate (no overtaking: a run needing three slots
    is not starved by runs needing one), and runs that pass other gates go on.
    """
    used: dict[str, int] = {}
    for doc in holding:
        for need in needs_of(doc, pools):
            used[need.gate] = used.get(need.gate, 0) + need.amount
    blocked: set[str] = set()
    decision = Decision()
    for doc in sorted(waiting, key=start_order):
        needs = needs_of(doc, pools)
        full = [
            n for n in needs if n.gate in blocked or n.capacity is None or used.get(n.gate, 0) + n.amount > n.capacity
        ]
        if full:
            blocked.update(n.gate for n in full)
            decision.wait[doc["id"]] = full[0].reason
            continue
        for need in needs:
            used[need.gate] = used.get(need.gate, 0) + need.amount
        decision.admit.append(doc["id"])
    return decision

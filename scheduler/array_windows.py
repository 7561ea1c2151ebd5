"""The dispatcher's part in for-each and ``N_TO_N`` arrays: their children go on RQ as room is made for them
(a for-each's window moves on, an upstream child ends), not all at once when the parent is submitted."""

from __future__ import annotations

from collections.abc import Mapping

import redis
import structlog

from queue_core.domain.gate import priority_of
from queue_core.eventlog.events import RunSubmitted
from queue_core.eventlog.store import EventStore
from queue_core.services.for_each import ForEachChildren, is_for_each
from queue_core.services.lifecycle import RunLifecycle
from queue_core.services.n_to_n import NToNChildren
from queue_core.services.workflow_runs import WorkflowEngine
from scheduler.rq_jobs import enqueue_first_attempts

__all__ = ["ArrayWindows", "is_windowed"]

log = structlog.get_logger("jobledger.dispatcher")
KINDS_KEPT = 10_000  # array parents remembered for what their children's ends move on


def is_windowed(event: RunSubmitted) -> bool:
    """Whether a submitted run is a for-each task's or an ``N_TO_N`` array task's parent."""
    return event.for_each is not None or bool(event.n_to_n)


class ArrayWindows:
    """Starts windowed array parents and releases their children as others end; idempotent, like every reaction."""

    def __init__(self, connection: redis.Redis, store: EventStore, engine: WorkflowEngine) -> None:
        self.redis = connection
        self.lifecycle = RunLifecycle(store)
        self.engine = engine  # the workflow runs' folds, shared with the workflow reactions
        self.for_each = ForEachChildren(store)
        self.n_to_n = NToNChildren(store)
        # array parent -> (a for-each's?, its workflow run when an N_TO_N task follows it, its task)
        self._kinds: dict[str, tuple[bool, str | None, str | None]] = {}
        self._targets: dict[str, tuple[str, int]] = {}  # parent -> (cluster, priority) of its children

    def start(self, parent: str, event: RunSubmitted) -> None:
        """A for-each task's run (its first window) or an ``N_TO_N`` array task's (what its upstream allows)."""
        children = self.for_each.start(parent) if event.for_each is not None else self.n_to_n.start(parent)
        if children:
            enqueue_first_attempts(self.redis, event.cluster, children, priority_of(event.job))
            log.info("array job's children queued", run_id=parent, children=len(children))

    def _kind(self, parent: str) -> tuple[bool, str | None, str | None] | None:
        """(a for-each's parent?, its workflow run when an ``N_TO_N`` task follows it, its task); None for a run
        that is no array parent. Read once per parent: none of it changes."""
        kind = self._kinds.get(parent)
        if kind is None:
            doc, _ = self.lifecycle.load(parent)
            if doc is None or doc["array"] is None:
                return None
            followed = None
            if doc["workflow_run"] is not None:
                flow, _ = self.engine.load(doc["workflow_run"])
                plans = (flow or {}).get("plan", {}).values()
                followed = doc["workflow_run"] if any(doc["task"] in p.get("n_to_n", ()) for p in plans) else None
            if len(self._kinds) >= KINDS_KEPT:
                self._kinds.clear()
            kind = self._kinds[parent] = (is_for_each(doc), followed, doc["task"])
        return kind

    def is_plain(self, parent: str) -> bool:
        """Whether ``parent`` is an array job's parent whose children's ends release nothing: no for-each's, and
        no ``N_TO_N`` task follows it (its ends may wait to be noted together)."""
        kind = self._kind(parent)
        return kind is not None and not kind[0] and kind[1] is None

    def note_ended(self, parent: str, ended: Mapping[int, str]) -> bool | None:
        """Note the ends on a for-each parent and move its window on, in one append (on the fold kept for its
        window); True when it ended, None when ``parent`` is no for-each's (``ArrayChildren.note_ended``)."""
        kind = self._kind(parent)
        if kind is None or not kind[0]:
            return None
        ended_now, children = self.for_each.move_on(parent, ended)
        self._enqueue(parent, children)
        return ended_now

    def children_ended(self, parent: str) -> None:
        """Children of ``parent`` ended (and were noted on it): the ``N_TO_N`` arrays following ``parent``
        release the children whose upstream ended. A plain array no task follows child by child costs one
        load, the first time."""
        kind = self._kind(parent)
        if kind is None:
            return
        _, workflow_run, task = kind  # a for-each's window moved on as its ends were noted (note_ended)
        if workflow_run is not None:
            flow, _ = self.engine.load(workflow_run)
            for name, plan in (flow or {}).get("plan", {}).items():
                run = flow["tasks"][name]["run"] if flow else None
                if run is not None and task in plan.get("n_to_n", ()):
                    self._enqueue(run, self.n_to_n.release(run))

    def _enqueue(self, parent: str, children: list[str]) -> None:
        target = self._target(parent) if children else None
        if target is not None:
            enqueue_first_attempts(self.redis, target[0], children, target[1])

    def _target(self, run_id: str) -> tuple[str, int] | None:
        """The cluster and priority a parent's children are queued with; read once per parent (its history
        grows with its children: reading it whole at every release cost more than the release)."""
        target = self._targets.get(run_id)
        if target is None:
            doc, _ = self.lifecycle.load(run_id)
            if doc is None:
                return None
            if len(self._targets) >= KINDS_KEPT:
                self._targets.clear()
            target = self._targets[run_id] = (doc["cluster"], priority_of(doc["job"]))
        return target

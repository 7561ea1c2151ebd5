"""The oracle: a set-style check of the whole log that nothing was lost, duplicated or applied out of order."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from queue_core.domain.names import IDEMPOTENCY_KIND
from queue_core.domain.workflow_runs import apply_workflow_run, is_going
from queue_core.errors import UnsafeStore
from queue_core.eventlog.archive import events_after
from queue_core.eventlog.events import Recorded
from queue_core.eventlog.health import check_log_head
from queue_core.eventlog.positions import position_key
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels, verify
from queue_core.readmodels.projections import QUARANTINE, fold

__all__ = ["OracleReport", "check_log", "check_records", "quarantine_line"]

RUN_TERMINAL_EVENTS = frozenset({"RunSucceeded", "RunFailed", "RunCancelled"})
# Appended in the batch of a run's RunSucceeded, after it: the only events a run may have after its end.
AFTER_TERMINAL = frozenset({"DatasetWritten"})
MAX_PROBLEMS = 50


@dataclass(frozen=True)
class OracleReport:
    """What ``check_log`` found: counts of what it looked at and every rule the log breaks."""

    events: int
    aggregates: int
    runs: int
    terminal_runs: int
    workflow_runs: int
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        counts = (
            f"{self.events} events, {self.aggregates} aggregates, {self.runs} runs "
            f"({self.terminal_runs} ended), {self.workflow_runs} workflow runs"
        )
        if self.ok:
            return f"{counts}: the log holds"
        return f"{counts}: {len(self.problems)} problems, first: {self.problems[0]}"


@dataclass
class _Run:
    submitted: int = 0
    first_type: str = ""
    ends: list[str] = field(default_factory=list)
    after_end: list[str] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    max_attempts: int | None = None


@dataclass
class _WorkflowRun:
    started: int = 0
    submitted: Counter[str] = field(default_factory=Counter)
    rounds: Counter[str] = field(default_factory=Counter)
    finished: int = 0
    reruns: int = 0
    doc: dict[str, Any] | None = None
    quarantined: bool = False


class _Checker:
    """Folds the log once, keeping only what the rules need."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.events = 0
        self.versions: dict[str, int] = {}
        self.event_ids: set[str] = set()
        self.runs: dict[str, _Run] = {}
        self.workflow_runs: dict[str, _WorkflowRun] = {}
        self.names: dict[str, str | None] = {}  # name aggregate -> owner while held
        self.claims: Counter[str] = Counter()
        self.task_runs: dict[str, str] = {}  # child run -> workflow run that submitted it
        self.child_of: dict[str, str | None] = {}  # run -> the workflow run its RunSubmitted names
        self.ticks: dict[tuple[str, str], str] = {}  # (schedule, tick) -> how it was decided

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def see(self, rec: Recorded) -> None:
        """Take one entry into account; one that breaks the checker's own reading is a problem, not a crash."""
        try:
            self._see(rec)
        except Exception as exc:  # an event of the right type with fields of the wrong kind
            self.problem(f"{rec.aggregate}: its {rec.type} at {rec.position} is malformed ({exc!r})"[:300])

    def _see(self, rec: Recorded) -> None:
        self.events += 1
        if rec.event_id in self.event_ids:
            self.problem(f"event id {rec.event_id} is on the log twice (second at {rec.position})")
        self.event_ids.add(rec.event_id)
        expected = self.versions.get(rec.aggregate, 0) + 1
        if rec.version != expected:
            self.problem(f"{rec.aggregate}: version {rec.version} at {rec.position}, expected {expected}")
        self.versions[rec.aggregate] = rec.version
        if rec.type.startswith("Run"):
            self._run(rec)
        elif rec.type == "DatasetWritten":
            run = self.runs.get(rec.aggregate)
            if run is None:
                self.problem(f"{rec.aggregate}: DatasetWritten on no run at {rec.position}")
        elif rec.type in ("NameClaimed", "NameReleased"):
            self._name(rec)
        if rec.aggregate in self.workflow_runs or rec.type == "WorkflowRunStarted":
            self._workflow_run(rec)
        if rec.type in ("ScheduleFired", "ScheduleTickSkipped", "ScheduleTicksMissed"):
            self._ticks(rec)

    def _ticks(self, rec: Recorded) -> None:
        """A schedule's tick is decided once: fired, skipped or missed (a queued tick fires later, once)."""
        event: Any = rec.event
        for tick in event.ticks if rec.type == "ScheduleTicksMissed" else (event.tick,):
            before = self.ticks.get((rec.aggregate, tick))
            if before is not None:
                self.problem(f"schedule {rec.aggregate}: tick {tick} decided twice ({before}, then {rec.type})")
            self.ticks[(rec.aggregate, tick)] = rec.type

    def _run(self, rec: Recorded) -> None:
        run = self.runs.setdefault(rec.aggregate, _Run())
        event: Any = rec.event
        if not run.first_type:
            run.first_type = rec.type
            if rec.type != "RunSubmitted":
                self.problem(f"run {rec.aggregate} starts with {rec.type}, not RunSubmitted")
        if run.ends and rec.type not in AFTER_TERMINAL:
            run.after_end.append(rec.type)
        if rec.type == "RunSubmitted":
            run.submitted += 1
            run.max_attempts = 1 + int(event.job["retryStrategy"]["numRetries"])
            self.child_of[rec.aggregate] = event.workflow_run
        elif rec.type == "RunStarted":
            if event.attempt in run.started or (run.started and event.attempt < run.started[-1]):
                self.problem(f"run {rec.aggregate}: attempt {event.attempt} started again at {rec.position}")
            run.started.append(event.attempt)
        elif rec.type in RUN_TERMINAL_EVENTS:
            run.ends.append(rec.type)

    def _name(self, rec: Recorded) -> None:
        event: Any = rec.event
        held = self.names.get(rec.aggregate)
        if rec.type == "NameClaimed":
            if held is not None:
                self.problem(f"{rec.aggregate} claimed by {event.owner} while {held} holds it")
            self.names[rec.aggregate] = event.owner
            self.claims[rec.aggregate] += 1
            if event.kind == IDEMPOTENCY_KIND and self.claims[rec.aggregate] > 1:
                self.problem(f"idempotency key {event.name} claimed {self.claims[rec.aggregate]} times")
        else:
            if held != event.owner:
                self.problem(f"{rec.aggregate} released by {event.owner}, held by {held}")
            self.names[rec.aggregate] = None

    def _workflow_run(self, rec: Recorded) -> None:
        wrun = self.workflow_runs.setdefault(rec.aggregate, _WorkflowRun())
        event: Any = rec.event
        if wrun.quarantined:
            return
        try:
            wrun.doc = apply_workflow_run(wrun.doc, rec)
        except Exception as exc:  # a history that does not fold is reported, not a crash of the check
            wrun.quarantined = True
            self.problem(f"workflow run {rec.aggregate} does not fold at {rec.position} ({rec.type}): {exc!r}"[:300])
            return
        if rec.type == "WorkflowRunStarted":
            wrun.started += 1
            if rec.version != 1:
                self.problem(f"workflow run {rec.aggregate} started again at {rec.position}")
        elif rec.type == "TaskSubmitted":
            wrun.submitted[event.task] += 1
            if wrun.submitted[event.task] > 1 + wrun.rounds[event.task]:
                self.problem(f"workflow run {rec.aggregate}: task {event.task} submitted twice in one round")
            if event.run in self.task_runs:
                self.problem(f"run {event.run} submitted for two tasks")
            self.task_runs[event.run] = rec.aggregate
        elif rec.type == "TaskRerunRequested":
            wrun.reruns += 1
            for task in event.tasks:
                wrun.rounds[task] += 1
        elif rec.type == "WorkflowRunFinished":
            wrun.finished += 1
            if wrun.finished > 1 + wrun.reruns:
                self.problem(f"workflow run {rec.aggregate} finished twice at {rec.position}")

    def finish(self, require_terminal: bool) -> None:
        for run_id, run in self.runs.items():
            if run.submitted != 1:
                self.problem(f"run {run_id} has {run.submitted} RunSubmitted events")
            if len(run.ends) > 1:
                self.problem(f"run {run_id} ended {len(run.ends)} times: {', '.join(run.ends)}")
            elif require_terminal and not run.ends:
                self.problem(f"run {run_id} never ended")
            if run.after_end:
                self.problem(f"run {run_id} has {', '.join(run.after_end)} after it ended")
            if run.max_attempts is not None and len(run.started) > run.max_attempts:
                self.problem(f"run {run_id} started {len(run.started)} attempts, at most {run.max_attempts} allowed")
        for child, parent in self.task_runs.items():
            if self.child_of.get(child) != parent:
                self.problem(f"task run {child} of workflow run {parent} has no RunSubmitted naming it")
        for wrun_id, wrun in self.workflow_runs.items():
            doc = wrun.doc
            if not require_terminal or doc is None:
                continue
            if is_going(doc):
                self.problem(f"workflow run {wrun_id} never ended (it is {doc['status']})")


def _executions(checker: _Checker, executions: Iterable[str]) -> None:
    """Each ``RUN:ATTEMPT`` marker is one execution of job code: at most one per attempt started."""
    for marker, times in Counter(executions).items():
        run_id, _, attempt_text = marker.rpartition(":")
        run = checker.runs.get(run_id)
        started = run.started if run else []
        allowed = 1 if attempt_text.isdigit() and int(attempt_text) in started else 0
        if times > allowed:
            checker.problem(f"job code of {marker} ran {times} times; {allowed} attempt(s) of it started")


def _position_lists(store: EventStore, checker: _Checker, last: str) -> None:
    """Each aggregate's position list holds as many events up to ``last`` as the log gave it.

    The system may go on appending while the oracle reads: positions after the last log position read
    are not counted.
    """
    longer = []
    for aggregate, length in store.versions(checker.versions).items():
        logged = checker.versions[aggregate]
        if length < logged:
            checker.problem(f"{aggregate}: its position list holds {length} events, the log {logged}")
        elif length > logged:
            longer.append(aggregate)
    for aggregate in longer:
        held, logged = store.version(aggregate, until=last), checker.versions[aggregate]
        if held != logged:
            checker.problem(f"{aggregate}: its position list holds {held} events up to {last}, the log {logged}")


def check_records(records: Iterable[Recorded], require_terminal: bool = False) -> list[str]:
    """The problems of a sequence of log entries on their own (an export about to be imported, say): every
    rule of ``check_log`` that needs no store, and every entry folds without quarantining its aggregate."""
    checker = _Checker()
    state: dict[str, dict[str, Any]] = {}
    for rec in records:
        checker.see(rec)
        fold(state, [rec])
    checker.finish(require_terminal)
    for entry in sorted(state.get(QUARANTINE, {}).values(), key=lambda e: position_key(e["position"])):
        checker.problem(quarantine_line(entry))
    return checker.problems


def check_log(
    store: EventStore,
    acknowledged: Iterable[str] = (),
    executions: Iterable[str] = (),
    require_terminal: bool = False,
    projections: bool = True,
) -> OracleReport:
    """Check the whole log (the archived part too, after a trim) against jobledger's promises.

    - every ``acknowledged`` id (a run, workflow run, definition or event id a command returned) is on the log;
    - the log's oldest entry follows from its start (nothing removed but by ``jobledger trim``);
    - no event id twice; each aggregate's versions run 1, 2, 3 ... and its position list is as long;
    - each run: one ``RunSubmitted`` first, at most one end (exactly one with ``require_terminal``) and
      nothing after it, attempts started once each and no more than its retry strategy allows;
    - a name (definition, cluster, idempotency key) held by one owner at a time, an idempotency key claimed once;
    - a workflow task submitted once per round, each child run submitted by the workflow run it names;
    - a schedule's tick decided once: fired, skipped or missed;
    - ``executions`` (``RUN:ATTEMPT`` markers left by job code) never more than the attempts started;
    - with ``projections``, read models rebuilt from the log equal the live ones.
    """
    checker = _Checker()
    try:
        check_log_head(store)
    except UnsafeStore as exc:
        checker.problem(str(exc))
    last = "0-0"
    for rec in events_after(store):
        checker.see(rec)
        last = rec.position
    checker.finish(require_terminal)
    damaged = store.cold.damaged()  # the cold tier's files against their manifest
    for problem in damaged:
        checker.problem(problem)
    if not damaged:
        _position_lists(store, checker, last)
    for ack in dict.fromkeys(acknowledged):
        if ack not in checker.versions and ack not in checker.event_ids:
            checker.problem(f"acknowledged {ack} is not on the log")
    _executions(checker, executions)
    if projections:
        result = verify(store)
        if not result.identical:
            checker.problem(f"read models rebuilt from the log differ from the live ones: {result.difference}")
        for entry in ReadModels(store).quarantined():
            checker.problem(quarantine_line(entry))
    terminal = sum(1 for run in checker.runs.values() if run.ends)
    return OracleReport(
        events=checker.events,
        aggregates=len(checker.versions),
        runs=len(checker.runs),
        terminal_runs=terminal,
        workflow_runs=len(checker.workflow_runs),
        problems=tuple(checker.problems[:MAX_PROBLEMS]),
    )


def quarantine_line(entry: dict[str, Any]) -> str:
    """How ``check``, ``replay`` and the console name one quarantined entity."""
    return (
        f"quarantined: {entry['model']} {entry['entity']}: its {entry['type']} at {entry['position']} "
        f"does not fold ({entry['error']})"
    )

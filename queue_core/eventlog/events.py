"""Typed domain events, their envelope on the log, and the upcasters applied when reading old ones."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import orjson

__all__ = [
    "BackfillCancelled",
    "BackfillFinished",
    "BackfillRunSubmitted",
    "BackfillStarted",
    "ChainSealed",
    "ClusterRegistered",
    "ConditionEvaluated",
    "DatasetWritten",
    "DefinitionCreated",
    "DefinitionDeleted",
    "DefinitionRevised",
    "DepotAdded",
    "Event",
    "LedgerKeyAdopted",
    "NameClaimed",
    "NameReleased",
    "NewEvent",
    "NotificationAbandoned",
    "NotificationAttempted",
    "NotificationDelivered",
    "NotificationDue",
    "NotificationFailed",
    "PoolCreated",
    "PoolDeleted",
    "PoolResized",
    "PrerunScratchRemoved",
    "Recorded",
    "ReferenceSatisfied",
    "ResourceAdded",
    "RunArrayChildrenEnded",
    "RunArrayExpanded",
    "RunAttemptFailed",
    "RunCancelled",
    "RunCauseRecorded",
    "RunDurationExceeded",
    "RunFailed",
    "RunForEachCarried",
    "RunQueued",
    "RunRetryScheduled",
    "RunStarted",
    "RunSubmitted",
    "RunSucceeded",
    "RunValuesPublished",
    "RunWaiting",
    "ScheduleCreated",
    "ScheduleDeleted",
    "ScheduleEnded",
    "ScheduleFired",
    "SchedulePaused",
    "ScheduleResumed",
    "ScheduleTickQueued",
    "ScheduleTickSkipped",
    "ScheduleTicksMissed",
    "SecretDeleted",
    "SecretKeyRotated",
    "SecretSet",
    "SyncWatermarkRecorded",
    "TaskFinished",
    "TaskRerunRequested",
    "TaskSkipped",
    "TaskSubmitted",
    "TriggerFired",
    "TriggerWritesNoted",
    "WorkflowCreated",
    "WorkflowRevised",
    "WorkflowRunCancelled",
    "WorkflowRunFinished",
    "WorkflowRunStarted",
    "WorkflowRunWaiting",
    "decode",
    "encode",
    "envelope_type",
    "event_types",
    "register_upcaster",
]

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Event:
    """Base of every event: a fact in the past tense; the envelope adds id, aggregate, version, time."""

    schema_version: ClassVar[int] = 1

    def to_data(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


# -- names: uniqueness of a live name is an aggregate of its own ("name:<kind>:<name>") ----------


@dataclass(frozen=True)
class NameClaimed(Event):
    kind: str
    name: str
    owner: str


@dataclass(frozen=True)
class NameReleased(Event):
    kind: str
    name: str
    owner: str


# -- job definitions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DefinitionCreated(Event):
    name: str
    spec: Mapping[str, Any]


@dataclass(frozen=True)
class DefinitionRevised(Event):
    name: str
    definition_version: int
    spec: Mapping[str, Any]


@dataclass(frozen=True)
class DefinitionDeleted(Event):
    name: str


# -- clusters -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterRegistered(Event):
    """Schema 2 added ``engine``: the SQL engine a pipeline sent to the cluster runs on unless it names one."""

    schema_version: ClassVar[int] = 2

    name: str
    workers: int
    instance_type: str
    engine: str = "duckdb"


# -- runs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSubmitted(Event):
    """Schema 2 added ``logical_date`` (the date the run stands for) and, for a task of a workflow run,
    ``workflow_run`` and ``task``; schema 3 ``tags`` (its definition's, its workflow's or schedule's, its own);
    schema 4 ``array_size`` (an array job's parent: how many children) and, on a child, ``array_parent`` and
    ``array_index``; schema 5, on a workflow's array parent, ``for_each`` (a for-each task's run: ``items``,
    ``concurrency``, and on a repair the ``previous`` round's run) and ``n_to_n`` (the upstream array parents
    whose child i each child i waits for)."""

    schema_version: ClassVar[int] = 5

    definition_id: str
    definition: str
    definition_version: int
    cluster: str
    job: Mapping[str, Any]
    idempotency_key: str | None = None
    logical_date: str | None = None
    workflow_run: str | None = None
    task: str | None = None
    tags: tuple[str, ...] = ()
    array_size: int | None = None
    array_parent: str | None = None
    array_index: int | None = None
    for_each: Mapping[str, Any] | None = None
    n_to_n: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunArrayExpanded(Event):
    """An array job's parent whose ``size`` children the dispatcher has submitted (and queued): it is running."""

    size: int


@dataclass(frozen=True)
class RunArrayChildrenEnded(Event):
    """Children of an array job's parent that ended, noted on the parent: ``indexes[i]`` ended ``statuses[i]``
    (one event for the children a dispatcher saw end in one batch; the parent ends after its last child)."""

    indexes: tuple[int, ...]
    statuses: tuple[str, ...]


@dataclass(frozen=True)
class RunForEachCarried(Event):
    """A repaired for-each task's children whose item the ``previous`` round's run ran and succeeded on: counted
    SUCCEEDED on the new parent, not run again."""

    indexes: tuple[int, ...]
    previous: str


@dataclass(frozen=True)
class RunQueued(Event):
    attempt: int
    job_id: str


@dataclass(frozen=True)
class RunStarted(Event):
    """Schema 2 added ``source_revision``: the commit, ETag or resource version the attempt runs."""

    schema_version: ClassVar[int] = 2

    attempt: int
    worker: str
    host: str
    pid: int
    source_revision: str | None = None


@dataclass(frozen=True)
class RunAttemptFailed(Event):
    """Schema 2 added ``log_matches``: the indexes of the retry rules whose ``onLogMatch`` matched a line of
    the attempt's output (the worker looks; the retry decision only reads it, so replay decides the same)."""

    schema_version: ClassVar[int] = 2

    attempt: int
    reason: str
    exit_code: int | None = None
    message: str = ""
    log_matches: tuple[int, ...] = ()


@dataclass(frozen=True)
class RunRetryScheduled(Event):
    """Schema 2 added ``delay_minutes`` (the wait the strategy and its backoff chose) and ``rule``: the index
    of the retry rule that decided to retry, None when none matched."""

    schema_version: ClassVar[int] = 2

    attempt: int
    not_before: str
    delay_minutes: float | None = None
    rule: int | None = None


@dataclass(frozen=True)
class RunSucceeded(Event):
    """Schema 2 added ``result``: what a SQL run wrote (rows, columns, a preview)."""

    schema_version: ClassVar[int] = 2

    attempt: int
    result: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class RunFailed(Event):
    """Schema 2 added ``rule``: the index of the retry rule whose ``EXIT`` ended the run, None otherwise."""

    schema_version: ClassVar[int] = 2

    attempt: int
    reason: str
    exit_code: int | None = None
    message: str = ""
    rule: int | None = None


@dataclass(frozen=True)
class RunValuesPublished(Event):
    """The values an attempt published for its downstream (a JSON object of at most 48 KiB, secrets masked);
    appended in the batch of its ``RunSucceeded``."""

    attempt: int
    values: Mapping[str, Any]


@dataclass(frozen=True)
class RunCancelled(Event):
    reason: str = "Cancelled by user"
    attempt: int = 0


# -- secrets (the value lives outside the log) and resources (the content too) -------------------


@dataclass(frozen=True)
class SecretSet(Event):
    name: str


@dataclass(frozen=True)
class SecretDeleted(Event):
    name: str


@dataclass(frozen=True)
class SecretKeyRotated(Event):
    """Every secret value was re-encrypted under ``new_key_id`` (key ids are fingerprints, never keys)."""

    old_key_id: str
    new_key_id: str


@dataclass(frozen=True)
class ResourceAdded(Event):
    name: str
    resource_version: int
    checksum: str
    kind: str
    size: int
    filename: str
    storage: str


# -- depots: where datasets live -----------------------------------------------------------------


@dataclass(frozen=True)
class DepotAdded(Event):
    name: str
    type: str
    config: Mapping[str, Any]


@dataclass(frozen=True)
class DatasetWritten(Event):
    """A SQL run wrote ``dataset`` (on the run's aggregate, in the batch of its ``RunSucceeded``)."""

    dataset: str
    format: str
    save_mode: str
    rows: int
    fingerprint: str
    attempt: int
    inputs: tuple[str, ...] = ()


# -- workflows: definitions of DAGs, and their runs ---------------------------------------------


@dataclass(frozen=True)
class WorkflowCreated(Event):
    name: str
    spec: Mapping[str, Any]


@dataclass(frozen=True)
class WorkflowRevised(Event):
    name: str
    workflow_version: int
    spec: Mapping[str, Any]


@dataclass(frozen=True)
class WorkflowRunStarted(Event):
    """A workflow run and its plan: every task's job resolved and pinned, so reruns run the same versions.

    Schema 2 added to each task of the plan ``run_if``, ``condition`` (the expression of a condition task,
    which runs no job) and ``outcomes`` (upstream condition task -> the branch, ``true`` or ``false``); schema
    3 ``prerun``: a pre-run, whose outputs land in scratch and which counts for nothing else; schema 4
    ``max_concurrent_runs``: the workflow's limit on its runs at once (None: no limit)."""

    schema_version: ClassVar[int] = 4

    workflow_id: str
    workflow: str
    workflow_version: int
    logical_date: str
    tasks: Mapping[str, Any]
    references: tuple[Mapping[str, str], ...] = ()
    concurrency: int | None = None
    fail_fast: bool = False
    reference_timeout: float | None = None  # minutes a reference may be waited for; None: no limit
    prerun: bool = False
    max_concurrent_runs: int | None = None


@dataclass(frozen=True)
class WorkflowRunWaiting(Event):
    """The workflow run holds back its first tasks: ``reason`` says why (a slot under the workflow's
    ``maxConcurrentRuns``). Appended when the reason changes, not on every look."""

    reason: str


@dataclass(frozen=True)
class ReferenceSatisfied(Event):
    """A referenced definition or workflow has a succeeded run for the workflow run's logical date."""

    kind: str
    name: str
    run: str


@dataclass(frozen=True)
class TaskSubmitted(Event):
    """A task became a child run (appended in one batch with that run's ``RunSubmitted``)."""

    task: str
    run: str


@dataclass(frozen=True)
class TaskFinished(Event):
    """Schema 2 added ``values``: what the task's run published for its downstream (None: nothing)."""

    schema_version: ClassVar[int] = 2

    task: str
    run: str
    status: str
    reason: str | None = None
    attempts: int = 0
    values: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ConditionEvaluated(Event):
    """A condition task decided: ``outcome`` ``true`` or ``false`` picks the branch; None when it could not be
    decided (a value missing or mistyped), and ``reason`` says why."""

    task: str
    outcome: str | None
    reason: str


@dataclass(frozen=True)
class TaskSkipped(Event):
    """A task that will not run in this round: ``UPSTREAM_FAILED``, ``SKIPPED`` (a branch not taken, a run-if
    rule not met), ``FAILED`` (a value it reads is missing), or ``CANCELLED`` by failFast or a cancel."""

    task: str
    status: str
    reason: str


@dataclass(frozen=True)
class TaskRerunRequested(Event):
    """Run ``tasks`` again in the same workflow run: ``mode`` is ``task``, ``downstream`` or ``repair``."""

    tasks: tuple[str, ...]
    mode: str


@dataclass(frozen=True)
class WorkflowRunCancelled(Event):
    reason: str = "Cancelled by user"


@dataclass(frozen=True)
class WorkflowRunFinished(Event):
    status: str
    reason: str | None = None


# -- schedules: one aggregate per schedule; each tick gets one decision event on it ----------------


@dataclass(frozen=True)
class ScheduleCreated(Event):
    """``start``: ticks strictly after this instant count; ``cron`` or ``at`` says when the ticks are.

    Schema 2 added ``jitter`` (minutes: each tick fires a fixed, hash-derived offset of up to this later)
    and ``pause_on_failure`` (a fired run that fails pauses the schedule); schema 3 ``tags`` (given to the
    runs it fires) and ``notifications`` (its ``onMissedTick``)."""

    schema_version: ClassVar[int] = 3

    name: str
    target_kind: str  # "definition" or "workflow"
    target: str
    timezone: str
    start: str
    cron: str | None = None
    at: str | None = None
    end: str | None = None
    catchup: str = "latest"
    overlap: str = "skip"
    args: str | None = None
    cluster: str | None = None
    jitter: float = 0.0
    pause_on_failure: bool = False
    tags: tuple[str, ...] = ()
    notifications: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class SchedulePaused(Event):
    """Schema 2 added ``note`` (why, in words) and ``run`` (the failed run, when the schedule paused itself)."""

    schema_version: ClassVar[int] = 2

    name: str
    note: str = ""
    run: str | None = None


@dataclass(frozen=True)
class ScheduleResumed(Event):
    """Ticks count again from ``start``: those that fell while paused are neither fired nor caught up."""

    name: str
    start: str


@dataclass(frozen=True)
class ScheduleDeleted(Event):
    name: str


@dataclass(frozen=True)
class ScheduleFired(Event):
    """The tick submitted ``run`` (or started ``workflow_run``); ``caught_up``: it had been missed.

    Schema 2 added ``manual``: fired on request, outside the cadence (its tick is the request's time)."""

    schema_version: ClassVar[int] = 2

    tick: str
    logical_date: str
    run: str | None = None
    workflow_run: str | None = None
    caught_up: bool = False
    replaced: str | None = None
    manual: bool = False


@dataclass(frozen=True)
class ScheduleTickSkipped(Event):
    """``reason``: ``overlap`` (``run`` was still active) or ``error`` (the submission was refused)."""

    tick: str
    logical_date: str
    reason: str
    run: str | None = None
    message: str = ""


@dataclass(frozen=True)
class ScheduleTicksMissed(Event):
    """Ticks whose time passed while no scheduler ran, left unfired by the catch-up policy."""

    ticks: tuple[str, ...]


@dataclass(frozen=True)
class ScheduleTickQueued(Event):
    """The tick waits for ``behind`` (the active run) to end; it fires with a ``ScheduleFired`` later."""

    tick: str
    logical_date: str
    behind: str | None = None
    caught_up: bool = False


@dataclass(frozen=True)
class ScheduleEnded(Event):
    """No tick is left: the ``--at`` tick was handled, or the next tick is after ``--end``."""

    reason: str


_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        NameClaimed,
        NameReleased,
        DefinitionCreated,
        DefinitionRevised,
        DefinitionDeleted,
        ClusterRegistered,
        RunSubmitted,
        RunArrayExpanded,
        RunArrayChildrenEnded,
        RunQueued,
        RunStarted,
        RunAttemptFailed,
        RunRetryScheduled,
        RunSucceeded,
        RunValuesPublished,
        RunFailed,
        RunCancelled,
        SecretSet,
        SecretDeleted,
        SecretKeyRotated,
        ResourceAdded,
        DepotAdded,
        DatasetWritten,
        WorkflowCreated,
        WorkflowRevised,
        WorkflowRunStarted,
        ReferenceSatisfied,
        TaskSubmitted,
        TaskFinished,
        ConditionEvaluated,
        TaskSkipped,
        TaskRerunRequested,
        WorkflowRunCancelled,
        WorkflowRunFinished,
        ScheduleCreated,
        SchedulePaused,
        ScheduleResumed,
        ScheduleDeleted,
        ScheduleFired,
        ScheduleTickSkipped,
        ScheduleTicksMissed,
        ScheduleTickQueued,
        ScheduleEnded,
    )
}
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def _run_started_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "source_revision": None}


_UPCASTERS[("RunStarted", 1)] = _run_started_1_to_2


def _run_submitted_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "logical_date": None, "workflow_run": None, "task": None}


_UPCASTERS[("RunSubmitted", 1)] = _run_submitted_1_to_2


def _run_succeeded_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "result": None}


_UPCASTERS[("RunSucceeded", 1)] = _run_succeeded_1_to_2


def _run_attempt_failed_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "log_matches": ()}


_UPCASTERS[("RunAttemptFailed", 1)] = _run_attempt_failed_1_to_2


def _run_retry_scheduled_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "delay_minutes": None, "rule": None}


_UPCASTERS[("RunRetryScheduled", 1)] = _run_retry_scheduled_1_to_2


def _run_failed_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "rule": None}


_UPCASTERS[("RunFailed", 1)] = _run_failed_1_to_2


def _schedule_created_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "jitter": 0.0, "pause_on_failure": False}


_UPCASTERS[("ScheduleCreated", 1)] = _schedule_created_1_to_2


def _schedule_created_2_to_3(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "tags": (), "notifications": None}


_UPCASTERS[("ScheduleCreated", 2)] = _schedule_created_2_to_3


def _run_submitted_2_to_3(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "tags": ()}


_UPCASTERS[("RunSubmitted", 2)] = _run_submitted_2_to_3


def _run_submitted_3_to_4(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "array_size": None, "array_parent": None, "array_index": None}


_UPCASTERS[("RunSubmitted", 3)] = _run_submitted_3_to_4


def _run_submitted_4_to_5(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "for_each": None, "n_to_n": ()}


_UPCASTERS[("RunSubmitted", 4)] = _run_submitted_4_to_5


def _schedule_paused_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "note": "", "run": None}


_UPCASTERS[("SchedulePaused", 1)] = _schedule_paused_1_to_2


def _cluster_registered_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "engine": "duckdb"}


_UPCASTERS[("ClusterRegistered", 1)] = _cluster_registered_1_to_2


def _schedule_fired_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "manual": False}


_UPCASTERS[("ScheduleFired", 1)] = _schedule_fired_1_to_2


def _task_finished_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "values": None}


_UPCASTERS[("TaskFinished", 1)] = _task_finished_1_to_2


def _workflow_run_started_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    tasks = {
        name: {"run_if": "ALL_SUCCESS", "condition": None, "outcomes": {}, **task}
        for name, task in data["tasks"].items()
    }
    return {**data, "tasks": tasks}


_UPCASTERS[("WorkflowRunStarted", 1)] = _workflow_run_started_1_to_2


def _workflow_run_started_2_to_3(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "prerun": False}


_UPCASTERS[("WorkflowRunStarted", 2)] = _workflow_run_started_2_to_3


def _workflow_run_started_3_to_4(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "max_concurrent_runs": None}


_UPCASTERS[("WorkflowRunStarted", 3)] = _workflow_run_started_3_to_4


def _notification_due_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "deliverer": None, "lease_until": None}


_UPCASTERS[("NotificationDue", 1)] = _notification_due_1_to_2


def event_types() -> dict[str, type[Event]]:
    """Every event type by name."""
    return dict(_TYPES)


def register_upcaster(type_name: str, from_version: int, upcaster: Upcaster) -> None:
    """Register ``upcaster`` to turn data of ``type_name`` at ``from_version`` into the next version."""
    _UPCASTERS[(type_name, from_version)] = upcaster


@dataclass(frozen=True)
class NewEvent:
    """An event about to be appended: its aggregate, and an id that makes a retried append idempotent."""

    aggregate: str
    event: Event
    event_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)


class Recorded(NamedTuple):
    """An event as the log holds it: the envelope and the typed event.

    A named tuple rather than a dataclass: replay builds one per event, and this is the cheapest.
    """

    position: str
    event_id: str
    type: str
    aggregate: str
    version: int
    time: str
    event: Event

    def to_json_dict(self) -> dict[str, Any]:
        """The shape ``jobledger events --json`` prints."""
        return {
            "position": self.position,
            "time": self.time,
            "type": self.type,
            "aggregate": self.aggregate,
            "version": self.version,
            "data": self.event.to_data(),
        }


def encode(new: NewEvent, version: int, time: str) -> bytes:
    """The envelope bytes stored on the log for ``new`` at ``version``."""
    event = new.event
    return orjson.dumps(
        {
            "id": new.event_id,
            "type": type(event).__name__,
            "agg": new.aggregate,
            "v": version,
            "t": time,
            "sv": event.schema_version,
            "d": event,  # orjson writes a dataclass's fields in order: the bytes of to_data(), faster
        }
    )


def decode(position: str, payload: bytes) -> Recorded:
    """The typed event for a log entry, upcast to the current schema."""
    envelope = orjson.loads(payload)
    type_name = envelope["type"]
    data = envelope["d"]
    schema = envelope["sv"]
    cls = _TYPES[type_name]
    if schema == cls.schema_version:
        event = _trusted(cls, data)
    else:
        while schema < cls.schema_version:
            data = _UPCASTERS[(type_name, schema)](data)
            schema += 1
        event = cls(**data)
    return Recorded(position, envelope["id"], type_name, envelope["agg"], envelope["v"], envelope["t"], event)


_ID_OPEN = b'{"id":"'
_TYPE_OPEN = b',"type":"'


def envelope_type(payload: bytes) -> str:
    """The event type an envelope holds, read without decoding the envelope (for reads filtered by type).

    ``encode`` writes the id first and the type second; an envelope written any other way is decoded.
    """
    if payload.startswith(_ID_OPEN):
        start = payload.find(b'"', len(_ID_OPEN)) + 1
        if payload.startswith(_TYPE_OPEN, start):
            start += len(_TYPE_OPEN)
            end = payload.find(b'"', start)
            if end > start:
                return payload[start:end].decode()
    return str(orjson.loads(payload)["type"])


def _trusted(cls: type[Event], data: dict[str, Any]) -> Event:
    """An event from data ``encode`` wrote at the class's current schema version: exactly its fields.

    This skips the frozen dataclass ``__init__``, which costs more than the JSON decoding on replay;
    the result equals ``cls(**data)`` and is just as frozen.
    """
    event = object.__new__(cls)
    event.__dict__.update(data)
    return event


# -- the ledger key: its adoption, and the seals it signs over the chain (eventlog/seals.py) ----------


@dataclass(frozen=True)
class LedgerKeyAdopted(Event):
    """The log is sealed from here on by the key ``key_id``; ``public_key`` (PEM) is its public half, for
    reference only: an auditor checks seals with a public key taken from a file they trust, not from the log."""

    key_id: str
    public_key: str


@dataclass(frozen=True)
class ChainSealed(Event):
    """The ledger key's Ed25519 ``signature`` (hex) over the chain ``head`` at log ``position``."""

    position: str
    head: str
    key_id: str
    signature: str


_TYPES.update({cls.__name__: cls for cls in (LedgerKeyAdopted, ChainSealed)})


# -- what caused a run, data-aware triggers, and backfills (one aggregate per trigger, per backfill) ------


@dataclass(frozen=True)
class RunCauseRecorded(Event):
    """Why a run was submitted, beside its ``RunSubmitted``: ``reason`` is ``datasets``, ``files``, ``manual``
    or ``backfill``; ``source`` the trigger, schedule or backfill; ``datasets`` or ``files`` what fired it."""

    reason: str
    source: str
    datasets: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class TriggerWritesNoted(Event):
    """Matching dataset writes seen before the trigger could fire (``all`` waits for the rest, a debounce
    for quiet): each ``{"dataset", "run", "position", "time"}``; ``cursor``: the log position looked up to."""

    target_kind: str
    target: str
    writes: tuple[Mapping[str, Any], ...]
    cursor: str


@dataclass(frozen=True)
class TriggerFired(Event):
    """The trigger submitted ``run`` (or started ``workflow_run``) at ``fired_at`` (its logical date), for
    the ``datasets`` written or the ``files`` that arrived; ``cursor``: the log position looked up to."""

    target_kind: str
    target: str
    reason: str
    fired_at: str
    run: str | None = None
    workflow_run: str | None = None
    datasets: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    cursor: str = ""
    message: str = ""  # why nothing was submitted (the target refused it), when ``run`` is None


@dataclass(frozen=True)
class BackfillStarted(Event):
    """A backfill of schedule ``schedule``: ``ticks`` (stamps, in the order they are to run) get one run each,
    at most ``max_active`` at once; ``skipped``: ticks of the range left alone because they have a run."""

    schedule: str
    schedule_name: str
    start: str
    end: str
    reprocess: str
    max_active: int
    backwards: bool
    ticks: tuple[str, ...]
    skipped: int = 0


@dataclass(frozen=True)
class BackfillRunSubmitted(Event):
    """The backfill submitted ``run`` (or started ``workflow_run``) for ``tick``; ``message`` when refused."""

    tick: str
    logical_date: str
    run: str | None = None
    workflow_run: str | None = None
    message: str = ""


@dataclass(frozen=True)
class BackfillCancelled(Event):
    reason: str = "Cancelled by user"


@dataclass(frozen=True)
class BackfillFinished(Event):
    """Every tick's run has ended: ``succeeded`` of them succeeded, ``failed`` did not."""

    succeeded: int
    failed: int


# -- notifications: one aggregate per (trigger, destination); its events are its delivery's record --------


@dataclass(frozen=True)
class RunDurationExceeded(Event):
    """Run ``run`` has been going for more than ``after`` minutes since its first attempt started (at
    ``started_at``). On an aggregate of its own (``duration:RUN``, appended at version 0), so it is recorded
    once whatever the number of notifiers, and never races the run's own appends."""

    run: str
    definition: str
    after: float
    started_at: str


@dataclass(frozen=True)
class NotificationDue(Event):
    """``event`` (``onStart``, ``onSuccess``, ``onFailure``, ``onDurationWarning``, ``onMissedTick``) of
    ``subject`` (a run, workflow run or schedule, named ``name``) is to reach ``destination``; ``payload`` is
    the body every attempt sends (masked), ``trigger`` the position of the event that caused it.

    Schema 2 added ``deliverer`` and ``lease_until``: the notifier that proposes it may claim its first attempt
    in the same event (as ``NotificationAttempted`` would), so a delivery that succeeds at once is two events."""

    schema_version: ClassVar[int] = 2

    event: str
    subject_kind: str
    subject: str
    name: str
    destination: Mapping[str, Any]
    payload: Mapping[str, Any]
    trigger: str
    deliverer: str | None = None
    lease_until: str | None = None


@dataclass(frozen=True)
class NotificationAttempted(Event):
    """``deliverer`` claims attempt ``attempt`` until ``lease_until``: no other may send before then. A claim
    whose outcome never lands (the deliverer died between sending and recording) is sent again after it."""

    attempt: int
    deliverer: str
    lease_until: str


@dataclass(frozen=True)
class NotificationDelivered(Event):
    """The destination accepted attempt ``attempt`` (``status``: the HTTP or SMTP reply code)."""

    attempt: int
    status: int | None = None


@dataclass(frozen=True)
class NotificationFailed(Event):
    """Attempt ``attempt`` failed (``error``, short, masked); the next is due at ``retry_at``."""

    attempt: int
    error: str
    retry_at: str


@dataclass(frozen=True)
class NotificationAbandoned(Event):
    """Delivery was given up after attempt ``attempt``: refused for good, or still failing when time ran out."""

    attempt: int
    error: str


_TYPES.update(
    {
        cls.__name__: cls
        for cls in (
            RunCauseRecorded,
            TriggerWritesNoted,
            TriggerFired,
            BackfillStarted,
            BackfillRunSubmitted,
            BackfillCancelled,
            BackfillFinished,
            RunDurationExceeded,
            NotificationDue,
            NotificationAttempted,
            NotificationDelivered,
            NotificationFailed,
            NotificationAbandoned,
        )
    }
)


# -- run control: a run held back by its concurrency limit or pool, and the pools themselves --------------


@dataclass(frozen=True)
class RunWaiting(Event):
    """The gate (``scheduler/gate.py``) holds the pending attempt back: ``reason`` says for what (a slot under
    ``maxConcurrentRuns``, or a pool's slots). Appended when the reason changes, not on every look."""

    attempt: int
    reason: str


@dataclass(frozen=True)
class PoolCreated(Event):
    """A pool of ``slots`` run slots, shared by the runs that name it (aggregate ``pool:NAME``)."""

    name: str
    slots: int


@dataclass(frozen=True)
class PoolResized(Event):
    name: str
    slots: int


@dataclass(frozen=True)
class PoolDeleted(Event):
    name: str


_TYPES.update({cls.__name__: cls for cls in (RunWaiting, PoolCreated, PoolResized, PoolDeleted, WorkflowRunWaiting)})


# -- DATA_SYNC: the watermark of each incremental sync (one aggregate per source, target and column) -------


@dataclass(frozen=True)
class SyncWatermarkRecorded(Event):
    """Run ``run`` synced ``source`` into ``target``, moving ``rows`` rows (``mode`` full or incremental); the
    highest ``column`` synced so far is ``value`` (its text, of DuckDB type ``value_type``; None: no row yet),
    where the next incremental sync of the pair starts."""

    source: str
    target: str
    column: str
    value: str | None
    value_type: str
    rows: int
    mode: str
    run: str
    attempt: int


_TYPES.update({SyncWatermarkRecorded.__name__: SyncWatermarkRecorded})


# -- pre-runs: their scratch outputs removed (on the pre-run's workflow run aggregate) ---------------------


@dataclass(frozen=True)
class PrerunScratchRemoved(Event):
    """The pre-run's scratch namespace was removed from ``depots``; ``failed``: depots it could not be removed
    from (each ``DEPOT: why``), left for a later ``--clean``."""

    depots: tuple[str, ...]
    failed: tuple[str, ...] = ()


_TYPES.update({cls.__name__: cls for cls in (PrerunScratchRemoved, RunForEachCarried)})

"""The schedule use cases: create, read, pause, resume, delete, and advance (what a timer pass does to one).

Firing a tick appends its decision event on the schedule at the version the decision was taken at,
and in the same batch the run's ``RunSubmitted`` (or the workflow run's start). Event ids and the
run id are derived from (schedule, tick), so a retried fire is recorded once (``DUP``), and a second
scheduler deciding the same tick differently loses on the version check and decides again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from queue_core.cron import zone
from queue_core.domain.names import name_aggregate
from queue_core.domain.runs import TERMINAL, apply_run
from queue_core.domain.schedules import (
    ACTIVE,
    CATCHUP_POLICIES,
    DELETED,
    END,
    ENDED,
    FIRE,
    MISS,
    OVERLAP_POLICIES,
    PAUSED,
    QUEUE,
    SCHEDULE_KIND,
    SKIP,
    Step,
    apply_schedule,
    expand_args,
    instant,
    logical_date_of,
    next_tick,
    plan,
    stamp,
    timing_of,
)
from queue_core.errors import (
    AlreadyExists,
    ConcurrencyError,
    InvalidInput,
    JobledgerError,
    NotFound,
    Quarantined,
    Remedy,
)
from queue_core.eventlog.aggregates import load_state
from queue_core.eventlog.events import (
    Event,
    NameReleased,
    NewEvent,
    Recorded,
    RunCauseRecorded,
    ScheduleCreated,
    ScheduleDeleted,
    ScheduleEnded,
    ScheduleFired,
    SchedulePaused,
    ScheduleResumed,
    ScheduleTickQueued,
    ScheduleTickSkipped,
    ScheduleTicksMissed,
)
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels
from queue_core.services.catalog import Catalog
from queue_core.services.names import owner_of, unclaimed, with_claim
from queue_core.services.notifications import check_secrets_exist
from queue_core.services.replacements import Replacements
from queue_core.services.runs import RunService
from queue_core.services.submissions import Submissions
from queue_core.services.workflows import WorkflowService
from queue_core.settings import Settings
from queue_core.specs.checks import choice
from queue_core.specs.definitions import check_args, check_name
from queue_core.specs.notifications import SCHEDULE_EVENTS, normalize_notifications
from queue_core.specs.tags import normalize_tags
from queue_core.timefmt import parse_time

__all__ = ["ScheduleRequest", "ScheduleService"]

log = structlog.get_logger("jobledger.schedules")

Doc = dict[str, Any]
# Ids derived from (schedule, tick): the same tick decided twice gives the same ids.
_IDS = uuid.UUID("6b7f0c1e-3d2a-4f5e-9a8b-7c6d5e4f3a21")
DEFAULT_HISTORY = 50
ADVANCE_RETRIES = 5


def _derived(schedule_id: str, *parts: str) -> str:
    return str(uuid.uuid5(_IDS, "/".join((schedule_id, *parts))))


def _parse_time(value: str, tz: Any, field: str) -> datetime:
    """An ISO 8601 time; without an offset it is read in the schedule's time zone."""
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise InvalidInput("must be an ISO 8601 time such as 2026-11-21T02:30:00+01:00", field)
    try:
        moment = parse_time(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not an ISO 8601 time", field) from None
    moment = moment.replace(tzinfo=tz) if moment.tzinfo is None else moment
    try:
        moment.astimezone(UTC)
    except OverflowError:  # the end of time in a far-west zone is past year 9999 in UTC
        raise InvalidInput(f"{value!r} is outside the years 1 to 9999 in UTC", field) from None
    return moment


@dataclass(frozen=True)
class ScheduleRequest:
    """What a new schedule is: its name, its target (a definition or a workflow), when it fires, its policies.

    Periodic (``cron`` in ``timezone``, until ``end``) or once (``at``). ``catchup`` (all, latest, none)
    says what ticks missed while no scheduler ran become; ``overlap`` (skip, allow, queue, replace) what a
    tick does while the previous run is active. ``${logical_date}`` and ``${logical_date:%Y%m%d}`` in
    ``args`` become each tick's logical date.
    """

    name: str
    definition: str | None = None
    workflow: str | None = None
    cron: str | None = None
    at: str | None = None
    timezone: str = "UTC"
    end: str | None = None
    catchup: str = "latest"
    overlap: str = "skip"
    args: str | None = None
    cluster: str | None = None
    jitter: float = 0.0
    pause_on_failure: bool = False
    tags: tuple[str, ...] = ()  # given to every run it fires
    notifications: Mapping[str, Any] | None = None  # its onMissedTick destinations


MAX_JITTER_MINUTES = 1440
MAX_NOTE = 500


class ScheduleService:
    """The schedule use cases on one store."""

    def __init__(
        self,
        store: EventStore,
        read_models: ReadModels,
        settings: Settings,
        catalog: Catalog,
        submissions: Submissions,
        workflows: WorkflowService,
        runs: RunService,
    ) -> None:
        self.store = store
        self.read_models = read_models
        self.settings = settings
        self.catalog = catalog
        self.submissions = submissions
        self.workflows = workflows
        self.runs = runs
        self.replacements = Replacements(runs, workflows)
        # Definitions loaded during one timer pass (``one_pass``): a pass firing thousands of schedules of
        # one definition loads it once; a definition changed during the pass is seen next pass. Outside a
        # pass (the service is the Client's, for its whole life) nothing is cached.
        self._definitions: dict[str, dict[str, Any]] | None = None

    @contextmanager
    def one_pass(self) -> Iterator[None]:
        """Within the block, each definition a fire needs is loaded once."""
        self._definitions = {}
        try:
            yield
        finally:
            self._definitions = None

    def _definition(self, name_or_id: str) -> dict[str, Any]:
        if self._definitions is None:
            return self.catalog.get_definition(name_or_id)
        doc = self._definitions.get(name_or_id)
        if doc is None:
            doc = self._definitions[name_or_id] = self.catalog.get_definition(name_or_id)
        return doc

    # -- finding ----------------------------------------------------------------------------

    def _id(self, name_or_id: str) -> str:
        if self.store.version(name_or_id) and self.read_models.get("schedules", name_or_id) is not None:
            return name_or_id
        owner, _ = owner_of(self.store, SCHEDULE_KIND, name_or_id)
        if owner is None:
            raise NotFound(f"no schedule named {name_or_id!r}")
        return owner

    def load(self, schedule_id: str) -> Doc | None:
        """The schedule as the log has it now (the read model, caught up to the log's head)."""
        self.read_models.catch_up()
        return self.read_models.get("schedules", schedule_id)

    def _doc(self, name_or_id: str) -> Doc:
        self.read_models.catch_up()
        doc = self.read_models.get("schedules", self._id(name_or_id))
        if doc is None:
            raise NotFound(f"no schedule named {name_or_id!r}")
        return doc

    # -- create -----------------------------------------------------------------------------

    def create(self, request: ScheduleRequest, now: datetime | None = None) -> Doc:
        """Create a schedule; everything is checked before anything is appended.

        Ticks count from ``now`` (default: the current time).
        """
        name, definition, workflow = request.name, request.definition, request.workflow
        cron, at, timezone, end = request.cron, request.at, request.timezone, request.end
        catchup, overlap, args, cluster = request.catchup, request.overlap, request.args, request.cluster
        check_name(name, "name")
        if (definition is None) == (workflow is None):
            raise InvalidInput("give exactly one of definition and workflow", "target")
        if (cron is None) == (at is None):
            raise InvalidInput("give exactly one of cron and at", "when")
        if cron is not None and (not isinstance(cron, str) or not cron.strip()):
            raise InvalidInput('must be a cron expression such as "30 2 * * *" or @daily', "cron")
        choice(catchup, CATCHUP_POLICIES, "catchup")
        choice(overlap, OVERLAP_POLICIES, "overlap")
        jitter = request.jitter
        if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0 <= jitter <= MAX_JITTER_MINUTES:
            raise InvalidInput(f"must be a number of minutes from 0 to {MAX_JITTER_MINUTES}", "jitter")
        moment = now or datetime.now(UTC)
        tz = zone(timezone)
        fields: dict[str, Any] = {"cron": cron, "timezone": timezone, "at": None, "end": None}
        if at is not None:
            when = _parse_time(at, tz, "at")
            if when <= moment:
                raise InvalidInput(f"{at!r} is in the past", "at", remedy=Remedy.SUBMIT_NOW)
            fields["at"] = stamp(when)
        timing = timing_of(fields)  # checks the cron expression
        if end is not None:
            if at is not None:
                raise InvalidInput("only a cron schedule can have an end", "end")
            fields["end"] = stamp(_parse_time(end, tz, "end"))
        start = stamp(moment)
        first = timing.next_after(instant(start))
        if first is None or (fields["end"] and first > instant(fields["end"])):
            raise InvalidInput("the schedule would never fire (no tick before the end)", "end")
        sample = logical_date_of(first, timing)
        if args is not None:
            check_args(args, "args")
            check_args(expand_args(args, sample), "args")
        if definition is not None:
            # Everything a fire will need, checked now: the definition, its cluster, the args.
            self.submissions.submission_batch(
                definition, cluster, expand_args(args, sample) if args else None, logical_date=sample
            )
            target_kind, target = "definition", definition
        else:
            assert workflow is not None
            if args is not None:
                raise InvalidInput("a workflow schedule takes no args (its tasks have their own)", "args")
            self.workflows.get(workflow)
            if cluster is not None:
                self.catalog.get_cluster(cluster)
            target_kind, target = "workflow", workflow
        tags = normalize_tags(list(request.tags))
        notifications = None
        if request.notifications is not None:
            notifications = normalize_notifications(request.notifications, "notifications", SCHEDULE_EVENTS)
            check_secrets_exist(self.store, notifications, "notifications")
        created = ScheduleCreated(
            name=name,
            target_kind=target_kind,
            target=target,
            timezone=timezone,
            start=start,
            cron=cron,
            at=fields["at"],
            end=fields["end"],
            catchup=catchup,
            overlap=overlap,
            args=args,
            cluster=cluster,
            jitter=float(jitter),
            pause_on_failure=bool(request.pause_on_failure),
            tags=tuple(tags),
            notifications=notifications,
        )
        name_version = unclaimed(self.store, SCHEDULE_KIND, name)
        schedule_id = str(uuid.uuid4())
        batch = [NewEvent(schedule_id, created)]
        try:
            recorded = self.store.append(
                *with_claim(SCHEDULE_KIND, name, schedule_id, name_version, batch, {schedule_id: 0})
            )
        except ConcurrencyError as exc:
            raise AlreadyExists(f"schedule {name!r} was just created by another writer") from exc
        doc = apply_schedule(None, recorded[-1])
        assert doc is not None
        return self.view(doc)

    # -- reading ----------------------------------------------------------------------------

    def view(self, doc: Doc) -> Doc:
        """The schedule as ``schedule list --json`` shows it: the document plus its next tick."""
        following = next_tick(doc, timing_of(doc))
        return {**doc, "next_fire": stamp(following) if following else None}

    def list_all(self, include_deleted: bool = False) -> list[Doc]:
        self.read_models.catch_up()
        docs = [d for d in self.read_models.all("schedules").values() if include_deleted or d["status"] != DELETED]
        return [self.view(d) for d in sorted(docs, key=lambda d: (d["name"], d["id"]))]

    def get(self, name_or_id: str, history: int = DEFAULT_HISTORY) -> Doc:
        """The schedule and its newest ``history`` entries, newest first: each tick's fate and its run."""
        doc = self._doc(name_or_id)
        entries: list[Doc] = []
        fired: set[str] = set()
        for rec in self.store.newest(history, aggregate=doc["id"]):
            entries.extend(_entries(rec, fired))
        entries = entries[:history]
        timing = timing_of(doc)
        for entry in entries:
            if entry["tick"] and entry["logical_date"] is None:
                entry["logical_date"] = logical_date_of(instant(entry["tick"]), timing)
        runs = [e["run"] for e in entries if e.get("run") and e.get("run_kind", "run") == "run"]
        statuses = {r: d["status"] for r, d in zip(runs, self.read_models.get_many("runs", runs), strict=True) if d}
        for entry in entries:
            if entry["outcome"] != "fired":
                continue
            if entry["run_kind"] == "workflow_run":
                entry["run_status"] = self.workflows.view(entry["run"])["status"]
            else:
                entry["run_status"] = statuses.get(entry["run"])
        return {**self.view(doc), "history": entries}

    # -- pause, resume, delete --------------------------------------------------------------

    def _change(self, name_or_id: str, decide: Callable[[Doc], tuple[list[Event], list[NewEvent]]]) -> Doc:
        """Load, decide, append at the version loaded; a timer firing meanwhile makes it load and decide again."""
        for _ in range(ADVANCE_RETRIES):
            doc = self._doc(name_or_id)
            events, extra = decide(doc)
            if not events:
                return doc
            batch = [NewEvent(doc["id"], e) for e in events] + extra
            expected = {
                doc["id"]: doc["version"],
                **{new.aggregate: self.store.version(new.aggregate) for new in extra},
            }
            try:
                recorded = self.store.append(batch, expected)
            except ConcurrencyError:
                continue
            for rec in recorded:
                if rec.aggregate == doc["id"]:
                    doc = apply_schedule(doc, rec) or doc
            return doc
        raise AlreadyExists(f"schedule {name_or_id} kept changing; run the command again")

    @staticmethod
    def _check_live(doc: Doc, verb: str) -> None:
        if doc["status"] in (ENDED, DELETED):
            raise InvalidInput(f"schedule {doc['name']} has {doc['status'].lower()}; nothing to {verb}", "schedule")

    def pause(self, name_or_id: str, note: str = "") -> Doc:
        """Stop firing, with an optional ``note`` saying why; pausing a paused schedule changes nothing."""
        if not isinstance(note, str) or len(note) > MAX_NOTE or any(ord(c) < 32 for c in note):
            raise InvalidInput(f"must be one line of at most {MAX_NOTE} characters", "note")

        def decide(doc: Doc) -> tuple[list[Event], list[NewEvent]]:
            self._check_live(doc, "pause")
            return ([] if doc["status"] == PAUSED else [SchedulePaused(name=doc["name"], note=note)]), []

        return self.view(self._change(name_or_id, decide))

    def pause_for_failure(self, schedule_id: str, run_id: str) -> bool:
        """Pause a ``pause_on_failure`` schedule whose fired run ``run_id`` failed; False when nothing was to do
        (paused already, or already paused once for this run). The event id is derived from the run, so
        two schedulers seeing the failure append one pause."""
        for _ in range(ADVANCE_RETRIES):
            doc, _ = load_state(self.store, schedule_id, apply_schedule)
            if doc is None or doc["status"] != ACTIVE or not doc["pause_on_failure"] or doc["paused_for"] == run_id:
                return False
            note = f"paused on failure: run {run_id} failed"
            paused = SchedulePaused(name=doc["name"], note=note, run=run_id)
            try:
                self.store.append(
                    [NewEvent(schedule_id, paused, _derived(schedule_id, run_id, "paused-on-failure"))],
                    {schedule_id: doc["version"]},
                )
            except ConcurrencyError:
                continue
            return True
        return False

    def trigger_now(self, name_or_id: str, now: datetime | None = None) -> Doc:
        """Fire the schedule once now, outside its cadence (recorded as manual); its clock ticks go on as before.

        A paused schedule can be fired this way too; an ended or deleted one cannot.
        """
        moment = now or datetime.now(UTC)
        manual_key = uuid.uuid4().hex  # two manual fires in one second are two fires

        def decide(doc: Doc) -> tuple[list[Event], list[NewEvent]]:
            self._check_live(doc, "trigger")
            timing = timing_of(doc)
            tick = stamp(moment)
            with self.one_pass():
                batch, _ = self._fire(
                    doc, tick, logical_date_of(moment, timing), Step(FIRE, (moment,)), run_key=f"manual/{manual_key}"
                )
            fired = [n.event for n in batch if n.aggregate == doc["id"]]
            if not isinstance(fired[0], ScheduleFired):
                raise InvalidInput(fired[0].message, "schedule")  # type: ignore[attr-defined]
            return fired, [n for n in batch if n.aggregate != doc["id"]]

        return self.view(self._change(name_or_id, decide))

    def resume(self, name_or_id: str, now: datetime | None = None) -> Doc:
        """Fire again from ``now``: ticks that fell while paused are not fired (nor caught up)."""
        start = stamp(now or datetime.now(UTC))

        def decide(doc: Doc) -> tuple[list[Event], list[NewEvent]]:
            self._check_live(doc, "resume")
            return ([] if doc["status"] == ACTIVE else [ScheduleResumed(name=doc["name"], start=start)]), []

        return self.view(self._change(name_or_id, decide))

    def delete(self, name_or_id: str) -> str:
        """Delete; the name is free again, the history stays in the log (readable by id)."""

        def decide(doc: Doc) -> tuple[list[Event], list[NewEvent]]:
            if doc["status"] == DELETED:
                raise NotFound(f"schedule {doc['name']} ({doc['id']}) is already deleted")
            release = NameReleased(kind=SCHEDULE_KIND, name=doc["name"], owner=doc["id"])
            return [ScheduleDeleted(name=doc["name"])], [NewEvent(name_aggregate(SCHEDULE_KIND, doc["name"]), release)]

        return str(self._change(name_or_id, decide)["id"])

    # -- advancing: what a timer pass does to one schedule -----------------------------------

    def previous_active(self, doc: Doc) -> bool:
        """Whether the schedule's newest run (or workflow run) has not ended yet."""
        last = doc.get("last_run")
        if not last or not last["id"]:
            return False
        if last["kind"] == "workflow_run":
            return self.workflows.load_run(last["id"])[0]["status"] not in TERMINAL  # no child loads
        run, _ = load_state(self.store, last["id"], apply_run)
        return run is not None and run["status"] not in TERMINAL

    def advance(self, doc: Doc, now: datetime) -> Doc:
        """Decide and append what the schedule's due ticks become at ``now``; returns the schedule after.

        Each decision is its own batch at the version it was decided at; when another scheduler got
        there first, the schedule is read again and decided again.
        """
        for _ in range(ADVANCE_RETRIES):
            if doc["status"] != ACTIVE:
                return doc
            timing = timing_of(doc)
            try:
                for step in plan(doc, timing, now, self.previous_active(doc), self.settings.schedule_on_time_seconds):
                    doc = self._apply_step(doc, timing, step)
                return doc
            except ConcurrencyError:
                # Decided on a stale document: fold the schedule again from the log, not from a read model.
                fresh, _ = load_state(self.store, doc["id"], apply_schedule)
                if fresh is None:
                    return doc
                doc = fresh
        return doc

    def current(self, ids: Sequence[str], docs: Sequence[Doc | None]) -> list[Doc | None]:
        """``docs`` (the read model's documents of schedules ``ids``) as the log has them now.

        Each document's version is checked against the schedule's version in the store, all in one round
        trip; one that differs (a read model behind, or ahead of a log restored to an earlier point) is
        folded again from the schedule's own events. Nothing is decided on a document the log disagrees with.
        """
        versions = self.store.versions(ids)
        fresh: list[Doc | None] = []
        for schedule_id, doc in zip(ids, docs, strict=True):
            if (doc["version"] if doc is not None else 0) != versions[schedule_id]:
                with contextlib.suppress(Quarantined):  # left to the decision, which says so once
                    doc, _ = load_state(self.store, schedule_id, apply_schedule)
            fresh.append(doc)
        return fresh

    def _apply_step(self, doc: Doc, timing: Any, step: Step) -> Doc:
        sid = doc["id"]
        batch: list[NewEvent]
        expected = {sid: doc["version"]}
        if step.kind == MISS:
            ticks = tuple(stamp(t) for t in step.ticks)
            batch = [NewEvent(sid, ScheduleTicksMissed(ticks=ticks), _derived(sid, ticks[0], ticks[-1], MISS))]
        elif step.kind == END:
            batch = [NewEvent(sid, ScheduleEnded(reason=step.reason), _derived(sid, doc["cursor"], END))]
        else:
            tick = stamp(step.tick)
            logical = logical_date_of(step.tick, timing)
            last = (doc.get("last_run") or {}).get("id")
            if step.kind == SKIP:
                skipped = ScheduleTickSkipped(tick=tick, logical_date=logical, reason="overlap", run=last)
                batch = [NewEvent(sid, skipped, _derived(sid, tick, SKIP))]
            elif step.kind == QUEUE:
                queued = ScheduleTickQueued(tick=tick, logical_date=logical, behind=last, caught_up=step.caught_up)
                batch = [NewEvent(sid, queued, _derived(sid, tick, QUEUE))]
            else:
                assert step.kind == FIRE
                batch, expected = self._fire(doc, tick, logical, step)
        recorded = self.store.append(batch, expected)
        for rec in recorded:
            if rec.aggregate == sid:
                doc = apply_schedule(doc, rec) or doc
                if isinstance(rec.event, ScheduleFired):
                    self._replace(rec.event)
        return doc

    def _replace(self, fired: ScheduleFired) -> None:
        """Decide, append, then act: the run a tick replaced is cancelled only once the tick is recorded (a
        pause landing first leaves it alone). The dispatcher cancels it again when it reads the tick, so a
        timer that dies here, or a cancel that keeps losing to the run's own moves, leaves nothing undone."""
        try:
            self.replacements.cancel(fired)
        except (AlreadyExists, Quarantined):
            log.warning("the replaced run is left to the dispatcher to cancel", run=fired.replaced)

    def _fire(
        self, doc: Doc, tick: str, logical: str, step: Step, run_key: str = ""
    ) -> tuple[list[NewEvent], dict[str, int]]:
        """The batch firing ``tick``; ``run_key`` (a manual fire's) derives the ids instead of the tick."""
        sid = doc["id"]
        manual = bool(run_key)
        key = run_key or tick
        last = (doc.get("last_run") or {}).get("id")
        replaced = last if step.replace and last else None  # cancelled once this fire is appended
        args = expand_args(doc["args"], logical) if doc["args"] is not None else None
        try:
            if doc["target_kind"] == "workflow":
                run_id, started, expected = self.workflows.start_batch(
                    doc["target"], doc["cluster"], logical, run_id=_derived(sid, key, "workflow-run")
                )
                fired = ScheduleFired(
                    tick=tick,
                    logical_date=logical,
                    workflow_run=run_id,
                    caught_up=step.caught_up,
                    replaced=replaced,
                    manual=manual,
                )
                # Ids derived from (schedule, tick), like a run's: a retried fire of this tick is a DUP.
                batch = [NewEvent(sid, fired, _derived(sid, key, FIRE, run_id))]
                batch += [dataclasses.replace(n, event_id=_derived(sid, key, f"w{i}")) for i, n in enumerate(started)]
                return batch, {sid: doc["version"], **expected}
            run_id, submitted, expected = self.submissions.submission_of(
                self._definition(doc["target"]),
                doc["cluster"],
                args,
                logical_date=logical,
                run_id=_derived(sid, key, "run"),
                tags=doc["tags"],
            )
        except JobledgerError as exc:
            if not isinstance(exc, InvalidInput | NotFound | AlreadyExists):
                raise
            skipped = ScheduleTickSkipped(tick=tick, logical_date=logical, reason="error", message=str(exc))
            return [NewEvent(sid, skipped, _derived(sid, key, "error"))], {sid: doc["version"]}
        fired = ScheduleFired(
            tick=tick, logical_date=logical, run=run_id, caught_up=step.caught_up, replaced=replaced, manual=manual
        )
        batch = [NewEvent(sid, fired, _derived(sid, key, FIRE, run_id))]
        batch += [dataclasses.replace(new, event_id=_derived(sid, key, str(i))) for i, new in enumerate(submitted)]
        if manual:
            cause = RunCauseRecorded(reason="manual", source=sid)
            batch.append(NewEvent(run_id, cause, _derived(sid, key, "cause")))
        return batch, {sid: doc["version"], **expected}


def _entries(rec: Recorded, fired: set[str]) -> list[Doc]:
    """History rows for one schedule event, newest first (a queued tick that fired later shows as fired)."""
    event = rec.event
    base: Doc = {"time": rec.time}
    if isinstance(event, ScheduleFired):
        fired.add(event.tick)
        run, kind = (event.workflow_run, "workflow_run") if event.workflow_run else (event.run, "run")
        return [
            {
                **base,
                "tick": event.tick,
                "logical_date": event.logical_date,
                "outcome": "fired",
                "reason": "manual" if event.manual else ("caught up" if event.caught_up else None),
                "run": run,
                "run_kind": kind,
                "run_status": None,
                "replaced": event.replaced,
            }
        ]
    if isinstance(event, ScheduleTickQueued):
        if event.tick in fired:
            return []
        row = {"tick": event.tick, "logical_date": event.logical_date, "outcome": "queued", "reason": None}
        return [{**base, **row, "run": event.behind}]
    if isinstance(event, ScheduleTickSkipped):
        reason = event.reason if not event.message else f"{event.reason}: {event.message}"
        row = {"tick": event.tick, "logical_date": event.logical_date, "outcome": "skipped", "reason": reason}
        return [{**base, **row, "run": event.run}]
    if isinstance(event, ScheduleTicksMissed):
        return [
            {**base, "tick": t, "logical_date": None, "outcome": "missed", "reason": "scheduler down", "run": None}
            for t in reversed(event.ticks)
        ]
    outcome = rec.type.removeprefix("Schedule").lower()
    why = getattr(event, "reason", None) or getattr(event, "note", None) or None  # an end or a pause says why
    return [{**base, "tick": None, "logical_date": None, "outcome": outcome, "reason": why, "run": None}]

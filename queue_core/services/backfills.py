"""The backfill use cases: plan and start one, list, show, cancel, and advance (what a scheduler pass does).

Starting checks everything and appends ``BackfillStarted`` with the ticks to run. A scheduler pass then
submits the next ticks' runs as earlier ones end, each batch at the backfill's version, with run and event
ids derived from (backfill, tick): two schedulers releasing the same tick append it once. A pass reads the
backfill from its read model and, of its runs, only those it has not yet seen end: its cost follows the
runs going, not the ticks done.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from queue_core.cron import zone
from queue_core.domain.backfills import (
    ENDED,
    MAX_BACKFILL_TICKS,
    REPROCESS,
    RUNNING,
    apply_backfill,
    derived_id,
    entries,
    outcome,
    plan_ticks,
    release,
    tick_run,
)
from queue_core.domain.names import is_id
from queue_core.domain.schedules import expand_args, instant, logical_date_of, stamp, timing_of
from queue_core.errors import AlreadyExists, ConcurrencyError, InvalidInput, JobledgerError, NotFound
from queue_core.eventlog.aggregates import load_state
from queue_core.eventlog.events import (
    BackfillCancelled,
    BackfillFinished,
    BackfillRunSubmitted,
    BackfillStarted,
    NewEvent,
    RunCauseRecorded,
    ScheduleFired,
)
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels
from queue_core.services.runs import RunService
from queue_core.services.schedules import ScheduleService
from queue_core.services.submissions import Submissions
from queue_core.services.workflows import WorkflowService
from queue_core.specs import checks
from queue_core.timefmt import parse_time

__all__ = ["BackfillService"]

Doc = dict[str, Any]
MAX_ACTIVE = 1000


@dataclass
class _Seen:
    """What this process has seen of one backfill's runs: every one before index ``upto`` has ended, and so have
    those at the indexes in ``ended``. A run's end is final, so this is only ever behind, never wrong (a store
    restored to earlier aside: then at worst more than ``max_active`` go at once; the finish is decided on
    every run's status read afresh)."""

    upto: int = 0
    ended: set[int] = field(default_factory=set)


def _moment(value: Any, tz: Any, field: str) -> datetime:
    """An ISO 8601 time; without an offset it is read in the schedule's time zone."""
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise InvalidInput("must be an ISO 8601 time such as 2026-11-01T00:00:00Z", field)
    try:
        moment = parse_time(value)
        moment = moment.replace(tzinfo=tz) if moment.tzinfo is None else moment
        moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(f"{value!r} is not an ISO 8601 time in the years 1 to 9999", field) from None
    return moment


class BackfillService:
    """The backfill use cases on one store."""

    def __init__(
        self,
        store: EventStore,
        read_models: ReadModels,
        schedules: ScheduleService,
        submissions: Submissions,
        workflows: WorkflowService,
        runs: RunService,
    ) -> None:
        self.store = store
        self.read_models = read_models
        self.schedules = schedules
        self.submissions = submissions
        self.workflows = workflows
        self.runs = runs
        self._seen: dict[str, _Seen] = {}  # backfill -> its runs seen ended (by this process's passes)

    # -- starting -----------------------------------------------------------------------------

    def create(
        self,
        schedule: str,
        start: str,
        end: str,
        reprocess: str = "none",
        max_active: int = 1,
        backwards: bool = False,
        dry_run: bool = False,
    ) -> Doc:
        """Plan a backfill of ``schedule``'s ticks from ``start`` to ``end`` (both included) and, unless ``dry_run``,
        start it. Returns the plan: the ticks to run in order, and the ticks left alone (they have a run)."""
        doc = self.schedules.get(schedule, history=1)
        checks.choice(reprocess, REPROCESS, "reprocess")
        checks.whole_number(max_active, "max_active", 1, MAX_ACTIVE)
        timing = timing_of(doc)
        tz = zone(doc["timezone"])
        first, last = _moment(start, tz, "from"), _moment(end, tz, "to")
        if first > last:
            raise InvalidInput(f"{start!r} is after the range's end {end!r}", "from")
        ticks = timing.ticks(first - timedelta(microseconds=1), last, MAX_BACKFILL_TICKS + 1)
        if len(ticks) > MAX_BACKFILL_TICKS:
            raise InvalidInput(f"the range holds more than {MAX_BACKFILL_TICKS:,} ticks of {doc['name']}", "to")
        if not ticks:
            raise InvalidInput(f"no tick of {doc['name']} falls in the range", "to")
        stamps = [stamp(t) for t in ticks]
        to_run, left = plan_ticks(stamps, self._existing(doc), reprocess, backwards)
        plan = {
            "id": None,
            "schedule": doc["id"],
            "schedule_name": doc["name"],
            "start": stamp(first),
            "end": stamp(last),
            "reprocess": reprocess,
            "max_active": max_active,
            "backwards": backwards,
            "ticks": to_run,
            "left_alone": left,
            "logical_dates": [logical_date_of(instant(t), timing) for t in to_run],
        }
        if dry_run:
            return plan
        started = BackfillStarted(
            schedule=doc["id"],
            schedule_name=doc["name"],
            start=plan["start"],
            end=plan["end"],
            reprocess=reprocess,
            max_active=max_active,
            backwards=backwards,
            ticks=tuple(to_run),
            skipped=len(left),
        )
        backfill_id = str(uuid.uuid4())
        self.store.append([NewEvent(backfill_id, started)], {backfill_id: 0})
        return {**plan, "id": backfill_id}

    def _existing(self, schedule: Doc) -> dict[str, str | None]:
        """Each tick of the schedule that has a run (fired on the clock or by a backfill): its newest run's status."""
        runs: dict[str, tuple[str, str]] = {}
        for rec in self.store.load(schedule["id"]):
            event = rec.event
            if isinstance(event, ScheduleFired) and not event.manual:
                runs[event.tick] = ("workflow_run", event.workflow_run) if event.workflow_run else ("run", event.run)  # type: ignore[assignment]
        self.read_models.catch_up()
        backfills = sorted(
            (b for b in self.read_models.all("backfills").values() if b and b["schedule"] == schedule["id"]),
            key=lambda b: b["created_at"],
        )
        for backfill in backfills:
            for entry in entries(backfill):
                if entry["run"]:
                    runs[entry["tick"]] = (entry["kind"], entry["run"])
        return dict(zip(runs, self._statuses(list(runs.values())), strict=True))

    def _statuses(self, runs: list[tuple[str, str]]) -> list[str | None]:
        plain = [r for kind, r in runs if kind == "run" and r]
        flows = [r for kind, r in runs if kind == "workflow_run" and r]
        found = {r: d["status"] for r, d in zip(plain, self.read_models.get_many("runs", plain), strict=True) if d}
        found.update(
            {r: d["status"] for r, d in zip(flows, self.read_models.get_many("workflow_runs", flows), strict=True) if d}
        )
        return [found.get(r) for _, r in runs]

    # -- reading, cancelling ------------------------------------------------------------------

    def list_all(self) -> list[Doc]:
        """Every backfill, newest first, without its ticks."""
        self.read_models.catch_up()
        docs = [d for d in self.read_models.all("backfills").values() if d]
        return [self._summary(d) for d in sorted(docs, key=lambda d: d["created_at"], reverse=True)]

    def _summary(self, doc: Doc) -> Doc:
        summary = {k: v for k, v in doc.items() if k not in ("ticks", "refused", "kind")}
        return {**summary, "total": len(doc["ticks"])}

    def get(self, backfill_id: str) -> Doc:
        """One backfill with each submitted tick's run and that run's status."""
        self.read_models.catch_up()
        doc = self.read_models.get("backfills", backfill_id) if is_id(backfill_id) else None
        if doc is None:
            raise NotFound(f"no backfill {backfill_id!r}")
        submitted = entries(doc)
        statuses = self._statuses([(e["kind"], e["run"]) for e in submitted])
        schedule = self.schedules.load(doc["schedule"])
        timing = timing_of(schedule) if schedule else None
        runs = [
            {**e, "logical_date": logical_date_of(instant(e["tick"]), timing) if timing else None, "status": s}
            for e, s in zip(submitted, statuses, strict=True)
        ]
        waiting = doc["ticks"][doc["submitted"] :] if doc["status"] == RUNNING else []
        return {**self._summary(doc), "runs": runs, "waiting": waiting}

    def cancel(self, backfill_id: str) -> Doc:
        """Stop the backfill: no more ticks are submitted, and its runs still going are cancelled."""
        for _ in range(5):
            doc, version = load_state(self.store, backfill_id, apply_backfill) if is_id(backfill_id) else (None, 0)
            if doc is None:
                raise NotFound(f"no backfill {backfill_id!r}")
            if doc["status"] != RUNNING:
                raise InvalidInput(f"backfill {backfill_id} has {doc['status'].lower()}; nothing to cancel", "backfill")
            try:
                self.store.append([NewEvent(backfill_id, BackfillCancelled())], {backfill_id: version})
            except ConcurrencyError:
                continue
            submitted = entries(doc)
            statuses = self._statuses([(e["kind"], e["run"]) for e in submitted])
            for entry, status in zip(submitted, statuses, strict=True):
                if entry["run"] and status not in ENDED:
                    try:
                        if entry["kind"] == "run":
                            self.runs.cancel(entry["run"])
                        else:
                            self.workflows.cancel(entry["run"])
                    except JobledgerError:
                        pass  # it ended meanwhile
            return self.get(backfill_id)
        raise AlreadyExists(f"backfill {backfill_id} kept changing; run the command again")

    # -- advancing: what a scheduler pass does to one backfill ---------------------------------

    def running(self) -> list[Doc]:
        """The running backfills as their read model holds them (caught up)."""
        self.read_models.catch_up()
        docs = [d for d in self.read_models.all("backfills").values() if d and d["status"] == RUNNING]
        for gone in set(self._seen) - {d["id"] for d in docs}:
            del self._seen[gone]
        return docs

    def _active(self, doc: Doc) -> int:
        """How many of the backfill's submitted runs have not ended; reads only those not yet seen ended."""
        seen = self._seen.setdefault(doc["id"], _Seen())
        ticks, refused, kind = doc["ticks"], doc["refused"], doc["kind"]
        unknown = [i for i in range(seen.upto, doc["submitted"]) if i not in seen.ended]
        seen.ended.update(i for i in unknown if ticks[i] in refused)  # no run: nothing to wait for
        looked = [(i, tick_run(doc["id"], ticks[i], kind)) for i in unknown if ticks[i] not in refused]
        statuses = self._statuses([(kind, run) for _, run in looked])
        seen.ended.update(i for (i, _), status in zip(looked, statuses, strict=True) if status in ENDED)
        while seen.upto in seen.ended:
            seen.ended.discard(seen.upto)
            seen.upto += 1
        return doc["submitted"] - seen.upto - len(seen.ended)

    def advance(self, backfill_id: str) -> int:
        """Submit the ticks there is room for, or record that the backfill finished; returns events appended.

        Decided on the read model (``running`` caught it up) at the version it holds: when it is behind, the
        append loses, and the read model is caught up and read again.
        """
        for attempt in range(5):
            if attempt:
                self.read_models.catch_up()
            doc = self.read_models.get("backfills", backfill_id)
            if doc is None or doc["status"] != RUNNING:
                return 0
            active = self._active(doc)
            if not active and doc["submitted"] == len(doc["ticks"]):
                submitted = entries(doc)  # once, at the end: every run's status read afresh
                ended = outcome(doc, self._statuses([(e["kind"], e["run"]) for e in submitted]))
                if ended is None:
                    self._seen.pop(backfill_id, None)
                    return 0
                batch = [NewEvent(backfill_id, BackfillFinished(*ended), derived_id(backfill_id, "finished"))]
                expected = {backfill_id: doc["version"]}
            else:
                ticks = release(doc, active)
                if not ticks:
                    return 0
                batch, expected = self._submissions(doc, ticks)
                expected[backfill_id] = doc["version"]
            try:
                self.store.append(batch, expected)
            except ConcurrencyError:
                continue
            return len(batch)
        return 0

    def _submissions(self, doc: Doc, ticks: list[str]) -> tuple[list[NewEvent], dict[str, int]]:
        bid = doc["id"]
        schedule = self.schedules.load(doc["schedule"])
        if schedule is None:
            raise NotFound(f"no schedule {doc['schedule']}")
        timing = timing_of(schedule)
        batch: list[NewEvent] = []
        expected: dict[str, int] = {}
        for tick in ticks:
            logical = logical_date_of(instant(tick), timing)
            entry = BackfillRunSubmitted(tick=tick, logical_date=logical)
            submitted: list[NewEvent] = []
            try:
                if schedule["target_kind"] == "workflow":
                    run_id, started, more = self.workflows.start_batch(
                        schedule["target"], schedule["cluster"], logical, run_id=tick_run(bid, tick, "workflow_run")
                    )
                    entry = dataclasses.replace(entry, workflow_run=run_id)
                    submitted = [
                        dataclasses.replace(n, event_id=derived_id(bid, tick, f"w{i}")) for i, n in enumerate(started)
                    ]
                else:
                    args = expand_args(schedule["args"], logical) if schedule["args"] is not None else None
                    run_id, new, more = self.submissions.submission_batch(
                        schedule["target"],
                        schedule["cluster"],
                        args,
                        logical_date=logical,
                        run_id=tick_run(bid, tick, "run"),
                    )
                    entry = dataclasses.replace(entry, run=run_id)
                    submitted = [
                        dataclasses.replace(n, event_id=derived_id(bid, tick, str(i))) for i, n in enumerate(new)
                    ]
                    cause = RunCauseRecorded(reason="backfill", source=bid)
                    submitted.append(NewEvent(run_id, cause, derived_id(bid, tick, "cause")))
                expected.update(more)
            except JobledgerError as exc:
                if not isinstance(exc, InvalidInput | NotFound | AlreadyExists):
                    raise
                entry = dataclasses.replace(entry, message=str(exc))
            batch.append(NewEvent(bid, entry, derived_id(bid, tick, "submitted")))
            batch += submitted
        return batch, expected

"""The notifier: reacts to the log (its own consumer group) with due notifications, and delivers them.

It runs beside the dispatcher in ``jobledger scheduler`` as a thread of its own, so no HTTP or SMTP exchange
ever waits in the dispatcher's loop. Any number may run: the due notifications of one event have derived
ids (one lands), each attempt is claimed before it is sent (one deliverer sends it), and a claim whose
outcome never landed is sent again, with the same id, once its lease runs out.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis
import structlog

from queue_core.domain.notifications import Outcome, RetryPolicy, dues
from queue_core.domain.runs import RUNNING, TERMINAL, apply_run
from queue_core.domain.workflows import workflow_spec_of
from queue_core.errors import JobledgerError, StopRequested
from queue_core.eventlog.aggregates import load_state
from queue_core.eventlog.consumer_group import ConsumerGroup
from queue_core.eventlog.events import NotificationDue, Recorded, RunSubmitted
from queue_core.eventlog.runlog import RunLog
from queue_core.eventlog.store import EventStore
from queue_core.masking import Masker
from queue_core.readmodels.materialized import ReadModels
from queue_core.services.notifications import NotificationService
from queue_core.services.secrets import SecretStore
from queue_core.settings import Settings
from queue_core.specs.notifications import destinations_of
from queue_core.timefmt import parse_utc
from scheduler.notify_senders import email_message, post_json, send_email, slack_message, webhook_request

__all__ = ["Notifier"]

log = structlog.get_logger("jobledger.notifier")
READ_COUNT = 200
CACHE_RUNS = 10_000  # runs whose notifications section is remembered from their RunSubmitted
EXCERPT_LINES = 5
EXCERPT_CHARS = 500
MESSAGE_CHARS = 300
_RUN_EVENTS = {"RunStarted": "onStart", "RunSucceeded": "onSuccess", "RunFailed": "onFailure"}
_WORKFLOW_EVENTS = {"WorkflowRunStarted": "onStart", "WorkflowRunFinished": None}
_TICK_EVENTS = ("ScheduleTicksMissed", "ScheduleTickSkipped")
SEND_RECORD_EVERY = 50  # outcomes recorded together at most this many ...
SEND_RECORD_SECONDS = 5.0  # ... or this long after the first of them was sent, well inside a claim's lease
Doc = dict[str, Any]


def _facts(rec: Recorded, submitted: RunSubmitted) -> dict[str, Any]:
    """What a run's submission says that its notifications carry."""
    return {
        "definition": submitted.definition,
        "definition_version": submitted.definition_version,
        "tags": list(submitted.tags),
        "workflow_run": submitted.workflow_run,
        "task": submitted.task,
        "submitted_at": rec.time,
        "started_at": None,
    }


def _payload_from_facts(known: Mapping[str, Any], event: str, rec: Recorded, console_url: str) -> Doc | None:
    """An ``onStart`` or ``onSuccess`` payload from what the run's own events said (no read of the run, as its
    fold would give it at that event); None for any other, or when this notifier did not see them all."""
    if known.get("definition") is None or event not in ("onStart", "onSuccess"):
        return None
    started = rec.time if event == "onStart" else known.get("started_at")
    if started is None:
        return None
    succeeded = event == "onSuccess"
    return {
        "event": event,
        "occurred_at": rec.time,
        "run": rec.aggregate,
        "definition": known["definition"],
        "definition_version": known["definition_version"],
        "status": "SUCCEEDED" if succeeded else RUNNING,
        "reason": None,
        "exit_code": 0 if succeeded else None,
        "attempt": rec.event.attempt,  # type: ignore[attr-defined]
        "submitted_at": known["submitted_at"],
        "started_at": started,
        "finished_at": rec.time if succeeded else None,
        "tags": list(known["tags"]),
        "workflow_run": known["workflow_run"],
        "task": known["task"],
        "console_url": f"{console_url}/runs/{rec.aggregate}",
    }


class Notifier:
    """Turns events into due notifications and delivers those whose time has come."""

    def __init__(self, settings: Settings, store: EventStore, read_models: ReadModels, name: str) -> None:
        self.settings = settings
        self.store = store
        self.read_models = read_models
        self.name = name
        self.group = ConsumerGroup(store, store.keys.notify_group)
        self.service = NotificationService(store, read_models)
        self.secrets = SecretStore(store, settings)
        self.run_log = RunLog(store.redis, store.keys)
        self.policy = RetryPolicy(
            settings.notify_retry_seconds, settings.notify_retry_max_seconds, settings.notify_give_up_seconds
        )
        self._runs: OrderedDict[str, dict[str, Any]] = OrderedDict()  # run -> its section, and what it said
        self._warned: set[str] = set()
        self._secrets: dict[str, str] = {}  # secrets read for the batch being sent; emptied after it
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True

    # -- the loop -----------------------------------------------------------------------------------

    def ensure_group(self) -> None:
        """Join the group; a new one starts at the log's end: runs ended before notifications existed are
        not announced now."""
        self.group.recreate(self.store.last_position() or "0")

    def run(self) -> None:
        """React and deliver until stopped; an outage is waited out, an error in one notification is logged."""
        self.ensure_group()
        next_tick = 0.0
        while not self._stopping:
            try:
                block = max(1, int((next_tick - time.monotonic()) * 1000))
                self.step(block_ms=min(block, 1000))
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self.settings.notify_tick_seconds
                    now = datetime.now(UTC)
                    self.warn_durations(now)
                    try:
                        self.deliver_ready(now)
                    finally:
                        self._secrets.clear()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("store unavailable; trying again", error=str(exc).splitlines()[0])
                time.sleep(1.0)
            except StopRequested:
                return
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                with contextlib.suppress(redis.ResponseError):
                    self.ensure_group()
            except JobledgerError as exc:
                log.warning("notifier pass refused; trying again", error=str(exc))
                time.sleep(1.0)

    def step(self, block_ms: int = 0) -> int:
        """Read one batch of new events, propose the notifications they make due (their first attempts claimed
        by this notifier), and send those; returns how many events were read."""
        delivery = self.group.read_new(self.name, READ_COUNT, block_ms)
        proposed: list[tuple[str, NotificationDue]] = []
        for rec in delivery:
            try:
                proposed += self.react(rec)
            except (redis.ConnectionError, redis.TimeoutError):
                raise  # left unacknowledged: read again
            except Exception as exc:  # one event that cannot be handled stops no other notification
                log.error("event left alone by the notifier", position=rec.position, error=f"{exc!r}"[:300])
        claimed = self._propose(proposed)  # an outage here: read again, the same ids, nothing twice
        self.group.ack(delivery.positions)
        try:
            self.send_claimed(claimed)
        finally:
            self._secrets.clear()
        return len(delivery)

    def _propose(self, proposed: list[tuple[str, NotificationDue]]) -> list[tuple[Doc, NotificationDue]]:
        """Propose the batch's notifications in one append; one that cannot be stored is left alone (logged)
        and the others proposed one by one."""
        if not proposed:
            return []
        lease = self.settings.notify_timeout_seconds + self.settings.notify_lease_margin_seconds
        try:
            return self.service.propose_claimed(proposed, self.name, datetime.now(UTC), lease)
        except (redis.ConnectionError, redis.TimeoutError):
            raise
        except Exception:
            claimed = []
            for one in proposed:
                try:
                    claimed += self.service.propose_claimed([one], self.name, datetime.now(UTC), lease)
                except (redis.ConnectionError, redis.TimeoutError):
                    raise
                except Exception as exc:
                    log.error("notification left alone by the notifier", notification=one[0], error=f"{exc!r}"[:300])
            return claimed

    # -- reacting ---------------------------------------------------------------------------------------

    def react(self, rec: Recorded) -> list[tuple[str, NotificationDue]]:
        """The notifications one event makes due (the same ids whoever proposes them)."""
        kind = rec.type
        if kind == "RunSubmitted":
            submitted = rec.event
            assert isinstance(submitted, RunSubmitted)
            self._remember(rec.aggregate, submitted.job.get("notifications"), _facts(rec, submitted))
        elif kind in _RUN_EVENTS:
            if kind == "RunStarted":
                if rec.event.attempt != 1:  # type: ignore[attr-defined]
                    return []  # a retry is not the run starting
                facts = self._runs.get(rec.aggregate)
                if facts is not None and facts.get("definition") is not None:
                    facts["started_at"] = rec.time
            return self._run_event(rec, rec.aggregate, _RUN_EVENTS[kind])
        elif kind == "RunDurationExceeded":
            return self._run_event(rec, rec.event.run, "onDurationWarning")  # type: ignore[attr-defined]
        elif kind in _WORKFLOW_EVENTS:
            return self._workflow_event(rec)
        elif kind in _TICK_EVENTS:
            return self._tick_event(rec)
        return []

    def _remember(self, run_id: str, section: Mapping[str, Any] | None, facts: dict[str, Any] | None = None) -> None:
        self._runs[run_id] = {**(facts or {}), "section": section}
        if len(self._runs) > CACHE_RUNS:
            self._runs.popitem(last=False)

    def _run_event(self, rec: Recorded, run_id: str, event: str) -> list[tuple[str, NotificationDue]]:
        known = self._runs.get(run_id)
        if known is not None and not destinations_of(known["section"], event):
            return []  # the usual case: a run with nothing to say, known without a read
        payload = _payload_from_facts(known, event, rec, self.settings.console_url) if known else None
        section = known["section"] if known else None
        if payload is None:  # not seen from its submission, or a failure (its message and log excerpt): read
            doc, _ = load_state(self.store, run_id, apply_run, until=rec.position)  # as it was at that event
            if doc is None:
                return []
            if known is None:
                section = doc["job"].get("notifications")  # absent: defined without notifications
                self._remember(run_id, section)
            payload = self._run_payload(doc, event, rec)
        destinations = destinations_of(section, event)
        if not destinations:
            return []
        return dues(rec, event, destinations, "run", run_id, payload["definition"], payload)

    def _workflow_event(self, rec: Recorded) -> list[tuple[str, NotificationDue]]:
        self.read_models.catch_up()
        wrun = self.read_models.get("workflow_runs", rec.aggregate)
        if wrun is None:
            return []
        event = "onStart" if rec.type == "WorkflowRunStarted" else None
        if event is None:
            event = "onSuccess" if rec.event.status == "SUCCEEDED" else "onFailure"  # type: ignore[attr-defined]
        workflow = self.read_models.get("workflows", wrun["workflow_id"])
        if workflow is None:
            return []
        section = workflow_spec_of(workflow, wrun["workflow_version"]).get("notifications")  # absent: none
        destinations = destinations_of(section, event)
        if destinations:
            payload = {
                "event": event,
                "occurred_at": rec.time,
                "workflow_run": rec.aggregate,
                "workflow": wrun["workflow"],
                "status": wrun["status"],
                "reason": wrun["reason"],
                "logical_date": wrun["logical_date"],
                "started_at": wrun["started_at"],
                "finished_at": wrun["finished_at"],
                "console_url": f"{self.settings.console_url}/workflow-runs/{rec.aggregate}",
            }
            return dues(rec, event, destinations, "workflow_run", rec.aggregate, wrun["workflow"], payload)
        return []

    def _tick_event(self, rec: Recorded) -> list[tuple[str, NotificationDue]]:
        self.read_models.catch_up()
        schedule = self.read_models.get("schedules", rec.aggregate)
        if schedule is None:
            return []
        destinations = destinations_of(schedule["notifications"], "onMissedTick")
        if not destinations:
            return []
        event = rec.event
        ticks = list(event.ticks) if rec.type == "ScheduleTicksMissed" else [event.tick]  # type: ignore[attr-defined]
        reason = "missed" if rec.type == "ScheduleTicksMissed" else event.reason  # type: ignore[attr-defined]
        payload = {
            "event": "onMissedTick",
            "occurred_at": rec.time,
            "schedule": schedule["name"],
            "target": f"{schedule['target_kind']} {schedule['target']}",
            "ticks": ticks[:20],
            "reason": reason,
            "message": getattr(event, "message", "")[:MESSAGE_CHARS],
            "console_url": f"{self.settings.console_url}/schedules/{schedule['name']}",
        }
        return dues(rec, "onMissedTick", destinations, "schedule", rec.aggregate, schedule["name"], payload)

    def _run_payload(self, doc: Mapping[str, Any], event: str, rec: Recorded) -> dict[str, Any]:
        """What a run's notification says: never a secret value (masked), at most a short output excerpt."""
        started = doc["attempts"][0]["started_at"] if doc["attempts"] else None
        payload: dict[str, Any] = {
            "event": event,
            "occurred_at": rec.time,
            "run": doc["id"],
            "definition": doc["definition"],
            "definition_version": doc["definition_version"],
            "status": doc["status"],
            "reason": doc["reason"],
            "exit_code": doc["exit_code"],
            "attempt": doc["attempt"],
            "submitted_at": doc["submitted_at"],
            "started_at": started,
            "finished_at": doc["finished_at"],
            "tags": list(doc["tags"]),
            "workflow_run": doc["workflow_run"],
            "task": doc["task"],
            "console_url": f"{self.settings.console_url}/runs/{doc['id']}",
        }
        if event == "onDurationWarning":
            payload["after_minutes"] = rec.event.after  # type: ignore[attr-defined]
        if event == "onFailure":
            masker = self._masker(doc["job"])
            payload["message"] = masker.mask(doc["message"])[:MESSAGE_CHARS]
            lines = [masker.mask(line.line) for line in self.run_log.last(doc["id"], EXCERPT_LINES)]
            payload["log_excerpt"] = "\n".join(lines)[-EXCERPT_CHARS:]
        return payload

    def _masker(self, job: Mapping[str, Any]) -> Masker:
        """A masker of the run's own secrets when this process can read them (the worker masked its output
        already; this is a second look at what a notification carries)."""
        names = [v["secret"] for v in job["envVars"].values() if isinstance(v, Mapping)]
        names += [v["secret"] for v in job["source"]["sourceDef"].values() if isinstance(v, Mapping)]
        try:
            return Masker(self.secrets.resolve(names).values())
        except JobledgerError:
            return Masker()

    # -- duration warnings --------------------------------------------------------------------------------

    def warn_durations(self, now: datetime) -> int:
        """Record ``RunDurationExceeded`` for each running run past its ``onDurationWarning.after``; once."""
        self.read_models.catch_up()
        warned = 0
        ids = [entity for entity, _ in self.read_models.scored("runs", f"status:{RUNNING}")]
        for doc in self.read_models.get_many("runs", [i for i in ids if i not in self._warned]):
            if doc is None or doc["status"] in TERMINAL or not doc["attempts"]:
                continue
            warning = (doc["job"].get("notifications") or {}).get("onDurationWarning")  # absent: none
            if warning is None:
                self._warned.add(doc["id"])  # nothing to watch: not read again
                continue
            started = doc["attempts"][0]["started_at"]
            if now < parse_utc(started) + timedelta(minutes=warning["after"]):
                continue
            self._warned.add(doc["id"])
            if self.service.warn_duration(doc["id"], doc["definition"], warning["after"], started):
                warned += 1
        if len(self._warned) > CACHE_RUNS:
            self._warned.clear()  # re-read at worst: the warning's own aggregate keeps it to one
        return warned

    # -- delivering -----------------------------------------------------------------------------------------

    def deliver_ready(self, now: datetime) -> int:
        """Claim and send every notification whose attempt is due; returns how many were sent."""
        sent = 0
        for doc in self.service.open():
            if self._stopping:
                break
            # A claim lasts the send's timeout and a margin: a live deliverer records in time.
            lease = self.settings.notify_timeout_seconds + self.settings.notify_lease_margin_seconds
            claimed = self.service.claim(doc["id"], self.name, now, lease)
            if claimed is None:
                continue
            before_claim, claim, due, claim_version = claimed
            outcome = self.send_safely(due)
            self.service.record(
                doc["id"], claim.attempt, outcome, datetime.now(UTC), self.policy, (before_claim, claim_version)
            )
            log.info(
                "notification attempt",
                notification=doc["id"],
                attempt=claim.attempt,
                delivered=outcome.delivered,
                error=outcome.error or None,
            )
            sent += 1
        return sent

    def send_claimed(self, claimed: list[tuple[Doc, NotificationDue]]) -> int:
        """Send the notifications this notifier proposed with their first attempt claimed, and record how each
        went, several to an append; one whose lease ran out before its turn is left to ``deliver_ready``."""
        pending: list[tuple[Doc, int, Outcome, int]] = []
        first_sent = 0.0
        sent = 0
        for doc, due in claimed:
            if self._stopping:
                break  # its lease runs out, and it is sent again then
            if parse_utc(doc["lease_until"]) <= datetime.now(UTC):
                continue
            outcome = self.send_safely(due)
            log.info(
                "notification attempt",
                notification=doc["id"],
                attempt=1,
                delivered=outcome.delivered,
                error=outcome.error or None,
            )
            if not pending:
                first_sent = time.monotonic()
            pending.append((doc, 1, outcome, 1))
            sent += 1
            if len(pending) >= SEND_RECORD_EVERY or time.monotonic() - first_sent > SEND_RECORD_SECONDS:
                self.service.record_many(pending, datetime.now(UTC), self.policy)
                pending = []
        if pending:
            self.service.record_many(pending, datetime.now(UTC), self.policy)
        return sent

    def _secret(self, name: str) -> str:
        """A secret's value, read once per batch of sends (``_secrets`` is emptied after each)."""
        if name not in self._secrets:
            self._secrets[name] = self.secrets.resolve([name])[name]
        return self._secrets[name]

    def send_safely(self, due: NotificationDue) -> Outcome:
        """``send``, with anything it raises an attempt that failed (retried): what one notification says never
        stops the notifier."""
        try:
            return self.send(due)
        except (redis.ConnectionError, redis.TimeoutError):
            raise
        except Exception as exc:  # masked: the secrets this batch read never reach the log
            error = Masker(self._secrets.values()).mask(f"{type(exc).__name__}: {exc}")
            return Outcome(delivered=False, error=error[:200])

    def send(self, due: NotificationDue) -> Outcome:
        """One attempt at ``due``'s destination."""
        destination, payload = due.destination, due.payload
        timeout = self.settings.notify_timeout_seconds
        try:
            if "email" in destination:
                if self.settings.smtp_url is None:
                    return Outcome(delivered=False, error="no SMTP server is configured (JOBLEDGER_SMTP_URL)")
                password = None
                if self.settings.smtp_password_secret:
                    name = self.settings.smtp_password_secret
                    password = self._secret(name)
                message = email_message(payload, destination["email"], self.settings.smtp_from)
                return send_email(self.settings.smtp_url, password, message, timeout)
            if "slack" in destination:
                return post_json(destination["slack"], orjson.dumps(slack_message(payload)), {}, timeout)
            secret = None
            if "secret" in destination:
                name = destination["secret"]["secret"]
                secret = self._secret(name)
            body, headers = webhook_request(payload, secret, int(time.time()))
            return post_json(destination["webhook"], body, headers, timeout)
        except JobledgerError as exc:  # a secret gone or unreadable here: retried, it may be set again
            return Outcome(delivered=False, error=str(exc)[:200])

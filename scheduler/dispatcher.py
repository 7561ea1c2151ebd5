"""The dispatcher: a consumer group on the log that turns run events into RQ work, plus periodic upkeep."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from datetime import UTC, datetime
from types import FrameType

import redis
import structlog

from queue_core.domain.arrays import parent_of
from queue_core.domain.gate import is_gated, priority_of
from queue_core.errors import StopRequested, StoreEpochChanged, StoreUnderMaintenance
from queue_core.eventlog.connection import connect
from queue_core.eventlog.consumer_group import ConsumerGroup, Delivery
from queue_core.eventlog.events import Recorded, RunCancelled, RunRetryScheduled, RunSubmitted, ScheduleFired
from queue_core.eventlog.health import check_epoch, check_store
from queue_core.eventlog.store import EventStore
from queue_core.keys import Keys
from queue_core.services.arrays import ArrayChildren
from queue_core.services.lifecycle import RunLifecycle
from queue_core.services.replacements import Replacements
from queue_core.settings import Settings
from queue_core.timefmt import parse_utc
from scheduler.array_windows import ArrayWindows, is_windowed
from scheduler.maintenance import Maintenance
from scheduler.rq_jobs import enqueue_attempt, enqueue_first_attempts, schedule_attempt
from scheduler.workflow_reactions import WorkflowReactions

__all__ = ["Dispatcher"]

log = structlog.get_logger("jobledger.dispatcher")
STORE_ERRORS = (redis.ConnectionError, redis.TimeoutError)
READ_COUNT = 200
TICK_SECONDS = 0.5
CLAIM_IDLE_MS = 30_000
# A consumer that has read nothing for this long and holds nothing is a dispatcher that died: forgotten.
DEAD_CONSUMER_IDLE_MS = 600_000
REFUSAL_NOTE_SECONDS = 10.0
# A read of a group that is gone, or whose log was deleted while the read was blocked on it.
GROUP_GONE = ("NOGROUP", "UNBLOCKED")
CHILD_ENDS = {"RunSucceeded": "SUCCEEDED", "RunFailed": "FAILED", "RunCancelled": "CANCELLED"}
RUN_ENDS = frozenset({"RunSucceeded", "RunFailed", "RunCancelled"})
MAX_BACKOFF_SECONDS = 5.0  # the longest pause between two tries after an error that persists
# A plain array's children's ends are noted on its parent this long after the first of them was read (or once
# this many wait): one append for many ends, not one per child. Their log entries are acknowledged only then.
NOTE_DELAY_SECONDS = 0.1
NOTE_BATCH = 500


class Dispatcher:
    """Reacts to the log; any number may run in one consumer group without doing anything twice."""

    def __init__(self, settings: Settings, connection: redis.Redis | None = None, name: str | None = None) -> None:
        self.settings = settings
        self.redis = connection if connection is not None else connect(settings)
        self.keys = Keys()
        self.store = EventStore(
            self.redis, self.keys, replicas=settings.replicas_to_wait, replica_wait_ms=settings.replica_wait_ms
        )
        self.group = ConsumerGroup(self.store, self.keys.dispatch_group)
        self.lifecycle = RunLifecycle(self.store)
        self.name = name or f"{socket.gethostname()}.{os.getpid()}"
        self.maintenance = Maintenance(settings, self.redis, self.store, self.name)
        self.workflows = WorkflowReactions(self.store, self.maintenance.read_models, self.maintenance.still_leading)
        self.replacements = Replacements.on(self.store, self.maintenance.read_models, settings)
        self.maintenance.on_reconcile = self.workflows.upkeep
        self.maintenance.read_models.stop_requested = lambda: self._stopping
        self._stopping = False
        self._refusing = False
        self._next_refusal_note = 0.0
        self._refusal = ""
        self._grouped = False
        self._handled_through: str | None = None  # the group's checkpoint, as last seen: recreated from it
        self._backoff = 0.0
        self.arrays = ArrayChildren(self.store)
        self.windows = ArrayWindows(self.redis, self.store, self.workflows.engine)
        self._children_ended: dict[str, dict[int, str]] = {}  # array parent -> child index -> how it ended
        self._end_positions: dict[tuple[str, int], str] = {}  # (parent, child index) -> where its end was read
        self._noting_due: float | None = None  # when the ends waiting in ``_children_ended`` are noted
        self._unacknowledged: list[bytes] = []  # entries read whose ends wait to be noted
        self._gate_due = False  # a batch brought a gated run, or perhaps freed a slot a run waits for

    def ensure_group(self) -> None:
        """Join the group; create it if it is missing: from the start of the log (a run submitted before any
        dispatcher existed is still dispatched), or, if it went missing under this dispatcher (a store restarted
        and refilled), from the checkpoint it last saw, so nothing after it is skipped (all before was handled).

        Nothing on an empty store (a restore about to fill it): the group is made once its log is back.
        """
        if not self.redis.exists(self.keys.log):
            self._grouped = False
            return
        if self.group.handled_through() is None:
            after = self._handled_through or "0"
            if self._handled_through is not None:
                log.warning("the dispatchers' consumer group is missing; recreating it", after=after)
            self.group.recreate(after)
        self._grouped = True

    def _pause(self, what: str, error: str) -> None:
        """Wait before trying again after an error that may persist: twice as long each time, up to a limit."""
        self._backoff = min(max(self._backoff * 2, 0.1), MAX_BACKOFF_SECONDS)
        log.warning(f"{what}; trying again", error=error, seconds=self._backoff)
        time.sleep(self._backoff)

    def stop(self, *_: object) -> None:
        self._stopping = True

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self, until: float | None = None) -> None:
        """Dispatch until stopped (or until the monotonic time ``until``).

        A store that is unsafe at the start is refused (the error says why). Later, an outage is
        waited out (with a growing pause), and a store under maintenance, empty or holding another log is
        not touched (no group, no stream is created in it) until the log it knew is back, as after a restore.
        """
        with contextlib.suppress(StoreUnderMaintenance):  # waited out below, like a store that came back empty
            check_store(self.store, self.settings, head=True)
        log.info("dispatcher started", consumer=self.name)
        next_tick = 0.0
        while not self._stopping and (until is None or time.monotonic() < until):
            try:
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + TICK_SECONDS
                    if not self._store_trusted():
                        time.sleep(TICK_SECONDS)
                        continue
                    self.maintenance.tick()
                    self._claim_abandoned()
                    self._handled_through = self.group.handled_through() or self._handled_through
                wake = next_tick if self._noting_due is None else min(next_tick, self._noting_due)
                if not self.step(block_ms=max(1, int((wake - time.monotonic()) * 1000))) and self._noting_due:
                    self._note_children_ended(force=time.monotonic() >= self._noting_due)
                self._backoff = 0.0
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._pause("store unavailable", str(exc).splitlines()[0])
            except (StoreUnderMaintenance, StoreEpochChanged):
                next_tick = 0.0  # refused mid-pass (a marker, a store come back empty): the next look says so, waits
            except StopRequested:
                break
            except redis.ResponseError as exc:
                if not str(exc).startswith(GROUP_GONE):
                    raise
                next_tick = 0.0  # the log or its group is gone: look at the store again before anything
                if self._backoff:
                    self._pause("the consumer group is still missing", str(exc))
                with contextlib.suppress(redis.ResponseError):
                    self.ensure_group()
                self._backoff = self._backoff or 0.05
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, StoreUnderMaintenance):
            self._note_children_ended(force=True)  # else another dispatcher takes the entries over, later
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
            self.maintenance.release()
        log.info("dispatcher stopped", consumer=self.name)

    def _store_trusted(self) -> bool:
        """False (and said, now and then) while the store is held for maintenance, empty or another one;
        regroups when it is back."""
        try:
            check_epoch(self.store, self.settings)
            if not self._grouped:
                self.ensure_group()
                if not self._grouped:
                    if not self._refusing:
                        log.info("the store has no log yet: waiting for its first event (or a restore)")
                    self._refusing = True
                    return False
        except (StoreEpochChanged, StoreUnderMaintenance) as exc:
            if time.monotonic() >= self._next_refusal_note or str(exc) != self._refusal:
                log.error("refusing to dispatch; waiting", reason=str(exc))
                self._next_refusal_note = time.monotonic() + REFUSAL_NOTE_SECONDS
                self._refusal = str(exc)
            self._refusing = True
            return False
        if self._refusing:
            log.info("the store's log is back; dispatching again")
            self._refusing = False
            self.ensure_group()
        return True

    def step(self, block_ms: int = 0) -> int:
        """Read and handle one batch of new events; returns how many log entries were handled."""
        delivery = self.group.read_new(self.name, READ_COUNT, block_ms)
        return self._handle_delivery(delivery) if len(delivery) else 0

    def _handle_delivery(self, delivery: Delivery) -> int:
        for rec in delivery:
            try:
                self.handle(rec)
                self.workflows.note(rec)
            except (*STORE_ERRORS, StoreUnderMaintenance):
                raise  # not this event's fault: the batch stays unacknowledged, and is handled again
            except Exception as exc:
                # One event that cannot be handled (its aggregate's history does not fold, a bug) stops
                # neither this batch nor this process; upkeep heals what a lost reaction leaves undone.
                log.error(
                    "event left alone: handling it raised",
                    position=rec.position,
                    aggregate=rec.aggregate,
                    type=rec.type,
                    error=f"{exc!r}"[:300],
                )
        self.workflows.flush()  # once per batch: a fan-in of many ended tasks is one decision
        self._unacknowledged += delivery.positions
        self._note_children_ended(force=False, just_read={position.decode() for position in delivery.positions})
        if self._gate_due:  # now rather than at the next tick: a gated run starts as soon as a plain one does
            self._gate_due = False
            self.maintenance.gate_now()
        return len(delivery)

    def _note_children_ended(self, force: bool, just_read: set[str] | None = None) -> None:
        """Note the array children that ended on their parents, one append per parent, then acknowledge the
        entries read so far (deleted entries too): a crash before that redelivers entries already handled, which
        is safe because every reaction is idempotent. A plain array's ends wait up to ``NOTE_DELAY_SECONDS`` for
        more (a for-each's, or one an ``N_TO_N`` task follows, are noted at once: they release more children).
        ``just_read``: the positions of the delivery being handled (not looked for again in the log)."""
        waiting = sum(len(ended) for ended in self._children_ended.values())
        if not force and waiting and waiting < NOTE_BATCH and all(map(self.windows.is_plain, self._children_ended)):
            self._noting_due = self._noting_due or time.monotonic() + NOTE_DELAY_SECONDS
            if time.monotonic() < self._noting_due:
                return
        self._noting_due = None
        self._forget_ends_gone(just_read or set())
        for parent, children in list(self._children_ended.items()):
            try:
                noted = self.windows.note_ended(parent, children)  # None: no for-each's parent
                if noted or (noted is None and self.arrays.note_ended(parent, children)):
                    log.info("array job ended", run_id=parent)
                self.windows.children_ended(parent)
            except (*STORE_ERRORS, StoreUnderMaintenance):
                raise  # the ends wait, their entries unacknowledged, and are noted next time
            except Exception as exc:
                log.error("array children's ends left alone: noting them raised", run_id=parent, error=repr(exc)[:300])
            del self._children_ended[parent]
            for index in children:
                self._end_positions.pop((parent, index), None)
        positions, self._unacknowledged = self._unacknowledged, []
        if positions:
            self.group.ack(positions)

    def _forget_ends_gone(self, just_read: set[str]) -> None:
        """Leave out the ends read earlier whose events the log no longer holds (a restore to an earlier point
        while they waited, through maintenance or an outage): one look per end, in one round trip; none for the
        ends of the delivery just read, noted at once as a for-each's are. Those still in the restored log are
        read again from it."""
        ends = [(end, position) for end, position in self._end_positions.items() if position not in just_read]
        if not ends:
            return
        held = self.store.holds_many([position for _, position in ends])
        gone = [end for (end, _), found in zip(ends, held, strict=True) if not found]
        for parent, index in gone:
            self._end_positions.pop((parent, index), None)
            children = self._children_ended.get(parent, {})
            children.pop(index, None)
            if not children:
                self._children_ended.pop(parent, None)
        if gone:
            log.warning("array children's ends read before a restore are gone from the log: not noted", ends=len(gone))

    def _claim_abandoned(self) -> None:
        """Take over entries a dead dispatcher read but never acknowledged."""
        delivery = self.group.claim_abandoned(self.name, CLAIM_IDLE_MS, READ_COUNT)
        if len(delivery):
            log.info("took over abandoned log entries", count=len(delivery))
            self._handle_delivery(delivery)
        forgotten = self.group.forget_idle(self.name, DEAD_CONSUMER_IDLE_MS)
        if forgotten:
            log.info("forgot dead dispatchers' consumers", consumers=forgotten)

    def handle(self, rec: Recorded) -> None:
        """React to one event; idempotent, so a redelivered event changes nothing."""
        event = rec.event
        if rec.type in CHILD_ENDS and (child := parent_of(rec.aggregate)) is not None:
            parent, index = child  # an array job's child ended: noted on its parent once this batch is handled
            self._children_ended.setdefault(parent, {})[index] = CHILD_ENDS[rec.type]
            self._end_positions[(parent, index)] = rec.position
        if rec.type in RUN_ENDS and self.maintenance.gate.waiting:
            self._gate_due = True  # perhaps a gated run's end: its slots are free
        if isinstance(event, RunSubmitted):
            if event.array_parent is not None:
                return  # an array job's child: queued in the batch that submitted it, put on RQ with its siblings
            if is_windowed(event):  # a for-each task's, or an N_TO_N array task's: children go in as room is made
                self.windows.start(rec.aggregate, event)
                return
            if event.array_size is not None:
                children = self.arrays.expand(rec.aggregate)
                if children:
                    enqueue_first_attempts(self.redis, event.cluster, children, priority_of(event.job))
                    log.info("array job's children queued", run_id=rec.aggregate, children=len(children))
                return
            if is_gated(event.job):
                self._gate_due = True
                return  # the gate lets it through when a slot is free (``scheduler/gate.py``, on the leader)
            if self.lifecycle.queue(rec.aggregate, 1):
                enqueue_attempt(self.redis, event.cluster, rec.aggregate, 1, priority_of(event.job))
                log.debug("run queued", run_id=rec.aggregate, cluster=event.cluster)
        elif isinstance(event, RunRetryScheduled):
            doc, _ = self.lifecycle.load(rec.aggregate)
            if doc is None or doc["status"] != "PENDING" or doc["attempt"] != event.attempt:
                return
            # The delay is a duration on the failing worker's clock (its stamp of the failure to its not_before),
            # waited out on this one's: a worker whose clock runs ahead cannot push the retry back by its skew.
            now, due = datetime.now(UTC), parse_utc(event.not_before)
            when = min(due, now + (due - parse_utc(rec.time)))
            priority = priority_of(doc["job"])
            if when <= now:
                enqueue_attempt(self.redis, doc["cluster"], rec.aggregate, event.attempt, priority)
            else:
                schedule_attempt(self.redis, doc["cluster"], rec.aggregate, event.attempt, when, priority)
            log.debug("retry scheduled", run_id=rec.aggregate, attempt=event.attempt, at=event.not_before)
        elif isinstance(event, RunCancelled) and parent_of(rec.aggregate) is None:
            # An array job's parent, cancelled by a user or by its workflow run (failFast, a cancel of the run):
            # cancel its children here (a user's cancel did already; children submitted after it looked are
            # caught); a second sweep cancels nothing. A child's own cancel is no parent's: not looked at.
            self.arrays.cancel_children_of(rec.aggregate)
        elif isinstance(event, ScheduleFired) and self.replacements.cancel(event):
            # The timer cancels what a tick replaced right after appending the tick; done again here, from
            # the log, in case it died in between (a second cancel changes nothing).
            log.info("cancelled the run a schedule's tick replaced", run_id=event.replaced)

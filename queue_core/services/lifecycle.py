"""The commands workers and dispatchers issue as a run moves: queue, claim, succeed, fail, lose."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from queue_core.domain.runs import PENDING, RECENTLY_SUBMITTED, RUNNING, WORKER_LOST, apply_run, decide_failure
from queue_core.errors import ConcurrencyError
from queue_core.eventlog.aggregates import load_state
from queue_core.eventlog.events import Event, NewEvent, RunQueued, RunStarted, RunSucceeded, RunValuesPublished
from queue_core.eventlog.store import EventStore

__all__ = ["Claim", "RunLifecycle", "attempt_job_id"]

CLAIM_RETRIES = 5


def attempt_job_id(run_id: str, attempt: int) -> str:
    """The RQ job id of one attempt: deterministic, so the same attempt is never two RQ jobs."""
    return f"{run_id}-{attempt}"


@dataclass(frozen=True)
class Claim:
    """A worker's hold on one attempt: the run as it was claimed and the version after the claim."""

    run: dict[str, Any]
    attempt: int
    version: int


class RunLifecycle:
    """Each method is load -> decide -> append with the expected version; a stale writer loses."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def load(self, run_id: str) -> tuple[dict[str, Any] | None, int]:
        return load_state(self.store, run_id, apply_run)

    def _append(self, run_id: str, events: list[Event], version: int) -> None:
        self.store.append([NewEvent(run_id, e) for e in events], {run_id: version})

    def queue(self, run_id: str, attempt: int) -> bool:
        """Record that the attempt is going into its cluster's queue; False if someone else moved the run."""
        doc, version = self.load(run_id)
        if doc is None or doc["status"] != PENDING or doc["attempt"] != attempt:
            return False
        if doc["reason"] != RECENTLY_SUBMITTED:
            return False
        try:
            self._append(run_id, [RunQueued(attempt=attempt, job_id=attempt_job_id(run_id, attempt))], version)
        except ConcurrencyError:
            return False
        return True

    def claimable(self, run_id: str, attempt: int) -> tuple[dict[str, Any], int] | None:
        """The run and its version if the attempt could be claimed now, else None; appends nothing.

        A worker looks first, materializes the source, then claims with the revision it got: a
        duplicate delivery may fetch a source, but only the delivery whose claim lands runs the job.
        """
        doc, version = self.load(run_id)
        if doc is None or doc["status"] != PENDING or doc["attempt"] != attempt:
            return None
        return doc, version

    def claim(
        self,
        run_id: str,
        attempt: int,
        worker: str,
        host: str,
        pid: int,
        source_revision: str | None = None,
        seen: tuple[dict[str, Any], int] | None = None,
    ) -> Claim | None:
        """Claim an attempt for a worker; None when it is not claimable (a duplicate delivery, a cancel).

        ``seen`` is the run as ``claimable`` returned it: the first try appends at that version
        without loading the run again; if the run moved meanwhile, the conflict makes it reload.
        """
        for _ in range(CLAIM_RETRIES):
            doc, version = seen if seen is not None else self.load(run_id)
            seen = None
            if doc is None or doc["status"] != PENDING or doc["attempt"] != attempt:
                return None
            started = RunStarted(attempt=attempt, worker=worker, host=host, pid=pid, source_revision=source_revision)
            try:
                recorded = self.store.append([NewEvent(run_id, started)], {run_id: version})
            except ConcurrencyError:
                continue
            claimed = apply_run(doc, recorded[0])
            assert claimed is not None and claimed["status"] == RUNNING
            return Claim(claimed, attempt, version + 1)
        return None

    def succeed(
        self,
        claim: Claim,
        result: dict[str, Any] | None = None,
        written: Sequence[Event] = (),
        values: Mapping[str, Any] | None = None,
        beside: Sequence[NewEvent] = (),
        beside_versions: Mapping[str, int] | None = None,
    ) -> bool:
        """Record success (a SQL run's result, the datasets it wrote, the values it published); False when the
        run moved on meanwhile. The values go first: the run is not ended yet when they land.

        ``beside``: events of other aggregates (at ``beside_versions``) recorded in the same batch, such as a
        sync's watermark; a conflict on one of them raises ``ConcurrencyError``, for the caller to decide again.
        """
        run_id = claim.run["id"]
        published: list[Event] = [RunValuesPublished(attempt=claim.attempt, values=values)] if values else []
        ended: list[Event] = [RunSucceeded(attempt=claim.attempt, result=result), *written]
        batch = [NewEvent(run_id, e) for e in [*published, *ended]]
        try:
            self.store.append([*batch, *beside], {run_id: claim.version, **(beside_versions or {})})
        except ConcurrencyError as exc:
            if exc.aggregate != run_id:
                raise
            return False
        return True

    def fail(
        self, claim: Claim, reason: str, exit_code: int | None, message: str, log_matches: tuple[int, ...] = ()
    ) -> bool:
        """Record a failed attempt and what follows it; False when the run moved on meanwhile.

        ``log_matches``: the retry rules whose ``onLogMatch`` the attempt's output matched (``LogWatch``).
        """
        events = decide_failure(claim.run, claim.attempt, reason, exit_code, message, datetime.now(UTC), log_matches)
        try:
            self._append(claim.run["id"], events, claim.version)
        except ConcurrencyError:
            return False
        return True

    def declare_lost(self, run_id: str, attempt: int, message: str) -> bool:
        """Turn a running attempt whose worker stopped answering into ``WorkerLost``."""
        doc, version = self.load(run_id)
        if doc is None or doc["status"] != RUNNING or doc["attempt"] != attempt:
            return False
        events = decide_failure(doc, attempt, WORKER_LOST, None, message, datetime.now(UTC))
        try:
            self._append(run_id, events, version)
        except ConcurrencyError:
            return False
        return True

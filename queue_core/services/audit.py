"""The log as users audit it: events by aggregate, type and range, following new ones, the chain, time travel."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from queue_core.eventlog.archive import history_events, verify_log
from queue_core.eventlog.chain import ChainReport
from queue_core.eventlog.events import Recorded
from queue_core.eventlog.maintenance_mode import maintenance
from queue_core.eventlog.positions import position_key
from queue_core.eventlog.seals import LedgerVerifier, SealCheck
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import Rebuilt, VerifyResult, rebuild_live, verify
from queue_core.readmodels.timetravel import state_as_of

__all__ = ["AuditService"]

FOLLOW_COUNT = 500


class AuditService:
    """Reading the log back, checking it, and rebuilding what is derived from it."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def events(
        self,
        aggregate: str | None = None,
        type: str | None = None,
        limit: int | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> list[Recorded]:
        """Events oldest first, from ``since`` to ``until`` (positions, inclusive); with ``limit``, the newest."""
        if aggregate is None and type is None and limit and since is None and until is None:
            return self.store.tail(limit)
        if aggregate:
            low, high = position_key(since or "0-0"), position_key(until) if until else None
            source: Iterable[Recorded] = (
                rec
                for rec in self.store.load(aggregate)
                if position_key(rec.position) >= low and (high is None or position_key(rec.position) <= high)
            )
        else:
            source = history_events(self.store, until=until or "+", since=since or "-")  # the archived part too
        matching = [rec for rec in source if type is None or rec.type == type]
        return matching[-limit:] if limit else matching

    def follow(
        self, after: str, aggregate: str | None = None, type: str | None = None, block_ms: int = 1000
    ) -> Iterator[Recorded]:
        """New events after position ``after`` as they land, forever (stop by closing the iterator)."""
        while True:
            for rec in self.store.follow(after, block_ms, count=FOLLOW_COUNT):
                after = rec.position
                if (aggregate is None or rec.aggregate == aggregate) and (type is None or rec.type == type):
                    yield rec

    def verify_chain(self, verifier: LedgerVerifier | None = None) -> tuple[ChainReport, SealCheck, str | None]:
        """Walk the hash chain from the first entry (after a trim, from the archive's hash before Redis's first),
        checking every seal with ``verifier``; the report, what the seals cover, and a note on how it was walked."""
        seals = SealCheck(verifier)
        report, note = verify_log(self.store, check=seals)
        return report, seals, note

    def as_of(self, until: str) -> dict[str, dict[str, dict[str, Any]]]:
        """The read models as of position (or ISO time) ``until``: model -> entity -> document."""
        return state_as_of(self.store, until)

    def rebuild(self, progress: Callable[[int], None] | None = None) -> Rebuilt:
        """Drop every read model and rebuild it from the log, in place, holding the store in maintenance."""
        with maintenance(self.store, "rebuild"):
            return rebuild_live(self.store, progress)

    def verify(self, progress: Callable[[int], None] | None = None) -> VerifyResult:
        """Rebuild every read model into a scratch namespace and compare with the live ones."""
        return verify(self.store, progress=progress)

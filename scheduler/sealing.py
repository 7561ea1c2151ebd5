"""Sealing the chain: the leading dispatcher, holding the ledger key, signs the log's head now and then."""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from queue_core.errors import ConcurrencyError
from queue_core.eventlog.events import ChainSealed, LedgerKeyAdopted, NewEvent, Recorded, envelope_type
from queue_core.eventlog.positions import before
from queue_core.eventlog.seals import LEDGER_AGGREGATE, LedgerSigner
from queue_core.eventlog.store import EventStore

__all__ = ["SEAL_EVERY_SECONDS", "Sealer"]

log = structlog.get_logger("jobledger.dispatcher")
SEAL_EVERY_SECONDS = 2.0


class Sealer:
    """Appends a ``ChainSealed`` over the log's head when entries landed since the last seal, at most every
    ``every`` seconds; the first time, a ``LedgerKeyAdopted`` first (a log older than the key is covered
    whole by its first seal). It never seals a log whose newest entry is a seal."""

    def __init__(
        self,
        store: EventStore,
        signer: LedgerSigner,
        every: float = SEAL_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.signer = signer
        self.every = every
        self.clock = clock
        self._next = 0.0
        self._refused_key: str | None = None  # the other key this log is sealed by, said once

    def tick(self) -> Recorded | None:
        """Seal if it is time; returns the seal appended, if any."""
        if self.clock() < self._next:
            return None
        self._next = self.clock() + self.every
        return self.seal()

    def seal(self) -> Recorded | None:
        """Seal the log's head now, unless nothing but seals landed since the last one."""
        ledger = self.store.newest(1, aggregate=LEDGER_AGGREGATE)
        try:
            version = ledger[0].version if ledger else self._adopt()
            if ledger and not self._ours(ledger[0]):
                return None
            position = self.store.last_position()
            found = list(self.store.read_chain(after=before(position), until=position))
            if not found or found[0][2] is None or envelope_type(found[0][1]) == ChainSealed.__name__:
                return None
            seal = self.signer.seal(position, found[0][2])
            return self.store.append([NewEvent(LEDGER_AGGREGATE, seal)], {LEDGER_AGGREGATE: version})[0]
        except ConcurrencyError:
            return None  # another dispatcher sealed (or adopted) first: the next tick looks again

    def _adopt(self) -> int:
        adopted = LedgerKeyAdopted(self.signer.key_id, self.signer.verifier.pem().decode())
        self.store.append([NewEvent(LEDGER_AGGREGATE, adopted)], {LEDGER_AGGREGATE: 0})
        log.info("ledger key adopted", key_id=self.signer.key_id)
        return 1

    def _ours(self, newest: Recorded) -> bool:
        """Whether the log is sealed by this key; another key's log is left alone (and said once)."""
        event = newest.event
        key_id = event.key_id if isinstance(event, ChainSealed | LedgerKeyAdopted) else None
        if key_id == self.signer.key_id:
            return True
        if key_id != self._refused_key:
            self._refused_key = key_id
            log.error("not sealing: the log is sealed by another ledger key", key_id=key_id, ours=self.signer.key_id)
        return False

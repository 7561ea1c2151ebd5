"""A large export file written straight from Python: a store's first entries, then many ended runs after them."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from queue_core.eventlog.chain import link
from queue_core.eventlog.events import NewEvent, RunQueued, RunStarted, RunSubmitted, RunSucceeded, encode
from queue_core.eventlog.transfer import Entry, write_export
from queue_core.timefmt import utc_now

DAY_MS = 86_400_000


def ended_runs_export(path: Path, head: list[Entry], submitted: RunSubmitted, runs: int) -> list[Entry]:
    """Write an export of ``head`` (a log's first entries) and ``runs`` succeeded runs (4 events each) like
    ``submitted``, all positioned a day in the past; returns the entries (``head`` re-positioned there: a
    chain does not cover positions). Nothing goes through Redis: 100,000 events take seconds."""
    base = int(time.time() * 1000) - DAY_MS
    entries: list[Entry] = []
    previous = ""
    for offset, (_, envelope, chain) in enumerate(head):
        entries.append((f"{base + offset}-0", envelope, chain))
        previous = chain or ""
    now = utc_now()
    first = base + len(head)
    for index in range(runs):
        run_id = str(uuid.uuid4())
        story = (
            submitted,
            RunQueued(attempt=1, job_id=f"{run_id}-1"),
            RunStarted(attempt=1, worker="w", host="h", pid=1),
            RunSucceeded(attempt=1),
        )
        for version, event in enumerate(story, start=1):
            envelope = encode(NewEvent(run_id, event), version, now)
            previous = link(previous, envelope)
            entries.append((f"{first + index}-{version - 1}", envelope, previous))
    write_export(path, entries, chain_start="")
    return entries

"""Many runs written straight into the log: the store's own append script, pipelined, no client round trips."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from queue_core.eventlog.events import (
    Event,
    NewEvent,
    RunFailed,
    RunQueued,
    RunStarted,
    RunSubmitted,
    RunSucceeded,
    encode,
)
from queue_core.eventlog.store import EventStore
from queue_core.timefmt import utc_now

PIPELINE = 1000
JOB = {"type": "SHELL", "source": {"type": "WORKSPACE", "sourceDef": {"path": "jobs"}}, "sourceLocation": "x.sh"}


def _story(definition: str, index: int, job: Mapping[str, Any]) -> list[Event]:
    events: list[Event] = [
        RunSubmitted(definition_id="", definition=definition, definition_version=1, cluster="default", job=job)
    ]
    if index % 5 == 0:
        return events  # left PENDING
    events += [RunQueued(attempt=1, job_id="x-1"), RunStarted(attempt=1, worker="w", host="h", pid=1)]
    if index % 7 == 0:
        return [*events, RunFailed(attempt=1, reason="NonZeroExitCode", exit_code=1)]
    return [*events, RunSucceeded(attempt=1)]


def append_runs(
    store: EventStore,
    count: int,
    definitions: tuple[str, ...] = ("nightly", "hourly"),
    job: Mapping[str, Any] = JOB,
) -> list[str]:
    """Append ``count`` runs of ``definitions`` in turn (a fifth pending, some failed, the rest succeeded).

    ``job``: the job every run was submitted with (a whole one, as a submit writes it, for the oracle).
    """
    run_ids = []
    pipe = store.redis.pipeline(transaction=False)
    calls, now = 0, utc_now()
    for index in range(count):
        run_id = str(uuid.uuid4())
        run_ids.append(run_id)
        for version, event in enumerate(_story(definitions[index % len(definitions)], index, job), start=1):
            new = NewEvent(run_id, event)
            # The layout EventStore.append uses: log, epoch, the aggregate, the maintenance marker.
            keys = [store.keys.log, store.keys.epoch, store.keys.aggregate(run_id), store.keys.maintenance]
            store._append(
                keys=keys, args=[store.epoch, 1, version - 1, 1, new.event_id, encode(new, version, now)], client=pipe
            )
            calls += 1
            if calls % PIPELINE == 0:
                if any(reply[0] != b"OK" for reply in pipe.execute()):
                    raise RuntimeError("an append was refused")
                now = utc_now()
    if any(reply[0] != b"OK" for reply in pipe.execute()):
        raise RuntimeError("an append was refused")
    return run_ids

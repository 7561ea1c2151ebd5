"""The trigger watcher: follows the log for dataset writes and polls depots for new files, and fires triggers.

Any number of watchers may run (one per scheduler): each decides on the trigger's own events, read from
the log, and appends at the version it read, so a fire is appended once whichever watcher sees it first.
Dataset triggers react within a pass of the write (the log is followed every pass, and the follow-ups run a
pass whenever the log moves); depots are listed every ``FILE_POLL_SECONDS``.

The targets (every live definition and workflow with a trigger) are listed from the read models once, and
again only when a definition or workflow changes: a pass costs the new events and the triggers they touch,
not the catalog; a change of the catalog costs one read of the definitions and workflows.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from queue_core.client import Client
from queue_core.domain.triggers import NOTE, FileSeen, TriggerDecision, Write, decide_datasets, decide_files
from queue_core.errors import ConcurrencyError
from queue_core.eventlog.positions import position_key
from queue_core.services.triggers import Target
from queue_core.specs.triggers import DATASETS, FILES, matches_file

__all__ = ["FILE_POLL_SECONDS", "TriggerWatcher", "list_files"]

log = structlog.get_logger("jobledger.triggers")
FILE_POLL_SECONDS = 5.0
DECIDE_RETRIES = 5
# Events that change which triggers there are, and the writes dataset triggers watch.
_FOLLOWED = frozenset(
    {
        "DatasetWritten",
        "DefinitionCreated",
        "DefinitionRevised",
        "DefinitionDeleted",
        "WorkflowCreated",
        "WorkflowRevised",
    }
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _hidden(name: str) -> bool:
    """Spark's rule, as the SQL runner's: a name starting with ``_`` or ``.`` is not data (a file still being put)."""
    return name.startswith(("_", "."))


def list_files(depot: dict[str, Any], prefix: str) -> list[FileSeen]:
    """The files directly under ``prefix`` in a local or S3 depot (not below: no walk of a tree a user sizes)."""
    config = depot["config"]
    if depot["type"] == "local":
        folder = Path(config["path"]) / prefix
        if not folder.is_dir():
            return []
        with os.scandir(folder) as entries:
            return [
                FileSeen(e.name, datetime.fromtimestamp(e.stat().st_mtime, UTC))
                for e in entries
                if e.is_file() and not _hidden(e.name)
            ]
    import boto3  # here: only a scheduler watching an S3 depot pays for importing it

    s3 = boto3.client("s3", region_name=config.get("region"), endpoint_url=config.get("endpoint_url"))
    base = "/".join(p for p in (config["prefix"], prefix) if p)
    start = f"{base}/" if base else ""
    found: list[FileSeen] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=config["bucket"], Prefix=start, Delimiter="/"):
        for item in page.get("Contents", []):
            name = item["Key"][len(start) :]
            if name and not _hidden(name):
                found.append(FileSeen(name, item["LastModified"].astimezone(UTC)))
    return found


class TriggerWatcher:
    """Fires the triggers of definitions and workflows; ``clock`` is injected for tests."""

    def __init__(
        self, client: Client, clock: Callable[[], datetime] = utc_now, file_poll_seconds: float = FILE_POLL_SECONDS
    ) -> None:
        self.client = client
        self.service = client.triggers
        self.store = client.store
        self.clock = clock
        self.file_poll_seconds = file_poll_seconds
        self._targets: list[Target] | None = None
        self._followed: str | None = None  # the log position up to which writes were looked at
        self._waiting: set[str] = set()  # triggers holding noted writes: decided again each pass (debounce)
        self._next_files = 0.0

    @property
    def followed(self) -> str:
        """The log position up to which writes were looked at (the head when none has been yet)."""
        return self._followed if self._followed is not None else self.store.last_position()

    def _refresh(self) -> list[Target]:
        self._targets = self.service.targets()
        return self._targets

    def _start(self, targets: list[Target]) -> str:
        """Where following starts: the oldest point any dataset trigger has not looked past yet."""
        starts = []
        for target in targets:
            if target.trigger["kind"] != DATASETS:
                continue
            doc, _ = self.service.load(target)
            cursor = doc["cursor"] if doc else "0-0"
            starts.append(max(cursor, target.since, key=position_key))
            if doc and doc["pending"]:
                self._waiting.add(target.trigger_id)
        return min(starts, key=position_key) if starts else self.store.last_position()

    def run_pass(self, now: datetime | None = None) -> int:
        """Look at the log's new writes and (when due) the depots' files; returns how many decisions were appended."""
        now = now or self.clock()
        targets = self._targets if self._targets is not None else self._refresh()
        if self._followed is None:
            self._followed = self._start(targets)
        head = self.store.last_position()
        writes: list[Write] = []
        if head != "0" and position_key(head) > position_key(self._followed):
            changed = False
            for rec in self.store.read(after=self._followed, until=head, types=_FOLLOWED):
                if rec.type == "DatasetWritten":
                    writes.append(Write(rec.event.dataset, rec.aggregate, rec.position, rec.time))  # type: ignore[attr-defined]
                else:
                    changed = True
            self._followed = head
            if changed:
                targets = self._refresh()
        appended = 0
        for target in targets:
            if target.trigger["kind"] != DATASETS:
                continue
            watched = set(target.trigger["datasets"])
            mine = [w for w in writes if w.dataset in watched and position_key(w.position) > position_key(target.since)]
            if mine or target.trigger_id in self._waiting:
                appended += self._decide(
                    target, partial(decide_datasets, target.trigger, writes=mine, now=now), head, now
                )
        if time.monotonic() >= self._next_files:
            self._next_files = time.monotonic() + self.file_poll_seconds
            appended += self._poll_files(targets, now)
        return appended

    def _poll_files(self, targets: list[Target], now: datetime) -> int:
        appended = 0
        depots = {d["name"]: d for d in self.client.read_models.all("depots").values() if d}
        for target in targets:
            if target.trigger["kind"] != FILES:
                continue
            where = target.trigger["files"]
            depot = depots.get(where["depot"])
            if depot is None:
                continue  # checked when defined; a depot cannot be removed, so this is a log restored to earlier
            try:
                listing = [f for f in list_files(depot, where["prefix"]) if matches_file(target.trigger, f.name)]
            except Exception as exc:  # a depot that cannot be listed now is listed again next time
                log.warning("trigger depot not listed", depot=where["depot"], error=f"{exc!r}"[:300])
                continue
            appended += self._decide(target, partial(decide_files, target.trigger, listing=listing, now=now), "", now)
        return appended

    def _decide(
        self,
        target: Target,
        decide: Callable[[dict[str, Any] | None], TriggerDecision | None],
        cursor: str,
        now: datetime,
    ) -> int:
        """Load the trigger, decide, append at its version; on losing to another scheduler, load and decide again."""
        for _ in range(DECIDE_RETRIES):
            doc, version = self.service.load(target)
            decision = decide(doc)
            if decision is None:
                if not (doc and doc["pending"]):  # noted writes still wait for the rest, or for quiet
                    self._waiting.discard(target.trigger_id)
                return 0
            try:
                self.service.record(target, doc, version, decision, cursor, now)
            except ConcurrencyError:
                continue
            if decision.kind == NOTE:
                self._waiting.add(target.trigger_id)
            else:
                self._waiting.discard(target.trigger_id)
            return 1
        return 0

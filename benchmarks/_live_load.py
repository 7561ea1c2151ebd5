"""The live page's load for ``bench_console --live``: runs ending at a steady rate, and the CPU each side spends."""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any

import psutil
from bench_store import run_story

from queue_core.eventlog.events import NewEvent
from queue_core.eventlog.store import EventStore


def end_runs(
    store: EventStore, definitions: list[tuple[str, dict[str, Any]]], per_second: int, stop: threading.Event
) -> int:
    """Append one run's whole story (submitted to ended) ``per_second`` times a second until ``stop``; how many."""
    rng, done, started = random.Random(7), 0, time.monotonic()
    while not stop.is_set():
        run_id = str(uuid.uuid4())
        events = run_story(rng, rng.choice(definitions))
        for version, event in enumerate(events, start=1):
            store.append([NewEvent(run_id, event)], {run_id: version - 1})
        done += 1
        wait = started + done / per_second - time.monotonic()
        if wait > 0:
            stop.wait(wait)
    return done


class CpuMeter:
    """CPU seconds of a process and its children between ``start`` and ``stop``, as a share of one core."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)

    def _seconds(self) -> float:
        total = 0.0
        for proc in [self.process, *self.process.children(recursive=True)]:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                continue
        return total

    def start(self) -> None:
        self._cpu, self._wall = self._seconds(), time.monotonic()

    def stop(self) -> float:
        return (self._seconds() - self._cpu) / (time.monotonic() - self._wall)

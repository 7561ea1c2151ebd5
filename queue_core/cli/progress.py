"""Progress while the CLI waits: rich bars on a terminal, plain lines (one per change) otherwise; both on stderr."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from queue_core.client import Client
from queue_core.domain.workflow_runs import TASK_TERMINAL
from queue_core.errors import WaitTimeout

__all__ = ["replay_progress", "wait_run", "wait_workflow_run"]

POLL_SECONDS = 0.25
PLAIN_STEPS = 10  # plain replay progress: a line per tenth of the log


def _console() -> Console:
    return Console(stderr=True)


def _plain(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def wait_run(client: Client, run_id: str, timeout: float | None) -> dict[str, Any]:
    """``Client.wait`` that shows the run's status as it changes; raises ``WaitTimeout`` like it."""
    console = _console()
    deadline = None if timeout is None else time.monotonic() + timeout
    shown = ""
    with _bar(console, transient=True) as (progress, task):
        while True:
            remaining = _remaining(deadline)
            if remaining is not None and remaining <= 0:
                raise WaitTimeout(f"run {run_id} is still {client.get_run(run_id)['status']} after {timeout:g} s")
            try:
                return client.wait(run_id, POLL_SECONDS if remaining is None else min(POLL_SECONDS, remaining))
            except WaitTimeout:
                run = client.get_run(run_id)
            now = f"{run['status']}" + (f" {run['reason']}" if run["reason"] else "")
            if run["attempts"]:
                now += f" (attempt {run['attempts'][-1]['number']})"
            if progress is not None:
                progress.update(task, description=f"{run_id[:8]} {now}")
            elif now != shown:
                _plain(f"{run_id} {now}")
            shown = now


def _task_line(done: int, total: int, counts: Counter[str]) -> str:
    return f"{done}/{total} tasks ended: " + ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))


def wait_workflow_run(client: Client, run_id: str, timeout: float | None) -> dict[str, Any]:
    """``Client.wait_workflow_run`` with a bar of the tasks that ended, and a line per task that changed."""
    console = _console()
    deadline = None if timeout is None else time.monotonic() + timeout
    seen: dict[str, str] = {}
    with _bar(console, transient=False) as (progress, task):
        while True:
            remaining = _remaining(deadline)
            if remaining is not None and remaining <= 0:
                raise WaitTimeout(f"workflow run {run_id} has not ended after {timeout:g} s")
            try:
                wait = POLL_SECONDS if remaining is None else max(0.001, min(POLL_SECONDS, remaining))
                view = client.wait_workflow_run(run_id, wait)
                ended = True
            except WaitTimeout:
                view, ended = client.get_workflow_run(run_id), False
            statuses = {name: t["status"] for name, t in view["tasks"].items()}
            done = sum(1 for s in statuses.values() if s in TASK_TERMINAL)
            counts = Counter(statuses.values())
            if progress is not None:
                description = f"{view['workflow']} {view['status']}  " + _task_line(done, len(statuses), counts)
                progress.update(task, total=len(statuses), completed=done, description=description)
            else:
                for name, status in sorted(statuses.items()):
                    if seen.get(name) != status:
                        _plain(f"[{done}/{len(statuses)}] {name} {status}")
                seen = statuses
            if ended:
                return view


@contextmanager
def replay_progress(client: Client, what: str) -> Iterator[Callable[[int], None]]:
    """A ``progress(folded)`` callback for ``replay_verify`` and ``rebuild_read_models``: a bar, or a line a tenth."""
    total = client.store.length()
    console = _console()
    if console.is_terminal:
        columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(what, total=total)
            yield lambda folded: progress.update(task, completed=folded)
        return
    step = max(1, total // PLAIN_STEPS)
    next_line = step

    def plain(folded: int) -> None:
        nonlocal next_line
        if folded >= next_line:
            _plain(f"{what}: {folded:,} / {total:,} events")
            next_line = (folded // step + 1) * step

    yield plain


@contextmanager
def _bar(console: Console, transient: bool) -> Iterator[tuple[Progress | None, Any]]:
    """A rich progress bar on a terminal (None, for plain lines, otherwise)."""
    if not console.is_terminal:
        yield None, None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    ) as progress:
        yield progress, progress.add_task("waiting", total=None)

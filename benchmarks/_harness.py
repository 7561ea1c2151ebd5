"""What every benchmark shares: --repeat, medians, one JSON object on stdout, and owning its processes."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import queue_core

# The code under test is whichever jobledger this process imported (PYTHONPATH can point at a copy);
# spawned workers and dispatchers get the same one.
CODE_ROOT = Path(queue_core.__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
STOP_GRACE_SECONDS = 5.0


def parse_args(
    description: str,
    replay_events: int | None = None,
    switches: dict[str, str] | None = None,
    durability: bool = False,
    engines: tuple[str, ...] = (),
    rows: int | None = None,
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of every figure (default 3)")
    for flag, help_text in (switches or {}).items():
        parser.add_argument(flag, action="store_true", help=help_text)
    if durability:
        parser.add_argument(
            "--durability",
            choices=("local", "replicated"),
            default="local",
            help="replicated: appends that WAIT for a replica on loopback, against local ones, same run",
        )
    if engines:
        parser.add_argument("--engine", choices=engines, default=engines[0], help="the SQL engine measured")
    if rows is not None:
        parser.add_argument("--rows", type=int, default=rows, help=f"rows of the large job (default {rows:,})")
    if replay_events is not None:
        parser.add_argument(
            "--replay-events",
            type=int,
            default=replay_events,
            help=f"events in the replayed log (default {replay_events:,})",
        )
    return parser.parse_args()


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def figure(values: list[float], digits: int = 1) -> dict[str, Any]:
    """The K values of one figure and their median."""
    return {"values": [round(v, digits) for v in values], "median": round(statistics.median(values), digits)}


def ratio(numerators: list[float], denominators: list[float], digits: int = 3) -> dict[str, Any]:
    """Per-repeat ratios (each repeat measured both sides back to back) and their median."""
    return figure([n / d for n, d in zip(numerators, denominators, strict=True)], digits)


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def code_under_test() -> dict[str, Any]:
    """Which jobledger was measured: its directory, git commit and whether the work tree had changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(CODE_ROOT), *args], capture_output=True, text=True, check=False)
        return done.stdout

    # Porcelain lines are "XY path": the status columns may be spaces, so the output is not stripped.
    changed = [line[3:] for line in git("status", "--porcelain").splitlines() if line.strip()]
    return {
        "path": str(CODE_ROOT),
        "commit": git("rev-parse", "--short", "HEAD").strip() or None,
        "uncommitted_product_changes": [p for p in changed if not p.startswith(("benchmarks/", "tests/"))],
    }


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result, indent=2))


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of spawned Python processes: the repo and this folder importable."""
    path = os.pathsep.join([str(CODE_ROOT), str(BENCH_DIR), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path, **extra}


def check_children_import_code_under_test(env: dict[str, str], cwd: Path) -> None:
    """Fail early if processes spawned with ``env`` in ``cwd`` would import another jobledger."""
    probe = "import queue_core, workers, scheduler; print(queue_core.__file__, workers.__file__, scheduler.__file__)"
    done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=cwd, capture_output=True, text=True, check=True)
    for path in done.stdout.split():
        if not Path(path).resolve().is_relative_to(CODE_ROOT):
            raise RuntimeError(f"spawned processes would import {path}, not the code under test in {CODE_ROOT}")


def _stat(pid: int | str) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name: [0] state, [1] ppid, [19] start time."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def _started_at(pid: int) -> str | None:
    try:
        return _stat(pid)[19]
    except (OSError, IndexError):
        return None


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (RQ work-horses and job children leave the worker's group)."""
    table: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                table.setdefault(int(_stat(entry)[1]), []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    found, todo = [], [pid]
    while todo:
        for child in table.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal(tree: dict[int, str | None], sig: int) -> None:
    """Signal each process still the one recorded (same pid and start time: never a reused pid)."""
    for pid, started in tree.items():
        if started is not None and _started_at(pid) == started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


class Processes:
    """Processes a benchmark spawned; ``stop`` ends each with its whole tree of descendants."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, command: list[str], name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start ``command`` in its own session, in the log directory: ``python -m`` puts its working
        directory first on sys.path, and a checkout there would shadow the code under test."""
        with open(self.log_dir / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(
                command,
                cwd=self.log_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}\n{self.log_tails()}")

    def log_tails(self, lines: int = 15) -> str:
        """The end of every process's log (the logs go with the temporary directory)."""
        tails = []
        for path in sorted(self.log_dir.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(tails)

    def stop(self) -> None:
        """SIGTERM every process tree, SIGKILL what is left after a grace period."""
        alive = [proc.pid for proc in self.procs if proc.poll() is None]
        tree = {pid: _started_at(pid) for root in alive for pid in (root, *descendants(root))}
        _signal(tree, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.05, deadline - time.monotonic()))
        _signal(tree, signal.SIGKILL)
        for proc in self.procs:
            proc.wait()
        self.procs.clear()


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP raise, so every ``finally`` cleanup runs.

    SIGINT gets a handler too: a benchmark started in the background of a script inherits it ignored.
    """

    def handler(signum: int, _frame: object) -> None:
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)

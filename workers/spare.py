"""A sandbox started ahead of the next attempt, so that the attempt does not wait for bubblewrap to set it up.

Setting up a sandbox (namespaces, mounts, the switch to the job user) takes bubblewrap several
milliseconds, a good part of a short job's submit-to-end time; a SQL attempt also starts Python and
imports DuckDB (0.1-0.4 s). After each attempt the worker starts the next one's sandbox, shaped like
the attempt just ended (a SQL one shows the same depot folders), with an empty attempt folder of its
own and no job code, no secret, nothing of any run in it: around a waiting shell, or for SQL the
runner waiting with DuckDB imported. When the next attempt comes, the worker writes it (working
directory, environment, argv) to the waiting process's stdin, which becomes the attempt. Each spare
serves one attempt only, so no two attempts ever share a namespace, a ``/tmp``, a process or a
runner's memory. An attempt the spare does not fit starts its own sandbox as it comes.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from queue_core.specs.builtins import RUNNER_TYPES
from workers.leftovers import note_session
from workers.sandbox import Sandbox, job_environment

__all__ = ["Spare", "Spares"]

FOLDER_PREFIX = "attempt-"
# Reads one NUL-terminated command from stdin and runs it in place of itself (bash is in every image).
WAITER = ["bash", "-c", 'IFS= read -r -d "" command; eval "$command"']
SQL_RUNNER = Path(__file__).with_name("sql") / "runner.py"
SQL_WAITER = [sys.executable, str(SQL_RUNNER), "--wait"]  # run by path, as the worker runs it (see attempt)


@dataclass(frozen=True)
class Shape:
    """What a sandbox is set up for: a SQL runner or anything else, its network, the depot folders it shows."""

    sql: bool = False
    network: str | None = None
    binds: tuple[Path, ...] = ()


@dataclass
class Spare:
    """A sandbox around a waiting shell, with its attempt folder."""

    folder: Path
    process: subprocess.Popen[bytes]
    shape: Shape = field(default_factory=Shape)

    def start(self, argv: list[str], cwd: Path, env: dict[str, str]) -> Any:
        """Hand the waiting process the attempt: it becomes ``argv`` in ``cwd`` with exactly ``env`` (a SQL
        spare: the runner with ``argv``'s arguments); the process, or None if the spare is gone."""
        if self.process.poll() is not None or self.process.stdin is None:
            return None
        if self.shape.sql:
            request = json.dumps({"cwd": str(cwd), "env": env, "argv": argv[2:]}).encode()  # python, runner.py
        else:
            assignments = [f"{name}={value}" for name, value in env.items()]
            line = f"cd {shlex.quote(str(cwd))} && exec env -i {shlex.join(assignments)} {shlex.join(argv)} </dev/null"
            request = line.encode() + b"\0"
        try:
            self.process.stdin.write(request)
            self.process.stdin.close()
        except OSError:
            return None
        return self.process

    def discard(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()


class Spares:
    """The one spare sandbox a worker keeps ready: taken by an attempt, started again after it (``refill`` now,
    or ``refill_soon`` on the spares' own thread, while the worker goes on with the attempt)."""

    def __init__(self, sandbox: Sandbox, runs: Path) -> None:
        self.sandbox = sandbox
        self.runs = runs
        self._ready: Spare | None = None
        self._next = Shape()
        self._changed = threading.Condition()
        self._filling = False  # a refill asked of the spares' thread and not over yet
        self._thread: threading.Thread | None = None
        self.lender: Any = None  # a chunk's shared sandbox (``workers.chunk_sandbox``), asked first while set

    def refill_soon(self) -> None:
        """Have the spares' thread start the next attempt's sandbox; returns at once. ``take`` waits for it."""
        if not self.sandbox.enabled:
            return
        with self._changed:
            if self._ready is not None or self._filling:
                return
            self._filling = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._fill, name="spare-sandbox", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def _fill(self) -> None:
        while True:
            with self._changed:
                while not self._filling:
                    self._changed.wait()
            try:
                self.refill()
            except Exception:
                pass
            finally:
                with self._changed:
                    self._filling = False
                    self._changed.notify_all()

    def take(self, job: dict[str, Any]) -> Spare | None:
        """The ready spare if it may fit ``job`` (its kind and network; a SQL job's depot folders are
        known only later: ``fits``), else None; the next spare is shaped like this job. While a chunk lends its
        sandbox, a place in it, if the job may run there."""
        seat = self.lender.seat(job) if self.lender is not None else None
        if seat is not None:
            return seat
        with self._changed:
            while self._filling:  # being set up: a few milliseconds at most
                self._changed.wait()
        spare, self._ready = self._ready, None
        sql, network = job["type"] in RUNNER_TYPES, job.get("network")
        self._next = Shape(sql, network, self._next.binds if sql else ())
        if spare is None:
            return None
        if (spare.shape.sql, spare.shape.network) != (sql, network) or spare.process.poll() is not None:
            self._drop(spare)
            return None
        return spare

    def fits(self, spare: Spare | None, binds: tuple[Path, ...]) -> bool:
        """Whether ``spare`` shows exactly ``binds`` (one that does not is discarded); the next spare will."""
        self._next = Shape(self._next.sql, self._next.network, binds)
        if spare is None:
            return False
        if spare.shape.binds != binds:
            spare.discard()
            return False
        return True

    def refill(self) -> None:
        """Start the next attempt's sandbox, shaped like the last attempt; a failure to start leaves none."""
        if not self.sandbox.enabled or self._ready is not None:
            return
        shape = self._next
        self.runs.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=self.runs))
        try:
            for own in ("home", "tmp"):
                (folder / own).mkdir()
            self.sandbox.prepare(folder, [folder / "home", folder / "tmp"])
            process = subprocess.Popen(
                self.sandbox.wrap(SQL_WAITER if shape.sql else WAITER, folder, folder, shape.network, shape.binds),
                cwd=folder,
                env=job_environment({}, folder / "home", "/tmp"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
            return
        note_session(folder, process.pid)  # a worker killed meanwhile leaves it to the next one to clean up
        self._ready = Spare(folder, process, shape)

    def close(self) -> None:
        spare, self._ready = self._ready, None
        if spare is not None:
            self._drop(spare)

    @staticmethod
    def _drop(spare: Spare) -> None:
        spare.discard()
        shutil.rmtree(spare.folder, ignore_errors=True)

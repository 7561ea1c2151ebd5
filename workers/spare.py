"""A sandbox started ahead of the next attempt, so that the attempt does not wait for bubblewrap to set it up.

Setting up a sandbox (namespaces, mounts, the switch to the job user) takes bubblewrap several
milliseconds, a good part of a short job's submit-to-end time. After each attempt the worker starts
the next one's sandbox around a waiting shell, with an empty attempt folder of its own: no job code,
no secret, nothing of any run in it. When the next attempt comes, the worker writes its command
line (working directory, environment, argv: quoted) to that shell's stdin, and the shell replaces
itself with the job. Each spare serves one attempt only, so no two attempts ever share a namespace,
a ``/tmp`` or a process. Jobs it does not fit (``network: none``, a SQL job's depot folders) start
their sandbox as they come.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.leftovers import note_session
from workers.sandbox import Sandbox, job_environment

__all__ = ["Spare", "Spares"]

FOLDER_PREFIX = "attempt-"
# Reads one NUL-terminated command from stdin and runs it in place of itself (bash is in every image).
WAITER = ["bash", "-c", 'IFS= read -r -d "" command; eval "$command"']


@dataclass
class Spare:
    """A sandbox around a waiting shell, with its attempt folder."""

    folder: Path
    process: subprocess.Popen[bytes]

    def start(self, argv: list[str], cwd: Path, env: dict[str, str]) -> Any:
        """Hand the shell the job: it becomes ``argv`` in ``cwd`` with exactly ``env``; the process, or None."""
        if self.process.poll() is not None or self.process.stdin is None:
            return None
        assignments = [f"{name}={value}" for name, value in env.items()]
        line = f"cd {shlex.quote(str(cwd))} && exec env -i {shlex.join(assignments)} {shlex.join(argv)} </dev/null"
        try:
            self.process.stdin.write(line.encode() + b"\0")
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
    """The one spare sandbox a worker keeps ready: taken by an attempt, started again after it."""

    def __init__(self, sandbox: Sandbox, runs: Path) -> None:
        self.sandbox = sandbox
        self.runs = runs
        self._ready: Spare | None = None

    def take(self, job: dict[str, Any]) -> Spare | None:
        """The ready spare if ``job`` fits it (default network, no depot folders to show), else None."""
        spare, self._ready = self._ready, None
        if spare is None:
            return None
        if job.get("network") is not None or job["type"] == "SQL" or spare.process.poll() is not None:
            self._drop(spare)
            return None
        return spare

    def refill(self) -> None:
        """Start the next attempt's sandbox, if there is none ready; a failure to start leaves none."""
        if not self.sandbox.enabled or self._ready is not None:
            return
        self.runs.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=self.runs))
        try:
            for own in ("home", "tmp"):
                (folder / own).mkdir()
            self.sandbox.prepare(folder, [folder / "home", folder / "tmp"])
            process = subprocess.Popen(
                self.sandbox.wrap(WAITER, folder, folder),
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
        self._ready = Spare(folder, process)

    def close(self) -> None:
        spare, self._ready = self._ready, None
        if spare is not None:
            self._drop(spare)

    @staticmethod
    def _drop(spare: Spare) -> None:
        spare.discard()
        shutil.rmtree(spare.folder, ignore_errors=True)

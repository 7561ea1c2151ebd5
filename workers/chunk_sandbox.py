"""One sandbox for the consecutive children of one array chunk, each child still in a folder and process group of
its own.

Setting up and tearing down a bubblewrap sandbox (namespaces, mounts) costs the kernel tens of milliseconds
on a busy machine: more than a short child itself. The children of one chunk are runs of the same array:
the same definition, code, secrets and submitter, delivered one after the other by one worker. They share
one sandbox: a launcher waits in it and starts each child on the worker's word, in the child's own attempt
folder (inside the chunk's folder, the only writable place), with exactly its environment, in a process group
of its own (the launcher runs with job control), its output through FIFOs of its own folder. After each child
the launcher kills every process left in the sandbox and empties its ``/tmp``, then reports the child's exit
status. Between the children of one
chunk this is weaker isolation than a sandbox each (a child running as the job user could tamper with the
launcher, and so with a later sibling, or see its folder); between different runs nothing changes: no
other array, run or job ever shares the sandbox. A SQL, EXTERNAL_APP or data-sync child, or any child once the
launcher is gone, gets a sandbox of its own as usual.
"""

from __future__ import annotations

import os
import select
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from workers.leftovers import note_session
from workers.sandbox import Sandbox, job_environment
from workers.spare import Shape

__all__ = ["ChunkSandbox", "Seat"]

SHARED_TYPES = ("SHELL", "PYTHON")
FOLDER_PREFIX = "chunk-"
STARTED, ENDED = "started", "ended"
REPLY_TIMEOUT_SECONDS = 10.0  # for the launcher to say it started a child: it does at once
LAUNCHER_PATIENCE_SECONDS = 5.0  # for it to report a child that has ended
SIGNAL_EXIT_BASE = 128
MAX_SIGNAL = 64
# With job control (set -m), so that each child leads a process group of its own (signalled as one on a timeout
# or a cancel) without an exec of setsid.
# Runs each NUL-terminated command in a subshell of its own, reports its pid, waits for it, kills everything
# left in the sandbox (kill -1: all but the launcher and the sandbox's init), empties its /tmp (never what is
# bound beneath it: the chunk's folder may be), reports the status.
# /tmp is looked at with a glob (no process) and only emptied, by find, when a child left something there.
LAUNCHER = [
    "bash",
    "-c",
    "set -m; shopt -s dotglob nullglob; empty=(/tmp/*); "
    'while IFS= read -r -d "" command; do ( eval "$command" ) & job=$!; echo "started $job"; '
    'wait "$job"; code=$?; kill -KILL -1 2>/dev/null; wait; now=(/tmp/*); '
    '[ "${now[*]}" = "${empty[*]}" ] || find /tmp -xdev -mindepth 1 -delete 2>/dev/null; '
    'echo "ended $code"; done',
]


class _Child:
    """The Popen-like handle ``run_child`` supervises: a child the launcher started, its FIFOs, its status."""

    def __init__(self, pid: int, stdout: IO[bytes], stderr: IO[bytes], launcher: ChunkSandbox) -> None:
        self.pid, self.stdout, self.stderr = pid, stdout, stderr
        self.launcher = launcher
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self._ended(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if timeout is not None:
            if self.returncode is None and not self._ended(timeout):
                raise subprocess.TimeoutExpired("a chunk's child", timeout)
        else:
            # Until the child ends, however long; the launcher silent for long after it ended is not waited for
            # (a child could stop it): the sandbox is killed, and with it what is left in it.
            gone_since: float | None = None
            while self.returncode is None and not self._ended(1.0):
                if _running(self.pid):
                    gone_since = None
                    continue
                gone_since = gone_since or time.monotonic()
                if time.monotonic() - gone_since > LAUNCHER_PATIENCE_SECONDS:
                    self.launcher.abandon()
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        try:
            os.killpg(self.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass

    def _ended(self, timeout: float | None) -> bool:
        reply = self.launcher.reply(timeout)
        if reply is None:
            return False
        word, _, value = reply.partition(" ")
        code = int(value) if word == ENDED and value.isdigit() else SIGNAL_EXIT_BASE + 9  # the launcher is gone
        # As bubblewrap reports it: killed by signal N is 128+N (``run_child`` maps a negative code back).
        self.returncode = (
            -(code - SIGNAL_EXIT_BASE) if SIGNAL_EXIT_BASE < code <= SIGNAL_EXIT_BASE + MAX_SIGNAL else code
        )
        return True


class Seat:
    """One child's place in the chunk's sandbox: its attempt folder (what ``Spares.take`` hands an attempt)."""

    def __init__(self, folder: Path, chunk: ChunkSandbox) -> None:
        self.folder, self.chunk = folder, chunk
        self.shape = chunk.shape
        self.process = chunk.process
        self._pipes: list[IO[bytes]] = []
        self._go: int | None = None

    def start(self, argv: list[str], cwd: Path, env: dict[str, str]) -> Any:
        """Have the launcher start ``argv`` in ``cwd`` with exactly ``env``; the handle, or None if it is gone.

        The child waits for a word on its ``.go`` FIFO before anything of the job runs: only once its pid is
        known here is the word given. A child whose pid cannot be had never starts (the sandbox is closed, and
        the attempt sets up a sandbox of its own): no job runs twice, nor unsupervised.
        """
        out, err, go = self.folder / ".stdout", self.folder / ".stderr", self.folder / ".go"
        try:
            for fifo in (out, err, go):
                os.mkfifo(fifo, 0o600)
            self.chunk.sandbox.prepare(self.folder, [out, err, go])
            self._pipes = [open(fifo, "rb", buffering=0, opener=_nonblocking) for fifo in (out, err)]  # noqa: SIM115
            self._go = os.open(go, os.O_RDWR)  # read-write: never waits for the child's end to open
        except OSError:
            return None
        assignments = [f"{name}={value}" for name, value in env.items()]
        line = (
            f"read -r _ <{shlex.quote(str(go))} && cd {shlex.quote(str(cwd))} && exec env -i"
            f" {shlex.join(assignments)} {shlex.join(argv)} </dev/null >{shlex.quote(str(out))}"
            f" 2>{shlex.quote(str(err))}"
        )
        pid = self.chunk.start(line)
        if pid is None:
            return None
        os.write(self._go, b"go\n")
        return _Child(pid, self._pipes[0], self._pipes[1], self.chunk)

    def discard(self) -> None:
        for pipe in self._pipes:
            if not pipe.closed:
                pipe.close()
        if self._go is not None:
            os.close(self._go)
            self._go = None


def _nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK)


class ChunkSandbox:
    """The launcher's sandbox for one chunk, set up at its first child and closed with the chunk."""

    def __init__(self, sandbox: Sandbox, runs: Path, network: str | None) -> None:
        self.sandbox = sandbox
        self.shape = Shape(False, network, ())
        runs.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=runs))
        self.sandbox.prepare(self.folder, [])
        self.process = subprocess.Popen(
            sandbox.wrap(LAUNCHER, self.folder, self.folder, network),
            cwd=self.folder,
            env=job_environment({}, self.folder, "/tmp"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        note_session(self.folder, self.process.pid)  # a worker killed meanwhile: the next one kills the sandbox
        self._buffer = b""
        self._launcher: int | None = None  # the launcher's host pid, once known
        self.broken = False

    def fits(self, job: dict[str, Any]) -> bool:
        return job["type"] in SHARED_TYPES and job.get("network") == self.shape.network and not self.broken

    def seat(self, job: dict[str, Any]) -> Seat | None:
        """A folder of its own for a child that may run here, else None."""
        if not self.fits(job) or self.process.poll() is not None:
            return None
        folder = Path(tempfile.mkdtemp(dir=self.folder))
        for own in ("home", "tmp"):
            (folder / own).mkdir()
        return Seat(folder, self)

    def start(self, line: str) -> int | None:
        """Hand the launcher one command; the host pid of the child it started, or None (the launcher is gone)."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(line.encode() + b"\0")
            self.process.stdin.flush()
        except OSError:
            self.broken = True
            return None
        reply = self.reply(REPLY_TIMEOUT_SECONDS)
        word, _, value = (reply or "").partition(" ")
        pid = self._host_pid(int(value)) if word == STARTED and value.isdigit() else None
        if pid is None:  # the launcher is gone or answers nonsense: the sandbox goes, with the child it holds
            self.abandon()
        return pid

    def _host_pid(self, ns_pid: int) -> int | None:
        """The host pid of the child the launcher started as ``ns_pid``: among the launcher's children (its host
        pid learnt at the first child), else looked for in the whole sandbox."""
        pid = _host_pid(self._launcher, ns_pid) if self._launcher is not None else None
        if pid is None:
            pid = _host_pid(self.process.pid, ns_pid)
            self._launcher = _parent(pid) if pid is not None else None
        return pid

    def abandon(self) -> None:
        """Kill the sandbox (everything in it dies with it); no later child of the chunk runs here."""
        self.broken = True
        if self.process.poll() is None:
            self.process.kill()

    def reply(self, timeout: float | None) -> str | None:
        """The launcher's next line, waiting ``timeout`` seconds at most (None: for ever); "" when it is gone."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                return None
            data = os.read(fd, 4096)
            if not data:
                self.broken = True
                return ""
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _status(pid: int, field: str) -> list[str]:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return []
    return next((line.split()[1:] for line in status.splitlines() if line.startswith(field)), [])


def _ns_pid(pid: int) -> str | None:
    """The pid of ``pid`` in its innermost pid namespace (None if it is gone)."""
    found = _status(pid, "NSpid:")
    return found[-1] if found else None


def _parent(pid: int) -> int | None:
    found = _status(pid, "PPid:")
    return int(found[0]) if found else None


def _host_pid(root: int, ns_pid: int) -> int | None:
    """The pid, as this machine sees it, of the process under ``root`` whose pid in its sandbox is ``ns_pid``."""
    todo = _children(root)
    while todo:
        pid = todo.pop()
        if _ns_pid(pid) == str(ns_pid):
            return pid
        todo.extend(_children(pid))
    return None

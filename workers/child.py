"""Running a job as a child in its own process group: output streamed, deadline, stop and lease checks."""

from __future__ import annotations

import ctypes
import os
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from queue_core.timefmt import utc_now

__all__ = ["PDEATHSIG_PREFIX", "ChildResult", "Spawn", "Supervision", "run_child"]

PR_SET_PDEATHSIG = 1
_SETPRIV_PATH = shutil.which("setpriv")
_SETPRIV = [_SETPRIV_PATH, "--pdeathsig", "KILL", "--"] if _SETPRIV_PATH else []
PDEATHSIG_PREFIX = _SETPRIV  # what runs a command so that it dies with this process (empty: no setpriv)
FLUSH_SECONDS = 0.1
DRAIN_SECONDS = 0.2
READ_CHUNK = 65536
SIGNAL_EXIT_BASE = 128
MAX_SIGNAL = 64

OutputSink = Callable[[list[tuple[str, str, str]]], None]
# Starts the child some other way (a warm, forked runner): a Popen-like object (pid, stdout, stderr,
# poll, wait, kill) with the child leading its own process group, or None to start it with Popen.
Spawn = Callable[[list[str], Path, dict[str, str]], Any]


@dataclass(frozen=True)
class ChildResult:
    """How the child ended: its exit code, or that it timed out (SIGKILLed if it ignored SIGTERM) or was stopped."""

    exit_code: int | None
    timed_out: bool = False
    stopped: bool = False
    signal: int | None = None


@dataclass(frozen=True)
class Supervision:
    """What the worker checks while the child runs, and how often."""

    timeout_seconds: float
    kill_grace_seconds: float
    should_stop: Callable[[], bool]
    stop_poll_seconds: float
    renew: Callable[[], None]
    renew_seconds: float
    started: Callable[[int], None] = lambda pid: None  # told the job's pid (its session) once it runs


def _die_with_parent() -> None:
    # If the worker is killed (even with SIGKILL), the kernel kills the job's main process too.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # pragma: no cover - not Linux
        pass


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class _Lines:
    """Splits the bytes of one pipe into lines."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.partial = b""

    def feed(self, data: bytes, out: list[tuple[str, str, str]]) -> None:
        chunks = (self.partial + data).split(b"\n")
        self.partial = chunks.pop()
        stamp = utc_now()
        out.extend((stamp, self.name, c.decode("utf-8", "replace").rstrip("\r")) for c in chunks)

    def close(self, out: list[tuple[str, str, str]]) -> None:
        if self.partial:
            out.append((utc_now(), self.name, self.partial.decode("utf-8", "replace")))
            self.partial = b""


def _popen(argv: list[str], cwd: Path, env: dict[str, str], sandboxed: bool) -> subprocess.Popen[bytes]:
    # ``setpriv --pdeathsig KILL`` sets the death signal and execs the job: no preexec_fn, so
    # CPython can vfork instead of copying the worker's page tables with fork (2-5 ms per attempt).
    # bubblewrap's --die-with-parent does the same for itself: one exec fewer.
    wrapper = _SETPRIV if _SETPRIV and not sandboxed else None
    return subprocess.Popen(
        [*wrapper, *argv] if wrapper else argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own session and process group: the attempt's processes, all killable
        preexec_fn=None if wrapper else _die_with_parent,
    )


def run_child(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    sink: OutputSink,
    supervision: Supervision,
    spawn: Spawn | None = None,
    sandboxed: bool = False,
) -> ChildResult:
    """Run ``argv`` (never through a shell) and supervise it until it ends, times out or is stopped.

    ``sandboxed``: ``argv`` is bubblewrap around the job. It dies with this process by itself, reports its
    job killed by signal N as exit code 128+N, and is spared the SIGTERM meant for the job (it would die
    of it at once, and the job with it, before its grace period).
    """
    proc = spawn(argv, cwd, env) if spawn is not None else None
    if proc is None:
        proc = _popen(argv, cwd, env, sandboxed)
    pgid = proc.pid
    supervision.started(pgid)
    selector = selectors.DefaultSelector()
    assert proc.stdout is not None and proc.stderr is not None
    splitters = {proc.stdout.fileno(): _Lines("stdout"), proc.stderr.fileno(): _Lines("stderr")}
    for pipe in (proc.stdout, proc.stderr):
        os.set_blocking(pipe.fileno(), False)
        selector.register(pipe, selectors.EVENT_READ)
    started = time.monotonic()
    deadline = started + supervision.timeout_seconds
    next_stop_check = started + supervision.stop_poll_seconds
    next_renew = started + supervision.renew_seconds
    next_flush = started + FLUSH_SECONDS
    pending: list[tuple[str, str, str]] = []
    outcome: ChildResult | None = None
    exited_at: float | None = None
    try:
        while selector.get_map():
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > DRAIN_SECONDS:
                break  # the main process ended; pipes held open by leftovers are not waited for
            if outcome is None and exited_at is None:
                if now >= deadline:
                    hard = _terminate(proc, pgid, supervision.kill_grace_seconds, sandboxed)
                    outcome = ChildResult(exit_code=None, timed_out=True, signal=signal.SIGKILL if hard else None)
                elif now >= next_stop_check:
                    next_stop_check = now + supervision.stop_poll_seconds
                    if supervision.should_stop():
                        outcome = ChildResult(exit_code=None, stopped=True)
                        _terminate(proc, pgid, supervision.kill_grace_seconds, sandboxed)
            if now >= next_renew:
                next_renew = now + supervision.renew_seconds
                supervision.renew()
            # The flush time counts only while lines wait for it: else, once past, it would make this loop spin
            # (select with no timeout) and take a core from the job for as long as it ran quietly.
            wait = min(next_stop_check, next_renew, deadline, next_flush if pending else deadline) - now
            wait = max(0.0, min(wait, 0.05 if exited_at is not None else 0.5))
            for key, _ in selector.select(timeout=wait):
                data = os.read(key.fd, READ_CHUNK)
                if data:
                    splitters[key.fd].feed(data, pending)
                else:
                    selector.unregister(key.fileobj)
            if pending and (time.monotonic() >= next_flush or len(pending) > 500):
                sink(pending)
                pending = []
                next_flush = time.monotonic() + FLUSH_SECONDS
        for lines in splitters.values():
            lines.close(pending)
        if pending:
            sink(pending)
        returncode = proc.wait()
    finally:
        selector.close()
        proc.stdout.close()
        proc.stderr.close()
        # Nothing of the attempt outlives it: stragglers in its process group are killed.
        _kill_group(pgid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if outcome is not None:
        return outcome
    if returncode < 0:
        return ChildResult(exit_code=128 - returncode, signal=-returncode)
    if sandboxed and SIGNAL_EXIT_BASE < returncode <= SIGNAL_EXIT_BASE + MAX_SIGNAL:
        return ChildResult(exit_code=returncode, signal=returncode - SIGNAL_EXIT_BASE)
    return ChildResult(exit_code=returncode)


def _group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # it exited while we looked
        if int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def _terminate(proc: Any, pgid: int, grace: float, spare_leader: bool = False) -> bool:
    """SIGTERM to the whole group (but its leader if spared), SIGKILL to all after the grace period; True when
    the job outlived its SIGTERM."""
    if spare_leader:
        for pid in _group_members(pgid):
            if pid != pgid:
                try:
                    os.kill(pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
    else:
        _kill_group(pgid, signal.SIGTERM)
    hard = False
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        hard = True
    _kill_group(pgid, signal.SIGKILL)
    return hard

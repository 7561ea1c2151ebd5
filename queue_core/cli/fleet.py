"""Starting and stopping the processes of a node: dispatcher and plain ``rq worker`` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from queue_core.errors import InvalidInput

__all__ = ["RQ_SETTINGS", "Fleet", "fleet_command"]

WORKER_CLASS = "workers.worker.AttemptWorker"
SERIALIZER = "workers.serializer.JobSerializer"
RQ_SETTINGS = "workers.rq_settings"  # REDIS_URL for RQ from REDIS_URL + REDIS_PASSWORD_FILE
COLD_STOP_SECONDS = 5.0  # how long a cold-stopped worker has to record its attempt's end and exit
RQ_SIGNAL_DEBOUNCE_SECONDS = 1.1


def fleet_command(url: str | None, cluster: str, burst: bool = False, program: str = "rq") -> list[str]:
    """The plain ``rq worker`` line that joins a machine to a cluster's fleet.

    With no ``url`` the worker reads its store from ``workers.rq_settings`` (``REDIS_URL``, ``REDIS_USERNAME``
    and the password in ``REDIS_PASSWORD_FILE``), so no credential is on its command line. A ``url`` carrying a
    password is refused: anyone on the machine can read a command line (``ps``, ``/proc/PID/cmdline``).
    """
    if url is not None and urlsplit(url).password is not None:
        raise InvalidInput(
            "a password in the worker's URL would show in the process list: "
            "give the worker REDIS_URL in its environment (or the password in REDIS_PASSWORD_FILE)",
            "fleet URL",
        )
    where = ["-u", url] if url is not None else ["-c", RQ_SETTINGS]
    command = [program, "worker", *where, "-w", WORKER_CLASS, "--serializer", SERIALIZER]
    if burst:
        command.append("--burst")
    return [*command, cluster]


def _python_module(module: str) -> list[str]:
    # -P: the caller's working directory is not put on sys.path, so a process started from inside
    # some other checkout still runs the installed jobledger, not that checkout's modules.
    return [sys.executable, "-P", "-m", module]


@dataclass
class _Proc:
    role: str
    command: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0


@dataclass
class Fleet:
    """A supervised set of processes; each gets its own session so Ctrl-C reaches only the supervisor."""

    url: str | None  # None: workers read REDIS_URL (and REDIS_PASSWORD_FILE) from the environment, off argv
    log_dir: Path
    env: dict[str, str]
    procs: list[_Proc] = field(default_factory=list)

    def _spawn(self, proc: _Proc) -> None:
        self.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Logs are the home's user's alone (0600 in a 0700 folder): a job's output may say more than it should.
        with os.fdopen(os.open(proc.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as out:
            proc.process = subprocess.Popen(
                proc.command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )

    def start_dispatcher(self, timer: bool = False) -> None:
        """A dispatcher; with ``timer``, one that fires schedules too (what ``jobledger scheduler`` runs)."""
        index = sum(1 for p in self.procs if p.role == "dispatcher")
        command = [*_python_module("scheduler"), "--timer"] if timer else _python_module("scheduler")
        proc = _Proc("dispatcher", command, self.log_dir / f"dispatcher-{index}.log")
        self._spawn(proc)
        self.procs.append(proc)

    def workers_of(self, cluster: str) -> int:
        return sum(1 for p in self.procs if p.role == f"worker:{cluster}")

    def ensure_workers(self, cluster: str, count: int) -> int:
        """Start workers for ``cluster`` until it has ``count``; returns how many were started."""
        started = 0
        while self.workers_of(cluster) < count:
            index = self.workers_of(cluster)
            command = [*_python_module("rq.cli"), *fleet_command(self.url, cluster)[1:]]
            proc = _Proc(f"worker:{cluster}", command, self.log_dir / f"worker-{cluster}-{index}.log")
            self._spawn(proc)
            self.procs.append(proc)
            started += 1
        return started

    def restart_dead(self) -> list[str]:
        """Start again any process that exited; returns their roles."""
        restarted = []
        for proc in self.procs:
            if proc.process is not None and proc.process.poll() is not None:
                proc.restarts += 1
                self._spawn(proc)
                restarted.append(proc.role)
        return restarted

    def pids(self, role_prefix: str = "") -> list[int]:
        return [p.process.pid for p in self.procs if p.process and p.role.startswith(role_prefix)]

    def stop(self, grace: float) -> None:
        """Warm stop (SIGTERM: a worker finishes its attempt); after ``grace``, a cold stop (a second SIGTERM:
        the worker kills its attempt's processes and records ``WorkerLost``, which the retry strategy
        retries); SIGKILL for whatever is left ``COLD_STOP_SECONDS`` later.

        So an attempt cut short leaves no process behind and no run ``RUNNING`` with nobody to end it.
        """
        self._signal_all(signal.SIGTERM)
        # RQ ignores a second signal within a second of the first (a pool may forward one twice).
        self._wait_all(time.monotonic() + max(grace, RQ_SIGNAL_DEBOUNCE_SECONDS))
        self._signal_all(signal.SIGTERM)
        self._wait_all(time.monotonic() + COLD_STOP_SECONDS)
        for proc in self.procs:
            if proc.process is not None and proc.process.poll() is None:
                try:
                    os.killpg(proc.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.process.wait()

    def _signal_all(self, sig: int) -> None:
        for proc in self.procs:
            if proc.process and proc.process.poll() is None:
                try:
                    proc.process.send_signal(sig)
                except ProcessLookupError:
                    pass

    def _wait_all(self, deadline: float) -> None:
        for proc in self.procs:
            if proc.process is None:
                continue
            try:
                proc.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass

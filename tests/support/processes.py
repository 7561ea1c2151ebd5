"""Real worker and dispatcher processes for tests, waiting for conditions instead of sleeping, and /proc scans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple, TypeVar
from urllib.parse import urlsplit

from queue_core.cli.fleet import fleet_command

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, what: str = "") -> T:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(interval)


class Fleet(NamedTuple):
    """What ``Procs.fleet`` started."""

    dispatchers: list[subprocess.Popen[bytes]]
    workers: list[subprocess.Popen[bytes]]


class Procs:
    """Spawns processes in their own sessions and kills them all at the end of a test."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, command: list[str], name: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """``command`` in its own session, output in ``log_dir/NAME-N.log``; ``env`` instead of ``self.env``."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{name}-{len(self.procs)}.log", "ab") as out:
            proc = subprocess.Popen(
                command, env=self.env if env is None else env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.procs.append(proc)
        return proc

    def worker(self, url: str, cluster: str = "default", burst: bool = False) -> subprocess.Popen[bytes]:
        """A real ``rq worker`` with jobledger's worker class and serializer (the fleet command).

        A URL with a password goes to the worker in its environment, as the fleet command requires.
        """
        if urlsplit(url).password is None:
            return self.spawn(
                [sys.executable, "-m", "rq.cli", *fleet_command(url, cluster, burst)[1:]], f"worker-{cluster}"
            )
        command = [sys.executable, "-m", "rq.cli", *fleet_command(None, cluster, burst)[1:]]
        return self.spawn(command, f"worker-{cluster}", {**self.env, "REDIS_URL": url})

    def dispatcher(self, timer: bool = False, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """``python -m scheduler``; with ``timer`` it fires schedules' ticks too (``jobledger scheduler``)."""
        if timer:
            return self.spawn([sys.executable, "-m", "scheduler", "--timer"], "scheduler", env)
        return self.spawn([sys.executable, "-m", "scheduler"], "dispatcher", env)

    def fleet(
        self, url: str, workers: int = 1, dispatchers: int = 1, cluster: str = "default", timer: bool = False
    ) -> Fleet:
        """Dispatchers, then workers on ``cluster``: what an end-to-end test runs its jobs on.

        The ``fleet`` fixture starts one before the test; a test that starts its fleet part-way calls this.
        """
        started = [self.dispatcher(timer=timer) for _ in range(dispatchers)]
        return Fleet(started, [self.worker(url, cluster) for _ in range(workers)])

    def cli(self, *args: str, timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "queue_core", *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait()
        self.procs.clear()


def process_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (parent pid, process group, session) of every live process, from ``/proc/*/stat``."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it exited while we looked
        if fields[0] != "Z":
            table[int(stat.parent.name)] = (int(fields[1]), int(fields[2]), int(fields[3]))
    return table


def children_of(pid: int) -> list[int]:
    """The live child processes of ``pid``."""
    return [child for child, (parent, _, _) in process_table().items() if parent == pid]


@contextmanager
def cmdlines_seen(*needles: bytes) -> Iterator[list[bytes]]:
    """Every command line visible in ``/proc`` that holds one of ``needles``, sampled every 5 ms while the
    ``with`` block runs: what ``ps`` would have shown anyone on the machine."""
    seen: list[bytes] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        cmdline = (entry / "cmdline").read_bytes()
                    except OSError:
                        continue
                    if any(needle in cmdline for needle in needles):
                        seen.append(cmdline)
            done.wait(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        yield seen
    finally:
        done.set()
        sampler.join()


def pid_alive(pid: int) -> bool:
    """True while a process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@contextmanager
def jobledger_up(env: dict[str, str], grace: float, out: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """``jobledger up --workers 1`` as a user starts it, output in ``out``; killed if the test leaves it running."""
    with open(out or os.devnull, "w") as stdout:
        up = subprocess.Popen(
            [sys.executable, "-m", "queue_core", "up", "--workers", "1", "--grace", str(grace)],
            env=env, stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        yield up
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()

"""What killed workers leave behind on a machine: their attempts' scratch folders and the jobs' processes.

A job runs as the leader of its own session. If its worker is killed, the kernel kills that leader with
it (``PR_SET_PDEATHSIG``), but not what the job started, which would run on beside the attempt's retry.
So each attempt notes in its scratch folder which worker runs it and which session its job leads; a
worker starting on the machine kills the sessions of attempts whose worker is gone, and removes their
folders. A pid cannot be handed out again while a process group or session of that number exists, so a
session with members is still the job's; a live leader is checked by its start time.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

__all__ = ["SESSION_FILE", "kill_leftovers", "note_session"]

SESSION_FILE = ".jobledger-session"


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[19] if fields else None  # field 22 of stat: the process's start time, in clock ticks


def note_session(scratch: Path, session: int) -> None:
    """Note, in the attempt's scratch folder, that this worker runs a job leading ``session``."""
    (scratch / SESSION_FILE).write_text(f"{os.getpid()} {session} {_start_time(session) or '-'}\n")


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def _members(session: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat(int(stat.parent.name))
        if fields and fields[0] != "Z" and int(fields[3]) == session:
            members.append(int(stat.parent.name))
    return members


def kill_leftovers(runs: Path) -> list[int]:
    """Kill the sessions of attempts whose worker is dead, remove their scratch folders; the sessions killed."""
    killed: list[int] = []
    if not runs.is_dir():
        return killed
    for scratch in runs.iterdir():
        note = scratch / SESSION_FILE
        try:
            worker, session, started = note.read_text().split()
        except (OSError, ValueError):
            continue  # no job started there (yet), or not an attempt's folder
        if _alive(int(worker)):
            continue
        leader = int(session)
        if _alive(leader) and _start_time(leader) != started:
            continue  # that pid is another process now, and it leads no session of ours
        if _members(leader):
            try:
                os.killpg(leader, signal.SIGKILL)
                killed.append(leader)
            except (ProcessLookupError, PermissionError):
                pass
        shutil.rmtree(scratch, ignore_errors=True)
    return killed

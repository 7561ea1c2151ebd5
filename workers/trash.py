"""Removing ended attempts' folders on a thread of their own, off the path from one attempt to the next.

Removing even a small attempt folder (its ``home``, ``tmp``, the job's working copy) waits on the file
system: on a journaling disk under load, 10 ms and more of waiting for well under 1 ms of work, which an
array job's short children paid one after the other. The worker hands the folder over once its attempt has
ended (its outcome recorded, its processes gone) and goes on; a backlog past ``BACKLOG`` folders is removed
on the spot, and what is left at the worker's exit is removed then. A worker killed first leaves folders
behind, as it would have anyway: the next worker's start removes those (see ``workers.leftovers``).
"""

from __future__ import annotations

import atexit
import queue
import shutil
import threading
from pathlib import Path

__all__ = ["BACKLOG", "Trash"]

BACKLOG = 64  # folders waiting for removal at most; past it, the attempt removes its own


class Trash:
    """Folders to remove, removed one after the other on a daemon thread started with the first one."""

    def __init__(self, backlog: int = BACKLOG) -> None:
        self._folders: queue.Queue[Path] = queue.Queue()
        self._backlog = backlog
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def put(self, folder: Path) -> None:
        if self._folders.qsize() >= self._backlog:
            shutil.rmtree(folder, ignore_errors=True)
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._empty, name="attempt-folder-removal", daemon=True)
                self._thread.start()
                atexit.register(self.drain)
        self._folders.put(folder)

    def _empty(self) -> None:
        while True:
            folder = self._folders.get()
            shutil.rmtree(folder, ignore_errors=True)
            self._folders.task_done()

    def drain(self) -> None:
        """Remove every folder still waiting, on the caller's thread."""
        while True:
            try:
                folder = self._folders.get_nowait()
            except queue.Empty:
                return
            shutil.rmtree(folder, ignore_errors=True)
            self._folders.task_done()

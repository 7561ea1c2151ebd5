"""Running a CLI command on a pseudo-terminal, as a person at a terminal would, and reading what it drew."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time


def run_on_terminal(args: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """``python -m queue_core ARGS`` with stdin, stdout and stderr on a pty; returns (exit code, everything drawn)."""
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "queue_core", *args],
        stdin=child,
        stdout=child,
        stderr=child,
        env={**env, "TERM": "xterm-256color", "COLUMNS": "120"},
        start_new_session=True,
    )
    os.close(child)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.1)
            if ready:
                try:
                    data = os.read(main, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)
    return code, b"".join(chunks).decode("utf-8", "replace")

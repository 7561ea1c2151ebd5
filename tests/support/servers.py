"""Long-running CLI servers for tests (``jobledger metrics``, ``jobledger console``): spawn, find their URL."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support.processes import Procs, eventually

_URL = re.compile(r"(http://[0-9.]+:\d+)")


def start_server(
    procs: Procs, *args: str, name: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m queue_core ARGS`` (with ``--port 0``) in the background; returns it and its base URL."""
    log = procs.log_dir / f"{name}-{len(procs.procs)}.log"
    proc = procs.spawn([sys.executable, "-m", "queue_core", *args, "--port", "0"], name, env)

    def url() -> str | None:
        text = log.read_text() if log.exists() else ""
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited with {proc.returncode}:\n{text}")
        return url_in(text)

    return proc, eventually(url, timeout=60, what=f"{name} to listen")


def url_in(text: str) -> str | None:
    """The base URL (``http://HOST:PORT``) a server printed, if it has."""
    found = _URL.search(text)
    return found.group(1) if found else None


def server_log(procs: Procs, name: str) -> str:
    """Everything the servers named ``name`` printed so far."""
    return "".join(path.read_text(errors="replace") for path in sorted(Path(procs.log_dir).glob(f"{name}-*.log")))

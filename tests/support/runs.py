"""Runs through the client in tests: submit one and wait for its end, read what it printed."""

from __future__ import annotations

from typing import Any

from queue_core import Client


def run_to_end(client: Client, name: str, timeout: float = 30) -> dict[str, Any]:
    """Submit a run of definition ``name`` and wait for it to end; its status document."""
    return client.wait(client.submit(name), timeout=timeout)


def stdout_lines(client: Client, run_id: str) -> list[str]:
    """What the run's attempts printed on stdout, line by line (stderr left out)."""
    return [line.line for line in client.logs(run_id) if line.stream == "stdout"]

"""Writing job files and definitions into a test's workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def job_file(workspace: Path, name: str, body: str, folder: str = "jobs") -> str:
    """Write a job file under ``workspace/folder`` and return its name."""
    directory = workspace / folder
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(body)
    return name


def definition(
    name: str,
    location: str,
    kind: str = "SHELL",
    retries: int = 0,
    delay: float = 0.0,
    retry_on_timeout: bool = False,
    timeout: float = 1.0,
    args: str = "",
    env: dict[str, str] | None = None,
    cluster: str | None = "default",
    folder: str = "jobs",
) -> dict[str, Any]:
    """A Bodo-style definition of a workspace job."""
    raw: dict[str, Any] = {
        "name": name,
        "config": {
            "source": {"type": "WORKSPACE", "sourceDef": {"path": folder}},
            "type": kind,
            "sourceLocation": location,
            "args": args,
            "retryStrategy": {
                "numRetries": retries,
                "delayBetweenRetries": delay,
                "retryOnTimeout": retry_on_timeout,
            },
            "timeout": timeout,
            "envVars": env or {},
        },
    }
    if cluster:
        raw["cluster"] = {"name": cluster}
    return raw


def shell_task(workspace: Path, name: str, body: str = "true\n", **extra: Any) -> dict[str, Any]:
    """An inline SHELL job for a native workflow file."""
    location = job_file(workspace, f"{name}.sh", body)
    return {"job": {"type": "SHELL", "source": {"type": "WORKSPACE", "sourceDef": {"path": "jobs"}},
                    "sourceLocation": location, "timeout": 1}, **extra}  # fmt: skip


def native(name: str, tasks: dict[str, Any], **settings: Any) -> dict[str, Any]:
    return {"name": name, "tasks": tasks, **settings}

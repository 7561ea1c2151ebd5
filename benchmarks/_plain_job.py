"""The plain-RQ peer's job: run one workspace shell script as a subprocess, as jobledger's worker does."""

from __future__ import annotations

import subprocess


def run_script(path: str) -> None:
    subprocess.run(["bash", path], check=True)

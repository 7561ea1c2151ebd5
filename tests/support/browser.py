"""A headless Chromium for tests of the console: Debian's chromium driven by Playwright, screenshots as artifacts."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from tests.support.paths import REPO

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "apt-get install -y chromium"


def find_chromium() -> str | None:
    """``JOBLEDGER_CHROMIUM``, else a Chromium on PATH, else Debian's ``/usr/bin/chromium``."""
    given = os.environ.get("JOBLEDGER_CHROMIUM")
    if given:
        return given if Path(given).exists() else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def launch_arguments() -> list[str]:
    # Chromium refuses to start as root with its sandbox on (CI and containers run as root).
    return ["--no-sandbox"] if os.geteuid() == 0 else []


def artifacts_dir() -> Path:
    """Where screenshots go: ``JOBLEDGER_TEST_ARTIFACTS``, else ``test-artifacts/`` in the repository."""
    base = Path(os.environ.get("JOBLEDGER_TEST_ARTIFACTS") or REPO / "test-artifacts")
    path = base / "console"
    path.mkdir(parents=True, exist_ok=True)
    return path


def screenshot_name(test: str, step: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{test}--{step}") + ".png"

"""What the fault tests share: job code that leaves markers, the oracle's verdict, crashing workers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from queue_core import Client
from queue_core.cli.fleet import fleet_command
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.oracle import OracleReport, check_log
from tests.support.jobs import job_file
from tests.support.processes import Procs

CRASHING_WORKER = Path(__file__).with_name("crashing_worker.py")


def marker_job(workspace: Path, markers: Path, then: str = "", name: str = "mark.sh") -> str:
    """A shell job that first leaves one ``RUN:ATTEMPT`` line in ``markers`` (outside Redis), then runs ``then``."""
    return job_file(workspace, name, f'echo "$JOBLEDGER_RUN_ID:$JOBLEDGER_ATTEMPT" >> {markers}\n{then}\n')


def marks(markers: Path) -> list[str]:
    """The ``RUN:ATTEMPT`` lines job code left: one per execution."""
    return markers.read_text().split() if markers.exists() else []


def assert_log_holds(
    client: Client | EventStore, acknowledged: Iterable[str] = (), markers: Path | None = None, ended: bool = True
) -> OracleReport:
    """The oracle, at the end of every fault test: fails naming every rule the log breaks."""
    store = client.store if isinstance(client, Client) else client
    report = check_log(store, acknowledged, marks(markers) if markers else (), require_terminal=ended)
    assert report.ok, "\n".join(report.problems)
    return report


def crashing_worker(procs: Procs, url: str, hook: str, *queues: str) -> subprocess.Popen[bytes]:
    """A real ``rq worker`` (jobledger's class and serializer) that kills itself with ``os._exit(137)`` at ``hook``."""
    command = [*fleet_command(url, queues[0])[1:-1], *queues]
    return procs.spawn([sys.executable, str(CRASHING_WORKER), hook, *command], f"crashing-{hook}")

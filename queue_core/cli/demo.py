"""``jobledger demo``: define the examples, run them to every end state, and show what happened."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from queue_core.cli.node import node
from queue_core.cli.output import print_table
from queue_core.cli.workflow_render import render_tree
from queue_core.client import Client
from queue_core.domain.runs import CANCELLED, FAILED, RUNNING, SUCCEEDED
from queue_core.errors import InvalidInput
from queue_core.eventlog.connection import display_url
from queue_core.settings import Settings

__all__ = ["run_demo"]

DEMO_WORKERS = 2
DEMO_GRACE_SECONDS = 5.0
DEMO_TIMEOUT_SECONDS = 120.0

# definition -> (the end state it shows, the reason expected)
EXPECTED = {
    "hello-world": (SUCCEEDED, None),
    "flaky-report": (SUCCEEDED, None),
    "broken-export": (FAILED, "NonZeroExitCode"),
    "slow-query": (FAILED, "Timeout"),
    "long-backfill": (CANCELLED, "Cancelled by user"),
}


def examples_dir() -> Path:
    """The repository's ``examples/`` (or ``JOBLEDGER_EXAMPLES``)."""
    configured = os.environ.get("JOBLEDGER_EXAMPLES")
    path = Path(configured) if configured else Path(__file__).resolve().parents[2] / "examples"
    if not (path / "definitions").is_dir():
        raise InvalidInput(f"examples not found at {path}; run from a clone or set JOBLEDGER_EXAMPLES")
    return path


def _wait_running(client: Client, run_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while client.get_run(run_id)["status"] != RUNNING and time.monotonic() < deadline:
        time.sleep(0.05)


def run_demo(settings: Settings) -> int:
    examples = examples_dir()
    target = settings.workspace / "examples"
    shutil.copytree(examples / "jobs", target, dirs_exist_ok=True)
    print(f"workspace: {target}")
    with node(settings, DEMO_WORKERS, DEMO_GRACE_SECONDS) as (client, _fleet):
        print(f"store:     {display_url(client.url)}\n")
        # The examples it runs: the others name secrets, depots, resources or servers a fresh home does not have.
        for path in sorted(p for p in (examples / "definitions").iterdir() if p.stem in EXPECTED):
            result = client.define_file(path)
            state = "created" if result.created else ("new version" if result.changed else "unchanged")
            print(f"defined {result.name:<14} version {result.version}  ({state})  {result.id}")
        runs = {name: client.submit(name) for name in EXPECTED}
        print(f"\nsubmitted {len(runs)} runs; cancelling long-backfill once it runs...")
        _wait_running(client, runs["long-backfill"], DEMO_TIMEOUT_SECONDS)
        client.cancel(runs["long-backfill"])
        finished = {name: client.wait(run_id, DEMO_TIMEOUT_SECONDS) for name, run_id in runs.items()}
        print()
        print_table(
            ["DEFINITION", "RUN", "STATUS", "REASON", "ATTEMPTS", "EXIT"],
            [
                [
                    name,
                    run["id"],
                    run["status"],
                    run["reason"],
                    ", ".join(
                        f"#{a['number']} {a['status']}{'/' + a['reason'] if a['reason'] else ''}"
                        for a in run["attempts"]
                    ),
                    run["exit_code"],
                ]
                for name, run in finished.items()
            ],
        )
        workflow = client.apply_workflow_file(examples / "workflows" / "etl-native.yaml")
        print(f"\napplied workflow {workflow.name} version {workflow.version}; running it...")
        flow = client.wait_workflow_run(client.run_workflow(workflow.name), DEMO_TIMEOUT_SECONDS)
        for drawn in render_tree(flow):
            print(f"  {drawn}")
        print("\nlogs of hello-world:")
        for logged in client.logs(runs["hello-world"]):
            print(f"  [{logged.attempt}] {logged.line}")
        verified = client.replay_verify()
        print(
            f"\nreplay --verify: {verified.events} events, {'identical' if verified.identical else verified.difference}"
        )
    wrong = [name for name, run in finished.items() if (run["status"], run["reason"]) != EXPECTED[name]]
    if flow["status"] != SUCCEEDED:
        wrong.append(flow["workflow"])
    if wrong or not verified.identical:
        print(f"\nunexpected outcome for: {', '.join(wrong) or 'replay'}")
        return 1
    print("\nevery run reached the state it was meant to show.")
    print("try: jobledger runs | jobledger status RUN | jobledger logs RUN | jobledger events --limit 20")
    print("     jobledger workflow runs | jobledger workflow status WRUN | jobledger workflow graph WRUN")
    return 0

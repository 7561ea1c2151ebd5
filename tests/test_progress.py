"""Progress on the terminal: rich bars when stderr is a terminal, plain lines (one per change) otherwise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from queue_core import Client
from tests.support.jobs import definition, job_file, native, shell_task
from tests.support.processes import Procs, eventually
from tests.support.terminal import run_on_terminal

ESCAPE = "\x1b["


def _gated(gate: Path) -> str:
    return f"while [ ! -e {gate} ]; do sleep 0.05; done\necho done\n"


def _in_background(env: dict[str, str], tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], Path]:
    """``python -m queue_core ARGS`` with stderr (where progress goes) to a file the test can read meanwhile."""
    progress = tmp_path / f"stderr-{args[0]}"
    with open(progress, "w") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "queue_core", *args], env=env, stdout=subprocess.PIPE, stderr=err_file, text=True
        )
    return proc, progress


def test_wait_prints_a_line_per_change_off_a_terminal(client: Client, workspace: Path, tmp_path: Path, fleet: Procs):
    gate = tmp_path / "gate"
    client.define(definition("hold", job_file(workspace, "hold.sh", _gated(gate)), timeout=2))
    run_id = client.submit("hold")
    waiting, progress = _in_background(fleet.env, tmp_path, "wait", run_id)
    running = f"{run_id} RUNNING (attempt 1)"
    eventually(lambda: running in progress.read_text(), what="wait to say the run is running")
    gate.touch()
    out, _ = waiting.communicate(timeout=60)
    err = progress.read_text()
    assert waiting.returncode == 0
    assert out == f"{run_id} SUCCEEDED\n"
    assert running in err.splitlines()
    assert ESCAPE not in err
    assert len(err.splitlines()) == len(set(err.splitlines()))  # a line per change, not per poll


def test_wait_draws_a_rich_bar_on_a_terminal(client: Client, workspace: Path, tmp_path: Path, fleet: Procs):
    client.define(definition("nap", job_file(workspace, "nap.sh", "sleep 1\n"), timeout=2))
    run_id = client.submit("nap")
    code, drawn = run_on_terminal(["wait", run_id], fleet.env)
    assert code == 0
    assert f"{run_id[:8]} RUNNING (attempt 1)" in drawn
    assert ESCAPE in drawn  # rich moved the cursor to redraw its line
    assert drawn.rstrip().endswith(f"{run_id} SUCCEEDED")


def test_workflow_run_wait_shows_tasks_ending(client: Client, workspace: Path, tmp_path: Path, fleet: Procs):
    gate = tmp_path / "gate"
    tasks = {"a": shell_task(workspace, "a", _gated(gate)), "b": shell_task(workspace, "b", depends_on=["a"])}
    client.apply_workflow(native("pair", tasks))
    waiting, progress = _in_background(fleet.env, tmp_path, "workflow", "run", "pair", "--wait")
    eventually(lambda: "[0/2] a RUNNING" in progress.read_text(), what="the wait to show task a running")
    gate.touch()
    waiting.communicate(timeout=60)
    assert waiting.returncode == 0
    lines = progress.read_text().splitlines()
    assert lines[-1] == "[2/2] b SUCCEEDED"
    assert any(line in ("[1/2] a SUCCEEDED", "[2/2] a SUCCEEDED") for line in lines)
    assert "[0/2] b PENDING" in lines and ESCAPE not in progress.read_text()
    code, drawn = run_on_terminal(["workflow", "run", "pair", "--wait"], fleet.env)
    assert code == 0
    assert "2/2 tasks ended: 2 succeeded" in drawn and ESCAPE in drawn


def test_replay_shows_events_folded(client: Client, workspace: Path, procs: Procs):
    client.define(definition("ok", job_file(workspace, "ok.sh", "true\n")))
    for _ in range(30):
        client.submit("ok")
    total = client.store.length()
    plain = procs.cli("replay", "--verify")
    assert plain.returncode == 0 and plain.stdout.splitlines()[-1] == "identical"
    assert f"replaying: {total:,} / {total:,} events" in plain.stderr.splitlines()
    code, drawn = run_on_terminal(["replay", "--rebuild"], procs.env)
    assert code == 0
    assert "rebuilding" in drawn and f"{total}/{total}" in drawn and ESCAPE in drawn

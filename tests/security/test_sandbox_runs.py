"""Ordinary jobs under the sandbox: they run as the job user in their own folder, and end as they always did."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from queue_core import Client
from tests.support.jobs import definition, job_file, sql_definition, sql_output
from tests.support.processes import Procs, eventually
from tests.support.runs import stdout_lines
from tests.support.sandbox import needs_bwrap

pytestmark = [needs_bwrap, pytest.mark.fleet(env={"JOBLEDGER_SANDBOX": "on"})]


def _processes_with(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_sandboxed_shell_job_runs_as_the_job_user_in_its_attempt_folder(
    client: Client, workspace: Path, fleet: Procs
):
    body = 'id -un; echo "home=$HOME"; echo "tmp=$TMPDIR"; pwd; touch "$HOME/x" /tmp/y ./z && echo wrote\n'
    job_file(workspace, "who.sh", body)
    client.define(definition("who", "who.sh"))
    run = client.wait(client.submit("who"), timeout=30)
    lines = stdout_lines(client, run["id"])
    assert (run["status"], run["exit_code"]) == ("SUCCEEDED", 0), lines
    if os.geteuid() == 0:
        assert lines[0] == "nobody"
    assert lines[1].startswith("home=") and "/runs/" in lines[1] and lines[1].endswith("/home")
    assert lines[2] == "tmp=/tmp"
    assert "/runs/" in lines[3]  # a working copy in the attempt folder, not the workspace
    assert lines[4] == "wrote"
    assert not (workspace / "jobs" / "z").exists()


def test_a_sandboxed_job_killed_by_a_signal_is_reported_so(client: Client, workspace: Path, fleet: Procs):
    job_file(workspace, "die.sh", "kill -9 $$\n")
    client.define(definition("die", "die.sh"))
    run = client.wait(client.submit("die"), timeout=30)
    assert (run["status"], run["reason"], run["exit_code"]) == ("FAILED", "NonZeroExitCode", 137)
    assert "killed by signal 9" in client.run_detail(run["id"])["message"]


@pytest.mark.parametrize(("trap", "ignored"), [("exit 0", False), ("", True)])
def test_a_sandboxed_job_gets_sigterm_and_its_grace_period_on_timeout(
    trap: str, ignored: bool, client: Client, workspace: Path, fleet: Procs
):
    job_file(workspace, "slow.sh", f"trap '{trap}' TERM\necho started\nwhile true; do sleep 0.1; done\n")
    job_file(workspace, "first.sh", "true\n")
    client.define(definition("first", "first.sh"))
    client.define(definition("slow", "slow.sh", timeout=0.02))  # 1.2 s
    client.wait(client.submit("first"), timeout=30)  # so that "slow" runs in the sandbox set up after it
    run = client.wait(client.submit("slow"), timeout=30)
    assert (run["status"], run["reason"]) == ("FAILED", "Timeout")
    message = client.run_detail(run["id"])["message"]
    assert ("ignored SIGTERM" in message) is ignored, message


def test_cancel_of_a_sandboxed_run_kills_what_it_started_even_in_a_new_session(
    client: Client, workspace: Path, fleet: Procs
):
    job_file(workspace, "tree.sh", "setsid sleep 3001.25 &\nsleep 3002.25 &\necho started\nwait\n")
    client.define(definition("tree", "tree.sh", timeout=10))
    run_id = client.submit("tree")
    eventually(lambda: _processes_with("3001.25") and _processes_with("3002.25"), what="the job's processes")
    assert client.cancel(run_id)["status"] == "CANCELLED"
    eventually(
        lambda: not _processes_with("3001.25") and not _processes_with("3002.25"),
        timeout=5.0,
        what="every process of the job to die",
    )


def test_a_sandboxed_sql_job_reads_and_writes_its_local_depot(lake: Path, client: Client, fleet: Procs):
    for path in [lake, *lake.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)  # the operator lets the job user write the depot
    steps = [("copy", "SELECT * FROM city")]
    inputs = [{"name": "city", "dataset": "dataos://files:none/city", "format": "csv"}]
    outputs = [sql_output("copy", "dataos://files:out/city", "parquet")]
    client.define(sql_definition("copy", steps, inputs, outputs))
    run = client.wait(client.submit("copy"), timeout=60)
    assert run["status"] == "SUCCEEDED", [line.line for line in client.logs(run["id"])]
    assert list((lake / "out").rglob("*.parquet"))


AFTERMATH = """echo "tmp=$(ls -A /tmp | tr '\\n' ' ')"
echo "home=$(ls -A "$HOME" | tr '\\n' ' ')"
echo "env=$(env | cut -d= -f1 | sort | tr '\\n' ' ')"
echo "token=$TOKEN"
touch "/tmp/left-by-$JOBLEDGER_RUN_ID" "$HOME/left-by-$JOBLEDGER_RUN_ID"
setsid sleep 3003.75 &
"""


def _way_to(home: Path) -> set[str]:
    return {home.relative_to("/tmp").parts[0]} if home.is_relative_to("/tmp") else set()


def test_consecutive_sandboxed_attempts_share_no_tmp_home_nor_processes(client: Client, workspace: Path, fleet: Procs):
    client.set_secret("token", "tok-8c1e")
    job_file(workspace, "aftermath.sh", AFTERMATH)
    client.define(definition("aftermath", "aftermath.sh", env={"TOKEN": {"secret": "token"}}))  # type: ignore[dict-item]
    seen = []
    for _ in range(3):
        run = client.wait(client.submit("aftermath"), timeout=30)
        assert run["status"] == "SUCCEEDED"
        lines = stdout_lines(client, run["id"])
        seen.append(lines)
        # Nothing left by the attempt before; /tmp holds only the way to its own folder, if that is under /tmp.
        assert set(lines[0].removeprefix("tmp=").split()) <= _way_to(client.settings.home), lines
        assert lines[1] == "home=", lines
        assert lines[3] == "token=***"  # its own secret arrived (masked in the log)
        eventually(lambda: not _processes_with("3003.75"), timeout=5.0, what="the attempt's leftovers to die")
    assert seen[0][2] == seen[1][2] == seen[2][2]  # the same environment, first attempt or later


def test_consecutive_sandboxed_sql_attempts_each_get_their_own_runner(lake: Path, client: Client, fleet: Procs):
    for path in [lake, *lake.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    other = lake / "other"
    other.mkdir(mode=0o777)
    other.chmod(0o777)
    client.add_depot("other", "local", path=str(other))
    inputs = [{"name": "city", "dataset": "dataos://files:none/city", "format": "csv"}]
    for n, depot in enumerate(["files", "files", "files", "other", "files"]):
        name = f"copy-{n}"
        outputs = [sql_output("copy", f"dataos://{depot}:out/copy{n}", "csv")]
        client.define(sql_definition(name, [("copy", f"SELECT {n} AS attempt, * FROM city")], inputs, outputs))
        run = client.wait(client.submit(name), timeout=60)
        assert run["status"] == "SUCCEEDED", [line.line for line in client.logs(run["id"])]
        written = (lake if depot == "files" else other) / "out" / f"copy{n}.csv"
        assert written.read_text().splitlines()[1].startswith(f"{n},")

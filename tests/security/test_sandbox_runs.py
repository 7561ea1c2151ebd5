"""Ordinary jobs under the sandbox: they run, as the job user, in their own folder, and end as they always did."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from queue_core import Client
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs
from tests.support.runs import stdout_lines
from tests.support.sandbox import needs_bwrap

pytestmark = [needs_bwrap, pytest.mark.fleet(env={"JOBLEDGER_SANDBOX": "on"})]


def test_a_sandboxed_shell_job_runs_as_the_job_user_in_its_attempt_folder(
    client: Client, workspace: Path, fleet: Procs
):
    job_file(
        workspace,
        "who.sh",
        'id -un; echo "home=$HOME"; echo "tmp=$TMPDIR"; pwd; touch "$HOME/x" /tmp/y && echo wrote\n',
    )
    client.define(definition("who", "who.sh"))
    run = client.wait(client.submit("who"), timeout=30)
    lines = stdout_lines(client, run["id"])
    print([(x.stream, x.line) for x in client.logs(run["id"])])
    assert (run["status"], run["exit_code"]) == ("SUCCEEDED", 0), lines
    expected_user = "nobody" if os.geteuid() == 0 else None
    if expected_user:
        assert lines[0] == expected_user
    assert lines[1].startswith("home=") and "/runs/" in lines[1] and lines[1].endswith("/home")
    assert lines[2] == "tmp=/tmp"
    assert "wrote" in lines

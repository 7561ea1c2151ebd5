"""An array chunk's children share one sandbox: each in its own folder and session, nothing of a sibling left."""

from __future__ import annotations

from pathlib import Path

import pytest

from queue_core import Client
from queue_core.domain.arrays import child_id
from scheduler.rq_jobs import CHUNK_SIZE, MIN_CHUNKED
from tests.security.test_sandbox_runs import _processes_with
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually
from tests.support.runs import stdout_lines
from tests.support.sandbox import needs_bwrap

pytestmark = [needs_bwrap, pytest.mark.fleet(workers=1, env={"JOBLEDGER_SANDBOX": "on"})]

# Counts the sleeps an earlier sibling left running and the files it left in /tmp, then leaves its own.
SIBLING = """echo "index=$JOBLEDGER_ARRAY_INDEX home=$HOME"; pwd
left=$(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -o 'sleep 300[3].5' | wc -l)
echo "left=$left tmp=$(ls -A /tmp | grep -c '^mine$')"
touch /tmp/mine; setsid sleep 3003.5 >/dev/null 2>&1 &
[ "$JOBLEDGER_ARRAY_INDEX" = 7 ] && exit 3
exit 0
"""


def test_a_chunks_children_each_run_in_their_own_folder_and_find_nothing_a_sibling_left(
    client: Client, workspace: Path, fleet: Procs
):
    job_file(workspace, "sibling.sh", SIBLING)
    client.define(definition("sibling", "sibling.sh"))
    parent = client.wait(client.submit("sibling", array=MIN_CHUNKED), timeout=60)
    assert (parent["status"], parent["array"]["counts"]["FAILED"]) == ("FAILED", 1)
    seen = []
    for index in range(CHUNK_SIZE):
        run = client.get_run(child_id(parent["id"], index))
        lines = stdout_lines(client, run["id"])
        assert lines[0].startswith(f"index={index} home=") and lines[0].endswith("/home"), lines
        assert lines[2] == "left=0 tmp=0", (index, lines)  # the sibling before it: killed, its /tmp emptied
        seen.append(lines[1])
        expected = ("FAILED", 3) if index == 7 else ("SUCCEEDED", 0)
        assert (run["status"], run["exit_code"]) == expected
    assert len(set(seen)) == CHUNK_SIZE and all("/chunk-" in folder for folder in seen)  # shared, one each
    eventually(lambda: not _processes_with("3003.5"), timeout=5.0, what="no sleep left running")
    checked = fleet.cli("check", "--ended")
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(("trap", "ignored"), [("exit 0", False), ("", True)])
def test_a_chunk_child_in_the_shared_sandbox_gets_sigterm_and_its_grace_period_on_timeout(
    trap: str, ignored: bool, client: Client, workspace: Path, fleet: Procs
):
    body = f"[ \"$JOBLEDGER_ARRAY_INDEX\" = 1 ] || exit 0\ntrap '{trap}' TERM\nwhile true; do sleep 0.1; done\n"
    job_file(workspace, "second-slow.sh", body)
    client.define(definition("second-slow", "second-slow.sh", timeout=0.02))  # 1.2 s
    parent = client.wait(client.submit("second-slow", array=MIN_CHUNKED), timeout=60)
    run = client.get_run(child_id(parent["id"], 1))  # the chunk's second child: in the chunk's sandbox
    assert (run["status"], run["reason"]) == ("FAILED", "Timeout")
    message = client.run_detail(run["id"])["message"]
    assert ("ignored SIGTERM" in message) is ignored, message


def test_cancel_of_a_chunk_child_kills_what_it_started_even_in_a_new_session(
    client: Client, workspace: Path, fleet: Procs
):
    body = '[ "$JOBLEDGER_ARRAY_INDEX" = 1 ] || exit 0\nsetsid sleep 3001.25 &\nsleep 3002.25 &\nwait\n'
    job_file(workspace, "tree.sh", body)
    client.define(definition("tree", "tree.sh", timeout=10))
    parent = client.submit("tree", array=MIN_CHUNKED)
    eventually(lambda: _processes_with("3001.25") and _processes_with("3002.25"), what="the child's processes")
    assert client.cancel(parent)["status"] == "CANCELLED"
    eventually(
        lambda: not _processes_with("3001.25") and not _processes_with("3002.25"),
        timeout=5.0,
        what="every process of the child to die",
    )
    assert client.get_run(child_id(parent, 1))["status"] == "CANCELLED"


def test_a_child_that_stops_the_chunks_launcher_fails_and_its_siblings_still_run(
    client: Client, workspace: Path, fleet: Procs
):
    job_file(workspace, "saboteur.sh", '[ "$JOBLEDGER_ARRAY_INDEX" = 1 ] && kill -STOP "$PPID"\nexit 0\n')
    client.define(definition("saboteur", "saboteur.sh"))
    parent = client.wait(client.submit("saboteur", array=MIN_CHUNKED), timeout=60)
    assert parent["array"]["counts"] == {**parent["array"]["counts"], "SUCCEEDED": MIN_CHUNKED - 1, "FAILED": 1}
    run = client.get_run(child_id(parent["id"], 1))  # its launcher silent: the sandbox was killed, and the child
    assert (run["status"], run["exit_code"]) == ("FAILED", 137)
    assert "killed by signal 9" in client.run_detail(run["id"])["message"]

"""Row 34: path traversal through a WORKSPACE source's path or entry file.

A path that is absolute, climbs out with ``..``, starts with ``~`` or holds a NUL is refused when the
definition is made (``path_outside_workspace``, naming the field), with one line and exit 2 on the CLI and
nothing appended. A symlink inside the workspace that points outside (to a file, or as the source folder)
passes that check, and is caught before anything is read: the attempt fails ``SourceUnavailable``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from queue_core import Client, InvalidInput
from tests.support.faults import assert_log_holds
from tests.support.jobs import definition
from tests.support.processes import Procs

HOSTILE = ["../../etc/passwd", "/etc/passwd", "a/../../x", "~root/.ssh", "a\x00b"]


@pytest.mark.parametrize("field", ["config.sourceLocation", "config.source.sourceDef.path"])
@pytest.mark.parametrize("path", HOSTILE, ids=["dotdot", "absolute", "inner-dotdot", "tilde", "nul"])
def test_a_path_leaving_the_workspace_is_refused_at_define_and_appends_nothing(
    client: Client, procs: Procs, tmp_path: Path, field: str, path: str
):
    raw = definition("escape", "run.sh")
    if field == "config.sourceLocation":
        raw["config"]["sourceLocation"] = path
    else:
        raw["config"]["source"]["sourceDef"]["path"] = path
    with pytest.raises(InvalidInput) as refused:
        client.define(raw)
    assert refused.value.field == field
    assert "path_outside_workspace" in str(refused.value) or "NUL" in str(refused.value)
    if path == HOSTILE[0]:  # and the CLI's one line, once per field
        file = tmp_path / "escape.json"
        file.write_text(json.dumps(raw))
        answer = procs.cli("define", str(file))
        assert answer.returncode == 2 and answer.stderr.startswith(f"jobledger: {field}: ")
        assert answer.stderr.count("\n") == 1
    assert client.store.length() == 0


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_symlink_leaving_the_workspace_is_source_unavailable_and_nothing_outside_runs(
    client: Client, workspace: Path, procs: Procs, redis_url: str, tmp_path: Path, what: str
):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "run.sh").write_text("echo escaped\n")
    if what == "file":
        (workspace / "jobs").mkdir()
        (workspace / "jobs" / "run.sh").symlink_to(outside / "run.sh")
    else:
        (workspace / "jobs").symlink_to(outside)
    client.define(definition("escape", "run.sh"))
    procs.fleet(redis_url)
    run = client.wait(client.submit("escape"), timeout=30)
    assert (run["status"], run["reason"]) == ("FAILED", "SourceUnavailable")
    assert not any("escaped" in line.line for line in client.logs(run["id"]))
    assert_log_holds(client, [run["id"]])

"""Choosing what a run runs: an older definition version, a GIT source at another reference, and an
idempotency key held to the parameters it was first used with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from queue_core import Client, IdempotencyKeyReused, InvalidInput, NotFound
from tests.support.git_server import bare_repo, commit_file, git, push
from tests.support.jobs import definition, job_file, source_definition
from tests.support.processes import Procs
from tests.support.runs import stdout_lines


def test_submit_version_runs_that_version_of_the_definition(client: Client, workspace: Path, procs: Procs):
    job_file(workspace, "x.sh", "true\n")
    client.define(definition("versioned", "x.sh", args="one"))
    client.define(definition("versioned", "x.sh", args="two"))
    older = client.submit("versioned", version=1)
    assert client.get_run(older)["definition_version"] == 1
    assert client.run_detail(older)["job"]["args"] == "one"
    done = procs.cli("submit", "versioned", "--version", "2", "--json")
    assert done.returncode == 0, done.stderr
    assert '"definition_version": 2' in done.stdout


def test_a_version_that_does_not_exist_is_refused_with_nothing_appended(client: Client, workspace: Path, procs: Procs):
    job_file(workspace, "x.sh", "true\n")
    client.define(definition("one-version", "x.sh"))
    before = len(client.events())
    with pytest.raises(NotFound, match="has no version 3"):
        client.submit("one-version", version=3)
    with pytest.raises(InvalidInput, match="version"):
        client.submit("one-version", version=0)
    done = procs.cli("submit", "one-version", "--version", "3")
    assert (done.returncode, done.stderr.count("\n")) == (2, 1)
    assert "has no version 3" in done.stderr
    assert len(client.events()) == before


@pytest.fixture
def repo(tmp_path: Path) -> dict[str, Any]:
    """main: v1 (tag v1), then v2."""
    work, bare = bare_repo(tmp_path / "git")
    first = commit_file(work, "run.sh", 'echo "code v1"\n', "v1")
    git("tag", "v1", cwd=work)
    commit_file(work, "run.sh", 'echo "code v2"\n', "v2")
    push(work)
    return {"url": f"file://{bare}", "v1": first}


def test_submit_ref_runs_a_git_source_at_that_reference_for_that_run_only(
    client: Client, repo: dict[str, Any], fleet: Procs
):
    source = {"type": "GIT", "sourceDef": {"repoUrl": repo["url"], "reference": ""}}
    client.define(source_definition("from-git", source, "run.sh"))
    pinned = client.submit("from-git", ref="v1")
    latest = client.submit("from-git")
    assert client.wait(pinned, timeout=30)["status"] == "SUCCEEDED"
    assert client.wait(latest, timeout=30)["status"] == "SUCCEEDED"
    assert stdout_lines(client, pinned)[-1] == "code v1"
    assert stdout_lines(client, latest)[-1] == "code v2"
    detail = client.run_detail(pinned)
    assert detail["job"]["source"]["sourceDef"]["reference"] == "v1"  # recorded on the run
    assert detail["source_revisions"] == {"1": repo["v1"]}
    assert client.run_detail(latest)["job"]["source"]["sourceDef"]["reference"] == ""


def test_ref_on_a_source_that_is_not_git_or_not_a_ref_is_refused_with_nothing_appended(
    client: Client, workspace: Path, procs: Procs
):
    job_file(workspace, "x.sh", "true\n")
    client.define(definition("local", "x.sh"))
    before = len(client.events())
    with pytest.raises(InvalidInput, match="GIT sources only") as refused:
        client.submit("local", ref="v1")
    assert refused.value.field == "ref"
    with pytest.raises(InvalidInput, match="branch, tag or commit"):
        client.submit("local", ref="--upload-pack=x")
    done = procs.cli("submit", "local", "--ref", "main")
    assert (done.returncode, done.stderr.count("\n")) == (2, 1)
    assert "--ref" in done.stderr and "GIT sources only" in done.stderr
    assert len(client.events()) == before


def test_a_reused_idempotency_key_with_other_parameters_is_refused_naming_its_run(
    client: Client, workspace: Path, procs: Procs
):
    job_file(workspace, "x.sh", "true\n")
    client.define(definition("invoice", "x.sh"))
    first = client.submit("invoice", args="2026-11", idempotency_key="invoice-2026-11")
    before = len(client.events())
    for other in ({"args": "2026-12"}, {"env": {"A": "1"}}, {"timeout": 0.5}, {"version": 1, "args": "x"}):
        with pytest.raises(IdempotencyKeyReused, match=first) as refused:
            client.submit("invoice", idempotency_key="invoice-2026-11", **other)
        assert refused.value.run_id == first
    done = procs.cli("submit", "invoice", "--args", "2026-12", "--idempotency-key", "invoice-2026-11")
    assert (done.returncode, done.stderr.count("\n")) == (2, 1)
    assert first in done.stderr
    assert len(client.events()) == before
    # The same parameters still give the same run, also after the definition changed.
    client.define(definition("invoice", "x.sh", env={"B": "2"}))
    assert client.submit("invoice", args="2026-11", idempotency_key="invoice-2026-11") == first
    assert client.submit("invoice", args="2026-11", idempotency_key="invoice-2026-11", version=1) == first
    with pytest.raises(IdempotencyKeyReused, match=first):
        client.submit("invoice", args="2026-11", idempotency_key="invoice-2026-11", version=2)

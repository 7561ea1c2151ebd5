"""GIT sources end to end: real git against local bare repositories, over file:// and HTTPS with a token."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from queue_core import Client
from queue_core.eventlog import events
from scheduler.rq_jobs import enqueue_attempt
from tests.support.git_server import GitHttpsServer, bare_repo, commit_file, git, push
from tests.support.jobs import source_definition
from tests.support.leaks import assert_nowhere, files_under
from tests.support.processes import Procs, cmdlines_seen, eventually
from tests.support.runs import run_to_end, stdout_lines

TOKEN = "ghp_TESTtoken0123456789abcdefABCDEF"


@pytest.fixture(autouse=True)
def no_leak(connection: redis.Redis, tmp_path: Path) -> Iterator[None]:
    yield
    assert_nowhere([TOKEN], connection, files_under(tmp_path / "logs", tmp_path / "home"))


@pytest.fixture
def repo(tmp_path: Path) -> dict[str, Any]:
    """main: v1 (annotated tag v1), then v2; branch feature: one more commit."""
    work, bare = bare_repo(tmp_path / "git")
    first = commit_file(work, "run.sh", 'echo "code v1"\n', "v1")
    git("tag", "-a", "v1", "-m", "release 1", cwd=work)
    second = commit_file(work, "run.sh", 'echo "code v2"\n', "v2")
    git("checkout", "-q", "-b", "feature", cwd=work)
    feature = commit_file(work, "run.sh", 'echo "code feature"\n', "feature")
    git("checkout", "-q", "main", cwd=work)
    push(work)
    return {"bare": bare, "url": f"file://{bare}", "v1": first, "v2": second, "feature": feature}


def git_definition(
    name: str, url: str, reference: str = "", location: str = "run.sh", retries: int = 0, **source: Any
) -> dict:
    git_source = {"type": "GIT", "sourceDef": {"repoUrl": url, "reference": reference, **source}}
    return source_definition(name, git_source, location, retries=retries)


def test_a_git_source_runs_the_branch_tag_or_commit_it_names_and_records_the_commit(
    client: Client, repo: dict[str, Any], fleet: Procs
):
    cases = {"": ("v2", "code v2"), "feature": ("feature", "code feature"), "v1": ("v1", "code v1"),
             repo["v1"]: ("v1", "code v1"), repo["feature"][:10]: ("feature", "code feature")}  # fmt: skip
    for i, (reference, (commit, printed)) in enumerate(cases.items()):
        client.define(git_definition(f"git-{i}", repo["url"], reference))
        run = run_to_end(client, f"git-{i}")
        assert run["status"] == "SUCCEEDED", (reference, client.run_detail(run["id"])["message"])
        assert stdout_lines(client, run["id"]) == [printed]
        assert client.run_detail(run["id"])["source_revisions"] == {"1": repo[commit]}
        started = client.events(aggregate=run["id"], type="RunStarted")[0]
        assert started.event.source_revision == repo[commit]  # type: ignore[attr-defined]
    status = fleet.cli("status", run["id"])
    assert repo["feature"] in status.stdout and "SOURCE REVISION" in status.stdout


def test_the_second_run_of_the_same_commit_does_not_fetch_again(
    client: Client, repo: dict[str, Any], fleet: Procs, tmp_path: Path
):
    client.define(git_definition("by-branch", repo["url"], "main"))
    assert run_to_end(client, "by-branch")["status"] == "SUCCEEDED"
    checkouts = [p for p in (tmp_path / "home" / "cache" / "git").glob("*/*") if p.is_dir()]
    assert [p.name for p in checkouts] == [repo["v2"]]
    fetched = (checkouts[0] / ".git" / "FETCH_HEAD").stat()
    assert run_to_end(client, "by-branch")["status"] == "SUCCEEDED"
    again = (checkouts[0] / ".git" / "FETCH_HEAD").stat()
    assert (again.st_ino, again.st_mtime_ns) == (fetched.st_ino, fetched.st_mtime_ns)
    # Named by its commit, the cached checkout needs no repository at all.
    client.define(git_definition("by-commit", repo["url"], repo["v2"]))
    shutil.rmtree(repo["bare"])
    run = run_to_end(client, "by-commit")
    assert run["status"] == "SUCCEEDED" and stdout_lines(client, run["id"]) == ["code v2"]


def test_a_token_over_https_reaches_the_server_and_shows_up_nowhere(
    client: Client, repo: dict[str, Any], procs: Procs, redis_url: str, tmp_path: Path
):
    client.set_secret("git-token", TOKEN)
    with GitHttpsServer(repo["bare"].parent, "ci-bot", TOKEN, tmp_path) as server:
        procs.env["GIT_SSL_CAINFO"] = str(server.cert)
        procs.fleet(redis_url)
        url = f"{server.base_url}/{repo['bare'].name}"
        client.define(git_definition("private", url, "v1", username="ci-bot", token={"secret": "git-token"}))
        with cmdlines_seen(b"git") as seen_cmdlines:
            run = run_to_end(client, "private")
        assert run["status"] == "SUCCEEDED", client.run_detail(run["id"])["message"]
        assert stdout_lines(client, run["id"]) == ["code v1"]
        assert (f"/{repo['bare'].name}/info/refs?service=git-upload-pack", 401) in server.requests
        assert any(status == 200 for _, status in server.requests)
    assert any(b"ls-remote" in c or b"fetch" in c for c in seen_cmdlines), "the sampler saw no git process"
    assert not any(TOKEN.encode() in c for c in seen_cmdlines)
    git_configs = list((tmp_path / "home" / "cache" / "git").glob("*/*/.git/config"))
    assert git_configs
    outputs = [procs.cli(*args).stdout for args in (["status", run["id"]], ["logs", run["id"]], ["events"])]
    assert_nowhere([TOKEN], client.redis, git_configs, outputs)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unreachable", "git ls-remote failed"),
        ("missing-reference", "reference 'no-such-branch' is not a branch, tag or commit"),
        ("missing-file", "entry file 'nowhere.sh' does not exist"),
        ("wrong-token", "git ls-remote failed"),
    ],
)
def test_an_unavailable_git_source_fails_source_unavailable_and_is_retried(
    case: str, message: str, client: Client, repo: dict[str, Any], procs: Procs, redis_url: str, tmp_path: Path
):
    client.set_secret("git-token", TOKEN)
    source: dict[str, Any] = {"retries": 1, "token": {"secret": "git-token"}}
    with GitHttpsServer(repo["bare"].parent, "ci-bot", "another-token", tmp_path) as server:
        procs.env["GIT_SSL_CAINFO"] = str(server.cert)
        procs.fleet(redis_url)
        if case == "unreachable":
            raw = git_definition("bad", "https://127.0.0.1:9/jobs.git", "main", **source)
        elif case == "missing-reference":
            raw = git_definition("bad", repo["url"], "no-such-branch", **source)
        elif case == "missing-file":
            raw = git_definition("bad", repo["url"], "main", "nowhere.sh", **source)
        else:
            raw = git_definition("bad", f"{server.base_url}/{repo['bare'].name}", "main", **source)
        client.define(raw)
        run = run_to_end(client, "bad")
    assert (run["status"], run["reason"]) == ("FAILED", "SourceUnavailable")
    assert [a["reason"] for a in run["attempts"]] == ["SourceUnavailable", "SourceUnavailable"]
    notes = [line.line for line in client.logs(run["id"]) if line.stream == "jobledger"]
    assert len(notes) == 2 and all(message in note for note in notes), notes
    assert message in client.run_detail(run["id"])["message"]


def test_a_run_started_event_of_schema_1_reads_with_no_source_revision():
    old = {"id": "e1", "type": "RunStarted", "agg": "r1", "v": 3, "t": "2026-01-01T00:00:00Z", "sv": 1,
           "d": {"attempt": 1, "worker": "w", "host": "h", "pid": 7}}  # fmt: skip
    rec = events.decode("1-0", orjson.dumps(old))
    assert rec.event == events.RunStarted(attempt=1, worker="w", host="h", pid=7, source_revision=None)
    assert events.RunStarted.schema_version == 2


def test_a_git_attempt_delivered_twice_fetches_maybe_twice_but_runs_once(
    client: Client, tmp_path: Path, procs: Procs, redis_url: str, connection: redis.Redis
):
    markers = tmp_path / "markers"
    work, bare = bare_repo(tmp_path / "git2")
    commit_file(work, "mark.sh", 'echo "$JOBLEDGER_RUN_ID:$JOBLEDGER_ATTEMPT" >> "$MARKERS"\n', "marker")
    push(work)
    raw = git_definition("twice", f"file://{bare}", "main", "mark.sh")
    raw["config"]["envVars"] = {"MARKERS": str(markers)}
    client.define(raw)
    run_id = client.submit("twice")
    assert client.lifecycle.queue(run_id, 1)
    enqueue_attempt(connection, "default", run_id, 1)
    enqueue_attempt(connection, "default", run_id, 1)  # the same attempt id, delivered again
    procs.worker(redis_url, burst=True).wait(timeout=60)
    assert markers.read_text().split() == [f"{run_id}:1"]
    run = client.get_run(run_id)
    assert run["status"] == "SUCCEEDED" and len(run["attempts"]) == 1
    assert len(client.events(aggregate=run_id, type="RunStarted")) == 1


def test_a_retry_runs_the_commit_the_first_attempt_ran_though_the_branch_moved(
    client: Client, tmp_path: Path, fleet: Procs
):
    work, bare = bare_repo(tmp_path / "moving")
    go = tmp_path / "go"
    script = (
        f'echo "code v1"\n[ "$JOBLEDGER_ATTEMPT" -ge 2 ] && exit 0\nwhile [ ! -e {go} ]; do sleep 0.05; done\nexit 1\n'
    )
    first = commit_file(work, "run.sh", script, "v1")
    push(work)
    client.define(git_definition("moving", f"file://{bare}", "main", retries=1))
    run_id = client.submit("moving")
    eventually(lambda: client.get_run(run_id)["status"] == "RUNNING", what="the first attempt to run")
    commit_file(work, "run.sh", 'echo "code v2"\n', "v2")  # the branch moves while the first attempt runs
    push(work)
    go.touch()
    run = client.wait(run_id, timeout=60)
    assert [a["status"] for a in run["attempts"]] == ["FAILED", "SUCCEEDED"]
    assert client.run_detail(run_id)["source_revisions"] == {"1": first, "2": first}
    assert [line for line in stdout_lines(client, run_id) if "v2" in line] == []

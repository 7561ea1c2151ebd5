"""Row 35: shell and argument injection through a definition's args, and hostile repository URLs.

``args`` is split like a shell would split words (``shlex.split``) and handed to the job as its argv:
never through a shell, so ``;``, ``$(...)``, backquotes and newlines are just characters of arguments.
A repository URL must be ``https://`` or ``file://`` with no credential in it: option-shaped
(``--upload-pack=...``), ``ext::`` and other transports are refused at define (``invalid_repo_url``),
without echoing the URL; git is also run with argument lists and ``--`` before the URL. ``file://``
stays allowed on purpose (a local mirror): it reaches only git repositories, and a path that is not one
fails the attempt ``SourceUnavailable``.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from queue_core import Client, InvalidInput
from tests.support.faults import assert_log_holds
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs

TOKEN = "ghp_TESTinjection0123456789abcdefAB"


def hostile_args(pwned: Path) -> list[str]:
    return [f"; touch {pwned}", f"$(touch {pwned})", f"`touch {pwned}`", "line one\nline two", "--output=/etc/x", "'"]


def test_hostile_args_reach_the_job_verbatim_as_its_argv_and_nothing_runs_them(
    client: Client, workspace: Path, fleet: Procs, tmp_path: Path
):
    pwned = tmp_path / "pwned"
    wanted = hostile_args(pwned)
    job_file(workspace, "argv.py", "import json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    client.define(definition("argv", "argv.py", kind="PYTHON", args=shlex.join(wanted[:-1])))
    defined = client.wait(client.submit("argv"), timeout=30)
    overridden = client.wait(client.submit("argv", args=shlex.join(wanted)), timeout=30)
    for run, expected in ((defined, wanted[:-1]), (overridden, wanted)):
        assert run["status"] == "SUCCEEDED"
        (printed,) = [line.line for line in client.logs(run["id"]) if line.stream == "stdout"]
        assert json.loads(printed) == expected
    job_file(workspace, "words.sh", 'for word in "$@"; do echo "[$word]"; done\n')
    client.define(definition("words", "words.sh", args=f"; touch {pwned} $(id)"))
    run = client.wait(client.submit("words"), timeout=30)
    assert [line.line for line in client.logs(run["id"])] == ["[;]", "[touch]", f"[{pwned}]", "[$(id)]"]
    assert not pwned.exists()
    assert_log_holds(client, [defined["id"], overridden["id"], run["id"]])


def test_args_that_do_not_split_are_refused_with_one_line(client: Client, workspace: Path, procs: Procs):
    client.define(definition("argv", job_file(workspace, "x.sh", "true\n")))
    before = client.store.length()
    with pytest.raises(InvalidInput, match="args"):
        client.submit("argv", args="unclosed 'quote")
    answer = procs.cli("submit", "argv", "--args", "unclosed 'quote")
    assert answer.returncode == 2 and answer.stderr.startswith("jobledger: --args: ") and answer.stderr.count("\n") == 1
    assert client.store.length() == before


def _git(url: str) -> dict:
    raw = definition("hostile", "run.sh")
    raw["config"]["source"] = {"type": "GIT", "sourceDef": {"repoUrl": url, "reference": "main"}}
    return raw


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("--upload-pack=touch {pwned}", "invalid_repo_url"),
        ("ext::sh -c touch% {pwned}", "invalid_repo_url"),
        ("http://127.0.0.1/repo.git", "invalid_repo_url"),
        ("ssh://git@example.com/repo.git", "invalid_repo_url"),
        (f"https://bot:{TOKEN}@example.com/repo.git", "carries a credential"),
    ],
    ids=["upload-pack", "ext", "http", "ssh", "credential"],
)
def test_a_hostile_or_credential_carrying_repo_url_is_refused_without_echoing_it(
    url: str, message: str, client: Client, tmp_path: Path
):
    pwned = tmp_path / "pwned"
    url = url.format(pwned=pwned)
    with pytest.raises(InvalidInput, match=message) as refused:
        client.define(_git(url))
    assert url not in str(refused.value) and TOKEN not in str(refused.value)
    assert client.store.length() == 0
    assert not pwned.exists()

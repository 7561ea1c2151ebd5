"""Row 38: garbage job definitions and submissions, through the API and the CLI.

Each is refused with one line naming the field (or the file), exit 2 on the CLI and ``InvalidInput`` in
Python, and nothing is appended (jobledger records no rejected submission at all, payload-free or not);
the process that refused it goes on serving. A 10 MB argument, text that is not Unicode (invalid UTF-8 in
a file, a lone surrogate from a JSON escape or a Python caller), ``numRetries`` of -1 or 10**9, a timeout of
0 or below, an unknown source type are among them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from queue_core import Client, InvalidInput
from tests.support.faults import assert_log_holds
from tests.support.jobs import definition, job_file, write_definition_file
from tests.support.processes import Procs

Mutation = Callable[[dict[str, Any]], Any]
GIT_WITH_TOKEN = {"type": "GIT", "sourceDef": {"repoUrl": "https://example.com/r.git", "token": "ghp_abc"}}


def top(**changes: Any) -> Mutation:
    return lambda d: d.update(changes)


def config(**changes: Any) -> Mutation:
    return lambda d: d["config"].update(changes)


def retry(**changes: Any) -> Mutation:
    return lambda d: d["config"]["retryStrategy"].update(changes)


BAD_DEFINITIONS: list[tuple[str, str, Mutation]] = [
    ("unknown job type", "config.type", config(type="JAVA")),
    ("unknown source type", "config.source.type", lambda d: d["config"]["source"].update(type="FTP")),
    ("missing sourceLocation", "config.sourceLocation", lambda d: d["config"].pop("sourceLocation")),
    ("negative numRetries", "config.retryStrategy.numRetries", retry(numRetries=-1)),
    ("huge numRetries", "config.retryStrategy.numRetries", retry(numRetries=10**9)),
    ("timeout 0", "config.timeout", config(timeout=0)),
    ("negative timeout", "config.timeout", config(timeout=-5)),
    ("empty name", "name", top(name="")),
    ("name starting with -", "name", top(name="-x")),
    ("name with a space", "name", top(name="a b")),
    ("name of 129 characters", "name", top(name="a" * 129)),
    ("non-ASCII name", "name", top(name="é")),
    ("literal secret", "config.source.sourceDef.token", config(source=GIT_WITH_TOKEN)),
    ("unknown config field", "config.foo", config(foo=1)),
    ("a lone surrogate in args", "config.args", config(args="ok \udcff")),
    ("a lone surrogate in a variable", "config.envVars.MODE", config(envVars={"MODE": "\udcff"})),
]


def bad(mutate: Mutation) -> dict[str, Any]:
    raw = copy.deepcopy(definition("good", "run.sh"))
    mutate(raw)
    return raw


@pytest.mark.parametrize(("field", "mutate"), [pytest.param(f, m, id=i) for i, f, m in BAD_DEFINITIONS])
def test_a_bad_definition_file_gets_a_one_line_error_naming_the_field_and_appends_nothing(
    procs: Procs, client: Client, tmp_path: Path, field: str, mutate: Mutation
):
    before = client.store.length()
    result = procs.cli("define", str(write_definition_file(tmp_path, bad(mutate))))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"jobledger: {field}: ")
    assert "ghp_abc" not in result.stderr + result.stdout
    assert client.store.length() == before


@pytest.mark.parametrize(("field", "mutate"), [pytest.param(f, m, id=i) for i, f, m in BAD_DEFINITIONS])
def test_a_bad_definition_is_refused_by_the_api_with_the_field_named(client: Client, field: str, mutate: Mutation):
    with pytest.raises(InvalidInput) as refused:
        client.define(bad(mutate))
    assert refused.value.field == field
    assert client.store.length() == 0
    client.define(definition("good", "run.sh"))  # the same client goes on
    assert_log_holds(client, ended=False)


BAD_FILES = [
    ("malformed JSON", ".json", b'{"name": "x",', "is not valid JSON"),
    ("malformed YAML", ".yaml", b"name: [unclosed\nconfig: {\n", "is not valid YAML"),
    ("invalid UTF-8", ".yaml", b"name: \xff\xfe\n", "is not valid UTF-8"),
    ("deeply nested YAML", ".yaml", b"[" * 5000 + b"]" * 5000, "def.yaml"),
    ("a directory", ".json", None, "def.json"),
]


@pytest.mark.parametrize(("suffix", "content", "says"), [pytest.param(*c[1:], id=c[0]) for c in BAD_FILES])
def test_an_unreadable_definition_file_gets_a_one_line_error_naming_the_file_and_appends_nothing(
    procs: Procs, client: Client, tmp_path: Path, suffix: str, content: bytes | None, says: str
):
    path = tmp_path / f"def{suffix}"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    before = client.store.length()
    result = procs.cli("define", str(path))
    assert (result.returncode, "Traceback" in result.stderr) == (2, False), result.stderr[-2000:]
    [line] = result.stderr.splitlines()
    assert line.startswith(f"jobledger: {path}") and says in line
    assert client.store.length() == before


def test_ten_megabytes_of_args_are_refused_by_the_api_and_their_file_by_the_cli(
    client: Client, procs: Procs, tmp_path: Path
):
    raw = definition("huge", "run.sh", args="x" * 10_000_000)
    with pytest.raises(InvalidInput) as refused:
        client.define(raw)
    assert refused.value.field == "config.args"
    answer = procs.cli("define", str(write_definition_file(tmp_path, raw)))
    assert answer.returncode == 2 and answer.stderr.endswith("is larger than 4194304 bytes\n")
    assert answer.stderr.count("\n") == 1
    assert client.store.length() == 0


def test_a_json_escape_of_a_lone_surrogate_is_refused_naming_the_field(client: Client, procs: Procs, tmp_path: Path):
    path = tmp_path / "def.json"
    path.write_text(json.dumps(definition("good", "run.sh")).replace('"good"', '"g\\udcffd"'))
    answer = procs.cli("define", str(path))
    assert (answer.returncode, answer.stderr) == (2, "jobledger: name: is not valid Unicode text (a lone surrogate)\n")
    assert client.store.length() == 0


BAD_SUBMISSIONS = [
    ("10 MB of args", "args", {"args": "x" * 10_000_000}),
    ("args that do not split", "args", {"args": "it's"}),
    ("a lone surrogate in args", "args", {"args": "\udcff"}),
    ("a bad variable name", "env", {"env": {"1A": "x"}}),
    ("a timeout of 0", "timeout", {"timeout": 0}),
    ("a negative timeout", "timeout", {"timeout": -1}),
    ("an empty idempotency key", "idempotency-key", {"idempotency_key": ""}),
    ("a lone surrogate in an idempotency key", "idempotency-key", {"idempotency_key": "\udcff"}),
    ("a logical date that is not one", "logical-date", {"logical_date": "yesterday"}),
]


@pytest.mark.parametrize(("field", "override"), [pytest.param(f, o, id=i) for i, f, o in BAD_SUBMISSIONS])
def test_a_garbage_submission_is_refused_naming_the_field_and_no_run_is_submitted(
    client: Client, workspace: Path, field: str, override: dict[str, Any]
):
    client.define(definition("target", job_file(workspace, "x.sh", "true\n")))
    before = client.store.length()
    with pytest.raises(InvalidInput) as refused:
        client.submit("target", **override)
    assert str(refused.value).startswith(f"{field}") or refused.value.field == field
    assert client.store.length() == before and client.events(type="RunSubmitted") == []
    assert client.get_run(client.submit("target"))["status"] == "PENDING"  # the same client goes on
    assert_log_holds(client, ended=False)


def test_the_cli_refuses_a_garbage_submission_with_one_line(client: Client, workspace: Path, procs: Procs):
    client.define(definition("target", job_file(workspace, "x.sh", "true\n")))
    for args in (["--timeout", "-1"], ["--args", "it's"], ["--env", "1A=x"]):
        answer = procs.cli("submit", "target", *args)
        assert answer.returncode == 2, answer.stderr
        assert answer.stderr.startswith("jobledger: ") and answer.stderr.count("\n") == 1
        assert "Traceback" not in answer.stderr
    assert client.events(type="RunSubmitted") == []

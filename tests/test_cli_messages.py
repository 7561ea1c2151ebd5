"""Messages raised below the faces name fields, not flags or commands; the CLI adds its flags and commands."""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from queue_core import Client
from queue_core.cli.messages import one_line
from queue_core.errors import InvalidInput, NotFound, Remedy
from tests.support.jobs import definition
from tests.support.processes import Procs

ROOT = Path(__file__).resolve().parent.parent
CORE = [ROOT / "queue_core" / "specs", ROOT / "queue_core" / "domain", ROOT / "workers"]
FACE_WORDS = re.compile(r"`jobledger |(?<![\w-])--[a-z]")


def _raised_texts(path: Path) -> list[tuple[int, str]]:
    """Every string literal inside a ``raise`` statement of ``path``, with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Raise) and node.exc is not None:
            for part in ast.walk(node.exc):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    found.append((part.lineno, part.value))
    return found


def test_no_message_raised_in_specs_domain_or_workers_names_a_command_or_a_flag():
    said = [
        f"{path.relative_to(ROOT)}:{line}: {text}"
        for folder in CORE
        for path in sorted(folder.rglob("*.py"))
        for line, text in _raised_texts(path)
        if FACE_WORDS.search(text)
    ]
    assert said == []


def _args(**options: str) -> argparse.Namespace:
    return argparse.Namespace(cli_options=options, run="wr-1")


def test_a_field_the_command_took_as_an_option_is_shown_as_that_option():
    error = InvalidInput("'bad name' is not a valid name", "password_secret")
    assert one_line(error, _args(password_secret="--password-secret")) == (
        "--password-secret: 'bad name' is not a valid name"
    )
    assert one_line(error, _args()) == "password_secret: 'bad name' is not a valid name"
    spelled = InvalidInput("must be 1 to 200 characters", "idempotency-key")
    assert one_line(spelled, _args(idempotency_key="--idempotency-key")).startswith("--idempotency-key: ")


def test_a_remedy_becomes_the_command_that_applies_it():
    upstream = InvalidInput("task 'c' cannot rerun", remedy=Remedy.RERUN_DOWNSTREAM, subject="b")
    assert one_line(upstream, _args()) == (
        "task 'c' cannot rerun; `jobledger workflow rerun wr-1 b --downstream`, or `jobledger workflow repair wr-1`"
    )
    missing = NotFound("no depot named 'lake'", remedy=Remedy.ADD_DEPOT, subject="lake")
    assert one_line(missing, _args()) == "no depot named 'lake'; add it with `jobledger depot add lake --type ...`"
    assert one_line(NotFound("no run with id x"), _args()) == "no run with id x"


def test_the_cli_still_says_how_to_store_a_secret_and_which_flag_names_it(client: Client, procs: Procs):
    dsn = "host=localhost dbname=warehouse password=hunter2"
    answer = procs.cli("depot", "add", "pg", "--type", "postgres", "--dsn", dsn)
    assert answer.returncode == 2 and "hunter2" not in answer.stderr
    [line] = answer.stderr.splitlines()
    assert line == (
        "jobledger: --dsn: must not hold a password: store it as a secret and name that secret in password_secret; "
        "store it with `jobledger secret set NAME` and give --password-secret NAME"
    )
    with pytest.raises(InvalidInput) as refused:  # the same refusal through the API names the field alone
        client.add_depot("pg", "postgres", dsn=dsn)
    assert refused.value.field == "dsn" and "jobledger" not in str(refused.value)
    named = procs.cli("depot", "add", "pg", "--type", "postgres", "--dsn", "dbname=w", "--password-secret", "a b")
    assert named.returncode == 2 and named.stderr.startswith("jobledger: --password-secret: 'a b' is not a valid name")


def test_the_cli_says_how_to_add_a_missing_depot(client: Client, procs: Procs, tmp_path: Path):
    raw = definition("etl", "etl.sql")
    raw["config"] = {
        "type": "SQL",
        "pipeline": {
            "inputs": [{"name": "city", "dataset": "dataos://nowhere:none/city"}],
            "steps": [{"sequence": [{"name": "s", "sql": "SELECT * FROM city"}]}],
        },
    }
    with pytest.raises(InvalidInput, match=r"no depot named 'nowhere'$"):
        client.define(raw)
    path = tmp_path / "etl.json"
    path.write_text(json.dumps(raw))
    answer = procs.cli("define", str(path))
    assert answer.returncode == 2
    assert answer.stderr == (
        "jobledger: config.pipeline.inputs[0].dataset: no depot named 'nowhere'; "
        "add it with `jobledger depot add nowhere --type ...`\n"
    )


def test_a_reader_that_stops_reading_ends_the_command_quietly_with_0(client: Client, procs: Procs):
    """``jobledger events | head -n 1``: the pipe closes before the command has written everything."""
    client.create_cluster("piped", workers=1)
    reader_gone = subprocess.Popen(
        [sys.executable, "-m", "queue_core", "events"],
        env=procs.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert reader_gone.stdout is not None
    reader_gone.stdout.close()  # as `head` does once it has its line
    _, err = reader_gone.communicate(timeout=60)
    assert (reader_gone.returncode, err) == (0, b"")

"""Every CLI command fed generated hostile arguments and files: a refusal is one printable line on stderr with exit
code 2 (4: the store is away) and appends nothing; nothing ever ends in a traceback or a hang."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from queue_core import Client
from queue_core.cli.main import main
from tests.support.fuzzing import EXAMPLES, SEED
from tests.test_hostile_inputs import ALIAS_BOMB

# Commands that do not block (no --follow, no --wait, no servers) and cannot destroy the store (no trim,
# restore or store stop); ``{v}`` is a generated value, ``{f}`` a generated file. Definition ``d`` exists.
TEMPLATES = [
    ["define", "{f}"],
    ["workflow", "apply", "{f}"],
    ["workflow", "run", "{v}", "--dry-run", "--logical-date", "{v}"],
    ["workflow", "status", "{v}"],
    ["workflow", "graph", "{v}"],
    ["workflow", "run", "{v}"],
    ["workflow", "runs", "--limit", "{v}"],
    ["definitions", "show", "{v}"],
    ["definitions", "diff", "d", "{v}", "{v}"],
    ["cluster", "create", "{v}"],
    ["secret", "set", "{v}"],
    ["secret", "delete", "{v}"],
    ["resource", "add", "{v}", "{f}"],
    ["resource", "show", "{v}"],
    ["depot", "add", "{v}", "--type", "local", "--path", "{v}"],
    ["depot", "add", "p", "--type", "postgres", "--dsn", "{v}"],
    ["depot", "show", "{v}"],
    ["sql", "{v}"],
    ["sql", "select 1", "--input", "{v}"],
    ["lineage", "{v}"],
    ["submit", "{v}"],
    ["submit", "d", "--args", "{v}"],
    ["submit", "d", "--env", "{v}"],
    ["submit", "d", "--timeout", "{v}"],
    ["submit", "d", "--logical-date", "{v}"],
    ["submit", "d", "--idempotency-key", "{v}"],
    ["submit", "d", "--cluster", "{v}"],
    ["submit", "d", "--version", "{v}"],
    ["submit", "d", "--ref", "{v}"],
    ["submit", "d", "--idempotency-key", "held", "--args", "{v}"],
    ["status", "{v}"],
    ["status", "{v}", "--as-of", "{v}"],
    ["runs", "--as-of", "{v}"],
    ["runs", "--status", "{v}", "--limit", "{v}"],
    ["cancel", "{v}"],
    ["logs", "{v}"],
    ["events", "--since", "{v}"],
    ["events", "--aggregate", "{v}", "--type", "{v}", "--limit", "{v}"],
    ["export", "{f}", "--since", "{v}"],
    ["import", "{f}"],
    ["verify", "{f}"],
    ["check", "--json"],
    ["schedule", "create", "{v}", "--definition", "d", "--cron", "{v}"],
    ["schedule", "create", "s", "--definition", "d", "--at", "{v}", "--timezone", "{v}"],
    ["schedule", "create", "s", "--definition", "d", "--cron", "@daily", "--end", "{v}"],
    ["schedule", "show", "{v}"],
]

HOSTILE_TEXT = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "-",
            "--",
            "9" * 5000,
            "-" + "9" * 40,
            "1e309",
            "nan",
            "99999999999999999999999999999-0",
            "18446744073709551616-0",
            "1-",
            "-1",
            "9999-12-31T23:59:59-12:00",
            "0001-01-01T00:00:00+14:00",
            "2026-02-30T00:00:00Z",
            "Pacific/Pago_Pago",
            "../../etc/passwd",
            "/dev/zero",
            "a\nb",
            "\x1b[2J\x1b[31mred",
            "\x00",
            "x" * 70_000,
            "名前",
            "\udcff\udcfe",
            "K=V",
            "=",
            "* * * * * *",
            "@never",
            "0 0 30 2 *",
            "${logical_date:%Q}",
            "d@0",
            "d@99999999999",
        ]
    ),
    st.text(max_size=40),
    st.integers(-(10**30), 10**30).map(str),
)
FILES = st.sampled_from(
    ["missing", "fifo", "dir", "zero", "bomb", "deep", "binary", "empty", "loop", "huge", "json-array", "nul"]
)


def _file(kind: str, folder: Path) -> str:
    """A hostile input file of ``kind`` in ``folder`` (created once)."""
    path = folder / kind
    if kind == "zero":
        return "/dev/zero"
    if path.exists() or path.is_symlink() or kind == "missing":
        return str(path)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
    elif kind == "loop":
        path.symlink_to(path)
    else:
        content = {
            "bomb": ALIAS_BOMB.encode(),
            "deep": b"[" * 5000 + b"]" * 5000,
            "binary": bytes(range(256)) * 4,
            "empty": b"",
            "huge": b"a: " + b"x" * (5 * 1024 * 1024) + b"\n",
            "json-array": b"[1, 2, 3]",
            "nul": b"name: x\x00\n",
        }[kind]
        path.write_bytes(content)
    return str(path)


@pytest.fixture
def cli_env(client: Client, workspace: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Client:
    """The CLI in this process against the test's store, with definition ``d`` defined."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    (workspace / "d.sh").write_text("true\n")
    client.define(
        {
            "name": "d",
            "config": {
                "type": "SHELL",
                "source": {"type": "WORKSPACE", "sourceDef": {"path": "."}},
                "sourceLocation": "d.sh",
            },
            "cluster": {"name": "default"},
        }
    )
    return client


def _run(argv: list[str], stdin: bytes) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    fake_stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8", errors="surrogateescape")
    old_stdin = sys.stdin
    sys.stdin = fake_stdin
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's own refusals
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue()


@seed(SEED)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    template=st.sampled_from(TEMPLATES),
    values=st.lists(HOSTILE_TEXT, min_size=3, max_size=3),
    file=FILES,
    stdin=st.binary(max_size=64),
)
def test_hostile_arguments_are_refused_in_one_line_and_append_nothing(
    cli_env: Client, tmp_path: Path, template: list[str], values: list[str], file: str, stdin: bytes
):
    supply = iter(values)
    argv = [next(supply) if part == "{v}" else _file(file, tmp_path) if part == "{f}" else part for part in template]
    log = cli_env.store.keys.log
    before = cli_env.redis.xlen(log)
    code, _, err = _run(argv, stdin)
    assert code in (0, 1, 2, 3, 4), (argv, code, err)
    lines = err.splitlines()
    # 2 and 4 are refusals: one line says why. 1 and 3 are findings (a broken chain, a run that failed, a
    # wait that ran out), said on stdout; stderr then holds at most one line.
    assert len(lines) == (1 if code in (2, 4) else len(lines[:1])), (argv, code, err)
    assert all(line.isprintable() for line in lines), (argv, err)
    if code == 2:
        assert cli_env.redis.xlen(log) == before, (argv, err)

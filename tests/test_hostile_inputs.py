"""Hostile inputs found by hand: each is refused in one line with exit code 2, and nothing is appended."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from queue_core import Client
from queue_core.eventlog.store import EventStore
from tests.support.processes import Procs

DEFINITION = (
    "name: d\nconfig:\n  source: {{type: WORKSPACE, sourceDef: {{path: .}}}}\n"
    "  type: SHELL\n  sourceLocation: a.sh\n{extra}"
)

# Billion laughs: nine aliases of nine, eight levels deep (43 million strings once expanded).
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefg", "bcdefgh", strict=True)
)


def _refused(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """The one line the CLI refused with, after checking it is one printable line, exit code 2."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    line = result.stderr.rstrip("\n")
    assert "\n" not in line and line.isprintable(), repr(line)
    for word in words:
        assert word in line, line
    return line


@pytest.fixture
def log_length(store: EventStore):
    """The number of entries in the log, to see that a refusal appended nothing."""
    return lambda: store.redis.xlen(store.keys.log)


def test_a_yaml_alias_bomb_is_refused_by_define_and_workflow_apply(tmp_path: Path, procs: Procs, log_length):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(ALIAS_BOMB)
    before = log_length()
    _refused(procs.cli("define", str(bomb), timeout=30), "expands to more than")
    _refused(procs.cli("workflow", "apply", str(bomb), timeout=30), "expands to more than")
    assert log_length() == before


def test_a_document_nested_past_the_limit_is_refused(tmp_path: Path, procs: Procs):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 300 + "]" * 300)
    _refused(procs.cli("define", str(deep)), "nests deeper than")
    deep_yaml = tmp_path / "deep.yaml"
    deep_yaml.write_text("a: " + "[" * 300 + "]" * 300 + "\n")
    _refused(procs.cli("define", str(deep_yaml)), "nests deeper than")


@pytest.mark.parametrize("make", ["device", "fifo"])
def test_a_device_or_a_fifo_is_refused_without_blocking(tmp_path: Path, procs: Procs, make: str):
    if make == "fifo":
        path = tmp_path / "pipe.yaml"
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    _refused(procs.cli("define", str(path), timeout=30), "is not a regular file")


def test_unknown_keys_with_control_characters_are_shown_escaped(tmp_path: Path, procs: Procs):
    path = tmp_path / "escape.yaml"
    path.write_text('"bad\\nkey\\u001b[31m": 1\n' + DEFINITION.format(extra=""))
    line = _refused(procs.cli("define", str(path)), "unknown field")
    assert "\x1b" not in line and "\\x1b" in line


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_number_of_five_thousand_digits_is_refused(tmp_path: Path, procs: Procs, suffix: str):
    digits = "9" * 5000
    path = tmp_path / f"huge{suffix}"
    if suffix == ".json":
        # json.dumps cannot write a number this long either: put it in by hand.
        path.write_text(json.dumps({"name": "d", "config": {"retryStrategy": {"numRetries": 0}}}).replace("0", digits))
    else:
        path.write_text(DEFINITION.format(extra=f"  retryStrategy: {{numRetries: {digits}}}\n"))
    _refused(procs.cli("define", str(path)), "number too long")


@pytest.mark.parametrize(("command", "flag"), [(("runs",), "--as-of"), (("events",), "--since")])
def test_positions_past_the_largest_are_refused(procs: Procs, command: tuple[str, ...], flag: str):
    _refused(procs.cli(*command, flag, "9" * 40 + "-0"), "past the largest log position")


def _define(client: Client, workspace: Path) -> None:
    (workspace / "a.sh").write_text("true\n")
    (workspace / "d.yaml").write_text(DEFINITION.format(extra="") + "cluster: {name: default}\n")
    client.define_file(workspace / "d.yaml")


def test_schedule_create_with_an_empty_cron_is_refused(client: Client, workspace: Path, procs: Procs, log_length):
    _define(client, workspace)
    before = log_length()
    _refused(procs.cli("schedule", "create", "s", "--definition", "d", "--cron", ""), "--cron", "cron expression")
    assert log_length() == before


def test_at_the_end_of_time_in_a_far_west_zone_is_refused(client: Client, workspace: Path, procs: Procs):
    _define(client, workspace)
    args = ("--at", "9999-12-31T23:59:59", "--timezone", "Pacific/Pago_Pago")
    _refused(procs.cli("schedule", "create", "s", "--definition", "d", *args), "--at", "outside the years")


def test_a_secret_that_is_not_utf8_is_refused(procs: Procs, log_length):
    before = log_length()
    result = subprocess.run(
        [sys.executable, "-m", "queue_core", "secret", "set", "binary"],
        env=procs.env,
        input=b"\xff\xfe token",
        capture_output=True,
        timeout=60,
        check=False,
    )
    text = subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())
    _refused(text, "not UTF-8")
    assert log_length() == before


def test_define_of_a_symlink_to_a_system_file_echoes_none_of_it(tmp_path: Path, procs: Procs):
    link = tmp_path / "innocent.yaml"
    link.symlink_to("/etc/passwd")
    line = _refused(procs.cli("define", str(link)))
    assert "root:" not in line and "/bin/" not in line
    as_json = tmp_path / "innocent.json"
    as_json.symlink_to("/etc/passwd")
    line = _refused(procs.cli("define", str(as_json)))
    assert "root:" not in line and "/bin/" not in line


def test_export_since_the_least_position_is_the_whole_log(tmp_path: Path, procs: Procs, log_length):
    # Found by the CLI fuzzer: "--since 0" asked Redis for the entry before 0-0, a range it refuses.
    done = procs.cli("export", str(tmp_path / "all.jsonl.gz"), "--since", "0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"exported {log_length()} events")


@pytest.mark.parametrize("make", ["fifo", "folder"])
def test_an_export_onto_a_fifo_or_a_folder_is_refused_and_leaves_it_as_it_was(tmp_path: Path, procs: Procs, make: str):
    path = tmp_path / "target"
    if make == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    _refused(procs.cli("export", str(path), timeout=30), "is not a regular file")
    assert path.is_fifo() if make == "fifo" else path.is_dir()  # a device as root would have been replaced too

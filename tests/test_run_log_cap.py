"""A run keeps its last 100,000 lines; what it dropped is said, not silently lost."""

from __future__ import annotations

from pathlib import Path

from queue_core import Client
from queue_core.eventlog.runlog import MAX_LINE_CHARS, MAX_LINES_PER_RUN, RunLog
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs


def test_lines_past_the_cap_leave_a_marker_saying_how_many_were_dropped(client: Client):
    log = RunLog(client.redis, client.store.keys)
    total = MAX_LINES_PER_RUN + 25_000
    for start in range(0, total, 5_000):
        log.write("r1", 1, [("2026-12-06T00:00:00Z", "stdout", str(n)) for n in range(start, start + 5_000)])
    lines = list(log.iter_all("r1"))
    marker, kept = lines[0], lines[1:]
    assert marker.stream == "jobledger"
    assert log.dropped("r1") == total - len(kept) > 0
    assert f"{total - len(kept):,} earlier lines were dropped" in marker.line
    assert kept[-1].line == str(total - 1)


def test_a_log_under_the_cap_has_no_marker(client: Client):
    log = RunLog(client.redis, client.store.keys)
    log.write("r2", 1, [("2026-12-06T00:00:00Z", "stdout", "only")])
    assert [x.line for x in log.iter_all("r2")] == ["only"]
    assert log.dropped("never-written") == 0


def test_a_line_past_the_length_cap_says_it_was_cut(client: Client):
    log = RunLog(client.redis, client.store.keys)
    log.write("r3", 1, [("2026-12-06T00:00:00Z", "stdout", "x" * (MAX_LINE_CHARS + 10))])
    (line,) = log.iter_all("r3")
    assert line.line.endswith(f"[line cut at {MAX_LINE_CHARS:,} characters]")


def test_jobledger_logs_of_a_job_that_printed_past_the_cap_starts_with_the_marker(
    client: Client, workspace: Path, fleet: Procs
):
    count = MAX_LINES_PER_RUN + 3_000
    client.define(definition("loud", job_file(workspace, "loud.sh", f"seq 1 {count}\n")))
    run = client.submit("loud")
    assert fleet.cli("wait", run).returncode == 0
    result = fleet.cli("logs", run)
    first, *rest = result.stdout.splitlines()
    assert "earlier lines were dropped" in first
    assert rest[-1].endswith(f"stdout: {count}")

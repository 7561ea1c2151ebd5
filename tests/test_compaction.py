"""Compaction: ended runs leave Redis for the cold tier, and every command answers for them as before."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from queue_core import Client, Settings
from queue_core.domain.runs import TERMINAL
from queue_core.errors import ColdAggregate
from queue_core.eventlog.archive import history, trim_point
from queue_core.eventlog.cold import TABLES
from queue_core.eventlog.events import NewEvent, RunCancelled
from scheduler.maintenance import Maintenance
from tests.support.console_http import request
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs
from tests.support.redis_server import RedisServer
from tests.support.servers import start_server
from tests.support.workload import cli_text, mixed_workload, schedule_workload, workflow_workload

READS = (
    ("runs", "--json"),
    ("runs", "--status", "FAILED", "--json"),
    ("runs", "--definition", "keep", "--json"),
    ("runs", "--status", "SUCCEEDED", "--definition", "keep", "--json"),
)


def _answers(url: str, runs: list[str], as_of: str) -> dict[tuple[str, ...], str]:
    """What the read commands print, for the listings and for each run (now and at an earlier point)."""
    commands = [*READS]
    for run in runs:
        commands += [("status", run, "--json"), ("logs", run), ("status", run, "--as-of", as_of, "--json")]
        commands += [("events", "--aggregate", run, "--json")]
    return {command: cli_text(url, *command) for command in commands}


def _held_bytes(client: Client) -> int:
    """What jobledger's keys hold in Redis (``MEMORY USAGE``, every element counted)."""
    connection = client.store.redis
    keys = connection.scan_iter(match=client.store.keys.everything, count=1000)
    return sum(int(connection.memory_usage(key, samples=0) or 0) for key in keys)


def _ended_with_output(client: Client) -> tuple[list[str], list[str], str]:
    runs = mixed_workload(client, rounds=2)
    as_of = client.store.last_position()
    ended = [run for run in runs if client.get_run(run)["status"] in TERMINAL]
    for n, run in enumerate(ended):  # what a worker writes while the attempt runs
        client.run_log.write(run, 1, [("2026-12-06T10:00:00Z", "stdout", f"line {i} of {run}") for i in range(n + 1)])
    return runs, ended, as_of


def test_compacted_runs_answer_every_command_as_they_did_while_hot_and_leave_redis(
    client: Client, procs: Procs, redis_url: str
):
    runs, ended, as_of = _ended_with_output(client)
    hot = _answers(redis_url, runs, as_of)
    before, logged = _held_bytes(client), client.store.length()

    done = procs.cli("compact", "--window", "0", "--segment-size", "5")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"compacted {len(ended)} runs (")
    trimmed = logged - client.store.length()
    assert trimmed >= logged - 5 and f"trimmed {trimmed} log entries older than the window" in done.stdout

    assert _held_bytes(client) < before / 2
    keys = client.store.keys
    for run in ended:
        assert not client.store.redis.exists(keys.aggregate(run), keys.run_log(run))
        assert not client.store.redis.hexists(keys.read_model("live", "runs"), run)
        assert client.read_models.get("runs", run) is not None  # read from the cold tier
    still_hot = set(runs) - set(ended)  # not ended: still in Redis
    assert all(client.store.redis.hexists(keys.read_model("live", "runs"), run) for run in still_hot)
    assert _answers(redis_url, runs, as_of) == hot
    assert procs.cli("replay", "--verify").stdout.splitlines()[-1] == "identical"
    checked = procs.cli("check")
    assert checked.returncode == 0, checked.stdout

    again = procs.cli("compact", "--window", "0")
    assert again.stdout.startswith("compacted 0 runs (")


def test_a_late_event_for_a_compacted_run_is_refused_and_a_cancel_says_it_ended(client: Client, procs: Procs):
    _runs, ended, _ = _ended_with_output(client)
    assert procs.cli("compact", "--window", "0").returncode == 0
    run = ended[0]
    length = client.store.length()
    with pytest.raises(ColdAggregate, match=f"{run} ended and was moved to the cold tier"):
        client.store.append([NewEvent(run, RunCancelled())], {run: client.store.version(run)})
    refused = procs.cli("cancel", run)
    assert refused.returncode == 2 and "already ended" in refused.stderr
    assert client.store.length() == length


def test_the_keep_cap_and_the_window_choose_what_moves(client: Client, procs: Procs):
    _runs, ended, _ = _ended_with_output(client)
    assert procs.cli("compact", "--window", "7d").stdout.startswith("compacted 0 runs (")
    kept = procs.cli("compact", "--window", "7d", "--keep", "4")
    assert kept.stdout.startswith(f"compacted {len(ended) - 4} runs (")
    held = client.store.keys.read_model("live", "runs")
    assert sum(1 for run in ended if client.store.redis.hexists(held, run)) == 4
    bad = procs.cli("compact", "--window", "a week")
    assert bad.returncode == 2 and "--window: 'a week' is not a duration like 90s" in bad.stderr


def test_a_damaged_cold_file_is_named_by_check_and_a_restore_from_the_archive_rebuilds_the_same_state(
    client: Client, procs: Procs, redis_url: str, fresh: RedisServer
):
    runs, _ended, _ = _ended_with_output(client)
    assert procs.cli("compact", "--window", "0", "--segment-size", "5").returncode == 0
    client.create_cluster("after")  # the newest entry, which no archive holds: after every state compared
    point = trim_point(client.store)
    assert point is not None and point[1].folder is not None
    folder = point[1].folder
    assert procs.cli("archive", "--folder", folder, "--segment-size", "1").returncode == 0
    shown = {run: cli_text(redis_url, "status", run, "--json") for run in runs}

    restored = cli_text(fresh.url, "restore", "--folder", folder)
    assert f"restored {sum(1 for _ in history(client.store)) - 1} events" in restored
    assert {run: cli_text(fresh.url, "status", run, "--json") for run in runs} == shown

    cold = client.store.cold.folder()
    assert cold is not None
    damaged = sorted(cold.glob("*-events.parquet"))[0]
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\0")
    checked = procs.cli("check")
    assert checked.returncode == 1
    assert f"cold file {damaged.name} is damaged: its SHA-256 does not match the manifest" in checked.stdout


@pytest.fixture
def console(procs: Procs) -> str:
    env = {k: v for k, v in procs.env.items() if not k.startswith("JOBLEDGER_CONSOLE_TOKEN")}
    return start_server(procs, "console", name="console", env=env)[1]


def _pages(console: str, query: str) -> list[list[str]]:
    """The run ids of each page, following "older" from the first, and "newer" back from the second."""
    pages, path = [], f"/runs?{query}"
    while path:
        body = request(console, path).body
        pages.append(re.findall(r'data-run="([0-9a-f-]{36})"', body))
        older = re.search(r'id="older" href="([^"]+)"', body)
        path = older.group(1).replace("&amp;", "&") if older else None
    return pages


def test_the_consoles_pages_interleave_hot_and_cold_runs_as_before(
    client: Client, workspace: Path, procs: Procs, console: str
):
    client.define(definition("a", job_file(workspace, "a.sh", "true\n")))
    client.define(definition("b", job_file(workspace, "b.sh", "true\n")))
    ids = [client.submit("a" if i % 3 else "b") for i in range(60)]
    for run_id in ids[::4]:
        client.cancel(run_id)
    queries = ("size=7", "status=CANCELLED&size=4", "definition=b&size=5", "status=CANCELLED&definition=b&size=2")
    hot = {query: _pages(console, query) for query in queries}
    cold_run = request(console, f"/runs/{ids[0]}").body
    assert procs.cli("compact", "--window", "0").stdout.startswith(f"compacted {len(ids[::4])} runs (")
    assert {query: _pages(console, query) for query in queries} == hot
    assert sum(len(page) for page in hot["size=7"]) == len(ids)
    again = request(console, f"/runs/{ids[0]}")
    assert again.status == 200 and _timeless(again.body) == _timeless(cold_run)


def _timeless(page: str) -> str:
    """A page without its relative times ("just now" becomes "6 s ago" while the test runs)."""
    return re.sub(r"(<time [^>]*>)[^<]*</time>", r"\1</time>", page)


def test_the_leading_dispatchers_pass_compacts_by_the_settings_window(client: Client, settings: Settings):
    _runs, ended, _ = _ended_with_output(client)
    connection = client.store.redis
    hot = Maintenance(replace(settings, hot_window="7d"), connection, client.store, "d1")
    hot.compact()
    assert not connection.scard(client.store.keys.compacted)
    Maintenance(replace(settings, hot_window="0s"), connection, client.store, "d1").compact()
    assert connection.scard(client.store.keys.compacted) == len(ended)


def test_cold_batches_merge_into_one_and_the_merged_files_go_after_the_grace(
    client: Client, procs: Procs, redis_url: str
):
    runs, _ended, as_of = _ended_with_output(client)
    for keep in (6, 3, 0):  # three compactions, three batches
        assert procs.cli("compact", "--window", "7d", "--keep", str(keep)).returncode == 0
    cold = client.store.cold
    assert len(cold.batches()) == 3
    folder = cold.folder()
    assert folder is not None
    before = _answers(redis_url, runs, as_of)
    merged = cold.merge(at_least=3, grace_seconds=0)
    assert merged is not None and list(cold.batches()) == [merged]
    assert len(list(folder.glob("*.parquet"))) == 4 * 3  # the merged files stay until the next pass
    assert _answers(redis_url, runs, as_of) == before
    assert cold.merge(at_least=3, grace_seconds=0) is None  # one batch: nothing to merge, the old files go
    assert sorted(p.name for p in folder.glob("*.parquet")) == sorted(f"{merged}-{t}.parquet" for t in TABLES)
    assert _answers(redis_url, runs, as_of) == before
    checked = procs.cli("check")
    assert checked.returncode == 0, checked.stdout
    assert procs.cli("replay", "--verify").stdout.splitlines()[-1] == "identical"


def test_a_schedules_history_shows_the_status_of_its_compacted_runs(client: Client, procs: Procs, redis_url: str):
    mixed_workload(client)
    workflow_workload(client)
    schedule_workload(client)
    fired = [r["id"] for r in client.list_runs(definition="keep", limit=None) if r["status"] == "PENDING"]
    for run in fired:
        client.cancel(run)
    shown = cli_text(redis_url, "schedule", "show", "every-10", "--json")
    assert '"run_status": "CANCELLED"' in shown
    assert procs.cli("compact", "--window", "0").returncode == 0
    assert client.store.redis.smismember(client.store.keys.compacted, fired) == [1] * len(fired)
    assert cli_text(redis_url, "schedule", "show", "every-10", "--json") == shown

"""Random histories of runs (every way a run can go, with and without output), compacted at random points with a
random cap on the ended runs kept hot: every run reads the same from either tier, the listings are the same, the
oracle holds across both tiers, and a run that ended and moved takes no more events."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from queue_core import Client, Settings
from queue_core.domain.runs import NON_ZERO_EXIT
from queue_core.errors import ColdAggregate
from queue_core.eventlog.events import NewEvent, RunCancelled
from queue_core.readmodels.oracle import check_log
from queue_core.services.compaction import compact_runs
from tests.support.fuzzing import EXAMPLES, SEED
from tests.support.jobs import definition
from tests.support.redis_server import RedisServer

STORIES = ("pending", "queued", "running", "retried", *("succeeded", "failed", "cancelled") * 2)  # ended: 2 in 3
RUN = st.tuples(st.just("run"), st.sampled_from(STORIES), st.integers(0, 3))  # a story, and its output lines
COMPACT = st.tuples(st.just("compact"), st.none(), st.integers(0, 2))  # compaction keeping this many ended runs
# Three runs for a compaction, and a last compaction keeping none: most compactions have something to move.
STEPS = st.lists(st.one_of(RUN, RUN, RUN, COMPACT), min_size=1, max_size=16).map(
    lambda steps: [*steps, ("compact", None, 0)]
)
_homes = itertools.count()


def _run(client: Client, story: str, lines: int) -> str:
    life = client.lifecycle
    run = client.submit("job")
    if story == "pending":
        return run
    if story == "cancelled":
        client.cancel(run)
        return run
    life.queue(run, 1)
    if story == "queued":
        return run
    claim = life.claim(run, 1, "w", "host", 1)
    assert claim is not None
    client.run_log.write(run, 1, [("2026-12-06T10:00:00Z", "stdout", f"{run} {i}") for i in range(lines)])
    if story == "succeeded":
        assert life.succeed(claim)
    elif story in ("retried", "failed"):
        assert life.fail(claim, NON_ZERO_EXIT, 1, "exit 1")  # its retry waits
    if story == "failed":  # and fails too: no attempt left
        life.queue(run, 2)
        again = life.claim(run, 2, "w", "host", 2)
        assert again is not None and life.fail(again, NON_ZERO_EXIT, 1, "exit 1 again")
    return run


def _reads(client: Client, runs: list[str]) -> tuple[object, ...]:
    statuses = {run: client.get_run(run) for run in runs}
    outputs = {run: [(x.attempt, x.stream, x.line) for x in client.logs(run)] for run in runs}
    return statuses, outputs, client.list_runs(limit=None), client.list_runs(status="FAILED", limit=None)


@pytest.mark.timeout(600)
@seed(SEED)
@settings(max_examples=max(5, EXAMPLES // 50), deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=STEPS)
def test_compaction_at_random_points_changes_no_answer(
    steps: list[tuple[str, str | None, int]], redis_server: RedisServer, tmp_path: Path, workspace: Path
):
    connection = redis_server.client()
    connection.flushall()
    home = tmp_path / f"home-{next(_homes)}"
    client = Client(settings=Settings(redis_url=redis_server.url, home=home, workspace=workspace))
    client.define(definition("job", "job.sh", retries=1, delay=0.0))
    runs: list[str] = []
    for kind, story, number in steps:
        if kind == "run":
            assert story is not None
            runs.append(_run(client, story, number))
            continue
        before = _reads(client, runs)
        compact_runs(client.store, client.read_models, client.run_log, home / "cold", timedelta(days=7), keep=number)
        assert _reads(client, runs) == before
    assert not check_log(client.store).problems
    for run in runs:
        if connection.sismember(client.store.keys.compacted, run):
            with pytest.raises(ColdAggregate):
                client.store.append([NewEvent(run, RunCancelled())], {run: client.store.version(run)})

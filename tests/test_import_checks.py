"""Import is all or nothing: a file whose chain and checksum hold but whose events are wrong is refused whole,
exit 2, and the store it was to fill stays empty (then takes a clean import)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from queue_core import Client
from queue_core.eventlog.archive import history
from queue_core.eventlog.chain import link
from queue_core.eventlog.transfer import write_export
from tests.support.processes import Procs
from tests.support.redis_server import RedisServer
from tests.support.workload import mixed_workload

Envelope = dict[str, Any]


def _rewrite(client: Client, path: Path, change: Callable[[list[Envelope]], list[Envelope]]) -> None:
    """Export the log with ``change`` applied to its envelopes, the chain recomputed: consistent, but wrong."""
    envelopes = [orjson.loads(envelope) for _, envelope, _ in history(client.store)]
    positions = [position for position, _, _ in history(client.store)]
    changed = change(envelopes)
    last_ms = int(positions[-1].split("-")[0])
    positions += [f"{last_ms + n}-0" for n in range(1, 1 + len(changed) - len(positions))]
    entries, previous = [], ""
    for position, envelope in zip(positions, changed, strict=False):
        data = orjson.dumps(envelope)
        previous = link(previous, data)
        entries.append((position, data, previous))
    write_export(path, entries, chain_start="")


def _unknown_type(envs: list[Envelope]) -> list[Envelope]:
    return [{**envs[0], "type": "SomethingNew"}, *envs[1:]]


def _missing_field(envs: list[Envelope]) -> list[Envelope]:
    first = next(i for i, e in enumerate(envs) if e["type"] == "RunSubmitted")
    data = {k: v for k, v in envs[first]["d"].items() if k != "job"}
    return [*envs[:first], {**envs[first], "d": data}, *envs[first + 1 :]]


def _aggregate_is_a_list(envs: list[Envelope]) -> list[Envelope]:
    return [{**envs[0], "agg": ["not", "an", "id"]}, *envs[1:]]


def _duplicate_event_id(envs: list[Envelope]) -> list[Envelope]:
    return [envs[0], {**envs[1], "id": envs[0]["id"]}, *envs[2:]]


def _run_ended_twice(envs: list[Envelope]) -> list[Envelope]:
    end = next(e for e in envs if e["type"] == "RunSucceeded")
    return [*envs, {**end, "id": "again", "v": end["v"] + 100}]


def _version_gap(envs: list[Envelope]) -> list[Envelope]:
    last = next(i for i in range(len(envs) - 1, -1, -1) if envs[i]["type"] == "RunSucceeded")
    return [*envs[:last], {**envs[last], "v": envs[last]["v"] + 5}, *envs[last + 1 :]]


def _attempt_not_a_number(envs: list[Envelope]) -> list[Envelope]:
    first = next(i for i, e in enumerate(envs) if e["type"] == "RunStarted")
    data = {**envs[first]["d"], "attempt": "one"}
    return [*envs[:first], {**envs[first], "d": data}, *envs[first + 1 :]]


@pytest.mark.parametrize(
    "change",
    [
        _unknown_type,
        _missing_field,
        _aggregate_is_a_list,
        _duplicate_event_id,
        _run_ended_twice,
        _version_gap,
        _attempt_not_a_number,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_a_consistent_but_wrong_export_is_refused_whole_and_the_store_stays_empty(
    client: Client, procs: Procs, fresh: RedisServer, tmp_path: Path, change: Callable[[list[Envelope]], list[Envelope]]
):
    mixed_workload(client, rounds=1)
    damaged, clean = tmp_path / "damaged.jsonl.gz", tmp_path / "clean.jsonl.gz"
    _rewrite(client, damaged, change)
    _rewrite(client, clean, lambda envs: envs)
    into_fresh = Procs({**procs.env, "REDIS_URL": fresh.url}, tmp_path / "logs")
    refused = into_fresh.cli("import", str(damaged))
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    assert "cannot be imported" in refused.stderr and "Traceback" not in refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    assert fresh.client().dbsize() == 0
    accepted = into_fresh.cli("import", str(clean))
    assert accepted.returncode == 0, accepted.stderr

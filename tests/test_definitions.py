"""Definitions and clusters through the Client and the CLI: versions, names, races, bad input, the log."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from queue_core import Client, InvalidInput
from queue_core.eventlog.store import EventStore
from tests.support.jobs import definition, write_definition_file
from tests.support.processes import Procs, eventually

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RACE_ROUNDS = 3
# Runs the CLI, but holds its one append until the test says go: both racers have read "no such name" by then.
HELD_CLI = """
import sys, time
from pathlib import Path
import queue_core.eventlog.store as store
append = store.EventStore.append
def held(self, batch, expected):
    gate = Path(sys.argv[1])
    (gate / ("ready-" + sys.argv[2])).touch()
    while not (gate / "go").exists():
        time.sleep(0.001)
    return append(self, batch, expected)
store.EventStore.append = held
from queue_core.cli.main import main
sys.exit(main(sys.argv[3:]))
"""


def ok_json(procs: Procs, *args: str) -> Any:
    result = procs.cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# -- define, versions, list, show, delete ---------------------------------------------------------------


def test_define_creates_a_definition_and_prints_its_uuid(procs: Procs, client: Client, tmp_path: Path):
    result = procs.cli("define", str(write_definition_file(tmp_path, definition("nightly", "run.sh"))))
    assert result.returncode == 0, result.stderr
    assert UUID.match(result.stdout.strip())
    assert client.get_definition("nightly")["id"] == result.stdout.strip()


def test_a_changed_definition_becomes_version_two_under_the_same_uuid(procs: Procs, client: Client, tmp_path: Path):
    first = procs.cli("define", str(write_definition_file(tmp_path, definition("nightly", "run.sh", args="one"))))
    second = procs.cli(
        "define", str(write_definition_file(tmp_path, definition("nightly", "run.sh", args="two"), ".yaml"))
    )
    assert second.stdout == first.stdout
    doc = client.get_definition("nightly")
    assert (doc["version"], [v["spec"]["config"]["args"] for v in doc["versions"]]) == (2, ["one", "two"])


def test_identical_content_makes_no_new_version_and_appends_nothing(
    procs: Procs, client: Client, store: EventStore, tmp_path: Path
):
    raw = definition("nightly", "run.sh", timeout=60)
    procs.cli("define", str(write_definition_file(tmp_path, raw)))
    before = store.length()
    again = procs.cli("define", str(write_definition_file(tmp_path, raw, ".yaml")))  # the same content written as YAML
    assert again.returncode == 0
    assert "unchanged" in again.stdout
    assert store.length() == before
    assert client.get_definition("nightly")["version"] == 1


def test_definitions_list_show_and_delete_print_their_json_shapes(procs: Procs, tmp_path: Path):
    procs.cli("define", str(write_definition_file(tmp_path, definition("a", "a.sh"))))
    procs.cli("define", str(write_definition_file(tmp_path, definition("a", "a.sh", args="x"))))
    listed = ok_json(procs, "definitions", "list")
    assert [list(d) for d in listed] == [["id", "name", "version", "deleted", "created_at", "updated_at", "tags"]]
    assert (listed[0]["name"], listed[0]["version"], listed[0]["deleted"]) == ("a", 2, False)
    shown = ok_json(procs, "definitions", "show", "a")
    assert set(shown) == {"id", "name", "version", "deleted", "created_at", "updated_at", "versions"}
    assert [(v["version"], set(v)) for v in shown["versions"]] == [
        (n, {"version", "defined_at", "spec"}) for n in (1, 2)
    ]
    first = ok_json(procs, "definitions", "show", "a", "--version", "1")
    assert (first["id"], first["version"], first["spec"]["config"]["args"]) == (listed[0]["id"], 1, "")
    assert ok_json(procs, "definitions", "delete", "a") == {"id": listed[0]["id"], "deleted": True}
    assert ok_json(procs, "definitions", "list") == []
    assert [d["deleted"] for d in ok_json(procs, "definitions", "list", "--all")] == [True]


def test_after_delete_the_name_is_reused_with_a_new_uuid_and_the_old_one_stays_readable(
    procs: Procs, client: Client, tmp_path: Path
):
    old = procs.cli("define", str(write_definition_file(tmp_path, definition("etl", "old.sh")))).stdout.strip()
    assert procs.cli("definitions", "delete", "etl").returncode == 0
    new = procs.cli("define", str(write_definition_file(tmp_path, definition("etl", "new.sh")))).stdout.strip()
    assert UUID.match(new) and new != old
    shown = ok_json(procs, "definitions", "show", old)
    assert (shown["deleted"], shown["versions"][0]["spec"]["config"]["sourceLocation"]) == (True, "old.sh")
    assert ok_json(procs, "definitions", "show", "etl")["id"] == new
    assert [e.type for e in client.events(aggregate=old)] == ["DefinitionCreated", "DefinitionDeleted"]


def test_two_processes_creating_one_name_at_once_make_one_definition_and_the_loser_is_told(
    env: dict[str, str], client: Client, tmp_path: Path
):
    for round_ in range(RACE_ROUNDS):
        name, gate = f"raced-{round_}", tmp_path / f"gate-{round_}"
        gate.mkdir()
        files = [
            write_definition_file(tmp_path, definition(name, f"{who}.sh"), stem=f"{name}-{who}") for who in ("a", "b")
        ]
        racers = [
            subprocess.Popen(
                [sys.executable, "-c", HELD_CLI, str(gate), str(i), "define", str(f)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i, f in enumerate(files)
        ]
        try:
            eventually(lambda g=gate: len(list(g.glob("ready-*"))) == 2, what="both racers to reach append")
            (gate / "go").touch()
            outcomes = [(r.communicate(timeout=60)[1], r.returncode) for r in racers]
        finally:
            for racer in racers:
                racer.kill()
        (won, won_code), (lost, lost_code) = sorted(outcomes, key=lambda o: o[1])
        assert (won_code, lost_code, won.splitlines()) == (0, 2, [])
        assert lost.splitlines() == [f"jobledger: definition {name!r} was just created by another writer"]
        claims = [e.event for e in client.events(type="NameClaimed") if e.event.to_data()["name"] == name]
        assert len(claims) == 1
        assert [e.type for e in client.events(aggregate=claims[0].to_data()["owner"])] == ["DefinitionCreated"]


# -- bad input (the garbage definitions of the fault matrix are in faults/test_row_38_garbage_definitions.py) --


def test_a_token_inside_a_git_url_is_refused_like_a_literal_secret(procs: Procs, store: EventStore, tmp_path: Path):
    source = {"type": "GIT", "sourceDef": {"repoUrl": "https://bot:ghp_abc@example.com/r.git"}}
    raw = definition("good", "run.sh")
    raw["config"]["source"] = source
    result = procs.cli("define", str(write_definition_file(tmp_path, raw)))
    assert result.returncode == 2
    assert "ghp_abc" not in result.stderr + result.stdout
    assert store.length() == 0


def test_a_uuid_shaped_name_is_refused_because_it_could_not_be_told_from_an_id(client: Client):
    before = client.store.length()
    with pytest.raises(InvalidInput, match="looks like a UUID"):
        client.define(definition(str(uuid.uuid4()), "run.sh"))
    assert client.store.length() == before


# -- clusters ---------------------------------------------------------------------------------------------


def test_cluster_create_registers_a_cluster_listed_after_default(procs: Procs):
    created = procs.cli("cluster", "create", "gpu", "--workers", "3")
    assert created.returncode == 0 and UUID.match(created.stdout.strip())
    listed = ok_json(procs, "cluster", "list")
    assert [(c["name"], c["workers"]) for c in listed] == [("default", 2), ("gpu", 3)]
    assert listed[1]["id"] == created.stdout.strip()


@pytest.mark.parametrize("name", ["gpu", "default"])
def test_creating_a_cluster_that_exists_is_an_error(procs: Procs, store: EventStore, name: str):
    procs.cli("cluster", "create", "gpu")
    before = store.length()
    again = procs.cli("cluster", "create", name)
    assert again.returncode == 2
    assert again.stderr.splitlines() == [f"jobledger: cluster {name!r} already exists"]
    assert store.length() == before


def test_a_definition_naming_a_new_cluster_registers_that_cluster(procs: Procs, client: Client, tmp_path: Path):
    raw = definition("big", "run.sh", cluster="big-pool")
    raw["cluster"]["workersQuantity"] = 4
    assert procs.cli("define", str(write_definition_file(tmp_path, raw))).returncode == 0
    assert [(c["name"], c["workers"]) for c in client.list_clusters()] == [("default", 2), ("big-pool", 4)]


# -- events -----------------------------------------------------------------------------------------------


def test_events_json_prints_objects_with_exactly_the_documented_keys(procs: Procs, client: Client):
    client.define(definition("a", "a.sh"))
    events = ok_json(procs, "events")
    assert [e["type"] for e in events] == ["NameClaimed", "DefinitionCreated"]
    assert all(list(e) == ["position", "time", "type", "aggregate", "version", "data"] for e in events)


def test_events_filter_by_aggregate_type_and_limit(procs: Procs, client: Client):
    first = client.define(definition("a", "a.sh")).id
    client.define(definition("a", "a.sh", args="v2"))
    second = client.define(definition("b", "b.sh")).id
    by_aggregate = ok_json(procs, "events", "--aggregate", first)
    assert [(e["type"], e["version"]) for e in by_aggregate] == [("DefinitionCreated", 1), ("DefinitionRevised", 2)]
    assert [e["data"]["name"] for e in ok_json(procs, "events", "--type", "NameClaimed")] == ["a", "b"]
    every = ok_json(procs, "events")
    assert ok_json(procs, "events", "--limit", "2") == every[-2:]
    assert [e["aggregate"] for e in ok_json(procs, "events", "--type", "DefinitionCreated", "--limit", "1")] == [second]

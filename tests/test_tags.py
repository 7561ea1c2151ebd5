"""Tags end to end: on definitions, workflows (the DataOS file's kept), schedules and runs; filters; bulk cancel."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from queue_core import Client, InvalidInput
from tests.support.jobs import definition
from tests.support.paths import REPO
from tests.support.processes import Procs


def tagged(name: str, tags: list[str]) -> dict:
    raw = definition(name, "x.sh")
    raw["tags"] = tags
    return raw


def test_runs_carry_their_definitions_tags_and_their_own_and_filter_by_them(client: Client, procs: Procs):
    client.define(tagged("etl", ["team:data", "nightly"]))
    client.define(definition("other", "x.sh"))
    first = client.submit("etl", tags=["backfill", "nightly"])
    second = client.submit("etl")
    third = client.submit("other", tags=["backfill"])
    assert client.get_run(first)["tags"] == ["team:data", "nightly", "backfill"]
    assert [r["id"] for r in client.list_runs(tag="backfill")] == [third, first]
    assert [r["id"] for r in client.list_runs(tag="team:data", definition="etl")] == [second, first]
    assert [r["id"] for r in client.list_runs(tag="backfill", status="PENDING", definition="other")] == [third]
    listed = procs.cli("runs", "--tag", "backfill", "--json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [third, first]
    shown = procs.cli("definitions", "list", "--tag", "nightly")
    assert "etl" in shown.stdout and "other" not in shown.stdout and "team:data,nightly" in shown.stdout


def test_a_bad_tag_is_refused_naming_it(client: Client, procs: Procs):
    client.define(definition("plain", "x.sh"))
    before = client.store.last_position()
    for bad, field in (
        (["has space"], "tags[0]"),
        (["x" * 65], "tags[0]"),
        ("solo", "tags"),
        ([f"t{i}" for i in range(33)], "tags"),
    ):
        try:
            client.define(tagged("bad", bad))
        except InvalidInput as exc:
            assert exc.field == field
        else:
            raise AssertionError(f"{bad!r} was accepted")
    refused = procs.cli("submit", "plain", "--tag", "a,b")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "is not a tag" in refused.stderr
    assert client.store.last_position() == before


def test_a_dataos_workflow_keeps_its_tags_and_title_and_lists_by_tag(client: Client, procs: Procs, tmp_path: Path):
    client.define(definition("step", "x.sh"))
    doc = yaml.safe_load((REPO / "examples/workflows/city-dag.yaml").read_text())
    raw = {k: doc[k] for k in ("name", "version", "type", "tags", "title")}
    raw["workflow"] = {"dag": [{"name": "one", "spec": {"definition": "step", "tags": ["stage:1"]}}]}
    client.apply_workflow(raw)
    client.apply_workflow({"name": "untagged", "tasks": {"a": {"definition": "step"}}})
    spec = client.get_workflow("city-dag")["versions"][-1]["spec"]
    assert (spec["tags"], spec["title"]) == (["bq", "City"], "Cities to the warehouse, then a summary")
    listed = procs.cli("workflow", "list", "--tag", "City", "--json")
    assert [w["name"] for w in json.loads(listed.stdout)] == ["city-dag"]
    shown = procs.cli("workflow", "show", "city-dag")
    assert "Cities to the warehouse" in shown.stdout and "bq, City" in shown.stdout
    assert client.plan_workflow("city-dag").tasks["one"]["tags"] == ["stage:1", "bq", "City"]  # its runs' tags


def test_bulk_cancel_counts_asks_and_is_refused_without_a_terminal_or_yes(client: Client, procs: Procs):
    client.define(tagged("batch", ["wave:1"]))
    runs = [client.submit("batch") for _ in range(3)]
    client.cancel(runs[0])
    other = client.submit("batch", tags=["keep"])
    refused = procs.cli("cancel", "--tag", "wave:1")
    assert refused.returncode == 2
    assert refused.stderr == "jobledger: 3 runs tagged wave:1 would be cancelled; confirm with --yes\n"
    assert client.get_run(runs[1])["status"] == "PENDING"
    done = procs.cli("cancel", "--tag", "keep", "--status", "RUNNING", "--yes")
    assert done.returncode == 0 and done.stdout == "no run tagged keep to cancel\n"
    done = procs.cli("cancel", "--tag", "wave:1", "--yes")
    assert done.returncode == 0 and done.stdout == "cancelled 3 runs tagged wave:1\n"
    assert {client.get_run(r)["status"] for r in [*runs, other]} == {"CANCELLED"}

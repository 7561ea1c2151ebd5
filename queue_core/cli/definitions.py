"""CLI verbs for definitions and clusters: define, list, show (as of a point), diff, delete."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from queue_core.cli.argtypes import as_of
from queue_core.cli.output import print_json, print_kv, print_table
from queue_core.client import Client
from queue_core.domain.definitions import spec_of


def define(args: argparse.Namespace) -> int:
    results = Client.from_env().define_document(args.file)
    if args.json:
        # One definition prints its object, as before; a workflow file's several print a list.
        print_json(results[0].__dict__ if len(results) == 1 else [r.__dict__ for r in results])
        return 0
    for result in results:
        if result.changed:
            print(result.id if len(results) == 1 else f"{result.id}  {result.name}")
        else:
            print(f"{result.id}  (unchanged: {result.name} stays at version {result.version})")
    return 0


def definitions_list(args: argparse.Namespace) -> int:
    docs = Client.from_env().list_definitions(include_deleted=args.all)
    if args.tag is not None:
        docs = [d for d in docs if args.tag in spec_of(d).get("tags", ())]  # absent: defined without tags
    if args.json:
        print_json([_definition_summary(d) for d in docs])
        return 0
    rows = [
        [
            d["name"],
            d["id"],
            d["version"],
            spec_of(d)["config"]["type"],
            _cluster_of(d),
            "deleted" if d["deleted"] else "live",
            ",".join(spec_of(d).get("tags", ())) or None,
            d["updated_at"],
        ]
        for d in docs
    ]
    print_table(["NAME", "ID", "VERSION", "TYPE", "CLUSTER", "STATE", "TAGS", "UPDATED"], rows)
    return 0


def _cluster_of(doc: dict[str, Any]) -> str | None:
    return (spec_of(doc)["cluster"] or {}).get("name")


def _definition_summary(doc: dict[str, Any]) -> dict[str, Any]:
    summary = {k: doc[k] for k in ("id", "name", "version", "deleted", "created_at", "updated_at")}
    return {**summary, "tags": spec_of(doc).get("tags", [])}


def definitions_show(args: argparse.Namespace) -> int:
    doc = Client.from_env().get_definition(args.definition, as_of=as_of(args))
    if args.version is not None:
        spec = spec_of(doc, args.version)
        if args.json:
            print_json({"id": doc["id"], "name": doc["name"], "version": args.version, "spec": spec})
        else:
            print_json(spec)
        return 0
    if args.json:
        print_json(doc)
        return 0
    print_kv(
        [
            ("name", doc["name"]),
            ("id", doc["id"]),
            ("version", doc["version"]),
            ("state", "deleted" if doc["deleted"] else "live"),
            ("created", doc["created_at"]),
            ("updated", doc["updated_at"]),
        ]
    )
    for entry in doc["versions"]:
        print(f"\nversion {entry['version']} ({entry['defined_at']}):")
        print_json(entry["spec"])
    return 0


def definitions_diff(args: argparse.Namespace) -> int:
    changes = Client.from_env().diff_definition(args.definition, args.old, args.new)
    if args.json:
        print_json([change.__dict__ for change in changes])
        return 0
    if not changes:
        print(f"versions {args.old} and {args.new} are the same")
    marks = {"added": "+", "removed": "-", "changed": "~"}
    for change in changes:
        if change.kind == "changed":
            shown = f"{orjson.dumps(change.old).decode()} -> {orjson.dumps(change.new).decode()}"
        else:
            shown = orjson.dumps(change.new if change.kind == "added" else change.old).decode()
        print(f"{marks[change.kind]} {change.field}: {shown}")
    return 0


def definitions_delete(args: argparse.Namespace) -> int:
    deleted = Client.from_env().delete_definition(args.definition)
    if args.json:
        print_json({"id": deleted, "deleted": True})
    else:
        print(f"deleted {deleted}")
    return 0


def cluster_create(args: argparse.Namespace) -> int:
    cluster_id = Client.from_env().create_cluster(args.name, args.workers, args.instance_type, args.engine)
    if args.json:
        print_json({"id": cluster_id, "name": args.name, "engine": args.engine.lower()})
    else:
        print(cluster_id)
    return 0


def cluster_list(args: argparse.Namespace) -> int:
    client = Client.from_env()
    found = client.list_clusters()
    load = client.cluster_load([c["name"] for c in found])
    clusters = [{**c, **load[c["name"]]} for c in found]
    if args.json:
        print_json(clusters)
        return 0
    print_table(
        ["NAME", "ID", "WORKERS", "WORKERS SEEN", "WAITING", "INSTANCE TYPE", "ENGINE", "REGISTERED"],
        [
            [c["name"], c["id"], c["workers"], len(c["workers_seen"]), c["waiting"], c["instance_type"],
             c["engine"], c["registered_at"] or "built in"]
            for c in clusters
        ],
    )  # fmt: skip
    return 0

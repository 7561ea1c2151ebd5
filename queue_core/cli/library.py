"""The ``jobledger library`` verbs: list and show the built-in scripts, and use one (a workflow, scheduled)."""

from __future__ import annotations

import argparse
from typing import Any

from queue_core.cli.output import print_json, print_kv, print_table
from queue_core.client import Client
from queue_core.errors import InvalidInput
from queue_core.specs.builtins import params_from_text

__all__ = ["add_library_commands"]


def list_(args: argparse.Namespace) -> int:
    docs = Client.from_env().list_builtins()
    if args.json:
        print_json(docs)
        return 0
    print_table(["NAME", "VERSION", "SUMMARY"], [[d["name"], d["version"], d["summary"]] for d in docs])
    return 0


def _default(param: dict[str, Any]) -> str:
    if param["required"]:
        return "(required)"
    default = param["default"]
    if default is None:
        return "-"
    return ",".join(default) if isinstance(default, list) else str(default)


def show(args: argparse.Namespace) -> int:
    doc = Client.from_env().get_builtin(args.name)
    if args.json:
        print_json(doc)
        return 0
    print_kv([("built-in", f"{doc['name']}@{doc['version']}"), ("versions", ", ".join(map(str, doc["versions"]))),
              ("summary", doc["summary"])])  # fmt: skip
    print()
    rows = [
        [p["name"], p["kind"] + (f" ({', '.join(p['choices'])})" if p["choices"] else ""), _default(p), p["doc"]]
        for p in doc["params"]
    ]
    print_table(["PARAMETER", "KIND", "DEFAULT", "MEANING"], rows)
    return 0


def _pairs(values: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for pair in values:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{pair!r} is not NAME=VALUE", "--param")
        if key in pairs:
            raise InvalidInput(f"{key!r} is given twice", "--param")
        pairs[key] = value
    return pairs


def use(args: argparse.Namespace) -> int:
    params = params_from_text(args.name, _pairs(args.param))
    used = Client.from_env().use_builtin(args.name, args.workflow, params, args.cron, args.timezone, args.cluster)
    applied = used.workflow
    if args.json:
        made = {"workflow": applied.__dict__, "task": used.task, "builtin": used.builtin, "schedule": used.schedule}
        print_json(made)
        return 0
    state = f"version {applied.version}" if applied.changed else f"unchanged at version {applied.version}"
    print(f"workflow {applied.name} ({state}): task {used.task} runs {used.builtin}")
    if used.schedule is not None:
        print(f"schedule {used.schedule['name']}: next fire {used.schedule['next_fire'] or '-'}")
    return 0


def add_library_commands(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("library", help="the built-in scripts (EnOS's Common Library): list, show, use one")
    lsub = p.add_subparsers(dest="action", required=True, parser_class=parser_class)
    q = lsub.add_parser("list", help="every built-in and version, with what it does")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=list_)
    q = lsub.add_parser("show", help="a built-in's parameters: kind, default, meaning")
    q.add_argument("name", metavar="NAME[@VERSION]")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=show)
    q = lsub.add_parser("use", help="create a workflow running the built-in (and its schedule) in one step")
    q.add_argument("name", metavar="NAME[@VERSION]")
    q.add_argument("--workflow", required=True, help="the workflow to create, or revise")
    q.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a parameter (lists: a,b,c)")
    q.add_argument("--cron", metavar="EXPR", help="also schedule the workflow, under its own name")
    q.add_argument("--timezone", default="UTC", help="the cron expression's time zone")
    q.add_argument("--cluster", help="the cluster the task runs on (default: the default cluster)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=use)

"""``schedule backfill`` and the ``backfill`` verbs (list, show, cancel), and ``trigger`` (list, show)."""

from __future__ import annotations

import argparse
from typing import Any

from queue_core.cli.argtypes import positive_int
from queue_core.cli.output import print_json, print_kv, print_table
from queue_core.client import Client
from queue_core.domain.backfills import REPROCESS

__all__ = ["add_backfill_command", "add_backfill_commands"]


def backfill(args: argparse.Namespace) -> int:
    plan = Client.from_env().backfill_schedule(
        args.schedule,
        getattr(args, "from"),
        args.to,
        reprocess=args.reprocess,
        max_active=args.max_active,
        backwards=args.backwards,
        dry_run=args.dry_run,
    )
    if args.json:
        print_json(plan)
        return 0
    if args.dry_run:
        for tick, logical in zip(plan["ticks"], plan["logical_dates"], strict=True):
            print(f"would run {tick}  logical date {logical}")
        print(f"{len(plan['ticks'])} to run, {len(plan['left_alone'])} left alone (they have a run)")
        return 0
    print(
        f"{plan['id']}  {len(plan['ticks'])} to run, {len(plan['left_alone'])} left alone, {plan['max_active']} at once"
    )
    return 0


def _progress(doc: dict[str, Any]) -> str:
    return f"{doc['submitted']}/{doc['total']}"


def list_(args: argparse.Namespace) -> int:
    docs = Client.from_env().list_backfills()
    if args.json:
        print_json(docs)
        return 0
    rows = [
        [d["id"], d["schedule_name"], f"{d['start']} .. {d['end']}", d["status"], _progress(d), d["max_active"]]
        for d in docs
    ]
    print_table(["ID", "SCHEDULE", "RANGE", "STATUS", "SUBMITTED", "MAX ACTIVE"], rows)
    return 0


def _show_backfill(args: argparse.Namespace, doc: dict[str, Any]) -> int:
    if args.json:
        print_json(doc)
        return 0
    print_kv(
        [
            ("id", doc["id"]),
            ("schedule", doc["schedule_name"]),
            ("range", f"{doc['start']} .. {doc['end']}" + (" (newest first)" if doc["backwards"] else "")),
            ("reprocess", doc["reprocess"]),
            ("max active", doc["max_active"]),
            ("status", doc["status"]),
            ("submitted", _progress(doc)),
            ("left alone", doc["skipped"]),
            ("succeeded", doc["succeeded"]),
            ("failed", doc["failed"]),
        ]
    )
    print()
    rows = [[e["tick"], e["logical_date"], e["run"], e["status"] or e["message"]] for e in doc["runs"]]
    rows += [[tick, None, None, "waiting"] for tick in doc["waiting"]]
    print_table(["TICK", "LOGICAL DATE", "RUN", "STATUS"], rows)
    return 0


def show(args: argparse.Namespace) -> int:
    return _show_backfill(args, Client.from_env().get_backfill(args.backfill))


def cancel(args: argparse.Namespace) -> int:
    return _show_backfill(args, Client.from_env().cancel_backfill(args.backfill))


def trigger_list(args: argparse.Namespace) -> int:
    docs = Client.from_env().list_triggers()
    if args.json:
        print_json(docs)
        return 0
    rows = [
        [
            d["target_kind"],
            d["target"],
            d["trigger"]["kind"],
            d["fired"],
            d["last_fire"],
            (d["last_run"] or {}).get("id"),
        ]
        for d in docs
    ]
    print_table(["KIND", "TARGET", "ON", "FIRED", "LAST FIRE", "LAST RUN"], rows)
    return 0


def trigger_show(args: argparse.Namespace) -> int:
    doc = Client.from_env().get_trigger(args.target)
    if args.json:
        print_json(doc)
        return 0
    spec, last = doc["trigger"], doc["last_run"] or {}
    watched = ", ".join(spec["datasets"]) + f" ({spec['mode']})" if spec["kind"] == "datasets" else str(spec["files"])
    print_kv(
        [
            ("target", f"{doc['target_kind']} {doc['target']}"),
            ("on", watched),
            ("fired", doc["fired"]),
            ("last fire", doc["last_fire"]),
            ("last run", last.get("id")),
            ("caused by", ", ".join(last.get("datasets") or last.get("files") or []) or None),
            ("waiting on", ", ".join(doc["pending"]) or None),
        ]
    )
    return 0


def add_backfill_command(ssub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``schedule backfill`` under the schedule verbs."""
    q = ssub.add_parser("backfill", help="one run per tick of a past range, its logical date the tick")
    q.add_argument("schedule", metavar="NAME-or-UUID")
    q.add_argument("--from", required=True, metavar="ISO-TIME", help="the range's first instant (included)")
    q.add_argument("--to", required=True, metavar="ISO-TIME", help="the range's last instant (included)")
    q.add_argument("--reprocess", choices=REPROCESS, default="none", help="ticks that already have a run")
    q.add_argument("--max-active", type=positive_int, default=1, metavar="N", help="runs at once (default 1)")
    q.add_argument("--backwards", action="store_true", help="newest tick first")
    q.add_argument("--dry-run", action="store_true", help="print the ticks it would run; append nothing")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=backfill)


def add_backfill_commands(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``backfill`` (list, show, cancel) and ``trigger`` (list, show)."""
    p = sub.add_parser("backfill", help="backfills of schedules: list, show, cancel")
    bsub = p.add_subparsers(dest="action", required=True, parser_class=parser_class)
    q = bsub.add_parser("list", help="every backfill, newest first")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=list_)
    for verb, handler, text in (
        ("show", show, "a backfill and each tick's run"),
        ("cancel", cancel, "submit no more ticks; cancel its runs still going"),
    ):
        q = bsub.add_parser(verb, help=text)
        q.add_argument("backfill", metavar="UUID")
        q.add_argument("--json", action="store_true")
        q.set_defaults(handler=handler)
    p = sub.add_parser("trigger", help="data-aware triggers of definitions and workflows: list, show")
    tsub = p.add_subparsers(dest="action", required=True, parser_class=parser_class)
    q = tsub.add_parser("list", help="every trigger, with how often it fired")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=trigger_list)
    q = tsub.add_parser("show", help="the trigger of a definition or workflow, and its last fire")
    q.add_argument("target", metavar="NAME")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=trigger_show)

"""The schedule verbs (create, list, show, pause, resume, delete) and ``jobledger scheduler``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from queue_core.cli.argtypes import positive_int
from queue_core.cli.backfills import add_backfill_command
from queue_core.cli.output import print_json, print_kv, print_table
from queue_core.client import Client
from queue_core.domain.schedules import CATCHUP_POLICIES, OVERLAP_POLICIES
from queue_core.specs.documents import load_document

__all__ = ["add_schedule_commands"]


def _client() -> Client:
    return Client.from_env()


def _when(doc: dict[str, Any]) -> str:
    if doc["cron"]:
        return f"{doc['cron']} ({doc['timezone']})" + (f" until {doc['end']}" if doc["end"] else "")
    return f"at {doc['at']} ({doc['timezone']})"


def _target(doc: dict[str, Any]) -> str:
    return f"{doc['target_kind']} {doc['target']}"


def create(args: argparse.Namespace) -> int:
    doc = _client().create_schedule(
        args.name,
        definition=args.definition,
        workflow=args.workflow,
        cron=args.cron,
        at=args.at,
        timezone=args.timezone,
        end=args.end,
        catchup=args.catchup,
        overlap=args.overlap,
        args=args.args,
        cluster=args.cluster,
        jitter=args.jitter,
        pause_on_failure=args.pause_on_failure,
        tags=args.tag,
        notifications=load_document(args.notifications) if args.notifications else None,
    )
    if args.json:
        print_json(doc)
    else:
        print(f"{doc['id']}  next fire {doc['next_fire'] or '-'}")
    return 0


def list_(args: argparse.Namespace) -> int:
    docs = _client().list_schedules(include_deleted=args.all)
    if args.json:
        print_json(docs)
        return 0
    rows = [
        [
            d["name"],
            _target(d),
            _when(d),
            d["status"] + (f" ({d['pause_note']})" if d["pause_note"] else ""),
            d["next_fire"],
            f"{d['fired']}/{d['skipped']}/{d['missed']}",
            len(d["queued"]) or None,
            (d["last_run"] or {}).get("id"),
        ]
        for d in docs
    ]
    print_table(["NAME", "TARGET", "WHEN", "STATUS", "NEXT FIRE", "FIRED/SKIPPED/MISSED", "QUEUED", "LAST RUN"], rows)
    return 0


def show(args: argparse.Namespace) -> int:
    doc = _client().get_schedule(args.schedule, history=args.limit)
    if args.json:
        print_json(doc)
        return 0
    print_kv(
        [
            ("name", doc["name"]),
            ("id", doc["id"]),
            ("target", _target(doc)),
            ("when", _when(doc)),
            ("catch-up", doc["catchup"]),
            ("overlap", doc["overlap"]),
            ("args", doc["args"]),
            ("cluster", doc["cluster"]),
            ("status", doc["status"] + (f" ({doc['ended_reason']})" if doc["ended_reason"] else "")),
            ("note", doc["pause_note"]),
            ("jitter", f"{doc['jitter']:g} minutes" if doc["jitter"] else None),
            ("pause on failure", "yes" if doc["pause_on_failure"] else None),
            ("next fire", doc["next_fire"]),
            ("fired", doc["fired"]),
            ("skipped", doc["skipped"]),
            ("missed", doc["missed"]),
            ("queued", ", ".join(q["tick"] for q in doc["queued"]) or None),
            ("created", doc["created_at"]),
        ]
    )
    print()
    print_table(
        ["TICK", "LOGICAL DATE", "OUTCOME", "REASON", "RUN", "RUN STATUS", "RECORDED"],
        [
            [e["tick"], e["logical_date"], e["outcome"], e["reason"], e["run"], e.get("run_status"), e["time"]]
            for e in doc["history"]
        ],
    )
    return 0


def _change(args: argparse.Namespace, doc: dict[str, Any]) -> int:
    if args.json:
        print_json(doc)
    else:
        print(f"{doc['name']} {doc['status']}  next fire {doc['next_fire'] or '-'}")
    return 0


def pause(args: argparse.Namespace) -> int:
    return _change(args, _client().pause_schedule(args.schedule, args.note or ""))


def trigger(args: argparse.Namespace) -> int:
    doc = _client().trigger_schedule(args.schedule)
    if args.json:
        print_json(doc)
    else:
        print(f"{doc['name']} fired manually: {doc['last_run']['kind'].replace('_', ' ')} {doc['last_run']['id']}")
    return 0


def resume(args: argparse.Namespace) -> int:
    return _change(args, _client().resume_schedule(args.schedule))


def delete(args: argparse.Namespace) -> int:
    deleted = _client().delete_schedule(args.schedule)
    if args.json:
        print_json({"id": deleted, "deleted": True})
    else:
        print(f"deleted {deleted}")
    return 0


def scheduler(args: argparse.Namespace) -> int:
    os.execv(sys.executable, [sys.executable, "-m", "scheduler", "--timer"])
    return 0  # pragma: no cover


def add_schedule_commands(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``schedule`` (create, list, show, pause, resume, delete) and ``scheduler``."""
    p = sub.add_parser("schedule", help="run definitions or workflows on a cron schedule or once at a time")
    ssub = p.add_subparsers(dest="action", required=True, parser_class=parser_class)
    q = ssub.add_parser("create", help="--definition D | --workflow W, and --cron EXPR | --at TIME")
    q.add_argument("name")
    target = q.add_mutually_exclusive_group(required=True)
    target.add_argument("--definition", metavar="NAME-or-UUID")
    target.add_argument("--workflow", metavar="NAME")
    when = q.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", metavar="EXPR", help='five fields ("30 2 * * *") or @hourly, @daily, ...')
    when.add_argument("--at", metavar="ISO-TIME", help="fire once at this time, then end")
    q.add_argument("--timezone", default="UTC", metavar="AREA/CITY", help="of the cron fields (default UTC)")
    q.add_argument("--end", metavar="ISO-TIME", help="no tick after this time")
    q.add_argument("--catchup", choices=CATCHUP_POLICIES, default="latest", help="ticks missed while down")
    q.add_argument("--overlap", choices=OVERLAP_POLICIES, default="skip", help="a tick while the last run is active")
    q.add_argument("--args", metavar="ARGS", help="the job's args; ${logical_date} and ${logical_date:%%Y%%m%%d}")
    q.add_argument("--cluster")
    q.add_argument("--jitter", type=float, default=0.0, metavar="MINUTES", help="fire each tick up to this much later")
    q.add_argument("--pause-on-failure", action="store_true", help="pause when a run it fired fails")
    q.add_argument("--tag", action="append", default=[], metavar="TAG", help="a tag on every run it fires")
    q.add_argument("--notifications", metavar="FILE", help="a JSON or YAML file: {onMissedTick: [destinations]}")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=create)
    q = ssub.add_parser("list", help="schedules with their next fire time")
    q.add_argument("--all", action="store_true", help="include deleted schedules")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=list_)
    q = ssub.add_parser("show", help="a schedule and its ticks: fired (with the run), skipped, queued, missed")
    q.add_argument("schedule", metavar="NAME-or-UUID")
    q.add_argument("--limit", type=positive_int, default=50, help="newest ticks shown (default 50)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=show)
    for verb, handler, text in (
        ("pause", pause, "stop firing until resumed"),
        ("resume", resume, "fire again from now on (ticks while paused are not fired)"),
        ("trigger", trigger, "fire once now, outside the cadence (recorded as manual)"),
        ("delete", delete, "delete; the name is free again, the history stays"),
    ):
        q = ssub.add_parser(verb, help=text)
        q.add_argument("schedule", metavar="NAME-or-UUID")
        q.add_argument("--json", action="store_true")
        if verb == "pause":
            q.add_argument("--note", metavar="TEXT", help="why; shown by list and show")
        q.set_defaults(handler=handler)
    add_backfill_command(ssub, parser_class)

    p = sub.add_parser("scheduler", help="run a dispatcher and the schedule timer in the foreground")
    p.set_defaults(handler=scheduler)

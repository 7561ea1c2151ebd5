"""CLI verb for notifications: ``jobledger notifications`` lists deliveries and how each went."""

from __future__ import annotations

import argparse
from typing import Any

from queue_core.cli.argtypes import positive_int
from queue_core.cli.output import print_json, print_table
from queue_core.client import Client

__all__ = ["add_notification_commands"]


def notifications(args: argparse.Namespace) -> int:
    found = Client.from_env().notifications(run=args.run, failed=args.failed, limit=args.limit)
    if args.json:
        print_json(found)
        return 0
    print_table(
        ["NOTIFICATION", "EVENT", "SUBJECT", "DESTINATION", "STATUS", "ATTEMPTS", "LAST ERROR", "DUE"],
        [
            [
                n["id"].removeprefix("notification:"),
                n["event"],
                f"{n['subject_kind']} {n['subject']}",
                n["destination"],
                n["status"],
                n["attempts"],
                n["last_error"],
                n["due_at"],
            ]
            for n in found
        ],
    )
    return 0


def add_notification_commands(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``jobledger notifications`` on the top-level subparsers."""
    p = sub.add_parser("notifications", help="notifications sent or due: their destination, attempts and outcome")
    p.add_argument("--run", metavar="RUN", help="only those of this run (or workflow run, or schedule id)")
    p.add_argument("--failed", action="store_true", help="only those given up (the destination kept failing)")
    p.add_argument("--limit", type=positive_int, default=50, help="at most this many")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=notifications)

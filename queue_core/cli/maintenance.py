"""``jobledger maintenance``: what holds the store in maintenance, and ending a maintenance whose holder died."""

from __future__ import annotations

import argparse
from typing import Any

from queue_core.cli.output import print_json
from queue_core.client import Client
from queue_core.eventlog.maintenance_mode import clear_marker, read_marker
from queue_core.readmodels.materialized import LIVE, ReadModels
from queue_core.settings import Settings

__all__ = ["add_maintenance_command"]


def _client() -> Client:
    """A client that does not refuse a store under maintenance: looking at the marker is the point."""
    return Client(settings=Settings.from_env(), check_epoch=False)


def status(args: argparse.Namespace) -> int:
    marker = read_marker(_client().store)
    if args.json:
        print_json(None if marker is None else {**marker.__dict__, "line": marker.describe()})
        return 0
    print("not under maintenance" if marker is None else marker.describe())
    return 0


def clear(args: argparse.Namespace) -> int:
    store = _client().store
    marker, removed = clear_marker(store, abort=args.abort)
    if marker is None:
        print("not under maintenance: nothing to clear")
        return 0
    if marker.operation in ("import", "restore"):
        ReadModels(store, LIVE).drop()  # perhaps half written when it died: the next reader folds them afresh
    if removed:
        print(f"cleared the interrupted {marker.operation} and removed the partial log it had loaded")
        print("the store is empty: run the import or restore again")
    else:
        print(f"cleared the interrupted {marker.operation}; the read models are rebuilt by their next reader")
    return 0


def add_maintenance_command(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``maintenance status`` and ``maintenance clear``."""
    p = sub.add_parser("maintenance", help="the store's maintenance marker: who holds it, or end a dead holder's")
    actions = p.add_subparsers(dest="action", required=True, parser_class=parser_class)
    s = actions.add_parser("status", help="say whether an import, restore or rebuild holds the store")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=status)
    c = actions.add_parser("clear", help="end a maintenance whose holder died (its lease lapsed)")
    c.add_argument(
        "--abort", action="store_true", help="also remove the partial log an interrupted import or restore loaded"
    )
    c.set_defaults(handler=clear)

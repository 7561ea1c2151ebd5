"""The pool verbs: create, list, show, resize and delete pools of run slots."""

from __future__ import annotations

import argparse
from typing import Any

from queue_core.cli.output import print_json, print_kv, print_table
from queue_core.client import Client

__all__ = ["add_pool_commands"]


def _summary(pool: dict[str, Any]) -> list[Any]:
    return [pool["name"], pool["slots"], pool["used"], len(pool["holding"]), len(pool["waiting"])]


def pool_create(args: argparse.Namespace) -> int:
    pool = Client.from_env().create_pool(args.name, args.slots)
    if args.json:
        print_json(pool)
    else:
        print(f"pool {pool['name']}: {pool['slots']} slots")
    return 0


def pool_resize(args: argparse.Namespace) -> int:
    pool = Client.from_env().resize_pool(args.name, args.slots)
    if args.json:
        print_json(pool)
    else:
        print(f"pool {pool['name']}: {pool['slots']} slots, {pool['used']} in use")
    return 0


def pool_delete(args: argparse.Namespace) -> int:
    Client.from_env().delete_pool(args.name)
    if args.json:
        print_json({"name": args.name, "deleted": True})
    else:
        print(f"deleted pool {args.name}")
    return 0


def pool_list(args: argparse.Namespace) -> int:
    pools = Client.from_env().list_pools()
    if args.json:
        print_json(pools)
    else:
        print_table(["NAME", "SLOTS", "IN USE", "RUNS HOLDING", "RUNS WAITING"], [_summary(p) for p in pools])
    return 0


def pool_show(args: argparse.Namespace) -> int:
    pool = Client.from_env().get_pool(args.name)
    if args.json:
        print_json(pool)
        return 0
    print_kv(
        [
            ("name", pool["name"]),
            ("slots", pool["slots"]),
            ("in use", pool["used"]),
            ("holding", " ".join(pool["holding"]) or "-"),
            ("waiting", " ".join(pool["waiting"]) or "-"),
            ("created", pool["created_at"]),
        ]
    )
    return 0


def add_pool_commands(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("pool", help="create, list, show, resize or delete pools of run slots")
    psub = p.add_subparsers(dest="action", required=True, parser_class=parser_class)
    q = psub.add_parser("create", help="a pool of N slots that runs naming it share")
    q.add_argument("name")
    q.add_argument("--slots", type=int, required=True, metavar="N")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=pool_create)
    q = psub.add_parser("list", help="pools, with the slots in use and the runs waiting")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=pool_list)
    q = psub.add_parser("show", help="a pool and the runs holding and waiting for its slots")
    q.add_argument("name")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=pool_show)
    q = psub.add_parser("resize", help="another number of slots; runs holding slots keep them")
    q.add_argument("name")
    q.add_argument("--slots", type=int, required=True, metavar="N")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=pool_resize)
    q = psub.add_parser("delete", help="delete a pool that no run holds or waits for")
    q.add_argument("name")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=pool_delete)

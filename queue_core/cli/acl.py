"""``jobledger acl``: print the Redis ACL users of jobledger's roles, or create them (``--apply``).

By default it prints an ACL file (Redis's ``aclfile`` format): one ``user`` line per role, its password as the
SHA-256 Redis keeps (``#HASH``), so the same text is what an operator reviews, what a server loads at start
and what compose uses. A password is never printed, never taken as an argument: each is generated into
``--passwords DIR`` (0600 files in a 0700 folder), or read from the file already there.
"""

from __future__ import annotations

import argparse
import re
import secrets
from pathlib import Path
from typing import Any

import redis

from queue_core.errors import InvalidInput
from queue_core.eventlog.acl import ROLES, acl_file, password_hash
from queue_core.eventlog.connection import AccessDenied, connect, display_url
from queue_core.keyfiles import read_or_create
from queue_core.settings import Settings

__all__ = ["add_acl_command"]

PASSWORD_BYTES = 32
# What Redis answers when a rule names a command it does not know (an older server: CLIENT SETINFO is 7.2+).
_UNKNOWN = re.compile(r"modifier '\+([^']+)': Unknown command")


def _passwords(folder: Path) -> dict[str, str]:
    """Each role's password, from ``folder/ROLE``; one is generated (and written 0600) where there is none."""
    found = {name: read_or_create(folder / name, _generate).decode() for name in ROLES}
    # One trailing newline is dropped, as REDIS_PASSWORD_FILE's reader drops it: `echo`ed files work the same.
    return {name: text[:-1] if text.endswith("\n") else text for name, text in found.items()}


def _generate() -> bytes:
    return secrets.token_urlsafe(PASSWORD_BYTES).encode()


def _set_user(connection: redis.Redis, name: str, hashed: str) -> list[str]:
    """Create or replace one role's user; returns the commands left out because this server lacks them."""
    skipped: list[str] = []
    while True:
        rules = [rule for rule in ROLES[name].rules() if not (rule.startswith("+") and rule[1:] in skipped)]
        try:
            connection.execute_command("ACL", "SETUSER", name, "reset", "on", f"#{hashed}", *rules)
            return skipped
        except AccessDenied:
            raise
        except redis.ResponseError as exc:
            unknown = _UNKNOWN.search(str(exc))
            if unknown is None or unknown.group(1) in skipped:
                # Read-only key patterns (%R~) are Redis 7.0's: an older server refuses them.
                reason = str(exc).splitlines()[0]
                message = f"the store refused the {name} user (Redis 7.0 or later is needed): {reason}"
                raise InvalidInput(message) from None
            skipped.append(unknown.group(1))


def acl(args: argparse.Namespace) -> int:
    if args.passwords is None:
        if args.apply:
            raise InvalidInput("creating the users needs the folder of their passwords", "--passwords")
        print(acl_file({}, disable_default=args.disable_default), end="")
        return 0
    hashes = {name: password_hash(password) for name, password in _passwords(args.passwords).items()}
    if not args.apply:
        print(acl_file(hashes, disable_default=args.disable_default), end="")
        return 0
    settings = Settings.from_env()
    if not settings.external_store:
        raise InvalidInput("the embedded store is reached only through its owner's private socket: no users needed")
    connection: Any = connect(settings)
    for name, hashed in hashes.items():
        skipped = _set_user(connection, name, hashed)
        note = f" (this server lacks: {', '.join(skipped)})" if skipped else ""
        print(f"user {name}: set, its password in {args.passwords / name}{note}")
    if args.disable_default:
        connection.execute_command("ACL", "SETUSER", "default", "off")
        print("user default: off")
    where = display_url(settings.redis_url) if settings.redis_url else f"the primary {settings.sentinel_master}"
    print(f"on {where}: these users live in the server's memory until it restarts;")
    print("load the printed ACL file (jobledger acl --passwords DIR) as its aclfile to keep them")
    return 0


def add_acl_command(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``jobledger acl`` on the top-level subparsers."""
    p = sub.add_parser("acl", help="print (or --apply) the Redis ACL users of jobledger's roles")
    p.add_argument(
        "--passwords", type=Path, metavar="DIR", help="the roles' password files (generated 0600 where missing)"
    )
    p.add_argument("--apply", action="store_true", help="create the users on the store (REDIS_URL) instead")
    p.add_argument("--disable-default", action="store_true", help="turn Redis's default user off (or print it off)")
    p.set_defaults(handler=acl)

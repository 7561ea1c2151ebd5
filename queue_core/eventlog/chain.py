"""The hash chain of the log: each entry's ``h`` is SHA-1(previous ``h`` + its envelope); walk and check it.

The link is unkeyed (SHA-1 is what Redis's Lua has, and no key enters Redis): anyone can recompute it, so
it tells an accident from an intact log, not a forgery. The ledger key's seals on it do (``seals.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["ChainReport", "EntryCheck", "link", "walk"]

# Told each entry that links up (position, envelope, its hash); returns (position, why) to break the walk there.
EntryCheck = Callable[[str, bytes, str], tuple[str, str] | None]


def link(previous: str, envelope: bytes) -> str:
    """The chain hash of an entry whose predecessor's hash is ``previous`` ("" for the first)."""
    return hashlib.sha1(previous.encode() + envelope).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    """What a walk of the chain found: how many entries it checked, and the first that breaks it."""

    checked: int
    broken_at: str | None
    reason: str | None
    head: str

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def walk(
    entries: Iterable[tuple[str, bytes, str | None]], previous: str | None = None, check: EntryCheck | None = None
) -> ChainReport:
    """Check ``(position, envelope, h)`` entries in log order.

    ``previous`` is the hash before the first entry: "" for a whole log; None to trust the first
    entry's own hash (a log whose older part was trimmed, checked against its archive separately).
    ``check`` also sees every entry that links up (the seals' check).
    """
    checked = 0
    head = previous or ""
    for position, envelope, recorded in entries:
        if recorded is None:
            return ChainReport(checked, position, "the entry carries no chain hash", head)
        if (previous is not None or checked > 0) and recorded != link(head, envelope):
            why = "its content or the entry before it was changed, removed or reordered"
            return ChainReport(checked, position, why, head)
        broken = check(position, envelope, recorded) if check is not None else None
        if broken is not None:
            return ChainReport(checked, broken[0], broken[1], head)
        head = recorded
        checked += 1
    return ChainReport(checked, None, None, head)

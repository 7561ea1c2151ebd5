"""What a secret looks like when it leaks: the value, its lines, and their encodings; computed here, not by the
masker, so a test does not take the code under test's word for what to look for."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

# The masker's rule for lines, stated again: a line this long or longer is a secret of its own.
LINE_CHARS = 6


def lines_of(value: str) -> list[str]:
    """The lines of a multi-line value that must be masked on their own (stripped, long enough)."""
    if "\n" not in value.strip("\n"):
        return []
    return [line.strip() for line in value.splitlines() if len(line.strip()) >= LINE_CHARS]


def encodings(text: str) -> set[str]:
    """``text`` in base64 (both alphabets, padded and not), hex (both cases) and URL-encoding."""
    data = text.encode()
    standard, urlsafe = base64.b64encode(data).decode(), base64.urlsafe_b64encode(data).decode()
    return {standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("="), data.hex(), data.hex().upper()} | {
        quote(text, safe="")
    }


def leak_forms(value: str) -> set[str]:
    """Every text whose presence means ``value`` leaked: it, its lines, and all their encodings."""
    units = {value, *lines_of(value)}
    return {form for unit in units for form in {unit} | encodings(unit)}


def inside_base64(data: bytes, before: bytes, after: bytes, urlsafe: bool = False) -> tuple[str, str]:
    """A base64 text holding ``data`` between ``before`` and ``after``, and the characters that encode only
    ``data`` (6-bit groups wholly inside its bits)."""
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    text = encode(before + data + after).decode()
    first = -(-len(before) * 8 // 6)  # the first character whose bits all belong to data
    last = (len(before) + len(data)) * 8 // 6  # one past the last
    return text, text[first:last]


def find_leaks(forms: Iterable[str], blobs: Iterable[tuple[str, bytes]]) -> list[str]:
    """``"FORM in WHERE"`` for each form found in each ``(where, bytes)``; the forms are shown by length only."""
    needles = [(form, form.encode()) for form in forms]
    return [
        f"a {len(form)}-character form of a secret in {where}"
        for where, blob in blobs
        for form, needle in needles
        if needle in blob
    ]


def file_blobs(*roots: Path) -> list[tuple[str, bytes]]:
    """``(path, bytes)`` of every regular file under ``roots``."""
    found = []
    for root in roots:
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
        found += [(str(path), path.read_bytes()) for path in paths]
    return found

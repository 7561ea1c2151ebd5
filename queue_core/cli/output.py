"""Rendering for the CLI: JSON for machines, aligned tables and key-value blocks for people."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import orjson

__all__ = ["print_json", "print_kv", "print_table"]


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return str(value)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line.rstrip())
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def print_kv(pairs: Sequence[tuple[str, Any]]) -> None:
    width = max(len(k) for k, _ in pairs)
    for key, value in pairs:
        print(f"{key.ljust(width)}  {_cell(value)}")


def run_row(run: dict[str, Any]) -> list[Any]:
    return [
        run["id"],
        run["definition"],
        run["definition_version"],
        run["cluster"],
        run["status"],
        run["reason"],
        len(run["attempts"]),
        run["exit_code"],
        run["submitted_at"],
    ]


RUN_HEADERS = ["RUN", "DEFINITION", "VERSION", "CLUSTER", "STATUS", "REASON", "ATTEMPTS", "EXIT", "SUBMITTED"]

"""``jobledger-values``: set, show or remove one of the job's published values from inside the job.

Runs in the job's sandbox with nothing of the store: it only edits the file ``JOBLEDGER_VALUES_FILE``
names (a JSON object), which the worker reads when the attempt ends. Standard library only, so it starts fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

__all__ = ["main"]

_USAGE = "usage: jobledger-values set KEY VALUE | get KEY | unset KEY | show   (VALUE is JSON, else a string)"


def _load(path: Path) -> dict[str, object]:
    if not path.exists():
        return {}
    found = json.loads(path.read_text() or "{}")
    if not isinstance(found, dict):
        raise ValueError("the values file does not hold a JSON object")
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    where = os.environ.get("JOBLEDGER_VALUES_FILE")
    if not where:
        print("jobledger-values: JOBLEDGER_VALUES_FILE is not set: run this inside a jobledger job", file=sys.stderr)
        return 2
    path = Path(where)
    try:
        values = _load(path)
    except ValueError as exc:
        print(f"jobledger-values: {exc}", file=sys.stderr)
        return 2
    if args[:1] == ["set"] and len(args) == 3:
        try:
            values[args[1]] = json.loads(args[2])
        except ValueError:
            values[args[1]] = args[2]  # not JSON: the text itself
    elif args[:1] == ["unset"] and len(args) == 2:
        values.pop(args[1], None)
    elif args[:1] == ["get"] and len(args) == 2:
        if args[1] not in values:
            print(f"jobledger-values: no value {args[1]}", file=sys.stderr)
            return 1
        print(json.dumps(values[args[1]]))
        return 0
    elif args == ["show"]:
        print(json.dumps(values, indent=2))
        return 0
    else:
        print(_USAGE, file=sys.stderr)
        return 2
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(values))
    temporary.replace(path)  # whole or not at all, if the job is killed meanwhile
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What an import must find in a file before it writes anything: every event readable, foldable and lawful.

The chain and checksum only prove a file was not changed since it was written; a file written wrong (an
event of an unknown type, a missing field, an aggregate id that is a list, a run ended twice, a version
gap) passes them. Loading one would leave a store its own commands cannot read, so it is refused whole.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from queue_core.errors import DamagedFile
from queue_core.eventlog.chain import walk
from queue_core.eventlog.events import Recorded
from queue_core.eventlog.transfer import ExportReader, export_records
from queue_core.readmodels.oracle import check_records

__all__ = ["check_export"]

SHOWN_PROBLEMS = 3


def check_export(path: str | Path) -> int:
    """The number of events in the export at ``path``; ``DamagedFile`` naming its first problems, if any.

    An export of part of a log (``--since``) is left to the import itself, which refuses it in its own words.
    """
    with ExportReader(path) as reader:
        if reader.header.chain_start:
            return reader.header.events
        entries = list(reader.entries())  # read once; the checksum is checked at its end
    report = walk(entries, previous="")  # a file changed since it was written is damaged, whatever it holds
    if not report.intact:
        raise DamagedFile(f"{path} is damaged: the hash chain breaks at {report.broken_at} ({report.reason})")
    records = export_records(entries, str(path))
    for rec in records:
        wrong = _wrong_field(rec)
        if wrong is not None:
            raise DamagedFile(f"{path} cannot be imported: the {rec.type} at {rec.position} has {wrong}")
    problems = check_records(records)
    if problems:
        more = f" (and {len(problems) - SHOWN_PROBLEMS} more)" if len(problems) > SHOWN_PROBLEMS else ""
        raise DamagedFile(f"{path} cannot be imported: {'; '.join(problems[:SHOWN_PROBLEMS])}{more}")
    return len(records)


_KINDS: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}


def _wrong_field(rec: Recorded) -> str | None:
    """The first field whose value is not of the kind its event class declares (plain kinds only), or None."""
    for field in dataclasses.fields(rec.event):
        kinds = str(field.type).replace(" ", "").split("|")
        allowed = tuple(k for kind in kinds for k in _KINDS.get(kind, ()))
        if len(allowed) != sum(len(_KINDS.get(kind, ())) for kind in kinds if kind != "None") or not allowed:
            continue  # a container or another class: its shape is the folds' and the oracle's to judge
        value = getattr(rec.event, field.name)
        if value is None and "None" in kinds:
            continue
        if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
            return f"{field.name} = {value!r}"[:120] + f", not {field.type}"
    return None

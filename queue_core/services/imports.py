"""What an import must find in a file before it writes anything: every event readable, foldable and lawful.

The chain and checksum only prove a file was not changed since it was written; a file written wrong (an
event of an unknown type, a missing field, an aggregate id that is a list, a run ended twice, a version
gap) passes them. Loading one would leave a store its own commands cannot read, so it is refused whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from queue_core.errors import DamagedFile
from queue_core.eventlog.events import Recorded, decode
from queue_core.eventlog.transfer import Entry, ExportReader
from queue_core.readmodels.oracle import check_records

__all__ = ["check_export"]

SHOWN_PROBLEMS = 3


def check_export(path: str | Path) -> int:
    """The number of events in the export at ``path``; ``DamagedFile`` naming its first problems, if any."""
    with ExportReader(path) as reader:
        records = list(_decoded(reader.entries(), str(path)))
    problems = check_records(records)
    if problems:
        more = f" (and {len(problems) - SHOWN_PROBLEMS} more)" if len(problems) > SHOWN_PROBLEMS else ""
        raise DamagedFile(f"{path} cannot be imported: {'; '.join(problems[:SHOWN_PROBLEMS])}{more}")
    return len(records)


def _decoded(entries: Iterator[Entry], where: str) -> Iterator[Recorded]:
    for position, envelope, _chain in entries:
        try:
            rec = decode(position, envelope)
        except Exception as exc:  # an unknown type, a missing field, a field of the wrong kind
            raise DamagedFile(f"{where} cannot be imported: the event at {position} cannot be read ({exc!r})") from None
        if not isinstance(rec.aggregate, str) or not isinstance(rec.version, int):
            raise DamagedFile(f"{where} cannot be imported: the event at {position} names no aggregate and version")
        yield rec

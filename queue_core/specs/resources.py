"""Resource files: the kinds a resource can be (a script or an archive), told by the file name."""

from __future__ import annotations

from pathlib import Path

from queue_core.errors import InvalidInput

__all__ = ["ARCHIVE_KINDS", "CONFIG_KINDS", "RESOURCE_KINDS", "is_archive", "kind_of"]

RESOURCE_KINDS = ("sh", "py", "sql", "jar", "hql", "xml", "zip", "tar", "tar.gz")
# ``jar``: run with ``java -jar``; ``hql``: Hive SQL, run as DuckDB SQL (``specs.hive``); ``xml``: a
# configuration file delivered beside a task's entry file (``config.configFiles``), never run itself.
CONFIG_KINDS = frozenset({"xml"})
ARCHIVE_KINDS = frozenset({"zip", "tar", "tar.gz"})


def kind_of(filename: str) -> str:
    """The resource kind of a file name by its extension, or ``InvalidInput``."""
    lower = filename.lower()
    for kind, suffixes in (("tar.gz", (".tar.gz", ".tgz")), ("tar", (".tar",)), ("zip", (".zip",))):
        if lower.endswith(suffixes):
            return kind
    suffix = Path(lower).suffix.lstrip(".")
    if suffix in ("sh", "py", "sql", "jar", "hql", "xml"):
        return suffix
    raise InvalidInput(f"{filename!r} is not one of {', '.join('.' + k for k in RESOURCE_KINDS)}", "resource")


def is_archive(kind: str) -> bool:
    """Whether a resource of this kind is extracted (an archive) rather than run as it is (a script)."""
    return kind in ARCHIVE_KINDS

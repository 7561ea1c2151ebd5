"""The one error root of jobledger and the typed errors users see."""

from __future__ import annotations

import redis

__all__ = [
    "AlreadyExists",
    "AlreadyTerminal",
    "AppendFailed",
    "ArchiveMismatch",
    "ArchiveUnavailable",
    "ConcurrencyError",
    "DamagedFile",
    "InvalidInput",
    "JobledgerError",
    "NotFound",
    "StoreEpochChanged",
    "StoreFull",
    "StoreNotEmpty",
    "StoreUnavailable",
    "TrimRefused",
    "UnsafeStore",
    "WaitTimeout",
]


class JobledgerError(Exception):
    """Root of every error jobledger raises on purpose; its message is one line for the user."""

    exit_code = 1


class InvalidInput(JobledgerError):
    """Raised when a command's input is malformed; nothing was appended."""

    exit_code = 2

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.detail = message  # what is wrong, without the field


class NotFound(JobledgerError):
    """Raised when a named or identified thing does not exist (or no longer does)."""

    exit_code = 2


class AlreadyExists(JobledgerError):
    """Raised when a create would reuse a name that a live thing holds."""

    exit_code = 2


class AlreadyTerminal(JobledgerError):
    """Raised when a command targets a run that has already ended; the message names its state."""

    exit_code = 2

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


class ConcurrencyError(JobledgerError):
    """Raised by the store when an aggregate is not at the version the writer expected."""

    def __init__(self, aggregate: str, expected: int, actual: int) -> None:
        super().__init__(f"aggregate {aggregate} is at version {actual}, expected {expected}")
        self.aggregate = aggregate
        self.expected = expected
        self.actual = actual


class AppendFailed(JobledgerError):
    """Raised when the append script refused a batch before writing anything."""


class UnsafeStore(JobledgerError):
    """Raised when the Redis behind the store could lose events (an evicting maxmemory policy)."""

    exit_code = 4


class StoreUnavailable(JobledgerError, redis.ConnectionError):
    """Raised when Redis cannot be reached or does not answer in time (also a ``redis.ConnectionError``)."""

    exit_code = 4


class StoreEpochChanged(JobledgerError):
    """Raised when the store came back empty, or holds another log than the one this process or machine knew."""

    exit_code = 4


class StoreFull(JobledgerError):
    """Raised when Redis refuses a write because it reached its maxmemory; nothing was appended."""

    exit_code = 4


class DamagedFile(JobledgerError):
    """Raised when an export file or archive segment fails its format, checksum or hash-chain check."""

    exit_code = 2


class StoreNotEmpty(JobledgerError):
    """Raised when an import or restore targets a store that already holds keys; nothing was written."""

    exit_code = 2


class ArchiveMismatch(JobledgerError):
    """Raised when an archive does not hold what a command needs, or holds another store's log."""

    exit_code = 2


class ArchiveUnavailable(JobledgerError):
    """Raised when the S3 archive cannot be reached or read (no bucket, no credentials, no network)."""

    exit_code = 4


class WaitTimeout(JobledgerError):
    """Raised when a run or workflow run has not ended within the time a wait was given; it goes on."""

    exit_code = 3


class TrimRefused(JobledgerError):
    """Raised when a trim would drop entries a reader still needs: unread by a dispatcher, or the newest."""

    exit_code = 2

"""The one error root of jobledger, the typed errors users see, and the remedies they can carry."""

from __future__ import annotations

from enum import StrEnum

import redis

__all__ = [
    "AlreadyExists",
    "AlreadyTerminal",
    "AppendFailed",
    "ArchiveMismatch",
    "ArchiveUnavailable",
    "ColdAggregate",
    "ConcurrencyError",
    "DamagedFile",
    "IdempotencyKeyReused",
    "InvalidInput",
    "JobledgerError",
    "NotFound",
    "PoolInUse",
    "Quarantined",
    "Remedy",
    "SparkUnavailable",
    "StopRequested",
    "StoreEpochChanged",
    "StoreFull",
    "StoreNotEmpty",
    "StoreUnavailable",
    "StoreUnderMaintenance",
    "TrimRefused",
    "UnsafeStore",
    "WaitTimeout",
]


class Remedy(StrEnum):
    """What puts an error right, named here without any face's words: each face (the CLI) says how to do it.

    Messages raised below the faces name fields and things, never a command or a flag; an error whose fix is
    a step of its own carries one of these, and ``subject`` when the step needs a name.
    """

    STORE_SECRET = "store-secret"  # a credential given as a value: keep it in a secret, write {"secret": NAME}
    PASSWORD_SECRET = "password-secret"  # a password in a DSN: keep it in a secret, name that in password_secret
    SET_SECRET = "set-secret"  # the secret ``subject`` is not set
    ADD_DEPOT = "add-depot"  # no depot ``subject``
    ADD_RESOURCE = "add-resource"  # no resource ``subject``
    CREATE_CLUSTER = "create-cluster"  # no cluster ``subject``
    CREATE_POOL = "create-pool"  # no pool ``subject``
    RERUN_DOWNSTREAM = "rerun-downstream"  # an upstream task ``subject`` did not succeed: rerun it and downstream
    SUBMIT_NOW = "submit-now"  # a time already past: submit a run now rather than schedule one
    END_MAINTENANCE = "end-maintenance"  # an import, restore or rebuild died holding the maintenance marker


class JobledgerError(Exception):
    """Root of every error jobledger raises on purpose; its message is one line for the user."""

    exit_code = 1
    remedy: Remedy | None = None
    subject: str | None = None

    def __init__(self, *args: object, remedy: Remedy | None = None, subject: str | None = None) -> None:
        super().__init__(*args)
        if remedy is not None:
            self.remedy = remedy
        if subject is not None:
            self.subject = subject


class InvalidInput(JobledgerError):
    """Raised when a command's input is malformed; nothing was appended."""

    exit_code = 2

    def __init__(
        self, message: str, field: str | None = None, *, remedy: Remedy | None = None, subject: str | None = None
    ) -> None:
        super().__init__(f"{field}: {message}" if field else message, remedy=remedy, subject=subject)
        self.field = field
        self.detail = message  # what is wrong, without the field


class SparkUnavailable(JobledgerError):
    """Raised when a Spark pipeline is submitted (or a Spark node started) where PySpark or Java is missing."""

    exit_code = 2


class NotFound(JobledgerError):
    """Raised when a named or identified thing does not exist (or no longer does)."""

    exit_code = 2


class Quarantined(JobledgerError):
    """Raised when an aggregate's history cannot be folded (one of its events made the fold raise)."""

    # The aggregate is left alone (nothing decides on it); everything else goes on. A run or a workflow run in
    # this state can still be cancelled.

    def __init__(self, aggregate: str, position: str, event_type: str, error: str) -> None:
        super().__init__(f"{aggregate} is quarantined: folding its {event_type} at {position} raised {error}"[:400])
        self.aggregate = aggregate
        self.position = position
        self.subject = aggregate


class AlreadyExists(JobledgerError):
    """Raised when a create would reuse a name that a live thing holds."""

    exit_code = 2


class IdempotencyKeyReused(AlreadyExists):
    """Raised when an idempotency key comes back with other parameters; the message names the key's run."""

    def __init__(self, message: str, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class PoolInUse(JobledgerError):
    """Raised when a pool that runs hold or wait for is deleted; nothing was appended."""

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


class ColdAggregate(JobledgerError):
    """Raised when a write targets an aggregate compaction moved to the cold tier: it ended for good."""

    exit_code = 2


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


class StoreUnderMaintenance(JobledgerError):
    """Raised when an import, a restore or a rebuild holds the store's maintenance marker; nothing was written."""

    exit_code = 2


class StopRequested(JobledgerError):
    """Raised when a process told to stop gives up a wait (for another process's rebuild, for maintenance)."""

    exit_code = 130


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

"""jobledger's core: the event log, projections, job definitions, runs and the Client API."""

from queue_core.client import Client, DefineResult, ScheduleRequest, WaitTimeout
from queue_core.errors import (
    AlreadyExists,
    AlreadyTerminal,
    AppendFailed,
    ConcurrencyError,
    IdempotencyKeyReused,
    InvalidInput,
    JobledgerError,
    NotFound,
    StoreEpochChanged,
    StoreFull,
    StoreUnavailable,
    StoreUnderMaintenance,
    UnsafeStore,
)
from queue_core.settings import Settings

__all__ = [
    "AlreadyExists",
    "AlreadyTerminal",
    "AppendFailed",
    "Client",
    "ConcurrencyError",
    "DefineResult",
    "IdempotencyKeyReused",
    "InvalidInput",
    "JobledgerError",
    "NotFound",
    "ScheduleRequest",
    "Settings",
    "StoreEpochChanged",
    "StoreFull",
    "StoreUnavailable",
    "StoreUnderMaintenance",
    "UnsafeStore",
    "WaitTimeout",
]

"""jobledger's core: the event log, projections, job definitions, runs and the Client API."""

from .client import Client, DefineResult, WaitTimeout
from .errors import (
    AlreadyExists,
    AlreadyTerminal,
    AppendFailed,
    ConcurrencyError,
    InvalidInput,
    JobledgerError,
    NotFound,
    StoreEpochChanged,
    StoreFull,
    StoreUnavailable,
    UnsafeStore,
)
from .settings import Settings

__all__ = [
    "AlreadyExists",
    "AlreadyTerminal",
    "AppendFailed",
    "Client",
    "ConcurrencyError",
    "DefineResult",
    "InvalidInput",
    "JobledgerError",
    "NotFound",
    "Settings",
    "StoreEpochChanged",
    "StoreFull",
    "StoreUnavailable",
    "UnsafeStore",
    "WaitTimeout",
]

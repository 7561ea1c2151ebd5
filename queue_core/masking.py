"""Masking secret values as ``***`` in run logs, error messages and log lines of the current attempt."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "Masker", "active", "install_stdlib_masking", "masking", "structlog_processor"]

MASK = "***"


class Masker:
    """Replaces every known secret value, and its URL-encoded forms, with ``***``."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        forms = set()
        for value in values:
            if value:
                forms.update({value, quote(value, safe=""), quote_plus(value), value.rstrip("\n")})
        forms.discard("")
        # Longest first, so a secret containing another is masked whole.
        self._forms = sorted(forms, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._forms)

    def mask(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def mask_value(self, value: Any) -> Any:
        """``value`` with every string inside it (dicts, lists, tuples) masked."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {k: self.mask_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.mask_value(v) for v in value)
        if isinstance(value, BaseException):
            return self.mask(f"{type(value).__name__}: {value}")
        return value


# The worker runs one attempt at a time in one thread (RQ's SimpleWorker): one active masker per process.
_active = Masker()
_previous_factory = logging.getLogRecordFactory()


def active() -> Masker:
    """The masker of the attempt in progress (empty outside one)."""
    return _active


@contextmanager
def masking(values: Iterable[str]) -> Iterator[Masker]:
    """Mask ``values`` in this process's log lines (structlog and stdlib) until the block ends."""
    global _active
    before = _active
    _active = Masker([*before._forms, *values])
    try:
        yield _active
    finally:
        _active = before


def structlog_processor(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """A structlog processor masking the active secrets in every field of a log line."""
    if not _active:
        return event_dict
    return {key: _active.mask_value(value) for key, value in event_dict.items()}


def _masking_record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Stdlib records (RQ's, botocore's) are masked once, when created, message and traceback both."""
    record = _previous_factory(*args, **kwargs)
    if _active:
        record.msg = _active.mask(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = _active.mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
    return record


def install_stdlib_masking() -> None:
    """Mask stdlib log records too (idempotent)."""
    if logging.getLogRecordFactory() is not _masking_record_factory:
        logging.setLogRecordFactory(_masking_record_factory)

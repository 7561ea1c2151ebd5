"""Masking secret values as ``***`` in run logs, error messages and log lines of the current attempt.

What is masked, for each value: the value, and, when it has several lines, each line of at least
``MIN_LINE_CHARS`` characters (GitHub Actions' rule: output is masked line by line, so each line of a
PEM key must be a secret of its own); and for each of those, its URL-encodings, hex (lower and upper
case) and base64 (standard and URL-safe, with and without padding, standalone and inside a longer
base64 text at each of the three byte alignments). A job that transforms a value in another way
(reversed, gzipped, split across lines) is not masked: no masker can know every transformation.

All forms are found by one Aho-Corasick automaton (pyahocorasick, in C): a line is scanned once, whatever
the number of forms, and every stretch of text some form covers (overlapping forms merged) becomes one
``***``. Measured against one ``str.replace`` per form and against one compiled regular expression (a trie
of the forms), it was the only one of the three faster than the masker it replaced while masking every
form above (benchmarks/bench_masking.py).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, quote_plus

import ahocorasick

__all__ = [
    "MASK",
    "MIN_LINE_CHARS",
    "Masker",
    "active",
    "forms_of",
    "install_stdlib_masking",
    "masking",
    "structlog_processor",
]

MASK = "***"
# A line of a multi-line value shorter than this is not masked on its own: lines such as "-----", "}" or
# "END" would mask most of a log, and a line this short carries little of the secret.
MIN_LINE_CHARS = 6


def _base64_forms(data: bytes) -> set[str]:
    """``data`` in standard and URL-safe base64, padded and not, standalone and inside a longer base64 text.

    Inside a longer text, ``data`` starts at one of three alignments within a 3-byte group; for each, the
    characters that encode ``data`` alone (not its neighbours) are a fixed string.
    """
    standard = base64.b64encode(data).decode()
    forms = {standard, standard.rstrip("=")}
    for skip_bytes, skip_chars in ((0, 0), (1, 2), (2, 3)):
        total = skip_bytes + len(data)
        encoded = base64.b64encode(b"\x00" * skip_bytes + data).decode()
        # Full groups are determined; a last partial group of r bytes determines r of its characters.
        end = total // 3 * 4 + total % 3
        if end - skip_chars >= MIN_LINE_CHARS:
            forms.add(encoded[skip_chars:end])
    return forms | {form.translate(str.maketrans("+/", "-_")) for form in forms}


def _unit_forms(unit: str, embedded: bool) -> set[str]:
    data = unit.encode()
    forms = {unit, quote(unit, safe=""), quote_plus(unit), data.hex(), data.hex().upper()}
    if embedded:
        forms |= _base64_forms(data)
    else:  # too short to look for inside other base64 without masking look-alikes: only standalone
        standard = base64.b64encode(data).decode()
        forms |= {text.translate(str.maketrans("+/", "-_")) for text in (standard, standard.rstrip("="))}
        forms |= {standard, standard.rstrip("=")}
    return forms


def forms_of(value: str) -> set[str]:
    """Every text masked for ``value``: the value, its long-enough lines, and their encodings."""
    units = {value, value.rstrip("\n")}
    if "\n" in value.strip("\n"):
        units |= {line.strip() for line in value.splitlines() if len(line.strip()) >= MIN_LINE_CHARS}
    forms: set[str] = set()
    for unit in units:
        if unit:
            forms |= _unit_forms(unit, embedded=len(unit) >= MIN_LINE_CHARS)
    # A form made only of the mask's character cannot be told from a mask (masking it would never end).
    return {form for form in forms if form.strip(MASK[0])}


class Masker:
    """Replaces every known secret value, its long-enough lines and their encoded forms with ``***``."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values = tuple(dict.fromkeys(value for value in values if value))
        forms = set().union(*(forms_of(value) for value in self.values)) if self.values else set()
        self._automaton: Any = None
        if forms:
            self._automaton = ahocorasick.Automaton()
            for form in forms:
                self._automaton.add_word(form, len(form))
            self._automaton.make_automaton()
        # Only a form holding the mask's character can reappear around a mask: only then is a second pass needed.
        self._again = any(MASK[0] in form for form in forms)

    def __bool__(self) -> bool:
        return self._automaton is not None

    def mask(self, text: str) -> str:
        """``text`` with every stretch covered by some form replaced by one ``***`` (overlapping forms merge)."""
        if self._automaton is None:
            return text
        while True:
            # Every occurrence, overlapping ones too (iter_long skips some), as (start, stop) spans.
            spans = sorted((end - length + 1, end + 1) for end, length in self._automaton.iter(text))
            if not spans:
                return text
            pieces: list[str] = []
            last, (start, stop) = 0, spans[0]
            for begin, end in spans[1:]:
                if begin <= stop:
                    stop = max(stop, end)
                else:
                    pieces += (text[last:start], MASK)
                    last, start, stop = stop, begin, end
            pieces += (text[last:start], MASK, text[stop:])
            text = "".join(pieces)
            if not self._again:
                return text  # else mask again: each pass leaves fewer characters that are not '*'

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
    _active = Masker([*before.values, *values])
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

"""The checks specs are made of: each returns the value it accepts, or raises ``InvalidInput`` naming the field."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from pathlib import PurePosixPath
from typing import Any

from queue_core.errors import InvalidInput

__all__ = [
    "MAX_TEXT_CHARS",
    "NAME_PATTERN",
    "boolean",
    "choice",
    "endpoint_url",
    "inside",
    "mapping",
    "name",
    "no_unknown",
    "non_empty_list",
    "non_empty_string",
    "number",
    "region",
    "relative_path",
    "shown",
    "text",
    "unicode_text",
    "whole_number",
]

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
MAX_TEXT_CHARS = 10_000
_REGION = re.compile(r"[a-z0-9-]{1,64}")
_HTTP_URL = re.compile(r"^https?://[^\s/@]+(/\S*)?$")
_UUID_SHAPED = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def shown(value: Any) -> str:
    """How a message shows a value it refuses: its repr, or ``the value`` when that is long."""
    text = repr(value)
    return text if len(text) <= 140 else "the value"


def inside(field: str, key: object) -> str:
    """The field of ``key`` within ``field`` (``key`` alone at the top of a document).

    A key that is not a plain printable name is shown as its repr: no newline or terminal escape reaches a message.
    """
    name = key if isinstance(key, str) and key.isprintable() and len(key) <= 140 else shown(key)
    return f"{field}.{name}" if field else str(name)


def mapping(value: Any, field: str) -> Mapping[str, Any]:
    """An object."""
    if not isinstance(value, Mapping):
        raise InvalidInput("must be an object", field)
    return value


def no_unknown(raw: Mapping[str, Any], allowed: Collection[str], field: str) -> None:
    """Refuse the first key of ``raw`` that is not ``allowed``, naming it."""
    for key in raw:
        if key not in allowed:
            raise InvalidInput("unknown field", inside(field, key))


def non_empty_list(value: Any, field: str) -> list[Any]:
    """A list with at least one item."""
    if not isinstance(value, list) or not value:
        raise InvalidInput("must be a non-empty list", field)
    return value


def text(value: Any, field: str, limit: int = MAX_TEXT_CHARS, optional: bool = False) -> str:
    """A string of at most ``limit`` characters (``optional``: None stands for the empty string)."""
    if value is None and optional:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(f"must be a string of at most {limit} characters", field)
    return value


def non_empty_string(value: Any, field: str, limit: int) -> str:
    """A string of 1 to ``limit`` characters."""
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidInput("must be a non-empty string", field)
    return value


def unicode_text(value: Any, field: str) -> None:
    """Refuse a string anywhere in ``value`` (keys too) that is not Unicode text: a lone surrogate, as a
    JSON ``\\udcff`` escape or a Python caller can produce, has no UTF-8 form and could not be stored."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput("is not valid Unicode text (a lone surrogate)", field) from None
    elif isinstance(value, Mapping):
        for key, item in value.items():
            unicode_text(key, field or "definition")
            unicode_text(item, inside(field, key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            unicode_text(item, f"{field}[{i}]")


def name(value: Any, field: str = "name") -> str:
    """A name: letters, digits, ``_ . -``, at most 128, not shaped like a UUID."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        shown = repr(value) if isinstance(value, str) and len(value) <= 140 else "the value"
        raise InvalidInput(f"{shown} is not a valid name (letters, digits, '_', '.', '-'; at most 128)", field)
    if _UUID_SHAPED.fullmatch(value):
        # Commands take NAME-or-UUID: a name shaped like a UUID could never be told apart from an id.
        raise InvalidInput(f"{value!r} looks like a UUID; a name must not", field)
    return value


def relative_path(value: Any, field: str, allow_empty: bool = False) -> str:
    """A relative path that cannot leave the directory it is resolved under."""
    if not isinstance(value, str):
        raise InvalidInput("must be a string", field)
    if value == "" and allow_empty:
        return value
    if value == "" or "\x00" in value:
        raise InvalidInput("must be a non-empty path without NUL bytes", field)
    path = PurePosixPath(value)
    if path.is_absolute() or value.startswith("~") or ".." in path.parts:
        raise InvalidInput(f"{value!r} leaves the workspace (path_outside_workspace)", field)
    return value


def number(value: Any, field: str) -> float:
    """A finite int or float (not a bool), as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"must be a number, not {shown(value)}", field)
    return float(value)


def whole_number(value: Any, field: str, low: int, high: int | None = None, what: str = "whole number") -> int:
    """An int (not a bool) from ``low`` (to ``high``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        upper = "" if high is None else f" to {high}"
        raise InvalidInput(f"must be a {what} from {low}{upper}, not {shown(value)}", field)
    return value


def boolean(value: Any, field: str) -> bool:
    """``true`` or ``false``."""
    if not isinstance(value, bool):
        raise InvalidInput("must be true or false", field)
    return value


def choice(value: Any, allowed: Collection[str], field: str, what: str | None = None, fold_case: bool = False) -> str:
    """One of ``allowed``; ``fold_case``: in any case, returned as ``allowed`` spells it.

    The message names the ``what`` (``unknown job type 'X'; use one of ...``) or shows the value.
    """
    options = tuple(allowed)
    found = value
    if fold_case and isinstance(value, str):
        found = next((option for option in options if option.lower() == value.lower()), value)
    if found not in options:
        if what is not None:
            raise InvalidInput(f"unknown {what} {shown(value)}; use one of {', '.join(options)}", field)
        raise InvalidInput(f"{shown(value)} is not one of {', '.join(options)}", field)
    return str(found)


def region(value: Any, field: str) -> str:
    """A cloud region name such as ``eu-west-1``."""
    if not isinstance(value, str) or not _REGION.fullmatch(value):
        raise InvalidInput("is not a region name such as eu-west-1", field)
    return value


def endpoint_url(value: Any, field: str) -> str:
    """An ``http(s)://`` URL with no credential in it."""
    if not isinstance(value, str) or not _HTTP_URL.match(value):
        raise InvalidInput("is not an http(s):// URL without a credential in it", field)
    return value

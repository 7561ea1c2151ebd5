"""Validation of a ``notifications`` section: which events reach which destinations (webhook, Slack, email)."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from queue_core.errors import InvalidInput
from queue_core.specs import checks

__all__ = [
    "DESTINATION_KINDS",
    "JOB_EVENTS",
    "SCHEDULE_EVENTS",
    "destination_label",
    "destinations_of",
    "normalize_notifications",
    "secret_names",
]

ON_START, ON_SUCCESS, ON_FAILURE, ON_DURATION_WARNING, ON_MISSED_TICK = (
    "onStart",
    "onSuccess",
    "onFailure",
    "onDurationWarning",
    "onMissedTick",
)
# A definition's and a workflow's runs start, succeed, fail and run long; a schedule's ticks are missed.
JOB_EVENTS = (ON_START, ON_SUCCESS, ON_FAILURE, ON_DURATION_WARNING)
SCHEDULE_EVENTS = (ON_MISSED_TICK,)
DESTINATION_KINDS = ("webhook", "slack", "email")
MAX_DESTINATIONS = 10
MAX_URL_CHARS = 2048
MAX_WARNING_MINUTES = 7 * 24 * 60.0
_EMAIL = re.compile(r"[^@\s<>,;\"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")


def _url(value: Any, field: str) -> str:
    """An http:// or https:// URL with a host and no credential in it; the value is never echoed."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL_CHARS or any(c.isspace() for c in value):
        raise InvalidInput("must be an http:// or https:// URL", field)
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput("holds a control character", field)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port is what refuses a bad one
    except ValueError:
        raise InvalidInput("is not a valid URL", field) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("must be an http:// or https:// URL", field)
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("carries a credential; sign with a secret instead", field)
    return value


def _secret(value: Any, field: str) -> dict[str, str]:
    if isinstance(value, str):
        raise InvalidInput('a literal secret is not accepted; store it as a secret and write {"secret": "NAME"}', field)
    ref = checks.mapping(value, field)
    if set(ref) != {"secret"}:
        raise InvalidInput('must be a secret reference {"secret": "NAME"}', field)
    return {"secret": checks.name(ref["secret"], f"{field}.secret")}


def _destination(raw: Any, field: str) -> dict[str, Any]:
    dest = checks.mapping(raw, field)
    kinds = [kind for kind in DESTINATION_KINDS if kind in dest]
    if len(kinds) != 1:
        raise InvalidInput("needs exactly one of webhook, slack or email", field)
    kind = kinds[0]
    checks.no_unknown(dest, {"webhook", "secret"} if kind == "webhook" else {kind}, field)
    if kind == "email":
        address = dest["email"]
        if not isinstance(address, str) or len(address) > 254 or not _EMAIL.fullmatch(address):
            raise InvalidInput(f"{checks.shown(address)} is not an email address", f"{field}.email")
        return {"email": address}
    out: dict[str, Any] = {kind: _url(dest[kind], f"{field}.{kind}")}
    if "secret" in dest:
        out["secret"] = _secret(dest["secret"], f"{field}.secret")
    return out


def _destinations(raw: Any, field: str) -> list[dict[str, Any]]:
    items = checks.non_empty_list(raw, field)
    if len(items) > MAX_DESTINATIONS:
        raise InvalidInput(f"at most {MAX_DESTINATIONS} destinations", field)
    return [_destination(item, f"{field}[{number}]") for number, item in enumerate(items)]


def _duration_warning(raw: Any, field: str) -> dict[str, Any]:
    warning = checks.mapping(raw, field)
    checks.no_unknown(warning, {"after", "to"}, field)
    after = checks.number(warning.get("after"), f"{field}.after")
    if not 0 < after <= MAX_WARNING_MINUTES:
        raise InvalidInput(f"must be more than 0 and at most {MAX_WARNING_MINUTES:g} minutes", f"{field}.after")
    return {"after": after, "to": _destinations(warning.get("to"), f"{field}.to")}


def normalize_notifications(raw: Any, field: str, events: Collection[str] = JOB_EVENTS) -> dict[str, Any]:
    """The section with each event's destinations checked; an event another owner takes is refused by name."""
    section = checks.mapping(raw, field)
    out: dict[str, Any] = {}
    for key, value in section.items():
        where = checks.inside(field, key)
        if key not in (*JOB_EVENTS, *SCHEDULE_EVENTS):
            raise InvalidInput("unknown field", where)
        if key not in events:
            owner = "schedules" if key in SCHEDULE_EVENTS else "definitions and workflows"
            raise InvalidInput(f"applies to {owner} only", where)
        out[key] = _duration_warning(value, where) if key == ON_DURATION_WARNING else _destinations(value, where)
    return out


def destinations_of(section: Mapping[str, Any] | None, event: str) -> list[Mapping[str, Any]]:
    """The destinations ``event`` (``onStart`` ...) goes to under ``section``; none when it has none."""
    if not section or event not in section:
        return []
    found = section[event]
    return list(found["to"] if event == ON_DURATION_WARNING else found)


def _all_destinations(section: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for event in section:
        yield from destinations_of(section, event)


def secret_names(section: Mapping[str, Any] | None) -> list[str]:
    """The secrets the section's destinations name (to check they exist), each once."""
    if not section:
        return []
    return list(dict.fromkeys(d["secret"]["secret"] for d in _all_destinations(section) if "secret" in d))


def destination_label(dest: Mapping[str, Any]) -> str:
    """How listings show a destination: its kind and host (a URL's path may be a bearer token, as Slack's is)."""
    if "email" in dest:
        return f"email {dest['email']}"
    kind = "webhook" if "webhook" in dest else "slack"
    parts = urlsplit(dest[kind])
    return f"{kind} {parts.scheme}://{parts.netloc}"

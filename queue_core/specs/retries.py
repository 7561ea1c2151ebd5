"""Validation of a retry strategy's ``rules`` (AWS Batch's ``evaluateOnExit``) and its ``backoff``."""

from __future__ import annotations

import re
from typing import Any

from queue_core.errors import InvalidInput
from queue_core.specs import checks

__all__ = ["ACTIONS", "BACKOFF_TYPES", "normalize_backoff", "normalize_rules"]

ACTIONS = ("RETRY", "EXIT")
BACKOFF_TYPES = ("fixed", "exponential")
MAX_RULES = 20
MAX_EXIT_CODES = 50
MAX_PATTERN_CHARS = 512
DEFAULT_BACKOFF_FACTOR = 2.0
MAX_BACKOFF_FACTOR = 10.0
_RULE_KEYS = {"onExitCode", "onReason", "onLogMatch", "action"}
_CONDITIONS = ("onExitCode", "onReason", "onLogMatch")
_BACKOFF_KEYS = {"type", "factor", "max", "jitter"}
# An exit code pattern: digits, optionally ending in ``*`` (AWS Batch's form: "7*" is 7, 70-79, 700-799...).
_EXIT_PATTERN = re.compile(r"[0-9]{1,3}\*?|\*")


def _pattern(value: Any, field: str) -> str:
    text = checks.non_empty_string(value, field, MAX_PATTERN_CHARS)
    try:
        re.compile(text)
    except re.error as exc:
        raise InvalidInput(f"is not a valid regular expression: {exc}", field) from None
    return text


def _exit_codes(value: Any, field: str) -> list[int | str]:
    codes = checks.non_empty_list(value, field)
    if len(codes) > MAX_EXIT_CODES:
        raise InvalidInput(f"at most {MAX_EXIT_CODES} exit codes", field)
    out: list[int | str] = []
    for code in codes:
        if isinstance(code, str) and _EXIT_PATTERN.fullmatch(code):
            out.append(int(code) if code.isdigit() else code)
        elif isinstance(code, int) and not isinstance(code, bool) and 0 <= code <= 255:
            out.append(code)
        else:
            raise InvalidInput(f'{checks.shown(code)} is not an exit code 0-255 or a pattern such as "7*"', field)
    return out


def _rule(raw: Any, field: str) -> dict[str, Any]:
    rule = checks.mapping(raw, field)
    checks.no_unknown(rule, _RULE_KEYS, field)
    if not any(key in rule for key in _CONDITIONS):
        raise InvalidInput(f"needs at least one of {', '.join(_CONDITIONS)}", field)
    out: dict[str, Any] = {"action": checks.choice(rule.get("action"), ACTIONS, f"{field}.action", "action")}
    if "onExitCode" in rule:
        out["onExitCode"] = _exit_codes(rule["onExitCode"], f"{field}.onExitCode")
    for key in ("onReason", "onLogMatch"):
        if key in rule:
            out[key] = _pattern(rule[key], f"{field}.{key}")
    return out


def normalize_rules(raw: Any, field: str) -> list[dict[str, Any]]:
    """The rules in order, each with its action and the conditions given; evaluated first match wins."""
    rules = checks.non_empty_list(raw, field)
    if len(rules) > MAX_RULES:
        raise InvalidInput(f"at most {MAX_RULES} rules", field)
    return [_rule(rule, f"{field}[{number}]") for number, rule in enumerate(rules)]


def normalize_backoff(raw: Any, field: str, max_delay: float) -> dict[str, Any]:
    """``type`` fixed or exponential, ``factor`` (exponential only), ``max`` minutes, ``jitter``."""
    backoff = checks.mapping(raw, field)
    checks.no_unknown(backoff, _BACKOFF_KEYS, field)
    kind = checks.choice(backoff.get("type"), BACKOFF_TYPES, f"{field}.type", "backoff type")
    factor = DEFAULT_BACKOFF_FACTOR
    if "factor" in backoff:
        if kind != "exponential":
            raise InvalidInput("applies to exponential backoff only", f"{field}.factor")
        factor = checks.number(backoff["factor"], f"{field}.factor")
        if not 1 <= factor <= MAX_BACKOFF_FACTOR:
            raise InvalidInput(f"must be between 1 and {MAX_BACKOFF_FACTOR:g}", f"{field}.factor")
    ceiling = checks.number(backoff.get("max", max_delay), f"{field}.max")
    if not 0 < ceiling <= max_delay:
        raise InvalidInput(f"must be more than 0 and at most {max_delay:g} minutes", f"{field}.max")
    jitter = checks.boolean(backoff.get("jitter", False), f"{field}.jitter")
    out: dict[str, Any] = {"type": kind, "max": ceiling, "jitter": jitter}
    if kind == "exponential":
        out["factor"] = factor
    return out

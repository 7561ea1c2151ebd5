"""Tags: short labels on definitions, workflows, schedules and runs, validated one syntax for all."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from queue_core.errors import InvalidInput
from queue_core.specs import checks

__all__ = ["MAX_TAGS", "MAX_TAG_CHARS", "check_tag", "merge_tags", "normalize_tags"]

MAX_TAGS = 32
MAX_TAG_CHARS = 64
# Letters, digits and the punctuation label systems use (``team:data``, ``cost-center=42``, ``eu/west``);
# no space, no comma (tags are listed comma-separated), nothing a shell or a URL would need to quote.
_TAG = re.compile(r"[A-Za-z0-9_.:/=-]{1,64}")


def check_tag(value: Any, field: str = "tag") -> str:
    """One tag: 1 to 64 characters of letters, digits and ``_ . : / = -``."""
    if not isinstance(value, str) or not _TAG.fullmatch(value):
        raise InvalidInput(
            f"{checks.shown(value)} is not a tag (1-{MAX_TAG_CHARS} characters of letters, digits and _ . : / = -)",
            field,
        )
    return value


def normalize_tags(raw: Any, field: str = "tags") -> list[str]:
    """A list of tags, each checked, duplicates dropped (first kept), at most ``MAX_TAGS``."""
    if isinstance(raw, str) or not isinstance(raw, list | tuple):
        raise InvalidInput("must be a list of tags", field)
    tags = list(dict.fromkeys(check_tag(tag, f"{field}[{number}]") for number, tag in enumerate(raw)))
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"at most {MAX_TAGS} tags", field)
    return tags


def merge_tags(*groups: Iterable[str]) -> list[str]:
    """Tags of several sources in order (a definition's, then a workflow's, then a submit's), each once."""
    merged = list(dict.fromkeys(tag for group in groups for tag in group))
    if len(merged) > MAX_TAGS:
        raise InvalidInput(f"at most {MAX_TAGS} tags on a run (with those it inherits)", "tags")
    return merged

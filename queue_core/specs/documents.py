"""Reading user documents (definitions, workflows) from JSON or YAML files; a key given twice is an error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from queue_core.errors import InvalidInput

__all__ = ["load_document"]

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024


class _DuplicateKey(ValueError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a mapping naming a key twice is refused (it keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # ``<<: *anchor``: merged keys may be overridden, that is the point
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # an unhashable key: the base class reports it
            if duplicate:
                raise _DuplicateKey(f"the key {key!r} is given twice (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"the key {key!r} is given twice")
        out[key] = value
    return out


def load_document(path: str | Path) -> Any:
    """The parsed content of a JSON or YAML file, or ``InvalidInput`` saying why it cannot be read."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInput(f"{path} cannot be read: {exc.strerror}") from exc
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidInput(f"{path} is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path} cannot be read: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path} is not valid UTF-8 (byte {exc.start})") from exc
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text, object_pairs_hook=_unique_pairs)
        except RecursionError:
            raise InvalidInput(f"{path} is nested too deeply") from None
        except _DuplicateKey as exc:
            raise InvalidInput(f"{path}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path} is not valid JSON: {exc}") from exc
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except _DuplicateKey as exc:
        raise InvalidInput(f"{path}: {exc}") from None
    except RecursionError:
        raise InvalidInput(f"{path} is nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed"
        raise InvalidInput(f"{path} is not valid YAML{where}: {problem}") from exc

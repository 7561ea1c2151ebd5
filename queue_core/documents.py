"""Reading user documents (definitions, later workflows) from JSON or YAML files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml

from .errors import InvalidInput

__all__ = ["load_document"]

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024


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
            return orjson.loads(text)
        except RecursionError:  # pragma: no cover - orjson stops at its own depth limit first
            raise InvalidInput(f"{path} is nested too deeply") from None
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"{path} is not valid JSON: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise InvalidInput(f"{path} is nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed"
        raise InvalidInput(f"{path} is not valid YAML{where}: {problem}") from exc

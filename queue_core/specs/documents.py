"""Reading user documents (definitions, workflows, pipeline files) from JSON or YAML files, within bounds.

A key given twice is an error; a file must be a regular file within the size cap (checked on the open
file: no FIFO, no device); a YAML document whose aliases would expand past ``MAX_DOCUMENT_NODES`` nodes
(a "billion laughs") or that nests deeper than ``MAX_DOCUMENT_DEPTH`` is refused before it is built.
No error shows the file's content.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from queue_core.errors import InvalidInput

__all__ = ["MAX_DOCUMENT_BYTES", "MAX_DOCUMENT_DEPTH", "MAX_DOCUMENT_NODES", "load_document", "read_regular_file"]

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
MAX_DOCUMENT_NODES = 200_000  # values in the document once every alias is expanded
MAX_DOCUMENT_DEPTH = 200  # objects and lists inside one another


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


def read_regular_file(path: str | Path, limit: int = MAX_DOCUMENT_BYTES, within: Path | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, checked on the open file.

    A FIFO or a device is refused without blocking on it; ``within``: the file, symlinks resolved, must lie
    inside that folder (a file fetched from a source may not point out of its checkout).
    """
    path = Path(path)
    if within is not None:
        try:
            path.resolve().relative_to(within.resolve())
        except (ValueError, OSError):
            raise InvalidInput(f"{path.name} points outside its folder") from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidInput(f"{path} cannot be read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInput(f"{path} is not a regular file")
        if info.st_size > limit:
            raise InvalidInput(f"{path} is larger than {limit} bytes")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, 1024 * 1024)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        raw = b"".join(chunks)
    except OSError as exc:
        raise InvalidInput(f"{path} cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(raw) > limit:  # it grew while we read it
        raise InvalidInput(f"{path} is larger than {limit} bytes")
    return raw


def _check_size(node: yaml.Node, path: Path) -> None:
    """Refuse a composed YAML document that expands past the node cap or nests past the depth cap.

    Iterative, and memoized per node: an alias costs its target's expanded size without being walked again.
    """
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, int, bool]] = [(node, 1, False)]
    while stack:
        current, depth, children_done = stack.pop()
        if depth > MAX_DOCUMENT_DEPTH:
            raise InvalidInput(f"{path} nests deeper than {MAX_DOCUMENT_DEPTH} levels")
        if id(current) in sizes:
            continue
        if isinstance(current, yaml.SequenceNode):
            children = list(current.value)
        elif isinstance(current, yaml.MappingNode):
            children = [part for pair in current.value for part in pair]
        else:
            sizes[id(current)] = 1
            continue
        if children_done:
            total = 1 + sum(sizes[id(child)] for child in children)
            if total > MAX_DOCUMENT_NODES:
                raise InvalidInput(f"{path} expands to more than {MAX_DOCUMENT_NODES} values (aliases included)")
            sizes[id(current)] = total
            continue
        stack.append((current, depth, True))
        stack.extend((child, depth + 1, False) for child in children if id(child) not in sizes)


def _check_depth(value: Any, path: Path) -> Any:
    """``value`` when it nests no deeper than ``MAX_DOCUMENT_DEPTH`` (JSON has no aliases to expand)."""
    stack = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict | list):
            if depth > MAX_DOCUMENT_DEPTH:
                raise InvalidInput(f"{path} nests deeper than {MAX_DOCUMENT_DEPTH} levels")
            items = current.values() if isinstance(current, dict) else current
            stack.extend((item, depth + 1) for item in items)
    return value


def _load_yaml(text: str, path: Path) -> Any:
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, path)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_document(path: str | Path, within: Path | None = None) -> Any:
    """The parsed content of a JSON or YAML file, or ``InvalidInput`` saying why it cannot be read."""
    path = Path(path)
    raw = read_regular_file(path, MAX_DOCUMENT_BYTES, within)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path} is not valid UTF-8 (byte {exc.start})") from exc
    if path.suffix.lower() == ".json":
        try:
            return _check_depth(json.loads(text, object_pairs_hook=_unique_pairs), path)
        except RecursionError:
            raise InvalidInput(f"{path} is nested too deeply") from None
        except _DuplicateKey as exc:
            raise InvalidInput(f"{path}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path} is not valid JSON: {exc}") from exc
        except ValueError:  # Python's cap on the digits of an int
            raise InvalidInput(f"{path} holds a number too long to read") from None
    try:
        return _load_yaml(text, path)
    except _DuplicateKey as exc:
        raise InvalidInput(f"{path}: {exc}") from None
    except RecursionError:
        raise InvalidInput(f"{path} is nested too deeply") from None
    except ValueError:  # Python's cap on the digits of an int
        raise InvalidInput(f"{path} holds a number too long to read") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed"
        raise InvalidInput(f"{path} is not valid YAML{where}: {problem}") from exc

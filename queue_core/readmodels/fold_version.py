"""The digest of the code that turns events into read models: read models folded by other code are rebuilt.

It covers what a read model's content depends on, and nothing else: each projection's fold, entity and
index functions with everything they reach (the helpers they call, their handler tables, the constants
they use), each event class's fields and schema version, and decoding with its upcasters. Whole modules
are not hashed: an error message in a decision or a spec check changes no read model, and an upgrade
that changes only such things rebuilds nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import types
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from queue_core.eventlog.events import Event, decode


class Folding(Protocol):
    """What the digest reads of a projection (``projections.Projection``): its model, types and functions."""

    @property
    def model(self) -> str: ...
    @property
    def types(self) -> frozenset[str]: ...
    @property
    def apply(self) -> Callable[..., Any]: ...
    @property
    def entity(self) -> Callable[..., Any]: ...
    @property
    def indexes(self) -> Callable[..., Any]: ...


__all__ = ["fold_digest", "fold_inputs"]

_PACKAGE = "queue_core"
_SIMPLE = (str, bytes, int, float, bool, type(None))


def fold_digest(
    projections: Iterable[Folding], also: Iterable[Callable[..., Any]] = (), decoder: Callable[..., Any] = decode
) -> str:
    """Sixteen hex digits of ``fold_inputs``, taken as a set: what is reached twice, or in another order, is
    the same fold (a helper two folds share is one input, whichever module is walked first)."""
    digest = hashlib.sha256()
    for piece in sorted(set(fold_inputs(projections, also, decoder))):
        digest.update(piece.encode() + b"\0")
    return digest.hexdigest()[:16]


def fold_inputs(
    projections: Iterable[Folding], also: Iterable[Callable[..., Any]] = (), decoder: Callable[..., Any] = decode
) -> list[str]:
    """What the digest is made of, in order: the decoder and what it reaches, then per projection its model,
    event types and functions with what they reach, then the source alone of ``also`` (the fold loop)."""
    walk = _Walk()
    walk.visit("decode", decoder)
    for projection in projections:
        walk.pieces.append(f"projection {projection.model} {sorted(projection.types)}")
        walk.visit(f"{projection.model}.apply", projection.apply)
        walk.visit(f"{projection.model}.entity", projection.entity)
        walk.visit(f"{projection.model}.indexes", projection.indexes)
    walk.pieces += [_source(function) for function in also]
    return walk.pieces


def _ours(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module == _PACKAGE or module.startswith(f"{_PACKAGE}.")


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):  # no source shipped: the installed version is the best there is
        return f"{obj.__qualname__} {_installed_version()}"


def _installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("jobledger")
    except PackageNotFoundError:
        return "unknown"


def _names(code: types.CodeType) -> set[str]:
    """The global and attribute names a function's code uses, nested code (comprehensions, inner functions) too."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _event_fields(cls: type[Event]) -> str:
    shown = []
    for field in dataclasses.fields(cls):
        default = ""
        if field.default is not dataclasses.MISSING:
            default = f" = {field.default!r}"
        elif field.default_factory is not dataclasses.MISSING:
            default = f" = {getattr(field.default_factory, '__qualname__', 'factory')}()"
        shown.append(f"{field.name}: {field.type}{default}")
    return f"event {cls.__name__} v{cls.schema_version} ({', '.join(shown)})"


class _Walk:
    """From the roots, through the globals each of our functions names: sources, tables and constants met."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.seen: set[int] = set()
        self.kept: list[Any] = []  # what was seen stays alive, so no other object takes its id

    def visit(self, label: str, obj: Any) -> None:
        if isinstance(obj, _SIMPLE):
            self.pieces.append(f"{label} = {obj!r}")
            return
        if isinstance(obj, types.FunctionType | type):
            where = "" if _ours(obj) else f"{obj.__module__}."
            self.pieces.append(f"{label} -> {where}{obj.__qualname__}")
        if id(obj) in self.seen:
            return
        self.seen.add(id(obj))
        self.kept.append(obj)
        if isinstance(obj, types.FunctionType):
            if _ours(obj):
                self._function(obj)
        elif isinstance(obj, type):
            if _ours(obj):
                self._class(obj)
        elif isinstance(obj, types.ModuleType):
            pass  # what a function uses of a module of ours is looked up by name in ``_function``
        elif hasattr(obj, "__wrapped__"):  # functools.lru_cache and friends
            self.visit(label, obj.__wrapped__)
        elif isinstance(obj, dict):
            for key, value in obj.items():
                self.visit(f"{label}[{key!r}]", value)
        elif isinstance(obj, tuple | list):
            for i, value in enumerate(obj):
                self.visit(f"{label}[{i}]", value)
        elif isinstance(obj, set | frozenset):
            for value in sorted(obj, key=repr):
                self.visit(f"{label}{{}}", value)
        else:
            text = repr(obj)
            self.pieces.append(f"{label} = {type(obj).__qualname__ if ' at 0x' in text else text}")

    def _function(self, function: types.FunctionType) -> None:
        self.pieces.append(_source(function))
        scope = function.__globals__
        names = sorted(_names(function.__code__))
        modules = [scope[n] for n in names if isinstance(scope.get(n), types.ModuleType)]
        ours = [m for m in modules if m.__name__ == _PACKAGE or m.__name__.startswith(f"{_PACKAGE}.")]
        for name in names:
            if name in scope:
                self.visit(name, scope[name])
            for module in ours:  # ``module.helper(...)``
                if name in vars(module):
                    self.visit(f"{module.__name__}.{name}", vars(module)[name])
        for i, value in enumerate(function.__defaults__ or ()):
            self.visit(f"{function.__qualname__} default {i}", value)
        for name, value in sorted((function.__kwdefaults__ or {}).items()):
            self.visit(f"{function.__qualname__} default {name}", value)
        for i, cell in enumerate(function.__closure__ or ()):
            try:
                self.visit(f"{function.__qualname__} closure {i}", cell.cell_contents)
            except ValueError:  # a cell not filled yet
                continue

    def _class(self, cls: type) -> None:
        if issubclass(cls, Event):
            self.pieces.append(_event_fields(cls))
            return
        self.pieces.append(_source(cls))
        for name, value in vars(cls).items():
            if isinstance(value, types.FunctionType):
                self.visit(f"{cls.__qualname__}.{name}", value)

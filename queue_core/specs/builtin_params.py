"""The parameters of a built-in script: what each one is, its default, and its check."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from queue_core.errors import InvalidInput
from queue_core.specs import checks
from queue_core.specs.depots import check_identifier
from queue_core.specs.pipelines import FILE_FORMATS, SAVE_MODES, parse_address

__all__ = ["KINDS", "REQUIRED", "Builtin", "Param", "check_params", "coerce_param"]

REQUIRED: Any = None  # a parameter with no default must be given
MAX_LIST = 256
MAX_TEXT = 256
# What a parameter holds, as ``library show`` says it.
KINDS = {
    "dataset": "a dataset address dataos://DEPOT:COLLECTION/DATASET",
    "format": f"a format: {', '.join(FILE_FORMATS)} or table (left out: table in a warehouse depot, else parquet)",
    "saveMode": f"a save mode: {', '.join(SAVE_MODES.values())}",
    "column": "a column name",
    "columns": "a list of column names (on the command line: a,b,c)",
    "values": "a list of values (on the command line: a,b,c)",
    "choice": "one of the choices listed",
}


@dataclass(frozen=True)
class Param:
    """One parameter of a built-in: its name, kind (a key of ``KINDS``), what it means, its default."""

    name: str
    kind: str
    doc: str
    default: Any = REQUIRED
    choices: tuple[str, ...] = ()
    optional: bool = False  # may be left out with no default (None)

    @property
    def required(self) -> bool:
        return self.default is REQUIRED and not self.optional

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "required": self.required,
            "default": self.default,
            "choices": list(self.choices),
            "doc": self.doc,
        }


@dataclass(frozen=True)
class Builtin:
    """One version of a built-in script: what it does, its parameters, and the job it runs.

    ``build`` turns checked parameters into the job's section: ``("pipeline", raw pipeline)`` for a SQL
    built-in, ``("sync", raw sync)`` for one that is a DATA_SYNC. Formats left None are settled by depot type.
    """

    name: str
    version: int
    summary: str
    params: tuple[Param, ...]
    build: Callable[[Mapping[str, Any]], tuple[str, dict[str, Any]]]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "summary": self.summary,
            "params": [p.describe() for p in self.params],
        }


def _string_list(value: Any, field: str, what: str) -> list[str]:
    if not isinstance(value, list) or not value or len(value) > MAX_LIST:
        raise InvalidInput(f"must be a non-empty list of {what} (at most {MAX_LIST})", field)
    if len(set(map(str, value))) != len(value):
        raise InvalidInput("names one item twice", field)
    return value


def _check(param: Param, value: Any, field: str) -> Any:
    kind = param.kind
    if kind == "dataset":
        return parse_address(value, field)["address"]
    if kind == "format":
        fmt = checks.choice(value, (*FILE_FORMATS, "table", "bigquery"), field, "format", fold_case=True)
        return "table" if fmt == "bigquery" else fmt
    if kind == "saveMode":
        return checks.choice(value, SAVE_MODES.values(), field, "save mode", fold_case=True)
    if kind == "column":
        return check_identifier(value, field, "column name")
    if kind == "columns":
        names = _string_list(value, field, "column names")
        return [check_identifier(v, f"{field}[{i}]", "column name") for i, v in enumerate(names)]
    if kind == "values":
        values = _string_list(value, field, "values")
        for i, v in enumerate(values):
            if not isinstance(v, str | int) or isinstance(v, bool) or len(str(v)) > MAX_TEXT or "\x00" in str(v):
                raise InvalidInput(
                    f"must be a string or whole number of at most {MAX_TEXT} characters", f"{field}[{i}]"
                )
        return [str(v) for v in values]
    return checks.choice(value, param.choices, field)


def check_params(builtin: Builtin, raw: Any, field: str) -> dict[str, Any]:
    """Every parameter checked, defaults filled in; ``InvalidInput`` naming the first missing or bad one."""
    given = checks.mapping(raw if raw is not None else {}, field)
    known = {p.name for p in builtin.params}
    for name in given:
        if name not in known:
            raise InvalidInput(f"{builtin.ref} has no parameter {name!r}; it has {', '.join(sorted(known))}", field)
    out: dict[str, Any] = {}
    for param in builtin.params:
        where = f"{field}.{param.name}"
        if given.get(param.name) is None:
            if param.required:
                raise InvalidInput(f"is required ({KINDS[param.kind]}): {param.doc}", where)
            out[param.name] = param.default
            continue
        out[param.name] = _check(param, given[param.name], where)
    return out


def coerce_param(param: Param, text: str) -> Any:
    """A parameter's value from its text on the command line: a list is split at commas, the rest is as written."""
    if param.kind in ("columns", "values"):
        return [part.strip() for part in text.split(",") if part.strip()]
    return text

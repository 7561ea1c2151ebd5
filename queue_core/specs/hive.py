"""``hql`` resources: Hive SQL transpiled to DuckDB's dialect with SQLGlot, or refused naming what does not go.

A ``.hql`` script then runs like a ``.sql`` one (its statements in order, in the SQL job's locked-down session).
What has no DuckDB meaning is refused by name rather than run differently: statements SQLGlot cannot parse
(``ADD JAR``, ``SET``, ...), ``INSERT OVERWRITE`` and ``TRANSFORM ... USING`` (a script run per row).
"""

from __future__ import annotations

import logging
from typing import Any

from queue_core.errors import InvalidInput

__all__ = ["hive_to_duckdb"]


def _untranslatable(tree: Any) -> str | None:
    """The construct of a parsed Hive statement that has no DuckDB equivalent, if any."""
    from sqlglot import exp

    if isinstance(tree, exp.Command):
        words = [w for w in str(tree.this).split()[:2] if w.isalpha()]
        return " ".join(words).upper() or "a statement SQLGlot cannot parse"
    if isinstance(tree, exp.Insert) and tree.args.get("overwrite"):
        return "INSERT OVERWRITE"
    for node in tree.walk():  # sqlglot walks breadth first with a queue, not by recursion
        if isinstance(node, exp.QueryTransform):
            return "TRANSFORM ... USING (a script run per row)"
    return None


def hive_to_duckdb(text: str, field: str) -> str:
    """The Hive script as DuckDB SQL, statement by statement; ``InvalidInput`` naming the first that does not go."""
    import sqlglot
    from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError

    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its "falling back to a Command" warning is ours to say
    try:
        trees = [t for t in sqlglot.parse(text, read="hive") if t is not None]
    except ParseError as exc:
        raise InvalidInput(f"is not Hive SQL: {str(exc).splitlines()[0][:200]}", field) from None
    if not trees:
        raise InvalidInput("holds no statement", field)
    out = []
    for number, tree in enumerate(trees, 1):
        construct = _untranslatable(tree)
        if construct:
            raise InvalidInput(f"statement {number}: {construct} does not transpile to DuckDB", field)
        try:
            out.append(tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE))
        except UnsupportedError as exc:
            raise InvalidInput(f"statement {number}: {str(exc).splitlines()[0][:200]}", field) from None
    return ";\n".join(out) + ";\n"

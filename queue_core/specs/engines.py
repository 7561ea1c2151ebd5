"""SQL engines and step dialects: which engine runs a pipeline, and Flare's Spark SQL steps transpiled for DuckDB."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from queue_core.errors import InvalidInput
from queue_core.specs import checks

__all__ = ["DIALECTS", "ENGINES", "check_engine", "on_cluster_engine", "spark_to_duckdb", "transpile_steps"]

ENGINES = ("duckdb", "spark")
# The SQL a pipeline's steps are written in: a Flare job's are Spark SQL, a native pipeline's DuckDB SQL.
DIALECTS = ("duckdb", "spark")
# Spark SQL that SQLGlot parses but whose DuckDB form would mean something else, named when refused.
_SPARK_ONLY = {"TRANSFORM ... USING (a script run per row)": "QueryTransform"}


def check_engine(value: Any, field: str) -> str:
    """An engine this platform runs SQL pipelines on, or ``InvalidInput`` in one line."""
    return checks.choice(value, ENGINES, field, "engine", fold_case=True)


def _untranslatable(tree: Any) -> str | None:
    from sqlglot import exp

    if isinstance(tree, exp.Command):
        words = [w for w in str(tree.this).split()[:2] if w.isalpha()]
        return " ".join(words).upper() or "a statement SQLGlot cannot parse"
    if not isinstance(tree, exp.Query):
        return f"{type(tree).__name__.upper()} (a step is one query)"
    for node in tree.walk():  # sqlglot walks breadth first with a queue, not by recursion
        for construct, kind in _SPARK_ONLY.items():
            if type(node).__name__ == kind:
                return construct
    return None


def spark_to_duckdb(sql: str, field: str) -> str:
    """One Spark SQL query as DuckDB SQL; ``InvalidInput`` naming what does not transpile, suggesting Spark."""
    import sqlglot
    from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError

    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its "falling back to a Command" warning is ours to say
    hint = "; run it as written with engine: spark"
    try:
        trees = [t for t in sqlglot.parse(sql, read="spark") if t is not None]
    except ParseError as exc:
        raise InvalidInput(f"is not Spark SQL: {str(exc).splitlines()[0][:200]}", field) from None
    if len(trees) != 1:
        raise InvalidInput("must be one SQL query", field)
    construct = _untranslatable(trees[0])
    if construct:
        raise InvalidInput(f"{construct} does not transpile from Spark SQL to DuckDB{hint}", field)
    try:
        return str(trees[0].sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE))
    except UnsupportedError as exc:
        raise InvalidInput(f"does not transpile to DuckDB: {str(exc).splitlines()[0][:200]}{hint}", field) from None


def transpile_steps(pipeline: Mapping[str, Any], engine: str, field: str = "config.pipeline") -> dict[str, Any]:
    """A Spark-dialect pipeline's steps ready for ``engine``: on DuckDB each step's ``sql`` transpiled (the
    Spark SQL kept as ``spark_sql``), on Spark as written; a DuckDB-dialect pipeline runs on DuckDB only."""
    dialect = pipeline.get("dialect", "duckdb")
    if engine == "spark" and dialect == "duckdb" and pipeline["steps"]:
        raise InvalidInput("DuckDB SQL steps run on the duckdb engine: write Spark SQL (dialect: spark)", field)
    if engine == "spark" or dialect == "duckdb":
        return dict(pipeline)
    steps = []
    for i, step in enumerate(pipeline["steps"]):
        written = step.get("spark_sql", step["sql"])
        where = f"{field}.steps[{i}].sql"
        steps.append({"name": step["name"], "sql": spark_to_duckdb(written, where), "spark_sql": written})
    return {**pipeline, "steps": steps}


def on_cluster_engine(job: Mapping[str, Any], engine: str) -> dict[str, Any]:
    """A run's job on its cluster's default ``engine``: a SQL pipeline that names no engine and whose steps are
    Spark SQL goes to Spark (its steps as written) when the cluster's default is ``spark``. A definition's own
    ``engine`` wins; a pipeline in DuckDB SQL, a ``.sql`` script or a pipeline file stays on DuckDB."""
    pipeline = job.get("pipeline")
    if engine != "spark" or job.get("type") != "SQL" or "engine" in job or not pipeline:
        return dict(job)
    if pipeline.get("dialect") != "spark":
        return dict(job)
    steps = [{"name": step["name"], "sql": step.get("spark_sql", step["sql"])} for step in pipeline["steps"]]
    return {**job, "engine": "spark", "pipeline": {**pipeline, "steps": steps}}

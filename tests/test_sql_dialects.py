"""Engines and step dialects at define: pure rules, no Redis, no Spark."""

from __future__ import annotations

from typing import Any

import pytest

from queue_core import InvalidInput
from queue_core.specs.definitions import normalize_definition
from queue_core.specs.engines import on_cluster_engine

STEP = "SELECT nvl(a, 0) AS a, date_format(d, 'yyyy-MM') AS m FROM t"


def _definition(config: dict[str, Any] | None = None, stack: bool = False, **pipeline: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "p",
        "config": {"type": "SQL", "pipeline": {"steps": [{"sequence": [{"name": "s", "sql": STEP}]}], **pipeline}},
    }
    raw["config"].update(config or {})
    if stack:
        raw["stack"] = "flare:7.0"
    return raw


def test_a_flare_job_on_duckdb_has_its_spark_sql_transpiled_and_kept() -> None:
    (step,) = normalize_definition(_definition(stack=True))["config"]["pipeline"]["steps"]
    assert step["spark_sql"] == STEP
    assert "COALESCE" in step["sql"] and "STRFTIME" in step["sql"]


def test_a_flare_job_on_spark_runs_its_steps_as_written() -> None:
    config = normalize_definition(_definition({"engine": "spark"}, stack=True))["config"]
    assert config["engine"] == "spark" and config["pipeline"]["steps"] == [{"name": "s", "sql": STEP}]


def test_a_native_pipeline_is_duckdb_sql_by_default_and_its_form_unchanged() -> None:
    pipeline = normalize_definition(_definition())["config"]["pipeline"]
    assert pipeline["steps"] == [{"name": "s", "sql": STEP}] and "dialect" not in pipeline
    spark = normalize_definition(_definition(dialect="spark"))["config"]["pipeline"]
    assert spark["dialect"] == "spark" and "STRFTIME" in spark["steps"][0]["sql"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_definition({"engine": "flink"}), "config.engine: unknown engine 'flink'; use one of duckdb, spark"),
        (_definition({"engine": "spark"}), "config.pipeline: DuckDB SQL steps run on the duckdb engine"),
        (_definition(dialect="presto"), "config.pipeline.dialect: unknown dialect 'presto'"),
        ({**_definition(), "cluster": {"name": "c", "engine": "flink"}}, "cluster.engine: unknown engine 'flink'"),
        (
            _definition(
                stack=True, steps=[{"sequence": [{"name": "s", "sql": "SELECT TRANSFORM(a) USING 'cat' FROM t"}]}]
            ),
            "TRANSFORM ... USING (a script run per row) does not transpile from Spark SQL to DuckDB; run it as "
            "written with engine: spark",
        ),
        (
            _definition(stack=True, steps=[{"sequence": [{"name": "s", "sql": "SET x = 1"}]}]),
            "does not transpile from Spark SQL to DuckDB",
        ),
    ],
)
def test_what_cannot_run_is_refused_at_define_naming_it(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalize_definition(raw)
    assert message in str(refused.value), str(refused.value)


def test_a_spark_default_cluster_takes_a_flare_job_naming_no_engine_to_spark_with_its_steps_as_written() -> None:
    job = on_cluster_engine(normalize_definition(_definition(stack=True))["config"], "spark")
    assert job["engine"] == "spark" and job["pipeline"]["steps"] == [{"name": "s", "sql": STEP}]
    on_duckdb = normalize_definition(_definition(stack=True))["config"]
    assert on_cluster_engine(on_duckdb, "duckdb") == on_duckdb


@pytest.mark.parametrize(
    "config",
    [
        normalize_definition(_definition({"engine": "duckdb"}, stack=True))["config"],  # its own engine wins
        normalize_definition(_definition())["config"],  # DuckDB SQL steps: they run on DuckDB only
    ],
)
def test_a_spark_default_cluster_leaves_a_definitions_own_engine_and_duckdb_sql_steps_on_duckdb(config) -> None:
    assert on_cluster_engine(config, "spark") == config

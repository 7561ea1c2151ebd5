"""The SQL runner on Spark, run as the attempt's child: inputs as views, steps as Spark SQL, outputs staged
as Parquet by Spark and then written to their depots atomically as the DuckDB runner writes them; PostgreSQL
(over JDBC) and, with the Hadoop AWS connector, S3 (over s3a) read and written by Spark itself."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import duckdb

# Run as a script by path, like the DuckDB runner; its siblings come in as ``workers.*``.
from workers.sql.datasets import PREVIEW_ROWS, PipelineError, Target, jsonable, lit, q, resolve, typed
from workers.sql.runner import MAX_MESSAGE, QUIET_LEVELS, _attach, _output, serve

__all__ = ["MASTER_VARIABLE", "main", "run_pipeline", "spark_session"]

MASTER_VARIABLE = "JOBLEDGER_SPARK_MASTER"
# The jars the session is given (spark.jars), comma-separated: the worker resolves them (its default, or the
# operator's list; see queue_core.services.spark) and passes them here.
JARS_VARIABLE = "JOBLEDGER_SPARK_JARS"
DEFAULT_MASTER = "local[2]"
STOP_SECONDS = 10.0
# The DuckDB types an Avro schema gives a CSV column, as Spark spells them.
_SPARK_TYPES = {
    "VARCHAR": "STRING",
    "INTEGER": "INT",
    "BIGINT": "BIGINT",
    "SMALLINT": "SMALLINT",
    "FLOAT": "FLOAT",
    "DOUBLE": "DOUBLE",
    "BOOLEAN": "BOOLEAN",
    "BLOB": "STRING",  # Spark's CSV reader has no binary type: bytes stay their text
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP",
}


def spark_session(app: str, master: str | None = None, jars: list[str] | None = None) -> Any:
    """A Spark session on ``master`` (``JOBLEDGER_SPARK_MASTER``, else ``local[2]``) given ``jars`` (else those
    ``JOBLEDGER_SPARK_JARS`` lists): no UI, no progress bar, UTC."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master or os.environ.get(MASTER_VARIABLE) or DEFAULT_MASTER).appName(app)
    if jars is None:
        jars = [jar for jar in os.environ.get(JARS_VARIABLE, "").split(",") if jar.strip()]
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    for key, value in {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "4",
        "spark.log.level": "ERROR",
    }.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _spark_type(kind: str) -> str:
    return _SPARK_TYPES.get(kind, kind if kind.startswith("DECIMAL") else "STRING")


def _read(spark: Any, con: duckdb.DuckDBPyConnection, x: dict[str, Any], target: Target, stage: Path) -> Any:
    """The input as a Spark DataFrame: its files or PostgreSQL table read by Spark; a warehouse table exported
    to Parquet first."""
    if target.jdbc is not None:
        return target.jdbc.read()
    if target.format == "table":
        staged = stage / "in" / f"{x['name']}.parquet"
        staged.parent.mkdir(parents=True, exist_ok=True)
        try:
            con.execute(f"COPY (SELECT * FROM {target.table}) TO {lit(str(staged))} (FORMAT parquet)")
        except duckdb.Error as exc:
            raise PipelineError(f"input {x['name']}: {exc}") from exc
        return spark.read.parquet(str(staged))
    if target.s3a is None and (not target.files or not all(Path(f).exists() for f in target.files)):
        raise PipelineError(f"input {x['name']}: {x['dataset']['address']} has no file {target.path}")
    fmt = target.format
    if fmt == "csv":
        reader = spark.read.option("header", "true")
        if target.columns:
            ddl = ", ".join(f"`{n}` {_spark_type(k)}" for n, k, _ in target.columns)
            reader = reader.schema(ddl).option("mode", "FAILFAST")
        else:
            reader = reader.option("inferSchema", "true")
        return reader.csv(target.files)
    return spark.read.json(target.files) if fmt == "json" else spark.read.parquet(*target.files)


def _resolve(
    depots: dict[str, Any],
    x: dict[str, Any],
    aliases: dict[str, str],
    stage: Path,
    output: bool,
    passwords: dict[str, str] | None,
    s3a: bool = False,
) -> Target:
    """Where a dataset lives, as the DuckDB runner resolves it, except that a PostgreSQL table is Spark's to
    read or write over JDBC, and with ``s3a`` an S3 dataset Spark's to read or write itself (not copied through
    the run folder)."""
    address = x["dataset"]
    kind = depots[address["depot"]]["type"]
    if kind == "postgres":
        from workers.sql.spark_jdbc import jdbc_target

        return jdbc_target(depots[address["depot"]], address, (passwords or {}).get(address["depot"]))
    if kind == "s3" and s3a:
        from workers.sql.spark_s3a import s3a_target

        return typed(depots, x, s3a_target(depots[address["depot"]], address, x["format"], output))
    return resolve(depots, x, aliases, stage, output, passwords)


def _check_query(sql: str, name: str) -> None:
    """Exactly one query, as on DuckDB: anything else (SET, CREATE, INSERT, ...) is refused."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        trees = [t for t in sqlglot.parse(sql, read="spark") if t is not None]
    except ParseError as exc:
        raise PipelineError(f"step {name}: is not Spark SQL: {str(exc).splitlines()[0][:200]}") from None
    if len(trees) != 1 or not isinstance(trees[0], exp.Query):
        kinds = ", ".join(type(t).__name__.upper() for t in trees) or "nothing"
        raise PipelineError(f"step {name}: must be one SELECT query, not {kinds}")


def _analysis_error() -> tuple[type[BaseException], ...]:
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    return (PySparkException, Py4JJavaError)


def run_pipeline(spec: dict[str, Any], passwords: dict[str, str] | None = None, spark: Any = None) -> dict[str, Any]:
    """Run one pipeline's steps on Spark (``spark``: a session to use, else one started and stopped here)."""
    pipeline, depots, run_dir = spec["pipeline"], spec["depots"], Path(spec["run_dir"])
    aliases: dict[str, str] = {}
    stage = run_dir / "stage"
    s3a = spec.get("spark_s3") == "s3a"  # the worker found the Hadoop AWS connector among the jars
    inputs = [(x, _resolve(depots, x, aliases, stage, False, passwords, s3a)) for x in pipeline["inputs"]]
    outputs = [(x, _resolve(depots, x, aliases, stage, True, passwords, s3a)) for x in pipeline["outputs"]]
    token = uuid.uuid4().hex[:12]
    temps = {
        x["name"]: t.path.with_name(f".{t.path.name}.{token}.tmp") if t.path is not None else None for x, t in outputs
    }
    for _x, target in outputs:
        if target.path is not None and target.pg is None:
            target.path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:")  # the depots' side: warehouse tables, and every output's atomic write
    for depot_name, alias in aliases.items():
        _attach(con, depots[depot_name], depot_name, alias, False)
    own = spark is None
    if own:
        spark = spark_session(f"jobledger {os.environ.get('JOBLEDGER_RUN_ID', 'run')}")
        print(f"spark: session on {spark.sparkContext.master} (Spark {spark.version})", flush=True)
        _stop_on_term(spark)
    for _x, target in [*inputs, *outputs]:
        for spark_side in (target.jdbc, target.s3a):
            if spark_side is not None:
                spark_side.spark = spark
    errors = _analysis_error()
    level, quiet = pipeline["logLevel"], pipeline["logLevel"] in QUIET_LEVELS
    hadoop: list[str] = []
    try:
        hadoop = _s3a_options(spark, [depots[x["dataset"]["depot"]] for x, t in [*inputs, *outputs] if t.s3a])
        for x, target in inputs:
            try:
                _read(spark, con, x, target, stage).createOrReplaceTempView(x["name"])
            except errors as exc:
                raise PipelineError(f"input {x['name']}: {_said(exc)}") from None
        frames = {}
        for step in pipeline["steps"]:
            name = step["name"]
            _check_query(step["sql"], name)
            try:
                frames[name] = frame = spark.sql(step["sql"])
                frame.createOrReplaceTempView(name)
            except errors as exc:
                raise PipelineError(f"step {name}: {_said(exc)}") from None
            if level == "DEBUG":
                print(f"step {name}: {' '.join(step['sql'].split())}", flush=True)
            if (pipeline["explain"] or level == "DEBUG") and not quiet:
                print(f"plan of step {name}:", flush=True)
                frame.explain()
                sys.stdout.flush()
        written = []
        for x, target in outputs:
            if target.jdbc is not None or target.s3a is not None:  # Spark writes it itself, over JDBC or s3a
                written.append(_output(con, x, target, None, inputs, False, quiet))
                continue
            staged = stage / "spark" / x["name"]
            try:
                frames[x["name"]].write.mode("overwrite").parquet(str(staged))
            except errors as exc:
                raise PipelineError(f"output {x['name']} (step {x['name']}): {_said(exc)}") from None
            con.execute(f"CREATE VIEW {q(x['name'])} AS SELECT * FROM read_parquet({lit(str(staged / '*.parquet'))})")
            written.append(_output(con, x, target, temps[x["name"]], inputs, False, quiet))
            shutil.rmtree(staged, ignore_errors=True)
        result: dict[str, Any] = {"outputs": written, "inputs": [x["dataset"]["address"] for x, _ in inputs]}
        if not outputs and pipeline["steps"]:
            step = pipeline["steps"][-1]["name"]
            frame = frames[step]
            columns = [[f.name, f.dataType.simpleString().upper()] for f in frame.schema.fields]
            try:
                rows = [[jsonable(v) for v in row] for row in frame.limit(PREVIEW_ROWS).collect()]
            except errors as exc:
                raise PipelineError(f"step {step}: {_said(exc)}") from None
            result["query"] = {"step": step, "columns": columns, "preview": rows}
        return result
    finally:
        con.close()
        for key in hadoop:
            spark._jsc.hadoopConfiguration().unset(key)  # a shared session keeps no depot's credentials
        if own:
            spark.stop()


def _s3a_options(spark: Any, depots: list[dict[str, Any]]) -> list[str]:
    """Set each S3 depot's s3a options (endpoint, region, credentials) on the session's Hadoop configuration,
    which Spark ships to its executors; the keys set."""
    if not depots:
        return []
    from workers.sql.spark_s3a import bucket_options

    jsc = getattr(spark, "_jsc", None)
    if jsc is None:
        raise PipelineError("S3 depots over s3a need a classic Spark session; Spark Connect (sc://) is not supported")
    conf, keys = jsc.hadoopConfiguration(), []
    for depot in depots:
        for key, value in bucket_options(depot["config"]).items():
            conf.set(key, value)
            keys.append(key)
    return keys


def _said(exc: BaseException) -> str:
    """A Spark error's first line, without the JVM's stack; an AWS secret (s3a's credentials) blanked."""
    text = str(exc).strip().splitlines()
    said = text[0][:MAX_MESSAGE] if text else type(exc).__name__
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        said = said.replace(os.environ[name], "***") if os.environ.get(name) else said
    return said


def _stop_on_term(spark: Any) -> None:
    """On SIGTERM (a cancel, a time-out): cancel the Spark jobs and stop the driver, then exit 143."""

    def stop() -> None:
        try:
            spark.sparkContext.cancelAllJobs()
            spark.stop()
        except Exception:  # the JVM got the same signal and may be gone already
            pass

    def on_term(_signum: int, _frame: Any) -> None:
        print("spark: cancelled; stopping the Spark jobs and the driver", file=sys.stderr, flush=True)
        stopper = threading.Thread(target=stop, daemon=True)
        stopper.start()
        stopper.join(STOP_SECONDS)
        os._exit(143)

    signal.signal(signal.SIGTERM, on_term)


def main(argv: list[str]) -> int:
    return serve(argv, run_pipeline)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

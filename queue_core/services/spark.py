"""Whether this machine can run Spark pipelines: PySpark (the ``spark`` extra), a Java 17+ runtime, for
PostgreSQL depots the PostgreSQL JDBC driver among the jars Spark is given, and for S3 depots on a master other
than ``local[...]`` the Hadoop AWS connector (s3a) among them."""

from __future__ import annotations

import importlib.util
import os
import shutil
import zipfile
from pathlib import Path

from queue_core.errors import SparkUnavailable

__all__ = [
    "DEFAULT_JARS",
    "JARS_VARIABLE",
    "MASTER_VARIABLE",
    "POSTGRES_DRIVER_CLASS",
    "S3A_CLASS",
    "has_s3a_connector",
    "master_is_local",
    "postgres_driver_missing",
    "require_spark",
    "s3_missing",
    "spark_jars",
    "spark_missing",
]

INSTALL_HINT = "pip install 'jobledger[spark]'"
# The jars every Spark session is given (``spark.jars``): a comma-separated list of paths. Unset, the
# PostgreSQL JDBC driver where Debian's and Ubuntu's libpostgresql-jdbc-java put it, when it is there.
JARS_VARIABLE = "JOBLEDGER_SPARK_JARS"
DEFAULT_JARS = ("/usr/share/java/postgresql.jar",)
POSTGRES_DRIVER_CLASS = "org.postgresql.Driver"
_DRIVER_ENTRY = POSTGRES_DRIVER_CLASS.replace(".", "/") + ".class"
# The Hadoop AWS connector's file system: Spark reads and writes ``s3a://`` paths with it (hadoop-aws, which
# needs the AWS SDK bundle beside it).
S3A_CLASS = "org.apache.hadoop.fs.s3a.S3AFileSystem"
_S3A_ENTRY = S3A_CLASS.replace(".", "/") + ".class"
MASTER_VARIABLE = "JOBLEDGER_SPARK_MASTER"
DEFAULT_MASTER = "local[2]"


def spark_missing() -> str | None:
    """What this machine lacks to run a Spark pipeline (one line), or None."""
    missing = []
    if importlib.util.find_spec("pyspark") is None:
        missing.append(f"PySpark ({INSTALL_HINT})")
    home = os.environ.get("JAVA_HOME")
    if not (home and (Path(home) / "bin" / "java").exists()) and shutil.which("java") is None:
        missing.append("Java 17 or later (java on PATH, or JAVA_HOME)")
    return " and ".join(missing) or None


def spark_jars() -> list[str]:
    """The jars a Spark session is given: ``JOBLEDGER_SPARK_JARS`` when set (even empty), else the defaults
    that exist on this machine."""
    given = os.environ.get(JARS_VARIABLE)
    if given is not None:
        return [part.strip() for part in given.split(",") if part.strip()]
    return [jar for jar in DEFAULT_JARS if Path(jar).is_file()]


def _holds(jar: str, entry: str) -> bool:
    try:
        with zipfile.ZipFile(jar) as archive:
            archive.getinfo(entry)
        return True
    except (OSError, KeyError, zipfile.BadZipFile):
        return False


def postgres_driver_missing() -> str | None:
    """What this machine lacks to reach PostgreSQL from Spark over JDBC (one line), or None."""
    if any(_holds(jar, _DRIVER_ENTRY) for jar in spark_jars()):
        return None
    where = (
        f"{JARS_VARIABLE} names no jar holding it"
        if os.environ.get(JARS_VARIABLE) is not None
        else f"not at {', '.join(DEFAULT_JARS)}; apt-get install libpostgresql-jdbc-java, or name its jar in "
        f"{JARS_VARIABLE}"
    )
    return f"the PostgreSQL JDBC driver ({where})"


def has_s3a_connector() -> bool:
    """Whether a jar Spark is given holds the Hadoop AWS connector's ``S3AFileSystem``."""
    return any(_holds(jar, _S3A_ENTRY) for jar in spark_jars())


def master_is_local(master: str) -> bool:
    """Whether executors run on this machine (``local``, ``local[N]``, ``local-cluster[...]``), sharing its files."""
    return master.startswith("local")


def s3_missing() -> str | None:
    """What this machine lacks to reach S3 depots from Spark (one line), or None: nothing with the connector
    (s3a), nor on a local master (the objects are staged through the run folder, which the executors share)."""
    master = os.environ.get(MASTER_VARIABLE) or DEFAULT_MASTER
    if master_is_local(master) or has_s3a_connector():
        return None
    kind = master.split("://", 1)[0] if "://" in master else master.split(":", 1)[0]  # never the URL: a token
    return (
        f"the Hadoop AWS connector S3 depots need on a {kind} master ({JARS_VARIABLE} names no jar holding "
        f"{S3A_CLASS}: add hadoop-aws and its AWS SDK bundle to it)"
    )


def require_spark(what: str, postgres: bool = False, s3: bool = False) -> None:
    """``SparkUnavailable`` naming what is missing when this machine cannot run ``what`` on Spark
    (``postgres``: ``what`` reads or writes a PostgreSQL depot, so the JDBC driver is needed too; ``s3``: an
    S3 depot, so the s3a connector is needed unless the master is local)."""
    missing = spark_missing()
    if missing is None and postgres:
        missing = postgres_driver_missing()
    if missing is None and s3:
        missing = s3_missing()
    if missing is not None:
        raise SparkUnavailable(f"{what} runs on Spark, but this machine lacks {missing}")

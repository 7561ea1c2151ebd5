"""Whether this machine can run Spark pipelines: PySpark (the ``spark`` extra), a Java 17+ runtime, and for
PostgreSQL depots the PostgreSQL JDBC driver among the jars Spark is given."""

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
    "POSTGRES_DRIVER_CLASS",
    "postgres_driver_missing",
    "require_spark",
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


def _holds_driver(jar: str) -> bool:
    try:
        with zipfile.ZipFile(jar) as archive:
            archive.getinfo(_DRIVER_ENTRY)
        return True
    except (OSError, KeyError, zipfile.BadZipFile):
        return False


def postgres_driver_missing() -> str | None:
    """What this machine lacks to reach PostgreSQL from Spark over JDBC (one line), or None."""
    if any(_holds_driver(jar) for jar in spark_jars()):
        return None
    where = (
        f"{JARS_VARIABLE} names no jar holding it"
        if os.environ.get(JARS_VARIABLE) is not None
        else f"not at {', '.join(DEFAULT_JARS)}; apt-get install libpostgresql-jdbc-java, or name its jar in "
        f"{JARS_VARIABLE}"
    )
    return f"the PostgreSQL JDBC driver ({where})"


def require_spark(what: str, postgres: bool = False) -> None:
    """``SparkUnavailable`` naming what is missing when this machine cannot run ``what`` on Spark
    (``postgres``: ``what`` reads or writes a PostgreSQL depot, so the JDBC driver is needed too)."""
    missing = spark_missing()
    if missing is None and postgres:
        missing = postgres_driver_missing()
    if missing is not None:
        raise SparkUnavailable(f"{what} runs on Spark, but this machine lacks {missing}")

"""Whether this machine can run Spark pipelines: PySpark (the ``spark`` extra) and a Java 17+ runtime."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from queue_core.errors import SparkUnavailable

__all__ = ["require_spark", "spark_missing"]

INSTALL_HINT = "pip install 'jobledger[spark]'"


def spark_missing() -> str | None:
    """What this machine lacks to run a Spark pipeline (one line), or None."""
    missing = []
    if importlib.util.find_spec("pyspark") is None:
        missing.append(f"PySpark ({INSTALL_HINT})")
    home = os.environ.get("JAVA_HOME")
    if not (home and (Path(home) / "bin" / "java").exists()) and shutil.which("java") is None:
        missing.append("Java 17 or later (java on PATH, or JAVA_HOME)")
    return " and ".join(missing) or None


def require_spark(what: str) -> None:
    """``SparkUnavailable`` naming what is missing when this machine cannot run ``what`` on Spark."""
    missing = spark_missing()
    if missing is not None:
        raise SparkUnavailable(f"{what} runs on Spark, but this machine lacks {missing}")

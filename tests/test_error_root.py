"""One error root: each exception class jobledger defines derives from ``JobledgerError`` and says when it is raised."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import subprocess
import sys

import pytest

import queue_core
import scheduler
import workers
from queue_core.errors import JobledgerError

# Exceptions that never reach a user as an exception, each with why it stays outside the root.
INTERNAL = {
    # Control flow inside ``load_document``: it becomes an ``InvalidInput`` naming the file before it leaves.
    "queue_core.specs.documents._DuplicateKey",
    # Raised and caught inside the SQL runner's child process, which imports nothing of queue_core (the
    # package's import pulls in the client and redis, seconds per cold run): its message reaches the user
    # as the run's failure message. ``test_the_sql_runner_child_imports_nothing_of_queue_core`` keeps it so.
    "workers.sql.datasets.PipelineError",
}
# Pending the lead's edit of client.py (``from queue_core.errors import WaitTimeout``, re-exported).


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package in (queue_core, workers, scheduler):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if module.name.endswith("__main__"):
                continue  # runs its command when imported; defines no exception
            imported = importlib.import_module(module.name)
            for name, value in vars(imported).items():
                if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == module.name:
                    found[f"{module.name}.{name}"] = value
    return found


CLASSES = _exception_classes()


def test_the_walk_finds_the_exceptions_of_every_layer():
    assert {
        "queue_core.errors.InvalidInput",
        "workers.sources.base.SourceError",
        "workers.sources.archives.UnsafeArchive",
        "workers.serializer.RefusedJob",
        "workers.attempt.AttemptCrashed",
    } <= set(CLASSES)
    assert set(CLASSES) >= INTERNAL


def test_every_exception_class_derives_from_jobledger_error():
    outside = sorted(name for name, cls in CLASSES.items() if not issubclass(cls, JobledgerError))
    assert set(outside) - INTERNAL == set()


@pytest.mark.parametrize("name", sorted(set(CLASSES) - INTERNAL - {"queue_core.errors.JobledgerError"}))
def test_every_error_says_in_one_line_when_it_is_raised(name: str):
    doc = inspect.getdoc(CLASSES[name]) or ""
    assert doc.startswith("Raised ") and "\n" not in doc, f"{name}: {doc!r}"


def test_handlers_written_for_the_old_bases_still_catch():
    from workers.serializer import RefusedJob
    from workers.sources.archives import UnsafeArchive
    from workers.sources.base import SourceError

    assert issubclass(RefusedJob, ValueError) and issubclass(UnsafeArchive, SourceError)


def test_the_client_raises_the_wait_timeout_of_errors():
    from queue_core import client, errors

    assert client.WaitTimeout is errors.WaitTimeout


def test_the_sql_runner_child_imports_nothing_of_queue_core():
    probe = "import json, sys, workers.sql.runner; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert not {"queue_core", "redis"} & set(json.loads(shown))

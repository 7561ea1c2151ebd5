"""The run a schedule's tick replaces (``--overlap replace``) is cancelled only once the tick is in the log.

The timer cancels it right after appending the tick's ``ScheduleFired``; the dispatcher cancels it again
when it reads that event, so a timer that died in between leaves nothing undone. Cancelling a run that
has ended (or was cancelled already) changes nothing, so doing it twice is harmless.
"""

from __future__ import annotations

from queue_core.errors import AlreadyTerminal, NotFound
from queue_core.eventlog.events import ScheduleFired
from queue_core.eventlog.runlog import RunLog
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels
from queue_core.services.catalog import Catalog
from queue_core.services.resources import ResourceStore
from queue_core.services.runs import RunService
from queue_core.services.workflows import WorkflowService
from queue_core.settings import Settings

__all__ = ["Replacements"]


class Replacements:
    """Cancels what a fired tick replaced, idempotently."""

    def __init__(self, runs: RunService, workflows: WorkflowService) -> None:
        self.runs = runs
        self.workflows = workflows

    @classmethod
    def on(cls, store: EventStore, read_models: ReadModels, settings: Settings) -> Replacements:
        """For a process that has no ``Client`` (the dispatcher): the services cancelling needs, on ``store``."""
        runs = RunService(store, read_models, RunLog(store.redis, store.keys))
        catalog = Catalog(store, read_models)
        return cls(runs, WorkflowService(store, read_models, catalog, ResourceStore(store, settings)))

    def cancel(self, fired: ScheduleFired) -> bool:
        """Cancel the run (or workflow run) ``fired`` replaced; False when there is none, or it had ended."""
        if not fired.replaced:
            return False
        try:
            if fired.workflow_run:  # a schedule's ticks all start the same kind of thing
                self.workflows.cancel(fired.replaced)
            else:
                self.runs.cancel(fired.replaced)
        except (AlreadyTerminal, NotFound):
            return False  # it ended (or another process cancelled it) meanwhile: nothing to replace
        return True

"""The reacting side: the dispatcher (a consumer group on the log), retries through rq-scheduler, leases, the timer."""

from .dispatcher import Dispatcher
from .maintenance import Maintenance
from .rq_jobs import AttemptJob, enqueue_attempt, schedule_attempt
from .timer import Timer

__all__ = ["AttemptJob", "Dispatcher", "Maintenance", "Timer", "enqueue_attempt", "schedule_attempt"]

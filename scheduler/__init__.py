"""The reacting side: the dispatcher (a consumer group on the log), retries through rq-scheduler, leases."""

from .dispatcher import Dispatcher
from .maintenance import Maintenance
from .rq_jobs import AttemptJob, enqueue_attempt, schedule_attempt

__all__ = ["AttemptJob", "Dispatcher", "Maintenance", "enqueue_attempt", "schedule_attempt"]

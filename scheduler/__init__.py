"""The reacting side: the dispatcher (a consumer group on the log), retries through rq-scheduler, leases, the timer."""

from scheduler.dispatcher import Dispatcher
from scheduler.maintenance import Maintenance
from scheduler.rq_jobs import AttemptJob, enqueue_attempt, schedule_attempt
from scheduler.timer import Timer

__all__ = ["AttemptJob", "Dispatcher", "Maintenance", "Timer", "enqueue_attempt", "schedule_attempt"]

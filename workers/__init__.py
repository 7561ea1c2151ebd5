"""The compute side: RQ job functions, the fleet's serializer and worker class, job sources and runners."""

from .attempt import run_attempt
from .serializer import ENTRY_FUNCTION, JobSerializer, RefusedJob
from .worker import AttemptWorker

__all__ = ["ENTRY_FUNCTION", "AttemptWorker", "JobSerializer", "RefusedJob", "run_attempt"]

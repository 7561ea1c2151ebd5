"""A cluster's RQ queue kept in priority order: an attempt goes in after every waiting attempt of the same or a
higher priority, so plain ``rq worker CLUSTER`` processes take the highest priority first, then the oldest."""

from __future__ import annotations

from typing import Any

import redis
from rq.queue import Queue

from queue_core.keys import Keys
from queue_core.specs.run_control import DEFAULT_PRIORITY

__all__ = ["PriorityQueue"]

# KEYS[1] the queue's list; ARGV: the job id, the job's priority ('' when the job's hash already says it), RQ's
# job key prefix, the priority field, the default priority. The job's priority is noted on its hash (RQ keeps
# the fields it does not know and deletes the hash when the job ends), then the list is walked from its tail
# while the attempts there are of a lower priority: a run of the usual priority behind others of it is one
# look; only a run put ahead of a backlog walks past that backlog (a few hundred thousand lookups a second).
INSERT = """
local id, prefix, field, default = ARGV[1], ARGV[3], ARGV[4], tonumber(ARGV[5])
local priority = tonumber(ARGV[2]) or tonumber(redis.call('HGET', prefix .. id, field)) or default
redis.call('HSET', prefix .. id, field, priority)
local last = redis.call('LLEN', KEYS[1]) - 1
local stop = last
while stop >= 0 do
  local start = math.max(0, stop - 99)
  local ids = redis.call('LRANGE', KEYS[1], start, stop)
  for j = #ids, 1, -1 do
    local theirs = tonumber(redis.call('HGET', prefix .. ids[j], field)) or default
    if theirs >= priority then
      if start + j - 1 == last then return redis.call('RPUSH', KEYS[1], id) end
      return redis.call('LINSERT', KEYS[1], 'AFTER', ids[j], id)
    end
  end
  stop = start - 1
end
return redis.call('LPUSH', KEYS[1], id)
"""


class PriorityQueue(Queue):
    """RQ's queue whose push keeps priority order; ``priority`` None reads the job's own (a retry rq-scheduler
    moves onto the queue carries the one noted when it was scheduled)."""

    def __init__(self, *args: Any, priority: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.priority = priority
        self._insert = self.connection.register_script(INSERT)

    def push_job_id(self, job_id: str, pipeline: redis.client.Pipeline | None = None, at_front: bool = False) -> None:
        keys = Keys()
        given = "" if self.priority is None else str(self.priority)
        args: list[str | int] = [job_id, given, keys.rq_job_prefix, keys.rq_job_priority_field, DEFAULT_PRIORITY]
        self._insert(keys=[self.key], args=args, client=pipeline if pipeline is not None else self.connection)

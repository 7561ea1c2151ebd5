"""Leases: a key with a TTL that a worker renews while an attempt runs; its expiry means the worker is gone."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from queue_core.keys import Keys

__all__ = ["DELIVERIES_TTL_SECONDS", "Leases"]

DELIVERIES_TTL_SECONDS = 24 * 3600


class Leases:
    """Hold (and renew, by holding again), release and look at attempt leases."""

    def __init__(self, connection: redis.Redis, keys: Keys | None = None) -> None:
        self.redis = connection
        self.keys = keys or Keys()

    def hold(self, run_id: str, attempt: int, holder: str, seconds: float) -> None:
        self.redis.set(self.keys.lease(run_id, attempt), holder, px=max(1, int(seconds * 1000)))

    def release(self, run_id: str, attempt: int) -> None:
        self.redis.delete(self.keys.lease(run_id, attempt))

    def release_many(self, attempts: Sequence[tuple[str, int]]) -> None:
        """``release`` for each ``(run_id, attempt)``, in one round trip."""
        if attempts:
            self.redis.delete(*(self.keys.lease(run_id, attempt) for run_id, attempt in attempts))

    def take(self, run_id: str, attempt: int, holder: str, seconds: float) -> int:
        """Hold the lease for one more delivery of the attempt, and count it, in one round trip; returns how many
        deliveries there have been (a day's worth)."""
        key = self.keys.deliveries(run_id, attempt)
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self.keys.lease(run_id, attempt), holder, px=max(1, int(seconds * 1000)))
        pipe.incr(key)
        pipe.expire(key, DELIVERIES_TTL_SECONDS)
        _, count, _ = pipe.execute()
        return int(count)

    def take_many(self, attempts: Sequence[tuple[str, int]], holder: str, seconds: float) -> list[int]:
        """``take`` for each ``(run_id, attempt)``, in one round trip: each one's count of deliveries."""
        pipe = self.redis.pipeline(transaction=False)
        for run_id, attempt in attempts:
            key = self.keys.deliveries(run_id, attempt)
            pipe.set(self.keys.lease(run_id, attempt), holder, px=max(1, int(seconds * 1000)))
            pipe.incr(key)
            pipe.expire(key, DELIVERIES_TTL_SECONDS)
        replies = pipe.execute() if attempts else []
        return [int(count) for count in replies[1::3]]

    def hold_many(self, attempts: Sequence[tuple[str, int]], holder: str, seconds: float) -> None:
        """``hold`` for each ``(run_id, attempt)``, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for run_id, attempt in attempts:
            pipe.set(self.keys.lease(run_id, attempt), holder, px=max(1, int(seconds * 1000)))
        if attempts:
            pipe.execute()

    def alive(self, run_id: str, attempt: int) -> bool:
        return bool(self.redis.exists(self.keys.lease(run_id, attempt)))

    def alive_many(self, attempts: Sequence[tuple[str, int]]) -> list[bool]:
        """Whether each ``(run_id, attempt)`` has a live lease, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for run_id, attempt in attempts:
            pipe.exists(self.keys.lease(run_id, attempt))
        return [bool(found) for found in pipe.execute()] if attempts else []

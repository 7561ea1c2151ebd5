"""The secret store: values in one Redis hash that replay never reads; the log only says a name was set or deleted."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from queue_core.domain.secrets import MAX_SECRET_BYTES, secret_aggregate
from queue_core.errors import ConcurrencyError, InvalidInput, NotFound, Remedy
from queue_core.eventlog.events import NewEvent, SecretDeleted, SecretSet
from queue_core.eventlog.store import EventStore
from queue_core.specs.definitions import check_name

__all__ = ["SecretStore"]

APPEND_RETRIES = 5


class SecretStore:
    """Set, list, delete and resolve secrets; only the worker resolves values, at attempt time."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.redis = store.redis
        self.key = store.keys.secrets

    def set(self, name: str, value: str) -> None:
        """Store ``value`` under ``name`` (replacing any) and record that the name was set."""
        check_name(name, "secret")
        if not isinstance(value, str) or not value:
            raise InvalidInput("the secret value is empty", "secret")
        if "\x00" in value or len(value.encode()) > MAX_SECRET_BYTES:
            raise InvalidInput(f"the secret value must be at most {MAX_SECRET_BYTES} bytes without NUL", "secret")
        # The value first: a name the log says is set always has a value to resolve.
        self.redis.hset(self.key, name, value.encode())
        self._record(name, SecretSet(name=name))

    def delete(self, name: str) -> None:
        """Forget the value and record the deletion; ``NotFound`` when there is no such secret."""
        check_name(name, "secret")
        if not self.redis.hexists(self.key, name):
            raise NotFound(f"no secret named {name!r}")
        self._record(name, SecretDeleted(name=name))
        self.redis.hdel(self.key, name)

    def _record(self, name: str, event: SecretSet | SecretDeleted) -> None:
        aggregate = secret_aggregate(name)
        for _ in range(APPEND_RETRIES):
            try:
                self.store.append([NewEvent(aggregate, event)], {aggregate: self.store.version(aggregate)})
                return
            except ConcurrencyError:
                continue  # another set or delete of the same name landed first; ours follows it
        raise ConcurrencyError(aggregate, -1, self.store.version(aggregate))

    def names(self) -> list[str]:
        """Every secret name, sorted (never a value)."""
        raw: Any = self.redis.hkeys(self.key)
        return sorted(k.decode() for k in raw)

    def resolve(self, names: Iterable[str]) -> dict[str, str]:
        """The values of ``names``; ``NotFound`` naming the first one missing."""
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        values: Any = self.redis.hmget(self.key, wanted)
        resolved: dict[str, str] = {}
        for name, value in zip(wanted, values, strict=True):
            if value is None:
                raise NotFound(f"secret {name!r} is not set", remedy=Remedy.SET_SECRET, subject=name)
            resolved[name] = value.decode()
        return resolved

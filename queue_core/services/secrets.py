"""The secret store: values sealed in one Redis hash that replay never reads; the log only says a name was set or
deleted, or that the key was rotated.

The hash also holds, under the field ``@key`` (no name can hold ``@``), the id of the key new values are sealed
under, and ``@sealed`` once no value is plaintext. A store without them is fresh, or was written by a version
that stored values in plaintext: the first ``set`` or key rotation claims it for its key, then seals every
plaintext value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import structlog

from queue_core.domain.secrets import MAX_SECRET_BYTES, SECRET_KEY_AGGREGATE, secret_aggregate
from queue_core.errors import ConcurrencyError, InvalidInput, NotFound, Remedy
from queue_core.eventlog.events import NewEvent, SecretDeleted, SecretKeyRotated, SecretSet
from queue_core.eventlog.store import EventStore
from queue_core.keyfiles import read_key, read_or_create, write_key
from queue_core.secret_cipher import (
    SecretCipher,
    SecretKeyChanged,
    SecretKeyMissing,
    decode_keyring,
    encode_keyring,
    key_id,
    new_key,
    sealed_key_id,
)
from queue_core.settings import Settings
from queue_core.specs.definitions import check_name

__all__ = ["KEY_ID_FIELD", "SecretStore"]

log = structlog.get_logger("jobledger.secrets")

APPEND_RETRIES = 5
KEY_ID_FIELD = "@key"
SEALED_FIELD = "@sealed"  # present once no value in the hash is plaintext (stores from earlier versions had some)
# A rotation's pass finds values a concurrent writer sealed under the old key only if the writer read the key
# id before the rotation claimed the store; each later pass has fewer. Past this many, something else is wrong.
ROTATION_PASSES = 5

# Write a value only while the store still seals under the key it was sealed under (a rotation may have begun).
_SET_IF_KEY = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
return 1
"""
# Replace a value only if it is still the one read (a concurrent set or delete wins).
_REPLACE_IF_SAME = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""
# Move the store's key id from ARGV[1] ('' for none) to ARGV[2]; returns the key id it holds afterwards.
_CLAIM = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current == false then current = '' end
if current == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return ARGV[3]
end
return current
"""


class SecretStore:
    """Set, list, delete and resolve secrets; only the worker resolves values, at attempt time.

    The key lives in ``settings.secret_key_path``, never in Redis. It is created there only for a store no key
    has claimed yet; a store claimed by a key this process does not hold is an error naming the key's id.
    """

    def __init__(self, store: EventStore, settings: Settings | None = None) -> None:
        self.store = store
        self.redis = store.redis
        self.key = store.keys.secrets
        self.settings = settings if settings is not None else Settings.from_env()
        self._cipher: SecretCipher | None = None
        self._set_if_key = self.redis.register_script(_SET_IF_KEY)
        self._replace_if_same = self.redis.register_script(_REPLACE_IF_SAME)
        self._claim_script = self.redis.register_script(_CLAIM)

    # -- the key ------------------------------------------------------------------------------------

    @property
    def key_path(self) -> Path:
        return self.settings.secret_key_path

    def _read_cipher(self) -> SecretCipher | None:
        """The keys in the key file (read afresh: a rotation on this machine may have changed it), or None."""
        if not self.key_path.exists():
            return None
        self._cipher = SecretCipher(decode_keyring(read_key(self.key_path), self.key_path), self.key_path)
        return self._cipher

    def _cipher_holding(self, kid: str) -> SecretCipher:
        cipher = self._cipher
        if cipher is None or not cipher.holds(kid):
            cipher = self._read_cipher()
        if cipher is None or not cipher.holds(kid):
            raise SecretKeyMissing(kid, self.key_path)
        return cipher

    def store_key_id(self) -> str | None:
        """The id of the key this store seals new values under; None before any process claimed it."""
        raw: Any = self.redis.hget(self.key, KEY_ID_FIELD)
        return raw.decode() if raw is not None else None

    def _claim(self, expected: str | None, kid: str) -> str:
        """Make ``kid`` the store's key if it is still ``expected``; the store's key id afterwards."""
        raw: Any = self._claim_script(keys=[self.key], args=[KEY_ID_FIELD, expected or "", kid])
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def _sealing_key(self) -> tuple[SecretCipher, str]:
        """The cipher and the id of the key new values are sealed under; an unclaimed store is claimed first,
        and what an earlier version stored in plaintext is sealed before anything new is written."""
        raw: Any = self.redis.hmget(self.key, [KEY_ID_FIELD, SEALED_FIELD])
        kid, sealed = (value.decode() if value is not None else None for value in raw)
        if kid is None:
            # No key claimed this store: its key is this machine's, created now if there is none. Claimed
            # first, so two machines with different keys cannot both seal values into one store.
            data = read_or_create(self.key_path, lambda: encode_keyring([new_key()]))
            self._cipher = SecretCipher(decode_keyring(data, self.key_path), self.key_path)
            kid = self._claim(None, self._cipher.ids[0])
        cipher = self._cipher_holding(kid)
        if sealed is None:
            # Marked only once every plaintext value is sealed: a crash part-way leaves the sweep to the next.
            self._reseal(cipher, kid, only_plaintext=True)
            self.redis.hset(self.key, SEALED_FIELD, "1")
        return cipher, kid

    def _fields(self) -> Iterator[tuple[str, bytes]]:
        """``(name, stored value)`` of every secret, without the store's own fields."""
        for field, value in self.redis.hscan_iter(self.key, count=500):
            name = field.decode()
            if not name.startswith("@"):
                yield name, value

    def _reseal(
        self,
        cipher: SecretCipher,
        kid: str,
        only_plaintext: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> int:
        """Seal under ``kid`` every value not yet under it (plaintext ones only, if asked); how many were."""
        count = 0
        for name, stored in self._fields():
            current = sealed_key_id(stored)
            if current == kid or (only_plaintext and current is not None):
                continue
            value = stored.decode() if current is None else cipher.open(name, stored)
            if self._replace_if_same(keys=[self.key], args=[name, stored, cipher.seal(name, value, kid)]):
                count += 1
                if progress is not None:
                    progress(name)
        return count

    # -- use cases ----------------------------------------------------------------------------------

    def set(self, name: str, value: str) -> None:
        """Store ``value`` under ``name`` (replacing any) and record that the name was set."""
        check_name(name, "secret")
        if not isinstance(value, str) or not value:
            raise InvalidInput("the secret value is empty", "secret")
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:  # lone surrogates: bytes that were never UTF-8
            raise InvalidInput("the secret value is not UTF-8 text", "secret") from None
        if "\x00" in value or size > MAX_SECRET_BYTES:
            raise InvalidInput(f"the secret value must be at most {MAX_SECRET_BYTES} bytes without NUL", "secret")
        # The value first: a name the log says is set always has a value to resolve.
        for _ in range(APPEND_RETRIES):
            cipher, kid = self._sealing_key()
            if self._set_if_key(keys=[self.key], args=[KEY_ID_FIELD, kid, name, cipher.seal(name, value, kid)]):
                break  # else a rotation claimed the store between our read and our write: seal again
        else:
            raise SecretKeyChanged("the secret store's key kept changing while a value was written: set it again")
        self._record(secret_aggregate(name), SecretSet(name=name))

    def delete(self, name: str) -> None:
        """Forget the value and record the deletion; ``NotFound`` when there is no such secret."""
        check_name(name, "secret")
        if not self.redis.hexists(self.key, name):
            raise NotFound(f"no secret named {name!r}")
        self._record(secret_aggregate(name), SecretDeleted(name=name))
        self.redis.hdel(self.key, name)

    def rotate_key(self, progress: Callable[[str], None] | None = None) -> SecretKeyRotated:
        """Seal every value under a new key, record it, then forget the old key; the rotation's ids.

        Crash-safe in this order: the key file gets the new key first, the old one kept readable; the store
        is claimed for the new key (so every later ``set`` seals under it); each value is re-sealed with a
        compare-and-set; the event is recorded; only then is the old key dropped. Run again after a crash, it
        finishes the rotation it began (the key file still holds two keys) rather than start another.
        """
        cipher, current = self._sealing_key()
        keys = decode_keyring(read_key(self.key_path), self.key_path)
        if len(keys) == 1:
            keys = [new_key(), *keys]
            _write_keyring(self.key_path, keys)
        new_id, old_id = key_id(keys[0]), key_id(keys[1])
        cipher = self._cipher = SecretCipher(keys, self.key_path)
        claimed = self._claim(current, new_id)
        if claimed != new_id:
            raise SecretKeyChanged(f"another key rotation claimed the secret store for key {claimed} meanwhile")
        for _ in range(ROTATION_PASSES):
            if not self._reseal(cipher, new_id, progress=progress) and self._all_under(new_id):
                break
        else:
            raise SecretKeyChanged("values kept arriving under the old key: run the rotation again to finish it")
        rotated = SecretKeyRotated(old_key_id=old_id, new_key_id=new_id)
        history = self.store.load(SECRET_KEY_AGGREGATE)
        if not history or history[-1].event != rotated:  # recorded already by the run that crashed after it
            self._record(SECRET_KEY_AGGREGATE, rotated)
        _write_keyring(self.key_path, keys[:1])
        self._cipher = SecretCipher(keys[:1], self.key_path)
        return rotated

    def _all_under(self, kid: str) -> bool:
        return all(sealed_key_id(stored) == kid for _, stored in self._fields())

    def _record(self, aggregate: str, event: SecretSet | SecretDeleted | SecretKeyRotated) -> None:
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
        return sorted(k.decode() for k in raw if not k.startswith(b"@"))

    def resolve(self, names: Iterable[str]) -> dict[str, str]:
        """The values of ``names``; ``NotFound`` naming the first one missing, ``SecretKeyMissing`` naming a key
        this process does not hold."""
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        values: Any = self.redis.hmget(self.key, wanted)
        resolved: dict[str, str] = {}
        for name, stored in zip(wanted, values, strict=True):
            if stored is None:
                raise NotFound(f"secret {name!r} is not set", remedy=Remedy.SET_SECRET, subject=name)
            kid = sealed_key_id(stored)
            if kid is None:
                # Stored by an earlier version; the next set or key rotation seals it. Said, not hidden.
                log.warning("a secret value is stored in plaintext until the next set or key rotation", name=name)
                resolved[name] = stored.decode()
            else:
                resolved[name] = self._cipher_holding(kid).open(name, stored)
        return resolved


def _write_keyring(path: Path, keys: list[bytes]) -> None:
    """Replace the key file atomically (0600, in its 0700 folder, under the key folder's lock)."""
    try:
        write_key(path, encode_keyring(keys))
    except OSError as exc:
        raise InvalidInput(f"cannot write the key file {path}: {exc.strerror}", "key file") from None

"""Secret values sealed with AES-256-GCM under a key that never enters Redis; each sealed value names its key.

A sealed value is ``jl1:<key id>:<base64url(nonce + ciphertext + tag)>``. The associated data binds the
format, the key id and the secret's name, so a sealed value moved to another name does not open.
AES-GCM rather than Fernet for that binding (Fernet has no associated data) and for a 256-bit key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from queue_core.errors import InvalidInput, JobledgerError, NotFound

__all__ = [
    "FORMAT",
    "SecretCipher",
    "SecretKeyChanged",
    "SecretKeyMissing",
    "decode_keyring",
    "encode_keyring",
    "key_id",
    "new_key",
    "sealed_key_id",
]

FORMAT = "jl1"
KEY_BYTES = 32
NONCE_BYTES = 12
KEY_FILE_VARIABLE = "JOBLEDGER_SECRET_KEY_FILE"
_SEALED = re.compile(rb"jl1:([0-9a-f]{16}):([A-Za-z0-9_-]+)")


class SecretKeyMissing(NotFound):
    """Raised when a secret is sealed under a key this process does not hold; the message names the key's id."""

    def __init__(self, wanted: str, path: Path, what: str = "secret values in this store are") -> None:
        super().__init__(
            f"{what} encrypted under key {wanted}, which {path} does not hold: "
            f"point {KEY_FILE_VARIABLE} at that key's file"
        )
        self.key_id = wanted


class SecretKeyChanged(JobledgerError):
    """Raised when the store's secret key changed under a write more often than it retries (rotations racing)."""


def new_key() -> bytes:
    """A fresh 256-bit key."""
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def key_id(key: bytes) -> str:
    """The key's public name: a fingerprint that says which key, and nothing of the key."""
    return hashlib.sha256(b"jobledger secret key id\x00" + key).hexdigest()[:16]


def sealed_key_id(sealed: bytes) -> str | None:
    """The id of the key ``sealed`` was sealed under; None when it is not a sealed value (a plaintext one)."""
    match = _SEALED.fullmatch(sealed)
    return match.group(1).decode() if match else None


def encode_keyring(keys: Sequence[bytes]) -> bytes:
    """A key file's content: one base64 key a line, the current key first, keys still readable after it."""
    return b"".join(base64.urlsafe_b64encode(key) + b"\n" for key in keys)


def decode_keyring(data: bytes, path: Path) -> list[bytes]:
    """The keys in a key file's content, current first; ``InvalidInput`` naming the file when it is not one."""
    keys = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            key = base64.urlsafe_b64decode(line.strip())
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            raise InvalidInput(f"{path} is not a secret key file (a base64 {KEY_BYTES}-byte key a line)", "key file")
        keys.append(key)
    if not keys:
        raise InvalidInput(f"{path} holds no key", "key file")
    return keys


def _associated(kid: str, name: str) -> bytes:
    return f"{FORMAT}:{kid}:{name}".encode()


class SecretCipher:
    """Seals under the key it is told to, opens with any key it holds."""

    def __init__(self, keys: Sequence[bytes], path: Path) -> None:
        self.path = path
        self.ids = [key_id(key) for key in keys]
        self._aead = {kid: AESGCM(key) for kid, key in zip(self.ids, keys, strict=True)}

    def holds(self, kid: str) -> bool:
        return kid in self._aead

    def seal(self, name: str, value: str, kid: str) -> bytes:
        """``value`` of secret ``name`` sealed under the key ``kid`` (which this cipher must hold)."""
        if kid not in self._aead:
            raise SecretKeyMissing(kid, self.path, "new secret values of this store are")
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + self._aead[kid].encrypt(nonce, value.encode(), _associated(kid, name))
        return f"{FORMAT}:{kid}:".encode() + base64.urlsafe_b64encode(sealed).rstrip(b"=")

    def open(self, name: str, sealed: bytes) -> str:
        """The value ``sealed`` holds; ``SecretKeyMissing`` when its key is not held, ``InvalidInput`` if damaged."""
        match = _SEALED.fullmatch(sealed)
        if match is None:
            raise InvalidInput(f"the stored value of secret {name!r} is not a sealed value", "secret")
        kid = match.group(1).decode()
        if kid not in self._aead:
            raise SecretKeyMissing(kid, self.path, f"secret {name!r} is")
        raw = base64.urlsafe_b64decode(match.group(2) + b"=" * (-len(match.group(2)) % 4))
        try:
            plain = self._aead[kid].decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _associated(kid, name))
        except (InvalidTag, ValueError):
            raise InvalidInput(f"the stored value of secret {name!r} fails its authentication", "secret") from None
        return plain.decode()

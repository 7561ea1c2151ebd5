"""Seals on the chain: the ledger's Ed25519 key, signing chain heads, and checking seals and signatures.

The chain between entries stays the unkeyed SHA-1 the append script computes (it is all Redis's Lua has,
and the key never enters Redis); what makes it keyed is a ``ChainSealed`` event the key holder appends now
and then: a signature over a position and the chain head there, which commits to every entry before it.
Exports and archive segments carry a signature over their final head the same way.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from queue_core.errors import InvalidInput
from queue_core.eventlog.events import ChainSealed, LedgerKeyAdopted, decode, envelope_type
from queue_core.eventlog.positions import position_key
from queue_core.keyfiles import read_key, read_or_create
from queue_core.settings import Settings

__all__ = [
    "LEDGER_AGGREGATE",
    "LedgerSigner",
    "LedgerVerifier",
    "SealCheck",
    "file_message",
    "load_signer",
    "load_verifier",
    "seal_message",
]

# The one aggregate seals and key adoptions are appended to: its version orders concurrent sealers.
LEDGER_AGGREGATE = "ledger"
_SEAL = b"jobledger-seal-v1"
_SEALED, _ADOPTED = ChainSealed.__name__, LedgerKeyAdopted.__name__
_FILE = b"jobledger-file-v1"


def seal_message(position: str, head: str) -> bytes:
    """The bytes a seal signs: the position and the chain head there."""
    return b"\n".join((_SEAL, position.encode(), head.encode()))


def file_message(chain_start: str, last: str | None, head: str) -> bytes:
    """The bytes a file's signature covers: where its chain starts, its last position and its final head."""
    return b"\n".join((_FILE, chain_start.encode(), (last or "").encode(), head.encode()))


def _key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class LedgerVerifier:
    """The ledger key's public half: all an auditor needs to check seals and signatures."""

    def __init__(self, public: Ed25519PublicKey) -> None:
        self._public = public
        self.key_id = _key_id(public)

    @classmethod
    def from_pem(cls, data: bytes, where: str) -> LedgerVerifier:
        try:
            public = serialization.load_pem_public_key(data)
        except ValueError:
            raise InvalidInput(f"{where} is not a PEM public key", "public key") from None
        if not isinstance(public, Ed25519PublicKey):
            raise InvalidInput(f"{where} is not an Ed25519 public key", "public key")
        return cls(public)

    def pem(self) -> bytes:
        return self._public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def valid(self, signature: str, message: bytes) -> bool:
        try:
            self._public.verify(bytes.fromhex(signature), message)
        except (InvalidSignature, ValueError):
            return False
        return True


class LedgerSigner:
    """The ledger's private key (held by the scheduler, and by an operator who exports)."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.verifier = LedgerVerifier(private.public_key())
        self.key_id = self.verifier.key_id

    def __repr__(self) -> str:
        return f"LedgerSigner(key_id={self.key_id!r})"

    @classmethod
    def from_pem(cls, data: bytes, where: str) -> LedgerSigner:
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise InvalidInput(f"{where} is not an unencrypted PEM private key", "ledger key") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise InvalidInput(f"{where} is not an Ed25519 private key", "ledger key")
        return cls(private)

    def sign(self, message: bytes) -> str:
        return self._private.sign(message).hex()

    def seal(self, position: str, head: str) -> ChainSealed:
        """The seal event over the chain ``head`` at ``position``."""
        return ChainSealed(position, head, self.key_id, self.sign(seal_message(position, head)))


def _new_private_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_signer(settings: Settings, create: bool = False) -> LedgerSigner | None:
    """The ledger key from its file (None when there is none); with ``create``, made there first (0600).

    The public half is written beside it (``ledger_public_key_path``) when missing, for auditors to copy.
    """
    path = settings.ledger_key_path
    if create:
        data = read_or_create(path, _new_private_pem)
    elif path.exists():
        data = read_key(path)
    else:
        return None
    signer = LedgerSigner.from_pem(data, str(path))
    public = settings.ledger_public_key_path
    if not public.exists() and public.parent.is_dir():
        # Public, but written 0600 like everything in the home: hand it to auditors by copying it.
        with os.fdopen(os.open(public, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
            handle.write(signer.verifier.pem())
    return signer


def load_verifier(settings: Settings, given: str | Path | None = None) -> LedgerVerifier | None:
    """The public key from ``given`` (required to exist), else the settings' public key file if there is one."""
    path = Path(given) if given is not None else settings.ledger_public_key_path
    if given is None and not path.is_file():
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", "public key") from None
    return LedgerVerifier.from_pem(data, str(path))


@dataclass
class SealCheck:
    """Checks the seals met during a walk of the chain (see ``chain.walk``), and sums up what they cover.

    Without a verifier the seals are only counted. A seal covers an entry after the previous seal (the
    sealer never seals a log whose newest entry is a seal), so only the heads walked since it are kept.
    """

    verifier: LedgerVerifier | None
    seals: int = 0
    sealed_through: str | None = None
    first: str | None = None
    adopted_at: str | None = None
    before_adoption: int = 0  # entries before the key's adoption: chained under the old, unsealed rule
    failed: bool = False  # a seal did not hold
    head: str = ""  # the chain head of the last entry seen
    _entries: int = 0
    _tail: int = 0  # entries after the last checked seal's position that were walked before that seal
    _heads: dict[str, str] = field(default_factory=dict)  # position -> head since the last checked seal

    @property
    def unsealed(self) -> int:
        """Entries (seals aside) after the last checked seal: all of them when no seal was checked."""
        return self._tail + len(self._heads) if self.sealed_through is not None else self._entries

    def __call__(self, position: str, envelope: bytes, head: str) -> tuple[str, str] | None:
        """See one walked entry; ``(position, why)`` when a seal there does not hold."""
        if self.first is None:
            self.first = position
        self.head = head
        kind = envelope_type(envelope)
        if kind != _SEALED:
            self._entries += 1
            if self.verifier is not None:
                self._heads[position] = head
            if kind == _ADOPTED and self.adopted_at is None:
                self.adopted_at, self.before_adoption = position, self._entries - 1
            return None
        seal = decode(position, envelope).event
        assert isinstance(seal, ChainSealed)
        self.seals += 1
        if self.verifier is None:
            return None
        broken = self._check(seal)
        if broken is not None:
            self.failed = True
        return broken

    def _check(self, seal: ChainSealed) -> tuple[str, str] | None:
        assert self.verifier is not None
        covered = self._heads.get(seal.position)
        if covered is None:
            if self.first is not None and position_key(seal.position) < position_key(self.first):
                return None  # it covers entries before the part walked (a file from --since, a trimmed log)
            return seal.position, "a seal names a position it cannot cover (not after the previous seal)"
        if seal.key_id != self.verifier.key_id:
            return seal.position, f"sealed by key {seal.key_id}, not the ledger key {self.verifier.key_id}"
        if covered != seal.head:
            return seal.position, "the chain head here is not the one the ledger key sealed: an entry up to it changed"
        if not self.verifier.valid(seal.signature, seal_message(seal.position, seal.head)):
            return seal.position, "the seal's signature does not match"
        positions = list(self._heads)  # once per seal: the entries walked since the previous one
        self._tail = len(positions) - positions.index(seal.position) - 1
        self.sealed_through, self._heads = seal.position, {}
        return None

    def summary(self) -> str:
        """One line on how far the walked chain is sealed."""
        if not self.seals:
            return "no seals: nothing on it is signed by the ledger key yet"
        if self.verifier is None:
            return f"{self.seals} seals (not checked)"
        if self.sealed_through is None:
            return f"{self.seals} seals, none covering the part walked"
        line = (
            f"sealed through {self.sealed_through} by key {self.verifier.key_id} ({self.seals} seals); "
            f"{self.unsealed} entries after it await a seal"
        )
        if self.before_adoption:
            line += (
                f"; the {self.before_adoption} entries before the key's adoption at {self.adopted_at} were chained "
                "under the old, unsealed rule and are covered by the first seal"
            )
        return line

"""Configuration as one typed object, read from the environment once and passed explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings"]

DEFAULT_HOME = "~/.jobledger"
DEFAULT_LEASE_SECONDS = 10.0
DEFAULT_LEASE_RENEW_SECONDS = 2.0
DEFAULT_CANCEL_POLL_SECONDS = 0.25
DEFAULT_KILL_GRACE_SECONDS = 1.0
DEFAULT_RECONCILE_AFTER_SECONDS = 30.0


@dataclass(frozen=True)
class Settings:
    """Where the store is and how the runtime behaves; every default is a named constant."""

    redis_url: str | None
    home: Path
    workspace: Path
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    lease_renew_seconds: float = DEFAULT_LEASE_RENEW_SECONDS
    cancel_poll_seconds: float = DEFAULT_CANCEL_POLL_SECONDS
    kill_grace_seconds: float = DEFAULT_KILL_GRACE_SECONDS
    reconcile_after_seconds: float = DEFAULT_RECONCILE_AFTER_SECONDS
    resource_bucket: str | None = None
    resource_endpoint_url: str | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read ``REDIS_URL``, ``JOBLEDGER_HOME``, ``JOBLEDGER_WORKSPACE``, the resource bucket and tuning."""
        env = os.environ if environ is None else environ
        home = Path(env.get("JOBLEDGER_HOME") or DEFAULT_HOME).expanduser().resolve()
        workspace = Path(env.get("JOBLEDGER_WORKSPACE") or home / "workspace").expanduser().resolve()
        return cls(
            redis_url=env.get("REDIS_URL") or None,
            home=home,
            workspace=workspace,
            lease_seconds=float(env.get("JOBLEDGER_LEASE_SECONDS", DEFAULT_LEASE_SECONDS)),
            lease_renew_seconds=float(env.get("JOBLEDGER_LEASE_RENEW_SECONDS", DEFAULT_LEASE_RENEW_SECONDS)),
            cancel_poll_seconds=float(env.get("JOBLEDGER_CANCEL_POLL_SECONDS", DEFAULT_CANCEL_POLL_SECONDS)),
            kill_grace_seconds=float(env.get("JOBLEDGER_KILL_GRACE_SECONDS", DEFAULT_KILL_GRACE_SECONDS)),
            reconcile_after_seconds=float(
                env.get("JOBLEDGER_RECONCILE_AFTER_SECONDS", DEFAULT_RECONCILE_AFTER_SECONDS)
            ),
            resource_bucket=env.get("JOBLEDGER_RESOURCE_BUCKET") or None,
            resource_endpoint_url=env.get("JOBLEDGER_RESOURCE_ENDPOINT_URL") or None,
        )

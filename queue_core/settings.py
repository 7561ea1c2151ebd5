"""Configuration as one typed object, read from the environment once and passed explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from queue_core.errors import InvalidInput
from queue_core.timefmt import parse_duration

__all__ = ["Settings"]

DEFAULT_HOME = "~/.jobledger"
DEFAULT_LEASE_SECONDS = 10.0
DEFAULT_LEASE_RENEW_SECONDS = 2.0
DEFAULT_CANCEL_POLL_SECONDS = 0.25
DEFAULT_KILL_GRACE_SECONDS = 1.0
DEFAULT_RECONCILE_AFTER_SECONDS = 30.0
DEFAULT_SCHEDULE_ON_TIME_SECONDS = 60.0
DEFAULT_TRIGGER_FILE_POLL_SECONDS = 5.0
DEFAULT_PRERUN_RETENTION_HOURS = 72.0  # a pre-run's scratch outputs are removed this long after it ended
DEFAULT_STORE_TIMEOUT_SECONDS = 3.0
DEFAULT_OUTAGE_PATIENCE_SECONDS = 600.0
DEFAULT_SANDBOX = "auto"
SANDBOX_MODES = ("auto", "on", "off")
DEFAULT_JOB_USER = "nobody"
DEFAULT_HOT_WINDOW = "7d"
DEFAULT_CONSOLE_URL = "http://127.0.0.1:8080"
DEFAULT_SMTP_FROM = "jobledger@localhost"
DEFAULT_NOTIFY_RETRY_SECONDS = 10.0
DEFAULT_NOTIFY_RETRY_MAX_SECONDS = 600.0
DEFAULT_NOTIFY_GIVE_UP_SECONDS = 3600.0
DEFAULT_NOTIFY_TIMEOUT_SECONDS = 10.0
DEFAULT_NOTIFY_LEASE_MARGIN_SECONDS = 30.0
DEFAULT_NOTIFY_TICK_SECONDS = 1.0
DURABILITIES = ("local", "replicated")
DEFAULT_DURABILITY = "local"
DEFAULT_REPLICA_WAIT_MS = 1000


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
    # A file holding the Redis password (a compose or Kubernetes secret): kept out of REDIS_URL, argv and env.
    redis_password_file: Path | None = None
    # The ACL user this process reaches Redis as (a user in REDIS_URL wins); None: Redis's default user.
    redis_username: str | None = None
    # How long one Redis command may take before a client gives up on it (a hung store is an outage).
    store_timeout_seconds: float = DEFAULT_STORE_TIMEOUT_SECONDS
    # How long a worker rides out a store outage while an attempt runs before it gives the attempt up.
    outage_patience_seconds: float = DEFAULT_OUTAGE_PATIENCE_SECONDS
    # Refuse a Redis that lets clients in without a password (the compose deployment sets it).
    require_auth: bool = False
    # A schedule's tick seen later than this was missed (no scheduler ran): its catch-up policy decides.
    schedule_on_time_seconds: float = DEFAULT_SCHEDULE_ON_TIME_SECONDS
    # How often a scheduler lists the depots that files triggers watch.
    trigger_file_poll_seconds: float = DEFAULT_TRIGGER_FILE_POLL_SECONDS
    prerun_retention_hours: float = DEFAULT_PRERUN_RETENTION_HOURS
    # The key secret values are encrypted under (never in Redis); default: a file in the home, 0600.
    secret_key_file: Path | None = None
    # The ledger's Ed25519 private key, which seals chain heads; auditors need only its public half.
    ledger_key_file: Path | None = None
    ledger_public_key_file: Path | None = None
    # "auto" (sandbox jobs where bubblewrap works), "on" (refuse to run jobs without it) or "off".
    sandbox: str = DEFAULT_SANDBOX
    # The unprivileged user jobs run as when the worker runs as root.
    job_user: str = DEFAULT_JOB_USER
    # How long ended runs stay in Redis before compaction moves them to the cold tier (``JOBLEDGER_HOT_WINDOW``),
    # and at most how many ended runs stay there whatever their age (``JOBLEDGER_HOT_RUNS``; none: no cap).
    hot_window: str = DEFAULT_HOT_WINDOW
    hot_runs: str | None = None
    # The folder of the cold tier's Parquet files (default: the home's ``cold``).
    cold_dir: Path | None = None
    # Where compaction archives the log: ``s3://BUCKET/PREFIX`` (an S3-compatible endpoint in
    # ``archive_endpoint_url``) or a folder (default: the home's ``archive``). A trimmed log keeps its archive.
    archive: str | None = None
    archive_endpoint_url: str | None = None
    # Notifications: the console's address their links use; the SMTP server email goes through
    # (``smtp://[USER@]HOST[:PORT]``, ``smtps://`` for TLS, ``?starttls=true``) and the secret holding its
    # password; how soon a failed delivery is tried again (doubling up to the max), and when it is given up.
    console_url: str = DEFAULT_CONSOLE_URL
    smtp_url: str | None = None
    smtp_password_secret: str | None = None
    smtp_from: str = DEFAULT_SMTP_FROM
    notify_retry_seconds: float = DEFAULT_NOTIFY_RETRY_SECONDS
    notify_retry_max_seconds: float = DEFAULT_NOTIFY_RETRY_MAX_SECONDS
    notify_give_up_seconds: float = DEFAULT_NOTIFY_GIVE_UP_SECONDS
    notify_timeout_seconds: float = DEFAULT_NOTIFY_TIMEOUT_SECONDS
    notify_lease_margin_seconds: float = DEFAULT_NOTIFY_LEASE_MARGIN_SECONDS
    notify_tick_seconds: float = DEFAULT_NOTIFY_TICK_SECONDS
    # Redis Sentinel: the sentinels' ``host:port`` addresses and the name of the primary they watch. When set,
    # every process asks them where the primary is (instead of ``REDIS_URL``) and follows a failover by itself.
    # The sentinels' own ACL user and password file (``sentinel auth`` is separate from the data nodes').
    sentinels: str | None = None
    sentinel_master: str | None = None
    sentinel_username: str | None = None
    sentinel_password_file: Path | None = None
    # "local": an append is acknowledged once the primary has it; "replicated": once ``WAIT`` says a replica
    # has it too, waiting at most ``replica_wait_ms`` (no answer in time: the append is ambiguous, retried).
    durability: str = DEFAULT_DURABILITY
    replica_wait_ms: int = DEFAULT_REPLICA_WAIT_MS

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``JOBLEDGER_SENTINELS`` as ``(host, port)`` pairs (empty when unset); ``InvalidInput`` naming it."""
        if not self.sentinels:
            return []
        addresses = []
        for item in self.sentinels.split(","):
            host, _, port = item.strip().rpartition(":")
            if not host or not port.isdigit():
                raise InvalidInput(f"{item.strip()[:60]!r} is not host:port", "JOBLEDGER_SENTINELS")
            addresses.append((host.strip("[]"), int(port)))
        if not self.sentinel_master:
            raise InvalidInput("JOBLEDGER_SENTINELS is set: name the primary too", "JOBLEDGER_SENTINEL_MASTER")
        return addresses

    @property
    def external_store(self) -> bool:
        """Whether the store is one this home does not own (``REDIS_URL`` or Sentinel), not the embedded one."""
        return bool(self.redis_url or self.sentinels)

    @property
    def replicas_to_wait(self) -> int:
        """How many replicas must have an append before it is acknowledged (0 for ``local``)."""
        if self.durability not in DURABILITIES:
            message = f"{self.durability[:40]!r} is not one of {', '.join(DURABILITIES)}"
            raise InvalidInput(message, "JOBLEDGER_DURABILITY")
        return 1 if self.durability == "replicated" else 0

    @property
    def hot_window_delta(self) -> timedelta:
        """``hot_window`` as a duration; ``InvalidInput`` naming the setting when it is not one."""
        try:
            return parse_duration(self.hot_window)
        except ValueError as exc:
            raise InvalidInput(str(exc), "JOBLEDGER_HOT_WINDOW") from None

    @property
    def hot_runs_cap(self) -> int | None:
        if self.hot_runs is None:
            return None
        if not self.hot_runs.strip().isdigit():
            raise InvalidInput(f"{self.hot_runs[:40]!r} is not a whole number", "JOBLEDGER_HOT_RUNS")
        return int(self.hot_runs)

    @property
    def cold_path(self) -> Path:
        return self.cold_dir or self.home / "cold"

    @property
    def keys_dir(self) -> Path:
        """The folder of the home's key files (0700)."""
        return self.home / "keys"

    @property
    def secret_key_path(self) -> Path:
        return self.secret_key_file or self.keys_dir / "secret.key"

    @property
    def ledger_key_path(self) -> Path:
        return self.ledger_key_file or self.keys_dir / "ledger.key"

    @property
    def ledger_public_key_path(self) -> Path:
        return self.ledger_public_key_file or self.ledger_key_path.with_suffix(".pub")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read ``REDIS_URL``, ``REDIS_USERNAME``, ``REDIS_PASSWORD_FILE``, ``JOBLEDGER_HOME``,
        ``JOBLEDGER_WORKSPACE``, Sentinel, durability, the resource bucket, safety, tuning."""
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
            redis_password_file=Path(env["REDIS_PASSWORD_FILE"]) if env.get("REDIS_PASSWORD_FILE") else None,
            redis_username=env.get("REDIS_USERNAME") or None,
            store_timeout_seconds=float(env.get("JOBLEDGER_STORE_TIMEOUT_SECONDS", DEFAULT_STORE_TIMEOUT_SECONDS)),
            outage_patience_seconds=float(
                env.get("JOBLEDGER_OUTAGE_PATIENCE_SECONDS", DEFAULT_OUTAGE_PATIENCE_SECONDS)
            ),
            require_auth=env.get("JOBLEDGER_REQUIRE_AUTH", "").lower() in ("1", "true", "yes"),
            schedule_on_time_seconds=float(
                env.get("JOBLEDGER_SCHEDULE_ON_TIME_SECONDS", DEFAULT_SCHEDULE_ON_TIME_SECONDS)
            ),
            trigger_file_poll_seconds=float(
                env.get("JOBLEDGER_TRIGGER_FILE_POLL_SECONDS", DEFAULT_TRIGGER_FILE_POLL_SECONDS)
            ),
            prerun_retention_hours=float(env.get("JOBLEDGER_PRERUN_RETENTION_HOURS", DEFAULT_PRERUN_RETENTION_HOURS)),
            secret_key_file=_path(env.get("JOBLEDGER_SECRET_KEY_FILE")),
            ledger_key_file=_path(env.get("JOBLEDGER_LEDGER_KEY_FILE")),
            ledger_public_key_file=_path(env.get("JOBLEDGER_LEDGER_PUBLIC_KEY_FILE")),
            sandbox=env.get("JOBLEDGER_SANDBOX", "").lower() or DEFAULT_SANDBOX,
            job_user=env.get("JOBLEDGER_JOB_USER") or DEFAULT_JOB_USER,
            hot_window=env.get("JOBLEDGER_HOT_WINDOW") or DEFAULT_HOT_WINDOW,
            hot_runs=env.get("JOBLEDGER_HOT_RUNS") or None,
            cold_dir=_path(env.get("JOBLEDGER_COLD_DIR")),
            archive=env.get("JOBLEDGER_ARCHIVE") or None,
            archive_endpoint_url=env.get("JOBLEDGER_ARCHIVE_ENDPOINT_URL") or None,
            console_url=(env.get("JOBLEDGER_CONSOLE_URL") or DEFAULT_CONSOLE_URL).rstrip("/"),
            smtp_url=env.get("JOBLEDGER_SMTP_URL") or None,
            smtp_password_secret=env.get("JOBLEDGER_SMTP_PASSWORD_SECRET") or None,
            smtp_from=env.get("JOBLEDGER_SMTP_FROM") or DEFAULT_SMTP_FROM,
            notify_retry_seconds=float(env.get("JOBLEDGER_NOTIFY_RETRY_SECONDS", DEFAULT_NOTIFY_RETRY_SECONDS)),
            notify_retry_max_seconds=float(
                env.get("JOBLEDGER_NOTIFY_RETRY_MAX_SECONDS", DEFAULT_NOTIFY_RETRY_MAX_SECONDS)
            ),
            notify_give_up_seconds=float(env.get("JOBLEDGER_NOTIFY_GIVE_UP_SECONDS", DEFAULT_NOTIFY_GIVE_UP_SECONDS)),
            notify_timeout_seconds=float(env.get("JOBLEDGER_NOTIFY_TIMEOUT_SECONDS", DEFAULT_NOTIFY_TIMEOUT_SECONDS)),
            notify_lease_margin_seconds=float(
                env.get("JOBLEDGER_NOTIFY_LEASE_MARGIN_SECONDS", DEFAULT_NOTIFY_LEASE_MARGIN_SECONDS)
            ),
            notify_tick_seconds=float(env.get("JOBLEDGER_NOTIFY_TICK_SECONDS", DEFAULT_NOTIFY_TICK_SECONDS)),
            sentinels=env.get("JOBLEDGER_SENTINELS") or None,
            sentinel_master=env.get("JOBLEDGER_SENTINEL_MASTER") or None,
            sentinel_username=env.get("JOBLEDGER_SENTINEL_USERNAME") or None,
            sentinel_password_file=_path(env.get("JOBLEDGER_SENTINEL_PASSWORD_FILE")),
            durability=(env.get("JOBLEDGER_DURABILITY") or DEFAULT_DURABILITY).lower(),
            replica_wait_ms=int(env.get("JOBLEDGER_REPLICA_WAIT_MS", DEFAULT_REPLICA_WAIT_MS)),
        )


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser().resolve() if value else None

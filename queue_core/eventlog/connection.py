"""How a process reaches the store: through Sentinel or REDIS_URL when given (a password possibly in a file), else the
embedded server."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.client import Pipeline
from redis.exceptions import NoPermissionError
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel

from queue_core.errors import InvalidInput, JobledgerError, StoreUnavailable
from queue_core.eventlog.embedded import EmbeddedRedis, private_folder
from queue_core.settings import Settings

__all__ = [
    "AccessDenied",
    "StoreConnection",
    "connect",
    "connect_like",
    "display_url",
    "read_password",
    "read_sentinel_password",
    "redis_url",
    "sentinel_config",
    "url_with_password",
]

SOCKET_CONNECT_TIMEOUT_SECONDS = 10.0
# One retry: a refused or timed-out command is tried once more, so an outage is learned of in seconds.
CONNECTION_RETRIES = 1


def redis_url(settings: Settings) -> str:
    """The URL other processes (workers, dispatchers) use to reach this store (without a password from a file).

    Through Sentinel: a ``redis+sentinel://`` address naming the sentinels and the primary, for display only
    (processes find the primary from ``JOBLEDGER_SENTINELS``; nothing is given a fixed primary's address).
    """
    if settings.sentinels:
        hosts = ",".join(f"{host}:{port}" for host, port in settings.sentinel_addresses)
        return f"redis+sentinel://{hosts}/{settings.sentinel_master}"
    if settings.redis_url:
        return settings.redis_url
    return EmbeddedRedis(settings.home).url


def read_password(settings: Settings) -> str | None:
    """The password in ``REDIS_PASSWORD_FILE`` (one trailing newline dropped), or None when no file is named."""
    return _password_in(settings.redis_password_file, "REDIS_PASSWORD_FILE")


def read_sentinel_password(settings: Settings) -> str | None:
    """The sentinels' own password, in ``JOBLEDGER_SENTINEL_PASSWORD_FILE``, or None when no file is named."""
    return _password_in(settings.sentinel_password_file, "JOBLEDGER_SENTINEL_PASSWORD_FILE")


def _password_in(path: Any, setting: str) -> str | None:
    if path is None:
        return None
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", setting) from None
    return text[:-1] if text.endswith("\n") else text


def sentinel_config(settings: Settings) -> dict[str, Any]:
    """RQ's ``SENTINEL`` setting for this store (``rq worker -c workers.rq_settings``): the sentinels, the
    primary's name and the credentials, read from their files here, so none is on a command line."""
    password, sentinel_password = read_password(settings), read_sentinel_password(settings)
    sentinel_kwargs = {
        **({"username": settings.sentinel_username} if settings.sentinel_username else {}),
        **({"password": sentinel_password} if sentinel_password is not None else {}),
    }
    return {
        "INSTANCES": settings.sentinel_addresses,
        "MASTER_NAME": settings.sentinel_master,
        "USERNAME": settings.redis_username,
        "PASSWORD": password,
        "SENTINEL_KWARGS": sentinel_kwargs,
        "CONNECTION_KWARGS": {"socket_connect_timeout": SOCKET_CONNECT_TIMEOUT_SECONDS},
    }


def url_with_password(settings: Settings) -> str:
    """``redis_url`` with the password from the file (and ``REDIS_USERNAME``) written into it: for RQ, which takes
    only a URL. Only ever held in memory: a URL with a password is never put on a command line."""
    url, password = redis_url(settings), read_password(settings)
    if password is None:
        return url
    parts = urlsplit(url)
    user = quote(parts.username or settings.redis_username or "", safe="")
    netloc = f"{user}:{quote(password, safe='')}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def display_url(url: str) -> str:
    """The URL with any password in it replaced by ``***``, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    netloc = f"{user}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class AccessDenied(JobledgerError, redis.ResponseError):
    """Raised when the store's ACL refuses this process's Redis user a command, key or channel."""

    # The process reaches the store as a role that may not do this (a read-only one, say). Also a
    # redis.ResponseError, as NOPERM is.

    exit_code = 4


def denied(exc: NoPermissionError) -> AccessDenied:
    """The one-line error for a NOPERM reply; it names the refused command, never its arguments."""
    text = str(exc)
    reason = text[text.index("this user") :] if "this user" in text else "no permission"
    return AccessDenied(f"the store refused this process's user: {reason.splitlines()[0]}")


def unavailable(exc: BaseException) -> StoreUnavailable:
    """The one-line ``store unavailable`` error for a connection error or time-out."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, MasterNotFoundError):  # its text lists every sentinel's client, settings and all
        name, _, reasons = text.partition(" : ")
        text = f"{name.lower()} (the last sentinel asked: {reasons.rpartition(' - ')[2][:160]})" if reasons else name
    if isinstance(exc, redis.TimeoutError):
        text = f"no answer in time ({text})"
    return StoreUnavailable(f"store unavailable: {text}")


def no_replicas(exc: redis.ResponseError) -> bool:
    """Whether Redis refused a write for want of replicas in sync (``min-replicas-to-write``): an outage, as a
    primary that is down is, and as short-lived; nothing was written."""
    # redis-py prefixes a pipeline's error with the command: "Command # 1 (...) of pipeline caused error: ..."
    return str(exc).rsplit(" of pipeline caused error: ", 1)[-1].startswith("NOREPLICAS")


NO_REPLICAS = "store unavailable: the primary has too few replicas in sync to take writes"


class _StorePipeline(Pipeline):
    def execute(self, raise_on_error: bool = True) -> list[Any]:
        try:
            return super().execute(raise_on_error)
        except StoreUnavailable:
            raise
        except NoPermissionError as exc:
            raise denied(exc) from exc
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise unavailable(exc) from exc
        except redis.ResponseError as exc:
            if no_replicas(exc):
                raise StoreUnavailable(NO_REPLICAS) from exc
            raise


class StoreConnection(redis.Redis):
    """A Redis client whose lost connections and time-outs are ``StoreUnavailable``, jobledger's typed error.

    ``StoreUnavailable`` is also a ``redis.ConnectionError``, so code that retries those still does.
    """

    def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute_command(*args, **options)
        except StoreUnavailable:
            raise
        except NoPermissionError as exc:
            raise denied(exc) from exc
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise unavailable(exc) from exc
        except redis.ResponseError as exc:
            if no_replicas(exc):
                raise StoreUnavailable(NO_REPLICAS) from exc
            raise

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        return _StorePipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


def connect(settings: Settings, start_embedded: bool = True) -> redis.Redis:
    """A connection to the store, starting the embedded server if needed.

    A command that gets no answer within ``store_timeout_seconds`` fails (a hung store is an outage);
    blocking reads ask for less than that.
    """
    private_folder(settings.home)  # the home holds keys, logs and this machine's record of the store: 0700
    if settings.sentinels:
        return _through_sentinel(settings)
    if settings.redis_url:
        password = read_password(settings)
        return StoreConnection.from_url(
            settings.redis_url,
            socket_connect_timeout=SOCKET_CONNECT_TIMEOUT_SECONDS,
            socket_timeout=settings.store_timeout_seconds,
            health_check_interval=30,
            # redis-py 8 retries ten times with backoff by default; a client should learn of an outage fast.
            retry=Retry(ExponentialBackoff(0.5, 0.05), CONNECTION_RETRIES),
            # A password in the URL wins; one from the file is used when the URL carries none. So does a user.
            **({"password": password} if password is not None else {}),
            **({"username": settings.redis_username} if settings.redis_username else {}),
        )
    embedded = EmbeddedRedis(settings.home)
    if start_embedded:
        embedded.ensure_running()
    return embedded.connect()


def _through_sentinel(settings: Settings) -> redis.Redis:
    """A connection to whichever server the sentinels say is the primary now.

    After a failover the next command finds the new primary by itself: a connection to the old one fails (or
    is refused as read-only, once it came back as a replica) and the pool asks the sentinels again.
    """
    config = sentinel_config(settings)
    sentinel = Sentinel(
        config["INSTANCES"],
        sentinel_kwargs={
            "socket_timeout": settings.store_timeout_seconds,
            "socket_connect_timeout": settings.store_timeout_seconds,
            **config["SENTINEL_KWARGS"],
        },
        socket_connect_timeout=SOCKET_CONNECT_TIMEOUT_SECONDS,
        socket_timeout=settings.store_timeout_seconds,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(0.5, 0.05), CONNECTION_RETRIES),
        **({"password": config["PASSWORD"]} if config["PASSWORD"] is not None else {}),
        **({"username": config["USERNAME"]} if config["USERNAME"] else {}),
    )
    connection: redis.Redis = sentinel.master_for(settings.sentinel_master or "", redis_class=StoreConnection)
    return connection


def connect_like(connection: redis.Redis, settings: Settings) -> redis.Redis:
    """A connection to the server ``connection`` reaches (same address and credentials), with jobledger's
    time-out and retries: for a worker, whose RQ connection waits minutes on a hung store and retries ten times.
    Through Sentinel, a connection of its own to whichever server is the primary.
    """
    if settings.sentinels:
        return connect(settings)
    pool: Any = connection.connection_pool
    kwargs = dict(pool.connection_kwargs)
    kwargs.update(
        socket_timeout=settings.store_timeout_seconds,
        retry=Retry(ExponentialBackoff(0.5, 0.05), CONNECTION_RETRIES),
    )
    return StoreConnection(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))

"""Settings for a plain ``rq worker -c workers.rq_settings``: jobledger's store, with its password read from a file.

RQ takes its connection from a URL; with ``REDIS_PASSWORD_FILE`` (a compose or Kubernetes secret) the
password is read here, so it is on no command line and in no environment variable.
"""

from queue_core.eventlog.connection import sentinel_config, url_with_password
from queue_core.settings import Settings

_settings = Settings.from_env()
if _settings.sentinels:  # RQ asks the sentinels for the primary (and again after a failover)
    SENTINEL = sentinel_config(_settings)
else:
    REDIS_URL = url_with_password(_settings)

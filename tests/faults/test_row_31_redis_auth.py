"""Row 31: a Redis that strangers can use, and what jobledger's own user may do.

With ``JOBLEDGER_REQUIRE_AUTH=1`` (the compose deployment sets it) every process refuses a Redis whose
``default`` user lets anyone in without a password. Locked down as the README's Guarantees section shows
(``default`` off, a ``jobledger`` user without the ``@dangerous`` commands and without ``SCRIPT FLUSH``),
a client without credentials gets ``NOAUTH``, jobledger's own user gets ``NOPERM`` for
``CONFIG SET``, ``FLUSHALL`` and ``SCRIPT FLUSH``, and the whole system runs with that user.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from queue_core import Client, Settings, UnsafeStore
from tests.support.faults import assert_log_holds
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs
from tests.support.redis_server import RedisServer

PASSWORD = "jobledger-test-password"
# The ACL the README recommends, as ``ACL SETUSER`` arguments.
JOBLEDGER_USER = ["on", f">{PASSWORD}", "~*", "&*", "+@all", "-@dangerous", "+info", "+config|get", "-script|flush"]


def _refused(procs: Procs) -> None:
    answer = procs.cli("runs")
    assert answer.returncode == 4
    assert answer.stderr.startswith("jobledger: Redis lets clients in without a password")
    for proc in (procs.dispatcher(), procs.worker(procs.env["REDIS_URL"])):
        assert proc.wait(timeout=60) == 4


def test_with_auth_required_a_redis_open_to_anyone_is_refused_by_every_process(
    settings: Settings, procs: Procs, store_server: RedisServer
):
    procs.env["JOBLEDGER_REQUIRE_AUTH"] = "1"
    with pytest.raises(UnsafeStore, match="without a password"):
        Client(settings=Settings(**{**settings.__dict__, "require_auth": True}))
    _refused(procs)


def test_a_locked_down_redis_keeps_strangers_out_denies_jobledger_the_dangerous_commands_and_runs_it(
    settings: Settings, workspace: Path, procs: Procs, store_server: RedisServer
):
    admin = store_server.client()
    admin.acl_setuser("jobledger", reset=True)
    admin.execute_command("ACL", "SETUSER", "jobledger", *JOBLEDGER_USER)
    admin.execute_command("ACL", "SETUSER", "default", "off")
    port = store_server.port
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=port, retry=Retry(NoBackoff(), 0)).ping()
    worker_credentials = redis.Redis(host="127.0.0.1", port=port, username="jobledger", password=PASSWORD)
    for command in (["CONFIG", "SET", "dir", "/"], ["FLUSHALL"], ["SCRIPT", "FLUSH"]):
        with pytest.raises(redis.exceptions.NoPermissionError):
            worker_credentials.execute_command(*command)

    url = f"redis://jobledger:{PASSWORD}@127.0.0.1:{port}/0"
    procs.env.update(REDIS_URL=url, JOBLEDGER_REQUIRE_AUTH="1")
    client = Client(settings=Settings(**{**settings.__dict__, "redis_url": url, "require_auth": True}))
    client.define(definition("locked", job_file(workspace, "x.sh", "echo locked in\n")))
    procs.fleet(url)
    run_id = client.submit("locked")
    assert client.wait(run_id, timeout=60)["status"] == "SUCCEEDED", procs_log(procs)
    assert [line.line for line in client.logs(run_id)] == ["locked in"]
    assert "NOPERM" not in procs_log(procs)
    assert_log_holds(client, [run_id])


def procs_log(procs: Procs) -> str:
    return "".join(p.read_text() for p in procs.log_dir.glob("*.log"))

"""Each process reaches Redis as its role's own ACL user (``jobledger acl --apply``), the default user off: the
whole system still works end to end, Redis refuses nothing it does, and the read-only roles can write nothing."""

from __future__ import annotations

import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.exceptions import NoPermissionError

from queue_core import Client, Settings
from queue_core.cli.fleet import fleet_command
from queue_core.eventlog.acl import READ_ONLY_ROLES, ROLES
from tests.support.acl_store import AclStore, acl_store
from tests.support.console_http import request
from tests.support.jobs import definition, job_file, native, shell_task
from tests.support.processes import Procs, eventually
from tests.support.redis_server import RedisServer
from tests.support.servers import start_server

SECRET = "role-test-secret-value"

# Write-capable commands a read-only role must be refused, each as Redis would be sent it.
WRITES: list[tuple[str, ...]] = [
    ("SET", "jobledger:epoch", "forged"),
    ("DEL", "jobledger:log"),
    ("UNLINK", "jobledger:log"),
    ("XADD", "jobledger:log", "*", "e", "{}"),
    ("XTRIM", "jobledger:log", "MAXLEN", "0"),
    ("XDEL", "jobledger:log", "0-1"),
    ("XGROUP", "CREATE", "jobledger:log", "mine", "$"),
    ("XREADGROUP", "GROUP", "dispatchers", "me", "STREAMS", "jobledger:log", ">"),
    ("XACK", "jobledger:log", "dispatchers", "0-1"),
    ("HSET", "jobledger:secrets", "name", "value"),
    ("HDEL", "jobledger:live:rm:runs", "x"),
    ("ZADD", "jobledger:live:ix:runs:all", "1", "x"),
    ("LPUSH", "rq:queue:default", "x"),
    ("SADD", "rq:workers", "x"),
    ("INCR", "jobledger:x"),
    ("EXPIRE", "jobledger:log", "1"),
    ("RENAME", "jobledger:log", "jobledger:gone"),
    ("COPY", "jobledger:log", "jobledger:copy"),
    ("EVAL", "return 1", "0"),
    ("EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"),
    ("EVAL_RO", "return 1", "0"),
    ("FCALL", "anything", "0"),
    ("SCRIPT", "LOAD", "return 1"),
    ("FUNCTION", "FLUSH"),
    ("PUBLISH", "rq:pubsub:someone", "shutdown"),
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("SWAPDB", "0", "1"),
    ("CONFIG", "SET", "maxmemory-policy", "allkeys-lru"),
    ("ACL", "SETUSER", "console", "+@all"),
    ("SHUTDOWN", "NOSAVE"),
]


@pytest.fixture
def store(tmp_path: Path, env: dict[str, str]) -> Iterator[AclStore]:
    server = RedisServer(tmp_path / "acl-redis")
    server.start()
    try:
        yield acl_store(server, tmp_path / "passwords", env)
    finally:
        server.kill()


def _scrape(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        return str(response.read().decode())


def test_every_process_runs_as_its_own_role_and_redis_refuses_nothing_it_does(
    store: AclStore, env: dict[str, str], workspace: Path, tmp_path: Path
):
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=store.server.port).ping()  # the default user is off: no way in without a user
    procs = Procs(store.env("client", env), tmp_path / "logs")
    try:
        procs.spawn([sys.executable, "-m", "queue_core", "scheduler"], "scheduler", store.env("scheduler", env))
        worker = [sys.executable, "-m", "rq.cli", *fleet_command(None, "default")[1:]]
        procs.spawn(worker, "worker", store.env("worker", env))
        client = Client(settings=Settings.from_env(store.env("client", env)))

        client.set_secret("api-token", SECRET)
        hello = definition("hello", job_file(workspace, "hello.sh", 'echo "hello, token of ${#TOKEN}"\n'))
        hello["config"]["envVars"] = {"TOKEN": {"secret": "api-token"}}
        client.define(hello)
        run = client.wait(client.submit("hello"), timeout=60)
        assert run["status"] == "SUCCEEDED"
        assert [line.line for line in client.logs(run["id"])] == [f"hello, token of {len(SECRET)}"]

        client.define(definition("slow", job_file(workspace, "slow.sh", "sleep 60\n")))
        slow = client.submit("slow")
        eventually(lambda: client.get_run(slow)["status"] == "RUNNING", timeout=60, what="the slow run to start")
        client.cancel(slow)
        assert client.wait(slow, timeout=60)["status"] == "CANCELLED"

        tasks = {"a": shell_task(workspace, "a"), "b": shell_task(workspace, "b", depends_on=["a"])}
        client.apply_workflow(native("flow", tasks))
        assert client.wait_workflow_run(client.run_workflow("flow"), timeout=60)["status"] == "SUCCEEDED"

        at = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
        client.create_schedule("soon", definition="hello", at=at.isoformat())
        fired = eventually(
            lambda: [e for e in client.get_schedule("soon")["history"] if e["outcome"] == "fired"],
            timeout=60,
            what="the scheduler to fire the schedule",
        )
        assert client.wait(fired[0]["run"], timeout=60)["status"] == "SUCCEEDED"

        for args in (["runs"], ["status", run["id"]], ["logs", run["id"]], ["events", "--limit", "5"]):
            result = procs.cli(*args)
            assert result.returncode == 0, result.stderr
        assert procs.cli("secret", "set", "other", input="another value\n").returncode == 0
        assert procs.cli("secret", "list").stdout.split() == ["api-token", "other"]

        _, console = start_server(procs, "console", name="console", env=store.env("console", env))
        pages = [
            f"/runs/{run['id']}",
            f"/runs/{run['id']}/logs",
            "/definitions/hello",
            "/workflows/flow",
            "/schedules/soon",
        ]
        for path in ("/runs", "/definitions", "/workflows", "/schedules", "/clusters", "/events", *pages):
            assert request(console, path).status == 200, path
        eventually(lambda: run["id"] in request(console, "/runs").body, what="the console to list the run")
        _, metrics = start_server(procs, "metrics", name="metrics", env=store.env("metrics", env))
        assert 'jobledger_runs{definition="hello",status="SUCCEEDED"}' in _scrape(metrics)
    finally:
        procs.kill_all()
    assert store.denials() == []


@pytest.mark.parametrize("role", READ_ONLY_ROLES)
def test_a_read_only_role_is_refused_every_write_command(store: AclStore, role: str):
    connection = store.as_role(role)
    assert connection.ping()
    allowed = []
    for command in WRITES:
        try:
            connection.execute_command(*command)
            allowed.append(command[0])
        except NoPermissionError:
            pass
    assert allowed == []
    assert store.admin().ping()  # SHUTDOWN and FLUSHALL were refused: the server and its data are there


def test_the_read_only_roles_hold_no_command_redis_counts_as_a_write(store: AclStore):
    """What Redis itself says of each command the console and metrics may run: no ``write`` flag, not in
    ``@write``. (A command this server does not know, such as CLIENT SETINFO before 7.2, is skipped.)"""
    admin = store.admin()
    admin.set_response_callback("COMMAND", lambda response, **options: response)  # Redis's own answer, raw
    for role in READ_ONLY_ROLES:
        for command in ROLES[role].commands:
            (info,) = admin.execute_command("COMMAND", "INFO", command)
            if info is None:
                continue
            flags = {_text(flag) for flag in info[2]}
            categories = {_text(category) for category in info[6]}
            assert "write" not in flags and "@write" not in categories, f"{role} may run {command}, a write"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def test_a_worker_may_not_write_read_models_or_secrets_and_a_client_may_not_touch_rq_queues(store: AclStore):
    worker = store.as_role("worker")
    for write in (("HSET", "jobledger:live:rm:runs", "x", "{}"), ("HSET", "jobledger:secrets", "x", "y")):
        with pytest.raises(NoPermissionError):
            worker.execute_command(*write)
    with pytest.raises(NoPermissionError):
        store.as_role("client").execute_command("LPUSH", "rq:queue:default", "a-job-of-mine")
    with pytest.raises(NoPermissionError):
        store.as_role("metrics").execute_command("GET", "rq:workers")  # metrics reads only jobledger's keys

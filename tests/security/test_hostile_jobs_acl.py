"""The hostile job again, against a compose-style deployment: a real redis-server whose users are jobledger's
roles (``jobledger acl --apply``, its default user off), every process running as its own role, jobs sandboxed."""

from __future__ import annotations

import sys
from pathlib import Path

from queue_core import Client, Settings
from queue_core.cli.fleet import fleet_command
from queue_core.keyfiles import private_dir
from tests.security.test_hostile_jobs import HOSTILE, RUN_SECRET, _hostile_env
from tests.support.acl_store import acl_store
from tests.support.fixtures import TEST_LEASE_RENEW_SECONDS, TEST_LEASE_SECONDS
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, pid_alive
from tests.support.redis_server import RedisServer
from tests.support.runs import stdout_lines
from tests.support.sandbox import needs_bwrap
from tests.support.sandbox_store import OTHER_RUN_SECRET, WORKER_AWS_SECRET, GuardedHome

pytestmark = needs_bwrap


def test_a_hostile_job_under_acl_users_reaches_neither_the_store_nor_the_home(
    tmp_path: Path, env: dict[str, str], workspace: Path, procs: Procs
):
    home = tmp_path / "home"
    socket = home / "redis" / "redis.sock"
    server = RedisServer(home / "redis")
    server.start("--unixsocket", str(socket), "--unixsocketperm", "777")
    try:
        store = acl_store(server, private_dir(tmp_path / "passwords"), env)
        private_dir(home / "keys")
        other = home / "runs" / "other-run-1-abc" / "source" / "data.txt"
        other.parent.mkdir(parents=True)
        other.write_text(OTHER_RUN_SECRET)
        base = {
            **env,
            "JOBLEDGER_HOME": str(home),
            "JOBLEDGER_WORKSPACE": str(workspace),
            "JOBLEDGER_LEASE_SECONDS": TEST_LEASE_SECONDS,
            "JOBLEDGER_LEASE_RENEW_SECONDS": TEST_LEASE_RENEW_SECONDS,
            "AWS_SECRET_ACCESS_KEY": WORKER_AWS_SECRET,
            "JOBLEDGER_SANDBOX": "on",
        }
        procs.spawn([sys.executable, "-m", "scheduler"], "scheduler", store.env("scheduler", base))
        rq_worker = [sys.executable, "-m", "rq.cli", *fleet_command(None, "default")[1:]]
        worker = procs.spawn(rq_worker, "worker", store.env("worker", base)).pid
        client = Client(settings=Settings.from_env(store.env("client", base)))
        client.set_secret("token", RUN_SECRET)
        job_file(workspace, "hostile.py", HOSTILE)
        guarded = GuardedHome(home, server, socket, other, base)
        hostile_env = _hostile_env(guarded, worker)
        client.define(definition("hostile", "hostile.py", kind="PYTHON", env=hostile_env))  # type: ignore[arg-type]
        run = client.wait(client.submit("hostile"), timeout=90)
        everything = [line.line for line in client.logs(run["id"])]
        assert (run["status"], run["exit_code"]) == ("SUCCEEDED", 0), everything
        got = dict(line.split(": ", 1) for line in stdout_lines(client, run["id"]))
        assert got["env"] == "clean"
        for name in (
            "tcp",
            "unix",
            "aof",
            "keys",
            "other run",
            "worker environ",
            "worker signal",
            "api tcp",
            "api unix",
        ):
            assert got[name].startswith("refused"), (name, got[name])
        assert got["own secret"] == "True" and got["uid"] != "0"
        assert pid_alive(worker)
        text = "\n".join(everything)
        for role in ("worker", "client", "scheduler"):
            assert (tmp_path / "passwords" / role).read_text().strip() not in text
        assert WORKER_AWS_SECRET not in text and OTHER_RUN_SECRET not in text and RUN_SECRET not in text
        assert [d["name"] for d in client.list_definitions()] == ["hostile"]
        # Every process of the deployment did its work as its own role: the store refused none of them.
        refused = {_text(d.get("username")) for d in store.denials()}
        assert refused.isdisjoint({"worker", "client", "scheduler"}), store.denials()
    finally:
        server.stop()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

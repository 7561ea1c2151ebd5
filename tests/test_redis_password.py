"""A Redis with a password: jobledger reads it from REDIS_PASSWORD_FILE, and never prints it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from queue_core import Client, Settings, StoreUnavailable
from queue_core.cli.fleet import fleet_command
from queue_core.eventlog.connection import display_url, url_with_password
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs
from tests.support.redis_server import RedisServer

PASSWORD = "s3cret pass/with:odd@chars"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis-password"), password=PASSWORD)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "redis_password"
    path.write_text(PASSWORD + "\n")
    return path


def test_the_client_reads_the_password_from_the_file(guarded: RedisServer, password_file: Path, tmp_path: Path):
    guarded.client().flushall()
    base = Settings(redis_url=guarded.url, home=tmp_path / "home", workspace=tmp_path)
    with pytest.raises(StoreUnavailable):
        Client(settings=base).list_runs()
    client = Client(settings=Settings(**{**base.__dict__, "redis_password_file": password_file}))
    assert client.list_runs() == []
    assert PASSWORD not in repr(client.settings)


def test_rq_gets_the_password_from_rq_settings_and_runs_the_job(
    guarded: RedisServer, password_file: Path, tmp_path: Path, env: dict[str, str], workspace: Path
):
    guarded.client().flushall()
    guarded_env = {**env, "REDIS_URL": guarded.url, "REDIS_PASSWORD_FILE": str(password_file)}
    procs = Procs(guarded_env, tmp_path / "logs")
    try:
        settings = Settings.from_env(guarded_env)
        # What RQ is handed, inside the worker process only: the password survives URL quoting.
        assert redis.Redis.from_url(url_with_password(settings)).ping()
        client = Client(settings=settings)
        client.define(definition("ok", job_file(workspace, "ok.sh", "echo done\n")))
        procs.dispatcher()
        worker = procs.spawn([sys.executable, "-m", "rq.cli", *fleet_command(None, "default")[1:]], "worker")
        run = client.wait(client.submit("ok"), timeout=60)
        assert run["status"] == "SUCCEEDED"
        assert PASSWORD not in Path(f"/proc/{worker.pid}/cmdline").read_text()
    finally:
        procs.kill_all()
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "logs").glob("*.log"))
    assert "Listening on" in logs or "listening on" in logs.lower()
    assert PASSWORD not in logs
    assert quote(PASSWORD, safe="") not in logs


def test_the_cli_masks_a_password_in_a_url_and_names_an_unreadable_file(
    guarded: RedisServer, tmp_path: Path, env: dict[str, str]
):
    assert display_url("redis://:hunter2@redis:6379/0") == "redis://:***@redis:6379/0"
    assert display_url("redis://redis:6379/0") == "redis://redis:6379/0"
    shown = subprocess.run(
        [sys.executable, "-m", "queue_core", "store", "url"],
        env={**env, "REDIS_URL": f"redis://:{quote(PASSWORD, safe='')}@127.0.0.1:{guarded.port}/0"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.stdout.strip() == f"redis://:***@127.0.0.1:{guarded.port}/0", shown.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "queue_core", "runs"],
        env={**env, "REDIS_PASSWORD_FILE": str(tmp_path / "nowhere")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        f"jobledger: REDIS_PASSWORD_FILE: cannot read {tmp_path / 'nowhere'}: No such file or directory"
    )

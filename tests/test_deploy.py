"""compose.yaml's commands, each run here as a local process against a local Redis with the roles' ACL users, so a
typo in the deployment cannot ship.

What differs from inside compose, and only that: ``$$`` is compose's escape for ``$``; ``/run/secrets/NAME``
files are the test's own (and ``TMPDIR``, where the ``acl`` service copies them, a folder of the test's);
``redis:6379`` is the test's Redis; the ``redis-acl`` volume is a folder of the test's
(the ``acl`` service's home, the Redis service's ``/etc/redis/acl``); the Redis server is given a free loopback
port (``--port P --bind 127.0.0.1`` appended) and ``redis-cli`` that port; a service listening on ``0.0.0.0`` and
a fixed port listens on ``127.0.0.1`` and a free one; and the ACL file leaves out the commands a local
redis-server older than the image's (7.2) does not know (CLIENT SETINFO), which it would refuse to load.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from queue_core import Client, Settings
from tests.support.console_http import request
from tests.support.jobs import definition, job_file
from tests.support.paths import REPO
from tests.support.processes import Procs, eventually
from tests.support.redis_server import free_port, server_binary, server_version
from tests.support.servers import server_log, url_in

ROLES = ("client", "worker", "scheduler", "console", "metrics")
TOKEN = "compose-console-token"
BIN = Path(sys.executable).parent
NEWER_THAN_LOCAL = {(7, 2): ["client|setinfo"]}  # commands a redis-server before that version does not know


def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def _program(name: str, module: str) -> list[str]:
    """The installed console script when there is one (as in the image), else ``python -m``."""
    script = BIN / name
    return [str(script)] if script.exists() else [sys.executable, "-m", module]


@dataclass
class Deployment:
    """The test's stand-ins for what compose provides: secrets, the Redis address, volumes."""

    tmp: Path
    port: int
    workspace: Path
    server: subprocess.Popen[bytes] | None = None  # the redis service, once started

    @property
    def secrets(self) -> dict[str, Path]:
        roles = {f"redis_{role}": self.tmp / "secrets" / f"redis_{role}" for role in ROLES}
        return {**roles, "console_token": self.tmp / "secrets" / "console_token"}

    def password(self, role: str) -> str:
        return self.secrets[f"redis_{role}"].read_text().strip()

    def as_role(self, role: str) -> redis.Redis:
        return redis.Redis(port=self.port, username=role, password=self.password(role))

    def local(self, value: str) -> str:
        value = value.replace("$$", "$").replace("redis:6379", f"127.0.0.1:{self.port}")
        for name, path in self.secrets.items():
            value = value.replace(f"/run/secrets/{name}", str(path))
        value = value.replace("/etc/redis/acl", str(self.tmp / "redis-acl"))
        return value.replace("/var/lib/jobledger", str(self.tmp / "home")).replace("/workspace", str(self.workspace))

    def env(self, service: str, base: dict[str, str]) -> dict[str, str]:
        given = compose()["services"][service].get("environment", {})
        env = {
            k: v
            for k, v in base.items()
            if k not in ("REDIS_URL", "REDIS_USERNAME", "REDIS_PASSWORD_FILE", "JOBLEDGER_CONSOLE_TOKEN")
        }
        env.update({name: self.local(str(value)) for name, value in given.items()})
        # The redis service runs server_binary() (the version the test checks), not one a package put in BIN.
        first = [Path(server_binary()).parent, BIN] if service == "redis" else [BIN, Path(server_binary()).parent]
        env["PATH"] = ":".join([*map(str, first), base.get("PATH", "")])
        return env

    def command(self, service: str) -> list[str]:
        argv = [self.local(str(arg)) for arg in compose()["services"][service]["command"]]
        programs = {"jobledger": _program("jobledger", "queue_core"), "rq": _program("rq", "rq.cli")}
        argv = [*programs.get(argv[0], [argv[0]]), *argv[1:]]
        for i, arg in enumerate(argv[:-1]):
            if arg == "--host" and argv[i + 1] == "0.0.0.0":
                argv[i + 1] = "127.0.0.1"
            if arg == "--port":
                argv[i + 1] = "0"
        return argv


def _write_acl_file(found: Deployment, env: dict[str, str]) -> Path:
    """The ``acl`` service, run: its ACL file, without what the local redis-server is too old to know."""
    sh, flag, script = found.command("acl")
    (found.tmp / "home").mkdir()
    acl_env = {**found.env("acl", env), "TMPDIR": str(found.tmp)}  # its scratch copies of the passwords
    result = subprocess.run([sh, flag, script], env=acl_env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    written = found.tmp / "home" / "users.acl"
    text = written.read_text()
    for version, commands in NEWER_THAN_LOCAL.items():
        if server_version() < version:
            for command in commands:
                text = re.sub(rf" \+{re.escape(command)}(?= |$)", "", text, flags=re.MULTILINE)
    (found.tmp / "redis-acl").mkdir()
    target = found.tmp / "redis-acl" / "users.acl"
    target.write_text(text)
    return target


@pytest.fixture
def deployment(tmp_path: Path, workspace: Path, env: dict[str, str]) -> Iterator[Deployment]:
    """The ``acl`` service's ACL file, then the redis service, started from their compose commands."""
    if server_version() < (7, 0):
        pytest.skip("the local redis-server is older than 7.0: its ACL has no read-only key patterns (%R~)")
    found = Deployment(tmp_path, free_port(), workspace)
    found.secrets["console_token"].parent.mkdir()
    for role in ROLES:
        found.secrets[f"redis_{role}"].write_text(f"compose-{role}-password\n")
    found.secrets["console_token"].write_text(TOKEN + "\n")
    _write_acl_file(found, env)
    sh, flag, script = found.command("redis")
    assert (sh, flag) == ("sh", "-c")
    data = tmp_path / "redis-data"
    data.mkdir()
    server = subprocess.Popen(
        [sh, flag, f"{script} --port {found.port} --bind 127.0.0.1"],
        cwd=data,
        env=found.env("redis", {"PATH": "/usr/bin:/bin"}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    connection = found.as_role("metrics")
    try:
        eventually(lambda: _pings(connection, server), timeout=20, what="the redis service to answer")
        found.server = server
        yield found
    finally:
        server.kill()
        server.wait(timeout=10)


def _pings(connection: redis.Redis, server: subprocess.Popen[bytes]) -> bool:
    assert server.poll() is None, "the redis service exited (its ACL file refused?)"
    try:
        return bool(connection.ping())
    except redis.ConnectionError:
        return False


def test_the_redis_service_keeps_an_aof_refuses_eviction_and_lets_in_only_the_roles(deployment: Deployment):
    info = deployment.as_role("scheduler").info()
    assert (info["aof_enabled"], info["maxmemory_policy"]) == (1, "noeviction")
    assert "--appendfsync everysec" in compose()["services"]["redis"]["command"][2]
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=deployment.port).ping()  # the default user is off
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=deployment.port, username="worker", password="wrong").ping()
    for role in ROLES:
        assert deployment.as_role(role).ping()
    with pytest.raises(redis.exceptions.NoPermissionError):
        deployment.as_role("console").set("jobledger:epoch", "forged")
    assert deployment.server is not None
    cmdline = Path(f"/proc/{deployment.server.pid}/cmdline").read_bytes()
    assert not [role for role in ROLES if deployment.password(role).encode() in cmdline]

    test = compose()["services"]["redis"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    check = deployment.local(test[1]).replace("redis-cli", f"redis-cli -p {deployment.port}")
    env = deployment.env("redis", {"PATH": "/usr/bin:/bin"})
    if shutil.which("redis-cli", path=env["PATH"]) is None:
        pytest.skip("no redis-cli on PATH to run the health check with (redis-server was checked above)")
    assert subprocess.run(["sh", "-c", check], env=env, check=False).returncode == 0
    deployment.secrets["redis_metrics"].write_text("wrong\n")
    assert subprocess.run(["sh", "-c", check], env=env, capture_output=True, check=False).returncode != 0


def _metric(text: str, name: str, labels: dict[str, str]) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def test_the_worker_console_and_metrics_services_serve_a_run(
    deployment: Deployment, env: dict[str, str], tmp_path: Path, workspace: Path
):
    """Two workers (``--scale worker=2``), the console and metrics, with ``jobledger dispatcher`` standing in for
    the scheduler service (whose own command the next test runs)."""
    procs = Procs(env, tmp_path / "logs")
    try:
        for service, name in (
            ("worker", "worker"),
            ("worker", "worker"),
            ("console", "console"),
            ("metrics", "metrics"),
        ):
            procs.env = deployment.env(service, env)
            procs.spawn(deployment.command(service), name)
        procs.env = deployment.env("scheduler", env)
        procs.spawn([*_program("jobledger", "queue_core"), "dispatcher"], "dispatcher")
        client = Client(settings=Settings.from_env(deployment.env("cli", env)))
        client.define(definition("hello", job_file(workspace, "hello.sh", "echo hello from compose\n")))
        run = client.wait(client.submit("hello"), timeout=60)
        assert run["status"] == "SUCCEEDED"

        console = _base_url(procs, "console")
        assert request(console, "/healthz").body == "ok"
        assert run["id"] in request(console, "/runs").body
        clusters = request(console, "/clusters").body
        assert 'workers listening <strong class="listening">2</strong>' in clusters
        assert request(console, f"/runs/{run['id']}/cancel", form={}).status == 403  # no token given
        cancel = request(console, f"/runs/{run['id']}/cancel", form={}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert cancel.status == 409  # the token from the secret file works; the run had ended

        metrics = _base_url(procs, "metrics")
        with urllib.request.urlopen(f"{metrics}/metrics", timeout=30) as response:
            text = response.read().decode()
        assert _metric(text, "jobledger_runs", {"definition": "hello", "status": "SUCCEEDED"}) == 1
    finally:
        procs.kill_all()
    output = "".join(p.read_text(errors="replace") for p in (tmp_path / "logs").glob("*.log"))
    assert not [role for role in ROLES if deployment.password(role) in output] and TOKEN not in output


def _base_url(procs: Procs, name: str) -> str:
    return eventually(lambda: url_in(server_log(procs, name)), timeout=60, what=f"the {name} service to listen")


def test_the_scheduler_service_dispatches_runs_and_fires_schedules(
    deployment: Deployment, env: dict[str, str], tmp_path: Path, workspace
):
    procs = Procs(env, tmp_path / "logs")
    try:
        for service in ("scheduler", "worker"):
            procs.env = deployment.env(service, env)
            procs.spawn(deployment.command(service), service)
        client = Client(settings=Settings.from_env(deployment.env("cli", env)))
        client.define(definition("hello", job_file(workspace, "hello.sh", "echo hello\n")))
        assert client.wait(client.submit("hello"), timeout=60)["status"] == "SUCCEEDED"
        at = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
        client.create_schedule("soon", definition="hello", at=at.isoformat())
        fired = eventually(
            lambda: [e for e in client.get_schedule("soon")["history"] if e["outcome"] == "fired"],
            timeout=60,
            what="the scheduler service to fire the schedule",
        )
        assert client.wait(fired[0]["run"], timeout=60)["status"] == "SUCCEEDED"
    finally:
        procs.kill_all()


def test_compose_is_well_formed_each_service_its_own_user_and_the_image_copies_what_exists():
    services = compose()["services"]
    assert set(services) == {"acl", "redis", "scheduler", "worker", "console", "metrics", "cli"}
    users = {"scheduler": "scheduler", "worker": "worker", "console": "console", "metrics": "metrics", "cli": "client"}
    for name, user in users.items():
        service = services[name]
        assert f"redis_{user}" in service["secrets"]
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["environment"]["REDIS_USERNAME"] == user
        assert service["environment"]["REDIS_PASSWORD_FILE"] == f"/run/secrets/redis_{user}"
    assert services["redis"]["depends_on"]["acl"]["condition"] == "service_completed_successfully"
    assert set(services["acl"]["secrets"]) == {f"redis_{role}" for role in ROLES}
    assert "--disable-default" in services["acl"]["command"][2]
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker  # so that --scale worker=N can run N
    assert worker["command"][:2] == ["rq", "worker"]  # the plain fleet command
    copied = [line.split()[1] for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")]
    assert copied and all((REPO / path).exists() for path in copied)

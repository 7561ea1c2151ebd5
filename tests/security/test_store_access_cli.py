"""``jobledger acl``: what it prints, where the passwords go (never to the output or argv), how it refuses."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from queue_core.eventlog.acl import ROLES
from tests.support.acl_store import AclStore, acl_store
from tests.support.processes import Procs
from tests.support.redis_server import RedisServer


@pytest.fixture
def cli(env: dict[str, str], tmp_path: Path) -> Procs:
    return Procs(env, tmp_path / "logs")


@pytest.fixture
def store(tmp_path: Path, env: dict[str, str]) -> Iterator[AclStore]:
    server = RedisServer(tmp_path / "acl-redis")
    server.start()
    try:
        yield acl_store(server, tmp_path / "passwords", env)
    finally:
        server.kill()


def test_acl_prints_an_acl_file_with_one_user_per_role_and_no_password(cli: Procs):
    result = cli.cli("acl")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[:4] for line in lines] == [["user", name, "on", "#<sha256-of-its-password>"] for name in ROLES]
    assert all("-@all" in line.split() and "+@all" not in line.split() for line in lines)


def test_acl_with_a_passwords_folder_writes_them_0600_and_prints_only_their_hashes(cli: Procs, tmp_path: Path):
    folder = tmp_path / "redis-passwords"
    first = cli.cli("acl", "--passwords", str(folder))
    assert first.returncode == 0, first.stderr
    assert folder.stat().st_mode & 0o777 == 0o700
    for name in ROLES:
        path = folder / name
        password = path.read_text()
        assert path.stat().st_mode & 0o777 == 0o600 and len(password) >= 40
        assert password not in first.stdout
        assert f"user {name} on #{hashlib.sha256(password.encode()).hexdigest()} " in first.stdout
    assert cli.cli("acl", "--passwords", str(folder)).stdout == first.stdout  # read back, not generated again


def test_a_password_file_others_can_read_is_refused(cli: Procs, tmp_path: Path):
    folder = tmp_path / "redis-passwords"
    assert cli.cli("acl", "--passwords", str(folder)).returncode == 0
    os.chmod(folder / "worker", 0o644)
    result = cli.cli("acl", "--passwords", str(folder))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "readable by others" in result.stderr
    assert result.stdout == ""


def test_acl_prints_the_default_user_off_when_asked(cli: Procs):
    lines = cli.cli("acl", "--disable-default").stdout.splitlines()
    assert lines[-1].split()[:3] == ["user", "default", "off"] and "-@all" in lines[-1].split()
    assert "default" not in cli.cli("acl").stdout


def test_acl_apply_without_a_passwords_folder_is_refused_in_one_line(cli: Procs):
    result = cli.cli("acl", "--apply")
    message = "--passwords: creating the users needs the folder of their passwords"
    assert (result.returncode, result.stderr) == (2, f"jobledger: {message}\n")


def test_acl_apply_refuses_the_embedded_store(env: dict[str, str], tmp_path: Path):
    embedded = {key: value for key, value in env.items() if key != "REDIS_URL"}
    result = Procs(embedded, tmp_path / "logs").cli("acl", "--passwords", str(tmp_path / "p"), "--apply")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "embedded store" in result.stderr


def test_a_read_only_role_writing_through_the_cli_gets_one_line_and_appends_nothing(
    store: AclStore, env: dict[str, str], tmp_path: Path
):
    before = store.admin().xlen("jobledger:log")
    result = Procs(store.env("console", env), tmp_path / "logs").cli("cluster", "create", "pool")
    assert result.returncode != 0  # the append's refusal (1): Redis refused the batch, nothing was written
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "the store refused this process's user: this user has no permissions to run" in result.stderr
    assert store.admin().xlen("jobledger:log") == before

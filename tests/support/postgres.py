"""A real PostgreSQL server of the test process's own (trust auth, on a free loopback port), and a schema of a
test's own on it.

The server is started once per test process from the machine's PostgreSQL binaries (``initdb`` and
``postgres``, found on ``PATH`` or under ``/usr/lib/postgresql``; as the ``postgres`` user when the tests run as
root, which PostgreSQL refuses), in a temporary folder, and stopped when the process exits. Without the
binaries, the machine's own server at 127.0.0.1:5432 is used if one answers; else the test skips saying why.
"""

from __future__ import annotations

import atexit
import functools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.redis_server import free_port

MACHINE_SERVER = "host=127.0.0.1 port=5432 dbname=test connect_timeout=3"
START_TIMEOUT_SECONDS = 60.0
SERVER_USER = "postgres"  # who runs the server when the tests run as root


def _bindir() -> Path | None:
    """The folder holding ``initdb`` and ``postgres`` (the newest installed version), or None."""
    found = shutil.which("initdb")
    if found and Path(found).with_name("postgres").exists():
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def _stop(process: subprocess.Popen[bytes], folder: Path) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    shutil.rmtree(folder, ignore_errors=True)


@functools.cache
def _own_server() -> str | None:
    """The DSN of this process's own server, started on first use; None without PostgreSQL's binaries."""
    bindir = _bindir()
    if bindir is None:
        return None
    user = SERVER_USER if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="jobledger-pg-"))
    if user is not None:
        account = pwd.getpwnam(user)
        os.chown(folder, account.pw_uid, account.pw_gid)
    data = folder / "data"
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
        user=user, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    port = free_port()
    with open(folder / "server.log", "wb") as log:
        process = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(folder),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off"],
            user=user, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    atexit.register(_stop, process, folder)
    dsn = f"host=127.0.0.1 port={port} dbname=postgres user=postgres connect_timeout=3"
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:  # until it accepts connections (or has died)
        try:
            psycopg.connect(dsn).close()
            return dsn
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = (folder / "server.log").read_text(errors="replace")[-500:]
                raise RuntimeError(f"PostgreSQL did not start: {tail}") from None
            time.sleep(0.1)


def server_dsn() -> str:
    """A DSN that connects: this process's own server, else the machine's; or pytest.skip with why not."""
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")
    own = _own_server()
    if own is not None:
        return own
    problems = []
    for user in ("postgres", "root"):
        dsn = f"{MACHINE_SERVER} user={user}"
        try:
            psycopg.connect(dsn).close()
            return dsn
        except psycopg.Error as exc:
            problems.append(f"{user}: {str(exc).strip().splitlines()[0]}")
    pytest.skip(
        "no PostgreSQL binaries (initdb, postgres) to start a server of the tests' own, and no server reachable "
        f"at 127.0.0.1:5432 ({'; '.join(problems)})"
    )


@contextmanager
def own_schema() -> Iterator[tuple[str, str, Any]]:
    """(DSN, a schema of this test's own, an autocommit connection); the schema is dropped afterwards."""
    import psycopg
    from psycopg import sql

    dsn = server_dsn()
    schema = f"jl_test_{uuid.uuid4().hex[:12]}"
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield dsn, schema, conn
    finally:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        conn.close()

"""Hostile jobs on a real worker, sandboxed: each reach for the store, the home or the worker fails.

The store has a password, listens on TCP and on a unix socket in the home, keeps its AOF in the home;
the home holds key files and another attempt's folder; the worker's environment holds the store's
password and a cloud secret. The job prints what each try got; the run's own secret still arrives.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from tests.support.jobs import definition, job_file, sql_definition
from tests.support.processes import Procs, pid_alive
from tests.support.runs import stdout_lines
from tests.support.sandbox import needs_bwrap
from tests.support.sandbox_store import (
    OTHER_RUN_SECRET,
    STORE_PASSWORD,
    WORKER_AWS_SECRET,
    GuardedHome,
    guarded_fixture,  # noqa: F401 - the `guarded` fixture
    guarded_fleet,
)

pytestmark = needs_bwrap

RUN_SECRET = "the-runs-own-token-3b9d"

HOSTILE = r"""
import hashlib, os, signal, socket, sys
from pathlib import Path

e = os.environ
worker = int(e["WORKER_PID"])


def attempt(name, action):
    try:
        print(f"{name}: GOT {action()!r}")
    except BaseException as exc:
        print(f"{name}: refused {type(exc).__name__}")


def tcp_ping():
    with socket.create_connection(("127.0.0.1", int(e["STORE_PORT"])), timeout=5) as s:
        s.sendall(b"PING\r\n")
        reply = s.recv(200).decode().strip()
    if reply.startswith("-NOAUTH"):
        raise PermissionError(reply)
    return reply


def unix_ping():
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(e["STORE_SOCKET"])
        s.sendall(b"PING\r\n")
        return s.recv(200)


def scan_processes():
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        for part in ("cmdline", "environ"):
            try:
                data = (proc / part).read_bytes()
            except OSError:
                continue
            if b"REDIS" in data or b"redis://" in data or b"AWS_SECRET" in data:
                found.append(f"{proc.name}/{part}")
    if not found:
        raise LookupError("nothing")
    return found


def write_through_the_api(url):
    from queue_core import Client
    from queue_core.settings import Settings

    client = Client(settings=Settings.from_env({"REDIS_URL": url, "JOBLEDGER_HOME": "/tmp/h"}))
    return client.define({"name": "planted", "config": {"type": "SHELL", "sourceLocation": "x.sh"}})


# What jobledger tells a job about itself: its run, attempt and date, and the file its values go to (in its home).
JOB_FACING = ("JOBLEDGER_RUN_ID", "JOBLEDGER_ATTEMPT", "JOBLEDGER_LOGICAL_DATE", "JOBLEDGER_VALUES_FILE")
leaked = sorted(
    k for k in e
    if k.startswith(("REDIS", "AWS_"))
    or (k.startswith("JOBLEDGER_") and k not in JOB_FACING)
)
print("env:", ",".join(leaked) or "clean")
attempt("tcp", tcp_ping)
attempt("unix", unix_ping)
attempt("aof", lambda: os.listdir(e["STORE_DIR"]))
attempt("keys", lambda: Path(e["KEYS_DIR"], "secret.key").read_bytes())
attempt("other run", lambda: Path(e["OTHER_RUN_FILE"]).read_text())
attempt("runs", lambda: [n for n in os.listdir(Path(e["STORE_HOME"], "runs")) if e["JOBLEDGER_RUN_ID"] not in n])
attempt("worker environ", lambda: Path(f"/proc/{worker}/environ").read_bytes())
attempt("worker signal", lambda: os.kill(worker, signal.SIGTERM))
attempt("processes", scan_processes)
attempt("worker home", lambda: os.listdir(e["WORKER_HOME"]))
attempt("api tcp", lambda: write_through_the_api(f"redis://127.0.0.1:{e['STORE_PORT']}/0"))
attempt("api unix", lambda: write_through_the_api(f"unix://{e['STORE_SOCKET']}"))
print("own secret:", hashlib.sha256(e["TOKEN"].encode()).hexdigest() == e["TOKEN_SHA"])
print("uid:", os.getuid())
"""


def _python_in_home() -> list[str]:
    home = Path.home()
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix)}
    return sorted({p.relative_to(home).parts[0] for p in prefixes if p.is_relative_to(home)})


def _hostile_env(guarded: GuardedHome, worker: int) -> dict[str, object]:
    return {
        "WORKER_PID": str(worker),
        "STORE_PORT": str(guarded.server.port),
        "STORE_SOCKET": str(guarded.socket),
        "STORE_DIR": str(guarded.server.directory),
        "KEYS_DIR": str(guarded.home / "keys"),
        "OTHER_RUN_FILE": str(guarded.other_run_file),
        "STORE_HOME": str(guarded.home),
        "WORKER_HOME": str(Path.home()),
        "TOKEN": {"secret": "token"},
        "TOKEN_SHA": hashlib.sha256(RUN_SECRET.encode()).hexdigest(),
    }


def test_a_hostile_job_reaches_neither_the_store_nor_the_home_nor_the_worker(
    guarded: GuardedHome, procs: Procs, workspace: Path
):
    worker = guarded_fleet(procs, guarded)
    client = guarded.client
    client.set_secret("token", RUN_SECRET)
    job_file(workspace, "hostile.py", HOSTILE)
    client.define(definition("hostile", "hostile.py", kind="PYTHON", env=_hostile_env(guarded, worker)))  # type: ignore[arg-type]
    run = client.wait(client.submit("hostile"), timeout=60)
    lines = stdout_lines(client, run["id"])
    everything = [line.line for line in client.logs(run["id"])]
    assert (run["status"], run["exit_code"]) == ("SUCCEEDED", 0), everything
    got = dict(line.split(": ", 1) for line in lines)
    assert got["env"] == "clean"
    for name in (
        "tcp", "unix", "aof", "keys", "other run", "worker environ", "worker signal", "processes",
        "api tcp", "api unix",
    ):  # fmt: skip
        assert got[name].startswith("refused"), (name, got[name])
    # The worker's home shows no more than the Python the job runs on, where that lives in it (pyenv).
    assert got["worker home"] == "refused FileNotFoundError" or got["worker home"] == f"GOT {_python_in_home()!r}"
    assert got["runs"] == "GOT []"  # the runs folder shows the job its own attempt's folder only
    assert got["tcp"] == "refused PermissionError"  # it reached the port, and the store asked for the password
    assert got["own secret"] == "True"
    assert got["uid"] != "0"
    assert pid_alive(worker)
    text = "\n".join(everything)
    for value in (STORE_PASSWORD, WORKER_AWS_SECRET, OTHER_RUN_SECRET, RUN_SECRET):
        assert value not in text
    assert [d["name"] for d in client.list_definitions()] == ["hostile"]
    assert "planted" not in str(list(client.events()))


def test_a_sql_job_cannot_read_the_home_nor_the_worker(guarded: GuardedHome, procs: Procs, workspace: Path):
    worker = guarded_fleet(procs, guarded)
    client = guarded.client
    reads = {
        "environ": f"SELECT content FROM read_text('/proc/{worker}/environ')",
        "keys": f"SELECT content FROM read_blob('{guarded.home / 'keys' / 'secret.key'}')",
        "other": f"SELECT * FROM read_csv('{guarded.other_run_file}')",
        "aof": f"SELECT * FROM glob('{guarded.server.directory}/*')",
    }
    for name, sql in reads.items():
        client.define(sql_definition(f"peek-{name}", steps=[("peek", sql)]))
        run = client.wait(client.submit(f"peek-{name}"), timeout=60)
        text = "\n".join(line.line for line in client.logs(run["id"]))
        assert run["status"] == "FAILED" or "0 rows" in text or '"rows":0' in text, (name, text)
        for value in (STORE_PASSWORD, WORKER_AWS_SECRET, OTHER_RUN_SECRET, "redis.sock", "appendonly"):
            assert value not in text, (name, text)


NETWORK_PROBE = r"""
import os, socket
try:
    socket.create_connection(("127.0.0.1", int(os.environ["STORE_PORT"])), timeout=5).close()
    print("net: connected")
except OSError as exc:
    print("net: refused", type(exc).__name__)
"""


def test_a_job_with_network_none_has_no_network(guarded: GuardedHome, procs: Procs, workspace: Path):
    guarded_fleet(procs, guarded)
    client = guarded.client
    job_file(workspace, "net.py", NETWORK_PROBE)
    env = {"STORE_PORT": str(guarded.server.port)}
    for name, network in (("with-net", None), ("no-net", "none")):
        raw = definition(name, "net.py", kind="PYTHON", env=env)
        if network:
            raw["config"]["network"] = network
        client.define(raw)
    assert client.get_definition("no-net")["versions"][-1]["spec"]["config"]["network"] == "none"
    outcomes = {name: client.wait(client.submit(name), timeout=60) for name in ("with-net", "no-net")}
    assert stdout_lines(client, outcomes["with-net"]["id"]) == ["net: connected"]
    assert stdout_lines(client, outcomes["no-net"]["id"])[0].startswith("net: refused")


def test_a_depot_on_the_home_shows_a_sql_job_nothing_of_it(guarded: GuardedHome, procs: Procs, workspace: Path):
    guarded_fleet(procs, guarded)
    client = guarded.client
    for folder in (guarded.home / "keys", guarded.home / "runs" / "otherrun"):
        folder.mkdir(exist_ok=True)
        (folder / "leak.csv").write_text(f"value\n{OTHER_RUN_SECRET}\n")
    client.add_depot("home", "local", path=str(guarded.home))
    client.add_depot("runs", "local", path=str(guarded.home / "runs"))
    for depot, dataset in (("home", "keys/leak"), ("runs", "otherrun/leak")):
        inputs = [{"name": "peek", "dataset": f"dataos://{depot}:{dataset}", "format": "csv"}]
        client.define(sql_definition(f"peek-{depot}", [("out", "SELECT * FROM peek")], inputs))
        run = client.wait(client.submit(f"peek-{depot}"), timeout=60)
        text = "\n".join(line.line for line in client.logs(run["id"]))
        assert run["status"] == "FAILED", text
        assert OTHER_RUN_SECRET not in text and STORE_PASSWORD not in text

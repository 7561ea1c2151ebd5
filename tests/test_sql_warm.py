"""The warm SQL runner: attempts forked from a zygote beside the worker, supervised like any child."""

from __future__ import annotations

import os
import signal
from typing import Any

from queue_core import Client
from tests.support.jobs import sql_definition
from tests.support.paths import REPO
from tests.support.processes import Procs, eventually, pid_alive

ZYGOTE = str(REPO / "workers" / "sql" / "zygote.py")
FOREVER = "SELECT sum(hash(range)) AS h FROM range(100000000000)"


def job(name: str, sql: str, timeout: float = 1, explain: bool = False) -> dict[str, Any]:
    return sql_definition(name, [("s", sql)], timeout=timeout, explain=explain)


def stat(pid: int) -> tuple[int, int]:
    """(parent pid, process group) of a live process."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[2])


def zygote_processes(worker: int) -> list[int]:
    """The warm runner beside ``worker`` and the attempts it forked, by command line and parent.

    Scoped to one worker: a runner of an earlier test, killed with its worker, may still be dying.
    """
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as file:
                    if ZYGOTE.encode() in file.read() and pid_alive(int(entry)):
                        parents[int(entry)] = stat(int(entry))[0]
            except OSError:
                continue
    runners = {pid for pid, parent in parents.items() if parent == worker}
    return sorted(pid for pid, parent in parents.items() if pid in runners or parent in runners)


def test_a_sql_attempt_is_forked_from_the_warm_runner_and_cancel_kills_it_but_not_the_runner(
    client: Client, procs: Procs, redis_url: str
):
    (worker,) = procs.fleet(redis_url).workers
    client.define(job("quick", "SELECT 42 AS answer"))
    assert client.wait(client.submit("quick"), timeout=60)["result"]["query"]["preview"] == [[42]]
    (zygote,) = zygote_processes(worker.pid)  # beside the worker, dying with it
    client.define(job("forever", FOREVER))
    run_id = client.submit("forever")
    eventually(lambda: len(zygote_processes(worker.pid)) == 2, what="the forked attempt")
    child = next(p for p in zygote_processes(worker.pid) if p != zygote)
    assert stat(child) == (zygote, child)  # its own process group, under the zygote
    client.cancel(run_id)
    eventually(lambda: not pid_alive(child), timeout=5, what="the cancelled attempt to die")
    assert client.wait(run_id, timeout=10)["status"] == "CANCELLED"
    assert client.wait(client.submit("quick"), timeout=60)["status"] == "SUCCEEDED"
    assert zygote_processes(worker.pid) == [zygote]  # the same warm runner served the next attempt


def test_a_sql_attempt_past_its_timeout_is_killed(client: Client, procs: Procs, redis_url: str):
    (worker,) = procs.fleet(redis_url).workers
    client.define(job("slow", FOREVER, timeout=0.02))
    run = client.wait(client.submit("slow"), timeout=60)
    assert (run["status"], run["reason"]) == ("FAILED", "Timeout")
    assert "timeout after 1.2s" in client.run_detail(run["id"])["message"]
    eventually(lambda: len(zygote_processes(worker.pid)) == 1, what="only the warm runner to be left")


def test_kill_9_of_the_worker_takes_the_warm_runner_and_its_attempt_with_it(
    client: Client, procs: Procs, redis_url: str
):
    (worker,) = procs.fleet(redis_url).workers
    client.define(job("forever", FOREVER))
    run_id = client.submit("forever")
    doomed = eventually(
        lambda: len(zygote_processes(worker.pid)) == 2 and zygote_processes(worker.pid), what="the forked attempt"
    )
    os.kill(worker.pid, signal.SIGKILL)  # the worker alone: its children must not outlive it
    worker.wait()
    eventually(lambda: not any(pid_alive(p) for p in doomed), timeout=10, what="the runner and attempt to die")
    procs.worker(redis_url)
    assert client.wait(run_id, timeout=60)["reason"] == "WorkerLost"


def test_kill_9_of_the_warm_runner_fails_its_attempt_killed_and_the_next_attempt_starts_a_new_one(
    client: Client, procs: Procs, redis_url: str
):
    (worker,) = procs.fleet(redis_url).workers
    client.define(job("forever", FOREVER, explain=True))
    run_id = client.submit("forever")
    # The step's plan in the run log: the worker has the forked child's pid and supervises it. (Killed
    # before it had the pid, the worker would ask a new runner, and the attempt would go on there.)
    eventually(lambda: any("plan of step" in line.line for line in client.logs(run_id)), what="the attempt's plan")
    eventually(lambda: len(zygote_processes(worker.pid)) == 2, what="the forked attempt")
    zygote = next(p for p in zygote_processes(worker.pid) if stat(p)[0] == worker.pid)
    os.kill(zygote, signal.SIGKILL)
    run = client.wait(run_id, timeout=30)
    assert (run["status"], run["reason"]) == ("FAILED", "NonZeroExitCode")
    assert "killed by signal 9" in client.run_detail(run_id)["message"]
    client.define(job("quick", "SELECT 1 AS one"))
    assert client.wait(client.submit("quick"), timeout=60)["status"] == "SUCCEEDED"
    (fresh,) = zygote_processes(worker.pid)
    assert fresh != zygote

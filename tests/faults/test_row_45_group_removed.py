"""Row 45: the dispatchers' consumer group removed under a running dispatcher (a store restarted and refilled).

The dispatcher used to recreate its group only after seeing the store empty: with the group gone and the
log still there, every pass failed on the missing group before reading anything, with no pause, and runs
moved only through the reconciler. Now it recreates the group from the checkpoint it last saw (so nothing
after it is skipped) and pauses between tries while an error persists.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import redis

from queue_core import Client
from queue_core.keys import Keys
from tests.support.faults import assert_log_holds
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually

TICKS_WATCHED = 6  # the dispatcher's reads (each blocks up to half a second while idle) over which CPU is measured


def _queued(client: Client, run_id: str) -> bool:
    return any(rec.type == "RunQueued" for rec in client.store.load(run_id))


def _errors(connection: redis.Redis, kind: str) -> int:
    stats = connection.info("errorstats")
    return int(stats.get(f"errorstat_{kind}", {}).get("count", 0))


def _reads(connection: redis.Redis) -> int:
    return int(connection.info("commandstats").get("cmdstat_xreadgroup", {}).get("calls", 0))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _log(procs: Procs) -> str:
    return "".join(p.read_text() for p in procs.log_dir.glob("dispatcher-*.log"))


def test_a_removed_group_is_recreated_from_the_checkpoint_with_no_entry_skipped_and_no_busy_loop(
    client: Client, workspace: Path, procs: Procs, connection: redis.Redis
):
    client.define(definition("quick", job_file(workspace, "quick.sh", "true\n")))
    # Runs move through the group here, never through the reconciler's late dispatch of a forgotten run.
    procs.env["JOBLEDGER_RECONCILE_AFTER_SECONDS"] = "3600"
    dispatcher = procs.dispatcher()
    before = client.submit("quick")
    eventually(lambda: _queued(client, before), what="the dispatcher to queue the first run")
    handled = client.store.last_position()
    eventually(lambda: _checkpoint_seen(connection, handled), what="the group to acknowledge every entry")
    reads = _reads(connection)
    eventually(lambda: _reads(connection) >= reads + 2, what="a pass after it (the dispatcher notes its checkpoint)")

    os.kill(dispatcher.pid, signal.SIGSTOP)  # removed between two of its passes, then entries land meanwhile
    connection.xgroup_destroy(Keys().log, Keys().dispatch_group)
    pending = [client.submit("quick") for _ in range(3)]
    os.kill(dispatcher.pid, signal.SIGCONT)

    for run_id in pending:  # entries appended while the group was gone are not skipped
        eventually(lambda run_id=run_id: _queued(client, run_id), what=f"run {run_id} to be queued")
    recreated = eventually(lambda: [line for line in _log(procs).splitlines() if "recreating" in line])
    assert f'"after": "{handled}"' in recreated[0]  # from the checkpoint, not from the start of the log

    reads, cpu = _reads(connection), _cpu_seconds(dispatcher.pid)
    errors = _errors(connection, "NOGROUP")
    eventually(lambda: _reads(connection) >= reads + TICKS_WATCHED, what="the dispatcher's next passes")
    assert _errors(connection, "NOGROUP") == errors  # healed: no pass fails on the group any more
    # Idle between passes: a quarter of the time the passes took at most (the spinning loop took most of a core).
    assert _cpu_seconds(dispatcher.pid) - cpu < 0.25 * TICKS_WATCHED * 0.5
    assert errors <= 3, f"{errors} reads failed on the missing group"
    assert dispatcher.poll() is None
    assert_log_holds(client, [before, *pending], ended=False)


def _checkpoint_seen(connection: redis.Redis, position: str) -> bool:
    """The group has delivered and acknowledged everything up to ``position`` (the dispatcher's next pass
    reads its checkpoint from there)."""
    group = next(g for g in connection.xinfo_groups(Keys().log) if g["name"] == Keys().dispatch_group.encode())
    return group["last-delivered-id"].decode() == position and group["pending"] == 0

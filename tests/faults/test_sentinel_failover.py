"""Redis Sentinel: the primary is killed (``kill -9``) under a workload, Sentinel promotes the replica, and every
process (a client submitting in a loop, a scheduler, plain ``rq worker`` processes) carries on against the new
primary by itself. With ``JOBLEDGER_DURABILITY=replicated`` an acknowledged command was on the replica before
its reply, so the promotion loses none: the oracle finds every acknowledged run on the log, nothing twice, every
run ended once. Then Sentinel with ACL credentials: the data nodes' user and the sentinels' own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from queue_core import Client, Settings
from queue_core.cli.fleet import fleet_command
from tests.support.faults import assert_log_holds, marker_job, marks
from tests.support.jobs import definition
from tests.support.paths import REPO
from tests.support.processes import Procs, eventually, jobledger_up
from tests.support.redis_server import server_version
from tests.support.sentinel import MASTER, USER, SentinelDeployment

pytestmark = pytest.mark.skipif(server_version() < (6, 2), reason="Sentinel ACL users need redis-server 6.2+")

SUBMIT_LOOP = "tests.support.submit_loop"


def sentinel_env(deployment: SentinelDeployment, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of every process: the sentinels instead of ``REDIS_URL``, appends replicated."""
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    return {
        **env,
        "JOBLEDGER_SENTINELS": deployment.addresses,
        "JOBLEDGER_SENTINEL_MASTER": MASTER,
        "JOBLEDGER_DURABILITY": "replicated",
        "JOBLEDGER_HOME": str(tmp_path / "home"),
        "JOBLEDGER_WORKSPACE": str(tmp_path / "workspace"),
        "JOBLEDGER_LEASE_SECONDS": "5",
        "JOBLEDGER_LEASE_RENEW_SECONDS": "0.5",
        "JOBLEDGER_RECONCILE_AFTER_SECONDS": "3",
        "JOBLEDGER_SANDBOX": "off",
        "PYTHONPATH": str(REPO),
        **extra,
    }


def start_workers(procs: Procs, count: int) -> list[subprocess.Popen[bytes]]:
    """The fleet's plain ``rq worker -c workers.rq_settings`` line, which reads the sentinels from the environment."""
    return [
        procs.spawn([sys.executable, "-m", "rq.cli", *fleet_command(None, "default")[1:]], "worker")
        for _ in range(count)
    ]


def supervise(procs: Procs, workers: list[subprocess.Popen[bytes]]) -> int:
    """Start again each worker that exited, as the supervisor the Sentinel page asks for does: an RQ command of the
    worker's own refused during the failover (``NOREPLICAS``) may end it. Returns how many were started again."""
    dead = [w for w in workers if w.poll() is not None]
    for worker in dead:
        workers[workers.index(worker)] = start_workers(procs, 1)[0]
    return len(dead)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[SentinelDeployment]:
    # As the deployment docs set it: the primary refuses writes while no replica is in sync.
    guarded = ("--min-replicas-to-write", "1", "--min-replicas-max-lag", "10")
    started = SentinelDeployment(tmp_path / "sentinel", None, *guarded)
    try:
        started.start()
        yield started
    finally:
        started.stop()


def outcomes(out: Path) -> tuple[dict[int, str], int]:
    """The submit loop's acknowledged runs by number, and how many submissions it has finished."""
    acknowledged, done = {}, 0
    for line in out.read_text().splitlines() if out.exists() else []:
        word, number, *rest = line.split(" ", 2)
        if word == "ok":
            acknowledged[int(number)] = rest[0]
        done += word in ("ok", "refused")
    return acknowledged, done


def test_a_kill_9_of_the_primary_under_load_loses_no_acknowledged_command_and_the_workload_goes_on(
    deployment: SentinelDeployment, tmp_path: Path
):
    env = sentinel_env(deployment, tmp_path)
    settings = Settings.from_env(env)
    (tmp_path / "workspace").mkdir()
    markers = tmp_path / "markers"
    client = Client(settings=settings)
    client.define(definition("work", marker_job(tmp_path / "workspace", markers, "sleep 0.2"), timeout=30))
    procs = Procs(env, tmp_path / "logs")
    try:
        procs.dispatcher(timer=True)
        workers = start_workers(procs, 2)
        out, stop = tmp_path / "submits", tmp_path / "stop"
        procs.spawn([sys.executable, "-m", SUBMIT_LOOP, str(out), str(stop), "work"], "submit-loop")
        eventually(lambda: len(outcomes(out)[0]) >= 10, what="ten acknowledged submissions")
        eventually(lambda: len(marks(markers)) >= 2, what="runs executing on the workers")
        tick = (datetime.now(UTC) + timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        client.create_schedule("during-the-failover", definition="work", at=tick)

        deployment.primary.kill()
        old_port = deployment.primary.port
        eventually(lambda: deployment.primary_port() == deployment.replica.port, what="the replica promoted")
        acknowledged_at_promotion = len(outcomes(out)[0])
        # The old primary comes back (as its supervisor would start it) and Sentinel makes it the new replica:
        # until then a replicated append waits, as it should, for a replica to have it.
        deployment.primary.start(*deployment.options)
        new_primary = deployment.replica
        eventually(lambda: _replicas_online(new_primary.client()) >= 1, timeout=30, what="the old primary a replica")
        more = acknowledged_at_promotion + 10
        eventually(lambda: len(outcomes(out)[0]) >= more, what="ten more acknowledged submissions after the failover")
        fired = eventually(lambda: client.events(type="ScheduleFired"), what="the schedule firing")
        stop.touch()
        eventually(lambda: procs.procs[-1].poll() is not None, what="the submit loop to stop")

        acknowledged, done = outcomes(out)
        print(f"submissions: {done}, acknowledged {len(acknowledged)} ({acknowledged_at_promotion} at the promotion)")
        runs = [*acknowledged.values(), *(event.event.run for event in fired if event.event.run)]
        print(f"workers started again after the failover: {supervise(procs, workers)}")
        for run in runs:
            client.wait(run, timeout=60)
        assert deployment.primary_port() != old_port
        assert_log_holds(client, runs, markers, ended=True)
        checked = procs.cli("check", "--ended")
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        procs.kill_all()


def _replicas_online(connection: redis.Redis) -> int:
    try:
        info = connection.info("replication")
    except redis.RedisError:
        return 0
    return sum(1 for key, value in info.items() if key.startswith("slave") and value.get("state") == "online")


def test_sentinel_with_acl_credentials_for_the_data_nodes_and_the_sentinels(tmp_path: Path):
    password = "s3ntinel-and-data"
    deployment = SentinelDeployment(tmp_path / "sentinel", password=password)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "redis").write_text(password + "\n")
    (secrets / "sentinel").write_text(password + "\n")
    env = sentinel_env(
        deployment, tmp_path,
        REDIS_USERNAME=USER, REDIS_PASSWORD_FILE=str(secrets / "redis"),
        JOBLEDGER_SENTINEL_USERNAME=USER, JOBLEDGER_SENTINEL_PASSWORD_FILE=str(secrets / "sentinel"),
        JOBLEDGER_REQUIRE_AUTH="1",
    )  # fmt: skip
    (tmp_path / "workspace").mkdir()
    up_output = tmp_path / "up.out"
    try:
        deployment.start()
        client = Client(settings=Settings.from_env(env))
        client.define(definition("work", marker_job(tmp_path / "workspace", tmp_path / "markers")))
        # `jobledger up` through the sentinels: no embedded store, its scheduler and worker given the sentinels.
        with jobledger_up(env, grace=1, out=up_output):
            run = client.submit("work")
            assert client.wait(run, timeout=30)["status"] == "SUCCEEDED"
        printed = up_output.read_text()
        assert f"redis: redis+sentinel://{deployment.addresses}/{MASTER}" in printed
        assert "with JOBLEDGER_SENTINELS and JOBLEDGER_SENTINEL_MASTER set: rq worker -c workers.rq_settings" in printed
        # Without the sentinels' password, no process learns where the primary is.
        without = {key: value for key, value in env.items() if key != "JOBLEDGER_SENTINEL_PASSWORD_FILE"}
        refused = Procs(without, tmp_path / "logs").cli("check")
        assert refused.returncode == 4, refused.stdout + refused.stderr
        assert refused.stderr.strip() == (
            f"jobledger: store unavailable: no master found for '{MASTER}' (the last sentinel asked: "
            "auth:AuthenticationError: invalid username-password pair or user is disabled.)"
        )
        assert password not in refused.stdout + refused.stderr + printed
        for log in (tmp_path / "home" / "logs").iterdir():
            assert password not in log.read_text()
    finally:
        deployment.stop()

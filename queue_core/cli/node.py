"""``jobledger up``: the embedded store, a scheduler (dispatcher and timer) and workers, supervised until Ctrl-C."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from urllib.parse import urlsplit

from queue_core.cli.fleet import Fleet, fleet_command
from queue_core.client import Client
from queue_core.domain.clusters import DEFAULT_CLUSTER
from queue_core.errors import InvalidInput
from queue_core.eventlog.connection import display_url
from queue_core.eventlog.embedded import EmbeddedRedis
from queue_core.settings import Settings

__all__ = ["node", "preflight", "run_node"]

SUPERVISE_SECONDS = 1.0


@contextmanager
def node(settings: Settings, default_workers: int, grace: float) -> Iterator[tuple[Client, Fleet]]:
    """Start what a node needs (the embedded store unless REDIS_URL, a dispatcher, workers); stop it after."""
    embedded = None if settings.external_store else EmbeddedRedis(settings.home)
    started_store = embedded.ensure_running() if embedded else False
    client = Client(settings=settings)
    env = {**os.environ, "JOBLEDGER_WORKSPACE": str(settings.workspace)}
    if not settings.sentinels:  # through Sentinel, every process asks the sentinels: no fixed primary's address
        env["REDIS_URL"] = client.url
    try:
        preflight(env)
    except InvalidInput:
        if started_store and embedded is not None:
            embedded.stop()
        raise
    # Workers read REDIS_URL from their environment (workers.rq_settings): a password stays off argv.
    fleet = Fleet(None, settings.home / "logs", env)
    try:
        fleet.start_dispatcher(timer=True)  # the dispatcher and the schedule timer
        fleet.ensure_workers(DEFAULT_CLUSTER, default_workers)
        yield client, fleet
    finally:
        fleet.stop(grace)
        if started_store and embedded is not None:
            embedded.stop()


def preflight(env: dict[str, str]) -> None:
    """Say what this node's workers will say at start (jobs unsandboxed, a store jobs could reach), loudly, first.

    The check is the worker's own (``workers.preflight``), run as a process: the core does not import the
    compute side. Where the workers would refuse to start, so does the node (``InvalidInput``, exit code 2).
    """
    done = subprocess.run([sys.executable, "-m", "workers.preflight"], env=env, capture_output=True, text=True)
    lines = [line.removeprefix("jobledger: ") for line in done.stderr.splitlines() if line.strip()]
    if done.returncode == InvalidInput.exit_code and lines:
        raise InvalidInput(lines[-1])
    for line in lines:
        print(f"jobledger: {line}", file=sys.stderr, flush=True)


def sync_clusters(client: Client, fleet: Fleet, default_workers: int) -> list[str]:
    """Start workers for clusters registered since the last look; returns their names."""
    started = []
    for cluster in client.list_clusters():
        wanted = default_workers if cluster["name"] == DEFAULT_CLUSTER else cluster["workers"]
        if fleet.ensure_workers(cluster["name"], wanted):
            started.append(cluster["name"])
    return started


def run_node(settings: Settings, default_workers: int, grace: float) -> int:
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    with node(settings, default_workers, grace) as (client, fleet):
        print(f"redis: {display_url(client.url)}")
        print(f"logs:  {settings.home / 'logs'}")
        print("join a machine to a cluster's fleet with:")
        if settings.sentinels:  # workers ask the sentinels for the primary (workers.rq_settings)
            where = "JOBLEDGER_SENTINELS and JOBLEDGER_SENTINEL_MASTER"
            print(f"  with {where} set: {shlex.join(fleet_command(None, 'CLUSTER'))}")
        elif urlsplit(client.url).password is None and not settings.redis_password_file:
            print(f"  {shlex.join(fleet_command(client.url, 'CLUSTER'))}")
        else:  # a password never goes on a command line
            print(f"  with REDIS_URL and REDIS_PASSWORD_FILE set: {shlex.join(fleet_command(None, 'CLUSTER'))}")
        for name in sync_clusters(client, fleet, default_workers):
            print(f"cluster {name}: {fleet.workers_of(name)} workers")
        print("running; Ctrl-C stops", flush=True)
        while not stopping:
            time.sleep(SUPERVISE_SECONDS)
            if stopping:
                break
            for name in sync_clusters(client, fleet, default_workers):
                print(f"cluster {name}: {fleet.workers_of(name)} workers", flush=True)
            for role in fleet.restart_dead():
                print(f"restarted {role}", flush=True)
        print(f"stopping (running attempts get {grace:g} s)...", flush=True)
    print("stopped")
    return 0

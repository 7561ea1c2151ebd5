"""CLI verbs that run processes: a worker, a dispatcher, up, the demo, the embedded store."""

from __future__ import annotations

import argparse
import os
import sys

from queue_core.client import Client
from queue_core.errors import InvalidInput
from queue_core.eventlog.connection import display_url
from queue_core.settings import Settings


def worker(args: argparse.Namespace) -> int:
    from queue_core.cli.fleet import fleet_command

    client = Client.from_env()
    clusters = args.clusters or ["default"]
    for name in clusters:
        client.get_cluster(name)
    # The store reaches RQ through workers.rq_settings (REDIS_URL, REDIS_PASSWORD_FILE), never argv.
    commands = [[sys.executable, "-m", "rq.cli", *fleet_command(None, c, args.burst)[1:]] for c in clusters]
    if len(commands) == 1:
        os.execv(commands[0][0], commands[0])
    import subprocess

    # One process per cluster: each rq worker listens on one queue (RQ's safe BLMOVE path).
    procs = [subprocess.Popen(c) for c in commands]
    try:
        return max(p.wait() for p in procs)
    except KeyboardInterrupt:
        return max(p.wait() for p in procs)


def dispatcher(args: argparse.Namespace) -> int:
    os.execv(sys.executable, [sys.executable, "-m", "scheduler"])
    return 0  # pragma: no cover


def up(args: argparse.Namespace) -> int:
    from queue_core.cli.node import run_node

    if os.environ.get("JOBLEDGER_SPARK_MASTER"):  # this node's workers are to run Spark pipelines
        from queue_core.services.spark import require_spark

        require_spark("this node (JOBLEDGER_SPARK_MASTER is set)")
    return run_node(Settings.from_env(), args.workers, args.grace)


def demo(args: argparse.Namespace) -> int:
    from queue_core.cli.demo import run_demo

    return run_demo(Settings.from_env())


def store(args: argparse.Namespace) -> int:
    from queue_core.eventlog.embedded import EmbeddedRedis

    settings = Settings.from_env()
    if args.action == "url":
        print(display_url(Client.from_env().url))
        return 0
    if args.action == "forget":
        from queue_core.eventlog.connection import connect
        from queue_core.eventlog.health import forget_epoch

        forget_epoch(settings, connect(settings))
        print("this machine no longer holds the store's epoch; the next command accepts the store as it finds it")
        return 0
    if settings.external_store:
        message = "REDIS_URL or JOBLEDGER_SENTINELS is set: jobledger does not stop a server it does not own"
        raise InvalidInput(message, "store stop")
    EmbeddedRedis(settings.home).stop()
    print("embedded store stopped")
    return 0

"""``python -m scheduler``: run one dispatcher (with ``--timer``, and a schedule timer) until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType

import redis
import structlog

from queue_core.errors import JobledgerError, StopRequested
from queue_core.eventlog.seals import load_signer
from queue_core.logging import configure_logging
from queue_core.settings import Settings
from scheduler.dispatcher import Dispatcher
from scheduler.notifier import Notifier

log = structlog.get_logger("jobledger.scheduler")
RESTART_SECONDS = 1.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scheduler")
    parser.add_argument("--timer", action="store_true", help="also fire schedules (what `jobledger scheduler` runs)")
    options = parser.parse_args(argv)
    configure_logging(stdlib=True)
    try:
        settings = Settings.from_env()
        if options.timer:  # the scheduler holds the ledger key: made on its first start, its dispatcher seals
            load_signer(settings, create=True)
        dispatcher = Dispatcher(settings)
        if not options.timer:
            dispatcher.install_signal_handlers()
            dispatcher.run()
            return 0
        from queue_core.client import Client
        from scheduler.follow_ups import FollowUps
        from scheduler.timer import Timer

        timer = Timer(Client(settings=settings))
        follow_ups = FollowUps(Client(settings=settings), file_poll_seconds=settings.trigger_file_poll_seconds)
        notifier = _notifier(settings, dispatcher.name)
        stopping = threading.Event()
        timer.read_models.stop_requested = stopping.is_set  # a wait for another process's rebuild ends too
        follow_ups.client.read_models.stop_requested = stopping.is_set
        notifier.read_models.stop_requested = stopping.is_set

        def stop(signum: int, frame: FrameType | None) -> None:
            stopping.set()
            dispatcher.stop()
            timer.stop()
            follow_ups.stop()
            notifier.stop()

        def run_timer() -> None:
            _keep_running("timer", timer.run, stopping)

        def run_follow_ups() -> None:
            _keep_running("follow-ups", follow_ups.run, stopping)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        # The notifier's group before the timer's first pass: a tick that pass records missed is announced.
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):  # else its own thread makes it
            notifier.ensure_group()
        thread = threading.Thread(target=run_timer, name="timer", daemon=True)
        thread.start()
        following = threading.Thread(target=run_follow_ups, name="follow-ups", daemon=True)
        following.start()

        # Its own thread and connection: a slow webhook or mail server never holds the dispatcher up.
        def run_notifier() -> None:
            _keep_running("notifier", notifier.run, stopping)

        notifying = threading.Thread(target=run_notifier, name="notifier", daemon=True)
        notifying.start()
        try:
            dispatcher.run()
        finally:
            timer.stop()
            follow_ups.stop()
            notifier.stop()
            thread.join()
            following.join()
            notifying.join(timeout=settings.notify_timeout_seconds + 5)
    except JobledgerError as exc:
        print(f"jobledger dispatcher: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def _keep_running(name: str, run: Callable[[], None], stopping: threading.Event) -> None:
    """``run`` until told to stop; started again a second after anything it raises (logged), so a bug met by
    one thread leaves the process's other work, and its own next pass, going."""
    while not stopping.is_set():
        try:
            run()
            return
        except StopRequested:
            return
        except Exception as exc:
            log.error("thread stopped by an error; starting it again", thread=name, error=f"{exc!r}"[:300])
            stopping.wait(RESTART_SECONDS)


def _notifier(settings: Settings, name: str) -> Notifier:
    from queue_core.eventlog.connection import connect
    from queue_core.eventlog.store import EventStore
    from queue_core.readmodels.materialized import ReadModels

    store = EventStore(connect(settings), replicas=settings.replicas_to_wait, replica_wait_ms=settings.replica_wait_ms)
    return Notifier(settings, store, ReadModels(store), name)


if __name__ == "__main__":
    sys.exit(main())

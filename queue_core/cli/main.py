"""``jobledger``: the parser, and the one place errors become a one-line message and an exit code."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, TypeVar

import redis

from queue_core.cli import definitions, inputs, processes, runs
from queue_core.cli.acl import add_acl_command
from queue_core.cli.argtypes import non_negative_int, positive_int, status
from queue_core.cli.audit import add_audit_commands
from queue_core.cli.backfills import add_backfill_commands
from queue_core.cli.library import add_library_commands
from queue_core.cli.maintenance import add_maintenance_command
from queue_core.cli.messages import one_line, printable
from queue_core.cli.notifications import add_notification_commands
from queue_core.cli.ops import add_ops_commands
from queue_core.cli.pools import add_pool_commands
from queue_core.cli.schedule import add_schedule_commands
from queue_core.cli.workflow import add_workflow_commands
from queue_core.errors import JobledgerError
from queue_core.specs.depots import DEPOT_TYPES

__all__ = ["main"]

EXIT_BAD_INPUT = 2
EXIT_STORE_UNAVAILABLE = 4
_Action = TypeVar("_Action", bound=argparse.Action)


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error instead of the usage block, recording each command's options.

    ``cli_options`` (destination -> flag) lands in the parsed arguments of the command that ran, so an
    error naming one of its fields can name the flag instead (``messages.one_line``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.cli_options: dict[str, str] = {}
        super().__init__(*args, **kwargs)
        self.set_defaults(cli_options=self.cli_options)

    def _add_action(self, action: _Action) -> _Action:
        if action.option_strings:
            self.cli_options[action.dest] = max(action.option_strings, key=len)
        return super()._add_action(action)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jobledger", description="Batch jobs on an event-sourced queue over Redis.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("define", help="create a definition, or a new version of it, from a JSON or YAML file")
    p.add_argument("file", help="a definition, or a DataOS workflow file (one SQL definition per dag entry)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=definitions.define)

    p = sub.add_parser("definitions", help="list, show or delete definitions")
    dsub = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    q = dsub.add_parser("list", help="live definitions, by name")
    q.add_argument("--all", action="store_true", help="include deleted definitions")
    q.add_argument("--tag", metavar="TAG", help="only definitions with this tag")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=definitions.definitions_list)
    q = dsub.add_parser("show", help="a definition with every version (a deleted one stays readable by UUID)")
    q.add_argument("definition", metavar="NAME-or-UUID")
    q.add_argument("--version", type=int, help="only this version")
    q.add_argument("--as-of", metavar="TIME|POSITION", help="as it was at that point of the log")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=definitions.definitions_show)
    q = dsub.add_parser("diff", help="what changed between two versions")
    q.add_argument("definition", metavar="NAME-or-UUID")
    q.add_argument("old", type=positive_int, metavar="V1")
    q.add_argument("new", type=positive_int, metavar="V2")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=definitions.definitions_diff)
    q = dsub.add_parser("delete", help="delete a definition; its name can then be reused")
    q.add_argument("definition", metavar="NAME-or-UUID")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=definitions.definitions_delete)

    p = sub.add_parser("cluster", help="register and list clusters (one RQ queue each)")
    csub = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    q = csub.add_parser("create", help="register a cluster: an RQ queue of that name")
    q.add_argument("name")
    q.add_argument(
        "--workers", type=non_negative_int, default=1, help="workers jobledger up starts for it (0: it runs elsewhere)"
    )
    q.add_argument("--instance-type", default="local")
    q.add_argument(
        "--engine", default="duckdb", help="the SQL engine its pipelines run on when they name none: duckdb or spark"
    )
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=definitions.cluster_create)
    q = csub.add_parser("list", help="clusters, default first")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=definitions.cluster_list)

    p = sub.add_parser("secret", help="set, list or delete secrets, or rotate their key (values never enter the log)")
    ssub = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    q = ssub.add_parser("set", help="the value is read from stdin, or prompted for; never an argument")
    q.add_argument("name")
    q.set_defaults(handler=inputs.secret_set)
    q = ssub.add_parser("list", help="secret names (never values)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=inputs.secret_list)
    q = ssub.add_parser("delete")
    q.add_argument("name")
    q.set_defaults(handler=inputs.secret_delete)
    q = ssub.add_parser("rotate-key", help="re-encrypt every value under a new key (run again if interrupted)")
    q.set_defaults(handler=inputs.secret_rotate_key)

    p = sub.add_parser("resource", help="add, list or show versioned resources (scripts and archives)")
    rsub = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    q = rsub.add_parser("add", help="register FILE (.sh .py .sql .zip .tar .tar.gz) as the next version")
    q.add_argument("name")
    q.add_argument("file")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=inputs.resource_add)
    q = rsub.add_parser("list")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=inputs.resource_list)
    q = rsub.add_parser("show")
    q.add_argument("name")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=inputs.resource_show)

    p = sub.add_parser("depot", help="add, list or show depots (where datasets live)")
    dpsub = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    q = dpsub.add_parser(
        "add", help="--type local --path DIR | duckdb --path FILE | s3 --bucket B [...] | postgres --dsn DSN [...]"
    )
    q.add_argument("name")
    q.add_argument("--type", required=True, choices=DEPOT_TYPES)
    q.add_argument("--path")
    q.add_argument("--bucket")
    q.add_argument("--prefix")
    q.add_argument("--region")
    q.add_argument("--endpoint-url")
    q.add_argument("--dsn", help="postgres: a libpq DSN or postgresql:// URI, without a password")
    q.add_argument("--password-secret", help="postgres: the secret holding the password (jobledger secret set)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=inputs.depot_add)
    q = dpsub.add_parser("list")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=inputs.depot_list)
    q = dpsub.add_parser("show")
    q.add_argument("name")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=inputs.depot_show)

    p = sub.add_parser("sql", help="run one SQL query as a batch job, without a definition")
    p.add_argument("query")
    p.add_argument("--input", action="append", default=[], metavar="NAME=ADDRESS[:FORMAT]")
    p.add_argument("--output", metavar="ADDRESS[:FORMAT]")
    p.add_argument("--save-mode", default="errorIfExists", metavar="M")
    p.add_argument("--cluster", default="default")
    p.add_argument("--wait", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=inputs.sql)

    p = sub.add_parser("lineage", help="which SQL runs wrote a dataset, and from which inputs")
    p.add_argument("dataset", metavar="ADDRESS", help="dataos://DEPOT:COLLECTION/DATASET")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=inputs.lineage)

    p = sub.add_parser("submit", help="submit a run of a definition")
    p.add_argument("definition", metavar="NAME-or-UUID")
    p.add_argument("--cluster", help="default: the definition's cluster")
    p.add_argument("--args", help="the job's arguments instead of the definition's")
    p.add_argument("--env", action="append", default=[], metavar="K=V", help="an env var on top of the definition's")
    p.add_argument("--timeout", type=float, metavar="MINUTES", help="per attempt, instead of the definition's")
    p.add_argument(
        "--version", type=positive_int, metavar="N", help="run this version of the definition (default: latest)"
    )
    p.add_argument("--ref", metavar="REF", help="a GIT source's branch, tag or commit, for this run only")
    p.add_argument("--priority", type=int, metavar="0-9", help="instead of the definition's: 9 starts first")
    p.add_argument("--idempotency-key", help="the same key gives the same run; with other parameters it is refused")
    p.add_argument("--logical-date", metavar="DATE|TIME", help="the date the run stands for (matched by references)")
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help="a tag on top of the definition's")
    p.add_argument(
        "--array", type=int, metavar="N", help="an array job: N children (2 to 10,000), each told JOBLEDGER_ARRAY_INDEX"
    )
    p.add_argument("--wait", action="store_true", help="wait for the end, show the run; exit 0 if it succeeded, else 1")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=runs.submit)

    p = sub.add_parser("status", help="a run's status, reason and attempts")
    p.add_argument("run")
    p.add_argument("--as-of", metavar="TIME|POSITION", help="as it was at that point of the log")
    p.add_argument("--timeline", action="store_true", help="where its time went: each phase, per attempt")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=runs.status)

    p = sub.add_parser("runs", help="list runs, newest first")
    p.add_argument("--status", type=status, help="only runs in this status")
    p.add_argument("--definition", help="only runs of this definition")
    p.add_argument("--tag", metavar="TAG", help="only runs with this tag")
    p.add_argument("--limit", type=positive_int, default=50, help="at most this many")
    p.add_argument("--as-of", metavar="TIME|POSITION", help="as they were at that point of the log")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=runs.runs)

    p = sub.add_parser("wait", help="wait for a run to end (exit 0 succeeded, 1 other end, 3 time-out)")
    p.add_argument("run")
    p.add_argument("--timeout", type=float, metavar="SECONDS")
    p.set_defaults(handler=runs.wait)

    p = sub.add_parser("cancel", help="cancel a run, or every run with a tag (--tag, after a confirmation)")
    p.add_argument("run", nargs="?")
    p.add_argument("--tag", metavar="TAG", help="every run with this tag that has not ended")
    p.add_argument("--status", type=status, help="with --tag: only runs in this status (PENDING or RUNNING)")
    p.add_argument("--yes", action="store_true", help="with --tag: do not ask for a confirmation")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=runs.cancel)

    p = sub.add_parser("logs", help="a run's output lines")
    p.add_argument("run")
    p.add_argument("--follow", "-f", action="store_true", help="print new lines as they come, until the run ends")
    p.set_defaults(handler=runs.logs)

    p = sub.add_parser("worker", help="run rq workers for clusters (a thin wrapper over `rq worker`)")
    p.add_argument("clusters", nargs="*", metavar="CLUSTER")
    p.add_argument("--burst", action="store_true", help="stop once the queue is empty")
    p.set_defaults(handler=processes.worker)

    p = sub.add_parser("dispatcher", help="run one dispatcher in the foreground")
    p.set_defaults(handler=processes.dispatcher)

    p = sub.add_parser("up", help="run Redis (embedded), a dispatcher and workers until Ctrl-C")
    p.add_argument(
        "--workers", type=non_negative_int, default=2, help="workers for the default cluster (0: a fleet elsewhere)"
    )
    p.add_argument("--grace", type=float, default=10.0, help="seconds running attempts get on Ctrl-C")
    p.set_defaults(handler=processes.up)

    p = sub.add_parser("demo", help="define the examples, run them to every end state, print them")
    p.set_defaults(handler=processes.demo)

    p = sub.add_parser("store", help="the store: its URL, stop the embedded server, or forget its epoch")
    p.add_argument("action", choices=["url", "stop", "forget"])
    p.set_defaults(handler=processes.store)
    add_audit_commands(sub, _Parser)
    add_workflow_commands(sub, _Parser)
    add_schedule_commands(sub, _Parser)
    add_backfill_commands(sub, _Parser)
    add_library_commands(sub, _Parser)
    add_ops_commands(sub, _Parser)
    add_maintenance_command(sub, _Parser)
    add_acl_command(sub, _Parser)
    add_pool_commands(sub, _Parser)
    add_notification_commands(sub, _Parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    for number, arg in enumerate(argv, start=1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:  # bytes the shell passed that are not UTF-8 (Python keeps them as surrogates)
            print(f"jobledger: argument {number} is not valid UTF-8: {printable(arg)}", file=sys.stderr)
            return 2
    args = _parser().parse_args(argv)
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # a reader that stopped reading is found here, not in the interpreter's exit
        return code
    except BrokenPipeError:  # before OSError, its parent: the reader (``| head -n 1``) has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush writes nowhere
        return 0
    except JobledgerError as exc:
        print(f"jobledger: {one_line(exc, args)}", file=sys.stderr)
        return exc.exit_code
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        print(f"jobledger: store unavailable: {printable(str(exc))}", file=sys.stderr)
        return EXIT_STORE_UNAVAILABLE
    except OSError as exc:  # a file a command was given or writes: missing, a folder, not allowed, disk full
        where = f"{printable(str(exc.filename))}: " if exc.filename is not None else ""
        print(f"jobledger: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

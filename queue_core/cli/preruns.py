"""``jobledger workflow prerun``: run a workflow once for real with its outputs in scratch, report, clean up."""

from __future__ import annotations

import argparse
from typing import Any

from queue_core.cli.output import print_json
from queue_core.client import Client
from queue_core.domain.runs import SUCCEEDED
from queue_core.errors import WaitTimeout

__all__ = ["add_prerun_commands", "report_lines"]

EXIT_WAIT_TIMEOUT = 3


def _rows(out: dict[str, Any]) -> str:
    real = out["last_real"]
    if real is None:
        return f"rows {out['rows']} (no real run wrote it yet)"
    change = out["rows"] - real["rows"]
    return f"rows {out['rows']} (last real run: {real['rows']}, {change:+d})"


def _schema(out: dict[str, Any]) -> str:
    if out["schema"] != "changed":
        return f"schema {out['schema']}"
    parts = [f"{k} {', '.join(out[k])}" for k in ("added", "removed", "retyped") if out.get(k)]
    return "schema changed" + (f": {'; '.join(parts)}" if parts else "")


def report_lines(report: dict[str, Any]) -> list[str]:
    """The pre-run's report as text: each task's outcome, each output's rows and schema beside the last real run."""
    scratch = report["scratch"]
    lines = [f"pre-run {report['id']} of {report['workflow']} (version {report['workflow_version']}): "
             f"{report['status']}; scratch {scratch['status']}"]  # fmt: skip
    for name, task in report["tasks"].items():
        said = task["status"] + (f"  {task['reason']}" if task["reason"] else "")
        lines.append(f"task {name}: {said}")
        if task["message"] and task["status"] != SUCCEEDED:
            lines.append(f"  {task['message']}")
        for out in task["outputs"]:
            lines.append(f"  output {out['dataset']} -> {out['scratch']}")
            lines.append(f"    {_rows(out)}; {_schema(out)}")
    return lines


def prerun(args: argparse.Namespace) -> int:
    client = Client.from_env()
    if args.clean:
        cleaned = client.clean_preruns(args.name)
        if args.json:
            print_json(cleaned)
            return 0
        for done in cleaned:
            failed = f"; not from {', '.join(done['failed'])}" if done["failed"] else ""
            print(f"{done['id']}: scratch removed from {', '.join(done['removed']) or 'no depot'}{failed}")
        if not cleaned:
            print(f"no pre-run of {args.name} has scratch outputs left")
        return 0
    run_id = client.prerun_workflow(args.name, args.cluster)
    if not args.wait:
        print_json(client.get_workflow_run(run_id)) if args.json else print(run_id)
        return 0
    try:
        client.wait_workflow_run(run_id, args.timeout)
    except WaitTimeout as exc:
        print(f"jobledger: {exc}")
        return EXIT_WAIT_TIMEOUT
    return _print_report(client, run_id, args.json)


def _print_report(client: Client, run_id: str, as_json: bool) -> int:
    report = client.prerun_report(run_id)
    if as_json:
        print_json(report)
    else:
        print("\n".join(report_lines(report)))
    return 0 if report["status"] == SUCCEEDED else 1


def report(args: argparse.Namespace) -> int:
    return _print_report(Client.from_env(), args.run, args.json)


def add_prerun_commands(wsub: Any) -> None:
    """Register ``jobledger workflow prerun`` and ``prerun-report`` on the workflow subparsers."""
    q = wsub.add_parser("prerun", help="run a workflow once for real, its outputs in scratch (--clean: remove them)")
    q.add_argument("name")
    q.add_argument("--cluster", help="for tasks whose file names no cluster")
    q.add_argument("--wait", action="store_true", help="wait for it to end and print its report")
    q.add_argument("--timeout", type=float, metavar="SECONDS", help="with --wait: give up after this long (exit 3)")
    q.add_argument("--clean", action="store_true", help="remove the scratch outputs of the workflow's ended pre-runs")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=prerun)

    q = wsub.add_parser("prerun-report", help="a pre-run's tasks and outputs beside the last real run's")
    q.add_argument("run", metavar="WRUN")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=report)

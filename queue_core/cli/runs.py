"""CLI verbs for runs: submit, status (and its timeline), runs, wait, cancel, logs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from queue_core.cli.argtypes import as_of
from queue_core.cli.output import RUN_HEADERS, print_json, print_kv, print_table, run_row
from queue_core.client import Client
from queue_core.domain.runs import SUCCEEDED, WAITING_TO_RETRY, public_view
from queue_core.errors import InvalidInput, WaitTimeout

__all__ = ["EXIT_WAIT_TIMEOUT", "print_result", "print_run"]

EXIT_WAIT_TIMEOUT = 3


def _env_pairs(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{pair!r} is not K=V", "--env")
        env[key] = value
    return env


def submit(args: argparse.Namespace) -> int:
    client = Client.from_env()
    run_id = client.submit(
        args.definition,
        cluster=args.cluster,
        args=args.args,
        env=_env_pairs(args.env),
        timeout=args.timeout,
        idempotency_key=args.idempotency_key,
        logical_date=args.logical_date,
        version=args.version,
        ref=args.ref,
        priority=args.priority,
        tags=args.tag,
        array=args.array,
    )
    if args.wait:
        run = client.wait(run_id)
        if args.json:
            print_json(run)
        else:
            print(run_id)
            print_run(run)
            if run["result"]:
                print_result(run["result"])
        return 0 if run["status"] == SUCCEEDED else 1
    if args.json:
        print_json(client.get_run(run_id))
    else:
        print(run_id)
    return 0


def print_run(run: dict[str, Any], revisions: dict[str, str] | None = None) -> None:
    pairs: list[tuple[str, Any]] = [
        ("run", run["id"]),
        ("definition", f"{run['definition']} (version {run['definition_version']})"),
        ("cluster", run["cluster"]),
        ("status", run["status"]),
        ("reason", run["reason"]),
        ("exit code", run["exit_code"]),
        ("submitted", run["submitted_at"]),
        ("finished", run["finished_at"]),
    ]
    if run.get("logical_date"):
        pairs.insert(3, ("logical date", run["logical_date"]))
    if run.get("workflow_run"):
        pairs.insert(1, ("workflow run", f"{run['workflow_run']} (task {run['task']})"))
    if run.get("tags"):
        pairs.insert(3, ("tags", ", ".join(run["tags"])))
    for key, label in (("workflow_title", "workflow title"), ("title", "title")):
        if run.get(key):  # a DataOS file's titles (a run archived before titles has no key)
            pairs.insert(1, (label, run[key]))
    if run.get("retry_rule") is not None:
        pairs.insert(-3, ("decided by", f"retryStrategy.rules[{run['retry_rule']}]"))
    if run["reason"] == WAITING_TO_RETRY and run.get("not_before"):
        pairs.insert(-3, ("not before", run["not_before"]))  # when the next attempt may start
    if run.get("array"):  # an array job's parent: its children by state
        counts = run["array"]["counts"]
        shown = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
        pairs.append(("children", f"{run['array']['size']}: {shown}"))
        if run["array"].get("forEach"):  # a for-each task's run: how many at once, and what a repair carried
            window = run["array"]["forEach"]
            pairs.append(("for-each", f"{window['concurrency']} at a time, {window['carried']} carried from before"))
    if run.get("array_parent"):
        pairs.insert(1, ("array job", f"{run['array_parent']} (index {run['array_index']})"))
    if run.get("values"):  # what it published for its downstream (a run archived before values has no key)
        pairs.append(("values", json.dumps(run["values"], separators=(",", ":"))[:500]))
    print_kv(pairs)
    if run["attempts"]:
        print()
        headers = ["ATTEMPT", "STATUS", "REASON", "EXIT", "WORKER", "STARTED", "FINISHED"]
        rows = [
            [a["number"], a["status"], a["reason"], a["exit_code"], a["worker"], a["started_at"], a["finished_at"]]
            for a in run["attempts"]
        ]
        if revisions:
            headers.append("SOURCE REVISION")
            for row in rows:
                row.append(revisions.get(str(row[0])))
        print_table(headers, rows)


def status(args: argparse.Namespace) -> int:
    if args.timeline:
        return _timeline(args)
    detail = Client.from_env().run_detail(args.run, as_of=as_of(args))
    if args.json:
        print_json(public_view(detail))
    else:
        print_run(public_view(detail), detail["source_revisions"])
        if detail.get("result"):
            print_result(detail["result"])
    return 0


def print_result(result: dict[str, Any]) -> None:
    """A SQL run's result: each output's rows and columns, then the preview."""
    if result.get("query"):
        query = result["query"]
        label = f"step {query['step']}" if "step" in query else f"statement {query['statement']}"
        print(f"\n{label} (first {len(query['preview'])} rows):")
        print_table([name for name, _ in query["columns"]], query["preview"])
    for output in result.get("outputs", []):
        print(
            f"\noutput {output['name']} -> {output['dataset']} ({output['format']}, {output['saveMode']}): "
            f"{output['rows']} rows written"
            if output["written"]
            else f"\noutput {output['name']}: not written ({output['saveMode']})"
        )
        columns = output.get("columns", [])
        if columns:
            print("columns: " + ", ".join(f"{name} {kind}" for name, kind in columns))
        preview = output.get("preview", [])
        if preview:
            print_table([name for name, _ in columns], preview)


def _timeline(args: argparse.Namespace) -> int:
    phases = Client.from_env().run_timeline(args.run, as_of=as_of(args))
    if args.json:
        print_json([phase.__dict__ for phase in phases])
        return 0
    print_table(
        ["PHASE", "ATTEMPT", "FROM", "TO", "SECONDS"],
        [[p.phase, p.attempt, p.started_at, p.ended_at or "(now)", f"{p.seconds:.3f}"] for p in phases],
    )
    totals: dict[str, float] = {}
    for phase in phases:
        totals[phase.phase] = totals.get(phase.phase, 0.0) + phase.seconds
    print()
    print_kv([(name, f"{seconds:.3f} s") for name, seconds in totals.items()])
    return 0


def runs(args: argparse.Namespace) -> int:
    found = Client.from_env().list_runs(
        status=args.status, definition=args.definition, limit=args.limit, as_of=as_of(args), tag=args.tag
    )
    if args.json:
        print_json(found)
    else:
        print_table(RUN_HEADERS, [run_row(r) for r in found])
    return 0


def wait(args: argparse.Namespace) -> int:
    from queue_core.cli.progress import wait_run

    client = Client.from_env()
    client.get_run(args.run)
    try:
        run = wait_run(client, args.run, args.timeout)
    except WaitTimeout as exc:
        print(f"jobledger: {exc}", file=sys.stderr)
        return EXIT_WAIT_TIMEOUT
    print(f"{run['id']} {run['status']}{' ' + run['reason'] if run['reason'] else ''}")
    return 0 if run["status"] == SUCCEEDED else 1


def cancel(args: argparse.Namespace) -> int:
    if (args.run is None) == (args.tag is None):
        raise InvalidInput("give a run, or --tag TAG (not both)", "run")
    if args.tag is not None:
        return _cancel_tagged(args)
    if args.status is not None or args.yes:
        raise InvalidInput("--status and --yes go with --tag", "status")
    run = Client.from_env().cancel(args.run)
    if args.json:
        print_json(run)
    else:
        print(f"{run['id']} {run['status']}")
    return 0


def _cancel_tagged(args: argparse.Namespace) -> int:
    """Cancel every run with the tag after saying how many; asks first unless ``--yes`` (no terminal: refused)."""
    client = Client.from_env()
    found = client.cancel_tagged(args.tag, args.status, count_only=True)
    if not found:
        print(f"no run tagged {args.tag} to cancel")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            print(
                f"jobledger: {len(found)} runs tagged {args.tag} would be cancelled; confirm with --yes",
                file=sys.stderr,
            )
            return 2
        answer = input(f"cancel {len(found)} runs tagged {args.tag}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing cancelled")
            return 1
    cancelled = client.cancel_tagged(args.tag, args.status)
    if args.json:
        print_json({"tag": args.tag, "cancelled": cancelled})
    else:
        print(f"cancelled {len(cancelled)} runs tagged {args.tag}")
    return 0


def logs(args: argparse.Namespace) -> int:
    for line in Client.from_env().logs(args.run, follow=args.follow):
        print(f"{line.time} [{line.attempt}] {line.stream}: {line.line}", flush=args.follow)
    return 0

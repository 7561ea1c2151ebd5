"""The ``jobledger workflow`` verbs: apply, list, show, run, status, runs, graph, cancel, rerun, repair, wait."""

from __future__ import annotations

import argparse
from typing import Any

from queue_core.cli.argtypes import positive_int, status, true_or_false
from queue_core.cli.output import print_json, print_kv, print_table
from queue_core.cli.preruns import add_prerun_commands
from queue_core.cli.workflow_render import render_dot, render_mermaid, render_tree
from queue_core.client import Client
from queue_core.domain.runs import SUCCEEDED
from queue_core.domain.workflows import workflow_spec_of
from queue_core.errors import WaitTimeout
from queue_core.eventlog.positions import as_position

__all__ = ["add_workflow_commands"]

EXIT_WAIT_TIMEOUT = 3


def _client() -> Client:
    return Client.from_env()


def apply(args: argparse.Namespace) -> int:
    result = _client().apply_workflow_file(args.file)
    if args.json:
        print_json(result.__dict__)
    elif result.changed:
        print(f"{result.id}  {result.name} version {result.version}")
    else:
        print(f"{result.id}  (unchanged: {result.name} stays at version {result.version})")
    return 0


def list_(args: argparse.Namespace) -> int:
    docs = _client().list_workflows()
    tags = {d["id"]: workflow_spec_of(d).get("tags", []) for d in docs}  # absent: applied without tags
    if args.tag is not None:
        docs = [d for d in docs if args.tag in tags[d["id"]]]
    if args.json:
        keys = ("id", "name", "version", "created_at", "updated_at")
        print_json([{**{k: d[k] for k in keys}, "tags": tags[d["id"]]} for d in docs])
        return 0
    rows = [
        [d["name"], d["id"], d["version"], len(workflow_spec_of(d)["tasks"]), ",".join(tags[d["id"]]) or None,
         d["updated_at"]]
        for d in docs
    ]  # fmt: skip
    print_table(["NAME", "ID", "VERSION", "TASKS", "TAGS", "UPDATED"], rows)
    return 0


def show(args: argparse.Namespace) -> int:
    doc = _client().get_workflow(args.name)
    if args.json:
        print_json(doc)
        return 0
    spec = workflow_spec_of(doc)
    print_kv([("workflow", doc["name"]), ("title", spec.get("title")),
              ("tags", ", ".join(spec.get("tags", ())) or None), ("id", doc["id"]), ("version", doc["version"]),
              ("concurrency", spec["concurrency"] or "unlimited"), ("failFast", spec["failFast"]),
              ("references", ", ".join(f"{r['kind']} {r['name']}" for r in spec["references"]) or None)])  # fmt: skip
    print()
    rows = [
        [name, t["definition"] or "(inline job)", t["definition_version"] or "latest", ", ".join(t["depends_on"]),
         t.get("title") or ""]
        for name, t in sorted(spec["tasks"].items())
    ]  # fmt: skip
    print_table(["TASK", "DEFINITION", "VERSION", "DEPENDS ON", "TITLE"], rows)
    return 0


def _print_view(view: dict[str, Any]) -> None:
    for line in render_tree(view):
        print(line)


def _wait(client: Client, run_id: str, timeout: float | None) -> dict[str, Any]:
    from queue_core.cli.progress import wait_workflow_run

    return wait_workflow_run(client, run_id, timeout)


def run(args: argparse.Namespace) -> int:
    client = _client()
    if args.dry_run:
        plan = client.plan_workflow(args.name, args.cluster, args.logical_date)
        if args.json:
            print_json(plan.to_json_dict())
            return 0
        print(f"{plan.workflow} (version {plan.workflow_version})  logical date {plan.logical_date}  (dry run)")
        for ref in plan.references:
            print(f"waits for a succeeded run of {ref['kind']} {ref['name']} for that logical date")
        for i, level in enumerate(plan.levels):
            tasks = ", ".join(_planned(t, plan.tasks[t]) for t in level)
            print(f"level {i}: {tasks}" + ("  (in parallel)" if len(level) > 1 else ""))
        limit = f"at most {plan.concurrency} at once" if plan.concurrency else "no limit on tasks at once"
        print(f"{limit}; failFast {'on' if plan.fail_fast else 'off'}; nothing was appended")
        return 0
    run_id = client.run_workflow(args.name, args.cluster, args.logical_date)
    if not args.wait:
        if args.json:
            print_json(client.get_workflow_run(run_id))
        else:
            print(run_id)
        return 0
    return _finish(client, run_id, args)


def _finish(client: Client, run_id: str, args: argparse.Namespace) -> int:
    try:
        view = _wait(client, run_id, getattr(args, "timeout", None))
    except WaitTimeout as exc:
        print(f"jobledger: {exc}")
        return EXIT_WAIT_TIMEOUT
    if args.json:
        print_json(view)
    else:
        _print_view(view)
    return 0 if view["status"] == SUCCEEDED else 1


def status_(args: argparse.Namespace) -> int:
    as_of = as_position(args.as_of, "--as-of") if args.as_of else "+"
    view = _client().get_workflow_run(args.run, as_of)
    if args.json:
        print_json(view)
    else:
        _print_view(view)
    return 0


def runs(args: argparse.Namespace) -> int:
    docs = _client().list_workflow_runs(args.workflow, args.status, args.limit)
    if args.json:
        print_json(docs)
        return 0
    rows = [
        [d["id"], d["workflow"], d["workflow_version"], d["status"], d["reason"], d["logical_date"],
         " ".join(f"{k}:{v}" for k, v in sorted(d["tasks"].items())), d["started_at"]]
        for d in docs
    ]  # fmt: skip
    print_table(["WORKFLOW RUN", "WORKFLOW", "VERSION", "STATUS", "REASON", "LOGICAL DATE", "TASKS", "STARTED"], rows)
    return 0


def graph(args: argparse.Namespace) -> int:
    view = _client().get_workflow_run(args.run)
    print(render_mermaid(view) if args.format == "mermaid" else render_dot(view))
    return 0


def cancel(args: argparse.Namespace) -> int:
    view = _client().cancel_workflow_run(args.run)
    if args.json:
        print_json(view)
    else:
        _print_view(view)
    return 0


def rerun(args: argparse.Namespace) -> int:
    client = _client()
    view = client.rerun_workflow_task(args.run, args.task, args.downstream)
    if args.wait:
        return _finish(client, args.run, args)
    if args.json:
        print_json(view)
    else:
        tasks = view["reruns"][-1]["tasks"]
        print(f"{args.run}: rerunning {', '.join(tasks)}")
    return 0


def repair(args: argparse.Namespace) -> int:
    client = _client()
    view = client.repair_workflow_run(args.run)
    if args.wait:
        return _finish(client, args.run, args)
    if args.json:
        print_json(view)
    else:
        print(f"{args.run}: repairing {', '.join(view['reruns'][-1]['tasks'])}")
    return 0


def wait(args: argparse.Namespace) -> int:
    return _finish(_client(), args.run, args)


def add_workflow_commands(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``jobledger workflow ...`` on the top-level subparsers."""
    p = sub.add_parser("workflow", help="DAGs of jobs: apply, run, watch, rerun and repair workflow runs")
    wsub = p.add_subparsers(dest="action", required=True, parser_class=parser_class)

    q = wsub.add_parser("apply", help="create a workflow, or a new version of it, from a JSON or YAML file")
    q.add_argument("file")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=apply)

    q = wsub.add_parser("list", help="workflows, by name")
    q.add_argument("--tag", metavar="TAG", help="only workflows with this tag")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=list_)

    q = wsub.add_parser("show", help="a workflow's tasks and settings, with every version in --json")
    q.add_argument("name")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=show)

    q = wsub.add_parser("run", help="start a workflow run (--dry-run: print the plan, append nothing)")
    q.add_argument("name")
    q.add_argument("--cluster", help="for tasks whose file names no cluster")
    q.add_argument("--logical-date", metavar="DATE|TIME", help="the date the run stands for (default: now)")
    q.add_argument("--dry-run", action="store_true")
    q.add_argument("--wait", action="store_true")
    q.add_argument("--timeout", type=float, metavar="SECONDS", help="with --wait: give up after this long (exit 3)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=run)

    q = wsub.add_parser("status", help="the DAG as a tree with each task's status, reason, attempts, duration")
    q.add_argument("run", metavar="WRUN")
    q.add_argument("--as-of", metavar="TIME|POSITION", help="as it was at that point of the log")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=status_)

    q = wsub.add_parser("runs", help="workflow runs, newest first")
    q.add_argument("--workflow")
    q.add_argument("--status", type=status)
    q.add_argument("--limit", type=positive_int, default=50)
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=runs)

    q = wsub.add_parser("graph", help="the run's graph with statuses, as Mermaid or Graphviz dot")
    q.add_argument("run", metavar="WRUN")
    q.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")
    q.set_defaults(handler=graph)

    q = wsub.add_parser("cancel", help="cancel a workflow run: running tasks are cancelled, pending ones never start")
    q.add_argument("run", metavar="WRUN")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cancel)

    for name, help_text in (("rerun", "run one task of an ended workflow run again"),
                            ("repair", "rerun every task that did not succeed, and their downstream")):  # fmt: skip
        q = wsub.add_parser(name, help=help_text)
        q.add_argument("run", metavar="WRUN")
        if name == "rerun":
            q.add_argument("task")
            q.add_argument(
                "--downstream",
                nargs="?",
                const=True,
                default=False,
                type=true_or_false,
                metavar="true|false",
                help="and everything downstream of it (true, as alone) or the task alone (false, the default)",
            )
        q.add_argument("--wait", action="store_true")
        q.add_argument("--timeout", type=float, metavar="SECONDS")
        q.add_argument("--json", action="store_true")
        q.set_defaults(handler=rerun if name == "rerun" else repair)

    add_prerun_commands(wsub)

    q = wsub.add_parser("wait", help="wait for a workflow run to end (exit 0 succeeded, 1 other end, 3 time-out)")
    q.add_argument("run", metavar="WRUN")
    q.add_argument("--timeout", type=float, metavar="SECONDS")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=wait)


def _planned(name: str, task: dict[str, Any]) -> str:
    if task["condition"] is not None:
        return f"{name} [condition {task['condition']}]"
    return f"{name} [{task['definition']} v{task['definition_version']} on {task['cluster']}]"

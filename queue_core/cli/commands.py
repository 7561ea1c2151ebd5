"""One handler per CLI verb: parse arguments into a Client call, render the answer."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import orjson

from ..client import Client, WaitTimeout
from ..connection import display_url
from ..definitions import spec_of
from ..errors import InvalidInput
from ..events import Recorded
from ..positions import as_position
from ..runs import SUCCEEDED, public_view
from ..settings import Settings
from ..spec import check_name
from .output import RUN_HEADERS, print_json, print_kv, print_table, run_row

EXIT_WAIT_TIMEOUT = 3


def _client() -> Client:
    return Client.from_env()


# -- definitions and clusters ---------------------------------------------------------------------


def define(args: argparse.Namespace) -> int:
    results = _client().define_document(args.file)
    if args.json:
        # One definition prints its object, as before; a workflow file's several print a list.
        print_json(results[0].__dict__ if len(results) == 1 else [r.__dict__ for r in results])
        return 0
    for result in results:
        if result.changed:
            print(result.id if len(results) == 1 else f"{result.id}  {result.name}")
        else:
            print(f"{result.id}  (unchanged: {result.name} stays at version {result.version})")
    return 0


def definitions_list(args: argparse.Namespace) -> int:
    docs = _client().list_definitions(include_deleted=args.all)
    if args.json:
        print_json([_definition_summary(d) for d in docs])
        return 0
    rows = [
        [
            d["name"],
            d["id"],
            d["version"],
            spec_of(d)["config"]["type"],
            _cluster_of(d),
            "deleted" if d["deleted"] else "live",
            d["updated_at"],
        ]
        for d in docs
    ]
    print_table(["NAME", "ID", "VERSION", "TYPE", "CLUSTER", "STATE", "UPDATED"], rows)
    return 0


def _cluster_of(doc: dict[str, Any]) -> str | None:
    return (spec_of(doc)["cluster"] or {}).get("name")


def _definition_summary(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: doc[k] for k in ("id", "name", "version", "deleted", "created_at", "updated_at")}


def _as_of(args: argparse.Namespace) -> str:
    return as_position(args.as_of, "--as-of") if getattr(args, "as_of", None) else "+"


def definitions_show(args: argparse.Namespace) -> int:
    doc = _client().get_definition(args.definition, as_of=_as_of(args))
    if args.version is not None:
        spec = spec_of(doc, args.version)
        if args.json:
            print_json({"id": doc["id"], "name": doc["name"], "version": args.version, "spec": spec})
        else:
            print_json(spec)
        return 0
    if args.json:
        print_json(doc)
        return 0
    print_kv(
        [
            ("name", doc["name"]),
            ("id", doc["id"]),
            ("version", doc["version"]),
            ("state", "deleted" if doc["deleted"] else "live"),
            ("created", doc["created_at"]),
            ("updated", doc["updated_at"]),
        ]
    )
    for entry in doc["versions"]:
        print(f"\nversion {entry['version']} ({entry['defined_at']}):")
        print_json(entry["spec"])
    return 0


def definitions_diff(args: argparse.Namespace) -> int:
    changes = _client().diff_definition(args.definition, args.old, args.new)
    if args.json:
        print_json([change.__dict__ for change in changes])
        return 0
    if not changes:
        print(f"versions {args.old} and {args.new} are the same")
    marks = {"added": "+", "removed": "-", "changed": "~"}
    for change in changes:
        if change.kind == "changed":
            shown = f"{orjson.dumps(change.old).decode()} -> {orjson.dumps(change.new).decode()}"
        else:
            shown = orjson.dumps(change.new if change.kind == "added" else change.old).decode()
        print(f"{marks[change.kind]} {change.field}: {shown}")
    return 0


def definitions_delete(args: argparse.Namespace) -> int:
    deleted = _client().delete_definition(args.definition)
    if args.json:
        print_json({"id": deleted, "deleted": True})
    else:
        print(f"deleted {deleted}")
    return 0


def cluster_create(args: argparse.Namespace) -> int:
    cluster_id = _client().create_cluster(args.name, args.workers, args.instance_type)
    if args.json:
        print_json({"id": cluster_id, "name": args.name})
    else:
        print(cluster_id)
    return 0


def cluster_list(args: argparse.Namespace) -> int:
    clusters = _client().list_clusters()
    if args.json:
        print_json(clusters)
        return 0
    print_table(
        ["NAME", "ID", "WORKERS", "INSTANCE TYPE", "REGISTERED"],
        [[c["name"], c["id"], c["workers"], c["instance_type"], c["registered_at"] or "built in"] for c in clusters],
    )
    return 0


# -- secrets and resources ------------------------------------------------------------------------


def _read_secret_value() -> str:
    """From stdin when it is not a terminal (one trailing newline dropped), else a prompt that does not echo."""
    if sys.stdin is None or not sys.stdin.isatty():
        text = sys.stdin.read() if sys.stdin is not None else ""
        return text[:-1] if text.endswith("\n") else text
    import getpass

    return getpass.getpass("secret value: ")


def secret_set(args: argparse.Namespace) -> int:
    client = _client()
    check_name(args.name, "secret")
    client.set_secret(args.name, _read_secret_value())
    print(f"secret {args.name} set")
    return 0


def secret_list(args: argparse.Namespace) -> int:
    names = _client().list_secrets()
    if args.json:
        print_json(names)
    else:
        for name in names:
            print(name)
    return 0


def secret_delete(args: argparse.Namespace) -> int:
    _client().delete_secret(args.name)
    print(f"secret {args.name} deleted")
    return 0


def resource_add(args: argparse.Namespace) -> int:
    added = _client().add_resource(args.name, args.file)
    if args.json:
        print_json(added)
    elif added["created"]:
        print(f"{args.name} version {added['version']}  sha256:{added['checksum']}")
    else:
        print(f"{args.name} unchanged: identical to version {added['version']}")
    return 0


def _resource_rows(docs: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [d["name"], d["version"], d["versions"][-1]["kind"], d["versions"][-1]["size"], d["versions"][-1]["added_at"]]
        for d in docs
    ]


def resource_list(args: argparse.Namespace) -> int:
    docs = _client().list_resources()
    if args.json:
        print_json(docs)
    else:
        print_table(["NAME", "LATEST", "KIND", "BYTES", "ADDED"], _resource_rows(docs))
    return 0


def resource_show(args: argparse.Namespace) -> int:
    doc = _client().get_resource(args.name)
    if args.json:
        print_json(doc)
        return 0
    print_kv([("name", doc["name"]), ("id", doc["id"]), ("latest", doc["version"]), ("created", doc["created_at"])])
    print()
    keys = ("version", "kind", "filename", "size", "checksum", "storage", "added_at")
    print_table(
        ["VERSION", "KIND", "FILE", "BYTES", "SHA256", "STORAGE", "ADDED"],
        [[v[k] for k in keys] for v in doc["versions"]],
    )
    return 0


# -- depots ---------------------------------------------------------------------------------------


def depot_add(args: argparse.Namespace) -> int:
    options = {"path": args.path, "bucket": args.bucket, "prefix": args.prefix, "region": args.region}
    options.update(endpoint_url=args.endpoint_url, dsn=args.dsn, password_secret=args.password_secret)
    depot = _client().add_depot(args.name, args.type, **options)
    if args.json:
        print_json(depot)
    else:
        print(depot["id"])
    return 0


def _depot_where(depot: dict[str, Any]) -> str:
    config = depot["config"]
    if depot["type"] == "postgres":
        secret = config.get("password_secret")
        return config["dsn"] + (f" (password: secret {secret})" if secret else "")
    if depot["type"] != "s3":
        return str(config["path"])
    return f"s3://{config['bucket']}/{config['prefix']}"


def depot_list(args: argparse.Namespace) -> int:
    depots = _client().list_depots()
    if args.json:
        print_json(depots)
    else:
        print_table(
            ["NAME", "TYPE", "WHERE", "ADDED"], [[d["name"], d["type"], _depot_where(d), d["added_at"]] for d in depots]
        )
    return 0


def depot_show(args: argparse.Namespace) -> int:
    depot = _client().get_depot(args.name)
    if args.json:
        print_json(depot)
        return 0
    print_kv([("name", depot["name"]), ("id", depot["id"]), ("type", depot["type"]), ("added", depot["added_at"])])
    print_kv(sorted(depot["config"].items()))
    return 0


def sql(args: argparse.Namespace) -> int:
    inputs = {}
    for pair in args.input:
        name, sep, address = pair.partition("=")
        if not sep or not name:
            raise InvalidInput(f"{pair!r} is not NAME=ADDRESS[:FORMAT]", "--input")
        inputs[name] = address
    client = _client()
    run_id = client.sql(args.query, inputs, args.output, args.save_mode, args.cluster)
    run = client.wait(run_id) if args.wait else client.get_run(run_id)
    if args.json:
        print_json(run)
    else:
        print(run_id)
        if args.wait:
            _print_run(run)
            if run["result"]:
                _print_result(run["result"])
    return 0 if not args.wait or run["status"] == SUCCEEDED else 1


def lineage(args: argparse.Namespace) -> int:
    found = _client().lineage(args.dataset)
    if args.json:
        print_json(found)
        return 0
    print(found["dataset"])
    print_table(
        ["RUN", "ATTEMPT", "WRITTEN", "MODE", "ROWS", "SCHEMA", "INPUTS"],
        [
            [w["run"], w["attempt"], w["time"], w["save_mode"], w["rows"], w["fingerprint"], " ".join(w["inputs"])]
            for w in found["writes"]
        ],
    )
    return 0


# -- runs -----------------------------------------------------------------------------------------


def _env_pairs(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{pair!r} is not K=V", "--env")
        env[key] = value
    return env


def submit(args: argparse.Namespace) -> int:
    client = _client()
    run_id = client.submit(
        args.definition,
        cluster=args.cluster,
        args=args.args,
        env=_env_pairs(args.env),
        timeout=args.timeout,
        idempotency_key=args.idempotency_key,
        logical_date=args.logical_date,
    )
    if args.wait:
        run = client.wait(run_id)
        if args.json:
            print_json(run)
        else:
            print(run_id)
            _print_run(run)
            if run["result"]:
                _print_result(run["result"])
        return 0 if run["status"] == SUCCEEDED else 1
    if args.json:
        print_json(client.get_run(run_id))
    else:
        print(run_id)
    return 0


def _print_run(run: dict[str, Any], revisions: dict[str, str] | None = None) -> None:
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
    detail = _client().run_detail(args.run, as_of=_as_of(args))
    if args.json:
        print_json(public_view(detail))
    else:
        _print_run(public_view(detail), detail["source_revisions"])
        if detail.get("result"):
            _print_result(detail["result"])
    return 0


def _print_result(result: dict[str, Any]) -> None:
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
    phases = _client().run_timeline(args.run, as_of=_as_of(args))
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
    found = _client().list_runs(status=args.status, definition=args.definition, limit=args.limit, as_of=_as_of(args))
    if args.json:
        print_json(found)
    else:
        print_table(RUN_HEADERS, [run_row(r) for r in found])
    return 0


def wait(args: argparse.Namespace) -> int:
    from .progress import wait_run

    client = _client()
    client.get_run(args.run)
    try:
        run = wait_run(client, args.run, args.timeout)
    except WaitTimeout as exc:
        print(f"jobledger: {exc}", file=sys.stderr)
        return EXIT_WAIT_TIMEOUT
    print(f"{run['id']} {run['status']}{' ' + run['reason'] if run['reason'] else ''}")
    return 0 if run["status"] == SUCCEEDED else 1


def cancel(args: argparse.Namespace) -> int:
    run = _client().cancel(args.run)
    if args.json:
        print_json(run)
    else:
        print(f"{run['id']} {run['status']}")
    return 0


def logs(args: argparse.Namespace) -> int:
    for line in _client().logs(args.run, follow=args.follow):
        print(f"{line.time} [{line.attempt}] {line.stream}: {line.line}", flush=args.follow)
    return 0


def events(args: argparse.Namespace) -> int:
    client = _client()
    since = as_position(args.since, "--since", end=False) if args.since else None
    until = as_position(args.until, "--until") if args.until else None
    found = client.events(aggregate=args.aggregate, type=args.type, limit=args.limit, since=since, until=until)
    if args.json and not args.follow:
        print_json([rec.to_json_dict() for rec in found])
        return 0
    for rec in found:
        _print_event(rec, args.json)
    if args.follow:
        after = found[-1].position if found else (until or client.store.last_position())
        for rec in client.follow_events(after, aggregate=args.aggregate, type=args.type):
            _print_event(rec, args.json)
    return 0


def _print_event(rec: Recorded, as_json: bool) -> None:
    if as_json:
        print(orjson.dumps(rec.to_json_dict()).decode(), flush=True)
        return
    data = orjson.dumps(rec.event.to_data()).decode()
    print(f"{rec.position}  {rec.time}  {rec.type}  {rec.aggregate}  v{rec.version}  {data}", flush=True)


def replay(args: argparse.Namespace) -> int:
    from .progress import replay_progress

    client = _client()
    if args.rebuild:
        with replay_progress(client, "rebuilding") as progress:
            rebuilt = client.rebuild_read_models(progress)
        rate = rebuilt.events / rebuilt.seconds if rebuilt.seconds else 0.0
        print(f"rebuilt the read models from {rebuilt.events} events ({rate:,.0f} events/s folded)")
        return 0
    with replay_progress(client, "replaying") as progress:
        result = client.replay_verify(progress)
    print(f"replayed {result.events} events in {result.seconds:.3f} s ({result.events_per_second:,.0f} events/s)")
    if result.largest:
        print(f"largest aggregate: {result.largest[0]} ({result.largest[1]} events)")
    if result.identical:
        print("identical")
        return 0
    print(f"different: {result.difference}")
    return 1


def verify(args: argparse.Namespace) -> int:
    report = _client().verify_chain()
    if args.json:
        print_json(
            {
                "checked": report.checked,
                "intact": report.intact,
                "broken_at": report.broken_at,
                "reason": report.reason,
                "head": report.head,
            }
        )
    elif report.intact:
        print(f"chain intact: {report.checked} events, head {report.head or '-'}")
    else:
        print(f"chain broken at {report.broken_at}: {report.reason} ({report.checked} events before it check out)")
    return 0 if report.intact else 1


# -- processes ------------------------------------------------------------------------------------


def worker(args: argparse.Namespace) -> int:
    from .fleet import fleet_command

    client = _client()
    clusters = args.clusters or ["default"]
    for name in clusters:
        client.get_cluster(name)
    url = None if client.settings.redis_password_file else client.url  # else RQ reads the password file
    commands = [[sys.executable, "-m", "rq.cli", *fleet_command(url, c, args.burst)[1:]] for c in clusters]
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
    from .node import run_node

    return run_node(Settings.from_env(), args.workers, args.grace)


def demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(Settings.from_env())


def store(args: argparse.Namespace) -> int:
    from ..embedded import EmbeddedRedis

    settings = Settings.from_env()
    if args.action == "url":
        print(display_url(_client().url))
        return 0
    if args.action == "forget":
        from ..connection import connect
        from ..health import forget_epoch

        forget_epoch(settings, connect(settings))
        print("this machine no longer holds the store's epoch; the next command accepts the store as it finds it")
        return 0
    if settings.redis_url:
        raise InvalidInput("REDIS_URL is set: jobledger does not stop a server it does not own", "store stop")
    EmbeddedRedis(settings.home).stop()
    print("embedded store stopped")
    return 0

"""CLI verbs for what jobs read and write: secrets, resources, depots, datasets, one-off SQL."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from queue_core.cli.output import print_json, print_kv, print_table
from queue_core.cli.runs import print_result, print_run
from queue_core.client import Client
from queue_core.domain.runs import SUCCEEDED
from queue_core.errors import InvalidInput
from queue_core.specs.definitions import check_name


def _read_secret_value() -> str:
    """From stdin when it is not a terminal (one trailing newline dropped), else a prompt that does not echo."""
    if sys.stdin is None or not sys.stdin.isatty():
        data = sys.stdin.buffer.read() if sys.stdin is not None else b""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"the value is not UTF-8 text (byte {exc.start})", "secret") from None
        return text[:-1] if text.endswith("\n") else text
    import getpass

    return getpass.getpass("secret value: ")


def secret_set(args: argparse.Namespace) -> int:
    client = Client.from_env()
    check_name(args.name, "secret")
    client.set_secret(args.name, _read_secret_value())
    print(f"secret {args.name} set")
    return 0


def secret_list(args: argparse.Namespace) -> int:
    names = Client.from_env().list_secrets()
    if args.json:
        print_json(names)
    else:
        for name in names:
            print(name)
    return 0


def secret_delete(args: argparse.Namespace) -> int:
    Client.from_env().delete_secret(args.name)
    print(f"secret {args.name} deleted")
    return 0


def secret_rotate_key(args: argparse.Namespace) -> int:
    secrets = Client.from_env().secrets
    rotated = secrets.rotate_key(progress=lambda name: print(f"re-encrypted {name}", flush=True))
    print(f"secret key rotated: {rotated.old_key_id} -> {rotated.new_key_id}")
    print(f"the key file {secrets.key_path} now holds only the new key: give it to every machine that resolves secrets")
    return 0


def resource_add(args: argparse.Namespace) -> int:
    added = Client.from_env().add_resource(args.name, args.file)
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
    docs = Client.from_env().list_resources()
    if args.json:
        print_json(docs)
    else:
        print_table(["NAME", "LATEST", "KIND", "BYTES", "ADDED"], _resource_rows(docs))
    return 0


def resource_show(args: argparse.Namespace) -> int:
    doc = Client.from_env().get_resource(args.name)
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
    depot = Client.from_env().add_depot(args.name, args.type, **options)
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
    depots = Client.from_env().list_depots()
    if args.json:
        print_json(depots)
    else:
        print_table(
            ["NAME", "TYPE", "WHERE", "ADDED"], [[d["name"], d["type"], _depot_where(d), d["added_at"]] for d in depots]
        )
    return 0


def depot_show(args: argparse.Namespace) -> int:
    depot = Client.from_env().get_depot(args.name)
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
    client = Client.from_env()
    run_id = client.sql(args.query, inputs, args.output, args.save_mode, args.cluster)
    run = client.wait(run_id) if args.wait else client.get_run(run_id)
    if args.json:
        print_json(run)
    else:
        print(run_id)
        if args.wait:
            print_run(run)
            if run["result"]:
                print_result(run["result"])
    return 0 if not args.wait or run["status"] == SUCCEEDED else 1


def lineage(args: argparse.Namespace) -> int:
    found = Client.from_env().lineage(args.dataset)
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

"""Pre-runs' scratch namespaces: where a pre-run's outputs land in each kind of depot, and the pipeline rewritten so.

A pre-run runs a workflow's tasks for real, but every output goes to a scratch namespace of its depot, named
after the pre-run (its workflow run id), so that the real datasets are never touched and the whole namespace
can be removed at once:

- a ``local`` depot: the folder ``_prerun/<workflow run id>/`` under the depot's folder;
- an ``s3`` depot: the key prefix ``_prerun/<workflow run id>/`` under the depot's prefix;
- a ``duckdb`` or ``postgres`` depot: the schema ``prerun_<12 hex digits of the id>`` of the same database,
  the table named ``<collection>__<dataset>`` (hashed down to 63 characters when longer).

An input a task of the same pre-run writes (an inline pipeline's output upstream) is read from the scratch copy.
Built-ins and data-sync tasks write through the same SQL runner, so their outputs land in scratch the same way;
an EXTERNAL_APP task cannot be redirected, so each of its requests says ``X-Jobledger-Prerun: 1`` instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

__all__ = [
    "PRERUN_ENV",
    "PRERUN_FOLDER",
    "PRERUN_HEADER",
    "scratch_folder",
    "scratch_label",
    "scratch_pipeline",
    "scratch_prefix",
    "scratch_schema",
    "scratch_table",
]

PRERUN_ENV = "JOBLEDGER_PRERUN"  # "1" in the environment of every task of a pre-run
PRERUN_HEADER = "X-Jobledger-Prerun"  # "1" on every request an EXTERNAL_APP task of a pre-run makes
PRERUN_FOLDER = "_prerun"
_FILE_DEPOTS = ("local", "s3")
_MAX_IDENTIFIER = 63  # PostgreSQL's limit on a name; DuckDB's is larger


def _hex(prerun: str) -> str:
    return prerun.replace("-", "")[:12].lower()


def scratch_folder(root: str, prerun: str) -> str:
    """The folder a local depot rooted at ``root`` keeps a pre-run's outputs in."""
    return str(PurePosixPath(root) / PRERUN_FOLDER / prerun)


def scratch_prefix(prefix: str, prerun: str) -> str:
    """The key prefix an S3 depot with key prefix ``prefix`` keeps a pre-run's outputs under (no trailing /)."""
    return "/".join(p for p in (prefix.strip("/"), PRERUN_FOLDER, prerun) if p)


def scratch_schema(prerun: str) -> str:
    """The schema a warehouse depot (DuckDB, PostgreSQL) keeps a pre-run's outputs in."""
    return f"prerun_{_hex(prerun)}"


def scratch_table(collection: str, dataset: str) -> str:
    """The table a warehouse dataset's pre-run copy is named in the scratch schema."""
    name = f"{collection}__{dataset}"
    if len(name) <= _MAX_IDENTIFIER:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[: _MAX_IDENTIFIER - 11]}_{digest}"


def scratch_label(depot: Mapping[str, Any], address: Mapping[str, Any], prerun: str) -> str:
    """Where the pre-run copy of ``address`` is, in words a person can look it up by."""
    kind, config = depot["type"], depot["config"]
    if kind == "local":
        base = scratch_folder(config["path"], prerun)
        parts = [base] + ([] if address["collection"] == "none" else [address["collection"]]) + [address["dataset"]]
        return "/".join(parts)
    if kind == "s3":
        base = scratch_prefix(config.get("prefix") or "", prerun)
        parts = [base] + ([] if address["collection"] == "none" else [address["collection"]]) + [address["dataset"]]
        return f"s3://{config['bucket']}/" + "/".join(parts)
    return f"{address['depot']}: {scratch_schema(prerun)}.{scratch_table(address['collection'], address['dataset'])}"


def _key(address: Mapping[str, Any]) -> str:
    return f"dataos://{address['depot']}:{address['collection']}/{address['dataset']}"


def _scratch_depot(depot: Mapping[str, Any], prerun: str) -> dict[str, Any]:
    config = dict(depot["config"])
    if depot["type"] == "local":
        config["path"] = scratch_folder(config["path"], prerun)
    else:
        config["prefix"] = scratch_prefix(config.get("prefix") or "", prerun)
    return {**depot, "config": config}


def _redirect(
    spec: Mapping[str, Any], depots: dict[str, Any], prerun: str, scratch_depots: dict[str, str]
) -> dict[str, Any]:
    """One input or output spec pointed at its scratch copy (``scratch_depots``: file depot -> its scratch key)."""
    address = dict(spec["dataset"])
    depot = depots[address["depot"]]
    label = scratch_label(depot, address, prerun)
    if depot["type"] in _FILE_DEPOTS:
        address["depot"] = scratch_depots.setdefault(address["depot"], f"_prerun_{address['depot']}")
    else:  # one database attached once: the same depot, another schema
        address["collection"], address["dataset"] = (
            scratch_schema(prerun),
            scratch_table(address["collection"], address["dataset"]),
        )
    return {**spec, "dataset": address, "scratch": label}


def scratch_pipeline(
    pipeline: Mapping[str, Any], depots: Mapping[str, Any], prerun: str, written: Iterable[str] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pipeline with every output (and every input in ``written``, dataset keys the pre-run writes upstream)
    pointed at its depot's scratch namespace, and the depots it then names."""
    upstream = set(written)
    all_depots = dict(depots)
    scratch_depots: dict[str, str] = {}
    outputs = [_redirect(x, all_depots, prerun, scratch_depots) for x in pipeline["outputs"]]
    inputs = [
        _redirect(x, all_depots, prerun, scratch_depots) if _key(x["dataset"]) in upstream else dict(x)
        for x in pipeline["inputs"]
    ]
    for real, key in scratch_depots.items():
        all_depots[key] = _scratch_depot(depots[real], prerun)
    return {**pipeline, "inputs": inputs, "outputs": outputs}, all_depots

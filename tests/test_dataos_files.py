"""DataOS files kept whole: the seed YAML verbatim shows its titles (on definitions and runs) and stack, logLevel
sets the runner's verbosity, temporaryBucket is reported as ignored, an unknown stack is refused in one line."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import yaml

from queue_core import Client
from tests.support.paths import EXAMPLES
from tests.support.processes import Procs

SEED = EXAMPLES / "pipelines" / "bq-write-01.yaml"  # the DataOS seed's YAML, verbatim


def test_the_dataos_seed_keeps_its_titles_stack_and_log_level_and_says_temporary_bucket_is_ignored(
    tmp_path: Path, procs: Procs, redis_url: str, client: Client
):
    procs.fleet(redis_url, cluster="runnable-default")
    lake = tmp_path / "thirdparty"
    shutil.copytree(EXAMPLES / "pipelines" / "depot", lake)
    assert procs.cli("depot", "add", "thirdparty01", "--type", "local", "--path", str(lake)).returncode == 0
    assert procs.cli("depot", "add", "bqdepot", "--type", "duckdb", "--path", str(tmp_path / "bq.db")).returncode == 0
    applied = procs.cli("workflow", "apply", str(SEED))
    assert applied.returncode == 0, applied.stderr
    shown = procs.cli("workflow", "show", "bq-write-01").stdout
    assert "Write bq" in shown and "City write bq" in shown
    spec = json.loads(procs.cli("workflow", "show", "bq-write-01", "--json").stdout)["versions"][-1]["spec"]
    task = spec["tasks"]["city-write-bq-01"]
    assert (spec["title"], task["title"], task["stack"]) == ("Write bq", "City write bq", "flare:7.0")
    assert task["description"] == "This job reads data from Azure and writes to BigQuery"
    assert procs.cli("define", str(SEED)).returncode == 0
    shown_definition = procs.cli("definitions", "show", "city-write-bq-01", "--json").stdout
    defined = json.loads(shown_definition)["versions"][-1]["spec"]
    assert (defined["title"], defined["stack"]) == ("City write bq", "flare:7.0")
    submitted = client.submit("city-write-bq-01")  # a run of the definition carries its title
    assert client.get_run(submitted)["title"] == "City write bq"
    assert re.search(r"^title +City write bq$", procs.cli("status", submitted).stdout, re.M)
    assert client.wait(submitted, timeout=60)["status"] == "SUCCEEDED"  # before the workflow writes the same table

    def run_at(level: str) -> list[str]:
        doc = yaml.safe_load(SEED.read_text())
        doc["workflow"]["dag"][0]["spec"]["stackSpec"]["job"]["logLevel"] = level
        path = tmp_path / f"{level}.yaml"
        path.write_text(yaml.safe_dump(doc))
        assert procs.cli("workflow", "apply", str(path)).returncode == 0
        view = client.wait_workflow_run(client.run_workflow("bq-write-01"), timeout=60)
        assert view["status"] == "SUCCEEDED", view
        return [line.line for line in client.logs(view["tasks"]["city-write-bq-01"]["run"])]

    info = run_at("INFO")
    ran = client.list_workflow_runs("bq-write-01")[0]["id"]  # the runs carry the titles too
    status = procs.cli("workflow", "status", ran).stdout
    assert "title: Write bq" in status and 'city-write-bq-01  "City write bq"  SUCCEEDED' in status
    view = client.get_workflow_run(ran)
    assert (view["title"], view["tasks"]["city-write-bq-01"]["title"]) == ("Write bq", "City write bq")
    task_run = client.get_run(view["tasks"]["city-write-bq-01"]["run"])
    assert (task_run["title"], task_run["workflow_title"]) == ("City write bq", "Write bq")
    assert any("bigquery.temporaryBucket is ignored" in line for line in info)
    assert any("10 rows written" in line for line in info) and any("plan of step" in line for line in info)
    assert not any(line.startswith("step finalDf:") for line in info)
    debug = run_at("DEBUG")
    assert "step finalDf: SELECT * FROM city_connect LIMIT 10" in debug
    warn = run_at("WARN")
    assert not any("rows written" in line or "plan of step" in line for line in warn)
    assert any("temporaryBucket is ignored" in line for line in warn)  # a warning still

    doc = yaml.safe_load(SEED.read_text())
    doc["workflow"]["dag"][0]["spec"]["stack"] = "spark:3.0"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(doc))
    refused = procs.cli("workflow", "apply", str(tmp_path / "bad.yaml"))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "workflow.dag[0].spec.stack: stack 'spark:3.0' is not supported; use one of flare:6.0, flare:7.0" in (
        refused.stderr
    )

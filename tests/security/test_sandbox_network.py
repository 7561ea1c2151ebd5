"""``network: none`` in a definition: validated, and kept through define, show, export and import."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support.jobs import definition
from tests.support.processes import Procs
from tests.support.redis_server import RedisServer


def _file(tmp_path: Path, network: object) -> Path:
    raw = definition("offline", "job.sh")
    raw["config"]["network"] = network
    path = tmp_path / "offline.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_network_none_round_trips_through_define_show_export_and_import(
    tmp_path: Path, procs: Procs, fresh: RedisServer
):
    assert procs.cli("define", str(_file(tmp_path, "none"))).returncode == 0
    shown = procs.cli("definitions", "show", "offline")
    assert shown.returncode == 0 and "network" in shown.stdout and "none" in shown.stdout
    exported = tmp_path / "log.export"
    assert procs.cli("export", str(exported)).returncode == 0
    procs.env = {**procs.env, "REDIS_URL": fresh.url, "JOBLEDGER_HOME": str(tmp_path / "other-home")}
    assert procs.cli("import", str(exported)).returncode == 0
    again = procs.cli("definitions", "show", "offline")
    assert again.stdout == shown.stdout
    assert "unchanged" in procs.cli("define", str(_file(tmp_path, "none"))).stdout


def test_any_other_network_value_is_a_one_line_error_exit_2_and_nothing_is_appended(tmp_path: Path, procs: Procs):
    for value in ("host", "None", "", 0, ["none"]):
        done = procs.cli("define", str(_file(tmp_path, value)))
        assert done.returncode == 2, done
        assert done.stderr.strip().count("\n") == 0 and "config.network" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert procs.cli("events", "--limit", "5").stdout.strip() in ("", "no events")

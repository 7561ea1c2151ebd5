"""The Grafana dashboard shipped in ``deploy/grafana``: every query names a metric ``jobledger metrics`` exports."""

from __future__ import annotations

import re

import orjson
from prometheus_client import generate_latest

from queue_core import Client
from queue_core.console.prometheus import LogCollector, registry_for
from tests.support.paths import REPO
from tests.support.workload import mixed_workload, schedule_workload, workflow_workload

DASHBOARD = REPO / "deploy" / "grafana" / "jobledger.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def _exported(client: Client) -> set[str]:
    """The series names the exporter writes, from its ``# TYPE`` lines (so a histogram with no sample counts)."""
    text = generate_latest(registry_for(LogCollector(client.store))).decode()
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\w+)$", text, re.M):
        names |= {name.removesuffix("_total") + suffix for suffix in SUFFIXES[kind]}
    return names


def test_every_dashboard_query_names_a_metric_the_project_exports(client: Client):
    mixed_workload(client)
    workflow_workload(client)
    schedule_workload(client)
    dashboard = orjson.loads(DASHBOARD.read_bytes())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(queries) >= 10 and dashboard["uid"] == "jobledger"
    exported = _exported(client)
    for query in queries:
        named = set(re.findall(r"\bjobledger_\w+", query))
        assert named and named <= exported, (query, named - exported)
    covered = " ".join(queries)
    for metric in ("jobledger_attempts_total", "jobledger_queue_depth", "jobledger_schedule_lateness_seconds_bucket",
                   "jobledger_run_duration_seconds_bucket"):  # fmt: skip
        assert metric in covered  # throughput, failures by reason, depth, lateness, durations

"""deploy/sentinel/compose.yaml, read: a primary, a replica and three sentinels (quorum 2) watching it, the jobledger
processes reaching the store only through the sentinels, with replicated durability, every variable they are given
one jobledger reads, and the workers' command the plain fleet command.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from queue_core import Settings
from queue_core.cli.fleet import fleet_command
from tests.support.paths import REPO

COMPOSE = REPO / "deploy" / "sentinel" / "compose.yaml"
JOBLEDGER = ("scheduler", "worker", "console", "metrics")
SENTINELS = ("sentinel-1", "sentinel-2", "sentinel-3")
SOURCES = ("queue_core", "workers", "scheduler")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def variables_read() -> set[str]:
    """Every environment variable name jobledger's code spells out."""
    names: set[str] = set()
    for folder in SOURCES:
        for path in (REPO / folder).rglob("*.py"):
            names.update(re.findall(r"\"((?:JOBLEDGER|REDIS)_[A-Z_]+)\"", path.read_text()))
    return names


def command(service: dict[str, Any]) -> str:
    return " ".join(service["command"])


def test_the_data_nodes_and_three_sentinels_with_a_quorum_of_two(services: dict[str, Any]):
    assert {"primary", "replica", *SENTINELS, *JOBLEDGER} <= set(services)
    assert "--min-replicas-to-write 1" in command(services["primary"])
    assert "--replicaof primary 6379" in command(services["replica"])
    for name in ("primary", "replica"):
        assert "--appendonly yes" in command(services[name]) and "--maxmemory-policy noeviction" in command(
            services[name]
        )
    for name in SENTINELS:
        text = command(services[name])
        assert "sentinel monitor jobledger primary 6379 2" in text and "--sentinel" in text
        assert "sentinel auth-pass jobledger %s" in text  # from the secret, through printf: on no command line


def test_the_jobledger_processes_reach_the_store_through_the_sentinels_only(services: dict[str, Any]):
    known = variables_read()
    for name in JOBLEDGER:
        env = {key: str(value) for key, value in services[name]["environment"].items()}
        assert "REDIS_URL" not in env
        assert set(env) <= known, set(env) - known
        settings = Settings.from_env(env)
        assert [host for host, _ in settings.sentinel_addresses] == list(SENTINELS)
        assert settings.sentinel_master == "jobledger" and settings.replicas_to_wait == 1
        secrets = set(services[name]["secrets"])
        for path in (env["REDIS_PASSWORD_FILE"], env["JOBLEDGER_SENTINEL_PASSWORD_FILE"]):
            assert path.removeprefix("/run/secrets/") in secrets
    assert services["worker"]["command"] == fleet_command(None, "default")

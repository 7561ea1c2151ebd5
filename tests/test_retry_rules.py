"""Retry rules and backoff end to end: real workers, exit codes and output deciding retries, delays as recorded."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from queue_core import Client, InvalidInput
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs


def ruled(
    name: str, location: str, retries: int, delay: float = 0.0, timeout: float = 0.5, **strategy: Any
) -> dict[str, Any]:
    raw = definition(name, location, retries=retries, delay=delay, timeout=timeout)
    raw["config"]["retryStrategy"].update(strategy)
    return raw


def parsed(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_exit_3_is_retried_and_exit_4_is_not_by_rule(client: Client, workspace: Path, fleet: Procs):
    job_file(workspace, "code.sh", 'echo "exiting $1"; exit "$1"\n')
    rules = [{"onExitCode": [4], "action": "EXIT"}, {"onExitCode": ["3"], "action": "RETRY"}]
    client.define(ruled("coded", "code.sh", retries=1, rules=rules))
    three, four = client.submit("coded", args="3"), client.submit("coded", args="4")
    run = client.wait(three, timeout=30)
    assert [a["exit_code"] for a in run["attempts"]] == [3, 3]
    assert (run["status"], run["retry_rule"]) == ("FAILED", 1)
    run = client.wait(four, timeout=30)
    assert [a["exit_code"] for a in run["attempts"]] == [4]
    assert (run["status"], run["reason"], run["retry_rule"]) == ("FAILED", "NonZeroExitCode", 0)
    assert client.run_detail(four)["message"] == "exit code 4; not retried: retryStrategy.rules[0] says EXIT"
    shown = fleet.cli("status", four)
    assert shown.returncode == 0 and "decided by  retryStrategy.rules[0]" in shown.stdout


def test_a_line_of_output_matching_a_rule_is_recorded_and_decides(client: Client, workspace: Path, fleet: Procs):
    job_file(
        workspace, "oom.sh", 'echo "step 1"; [ "$1" = oom ] && echo "java.lang.OutOfMemoryError: heap" >&2; exit 1\n'
    )
    rules = [{"onLogMatch": "OutOfMemory(Error)?", "action": "EXIT"}]
    client.define(ruled("oom", "oom.sh", retries=1, rules=rules))
    matched, other = client.submit("oom", args="oom"), client.submit("oom", args="fine")
    assert [a["status"] for a in client.wait(matched, timeout=30)["attempts"]] == ["FAILED"]
    assert [a["status"] for a in client.wait(other, timeout=30)["attempts"]] == ["FAILED", "FAILED"]
    assert [e.event.log_matches for e in client.events(aggregate=matched, type="RunAttemptFailed")] == [[0]]
    assert [e.event.log_matches for e in client.events(aggregate=other, type="RunAttemptFailed")] == [[], []]
    assert "rules[0] says EXIT" in client.run_detail(matched)["message"]


def test_a_reason_rule_retries_a_timeout_that_retry_on_timeout_would_not(client: Client, workspace: Path, fleet: Procs):
    job_file(workspace, "slow.sh", "sleep 30\n")
    client.define(
        ruled("slow", "slow.sh", retries=1, timeout=0.01, rules=[{"onReason": "Timeout|WorkerLost", "action": "RETRY"}])
    )
    run = client.wait(client.submit("slow"), timeout=30)
    assert [a["reason"] for a in run["attempts"]] == ["Timeout", "Timeout"]
    assert (run["status"], run["retry_rule"]) == ("FAILED", 0)


def test_exponential_backoff_is_the_delay_recorded_on_each_retry(client: Client, workspace: Path, fleet: Procs):
    job_file(workspace, "fail.sh", "exit 1\n")
    backoff = {"type": "exponential", "factor": 2, "max": 0.003}
    client.define(ruled("backing-off", "fail.sh", retries=2, delay=0.002, backoff=backoff))
    run_id = client.submit("backing-off")
    run = client.wait(run_id, timeout=30)
    assert [a["status"] for a in run["attempts"]] == ["FAILED"] * 3
    retries = [rec.event for rec in client.events(aggregate=run_id, type="RunRetryScheduled")]
    assert [r.delay_minutes for r in retries] == [0.002, 0.003]  # 0.004 capped by max
    # Each retry's not_before is its delay after its attempt failed (the decision's own clock, never earlier
    # than the attempt's start), and the next attempt started no earlier.
    for retry, failed, following in zip(retries, run["attempts"], run["attempts"][1:], strict=False):
        not_before = parsed(retry.not_before)
        assert not_before >= parsed(failed["started_at"]) + timedelta(minutes=retry.delay_minutes)
        assert parsed(following["started_at"]) >= not_before


BAD = [
    ({"rules": [{"onLogMatch": "([a-z", "action": "EXIT"}]}, "config.retryStrategy.rules[0].onLogMatch"),
    ({"rules": [{"onReason": "*Timeout", "action": "EXIT"}]}, "config.retryStrategy.rules[0].onReason"),
    ({"rules": [{"onExitCode": [3], "action": "STOP"}]}, "config.retryStrategy.rules[0].action"),
    ({"rules": [{"onExitCode": [3]}]}, "config.retryStrategy.rules[0].action"),
    ({"rules": [{"action": "EXIT"}]}, "config.retryStrategy.rules[0]"),
    ({"rules": [{"onExitCode": [256], "action": "EXIT"}]}, "config.retryStrategy.rules[0].onExitCode"),
    ({"rules": [{"onExitCode": ["x*"], "action": "EXIT"}]}, "config.retryStrategy.rules[0].onExitCode"),
    ({"rules": [{"onExitCode": [3], "action": "EXIT", "onStatus": "x"}]}, "config.retryStrategy.rules[0].onStatus"),
    ({"rules": []}, "config.retryStrategy.rules"),
    ({"backoff": {"type": "linear"}}, "config.retryStrategy.backoff.type"),
    ({"backoff": {"type": "exponential", "factor": 0.5}}, "config.retryStrategy.backoff.factor"),
    ({"backoff": {"type": "exponential", "factor": 11}}, "config.retryStrategy.backoff.factor"),
    ({"backoff": {"type": "fixed", "factor": 2}}, "config.retryStrategy.backoff.factor"),
    ({"backoff": {"type": "fixed", "max": 0}}, "config.retryStrategy.backoff.max"),
    ({"backoff": {"type": "fixed", "max": 24 * 60 + 1}}, "config.retryStrategy.backoff.max"),
    ({"backoff": {"type": "fixed", "jitter": "yes"}}, "config.retryStrategy.backoff.jitter"),
]


@pytest.mark.parametrize(("strategy", "field"), BAD, ids=[f"{i}-{b[1].rsplit('.', 1)[-1]}" for i, b in enumerate(BAD)])
def test_a_bad_rule_or_backoff_is_refused_naming_its_field_with_nothing_appended(
    client: Client, workspace: Path, strategy: dict[str, Any], field: str
):
    before = len(client.events())
    with pytest.raises(InvalidInput) as refused:
        client.define(ruled("bad", "x.sh", retries=1, **strategy))
    assert refused.value.field == field
    assert len(client.events()) == before


def test_the_cli_refuses_a_bad_regex_in_one_line_with_exit_2(client: Client, procs: Procs, tmp_path: Path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(ruled("bad", "x.sh", retries=1, rules=[{"onLogMatch": "(", "action": "EXIT"}])))
    before = len(client.events())
    done = procs.cli("define", str(path))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "config.retryStrategy.rules[0].onLogMatch" in done.stderr
    assert "regular expression" in done.stderr
    assert len(client.events()) == before

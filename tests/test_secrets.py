"""Secrets: set from stdin, listed by name, deleted; values outside the log and masked wherever they could show."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import structlog

from queue_core import Client, InvalidInput
from queue_core.domain.secrets import secret_refs
from queue_core.errors import Remedy
from queue_core.keys import Keys
from queue_core.logging import configure_logging
from queue_core.masking import Masker, masking
from queue_core.secret_cipher import sealed_key_id
from tests.support.jobs import definition, job_file
from tests.support.leaks import assert_nowhere, files_under
from tests.support.processes import Procs

API_KEY = "sk-test-4f1c9a0b7e2d"


@pytest.fixture(autouse=True)
def no_leak(connection: redis.Redis, tmp_path: Path) -> Iterator[None]:
    yield
    assert_nowhere([API_KEY], connection, files_under(tmp_path / "logs", tmp_path / "home"))


def test_secret_set_reads_stdin_and_the_log_records_only_the_name(client: Client, procs: Procs):
    result = procs.cli("secret", "set", "api-key", input=API_KEY + "\n")
    assert result.returncode == 0, result.stderr
    assert client.secrets.resolve(["api-key"]) == {"api-key": API_KEY}  # the trailing newline is dropped
    listed = procs.cli("secret", "list", "--json")
    assert json.loads(listed.stdout) == ["api-key"]
    events = procs.cli("events", "--json")
    assert [(e["type"], e["aggregate"], e["data"]) for e in json.loads(events.stdout)] == [
        ("SecretSet", "secret:api-key", {"name": "api-key"})
    ]
    assert_nowhere([API_KEY], client.redis, [], [result.stdout, result.stderr, listed.stdout, events.stdout])


def test_secret_set_takes_no_value_as_an_argument(client: Client, procs: Procs):
    result = procs.cli("secret", "set", "api-key", API_KEY)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert client.store.length() == 0
    assert client.list_secrets() == []


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["secret", "set", "bad name"], "x", "'bad name' is not a valid name"),
    (["secret", "set", "empty"], "", "the secret value is empty"),
    (["secret", "delete", "nothing"], None, "no secret named 'nothing'"),
])  # fmt: skip
def test_bad_secret_commands_are_one_line_errors_that_append_nothing(
    args: list[str], stdin: str | None, message: str, client: Client, procs: Procs
):
    result = procs.cli(*args, input=stdin)
    assert (result.returncode, result.stderr.count("\n")) == (2, 1), result.stderr
    assert message in result.stderr
    assert client.store.length() == 0


def test_secret_delete_forgets_the_value_and_records_the_deletion(client: Client, procs: Procs):
    client.set_secret("api-key", API_KEY)
    assert procs.cli("secret", "delete", "api-key").returncode == 0
    assert client.list_secrets() == []
    assert [rec.type for rec in client.events(aggregate="secret:api-key")] == ["SecretSet", "SecretDeleted"]


def test_a_definition_with_a_literal_token_is_refused_saying_how_to_store_it(
    client: Client, procs: Procs, tmp_path: Path
):
    raw = {
        "name": "leaky",
        "config": {
            "source": {"type": "GIT", "sourceDef": {"repoUrl": "https://example.com/r.git", "token": API_KEY}},
            "type": "SHELL",
            "sourceLocation": "run.sh",
        },
    }
    with pytest.raises(InvalidInput, match="store it as a secret") as refused:  # the core names no command
        client.define(raw)
    assert refused.value.remedy is Remedy.STORE_SECRET and "jobledger" not in str(refused.value)
    path = tmp_path / "leaky.json"
    path.write_text(json.dumps(raw))
    result = procs.cli("define", str(path))
    assert result.returncode == 2
    assert "jobledger secret set" in result.stderr and API_KEY not in result.stderr
    assert client.store.length() == 0
    path.unlink()


def test_the_masker_hides_values_and_their_url_encoded_forms():
    masker = Masker(["p@ss word/1", "abc"])
    text = "user:p@ss word/1 url=https://u:p%40ss%20word%2F1@h form=p%40ss+word%2F1 abcd"
    assert masker.mask(text) == "user:*** url=https://u:***@h form=*** ***d"
    assert masker.mask_value({"k": ["abc", ("abc",)], "n": 1}) == {"k": ["***", ("***",)], "n": 1}


def test_structlog_and_stdlib_log_lines_are_masked_while_an_attempt_runs(capsys: pytest.CaptureFixture[str]):
    configure_logging()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    stdlib = logging.getLogger("test.masking")
    stdlib.addHandler(handler)
    try:
        with masking([API_KEY]):
            structlog.get_logger("test").warning("connect failed", url=f"https://x:{API_KEY}@h", detail=[API_KEY])
            stdlib.warning("botocore said %s", API_KEY)
        stdlib.warning("after: %s", "plain")
    finally:
        stdlib.removeHandler(handler)
    err = capsys.readouterr().err
    assert API_KEY not in err and "https://x:***@h" in err
    assert stream.getvalue().splitlines() == ["botocore said ***", "after: plain"]


def test_a_job_that_prints_a_secret_from_its_env_shows_stars_in_its_log(
    client: Client, workspace: Path, procs: Procs, redis_url: str
):
    client.set_secret("api-key", API_KEY)
    job_file(workspace, "echo.sh", 'echo "key=$API_KEY"; echo "$API_KEY" >&2; exit 3\n')
    raw = definition("echo-secret", "echo.sh")
    raw["config"]["envVars"] = {"API_KEY": {"secret": "api-key"}, "MODE": "x"}
    client.define(raw)
    procs.fleet(redis_url)
    run_id = client.submit("echo-secret")
    run = client.wait(run_id, timeout=30)
    assert (run["status"], run["exit_code"]) == ("FAILED", 3)
    assert [(line.stream, line.line) for line in client.logs(run_id)] == [("stdout", "key=***"), ("stderr", "***")]
    outputs = [procs.cli(*args).stdout for args in (["status", run_id], ["logs", run_id], ["events"])]
    assert_nowhere([API_KEY], client.redis, [], outputs)


def test_a_run_whose_secret_is_not_set_fails_source_unavailable_naming_it(
    client: Client, workspace: Path, procs: Procs, redis_url: str
):
    job_file(workspace, "echo.sh", "echo $K\n")
    raw = definition("unset-secret", "echo.sh")
    raw["config"]["envVars"] = {"K": {"secret": "never-set"}}
    client.define(raw)
    procs.fleet(redis_url)
    run = client.wait(client.submit("unset-secret"), timeout=30)
    assert (run["status"], run["reason"]) == ("FAILED", "SourceUnavailable")
    assert any("never-set" in line.line for line in client.logs(run["id"]))


def test_secret_refs_walks_a_spec_nested_100000_deep_without_recursion():
    spec: object = {"secret": "deepest"}
    for depth in range(100_000):
        spec = {"level": [spec, {"secret": f"at-{depth}"}]} if depth % 50_000 == 0 else {"level": [spec]}
    assert secret_refs(spec) == ["deepest", "at-0", "at-50000"]
    assert secret_refs({"a": {"secret": "x"}, "b": [{"secret": "y"}, {"secret": 1}], "c": {"secret": "z", "k": 1}}) == [
        "x",
        "y",
    ]


def test_values_stored_in_plaintext_by_an_earlier_version_are_sealed_at_the_next_set(
    client: Client, connection: redis.Redis, capsys: pytest.CaptureFixture[str]
):
    configure_logging()
    connection.hset(Keys().secrets, "old-one", API_KEY)  # how versions before encryption stored a value
    assert client.secrets.resolve(["old-one"]) == {"old-one": API_KEY}  # still resolves meanwhile, not silently
    assert "stored in plaintext" in capsys.readouterr().err
    client.set_secret("new-one", "another value")
    stored: dict[bytes, bytes] = connection.hgetall(Keys().secrets)  # type: ignore[assignment]
    kid = stored.pop(b"@key").decode()
    assert stored.pop(b"@sealed") == b"1"  # no plaintext value left
    assert {name: sealed_key_id(value) for name, value in stored.items()} == {b"old-one": kid, b"new-one": kid}
    assert API_KEY.encode() not in b"".join(stored.values())
    assert Client(settings=client.settings).secrets.resolve(["old-one"]) == {"old-one": API_KEY}


def test_rotate_key_seals_plaintext_values_of_an_earlier_version_too(
    client: Client, connection: redis.Redis, procs: Procs
):
    connection.hset(Keys().secrets, "old-one", API_KEY)
    assert procs.cli("secret", "rotate-key").returncode == 0
    stored: dict[bytes, bytes] = connection.hgetall(Keys().secrets)  # type: ignore[assignment]
    assert sealed_key_id(stored[b"old-one"]) == stored[b"@key"].decode()
    assert client.secrets.resolve(["old-one"]) == {"old-one": API_KEY}


def test_a_machine_without_the_stores_key_creates_none_and_is_told_which_key_it_lacks(
    client: Client, procs: Procs, tmp_path: Path
):
    client.set_secret("api-key", API_KEY)
    kid = client.secrets.store_key_id()
    other_home = tmp_path / "other-machine"
    result = subprocess.run(
        [sys.executable, "-m", "queue_core", "secret", "set", "second"],
        env={**procs.env, "JOBLEDGER_HOME": str(other_home)},
        input="x" * 10,
        capture_output=True,
        text=True,
    )
    assert (result.returncode, result.stderr.count("\n")) == (2, 1), result.stderr
    assert f"key {kid}" in result.stderr and "JOBLEDGER_SECRET_KEY_FILE" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (other_home / "keys" / "secret.key").exists()
    assert client.list_secrets() == ["api-key"]
    assert [rec.type for rec in client.events()] == ["SecretSet"]


def test_a_sealed_value_moved_to_another_name_does_not_open(client: Client, connection: redis.Redis):
    client.set_secret("api-key", API_KEY)
    sealed = connection.hget(Keys().secrets, "api-key")
    connection.hset(Keys().secrets, "public-banner", sealed)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="'public-banner' fails its authentication"):
        client.secrets.resolve(["public-banner"])


def test_an_upgrade_cut_short_after_the_claim_is_finished_by_the_next_set(client: Client, connection: redis.Redis):
    client.set_secret("first", "first value")
    # The state a crash leaves between claiming an old store and sealing its plaintext values.
    connection.hdel(Keys().secrets, "@sealed")
    connection.hset(Keys().secrets, "old-one", API_KEY)
    client.set_secret("second", "second value")
    stored: dict[bytes, bytes] = connection.hgetall(Keys().secrets)  # type: ignore[assignment]
    assert sealed_key_id(stored[b"old-one"]) == stored[b"@key"].decode() and stored[b"@sealed"] == b"1"
    assert client.secrets.resolve(["old-one", "first"]) == {"old-one": API_KEY, "first": "first value"}


def test_a_value_that_is_not_utf8_text_is_refused_through_the_python_api(client):
    before = len(client.events())
    with pytest.raises(InvalidInput, match="not UTF-8 text"):
        client.set_secret("binary", "\udcff\udcfe token")
    assert len(client.events()) == before

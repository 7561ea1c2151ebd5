"""EXTERNAL_APP tasks against a real local HTTP server: started with a secret header, polled until done or failed;
bad apps refused in one line; the JSONPath subset."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from queue_core import Client
from queue_core.errors import InvalidInput
from queue_core.specs.definitions import normalize_definition
from queue_core.specs.jsonpath import MISSING, find, parse_path
from tests.support.processes import Procs

TOKEN = "tok-3f9c1e77d2"


class FakeApp(BaseHTTPRequestHandler):
    """POST /jobs starts a job (its name from the body) if the bearer token is right; GET /jobs/ID says RUNNING
    on the first poll, then DONE, or FAILED for a job named ``bad``."""

    polls: dict[str, int] = {}
    seen: list[dict[str, Any]] = []
    prerun: list[str | None] = []  # each start's X-Jobledger-Prerun header

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append({"auth": self.headers["Authorization"], "body": body})
        self.prerun.append(self.headers["X-Jobledger-Prerun"])  # None when the header is not sent
        if self.headers["Authorization"] != f"Bearer {TOKEN}":
            self._answer(401, {"error": "bad token"})
            return
        self.polls[body["job"]] = 0
        self._answer(202, {"id": body["job"], "state": "STARTED", "echo": body["key"]})

    def do_GET(self) -> None:
        job = self.path.rsplit("/", 1)[-1]
        self.polls[job] += 1
        state = "FAILED" if job == "bad" else ("RUNNING" if self.polls[job] < 2 else "DONE")
        self._answer(200, {"job": {"state": state, "polls": self.polls[job]}})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def app_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def app_definition(name: str, url: str, job: str) -> dict[str, Any]:
    return {
        "name": name,
        "config": {
            "type": "EXTERNAL_APP",
            "timeout": 1,
            "app": {
                "start": {
                    "method": "POST",
                    "url": f"{url}/jobs",
                    "headers": {"Authorization": {"secret": "app-token"}},
                    "body": {"job": job, "key": {"secret": "app-key"}},
                },
                "poll": {
                    "url": url + "/jobs/{{ $.id }}",
                    "interval": 0.2,
                    "timeout": 30,
                    "doneWhen": {"path": "$.job.state", "equals": "DONE"},
                    "failedWhen": {"path": "$.job.state", "in": ["FAILED", "ERROR"]},
                },
            },
        },
        "cluster": {"name": "default"},
    }


@pytest.mark.usefixtures("fleet")
def test_an_external_app_is_started_then_polled_until_done_or_failed_and_no_secret_is_logged(
    client: Client, app_url: str, procs: Procs, tmp_path: Path
):
    client.set_secret("app-token", f"Bearer {TOKEN}")
    client.set_secret("app-key", "k-5510aa")
    client.define(app_definition("good-app", app_url, "nightly"))
    client.define(app_definition("bad-app", app_url, "bad"))
    good = client.wait(client.submit("good-app"), timeout=60)
    assert good["status"] == "SUCCEEDED", good
    assert good["result"]["app"] == {"start": 202, "polls": 2, "last": 200}
    assert FakeApp.seen[0] == {"auth": f"Bearer {TOKEN}", "body": {"job": "nightly", "key": "k-5510aa"}}
    lines = [line.line for line in client.logs(good["id"])]
    assert any(line.startswith(f"start: POST {app_url}/jobs -> 202") for line in lines)
    assert any("poll 1: GET" in line and '"RUNNING"' in line for line in lines)
    assert any("done after 2 polls" in line for line in lines)
    bad = client.wait(client.submit("bad-app"), timeout=60)
    assert (bad["status"], bad["reason"]) == ("FAILED", "NonZeroExitCode")
    assert any("poll 1: the application says it failed (200)" in line.line for line in client.logs(bad["id"]))
    shown = procs.cli("logs", good["id"]).stdout + procs.cli("status", bad["id"], "--json").stdout
    everything = shown + "".join(r.line for r in client.logs(good["id"]))
    assert TOKEN not in everything and "k-5510aa" not in everything  # the echo of the key came back masked
    # A secret that is not set, a URL that is not http(s): one line, exit 2, nothing appended.
    before = client.store.last_position()
    for raw, said in (
        (app_definition("no-secret", app_url, "x"), "no secret named 'app-key'"),
        ({**app_definition("ftp", "ftp://example.org", "x")}, "config.app.start.url: must be an http:// or https://"),
    ):
        if raw["name"] == "no-secret":
            client.delete_secret("app-key")
        path = tmp_path / f"{raw['name']}.json"
        path.write_text(json.dumps(raw))
        refused = procs.cli("define", str(path))
        assert refused.returncode == 2 and said in refused.stderr and refused.stderr.count("\n") == 1, refused.stderr
    assert [r.type for r in client.events(since=before)][1:] == ["SecretDeleted"]  # and nothing after it


@pytest.mark.usefixtures("fleet")
def test_an_enos_external_app_task_runs_from_its_file_and_is_told_when_it_is_a_prerun(
    client: Client, app_url: str, procs: Procs, tmp_path: Path
):
    client.set_secret("app-token", f"Bearer {TOKEN}")
    client.set_secret("app-key", "k-5510aa")
    app = app_definition("x", app_url, "enos-nightly")["config"]["app"]
    enos = {
        "name": "enos-app",
        "tasks": [{"name": "call", "type": "EXTERNAL_APP", "app": app}],
    }
    path = tmp_path / "enos-app.yaml"
    path.write_text(yaml.safe_dump(enos))
    applied = procs.cli("workflow", "apply", str(path))
    assert applied.returncode == 0, applied.stderr
    FakeApp.seen.clear()
    FakeApp.prerun.clear()
    view = client.wait_workflow_run(client.run_workflow("enos-app"), timeout=60)
    assert view["status"] == "SUCCEEDED", view
    assert client.get_run(view["tasks"]["call"]["run"])["result"]["app"] == {"start": 202, "polls": 2, "last": 200}
    done = procs.cli("workflow", "prerun", "enos-app", "--wait", "--timeout", "60")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [s["body"]["job"] for s in FakeApp.seen] == ["enos-nightly", "enos-nightly"]
    assert FakeApp.prerun == [None, "1"]  # the real run's start said nothing, the pre-run's said so


@pytest.mark.parametrize(
    ("path", "document", "value"),
    [
        ("$.state", {"state": "DONE"}, "DONE"),
        ("$.jobs[0].state", {"jobs": [{"state": 1}]}, 1),
        ("$.jobs[-1]['run-id']", {"jobs": [{}, {"run-id": "r"}]}, "r"),
        ("$", [1], [1]),
        ("$.missing", {"state": 1}, MISSING),
        ("$.jobs[3]", {"jobs": []}, MISSING),
    ],
)
def test_the_jsonpath_subset_finds_values(path: str, document: Any, value: Any):
    assert find(document, parse_path(path, "path")) == value


@pytest.mark.parametrize(
    ("app", "said"),
    [
        ({"start": {"url": "file:///etc/passwd"}}, "config.app.start.url: must be an http:// or https:// URL"),
        ({"start": {"url": "http://u:pw@h/x"}}, "config.app.start.url: carries a credential"),
        ({"start": {"url": "http://h/x", "headers": {"A": "x\ny"}}}, "config.app.start.headers.A"),
        ({"start": {"url": "http://h/x"}, "poll": {"url": "http://h/{{ $..id }}", "doneWhen": {"status": 200}}},
         "config.app.poll.url (placeholder 1): a recursive descent is not in the JSONPath subset"),
        ({"start": {"url": "http://h/x"}, "poll": {"url": "http://h/y"}}, "config.app.poll.doneWhen: is required"),
        ({"start": {"url": "http://h/x"},
          "poll": {"url": "http://h/y", "doneWhen": {"path": "$[?(@.a)]", "equals": 1}}},
         "config.app.poll.doneWhen.path: a filter is not in the JSONPath subset"),
        ({"start": {"url": "http://h/x", "method": "BREW"}}, "config.app.start.method"),
    ],
)  # fmt: skip
def test_a_bad_app_is_refused_naming_the_field(app: dict[str, Any], said: str):
    with pytest.raises(InvalidInput) as caught:
        normalize_definition({"name": "a", "config": {"type": "EXTERNAL_APP", "app": app}})
    assert said in str(caught.value) and "\n" not in str(caught.value)

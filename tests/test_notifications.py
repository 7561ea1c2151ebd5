"""Notifications end to end: a real scheduler's notifier, real workers, a real HTTP server and a real SMTP server."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from queue_core import Client, InvalidInput
from queue_core.eventlog.events import NewEvent, NotificationDue
from scheduler.notify_senders import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verify_signature
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually
from tests.support.receivers import smtp_server, webhook_receiver

SECRET = "whsec-7f3a91c2-do-not-leak"
JOB_SECRET = "job-password-5b8e-do-not-leak"
# Short waits between attempts and a short notifier tick, as settings: no sleep in the tests.
FAST = {
    "JOBLEDGER_NOTIFY_RETRY_SECONDS": "0.05",
    "JOBLEDGER_NOTIFY_RETRY_MAX_SECONDS": "0.2",
    "JOBLEDGER_NOTIFY_GIVE_UP_SECONDS": "3",
    "JOBLEDGER_NOTIFY_TICK_SECONDS": "0.1",
    "JOBLEDGER_NOTIFY_TIMEOUT_SECONDS": "5",
}


def notified(raw: dict[str, Any], notifications: dict[str, Any], tags: list[str] | None = None) -> dict[str, Any]:
    raw["config"]["notifications"] = notifications
    if tags:
        raw["tags"] = tags
    return raw


def ended(client: Client, run_id: str, count: int) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        found = client.notifications(run=run_id)
        done = [n for n in found if n["status"] in ("DELIVERED", "ABANDONED")]
        return found if len(found) == count and len(done) == count else None

    return eventually(check, timeout=60, what=f"{count} notifications of {run_id} ended")


@pytest.fixture
def receivers(procs: Procs, redis_url: str, client: Client) -> Any:
    """The receivers, then a scheduler (dispatcher, timer, notifier) and a worker that send to them."""
    with webhook_receiver() as web, smtp_server() as mail:
        procs.env.update({**FAST, "JOBLEDGER_SMTP_URL": mail.url, "JOBLEDGER_CONSOLE_URL": "http://console.test"})
        client.set_secret("hook", SECRET)
        client.set_secret("job-password", JOB_SECRET)
        procs.fleet(redis_url, timer=True)
        yield web, mail


def test_a_failed_run_is_posted_signed_retried_after_two_500s_and_recorded_once(
    client: Client, workspace: Path, receivers: Any
):
    web, _ = receivers
    web.scripts["/hook"] = [500, 500]
    job_file(workspace, "fail.sh", 'echo "connecting with $DB_PASSWORD"; echo "it broke" >&2; exit 3\n')
    raw = definition("nightly", "fail.sh")
    raw["config"]["envVars"] = {"DB_PASSWORD": {"secret": "job-password"}}
    hook = {"webhook": f"{web.url}/hook", "secret": {"secret": "hook"}}
    client.define(notified(raw, {"onFailure": [hook]}, tags=["team:data"]))
    run_id = client.submit("nightly", tags=["nightly"])
    assert client.wait(run_id, timeout=30)["status"] == "FAILED"

    (note,) = ended(client, run_id, 1)
    assert (note["status"], note["attempts"], note["event"]) == ("DELIVERED", 3, "onFailure")
    posts = web.to("/hook")
    assert len(posts) == 3
    assert {p.headers[IDEMPOTENCY_HEADER] for p in posts} == {note["id"]}  # the same id on every attempt
    for post in posts:
        assert verify_signature(SECRET, post.headers[SIGNATURE_HEADER], post.body, time.time())
        assert not verify_signature("another secret", post.headers[SIGNATURE_HEADER], post.body, time.time())
    body = json.loads(posts[-1].body)
    assert body["run"] == run_id and body["definition"] == "nightly" and body["status"] == "FAILED"
    assert body["reason"] == "NonZeroExitCode" and body["exit_code"] == 3
    assert body["tags"] == ["team:data", "nightly"]
    assert body["console_url"] == f"http://console.test/runs/{run_id}"
    assert "it broke" in body["log_excerpt"] and "***" in body["log_excerpt"]
    for post in posts:
        assert SECRET.encode() not in post.body and JOB_SECRET.encode() not in post.body
    kinds = [e.type for e in client.events(aggregate=note["id"])]
    assert kinds == [
        "NotificationDue",  # its first attempt claimed by the notifier that proposed it
        "NotificationFailed",
        "NotificationAttempted",
        "NotificationFailed",
        "NotificationAttempted",
        "NotificationDelivered",
    ]


def test_slack_and_email_receive_a_success_and_a_refusing_hook_is_given_up(
    client: Client, workspace: Path, receivers: Any, procs: Procs
):
    web, mail = receivers
    web.scripts["/gone"] = [404]
    job_file(workspace, "ok.sh", "echo done\n")
    section = {
        "onStart": [{"slack": f"{web.url}/slack"}],
        "onSuccess": [{"email": "oncall@example.com"}, {"webhook": f"{web.url}/gone"}],
    }
    client.define(notified(definition("report", "ok.sh"), section))
    run_id = client.submit("report")
    assert client.wait(run_id, timeout=30)["status"] == "SUCCEEDED"
    found = ended(client, run_id, 3)
    assert sorted(n["status"] for n in found) == ["ABANDONED", "DELIVERED", "DELIVERED"]

    (slack,) = web.to("/slack")
    message = json.loads(slack.body)
    assert message["text"] == f"jobledger: run {run_id} of report started"
    assert message["blocks"][0]["type"] == "section" and message["blocks"][-1]["type"] == "context"
    (email,) = mail.messages
    assert email["To"] == "oncall@example.com"
    assert email["Subject"] == f"jobledger: run {run_id} of report succeeded"
    assert f"run: {run_id}" in email.get_content()
    for note in found:  # a notification delivered (or refused) at once is two events: its first attempt was
        kinds = [e.type for e in client.events(aggregate=note["id"])]  # claimed by the proposal
        assert kinds == [
            "NotificationDue",
            "NotificationAbandoned" if note["status"] == "ABANDONED" else "NotificationDelivered",
        ]

    listed = procs.cli("notifications", "--failed", "--json")
    assert listed.returncode == 0
    (failed,) = json.loads(listed.stdout)
    assert (failed["status"], failed["last_error"], failed["attempts"]) == ("ABANDONED", "HTTP 404", 1)
    shown = procs.cli("notifications", "--run", run_id)
    assert shown.returncode == 0 and "slack http://127.0.0.1" in shown.stdout and "/slack" not in shown.stdout


def test_a_run_past_its_duration_warning_is_warned_once(client: Client, workspace: Path, receivers: Any):
    web, _ = receivers
    job_file(workspace, "slow.sh", "sleep 4\n")
    warning = {"onDurationWarning": {"after": 0.02, "to": [{"webhook": f"{web.url}/late"}]}}  # 1.2 s
    client.define(notified(definition("slow", "slow.sh", timeout=1.0), warning))
    run_id = client.submit("slow")
    assert client.wait(run_id, timeout=30)["status"] == "SUCCEEDED"
    (note,) = ended(client, run_id, 1)
    assert note["event"] == "onDurationWarning"
    warned = client.events(type="RunDurationExceeded")
    assert [e.event.run for e in warned] == [run_id]
    (post,) = web.to("/late")
    assert json.loads(post.body)["after_minutes"] == 0.02


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ({"webhook": "https://example.com/x", "secret": {"secret": "nope"}}, "secret 'nope' is not set"),
        ({"webhook": "https://example.com/x", "retries": 3}, "config.notifications.onFailure[0].retries: unknown"),
        ({"email": "not an address"}, "config.notifications.onFailure[0].email:"),
        ({"slack": "https://user:pw@hooks.example.com/x"}, "onFailure[0].slack: carries a credential"),
        ({"webhook": "https://example.com/\x01x"}, "onFailure[0].webhook: holds a control character"),
    ],
)
def test_a_bad_destination_is_refused_naming_it_and_nothing_is_appended(
    client: Client, destination: dict[str, Any], message: str
):
    before = client.store.last_position()
    with pytest.raises(InvalidInput, match=re.escape(message)):
        client.define(notified(definition("bad", "x.sh"), {"onFailure": [destination]}))
    assert client.store.last_position() == before


def test_the_cli_refuses_a_webhook_that_is_not_http_in_one_line(client: Client, procs: Procs, tmp_path: Path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(notified(definition("bad", "x.sh"), {"onFailure": [{"webhook": "ftp://e.com/x"}]})))
    before = client.store.last_position()
    result = procs.cli("define", str(path))
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "jobledger: config.notifications.onFailure[0].webhook: must be an http:// or https:// URL"
    )
    assert client.store.last_position() == before


def test_a_failed_workflow_run_is_posted_once_with_its_link(client: Client, workspace: Path, receivers: Any):
    web, _ = receivers
    job_file(workspace, "fail.sh", "exit 1\n")
    job = {"type": "SHELL", "source": {"type": "WORKSPACE", "sourceDef": {"path": "jobs"}}, "sourceLocation": "fail.sh"}
    client.apply_workflow(
        {"name": "wf", "tags": ["team:data"], "tasks": {"only": {"job": job}},
         "notifications": {"onFailure": [{"webhook": f"{web.url}/wf"}]}}
    )  # fmt: skip
    wrun = client.run_workflow("wf")
    assert client.wait_workflow_run(wrun, timeout=30)["status"] == "FAILED"
    (note,) = ended(client, wrun, 1)
    assert (note["status"], note["subject_kind"]) == ("DELIVERED", "workflow_run")
    (post,) = web.to("/wf")
    body = json.loads(post.body)
    assert (body["workflow_run"], body["workflow"], body["status"]) == (wrun, "wf", "FAILED")
    assert body["console_url"] == f"http://console.test/workflow-runs/{wrun}"


def test_a_tick_missed_while_no_scheduler_ran_is_posted_to_the_schedules_webhook(
    client: Client, workspace: Path, procs: Procs, tmp_path: Path
):
    """``schedule create --tag --notifications``: the tick falls while no scheduler runs; the first one started
    after records it missed (catch-up ``none``) and its notifier posts ``onMissedTick``, signed, once."""
    job_file(workspace, "ok.sh", "echo done\n")
    client.define(definition("nightly-export", "ok.sh"))
    with webhook_receiver() as web:
        client.set_secret("hook", SECRET)
        section = tmp_path / "notify.json"
        section.write_text(
            json.dumps({"onMissedTick": [{"webhook": f"{web.url}/missed", "secret": {"secret": "hook"}}]})
        )
        at = time.time() + 10  # the CLI starts in time on a busy machine (6 s was not always enough)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
        created = procs.cli(
            "schedule", "create", "export-once", "--definition", "nightly-export", "--at", stamp, "--catchup", "none",
            "--tag", "team:data", "--tag", "nightly", "--notifications", str(section),
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        schedule = client.get_schedule("export-once")
        assert schedule["tags"] == ["team:data", "nightly"]
        eventually(lambda: time.time() > at + 1.5, timeout=20, what="the tick to pass with no scheduler running")
        procs.env.update({**FAST, "JOBLEDGER_SCHEDULE_ON_TIME_SECONDS": "0.5"})
        procs.dispatcher(timer=True)
        (note,) = ended(client, schedule["id"], 1)
        assert (note["status"], note["event"]) == ("DELIVERED", "onMissedTick")
        (post,) = web.to("/missed")
        assert verify_signature(SECRET, post.headers[SIGNATURE_HEADER], post.body, time.time())
        body = json.loads(post.body)
        assert body["event"] == "onMissedTick" and body["schedule"] == "export-once" and body["reason"] == "missed"
        assert body["target"] == "definition nightly-export" and len(body["ticks"]) == 1
    assert client.list_runs(definition="nightly-export") == []  # catch-up none: the missed tick fired nothing


def test_a_notifier_killed_between_sending_and_recording_sends_again_with_the_same_key_and_records_once(
    client: Client, workspace: Path, procs: Procs, redis_url: str
):
    """The receiver holds the first POST until the scheduler is ``kill -9``ed; the next scheduler claims the
    delivery again once the dead one's lease runs out, sends it with the same Idempotency-Key, records it once."""
    got_first, release = threading.Event(), threading.Event()
    keys: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            keys.append(self.headers[IDEMPOTENCY_HEADER])
            if len(keys) == 1:
                got_first.set()
                release.wait(10)  # answered only after its sender is dead
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        procs.env.update(
            {**FAST, "JOBLEDGER_NOTIFY_TIMEOUT_SECONDS": "5", "JOBLEDGER_NOTIFY_LEASE_MARGIN_SECONDS": "0.5"}
        )
        job_file(workspace, "ok.sh", "echo done\n")
        hook = {"webhook": f"http://127.0.0.1:{server.server_address[1]}/hook"}
        client.define(notified(definition("once", "ok.sh"), {"onSuccess": [hook]}))
        fleet = procs.fleet(redis_url, timer=True)
        run_id = client.submit("once")
        assert client.wait(run_id, timeout=30)["status"] == "SUCCEEDED"
        assert got_first.wait(30), "the first POST never came"
        os.killpg(fleet.dispatchers[0].pid, signal.SIGKILL)  # mid-exchange: claimed and sent, not recorded
        fleet.dispatchers[0].wait(10)
        release.set()
        procs.dispatcher(timer=True)
        (note,) = ended(client, run_id, 1)
    finally:
        release.set()
        server.shutdown()
        server.server_close()
    assert note["status"] == "DELIVERED" and note["attempts"] == 2
    assert keys == [note["id"], note["id"]]  # the same id: the receiver can tell it is the same notification
    kinds = [e.type for e in client.events(aggregate=note["id"])]
    assert kinds == ["NotificationDue", "NotificationAttempted", "NotificationDelivered"]
    (due,) = [e for e in client.events(aggregate=note["id"]) if e.type == "NotificationDue"]
    assert due.event.deliverer is not None  # the first attempt was claimed by the proposal itself


def test_two_notifiers_send_each_notification_once_and_claim_its_first_attempt_when_proposing(
    client: Client, workspace: Path, receivers: Any, procs: Procs
):
    web, _ = receivers
    procs.dispatcher(timer=True)  # a second scheduler: two notifiers in the notifier's consumer group
    job_file(workspace, "ok.sh", "echo done\n")
    hook = [{"webhook": f"{web.url}/race", "secret": {"secret": "hook"}}]
    client.define(notified(definition("raced", "ok.sh"), {"onStart": hook, "onSuccess": hook}, tags=["t"]))
    run_ids = [client.submit("raced") for _ in range(12)]
    for run_id in run_ids:
        assert client.wait(run_id, timeout=60)["status"] == "SUCCEEDED"
    notes = [note for run_id in run_ids for note in ended(client, run_id, 2)]
    assert {note["status"] for note in notes} == {"DELIVERED"}
    posts = eventually(lambda: web.to("/race") if len(web.to("/race")) >= 24 else None, timeout=30, what="24 posts")
    assert sorted(p.headers[IDEMPOTENCY_HEADER] for p in posts) == sorted(note["id"] for note in notes)  # once each
    kinds = [e.type for e in client.events() if e.type.startswith("Notification")]
    assert kinds.count("NotificationDue") == 24 and kinds.count("NotificationDelivered") == 24
    assert "NotificationAttempted" not in kinds  # every first attempt was claimed by its proposal
    for post in posts:  # built from the run's own events, as its fold says at that event
        body = json.loads(post.body)
        run = client.get_run(body["run"])
        assert body["tags"] == ["t"] and body["definition"] == "raced" and body["submitted_at"] == run["submitted_at"]
        assert body["started_at"] == run["attempts"][0]["started_at"]
        expected = ("RUNNING", None, None) if body["event"] == "onStart" else ("SUCCEEDED", 0, run["finished_at"])
        assert (body["status"], body["exit_code"], body["finished_at"]) == expected


def test_a_notification_the_sender_cannot_even_send_is_given_up_and_the_notifier_goes_on(
    client: Client, workspace: Path, receivers: Any
):
    web, _ = receivers
    # As a log written before URLs were checked for control characters could hold it: urllib refuses it.
    due = NotificationDue(
        event="onFailure", subject_kind="run", subject="r-old", name="old", destination={"webhook": "http://x.test/\x01"},
        payload={"id": "notification:old", "event": "onFailure"}, trigger="0-1",
    )  # fmt: skip
    client.store.append([NewEvent("notification:old", due)], {"notification:old": 0})
    (old,) = eventually(
        lambda: [n for n in client.notifications(run="r-old") if n["status"] == "ABANDONED"] or None, timeout=30,
        what="the old notification given up",
    )  # fmt: skip
    assert old["last_error"] == "invalid URL: it holds a character HTTP does not allow" and old["attempts"] == 1
    job_file(workspace, "ok.sh", "echo done\n")
    client.define(notified(definition("after", "ok.sh"), {"onSuccess": [{"webhook": f"{web.url}/after"}]}))
    run_id = client.submit("after")
    assert client.wait(run_id, timeout=30)["status"] == "SUCCEEDED"
    (note,) = ended(client, run_id, 1)  # the notifier lived on: the next notification is delivered
    assert note["status"] == "DELIVERED" and len(web.to("/after")) == 1

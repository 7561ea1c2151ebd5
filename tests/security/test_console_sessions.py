"""Console sign-in over real HTTP: server-side sessions that logout revokes, cookie attributes, and the
per-client throttle on wrong tokens (its clock held by the test: the protocol is asserted, never elapsed time)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from queue_core import Client
from queue_core.console.auth import COOKIE, ConsoleToken
from tests.support.console_http import Reply, request
from tests.support.console_inprocess import SetClock, console_in_thread
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs
from tests.support.servers import start_server

TOKEN = "console-token-for-session-tests"


@pytest.fixture
def guarded(procs: Procs, tmp_path: Path) -> str:
    """``jobledger console`` as a process, with a token file."""
    token_file = tmp_path / "console_token"
    token_file.write_text(TOKEN + "\n")
    env = {**procs.env, "JOBLEDGER_CONSOLE_TOKEN_FILE": str(token_file)}
    return start_server(procs, "console", name="console", env=env)[1]


@pytest.fixture
def clock() -> SetClock:
    return SetClock()


@pytest.fixture
def held(client: Client, clock: SetClock) -> Iterator[tuple[str, ConsoleToken]]:
    """The console served from this test, on the test's clock; yields its URL and its token object."""
    token = ConsoleToken(TOKEN, clock=clock)
    with console_in_thread(client, token) as base:
        yield base, token


def _sign_in(base: str, token: str = TOKEN, headers: dict[str, str] | None = None) -> Reply:
    return request(base, "/login", form={"token": token, "next": "/runs"}, headers=headers)


def _csrf(base: str, path: str, cookies: dict[str, str]) -> str | None:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', request(base, path, cookies=cookies).body)
    return found.group(1) if found else None


def _metric(base: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", request(base, "/metrics").body, re.MULTILINE)
    assert found, name
    return float(found.group(1))


def test_logout_revokes_the_session_so_the_old_cookie_no_longer_works(client: Client, workspace: Path, guarded: str):
    client.define(definition("ok", job_file(workspace, "ok.sh", "true\n")))
    run_id = client.submit("ok")
    cookies = _sign_in(guarded).cookies
    csrf = _csrf(guarded, f"/runs/{run_id}", cookies)
    assert csrf is not None  # signed in: the page carries the write forms

    out = request(guarded, "/logout", form={}, cookies=cookies)
    assert out.status == 303
    assert _csrf(guarded, f"/runs/{run_id}", cookies) is None
    refused = request(guarded, f"/runs/{run_id}/cancel", form={"csrf": csrf}, cookies=cookies)
    assert refused.status == 403
    assert client.get_run(run_id)["status"] == "PENDING"


def test_each_sign_in_gets_its_own_random_session_and_the_console_keeps_only_its_hash(
    held: tuple[str, ConsoleToken],
):
    base, token = held
    first, second = _sign_in(base).cookies[COOKIE], _sign_in(base).cookies[COOKIE]
    assert first != second and len(first) >= 43  # token_urlsafe(32)
    held_keys = list(token.sessions._held)
    assert len(held_keys) == 2 and first not in held_keys and second not in held_keys
    assert TOKEN not in first + second


def test_the_session_cookie_is_httponly_samesite_strict_path_root_and_secure_only_over_tls(
    client: Client, clock: SetClock, guarded: str
):
    plain = _sign_in(guarded).headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in plain.split(";")[1:]}
    assert {"httponly", "path", "samesite", "max-age"} <= attributes and "secure" not in attributes
    assert "path=/" in plain.lower().replace("; ", ";").split(";") and "samesite=strict" in plain.lower()
    # X-Forwarded-Proto from a client that is not a trusted proxy changes nothing.
    claimed = _sign_in(guarded, headers={"X-Forwarded-Proto": "https"}).headers["set-cookie"]
    assert "secure" not in claimed.lower()

    behind_proxy = ConsoleToken(TOKEN, clock=clock, trust_proxy=True)
    with console_in_thread(client, behind_proxy) as base:
        over_tls = _sign_in(base, headers={"X-Forwarded-Proto": "https"}).headers["set-cookie"]
        assert "secure" in over_tls.lower().replace(" ", "").split(";")


def test_a_session_ends_after_its_idle_time_and_after_its_absolute_time(
    held: tuple[str, ConsoleToken], clock: SetClock
):
    base, token = held
    idle = _sign_in(base).cookies
    clock.now += token.sessions.idle - 1
    assert _csrf(base, "/runs", idle) is not None  # used just in time: it stays
    clock.now += token.sessions.idle
    assert _csrf(base, "/runs", idle) is None

    kept_busy = _sign_in(base).cookies
    started = clock.now
    while clock.now + token.sessions.idle / 2 < started + token.sessions.absolute:
        clock.now += token.sessions.idle / 2
        assert _csrf(base, "/runs", kept_busy) is not None
    clock.now = started + token.sessions.absolute
    assert _csrf(base, "/runs", kept_busy) is None


def test_a_hundred_wrong_guesses_are_throttled_after_the_first_failures_and_counted(
    held: tuple[str, ConsoleToken], clock: SetClock
):
    base, token = held
    replies = [_sign_in(base, f"guess-{n}") for n in range(100)]
    statuses = [r.status for r in replies]
    checked = token.throttle.free + 1  # the free failures, then the one that starts the wait
    assert statuses[:checked] == [403] * checked
    assert statuses[checked:] == [429] * (100 - checked)
    assert all(r.headers["retry-after"] == "1" for r in replies[checked - 1 :])
    assert not any(r.cookies for r in replies)
    assert _metric(base, "jobledger_console_failed_logins_total") == checked
    assert _metric(base, "jobledger_console_throttled_logins_total") == 100 - checked

    assert _sign_in(base).status == 429  # the right token too: not even checked during the wait
    clock.now += 1
    signed = _sign_in(base)
    assert signed.status == 303 and signed.cookies[COOKIE]
    assert _csrf(base, "/runs", signed.cookies) is not None


def test_retry_after_doubles_with_each_failure_and_a_success_resets_it(held: tuple[str, ConsoleToken], clock: SetClock):
    base, token = held
    for _ in range(token.throttle.free):
        assert _sign_in(base, "wrong").status == 403
    waits = []
    for _ in range(5):
        failed = _sign_in(base, "wrong")
        assert failed.status == 403
        throttled = _sign_in(base, "wrong")
        assert throttled.status == 429 and throttled.headers["retry-after"] == failed.headers["retry-after"]
        waits.append(int(failed.headers["retry-after"]))
        clock.now += waits[-1]
    assert waits == [1, 2, 4, 8, 16]
    assert _sign_in(base).status == 303
    assert _sign_in(base, "wrong").status == 403 and "retry-after" not in _sign_in(base, "wrong").headers


def test_the_throttle_is_per_client(client: Client, clock: SetClock):
    token = ConsoleToken(TOKEN, clock=clock, trust_proxy=True)  # behind a proxy: X-Forwarded-For names the client
    with console_in_thread(client, token) as base:
        one, other = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "198.51.100.9"}
        while _sign_in(base, "wrong", one).status != 429:
            pass
        assert _sign_in(base, "wrong", other).status == 403  # checked: another client's failures do not count
        assert _sign_in(base, headers=other).status == 303
        assert _sign_in(base, headers=one).status == 429


def test_without_a_trusted_proxy_a_forged_forwarded_for_does_not_escape_the_throttle(
    held: tuple[str, ConsoleToken],
):
    base, _ = held
    n = 0
    while _sign_in(base, "wrong", {"X-Forwarded-For": f"192.0.2.{n}"}).status != 429:
        n += 1
        assert n < 10
    assert _sign_in(base, "wrong", {"X-Forwarded-For": "192.0.2.200"}).status == 429


def test_wrong_bearer_tokens_are_throttled_like_sign_ins(
    client: Client, workspace: Path, held: tuple[str, ConsoleToken]
):
    base, token = held
    client.define(definition("ok", job_file(workspace, "ok.sh", "true\n")))
    run_id = client.submit("ok")
    for _ in range(token.throttle.free + 1):
        assert request(base, f"/runs/{run_id}/cancel", form={}, headers={"Authorization": "Bearer wrong"}).status == 403
    assert _sign_in(base).status == 429
    right = request(base, f"/runs/{run_id}/cancel", form={}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status == 403 and client.get_run(run_id)["status"] == "PENDING"
    assert _metric(base, "jobledger_console_throttled_logins_total") == 2

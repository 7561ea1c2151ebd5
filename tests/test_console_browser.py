"""The console in a real headless Chromium against real dispatchers and workers; screenshots saved as artifacts.

Skipped, saying why, only where no Chromium is installed (see ``browser.find_chromium``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from queue_core import Client
from queue_core.console.dag_svg import STATUS_COLOURS
from tests.support.browser import INSTALL_HINT, artifacts_dir, find_chromium, launch_arguments, screenshot_name
from tests.support.jobs import definition, job_file, native, shell_task
from tests.support.processes import Procs, eventually
from tests.support.servers import start_server

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is in the test extra: pip install -e '.[test]'"
)
expect = playwright_api.expect
expect.set_options(timeout=30_000)  # live redraws go through the log and a fetch: allow a loaded CI machine time
pytestmark = pytest.mark.fleet(workers=2)  # the console's runs have one dispatcher and two workers

TOKEN = "browser-test-token"
WAIT_MS = 30_000
GREEN, RED, BLUE = STATUS_COLOURS["SUCCEEDED"][0], STATUS_COLOURS["FAILED"][0], STATUS_COLOURS["RUNNING"][0]


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    executable = find_chromium()
    if executable is None:
        pytest.skip(f"no Chromium found on PATH or at /usr/bin/chromium ({INSTALL_HINT} to run the browser tests)")
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, headless=True, args=launch_arguments())
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: object, request: pytest.FixtureRequest) -> Iterator[object]:
    context = chromium.new_context(viewport={"width": 1280, "height": 860})  # type: ignore[attr-defined]
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    yield tab
    tab.screenshot(path=str(artifacts_dir() / screenshot_name(request.node.name, "last")), full_page=True)
    context.close()


@pytest.fixture
def shot(page: object, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    def take(step: str) -> Path:
        path = artifacts_dir() / screenshot_name(request.node.name, step)
        page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        return path

    return take


@pytest.fixture
def console(fleet: Procs, tmp_path: Path) -> str:
    token_file = tmp_path / "console_token"
    token_file.write_text(TOKEN)
    env = {**fleet.env, "JOBLEDGER_CONSOLE_TOKEN_FILE": str(token_file)}
    return start_server(fleet, "console", name="console", env=env)[1]


def gated(gate: Path, before: str = "", after: str = "") -> str:
    """A job that prints ``before``, waits for ``gate`` to exist, then prints ``after``: it runs until told."""
    return f"{before}while [ ! -e {gate} ]; do sleep 0.05; done\n{after}"


def sign_in(page: object, base: str, then: str) -> None:
    page.goto(f"{base}/login?next={then}")  # type: ignore[attr-defined]
    page.fill("#token", TOKEN)  # type: ignore[attr-defined]
    page.click("#sign-in-button")  # type: ignore[attr-defined]
    expect(page.locator("#notice")).to_contain_text("Signed in")  # type: ignore[attr-defined]


def test_list_open_a_run_and_follow_its_logs_while_it_runs(
    client: Client, workspace: Path, tmp_path: Path, console: str, page, shot
):
    gate = tmp_path / "gate"
    body = gated(gate, before='echo "first line"\n', after='echo "last line"\n')
    client.define(definition("talk", job_file(workspace, "talk.sh", body), timeout=2))
    run_id = client.submit("talk")
    page.goto(f"{console}/runs")
    row = page.locator(f'tr[data-run="{run_id}"]')
    expect(row).to_contain_text("talk")
    shot("runs-list")
    row.locator("a").first.click()
    expect(page.locator("h1")).to_contain_text(run_id[:8])
    expect(page.locator("#log")).to_contain_text("first line")
    expect(page.locator("#run-status")).to_contain_text("RUNNING")
    assert client.get_run(run_id)["status"] == "RUNNING"  # the line arrived while the job still ran
    assert "last line" not in page.locator("#log").inner_text()
    shot("following-logs")
    gate.touch()
    expect(page.locator("#log")).to_contain_text("last line")
    expect(page.locator("#run-status")).to_contain_text("SUCCEEDED")
    expect(page.locator("#attempts")).to_contain_text("SUCCEEDED")
    shot("ended")


def test_the_workflow_picture_changes_colour_as_tasks_finish_and_repair_reruns_the_failed_one(
    client: Client, workspace: Path, tmp_path: Path, console: str, page, shot
):
    gate, marker = tmp_path / "gate-a", tmp_path / "b-failed-once"
    flaky = f"if [ -e {marker} ]; then echo fixed; else touch {marker}; echo broken >&2; exit 1; fi\n"
    tasks = {
        "extract": shell_task(workspace, "extract", gated(gate)),
        "transform": shell_task(workspace, "transform", flaky, depends_on=["extract"]),
        "report": shell_task(workspace, "report", "echo ok\n", depends_on=["extract"]),
        "load": shell_task(workspace, "load", "echo ok\n", depends_on=["transform", "report"]),
    }
    client.apply_workflow(native("nightly", tasks))
    run_id = client.run_workflow("nightly")
    sign_in(page, console, f"/workflow-runs/{run_id}")

    def fill(task: str) -> object:
        return page.locator(f'#dag g.task[data-task="{task}"] rect')

    expect(fill("extract")).to_have_attribute("fill", BLUE)
    expect(fill("load")).not_to_have_attribute("fill", GREEN)
    shot("extract-running")
    gate.touch()
    expect(fill("extract")).to_have_attribute("fill", GREEN)
    expect(fill("report")).to_have_attribute("fill", GREEN)
    expect(fill("transform")).to_have_attribute("fill", RED)
    expect(page.locator("#wf-status")).to_contain_text("FAILED")
    expect(page.locator("#repair")).to_be_visible()  # drawn once the run ended
    page.locator("#dag svg").screenshot(path=str(artifacts_dir() / "workflow-run-failed.png"))
    shot("failed")
    page.click("#repair")
    expect(page.locator("#notice")).to_contain_text("Repair requested")
    expect(fill("transform")).to_have_attribute("fill", GREEN)
    expect(fill("load")).to_have_attribute("fill", GREEN)
    expect(page.locator("#wf-status")).to_contain_text("SUCCEEDED")
    shot("repaired")
    view = client.get_workflow_run(run_id)
    assert view["status"] == "SUCCEEDED" and len(view["tasks"]["transform"]["runs"]) == 2


def test_cancel_is_refused_without_the_token_and_done_with_it(
    client: Client, workspace: Path, tmp_path: Path, console: str, page, shot
):
    client.define(definition("hold", job_file(workspace, "hold.sh", gated(tmp_path / "never")), timeout=2))
    run_id = client.submit("hold")
    eventually(lambda: client.get_run(run_id)["status"] == "RUNNING", what="the run to start")
    page.goto(f"{console}/runs/{run_id}")
    page.click("#cancel")
    expect(page.locator("#error")).to_contain_text("need the console token")
    shot("refused")
    assert client.get_run(run_id)["status"] == "RUNNING"

    page.click("#sign-in-to-write")
    page.fill("#token", "not-the-token")
    page.click("#sign-in-button")
    expect(page.locator("#login-failed")).to_be_visible()
    page.fill("#token", TOKEN)
    page.click("#sign-in-button")
    expect(page.locator("#notice")).to_contain_text("Signed in")
    page.click("#cancel")
    expect(page.locator("#run-status")).to_contain_text("CANCELLED")
    shot("cancelled")
    assert client.get_run(run_id)["status"] == "CANCELLED"
    assert TOKEN not in page.content()


def test_an_array_parents_page_counts_its_children_as_they_run_and_end_without_a_reload(
    client: Client, workspace: Path, tmp_path: Path, console: str, page, shot
):
    gate = tmp_path / "gate"
    client.define(definition("held-shards", job_file(workspace, "held-shard.sh", gated(gate)), timeout=2))
    parent = client.submit("held-shards", array=4)
    page.goto(f"{console}/runs/{parent}")
    page.evaluate("window.__sameDocument = true")  # gone if the page were loaded again

    def segment(status: str) -> object:
        return page.locator(f'#children-bar .seg[data-status="{status}"]')

    expect(segment("RUNNING")).to_have_attribute("data-count", "2")  # one child on each of the two workers
    expect(segment("PENDING")).to_have_attribute("data-count", "2")
    page.screenshot(path=str(artifacts_dir() / "array-run.png"), full_page=True)  # the docs' picture
    gate.touch()
    expect(segment("SUCCEEDED")).to_have_attribute("data-count", "4")
    expect(page.locator("#run-status")).to_contain_text("SUCCEEDED")
    expect(page.locator('#children-list tbody tr[data-status="SUCCEEDED"]')).to_have_count(4)
    assert page.evaluate("window.__sameDocument") is True
    shot("children-succeeded")
    page.click('#children-list tr[data-index="3"] a')
    expect(page.locator("#array-parent")).to_contain_text("child 3 of 4")


DOCS_IMAGES = Path(__file__).resolve().parent.parent / "docs" / "guide" / "img"


def test_a_run_submitted_while_the_pages_are_open_appears_without_a_reload(
    client: Client, workspace: Path, console: str, page, shot
):
    client.define(definition("hello", job_file(workspace, "hello.sh", 'echo "hello"\n')))
    client.define(definition("flaky", job_file(workspace, "flaky.sh", "echo no >&2; exit 3\n")))
    for name in ("hello", "hello", "flaky", "hello", "hello", "flaky", "hello"):
        client.wait(client.submit(name), timeout=60)
    page.goto(f"{console}/runs")
    page.evaluate("window.__sameDocument = true")  # gone if the page were loaded again
    run_id = client.submit("hello")
    expect(page.locator(f'tr[data-run="{run_id}"]')).to_be_visible()
    client.wait(run_id, timeout=60)
    expect(page.locator(f'tr[data-run="{run_id}"]')).to_contain_text("SUCCEEDED")
    assert page.evaluate("window.__sameDocument") is True
    shot("runs-live")

    page.goto(f"{console}/")
    expect(page.locator("#runs-24h h2")).to_contain_text("8,")  # "8, by status now": the runs so far
    page.evaluate("window.__sameDocument = true")
    client.wait(client.submit("flaky"), timeout=60)
    expect(page.locator("#runs-24h h2")).to_contain_text("9,")
    expect(page.locator("#failing")).to_contain_text("flaky")
    assert page.evaluate("window.__sameDocument") is True
    shot("overview")
    page.screenshot(path=str(artifacts_dir() / "overview.png"), full_page=True)

    page.goto(f"{console}/definitions/hello")
    expect(page.locator("#history .strip a.cell")).to_have_count(6)
    expect(page.locator("svg.duration-chart circle.point")).to_have_count(6)
    page.screenshot(path=str(artifacts_dir() / "definition.png"), full_page=True)

    page.goto(f"{console}/runs?definition=hello&status=SUCCEEDED&q=hel")
    page.fill('input[name="since"]', "1h")
    page.click("#filters button")
    expect(page).to_have_url(
        f"{console}/runs?q=hel&status=SUCCEEDED&definition=hello&workflow=&reason=&cluster=&tag=&since=1h&until=&as_of="
    )
    expect(page.locator('input[name="q"]')).to_have_value("hel")
    expect(page.locator("#runs tbody tr")).to_have_count(6)


def test_the_gantt_shows_each_task_attempt_in_order_beside_the_dag(
    client: Client, workspace: Path, tmp_path: Path, console: str, page, shot
):
    marker = tmp_path / "failed-once"
    flaky = f"if [ -e {marker} ]; then echo fixed; else touch {marker}; echo broken >&2; exit 1; fi\n"
    tasks = {
        "extract": shell_task(workspace, "extract", "sleep 0.3\n"),
        "transform": shell_task(workspace, "transform", flaky, depends_on=["extract"]),
        "report": shell_task(workspace, "report", "echo ok\n", depends_on=["extract"]),
        "load": shell_task(workspace, "load", "echo ok\n", depends_on=["transform", "report"]),
    }
    tasks["transform"]["job"]["retryStrategy"] = {"numRetries": 1, "delayBetweenRetries": 0}
    client.apply_workflow(native("nightly-gantt", tasks))
    run_id = client.run_workflow("nightly-gantt")
    page.goto(f"{console}/workflow-runs/{run_id}")
    expect(page.locator("#wf-status")).to_contain_text("SUCCEEDED")  # drawn live as the run goes on
    view = client.get_workflow_run(run_id)
    assert view["status"] == "SUCCEEDED" and view["tasks"]["transform"]["attempts"] == 2
    drawn = page.locator("#gantt g.gantt-bar")
    expect(drawn).to_have_count(5)
    found = [(b.get_attribute("data-task"), b.get_attribute("data-attempt"), b.get_attribute("data-kind"))
             for b in drawn.all()]  # fmt: skip
    assert found[0] == ("extract", "1", "succeeded") and found[-1] == ("load", "1", "succeeded")
    assert found.index(("transform", "1", "retried")) < found.index(("transform", "2", "succeeded"))
    assert ("report", "1", "succeeded") in found
    page.locator("#pictures").screenshot(path=str(artifacts_dir() / "workflow-run-gantt.png"))
    shot("gantt")

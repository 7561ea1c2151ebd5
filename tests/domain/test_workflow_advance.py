"""Workflow runs: what ``decide_advance`` records and submits, and which tasks ``rerun_tasks`` resets, as tables.

Each row's workflow run is its history folded through ``apply_workflow_run``; its child runs are their
own histories folded through ``apply_run`` (what the caller loaded), with their versions. No Redis.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import pytest

from queue_core.domain.runs import (
    CANCELLED,
    CANCELLED_BY_USER,
    FAILED,
    NON_ZERO_EXIT,
    PENDING,
    RUNNING,
    SUCCEEDED,
    apply_run,
)
from queue_core.domain.workflow_advance import FAIL_FAST_CANCEL, child_run_id, decide_advance, rerun_tasks
from queue_core.domain.workflow_runs import UPSTREAM_FAILED, apply_workflow_run
from queue_core.errors import InvalidInput, NotFound
from queue_core.eventlog.events import (
    Event,
    ReferenceSatisfied,
    RunAttemptFailed,
    RunCancelled,
    RunFailed,
    RunQueued,
    RunStarted,
    RunSubmitted,
    RunSucceeded,
    TaskFinished,
    TaskRerunRequested,
    TaskSkipped,
    TaskSubmitted,
    WorkflowRunCancelled,
    WorkflowRunFinished,
    WorkflowRunStarted,
)
from tests.support.events import fold, fold_more, project
from tests.support.tables import cases

WR = "wfrun-1"
LOGICAL = "2026-11-21T00:00:00Z"
CHAIN = {"a": [], "b": ["a"], "c": ["b"]}
DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
PAIR = {"a": [], "b": []}
FORK = {"a": [], "b": [], "c": ["b"]}  # a beside the branch b -> c
FEED = {"kind": "definition", "name": "feed"}
UPSTREAM = {"kind": "workflow", "name": "upstream"}

Expected = list[tuple[str, dict[str, Any]]]
Children = dict[str, tuple[dict[str, Any], int]]


# -- the workflow run's history -----------------------------------------------------------------------


def child(task: str, round_number: int = 0) -> str:
    return child_run_id(WR, task, round_number)


def started(graph: Mapping[str, list[str]], references=(), concurrency: int | None = None, fail_fast: bool = False):
    job = {"type": "SHELL", "source": {"type": "WORKSPACE", "sourceDef": {"path": "jobs"}}, "timeout": 1.0,
           "retryStrategy": {"numRetries": 0, "delayBetweenRetries": 0, "retryOnTimeout": False}}  # fmt: skip
    tasks = {
        name: {"definition_id": "wf-1", "definition": f"nightly.{name}", "definition_version": 1, "cluster": "default",
               "job": {**job, "sourceLocation": f"{name}.sh"}, "depends_on": list(deps), "run_if": "ALL_SUCCESS",
               "condition": None, "outcomes": {}}
        for name, deps in graph.items()
    }  # fmt: skip
    return WorkflowRunStarted(
        workflow_id="wf-1", workflow="nightly", workflow_version=1, logical_date=LOGICAL, tasks=tasks,
        references=tuple(references), concurrency=concurrency, fail_fast=fail_fast,
    )  # fmt: skip


def submitted(task: str, round_number: int = 0) -> TaskSubmitted:
    return TaskSubmitted(task=task, run=child(task, round_number))


def ran(task: str, status: str = SUCCEEDED, reason: str | None = None, round_number: int = 0) -> list[Event]:
    """A task submitted and its child run's end recorded."""
    return [submitted(task, round_number), TaskFinished(task, child(task, round_number), status, reason, 1)]


def upstream_failed(task: str, upstream: str, status: str) -> TaskSkipped:
    return TaskSkipped(task=task, status=UPSTREAM_FAILED, reason=f"Upstream task {upstream} {status}")


# -- the child runs the caller loaded -------------------------------------------------------------------


def run_history(task: str, state: str, round_number: int = 0) -> list[Event]:
    run_id = child(task, round_number)
    events: list[Event] = [
        RunSubmitted("wf-1", f"nightly.{task}", 1, "default", {}, logical_date=LOGICAL, workflow_run=WR, task=task)
    ]
    if state == "pending":
        return events
    events += [RunQueued(1, f"{run_id}-1"), RunStarted(1, "w1", "host", 7)]
    ends: dict[str, list[Event]] = {
        "running": [],
        "succeeded": [RunSucceeded(1)],
        "failed": [RunAttemptFailed(1, NON_ZERO_EXIT, 1), RunFailed(1, NON_ZERO_EXIT, 1)],
        "cancelled": [RunCancelled(CANCELLED_BY_USER, 1)],
    }
    return events + ends[state]


def loaded(*states: tuple[str, str] | tuple[str, str, int]) -> Children:
    """``("a", "running")``, ``("c", "succeeded", 1)`` (round 1)...: run id -> (run document, version)."""
    out: Children = {}
    for task, state, *rnd in states:
        history = run_history(task, state, *rnd)
        doc = fold(apply_run, child(task, *rnd), history)
        assert doc is not None
        out[doc["id"]] = (doc, len(history))
    return out


def submits(task: str, round_number: int = 0) -> tuple[str, str, dict[str, Any]]:
    """The child run a submission creates: on its own aggregate, for this workflow run's task and date."""
    fields = {"definition": f"nightly.{task}", "task": task, "workflow_run": WR, "logical_date": LOGICAL}
    return child(task, round_number), "RunSubmitted", fields


def cancels(task: str, reason: str = CANCELLED_BY_USER) -> tuple[str, str, dict[str, Any]]:
    return child(task), "RunCancelled", {"reason": reason, "attempt": 1}


# -- decide_advance ----------------------------------------------------------------------------------


class Advance(NamedTuple):
    name: str
    history: list[Event]
    children: Children
    satisfied: dict[tuple[str, str], str]
    events: Expected  # on the workflow run
    child_events: list[tuple[str, str, dict[str, Any]]]  # (child run id, type, fields)
    then: str  # the workflow run's status once the events are folded on
    versions: dict[str, int] | None = None  # the child versions appended at; None: 0 for each submission
    incomplete: bool = False


def finished(task: str, status: str, reason: str | None = None) -> tuple[str, dict[str, Any]]:
    return "TaskFinished", {"task": task, "run": child(task), "status": status, "reason": reason, "attempts": 1}


def submit(task: str, round_number: int = 0) -> tuple[str, dict[str, Any]]:
    return "TaskSubmitted", {"task": task, "run": child(task, round_number)}


def skip(task: str, status: str, reason: str) -> tuple[str, dict[str, Any]]:
    return "TaskSkipped", {"task": task, "status": status, "reason": reason}


def done(status: str, reason: str | None = None) -> tuple[str, dict[str, Any]]:
    return "WorkflowRunFinished", {"status": status, "reason": reason}


CHAIN_FAILED = "Upstream task a FAILED", "Upstream task b UPSTREAM_FAILED"
SIX = {name: [] for name in "abcdef"}

STARTING = [
    Advance("a-fresh-chain-submits-its-root", [started(CHAIN)], {}, {},
            [submit("a")], [submits("a")], RUNNING),
    Advance("a-fresh-diamond-submits-only-its-top", [started(DIAMOND)], {}, {},
            [submit("a")], [submits("a")], RUNNING),
    Advance("independent-roots-are-submitted-together", [started(PAIR)], {}, {},
            [submit("a"), submit("b")], [submits("a"), submits("b")], RUNNING),
    Advance("concurrency-one-submits-one-root-at-a-time", [started(PAIR, concurrency=1)], {}, {},
            [submit("a")], [submits("a")], RUNNING),
    Advance("concurrency-two-with-one-running-submits-one-more",
            [started({"a": [], "b": [], "c": []}, concurrency=2), submitted("a")], loaded(("a", "running")), {},
            [submit("b")], [submits("b")], RUNNING),
    Advance("concurrency-used-up-submits-nothing", [started(PAIR, concurrency=1), submitted("a")],
            loaded(("a", "running")), {}, [], [], RUNNING),
    Advance("a-finished-task-frees-its-concurrency-slot", [started(PAIR, concurrency=1), submitted("a")],
            loaded(("a", "succeeded")), {}, [finished("a", SUCCEEDED), submit("b")], [submits("b")], RUNNING),
]  # fmt: skip

PROGRESS = [
    Advance("a-running-child-changes-nothing", [started(CHAIN), submitted("a")], loaded(("a", "running")), {},
            [], [], RUNNING),
    Advance("a-child-not-loaded-changes-nothing", [started(CHAIN), submitted("a")], {}, {}, [], [], RUNNING),
    Advance("a-success-releases-the-next-task", [started(CHAIN), submitted("a")], loaded(("a", "succeeded")), {},
            [finished("a", SUCCEEDED), submit("b")], [submits("b")], RUNNING),
    Advance("a-join-waits-for-both-sides", [started(DIAMOND), *ran("a"), submitted("b"), submitted("c")],
            loaded(("b", "succeeded"), ("c", "running")), {}, [finished("b", SUCCEEDED)], [], RUNNING),
    Advance("the-join-runs-once-both-sides-succeeded",
            [started(DIAMOND), *ran("a"), *ran("b"), submitted("c")], loaded(("c", "succeeded")), {},
            [finished("c", SUCCEEDED), submit("d")], [submits("d")], RUNNING),
    Advance("the-last-success-finishes-the-run", [started(CHAIN), *ran("a"), *ran("b"), submitted("c")],
            loaded(("c", "succeeded")), {}, [finished("c", SUCCEEDED), done(SUCCEEDED)], [], SUCCEEDED),
    Advance("an-old-rounds-run-is-not-looked-at",
            [started(CHAIN), *ran("a"), *ran("b"), *ran("c"), WorkflowRunFinished(SUCCEEDED),
             TaskRerunRequested(("c",), "task"), submitted("c", 1)],
            loaded(("c", "succeeded"), ("c", "running", 1)), {}, [], [], RUNNING),
]  # fmt: skip

FAILING = [
    Advance("a-failure-skips-everything-after-it-and-fails-the-run", [started(CHAIN), submitted("a")],
            loaded(("a", "failed")), {},
            [finished("a", FAILED, NON_ZERO_EXIT), skip("b", UPSTREAM_FAILED, CHAIN_FAILED[0]),
             skip("c", UPSTREAM_FAILED, CHAIN_FAILED[1]), done(FAILED, "Task a FAILED")], [], FAILED),
    Advance("a-cancelled-task-counts-as-failed-downstream", [started(CHAIN), submitted("a")],
            loaded(("a", "cancelled")), {},
            [finished("a", CANCELLED, CANCELLED_BY_USER), skip("b", UPSTREAM_FAILED, "Upstream task a CANCELLED"),
             skip("c", UPSTREAM_FAILED, "Upstream task b UPSTREAM_FAILED"), done(FAILED, "Task a CANCELLED")],
            [], FAILED),
    Advance("without-fail-fast-the-other-branch-goes-on", [started(FORK), submitted("a"), *ran("b")],
            loaded(("a", "failed")), {}, [finished("a", FAILED, NON_ZERO_EXIT), submit("c")], [submits("c")],
            RUNNING),
    Advance("fail-fast-cancels-what-waits-and-what-runs", [started(FORK, fail_fast=True), submitted("a"),
                                                          submitted("b")],
            loaded(("a", "failed"), ("b", "running")), {},
            [finished("a", FAILED, NON_ZERO_EXIT), skip("c", CANCELLED, "Not started: failFast after task a FAILED")],
            [cancels("b", FAIL_FAST_CANCEL)], RUNNING, versions={child("b"): 3}),
    Advance("fail-fast-with-a-running-child-not-loaded-asks-for-them-all",
            [started(FORK, fail_fast=True), submitted("a"), submitted("b")], loaded(("a", "failed")), {},
            [finished("a", FAILED, NON_ZERO_EXIT), skip("c", CANCELLED, "Not started: failFast after task a FAILED")],
            [], RUNNING, versions={}, incomplete=True),
    Advance("the-finish-names-every-failed-task", [started(PAIR), submitted("a"), submitted("b")],
            loaded(("a", "failed"), ("b", "failed")), {},
            [finished("a", FAILED, NON_ZERO_EXIT), finished("b", FAILED, NON_ZERO_EXIT),
             done(FAILED, "Tasks a FAILED, b FAILED")], [], FAILED),
    Advance("the-finish-names-five-failed-tasks-at-most", [started(SIX), *(submitted(n) for n in SIX)],
            loaded(*((n, "failed") for n in SIX)), {},
            [*(finished(n, FAILED, NON_ZERO_EXIT) for n in SIX),
             done(FAILED, "Tasks a FAILED, b FAILED, c FAILED, d FAILED, e FAILED ...")], [], FAILED),
]  # fmt: skip

CANCELLING = [
    Advance("a-cancelled-workflow-run-cancels-its-running-children",
            [started(PAIR), submitted("a"), submitted("b"), WorkflowRunCancelled()],
            loaded(("a", "running"), ("b", "pending")), {}, [], [cancels("a"), cancels("b")], CANCELLED,
            versions={child("a"): 3, child("b"): 1}),
    Advance("the-workflow-runs-cancel-reason-goes-to-its-children",
            [started(CHAIN), submitted("a"), WorkflowRunCancelled(reason="Replaced by the 09:00 tick")],
            loaded(("a", "running")), {}, [], [cancels("a", "Replaced by the 09:00 tick")], CANCELLED,
            versions={child("a"): 3}),
    Advance("a-child-that-ended-meanwhile-is-recorded-not-cancelled",
            [started(CHAIN), submitted("a"), WorkflowRunCancelled()], loaded(("a", "succeeded")), {},
            [finished("a", SUCCEEDED)], [], CANCELLED, versions={}),
    Advance("a-cancel-with-a-child-not-loaded-asks-for-them-all",
            [started(CHAIN), submitted("a"), WorkflowRunCancelled()], {}, {}, [], [], CANCELLED, versions={},
            incomplete=True),
    Advance("an-ended-workflow-run-decides-nothing", [started(PAIR), *ran("a"), *ran("b"),
                                                      WorkflowRunFinished(SUCCEEDED)], {}, {}, [], [], SUCCEEDED),
]  # fmt: skip

REFERENCES = [
    Advance("a-reference-not-yet-satisfied-holds-every-task", [started(CHAIN, [FEED])], {}, {}, [], [], PENDING),
    Advance("a-satisfied-reference-is-recorded-and-releases-the-roots", [started(CHAIN, [FEED])], {},
            {("definition", "feed"): "run-feed"},
            [("ReferenceSatisfied", {"kind": "definition", "name": "feed", "run": "run-feed"}), submit("a")],
            [submits("a")], RUNNING),
    Advance("one-reference-of-two-holds-the-tasks", [started(CHAIN, [FEED, UPSTREAM])], {},
            {("definition", "feed"): "run-feed"},
            [("ReferenceSatisfied", {"kind": "definition", "name": "feed", "run": "run-feed"})], [], PENDING),
    Advance("a-reference-recorded-before-is-not-recorded-again",
            [started(CHAIN, [FEED, UPSTREAM]), ReferenceSatisfied("definition", "feed", "run-feed")], {},
            {("definition", "feed"): "run-feed", ("workflow", "upstream"): "wfrun-up"},
            [("ReferenceSatisfied", {"kind": "workflow", "name": "upstream", "run": "wfrun-up"}), submit("a")],
            [submits("a")], RUNNING),
]  # fmt: skip

RERUNS = [
    Advance("a-rerun-task-is-submitted-as-a-new-round",
            [started(CHAIN), *ran("a"), *ran("b"), *ran("c"), WorkflowRunFinished(SUCCEEDED),
             TaskRerunRequested(("c",), "task")], {}, {}, [submit("c", 1)], [submits("c", 1)], RUNNING),
    Advance("a-rerun-with-downstream-starts-from-its-first-task",
            [started(CHAIN), *ran("a"), *ran("b"), *ran("c"), WorkflowRunFinished(SUCCEEDED),
             TaskRerunRequested(("b", "c"), "downstream")], {}, {}, [submit("b", 1)], [submits("b", 1)], RUNNING),
    Advance("a-repair-submits-the-failed-task-again",
            [started(CHAIN), *ran("a"), *ran("b", FAILED, NON_ZERO_EXIT), upstream_failed("c", "b", FAILED),
             WorkflowRunFinished(FAILED, "Task b FAILED"), TaskRerunRequested(("b", "c"), "repair")], {}, {},
            [submit("b", 1)], [submits("b", 1)], RUNNING),
]  # fmt: skip

ALL = [*STARTING, *PROGRESS, *FAILING, *CANCELLING, *REFERENCES, *RERUNS]


def workflow_run(history: list[Event]) -> dict[str, Any]:
    doc = fold(apply_workflow_run, WR, history)
    assert doc is not None
    return doc


def children_of(decision) -> list[tuple[str, str, dict[str, Any]]]:
    return [(new.aggregate, type(new.event).__name__, new.event.to_data()) for new in decision.children]


def check(row: Advance) -> None:
    doc = workflow_run(row.history)
    decision = decide_advance(doc, row.children, row.satisfied)
    assert project(decision.events, row.events) == row.events
    made = children_of(decision)
    assert [(agg, kind) for agg, kind, _ in made] == [(agg, kind) for agg, kind, _ in row.child_events]
    for (_, _, data), (_, _, fields) in zip(made, row.child_events, strict=True):
        assert {name: data[name] for name in fields} == fields
    submitted_now = {agg: 0 for agg, kind, _ in row.child_events if kind == "RunSubmitted"}
    assert decision.expected == (row.versions if row.versions is not None else submitted_now)
    assert decision.incomplete == row.incomplete
    after = fold_more(apply_workflow_run, doc, decision.events, after=len(row.history))
    assert after["status"] == row.then


@pytest.mark.parametrize("row", cases(STARTING))
def test_a_workflow_run_submits_the_tasks_whose_upstream_succeeded_within_its_concurrency(row: Advance):
    check(row)


@pytest.mark.parametrize("row", cases(PROGRESS))
def test_a_child_run_that_ended_is_recorded_once_and_releases_what_depends_on_it(row: Advance):
    check(row)


@pytest.mark.parametrize("row", cases(FAILING))
def test_a_failed_task_skips_its_downstream_and_with_fail_fast_cancels_everything_else(row: Advance):
    check(row)


@pytest.mark.parametrize("row", cases(CANCELLING))
def test_a_cancelled_workflow_run_cancels_the_children_it_has_loaded_and_asks_for_the_others(row: Advance):
    check(row)


@pytest.mark.parametrize("row", cases(REFERENCES))
def test_references_hold_every_task_until_each_is_satisfied_and_are_recorded_once(row: Advance):
    check(row)


@pytest.mark.parametrize("row", cases(RERUNS))
def test_a_rerun_submits_its_first_tasks_again_as_a_new_round(row: Advance):
    check(row)


@pytest.mark.parametrize("row", cases(r for r in ALL if not r.incomplete))
def test_an_advance_once_recorded_is_not_decided_again(row: Advance):
    """Fold the decision on (the workflow run's events, and the child runs it submitted or cancelled), decide
    again: nothing already decided comes back, so a decision lands once whoever makes it again."""
    doc = workflow_run(row.history)
    first = decide_advance(doc, row.children, row.satisfied)
    after = fold_more(apply_workflow_run, doc, first.events, after=len(row.history))
    children = dict(row.children)
    for new in first.children:
        base, version = children.get(new.aggregate, (None, 0))
        if base is None:
            grown = fold(apply_run, new.aggregate, [new.event])
        else:
            grown = fold_more(apply_run, base, [new.event], after=version)
        assert grown is not None
        children[new.aggregate] = (grown, version + 1)
    second = decide_advance(after, children, row.satisfied)
    assert not set(map(repr, second.events)) & set(map(repr, first.events))
    assert not {(n.aggregate, type(n.event)) for n in second.children} & {
        (n.aggregate, type(n.event)) for n in first.children
    }


# -- rerun_tasks -----------------------------------------------------------------------------------------


class Rerun(NamedTuple):
    name: str
    history: list[Event]
    task: str | None  # None: a repair
    downstream: bool
    expected: tuple[str, ...] | None
    error: tuple[type[Exception], str] | None = None


CHAIN_DONE = [started(CHAIN), *ran("a"), *ran("b"), *ran("c"), WorkflowRunFinished(SUCCEEDED)]
CHAIN_B_FAILED = [started(CHAIN), *ran("a"), *ran("b", FAILED, NON_ZERO_EXIT), upstream_failed("c", "b", FAILED),
                  WorkflowRunFinished(FAILED, "Task b FAILED")]  # fmt: skip
CHAIN_A_FAILED = [started(CHAIN), *ran("a", FAILED, NON_ZERO_EXIT), upstream_failed("b", "a", FAILED),
                  upstream_failed("c", "b", UPSTREAM_FAILED), WorkflowRunFinished(FAILED, "Task a FAILED")]  # fmt: skip
DIAMOND_B_FAILED = [started(DIAMOND), *ran("a"), *ran("b", FAILED, NON_ZERO_EXIT), *ran("c"),
                    upstream_failed("d", "b", FAILED), WorkflowRunFinished(FAILED, "Task b FAILED")]  # fmt: skip
STILL_GOING = "workflow run wfrun-1 is still {}; wait for it to end or cancel it"

RERUN_ROWS = [
    Rerun("a-task-alone", CHAIN_DONE, "b", False, ("b",)),
    Rerun("a-task-and-its-downstream", CHAIN_DONE, "b", True, ("b", "c")),
    Rerun("the-last-task-with-downstream-is-itself", CHAIN_DONE, "c", True, ("c",)),
    Rerun("a-diamonds-top-and-downstream-in-order", [started(DIAMOND), *ran("a"), *ran("b"), *ran("c"), *ran("d"),
                                                     WorkflowRunFinished(SUCCEEDED)], "a", True, ("a", "b", "c", "d")),
    Rerun("the-failed-task-alone", CHAIN_A_FAILED, "a", False, ("a",)),
    Rerun("repair-reruns-the-failed-and-everything-after", CHAIN_B_FAILED, None, False, ("b", "c")),
    Rerun("repair-of-a-diamond-leaves-the-good-branch", DIAMOND_B_FAILED, None, False, ("b", "d")),
    Rerun("repair-of-a-cancelled-run", [started(CHAIN), *ran("a"), submitted("b"), WorkflowRunCancelled(),
                                        TaskFinished("b", child("b"), CANCELLED, CANCELLED_BY_USER, 1)],
          None, False, ("b", "c")),
    Rerun("still-running", [started(CHAIN), submitted("a")], "a", False, None,
          (InvalidInput, STILL_GOING.format(RUNNING))),
    Rerun("still-waiting-for-a-reference", [started(CHAIN, [FEED])], None, False, None,
          (InvalidInput, STILL_GOING.format(PENDING))),
    Rerun("cancelled-with-a-child-still-running", [started(CHAIN), submitted("a"), WorkflowRunCancelled()], "a",
          False, None, (InvalidInput, STILL_GOING.format(CANCELLED))),
    Rerun("nothing-to-repair", CHAIN_DONE, None, False, None,
          (InvalidInput, "nothing to repair: every task of workflow run wfrun-1 SUCCEEDED")),
    Rerun("an-unknown-task", CHAIN_DONE, "z", False, None,
          (NotFound, "workflow run wfrun-1 has no task 'z'; it has a, b, c")),
    Rerun("a-task-whose-upstream-failed", CHAIN_A_FAILED, "b", True, None,
          (InvalidInput, "task 'b' cannot rerun: its upstream task 'a' is FAILED; rerun that one with its downstream "
                         "tasks, or repair the workflow run")),
    Rerun("a-task-whose-upstream-was-skipped", CHAIN_A_FAILED, "c", False, None,
          (InvalidInput, "task 'c' cannot rerun: its upstream task 'b' is UPSTREAM_FAILED; rerun that one with "
                         "its downstream tasks, or repair the workflow run")),
]  # fmt: skip


@pytest.mark.parametrize("row", cases(r for r in RERUN_ROWS if r.error is None))
def test_a_rerun_resets_the_task_its_downstream_or_what_did_not_succeed_in_task_order(row: Rerun):
    doc = workflow_run(row.history)
    chosen = rerun_tasks(doc, row.task, row.downstream)
    assert chosen == row.expected
    mode = "repair" if row.task is None else ("downstream" if row.downstream else "task")
    after = fold_more(apply_workflow_run, doc, [TaskRerunRequested(chosen, mode)], after=len(row.history))
    assert after["status"] == RUNNING
    assert all(after["tasks"][name]["run"] is None for name in chosen)  # waiting for a new round


@pytest.mark.parametrize("row", cases(r for r in RERUN_ROWS if r.error is not None))
def test_a_rerun_is_refused_while_the_run_goes_on_or_when_its_upstream_did_not_succeed(row: Rerun):
    assert row.error is not None
    error, message = row.error
    with pytest.raises(error) as refused:
        rerun_tasks(workflow_run(row.history), row.task, row.downstream)
    assert str(refused.value) == message

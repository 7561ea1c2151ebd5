"""Run-if, branches and task values as tables: the rule per runIf value, the condition language, and what
``decide_advance`` records for a condition task, a branch not taken and a value that is missing. No Redis."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from queue_core.console.dag_svg import STATUS_COLOURS, render_svg
from queue_core.domain.run_if import RUN, decide_run_if
from queue_core.domain.runs import FAILED, RUNNING, SUCCEEDED
from queue_core.domain.workflow_advance import decide_advance, rerun_tasks
from queue_core.domain.workflow_runs import SKIPPED, UPSTREAM_FAILED, apply_workflow_run
from queue_core.errors import InvalidInput
from queue_core.eventlog.events import (
    ConditionEvaluated,
    Event,
    TaskFinished,
    TaskSkipped,
    WorkflowRunFinished,
    WorkflowRunStarted,
)
from queue_core.specs.conditions import ConditionError, evaluate, parse
from queue_core.specs.task_values import MAX_VALUES_BYTES, check_values, substitute, values_from_sql_result
from queue_core.specs.workflows import normalize_workflow
from tests.domain.test_workflow_advance import LOGICAL, WR, child, submitted
from tests.support.events import fold, fold_more
from tests.support.tables import cases

S, F, K, P = "success", "failed", "skipped", "pending"


class Rule(NamedTuple):
    name: str
    run_if: str
    ends: tuple[str, ...]
    expected: str | None  # RUN, a status, or None (wait)


RULES = [
    Rule("all-success-runs-when-all-succeeded", "ALL_SUCCESS", (S, S), RUN),
    Rule("all-success-fails-upstream-at-the-first-failure", "ALL_SUCCESS", (F, P), UPSTREAM_FAILED),
    Rule("all-success-is-skipped-after-a-skip", "ALL_SUCCESS", (S, K), SKIPPED),
    Rule("all-success-waits", "ALL_SUCCESS", (S, P), None),
    Rule("at-least-one-success-runs-after-a-failure", "AT_LEAST_ONE_SUCCESS", (S, F), RUN),
    Rule("at-least-one-success-waits-for-all", "AT_LEAST_ONE_SUCCESS", (S, P), None),
    Rule("at-least-one-success-fails-upstream-with-none", "AT_LEAST_ONE_SUCCESS", (F, K), UPSTREAM_FAILED),
    Rule("at-least-one-success-is-skipped-when-all-skipped", "AT_LEAST_ONE_SUCCESS", (K, K), SKIPPED),
    Rule("none-failed-runs-after-a-branch-skip", "NONE_FAILED", (S, K), RUN),
    Rule("none-failed-fails-upstream-after-a-failure", "NONE_FAILED", (S, F), UPSTREAM_FAILED),
    Rule("none-failed-is-skipped-when-nothing-ran", "NONE_FAILED", (K, K), SKIPPED),
    Rule("all-done-runs-after-anything", "ALL_DONE", (S, F, K), RUN),
    Rule("all-done-waits", "ALL_DONE", (F, P), None),
    Rule("at-least-one-failed-runs-after-a-failure", "AT_LEAST_ONE_FAILED", (S, F), RUN),
    Rule("at-least-one-failed-is-skipped-when-all-went-well", "AT_LEAST_ONE_FAILED", (S, K), SKIPPED),
    Rule("all-failed-runs-when-all-failed", "ALL_FAILED", (F, F), RUN),
    Rule("all-failed-is-skipped-after-one-success", "ALL_FAILED", (F, S), SKIPPED),
    Rule("a-task-with-no-upstream-runs", "ALL_FAILED", (), RUN),
]


@pytest.mark.parametrize("row", cases(RULES))
def test_each_run_if_value_runs_skips_or_fails_a_task_by_how_its_upstream_ended(row: Rule):
    relations = [(f"u{i}", end, f"why u{i}") for i, end in enumerate(row.ends)]
    verdict = decide_run_if(row.run_if, relations)
    assert (verdict if verdict in (RUN, None) else verdict[0]) == row.expected


class Expr(NamedTuple):
    name: str
    text: str
    values: dict[str, Any]
    expected: bool | str  # the outcome, or words of the ConditionError


EXPRESSIONS = [
    Expr("a-count-above-zero", "${tasks.count.values.n} > 0", {"n": 3}, True),
    Expr("a-count-of-zero", "${tasks.count.values.n} > 0", {"n": 0}, False),
    Expr("strings-compare", "${tasks.count.values.s} == 'ok' and not ${tasks.count.values.s} != \"ok\"",
         {"s": "ok"}, True),
    Expr("or-short-circuits", "1 == 1 or ${tasks.count.values.gone} > 1", {}, True),
    Expr("a-missing-value-names-it", "${tasks.count.values.gone} > 1", {}, "tasks.count.values.gone"),
    Expr("a-number-and-a-string-do-not-order", "${tasks.count.values.s} < 2", {"s": "x"}, "cannot compare"),
    Expr("true-is-not-one", "${tasks.count.values.b} == 1", {"b": True}, False),
    Expr("a-bare-boolean-value", "${tasks.count.values.b}", {"b": True}, True),
    Expr("a-bare-number-is-no-answer", "${tasks.count.values.n}", {"n": 2}, "needs true or false"),
]  # fmt: skip


@pytest.mark.parametrize("row", cases(EXPRESSIONS))
def test_a_condition_compares_values_without_eval(row: Expr):
    def lookup(task: str, key: str) -> Any:
        if key not in row.values:
            raise ConditionError(f"missing value tasks.{task}.values.{key}")
        return row.values[key]

    if isinstance(row.expected, bool):
        assert evaluate(row.text, lookup) is row.expected
    else:
        with pytest.raises(ConditionError, match=row.expected):
            evaluate(row.text, lookup)


@pytest.mark.parametrize(
    ("text", "position"),
    [("1 >", "position 4"), ("(1 == 1", "position 8"), ("__import__('os')", "position 1"), ("1 == 1 2", "position 8"),
     ("${tasks.a} == 1", "position 1"), ("1 = 1", "position 3"), ("(" * 40 + "1" + ")" * 40, "levels")],
)  # fmt: skip
def test_a_condition_that_does_not_parse_names_the_position(text: str, position: str):
    with pytest.raises(InvalidInput, match=position):
        parse(text, "tasks.check.condition")


def test_values_are_a_json_object_of_at_most_48_kib():
    assert check_values('{"n": 1}') == {"n": 1}
    for bad, words in [("[1]", "JSON object"), ("{", "not JSON"), ('{"1x": 1}', "key"),
                       (b'{"k": "' + b"x" * MAX_VALUES_BYTES + b'"}', "at most")]:  # fmt: skip
        with pytest.raises(InvalidInput, match=words):
            check_values(bad)


def test_a_sql_result_gives_its_rows_and_first_row_as_values():
    result = {"query": {"columns": [["n", "BIGINT"], ["day", "VARCHAR"]], "preview": [[3, "mon"], [4, "tue"]]}}
    assert values_from_sql_result(result) == {"rows": [{"n": 3, "day": "mon"}, {"n": 4, "day": "tue"}], "n": 3,
                                              "day": "mon"}  # fmt: skip


def test_a_value_is_one_word_in_args_and_plain_text_elsewhere():
    lookup = {("a", "who"): "two words", ("a", "n"): 5}.__getitem__
    assert substitute("--who=${tasks.a.values.who} -n ${tasks.a.values.n}", lambda t, k: lookup((t, k)), quote=True) \
        == "--who='two words' -n 5"  # fmt: skip
    assert substitute({"sql": ["select ${tasks.a.values.n}"]}, lambda t, k: lookup((t, k))) == {"sql": ["select 5"]}


@pytest.mark.parametrize(
    ("tasks", "words"),
    [({"a": {"condition": "${tasks.b.values.n} > 0"}, "b": {"definition": "d"}}, "not upstream"),
     ({"a": {"definition": "d", "args": "${tasks.zz.values.n}"}}, "unknown task 'zz'"),
     ({"a": {"definition": "d"}, "b": {"definition": "d", "depends_on": ["a:true"]}}, "not a condition task"),
     ({"a": {"condition": "1 =="}}, "position 5"),
     ({"a": {"definition": "d", "runIf": "SOMETIMES"}}, "runIf"),
     ({"a": {"definition": "d", "envVars": {"X": "${tasks.a.values}"}}}, "value reference")],
)  # fmt: skip
def test_a_workflow_file_with_a_bad_branch_or_reference_is_refused(tasks: dict[str, Any], words: str):
    with pytest.raises(InvalidInput, match=words):
        normalize_workflow({"name": "w", "tasks": tasks})


# -- decide_advance with branches and values ---------------------------------------------------------------

JOB = {"type": "SHELL", "source": {"type": "WORKSPACE", "sourceDef": {"path": "jobs"}}, "sourceLocation": "x.sh",
       "timeout": 1.0, "args": "", "envVars": {},
       "retryStrategy": {"numRetries": 0, "delayBetweenRetries": 0, "retryOnTimeout": False}}  # fmt: skip


def plan(deps: list[str], run_if: str = "ALL_SUCCESS", condition: str | None = None, outcomes=None, args: str = ""):
    job = None if condition else {**JOB, "args": args}
    return {"definition_id": "wf-1", "definition": None if condition else "d", "definition_version": 1,
            "cluster": "default", "job": job, "depends_on": deps, "run_if": run_if, "condition": condition,
            "outcomes": outcomes or {}}  # fmt: skip


def start(tasks: dict[str, Any]) -> WorkflowRunStarted:
    return WorkflowRunStarted(workflow_id="wf-1", workflow="w", workflow_version=1, logical_date=LOGICAL, tasks=tasks)


def ended(task: str, status: str = SUCCEEDED, values: dict[str, Any] | None = None) -> list[Event]:
    return [submitted(task), TaskFinished(task, child(task), status, None, 1, values)]


BRANCHES = {
    "count": plan([]),
    "check": plan(["count"], condition="${tasks.count.values.n} > 0"),
    "load": plan(["check"], outcomes={"check": "true"}, args="--rows ${tasks.count.values.n}"),
    "empty": plan(["check"], outcomes={"check": "false"}),
    "report": plan(["load", "empty"], run_if="NONE_FAILED"),
    "alert": plan(["load"], run_if="AT_LEAST_ONE_FAILED"),
}


def decide(history: list[Event]) -> tuple[dict[str, Any], list[Event]]:
    doc = fold(apply_workflow_run, WR, history)
    assert doc is not None
    decision = decide_advance(doc, {}, {})
    return fold_more(apply_workflow_run, doc, decision.events, after=len(history)), decision.events


def test_a_condition_picks_its_branch_and_the_other_is_skipped_with_its_reason():
    doc, events = decide([start(BRANCHES), *ended("count", values={"n": 7})])
    assert [type(e).__name__ for e in events] == ["ConditionEvaluated", "TaskSkipped", "TaskSubmitted"]
    assert events[0] == ConditionEvaluated(task="check", outcome="true", reason="Condition true")
    assert (doc["tasks"]["empty"]["status"], doc["tasks"]["empty"]["reason"]) == (
        SKIPPED, "Branch not taken: condition check is true")  # fmt: skip
    assert doc["tasks"]["load"]["status"] == "PENDING" and doc["status"] == RUNNING
    # The value went into the submitted job's args, one word.
    decision = decide_advance(fold(apply_workflow_run, WR, [start(BRANCHES), *ended("count", values={"n": 7})]), {}, {})
    assert decision.children[0].event.job["args"] == "--rows 7"  # type: ignore[attr-defined]


def test_the_join_after_a_skipped_branch_runs_and_an_alert_on_failure_is_skipped():
    history = [start(BRANCHES), *ended("count", values={"n": 7}), ConditionEvaluated("check", "true", "Condition true")]
    history += [*ended("load")]
    doc, events = decide(history)
    assert doc["tasks"]["empty"]["status"] == SKIPPED
    assert doc["tasks"]["alert"]["status"] == SKIPPED
    assert doc["tasks"]["report"]["status"] == "PENDING"  # submitted: NONE_FAILED ran after the skipped branch
    doc, _ = decide([*history, *events, TaskFinished("report", child("report"), SUCCEEDED, None, 1)])
    assert doc["status"] == SUCCEEDED  # SKIPPED tasks do not fail the workflow run


def test_a_failed_task_runs_its_alert_and_fails_the_workflow_run():
    history = [start(BRANCHES), *ended("count", values={"n": 7}), ConditionEvaluated("check", "true", "Condition true")]
    doc, _ = decide([*history, *ended("load", FAILED)])
    assert doc["tasks"]["alert"]["status"] == "PENDING"  # submitted
    assert doc["tasks"]["report"]["status"] == UPSTREAM_FAILED


def test_a_missing_value_fails_the_task_that_reads_it_naming_the_value():
    doc, _ = decide([start(BRANCHES), *ended("count", values={"other": 1})])
    assert doc["tasks"]["check"]["status"] == FAILED
    assert "${tasks.count.values.n}" in doc["tasks"]["check"]["reason"]
    tasks = {"a": plan([]), "b": plan(["a"], args="${tasks.a.values.k}")}
    doc, _ = decide([start(tasks), *ended("a", values={})])
    assert doc["tasks"]["b"]["status"] == FAILED
    assert doc["tasks"]["b"]["reason"] == "MissingValue: missing value ${tasks.a.values.k}: task a published no value k"
    assert doc["status"] == FAILED


def test_a_join_after_a_skipped_branch_may_rerun_alone_and_a_repair_leaves_skipped_tasks_alone():
    history = [start(BRANCHES), *ended("count", values={"n": 7}), ConditionEvaluated("check", "true", "Condition true"),
               TaskSkipped("empty", SKIPPED, "Branch not taken: condition check is true"), *ended("load"),
               TaskSkipped("alert", SKIPPED, "runIf AT_LEAST_ONE_FAILED: no upstream task failed"), *ended("report"),
               WorkflowRunFinished(SUCCEEDED)]  # fmt: skip
    doc = fold(apply_workflow_run, WR, history)
    assert doc is not None and doc["status"] == SUCCEEDED
    assert rerun_tasks(doc, "report", downstream=False) == ("report",)
    with pytest.raises(InvalidInput, match="nothing to repair"):
        rerun_tasks(doc, None, downstream=False)


def test_the_console_draws_a_skipped_task_in_its_own_colour():
    task = {"depends_on": [], "reason": "Branch not taken: condition check is true", "attempts": 0, "duration": None}
    view = {"status": SUCCEEDED, "tasks": {"check": {**task, "status": SUCCEEDED},
                                           "empty": {**task, "depends_on": ["check"], "status": SKIPPED}}}  # fmt: skip
    svg = render_svg(view, link_runs=False)
    assert 'data-task="empty" data-status="SKIPPED"' in svg
    assert f'fill="{STATUS_COLOURS[SKIPPED][0]}"' in svg

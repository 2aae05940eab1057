"""The status builder: what a user sees in `status`, and that it stays small."""

from __future__ import annotations

import json
import random

import pytest

from flowrun.api import conditions
from flowrun.api.models import FlowRunStatus
from flowrun.api.status import StatusBuilder, StatusLimits
from flowrun.engine.events import TaskEvent
from flowrun.runs.render import render

T0 = 1_795_000_000.0
FINISHED = {"Success", "Failed", "TimedOut", "TriggerFailed", "Mapped", "Skipped", "Cancelled"}


def ev(
    task: str,
    state: str,
    *,
    index: int | None = None,
    at: float = T0,
    runs: int = 1,
    message: str | None = None,
    n_map_states: int | None = None,
) -> TaskEvent:
    return TaskEvent(
        task=task,
        map_index=index,
        state=state,
        message=message,
        run_count=runs,
        timestamp=at,
        is_finished=state in FINISHED,
        n_map_states=n_map_states,
    )


def size(status: dict[str, object]) -> int:
    return len(json.dumps(status, separators=(",", ":")).encode())


def test_a_task_s_life_in_status() -> None:
    b = StatusBuilder(["extract", "load"])
    b.apply_all([ev("extract", "Running", at=T0), ev("extract", "Success", at=T0 + 2)])
    status = render(b, phase="Running", now=T0 + 3, generation=4, start_time=T0)
    assert status["tasks"] == {
        "extract": {
            "state": "Success",
            "runCount": 1,
            "startTime": "2026-11-18T11:06:40Z",
            "endTime": "2026-11-18T11:06:42Z",
        }
    }
    assert status["progress"] == "1/2"
    assert status["taskCounts"] == {"total": 2, "Pending": 1, "Success": 1}
    assert status["observedGeneration"] == 4
    FlowRunStatus.model_validate(status)  # the same shape as the CRD's


def test_retries_keep_the_first_start_and_clear_the_end() -> None:
    b = StatusBuilder(["flaky"])
    b.apply_all(
        [
            ev("flaky", "Running", at=T0, runs=1),
            ev("flaky", "Retrying", at=T0 + 1, runs=1, message="boom"),
        ]
    )
    (entry,) = b.tasks()[0].values()
    assert entry["state"] == "Retrying"
    assert entry["message"] == "boom"
    assert "endTime" not in entry
    assert b.progress() == "0/1"
    b.apply_all([ev("flaky", "Running", at=T0 + 5, runs=2), ev("flaky", "Success", at=T0 + 6)])
    (entry,) = b.tasks()[0].values()
    assert entry["runCount"] == 2
    assert entry["startTime"] == "2026-11-18T11:06:40Z"
    assert b.progress() == "1/1"


def test_mapped_children_are_counts_plus_the_first_failures_by_index() -> None:
    b = StatusBuilder(["square"], limits=StatusLimits(failed_children=3, message_chars=20))
    indexes = list(range(1000))
    random.Random(7).shuffle(indexes)  # arrival order does not matter
    b.apply(ev("square", "Running"))
    for i in indexes:
        b.apply(ev("square", "Running", index=i))
        failed = i % 100 == 3
        b.apply(ev("square", "Failed" if failed else "Success", index=i, message="x" * 50))
    b.apply(ev("square", "Mapped", n_map_states=1000))
    entry = b.tasks()[0]["square"]
    assert entry["state"] == "Mapped"
    assert entry["children"] == {"total": 1000, "Failed": 10, "Success": 990}
    assert [c["index"] for c in entry["failedChildren"]] == [3, 103, 203]
    assert entry["failedChildren"][0]["message"] == "x" * 19 + "…"
    assert b.failed == 10
    assert b.progress() == "1/1"


def test_a_mapped_parent_is_not_done_until_its_children_are() -> None:
    b = StatusBuilder(["m"])
    b.apply(ev("m", "Mapped", n_map_states=2))
    b.apply(ev("m", "Success", index=0))
    assert b.progress() == "0/1"
    b.apply(ev("m", "Running", index=1))
    assert b.progress() == "0/1"
    b.apply(ev("m", "Success", index=1))
    assert b.progress() == "1/1"
    assert b.tasks()[0]["m"]["children"] == {"total": 2, "Success": 2}


def test_an_empty_map_is_done() -> None:
    b = StatusBuilder(["m"])
    b.apply(ev("m", "Mapped", n_map_states=0))
    assert b.progress() == "1/1"
    assert b.tasks()[0]["m"]["children"] == {"total": 0}


def test_messages_are_truncated_and_redacted() -> None:
    b = StatusBuilder(
        ["t"],
        limits=StatusLimits(message_chars=30),
        redact=lambda text: text.replace("s3cr3t", "***"),
    )
    b.apply(ev("t", "Failed", message="token s3cr3t rejected " + "y" * 100))
    entry = b.tasks()[0]["t"]
    assert entry["message"].startswith("token *** rejected ")
    assert len(entry["message"]) == 30
    assert "s3cr3t" not in json.dumps(render(b, phase="Failed", now=T0))


def _big_flow(n: int, *, failing_every: int = 0) -> StatusBuilder:
    names = [f"transform-customer-records-{i:05d}" for i in range(n)]
    b = StatusBuilder(names)
    for i, name in enumerate(names):
        b.apply(ev(name, "Running", at=T0 + i))
        if failing_every and i % failing_every == 0:
            b.apply(ev(name, "Failed", at=T0 + i + 1, message="ValueError: " + "z" * 400))
        else:
            b.apply(ev(name, "Success", at=T0 + i + 1))
    return b


@pytest.mark.parametrize("n", [1_000, 10_000])
def test_status_of_a_big_flow_stays_under_256_kib(n: int) -> None:
    b = _big_flow(n, failing_every=7)
    status = render(b, phase="Failed", now=T0 + n + 5, generation=1, start_time=T0)
    measured = size(status)
    print(f"\nstatus of a {n:,}-task flow: {measured:,} bytes ({len(status['tasks']):,} listed)")
    assert measured < 256 * 1024
    assert status["taskCounts"]["total"] == n
    assert status["progress"] == f"{n}/{n}"
    assert status["failed"] == len(range(0, n, 7))
    assert len(status["tasks"]) + status.get("tasksOmitted", 0) == n
    FlowRunStatus.model_validate(status)


def test_a_1000_task_flow_lists_every_task() -> None:
    status = render(_big_flow(1_000), phase="Succeeded", now=T0)
    assert len(status["tasks"]) == 1_000
    assert "tasksOmitted" not in status


def test_failures_are_listed_first_when_the_budget_runs_out() -> None:
    b = _big_flow(10_000)
    b.apply(ev("transform-customer-records-09999", "Failed", message="late failure"))
    tasks, omitted = b.tasks()
    assert omitted > 0
    assert tasks["transform-customer-records-09999"]["state"] == "Failed"
    assert list(tasks)[-1] == "transform-customer-records-09999"  # still in flow order


def test_a_huge_map_stays_small() -> None:
    b = StatusBuilder(["m"])
    for i in range(100_000):
        b.apply(ev("m", "Failed" if i % 2 else "Success", index=i, message="e" * 300))
    b.apply(ev("m", "Mapped", n_map_states=100_000))
    status = render(b, phase="Failed", now=T0)
    assert size(status) < 8 * 1024
    assert status["failed"] == 50_000


def test_results_keep_small_json_and_name_the_rest() -> None:
    b = StatusBuilder(["a", "b", "c"], limits=StatusLimits(result_bytes=100))
    status = render(
        b, phase="Succeeded", now=T0, results={"a": {"rows": 3}, "b": "x" * 500, "c": object()}
    )
    assert status["results"] == {"a": {"rows": 3}}
    assert status["resultsOmitted"] == ["b", "c"]


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("Pending", {"Ready": "False", "Reconciling": "True", "Stalled": "False"}),
        ("Running", {"Ready": "False", "Reconciling": "True", "Stalled": "False"}),
        ("Succeeded", {"Ready": "True", "Succeeded": "True", "Reconciling": "False"}),
        ("Failed", {"Ready": "False", "Succeeded": "False", "Stalled": "True"}),
        ("Cancelled", {"Ready": "False", "Succeeded": "False", "Stalled": "True"}),
    ],
)
def test_conditions_follow_kstatus(phase: str, expected: dict[str, str]) -> None:
    got = {c["type"]: c for c in conditions.for_phase(phase, now="t1", generation=3)}
    assert set(got) == {"Ready", "Succeeded", "Reconciling", "Stalled"}
    for kind, status in expected.items():
        assert got[kind]["status"] == status, kind
    assert all(c["observedGeneration"] == 3 for c in got.values())


def test_condition_transition_time_moves_only_when_status_changes() -> None:
    running = conditions.for_phase("Running", now="t1")
    still = {c["type"]: c for c in conditions.for_phase("Running", now="t2", previous=running)}
    assert still["Reconciling"]["lastTransitionTime"] == "t1"
    done = {c["type"]: c for c in conditions.for_phase("Succeeded", now="t3", previous=running)}
    assert done["Reconciling"]["lastTransitionTime"] == "t3"
    assert done["Stalled"]["lastTransitionTime"] == "t1"  # False before and after


def test_failed_reason_reaches_the_conditions() -> None:
    status = render(
        StatusBuilder([]),
        phase="Failed",
        now=T0,
        reason="DeadlineExceeded",
        message="deadline of 60 s exceeded",
    )
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "DeadlineExceeded"
    assert stalled["message"] == "deadline of 60 s exceeded"


def test_restore_takes_over_finished_tasks_after_a_restart() -> None:
    before = StatusBuilder(["a", "m", "b"], limits=StatusLimits(failed_children=2))
    before.apply_all([ev("a", "Running", at=T0), ev("a", "Success", at=T0 + 1, runs=2)])
    before.apply(ev("m", "Mapped", n_map_states=4))
    for i in range(4):
        before.apply(ev("m", "Failed" if i % 2 else "Success", index=i, message=f"e{i}"))
    before.apply(ev("b", "Running", at=T0 + 2))
    previous = render(before, phase="Running", now=T0 + 3)

    after = StatusBuilder(["a", "m", "b"], limits=StatusLimits(failed_children=2))
    after.restore(previous["tasks"])
    tasks, _ = after.tasks()
    assert tasks["a"] == previous["tasks"]["a"]
    assert tasks["m"] == previous["tasks"]["m"]
    assert "b" not in tasks  # it was running: it runs again and reports again
    assert after.progress() == "2/3"
    assert after.failed == 2


def test_a_resumed_map_counts_each_child_once() -> None:
    """Restored counts are not tied to indices: the children's events after a restart (those
    that ran again, then every child's final state) take their place instead of adding up."""
    before = StatusBuilder(["m"])
    before.apply(ev("m", "Mapped", n_map_states=40))
    for i in range(40):
        before.apply(ev("m", "Success" if i < 30 else "Running", index=i))
    previous = render(before, phase="Running", now=T0 + 3)
    assert previous["tasks"]["m"]["children"] == {"total": 40, "Success": 30, "Running": 10}

    after = StatusBuilder(["m"])
    after.restore(previous["tasks"])
    for i in range(30, 40):  # the children that were running run again
        after.apply(ev("m", "Running", index=i))
        after.apply(ev("m", "Success", index=i))
    for i in range(40):  # every child's final state, resumed ones included
        after.apply(ev("m", "Success", index=i))
    tasks, _ = after.tasks()
    assert tasks["m"]["children"] == {"total": 40, "Success": 40}

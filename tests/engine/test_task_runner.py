"""The TaskRunner pipeline, one behaviour at a time (no flow needed)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest

from flowrun import context, task, triggers
from flowrun.engine import TaskRunner, signals
from flowrun.engine import state as s
from flowrun.engine.edges import EdgeRef
from flowrun.engine.events import TaskEvent


def run(
    fn: Any,
    *,
    state: s.State | None = None,
    upstream: dict[EdgeRef, s.State] | None = None,
    **opts: Any,
) -> s.State:
    t = task(fn, **opts)
    t.slug = "t"
    return TaskRunner(t).run(state, upstream or {})


def test_success_and_failure() -> None:
    assert run(lambda: 5) == s.Success(result=5)
    failed = run(lambda: 1 / 0)
    assert type(failed) is s.Failed
    assert isinstance(failed.result, ZeroDivisionError)
    assert "ZeroDivisionError" in (failed.message or "")


def test_finished_states_are_not_run_again() -> None:
    calls: list[int] = []
    assert run(lambda: calls.append(1), state=s.Success(result=3)).result == 3
    assert run(lambda: calls.append(1), state=s.Running()) == s.Running()
    assert calls == []


def test_start_time_not_reached_keeps_the_state() -> None:
    later = s.Scheduled(start_time=s.now() + dt.timedelta(hours=1))
    assert run(lambda: 1, state=later) is later
    assert run(lambda: 1, state=s.Paused()) == s.Paused()


def test_upstream_not_finished_keeps_the_state() -> None:
    state = run(lambda x: x, upstream={EdgeRef("u", key="x"): s.Running()})
    assert type(state) is s.Pending


def test_upstream_skip_propagates_unless_disabled() -> None:
    up = {EdgeRef("u", key="x"): s.Skipped(result=None)}
    assert type(run(lambda x: 1, upstream=up)) is s.Skipped
    assert run(lambda x: 1, upstream=up, skip_on_upstream_skip=False) == s.Success(result=1)


def test_trigger_failure_is_not_retried() -> None:
    up = {EdgeRef("u", key="x"): s.Failed()}
    state = run(lambda x: 1, upstream=up, max_retries=3)
    assert type(state) is s.TriggerFailed
    assert run(lambda x: 1, upstream=up, trigger=triggers.all_failed) == s.Success(result=1)
    broken = run(lambda x: 1, upstream=up, trigger=lambda u: 1 / 0)
    assert type(broken) is s.TriggerFailed
    assert "Unexpected error" in (broken.message or "")


@pytest.mark.parametrize(
    ("signal", "cls"),
    [
        (signals.FAIL, s.Failed),
        (signals.SKIP, s.Skipped),
        (signals.SUCCESS, s.Success),
        (signals.PAUSE, s.Paused),
        (signals.RETRY, s.Retrying),
        (signals.TRIGGERFAIL, s.TriggerFailed),
    ],
)
def test_signals_raised_by_tasks_set_the_state(
    signal: type[signals.StateSignal], cls: type[s.State]
) -> None:
    def body() -> None:
        try:
            raise signal("chosen")
        except Exception:
            pytest.fail("swallowed")

    state = run(body)
    assert type(state) is cls
    assert state.message == "chosen"


def test_endrun_in_a_task_sets_the_state() -> None:
    def body() -> None:
        raise signals.ENDRUN(s.Skipped("ended"))

    assert type(run(body, max_retries=2)) is s.Skipped


def test_failures_become_retrying_until_max_retries() -> None:
    state = run(lambda: 1 / 0, max_retries=2, retry_delay=dt.timedelta(seconds=30))
    assert isinstance(state, s.Retrying)
    assert state.run_count == 1
    assert state.start_time is not None
    assert state.start_time > s.now() + dt.timedelta(seconds=20)
    again = run(lambda: 1 / 0, state=state.replace(start_time=s.now()), max_retries=2)
    assert isinstance(again, s.Retrying)
    assert again.run_count == 2
    final = run(lambda: 1 / 0, state=again.replace(start_time=s.now()), max_retries=2)
    assert type(final) is s.Failed


def test_retry_on_limits_retries_to_matching_errors() -> None:
    assert type(run(lambda: 1 / 0, max_retries=1, retry_on=KeyError)) is s.Failed
    assert type(run(lambda: 1 / 0, max_retries=1, retry_on=[ZeroDivisionError])) is s.Retrying


def test_run_count_is_in_the_context() -> None:
    retry = s.Retrying(start_time=s.now(), run_count=2)
    assert run(lambda: context.task_run_count, state=retry, max_retries=5).result == 3


def test_loop_reruns_with_the_loop_result() -> None:
    def body() -> int:
        total = context.get("task_loop_result", 0)
        if context.get("task_loop_count", 1) < 5:
            raise signals.LOOP(result=total + 10)
        return total

    assert run(body).result == 40


def test_timeout_stops_the_work() -> None:
    stopped = threading.Event()

    def body() -> None:
        try:
            while True:
                time.sleep(0.01)
        finally:
            stopped.set()

    state = run(body, timeout=0.3)
    assert type(state) is s.TimedOut
    assert stopped.is_set()


def test_timeout_in_a_worker_thread() -> None:
    found: list[s.State] = []
    thread = threading.Thread(
        target=lambda: found.append(
            run(lambda: [time.sleep(0.01) for _ in range(10**6)], timeout=0.3)
        )
    )
    thread.start()
    thread.join(60)
    assert type(found[0]) is s.TimedOut


def test_state_handlers_see_every_change_and_can_replace_states() -> None:
    seen: list[tuple[str, str]] = []

    def handler(t: Any, old: s.State, new: s.State) -> s.State | None:
        seen.append((type(old).__name__, type(new).__name__))
        return s.Success(result="replaced") if new.is_failed() else None

    state = run(lambda: 1 / 0, state_handlers=[handler])
    assert seen == [("Pending", "Running"), ("Running", "Failed")]
    assert state.result == "replaced"


def test_on_failure_is_called_with_the_failed_state() -> None:
    got: list[s.State] = []
    run(lambda: 1 / 0, on_failure=lambda t, st: got.append(st))
    assert len(got) == 1
    assert got[0].is_failed()


def test_a_failing_state_handler_fails_the_task() -> None:
    def handler(t: Any, old: s.State, new: s.State) -> None:
        raise RuntimeError("handler broke")

    state = run(lambda: 1, state_handlers=[handler])
    assert type(state) is s.Failed
    assert "state handlers" in (state.message or "")


def test_events_are_reported_for_each_change() -> None:
    got: list[TaskEvent] = []
    t = task(lambda: 1)
    t.slug = "evented"
    TaskRunner(t, on_event=got.append).run(context={"map_index": 3})
    assert [(e.task, e.state, e.map_index, e.is_finished) for e in got] == [
        ("evented", "Running", 3, False),
        ("evented", "Success", 3, True),
    ]


def test_mapped_parent_decides_width_without_running() -> None:
    calls: list[int] = []
    up = {
        EdgeRef("u", key="x", mapped=True): s.Success(result=[1, 2, 3]),
        EdgeRef("v", key="y", mapped=True): s.Success(result="ab"),
    }
    t = task(lambda x, y: calls.append(x))
    t.slug = "p"
    state = TaskRunner(t).run(upstream_states=up, is_mapped_parent=True)
    assert isinstance(state, s.Mapped)
    assert state.n_map_states == 2
    assert calls == []
    bad = TaskRunner(t).run(
        upstream_states={EdgeRef("u", key="x", mapped=True): s.Success(result=5)},
        is_mapped_parent=True,
    )
    assert type(bad) is s.Failed
    assert "unmappable" in (bad.message or "")
    none = TaskRunner(t).run(
        upstream_states={EdgeRef("u", key="x", mapped=True): s.Failed()}, is_mapped_parent=True
    )
    assert type(none) is s.Failed
    assert "No upstream states" in (none.message or "")

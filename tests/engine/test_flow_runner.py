"""FlowRunner and Flow.run behaviour, on every executor."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from engine_helpers import poll

from flowrun import Flow, Parameter, context, task, triggers
from flowrun.engine import FlowRunner, run_until_finished, signals
from flowrun.engine import state as s
from flowrun.engine.events import TaskEvent


@task
def inc(x: int) -> int:
    return x + 1


@task
def boom(x: int = 0) -> int:
    raise ValueError("boom")


@task
def total(xs: list[int]) -> int:
    return sum(xs)


def chain_flow() -> tuple[Flow, Any, Any, Any]:
    with Flow("chain") as flow:
        a = inc(1)
        b = inc(a)
        c = inc(b)
    return flow, a, b, c


def test_results_flow_downstream(executor: Any) -> None:
    flow, _a, _b, c = chain_flow()
    state = flow.run(executor=executor)
    assert state.is_successful()
    assert state.message == "All reference tasks succeeded."
    assert state.result[c].result == 4
    assert {t.slug for t in state.result} == {"inc-1", "inc-2", "inc-3"}  # {task: state}
    assert state.result["inc-3"] is state.result[c]


def test_a_failure_fails_the_flow_and_downstream_trigger_fails(executor: Any) -> None:
    with Flow("fail") as flow:
        a = boom()
        b = inc(a)
    state = flow.run(executor=executor)
    assert state.is_failed()
    assert state.message == "Some reference tasks failed."
    assert type(state.result[a]) is s.Failed
    assert "boom" in (state.result[a].message or "")
    assert type(state.result[b]) is s.TriggerFailed


def test_reference_tasks_decide_the_flow_state(executor_ld: Any) -> None:
    with Flow("ref") as flow:
        bad = boom()
        cleanup = inc(1, upstream_tasks=[bad], task_args={"trigger": triggers.all_finished})
    assert flow.run(executor=executor_ld).is_successful()
    flow.set_reference_tasks([bad])
    assert flow.run(executor=executor_ld).is_failed()
    assert cleanup in flow.terminal_tasks()


def test_flowrunner_returns_only_return_tasks(executor: Any) -> None:
    flow, _a, b, _c = chain_flow()
    state = FlowRunner(flow).run(executor=executor)
    assert state.is_successful()
    assert len(state.result) == 0
    state = FlowRunner(flow).run(executor=executor, return_tasks=[b])
    assert list(state.result) == [b]  # `{task: state}`, as Prefect's FlowRunner gives
    assert state.result[b].result == state.result["inc-2"].result == 3
    # As in Prefect, an error of the run itself gives a Failed flow state holding it.
    failed = FlowRunner(flow).run(executor=executor, return_tasks=["nope", 1])
    assert failed.is_failed()
    assert isinstance(failed.result, ValueError)
    assert "not found in the flow: ['nope', 1]" in str(failed.result)


def test_given_finished_states_are_not_run_again(executor_ld: Any) -> None:
    flow, a, _b, c = chain_flow()
    state = FlowRunner(flow).run(
        executor=executor_ld, task_states={a: s.Success(result=100)}, return_tasks=[a, c]
    )
    assert state.result[a].result == 100
    assert state.result[c].result == 102


def test_start_tasks_run_a_subgraph_with_given_inputs(executor_ld: Any) -> None:
    with Flow("start") as flow:
        a = boom()
        b = inc(a)
        c = inc(b)
        other = boom()
    state = run_until_finished(
        flow, executor=executor_ld, start_tasks=[b], task_states={a: s.Success(result=10)}
    )
    assert state.is_successful()
    assert state.result[c].result == 12
    assert state.result[a].result == 10
    assert type(state.result[other]) is s.Pending  # not in the subgraph: not run


def test_start_task_skips_upstream_checks_and_trigger(executor_ld: Any) -> None:
    with Flow("start2") as flow:
        a = boom()
        b = inc(a)
    state = run_until_finished(
        flow, executor=executor_ld, start_tasks=[b], task_states={a: s.Failed(result=ValueError())}
    )
    assert (
        type(state.result[b]) is s.Failed
    )  # ran (no TriggerFailed) with the failed upstream's result


def test_running_while_a_retry_waits(executor: Any) -> None:
    with Flow("retry") as flow:
        t = boom(task_args={"max_retries": 1, "retry_delay": dt.timedelta(hours=1)})
    state = FlowRunner(flow).run(executor=executor, return_tasks=[t])
    assert state.is_running()
    assert "incomplete" in (state.message or "")
    assert isinstance(state.result[t], s.Retrying)


def test_flow_run_waits_for_retries(executor: Any, tmp_path: Any) -> None:
    marker = tmp_path / "tries"

    @task(max_retries=2, retry_delay=0.05)
    def flaky() -> int:
        marker.write_text(marker.read_text() + "x" if marker.exists() else "x")
        if len(marker.read_text()) < 3:
            raise RuntimeError("not yet")
        return context.task_run_count

    with Flow("flaky") as flow:
        t = flaky()
    state = flow.run(executor=executor)
    assert state.is_successful()
    assert state.result[t].result == 3


def test_retry_signal_ignores_max_retries(executor_ld: Any, tmp_path: Any) -> None:
    marker = tmp_path / "count"

    @task
    def again() -> str:
        count = int(marker.read_text()) + 1 if marker.exists() else 1
        marker.write_text(str(count))
        if count < 3:
            raise signals.RETRY("again")
        return "done"

    with Flow("retry-signal") as flow:
        t = again()
    assert flow.run(executor=executor_ld).result[t].result == "done"


def test_missing_required_parameter_fails_the_run(executor_ld: Any) -> None:
    with Flow("params") as flow:
        p = Parameter("p")
        t = inc(p)
    state = FlowRunner(flow).run(executor=executor_ld, return_tasks=[p, t])
    assert state.is_failed()
    assert "required" in (state.result[p].message or "")
    assert type(state.result[t]) is s.TriggerFailed


def test_parameters_and_context_reach_tasks(executor: Any) -> None:
    @task
    def show(x: int) -> dict[str, Any]:
        return {
            "x": x,
            "params": dict(context.parameters),
            "flow": context.flow_name,
            "slug": context.task_slug,
            "name": context.task_name,
            "count": context.task_run_count,
            "extra": context.get("extra"),
            "has_start": context.scheduled_start_time is not None,
        }

    with Flow("ctx") as flow:
        p = Parameter("p", default=1)
        out = show(p)
    state = flow.run(executor=executor, parameters={"p": 5}, context={"extra": "yes"})
    assert state.result[out].result == {
        "x": 5,
        "params": {"p": 5},
        "flow": "ctx",
        "slug": "show-1",
        "name": "show",
        "count": 1,
        "extra": "yes",
        "has_start": True,
    }


def test_pause_leaves_the_flow_running_until_resumed(executor_ld: Any) -> None:
    with Flow("pause") as flow:
        a = inc(1)
        b = inc(a, task_args={"trigger": triggers.manual_only})
    state = flow.run(executor=executor_ld)
    assert state.is_running()
    assert type(state.result[b]) is s.Paused
    # Only return tasks' results outlive a Dask run, so hand the upstream value back in.
    resumed = flow.run(executor=executor_ld, task_states={a: s.Success(result=2), b: s.Resume()})
    assert resumed.is_successful()
    assert resumed.result[b].result == 3


def test_skip_propagates_and_counts_as_success(executor: Any) -> None:
    @task
    def skipper() -> None:
        raise signals.SKIP("not today")

    with Flow("skip") as flow:
        a = skipper()
        b = inc(a)
    state = flow.run(executor=executor)
    assert state.is_successful()
    assert type(state.result[a]) is s.Skipped
    assert type(state.result[b]) is s.Skipped


def test_flow_state_handlers_and_terminal_state_handler(executor_ld: Any) -> None:
    seen: list[str] = []

    def handler(flow: Flow, old: s.State, new: s.State) -> None:
        seen.append(type(new).__name__)

    with Flow(
        "handlers",
        state_handlers=[handler],
        terminal_state_handler=lambda f, st, ref: s.Success("overridden"),
    ) as flow:
        boom()
    state = flow.run(executor=executor_ld)
    assert state.message == "overridden"
    assert seen == ["Running", "Success"]


def test_finished_flow_state_is_returned_unchanged() -> None:
    flow, *_ = chain_flow()
    done = s.Success("before")
    assert FlowRunner(flow).run(state=done).message == "before"
    later = s.Scheduled(start_time=s.now() + dt.timedelta(hours=1))
    kept = FlowRunner(flow).run(state=later)
    assert type(kept) is s.Scheduled
    assert kept.start_time == later.start_time


def test_on_task_state_gets_every_change(executor: Any) -> None:
    got: list[TaskEvent] = []
    flow, _a, _b, _c = chain_flow()
    flow.run(executor=executor, on_task_state=got.append)
    by_task: dict[str, list[str]] = {}
    for event in got:
        by_task.setdefault(event.task, []).append(event.state)
        assert isinstance(event.timestamp, float)
        assert event.run_count == 1
    assert by_task == {slug: ["Running", "Success"] for slug in ("inc-1", "inc-2", "inc-3")}


def test_cancel_before_start_cancels_everything(executor_ld: Any) -> None:
    cancel = threading.Event()
    cancel.set()
    flow, _a, _b, _c = chain_flow()
    state = run_until_finished(flow, executor=executor_ld, cancel=cancel)
    assert type(state) is s.Cancelled
    assert all(type(st) is s.Cancelled for st in state.result.values())


def test_cancel_stops_the_run(executor_ld: Any, tmp_path: Any) -> None:
    started = tmp_path / "started"
    stopped = tmp_path / "stopped"
    cancel = threading.Event()

    @task
    def long() -> None:
        started.write_text("yes")
        try:
            while True:
                threading.Event().wait(0.01)
        finally:
            stopped.write_text("yes")

    with Flow("cancel") as flow:
        a = long()
        b = inc(1, upstream_tasks=[a])

    def cancel_once_started() -> None:
        poll(started.exists)
        cancel.set()

    canceller = threading.Thread(target=cancel_once_started)
    canceller.start()
    state = run_until_finished(flow, executor=executor_ld, cancel=cancel)
    canceller.join()
    assert type(state) is s.Cancelled
    assert type(state.result[a]) is s.Cancelled
    assert type(state.result[b]) is s.Cancelled
    poll(stopped.exists)  # the running task was really interrupted


def test_task_contexts_reach_one_task(executor_ld: Any) -> None:
    @task
    def read() -> Any:
        return context.get("special")

    with Flow("task-ctx") as flow:
        a = read()
        b = read()
    state = run_until_finished(flow, executor=executor_ld, task_contexts={a: {"special": 7}})
    assert state.result[a].result == 7
    assert state.result[b].result is None

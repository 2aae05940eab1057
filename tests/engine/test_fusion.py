"""Linear-chain fusion on DaskExecutor: segments, and behaviour on a real LocalCluster."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import poll

from flowrun import Flow, task
from flowrun.engine import FlowRunner, run_until_finished
from flowrun.engine import state as s
from flowrun.engine.events import TaskEvent
from flowrun.engine.executors.fusion import linear_segments
from flowrun.executors import LocalExecutor

distributed = pytest.importorskip("distributed")
from flowrun.executors import DaskExecutor  # noqa: E402


# -- segments ------------------------------------------------------------------------------
def test_a_chain_is_one_segment() -> None:
    deps = {"a": set(), "b": {"a"}, "c": {"b"}}
    assert linear_segments(deps, {"a", "b", "c"}) == [["a", "b", "c"]]


def test_an_external_dependency_may_only_feed_the_head() -> None:
    deps = {"a": {"earlier"}, "b": {"a"}, "c": {"b", "earlier"}}
    assert linear_segments(deps, set(deps)) == [["a", "b"], ["c"]]


def test_branches_and_joins_break_segments() -> None:
    # a -> b -> c, a -> d, c + d -> e -> f
    deps = {"a": set(), "b": {"a"}, "c": {"b"}, "d": {"a"}, "e": {"c", "d"}, "f": {"e"}}
    assert linear_segments(deps, set(deps)) == [["a"], ["b", "c"], ["d"], ["e", "f"]]


def test_unfusable_keys_stand_alone() -> None:
    deps = {"a": set(), "b": {"a"}, "c": {"b"}, "d": {"c"}}
    assert linear_segments(deps, {"a", "c", "d"}) == [["a"], ["b"], ["c", "d"]]
    assert linear_segments(deps) == [["a"], ["b"], ["c"], ["d"]]


# -- on a cluster --------------------------------------------------------------------------
@task
def inc(x: int) -> int:
    return x + 1


@task
def where(x: int) -> str:
    return str(distributed.get_worker().get_current_task())


@task
def boom(x: int) -> int:
    raise ValueError("boom")


@pytest.fixture
def dask_executor(dask_cluster: Any) -> DaskExecutor:
    return DaskExecutor(address=dask_cluster.scheduler_address)


def _finals(state: s.State) -> dict[str, str]:
    return {getattr(t, "slug", t): type(st).__name__ for t, st in state.result.items()}


def test_a_fused_chain_sends_every_tasks_events(dask_executor: DaskExecutor) -> None:
    seen: list[TaskEvent] = []
    with Flow("fused-events") as flow:
        x = inc(0)
        for _ in range(4):
            x = inc(x)
        key = where(x)
    state = FlowRunner(flow).run(
        executor=dask_executor, on_task_state=seen.append, return_tasks=[x, key]
    )
    assert state.is_successful()
    assert state.result[x].result == 5
    assert state.result[key].result.startswith("fused-")  # ran inside one fused Dask task
    slugs = [t.slug for t in flow.sorted_tasks()]
    for slug in slugs:
        assert [e.state for e in seen if e.task == slug] == ["Running", "Success"]


def test_a_failure_in_the_middle_of_a_chain(dask_executor: DaskExecutor) -> None:
    with Flow("fused-failure") as flow:
        c = inc(boom(inc(0)))
        inc(c)
    fused = flow.run(executor=dask_executor)
    local = flow.run(executor=LocalExecutor())
    assert fused.is_failed()
    assert _finals(fused) == _finals(local)
    assert _finals(fused)["boom-1"] == "Failed"
    assert _finals(fused)["inc-3"] == "TriggerFailed"


def test_a_retry_in_the_middle_of_a_chain_stops_it_there(dask_executor: DaskExecutor) -> None:
    @task(max_retries=1, retry_delay=dt.timedelta(hours=1))
    def later(x: int) -> int:
        raise RuntimeError("not yet")

    with Flow("fused-retry-later") as flow:
        r = later(inc(0))
        c = inc(r)
        d = inc(c)
    seen: list[TaskEvent] = []
    state = FlowRunner(flow).run(
        executor=dask_executor, on_task_state=seen.append, return_tasks=[r, c, d]
    )
    assert state.is_running()
    assert isinstance(state.result[r], s.Retrying)
    assert type(state.result[c]) is s.Pending
    assert type(state.result[d]) is s.Pending
    assert not [e for e in seen if e.task in (c.slug, d.slug) and e.state == "Running"]


def test_a_retried_task_in_a_chain_resumes_in_a_later_pass(
    dask_executor: DaskExecutor, tmp_path: Path
) -> None:
    marker = tmp_path / "tries"

    @task(max_retries=1, retry_delay=0.2)
    def flaky(x: int) -> int:
        first = not marker.exists()
        marker.write_text("x")
        if first:
            raise RuntimeError("not yet")
        return x * 10

    with Flow("fused-retry") as flow:
        d = inc(inc(flaky(inc(0))))
    state = flow.run(executor=dask_executor)
    assert state.is_successful()
    assert state.result[d].result == 12


def test_cancel_stops_the_rest_of_a_fused_chain(
    dask_executor: DaskExecutor, tmp_path: Path
) -> None:
    started = tmp_path / "started"

    @task
    def busy(x: int) -> int:
        started.write_text(str(distributed.get_worker().get_current_task()))
        while True:
            threading.Event().wait(0.01)

    cancel = threading.Event()
    seen: list[TaskEvent] = []
    with Flow("fused-cancel") as flow:
        a = inc(0)
        b = busy(a)
        c = inc(b)
        d = inc(c)
    canceller = threading.Thread(target=lambda: (poll(started.exists), cancel.set()))
    canceller.start()
    state = run_until_finished(
        flow, executor=dask_executor, cancel=cancel, on_task_state=seen.append
    )
    canceller.join()
    assert type(state) is s.Cancelled
    assert started.read_text().startswith("fused-")
    assert type(state.result[a]) is s.Success
    assert [type(state.result[t]) for t in (b, c, d)] == [s.Cancelled] * 3
    assert not [e for e in seen if e.task in (c.slug, d.slug) and e.state == "Running"]


def test_return_tasks_of_a_fused_task(dask_executor: DaskExecutor) -> None:
    with Flow("fused-return") as flow:
        a = inc(0)
        b = inc(a)
        inc(b)
    state = FlowRunner(flow).run(executor=dask_executor, return_tasks=[b])
    assert state.is_successful()
    assert state.result[b].result == 2


def test_a_fused_tasks_published_result_lets_a_new_client_resume(dask_cluster: Any) -> None:
    with Flow("fused-publish") as flow:
        a = inc(0)
        b = inc(a)
        c = inc(b)
        d = inc(c)
    first = DaskExecutor(address=dask_cluster.scheduler_address, publish_prefix="fused-run/")
    assert flow.run(executor=first).is_successful()

    later = DaskExecutor(address=dask_cluster.scheduler_address)
    with later.start() as client:
        future = client.get_dataset(f"fused-run/{b.slug}")
        state = FlowRunner(flow).run(
            executor=later,
            task_states={b: s.Success(result=future)},
            start_tasks=[c],
            return_tasks=[d],
        )
        assert state.is_successful()
        assert state.result[d].result == 4
        for t in (a, b, c, d):
            client.unpublish_dataset(f"fused-run/{t.slug}")

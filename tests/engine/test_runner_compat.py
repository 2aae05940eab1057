"""Runner behaviours Prefect 1.x documents (`prefect.engine.flow_runner`, `prefect.executors`):
an executor with only `submit()` / `wait()` runs flows, and an error of the run itself
(not of a task) ends the flow Failed with the error as its result."""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from flowrun import Flow, task
from flowrun.engine.flow_runner import FlowRunner
from flowrun.executors import DaskExecutor, Executor, LocalExecutor
from flowrun.utilities.debug import raise_on_exception


@task
def inc(x: int) -> int:
    return x + 1


@task
def total(xs: list[int]) -> int:
    return sum(xs)


class PoolExecutor(Executor):
    """An executor of the kind a Prefect user writes: a thread pool behind submit/wait."""

    def __init__(self) -> None:
        super().__init__()
        self.submitted: list[dict[str, Any]] = []
        self.threads: set[str] = set()
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None

    @contextmanager
    def start(self) -> Iterator[None]:
        with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="pool") as pool:
            self.pool = pool
            yield
        self.pool = None

    def submit(
        self, fn: Callable[..., Any], *args: Any, extra_context: Any = None, **kwargs: Any
    ) -> Any:
        assert self.pool is not None, "submit() outside start()"
        self.submitted.append(dict(extra_context or {}))

        def traced() -> Any:
            self.threads.add(threading.current_thread().name)
            return fn(*args, **kwargs)

        return self.pool.submit(traced)

    def wait(self, futures: Any) -> Any:
        return futures.result()


def test_an_executor_with_only_submit_and_wait_runs_a_flow() -> None:
    with Flow("pool") as flow:
        one = inc(1)
        many = inc.map([1, 2, 3])
        summed = total(many)
    executor = PoolExecutor()
    state = flow.run(executor=executor)
    assert state.is_successful()
    assert (state.result[one].result, state.result[summed].result) == (2, 9)
    assert all(name.startswith("pool") for name in executor.threads)
    names = {(c["task_name"], c["task_index"]) for c in executor.submitted}
    assert {("inc", None), ("inc", 0), ("inc", 2), ("total", None)} <= names
    assert all(isinstance(c["task_tags"], frozenset) for c in executor.submitted)


def test_a_local_executor_subclass_sees_every_task_call() -> None:
    calls: list[dict[str, Any]] = []

    class Tracking(LocalExecutor):
        def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            calls.append(kwargs.get("extra_context") or {})
            return super().submit(fn, *args, **kwargs)

    with Flow("constants") as flow:
        out = inc(5)  # the constant 5 is no task call
    state = FlowRunner(flow).run(return_tasks=[out], executor=Tracking())
    assert state.result[out].result == 6
    assert [c["task_name"] for c in calls] == ["inc"]


def test_unknown_return_tasks_fail_the_flow_and_raise_when_asked() -> None:
    with Flow("returns") as flow:
        inc(1)
    state = FlowRunner(flow).run(return_tasks=[1])
    assert state.is_failed()
    assert isinstance(state.result, ValueError)
    assert "Unexpected error while running flow" in (state.message or "")
    with raise_on_exception(), pytest.raises(ValueError, match="not found in the flow"):
        FlowRunner(flow).run(return_tasks=[1])


def test_unknown_keywords_of_flow_run_are_the_callers_error() -> None:
    with Flow("kw") as flow:
        inc(1)
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        flow.run(nonsense=1)


def test_a_task_dask_cannot_pickle_fails_the_flow_with_the_pickling_error(
    dask_cluster: Any,
) -> None:
    q: queue.Queue[int] = queue.Queue()

    @task
    def put() -> None:
        q.put(55)

    flow = Flow("unpicklable", tasks=[put])
    state = flow.run(executor=DaskExecutor(dask_cluster.scheduler_address))
    assert state.is_failed()
    assert isinstance(state.result, TypeError)
    assert str(state.result) == "cannot pickle '_thread.lock' object"

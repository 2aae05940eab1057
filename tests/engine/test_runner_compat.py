"""Runner behaviours Prefect 1.x documents (`prefect.engine.flow_runner`, `prefect.executors`):
an executor with only `submit()` / `wait()` runs flows, and an error of the run itself
(not of a task) ends the flow Failed with the error as its result."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import os
import queue
import random
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import flowrun
from flowrun import Flow, flatten, task
from flowrun.engine import signals
from flowrun.engine import state as states
from flowrun.engine.flow_runner import FlowRunner
from flowrun.engine.task_runner import TaskRunner
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


def test_runners_log_each_run_at_info_once_per_run(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)  # the capture handler's level (a LocalCluster changes it)

    @task
    def loops() -> int:
        count = int(flowrun.context.get("task_loop_count", 1))
        if count < 3:
            raise signals.LOOP(result=count)
        return count

    with Flow("logs") as flow:
        loops()
    assert flow.run().is_successful()
    lines = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    starting = [m for n, _, m in lines if n == "flowrun.TaskRunner" and "Starting" in m]
    assert starting == ["Task 'loops': Starting task run..."]  # not once per loop
    assert (
        "flowrun.TaskRunner",
        logging.INFO,
        "Task 'loops': Finished task run for task with final state: 'Success'",
    ) in lines
    assert ("flowrun.FlowRunner", logging.INFO, "Beginning Flow run for 'logs'") in lines
    assert any(m.startswith("Flow run SUCCESS") for n, _, m in lines if n == "flowrun.FlowRunner")


def test_a_level_set_by_the_application_wins(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    quiet = logging.getLogger("flowrun.TaskRunner")
    before = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        assert TaskRunner(task(lambda: 1)).run().result == 1
    finally:
        quiet.setLevel(before)
    assert not [r for r in caplog.records if r.name == "flowrun.TaskRunner"]
    TaskRunner(task(lambda: 1)).run()
    assert [r for r in caplog.records if r.name == "flowrun.TaskRunner"]


def test_flatten_of_a_plain_child_result_is_warned_of(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    @task
    def nest(x: int) -> Any:
        return x if x == 2 else [x]

    with Flow("flat") as flow:
        summed = inc.map(flatten(nest.map([1, 2, 3])))
    state = flow.run()
    assert state.result[summed].result == [2, 3, 4]  # the plain 2 passed unchanged
    warned = [r for r in caplog.records if "did not return an iterable" in r.getMessage()]
    assert len(warned) == 1
    assert warned[0].levelno == logging.WARNING


def test_flow_run_keeps_cached_states_and_flow_runner_run_only_reads_them() -> None:
    @task(cache_for=dt.timedelta(minutes=10))
    def draw() -> float:
        return random.random()

    with Flow("cache") as flow:
        drawn = draw()
    first = FlowRunner(flow).run(return_tasks=[drawn]).result[drawn].result
    second = FlowRunner(flow).run(return_tasks=[drawn]).result[drawn].result
    assert first != second  # FlowRunner.run keeps no cache
    kept = flow.run().result[drawn].result
    assert flow.run().result[drawn].result == kept  # flow.run does
    assert FlowRunner(flow).run(return_tasks=[drawn]).result[drawn].result == kept


def test_initialize_run_is_a_step_a_subclass_may_override() -> None:
    seen: list[tuple[str, str]] = []

    def handler(flow: Any, old: Any, new: Any) -> Any:
        seen.append((type(old).__name__, type(new).__name__))
        return new

    class Broken(FlowRunner):
        def initialize_run(self, *args: Any, **kwargs: Any) -> Any:
            raise SyntaxError("bad")

    class Ended(FlowRunner):
        def initialize_run(self, *args: Any, **kwargs: Any) -> Any:
            raise signals.ENDRUN(state=states.Pending("not yet"))

    class Tagged(FlowRunner):
        def initialize_run(self, *args: Any, **kwargs: Any) -> Any:
            found = super().initialize_run(*args, **kwargs)
            return found._replace(context={**found.context, "deployment": "blue"})

    @task
    def where() -> Any:
        return flowrun.context.get("deployment")

    flow = Flow("init", tasks=[where], state_handlers=[handler])
    failed = Broken(flow).run()
    assert failed.is_failed()
    assert isinstance(failed.result, SyntaxError)
    assert seen == [("Pending", "Failed")]
    assert flow.run(runner_cls=Broken).is_failed()
    assert Ended(flow).run().message == "not yet"
    assert Tagged(flow).run(return_tasks=[where]).result[where].result == "blue"
    first = FlowRunner(flow).initialize_run(None, {}, {"a": 1}, {}, {})
    assert first.state.is_pending()
    assert (first.context["a"], first.context["flow_name"]) == (1, "init")


def test_what_a_task_prints_is_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    @task(log_stdout=True, name="printer")
    def printer() -> int:
        print("TEST_HERE")
        return 42

    assert TaskRunner(printer).run().result == 42
    found = [r for r in caplog.records if r.getMessage() == "TEST_HERE"]
    assert [(r.name, r.levelno) for r in found] == [("flowrun.printer", logging.INFO)]


PAUSED_FLOW = """
import flowrun
from flowrun import Flow, task

@task
def one():
    return 1

@task(trigger=flowrun.triggers.manual_only)
def add_one(x):
    return x + 1

with Flow("example") as flow:
    done = add_one(one())
state = flow.run()
print("RESULT", type(state).__name__, state.result[done].result)
"""


@pytest.mark.parametrize(("answer", "expected"), [("y", "RESULT Success 2"), ("n", "Running")])
def test_flow_run_asks_on_a_terminal_to_resume_a_paused_task(
    tmp_path: Path, answer: str, expected: str
) -> None:
    script = tmp_path / "paused.py"
    script.write_text(PAUSED_FLOW)
    controller, terminal = os.openpty()  # the child's standard input is a terminal
    try:
        os.write(controller, f"{answer}\n".encode())
        done = subprocess.run(
            [sys.executable, str(script)],
            stdin=terminal,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    finally:
        os.close(controller)
        os.close(terminal)
    assert "is currently Paused; enter 'y' to resume" in done.stdout
    assert expected in done.stdout


def test_cached_states_live_in_context_caches_when_it_is_set() -> None:
    @task(cache_for=dt.timedelta(minutes=10))
    def draw() -> float:
        return random.random()

    with Flow("cache-in-context") as flow:
        drawn = draw()
    kept: dict[str, Any] = {}
    with flowrun.context(caches=kept):
        first = flow.run().result[drawn].result
        assert [type(st).__name__ for st in kept["draw"]] == ["Cached"]
        assert flow.run().result[drawn].result == first
    with flowrun.context(caches={}):  # a fresh dict: nothing cached
        assert flow.run().result[drawn].result != first

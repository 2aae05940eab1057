"""Prefect 1.x's executor API (`start`, `submit(..., extra_context=)`, `wait`) and the
DaskExecutor options it documents, on real Dask schedulers and a real LocalCluster."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import cloudpickle
import distributed
import pytest

from flowrun import Flow, task
from flowrun.executors import DaskExecutor, Executor, LocalDaskExecutor, LocalExecutor


def test_the_base_executor_can_be_made_and_refuses_work() -> None:
    executor = Executor()
    with executor.start():
        with pytest.raises(NotImplementedError):
            executor.submit(lambda: 1)
        with pytest.raises(NotImplementedError):
            executor.wait([1])
        assert isinstance(cloudpickle.loads(cloudpickle.dumps(executor)), Executor)
    assert isinstance(LocalExecutor(), Executor)
    assert LocalExecutor().submit(lambda x: x + 1, 1, extra_context={"task_name": "t"}) == 2


@pytest.mark.parametrize("scheduler", ["threads", "processes", "synchronous"])
def test_local_dask_executor_submits_delayed_work_and_computes_each_once(
    scheduler: str, tmp_path: Path
) -> None:
    executor = LocalDaskExecutor(scheduler, num_workers=2)

    def inc(x: int, marker: str) -> int:
        Path(marker).touch(exist_ok=False)  # a second run of the same call fails here
        return x + 1

    with executor.start():
        assert (executor._pool is None) == (scheduler == "synchronous")
        first = executor.submit(inc, 0, str(tmp_path / "a"), extra_context={"task_name": "inc"})
        second = executor.submit(inc, first, str(tmp_path / "b"))
        assert first.key.startswith("inc-")
        assert executor.wait([first]) == [1]
        assert executor.wait([first, second]) == [1, 2]
        copy = cloudpickle.loads(cloudpickle.dumps(executor))
        assert copy._pool is None
    assert executor._pool is None


def test_local_dask_executor_names_schedulers_as_prefect_does() -> None:
    assert LocalDaskExecutor("threading").scheduler == "threads"
    assert LocalDaskExecutor("multiprocessing").scheduler == "processes"
    assert LocalDaskExecutor("single-threaded").scheduler == "synchronous"
    with pytest.raises(ValueError, match="unknown scheduler"):
        LocalDaskExecutor("unknown")


def test_a_flow_runs_on_a_local_dask_process_pool() -> None:
    @task
    def double(x: int) -> int:
        return 2 * x

    with Flow("pool") as flow:
        doubled = double.map([1, 2, 3])
    state = flow.run(executor=LocalDaskExecutor("processes", num_workers=2))
    assert state.result[doubled].result == [2, 4, 6]


def test_dask_executor_options_as_prefect_documents_them(tmp_path: Path) -> None:
    quiet = DaskExecutor(cluster_kwargs={"processes": False})
    assert quiet.cluster_class is distributed.LocalCluster
    assert quiet.cluster_kwargs == {"processes": False, "silence_logs": logging.CRITICAL}
    assert DaskExecutor(debug=True).cluster_kwargs == {"silence_logs": logging.WARNING}
    spec = DaskExecutor(cluster_class="distributed.deploy.spec.SpecCluster")
    assert spec.cluster_class is distributed.SpecCluster
    remote = DaskExecutor(address="tcp://127.0.0.1:1", adapt_kwargs={"maximum": 2})
    assert (remote.cluster_class, remote.cluster_kwargs) == (None, None)
    assert remote.client_kwargs == {"set_as_default": False}
    assert remote.adapt_kwargs == {"maximum": 2}

    kwargs = quiet._prep_dask_kwargs(
        {"task_name": "fish", "task_index": 1, "task_tags": ["dask-resource:GPU=1"]}
    )
    assert kwargs["key"].startswith("fish-1-")
    assert kwargs["resources"] == {"GPU": 1.0}

    report = tmp_path / "report.html"
    assert DaskExecutor(performance_report_path=str(report)).performance_report == ""
    report.write_text("a report")
    assert DaskExecutor(performance_report_path=str(report)).performance_report == "a report"


@pytest.mark.parametrize("disabled", [True, False])
def test_dask_executor_submit_wait_and_cancellation_event(disabled: bool) -> None:
    with distributed.Client(
        processes=False, n_workers=1, dashboard_address=":0", set_as_default=False
    ) as client:
        executor = DaskExecutor(
            address=client.scheduler.address, disable_cancellation_event=disabled
        )
        with executor.start():
            future: Any = executor.submit(lambda x: x + 1, 1, extra_context={"task_name": "inc"})
            assert future.key.startswith("inc-")
            assert executor.wait(future) == 2
            assert (executor._should_run_event is None) == disabled
            copy = cloudpickle.loads(cloudpickle.dumps(executor))
            assert copy.client is None
            assert copy._should_run_event is None
        assert executor.client is None
        with pytest.raises(ValueError, match="not been started"):
            executor.submit(lambda: 1)


def test_ctrl_c_interrupts_a_local_dask_thread_pool_instead_of_waiting() -> None:
    ticks: list[int] = []

    def long_task() -> None:
        for i in range(50):
            time.sleep(0.1)
            ticks.append(i)

    # Ctrl-C is pressed again until the test has seen its KeyboardInterrupt: one that comes
    # while this thread runs a finalizer (the garbage of earlier tests) is printed as
    # "Exception ignored" and lost, as it would be in a terminal.
    seen_interrupt = threading.Event()

    def interrupt(signum: int, frame: Any) -> None:
        if not seen_interrupt.is_set():
            raise KeyboardInterrupt

    def press_ctrl_c(main: int) -> None:
        for _ in range(20):
            if seen_interrupt.wait(0.5):
                return
            signal.pthread_kill(main, signal.SIGINT)

    executor = LocalDaskExecutor("threads")

    def wait_for_long_task() -> None:
        try:
            executor.wait(executor.submit(long_task))
        finally:
            seen_interrupt.set()  # before the pool is closed: no second interrupt in there

    interrupter = threading.Thread(target=press_ctrl_c, args=(threading.get_ident(),))
    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        interrupter.start()
        with pytest.raises(KeyboardInterrupt), executor.start():
            wait_for_long_task()
    finally:
        seen_interrupt.set()
        interrupter.join()
        signal.signal(signal.SIGINT, previous)
    time.sleep(0.5)
    seen = len(ticks)
    time.sleep(0.5)
    assert len(ticks) == seen < 50  # stopped, not waited for (that would reach 50)

"""A Dask worker or scheduler lost mid-task, on a real LocalCluster with nannies.

The scheduler runs with allowed-failures 0 (as the operator's DaskClusters do): a worker
that dies under a task fails that task at once; the run says which worker and why (its
nanny's word, `dask_deaths`), and retries it when the task's `max_retries` allows.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import poll

from flowrun import Flow, task
from flowrun.engine import run_until_finished
from flowrun.engine import state as s
from flowrun.engine.events import TaskEvent
from flowrun.engine.executors.base import SchedulerLost

distributed = pytest.importorskip("distributed")
from flowrun.executors import DaskExecutor  # noqa: E402


def one_worker(**kwargs: Any) -> Any:
    """One worker process with its nanny."""
    return distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
        **kwargs,
    )


@pytest.fixture
def strict_cluster() -> Iterator[Any]:
    cluster = one_worker(scheduler_kwargs={"allowed_failures": 0})
    yield cluster
    cluster.close()


def dies_once(marker: Path) -> Any:
    @task(max_retries=1)
    def fragile() -> str:
        if not marker.exists():
            marker.write_text("died")
            os.kill(os.getpid(), signal.SIGKILL)  # the worker process, not a task error
        return "second run"

    return fragile


def slow_after(started: Path) -> Any:
    """A task that says it started, then waits (for its worker or scheduler to go)."""

    @task
    def slow() -> None:
        started.write_text("")
        threading.Event().wait(60)

    return slow


def test_a_worker_killed_mid_task_fails_it_naming_the_worker_and_why(
    strict_cluster: Any, tmp_path: Path
) -> None:
    @task
    def fatal() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    with Flow("worker-dies") as flow:
        t = fatal()
    seen: list[TaskEvent] = []
    executor = DaskExecutor(address=strict_cluster.scheduler_address)
    state = run_until_finished(flow, executor=executor, on_task_state=seen.append)
    record = state.result[t]
    assert type(record) is s.Failed, record
    message = str(record.message)
    assert message.startswith("Dask worker 0 (tcp://"), message
    assert "killed by signal SIGKILL" in message, message
    assert [e.state for e in seen if e.task == t.slug][-1] == "Failed"


def test_a_worker_killed_mid_task_is_a_retry_with_max_retries(
    strict_cluster: Any, tmp_path: Path
) -> None:
    fragile = dies_once(tmp_path / "died")
    with Flow("worker-dies-once") as flow:
        t = fragile()
    seen: list[TaskEvent] = []
    executor = DaskExecutor(address=strict_cluster.scheduler_address)
    state = run_until_finished(flow, executor=executor, on_task_state=seen.append, return_tasks=[t])
    assert state.result[t].result == "second run"
    mine = [(e.state, e.run_count) for e in seen if e.task == t.slug]
    assert ("Retrying", 1) in mine, mine
    assert mine[-1] == ("Success", 2), mine
    retrying = next(e for e in seen if e.state == "Retrying")
    assert "Dask worker 0" in str(retrying.message), retrying


def test_a_worker_whose_nanny_closes_mid_task_is_named_lost_with_it(
    strict_cluster: Any, tmp_path: Path
) -> None:
    """As when its Pod is deleted: the nanny closes and takes its worker process along."""
    started = tmp_path / "started"
    slow = slow_after(started)
    with Flow("nanny-closes") as flow:
        t = slow()
    executor = DaskExecutor(address=strict_cluster.scheduler_address)
    out: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: out.update(state=run_until_finished(flow, executor=executor)), daemon=True
    )
    thread.start()
    poll(started.exists, timeout=120)
    [nanny] = strict_cluster.workers.values()
    strict_cluster.sync(nanny.close)
    thread.join(120)
    assert not thread.is_alive()
    record = out["state"].result[t]
    assert type(record) is s.Failed, record
    assert "Dask worker 0 (tcp://" in str(record.message), record
    assert "its nanny was stopped" in str(record.message), record


def test_the_scheduler_lost_mid_run_ends_the_run_saying_so(tmp_path: Path) -> None:
    started = tmp_path / "started"
    slow = slow_after(started)
    with Flow("scheduler-dies") as flow:
        slow()
    cluster = one_worker()
    seen: list[TaskEvent] = []
    out: dict[str, BaseException] = {}

    def run() -> None:
        executor = DaskExecutor(address=cluster.scheduler_address)
        try:
            run_until_finished(flow, executor=executor, on_task_state=seen.append)
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    poll(started.exists, timeout=120)
    cluster.close()
    thread.join(120)
    assert not thread.is_alive()
    assert isinstance(out.get("error"), SchedulerLost), out
    assert "scheduler" in str(out["error"])
    assert "lost" in str(out["error"])
    last = [e for e in seen if e.task.startswith("slow")][-1]
    assert last.state == "Failed", last
    assert "scheduler" in str(last.message), last

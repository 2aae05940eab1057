"""Batched mapping on DaskExecutor: each child keeps its own run, events and state, and a
map of a map runs without a barrier. (test_mapping runs every mapping behaviour batched.)"""

from __future__ import annotations

import collections
import os
import threading
from typing import Any

import pytest
from dask.utils import key_split
from engine_helpers import poll

from flowrun import Flow, task
from flowrun.engine import run_until_finished
from flowrun.engine import state as s
from flowrun.engine.events import TaskEvent
from flowrun.engine.executors import dask_batches
from flowrun.executors import DaskExecutor


@task
def inc(x: int) -> int:
    return x + 1


@task
def total(xs: list[int]) -> int:
    return sum(xs)


def test_batch_size_adapts_to_the_map_and_the_cluster() -> None:
    assert dask_batches.batch_size(10, threads=2, forced=None) == 1  # too small to gain
    assert dask_batches.batch_size(1000, threads=2, forced=None) == 63  # 16 batches
    assert dask_batches.batch_size(10**6, threads=2, forced=None) == dask_batches.MAX_BATCH
    assert dask_batches.batch_size(1000, threads=2, forced=7) == 7


def test_map_batch_size_must_be_a_positive_integer() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="map_batch_size"):
            task(lambda x: x, map_batch_size=bad)


def test_every_child_reports_its_own_events(dask_cluster: Any) -> None:
    seen: list[TaskEvent] = []
    with Flow("events") as flow:
        m = inc.map(list(range(50)))
        t = total(m)
    executor = DaskExecutor(address=dask_cluster.scheduler_address, map_batch_size=7)
    state = run_until_finished(
        flow, executor=executor, on_task_state=seen.append, return_tasks=[m, t]
    )
    assert state.result[t].result == sum(range(1, 51))
    assert [c.result for c in state.result[m].map_states] == list(range(1, 51))
    per_child = collections.Counter((e.map_index, e.state) for e in seen if e.task == m.slug)
    for i in range(50):
        assert per_child[i, "Running"] == 1
        assert per_child[i, "Success"] == 1


def test_a_per_task_batch_size_wins(dask_cluster: Any) -> None:
    @task(map_batch_size=25)
    def where(x: int) -> str:
        from distributed import get_worker  # noqa: PLC0415 - on the worker

        return str(get_worker().get_current_task())

    with Flow("per-task") as flow:
        m = where.map(list(range(50)))
    executor = DaskExecutor(address=dask_cluster.scheduler_address)
    state = run_until_finished(flow, executor=executor, return_tasks=[m])
    keys = state.result[m].result
    assert keys[0].startswith("where-1-")
    assert keys[0].endswith("[0-24]")
    assert keys[49].endswith("[25-49]")


def test_children_are_one_task_to_dask(dask_cluster: Any) -> None:
    """Dask learns durations per key prefix; its adaptive target and work stealing use them.
    Every child of a map, batched or not, has its task's prefix, never one of its own."""

    def where(x: int) -> str:
        from distributed import get_worker  # noqa: PLC0415 - on the worker

        return str(get_worker().get_current_task())

    with Flow("prefixes") as flow:
        single = task(where, map_batch_size=1).map(list(range(4)))
        batched = task(where, map_batch_size=10).map(list(range(40)))
    executor = DaskExecutor(address=dask_cluster.scheduler_address)
    state = run_until_finished(flow, executor=executor, return_tasks=[single, batched])
    for mapped, dask_tasks in ((single, 4), (batched, 4)):
        keys = state.result[mapped].result
        assert len(set(keys)) == dask_tasks, keys
        assert {key_split(k) for k in keys} == {"where"}, keys


def test_map_of_a_map_has_no_barrier(dask_cluster: Any, tmp_path: Any) -> None:
    """The first downstream child starts before the last upstream child ends (timestamps
    of their states, from the workers' events). The last upstream child waits for the
    first downstream one, so a barrier would fail the run instead of racing it."""
    seen: list[TaskEvent] = []
    lock = threading.Lock()
    marker = tmp_path / "second-0"

    def record(event: TaskEvent) -> None:
        with lock:
            seen.append(event)

    @task
    def first(x: int) -> int:
        if x == 399:
            poll(marker.exists, timeout=120)
        return x

    @task
    def second(x: int) -> int:
        if x == 0:
            marker.write_text("started")
        return x

    with Flow("no-barrier") as flow:
        up = first.map(list(range(400)))
        down = second.map(up)
    executor = DaskExecutor(address=dask_cluster.scheduler_address, map_batch_size=20)
    state = run_until_finished(flow, executor=executor, on_task_state=record)
    assert state.is_successful()
    ups = [e.timestamp for e in seen if e.task == up.slug and e.state == "Success"]
    downs = [e.timestamp for e in seen if e.task == down.slug and e.state == "Running"]
    assert len(ups) == len(downs) == 400
    assert min(downs) < max(ups)


def test_cancel_stops_the_children_of_a_batch(dask_cluster: Any, tmp_path: Any) -> None:
    started = tmp_path / "started"

    @task
    def slow(x: int) -> int:
        started.write_text("yes")
        threading.Event().wait(0.2)
        return x

    with Flow("cancel-batch") as flow:
        m = slow.map(list(range(200)))
    cancel = threading.Event()
    out: dict[str, Any] = {}
    executor = DaskExecutor(address=dask_cluster.scheduler_address, map_batch_size=50)
    thread = threading.Thread(
        target=lambda: out.update(state=run_until_finished(flow, executor=executor, cancel=cancel))
    )
    thread.start()
    poll(started.exists, timeout=120)
    cancel.set()
    thread.join(30)
    assert not thread.is_alive()
    children = out["state"].result[m].map_states
    assert all(c.is_finished() for c in children)
    assert any(type(c) is s.Cancelled for c in children)


def test_a_batch_rerun_after_its_worker_died_reports_each_child_once(tmp_path: Any) -> None:
    import distributed  # noqa: PLC0415 - only this test needs its own cluster

    died = tmp_path / "died"

    @task
    def fragile(x: int) -> int:
        if x == 12 and not died.exists():
            died.write_text("once")
            os._exit(1)  # the worker process dies in the middle of the batch
        threading.Event().wait(0.1)  # long enough that earlier children were reported
        return x

    seen: list[TaskEvent] = []
    with Flow("worker-dies") as flow:
        m = fragile.map(list(range(30)))
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with cluster:
        executor = DaskExecutor(address=cluster.scheduler_address, map_batch_size=15)
        state = run_until_finished(
            flow, executor=executor, on_task_state=seen.append, return_tasks=[m]
        )
    assert died.exists()
    assert state.result[m].result == list(range(30))
    successes = collections.Counter(e.map_index for e in seen if e.state == "Success")
    assert successes == dict.fromkeys(range(30), 1)

"""DaskExecutor specifics: results stay on workers, live events, publishing, own cluster."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import msgpack
import pytest
from engine_helpers import poll

from flowrun import Flow, task
from flowrun.engine import FlowRunner, run_until_finished
from flowrun.engine import state as s
from flowrun.engine.events import TaskEvent

distributed = pytest.importorskip("distributed")
from flowrun.executors import DaskExecutor  # noqa: E402


def _rebuild_on_worker_only() -> WorkerOnly:
    # Raises outside a worker process: proves the client never loads it. (Not get_worker():
    # that also fails where a worker unpickles data fetched from another worker.)
    if not distributed.Worker._instances:
        raise ValueError("No worker found")
    return WorkerOnly()


class WorkerOnly:
    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _rebuild_on_worker_only, ()


@task
def make() -> WorkerOnly:
    return WorkerOnly()


@task
def describe(obj: WorkerOnly) -> str:
    return type(obj).__name__


@task
def inc(x: int) -> int:
    return x + 1


@pytest.fixture
def dask_executor(dask_cluster: Any) -> DaskExecutor:
    return DaskExecutor(address=dask_cluster.scheduler_address)


def test_intermediate_results_never_reach_the_client(dask_executor: DaskExecutor) -> None:
    # The operator's path: only the return tasks' results are fetched.
    with Flow("stays") as flow:
        obj = make()
        name = describe(obj)
    state = run_until_finished(flow, executor=dask_executor, return_tasks=[name])
    assert state.is_successful()
    assert state.result[name].result == "WorkerOnly"
    assert type(state.result[obj]) is s.Success  # its record, without its value


def test_flow_run_fetches_every_result_as_prefect_does(dask_executor: DaskExecutor) -> None:
    with Flow("all") as flow:
        one = inc(0)
        two = inc(one)
        many = inc.map([one, two])
    state = flow.run(executor=dask_executor)
    assert state.result[one].result == 1
    assert state.result[two].result == 2
    assert state.result[many].result == [2, 3]
    assert not any(isinstance(st.result, distributed.Future) for st in state.result.values())


def test_mapped_children_receive_upstream_futures(dask_executor: DaskExecutor) -> None:
    @task
    def make_list(n: int) -> list[WorkerOnly]:
        return [WorkerOnly() for _ in range(n)]

    with Flow("stays-mapped") as flow:
        names = describe.map(make_list(2))  # each child takes its element on the worker
    state = run_until_finished(flow, executor=dask_executor, return_tasks=[names])
    assert state.result[names].result == ["WorkerOnly", "WorkerOnly"]


def test_running_events_arrive_while_the_task_runs(
    dask_executor: DaskExecutor, tmp_path: Path
) -> None:
    release = tmp_path / "release"

    @task
    def wait_for_release() -> str:
        poll(release.exists, timeout=60)
        return "released"

    seen: list[TaskEvent] = []

    def on_event(event: TaskEvent) -> None:
        seen.append(event)
        if event.state == "Running":
            release.write_text("go")  # only a live Running event lets the task finish

    with Flow("live") as flow:
        t = wait_for_release()
    state = flow.run(executor=dask_executor, on_task_state=on_event)
    assert state.result[t].result == "released"
    assert [e.state for e in seen] == ["Running", "Success"]
    assert all(isinstance(e, TaskEvent) for e in seen)


def test_mapped_children_report_their_index(dask_executor: DaskExecutor) -> None:
    seen: list[TaskEvent] = []
    with Flow("child-events") as flow:
        inc.map([1, 2])
    flow.run(executor=dask_executor, on_task_state=seen.append)
    finished = sorted(
        (-1 if e.map_index is None else e.map_index, e.state) for e in seen if e.is_finished
    )
    assert finished == [(-1, "Mapped"), (0, "Success"), (1, "Success")]


def test_published_results_let_a_new_client_resume(dask_cluster: Any) -> None:
    with Flow("publish") as flow:
        a = inc(1)
        b = inc(a)
    first = DaskExecutor(address=dask_cluster.scheduler_address, publish_prefix="run-1/")
    assert flow.run(executor=first).is_successful()

    later = DaskExecutor(address=dask_cluster.scheduler_address)
    with later.start() as client:
        future = client.get_dataset("run-1/inc-1")
        state = FlowRunner(flow).run(
            executor=later,
            task_states={a: s.Success(result=future)},
            start_tasks=[b],
            return_tasks=[b],
        )
        assert state.result[b].result == 3
        client.unpublish_dataset("run-1/inc-1")
        client.unpublish_dataset("run-1/inc-2")


def test_executor_can_create_and_close_its_own_cluster() -> None:
    executor = DaskExecutor(
        cluster_kwargs={"processes": False, "n_workers": 1, "dashboard_address": None}
    )
    with Flow("own") as flow:
        t = inc.map([1, 2, 3])
    state = run_until_finished(flow, executor=executor, return_tasks=[t])
    assert state.result[t].result == [2, 3, 4]
    assert executor.client is None


def test_cancel_from_another_thread(dask_executor: DaskExecutor, tmp_path: Path) -> None:
    started = tmp_path / "started"

    @task
    def busy(i: int) -> int:
        started.write_text("yes")
        while True:
            threading.Event().wait(0.01)

    cancel = threading.Event()
    with Flow("cancel-map") as flow:
        mapped = busy.map(list(range(6)))
    canceller = threading.Thread(target=lambda: (poll(started.exists), cancel.set()))
    canceller.start()
    state = run_until_finished(flow, executor=dask_executor, cancel=cancel)
    canceller.join()
    assert type(state) is s.Cancelled
    children = state.result[mapped].map_states  # type: ignore[attr-defined]
    assert children
    assert all(type(c) is s.Cancelled for c in children)


def test_task_events_are_plain_values() -> None:
    event = TaskEvent(
        task="t",
        map_index=None,
        state="Running",
        message=None,
        run_count=1,
        timestamp=1.0,
        is_finished=False,
    )
    assert msgpack.unpackb(msgpack.packb(event.to_dict())) == event.to_dict()
    assert TaskEvent.from_dict({**event.to_dict(), "key": "extra fields are ignored"}) == event


def test_mapped_return_task_is_fetched_in_one_go(dask_executor: DaskExecutor) -> None:
    with Flow("fetch-children") as flow:
        m = inc.map(list(range(20)))
    state = flow.run(executor=dask_executor)
    assert state.result[m].result == list(range(1, 21))
    assert [c.result for c in state.result[m].map_states] == list(range(1, 21))  # type: ignore[attr-defined]


def test_a_given_client_is_used_and_left_open(dask_cluster: Any) -> None:
    with distributed.Client(dask_cluster.scheduler_address, set_as_default=False) as client:
        with Flow("given") as flow:
            t = inc(1)
        executor = DaskExecutor(client=client, publish_prefix="given/")
        state = flow.run(executor=executor)
        assert state.result[t].result == 2
        # Submitted through this very client: its futures were published through it.
        assert "given/inc-1" in client.list_datasets()
        assert client.status == "running"
        assert client.submit(lambda: 42).result() == 42
        client.unpublish_dataset("given/inc-1")


def test_a_given_client_excludes_where_to_connect(dask_cluster: Any) -> None:
    with pytest.raises(ValueError, match="client="):
        DaskExecutor(client=object(), address=dask_cluster.scheduler_address)

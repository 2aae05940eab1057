"""Siblings on DaskExecutor: many tasks that wait for the same tasks (a fan-out) run in
batches, one Dask task per batch, each still its own task: own events, state, retries and
published result."""

from __future__ import annotations

import collections
import uuid
from pathlib import Path
from typing import Any

import distributed

from flowrun import Flow, task
from flowrun.engine import run_until_finished
from flowrun.engine import state as s
from flowrun.engine.events import TaskEvent
from flowrun.engine.executors import dask_resume, fusion
from flowrun.executors import DaskExecutor

N = 200


@task
def inc(x: int) -> int:
    return x + 1


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@task
def where(x: int) -> str:
    from distributed import get_worker  # noqa: PLC0415 - on the worker

    return str(get_worker().get_current_task())


def test_siblings_are_grouped_by_what_they_wait_for() -> None:
    deps = {"r": set(), **{f"k{i}": {"r"} for i in range(5)}, "j": {"k0", "k1"}, "x": {"q"}}
    groups = fusion.sibling_groups(deps, [k for k in deps if k != "k4"], lambda n: 2)
    assert groups == [["k0", "k1"], ["k2", "k3"]]
    assert fusion.sibling_groups(deps, list(deps), lambda n: 1) == []


def test_a_fan_out_runs_in_batches_and_every_branch_reports_itself(dask_cluster: Any) -> None:
    seen: list[TaskEvent] = []
    with Flow("fan-out") as flow:
        root = inc(0)
        branches = [where(root) for _ in range(N)]
        small = [inc(i) for i in range(3)]  # too few to batch
    executor = DaskExecutor(address=dask_cluster.scheduler_address)
    state = run_until_finished(
        flow, executor=executor, on_task_state=seen.append, return_tasks=[*branches, *small]
    )
    assert state.is_successful()
    keys = [state.result[b].result for b in branches]
    assert all(k.startswith("siblings-") for k in keys)
    assert 1 < len(set(keys)) < N
    assert [state.result[t].result for t in small] == [1, 2, 3]
    per_task = collections.Counter((e.task, e.state) for e in seen)
    for b in branches:
        assert per_task[b.slug, "Running"] == per_task[b.slug, "Success"] == 1


def test_branches_fail_and_retry_on_their_own(dask_cluster: Any, tmp_path: Path) -> None:
    @task(max_retries=1)
    def flaky(x: int, i: int) -> int:
        marker = tmp_path / f"tried-{i}"
        if i % 50 == 7 and not marker.exists():
            marker.write_text("once")
            raise ValueError(f"first try of {i}")
        if i == 99:
            raise ValueError("always")
        return x + i

    with Flow("fan-out-retries") as flow:
        root = inc(0)
        branches = [flaky(root, i) for i in range(N)]
        out = total(branches)
    executor = DaskExecutor(address=dask_cluster.scheduler_address)
    state = run_until_finished(flow, executor=executor, return_tasks=[*branches, out])
    results = {i: state.result[b] for i, b in enumerate(branches)}
    assert type(results[99]) is s.Failed
    assert all(results[i].result == 1 + i for i in range(N) if i != 99)
    assert all((tmp_path / f"tried-{i}").exists() for i in range(7, N, 50))  # retried, then ok
    assert type(state.result[out]) is s.TriggerFailed


def test_published_siblings_let_a_new_client_resume(dask_cluster: Any, tmp_path: Path) -> None:
    @task
    def counted(x: int, i: int) -> int:
        (tmp_path / f"{i}-{uuid.uuid4().hex}").touch()
        return x + i

    with Flow("fan-out-publish") as flow:
        root = inc(0)
        branches = [counted(root, i) for i in range(N)]
        out = total(branches)
    prefix = f"siblings-{uuid.uuid4().hex[:8]}/"
    first = DaskExecutor(address=dask_cluster.scheduler_address, publish_prefix=prefix)
    assert run_until_finished(flow, executor=first).is_successful()
    assert len(list(tmp_path.iterdir())) == N

    slugs = [root.slug, *(b.slug for b in branches)]
    with distributed.Client(dask_cluster.scheduler_address, set_as_default=False) as client:
        found = dask_resume.published_states(client, prefix, slugs)
        assert set(found) == set(slugs)
        later = DaskExecutor(client=client)
        state = run_until_finished(flow, executor=later, task_states=found, return_tasks=[out])
        for name in client.list_datasets():
            if str(name).startswith(prefix):
                client.unpublish_dataset(name)
    assert state.result[out].result == sum(1 + i for i in range(N))
    assert len(list(tmp_path.iterdir())) == N  # no branch ran again

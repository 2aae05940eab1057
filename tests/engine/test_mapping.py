"""Mapping: children per element, unmapped/flatten, zips, reduces, failures, pipelining.

Every test runs on Dask twice: one child per Dask task, and children in batches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from engine_helpers import make_executor, poll

from flowrun import Flow, context, flatten, task, unmapped
from flowrun.engine import FlowRunner, run_until_finished
from flowrun.engine import state as s
from flowrun.executors import DaskExecutor


@pytest.fixture(params=["local", "sync", "dask", "dask-batched"])
def executor(request: pytest.FixtureRequest) -> Any:
    return make_executor(request, request.param)


@pytest.fixture(params=["local", "dask", "dask-batched"])
def executor_ld(request: pytest.FixtureRequest) -> Any:
    return make_executor(request, request.param)


def run_all(flow: Flow, executor: Any) -> s.State:
    """Run to the end with every result fetched (Flow.run on Dask fetches terminal ones)."""
    return run_until_finished(flow, executor=executor, return_tasks=flow.tasks)


@task
def inc(x: int) -> int:
    return x + 1


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@task
def nested(n: int) -> list[list[int]]:
    return [[i] * i for i in range(n)]


@task
def fail_on_two(x: int) -> int:
    if x == 2:
        raise ValueError("two")
    return x


def test_map_and_reduce(executor: Any) -> None:
    with Flow("map") as flow:
        m = inc.map([1, 2, 3])
        t = total(m)
    state = run_all(flow, executor)
    assert state.is_successful()
    assert state.result[t].result == 9
    parent = state.result[m]
    assert isinstance(parent, s.Mapped)
    assert parent.n_map_states == 3
    assert [c.result for c in parent.map_states] == [2, 3, 4]
    assert parent.result == [2, 3, 4]


def test_unmapped_and_zip_to_the_shortest(executor: Any) -> None:
    with Flow("zip") as flow:
        a = add.map([1, 2, 3, 4], [10, 20])
        b = add.map([1, 2], y=unmapped(100))
    state = flow.run(executor=executor)
    assert state.result[a].result == [11, 22]
    assert state.result[b].result == [101, 102]


def test_flatten(executor_ld: Any) -> None:
    with Flow("flatten") as flow:
        f = inc.map(flatten(nested(4)))
        sums = total.map(flatten(nested.map([2, 3])))
    state = run_all(flow, executor_ld)
    assert state.result[f].result == [2, 3, 3, 4, 4, 4]
    assert state.result[sums].result == [0, 1, 0, 1, 4]


def test_map_of_a_map_and_per_element_upstream(executor: Any) -> None:
    with Flow("map-map") as flow:
        first = inc.map([1, 2, 3])
        second = add.map(first, first)
        t = total(second)
    state = run_all(flow, executor)
    assert state.result[second].result == [4, 6, 8]
    assert state.result[t].result == 18


def test_empty_map_gives_no_children(executor: Any) -> None:
    with Flow("empty") as flow:
        m = inc.map([])
        t = total(m)
    state = flow.run(executor=executor)
    assert state.is_successful()
    assert state.result[m].n_map_states == 0
    assert state.result[t].result == 0


def test_a_failed_child_fails_the_reduce_but_not_its_siblings(executor: Any) -> None:
    with Flow("partial") as flow:
        m = fail_on_two.map([1, 2, 3])
        then = inc.map(m)
        t = total(m)
    state = flow.run(executor=executor)
    assert state.is_failed()
    children = state.result[m].map_states  # type: ignore[attr-defined]
    assert [type(c).__name__ for c in children] == ["Success", "Failed", "Success"]
    assert [type(c).__name__ for c in state.result[then].map_states] == [
        "Success",
        "TriggerFailed",
        "Success",
    ]  # type: ignore[attr-defined]
    assert type(state.result[t]) is s.TriggerFailed


def test_unmappable_or_failed_upstreams(executor_ld: Any) -> None:
    @task
    def broken() -> list[int]:
        raise RuntimeError("no list")

    with Flow("bad-map") as flow:
        scalar = inc(1)
        over_scalar = inc.map(scalar)
        over_failed = inc.map(broken())
    state = flow.run(executor=executor_ld)
    assert "unmappable" in (state.result[over_scalar].message or "")
    assert "No upstream states can be mapped over" in (state.result[over_failed].message or "")


def test_children_know_their_index(executor: Any) -> None:
    @task
    def where(x: str) -> tuple[int, str]:
        return context.map_index, context.task_full_name

    with Flow("index") as flow:
        m = where.map(["a", "b"])
    assert flow.run(executor=executor).result[m].result == [(0, "where[0]"), (1, "where[1]")]


def test_children_retry_on_their_own(executor_ld: Any, tmp_path: Path) -> None:
    @task(max_retries=1, retry_delay=0)
    def flaky(x: int) -> int:
        marker = tmp_path / f"tried-{x}"
        if x == 1 and not marker.exists():
            marker.write_text("once")
            raise RuntimeError("first try fails")
        return x * 10

    with Flow("child-retry") as flow:
        m = flaky.map([0, 1, 2])
    state = flow.run(executor=executor_ld)
    assert state.is_successful()
    assert state.result[m].result == [0, 10, 20]
    assert not (tmp_path / "tried-0").exists()


def test_rerun_keeps_finished_children(executor_ld: Any) -> None:
    with Flow("rerun") as flow:
        m = inc.map([1, 2, 3])
    given = s.Mapped(map_states=(s.Success(result=100), s.Pending(), s.Success(result=300)))
    state = FlowRunner(flow).run(executor=executor_ld, task_states={m: given}, return_tasks=[m])
    assert state.result[m].result == [100, 3, 300]


@pytest.mark.parametrize("batch", [None, 2])
def test_map_of_map_is_pipelined_elementwise(
    dask_cluster: Any, tmp_path: Path, batch: int | None
) -> None:
    """Child 0 of the second map runs while the first map's last child is still waiting
    (in batches: the second map's first batch while the first map's last batch waits)."""

    @task
    def first(x: int) -> int:
        if x == 3:
            poll((tmp_path / "second-0").exists, timeout=60)
        return x

    @task
    def second(x: int) -> int:
        (tmp_path / f"second-{x}").write_text("done")
        return x

    with Flow("pipelined") as flow:
        t = total(second.map(first.map([0, 1, 2, 3])))
    executor = DaskExecutor(address=dask_cluster.scheduler_address, map_batch_size=batch)
    state = flow.run(executor=executor)
    assert state.is_successful()
    assert state.result[t].result == 6

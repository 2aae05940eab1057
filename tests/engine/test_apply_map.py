"""`apply_map`, as Prefect 1.x documents it: a function that builds tasks (control flow
included) is mapped element-wise, its arguments mapped unless `unmapped(...)`."""

from __future__ import annotations

from typing import Any

import pytest

from flowrun import Flow, apply_map, case, task, unmapped
from flowrun.engine.executors.local import LocalExecutor
from flowrun.executors import DaskExecutor
from flowrun.tasks.control_flow import merge


@task
def inc(x: int) -> int:
    return x + 1


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def is_even(x: int) -> bool:
    return x % 2 == 0


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


def inc_if_even(x: Any) -> Any:
    with case(is_even(x), True):
        bigger = inc(x)
    return merge(bigger, x)


@pytest.mark.parametrize("where", ["local", "dask"])
def test_control_flow_is_mapped_element_wise(where: str, dask_cluster: Any) -> None:
    with Flow("apply-map") as flow:
        result = apply_map(inc_if_even, range(4))
    executor = LocalExecutor() if where == "local" else DaskExecutor(dask_cluster.scheduler_address)
    state = flow.run(executor=executor)
    assert state.result[result].result == [1, 1, 3, 3]


def test_unmapped_arguments_stay_whole_and_every_edge_is_mapped() -> None:
    def pipeline(x: Any, y: Any, z: Any) -> Any:
        return inc(add(add(x, y), z))

    with Flow("simple") as flow:
        ys = numbers(3)
        result = apply_map(pipeline, range(3, 6), y=ys, z=unmapped(1))
    assert {t.name: c for t, c in flow.constants.items() if c} == {
        "numbers": {"n": 3},
        "add": {"y": 1},
    }
    for made in flow.tasks:
        if made.name != "numbers":
            assert all(edge.mapped for edge in flow.edges_to(made))
    assert flow.run().result[result].result == [5, 7, 9]


def test_a_flow_given_is_passed_to_the_function() -> None:
    def pipeline(a: Any, flow: Flow) -> Any:
        return inc.copy().bind(a, flow=flow)

    flow = Flow("imperative")
    data = numbers.copy().bind(3, flow=flow)
    result = apply_map(pipeline, data, flow=flow)
    assert flow.run().result[result].result == [1, 2, 3]


def test_misuse_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="flow in the current context"):
        apply_map(inc, range(3))
    with Flow("bad"):
        with pytest.raises(TypeError, match="non-sequence object of type `int`"):
            apply_map(inc, 1)
        with pytest.raises(ValueError, match="inside a mapped context"):
            apply_map(inc.map, range(3))

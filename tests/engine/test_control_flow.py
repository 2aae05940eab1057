"""case / switch / ifelse / merge, as Prefect 1.x documents them, on Local and Dask."""

from __future__ import annotations

from typing import Any

import pytest

from flowrun import Flow, Parameter, task
from flowrun.engine import signals
from flowrun.engine import state as states
from flowrun.tasks.control_flow import FilterTask, case, ifelse, merge, switch


@task
def pick(x: Any) -> Any:
    return x


@task
def branch_a() -> str:
    return "A"


@task
def branch_b() -> str:
    return "B"


@task
def shout(x: str) -> str:
    return x + "!"


def test_case_runs_only_the_matching_block(executor_ld: Any) -> None:
    with Flow("case") as flow:
        cond = pick(Parameter("which"))
        with case(cond, "a"):
            a = branch_a()
            a2 = shout(a)
        with case(cond, "b"):
            b = branch_b()
        joined = merge(a2, b)
    final = flow.run(executor=executor_ld, which="b")
    assert final.is_successful()
    assert isinstance(final.result[a], states.Skipped)
    assert isinstance(final.result[a2], states.Skipped)
    assert final.result[b].result == "B"
    assert final.result[joined].result == "B"
    final = flow.run(executor=executor_ld, which="a")
    assert final.result[joined].result == "A!"


def test_ifelse_and_switch(executor_ld: Any) -> None:
    with Flow("ifelse") as flow:
        yes, no = branch_a(), branch_b()
        ifelse(pick(Parameter("flag")), yes, no)
        joined = merge(yes, no)
    assert flow.run(executor=executor_ld, flag=0).result[joined].result == "B"
    assert flow.run(executor=executor_ld, flag=[1]).result[joined].result == "A"
    with Flow("switch") as flow:
        one, two = branch_a(), branch_b()
        switch(pick("two"), {"one": one, "two": two})
    final = flow.run(executor=executor_ld)
    assert final.result[one].is_skipped()
    assert final.result[two].result == "B"


def test_merge_of_only_skipped_branches_is_skipped() -> None:
    with Flow("none") as flow:
        cond = pick("c")
        with case(cond, "a"):
            a = branch_a()
        joined = merge(a)
    assert flow.run().result[joined].is_skipped()


def test_case_refuses_a_task_as_value() -> None:
    with Flow("bad"), pytest.raises(TypeError, match="cannot be a task"):
        case(pick(1), pick(2))


@task
def unstable(arg: int) -> Any:
    if arg == 1:
        raise RuntimeError("fail this one")
    if arg == 2:
        raise signals.SKIP("skip this one")
    return None if arg == 3 else arg


@task
def add_one(x: int) -> int:
    return x + 1


def test_filter_task_drops_failed_skipped_and_none_children(executor_ld: Any) -> None:
    # Prefect's docs (concepts/mapping, "Filter map output"): the filter sees a mapped
    # task's results with exceptions in place of failed/skipped children, and runs anyway.
    keep = FilterTask(filter_func=lambda x: not isinstance(x, (BaseException, type(None))))
    with Flow("filter") as flow:
        raw = unstable.map([0, 1, 2, 3, 4])
        kept = keep(raw)
        incremented = add_one.map(kept)
        default_kept = FilterTask()(raw)
    final = flow.run(executor=executor_ld)
    assert final.is_successful()
    kinds = [type(s) for s in final.result[raw].map_states]
    assert kinds == [states.Success, states.Failed, states.Skipped, states.Success, states.Success]
    assert final.result[kept].result == [0, 4]
    assert final.result[incremented].result == [1, 5]
    assert final.result[default_kept].result == [0, 4]  # SKIP is an exception too
